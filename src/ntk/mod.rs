//! Neural tangent kernels: the empirical kernel of a finite burn network ([`empirical`]) and the
//! analytic infinite-width NNGP/NTK of the MLP ([`analytic`]) and of the conv net ([`conv`]),
//! with [`quadrature`] for activations without a closed form.

pub mod analytic;
pub mod blocked;
pub mod blocks;
pub mod conv;
pub mod empirical;
pub mod hermite;
pub mod quadrature;

use faer::Mat;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::NetworkConfig;
use analytic::{AnalyticConfig, AnalyticKernels, MomentMethod};

/// The analytic NNGP and NTK of `arch` (the MLP's or the conv net's) between the rows of `x1`
/// and `x2`, moments in closed form where one exists and quadrature of `quadrature_order`
/// nodes per piece otherwise; `None` when `stop` returned true.
pub fn analytic_kernels_until(
    arch: &NetworkConfig,
    quadrature_order: usize,
    (x1, n1): (&[f64], usize),
    (x2, n2): (&[f64], usize),
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<AnalyticKernels> {
    type Kernels<'a> = dyn Fn(&[f64], usize, &[f64], usize) -> Option<AnalyticKernels> + 'a;
    let method = MomentMethod::Auto(quadrature_order);
    let stack = blocks::BlockKernelConfig::of_network(arch, method);
    let conv = conv::ConvKernelConfig::of_network(arch, method);
    let symmetric: &Kernels = match (&stack, &conv) {
        (Some(b), _) => &|a, na, c, nc| b.kernels_until(a, na, c, nc, stop),
        (None, Some(c)) => &|a, na, x, nx| c.kernels_until(a, na, x, nx, stop),
        (None, None) => {
            return AnalyticConfig::new(arch, quadrature_order).kernels_until(x1, n1, x2, n2, stop)
        }
    };
    // Rows that begin with the columns' points (all points × training points): the square
    // block is symmetric and computed once per pair, then the remaining rows.
    if n2 > 0 && n1 > n2 && x1[..x2.len()] == *x2 {
        let square = symmetric(x2, n2, x2, n2)?;
        let rest = symmetric(&x1[x2.len()..], n1 - n2, x2, n2)?;
        return Some(AnalyticKernels {
            nngp: crate::linalg::stack_rows(square.nngp.as_ref(), rest.nngp.as_ref()),
            ntk: crate::linalg::stack_rows(square.ntk.as_ref(), rest.ntk.as_ref()),
        });
    }
    symmetric(x1, n1, x2, n2)
}

/// The Gaussian-moment arguments `(q, q', k)` of the first hidden layer for the points `a` and
/// `b`: one for an MLP, one per evaluated position pair for a conv net. What a moment costs by
/// quadrature depends on them (a pair with correlation 1 needs no inner integral), so the time
/// estimate times moments at these.
pub fn first_layer_moment_arguments(
    arch: &NetworkConfig,
    a: &[f64],
    b: &[f64],
) -> Vec<(f64, f64, f64)> {
    if let Some(k) = blocks::BlockKernelConfig::of_network(arch, MomentMethod::Auto(0)) {
        return k.first_activation_arguments(a, b);
    }
    match conv::ConvKernelConfig::of_network(arch, MomentMethod::Auto(0)) {
        Some(c) => c.first_layer_moment_arguments(a, b),
        None => {
            let m = &arch.model;
            let w2 = m.w_std * m.w_std;
            let b2 = if m.bias { m.b_std * m.b_std } else { 0.0 };
            let layer = |x: &[f64], y: &[f64]| w2 * analytic::input_kernel(x, y) + b2;
            vec![(layer(a, a), layer(b, b), layer(a, b))]
        }
    }
}

/// The kernel entries `entry(i, j)` of `n1 × n2` points, rows in parallel; with `same` (the rows'
/// points are the columns') only `j ≥ i` is computed and mirrored, for kernels whose entries are
/// symmetric bit for bit. `None` when an entry is (the computation was stopped).
pub(crate) fn pairwise(
    n1: usize,
    n2: usize,
    same: bool,
    entry: impl Fn(usize, usize) -> Option<(f64, f64)> + Sync,
) -> Option<AnalyticKernels> {
    let rows: Vec<Vec<(f64, f64)>> = (0..n1)
        .into_par_iter()
        .map(|i| {
            (if same { i } else { 0 }..n2)
                .map(|j| entry(i, j))
                .collect::<Option<Vec<_>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    let at = |i: usize, j: usize| match (same, i <= j) {
        (false, _) => rows[i][j],
        (true, true) => rows[i][j - i],
        (true, false) => rows[j][i - j],
    };
    Some(AnalyticKernels {
        nngp: Mat::from_fn(n1, n2, |i, j| at(i, j).0),
        ntk: Mat::from_fn(n1, n2, |i, j| at(i, j).1),
    })
}

/// How a multi-output kernel is represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelForm {
    /// The full `(n1·K) × (n2·K)` kernel, index `point·K + output`.
    Full,
    /// The output-averaged kernel `(1/K) Σ_k Θ_kk`, `n1 × n2` (neural-tangents' default
    /// `trace_axes=(-1,)`).
    Trace,
}

impl KernelForm {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            KernelForm::Full => "full",
            KernelForm::Trace => "trace",
        }
    }

    /// Kernel rows per data point for `k` outputs: `k` in the full form, 1 output-averaged.
    pub fn rows_per_point(self, k: usize) -> usize {
        match self {
            KernelForm::Full => k,
            KernelForm::Trace => 1,
        }
    }
}
