//! One host's collection cycle: the connection, the seed's fields of every domain, the host's own,
//! then the stats groups due of the domains the seed listed; the guest agents beside it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::Domain;

use super::block_stats::DiskBook;
use super::bridges::Bridges;
use super::bulk_stats::StatsGroups;
use super::cadence::Due;
use super::connection::{Connection, Connector, close};
use super::crew::Crew;
use super::dirty_rate;
use super::guest_lane::GuestLane;
use super::heartbeat::Heartbeat;
use super::pool::Helpers;
use super::seed::{self, Reading};
use super::{Cycle, LibvirtError, StatsCycle, stats};
use crate::configuration::{CollectionConfig, HostConfig};
use crate::domain_filter::DomainFilter;
use crate::extended::{StatsSample, VM_DIRTYRATE};
use crate::sample::HostSample;

pub struct Sampler {
    connector: Connector,
    connection: Option<Connection>,
    /// More connections to spread a small host's seed-only cycle over.
    helpers: Helpers,
    /// Domains the last cycle listed: how far the next one is spread.
    last_listed: usize,
    filter: Arc<DomainFilter>,
    host_metrics: bool,
    heartbeat: Heartbeat,
    /// How long the stats calls may go without one of them answering before those still
    /// running are left behind (`libvirt_timeout`).
    stats_patience: Duration,
    /// The threads of the calls a cycle makes side by side.
    crew: Crew,
    /// The guest agents' own thread and connection, when the guest group is on.
    guest_lane: Option<GuestLane>,
    /// The domains whose dirty rate is being measured, until it is read.
    dirty_rates: HashSet<Uuid>,
    /// The bridges of the domains' NICs, read from their XML.
    bridges: Bridges,
    /// The domains' disks, for the block counters read disk by disk between the sizes' cycles.
    disks: DiskBook,
    /// The last bulk calls' time per domain: how many domains the next ones read each.
    bulk_pace: Option<Duration>,
}

/// What a cycle's seed read, and the helpers it read over: those at `failed` could not list.
struct Seed {
    reading: Reading,
    helpers: Vec<Connect>,
    failed: Vec<usize>,
}

impl Sampler {
    pub fn new(
        host: &HostConfig,
        collection: &CollectionConfig,
        libvirt_timeout: Duration,
        heartbeat: Heartbeat,
        stats_calls_left_behind: Arc<AtomicUsize>,
    ) -> Self {
        let connector = Connector::new(
            host,
            collection.keepalive,
            heartbeat.clone(),
            collection.read_write(),
        );
        let guest_lane = collection.guest.then(|| {
            let left_behind = Arc::clone(&stats_calls_left_behind);
            GuestLane::new(host, collection, libvirt_timeout, left_behind)
        });
        Sampler {
            crew: Crew::new(
                "libvirt calls",
                connector.uri().clone(),
                stats_calls_left_behind,
            ),
            connector,
            connection: None,
            helpers: Helpers::new(collection.seed_connections),
            last_listed: 0,
            filter: Arc::new(collection.filter.clone()),
            host_metrics: collection.host_metrics,
            heartbeat,
            stats_patience: libvirt_timeout,
            guest_lane,
            dirty_rates: HashSet::new(),
            bridges: Bridges::default(),
            disks: DiskBook::default(),
            bulk_pace: None,
        }
    }

    /// Reads every domain, active or not, and what `due` says of those listed: its stats groups
    /// (in bulk calls), its dirty-rate starts, and a round of the guest agents (asked beside the
    /// cycle). A failed list on the main connection closes it, so the next cycle opens a new one.
    pub fn sample(&mut self, due: Due) -> Result<Cycle, LibvirtError> {
        let started = Instant::now();
        let with_stats = due.has_stats();
        let mut connection = self.connector.reuse_or_open(self.connection.take())?;
        let mut seed = match self.seed(&connection.connect, with_stats) {
            Ok(seed) => seed,
            Err(e) => {
                connection.close();
                return Err(e);
            }
        };
        let (connect, samples) = (&connection.connect, &seed.reading.samples);
        let node = self.host_metrics.then(|| {
            let node = &mut connection.node;
            node.sample(connect, &self.heartbeat, samples, started)
        });
        let host = connection.host.clone();
        self.connection = Some(connection);
        let duration = started.elapsed();
        self.helpers.put_back(seed.helpers, &seed.failed);
        let listed = std::mem::take(&mut seed.reading.listed);
        self.last_listed = listed.len();
        if due.guest {
            self.ask_guests(&listed, &host);
        }
        let stats = with_stats.then(|| self.stats(listed, host.clone(), due));
        let uri = self.connector.uri().clone();
        Ok(Cycle {
            sample: HostSample {
                uri,
                host,
                domains: seed.reading.samples,
                node,
            },
            domain_errors: seed.reading.domain_errors,
            vanished: seed.reading.vanished,
            duration,
            stats,
            guest: self.guest_lane.as_mut().and_then(GuestLane::answered),
        })
    }

