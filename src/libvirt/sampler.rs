//! One blocking connection to one libvirt host, and the seed's fields of every domain on it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use virt::connect::Connect;
use virt::domain::Domain;

use super::bulk_stats::{self, DomainStats, StatsGroups, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT};
use super::crew::{Crew, Failed};
use super::{Cycle, LibvirtError, StatsCycle, event_loop, seed};
use crate::configuration::{CollectionConfig, HostConfig, Keepalive};
use crate::domain_filter::DomainFilter;
use crate::extended::{DomainStatsSample, StatsSample};
use crate::sample::{DomainSample, HostSample, NodeSample};

pub struct Sampler {
    uri: Arc<str>,
    remote: bool,
    name: Option<Arc<str>>,
    connection: Option<Connection>,
    /// More connections to spread a small host's seed cycle over (`seed::connections_for`).
    helpers: Vec<Connect>,
    seed_connections: usize,
    /// Domains the last seed cycle listed: how far the next one is spread.
    last_listed: usize,
    /// A helper failed to open, and that was logged: not again until one opens.
    helper_failure_logged: bool,
    filter: Arc<DomainFilter>,
    groups: StatsGroups,
    host_metrics: bool,
    /// Of remote connections: a ping after `interval_sec` without traffic, the connection closed
    /// (and any call blocked on it failed) after `count` unanswered ones.
    keepalive: Keepalive,
    /// Counts finished libvirt calls (and beats while this thread waits on its stats calls), so
    /// a watchdog can tell a slow cycle from a stuck call.
    progress: Arc<AtomicU64>,
    /// How long the stats calls may go without one of them answering before those still
    /// running are left behind (`libvirt_timeout`).
    stats_patience: Duration,
    /// The threads of the calls a cycle makes side by side.
    crew: Crew,
}

struct Connection {
    connect: Connect,
    host: Arc<str>,
    /// The host's CPUs and memory, which do not change while a connection lasts: read once.
    node_info: Option<(u32, u64)>,
}

impl Sampler {
    pub fn new(
        host: &HostConfig,
        collection: &CollectionConfig,
        libvirt_timeout: Duration,
        progress: Arc<AtomicU64>,
        stats_left_behind: Arc<AtomicUsize>,
    ) -> Self {
        let uri: Arc<str> = host.uri.as_str().into();
        Sampler {
            crew: Crew::new("libvirt calls", uri.clone(), stats_left_behind),
            uri,
            remote: is_remote(&host.uri),
            name: host.name.as_deref().map(Arc::from),
            connection: None,
            helpers: Vec::new(),
            seed_connections: collection.seed_connections,
            last_listed: 0,
            helper_failure_logged: false,
            filter: Arc::new(collection.filter.clone()),
            groups: collection.stats_groups,
            host_metrics: collection.host_metrics,
            keepalive: collection.keepalive,
            progress,
            stats_patience: libvirt_timeout,
        }
    }

