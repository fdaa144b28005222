//! The seed's fields of a host's domains (list, then one `virDomainGetInfo` each), over one
//! connection or, on a small host, spread over a few side by side.
//!
//! A seed cycle on a small host is a chain of round trips through libvirtd, each mostly waiting
//! for a thread to wake on the other side. Threads on one connection share its one RPC socket;
//! connections of their own each carry a chain of their own. A domain belongs to the connection
//! that listed it, so each connection lists, then reads its share.

use std::collections::BTreeMap;
use std::sync::{Arc, mpsc};

use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

use super::LibvirtError;
use super::clock::now_ns;
use super::crew::Crew;
use super::heartbeat::Heartbeat;
use crate::domain_filter::DomainFilter;
use crate::sample::{DomainSample, VmState};

/// Above this many domains a seed cycle stays on one connection: there each call's own work, not
/// waiting, sets the time, and every connection would list them all.
pub const SPREAD_MAX_DOMAINS: usize = 64;
/// A connection more only for at least this many more domains.
const DOMAINS_PER_CONNECTION: usize = 3;

/// How many connections a seed cycle of `domains` domains is spread over, at most `configured`.
pub fn connections_for(domains: usize, configured: usize) -> usize {
    if domains > SPREAD_MAX_DOMAINS {
        return 1;
    }
    (domains / DOMAINS_PER_CONNECTION).clamp(1, configured.max(1))
}

/// What one seed cycle read, over however many connections.
#[derive(Debug, Default)]
pub struct Reading {
    pub samples: Vec<DomainSample>,
    /// "name: message" of each domain that could not be read.
    pub domain_errors: Vec<String>,
    /// Listed, then gone by the time they were read.
    pub vanished: usize,
    /// What the main connection listed (after the filter): a stats call in the same cycle reads
    /// these, rather than listing again.
    pub listed: Vec<Domain>,
}

impl Reading {
    fn absorb(&mut self, other: Reading) {
        self.samples.extend(other.samples);
        self.domain_errors.extend(other.domain_errors);
        self.vanished += other.vanished;
    }
}

/// Lists and reads over `main` alone, or with `helpers` (`read_spread`) when there are any. Fails
/// only when `main` cannot list; returns the indexes of the helpers that could not, to be closed.
pub fn read(
    crew: &mut Crew,
    main: &Connect,
    helpers: &[Connect],
    filter: &Arc<DomainFilter>,
    heartbeat: &Heartbeat,
) -> Result<(Reading, Vec<usize>), LibvirtError> {
    let read = if helpers.is_empty() {
        list(main, filter, heartbeat).map(|domains| {
            let mut reading = read_all(&domains, heartbeat);
            reading.listed = domains;
            (reading, Vec::new())
        })
    } else {
        read_spread(crew, main, helpers, filter, heartbeat)
    };
    read.map_err(|e| LibvirtError::call("virConnectListAllDomains", e))
}

/// Every (filtered) domain of `connect`, in one call. The name is cached client-side: filtering
/// costs no round trip.
fn list(
    connect: &Connect,
    filter: &DomainFilter,
    heartbeat: &Heartbeat,
) -> Result<Vec<Domain>, virt::error::Error> {
    let mut domains = heartbeat.call(|| connect.list_all_domains(0))?;
    if !filter.is_open() {
        domains.retain(|domain| domain.name().is_ok_and(|name| filter.allows(&name)));
    }
    Ok(domains)
}

/// The seed's fields of each of `domains`, one `info` call each.
fn read_all(domains: &[Domain], heartbeat: &Heartbeat) -> Reading {
    let (mut reading, failed) = read_each(domains, heartbeat);
    reading
        .domain_errors
        .extend(failed.iter().map(|(domain, e)| domain_error(domain, e)));
    reading
}

