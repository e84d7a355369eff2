//! Small f64 dense linear-algebra helpers on top of faer.

use faer::{Accum, Mat, MatRef, Par, Side};

use crate::{Error, Result};

/// Parallelism used for all dense products (all cores via rayon).
pub fn par() -> Par {
    Par::rayon(0)
}

/// A matrix from row-major values.
pub fn mat_from_rows(values: &[f64], nrows: usize, ncols: usize) -> Mat<f64> {
    assert_eq!(values.len(), nrows * ncols, "mat_from_rows: wrong length");
    Mat::from_fn(nrows, ncols, |i, j| values[i * ncols + j])
}

/// Row-major values of a matrix.
pub fn mat_to_rows(m: MatRef<'_, f64>) -> Vec<f64> {
    let mut v = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            v.push(m[(i, j)]);
        }
    }
    v
}

/// `a · bᵀ` (the Gram product of two row sets).
pub fn gram(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.nrows());
    faer::linalg::matmul::matmul(out.as_mut(), Accum::Replace, a, b.transpose(), 1.0, par());
    out
}

/// `a · b`.
pub fn matmul(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(out.as_mut(), Accum::Replace, a, b, 1.0, par());
    out
}

/// Frobenius norm.
pub fn frobenius(m: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s.sqrt()
}

/// `‖a − b‖_F / ‖b‖_F` (0 when both vanish).
pub fn rel_frobenius(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    let mut num = 0.0;
    let mut den = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let d = a[(i, j)] - b[(i, j)];
            num += d * d;
            den += b[(i, j)] * b[(i, j)];
        }
    }
    if den == 0.0 {
        if num == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (num / den).sqrt()
    }
}

/// `1 − ⟨a, b⟩_F / (‖a‖_F ‖b‖_F)`: the kernel (alignment) distance.
pub fn kernel_distance(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut ab = 0.0;
    let mut aa = 0.0;
    let mut bb = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            ab += a[(i, j)] * b[(i, j)];
            aa += a[(i, j)] * a[(i, j)];
            bb += b[(i, j)] * b[(i, j)];
        }
    }
    1.0 - ab / (aa.sqrt() * bb.sqrt())
}

/// Symmetric part `(m + mᵀ)/2`, which removes rounding asymmetry before an eigendecomposition.
pub fn symmetrize(m: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}

/// Eigendecomposition of a symmetric matrix: eigenvalues ascending and eigenvectors (columns).
pub fn sym_eigen(m: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    if m.nrows() == 0 {
        return Ok((Vec::new(), Mat::zeros(0, 0)));
    }
    let s = symmetrize(m);
    if !is_finite(s.as_ref()) {
        return Err(Error::Numerics(
            "kernel matrix has non-finite entries".into(),
        ));
    }
    let evd = s
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Numerics(format!("eigendecomposition failed: {e:?}")))?;
    let vals: Vec<f64> = (0..m.nrows()).map(|i| evd.S()[i]).collect();
    Ok((vals, evd.U().to_owned()))
}

/// Eigenvalues of a symmetric matrix, ascending; all NaN when the matrix has a non-finite entry
/// (e.g. the kernel of a diverged network), which the eigensolver must never see.
pub fn sym_eigenvalues(m: MatRef<'_, f64>) -> Result<Vec<f64>> {
    if m.nrows() == 0 {
        return Ok(Vec::new());
    }
    if !is_finite(m) {
        return Ok(vec![f64::NAN; m.nrows()]);
    }
    let s = symmetrize(m);
    s.self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| Error::Numerics(format!("eigenvalues failed: {e:?}")))
}

/// Sub-block `[r0..r0+nr, c0..c0+nc]` as an owned matrix.
pub fn block(m: MatRef<'_, f64>, r0: usize, nr: usize, c0: usize, nc: usize) -> Mat<f64> {
    m.submatrix(r0, c0, nr, nc).to_owned()
}

/// Whether every entry is finite.
pub fn is_finite(m: MatRef<'_, f64>) -> bool {
    m.col_iter().all(|c| c.iter().all(|v| v.is_finite()))
}