    /// Reads every domain, active or not, spread over `seed::connections_for` connections (over
    /// one `with_stats`), and `with_stats` then the configured stats groups of the domains listed.
    /// A failed list on the main connection drops it, so the next cycle opens a new one.
    pub fn sample(&mut self, with_stats: bool) -> Result<Cycle, LibvirtError> {
        let started = Instant::now();
        let progress = self.progress.clone();
        let filter = self.filter.clone();
        let host_metrics = self.host_metrics;
        let mut connection = self.take_connection()?;
        // A full cycle's wall time is its stats calls' (≈ 20 ms on 13 guests, against 2–3 ms of
        // seed calls), so it reads the seed's fields over one connection, sparing a second list
        // and its handles; the helpers wait, open, for the next seed-only cycle.
        let helpers = if with_stats {
            Vec::new()
        } else {
            self.keep_helpers(seed::connections_for(self.last_listed, self.seed_connections) - 1);
            std::mem::take(&mut self.helpers)
        };
        let host = connection.host.clone();
        let read = if helpers.is_empty() {
            seed::list(&connection.connect, &filter, &progress).map(|domains| {
                let mut reading = seed::read_all(&domains, &progress);
                reading.listed = domains;
                (reading, Vec::new())
            })
        } else {
            seed::read_spread(
                &mut self.crew,
                &connection.connect,
                &helpers,
                &filter,
                &progress,
            )
        };
        let (mut reading, failed) = match read {
            Ok(read) => read,
            Err(e) => {
                close(connection.connect);
                helpers.into_iter().for_each(close);
                return Err(call_error("virConnectListAllDomains", e));
            }
        };
        let node =
            host_metrics.then(|| node(&mut connection, &progress, &reading.samples, started));
        self.connection = Some(connection);
        let duration = started.elapsed();
        self.helpers.extend(
            helpers
                .into_iter()
                .enumerate()
                .filter_map(|(index, helper)| match failed.contains(&index) {
                    true => {
                        close(helper);
                        None
                    }
                    false => Some(helper),
                }),
        );
        let listed = std::mem::take(&mut reading.listed);
        self.last_listed = listed.len();
        let stats = with_stats.then(|| self.stats(listed, host.clone()));
        Ok(Cycle {
            sample: HostSample {
                uri: self.uri.clone(),
                host,
                domains: reading.samples,
                node,
            },
            domain_errors: reading.domain_errors,
            vanished: reading.vanished,
            duration,
            stats,
        })
    }

    /// `count` helper connections, alive: dead ones closed, missing ones opened (one that cannot
    /// be opened leaves the cycle on fewer, and is tried again next cycle).
    fn keep_helpers(&mut self, count: usize) {
        let mut kept = Vec::with_capacity(count);
        for helper in std::mem::take(&mut self.helpers) {
            let alive = kept.len() < count && matches!(helper.is_alive(), Ok(true));
            self.progress.fetch_add(1, Ordering::Relaxed);
            match alive {
                true => kept.push(helper),
                false => close(helper),
            }
        }
        while kept.len() < count {
            match self.open_connect() {
                Ok(helper) => {
                    self.helper_failure_logged = false;
                    kept.push(helper);
                }
                Err(e) => {
                    if !std::mem::replace(&mut self.helper_failure_logged, true) {
                        tracing::warn!(uri = %self.uri, error = %e, "the seed cycle stays on fewer connections");
                    }
                    break;
                }
            }
        }
        self.helpers = kept;
    }

    /// The configured stats groups of `domains` (the cycle's own list, filtered: an excluded
    /// domain costs nothing), with NOWAIT: a domain whose job lock is held gives what it can
    /// rather than stalling the host's cycle. Read in up to `STATS_THREADS`
    /// `virDomainListGetStats` calls at once over the one connection: the time goes into each
    /// guest's QEMU answering its monitor, and guests answer side by side.
    ///
    /// A QEMU that stops answering (stopped, or stuck on its storage) holds the call reading it
    /// for as long as it does, with the domain's job: calls still running after
    /// `stats_patience` without any call answering are left behind, so that the host's
    /// collection goes on. Later cycles skip that domain's monitor (NOWAIT, its job is held)
    /// and read it over a new connection, since a client's requests in flight are limited.
    fn stats(&mut self, domains: Vec<Domain>, host: Arc<str>) -> StatsCycle {
        let started = Instant::now();
        let read = parallel_stats(
            &mut self.crew,
            domains,
            self.groups,
            self.stats_patience,
            &self.progress,
        );
        let duration = started.elapsed();
        if read.left_behind
            && let Some(connection) = self.connection.take()
        {
            close(connection.connect);
        }
        let timestamp_ns = now_ns();
        StatsCycle {
            sample: StatsSample {
                uri: self.uri.clone(),
                host,
                domains: read
                    .stats
                    .iter()
                    .filter_map(|d| DomainStatsSample::from_bulk(d, timestamp_ns))
                    .collect(),
            },
            duration,
            failed: read.failed,
        }
    }

