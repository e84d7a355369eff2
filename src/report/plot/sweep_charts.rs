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
    let widths: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(wk)).collect();
    let span = widths
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
    let mut series = if fits.iter().any(|f| f.group.is_some()) {
        let group_key = sweep
            .spec
            .vary
            .keys()
            .find(|k| k.as_str() != wk)
            .cloned()
            .unwrap_or_default();
        grouped_series(rows, wk, &group_key, fits, span)
    } else {
        figure_series(rows, wk, fits, span)
    };
    series.extend(reference_slopes(rows, wk, span));
    line_chart_png(
        path,
        &LineChart::new(
            format!("{}: scaling with width", sweep.base.name),
            "width",
            "final value",
        )
        .log_x()
        .log_y()
        .with_series(series),
    )
}

/// A fitted power law drawn over the widths `(wmin, wmax)`.
fn fit_line(fit: &PowerLawFit, (wmin, wmax): (f64, f64)) -> Vec<(f64, f64)> {
    [wmin, wmax]
        .iter()
        .map(|&w| (w, (fit.intercept + fit.slope * w.ln()).exp()))
        .collect()
}

/// One figure (kernel drift), one colour per value of the second swept key.
fn grouped_series(
    rows: &[SweepRow],
    wk: &str,
    group_key: &str,
    fits: &[PowerLawFit],
    span: (f64, f64),
) -> Vec<Series> {
    let mut groups: Vec<String> = Vec::new();
    for g in fits.iter().filter_map(|f| f.group.clone()) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut series = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts = rows
            .iter()
            .filter(|r| r.values.iter().any(|(k, v)| k == group_key && v == g))
            .filter_map(|r| Some((r.value_f64(wk)?, r.figure("ntk_rel_drift"))))
            .collect();
        series.push(Series::line(format!("ntk_rel_drift, {g}"), pts, color).markers());
        for fit in fits
            .iter()
            .filter(|x| x.figure == "ntk_rel_drift" && x.group.as_ref() == Some(g))
        {
            series.push(Series::line(
                format!("fit {g}: slope {:.2} ± {:.2}", fit.slope, fit.ci95),
                fit_line(fit, span),
                color,
            ));
        }
    }
    series
}

/// The main figures, each with its fit.
fn figure_series(
    rows: &[SweepRow],
    wk: &str,
    fits: &[PowerLawFit],
    span: (f64, f64),
) -> Vec<Series> {
    let main = [
        "ntk_rel_drift",
        "param_rel_change",
        "rel_rmse_network_linearized",
        "rel_rmse_network_kernel_analytic",
    ];
    let mut series = Vec::new();
    for (i, f) in main.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.value_f64(wk)?, r.figure(f))))
            .collect();
        series.push(Series::line(f.to_string(), pts, color).markers());
        for fit in fits.iter().filter(|x| x.figure == *f) {
            series.push(Series::line(
                format!("fit {f}: slope {:.2} ± {:.2}", fit.slope, fit.ci95),
                fit_line(fit, span),
                color,
            ));
        }
    }
    series
}

/// Reference slopes −1/2 and −1 through the mean drift at the smallest width.
fn reference_slopes(rows: &[SweepRow], wk: &str, (wmin, wmax): (f64, f64)) -> Vec<Series> {
    let anchor: Vec<f64> = rows
        .iter()
        .filter(|r| r.value_f64(wk) == Some(wmin))
        .map(|r| r.figure("ntk_rel_drift"))
        .filter(|v| v.is_finite())
        .collect();
    if anchor.is_empty() {
        return Vec::new();
    }
    let a = anchor.iter().sum::<f64>() / anchor.len() as f64;
    [(-0.5, "reference slope −1/2"), (-1.0, "reference slope −1")]
        .into_iter()
        .map(|(slope, label)| {
            Series::line(
                label,
                vec![(wmin, a), (wmax, a * (wmax / wmin).powf(slope))],
                RGBColor(120, 120, 120),
            )
            .dashed_if(slope == -1.0)
        })
        .collect()
}

