//! Memory the process holds but no longer uses, given back to the system: the C allocator's free
//! pages, and the clean pages start-up touched.

use std::time::Duration;

/// Start-up is over by then: the connections opened, the first cycles collected and written.
pub const START_UP: Duration = Duration::from_secs(30);

/// Gives the pages of freed heap memory back to the kernel, in every malloc arena. A cycle frees
/// megabytes of short-lived buffers (libvirt's replies, the samples, the spool's commit) among
/// long-lived ones, and glibc only trims the top of a heap: the freed pages would stay resident
/// until the next cycle takes them again, ≈ 2 MB at 10,000 VMs (benches/README.md).
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases pages of the allocator's own free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Has the kernel reclaim the clean pages of code and read-only data that only this process
/// maps. Start-up touches far more of them than a cycle does (the binary's text is 73 % resident
/// for 2.5 MB a cycle uses, benches/README.md); being clean they are dropped, not written
/// anywhere, and a page touched again is read back from its file. The kernel leaves alone the
/// pages other processes map too (libvirtd's libraries) and those it cannot drop. Returns the
/// bytes of the mappings advised.
pub fn reclaim_clean_pages() -> std::io::Result<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut advised = 0;
    for (start, end) in maps.lines().filter_map(read_only_file_mapping) {
        // SAFETY: the range is one of this process's mappings, and MADV_PAGEOUT changes no
        // content: a reclaimed page is read back from its file when touched.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) }
            == 0
        {
            advised += end - start;
        }
    }
    Ok(advised)
}

/// The address range of a line of `/proc/self/maps` that maps a file without write access.
fn read_only_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let (range, permissions) = (fields.next()?, fields.next()?);
    let path = fields.nth(3)?;
    if permissions.contains('w') || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let address = |hex| usize::from_str_radix(hex, 16).ok();
    Some((address(start)?, address(end)?))
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn freed_memory_below_live_memory_goes_back_to_the_system() {
        const FREED: usize = 32 << 20;
        let blocks: Vec<Box<[u8]>> = (0..FREED / 1024)
            .map(|i| vec![i as u8; 1024].into_boxed_slice())
            .collect();
        // Allocated after them, so what they leave is in the middle of the heap, not at its top.
        let live = std::hint::black_box(vec![1u8; 1024]);
        drop(std::hint::black_box(blocks));
        let before = resident_bytes();
        give_back_free_memory();
        let after = resident_bytes();
        assert!(
            before.saturating_sub(after) >= FREED as u64 / 2,
            "{before} bytes resident before, {after} after"
        );
        drop(live);
    }

    #[test]
    fn only_read_only_file_mappings_are_reclaimed() {
        let line = |rest| format!("7f00-7f10 {rest}");
        assert_eq!(
            read_only_file_mapping(&line("r-xp 00000000 fe:01 42 /usr/lib/libvirt.so.0")),
            Some((0x7f00, 0x7f10))
        );
        for rest in [
            "rw-p 00001000 fe:01 42 /usr/lib/libvirt.so.0",
            "rw-p 00000000 00:00 0 [heap]",
            "r--p 00000000 00:00 0 [vvar]",
            "rw-p 00000000 00:00 0",
        ] {
            assert_eq!(read_only_file_mapping(&line(rest)), None, "{rest}");
        }
    }

    #[test]
    fn clean_file_pages_touched_once_go_back_to_the_system() {
        use std::io::Write;
        const MAPPED: usize = 8 << 20;
        // On the disk the tests run from: a tmpfs page would have nowhere to go.
        let directory = std::env::current_exe().unwrap();
        let mut file = tempfile::tempfile_in(directory.parent().unwrap()).unwrap();
        file.write_all(&vec![7u8; MAPPED]).unwrap();
        file.sync_all().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: a fresh read-only mapping of a file this test owns, unmapped below.
        let mapped = unsafe {
            let flags = libc::MAP_PRIVATE;
            libc::mmap(std::ptr::null_mut(), MAPPED, libc::PROT_READ, flags, fd, 0)
        };
        assert_ne!(mapped, libc::MAP_FAILED);
        // SAFETY: the mapping is MAPPED bytes long and readable.
        let pages = unsafe { std::slice::from_raw_parts(mapped as *const u8, MAPPED) };
        let sum: u64 = pages.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 7 * (MAPPED / 4096) as u64);
        let before = resident_kb_of(mapped as usize);
        let advised = reclaim_clean_pages().unwrap();
        let after = resident_kb_of(mapped as usize);
        // SAFETY: the mapping made above, no longer read.
        unsafe { libc::munmap(mapped, MAPPED) };
        assert!(advised >= MAPPED, "{advised} bytes advised");
        assert_eq!(before, MAPPED as u64 >> 10);
        assert!(
            after <= before / 2,
            "{before} KiB resident before, {after} after"
        );
    }

    /// The resident KiB of the mapping at `start`, from `/proc/self/smaps` (the process's own
    /// figure moves with the other tests' memory).
    fn resident_kb_of(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        let header = format!("{start:x}-");
        lines.find(|line| line.starts_with(&header)).unwrap();
        let rss = lines.find(|line| line.starts_with("Rss:")).unwrap();
        rss.split_ascii_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }
}
