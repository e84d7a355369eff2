//! The infinite-width Gaussian process of an ensemble of networks trained by gradient descent
//! on the half-MSE, over random initialisations (Lee et al. 2019;
//! neural-tangents 0.6.5 `predict.gradient_descent_mse_ensemble`). It takes **matrices**.
//!
//! At initialisation the outputs are `f0 ~ GP(0, 𝒦)` (𝒦 the NNGP kernel), independently per
//! output, and the trained function is linear in `f0`:
//! `f_s(x) = f0(x) + B_s (f0(X) − Y)` with `B_s = Θ_td V diag(T_s) Vᵀ` on test points and
//! `f_s(X) = Y + V diag(d_s) Vᵀ (f0(X) − Y)` on training points, where `Θ_r = Θ + λI = V diag(e) Vᵀ`
//! and `(d_s, T_s)` are the per-mode factors of [`KernelPredictor`] (discrete, continuous, heavy
//! ball; `T = −1/e`, `d = 0` at t = ∞). Hence, per output,
//! - mean: test `−B_s Y`, train `Y − A_s Y` with `A_s = V diag(d_s) Vᵀ`;
//! - covariance: test `𝒦_tt + B_s 𝒦_dt + 𝒦_td B_sᵀ + B_s S B_sᵀ`, train `A_s S A_s`.
//!
//! `get = ntk` (every layer trained) uses `Θ` = the NTK and the sandwich `S = 𝒦_dd`;
//! `get = nngp` (readout only, whose t = ∞ limit is the Bayesian posterior) uses `Θ = 𝒦` and
//! `S = 𝒦_dd + λI`. Both are neural-tangents' formulas exactly: its NTK covariance
//! regularises only the kernel that is inverted, and its NNGP covariance
//! `𝒦_tt − 𝒦_td 𝒦_r⁻¹(I − E²) 𝒦_dt` equals the form above with `S = 𝒦_r`. At t = ∞ the
//! training points have mean `Y` and covariance 0, as in neural-tangents. Its continuous time
//! `t` is this project's step count: `τ = η·t` and the exponent is `τΘ/(N·K)`.
//!
//! With K outputs the kernels act per output (`Θ ⊗ I_K`): the mean is `n × K` and the covariance
//! is one matrix, identical for every output (outputs are independent).

use faer::Mat;

use super::kernel::{DiagReg, KernelPredictor, PredictorInputs, TimeMode};
use crate::linalg;
use crate::Result;

/// Which kernel the trained layers define (neural-tangents' `get`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GpKernel {
    /// Every layer trained: the NTK drives the dynamics.
    Ntk,
    /// Only the readout trained: the NNGP kernel drives the dynamics.
    Nngp,
}

impl GpKernel {
    /// Name in file and column names (`ntk_gp`, `nngp_gp`).
    pub fn name(self) -> &'static str {
        match self {
            GpKernel::Ntk => "ntk",
            GpKernel::Nngp => "nngp",
        }
    }
}

/// Kernels and training settings of an ensemble GP.
#[derive(Debug, Clone, Copy)]
pub struct GpInputs<'a> {
    /// Analytic NTK, train × train (`n × n`, per output).
    pub ntk_train: &'a Mat<f64>,
    /// Analytic NTK, test × train (`m × n`).
    pub ntk_test_train: &'a Mat<f64>,
    /// NNGP, train × train.
    pub nngp_train: &'a Mat<f64>,
    /// NNGP, test × train.
    pub nngp_test_train: &'a Mat<f64>,
    /// NNGP, test × test (`m × m`).
    pub nngp_test: &'a Mat<f64>,
    /// Training targets, `n × K`.
    pub y_train: &'a Mat<f64>,
    /// |Y| = N·K.
    pub n_targets: usize,
    /// η.
    pub learning_rate: f64,
    /// Heavy-ball momentum.
    pub momentum: f64,
    /// Time mode.
    pub time: TimeMode,
    /// Regulariser of the inverted kernel.
    pub diag_reg: DiagReg,
}

/// Mean and covariance of the outputs on a set of points.
#[derive(Debug, Clone)]
pub struct GaussianOutputs {
    /// Mean, `n × K`.
    pub mean: Mat<f64>,
    /// Covariance, `n × n` (the same for every output).
    pub cov: Mat<f64>,
}

impl GaussianOutputs {
    /// The variance of each point (the covariance's diagonal).
    pub fn variance(&self) -> Vec<f64> {
        (0..self.cov.nrows()).map(|i| self.cov[(i, i)]).collect()
    }
}

