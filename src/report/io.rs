//! File IO of runs and sweeps: fresh run directories with their `INCOMPLETE` marker, and the one
//! atomic write (temporary sibling, fsync, rename) that every writer uses. Errors carry the path.
//!
//! (The column layout of `metrics.csv` is documented in [`super::tables`].)
//!

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Marker file present while a run directory is being written.
pub const INCOMPLETE_MARKER: &str = "INCOMPLETE";

/// Writes `bytes` to `path` atomically: a temporary sibling, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if written.is_err() {
        // A full disk (or any failure) leaves no temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// UTC timestamp `YYYYMMDDTHHMMSSZ` of now.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_stamp_at(secs)
}

/// UTC timestamp `YYYYMMDDTHHMMSSZ` of `secs` seconds after the Unix epoch (no external clock
/// crate needed).
pub fn utc_stamp_at(secs: u64) -> String {
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil-from-days (H. Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Creates a fresh run directory: `out` itself when given (it must be absent or empty),
/// otherwise `<root>/<name>/<UTC stamp>-seed<seed>[-n]`. Marks it [`INCOMPLETE_MARKER`].
pub fn create_run_dir(root: &Path, name: &str, seed: u64, out: Option<&Path>) -> Result<PathBuf> {
    create_fresh_dir(root, name, &format!("{}-seed{seed}", utc_stamp()), out)
}

/// Creates a fresh sweep directory: `out`, or `<root>/<name>/sweep-<UTC stamp>[-n]`.
pub fn create_sweep_dir(root: &Path, name: &str, out: Option<&Path>) -> Result<PathBuf> {
    create_fresh_dir(root, name, &format!("sweep-{}", utc_stamp()), out)
}

fn create_fresh_dir(root: &Path, name: &str, base: &str, out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(o) => {
            let refuse = |message: String| Error::OutputDir {
                path: o.to_path_buf(),
                message,
            };
            if o.exists() {
                if !o.is_dir() {
                    return Err(refuse(
                        "--out names an existing file; a fresh or empty directory is required"
                            .into(),
                    ));
                }
                let mut entries = fs::read_dir(o).map_err(|e| refuse(e.to_string()))?;
                if entries.next().is_some() {
                    return Err(refuse("--out directory exists and is not empty; earlier results are never overwritten".into()));
                }
            } else {
                fs::create_dir_all(o)
                    .map_err(|e| refuse(format!("cannot create the directory: {e}")))?;
            }
            o.to_path_buf()
        }
        None => {
            let parent = root.join(name);
            fs::create_dir_all(&parent).map_err(|e| Error::OutputDir {
                path: parent.clone(),
                message: format!("cannot create the results directory: {e}"),
            })?;
            let mut n = 1;
            loop {
                let candidate = if n == 1 {
                    parent.join(base)
                } else {
                    parent.join(format!("{base}-{n}"))
                };
                match fs::create_dir(&candidate) {
                    Ok(()) => break candidate,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                    Err(e) => return Err(Error::io(&candidate, e)),
                }
            }
        }
    };
    write_atomic(
        &dir.join(INCOMPLETE_MARKER),
        b"this run did not finish writing its outputs\n",
    )?;
    Ok(dir)
}

/// Clears the directory of a sweep point that runs again: one this program left unfinished
/// (marked `INCOMPLETE`: killed mid-run or interrupted) is removed; any other non-empty one (a
/// run that completed but lost its row, or was damaged since) is renamed
/// `<dir>.kept-<UTC time>`, with whatever the user put in it.
pub fn remove_unfinished_dir(dir: &Path) -> Result<()> {
    // Only a directory this program left unfinished (marked INCOMPLETE) is deleted. Any other
    // (a finished run whose sweep row went missing, or one damaged since, with whatever the
    // user put in it) is kept under another name.
    let non_empty = fs::read_dir(dir).is_ok_and(|mut es| es.next().is_some());
    if non_empty && !dir.join(INCOMPLETE_MARKER).exists() {
        let mut kept = dir.as_os_str().to_owned();
        kept.push(format!(".kept-{}", utc_stamp()));
        return fs::rename(dir, &kept).map_err(|e| Error::io(dir, e));
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Marks a run directory complete.
pub fn mark_complete(dir: &Path) -> Result<()> {
    let p = dir.join(INCOMPLETE_MARKER);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_of_known_instants() {
        assert_eq!(utc_stamp_at(0), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC (a leap day): 951827696 s.
        assert_eq!(utc_stamp_at(951_827_696), "20000229T123456Z");
        // 2026-11-28 17:08:38 UTC.
        assert_eq!(utc_stamp_at(1_795_885_718), "20261128T170838Z");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ntk-io-test-{}", std::process::id()));
        let p = dir.join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        // A failed write (here the rename onto a non-empty directory) leaves no temporary file.
        let blocked = dir.join("a/blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"three").is_err());
        let tmp: Vec<_> = fs::read_dir(dir.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
