//! The user's TOML config: the schema ([`schema`], plain serde with typed enums), its defaults
//! (`defaults.rs`), the validation of each section into a checked type (`check.rs`), line numbers
//! from the parser's spans (`spans.rs`) and sweep expansion ([`sweep`]).
//!
//! The checked [`Experiment`] is what the numerics consume, and it is itself `Serialize`: the
//! resolved `config.toml` (every default filled in) is written from it.

pub(crate) mod check;
pub(crate) mod defaults;
mod npy_check;
pub mod paths;
pub mod schema;
pub(crate) mod spans;
pub mod sweep;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use schema::{ConfigSpec, KernelSolution};
pub use spans::KeyLines;

use crate::data::{DataConfig, DataSource};
use crate::dynamics::kernel::{DiagReg, TimeMode};
use crate::dynamics::Loss;
use crate::model::ModelSettings;
use crate::ntk::KernelForm;
use crate::{Error, Result};
pub use schema::{InitialOutputs, SolverChoice, StorePlace};

impl KernelSolution {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            KernelSolution::Analytic => "analytic",
            KernelSolution::Empirical => "empirical",
            KernelSolution::Nngp => "nngp",
        }
    }
}

/// How the learning rate is given (config keys `learning_rate` or `lr_scale`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum LearningRate {
    /// η itself.
    #[serde(rename = "learning_rate")]
    Absolute(f64),
    /// η = scale · η_c with η_c the critical rate (see [`crate::run`]).
    #[serde(rename = "lr_scale")]
    CriticalMultiple(f64),
}

/// Checked `[training]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingConfig {
    /// Learning rate.
    #[serde(flatten)]
    pub learning_rate: LearningRate,
    /// Steps.
    pub steps: u64,
    /// Minibatch size (`None` = full batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Heavy-ball momentum μ.
    pub momentum: f64,
    /// Centre outputs.
    pub center_outputs: bool,
    /// Divergence bound on the training loss.
    pub max_loss: f64,
    /// Loss of network and twin.
    pub loss: Loss,
    /// Where the linearized twin is computed (absent from the resolved config when `auto`).
    #[serde(skip_serializing_if = "crate::dynamics::TwinSpace::is_auto")]
    pub twin: crate::dynamics::TwinSpace,
}

/// Checked `[kernel]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelConfig {
    /// Kernel tracks.
    pub solutions: Vec<KernelSolution>,
    /// Time mode.
    pub time: TimeMode,
    /// Where the kernel tracks start (written to the resolved config only when `zero`, so that
    /// the resolved configs of earlier runs stay byte for byte what they were).
    #[serde(skip_serializing_if = "InitialOutputs::is_network")]
    pub initial_outputs: InitialOutputs,
    /// Regulariser.
    #[serde(flatten)]
    pub diag_reg: DiagReg,
    /// Probe size (capped at the number of training points).
    pub probe_size: usize,
    /// Multi-output form.
    pub form: KernelForm,
    /// Quadrature order.
    pub quadrature_order: usize,
    /// Row-block size of the empirical kernel (None = all at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    /// Training points the kernels and train-set figures use (None = all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// The solver as written (`auto` is not written to the resolved config).
    #[serde(skip_serializing_if = "SolverChoice::is_auto")]
    pub solver: SolverChoice,
    /// The iterative solver's settings as checked (written through `plan`).
    #[serde(skip)]
    pub iterative: IterativeSettings,
    /// The iterative solver's settings once the data decided that this run is iterative
    /// ([`Experiment::resolved_for`]); written to the resolved config only then.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub plan: Option<IterativeSettings>,
}

/// Settings of the iterative kernel solver (`[kernel]` keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IterativeSettings {
    /// Entry precision of the stores.
    pub storage: crate::store::StoragePrecision,
    /// Memory or disk.
    pub store: StorePlace,
    /// Directory of stores on disk (None: `<outputs.dir>/.kernel-store/<name>/<kernel identity>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_dir: Option<PathBuf>,
    /// Keep the stores after the run.
    pub keep_store: bool,
    /// Target of the estimated largest prediction error.
    pub solver_tolerance: f64,
    /// Most operator products per solve.
    pub solver_max_iterations: usize,
    /// Nyström preconditioner rank (None: by the number of points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditioner_rank: Option<usize>,
    /// Training points (the first ones) on which λ_max of the full kernel — η_c and the
    /// sharpness — is estimated.
    pub sharpness_points: usize,
}

