//! From a checked config to files on disk: one experiment into one fresh run directory (load
//! data, check, create the directory, compute, write), and a sweep's points each into its own
//! ([`sweep`]).

pub mod kernel_shards;
pub mod replot;
mod row_check;
pub mod slurm;
pub mod sweep;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::config::Experiment;
use crate::record::RunRecord;
use crate::report::{self, io};
use crate::run::{self, RunOptions};
use crate::{data, Error, Result};

/// The footprint of each experiment on its data (loaded and checked as a run would), without
/// running anything or checking its footprint against this machine's memory and disk. What
/// must be allocated to load the data (a synthetic teacher, a file being parsed) is checked
/// first unless `limits` forces it.
pub fn estimate_points(
    points: &[Experiment],
    limits: run::LimitPolicy,
) -> Result<Vec<run::Footprint>> {
    points
        .iter()
        .map(|exp| {
            run::preflight_config(exp, limits)?;
            let ds = data::load(&exp.data, exp.seed)?;
            let exp = exp.resolved_for(&ds)?;
            Ok(run::memory::estimate(
                &exp,
                run::memory::Sizes::for_run(&exp, &ds),
            ))
        })
        .collect()
}

/// Validates the data, creates a fresh run directory (`out`, or one under `outputs.dir`), runs
/// the experiment and writes every output. Bad input fails before anything is created; a failed
/// run leaves its directory marked `INCOMPLETE`.
pub fn run_into(
    exp: &Experiment,
    out: Option<&Path>,
    opts: &RunOptions<'_>,
) -> Result<(RunRecord, PathBuf)> {
    run::preflight_config(exp, opts.limits)?;
    let ds = data::load(&exp.data, exp.seed)?;
    let resolved = exp.resolved_for(&ds)?;
    let exp = &resolved;
    let footprint = run::memory::preflight_into(exp, &ds, out, opts.limits)?;
    if footprint.seconds > run::memory::LONG_RUN_SECONDS {
        opts.progress.note(&format!(
            "{}: estimated {} at the reference machine's rates (peak memory ~{:.1} GiB)",
            exp.name,
            run::memory::describe_time(&footprint),
            footprint.peak_bytes as f64 / (1u64 << 30) as f64
        ));
    }
    let dir = io::create_run_dir(&exp.outputs.dir, &exp.name, exp.seed, out)?;
    // Past the estimate (--force) an allocation may fail inside a library that panics instead
    // of returning an error: that is reported as running out of memory, not as a crash.
    let executed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run::execute_checked(exp, &ds, opts)
        }))
            .unwrap_or_else(|payload| {
                let message = crate::error::panic_message(payload.as_ref());
                if !crate::error::is_allocation_failure(&message) {
                    std::panic::resume_unwind(payload);
                }
                Err(Error::OutOfMemory(format!(
                    "an allocation failed ({message}); the run was estimated to need {:.1} GiB at its peak and this machine has {:.1} GiB available (it was started past that check with --force); {}",
                    footprint.peak_bytes as f64 / (1u64 << 30) as f64,
                    run::memory::available_memory_bytes() as f64 / (1u64 << 30) as f64,
                    footprint
                        .parts
                        .first()
                        .map(|(part, _)| format!("{part} is the largest part: {}", run::memory::advice_for(part)))
                        .unwrap_or_default()
                )))
            });
    let mut record = match executed {
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
                Error::OutOfMemory(m) if !only_marker => Error::OutOfMemory(format!(
                    "{m} (partial outputs in {}, marked INCOMPLETE)",
                    dir.display()
                )),
                Error::Numerics(m) if !only_marker => Error::Numerics(format!(
                    "{m} (partial outputs in {}, marked INCOMPLETE)",
                    dir.display()
                )),
                other => other,
            });
        }
    };
    record.config_toml = exp.resolved_toml_in(&dir);
    if let Err(e) = report::write_run(&dir, &record, exp, &footprint, run::memory::peak_rss_bytes) {
        // The directory was created empty for this run: nothing half-written is left (a full
        // disk fails here).
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok((record, dir))
}
