//! Closed-form kernel regression under gradient descent on the half-MSE (neural-tangents'
//! `gradient_descent_mse`, plus exact discrete time). It takes **matrices**, not models.
//!
//! With `Θ_r = Θ + λI = V diag(e) Vᵀ` (`e` clamped at 0), `r0 = f0 − y`, `a = η/|Y|`:
//! - discrete, after `s` steps: `f_train = y + V diag((1 − a·e)^s) Vᵀ r0`,
//!   `f_test = g0 + Θ_st V diag(((1 − a·e)^s − 1)/e) Vᵀ r0`;
//! - continuous, `τ = η·s`: `f_train = y + V diag(exp(−τe/|Y|)) Vᵀ r0`,
//!   `f_test = g0 + Θ_st V diag(expm1(−τe/|Y|)/e) Vᵀ r0`;
//! - heavy-ball momentum μ (`v ← μv + g`, `θ ← θ − ηv`, discrete time): per eigenmode the
//!   residual `r`, the function-space velocity `z` and the test accumulators obey the linear
//!   recursion `r' = (1 − h)r − μz`, `z' = μz + hr`, `ζ' = μζ + a·r`, `T' = T − ζ'` with
//!   `h = a·e` from `(r, z, ζ, T) = (1, 0, 0, 0)`: `f_train = y + V diag(r_s) Vᵀ r0`,
//!   `f_test = g0 + Θ_st V diag(T_s) Vᵀ r0` (the 4 × 4 matrix power is taken by squaring). In
//!   continuous time momentum enters as the heavy ball's gradient-flow limit, rate `η/(1 − μ)`;
//! - `t = ∞`: `f_train = y` (exactly, as neural-tangents), `f_test = g0 + Θ_st Θ_r⁺ (y − f0)`,
//!   with the pseudo-inverse dropping eigenvalues below `PINV_RTOL · e_max` (documented jitter-free
//!   handling of singular kernels, e.g. duplicate training points).
//!
//! Rows of the matrices index training "targets": points (for a per-output kernel applied to
//! each of the `c` columns) or point·K + output (for a full multi-output kernel, `c = 1`).

use faer::Mat;

use serde::{Deserialize, Serialize};

use crate::linalg;
use crate::Result;

/// Time of the kernel predictor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeMode {
    /// Exact discrete-time gradient descent, `(I − ηΘ/|Y|)^steps`.
    Discrete,
    /// Gradient flow, `exp(−ηt·Θ/|Y|)`.
    Continuous,
}

impl TimeMode {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            TimeMode::Discrete => "discrete",
            TimeMode::Continuous => "continuous",
        }
    }
}

/// Diagonal regulariser as neural-tangents defines it (config keys `diag_reg`,
/// `diag_reg_absolute`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiagReg {
    /// The value.
    #[serde(rename = "diag_reg")]
    pub value: f64,
    /// Absolute (`λ = value`) or relative (`λ = value · trace(Θ)/n`).
    #[serde(rename = "diag_reg_absolute")]
    pub absolute: bool,
}

/// Eigenvalues below this fraction of the largest are treated as zero in the t = ∞ solution.
pub const PINV_RTOL: f64 = 1e-12;

/// The predictor, with the eigendecomposition done once.
#[derive(Debug, Clone)]
pub struct KernelPredictor {
    eigvals: Vec<f64>,
    eigvecs: Mat<f64>,
    proj: Mat<f64>,
    test_v: Option<Mat<f64>>,
    y: Mat<f64>,
    g0: Option<Mat<f64>>,
    learning_rate: f64,
    momentum: f64,
    n_targets: f64,
    time: TimeMode,
    /// The regulariser λ actually added.
    pub lambda: f64,
    /// Largest eigenvalue of `Θ_r`.
    pub lambda_max: f64,
    /// `e_max / e_min` of `Θ_r` (∞ when singular).
    pub condition_number: f64,
}

/// Inputs of a [`KernelPredictor`].
#[derive(Debug, Clone, Copy)]
pub struct PredictorInputs<'a> {
    /// Train × train kernel, `n × n`.
    pub theta_train: &'a Mat<f64>,
    /// Test × train kernel, `m × n` (None without test points).
    pub theta_test_train: Option<&'a Mat<f64>>,
    /// Initial train outputs, `n × c`.
    pub f0_train: &'a Mat<f64>,
    /// Initial test outputs, `m × c`.
    pub f0_test: Option<&'a Mat<f64>>,
    /// Train targets, `n × c`.
    pub y_train: &'a Mat<f64>,
    /// |Y| = N·K (number of target entries in the loss).
    pub n_targets: usize,
    /// η.
    pub learning_rate: f64,
    /// Heavy-ball momentum μ (0 = plain gradient descent).
    pub momentum: f64,
    /// Time mode.
    pub time: TimeMode,
    /// Regulariser.
    pub diag_reg: DiagReg,
}

