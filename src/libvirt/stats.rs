//! The extended groups of a cycle's domains, in `virDomainListGetStats` calls side by side, and
//! the block counters of those whose disks are known, disk by disk.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;
use virt::domain::Domain;

use super::LibvirtError;
use super::block_stats::{self, Disk, Outstanding};
use super::bulk_stats::{self, DomainStats, StatsGroups, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT};
use super::clock::now_ns;
use super::crew::{Crew, Failed, Outcome};
use super::heartbeat::Heartbeat;
use crate::extended::{DomainStatsSample, StatsSample};

/// The most `virDomainListGetStats` calls one stats cycle has in flight: more gain nothing, and
/// libvirtd serves at most 5 calls of one client at once (`max_client_requests`).
const STATS_THREADS: usize = 4;
/// A thread more only for at least this many more domains.
const STATS_DOMAINS_PER_THREAD: usize = 3;
/// How late a domain's stamp may be, at the last cycle's pace: a bulk call reads no more domains
/// than take this long. A record is stamped when its call returns, so a domain read first is
/// stamped after the others' reads, and its rates are off by as much over the cycle's span.
pub(super) const STAMP_LAG: Duration = Duration::from_millis(10);

/// What the stats calls of one cycle read.
#[derive(Default)]
pub struct StatsRead {
    /// One record per domain read (a domain's bulk record and its disk-by-disk one merged).
    pub stats: Vec<Read>,
    /// The first call that failed or was left behind.
    pub failed: Option<LibvirtError>,
    /// A call was left behind: it still holds a request on the connection.
    pub left_behind: bool,
    /// The bulk calls' time per domain read, when one answered.
    pub pace: Option<Duration>,
}

/// The calls of one cycle: bulk calls, each list of domains split over the threads, then the
/// block counters of `per_disk`, disk by disk, from a queue the threads share.
pub struct Calls {
    /// The cycle's domains: how many threads.
    pub domains: usize,
    pub bulk: Vec<(Vec<Domain>, StatsGroups)>,
    pub per_disk: Vec<(Domain, Arc<[Disk]>)>,
    pub outstanding: Outstanding,
    /// The last cycle's `StatsRead::pace`: how many domains a bulk call reads.
    pub pace: Option<Duration>,
}

/// A domain's record, stamped when the call that read it returned: a call's records are not
/// stamped when the cycle's last call returns, as the calls of a loaded host can take a second,
/// and a rate over a span that does not match its counters is wrong by as much.
pub struct Read {
    pub at_ns: i64,
    pub record: DomainStats,
    /// Of a bulk call, not disk by disk.
    bulk: bool,
}

/// What the threads put together: a thread left behind still holds it, and adds what it reads
/// once it returns to nobody.
#[derive(Default)]
struct Sink {
    stats: Vec<Read>,
    failed: Option<LibvirtError>,
    /// Per thread, the domains of its call in flight.
    in_flight: Vec<usize>,
    /// The time of the bulk calls that answered, and the records they gave.
    bulk_time: Duration,
    bulk_domains: u32,
}

type Shared<T> = Arc<Mutex<T>>;

/// One call of a cycle's: a bulk call of some domains, or one domain's disks.
enum Job {
    Bulk(Vec<Domain>, StatsGroups),
    Disks(Domain, Arc<[Disk]>),
}

impl Job {
    fn domains(&self) -> usize {
        match self {
            Job::Bulk(domains, _) => domains.len(),
            Job::Disks(..) => 1,
        }
    }

    fn read(
        &self,
        heartbeat: &Heartbeat,
        outstanding: &Outstanding,
    ) -> Result<Vec<DomainStats>, LibvirtError> {
        match self {
            Job::Bulk(domains, groups) => read_share(domains, *groups, heartbeat),
            Job::Disks(domain, disks) => read_disks(domain, disks, heartbeat, outstanding),
        }
    }
}

fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `calls` (all of one connection), the bulk ones with NOWAIT: a domain whose job lock is held
/// gives what it can rather than stalling the host's cycle. Read in `stats_threads` threads of
/// `crew` side by side, even one: the time goes into each guest's QEMU answering its monitor,
/// guests answer side by side, and a QEMU that does not answer then holds that thread, not the
/// host's.
///
/// The bulk calls, cut to `call_size` domains, then the disks, from a queue the threads share.
///
/// A call that fails, or that is still running once none has answered for `patience` (its thread
/// is dismissed: left behind), costs the domains it reads; the others are kept. A thread that
/// could not be started runs on this one.
pub fn read(crew: &mut Crew, calls: Calls, patience: Duration, heartbeat: &Heartbeat) -> StatsRead {
    let threads = stats_threads(calls.domains);
    let mut queue: VecDeque<Job> = VecDeque::new();
    // No group at all would ask libvirt for every one.
    let bulk = calls
        .bulk
        .into_iter()
        .filter(|(d, g)| !d.is_empty() && !g.is_empty());
    for (domains, groups) in bulk {
        let size = call_size(domains.len(), threads, calls.pace);
        let parts = domains.len().div_ceil(size);
        queue.extend(
            split(domains, parts)
                .into_iter()
                .map(|d| Job::Bulk(d, groups)),
        );
    }
    let disk_by_disk = !calls.per_disk.is_empty();
    queue.extend(
        calls
            .per_disk
            .into_iter()
            .map(|(d, disks)| Job::Disks(d, disks)),
    );
    let queue: Shared<VecDeque<Job>> = Arc::new(Mutex::new(queue));
    let sink: Shared<Sink> = Arc::new(Mutex::new(Sink {
        in_flight: vec![0; threads],
        ..Sink::default()
    }));
    let jobs: Vec<_> = (0..threads)
        .map(|thread| {
            let (heartbeat, queue, sink) = (heartbeat.clone(), queue.clone(), sink.clone());
            let outstanding = calls.outstanding.clone();
            move || {
                let next = || lock(&queue).pop_front();
                while let Some(job) = next() {
                    let started = Instant::now();
                    let read = in_flight(&sink, thread, job.domains(), || {
                        job.read(&heartbeat, &outstanding)
                    });
                    let bulk = matches!(job, Job::Bulk(..)).then(|| started.elapsed());
                    keep(&sink, read, bulk);
                }
            }
        })
        .collect();
    let parts = side_by_side(crew, jobs, patience, heartbeat);
    // Domains no thread took (all of them held): not read this cycle.
    let queue = std::mem::take(&mut *lock(&queue));
    let mut untaken: usize = queue.iter().map(Job::domains).sum();
    let mut sink = std::mem::take(&mut *lock(&sink));
    let mut dismissed = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        let error = match part {
            Some(Ok(())) | None => continue,
            Some(Err(Failed::GaveUp)) => {
                dismissed.push(index);
                LibvirtError::StatsLeftBehind {
                    timeout: patience,
                    domains: sink.in_flight[index] + std::mem::take(&mut untaken),
                }
            }
            Some(Err(Failed::Panicked)) => thread_failed("the thread reading it panicked"),
            Some(Err(Failed::Lost)) => thread_failed("the thread reading it ended"),
        };
        sink.failed.get_or_insert(error);
    }
    crew.dismiss(&dismissed);
    StatsRead {
        // Only a domain read disk by disk has two records.
        stats: match disk_by_disk {
            true => merged(sink.stats),
            false => sink.stats,
        },
        failed: sink.failed,
        left_behind: !dismissed.is_empty(),
        pace: (sink.bulk_domains > 0).then(|| sink.bulk_time / sink.bulk_domains),
    }
}

/// `call`, with its `domains` counted as thread `thread`'s in flight while it runs.
fn in_flight<T>(sink: &Mutex<Sink>, thread: usize, domains: usize, call: impl FnOnce() -> T) -> T {
    let set = |domains| {
        // Gone once the cycle has taken what was read: a thread left behind returns to nobody.
        if let Some(slot) = lock(sink).in_flight.get_mut(thread) {
            *slot = domains;
        }
    };
    set(domains);
    let read = call();
    set(0);
    read
}

/// What a call read, stamped now; `bulk`: how long it took, for a bulk call.
fn keep(sink: &Mutex<Sink>, read: Result<Vec<DomainStats>, LibvirtError>, bulk: Option<Duration>) {
    let at_ns = now_ns();
    let mut sink = lock(sink);
    match read {
        Ok(stats) => {
            if let Some(took) = bulk {
                sink.bulk_time += took;
                sink.bulk_domains += stats.len() as u32;
            }
            sink.stats.extend(stats.into_iter().map(|record| Read {
                at_ns,
                record,
                bulk: bulk.is_some(),
            }))
        }
        Err(error) => {
            sink.failed.get_or_insert(error);
        }
    }
}

/// One domain's block counters disk by disk; if a disk's call fails (one unplugged, the domain
/// stopped or gone since the list), its block group in the bulk call instead, which lists its
/// disks as they are now.
fn read_disks(
    domain: &Domain,
    disks: &[Disk],
    heartbeat: &Heartbeat,
    outstanding: &Outstanding,
) -> Result<Vec<DomainStats>, LibvirtError> {
    match block_stats::read_domain(domain, disks, heartbeat, outstanding) {
        Ok(read) => Ok(vec![read]),
        Err(_) => read_share(std::slice::from_ref(domain), StatsGroups::BLOCK, heartbeat),
    }
}

/// One record per domain: the parameters of its records put together, in the order read,
/// stamped as its bulk call's, whose counters (CPU, vCPUs, memory, interfaces) move fastest.
fn merged(stats: Vec<Read>) -> Vec<Read> {
    let mut at: HashMap<Uuid, usize> = HashMap::with_capacity(stats.len());
    let mut out: Vec<Read> = Vec::with_capacity(stats.len());
    for read in stats {
        match read.record.uuid.and_then(|uuid| at.get(&uuid)) {
            Some(&i) => {
                let kept = &mut out[i];
                if read.bulk && !kept.bulk {
                    (kept.at_ns, kept.bulk) = (read.at_ns, true);
                }
                kept.record.params.extend(read.record.params);
            }
            None => {
                if let Some(uuid) = read.record.uuid {
                    at.insert(uuid, out.len());
                }
                out.push(read);
            }
        }
    }
    out
}

