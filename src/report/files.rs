//! All file IO of a run: the run directory, atomic writes, CSV/JSON/NPY outputs.
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

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::{RunRecord, Track};
use crate::report::npy;
use crate::{Error, Result};

/// Marker file present while a run directory is being written.
pub const INCOMPLETE_MARKER: &str = "INCOMPLETE";

/// Writes `bytes` to `path` atomically: a temporary sibling, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

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

/// UTC timestamp `YYYYMMDDTHHMMSSZ` (no external clock crate needed).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil-from-days (H. Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Creates a fresh run directory: `out` itself when given (it must be absent or empty),
/// otherwise `<root>/<name>/<UTC stamp>-seed<seed>[-n]`. Marks it [`INCOMPLETE_MARKER`].
pub fn create_run_dir(root: &Path, name: &str, seed: u64, out: Option<&Path>) -> Result<PathBuf> {
    create_fresh_dir(root, name, &format!("{}-seed{seed}", utc_stamp()), out)
}

/// Creates a fresh sweep directory: `out`, or `<root>/<name>/sweep-<UTC stamp>[-n]`.
pub fn create_sweep_dir(root: &Path, name: &str, out: Option<&Path>) -> Result<PathBuf> {
    create_fresh_dir(root, name, &format!("sweep-{}", utc_stamp()), out)
}

fn create_fresh_dir(root: &Path, name: &str, base: &str, out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(o) => {
            if o.exists() {
                let mut entries = fs::read_dir(o).map_err(|e| Error::io(o, e))?;
                if entries.next().is_some() {
                    return Err(Error::OutputDir { path: o.to_path_buf(), message: "--out directory exists and is not empty; earlier results are never overwritten".into() });
                }
            } else {
                fs::create_dir_all(o).map_err(|e| Error::io(o, e))?;
            }
            o.to_path_buf()
        }
        None => {
            let parent = root.join(name);
            fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
            let mut n = 1;
            loop {
                let candidate = if n == 1 {
                    parent.join(base)
                } else {
                    parent.join(format!("{base}-{n}"))
                };
                match fs::create_dir(&candidate) {
                    Ok(()) => break candidate,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                    Err(e) => return Err(Error::io(&candidate, e)),
                }
            }
        }
    };
    write_atomic(
        &dir.join(INCOMPLETE_MARKER),
        b"this run did not finish writing its outputs\n",
    )?;
    Ok(dir)
}

