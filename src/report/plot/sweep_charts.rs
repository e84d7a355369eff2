//! The figures of a sweep: scaling with width (`scaling`), a language model's width sweep
//! (`language`), training phases (`phases`, `phase_diagram`), the learning curve
//! (`learning_curve`) and label noise (`noise`). Intervals are the 95 % t-intervals over seeds
//! that the sweep report uses.

use plotters::prelude::*;

use super::{track_color, LineChart, Marker, Plot, Series, Stroke, PALETTE};
use crate::config::sweep::{value_text, Axis, Sweep};
use crate::metrics::stats::mean_ci95;
use crate::metrics::Phase;
use crate::record::columns::{Column, Figure, GapFigure, Split};
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

/// The ensemble-vs-GP gap figures an ensemble width sweep fits, with their axis descriptions.
fn gap_panels(fits: &[PowerLawFit]) -> Vec<(Figure, String)> {
    let mut out = Vec::new();
    for t in [Track::Network, Track::Linearized] {
        for (gap, desc) in [
            (
                GapFigure::MeanGap,
                "RMSE(ensemble mean, NTK-GP mean)/RMS(y), test",
            ),
            (
                GapFigure::VarLogRatioRms,
                "RMS over test points of log(ensemble var/GP var)",
            ),
        ] {
            let fig = Figure::EnsembleGap(t, gap);
            if fits.iter().any(|f| f.figure == fig) {
                out.push((fig, desc.to_string()));
            }
        }
    }
    out
}

/// Sideways offset (natural log of the x factor) between neighbouring groups' error bars on a
/// log x axis: about 7 pixels over two decades.
const DODGE_LN: f64 = 0.035;

/// Factor on x of the single seeds' rings beside their mean's dot and bar (about 5 pixels to
/// the left over two decades), so that the bar stays readable.
const SEED_OFFSET: f64 = 0.975;

/// One panel per fitted figure (and, in an ensemble sweep, the ensemble-vs-GP gaps): per group,
/// each seed's value (rings), the geometric mean over seeds with the 95 % t-interval of the
/// mean of log y (dots, bars; none with one seed), the mean of the per-seed power-law fits with
/// the pointwise 95 % t-interval of those fitted lines as its band, and reference slopes −1/2
/// and −1 through the first mean. Groups' points are offset sideways so that their bars do not
/// overlap.
pub fn scaling_plot(sweep: &Sweep, fits: &[PowerLawFit]) -> Plot {
    let mut groups: Vec<Option<String>> = Vec::new();
    for f in fits {
        if !groups.contains(&f.group) {
            groups.push(f.group.clone());
        }
    }
    let panels: Vec<(Figure, String)> = SCALING_FIGURES
        .iter()
        .map(|(f, d)| (*f, d.to_string()))
        .chain(gap_panels(fits))
        .filter(|(fig, _)| fits.iter().any(|f| f.figure == *fig))
        .collect();
    let charts = panels
        .iter()
        .map(|(fig, desc)| {
            let (mut series, mut references) = (Vec::new(), Vec::new());
            let mut unfitted = Vec::new();
            for (gi, g) in groups.iter().enumerate() {
                let Some(fit) = fits.iter().find(|f| f.figure == *fig && f.group == *g) else {
                    unfitted.extend(g.clone());
                    continue;
                };
                let shift = (DODGE_LN * (gi as f64 - (groups.len() as f64 - 1.0) / 2.0)).exp();
                let look = GroupLook {
                    tag: g.as_ref().map(|g| format!(" ({g})")).unwrap_or_default(),
                    color: PALETTE[gi % PALETTE.len()],
                    shift,
                    label_seeds: gi == 0,
                };
                series.extend(fit_series(fit, &look));
                if gi == 0 {
                    references = reference_slopes(fit);
                }
            }
            series.append(&mut references);
            if !unfitted.is_empty() {
                series.push(Series::key(
                    format!(
                        "not shown: {} (no positive finite value)",
                        unfitted.join(", ")
                    ),
                    RGBColor(255, 255, 255),
                    Stroke::Solid,
                ));
            }
            LineChart::new(fig.name(), "width n (log scale)", desc.as_str())
                .log_x()
                .log_y()
                .with_series(series)
        })
        .collect::<Vec<_>>();
    let title = if sweep.spec.seeds.unwrap_or(1) > 1 {
        "single seeds, their geometric mean ± 95 % t-interval; mean of per-seed fits with its 95 % band"
    } else {
        "one seed: its values and a power-law fit, no intervals"
    };
    Plot::Grid {
        title: format!("{}: scaling with width ({title})", sweep.base.name),
        cols: 2,
        charts,
    }
}

