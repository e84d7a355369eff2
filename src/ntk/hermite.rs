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
//! **Stored length.** The MLP's series keep all [`TERMS`] terms. The conv nets' and stacks'
//! series (one per input, position and layer: thousands) keep 1.5× the terms they need
//! ([`Series::adaptive`]). A pair sums the longer needed length where both store it; where one
//! stores fewer, N terms, the sum stops at N only if `|ρ|^N·√(T_a(N)·T_b(N))` is below the same
//! tolerance for φ and φ′ (tails stored per chunk), else the caller takes the quadrature. Every
//! moment keeps the bound above, and an entry depends only on its own two inputs' series.
//!
//! The coefficients are integrals of `φ(√q z)·h_n(z)` against the normal density by piecewise
//! Gauss–Legendre on `[−12, 12]` (panels of width 1/2, 24 nodes each; `h_n` by its three-term
//! recurrence, which is stable in this direction), in f64.

use crate::model::Activation;
use crate::ntk::quadrature::GaussLegendre;

/// Terms of every series (n = 0..TERMS−1; a multiple of the chunk of 8 terms).
pub const TERMS: usize = 640;
/// Most terms of an adaptive series on the fine rule (a multiple of the chunk of 8 terms).
pub const LONG_TERMS: usize = 1600;
/// Series are stored and summed in whole chunks of this many terms (a power of 2).
const CHUNK: usize = 8;
/// The terms an adaptive series stores when it needs `needed`: 1.5× as many. Paired with a
/// longer series at a correlation near 1, the sum then usually still stops within the stored
/// terms with its remainder bounded (on 200 digits' conv kernel, 246 of 2.5 M position pairs
/// fell back to the quadrature, against 59,175 storing only the needed terms, and the kernel
/// took 1.7 s instead of 4.8 s; storing 2× took 1.9 s).
fn terms_to_store(needed: usize) -> usize {
    needed + needed / 2
}
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
    /// The Parseval tails `(T_φ, T_φ′)` after each whole chunk of stored terms:
    /// `tails[c] = E[f²] − Σ_{n < (c+1)·CHUNK} c_n²`.
    tails: Vec<(f64, f64)>,
    /// Terms after which both tails are below [`TAIL_RTOL`].
    len: usize,
    /// The variance q, and `(E[φ(√q z)²], E[φ′(√q z)²])` from the same quadrature (the
    /// moments of a point with itself, which need no series).
    q: f64,
    second_moments: (f64, f64),
}

/// The node set of the coefficient integrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// [`PANELS`] panels, series of up to [`TERMS`] terms.
    Standard,
    /// Twice the panels, series of up to [`LONG_TERMS`] terms (h_n oscillates faster).
    Fine,
}

impl Rule {
    fn max_terms(self) -> usize {
        match self {
            Rule::Standard => TERMS,
            Rule::Fine => LONG_TERMS,
        }
    }
}

/// Nodes and Gaussian weights `w_i·N(z_i)` of the coefficient integrals (computed once).
fn nodes(rule: Rule) -> &'static (Vec<f64>, Vec<f64>) {
    static STANDARD: std::sync::OnceLock<(Vec<f64>, Vec<f64>)> = std::sync::OnceLock::new();
    static FINE: std::sync::OnceLock<(Vec<f64>, Vec<f64>)> = std::sync::OnceLock::new();
    match rule {
        Rule::Standard => STANDARD.get_or_init(|| panel_nodes(PANELS)),
        Rule::Fine => FINE.get_or_init(|| panel_nodes(2 * PANELS)),
    }
}

/// `panels` Gauss–Legendre panels of [`NODES_PER_PANEL`] nodes on `[−HALF_WIDTH, HALF_WIDTH]`.
fn panel_nodes(panels: usize) -> (Vec<f64>, Vec<f64>) {
    let gl = GaussLegendre::new(NODES_PER_PANEL);
    let width = 2.0 * HALF_WIDTH / panels as f64;
    let norm = (2.0 * std::f64::consts::PI).sqrt();
    let mut z = Vec::with_capacity(panels * NODES_PER_PANEL);
    let mut w = Vec::with_capacity(panels * NODES_PER_PANEL);
    for p in 0..panels {
        let mid = -HALF_WIDTH + (p as f64 + 0.5) * width;
        for (&x, &wx) in gl.nodes.iter().zip(&gl.weights) {
            let zi = mid + 0.5 * width * x;
            z.push(zi);
            w.push(wx * 0.5 * width * (-0.5 * zi * zi).exp() / norm);
        }
    }
    (z, w)
}

