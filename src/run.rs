//! Wiring of one experiment: data → model → kernels → three tracks in lockstep → [`RunRecord`].
//! No files are written here (see [`crate::report`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Tensor;
use faer::Mat;

use crate::config::{Experiment, KernelSolution, LearningRate};
use crate::data::Dataset;
use crate::dynamics::kernel::{KernelPredictor, PredictorInputs};
use crate::dynamics::linearized::LinearizedTwin;
use crate::dynamics::network::NetworkTrainer;
use crate::dynamics::{cross_entropy, sensitivity, MinibatchSchedule};
use crate::linalg;
use crate::metrics;
use crate::model::{tensor_from_f64, Mlp, MlpConfig};
use crate::ntk::analytic::{AnalyticConfig, MomentMethod};
use crate::ntk::empirical::{
    backprop_signals, empirical_ntk_blocked, ntk_from_signals, trace_of_full, BackpropSignals,
};
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
        RunOptions {
            interrupt: None,
            progress: &Silent,
        }
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
    BackpropSignals {
        inputs: s.inputs.iter().map(head).collect(),
        deltas: s
            .deltas
            .iter()
            .map(|d| d.iter().map(head).collect())
            .collect(),
    }
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
        self.0.push(PhaseTiming {
            phase: phase.into(),
            seconds: self.1.elapsed().as_secs_f64(),
        });
        self.1 = Instant::now();
    }
}

/// Points on which input sensitivity is measured.
pub const SENSITIVITY_POINTS: usize = 32;

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
    /// The same, concatenated (computed once).
    theta0_flat: Vec<f64>,
    /// The network at initialisation (for the twin's input gradients).
    mlp0: Mlp,
    /// Backprop signals of the training points at θ0 (for the twin at new points).
    s_train: BackpropSignals,
    /// Points where input sensitivity is measured (row-major) and their count.
    sens_x: Vec<f64>,
    sens_n: usize,
    /// Input gradients of f0 at those points.
    sens_g0: Vec<Vec<f64>>,
}

fn initial(
    exp: &Experiment,
    data: &Dataset,
    mlp: &Mlp,
    progress: &dyn Progress,
) -> Result<Initial> {
    let n_train = data.n_train();
    let n_all = n_train + data.n_test();
    let k = data.n_outputs;
    let x_all = data.x_all();
    progress.start("kernels", 3);
    let f0_all = mlp.predict(&x_all, n_all)?;
    let (s_train, theta0) = match exp.kernel.block_size {
        Some(block) => {
            let s_train = backprop_signals(mlp, &data.x_train, n_train)?;
            let theta0 =
                empirical_ntk_blocked(mlp, &x_all, n_all, &s_train, exp.kernel.form, block)?;
            (s_train, theta0)
        }
        None => {
            let s_all = backprop_signals(mlp, &x_all, n_all)?;
            let s_train = head_signals(&s_all, n_train);
            let theta0 = ntk_from_signals(mlp, &s_all, &s_train, exp.kernel.form).total();
            (s_train, theta0)
        }
    };
    let theta0_train = linalg::block(
        theta0.as_ref(),
        0,
        n_train * rows_per_point(exp, k),
        0,
        theta0.ncols(),
    );
    let theta0_trace_train = match exp.kernel.form {
        KernelForm::Full => trace_of_full(&theta0_train, k),
        KernelForm::Trace => theta0_train,
    };
    progress.advance(1);
    let mut acfg = AnalyticConfig::from(&mlp.config);
    acfg.method = MomentMethod::Auto(exp.kernel.quadrature_order);
    // mup has no infinite-width NTK (its features move at any width): the analytic kernels are
    // left undefined (NaN) and configs may not ask for the analytic track.
    let ak = if mlp.config.parametrization == crate::model::Parametrization::Mup {
        let nan = Mat::from_fn(n_all, n_train, |_, _| f64::NAN);
        crate::ntk::analytic::AnalyticKernels {
            nngp: nan.clone(),
            ntk: nan,
        }
    } else {
        acfg.kernels(&x_all, n_all, &data.x_train, n_train)
    };
    progress.advance(1);
    let p = exp.kernel.probe_size.min(n_train);
    let s_probe = head_signals(&s_train, p);
    let probe = ntk_from_signals(mlp, &s_probe, &s_probe, KernelForm::Trace);
    progress.advance(1);
    progress.finish();
    let d = data.input_dim;
    // Up to SENSITIVITY_POINTS points spread evenly over the test set (train set without one).
    let (pool, pool_n) = if data.n_test() > 0 {
        (&data.x_test, data.n_test())
    } else {
        (&data.x_train, n_train)
    };
    let sens_n = pool_n.min(SENSITIVITY_POINTS);
    let sens_x: Vec<f64> = (0..sens_n)
        .flat_map(|i| {
            pool[(i * pool_n / sens_n) * d..(i * pool_n / sens_n + 1) * d]
                .iter()
                .copied()
        })
        .collect();
    let theta0_params = mlp.flatten_layers()?;
    Ok(Initial {
        f0_all,
        theta0,
        theta0_trace_train,
        analytic_ntk: ak.ntk,
        analytic_nngp: ak.nngp,
        theta0_probe: probe.total(),
        probe_signals_layers: probe.per_layer,
        theta0_params: theta0_params.clone(),
        theta0_flat: theta0_params.concat(),
        mlp0: mlp.clone(),
        s_train: s_train.clone(),
        sens_g0: sensitivity::input_gradients(mlp, &sens_x, sens_n)?,
        sens_x,
        sens_n,
    })
}

