//! The figures of one run, each built from the record (series are read through the column
//! registry, [`crate::record::columns`]).

use std::path::Path;

use plotters::prelude::*;

use super::{line_chart_png, render_png, track_color, Area, LineChart, Series, PALETTE};
use crate::record::columns::{Column, Split};
use crate::record::{RunRecord, Track};
use crate::Result;

fn loss_chart(r: &RunRecord) -> LineChart {
    let mut series = Vec::new();
    for &t in &r.tracks {
        series.push(Series::line(
            format!("{} train", t.name()),
            Column::Loss(t, Split::Train).series(r),
            track_color(t),
        ));
        let test = Column::Loss(t, Split::Test).series(r);
        if !test.is_empty() {
            series.push(Series::line(format!("{} test", t.name()), test, track_color(t)).dashed());
        }
    }
    LineChart::new(
        format!("{}: loss (½·mean squared error)", r.name),
        "step",
        "loss",
    )
    .log_y()
    .with_series(series)
}

fn divergence_chart(r: &RunRecord) -> LineChart {
    let mut series = Vec::new();
    for (i, &(a, b)) in r.pairs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = format!("{} vs {}", a.name(), b.name());
        series.push(Series::line(
            format!("{label} train"),
            Column::Rmse((a, b), Split::Train).series(r),
            color,
        ));
        let test = Column::Rmse((a, b), Split::Test).series(r);
        if !test.is_empty() {
            series.push(Series::line(format!("{label} test"), test, color).dashed());
        }
    }
    LineChart::new(
        format!("{}: prediction divergence between tracks", r.name),
        "step",
        "RMSE between predictions",
    )
    .log_y()
    .with_series(series)
}

fn kernel_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![
        Series::line(
            "relative NTK drift ‖Θt−Θ0‖/‖Θ0‖",
            Column::NtkRelDrift.series(r),
            BLACK,
        ),
        Series::line(
            "kernel distance 1−cos(Θt,Θ0)",
            Column::NtkKernelDistance.series(r),
            RGBColor(127, 127, 127),
        )
        .dashed(),
    ];
    for l in 0..r.n_layers {
        series.push(Series::line(
            format!("drift of layer {l}'s term"),
            Column::NtkRelDriftLayer(l).series(r),
            PALETTE[l % PALETTE.len()],
        ));
    }
    LineChart::new(
        format!(
            "{}: empirical NTK drift on {} probe points",
            r.name, r.probe_size
        ),
        "step",
        "relative change",
    )
    .log_y()
    .with_series(series)
}

fn param_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![Series::line(
        "all parameters ‖θt−θ0‖/‖θ0‖",
        Column::ParamRelChange.series(r),
        BLACK,
    )];
    for l in 0..r.n_layers {
        series.push(Series::line(
            format!("layer {l}"),
            Column::ParamRelChangeLayer(l).series(r),
            PALETTE[l % PALETTE.len()],
        ));
    }
    LineChart::new(
        format!("{}: relative parameter change", r.name),
        "step",
        "‖θt−θ0‖/‖θ0‖",
    )
    .log_y()
    .with_series(series)
}

/// Functions over the 1-D test grid, else predicted-vs-target scatter.
fn predictions_chart(r: &RunRecord) -> LineChart {
    if r.input_dim == 1 && r.n_outputs == 1 && !r.x_test.is_empty() {
        let mut order: Vec<usize> = (0..r.x_test.len()).collect();
        order.sort_by(|&a, &b| r.x_test[a].total_cmp(&r.x_test[b]));
        let mut series = vec![Series::line(
            "target (test)",
            order.iter().map(|&i| (r.x_test[i], r.y_test[i])).collect(),
            RGBColor(160, 160, 160),
        )
        .dashed()];
        for o in &r.outputs {
            series.push(Series::line(
                o.track.name(),
                order.iter().map(|&i| (r.x_test[i], o.test[i])).collect(),
                track_color(o.track),
            ));
        }
        series.push(
            Series::line(
                "training points",
                r.x_train
                    .iter()
                    .zip(&r.y_train)
                    .map(|(&x, &y)| (x, y))
                    .collect(),
                BLACK,
            )
            .markers(),
        );
        let name = |v: &[String], d: &str| v.first().cloned().unwrap_or_else(|| d.into());
        LineChart::new(
            format!("{}: learned functions at the final step", r.name),
            name(&r.feature_names, "x"),
            name(&r.target_names, "y"),
        )
        .with_series(series)
    } else {
        let test = !r.x_test.is_empty();
        let (y, split) = if test {
            (&r.y_test, "test")
        } else {
            (&r.y_train, "train")
        };
        let series = r
            .outputs
            .iter()
            .map(|o| {
                let p = if test { &o.test } else { &o.train };
                Series::line(
                    o.track.name(),
                    y.iter().zip(p).map(|(&a, &b)| (a, b)).collect(),
                    track_color(o.track),
                )
                .markers()
            })
            .collect();
        LineChart::new(
            format!("{}: predicted vs target ({split})", r.name),
            "target",
            "prediction",
        )
        .with_series(series)
    }
}

