//! Quadrature of Gaussian expectations `E[g(u) h(v)]`, `(u, v) ~ N(0, [[q, k], [k, q']])`,
//! for activations without a closed form.
//!
//! Write `u = √q·z1`, `v = √q'·(ρ z1 + √(1−ρ²) z2)` with independent standard normals. Both
//! integrals are done by **piecewise Gauss–Legendre** on `[−L, L]` (`L = 12`, Gaussian tail mass
//! below 1e-32), split where the integrand may have a kink: `z1 = 0` (where `u = 0`) for the outer
//! integral and `z2 = −ρ z1/√(1−ρ²)` (where `v = 0`) for the inner one. All activations here are
//! smooth except at 0, so every piece is smooth and convergence is exponential, kinked ReLU-type
//! activations included (plain Gauss–Hermite converges only algebraically for those).

use std::sync::{Mutex, OnceLock};

use crate::linalg;

/// Default number of Gauss–Legendre nodes per piece.
pub const DEFAULT_ORDER: usize = 48;

/// Half-width of the integration domain in standard-normal units.
const L: f64 = 12.0;

/// Gauss–Legendre nodes and weights on [−1, 1] (Golub–Welsch), cached per order.
#[derive(Debug, Clone)]
pub struct GaussLegendre {
    /// Nodes.
    pub nodes: Vec<f64>,
    /// Weights (sum to 2).
    pub weights: Vec<f64>,
}

