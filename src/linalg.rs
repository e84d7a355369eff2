//! Small f64 dense linear-algebra helpers on top of faer.

use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

use crate::{Error, Result};

/// Euclidean norm.
pub fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Parallelism used for all dense products (all cores via rayon).
pub fn par() -> Par {
    Par::rayon(0)
}

/// A matrix from row-major values, transposed into faer's column-major layout tile by tile (a
/// plain element-by-element copy strides through memory).
pub fn mat_from_rows(values: &[f64], nrows: usize, ncols: usize) -> Mat<f64> {
    assert_eq!(values.len(), nrows * ncols, "mat_from_rows: wrong length");
    const TILE: usize = 64;
    let mut m = Mat::<f64>::zeros(nrows, ncols);
    for i0 in (0..nrows).step_by(TILE) {
        let i1 = (i0 + TILE).min(nrows);
        for j in 0..ncols {
            let col = &mut m.col_as_slice_mut(j)[i0..i1];
            for (c, i) in col.iter_mut().zip(i0..i1) {
                *c = values[i * ncols + j];
            }
        }
    }
    m
}

/// `mᵀ` (`ncols × nrows`, column-major) of a row-major `nrows × ncols` matrix `m`: its values
/// in order, widened to f64 (a contiguous copy).
pub fn mat_t_from_rows_of<T: Copy + Into<f64>>(
    values: &[T],
    nrows: usize,
    ncols: usize,
) -> Mat<f64> {
    assert_eq!(
        values.len(),
        nrows * ncols,
        "mat_t_from_rows_of: wrong length"
    );
    Mat::from_fn(ncols, nrows, |j, i| values[i * ncols + j].into())
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
    gram_into(out.as_mut(), a, b, Accum::Replace);
    out
}

/// `out = a · bᵀ` (`Accum::Replace`) or `out += a · bᵀ` (`Accum::Add`).
pub fn gram_into(out: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>, accum: Accum) {
    faer::linalg::matmul::matmul(out, accum, a, b.transpose(), 1.0, par());
}

/// The lower triangle (with the diagonal) of `a · aᵀ` into `out` (`n × n`), replacing or adding,
/// by block rows: block row `I` is one product with the rows `0..end(I)` of `a` (about half the
/// products of [`gram`], in large GEMMs). Entries above the diagonal are unspecified (zero or the
/// product); complete the matrix with [`mirror_lower`].
pub fn gram_lower_into(mut out: MatMut<'_, f64>, a: MatRef<'_, f64>, accum: Accum) {
    let n = a.nrows();
    let block = n.div_ceil(8).max(128);
    let mut i0 = 0;
    while i0 < n {
        let rows = block.min(n - i0);
        let cols = i0 + rows;
        faer::linalg::matmul::matmul(
            out.as_mut().submatrix_mut(i0, 0, rows, cols),
            accum,
            a.subrows(i0, rows),
            a.subrows(0, cols).transpose(),
            1.0,
            par(),
        );
        i0 += rows;
    }
}

/// Copies the lower triangle of a square matrix onto its upper triangle, tile by tile.
pub fn mirror_lower(m: &mut Mat<f64>) {
    const TILE: usize = 64;
    let n = m.nrows();
    for j0 in (0..n).step_by(TILE) {
        for i0 in (0..=j0).step_by(TILE) {
            for j in j0..(j0 + TILE).min(n) {
                for i in i0..(i0 + TILE).min(j) {
                    m[(i, j)] = m[(j, i)];
                }
            }
        }
    }
}

/// `a · aᵀ` from [`gram_lower_into`] and [`mirror_lower`]: exactly symmetric.
pub fn gram_sym(a: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), a.nrows());
    gram_lower_into(out.as_mut(), a, Accum::Replace);
    mirror_lower(&mut out);
    out
}

/// [`gram_sym`] when `a` and `b` are the same matrix (same place in memory), else [`gram`].
pub fn gram_maybe_sym(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let same = a.nrows() == b.nrows()
        && a.ncols() == b.ncols()
        && std::ptr::eq(a.as_ptr(), b.as_ptr())
        && a.row_stride() == b.row_stride()
        && a.col_stride() == b.col_stride();
    if same {
        gram_sym(a)
    } else {
        gram(a, b)
    }
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

/// `H m H` with `H = I − 11ᵀ/n`: a square matrix with its row and column means removed.
pub fn double_centered(m: MatRef<'_, f64>) -> Mat<f64> {
    let n = m.nrows();
    let nf = n as f64;
    let row: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| m[(i, j)]).sum::<f64>() / nf)
        .collect();
    let col: Vec<f64> = (0..n)
        .map(|j| (0..n).map(|i| m[(i, j)]).sum::<f64>() / nf)
        .collect();
    let all = row.iter().sum::<f64>() / nf;
    Mat::from_fn(n, n, |i, j| m[(i, j)] - row[i] - col[j] + all)
}

