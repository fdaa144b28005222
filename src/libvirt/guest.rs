//! The `guest` group of a round's running domains: each domain's agent asked on its own
//! (`virDomainGetGuestInfo`), with its answer bounded by the agent timeout, side by side on the
//! guest lane's threads, so that a silent agent costs its own domain's rows and no other's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use virt::domain::Domain;
use virt::enumutil::Enum;
use virt::error::{Error, ErrorNumber};

use super::bulk_stats::DomainStats;
use super::clock::now_ns;
use super::crew::Crew;
use super::guest_info::{GUEST_TYPES, guest_info, set_agent_timeout};
use super::heartbeat::Heartbeat;
use super::stats::{side_by_side, split, stats_threads};
use crate::guest::{AgentState, GuestCycle, GuestSample};

/// A running domain, by uuid and libvirt id: its agent timeout is set once per run of it.
pub type RunningDomain = (Uuid, u32);

/// What one domain's agent gave: an answer, or the state that stands for none.
type Answer = (
    RunningDomain,
    Result<GuestSample, Option<(AgentState, String)>>,
);

/// The agents of the running ones among `domains`, each bounded to `timeout_sec` (set once per
/// domain run: `timeouts_set` remembers which). A thread still asking once none has answered for
/// `patience` is left behind, and its domains count as silent.
pub fn read(
    crew: &mut Crew,
    domains: &[Domain],
    timeout_sec: i32,
    patience: Duration,
    heartbeat: &Heartbeat,
    timeouts_set: &mut HashSet<RunningDomain>,
    host: Arc<str>,
) -> GuestCycle {
    let running: Vec<Domain> = domains
        .iter()
        .filter(|d| d.id().is_some())
        .cloned()
        .collect();
    let threads = stats_threads(running.len());
    let shares = split(running, threads);
    let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
    let known = Arc::new(timeouts_set.clone());
    let jobs: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (heartbeat, known) = (heartbeat.clone(), Arc::clone(&known));
            move || ask_share(&share, timeout_sec, &known, &heartbeat)
        })
        .collect();
    let parts = side_by_side(crew, jobs, patience, heartbeat);
    let mut cycle = GuestCycle {
        host,
        ..GuestCycle::default()
    };
    let (mut dismissed, mut still_set) = (Vec::new(), HashSet::new());
    for (index, part) in parts.into_iter().enumerate() {
        let Some(Ok(answers)) = part else {
            dismissed.push(index);
            cycle.silent += sizes[index];
            continue;
        };
        for (domain, answer) in answers {
            record(&mut cycle, &mut still_set, domain, answer);
        }
    }
    crew.dismiss(&dismissed);
    // Stopped domains are forgotten (a new run has libvirt's default timeout), and so are those
    // left behind (set again, to be sure).
    *timeouts_set = still_set;
    cycle
}

fn record(
    cycle: &mut GuestCycle,
    still_set: &mut HashSet<RunningDomain>,
    domain: RunningDomain,
    answer: Result<GuestSample, Option<(AgentState, String)>>,
) {
    match answer {
        Ok(sample) => {
            still_set.insert(domain);
            cycle.answering += 1;
            cycle.samples.push(sample);
        }
        Err(Some((AgentState::Absent, _))) => cycle.absent += 1,
        Err(Some((_, message))) => {
            still_set.insert(domain);
            cycle.silent += 1;
            if !message.is_empty() {
                cycle.failed.get_or_insert(message);
            }
        }
        // Stopped or gone since the list: not a running domain any more.
        Err(None) => {}
    }
}

fn ask_share(
    share: &[Domain],
    timeout_sec: i32,
    known: &HashSet<RunningDomain>,
    heartbeat: &Heartbeat,
) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(share.len());
    for domain in share {
        let (Ok(uuid), Some(id)) = (domain.uuid(), domain.id()) else {
            continue;
        };
        let answer = ask(domain, (uuid, id), timeout_sec, known, heartbeat);
        answers.push(((uuid, id), answer));
    }
    answers
}

fn ask(
    domain: &Domain,
    running: RunningDomain,
    timeout_sec: i32,
    known: &HashSet<RunningDomain>,
    heartbeat: &Heartbeat,
) -> Result<GuestSample, Option<(AgentState, String)>> {
    if !known.contains(&running) {
        heartbeat
            .call(|| set_agent_timeout(domain, timeout_sec))
            .map_err(|e| classify("virDomainAgentSetResponseTimeout", &e))?;
    }
    let params = heartbeat
        .call(|| guest_info(domain, GUEST_TYPES))
        .map_err(|e| classify("virDomainGetGuestInfo", &e))?;
    let stats = DomainStats {
        uuid: Some(running.0),
        name: domain.name().unwrap_or_default(),
        params: params.params,
        skipped: params.skipped,
    };
    GuestSample::from_params(&stats, Some(running.1), now_ns()).ok_or(None)
}

/// An agent that is not configured is absent; one that does not answer (or not in time) is
/// silent, quietly; a domain stopped meanwhile is none; anything else is silent, with why.
fn classify(call: &str, e: &Error) -> Option<(AgentState, String)> {
    match e.code() {
        Enum::Known(ErrorNumber::ArgumentUnsupported) => Some((AgentState::Absent, String::new())),
        Enum::Known(ErrorNumber::AgentUnresponsive | ErrorNumber::OperationTimeout) => {
            Some((AgentState::Silent, String::new()))
        }
        Enum::Known(ErrorNumber::NoDomain | ErrorNumber::OperationInvalid) => None,
        _ => Some((
            AgentState::Silent,
            format!("{call} failed: {}", e.message()),
        )),
    }
}
