//! When `vm_guest_info` is written: a guest's identity changes seldom, so its line goes out when
//! it changed, and once an hour besides (so a query over the last hour always finds it).

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{GuestInfo, GuestSample};

/// At least this long between two identical lines of a VM.
pub const REWRITE_NS: i64 = 3_600_000_000_000;

/// Per host and VM: the identity last written, and when.
#[derive(Debug, Default)]
pub struct InfoLog {
    written: HashMap<(Arc<str>, Uuid), (GuestInfo, i64)>,
}

impl InfoLog {
    /// Which of `samples` (one host's cycle, at `uri`) get a `vm_guest_info` line now. VMs of that
    /// host whose agent did not answer are forgotten: their next answer is written.
    pub fn due<'a>(&mut self, uri: &Arc<str>, samples: &'a [GuestSample]) -> Vec<&'a GuestSample> {
        let mut due = Vec::new();
        let mut answered = HashMap::with_capacity(samples.len());
        for sample in samples.iter().filter(|s| !s.info.is_empty()) {
            let key = (Arc::clone(uri), sample.uuid);
            let last = self.written.remove(&key);
            let entry = match last {
                Some((info, at))
                    if info == sample.info
                        && sample.timestamp_ns.saturating_sub(at) < REWRITE_NS =>
                {
                    (info, at)
                }
                _ => {
                    due.push(sample);
                    (sample.info.clone(), sample.timestamp_ns)
                }
            };
            answered.insert(key, entry);
        }
        self.written.retain(|(host, _), _| host != uri);
        self.written.extend(answered);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u128, hostname: &str, at: i64) -> GuestSample {
        GuestSample {
            uuid: Uuid::from_u128(n),
            name: format!("vm-{n}"),
            id: Some(1),
            timestamp_ns: at,
            filesystems: Vec::new(),
            info: GuestInfo {
                hostname: Some(hostname.into()),
                ..GuestInfo::default()
            },
            rejected: 0,
        }
    }

    fn due(log: &mut InfoLog, uri: &Arc<str>, samples: &[GuestSample]) -> Vec<u128> {
        log.due(uri, samples)
            .iter()
            .map(|s| s.uuid.as_u128())
            .collect()
    }

    #[test]
    fn written_when_new_changed_an_hour_old_or_back_after_silence() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut log = InfoLog::default();
        assert_eq!(
            due(&mut log, &a, &[sample(1, "x", 0), sample(2, "y", 0)]),
            [1, 2]
        );
        assert!(due(&mut log, &a, &[sample(1, "x", 5), sample(2, "y", 5)]).is_empty());
        // Another host's VM of the same uuid is its own.
        assert_eq!(due(&mut log, &b, &[sample(1, "x", 6)]), [1]);
        assert_eq!(
            due(&mut log, &a, &[sample(1, "x2", 7), sample(2, "y", 7)]),
            [1]
        );
        assert_eq!(
            due(
                &mut log,
                &a,
                &[sample(1, "x2", REWRITE_NS + 6), sample(2, "y", REWRITE_NS)]
            ),
            [2]
        );
        // Vm 2 was silent for a cycle: forgotten, written again when back.
        assert!(due(&mut log, &a, &[sample(1, "x2", REWRITE_NS + 6)]).is_empty());
        assert_eq!(due(&mut log, &a, &[sample(2, "y", REWRITE_NS + 9)]), [2]);
        assert!(due(&mut log, &b, &[sample(1, "x", 10)]).is_empty());
        let empty = GuestSample {
            info: GuestInfo::default(),
            ..sample(3, "", 11)
        };
        assert!(due(&mut log, &a, &[empty]).is_empty());
    }
}
