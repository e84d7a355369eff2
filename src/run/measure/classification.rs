//! Classification figures of one-hot data: accuracies, cross-entropies (raw and
//! temperature-calibrated on the validation points) and the agreement between tracks; for text,
//! each track's test outputs at its early-stopping checkpoint.

use crate::dynamics::cross_entropy;
use crate::metrics;
use crate::record::{Checkpoint, ClassCheckpoint, PerPair, PerTrack, Track};
use crate::Result;

use super::{Measurer, Now, Slices};

/// A track's test outputs at its early-stopping checkpoint so far.
#[derive(Debug, Clone)]
pub struct StoppedTest {
    /// The track.
    pub track: Track,
    /// Its calibrated validation cross-entropy there.
    pub val_xent: f64,
    /// Its fitted temperature there.
    pub temperature: f64,
    /// Test outputs, row-major `n_test × K`.
    pub test: Vec<f64>,
}

/// Measures classification figures at every checkpoint of a run on class data; on text, keeps
/// each track's early-stopped test outputs.
#[derive(Debug, Default)]
pub struct Classification {
    /// Text runs: per track, its test outputs at its early-stopping checkpoint so far (the
    /// least calibrated validation cross-entropy, the earliest of ties, as
    /// [`crate::record::RunRecord::early_stop`]) and the fitted temperature.
    pub stopped_test: Vec<StoppedTest>,
}

impl Measurer for Classification {
    fn measure(&mut self, now: &Now<'_, '_>, ck: &mut Checkpoint) -> Result<()> {
        if now.tracks.data.classes.is_none() {
            return Ok(());
        }
        let cl = class_checkpoint(now);
        if now.tracks.data.text.is_some() {
            self.keep_stopped_test(&cl, now.predictions, &now.slices);
        }
        ck.classification = Some(cl);
        Ok(())
    }
}

impl Classification {
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
            let stopped = StoppedTest {
                track: t,
                val_xent,
                temperature,
                test: v[sl.test.clone()].to_vec(),
            };
            match self.stopped_test.iter_mut().find(|s| s.track == t) {
                Some(s) if val_xent < s.val_xent => *s = stopped,
                Some(_) => {}
                None => self.stopped_test.push(stopped),
            }
        }
    }
}

/// The classification figures of every track now.
fn class_checkpoint(now: &Now<'_, '_>) -> ClassCheckpoint {
    let (preds, sl, data) = (now.predictions, &now.slices, now.tracks.data);
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
        test_xent_calibrated: PerTrack::from_keys(now.tracks.order.iter().copied(), |t| {
            at_temperature(t, &sl.test, &data.y_test)
        }),
        train_accuracy: acc(&sl.train, &data.y_train).map(|_, v| v.unwrap_or(f64::NAN)),
        val_accuracy: acc(&sl.val, &data.y_val),
        test_accuracy: acc(&sl.test, &data.y_test),
        train_xent: xent(&sl.train, &data.y_train).map(|_, v| v.unwrap_or(f64::NAN)),
        test_xent: xent(&sl.test, &data.y_test),
        agreement: PerPair::from_keys(now.tracks.pairs.iter().copied(), |(a, b)| {
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
