//! A panic in an actor's handler would end its task for good: actix's `Supervisor` restarts an
//! actor that stops, not one that unwinds. So handlers run their work through `guarded`, which
//! turns a panic into a logged, counted stop; the supervisor then restarts the actor, which waits
//! out an exponential backoff before it works again, so a panic on every message does not spin.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A quiet minute forgives earlier panics: the next one waits the shortest delay again.
const FORGIVEN_AFTER: Duration = Duration::from_secs(60);

/// Panics of one actor, and the wait before it works again.
#[derive(Default)]
pub struct CrashRecord {
    pub panics: u64,
    last: Option<Instant>,
    backoff: Option<ExponentialBackoff>,
    pending_delay: Option<Duration>,
}

impl CrashRecord {
    fn record(&mut self) {
        let now = Instant::now();
        if self.last.is_none_or(|last| now - last > FORGIVEN_AFTER) {
            self.backoff = None;
        }
        let backoff = self.backoff.get_or_insert_with(|| {
            ExponentialBuilder::default()
                .with_min_delay(FIRST_DELAY)
                .with_max_delay(MAX_DELAY)
                .without_max_times()
                .build()
        });
        self.pending_delay = backoff.next();
        self.panics += 1;
        self.last = Some(now);
    }

    /// In `started`: after a panic, hold every message until the backoff has passed.
    pub fn wait_out<A>(&mut self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some(delay) = self.pending_delay.take() {
            tracing::warn!(
                ?delay,
                "restarted after a panic: waiting before working again"
            );
            ctx.wait(actix::fut::wrap_future::<_, A>(actix::clock::sleep(delay)));
        }
    }
}

/// Actors whose handlers run guarded.
pub trait Crashable: Actor<Context = Context<Self>> {
    fn crashes(&mut self) -> &mut CrashRecord;
    fn name(&self) -> String;
}

/// Runs `work`; a panic in it is logged and counted, and stops the actor for a restart.
pub fn guarded<A, R>(
    actor: &mut A,
    ctx: &mut Context<A>,
    work: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Option<R>
where
    A: Crashable,
{
    match catch_unwind(AssertUnwindSafe(|| work(actor, ctx))) {
        Ok(result) => Some(result),
        Err(panic) => {
            tracing::error!(actor = %actor.name(), panic = %message(&*panic), "actor panicked: restarting it");
            actor.crashes().record();
            ctx.stop();
            None
        }
    }
}

fn message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
