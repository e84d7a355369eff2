//! The user's TOML schema: plain serde types with `deny_unknown_fields` and typed enum fields.
//! Absent keys are `None`; their defaults live in `defaults.rs` and are filled in by the
//! per-section `check()` functions of `check.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::backend::{Backend, Precision};
use crate::dynamics::kernel::TimeMode;
use crate::dynamics::Loss;
use crate::model::{Activation, Parametrization};
use crate::ntk::KernelForm;

/// Which kernel drives a kernel-regression track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelSolution {
    /// Analytic infinite-width NTK Θ∞.
    Analytic,
    /// Empirical NTK at initialisation Θ0.
    Empirical,
    /// Analytic infinite-width NNGP K∞ (gradient descent on the readout of an infinitely wide
    /// network: the NNGP kernel regression of Lee et al. 2019).
    Nngp,
}

/// Where the kernel-regression tracks start (`kernel.initial_outputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InitialOutputs {
    /// From the network's own outputs at initialisation, `f(·; θ0)`: the linearization of this
    /// network, paired with it (Lee et al. 2019).
    #[default]
    Network,
    /// From zero: plain kernel regression, as neural-tangents' `predict` functions compute with
    /// their default `fx_train_0 = 0`; for the analytic kernels the mean over initialisations of
    /// infinitely wide networks (Lee et al. 2019).
    Zero,
}

impl InitialOutputs {
    /// Whether this is the default, `network`.
    pub fn is_network(&self) -> bool {
        *self == InitialOutputs::Network
    }

    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            InitialOutputs::Network => "network",
            InitialOutputs::Zero => "zero",
        }
    }
}

/// How the kernel tracks are solved (`kernel.solver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SolverChoice {
    /// Iterative above `defaults::AUTO_ITERATIVE_ROWS` kernel rows, exact below.
    #[default]
    Auto,
    /// One symmetric eigendecomposition of each dense train kernel.
    Exact,
    /// Stored kernels, Lanczos for time t, preconditioned CG for t = ∞.
    Iterative,
}

/// Where an iterative run keeps its kernels (`kernel.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorePlace {
    /// In memory when all stores fit in 40 % of the available memory, else on disk.
    #[default]
    Auto,
    /// In memory.
    Memory,
    /// Files in `kernel.store_dir`.
    Disk,
}

/// The whole config file as written by the user.
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// `[sweep]`: present only in sweep configs (see [`super::sweep`]).
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// `[ensemble]`: absent = one network.
    #[serde(default)]
    pub ensemble: Option<EnsembleSpec>,
    /// `[slurm]`: how `--slurm` submits a sweep (sweep configs only).
    #[serde(default)]
    pub slurm: Option<SlurmSpec>,
}

/// `[slurm]`: the job array `--slurm` submits (every key optional).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlurmSpec {
    /// Array size (default: one task per point); task `I` runs the points with index ≡ I mod N.
    pub tasks: Option<usize>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (Slurm's syntax, e.g. `"01:00:00"`).
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<usize>,
    /// `--mem` (Slurm's syntax, e.g. `"4G"`).
    pub mem: Option<String>,
    /// The array throttle `%N`: at most this many tasks at once.
    pub max_parallel: Option<usize>,
    /// Further `sbatch` arguments, passed verbatim.
    pub extra_args: Option<Vec<String>>,
}

/// `[ensemble]`: `members` networks that differ only in their initialisation seed
/// (`experiment.seed + m`), each trained with its own linearized twin, against the
/// infinite-width Gaussian process.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    /// Number of networks (required).
    pub members: Option<usize>,
    /// Members trained at the same time (default: as many as cores and memory allow).
    pub parallel: Option<usize>,
}

/// `[sweep]`: vary one or two keys over lists, each point repeated over seeds.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Repeats per point, seeds `experiment.seed + 0 … seeds − 1` (default 1; with `[ensemble]`
    /// of M members the repeats step by M).
    pub seeds: Option<u64>,
    /// Points run at the same time (default 1).
    pub parallel: Option<usize>,
    /// Dotted key → list of values, e.g. `"model.width" = [64, 128]` (one or two keys).
    pub vary: BTreeMap<String, Vec<toml::Value>>,
}

