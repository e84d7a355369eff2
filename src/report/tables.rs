//! The data files of a run, as bytes: `metrics.csv`, `predictions.csv`, `summary.json` and the
//! `.npy` kernels. Columns come from the registry in [`crate::record::columns`].
//!
//! `metrics.csv` columns (stable; empty cell = not measured at that checkpoint, `nan`/`inf` =
//! a non-finite value, flagged in the report):
//! - `step`, `time` (= learning_rate × step);
//! - `<track>_train_loss`, `<track>_test_loss` for track in `network, linearized,
//!   kernel_analytic, kernel_empirical` (the kernel tracks when configured);
//! - `rmse_<a>_<b>_train`, `rmse_<a>_<b>_test` for every pair of tracks (prediction divergence);
//! - `ntk_rel_drift`, `ntk_kernel_distance`, `ntk_lambda_max`, `ntk_rel_drift_layer<l>`
//!   (l = 0 … depth), `param_rel_change`, `param_rel_change_layer<l>` at kernel checkpoints;
//! - `network_input_grad_norm`, `linearized_input_grad_norm`: mean ‖∂f/∂x‖_F on up to 32 test
//!   points;
//! - for one-hot classification: `<track>_{train,test}_accuracy`, `<track>_{train,test}_xent`,
//!   `agreement_<a>_<b>`.
//!
//! `predictions.csv`: `split, index, output, <input columns>, target, network, linearized,
//! kernel_analytic, kernel_empirical` at the final step.

use crate::record::columns::{metrics_columns, Column, Split};
use crate::record::{RunRecord, Track};
use crate::report::npy;

/// Formats a float for CSV: shortest round-trip representation, `nan`/`inf`/`-inf`.
pub fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(fmt_f64).unwrap_or_default()
}

/// `metrics.csv` text: one row per checkpoint, the columns of [`metrics_columns`].
pub fn metrics_csv(r: &RunRecord) -> String {
    let cols = metrics_columns(r);
    let mut out = cols.iter().map(Column::name).collect::<Vec<_>>().join(",") + "\n";
    for c in &r.checkpoints {
        let row: Vec<String> = cols.iter().map(|col| opt(col.read(c))).collect();
        out += &(row.join(",") + "\n");
    }
    out
}

pub use crate::record::MAX_INPUT_COLUMNS;

/// `predictions.csv` text.
pub fn predictions_csv(r: &RunRecord) -> String {
    let d = r.data.input_dim;
    let k = r.data.n_outputs;
    // Inputs are written only when there are at most 64 of them (one-hot text contexts have hundreds).
    let with_inputs = d <= MAX_INPUT_COLUMNS;
    let mut cols: Vec<String> = vec!["split".into(), "index".into(), "output".into()];
    if with_inputs {
        cols.extend(r.data.feature_names.iter().cloned());
    }
    cols.push("target".into());
    cols.extend(r.tracks.iter().map(|t| t.name().to_string()));
    let mut out = cols.join(",") + "\n";
    for (split, x, y, part) in [
        ("train", &r.data.x_train, &r.data.y_train, Split::Train),
        ("val", &r.data.x_val, &r.data.y_val, Split::Val),
        ("test", &r.data.x_test, &r.data.y_test, Split::Test),
    ] {
        let n = x.len() / d.max(1);
        for i in 0..n {
            for o in 0..k {
                let mut row = vec![split.to_string(), i.to_string(), o.to_string()];
                if with_inputs {
                    row.extend(x[i * d..(i + 1) * d].iter().map(|&v| fmt_f64(v)));
                }
                row.push(fmt_f64(y[i * k + o]));
                for t in &r.outputs {
                    let v = match part {
                        Split::Train => &t.train,
                        Split::Val => &t.val,
                        Split::Test => &t.test,
                    };
                    row.push(fmt_f64(v[i * k + o]));
                }
                out += &(row.join(",") + "\n");
            }
        }
    }
    out
}

