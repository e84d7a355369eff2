//! From a checked config to files on disk: one experiment into one fresh run directory (load
//! data, check, create the directory, compute, write), and a sweep's points each into its own
//! ([`sweep`]).

pub mod kernel_shards;
pub mod slurm;
pub mod sweep;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::config::Experiment;
use crate::record::RunRecord;
use crate::report::{self, io};
use crate::run::{self, RunOptions};
use crate::{data, Error, Result};

/// Validates the data, creates a fresh run directory (`out`, or one under `outputs.dir`), runs
/// the experiment and writes every output. Bad input fails before anything is created; a failed
/// run leaves its directory marked `INCOMPLETE`.
pub fn run_into(
    exp: &Experiment,
    out: Option<&Path>,
    opts: &RunOptions<'_>,
) -> Result<(RunRecord, PathBuf)> {
    run::preflight_config(exp)?;
    let ds = data::load(&exp.data, exp.seed)?;
    let resolved = exp.resolved_for(&ds)?;
    let exp = &resolved;
    let footprint = run::memory::preflight_into(exp, &ds, out)?;
    if footprint.seconds > run::memory::LONG_RUN_SECONDS {
        opts.progress.note(&format!(
            "{}: estimated ~{:.0} min at {:.0} GFLOP/s (peak memory ~{:.1} GiB)",
            exp.name,
            footprint.seconds / 60.0,
            run::memory::ASSUMED_FLOPS / 1e9,
            footprint.peak_bytes as f64 / (1u64 << 30) as f64
        ));
    }
    let dir = io::create_run_dir(&exp.outputs.dir, &exp.name, exp.seed, out)?;
    let mut record = match run::execute(exp, &ds, opts) {
        Ok(r) => r,
        Err(e) => {
            // Nothing is written before the run ends: a run that fails leaves no directory
            // behind (only its INCOMPLETE marker would be in it).
            let only_marker = std::fs::read_dir(&dir)
                .map(|es| {
                    es.filter_map(|e| e.ok())
                        .all(|e| e.file_name() == io::INCOMPLETE_MARKER)
                })
                .unwrap_or(false);
            if only_marker {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(match e {
                Error::Numerics(m) if !only_marker => Error::Numerics(format!(
                    "{m} (partial outputs in {}, marked INCOMPLETE)",
                    dir.display()
                )),
                other => other,
            });
        }
    };
    record.config_toml = exp.resolved_toml_in(&dir);
    report::write_run(&dir, &record, exp, &footprint)?;
    Ok((record, dir))
}
