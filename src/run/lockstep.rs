//! The training loop: the tracks ([`Tracks`]) step in lockstep on one minibatch schedule, and
//! at every checkpoint the measurers ([`super::measure`]) read them. The loop does not know what
//! is measured.

use crate::record::{Checkpoint, Keyed, PerTrack, RunStatus};
use crate::Result;

use super::measure::{self, Measurer, Now, Slices};
use super::tracks::Tracks;
use super::RunOptions;

/// What training left: how it ended, its checkpoints and every track's predictions at the last
/// one.
pub struct Trained {
    /// Completed or interrupted.
    pub status: RunStatus,
    /// The checkpoints, in step order.
    pub checkpoints: Vec<Checkpoint>,
    /// Every track's predictions on all points at the last checkpoint.
    pub last_predictions: PerTrack<Vec<f64>>,
}

/// Runs every step of `tracks`, measuring at checkpoints (every `logging.every` steps and at
/// the end); stops early (interrupted) when the interrupt flag is set.
pub fn train(
    tracks: &mut Tracks<'_>,
    measurers: &mut [&mut dyn Measurer],
    opts: &RunOptions<'_>,
) -> Result<Trained> {
    let (steps, every) = (tracks.exp.training.steps, tracks.exp.logging.every);
    opts.progress.start("training", steps);
    let (mut status, mut checkpoints, mut last_predictions) =
        (RunStatus::Completed, Vec::new(), Keyed(Vec::new()));
    // The longest iteration so far (checkpoint and step): how long a stop request may wait for
    // the next look at it.
    let mut longest_seconds = 0.0f64;
    for step in 0..=steps {
        let clock = std::time::Instant::now();
        let interrupted = step < steps && opts.interrupted();
        let last = step == steps || interrupted;
        if step % every == 0 || last {
            let (ck, preds) = checkpoint(tracks, measurers, step, last)?;
            checkpoints.push(ck);
            last_predictions = preds;
        }
        if interrupted {
            status = RunStatus::Interrupted;
        }
        if last {
            break;
        }
        tracks.step(step)?;
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
    Ok(Trained {
        status,
        checkpoints,
        last_predictions,
    })
}

/// The checkpoint at `step`: the losses (marking the tracks whose loss left the bound as
/// diverged), then each measurer's part.
fn checkpoint(
    tracks: &mut Tracks<'_>,
    measurers: &mut [&mut dyn Measurer],
    step: u64,
    last: bool,
) -> Result<(Checkpoint, PerTrack<Vec<f64>>)> {
    let predictions = tracks.predictions(step)?;
    let mut ck = measure::losses(&at(tracks, step, last, &predictions));
    tracks.mark_diverged(step, &ck.train_loss);
    let now = at(tracks, step, last, &predictions);
    for m in measurers.iter_mut() {
        m.measure(&now, &mut ck)?;
    }
    Ok((ck, predictions))
}

/// The tracks at `step` as measurers see them.
fn at<'t, 'a>(
    tracks: &'t Tracks<'a>,
    step: u64,
    last: bool,
    predictions: &'t PerTrack<Vec<f64>>,
) -> Now<'t, 'a> {
    Now {
        step,
        last,
        tracks,
        predictions,
        slices: Slices::of(tracks.data),
    }
}
