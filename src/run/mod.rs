//! One experiment on its data: model → initial kernels (`initial.rs`) → the tracks
//! (`tracks.rs`) stepped by the training loop (`lockstep.rs`) and read by the measurers
//! (`measure/`) → the [`RunRecord`] (`finish.rs`). No files are written here (see
//! [`crate::report`]); a run directory is the business of [`crate::pipeline`]. The public
//! surface is [`execute`] with its [`RunOptions`], the initial state ([`Initial`]), the learning
//! rates and the estimates and checks in [`memory`]; the rest is internal.

pub(crate) mod ensemble;
pub(crate) mod finish;
pub(crate) mod initial;
pub(crate) mod lockstep;
pub(crate) mod measure;
pub mod memory;
pub(crate) mod predictors;
pub(crate) mod samples;
pub(crate) mod stored;
pub(crate) mod time_model;
pub(crate) mod tracks;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::backend::Precision;
use crate::config::{Experiment, LearningRate};
use crate::data::Dataset;
use crate::linalg;
use crate::model::{Network, NetworkConfig};
use crate::ntk::empirical::{ntk_from_signals, BackpropSignals};
use crate::ntk::KernelForm;
use crate::record::{PhaseTiming, RunRecord, RunStatus};
use crate::{Error, Result};

pub use initial::Initial;
pub use memory::{preflight, preflight_config, Footprint, LimitPolicy};

/// Progress reporting of a run (a terminal bar, log lines, or nothing).
pub trait Progress: Sync {
    /// A phase starts with `total` units of work (0 = unknown).
    fn start(&self, phase: &str, total: u64);
    /// `n` units done.
    fn advance(&self, n: u64);
    /// The phase ended.
    fn finish(&self);
    /// A message for the user (e.g. a long run's estimate).
    fn note(&self, _message: &str) {}
}

/// A [`Progress`] that reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A request to stop (SIGINT, SIGTERM) shared by the signal handler and the run. The run looks
/// at it at every step boundary and inside its kernel loops; a look that finds it set marks it
/// honoured, so that the handler can tell a run that is stopping from one inside a computation
/// without such checks (a dense factorisation or product), which it then ends itself.
#[derive(Debug, Default)]
pub struct Interrupt {
    requested: AtomicBool,
    honoured: AtomicBool,
    /// The longest expected time between two looks now (a training step), milliseconds.
    check_interval_ms: std::sync::atomic::AtomicU64,
}

impl Interrupt {
    /// Asks the run to stop; true when it had been asked before.
    pub fn request(&self) -> bool {
        self.requested.swap(true, Ordering::SeqCst)
    }

    /// Whether a stop was requested, marking the request honoured when it was (the caller
    /// stops).
    pub fn is_requested(&self) -> bool {
        let r = self.requested.load(Ordering::SeqCst);
        if r {
            self.honoured.store(true, Ordering::SeqCst);
        }
        r
    }

    /// Whether a stop was requested, without honouring it (a scheduler that starts no more work
    /// but does not itself stop the work in progress).
    pub fn peek(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Whether some computation saw the request and is stopping.
    pub fn honoured(&self) -> bool {
        self.honoured.load(Ordering::SeqCst)
    }

    /// The run looks at the request at least every `seconds` from now (a training step's
    /// duration); 0 restores the default.
    pub fn expect_looks_every(&self, seconds: f64) {
        self.check_interval_ms
            .store((seconds * 1e3).ceil() as u64, Ordering::SeqCst);
    }

    /// How long a request may wait to be honoured: a second, or one and a half of the expected
    /// interval between looks when that is longer.
    pub fn grace(&self) -> std::time::Duration {
        let ms = self.check_interval_ms.load(Ordering::SeqCst);
        std::time::Duration::from_millis(1000.max(ms.saturating_mul(3) / 2))
    }
}

/// Options of a run beyond its config.
pub struct RunOptions<'a> {
    /// Set (e.g. by SIGINT) to stop at the next step boundary.
    pub interrupt: Option<Arc<Interrupt>>,
    /// Progress sink.
    pub progress: &'a dyn Progress,
    /// Refuse a run whose estimate exceeds the machine, or start it anyway (`--force`).
    pub limits: LimitPolicy,
}

