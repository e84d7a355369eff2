//! Reporters: they consume a [`crate::record::RunRecord`] and write files (all file IO of the
//! library lives here).

pub mod files;
pub mod npy;
pub mod plots;
pub mod repro;
pub mod sweep;

use std::path::Path;

use crate::config::Experiment;
use crate::record::RunRecord;
use crate::Result;

/// Writes every output of a run into its (fresh) directory: data files, plots, then the report
/// with the hashes of everything before it; finally removes the `INCOMPLETE` marker. Returns
/// `(file, sha256)` pairs.
pub fn write_run(
    dir: &Path,
    record: &RunRecord,
    exp: &Experiment,
) -> Result<Vec<(String, String)>> {
    let mut hashes = Vec::new();
    for (name, bytes) in files::data_files(record) {
        files::write_atomic(&dir.join(&name), &bytes)?;
        hashes.push((name, repro::sha256_hex(&bytes)));
    }
    let plots = plots::write_all(dir, record)?;
    for p in &plots {
        let path = dir.join(p);
        let bytes = std::fs::read(&path).map_err(|e| crate::Error::io(&path, e))?;
        hashes.push((p.clone(), repro::sha256_hex(&bytes)));
    }
    let env = repro::Environment::detect();
    let json = repro::report_json(record, exp, &env, &hashes);
    files::write_atomic(
        &dir.join("report.json"),
        (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
    )?;
    files::write_atomic(
        &dir.join("report.md"),
        repro::report_md(record, exp, &env, &hashes, &plots).as_bytes(),
    )?;
    files::mark_complete(dir)?;
    Ok(hashes)
}