/// `[experiment]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Name of the experiment (a directory name under `outputs.dir`). Required.
    pub name: String,
    /// Seed of data, initialisation and minibatch order.
    pub seed: Option<u64>,
}

/// `[data]`, by `kind`; every kind has its own keys (a key of another kind is an error).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSpec {
    /// `y = sin(frequency · x)`.
    Sine(SineSpec),
    /// A random ReLU teacher on the sphere.
    Teacher(TeacherSpec),
    /// A CSV file.
    Csv(CsvSpec),
    /// Images and labels in IDX files.
    Idx(IdxSpec),
    /// NumPy arrays (`.npy` files or one `.npz` archive).
    Npy(NpySpec),
    /// Next-character prediction on a text file.
    Text(TextSpec),
}

/// `[data]` with `kind = "sine"`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SineSpec {
    /// Training points.
    pub n_train: Option<usize>,
    /// Test points (a grid over the interval).
    pub n_test: Option<usize>,
    /// Std of Gaussian noise on the training targets.
    pub noise: Option<f64>,
    /// ω in `y = sin(ω·x)`.
    pub frequency: Option<f64>,
    /// `[lo, hi]`.
    pub interval: Option<[f64; 2]>,
}

/// `[data]` with `kind = "teacher"`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeacherSpec {
    /// Training points.
    pub n_train: Option<usize>,
    /// Test points.
    pub n_test: Option<usize>,
    /// Std of Gaussian noise on the training targets.
    pub noise: Option<f64>,
    /// Input dimension d.
    pub input_dim: Option<usize>,
    /// Width of the teacher's hidden layer.
    pub teacher_width: Option<usize>,
}

/// `[data]` with `kind = "csv"`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    /// Cap on the training rows (default: all).
    pub n_train: Option<usize>,
    /// Cap on the test rows (default: all).
    pub n_test: Option<usize>,
    /// Std of Gaussian noise on the training targets.
    pub noise: Option<f64>,
    /// Data file (relative to the working directory). Required.
    pub path: Option<PathBuf>,
    /// A separate test file with the same header.
    pub test_path: Option<PathBuf>,
    /// Target column names. Required.
    pub target: Option<Vec<String>>,
    /// Feature column names (default: every column that is not a target).
    pub features: Option<Vec<String>>,
    /// Standardise features (and regression targets) with training statistics.
    pub standardize: Option<bool>,
    /// Held-out fraction when there is no `test_path`.
    pub test_fraction: Option<f64>,
    /// Shuffle rows before the split.
    pub shuffle: Option<bool>,
    /// Factor on every feature after loading (and standardising).
    pub feature_scale: Option<f64>,
    /// The single target column holds class labels, encoded one-hot.
    pub one_hot: Option<bool>,
    /// With `one_hot`: values of the true class and of the others.
    pub one_hot_values: Option<[f64; 2]>,
    /// With `one_hot`: fraction of training labels replaced by a random other class.
    pub label_noise: Option<f64>,
    /// Fraction of the training split held out for validation (early stopping), in [0, 1).
    pub validation_fraction: Option<f64>,
    /// `[height, width, channels]` of the image each row holds (row-major NHWC); needed by
    /// `model.architecture = "conv"`.
    pub image_shape: Option<[usize; 3]>,
}

/// `[data]` with `kind = "idx"`: images and labels in the IDX files of MNIST, Fashion-MNIST or
/// KMNIST (plain or gzip-compressed).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdxSpec {
    /// Training images. Required.
    pub train_images: Option<PathBuf>,
    /// Training labels. Required.
    pub train_labels: Option<PathBuf>,
    /// Test images. Required.
    pub test_images: Option<PathBuf>,
    /// Test labels. Required.
    pub test_labels: Option<PathBuf>,
    /// Training images used: a seeded random subset when fewer than the file holds (default all).
    pub n_train: Option<usize>,
    /// Test images used (default all).
    pub n_test: Option<usize>,
    /// `"unit"` (pixels / 255) or `"standardize"` (then per pixel with training statistics).
    pub scaling: Option<crate::data::PixelScaling>,
    /// Values of the true class and of the others.
    pub one_hot_values: Option<[f64; 2]>,
    /// Names of the classes 0, 1, ….
    pub class_names: Option<Vec<String>>,
    /// Fraction of the training images held out for validation, in [0, 1).
    pub validation_fraction: Option<f64>,
}

