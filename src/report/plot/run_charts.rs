//! The figures of one run, each built from the record (series are read through the column
//! registry, [`crate::record::columns`]).

use plotters::prelude::*;

use super::{
    paired_series, track_color, ColorScale, HeatMap, LineChart, Marker, Plot, Series, PALETTE,
};
use crate::record::columns::{Column, Split};
use crate::record::{RunRecord, Track};

/// Relative difference below which two curves count as the same line.
pub const COINCIDE_RTOL: f64 = 1e-9;

/// The x axis of every training-time chart.
const STEP: &str = "SGD step";

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
        format!("{}: loss of every track", r.name),
        STEP,
        "loss ½·mean over entries of (f − y)²",
    )
    .log_y()
    .with_series(series)
    .mark_coinciding(COINCIDE_RTOL)
}

/// Small multiples: the network against each approximation, and the approximations against
/// each other (consistency); differences at the f64 round-off level sit on a marked floor.
fn divergence_plot(r: &RunRecord) -> Plot {
    let panel = |title: &str, pairs: Vec<(Track, Track)>| {
        let mut series = Vec::new();
        for (i, &(a, b)) in pairs.iter().enumerate() {
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
        LineChart::new(title, STEP, "RMSE between the two tracks' outputs")
            .log_y()
            .with_series(series)
            .with_floor(
                1e-12 * r.target_scale(),
                "bottom edge: values below the f64 round-off level 1e-12·RMS(y)",
            )
            .mark_coinciding(COINCIDE_RTOL)
    };
    let (with_net, others): (Vec<_>, Vec<_>) =
        r.pairs.iter().partition(|(a, _)| *a == Track::Network);
    let mut charts = vec![panel("the network against each approximation", with_net)];
    if !others.is_empty() {
        charts.push(panel(
            "consistency: the approximations against each other",
            others,
        ));
    }
    Plot::Grid {
        title: format!("{}: prediction divergence between tracks", r.name),
        cols: charts.len(),
        charts,
    }
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
            "{}: empirical NTK drift (output-averaged, {} probe points)",
            r.name, r.probe_size
        ),
        STEP,
        "relative change of the kernel",
    )
    .log_y()
    .with_series(series)
}

/// Centred alignments of the probe-set kernel Θ_t: with the targets' kernel `y yᵀ` and with Θ0
/// (`kernel_alignment.csv`).
fn kernel_alignment_chart(r: &RunRecord) -> LineChart {
    let of = |f: fn(&crate::record::KernelCheckpoint) -> f64| -> Vec<(f64, f64)> {
        r.checkpoints
            .iter()
            .filter_map(|c| c.kernel.as_ref().map(|k| (c.step as f64, f(k))))
            .collect()
    };
    LineChart::new(
        format!(
            "{}: centred alignment of Θt (output-averaged, {} probe points)",
            r.name, r.probe_size
        ),
        STEP,
        "centred kernel alignment (1 = same up to scale)",
    )
    .with_series(vec![
        Series::line(
            "with the targets' kernel y yᵀ",
            of(|k| k.ntk_target_alignment),
            PALETTE[0],
        )
        .with_marker(Marker::Dot),
        Series::line("with Θ0 (CKA)", of(|k| k.ntk_cka_init), BLACK).with_marker(Marker::Ring),
    ])
    .with_hline(0.0, "0: no alignment after centring")
}

fn param_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![Series::line(
        "all parameters ‖θt−θ0‖/‖θ0‖",
        Column::ParamRelChange.series(r),
        BLACK,
    )];
    for l in 0..r.n_layers {
        let color = PALETTE[l % PALETTE.len()];
        series.push(Series::line(
            format!("layer {l} weights ‖ΔW‖_F/‖W0‖_F"),
            Column::WeightRelChangeLayer(l).series(r),
            color,
        ));
        let bias = Column::BiasRelChangeLayer(l).series(r);
        if bias.iter().any(|p| p.1.is_finite()) {
            series.push(Series::line(format!("layer {l} biases"), bias, color).dashed());
        }
        series.push(
            Series::line(
                format!("layer {l} weights ‖ΔW‖₂/‖W0‖₂"),
                Column::WeightSpectralChangeLayer(l).series(r),
                color,
            )
            .markers(),
        );
    }
    LineChart::new(
        format!("{}: relative parameter change", r.name),
        STEP,
        "relative change since initialisation",
    )
    .log_y()
    .with_series(series)
}

