//! The products of a stored kernel with a few columns on CPUs with AVX-512 (chosen at run time):
//! one pass over each tile serves both of its products, `A_t·V` (dot products along the tile's
//! rows, eight entries a lane) and, below the diagonal tile, `A_tᵀ·V` (eight columns of the
//! tile at a time against broadcast entries of `V`), with f32 entries widened to f64 in the
//! registers. The general matrix-product path this replaces packs each `32 × 2048` tile twice
//! and reaches about a third of the machine's f64 rate on these narrow products.
//!
//! Every sum runs in a fixed order (lanes, then the lanes' sum), so the bits depend only on the
//! data and the tiling, never on the thread count.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// Whether this CPU runs the kernels of this module.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// A stored entry type: loads eight (or fewer, masked) entries widened to f64.
pub trait Entry: Copy {
    /// Entries `p[0..8]` as f64 lanes.
    ///
    /// # Safety
    /// `p[0..8]` readable; AVX-512F/VL available.
    unsafe fn load8(p: *const Self) -> __m512d;
    /// Entries `p[i]` for the set bits `i` of `mask`, zero elsewhere.
    ///
    /// # Safety
    /// The masked entries readable; AVX-512F/VL available.
    unsafe fn load_masked(p: *const Self, mask: u8) -> __m512d;
}

impl Entry for f64 {
    #[inline(always)]
    unsafe fn load8(p: *const f64) -> __m512d {
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f64, mask: u8) -> __m512d {
        unsafe { _mm512_maskz_loadu_pd(mask, p) }
    }
}

impl Entry for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m512d {
        unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, mask: u8) -> __m512d {
        unsafe { _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mask, p)) }
    }
}

/// A row-major tile of a stored block.
#[derive(Clone, Copy)]
pub struct Tile<'a, T> {
    /// The block's entries.
    pub data: &'a [T],
    /// Row stride of the block.
    pub stride: usize,
    /// Offset of the tile's first entry.
    pub offset: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

/// Column-major `n × c` f64 values with leading dimension `n`.
pub struct Columns<'a> {
    /// Values.
    pub data: &'a [f64],
    /// Leading dimension.
    pub ld: usize,
}

/// Most columns of `V` handled per pass of a kernel (accumulators held in registers).
const GROUP: usize = 10;

/// Which of a tile's two products a kernel computes.
#[derive(Clone, Copy)]
enum Pass {
    /// `A_t·V`: dot products along the tile's rows.
    Rows,
    /// `A_tᵀ·V`: the tile's columns against broadcast entries of `V`.
    Mirror,
}

impl<T> Tile<'_, T> {
    /// Whether every entry of the tile lies in `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.offset + (self.rows - 1) * self.stride + self.cols <= self.data.len()
    }
}

/// `out[row0 + i, k] += Σ_j tile[i, j]·v[col0 + j, k]` for every `k`.
pub fn rows_product<T: Entry>(
    tile: Tile<'_, T>,
    v: &Columns<'_>,
    col0: usize,
    out: &mut [f64],
    ld_out: usize,
    row0: usize,
) {
    assert!(col0 + tile.cols <= v.ld && row0 + tile.rows <= ld_out);
    product(Pass::Rows, tile, tile.cols, v, col0, out, ld_out, row0);
}

/// `out[col0 + j, k] += Σ_i tile[i, j]·v[row0 + i, k]` for the first `mirror_cols` columns.
pub fn mirror_product<T: Entry>(
    tile: Tile<'_, T>,
    mirror_cols: usize,
    v: &Columns<'_>,
    row0: usize,
    out: &mut [f64],
    ld_out: usize,
    col0: usize,
) {
    assert!(mirror_cols <= tile.cols);
    assert!(row0 + tile.rows <= v.ld && col0 + mirror_cols <= ld_out);
    product(Pass::Mirror, tile, mirror_cols, v, row0, out, ld_out, col0);
}

/// Runs `pass` over the columns of `v` in groups of at most [`GROUP`], reading `v` from row
/// `v_row` and adding into `out` from row `out_row`; `cols` is the tile's column count
/// (`Rows`) or the number of mirrored columns (`Mirror`).
#[allow(clippy::too_many_arguments)]
fn product<T: Entry>(
    pass: Pass,
    tile: Tile<'_, T>,
    cols: usize,
    v: &Columns<'_>,
    v_row: usize,
    out: &mut [f64],
    ld_out: usize,
    out_row: usize,
) {
    assert!(tile.in_bounds());
    let c = v.data.len() / v.ld.max(1);
    assert!(out.len() >= c * ld_out);
    let a = tile.data[tile.offset..].as_ptr();
    let (lda, nr) = (tile.stride, tile.rows);
    let mut k0 = 0;
    while k0 < c {
        let g = GROUP.min(c - k0);
        let vp = v.data[k0 * v.ld + v_row..].as_ptr();
        let op = out[k0 * ld_out + out_row..].as_mut_ptr();
        // SAFETY: bounds asserted by the callers and above; `available()` checked by the
        // caller (store::apply).
        unsafe {
            match pass {
                Pass::Rows => by_group!(g, rows_kernel, a, lda, nr, cols, vp, v.ld, op, ld_out),
                Pass::Mirror => {
                    by_group!(g, mirror_kernel, a, lda, nr, cols, vp, v.ld, op, ld_out)
                }
            }
        }
        k0 += g;
    }
}

