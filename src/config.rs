//! The user's TOML schema (`*Spec`, plain serde with `deny_unknown_fields`) and its validation,
//! once, into the checked [`Experiment`] that the numerics consume.
//!
//! Every key, its default and its range is documented in the README ("Configuration").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Precision};
use crate::model::{Activation, Parametrization};
use crate::ntk::quadrature::DEFAULT_ORDER;
use crate::ntk::KernelForm;
use crate::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Raw schema
// ---------------------------------------------------------------------------------------------

/// The whole config file as written by the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// `[experiment]`
    pub experiment: ExperimentSpec,
    /// `[data]`
    pub data: DataSpec,
    /// `[model]`
    #[serde(default)]
    pub model: ModelSpec,
    /// `[training]`
    #[serde(default)]
    pub training: TrainingSpec,
    /// `[kernel]`
    #[serde(default)]
    pub kernel: KernelSpec,
    /// `[logging]`
    #[serde(default)]
    pub logging: LoggingSpec,
    /// `[outputs]`
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// `[sweep]`: present only in sweep configs (see [`crate::sweep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSpec>,
}

/// `[sweep]`: vary one or two keys over lists, each point repeated over seeds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Repeats per point, seeds `experiment.seed + 0 … seeds − 1` (default 1).
    pub seeds: Option<u64>,
    /// Points run at the same time (default 1).
    pub parallel: Option<usize>,
    /// Dotted key → list of values, e.g. `"model.width" = [64, 128]` (one or two keys).
    pub vary: std::collections::BTreeMap<String, Vec<toml::Value>>,
}

/// `[experiment]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Name of the experiment (a directory name under `outputs.dir`). Required.
    pub name: String,
    /// Seed of data, initialisation and minibatch order (default 0).
    pub seed: Option<u64>,
}

/// `[data]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// `sine | teacher | csv`. Required.
    pub kind: String,
    /// Training points (sine/teacher: default 32; csv: all rows of the training split).
    pub n_train: Option<usize>,
    /// Test points (sine: 256, teacher: 256; csv: all rows of the test split).
    pub n_test: Option<usize>,
    /// Standard deviation of Gaussian noise added to training targets (default 0).
    pub noise: Option<f64>,
    /// sine: `y = sin(frequency · x)` (default 1).
    pub frequency: Option<f64>,
    /// sine: input interval (default `[-3.141592653589793, 3.141592653589793]`).
    pub interval: Option<[f64; 2]>,
    /// teacher: input dimension (default 16).
    pub input_dim: Option<usize>,
    /// teacher: width of the random one-hidden-layer ReLU teacher (default 256).
    pub teacher_width: Option<usize>,
    /// csv: path of the data file (relative to the working directory).
    pub path: Option<PathBuf>,
    /// csv: a separate test file (otherwise a seeded split by `test_fraction`).
    pub test_path: Option<PathBuf>,
    /// csv: target column names.
    pub target: Option<Vec<String>>,
    /// csv: standardise features and targets with training-split statistics (default true).
    pub standardize: Option<bool>,
    /// csv: fraction of rows held out for testing when there is no `test_path` (default 0.2).
    pub test_fraction: Option<f64>,
    /// csv: shuffle rows before the split (default true); false keeps file order.
    pub shuffle: Option<bool>,
    /// csv: factor applied to every feature after loading (and standardising), default 1
    /// (e.g. 1/16 for 0–16 pixel intensities).
    pub feature_scale: Option<f64>,
    /// csv: the (single) target column holds class labels, encoded one-hot (default false).
    pub one_hot: Option<bool>,
    /// csv with `one_hot`: the values for the true class and the others (default `[1, 0]`;
    /// `[0.9, -0.1]` gives centred targets).
    pub one_hot_values: Option<[f64; 2]>,
    /// csv with `one_hot`: fraction of training labels replaced by a random other class (default 0).
    pub label_noise: Option<f64>,
    /// text: characters of context per sample (default 8).
    pub context: Option<usize>,
    /// text: fold the text to lower case (default true).
    pub lowercase: Option<bool>,
}

/// `activation = "relu"` or `activation = { name = "leaky_relu", alpha = 0.1 }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ActivationSpec {
    /// A plain name.
    Name(String),
    /// A table with parameters.
    Table {
        /// Activation name.
        name: String,
        /// Negative slope of leaky_relu.
        alpha: Option<f64>,
    },
}

