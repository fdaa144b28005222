//! What a guest's agent says about it (`vm_guest_fs`, `vm_guest_info`) as plain data: read by the
//! host's worker from `virDomainGetGuestInfo`'s typed parameters, bounded against an agent that
//! answers nonsense (a guest's agent is the guest's, not the host's: anything may come back).

mod info_log;

pub use info_log::InfoLog;

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::libvirt::bulk_stats::DomainStats;

pub const VM_GUEST_FS: &str = "vm_guest_fs";
pub const VM_GUEST_INFO: &str = "vm_guest_info";
/// Filesystems kept per guest, in the agent's order; the rest are counted as rejected.
pub const MAX_FILESYSTEMS: usize = 64;
/// The longest tag or string kept, in bytes; longer ones are cut at a character boundary.
pub const MAX_TEXT: usize = 256;

/// One mounted filesystem: its tags and sizes (`used_bytes` ≤ `total_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct GuestFs {
    pub mountpoint: String,
    pub fstype: String,
    pub device: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

impl GuestFs {
    /// None for a filesystem of no size.
    pub fn used_percent(&self) -> Option<f64> {
        (self.total_bytes > 0).then(|| self.used_bytes as f64 / self.total_bytes as f64 * 100.0)
    }
}

/// The guest's identity as its agent tells it; any part it did not tell is None.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestInfo {
    pub os_id: Option<String>,
    pub os_version: Option<String>,
    pub kernel_release: Option<String>,
    pub hostname: Option<String>,
    pub users: Option<u64>,
}

impl GuestInfo {
    pub fn is_empty(&self) -> bool {
        *self == GuestInfo::default()
    }
}

/// One domain's answer, stamped when it came.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestSample {
    pub uuid: Uuid,
    pub name: String,
    /// libvirt's id of the running domain (the `VMID` tag).
    pub id: Option<u32>,
    pub timestamp_ns: i64,
    pub filesystems: Vec<GuestFs>,
    pub info: GuestInfo,
    /// Filesystems and parameters left out as nonsense: missing or negative sizes, used beyond
    /// total, no mountpoint, repeats, beyond `MAX_FILESYSTEMS`, undecodable parameters.
    pub rejected: usize,
}

/// What became of one running domain's agent this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Answering,
    /// Configured, but it did not answer (in time, or at all).
    Silent,
    /// The domain has no guest agent channel.
    Absent,
}

/// The guest agents of a host's running (filtered) domains in the last guest cycle.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct GuestAgents {
    /// Answered: their rows were written.
    pub answering: usize,
    /// Configured but did not answer within `guest_agent_timeout` (or at all): no rows.
    pub silent: usize,
    /// No guest agent channel: no rows, and not an error.
    pub absent: usize,
    /// Wall time of the guest calls, in seconds.
    pub duration_sec: f64,
    /// Since start: filesystems and values left out as nonsense (missing or negative sizes, used
    /// beyond total, repeats, beyond 64 filesystems a guest).
    pub rejected_values: u64,
    /// The last failure other than a silent or absent agent.
    pub last_error: Option<String>,
    /// Since start: rounds due while the last was still asking (agents slower than the
    /// group's interval), skipped.
    pub rounds_skipped: u64,
}

/// Every running (filtered) domain's agent of one host in one round.
#[derive(Debug, Clone, Default)]
pub struct GuestCycle {
    pub host: Arc<str>,
    pub samples: Vec<GuestSample>,
    pub answering: usize,
    pub silent: usize,
    pub absent: usize,
    /// The first failure other than a silent or absent agent, for the host's status.
    pub failed: Option<String>,
    /// Rounds due while this one was asking, skipped.
    pub skipped_rounds: usize,
}

impl GuestSample {
    /// The answer `stats` (its params from `virDomainGetGuestInfo`, its uuid and name set).
    /// None without a uuid.
    pub fn from_params(stats: &DomainStats, id: Option<u32>, timestamp_ns: i64) -> Option<Self> {
        let mut rejected = stats.skipped;
        let filesystems = filesystems(stats, &mut rejected);
        let text = |field: &str| stats.get_str(field).and_then(bounded);
        let info = GuestInfo {
            os_id: text("os.id"),
            os_version: text("os.version-id").or_else(|| text("os.version")),
            kernel_release: text("os.kernel-release"),
            hostname: text("hostname"),
            users: stats.get_u64("user.count"),
        };
        Some(GuestSample {
            uuid: stats.uuid?,
            name: stats.name.clone(),
            id,
            timestamp_ns,
            filesystems,
            info,
            rejected,
        })
    }
}

