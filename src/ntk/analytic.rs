//! Analytic infinite-width NNGP and NTK of the MLP, exactly as neural-tangents 0.6.5 computes
//! them (`docs/conventions.md`): input kernel `x·x'/d`, the dense-layer updates of the chosen
//! parametrization, and per-activation Gaussian moments, closed form where one exists and
//! piecewise Gauss–Legendre quadrature otherwise. Everything in f64; `q` is always taken from the same
//! arithmetic as the diagonal of `K`, and `qq' − K²` is clamped at 0.

use std::f64::consts::PI;

use faer::Mat;
use rayon::prelude::*;

use crate::model::{Activation, NetworkConfig, Parametrization};
use crate::ntk::hermite::{self, Series};
use crate::ntk::quadrature::GaussLegendre;

/// How Gaussian moments of the activation are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentMethod {
    /// Closed form where one exists, quadrature of the given order otherwise.
    Auto(usize),
    /// Always quadrature of the given order (for testing closed forms).
    Quadrature(usize),
}

/// The analytic kernels of a network description: its architecture (the same [`NetworkConfig`]
/// the burn network is built from; precision and backend play no part) and how Gaussian
/// moments are evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticConfig {
    /// The network (`model.width` enters only the `standard` NTK).
    pub arch: NetworkConfig,
    /// Moment evaluation.
    pub method: MomentMethod,
}

impl AnalyticConfig {
    /// The kernels of `arch` with moments in closed form where one exists and quadrature of
    /// `quadrature_order` nodes per piece otherwise.
    pub fn new(arch: &NetworkConfig, quadrature_order: usize) -> Self {
        AnalyticConfig {
            arch: arch.clone(),
            method: MomentMethod::Auto(quadrature_order),
        }
    }
}

/// Per-output-unit analytic kernels between two input sets.
#[derive(Debug, Clone)]
pub struct AnalyticKernels {
    /// NNGP `K(x1_i, x2_j)`, `n1 × n2`.
    pub nngp: Mat<f64>,
    /// NTK `Θ(x1_i, x2_j)`, `n1 × n2`.
    pub ntk: Mat<f64>,
}

/// `(E[φ(u)φ(v)], E[φ'(u)φ'(v)])` for `(u, v) ~ N(0, [[q, k], [k, q']])`.
pub fn gaussian_moments(
    act: Activation,
    q: f64,
    qp: f64,
    k: f64,
    method: MomentMethod,
) -> (f64, f64) {
    if let MomentMethod::Auto(_) = method {
        if let Some(m) = closed_form(act, q, qp, k) {
            return m;
        }
    }
    let order = match method {
        MomentMethod::Auto(o) | MomentMethod::Quadrature(o) => o,
    };
    // E[φ(u)φ(v)] is symmetric in (q, q'): order the arguments so both orders give the same bits.
    let (q, qp) = if q <= qp { (q, qp) } else { (qp, q) };
    let gl = GaussLegendre::new(order);
    gl.expect2_pair(q, qp, k, |x| act.value_and_derivative(x))
}

fn ab_relu(a: f64, b: f64, q: f64, qp: f64, k: f64) -> (f64, f64) {
    let s = (q * qp - k * k).max(0.0).sqrt();
    let theta = if s == 0.0 && k == 0.0 {
        PI / 2.0
    } else {
        s.atan2(k)
    };
    let f = (a - b) * (a - b) / (2.0 * PI);
    let kdot = (a * a + b * b) / 2.0 - f * theta;
    (f * s + kdot * k, kdot)
}

