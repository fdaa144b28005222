//! A VM's recent samples, held compactly: the latest is the VM record's own, each earlier one is
//! its difference from the one after it in a few varint bytes (about 9, against 40 in full): the
//! largest part of a VM's memory.

use integer_encoding::VarInt;

use crate::sample::{DomainSample, MemoryFeatures, VmState};

#[derive(Default)]
pub(super) struct RecentSamples {
    /// One entry per earlier sample, oldest first, each its difference from the sample after it
    /// (see `encode`); the last one's is from the latest. One more is kept than shown, so that
    /// the oldest shown still has the sample its features were derived from.
    deltas: Vec<u8>,
    entries: u32,
    /// Whether features were derived for the latest sample.
    latest_derived: bool,
    /// The host's cycle (wrapping) the latest sample is from, for the table to forget the VMs
    /// missing from a cycle. Kept here, in room the fields above leave, so that a VM's record
    /// stays within 120 bytes (one 128-byte heap chunk).
    pub seen_in: u8,
    /// Whether the VM's lines that cannot be encoded were logged: once in its record's life.
    /// In the same spare room.
    pub unencodable_logged: bool,
}

/// One sample as shown. Its features are not kept: they are exactly those of the sample before
/// it and this one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Recorded {
    pub timestamp_ns: i64,
    pub memory_max_kb: u64,
    pub memory_used_kb: u64,
    pub cputime_ns: u64,
    pub cpu_count: u32,
    pub state: VmState,
    /// Whether features were derived for it (not for a VM's first sample, nor after a restart).
    pub derived: bool,
}

impl Recorded {
    pub fn new(sample: &DomainSample, derived: bool) -> Self {
        Recorded {
            timestamp_ns: sample.timestamp_ns,
            memory_max_kb: sample.memory_max_kb,
            memory_used_kb: sample.memory_used_kb,
            cputime_ns: sample.cputime_ns,
            cpu_count: sample.cpu_count,
            state: sample.state,
            derived,
        }
    }

    /// Its CPU use since `before`, in percent of its vCPUs: Δ`cputime_ns` / (Δt × vCPUs); none
    /// across a restart (CPU time going back) or without time passing.
    fn cpu_percent_after(&self, before: &Recorded) -> Option<f64> {
        let elapsed = self.timestamp_ns.checked_sub(before.timestamp_ns)?;
        let used = self.cputime_ns.checked_sub(before.cputime_ns)?;
        (elapsed > 0 && self.cpu_count > 0)
            .then(|| used as f64 / (elapsed as f64 * f64::from(self.cpu_count)) * 100.0)
    }

    fn memory(&self) -> (i64, u64) {
        (self.timestamp_ns, self.memory_used_kb)
    }

    /// Its features, derived from `before`, the sample before it, if they were derived at all.
    fn features_after(&self, before: &Recorded) -> Option<MemoryFeatures> {
        self.derived
            .then(|| MemoryFeatures::from_memory(before.memory(), self.memory()))
            .flatten()
    }
}

const STATES: [VmState; 9] = [
    VmState::NoState,
    VmState::Running,
    VmState::Blocked,
    VmState::Paused,
    VmState::Shutdown,
    VmState::Stopped,
    VmState::Crashed,
    VmState::PmSuspended,
    VmState::Unknown,
];
const STATE_MASK: u8 = 0x0f;
const DERIVED: u8 = 0x10;
const TIME_IN_MICROSECONDS: u8 = 0x20;
const CPU_IN_MICROSECONDS: u8 = 0x40;
const OTHERS_CHANGED: u8 = 0x80;
/// A header byte, four 64-bit varints and a 32-bit one.
const MAX_ENTRY: usize = 1 + 4 * 10 + 5;
/// Room reserved per sample at a VM's first one (see `encode`): the header, then 4 bytes each for
/// time and CPU time, whole µs up to 2²⁷ (134 s) as the sampler times them and cgroup v2 counts
/// them, so memory and vCPU count unchanged. Less room, grown exactly, fragments the heap as
/// entries outgrow it one by one.
const TYPICAL_ENTRY: usize = 9;

