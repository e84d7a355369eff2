//! Everything known at t = 0: initial outputs, the empirical Θ0 (train ∪ test × train), the
//! analytic NNGP/NTK, the probe-set kernel that drift is measured against, and the points where
//! input sensitivity is measured.

use faer::Mat;

use crate::config::{Experiment, KernelSolution};
use crate::data::Dataset;
use crate::dynamics::TwinSpace;
use crate::linalg;
use crate::model::{Network, Parametrization};
use crate::ntk::analytic::AnalyticKernels;
use crate::ntk::empirical::{
    backprop_signals, empirical_ntk_blocked, ntk_from_signals, signals_and_outputs, trace_of_full,
    BackpropSignals,
};
use crate::ntk::KernelForm;
use crate::{Error, Result};

use super::RunOptions;

/// Points on which input sensitivity is measured.
pub const SENSITIVITY_POINTS: usize = 32;

/// Everything known at t = 0.
pub struct Initial {
    /// Initial outputs on train, validation then test points, row-major `n_all × K`.
    pub f0_all: Vec<f64>,
    /// Empirical Θ0 between all points (train, validation, test) and the training points, in
    /// the configured form; train × train only when nothing needs the held-out rows (a
    /// parameter-space twin and no empirical kernel track).
    pub theta0: Mat<f64>,
    /// Θ0 train × train, output-averaged.
    pub theta0_trace_train: Mat<f64>,
    /// Analytic NTK, all × train (NaN under mup, which has no infinite-width limit).
    pub analytic_ntk: Mat<f64>,
    /// Analytic NNGP, all × train.
    pub analytic_nngp: Mat<f64>,
    /// Per-layer terms of Θ0 on the probe set (output-averaged).
    pub probe_layers: Vec<Mat<f64>>,
    /// Θ0 on the probe set (output-averaged).
    pub theta0_probe: Mat<f64>,
    /// The network at initialisation (for the twin's input gradients and new points).
    pub net0: Network,
    /// Backprop signals of the training points at θ0 (for the twin at new points).
    pub s_train: BackpropSignals,
    /// Points where input sensitivity is measured (row-major) and their count.
    pub sens_x: Vec<f64>,
    /// Number of sensitivity points.
    pub sens_n: usize,
    /// Wall time of the empirical Θ0 alone (backprop signals and Gram products, train and
    /// test rows), seconds.
    pub empirical_ntk_seconds: f64,
    /// An iterative run's stored kernels (then `theta0`, `theta0_trace_train` and the analytic
    /// matrices are empty, and `s_train` holds the probe points' signals only).
    pub stored: Option<Stored>,
}

/// The kernels of an iterative run and what is measured on them at t = 0.
pub struct Stored {
    /// Where they are and what they are.
    pub plan: super::stored::StorePlan,
    /// The stores.
    pub kernels: crate::ntk::blocked::JobStores,
    /// The analytic NTK on the probe set (output-averaged form; empty without analytic kernels).
    pub probe_analytic_ntk: Mat<f64>,
    /// `‖Θ0 − Θ∞‖_F/‖Θ∞‖_F` between the empirical and analytic training kernels, and on how many
    /// points it was measured (all training points when both stores exist, else the probe set).
    pub empirical_vs_analytic: (f64, usize),
}

