//! Running a sweep: every point is a complete run into its own directory (`parallel` at a
//! time); a failed or diverged point is recorded and the sweep goes on. A process runs all
//! points or one shard of them (`--shard I/N`: the points with index ≡ I mod N, e.g. one Slurm
//! array task), skipping points already completed; each finished point leaves its row in
//! `rows/`. [`collect`] builds the sweep's outputs from those rows, however the points ran.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::sweep::{self as config_sweep, value_text, Sweep, SweepPoint};
use crate::record::sweep::{PointStatus, PowerLawFit, StoredRow, SweepRow};
use crate::report::{io, repro, sweep as report_sweep};
use crate::run::RunOptions;
use crate::{Error, Result};

use super::{row_check, run_into};
use crate::config::paths;

/// The points a process runs: shard `index` of `count` (index ≡ point index mod count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, in `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Every point.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` (N ≥ 1, I < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::value(
                "--shard",
                text,
                "I/N with integers 0 ≤ I < N, e.g. 3/8 (N ≥ 1)",
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether point `i` belongs to this shard.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

/// The config copy every process of a sweep reads.
pub const PLAN_FILE: &str = "sweep.toml";

/// The swept keys of a point and their values as text.
fn point_values(point: &SweepPoint) -> Vec<(String, String)> {
    point
        .values
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect()
}

fn row_of(
    point: &SweepPoint,
    result: crate::Result<(crate::record::RunRecord, std::path::PathBuf)>,
    sweep_dir: &Path,
    wall_s: f64,
) -> SweepRow {
    let values = point_values(point);
    match result {
        Ok((r, dir)) => {
            let run_dir = dir
                .strip_prefix(sweep_dir)
                .unwrap_or(&dir)
                .display()
                .to_string();
            SweepRow::completed(values, point.seed, &r, run_dir, wall_s)
        }
        // Stopped by a signal before anything was logged: no row, like a run interrupted later
        // (the scheduler's record says why the point is missing).
        Err(crate::Error::Interrupted(_)) => SweepRow::unfinished(
            values,
            point.seed,
            PointStatus::Interrupted,
            point.dir_name(),
            wall_s,
        ),
        Err(e) => SweepRow::failed(values, point.seed, &e.to_string(), point.dir_name(), wall_s),
    }
}

/// The row of a point that has none yet (`missing`, with why when known).
fn missing_row(point: &SweepPoint, why: &str) -> SweepRow {
    let values = point_values(point);
    SweepRow::unfinished(
        values,
        point.seed,
        PointStatus::Missing(why.to_string()),
        point.dir_name(),
        0.0,
    )
}

/// Points of `shard` that still have to run: no row, or a row that did not complete.
pub fn pending(sweep: &Sweep, dir: &Path, shard: Shard) -> Result<Vec<usize>> {
    let rows = report_sweep::read_rows(dir)?;
    Ok(sweep
        .points
        .iter()
        .filter(|p| shard.owns(p.index))
        .filter(|p| {
            rows.get(&p.index)
                .is_none_or(|r| !r.is_completed() || completed_point_problem(dir, p, r).is_some())
        })
        .map(|p| p.index)
        .collect())
}

/// Why a row that says its point did not complete cannot be shown as it is, if it cannot: its
/// status is none of the forms a sweep writes, or its point's directory holds a completed run
/// (the row is not that run's).
fn unfinished_row_problem(dir: &Path, p: &SweepPoint, row: &StoredRow) -> Option<String> {
    let name = p.dir_name();
    if PointStatus::parse_exact(&row.status).is_none() {
        return Some(format!(
            "its stored row rows/p{:04}.json has the status {:?}, which is none of completed, interrupted, failed: <error>, missing: <why>; resuming the sweep runs the point again",
            p.index, row.status
        ));
    }
    let d = dir.join(&name);
    let completed_run = !d.join(io::INCOMPLETE_MARKER).exists()
        && repro::read_report(&d).is_ok_and(|r| r["status"] == "completed");
    completed_run.then(|| {
        format!(
            "its stored row rows/p{:04}.json says {:?} but its run directory {name} holds a completed run (the row is not that run's); resuming the sweep keeps that directory as {name}.kept-<time> and runs the point again",
            p.index, row.status
        )
    })
}