/// Closed-form moments (neural-tangents' formulas), `None` where there is none.
pub fn closed_form(act: Activation, q: f64, qp: f64, k: f64) -> Option<(f64, f64)> {
    Some(match act {
        Activation::Relu => ab_relu(0.0, 1.0, q, qp, k),
        Activation::LeakyRelu { alpha } => ab_relu(alpha, 1.0, q, qp, k),
        Activation::Abs => ab_relu(-1.0, 1.0, q, qp, k),
        Activation::Identity => (k, 1.0),
        Activation::Erf => {
            let p = (1.0 + 2.0 * q) * (1.0 + 2.0 * qp);
            let r = (p - 4.0 * k * k).max(0.0).sqrt();
            let e = 2.0 / PI * (2.0 * k).atan2(r);
            (e, 4.0 / PI / r)
        }
        Activation::Sin | Activation::Cos => {
            let s = q + qp;
            let ep = (-s / 2.0 + k).exp();
            let em = (-s / 2.0 - k).exp();
            // cos 2c = 1 for sin (c = 0), −1 for cos (c = π/2).
            let cos2c = if act == Activation::Sin { 1.0 } else { -1.0 };
            (0.5 * (ep - em * cos2c), 0.5 * (ep + em * cos2c))
        }
        Activation::Gelu => {
            let p = q * qp;
            let p1 = (q + 1.0) * (qp + 1.0);
            let d2 = (p1 - k * k).max(0.0);
            let d = d2.sqrt();
            let theta = k.atan2(d);
            let e = k / 4.0 + ((k * k + p * d2) / (p1 * d) + k * theta) / (2.0 * PI);
            let kdot =
                0.25 + theta / (2.0 * PI) + (1.0 / d2 + (1.0 - p) / p1 + 1.0) * k / (2.0 * PI * d);
            (e, kdot)
        }
        Activation::Tanh | Activation::Softplus => return None,
    })
}

/// Whether moments of `act` are summed from Hermite series ([`hermite::Series`]): with
/// [`MomentMethod::Auto`] for an activation without a closed form.
fn sums_series(act: Activation, method: MomentMethod) -> bool {
    matches!(method, MomentMethod::Auto(_)) && closed_form(act, 1.0, 1.0, 0.5).is_none()
}

/// The series an MLP kernel sums a point's moments from at variance `q` (`None` where the
/// quadrature is used): all [`hermite::TERMS`] terms on the standard rule, or beyond it (tanh
/// from q ≈ 7) a long series on the fine rule, which pairs under the same bound.
pub(crate) fn point_series(act: Activation, method: MomentMethod, q: f64) -> Option<Series> {
    sums_series(act, method)
        .then(|| Series::new(act, q).or_else(|| Series::adaptive(act, q)))
        .flatten()
}

/// The series a conv net's or a stack's kernel sums one position's moments from at variance
/// `q` (`None` where the quadrature is used): 1.5× the terms it needs ([`Series::adaptive`]).
pub(crate) fn position_series(act: Activation, method: MomentMethod, q: f64) -> Option<Series> {
    sums_series(act, method)
        .then(|| Series::adaptive(act, q))
        .flatten()
}

/// A pair's moments `(E[φ(u)φ(v)], E[φ′(u)φ′(v)])` for `(q, q′, k)`: from the two points' (or
/// positions') series when both exist and their sum's bound holds ([`Series::moments`]), else
/// [`gaussian_moments`].
pub(crate) fn pair_moments(
    act: Activation,
    method: MomentMethod,
    (q, qp, k): (f64, f64, f64),
    series: (Option<&Series>, Option<&Series>),
) -> (f64, f64) {
    match series {
        (Some(a), Some(b)) => a.moments(b, hermite::correlation(q, qp, k)),
        _ => None,
    }
    .unwrap_or_else(|| gaussian_moments(act, q, qp, k, method))
}

/// One point's per-layer state for the MLP kernel: the pre-activation variances `q_l(x)`,
/// l = 0..=L, and, for an activation without a closed form, each hidden layer's Hermite series
/// of φ and φ′ at that variance ([`hermite::Series`]; `None` where the quadrature is used).
#[derive(Debug, Clone, PartialEq)]
pub struct PointVariances {
    /// `q_l(x)`, l = 0..=L.
    pub q: Vec<f64>,
    series: Vec<Option<Series>>,
}

impl AnalyticConfig {
    fn bias_var(&self) -> f64 {
        if self.arch.model.bias {
            self.arch.model.b_std * self.arch.model.b_std
        } else {
            0.0
        }
    }