impl SolverChoice {
    /// Whether this is `auto`.
    pub fn is_auto(&self) -> bool {
        *self == SolverChoice::Auto
    }
}

/// Checked `[logging]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoggingConfig {
    /// Steps between checkpoints.
    pub every: u64,
    /// Steps between kernel checkpoints.
    pub kernel_every: u64,
    /// Steps between input-sensitivity measurements.
    pub sensitivity_every: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `outputs.save_predictions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictions {
    /// `false`: no `predictions.csv`.
    Off,
    /// `true` (the default): `predictions.csv`, every track's final outputs.
    Final,
    /// `"checkpoints"`: `predictions.csv` and every track's outputs at every checkpoint
    /// (`predictions_steps.npy`).
    Checkpoints,
}

impl Predictions {
    /// Whether `predictions.csv` is written.
    pub fn csv(self) -> bool {
        self != Predictions::Off
    }

    /// Whether this is the default.
    pub fn is_final(&self) -> bool {
        *self == Predictions::Final
    }
}

impl Serialize for Predictions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Predictions::Off => s.serialize_bool(false),
            Predictions::Final => s.serialize_bool(true),
            Predictions::Checkpoints => s.serialize_str("checkpoints"),
        }
    }
}

/// Checked `[outputs]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputsConfig {
    /// Results root.
    pub dir: PathBuf,
    /// Save kernels.
    pub save_kernels: bool,
    /// Which predictions are written (`save_predictions`; in the resolved config only when not
    /// the default).
    #[serde(
        rename = "save_predictions",
        skip_serializing_if = "Predictions::is_final"
    )]
    pub predictions: Predictions,
    /// Write Θ_t at every kernel checkpoint (written to the resolved config only when true).
    #[serde(skip_serializing_if = "is_false")]
    pub save_kernel_checkpoints: bool,
    /// Write θ0 and θ_final as `.npz` (written to the resolved config only when true).
    #[serde(skip_serializing_if = "is_false")]
    pub save_parameters: bool,
    /// Figure formats (PNG always; SVG optionally).
    pub formats: Vec<ImageFormat>,
}

/// Checked `[ensemble]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EnsembleConfig {
    /// Number of networks.
    pub members: usize,
    /// Members trained at the same time (None: as many as cores and memory allow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
}

/// An image file format of the figures (`outputs.formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG (raster).
    Png,
    /// SVG (vector, font embedded).
    Svg,
}

impl ImageFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

/// A validated experiment: what the numerics consume. Serialises as the resolved config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// Seed of data, initialisation and minibatch order.
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
    /// An ensemble of networks against the infinite-width GP (None: one network).
    pub ensemble: Option<EnsembleConfig>,
    /// `[slurm]` of a single run: how `--slurm` submits its kernel blocks (not part of the
    /// resolved config: it changes where, not what, is computed).
    pub slurm: Option<schema::SlurmSpec>,
}

impl Serialize for Experiment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Id<'a> {
            name: &'a str,
            seed: u64,
        }
        #[derive(Serialize)]
        struct File<'a> {
            experiment: Id<'a>,
            data: &'a DataConfig,
            model: &'a ModelSettings,
            training: &'a TrainingConfig,
            kernel: &'a KernelConfig,
            logging: &'a LoggingConfig,
            outputs: &'a OutputsConfig,
            #[serde(skip_serializing_if = "Option::is_none")]
            ensemble: Option<&'a EnsembleConfig>,
        }
        File {
            experiment: Id {
                name: &self.name,
                seed: self.seed,
            },
            data: &self.data,
            model: &self.model,
            training: &self.training,
            kernel: &self.kernel,
            logging: &self.logging,
            outputs: &self.outputs,
            ensemble: self.ensemble.as_ref(),
        }
        .serialize(s)
    }
}

