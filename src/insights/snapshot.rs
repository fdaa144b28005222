//! The insights actor's snapshots, so that a restart finds every VM as trained as it was: its
//! file (`store`), whether a save is under way, what the last load and save did.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::fleet::{Insights, RestoreCounts};
use super::settings::SnapshotSettings;
use super::store::{SnapshotError, SnapshotStore};
use crate::actors::snapshot_status::SnapshotStatus;

/// One insights actor's snapshots.
pub struct Snapshots {
    /// None when the file cannot be used: models live in memory only.
    store: Option<Arc<SnapshotStore>>,
    hosts: Vec<Arc<str>>,
    pub interval: Duration,
    status: SnapshotStatus,
    saving: bool,
}

impl Snapshots {
    /// Opens the file; one that cannot be used is logged and said in the status.
    pub fn open(settings: &SnapshotSettings) -> Self {
        let mut snapshots = Snapshots {
            store: None,
            hosts: settings.hosts.clone(),
            interval: settings.interval,
            status: SnapshotStatus {
                path: settings.path.display().to_string(),
                interval_sec: settings.interval.as_secs_f64(),
                ..SnapshotStatus::default()
            },
            saving: false,
        };
        match SnapshotStore::open(&settings.path) {
            Ok((store, damage)) => {
                if let Some(error) = damage {
                    snapshots.damaged(&error);
                }
                snapshots.store = Some(Arc::new(store));
            }
            Err(error) => {
                tracing::error!(%error, "insights' snapshots off: models live in memory only");
                snapshots.failed(&error);
            }
        }
        snapshots
    }

    /// Starts `insights` from the last snapshot. An unreadable one is logged and ignored: every
    /// VM learns again.
    pub fn load_into(&mut self, insights: &mut Insights) {
        self.saving = false;
        let Some(store) = &self.store else {
            return;
        };
        match store.load() {
            Ok(snapshot) => {
                insights.restore(snapshot, &self.hosts);
                let counts = insights.restore_counts;
                tracing::info!(
                    vms = counts.loaded,
                    unsound_or_elsewhere = counts.dropped,
                    "insights' models loaded"
                );
            }
            Err(error) => self.damaged(&error),
        }
    }

    /// The outlook's last saved state (JSON); none when there is none or it cannot be read.
    pub fn load_outlook(&mut self) -> Option<Vec<u8>> {
        match self.store.as_ref()?.load_outlook() {
            Ok(json) => json,
            Err(error) => {
                self.damaged(&error);
                None
            }
        }
    }

    pub fn saving(&self) -> bool {
        self.saving
    }

    /// What every VM has learned, and the save of it to run on a blocking thread.
    /// `outlook`: the forecasts' and right-sizing's state as JSON, saved first.
    pub fn begin_save(
        &mut self,
        insights: &Insights,
        outlook: Option<Vec<u8>>,
    ) -> Option<(
        usize,
        impl FnOnce() -> Result<u64, SnapshotError> + Send + 'static,
    )> {
        let store = Arc::clone(self.store.as_ref()?);
        let snapshot = insights.snapshot();
        self.saving = true;
        Some((snapshot.len(), move || {
            if let Some(json) = outlook {
                store.save_outlook(&json)?;
            }
            store.save(&snapshot)
        }))
    }

    pub fn saved(&mut self, vms: usize, result: Result<u64, SnapshotError>) {
        self.saving = false;
        match result {
            Ok(bytes) => {
                tracing::info!(vms, bytes, "insights' models saved");
                let status = &mut self.status;
                status.saves += 1;
                status.last_save_time = Some(Utc::now());
                (status.last_save_vms, status.file_bytes) = (vms, bytes);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot save the insights' models");
                self.failed(&error);
            }
        }
    }

    /// The status, with what became of the VMs of the last snapshot loaded.
    pub fn status(&self, counts: RestoreCounts) -> SnapshotStatus {
        SnapshotStatus {
            vms_loaded: counts.loaded,
            vms_restored: counts.restored,
            vms_dropped: counts.dropped,
            ..self.status.clone()
        }
    }

    fn damaged(&mut self, error: &dyn std::error::Error) {
        tracing::error!(%error, path = %self.status.path, "the insights' snapshot is unreadable: ignored, every VM learns again");
        self.status.damaged_files += 1;
        self.status.last_error = Some(format!("unreadable snapshot, ignored: {error}"));
    }

