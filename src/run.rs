//! Wiring of one experiment: data → model → kernels → three tracks in lockstep → [`RunRecord`].
//! No files are written here (see [`crate::report`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use faer::Mat;

use crate::config::{Experiment, KernelSolution, LearningRate};
use crate::data::Dataset;
use crate::dynamics::kernel::{KernelPredictor, PredictorInputs};
use crate::dynamics::linearized::LinearizedTwin;
use crate::dynamics::network::NetworkTrainer;
use crate::dynamics::MinibatchSchedule;
use crate::linalg;
use crate::metrics;
use crate::model::{tensor_from_f64, Mlp, MlpConfig};
use crate::ntk::analytic::{AnalyticConfig, MomentMethod};
use crate::ntk::empirical::{backprop_signals, ntk_from_signals, trace_of_full, BackpropSignals};
use crate::ntk::KernelForm;
use crate::record::*;
use crate::{Error, Result};

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
        RunOptions { interrupt: None, progress: &Silent }
    }
}

/// The MLP configuration of an experiment on a data set.
pub fn mlp_config(exp: &Experiment, data: &Dataset) -> MlpConfig {
    let m = &exp.model;
    MlpConfig {
        input_dim: data.input_dim,
        width: m.width,
        depth: m.depth,
        n_outputs: data.n_outputs,
        activation: m.activation,
        w_std: m.w_std,
        b_std: m.b_std,
        bias: m.bias,
        parametrization: m.parametrization,
        precision: m.precision,
        backend: m.backend,
    }
}

/// Rows `0..n` of every matrix of a signal set (the training points are the first rows).
fn head_signals(s: &BackpropSignals, n: usize) -> BackpropSignals {
    let head = |m: &Mat<f64>| linalg::block(m.as_ref(), 0, n, 0, m.ncols());
    BackpropSignals { inputs: s.inputs.iter().map(head).collect(), deltas: s.deltas.iter().map(|d| d.iter().map(head).collect()).collect() }
}

/// Row-major `n × K` values as "target rows" of a kernel form: `n × K` (per-output kernel) or
/// `(n·K) × 1` (full kernel).
fn as_rows(values: &[f64], k: usize, per_output: bool) -> Mat<f64> {
    if per_output {
        linalg::mat_from_rows(values, values.len() / k.max(1), k)
    } else {
        linalg::mat_from_rows(values, values.len(), 1)
    }
}

struct Timer(Vec<PhaseTiming>, Instant);

impl Timer {
    fn lap(&mut self, phase: &str) {
        self.0.push(PhaseTiming { phase: phase.into(), seconds: self.1.elapsed().as_secs_f64() });
        self.1 = Instant::now();
    }
}

/// Everything known at t = 0.
struct Initial {
    f0_all: Vec<f64>,
    theta0: Mat<f64>,
    theta0_trace_train: Mat<f64>,
    analytic_ntk: Mat<f64>,
    analytic_nngp: Mat<f64>,
    probe_signals_layers: Vec<Mat<f64>>,
    theta0_probe: Mat<f64>,
    theta0_params: Vec<Vec<f64>>,
}

fn initial(exp: &Experiment, data: &Dataset, mlp: &Mlp, progress: &dyn Progress) -> Result<Initial> {
    let n_train = data.n_train();
    let n_all = n_train + data.n_test();
    let k = data.n_outputs;
    let x_all = data.x_all();
    progress.start("kernels", 3);
    let f0_all = mlp.predict(&x_all, n_all)?;
    let s_all = backprop_signals(mlp, &x_all, n_all)?;
    let s_train = head_signals(&s_all, n_train);
    let theta0 = ntk_from_signals(mlp, &s_all, &s_train, exp.kernel.form).total();
    let theta0_train = linalg::block(theta0.as_ref(), 0, n_train * rows_per_point(exp, k), 0, theta0.ncols());
    let theta0_trace_train = match exp.kernel.form {
        KernelForm::Full => trace_of_full(&theta0_train, k),
        KernelForm::Trace => theta0_train,
    };
    progress.advance(1);
    let mut acfg = AnalyticConfig::from(&mlp.config);
    acfg.method = MomentMethod::Auto(exp.kernel.quadrature_order);
    let ak = acfg.kernels(&x_all, n_all, &data.x_train, n_train);
    progress.advance(1);
    let p = exp.kernel.probe_size.min(n_train);
    let s_probe = head_signals(&s_train, p);
    let probe = ntk_from_signals(mlp, &s_probe, &s_probe, KernelForm::Trace);
    progress.advance(1);
    progress.finish();
    Ok(Initial {
        f0_all,
        theta0,
        theta0_trace_train,
        analytic_ntk: ak.ntk,
        analytic_nngp: ak.nngp,
        theta0_probe: probe.total(),
        probe_signals_layers: probe.per_layer,
        theta0_params: mlp.flatten_layers()?,
    })
}