/// `[data]` with `kind = "npy"`: NumPy arrays, as `.npy` files or named arrays in one `.npz`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NpySpec {
    /// Cap on the training points (default: all).
    pub n_train: Option<usize>,
    /// Cap on the test points (default: all).
    pub n_test: Option<usize>,
    /// Std of Gaussian noise on the training targets.
    pub noise: Option<f64>,
    /// An `.npz` archive holding the arrays (then `x`, `y`, … name arrays in it).
    pub npz: Option<PathBuf>,
    /// Inputs: a `.npy` file, or with `npz` the array's name (default `"x"`).
    pub x: Option<String>,
    /// Targets: a `.npy` file, or with `npz` the array's name (default `"y"`).
    pub y: Option<String>,
    /// Test inputs (with `y_test`; default with `npz`: `"x_test"` when the archive has it).
    pub x_test: Option<String>,
    /// Test targets.
    pub y_test: Option<String>,
    /// Standardise features (and regression targets) with training statistics.
    pub standardize: Option<bool>,
    /// Held-out fraction when there are no test arrays.
    pub test_fraction: Option<f64>,
    /// Shuffle points before the split.
    pub shuffle: Option<bool>,
    /// Factor on every feature after loading (and standardising).
    pub feature_scale: Option<f64>,
    /// Class labels encoded one-hot (default: when `y` holds integers or bools, one per point).
    pub one_hot: Option<bool>,
    /// With `one_hot`: values of the true class and of the others.
    pub one_hot_values: Option<[f64; 2]>,
    /// With `one_hot`: fraction of training labels replaced by a random other class.
    pub label_noise: Option<f64>,
    /// Fraction of the training split held out for validation, in [0, 1).
    pub validation_fraction: Option<f64>,
    /// `[height, width, channels]` of a 2-d `x`'s rows (a 3-d or 4-d `x` gives its own).
    pub image_shape: Option<[usize; 3]>,
}

/// `[data]` with `kind = "text"`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Training contexts.
    pub n_train: Option<usize>,
    /// Test contexts.
    pub n_test: Option<usize>,
    /// Text file. Required.
    pub path: Option<PathBuf>,
    /// Characters of context.
    pub context: Option<usize>,
    /// Fold case.
    pub lowercase: Option<bool>,
    /// Held-out final fraction of the text.
    pub test_fraction: Option<f64>,
    /// Final fraction of the training part held out for validation (early stopping and the
    /// read-out temperature), in [0, 1).
    pub validation_fraction: Option<f64>,
    /// Validation contexts (default: `n_test`).
    pub n_val: Option<usize>,
}

/// `[model]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `mlp` (default) or `conv`.
    pub architecture: Option<ArchitectureName>,
    /// Conv only: square filter size (stride 1).
    pub filter: Option<usize>,
    /// Conv only: `same | valid`.
    pub padding: Option<crate::model::layers::Padding>,
    /// Conv only: `flatten | global_avg_pool`.
    pub readout: Option<crate::model::layers::Readout>,
    /// An explicit layer stack (residual blocks, strided convolutions, pooling, layer norm),
    /// instead of `depth` × [layer, activation]; see [`crate::model::blocks`].
    pub blocks: Option<Vec<crate::model::blocks::Block>>,
    /// Hidden width (channels of every convolution).
    pub width: Option<usize>,
    /// Hidden layers.
    pub depth: Option<usize>,
    /// Nonlinearity: a name or `{ name = "leaky_relu", alpha = 0.1 }`.
    pub activation: Option<Activation>,
    /// σ_w.
    pub w_std: Option<f64>,
    /// σ_b.
    pub b_std: Option<f64>,
    /// Biases.
    pub bias: Option<bool>,
    /// `ntk | standard | mup`.
    pub parametrization: Option<Parametrization>,
    /// `f32 | f64`.
    pub precision: Option<Precision>,
    /// `flex | ndarray` (and GPU backends when compiled in).
    pub backend: Option<Backend>,
}

/// `model.architecture`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ArchitectureName {
    /// Dense hidden layers.
    Mlp,
    /// Convolutional hidden layers.
    Conv,
}

