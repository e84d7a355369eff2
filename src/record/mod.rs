//! Plain records of a run: what the numerics produced, consumed by the reporters. Values of
//! several tracks are keyed by [`Track`] ([`PerTrack`], [`PerPair`]), never by position; the
//! [`columns`] registry names every figure and says how to read it.

pub mod columns;
pub mod ensemble;
pub mod sweep;

/// What a run is estimated to need, as estimated before it ran (`run::memory::estimate`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Footprint {
    /// Peak resident memory, bytes.
    pub peak_bytes: u64,
    /// Bytes written to the run directory.
    pub disk_bytes: u64,
    /// Seconds, all phases together.
    pub seconds: f64,
    /// Seconds of each phase, under the names the run times them with (`timings_s`).
    pub phases: Vec<(String, f64)>,
    /// The largest parts of the peak, bytes.
    pub parts: Vec<(String, u64)>,
}

/// `predictions.csv` omits the input columns above this many inputs (what a run records of
/// its outputs, and so what the memory estimate counts).
pub const MAX_INPUT_COLUMNS: usize = 64;

use serde::{Deserialize, Serialize};

use crate::dynamics::Loss;
use crate::ntk::KernelForm;

/// A trained or solved track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// The burn network.
    Network,
    /// Its linearization at θ0.
    Linearized,
    /// The twin with the output-averaged kernel `Θ0_avg ⊗ I_K` (`kernel.form = "trace"`, K > 1):
    /// an approximation of the linearization, not the linearization itself.
    LinearizedAvg,
    /// Kernel regression with the analytic NTK Θ∞.
    KernelAnalytic,
    /// Kernel regression with the empirical NTK Θ0.
    KernelEmpirical,
    /// Kernel regression with the output-averaged empirical NTK `Θ0_avg ⊗ I_K` (an
    /// approximation of [`Track::KernelEmpirical`] for K > 1).
    KernelEmpiricalAvg,
    /// Kernel regression with the analytic NNGP K∞.
    KernelNngp,
}

impl Track {
    /// Every track, in column order.
    pub const ALL: [Track; 7] = [
        Track::Network,
        Track::Linearized,
        Track::LinearizedAvg,
        Track::KernelAnalytic,
        Track::KernelEmpirical,
        Track::KernelEmpiricalAvg,
        Track::KernelNngp,
    ];
}

/// Two tracks compared (the first is the reference, e.g. the network).
pub type Pair = (Track, Track);

/// Values keyed by something (a track, a pair of tracks), in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyed<K, T>(pub Vec<(K, T)>);

/// One value per track.
pub type PerTrack<T> = Keyed<Track, T>;

/// One value per pair of tracks.
pub type PerPair<T> = Keyed<Pair, T>;

impl<K: Copy + PartialEq, T> Keyed<K, T> {
    /// The value of `key`.
    pub fn get(&self, key: K) -> Option<&T> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: K) -> Option<&mut T> {
        self.0.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// `(key, value)` in column order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// The keys in column order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }

    /// The values in column order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The same keys with `f` applied to each value.
    pub fn map<U>(&self, mut f: impl FnMut(K, &T) -> U) -> Keyed<K, U> {
        Keyed(self.0.iter().map(|(k, v)| (*k, f(*k, v))).collect())
    }

    /// Builds values for the given keys.
    pub fn from_keys(keys: impl IntoIterator<Item = K>, mut f: impl FnMut(K) -> T) -> Self {
        Keyed(keys.into_iter().map(|k| (k, f(k))).collect())
    }
}

impl Track {
    /// Column-name stem.
    pub fn name(self) -> &'static str {
        match self {
            Track::Network => "network",
            Track::Linearized => "linearized",
            Track::LinearizedAvg => "linearized_avg",
            Track::KernelAnalytic => "kernel_analytic",
            Track::KernelEmpirical => "kernel_empirical",
            Track::KernelEmpiricalAvg => "kernel_empirical_avg",
            Track::KernelNngp => "kernel_nngp",
        }
    }
}