/// Functions over the 1-D test grid, else predicted-vs-target scatter.
fn predictions_chart(r: &RunRecord) -> LineChart {
    if r.data.input_dim == 1 && r.data.n_outputs == 1 && !r.data.x_test.is_empty() {
        let mut order: Vec<usize> = (0..r.data.x_test.len()).collect();
        order.sort_by(|&a, &b| r.data.x_test[a].total_cmp(&r.data.x_test[b]));
        let mut series = vec![Series::line(
            "target (test)",
            order
                .iter()
                .map(|&i| (r.data.x_test[i], r.data.y_test[i]))
                .collect(),
            RGBColor(160, 160, 160),
        )
        .dashed()];
        for o in &r.outputs {
            series.push(Series::line(
                o.track.name(),
                order
                    .iter()
                    .map(|&i| (r.data.x_test[i], o.test[i]))
                    .collect(),
                track_color(o.track),
            ));
        }
        series.push(
            Series::line(
                "training points",
                r.data
                    .x_train
                    .iter()
                    .zip(&r.data.y_train)
                    .map(|(&x, &y)| (x, y))
                    .collect(),
                BLACK,
            )
            .markers(),
        );
        let name = |v: &[String], d: &str| v.first().cloned().unwrap_or_else(|| d.into());
        LineChart::new(
            format!("{}: learned functions at the final step", r.name),
            format!("input {}", name(&r.data.feature_names, "x")),
            format!("output {}", name(&r.data.target_names, "y")),
        )
        .with_series(series)
        .mark_coinciding(COINCIDE_RTOL)
    } else {
        let test = !r.data.x_test.is_empty();
        let (y, split) = if test {
            (&r.data.y_test, "test")
        } else {
            (&r.data.y_train, "train")
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
            format!(
                "{}: predicted vs target ({split} points, every output)",
                r.name
            ),
            "target value",
            "predicted value",
        )
        .with_series(series)
    }
}

/// Eigenvalues of Θ0, Θ_final, Θ∞ with the critical eigenvalue 2(1+μ)·N·K/η.
fn spectrum_chart(r: &RunRecord) -> LineChart {
    let idx = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(i, &e)| ((i + 1) as f64, e))
            .collect::<Vec<_>>()
    };
    // λ_max of the full Θ0 is 2(1+μ)NK/η_c, so the edge at η is λ_max(Θ0)·η_c/η.
    let lambda_full0 = r
        .checkpoints
        .first()
        .and_then(|c| Column::NtkLambdaMaxFull.read(c))
        .unwrap_or(f64::NAN);
    let lambda_edge = lambda_full0 * r.critical_learning_rate / r.learning_rate;
    LineChart::new(
        format!(
            "{}: NTK spectra on the training set (output-averaged)",
            r.name
        ),
        "eigenvalue index (descending)",
        "eigenvalue of Θ (train × train)",
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
        lambda_edge,
        format!(
            "2(1+μ)·N·K/η: full-kernel modes above it are unstable (η = {:.4})",
            r.learning_rate
        ),
    )
}

/// Sharpness against step: `η·λ_max(Θ_t)/(2(1+μ)NK)` on the full training kernel.
fn sharpness_chart(r: &RunRecord) -> LineChart {
    LineChart::new(
        format!("{}: sharpness (full training kernel)", r.name),
        STEP,
        "η·λ_max(Θt)/(2(1+μ)·N·K)",
    )
    .log_y()
    .with_series(vec![Series::line(
        "sharpness ratio",
        Column::SharpnessRatio.series(r),
        BLACK,
    )])
    .with_hline(1.0, "edge of stability (1)")
}

/// Heat maps of Θ0, Θ_final and Θ_final − Θ0 on the probe set, each with a colour bar.
fn kernels_plot(r: &RunRecord) -> Plot {
    let p = r.probe_size;
    let diff: Vec<f64> = r
        .probe_ntk_final
        .iter()
        .zip(&r.probe_ntk_init)
        .map(|(a, b)| a - b)
        .collect();
    let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let shared = max_abs(&r.probe_ntk_init).max(max_abs(&r.probe_ntk_final));
    let map = |title: &str, values: Vec<f64>, max: f64, bar: &str| HeatMap {
        title: title.into(),
        n_rows: p,
        n_cols: p,
        values,
        scale: ColorScale::Diverging { max },
        row_labels: None,
        col_labels: None,
        cell_text: None,
        x_desc: "probe point j".into(),
        y_desc: "probe point i".into(),
        colorbar_label: bar.into(),
    };
    Plot::Heat {
        title: format!(
            "{}: empirical NTK on {p} probe points (output-averaged)",
            r.name
        ),
        maps: vec![
            map("Θ0", r.probe_ntk_init.clone(), shared, "Θ0(x_i, x_j)"),
            map(
                "Θ final",
                r.probe_ntk_final.clone(),
                shared,
                "Θ_final(x_i, x_j)",
            ),
            map(
                "Θ final − Θ0",
                diff.clone(),
                max_abs(&diff),
                "difference (own scale)",
            ),
        ],
    }
}

