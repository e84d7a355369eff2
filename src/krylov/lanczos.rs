//! Lanczos with full reorthogonalisation and the Krylov approximation of matrix functions,
//! `f(A)·b ≈ ‖b‖·V_m·f(T_m)·e₁` (V_m orthonormal, `T_m = V_mᵀ·A·V_m` tridiagonal), one independent
//! process per column of `B` sharing each operator product.
//!
//! The functions are those of gradient descent on the half-MSE: for each requested number of
//! steps `s`, a train factor `g_s(e)` (the residual's decay) and a test factor `φ_s(e)` (the
//! coefficient of the held-out predictions), see [`crate::dynamics::kernel::mode_factors`].
//!
//! Error estimate: the difference of the approximations from `m` and `m − d` vectors (Saad,
//! "Analysis of some Krylov subspace approximations to the matrix exponential operator", SINUM
//! 1992; the standard a-posteriori estimate of the Krylov literature), in prediction units — for
//! the train factor `‖b‖·‖h_m − h_{m−d}‖₂` (the basis is orthonormal), for the test factor
//! `scale·‖b‖·√(Δhᵀ·T_m·Δh)` (the coefficient error in the energy norm times
//! `scale = max_x √Θ(x, x)`, as for CG). A column stops when every step's estimate is within the
//! tolerance, or when the Krylov space is exhausted (an invariant subspace: exact).

use faer::{Mat, MatRef};

use super::{SolveReport, SolveSettings, SymOperator};
use crate::linalg;
use crate::Result;

/// Per eigenvalue `e`, `(g_s(e), φ_s(e))` for each requested step, in a fixed order.
pub trait ModeFunctions: Sync {
    /// Number of requested steps.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `(train factor, test factor)` of eigenvalue `e` for requested step `i`.
    fn factors(&self, e: f64, i: usize) -> (f64, f64);
}

/// The spectral data of `T_m`: Ritz values (clamped at 0) and the first row of the eigenvector
/// matrix, with the eigenvectors.
#[derive(Debug, Clone)]
pub struct Ritz {
    /// Ritz values θ_i.
    pub theta: Vec<f64>,
    /// Eigenvectors of `T_m` (`m × m`).
    pub w: Mat<f64>,
}

impl Ritz {
    fn of(alpha: &[f64], beta: &[f64]) -> Result<Ritz> {
        let m = alpha.len();
        let t = Mat::from_fn(m, m, |i, j| {
            if i == j {
                alpha[i]
            } else if i + 1 == j {
                beta[i]
            } else if j + 1 == i {
                beta[j]
            } else {
                0.0
            }
        });
        let (vals, w) = linalg::sym_eigen(t.as_ref())?;
        Ok(Ritz {
            theta: vals.into_iter().map(|v| v.max(0.0)).collect(),
            w,
        })
    }

    /// `Σ_i W[:, i]·f(θ_i)·W[0, i]` (length m).
    pub fn coefficients(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let mut out = vec![0.0; self.w.nrows()];
        for i in 0..self.theta.len() {
            let c = f(self.theta[i]) * self.w[(0, i)];
            if c != 0.0 {
                for (r, o) in out.iter_mut().enumerate() {
                    *o += self.w[(r, i)] * c;
                }
            }
        }
        out
    }
}

/// One column's tridiagonal matrix `T_m` with its Ritz data now and `d` steps earlier.
#[derive(Debug, Clone)]
pub struct Tridiagonal {
    /// Diagonal of `T_m`.
    pub alpha: Vec<f64>,
    /// Off-diagonal of `T_m` (length m − 1).
    pub beta: Vec<f64>,
    /// `‖b‖`.
    pub norm: f64,
    /// Ritz data of `T_m`.
    pub ritz: Ritz,
    /// Ritz data of `T_{m−d}` (the estimate's comparison), `None` when the space was exhausted
    /// (exact) or `m ≤ d`.
    pub ritz_prev: Option<Ritz>,
}

impl Tridiagonal {
    /// Number of basis vectors m.
    pub fn dim(&self) -> usize {
        self.alpha.len()
    }

