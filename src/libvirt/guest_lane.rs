//! The guest agents' calls beside the host's cycles, on a thread and a connection of their own: a
//! silent agent holds them for its timeout, never the cycle, so every other line of every domain
//! arrives on time. A round's answers ride on the first cycle after it ended; a round due while
//! the last still asks is skipped, and counted.

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use super::LibvirtError;
use super::connection::{Connector, close};
use super::crew::Crew;
use super::guest::{self, RunningDomain};
use super::heartbeat::Heartbeat;
use crate::configuration::{CollectionConfig, HostConfig};
use crate::guest::GuestCycle;

/// A round's answers, and how long it took.
pub type Answered = (GuestCycle, Duration);

/// One round: the running (filtered) domains of the cycle that asked for it, and the host's name.
struct Round {
    domains: HashSet<Uuid>,
    host: Arc<str>,
}

pub struct GuestLane {
    setup: Setup,
    /// The thread's, once started (again after it ended).
    thread: Option<(mpsc::Sender<Round>, mpsc::Receiver<Answered>)>,
    busy: bool,
    /// Rounds due while the last was still asking, since the last answers.
    skipped: usize,
    /// The answers of the last round, once it ended, until a cycle takes them (or of a round
    /// that could not start).
    ended: Option<Answered>,
}

/// What the thread is made of.
#[derive(Clone)]
struct Setup {
    host: HostConfig,
    collection: CollectionConfig,
    patience: Duration,
    left_behind: Arc<AtomicUsize>,
}

/// The thread's own: its connection, its calls' threads, the domains whose agent timeout is set.
struct LaneState {
    connector: Connector,
    connection: Option<Connect>,
    crew: Crew,
    heartbeat: Heartbeat,
    timeout_sec: i32,
    patience: Duration,
    timeouts_set: HashSet<RunningDomain>,
}

impl GuestLane {
    /// A thread still asking once none of its calls has answered for `patience` is left behind
    /// (counted in `left_behind`), as the bulk calls' are.
    pub fn new(
        host: &HostConfig,
        collection: &CollectionConfig,
        patience: Duration,
        left_behind: Arc<AtomicUsize>,
    ) -> Self {
        GuestLane {
            setup: Setup {
                host: host.clone(),
                collection: collection.clone(),
                patience,
                left_behind,
            },
            thread: None,
            busy: false,
            skipped: 0,
            ended: None,
        }
    }

    /// Asks the agents of `domains` (running, filtered) in a round, unless the last still asks.
    pub fn ask(&mut self, domains: HashSet<Uuid>, host: Arc<str>) {
        self.collect();
        if self.busy {
            self.skipped += 1;
            return;
        }
        let round = Round { domains, host };
        let sent = match self.thread() {
            Ok((rounds, _)) => rounds.send(round).map_err(|e| e.0),
            Err(e) => {
                let message = format!("cannot start the guest agents' thread: {e}");
                let cycle = GuestCycle {
                    host: round.host,
                    failed: Some(message),
                    ..GuestCycle::default()
                };
                self.ended = Some((cycle, Duration::ZERO));
                return;
            }
        };
        match sent {
            Ok(()) => self.busy = true,
            // It ended (it never does but by a panic): a new one for the next round.
            Err(_) => self.thread = None,
        }
    }

    /// The answers of a round that ended since the last call, if any.
    pub fn answered(&mut self) -> Option<Answered> {
        self.collect();
        let (mut cycle, took) = self.ended.take()?;
        cycle.skipped_rounds = std::mem::take(&mut self.skipped);
        Some((cycle, took))
    }

    /// Takes in the answers of the round asking, if it ended (and those before were taken): the
    /// lane is free again.
    fn collect(&mut self) {
        let (None, Some((_, answers))) = (&self.ended, &self.thread) else {
            return;
        };
        match answers.try_recv() {
            Ok(answered) => {
                self.busy = false;
                self.ended = Some(answered);
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                self.thread = None;
                self.busy = false;
            }
        }
    }

    fn thread(&mut self) -> std::io::Result<&(mpsc::Sender<Round>, mpsc::Receiver<Answered>)> {
        if self.thread.is_none() {
            let (rounds, inbox) = mpsc::channel::<Round>();
            let (outbox, answers) = mpsc::channel::<Answered>();
            let setup = self.setup.clone();
            std::thread::Builder::new()
                .name(format!("guest agents {}", setup.host.uri))
                .spawn(move || {
                    let mut lane = LaneState::new(setup);
                    for round in inbox {
                        if outbox.send(lane.round(round)).is_err() {
                            break;
                        }
                    }
                    // The sampler is gone: so is this connection.
                    if let Some(connect) = lane.connection.take() {
                        close(connect);
                    }
                })?;
            self.thread = Some((rounds, answers));
        }
        Ok(self.thread.as_ref().expect("set above"))
    }
}

