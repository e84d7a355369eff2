//! `experiment --replot DIR`: a run's or a sweep's figures redrawn from the files it stored,
//! with this build's figure code; nothing is re-run.
//!
//! A sweep: the rows come from `sweep.json` (every point's swept values, seed, status, phase and
//! final figures, numbers as serde_json writes them: shortest round-trip text, so they read back
//! bit for bit) and each point's loss and sharpness curves from its stored row
//! (`rows/<point>.json`) or, for sweeps recorded before rows were stored, from the point's own
//! `metrics.csv`. The fits are recomputed from those rows by the code that wrote them. `sweep.md`
//! is rewritten (it lists the figures), `sweep.csv` and `sweep.json` are left as they are.
//!
//! A single run (figure style 3 on): the record comes from `figure_data.ron`, its final outputs
//! from `predictions.csv` (or the figure data when that file is not written) and its data from
//! the recorded config, each input checked against its recorded SHA-256 first. Runs recorded
//! before figure data was stored are refused with the reason.
//!
//! Either way a figure or contact sheet the current rules no longer draw is removed, and
//! `replot.json` records which build redrew which files (their SHA-256); a run's `report.json` is
//! left as recorded and read together with it (`crate::report::repro::read_report`).

use std::path::Path;

use crate::config::sweep as config_sweep;
use crate::metrics::Phase;
use crate::record::sweep::{PointStatus, PowerLawFit, StoredRow, SweepRow};
use crate::report::figure_data::{self, OutputValues, FIGURE_DATA};
use crate::report::io::write_atomic;
use crate::report::repro::{self, REPLOT_RECORD};
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

/// Redraws the figures of the sweep or run directory `dir` (see the module docs).
pub fn replot(dir: &Path) -> Result<Replotted> {
    let plan = dir.join(PLAN_FILE);
    if !plan.is_file() {
        if dir.join("report.json").is_file() {
            return replot_run(dir);
        }
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            message: format!(
                "no {PLAN_FILE} and no report.json: neither a sweep nor a run directory"
            ),
        });
    }
    let (sweep, rows, fits) = load(dir)?;
    let before = figure_files(dir)?;
    let mut written = report_sweep::write_sweep_figures(dir, &sweep, &rows, &fits)?;
    let removed = remove_undrawn(dir, before, &written)?;
    written.push("sweep.md".into());
    write_record(dir, &written, &removed, SWEEP_SOURCES)?;
    written.push(REPLOT_RECORD.into());
    Ok(Replotted { written, removed })
}

/// What a sweep's figures are redrawn from.
const SWEEP_SOURCES: &str =
    "sweep.toml, sweep.json, and each point's rows/<point>.json or metrics.csv (nothing re-run)";

/// What a run's figures are redrawn from.
const RUN_SOURCES: &str = "figure_data.ron, predictions.csv and the recorded config's input data, each checked against its recorded SHA-256 (nothing re-run)";

/// Removes the figure files of `before` that the redrawing (`written`) did not write.
fn remove_undrawn(dir: &Path, before: Vec<String>, written: &[String]) -> Result<Vec<String>> {
    let removed: Vec<String> = before
        .into_iter()
        .filter(|f| !written.contains(f))
        .collect();
    for f in &removed {
        let p = dir.join(f);
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(removed)
}

/// Redraws a single run's figures from its figure data (see the module docs).
fn replot_run(dir: &Path) -> Result<Replotted> {
    let (exp, record) = stored_run(dir)?;
    let figures = crate::report::plot::run_charts::figures(&record);
    let rendered = crate::report::render_plots(
        dir,
        &format!("{}: all figures", record.name),
        figures,
        &exp.outputs.formats,
    )?;
    let before = figure_files(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in rendered {
        write_atomic(&dir.join(&name), &bytes)?;
        written.push(name);
    }
    let removed = remove_undrawn(dir, before, &written)?;
    write_record(dir, &written, &removed, RUN_SOURCES)?;
    written.push(REPLOT_RECORD.into());
    Ok(Replotted { written, removed })
}

/// A run directory's config and its record as the figures need it: the figure data, the
/// outputs and the data, every file read checked against its recorded SHA-256.
pub fn stored_run(dir: &Path) -> Result<(crate::config::Experiment, crate::record::RunRecord)> {
    let report = repro::read_report(dir)?;
    let refuse = |message: String| Error::OutputDir {
        path: dir.to_path_buf(),
        message,
    };
    let data_file = dir.join(FIGURE_DATA);
    if !data_file.is_file() {
        return Err(refuse(format!(
            "drawn by figure style {} and recorded before runs stored their figure data ({FIGURE_DATA}): its figures need numbers its other files do not hold (the spectra and probe kernels), so they are redrawn only by running its config again (experiment --verify DIR re-runs it and compares)",
            repro::recorded_figure_style(&report)
        )));
    }
    let recorded = repro::recorded_hashes(&report)?;
    let read_checked = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        match recorded.get(name) {
            Some(h) if *h == repro::sha256_hex(&bytes) => Ok(bytes),
            _ => Err(refuse(format!(
                "{name} differs from the SHA-256 recorded in report.json: the figures would not show the recorded numbers"
            ))),
        }
    };
    let stored = figure_data::decode(&data_file, &read_checked(FIGURE_DATA)?)?;
    let (exp, mut notes) = crate::config::paths::load_recorded(dir)?;
    let changes = super::verify::input_changes(&report, &exp, &mut notes);
    if !changes.is_empty() {
        return Err(refuse(changes.join("; ")));
    }
    let ds = crate::data::load(&exp.data, exp.seed)?;
    let exp = exp.resolved_for(&ds)?;
    let mut record = stored.record;
    record.data = crate::run::kernel_view(&exp, &ds)?.into_owned();
    record.outputs = stored.outputs;
    match stored.output_values {
        OutputValues::Stored => {}
        OutputValues::PredictionsCsv => {
            let name = "predictions.csv";
            let text = String::from_utf8(read_checked(name)?)
                .map_err(|e| Error::io(dir.join(name), std::io::Error::other(e)))?;
            figure_data::fill_outputs(&dir.join(name), &text, &record.data, &mut record.outputs)?;
        }
        OutputValues::NotStored(n) => {
            return Err(refuse(format!(
                "its {n} final output values are stored nowhere (outputs.save_predictions = false, and more than the {} the figure data keeps): the predictions and confusion figures need them, so this run's figures are redrawn only by running its config again; with outputs.save_predictions = true a run keeps them in predictions.csv",
                figure_data::MAX_STORED_OUTPUT_VALUES
            )))
        }
    }
    Ok((exp, record))
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

/// The figure files (PNG and SVG) at the top of a sweep or run directory.
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
fn write_record(dir: &Path, written: &[String], removed: &[String], from: &str) -> Result<()> {
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
        "from": from,
        "files_sha256": files,
        "removed": removed,
    });
    write_atomic(
        &dir.join(REPLOT_RECORD),
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