/// Each of `jobs` on a thread of `crew` (on this one, those no thread could be started for),
/// waited for until none has returned for `patience`: `None` for those still running then.
pub(super) fn side_by_side<T, F>(
    crew: &mut Crew,
    jobs: Vec<F>,
    patience: Duration,
    heartbeat: &Heartbeat,
) -> Vec<Option<Outcome<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let mut started = crew.start(jobs);
    let here: Vec<_> = std::mem::take(&mut started.left)
        .into_iter()
        .map(|(index, job)| (index, job()))
        .collect();
    // Waiting is not hanging: the host's watchdog is told so while the calls run.
    let mut parts = started.wait_at_most(patience, || heartbeat.beat());
    for (index, part) in here {
        parts[index] = Some(Ok(part));
    }
    parts
}

/// The rows of the `wanted` groups of the stats read, each domain's stamped when read, of the
/// domains `host` (at `uri`) has.
pub fn sample(stats: &[Read], uri: Arc<str>, host: Arc<str>, wanted: StatsGroups) -> StatsSample {
    StatsSample {
        uri,
        host,
        domains: stats
            .iter()
            .filter_map(|read| DomainStatsSample::from_bulk(&read.record, read.at_ns, wanted))
            .collect(),
    }
}

/// How many calls to read `domains` domains in.
pub(super) fn stats_threads(domains: usize) -> usize {
    (domains / STATS_DOMAINS_PER_THREAD).clamp(1, STATS_THREADS)
}

/// How many of `domains` one bulk call reads in `threads` threads: a thread's share, or fewer
/// when the last cycle's `pace` says they take longer than `STAMP_LAG`; at least one.
fn call_size(domains: usize, threads: usize, pace: Option<Duration>) -> usize {
    let share = domains.div_ceil(threads.max(1)).max(1);
    let within = |pace: Duration| STAMP_LAG.as_nanos() / pace.as_nanos().max(1);
    pace.map_or(share, |pace| within(pace).min(share as u128) as usize)
        .max(1)
}

/// `items` in `parts` contiguous runs, as even as can be, in order (none empty, unless `items` is).
pub(super) fn split<T>(items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let parts = parts.clamp(1, items.len().max(1));
    let (size, rest) = (items.len() / parts, items.len() % parts);
    let mut items = items.into_iter();
    (0..parts)
        .map(|i| items.by_ref().take(size + usize::from(i < rest)).collect())
        .collect()
}

fn thread_failed(message: &str) -> LibvirtError {
    LibvirtError::Call {
        call: "virDomainListGetStats",
        message: message.into(),
    }
}

fn read_share(
    domains: &[Domain],
    groups: StatsGroups,
    heartbeat: &Heartbeat,
) -> Result<Vec<DomainStats>, LibvirtError> {
    let flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
    let stats = heartbeat.call(|| bulk_stats::list_domain_stats(domains, groups, flags));
    // libvirt's error is per thread: `stats` holds the one this thread's call set.
    stats.map_err(|e| LibvirtError::call("virDomainListGetStats", e))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::bulk_stats::StatValue;
    use std::time::Duration;

    use super::{DomainStats, Read, Sink, call_size, keep, merged, split, stats_threads};

    fn kept_apart(sink: &Mutex<Sink>, params: &[(&str, StatValue)], bulk: bool) {
        let took = bulk.then_some(Duration::ZERO);
        keep(sink, Ok(vec![DomainStats::of(7, params)]), took);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    #[test]
    fn a_domain_is_stamped_when_its_bulk_call_returned_not_when_its_disks_did() {
        let sink = Mutex::new(Sink::default());
        // Its disks read by another thread before its bulk call returned, and after.
        kept_apart(&sink, &[("block.0.rd.reqs", StatValue::ULLong(1))], false);
        kept_apart(&sink, &[("cpu.time", StatValue::ULLong(2))], true);
        kept_apart(&sink, &[("block.1.rd.reqs", StatValue::ULLong(3))], false);
        let stats = std::mem::take(&mut sink.lock().unwrap().stats);
        let bulk_at = stats[1].at_ns;
        assert!(stats[0].at_ns < bulk_at && bulk_at < stats[2].at_ns);
        let merged: Vec<Read> = merged(stats);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].at_ns, bulk_at);
        assert_eq!(merged[0].record.params.len(), 3);
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
    fn a_call_reads_a_threads_share_or_fewer_when_they_were_slow_to_read() {
        let ms = |ms: u64| Some(Duration::from_millis(ms));
        let sizes: Vec<usize> = [
            (13, 4, None),
            (0, 1, None),
            (13, 4, Some(Duration::from_micros(100))),
            (1000, 4, Some(Duration::from_micros(100))),
            (13, 4, ms(2)),
            (13, 4, ms(10)),
            (13, 4, ms(500)),
            (5, 1, Some(Duration::ZERO)),
        ]
        .into_iter()
        .map(|(domains, threads, pace)| call_size(domains, threads, pace))
        .collect();
        assert_eq!(sizes, [4, 1, 4, 100, 4, 1, 1, 5]);
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
}