/// Kernel-drift figures at a kernel checkpoint. Drift, kernel distance and `ntk_lambda_max` are
/// measured on the output-averaged empirical NTK of the probe set (the first `probe_size`
/// training points); `ntk_lambda_max_full` and `sharpness_ratio` on the full multi-output
/// kernel of all training points (the kernel that sets the critical learning rate).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelCheckpoint {
    /// ‖Θ_t − Θ0‖_F / ‖Θ0‖_F.
    pub ntk_rel_drift: f64,
    /// 1 − ⟨Θ_t, Θ0⟩_F / (‖Θ_t‖_F ‖Θ0‖_F).
    pub ntk_kernel_distance: f64,
    /// λ_max(Θ_t) on the probe set (output-averaged).
    pub ntk_lambda_max: f64,
    /// λ_max of the full (N·K)×(N·K) training kernel Θ_t.
    pub ntk_lambda_max_full: f64,
    /// `η·λ_max(Θ_t)/(2·(1+μ)·N·K)` on the full training kernel: 1 is the edge of stability
    /// of (heavy-ball) gradient descent on the model linearized at θ_t.
    pub sharpness_ratio: f64,
    /// ‖Θ_t,l − Θ0,l‖_F / ‖Θ0,l‖_F per dense layer.
    pub ntk_rel_drift_per_layer: Vec<f64>,
    /// ‖θ_t − θ0‖ / ‖θ0‖.
    pub param_rel_change: f64,
    /// Per dense layer (weights and bias together).
    pub param_rel_change_per_layer: Vec<f64>,
    /// ‖W_t − W_0‖_F / ‖W_0‖_F per dense layer.
    pub weight_rel_change_per_layer: Vec<f64>,
    /// ‖b_t − b_0‖ / ‖b_0‖ per dense layer (NaN without biases).
    pub bias_rel_change_per_layer: Vec<f64>,
    /// ‖W_t − W_0‖₂ / ‖W_0‖₂ (spectral norms) per dense layer.
    pub weight_spectral_change_per_layer: Vec<f64>,
    /// Centred alignment of Θ_t with the targets' kernel `y yᵀ` on the probe set
    /// ([`crate::linalg::centered_alignment`]; `kernel_alignment.csv`).
    pub ntk_target_alignment: f64,
    /// Centred alignment (CKA) of Θ_t with Θ0 on the probe set (`kernel_alignment.csv`).
    pub ntk_cka_init: f64,
}

/// Classification figures at a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassCheckpoint {
    /// Train accuracy (argmax of outputs vs argmax of targets).
    pub train_accuracy: PerTrack<f64>,
    /// Validation accuracy (None without validation points).
    pub val_accuracy: PerTrack<Option<f64>>,
    /// Test accuracy.
    pub test_accuracy: PerTrack<Option<f64>>,
    /// Softmax cross-entropy of the outputs on train (nats; for kernel tracks a softmax of their
    /// outputs, which were trained with MSE).
    pub train_xent: PerTrack<f64>,
    /// Same on test.
    pub test_xent: PerTrack<Option<f64>>,
    /// Same on validation (None without validation points).
    pub val_xent: PerTrack<Option<f64>>,
    /// The read-out temperature T fitted on the validation points (the T minimising their
    /// cross-entropy of softmax(f/T); None without validation points).
    pub temperature: PerTrack<Option<f64>>,
    /// Validation cross-entropy at that temperature (nats).
    pub val_xent_calibrated: PerTrack<Option<f64>>,
    /// Test cross-entropy at that temperature (nats).
    pub test_xent_calibrated: PerTrack<Option<f64>>,
    /// Fraction of test points (train without test points) where the two tracks of each pair
    /// predict the same class.
    pub agreement: PerPair<f64>,
}

/// Input sensitivity, as means over up to 32 test points (train points without test points):
/// `‖∂f_t/∂x‖_F` and its change since initialisation `‖∂f_t/∂x − ∂f_0/∂x‖_F` (the K × d input
/// Jacobian of the model's raw outputs, whatever `center_outputs` is). The linearized twin's
/// values are NaN with an output-averaged kernel and K > 1 (it is then no parameter-space
/// model).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct InputSensitivity {
    /// ‖∂f/∂x‖ of the network.
    pub network_norm: f64,
    /// ‖∂f/∂x‖ of the linearized twin.
    pub linearized_norm: f64,
    /// ‖∂f_t/∂x − ∂f_0/∂x‖ of the network.
    pub network_change: f64,
    /// ‖∂f_t/∂x − ∂f_0/∂x‖ of the linearized twin.
    pub linearized_change: f64,
}