fn rows_per_point(exp: &Experiment, k: usize) -> usize {
    match exp.kernel.form {
        KernelForm::Full => k,
        KernelForm::Trace => 1,
    }
}

/// Checks that need the data (batch and probe sizes, memory) before any work or output.
pub fn preflight(exp: &Experiment, data: &Dataset) -> Result<()> {
    let n_train = data.n_train();
    if let Some(b) = exp.training.batch_size {
        if b > n_train {
            return Err(Error::value(
                "training.batch_size",
                b,
                format!("an integer in [1, number of training points = {n_train}]"),
            ));
        }
    }
    check_memory(exp, n_train + data.n_test(), n_train, data.n_outputs)
}

/// The tracks trained in lockstep, and what is needed to log them.
struct Lockstep<'a> {
    data: &'a Dataset,
    x_all: Vec<f64>,
    f0_all: &'a [f64],
    center: bool,
    max_loss: f64,
    lr: f64,
    critical_lr: f64,
    tracks: Vec<Track>,
    pairs: Vec<(Track, Track)>,
    network: NetworkTrainer,
    twin: LinearizedTwin,
    predictors: Vec<KernelPredictor>,
    /// Training targets as seen by the tracks (shifted by f0 when centring), row-major.
    y_fit: Vec<f64>,
    /// The same in the twin's row layout.
    y_rows: Mat<f64>,
    /// Prepared network inputs and targets for full-batch training.
    full_batch: Option<(Tensor<2>, Tensor<2>)>,
    diverged: Vec<Option<u64>>,
}

