//! Low-rank Nyström approximation by randomly pivoted Cholesky, and the Nyström preconditioner.
//!
//! Block RPCholesky (Chen, Epperly, Tropp & Webber, "Randomly pivoted Cholesky: practical
//! approximation of a kernel matrix with few entry evaluations", CPAM 2024, §2.4): pivots are
//! drawn with probability proportional to the diagonal of the residual `A − F·Fᵀ`, a block of
//! them at a time (one pass over a stored kernel fetches all of a block's columns), and the
//! residual's Nyström approximation on the block, `G·H⁺·Gᵀ` with `G` the residual's columns and
//! `H` their pivot rows, is appended to `F` (eigenvalues of `H` below `1e−12·max` dropped, so
//! repeated or dependent pivots are harmless). `F·Fᵀ ⪯ A` always.
//!
//! The preconditioner (Frangella, Tropp & Udell, "Randomized Nyström preconditioning", SIMAX
//! 2023): with `F = U·diag(σ)·Wᵀ`, `λ̂ = σ²` and shift `μ`,
//! `P⁻¹ = (λ̂_r + μ)·U·(Λ̂ + μI)⁻¹·Uᵀ + (I − U·Uᵀ)`, which maps the captured top of the spectrum of
//! `A + μI` onto `λ̂_r + μ` and leaves the rest.

use faer::{Mat, MatRef};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::SymOperator;
use crate::linalg;
use crate::Result;

/// Pivots drawn per pass over the operator.
pub const PIVOT_BLOCK: usize = 128;

/// Eigenvalues of a block's pivot matrix below this fraction of its largest are dropped.
const PIVOT_RTOL: f64 = 1e-12;

/// `F` (`n × r`, `r ≤ rank`) with `F·Fᵀ ⪯ A` by block RPCholesky with `seed`.
pub fn rp_cholesky(op: &dyn SymOperator, rank: usize, seed: u64) -> Result<Mat<f64>> {
    let n = op.dim();
    let rank = rank.min(n);
    let mut d = op.diagonal()?;
    let trace0: f64 = d.iter().sum();
    let mut f = Mat::<f64>::zeros(n, 0);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4E59_5354);
    while f.ncols() < rank {
        let total: f64 = d.iter().sum();
        if total.is_nan() || total <= 1e-14 * trace0 {
            break;
        }
        let want = PIVOT_BLOCK.min(rank - f.ncols());
        let pivots = draw_pivots(&d, want, total, &mut rng);
        let mut g = op.columns(&pivots)?;
        if f.ncols() > 0 {
            let fs = Mat::from_fn(pivots.len(), f.ncols(), |p, j| f[(pivots[p], j)]);
            g -= linalg::matmul(f.as_ref(), fs.transpose());
        }
        let h = Mat::from_fn(pivots.len(), pivots.len(), |a, b| {
            0.5 * (g[(pivots[a], b)] + g[(pivots[b], a)])
        });
        let (vals, vecs) = linalg::sym_eigen(h.as_ref())?;
        let top = vals.iter().copied().fold(0.0f64, f64::max);
        let keep: Vec<usize> = (0..vals.len())
            .filter(|&i| vals[i] > PIVOT_RTOL * top && vals[i] > 0.0)
            .collect();
        if keep.is_empty() {
            break;
        }
        let scaled = Mat::from_fn(pivots.len(), keep.len(), |a, j| {
            vecs[(a, keep[j])] / vals[keep[j]].sqrt()
        });
        let fnew = linalg::matmul(g.as_ref(), scaled.as_ref());
        for (i, di) in d.iter_mut().enumerate() {
            let s: f64 = (0..fnew.ncols()).map(|j| fnew[(i, j)] * fnew[(i, j)]).sum();
            *di = (*di - s).max(0.0);
        }
        for &p in &pivots {
            d[p] = 0.0;
        }
        f = hstack(f.as_ref(), fnew.as_ref());
    }
    Ok(f)
}

