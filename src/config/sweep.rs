//! Sweep configs: a `[sweep]` section varies one or two keys over lists, each point repeated
//! over seeds. Expansion validates every point into an [`Experiment`] before anything runs;
//! errors name the user's file and the line of the offending key (for a swept key, its line in
//! `[sweep.vary]`).
//!
//! ```toml
//! [sweep]
//! seeds = 3
//! parallel = 1
//! [sweep.vary]
//! "model.width" = [64, 256, 1024]
//! ```

use std::path::Path;

use serde::Deserialize;

use super::schema::{ConfigSpec, SlurmSpec, SweepSpec};
use super::{locate, parse_error, Experiment, KeyLines};
use crate::{Error, Result};

/// Largest number of seeds per point.
pub const MAX_SEEDS: u64 = 1000;
/// Largest number of runs in one sweep (points × seeds).
pub const MAX_RUNS: u64 = 10_000;
/// Longest value text in a point's directory name.
const DIR_VALUE_CHARS: usize = 24;

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Position in the sweep (0-based).
    pub index: usize,
    /// `(key, value)` of the swept keys, in `[sweep.vary]` order.
    pub values: Vec<(String, toml::Value)>,
    /// Seed.
    pub seed: u64,
    /// The experiment of this point.
    pub experiment: Experiment,
}

impl SweepPoint {
    /// Directory name, e.g. `p0003_width=256_seed1`: the point's index keeps names unique and
    /// short whatever the values are (each value's text is cut to 24 characters).
    pub fn dir_name(&self) -> String {
        let mut s = vec![format!("p{:04}", self.index)];
        s.extend(self.values.iter().map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            let text: String = value_text(v).chars().take(DIR_VALUE_CHARS).collect();
            format!("{short}={text}")
        }));
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
    /// `[slurm]` settings (all defaults when absent).
    pub slurm: SlurmSpec,
    /// How paths were read (see [`super::paths`]).
    pub notes: Vec<String>,
}

/// The swept keys that have figures of their own in a sweep's report (a sweep may vary any
/// key; these are the axes its charts and fits are drawn against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// `model.width`: scaling fits and the language figure.
    Width,
    /// `training.lr_scale`: training phases.
    LrScale,
    /// `training.learning_rate`: training phases.
    LearningRate,
    /// `data.n_train`: the learning curve.
    NTrain,
    /// `data.label_noise`: accuracy under label noise.
    LabelNoise,
    /// `kernel.diag_reg`: the kernel solution per regulariser in the label-noise figure.
    DiagReg,
}

impl Axis {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Axis::Width => "model.width",
            Axis::LrScale => "training.lr_scale",
            Axis::LearningRate => "training.learning_rate",
            Axis::NTrain => "data.n_train",
            Axis::LabelNoise => "data.label_noise",
            Axis::DiagReg => "kernel.diag_reg",
        }
    }
}

impl Sweep {
    /// Whether the sweep varies the key of `axis`.
    pub fn varies(&self, axis: Axis) -> bool {
        self.spec.vary.contains_key(axis.key())
    }

    /// The learning-rate axis the sweep varies, if any.
    pub fn learning_rate_axis(&self) -> Option<Axis> {
        [Axis::LrScale, Axis::LearningRate]
            .into_iter()
            .find(|&a| self.varies(a))
    }
}

/// Whether config text has a `[sweep]` section.
pub fn is_sweep(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key("sweep"))
        .unwrap_or(false)
}

