//! The kernel tracks' predictors: closed-form kernel regression with the analytic and the
//! empirical kernels, exact (dense eigendecomposition) or iterative (stored kernels, Krylov
//! solves), fitted to the run's targets at its learning rate.

use faer::Mat;

use crate::config::{Experiment, InitialOutputs, KernelSolution};
use crate::data::Dataset;
use crate::dynamics::iterative::{duplicate_groups, IterativeInputs, IterativePredictor};
use crate::dynamics::kernel::{KernelPredictor, PredictorInputs};
use crate::dynamics::predictor::Predictor;
use crate::linalg;
use crate::ntk::KernelForm;
use crate::record::Track;
use crate::Result;

use super::initial::Initial;

/// Row-major `n × K` values as "target rows" of a kernel form: `n × K` (per-output kernel) or
/// `(n·K) × 1` (full kernel).
pub fn as_rows(values: &[f64], k: usize, per_output: bool) -> Mat<f64> {
    if per_output {
        linalg::mat_from_rows(values, values.len() / k.max(1), k)
    } else {
        linalg::mat_from_rows(values, values.len(), 1)
    }
}

/// Whether the twin and the empirical-kernel track use the output-averaged kernel
/// `Θ0_avg ⊗ I_K` (an approximation of the linearization when K > 1).
pub fn averaged_kernel(exp: &Experiment, k: usize) -> bool {
    exp.kernel.form == KernelForm::Trace && k > 1
}

/// The track of a kernel solution.
pub fn solution_track(s: KernelSolution, averaged: bool) -> Track {
    match s {
        KernelSolution::Analytic => Track::KernelAnalytic,
        KernelSolution::Nngp => Track::KernelNngp,
        KernelSolution::Empirical if averaged => Track::KernelEmpiricalAvg,
        KernelSolution::Empirical => Track::KernelEmpirical,
    }
}

/// What the kernel tracks are fitted to: the learning rate and the (possibly centred) targets.
struct Targets<'y> {
    lr: f64,
    y_fit: &'y [f64],
}

/// The predictors of the configured kernel solutions on `data`, fitted to `y_fit` at the
/// learning rate `lr`: from the stored kernels on the iterative path (each solve reported to
/// `progress`), else from the dense kernels of `init`.
pub fn build(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lr: f64,
    y_fit: &[f64],
    progress: &dyn super::Progress,
) -> Result<Vec<(Track, Predictor)>> {
    match &init.stored {
        Some(stored) => {
            let targets = Targets { lr, y_fit };
            iterative_predictors(exp, data, init, stored, targets, progress)
        }
        None => build_predictors(exp, data, init, lr, y_fit),
    }
}

/// The outputs the kernel tracks start from (train points, then held-out points): the network's
/// at initialisation, or zero (`kernel.initial_outputs`).
fn kernel_start<'a>(exp: &Experiment, init: &'a Initial) -> std::borrow::Cow<'a, [f64]> {
    match exp.kernel.initial_outputs {
        InitialOutputs::Network => std::borrow::Cow::Borrowed(&init.f0_all),
        InitialOutputs::Zero => std::borrow::Cow::Owned(vec![0.0; init.f0_all.len()]),
    }
}