impl RunOptions<'_> {
    /// Whether the run was asked to stop.
    pub fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.is_requested())
    }
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            interrupt: None,
            progress: &Silent,
            limits: LimitPolicy::Refuse,
        }
    }
}

/// The network of an experiment on a data set.
pub fn network_config(exp: &Experiment, data: &Dataset) -> NetworkConfig {
    NetworkConfig {
        input_dim: data.input_dim,
        n_outputs: data.n_outputs,
        model: exp.model.clone(),
    }
}

/// The data every kernel and figure of a run is computed on: with `kernel.train_subset = m`
/// below the number of training points, `m` of them drawn at random (seeded by the run's seed,
/// kept in their original order) and every held-out point; otherwise the data themselves.
pub fn kernel_view<'a>(exp: &Experiment, data: &'a Dataset) -> Result<Cow<'a, Dataset>> {
    let n = data.n_train();
    let m = match exp.kernel.train_subset {
        Some(m) if m > n => {
            return Err(Error::value(
                "kernel.train_subset",
                m,
                format!("an integer in [1, number of training points = {n}]"),
            ))
        }
        Some(m) if m < n => m,
        _ => return Ok(Cow::Borrowed(data)),
    };
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut StdRng::seed_from_u64(exp.seed ^ KERNEL_SUBSET_SEED));
    rows.truncate(m);
    rows.sort_unstable();
    let gather = |v: &[f64], width: usize| -> Vec<f64> {
        rows.iter()
            .flat_map(|&a| v[a * width..(a + 1) * width].iter().copied())
            .collect()
    };
    Ok(Cow::Owned(Dataset {
        input_dim: data.input_dim,
        n_outputs: data.n_outputs,
        x_train: gather(&data.x_train, data.input_dim),
        y_train: gather(&data.y_train, data.n_outputs),
        x_val: data.x_val.clone(),
        y_val: data.y_val.clone(),
        x_test: data.x_test.clone(),
        y_test: data.y_test.clone(),
        feature_names: data.feature_names.clone(),
        target_names: data.target_names.clone(),
        classes: data.classes.clone(),
        text: data.text.clone(),
    }))
}

/// Mixed into the run's seed for the draw of `kernel.train_subset`.
pub const KERNEL_SUBSET_SEED: u64 = 0x5B5E_7000;

/// The timing entry of the empirical Θ0 alone (part of the `kernels` phase).
pub const EMPIRICAL_NTK_TIMING: &str = "empirical_ntk_init";

/// Wall time per phase.
struct Timer(Vec<PhaseTiming>, Instant);

impl Timer {
    fn start() -> Self {
        Timer(Vec::new(), Instant::now())
    }

    fn lap(&mut self, phase: &str) {
        self.0.push(PhaseTiming {
            phase: phase.into(),
            seconds: self.1.elapsed().as_secs_f64(),
        });
        self.1 = Instant::now();
    }
}

/// Lanczos tolerance for a λ_max from products in the network's precision.
fn matrix_free_rtol(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1e-6,
        Precision::F64 => 1e-12,
    }
}

/// Most Lanczos products for a matrix-free λ_max.
pub const MATRIX_FREE_MAX_ITER: usize = 100;

/// Largest `N·K` for which λ_max of the full training kernel is taken from the explicit kernel
/// (built from backprop signals, at most 32 MB); above it, matrix-free products are cheaper.
pub const EXPLICIT_FULL_MAX_ROWS: usize = 2048;