/// Figures at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// SGD steps taken.
    pub step: u64,
    /// t = η · step.
    pub time: f64,
    /// Train loss per track.
    pub train_loss: PerTrack<f64>,
    /// Validation loss per track (None without validation points).
    pub val_loss: PerTrack<Option<f64>>,
    /// Test loss per track (None without test points).
    pub test_loss: PerTrack<Option<f64>>,
    /// RMSE between the tracks of each pair, train.
    pub rmse_train: PerPair<f64>,
    /// RMSE between the tracks of each pair, test.
    pub rmse_test: PerPair<Option<f64>>,
    /// Kernel figures, at kernel checkpoints.
    pub kernel: Option<KernelCheckpoint>,
    /// Accuracy figures for one-hot classification data.
    pub classification: Option<ClassCheckpoint>,
    /// Input sensitivity of the network and of its twin (at sensitivity checkpoints).
    pub sensitivity: Option<InputSensitivity>,
    /// Ensemble figures (with `[ensemble]`).
    pub ensemble: Option<ensemble::EnsembleCheckpoint>,
}

/// Final outputs of one track.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackOutputs {
    /// Which track.
    pub track: Track,
    /// Train predictions, row-major `n_train × K`.
    pub train: Vec<f64>,
    /// Validation predictions, row-major `n_val × K`.
    pub val: Vec<f64>,
    /// Test predictions, row-major `n_test × K`.
    pub test: Vec<f64>,
    /// Step at which the track was marked diverged.
    pub diverged_at_step: Option<u64>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// All steps done.
    Completed,
    /// Stopped by SIGINT at a step boundary.
    Interrupted,
}

/// A kernel-regression track's closed-form figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelSolutionSummary {
    /// Which track.
    pub track: Track,
    /// Regulariser λ added.
    pub lambda: f64,
    /// Condition number of the regularised train kernel.
    pub condition_number: f64,
    /// λ_max of the regularised train kernel.
    pub lambda_max: f64,
    /// Test loss of the t = ∞ solution.
    pub test_loss_infinite_time: Option<f64>,
    /// Test predictions at t = ∞, row-major (not part of the figure data: no figure draws
    /// them, and `summary.json` keeps their loss and accuracy).
    #[serde(skip)]
    pub test_infinite_time: Vec<f64>,
    /// The iterative solves (None on the eigendecomposition path).
    pub solver: Option<IterativeSolve>,
}

/// Where an iterative run measured the figures that need a whole kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IterativeRun {
    /// Probe points of the drift and of the spectra.
    pub probe_points: usize,
    /// Training points of the full-kernel λ_max (η_c and sharpness).
    pub sharpness_points: usize,
    /// Training points of `‖Θ0 − Θ∞‖_F/‖Θ∞‖_F`.
    pub comparison_points: usize,
    /// Bytes of the kernel stores, and whether they were on disk.
    pub store_bytes: u64,
    /// Whether the stores were files on disk.
    pub store_on_disk: bool,
}

/// What an iterative kernel track reports about its solves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IterativeSolve {
    /// Lanczos and CG iterations, error estimates, preconditioner rank, seconds (holds wall
    /// times: not part of the figure data).
    #[serde(skip)]
    pub report: crate::dynamics::iterative::IterativeReport,
    /// Estimated largest error of the train and held-out predictions at the final step.
    pub final_step_error: (f64, f64),
    /// Entry precision of the stored kernel.
    pub storage: crate::store::StoragePrecision,
    /// The solver tolerance.
    pub tolerance: f64,
}

