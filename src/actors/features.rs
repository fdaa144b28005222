//! Records each host's cycle in the VM table (`vms::VmTable`: every VM's latest and recent
//! samples, and what the next features and rates derive from), encodes what changed
//! (`influx::encode`), and hands the batch to the writer. Answers the live VM queries of the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::crash::{CrashRecord, Crashable, crash_fields, crash_handlers, guarded};
use super::insights::ObserveHost;
use super::messages::{
    AnswerVms, ForgetHost, GetCatalog, GetFeatureStatus, HostCollected, LookupVm, SnapshotVms,
    WriteLines,
};
use super::status::FeatureStatus;
use crate::extended::StatsSample;
use crate::guest::{GuestCycle, InfoLog};
use crate::influx::encode::{Encoded, Skipped, encode_changes};
use crate::influx::line_protocol::VmTags;
use crate::insights::HostCycle;
use crate::insights::forecast::fill::GuestFill;
use crate::insights::signals::VmReading;
use crate::sample::HostSample;
use crate::telemetry::LogThrottle;
use crate::vms::{Catalog, Catalogs, VmTable};

pub struct FeatureActor {
    vms: VmTable,
    /// The tags of the VM being encoded, reused from VM to VM.
    tags: VmTags,
    /// When each VM's `vm_guest_info` was last written.
    guest_info: InfoLog,
    writer: Recipient<WriteLines>,
    /// Fed each host's cycle, when `insights` is on.
    insights: Option<Recipient<ObserveHost>>,
    status: FeatureStatus,
    crashes: CrashRecord,
    /// A summary of the unencodable lines, every ten minutes at most (each VM's are logged once).
    unencodable_summary: LogThrottle,
    /// Where the API finds the table's generation and its catalog.
    catalogs: Arc<Catalogs>,
}

const UNENCODABLE_SUMMARY_PERIOD: Duration = Duration::from_secs(600);

impl FeatureActor {
    /// `recent_samples`: how many samples per VM the API can show without InfluxDB.
    pub fn new(writer: Recipient<WriteLines>, recent_samples: usize) -> Self {
        FeatureActor {
            vms: VmTable::new(recent_samples),
            tags: VmTags::default(),
            guest_info: InfoLog::default(),
            writer,
            insights: None,
            status: FeatureStatus::default(),
            crashes: CrashRecord::default(),
            unencodable_summary: LogThrottle::new(UNENCODABLE_SUMMARY_PERIOD),
            catalogs: Arc::default(),
        }
    }

    /// Hands every host's cycle to the insights actor too.
    pub fn with_insights(mut self, insights: Recipient<ObserveHost>) -> Self {
        self.insights = Some(insights);
        self
    }

    /// Shares the table's generation and catalog with the API through `catalogs`.
    pub fn with_catalogs(self, catalogs: Arc<Catalogs>) -> Self {
        FeatureActor { catalogs, ..self }
    }

    /// One cycle's lines, in one batch for the writer (one commit to its spool).
    fn record(
        &mut self,
        sample: HostSample,
        stats: Option<StatsSample>,
        guest: Option<GuestCycle>,
    ) {
        let uri = Arc::clone(&sample.uri);
        let cycle = self.insights.is_some().then(|| HostCycle {
            uri: Arc::clone(&sample.uri),
            host: Arc::clone(&sample.host),
            cpus: sample.node.as_ref().and_then(|n| n.cpus),
            memory_total_kb: sample.node.as_ref().and_then(|n| n.memory_total_kb),
            timestamp_ns: cycle_time(&sample),
            vms: Vec::with_capacity(sample.domains.len()),
            guests: guest
                .iter()
                .flat_map(|g| &g.samples)
                .map(GuestFill::from_sample)
                .collect(),
        });
        let changes = self.vms.record(sample, stats);
        self.catalogs.advance();
        let mut encoded = encode_changes(changes, &mut self.tags);
        if let Some(guest) = guest {
            encoded.guests(&mut self.tags, &uri, &guest, &mut self.guest_info);
            self.vms.record_guests(&uri, guest.samples);
        }
        let Encoded {
            lines,
            unencodable,
            skipped,
        } = encoded;
        self.status.lines_produced += lines.len() as u64;
        self.status.unencodable_lines += unencodable;
        self.status.vms_tracked = self.vms.len();
        if !lines.is_empty() {
            self.writer.do_send(WriteLines(lines));
        }
        if unencodable > 0 {
            self.log_unencodable(&uri, skipped, unencodable);
        }
        if let (Some(insights), Some(mut cycle)) = (&self.insights, cycle) {
            let vms = self.vms.host_vms(&uri);
            cycle.vms.extend(
                vms.map(|(latest, features, stats)| VmReading::new(latest, features, stats)),
            );
            insights.do_send(ObserveHost(cycle));
        }
    }