/// `target` as its difference from `base`: a header byte (`target`'s state, derived flag, and
/// flags), the timestamp's and the CPU time's differences, each in µs when it is a whole number
/// of them (a flag each: cgroup v2 and libvirt's test driver count CPU time in µs), then, only if
/// one of them changed (a flag), the differences of used and maximum memory and the vCPU count.
/// All zigzag varints of wrapping differences: any pair of values, counters that reset included,
/// comes back exactly, whichever of the two is the earlier.
fn encode(base: &Recorded, target: &Recorded, out: &mut Vec<u8>) {
    let mut entry = [0u8; MAX_ENTRY];
    let state = STATES.iter().position(|s| *s == target.state).unwrap_or(0) as u8;
    let mut header = state | if target.derived { DERIVED } else { 0 };
    let mut at = 1;
    for (difference, flag) in [
        (
            target.timestamp_ns.wrapping_sub(base.timestamp_ns),
            TIME_IN_MICROSECONDS,
        ),
        (
            target.cputime_ns.wrapping_sub(base.cputime_ns) as i64,
            CPU_IN_MICROSECONDS,
        ),
    ] {
        if difference % 1000 == 0 {
            header |= flag;
            at += (difference / 1000).encode_var(&mut entry[at..]);
        } else {
            at += difference.encode_var(&mut entry[at..]);
        }
    }
    if (
        target.memory_used_kb,
        target.memory_max_kb,
        target.cpu_count,
    ) != (base.memory_used_kb, base.memory_max_kb, base.cpu_count)
    {
        header |= OTHERS_CHANGED;
        for difference in [
            target.memory_used_kb.wrapping_sub(base.memory_used_kb),
            target.memory_max_kb.wrapping_sub(base.memory_max_kb),
        ] {
            at += (difference as i64).encode_var(&mut entry[at..]);
        }
        at += target.cpu_count.encode_var(&mut entry[at..]);
    }
    entry[0] = header;
    out.extend_from_slice(&entry[..at]);
}

/// The sample `base` was encoded against, from the entry at the start of `bytes`, and the entry's
/// length. `None` only if `bytes` does not start with a whole entry, which `encode` never leaves.
fn decode(base: &Recorded, bytes: &[u8]) -> Option<(Recorded, usize)> {
    let header = *bytes.first()?;
    let mut at = 1;
    let mut next = || {
        let (value, used) = i64::decode_var(bytes.get(at..)?)?;
        at += used;
        Some(value)
    };
    let in_ns = |value: i64, flag: u8| {
        if header & flag != 0 {
            value.wrapping_mul(1000)
        } else {
            value
        }
    };
    let dt = in_ns(next()?, TIME_IN_MICROSECONDS);
    let dcpu = in_ns(next()?, CPU_IN_MICROSECONDS);
    let (mut used_kb, mut max_kb, mut cpu_count) =
        (base.memory_used_kb, base.memory_max_kb, base.cpu_count);
    if header & OTHERS_CHANGED != 0 {
        used_kb = used_kb.wrapping_add(next()? as u64);
        max_kb = max_kb.wrapping_add(next()? as u64);
        let (count, used) = u32::decode_var(bytes.get(at..)?)?;
        at += used;
        cpu_count = count;
    }
    let target = Recorded {
        timestamp_ns: base.timestamp_ns.wrapping_add(dt),
        cputime_ns: base.cputime_ns.wrapping_add(dcpu as u64),
        memory_used_kb: used_kb,
        memory_max_kb: max_kb,
        cpu_count,
        state: *STATES.get(usize::from(header & STATE_MASK))?,
        derived: header & DERIVED != 0,
    };
    Some((target, at))
}

/// The length of the entry at the start of `bytes`, read without decoding it: the header says
/// how many varints follow, and a varint ends at its first byte under 0x80.
fn entry_len(bytes: &[u8]) -> Option<usize> {
    let header = *bytes.first()?;
    let varints = if header & OTHERS_CHANGED != 0 { 5 } else { 2 };
    let mut at = 1;
    for _ in 0..varints {
        at += bytes.get(at..)?.iter().position(|b| b & 0x80 == 0)? + 1;
    }
    Some(at)
}

impl RecentSamples {
    /// A VM's first sample: no earlier one, no features. Room is reserved for the entries of
    /// `capacity` samples (one more than shown, less the latest).
    pub fn new(capacity: usize, seen_in: u8) -> Self {
        RecentSamples {
            deltas: Vec::with_capacity(kept_entries(capacity) * TYPICAL_ENTRY),
            entries: 0,
            latest_derived: false,
            seen_in,
            unencodable_logged: false,
        }
    }