impl Series {
    /// The series of `act` at variance `q` with all [`TERMS`] terms, or `None` when a tail is
    /// not below [`TAIL_RTOL`] at [`TERMS`] terms (or q is not finite and non-negative).
    pub fn new(act: Activation, q: f64) -> Option<Series> {
        Series::with_terms(act, q, TERMS, Rule::Standard)
    }

    /// The series of `act` at variance `q` with 1.5× the terms it needs (rounded up to whole
    /// chunks of 8, at most [`TERMS`]); paired with a longer
    /// series, [`Series::moments`] sums the shorter one's terms where their bound allows it.
    /// A variance whose series needs more than [`TERMS`] terms (tanh from q ≈ 7) gets up to
    /// [`LONG_TERMS`] on a rule of twice the nodes.
    pub fn adaptive(act: Activation, q: f64) -> Option<Series> {
        Series::with_terms(act, q, 0, Rule::Standard)
            .or_else(|| Series::with_terms(act, q, 0, Rule::Fine))
    }

    /// Terms stored.
    fn stored(&self) -> usize {
        self.value.len()
    }

    /// The series with its terms up to at least `min_terms` (and 1.5× its own length), rounded
    /// up to whole chunks of [`CHUNK`] and at most [`TERMS`]; `None` as for [`Series::new`].
    fn with_terms(act: Activation, q: f64, min_terms: usize, rule: Rule) -> Option<Series> {
        if !(q.is_finite() && q >= 0.0) {
            return None;
        }
        // The nodes are symmetric about 0 and h_n(−z) = (−1)ⁿ·h_n(z): sum over z > 0 with
        // f(z) + f(−z) for even n and f(z) − f(−z) for odd n.
        let (z, w) = nodes(rule);
        let max_terms = rule.max_terms();
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
        let mut value = Vec::with_capacity(max_terms);
        let mut derivative = Vec::with_capacity(max_terms);
        let mut prev = vec![0.0; half];
        let mut cur = vec![1.0; half];
        let (mut tail_v, mut tail_d) = (Tail::new(ev), Tail::new(ed));
        let mut tails = Vec::with_capacity(max_terms / CHUNK);
        for n in 0..max_terms {
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
            let (cv, cd): (f64, f64) = (sv.iter().sum(), sd.iter().sum());
            value.push(cv);
            derivative.push(cd);
            tail_v.add(n, cv);
            tail_d.add(n, cd);
            if (n + 1) % CHUNK == 0 {
                tails.push((tail_v.tail(), tail_d.tail()));
            }
            if let (Some(lv), Some(ld)) = (tail_v.len, tail_d.len) {
                if (n + 1) % CHUNK == 0 && n + 1 >= terms_to_store(lv.max(ld)).max(min_terms) {
                    break;
                }
            }
        }
        let len = tail_v.len?.max(tail_d.len?);
        Some(Series {
            value,
            derivative,
            tails,
            len,
            q,
            second_moments: (ev, ed),
        })
    }