/// Kernels kept for saving and plotting (row-major, with their shapes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct KernelMatrices {
    /// Θ∞ train × train.
    pub analytic_ntk: Option<(Vec<f64>, [usize; 2])>,
    /// NNGP train × train.
    pub analytic_nngp: Option<(Vec<f64>, [usize; 2])>,
    /// Θ∞ test × train.
    pub analytic_ntk_test_train: Option<(Vec<f64>, [usize; 2])>,
    /// Θ0 train × train (in the configured form).
    pub empirical_ntk_init: Option<(Vec<f64>, [usize; 2])>,
    /// Θ_final train × train (in the configured form).
    pub empirical_ntk_final: Option<(Vec<f64>, [usize; 2])>,
    /// Θ0 test × train (in the configured form), when the run formed it (an empirical kernel
    /// track or the function-space twin).
    pub empirical_ntk_test_train_init: Option<(Vec<f64>, [usize; 2])>,
    /// With `outputs.save_kernel_checkpoints`: Θ_t train × train and test × train at every
    /// kernel checkpoint, by file stem (`empirical_ntk_step<k>`, `empirical_ntk_test_train_step<k>`).
    pub checkpoints: Vec<NamedMatrix>,
    /// With `[ensemble]`: the GPs' test means (`n_test × K`) and covariances
    /// (`n_test × n_test`), by file stem (`ntk_gp_mean_test`, …).
    pub ensemble_gp: Vec<NamedMatrix>,
}

/// A row-major matrix `(values, [rows, cols])` under a file stem.
pub type NamedMatrix = (String, (Vec<f64>, [usize; 2]));

/// Every track's outputs at every checkpoint (`outputs.save_predictions = "checkpoints"`),
/// written as `predictions_steps.npy` with shape `[checkpoints, tracks, points, K]` (points:
/// train, then validation, then test) and its index in `predictions_steps.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictionSteps {
    /// Checkpoint steps.
    pub steps: Vec<u64>,
    /// t = η · step at each.
    pub times: Vec<f64>,
    /// The tracks, in the array's order.
    pub tracks: Vec<Track>,
    /// Points (train, validation, test).
    pub n_points: usize,
    /// Outputs K.
    pub n_outputs: usize,
    /// Row-major values (NaN where a track has no output at a checkpoint).
    pub values: Vec<f64>,
}

/// A row-major array of any rank `(name, values, shape)` (defined where parameters are
/// named, in [`crate::model`]).
pub use crate::model::NamedArray;

/// Wall time of a phase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseTiming {
    /// Phase name.
    pub phase: String,
    /// Seconds.
    pub seconds: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Experiment name.
    pub name: String,
    /// How an iterative run measured what needs a whole kernel (None on the eigendecomposition
    /// path).
    pub iterative: Option<IterativeRun>,
    /// Where the linearized twin was computed (function or parameter space).
    pub twin_space: crate::dynamics::TwinSpace,
    /// Where the kernel tracks started (the network's initial outputs or zero).
    pub kernel_start: crate::config::InitialOutputs,
    /// `training.center_outputs`: every track reports f − f0, so all outputs are exactly zero
    /// at step 0 (and an argmax there only breaks ties).
    pub center_outputs: bool,
    /// Training points the network and its twin trained on; with `kernel.train_subset` more
    /// than [`RunRecord::n_train`], the points every kernel and train figure is measured on.
    pub n_train_all: usize,
    /// Seed.
    pub seed: u64,
    /// Resolved config (TOML text; `config.toml`, not part of the figure data: it names the
    /// directory it was written to).
    #[serde(skip)]
    pub config_toml: String,
    /// Status.
    pub status: RunStatus,
    /// Tracks in column order.
    pub tracks: Vec<Track>,
    /// Track pairs in column order.
    pub pairs: Vec<Pair>,
    /// Checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// The network in words ([`crate::model::NetworkConfig::describe`]; not serialised).
    #[serde(skip)]
    pub network: String,
    /// Number of layers with parameters.
    pub n_layers: usize,
    /// Trainable parameters.
    pub n_params: usize,
    /// The data every kernel and figure was computed on: the training points of
    /// `kernel.train_subset` (all without it) and the held-out points, with their names and
    /// classes (not serialised).
    #[serde(skip)]
    pub data: crate::data::Dataset,
    /// Final outputs per track (stored in `predictions.csv`, or beside the record in the figure
    /// data when that file is not written; see [`crate::report::figure_data`]).
    #[serde(skip)]
    pub outputs: Vec<TrackOutputs>,
    /// Kernel tracks' closed-form figures.
    pub kernel_solutions: Vec<KernelSolutionSummary>,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Critical learning rate η_c = 2·|Y|/λ_max(Θ0) (full-batch GD on the linearized model
    /// diverges above it).
    pub critical_learning_rate: f64,
    /// ‖Θ0 − Θ∞‖_F / ‖Θ∞‖_F on train × train (output-averaged Θ0).
    pub init_ntk_vs_analytic: f64,
    /// Eigenvalues of Θ0, Θ_final and Θ∞ (train × train, output-averaged), descending.
    pub spectrum_init: Vec<f64>,
    /// See `spectrum_init`.
    pub spectrum_final: Vec<f64>,
    /// See `spectrum_init`.
    pub spectrum_analytic: Vec<f64>,
    /// Probe-set kernels Θ0 and Θ_final (output-averaged), row-major `p × p`.
    pub probe_ntk_init: Vec<f64>,
    /// See `probe_ntk_init`.
    pub probe_ntk_final: Vec<f64>,
    /// Probe size p.
    pub probe_size: usize,
    /// Kernels for `.npy` files (when `save_kernels`).
    #[serde(skip)]
    pub kernels: KernelMatrices,
    /// With `outputs.save_parameters`: θ0 and θ_final, one named array per layer
    /// (`parameters_init.npz`, `parameters_final.npz`).
    #[serde(skip)]
    pub parameters: Option<[Vec<NamedArray>; 2]>,
    /// With `outputs.save_predictions = "checkpoints"`.
    #[serde(skip)]
    pub prediction_steps: Option<PredictionSteps>,
    /// Phase timings (wall times differ between any two runs: not part of the figure data).
    #[serde(skip)]
    pub timings: Vec<PhaseTiming>,
    /// Which kernel form the linearized twin used.
    pub kernel_form: KernelForm,
    /// Loss of the network and the twin.
    pub loss: Loss,
    /// Text generated by the trained models (text data only).
    pub samples: Vec<TextSample>,
    /// The ensemble against the Gaussian process (with `[ensemble]`).
    pub ensemble: Option<ensemble::EnsembleRecord>,
    /// Text data: unigram … 5-gram baselines on the test samples.
    pub ngram_baselines: Vec<crate::metrics::ngram::NgramBaseline>,
    /// Text data: every model's `−log₂ p(target)` on every test context (paired comparisons).
    #[serde(skip)]
    pub context_bits: Vec<ContextBits>,
}