/// λ_max of the full `(N·K) × (N·K)` empirical NTK of `net` on the `n` points whose backprop
/// signals are `signals` (rows of `x`): from the explicit kernel when `N·K` ≤
/// [`EXPLICIT_FULL_MAX_ROWS`], else matrix-free.
pub fn lambda_max_full(net: &Network, signals: &BackpropSignals, x: &[f64]) -> Result<f64> {
    let n = signals.n_points();
    if n * net.config.n_outputs <= EXPLICIT_FULL_MAX_ROWS {
        let full = ntk_from_signals(net, signals, signals, KernelForm::Full).total();
        linalg::lambda_max(full.as_ref())
    } else {
        lambda_max_full_matrix_free(net, x, n)
    }
}

/// λ_max of the full `(N·K) × (N·K)` empirical NTK of `net` on the rows of `x` (learning-rate
/// weighted under mup), by Lanczos on `v ↦ J·D·Jᵀ·v` (no kernel matrix is built).
pub fn lambda_max_full_matrix_free(net: &Network, x: &[f64], n: usize) -> Result<f64> {
    linalg::lanczos_lambda_max(
        n * net.config.n_outputs,
        |v| net.ntk_matvec(x, n, v),
        MATRIX_FREE_MAX_ITER,
        matrix_free_rtol(net.config.model.precision),
    )
}

/// The training points on which λ_max of the full kernel is measured and their number: all of
/// them, or on the iterative path the first `kernel.sharpness_points` — there
/// `λ_max(Θ_S)/|S|` estimates `λ_max(Θ_N)/N` (both tend to the top eigenvalue of the kernel's
/// integral operator, Koltchinskii & Giné 2000), which is what η_c and the sharpness ratio use.
pub fn sharpness_sample<'a>(exp: &Experiment, data: &'a Dataset) -> (&'a [f64], usize) {
    let n = data.n_train();
    let m = exp
        .kernel
        .plan
        .as_ref()
        .map_or(n, |p| p.sharpness_points.min(n));
    (&data.x_train[..m * data.input_dim], m)
}

/// `η·λ_max/(2·(1+μ)·N·K)`: 1 is the edge of stability of heavy-ball gradient descent
/// (`v ← μv + g`, `θ ← θ − ηv`) on a quadratic loss `½·mean (f − y)²` whose kernel has largest
/// eigenvalue λ_max.
pub fn sharpness_ratio(exp: &Experiment, lr: f64, lambda_max: f64, n_targets: usize) -> f64 {
    lr * lambda_max / (2.0 * (1.0 + exp.training.momentum) * n_targets as f64)
}

/// Members trained at the same time: `ensemble.parallel`, else as many as there are cores.
pub fn parallel_members(exp: &Experiment) -> usize {
    let Some(e) = exp.ensemble else { return 1 };
    let others = e.members.saturating_sub(1).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    e.parallel.unwrap_or(cores).clamp(1, others)
}

/// The learning rate, the critical rate and the λ_max of the full training kernel at θ0.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// η.
    pub lr: f64,
    /// η_c.
    pub critical_lr: f64,
    /// λ_max(Θ0) of the full training kernel.
    pub lambda_max0: f64,
}