impl KernelPredictor {
    /// Eigendecomposes the (regularised) kernel once.
    pub fn new(p: PredictorInputs<'_>) -> Result<Self> {
        let n = p.theta_train.nrows();
        let trace: f64 = (0..n).map(|i| p.theta_train[(i, i)]).sum();
        let lambda = if p.diag_reg.absolute {
            p.diag_reg.value
        } else {
            p.diag_reg.value * trace / n.max(1) as f64
        };
        let mut theta_r = linalg::symmetrize(p.theta_train.as_ref());
        for i in 0..n {
            theta_r[(i, i)] += lambda;
        }
        let (vals, vecs) = linalg::sym_eigen(theta_r.as_ref())?;
        let eigvals: Vec<f64> = vals.iter().map(|&e| e.max(0.0)).collect();
        let lambda_max = eigvals.last().copied().unwrap_or(0.0);
        let lambda_min = eigvals.first().copied().unwrap_or(0.0);
        let condition_number = if lambda_min > 0.0 {
            lambda_max / lambda_min
        } else {
            f64::INFINITY
        };
        let r0 = p.f0_train - p.y_train;
        let proj = linalg::matmul(vecs.transpose(), r0.as_ref());
        let test_v = p
            .theta_test_train
            .filter(|t| t.nrows() > 0)
            .map(|t| linalg::matmul(t.as_ref(), vecs.as_ref()));
        Ok(KernelPredictor {
            eigvals,
            eigvecs: vecs,
            proj,
            test_v,
            y: p.y_train.clone(),
            g0: p.f0_test.cloned(),
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            n_targets: p.n_targets as f64,
            time: p.time,
            lambda,
            lambda_max,
            condition_number,
        })
    }

    /// `(train decay factor, test factor)` of one eigenvalue after `steps`.
    fn factors(&self, e: f64, steps: u64) -> (f64, f64) {
        mode_factors(
            self.time,
            self.learning_rate / self.n_targets,
            self.momentum,
            e,
            steps,
        )
    }

    /// The eigenvalues (ascending, clamped at 0) and eigenvectors of the regularised train
    /// kernel `Θ_r`.
    pub fn eigen(&self) -> (&[f64], &Mat<f64>) {
        (&self.eigvals, &self.eigvecs)
    }

    /// `Θ_st·V` (test × eigenmodes), None without test points.
    pub fn test_modes(&self) -> Option<&Mat<f64>> {
        self.test_v.as_ref()
    }

    /// Per eigenmode, `(train decay factor, test factor)` after `steps` steps; `None` is
    /// t = ∞: `(0, −1/e)` above the pseudo-inverse cutoff, `(1, 0)` below it.
    pub fn mode_factors(&self, steps: Option<u64>) -> Vec<(f64, f64)> {
        let cutoff = PINV_RTOL * self.lambda_max;
        self.eigvals
            .iter()
            .map(|&e| match steps {
                Some(s) => self.factors(e, s),
                None if e > cutoff => (0.0, -1.0 / e),
                None => (1.0, 0.0),
            })
            .collect()
    }

    /// Train and test predictions after `steps` steps (`t = η·steps`).
    pub fn predict(&self, steps: u64) -> (Mat<f64>, Option<Mat<f64>>) {
        let n = self.eigvals.len();
        let c = self.proj.ncols();
        let facs: Vec<(f64, f64)> = self
            .eigvals
            .iter()
            .map(|&e| self.factors(e, steps))
            .collect();
        let scaled_train = Mat::from_fn(n, c, |i, j| facs[i].0 * self.proj[(i, j)]);
        let train = &self.y + linalg::matmul(self.eigvecs.as_ref(), scaled_train.as_ref());
        let test = self.test_v.as_ref().map(|tv| {
            let scaled = Mat::from_fn(n, c, |i, j| facs[i].1 * self.proj[(i, j)]);
            let g = linalg::matmul(tv.as_ref(), scaled.as_ref());
            match &self.g0 {
                Some(g0) => g0 + &g,
                None => g,
            }
        });
        (train, test)
    }