impl Initial {
    /// Computes the initial state of `net` on `data`.
    pub fn compute(
        exp: &Experiment,
        data: &Dataset,
        net: &Network,
        opts: &RunOptions<'_>,
    ) -> Result<Initial> {
        if let Some(plan) = super::stored::StorePlan::of(exp, data) {
            return Self::compute_stored(exp, data, net, opts, plan);
        }
        let progress = opts.progress;
        let stop = || opts.interrupted();
        let n_train = data.n_train();
        let n_all = n_train + data.n_heldout();
        let k = data.n_outputs;
        let x_all = data.x_all();
        let form = exp.kernel.form;
        progress.start("kernels", 3);
        let clock = std::time::Instant::now();
        let heldout_rows = twin_space(exp, data) == TwinSpace::Function
            || exp.kernel.solutions.contains(&KernelSolution::Empirical);
        let (s_train, theta0, f0_all) = empirical_theta0(exp, data, net, heldout_rows)?;
        let empirical_ntk_seconds = clock.elapsed().as_secs_f64();
        let rows_train = n_train * form.rows_per_point(k);
        let theta0_train = linalg::block(theta0.as_ref(), 0, rows_train, 0, theta0.ncols());
        let theta0_trace_train = match form {
            KernelForm::Full => trace_of_full(&theta0_train, k),
            KernelForm::Trace => theta0_train,
        };
        progress.advance(1);
        let analytic = analytic_kernels(exp, net, &x_all, n_all, &data.x_train, n_train, &stop)
            .ok_or_else(|| Error::Interrupted("while computing the analytic kernels".into()))?;
        progress.advance(1);
        let p = exp.kernel.probe_size.min(n_train);
        let s_probe = s_train.head(p);
        let probe = ntk_from_signals(net, &s_probe, &s_probe, KernelForm::Trace);
        progress.advance(1);
        progress.finish();
        let (sens_x, sens_n) = sensitivity_points(data);
        Ok(Initial {
            f0_all,
            theta0,
            theta0_trace_train,
            analytic_ntk: analytic.ntk,
            analytic_nngp: analytic.nngp,
            theta0_probe: probe.total(),
            probe_layers: probe.per_layer,
            net0: net.clone(),
            s_train,
            sens_x,
            sens_n,
            empirical_ntk_seconds,
            stored: None,
        })
    }

    /// [`Initial::compute`] of an iterative run: kernels into stores, probe-set kernels dense.
    fn compute_stored(
        exp: &Experiment,
        data: &Dataset,
        net: &Network,
        opts: &RunOptions<'_>,
        plan: super::stored::StorePlan,
    ) -> Result<Initial> {
        let n_train = data.n_train();
        let x_all = data.x_all();
        let f0_all = net.predict(&x_all, x_all.len() / data.input_dim.max(1))?;
        let clock = std::time::Instant::now();
        let kernels = super::stored::compute(&plan, exp, data, net, opts, None)?
            .expect("all units computed without a shard");
        let empirical_ntk_seconds = clock.elapsed().as_secs_f64();
        let p = exp.kernel.probe_size.min(n_train);
        let x_probe = &data.x_train[..p * data.input_dim];
        let s_probe = backprop_signals(net, x_probe, p)?;
        let probe = ntk_from_signals(net, &s_probe, &s_probe, KernelForm::Trace);
        let theta0_probe = probe.total();
        let probe_analytic_ntk = match &kernels.ntk {
            Some(k) => k.train.leading(p)?,
            None => Mat::zeros(0, 0),
        };
        let empirical_vs_analytic = match (&kernels.empirical, &kernels.ntk) {
            (Some(e), Some(a)) => (
                e.train.frobenius_products(&a.train)?.rel_distance(),
                n_train,
            ),
            (None, Some(_)) => (
                linalg::rel_frobenius(theta0_probe.as_ref(), probe_analytic_ntk.as_ref()),
                p,
            ),
            _ => (f64::NAN, 0),
        };
        let (sens_x, sens_n) = sensitivity_points(data);
        let empty = Mat::zeros(0, 0);
        Ok(Initial {
            f0_all,
            theta0: empty.clone(),
            theta0_trace_train: empty.clone(),
            analytic_ntk: empty.clone(),
            analytic_nngp: empty,
            theta0_probe,
            probe_layers: probe.per_layer,
            net0: net.clone(),
            s_train: s_probe,
            sens_x,
            sens_n,
            empirical_ntk_seconds,
            stored: Some(Stored {
                plan,
                kernels,
                probe_analytic_ntk,
                empirical_vs_analytic,
            }),
        })
    }

    /// The initial state of one member of an ensemble: its outputs and empirical Θ0 (what its
    /// network and twin need). The analytic kernels, the probe set and the sensitivity points
    /// are the main run's business and are left empty.
    pub fn member(exp: &Experiment, data: &Dataset, net: &Network) -> Result<Initial> {
        let (s_train, theta0, f0_all) = empirical_theta0(exp, data, net, true)?;
        let empty = Mat::zeros(0, 0);
        Ok(Initial {
            f0_all,
            theta0,
            theta0_trace_train: empty.clone(),
            analytic_ntk: empty.clone(),
            analytic_nngp: empty.clone(),
            probe_layers: Vec::new(),
            theta0_probe: empty,
            net0: net.clone(),
            s_train,
            sens_x: Vec::new(),
            sens_n: 0,
            empirical_ntk_seconds: 0.0,
            stored: None,
        })
    }
}