/// How one group of a scaling panel is drawn.
struct GroupLook {
    /// Legend suffix naming the group.
    tag: String,
    /// Its colour.
    color: RGBColor,
    /// Factor on x of its points and bars (dodge).
    shift: f64,
    /// Whether its single-seed rings get the legend entry (only one group's do).
    label_seeds: bool,
}

/// A group's single seeds (rings), geometric means with their intervals, and the fitted line
/// with its band.
fn fit_series(fit: &PowerLawFit, look: &GroupLook) -> Vec<Series> {
    let several = fit.seed_slopes.len() >= 2;
    let shift = look.shift;
    let means: Vec<(f64, f64)> = fit.per_x.iter().map(|p| (p.0 * shift, p.1)).collect();
    let errors: Vec<(f64, f64, f64)> = if several {
        fit.per_x.iter().map(|p| (p.0 * shift, p.2, p.3)).collect()
    } else {
        Vec::new()
    };
    let (lo, hi) = fit.per_x.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let grid: Vec<f64> = (0..=32)
        .map(|i| lo * (hi / lo).powf(i as f64 / 32.0))
        .collect();
    let line: Vec<(f64, f64)> = grid
        .iter()
        .map(|&x| (x, (fit.intercept + fit.slope * x.ln()).exp()))
        .collect();
    let band: Vec<(f64, f64, f64)> = grid
        .iter()
        .filter_map(|&x| fit.band_at(x).map(|(a, b)| (x, a, b)))
        .collect();
    let mean_label = if several {
        format!("geometric mean over seeds ± 95 % t{}", look.tag)
    } else {
        format!("one seed{}", look.tag)
    };
    let fit_label = if several {
        format!(
            "fit{}: exponent {:.2} [{:.2}, {:.2}], band 95 %",
            look.tag,
            fit.slope,
            fit.slope - fit.ci95,
            fit.slope + fit.ci95
        )
    } else {
        format!(
            "fit{}: exponent {:.2} (one seed: no interval)",
            look.tag, fit.slope
        )
    };
    let mut out = Vec::new();
    if several {
        let ring_label = if look.label_seeds {
            "single seeds (rings)"
        } else {
            ""
        };
        out.push(
            Series::line(
                ring_label,
                fit.points
                    .iter()
                    .map(|&(_, x, y)| (x * shift * SEED_OFFSET, y))
                    .collect(),
                look.color,
            )
            .markers_of(Marker::Ring),
        );
    }
    out.push(
        Series::line(mean_label, means, look.color)
            .markers()
            .with_errors(errors),
    );
    out.push(
        Series::line(fit_label, line, look.color)
            .with_band(band)
            .computed(),
    );
    out
}

/// Reference slopes −1/2 (solid grey) and −1 (dashed grey) through the first geometric mean.
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
            .computed()
            .dotted_if(slope == -1.0)
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

/// A learning-rate sweep's runs grouped by learning rate: the swept values in order, each with
/// its completed rows.
struct Levels<'a> {
    key: &'static str,
    levels: Vec<(f64, Vec<&'a SweepRow>)>,
}

impl<'a> Levels<'a> {
    fn of(sweep: &Sweep, rows: &'a [SweepRow]) -> Self {
        let key = sweep.learning_rate_axis().unwrap_or(Axis::LrScale).key();
        let mut values: Vec<f64> = rows.iter().filter_map(|r| r.value_f64(key)).collect();
        values.sort_by(|a, b| a.total_cmp(b));
        values.dedup();
        let levels = values
            .into_iter()
            .map(|v| {
                let at: Vec<&SweepRow> = rows
                    .iter()
                    .filter(|r| r.status.is_completed() && r.value_f64(key) == Some(v))
                    .collect();
                (v, at)
            })
            .collect();
        Levels { key, levels }
    }

    /// The colour of the i-th learning rate (viridis, dark = small).
    fn color(&self, i: usize) -> RGBColor {
        super::viridis(i as f64 / (self.levels.len().max(2) - 1) as f64)
    }

