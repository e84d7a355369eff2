//! Scalar figures computed from predictions and kernels (no IO, no drawing), the phase
//! classifier, and small statistics ([`stats`]).

pub mod ngram;
pub mod stats;

/// Half mean squared error `1/(2·len) Σ (f − y)²` (the shared loss convention); `None` when empty.
pub fn half_mse(f: &[f64], y: &[f64]) -> Option<f64> {
    if f.is_empty() {
        return None;
    }
    Some(f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * f.len() as f64))
}

/// Root mean squared difference; `None` when empty.
pub fn rmse(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() {
        return None;
    }
    Some((a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt())
}

/// Root mean square of the entries; `None` when empty.
pub fn rms(a: &[f64]) -> Option<f64> {
    if a.is_empty() {
        return None;
    }
    Some((a.iter().map(|x| x * x).sum::<f64>() / a.len() as f64).sqrt())
}

/// Euclidean norm (a linear-algebra helper, used here too).
pub use crate::linalg::norm;

/// Softmax of one row (max-shifted).
pub fn softmax(f: &[f64]) -> Vec<f64> {
    let m = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = f.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Mean softmax cross-entropy (nats) of row-major `n × K` outputs against targets.
pub fn cross_entropy(f: &[f64], y: &[f64], k: usize) -> Option<f64> {
    if f.is_empty() {
        return None;
    }
    let n = (f.len() / k) as f64;
    Some(cross_entropy_rows(f, y, k).sum::<f64>() / n)
}

/// The softmax cross-entropy (nats) of each row of row-major `n × K` outputs against its
/// targets.
pub fn cross_entropy_per_row(f: &[f64], y: &[f64], k: usize) -> Vec<f64> {
    cross_entropy_rows(f, y, k).collect()
}

fn cross_entropy_rows<'a>(f: &'a [f64], y: &'a [f64], k: usize) -> impl Iterator<Item = f64> + 'a {
    f.chunks(k).zip(y.chunks(k)).map(|(fa, ya)| {
        let m = fa.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + fa.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        ya.iter()
            .zip(fa)
            .map(|(yk, fk)| -yk * (fk - lse))
            .sum::<f64>()
    })
}

/// `‖a − b‖ / ‖b‖`.
pub fn rel_change(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let n = norm(b);
    if n == 0.0 {
        if d == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        d / n
    }
}

/// Least-squares slope and intercept of `log y` against `log x` (points with non-positive values
/// are skipped), with the standard error of the slope.
pub fn loglog_fit(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0 && b.is_finite())
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let se = if pts.len() > 2 {
        let rss: f64 = pts
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        (rss / (n - 2.0) / sxx).sqrt()
    } else {
        f64::NAN
    };
    Some((slope, intercept, se))
}

/// Training regime of a run, labelled from what happened (Lewkowycz et al. 2020, "The large
/// learning rate phase of deep learning: the catapult mechanism"; Cohen et al. 2021,
/// "Gradient descent on neural networks typically occurs at the edge of stability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The kernel barely moves (relative drift under [`LAZY_DRIFT`]): the linearized (NTK)
    /// regime.
    Lazy,
    /// The kernel moves far (feature learning) without reaching the stability edge.
    FeatureLearning,
    /// η > η_c (the linearized model is unstable at θ0): the loss spikes, then converges with
    /// the kernel's λ_max well below the stability edge `2(1+μ)·N·K/η` (below the edge band):
    /// the catapult mechanism.
    Catapult,
    /// The sharpness reaches the band [`EDGE_BAND`] around the stability edge from outside it
    /// (from below by progressive sharpening, or from above) and stays there over the last
    /// quarter of training while the loss converges, whatever η/η_c was.
    EdgeOfStability,
    /// The loss blows up (NaN/inf, past the bound) or ends at or above where it started.
    Divergent,
}

