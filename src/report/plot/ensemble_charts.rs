//! `ensemble.png`: an ensemble of networks (and of their twins) against the infinite-width
//! Gaussian process. For 1-D inputs with one output: the member curves, the ensemble's and
//! the GP's mean ± 2σ bands, and the variances along x; otherwise ensemble against GP variance
//! and mean per test point. Both with the gaps over training.

use plotters::prelude::*;

use super::{track_color, LineChart, Plot, Series};
use crate::dynamics::gp::GpKernel;
use crate::record::columns::Column;
use crate::record::ensemble::EnsembleRecord;
use crate::record::{RunRecord, Track};

const GP_COLOR: RGBColor = RGBColor(0, 0, 0);
const NNGP_COLOR: RGBColor = RGBColor(148, 103, 189);

/// `(x, mean − 2σ, mean + 2σ)` along sorted test points.
fn band(order: &[usize], x: &[f64], mean: &[f64], var: &[f64]) -> Vec<(f64, f64, f64)> {
    order
        .iter()
        .map(|&i| {
            let s = 2.0 * var[i].max(0.0).sqrt();
            (x[i], mean[i] - s, mean[i] + s)
        })
        .collect()
}

fn along(order: &[usize], x: &[f64], v: &[f64]) -> Vec<(f64, f64)> {
    order.iter().map(|&i| (x[i], v[i])).collect()
}

/// The members of a track with their mean ± 2σ band and the NTK GP's, along x.
fn bands_chart(r: &RunRecord, e: &EnsembleRecord, t: Track, order: &[usize]) -> LineChart {
    let x = &r.data.x_test;
    let mut series = vec![Series::line(
        "target (test)",
        along(order, x, &r.data.y_test),
        RGBColor(160, 160, 160),
    )
    .dashed()];
    let faint = track_color(t).mix(0.35);
    let faint = RGBColor(
        (faint.0 as f64 * 0.35 + 255.0 * 0.65) as u8,
        (faint.1 as f64 * 0.35 + 255.0 * 0.65) as u8,
        (faint.2 as f64 * 0.35 + 255.0 * 0.65) as u8,
    );
    for (m, p) in e.member_test.get(t).into_iter().flatten().enumerate() {
        let label = if m == 0 {
            format!("{} members ({})", e.members, t.name())
        } else {
            String::new()
        };
        let mut s = Series::line(label, along(order, x, p), faint);
        s.width = 1;
        series.push(s);
    }
    if let (Some(mean), Some(var)) = (e.test.mean.get(t), e.test.var.get(t)) {
        series.push(
            Series::line(
                format!("{} ensemble mean ± 2σ", t.name()),
                along(order, x, mean),
                track_color(t),
            )
            .with_band(band(order, x, mean, var)),
        );
    }
    if let (Some(mean), Some(var)) = (
        e.test.gp_mean.get(GpKernel::Ntk),
        e.test.gp_var.get(GpKernel::Ntk),
    ) {
        series.push(
            Series::line("NTK GP mean ± 2σ (dotted)", along(order, x, mean), GP_COLOR)
                .dotted()
                .with_band(band(order, x, mean, var)),
        );
    }
    series.push(
        Series::line(
            "training points",
            r.data
                .x_train
                .iter()
                .zip(&r.data.y_train)
                .map(|(&a, &b)| (a, b))
                .collect(),
            BLACK,
        )
        .markers(),
    );
    LineChart::new(
        format!("{} ensemble vs NTK Gaussian process (final step)", t.name()),
        "input x",
        "output f(x)",
    )
    .with_series(series)
}

/// Variance along x: both ensembles and both GPs.
fn variance_chart(r: &RunRecord, e: &EnsembleRecord, order: &[usize]) -> LineChart {
    let x = &r.data.x_test;
    let mut series = Vec::new();
    for t in [Track::Network, Track::Linearized] {
        if let Some(v) = e.test.var.get(t) {
            series.push(Series::line(
                format!("{} ensemble variance", t.name()),
                along(order, x, v),
                track_color(t),
            ));
        }
    }
    for (g, c) in [(GpKernel::Ntk, GP_COLOR), (GpKernel::Nngp, NNGP_COLOR)] {
        if let Some(v) = e.test.gp_var.get(g) {
            series.push(
                Series::line(
                    format!("{} GP variance (dotted)", g.name().to_uppercase()),
                    along(order, x, v),
                    c,
                )
                .dotted(),
            );
        }
    }
    LineChart::new(
        "variance over initialisations (final step)",
        "input x",
        "variance of f(x)",
    )
    .log_y()
    .with_series(series)
}

