//! Neural tangent kernels: the empirical kernel of a finite burn network ([`empirical`]) and the
//! analytic infinite-width NNGP/NTK ([`analytic`], with [`quadrature`] for activations without a
//! closed form).

pub mod analytic;
pub mod conv;
pub mod empirical;
pub mod quadrature;

use serde::{Deserialize, Serialize};

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