impl Lockstep<'_> {
    /// Every track's predictions on all points (row-major `n_all × K`, reported frame:
    /// minus f0 when centring).
    fn predictions(&self, step: u64) -> Result<Vec<Vec<f64>>> {
        let n_all = self.x_all.len() / self.data.input_dim;
        let mut all = vec![
            self.network.mlp.predict(&self.x_all, n_all)?,
            linalg::mat_to_rows(self.twin.predictions().as_ref()),
        ];
        for p in &self.predictors {
            // Predictor rows are point-major like the others.
            let (tr, te) = p.predict(step);
            let mut v = linalg::mat_to_rows(tr.as_ref());
            if let Some(te) = te {
                v.extend(linalg::mat_to_rows(te.as_ref()));
            }
            all.push(v);
        }
        if self.center {
            for v in &mut all {
                for (a, b) in v.iter_mut().zip(self.f0_all) {
                    *a -= b;
                }
            }
        }
        Ok(all)
    }

    /// Losses and divergences at `step`; marks tracks whose loss left the bound.
    fn checkpoint(&mut self, step: u64, preds: &[Vec<f64>]) -> Checkpoint {
        let data = self.data;
        let n_tr = data.n_train() * data.n_outputs;
        let mut train_loss = Vec::new();
        let mut test_loss = Vec::new();
        for (i, v) in preds.iter().enumerate() {
            let l = metrics::half_mse(&v[..n_tr], &data.y_train).unwrap_or(f64::NAN);
            if self.diverged[i].is_none() && (!l.is_finite() || l > self.max_loss) {
                self.diverged[i] = Some(step);
            }
            train_loss.push(l);
            test_loss.push(metrics::half_mse(&v[n_tr..], &data.y_test));
        }
        let idx = |t: Track| self.tracks.iter().position(|&x| x == t).expect("track");
        let rmse_train = self
            .pairs
            .iter()
            .map(|&(a, b)| {
                metrics::rmse(&preds[idx(a)][..n_tr], &preds[idx(b)][..n_tr]).unwrap_or(f64::NAN)
            })
            .collect();
        let rmse_test = self
            .pairs
            .iter()
            .map(|&(a, b)| metrics::rmse(&preds[idx(a)][n_tr..], &preds[idx(b)][n_tr..]))
            .collect();
        let classification = data.classes.as_ref().map(|_| {
            let k = data.n_outputs;
            let split = |v: &[f64]| (v[..n_tr].to_vec(), v[n_tr..].to_vec());
            let parts: Vec<(Vec<f64>, Vec<f64>)> = preds.iter().map(|v| split(v)).collect();
            ClassCheckpoint {
                train_accuracy: parts
                    .iter()
                    .map(|(tr, _)| metrics::accuracy(tr, &data.y_train, k).unwrap_or(f64::NAN))
                    .collect(),
                test_accuracy: parts
                    .iter()
                    .map(|(_, te)| metrics::accuracy(te, &data.y_test, k))
                    .collect(),
                train_xent: parts
                    .iter()
                    .map(|(tr, _)| cross_entropy(tr, &data.y_train, k).unwrap_or(f64::NAN))
                    .collect(),
                test_xent: parts
                    .iter()
                    .map(|(_, te)| cross_entropy(te, &data.y_test, k))
                    .collect(),
                agreement: self
                    .pairs
                    .iter()
                    .map(|&(a, b)| {
                        let (pa, pb) = (&parts[idx(a)], &parts[idx(b)]);
                        if data.y_test.is_empty() {
                            metrics::agreement(&pa.0, &pb.0, k)
                        } else {
                            metrics::agreement(&pa.1, &pb.1, k)
                        }
                        .unwrap_or(f64::NAN)
                    })
                    .collect(),
            }
        });
        Checkpoint {
            step,
            time: self.lr * step as f64,
            train_loss,
            test_loss,
            rmse_train,
            rmse_test,
            kernel: None,
            classification,
            input_grad_norm: [f64::NAN; 2],
        }
    }

    /// One SGD step of the network and of its twin on `batch` (diverged tracks stay frozen).
    fn step(&mut self, step: u64, batch: &[usize]) -> Result<()> {
        let (d, k) = (self.data.input_dim, self.data.n_outputs);
        if self.diverged[0].is_none() {
            let loss = match &self.full_batch {
                Some((x, y)) => self.network.step_tensors(x.clone(), y.clone())?,
                None => {
                    let xb: Vec<f64> = batch
                        .iter()
                        .flat_map(|&a| self.data.x_train[a * d..(a + 1) * d].iter().copied())
                        .collect();
                    let yb: Vec<f64> = batch
                        .iter()
                        .flat_map(|&a| self.y_fit[a * k..(a + 1) * k].iter().copied())
                        .collect();
                    self.network.step(&xb, &yb, batch.len())?
                }
            };
            if !loss.is_finite() || loss > self.max_loss {
                self.diverged[0] = Some(step);
            }
        }
        if self.diverged[1].is_none() {
            self.twin.step(batch, &self.y_rows);
        }
        Ok(())
    }
}