impl Phase {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Lazy => "lazy",
            Phase::FeatureLearning => "feature_learning",
            Phase::Catapult => "catapult",
            Phase::EdgeOfStability => "edge_of_stability",
            Phase::Divergent => "divergent",
        }
    }

    /// The phase of a name (the inverse of [`Phase::name`]).
    pub fn from_name(name: &str) -> Option<Phase> {
        [
            Phase::Lazy,
            Phase::FeatureLearning,
            Phase::Catapult,
            Phase::EdgeOfStability,
            Phase::Divergent,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// Relative kernel drift ‖Θ_t − Θ0‖_F/‖Θ0‖_F below which a run counts as lazy. A stated
/// convention: lazy training (Chizat, Oyallon & Bach 2019) means a relative change of the
/// model's differential ≪ 1; this project draws the line at 10 %.
pub const LAZY_DRIFT: f64 = 0.1;
/// Relative rise of the loss above its starting value reported as a spike.
pub const SPIKE: f64 = 0.05;
/// The band of the sharpness ratio `η·λ_max/(2(1+μ)·N·K)` (1 = the stability edge) that counts
/// as "at the edge". Cohen et al. 2021 (§3, Figs. 1–2) describe full-batch gradient descent
/// whose sharpness rises to 2/η (2(1+μ)/η with momentum μ, their App. C) and then "hovers
/// right at, or just above" it, oscillating by a few per cent. The ±10 % band is this
/// project's stated tolerance for that hovering and for λ_max being sampled only at kernel
/// checkpoints (on the probe set); a catapult must end below the band. The ratio is built from
/// λ_max of the NTK, the Gauss–Newton part of the loss Hessian; Cohen et al. measure the
/// Hessian itself, which the Gauss–Newton matrix equals at zero residual (near-converged runs).
pub const EDGE_BAND: (f64, f64) = (0.9, 1.1);

/// Relative round-off within which the first sharpness ratio counts as on the band's edge
/// (inside it). The first ratio is η/η_c by construction (η_c from the same λ_max(Θ0)), so a
/// configured `lr_scale = 0.9` gives 0.9 up to a few units in the last place (0.8999999999999999
/// here): that run started at the edge by the choice of η. 10⁻⁹ is far above f64 round-off and
/// far below any change training makes between two kernel checkpoints.
pub const EDGE_ROUND_OFF: f64 = 1e-9;

/// What the phase of a run is judged from.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseEvidence {
    /// Training loss at every checkpoint, in order.
    pub train_loss: Vec<f64>,
    /// η/η_c with η_c = 2(1+μ)·N·K/λ_max(Θ0).
    pub lr_ratio: f64,
    /// `η·λ_max(Θ_t)/(2(1+μ)·N·K)` at every kernel checkpoint, in order (1 = the stability
    /// edge).
    pub sharpness: Vec<f64>,
    /// Final relative kernel drift.
    pub final_drift: f64,
    /// Whether the track was marked diverged.
    pub diverged: bool,
}

impl PhaseEvidence {
    /// Whether the loss rose more than [`SPIKE`] above its start before falling.
    pub fn spiked(&self) -> bool {
        let first = self.train_loss.first().copied().unwrap_or(f64::NAN);
        self.train_loss.iter().any(|&v| v > first * (1.0 + SPIKE))
    }

    /// The last sharpness ratio (NaN without kernel checkpoints).
    pub fn final_sharpness(&self) -> f64 {
        self.sharpness.last().copied().unwrap_or(f64::NAN)
    }

    /// The sharpness ratios of the last quarter of the kernel checkpoints: the last
    /// max(2, ⌊n/4⌋) of n; empty when fewer than three were taken, too few to tell a held band
    /// from a passage.
    pub fn late_sharpness(&self) -> &[f64] {
        let n = self.sharpness.len();
        if n < 3 {
            return &[];
        }
        &self.sharpness[n - (n / 4).max(2)..]
    }

    /// Whether the dynamics brought the sharpness to the edge and kept it there: every late
    /// ratio lies in [`EDGE_BAND`] and the first one (η/η_c at θ0) lay outside it, below
    /// (progressive sharpening) or above (a rate past η_c whose curvature fell to the edge). A
    /// run started inside the band, or on its edge up to round-off ([`EDGE_ROUND_OFF`]), sits
    /// at the edge by the choice of η, not by what training did, and is not labelled by it.
    pub fn held_at_edge(&self) -> bool {
        let band = EDGE_BAND.0..=EDGE_BAND.1;
        let start_band =
            EDGE_BAND.0 * (1.0 - EDGE_ROUND_OFF)..=EDGE_BAND.1 * (1.0 + EDGE_ROUND_OFF);
        let late = self.late_sharpness();
        let arrived = self
            .sharpness
            .first()
            .is_some_and(|s0| !start_band.contains(s0));
        arrived && !late.is_empty() && late.iter().all(|s| band.contains(s))
    }

    /// The regime, in this order: divergent (blown up or no progress); edge of stability when
    /// the sharpness came into [`EDGE_BAND`] from outside and is held there over the last
    /// quarter of training ([`PhaseEvidence::held_at_edge`]); catapult when
    /// η > η_c, the loss spiked and the final sharpness is below the band; otherwise lazy if
    /// the kernel drift is under [`LAZY_DRIFT`] and feature learning if not.
    pub fn classify(&self) -> Phase {
        let l = &self.train_loss;
        let (first, last) = match (l.first(), l.last()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => return Phase::Divergent,
        };
        if self.diverged || l.iter().any(|v| !v.is_finite()) || last >= first {
            return Phase::Divergent;
        }
        if self.held_at_edge() {
            Phase::EdgeOfStability
        } else if self.lr_ratio > 1.0 && self.spiked() && self.final_sharpness() < EDGE_BAND.0 {
            Phase::Catapult
        } else if self.final_drift < LAZY_DRIFT {
            Phase::Lazy
        } else {
            Phase::FeatureLearning
        }
    }
}

/// Index of the largest entry of each row of a row-major `n × k` matrix.
pub fn argmax_rows(v: &[f64], k: usize) -> Vec<usize> {
    v.chunks(k)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
                    if x > bv {
                        (i, x)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}

/// Fraction of rows whose argmax agree; `None` when empty.
pub fn agreement(a: &[f64], b: &[f64], k: usize) -> Option<f64> {
    if a.is_empty() {
        return None;
    }
    let (x, y) = (argmax_rows(a, k), argmax_rows(b, k));
    Some(x.iter().zip(&y).filter(|(p, q)| p == q).count() as f64 / x.len() as f64)
}

/// Accuracy of outputs against one-hot (or centred one-hot) targets; `None` when empty.
pub fn accuracy(outputs: &[f64], targets: &[f64], k: usize) -> Option<f64> {
    agreement(outputs, targets, k)
}

/// Confusion matrix `counts[true][predicted]`.
pub fn confusion(outputs: &[f64], targets: &[f64], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; k]; k];
    for (p, t) in argmax_rows(outputs, k)
        .into_iter()
        .zip(argmax_rows(targets, k))
    {
        m[t][p] += 1;
    }
    m
}