    /// Each VM's first unencodable lines, then a summary every ten minutes at most: a VM whose
    /// name line protocol cannot carry fails every cycle, and would otherwise log every cycle.
    fn log_unencodable(&mut self, uri: &str, skipped: Vec<Skipped>, lines: u64) {
        for Skipped { vm, error, lines } in skipped {
            if self.vms.first_unencodable(uri, vm.as_ref()) {
                tracing::error!(
                    %error,
                    lines,
                    "lines not written: this VM's cannot be encoded (logged once per VM; every \
                     cycle's are counted in features.unencodable_lines)"
                );
            }
        }
        if let Some(lines) = self.unencodable_summary.count(lines, Instant::now()) {
            tracing::warn!(
                lines,
                total = self.status.unencodable_lines,
                "unencodable lines not written since the last summary (at most one summary \
                 every ten minutes)"
            );
        }
    }
}

/// When a cycle was read: the host's own reading, else its latest VM's, else now.
fn cycle_time(sample: &HostSample) -> i64 {
    let latest = sample.domains.iter().map(|d| d.timestamp_ns).max();
    sample
        .node
        .as_ref()
        .map(|n| n.timestamp_ns)
        .or(latest)
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0))
}

impl Actor for FeatureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.crashes.wait_out(ctx);
    }
}

impl Crashable for FeatureActor {
    crash_fields!(FeatureStatus);

    fn name(&self) -> String {
        "features".into()
    }
}

impl Supervised for FeatureActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // Only the previous samples are lost: the next cycle writes no features, as after
        // start-up. The live view stays, so the API keeps answering.
        self.vms.forget_baselines();
        self.catalogs.advance();
        self.status.restarts += 1;
    }
}

impl Handler<HostCollected> for FeatureActor {
    type Result = ();

    fn handle(&mut self, cycle: HostCollected, ctx: &mut Self::Context) {
        guarded(self, ctx, |actor, _| {
            actor.record(cycle.sample, cycle.stats, cycle.guest)
        });
    }
}

impl Handler<ForgetHost> for FeatureActor {
    type Result = ();

    /// Its VMs leave the API and `/metrics` here: the replica now collecting it shows them.
    fn handle(&mut self, ForgetHost(uri): ForgetHost, _: &mut Self::Context) {
        if self.vms.forget_host(&uri) {
            self.catalogs.advance();
        }
    }
}

impl Handler<GetCatalog> for FeatureActor {
    type Result = MessageResult<GetCatalog>;

    fn handle(&mut self, _: GetCatalog, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.catalog())
    }
}

impl Handler<AnswerVms> for FeatureActor {
    type Result = MessageResult<AnswerVms>;

    fn handle(&mut self, ask: AnswerVms, _: &mut Self::Context) -> Self::Result {
        let catalog = self.catalog();
        let answer = self.vms.answer(&catalog, &ask.query, ask.encoding);
        MessageResult((catalog, answer))
    }
}

impl FeatureActor {
    /// The catalog of the table's current generation, built if not yet.
    fn catalog(&self) -> Arc<Catalog> {
        // Requests that missed the same generation queue here: only the first builds it.
        if let Some(catalog) = self.catalogs.current() {
            return catalog;
        }
        let generation = self.catalogs.generation();
        let catalog: Arc<Catalog> = Arc::new(self.vms.catalog(self.catalogs.epoch, generation));
        self.catalogs.publish(catalog.clone());
        catalog
    }
}

impl Handler<SnapshotVms> for FeatureActor {
    type Result = MessageResult<SnapshotVms>;