/// The kernel-regression predictors of the configured solutions.
fn build_predictors(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lr: f64,
    y_fit: &[f64],
) -> Result<Vec<KernelPredictor>> {
    let (n_train, n_test, k) = (data.n_train(), data.n_test(), data.n_outputs);
    let rpp = rows_per_point(exp, k);
    let per_output = exp.kernel.form == KernelForm::Trace;
    let f0_train = &init.f0_all[..n_train * k];
    let f0_test = &init.f0_all[n_train * k..];
    exp.kernel
        .solutions
        .iter()
        .map(|s| {
            // The analytic kernel acts per output (Θ∞ ⊗ I_K); the empirical one in the configured form.
            let (theta, rows, per_out) = match s {
                KernelSolution::Analytic => (&init.analytic_ntk, 1, true),
                KernelSolution::Empirical => (&init.theta0, rpp, per_output),
            };
            KernelPredictor::new(PredictorInputs {
                theta_train: &linalg::block(theta.as_ref(), 0, n_train * rows, 0, n_train * rows),
                theta_test_train: Some(&linalg::block(
                    theta.as_ref(),
                    n_train * rows,
                    n_test * rows,
                    0,
                    n_train * rows,
                )),
                f0_train: &as_rows(f0_train, k, per_out),
                f0_test: Some(&as_rows(f0_test, k, per_out)),
                y_train: &as_rows(y_fit, k, per_out),
                n_targets: n_train * k,
                learning_rate: lr,
                time: exp.kernel.time,
                diag_reg: exp.kernel.diag_reg,
            })
        })
        .collect()
}

/// Runs one experiment on its data.
pub fn execute(exp: &Experiment, data: &Dataset, opts: &RunOptions<'_>) -> Result<RunRecord> {
    let mut timer = Timer(Vec::new(), Instant::now());
    let (n_train, k) = (data.n_train(), data.n_outputs);
    preflight(exp, data)?;
    let mlp = mlp_config(exp, data).init(exp.seed);
    let init = initial(exp, data, &mlp, opts.progress)?;
    timer.lap("kernels");

    let rpp = rows_per_point(exp, k);
    let per_output = exp.kernel.form == KernelForm::Trace;
    let lambda_max0 = linalg::sym_eigenvalues(
        linalg::block(init.theta0.as_ref(), 0, n_train * rpp, 0, n_train * rpp).as_ref(),
    )?
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
    // With centred outputs every track trains towards y + f0 and reports f − f0: the same
    // dynamics as learning y from zero.
    let center = exp.training.center_outputs;
    let y_fit: Vec<f64> = if center {
        data.y_train
            .iter()
            .zip(&init.f0_all)
            .map(|(a, b)| a + b)
            .collect()
    } else {
        data.y_train.clone()
    };

    let mut tracks = vec![Track::Network, Track::Linearized];
    tracks.extend(exp.kernel.solutions.iter().map(|s| match s {
        KernelSolution::Analytic => Track::KernelAnalytic,
        KernelSolution::Empirical => Track::KernelEmpirical,
    }));
    let pairs = (0..tracks.len())
        .flat_map(|i| (i + 1..tracks.len()).map(move |j| (i, j)))
        .map(|(i, j)| (tracks[i], tracks[j]))
        .collect();
    let predictors = build_predictors(exp, data, &init, lr, &y_fit)?;
    let schedule_full = exp.training.batch_size.is_none_or(|b| b == n_train);
    let full_batch = schedule_full.then(|| {
        let ad = mlp.device().clone().autodiff();
        (
            tensor_from_f64(&data.x_train, [n_train, data.input_dim], mlp.dtype(), &ad),
            tensor_from_f64(&y_fit, [n_train, k], mlp.dtype(), &ad),
        )
    });
    let mut lock = Lockstep {
        data,
        x_all: data.x_all(),
        f0_all: &init.f0_all,
        center,
        max_loss: exp.training.max_loss,
        lr,
        critical_lr,
        diverged: vec![None; tracks.len()],
        tracks,
        pairs,
        twin: LinearizedTwin::new(
            init.theta0.clone(),
            as_rows(&init.f0_all, k, per_output),
            rpp,
            lr,
            exp.training.momentum,
        )
        .with_loss(exp.training.loss),
        network: NetworkTrainer::new(mlp, lr, exp.training.momentum).with_loss(exp.training.loss),
        predictors,
        y_rows: as_rows(&y_fit, k, per_output),
        y_fit,
        full_batch,
    };
    timer.lap("predictor setup");

    let mut schedule = MinibatchSchedule::new(
        n_train,
        exp.training.batch_size.unwrap_or(n_train),
        exp.seed,
    );
    let mut checkpoints = Vec::new();
    let mut last_probe = init.theta0_probe.clone();
    let mut status = RunStatus::Completed;
    let steps = exp.training.steps;
    let p = exp.kernel.probe_size.min(n_train);
    let mut last_preds = None;
    opts.progress.start("training", steps);
    for step in 0..=steps {
        let interrupted = step < steps
            && opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst));
        let is_ckpt = step % exp.logging.every == 0 || step == steps || interrupted;
        if is_ckpt {
            let preds = lock.predictions(step)?;
            let mut ck = lock.checkpoint(step, &preds);
            ck.input_grad_norm = input_sensitivity(exp, data, &init, &lock)?;
            if step % exp.logging.kernel_every == 0 || step == steps || interrupted {
                let (kc, probe_total) = kernel_figures(&lock.network.mlp, &data.x_train, p, &init)?;
                last_probe = probe_total;
                ck.kernel = Some(kc);
            }
            checkpoints.push(ck);
            last_preds = Some(preds);
        }
        if interrupted {
            status = RunStatus::Interrupted;
            break;
        }
        if step == steps {
            break;
        }
        let batch = schedule.next_batch();
        lock.step(step, &batch)?;
        opts.progress.advance(1);
    }
    opts.progress.finish();
    timer.lap("training");

    let preds = last_preds.expect("at least one checkpoint");
    let record = finish(
        exp,
        data,
        &init,
        lock,
        preds,
        checkpoints,
        status,
        last_probe,
    )?;
    timer.lap("final kernels");
    Ok(RunRecord {
        timings: timer.0,
        ..record
    })
}