/// Read-out temperatures [`fit_temperature`] searches: T ∈ [1/1000, 1000].
pub const TEMPERATURE_RANGE: (f64, f64) = (1e-3, 1e3);

/// The softmax temperature T that minimises the mean cross-entropy of `softmax(f/T)` against
/// the one-hot (or probability) targets `y` (row-major `n × K`), and that cross-entropy (nats):
/// temperature scaling (Guo et al. 2017, "On calibration of modern neural networks"), fitted on
/// held-out points. The cross-entropy is convex in β = 1/T, so it is unimodal in ln β and a
/// golden-section search over ln T in [`TEMPERATURE_RANGE`] finds the minimum (to 1e-9 in ln T).
/// None without points or with non-finite outputs.
pub fn fit_temperature(f: &[f64], y: &[f64], k: usize) -> Option<(f64, f64)> {
    if f.is_empty() || f.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let xent = |ln_t: f64| -> f64 {
        let beta = (-ln_t).exp();
        let scaled: Vec<f64> = f.iter().map(|v| v * beta).collect();
        cross_entropy(&scaled, y, k).unwrap_or(f64::INFINITY)
    };
    let (mut lo, mut hi) = (TEMPERATURE_RANGE.0.ln(), TEMPERATURE_RANGE.1.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fa, mut fb) = (xent(a), xent(b));
    while hi - lo > 1e-9 {
        if fa <= fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - g * (hi - lo);
            fa = xent(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + g * (hi - lo);
            fb = xent(b);
        }
    }
    let ln_t = 0.5 * (lo + hi);
    Some((ln_t.exp(), xent(ln_t)))
}