/// Marks a run directory complete.
pub fn mark_complete(dir: &Path) -> Result<()> {
    let p = dir.join(INCOMPLETE_MARKER);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// `metrics.csv` text.
pub fn metrics_csv(r: &RunRecord) -> String {
    let mut cols = vec!["step".to_string(), "time".to_string()];
    for t in &r.tracks {
        cols.push(format!("{}_train_loss", t.name()));
        cols.push(format!("{}_test_loss", t.name()));
    }
    for (a, b) in &r.pairs {
        cols.push(format!("rmse_{}_{}_train", a.name(), b.name()));
        cols.push(format!("rmse_{}_{}_test", a.name(), b.name()));
    }
    cols.extend(["ntk_rel_drift", "ntk_kernel_distance", "ntk_lambda_max"].map(String::from));
    cols.extend((0..r.n_layers).map(|l| format!("ntk_rel_drift_layer{l}")));
    cols.push("param_rel_change".into());
    cols.extend((0..r.n_layers).map(|l| format!("param_rel_change_layer{l}")));
    cols.extend(["network_input_grad_norm", "linearized_input_grad_norm"].map(String::from));
    if r.classes.is_some() {
        for t in &r.tracks {
            for c in ["train_accuracy", "test_accuracy", "train_xent", "test_xent"] {
                cols.push(format!("{}_{c}", t.name()));
            }
        }
        for (a, b) in &r.pairs {
            cols.push(format!("agreement_{}_{}", a.name(), b.name()));
        }
    }
    let mut out = cols.join(",") + "\n";
    for c in &r.checkpoints {
        let mut row = vec![c.step.to_string(), fmt_f64(c.time)];
        for (i, _) in r.tracks.iter().enumerate() {
            row.push(fmt_f64(c.train_loss[i]));
            row.push(opt(c.test_loss[i]));
        }
        for (i, _) in r.pairs.iter().enumerate() {
            row.push(fmt_f64(c.rmse_train[i]));
            row.push(opt(c.rmse_test[i]));
        }
        match &c.kernel {
            Some(k) => {
                row.extend([k.ntk_rel_drift, k.ntk_kernel_distance, k.ntk_lambda_max].map(fmt_f64));
                row.extend(k.ntk_rel_drift_per_layer.iter().map(|&v| fmt_f64(v)));
                row.push(fmt_f64(k.param_rel_change));
                row.extend(k.param_rel_change_per_layer.iter().map(|&v| fmt_f64(v)));
            }
            None => row.extend(std::iter::repeat_n(String::new(), 4 + 2 * r.n_layers)),
        }
        row.extend(c.input_grad_norm.map(fmt_f64));
        if let Some(cl) = &c.classification {
            for i in 0..r.tracks.len() {
                row.extend([
                    fmt_f64(cl.train_accuracy[i]),
                    opt(cl.test_accuracy[i]),
                    fmt_f64(cl.train_xent[i]),
                    opt(cl.test_xent[i]),
                ]);
            }
            row.extend(cl.agreement.iter().map(|&v| fmt_f64(v)));
        }
        out += &(row.join(",") + "\n");
    }
    out
}

/// `predictions.csv` omits the input columns above this many inputs.
pub const MAX_INPUT_COLUMNS: usize = 64;

/// `predictions.csv` text.
pub fn predictions_csv(r: &RunRecord) -> String {
    let d = r.input_dim;
    let k = r.n_outputs;
    // Inputs are written only when there are at most 64 of them (one-hot text contexts have hundreds).
    let with_inputs = d <= MAX_INPUT_COLUMNS;
    let mut cols: Vec<String> = vec!["split".into(), "index".into(), "output".into()];
    if with_inputs {
        cols.extend(r.feature_names.iter().cloned());
    }
    cols.push("target".into());
    cols.extend(r.tracks.iter().map(|t| t.name().to_string()));
    let mut out = cols.join(",") + "\n";
    for (split, x, y, is_train) in [
        ("train", &r.x_train, &r.y_train, true),
        ("test", &r.x_test, &r.y_test, false),
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
                    let v = if is_train { &t.train } else { &t.test };
                    row.push(fmt_f64(v[i * k + o]));
                }
                out += &(row.join(",") + "\n");
            }
        }
    }
    out
}

