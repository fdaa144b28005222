//! How many bytes of lines the spool may hold: `spool_max_bytes`, and what its filesystem can
//! still take while `spool_min_free_bytes` stay free, the file counted by the blocks it really
//! occupies. The oldest lines make room before the disk is full, not after.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The most disk a byte of lines takes in the file: redb's pages, its allocator's rounding and
/// the pages a commit frees only for later ones (benches/README.md).
const DISK_PER_LINE_BYTE: u64 = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The blocks the file occupies: its length may be larger (sparse), or smaller.
    pub file_bytes: u64,
    /// What its filesystem still gives an unprivileged user.
    pub free_bytes: u64,
}

pub fn measure(file: &Path) -> io::Result<Usage> {
    let blocks = std::fs::metadata(file)?.blocks();
    let filesystem = rustix::fs::statvfs(file)?;
    Ok(Usage {
        file_bytes: blocks.saturating_mul(512),
        free_bytes: filesystem.f_bavail.saturating_mul(filesystem.f_frsize),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `spool_max_bytes`: bytes of lines.
    pub max_bytes: u64,
    /// `spool_min_free_bytes`.
    pub min_free: u64,
}

impl Limits {
    /// Bytes of lines that fit: the file may grow into the free space but `min_free`, and reuses
    /// its own free pages first.
    pub fn allowed(&self, usage: Usage) -> u64 {
        let disk = (usage.file_bytes + usage.free_bytes).saturating_sub(self.min_free);
        self.max_bytes.min(disk / DISK_PER_LINE_BYTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn lines_fit_in_the_disk_left_twice_over_and_within_max_bytes() {
        let limits = Limits {
            max_bytes: 100 * MIB,
            min_free: MIB,
        };
        let usage = |file, free| Usage {
            file_bytes: file * MIB,
            free_bytes: free * MIB,
        };
        assert_eq!(limits.allowed(usage(0, 1000)), 100 * MIB, "max_bytes first");
        assert_eq!(limits.allowed(usage(2, 3)), 2 * MIB);
        // A file that grew and drained keeps its blocks for the lines to come.
        assert_eq!(limits.allowed(usage(9, 0)), 4 * MIB);
        assert_eq!(limits.allowed(usage(0, 1)), 0, "the reserve is never used");
        assert_eq!(limits.allowed(usage(0, 0)), 0);
    }

    #[test]
    fn a_file_is_measured_by_its_blocks_on_its_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let sparse = std::fs::File::create(&path).unwrap();
        sparse.set_len(64 * MIB).unwrap();
        let before = measure(&path).unwrap();
        assert!(before.file_bytes < MIB, "a hole takes no disk: {before:?}");
        assert!(before.free_bytes > 0);
        std::fs::write(&path, vec![1u8; MIB as usize]).unwrap();
        let after = measure(&path).unwrap();
        assert!(after.file_bytes >= MIB, "{after:?}");
    }
}
