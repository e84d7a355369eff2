//! Closed-form kernel regression under gradient descent on the half-MSE (neural-tangents'
//! `gradient_descent_mse`, plus exact discrete time). It takes **matrices**, not models.
//!
//! With `Θ_r = Θ + λI = V diag(e) Vᵀ` (`e` clamped at 0), `r0 = f0 − y`, `a = η/|Y|`:
//! - discrete, after `s` steps: `f_train = y + V diag((1 − a·e)^s) Vᵀ r0`,
//!   `f_test = g0 + Θ_st V diag(((1 − a·e)^s − 1)/e) Vᵀ r0`;
//! - continuous, `τ = η·s`: `f_train = y + V diag(exp(−τe/|Y|)) Vᵀ r0`,
//!   `f_test = g0 + Θ_st V diag(expm1(−τe/|Y|)/e) Vᵀ r0`;
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
            n_targets: p.n_targets as f64,
            time: p.time,
            lambda,
            lambda_max,
            condition_number,
        })
    }

    /// `(train decay factor, test factor)` of one eigenvalue after `steps`.
    fn factors(&self, e: f64, steps: u64) -> (f64, f64) {
        let a = self.learning_rate / self.n_targets;
        let s = steps as f64;
        match self.time {
            TimeMode::Continuous => {
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
