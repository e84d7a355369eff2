//! The figures of one run, each built from the record (series are read through the column
//! registry, [`crate::record::columns`]).

use plotters::prelude::*;

use super::{
    paired_series, track_color, ColorScale, HeatMap, LineChart, Marker, Plot, Series, Stroke,
    PALETTE,
};
use crate::record::columns::{Column, Split};
use crate::record::{RunRecord, Track};

/// Relative difference below which two curves count as the same line.
pub const COINCIDE_RTOL: f64 = 1e-9;

/// The x axis of every training-time chart.
const STEP: &str = "SGD step";

/// The loss every track is measured by: half-MSE, or for a run trained with cross-entropy the
/// softmax cross-entropy of each track's outputs read as logits (in bits per character for text,
/// nats otherwise), which is what that run minimises.
fn loss_chart(r: &RunRecord) -> LineChart {
    let cross_entropy = r.loss == crate::dynamics::Loss::CrossEntropy;
    let text = r.data.text.is_some();
    let (column, scale, y_label): (fn(Track, Split) -> Column, f64, &str) =
        match (cross_entropy, text) {
            (true, true) => (
                Column::Xent,
                1.0 / std::f64::consts::LN_2,
                "cross-entropy (bits per character)",
            ),
            (true, false) => (Column::Xent, 1.0, "softmax cross-entropy (nats)"),
            _ => (Column::Loss, 1.0, "loss ½·mean over entries of (f − y)²"),
        };
    let of = |t: Track, split: Split| -> Vec<(f64, f64)> {
        column(t, split)
            .series(r)
            .into_iter()
            .map(|(x, y)| (x, y * scale))
            .collect()
    };
    let mut series = Vec::new();
    for &t in &r.tracks {
        let train = of(t, Split::Train);
        if train.is_empty() {
            continue;
        }
        series.push(Series::line(
            format!("{} train", t.name()),
            train,
            track_color(t),
        ));
        let test = of(t, Split::Test);
        if !test.is_empty() {
            series.push(Series::line(format!("{} test", t.name()), test, track_color(t)).dashed());
        }
    }
    let what = if cross_entropy {
        "cross-entropy of every track (outputs read as logits)"
    } else {
        "loss of every track"
    };
    LineChart::new(format!("{}: {what}", r.name), STEP, y_label)
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
                "× on the bottom edge: values below the f64 round-off level 1e-12·RMS(y)",
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

/// Layers drawn each in its own colour and legend entry up to this many; beyond, the first
/// two and the last two, and the layers between in grey under one entry.
const MAX_LAYER_ENTRIES: usize = 5;

/// Colour and legend label of each of `n` layers' curves (see [`MAX_LAYER_ENTRIES`]); `what`
/// names the curve after "layer l".
fn layer_looks(n: usize, what: &str) -> Vec<(RGBColor, String)> {
    (0..n)
        .map(|l| {
            if n <= MAX_LAYER_ENTRIES || l < 2 || l + 2 >= n {
                (PALETTE[l % PALETTE.len()], format!("layer {l}{what}"))
            } else if l == 2 {
                (
                    RGBColor(170, 170, 170),
                    format!("layers 2–{}{what} (grey)", n - 3),
                )
            } else {
                (RGBColor(170, 170, 170), String::new())
            }
        })
        .collect()
}

fn kernel_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![
        Series::line(
            "relative NTK drift ‖Θt−Θ0‖/‖Θ0‖",
            Column::NtkRelDrift.series(r),
            BLACK,
        ),
        Series::line(
            "kernel distance 1−cos(Θt,Θ0) (dotted)",
            Column::NtkKernelDistance.series(r),
            RGBColor(127, 127, 127),
        )
        .dotted(),
    ];
    for (l, (color, label)) in layer_looks(r.n_layers, "'s term").into_iter().enumerate() {
        series.push(Series::line(
            label,
            Column::NtkRelDriftLayer(l).series(r),
            color,
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

/// Relative difference below which the spectral-norm change of a layer's weights counts as its
/// Frobenius change: they are equal when W0 and ΔW have rank one (a layer with one input or one
/// output), up to the power iteration's tolerance.
const SAME_NORM_RTOL: f64 = 1e-6;

/// Whether every point of `b` lies on `a` (same x, y within `rtol` relative); false when `b`
/// has no finite point.
fn sampled_from(a: &[(f64, f64)], b: &[(f64, f64)], rtol: f64) -> bool {
    let finite: Vec<&(f64, f64)> = b.iter().filter(|p| p.1.is_finite()).collect();
    !finite.is_empty()
        && finite.iter().all(|q| {
            a.iter()
                .any(|p| p.0 == q.0 && (p.1 - q.1).abs() <= rtol * p.1.abs().max(1e-300))
        })
}

/// Relative parameter change: all parameters, and per layer its weights (solid, in the layer's
/// colour), biases (dotted) and the spectral-norm change of its weights (rings), with one legend
/// entry per layer and one per style.
fn param_drift_chart(r: &RunRecord) -> LineChart {
    let mut series = vec![Series::line(
        "all parameters ‖θt−θ0‖/‖θ0‖",
        Column::ParamRelChange.series(r),
        BLACK,
    )];
    let mut has_bias = false;
    for (l, (color, label)) in layer_looks(r.n_layers, "").into_iter().enumerate() {
        let weights = Column::WeightRelChangeLayer(l).series(r);
        let spectral = Column::WeightSpectralChangeLayer(l).series(r);
        let same = !label.is_empty() && sampled_from(&weights, &spectral, SAME_NORM_RTOL);
        let label = if same {
            format!("{label} (rank one, so ‖·‖₂ = ‖·‖_F)")
        } else {
            label
        };
        series.push(Series::line(label, weights, color));
        let bias = Column::BiasRelChangeLayer(l).series(r);
        if bias.iter().any(|p| p.1.is_finite()) {
            has_bias = true;
            series.push(Series::line("", bias, color).dotted());
        }
        series.push(Series::line("", spectral, color).markers_of(Marker::Ring));
    }
    let grey = RGBColor(90, 90, 90);
    series.push(Series::key(
        "solid: weights ‖ΔW‖_F/‖W0‖_F",
        grey,
        Stroke::Solid,
    ));
    if has_bias {
        series.push(Series::key(
            "dotted: biases ‖Δb‖/‖b0‖",
            grey,
            Stroke::Dotted,
        ));
    }
    series.push(
        Series::key(
            "rings: weights ‖ΔW‖₂/‖W0‖₂ (spectral)",
            grey,
            Stroke::Markers,
        )
        .markers_of(Marker::Ring),
    );
    LineChart::new(
        format!("{}: relative parameter change", r.name),
        STEP,
        "relative change since initialisation",
    )
    .log_y()
    .with_series(series)
}

/// The predictions figure: the learned functions over a 1-D test grid; for classification each
/// approximation's outputs against the network's (y = x marked); otherwise every track's
/// predictions against the targets (y = x marked).
fn predictions_plot(r: &RunRecord) -> Plot {
    if r.data.input_dim == 1 && r.data.n_outputs == 1 && !r.data.x_test.is_empty() {
        Plot::Line(functions_chart(r))
    } else if r.data.classes.is_some() && r.outputs.len() > 1 {
        network_vs_approximations_plot(r)
    } else {
        Plot::Line(predicted_vs_target_chart(r))
    }
}

/// Every track's function over the 1-D test inputs, with the targets and the training points.
fn functions_chart(r: &RunRecord) -> LineChart {
    {
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
    }
}

/// At most this many points in a scatter (a deterministic stride through them otherwise).
const MAX_SCATTER_POINTS: usize = 4000;

/// The split a scatter shows (test when there are test points) and its points' stride.
fn scatter_split(r: &RunRecord) -> (bool, &'static str, usize) {
    let test = !r.data.x_test.is_empty();
    let n = if test {
        r.data.y_test.len()
    } else {
        r.data.y_train.len()
    };
    (
        test,
        if test { "test" } else { "train" },
        n.div_ceil(MAX_SCATTER_POINTS).max(1),
    )
}

/// Says which points a scatter shows.
fn sample_note(n: usize, stride: usize) -> String {
    if stride > 1 {
        let suffix = match (stride % 10, stride % 100) {
            (1, r) if r != 11 => "st",
            (2, r) if r != 12 => "nd",
            (3, r) if r != 13 => "rd",
            _ => "th",
        };
        format!("every {stride}{suffix} of {n} outputs")
    } else {
        format!("all {n} outputs")
    }
}

/// The y = x line over the range of a scatter's points.
fn diagonal(points: &[(f64, f64)]) -> Series {
    let (lo, hi) = points
        .iter()
        .flat_map(|p| [p.0, p.1])
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    Series::line("y = x", vec![(lo, lo), (hi, hi)], BLACK)
        .dotted()
        .computed()
}

/// Regression with several inputs or outputs: every track's predictions against the targets.
fn predicted_vs_target_chart(r: &RunRecord) -> LineChart {
    let (test, split, stride) = scatter_split(r);
    let y = if test {
        &r.data.y_test
    } else {
        &r.data.y_train
    };
    // The network last, so that it is drawn over the approximations.
    let mut series: Vec<Series> = r
        .outputs
        .iter()
        .filter(|o| o.track != Track::Network)
        .chain(r.outputs.iter().filter(|o| o.track == Track::Network))
        .map(|o| {
            let p = if test { &o.test } else { &o.train };
            Series::line(
                o.track.name(),
                y.iter()
                    .zip(p)
                    .step_by(stride)
                    .map(|(&a, &b)| (a, b))
                    .collect(),
                track_color(o.track),
            )
            .markers()
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    series.push(diagonal(&all));
    LineChart::new(
        format!(
            "{}: predicted vs target ({split} points, {})",
            r.name,
            sample_note(y.len(), stride)
        ),
        "target value",
        "predicted value",
    )
    .with_series(series)
    .mark_coinciding(COINCIDE_RTOL)
}

/// Classification: one panel per approximation, its outputs against the network's on the same
/// points (every class's output), with y = x: the scatter a one-hot target would flatten into
/// two strips.
fn network_vs_approximations_plot(r: &RunRecord) -> Plot {
    let (test, split, stride) = scatter_split(r);
    let Some(net) = r.outputs.iter().find(|o| o.track == Track::Network) else {
        return Plot::Line(predicted_vs_target_chart(r));
    };
    let net_out = if test { &net.test } else { &net.train };
    // Approximations whose outputs coincide share one panel, named "a ≡ b".
    let groups = group_alike(
        r.outputs
            .iter()
            .filter(|o| o.track != Track::Network)
            .map(|o| (o.track, if test { &o.test[..] } else { &o.train[..] })),
        |a, b| same_outputs(a, b),
    );
    let charts = groups
        .into_iter()
        .map(|(names, track, p)| {
            let points: Vec<(f64, f64)> = net_out
                .iter()
                .zip(p)
                .step_by(stride)
                .map(|(&a, &b)| (a, b))
                .collect();
            let diag = diagonal(&points);
            let name = names.join(" ≡ ");
            LineChart::new(
                format!("{name} against the network"),
                "network output (every class's output)",
                format!("{name} output"),
            )
            .with_series(vec![
                Series::line(format!("{split} outputs"), points, track_color(track)).markers(),
                diag,
            ])
        })
        .collect::<Vec<_>>();
    Plot::Grid {
        title: format!(
            "{}: each approximation's outputs against the network's at the final step ({split} points, {})",
            r.name,
            sample_note(net_out.len(), stride)
        ),
        cols: charts.len().clamp(1, 2),
        charts,
    }
}

/// Tracks grouped by what `alike` says is the same (in first-seen order): each group's track
/// names (for a "a ≡ b" title), its first track and that track's value.
fn group_alike<T>(
    items: impl Iterator<Item = (Track, T)>,
    alike: impl Fn(&T, &T) -> bool,
) -> Vec<(Vec<&'static str>, Track, T)> {
    let mut groups: Vec<(Vec<&'static str>, Track, T)> = Vec::new();
    for (track, value) in items {
        match groups.iter_mut().find(|g| alike(&g.2, &value)) {
            Some(g) => g.0.push(track.name()),
            None => groups.push((vec![track.name()], track, value)),
        }
    }
    groups
}

/// Whether two tracks' outputs are the same line: every difference within [`COINCIDE_RTOL`]
/// of the largest magnitude of either.
fn same_outputs(a: &[f64], b: &[f64]) -> bool {
    let scale = a.iter().chain(b).fold(0.0f64, |m, v| m.max(v.abs()));
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= COINCIDE_RTOL * scale)
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
    // A symmetric eigensolver's eigenvalues carry an absolute error up to about N·ε·‖Θ‖₂
    // (backward stability, Weyl's inequality; ε the f64 unit round-off): below that level an
    // eigenvalue is round-off, and the axis stops there.
    let top = [&r.spectrum_init, &r.spectrum_final, &r.spectrum_analytic]
        .iter()
        .flat_map(|v| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let n = r.spectrum_init.len().max(r.spectrum_analytic.len()).max(1) as f64;
    let floor = n * f64::EPSILON * top;
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
    .with_floor(
        floor,
        format!("× on the bottom edge: eigenvalues below N·ε·λ_max = {floor:.1e} (round-off)"),
    )
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
        ),
    ])
    .with_hline(
        lambda_edge,
        format!(
            "2(1+μ)·N·K/η: full-kernel modes above it are unstable (η = {:.4})",
            r.learning_rate
        ),
    )
}

/// Sharpness against step: `η·λ_max(Θ_t)/(2(1+μ)NK)` on the full training kernel, on a linear
/// axis from 0 that always shows the edge of stability at 1.
fn sharpness_chart(r: &RunRecord) -> LineChart {
    let ratio = Column::SharpnessRatio.series(r);
    let largest = ratio
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite() && v.abs() < 1e300)
        .fold(0.0f64, f64::max);
    let top = (1.1 * largest).max(1.2);
    LineChart::new(
        format!("{}: sharpness (full training kernel)", r.name),
        STEP,
        "sharpness ratio η·λ_max(Θt)/(2(1+μ)·N·K)",
    )
    .with_y_range(0.0, top)
    .with_series(vec![Series::line("sharpness ratio", ratio, BLACK)])
    .with_hline(
        1.0,
        "edge of stability (1): gradient descent on the linearized model diverges above it",
    )
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
    // Kernels with no negative entry on a sequential scale, differences (and kernels with
    // negative entries) on a diverging one centred at 0.
    let nonnegative = r
        .probe_ntk_init
        .iter()
        .chain(&r.probe_ntk_final)
        .all(|v| *v >= 0.0);
    let kernel_scale = |max: f64| {
        if nonnegative {
            ColorScale::Sequential { max }
        } else {
            ColorScale::Diverging { max }
        }
    };
    let map = |title: &str, values: Vec<f64>, scale: ColorScale, bar: &str| HeatMap {
        title: title.into(),
        n_rows: p,
        n_cols: p,
        values,
        scale,
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
            map(
                "Θ0",
                r.probe_ntk_init.clone(),
                kernel_scale(shared),
                "Θ0(x_i, x_j)",
            ),
            map(
                "Θ final",
                r.probe_ntk_final.clone(),
                kernel_scale(shared),
                "Θ_final(x_i, x_j)",
            ),
            map(
                "Θ final − Θ0",
                diff.clone(),
                ColorScale::Diverging {
                    max: max_abs(&diff),
                },
                "difference (own scale)",
            ),
        ],
    }
}

/// Train, validation and test accuracy of every track against step.
fn accuracy_chart(r: &RunRecord) -> LineChart {
    // With centred outputs every track outputs exactly 0 at step 0: the argmax there is a
    // tie-break, not a prediction, and is left out.
    let of = |t: Track, split: Split| -> Vec<(f64, f64)> {
        let mut points = Column::Accuracy(t, split).series(r);
        if r.center_outputs {
            points.retain(|&(step, _)| step > 0.0);
        }
        points
    };
    let mut series = Vec::new();
    for &t in &r.tracks {
        series.push(Series::line(
            format!("{} train", t.name()),
            of(t, Split::Train),
            track_color(t),
        ));
        if !r.data.y_test.is_empty() {
            series.push(
                Series::line(
                    format!("{} test", t.name()),
                    of(t, Split::Test),
                    track_color(t),
                )
                .dashed(),
            );
        }
    }
    let x_label = if r.center_outputs {
        "SGD step (step 0 left out: centred outputs are all 0 there, so an argmax only breaks ties)"
    } else {
        STEP
    };
    LineChart::new(
        format!("{}: classification accuracy", r.name),
        x_label,
        "accuracy (fraction of points whose argmax is the true class)",
    )
    .with_series(series)
    .mark_coinciding(COINCIDE_RTOL)
}

/// Classes up to which a confusion matrix prints its counts and fractions in the cells; with
/// more, the cells are too small to read and the colour (on a log scale from 10⁻³, so that
/// rare confusions show) carries the fraction alone.
const MAX_CONFUSION_CELL_TEXT_CLASSES: usize = 15;

/// A class name as a label: whitespace and control characters written visibly (a space as ␣,
/// a newline as \n, a tab as \t).
fn visible_label(c: &str) -> String {
    c.chars()
        .map(|ch| match ch {
            ' ' => "␣".to_string(),
            '\n' => "\\n".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("U+{:04X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Test (or train) confusion matrices of every track at the final step: counts and row
/// fractions in the cells up to [`MAX_CONFUSION_CELL_TEXT_CLASSES`] classes, class names
/// (whitespace made visible) on both axes.
fn confusion_plot(r: &RunRecord) -> Plot {
    let k = r.data.n_outputs;
    let test = !r.data.y_test.is_empty();
    let targets = if test {
        &r.data.y_test
    } else {
        &r.data.y_train
    };
    let classes: Vec<String> = r
        .data
        .classes
        .clone()
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect())
        .iter()
        .map(|c| match (r.data.text.is_some(), c.as_str()) {
            // Text data name the comma class "comma" (a CSV-safe name); a label shows the
            // character.
            (true, "comma") => ",".to_string(),
            _ => visible_label(c),
        })
        .collect();
    // Tracks with the same confusion matrix share one, named "a ≡ b".
    let groups = group_alike(
        r.outputs.iter().map(|o| {
            let outputs = if test { &o.test } else { &o.train };
            (o.track, crate::metrics::confusion(outputs, targets, k))
        }),
        |a, b| a == b,
    );
    let maps = groups
        .into_iter()
        .map(|(names, _, m)| {
            let row_total: Vec<usize> = m.iter().map(|row| row.iter().sum()).collect();
            let frac = |i: usize, j: usize| m[i][j] as f64 / row_total[i].max(1) as f64;
            let correct: usize = (0..k).map(|i| m[i][i]).sum();
            let total: usize = row_total.iter().sum();
            let many = k > MAX_CONFUSION_CELL_TEXT_CLASSES;
            HeatMap {
                title: format!(
                    "{} ({:.1} % correct)",
                    names.join(" ≡ "),
                    100.0 * correct as f64 / total.max(1) as f64
                ),
                n_rows: k,
                n_cols: k,
                values: (0..k * k).map(|c| frac(c / k, c % k)).collect(),
                scale: if many {
                    ColorScale::Log {
                        min: 1e-3,
                        max: 1.0,
                    }
                } else {
                    ColorScale::Sequential { max: 1.0 }
                },
                row_labels: Some(classes.clone()),
                col_labels: Some(classes.clone()),
                cell_text: (!many).then(|| {
                    (0..k * k)
                        .map(|c| {
                            let (i, j) = (c / k, c % k);
                            (m[i][j].to_string(), format!("{:.2}", frac(i, j)))
                        })
                        .collect()
                }),
                x_desc: "predicted class".into(),
                y_desc: "true class".into(),
                colorbar_label: "fraction of the true class (row)".into(),
            }
        })
        .collect();
    Plot::Heat {
        title: format!(
            "{}: confusion matrices ({} points; {})",
            r.name,
            if test { "test" } else { "train" },
            if k > MAX_CONFUSION_CELL_TEXT_CLASSES {
                "colour: fraction of the true class, log scale"
            } else {
                "count and row fraction per cell"
            }
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
            ("predictions".to_string(), predictions_plot(r)),
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
        ("predictions".into(), predictions_plot(r)),
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
