//! The tracks of a run and their stepping: the network and its linearized twin, trained by SGD
//! on one minibatch schedule, and the kernel predictors, which are closed-form in the step.
//! What is measured of them lives in [`super::measure`]; the loop that steps and measures in
//! [`super::lockstep`].

use burn::tensor::Tensor;
use faer::Mat;

use crate::config::{Experiment, KernelSolution};
use crate::data::Dataset;
use crate::dynamics::linearized::LinearizedTwin;
use crate::dynamics::network::NetworkTrainer;
use crate::dynamics::parameter_twin::ParameterTwin;
use crate::dynamics::predictor::Predictor;
use crate::dynamics::{MinibatchSchedule, TwinSpace};
use crate::linalg;
use crate::model::{tensor_from_f64, Network};
use crate::ntk::KernelForm;
use crate::record::{Pair, PerTrack, Track};
use crate::Result;

use super::initial::Initial;
use super::predictors::{self, as_rows, averaged_kernel, solution_track};
use super::Rates;

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

impl Twin {
    /// The space the twin lives in.
    pub fn space(&self) -> TwinSpace {
        match self {
            Twin::Function(_) => TwinSpace::Function,
            Twin::Parameter(_) => TwinSpace::Parameter,
        }
    }
}

/// Which kernel tracks a [`Tracks`] carries beside the network and its twin.
pub enum KernelTracks<'p> {
    /// Every configured kernel solution; an iterative run reports its solves to the sink.
    Configured(&'p dyn super::Progress),
    /// None (an ensemble member).
    None,
}

/// The network, its twin and the kernel predictors at the current step.
pub struct Tracks<'a> {
    /// The run's configuration.
    pub exp: &'a Experiment,
    /// The points the network and its twin train on.
    pub train: &'a Dataset,
    /// The points every figure and kernel is computed on: the training points of
    /// `kernel.train_subset` (all without it) and the held-out points.
    pub data: &'a Dataset,
    /// The state at θ0.
    pub init: &'a Initial,
    /// Learning rate, critical rate and λ_max(Θ0).
    pub rates: Rates,
    /// The tracks, network first, then the twin, then the kernel solutions.
    pub order: Vec<Track>,
    /// Every pair of tracks, in order.
    pub pairs: Vec<Pair>,
    /// The twin's track (plain or output-averaged).
    pub twin_track: Track,
    /// The network and its SGD state.
    pub network: NetworkTrainer,
    /// The linearized twin.
    pub twin: Twin,
    /// The kernel tracks' predictors.
    pub predictors: Vec<(Track, Predictor)>,
    /// Per track, the step at which its training loss left the bound.
    pub diverged: PerTrack<Option<u64>>,
    /// All points' inputs (`data`'s training, validation and test points), row-major.
    x_all: Vec<f64>,
    /// The targets of `train` the network and twin step towards (shifted by f0 when centring,
    /// which `kernel.train_subset` excludes), row-major.
    y_step: std::borrow::Cow<'a, [f64]>,
    /// The same in the twin's row layout.
    y_rows: Mat<f64>,
    /// Prepared network inputs and targets for full-batch training.
    full_batch: Option<(Tensor<2>, Tensor<2>)>,
    schedule: MinibatchSchedule,
}

impl<'a> Tracks<'a> {
    /// Sets up the tracks at t = 0 (the network `net` is moved into its trainer): the network
    /// and its twin train on `train`, everything is measured on `data` (the kernel view of
    /// `train`, see [`super::kernel_view`]), where `init` was computed.
    pub fn new(
        exp: &'a Experiment,
        (train, data): (&'a Dataset, &'a Dataset),
        init: &'a Initial,
        net: Network,
        rates: Rates,
        kernel_tracks: KernelTracks<'_>,
    ) -> Result<Self> {
        let k = data.n_outputs;
        let y_fit = fit_targets(exp, data, init);
        let space = super::initial::twin_space(exp, data);
        // The parameter-space twin is the exact linearization whatever the kernel form.
        let averaged = averaged_kernel(exp, k) && space == TwinSpace::Function;
        let solutions: &[KernelSolution] = match kernel_tracks {
            KernelTracks::Configured(_) => &exp.kernel.solutions,
            KernelTracks::None => &[],
        };
        let predictors = match kernel_tracks {
            KernelTracks::Configured(progress) => {
                predictors::build(exp, data, init, rates.lr, &y_fit, progress)?
            }
            KernelTracks::None => Vec::new(),
        };
        let mut tracks = vec![Track::Network, twin_track(averaged)];
        // The empirical kernel track uses the output-averaged kernel with the trace form and
        // K > 1 whatever space the twin lives in.
        tracks.extend(
            solutions
                .iter()
                .map(|&s| solution_track(s, averaged_kernel(exp, k))),
        );
        let y_step = if exp.training.center_outputs {
            std::borrow::Cow::Owned(y_fit.clone())
        } else {
            std::borrow::Cow::Borrowed(train.y_train.as_slice())
        };
        let n_step = train.n_train();
        let per_output = exp.kernel.form == KernelForm::Trace;
        Ok(Tracks {
            exp,
            train,
            data,
            init,
            rates,
            x_all: data.x_all(),
            diverged: PerTrack::from_keys(tracks.iter().copied(), |_| None),
            twin_track: twin_track(averaged),
            pairs: all_pairs(&tracks),
            order: tracks,
            full_batch: full_batch_tensors(exp, train, &net, &y_step),
            network: NetworkTrainer::new(net, rates.lr, exp.training.momentum)
                .with_loss(exp.training.loss),
            twin: new_twin(exp, init, space, k, rates.lr),
            predictors,
            y_rows: as_rows(&y_fit, k, per_output),
            y_step,
            schedule: MinibatchSchedule::new(
                n_step,
                exp.training.batch_size.unwrap_or(n_step),
                exp.seed,
            ),
        })
    }