/// `fs.<n>.*` for n below `fs.count`, each kept only when whole and sane.
fn filesystems(stats: &DomainStats, rejected: &mut usize) -> Vec<GuestFs> {
    let count = stats.get_u64("fs.count").unwrap_or(0);
    let kept = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(MAX_FILESYSTEMS);
    *rejected += usize::try_from(count).unwrap_or(usize::MAX) - kept;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in 0..kept {
        let text = |suffix: &str| stats.get_str(&format!("fs.{n}.{suffix}")).and_then(bounded);
        let size = |suffix: &str| stats.get_u64(&format!("fs.{n}.{suffix}"));
        let fs = match (text("mountpoint"), text("fstype"), text("name")) {
            (Some(mountpoint), Some(fstype), Some(device)) => {
                match (size("total-bytes"), size("used-bytes")) {
                    (Some(total_bytes), Some(used_bytes)) if used_bytes <= total_bytes => {
                        Some(GuestFs {
                            mountpoint,
                            fstype,
                            device,
                            total_bytes,
                            used_bytes,
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match fs {
            Some(fs) if seen.insert(fs.mountpoint.clone()) => out.push(fs),
            _ => *rejected += 1,
        }
    }
    out
}

/// `text` cut to `MAX_TEXT` bytes at a character boundary; None when empty.
fn bounded(text: &str) -> Option<String> {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (end > 0).then(|| text[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::bulk_stats::StatValue::{self, LLong, UInt, ULLong};

    fn answer(params: Vec<(String, StatValue)>) -> GuestSample {
        let stats = DomainStats {
            uuid: Some(Uuid::from_u128(7)),
            name: "vm".into(),
            params,
            skipped: 0,
        };
        GuestSample::from_params(&stats, Some(3), 1_000).unwrap()
    }

    fn fs(n: usize, mount: &str, total: StatValue, used: StatValue) -> Vec<(String, StatValue)> {
        vec![
            (
                format!("fs.{n}.mountpoint"),
                StatValue::String(mount.into()),
            ),
            (format!("fs.{n}.name"), StatValue::String("vda1".into())),
            (format!("fs.{n}.fstype"), StatValue::String("ext4".into())),
            (format!("fs.{n}.total-bytes"), total),
            (format!("fs.{n}.used-bytes"), used),
        ]
    }

    #[test]
    fn a_whole_answer_gives_its_filesystems_and_identity() {
        let mut params = vec![("fs.count".to_owned(), UInt(2))];
        params.extend(fs(0, "/", ULLong(10_000), ULLong(2_500)));
        params.extend(fs(1, "/srv/a b,c=\"d\"é", ULLong(4), ULLong(4)));
        for (k, v) in [
            ("os.id", "debian"),
            ("os.version-id", "12"),
            ("os.version", "12 (bookworm)"),
            ("os.kernel-release", "6.1.0"),
            ("hostname", "web-1"),
        ] {
            params.push((k.into(), StatValue::String(v.into())));
        }
        params.push(("user.count".into(), UInt(2)));
        let sample = answer(params);
        assert_eq!(sample.rejected, 0);
        assert_eq!(sample.id, Some(3));
        assert_eq!(sample.filesystems.len(), 2);
        let root = &sample.filesystems[0];
        assert_eq!(
            (root.mountpoint.as_str(), root.device.as_str()),
            ("/", "vda1")
        );
        assert_eq!((root.total_bytes, root.used_bytes), (10_000, 2_500));
        assert_eq!(root.used_percent(), Some(25.0));
        assert_eq!(sample.filesystems[1].mountpoint, "/srv/a b,c=\"d\"é");
        assert_eq!(sample.filesystems[1].used_percent(), Some(100.0));
        let expected = GuestInfo {
            os_id: Some("debian".into()),
            os_version: Some("12".into()),
            kernel_release: Some("6.1.0".into()),
            hostname: Some("web-1".into()),
            users: Some(2),
        };
        assert_eq!(sample.info, expected);
    }

    #[test]
    fn nonsense_is_left_out_and_counted() {
        let mut params = vec![("fs.count".to_owned(), UInt(7))];
        params.extend(fs(0, "/neg", LLong(-1), ULLong(0)));
        params.extend(fs(1, "/over", ULLong(10), ULLong(11)));
        params.extend(fs(2, "/ok", ULLong(10), ULLong(1)));
        params.extend(fs(3, "/ok", ULLong(20), ULLong(2)));
        params.extend(fs(4, "", ULLong(10), ULLong(1)));
        params.extend(fs(5, "/text", StatValue::String("big".into()), ULLong(1)));
        // fs.6: missing altogether.
        params.push((
            "hostname".into(),
            StatValue::String("h".repeat(MAX_TEXT) + "é"),
        ));
        let sample = answer(params);
        let kept: Vec<&str> = sample
            .filesystems
            .iter()
            .map(|f| f.mountpoint.as_str())
            .collect();
        assert_eq!(kept, ["/ok"]);
        assert_eq!(
            sample.filesystems[0].total_bytes, 10,
            "the first of a repeat"
        );
        assert_eq!(sample.rejected, 6);
        assert_eq!(
            sample.info.hostname.as_deref().map(str::len),
            Some(MAX_TEXT)
        );
        assert_eq!(sample.info.users, None);
        assert_eq!(sample.filesystems[0].used_percent(), Some(10.0));
        let empty = GuestFs {
            total_bytes: 0,
            used_bytes: 0,
            ..sample.filesystems[0].clone()
        };
        assert_eq!(empty.used_percent(), None);
    }

    #[test]
    fn thousands_of_mounts_are_bounded() {
        let mut params = vec![("fs.count".to_owned(), ULLong(u64::MAX))];
        for n in 0..5000 {
            params.extend(fs(n, &format!("/m{n}"), ULLong(8), ULLong(1)));
        }
        let sample = answer(params);
        assert_eq!(sample.filesystems.len(), MAX_FILESYSTEMS);
        assert_eq!(sample.filesystems[MAX_FILESYSTEMS - 1].mountpoint, "/m63");
        assert_eq!(sample.rejected, usize::MAX - MAX_FILESYSTEMS);
    }

    #[test]
    fn an_empty_answer_is_no_row_and_no_identity() {
        let sample = answer(Vec::new());
        assert!(sample.filesystems.is_empty() && sample.info.is_empty());
        assert_eq!(sample.rejected, 0);
        let no_uuid = DomainStats {
            uuid: None,
            name: String::new(),
            params: Vec::new(),
            skipped: 2,
        };
        assert_eq!(GuestSample::from_params(&no_uuid, None, 0), None);
    }
}
