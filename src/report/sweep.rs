//! Sweep reporters: `sweep.csv` (one row per run), `sweep.json`, `sweep.md` (fits with
//! confidence intervals, wall time per point), `scaling.png`, `phases.png`, `phase_diagram.png`.

use std::path::Path;

use plotters::prelude::*;

use crate::metrics::Phase;
use crate::report::files::{fmt_f64, write_atomic};
use crate::report::plots::{self, LineChart, Series, PALETTE};
use crate::sweep::{fit_power_laws, PowerLawFit, Sweep, SweepRow};
use crate::{Error, Result};

/// Figures fitted against the width.
pub fn scaling_figures(rows: &[SweepRow]) -> Vec<String> {
    let mut f: Vec<String> = [
        "ntk_rel_drift",
        "param_rel_change",
        "rel_rmse_network_linearized",
        "rel_rmse_network_kernel_analytic",
        "init_ntk_vs_analytic",
    ]
    .map(String::from)
    .to_vec();
    let layers = rows
        .iter()
        .flat_map(|r| r.figures.iter().map(|(n, _)| n.clone()))
        .filter(|n| n.starts_with("param_rel_change_layer"))
        .collect::<std::collections::BTreeSet<_>>();
    f.extend(layers);
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
        row.push(format!("\"{}\"", r.status.replace('"', "'")));
        row.push(r.phase.map(|p| p.name().to_string()).unwrap_or_default());
        row.push(format!("{:.3}", r.wall_s));
        row.push(r.run_dir.clone());
        row.extend(figs.iter().map(|f| {
            if r.figures.iter().any(|(n, _)| n == f) {
                fmt_f64(r.figure(f))
            } else {
                String::new()
            }
        }));
        out += &(row.join(",") + "\n");
    }
    out
}

fn width_key(sweep: &Sweep) -> Option<String> {
    sweep
        .spec
        .vary
        .keys()
        .find(|k| k.as_str() == "model.width")
        .cloned()
}

fn lr_key(sweep: &Sweep) -> Option<String> {
    sweep
        .spec
        .vary
        .keys()
        .find(|k| k.as_str() == "training.lr_scale" || k.as_str() == "training.learning_rate")
        .cloned()
}

