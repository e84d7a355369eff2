//! What is measured of the tracks at a checkpoint. Each measurer reads the tracks (never steps
//! them) and adds its part of the [`Checkpoint`]; [`RunMeasurers`] is the set a whole run uses.
//! The loss figures every checkpoint has come from [`losses`], which the loop calls itself:
//! they decide which tracks diverged and stop being stepped. The loop is
//! [`super::lockstep`].

mod classification;
mod keep;
mod kernel;
mod sensitivity;

pub use classification::Classification;
pub use keep::{MemberTrace, PredictionKeeper, TraceKeeper};
pub use kernel::KernelFigures;
pub use sensitivity::Sensitivity;

use crate::data::Dataset;
use crate::metrics;
use crate::record::{Checkpoint, PerPair, PerTrack};
use crate::Result;

use super::tracks::Tracks;

/// The tracks at a checkpoint, as a measurer sees them.
pub struct Now<'t, 'a> {
    /// SGD steps taken.
    pub step: u64,
    /// Whether this is the run's last checkpoint (its end, or an interrupt).
    pub last: bool,
    /// The tracks.
    pub tracks: &'t Tracks<'a>,
    /// Every track's predictions on all points ([`Tracks::predictions`]).
    pub predictions: &'t PerTrack<Vec<f64>>,
    /// Where the training, validation and test outputs sit in the predictions.
    pub slices: Slices,
}

/// One measurement of the tracks at checkpoints.
pub trait Measurer {
    /// Adds this measurer's part to the checkpoint `ck` taken at `now`, when it is due then.
    fn measure(&mut self, now: &Now<'_, '_>, ck: &mut Checkpoint) -> Result<()>;
}

/// The figures every checkpoint has: each track's losses on the three splits and the RMSE
/// between the tracks of each pair (train and test points).
pub fn losses(now: &Now<'_, '_>) -> Checkpoint {
    let (preds, data, sl) = (now.predictions, now.tracks.data, &now.slices);
    let pair_rmse = |r: &std::ops::Range<usize>| -> PerPair<Option<f64>> {
        PerPair::from_keys(now.tracks.pairs.iter().copied(), |(a, b)| {
            metrics::rmse(&preds.get(a)?[r.clone()], &preds.get(b)?[r.clone()])
        })
    };
    Checkpoint {
        step: now.step,
        time: now.tracks.rates.lr * now.step as f64,
        val_loss: preds.map(|_, v| metrics::half_mse(&v[sl.val.clone()], &data.y_val)),
        test_loss: preds.map(|_, v| metrics::half_mse(&v[sl.test.clone()], &data.y_test)),
        train_loss: preds
            .map(|_, v| metrics::half_mse(&v[sl.train.clone()], &data.y_train).unwrap_or(f64::NAN)),
        rmse_train: pair_rmse(&sl.train).map(|_, v| v.unwrap_or(f64::NAN)),
        rmse_test: pair_rmse(&sl.test),
        kernel: None,
        classification: None,
        sensitivity: None,
        ensemble: None,
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

/// The measurers of a whole run (an ensemble member has only a [`TraceKeeper`]).
pub struct RunMeasurers {
    /// Classification figures (class data only).
    pub classification: Classification,
    /// Kernel figures.
    pub kernel: KernelFigures,
    /// Input sensitivity.
    pub sensitivity: Sensitivity,
    /// With `outputs.save_predictions = "checkpoints"`: every track's outputs at every
    /// checkpoint.
    pub predictions: Option<PredictionKeeper>,
    /// With `[ensemble]`: the run's own network and twin as the ensemble's first member.
    pub trace: Option<TraceKeeper>,
}

impl RunMeasurers {
    /// The measurers the run's configuration asks for.
    pub fn new(tracks: &Tracks<'_>) -> Self {
        let exp = tracks.exp;
        RunMeasurers {
            classification: Classification::default(),
            kernel: KernelFigures::new(tracks),
            sensitivity: Sensitivity::default(),
            predictions: (exp.outputs.predictions == crate::config::Predictions::Checkpoints)
                .then(PredictionKeeper::default),
            trace: exp.ensemble.map(|_| TraceKeeper::default()),
        }
    }

    /// Every measurer, for the training loop.
    pub fn list(&mut self) -> Vec<&mut dyn Measurer> {
        let mut v: Vec<&mut dyn Measurer> = vec![
            &mut self.classification,
            &mut self.sensitivity,
            &mut self.kernel,
        ];
        if let Some(p) = &mut self.predictions {
            v.push(p);
        }
        if let Some(t) = &mut self.trace {
            v.push(t);
        }
        v
    }
}