    /// `latest` follows `previous`, the latest until now; `derived` says whether features were
    /// derived for it. The oldest goes once `capacity` samples are shown.
    pub fn push(
        &mut self,
        previous: &DomainSample,
        latest: &DomainSample,
        derived: bool,
        capacity: usize,
    ) {
        // The oldest goes first, so that the entries never outgrow the reserved room.
        if self.entries as usize >= kept_entries(capacity) {
            match entry_len(&self.deltas) {
                Some(oldest) => {
                    self.deltas.drain(..oldest);
                    self.entries -= 1;
                }
                None => {
                    self.deltas.clear();
                    self.entries = 0;
                }
            }
        }
        encode(
            &Recorded::new(latest, derived),
            &Recorded::new(previous, self.latest_derived),
            &mut self.deltas,
        );
        self.entries += 1;
        self.latest_derived = derived;
    }

    /// The features derived for `latest`, the VM's latest sample, if any.
    pub fn latest_features(&self, latest: &DomainSample) -> Option<MemoryFeatures> {
        let latest = Recorded::new(latest, self.latest_derived);
        let last = self.entry_starts().last()?;
        let (previous, _) = decode(&latest, &self.deltas[last..])?;
        latest.features_after(&previous)
    }

    /// Up to `capacity` samples, oldest first and ending with `latest`, each with its features.
    pub fn shown(
        &self,
        latest: &DomainSample,
        capacity: usize,
    ) -> Vec<(Recorded, Option<MemoryFeatures>)> {
        // Read back from the latest, each entry against the sample after it.
        let mut samples = vec![Recorded::new(latest, self.latest_derived)];
        let starts: Vec<usize> = self.entry_starts().collect();
        for start in starts.into_iter().rev() {
            let after = samples[samples.len() - 1];
            match decode(&after, &self.deltas[start..]) {
                Some((before, _)) => samples.push(before),
                None => break,
            }
        }
        let mut shown: Vec<_> = samples
            .windows(2)
            .map(|pair| (pair[0], pair[0].features_after(&pair[1])))
            .chain(samples.last().map(|oldest| (*oldest, None)))
            .take(capacity)
            .collect();
        shown.reverse();
        shown
    }

    /// The CPU use between each of the latest `pairs` pairs of samples (fewer for a VM with
    /// fewer samples), oldest first, ending with the latest's: only those entries are decoded.
    pub fn cpu_trend(&self, latest: &DomainSample, pairs: usize) -> Vec<Option<f64>> {
        let starts: Vec<usize> = self.entry_starts().collect();
        let mut after = Recorded::new(latest, self.latest_derived);
        let mut trend = Vec::with_capacity(pairs.min(starts.len()));
        for &start in starts.iter().rev().take(pairs) {
            let Some((before, _)) = decode(&after, &self.deltas[start..]) else {
                break;
            };
            trend.push(after.cpu_percent_after(&before));
            after = before;
        }
        trend.reverse();
        trend
    }

    fn entry_starts(&self) -> impl Iterator<Item = usize> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let start = at;
            at += self.deltas.get(start..).and_then(entry_len)?;
            Some(start)
        })
    }
}

