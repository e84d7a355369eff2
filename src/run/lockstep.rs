//! The tracks trained in lockstep on one minibatch schedule: the network, its linearized twin
//! and the kernel predictors, with what is logged at each checkpoint.

use burn::tensor::Tensor;
use faer::Mat;

use crate::config::{Experiment, InitialOutputs, KernelSolution};
use crate::data::Dataset;
use crate::dynamics::iterative::{duplicate_groups, IterativeInputs, IterativePredictor};
use crate::dynamics::kernel::{KernelPredictor, PredictorInputs};
use crate::dynamics::linearized::LinearizedTwin;
use crate::dynamics::network::NetworkTrainer;
use crate::dynamics::parameter_twin::ParameterTwin;
use crate::dynamics::predictor::Predictor;
use crate::dynamics::TwinSpace;
use crate::dynamics::{cross_entropy, sensitivity, MinibatchSchedule};
use crate::linalg;
use crate::metrics;
use crate::model::{tensor_from_f64, Network};
use crate::ntk::empirical::{backprop_signals, ntk_from_signals};
use crate::ntk::KernelForm;
use crate::record::{
    Checkpoint, ClassCheckpoint, InputSensitivity, KernelCheckpoint, Pair, PerPair, PerTrack,
    RunStatus, Track,
};
use crate::Result;

use super::initial::Initial;
use super::RunOptions;

/// Row-major `n × K` values as "target rows" of a kernel form: `n × K` (per-output kernel) or
/// `(n·K) × 1` (full kernel).
pub fn as_rows(values: &[f64], k: usize, per_output: bool) -> Mat<f64> {
    if per_output {
        linalg::mat_from_rows(values, values.len() / k.max(1), k)
    } else {
        linalg::mat_from_rows(values, values.len(), 1)
    }
}

