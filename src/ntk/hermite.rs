//! Gaussian moments of activations without a closed form by Mehler's expansion: for standard
//! normals `z1, z2` with correlation ρ,
//! `E[f(z1)·g(z2)] = Σ_n ρⁿ·E[f·h_n]·E[g·h_n]`, with `h_n = He_n/√n!` the orthonormal
//! (probabilists') Hermite polynomials (Mehler 1866; O'Donnell, "Analysis of Boolean Functions",
//! §11.2). With `f(z) = φ(√q·z)` and `g(z) = φ(√q′·z)` the moment
//! `E[φ(u)φ(v)]`, `(u, v) ~ N(0, [[q, k], [k, q′]])`, is a sum over the two points' own
//! coefficient series and `ρ = k/√(q q′)`: each point's series is computed once per layer (one
//! 1-D quadrature), and a pair costs one dot product instead of a 2-D quadrature. The same holds
//! for `E[φ′(u)φ′(v)]` with the series of φ′.
//!
//! **Error bound.** With the series cut after N terms, the remainder is bounded by Cauchy–Schwarz:
//! `|Σ_{n>N} ρⁿ a_n b_n| ≤ |ρ|^{N+1}·√(T_a·T_b)`, where `T_a = E[f²] − Σ_{n≤N} a_n²` is the
//! series' own tail (Parseval), known from the same quadrature. A series is accepted only when
//! both of its tails (φ and φ′) are below [`TAIL_RTOL`] of `E[f²]` at [`TERMS`] terms, so every
//! moment from two accepted series is within `TAIL_RTOL·√(E[f_a²]·E[f_b²])` of the exact sum;
//! otherwise (a very large variance makes `φ(√q·z)` nearly a step, whose coefficients decay
//! slowly) the caller falls back to the 2-D quadrature.
//!
//! The coefficients are integrals of `φ(√q z)·h_n(z)` against the normal density by piecewise
//! Gauss–Legendre on `[−12, 12]` (panels of width 1/2, 24 nodes each; `h_n` by its three-term
//! recurrence, which is stable in this direction), in f64.

use crate::model::Activation;
use crate::ntk::quadrature::GaussLegendre;

/// Terms of every series (n = 0..TERMS−1; a multiple of 4).
pub const TERMS: usize = 640;
/// Largest accepted tail `T/E[f²]` of a series at [`TERMS`] terms.
pub const TAIL_RTOL: f64 = 1e-11;
/// Half-width of the coefficient integrals, in standard-normal units.
const HALF_WIDTH: f64 = 12.0;
/// Panels of the coefficient integrals.
const PANELS: usize = 48;
/// Gauss–Legendre nodes per panel.
const NODES_PER_PANEL: usize = 24;
/// Independent partial sums of the coefficient sums (half the node count is a multiple of it).
const LANES: usize = 8;

/// The Hermite coefficients of `φ(√q·z)` and `φ′(√q·z)` for one variance q.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    value: Vec<f64>,
    derivative: Vec<f64>,
    /// Terms after which both tails are below [`TAIL_RTOL`].
    len: usize,
    /// The variance q, and `(E[φ(√q z)²], E[φ′(√q z)²])` from the same quadrature (the
    /// moments of a point with itself, which need no series).
    q: f64,
    second_moments: (f64, f64),
}

/// Nodes and Gaussian weights `w_i·N(z_i)` of the coefficient integrals (computed once).
fn nodes() -> &'static (Vec<f64>, Vec<f64>) {
    static NODES: std::sync::OnceLock<(Vec<f64>, Vec<f64>)> = std::sync::OnceLock::new();
    NODES.get_or_init(|| {
        let gl = GaussLegendre::new(NODES_PER_PANEL);
        let width = 2.0 * HALF_WIDTH / PANELS as f64;
        let norm = (2.0 * std::f64::consts::PI).sqrt();
        let mut z = Vec::with_capacity(PANELS * NODES_PER_PANEL);
        let mut w = Vec::with_capacity(PANELS * NODES_PER_PANEL);
        for p in 0..PANELS {
            let mid = -HALF_WIDTH + (p as f64 + 0.5) * width;
            for (&x, &wx) in gl.nodes.iter().zip(&gl.weights) {
                let zi = mid + 0.5 * width * x;
                z.push(zi);
                w.push(wx * 0.5 * width * (-0.5 * zi * zi).exp() / norm);
            }
        }
        (z, w)
    })
}