/// `[model]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Hidden width (default 512).
    pub width: Option<usize>,
    /// Hidden layers (default 2).
    pub depth: Option<usize>,
    /// Nonlinearity (default relu).
    pub activation: Option<ActivationSpec>,
    /// σ_w (default √2).
    pub w_std: Option<f64>,
    /// σ_b (default 0.1).
    pub b_std: Option<f64>,
    /// Biases (default true).
    pub bias: Option<bool>,
    /// `ntk | standard` (default ntk).
    pub parametrization: Option<String>,
    /// `f32 | f64` (default f32).
    pub precision: Option<String>,
    /// `flex | ndarray` (default flex).
    pub backend: Option<String>,
}

/// `[training]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// SGD learning rate η (default 1.0).
    pub learning_rate: Option<f64>,
    /// Learning rate as a multiple of the critical rate η_c = 2·N·K/λ_max(Θ0) (instead of
    /// `learning_rate`).
    pub lr_scale: Option<f64>,
    /// Steps (default 1000; 0 computes kernels and initial predictions only).
    pub steps: Option<u64>,
    /// Minibatch size (absent = full batch).
    pub batch_size: Option<usize>,
    /// Heavy-ball momentum μ in [0, 1) (default 0).
    pub momentum: Option<f64>,
    /// Learn `y − f0` from zero in every track (default false).
    pub center_outputs: Option<bool>,
    /// A track whose training loss exceeds this (or is not finite) is marked diverged
    /// (default 1e10).
    pub max_loss: Option<f64>,
    /// Loss of the network and the linearized twin: `mse | cross_entropy` (default mse; the
    /// kernel tracks are always the MSE closed form).
    pub loss: Option<String>,
}

/// `[kernel]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Kernel-regression tracks: any of `analytic`, `empirical` (default both).
    pub solutions: Option<Vec<String>>,
    /// `discrete | continuous` (default discrete).
    pub time: Option<String>,
    /// Diagonal regulariser (default 0), relative to trace(Θ)/n unless `diag_reg_absolute`.
    pub diag_reg: Option<f64>,
    /// Use `diag_reg` as an absolute value (default false).
    pub diag_reg_absolute: Option<bool>,
    /// Training points on which kernel drift is measured (default 64, capped at n_train).
    pub probe_size: Option<usize>,
    /// Multi-output kernel form: `full | trace` (default full).
    pub form: Option<String>,
    /// Gauss–Legendre nodes per piece for activations without a closed form (default 48).
    pub quadrature_order: Option<usize>,
    /// Compute the empirical Θ0 in row blocks of this many points (default: all at once), so
    /// that only one block's backprop signals are in memory.
    pub block_size: Option<usize>,
}

/// `[logging]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    /// Steps between checkpoints (default 10).
    pub every: Option<u64>,
    /// Steps between kernel checkpoints (default 50; a multiple of `every`).
    pub kernel_every: Option<u64>,
}

/// `[outputs]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsSpec {
    /// Results root (default `results`).
    pub dir: Option<PathBuf>,
    /// Write kernels as `.npy` (default false).
    pub save_kernels: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Checked types
// ---------------------------------------------------------------------------------------------

/// Synthetic or file data.
#[derive(Debug, Clone, PartialEq)]
pub enum DataKind {
    /// `y = sin(frequency · x)` on an interval; train points uniform at random, test on a grid.
    Sine {
        /// ω
        frequency: f64,
        /// `[lo, hi]`
        interval: [f64; 2],
    },
    /// Inputs uniform on the sphere of radius √d, targets from a random ReLU teacher.
    Teacher {
        /// d
        input_dim: usize,
        /// teacher hidden width
        teacher_width: usize,
    },
    /// Next-character prediction on a text file: `context` one-hot characters → the next one.
    Text {
        /// text file
        path: PathBuf,
        /// context length
        context: usize,
        /// fold case
        lowercase: bool,
        /// held-out final fraction of the text for test contexts
        test_fraction: f64,
    },
    /// A CSV file.
    Csv {
        /// data file
        path: PathBuf,
        /// optional test file
        test_path: Option<PathBuf>,
        /// target columns
        target: Vec<String>,
        /// standardise features and targets
        standardize: bool,
        /// held-out fraction
        test_fraction: f64,
        /// shuffle before splitting
        shuffle: bool,
        /// one-hot class targets `(on, off)` (None = regression targets)
        one_hot: Option<[f64; 2]>,
        /// factor on every feature
        feature_scale: f64,
    },
}

/// Checked `[data]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// What data.
    pub kind: DataKind,
    /// Training points (csv: optional cap).
    pub n_train: Option<usize>,
    /// Test points (csv: optional cap).
    pub n_test: Option<usize>,
    /// Label noise std.
    pub noise: f64,
    /// Fraction of corrupted training class labels.
    pub label_noise: f64,
}

