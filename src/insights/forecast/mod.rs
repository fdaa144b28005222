//! Time-to-exhaustion forecasts: per VM, its guest memory, each disk and each guest filesystem;
//! per host, the memory its running VMs are given against the host's. `trend` fits and judges
//! one resource, `fill` reads how full a VM's resources are from its extended sample and its
//! guest agent's answer.

pub mod fill;
pub mod trend;

use serde::{Deserialize, Serialize};

use trend::{Outlook, Trend};

/// One resource's trend and its latest verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `memory`, `disk:<device>`, `fs:<mountpoint>`, or a host's `committed_memory`.
    pub name: Box<str>,
    pub trend: Trend,
    #[serde(skip)]
    pub last: Option<Outlook>,
}

/// The resources of one VM or host, by name: one created when first seen, dropped when no
/// longer reported by its source (a disk detached, a filesystem unmounted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecasts {
    pub resources: Vec<Resource>,
}

/// What the trends are tuned with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastSettings {
    /// Seconds for a point's weight to halve.
    pub half_life: f64,
    /// Seconds: a time to full beyond it is no forecast.
    pub horizon: f64,
}

/// Guest filesystems' names start with it: their source (the guest agent) has its own cadence.
const FILESYSTEM: &str = "fs:";
/// Disks' names start with it.
pub const DISK: &str = "disk:";

impl Forecasts {
    /// One cycle's levels (name, (used, capacity)) at `t_ns`: memory and disks, or a host's.
    pub fn observe<'a>(
        &mut self,
        t_ns: i64,
        levels: impl Iterator<Item = (&'a str, (f64, f64))>,
        settings: &ForecastSettings,
    ) {
        self.observe_source(t_ns, levels, settings, |name| !name.starts_with(FILESYSTEM));
    }

    /// The same from a sample that read no disk's sizes (they have a cadence of their own):
    /// its disks are kept as they were.
    pub fn observe_keeping_disks<'a>(
        &mut self,
        t_ns: i64,
        levels: impl Iterator<Item = (&'a str, (f64, f64))>,
        settings: &ForecastSettings,
    ) {
        self.observe_source(t_ns, levels, settings, |name| {
            !name.starts_with(FILESYSTEM) && !name.starts_with(DISK)
        });
    }

    /// A guest agent's answer: its filesystems' levels, named `fs:<mountpoint>`.
    pub fn observe_filesystems<'a>(
        &mut self,
        t_ns: i64,
        levels: impl Iterator<Item = (&'a str, (f64, f64))>,
        settings: &ForecastSettings,
    ) {
        self.observe_source(t_ns, levels, settings, |name| name.starts_with(FILESYSTEM));
    }

    /// Levels from one source: its resources not among them are dropped, others' kept.
    fn observe_source<'a>(
        &mut self,
        t_ns: i64,
        levels: impl Iterator<Item = (&'a str, (f64, f64))>,
        settings: &ForecastSettings,
        from_source: fn(&str) -> bool,
    ) {
        let mut seen = Vec::new();
        for (name, (used, capacity)) in levels {
            let i = match self.resources.iter().position(|r| &*r.name == name) {
                Some(i) => i,
                None => {
                    self.resources.push(Resource {
                        name: name.into(),
                        ..Resource::default()
                    });
                    self.resources.len() - 1
                }
            };
            let resource = &mut self.resources[i];
            resource
                .trend
                .observe(t_ns, used, capacity, settings.half_life);
            resource.last = Some(resource.trend.evaluate(capacity, settings.horizon));
            seen.push(i);
        }
        let mut i = 0;
        self.resources.retain(|r| {
            i += 1;
            seen.contains(&(i - 1)) || !from_source(&r.name)
        });
    }
}
