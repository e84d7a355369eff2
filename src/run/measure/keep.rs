//! Measurers that keep predictions: every track's at every checkpoint
//! (`outputs.save_predictions = "checkpoints"`), and an ensemble member's network and twin.

use crate::record::{Checkpoint, PerTrack, Track};
use crate::Result;

use super::super::tracks::Tracks;
use super::{Measurer, Now};

/// Keeps every track's outputs at every checkpoint.
#[derive(Debug, Default)]
pub struct PredictionKeeper {
    /// Per checkpoint, its step and every track's outputs (row-major `n_all × K`).
    pub steps: Vec<(u64, PerTrack<Vec<f64>>)>,
}

impl Measurer for PredictionKeeper {
    fn measure(&mut self, now: &Now<'_, '_>, _ck: &mut Checkpoint) -> Result<()> {
        self.steps.push((now.step, now.predictions.clone()));
        Ok(())
    }
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

/// Keeps the network's and the twin's predictions at every checkpoint (an ensemble member's
/// trace).
#[derive(Debug, Default)]
pub struct TraceKeeper {
    trace: MemberTrace,
}

impl Measurer for TraceKeeper {
    fn measure(&mut self, now: &Now<'_, '_>, _ck: &mut Checkpoint) -> Result<()> {
        let get = |t: Track| now.predictions.get(t).cloned().unwrap_or_default();
        self.trace.steps.push(now.step);
        self.trace.network.push(get(Track::Network));
        self.trace.linearized.push(get(now.tracks.twin_track));
        Ok(())
    }
}

impl TraceKeeper {
    /// The trace, with the steps at which the tracks diverged.
    pub fn into_trace(self, tracks: &Tracks<'_>) -> MemberTrace {
        let diverged = |t: Track| tracks.diverged.get(t).copied().flatten();
        MemberTrace {
            network_diverged: diverged(Track::Network),
            linearized_diverged: diverged(tracks.twin_track),
            ..self.trace
        }
    }
}
