//! Matrix-free kernel regression: the solves of the kernel tracks without an `N × N`
//! eigendecomposition, for kernels too large to factor (Fashion-MNIST's 60,000 points).
//!
//! - [`nystrom`]: a low-rank Nyström approximation `F·Fᵀ ≈ Θ` by randomly pivoted Cholesky
//!   (Chen, Epperly, Tropp & Webber 2024) in blocks of pivots, and from it the Nyström
//!   preconditioner of Frangella, Tropp & Udell (2023) — the Falkon recipe (Meanti et al. 2020).
//! - [`cg`]: preconditioned conjugate gradients for `(Θ + λI)·α = b` (the `t = ∞` solution), with
//!   the Hestenes–Stiefel / Strakoš–Tichý estimate of the error in the energy norm.
//! - [`lanczos`]: Lanczos with full reorthogonalisation, and `f(Θ)·b ≈ ‖b‖·V_m·f(T_m)·e₁` for
//!   the time-`t` functions of gradient descent (continuous, discrete, heavy-ball), with the
//!   a-posteriori estimate `‖f_m − f_{m−d}‖` (Saad 1992).
//!
//! Both report their error in the units of the predictions: for a test point `x`,
//! `|Θ(x, X)·e| ≤ √Θ(x, x)·‖e‖_Θ` (Cauchy–Schwarz in the kernel's feature space), so an estimate
//! of the coefficient error in the energy norm bounds the error of every test prediction.

pub mod cg;
pub mod lanczos;
pub mod nystrom;

use faer::{Mat, MatRef};

use crate::store::KernelStore;
use crate::Result;

/// A symmetric positive semi-definite `n × n` matrix known through products, its diagonal and
/// its columns.
pub trait SymOperator: Sync {
    /// `n`.
    fn dim(&self) -> usize;
    /// `A·v` for `v` of `n` rows.
    fn apply(&self, v: MatRef<'_, f64>) -> Result<Mat<f64>>;
    /// The diagonal.
    fn diagonal(&self) -> Result<Vec<f64>>;
    /// The columns `idx`, `n × idx.len()`.
    fn columns(&self, idx: &[usize]) -> Result<Mat<f64>>;
}

impl SymOperator for KernelStore {
    fn dim(&self) -> usize {
        self.nrows()
    }
    fn apply(&self, v: MatRef<'_, f64>) -> Result<Mat<f64>> {
        KernelStore::apply(self, v)
    }
    fn diagonal(&self) -> Result<Vec<f64>> {
        KernelStore::diagonal(self)
    }
    fn columns(&self, idx: &[usize]) -> Result<Mat<f64>> {
        KernelStore::columns(self, idx)
    }
}

impl SymOperator for Mat<f64> {
    fn dim(&self) -> usize {
        self.nrows()
    }
    fn apply(&self, v: MatRef<'_, f64>) -> Result<Mat<f64>> {
        Ok(crate::linalg::matmul(self.as_ref(), v))
    }
    fn diagonal(&self) -> Result<Vec<f64>> {
        Ok((0..self.nrows()).map(|i| self[(i, i)]).collect())
    }
    fn columns(&self, idx: &[usize]) -> Result<Mat<f64>> {
        Ok(Mat::from_fn(self.nrows(), idx.len(), |i, p| {
            self[(i, idx[p])]
        }))
    }
}

/// How far an iterative solve goes and what it reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveSettings {
    /// Target for the estimated largest error of a prediction (output units).
    pub tolerance: f64,
    /// Most operator products.
    pub max_iterations: usize,
    /// Delay `d` of the error estimates (iterations between the two compared iterates).
    pub delay: usize,
    /// Rank of the Nyström preconditioner (0: none).
    pub preconditioner_rank: usize,
    /// Seed of the pivot draws.
    pub seed: u64,
}

/// What an iterative solve reports next to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct SolveReport {
    /// Operator products used.
    pub iterations: usize,
    /// Estimated largest error of a prediction it produces (output units).
    pub error_estimate: f64,
    /// Whether the estimate reached the tolerance (false: stopped at the iteration cap).
    pub converged: bool,
}
