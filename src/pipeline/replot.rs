//! `experiment --replot DIR`: a sweep's figures redrawn from the files the sweep stored, with
//! this build's figure code; nothing is re-run. The rows come from `sweep.json` (every point's
//! swept values, seed, status, phase and final figures, numbers as serde_json writes them:
//! shortest round-trip text, so they read back bit for bit) and each point's loss and sharpness
//! curves from its stored row (`rows/<point>.json`) or, for sweeps recorded before rows were
//! stored, from the point's own `metrics.csv`. The fits are recomputed from those rows by the
//! code that wrote them. `sweep.md` is rewritten (it lists the figures), `sweep.csv` and
//! `sweep.json` are left as they are, a contact sheet the current rules no longer draw is
//! removed, and `replot.json` records which build redrew which files.

use std::path::Path;

use crate::config::sweep as config_sweep;
use crate::metrics::Phase;
use crate::record::sweep::{PointStatus, PowerLawFit, StoredRow, SweepRow};
use crate::report::io::write_atomic;
use crate::report::sweep as report_sweep;
use crate::{Error, Result};

use super::row_check::NumberTable;
use super::sweep::PLAN_FILE;

/// What `--replot` did.
#[derive(Debug, Clone)]
pub struct Replotted {
    /// Figure files written (and `sweep.md`, `replot.json`).
    pub written: Vec<String>,
    /// Figure files of the earlier drawing that this build no longer draws, removed.
    pub removed: Vec<String>,
}

/// Redraws the figures of the sweep directory `dir` (see the module docs). A single run's
/// directory is refused: its figures need numbers (spectra, probe kernels) that its files do
/// not store.
pub fn replot(dir: &Path) -> Result<Replotted> {
    let plan = dir.join(PLAN_FILE);
    if !plan.is_file() {
        if dir.join("report.json").is_file() {
            return Err(Error::OutputDir {
                path: dir.to_path_buf(),
                message: "a single run: --replot redraws a sweep's figures (from sweep.toml and sweep.json); a single run's figures need numbers its files do not store (the spectra and probe kernels), so they are redrawn only by running its config again (experiment --verify DIR re-runs it and compares)".into(),
            });
        }
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            message: format!("no {PLAN_FILE}: not a sweep directory"),
        });
    }
    let (sweep, rows, fits) = load(dir)?;
    let before = figure_files(dir)?;
    let mut written = report_sweep::write_sweep_figures(dir, &sweep, &rows, &fits)?;
    let removed: Vec<String> = before
        .into_iter()
        .filter(|f| !written.contains(f))
        .collect();
    for f in &removed {
        let p = dir.join(f);
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    written.push("sweep.md".into());
    write_record(dir, &written, &removed)?;
    written.push("replot.json".into());
    Ok(Replotted { written, removed })
}

/// The figures `--replot` draws for the sweep directory `dir`, as `(file stem, plot)`, without
/// writing anything (e.g. to check them).
pub fn stored_sweep_figures(dir: &Path) -> Result<Vec<(String, crate::report::plot::Plot)>> {
    let (sweep, rows, fits) = load(dir)?;
    Ok(report_sweep::sweep_plots(&sweep, &rows, &fits))
}

/// A sweep directory's plan, its rows as stored and the fits over them.
fn load(dir: &Path) -> Result<(config_sweep::Sweep, Vec<SweepRow>, Vec<PowerLawFit>)> {
    let plan = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&plan).map_err(|e| Error::io(&plan, e))?;
    let sweep = config_sweep::expand(&text, Some(&plan))?;
    let rows = stored_rows(dir)?;
    let fits = report_sweep::sweep_fits(&sweep, &rows);
    Ok((sweep, rows, fits))
}

