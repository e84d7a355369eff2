//! The linearized twin `f_lin(x) = f(x; θ0) + J(x; θ0)(θ − θ0)`, trained by the same SGD as the
//! network, computed exactly in function space.
//!
//! `θ − θ0` stays in the span of the training Jacobians, so `f_lin = f0 + Θ0(·, X_train)·β`.
//! A step on batch `B` with output gradient `g_B = ∂L/∂f` changes the parameters by
//! `−η·J_Bᵀ g_B` (plus momentum), hence the predictions by `−η·Θ0(·, B)·g_B`. Momentum is linear
//! and carries over as a function-space velocity `u = J·v`: `u ← μu + Θ0(·, B) g_B`,
//! `f ← f − η u`. Cost per step O(N_all · |B|) (times K² for a full multi-output kernel).

use faer::Mat;

use crate::dynamics::Loss;

/// Function-space state of the linearized model on train ∪ test.
#[derive(Debug, Clone)]
pub struct LinearizedTwin {
    /// Θ0(all, train) in "target rows" (see [`crate::dynamics::kernel`]): `rows_all × rows_train`.
    theta: Mat<f64>,
    /// Current predictions, `rows_all × c` (training rows first).
    f: Mat<f64>,
    /// Function-space velocity (momentum only).
    u: Option<Mat<f64>>,
    rows_per_point: usize,
    learning_rate: f64,
    momentum: f64,
    loss: Loss,
    /// Coefficients β with `θ − θ0 = Σ_r β_r ∇θ f_r` over the training target rows
    /// (`rows_train × c`), and their momentum velocity.
    beta: Mat<f64>,
    beta_velocity: Mat<f64>,
}

impl LinearizedTwin {
    /// `theta`: Θ0 between all points (train first) and the training points; `f0`: initial
    /// outputs on all points; `rows_per_point`: K for a full kernel, 1 for a per-output kernel.
    pub fn new(
        theta: Mat<f64>,
        f0: Mat<f64>,
        rows_per_point: usize,
        learning_rate: f64,
        momentum: f64,
    ) -> Self {
        assert_eq!(theta.nrows(), f0.nrows());
        let rows_train = theta.ncols();
        let c = f0.ncols();
        LinearizedTwin {
            theta,
            f: f0,
            u: None,
            rows_per_point,
            learning_rate,
            momentum,
            loss: Loss::Mse,
            beta: Mat::zeros(rows_train, c),
            beta_velocity: Mat::zeros(rows_train, c),
        }
    }

    /// Uses `loss` instead of the default half-MSE.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Current predictions on all points (`rows_all × c`).
    pub fn predictions(&self) -> &Mat<f64> {
        &self.f
    }

    /// One SGD step on batch points `batch` with targets `y` (`rows_train × c`).
    pub fn step(&mut self, batch: &[usize], y: &Mat<f64>) {
        let r = self.rows_per_point;
        let rows: Vec<usize> = batch.iter().flat_map(|&a| (a * r)..(a * r + r)).collect();
        let c = self.f.ncols();
        let fb: Vec<f64> = rows
            .iter()
            .flat_map(|&i| (0..c).map(move |j| (i, j)))
            .map(|(i, j)| self.f[(i, j)])
            .collect();
        let yb: Vec<f64> = rows
            .iter()
            .flat_map(|&i| (0..c).map(move |j| (i, j)))
            .map(|(i, j)| y[(i, j)])
            .collect();
        // fb, yb are |B| × K row-major in both layouts.
        let g = self.loss.output_gradient(&fb, &yb, r * c);
        let n_all = self.f.nrows();
        // w = Θ0(·, rows) · g, one product (the columns are a view for a full batch)
        let gm = Mat::from_fn(rows.len(), c, |bi, j| g[bi * c + j]);
        let contiguous = rows.iter().enumerate().all(|(i, &r)| r == rows[0] + i);
        let w = if contiguous {
            crate::linalg::matmul(self.theta.subcols(rows[0], rows.len()), gm.as_ref())
        } else {
            let cols = Mat::from_fn(n_all, rows.len(), |i, b| self.theta[(i, rows[b])]);
            crate::linalg::matmul(cols.as_ref(), gm.as_ref())
        };
        let update = if self.momentum > 0.0 {
            let u = match self.u.take() {
                None => w,
                Some(mut u) => {
                    for j in 0..c {
                        for i in 0..n_all {
                            u[(i, j)] = self.momentum * u[(i, j)] + w[(i, j)];
                        }
                    }
                    u
                }
            };
            self.u = Some(u.clone());
            u
        } else {
            w
        };
        for j in 0..c {
            for i in 0..n_all {
                self.f[(i, j)] -= self.learning_rate * update[(i, j)];
            }
        }
        // The same step on the coefficients: vβ ← μ vβ + g_B, β ← β − η vβ (O(N) per step).
        for j in 0..c {
            for i in 0..self.beta.nrows() {
                self.beta_velocity[(i, j)] *= self.momentum;
            }
        }
        for (bi, &row) in rows.iter().enumerate() {
            for j in 0..c {
                self.beta_velocity[(row, j)] += g[bi * c + j];
            }
        }
        for j in 0..c {
            for i in 0..self.beta.nrows() {
                self.beta[(i, j)] -= self.learning_rate * self.beta_velocity[(i, j)];
            }
        }
    }

    /// Coefficients β (`rows_train × c`): `θ_lin − θ0 = Σ_r β_r ∇θ f_r(θ0)` when the kernel is the
    /// full `J Jᵀ` (or K = 1).
    pub fn coefficients(&self) -> &Mat<f64> {
        &self.beta
    }
}