/// Per test entry: ensemble against GP, on log axes for variances.
fn scatter_chart(e: &EnsembleRecord, variance: bool) -> LineChart {
    let gp = if variance {
        e.test.gp_var.get(GpKernel::Ntk)
    } else {
        e.test.gp_mean.get(GpKernel::Ntk)
    };
    let gp = gp.cloned().unwrap_or_default();
    let mut series = Vec::new();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for t in [Track::Network, Track::Linearized] {
        let v = if variance {
            e.test.var.get(t)
        } else {
            e.test.mean.get(t)
        };
        let pts: Vec<(f64, f64)> = gp
            .iter()
            .copied()
            .zip(v.into_iter().flatten().copied())
            .filter(|(a, b)| {
                a.is_finite() && b.is_finite() && (!variance || (*a > 0.0 && *b > 0.0))
            })
            .collect();
        for &(a, b) in &pts {
            lo = lo.min(a.min(b));
            hi = hi.max(a.max(b));
        }
        series.push(Series::line(format!("{} ensemble", t.name()), pts, track_color(t)).markers());
    }
    if lo.is_finite() && hi.is_finite() {
        series.push(
            Series::line("y = x", vec![(lo, lo), (hi, hi)], GP_COLOR)
                .dotted()
                .computed(),
        );
    }
    let (title, what) = if variance {
        ("variance per test entry", "variance")
    } else {
        ("mean per test entry", "mean")
    };
    let c = LineChart::new(
        format!("ensemble vs NTK GP: {title} (final step)"),
        format!("NTK GP {what}"),
        format!("ensemble {what}"),
    )
    .with_series(series);
    if variance {
        c.log_x().log_y()
    } else {
        c
    }
}

/// Over training: the ensemble-vs-GP mean gap RMSE(ensemble mean, GP mean)/RMS(y) (the figure
/// the report gives under that name) and the median variance ratio, per track.
fn gaps_chart(r: &RunRecord) -> LineChart {
    let rms_y = r.target_scale();
    let mut series = super::paired_series(
        r,
        &[Track::Network, Track::Linearized],
        (
            &|t| format!("{}: RMSE(ensemble mean, GP mean)/RMS(y)", t.name()),
            &Column::EnsembleGpMeanRmse,
        ),
        (
            &|t| format!("{}: median variance ratio ensemble/GP (dotted)", t.name()),
            &Column::EnsembleVarRatio,
        ),
    );
    for s in series.iter_mut().step_by(2) {
        for p in &mut s.points {
            p.1 /= rms_y;
        }
    }
    // What sampling alone gives: the mean gap M exact GP draws would show (the network's; the
    // twin's differs only through its divergent members).
    let floor = r
        .ensemble
        .as_ref()
        .and_then(|e| e.gap(Track::Network))
        .map(|g| g.mean_gap_floor);
    let chart = LineChart::new(
        "ensemble vs NTK GP over training (test points)",
        "SGD step",
        "mean gap (solid); variance ratio (dotted)",
    )
    .log_y()
    .with_series(series)
    .with_hline(1.0, "variance ratio 1");
    match floor {
        Some(f) if f.is_finite() && f > 0.0 => chart.with_hline(
            f,
            format!("mean gap of exact GP draws (Monte-Carlo floor) {f:.3}"),
        ),
        _ => chart,
    }
}

/// The `ensemble` figure of a record with `[ensemble]`.
pub fn ensemble_plot(r: &RunRecord) -> Option<Plot> {
    let e = r.ensemble.as_ref()?;
    let charts = if r.data.input_dim == 1 && r.data.n_outputs == 1 {
        let mut order: Vec<usize> = (0..r.data.x_test.len()).collect();
        order.sort_by(|&a, &b| r.data.x_test[a].total_cmp(&r.data.x_test[b]));
        vec![
            bands_chart(r, e, Track::Network, &order),
            bands_chart(r, e, Track::Linearized, &order),
            variance_chart(r, e, &order),
            gaps_chart(r),
        ]
    } else {
        vec![
            scatter_chart(e, true),
            scatter_chart(e, false),
            gaps_chart(r),
        ]
    };
    Some(Plot::Grid {
        title: format!(
            "{}: {} networks differing only in their initialisation vs the infinite-width Gaussian process",
            r.name, e.members
        ),
        cols: 2,
        charts,
    })
}
