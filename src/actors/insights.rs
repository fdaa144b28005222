//! The insights actor: fed by the feature actor with every host's cycle, it holds each VM's
//! models (`insights::Insights`), writes what they say through the writer, and answers the
//! insights API. With a spool directory it saves every VM's models (`insights::snapshot`) every
//! `insights_snapshot_interval` and when the service stops, on a blocking thread, and starts from
//! the last snapshot, at start and at every restart.

use actix::prelude::*;
use uuid::Uuid;

use super::crash::{CrashRecord, Crashable, crash_fields, crash_handlers, guarded};
use super::messages::WriteLines;
use super::status::InsightsStatus;
use crate::influx::line_protocol::VmTags;
use crate::insights::encode::encode_host;
use crate::insights::outlook::{Outlook, OutlookSettings};
use crate::insights::outlook_lines::due_lines;
use crate::insights::rightsizing::summary::{
    Recommendations, RecommendationsQuery, SortBy, Totals, VmRecommendation, recommendations,
    vm_recommendation,
};
use crate::insights::scrape::InsightsScrape;
use crate::insights::snapshot::Snapshots;
use crate::insights::store::SnapshotError;
use crate::insights::views::{FleetInsights, VmInsightsDetail};
use crate::insights::{HostCycle, Insights, InsightsSettings};

pub struct InsightsActor {
    insights: Insights,
    tags: VmTags,
    writer: Recipient<WriteLines>,
    status: InsightsStatus,
    crashes: CrashRecord,
    /// Forecasts and recommendations, when configured (`with_outlook`).
    outlook: Option<(Outlook, OutlookSettings)>,
    /// None without a spool directory.
    snapshots: Option<Snapshots>,
    /// The fleet's right-sizing totals for the summary, and the cycle count they were added at:
    /// added up at most once a cycle however often the summary is asked.
    fleet_totals: Option<(u64, Totals)>,
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

/// Saves every VM's models now (the service stops); answered once they are on disk.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveSnapshot;

/// What `/metrics` shows of every host and VM.
#[derive(Message)]
#[rtype(result = "InsightsScrape")]
pub struct GetInsightsScrape;

/// One VM, by its host's URI and its UUID.
#[derive(Message)]
#[rtype(result = "Option<VmInsightsDetail>")]
pub struct GetVmInsights {
    pub uri: String,
    pub uuid: Uuid,
}

impl InsightsActor {
    /// Starts from the last snapshot, if there is one.
    pub fn new(writer: Recipient<WriteLines>, settings: InsightsSettings) -> Self {
        let snapshots = settings.snapshots.as_ref().map(Snapshots::open);
        let mut actor = InsightsActor {
            insights: Insights::new(settings),
            tags: VmTags::default(),
            writer,
            status: InsightsStatus::default(),
            crashes: CrashRecord::default(),
            outlook: None,
            snapshots,
            fleet_totals: None,
        };
        if let Some(snapshots) = &mut actor.snapshots {
            snapshots.load_into(&mut actor.insights);
        }
        actor
    }

    /// Also forecasts and right-sizes every VM, from the same cycles.
    pub fn with_outlook(mut self, settings: OutlookSettings) -> Self {
        self.outlook = Some((self.saved_outlook(), settings));
        self
    }

    /// The outlook of the last snapshot, if there is one.
    fn saved_outlook(&mut self) -> Outlook {
        let json = self.snapshots.as_mut().and_then(Snapshots::load_outlook);
        json.map_or_else(Outlook::default, |json| Outlook::from_json(&json))
    }

    fn observe(&mut self, cycle: HostCycle) {
        self.observe_outlook(&cycle);
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

    /// Saves every VM's models on a blocking thread: the commit waits for the disk.
    fn save(&mut self) -> Option<impl ActorFuture<Self, Output = ()> + 'static> {
        let outlook = self.outlook.as_ref().map(|(outlook, _)| outlook.to_json());
        let (vms, save) = self
            .snapshots
            .as_mut()?
            .begin_save(&self.insights, outlook)?;
        let saved = actix_rt::task::spawn_blocking(save).into_actor(self);
        Some(saved.map(move |result, actor, _| {
            let result = result.unwrap_or(Err(SnapshotError::Panicked));
            if let Some(snapshots) = &mut actor.snapshots {
                snapshots.saved(vms, result);
            }
        }))
    }
}

impl InsightsActor {
    /// The outlook's hook: its state follows every cycle, its lines go at their own cadence.
    fn observe_outlook(&mut self, cycle: &HostCycle) {
        let Some((outlook, settings)) = &mut self.outlook else {
            return;
        };
        outlook.observe(cycle, settings);
        let Some(host) = outlook.hosts.get_mut(&cycle.uri) else {
            return;
        };
        let encoded = due_lines(host, settings, &mut self.tags);
        self.status.lines_produced += encoded.lines.len() as u64;
        self.status.unencodable_lines += encoded.unencodable;
        if !encoded.lines.is_empty() {
            self.writer.do_send(WriteLines(encoded.lines));
        }
    }
}

/// Every VM's recommendation and forecasts, and the totals per host and fleet; None when the
/// outlook is not configured.
#[derive(Message)]
#[rtype(result = "Option<Recommendations>")]
pub struct GetRecommendations(pub RecommendationsQuery);

impl Handler<GetRecommendations> for InsightsActor {
    type Result = MessageResult<GetRecommendations>;