impl Experiment {
    /// The kernel rows of this experiment on `data` (training points of the kernel view times
    /// rows per point).
    pub fn kernel_rows(&self, data: &crate::data::Dataset) -> usize {
        let n = self
            .kernel
            .train_subset
            .map_or(data.n_train(), |m| m.min(data.n_train()));
        n * self.kernel.form.rows_per_point(data.n_outputs)
    }

    /// Whether the kernel tracks of this experiment on `data` are solved iteratively.
    pub fn iterative_for(&self, data: &crate::data::Dataset) -> bool {
        match self.kernel.solver {
            SolverChoice::Exact => false,
            SolverChoice::Iterative => true,
            SolverChoice::Auto => self.kernel_rows(data) > defaults::AUTO_ITERATIVE_ROWS,
        }
    }

    /// The experiment as it runs on `data`: with the iterative solver's settings resolved
    /// (store directory, block rows, preconditioner rank) when the kernel tracks are solved
    /// iteratively, and the combinations that path cannot serve refused with the reason.
    pub fn resolved_for(&self, data: &crate::data::Dataset) -> Result<Experiment> {
        let mut exp = self.clone();
        if !self.iterative_for(data) {
            return Ok(exp);
        }
        let rows = self.kernel_rows(data);
        let why = |key: &str, value: String, allowed: &str| -> Error {
            Error::value(
                key,
                value,
                format!("{allowed} when the kernel tracks are solved iteratively ({rows} kernel rows; kernel.solver = \"exact\" keeps the eigendecomposition path up to what memory allows)"),
            )
        };
        if self.kernel.form == KernelForm::Full && data.n_outputs > 1 {
            return Err(why(
                "kernel.form",
                "\"full\"".into(),
                "\"trace\" (the output-averaged kernel; the parameter-space twin stays the exact linearization)",
            ));
        }
        if self.ensemble.is_some() {
            return Err(why(
                "ensemble",
                "[ensemble]".into(),
                "no [ensemble] (its Gaussian process needs the eigendecomposition)",
            ));
        }
        if self.training.twin == crate::dynamics::TwinSpace::Function {
            return Err(why("training.twin", "\"function\"".into(), "\"parameter\" or \"auto\" (the function-space twin needs Θ0 between all points as a dense matrix)"));
        }
        if self.outputs.save_kernels {
            return Err(why("outputs.save_kernels", "true".into(), "false (the kernels live in the store; kernel.keep_store = true keeps its block files)"));
        }
        if self.outputs.save_kernel_checkpoints {
            return Err(why("outputs.save_kernel_checkpoints", "true".into(), "false (Θ_t between all training points is the kernel this path never forms; the probe-set figures stay)"));
        }
        let mut plan = self.kernel.iterative.clone();
        let n = rows / self.kernel.form.rows_per_point(data.n_outputs).max(1);
        plan.preconditioner_rank = Some(
            plan.preconditioner_rank
                .unwrap_or((n / 10).clamp(1, defaults::MAX_DEFAULT_PRECONDITIONER_RANK)),
        );
        if plan.store_dir.is_none() && plan.store != StorePlace::Memory {
            plan.store_dir = Some(self.outputs.dir.join(".kernel-store").join(&self.name));
        }
        exp.kernel.block_size = Some(self.kernel.block_size.unwrap_or(defaults::STORE_BLOCK_ROWS));
        exp.kernel.solver = SolverChoice::Iterative;
        exp.kernel.plan = Some(plan);
        Ok(exp)
    }

    /// The resolved config (every default filled in) as TOML text.
    pub fn resolved_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialise the config: {e}\n"))
    }
}