/// Centred kernel alignment `⟨HaH, HbH⟩_F / (‖HaH‖_F ‖HbH‖_F)` of two kernels on the same
/// points (Cortes, Mohri & Rostamizadeh 2012; as CKA, Kornblith et al. 2019): 1 for kernels
/// equal up to scale after centring, invariant to scaling either one. NaN when either centred
/// kernel vanishes (e.g. targets constant over the points).
pub fn centered_alignment(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let (ac, bc) = (double_centered(a), double_centered(b));
    1.0 - kernel_distance(ac.as_ref(), bc.as_ref())
}

/// The target kernel `y yᵀ` of `n` points with `k` outputs each (row-major `n × k` targets):
/// `Σ_k y_k y_kᵀ`, whose alignment with an output-averaged kernel is the kernel–target
/// alignment.
pub fn target_kernel(y: &[f64], n: usize, k: usize) -> Mat<f64> {
    Mat::from_fn(n, n, |i, j| {
        (0..k).map(|c| y[i * k + c] * y[j * k + c]).sum::<f64>()
    })
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

/// `top` over `bottom` (same number of columns).
pub fn stack_rows(top: MatRef<'_, f64>, bottom: MatRef<'_, f64>) -> Mat<f64> {
    assert_eq!(
        top.ncols(),
        bottom.ncols(),
        "stack_rows: column counts differ"
    );
    let mut m = Mat::zeros(top.nrows() + bottom.nrows(), top.ncols());
    m.as_mut()
        .submatrix_mut(0, 0, top.nrows(), top.ncols())
        .copy_from(top);
    m.as_mut()
        .submatrix_mut(top.nrows(), 0, bottom.nrows(), bottom.ncols())
        .copy_from(bottom);
    m
}

/// For each row of `x` (`n × d`, row-major), the index of the first row bitwise identical to
/// it (itself when it is the first): rows are bucketed by a hash of their bits, then compared
/// exactly within a bucket.
pub fn identical_rows(x: &[f64], n: usize) -> Vec<usize> {
    use std::hash::{Hash, Hasher};
    if n == 0 {
        return Vec::new();
    }
    let d = x.len() / n;
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let mut buckets: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    (0..n)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for v in row(i) {
                v.to_bits().hash(&mut h);
            }
            let bucket = buckets.entry(h.finish()).or_default();
            let same = |j: &&usize| {
                row(**j)
                    .iter()
                    .zip(row(i))
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            };
            match bucket.iter().find(same) {
                Some(&j) => j,
                None => {
                    bucket.push(i);
                    i
                }
            }
        })
        .collect()
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
    let norm = self::norm(&q);
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
        let b_next = self::norm(&w);
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

/// Zeroes the upper halves of the AVX vector registers (`vzeroupper`) where the CPU has AVX.
///
/// A thread whose upper register state was left dirty by earlier vector code pays a transition
/// penalty on every legacy-SSE instruction that follows, and glibc's scalar `tanh`, `expm1` and
/// `exp` are such code: measured on the reference machine, a tanh quadrature moment took 5.6 ms
/// on such a thread and 0.31 ms after this instruction (identical bits). Called before scalar
/// libm-bound loops (the quadrature of Gaussian moments); it changes no value.
#[inline]
pub fn clear_avx_upper_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked above); `vzeroupper` touches only the vector
        // registers, which are declared clobbered (every caller-saved register of the C ABI,
        // all of them on x86-64 System V), so no live value is lost whatever the codegen.
        unsafe {
            std::arch::asm!(
                "vzeroupper",
                clobber_abi("C"),
                options(nomem, nostack, preserves_flags)
            );
        }
    }
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
    fn symmetric_gram_matches_naive_sums_and_is_exactly_symmetric() {
        for (n, m, seed) in [(1, 1, 5), (5, 3, 6), (70, 33, 7), (300, 129, 8)] {
            let a = random(n, m, seed);
            let rows: Vec<f64> = (0..n)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| a[(i, j)])
                .collect();
            assert_eq!(mat_from_rows(&rows, n, m), a);
            let g = gram_sym(a.as_ref());
            let g2 = gram_maybe_sym(a.as_ref(), a.as_ref());
            for i in 0..n {
                for j in 0..n {
                    let naive: f64 = (0..m).map(|k| a[(i, k)] * a[(j, k)]).sum();
                    assert!((g[(i, j)] - naive).abs() <= 1e-13 * m as f64, "{i},{j}");
                    assert_eq!(g[(i, j)], g[(j, i)]);
                    assert_eq!(g2[(i, j)], g[(i, j)]);
                }
            }
        }
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