/// Largest eigenvalue of a symmetric positive semi-definite operator of size `n`, given only
/// its products `v ↦ A·v`, by Lanczos with full reorthogonalisation (deterministic start
/// vector). Stops when the largest Ritz value changes by less than `rtol` (relative) in two
/// successive iterations, when the Krylov space is exhausted (then the value is exact to
/// round-off), or after `max_iter` products.
pub fn lanczos_lambda_max(
    n: usize,
    mut matvec: impl FnMut(&[f64]) -> Result<Vec<f64>>,
    max_iter: usize,
    rtol: f64,
) -> Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    // A fixed start vector with all components non-zero and irregular (so that it is not
    // orthogonal to the top eigenvector for structured matrices).
    let mut q: Vec<f64> = (0..n)
        .map(|i| 1.0 + 0.5 * ((i as f64 + 1.0) * 0.618_033_988_749_895).fract())
        .collect();
    let norm = crate::metrics::norm(&q);
    q.iter_mut().for_each(|v| *v /= norm);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut last = f64::NAN;
    let mut settled = 0;
    for it in 0..max_iter.min(n).max(1) {
        let mut w = matvec(&q)?;
        if w.iter().any(|v| !v.is_finite()) {
            return Ok(f64::NAN);
        }
        let a: f64 = w.iter().zip(&q).map(|(x, y)| x * y).sum();
        basis.push(q.clone());
        alpha.push(a);
        // Full reorthogonalisation (twice is enough): w ⟂ every basis vector.
        for _ in 0..2 {
            for b in &basis {
                let c: f64 = w.iter().zip(b).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
            }
        }
        let top = tridiagonal_lambda_max(&alpha, &beta)?;
        let b_next = crate::metrics::norm(&w);
        if (top - last).abs() <= rtol * top.abs() {
            settled += 1;
        } else {
            settled = 0;
        }
        last = top;
        if settled >= 2 || it + 1 == n || b_next <= 1e-14 * top.abs().max(1e-300) {
            return Ok(top);
        }
        beta.push(b_next);
        q = w.into_iter().map(|v| v / b_next).collect();
    }
    Ok(last)
}

/// Largest eigenvalue of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta`.
fn tridiagonal_lambda_max(alpha: &[f64], beta: &[f64]) -> Result<f64> {
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
    Ok(sym_eigenvalues(t.as_ref())?
        .last()
        .copied()
        .unwrap_or(f64::NAN))
}

/// Largest eigenvalue of an explicit symmetric positive semi-definite matrix (Lanczos on it;
/// NaN when it has a non-finite entry).
pub fn lambda_max(m: MatRef<'_, f64>) -> Result<f64> {
    if !is_finite(m) {
        return Ok(f64::NAN);
    }
    lanczos_lambda_max(
        m.nrows(),
        |v| {
            let x = mat_from_rows(v, v.len(), 1);
            Ok(mat_to_rows(matmul(m, x.as_ref()).as_ref()))
        },
        LANCZOS_MAX_ITER,
        LANCZOS_RTOL,
    )
}

/// Most Lanczos iterations for a largest eigenvalue.
pub const LANCZOS_MAX_ITER: usize = 300;
/// Relative change of the largest Ritz value at which Lanczos stops.
pub const LANCZOS_RTOL: f64 = 1e-13;

/// Relative tolerance of [`spectral_norm`] (on ‖m‖₂², so about half of it on ‖m‖₂).
pub const SPECTRAL_RTOL: f64 = 1e-10;

/// Largest singular value `‖m‖₂` of a matrix: `√λ_max(mᵀm)` by Lanczos on `v ↦ mᵀ(m v)`.
pub fn spectral_norm(m: MatRef<'_, f64>) -> Result<f64> {
    if m.ncols() == 0 || m.nrows() == 0 {
        return Ok(0.0);
    }
    let l = lanczos_lambda_max(
        m.ncols(),
        |v| {
            let x = mat_from_rows(v, v.len(), 1);
            let y = matmul(m, x.as_ref());
            Ok(mat_to_rows(matmul(m.transpose(), y.as_ref()).as_ref()))
        },
        LANCZOS_MAX_ITER,
        SPECTRAL_RTOL,
    )?;
    Ok(l.max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, m: usize, seed: u64) -> Mat<f64> {
        let mut s = seed;
        Mat::from_fn(n, m, |_, _| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
    }

    #[test]
    fn lanczos_matches_the_full_eigendecomposition() {
        for (n, seed) in [(1, 1), (7, 2), (60, 3), (400, 4)] {
            let a = random(n, n + 3, seed);
            let g = gram(a.as_ref(), a.as_ref());
            let exact = *sym_eigenvalues(g.as_ref()).unwrap().last().unwrap();
            let l = lambda_max(g.as_ref()).unwrap();
            assert!(
                (l - exact).abs() <= 1e-11 * exact,
                "n = {n}: {l} vs {exact}"
            );
            let s = spectral_norm(a.as_ref()).unwrap();
            assert!(
                (s * s - exact).abs() <= 1e-8 * exact,
                "‖a‖₂² {} vs {exact}",
                s * s
            );
        }
        // a repeated top eigenvalue (identity) and a rank-one matrix
        let eye = Mat::<f64>::identity(50, 50);
        assert!((lambda_max(eye.as_ref()).unwrap() - 1.0).abs() < 1e-14);
        let v = random(30, 1, 9);
        let r1 = gram(v.as_ref(), v.as_ref());
        let exact = (0..30).map(|i| v[(i, 0)] * v[(i, 0)]).sum::<f64>();
        assert!((lambda_max(r1.as_ref()).unwrap() - exact).abs() < 1e-12 * exact);
    }
}