/// As `read_all`, with the domains that could not be read (other than gone) and why.
fn read_each<'d>(
    domains: &'d [Domain],
    heartbeat: &Heartbeat,
) -> (Reading, Vec<(&'d Domain, virt::error::Error)>) {
    let mut reading = Reading {
        samples: Vec::with_capacity(domains.len()),
        ..Reading::default()
    };
    let mut failed = Vec::new();
    for domain in domains {
        match read_domain(domain, heartbeat) {
            Ok(sample) => reading.samples.push(sample),
            // It went away between listing and reading: not an error.
            Err(e) if vanished(&e) => reading.vanished += 1,
            Err(e) => failed.push((domain, e)),
        }
    }
    (reading, failed)
}

fn vanished(e: &virt::error::Error) -> bool {
    e.code().is_known_and(|c| c == ErrorNumber::NoDomain)
}

fn domain_error(domain: &Domain, e: &virt::error::Error) -> String {
    format!("{}: {}", domain.name().unwrap_or_default(), e.message())
}

/// What a helper could not read: each domain's UUID and the error.
type Unread = Vec<(Uuid, String)>;

/// A helper's share read, and what it could not read, to be read again over the main connection.
fn read_share(share: &[Domain], heartbeat: &Heartbeat) -> (Reading, Unread) {
    let (mut reading, failed) = read_each(share, heartbeat);
    let mut unread = Unread::new();
    for (domain, e) in failed {
        let error = domain_error(domain, &e);
        match domain.uuid() {
            Ok(uuid) => unread.push((uuid, error)),
            Err(_) => reading.domain_errors.push(error),
        }
    }
    (reading, unread)
}

/// Reads again over `main` what a helper could not (its connection dropped mid-cycle, say): a
/// lookup and an `info` each. A domain `main` cannot read either keeps the helper's error.
fn read_again(main: &Connect, unread: Unread, reading: &mut Reading, heartbeat: &Heartbeat) {
    for (uuid, error) in unread {
        let domain = heartbeat.call(|| main.lookup_domain_by_uuid(uuid));
        match domain.and_then(|domain| read_domain(&domain, heartbeat)) {
            Ok(sample) => reading.samples.push(sample),
            Err(e) if vanished(&e) => reading.vanished += 1,
            Err(_) => reading.domain_errors.push(error),
        }
    }
}

/// Lists and reads over `main` and `helpers` side by side: each lists its own domains, then
/// reads its share, every domain by exactly one connection that listed it. Fails only when
/// `main` cannot list; a helper that cannot is left out of the cycle, and its index returned so
/// that it is closed. What a helper listed but could not read is read again over `main`.
fn read_spread(
    crew: &mut Crew,
    main: &Connect,
    helpers: &[Connect],
    filter: &Arc<DomainFilter>,
    heartbeat: &Heartbeat,
) -> Result<(Reading, Vec<usize>), virt::error::Error> {
    let (listed_tx, listed_rx) = mpsc::channel();
    let mut share_txs = Vec::new();
    let jobs: Vec<_> = helpers
        .iter()
        .enumerate()
        .map(|(index, helper)| {
            let (share_tx, share_rx) = mpsc::channel::<Vec<Domain>>();
            share_txs.push((index, share_tx));
            let (helper, filter, heartbeat) = (helper.clone(), filter.clone(), heartbeat.clone());
            let listed_tx = listed_tx.clone();
            move || {
                let listed = list(&helper, &filter, &heartbeat).ok();
                let _ = listed_tx.send((index, listed));
                // Main counts the lists in until every sender is gone.
                drop(listed_tx);
                share_rx
                    .recv()
                    .map(|share| read_share(&share, &heartbeat))
                    .unwrap_or_default()
            }
        })
        .collect();
    drop(listed_tx);
    let mut started = crew.start(jobs);
    // A helper no thread could be started for is left out of this cycle: its job, dropped here,
    // sends no list (nor keeps the list channel open), and its share goes nowhere.
    drop(std::mem::take(&mut started.left));
    let mine = list(main, filter, heartbeat)?;
    // Handles only: copying them makes no round trip.
    let listed = mine.clone();
    let mut lists = vec![(None, mine)];
    let mut failed = Vec::new();
    for (index, domains) in listed_rx.iter() {
        match domains {
            Some(domains) => lists.push((Some(index), domains)),
            None => failed.push(index),
        }
    }
    let owners: Vec<Option<usize>> = lists.iter().map(|(owner, _)| *owner).collect();
    let mut shares = spread(
        lists
            .into_iter()
            .map(|(owner, domains)| keyed(domains, owner.is_none()))
            .collect(),
    );
    for (index, share_tx) in share_txs {
        let share = owners
            .iter()
            .position(|owner| *owner == Some(index))
            .map(|at| std::mem::take(&mut shares[at]))
            .unwrap_or_default();
        let _ = share_tx.send(share);
    }
    let mut reading = Reading::default();
    reading.absorb(read_all(&shares[0], heartbeat));
    for outcome in started.wait().into_iter().flatten() {
        match outcome {
            Ok((share, unread)) => {
                reading.absorb(share);
                read_again(main, unread, &mut reading, heartbeat);
            }
            Err(_) => reading
                .domain_errors
                .push("a thread reading the domains failed".into()),
        }
    }
    reading.listed = listed;
    Ok((reading, failed))
}

/// `domains` by UUID. A domain whose UUID cannot be read (never seen) keeps a key of its own on
/// the main connection, and is left to it on a helper.
fn keyed(domains: Vec<Domain>, main: bool) -> Vec<(Option<Uuid>, Domain)> {
    domains
        .into_iter()
        .filter_map(|domain| match domain.uuid() {
            Ok(uuid) => Some((Some(uuid), domain)),
            Err(_) => main.then_some((None, domain)),
        })
        .collect()
}

/// Shares of `lists` (what each connection listed, by key): every key in exactly one share, of
/// a list that has it. Keys in every list are dealt out in turn in key order, so that equal
/// lists get even shares; a key only some lists have (a domain made or gone between two lists)
/// goes to one of those. `None` keys stay in their own list.
fn spread<K: Ord, T>(lists: Vec<Vec<(Option<K>, T)>>) -> Vec<Vec<T>> {
    let mut shares: Vec<Vec<T>> = lists.iter().map(|_| Vec::new()).collect();
    let mut holders: BTreeMap<K, Vec<(usize, T)>> = BTreeMap::new();
    for (at, list) in lists.into_iter().enumerate() {
        for (key, item) in list {
            match key {
                Some(key) => holders.entry(key).or_default().push((at, item)),
                None => shares[at].push(item),
            }
        }
    }
    for (turn, (_, mut holding)) in holders.into_iter().enumerate() {
        let (at, item) = holding.swap_remove(turn % holding.len());
        shares[at].push(item);
    }
    shares
}

fn read_domain(domain: &Domain, heartbeat: &Heartbeat) -> Result<DomainSample, virt::error::Error> {
    // Name, UUID and id are cached client-side; `info` is the one round trip per domain.
    let info = heartbeat.call(|| domain.info())?;
    Ok(DomainSample {
        id: domain.id(),
        name: domain.name()?.into_boxed_str(),
        uuid: domain.uuid()?,
        state: match info.state {
            Enum::Known(state) => vm_state(state),
            Enum::Unknown(_) => VmState::Unknown,
        },
        cpu_count: info.nr_virt_cpu,
        memory_max_kb: info.max_mem,
        memory_used_kb: info.memory,
        cputime_ns: info.cpu_time,
        timestamp_ns: now_ns(),
    })
}

fn vm_state(state: DomainState) -> VmState {
    match state {
        DomainState::NoState => VmState::NoState,
        DomainState::Running => VmState::Running,
        DomainState::Blocked => VmState::Blocked,
        DomainState::Paused => VmState::Paused,
        DomainState::Shutdown => VmState::Shutdown,
        DomainState::Shutoff => VmState::Stopped,
        DomainState::Crashed => VmState::Crashed,
        DomainState::PMSuspended => VmState::PmSuspended,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use uuid::Uuid;
    use virt::connect::Connect;

    use super::{Reading, SPREAD_MAX_DOMAINS, connections_for, read_again, spread};
    use crate::libvirt::heartbeat::Heartbeat;

    #[test]
    fn what_a_helper_could_not_read_is_read_again_over_the_main_connection() {
        virt::error::clear_error_callback();
        let main = Connect::open(Some("test:///default")).unwrap();
        let test = main.lookup_domain_by_name("test").unwrap().uuid().unwrap();
        let heartbeat = Heartbeat::default();
        let mut reading = Reading::default();
        let unread = vec![
            (test, "test: connection dropped".to_owned()),
            (Uuid::nil(), "gone: connection dropped".to_owned()),
        ];
        read_again(&main, unread, &mut reading, &heartbeat);
        let names: Vec<&str> = reading.samples.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["test"]);
        assert_eq!(reading.samples[0].uuid, test);
        assert_eq!(
            reading.vanished, 1,
            "not on main either: gone, not an error"
        );
        assert!(
            reading.domain_errors.is_empty(),
            "{:?}",
            reading.domain_errors
        );
        // Two lookups, one info.
        assert_eq!(heartbeat.beats(), 3);
    }

    #[test]
    fn small_hosts_spread_over_up_to_the_configured_connections() {
        let counts = [0, 1, 3, 5, 6, 11, 12, 13, 64, 65, 1000];
        let four: Vec<usize> = counts.iter().map(|&n| connections_for(n, 4)).collect();
        assert_eq!(four, [1, 1, 1, 1, 2, 3, 4, 4, 4, 1, 1]);
        let one: Vec<usize> = counts.iter().map(|&n| connections_for(n, 1)).collect();
        assert_eq!(one, [1; 11]);
        assert_eq!(connections_for(SPREAD_MAX_DOMAINS, 0), 1);
    }

    #[test]
    fn equal_lists_get_even_shares() {
        for n in 0..40 {
            for k in 1..6 {
                let lists = (0..k)
                    .map(|list| (0..n).map(|key| (Some(key), (list, key))).collect())
                    .collect();
                let shares = spread(lists);
                let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{n} keys over {k}: {sizes:?}");
                assert_eq!(sizes.iter().sum::<usize>(), n as usize);
            }
        }
    }

    proptest! {
        /// Lists that differ (domains made or gone between them): every key any list has is in
        /// exactly one share, taken from a list that has it; keyless items stay where they were.
        #[test]
        fn every_key_goes_once_to_a_list_that_has_it(
            lists in prop::collection::vec(prop::collection::btree_set(0u8..40, 0..30), 1..5),
            keyless in 0usize..3,
        ) {
            // Each item: the list it came from, and its key.
            type Item = (usize, Option<u8>);
            let input: Vec<Vec<(Option<u8>, Item)>> = lists
                .iter()
                .enumerate()
                .map(|(at, keys)| {
                    let mut list: Vec<_> = keys.iter().map(|&k| (Some(k), (at, Some(k)))).collect();
                    list.extend((0..keyless).map(|_| (None, (at, None))));
                    list
                })
                .collect();
            let shares = spread(input);
            prop_assert_eq!(shares.len(), lists.len());
            let mut seen = BTreeSet::new();
            for (at, share) in shares.iter().enumerate() {
                for &(from, key) in share {
                    prop_assert_eq!(from, at, "an item left its own list");
                    if let Some(key) = key {
                        prop_assert!(lists[at].contains(&key));
                        prop_assert!(seen.insert(key), "key {} in two shares", key);
                    }
                }
                prop_assert_eq!(share.iter().filter(|(_, key)| key.is_none()).count(), keyless);
            }
            let every: BTreeSet<u8> = lists.iter().flatten().copied().collect();
            prop_assert_eq!(seen, every);
        }
    }
}