/// Checked `[model]` (input and output sizes come from the data).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Nonlinearity.
    pub activation: Activation,
    /// σ_w.
    pub w_std: f64,
    /// σ_b.
    pub b_std: f64,
    /// Biases.
    pub bias: bool,
    /// Parametrization.
    pub parametrization: Parametrization,
    /// Network precision.
    pub precision: Precision,
    /// burn backend.
    pub backend: Backend,
}

/// How the learning rate is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LearningRate {
    /// η itself.
    Absolute(f64),
    /// η = scale · η_c with η_c = 2·N·K/λ_max(Θ0).
    CriticalMultiple(f64),
}

/// Checked `[training]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingConfig {
    /// Learning rate.
    pub learning_rate: LearningRate,
    /// Steps.
    pub steps: u64,
    /// Minibatch size (`None` = full batch).
    pub batch_size: Option<usize>,
    /// Momentum.
    pub momentum: f64,
    /// Centre outputs.
    pub center_outputs: bool,
    /// Divergence bound on the training loss.
    pub max_loss: f64,
    /// Loss of network and twin.
    pub loss: crate::dynamics::Loss,
}

/// Which kernel drives a kernel-regression track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelSolution {
    /// Analytic infinite-width NTK Θ∞.
    Analytic,
    /// Empirical NTK at initialisation Θ0.
    Empirical,
}

impl KernelSolution {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            KernelSolution::Analytic => "analytic",
            KernelSolution::Empirical => "empirical",
        }
    }
}

/// Time of the kernel predictor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeMode {
    /// Exact discrete-time gradient descent, `(I − ηΘ/|Y|)^steps`.
    Discrete,
    /// Gradient flow, `exp(−ηt·Θ/|Y|)`.
    Continuous,
}

/// Diagonal regulariser as neural-tangents defines it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiagReg {
    /// The value.
    pub value: f64,
    /// Absolute (`λ = value`) or relative (`λ = value · trace(Θ)/n`).
    pub absolute: bool,
}

/// Checked `[kernel]`.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelConfig {
    /// Kernel tracks.
    pub solutions: Vec<KernelSolution>,
    /// Time mode.
    pub time: TimeMode,
    /// Regulariser.
    pub diag_reg: DiagReg,
    /// Probe size.
    pub probe_size: usize,
    /// Multi-output form.
    pub form: KernelForm,
    /// Quadrature order.
    pub quadrature_order: usize,
    /// Row-block size of the empirical kernel (None = all at once).
    pub block_size: Option<usize>,
}

/// Checked `[logging]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggingConfig {
    /// Steps between checkpoints.
    pub every: u64,
    /// Steps between kernel checkpoints.
    pub kernel_every: u64,
}

/// Checked `[outputs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputsConfig {
    /// Results root.
    pub dir: PathBuf,
    /// Save kernels.
    pub save_kernels: bool,
}

/// A validated experiment: what the numerics consume.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Data.
    pub data: DataConfig,
    /// Model.
    pub model: ModelSettings,
    /// Training.
    pub training: TrainingConfig,
    /// Kernel tracks.
    pub kernel: KernelConfig,
    /// Logging.
    pub logging: LoggingConfig,
    /// Outputs.
    pub outputs: OutputsConfig,
    /// The config with every default filled in (written as `config.toml`).
    pub resolved: ConfigSpec,
}

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Experiment> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_str(&text, Some(path))
}

/// Parses and validates config text; `file` is used in error messages.
pub fn parse_str(text: &str, file: Option<&Path>) -> Result<Experiment> {
    let spec: ConfigSpec = toml::from_str(text).map_err(|e| Error::ConfigParse {
        file: file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<config>")),
        message: e.to_string().trim_end().to_string(),
    })?;
    spec.validate().map_err(|e| match e {
        Error::ConfigValue {
            key,
            value,
            allowed,
            ..
        } => Error::ConfigValue {
            file: file.map(Path::to_path_buf),
            line: find_key_line(text, &key),
            key,
            value,
            allowed,
        },
        other => other,
    })
}

/// 1-based line of a dotted key (`table.key`) in TOML text, when written in `[table]` form.
pub fn find_key_line(text: &str, key_path: &str) -> Option<usize> {
    let (table, key) = key_path.rsplit_once('.')?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == table {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

fn positive(key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::value(key, v, "a finite number > 0"))
    }
}

fn non_negative(key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::value(key, v, "a finite number >= 0"))
    }
}

fn at_least(key: &str, v: usize, min: usize) -> Result<usize> {
    if v >= min {
        Ok(v)
    } else {
        Err(Error::value(key, v, format!("an integer >= {min}")))
    }
}