    /// The seed's fields over the main connection `main` alone in a full cycle (its wall time is
    /// its stats calls', which read its list; the helpers wait, open, for the next seed-only
    /// cycle), else with the helpers this host's size calls for.
    fn seed(&mut self, main: &Connect, with_stats: bool) -> Result<Seed, LibvirtError> {
        let helpers = match with_stats {
            true => Vec::new(),
            false => self.helpers.take(self.last_listed, &self.connector),
        };
        let read = seed::read(
            &mut self.crew,
            main,
            &helpers,
            &self.filter,
            &self.heartbeat,
        );
        match read {
            Ok((reading, failed)) => Ok(Seed {
                reading,
                helpers,
                failed,
            }),
            Err(e) => {
                helpers.into_iter().for_each(close);
                Err(e)
            }
        }
    }

    /// A round of the guest agents of the running ones of `listed`, on their own thread.
    fn ask_guests(&mut self, listed: &[Domain], host: &Arc<str>) {
        let Some(lane) = &mut self.guest_lane else {
            return;
        };
        let running = listed
            .iter()
            .filter(|d| d.id().is_some())
            .filter_map(|d| d.uuid().ok())
            .collect();
        lane.ask(running, Arc::clone(host));
    }

    /// The groups `due` of `domains` (the cycle's own list, filtered: an excluded domain costs
    /// nothing), then the dirty-rate starts due. A call left behind still holds a request on the
    /// connection, and a client's requests in flight are limited: the next cycle opens a new one.
    fn stats(&mut self, domains: Vec<Domain>, host: Arc<str>, due: Due) -> StatsCycle {
        let started = Instant::now();
        let mut groups = due.groups;
        // libvirt gives KVM's per-vCPU statistics only with the vcpu group.
        if groups.contains(StatsGroups::VM) {
            groups |= StatsGroups::VCPU;
        }
        let to_start = due.dirty_rate_start.then(|| domains.clone());
        let for_bridges = due
            .groups
            .contains(StatsGroups::INTERFACE)
            .then(|| domains.clone());
        let patience = self.stats_patience;
        // No group at all would ask libvirt for every one.
        let read = match groups.is_empty() {
            true => stats::StatsRead::default(),
            false => {
                let calls = self.calls(domains, groups, due);
                stats::read(&mut self.crew, calls, patience, &self.heartbeat)
            }
        };
        self.bulk_pace = read.pace.or(self.bulk_pace);
        self.disks.learn(read.stats.iter().map(|read| &read.record));
        let mut duration = started.elapsed();
        let uri = self.connector.uri().clone();
        let mut sample = stats::sample(&read.stats, uri, host, due.groups);
        // After a call left behind, no more calls on this connection this cycle.
        if let Some(domains) = for_bridges.filter(|_| !read.left_behind) {
            self.bridges.fill(&domains, &mut sample, &self.heartbeat);
        }
        if due.groups.contains(StatsGroups::DIRTYRATE) {
            self.keep_dirty_rates_started(&mut sample);
        }
        let (mut failed, mut left_behind) = (read.failed, read.left_behind);
        if let Some(domains) = to_start {
            let starting = Instant::now();
            let started = dirty_rate::start_all(&mut self.crew, domains, patience, &self.heartbeat);
            duration += starting.elapsed();
            self.dirty_rates = started.domains;
            failed = failed.or(started.failed);
            left_behind |= started.left_behind;
        }
        if left_behind && let Some(connection) = self.connection.take() {
            connection.close();
        }
        StatsCycle {
            sample,
            duration,
            failed,
        }
    }

