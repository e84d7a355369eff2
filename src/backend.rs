//! The one module that builds burn devices.
//!
//! burn 0.22 chooses the backend at run time through [`Device`]; both CPU backends are compiled in.
//! Tensors carry their dtype explicitly (see [`Precision::dtype`]), so f32 and f64 networks can
//! live in one process without reconfiguring a device.

use burn::tensor::{DType, Device};
use serde::{Deserialize, Serialize};

/// burn CPU backend used by the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex (pure Rust, the faster default).
    Flex,
    /// burn-ndarray (deprecated in burn 0.22, still supported).
    Ndarray,
    /// burn's wgpu backend (cargo feature `wgpu`).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// burn's CUDA backend (cargo feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

impl Backend {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => "wgpu",
            #[cfg(feature = "cuda")]
            Backend::Cuda => "cuda",
        }
    }

    /// The plain (non-autodiff) device of this backend.
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
            #[allow(deprecated)]
            // burn-ndarray is deprecated in 0.22 but is the user's named backend.
            Backend::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
        }
    }
}

/// Floating-point precision of the network's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (default).
    F32,
    /// 64-bit floats.
    F64,
}

impl Precision {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }
}