/// Final figures as JSON (`summary.json`).
pub fn summary_json(r: &RunRecord) -> serde_json::Value {
    let last = r.last();
    let track_figures: serde_json::Map<String, serde_json::Value> = r
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.name().to_string(),
                serde_json::json!({
                    "train_loss": last.map(|c| json_f64(c.train_loss[i])),
                    "test_loss": last.and_then(|c| c.test_loss[i]).map(json_f64),
                    "diverged_at_step": r.outputs_of(*t).and_then(|o| o.diverged_at_step),
                }),
            )
        })
        .collect();
    let divergence: serde_json::Map<String, serde_json::Value> = r
        .pairs
        .iter()
        .enumerate()
        .map(|(i, (a, b))| (format!("rmse_{}_{}", a.name(), b.name()), serde_json::json!({"train": last.map(|c| json_f64(c.rmse_train[i])), "test": last.and_then(|c| c.rmse_test[i]).map(json_f64)})))
        .collect();
    serde_json::json!({
        "name": r.name,
        "seed": r.seed,
        "status": r.status,
        "final_step": last.map(|c| c.step),
        "learning_rate": r.learning_rate,
        "critical_learning_rate": json_f64(r.critical_learning_rate),
        "n_params": r.n_params,
        "n_train": r.x_train.len() / r.input_dim.max(1),
        "n_test": r.x_test.len() / r.input_dim.max(1),
        "n_outputs": r.n_outputs,
        "kernel_form": r.kernel_form,
        "tracks": track_figures,
        "divergence": divergence,
        "kernel": r.last_kernel().map(|k| serde_json::json!({
            "ntk_rel_drift": json_f64(k.ntk_rel_drift),
            "ntk_kernel_distance": json_f64(k.ntk_kernel_distance),
            "ntk_lambda_max": json_f64(k.ntk_lambda_max),
            "ntk_rel_drift_per_layer": k.ntk_rel_drift_per_layer.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "param_rel_change": json_f64(k.param_rel_change),
            "param_rel_change_per_layer": k.param_rel_change_per_layer.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
        })),
        "init_ntk_vs_analytic": json_f64(r.init_ntk_vs_analytic),
        "loss": r.loss,
        "text_samples": r.samples,
        "classification": last.and_then(|c| c.classification.as_ref()).map(|cl| serde_json::json!({
            "classes": r.classes,
            "train_accuracy": r.tracks.iter().zip(&cl.train_accuracy).map(|(t, v)| (t.name().to_string(), json_f64(*v))).collect::<serde_json::Map<_, _>>(),
            "test_accuracy": r.tracks.iter().zip(&cl.test_accuracy).map(|(t, v)| (t.name().to_string(), v.map(json_f64).unwrap_or(serde_json::Value::Null))).collect::<serde_json::Map<_, _>>(),
            "agreement": r.pairs.iter().zip(&cl.agreement).map(|((a, b), v)| (format!("{}_{}", a.name(), b.name()), json_f64(*v))).collect::<serde_json::Map<_, _>>(),
        })),
        "kernel_solutions": r.kernel_solutions.iter().map(|k| serde_json::json!({
            "track": k.track.name(),
            "lambda": k.lambda,
            "condition_number": json_f64(k.condition_number),
            "lambda_max": k.lambda_max,
            "test_loss_infinite_time": k.test_loss_infinite_time.map(json_f64),
        })).collect::<Vec<_>>(),
        "timings_s": r.timings.iter().map(|t| (t.phase.clone(), serde_json::json!(t.seconds))).collect::<serde_json::Map<_, _>>(),
    })
}

/// A float for JSON: numbers stay numbers, non-finite values become strings.
pub fn json_f64(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::json!(fmt_f64(v))
    }
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
    ]
    .into_iter()
    .filter_map(|(name, m)| {
        m.as_ref()
            .map(|(v, s)| (name.to_string(), npy::encode_f64(v, s)))
    })
    .collect()
}

/// The data files of a run (relative path, bytes): config, metrics, predictions, summary, kernels.
pub fn data_files(r: &RunRecord) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "config.toml".to_string(),
            r.config_toml.clone().into_bytes(),
        ),
        ("metrics.csv".to_string(), metrics_csv(r).into_bytes()),
        (
            "predictions.csv".to_string(),
            predictions_csv(r).into_bytes(),
        ),
        (
            "summary.json".to_string(),
            (serde_json::to_string_pretty(&summary_json(r)).unwrap_or_default() + "\n")
                .into_bytes(),
        ),
    ];
    files.extend(kernel_files(r));
    files
}

/// Whether any recorded value is non-finite (flagged in the report).
pub fn has_non_finite(r: &RunRecord) -> bool {
    r.checkpoints.iter().any(|c| {
        c.train_loss
            .iter()
            .chain(c.rmse_train.iter())
            .any(|v| !v.is_finite())
            || c.test_loss
                .iter()
                .chain(c.rmse_test.iter())
                .flatten()
                .any(|v| !v.is_finite())
    }) || r
        .outputs
        .iter()
        .any(|o| o.train.iter().chain(&o.test).any(|v| !v.is_finite()))
}

/// Whether a track is in the record.
pub fn has_track(r: &RunRecord, t: Track) -> bool {
    r.tracks.contains(&t)
}
