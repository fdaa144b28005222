//! Threads a host's sampler keeps from one cycle to the next for its side-by-side libvirt calls:
//! starting a thread for each call would cost more CPU than the calls themselves save.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// What became of one job.
pub type Outcome<T> = Result<T, Failed>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    Panicked,
    /// Its thread ended before taking it.
    Lost,
    /// Still running when the wait for it gave up: its thread is dismissed.
    GaveUp,
}

pub struct Crew {
    name: &'static str,
    /// Whose calls these are, for the logs: the host's URI.
    owner: Arc<str>,
    members: Vec<Member>,
    /// Threads dismissed whose job has not returned yet (only stats calls are ever left behind).
    stats_calls_left_behind: Arc<AtomicUsize>,
    /// A thread could not be started (a task limit reached, say) and none has been since.
    short_handed: bool,
}

struct Member {
    jobs: mpsc::Sender<Job>,
    dismissed: Arc<AtomicBool>,
}

/// Jobs on their way: `left` holds, with their index, those no thread could be started for.
pub struct Started<T, F> {
    results: mpsc::Receiver<(usize, Outcome<T>)>,
    outcomes: Vec<Option<Outcome<T>>>,
    pub left: Vec<(usize, F)>,
    /// The indexes in `left`, which the caller may take.
    unassigned: Vec<usize>,
}

impl Crew {
    /// Threads named `name`, for `owner`'s calls; `stats_calls_left_behind` counts the dismissed ones
    /// until their jobs return.
    pub fn new(
        name: &'static str,
        owner: Arc<str>,
        stats_calls_left_behind: Arc<AtomicUsize>,
    ) -> Self {
        Crew {
            name,
            owner,
            members: Vec::new(),
            stats_calls_left_behind,
            short_handed: false,
        }
    }

    /// Hands each of `jobs` to a thread of its own, starting the threads this crew lacks.
    pub fn start<T, F>(&mut self, jobs: Vec<F>) -> Started<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // A thread that ended (its `dismissed` flag no longer shared) is replaced; within a
        // round, job `i` stays with member `i`, which `dismiss` relies on.
        self.members
            .retain(|member| Arc::strong_count(&member.dismissed) > 1);
        while self.members.len() < jobs.len() && self.hire() {}
        let (done, results) = mpsc::channel();
        let mut outcomes: Vec<Option<Outcome<T>>> = jobs.iter().map(|_| None).collect();
        let mut left = Vec::new();
        for (index, job) in jobs.into_iter().enumerate() {
            let Some(member) = self.members.get(index) else {
                left.push((index, job));
                continue;
            };
            let done = done.clone();
            let job: Job = Box::new(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                    .map_err(|_: Box<dyn Any + Send>| Failed::Panicked);
                let _ = done.send((index, outcome));
            });
            if member.jobs.send(job).is_err() {
                outcomes[index] = Some(Err(Failed::Lost));
            }
        }
        Started {
            results,
            outcomes,
            unassigned: left.iter().map(|(index, _)| *index).collect(),
            left,
        }
    }

    /// Lets the threads of these jobs go (each ends once its job returns): they are not handed
    /// jobs any more, and new ones are hired in their place.
    pub fn dismiss(&mut self, jobs: &[usize]) {
        let mut jobs = jobs.to_vec();
        jobs.sort_unstable();
        jobs.dedup();
        for index in jobs.into_iter().rev() {
            if index < self.members.len() {
                let member = self.members.remove(index);
                // Counted before its inbox closes: the thread counts itself out after that.
                self.stats_calls_left_behind.fetch_add(1, Ordering::AcqRel);
                member.dismissed.store(true, Ordering::Release);
            }
        }
    }

    fn hire(&mut self) -> bool {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let dismissed = Arc::new(AtomicBool::new(false));
        let (was_dismissed, running) = (dismissed.clone(), self.stats_calls_left_behind.clone());
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                inbox.iter().for_each(|job| job());
                if was_dismissed.load(Ordering::Acquire) {
                    running.fetch_sub(1, Ordering::AcqRel);
                }
            });
        match spawned {
            Ok(_) => {
                self.members.push(Member { jobs, dismissed });
                if std::mem::replace(&mut self.short_handed, false) {
                    tracing::info!(owner = %self.owner, "threads can be started again");
                }
                true
            }
            Err(e) => {
                // Logged once a streak: the caller runs what no thread took, one after the other.
                if !std::mem::replace(&mut self.short_handed, true) {
                    tracing::warn!(owner = %self.owner, error = %e,
                        "no thread could be started: calls meant to run side by side run one after the other");
                }
                false
            }
        }
    }
}

