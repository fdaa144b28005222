//! Which parts of the extended collection a poll cycle carries. Each part comes every so many
//! cycles (its interval in whole `poll_interval`s), counted from the first cycle, and the parts
//! due in one cycle share its bulk calls. A part is anything with a cadence of its own: a bulk
//! stats group, the guest agents, the dirty-rate calculation's start, and the disks' sizes (a
//! subset of the block group's fields, read with its bulk call; the counters come every block
//! cycle, disk by disk, when the sizes are not due).

use std::time::Duration;

use super::bulk_stats::StatsGroups;

/// The seconds QEMU measures a domain's dirty rate over (its least).
pub const DIRTY_RATE_CALC_SEC: i32 = 1;
/// How long after its start a dirty rate is read: the calculation and some slack.
const DIRTY_RATE_READ_AFTER: Duration = Duration::from_secs(2);

/// A part of the collection with a cadence of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// One of libvirt's bulk groups. `DIRTYRATE` stands for its calculation: started when due,
    /// read by the first cycle `DIRTY_RATE_READ_AFTER` later.
    Bulk(StatsGroups),
    /// The guest agents (`guest`).
    Guest,
    /// The disks' sizes (`block_sizes`): the block group in the bulk call, whose capacity,
    /// allocation and physical size only it gives.
    BlockSizes,
}

/// What one cycle carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The bulk groups of its calls (the union of those due).
    pub groups: StatsGroups,
    pub guest: bool,
    /// The block group comes by the bulk call, sizes and all; else its counters come disk by disk.
    pub block_sizes: bool,
    /// Start a dirty-rate calculation on each running domain, after the bulk calls.
    pub dirty_rate_start: bool,
}

impl Due {
    /// Whether the cycle makes bulk calls (or dirty-rate starts) at all.
    pub fn has_stats(&self) -> bool {
        !self.groups.is_empty() || self.dirty_rate_start
    }
}

#[derive(Debug)]
pub struct Cadence {
    parts: Vec<Entry>,
    /// Cycles to go until the dirty rate started is read.
    dirty_read_in: Option<u32>,
    dirty_read_after: u32,
}

#[derive(Debug)]
struct Entry {
    part: Part,
    every: u32,
    /// Cycles to go before it is due again: 0, due in the next.
    to_go: u32,
}

impl Cadence {
    /// `parts`, each every its interval rounded to whole `poll`s (at least one), all due in the
    /// first cycle. The dirty rate's is at least one cycle longer than its reading takes.
    pub fn new(parts: &[(Part, Duration)], poll: Duration) -> Self {
        let dirty_read_after = cycles(DIRTY_RATE_READ_AFTER, poll, true);
        let parts = parts
            .iter()
            .map(|&(part, interval)| {
                let mut every = cycles(interval, poll, false);
                if part == Part::Bulk(StatsGroups::DIRTYRATE) {
                    every = every.max(dirty_read_after + 1);
                }
                Entry {
                    part,
                    every,
                    to_go: 0,
                }
            })
            .collect();
        Cadence {
            parts,
            dirty_read_in: None,
            dirty_read_after,
        }
    }

    /// What the next cycle carries.
    pub fn next_cycle(&mut self) -> Due {
        let mut due = Due::default();
        if let Some(to_go) = self.dirty_read_in.as_mut() {
            *to_go = to_go.saturating_sub(1);
            if *to_go == 0 {
                due.groups |= StatsGroups::DIRTYRATE;
                self.dirty_read_in = None;
            }
        }
        for entry in &mut self.parts {
            if let Some(fewer) = entry.to_go.checked_sub(1) {
                entry.to_go = fewer;
                continue;
            }
            entry.to_go = entry.every - 1;
            match entry.part {
                Part::Bulk(StatsGroups::DIRTYRATE) => {
                    due.dirty_rate_start = true;
                    self.dirty_read_in = Some(self.dirty_read_after);
                }
                Part::Bulk(group) => due.groups |= group,
                Part::Guest => due.guest = true,
                Part::BlockSizes => {
                    due.groups |= StatsGroups::BLOCK;
                    due.block_sizes = true;
                }
            }
        }
        due
    }

    /// The cycle that was to carry `due` failed: what it would have carried comes with the next.
    pub fn missed(&mut self, due: Due) {
        for entry in &mut self.parts {
            let missed = match entry.part {
                Part::Bulk(StatsGroups::DIRTYRATE) => due.dirty_rate_start,
                Part::Bulk(group) => due.groups.contains(group),
                Part::Guest => due.guest,
                Part::BlockSizes => due.block_sizes,
            };
            if missed {
                entry.to_go = 0;
            }
        }
        if due.dirty_rate_start {
            self.dirty_read_in = None;
        } else if due.groups.contains(StatsGroups::DIRTYRATE) {
            self.dirty_read_in = Some(1);
        }
    }
}

