//! Scalar figures computed from predictions and kernels (no IO, no drawing).

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

/// Euclidean norm.
pub fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
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

/// Training regime of a run at a given learning rate (Lewkowycz et al. 2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The loss decreases monotonically and the kernel barely moves.
    Lazy,
    /// The loss first grows, then converges, with a smaller λ_max (the catapult mechanism).
    Catapult,
    /// The loss blows up (NaN/inf, past the bound) or ends above where it started.
    Divergent,
}

impl Phase {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Lazy => "lazy",
            Phase::Catapult => "catapult",
            Phase::Divergent => "divergent",
        }
    }
}

/// Relative rise of the loss above its starting value that counts as a catapult spike.
pub const CATAPULT_SPIKE: f64 = 0.05;
/// λ_max(Θ_final)/λ_max(Θ0) below this counts as a catapult even without a logged spike.
pub const CATAPULT_LAMBDA_RATIO: f64 = 0.8;

/// Classifies a training-loss curve (checkpoints in order) and the final-to-initial λ_max ratio.
pub fn classify_phase(train_loss: &[f64], lambda_ratio: f64, diverged: bool) -> Phase {
    let first = train_loss.first().copied().unwrap_or(f64::NAN);
    let last = train_loss.last().copied().unwrap_or(f64::NAN);
    if diverged
        || train_loss.iter().any(|v| !v.is_finite())
        || train_loss.is_empty()
        || last > first
    {
        return Phase::Divergent;
    }
    let peak = train_loss.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if peak > first * (1.0 + CATAPULT_SPIKE) || lambda_ratio < CATAPULT_LAMBDA_RATIO {
        Phase::Catapult
    } else {
        Phase::Lazy
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