/// A track's test outputs at its early-stopping checkpoint so far.
#[derive(Debug, Clone)]
pub(super) struct StoppedTest {
    pub(super) track: Track,
    pub(super) val_xent: f64,
    pub(super) temperature: f64,
    /// Test outputs, row-major `n_test × K`.
    pub(super) test: Vec<f64>,
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

/// The linearized twin's track.
pub fn twin_track(averaged: bool) -> Track {
    if averaged {
        Track::LinearizedAvg
    } else {
        Track::Linearized
    }
}

/// A model trained by minibatch SGD on autodiff tensors: the network and the parameter-space
/// twin.
trait SgdStep {
    /// One step on prepared full-batch tensors; the loss.
    fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64>;
    /// One step on a minibatch of `batch` rows; the loss.
    fn step(&mut self, x: &[f64], y: &[f64], batch: usize) -> Result<f64>;
}

impl SgdStep for NetworkTrainer {
    fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64> {
        NetworkTrainer::step_tensors(self, x, y)
    }
    fn step(&mut self, x: &[f64], y: &[f64], batch: usize) -> Result<f64> {
        NetworkTrainer::step(self, x, y, batch)
    }
}

impl SgdStep for ParameterTwin {
    fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64> {
        ParameterTwin::step_tensors(self, x, y)
    }
    fn step(&mut self, x: &[f64], y: &[f64], batch: usize) -> Result<f64> {
        ParameterTwin::step(self, x, y, batch)
    }
}

/// One step of `model` on the full-batch tensors when there are any, else on the minibatch.
fn sgd_step(
    model: &mut impl SgdStep,
    full_batch: &Option<(Tensor<2>, Tensor<2>)>,
    minibatch: &Option<(Vec<f64>, Vec<f64>)>,
    n_batch: usize,
) -> Result<f64> {
    match (full_batch, minibatch) {
        (Some((x, y)), _) => model.step_tensors(x.clone(), y.clone()),
        (None, Some((xb, yb))) => model.step(xb, yb, n_batch),
        (None, None) => unreachable!("a minibatch exists without full-batch tensors"),
    }
}

/// The linearized twin, in function or in parameter space (the same model).
pub enum Twin {
    /// `f0 + Θ0(·, X)·β` (see [`LinearizedTwin`]).
    Function(LinearizedTwin),
    /// `f0 + J(·; θ0)·δ` by a tangent pass (see [`ParameterTwin`]).
    Parameter(ParameterTwin),
}

/// The tracks, their state, and what has been logged.
pub struct Lockstep<'a> {
    pub(super) exp: &'a Experiment,
    /// The points the network and its twin train on.
    pub(super) train: &'a Dataset,
    /// The points every figure and kernel is computed on: the training points of
    /// `kernel.train_subset` (all without it) and the held-out points.
    pub(super) data: &'a Dataset,
    pub(super) init: &'a Initial,
    x_all: Vec<f64>,
    /// Learning rate η.
    pub(super) lr: f64,
    /// Critical learning rate η_c.
    pub(super) critical_lr: f64,
    pub(super) tracks: Vec<Track>,
    pub(super) pairs: Vec<Pair>,
    /// The twin's track (plain or output-averaged).
    pub(super) twin_track: Track,
    pub(super) network: NetworkTrainer,
    pub(super) twin: Twin,
    pub(super) predictors: Vec<(Track, Predictor)>,
    /// The targets of `train` the network and twin step towards (shifted by f0 when centring,
    /// which `kernel.train_subset` excludes), row-major.
    y_step: std::borrow::Cow<'a, [f64]>,
    /// The same in the twin's row layout.
    y_rows: Mat<f64>,
    /// Prepared network inputs and targets for full-batch training.
    full_batch: Option<(Tensor<2>, Tensor<2>)>,
    pub(super) diverged: PerTrack<Option<u64>>,
    schedule: MinibatchSchedule,
    pub(super) checkpoints: Vec<Checkpoint>,
    /// With `outputs.save_predictions = "checkpoints"`: every track's outputs at every
    /// checkpoint.
    pub(super) prediction_steps: Vec<(u64, PerTrack<Vec<f64>>)>,
    /// With `outputs.save_kernel_checkpoints`: Θ_t at every kernel checkpoint.
    pub(super) saved_kernels: Vec<crate::record::NamedMatrix>,
    /// The probe-set kernel at the last kernel checkpoint.
    pub(super) last_probe: Mat<f64>,
    /// Every track's predictions at the last checkpoint.
    pub(super) last_preds: Option<PerTrack<Vec<f64>>>,
    /// Text runs: per track, its test outputs at its early-stopping checkpoint so far (the
    /// least calibrated validation cross-entropy, the earliest of ties, as
    /// [`crate::record::RunRecord::early_stop`]) and the fitted temperature.
    pub(super) stopped_test: Vec<StoppedTest>,
    /// λ_max of the full training kernel at θ0 (the one η_c comes from).
    lambda_max0: f64,
    /// Spectral norms of the initial weight matrices (computed at the first kernel checkpoint
    /// after step 0).
    spectral0: Option<Vec<f64>>,
    /// Input gradients of f0 at the sensitivity points (computed at the first sensitivity
    /// checkpoint, which is step 0).
    sens_g0: Option<sensitivity::InputGradients>,
    /// A member of an ensemble: only the network and its twin, losses and predictions.
    member: bool,
    /// With `[ensemble]`: the network's and the twin's predictions at every checkpoint.
    trace: Option<MemberTrace>,
}

/// One ensemble member's outputs over training: the network's and its twin's predictions on
/// all points (row-major `n_all × K`) at every checkpoint.
#[derive(Debug, Clone, Default)]
pub struct MemberTrace {
    /// Checkpoint steps.
    pub steps: Vec<u64>,
    /// The network's predictions per checkpoint.
    pub network: Vec<Vec<f64>>,
    /// The twin's predictions per checkpoint.
    pub linearized: Vec<Vec<f64>>,
    /// Step at which the network diverged, if it did.
    pub network_diverged: Option<u64>,
    /// Step at which the twin diverged, if it did.
    pub linearized_diverged: Option<u64>,
}

/// What a [`Lockstep`] is built for.
enum Role<'p> {
    /// A whole run: every kernel track, its solves reported to the progress sink.
    Run(&'p dyn super::Progress),
    /// An ensemble member: the network and its twin only.
    Member,
}

/// What the kernel tracks are fitted to: the learning rate and the (possibly centred) targets.
struct Targets<'y> {
    lr: f64,
    y_fit: &'y [f64],
}

impl<'a> Lockstep<'a> {
    /// Sets up the tracks at t = 0 (the network `net` is moved into its trainer): the network
    /// and its twin train on `train`, everything is measured on `data` (the kernel view of
    /// `train`, see [`super::kernel_view`]), where `init` was computed.
    pub fn new(
        exp: &'a Experiment,
        train: &'a Dataset,
        data: &'a Dataset,
        init: &'a Initial,
        net: Network,
        rates: super::Rates,
        progress: &dyn super::Progress,
    ) -> Result<Self> {
        Self::build(exp, train, data, init, net, rates, Role::Run(progress))
    }