    /// The open connection if it is still alive, else a new one.
    fn take_connection(&mut self) -> Result<Connection, LibvirtError> {
        let reusable = match self.connection.take() {
            Some(connection) => {
                let alive = connection.connect.is_alive();
                self.progress.fetch_add(1, Ordering::Relaxed);
                if matches!(alive, Ok(true)) {
                    Some(connection)
                } else {
                    close(connection.connect);
                    None
                }
            }
            None => None,
        };
        match reusable {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    /// A connection, read-only (collection never changes a domain), with keepalive if remote.
    fn open_connect(&self) -> Result<Connect, LibvirtError> {
        // Only keepalive needs libvirt's event loop, and it costs every call on every connection
        // opened after it (each call wakes the loop's thread twice): ≈ 20 % more CPU for a cycle
        // of `info` calls (examples/stats_paths.rs --event-loop). Local sockets go without.
        if self.remote {
            event_loop::ensure_running();
        }
        let connect =
            Connect::open_read_only(Some(&self.uri)).map_err(|e| self.connect_error(e))?;
        self.progress.fetch_add(1, Ordering::Relaxed);
        if self.remote {
            // Frees a call blocked on a peer that went silent, which no socket error may ever do.
            let keepalive =
                connect.set_keep_alive(self.keepalive.interval_sec, self.keepalive.count);
            self.progress.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = keepalive {
                let error = e.message();
                tracing::warn!(uri = %self.uri, error, "no keepalive on this connection");
            }
        }
        Ok(connect)
    }

    fn connect_error(&self, e: virt::error::Error) -> LibvirtError {
        LibvirtError::Connect {
            uri: self.uri.to_string(),
            message: e.message().to_owned(),
        }
    }

    fn open(&self) -> Result<Connection, LibvirtError> {
        let connect = self.open_connect()?;
        let host = match &self.name {
            Some(name) => name.clone(),
            None => {
                let hostname = connect.hostname();
                self.progress.fetch_add(1, Ordering::Relaxed);
                match hostname {
                    Ok(hostname) => hostname.into(),
                    Err(e) => {
                        close(connect);
                        return Err(self.connect_error(e));
                    }
                }
            }
        };
        Ok(Connection {
            connect,
            host,
            node_info: None,
        })
    }

    fn disconnect(&mut self) {
        if let Some(connection) = self.connection.take() {
            close(connection.connect);
        }
        self.helpers.drain(..).for_each(close);
    }
}

/// A URI naming another machine, or a transport other than a local socket (ssh, tls, tcp, ext…).
fn is_remote(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let transport = url.scheme().split_once('+').map(|(_, transport)| transport);
    url.host_str().is_some_and(|host| !host.is_empty())
        || transport.is_some_and(|transport| transport != "unix")
}

/// The most `virDomainListGetStats` calls one stats cycle has in flight. Measured on 12 KVM guests
/// (examples/stats_paths.rs, five groups): 1 → 73 ms, 2 → 53 ms, 3 → 46 ms, 4 → 45 ms, 6 → 47 ms,
/// with the same CPU in libvirtd; libvirtd also serves at most 5 calls of one client at once
/// (`max_client_requests`).
const STATS_THREADS: usize = 4;
/// A thread more only for at least this many more domains.
const STATS_DOMAINS_PER_THREAD: usize = 3;

/// How many calls to read `domains` domains in.
fn stats_threads(domains: usize) -> usize {
    (domains / STATS_DOMAINS_PER_THREAD).clamp(1, STATS_THREADS)
}

/// `items` in `parts` contiguous runs, as even as can be, in order (none empty, unless `items` is).
fn split<T>(items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let parts = parts.clamp(1, items.len().max(1));
    let (size, rest) = (items.len() / parts, items.len() % parts);
    let mut items = items.into_iter();
    (0..parts)
        .map(|i| items.by_ref().take(size + usize::from(i < rest)).collect())
        .collect()
}

/// What the stats calls of one cycle read.
struct StatsRead {
    stats: Vec<DomainStats>,
    /// The first call that failed or was left behind.
    failed: Option<LibvirtError>,
    left_behind: bool,
}

/// The groups of `domains` (all of one connection), in `stats_threads` calls side by side, each
/// on a thread of `crew`, even one call: a QEMU that does not answer then holds that thread,
/// not the host's. A call that fails, or that is still running once none has answered for
/// `patience` (its thread is dismissed), costs the domains it reads; the others are kept. A
/// share no thread could be started for is read on this one.
fn parallel_stats(
    crew: &mut Crew,
    domains: Vec<Domain>,
    groups: StatsGroups,
    patience: Duration,
    progress: &Arc<AtomicU64>,
) -> StatsRead {
    let threads = stats_threads(domains.len());
    let shares = split(domains, threads);
    let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
    let jobs: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let progress = progress.clone();
            move || read_stats(&share, groups, &progress)
        })
        .collect();
    let mut started = crew.start(jobs);
    let here: Vec<_> = std::mem::take(&mut started.left)
        .into_iter()
        .map(|(index, job)| (index, job()))
        .collect();
    // Waiting is not hanging: the host's watchdog is told so while the calls run.
    let mut parts = started.wait_at_most(patience, || {
        progress.fetch_add(1, Ordering::Relaxed);
    });
    for (index, part) in here {
        parts[index] = Some(Ok(part));
    }
    let (mut stats, mut failed, mut dismissed) = (Vec::new(), None, Vec::new());
    for (index, part) in parts.into_iter().enumerate() {
        let error = match part {
            Some(Ok(Ok(part))) => {
                stats.extend(part);
                continue;
            }
            Some(Ok(Err(error))) => error,
            Some(Err(Failed::GaveUp)) => {
                dismissed.push(index);
                LibvirtError::StatsLeftBehind {
                    timeout: patience,
                    domains: sizes[index],
                }
            }
            Some(Err(Failed::Panicked)) => thread_failed("the thread reading it panicked"),
            Some(Err(Failed::Lost)) => thread_failed("the thread reading it ended"),
            None => continue,
        };
        failed.get_or_insert(error);
    }
    crew.dismiss(&dismissed);
    StatsRead {
        stats,
        failed,
        left_behind: !dismissed.is_empty(),
    }
}