impl LaneState {
    fn new(setup: Setup) -> Self {
        let heartbeat = Heartbeat::default();
        let Setup {
            host,
            collection,
            patience,
            left_behind,
        } = setup;
        let keepalive = collection.keepalive;
        let connector = Connector::new(&host, keepalive, heartbeat.clone(), true);
        LaneState {
            crew: Crew::new("guest agent calls", connector.uri().clone(), left_behind),
            connector,
            connection: None,
            heartbeat,
            timeout_sec: collection.guest_agent_timeout_sec,
            patience,
            timeouts_set: HashSet::new(),
        }
    }

    fn round(&mut self, round: Round) -> Answered {
        let started = Instant::now();
        let cycle = match self.domains(&round.domains) {
            Ok(domains) => guest::read(
                &mut self.crew,
                &domains,
                self.timeout_sec,
                self.patience,
                &self.heartbeat,
                &mut self.timeouts_set,
                round.host,
            ),
            Err(e) => GuestCycle {
                host: round.host,
                failed: Some(e.to_string()),
                ..GuestCycle::default()
            },
        };
        (cycle, started.elapsed())
    }

    /// The running domains among `wanted`, listed over this lane's connection (opened again if
    /// it died).
    fn domains(&mut self, wanted: &HashSet<Uuid>) -> Result<Vec<Domain>, LibvirtError> {
        let connect = match self.connection.take() {
            Some(alive) if self.connector.is_alive(&alive) => alive,
            Some(dead) => {
                close(dead);
                self.connector.connect()?
            }
            None => self.connector.connect()?,
        };
        let active = sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE;
        match self.heartbeat.call(|| connect.list_all_domains(active)) {
            Ok(mut domains) => {
                domains.retain(|d| d.uuid().is_ok_and(|uuid| wanted.contains(&uuid)));
                self.connection = Some(connect);
                Ok(domains)
            }
            Err(e) => {
                close(connect);
                Err(LibvirtError::call("virConnectListAllDomains", e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use super::GuestLane;
    use crate::configuration::{CollectionConfig, HostConfig};
    use crate::libvirt::test_node::{TestDomain, node_xml};

    #[test]
    fn a_round_that_ended_between_cycles_frees_the_lane_and_its_answers_wait_their_turn() {
        // Three running test-driver domains: no agents, each call fails at once.
        let domains: Vec<TestDomain> = (0..3)
            .map(|i| TestDomain::new(&format!("vm-{i}"), 1, i))
            .collect();
        let file = tempfile::Builder::new().suffix(".xml").tempfile().unwrap();
        std::fs::write(file.path(), node_xml(&domains)).unwrap();
        virt::error::clear_error_callback();
        let uri = format!("test://{}", file.path().display());
        let connect = virt::connect::Connect::open(Some(&uri)).unwrap();
        let all = connect.list_all_domains(0).unwrap();
        let uuids: HashSet<_> = all.iter().map(|d| d.uuid().unwrap()).collect();
        let host = HostConfig { uri, name: None };
        let collection = CollectionConfig {
            guest: true,
            ..CollectionConfig::default()
        };
        let patience = Duration::from_secs(10);
        let mut lane = GuestLane::new(&host, &collection, patience, Default::default());
        let until_free = |lane: &mut GuestLane| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                lane.collect();
                if !lane.busy {
                    return;
                }
                assert!(Instant::now() < deadline, "the round to end");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        lane.ask(uuids.clone(), "node".into());
        lane.ask(uuids.clone(), "node".into());
        until_free(&mut lane);
        // Ended before the next cycle asked: that one is not skipped, and the first round's
        // answers come first.
        lane.ask(uuids.clone(), "node".into());
        let (first, _) = lane.answered().unwrap();
        assert_eq!((first.silent, first.skipped_rounds), (3, 1));
        until_free(&mut lane);
        let (second, _) = lane.answered().unwrap();
        assert_eq!((second.silent, second.skipped_rounds), (3, 0));
        assert!(lane.answered().is_none());
        drop(connect);
    }
}