fn only_for_one_hot(key: &str, present: bool) -> Result<()> {
    if present {
        Err(Error::value(
            key,
            "(set)",
            "only valid with data.one_hot = true",
        ))
    } else {
        Ok(())
    }
}

fn only_for(key: &str, present: bool, kind: &str, allowed_kind: &str) -> Result<()> {
    if present {
        Err(Error::value(
            key,
            "(set)",
            format!("only valid for data.kind = \"{allowed_kind}\", not \"{kind}\""),
        ))
    } else {
        Ok(())
    }
}

impl ConfigSpec {
    /// Validates into an [`Experiment`] (file and line are added by [`parse_str`]).
    pub fn validate(&self) -> Result<Experiment> {
        let e = &self.experiment;
        if e.name.is_empty()
            || !e
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            || e.name.starts_with('.')
        {
            return Err(Error::value(
                "experiment.name",
                format!("{:?}", e.name),
                "a non-empty name of letters, digits, '_', '-', '.' (not starting with '.')",
            ));
        }
        let seed = e.seed.unwrap_or(0);

        // --- data
        let d = &self.data;
        let noise = non_negative("data.noise", d.noise.unwrap_or(0.0))?;
        let kind = match d.kind.as_str() {
            "sine" | "teacher" => {
                only_for("data.path", d.path.is_some(), &d.kind, "csv")?;
                only_for("data.test_path", d.test_path.is_some(), &d.kind, "csv")?;
                only_for("data.target", d.target.is_some(), &d.kind, "csv")?;
                only_for("data.standardize", d.standardize.is_some(), &d.kind, "csv")?;
                only_for(
                    "data.test_fraction",
                    d.test_fraction.is_some(),
                    &d.kind,
                    "csv",
                )?;
                only_for("data.shuffle", d.shuffle.is_some(), &d.kind, "csv")?;
                only_for(
                    "data.feature_scale",
                    d.feature_scale.is_some(),
                    &d.kind,
                    "csv",
                )?;
                only_for("data.one_hot", d.one_hot.is_some(), &d.kind, "csv")?;
                only_for(
                    "data.one_hot_values",
                    d.one_hot_values.is_some(),
                    &d.kind,
                    "csv",
                )?;
                if d.kind == "sine" {
                    only_for("data.input_dim", d.input_dim.is_some(), &d.kind, "teacher")?;
                    only_for(
                        "data.teacher_width",
                        d.teacher_width.is_some(),
                        &d.kind,
                        "teacher",
                    )?;
                    let frequency = d.frequency.unwrap_or(1.0);
                    if !frequency.is_finite() {
                        return Err(Error::value("data.frequency", frequency, "a finite number"));
                    }
                    let interval = d
                        .interval
                        .unwrap_or([-std::f64::consts::PI, std::f64::consts::PI]);
                    if !(interval[0].is_finite()
                        && interval[1].is_finite()
                        && interval[0] < interval[1])
                    {
                        return Err(Error::value(
                            "data.interval",
                            format!("{interval:?}"),
                            "[lo, hi] with finite lo < hi",
                        ));
                    }
                    DataKind::Sine {
                        frequency,
                        interval,
                    }
                } else {
                    only_for("data.frequency", d.frequency.is_some(), &d.kind, "sine")?;
                    only_for("data.interval", d.interval.is_some(), &d.kind, "sine")?;
                    DataKind::Teacher {
                        input_dim: at_least("data.input_dim", d.input_dim.unwrap_or(16), 1)?,
                        teacher_width: at_least(
                            "data.teacher_width",
                            d.teacher_width.unwrap_or(256),
                            1,
                        )?,
                    }
                }
            }
            "text" => {
                let path = d.path.clone().ok_or_else(|| {
                    Error::value(
                        "data.path",
                        "(missing)",
                        "a text file path is required for data.kind = \"text\"",
                    )
                })?;
                for (k, p) in [
                    ("data.target", d.target.is_some()),
                    ("data.one_hot", d.one_hot.is_some()),
                    ("data.test_path", d.test_path.is_some()),
                    ("data.input_dim", d.input_dim.is_some()),
                    ("data.frequency", d.frequency.is_some()),
                ] {
                    if p {
                        return Err(Error::value(
                            k,
                            "(set)",
                            "not valid for data.kind = \"text\"",
                        ));
                    }
                }
                let test_fraction = d.test_fraction.unwrap_or(0.1);
                if !(test_fraction > 0.0 && test_fraction < 1.0) {
                    return Err(Error::value(
                        "data.test_fraction",
                        test_fraction,
                        "a fraction in (0, 1) for data.kind = \"text\"",
                    ));
                }
                DataKind::Text {
                    path,
                    context: at_least("data.context", d.context.unwrap_or(8), 1)?,
                    lowercase: d.lowercase.unwrap_or(true),
                    test_fraction,
                }
            }
            "csv" => {
                for (k, p) in [
                    ("data.frequency", d.frequency.is_some()),
                    ("data.interval", d.interval.is_some()),
                    ("data.input_dim", d.input_dim.is_some()),
                    ("data.teacher_width", d.teacher_width.is_some()),
                ] {
                    only_for(
                        k,
                        p,
                        "csv",
                        if k.ends_with("frequency") || k.ends_with("interval") {
                            "sine"
                        } else {
                            "teacher"
                        },
                    )?;
                }
                let path = d.path.clone().ok_or_else(|| {
                    Error::value(
                        "data.path",
                        "(missing)",
                        "a CSV file path is required for data.kind = \"csv\"",
                    )
                })?;
                let target = d.target.clone().ok_or_else(|| {
                    Error::value(
                        "data.target",
                        "(missing)",
                        "a list of target column names is required for data.kind = \"csv\"",
                    )
                })?;
                if target.is_empty() {
                    return Err(Error::value(
                        "data.target",
                        "[]",
                        "at least one target column",
                    ));
                }
                let test_fraction =
                    d.test_fraction
                        .unwrap_or(if d.test_path.is_some() { 0.0 } else { 0.2 });
                if !(0.0..1.0).contains(&test_fraction) {
                    return Err(Error::value(
                        "data.test_fraction",
                        test_fraction,
                        "a number in [0, 1)",
                    ));
                }
                if d.test_path.is_some() && d.test_fraction.is_some_and(|f| f > 0.0) {
                    return Err(Error::value(
                        "data.test_fraction",
                        test_fraction,
                        "0 (or absent) when data.test_path is given",
                    ));
                }
                let one_hot = if d.one_hot.unwrap_or(false) {
                    if target.len() != 1 {
                        return Err(Error::value(
                            "data.target",
                            format!("{target:?}"),
                            "exactly one label column with data.one_hot = true",
                        ));
                    }
                    let v = d.one_hot_values.unwrap_or([1.0, 0.0]);
                    if !(v[0].is_finite() && v[1].is_finite() && v[0] != v[1]) {
                        return Err(Error::value(
                            "data.one_hot_values",
                            format!("{v:?}"),
                            "[on, off] with finite, different values",
                        ));
                    }
                    Some(v)
                } else {
                    only_for_one_hot("data.one_hot_values", d.one_hot_values.is_some())?;
                    only_for_one_hot("data.label_noise", d.label_noise.is_some())?;
                    None
                };
                DataKind::Csv {
                    path,
                    test_path: d.test_path.clone(),
                    target,
                    standardize: d.standardize.unwrap_or(true),
                    test_fraction,
                    shuffle: d.shuffle.unwrap_or(true),
                    one_hot,
                    feature_scale: positive("data.feature_scale", d.feature_scale.unwrap_or(1.0))?,
                }
            }
            other => {
                return Err(Error::value(
                    "data.kind",
                    format!("{other:?}"),
                    "one of: sine, teacher, csv, text",
                ))
            }
        };
        let synthetic = matches!(
            kind,
            DataKind::Sine { .. } | DataKind::Teacher { .. } | DataKind::Text { .. }
        );
        let n_train = match d.n_train {
            Some(n) => Some(at_least("data.n_train", n, 1)?),
            None if synthetic => Some(32),
            None => None,
        };
        let n_test = match d.n_test {
            Some(n) => Some(n),
            None if synthetic => Some(256),
            None => None,
        };
        let label_noise = d.label_noise.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&label_noise) {
            return Err(Error::value(
                "data.label_noise",
                label_noise,
                "a fraction in [0, 1]",
            ));
        }
        if !matches!(
            kind,
            DataKind::Csv {
                one_hot: Some(_),
                ..
            }
        ) && d.label_noise.is_some()
        {
            return Err(Error::value(
                "data.label_noise",
                label_noise,
                "only valid with data.kind = \"csv\" and data.one_hot = true",
            ));
        }
        let data = DataConfig {
            kind,
            n_train,
            n_test,
            noise,
            label_noise,
        };