/// One entry more than the samples shown but the latest: the oldest shown keeps the one its
/// features were derived from. One at least: the latest's features need it.
fn kept_entries(capacity: usize) -> usize {
    capacity.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any sample comes back exactly from its difference from any other, and its entry's
        /// length reads back without decoding it.
        #[test]
        fn differences_round_trip(
            in_microseconds in proptest::bool::ANY,
            a in (proptest::num::i64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u32::ANY, 0usize..9, proptest::bool::ANY),
            b in (proptest::num::i64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u32::ANY, 0usize..9, proptest::bool::ANY),
        ) {
            let recorded = |(t, cpu, used, max, count, state, derived): (i64, u64, u64, u64, u32, usize, bool)| Recorded {
                timestamp_ns: t,
                cputime_ns: cpu,
                memory_used_kb: used,
                memory_max_kb: max,
                cpu_count: count,
                state: STATES[state],
                derived,
            };
            let (mut base, mut target) = (recorded(a), recorded(b));
            if in_microseconds {
                for sample in [&mut base, &mut target] {
                    sample.timestamp_ns -= sample.timestamp_ns % 1000;
                    sample.cputime_ns -= sample.cputime_ns % 1000;
                }
            }
            let mut bytes = Vec::new();
            encode(&base, &target, &mut bytes);
            proptest::prop_assert!(bytes.len() <= MAX_ENTRY);
            proptest::prop_assert_eq!(entry_len(&bytes), Some(bytes.len()));
            let decoded = decode(&Recorded { derived: !base.derived, ..base }, &bytes);
            proptest::prop_assert_eq!(decoded, Some((target, bytes.len())));
            proptest::prop_assert_eq!(decode(&base, &bytes[..bytes.len() - 1]), None);
            proptest::prop_assert_eq!(entry_len(&bytes[..bytes.len() - 1]), None);
        }
    }

    /// Entries of exactly the typical size fill the reserved room and never grow it: the oldest
    /// goes before the newest is added.
    #[test]
    fn a_steady_vm_keeps_to_the_room_reserved_at_its_first_sample() {
        let mut samples = RecentSamples::new(60, 0);
        let mut previous: Option<DomainSample> = None;
        for i in 0..100u64 {
            let sample = DomainSample {
                id: Some(1),
                name: "vm".into(),
                uuid: uuid::Uuid::from_u128(1),
                state: VmState::Running,
                cpu_count: 2,
                memory_max_kb: 1 << 20,
                memory_used_kb: 1 << 19,
                // Two busy vCPUs, CPU time in µs as cgroup v2 counts it, and the default 5 s
                // poll timed to the µs: a header byte, 4 bytes of time and 4 of CPU time.
                cputime_ns: i * 10_000_000_000,
                timestamp_ns: 1_700_000_000_000_000_000 + (i * 5_000_017_000) as i64,
            };
            if let Some(previous) = &previous {
                samples.push(previous, &sample, true, 60);
            }
            previous = Some(sample);
        }
        let shown = samples.shown(&previous.unwrap(), 60);
        let cputimes: Vec<_> = shown.iter().map(|(s, _)| s.cputime_ns).collect();
        assert_eq!(
            cputimes,
            (40..100).map(|i| i * 10_000_000_000).collect::<Vec<_>>()
        );
        // The oldest shown has its features: the sample before it is kept.
        assert!(shown.iter().all(|(_, features)| features.is_some()));
        assert_eq!(samples.deltas.len(), 60 * TYPICAL_ENTRY);
        assert_eq!(samples.deltas.capacity(), 60 * TYPICAL_ENTRY);
    }
    /// The trend is Δ`cputime_ns` / (Δt × vCPUs) between each pair of the latest samples, none
    /// across a restart, and only the latest pairs asked for.
    #[test]
    fn the_cpu_trend_is_each_pairs_share_of_the_vcpus_and_none_across_a_restart() {
        let sample = |i: i64, cputime_ns: u64| DomainSample {
            id: Some(1),
            name: "vm".into(),
            uuid: uuid::Uuid::from_u128(1),
            state: VmState::Running,
            cpu_count: 4,
            memory_max_kb: 1 << 20,
            memory_used_kb: 1 << 19,
            cputime_ns,
            timestamp_ns: i * 5_000_000_000,
        };
        // 1, 2, 3 then 4 busy vCPUs of 4 over 5 s; then a restart (CPU time from 0), then 2.
        let cputimes = [0, 5, 15, 30, 50, 1, 11].map(|s: u64| s * 1_000_000_000);
        let mut samples = RecentSamples::new(60, 0);
        for i in 1..cputimes.len() {
            let (previous, latest) = (
                sample(i as i64 - 1, cputimes[i - 1]),
                sample(i as i64, cputimes[i]),
            );
            samples.push(&previous, &latest, true, 60);
        }
        let latest = sample(6, cputimes[6]);
        assert_eq!(
            samples.cpu_trend(&latest, 12),
            [
                Some(25.0),
                Some(50.0),
                Some(75.0),
                Some(100.0),
                None,
                Some(50.0)
            ]
        );
        assert_eq!(samples.cpu_trend(&latest, 2), [None, Some(50.0)]);
        assert!(RecentSamples::new(60, 0).cpu_trend(&latest, 12).is_empty());
    }
}
