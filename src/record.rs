//! Plain records of a run: what the numerics produced, consumed by the reporters.

use serde::Serialize;

/// A trained or solved track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// The burn network.
    Network,
    /// Its linearization at θ0.
    Linearized,
    /// Kernel regression with the analytic NTK Θ∞.
    KernelAnalytic,
    /// Kernel regression with the empirical NTK Θ0.
    KernelEmpirical,
}

impl Track {
    /// Column-name stem.
    pub fn name(self) -> &'static str {
        match self {
            Track::Network => "network",
            Track::Linearized => "linearized",
            Track::KernelAnalytic => "kernel_analytic",
            Track::KernelEmpirical => "kernel_empirical",
        }
    }
}

/// Kernel-drift figures at a kernel checkpoint (probe set, output-averaged kernel).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelCheckpoint {
    /// ‖Θ_t − Θ0‖_F / ‖Θ0‖_F.
    pub ntk_rel_drift: f64,
    /// 1 − ⟨Θ_t, Θ0⟩_F / (‖Θ_t‖_F ‖Θ0‖_F).
    pub ntk_kernel_distance: f64,
    /// λ_max(Θ_t) on the probe set.
    pub ntk_lambda_max: f64,
    /// ‖Θ_t,l − Θ0,l‖_F / ‖Θ0,l‖_F per dense layer.
    pub ntk_rel_drift_per_layer: Vec<f64>,
    /// ‖θ_t − θ0‖ / ‖θ0‖.
    pub param_rel_change: f64,
    /// Per dense layer.
    pub param_rel_change_per_layer: Vec<f64>,
}

/// Classification figures at a checkpoint (per track in [`RunRecord::tracks`] order).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassCheckpoint {
    /// Train accuracy (argmax of outputs vs argmax of targets).
    pub train_accuracy: Vec<f64>,
    /// Test accuracy.
    pub test_accuracy: Vec<Option<f64>>,
    /// Softmax cross-entropy of the outputs on train (nats; for kernel tracks a softmax of their
    /// outputs, which were trained with MSE).
    pub train_xent: Vec<f64>,
    /// Same on test.
    pub test_xent: Vec<Option<f64>>,
    /// Fraction of test points (train without test points) where the two tracks of each pair
    /// predict the same class.
    pub agreement: Vec<f64>,
}

/// Figures at one checkpoint.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Checkpoint {
    /// SGD steps taken.
    pub step: u64,
    /// t = η · step.
    pub time: f64,
    /// Train loss per track (in [`RunRecord::tracks`] order).
    pub train_loss: Vec<f64>,
    /// Test loss per track (None without test points).
    pub test_loss: Vec<Option<f64>>,
    /// RMSE between the tracks of each pair, train.
    pub rmse_train: Vec<f64>,
    /// RMSE between the tracks of each pair, test.
    pub rmse_test: Vec<Option<f64>>,
    /// Kernel figures, at kernel checkpoints.
    pub kernel: Option<KernelCheckpoint>,
    /// Accuracy figures for one-hot classification data.
    pub classification: Option<ClassCheckpoint>,
    /// Mean input-Jacobian norm `‖∂f/∂x‖_F` on up to 32 test points (train points without test
    /// points), of the reported predictor (`f − f0` when centring): `[network, linearized]`
    /// (linearized NaN with an output-averaged kernel and K > 1).
    pub input_grad_norm: [f64; 2],
}

/// Final outputs of one track.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrackOutputs {
    /// Which track.
    pub track: Track,
    /// Train predictions, row-major `n_train × K`.
    pub train: Vec<f64>,
    /// Test predictions, row-major `n_test × K`.
    pub test: Vec<f64>,
    /// Step at which the track was marked diverged.
    pub diverged_at_step: Option<u64>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// All steps done.
    Completed,
    /// Stopped by SIGINT at a step boundary.
    Interrupted,
}

/// A kernel-regression track's closed-form figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    /// Test predictions at t = ∞, row-major.
    pub test_infinite_time: Vec<f64>,
}

/// Kernels kept for saving and plotting (row-major, with their shapes).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
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
}

/// Wall time of a phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseTiming {
    /// Phase name.
    pub phase: String,
    /// Seconds.
    pub seconds: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    /// Experiment name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Resolved config (TOML text).
    pub config_toml: String,
    /// Status.
    pub status: RunStatus,
    /// Tracks in column order.
    pub tracks: Vec<Track>,
    /// Track pairs in column order.
    pub pairs: Vec<(Track, Track)>,
    /// Checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// Number of dense layers.
    pub n_layers: usize,
    /// Trainable parameters.
    pub n_params: usize,
    /// Input dim.
    pub input_dim: usize,
    /// Outputs K.
    pub n_outputs: usize,
    /// Feature names.
    pub feature_names: Vec<String>,
    /// Target names.
    pub target_names: Vec<String>,
    /// Train inputs, row-major.
    pub x_train: Vec<f64>,
    /// Test inputs, row-major.
    pub x_test: Vec<f64>,
    /// Train targets, row-major.
    pub y_train: Vec<f64>,
    /// Test targets, row-major.
    pub y_test: Vec<f64>,
    /// Final outputs per track.
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
    /// Phase timings.
    pub timings: Vec<PhaseTiming>,
    /// Which kernel form the linearized twin used.
    pub kernel_form: String,
    /// Class labels when the targets are one-hot classes.
    pub classes: Option<Vec<String>>,
    /// Loss of the network and the twin (`mse` or `cross_entropy`).
    pub loss: String,
    /// Text generated by the trained models (text data only).
    pub samples: Vec<TextSample>,
}

/// Text generated from a prompt by one model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextSample {
    /// `network` or `linearized`.
    pub model: String,
    /// 0 = greedy, else the softmax temperature.
    pub temperature: f64,
    /// Prompt (the first held-out characters).
    pub prompt: String,
    /// Generated continuation.
    pub text: String,
}

impl RunRecord {
    /// Index of a track.
    pub fn track_index(&self, t: Track) -> Option<usize> {
        self.tracks.iter().position(|&x| x == t)
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
        let y = if self.y_test.is_empty() {
            &self.y_train
        } else {
            &self.y_test
        };
        crate::metrics::rms(y).unwrap_or(1.0).max(1e-300)
    }

    /// The split relative divergences are measured on.
    pub fn evaluation_split(&self) -> &'static str {
        if self.y_test.is_empty() {
            "train"
        } else {
            "test"
        }
    }

    /// Final RMSE between two tracks on the evaluation split, divided by [`Self::target_scale`].
    pub fn final_relative_rmse(&self, a: Track, b: Track) -> Option<f64> {
        let i = self.pairs.iter().position(|&p| p == (a, b))?;
        let c = self.last()?;
        let v = if self.y_test.is_empty() {
            Some(c.rmse_train[i])
        } else {
            c.rmse_test[i]
        }?;
        Some(v / self.target_scale())
    }

    /// The last kernel checkpoint.
    pub fn last_kernel(&self) -> Option<&KernelCheckpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find_map(|c| c.kernel.as_ref())
    }
}