/// The training points' backprop signals, the empirical Θ0 (all points × training points, or
/// training × training points without `heldout_rows`, in the configured form, in row blocks
/// with `kernel.block_size`) and the initial outputs on all points.
fn empirical_theta0(
    exp: &Experiment,
    data: &Dataset,
    net: &Network,
    heldout_rows: bool,
) -> Result<(BackpropSignals, Mat<f64>, Vec<f64>)> {
    let n_train = data.n_train();
    let n_all = n_train + data.n_heldout();
    let x_all = data.x_all();
    let form = exp.kernel.form;
    // The rows of Θ0: every point, or the training points only.
    let (x_rows, n_rows) = if heldout_rows {
        (x_all.as_slice(), n_all)
    } else {
        (data.x_train.as_slice(), n_train)
    };
    Ok(match exp.kernel.block_size {
        Some(block) => {
            let s_train = backprop_signals(net, &data.x_train, n_train)?;
            let theta0 = empirical_ntk_blocked(net, x_rows, n_rows, &s_train, form, block)?;
            let f0 = net.predict(&x_all, n_all)?;
            (s_train, theta0, f0)
        }
        None if !heldout_rows => {
            let s_train = backprop_signals(net, &data.x_train, n_train)?;
            let theta0 = ntk_from_signals(net, &s_train, &s_train, form).total();
            (s_train, theta0, net.predict(&x_all, n_all)?)
        }
        None => {
            // The signals' forward pass gives the initial outputs too. The training block is
            // symmetric (computed on its lower triangle), the held-out rows against it.
            let (s_all, f0) = signals_and_outputs(net, &x_all, n_all)?;
            let (s_train, s_heldout) = s_all.split_at(n_train);
            let train = ntk_from_signals(net, &s_train, &s_train, form).total();
            let heldout = ntk_from_signals(net, &s_heldout, &s_train, form).total();
            drop(s_heldout);
            let theta0 = linalg::stack_rows(train.as_ref(), heldout.as_ref());
            (s_train, theta0, f0)
        }
    })
}

/// Analytic NNGP and NTK between `x1` and `x2`; mup has no infinite-width NTK (its features
/// move at any width), so its analytic kernels are left undefined (NaN) and configs may not ask
/// for the analytic track.
fn analytic_kernels(
    exp: &Experiment,
    net: &Network,
    x1: &[f64],
    n1: usize,
    x2: &[f64],
    n2: usize,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<AnalyticKernels> {
    if net.config.model.parametrization == Parametrization::Mup {
        let nan = Mat::from_fn(n1, n2, |_, _| f64::NAN);
        return Some(AnalyticKernels {
            nngp: nan.clone(),
            ntk: nan,
        });
    }
    crate::ntk::analytic_kernels_until(
        &net.config,
        exp.kernel.quadrature_order,
        (x1, n1),
        (x2, n2),
        stop,
    )
}

/// Up to [`SENSITIVITY_POINTS`] points spread evenly over the test set (the training set when
/// there are no test points), row-major, and their count.
fn sensitivity_points(data: &Dataset) -> (Vec<f64>, usize) {
    let d = data.input_dim;
    let (pool, pool_n) = if data.n_test() > 0 {
        (&data.x_test, data.n_test())
    } else {
        (&data.x_train, data.n_train())
    };
    let n = pool_n.min(SENSITIVITY_POINTS);
    let x = (0..n)
        .flat_map(|i| {
            let a = i * pool_n / n;
            pool[a * d..(a + 1) * d].iter().copied()
        })
        .collect();
    (x, n)
}
/// Where the twin of a run on `data` (the kernel view) lives: parameter space with
/// `kernel.train_subset` or the iterative solver, else as `training.twin` resolves for the size
/// of its Θ0.
pub fn twin_space(exp: &Experiment, data: &Dataset) -> TwinSpace {
    // An iterative run has no dense Θ0 for a function-space twin.
    if exp.kernel.train_subset.is_some() || exp.kernel.plan.is_some() {
        return TwinSpace::Parameter;
    }
    let rows = exp.kernel.form.rows_per_point(data.n_outputs);
    exp.training.twin.resolve(
        (data.n_train() + data.n_heldout()) * rows,
        data.n_train() * rows,
    )
}