fn check_spec(sweep: &SweepSpec) -> Result<u64> {
    let seeds = sweep.seeds.unwrap_or(1);
    if !(1..=MAX_SEEDS).contains(&seeds) {
        return Err(Error::value(
            "sweep.seeds",
            seeds,
            format!("an integer in [1, {MAX_SEEDS}]"),
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
    let mut runs = seeds;
    for (k, vals) in &sweep.vary {
        let key = format!("sweep.vary.\"{k}\"");
        let listed = format!(
            "[{}]",
            vals.iter().map(value_text).collect::<Vec<_>>().join(", ")
        );
        if vals.is_empty() {
            return Err(Error::value(&key, "[]", "a non-empty list of values"));
        }
        runs = runs.saturating_mul(vals.len() as u64);
        for (i, v) in vals.iter().enumerate() {
            if vals[..i].contains(v) {
                return Err(Error::value(
                    &key,
                    value_text(v),
                    "distinct values (this one is listed twice)",
                ));
            }
        }
        if k == "experiment.seed" {
            return Err(Error::value(
                &key,
                &listed,
                "a key other than experiment.seed (repeat points over seeds with sweep.seeds)",
            ));
        }
        if k == "outputs.dir" || k == "experiment.name" {
            return Err(Error::value(
                &key,
                &listed,
                "a key that changes what is computed (this one does not): every point is written into the sweep directory (--out, or <outputs.dir>/<experiment.name>/sweep-<time>), so a swept outputs.dir or experiment.name would have no effect",
            ));
        }
        if k == "kernel.store_dir" {
            return Err(Error::value(
                &key,
                &listed,
                "a key that changes what is computed (this one does not): kernel.store_dir only says where kernel blocks are kept, and every point would compute the same numbers (set it once, outside sweep.vary)",
            ));
        }
        let parts: Vec<&str> = k.split('.').collect();
        if parts.first() == Some(&"sweep") {
            return Err(Error::value(
                &key,
                &listed,
                "a key of the experiment, not of [sweep] itself (sweep settings are not swept)",
            ));
        }
        if parts.len() != 2 {
            return Err(Error::value(
                &key,
                &listed,
                "a key path `table.key`, e.g. \"model.width\"",
            ));
        }
    }
    if runs > MAX_RUNS {
        return Err(Error::value(
            "sweep",
            format!("{runs} runs"),
            format!("at most {MAX_RUNS} runs (points × seeds) in one sweep"),
        ));
    }
    Ok(seeds)
}

/// [`locate`] for errors of the `[sweep]` section, whose keys under `sweep.vary` are quoted
/// dotted paths (`sweep.vary."model.width"`).
fn locate_sweep(e: Error, lines: &KeyLines, file: Option<&Path>) -> Error {
    let e = match e {
        Error::ConfigValue {
            file: f,
            line: None,
            key,
            value,
            allowed,
        } => Error::ConfigValue {
            line: key
                .strip_prefix("sweep.vary.\"")
                .and_then(|k| k.strip_suffix('"'))
                .and_then(|k| lines.line_of(&["sweep", "vary", k])),
            file: f,
            key,
            value,
            allowed,
        },
        other => other,
    };
    locate(e, lines, file)
}

/// The swept key of an error, if the error concerns one.
fn swept_line(lines: &KeyLines, sweep: &SweepSpec, key: &str) -> Option<usize> {
    sweep
        .vary
        .keys()
        .find(|k| k.as_str() == key)
        .and_then(|k| lines.line_of(&["sweep", "vary", k]))
}

/// Expands a sweep config into validated points.
pub fn expand(text: &str, file: Option<&Path>) -> Result<Sweep> {
    let lines = KeyLines::new(text);
    let mut spec_all: ConfigSpec =
        toml::from_str(text).map_err(|e| parse_error(&e, &lines, file))?;
    let base_dir = super::paths::base_of(file);
    let notes = spec_all.rebase(&base_dir);
    let sweep = spec_all
        .sweep
        .clone()
        .ok_or_else(|| Error::value("sweep", "(missing)", "a [sweep] section"))?;
    let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_error(&e, &lines, file))?;
    table.remove("sweep");
    table.remove("slurm");
    let slurm = check_slurm(spec_all.slurm.clone().unwrap_or_default())
        .map_err(|e| locate(e, &lines, file))?;
    let base = spec_all.check().map_err(|e| locate(e, &lines, file))?;
    let seeds = check_spec(&sweep).map_err(|e| locate_sweep(e, &lines, file))?;
    let stride = base.ensemble.map_or(1, |e| e.members as u64);
    // Seeds are TOML integers (signed 64-bit) in every point's config.
    if base
        .seed
        .saturating_add((seeds - 1).saturating_mul(stride))
        .saturating_add(stride - 1)
        > i64::MAX as u64
    {
        return Err(locate(
            Error::value(
                "experiment.seed",
                base.seed,
                format!("a seed such that seed + sweep.seeds − 1 ≤ {} (TOML's 64-bit signed integers; {seeds} seeds)", i64::MAX),
            ),
            &lines,
            file,
        ));
    }
    // Cartesian product, first key slowest.
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (k, vals) in &sweep.vary {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((k.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut points = Vec::new();
    for combo in combos {
        let mut t = table.clone();
        for (k, v) in &combo {
            set_key(&mut t, k, v.clone()).map_err(|e| locate_sweep(e, &lines, file))?;
        }
        for s in 0..seeds {
            // An ensemble's members use seeds experiment.seed + 0 … M − 1: repeats step by M so
            // that no two repeats share a member.
            let seed = base.seed + s * stride;
            let mut t = t.clone();
            set_key(&mut t, "experiment.seed", toml::Value::Integer(seed as i64))
                .map_err(|e| locate(e, &lines, file))?;
            let point = |e: Error| point_error(e, &combo, &lines, &sweep, file);
            let experiment = ConfigSpec::deserialize(toml::Value::Table(t))
                .map_err(|e| Error::ConfigParse {
                    file: file
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| "<config>".into()),
                    line: None,
                    key: None,
                    message: e.to_string().trim_end().to_string(),
                })
                .and_then(|mut spec| {
                    spec.rebase(&base_dir);
                    spec.check()
                })
                .map_err(point)?;
            points.push(SweepPoint {
                index: points.len(),
                values: combo.clone(),
                seed,
                experiment,
            });
        }
    }
    no_effect(&points, &sweep).map_err(|e| locate_sweep(e, &lines, file))?;
    Ok(Sweep {
        base,
        spec: sweep,
        points,
        slurm,
        notes,
    })
}

/// Checks `[slurm]`: counts ≥ 1, strings that sbatch can take on one line.
pub fn check_slurm(s: SlurmSpec) -> Result<SlurmSpec> {
    for (key, v) in [
        ("slurm.tasks", s.tasks),
        ("slurm.cpus_per_task", s.cpus_per_task),
        ("slurm.max_parallel", s.max_parallel),
    ] {
        if v == Some(0) {
            return Err(Error::value(key, 0, "an integer >= 1"));
        }
    }
    let strings = [
        ("slurm.partition", s.partition.iter().collect::<Vec<_>>()),
        ("slurm.time", s.time.iter().collect()),
        ("slurm.mem", s.mem.iter().collect()),
        ("slurm.extra_args", s.extra_args.iter().flatten().collect()),
    ];
    for (key, vals) in strings {
        for v in vals {
            if v.is_empty() || v.chars().any(|c| c.is_control()) {
                return Err(Error::value(
                    key,
                    format!("{v:?}"),
                    "a non-empty string without line breaks or control characters",
                ));
            }
        }
    }
    Ok(s)
}

/// What a checked experiment computes, with settings that cannot matter put in one form: a zero
/// diagonal regulariser is zero whether it was meant as absolute or relative, and σ_b does
/// nothing in a network without biases.
fn effective(e: &Experiment) -> Experiment {
    let mut e = e.clone();
    if e.kernel.diag_reg.value == 0.0 {
        e.kernel.diag_reg.absolute = false;
    }
    if !e.model.bias {
        e.model.b_std = 0.0;
    }
    e
}

/// Why two points that differ as written are the same run (see [`effective`]), and what helps.
fn why_same(a: &Experiment, b: &Experiment) -> &'static str {
    if a.kernel.diag_reg.absolute != b.kernel.diag_reg.absolute {
        "; with kernel.diag_reg = 0 there is no regulariser, absolute or relative: set kernel.diag_reg > 0 to compare the two"
    } else if a.model.b_std != b.model.b_std {
        "; with model.bias = false the network has no biases and model.b_std does nothing: set model.bias = true to vary it"
    } else {
        ""
    }
}

/// Refuses swept keys that change nothing: two points with the same seed and the same
/// experiment in effect, or a quadrature order swept for a closed-form activation.
fn no_effect(points: &[SweepPoint], sweep: &SweepSpec) -> Result<()> {
    let effects: Vec<Experiment> = points.iter().map(|p| effective(&p.experiment)).collect();
    for (i, p) in points.iter().enumerate() {
        if let Some(q) = points[..i]
            .iter()
            .zip(&effects)
            .find(|(q, e)| q.seed == p.seed && **e == effects[i])
            .map(|(q, _)| q)
        {
            let show = |v: &[(String, toml::Value)]| {
                v.iter()
                    .map(|(k, x)| format!("{k} = {}", value_text(x)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::value(
                "sweep.vary",
                format!("{} and {}", show(&q.values), show(&p.values)),
                format!(
                    "values that change the experiment (these two points are the same run{})",
                    why_same(&q.experiment, &p.experiment)
                ),
            ));
        }
    }
    if let Some(p) = points.first() {
        let act = p.experiment.model.activation;
        if sweep.vary.contains_key("kernel.quadrature_order")
            && crate::ntk::analytic::closed_form(act, 1.0, 1.0, 0.5).is_some()
        {
            return Err(Error::value(
                "sweep.vary.\"kernel.quadrature_order\"",
                act.name(),
                "an activation without a closed form (tanh, softplus): with this one the quadrature order has no effect",
            ));
        }
    }
    Ok(())
}

/// Sets `table.key` in a config table (the two ways of giving the learning rate exclude each
/// other, so setting one removes the other).
fn set_key(t: &mut toml::Table, dotted: &str, v: toml::Value) -> Result<()> {
    let (tab, key) = dotted
        .split_once('.')
        .ok_or_else(|| Error::value(dotted, dotted, "a key path `table.key`"))?;
    let entry = t
        .entry(tab.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let sub = entry.as_table_mut().ok_or_else(|| {
        Error::value(
            &format!("sweep.vary.\"{dotted}\""),
            dotted,
            "a key inside a table",
        )
    })?;
    match key {
        "lr_scale" => {
            sub.remove("learning_rate");
        }
        "learning_rate" => {
            sub.remove("lr_scale");
        }
        _ => {}
    }
    sub.insert(key.to_string(), v);
    Ok(())
}

/// An error of one sweep point: names the point, and the line of the key in the user's file.
fn point_error(
    e: Error,
    combo: &[(String, toml::Value)],
    lines: &KeyLines,
    sweep: &SweepSpec,
    file: Option<&Path>,
) -> Error {
    let at = combo
        .iter()
        .map(|(k, v)| format!("{k} = {}", value_text(v)))
        .collect::<Vec<_>>()
        .join(", ");
    match e {
        Error::ConfigValue {
            key,
            value,
            allowed,
            ..
        } => Error::ConfigValue {
            file: file.map(Path::to_path_buf),
            line: swept_line(lines, sweep, &key).or_else(|| lines.line_of_dotted(&key)),
            key: format!("{key} (sweep point {at})"),
            value,
            allowed,
        },
        Error::ConfigParse { file, message, .. } => {
            // The swept key the message names (serde names the field), else the first one:
            // a value of the wrong type can only have come from the list of one of them.
            let k = combo
                .iter()
                .find(|(k, _)| {
                    k.rsplit('.')
                        .next()
                        .is_some_and(|f| message.contains(&format!("`{f}`")))
                })
                .or(combo.first())
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            Error::ConfigParse {
                file,
                line: lines.line_of(&["sweep", "vary", &k]),
                key: (!k.is_empty()).then(|| format!("sweep.vary.\"{k}\"")),
                message: format!("sweep point {at}: {message}"),
            }
        }
        other => other,
    }
}
