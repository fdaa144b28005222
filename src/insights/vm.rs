//! One VM's insights: its latest sample, what its next rates derive from, what it has learned (a
//! model per signal, its anomaly window) and its conditions, all in one record that goes when the
//! VM goes.

use super::baseline::Baseline;
use super::bottlenecks::Bottlenecks;
use super::detector::{SignalModel, Verdict};
use super::settings::InsightsSettings;
use super::signals::{SIGNALS, Scores, Signal, Values, VmReading};
use super::window::AnomalyWindow;
use crate::sample::{DomainSample, VmState};

pub struct VmInsights {
    pub vm: DomainSample,
    baseline: Baseline,
    pub learned: Learned,
    pub bottlenecks: Bottlenecks,
    /// What the last cycle gave.
    pub last: CycleResult,
}

/// What a VM has learned: what a snapshot keeps, so that a restart finds it trained.
#[derive(Debug, Clone, Default)]
pub struct Learned {
    pub models: [SignalModel; SIGNALS],
    pub window: AnomalyWindow,
    /// When it was last seen running: a longer gap than the window makes its levels stale.
    pub running_ns: Option<i64>,
}

/// One cycle of one VM: its values, and per signal (bit `signal as usize`) whether it was
/// learning, scored anomalous, or departs from the peers.
#[derive(Debug, Clone, Default)]
pub struct CycleResult {
    pub values: Values,
    /// The scores of the trained signals.
    pub scores: Scores,
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
    /// A VM as first seen, learning from nothing, or from what a snapshot kept.
    pub fn new(reading: &VmReading, learned: Learned) -> Self {
        VmInsights {
            vm: reading.vm.clone(),
            baseline: Baseline::default(),
            learned,
            bottlenecks: Bottlenecks::default(),
            last: CycleResult::default(),
        }
    }

    /// Scores the cycle's values of every signal against the VM's past. A VM not running has
    /// no signal: its rates and differences start afresh when it runs again, and its levels too
    /// when it was away longer than the window.
    pub fn observe(&mut self, reading: &VmReading, settings: &InsightsSettings) {
        self.vm.clone_from(&reading.vm);
        self.last = CycleResult::default();
        let models = &mut self.learned.models;
        if !reading.running() {
            self.baseline.forget();
            models.iter_mut().for_each(SignalModel::interrupt);
            self.bottlenecks.clear();
            return;
        }
        let now = reading.vm.timestamp_ns;
        let away = self.learned.running_ns.map(|t| now.saturating_sub(t));
        self.learned.running_ns = Some(now);
        if away.is_some_and(|away| away > settings.window_ns()) {
            models.iter_mut().for_each(SignalModel::interrupt_stale);
            self.bottlenecks.clear();
        }
        let extracted = self.baseline.extract(reading, &settings.max_gaps());
        let mut scored = 0;
        for signal in Signal::ALL {
            let model = &mut models[signal as usize];
            if extracted.gap(signal) {
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
                    self.last.scores.set(signal, score as f32);
                    if anomalous {
                        self.last.anomalous |= bit;
                    }
                }
                Some(Verdict::Resumed) | None => {}
            }
        }
        let anomalous = self.last.anomalous_signals();
        self.learned
            .window
            .record(settings.window, now, anomalous, scored);
        self.bottlenecks
            .update(&extracted.values, now, &settings.thresholds);
        self.last.values = extracted.values;
    }

    pub fn running(&self) -> bool {
        self.vm.state == VmState::Running
    }

    /// Trained: at least one of its signals has left learning.
    pub fn trained(&self, settings: &InsightsSettings) -> bool {
        self.learned.trained(settings)
    }

    pub fn model(&self, signal: Signal) -> &SignalModel {
        &self.learned.models[signal as usize]
    }

    /// The smoothed level of `signal` when the VM has it this cycle: what peers compare.
    pub fn level(&self, signal: Signal) -> Option<f64> {
        self.last.values.get(signal)?;
        self.model(signal).level()
    }

    /// The share of anomalous signal-samples over the window; none before any was scored.
    pub fn anomaly_rate(&self) -> Option<f64> {
        self.learned.window.rate()
    }

    pub fn window_counts(&self) -> (u64, u64) {
        self.learned.window.counts()
    }
}

impl Learned {
    pub fn trained(&self, settings: &InsightsSettings) -> bool {
        self.models.iter().any(|m| m.trained(&settings.detector))
    }
}
