//! Sweep reporters: `sweep.csv` (one row per run), `sweep.json`, `sweep.md` (fits with
//! confidence intervals, wall time per point) and the sweep figures that apply (`scaling`,
//! `language`, `phases`, `phase_diagram`, `learning_curve`, `noise`; see
//! [`crate::report::plot::sweep_charts`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::sweep::{value_text, Axis, Sweep};

use crate::record::columns::{Column, Figure, GapFigure, Split};
use crate::record::sweep::{fit_power_laws, PointStatus, PowerLawFit, StoredRow, SweepRow};
use crate::record::Track;
use crate::report::io::{mark_complete, write_atomic};
use crate::report::plot::{sweep_charts, Plot};
use crate::report::tables::fmt_f64;
use crate::{Error, Result};

/// Figures fitted against the width.
pub fn scaling_figures(rows: &[SweepRow]) -> Vec<Figure> {
    let mut f = vec![
        Figure::Final(Column::NtkRelDrift),
        Figure::Final(Column::ParamRelChange),
        Figure::RelRmse((Track::Network, Track::Linearized)),
        Figure::RelRmse((Track::Network, Track::KernelAnalytic)),
        Figure::InitNtkVsAnalytic,
        Figure::CkaDistance,
        Figure::TargetAlignmentGain,
    ];
    // Per-layer parameter changes of the layers the rows have, in the order of their names.
    let has = |fig: Figure| rows.iter().any(|r| r.has_figure(fig));
    let mut layers: Vec<Figure> = (0..)
        .map(|l| Figure::Final(Column::ParamRelChangeLayer(l)))
        .take_while(|&fig| has(fig))
        .collect();
    layers.sort_by_key(|fig| fig.name());
    f.extend(layers);
    // Ensemble vs GP gaps, where the sweep has them.
    for t in [Track::Network, Track::Linearized] {
        for gap in [GapFigure::MeanGap, GapFigure::VarLogRatioRms] {
            let fig = Figure::EnsembleGap(t, gap);
            if rows.iter().any(|r| r.figure(fig).is_finite()) {
                f.push(fig);
            }
        }
    }
    f
}

/// `sweep.csv` text: swept keys, seed, status, phase, wall time, then every figure.
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let keys: Vec<String> = rows
        .first()
        .map(|r| r.values.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut figs: Vec<String> = Vec::new();
    for r in rows {
        for (n, _) in &r.figures {
            if !figs.contains(n) {
                figs.push(n.clone());
            }
        }
    }
    let mut out = keys
        .iter()
        .cloned()
        .chain(["seed", "status", "phase", "wall_s", "run_dir"].map(String::from))
        .chain(figs.iter().cloned())
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in rows {
        let mut row: Vec<String> = r.values.iter().map(|(_, v)| v.clone()).collect();
        row.push(r.seed.to_string());
        row.push(format!("\"{}\"", r.status.to_string().replace('"', "'")));
        row.push(r.phase.map(|p| p.name().to_string()).unwrap_or_default());
        row.push(format!("{:.3}", r.wall_s));
        row.push(r.run_dir.clone());
        row.extend(figs.iter().map(|f| {
            if r.figures.iter().any(|(n, _)| n == f) {
                fmt_f64(r.figure_named(f))
            } else {
                String::new()
            }
        }));
        out += &(row.join(",") + "\n");
    }
    out
}

/// Where finished points' rows are stored in a sweep directory.
pub const ROWS_DIR: &str = "rows";

/// Stores a finished point's row (`rows/p<index>.json`, written atomically).
pub fn write_row(dir: &Path, row: &StoredRow) -> Result<()> {
    let json = serde_json::to_string_pretty(row).unwrap_or_default() + "\n";
    write_atomic(
        &dir.join(ROWS_DIR).join(format!("p{:04}.json", row.index)),
        json.as_bytes(),
    )
}