    fn handle(&mut self, query: GetRecommendations, _: &mut Self::Context) -> Self::Result {
        let outlook = self.outlook.as_ref();
        MessageResult(outlook.map(|(outlook, s)| recommendations(outlook, &query.0, s.clock)))
    }
}

/// The fleet's right-sizing totals (the summary's tile); None when the outlook is not
/// configured.
#[derive(Message)]
#[rtype(result = "Option<Totals>")]
pub struct GetRightsizingTotals;

impl Handler<GetRightsizingTotals> for InsightsActor {
    type Result = MessageResult<GetRightsizingTotals>;

    fn handle(&mut self, _: GetRightsizingTotals, _: &mut Self::Context) -> Self::Result {
        let Some((outlook, settings)) = &self.outlook else {
            return MessageResult(None);
        };
        let cycles = self.status.cycles;
        if let Some((at, totals)) = &self.fleet_totals
            && *at == cycles
        {
            return MessageResult(Some(totals.clone()));
        }
        let query = RecommendationsQuery {
            sort: Some(SortBy::Name),
            limit: Some(0),
            ..RecommendationsQuery::default()
        };
        let totals = recommendations(outlook, &query, settings.clock).fleet;
        self.fleet_totals = Some((cycles, totals.clone()));
        MessageResult(Some(totals))
    }
}

/// One VM's recommendation and forecasts, by its host's URI and its UUID; None when the outlook
/// is not configured or does not know the VM yet.
#[derive(Message)]
#[rtype(result = "Option<VmRecommendation>")]
pub struct GetVmOutlook {
    pub uri: String,
    pub uuid: Uuid,
}

impl Handler<GetVmOutlook> for InsightsActor {
    type Result = MessageResult<GetVmOutlook>;

    fn handle(&mut self, query: GetVmOutlook, _: &mut Self::Context) -> Self::Result {
        let found = self.outlook.as_ref().and_then(|(outlook, settings)| {
            let host = outlook.hosts.get(query.uri.as_str())?;
            let vm = host.vms.get(&query.uuid.as_u128())?;
            Some(vm_recommendation(
                host,
                query.uuid.as_u128(),
                vm,
                settings.clock,
            ))
        });
        MessageResult(found)
    }
}

impl Actor for InsightsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.crashes.wait_out(ctx);
        if let Some(snapshots) = &self.snapshots {
            ctx.run_interval(snapshots.interval, |actor, ctx| {
                // A save still under way (a slow disk): this turn is skipped.
                if actor.snapshots.as_ref().is_some_and(|s| !s.saving())
                    && let Some(save) = actor.save()
                {
                    ctx.spawn(save);
                }
            });
        }
    }
}

impl Crashable for InsightsActor {
    crash_fields!(InsightsStatus);

    fn name(&self) -> String {
        "insights".into()
    }

    fn fill_in(&self, status: &mut InsightsStatus) {
        let counts = self.insights.restore_counts;
        status.snapshot = self.snapshots.as_ref().map(|s| s.status(counts));
    }
}

impl Supervised for InsightsActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // From the last snapshot, if there is one: what was learned since is lost.
        self.insights = Insights::new(self.insights.settings.clone());
        if self.outlook.is_some() {
            let saved = self.saved_outlook();
            if let Some((outlook, _)) = &mut self.outlook {
                *outlook = saved;
            }
        }
        if let Some(snapshots) = &mut self.snapshots {
            snapshots.load_into(&mut self.insights);
        }
        (self.status.vms_tracked, self.status.vms_trained) = (0, 0);
        self.status.vms_learning = 0;
        self.fleet_totals = None;
        self.status.restarts += 1;
    }
}

impl Handler<ObserveHost> for InsightsActor {
    type Result = ();

    fn handle(&mut self, ObserveHost(cycle): ObserveHost, ctx: &mut Self::Context) {
        guarded(self, ctx, |actor, _| actor.observe(cycle));
    }
}

impl Handler<SaveSnapshot> for InsightsActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: SaveSnapshot, _: &mut Self::Context) -> Self::Result {
        match self.save() {
            Some(save) => Box::pin(save),
            None => Box::pin(fut::ready(())),
        }
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

impl Handler<GetInsightsScrape> for InsightsActor {
    type Result = MessageResult<GetInsightsScrape>;

    fn handle(&mut self, _: GetInsightsScrape, _: &mut Self::Context) -> Self::Result {
        let mut scrape = self.insights.scrape();
        if let Some((outlook, settings)) = &self.outlook {
            scrape.outlook = outlook.scrape(settings.clock);
        }
        MessageResult(scrape)
    }
}

crash_handlers!(InsightsActor, GetInsightsStatus);