fn thread_failed(message: &str) -> LibvirtError {
    LibvirtError::Call {
        call: "virDomainListGetStats",
        message: message.into(),
    }
}

fn read_stats(
    domains: &[Domain],
    groups: StatsGroups,
    progress: &AtomicU64,
) -> Result<Vec<DomainStats>, LibvirtError> {
    let stats =
        bulk_stats::list_domain_stats(domains, groups, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    progress.fetch_add(1, Ordering::Relaxed);
    // libvirt's error is per thread: `stats` holds the one this thread's call set.
    stats.map_err(|e| call_error("virDomainListGetStats", e))
}

/// `host_metrics`: the host's free memory (and, once per connection, its CPUs and memory), then
/// the cycle's domains and duration. A driver that cannot say (the call fails) leaves its fields
/// out, and is asked again next cycle; that is not a collection error.
fn node(
    connection: &mut Connection,
    progress: &AtomicU64,
    domains: &[DomainSample],
    started: Instant,
) -> NodeSample {
    if connection.node_info.is_none() {
        let info = connection.connect.node_info();
        progress.fetch_add(1, Ordering::Relaxed);
        connection.node_info = info.ok().map(|info| (info.cpus, info.memory));
    }
    let free = connection.connect.free_memory();
    progress.fetch_add(1, Ordering::Relaxed);
    let mut node = NodeSample {
        cpus: connection.node_info.map(|(cpus, _)| cpus),
        memory_total_kb: connection.node_info.map(|(_, memory)| memory),
        memory_free_kb: free.ok().map(|bytes| bytes / 1024),
        domains: 0,
        domains_running: 0,
        domains_paused: 0,
        domains_stopped: 0,
        domains_other: 0,
        collection_duration_sec: started.elapsed().as_secs_f64(),
        timestamp_ns: now_ns(),
    };
    node.count(domains);
    node
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// `virt` panics when `virConnectClose` fails; a connection being thrown away is not worth a thread.
fn close(connect: Connect) {
    let _ = catch_unwind(AssertUnwindSafe(|| drop(connect)));
}

fn call_error(call: &'static str, e: virt::error::Error) -> LibvirtError {
    LibvirtError::Call {
        call,
        message: e.message().to_owned(),
    }
}

/// Now, in ns but to the whole µs: a reading is no finer (a libvirt call takes tens of µs at the
/// least), and whole µs keep each recent sample 1–2 bytes shorter (see `vms::recent`).
pub(super) fn now_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros())
        .ok()
        .and_then(|us| us.checked_mul(1000))
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{Sampler, is_remote, split, stats_threads};
    use crate::configuration::{CollectionConfig, HostConfig};
    use crate::domain_filter::DomainFilter;
    use crate::libvirt::bulk_stats::StatsGroups;
    use crate::libvirt::seed;

    /// A test-driver node of `n` domains, `vm-0`…, every third one shut off.
    fn node(n: usize) -> tempfile::NamedTempFile {
        let mut xml = String::from("<node>");
        for i in 0..n {
            let state = if i % 3 == 2 { "shutoff" } else { "running" };
            xml.push_str(&format!(
                "<domain type='test'><name>vm-{i}</name>\
                 <uuid>5a3e0000-0000-4000-8000-{i:012x}</uuid>\
                 <memory unit='KiB'>65536</memory><vcpu>1</vcpu>\
                 <os><type>hvm</type></os><devices/>\
                 <test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>{}</test:runstate>\
                 </domain>",
                if state == "running" { 1 } else { 5 }
            ));
        }
        xml.push_str("</node>");
        let file = tempfile::Builder::new().suffix(".xml").tempfile().unwrap();
        std::fs::write(file.path(), xml).unwrap();
        file
    }

    fn sampler(uri: &str, filter: DomainFilter) -> (Sampler, Arc<AtomicU64>) {
        virt::error::clear_error_callback();
        let progress = Arc::new(AtomicU64::new(0));
        let host = HostConfig {
            uri: uri.to_owned(),
            name: Some("node".into()),
        };
        let collection = CollectionConfig {
            stats_groups: StatsGroups::STATE | StatsGroups::CPU_TOTAL | StatsGroups::BLOCK,
            filter,
            ..CollectionConfig::default()
        };
        let timeout = std::time::Duration::from_secs(10);
        (
            Sampler::new(
                &host,
                &collection,
                timeout,
                progress.clone(),
                Default::default(),
            ),
            progress,
        )
    }

    #[test]
    fn stats_read_every_domain_once_over_several_threads() {
        for n in [0, 1, 5, 6, 12, 40] {
            let file = node(n);
            let uri = format!("test://{}", file.path().display());
            let (mut sampler, progress) = sampler(&uri, DomainFilter::default());
            let cycle = sampler.sample(true).unwrap().stats.unwrap();
            let expected = vm_names(n);
            assert_eq!(stats_names(&cycle), expected, "{n} domains");
            assert!(
                cycle
                    .sample
                    .domains
                    .iter()
                    .all(|d| d.uuid.to_string().starts_with("5a3e0000-"))
            );
            assert_eq!(&*cycle.sample.host, "node");
            // Open, one list for both the seed and the stats, an `info` per domain, the host's
            // two calls, one bulk call per thread (counted even when it has nothing to do).
            let calls = 2 + n as u64 + 2 + stats_threads(n) as u64;
            assert_eq!(progress.load(Ordering::Relaxed), calls, "{n} domains");
        }
    }

    /// `vm-0`…`vm-{n-1}`, sorted as names are.
    fn vm_names(n: usize) -> Vec<String> {
        let mut names: Vec<String> = (0..n).map(|i| format!("vm-{i}")).collect();
        names.sort();
        names
    }

    /// The names the extended groups were read of, sorted.
    fn stats_names(stats: &crate::libvirt::StatsCycle) -> Vec<String> {
        let mut names: Vec<String> = stats
            .sample
            .domains
            .iter()
            .map(|d| d.name.clone())
            .collect();
        names.sort();
        names
    }

    fn names(cycle: &crate::libvirt::Cycle) -> Vec<String> {
        let mut names: Vec<String> = cycle
            .sample
            .domains
            .iter()
            .map(|d| d.name.to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_small_hosts_seed_cycle_reads_every_domain_once_over_several_connections() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let expected = vm_names(12);
        for connections in [1, 2, 4] {
            let (mut sampler, progress) = sampler(&uri, DomainFilter::default());
            sampler.seed_connections = connections;
            let helpers = connections as u64 - 1;
            let first = sampler.sample(false).unwrap();
            assert_eq!(names(&first), expected);
            assert_eq!(
                sampler.helpers.len(),
                0,
                "the first cycle knows no count yet"
            );
            // Open, list, 12 × info, node info, free memory.
            assert_eq!(progress.load(Ordering::Relaxed), 16);
            for cycle in 1..4 {
                let before = progress.load(Ordering::Relaxed);
                let next = sampler.sample(false).unwrap();
                assert_eq!(names(&next), expected, "{connections}: cycle {cycle}");
                assert!(next.domain_errors.is_empty() && next.vanished == 0);
                assert_eq!(next.sample.node.unwrap().domains, 12);
                assert_eq!(sampler.helpers.len() as u64, helpers);
                // Is-alive checks, helpers opened once, a list on each connection, 12 × info,
                // free memory.
                let opened = if cycle == 1 { helpers } else { 0 };
                let alive_checks = 1 + helpers - opened;
                assert_eq!(
                    progress.load(Ordering::Relaxed) - before,
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
        let (mut sampler, progress) = sampler(&uri, DomainFilter::default());
        sampler.seed_connections = 2;
        sampler.sample(false).unwrap();
        sampler.sample(false).unwrap();
        assert_eq!(sampler.helpers.len(), 1);
        let before = progress.load(Ordering::Relaxed);
        let full = sampler.sample(true).unwrap();
        assert_eq!(names(&full), expected);
        assert_eq!(stats_names(&full.stats.unwrap()), expected);
        // Is-alive check, one list, 12 × info, free memory, the bulk calls: no helper touched.
        assert_eq!(
            progress.load(Ordering::Relaxed) - before,
            1 + 1 + 12 + 1 + stats_threads(12) as u64
        );
        assert_eq!(
            sampler.helpers.len(),
            1,
            "left open for the seed-only cycles"
        );
        let before = progress.load(Ordering::Relaxed);
        let seed_only = sampler.sample(false).unwrap();
        assert_eq!(names(&seed_only), expected);
        // Both is-alive checks, a list on each connection, 12 × info, free memory: none opened.
        assert_eq!(progress.load(Ordering::Relaxed) - before, 2 + 2 + 12 + 1);
    }

    #[test]
    fn a_large_or_filtered_host_stays_on_one_connection() {
        let file = node(seed::SPREAD_MAX_DOMAINS + 1);
        let uri = format!("test://{}", file.path().display());
        let (mut large, _) = sampler(&uri, DomainFilter::default());
        for _ in 0..2 {
            let cycle = large.sample(false).unwrap();
            assert_eq!(cycle.sample.domains.len(), seed::SPREAD_MAX_DOMAINS + 1);
            assert_eq!(large.helpers.len(), 0);
        }
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let filter = DomainFilter::new(&["vm-1*".into()], &[]).unwrap();
        let (mut sampler, _) = sampler(&uri, filter);
        for _ in 0..2 {
            let cycle = sampler.sample(false).unwrap();
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
        let expected = names(&sampler.sample(false).unwrap());
        assert_eq!(expected.len(), 12);
        std::fs::remove_file(&path).unwrap();
        for cycle in 0..3 {
            let next = sampler.sample(false).unwrap();
            assert_eq!(names(&next), expected, "cycle {cycle}");
            assert!(next.domain_errors.is_empty() && next.vanished == 0);
            assert_eq!(sampler.helpers.len(), 0);
            assert!(sampler.helper_failure_logged, "logged once, then quiet");
        }
        std::fs::write(&path, xml).unwrap();
        let next = sampler.sample(false).unwrap();
        assert_eq!(names(&next), expected);
        assert_eq!(sampler.helpers.len(), 1, "tried again, and opened");
        assert!(
            !sampler.helper_failure_logged,
            "a later failure is logged again"
        );
    }

    #[test]
    fn the_hosts_cpus_and_memory_are_read_once_per_connection() {
        let file = node(3);
        let uri = format!("test://{}", file.path().display());
        let (mut sampler, progress) = sampler(&uri, DomainFilter::default());
        let first = sampler.sample(false).unwrap();
        // Open, list, 3 × info, node info, free memory.
        assert_eq!(progress.load(Ordering::Relaxed), 7);
        let second = sampler.sample(false).unwrap();
        // Is-alive check, list, 3 × info, free memory.
        assert_eq!(progress.load(Ordering::Relaxed), 7 + 6);
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
        let cycle = sampler.sample(false).unwrap().sample;
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
        let (mut sampler, _) = sampler(&uri, DomainFilter::default());
        sampler.seed_connections = 2;
        let expected = vm_names(12);
        // Full cycles stay on one connection, the first (which knows no count yet) and later.
        for cycle in 0..2 {
            let full = sampler.sample(true).unwrap();
            assert_eq!(sampler.helpers.len(), 0, "cycle {cycle}");
            let stats = full.stats.as_ref().unwrap();
            assert_eq!(stats_names(stats), expected, "cycle {cycle}");
            assert_eq!(names(&full), expected, "cycle {cycle}");
        }
        assert!(sampler.sample(false).unwrap().stats.is_none());
    }

    #[test]
    fn stats_leave_filtered_domains_unread() {
        let file = node(12);
        let uri = format!("test://{}", file.path().display());
        let filter = DomainFilter::new(&["vm-1*".into()], &["vm-11".into()]).unwrap();
        let (mut sampler, _) = sampler(&uri, filter);
        let cycle = sampler.sample(true).unwrap().stats.unwrap();
        assert_eq!(stats_names(&cycle), ["vm-1", "vm-10"]);
    }

    #[test]
    fn thread_count_grows_with_domains_up_to_the_cap() {
        let threads: Vec<usize> = [0, 1, 5, 6, 8, 9, 12, 13, 1000]
            .into_iter()
            .map(stats_threads)
            .collect();
        assert_eq!(threads, [1, 1, 1, 2, 2, 3, 4, 4, 4]);
    }

    #[test]
    fn split_keeps_every_item_in_order_in_even_runs() {
        for len in 0..20 {
            for parts in 1..7 {
                let runs = split((0..len).collect::<Vec<_>>(), parts);
                assert_eq!(runs.concat(), (0..len).collect::<Vec<_>>());
                assert_eq!(runs.len(), parts.min(len).max(1), "{len} in {parts}");
                let sizes: Vec<usize> = runs.iter().map(Vec::len).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{len} in {parts}: {sizes:?}");
            }
        }
    }

    #[test]
    fn remote_uris_name_a_host_or_a_network_transport() {
        for uri in [
            "qemu+tcp://kvm2/system",
            "qemu+ssh://root@kvm2:2222/system?keyfile=/k",
            "qemu+tls://kvm2.example.com/system",
            "qemu://kvm2/system",
            "test+tcp://127.0.0.1:16509/default",
            "qemu+ext:///system?command=/opt/tunnel",
        ] {
            assert!(is_remote(uri), "{uri}");
        }
        for uri in [
            "qemu:///system",
            "qemu:///session",
            "test:///default",
            "test+unix:///tmp/node.xml?socket=/tmp/s/libvirt-sock",
            "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
            "not a uri",
        ] {
            assert!(!is_remote(uri), "{uri}");
        }
    }
}