/// Input-Jacobian norms of the network and of its linearized twin (see [`sensitivity`]).
fn input_sensitivity(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lock: &Lockstep<'_>,
) -> Result<[f64; 2]> {
    let (n, x) = (init.sens_n, &init.sens_x);
    let g = sensitivity::input_gradients(&lock.network.mlp, x, n)?;
    let sub = |a: &[Vec<f64>], b: &[Vec<f64>]| -> Vec<Vec<f64>> {
        a.iter()
            .zip(b)
            .map(|(p, q)| p.iter().zip(q).map(|(u, v)| u - v).collect())
            .collect()
    };
    let net = if lock.center {
        sensitivity::mean_jacobian_norm(&sub(&g, &init.sens_g0), n)
    } else {
        sensitivity::mean_jacobian_norm(&g, n)
    };
    // β is in parameter correspondence only for the full kernel (or a single output).
    let lin = if exp.kernel.form == KernelForm::Full || data.n_outputs == 1 {
        let beta = linalg::mat_to_rows(lock.twin.coefficients().as_ref());
        let delta = sensitivity::displacement(&init.mlp0, &data.x_train, data.n_train(), &beta)?;
        let (total, change) =
            sensitivity::linearized_input_gradients(&init.mlp0, &init.theta0_flat, &delta, x, n)?;
        sensitivity::mean_jacobian_norm(if lock.center { &change } else { &total }, n)
    } else {
        f64::NAN
    };
    Ok([net, lin])
}

/// Characters generated per sample.
pub const SAMPLE_LENGTH: usize = 120;