    fn handle(&mut self, _: SnapshotVms, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.vms.snapshot())
    }
}

impl Handler<LookupVm> for FeatureActor {
    type Result = MessageResult<LookupVm>;

    fn handle(&mut self, lookup: LookupVm, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.vms.lookup(&lookup.selector, lookup.host.as_deref()))
    }
}

crash_handlers!(FeatureActor, GetFeatureStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended::DomainStatsSample;
    use crate::influx::line_protocol::Lines;
    use crate::sample::{DomainSample, VmState};
    use influxdb_line_protocol::{FieldValue, parse_lines};
    use uuid::Uuid;

    /// Collects what the feature actor sends to the writer.
    #[derive(Default)]
    struct Sink(Vec<Lines>);
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<WriteLines> for Sink {
        type Result = ();
        fn handle(&mut self, WriteLines(lines): WriteLines, _: &mut Self::Context) {
            self.0.push(lines);
        }
    }
    #[derive(Message)]
    #[rtype(result = "Vec<Lines>")]
    struct Take;
    impl Handler<Take> for Sink {
        type Result = MessageResult<Take>;
        fn handle(&mut self, _: Take, _: &mut Self::Context) -> Self::Result {
            MessageResult(std::mem::take(&mut self.0))
        }
    }

    fn vm(n: u128, timestamp_ns: i64, memory_used_kb: u64) -> DomainSample {
        DomainSample {
            id: Some(7),
            name: format!("vm-{n}").into(),
            uuid: Uuid::from_u128(n),
            state: VmState::Running,
            cpu_count: 1,
            memory_max_kb: 1 << 20,
            memory_used_kb,
            cputime_ns: 1,
            timestamp_ns,
        }
    }

    fn host(uri: &str, domains: Vec<DomainSample>) -> HostCollected {
        with_stats(uri, domains, None)
    }

    fn with_stats(
        uri: &str,
        domains: Vec<DomainSample>,
        stats: Option<StatsSample>,
    ) -> HostCollected {
        HostCollected {
            sample: HostSample {
                uri: uri.into(),
                host: "h".into(),
                domains,
                node: None,
            },
            stats,
            guest: None,
        }
    }

    /// (measurement, uuid, memory_rate_kb_per_sec) of every line sent.
    fn summary(batches: Vec<Lines>) -> Vec<(String, String, Option<f64>)> {
        let text: String = batches
            .iter()
            .map(|lines| std::str::from_utf8(lines.as_bytes()).unwrap())
            .collect();
        parse_lines(&text)
            .map(|line| {
                let line = line.unwrap();
                let rate = match line.field_value("memory_rate_kb_per_sec") {
                    Some(FieldValue::F64(rate)) => Some(*rate),
                    _ => None,
                };
                (
                    line.series.measurement.to_string(),
                    line.tag_value("uuid").unwrap().to_string(),
                    rate,
                )
            })
            .collect()
    }

    #[actix_rt::test]
    async fn features_need_a_previous_sample_and_follow_memory() {
        let sink = Sink::default().start();
        let features = FeatureActor::new(sink.clone().recipient(), 10).start();
        features
            .send(host("a", vec![vm(1, 0, 1000)]))
            .await
            .unwrap();
        features
            .send(host("a", vec![vm(1, 2_000_000_000, 3000)]))
            .await
            .unwrap();
        let lines = summary(sink.send(Take).await.unwrap());
        assert_eq!(
            lines,
            vec![
                ("vm_metrics".into(), Uuid::from_u128(1).to_string(), None),
                ("vm_metrics".into(), Uuid::from_u128(1).to_string(), None),
                (
                    "vm_features".into(),
                    Uuid::from_u128(1).to_string(),
                    Some(1000.0)
                ),
            ]
        );
    }

    #[actix_rt::test]
    async fn hosts_never_mix_and_vanished_vms_are_forgotten() {
        let sink = Sink::default().start();
        let features = FeatureActor::new(sink.clone().recipient(), 10).start();
        // The same UUID on two hosts: each keeps its own previous sample.
        features.send(host("a", vec![vm(1, 0, 100)])).await.unwrap();
        features.send(host("b", vec![vm(1, 0, 900)])).await.unwrap();
        features
            .send(host("a", vec![vm(1, 1_000_000_000, 200)]))
            .await
            .unwrap();
        // VM 1 leaves host b, then comes back: no features from the stale sample.
        features.send(host("b", vec![])).await.unwrap();
        features
            .send(host("b", vec![vm(1, 3_000_000_000, 100)]))
            .await
            .unwrap();
        let lines = summary(sink.send(Take).await.unwrap());
        let features_lines: Vec<_> = lines.iter().filter(|l| l.0 == "vm_features").collect();
        assert_eq!(
            features_lines,
            vec![&(
                "vm_features".into(),
                Uuid::from_u128(1).to_string(),
                Some(100.0)
            )]
        );
        let status = features.send(GetFeatureStatus).await.unwrap();
        assert_eq!(status.vms_tracked, 2);
        assert_eq!(status.lines_produced, 5);
    }

    #[actix_rt::test]
    async fn an_unencodable_vm_is_counted_and_the_others_still_flow() {
        let sink = Sink::default().start();
        let features = FeatureActor::new(sink.clone().recipient(), 10).start();
        let mut bad = vm(2, 0, 1);
        bad.name = "tab\tname".into();
        features
            .send(host("a", vec![vm(1, 0, 1), bad]))
            .await
            .unwrap();
        let lines = summary(sink.send(Take).await.unwrap());
        assert_eq!(
            lines,
            vec![("vm_metrics".into(), Uuid::from_u128(1).to_string(), None)]
        );
        let status = features.send(GetFeatureStatus).await.unwrap();
        assert_eq!(status.unencodable_lines, 1);
    }

    fn disk_stats(uri: &str, n: u128, t_sec: i64, read_bytes: u64) -> StatsSample {
        use crate::extended::StatsRow;
        StatsSample {
            uri: uri.into(),
            host: "h".into(),
            domains: vec![DomainStatsSample {
                derived: Vec::new(),
                carried: Vec::new(),
                uuid: Uuid::from_u128(n),
                name: format!("vm-{n}"),
                timestamp_ns: t_sec * 1_000_000_000,
                vcpus: None,
                rows: vec![StatsRow {
                    measurement: "vm_disk",
                    key: Some(("device", "vda".into())),
                    source: None,
                    counters: vec![("read_bytes", read_bytes)],
                }],
            }],
        }
    }

    #[actix_rt::test]
    async fn only_domains_with_extended_rows_keep_a_baseline() {
        let sink = Sink::default().start();
        let mut features = FeatureActor::new(sink.recipient(), 10);
        let mut sample = disk_stats("a", 1, 0, 100);
        let mut bare = sample.domains[0].clone();
        bare.uuid = Uuid::from_u128(2);
        bare.rows.clear();
        sample.domains.push(bare);
        let HostCollected { sample: seed, .. } = host("a", vec![]);
        features.record(seed, Some(sample), None);
        let kept = features.vms.stats_baselines("a");
        assert_eq!(kept, [Uuid::from_u128(1)]);
    }

    #[actix_rt::test]
    async fn a_vm_missing_from_one_stats_sample_keeps_its_baseline_while_on_the_host() {
        let sink = Sink::default().start();
        let features = FeatureActor::new(sink.clone().recipient(), 10).start();
        let cycle = |seed, stats| with_stats("a", seed, Some(stats));
        let unread = || StatsSample {
            domains: Vec::new(),
            ..disk_stats("a", 1, 0, 0)
        };
        for message in [
            cycle(vec![vm(1, 0, 1)], disk_stats("a", 1, 0, 100)),
            // The call reading it failed: no rows, the VM still listed.
            cycle(vec![vm(1, 2, 1)], unread()),
            // The rate spans both intervals.
            cycle(vec![vm(1, 4, 1)], disk_stats("a", 1, 4, 500)),
            // Gone from the host (and from its stats): its baseline goes too.
            cycle(vec![], unread()),
            cycle(vec![vm(1, 8, 1)], disk_stats("a", 1, 8, 900)),
        ] {
            features.send(message).await.unwrap();
        }
        let text: String = sink
            .send(Take)
            .await
            .unwrap()
            .iter()
            .map(|lines| std::str::from_utf8(lines.as_bytes()).unwrap().to_owned())
            .collect();
        let rates: Vec<_> = parse_lines(&text)
            .map(Result::unwrap)
            .filter(|l| l.series.measurement.as_str() == "vm_disk")
            .map(|l| match l.field_value("read_bytes_per_sec") {
                Some(FieldValue::F64(rate)) => Some(*rate),
                _ => None,
            })
            .collect();
        assert_eq!(rates, [None, Some(100.0), None]);
    }

    #[actix_rt::test]
    async fn extended_rows_carry_the_vm_tags_and_rates_from_the_previous_stats_sample() {
        let sink = Sink::default().start();
        let features = FeatureActor::new(sink.clone().recipient(), 10).start();
        let cycle = |uri: &str, seed: Vec<DomainSample>, stats| with_stats(uri, seed, Some(stats));
        for message in [
            // Its seed fields unread: no VMID to tag with, so no line, but a baseline.
            cycle("a", vec![], disk_stats("a", 1, 0, 100)),
            cycle("a", vec![vm(1, 2, 1)], disk_stats("a", 1, 2, 300)),
            // A reset: no rate for that pair, the counter still written.
            cycle("a", vec![vm(1, 4, 1)], disk_stats("a", 1, 4, 50)),
            // Another host's VM of the same UUID has no baseline of its own.
            cycle("b", vec![vm(1, 6, 1)], disk_stats("b", 1, 6, 900)),
        ] {
            features.send(message).await.unwrap();
        }
        let batches = sink.send(Take).await.unwrap();
        // One batch a cycle with lines: the seed's and the extended ones together.
        assert_eq!(batches.len(), 3);
        let text: String = batches
            .iter()
            .map(|lines| std::str::from_utf8(lines.as_bytes()).unwrap())
            .collect();
        let disk: Vec<_> = parse_lines(&text)
            .map(Result::unwrap)
            .filter(|l| l.series.measurement.as_str() == "vm_disk")
            .map(|l| {
                assert_eq!(l.tag_value("VMID").unwrap().as_str(), "7");
                assert_eq!(l.tag_value("device").unwrap().as_str(), "vda");
                let rate = match l.field_value("read_bytes_per_sec") {
                    Some(FieldValue::F64(r)) => Some(*r),
                    _ => None,
                };
                (l.field_value("read_bytes").cloned(), rate)
            })
            .collect();
        assert_eq!(
            disk,
            vec![
                (Some(FieldValue::I64(300)), Some(100.0)),
                (Some(FieldValue::I64(50)), None),
                (Some(FieldValue::I64(900)), None),
            ]
        );
    }

    /// A handler that panics, as a bug would.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Boom;
    impl Handler<Boom> for FeatureActor {
        type Result = ();
        fn handle(&mut self, _: Boom, ctx: &mut Self::Context) {
            guarded(self, ctx, |_, _| panic!("a bug"));
        }
    }

    #[actix_rt::test]
    async fn a_panic_restarts_the_actor_after_a_growing_backoff_and_is_counted() {
        let sink = Sink::default().start();
        let features = Supervisor::start(move |_| FeatureActor::new(sink.recipient(), 10));
        features.send(host("a", vec![vm(1, 0, 1)])).await.unwrap();
        let mut waits = Vec::new();
        for _ in 0..2 {
            let started = std::time::Instant::now();
            features.do_send(Boom);
            let status = features.send(GetFeatureStatus).await.unwrap();
            waits.push(started.elapsed());
            assert!(status.panics >= 1);
        }
        let status = features.send(GetFeatureStatus).await.unwrap();
        assert_eq!((status.panics, status.restarts), (2, 2));
        // 100 ms after the first panic, 200 ms after the second: the backoff grows.
        assert!(
            waits[0] >= std::time::Duration::from_millis(90),
            "{waits:?}"
        );
        assert!(
            waits[1] >= std::time::Duration::from_millis(190),
            "{waits:?}"
        );
        // It still works, and the live view survived.
        features
            .send(host("a", vec![vm(1, 1_000_000_000, 1)]))
            .await
            .unwrap();
        assert_eq!(
            features.send(GetFeatureStatus).await.unwrap().vms_tracked,
            1
        );
    }
}