fn rows_per_point(exp: &Experiment, k: usize) -> usize {
    match exp.kernel.form {
        KernelForm::Full => k,
        KernelForm::Trace => 1,
    }
}

/// The tracks' current predictions on all points (row-major `n_all × K`), in track order.
struct Snapshot {
    all: Vec<Vec<f64>>,
}

/// Checks that need the data (batch and probe sizes, memory) before any work or output.
pub fn preflight(exp: &Experiment, data: &Dataset) -> Result<()> {
    let n_train = data.n_train();
    if let Some(b) = exp.training.batch_size {
        if b > n_train {
            return Err(Error::value("training.batch_size", b, format!("an integer in [1, number of training points = {n_train}]")));
        }
    }
    check_memory(exp, n_train + data.n_test(), n_train, data.n_outputs)
}

/// Runs one experiment on its data.
pub fn execute(exp: &Experiment, data: &Dataset, opts: &RunOptions<'_>) -> Result<RunRecord> {
    let mut timer = Timer(Vec::new(), Instant::now());
    let n_train = data.n_train();
    let n_test = data.n_test();
    let n_all = n_train + n_test;
    let k = data.n_outputs;
    preflight(exp, data)?;
    let mcfg = mlp_config(exp, data);
    let mlp = mcfg.init(exp.seed);
    let init = initial(exp, data, &mlp, opts.progress)?;
    timer.lap("kernels");

    let rpp = rows_per_point(exp, k);
    let per_output = exp.kernel.form == KernelForm::Trace;
    let n_targets = n_train * k;
    let lambda_max0 = linalg::sym_eigenvalues(linalg::block(init.theta0.as_ref(), 0, n_train * rpp, 0, n_train * rpp).as_ref())?.last().copied().unwrap_or(0.0);
    let critical_lr = if lambda_max0 > 0.0 { 2.0 * n_targets as f64 / lambda_max0 } else { f64::INFINITY };
    let lr = match exp.training.learning_rate {
        LearningRate::Absolute(v) => v,
        LearningRate::CriticalMultiple(s) => s * critical_lr,
    };
    if !lr.is_finite() {
        return Err(Error::Numerics(format!("learning rate {lr} is not finite (λ_max(Θ0) = {lambda_max0})")));
    }

    // Targets seen by the training (shifted by f0 when centring; predictions are reported minus f0).
    let f0_train = &init.f0_all[..n_train * k];
    let center = exp.training.center_outputs;
    let shift = |v: &[f64], f0: &[f64]| -> Vec<f64> { if center { v.iter().zip(f0).map(|(a, b)| a + b).collect() } else { v.to_vec() } };
    let y_fit = shift(&data.y_train, f0_train);

    // Tracks.
    let mut tracks = vec![Track::Network, Track::Linearized];
    for s in &exp.kernel.solutions {
        tracks.push(match s {
            KernelSolution::Analytic => Track::KernelAnalytic,
            KernelSolution::Empirical => Track::KernelEmpirical,
        });
    }
    let mut pairs = Vec::new();
    for i in 0..tracks.len() {
        for j in i + 1..tracks.len() {
            pairs.push((tracks[i], tracks[j]));
        }
    }
    let mut network = NetworkTrainer::new(mlp, lr, exp.training.momentum);
    let mut twin = LinearizedTwin::new(init.theta0.clone(), as_rows(&init.f0_all, k, per_output), rpp, lr, exp.training.momentum);
    let y_rows = as_rows(&y_fit, k, per_output);

    let f0_test = &init.f0_all[n_train * k..];
    let mut predictors = Vec::new();
    for s in &exp.kernel.solutions {
        let (theta_train, theta_test, f0tr, f0te, ytr, nt) = match s {
            KernelSolution::Analytic => (
                linalg::block(init.analytic_ntk.as_ref(), 0, n_train, 0, n_train),
                linalg::block(init.analytic_ntk.as_ref(), n_train, n_test, 0, n_train),
                linalg::mat_from_rows(f0_train, n_train, k),
                linalg::mat_from_rows(f0_test, n_test, k),
                linalg::mat_from_rows(&y_fit, n_train, k),
                n_targets,
            ),
            KernelSolution::Empirical => (
                linalg::block(init.theta0.as_ref(), 0, n_train * rpp, 0, n_train * rpp),
                linalg::block(init.theta0.as_ref(), n_train * rpp, n_test * rpp, 0, n_train * rpp),
                as_rows(f0_train, k, per_output),
                as_rows(f0_test, k, per_output),
                y_rows.clone(),
                n_targets,
            ),
        };
        let pred = KernelPredictor::new(PredictorInputs {
            theta_train: &theta_train,
            theta_test_train: Some(&theta_test),
            f0_train: &f0tr,
            f0_test: Some(&f0te),
            y_train: &ytr,
            n_targets: nt,
            learning_rate: lr,
            time: exp.kernel.time,
            diag_reg: exp.kernel.diag_reg,
        })?;
        predictors.push(pred);
    }
    timer.lap("predictor setup");

    // Network batches as prepared tensors when full batch.
    let mut schedule = MinibatchSchedule::new(n_train, exp.training.batch_size.unwrap_or(n_train), exp.seed);
    let ad = network.mlp.device().clone().autodiff();
    let dtype = network.mlp.dtype();
    let full_batch_tensors = schedule.is_full_batch().then(|| (tensor_from_f64(&data.x_train, [n_train, data.input_dim], dtype, &ad), tensor_from_f64(&y_fit, [n_train, k], dtype, &ad)));

    let mut diverged: Vec<Option<u64>> = vec![None; tracks.len()];
    let mut checkpoints = Vec::new();
    let mut last_probe = init.theta0_probe.clone();
    let mut status = RunStatus::Completed;
    let steps = exp.training.steps;
    let x_all = data.x_all();
    let p = exp.kernel.probe_size.min(n_train);
    opts.progress.start("training", steps);
    let mut last_snapshot = None;
    for step in 0..=steps {
        let is_ckpt = step % exp.logging.every == 0 || step == steps;
        let is_kernel_ckpt = step % exp.logging.kernel_every == 0 || step == steps;
        if is_ckpt {
            let snap = snapshot(&network.mlp, &twin, &predictors, &x_all, n_all, k, per_output, step, &diverged)?;
            let ck = checkpoint_figures(step, lr, &snap, data, &init.f0_all, center, &tracks, &pairs, &mut diverged, exp.training.max_loss);
            let kernel = if is_kernel_ckpt {
                let (kc, probe_total) = kernel_figures(&network.mlp, &data.x_train, p, &init)?;
                last_probe = probe_total;
                Some(kc)
            } else {
                None
            };
            checkpoints.push(Checkpoint { kernel, ..ck });
            last_snapshot = Some(snap);
        }
        if step == steps {
            break;
        }
        if opts.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            status = RunStatus::Interrupted;
            // Log the state at the interruption if it is not a checkpoint already.
            if !is_ckpt {
                let snap = snapshot(&network.mlp, &twin, &predictors, &x_all, n_all, k, per_output, step, &diverged)?;
                checkpoints.push(checkpoint_figures(step, lr, &snap, data, &init.f0_all, center, &tracks, &pairs, &mut diverged, exp.training.max_loss));
                last_snapshot = Some(snap);
            }
            break;
        }
        let batch = schedule.next_batch();
        if diverged[0].is_none() {
            let loss = match &full_batch_tensors {
                Some((x, y)) => network.step_tensors(x.clone(), y.clone())?,
                None => {
                    let xb: Vec<f64> = batch.iter().flat_map(|&a| data.x_train[a * data.input_dim..(a + 1) * data.input_dim].iter().copied()).collect();
                    let yb: Vec<f64> = batch.iter().flat_map(|&a| y_fit[a * k..(a + 1) * k].iter().copied()).collect();
                    network.step(&xb, &yb, batch.len())?
                }
            };
            if !loss.is_finite() || loss > exp.training.max_loss {
                diverged[0] = Some(step);
            }
        }
        if diverged[1].is_none() {
            twin.step(&batch, &y_rows);
        }
        opts.progress.advance(1);
    }
    opts.progress.finish();
    timer.lap("training");

    // Final kernels and outputs.
    let snap = last_snapshot.expect("at least one checkpoint");
    let final_step = checkpoints.last().map(|c| c.step).unwrap_or(0);
    let unshift = |v: &[f64], f0: &[f64]| -> Vec<f64> { if center { v.iter().zip(f0).map(|(a, b)| a - b).collect() } else { v.to_vec() } };
    let outputs: Vec<TrackOutputs> = tracks
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let v = unshift(&snap.all[i], &init.f0_all);
            TrackOutputs { track: t, train: v[..n_train * k].to_vec(), test: v[n_train * k..].to_vec(), diverged_at_step: diverged[i] }
        })
        .collect();
    let s_final = backprop_signals(&network.mlp, &data.x_train, n_train)?;
    let theta_final = ntk_from_signals(&network.mlp, &s_final, &s_final, exp.kernel.form).total();
    let theta_final_trace = match exp.kernel.form {
        KernelForm::Full => trace_of_full(&theta_final, k),
        KernelForm::Trace => theta_final.clone(),
    };
    let analytic_train = linalg::block(init.analytic_ntk.as_ref(), 0, n_train, 0, n_train);
    let desc = |m: &Mat<f64>| -> Result<Vec<f64>> {
        let mut v = linalg::sym_eigenvalues(m.as_ref())?;
        v.reverse();
        Ok(v)
    };
    let kernel_solutions = exp
        .kernel
        .solutions
        .iter()
        .zip(&predictors)
        .map(|(s, pr)| {
            let (_, test) = pr.predict_infinite();
            let test = test.map(|t| linalg::mat_to_rows(t.as_ref())).unwrap_or_default();
            let test = unshift(&test, f0_test);
            KernelSolutionSummary {
                track: if *s == KernelSolution::Analytic { Track::KernelAnalytic } else { Track::KernelEmpirical },
                lambda: pr.lambda,
                condition_number: pr.condition_number,
                lambda_max: pr.lambda_max,
                test_loss_infinite_time: metrics::half_mse(&test, &data.y_test),
                test_infinite_time: test,
            }
        })
        .collect();
    let kernels = if exp.outputs.save_kernels {
        let shape = |m: &Mat<f64>| [m.nrows(), m.ncols()];
        let pack = |m: Mat<f64>| Some((linalg::mat_to_rows(m.as_ref()), shape(&m)));
        let theta0_train = linalg::block(init.theta0.as_ref(), 0, n_train * rpp, 0, n_train * rpp);
        KernelMatrices {
            analytic_ntk: pack(analytic_train.clone()),
            analytic_nngp: pack(linalg::block(init.analytic_nngp.as_ref(), 0, n_train, 0, n_train)),
            analytic_ntk_test_train: pack(linalg::block(init.analytic_ntk.as_ref(), n_train, n_test, 0, n_train)),
            empirical_ntk_init: pack(theta0_train),
            empirical_ntk_final: pack(theta_final.clone()),
        }
    } else {
        KernelMatrices::default()
    };
    let record = RunRecord {
        name: exp.name.clone(),
        seed: exp.seed,
        config_toml: exp.resolved_toml(),
        status,
        tracks,
        pairs,
        checkpoints,
        n_layers: network.mlp.shapes.len(),
        n_params: network.mlp.config.n_params(),
        input_dim: data.input_dim,
        n_outputs: k,
        feature_names: data.feature_names.clone(),
        target_names: data.target_names.clone(),
        x_train: data.x_train.clone(),
        x_test: data.x_test.clone(),
        y_train: data.y_train.clone(),
        y_test: data.y_test.clone(),
        outputs,
        kernel_solutions,
        learning_rate: lr,
        critical_learning_rate: critical_lr,
        init_ntk_vs_analytic: linalg::rel_frobenius(init.theta0_trace_train.as_ref(), analytic_train.as_ref()),
        spectrum_init: desc(&init.theta0_trace_train)?,
        spectrum_final: desc(&theta_final_trace)?,
        spectrum_analytic: desc(&analytic_train)?,
        probe_ntk_init: linalg::mat_to_rows(init.theta0_probe.as_ref()),
        probe_ntk_final: linalg::mat_to_rows(last_probe.as_ref()),
        probe_size: p,
        kernels,
        timings: Vec::new(),
        kernel_form: exp.kernel.form.name().into(),
    };
    timer.lap("final kernels");
    let _ = final_step;
    Ok(RunRecord { timings: timer.0, ..record })
}