    /// Sets up an ensemble member: the network `net` and its twin only, on the shared
    /// minibatch schedule, logging losses and predictions (no kernel tracks or figures).
    pub fn member(
        exp: &'a Experiment,
        data: &'a Dataset,
        init: &'a Initial,
        net: Network,
        rates: super::Rates,
    ) -> Result<Self> {
        Self::build(exp, data, data, init, net, rates, Role::Member)
    }

    fn build(
        exp: &'a Experiment,
        train: &'a Dataset,
        data: &'a Dataset,
        init: &'a Initial,
        net: Network,
        rates: super::Rates,
        role: Role<'_>,
    ) -> Result<Self> {
        let member = matches!(role, Role::Member);
        let super::Rates {
            lr,
            critical_lr,
            lambda_max0,
        } = rates;
        let k = data.n_outputs;
        // With centred outputs every track trains towards y + f0 and reports f − f0: the same
        // dynamics as learning y from zero.
        let y_fit: Vec<f64> = if exp.training.center_outputs {
            data.y_train
                .iter()
                .zip(&init.f0_all)
                .map(|(a, b)| a + b)
                .collect()
        } else {
            data.y_train.clone()
        };
        let form = exp.kernel.form;
        let rows = form.rows_per_point(k);
        let space = super::initial::twin_space(exp, data);
        // The parameter-space twin is the exact linearization whatever the kernel form.
        let averaged = averaged_kernel(exp, k) && space == TwinSpace::Function;
        let mut tracks = vec![Track::Network, twin_track(averaged)];
        let solutions: &[KernelSolution] = if member { &[] } else { &exp.kernel.solutions };
        // The empirical kernel track uses the output-averaged kernel with the trace form and
        // K > 1 whatever space the twin lives in.
        tracks.extend(
            solutions
                .iter()
                .map(|&s| solution_track(s, averaged_kernel(exp, k))),
        );
        let pairs = (0..tracks.len())
            .flat_map(|i| (i + 1..tracks.len()).map(move |j| (i, j)))
            .map(|(i, j)| (tracks[i], tracks[j]))
            .collect();
        let predictors = match &init.stored {
            Some(stored) => {
                let progress = match role {
                    Role::Run(p) => p,
                    Role::Member => &super::Silent,
                };
                let targets = Targets { lr, y_fit: &y_fit };
                iterative_predictors(exp, solutions, data, init, stored, targets, progress)?
            }
            None => build_predictors(exp, solutions, data, init, lr, &y_fit)?,
        };
        let y_step = if exp.training.center_outputs {
            std::borrow::Cow::Owned(y_fit.clone())
        } else {
            std::borrow::Cow::Borrowed(train.y_train.as_slice())
        };
        let n_step = train.n_train();
        let full_batch = exp
            .training
            .batch_size
            .is_none_or(|b| b == n_step)
            .then(|| {
                let ad = net.device().clone().autodiff();
                (
                    tensor_from_f64(&train.x_train, [n_step, train.input_dim], net.dtype(), &ad),
                    tensor_from_f64(&y_step, [n_step, k], net.dtype(), &ad),
                )
            });
        let per_output = form == KernelForm::Trace;
        let twin = match space {
            TwinSpace::Parameter => Twin::Parameter(
                ParameterTwin::new(init.net0.clone(), lr, exp.training.momentum)
                    .with_loss(exp.training.loss),
            ),
            _ => Twin::Function(
                LinearizedTwin::new(
                    init.theta0.clone(),
                    as_rows(&init.f0_all, k, per_output),
                    rows,
                    lr,
                    exp.training.momentum,
                )
                .with_loss(exp.training.loss),
            ),
        };
        Ok(Lockstep {
            exp,
            train,
            data,
            init,
            x_all: data.x_all(),
            lr,
            critical_lr,
            diverged: PerTrack::from_keys(tracks.iter().copied(), |_| None),
            twin_track: twin_track(averaged),
            tracks,
            pairs,
            network: NetworkTrainer::new(net, lr, exp.training.momentum)
                .with_loss(exp.training.loss),
            twin,
            predictors,
            y_rows: as_rows(&y_fit, k, per_output),
            y_step,
            full_batch,
            schedule: MinibatchSchedule::new(
                n_step,
                exp.training.batch_size.unwrap_or(n_step),
                exp.seed,
            ),
            checkpoints: Vec::new(),
            saved_kernels: Vec::new(),
            prediction_steps: Vec::new(),
            last_probe: init.theta0_probe.clone(),
            last_preds: None,
            stopped_test: Vec::new(),
            lambda_max0,
            spectral0: None,
            sens_g0: None,
            member,
            trace: exp.ensemble.map(|_| MemberTrace::default()),
        })
    }

