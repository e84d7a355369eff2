//! The figures of a sweep: scaling with width (`scaling`), a language model's width sweep
//! (`language`), training phases (`phases`, `phase_diagram`), the learning curve
//! (`learning_curve`) and label noise (`noise`). Intervals are the 95 % t-intervals over seeds
//! that the sweep report uses.

use plotters::prelude::*;

use super::{track_color, LineChart, Marker, Plot, Series, PALETTE};
use crate::config::sweep::{value_text, Axis, Sweep};
use crate::metrics::stats::mean_ci95;
use crate::metrics::Phase;
use crate::record::columns::{Column, Figure, Split};
use crate::record::sweep::{PowerLawFit, SweepRow};
use crate::record::Track;

/// Figures drawn in `scaling`, with their axis descriptions.
pub const SCALING_FIGURES: [(Figure, &str); 5] = [
    (
        Figure::Final(Column::NtkRelDrift),
        "final NTK drift ‖Θt−Θ0‖/‖Θ0‖ (probe set)",
    ),
    (
        Figure::Final(Column::ParamRelChange),
        "final parameter change ‖θt−θ0‖/‖θ0‖",
    ),
    (
        Figure::RelRmse((Track::Network, Track::Linearized)),
        "final RMSE(network, linearized)/RMS(y)",
    ),
    (
        Figure::RelRmse((Track::Network, Track::KernelAnalytic)),
        "final RMSE(network, kernel Θ∞)/RMS(y)",
    ),
    (
        Figure::InitNtkVsAnalytic,
        "‖Θ0 − Θ∞‖/‖Θ∞‖ at initialisation",
    ),
];

/// One panel per figure: the geometric mean over seeds per width with its 95 % interval, the
/// per-seed fit (mean exponent) with a band for the exponent's interval (pivoted at the mean log
/// width), and reference slopes −1/2 and −1 through the first mean.
pub fn scaling_plot(sweep: &Sweep, fits: &[PowerLawFit]) -> Plot {
    let mut groups: Vec<Option<String>> = Vec::new();
    for f in fits {
        if !groups.contains(&f.group) {
            groups.push(f.group.clone());
        }
    }
    let charts = SCALING_FIGURES
        .iter()
        .filter(|(fig, _)| fits.iter().any(|f| f.figure == *fig))
        .map(|(fig, desc)| {
            let mut series = Vec::new();
            for (gi, g) in groups.iter().enumerate() {
                let Some(fit) = fits.iter().find(|f| f.figure == *fig && f.group == *g) else {
                    continue;
                };
                let color = PALETTE[gi % PALETTE.len()];
                let tag = g.as_ref().map(|g| format!(" ({g})")).unwrap_or_default();
                series.extend(fit_series(fit, &tag, color));
                if gi == 0 {
                    series.extend(reference_slopes(fit));
                }
            }
            LineChart::new(fig.name(), "width n (log scale)", *desc)
                .log_x()
                .log_y()
                .with_series(series)
        })
        .collect::<Vec<_>>();
    Plot::Grid {
        title: format!(
            "{}: scaling with width (mean over seeds ± 95 % t-interval; fits per seed)",
            sweep.base.name
        ),
        cols: 2,
        charts,
    }
}

/// The means with error bars and the fit with its band.
fn fit_series(fit: &PowerLawFit, tag: &str, color: RGBColor) -> Vec<Series> {
    let means: Vec<(f64, f64)> = fit.per_x.iter().map(|p| (p.0, p.1)).collect();
    let errors: Vec<(f64, f64, f64)> = fit.per_x.iter().map(|p| (p.0, p.2, p.3)).collect();
    let xs: Vec<f64> = fit.per_x.iter().map(|p| p.0).collect();
    let pivot = xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len().max(1) as f64;
    let at =
        |x: f64, slope: f64| (fit.intercept + fit.slope * pivot + slope * (x.ln() - pivot)).exp();
    let ci = if fit.ci95.is_finite() { fit.ci95 } else { 0.0 };
    let band = xs
        .iter()
        .map(|&x| {
            let (a, b) = (at(x, fit.slope - ci), at(x, fit.slope + ci));
            (x, a.min(b), a.max(b))
        })
        .collect();
    vec![
        Series::line(format!("mean over seeds{tag}"), means, color)
            .markers()
            .with_errors(errors),
        Series::line(
            format!(
                "fit{tag}: exponent {:.2} [{:.2}, {:.2}]",
                fit.slope,
                fit.slope - ci,
                fit.slope + ci
            ),
            xs.iter().map(|&x| (x, at(x, fit.slope))).collect(),
            color,
        )
        .with_band(band),
    ]
}