macro_rules! by_group {
    ($g:expr, $f:ident, $($arg:expr),*) => {
        match $g {
            1 => $f::<T, 1>($($arg),*),
            2 => $f::<T, 2>($($arg),*),
            3 => $f::<T, 3>($($arg),*),
            4 => $f::<T, 4>($($arg),*),
            5 => $f::<T, 5>($($arg),*),
            6 => $f::<T, 6>($($arg),*),
            7 => $f::<T, 7>($($arg),*),
            8 => $f::<T, 8>($($arg),*),
            9 => $f::<T, 9>($($arg),*),
            _ => $f::<T, 10>($($arg),*),
        }
    };
}
use by_group;

/// Dot products of two tile rows at a time with `G` columns of `v`.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_kernel<T: Entry, const G: usize>(
    a: *const T,
    lda: usize,
    nr: usize,
    nc: usize,
    v: *const f64,
    ldv: usize,
    out: *mut f64,
    ldo: usize,
) {
    let full = nc / 8;
    let rem = nc % 8;
    let mask: u8 = ((1u16 << rem) - 1) as u8;
    let mut i = 0;
    while i < nr {
        let two = i + 1 < nr;
        let p0 = unsafe { a.add(i * lda) };
        let p1 = if two {
            unsafe { a.add((i + 1) * lda) }
        } else {
            p0
        };
        let mut acc0 = [_mm512_setzero_pd(); G];
        let mut acc1 = [_mm512_setzero_pd(); G];
        for jb in 0..full {
            let j = jb * 8;
            let x0 = unsafe { T::load8(p0.add(j)) };
            let x1 = unsafe { T::load8(p1.add(j)) };
            for g in 0..G {
                let vv = unsafe { _mm512_loadu_pd(v.add(g * ldv + j)) };
                acc0[g] = _mm512_fmadd_pd(x0, vv, acc0[g]);
                acc1[g] = _mm512_fmadd_pd(x1, vv, acc1[g]);
            }
        }
        if rem > 0 {
            let j = full * 8;
            let x0 = unsafe { T::load_masked(p0.add(j), mask) };
            let x1 = unsafe { T::load_masked(p1.add(j), mask) };
            for g in 0..G {
                let vv = unsafe { _mm512_maskz_loadu_pd(mask, v.add(g * ldv + j)) };
                acc0[g] = _mm512_fmadd_pd(x0, vv, acc0[g]);
                acc1[g] = _mm512_fmadd_pd(x1, vv, acc1[g]);
            }
        }
        for g in 0..G {
            unsafe {
                *out.add(g * ldo + i) += _mm512_reduce_add_pd(acc0[g]);
                if two {
                    *out.add(g * ldo + i + 1) += _mm512_reduce_add_pd(acc1[g]);
                }
            }
        }
        i += 2;
    }
}

/// Eight tile columns at a time against broadcast entries of `G` columns of `v`.
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn mirror_kernel<T: Entry, const G: usize>(
    a: *const T,
    lda: usize,
    nr: usize,
    nm: usize,
    v: *const f64,
    ldv: usize,
    out: *mut f64,
    ldo: usize,
) {
    let mut j = 0;
    while j < nm {
        let m = (nm - j).min(8);
        let mask: u8 = ((1u16 << m) - 1) as u8;
        let mut o = [_mm512_setzero_pd(); G];
        for (g, og) in o.iter_mut().enumerate() {
            *og = unsafe { _mm512_maskz_loadu_pd(mask, out.add(g * ldo + j)) };
        }
        for i in 0..nr {
            let x = unsafe { T::load_masked(a.add(i * lda + j), mask) };
            for (g, og) in o.iter_mut().enumerate() {
                let b = _mm512_set1_pd(unsafe { *v.add(g * ldv + i) });
                *og = _mm512_fmadd_pd(x, b, *og);
            }
        }
        for (g, og) in o.iter().enumerate() {
            unsafe { _mm512_mask_storeu_pd(out.add(g * ldo + j), mask, *og) };
        }
        j += 8;
    }
}