    /// The recorded member trace (with `[ensemble]`), with the tracks' divergence steps.
    pub fn take_trace(&mut self) -> Option<MemberTrace> {
        let mut t = self.trace.take()?;
        t.network_diverged = self.diverged.get(Track::Network).copied().flatten();
        t.linearized_diverged = self.diverged.get(self.twin_track).copied().flatten();
        Some(t)
    }

    /// Runs every step, logging at checkpoints; stops early (interrupted) when the interrupt
    /// flag is set.
    pub fn train(&mut self, opts: &RunOptions<'_>) -> Result<RunStatus> {
        let steps = self.exp.training.steps;
        let logging = self.exp.logging;
        opts.progress.start("training", steps);
        let mut status = RunStatus::Completed;
        // The longest iteration so far (checkpoint and step): how long a stop request may wait
        // for the next look at it.
        let mut longest_seconds = 0.0f64;
        for step in 0..=steps {
            let clock = std::time::Instant::now();
            let interrupted = step < steps && opts.interrupted();
            let last = step == steps || interrupted;
            if step % logging.every == 0 || last {
                // A run without steps measures no sensitivity: no curve would show it.
                let what = Measure {
                    kernel: !self.member && (step % logging.kernel_every == 0 || last),
                    sensitivity: !self.member
                        && steps > 0
                        && (step % logging.sensitivity_every == 0 || last),
                };
                self.checkpoint(step, what)?;
            }
            if interrupted {
                status = RunStatus::Interrupted;
                break;
            }
            if last {
                break;
            }
            self.step(step)?;
            opts.progress.advance(1);
            longest_seconds = longest_seconds.max(clock.elapsed().as_secs_f64());
            if let Some(i) = &opts.interrupt {
                i.expect_looks_every(longest_seconds);
            }
        }
        if let Some(i) = &opts.interrupt {
            i.expect_looks_every(0.0);
        }
        opts.progress.finish();
        Ok(status)
    }

    /// Every track's predictions on all points (row-major `n_all × K`, reported frame: minus f0
    /// when centring).
    fn predictions(&self, step: u64) -> Result<PerTrack<Vec<f64>>> {
        let n_all = self.x_all.len() / self.data.input_dim;
        // Before the first step the network's outputs are f0.
        let network = if step == 0 {
            self.init.f0_all.clone()
        } else {
            self.network.net.predict(&self.x_all, n_all)?
        };
        let mut all = vec![
            (Track::Network, network),
            (
                self.twin_track,
                match &self.twin {
                    Twin::Function(t) => linalg::mat_to_rows(t.predictions().as_ref()),
                    Twin::Parameter(_) if step == 0 => self.init.f0_all.clone(),
                    Twin::Parameter(t) => t.predict(&self.x_all, n_all)?,
                },
            ),
        ];
        for (t, p) in &self.predictors {
            // Predictor rows are point-major like the others.
            let (tr, te) = p.predict(step)?;
            let mut v = linalg::mat_to_rows(tr.as_ref());
            if let Some(te) = te {
                v.extend(linalg::mat_to_rows(te.as_ref()));
            }
            all.push((*t, v));
        }
        if self.exp.training.center_outputs {
            for (_, v) in &mut all {
                for (a, b) in v.iter_mut().zip(&self.init.f0_all) {
                    *a -= b;
                }
            }
        }
        Ok(PerTrack::from_keys(self.tracks.iter().copied(), |t| {
            all.iter()
                .find(|(u, _)| *u == t)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }))
    }

