//! One VM's insights: its identity, what its next rates derive from, a model per signal, its
//! anomaly window and its conditions, all in one record that goes when the VM goes.

use super::bottlenecks::Bottlenecks;
use super::detector::{SignalModel, Verdict};
use super::settings::InsightsSettings;
use super::signals::{Baseline, SIGNALS, Signal, Values, VmIdentity, VmReading};
use super::window::AnomalyWindow;

pub struct VmInsights {
    pub vm: VmIdentity,
    baseline: Baseline,
    models: [SignalModel; SIGNALS],
    window: AnomalyWindow,
    pub bottlenecks: Bottlenecks,
    /// What the last cycle gave.
    pub last: CycleResult,
}

/// One cycle of one VM: its values, and per signal (bit `signal as usize`) whether it was
/// learning, scored anomalous, or departs from the peers.
#[derive(Debug, Clone, Default)]
pub struct CycleResult {
    pub values: Values,
    /// The scores of the trained signals.
    pub scores: [Option<f32>; SIGNALS],
    pub learning: u16,
    pub anomalous: u16,
    pub peer_outliers: u16,
}

impl CycleResult {
    pub fn has(mask: u16, signal: Signal) -> bool {
        mask & (1 << signal as usize) != 0
    }

    pub fn anomalous_signals(&self) -> u32 {
        self.anomalous.count_ones()
    }
}

impl VmInsights {
    pub fn new(reading: &VmReading) -> Self {
        VmInsights {
            vm: reading.vm.clone(),
            baseline: Baseline::default(),
            models: [SignalModel::default(); SIGNALS],
            window: AnomalyWindow::default(),
            bottlenecks: Bottlenecks::default(),
            last: CycleResult::default(),
        }
    }

    /// Scores the cycle's values of every signal against the VM's past. A VM not running has
    /// no signal: its rates and differences start afresh when it runs again.
    pub fn observe(&mut self, reading: &VmReading, settings: &InsightsSettings) {
        self.vm.clone_from(&reading.vm);
        self.last = CycleResult::default();
        if !reading.vm.running {
            self.baseline.forget();
            self.models.iter_mut().for_each(SignalModel::interrupt);
            self.bottlenecks.clear();
            return;
        }
        let extracted = self.baseline.extract(reading, settings.max_gap_ns());
        let mut scored = 0;
        for signal in Signal::ALL {
            let model = &mut self.models[signal as usize];
            let gap = match signal.from_seed() {
                true => extracted.seed_gap,
                false => extracted.extended_gap,
            };
            if gap {
                model.interrupt();
            }
            let Some(value) = extracted.values.get(signal) else {
                continue;
            };
            let bit = 1 << signal as usize;
            match model.observe(value, signal.floor(), &settings.detector) {
                Some(Verdict::Learning) => self.last.learning |= bit,
                Some(Verdict::Scored { score, anomalous }) => {
                    scored += 1;
                    self.last.scores[signal as usize] = Some(score as f32);
                    if anomalous {
                        self.last.anomalous |= bit;
                    }
                }
                Some(Verdict::Resumed) | None => {}
            }
        }
        let anomalous = self.last.anomalous_signals();
        self.window
            .record(settings.window, reading.vm.timestamp_ns, anomalous, scored);
        self.bottlenecks.update(
            &extracted.values,
            reading.vm.timestamp_ns,
            &settings.thresholds,
        );
        self.last.values = extracted.values;
    }

    /// Trained: at least one of its signals has left learning.
    pub fn trained(&self, settings: &InsightsSettings) -> bool {
        self.models.iter().any(|m| m.trained(&settings.detector))
    }

    pub fn model(&self, signal: Signal) -> &SignalModel {
        &self.models[signal as usize]
    }

    /// The smoothed level of `signal` when the VM has it this cycle: what peers compare.
    pub fn level(&self, signal: Signal) -> Option<f64> {
        self.last.values.get(signal)?;
        self.models[signal as usize].level()
    }

    /// The share of anomalous signal-samples over the window; none before any was scored.
    pub fn anomaly_rate(&self) -> Option<f64> {
        self.window.rate()
    }

    pub fn window_counts(&self) -> (u64, u64) {
        self.window.counts()
    }
}