/// Greedy and temperature-0.8 continuations of the held-out prompt by the network and by its
/// linearized twin (evaluated at new contexts as `f0(x) + Θ0(x, X_train)·β`).
fn generate_samples(
    exp: &Experiment,
    info: &crate::data::TextInfo,
    init: &Initial,
    lock: &Lockstep<'_>,
) -> Result<Vec<TextSample>> {
    use rand::{Rng, SeedableRng};
    let v = info.vocabulary.len();
    let beta = lock.twin.coefficients();
    let twin_at = |x: &[f64]| -> Result<Vec<f64>> {
        let s_x = backprop_signals(&init.mlp0, x, 1)?;
        let theta = ntk_from_signals(&init.mlp0, &s_x, &init.s_train, exp.kernel.form).total();
        let f = linalg::matmul(theta.as_ref(), beta.as_ref());
        let f0 = init.mlp0.predict(x, 1)?;
        Ok(linalg::mat_to_rows(f.as_ref())
            .iter()
            .zip(&f0)
            .map(|(a, b)| a + b)
            .collect())
    };
    let mut out = Vec::new();
    for (model, temperature) in [
        ("network", 0.0),
        ("network", 0.8),
        ("linearized", 0.0),
        ("linearized", 0.8),
    ] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(exp.seed ^ 0x7E47);
        let mut ctx: Vec<char> = info.prompt.chars().collect();
        let mut text = String::new();
        for _ in 0..SAMPLE_LENGTH {
            let x = info.encode(&ctx[ctx.len() - info.context..]);
            let f = if model == "network" {
                lock.network.mlp.predict(&x, 1)?
            } else {
                twin_at(&x)?
            };
            let next = if temperature == 0.0 || f.iter().any(|v| !v.is_finite()) {
                crate::metrics::argmax_rows(&f, v)[0]
            } else {
                let scaled: Vec<f64> = f.iter().map(|z| z / temperature).collect();
                let p = crate::dynamics::softmax(&scaled);
                let u: f64 = rng.random();
                let mut acc = 0.0;
                p.iter()
                    .position(|pi| {
                        acc += pi;
                        u < acc
                    })
                    .unwrap_or(v - 1)
            };
            let c = info.vocabulary[next];
            text.push(c);
            ctx.push(c);
        }
        out.push(TextSample {
            model: model.into(),
            temperature,
            prompt: info.prompt.clone(),
            text,
        });
    }
    Ok(out)
}

/// Final kernels, spectra and outputs of a run.
#[allow(clippy::too_many_arguments)]
fn finish(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lock: Lockstep<'_>,
    preds: Vec<Vec<f64>>,
    checkpoints: Vec<Checkpoint>,
    status: RunStatus,
    last_probe: Mat<f64>,
) -> Result<RunRecord> {
    let (n_train, n_test, k) = (data.n_train(), data.n_test(), data.n_outputs);
    let rpp = rows_per_point(exp, k);
    let mlp = &lock.network.mlp;
    let outputs: Vec<TrackOutputs> = lock
        .tracks
        .iter()
        .zip(&preds)
        .zip(&lock.diverged)
        .map(|((&t, v), &d)| TrackOutputs {
            track: t,
            train: v[..n_train * k].to_vec(),
            test: v[n_train * k..].to_vec(),
            diverged_at_step: d,
        })
        .collect();
    let s_final = backprop_signals(mlp, &data.x_train, n_train)?;
    let theta_final = ntk_from_signals(mlp, &s_final, &s_final, exp.kernel.form).total();
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
    let f0_test = &init.f0_all[n_train * k..];
    let kernel_solutions = exp
        .kernel
        .solutions
        .iter()
        .zip(&lock.predictors)
        .map(|(s, pr)| {
            let (_, test) = pr.predict_infinite();
            let mut test = test
                .map(|t| linalg::mat_to_rows(t.as_ref()))
                .unwrap_or_default();
            if lock.center {
                for (a, b) in test.iter_mut().zip(f0_test) {
                    *a -= b;
                }
            }
            KernelSolutionSummary {
                track: if *s == KernelSolution::Analytic {
                    Track::KernelAnalytic
                } else {
                    Track::KernelEmpirical
                },
                lambda: pr.lambda,
                condition_number: pr.condition_number,
                lambda_max: pr.lambda_max,
                test_loss_infinite_time: metrics::half_mse(&test, &data.y_test),
                test_infinite_time: test,
            }
        })
        .collect();
    let kernels = if exp.outputs.save_kernels {
        let pack = |m: Mat<f64>| {
            linalg::is_finite(m.as_ref())
                .then(|| (linalg::mat_to_rows(m.as_ref()), [m.nrows(), m.ncols()]))
        };
        KernelMatrices {
            analytic_ntk: pack(analytic_train.clone()),
            analytic_nngp: pack(linalg::block(
                init.analytic_nngp.as_ref(),
                0,
                n_train,
                0,
                n_train,
            )),
            analytic_ntk_test_train: pack(linalg::block(
                init.analytic_ntk.as_ref(),
                n_train,
                n_test,
                0,
                n_train,
            )),
            empirical_ntk_init: pack(linalg::block(
                init.theta0.as_ref(),
                0,
                n_train * rpp,
                0,
                n_train * rpp,
            )),
            empirical_ntk_final: pack(theta_final.clone()),
        }
    } else {
        KernelMatrices::default()
    };
    Ok(RunRecord {
        name: exp.name.clone(),
        seed: exp.seed,
        config_toml: exp.resolved_toml(),
        status,
        n_layers: mlp.shapes.len(),
        n_params: mlp.config.n_params(),
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
        learning_rate: lock.lr,
        critical_learning_rate: lock.critical_lr,
        init_ntk_vs_analytic: linalg::rel_frobenius(
            init.theta0_trace_train.as_ref(),
            analytic_train.as_ref(),
        ),
        spectrum_init: desc(&init.theta0_trace_train)?,
        spectrum_final: desc(&theta_final_trace)?,
        spectrum_analytic: desc(&analytic_train)?,
        probe_ntk_init: linalg::mat_to_rows(init.theta0_probe.as_ref()),
        probe_ntk_final: linalg::mat_to_rows(last_probe.as_ref()),
        probe_size: exp.kernel.probe_size.min(n_train),
        kernels,
        timings: Vec::new(),
        kernel_form: exp.kernel.form.name().into(),
        classes: data.classes.clone(),
        loss: exp.training.loss.name().into(),
        samples: match &data.text {
            Some(info) => generate_samples(exp, info, init, &lock)?,
            None => Vec::new(),
        },
        tracks: lock.tracks,
        pairs: lock.pairs,
        checkpoints,
    })
}