    /// The calls reading `groups` of `domains`: all in bulk calls when the disks' sizes are due
    /// (or the block group is not); else the block counters of running domains whose disks are
    /// known disk by disk, the bulk block group for the others but those still waiting on a call
    /// of theirs, and the other groups in bulk.
    fn calls(&mut self, domains: Vec<Domain>, groups: StatsGroups, due: Due) -> stats::Calls {
        let outstanding = self.disks.outstanding();
        let count = domains.len();
        let pace = self.bulk_pace;
        let all_bulk = |domains| stats::Calls {
            domains: count,
            bulk: vec![(domains, groups)],
            per_disk: Vec::new(),
            outstanding: Arc::clone(&outstanding),
            pace,
        };
        if !groups.contains(StatsGroups::BLOCK) || due.block_sizes {
            return all_bulk(domains);
        }
        let plan = self.disks.plan(domains);
        if plan.per_disk.is_empty() && plan.waiting.is_empty() {
            return all_bulk(plan.bulk);
        }
        let mut others = plan.waiting;
        others.extend(plan.per_disk.iter().map(|(domain, _)| domain.clone()));
        let mut bulk = vec![(others, groups.without(StatsGroups::BLOCK))];
        if !plan.bulk.is_empty() {
            bulk.push((plan.bulk, groups));
        }
        stats::Calls {
            domains: count,
            bulk,
            per_disk: plan.per_disk,
            outstanding,
            pace,
        }
    }

    /// Dirty rates only of the domains this sampler started measuring: another's rate (of a
    /// calculation started long ago, or by someone else) is no reading of this cadence.
    fn keep_dirty_rates_started(&mut self, sample: &mut StatsSample) {
        let started = std::mem::take(&mut self.dirty_rates);
        for domain in &mut sample.domains {
            if !started.contains(&domain.uuid) {
                domain.rows.retain(|row| row.measurement != VM_DIRTYRATE);
            }
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.close();
        }
        self.helpers.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Sampler;
    use crate::configuration::{CollectionConfig, HostConfig};
    use crate::domain_filter::DomainFilter;
    use crate::libvirt::StatsCycle;
    use crate::libvirt::bulk_stats::StatsGroups;
    use crate::libvirt::cadence::Due;
    use crate::libvirt::heartbeat::Heartbeat;
    use crate::libvirt::seed;
    use crate::libvirt::stats::{STAMP_LAG, stats_threads};
    use crate::libvirt::test_node::{TestDomain, node_xml};

    /// A test-driver node of `n` domains, `vm-0`…, every third one shut off.
    fn node(n: usize) -> tempfile::NamedTempFile {
        let domains: Vec<TestDomain> = (0..n)
            .map(|i| {
                let runstate = if i % 3 == 2 { 5 } else { 1 };
                TestDomain::new(&format!("vm-{i}"), runstate, i as u32)
            })
            .collect();
        let file = tempfile::Builder::new().suffix(".xml").tempfile().unwrap();
        std::fs::write(file.path(), node_xml(&domains)).unwrap();
        file
    }

    /// The groups the test samplers are set up with, all due.
    fn full() -> Due {
        Due {
            groups: StatsGroups::STATE | StatsGroups::CPU_TOTAL | StatsGroups::BLOCK,
            ..Due::default()
        }
    }

    fn sampler(uri: &str, filter: DomainFilter) -> (Sampler, Heartbeat) {
        spread_sampler(uri, filter, CollectionConfig::default().seed_connections)
    }

    /// A sampler that spreads a seed-only cycle over at most `seed_connections`.
    fn spread_sampler(
        uri: &str,
        filter: DomainFilter,
        seed_connections: usize,
    ) -> (Sampler, Heartbeat) {
        virt::error::clear_error_callback();
        let heartbeat = Heartbeat::default();
        let host = HostConfig {
            uri: uri.to_owned(),
            name: Some("node".into()),
        };
        let collection = CollectionConfig {
            stats_groups: StatsGroups::STATE | StatsGroups::CPU_TOTAL | StatsGroups::BLOCK,
            filter,
            seed_connections,
            ..CollectionConfig::default()
        };
        let timeout = std::time::Duration::from_secs(10);
        (
            Sampler::new(
                &host,
                &collection,
                timeout,
                heartbeat.clone(),
                Default::default(),
            ),
            heartbeat,
        )
    }

    #[test]
    fn stats_read_every_domain_once_over_several_threads() {
        for n in [0, 1, 5, 6, 12, 40] {
            let file = node(n);
            let uri = format!("test://{}", file.path().display());
            let (mut sampler, heartbeat) = sampler(&uri, DomainFilter::default());
            let cycle = sampler.sample(full()).unwrap().stats.unwrap();
            let expected = vm_names(n);
            assert_eq!(stats_names(&cycle), expected, "{n} domains");
            assert!(
                cycle
                    .sample
                    .domains
                    .iter()
                    .all(|d| d.uuid.to_string().starts_with("6f1a3c2e-"))
            );
            assert_eq!(&*cycle.sample.host, "node");
            // Open, one list for both the seed and the stats, an `info` per domain, the host's
            // two calls, a bulk call per thread.
            let calls = 2 + n as u64 + 2 + stats_threads(n).min(n) as u64;
            assert_eq!(heartbeat.beats(), calls, "{n} domains");
        }
    }

    #[test]
    fn domains_slow_to_read_are_read_one_a_call_each_stamped_when_its_call_returned() {
        let n = 5;
        let file = node(n);
        let uri = format!("test://{}", file.path().display());
        let (mut sampler, heartbeat) = sampler(&uri, DomainFilter::default());
        let stamps = |cycle: &StatsCycle| {
            let domains = &cycle.sample.domains;
            let mut stamps: Vec<i64> = domains.iter().map(|d| d.timestamp_ns).collect();
            stamps.sort_unstable();
            stamps.dedup();
            stamps.len()
        };
        // The test driver reads a domain in microseconds: one call for the thread's five.
        let fast = sampler.sample(full()).unwrap().stats.unwrap();
        assert_eq!(stamps(&fast), 1);
        assert!(sampler.bulk_pace.is_some_and(|pace| pace < STAMP_LAG));
        // Read at a loaded host's pace, each domain has a call, and a stamp, of its own.
        sampler.bulk_pace = Some(STAMP_LAG);
        let before = heartbeat.beats();
        let slow = sampler.sample(full()).unwrap().stats.unwrap();
        assert_eq!(stamps(&slow), n);
        // Is-alive check, one list, an `info` each, free memory, a bulk call each.
        assert_eq!(heartbeat.beats() - before, 1 + 1 + n as u64 + 1 + n as u64);
    }

    /// `vm-0`…`vm-{n-1}`, sorted as names are.
    fn vm_names(n: usize) -> Vec<String> {
        let mut names: Vec<String> = (0..n).map(|i| format!("vm-{i}")).collect();
        names.sort();
        names
    }

    fn sorted<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut names: Vec<String> = names.map(str::to_string).collect();
        names.sort();
        names
    }