impl Series {
    /// The series of `act` at variance `q`, or `None` when a tail is not below [`TAIL_RTOL`]
    /// at [`TERMS`] terms (or q is not finite and non-negative).
    pub fn new(act: Activation, q: f64) -> Option<Series> {
        if !(q.is_finite() && q >= 0.0) {
            return None;
        }
        // The nodes are symmetric about 0 and h_n(−z) = (−1)ⁿ·h_n(z): sum over z > 0 with
        // f(z) + f(−z) for even n and f(z) − f(−z) for odd n.
        let (z, w) = nodes();
        let s = q.sqrt();
        let (mut ev, mut ed) = (0.0, 0.0);
        let half = z.len() / 2;
        let (mut v_even, mut v_odd) = (vec![0.0; half], vec![0.0; half]);
        let (mut d_even, mut d_odd) = (vec![0.0; half], vec![0.0; half]);
        for i in 0..half {
            let (pos, neg) = (half + i, half - 1 - i);
            let (vp, dp) = act.value_and_derivative(s * z[pos]);
            let (vn, dn) = act.value_and_derivative(s * z[neg]);
            ev += w[pos] * vp * vp + w[neg] * vn * vn;
            ed += w[pos] * dp * dp + w[neg] * dn * dn;
            v_even[i] = w[pos] * (vp + vn);
            v_odd[i] = w[pos] * (vp - vn);
            d_even[i] = w[pos] * (dp + dn);
            d_odd[i] = w[pos] * (dp - dn);
        }
        let zp = &z[half..];
        // h_0 = 1, h_1 = z, h_{n+1} = (z·h_n − √n·h_{n−1})/√(n+1), all positive nodes at once;
        // the two sums of each term in LANES independent partial sums (a fixed order, so that
        // the compiler can vectorise them), added up at the end.
        let mut value = Vec::with_capacity(TERMS);
        let mut derivative = Vec::with_capacity(TERMS);
        let mut prev = vec![0.0; half];
        let mut cur = vec![1.0; half];
        for n in 0..TERMS {
            let (a, inv_b) = ((n as f64).sqrt(), 1.0 / ((n + 1) as f64).sqrt());
            let (fv, fd) = if n % 2 == 0 {
                (&v_even, &d_even)
            } else {
                (&v_odd, &d_odd)
            };
            let (mut sv, mut sd) = ([0.0; LANES], [0.0; LANES]);
            for ((((p, c), zc), vc), dc) in prev
                .chunks_exact_mut(LANES)
                .zip(cur.chunks_exact_mut(LANES))
                .zip(zp.chunks_exact(LANES))
                .zip(fv.chunks_exact(LANES))
                .zip(fd.chunks_exact(LANES))
            {
                for j in 0..LANES {
                    sv[j] += vc[j] * c[j];
                    sd[j] += dc[j] * c[j];
                    let next = (zc[j] * c[j] - a * p[j]) * inv_b;
                    p[j] = c[j];
                    c[j] = next;
                }
            }
            value.push(sv.iter().sum());
            derivative.push(sd.iter().sum());
        }
        let len = sufficient_terms(&value, ev).max(sufficient_terms(&derivative, ed));
        (len <= TERMS).then_some(Series {
            value,
            derivative,
            len,
            q,
            second_moments: (ev, ed),
        })
    }

    /// `(E[φ(u)φ(v)], E[φ′(u)φ′(v)])` for the points of the series `self` (variance q) and
    /// `other` (q′) at correlation `rho` (clamped to [−1, 1]); at ρ = 1 (to round-off) and
    /// q = q′, the same random variable, the second moments themselves.
    pub fn moments(&self, other: &Series, rho: f64) -> (f64, f64) {
        let rho = rho.clamp(-1.0, 1.0);
        if rho >= 1.0 - 4.0 * f64::EPSILON && self.q == other.q {
            // u = v (ρ = k/√(q·q) with k = q can round a few ulps below 1): E[φ(u)²] itself,
            // which the series would miss by its tail; at ρ = 1 − 4ε the exact moment differs
            // from it by about 4ε·E[φ′(u)²]·q.
            return self.second_moments;
        }
        // Both tails are below the tolerance after the longer of the two lengths (rounded up to
        // whole chunks: more terms only shorten the tail). Four interleaved chains of powers
        // and partial sums, so that the loop vectorises.
        let n = self.len.max(other.len).div_ceil(4) * 4;
        let r2 = rho * rho;
        let r4 = r2 * r2;
        let mut power = [1.0, rho, r2, r2 * rho];
        let (mut e, mut d) = ([0.0; 4], [0.0; 4]);
        for (((va, vb), da), db) in self.value[..n]
            .chunks_exact(4)
            .zip(other.value[..n].chunks_exact(4))
            .zip(self.derivative[..n].chunks_exact(4))
            .zip(other.derivative[..n].chunks_exact(4))
        {
            for j in 0..4 {
                e[j] += power[j] * va[j] * vb[j];
                d[j] += power[j] * da[j] * db[j];
                power[j] *= r4;
            }
        }
        ((e[0] + e[1]) + (e[2] + e[3]), (d[0] + d[1]) + (d[2] + d[3]))
    }
}