        // --- model
        let m = &self.model;
        let activation = match m
            .activation
            .clone()
            .unwrap_or(ActivationSpec::Name("relu".into()))
        {
            ActivationSpec::Name(n) => Activation::parse(&n, None).ok_or_else(|| {
                Error::value(
                    "model.activation",
                    format!("{n:?}"),
                    format!("one of: {}", Activation::NAMES),
                )
            })?,
            ActivationSpec::Table { name, alpha } => {
                if alpha.is_some() && name != "leaky_relu" {
                    return Err(Error::value(
                        "model.activation.alpha",
                        alpha.unwrap_or_default(),
                        "only for name = \"leaky_relu\"",
                    ));
                }
                if let Some(a) = alpha {
                    if !a.is_finite() {
                        return Err(Error::value("model.activation.alpha", a, "a finite number"));
                    }
                }
                Activation::parse(&name, alpha).ok_or_else(|| {
                    Error::value(
                        "model.activation",
                        format!("{name:?}"),
                        format!("one of: {}", Activation::NAMES),
                    )
                })?
            }
        };
        let parametrization_name = m.parametrization.clone().unwrap_or_else(|| "ntk".into());
        let parametrization = Parametrization::parse(&parametrization_name).ok_or_else(|| {
            Error::value(
                "model.parametrization",
                format!("{parametrization_name:?}"),
                format!("one of: {}", Parametrization::NAMES),
            )
        })?;
        let precision_name = m.precision.clone().unwrap_or_else(|| "f32".into());
        let precision = Precision::parse(&precision_name).ok_or_else(|| {
            Error::value(
                "model.precision",
                format!("{precision_name:?}"),
                "one of: f32, f64",
            )
        })?;
        let backend_name = m.backend.clone().unwrap_or_else(|| "flex".into());
        let backend = Backend::parse(&backend_name).ok_or_else(|| {
            Error::value(
                "model.backend",
                format!("{backend_name:?}"),
                format!(
                    "one of: {} (wgpu and cuda need the cargo features of the same names)",
                    Backend::names()
                ),
            )
        })?;
        let model = ModelSettings {
            width: at_least("model.width", m.width.unwrap_or(512), 1)?,
            depth: at_least("model.depth", m.depth.unwrap_or(2), 1)?,
            activation,
            w_std: positive("model.w_std", m.w_std.unwrap_or(std::f64::consts::SQRT_2))?,
            b_std: non_negative("model.b_std", m.b_std.unwrap_or(0.1))?,
            bias: m.bias.unwrap_or(true),
            parametrization,
            precision,
            backend,
        };
        if model.width > 1 << 20 {
            return Err(Error::value(
                "model.width",
                model.width,
                "an integer in [1, 1048576]",
            ));
        }
        if model.depth > 64 {
            return Err(Error::value(
                "model.depth",
                model.depth,
                "an integer in [1, 64]",
            ));
        }