/// Refuses work whose kernels would not fit in memory (call before creating any output).
pub fn check_memory(exp: &Experiment, n_all: usize, n_train: usize, k: usize) -> Result<()> {
    let rpp = rows_per_point(exp, k) as u64;
    let (n_all, n_train) = (n_all as u64, n_train as u64);
    // Θ0(all, train) + analytic kernels + predictors' eigenvectors, f64.
    let kernel_bytes = 8 * (n_all * rpp * n_train * rpp * 3 + 2 * n_all * n_train + 2 * (n_train * rpp).pow(2));
    // Layer inputs and backprop signals of all points, f64.
    let signal_bytes = 8 * n_all * exp.model.width as u64 * (exp.model.depth as u64 + 1) * (k as u64 + 1);
    let needed = kernel_bytes + signal_bytes;
    let available = available_memory_bytes();
    if needed > available {
        return Err(Error::Memory { what: format!("kernels for {n_all} points × {k} outputs ({} form)", exp.kernel.form.name()), needed_bytes: needed, available_bytes: available });
    }
    Ok(())
}

/// Available memory from `/proc/meminfo` (or a generous default elsewhere).
pub fn available_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(16 << 30)
}

#[allow(clippy::too_many_arguments)]
fn snapshot(mlp: &Mlp, twin: &LinearizedTwin, predictors: &[KernelPredictor], x_all: &[f64], n_all: usize, k: usize, per_output: bool, step: u64, diverged: &[Option<u64>]) -> Result<Snapshot> {
    let _ = diverged;
    let net = mlp.predict(x_all, n_all)?;
    let lin = linalg::mat_to_rows(twin.predictions().as_ref());
    let mut all = vec![net, lin];
    for (i, p) in predictors.iter().enumerate() {
        let (tr, te) = p.predict(step);
        // The analytic predictor is per output; the empirical one follows the kernel form.
        let _ = (i, per_output, k);
        let mut v = linalg::mat_to_rows(tr.as_ref());
        if let Some(te) = te {
            v.extend(linalg::mat_to_rows(te.as_ref()));
        }
        all.push(v);
    }
    Ok(Snapshot { all })
}