    /// The `t = ∞` solution.
    pub fn predict_infinite(&self) -> (Mat<f64>, Option<Mat<f64>>) {
        let n = self.eigvals.len();
        let c = self.proj.ncols();
        let cutoff = PINV_RTOL * self.lambda_max;
        let test = self.test_v.as_ref().map(|tv| {
            let scaled = Mat::from_fn(n, c, |i, j| {
                let e = self.eigvals[i];
                if e > cutoff {
                    -self.proj[(i, j)] / e
                } else {
                    0.0
                }
            });
            let g = linalg::matmul(tv.as_ref(), scaled.as_ref());
            match &self.g0 {
                Some(g0) => g0 + &g,
                None => g,
            }
        });
        (self.y.clone(), test)
    }
}

/// `(train decay factor, test factor)` of one eigenvalue `e` of the (regularised) kernel after
/// `steps` steps of rate `a = η/|Y|` and momentum μ: `((1 − a·e)^s, ((1 − a·e)^s − 1)/e)` in
/// discrete time, `(exp(−a·s·e), expm1(−a·s·e)/e)` in continuous time (rate `a/(1 − μ)` with
/// momentum), [`heavy_ball_factors`] for discrete time with momentum; the limits at `e = 0` are
/// `(1, −a·s)`.
pub fn mode_factors(time: TimeMode, a: f64, momentum: f64, e: f64, steps: u64) -> (f64, f64) {
    let s = steps as f64;
    match time {
        TimeMode::Discrete if momentum > 0.0 => heavy_ball_factors(a, e, momentum, steps),
        TimeMode::Continuous => {
            let a = a / (1.0 - momentum);
            let x = -a * s * e;
            let test = if e > 0.0 { x.exp_m1() / e } else { -a * s };
            (x.exp(), test)
        }
        TimeMode::Discrete => {
            let x = -a * e;
            if e == 0.0 {
                (1.0, -a * s)
            } else if x.abs() < 0.5 {
                let l = x.ln_1p() * s;
                (l.exp(), l.exp_m1() / e)
            } else {
                let d = (1.0 + x).powf(s);
                (d, (d - 1.0) / e)
            }
        }
    }
}

/// `(r_s, T_s)` of one eigenmode under heavy-ball gradient descent (see the module doc): the
/// train decay factor and the test factor after `steps` steps, by squaring the 4 × 4 update.
pub fn heavy_ball_factors(a: f64, e: f64, mu: f64, steps: u64) -> (f64, f64) {
    let h = a * e;
    // State (r, z, ζ, T); one step: r' = (1−h)r − μz, z' = hr + μz, ζ' = a·r + μζ,
    // T' = T − ζ' = −a·r − μζ + T.
    let step: [[f64; 4]; 4] = [
        [1.0 - h, -mu, 0.0, 0.0],
        [h, mu, 0.0, 0.0],
        [a, 0.0, mu, 0.0],
        [-a, 0.0, -mu, 1.0],
    ];
    let mul = |x: &[[f64; 4]; 4], y: &[[f64; 4]; 4]| {
        let mut o = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                o[i][j] = (0..4).map(|k| x[i][k] * y[k][j]).sum();
            }
        }
        o
    };
    let mut result = [[0.0; 4]; 4];
    for (i, row) in result.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let (mut base, mut n) = (step, steps);
    while n > 0 {
        if n & 1 == 1 {
            result = mul(&result, &base);
        }
        base = mul(&base, &base);
        n >>= 1;
    }
    // Applied to the initial state (1, 0, 0, 0): the first column.
    (result[0][0], result[3][0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_ball_factors_follow_the_recursion_and_reduce_to_plain_gd() {
        let (a, e, mu) = (0.01, 37.0, 0.9);
        let (mut r, mut z, mut zeta, mut t) = (1.0f64, 0.0f64, 0.0f64, 0.0f64);
        for s in 1..=250u64 {
            let (r1, z1) = ((1.0 - a * e) * r - mu * z, a * e * r + mu * z);
            let zeta1 = a * r + mu * zeta;
            t -= zeta1;
            (r, z, zeta) = (r1, z1, zeta1);
            let (fr, ft) = heavy_ball_factors(a, e, mu, s);
            assert!((fr - r).abs() < 1e-12 && (ft - t).abs() < 1e-12, "step {s}");
        }
        // μ = 0: (1 − ae)^s and ((1 − ae)^s − 1)/e.
        let (fr, ft) = heavy_ball_factors(a, e, 0.0, 40);
        let d = (1.0 - a * e).powi(40);
        assert!((fr - d).abs() < 1e-14 && (ft - (d - 1.0) / e).abs() < 1e-14);
    }
}