        // --- training
        let t = &self.training;
        let learning_rate = match (t.learning_rate, t.lr_scale) {
            (Some(_), Some(_)) => {
                return Err(Error::value(
                    "training.lr_scale",
                    t.lr_scale.unwrap_or_default(),
                    "either training.learning_rate or training.lr_scale, not both",
                ))
            }
            (_, Some(s)) => LearningRate::CriticalMultiple(positive("training.lr_scale", s)?),
            (lr, None) => {
                LearningRate::Absolute(positive("training.learning_rate", lr.unwrap_or(1.0))?)
            }
        };
        let momentum = t.momentum.unwrap_or(0.0);
        if !(momentum.is_finite() && (0.0..1.0).contains(&momentum)) {
            return Err(Error::value(
                "training.momentum",
                momentum,
                "a number in [0, 1)",
            ));
        }
        let steps = t.steps.unwrap_or(1000);
        if steps > 100_000_000 {
            return Err(Error::value(
                "training.steps",
                steps,
                "an integer in [0, 100000000]",
            ));
        }
        let batch_size = match t.batch_size {
            Some(b) => {
                let b = at_least("training.batch_size", b, 1)?;
                if let Some(n) = n_train {
                    if b > n {
                        return Err(Error::value(
                            "training.batch_size",
                            b,
                            format!("an integer in [1, data.n_train = {n}]"),
                        ));
                    }
                }
                Some(b)
            }
            None => None,
        };
        let training = TrainingConfig {
            learning_rate,
            steps,
            batch_size,
            momentum,
            center_outputs: t.center_outputs.unwrap_or(false),
            max_loss: positive("training.max_loss", t.max_loss.unwrap_or(1e10))?,
            loss: match t.loss.as_deref().unwrap_or("mse") {
                "mse" => crate::dynamics::Loss::Mse,
                "cross_entropy" => crate::dynamics::Loss::CrossEntropy,
                other => {
                    return Err(Error::value(
                        "training.loss",
                        format!("{other:?}"),
                        "one of: mse, cross_entropy",
                    ))
                }
            },
        };