fn reference_slopes(fit: &PowerLawFit) -> Vec<Series> {
    let (Some(first), Some(last)) = (fit.per_x.first(), fit.per_x.last()) else {
        return Vec::new();
    };
    let (w0, a, w1) = (first.0, first.1, last.0);
    [(-0.5, "reference slope −1/2"), (-1.0, "reference slope −1")]
        .into_iter()
        .map(|(slope, label)| {
            Series::line(
                label,
                vec![(w0, a), (w1, a * (w1 / w0).powf(slope))],
                RGBColor(120, 120, 120),
            )
            .dashed_if(slope == -1.0)
        })
        .collect()
}

/// Colour of a phase.
pub fn phase_color(p: Option<Phase>) -> RGBColor {
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

/// Loss curves and sharpness of the first seed of every point, coloured by phase.
pub fn phases_plot(sweep: &Sweep, rows: &[SweepRow]) -> Plot {
    let first_seed = rows.iter().map(|r| r.seed).min().unwrap_or(0);
    let shown: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == first_seed).collect();
    let curves = |f: &dyn Fn(&SweepRow) -> Vec<(f64, f64)>| {
        shown
            .iter()
            .map(|r| Series::line(label(r), f(r), phase_color(r.phase)))
            .collect()
    };
    Plot::Grid {
        title: format!("{}: training phases (colour = phase)", sweep.base.name),
        cols: 2,
        charts: vec![
            LineChart::new(
                "network train loss",
                "SGD step",
                "train loss (½·mean (f − y)²)",
            )
            .log_y()
            .with_series(curves(&|r| r.loss_curve.clone())),
            LineChart::new(
                "sharpness on the full training kernel",
                "SGD step",
                "η·λ_max(Θt)/(2(1+μ)·N·K)",
            )
            .log_y()
            .with_series(curves(&|r| r.sharpness_curve.clone()))
            .with_hline(1.0, "edge of stability"),
        ],
    }
}

/// The phase of every run over the width × learning-rate grid.
pub fn phase_diagram_plot(sweep: &Sweep, rows: &[SweepRow], lr_axis: Axis) -> Plot {
    let (lk, wk) = (lr_axis.key(), Axis::Width.key());
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
    Plot::Line(
        LineChart::new(format!("{}: phase diagram", sweep.base.name), lk, "width n")
            .log_x()
            .log_y()
            .with_series(series),
    )
}

/// Points `(x, mean)` and their intervals `(x, low, high)`.
type MeansWithIntervals = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

/// Mean over seeds with its 95 % t-interval of a figure at each value of the swept key
/// `x` (over the rows `keep` accepts); values without a finite figure are left out.
fn mean_curve(
    rows: &[SweepRow],
    x: Axis,
    fig: Figure,
    keep: &dyn Fn(&SweepRow) -> bool,
) -> MeansWithIntervals {
    mean_curve_of(rows, x, &|r| r.figure(fig), keep)
}

/// [`mean_curve`] of a value computed from each row.
fn mean_curve_of(
    rows: &[SweepRow],
    x: Axis,
    value: &dyn Fn(&SweepRow) -> f64,
    keep: &dyn Fn(&SweepRow) -> bool,
) -> MeansWithIntervals {
    let x_key = x.key();
    let mut levels: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(x_key)).collect();
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    let stats: Vec<(f64, f64, f64)> = levels
        .iter()
        .filter_map(|&x| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.value_f64(x_key) == Some(x) && keep(r))
                .map(value)
                .filter(|v| v.is_finite())
                .collect();
            let (m, h) = mean_ci95(&v);
            m.is_finite()
                .then_some((x, m, if h.is_finite() { h } else { 0.0 }))
        })
        .collect();
    (
        stats.iter().map(|s| (s.0, s.1)).collect(),
        stats.iter().map(|s| (s.0, s.1 - s.2, s.1 + s.2)).collect(),
    )
}

/// Mean over seeds with its 95 % t-interval of a figure at each label-noise level (at one
/// `diag_reg` value when given).
fn noise_curve(rows: &[SweepRow], fig: Figure, reg: Option<&String>) -> MeansWithIntervals {
    mean_curve(rows, Axis::LabelNoise, fig, &|r| {
        reg.is_none()
            || r.values
                .iter()
                .any(|(k, v)| k == Axis::DiagReg.key() && Some(v) == reg)
    })
}

