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