    /// The one phase all seeds of a level share, if they agree.
    fn phase(rows: &[&SweepRow]) -> Option<Phase> {
        let first = rows.first()?.phase?;
        rows.iter().all(|r| r.phase == Some(first)).then_some(first)
    }

    fn label(&self, v: f64, rows: &[&SweepRow]) -> String {
        let mut phases: Vec<&str> = rows
            .iter()
            .map(|r| r.phase.map(|p| p.name()).unwrap_or("failed"))
            .collect();
        phases.dedup();
        format!(
            "{} = {}: {}",
            self.key.rsplit('.').next().unwrap_or(self.key),
            crate::report::plot::line::tick_label(v),
            phases.join("/")
        )
    }
}

/// Points `(x, y)` of a curve.
type Points = Vec<(f64, f64)>;

/// A curve cut where it leaves the axis (`top`) or stops being finite, and the point on the top
/// edge where it left.
fn clipped(curve: &[(f64, f64)], top: f64) -> (Points, Option<(f64, f64)>) {
    match curve.iter().position(|p| !(p.1.is_finite() && p.1 <= top)) {
        Some(i) => (curve[..i].to_vec(), Some((curve[i].0, top))),
        None => (curve.to_vec(), None),
    }
}

/// The largest finite value of the curves of runs that did not diverge (NaN when none).
fn settled_max(levels: &Levels, curve: &dyn Fn(&SweepRow) -> Vec<(f64, f64)>) -> f64 {
    levels
        .levels
        .iter()
        .flat_map(|(_, rows)| rows.iter())
        .filter(|r| r.phase != Some(Phase::Divergent))
        .flat_map(|r| curve(r))
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max)
}

/// The curves of every run (all seeds), coloured by learning rate and cut at `top`, with a
/// cross on the top edge where a run left the axis.
fn phase_curves(
    levels: &Levels,
    curve: &dyn Fn(&SweepRow) -> Vec<(f64, f64)>,
    top: f64,
    labelled: bool,
) -> Vec<Series> {
    let mut series = Vec::new();
    let mut crosses = Vec::new();
    for (i, (v, rows)) in levels.levels.iter().enumerate() {
        for (k, r) in rows.iter().enumerate() {
            let (kept, left) = clipped(&curve(r), top);
            crosses.extend(left);
            let label = if labelled && k == 0 {
                levels.label(*v, rows)
            } else {
                String::new()
            };
            series.push(Series::line(label, kept, levels.color(i)));
        }
    }
    if !labelled {
        series.push(Series::key(
            "colour: learning rate, as in the loss panel",
            RGBColor(120, 120, 120),
            Stroke::Solid,
        ));
    }
    if !crosses.is_empty() {
        series.push(
            Series::line("diverged: left the axis here (×)", crosses, BLACK)
                .markers_of(Marker::Cross),
        );
    }
    series
}

/// The lowest positive value of the curves below `top` (for a log axis' bottom).
fn lowest_below(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold(f64::INFINITY, f64::min)
}

/// η/η_c of a run: its learning rate over the critical rate 2(1+μ)·N·K/λ_max(Θ0) of its own Θ0.
fn eta_ratio(r: &SweepRow) -> f64 {
    r.figure_named("learning_rate") / r.figure_named("critical_learning_rate")
}

/// Shaded strips of the phase the seeds of each learning rate share (grey where they differ),
/// split halfway (geometrically) between neighbouring rates' mean η/η_c.
fn phase_regions(chart: LineChart, levels: &Levels) -> LineChart {
    let centres: Vec<(f64, Option<Phase>)> = levels
        .levels
        .iter()
        .filter_map(|(_, rows)| {
            let xs: Vec<f64> = rows.iter().map(|r| eta_ratio(r).ln()).collect();
            let m = crate::metrics::stats::mean(&xs).exp();
            m.is_finite().then(|| (m, Levels::phase(rows)))
        })
        .collect();
    let mut chart = chart;
    let mut named: Vec<Option<Phase>> = Vec::new();
    let mut i = 0;
    while i < centres.len() {
        let mut j = i;
        while j + 1 < centres.len() && centres[j + 1].1 == centres[i].1 {
            j += 1;
        }
        let lo = if i == 0 {
            0.0
        } else {
            (centres[i - 1].0 * centres[i].0).sqrt()
        };
        let hi = if j + 1 == centres.len() {
            f64::INFINITY
        } else {
            (centres[j].0 * centres[j + 1].0).sqrt()
        };
        let phase = centres[i].1;
        let label = if named.contains(&phase) {
            String::new()
        } else {
            named.push(phase);
            match phase {
                Some(p) => format!("phase: {}", p.name()),
                None => "seeds differ in phase".into(),
            }
        };
        let color = if phase.is_some() {
            phase_color(phase)
        } else {
            RGBColor(127, 127, 127)
        };
        chart = chart.with_region((lo, hi), color, label);
        i = j + 1;
    }
    chart
}