/// `(√q, √q′, ρ, √(1 − ρ²))` of the covariance `[[q, k], [k, q′]]`: `(u, v)` is
/// `(√q·z1, √q′·(ρ·z1 + √(1 − ρ²)·z2))` for independent standard normals (ρ = 0 when a variance
/// is 0).
fn correlated(q: f64, qp: f64, k: f64) -> (f64, f64, f64, f64) {
    let sq = q.max(0.0).sqrt();
    let sqp = qp.max(0.0).sqrt();
    let rho = if sq * sqp > 0.0 {
        (k / (sq * sqp)).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let perp = (1.0 - rho * rho).max(0.0).sqrt();
    (sq, sqp, rho, perp)
}

impl GaussLegendre {
    /// The rule of the given order.
    pub fn new(order: usize) -> GaussLegendre {
        static CACHE: OnceLock<Mutex<Vec<(usize, GaussLegendre)>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, r)) = guard.iter().find(|(o, _)| *o == order) {
            return r.clone();
        }
        let rule = Self::compute(order);
        guard.push((order, rule.clone()));
        rule
    }

    fn compute(n: usize) -> GaussLegendre {
        assert!(n >= 1);
        let j = faer::Mat::from_fn(n, n, |a, b| {
            if a + 1 == b || b + 1 == a {
                let k = a.max(b) as f64;
                k / (4.0 * k * k - 1.0).sqrt()
            } else {
                0.0
            }
        });
        let (vals, vecs) = linalg::sym_eigen(j.as_ref()).expect("Jacobi matrix eigendecomposition");
        let mut pairs: Vec<(f64, f64)> = (0..n)
            .map(|i| (vals[i], 2.0 * vecs[(0, i)] * vecs[(0, i)]))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for i in 0..n / 2 {
            let x = 0.5 * (pairs[n - 1 - i].0 - pairs[i].0);
            let w = 0.5 * (pairs[n - 1 - i].1 + pairs[i].1);
            pairs[i] = (-x, w);
            pairs[n - 1 - i] = (x, w);
        }
        if n % 2 == 1 {
            pairs[n / 2].0 = 0.0;
        }
        GaussLegendre {
            nodes: pairs.iter().map(|p| p.0).collect(),
            weights: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// `∫_a^b f(z) φ(z) dz` (φ the standard normal density) with this rule on `[a, b]`.
    fn gauss_piece(&self, a: f64, b: f64, f: &mut impl FnMut(f64) -> f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        let mut s = 0.0;
        for (&x, &w) in self.nodes.iter().zip(&self.weights) {
            let z = mid + half * x;
            s += w * (-0.5 * z * z).exp() * f(z);
        }
        s * half / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// [`GaussLegendre::gauss_piece`] of two integrands at the same nodes (one Gaussian weight
    /// per node), each sum with the same arithmetic as alone.
    fn gauss_piece_pair(
        &self,
        a: f64,
        b: f64,
        f: &mut impl FnMut(f64) -> (f64, f64),
    ) -> (f64, f64) {
        if b <= a {
            return (0.0, 0.0);
        }
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        let (mut s1, mut s2) = (0.0, 0.0);
        for (&x, &w) in self.nodes.iter().zip(&self.weights) {
            let z = mid + half * x;
            let weight = w * (-0.5 * z * z).exp();
            let (f1, f2) = f(z);
            s1 += weight * f1;
            s2 += weight * f2;
        }
        let norm = (2.0 * std::f64::consts::PI).sqrt();
        (s1 * half / norm, s2 * half / norm)
    }

    /// [`GaussLegendre::expect1`] of two integrands at once.
    fn expect1_pair(&self, kink: f64, mut f: impl FnMut(f64) -> (f64, f64)) -> (f64, f64) {
        if kink > -L && kink < L {
            let (a1, a2) = self.gauss_piece_pair(-L, kink, &mut f);
            let (b1, b2) = self.gauss_piece_pair(kink, L, &mut f);
            (a1 + b1, a2 + b2)
        } else {
            self.gauss_piece_pair(-L, L, &mut f)
        }
    }

    /// `(E[g(u)·g(v)], E[g′(u)·g′(v)])` for `(u, v) ~ N(0, [[q, k], [k, q']])`, where
    /// `pair(x) = (g(x), g′(x))`: the two moments of an activation from one set of nodes, one
    /// Gaussian weight and one `pair` call per node. Bit for bit what two [`GaussLegendre::expect2`]
    /// calls give (the same nodes, the same sums), at about half the cost.
    pub fn expect2_pair(
        &self,
        q: f64,
        qp: f64,
        k: f64,
        pair: impl Fn(f64) -> (f64, f64),
    ) -> (f64, f64) {
        let (sq, sqp, rho, perp) = correlated(q, qp, k);
        // The loop below is scalar libm calls (legacy SSE); see `clear_avx_upper_state`.
        crate::linalg::clear_avx_upper_state();
        self.expect1_pair(0.0, |z1| {
            let (gu, gdu) = pair(sq * z1);
            if gu == 0.0 && gdu == 0.0 {
                return (0.0, 0.0);
            }
            let (inner, inner_d) = if perp == 0.0 {
                pair(sqp * rho * z1)
            } else {
                self.expect1_pair(-rho * z1 / perp, |z2| pair(sqp * (rho * z1 + perp * z2)))
            };
            (
                if gu == 0.0 { 0.0 } else { gu * inner },
                if gdu == 0.0 { 0.0 } else { gdu * inner_d },
            )
        })
    }

    /// `E[f(z)]`, `z ~ N(0,1)`, split at `kink`.
    fn expect1(&self, kink: f64, mut f: impl FnMut(f64) -> f64) -> f64 {
        if kink > -L && kink < L {
            self.gauss_piece(-L, kink, &mut f) + self.gauss_piece(kink, L, &mut f)
        } else {
            self.gauss_piece(-L, L, &mut f)
        }
    }

    /// `E[g(u)·h(v)]` for `(u, v) ~ N(0, [[q, k], [k, q']])`.
    pub fn expect2(
        &self,
        q: f64,
        qp: f64,
        k: f64,
        g: impl Fn(f64) -> f64,
        h: impl Fn(f64) -> f64,
    ) -> f64 {
        let (sq, sqp, rho, perp) = correlated(q, qp, k);
        // The loop below is scalar libm calls (legacy SSE); see `clear_avx_upper_state`.
        crate::linalg::clear_avx_upper_state();
        self.expect1(0.0, |z1| {
            let gu = g(sq * z1);
            if gu == 0.0 {
                return 0.0;
            }
            let inner = if perp == 0.0 {
                h(sqp * rho * z1)
            } else {
                self.expect1(-rho * z1 / perp, |z2| h(sqp * (rho * z1 + perp * z2)))
            };
            gu * inner
        })
    }
}

#[cfg(test)]
mod tests {
    use super::GaussLegendre;
    use crate::model::Activation;

    /// The paired quadrature is an optimisation only: the same bits as the two single ones.
    #[test]
    fn paired_moments_are_bit_for_bit_the_single_ones() {
        let acts = [
            Activation::Tanh,
            Activation::Softplus,
            Activation::Gelu,
            Activation::Erf,
            Activation::Sin,
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.1 },
        ];
        let args = [
            (1.0, 1.0, 0.5),
            (2.01, 1.3, -0.7),
            (0.01, 0.02, 0.005),
            (0.1, 0.1, 0.1),
            (0.0, 0.0, 0.0),
            (4.0, 3.0, 3.4),
            (1e-4, 2.0, 1e-3),
        ];
        for order in [8, 48] {
            let gl = GaussLegendre::new(order);
            for act in acts {
                for &(q, qp, k) in &args {
                    let e = gl.expect2(q, qp, k, |x| act.value(x), |x| act.value(x));
                    let d = gl.expect2(q, qp, k, |x| act.derivative(x), |x| act.derivative(x));
                    let (pe, pd) = gl.expect2_pair(q, qp, k, |x| act.value_and_derivative(x));
                    assert_eq!(
                        (e.to_bits(), d.to_bits()),
                        (pe.to_bits(), pd.to_bits()),
                        "{act:?} {q} {qp} {k}: ({e}, {d}) vs ({pe}, {pd})"
                    );
                }
            }
        }
    }
}