#[allow(clippy::too_many_arguments)]
fn checkpoint_figures(step: u64, lr: f64, snap: &Snapshot, data: &Dataset, f0_all: &[f64], center: bool, tracks: &[Track], pairs: &[(Track, Track)], diverged: &mut [Option<u64>], max_loss: f64) -> Checkpoint {
    let n_tr = data.n_train() * data.n_outputs;
    let view: Vec<Vec<f64>> = snap.all.iter().map(|v| if center { v.iter().zip(f0_all).map(|(a, b)| a - b).collect() } else { v.clone() }).collect();
    let mut train_loss = Vec::new();
    let mut test_loss = Vec::new();
    for (i, v) in view.iter().enumerate() {
        let l = metrics::half_mse(&v[..n_tr], &data.y_train).unwrap_or(f64::NAN);
        if diverged[i].is_none() && (!l.is_finite() || l > max_loss) {
            diverged[i] = Some(step);
        }
        train_loss.push(l);
        test_loss.push(metrics::half_mse(&v[n_tr..], &data.y_test));
    }
    let idx = |t: Track| tracks.iter().position(|&x| x == t).expect("track");
    let rmse_train = pairs.iter().map(|&(a, b)| metrics::rmse(&view[idx(a)][..n_tr], &view[idx(b)][..n_tr]).unwrap_or(f64::NAN)).collect();
    let rmse_test = pairs.iter().map(|&(a, b)| metrics::rmse(&view[idx(a)][n_tr..], &view[idx(b)][n_tr..])).collect();
    Checkpoint { step, time: lr * step as f64, train_loss, test_loss, rmse_train, rmse_test, kernel: None }
}