/// One summary value per run against η/η_c: dots, and crosses on the top edge for runs whose
/// value is off the axis (diverged).
fn summary_series(levels: &Levels, value: &dyn Fn(&SweepRow) -> f64, top: f64) -> Vec<Series> {
    let (mut dots, mut crosses) = (Vec::new(), Vec::new());
    for r in levels.levels.iter().flat_map(|(_, rows)| rows.iter()) {
        let (x, y) = (eta_ratio(r), value(r));
        if !x.is_finite() {
            continue;
        }
        if y.is_finite() && y <= top {
            dots.push((x, y));
        } else {
            crosses.push((x, top));
        }
    }
    let mut out = vec![Series::line("each run (every seed)", dots, BLACK).markers()];
    if !crosses.is_empty() {
        out.push(
            Series::line("diverged (× on the top edge)", crosses, BLACK).markers_of(Marker::Cross),
        );
    }
    out
}

/// Each converged run's sharpness ratio at its last kernel checkpoint against η/η_c (rings):
/// where a catapult ends, below where it started.
fn final_sharpness(levels: &Levels, top: f64) -> Series {
    let points = levels
        .levels
        .iter()
        .flat_map(|(_, rows)| rows.iter())
        .filter_map(|r| {
            let last = r.sharpness_curve.last()?.1;
            let x = eta_ratio(r);
            (x.is_finite() && last.is_finite() && last <= top).then_some((x, last))
        })
        .collect();
    Series::line("final sharpness ratio (rings)", points, BLACK).markers_of(Marker::Ring)
}