/// A language-model width sweep in one figure: test bits/char of the network, its linearized
/// twin and the kernel track against the n-gram baselines; the network − twin gap in bits/char;
/// the fraction of test contexts where network and twin predict the same next character; and
/// the final kernel drift (means over seeds ± 95 % t-intervals).
pub fn language_plot(sweep: &Sweep, rows: &[SweepRow]) -> Plot {
    let all = |_: &SweepRow| true;
    let curve = |fig: Figure| mean_curve(rows, Axis::Width, fig, &all);
    // With validation points each track is read out where it early-stops, at its fitted
    // temperature; without them, at the final step with temperature 1.
    let early = rows.iter().any(|r| {
        r.figure(Figure::EarlyStoppedTestBitsPerChar(Track::Network))
            .is_finite()
    });
    let single = |fig: Figure, label: &str, color: RGBColor| -> Vec<Series> {
        let (m, e) = curve(fig);
        vec![Series::line(label, m, color).markers().with_errors(e)]
    };
    let agreement = |twin| Figure::Final(Column::Agreement((Track::Network, twin)));
    let twin = if rows
        .iter()
        .any(|r| r.figure(agreement(Track::LinearizedAvg)).is_finite())
    {
        Track::LinearizedAvg
    } else {
        Track::Linearized
    };
    let charts = vec![
        LineChart::new(
            if early {
                "test bits per character (early stopped on validation, calibrated)"
            } else {
                "test bits per character (final step)"
            },
            "width n (log scale)",
            "bits/char",
        )
        .log_x()
        .with_series(bits_series(rows, early)),
        LineChart::new(
            "network − linearized twin, test bits/char",
            "width n (log scale)",
            "test bits/char gap",
        )
        .log_x()
        .with_series(gap_series(rows, early, twin)),
        LineChart::new(
            "same predicted character (final step)",
            "width n (log scale)",
            "agreement network–twin (test)",
        )
        .log_x()
        .with_series(single(
            agreement(twin),
            "fraction of test contexts with equal argmax",
            PALETTE[1],
        )),
        LineChart::new(
            "kernel movement",
            "width n (log scale)",
            "final NTK drift ‖Θt−Θ0‖/‖Θ0‖ (probe set)",
        )
        .log_x()
        .with_series(single(
            Figure::Final(Column::NtkRelDrift),
            "NTK drift",
            PALETTE[2],
        ))
        .with_hline(
            crate::metrics::LAZY_DRIFT,
            format!("lazy below {}", crate::metrics::LAZY_DRIFT),
        ),
    ];
    Plot::Grid {
        title: format!(
            "{}: the network and its linearization as width grows ({})",
            sweep.base.name,
            if sweep.spec.seeds.unwrap_or(1) > 1 {
                "mean over seeds ± 95 % t-interval"
            } else {
                "one seed"
            }
        ),
        cols: 2,
        charts,
    }
}

/// Each track's test bits per character against width (early stopped when `early`), and the
/// n-gram baselines'.
fn bits_series(rows: &[SweepRow], early: bool) -> Vec<Series> {
    let all = |_: &SweepRow| true;
    let curve = |fig: Figure| mean_curve(rows, Axis::Width, fig, &all);
    let bits_figure = |t| {
        if early {
            Figure::EarlyStoppedTestBitsPerChar(t)
        } else {
            Figure::TestBitsPerChar(t)
        }
    };
    let mut bits = Vec::new();
    for t in Track::ALL {
        let (m, e) = curve(bits_figure(t));
        if !m.is_empty() {
            let label = match t {
                Track::KernelAnalytic => {
                    "kernel_analytic (infinite-width NTK regression)".to_string()
                }
                _ => t.name().to_string(),
            };
            bits.push(
                Series::line(label, m, track_color(t))
                    .markers()
                    .with_errors(e),
            );
        }
    }
    for (order, color) in [
        (1, RGBColor(160, 160, 160)),
        (3, RGBColor(140, 86, 75)),
        (4, RGBColor(0, 0, 0)),
    ] {
        let (m, _) = curve(Figure::NgramBitsPerChar(order));
        if !m.is_empty() {
            bits.push(
                Series::line(
                    format!("{order}-gram (Witten–Bell, on the training samples)"),
                    m,
                    color,
                )
                .dashed(),
            );
        }
    }
    bits
}