/// Writes every sweep output into `dir`; returns the power-law fits.
pub fn write_sweep(dir: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<Vec<PowerLawFit>> {
    write_atomic(&dir.join("sweep.csv"), sweep_csv(rows).as_bytes())?;
    let fits = match width_key(sweep) {
        Some(wk) => fit_power_laws(rows, &wk, &scaling_figures(rows)),
        None => Vec::new(),
    };
    let mut plots_written = Vec::new();
    if let Some(wk) = width_key(sweep) {
        scaling_png(&dir.join("scaling.png"), sweep, rows, &wk, &fits)?;
        plots_written.push("scaling.png");
    }
    if let Some(lk) = lr_key(sweep) {
        phases_png(&dir.join("phases.png"), sweep, rows)?;
        plots_written.push("phases.png");
        if let Some(wk) = width_key(sweep) {
            phase_diagram_png(&dir.join("phase_diagram.png"), sweep, rows, &lk, &wk)?;
            plots_written.push("phase_diagram.png");
        }
    }
    if sweep.spec.vary.contains_key("data.label_noise") {
        noise_png(&dir.join("noise.png"), sweep, rows)?;
        plots_written.push("noise.png");
    }
    let json = serde_json::json!({"name": sweep.base.name, "points": rows, "fits": fits, "vary": sweep.spec.vary.iter().map(|(k, v)| (k.clone(), serde_json::json!(v.iter().map(crate::sweep::value_text).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>()});
    write_atomic(
        &dir.join("sweep.json"),
        (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
    )?;
    write_atomic(
        &dir.join("sweep.md"),
        sweep_md(sweep, rows, &fits, &plots_written).as_bytes(),
    )?;
    crate::report::files::mark_complete(dir)?;
    Ok(fits)
}

fn sweep_md(sweep: &Sweep, rows: &[SweepRow], fits: &[PowerLawFit], plots: &[&str]) -> String {
    let mut s = format!("# Sweep report: {}\n\n", sweep.base.name);
    s += &format!(
        "Varied: {}; {} seed(s) per point; {} runs, {} failed.\n\n",
        sweep
            .spec
            .vary
            .iter()
            .map(|(k, v)| format!(
                "`{k}` ∈ [{}]",
                v.iter()
                    .map(crate::sweep::value_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(" × "),
        sweep.spec.seeds.unwrap_or(1),
        rows.len(),
        rows.iter()
            .filter(|r| r.status.starts_with("failed"))
            .count()
    );
    if !fits.is_empty() {
        s += "## Scaling exponents (log-log least squares over all runs; 95 % interval = 1.96 standard errors)\n\nLee et al. (2019) report kernel drift between 1/√n and 1/n.\n\n| figure | group | exponent | 95 % interval | runs |\n|---|---|---|---|---|\n";
        for f in fits {
            s += &format!(
                "| {} | {} | {:.3} | [{:.3}, {:.3}] | {} |\n",
                f.figure,
                f.group.clone().unwrap_or_else(|| "–".into()),
                f.slope,
                f.slope - f.ci95,
                f.slope + f.ci95,
                f.n
            );
        }
        s += "\n";
    }
    s += "## Runs\n\n| point | seed | status | phase | wall time (s) | network test loss | drift | RMSE(net, lin)/RMS(y) |\n|---|---|---|---|---|---|---|---|\n";
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
            fmt_f64(r.figure("network_test_loss")),
            fmt_f64(r.figure("ntk_rel_drift")),
            fmt_f64(r.figure("rel_rmse_network_linearized"))
        );
    }
    let total: f64 = rows.iter().map(|r| r.wall_s).sum();
    s += &format!("\nSum of per-point wall times: {total:.1} s.\n");
    for p in plots {
        s += &format!("\n![{p}]({p})\n");
    }
    s
}

fn scaling_png(
    path: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    wk: &str,
    fits: &[PowerLawFit],
) -> Result<()> {
    let main = [
        "ntk_rel_drift",
        "param_rel_change",
        "rel_rmse_network_linearized",
        "rel_rmse_network_kernel_analytic",
    ];
    let mut series = Vec::new();
    let widths: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(wk)).collect();
    let (wmin, wmax) = widths
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
    let grouped = fits.iter().any(|f| f.group.is_some());
    if grouped {
        // One figure (kernel drift), one colour per value of the second swept key.
        let group_key = sweep
            .spec
            .vary
            .keys()
            .find(|k| k.as_str() != wk)
            .cloned()
            .unwrap_or_default();
        let groups: Vec<String> =
            fits.iter()
                .filter_map(|f| f.group.clone())
                .fold(Vec::new(), |mut v, g| {
                    if !v.contains(&g) {
                        v.push(g);
                    }
                    v
                });
        for (i, g) in groups.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts = rows
                .iter()
                .filter(|r| r.values.iter().any(|(k, v)| *k == group_key && v == g))
                .filter_map(|r| Some((r.value_f64(wk)?, r.figure("ntk_rel_drift"))))
                .collect();
            series.push(Series {
                label: format!("ntk_rel_drift, {g}"),
                points: pts,
                color,
                dashed: false,
                markers: true,
            });
            for fit in fits
                .iter()
                .filter(|x| x.figure == "ntk_rel_drift" && x.group.as_ref() == Some(g))
            {
                let line = [wmin, wmax]
                    .iter()
                    .map(|&w| (w, (fit.intercept + fit.slope * w.ln()).exp()))
                    .collect();
                series.push(Series {
                    label: format!("fit {g}: slope {:.2} ± {:.2}", fit.slope, fit.ci95),
                    points: line,
                    color,
                    dashed: false,
                    markers: false,
                });
            }
        }
    }
    for (i, f) in main.iter().enumerate().filter(|_| !grouped) {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.value_f64(wk)?, r.figure(f))))
            .collect();
        series.push(Series {
            label: f.to_string(),
            points: pts,
            color,
            dashed: false,
            markers: true,
        });
        for fit in fits.iter().filter(|x| x.figure == *f) {
            let line = [wmin, wmax]
                .iter()
                .map(|&w| (w, (fit.intercept + fit.slope * w.ln()).exp()))
                .collect();
            series.push(Series {
                label: format!(
                    "fit {}{}: slope {:.2} ± {:.2}",
                    f,
                    fit.group
                        .as_ref()
                        .map(|g| format!(" ({g})"))
                        .unwrap_or_default(),
                    fit.slope,
                    fit.ci95
                ),
                points: line,
                color,
                dashed: fit.group.is_some(),
                markers: false,
            });
        }
    }
    // reference slopes through the drift's first mean
    let anchor = rows
        .iter()
        .filter(|r| r.value_f64(wk) == Some(wmin))
        .map(|r| r.figure("ntk_rel_drift"))
        .filter(|v| v.is_finite())
        .fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    if anchor.1 > 0 {
        let a = anchor.0 / anchor.1 as f64;
        for (slope, label) in [(-0.5, "reference slope −1/2"), (-1.0, "reference slope −1")] {
            series.push(Series {
                label: label.into(),
                points: vec![(wmin, a), (wmax, a * (wmax / wmin).powf(slope))],
                color: RGBColor(120, 120, 120),
                dashed: slope == -1.0,
                markers: false,
            });
        }
    }
    plots::line_chart(
        path,
        &LineChart {
            title: format!("{}: scaling with width", sweep.base.name),
            x_label: "width".into(),
            y_label: "final value".into(),
            log_x: true,
            log_y: true,
            series,
            hlines: vec![],
        },
    )
}

fn phase_color(p: Option<Phase>) -> RGBColor {
    match p {
        Some(Phase::Lazy) => RGBColor(44, 160, 44),
        Some(Phase::Catapult) => RGBColor(255, 127, 14),
        Some(Phase::Divergent) => RGBColor(214, 39, 40),
        None => RGBColor(127, 127, 127),
    }
}

fn label(r: &SweepRow) -> String {
    format!(
        "{} s{} ({})",
        r.values
            .iter()
            .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(" "),
        r.seed,
        r.phase.map(|p| p.name()).unwrap_or("failed")
    )
}

fn phases_png(path: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<()> {
    plots::register_font();
    let first_seed = rows.iter().map(|r| r.seed).min().unwrap_or(0);
    let shown: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == first_seed).collect();
    let loss = LineChart {
        title: format!("{}: network train loss (colour = phase)", sweep.base.name),
        x_label: "step".into(),
        y_label: "train loss".into(),
        log_x: false,
        log_y: true,
        series: shown
            .iter()
            .map(|r| Series {
                label: label(r),
                points: r.loss_curve.clone(),
                color: phase_color(r.phase),
                dashed: false,
                markers: false,
            })
            .collect(),
        hlines: vec![],
    };
    let sharp = LineChart {
        title: "λmax(Θt)·η/(2·N·K): 1 = edge of stability".into(),
        x_label: "step".into(),
        y_label: "λmax·η/(2NK)".into(),
        log_x: false,
        log_y: true,
        series: shown
            .iter()
            .map(|r| Series {
                label: label(r),
                points: r.sharpness_curve.clone(),
                color: phase_color(r.phase),
                dashed: false,
                markers: false,
            })
            .collect(),
        hlines: vec![(1.0, "edge".into())],
    };
    let tmp = path.with_file_name(format!(".tmp-{}-phases.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, (1800, 700)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Error::Numerics(e.to_string()))?;
        let (l, r) = root.split_horizontally(900);
        plots::draw_line_chart(&l, &loss).map_err(Error::Numerics)?;
        plots::draw_line_chart(&r, &sharp).map_err(Error::Numerics)?;
        root.present().map_err(|e| Error::Numerics(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn phase_diagram_png(
    path: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    lk: &str,
    wk: &str,
) -> Result<()> {
    let series = [
        Some(Phase::Lazy),
        Some(Phase::Catapult),
        Some(Phase::Divergent),
        None,
    ]
    .into_iter()
    .map(|p| Series {
        label: p.map(|p| p.name()).unwrap_or("failed").into(),
        points: rows
            .iter()
            .filter(|r| r.phase == p)
            .filter_map(|r| Some((r.value_f64(lk)?, r.value_f64(wk)?)))
            .collect(),
        color: phase_color(p),
        dashed: false,
        markers: true,
    })
    .collect();
    plots::line_chart(
        path,
        &LineChart {
            title: format!("{}: phase diagram", sweep.base.name),
            x_label: lk.into(),
            y_label: "width".into(),
            log_x: true,
            log_y: true,
            series,
            hlines: vec![],
        },
    )
}

fn noise_png(path: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<()> {
    let key = "data.label_noise";
    let mut levels: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(key)).collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    // With `kernel.diag_reg` swept too, the trained tracks are shown for its first value and the
    // t = ∞ kernel solution for each value.
    let reg_key = "kernel.diag_reg";
    let regs: Vec<String> = sweep
        .spec
        .vary
        .get(reg_key)
        .map(|v| v.iter().map(crate::sweep::value_text).collect())
        .unwrap_or_default();
    let reg_of = |r: &SweepRow| {
        r.values
            .iter()
            .find(|(k, _)| k == reg_key)
            .map(|(_, v)| v.clone())
    };
    let mean_where = |fig: &str, x: f64, reg: Option<&String>| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.value_f64(key) == Some(x) && (reg.is_none() || reg_of(r).as_ref() == reg))
            .map(|r| r.figure(fig))
            .filter(|v| v.is_finite())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let mean = |fig: &str, x: f64| mean_where(fig, x, regs.first());
    let mut series = Vec::new();
    for (t, color) in [
        ("network", plots::track_color(crate::record::Track::Network)),
        (
            "linearized",
            plots::track_color(crate::record::Track::Linearized),
        ),
        (
            "kernel_analytic",
            plots::track_color(crate::record::Track::KernelAnalytic),
        ),
        (
            "kernel_empirical",
            plots::track_color(crate::record::Track::KernelEmpirical),
        ),
    ] {
        let fin = format!("{t}_test_accuracy");
        if rows.iter().all(|r| r.figure(&fin).is_nan()) {
            continue;
        }
        series.push(Series {
            label: format!("{t}: final"),
            points: levels.iter().map(|&x| (x, mean(&fin, x))).collect(),
            color,
            dashed: false,
            markers: false,
        });
        series.push(Series {
            label: format!("{t}: best during training (early stopping)"),
            points: levels
                .iter()
                .map(|&x| (x, mean(&format!("{t}_best_test_accuracy"), x)))
                .collect(),
            color,
            dashed: true,
            markers: false,
        });
    }
    let reg_values: Vec<Option<&String>> = if regs.is_empty() {
        vec![None]
    } else {
        regs.iter().map(Some).collect()
    };
    for (i, reg) in reg_values.into_iter().enumerate() {
        series.push(Series {
            label: format!(
                "kernel_analytic: t = ∞{}",
                reg.map(|r| format!(", diag_reg = {r}")).unwrap_or_default()
            ),
            points: levels
                .iter()
                .map(|&x| {
                    (
                        x,
                        mean_where("kernel_analytic_infinite_time_test_accuracy", x, reg),
                    )
                })
                .collect(),
            color: [
                RGBColor(0, 0, 0),
                RGBColor(148, 103, 189),
                RGBColor(140, 86, 75),
            ][i % 3],
            dashed: false,
            markers: true,
        });
    }
    plots::line_chart(
        path,
        &LineChart {
            title: format!("{}: test accuracy under label noise", sweep.base.name),
            x_label: "fraction of corrupted training labels".into(),
            y_label: "test accuracy".into(),
            log_x: false,
            log_y: false,
            series,
            hlines: vec![],
        },
    )
}