/// Why a point with a completed row does not count as completed, if it does not: its run
/// directory is damaged ([`point_problem`]) or its row disagrees with it
/// ([`row_check::row_disagreement`]).
fn completed_point_problem(dir: &Path, p: &SweepPoint, row: &StoredRow) -> Option<String> {
    point_problem(dir, p).or_else(|| {
        let values = point_values(p);
        let dir_name = p.dir_name();
        let plan = row_check::PlannedPoint {
            values: &values,
            seed: p.seed,
            dir_name: &dir_name,
        };
        let why = row_check::row_disagreement(&dir.join(&dir_name), &plan, row)?;
        Some(format!(
            "its stored row rows/p{:04}.json disagrees with its run directory {dir_name}: {why}; resuming the sweep keeps that directory as {dir_name}.kept-<time> and runs the point again",
            p.index
        ))
    })
}

/// Why a point with a completed row does not count as completed, if it does not: its run
/// directory is gone or unfinished, a file differs from the hash it recorded, or one of the
/// files its row is made from is missing (a row alone does not make a point completed).
/// Files added to it (a user's notes) and pruned figures are allowed.
fn point_problem(dir: &Path, p: &SweepPoint) -> Option<String> {
    let d = dir.join(p.dir_name());
    let name = p.dir_name();
    if !d.join("report.json").is_file() || d.join(io::INCOMPLETE_MARKER).exists() {
        return Some(format!(
            "its run directory {name} is missing or unfinished (only its row is left); resuming the sweep runs it again"
        ));
    }
    let recorded = repro::recorded_hashes(&repro::read_report(&d).ok()?).ok()?;
    let check = crate::report::verify::integrity(&d, &recorded).ok()?;
    // Committed sweeps keep their points without figures and predictions (pruned for size):
    // only the files a row is made from must be there.
    let essential = ["config.toml", "metrics.csv", "summary.json"];
    let damaged: Vec<String> = check
        .changed
        .iter()
        .chain(
            check
                .missing
                .iter()
                .filter(|f| essential.contains(&f.as_str())),
        )
        .cloned()
        .collect();
    if !damaged.is_empty() {
        return Some(format!(
            "files of its run directory {name} differ from the hashes it recorded ({}); resuming the sweep keeps that directory as {name}.kept-<time> and runs the point again",
            damaged.join(", ")
        ));
    }
    config_disagreement(&d, p).map(|key| {
        format!(
            "its run directory {name} was run with other settings than the plan gives this point (its config.toml differs at `{key}`); resuming the sweep keeps that directory as {name}.kept-<time> and runs the point again"
        )
    })
}

/// The first line (a key and its value) of the settings a point was run with (its recorded
/// `config.toml`) that differs from what the plan gives the point, if any. Paths are compared
/// by file name (a sweep directory may have moved since), and the keys a run fills in when it
/// resolves the iterative solver for its data (`kernel.solver`, `kernel.block_size`, the
/// solver plan) are taken from the plan. A config that cannot be read back here (its data
/// files are elsewhere now) is not compared.
fn config_disagreement(point_dir: &Path, p: &SweepPoint) -> Option<String> {
    let (mut recorded, _) = crate::config::paths::load_recorded(point_dir).ok()?;
    recorded.kernel.solver = p.experiment.kernel.solver;
    recorded.kernel.block_size = p.experiment.kernel.block_size;
    recorded.kernel.plan = p.experiment.kernel.plan.clone();
    let (r, q) = (recorded.settings_toml(), p.experiment.settings_toml());
    let lines = |t: &str| t.lines().map(str::to_string).collect::<Vec<_>>();
    let (r, q) = (lines(&r), lines(&q));
    r.iter()
        .zip(&q)
        .find(|(a, b)| a != b)
        .map(|(a, _)| a.clone())
        .or_else(|| (r.len() != q.len()).then(|| "its length".to_string()))
}

