//! One interface to the two ways of solving a kernel track: the exact eigendecomposition
//! ([`KernelPredictor`]) and the matrix-free Krylov solves ([`IterativePredictor`]).

use faer::Mat;

use super::iterative::{IterativePredictor, IterativeReport};
use super::kernel::KernelPredictor;
use crate::Result;

/// A kernel track's predictor.
pub enum Predictor {
    /// Dense train kernel, one symmetric eigendecomposition.
    Exact(Box<KernelPredictor>),
    /// Stored kernel, Lanczos and preconditioned CG.
    Iterative(Box<IterativePredictor>),
}

impl Predictor {
    /// Train and held-out predictions after `steps` steps.
    pub fn predict(&self, steps: u64) -> Result<(Mat<f64>, Option<Mat<f64>>)> {
        match self {
            Predictor::Exact(p) => Ok(p.predict(steps)),
            Predictor::Iterative(p) => p.predict(steps),
        }
    }

    /// The `t = ∞` solution.
    pub fn predict_infinite(&self) -> (Mat<f64>, Option<Mat<f64>>) {
        match self {
            Predictor::Exact(p) => p.predict_infinite(),
            Predictor::Iterative(p) => p.predict_infinite(),
        }
    }

    /// The regulariser λ actually added.
    pub fn lambda(&self) -> f64 {
        match self {
            Predictor::Exact(p) => p.lambda,
            Predictor::Iterative(p) => p.lambda,
        }
    }

    /// Largest eigenvalue of the regularised train kernel (iterative: the largest Ritz value).
    pub fn lambda_max(&self) -> f64 {
        match self {
            Predictor::Exact(p) => p.lambda_max,
            Predictor::Iterative(p) => p.lambda_max,
        }
    }

    /// `e_max/e_min` of the regularised train kernel (exact path only; the iterative path does
    /// not find the smallest eigenvalue).
    pub fn condition_number(&self) -> Option<f64> {
        match self {
            Predictor::Exact(p) => Some(p.condition_number),
            Predictor::Iterative(_) => None,
        }
    }

    /// What the iterative solves report (None on the exact path).
    pub fn solver_report(&self) -> Option<IterativeReport> {
        match self {
            Predictor::Exact(_) => None,
            Predictor::Iterative(p) => Some(p.report),
        }
    }

    /// Estimated largest error `(train, held-out)` of the predictions after `steps` steps
    /// (0 on the exact path).
    pub fn error_estimate(&self, steps: u64) -> (f64, f64) {
        match self {
            Predictor::Exact(_) => (0.0, 0.0),
            Predictor::Iterative(p) => p.error_estimate(steps),
        }
    }
}