impl ConfigSpec {
    /// Validates every section into an [`Experiment`] (file and line are added by [`parse_str`]).
    pub fn check(&self) -> Result<Experiment> {
        let (name, seed) = self.experiment.check()?;
        let data = self.data.check()?;
        let image = match &data.source {
            DataSource::Csv(c) => c.image_shape,
            DataSource::Idx(c) => Some(c.image_shape),
            DataSource::Npy(c) => c.image_shape,
            _ => None,
        };
        let model = self.model.check(image)?;
        let training = self.training.check(data.n_train)?;
        let kernel = self.kernel.check(model.parametrization, data.n_train)?;
        let ensemble = self
            .ensemble
            .as_ref()
            .map(|e| e.check(&model, &training))
            .transpose()?;
        if training.center_outputs && kernel.initial_outputs == InitialOutputs::Zero {
            return Err(Error::value(
                "kernel.initial_outputs",
                "zero",
                "\"network\" with training.center_outputs = true (centred outputs already start every track, the kernel tracks included, at zero)",
            ));
        }
        if let Some(m) = kernel.train_subset {
            check::train_subset(m, &training, &kernel, ensemble.is_some(), data.n_train)?;
        }
        Ok(Experiment {
            name,
            seed,
            data,
            model,
            training,
            kernel,
            logging: self.logging.check()?,
            outputs: self.outputs.check()?,
            ensemble,
            slurm: self.slurm.clone().map(sweep::check_slurm).transpose()?,
        })
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Experiment> {
    let text = read_config(path)?;
    parse_str(&text, Some(path))
}

/// The text of a config file (a file that cannot be read is bad input, not a failure).
pub fn read_config(path: &Path) -> Result<String> {
    crate::data::read_text_capped(path, crate::data::MAX_CONFIG_BYTES, "config").map_err(|m| {
        Error::ConfigParse {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: m,
        }
    })
}

/// Parses and validates config text; `file` names it in error messages, and its directory is
/// the base of relative paths ([`paths`]).
pub fn parse_str(text: &str, file: Option<&Path>) -> Result<Experiment> {
    parse_str_noted(text, file).map(|(exp, _)| exp)
}

/// [`parse_str`], with the notes on how paths were read (a config written before relative paths
/// followed the config file).
pub fn parse_str_noted(text: &str, file: Option<&Path>) -> Result<(Experiment, Vec<String>)> {
    let lines = KeyLines::new(text);
    let mut spec: ConfigSpec = toml::from_str(text).map_err(|e| {
        let e = data_table_error(text, &e).unwrap_or(e);
        blame_array_of_wrong_length(parse_error(&e, &lines, file), text, &lines)
    })?;
    let notes = spec.rebase(&paths::base_of(file));
    let exp = spec.check().map_err(|e| locate(e, &lines, file))?;
    Ok((exp, notes))
}

/// A parser error with the file and the dotted key it concerns (when it can be found).
pub fn parse_error(e: &toml::de::Error, lines: &KeyLines, file: Option<&Path>) -> Error {
    let mut key = e.span().and_then(|s| lines.path_at(s.start));
    // serde names an unknown or missing field only in its message.
    if let Some(field) = quoted_field(e.message()) {
        let candidate = match &key {
            Some(k) => format!("{k}.{field}"),
            None => field.to_string(),
        };
        if lines.line_of_dotted(&candidate).is_some() || key.is_none() {
            key = Some(candidate);
        }
    }
    let line = key
        .as_deref()
        .and_then(|k| lines.line_of_dotted(k))
        .or_else(|| e.span().map(|s| lines.line_of_offset(s.start)));
    Error::ConfigParse {
        file: file_name(file),
        line,
        key,
        message: e.to_string().trim_end().to_string(),
    }
}

/// serde reads `[data]` (tagged by `kind`) through a buffer that drops positions, so a value of
/// the wrong type inside it is reported at the table. This reads the table again as its kind's
/// own struct, which keeps the position of the offending key; `None` when that finds nothing
/// (the original error stands).
pub fn data_table_error(text: &str, original: &toml::de::Error) -> Option<toml::de::Error> {
    use serde::Deserialize;
    use toml::de::{DeTable, DeValue, ValueDeserializer};
    fn read<'i, T: Deserialize<'i>>(value: toml::Spanned<DeValue<'i>>) -> Option<toml::de::Error> {
        T::deserialize(ValueDeserializer::from(value)).err()
    }
    let blamed = KeyLines::new(text).path_at(original.span()?.start)?;
    if blamed != "data" {
        return None;
    }
    let mut doc = DeTable::parse(text).ok()?.into_inner();
    let data = doc.remove("data")?;
    let span = data.span();
    let DeValue::Table(mut table) = data.into_inner() else {
        return None;
    };
    let DeValue::String(kind) = table.remove("kind")?.into_inner() else {
        return None;
    };
    let value = toml::Spanned::new(span, DeValue::Table(table));
    let mut error = match kind.as_ref() {
        "sine" => read::<schema::SineSpec>(value),
        "teacher" => read::<schema::TeacherSpec>(value),
        "csv" => read::<schema::CsvSpec>(value),
        "idx" => read::<schema::IdxSpec>(value),
        "npy" => read::<schema::NpySpec>(value),
        "text" => read::<schema::TextSpec>(value),
        _ => None,
    }?;
    error.set_input(Some(text));
    Some(error)
}

/// serde reports an array of the wrong length (`interval = [0, 1, 2]`) without its position,
/// so the error lands on the enclosing table; when exactly one array of that table has the
/// length the message names, the error is moved to that key and its line.
fn blame_array_of_wrong_length(e: Error, text: &str, lines: &KeyLines) -> Error {
    use toml::de::{DeTable, DeValue};
    let Error::ConfigParse {
        file,
        line,
        key: Some(table),
        message,
    } = e
    else {
        return e;
    };
    let culprit = (|| {
        let found: usize = message
            .split("invalid length ")
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        let doc = DeTable::parse(text).ok()?.into_inner();
        let DeValue::Table(t) = doc.get(table.as_str())?.get_ref() else {
            return None;
        };
        let mut keys = t.iter().filter_map(|(k, v)| match v.get_ref() {
            DeValue::Array(a) if a.len() == found => Some(k.get_ref().to_string()),
            _ => None,
        });
        let key = keys.next()?;
        keys.next().is_none().then(|| format!("{table}.{key}"))
    })();
    match culprit {
        Some(key) => {
            let at = lines.line_of_dotted(&key).or(line);
            // toml's snippet points at the table header; show the array's own line instead.
            let message = match at.and_then(|l| text.lines().nth(l.checked_sub(1)?)) {
                Some(source) => {
                    let what = message.trim_end().lines().last().unwrap_or_default();
                    let l = at.unwrap_or_default();
                    let pad = " ".repeat(l.to_string().len());
                    let leading = source.len() - source.trim_start().len();
                    let name_len = source
                        .trim_start()
                        .split(['=', ' '])
                        .next()
                        .map_or(1, str::len);
                    format!(
                        "TOML parse error at line {l}\n{pad} |\n{l} | {source}\n{pad} | {}{}\n{what}",
                        " ".repeat(leading),
                        "^".repeat(name_len.max(1))
                    )
                }
                None => message,
            };
            Error::ConfigParse {
                file,
                line: at,
                key: Some(key),
                message,
            }
        }
        None => Error::ConfigParse {
            file,
            line,
            key: Some(table),
            message,
        },
    }
}

/// The field named in "unknown field `x`" / "missing field `x`" messages.
fn quoted_field(message: &str) -> Option<&str> {
    ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
}

/// Adds the file and the line of its key to a config value error.
pub fn locate(e: Error, lines: &KeyLines, file: Option<&Path>) -> Error {
    match e {
        Error::ConfigValue {
            key,
            value,
            allowed,
            line,
            ..
        } => Error::ConfigValue {
            file: file.map(Path::to_path_buf),
            // An entry of an array (`model.blocks[2].branch[0]`) is placed at its array.
            line: line
                .or_else(|| lines.line_of_dotted(&key))
                .or_else(|| lines.line_of_dotted(key.split('[').next().unwrap_or(&key))),
            key,
            value,
            allowed,
        },
        other => other,
    }
}

fn file_name(file: Option<&Path>) -> PathBuf {
    file.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("<config>"))
}