    /// Logs a checkpoint (with kernel and sensitivity figures as asked); marks tracks whose
    /// loss left the bound.
    fn checkpoint(&mut self, step: u64, what: Measure) -> Result<()> {
        let preds = self.predictions(step)?;
        let data = self.data;
        let sl = Slices::of(data);
        let train_loss = preds
            .map(|_, v| metrics::half_mse(&v[sl.train.clone()], &data.y_train).unwrap_or(f64::NAN));
        for (t, &l) in train_loss.iter() {
            let d = self
                .diverged
                .get_mut(t)
                .expect("every track has a divergence slot");
            if d.is_none() && (!l.is_finite() || l > self.exp.training.max_loss) {
                *d = Some(step);
            }
        }
        let pair_rmse = |r: &std::ops::Range<usize>| -> PerPair<Option<f64>> {
            PerPair::from_keys(self.pairs.iter().copied(), |(a, b)| {
                metrics::rmse(&preds.get(a)?[r.clone()], &preds.get(b)?[r.clone()])
            })
        };
        let mut ck = Checkpoint {
            step,
            time: self.lr * step as f64,
            val_loss: preds.map(|_, v| metrics::half_mse(&v[sl.val.clone()], &data.y_val)),
            test_loss: preds.map(|_, v| metrics::half_mse(&v[sl.test.clone()], &data.y_test)),
            train_loss,
            rmse_train: pair_rmse(&sl.train).map(|_, v| v.unwrap_or(f64::NAN)),
            rmse_test: pair_rmse(&sl.test),
            kernel: None,
            classification: data
                .classes
                .as_ref()
                .map(|_| self.class_checkpoint(&preds, &sl)),
            sensitivity: if what.sensitivity {
                Some(self.input_sensitivity()?)
            } else {
                None
            },
            ensemble: None,
        };
        if what.kernel {
            let (kc, probe) = if step == 0 {
                self.initial_kernel_checkpoint()?
            } else {
                self.kernel_checkpoint()?
            };
            self.last_probe = probe;
            ck.kernel = Some(kc);
            if self.exp.outputs.save_kernel_checkpoints && !self.member {
                let saved = self.checkpoint_kernels(step)?;
                self.saved_kernels.extend(saved);
            }
        }
        if self.data.text.is_some() {
            if let Some(cl) = &ck.classification {
                self.keep_stopped_test(cl, &preds, &sl);
            }
        }
        self.checkpoints.push(ck);
        if self.exp.outputs.predictions == crate::config::Predictions::Checkpoints && !self.member {
            self.prediction_steps.push((step, preds.clone()));
        }
        if let Some(t) = &mut self.trace {
            t.steps.push(step);
            t.network
                .push(preds.get(Track::Network).cloned().unwrap_or_default());
            t.linearized
                .push(preds.get(self.twin_track).cloned().unwrap_or_default());
        }
        self.last_preds = Some(preds);
        Ok(())
    }

    /// Keeps each track's test outputs where its calibrated validation cross-entropy is the
    /// lowest so far.
    fn keep_stopped_test(&mut self, cl: &ClassCheckpoint, preds: &PerTrack<Vec<f64>>, sl: &Slices) {
        for (t, v) in preds.iter() {
            let (Some(temperature), Some(val_xent)) = (
                cl.temperature.get(t).copied().flatten(),
                cl.val_xent_calibrated.get(t).copied().flatten(),
            ) else {
                continue;
            };
            let test = v[sl.test.clone()].to_vec();
            match self.stopped_test.iter_mut().find(|s| s.track == t) {
                Some(s) if val_xent < s.val_xent => {
                    *s = StoppedTest {
                        track: t,
                        val_xent,
                        temperature,
                        test,
                    };
                }
                Some(_) => {}
                None => self.stopped_test.push(StoppedTest {
                    track: t,
                    val_xent,
                    temperature,
                    test,
                }),
            }
        }
    }

    fn class_checkpoint(&self, preds: &PerTrack<Vec<f64>>, sl: &Slices) -> ClassCheckpoint {
        let data = self.data;
        let k = data.n_outputs;
        let acc = |r: &std::ops::Range<usize>, y: &[f64]| {
            preds.map(|_, v| metrics::accuracy(&v[r.clone()], y, k))
        };
        let xent = |r: &std::ops::Range<usize>, y: &[f64]| {
            preds.map(|_, v| cross_entropy(&v[r.clone()], y, k))
        };
        // Agreement on the test points (the training points without test points).
        let agree = if data.y_test.is_empty() {
            sl.train.clone()
        } else {
            sl.test.clone()
        };
        // Temperature scaling fitted on the validation points, applied to the test points.
        let fitted = preds.map(|_, v| metrics::fit_temperature(&v[sl.val.clone()], &data.y_val, k));
        let at_temperature = |t: Track, r: &std::ops::Range<usize>, y: &[f64]| -> Option<f64> {
            let (temp, _) = (*fitted.get(t)?)?;
            let scaled: Vec<f64> = preds.get(t)?[r.clone()].iter().map(|v| v / temp).collect();
            cross_entropy(&scaled, y, k)
        };
        ClassCheckpoint {
            val_xent: xent(&sl.val, &data.y_val),
            temperature: fitted.map(|_, f| f.map(|(t, _)| t)),
            val_xent_calibrated: fitted.map(|_, f| f.map(|(_, x)| x)),
            test_xent_calibrated: PerTrack::from_keys(self.tracks.iter().copied(), |t| {
                at_temperature(t, &sl.test, &data.y_test)
            }),
            train_accuracy: acc(&sl.train, &data.y_train).map(|_, v| v.unwrap_or(f64::NAN)),
            val_accuracy: acc(&sl.val, &data.y_val),
            test_accuracy: acc(&sl.test, &data.y_test),
            train_xent: xent(&sl.train, &data.y_train).map(|_, v| v.unwrap_or(f64::NAN)),
            test_xent: xent(&sl.test, &data.y_test),
            agreement: PerPair::from_keys(self.pairs.iter().copied(), |(a, b)| {
                match (preds.get(a), preds.get(b)) {
                    (Some(pa), Some(pb)) => {
                        metrics::agreement(&pa[agree.clone()], &pb[agree.clone()], k)
                            .unwrap_or(f64::NAN)
                    }
                    _ => f64::NAN,
                }
            }),
        }
    }

