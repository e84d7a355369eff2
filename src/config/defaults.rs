//! Every default and range of the config in one place (documented in the table of
//! `docs/configuration.md`).

use crate::backend::{Backend, Precision};
use crate::dynamics::kernel::TimeMode;
use crate::dynamics::Loss;
use crate::model::{Activation, Parametrization};
use crate::ntk::KernelForm;

use super::schema::KernelSolution;

/// `experiment.seed`.
pub const SEED: u64 = 0;
/// Longest `experiment.name` (it becomes a directory name).
pub const MAX_NAME_LEN: usize = 128;

/// `data.frequency` (sine).
pub const SINE_FREQUENCY: f64 = 1.0;
/// `data.interval` (sine).
pub const SINE_INTERVAL: [f64; 2] = [-std::f64::consts::PI, std::f64::consts::PI];
/// `data.input_dim` (teacher).
pub const TEACHER_INPUT_DIM: usize = 16;
/// `data.teacher_width` (teacher).
pub const TEACHER_WIDTH: usize = 256;
/// `data.test_fraction` (csv without `test_path`).
pub const CSV_TEST_FRACTION: f64 = 0.2;
/// `data.one_hot_values` (csv).
pub const ONE_HOT_VALUES: [f64; 2] = [1.0, 0.0];
/// `data.context` (text).
pub const TEXT_CONTEXT: usize = 8;
/// `data.test_fraction` (text).
pub const TEXT_TEST_FRACTION: f64 = 0.1;

/// `model.width`.
pub const WIDTH: usize = 512;
/// Largest `model.width`.
pub const MAX_WIDTH: usize = 1 << 20;
/// `model.depth`.
pub const DEPTH: usize = 2;
/// Largest `model.depth`.
pub const MAX_DEPTH: usize = 64;
/// `model.filter` (conv).
pub const FILTER: usize = 3;
/// `model.padding`.
pub const PADDING: crate::model::layers::Padding = crate::model::layers::Padding::Same;
/// `model.readout`.
pub const READOUT: crate::model::layers::Readout = crate::model::layers::Readout::Flatten;
/// `model.activation`.
pub const ACTIVATION: Activation = Activation::Relu;
/// `model.w_std`.
pub const W_STD: f64 = std::f64::consts::SQRT_2;
/// `model.b_std`.
pub const B_STD: f64 = 0.1;
/// `model.bias`.
pub const BIAS: bool = true;
/// `model.parametrization`.
pub const PARAMETRIZATION: Parametrization = Parametrization::Ntk;
/// `model.precision`.
pub const PRECISION: Precision = Precision::F32;
/// `model.backend`.
pub const BACKEND: Backend = Backend::Flex;

/// `training.learning_rate`.
pub const LEARNING_RATE: f64 = 1.0;
/// `training.steps`.
pub const STEPS: u64 = 1000;
/// Largest `training.steps`.
pub const MAX_STEPS: u64 = 100_000_000;
/// `training.momentum`.
pub const MOMENTUM: f64 = 0.0;
/// `training.center_outputs`.
pub const CENTER_OUTPUTS: bool = false;
/// `training.max_loss`.
pub const MAX_LOSS: f64 = 1e10;
/// `training.loss`.
pub const LOSS: Loss = Loss::Mse;

/// `kernel.solutions`.
pub const SOLUTIONS: [KernelSolution; 2] = [KernelSolution::Analytic, KernelSolution::Empirical];
/// `kernel.time`.
pub const TIME: TimeMode = TimeMode::Discrete;
/// `kernel.diag_reg`.
pub const DIAG_REG: f64 = 0.0;
/// Largest relative `kernel.diag_reg` (λ = diag_reg · trace(Θ)/n).
pub const MAX_DIAG_REG: f64 = 1e6;
/// Largest absolute `kernel.diag_reg`.
pub const MAX_DIAG_REG_ABSOLUTE: f64 = 1e100;
/// `kernel.diag_reg_absolute`.
pub const DIAG_REG_ABSOLUTE: bool = false;
/// `kernel.probe_size` (capped at the number of training points).
pub const PROBE_SIZE: usize = 64;
/// `kernel.form`.
pub const FORM: KernelForm = KernelForm::Full;
/// `kernel.quadrature_order`.
pub const QUADRATURE_ORDER: usize = crate::ntk::quadrature::DEFAULT_ORDER;
/// Range of `kernel.quadrature_order`.
pub const QUADRATURE_ORDERS: std::ops::RangeInclusive<usize> = 2..=512;

/// `logging.every`.
pub const EVERY: u64 = 10;
/// `logging.kernel_every` (at least `every`).
pub const KERNEL_EVERY: u64 = 50;

/// `outputs.dir`.
pub const OUTPUT_DIR: &str = "results";
/// `outputs.save_kernels`.
pub const SAVE_KERNELS: bool = false;

/// Most networks in an ensemble.
pub const MAX_ENSEMBLE_MEMBERS: usize = 4096;

/// `kernel.solver = "auto"` solves iteratively above this many kernel rows (training points
/// times rows per point): the exact path's eigendecomposition of an `n × n` f64 matrix takes
/// minutes and `8n²` bytes from here on.
pub const AUTO_ITERATIVE_ROWS: usize = 8192;
/// Default `kernel.solver_tolerance` (output units; targets are O(1)).
pub const SOLVER_TOLERANCE: f64 = 1e-4;
/// Default `kernel.solver_max_iterations`.
pub const SOLVER_MAX_ITERATIONS: usize = 1000;
/// Default rows per block of a stored kernel.
pub const STORE_BLOCK_ROWS: usize = 1024;
/// Most rank of the default Nyström preconditioner (the default is `n/10` up to this).
pub const MAX_DEFAULT_PRECONDITIONER_RANK: usize = 3000;
/// Default `kernel.sharpness_points`.
pub const SHARPNESS_POINTS: usize = 2048;