/// `[training]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// SGD learning rate η.
    pub learning_rate: Option<f64>,
    /// Learning rate as a multiple of the critical rate η_c (instead of `learning_rate`).
    pub lr_scale: Option<f64>,
    /// Steps (0 computes kernels and initial predictions only).
    pub steps: Option<u64>,
    /// Minibatch size (absent = full batch).
    pub batch_size: Option<usize>,
    /// Heavy-ball momentum μ in [0, 1).
    pub momentum: Option<f64>,
    /// Every track learns `y` from a centred start `f − f0` (see `docs/conventions.md`).
    pub center_outputs: Option<bool>,
    /// A track whose training loss exceeds this (or is not finite) is marked diverged.
    pub max_loss: Option<f64>,
    /// Loss of the network and the linearized twin.
    pub loss: Option<Loss>,
    /// Where the linearized twin is computed: `function`, `parameter` or `auto` (default).
    pub twin: Option<crate::dynamics::TwinSpace>,
}

/// `[kernel]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Kernel-regression tracks.
    pub solutions: Option<Vec<KernelSolution>>,
    /// `discrete | continuous`.
    pub time: Option<TimeMode>,
    /// `network | zero`: where the kernel tracks start.
    pub initial_outputs: Option<InitialOutputs>,
    /// Diagonal regulariser, relative to trace(Θ)/n unless `diag_reg_absolute`.
    pub diag_reg: Option<f64>,
    /// Use `diag_reg` as an absolute value.
    pub diag_reg_absolute: Option<bool>,
    /// Training points on which kernel drift is measured.
    pub probe_size: Option<usize>,
    /// Multi-output kernel form: `full | trace`.
    pub form: Option<KernelForm>,
    /// Gauss–Legendre nodes per piece for activations without a closed form.
    pub quadrature_order: Option<usize>,
    /// Compute the empirical Θ0 in row blocks of this many points.
    pub block_size: Option<usize>,
    /// Training points the kernels are computed on (a seeded random subset; default: all):
    /// Θ0, the analytic kernels, the kernel tracks, η_c, the sharpness and every train-set
    /// figure. The network and its (parameter-space) twin still train on every point.
    pub train_subset: Option<usize>,
    /// `auto | exact | iterative`.
    pub solver: Option<SolverChoice>,
    /// Entry precision of stored kernels (iterative solver): `f64 | f32`.
    pub storage: Option<crate::store::StoragePrecision>,
    /// `auto | memory | disk`.
    pub store: Option<StorePlace>,
    /// Directory of the kernel stores on disk (default `<outputs.dir>/.kernel-store/<name>/<kernel identity>`).
    pub store_dir: Option<PathBuf>,
    /// Keep the stores after the run (default: removed when the run completes).
    pub keep_store: Option<bool>,
    /// Target of the estimated largest prediction error of the iterative solves.
    pub solver_tolerance: Option<f64>,
    /// Most operator products of each iterative solve.
    pub solver_max_iterations: Option<usize>,
    /// Rank of the Nyström preconditioner of the t = ∞ solve.
    pub preconditioner_rank: Option<usize>,
    /// Training points on which the iterative path estimates λ_max of the full kernel.
    pub sharpness_points: Option<usize>,
}

/// `[logging]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    /// Steps between checkpoints.
    pub every: Option<u64>,
    /// Steps between kernel checkpoints (a multiple of `every`).
    pub kernel_every: Option<u64>,
    /// Steps between input-sensitivity measurements (a multiple of `every`; default
    /// `kernel_every`).
    pub sensitivity_every: Option<u64>,
}

/// `[outputs]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsSpec {
    /// Results root.
    pub dir: Option<PathBuf>,
    /// Write kernels as `.npy`.
    pub save_kernels: Option<bool>,
    /// Write `predictions.csv`: `true`, `false`, or `"checkpoints"` (also every track's
    /// outputs at every checkpoint, `predictions_steps.npy`).
    pub save_predictions: Option<toml::Value>,
    /// Write Θ_t (train × train, test × train) at every kernel checkpoint.
    pub save_kernel_checkpoints: Option<bool>,
    /// Write θ0 and θ_final as `.npz` (one named array per layer, stax's layout).
    pub save_parameters: Option<bool>,
    /// Figure formats: `["png"]` or `["png", "svg"]`.
    pub formats: Option<Vec<super::ImageFormat>>,
}