/// `interval` in whole `poll`s, at least one; `up`: rounded up rather than to the nearest.
fn cycles(interval: Duration, poll: Duration, up: bool) -> u32 {
    let ratio = interval.as_secs_f64() / poll.as_secs_f64();
    let cycles = if up { ratio.ceil() } else { ratio.round() };
    // `as` saturates: an interval beyond u32::MAX cycles is as good as never.
    (cycles as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn intervals_are_whole_numbers_of_cycles_at_least_one() {
        let c = |interval, poll| cycles(MS(interval), MS(poll), false);
        assert_eq!(c(5000, 5000), 1);
        assert_eq!(c(1000, 2000), 1);
        assert_eq!(c(10_000, 5000), 2);
        assert_eq!(c(7000, 5000), 1);
        assert_eq!(c(8000, 5000), 2);
        assert_eq!(c(60_000, 1), 60_000);
        assert_eq!(c(u64::MAX, 1), u32::MAX);
        assert_eq!(cycles(MS(2000), MS(500), true), 4);
        assert_eq!(cycles(MS(2000), MS(600), true), 4);
        assert_eq!(cycles(MS(2000), MS(5000), true), 1);
    }

    /// Over `n` cycles: the groups of each cycle, and its guest and start flags.
    fn run(cadence: &mut Cadence, n: usize) -> Vec<Due> {
        (0..n).map(|_| cadence.next_cycle()).collect()
    }

    #[test]
    fn each_part_comes_every_its_own_number_of_cycles_and_those_due_together_share_a_call() {
        let poll = MS(500);
        let parts = [
            (Part::Bulk(StatsGroups::BLOCK), MS(500)),
            (Part::Bulk(StatsGroups::BALLOON), MS(2000)),
            (Part::Guest, MS(1000)),
        ];
        let dues = run(&mut Cadence::new(&parts, poll), 9);
        let block = StatsGroups::BLOCK;
        let both = block | StatsGroups::BALLOON;
        let groups: Vec<_> = dues.iter().map(|d| d.groups).collect();
        assert_eq!(
            groups,
            [both, block, block, block, both, block, block, block, both]
        );
        let guest: Vec<_> = dues.iter().map(|d| d.guest).collect();
        assert_eq!(
            guest,
            [true, false, true, false, true, false, true, false, true]
        );
        assert!(dues.iter().all(|d| !d.dirty_rate_start));
    }

    #[test]
    fn a_dirty_rate_is_started_then_read_once_it_is_measured() {
        let dirty = StatsGroups::DIRTYRATE;
        // Every 3 s at 0.5 s polls: started at 0, 6, 12; read 2 s (4 cycles) after each.
        let parts = [(Part::Bulk(dirty), MS(3000))];
        let dues = run(&mut Cadence::new(&parts, MS(500)), 17);
        let starts: Vec<usize> = (0..17).filter(|&i| dues[i].dirty_rate_start).collect();
        let reads: Vec<usize> = (0..17).filter(|&i| dues[i].groups == dirty).collect();
        assert_eq!((starts, reads), (vec![0, 6, 12], vec![4, 10, 16]));
        // Shorter than its reading takes: stretched to one cycle beyond it.
        let parts = [(Part::Bulk(dirty), MS(500))];
        let dues = run(&mut Cadence::new(&parts, MS(500)), 8);
        let starts: Vec<usize> = (0..8).filter(|&i| dues[i].dirty_rate_start).collect();
        assert_eq!(starts, [0, 5]);
        // At 5 s polls, read by the next cycle.
        let dues = run(&mut Cadence::new(&parts, MS(5000)), 4);
        let reads: Vec<usize> = (0..4).filter(|&i| dues[i].groups == dirty).collect();
        assert_eq!(reads, [1, 3]);
    }

    #[test]
    fn what_a_failed_cycle_was_to_carry_comes_with_the_next() {
        let parts = [
            (Part::Bulk(StatsGroups::BLOCK), MS(500)),
            (Part::Bulk(StatsGroups::BALLOON), MS(2000)),
            (Part::Guest, MS(2000)),
        ];
        let mut cadence = Cadence::new(&parts, MS(500));
        let first = cadence.next_cycle();
        assert!(first.guest && first.groups.contains(StatsGroups::BALLOON));
        cadence.missed(first);
        let again = cadence.next_cycle();
        assert_eq!(again, first);
        // Then on its own count again, from the cycle that carried it.
        let later = run(&mut cadence, 4);
        let balloon: Vec<bool> = later
            .iter()
            .map(|d| d.groups.contains(StatsGroups::BALLOON))
            .collect();
        assert_eq!(balloon, [false, false, false, true]);
        assert!(!Due::default().has_stats());
    }

    #[test]
    fn the_disks_sizes_come_at_their_own_cadence_with_the_block_group_in_its_bulk_call() {
        let block = StatsGroups::BLOCK;
        // Counters every 2 polls, sizes every 6, the interface every poll.
        let parts = [
            (Part::Bulk(block), MS(1000)),
            (Part::BlockSizes, MS(3000)),
            (Part::Bulk(StatsGroups::INTERFACE), MS(500)),
        ];
        let mut cadence = Cadence::new(&parts, MS(500));
        let dues = run(&mut cadence, 13);
        let sizes: Vec<usize> = (0..13).filter(|&i| dues[i].block_sizes).collect();
        let blocks: Vec<usize> = (0..13)
            .filter(|&i| dues[i].groups.contains(block))
            .collect();
        assert_eq!(sizes, [0, 6, 12]);
        assert_eq!(blocks, [0, 2, 4, 6, 8, 10, 12]);
        assert!(
            dues.iter()
                .all(|d| d.groups.contains(StatsGroups::INTERFACE))
        );
        // Due more often than the counters: a sizes cycle carries the block group too.
        let parts = [(Part::Bulk(block), MS(1500)), (Part::BlockSizes, MS(1000))];
        let dues = run(&mut Cadence::new(&parts, MS(500)), 4);
        let groups: Vec<bool> = dues.iter().map(|d| d.groups.contains(block)).collect();
        assert_eq!(groups, [true, false, true, true]);
        // A failed sizes cycle's sizes come with the next one.
        let parts = [(Part::Bulk(block), MS(500)), (Part::BlockSizes, MS(5000))];
        let mut cadence = Cadence::new(&parts, MS(500));
        let first = cadence.next_cycle();
        assert!(first.block_sizes);
        cadence.missed(first);
        assert!(cadence.next_cycle().block_sizes);
        assert!(!cadence.next_cycle().block_sizes);
    }
}