/// Refuses work whose kernels would not fit in memory (call before creating any output).
pub fn check_memory(exp: &Experiment, n_all: usize, n_train: usize, k: usize) -> Result<()> {
    let rpp = rows_per_point(exp, k) as u64;
    let (n_all, n_train) = (n_all as u64, n_train as u64);
    // Θ0(all, train) + analytic kernels + predictors' eigenvectors, f64.
    let kernel_bytes =
        8 * (n_all * rpp * n_train * rpp * 3 + 2 * n_all * n_train + 2 * (n_train * rpp).pow(2));
    // Layer inputs and backprop signals of the points held at once (all, or train + one block), f64.
    let held = exp
        .kernel
        .block_size
        .map(|b| n_train + (b as u64).min(n_all))
        .unwrap_or(n_all);
    let signal_bytes =
        8 * held * exp.model.width as u64 * (exp.model.depth as u64 + 1) * (k as u64 + 1);
    let needed = kernel_bytes + signal_bytes;
    let available = available_memory_bytes();
    if needed > available {
        return Err(Error::Memory {
            what: format!(
                "kernels for {n_all} points × {k} outputs ({} form)",
                exp.kernel.form.name()
            ),
            needed_bytes: needed,
            available_bytes: available,
        });
    }
    Ok(())
}

/// Available memory from `/proc/meminfo` (or a generous default elsewhere).
pub fn available_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(16 << 30)
}

fn kernel_figures(
    mlp: &Mlp,
    x_train: &[f64],
    p: usize,
    init: &Initial,
) -> Result<(KernelCheckpoint, Mat<f64>)> {
    let d = mlp.config.input_dim;
    let s = backprop_signals(mlp, &x_train[..p * d], p)?;
    let ntk = ntk_from_signals(mlp, &s, &s, KernelForm::Trace);
    let total = ntk.total();
    let params = mlp.flatten_layers()?;
    let flat_now: Vec<f64> = params.concat();
    let lambda_max = linalg::sym_eigenvalues(total.as_ref())?
        .last()
        .copied()
        .unwrap_or(f64::NAN);
    Ok((
        KernelCheckpoint {
            ntk_rel_drift: linalg::rel_frobenius(total.as_ref(), init.theta0_probe.as_ref()),
            ntk_kernel_distance: linalg::kernel_distance(
                total.as_ref(),
                init.theta0_probe.as_ref(),
            ),
            ntk_lambda_max: lambda_max,
            ntk_rel_drift_per_layer: ntk
                .per_layer
                .iter()
                .zip(&init.probe_signals_layers)
                .map(|(a, b)| linalg::rel_frobenius(a.as_ref(), b.as_ref()))
                .collect(),
            param_rel_change: metrics::rel_change(&flat_now, &init.theta0_flat),
            param_rel_change_per_layer: params
                .iter()
                .zip(&init.theta0_params)
                .map(|(a, b)| metrics::rel_change(a, b))
                .collect(),
        },
        total,
    ))
}