/// One model's `−log₂ p(target)` on each test context, in test order: a track early stopped
/// and read out at its fitted temperature, or an n-gram baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextBits {
    /// Column name: the track's name or `ngram<n>`.
    pub model: String,
    /// Characters of context the model reads.
    pub context_chars: usize,
    /// Bits per test context.
    pub bits: Vec<f64>,
}

/// Contiguous blocks of the paired comparison's batch means.
pub const PAIRED_BLOCKS: usize = 50;

/// A paired comparison of two models on the same test contexts: the mean over contexts of
/// `bits(a) − bits(b)` and the half-width of its 95 % interval. Neighbouring contexts of one
/// text overlap and their differences are correlated, so the interval is by batch means: the
/// contexts (in text order) are cut into [`PAIRED_BLOCKS`] contiguous blocks of equal size (the
/// remainder dropped from the interval, not from the mean) and the interval is Student's t on
/// the block means (49 degrees of freedom); with fewer than 2 contexts per block, on the
/// per-context differences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedBits {
    /// Mean of bits(a) − bits(b) (negative: a is better).
    pub mean_difference: f64,
    /// Half-width of the 95 % interval of that mean.
    pub ci95: f64,
    /// Contexts compared.
    pub n: usize,
}

impl PairedBits {
    /// The comparison of `a` against `b` (None when their lengths differ or are empty).
    pub fn of(a: &[f64], b: &[f64]) -> Option<PairedBits> {
        if a.len() != b.len() || a.is_empty() {
            return None;
        }
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let per_block = d.len() / PAIRED_BLOCKS;
        let ci95 = if per_block >= 2 {
            let means: Vec<f64> = d
                .chunks_exact(per_block)
                .take(PAIRED_BLOCKS)
                .map(crate::metrics::stats::mean)
                .collect();
            crate::metrics::stats::mean_ci95(&means).1
        } else {
            crate::metrics::stats::mean_ci95(&d).1
        };
        Some(PairedBits {
            mean_difference: crate::metrics::stats::mean(&d),
            ci95,
            n: d.len(),
        })
    }
}