    /// One SGD step of the network and of its twin on the next batch (diverged tracks stay
    /// frozen).
    fn step(&mut self, step: u64) -> Result<()> {
        let batch = self.schedule.next_batch();
        let (d, k) = (self.train.input_dim, self.train.n_outputs);
        let max_loss = self.exp.training.max_loss;
        let live = |t: Track, diverged: &PerTrack<Option<u64>>| {
            diverged.get(t).copied().flatten().is_none()
        };
        // The minibatch as row-major inputs and targets (unless full batch).
        let minibatch = || -> (Vec<f64>, Vec<f64>) {
            let xb = batch
                .iter()
                .flat_map(|&a| self.train.x_train[a * d..(a + 1) * d].iter().copied())
                .collect();
            let yb = batch
                .iter()
                .flat_map(|&a| self.y_step[a * k..(a + 1) * k].iter().copied())
                .collect();
            (xb, yb)
        };
        let mb = if self.full_batch.is_none() {
            Some(minibatch())
        } else {
            None
        };
        let (net_live, twin_live) = (
            live(Track::Network, &self.diverged),
            live(self.twin_track, &self.diverged),
        );
        let full_batch = &self.full_batch;
        let n_batch = batch.len();
        let network = &mut self.network;
        let mb = &mb;
        let mut net_step = move || -> Result<Option<f64>> {
            if !net_live {
                return Ok(None);
            }
            sgd_step(network, full_batch, mb, n_batch).map(Some)
        };
        // The network and a parameter-space twin step at the same time on two threads (each is
        // mostly one-threaded at minibatch sizes); each computation is the same as in sequence.
        let net_loss = match &mut self.twin {
            Twin::Function(t) => {
                if twin_live {
                    t.step(&batch, &self.y_rows);
                }
                net_step()?
            }
            Twin::Parameter(t) => {
                let mut twin_step = || -> Result<()> {
                    if twin_live {
                        sgd_step(t, full_batch, mb, n_batch)?;
                    }
                    Ok(())
                };
                let (net, twin) = std::thread::scope(|scope| {
                    let handle = scope.spawn(net_step);
                    let twin = twin_step();
                    (handle.join(), twin)
                });
                twin?;
                net.map_err(|_| crate::Error::Numerics("the network's step panicked".into()))??
            }
        };
        if let Some(loss) = net_loss {
            if !loss.is_finite() || loss > max_loss {
                if let Some(d) = self.diverged.get_mut(Track::Network) {
                    *d = Some(step);
                }
            }
        }
        Ok(())
    }

