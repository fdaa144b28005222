//! One host's cycle as line protocol: what the VM table says changed, encoded into one batch for
//! the writer (as Vector's `encode_events` turns a batch of events into one buffer).

use std::sync::Arc;

use uuid::Uuid;

use crate::guest::{GuestCycle, InfoLog};
use crate::influx::line_protocol::{
    EncodeError, Lines, VmTags, host_metrics, stats_row, vm_features, vm_guest_fs, vm_guest_info,
    vm_metrics,
};
use crate::vms::{Changes, StatsChange, VmChange};

/// Roughly one line's length, for sizing a cycle's buffer.
const LINE_BYTES: usize = 200;

/// A cycle's lines, and how many could not be encoded, and why.
#[derive(Debug, Default)]
pub struct Encoded {
    pub lines: Lines,
    pub unencodable: u64,
    pub skipped: Vec<Skipped>,
}

/// Lines of one VM (None: the host's own line) that could not be encoded.
#[derive(Debug)]
pub struct Skipped {
    pub vm: Option<Uuid>,
    pub error: EncodeError,
    pub lines: usize,
}

/// `host_metrics`, then `vm_metrics` and `vm_features` of every VM, then the extended lines.
/// `tags` is only reused from VM to VM, so that a VM's tags cost no allocation.
pub fn encode_changes(changes: Changes<'_>, tags: &mut VmTags) -> Encoded {
    // Two lines per VM and one per extended row, so the buffer seldom grows.
    let rows = changes.stats.as_ref().map_or(0, |stats| stats.rows);
    let capacity = (changes.vms.len() * 2 + rows + 1) * LINE_BYTES;
    let mut encoded = Encoded {
        lines: Lines::with_capacity(capacity),
        unencodable: 0,
        skipped: Vec::new(),
    };
    if let Some(node) = &changes.node {
        let result = host_metrics(&mut encoded.lines, changes.host, node);
        encoded.check(None, result, 1);
    }
    for vm in changes.vms {
        encoded.vm(tags, changes.host, vm);
    }
    if let Some(stats) = changes.stats {
        let host = Arc::clone(&stats.host);
        for change in stats {
            encoded.stats(tags, &host, change);
        }
    }
    encoded
}

impl Encoded {
    /// The guest agents' lines of one host's cycle (at `uri`): `vm_guest_fs` of every answer,
    /// `vm_guest_info` of those `log` says are due.
    pub fn guests(
        &mut self,
        tags: &mut VmTags,
        uri: &Arc<str>,
        cycle: &GuestCycle,
        log: &mut InfoLog,
    ) {
        let due = log.due(uri, &cycle.samples);
        for sample in &cycle.samples {
            let with_info = due.iter().any(|d| std::ptr::eq(*d, sample));
            let vm = Some(sample.uuid);
            let wanted = sample.filesystems.len() + usize::from(with_info);
            if let Err(error) = tags.set(&cycle.host, sample.id, &sample.name, &sample.uuid) {
                self.check(vm, Err(error), wanted);
                continue;
            }
            for fs in &sample.filesystems {
                let result = vm_guest_fs(&mut self.lines, tags, sample, fs);
                self.check(vm, result, 1);
            }
            if with_info {
                let result = vm_guest_info(&mut self.lines, tags, sample);
                self.check(vm, result, 1);
            }
        }
    }

    fn vm(&mut self, tags: &mut VmTags, host: &str, VmChange { sample, features }: VmChange<'_>) {
        let wanted = 1 + usize::from(features.is_some());
        let vm = Some(sample.uuid);
        if let Err(error) = tags.set(host, sample.id, &sample.name, &sample.uuid) {
            return self.check(vm, Err(error), wanted);
        }
        let result = vm_metrics(&mut self.lines, tags, sample);
        self.check(vm, result, 1);
        if let Some(features) = &features {
            let result = vm_features(&mut self.lines, tags, sample, features);
            self.check(vm, result, 1);
        }
    }

    /// A VM's extended rows, with rates from its previous extended sample.
    fn stats(&mut self, tags: &mut VmTags, host: &str, change: StatsChange<'_>) {
        let current = change.current;
        let vm = Some(current.uuid);
        if let Err(error) = tags.set(host, change.id, &current.name, &current.uuid) {
            return self.check(vm, Err(error), current.rows.len());
        }
        for (row, derived) in current.rows.iter().zip(&current.derived) {
            // `Ok(false)`: a row without any field is no line, and no error.
            if let Err(error) = stats_row(&mut self.lines, tags, current, row, derived) {
                self.check(vm, Err(error), 1);
            }
        }
    }

    /// Counts the `lines` of `vm` that could not be encoded, and keeps why (the feature actor
    /// logs it once per VM).
    fn check(&mut self, vm: Option<Uuid>, result: Result<(), EncodeError>, lines: usize) {
        if let Err(error) = result {
            self.unencodable += lines as u64;
            self.skipped.push(Skipped { vm, error, lines });
        }
    }
}