    /// `(E[φ(u)φ(v)], E[φ′(u)φ′(v)])` for the points of the series `self` (variance q) and
    /// `other` (q′) at correlation `rho` (clamped to [−1, 1]); at ρ = 1 (to round-off) and
    /// q = q′, the same random variable, the second moments themselves. `None` when the terms
    /// stored do not bound the remainder below the tolerance (a short series paired with a
    /// longer one at |ρ| near 1): the caller then takes the quadrature.
    pub fn moments(&self, other: &Series, rho: f64) -> Option<(f64, f64)> {
        let rho = rho.clamp(-1.0, 1.0);
        if rho >= 1.0 - 4.0 * f64::EPSILON && self.q == other.q {
            // u = v (ρ = k/√(q·q) with k = q can round a few ulps below 1): E[φ(u)²] itself,
            // which the series would miss by its tail; at ρ = 1 − 4ε the exact moment differs
            // from it by about 4ε·E[φ′(u)²]·q.
            return Some(self.second_moments);
        }
        // Both tails are below the tolerance after the longer of the two lengths (rounded up to
        // whole chunks: more terms only shorten the tail). Where one series stores fewer terms,
        // the sum stops there when its remainder bound |ρ|^N·√(T_a(N)·T_b(N)) is below the
        // tolerance, relative to √(E_a·E_b), for both φ and φ′.
        let full = self.len.max(other.len).div_ceil(CHUNK) * CHUNK;
        let n = full.min(self.stored()).min(other.stored());
        if n < full {
            let (ta, tb) = (self.tails[n / CHUNK - 1], other.tails[n / CHUNK - 1]);
            let (ea, eb) = (self.second_moments, other.second_moments);
            let decay = rho.abs().powi(n as i32);
            let within = |t: f64, u: f64, e: f64, f: f64| {
                decay * (t.max(0.0) * u.max(0.0)).sqrt() <= TAIL_RTOL * (e * f).sqrt()
            };
            if !(within(ta.0, tb.0, ea.0, eb.0) && within(ta.1, tb.1, ea.1, eb.1)) {
                return None;
            }
        }
        let mut power = [1.0; CHUNK];
        for j in 1..CHUNK {
            power[j] = power[j - 1] * rho;
        }
        let step = power[CHUNK - 1] * rho;
        let (mut e, mut d) = ([0.0; CHUNK], [0.0; CHUNK]);
        for (((va, vb), da), db) in self.value[..n]
            .chunks_exact(CHUNK)
            .zip(other.value[..n].chunks_exact(CHUNK))
            .zip(self.derivative[..n].chunks_exact(CHUNK))
            .zip(other.derivative[..n].chunks_exact(CHUNK))
        {
            for j in 0..CHUNK {
                e[j] += power[j] * va[j] * vb[j];
                d[j] += power[j] * da[j] * db[j];
                power[j] *= step;
            }
        }
        Some((pairwise_sum(&e), pairwise_sum(&d)))
    }
}

/// `Σ x` of a chunk's partial sums, added pairwise in a fixed order.
fn pairwise_sum(x: &[f64; CHUNK]) -> f64 {
    let mut s = *x;
    let mut width = CHUNK;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            s[j] += s[j + width];
        }
    }
    s[0]
}

/// The running Parseval tail `E[f²] − Σ_{n<N} c_n²` of a series: `len` is the smallest N with
/// the tail at most `TAIL_RTOL·E[f²]` (1 when `E[f²] = 0`), once reached.
struct Tail {
    second_moment: f64,
    sum_of_squares: f64,
    len: Option<usize>,
}

impl Tail {
    fn new(second_moment: f64) -> Tail {
        Tail {
            second_moment,
            sum_of_squares: 0.0,
            len: None,
        }
    }

    /// Takes coefficient `n`.
    fn add(&mut self, n: usize, c: f64) {
        let e = self.second_moment;
        self.sum_of_squares += c * c;
        if self.len.is_none() && (e == 0.0 || e - self.sum_of_squares <= TAIL_RTOL * e) {
            self.len = Some(n + 1);
        }
    }

    /// The tail after the coefficients taken so far (at least 0).
    fn tail(&self) -> f64 {
        (self.second_moment - self.sum_of_squares).max(0.0)
    }
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
                    let (e, d) = a.moments(&b, correlation(q, qp, k)).unwrap();
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