impl<T, F> Started<T, F> {
    /// The outcome of every job handed out, in order; `None` for those `left`.
    pub fn wait(self) -> Vec<Option<Outcome<T>>> {
        self.collect(None, || {})
    }

    /// Like `wait`, but gives up on the jobs still running once none has ended for `patience`
    /// (`GaveUp`: `Crew::dismiss` their threads). Meanwhile `waiting` is called every quarter of
    /// `patience`, so that a watchdog can tell this thread waits rather than hangs.
    pub fn wait_at_most(self, patience: Duration, waiting: impl Fn()) -> Vec<Option<Outcome<T>>> {
        self.collect(Some(patience), waiting)
    }

    fn collect(
        mut self,
        patience: Option<Duration>,
        waiting: impl Fn(),
    ) -> Vec<Option<Outcome<T>>> {
        let left = self.unassigned;
        let mut pending = self.outcomes.iter().filter(|o| o.is_none()).count() - left.len();
        let mut last_ended = Instant::now();
        let mut gave_up = false;
        while pending > 0 {
            let received = match patience {
                None => self
                    .results
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(patience) => self.results.recv_timeout(patience / 4),
            };
            match received {
                Ok((index, outcome)) => {
                    self.outcomes[index] = Some(outcome);
                    pending -= 1;
                    last_ended = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {
                    if patience.is_some_and(|patience| last_ended.elapsed() >= patience) {
                        gave_up = true;
                        break;
                    }
                    waiting();
                }
                // Every job is run or dropped by now: none can answer any more.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let unanswered = if gave_up {
            Failed::GaveUp
        } else {
            Failed::Lost
        };
        for (index, outcome) in self.outcomes.iter_mut().enumerate() {
            if outcome.is_none() && !left.contains(&index) {
                *outcome = Some(Err(unanswered.clone()));
            }
        }
        self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::{Crew, Failed, Member};

    fn thread_id() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    #[test]
    fn jobs_run_side_by_side_on_threads_kept_between_rounds() {
        let mut crew = Crew::new("test crew", "test".into(), Default::default());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
        let jobs: Vec<_> = (0..3)
            .map(|i| {
                let barrier = barrier.clone();
                // Each waits for the other two: they only finish if they run at once.
                move || {
                    barrier.wait();
                    i * 10
                }
            })
            .collect();
        let started = crew.start(jobs);
        assert!(started.left.is_empty());
        assert_eq!(started.wait(), [Some(Ok(0)), Some(Ok(10)), Some(Ok(20))]);
        let ids = |crew: &mut Crew| {
            let jobs: Vec<_> = (0..3).map(|_| thread_id).collect();
            let mut ids: Vec<_> = crew
                .start(jobs)
                .wait()
                .into_iter()
                .map(|outcome| format!("{:?}", outcome.unwrap().unwrap()))
                .collect();
            ids.sort();
            ids
        };
        let first = ids(&mut crew);
        assert!(
            !first.contains(&format!("{:?}", thread_id())),
            "not on the caller's thread"
        );
        assert_eq!(ids(&mut crew), first, "the same threads, round after round");
    }

    #[test]
    fn a_panicking_job_fails_alone_and_its_thread_serves_on() {
        let mut crew = Crew::new("test crew", "test".into(), Default::default());
        let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> =
            vec![Box::new(|| 1), Box::new(|| panic!("boom")), Box::new(|| 3)];
        let outcomes = crew.start(jobs).wait();
        assert_eq!(
            outcomes,
            [Some(Ok(1)), Some(Err(Failed::Panicked)), Some(Ok(3))]
        );
        let again = crew.start(vec![|| 4, || 5, || 6]).wait();
        assert_eq!(again, [Some(Ok(4)), Some(Ok(5)), Some(Ok(6))]);
    }

    #[test]
    fn a_job_outlasting_the_patience_is_given_up_and_its_thread_replaced() {
        let stats_calls_left_behind = Arc::new(AtomicUsize::new(0));
        let mut crew = Crew::new("test crew", "test".into(), stats_calls_left_behind.clone());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let jobs: Vec<Box<dyn FnOnce() -> std::thread::ThreadId + Send>> = vec![
            Box::new(thread_id),
            Box::new(move || {
                let _ = held.recv();
                thread_id()
            }),
        ];
        let beats = AtomicUsize::new(0);
        let outcomes = crew
            .start(jobs)
            .wait_at_most(Duration::from_millis(200), || {
                beats.fetch_add(1, Ordering::Relaxed);
            });
        assert!(matches!(outcomes[0], Some(Ok(_))), "{outcomes:?}");
        assert_eq!(outcomes[1], Some(Err(Failed::GaveUp)));
        assert!(beats.into_inner() >= 2, "told the watchdog it waits");
        crew.dismiss(&[1]);
        // Were the held thread still a member, its new job would wait behind the held one.
        let again = crew
            .start(vec![thread_id, thread_id])
            .wait_at_most(Duration::from_secs(5), || {});
        let ids: Vec<_> = again.into_iter().map(|o| o.unwrap().unwrap()).collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1], "a new thread in the held one's place");
        assert_eq!(stats_calls_left_behind.load(Ordering::Acquire), 1);
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats_calls_left_behind.load(Ordering::Acquire) != 0 {
            assert!(Instant::now() < deadline, "the dismissed thread to end");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Dropping a crew ends its threads without counting them as dismissed.
        drop(crew);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(stats_calls_left_behind.load(Ordering::Acquire), 0);
    }

    #[test]
    fn patience_counts_from_the_last_job_that_ended() {
        let mut crew = Crew::new("test crew", "test".into(), Default::default());
        // Each ends 0.6 s after the one before: 1.2 s in all, never 1 s without one ending.
        let jobs: Vec<_> = (0..3u64)
            .map(|i| {
                move || {
                    std::thread::sleep(Duration::from_millis(600 * i));
                    i
                }
            })
            .collect();
        let outcomes = crew.start(jobs).wait_at_most(Duration::from_secs(1), || {});
        assert_eq!(outcomes, [Some(Ok(0)), Some(Ok(1)), Some(Ok(2))]);
    }

    #[test]
    fn a_member_whose_thread_ended_loses_its_job_and_is_replaced_next_round() {
        let mut crew = Crew::new("test crew", "test".into(), Default::default());
        assert_eq!(
            crew.start(vec![|| 1, || 2]).wait(),
            [Some(Ok(1)), Some(Ok(2))]
        );
        // As if member 0's thread had ended: its inbox gone, its flag still shared this round.
        let (jobs, inbox) = std::sync::mpsc::channel();
        drop(inbox);
        let still_shared = Arc::new(AtomicBool::new(false));
        crew.members[0] = Member {
            jobs,
            dismissed: still_shared.clone(),
        };
        assert_eq!(
            crew.start(vec![|| 3, || 4]).wait(),
            [Some(Err(Failed::Lost)), Some(Ok(4))]
        );
        drop(still_shared);
        assert_eq!(
            crew.start(vec![|| 5, || 6]).wait(),
            [Some(Ok(5)), Some(Ok(6))]
        );
    }
}