fn phase_color(p: Option<Phase>) -> RGBColor {
    match p {
        Some(Phase::Lazy) => RGBColor(44, 160, 44),
        Some(Phase::FeatureLearning) => RGBColor(148, 103, 189),
        Some(Phase::Catapult) => RGBColor(255, 127, 14),
        Some(Phase::EdgeOfStability) => RGBColor(140, 86, 75),
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
        Some(Phase::FeatureLearning),
        Some(Phase::Catapult),
        Some(Phase::EdgeOfStability),
        Some(Phase::Divergent),
        None,
    ]
    .into_iter()
    .map(|p| {
        Series::line(
            p.map(|p| p.name()).unwrap_or("failed"),
            rows.iter()
                .filter(|r| r.phase == p)
                .filter_map(|r| Some((r.value_f64(lk)?, r.value_f64(wk)?)))
                .collect(),
            phase_color(p),
        )
        .markers()
    })
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

/// Means over seeds of a figure at each label-noise level (optionally at one `diag_reg`).
struct NoiseMeans<'a> {
    rows: &'a [SweepRow],
    levels: Vec<f64>,
}

const NOISE_KEY: &str = "data.label_noise";
const REG_KEY: &str = "kernel.diag_reg";

impl NoiseMeans<'_> {
    fn curve(&self, fig: &str, reg: Option<&String>) -> Vec<(f64, f64)> {
        self.levels
            .iter()
            .map(|&x| {
                let v: Vec<f64> = self
                    .rows
                    .iter()
                    .filter(|r| r.value_f64(NOISE_KEY) == Some(x))
                    .filter(|r| {
                        reg.is_none()
                            || r.values.iter().any(|(k, v)| k == REG_KEY && Some(v) == reg)
                    })
                    .map(|r| r.figure(fig))
                    .filter(|v| v.is_finite())
                    .collect();
                let mean = if v.is_empty() {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                };
                (x, mean)
            })
            .collect()
    }
}

/// `noise.png`: test accuracy against the fraction of corrupted labels. With `kernel.diag_reg`
/// swept too, the trained tracks are shown for its first value and the t = ∞ kernel solution
/// for each value.
pub fn noise_png(path: &Path, sweep: &Sweep, rows: &[SweepRow]) -> Result<Vec<u8>> {
    let mut levels: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(NOISE_KEY)).collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    let means = NoiseMeans { rows, levels };
    let regs: Vec<String> = sweep
        .spec
        .vary
        .get(REG_KEY)
        .map(|v| v.iter().map(value_text).collect())
        .unwrap_or_default();
    let mut series = Vec::new();
    for t in [
        Track::Network,
        Track::Linearized,
        Track::LinearizedAvg,
        Track::KernelAnalytic,
        Track::KernelEmpirical,
        Track::KernelEmpiricalAvg,
    ] {
        let fin = format!("{}_test_accuracy", t.name());
        if rows.iter().all(|r| r.figure(&fin).is_nan()) {
            continue;
        }
        series.push(Series::line(
            format!("{}: final", t.name()),
            means.curve(&fin, regs.first()),
            track_color(t),
        ));
        series.push(
            Series::line(
                format!("{}: early stopped on validation accuracy", t.name()),
                means.curve(
                    &format!("{}_early_stopped_test_accuracy", t.name()),
                    regs.first(),
                ),
                track_color(t),
            )
            .dashed(),
        );
    }
    let reg_values: Vec<Option<&String>> = if regs.is_empty() {
        vec![None]
    } else {
        regs.iter().map(Some).collect()
    };
    let colors = [
        RGBColor(0, 0, 0),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    for (i, reg) in reg_values.into_iter().enumerate() {
        let label = format!(
            "kernel_analytic: t = ∞{}",
            reg.map(|r| format!(", diag_reg = {r}")).unwrap_or_default()
        );
        let curve = means.curve("kernel_analytic_infinite_time_test_accuracy", reg);
        series.push(Series::line(label, curve, colors[i % 3]).markers());
    }
    line_chart_png(
        path,
        &LineChart::new(
            format!("{}: test accuracy under label noise", sweep.base.name),
            "fraction of corrupted training labels",
            "test accuracy",
        )
        .with_series(series),
    )
}