        if training.center_outputs && training.loss == crate::dynamics::Loss::CrossEntropy {
            return Err(Error::value(
                "training.center_outputs",
                true,
                "false with training.loss = \"cross_entropy\" (targets must stay probabilities)",
            ));
        }

        // --- kernel
        let k = &self.kernel;
        let names = k
            .solutions
            .clone()
            .unwrap_or_else(|| vec!["analytic".into(), "empirical".into()]);
        let mut solutions = Vec::new();
        for n in &names {
            let s = match n.as_str() {
                "analytic" => KernelSolution::Analytic,
                "empirical" => KernelSolution::Empirical,
                other => {
                    return Err(Error::value(
                        "kernel.solutions",
                        format!("{other:?}"),
                        "a list of: analytic, empirical",
                    ))
                }
            };
            if solutions.contains(&s) {
                return Err(Error::value(
                    "kernel.solutions",
                    format!("{n:?}"),
                    "each solution at most once",
                ));
            }
            solutions.push(s);
        }
        if parametrization == Parametrization::Mup && solutions.contains(&KernelSolution::Analytic)
        {
            return Err(Error::value("kernel.solutions", format!("{names:?}"), "[\"empirical\"] with model.parametrization = \"mup\" (mup has no infinite-width NTK)"));
        }
        let time_name = k.time.clone().unwrap_or_else(|| "discrete".into());
        let time = match time_name.as_str() {
            "discrete" => TimeMode::Discrete,
            "continuous" => TimeMode::Continuous,
            other => {
                return Err(Error::value(
                    "kernel.time",
                    format!("{other:?}"),
                    "one of: discrete, continuous",
                ))
            }
        };
        let form_name = k.form.clone().unwrap_or_else(|| "full".into());
        let form = KernelForm::parse(&form_name).ok_or_else(|| {
            Error::value(
                "kernel.form",
                format!("{form_name:?}"),
                format!("one of: {}", KernelForm::NAMES),
            )
        })?;
        let probe_size = at_least("kernel.probe_size", k.probe_size.unwrap_or(64), 1)?;
        if let (Some(n), Some(p)) = (n_train, k.probe_size) {
            if p > n {
                return Err(Error::value(
                    "kernel.probe_size",
                    p,
                    format!("an integer in [1, data.n_train = {n}]"),
                ));
            }
        }
        let quadrature_order = k.quadrature_order.unwrap_or(DEFAULT_ORDER);
        if !(2..=512).contains(&quadrature_order) {
            return Err(Error::value(
                "kernel.quadrature_order",
                quadrature_order,
                "an integer in [2, 512]",
            ));
        }
        let kernel = KernelConfig {
            solutions,
            time,
            diag_reg: DiagReg {
                value: non_negative("kernel.diag_reg", k.diag_reg.unwrap_or(0.0))?,
                absolute: k.diag_reg_absolute.unwrap_or(false),
            },
            probe_size,
            form,
            quadrature_order,
            block_size: match k.block_size {
                Some(b) => Some(at_least("kernel.block_size", b, 1)?),
                None => None,
            },
        };

        // --- logging
        let every = self.logging.every.unwrap_or(10);
        if every == 0 {
            return Err(Error::value("logging.every", 0, "an integer >= 1"));
        }
        let kernel_every = self.logging.kernel_every.unwrap_or(50.max(every));
        if kernel_every == 0 || !kernel_every.is_multiple_of(every) {
            return Err(Error::value(
                "logging.kernel_every",
                kernel_every,
                format!("a positive multiple of logging.every = {every}"),
            ));
        }
        let logging = LoggingConfig {
            every,
            kernel_every,
        };

        let outputs = OutputsConfig {
            dir: self
                .outputs
                .dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("results")),
            save_kernels: self.outputs.save_kernels.unwrap_or(false),
        };

        let mut exp = Experiment {
            name: e.name.clone(),
            seed,
            data,
            model,
            training,
            kernel,
            logging,
            outputs,
            resolved: ConfigSpec::default(),
        };
        exp.resolved = exp.to_spec();
        Ok(exp)
    }
}