/// Text generated from a prompt by one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextSample {
    /// [`Track::Network`] or the twin ([`Track::Linearized`] / [`Track::LinearizedAvg`]).
    pub model: Track,
    /// 0 = greedy, else the softmax temperature.
    pub temperature: f64,
    /// Prompt (the first held-out characters).
    pub prompt: String,
    /// Generated continuation.
    pub text: String,
}

/// A track at its early-stopping checkpoint: the one with the lowest validation cross-entropy
/// at the read-out temperature fitted on the validation points (the earliest of ties).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct EarlyStop {
    /// Its step.
    pub step: u64,
    /// The fitted read-out temperature T there.
    pub temperature: f64,
    /// Validation cross-entropy of softmax(f/T), nats.
    pub val_xent: f64,
    /// Test cross-entropy of softmax(f/T), nats.
    pub test_xent: f64,
    /// Test accuracy there (argmax, unchanged by T).
    pub test_accuracy: f64,
}

impl RunRecord {
    /// The early-stopping checkpoint of a track (None without validation points).
    pub fn early_stop(&self, t: Track) -> Option<EarlyStop> {
        let mut best: Option<EarlyStop> = None;
        for c in &self.checkpoints {
            let Some(cl) = &c.classification else {
                continue;
            };
            let (Some(temperature), Some(val_xent)) = (
                cl.temperature.get(t).copied().flatten(),
                cl.val_xent_calibrated.get(t).copied().flatten(),
            ) else {
                continue;
            };
            if best.is_none_or(|b| val_xent < b.val_xent) {
                best = Some(EarlyStop {
                    step: c.step,
                    temperature,
                    val_xent,
                    test_xent: cl
                        .test_xent_calibrated
                        .get(t)
                        .copied()
                        .flatten()
                        .unwrap_or(f64::NAN),
                    test_accuracy: cl
                        .test_accuracy
                        .get(t)
                        .copied()
                        .flatten()
                        .unwrap_or(f64::NAN),
                });
            }
        }
        best
    }

    /// The linearized twin's track ([`Track::LinearizedAvg`] when it uses the output-averaged
    /// kernel with K > 1).
    pub fn twin_track(&self) -> Track {
        if self.tracks.contains(&Track::LinearizedAvg) {
            Track::LinearizedAvg
        } else {
            Track::Linearized
        }
    }

    /// Final outputs of a track.
    pub fn outputs_of(&self, t: Track) -> Option<&TrackOutputs> {
        self.outputs.iter().find(|o| o.track == t)
    }

    /// The last checkpoint.
    pub fn last(&self) -> Option<&Checkpoint> {
        self.checkpoints.last()
    }

    /// RMS of the evaluation targets (test, or train without test points): the scale of
    /// relative divergences.
    pub fn target_scale(&self) -> f64 {
        let y = if self.data.y_test.is_empty() {
            &self.data.y_train
        } else {
            &self.data.y_test
        };
        crate::metrics::rms(y).unwrap_or(1.0).max(1e-300)
    }

