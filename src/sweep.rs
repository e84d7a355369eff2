//! Sweeps: a config with a `[sweep]` section varies one or two keys over lists, each point
//! repeated over seeds. Every point is a complete run (its own run directory); a failed or
//! diverged point is recorded and the sweep goes on.
//!
//! ```toml
//! [sweep]
//! seeds = 3
//! parallel = 1
//! [sweep.vary]
//! "model.width" = [64, 256, 1024]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{self, ConfigSpec, Experiment, SweepSpec};
use crate::metrics::{self, Phase};
use crate::pipeline;
use crate::record::{RunRecord, RunStatus, Track};
use crate::run::RunOptions;
use crate::{Error, Result};

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// `(key, value)` of the swept keys, in `[sweep.vary]` order.
    pub values: Vec<(String, toml::Value)>,
    /// Seed.
    pub seed: u64,
    /// The experiment of this point.
    pub experiment: Experiment,
}

impl SweepPoint {
    /// Directory name, e.g. `model.width=256_seed1`.
    pub fn dir_name(&self) -> String {
        let mut s: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        s.push(format!("seed{}", self.seed));
        s.join("_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// A TOML value as plain text (strings without quotes).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A parsed sweep: its settings, its points, and the base experiment.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Base experiment (without the sweep).
    pub base: Experiment,
    /// `[sweep]` settings.
    pub spec: SweepSpec,
    /// Points in order (outer key slowest, seeds fastest).
    pub points: Vec<SweepPoint>,
}

/// Whether config text has a `[sweep]` section.
pub fn is_sweep(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key("sweep"))
        .unwrap_or(false)
}

/// Expands a sweep config into validated points.
pub fn expand(text: &str, file: Option<&Path>) -> Result<Sweep> {
    let fname = || {
        file.map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<config>"))
    };
    let spec_all: ConfigSpec = toml::from_str(text).map_err(|e| Error::ConfigParse {
        file: fname(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let sweep = spec_all
        .sweep
        .clone()
        .ok_or_else(|| Error::value("sweep", "(missing)", "a [sweep] section"))?;
    let mut table: toml::Table = toml::from_str(text).map_err(|e| Error::ConfigParse {
        file: fname(),
        message: e.to_string(),
    })?;
    table.remove("sweep");
    let base_text = toml::to_string(&table).map_err(|e| Error::ConfigParse {
        file: fname(),
        message: e.to_string(),
    })?;
    let base = config::parse_str(&base_text, file)?;
    let seeds = sweep.seeds.unwrap_or(1);
    if !(1..=1000).contains(&seeds) {
        return Err(Error::value(
            "sweep.seeds",
            seeds,
            "an integer in [1, 1000]",
        ));
    }
    if !(1..=2).contains(&sweep.vary.len()) {
        return Err(Error::value(
            "sweep.vary",
            sweep.vary.len(),
            "one or two keys",
        ));
    }
    if sweep.parallel == Some(0) {
        return Err(Error::value("sweep.parallel", 0, "an integer >= 1"));
    }
    for (k, vals) in &sweep.vary {
        if vals.is_empty() {
            return Err(Error::value(
                &format!("sweep.vary.\"{k}\""),
                "[]",
                "a non-empty list of values",
            ));
        }
        let parts: Vec<&str> = k.split('.').collect();
        if parts.len() != 2 || parts[0] == "sweep" {
            return Err(Error::value(
                &format!("sweep.vary.\"{k}\""),
                k,
                "a key path `table.key`, e.g. \"model.width\"",
            ));
        }
    }
    // Cartesian product, first key slowest.
    let keys: Vec<(&String, &Vec<toml::Value>)> = sweep.vary.iter().collect();
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (k, vals) in &keys {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(((*k).clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut points = Vec::new();
    for combo in combos {
        for s in 0..seeds {
            let mut t = table.clone();
            for (k, v) in &combo {
                let (tab, key) = k.split_once('.').expect("checked above");
                let entry = t
                    .entry(tab.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let sub = entry.as_table_mut().ok_or_else(|| {
                    Error::value(&format!("sweep.vary.\"{k}\""), k, "a key inside a table")
                })?;
                // The two ways of giving the learning rate exclude each other.
                match key {
                    "lr_scale" => {
                        sub.remove("learning_rate");
                    }
                    "learning_rate" => {
                        sub.remove("lr_scale");
                    }
                    _ => {}
                }
                sub.insert(key.to_string(), v.clone());
            }
            let seed = base.seed + s;
            let exp_tab = t
                .entry("experiment".to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(et) = exp_tab.as_table_mut() {
                et.insert("seed".into(), toml::Value::Integer(seed as i64));
            }
            let text = toml::to_string(&t).map_err(|e| Error::ConfigParse {
                file: fname(),
                message: e.to_string(),
            })?;
            let experiment = config::parse_str(&text, file).map_err(|e| match e {
                Error::ConfigValue {
                    file,
                    line,
                    key,
                    value,
                    allowed,
                } => Error::ConfigValue {
                    file,
                    line,
                    key: format!(
                        "{key} (sweep point {})",
                        combo
                            .iter()
                            .map(|(k, v)| format!("{k} = {}", value_text(v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    value,
                    allowed,
                },
                Error::ConfigParse { file, message } => Error::ConfigParse {
                    file,
                    message: format!("sweep point {combo:?}: {message}"),
                },
                other => other,
            })?;
            points.push(SweepPoint {
                values: combo.clone(),
                seed,
                experiment,
            });
        }
    }
    Ok(Sweep {
        base,
        spec: sweep,
        points,
    })
}

/// Figures of one finished (or failed) sweep point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepRow {
    /// Swept values as text.
    pub values: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
    /// `completed`, `interrupted` or `failed: …`.
    pub status: String,
    /// Run directory (relative to the sweep directory).
    pub run_dir: String,
    /// Wall time of the point in seconds.
    pub wall_s: f64,
    /// Training regime.
    pub phase: Option<Phase>,
    /// Named final figures (NaN where not available).
    pub figures: Vec<(String, f64)>,
    /// Network train loss at every checkpoint (for phase plots).
    #[serde(skip)]
    pub loss_curve: Vec<(f64, f64)>,
    /// λ_max(Θ_t)·η/(2·N·K) at every kernel checkpoint.
    #[serde(skip)]
    pub sharpness_curve: Vec<(f64, f64)>,
}

impl SweepRow {
    /// A figure by name.
    pub fn figure(&self, name: &str) -> f64 {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|f| f.1)
            .unwrap_or(f64::NAN)
    }

    /// A swept value as a number, if it is one.
    pub fn value_f64(&self, key: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// The final figures of a run, named as in `sweep.csv`.
pub fn run_figures(r: &RunRecord) -> Vec<(String, f64)> {
    let last = r.last();
    let mut f = Vec::new();
    for (i, t) in r.tracks.iter().enumerate() {
        f.push((
            format!("{}_train_loss", t.name()),
            last.map(|c| c.train_loss[i]).unwrap_or(f64::NAN),
        ));
        f.push((
            format!("{}_test_loss", t.name()),
            last.and_then(|c| c.test_loss[i]).unwrap_or(f64::NAN),
        ));
    }
    for &(a, b) in r.pairs.iter().filter(|(a, _)| *a == Track::Network) {
        let v = r.final_relative_rmse(a, b).unwrap_or(f64::NAN);
        f.push((format!("rel_rmse_{}_{}", a.name(), b.name()), v));
    }
    if let Some(k) = r.last_kernel() {
        f.push(("ntk_rel_drift".into(), k.ntk_rel_drift));
        f.push(("ntk_kernel_distance".into(), k.ntk_kernel_distance));
        f.push(("param_rel_change".into(), k.param_rel_change));
        for (l, v) in k.param_rel_change_per_layer.iter().enumerate() {
            f.push((format!("param_rel_change_layer{l}"), *v));
        }
    }
    if let Some(cl) = last.and_then(|c| c.classification.as_ref()) {
        for (i, t) in r.tracks.iter().enumerate() {
            f.push((
                format!("{}_test_accuracy", t.name()),
                cl.test_accuracy[i].unwrap_or(f64::NAN),
            ));
            // early stopping: the best test accuracy over the logged checkpoints
            let best = r
                .checkpoints
                .iter()
                .filter_map(|c| c.classification.as_ref()?.test_accuracy[i])
                .fold(f64::NAN, f64::max);
            f.push((format!("{}_best_test_accuracy", t.name()), best));
        }
    }
    for k in &r.kernel_solutions {
        if let Some(l) = k.test_loss_infinite_time {
            f.push((format!("{}_infinite_time_test_loss", k.track.name()), l));
        }
        if let Some(classes) = &r.classes {
            let acc = metrics::accuracy(&k.test_infinite_time, &r.y_test, classes.len())
                .unwrap_or(f64::NAN);
            f.push((
                format!("{}_infinite_time_test_accuracy", k.track.name()),
                acc,
            ));
        }
    }
    f.push(("init_ntk_vs_analytic".into(), r.init_ntk_vs_analytic));
    f.push(("learning_rate".into(), r.learning_rate));
    f.push(("critical_learning_rate".into(), r.critical_learning_rate));
    f.push(("lambda_ratio".into(), lambda_ratio(r)));
    f
}

/// λ_max(Θ_final)/λ_max(Θ0) on the probe set.
pub fn lambda_ratio(r: &RunRecord) -> f64 {
    let ks: Vec<f64> = r
        .checkpoints
        .iter()
        .filter_map(|c| c.kernel.as_ref().map(|k| k.ntk_lambda_max))
        .collect();
    match (ks.first(), ks.last()) {
        (Some(a), Some(b)) if *a > 0.0 => b / a,
        _ => f64::NAN,
    }
}

fn row_of(
    point: &SweepPoint,
    result: std::result::Result<(RunRecord, PathBuf), Error>,
    sweep_dir: &Path,
    wall_s: f64,
) -> SweepRow {
    let values = point
        .values
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    match result {
        Ok((r, dir)) => {
            let net = r.track_index(Track::Network).unwrap_or(0);
            let losses: Vec<f64> = r.checkpoints.iter().map(|c| c.train_loss[net]).collect();
            let diverged = r
                .outputs_of(Track::Network)
                .and_then(|o| o.diverged_at_step)
                .is_some();
            let n_targets = r.y_train.len() as f64;
            SweepRow {
                values,
                seed: point.seed,
                status: match r.status {
                    RunStatus::Completed => "completed".into(),
                    RunStatus::Interrupted => "interrupted".into(),
                },
                run_dir: dir
                    .strip_prefix(sweep_dir)
                    .unwrap_or(&dir)
                    .display()
                    .to_string(),
                wall_s,
                phase: Some(metrics::classify_phase(&losses, lambda_ratio(&r), diverged)),
                figures: run_figures(&r),
                loss_curve: r
                    .checkpoints
                    .iter()
                    .map(|c| (c.step as f64, c.train_loss[net]))
                    .collect(),
                sharpness_curve: r
                    .checkpoints
                    .iter()
                    .filter_map(|c| {
                        c.kernel.as_ref().map(|k| {
                            (
                                c.step as f64,
                                k.ntk_lambda_max * r.learning_rate / (2.0 * n_targets),
                            )
                        })
                    })
                    .collect(),
            }
        }
        Err(e) => SweepRow {
            values,
            seed: point.seed,
            status: format!("failed: {e}"),
            run_dir: point.dir_name(),
            wall_s,
            phase: None,
            figures: Vec::new(),
            loss_curve: Vec::new(),
            sharpness_curve: Vec::new(),
        },
    }
}

/// Runs every point into `sweep_dir/<point>/`, `parallel` at a time. Never stops on a failed point.
/// `on_done(done, total)` is called after each point.
pub fn run(
    sweep: &Sweep,
    sweep_dir: &Path,
    interrupt: Option<Arc<AtomicBool>>,
    on_done: &(dyn Fn(usize, usize, &SweepRow) + Sync),
) -> Vec<SweepRow> {
    let n = sweep.points.len();
    let parallel = sweep.spec.parallel.unwrap_or(1).clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; n]);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                if interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let p = &sweep.points[i];
                let t = Instant::now();
                let opts = RunOptions {
                    interrupt: interrupt.clone(),
                    progress: &crate::run::Silent,
                };
                let result =
                    pipeline::run_into(&p.experiment, Some(&sweep_dir.join(p.dir_name())), &opts);
                let row = row_of(p, result, sweep_dir, t.elapsed().as_secs_f64());
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_done(d, n, &row);
                rows.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
            });
        }
    });
    rows.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// A fitted power law `y ∝ x^slope` with a 95 % confidence interval over all runs (seeds).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PowerLawFit {
    /// Figure name.
    pub figure: String,
    /// Group (value of the second swept key), if any.
    pub group: Option<String>,
    /// Slope.
    pub slope: f64,
    /// Half-width of the 95 % interval (1.96 standard errors of the regression slope).
    pub ci95: f64,
    /// Intercept of log y on log x.
    pub intercept: f64,
    /// Runs used.
    pub n: usize,
}

/// Log-log fits of the named figures against the numeric key `x_key`, per value of the other key.
pub fn fit_power_laws(rows: &[SweepRow], x_key: &str, figures: &[String]) -> Vec<PowerLawFit> {
    let group_key = rows
        .first()
        .and_then(|r| r.values.iter().map(|(k, _)| k.clone()).find(|k| k != x_key));
    let mut groups: Vec<Option<String>> = Vec::new();
    for r in rows {
        let g = group_key.as_ref().and_then(|gk| {
            r.values
                .iter()
                .find(|(k, _)| k == gk)
                .map(|(_, v)| v.clone())
        });
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut fits = Vec::new();
    for g in &groups {
        for f in figures {
            let (xs, ys): (Vec<f64>, Vec<f64>) = rows
                .iter()
                .filter(|r| {
                    group_key.as_ref().and_then(|gk| {
                        r.values
                            .iter()
                            .find(|(k, _)| k == gk)
                            .map(|(_, v)| v.clone())
                    }) == *g
                })
                .filter_map(|r| Some((r.value_f64(x_key)?, r.figure(f))))
                .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
                .unzip();
            if let Some((slope, intercept, se)) = metrics::loglog_fit(&xs, &ys) {
                fits.push(PowerLawFit {
                    figure: f.clone(),
                    group: g.clone(),
                    slope,
                    ci95: 1.96 * se,
                    intercept,
                    n: xs.len(),
                });
            }
        }
    }
    fits
}
