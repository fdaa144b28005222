//! How full a VM's bounded resources are, read from its extended sample: guest memory in use
//! (`vm_memory`: `available_kb` less `usable_kb`, else `unused_kb`) against what the guest has
//! less the free memory its kernel keeps, with the part of `usable_kb` beyond `unused_kb` (what
//! the kernel counts it could reclaim), and each disk's `allocation_bytes` against its
//! `capacity_bytes` (`vm_disk`); and from its guest agent's answer, each filesystem's used bytes
//! against its size (`vm_guest_fs`).

use uuid::Uuid;

use crate::extended::{DomainStatsSample, VM_DISK, VM_MEMORY, memory_in_use};
use crate::guest::GuestSample;

/// (used, capacity), both in bytes.
pub type Level = (f64, f64);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fill {
    pub memory: Option<Level>,
    /// Bytes of `usable_kb` beyond `unused_kb`: caches the guest's kernel counts available
    /// although they are not free (none when it reports only one of them).
    pub memory_reclaimable: Option<f64>,
    /// Per disk: its `device`, and its level.
    pub disks: Vec<(Box<str>, Level)>,
    /// Every disk row of the sample gave its sizes (they have a cadence of their own: a sample
    /// without them tells nothing of the disks' levels, nor of a disk gone).
    pub disks_read: bool,
}

impl Fill {
    pub fn from_stats(stats: &DomainStatsSample) -> Self {
        let mut fill = Fill {
            disks_read: stats
                .rows
                .iter()
                .filter(|row| row.measurement == VM_DISK)
                .all(|row| row.counter("capacity_bytes").is_some()),
            ..Fill::default()
        };
        for row in &stats.rows {
            if row.measurement == VM_MEMORY {
                if let (Some(usable), Some(unused)) =
                    (row.counter("usable_kb"), row.counter("unused_kb"))
                {
                    let beyond = usable.saturating_sub(unused);
                    fill.memory_reclaimable = Some(beyond as f64 * 1024.0);
                }
                if let Some((used, available)) = memory_in_use(row) {
                    let capacity = available.saturating_sub(kernel_reserve_kb(available));
                    fill.memory = Some((used as f64 * 1024.0, capacity as f64 * 1024.0));
                }
            }
            if row.measurement == VM_DISK
                && let Some((_, device)) = &row.key
                && let (Some(used), Some(capacity)) = (
                    row.counter("allocation_bytes"),
                    row.counter("capacity_bytes"),
                )
                && capacity > 0
            {
                fill.disks
                    .push((device.as_str().into(), (used as f64, capacity as f64)));
            }
        }
        fill
    }
}

/// The KiB a Linux guest of `total_kb` never fills: its kernel's low watermark (mm/page_alloc.c:
/// min_free_kbytes = √(16 × KiB) within 128 KiB..256 MiB, low = min + max(min / 4, 0.1 %)).
pub fn kernel_reserve_kb(total_kb: u64) -> u64 {
    let min = total_kb.saturating_mul(16).isqrt().clamp(128, 262_144);
    min + (min / 4).max(total_kb / 1000)
}

/// A guest's filesystems as its agent last told them, at the guest lane's own cadence.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestFill {
    pub uuid: Uuid,
    pub timestamp_ns: i64,
    /// Per filesystem: `fs:<mountpoint>`, and its level.
    pub filesystems: Vec<(Box<str>, Level)>,
}

impl GuestFill {
    pub fn from_sample(sample: &GuestSample) -> Self {
        let levels = (sample.filesystems.iter())
            .map(|fs| (fs.mountpoint.as_str(), fs.used_bytes, fs.total_bytes));
        Self::from_levels(sample.uuid, sample.timestamp_ns, levels)
    }

    /// From (mountpoint, used bytes, total bytes) of one answer; filesystems of no size are
    /// left out: nothing can fill them.
    pub fn from_levels<'a>(
        uuid: Uuid,
        timestamp_ns: i64,
        levels: impl Iterator<Item = (&'a str, u64, u64)>,
    ) -> Self {
        let filesystems = levels
            .filter(|(_, _, total)| *total > 0)
            .map(|(mountpoint, used, total)| {
                (
                    format!("fs:{mountpoint}").into(),
                    (used as f64, total as f64),
                )
            })
            .collect();
        GuestFill {
            uuid,
            timestamp_ns,
            filesystems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_reserve_kb;

    #[test]
    fn a_guests_kernel_reserve_is_its_low_watermark() {
        // min = √(16 × KiB) within 128..262,144; low = min + max(min / 4, KiB / 1000).
        let cases = [
            (512, 128 + 32),
            // The test guest of 144 MiB: its zones' min summed to 1,236, low to 1,544.
            (109_060, 1_320 + 330),
            (1 << 20, 4_096 + 1_048),
            (16 << 20, 16_384 + 16_777),
            (4 << 30, 262_144 + 4_294_967),
        ];
        for (total_kb, reserve_kb) in cases {
            assert_eq!(kernel_reserve_kb(total_kb), reserve_kb, "{total_kb} KiB");
        }
    }
}
