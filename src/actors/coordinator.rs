//! The coordinator (`coordination = "etcd"`): every tick it renews this replica's lease on etcd,
//! reads the members and the hosts' owners, and has the supervisor start the actors of the
//! hosts it has taken and stop those it hands over (the rules are in `crate::coordination`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::crash::{CrashRecord, Crashable, guarded};
use super::messages::{GetCoordinationStatus, HandOver, Restart, SetDraining, StopCollecting};
use crate::coordination::status::CoordinationStatus;
use crate::coordination::{Replica, Timing};

pub struct CoordinatorActor {
    /// Behind an async lock: one tick at a time, and the admin API's changes between ticks.
    replica: Arc<tokio::sync::Mutex<Replica>>,
    /// What the last tick said, read without waiting for the next.
    shared: Arc<Mutex<CoordinationStatus>>,
    tick: Duration,
    ticking: bool,
    stopped: bool,
    /// Restarts and panics (the rest comes from `shared`).
    status: CoordinationStatus,
    crashes: CrashRecord,
}

impl CoordinatorActor {
    pub fn new(replica: Replica, timing: Timing) -> Self {
        let shared = replica.status();
        let status = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
        CoordinatorActor {
            replica: Arc::new(tokio::sync::Mutex::new(replica)),
            shared,
            tick: timing.tick,
            ticking: false,
            stopped: false,
            status,
            crashes: CrashRecord::default(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.ticking || self.stopped {
            return;
        }
        self.ticking = true;
        let replica = self.replica.clone();
        let tick = async move { replica.lock().await.tick().await };
        ctx.spawn(
            tick.into_actor(self)
                .map(|(), actor, _| actor.ticking = false),
        );
    }
}

impl Actor for CoordinatorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.crashes.wait_out(ctx);
        guarded(self, ctx, Self::tick);
        ctx.run_interval(self.tick, |actor, ctx| {
            guarded(actor, ctx, Self::tick);
        });
    }
}

impl Crashable for CoordinatorActor {
    type Status = CoordinationStatus;

    fn crashes(&mut self) -> &mut CrashRecord {
        &mut self.crashes
    }

    fn name(&self) -> String {
        "coordinator".to_owned()
    }

    fn status(&self) -> &CoordinationStatus {
        &self.status
    }

    fn fill_in(&self, status: &mut CoordinationStatus) {
        let (restarts, panics) = (status.restarts, status.panics);
        *status = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        status.restarts = restarts;
        status.panics = panics;
    }
}

impl Supervised for CoordinatorActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // A tick cut short leaves the replica as it was between two of its calls: the next one
        // takes it from there.
        self.ticking = false;
        self.status.restarts += 1;
    }
}

impl Handler<GetCoordinationStatus> for CoordinatorActor {
    type Result = MessageResult<GetCoordinationStatus>;

    fn handle(&mut self, _: GetCoordinationStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.report())
    }
}

impl Handler<SetDraining> for CoordinatorActor {
    type Result = ResponseActFuture<Self, CoordinationStatus>;

    fn handle(
        &mut self,
        SetDraining(draining): SetDraining,
        _: &mut Self::Context,
    ) -> Self::Result {
        tracing::info!(draining, "draining set by the admin API");
        let replica = self.replica.clone();
        let set = async move { replica.lock().await.set_draining(draining) };
        Box::pin(set.into_actor(self).map(|(), actor, _| actor.report()))
    }
}

impl Handler<HandOver> for CoordinatorActor {
    type Result = ResponseActFuture<Self, Option<CoordinationStatus>>;

    fn handle(&mut self, HandOver(uri): HandOver, _: &mut Self::Context) -> Self::Result {
        let replica = self.replica.clone();
        let decline = async move {
            let declined = replica.lock().await.decline(&uri);
            if declined {
                tracing::info!(host = %uri, "host handed over by the admin API");
            }
            declined
        };
        Box::pin(
            decline
                .into_actor(self)
                .map(|ok, actor, _| ok.then(|| actor.report())),
        )
    }
}

impl Handler<Restart> for CoordinatorActor {
    type Result = u64;

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) -> u64 {
        self.restart(ctx)
    }
}

impl Handler<StopCollecting> for CoordinatorActor {
    type Result = ResponseFuture<()>;

    /// Hands every host over and leaves the members, so the others take over at once.
    fn handle(&mut self, _: StopCollecting, _: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        let replica = self.replica.clone();
        Box::pin(async move { replica.lock().await.leave().await })
    }
}
