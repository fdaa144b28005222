//! The extended groups of a cycle's domains, in `virDomainListGetStats` calls side by side.

use std::sync::Arc;
use std::time::Duration;

use virt::domain::Domain;

use super::LibvirtError;
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

/// What the stats calls of one cycle read.
#[derive(Default)]
pub struct StatsRead {
    pub stats: Vec<DomainStats>,
    /// The first call that failed or was left behind.
    pub failed: Option<LibvirtError>,
    /// A call was left behind: it still holds a request on the connection.
    pub left_behind: bool,
}

/// The groups of `domains` (all of one connection), with NOWAIT: a domain whose job lock is held
/// gives what it can rather than stalling the host's cycle. Read in `stats_threads` calls side by
/// side, each on a thread of `crew`, even one call: the time goes into each guest's QEMU
/// answering its monitor, guests answer side by side, and a QEMU that does not answer then holds
/// that thread, not the host's.
///
/// A call that fails, or that is still running once none has answered for `patience` (its thread
/// is dismissed: left behind), costs the domains it reads; the others are kept. A share no thread
/// could be started for is read on this one.
pub fn read(
    crew: &mut Crew,
    domains: Vec<Domain>,
    groups: StatsGroups,
    patience: Duration,
    heartbeat: &Heartbeat,
) -> StatsRead {
    let threads = stats_threads(domains.len());
    let shares = split(domains, threads);
    let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
    let jobs: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let heartbeat = heartbeat.clone();
            move || read_share(&share, groups, &heartbeat)
        })
        .collect();
    let parts = side_by_side(crew, jobs, patience, heartbeat);
    let read = gather(parts, &sizes, patience);
    crew.dismiss(&read.dismissed);
    StatsRead {
        stats: read.stats,
        failed: read.failed,
        left_behind: !read.dismissed.is_empty(),
    }
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

/// The rows of the `wanted` groups of the stats read, stamped now, of the domains `host` (at
/// `uri`) has.
pub fn sample(
    stats: &[DomainStats],
    uri: Arc<str>,
    host: Arc<str>,
    wanted: StatsGroups,
) -> StatsSample {
    let timestamp_ns = now_ns();
    StatsSample {
        uri,
        host,
        domains: stats
            .iter()
            .filter_map(|d| DomainStatsSample::from_bulk(d, timestamp_ns, wanted))
            .collect(),
    }
}

/// How many calls to read `domains` domains in.
pub(super) fn stats_threads(domains: usize) -> usize {
    (domains / STATS_DOMAINS_PER_THREAD).clamp(1, STATS_THREADS)
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

type Part = Result<Vec<DomainStats>, LibvirtError>;

/// The calls' parts put together: what they read, the first failure, the calls given up on.
struct Gathered {
    stats: Vec<DomainStats>,
    failed: Option<LibvirtError>,
    dismissed: Vec<usize>,
}

/// `parts` of calls that read `sizes` domains each, in order.
fn gather(parts: Vec<Option<Outcome<Part>>>, sizes: &[usize], patience: Duration) -> Gathered {
    let mut gathered = Gathered {
        stats: Vec::new(),
        failed: None,
        dismissed: Vec::new(),
    };
    for (index, part) in parts.into_iter().enumerate() {
        let error = match part {
            Some(Ok(Ok(part))) => {
                gathered.stats.extend(part);
                continue;
            }
            Some(Ok(Err(error))) => error,
            Some(Err(Failed::GaveUp)) => {
                gathered.dismissed.push(index);
                LibvirtError::StatsLeftBehind {
                    timeout: patience,
                    domains: sizes[index],
                }
            }
            Some(Err(Failed::Panicked)) => thread_failed("the thread reading it panicked"),
            Some(Err(Failed::Lost)) => thread_failed("the thread reading it ended"),
            None => continue,
        };
        gathered.failed.get_or_insert(error);
    }
    gathered
}

fn thread_failed(message: &str) -> LibvirtError {
    LibvirtError::Call {
        call: "virDomainListGetStats",
        message: message.into(),
    }
}

fn read_share(domains: &[Domain], groups: StatsGroups, heartbeat: &Heartbeat) -> Part {
    let flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
    let stats = heartbeat.call(|| bulk_stats::list_domain_stats(domains, groups, flags));
    // libvirt's error is per thread: `stats` holds the one this thread's call set.
    stats.map_err(|e| LibvirtError::call("virDomainListGetStats", e))
}

#[cfg(test)]
mod tests {
    use super::{split, stats_threads};

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
}