/// The network's test bits per character minus its twin's against width: at the final step,
/// and each early stopped when `early`.
fn gap_series(rows: &[SweepRow], early: bool, twin: Track) -> Vec<Series> {
    let all = |_: &SweepRow| true;
    let (m, e) = mean_curve(rows, Axis::Width, Figure::BitsGapNetworkTwin, &all);
    let mut gap = vec![Series::line("final step, T = 1", m, PALETTE[0])
        .markers()
        .with_errors(e)];
    if early {
        let (m, e) = mean_curve_of(
            rows,
            Axis::Width,
            &|r| {
                r.figure(Figure::EarlyStoppedTestBitsPerChar(Track::Network))
                    - r.figure(Figure::EarlyStoppedTestBitsPerChar(twin))
            },
            &all,
        );
        gap.push(
            Series::line("each early stopped, calibrated", m, PALETTE[1])
                .markers()
                .with_errors(e),
        );
    }
    gap
}

/// The learning curve: test accuracy of every track at the final step and of each kernel track
/// at t = ∞ against the number of training points (log axis; means over seeds ± 95 %
/// t-intervals when there are several seeds) — the finite-versus-infinite comparison of Lee et
/// al. (2020, "Finite versus infinite neural networks").
pub fn learning_curve_plot(sweep: &Sweep, rows: &[SweepRow]) -> Plot {
    let all = |_: &SweepRow| true;
    let mut sizes: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.value_f64(Axis::NTrain.key()))
        .collect();
    sizes.sort_by(|a, b| a.total_cmp(b));
    sizes.dedup();
    let mut series = Vec::new();
    for t in Track::ALL {
        let fin = Figure::Final(Column::Accuracy(t, Split::Test));
        if rows.iter().all(|r| r.figure(fin).is_nan()) {
            continue;
        }
        let (m, e) = mean_curve(rows, Axis::NTrain, fin, &all);
        series.push(
            Series::line(format!("{}: final step", t.name()), m, track_color(t))
                .with_marker(Marker::Dot)
                .with_errors(e),
        );
        let inf = Figure::InfiniteTimeTestAccuracy(t);
        if rows.iter().any(|r| r.figure(inf).is_finite()) {
            let (m, e) = mean_curve(rows, Axis::NTrain, inf, &all);
            series.push(
                Series::line(
                    format!("{}: t = ∞ (dashed, rings)", t.name()),
                    m,
                    track_color(t),
                )
                .dashed()
                .with_marker(Marker::Ring)
                .with_errors(e),
            );
        }
    }
    Plot::Line(
        LineChart::new(
            format!("{}: test accuracy against training points", sweep.base.name),
            "training points N",
            "test accuracy",
        )
        .log_x()
        .with_x_ticks(sizes)
        .with_series(series),
    )
}

/// Test accuracy against the fraction of corrupted labels (means over seeds ± 95 %
/// t-intervals). With `kernel.diag_reg` swept too, the trained tracks are shown for its first
/// value and the t = ∞ kernel solution for each value.
pub fn noise_plot(sweep: &Sweep, rows: &[SweepRow]) -> Plot {
    let regs: Vec<String> = sweep
        .spec
        .vary
        .get(Axis::DiagReg.key())
        .map(|v| v.iter().map(value_text).collect())
        .unwrap_or_default();
    let mut series = Vec::new();
    for t in Track::ALL {
        let fin = Figure::Final(Column::Accuracy(t, Split::Test));
        if rows.iter().all(|r| r.figure(fin).is_nan()) {
            continue;
        }
        let (m, e) = noise_curve(rows, fin, regs.first());
        series.push(Series::line(format!("{}: final", t.name()), m, track_color(t)).with_errors(e));
        let early = Figure::EarlyStoppedTestAccuracy(t);
        if rows.iter().any(|r| r.figure(early).is_finite()) {
            let (m, e) = noise_curve(rows, early, regs.first());
            series.push(
                Series::line(
                    format!("{}: early-stopped on validation accuracy", t.name()),
                    m,
                    track_color(t),
                )
                .dashed()
                .with_errors(e),
            );
        }
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
        let (m, e) = noise_curve(
            rows,
            Figure::InfiniteTimeTestAccuracy(Track::KernelAnalytic),
            reg,
        );
        series.push(
            Series::line(label, m, colors[i % 3])
                .markers()
                .with_errors(e),
        );
    }
    Plot::Line(
        LineChart::new(
            format!(
                "{}: test accuracy under label noise (mean over seeds ± 95 % t-interval)",
                sweep.base.name
            ),
            "fraction of corrupted training labels",
            "test accuracy",
        )
        .with_series(series),
    )
}