fn kernel_figures(mlp: &Mlp, x_train: &[f64], p: usize, init: &Initial) -> Result<(KernelCheckpoint, Mat<f64>)> {
    let d = mlp.config.input_dim;
    let s = backprop_signals(mlp, &x_train[..p * d], p)?;
    let ntk = ntk_from_signals(mlp, &s, &s, KernelForm::Trace);
    let total = ntk.total();
    let params = mlp.flatten_layers()?;
    let flat_now: Vec<f64> = params.concat();
    let flat_init: Vec<f64> = init.theta0_params.concat();
    let lambda_max = linalg::sym_eigenvalues(total.as_ref())?.last().copied().unwrap_or(f64::NAN);
    Ok((
        KernelCheckpoint {
            ntk_rel_drift: linalg::rel_frobenius(total.as_ref(), init.theta0_probe.as_ref()),
            ntk_kernel_distance: linalg::kernel_distance(total.as_ref(), init.theta0_probe.as_ref()),
            ntk_lambda_max: lambda_max,
            ntk_rel_drift_per_layer: ntk.per_layer.iter().zip(&init.probe_signals_layers).map(|(a, b)| linalg::rel_frobenius(a.as_ref(), b.as_ref())).collect(),
            param_rel_change: metrics::rel_change(&flat_now, &flat_init),
            param_rel_change_per_layer: params.iter().zip(&init.theta0_params).map(|(a, b)| metrics::rel_change(a, b)).collect(),
        },
        total,
    ))
}