    /// The split relative divergences are measured on.
    pub fn evaluation_split(&self) -> &'static str {
        if self.data.y_test.is_empty() {
            "train"
        } else {
            "test"
        }
    }

    /// Final RMSE between two tracks on the evaluation split, divided by [`Self::target_scale`].
    pub fn final_relative_rmse(&self, a: Track, b: Track) -> Option<f64> {
        let c = self.last()?;
        let v = if self.data.y_test.is_empty() {
            c.rmse_train.get((a, b)).copied()
        } else {
            c.rmse_test.get((a, b)).copied().flatten()
        }?;
        Some(v / self.target_scale())
    }

    /// Number of training points.
    pub fn n_train(&self) -> usize {
        self.data.x_train.len() / self.data.input_dim.max(1)
    }

    /// Number of test points.
    pub fn n_test(&self) -> usize {
        self.data.x_test.len() / self.data.input_dim.max(1)
    }

    /// Whether any recorded loss, divergence or output is non-finite (flagged in the report).
    pub fn has_non_finite(&self) -> bool {
        self.checkpoints.iter().any(|c| {
            c.train_loss
                .values()
                .chain(c.rmse_train.values())
                .any(|v| !v.is_finite())
                || c.test_loss
                    .values()
                    .chain(c.rmse_test.values())
                    .flatten()
                    .any(|v| !v.is_finite())
        }) || self
            .outputs
            .iter()
            .any(|o| o.train.iter().chain(&o.test).any(|v| !v.is_finite()))
    }

    /// Every model against the network on the same test contexts (see
    /// [`PairedBits`]), with the context each model reads.
    pub fn paired_vs_network(&self) -> Vec<(&ContextBits, PairedBits)> {
        let Some(net) = self
            .context_bits
            .iter()
            .find(|c| c.model == Track::Network.name())
        else {
            return Vec::new();
        };
        self.context_bits
            .iter()
            .filter(|c| c.model != net.model)
            .filter_map(|c| PairedBits::of(&net.bits, &c.bits).map(|p| (c, p)))
            .collect()
    }

    /// λ_max(Θ_final)/λ_max(Θ0) on the probe set.
    pub fn lambda_ratio(&self) -> f64 {
        let ks: Vec<f64> = self
            .checkpoints
            .iter()
            .filter_map(|c| c.kernel.as_ref().map(|k| k.ntk_lambda_max))
            .collect();
        match (ks.first(), ks.last()) {
            (Some(a), Some(b)) if *a > 0.0 => b / a,
            _ => f64::NAN,
        }
    }

    /// What the network's training regime is judged from (see [`crate::metrics::Phase`]).
    pub fn phase_evidence(&self) -> crate::metrics::PhaseEvidence {
        use columns::{Column, Split};
        let last_kernel = self.last_kernel();
        // The loss the network minimises: the half-MSE, or the softmax cross-entropy.
        let loss = match self.loss {
            crate::dynamics::Loss::Mse => Column::Loss(Track::Network, Split::Train),
            crate::dynamics::Loss::CrossEntropy => Column::Xent(Track::Network, Split::Train),
        };
        crate::metrics::PhaseEvidence {
            train_loss: loss.series(self).into_iter().map(|p| p.1).collect(),
            lr_ratio: self.learning_rate / self.critical_learning_rate,
            sharpness: self
                .checkpoints
                .iter()
                .filter_map(|c| c.kernel.as_ref().map(|k| k.sharpness_ratio))
                .collect(),
            final_drift: last_kernel.map(|k| k.ntk_rel_drift).unwrap_or(f64::NAN),
            diverged: self
                .outputs_of(Track::Network)
                .and_then(|o| o.diverged_at_step)
                .is_some(),
        }
    }

    /// The last kernel checkpoint.
    pub fn last_kernel(&self) -> Option<&KernelCheckpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find_map(|c| c.kernel.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_bits_uses_batch_means_of_contiguous_blocks() {
        // 100 contexts, differences 0, 1, 0, 1, …: 50 blocks of 2, every block mean 0.5, so
        // the mean is 0.5 and the batch-means interval has zero width (a per-context t would
        // give ±0.1).
        let a: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
        let b = vec![0.0; 100];
        let p = PairedBits::of(&a, &b).unwrap();
        assert_eq!((p.mean_difference, p.ci95, p.n), (0.5, 0.0, 100));
        // Block means 0 (first 50 contexts) and 1 (the rest): 25 blocks of each. The interval
        // is t(0.975, 49)·s/√50 with s² = 50·0.25/49 (the block means' sample variance).
        let a: Vec<f64> = (0..100).map(|i| if i < 50 { 0.0 } else { 1.0 }).collect();
        let p = PairedBits::of(&a, &b).unwrap();
        let s = (50.0 * 0.25 / 49.0f64).sqrt();
        let t49 = 2.009575234489209; // scipy.stats.t.ppf(0.975, 49)
        assert!((p.ci95 - t49 * s / 50f64.sqrt()).abs() < 1e-9, "{}", p.ci95);
        // Too few contexts for blocks: the per-context t-interval.
        let p = PairedBits::of(&[1.0, 2.0, 3.0], &[0.0; 3]).unwrap();
        let t2 = 4.302652729911275; // scipy.stats.t.ppf(0.975, 2)
        assert!((p.ci95 - t2 * 1.0 / 3f64.sqrt()).abs() < 1e-9);
        assert!(PairedBits::of(&[1.0], &[]).is_none());
    }
}
