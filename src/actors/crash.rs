//! A panic in an actor's handler would end its task for good: actix's `Supervisor` restarts an
//! actor that stops, not one that unwinds. So handlers run their work through `guarded`, which
//! turns a panic into a logged, counted stop; the supervisor then restarts the actor, which waits
//! out an exponential backoff before it works again, so a panic on every message does not spin.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::ExponentialBackoff;

use super::backoff;
use super::status::ActorStatus;

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
        let delays = self
            .backoff
            .get_or_insert_with(|| backoff::exponential(FIRST_DELAY, MAX_DELAY));
        self.pending_delay = delays.next();
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

/// Actors whose handlers run guarded, restarted on request, and asked for their status.
pub trait Crashable: Actor<Context = Context<Self>> {
    type Status: ActorStatus;

    fn crashes(&mut self) -> &mut CrashRecord;
    fn name(&self) -> String;
    /// Its status as kept between messages.
    fn status(&self) -> &Self::Status;
    /// Adds to `status` what is only read when asked.
    fn fill_in(&self, _status: &mut Self::Status) {}

    /// Its status as reported, its panics included.
    fn report(&mut self) -> Self::Status {
        let mut status = self.status().clone();
        status.set_panics(self.crashes().panics);
        self.fill_in(&mut status);
        status
    }

    /// Stops it, for its `actix::Supervisor` to start it again at once; returns its restarts
    /// before this one, so that the supervisor can tell when the restart has happened.
    fn restart(&mut self, ctx: &mut Context<Self>) -> u64 {
        ctx.stop();
        self.status().restarts()
    }
}

/// `Crashable`'s accessors for an actor that keeps its panics in `crashes` and its status in
/// `status`, as every actor does.
macro_rules! crash_fields {
    ($status:ty) => {
        type Status = $status;

        fn crashes(&mut self) -> &mut $crate::actors::crash::CrashRecord {
            &mut self.crashes
        }

        fn status(&self) -> &$status {
            &self.status
        }
    };
}
pub(crate) use crash_fields;

/// The two handlers every actor has, the same in each: `Restart`, and its status message
/// answered with `Crashable::report`.
macro_rules! crash_handlers {
    ($actor:ty, $get_status:ty) => {
        impl actix::Handler<$crate::actors::messages::Restart> for $actor {
            type Result = u64;

            fn handle(
                &mut self,
                _: $crate::actors::messages::Restart,
                ctx: &mut Self::Context,
            ) -> u64 {
                $crate::actors::crash::Crashable::restart(self, ctx)
            }
        }

        impl actix::Handler<$get_status> for $actor {
            type Result = actix::MessageResult<$get_status>;

            fn handle(&mut self, _: $get_status, _: &mut Self::Context) -> Self::Result {
                actix::MessageResult($crate::actors::crash::Crashable::report(self))
            }
        }
    };
}
pub(crate) use crash_handlers;

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