    /// Adaptive series of different lengths paired: where the sum stops at the shorter one's
    /// stored terms it is within 1e-11 of √(E[φ(u)²]·E[φ(v)²]) of the full series' sum, and
    /// at correlations near 1, where the shorter one's terms cannot bound the remainder, it
    /// refuses (the caller takes the quadrature) instead of returning a truncated sum; at
    /// |ρ| ≤ 1/2 it never refuses.
    #[test]
    fn short_and_long_adaptive_series_pair_within_the_bound_or_refuse() {
        for act in [Activation::Tanh, Activation::Softplus] {
            let (q, qp) = (0.05, 5.0);
            let (a, b) = (
                Series::adaptive(act, q).unwrap(),
                Series::adaptive(act, qp).unwrap(),
            );
            let (fa, fb) = (Series::new(act, q).unwrap(), Series::new(act, qp).unwrap());
            assert!(
                a.stored() < b.len,
                "{act:?}: the short series stores {}",
                a.stored()
            );
            let mut refused = 0;
            for &rho in &[-0.999, -0.5, 0.0, 0.5, 0.9, 0.99, 0.999_999] {
                let want = fa.moments(&fb, rho).unwrap();
                let (se, sd) = (
                    (fa.second_moments.0 * fb.second_moments.0).sqrt(),
                    (fa.second_moments.1 * fb.second_moments.1).sqrt(),
                );
                match a.moments(&b, rho) {
                    Some((e, d)) => {
                        assert!((e - want.0).abs() <= 1e-11 * se, "{act:?} ρ={rho}");
                        assert!((d - want.1).abs() <= 1e-11 * sd, "{act:?}′ ρ={rho}");
                        assert_eq!(b.moments(&a, rho), Some((e, d)), "symmetric");
                    }
                    None => {
                        assert!(rho.abs() > 0.5, "{act:?}: refused at ρ={rho}");
                        refused += 1;
                    }
                }
            }
            assert!(refused < 7, "{act:?}: every correlation refused");
        }
    }

    /// Variances beyond the standard rule's reach (tanh from q ≈ 7) get long series on the fine
    /// rule: against the 2-D quadrature at orders 200 and 280 (which agree with each other to
    /// the stated bound), within 1e-10 of √(E[φ(u)²]·E[φ(v)²]); a variance beyond the fine
    /// rule too is still refused.
    #[test]
    fn long_series_on_the_fine_rule_equal_high_order_quadrature() {
        let (g1, g2) = (GaussLegendre::new(200), GaussLegendre::new(280));
        let act = Activation::Tanh;
        for &(q, qp) in &[(10.0, 10.0), (16.0, 2.0), (15.0, 12.0)] {
            let (a, b) = (
                Series::adaptive(act, q).unwrap(),
                Series::adaptive(act, qp).unwrap(),
            );
            assert!(
                Series::new(act, q).is_none(),
                "q={q} is within the standard rule"
            );
            let sq = |g: &GaussLegendre, v: f64| {
                g.expect2_pair(v, v, v, |x| act.value_and_derivative(x))
            };
            let (ma, mb) = (sq(&g2, q), sq(&g2, qp));
            let (se, sd) = ((ma.0 * mb.0).sqrt(), (ma.1 * mb.1).sqrt());
            for &rho in &[-0.9, 0.0, 0.5, 0.95, 0.999] {
                let k = rho * (q * qp).sqrt();
                let r1 = g1.expect2_pair(q.min(qp), q.max(qp), k, |x| act.value_and_derivative(x));
                let r2 = g2.expect2_pair(q.min(qp), q.max(qp), k, |x| act.value_and_derivative(x));
                // The reference's own accuracy: its two orders agree to 1e-12.
                assert!((r1.0 - r2.0).abs() <= 1e-12 * se && (r1.1 - r2.1).abs() <= 1e-12 * sd);
                let Some((e, d)) = a.moments(&b, correlation(q, qp, k)) else {
                    continue;
                };
                assert!(
                    (e - r2.0).abs() <= 1e-10 * se,
                    "q={q} q'={qp} ρ={rho}: {e} vs {}",
                    r2.0
                );
                assert!(
                    (d - r2.1).abs() <= 1e-10 * sd,
                    "q={q} q'={qp} ρ={rho}: {d} vs {}",
                    r2.1
                );
            }
        }
        assert!(Series::adaptive(act, 20.0).is_none());
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
        let (e, d) = s.moments(&s, 0.37).unwrap();
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