/// The learning rate of a run and the critical rate `η_c = 2·(1+μ)·N·K/λ_max(Θ0)` of
/// full-batch (heavy-ball) gradient descent on the linearized model, with λ_max of the full
/// multi-output Θ0 on the training set whatever `kernel.form` is: the explicit kernel when the
/// run has it (full form or K = 1), else matrix-free products with the network at θ0.
/// Minibatch noise is not covered: η_c is the full-batch threshold.
pub fn learning_rates(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    net: &Network,
) -> Result<Rates> {
    let (n_train, k) = (data.n_train(), data.n_outputs);
    let (x_sharp, n_sharp) = sharpness_sample(exp, data);
    let lambda_max0 = if init.stored.is_some() {
        // An iterative run has no dense Θ0 (nor every point's signals): matrix-free products
        // on its sharpness points.
        lambda_max_full_matrix_free(net, x_sharp, n_sharp)?
    } else if exp.kernel.form == KernelForm::Full || k == 1 {
        let rows = n_train * exp.kernel.form.rows_per_point(k);
        linalg::lambda_max(linalg::block(init.theta0.as_ref(), 0, rows, 0, rows).as_ref())?
    } else {
        lambda_max_full(net, &init.s_train, &data.x_train)?
    };
    let critical_lr = if lambda_max0 > 0.0 {
        2.0 * (1.0 + exp.training.momentum) * (n_sharp * k) as f64 / lambda_max0
    } else {
        f64::INFINITY
    };
    let lr = match exp.training.learning_rate {
        LearningRate::Absolute(v) => v,
        LearningRate::CriticalMultiple(s) => s * critical_lr,
    };
    if !lr.is_finite() || lr <= 0.0 {
        return Err(match exp.training.learning_rate {
            LearningRate::CriticalMultiple(scale) => Error::value(
                "training.lr_scale",
                scale,
                format!("a multiple of η_c that is finite: λ_max(Θ0) = {lambda_max0:e} here, so η = {lr:e}; give training.learning_rate instead"),
            ),
            LearningRate::Absolute(v) => Error::value("training.learning_rate", v, "a finite number > 0"),
        });
    }
    Ok(Rates {
        lr,
        critical_lr,
        lambda_max0,
    })
}

/// Runs one experiment on its data (checked first, as [`preflight`] does).
pub fn execute(exp: &Experiment, data: &Dataset, opts: &RunOptions<'_>) -> Result<RunRecord> {
    preflight(exp, data, opts.limits)?;
    execute_checked(exp, data, opts)
}

/// [`execute`] of an experiment whose [`preflight`] passed already.
pub(crate) fn execute_checked(
    exp: &Experiment,
    data: &Dataset,
    opts: &RunOptions<'_>,
) -> Result<RunRecord> {
    let mut timer = Timer::start();
    ensemble::check_data(exp, data)?;
    let view = kernel_view(exp, data)?;
    let net = network_config(exp, data).init(exp.seed);
    let init = Initial::compute(exp, &view, &net, opts)?;
    timer.lap("kernels");
    let rates = learning_rates(exp, &view, &init, &net)?;
    let kernel_tracks = tracks::KernelTracks::Configured(opts.progress);
    let mut tracks = tracks::Tracks::new(exp, (data, &view), &init, net, rates, kernel_tracks)?;
    timer.lap("predictor setup");
    let mut measured = measure::RunMeasurers::new(&tracks);
    let trained = lockstep::train(&mut tracks, &mut measured.list(), opts)?;
    timer.lap("training");
    let status = trained.status;
    let own_trace = measured.trace.take().map(|t| t.into_trace(&tracks));
    let ended = finish::Ended {
        tracks,
        measured,
        trained,
    };
    let mut record = ended.into_record()?;
    if let Some(st) = &init.stored {
        // A completed run's stores are removed unless kept (an interrupted run keeps them to be
        // resumed).
        if status == RunStatus::Completed {
            stored::clean_up(&st.plan);
        }
    }
    timer.lap("final kernels");
    if let (Some(own), RunStatus::Completed) = (own_trace, status) {
        let (mut traces, seconds) = ensemble::train_members(exp, data, rates, own, opts)?;
        ensemble::mark_divergent(&mut traces, data);
        timer.lap("ensemble members");
        let gps = ensemble::gaussian_processes(exp, data, &init, rates.lr)?;
        let (mut ens, files) =
            ensemble::evaluate(exp, data, &gps, &traces, &mut record.checkpoints)?;
        ens.member_seconds = seconds;
        record.ensemble = Some(ens);
        record.kernels.ensemble_gp = files;
        timer.lap("ensemble Gaussian processes");
    }
    let mut timings = timer.0;
    timings.push(PhaseTiming {
        phase: EMPIRICAL_NTK_TIMING.into(),
        seconds: init.empirical_ntk_seconds,
    });
    Ok(RunRecord { timings, ..record })
}
