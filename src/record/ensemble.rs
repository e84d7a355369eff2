//! Records of an ensemble run: per-checkpoint figures and, at the final step, per-point
//! statistics, calibration and the gaps between the ensemble and the infinite-width Gaussian
//! process (`run/ensemble.rs` computes them).

use serde::{Deserialize, Serialize};

use super::{Keyed, PerTrack, Track};
use crate::dynamics::gp::GpKernel;

/// One value per GP (`ntk`, `nngp`).
pub type PerGp<T> = Keyed<GpKernel, T>;

/// Ensemble figures at one checkpoint, on the test points, against the NTK GP at that step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnsembleCheckpoint {
    /// RMSE between each track's ensemble mean and the NTK-GP mean.
    pub gp_mean_rmse: PerTrack<f64>,
    /// Median over test entries of (unbiased sample variance over members) / (GP variance).
    pub var_ratio: PerTrack<f64>,
    /// Half-MSE test loss of each track's ensemble mean.
    pub mean_test_loss: PerTrack<f64>,
    /// Half-MSE test loss of the NTK-GP mean.
    pub gp_mean_test_loss: f64,
}

/// Per-entry statistics on one split (row-major `n × K`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnsembleOutputs {
    /// Mean over members per track.
    pub mean: PerTrack<Vec<f64>>,
    /// Unbiased sample variance over members per track.
    pub var: PerTrack<Vec<f64>>,
    /// GP mean.
    pub gp_mean: PerGp<Vec<f64>>,
    /// GP variance (the same for every output of a point).
    pub gp_var: PerGp<Vec<f64>>,
}

/// What a predictive distribution is: an ensemble of one track, or a GP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predictive {
    /// The members of a track (mean and sample variance).
    Ensemble(Track),
    /// A Gaussian process.
    Gp(GpKernel),
}

impl Predictive {
    /// Name in columns (`network`, `linearized`, `ntk_gp`, `nngp_gp`).
    pub fn name(self) -> String {
        match self {
            Predictive::Ensemble(t) => t.name().to_string(),
            Predictive::Gp(g) => format!("{}_gp", g.name()),
        }
    }
}

/// Calibration of a predictive distribution on the test targets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Which distribution.
    pub source: Predictive,
    /// Fraction of test entries with |y − μ| ≤ 1.959964·σ (0.95 for a calibrated Gaussian).
    pub coverage95: f64,
    /// Mean over test entries of the Gaussian negative log-likelihood
    /// `½ ln(2πσ²) + (y − μ)²/(2σ²)` (nats).
    pub nll: f64,
}

/// The final gaps between one track's ensemble and the NTK GP on the test points, with the
/// values Monte-Carlo sampling alone would give if the members were exact GP draws.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct EnsembleGap {
    /// Which track.
    pub track: Track,
    /// RMSE(ensemble mean, GP mean) / RMS(y_test).
    pub mean_gap: f64,
    /// √(mean GP variance / M) / RMS(y_test): the expected mean gap of M exact GP draws.
    pub mean_gap_floor: f64,
    /// RMS over test entries of (ensemble mean − GP mean)/√(GP variance/M): ≈ 1 for exact GP
    /// draws.
    pub mean_z_rms: f64,
    /// Median over test entries of sample variance / GP variance.
    pub var_ratio: f64,
    /// RMS over test entries of ln(sample variance / GP variance).
    pub var_log_ratio_rms: f64,
    /// Its expected value for exact GP draws:
    /// `√(ψ₁(ν/2) + (ψ(ν/2) − ln(ν/2))²)` with ν = M − 1 (ln of a χ²_ν/ν variable).
    pub var_log_ratio_floor: f64,
}

/// Everything an ensemble run adds to its record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnsembleRecord {
    /// Number of members (member 0 is the run's own network).
    pub members: usize,
    /// Members that each track lost to divergence (left out of the statistics).
    pub diverged_members: PerTrack<usize>,
    /// Final-step statistics on the training points.
    pub train: EnsembleOutputs,
    /// Final-step statistics on the test points.
    pub test: EnsembleOutputs,
    /// Calibration of each predictive distribution on the test targets.
    pub calibration: Vec<Calibration>,
    /// Ensemble vs NTK GP per track.
    pub gaps: Vec<EnsembleGap>,
    /// Each member's final test predictions per track (row-major `n_test × K`), for plots.
    pub member_test: PerTrack<Vec<Vec<f64>>>,
    /// Seconds spent training the members other than the run's own network (a wall time: not
    /// part of the figure data).
    #[serde(skip)]
    pub member_seconds: f64,
    /// Members trained at the same time.
    pub parallel: usize,
}

impl EnsembleRecord {
    /// The gap figures of a track.
    pub fn gap(&self, t: Track) -> Option<&EnsembleGap> {
        self.gaps.iter().find(|g| g.track == t)
    }

    /// The calibration of a predictive distribution.
    pub fn calibration_of(&self, p: Predictive) -> Option<&Calibration> {
        self.calibration.iter().find(|c| c.source == p)
    }
}