    /// `(nngp, ntk)` of one pair from its input kernel `k0 = x·x'/d` and the two points'
    /// per-layer states ([`AnalyticConfig::variances`]).
    pub(crate) fn entry(&self, k0: f64, a: &PointVariances, b: &PointVariances) -> (f64, f64) {
        let (qa, qb) = (&a.q, &b.q);
        let w2 = self.arch.model.w_std * self.arch.model.w_std;
        let b2 = self.bias_var();
        let bias_one = if self.arch.model.bias { 1.0 } else { 0.0 };
        let d = self.arch.input_dim as f64;
        let mut k = w2 * k0 + b2;
        let mut theta = match self.arch.model.parametrization {
            Parametrization::Ntk => k,
            // mup has no infinite-width NTK limit (features move); configs reject analytic kernels
            // for it, so the standard recursion (the same finite-width kernel at init) is used.
            Parametrization::Standard | Parametrization::Mup => d * k0 + bias_one,
        };
        for l in 0..self.arch.model.depth {
            let (e, kdot) = pair_moments(
                self.arch.model.activation,
                self.method,
                (qa[l], qb[l], k),
                (a.series[l].as_ref(), b.series[l].as_ref()),
            );
            let k_new = w2 * e + b2;
            theta = match self.arch.model.parametrization {
                Parametrization::Ntk => k_new + w2 * kdot * theta,
                Parametrization::Standard | Parametrization::Mup => {
                    self.arch.model.width as f64 * e + w2 * kdot * theta + bias_one
                }
            };
            k = k_new;
        }
        (k, theta)
    }

    /// Pre-activation variances `q_l(x)`, l = 0..=L, computed with the same arithmetic as the
    /// diagonal of `K` (so that duplicate points give `qq' − K² = 0` exactly), and each hidden
    /// layer's series where moments are summed from one.
    pub(crate) fn variances(&self, x: &[f64]) -> PointVariances {
        let w2 = self.arch.model.w_std * self.arch.model.w_std;
        let b2 = self.bias_var();
        let mut q = w2 * input_kernel(x, x) + b2;
        let mut out = vec![q];
        let mut series = Vec::with_capacity(self.arch.model.depth);
        for _ in 0..self.arch.model.depth {
            let act = self.arch.model.activation;
            let s = point_series(act, self.method, q);
            let (e, _) = pair_moments(act, self.method, (q, q, q), (s.as_ref(), s.as_ref()));
            series.push(s);
            q = w2 * e + b2;
            out.push(q);
        }
        PointVariances { q: out, series }
    }

    /// NNGP and NTK between the rows of `x1` (`n1 × d`, row-major) and `x2` (`n2 × d`).
    pub fn kernels(&self, x1: &[f64], n1: usize, x2: &[f64], n2: usize) -> AnalyticKernels {
        self.kernels_until(x1, n1, x2, n2, &|| false)
            .expect("never stopped")
    }

    /// [`AnalyticConfig::kernels`], checking `stop` before every row (so that an interrupt takes
    /// effect within one row's work); `None` when stopped.
    pub fn kernels_until(
        &self,
        x1: &[f64],
        n1: usize,
        x2: &[f64],
        n2: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<AnalyticKernels> {
        let d = self.arch.input_dim;
        assert_eq!(x1.len(), n1 * d);
        assert_eq!(x2.len(), n2 * d);
        let variances = |x: &[f64], n: usize| -> Option<Vec<PointVariances>> {
            (0..n)
                .into_par_iter()
                .map(|i| (!stop()).then(|| self.variances(&x[i * d..(i + 1) * d])))
                .collect()
        };
        let q1 = variances(x1, n1)?;
        // The columns' points are often the rows' first ones (all points × training points):
        // their states are the same (a function of the point alone).
        let q2 = if x1.len() >= x2.len() && x1[..x2.len()] == *x2 {
            q1[..n2].to_vec()
        } else {
            variances(x2, n2)?
        };
        let rows: Option<Vec<Vec<(f64, f64)>>> = (0..n1)
            .into_par_iter()
            .map(|i| {
                if stop() {
                    return None;
                }
                // Scalar arithmetic and libm calls below (see `clear_avx_upper_state`).
                crate::linalg::clear_avx_upper_state();
                let xi = &x1[i * d..(i + 1) * d];
                (0..n2)
                    .map(|j| {
                        if stop() {
                            return None;
                        }
                        let k0 = input_kernel(xi, &x2[j * d..(j + 1) * d]);
                        Some(self.entry(k0, &q1[i], &q2[j]))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        let rows = rows?;
        Some(AnalyticKernels {
            nngp: Mat::from_fn(n1, n2, |i, j| rows[i][j].0),
            ntk: Mat::from_fn(n1, n2, |i, j| rows[i][j].1),
        })
    }
}

/// `x·x'/d`, summed in a fixed order (the same for diagonal and off-diagonal entries).
pub fn input_kernel(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s / a.len() as f64
}