/// Runs the points of `shard` that are not completed in `sweep_dir` (`parallel` at a time),
/// each into `sweep_dir/<point>/`, and stores each finished point's row. Never stops on a
/// failed point. `on_done(done, total, row)` is called after each point. Returns the rows of
/// the points run.
pub fn run(
    sweep: &Sweep,
    sweep_dir: &Path,
    shard: Shard,
    interrupt: Option<Arc<crate::run::Interrupt>>,
    limits: crate::run::LimitPolicy,
    on_done: &(dyn Fn(usize, usize, &SweepRow) + Sync),
) -> Result<Vec<SweepRow>> {
    let todo = pending(sweep, sweep_dir, shard)?;
    let n = todo.len();
    let parallel = sweep.spec.parallel.unwrap_or(1).clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; n]);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                if interrupt.as_ref().is_some_and(|f| f.peek()) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let p = &sweep.points[todo[i]];
                let point_dir = sweep_dir.join(p.dir_name());
                // A point killed mid-run (its directory still INCOMPLETE) or failed before
                // starts afresh.
                if let Err(e) = io::remove_unfinished_dir(&point_dir) {
                    first_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                    break;
                }
                let t = Instant::now();
                let opts = RunOptions {
                    interrupt: interrupt.clone(),
                    progress: &crate::run::Silent,
                    limits,
                };
                let result = run_into(&p.experiment, Some(&point_dir), &opts);
                let row = row_of(p, result, sweep_dir, t.elapsed().as_secs_f64());
                if row.status != PointStatus::Interrupted {
                    let stored = StoredRow {
                        plan_sha256: plan_sha256(sweep_dir),
                        ..StoredRow::of(p.index, &row)
                    };
                    if let Err(e) = report_sweep::write_row(sweep_dir, &stored) {
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_done(d, n, &row);
                rows.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(rows
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// Checks every point of a sweep before anything is created: its config, its data and its
/// footprint (memory and time; disk for the points `shard` owns, unless the sweep in `out` is
/// being resumed), and the points that run at the same time together. The estimated seconds of
/// all points one after the other.
pub fn preflight(
    sw: &Sweep,
    shard: Option<Shard>,
    out: Option<&Path>,
    limits: crate::run::LimitPolicy,
) -> Result<f64> {
    use crate::run::{self, memory};
    let mut peaks = Vec::with_capacity(sw.points.len());
    let mut disks = Vec::with_capacity(sw.points.len());
    let mut seconds = 0.0;
    let disk_root = out.unwrap_or(&sw.base.outputs.dir);
    for p in &sw.points {
        run::preflight_config(&p.experiment, limits)?;
        let ds = crate::data::load(&p.experiment.data, p.experiment.seed)?;
        // As the run itself checks it: resolved for its data (e.g. the iterative solver).
        let f = memory::preflight_into(
            &p.experiment.resolved_for(&ds)?,
            &ds,
            Some(disk_root),
            limits,
        )?;
        peaks.push(f.peak_bytes);
        if shard.is_none_or(|s| s.owns(p.index)) {
            disks.push(f.disk_bytes);
        }
        seconds += f.seconds;
    }
    // A resumed sweep's finished points are on the disk already.
    if !out.is_some_and(|o| o.join(PLAN_FILE).exists()) {
        memory::check_sweep_disk(&disks, disk_root, limits)?;
    }
    memory::check_concurrent_points(&mut peaks, sw.spec.parallel.unwrap_or(1), limits)?;
    Ok(seconds)
}

/// Creates a fresh sweep directory (`out`, or `<outputs.dir>/<name>/sweep-<UTC stamp>`) with
/// its plan (`sweep.toml`, the config text every process expands the same way, its relative
/// paths rewritten from `config_dir`, the directory of the config, to the sweep directory).
pub fn create_dir(
    sweep: &Sweep,
    text: &str,
    config_dir: &Path,
    out: Option<&Path>,
) -> Result<PathBuf> {
    let dir = io::create_sweep_dir(&sweep.base.outputs.dir, &sweep.base.name, out)?;
    let plan = paths::rebased_text(text, config_dir, &dir)?;
    io::write_atomic(&dir.join(PLAN_FILE), plan.as_bytes())?;
    Ok(dir)
}

/// Reopens the sweep directory `dir` for a shard or a resubmission, creating it with its plan
/// when it does not exist yet. An existing directory must hold the same plan.
pub fn open_dir(dir: &Path, text: &str, config_dir: &Path) -> Result<PathBuf> {
    let text = paths::rebased_text(text, config_dir, dir)?;
    let text = text.as_str();
    let plan = dir.join(PLAN_FILE);
    let same_plan = || -> Result<Option<bool>> {
        if !plan.exists() {
            return Ok(None);
        }
        let recorded = std::fs::read_to_string(&plan).map_err(|e| Error::io(&plan, e))?;
        Ok(Some(recorded == text))
    };
    let different = || {
        Error::OutputDir {
        path: dir.to_path_buf(),
        message: "holds a different sweep (its sweep.toml differs from this config); give a fresh --out directory".into(),
    }
    };
    match same_plan()? {
        Some(true) => Ok(dir.to_path_buf()),
        Some(false) => Err(different()),
        None => match io::create_sweep_dir(Path::new(""), "", Some(dir)) {
            Ok(d) => {
                io::write_atomic(&d.join(PLAN_FILE), text.as_bytes())?;
                Ok(d)
            }
            // Another shard created it first.
            Err(e) => match same_plan()? {
                Some(true) => Ok(dir.to_path_buf()),
                Some(false) => Err(different()),
                None => Err(e),
            },
        },
    }
}

/// The sweep directory a process writes into: created, or opened when the process is one of
/// several writing it (`shared`: a shard or a Slurm submission) or when `out` holds a sweep
/// plan already (a resumed sweep).
pub fn prepare_dir(
    sw: &Sweep,
    text: &str,
    config_dir: &Path,
    out: Option<&Path>,
    shared: bool,
) -> Result<PathBuf> {
    match out {
        Some(o) if shared || o.join(PLAN_FILE).exists() => open_dir(o, text, config_dir),
        _ => create_dir(sw, text, config_dir, out),
    }
}

/// What running a sweep's points left.
pub struct SweepOutcome {
    /// The rows of the points this process ran.
    pub rows: Vec<SweepRow>,
    /// Whether the interrupt flag was raised.
    pub interrupted: bool,
    /// The whole sweep collected (`sweep.csv`, `sweep.json`, `sweep.md`, figures), when this
    /// process ran every point; a shard leaves that to `--collect`.
    pub collected: Option<Collected>,
}

impl SweepOutcome {
    /// Points this process ran that did not complete.
    pub fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !r.status.is_completed())
            .count()
    }
}

/// Runs the points `shard` owns into `dir` (see [`run`]) and, for the whole sweep, collects it;
/// points not run are "not run" (or "not run (the sweep was interrupted)").
pub fn run_and_collect(
    sweep: &Sweep,
    dir: &Path,
    shard: Shard,
    interrupt: Arc<crate::run::Interrupt>,
    limits: crate::run::LimitPolicy,
    on_done: &(dyn Fn(usize, usize, &SweepRow) + Sync),
) -> Result<SweepOutcome> {
    let rows = run(sweep, dir, shard, Some(interrupt.clone()), limits, on_done)?;
    let interrupted = interrupt.peek();
    if shard != Shard::ALL {
        return Ok(SweepOutcome {
            rows,
            interrupted,
            collected: None,
        });
    }
    let reason = |_: usize| {
        if interrupted {
            "not run (the sweep was interrupted)".to_string()
        } else {
            "not run".to_string()
        }
    };
    let collected = collect(dir, &reason, serde_json::Map::new())?;
    Ok(SweepOutcome {
        rows,
        interrupted,
        collected: Some(collected),
    })
}

/// What [`collect`] found.
pub struct Collected {
    /// The sweep, expanded from its plan.
    pub sweep: Sweep,
    /// One row per point, in point order (missing points included, with why).
    pub rows: Vec<SweepRow>,
    /// Power-law fits over completed points.
    pub fits: Vec<PowerLawFit>,
}

impl Collected {
    /// Points that are not completed: `(directory name, status)`.
    pub fn incomplete(&self) -> Vec<(String, String)> {
        self.rows
            .iter()
            .filter(|r| !r.status.is_completed())
            .map(|r| (r.run_dir.clone(), r.status.to_string()))
            .collect()
    }
}

/// SHA-256 of a sweep directory's plan file, when it can be read.
fn plan_sha256(dir: &Path) -> Option<String> {
    std::fs::read(dir.join(PLAN_FILE))
        .ok()
        .map(|b| crate::report::repro::sha256_hex(&b))
}

/// Builds `sweep.csv`, `sweep.json`, `sweep.md` and the plots of the sweep in `dir` from the
/// stored rows of its finished points. Idempotent, and safe while points still run (they show
/// as missing). `missing_reason(point index)` says why a point has no row (e.g. its Slurm
/// task's state); `extra` adds top-level keys to `sweep.json`. Refused when a row was made from
/// another plan than the directory's `sweep.toml` now.
pub fn collect(
    dir: &Path,
    missing_reason: &dyn Fn(usize) -> String,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<Collected> {
    let plan = dir.join(PLAN_FILE);
    if !plan.is_file() {
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            message: format!("no {PLAN_FILE}: not a sweep directory"),
        });
    }
    let text = std::fs::read_to_string(&plan).map_err(|e| Error::io(&plan, e))?;
    let sweep = config_sweep::expand(&text, Some(&plan))?;
    let stored = report_sweep::read_rows(dir)?;
    // Rows made from another plan than the one in the directory now (sweep.toml edited after
    // they were run) would be collected under the wrong settings.
    let now = plan_sha256(dir);
    let stale: Vec<String> = stored
        .values()
        .filter(|r| r.plan_sha256.is_some() && r.plan_sha256 != now)
        .map(|r| format!("p{:04}", r.index))
        .collect();
    if !stale.is_empty() {
        return Err(Error::NotARun {
            path: plan,
            message: format!(
                "{PLAN_FILE} changed after {} point(s) were run from it ({}): their rows belong to another plan; restore {PLAN_FILE}, or run the edited sweep into a new directory",
                stale.len(),
                stale.join(", ")
            ),
        });
    }
    let rows: Vec<SweepRow> = sweep
        .points
        .iter()
        .map(|p| match stored.get(&p.index) {
            Some(r) => match if r.is_completed() {
                completed_point_problem(dir, p, r)
            } else {
                unfinished_row_problem(dir, p, r)
            } {
                Some(why) => missing_row(p, &why),
                // A point that did not complete shows its status, never figures.
                None if !r.is_completed() => {
                    let row = r.row();
                    SweepRow::unfinished(row.values, row.seed, row.status, row.run_dir, row.wall_s)
                }
                None => r.row(),
            },
            None => missing_row(p, &missing_reason(p.index)),
        })
        .collect();
    let fits = report_sweep::write_sweep(dir, &sweep, &rows, extra)?;
    Ok(Collected { sweep, rows, fits })
}