/// The smallest N with `E[f²] − Σ_{n<N} c_n² ≤ TAIL_RTOL·E[f²]`, or `TERMS + 1` when there is
/// none.
fn sufficient_terms(c: &[f64], e: f64) -> usize {
    if e == 0.0 {
        return 1;
    }
    let mut acc = 0.0;
    for (n, x) in c.iter().enumerate() {
        acc += x * x;
        if e - acc <= TAIL_RTOL * e {
            return n + 1;
        }
    }
    TERMS + 1
}

/// `ρ = k/√(q q′)` (0 when a variance is 0), as the 2-D quadrature takes it.
pub fn correlation(q: f64, qp: f64, k: f64) -> f64 {
    let s = q.max(0.0).sqrt() * qp.max(0.0).sqrt();
    if s > 0.0 {
        (k / s).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series against the 2-D piecewise Gauss–Legendre quadrature at a high order, on
    /// variances from 10⁻³ to 4 and correlations from −1 to 1 (including ±1 and 1 − 10⁻¹²):
    /// within 1e-11 of √(E[φ(u)²]·E[φ(v)²]).
    #[test]
    fn mehler_sums_equal_high_order_quadrature() {
        let gl = GaussLegendre::new(120);
        for act in [Activation::Tanh, Activation::Softplus] {
            for &(q, qp) in &[(1e-3, 1e-3), (0.5, 2.0), (1.0, 1.0), (3.0, 0.2), (4.0, 4.0)] {
                let (a, b) = (Series::new(act, q).unwrap(), Series::new(act, qp).unwrap());
                for &rho in &[-1.0, -0.7, 0.0, 0.3, 0.9, 0.999, 1.0 - 1e-12, 1.0] {
                    let k = rho * (q * qp).sqrt();
                    let (e, d) = a.moments(&b, correlation(q, qp, k));
                    let (re, rd) = gl.expect2_pair(q, qp, k, |x| act.value_and_derivative(x));
                    let se = (gl.expect2(q, q, q, |x| act.value(x), |x| act.value(x))
                        * gl.expect2(qp, qp, qp, |x| act.value(x), |x| act.value(x)))
                    .sqrt();
                    let sd = (gl.expect2(q, q, q, |x| act.derivative(x), |x| act.derivative(x))
                        * gl.expect2(qp, qp, qp, |x| act.derivative(x), |x| act.derivative(x)))
                    .sqrt();
                    assert!(
                        (e - re).abs() <= 1e-11 * se,
                        "{act:?} q={q} q'={qp} ρ={rho}: {e} vs {re}"
                    );
                    assert!(
                        (d - rd).abs() <= 1e-11 * sd,
                        "{act:?}′ q={q} q'={qp} ρ={rho}: {d} vs {rd}"
                    );
                }
            }
        }
    }

    /// Orthonormality of the discrete inner product the coefficients use: the series of
    /// φ(z) = z (identity at q = 1) is exactly (0, 1, 0, …), and E[φ(u)φ(v)] = k.
    #[test]
    fn the_identity_has_one_coefficient() {
        let s = Series::new(Activation::Identity, 1.0).unwrap();
        assert!((s.value[1] - 1.0).abs() < 1e-14);
        assert!(s
            .value
            .iter()
            .enumerate()
            .all(|(n, c)| n == 1 || c.abs() < 1e-14));
        assert_eq!(s.len, 2);
        let (e, d) = s.moments(&s, 0.37);
        assert!((e - 0.37).abs() < 1e-14 && (d - 1.0).abs() < 1e-14);
    }

    /// A variance so large that φ(√q·z) is nearly a step is refused (its tail does not fall
    /// below the tolerance), so the caller uses the quadrature.
    #[test]
    fn a_nearly_step_like_activation_is_refused() {
        assert!(Series::new(Activation::Tanh, 400.0).is_none());
        assert!(Series::new(Activation::Tanh, f64::NAN).is_none());
    }
}