/// Train, validation and test accuracy of every track against step.
fn accuracy_chart(r: &RunRecord) -> LineChart {
    let mut series = Vec::new();
    for &t in &r.tracks {
        series.push(Series::line(
            format!("{} train", t.name()),
            Column::Accuracy(t, Split::Train).series(r),
            track_color(t),
        ));
        if !r.data.y_test.is_empty() {
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
    LineChart::new(
        format!("{}: classification accuracy", r.name),
        STEP,
        "accuracy (fraction of points whose argmax is the true class)",
    )
    .with_series(series)
    .mark_coinciding(COINCIDE_RTOL)
}

/// Test (or train) confusion matrices of every track at the final step: counts and row
/// fractions in the cells, class names on both axes.
fn confusion_plot(r: &RunRecord) -> Plot {
    let k = r.data.n_outputs;
    let test = !r.data.y_test.is_empty();
    let targets = if test {
        &r.data.y_test
    } else {
        &r.data.y_train
    };
    let classes = r
        .data
        .classes
        .clone()
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
    let maps = r
        .outputs
        .iter()
        .map(|o| {
            let m = crate::metrics::confusion(if test { &o.test } else { &o.train }, targets, k);
            let row_total: Vec<usize> = m.iter().map(|row| row.iter().sum()).collect();
            let frac = |i: usize, j: usize| m[i][j] as f64 / row_total[i].max(1) as f64;
            let correct: usize = (0..k).map(|i| m[i][i]).sum();
            let total: usize = row_total.iter().sum();
            HeatMap {
                title: format!(
                    "{} ({:.1} % correct)",
                    o.track.name(),
                    100.0 * correct as f64 / total.max(1) as f64
                ),
                n_rows: k,
                n_cols: k,
                values: (0..k * k).map(|c| frac(c / k, c % k)).collect(),
                scale: ColorScale::Sequential { max: 1.0 },
                row_labels: Some(classes.clone()),
                col_labels: Some(classes.clone()),
                cell_text: Some(
                    (0..k * k)
                        .map(|c| {
                            let (i, j) = (c / k, c % k);
                            (m[i][j].to_string(), format!("{:.2}", frac(i, j)))
                        })
                        .collect(),
                ),
                x_desc: "predicted class".into(),
                y_desc: "true class".into(),
                colorbar_label: "fraction of the true class (row)".into(),
            }
        })
        .collect();
    Plot::Heat {
        title: format!(
            "{}: confusion matrices ({} points; count and row fraction per cell)",
            r.name,
            if test { "test" } else { "train" }
        ),
        maps,
    }
}

/// Mean input-Jacobian norm of the network and of its twin, and its change since t = 0.
fn sensitivity_chart(r: &RunRecord) -> LineChart {
    let twin = r.twin_track();
    let series = paired_series(
        r,
        &[Track::Network, twin],
        (&|t| format!("{} ‖∂f/∂x‖", t.name()), &Column::InputGradNorm),
        (
            &|t| format!("{} ‖∂f_t/∂x − ∂f_0/∂x‖", t.name()),
            &Column::InputGradChange,
        ),
    );
    LineChart::new(
        format!(
            "{}: input sensitivity (mean over up to 32 test points)",
            r.name
        ),
        STEP,
        "input-Jacobian norm ‖·‖_F",
    )
    .with_series(series)
    .mark_coinciding(COINCIDE_RTOL)
}

/// Every figure of a run as `(file stem, figure)`. A run without steps draws no curves over
/// training, only the functions, spectra and kernels at t = 0.
pub fn figures(r: &RunRecord) -> Vec<(String, Plot)> {
    if r.checkpoints.len() < 2 {
        let mut out = vec![
            ("predictions".to_string(), Plot::Line(predictions_chart(r))),
            ("spectrum".into(), Plot::Line(spectrum_chart(r))),
            ("kernels".into(), kernels_plot(r)),
        ];
        if r.data.classes.is_some() {
            out.push(("confusion".into(), confusion_plot(r)));
        }
        return out;
    }
    let mut out: Vec<(String, Plot)> = vec![
        ("loss".into(), Plot::Line(loss_chart(r))),
        ("divergence".into(), divergence_plot(r)),
        (
            "kernel_drift".into(),
            Plot::Grid {
                title: format!("{}: how the empirical NTK moves", r.name),
                cols: 2,
                charts: vec![kernel_drift_chart(r), kernel_alignment_chart(r)],
            },
        ),
        ("sharpness".into(), Plot::Line(sharpness_chart(r))),
        ("param_drift".into(), Plot::Line(param_drift_chart(r))),
        ("predictions".into(), Plot::Line(predictions_chart(r))),
        ("spectrum".into(), Plot::Line(spectrum_chart(r))),
        ("kernels".into(), kernels_plot(r)),
        ("sensitivity".into(), Plot::Line(sensitivity_chart(r))),
    ];
    if r.data.classes.is_some() {
        out.push(("accuracy".into(), Plot::Line(accuracy_chart(r))));
        out.push(("confusion".into(), confusion_plot(r)));
    }
    if let Some(f) = super::ensemble_charts::ensemble_plot(r) {
        out.push(("ensemble".into(), f));
    }
    out
}