/// The GP of one `get`, with the eigendecomposition done once.
#[derive(Debug, Clone)]
pub struct EnsembleGp {
    get: GpKernel,
    predictor: KernelPredictor,
    y: Mat<f64>,
    sandwich: Mat<f64>,
    cross: Mat<f64>,
    prior_test: Mat<f64>,
}

impl EnsembleGp {
    /// Prepares the GP of `get` (one eigendecomposition of the regularised train kernel).
    pub fn new(get: GpKernel, p: GpInputs<'_>) -> Result<Self> {
        let (theta, theta_td) = match get {
            GpKernel::Ntk => (p.ntk_train, p.ntk_test_train),
            GpKernel::Nngp => (p.nngp_train, p.nngp_test_train),
        };
        let n = theta.nrows();
        let zeros = Mat::<f64>::zeros(n, p.y_train.ncols());
        let predictor = KernelPredictor::new(PredictorInputs {
            theta_train: theta,
            theta_test_train: Some(theta_td),
            f0_train: &zeros,
            f0_test: None,
            y_train: p.y_train,
            n_targets: p.n_targets,
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            time: p.time,
            diag_reg: p.diag_reg,
        })?;
        let mut sandwich = linalg::symmetrize(p.nngp_train.as_ref());
        if get == GpKernel::Nngp {
            for i in 0..n {
                sandwich[(i, i)] += predictor.lambda;
            }
        }
        Ok(EnsembleGp {
            get,
            predictor,
            y: p.y_train.clone(),
            sandwich,
            cross: p.nngp_test_train.clone(),
            prior_test: linalg::symmetrize(p.nngp_test.as_ref()),
        })
    }

    /// Which kernel drives the dynamics.
    pub fn get(&self) -> GpKernel {
        self.get
    }

    /// `V diag(c) Vᵀ`.
    fn in_modes(&self, c: impl Fn(usize) -> f64) -> Mat<f64> {
        let (vals, v) = self.predictor.eigen();
        let scaled = Mat::from_fn(v.nrows(), vals.len(), |i, j| v[(i, j)] * c(j));
        linalg::gram(scaled.as_ref(), v.as_ref())
    }

    /// The outputs on the training and the test points after `steps` steps (`None`: t = ∞).
    pub fn at(&self, steps: Option<u64>) -> (GaussianOutputs, GaussianOutputs) {
        let facs = self.predictor.mode_factors(steps);
        let n = self.y.nrows();
        let train = match steps {
            None => GaussianOutputs {
                mean: self.y.clone(),
                cov: Mat::zeros(n, n),
            },
            Some(_) => {
                let a = self.in_modes(|j| facs[j].0);
                let mean = &self.y - linalg::matmul(a.as_ref(), self.y.as_ref());
                let sa = linalg::matmul(self.sandwich.as_ref(), a.as_ref());
                let cov = linalg::symmetrize(linalg::matmul(a.as_ref(), sa.as_ref()).as_ref());
                GaussianOutputs { mean, cov }
            }
        };
        (train, self.test_outputs(&facs))
    }

    /// The test outputs for the given mode factors.
    fn test_outputs(&self, facs: &[(f64, f64)]) -> GaussianOutputs {
        let (_, v) = self.predictor.eigen();
        let m = self.prior_test.nrows();
        let Some(tv) = self.predictor.test_modes() else {
            return GaussianOutputs {
                mean: Mat::zeros(0, self.y.ncols()),
                cov: Mat::zeros(0, 0),
            };
        };
        // B = Θ_td V diag(T) Vᵀ.
        let scaled = Mat::from_fn(m, facs.len(), |i, j| tv[(i, j)] * facs[j].1);
        let b = linalg::gram(scaled.as_ref(), v.as_ref());
        let by = linalg::matmul(b.as_ref(), self.y.as_ref());
        let mean = Mat::from_fn(by.nrows(), by.ncols(), |i, j| -by[(i, j)]);
        let b_cross = linalg::gram(b.as_ref(), self.cross.as_ref());
        let b_s = linalg::matmul(b.as_ref(), self.sandwich.as_ref());
        let b_s_b = linalg::gram(b_s.as_ref(), b.as_ref());
        let cov = Mat::from_fn(m, m, |i, j| {
            self.prior_test[(i, j)] + b_cross[(i, j)] + b_cross[(j, i)] + b_s_b[(i, j)]
        });
        GaussianOutputs {
            mean,
            cov: linalg::symmetrize(cov.as_ref()),
        }
    }
}