/// Eigenvalues of Θ0, Θ_final, Θ∞ with the critical eigenvalue 2·|Y|/η.
fn spectrum_chart(r: &RunRecord) -> LineChart {
    let idx = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(i, &e)| ((i + 1) as f64, e))
            .collect::<Vec<_>>()
    };
    let n_targets = r.y_train.len() as f64;
    LineChart::new(
        format!("{}: NTK spectra on the training set", r.name),
        "eigenvalue index",
        "eigenvalue",
    )
    .log_x()
    .log_y()
    .with_series(vec![
        Series::line(
            "Θ0 (empirical, init)",
            idx(&r.spectrum_init),
            track_color(Track::Linearized),
        ),
        Series::line(
            "Θ final (empirical)",
            idx(&r.spectrum_final),
            track_color(Track::Network),
        ),
        Series::line(
            "Θ∞ (analytic)",
            idx(&r.spectrum_analytic),
            track_color(Track::KernelAnalytic),
        )
        .dashed(),
    ])
    .with_hline(
        2.0 * n_targets / r.learning_rate,
        format!("2·N·K/η: GD unstable above (η = {:.4})", r.learning_rate),
    )
}

/// Heat maps of Θ0, Θ_final and Θ_final − Θ0 on the probe set.
fn kernels_png(path: &Path, r: &RunRecord) -> Result<Vec<u8>> {
    let p = r.probe_size;
    let diff: Vec<f64> = r
        .probe_ntk_final
        .iter()
        .zip(&r.probe_ntk_init)
        .map(|(a, b)| a - b)
        .collect();
    render_png(path, (1500, 560), |root| {
        let (title, body) = root.split_vertically(50);
        title
            .titled(
                &format!("{}: empirical NTK on {p} probe points", r.name),
                ("sans-serif", 24),
            )
            .map_err(|e| e.to_string())?;
        let panels = body.split_evenly((1, 3));
        let shared = r
            .probe_ntk_init
            .iter()
            .chain(&r.probe_ntk_final)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let dmax = diff.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (panel, (name, data, scale)) in panels.iter().zip([
            ("Θ0", &r.probe_ntk_init, shared),
            ("Θ final", &r.probe_ntk_final, shared),
            ("Θ final − Θ0", &diff, dmax),
        ]) {
            heat_map(
                panel,
                &format!("{name} (|max| = {scale:.3e})"),
                data,
                p,
                scale,
            )?;
        }
        Ok(())
    })
}

fn heat_map(
    area: &Area<'_>,
    title: &str,
    data: &[f64],
    p: usize,
    scale: f64,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0..p, 0..p)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    let scale = if scale > 0.0 { scale } else { 1.0 };
    chart
        .draw_series(
            (0..p)
                .flat_map(|i| (0..p).map(move |j| (i, j)))
                .map(|(i, j)| {
                    let v = (data[i * p + j] / scale).clamp(-1.0, 1.0);
                    // diverging blue–white–red map
                    let c = if v >= 0.0 {
                        RGBColor(255, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8)
                    } else {
                        RGBColor((255.0 * (1.0 + v)) as u8, (255.0 * (1.0 + v)) as u8, 255)
                    };
                    Rectangle::new([(j, p - 1 - i), (j + 1, p - i)], c.filled())
                }),
        )
        .map_err(e)?;
    Ok(())
}