impl Experiment {
    /// The config with every default filled in.
    pub fn to_spec(&self) -> ConfigSpec {
        let (
            kind,
            frequency,
            interval,
            input_dim,
            teacher_width,
            path,
            test_path,
            target,
            standardize,
            test_fraction,
            shuffle,
        ) = match &self.data.kind {
            DataKind::Sine {
                frequency,
                interval,
            } => (
                "sine",
                Some(*frequency),
                Some(*interval),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            ),
            DataKind::Teacher {
                input_dim,
                teacher_width,
            } => (
                "teacher",
                None,
                None,
                Some(*input_dim),
                Some(*teacher_width),
                None,
                None,
                None,
                None,
                None,
                None,
            ),
            DataKind::Csv {
                path,
                test_path,
                target,
                standardize,
                test_fraction,
                shuffle,
                ..
            } => (
                "csv",
                None,
                None,
                None,
                None,
                Some(path.clone()),
                test_path.clone(),
                Some(target.clone()),
                Some(*standardize),
                Some(*test_fraction),
                Some(*shuffle),
            ),
            DataKind::Text {
                path,
                test_fraction,
                ..
            } => (
                "text",
                None,
                None,
                None,
                None,
                Some(path.clone()),
                None,
                None,
                None,
                Some(*test_fraction),
                None,
            ),
        };
        let m = &self.model;
        let activation = match m.activation {
            Activation::LeakyRelu { alpha } => ActivationSpec::Table {
                name: "leaky_relu".into(),
                alpha: Some(alpha),
            },
            a => ActivationSpec::Name(a.name().into()),
        };
        let (learning_rate, lr_scale) = match self.training.learning_rate {
            LearningRate::Absolute(v) => (Some(v), None),
            LearningRate::CriticalMultiple(s) => (None, Some(s)),
        };
        ConfigSpec {
            sweep: None,
            experiment: ExperimentSpec {
                name: self.name.clone(),
                seed: Some(self.seed),
            },
            data: DataSpec {
                kind: kind.into(),
                n_train: self.data.n_train,
                n_test: self.data.n_test,
                noise: Some(self.data.noise),
                frequency,
                interval,
                input_dim,
                teacher_width,
                path,
                test_path,
                target,
                standardize,
                test_fraction,
                shuffle,
                feature_scale: match self.data.kind {
                    DataKind::Csv { feature_scale, .. } => Some(feature_scale),
                    _ => None,
                },
                one_hot: matches!(
                    self.data.kind,
                    DataKind::Csv {
                        one_hot: Some(_),
                        ..
                    }
                )
                .then_some(true),
                one_hot_values: match self.data.kind {
                    DataKind::Csv { one_hot, .. } => one_hot,
                    _ => None,
                },
                label_noise: matches!(
                    self.data.kind,
                    DataKind::Csv {
                        one_hot: Some(_),
                        ..
                    }
                )
                .then_some(self.data.label_noise),
                context: match self.data.kind {
                    DataKind::Text { context, .. } => Some(context),
                    _ => None,
                },
                lowercase: match self.data.kind {
                    DataKind::Text { lowercase, .. } => Some(lowercase),
                    _ => None,
                },
            },
            model: ModelSpec {
                width: Some(m.width),
                depth: Some(m.depth),
                activation: Some(activation),
                w_std: Some(m.w_std),
                b_std: Some(m.b_std),
                bias: Some(m.bias),
                parametrization: Some(m.parametrization.name().into()),
                precision: Some(m.precision.name().into()),
                backend: Some(m.backend.name().into()),
            },
            training: TrainingSpec {
                learning_rate,
                lr_scale,
                steps: Some(self.training.steps),
                batch_size: self.training.batch_size,
                momentum: Some(self.training.momentum),
                center_outputs: Some(self.training.center_outputs),
                max_loss: Some(self.training.max_loss),
                loss: Some(self.training.loss.name().into()),
            },
            kernel: KernelSpec {
                solutions: Some(
                    self.kernel
                        .solutions
                        .iter()
                        .map(|s| s.name().to_string())
                        .collect(),
                ),
                time: Some(
                    match self.kernel.time {
                        TimeMode::Discrete => "discrete",
                        TimeMode::Continuous => "continuous",
                    }
                    .into(),
                ),
                diag_reg: Some(self.kernel.diag_reg.value),
                diag_reg_absolute: Some(self.kernel.diag_reg.absolute),
                probe_size: Some(self.kernel.probe_size),
                form: Some(self.kernel.form.name().into()),
                quadrature_order: Some(self.kernel.quadrature_order),
                block_size: self.kernel.block_size,
            },
            logging: LoggingSpec {
                every: Some(self.logging.every),
                kernel_every: Some(self.logging.kernel_every),
            },
            outputs: OutputsSpec {
                dir: Some(self.outputs.dir.clone()),
                save_kernels: Some(self.outputs.save_kernels),
            },
        }
    }

    /// The resolved config as TOML text.
    pub fn resolved_toml(&self) -> String {
        toml::to_string(&self.resolved)
            .unwrap_or_else(|e| format!("# could not serialise the config: {e}\n"))
    }
}