/// A learning-rate sweep in four panels: the network's train loss and the sharpness of every
/// run (all seeds; colour = learning rate; diverged runs cut where they leave the axis and
/// marked ×), then the final train loss and the largest sharpness of each run against η/η_c
/// with the phases shaded.
pub fn phases_plot(sweep: &Sweep, rows: &[SweepRow]) -> Plot {
    let levels = Levels::of(sweep, rows);
    let loss = |r: &SweepRow| r.loss_curve.clone();
    let sharp = |r: &SweepRow| r.sharpness_curve.clone();
    let loss_top = 10.0 * settled_max(&levels, &loss);
    let loss_top = if loss_top.is_finite() { loss_top } else { 1e3 };
    let sharp_top = (1.15 * settled_max(&levels, &sharp)).max(1.5);
    let sharp_top = if sharp_top.is_finite() {
        sharp_top
    } else {
        4.0
    };
    let loss_curves = phase_curves(&levels, &loss, loss_top, true);
    let loss_bottom = lowest_below(&loss_curves) / 1.5;
    let final_loss =
        |r: &SweepRow| r.figure(Figure::Final(Column::Loss(Track::Network, Split::Train)));
    let max_sharp = |r: &SweepRow| {
        r.sharpness_curve
            .iter()
            .map(|p| p.1)
            .fold(f64::NAN, f64::max)
    };
    let summaries = summary_series(&levels, &final_loss, loss_top);
    let summary_bottom = lowest_below(&summaries) / 1.5;
    let eta_label = "η/η_c (η_c = 2(1+μ)·N·K/λ_max(Θ0) of each run, log scale)";
    let edge = "edge of stability (ratio 1)";
    let charts = vec![
        LineChart::new(
            "network train loss",
            "SGD step",
            "train loss ½·mean (f − y)²",
        )
        .log_y()
        .with_y_range(loss_bottom, loss_top)
        .with_series(loss_curves),
        LineChart::new(
            "sharpness on the full training kernel",
            "SGD step",
            "sharpness ratio η·λ_max(Θt)/(2(1+μ)·N·K)",
        )
        .with_y_range(0.0, sharp_top)
        .with_series(phase_curves(&levels, &sharp, sharp_top, false))
        .with_hline(1.0, edge),
        phase_regions(
            LineChart::new(
                "final train loss of each run",
                eta_label,
                "final network train loss",
            )
            .log_x()
            .log_y()
            .with_y_range(summary_bottom, loss_top)
            .with_series(summaries),
            &levels,
        ),
        phase_regions(
            LineChart::new(
                "largest and final sharpness ratio of each run",
                eta_label,
                "sharpness ratio: largest (dots), final (rings)",
            )
            .log_x()
            .with_y_range(0.0, sharp_top)
            .with_series({
                let mut s = summary_series(&levels, &max_sharp, sharp_top);
                s.push(final_sharpness(&levels, sharp_top));
                s
            })
            .with_hline(1.0, edge),
            &levels,
        ),
    ];
    Plot::Grid {
        title: format!(
            "{}: training phases over the learning rate (every seed; curves coloured by learning rate, dark = small)",
            sweep.base.name
        ),
        cols: 2,
        charts,
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

/// Offsets the series that carry error bars sideways, so that bars at one x do not overlap:
/// the k-th of m such series moves by `(k − (m − 1)/2)` steps of [`DODGE_LN`] in log x, or of
/// 0.6 % of the x span on a linear axis.
fn dodge(series: &mut [Series], log_x: bool) {
    let with_bars: Vec<usize> = (0..series.len())
        .filter(|&i| !series[i].errors.is_empty())
        .collect();
    let m = with_bars.len() as f64;
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    for (k, &i) in with_bars.iter().enumerate() {
        let step = k as f64 - (m - 1.0) / 2.0;
        let moved = |x: f64| {
            if log_x {
                x * (DODGE_LN * step).exp()
            } else {
                x + 0.006 * (hi - lo) * step
            }
        };
        let s = &mut series[i];
        for p in &mut s.points {
            p.0 = moved(p.0);
        }
        for e in &mut s.errors {
            e.0 = moved(e.0);
        }
    }
}

/// What a sweep's points are: means over seeds with their intervals, or one seed's values.
fn over_seeds(sweep: &Sweep) -> &'static str {
    if sweep.spec.seeds.unwrap_or(1) > 1 {
        "mean over seeds ± 95 % t-interval"
    } else {
        "one seed"
    }
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
            m.is_finite().then_some((x, m, h))
        })
        .collect();
    // One value has no interval: no bar is drawn for it.
    (
        stats.iter().map(|s| (s.0, s.1)).collect(),
        stats
            .iter()
            .filter(|s| s.2.is_finite())
            .map(|s| (s.0, s.1 - s.2, s.1 + s.2))
            .collect(),
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
            over_seeds(sweep)
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
                .dotted(),
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
                    format!("{}: t = ∞ (dotted, rings)", t.name()),
                    m,
                    track_color(t),
                )
                .dotted()
                .with_marker(Marker::Ring)
                .with_errors(e),
            );
        }
    }
    dodge(&mut series, true);
    Plot::Line(
        LineChart::new(
            format!(
                "{}: test accuracy against training points ({})",
                sweep.base.name,
                over_seeds(sweep)
            ),
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
        series.push(
            Series::line(format!("{}: final", t.name()), m, track_color(t))
                .with_marker(Marker::Dot)
                .with_errors(e),
        );
        let early = Figure::EarlyStoppedTestAccuracy(t);
        if rows.iter().any(|r| r.figure(early).is_finite()) {
            let (m, e) = noise_curve(rows, early, regs.first());
            series.push(
                Series::line(
                    format!(
                        "{}: early-stopped on validation accuracy (dotted, rings)",
                        t.name()
                    ),
                    m,
                    track_color(t),
                )
                .dotted()
                .with_marker(Marker::Ring)
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
    dodge(&mut series, false);
    Plot::Line(
        LineChart::new(
            format!(
                "{}: test accuracy vs label noise (mean ± 95 % t over seeds)",
                sweep.base.name
            ),
            "fraction of corrupted training labels (bars offset sideways)",
            "test accuracy",
        )
        .with_series(series),
    )
}
