//! One experiment on its data: model → initial kernels ([`initial`]) → the tracks in lockstep
//! ([`lockstep`]) → the [`RunRecord`] ([`finish`]). No files are written here (see
//! [`crate::report`]); a run directory is the business of [`crate::pipeline`].

pub mod finish;
pub mod initial;
pub mod lockstep;
pub mod memory;
pub mod samples;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Experiment, LearningRate};
use crate::data::Dataset;
use crate::linalg;
use crate::model::MlpConfig;
use crate::record::{PhaseTiming, RunRecord};
use crate::{Error, Result};

pub use initial::Initial;
pub use lockstep::Lockstep;
pub use memory::preflight;

/// Progress reporting of a run (a terminal bar, log lines, or nothing).
pub trait Progress {
    /// A phase starts with `total` units of work (0 = unknown).
    fn start(&self, phase: &str, total: u64);
    /// `n` units done.
    fn advance(&self, n: u64);
    /// The phase ended.
    fn finish(&self);
}

/// A [`Progress`] that reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Options of a run beyond its config.
pub struct RunOptions<'a> {
    /// Set (e.g. by SIGINT) to stop at the next step boundary.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Progress sink.
    pub progress: &'a dyn Progress,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            interrupt: None,
            progress: &Silent,
        }
    }
}

/// The network of an experiment on a data set.
pub fn mlp_config(exp: &Experiment, data: &Dataset) -> MlpConfig {
    MlpConfig {
        input_dim: data.input_dim,
        n_outputs: data.n_outputs,
        model: exp.model.clone(),
    }
}

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

/// The learning rate of a run and the critical rate η_c = 2·N·K/λ_max(Θ0) of full-batch
/// gradient descent on the linearized model (Θ0 train × train in the configured form).
pub fn learning_rates(exp: &Experiment, data: &Dataset, init: &Initial) -> Result<(f64, f64)> {
    let (n_train, k) = (data.n_train(), data.n_outputs);
    let rows = n_train * exp.kernel.form.rows_per_point(k);
    let lambda_max0 =
        linalg::sym_eigenvalues(linalg::block(init.theta0.as_ref(), 0, rows, 0, rows).as_ref())?
            .last()
            .copied()
            .unwrap_or(0.0);
    let critical_lr = if lambda_max0 > 0.0 {
        2.0 * (n_train * k) as f64 / lambda_max0
    } else {
        f64::INFINITY
    };
    let lr = match exp.training.learning_rate {
        LearningRate::Absolute(v) => v,
        LearningRate::CriticalMultiple(s) => s * critical_lr,
    };
    if !lr.is_finite() {
        return Err(Error::Numerics(format!(
            "learning rate {lr} is not finite (λ_max(Θ0) = {lambda_max0})"
        )));
    }
    Ok((lr, critical_lr))
}

/// Runs one experiment on its data.
pub fn execute(exp: &Experiment, data: &Dataset, opts: &RunOptions<'_>) -> Result<RunRecord> {
    let mut timer = Timer::start();
    preflight(exp, data)?;
    let mlp = mlp_config(exp, data).init(exp.seed);
    let init = Initial::compute(exp, data, &mlp, opts.progress)?;
    timer.lap("kernels");
    let (lr, critical_lr) = learning_rates(exp, data, &init)?;
    let mut lock = Lockstep::new(exp, data, &init, mlp, lr, critical_lr)?;
    timer.lap("predictor setup");
    let status = lock.train(opts)?;
    timer.lap("training");
    let record = lock.into_record(status)?;
    timer.lap("final kernels");
    Ok(RunRecord {
        timings: timer.0,
        ..record
    })
}