    /// Estimated errors `(train, test)` of requested step `i` of `funcs` in prediction units
    /// (0 when the space was exhausted).
    pub fn estimate(&self, funcs: &dyn ModeFunctions, i: usize, scale: f64) -> (f64, f64) {
        let Some(prev) = &self.ritz_prev else {
            return (0.0, 0.0);
        };
        let diff = |test: bool| -> Vec<f64> {
            let pick = |e: f64| {
                let (g, p) = funcs.factors(e, i);
                if test {
                    p
                } else {
                    g
                }
            };
            let mut now = self.ritz.coefficients(pick);
            let before = prev.coefficients(pick);
            for (a, b) in now.iter_mut().zip(&before) {
                *a -= b;
            }
            now
        };
        let dt = diff(false);
        let train = self.norm * dt.iter().map(|v| v * v).sum::<f64>().sqrt();
        let dp = diff(true);
        // Δhᵀ·T_m·Δh with T_m tridiagonal.
        let m = dp.len();
        let mut e = 0.0;
        for k in 0..m {
            e += self.alpha[k] * dp[k] * dp[k];
            if k + 1 < m {
                e += 2.0 * self.beta[k] * dp[k] * dp[k + 1];
            }
        }
        let test = scale * self.norm * e.max(0.0).sqrt();
        (train, test)
    }

    /// The largest estimate over all requested steps, train and test.
    pub fn worst_estimate(&self, funcs: &dyn ModeFunctions, scale: f64) -> f64 {
        (0..funcs.len())
            .map(|i| {
                let (a, b) = self.estimate(funcs, i, scale);
                a.max(b)
            })
            .fold(0.0, f64::max)
    }
}

/// One column's Krylov basis and tridiagonal matrix.
#[derive(Debug, Clone)]
pub struct KrylovColumn {
    /// `V_m`, `n × m`, orthonormal.
    pub v: Mat<f64>,
    /// `T_m` and its Ritz data.
    pub tri: Tridiagonal,
    /// What the iteration reports.
    pub report: SolveReport,
}

impl KrylovColumn {
    /// `‖b‖·V_m·c` for coefficients `c` (length m).
    pub fn expand(&self, c: &[f64]) -> Vec<f64> {
        let cm = Mat::from_fn(c.len(), 1, |i, _| c[i] * self.tri.norm);
        let v = self.v.as_ref().submatrix(0, 0, self.v.nrows(), c.len());
        linalg::matmul(v, cm.as_ref()).col_as_slice(0).to_vec()
    }
}

/// Iterations between convergence checks.
const CHECK_EVERY: usize = 8;

/// Working state of one column.
struct State {
    /// Basis vectors in the first `used` columns (capacity doubles as it fills).
    v: Mat<f64>,
    used: usize,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    norm: f64,
    done: bool,
    exhausted: bool,
    report: SolveReport,
}

/// Runs Lanczos on `A + shift·I` from each column of `b` until the estimates of `funcs` are
/// within the tolerance (see the module doc).
pub fn lanczos(
    op: &dyn SymOperator,
    shift: f64,
    b: MatRef<'_, f64>,
    funcs: &dyn ModeFunctions,
    scale: f64,
    s: &SolveSettings,
) -> Result<Vec<KrylovColumn>> {
    let n = op.dim();
    let c = b.ncols();
    let m_max = s.max_iterations.clamp(1, n.max(1));
    let d = s.delay.max(1);
    let mut st: Vec<State> = (0..c)
        .map(|j| {
            let col = b.col(j);
            let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut v = Mat::zeros(n, if norm > 0.0 { 16.min(n + 1) } else { 0 });
            if norm > 0.0 {
                for i in 0..n {
                    v[(i, 0)] = col[i] / norm;
                }
            }
            State {
                v,
                used: usize::from(norm > 0.0),
                alpha: Vec::new(),
                beta: Vec::new(),
                norm,
                done: norm == 0.0,
                exhausted: norm == 0.0,
                report: SolveReport {
                    converged: norm == 0.0,
                    ..SolveReport::default()
                },
            }
        })
        .collect();
    for it in 0..m_max {
        let active: Vec<usize> = (0..c).filter(|&j| !st[j].done).collect();
        if active.is_empty() {
            break;
        }
        let q = Mat::from_fn(n, active.len(), |i, a| {
            let sj = &st[active[a]];
            sj.v[(i, sj.used - 1)]
        });
        let mut aq = op.apply(q.as_ref())?;
        aq += faer::Scale(shift) * &q;
        for (a, &j) in active.iter().enumerate() {
            step(&mut st[j], aq.col_as_slice(a), it + 1);
        }
        for &j in &active {
            let sj = &mut st[j];
            if sj.done {
                continue;
            }
            let m = sj.alpha.len();
            if m == m_max || (m > d && m.is_multiple_of(CHECK_EVERY)) {
                let worst = tridiagonal(sj, d)?.worst_estimate(funcs, scale);
                sj.report.error_estimate = worst;
                if worst <= s.tolerance {
                    sj.report.converged = true;
                    sj.done = true;
                } else if m == m_max {
                    sj.done = true;
                }
            }
        }
    }
    st.into_iter().map(|sj| finish(sj, d)).collect()
}

