//! From a checked config to files on disk: one experiment into one fresh run directory (load
//! data, check, create the directory, compute, write), and a sweep's points each into its own
//! ([`sweep`]).

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
    let ds = data::load(&exp.data, exp.seed)?;
    run::preflight(exp, &ds)?;
    let dir = io::create_run_dir(&exp.outputs.dir, &exp.name, exp.seed, out)?;
    let record = run::execute(exp, &ds, opts).map_err(|e| match e {
        Error::Numerics(m) => Error::Numerics(format!(
            "{m} (partial outputs in {}, marked INCOMPLETE)",
            dir.display()
        )),
        other => other,
    })?;
    report::write_run(&dir, &record, exp)?;
    Ok((record, dir))
}
