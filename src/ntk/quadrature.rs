//! Gauss–Hermite quadrature for Gaussian expectations `E[g(u) h(v)]`,
//! `(u, v) ~ N(0, [[q, k], [k, q']])`.

use std::sync::{Mutex, OnceLock};

use crate::linalg;

/// Default quadrature order (nodes per dimension).
pub const DEFAULT_ORDER: usize = 96;

/// Nodes and weights of the probabilists' Gauss–Hermite rule: `E[g(z)] ≈ Σ w_i g(x_i)`,
/// `z ~ N(0, 1)`. Computed once per order by Golub–Welsch (eigenvalues of the Jacobi matrix).
#[derive(Debug, Clone)]
pub struct GaussHermite {
    /// Nodes.
    pub nodes: Vec<f64>,
    /// Weights (sum to 1).
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The rule of the given order (cached).
    pub fn new(order: usize) -> GaussHermite {
        static CACHE: OnceLock<Mutex<Vec<(usize, GaussHermite)>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, r)) = guard.iter().find(|(o, _)| *o == order) {
            return r.clone();
        }
        let rule = Self::compute(order);
        guard.push((order, rule.clone()));
        rule
    }

    fn compute(order: usize) -> GaussHermite {
        assert!(order >= 1);
        // Jacobi matrix of the monic probabilists' Hermite polynomials: off-diagonal √i.
        let j = faer::Mat::from_fn(order, order, |a, b| {
            if a + 1 == b || b + 1 == a {
                (a.max(b) as f64).sqrt()
            } else {
                0.0
            }
        });
        let (vals, vecs) = linalg::sym_eigen(j.as_ref()).expect("Jacobi matrix eigendecomposition");
        let mut pairs: Vec<(f64, f64)> = (0..order)
            .map(|i| (vals[i], vecs[(0, i)] * vecs[(0, i)]))
            .collect();
        // Symmetrise the rule exactly (nodes come in ± pairs).
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = order;
        for i in 0..n / 2 {
            let x = 0.5 * (pairs[n - 1 - i].0 - pairs[i].0);
            let w = 0.5 * (pairs[n - 1 - i].1 + pairs[i].1);
            pairs[i] = (-x, w);
            pairs[n - 1 - i] = (x, w);
        }
        if n % 2 == 1 {
            pairs[n / 2].0 = 0.0;
        }
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        GaussHermite {
            nodes: pairs.iter().map(|p| p.0).collect(),
            weights: pairs.iter().map(|p| p.1 / total).collect(),
        }
    }

    /// `E[g(u) h(v)]` for `(u, v) ~ N(0, [[q, k], [k, q']])`.
    pub fn expect2(&self, q: f64, qp: f64, k: f64, g: impl Fn(f64) -> f64, h: impl Fn(f64) -> f64) -> f64 {
        let sq = q.max(0.0).sqrt();
        let sqp = qp.max(0.0).sqrt();
        let rho = if sq * sqp > 0.0 {
            (k / (sq * sqp)).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let perp = (1.0 - rho * rho).max(0.0).sqrt();
        let mut total = 0.0;
        for (&xi, &wi) in self.nodes.iter().zip(&self.weights) {
            let gu = g(sq * xi);
            if gu == 0.0 {
                continue;
            }
            let mut inner = 0.0;
            for (&xj, &wj) in self.nodes.iter().zip(&self.weights) {
                inner += wj * h(sqp * (rho * xi + perp * xj));
            }
            total += wi * gu * inner;
        }
        total
    }
}