/// One Lanczos step of a column given `A·v_m`: α, three-term recurrence, full
/// reorthogonalisation (twice), β, the next vector (or exhaustion).
fn step(sj: &mut State, av: &[f64], iterations: usize) {
    let n = av.len();
    let m = sj.used;
    let mut w: Vec<f64> = av.to_vec();
    let alpha: f64 =
        sj.v.col_as_slice(m - 1)
            .iter()
            .zip(av)
            .map(|(a, b)| a * b)
            .sum();
    {
        let vm = sj.v.col_as_slice(m - 1);
        for i in 0..n {
            w[i] -= alpha * vm[i];
        }
    }
    if m >= 2 {
        let b = sj.beta[m - 2];
        let prev = sj.v.col_as_slice(m - 2);
        for i in 0..n {
            w[i] -= b * prev[i];
        }
    }
    let basis = sj.v.as_ref().submatrix(0, 0, n, m);
    for _ in 0..2 {
        let wm = MatRef::from_column_major_slice(&w, n, 1);
        let coef = linalg::matmul(basis.transpose(), wm);
        let corr = linalg::matmul(basis, coef.as_ref());
        for i in 0..n {
            w[i] -= corr[(i, 0)];
        }
    }
    sj.alpha.push(alpha);
    sj.report.iterations = iterations;
    let beta = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    let size = sj
        .alpha
        .iter()
        .chain(&sj.beta)
        .fold(0.0f64, |a, b| a.max(b.abs()));
    if beta.is_nan() || beta <= 1e-12 * size.max(f64::MIN_POSITIVE) || m == n {
        // An invariant subspace: the approximation is exact.
        sj.exhausted = true;
        sj.done = true;
        return;
    }
    sj.beta.push(beta);
    if sj.used == sj.v.ncols() {
        let cap = (2 * sj.v.ncols()).min(n + 1).max(sj.used + 1);
        let mut v = Mat::zeros(n, cap);
        v.as_mut().submatrix_mut(0, 0, n, m).copy_from(basis);
        sj.v = v;
    }
    for (dst, x) in sj.v.col_as_slice_mut(m).iter_mut().zip(&w) {
        *dst = x / beta;
    }
    sj.used += 1;
}

/// The column's tridiagonal matrix and its Ritz data now and `d` steps earlier.
fn tridiagonal(sj: &State, d: usize) -> Result<Tridiagonal> {
    let m = sj.alpha.len();
    if m == 0 {
        return Ok(Tridiagonal {
            alpha: Vec::new(),
            beta: Vec::new(),
            norm: sj.norm,
            ritz: Ritz {
                theta: Vec::new(),
                w: Mat::zeros(0, 0),
            },
            ritz_prev: None,
        });
    }
    let beta = sj.beta[..m - 1].to_vec();
    let ritz = Ritz::of(&sj.alpha, &beta)?;
    let ritz_prev = if sj.exhausted || m <= d {
        None
    } else {
        let mp = m - d;
        let mut r = Ritz::of(&sj.alpha[..mp], &beta[..mp - 1])?;
        // Pad the eigenvectors to m rows (the earlier basis is the first m − d vectors).
        let mut w = Mat::zeros(m, mp);
        w.as_mut()
            .submatrix_mut(0, 0, mp, mp)
            .copy_from(r.w.as_ref());
        r.w = w;
        Some(r)
    };
    Ok(Tridiagonal {
        alpha: sj.alpha.clone(),
        beta,
        norm: sj.norm,
        ritz,
        ritz_prev,
    })
}

/// The column's basis (its first `m` vectors) and tridiagonal matrix.
fn finish(sj: State, d: usize) -> Result<KrylovColumn> {
    let tri = tridiagonal(&sj, d)?;
    let m = tri.dim();
    let n = sj.v.nrows();
    let v = if sj.v.ncols() == m {
        sj.v
    } else {
        sj.v.as_ref().submatrix(0, 0, n, m).to_owned()
    };
    let mut report = sj.report;
    if sj.exhausted {
        report.converged = true;
        report.error_estimate = 0.0;
    }
    Ok(KrylovColumn { v, tri, report })
}