/// The stored rows of a sweep directory by point index (none yet: empty).
pub fn read_rows(dir: &Path) -> Result<BTreeMap<usize, StoredRow>> {
    let rows_dir = dir.join(ROWS_DIR);
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(&rows_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&rows_dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(&rows_dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        // Temporary files of atomic writes start with '.'.
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let path = e.path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let row: StoredRow =
            serde_json::from_str(&text).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        // A row file is named after its point: one that holds another point's row would
        // stand in for that point.
        if name != format!("p{:04}.json", row.index) {
            return Err(Error::NotARun {
                path,
                message: format!(
                    "holds the row of point {} (index {}), not of the point it is named after: a stored row is rows/p<index>.json; remove the file and resume the sweep to run its point again",
                    row.index, row.index
                ),
            });
        }
        out.insert(row.index, row);
    }
    Ok(out)
}

/// Writes every sweep output into `dir` (`extra`: further top-level keys of `sweep.json`);
/// returns the power-law fits. The directory is marked complete once no point is missing.
pub fn write_sweep(
    dir: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<PowerLawFit>> {
    write_atomic(&dir.join("sweep.csv"), sweep_csv(rows).as_bytes())?;
    let fits = sweep_fits(sweep, rows);
    write_sweep_figures(dir, sweep, rows, &fits)?;
    let vary: serde_json::Map<_, _> = sweep
        .spec
        .vary
        .iter()
        .map(|(k, v)| {
            let values: Vec<String> = v.iter().map(value_text).collect();
            (k.clone(), serde_json::json!(values))
        })
        .collect();
    let mut json =
        serde_json::json!({"name": sweep.base.name, "points": rows, "fits": fits, "vary": vary});
    if let serde_json::Value::Object(m) = &mut json {
        m.extend(extra);
    }
    write_atomic(
        &dir.join("sweep.json"),
        (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
    )?;
    if !rows
        .iter()
        .any(|r| matches!(r.status, PointStatus::Missing(_)))
    {
        mark_complete(dir)?;
    }
    Ok(fits)
}

/// The power-law fits against width of a sweep that varies it (completed points only: an
/// interrupted run stopped early); none otherwise.
pub fn sweep_fits(sweep: &Sweep, rows: &[SweepRow]) -> Vec<PowerLawFit> {
    if !sweep.varies(Axis::Width) {
        return Vec::new();
    }
    let done: Vec<SweepRow> = rows
        .iter()
        .filter(|r| r.status.is_completed())
        .cloned()
        .collect();
    fit_power_laws(&done, Axis::Width.key(), &scaling_figures(&done))
}

/// The figures that apply to a sweep, as `(file stem, plot)`.
pub fn sweep_plots(sweep: &Sweep, rows: &[SweepRow], fits: &[PowerLawFit]) -> Vec<(String, Plot)> {
    let mut figures = Vec::new();
    if sweep.varies(Axis::Width) && !fits.is_empty() {
        figures.push((
            "scaling".to_string(),
            sweep_charts::scaling_plot(sweep, fits),
        ));
    }
    let text_rows = rows.iter().any(|r| {
        r.figure(Figure::TestBitsPerChar(Track::Network))
            .is_finite()
    });
    if sweep.varies(Axis::Width) && text_rows {
        figures.push((
            "language".to_string(),
            sweep_charts::language_plot(sweep, rows),
        ));
    }
    if let Some(lr_axis) = sweep.learning_rate_axis() {
        figures.push(("phases".into(), sweep_charts::phases_plot(sweep, rows)));
        if sweep.varies(Axis::Width) {
            figures.push((
                "phase_diagram".into(),
                sweep_charts::phase_diagram_plot(sweep, rows, lr_axis),
            ));
        }
    }
    if sweep.varies(Axis::NTrain) {
        figures.push((
            "learning_curve".into(),
            sweep_charts::learning_curve_plot(sweep, rows),
        ));
    }
    if sweep.varies(Axis::LabelNoise) {
        figures.push(("noise".into(), sweep_charts::noise_plot(sweep, rows)));
    }
    figures
}

/// Draws a sweep's figures into `dir` and writes `sweep.md`, which lists them; returns the
/// names of the figure files written.
pub fn write_sweep_figures(
    dir: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    fits: &[PowerLawFit],
) -> Result<Vec<String>> {
    let charts = crate::report::render_plots(
        dir,
        &format!("{}: sweep figures", sweep.base.name),
        sweep_plots(sweep, rows, fits),
        &sweep.base.outputs.formats,
    )?;
    for (name, bytes) in &charts {
        write_atomic(&dir.join(name), bytes)?;
    }
    let names: Vec<&str> = charts
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.ends_with(".png"))
        .collect();
    write_atomic(
        &dir.join("sweep.md"),
        sweep_md(sweep, rows, fits, &names).as_bytes(),
    )?;
    Ok(charts.into_iter().map(|(n, _)| n).collect())
}

fn sweep_md(sweep: &Sweep, rows: &[SweepRow], fits: &[PowerLawFit], plots: &[&str]) -> String {
    let mut s = format!("# Sweep report: {}\n\n", sweep.base.name);
    let count = |is: fn(&PointStatus) -> bool| rows.iter().filter(|r| is(&r.status)).count();
    s += &format!(
        "Varied: {}; {} seed(s) per point; {} runs planned: {} completed, {} failed, {} interrupted, {} missing.\n\n",
        sweep
            .spec
            .vary
            .iter()
            .map(|(k, v)| format!(
                "`{k}` ∈ [{}]",
                v.iter().map(value_text).collect::<Vec<_>>().join(", ")
            ))
            .collect::<Vec<_>>()
            .join(" × "),
        sweep.spec.seeds.unwrap_or(1),
        rows.len(),
        count(PointStatus::is_completed),
        count(|s| matches!(s, PointStatus::Failed(_))),
        count(|s| *s == PointStatus::Interrupted),
        count(|s| matches!(s, PointStatus::Missing(_))),
    );
    let incomplete: Vec<&SweepRow> = rows.iter().filter(|r| !r.status.is_completed()).collect();
    if !incomplete.is_empty() {
        s += "**Not completed** (fits use completed runs only; re-running the same command with the same `--out`, or resubmitting with `--slurm`, runs only these):\n\n| point | status |\n|---|---|\n";
        for r in incomplete {
            s += &format!(
                "| {} | {} |\n",
                r.run_dir,
                r.status.to_string().replace('|', "/")
            );
        }
        s += "\n";
    }
    if !fits.is_empty() {
        s += &fits_md(fits);
    }
    // Text runs: the network's test bits/char (early stopped where there is a validation
    // split) says more than its half-MSE on one-hot targets.
    let has = |fig: Figure| rows.iter().any(|r| r.figure(fig).is_finite());
    let early_bits = Figure::EarlyStoppedTestBitsPerChar(Track::Network);
    let final_bits = Figure::TestBitsPerChar(Track::Network);
    let (loss_figure, loss_label) = if has(early_bits) {
        (early_bits, "network test bits/char (early stopped)")
    } else if has(final_bits) {
        (final_bits, "network test bits/char")
    } else {
        (
            Figure::Final(Column::Loss(Track::Network, Split::Test)),
            "network test loss",
        )
    };
    // The twin the points trained: the linearization, or its output-averaged approximation.
    let twin = [Track::Linearized, Track::LinearizedAvg]
        .into_iter()
        .find(|&t| has(Figure::RelRmse((Track::Network, t))))
        .unwrap_or(Track::Linearized);
    let twin_label = match twin {
        Track::LinearizedAvg => "RMSE(net, linearized_avg)/RMS(y)",
        _ => "RMSE(net, lin)/RMS(y)",
    };
    s += &format!("## Runs\n\n| point | seed | status | phase | wall time (s) | {loss_label} | drift | {twin_label} |\n|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} |\n",
            r.values
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.seed,
            r.status,
            r.phase.map(|p| p.name()).unwrap_or("–"),
            r.wall_s,
            fmt_f64(r.figure(loss_figure)),
            fmt_f64(r.figure(Figure::Final(Column::NtkRelDrift))),
            fmt_f64(r.figure(Figure::RelRmse((Track::Network, twin))))
        );
    }
    let total: f64 = rows.iter().map(|r| r.wall_s).sum();
    s += &format!("\nSum of per-point wall times: {total:.1} s.\n");
    for p in plots {
        s += &format!("\n![{p}]({p})\n");
    }
    s
}

/// The exponents table and the local slopes.
fn fits_md(fits: &[PowerLawFit]) -> String {
    let mut s = "## Scaling exponents\n\nOne least-squares fit of log(figure) on log(width) per seed; the exponent is the mean over seeds and its 95 % interval is Student's t (seeds − 1 degrees of freedom) times the standard error of that mean.\n\n| figure | group | exponent | 95 % interval | per-seed exponents | runs |\n|---|---|---|---|---|---|\n".to_string();
    for f in fits {
        s += &format!(
            "| {} | {} | {:.3} | {} | {} | {} |\n",
            f.figure.name(),
            f.group.clone().unwrap_or_else(|| "–".into()),
            f.slope,
            if f.ci95.is_finite() {
                format!("[{:.3}, {:.3}]", f.slope - f.ci95, f.slope + f.ci95)
            } else {
                "– (one seed)".into()
            },
            f.seed_slopes
                .iter()
                .map(|v| format!("{v:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            f.n
        );
    }
    s += "\n### Local exponents between neighbouring widths (of the geometric mean over seeds)\n\n| figure | group | widths | local exponent |\n|---|---|---|---|\n";
    for f in fits {
        for (a, b, v) in &f.local_slopes {
            s += &format!(
                "| {} | {} | {a} → {b} | {v:.3} |\n",
                f.figure.name(),
                f.group.clone().unwrap_or_else(|| "–".into())
            );
        }
    }
    for f in fits
        .iter()
        .filter(|f| f.figure == Figure::InitNtkVsAnalytic)
    {
        let (lo, hi) = (f.slope - f.ci95, f.slope + f.ci95);
        if !f.ci95.is_finite() {
            s += &format!(
                "\nCheck{} not made: the exponent of ‖Θ0 − Θ∞‖/‖Θ∞‖ is −1/2 by the central limit theorem over the hidden units at initialisation, but one seed per width gives no interval (measured {:.3}).\n",
                f.group.as_ref().map(|g| format!(" ({g})")).unwrap_or_default(),
                f.slope
            );
            continue;
        }
        s += &format!(
            "\nCheck{}: the exponent of ‖Θ0 − Θ∞‖/‖Θ∞‖ is −1/2 by the central limit theorem over the hidden units at initialisation; its interval [{lo:.3}, {hi:.3}] {} −0.5: **{}**.\n",
            f.group.as_ref().map(|g| format!(" ({g})")).unwrap_or_default(),
            if (lo..=hi).contains(&-0.5) { "contains" } else { "does not contain" },
            if (lo..=hi).contains(&-0.5) { "pass" } else { "FAIL" }
        );
    }
    s + "\n"
}