/// `ensemble.csv` text (with `[ensemble]`): one row per (split, index, output) of the training
/// and test points at the final step, with each track's mean and unbiased variance over the
/// members and each Gaussian process's mean and variance.
pub fn ensemble_csv(r: &RunRecord) -> Option<String> {
    use crate::dynamics::gp::GpKernel;
    let e = r.ensemble.as_ref()?;
    let (d, k) = (r.data.input_dim, r.data.n_outputs);
    let with_inputs = d <= MAX_INPUT_COLUMNS;
    let tracks = [Track::Network, Track::Linearized];
    let gps = [GpKernel::Ntk, GpKernel::Nngp];
    let mut cols: Vec<String> = vec!["split".into(), "index".into(), "output".into()];
    if with_inputs {
        cols.extend(r.data.feature_names.iter().cloned());
    }
    cols.push("target".into());
    for t in tracks {
        cols.extend([format!("{}_mean", t.name()), format!("{}_var", t.name())]);
    }
    for g in gps {
        cols.extend([
            format!("{}_gp_mean", g.name()),
            format!("{}_gp_var", g.name()),
        ]);
    }
    let mut out = cols.join(",") + "\n";
    let value = |v: Option<&Vec<f64>>, i: usize| {
        fmt_f64(v.and_then(|v| v.get(i)).copied().unwrap_or(f64::NAN))
    };
    for (split, x, y, o) in [
        ("train", &r.data.x_train, &r.data.y_train, &e.train),
        ("test", &r.data.x_test, &r.data.y_test, &e.test),
    ] {
        for i in 0..x.len() / d.max(1) {
            for j in 0..k {
                let a = i * k + j;
                let mut row = vec![split.to_string(), i.to_string(), j.to_string()];
                if with_inputs {
                    row.extend(x[i * d..(i + 1) * d].iter().map(|&v| fmt_f64(v)));
                }
                row.push(fmt_f64(y[a]));
                for t in tracks {
                    row.extend([value(o.mean.get(t), a), value(o.var.get(t), a)]);
                }
                for g in gps {
                    row.extend([value(o.gp_mean.get(g), a), value(o.gp_var.get(g), a)]);
                }
                out += &(row.join(",") + "\n");
            }
        }
    }
    Some(out)
}

/// A final figure for JSON (`null` where not measured).
fn final_json(r: &RunRecord, c: Column) -> serde_json::Value {
    c.final_value(r)
        .map(json_f64)
        .unwrap_or(serde_json::Value::Null)
}