/// `want` distinct indices drawn with probability ∝ `d` (draws with replacement, repeats
/// dropped), in increasing order.
fn draw_pivots(d: &[f64], want: usize, total: f64, rng: &mut StdRng) -> Vec<usize> {
    let mut cum = Vec::with_capacity(d.len());
    let mut s = 0.0;
    for &v in d {
        s += v;
        cum.push(s);
    }
    let mut out: Vec<usize> = (0..want)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            cum.partition_point(|&c| c <= u).min(d.len() - 1)
        })
        .filter(|&i| d[i] > 0.0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn hstack(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut m = Mat::zeros(a.nrows(), a.ncols() + b.ncols());
    m.as_mut()
        .submatrix_mut(0, 0, a.nrows(), a.ncols())
        .copy_from(a);
    m.as_mut()
        .submatrix_mut(0, a.ncols(), b.nrows(), b.ncols())
        .copy_from(b);
    m
}

/// The Nyström preconditioner of `A + μI` (see the module doc).
#[derive(Debug, Clone)]
pub struct NystromPreconditioner {
    /// Orthonormal columns `U` (`n × r`).
    u: Mat<f64>,
    /// Per column, `(λ̂_r + μ)/(λ̂_i + μ) − 1`.
    scale: Vec<f64>,
}

impl NystromPreconditioner {
    /// From a factor `F` (`F·Fᵀ ≈ A`) and the shift `μ ≥ 0`; `None` when `F` has no columns.
    pub fn new(f: &Mat<f64>, mu: f64) -> Result<Option<Self>> {
        if f.ncols() == 0 {
            return Ok(None);
        }
        let gram = linalg::matmul(f.transpose(), f.as_ref());
        let (vals, vecs) = linalg::sym_eigen(linalg::symmetrize(gram.as_ref()).as_ref())?;
        let top = vals.iter().copied().fold(0.0f64, f64::max);
        let keep: Vec<usize> = (0..vals.len())
            .filter(|&i| vals[i] > 1e-10 * top && vals[i] > 0.0)
            .collect();
        if keep.is_empty() {
            return Ok(None);
        }
        // U = F·W·Σ⁻¹ for the kept eigenpairs of FᵀF = W·Σ²·Wᵀ.
        let w = Mat::from_fn(f.ncols(), keep.len(), |a, j| {
            vecs[(a, keep[j])] / vals[keep[j]].sqrt()
        });
        let u = linalg::matmul(f.as_ref(), w.as_ref());
        let lam: Vec<f64> = keep.iter().map(|&i| vals[i]).collect();
        let lam_r = lam.iter().copied().fold(f64::INFINITY, f64::min);
        let scale = lam.iter().map(|&l| (lam_r + mu) / (l + mu) - 1.0).collect();
        Ok(Some(NystromPreconditioner { u, scale }))
    }

    /// Rank `r`.
    pub fn rank(&self) -> usize {
        self.u.ncols()
    }

    /// `P⁻¹·v`.
    pub fn apply(&self, v: MatRef<'_, f64>) -> Mat<f64> {
        let mut utv = linalg::matmul(self.u.transpose(), v);
        for (i, s) in self.scale.iter().enumerate() {
            for j in 0..utv.ncols() {
                utv[(i, j)] *= s;
            }
        }
        let mut out = v.to_owned();
        out += linalg::matmul(self.u.as_ref(), utv.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_cholesky_of_a_low_rank_matrix_is_exact_and_never_exceeds_it() {
        let (n, r) = (60, 7);
        let b = Mat::from_fn(n, r, |i, j| ((i * 13 + j * 7) % 17) as f64 / 17.0 - 0.4);
        let a = linalg::matmul(b.as_ref(), b.transpose());
        let f = rp_cholesky(&a, 40, 3).unwrap();
        assert!(f.ncols() <= 40);
        let approx = linalg::matmul(f.as_ref(), f.transpose());
        assert!((&approx - &a).norm_max() < 1e-10 * a.norm_max());
        // A full-rank matrix: the residual A − FFᵀ stays positive semi-definite.
        let a2 = Mat::from_fn(n, n, |i, j| (-((i as f64 - j as f64) / 9.0).powi(2)).exp());
        let f2 = rp_cholesky(&a2, 20, 5).unwrap();
        let resid = &a2 - linalg::matmul(f2.as_ref(), f2.transpose());
        let (vals, _) = linalg::sym_eigen(linalg::symmetrize(resid.as_ref()).as_ref()).unwrap();
        assert!(vals[0] > -1e-10, "residual eigenvalue {}", vals[0]);
    }
}