    fn failed(&mut self, error: &SnapshotError) {
        self.status.errors += 1;
        self.status.last_error = Some(error.to_string());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::insights::signals::Signal;
    use crate::insights::store::SnapshotEntry;
    use crate::insights::testing::{Guest, SEC, cycle, settings};

    const URI: &str = "test:///default";

    /// Three guests trained at 10 % of a CPU, and their snapshot.
    fn trained() -> (Vec<Guest>, Vec<SnapshotEntry>) {
        let mut insights = Insights::new(settings());
        let mut guests: Vec<Guest> = (1..=3).map(Guest::new).collect();
        for _ in 0..40 {
            let readings = guests.iter_mut().map(|g| g.step(5, 10.0)).collect();
            insights.observe(cycle(guests[0].t, readings));
        }
        assert_eq!(insights.counts(), (3, 3));
        (guests, insights.snapshot())
    }

    /// `cycles` cycles of `guests` at `cpu`: every VM trained and none anomalous in any.
    fn resume(insights: &mut Insights, guests: &mut [Guest], cycles: usize, cpu: f64) {
        for _ in 0..cycles {
            let readings = guests.iter_mut().map(|g| g.step(5, cpu)).collect();
            let (host, settings) = insights.observe(cycle(guests[0].t, readings));
            for vm in host.vms.values() {
                assert!(vm.trained(settings), "{}", vm.vm.name);
                assert_eq!(
                    vm.last.anomalous,
                    0,
                    "{} at {} s",
                    vm.vm.name,
                    vm.vm.timestamp_ns / SEC
                );
                let mut scores = vm.last.scores.given();
                assert!(scores.all(|s| (0.0..=1.0).contains(&s)));
            }
        }
    }

    #[test]
    fn a_restart_finds_its_vms_trained_and_drops_those_gone() {
        let (mut guests, snapshot) = trained();
        assert_eq!(snapshot.len(), 3);
        let mut insights = Insights::new(settings());
        insights.restore(snapshot, &[Arc::from(URI)]);
        guests.pop(); // VM 3 is gone
        guests.iter_mut().for_each(|g| g.t += 10 * SEC);
        resume(&mut insights, &mut guests, 3, 10.0);
        let counts = insights.restore_counts;
        assert_eq!((counts.loaded, counts.restored, counts.dropped), (3, 2, 1));
        assert_eq!(insights.counts(), (2, 2));
        // Scored again from its second cycle on: nothing learned anew.
        let vm = &insights.hosts[URI].vms[&Uuid::from_u128(1)];
        assert!(vm.last.scores.get(Signal::CpuPercent).is_some());
        assert_eq!(vm.last.learning, 0);
        // What waits for a host not seen yet is saved again.
        let mut waiting = Insights::new(settings());
        waiting.restore(insights.snapshot(), &[Arc::from(URI)]);
        assert_eq!(waiting.snapshot().len(), 2);
    }

    #[test]
    fn a_stale_snapshot_does_not_make_the_first_samples_after_it_anomalous() {
        let (mut guests, snapshot) = trained();
        let mut insights = Insights::new(settings());
        insights.restore(snapshot, &[Arc::from(URI)]);
        // The service stopped for a day; the guests are busy now.
        guests.iter_mut().for_each(|g| g.t += 86_400 * SEC);
        resume(&mut insights, &mut guests, 30, 80.0);
        assert_eq!(insights.counts(), (3, 3));
    }

    #[test]
    fn another_hosts_and_unsound_snapshots_are_dropped() {
        let (_, mut snapshot) = trained();
        let mut insights = Insights::new(settings());
        insights.restore(snapshot.clone(), &[Arc::from("test:///elsewhere")]);
        assert_eq!(insights.restore_counts.dropped, 3);
        assert!(insights.snapshot().is_empty());
        snapshot[0].2.0[4].1 = -1.0; // a negative variance
        snapshot[1].2.1.0[0] = (9, 1); // more anomalous samples than scored
        insights.restore(snapshot, &[Arc::from(URI)]);
        let counts = insights.restore_counts;
        assert_eq!((counts.loaded, counts.dropped), (3, 2));
    }
}