    /// Kernel figures of the network now: drift of its output-averaged empirical NTK on the
    /// probe set (the first `probe_size` training points) against Θ0 there, λ_max of its full
    /// training kernel (the sharpness), and the parameter changes; also that probe kernel.
    fn kernel_checkpoint(&mut self) -> Result<(KernelCheckpoint, Mat<f64>)> {
        let net = &self.network.net;
        let init = self.init;
        let d = net.config.input_dim;
        let n = self.data.n_train();
        let p = self.exp.kernel.probe_size.min(n);
        let k = self.data.n_outputs;
        let (x_sharp, n_sharp) = super::sharpness_sample(self.exp, self.data);
        let (s, lambda_full) = if self.init.stored.is_some() {
            let s = backprop_signals(net, &self.data.x_train[..p * d], p)?;
            (
                s,
                super::lambda_max_full_matrix_free(net, x_sharp, n_sharp)?,
            )
        } else if n * k <= super::EXPLICIT_FULL_MAX_ROWS {
            let s_all = backprop_signals(net, &self.data.x_train, n)?;
            let lambda = super::lambda_max_full(net, &s_all, &self.data.x_train)?;
            (s_all.head(p), lambda)
        } else {
            let s = backprop_signals(net, &self.data.x_train[..p * d], p)?;
            let x = &self.data.x_train;
            (s, super::lambda_max_full_matrix_free(net, x, n)?)
        };
        let ntk = ntk_from_signals(net, &s, &s, KernelForm::Trace);
        let total = ntk.total();
        if self.spectral0.is_none() {
            self.spectral0 = Some(init.net0.weight_spectral_norms()?);
        }
        let spectral0 = self.spectral0.as_deref().unwrap_or_default();
        let change = net.change_from(&init.net0, spectral0)?;
        let kc = KernelCheckpoint {
            ntk_rel_drift: linalg::rel_frobenius(total.as_ref(), init.theta0_probe.as_ref()),
            ntk_kernel_distance: linalg::kernel_distance(
                total.as_ref(),
                init.theta0_probe.as_ref(),
            ),
            ntk_lambda_max: linalg::lambda_max(total.as_ref())?,
            ntk_lambda_max_full: lambda_full,
            sharpness_ratio: super::sharpness_ratio(
                self.exp,
                self.lr,
                lambda_full,
                n_sharp * self.data.n_outputs,
            ),
            ntk_rel_drift_per_layer: ntk
                .per_layer
                .iter()
                .zip(&init.probe_layers)
                .map(|(a, b)| linalg::rel_frobenius(a.as_ref(), b.as_ref()))
                .collect(),
            param_rel_change: change.total,
            param_rel_change_per_layer: change.per_layer,
            weight_rel_change_per_layer: change.weight,
            bias_rel_change_per_layer: change.bias,
            weight_spectral_change_per_layer: change.weight_spectral,
            ntk_target_alignment: self.target_alignment(total.as_ref()),
            ntk_cka_init: linalg::centered_alignment(total.as_ref(), init.theta0_probe.as_ref()),
        };
        Ok((kc, total))
    }

    /// The kernel figures at θ0, from what is already known: no drift or parameter change, the
    /// probe kernel's and the full kernel's λ_max (the latter is the one η_c comes from).
    fn initial_kernel_checkpoint(&self) -> Result<(KernelCheckpoint, Mat<f64>)> {
        let l = self.network.net.shapes.len();
        let zeros = vec![0.0; l];
        let bias = if self.network.net.config.model.bias {
            zeros.clone()
        } else {
            vec![f64::NAN; l]
        };
        let n_targets = super::sharpness_sample(self.exp, self.data).1 * self.data.n_outputs;
        let kc = KernelCheckpoint {
            ntk_rel_drift: 0.0,
            ntk_kernel_distance: 0.0,
            ntk_lambda_max: linalg::lambda_max(self.init.theta0_probe.as_ref())?,
            ntk_lambda_max_full: self.lambda_max0,
            sharpness_ratio: super::sharpness_ratio(self.exp, self.lr, self.lambda_max0, n_targets),
            ntk_rel_drift_per_layer: zeros.clone(),
            param_rel_change: 0.0,
            param_rel_change_per_layer: zeros.clone(),
            weight_rel_change_per_layer: zeros.clone(),
            bias_rel_change_per_layer: bias,
            weight_spectral_change_per_layer: zeros,
            ntk_target_alignment: self.target_alignment(self.init.theta0_probe.as_ref()),
            ntk_cka_init: linalg::centered_alignment(
                self.init.theta0_probe.as_ref(),
                self.init.theta0_probe.as_ref(),
            ),
        };
        Ok((kc, self.init.theta0_probe.clone()))
    }

    /// Θ_t of the network now, train × train and test × train in the run's form, under their
    /// `.npy` file stems (`outputs.save_kernel_checkpoints`).
    fn checkpoint_kernels(&self, step: u64) -> Result<Vec<crate::record::NamedMatrix>> {
        let (net, data, form) = (&self.network.net, self.data, self.exp.kernel.form);
        let pack = |m: Mat<f64>| (linalg::mat_to_rows(m.as_ref()), [m.nrows(), m.ncols()]);
        let s_train = backprop_signals(net, &data.x_train, data.n_train())?;
        let train = ntk_from_signals(net, &s_train, &s_train, form).total();
        let mut out = vec![(format!("empirical_ntk_step{step}"), pack(train))];
        if data.n_test() > 0 {
            let s_test = backprop_signals(net, &data.x_test, data.n_test())?;
            let test = ntk_from_signals(net, &s_test, &s_train, form).total();
            out.push((format!("empirical_ntk_test_train_step{step}"), pack(test)));
        }
        Ok(out)
    }