/// Train and test accuracy of every track against step.
fn accuracy_chart(r: &RunRecord) -> LineChart {
    let mut series = Vec::new();
    for &t in &r.tracks {
        series.push(Series::line(
            format!("{} train", t.name()),
            Column::Accuracy(t, Split::Train).series(r),
            track_color(t),
        ));
        if !r.y_test.is_empty() {
            series.push(
                Series::line(
                    format!("{} test", t.name()),
                    Column::Accuracy(t, Split::Test).series(r),
                    track_color(t),
                )
                .dashed(),
            );
        }
    }
    LineChart::new(format!("{}: accuracy", r.name), "step", "accuracy").with_series(series)
}

/// Test (or train) confusion matrices of every track at the final step.
fn confusion_png(path: &Path, r: &RunRecord) -> Result<Vec<u8>> {
    let k = r.n_outputs;
    let test = !r.y_test.is_empty();
    let targets = if test { &r.y_test } else { &r.y_train };
    let n = r.outputs.len();
    render_png(path, (480 * n as u32, 540), |root| {
        let (title, body) = root.split_vertically(50);
        title
            .titled(
                &format!(
                    "{}: confusion matrices ({}, rows = true class)",
                    r.name,
                    if test { "test" } else { "train" }
                ),
                ("sans-serif", 24),
            )
            .map_err(|e| e.to_string())?;
        for (panel, o) in body.split_evenly((1, n)).iter().zip(&r.outputs) {
            let m = crate::metrics::confusion(if test { &o.test } else { &o.train }, targets, k);
            let total: usize = m.iter().map(|row| row.iter().sum::<usize>()).sum();
            let correct: usize = (0..k).map(|i| m[i][i]).sum();
            let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let data: Vec<f64> = m.iter().flatten().map(|&c| c as f64 / max).collect();
            heat_map(
                panel,
                &format!(
                    "{} ({:.1} %)",
                    o.track.name(),
                    100.0 * correct as f64 / total.max(1) as f64
                ),
                &data,
                k,
                1.0,
            )?;
        }
        Ok(())
    })
}

/// Mean input-Jacobian norm of the network and of its linearization.
fn sensitivity_chart(r: &RunRecord) -> LineChart {
    LineChart::new(
        format!(
            "{}: input sensitivity (mean ‖∂f/∂x‖ on test points)",
            r.name
        ),
        "step",
        "‖∂f/∂x‖_F",
    )
    .with_series(vec![
        Series::line(
            "network",
            Column::InputGradNorm(Track::Network).series(r),
            track_color(Track::Network),
        ),
        Series::line(
            "linearized",
            Column::InputGradNorm(Track::Linearized).series(r),
            track_color(Track::Linearized),
        )
        .dashed(),
    ])
}

/// Every figure of a run as `(file name, PNG bytes)`.
pub fn render_all(r: &RunRecord) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut line = |name: &str, chart: LineChart| -> Result<()> {
        out.push((name.to_string(), line_chart_png(Path::new(name), &chart)?));
        Ok(())
    };
    line("loss.png", loss_chart(r))?;
    line("divergence.png", divergence_chart(r))?;
    line("kernel_drift.png", kernel_drift_chart(r))?;
    line("param_drift.png", param_drift_chart(r))?;
    line("predictions.png", predictions_chart(r))?;
    line("spectrum.png", spectrum_chart(r))?;
    out.push((
        "kernels.png".into(),
        kernels_png(Path::new("kernels.png"), r)?,
    ));
    out.push((
        "sensitivity.png".into(),
        line_chart_png(Path::new("sensitivity.png"), &sensitivity_chart(r))?,
    ));
    if r.classes.is_some() {
        out.push((
            "accuracy.png".into(),
            line_chart_png(Path::new("accuracy.png"), &accuracy_chart(r))?,
        ));
        out.push((
            "confusion.png".into(),
            confusion_png(Path::new("confusion.png"), r)?,
        ));
    }
    Ok(out)
}