/// The kernel-regression predictors of the configured solutions: the analytic kernel acts per
/// output (Θ∞ ⊗ I_K), the empirical one in the configured form.
fn build_predictors(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lr: f64,
    y_fit: &[f64],
) -> Result<Vec<(Track, Predictor)>> {
    let (n_train, n_held, k) = (data.n_train(), data.n_heldout(), data.n_outputs);
    let form = exp.kernel.form;
    let f0 = kernel_start(exp, init);
    let f0_train = &f0[..n_train * k];
    let f0_test = &f0[n_train * k..];
    exp.kernel
        .solutions
        .iter()
        .map(|&s| {
            let (theta, rows, per_out) = match s {
                KernelSolution::Analytic => (&init.analytic_ntk, 1, true),
                KernelSolution::Nngp => (&init.analytic_nngp, 1, true),
                KernelSolution::Empirical => (
                    &init.theta0,
                    form.rows_per_point(k),
                    form == KernelForm::Trace,
                ),
            };
            let predictor = KernelPredictor::new(PredictorInputs {
                theta_train: &linalg::block(theta.as_ref(), 0, n_train * rows, 0, n_train * rows),
                theta_test_train: Some(&linalg::block(
                    theta.as_ref(),
                    n_train * rows,
                    n_held * rows,
                    0,
                    n_train * rows,
                )),
                f0_train: &as_rows(f0_train, k, per_out),
                f0_test: Some(&as_rows(f0_test, k, per_out)),
                y_train: &as_rows(y_fit, k, per_out),
                n_targets: n_train * k,
                learning_rate: lr,
                momentum: exp.training.momentum,
                time: exp.kernel.time,
                diag_reg: exp.kernel.diag_reg,
            })?;
            Ok((
                solution_track(s, averaged_kernel(exp, k)),
                Predictor::Exact(Box::new(predictor)),
            ))
        })
        .collect()
}

/// The steps at which a run logs a checkpoint when it is not interrupted.
pub fn planned_steps(exp: &Experiment) -> Vec<u64> {
    let (steps, every) = (exp.training.steps, exp.logging.every.max(1));
    let mut v: Vec<u64> = (0..=steps).step_by(every as usize).collect();
    if v.last() != Some(&steps) {
        v.push(steps);
    }
    v
}

/// The kernel-regression tracks of an iterative run, from its stored kernels (every kernel per
/// output: the analytic ones as Θ∞ ⊗ I_K, the empirical one output-averaged, `Θ0_avg ⊗ I_K`).
fn iterative_predictors(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    stored: &super::initial::Stored,
    targets: Targets<'_>,
    progress: &dyn super::Progress,
) -> Result<Vec<(Track, Predictor)>> {
    let Targets { lr, y_fit } = targets;
    let (n_train, k) = (data.n_train(), data.n_outputs);
    let f0 = kernel_start(exp, init);
    let f0_train = as_rows(&f0[..n_train * k], k, true);
    let f0_test = as_rows(&f0[n_train * k..], k, true);
    let y = as_rows(y_fit, k, true);
    let groups = duplicate_groups(&data.x_train, n_train);
    let settings = &stored.plan.settings;
    let rank = settings.preconditioner_rank.unwrap_or(0);
    // One unit a kernel track: its Lanczos basis, Nyström preconditioner and CG solve.
    progress.start("kernel solves", exp.kernel.solutions.len() as u64);
    let out = exp
        .kernel
        .solutions
        .iter()
        .map(|&s| {
            let kernel = match s {
                KernelSolution::Analytic => stored.kernels.ntk.as_ref(),
                KernelSolution::Nngp => stored.kernels.nngp.as_ref(),
                KernelSolution::Empirical => stored.kernels.empirical.as_ref(),
            }
            .ok_or_else(|| crate::Error::Numerics(format!("no stored kernel for {}", s.name())))?;
            let p = IterativePredictor::new(IterativeInputs {
                train: kernel.train.clone(),
                heldout: kernel.heldout.clone(),
                heldout_diag_max: kernel.heldout_diag_max(),
                f0_train: &f0_train,
                f0_test: kernel.heldout.as_ref().map(|_| &f0_test),
                y_train: &y,
                n_targets: n_train * k,
                learning_rate: lr,
                momentum: exp.training.momentum,
                time: exp.kernel.time,
                diag_reg: exp.kernel.diag_reg,
                planned_steps: planned_steps(exp),
                duplicate_groups: groups.clone(),
                resident_budget_bytes: (super::memory::RESIDENT_FRACTION
                    * crate::system::available_memory_bytes() as f64)
                    as u64,
                settings: crate::krylov::SolveSettings {
                    tolerance: settings.solver_tolerance,
                    max_iterations: settings.solver_max_iterations,
                    delay: 5,
                    preconditioner_rank: rank,
                    seed: exp.seed,
                },
            })?;
            progress.advance(1);
            Ok((
                solution_track(s, averaged_kernel(exp, k)),
                Predictor::Iterative(Box::new(p)),
            ))
        })
        .collect();
    progress.finish();
    out
}