/// Final figures as JSON (`summary.json`).
pub fn summary_json(r: &RunRecord) -> serde_json::Value {
    let last = r.last();
    let mut summary = serde_json::json!({
        "name": r.name,
        "seed": r.seed,
        "status": r.status,
        "final_step": last.map(|c| c.step),
        "learning_rate": r.learning_rate,
        "critical_learning_rate": json_f64(r.critical_learning_rate),
        "n_params": r.n_params,
        "n_train": r.n_train_all,
        "n_test": r.n_test(),
        "n_outputs": r.data.n_outputs,
        "kernel_form": r.kernel_form,
        "tracks": track_figures_json(r),
        "divergence": divergence_json(r),
        "kernel": kernel_json(r),
        "phase": phase_json(r),
        "init_ntk_vs_analytic": json_f64(r.init_ntk_vs_analytic),
        "loss": r.loss,
        "text_samples": r.samples,
        "classification": classification_json(r),
        "kernel_solutions": r.kernel_solutions.iter().map(|k| kernel_solution_json(k, k.solver.as_ref().and_then(|_| infinite_time_accuracy(r, k)))).collect::<Vec<_>>(),
        "timings_s": r.timings.iter().map(|t| (t.phase.clone(), serde_json::json!(t.seconds))).collect::<serde_json::Map<_, _>>(),
    });
    if let (true, serde_json::Value::Object(m)) = (r.n_train() < r.n_train_all, &mut summary) {
        m.insert("kernel_train_subset".into(), serde_json::json!(r.n_train()));
    }
    if let (Some(e), serde_json::Value::Object(m)) = (&r.ensemble, &mut summary) {
        m.insert("ensemble".into(), serde_json::json!({
            "members": e.members,
            "diverged_members": e.diverged_members.iter().map(|(t, n)| (t.name().to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
            "gaps_vs_ntk_gp": e.gaps.iter().map(|g| (g.track.name().to_string(), serde_json::json!(g))).collect::<serde_json::Map<_, _>>(),
            "calibration_test": e.calibration.iter().map(|c| (c.source.name(), serde_json::json!({"coverage95": json_f64(c.coverage95), "nll": json_f64(c.nll)}))).collect::<serde_json::Map<_, _>>(),
        }));
    }
    summary
}

/// Per track: its final losses and where it diverged.
fn track_figures_json(r: &RunRecord) -> serde_json::Map<String, serde_json::Value> {
    r.tracks
        .iter()
        .map(|&t| {
            (
                t.name().to_string(),
                serde_json::json!({
                    "train_loss": final_json(r, Column::Loss(t, Split::Train)),
                    "test_loss": final_json(r, Column::Loss(t, Split::Test)),
                    "diverged_at_step": r.outputs_of(t).and_then(|o| o.diverged_at_step),
                }),
            )
        })
        .collect()
}

/// Per pair of tracks: the final RMSE between them.
fn divergence_json(r: &RunRecord) -> serde_json::Map<String, serde_json::Value> {
    r.pairs
        .iter()
        .map(|&(a, b)| {
            (
                format!("rmse_{}_{}", a.name(), b.name()),
                serde_json::json!({
                    "train": final_json(r, Column::Rmse((a, b), Split::Train)),
                    "test": final_json(r, Column::Rmse((a, b), Split::Test)),
                }),
            )
        })
        .collect()
}

/// A list of numbers (non-finite ones as null).
fn json_list(v: &[f64]) -> Vec<serde_json::Value> {
    v.iter().map(|&x| json_f64(x)).collect()
}

/// The kernel figures of the last kernel checkpoint.
fn kernel_json(r: &RunRecord) -> Option<serde_json::Value> {
    let list = json_list;
    r.last_kernel().map(|k| {
        serde_json::json!({
            "ntk_rel_drift": json_f64(k.ntk_rel_drift),
            "ntk_kernel_distance": json_f64(k.ntk_kernel_distance),
            "ntk_lambda_max": json_f64(k.ntk_lambda_max),
            "ntk_lambda_max_full": json_f64(k.ntk_lambda_max_full),
            "sharpness_ratio": json_f64(k.sharpness_ratio),
            "ntk_rel_drift_per_layer": list(&k.ntk_rel_drift_per_layer),
            "param_rel_change": json_f64(k.param_rel_change),
            "param_rel_change_per_layer": list(&k.param_rel_change_per_layer),
            "weight_rel_change_per_layer": list(&k.weight_rel_change_per_layer),
            "bias_rel_change_per_layer": list(&k.bias_rel_change_per_layer),
            "weight_spectral_change_per_layer": list(&k.weight_spectral_change_per_layer),
        })
    })
}

/// The training regime's label and the evidence it was read from.
fn phase_json(r: &RunRecord) -> serde_json::Value {
    let evidence = r.phase_evidence();
    serde_json::json!({
        "label": evidence.classify().name(),
        "lr_over_critical": json_f64(evidence.lr_ratio),
        "final_sharpness_ratio": json_f64(evidence.final_sharpness()),
        "late_sharpness_ratios": json_list(evidence.late_sharpness()),
        "edge_band": [crate::metrics::EDGE_BAND.0, crate::metrics::EDGE_BAND.1],
        "final_ntk_rel_drift": json_f64(evidence.final_drift),
        "loss_spike": evidence.spiked(),
    })
}

/// A track's final test cross-entropy in bits (per character for text).
fn test_bits(r: &RunRecord, t: crate::record::Track) -> serde_json::Value {
    Column::Xent(t, Split::Test)
        .final_value(r)
        .map(|x| json_f64(x / std::f64::consts::LN_2))
        .unwrap_or(serde_json::Value::Null)
}

/// The classification figures of a run on class data (with the text figures of a text run).
fn classification_json(r: &RunRecord) -> Option<serde_json::Value> {
    let per_track = |f: &dyn Fn(crate::record::Track) -> Column| {
        r.tracks
            .iter()
            .map(|&t| (t.name().to_string(), final_json(r, f(t))))
            .collect::<serde_json::Map<_, _>>()
    };
    let bits = |t| test_bits(r, t);
    let classification = r.last().and_then(|c| c.classification.as_ref()).map(|_| {
        serde_json::json!({
            "classes": r.data.classes,
            "train_accuracy": per_track(&|t| Column::Accuracy(t, Split::Train)),
            "test_accuracy": per_track(&|t| Column::Accuracy(t, Split::Test)),
            "test_cross_entropy_bits": r.tracks.iter().map(|&t| (t.name().to_string(), bits(t))).collect::<serde_json::Map<_, _>>(),
            "val_accuracy": per_track(&|t| Column::Accuracy(t, Split::Val)),
            "early_stopped_test_accuracy": r.tracks.iter().map(|&t| {
                let v = crate::record::columns::Figure::EarlyStoppedTestAccuracy(t).read(r);
                (t.name().to_string(), if r.data.y_val.is_empty() { serde_json::Value::Null } else { json_f64(v) })
            }).collect::<serde_json::Map<_, _>>(),
            "agreement": r.pairs.iter().map(|&(a, b)| (format!("{}_{}", a.name(), b.name()), final_json(r, Column::Agreement((a, b))))).collect::<serde_json::Map<_, _>>(),
        })
    });
    match (classification, r.ngram_baselines.is_empty()) {
        (Some(serde_json::Value::Object(mut m)), false) => {
            add_text_json(r, &mut m);
            Some(serde_json::Value::Object(m))
        }
        (c, _) => c,
    }
}

/// A text run's figures: bits per character, the n-gram baselines, the paired comparisons,
/// the early-stopped figures and the flags.
fn add_text_json(r: &RunRecord, m: &mut serde_json::Map<String, serde_json::Value>) {
    m.insert(
        "test_bits_per_char".into(),
        serde_json::json!(r
            .tracks
            .iter()
            .map(|&t| (t.name().to_string(), test_bits(r, t)))
            .collect::<serde_json::Map<_, _>>()),
    );
    m.insert(
        "ngram_baselines".into(),
        serde_json::json!(r.ngram_baselines),
    );
    if let Some(paired) = paired_json(r) {
        m.insert("paired_vs_network".into(), paired);
    }
    if !r.data.y_val.is_empty() {
        let ln2 = std::f64::consts::LN_2;
        m.insert(
            "early_stopped".into(),
            r.tracks
                .iter()
                .map(|&t| {
                    let v = r.early_stop(t).map_or(serde_json::Value::Null, |e| {
                        serde_json::json!({
                            "step": e.step,
                            "temperature": json_f64(e.temperature),
                            "val_bits_per_char": json_f64(e.val_xent / ln2),
                            "test_bits_per_char": json_f64(e.test_xent / ln2),
                            "test_accuracy": json_f64(e.test_accuracy),
                        })
                    });
                    (t.name().to_string(), v)
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    m.insert(
        "flags".into(),
        serde_json::json!(crate::report::checks::text_flags(r)),
    );
}

/// Marks a non-finite value until [`plain_numbers`] replaces it by `null`.
const NON_FINITE: &str = "\u{0}non-finite:";

/// Test accuracy of a kernel track's t = ∞ solution (classification only).
pub fn infinite_time_accuracy(
    r: &RunRecord,
    k: &crate::record::KernelSolutionSummary,
) -> Option<f64> {
    let classes = r.data.classes.as_ref()?;
    crate::metrics::accuracy(&k.test_infinite_time, &r.data.y_test, classes.len())
}

/// One kernel track's closed-form figures (with its iterative solves when it had them; the
/// t = ∞ test accuracy is written for those, the eigendecomposition path's records keeping
/// their earlier fields).
fn kernel_solution_json(
    k: &crate::record::KernelSolutionSummary,
    accuracy: Option<f64>,
) -> serde_json::Value {
    match &k.solver {
        None => serde_json::json!({
            "track": k.track.name(),
            "lambda": k.lambda,
            "condition_number": json_f64(k.condition_number),
            "singular": k.condition_number.is_infinite(),
            "lambda_max": k.lambda_max,
            "test_loss_infinite_time": k.test_loss_infinite_time.map(json_f64),
        }),
        Some(s) => serde_json::json!({
            "track": k.track.name(),
            "lambda": k.lambda,
            "lambda_max_ritz": k.lambda_max,
            "test_loss_infinite_time": k.test_loss_infinite_time.map(json_f64),
            "test_accuracy_infinite_time": accuracy,
            "solver": {
                "storage": s.storage.name(),
                "tolerance": s.tolerance,
                "lanczos_vectors": s.report.lanczos.iterations,
                "lanczos_error_estimate": json_f64(s.report.lanczos.error_estimate),
                "lanczos_converged": s.report.lanczos.converged,
                "final_step_error_estimate_train": json_f64(s.final_step_error.0),
                "final_step_error_estimate_test": json_f64(s.final_step_error.1),
                "cg_iterations": s.report.cg.iterations,
                "cg_error_estimate": json_f64(s.report.cg.error_estimate),
                "cg_converged": s.report.cg.converged,
                "preconditioner_rank": s.report.preconditioner_rank,
            },
        }),
    }
}

/// A float for JSON: finite values are numbers; non-finite ones are marked and become `null`
/// (with their kind listed under `non_finite`) in [`plain_numbers`].
pub fn json_f64(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::json!(format!("{NON_FINITE}{}", fmt_f64(v)))
    }
}

/// Replaces every marked non-finite value by `null` and lists it (path → `nan`/`inf`/`-inf`)
/// under the top-level key `non_finite`, so that the file is plain data for programs.
pub fn plain_numbers(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(
        v: &mut serde_json::Value,
        path: &str,
        found: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        match v {
            serde_json::Value::String(s) if s.starts_with(NON_FINITE) => {
                found.insert(path.to_string(), serde_json::json!(&s[NON_FINITE.len()..]));
                *v = serde_json::Value::Null;
            }
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    walk(x, &format!("{path}.{k}"), found);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    walk(x, &format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = serde_json::Map::new();
    walk(&mut v, "", &mut found);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("non_finite".into(), serde_json::Value::Object(found));
    }
    v
}

/// The `.npy` kernel files of a record (relative path, bytes).
pub fn kernel_files(r: &RunRecord) -> Vec<(String, Vec<u8>)> {
    let k = &r.kernels;
    [
        ("kernels/analytic_ntk.npy", &k.analytic_ntk),
        ("kernels/analytic_nngp.npy", &k.analytic_nngp),
        (
            "kernels/analytic_ntk_test_train.npy",
            &k.analytic_ntk_test_train,
        ),
        ("kernels/empirical_ntk_init.npy", &k.empirical_ntk_init),
        ("kernels/empirical_ntk_final.npy", &k.empirical_ntk_final),
        (
            "kernels/empirical_ntk_test_train_init.npy",
            &k.empirical_ntk_test_train_init,
        ),
    ]
    .into_iter()
    .filter_map(|(name, m)| {
        m.as_ref()
            .map(|(v, s)| (name.to_string(), npy::encode_f64(v, s)))
    })
    .chain(
        k.ensemble_gp
            .iter()
            .chain(&k.checkpoints)
            .map(|(stem, (v, s))| (format!("kernels/{stem}.npy"), npy::encode_f64(v, s))),
    )
    .collect()
}

/// The data files of a run (relative path, bytes): config, metrics, predictions, summary, kernels.
/// `extra` adds top-level keys to `summary.json` (the report's checks and measurements);
/// `predictions.csv` only with `with_predictions`.
pub fn data_files(
    r: &RunRecord,
    extra: serde_json::Map<String, serde_json::Value>,
    with_predictions: bool,
) -> Vec<(String, Vec<u8>)> {
    let mut summary = summary_json(r);
    if let serde_json::Value::Object(m) = &mut summary {
        m.extend(extra);
    }
    let summary = plain_numbers(summary);
    let mut files = vec![
        (
            "config.toml".to_string(),
            r.config_toml.clone().into_bytes(),
        ),
        ("metrics.csv".to_string(), metrics_csv(r).into_bytes()),
        (
            "summary.json".to_string(),
            (serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n").into_bytes(),
        ),
    ];
    if with_predictions {
        files.insert(
            2,
            (
                "predictions.csv".to_string(),
                predictions_csv(r).into_bytes(),
            ),
        );
    }
    if let Some(csv) = ensemble_csv(r) {
        files.push(("ensemble.csv".to_string(), csv.into_bytes()));
    }
    if let Some((bytes, index)) = ensemble_members(r) {
        files.push(("ensemble_members.npy".to_string(), bytes));
        files.push(("ensemble_members.json".to_string(), index.into_bytes()));
    }
    if let Some(p) = &r.prediction_steps {
        let shape = [p.steps.len(), p.tracks.len(), p.n_points, p.n_outputs];
        files.push((
            "predictions_steps.npy".to_string(),
            npy::encode_f64(&p.values, &shape),
        ));
        let index = serde_json::json!({
            "shape": ["checkpoint", "track", "point", "output"],
            "sizes": shape,
            "steps": p.steps,
            "times": p.times,
            "tracks": p.tracks.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "points": {
                "train": [0, r.data.x_train.len() / r.data.input_dim.max(1)],
                "val": [r.data.x_train.len() / r.data.input_dim.max(1), (r.data.x_train.len() + r.data.x_val.len()) / r.data.input_dim.max(1)],
                "test": [(r.data.x_train.len() + r.data.x_val.len()) / r.data.input_dim.max(1), p.n_points],
            },
            "missing": "NaN where a track has no output at a checkpoint",
        });
        files.push((
            "predictions_steps.json".to_string(),
            (serde_json::to_string_pretty(&index).unwrap_or_default() + "\n").into_bytes(),
        ));
    }
    if let Some([init, fin]) = &r.parameters {
        for (name, arrays) in [("parameters_init.npz", init), ("parameters_final.npz", fin)] {
            // Written into memory: the archive cannot fail on I/O.
            if let Ok(bytes) = npy::encode_npz(arrays) {
                files.push((name.to_string(), bytes));
            }
        }
    }
    if let Some(csv) = kernel_alignment_csv(r) {
        files.push(("kernel_alignment.csv".to_string(), csv.into_bytes()));
    }
    if let Some(csv) = context_bits_csv(r) {
        files.push(("test_bits_per_context.csv".to_string(), csv.into_bytes()));
    }
    files.extend(kernel_files(r));
    files
}

/// `ensemble_members.npy` (shape `[tracks, members, n_test, K]`: each member's network and
/// twin outputs on the test points at the last checkpoint; NaN for a member without them) and
/// its index.
fn ensemble_members(r: &RunRecord) -> Option<(Vec<u8>, String)> {
    let e = r.ensemble.as_ref()?;
    let tracks: Vec<(Track, &Vec<Vec<f64>>)> = e.member_test.iter().collect();
    let width = tracks
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(Vec::len))
        .max()?;
    let k = r.data.n_outputs.max(1);
    let mut values = Vec::with_capacity(tracks.len() * e.members * width);
    for (_, rows) in &tracks {
        for m in 0..e.members {
            match rows.get(m) {
                Some(v) if v.len() == width => values.extend_from_slice(v),
                _ => values.extend(std::iter::repeat_n(f64::NAN, width)),
            }
        }
    }
    let shape = [tracks.len(), e.members, width / k, k];
    let index = serde_json::json!({
        "shape": ["track", "member", "test point", "output"],
        "sizes": shape,
        "tracks": tracks.iter().map(|(t, _)| t.name()).collect::<Vec<_>>(),
        "members": "in seed order (experiment.seed + m); rows of NaN at the end when fewer members have outputs at the last checkpoint (an interrupted run)",
    });
    Some((
        npy::encode_f64(&values, &shape),
        serde_json::to_string_pretty(&index).unwrap_or_default() + "\n",
    ))
}

/// `kernel_alignment.csv`: at every kernel checkpoint, the centred alignment of the network's
/// output-averaged empirical NTK on the probe set with the targets' kernel `y yᵀ` and with Θ0
/// there (None when no checkpoint has kernel figures).
pub fn kernel_alignment_csv(r: &RunRecord) -> Option<String> {
    let mut out = String::from("step,time,ntk_target_alignment,ntk_cka_init\n");
    let mut any = false;
    for c in &r.checkpoints {
        if let Some(k) = &c.kernel {
            any = true;
            out += &format!(
                "{},{},{},{}\n",
                c.step,
                fmt_f64(c.time),
                fmt_f64(k.ntk_target_alignment),
                fmt_f64(k.ntk_cka_init)
            );
        }
    }
    any.then_some(out)
}

/// `test_bits_per_context.csv`: one row per test context (in test order, the rows of
/// `predictions.csv`'s test split), `index` and each model's `−log₂ p(target)`: every track
/// early stopped at its fitted temperature, then `ngram1` … `ngram5`.
fn context_bits_csv(r: &RunRecord) -> Option<String> {
    let first = r.context_bits.first()?;
    let mut s = "index".to_string();
    for c in &r.context_bits {
        s += ",";
        s += &c.model;
    }
    s.push('\n');
    for i in 0..first.bits.len() {
        s += &i.to_string();
        for c in &r.context_bits {
            s += ",";
            s += &c.bits.get(i).map_or("nan".to_string(), |v| v.to_string());
        }
        s.push('\n');
    }
    Some(s)
}

fn paired_json(r: &RunRecord) -> Option<serde_json::Value> {
    let rows = r.paired_vs_network();
    if rows.is_empty() {
        return None;
    }
    Some(serde_json::Value::Object(
        rows.into_iter()
            .map(|(c, p)| {
                (
                    c.model.clone(),
                    serde_json::json!({
                        "context_chars": c.context_chars,
                        "mean_difference_bits": json_f64(p.mean_difference),
                        "ci95_bits": json_f64(p.ci95),
                        "n_contexts": p.n,
                    }),
                )
            })
            .collect(),
    ))
}