    /// Whether a track is still stepped (it has not diverged).
    fn live(&self, t: Track) -> bool {
        self.diverged.get(t).copied().flatten().is_none()
    }

    /// Marks the tracks whose training loss at `step` left the bound `training.max_loss` (or
    /// is not finite) as diverged there, unless they diverged before.
    pub fn mark_diverged(&mut self, step: u64, train_loss: &PerTrack<f64>) {
        for (t, &l) in train_loss.iter() {
            if let Some(d) = self.diverged.get_mut(t) {
                if d.is_none() && (!l.is_finite() || l > self.exp.training.max_loss) {
                    *d = Some(step);
                }
            }
        }
    }

    /// The minibatch `batch` as row-major inputs and targets.
    fn minibatch(&self, batch: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let (d, k) = (self.train.input_dim, self.train.n_outputs);
        let xb = batch
            .iter()
            .flat_map(|&a| self.train.x_train[a * d..(a + 1) * d].iter().copied())
            .collect();
        let yb = batch
            .iter()
            .flat_map(|&a| self.y_step[a * k..(a + 1) * k].iter().copied())
            .collect();
        (xb, yb)
    }

    /// One SGD step of the network and of its twin on the next batch (diverged tracks stay
    /// frozen); the network's loss marks it diverged at `step` when it leaves the bound.
    pub fn step(&mut self, step: u64) -> Result<()> {
        let batch = self.schedule.next_batch();
        let mb = self.full_batch.is_none().then(|| self.minibatch(&batch));
        let (net_live, twin_live) = (self.live(Track::Network), self.live(self.twin_track));
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
            if !loss.is_finite() || loss > self.exp.training.max_loss {
                if let Some(d) = self.diverged.get_mut(Track::Network) {
                    *d = Some(step);
                }
            }
        }
        Ok(())
    }

    /// Every track's predictions on all points (row-major `n_all × K`, reported frame: minus f0
    /// when centring).
    pub fn predictions(&self, step: u64) -> Result<PerTrack<Vec<f64>>> {
        let n_all = self.x_all.len() / self.data.input_dim;
        // Before the first step the network's outputs are f0.
        let network = if step == 0 {
            self.init.f0_all.clone()
        } else {
            self.network.net.predict(&self.x_all, n_all)?
        };
        let twin = match &self.twin {
            Twin::Function(t) => linalg::mat_to_rows(t.predictions().as_ref()),
            Twin::Parameter(_) if step == 0 => self.init.f0_all.clone(),
            Twin::Parameter(t) => t.predict(&self.x_all, n_all)?,
        };
        let mut all = vec![(Track::Network, network), (self.twin_track, twin)];
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
        Ok(PerTrack::from_keys(self.order.iter().copied(), |t| {
            all.iter()
                .find(|(u, _)| *u == t)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }))
    }
}

/// Every pair of `tracks`, in order.
fn all_pairs(tracks: &[Track]) -> Vec<Pair> {
    (0..tracks.len())
        .flat_map(|i| (i + 1..tracks.len()).map(move |j| (i, j)))
        .map(|(i, j)| (tracks[i], tracks[j]))
        .collect()
}

/// The targets every track fits on `data`'s training points: with centred outputs y + f0 (every
/// track then reports f − f0: the same dynamics as learning y from zero), else y.
pub(super) fn fit_targets(exp: &Experiment, data: &Dataset, init: &Initial) -> Vec<f64> {
    if exp.training.center_outputs {
        data.y_train
            .iter()
            .zip(&init.f0_all)
            .map(|(a, b)| a + b)
            .collect()
    } else {
        data.y_train.clone()
    }
}

/// The full-batch inputs and targets as tensors on the network's device, when every step is
/// on the whole training set.
fn full_batch_tensors(
    exp: &Experiment,
    train: &Dataset,
    net: &Network,
    y_step: &[f64],
) -> Option<(Tensor<2>, Tensor<2>)> {
    let n_step = train.n_train();
    exp.training
        .batch_size
        .is_none_or(|b| b == n_step)
        .then(|| {
            let ad = net.device().clone().autodiff();
            (
                tensor_from_f64(&train.x_train, [n_step, train.input_dim], net.dtype(), &ad),
                tensor_from_f64(y_step, [n_step, train.n_outputs], net.dtype(), &ad),
            )
        })
}

/// The linearized twin at θ0 in its space.
fn new_twin(exp: &Experiment, init: &Initial, space: TwinSpace, k: usize, lr: f64) -> Twin {
    let momentum = exp.training.momentum;
    match space {
        TwinSpace::Parameter => Twin::Parameter(
            ParameterTwin::new(init.net0.clone(), lr, momentum).with_loss(exp.training.loss),
        ),
        _ => {
            let form = exp.kernel.form;
            let per_output = form == KernelForm::Trace;
            Twin::Function(
                LinearizedTwin::new(
                    init.theta0.clone(),
                    as_rows(&init.f0_all, k, per_output),
                    form.rows_per_point(k),
                    lr,
                    momentum,
                )
                .with_loss(exp.training.loss),
            )
        }
    }
}
