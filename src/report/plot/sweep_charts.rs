//! The figures of a sweep: scaling with width (`scaling.png`), training phases (`phases.png`,
//! `phase_diagram.png`) and label noise (`noise.png`), each as PNG bytes.

use std::path::Path;

use plotters::prelude::*;

use super::{draw_line_chart, line_chart_png, render_png, track_color, LineChart, Series, PALETTE};
use crate::config::sweep::{value_text, Sweep};
use crate::metrics::Phase;
use crate::record::sweep::{PowerLawFit, SweepRow};
use crate::record::Track;
use crate::Result;

/// `scaling.png`: final figures against width on log axes, with the fitted power laws.
pub fn scaling_png(
    path: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    wk: &str,
    fits: &[PowerLawFit],
) -> Result<Vec<u8>> {
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
            series.push(Series::line(format!("ntk_rel_drift, {g}"), pts, color).markers());
            for fit in fits
                .iter()
                .filter(|x| x.figure == "ntk_rel_drift" && x.group.as_ref() == Some(g))
            {
                let line = [wmin, wmax]
                    .iter()
                    .map(|&w| (w, (fit.intercept + fit.slope * w.ln()).exp()))
                    .collect();
                series.push(Series::line(format!("fit {g}: slope {:.2} ± {:.2}", fit.slope, fit.ci95), line, color));
            }
        }
    }
    for (i, f) in main.iter().enumerate().filter(|_| !grouped) {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.value_f64(wk)?, r.figure(f))))
            .collect();
        series.push(Series::line(f.to_string(), pts, color).markers());
        for fit in fits.iter().filter(|x| x.figure == *f) {
            let line = [wmin, wmax]
                .iter()
                .map(|&w| (w, (fit.intercept + fit.slope * w.ln()).exp()))
                .collect();
            series.push(Series::line(format!(
                    "fit {}{}: slope {:.2} ± {:.2}",
                    f,
                    fit.group
                        .as_ref()
                        .map(|g| format!(" ({g})"))
                        .unwrap_or_default(),
                    fit.slope,
                    fit.ci95
                ), line, color).dashed_if(fit.group.is_some()));
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
            series.push(Series::line(label, vec![(wmin, a), (wmax, a * (wmax / wmin).powf(slope))], RGBColor(120, 120, 120)).dashed_if(slope == -1.0));
        }
    }
    line_chart_png(
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

/// `phases.png`: loss curves and sharpness of the first seed of every point, coloured by phase.
pub fn phases_png(path: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<Vec<u8>> {
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
            .map(|r| Series::line(label(r), r.loss_curve.clone(), phase_color(r.phase)))
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
            .map(|r| Series::line(label(r), r.sharpness_curve.clone(), phase_color(r.phase)))
            .collect(),
        hlines: vec![(1.0, "edge".into())],
    };
    render_png(path, (1800, 700), |root| {
        let (l, r) = root.split_horizontally(900);
        draw_line_chart(&l, &loss)?;
        draw_line_chart(&r, &sharp)
    })
}

/// `phase_diagram.png`: the phase of every run over the width × learning-rate grid.
pub fn phase_diagram_png(
    path: &Path,
    sweep: &Sweep,
    rows: &[SweepRow],
    lk: &str,
    wk: &str,
) -> Result<Vec<u8>> {
    let series = [
        Some(Phase::Lazy),
        Some(Phase::Catapult),
        Some(Phase::Divergent),
        None,
    ]
    .into_iter()
    .map(|p| Series::line(p.map(|p| p.name()).unwrap_or("failed"), rows
            .iter()
            .filter(|r| r.phase == p)
            .filter_map(|r| Some((r.value_f64(lk)?, r.value_f64(wk)?)))
            .collect(), phase_color(p)).markers())
    .collect();
    line_chart_png(
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

/// `noise.png`: test accuracy against the fraction of corrupted labels.
pub fn noise_png(path: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<Vec<u8>> {
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
        .map(|v| v.iter().map(value_text).collect())
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
        ("network", track_color(Track::Network)),
        (
            "linearized",
            track_color(Track::Linearized),
        ),
        (
            "kernel_analytic",
            track_color(Track::KernelAnalytic),
        ),
        (
            "kernel_empirical",
            track_color(Track::KernelEmpirical),
        ),
    ] {
        let fin = format!("{t}_test_accuracy");
        if rows.iter().all(|r| r.figure(&fin).is_nan()) {
            continue;
        }
        series.push(Series::line(format!("{t}: final"), levels.iter().map(|&x| (x, mean(&fin, x))).collect(), color));
        series.push(Series::line(format!("{t}: best during training (early stopping)"), levels
                .iter()
                .map(|&x| (x, mean(&format!("{t}_best_test_accuracy"), x)))
                .collect(), color).dashed());
    }
    let reg_values: Vec<Option<&String>> = if regs.is_empty() {
        vec![None]
    } else {
        regs.iter().map(Some).collect()
    };
    for (i, reg) in reg_values.into_iter().enumerate() {
        series.push(Series::line(format!(
                "kernel_analytic: t = ∞{}",
                reg.map(|r| format!(", diag_reg = {r}")).unwrap_or_default()
            ), levels
                .iter()
                .map(|&x| {
                    (
                        x,
                        mean_where("kernel_analytic_infinite_time_test_accuracy", x, reg),
                    )
                })
                .collect(), [
                RGBColor(0, 0, 0),
                RGBColor(148, 103, 189),
                RGBColor(140, 86, 75),
            ][i % 3]).markers());
    }
    line_chart_png(
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