    /// The names the extended groups were read of, sorted.
    fn stats_names(stats: &crate::libvirt::StatsCycle) -> Vec<String> {
        sorted(stats.sample.domains.iter().map(|d| d.name.as_str()))
    }

    fn names(cycle: &crate::libvirt::Cycle) -> Vec<String> {
        sorted(cycle.sample.domains.iter().map(|d| d.name.as_ref()))
    }

    #[test]
    fn a_small_hosts_seed_cycle_reads_every_domain_once_over_several_connections() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let expected = vm_names(12);
        for connections in [1, 2, 4] {
            let (mut sampler, heartbeat) =
                spread_sampler(&uri, DomainFilter::default(), connections);
            let helpers = connections as u64 - 1;
            let first = sampler.sample(Due::default()).unwrap();
            assert_eq!(names(&first), expected);
            assert_eq!(
                sampler.helpers.len(),
                0,
                "the first cycle knows no count yet"
            );
            // Open, list, 12 × info, node info, free memory.
            assert_eq!(heartbeat.beats(), 16);
            for cycle in 1..4 {
                let before = heartbeat.beats();
                let next = sampler.sample(Due::default()).unwrap();
                assert_eq!(names(&next), expected, "{connections}: cycle {cycle}");
                assert!(next.domain_errors.is_empty() && next.vanished == 0);
                assert_eq!(next.sample.node.unwrap().domains, 12);
                assert_eq!(sampler.helpers.len() as u64, helpers);
                // Is-alive checks, helpers opened once, a list on each connection, 12 × info,
                // free memory.
                let opened = if cycle == 1 { helpers } else { 0 };
                let alive_checks = 1 + helpers - opened;
                assert_eq!(
                    heartbeat.beats() - before,
                    alive_checks + opened + (1 + helpers) + 12 + 1,
                    "{connections}: cycle {cycle}"
                );
            }
        }
    }

    #[test]
    fn a_full_cycle_reads_the_seed_over_one_connection_and_keeps_the_helpers_open() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let expected = vm_names(12);
        let (mut sampler, heartbeat) = spread_sampler(&uri, DomainFilter::default(), 2);
        sampler.sample(Due::default()).unwrap();
        sampler.sample(Due::default()).unwrap();
        assert_eq!(sampler.helpers.len(), 1);
        let before = heartbeat.beats();
        let full = sampler.sample(full()).unwrap();
        assert_eq!(names(&full), expected);
        assert_eq!(stats_names(&full.stats.unwrap()), expected);
        // Is-alive check, one list, 12 × info, free memory, the bulk calls: no helper touched.
        assert_eq!(
            heartbeat.beats() - before,
            1 + 1 + 12 + 1 + stats_threads(12) as u64
        );
        assert_eq!(
            sampler.helpers.len(),
            1,
            "left open for the seed-only cycles"
        );
        let before = heartbeat.beats();
        let seed_only = sampler.sample(Due::default()).unwrap();
        assert_eq!(names(&seed_only), expected);
        // Both is-alive checks, a list on each connection, 12 × info, free memory: none opened.
        assert_eq!(heartbeat.beats() - before, 2 + 2 + 12 + 1);
    }

    #[test]
    fn a_large_or_filtered_host_stays_on_one_connection() {
        let file = node(seed::SPREAD_MAX_DOMAINS + 1);
        let uri = format!("test://{}", file.path().display());
        let (mut large, _) = sampler(&uri, DomainFilter::default());
        for _ in 0..2 {
            let cycle = large.sample(Due::default()).unwrap();
            assert_eq!(cycle.sample.domains.len(), seed::SPREAD_MAX_DOMAINS + 1);
            assert_eq!(large.helpers.len(), 0);
        }
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let filter = DomainFilter::new(&["vm-1*".into()], &[]).unwrap();
        let (mut sampler, _) = sampler(&uri, filter);
        for _ in 0..2 {
            let cycle = sampler.sample(Due::default()).unwrap();
            assert_eq!(names(&cycle), ["vm-1", "vm-10", "vm-11"]);
            assert_eq!(sampler.helpers.len(), 0, "3 domains are one connection's");
        }
    }

    #[test]
    fn a_helper_that_cannot_be_opened_leaves_the_cycle_whole_on_fewer_connections() {
        // The test driver reads a node file at each open: with the file gone, the open main
        // connection goes on, and a new one fails.
        let file = node(12);
        let path = file.path().to_owned();
        let xml = std::fs::read(&path).unwrap();
        let uri = format!("test://{}", path.display());
        let (mut sampler, _) = sampler(&uri, DomainFilter::default());
        let expected = names(&sampler.sample(Due::default()).unwrap());
        assert_eq!(expected.len(), 12);
        std::fs::remove_file(&path).unwrap();
        for cycle in 0..3 {
            let next = sampler.sample(Due::default()).unwrap();
            assert_eq!(names(&next), expected, "cycle {cycle}");
            assert!(next.domain_errors.is_empty() && next.vanished == 0);
            assert_eq!(sampler.helpers.len(), 0);
            assert!(sampler.helpers.failure_logged(), "logged once, then quiet");
        }
        std::fs::write(&path, xml).unwrap();
        let next = sampler.sample(Due::default()).unwrap();
        assert_eq!(names(&next), expected);
        assert_eq!(sampler.helpers.len(), 1, "tried again, and opened");
        assert!(
            !sampler.helpers.failure_logged(),
            "a later failure is logged again"
        );
    }

    #[test]
    fn the_hosts_cpus_and_memory_are_read_once_per_connection() {
        let file = node(3);
        let uri = format!("test://{}", file.path().display());
        let (mut sampler, heartbeat) = sampler(&uri, DomainFilter::default());
        let first = sampler.sample(Due::default()).unwrap();
        // Open, list, 3 × info, node info, free memory.
        assert_eq!(heartbeat.beats(), 7);
        let second = sampler.sample(Due::default()).unwrap();
        // Is-alive check, list, 3 × info, free memory.
        assert_eq!(heartbeat.beats(), 7 + 6);
        let (first, second) = (first.sample.node.unwrap(), second.sample.node.unwrap());
        assert!(first.cpus.is_some_and(|cpus| cpus > 0), "{first:?}");
        assert!(first.memory_total_kb.is_some_and(|kb| kb > 0), "{first:?}");
        assert_eq!(
            (first.cpus, first.memory_total_kb),
            (second.cpus, second.memory_total_kb)
        );
    }

    #[test]
    fn samples_are_timed_to_the_whole_microsecond() {
        let file = node(4);
        let uri = format!("test://{}", file.path().display());
        let (mut sampler, _) = sampler(&uri, DomainFilter::default());
        let cycle = sampler.sample(Due::default()).unwrap().sample;
        let node = cycle.node.unwrap();
        let times: Vec<i64> = cycle.domains.iter().map(|d| d.timestamp_ns).collect();
        assert_eq!(times.len(), 4);
        for t in times.iter().chain([&node.timestamp_ns]) {
            assert!(*t > 1_700_000_000_000_000_000 && t % 1000 == 0, "{t}");
        }
    }

    #[test]
    fn a_cycle_with_stats_reads_them_of_the_domains_its_seed_listed() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let (mut sampler, _) = spread_sampler(&uri, DomainFilter::default(), 2);
        let expected = vm_names(12);
        // Full cycles stay on one connection, the first (which knows no count yet) and later.
        for cycle in 0..2 {
            let full = sampler.sample(full()).unwrap();
            assert_eq!(sampler.helpers.len(), 0, "cycle {cycle}");
            let stats = full.stats.as_ref().unwrap();
            assert_eq!(stats_names(stats), expected, "cycle {cycle}");
            assert_eq!(names(&full), expected, "cycle {cycle}");
        }
        assert!(sampler.sample(Due::default()).unwrap().stats.is_none());
    }

    #[test]
    fn stats_leave_filtered_domains_unread() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let filter = DomainFilter::new(&["vm-1*".into()], &["vm-11".into()]).unwrap();
        let (mut sampler, _) = sampler(&uri, filter);
        let cycle = sampler.sample(full()).unwrap().stats.unwrap();
        assert_eq!(stats_names(&cycle), ["vm-1", "vm-10"]);
    }

    #[test]
    fn the_guest_agents_are_asked_beside_the_cycle_over_a_connection_of_their_own() {
        // The test driver has no guest agents: each running domain's call fails, as a silent
        // agent's, with the reason kept; the shut-off ones are not asked.
        let file = node(6);
        let uri = format!("test://{}", file.path().display());
        virt::error::clear_error_callback();
        let heartbeat = Heartbeat::default();
        let host = HostConfig {
            uri,
            name: Some("node".into()),
        };
        let collection = CollectionConfig {
            guest: true,
            seed_connections: 1,
            ..CollectionConfig::default()
        };
        let timeout = std::time::Duration::from_secs(10);
        let mut sampler = Sampler::new(
            &host,
            &collection,
            timeout,
            heartbeat.clone(),
            Default::default(),
        );
        let guest_only = Due {
            guest: true,
            ..Due::default()
        };
        let first = sampler.sample(guest_only).unwrap();
        assert!(first.stats.is_none(), "no bulk groups, no bulk call");
        // Open, list, 6 × info, the host's two calls: none of the agents' calls, which go over
        // the lane's own connection.
        assert_eq!(heartbeat.beats(), 2 + 6 + 2);
        // The round's answers come with the first cycle after it ended; a round due meanwhile
        // is skipped.
        let mut answered = first.guest;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while answered.is_none() {
            assert!(std::time::Instant::now() < deadline, "no answers");
            std::thread::sleep(std::time::Duration::from_millis(20));
            answered = sampler.sample(Due::default()).unwrap().guest;
        }
        let (guest, _) = answered.unwrap();
        assert_eq!((guest.answering, guest.silent, guest.absent), (0, 4, 0));
        let failed = guest.failed.unwrap();
        assert!(
            failed.contains("virDomainAgentSetResponseTimeout"),
            "{failed}"
        );
        assert_eq!(guest.skipped_rounds, 0);
        assert_eq!(&*guest.host, "node");
    }
}