/// The figure files (PNG and SVG) at the top of a sweep directory.
fn figure_files(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if e.path().is_file() && (name.ends_with(".png") || name.ends_with(".svg")) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// `replot.json`: the build that redrew the figures, and the SHA-256 of each file it wrote.
fn write_record(dir: &Path, written: &[String], removed: &[String]) -> Result<()> {
    let env = crate::report::repro::Environment::detect();
    let mut files = serde_json::Map::new();
    for name in written {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        files.insert(
            name.clone(),
            serde_json::json!(crate::report::repro::sha256_hex(&bytes)),
        );
    }
    let json = serde_json::json!({
        "redrawn_by": {
            "crate_version": env.crate_version,
            "build_git_commit": env.build_git_commit,
            "build_git_dirty": env.build_git_dirty,
            "figure_style": crate::report::plot::FIGURE_STYLE,
        },
        "from": "sweep.toml, sweep.json, and each point's rows/<point>.json or metrics.csv (nothing re-run)",
        "files_sha256": files,
        "removed": removed,
    });
    write_atomic(
        &dir.join("replot.json"),
        (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
    )
}

/// The rows of `sweep.json`, each with its curves.
fn stored_rows(dir: &Path) -> Result<Vec<SweepRow>> {
    let path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |why: String| Error::NotARun {
        path: path.clone(),
        message: why,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let points = json["points"]
        .as_array()
        .ok_or_else(|| bad("has no \"points\" array".into()))?;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = row_of(p).ok_or_else(|| {
                bad(format!(
                    "point {i} lacks one of values, seed, status, run_dir, wall_s, figures"
                ))
            })?;
            if row.status.is_completed() {
                let (loss, sharpness) = curves(dir, i, &row.run_dir)?;
                row.loss_curve = loss;
                row.sharpness_curve = sharpness;
            }
            Ok(row)
        })
        .collect()
}

/// A number as `sweep.json` holds it (NaN and ±∞ are written as null).
fn number(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// A row of `sweep.json`'s `points`, without its curves.
fn row_of(p: &serde_json::Value) -> Option<SweepRow> {
    let pairs = |v: &serde_json::Value| -> Option<Vec<(String, String)>> {
        v.as_array()?
            .iter()
            .map(|kv| Some((kv[0].as_str()?.to_string(), kv[1].as_str()?.to_string())))
            .collect()
    };
    let figures = p["figures"]
        .as_array()?
        .iter()
        .map(|kv| Some((kv[0].as_str()?.to_string(), number(&kv[1]))))
        .collect::<Option<Vec<_>>>()?;
    Some(SweepRow {
        values: pairs(&p["values"])?,
        seed: p["seed"].as_u64()?,
        status: PointStatus::parse(p["status"].as_str()?),
        run_dir: p["run_dir"].as_str()?.to_string(),
        wall_s: number(&p["wall_s"]),
        phase: p["phase"].as_str().and_then(Phase::from_name),
        figures,
        loss_curve: Vec::new(),
        sharpness_curve: Vec::new(),
    })
}

/// Points `(step, value)` of a curve.
type Curve = Vec<(f64, f64)>;

/// A completed point's network train loss and sharpness ratio per checkpoint: from its stored
/// row when there is one, else from its `metrics.csv`.
fn curves(dir: &Path, index: usize, run_dir: &str) -> Result<(Curve, Curve)> {
    let stored = dir
        .join(report_sweep::ROWS_DIR)
        .join(format!("p{index:04}.json"));
    if stored.is_file() {
        let text = std::fs::read_to_string(&stored).map_err(|e| Error::io(&stored, e))?;
        let row: StoredRow = serde_json::from_str(&text)
            .map_err(|e| Error::io(&stored, std::io::Error::other(e)))?;
        let row = row.row();
        return Ok((row.loss_curve, row.sharpness_curve));
    }
    let metrics = dir.join(run_dir).join("metrics.csv");
    let table = NumberTable::read(&metrics).ok_or_else(|| Error::NotARun {
        path: metrics.clone(),
        message: "cannot be read as a table of numbers".into(),
    })?;
    Ok((
        table.series("network_train_loss"),
        table.series("sharpness_ratio"),
    ))
}