    /// Centred kernel–target alignment of a probe-set kernel: with `y yᵀ` of the probe points'
    /// training targets (Cortes et al. 2012; as tracked during training by Baratin et al. 2021).
    fn target_alignment(&self, probe_kernel: faer::MatRef<'_, f64>) -> f64 {
        let (p, k) = (probe_kernel.nrows(), self.data.n_outputs);
        let y = linalg::target_kernel(&self.data.y_train[..p * k], p, k);
        linalg::centered_alignment(probe_kernel, y.as_ref())
    }

    /// Input-Jacobian norms of the network and of its linearized twin, and their changes since
    /// initialisation (see [`sensitivity`]).
    fn input_sensitivity(&mut self) -> Result<InputSensitivity> {
        if self.sens_g0.is_none() {
            let init = self.init;
            self.sens_g0 = Some(sensitivity::input_gradients(
                &init.net0,
                &init.sens_x,
                init.sens_n,
            )?);
        }
        let g0 = self.sens_g0.as_ref().expect("set above");
        let init = self.init;
        let (n, x) = (init.sens_n, &init.sens_x);
        let g = if self.checkpoints.is_empty() {
            g0.clone()
        } else {
            sensitivity::input_gradients(&self.network.net, x, n)?
        };
        let norm = |g: &[Vec<f64>]| sensitivity::mean_jacobian_norm(g, n);
        // β is in parameter correspondence only for the full kernel (or a single output); the
        // parameter-space twin carries δ itself.
        let delta = match &self.twin {
            Twin::Parameter(_) if self.checkpoints.is_empty() => None,
            Twin::Parameter(t) => Some(t.delta().to_vec()),
            Twin::Function(t)
                if self.exp.kernel.form == KernelForm::Full || self.data.n_outputs == 1 =>
            {
                let beta = linalg::mat_to_rows(t.coefficients().as_ref());
                if beta.iter().all(|&b| b == 0.0) {
                    None
                } else {
                    Some(sensitivity::displacement(
                        &init.net0,
                        &self.data.x_train,
                        self.data.n_train(),
                        &beta,
                    )?)
                }
            }
            Twin::Function(_) => {
                return Ok(InputSensitivity {
                    network_norm: norm(&g),
                    linearized_norm: f64::NAN,
                    network_change: norm(&sensitivity::difference(&g, g0)),
                    linearized_change: f64::NAN,
                })
            }
        };
        let Some(delta) = delta else {
            // θ_lin = θ0 (before any step): the twin's input Jacobian is f0's.
            return Ok(InputSensitivity {
                network_norm: norm(&g),
                linearized_norm: norm(g0),
                network_change: norm(&sensitivity::difference(&g, g0)),
                linearized_change: 0.0,
            });
        };
        let change = sensitivity::linearized_input_gradient_change(&init.net0, &delta, x, n)?;
        let (linearized_norm, linearized_change) =
            (norm(&sensitivity::sum(g0, &change)), norm(&change));
        Ok(InputSensitivity {
            network_norm: norm(&g),
            linearized_norm,
            network_change: norm(&sensitivity::difference(&g, g0)),
            linearized_change,
        })
    }
}

/// Where the training, validation and test points' outputs sit in a track's predictions
/// (row-major `n_all × K`, in that order).
pub struct Slices {
    /// Training outputs.
    pub train: std::ops::Range<usize>,
    /// Validation outputs.
    pub val: std::ops::Range<usize>,
    /// Test outputs.
    pub test: std::ops::Range<usize>,
}

impl Slices {
    /// The slices of a data set.
    pub fn of(data: &Dataset) -> Self {
        let k = data.n_outputs;
        let (tr, va, te) = (data.n_train() * k, data.n_val() * k, data.n_test() * k);
        Slices {
            train: 0..tr,
            val: tr..tr + va,
            test: tr + va..tr + va + te,
        }
    }
}

/// What a checkpoint measures beyond losses and divergences.
#[derive(Debug, Clone, Copy)]
struct Measure {
    /// Kernel figures.
    kernel: bool,
    /// Input sensitivity.
    sensitivity: bool,
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
    solutions: &[KernelSolution],
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
    solutions
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
    solutions: &[KernelSolution],
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
    progress.start("kernel solves", solutions.len() as u64);
    let out = solutions
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
