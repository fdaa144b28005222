//! One host's cycle as line protocol: what the VM table says changed, encoded into one batch for
//! the writer (as Vector's `encode_events` turns a batch of events into one buffer).

use std::sync::Arc;

use crate::influx::line_protocol::{
    EncodeError, Lines, VmTags, host_metrics, stats_row, vm_features, vm_metrics,
};
use crate::vms::{Changes, StatsChange, VmChange};

/// Roughly one line's length, for sizing a cycle's buffer.
const LINE_BYTES: usize = 200;

/// A cycle's lines, and how many could not be encoded (each logged).
#[derive(Debug, Default)]
pub struct Encoded {
    pub lines: Lines,
    pub unencodable: u64,
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
    };
    if let Some(node) = &changes.node {
        let result = host_metrics(&mut encoded.lines, changes.host, node);
        encoded.check(result, 1);
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
    fn vm(&mut self, tags: &mut VmTags, host: &str, VmChange { sample, features }: VmChange<'_>) {
        let wanted = 1 + usize::from(features.is_some());
        if let Err(error) = tags.set(host, sample.id, &sample.name, &sample.uuid) {
            return self.check(Err(error), wanted);
        }
        let result = vm_metrics(&mut self.lines, tags, sample);
        self.check(result, 1);
        if let Some(features) = &features {
            let result = vm_features(&mut self.lines, tags, sample, features);
            self.check(result, 1);
        }
    }

    /// A VM's extended rows, with rates from its previous extended sample.
    fn stats(&mut self, tags: &mut VmTags, host: &str, change: StatsChange<'_>) {
        let current = change.current;
        if let Err(error) = tags.set(host, change.id, &current.name, &current.uuid) {
            return self.check(Err(error), current.rows.len());
        }
        for (row, derived) in current.rows.iter().zip(&current.derived) {
            // `Ok(false)`: a row without any field is no line, and no error.
            if let Err(error) = stats_row(&mut self.lines, tags, current, row, derived) {
                self.check(Err(error), 1);
            }
        }
    }

    /// Counts the `lines` that could not be encoded, and logs why.
    fn check(&mut self, result: Result<(), EncodeError>, lines: usize) {
        if let Err(error) = result {
            self.unencodable += lines as u64;
            tracing::error!(%error, lines, "lines not written");
        }
    }
}
