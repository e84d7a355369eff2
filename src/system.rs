//! What this machine has, read from the operating system: available memory, free disk, whether
//! a path is on a real filesystem, and the process's peak memory. The lowest layer: the data
//! loaders, the run's preflight checks and the reporters all ask it.

/// Available memory from `/proc/meminfo` (or a generous default elsewhere).
pub fn available_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(16 << 30)
}

/// `statvfs` of the filesystem holding `path` (or its nearest existing ancestor, else `.`).
fn filesystem_of(path: &std::path::Path) -> Option<libc::statvfs> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            p = std::path::PathBuf::from(".");
            break;
        }
    }
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st)
}

/// Free space of the filesystem holding `path` (or its nearest existing ancestor).
pub fn free_disk_bytes(path: &std::path::Path) -> Option<u64> {
    filesystem_of(path).map(|st| st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether `path` (or its nearest existing ancestor) is on a filesystem with no blocks at all:
/// a pseudo filesystem (procfs, sysfs) that cannot hold a run.
pub fn is_pseudo_filesystem(path: &std::path::Path) -> bool {
    filesystem_of(path).is_some_and(|st| st.f_blocks == 0)
}

/// Peak resident memory of this process so far (VmHWM), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}
