//! What is measured of the tracks at a checkpoint. Each measurer reads the tracks (never steps
//! them) and adds its part of the [`Checkpoint`]; the loss figures every checkpoint has come
//! from [`losses`]. The loop that calls them is [`super::lockstep`].

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
