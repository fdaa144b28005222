//! The insights actor: fed by the feature actor with every host's cycle, it holds each VM's
//! models (`insights::Insights`), writes what they say through the writer, and answers the
//! insights API. Models live in memory: a restart starts every VM learning again.

use actix::prelude::*;
use uuid::Uuid;

use super::crash::{CrashRecord, Crashable, guarded};
use super::messages::{Restart, WriteLines};
use super::status::InsightsStatus;
use crate::influx::line_protocol::VmTags;
use crate::insights::encode::encode_host;
use crate::insights::views::{FleetInsights, VmInsightsDetail};
use crate::insights::{HostCycle, Insights, InsightsSettings};

pub struct InsightsActor {
    insights: Insights,
    tags: VmTags,
    writer: Recipient<WriteLines>,
    status: InsightsStatus,
    crashes: CrashRecord,
}

/// One host's cycle, from the feature actor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ObserveHost(pub HostCycle);

#[derive(Message)]
#[rtype(result = "InsightsStatus")]
pub struct GetInsightsStatus;

/// The fleet, or the hosts whose `host` tag is the one given.
#[derive(Message)]
#[rtype(result = "FleetInsights")]
pub struct GetFleetInsights {
    pub host: Option<String>,
    /// The most VMs in its `attention` list.
    pub limit: Option<usize>,
}

/// One VM, by its host's URI and its UUID.
#[derive(Message)]
#[rtype(result = "Option<VmInsightsDetail>")]
pub struct GetVmInsights {
    pub uri: String,
    pub uuid: Uuid,
}

impl InsightsActor {
    pub fn new(writer: Recipient<WriteLines>, settings: InsightsSettings) -> Self {
        InsightsActor {
            insights: Insights::new(settings),
            tags: VmTags::default(),
            writer,
            status: InsightsStatus::default(),
            crashes: CrashRecord::default(),
        }
    }

    fn observe(&mut self, cycle: HostCycle) {
        let (host, settings) = self.insights.observe(cycle);
        let encoded = encode_host(host, settings, &mut self.tags);
        let (vms, trained) = self.insights.counts();
        let status = &mut self.status;
        status.cycles += 1;
        (status.vms_tracked, status.vms_trained) = (vms, trained);
        status.vms_learning = vms - trained;
        status.lines_produced += encoded.lines.len() as u64;
        status.unencodable_lines += encoded.unencodable;
        if !encoded.lines.is_empty() {
            self.writer.do_send(WriteLines(encoded.lines));
        }
    }
}

impl Actor for InsightsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.crashes.wait_out(ctx);
    }
}

impl Crashable for InsightsActor {
    type Status = InsightsStatus;

    fn crashes(&mut self) -> &mut CrashRecord {
        &mut self.crashes
    }

    fn name(&self) -> String {
        "insights".into()
    }

    fn status(&self) -> &InsightsStatus {
        &self.status
    }
}

impl Supervised for InsightsActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // Models are not kept across a restart: every VM learns again.
        self.insights = Insights::new(self.insights.settings.clone());
        (self.status.vms_tracked, self.status.vms_trained) = (0, 0);
        self.status.vms_learning = 0;
        self.status.restarts += 1;
    }
}

impl Handler<ObserveHost> for InsightsActor {
    type Result = ();

    fn handle(&mut self, ObserveHost(cycle): ObserveHost, ctx: &mut Self::Context) {
        guarded(self, ctx, |actor, _| actor.observe(cycle));
    }
}

impl Handler<GetInsightsStatus> for InsightsActor {
    type Result = MessageResult<GetInsightsStatus>;

    fn handle(&mut self, _: GetInsightsStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.report())
    }
}

impl Handler<GetFleetInsights> for InsightsActor {
    type Result = MessageResult<GetFleetInsights>;

    fn handle(
        &mut self,
        GetFleetInsights { host, limit }: GetFleetInsights,
        _: &mut Self::Context,
    ) -> Self::Result {
        MessageResult(self.insights.fleet(host.as_deref(), limit))
    }
}

impl Handler<GetVmInsights> for InsightsActor {
    type Result = MessageResult<GetVmInsights>;

    fn handle(&mut self, query: GetVmInsights, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.insights.vm(&query.uri, &query.uuid))
    }
}

impl Handler<Restart> for InsightsActor {
    type Result = u64;

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) -> u64 {
        self.restart(ctx)
    }
}
