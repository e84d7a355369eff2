//! The network: the checked model description ([`ModelSettings`], the `[model]` table), the
//! burn MLP `input_dim → width × depth hidden layers → n_outputs` built from it, and its
//! activations ([`activation`]).
//!
//! Parametrizations follow neural-tangents exactly (see `NTK_CONVENTIONS.md`):
//! - [`Parametrization::Ntk`]: `z = (σ_w/√n_in)·h·W + σ_b·b` with `W, b ~ N(0, 1)` trainable;
//! - [`Parametrization::Standard`]: `z = h·W + b` with `W ~ N(0, σ_w²/n_in)`, `b ~ N(0, σ_b²)`;
//! - [`Parametrization::Mup`]: the maximal-update parametrization for SGD (see its doc).
//!
//! Parameters are plain (non-autodiff) burn tensors; a training step or a kernel computation
//! lifts them onto the autodiff device as leaves, so the model itself holds no graph.

pub mod activation;
pub mod tangent;

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

pub use activation::Activation;

use crate::backend::{Backend, Precision};
use crate::{Error, Result};

/// How the dense layers scale their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parametrization {
    /// neural-tangents' `parameterization='ntk'`.
    Ntk,
    /// neural-tangents' `parameterization='standard'`.
    Standard,
    /// Maximal-update parametrization for SGD (Yang & Hu 2021; Tensor Programs V, Table 3):
    /// standard storage `z = h·W + b`; input and hidden weights `W ~ N(0, σ_w²/fan_in)`, output
    /// weights `W ~ N(0, σ_w²/fan_in²)` (the readout scaled 1/n instead of 1/√n), biases
    /// `N(0, σ_b²)`; per-layer learning rates `η·fan_out` for input weights and all biases,
    /// `η` for hidden weights and `η/fan_in` for output weights.
    Mup,
}

impl Parametrization {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            Parametrization::Ntk => "ntk",
            Parametrization::Standard => "standard",
            Parametrization::Mup => "mup",
        }
    }
}

/// The checked `[model]` table: one description from which both the burn network
/// ([`MlpConfig::init`]) and the analytic kernels ([`crate::ntk::analytic`]) are built. Field
/// names and serialisation are those of the config file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSettings {
    /// Hidden width n.
    pub width: usize,
    /// Number of hidden layers L (≥ 1).
    pub depth: usize,
    /// Nonlinearity after every hidden layer.
    pub activation: Activation,
    /// σ_w.
    pub w_std: f64,
    /// σ_b.
    pub b_std: f64,
    /// Whether the layers have biases.
    pub bias: bool,
    /// Parametrization.
    pub parametrization: Parametrization,
    /// Precision of the network's tensors.
    pub precision: Precision,
    /// burn backend.
    pub backend: Backend,
}

/// A [`ModelSettings`] on a data set's input and output sizes; [`MlpConfig::init`] builds the
/// [`Mlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct MlpConfig {
    /// Input features d.
    pub input_dim: usize,
    /// Outputs K.
    pub n_outputs: usize,
    /// Width, depth, activation, scales, parametrization, precision and backend.
    pub model: ModelSettings,
}

/// Shape and scale constants of one dense layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerShape {
    /// Fan-in.
    pub n_in: usize,
    /// Fan-out.
    pub n_out: usize,
    /// Factor on `h·W` (σ_w/√n_in under ntk, 1 under standard).
    pub weight_scale: f64,
    /// Factor on `b` (σ_b under ntk, 1 under standard).
    pub bias_scale: f64,
    /// Learning-rate multiplier of the weights (1 except under mup).
    pub weight_lr: f64,
    /// Learning-rate multiplier of the bias (1 except under mup).
    pub bias_lr: f64,
}

/// Trainable tensors of one dense layer.
#[derive(Debug, Clone)]
pub struct LayerParams {
    /// `[n_in, n_out]`
    pub weight: Tensor<2>,
    /// `[n_out]`
    pub bias: Option<Tensor<1>>,
}

/// The network. `forward` maps `[n, input_dim] → [n, n_outputs]`.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// Its configuration.
    pub config: MlpConfig,
    /// Per-layer shapes (depth + 1 dense layers).
    pub shapes: Vec<LayerShape>,
    /// Per-layer parameters, on the plain (non-autodiff) device.
    pub params: Vec<LayerParams>,
    device: Device,
}

impl MlpConfig {
    /// Number of dense layers (hidden layers + readout).
    pub fn n_layers(&self) -> usize {
        self.model.depth + 1
    }

    /// Layer shapes and scale constants.
    pub fn shapes(&self) -> Vec<LayerShape> {
        (0..self.n_layers())
            .map(|l| {
                let n_in = if l == 0 {
                    self.input_dim
                } else {
                    self.model.width
                };
                let n_out = if l == self.model.depth {
                    self.n_outputs
                } else {
                    self.model.width
                };
                let (weight_scale, bias_scale) = match self.model.parametrization {
                    Parametrization::Ntk => {
                        (self.model.w_std / (n_in as f64).sqrt(), self.model.b_std)
                    }
                    Parametrization::Standard | Parametrization::Mup => (1.0, 1.0),
                };
                let (weight_lr, bias_lr) = match self.model.parametrization {
                    Parametrization::Mup if l == 0 => (n_out as f64, n_out as f64),
                    Parametrization::Mup if l == self.model.depth => {
                        (1.0 / n_in as f64, n_out as f64)
                    }
                    Parametrization::Mup => (1.0, n_out as f64),
                    _ => (1.0, 1.0),
                };
                LayerShape {
                    n_in,
                    n_out,
                    weight_scale,
                    bias_scale,
                    weight_lr,
                    bias_lr,
                }
            })
            .collect()
    }

    /// Number of trainable parameters P.
    pub fn n_params(&self) -> usize {
        self.shapes()
            .iter()
            .map(|s| s.n_in * s.n_out + if self.model.bias { s.n_out } else { 0 })
            .sum()
    }

    /// Builds the network with parameters drawn from a `StdRng` seeded with `seed`
    /// (layer by layer: weights row-major, then biases). Same seed → bit-identical parameters.
    pub fn init(&self, seed: u64) -> Mlp {
        let mut rng = StdRng::seed_from_u64(seed);
        let shapes = self.shapes();
        let flat: Vec<f64> = {
            let mut v = Vec::with_capacity(self.n_params());
            for (l, s) in shapes.iter().enumerate() {
                let w_std = match self.model.parametrization {
                    Parametrization::Ntk => 1.0,
                    Parametrization::Standard => self.model.w_std / (s.n_in as f64).sqrt(),
                    Parametrization::Mup if l == self.model.depth => {
                        self.model.w_std / s.n_in as f64
                    }
                    Parametrization::Mup => self.model.w_std / (s.n_in as f64).sqrt(),
                };
                let b_std = match self.model.parametrization {
                    Parametrization::Ntk => 1.0,
                    Parametrization::Standard | Parametrization::Mup => self.model.b_std,
                };
                for _ in 0..s.n_in * s.n_out {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    v.push(w_std * z);
                }
                if self.model.bias {
                    for _ in 0..s.n_out {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        v.push(b_std * z);
                    }
                }
            }
            v
        };
        let mut mlp = Mlp {
            config: self.clone(),
            shapes,
            params: Vec::new(),
            device: self.model.backend.device(),
        };
        mlp.params = mlp.unflatten(&flat);
        mlp
    }
}

/// Builds a float tensor of the given dtype from f64 values.
pub fn tensor_from_f64<const D: usize>(
    values: &[f64],
    shape: [usize; D],
    dtype: DType,
    device: &Device,
) -> Tensor<D> {
    let data = match dtype {
        DType::F64 => TensorData::new(values.to_vec(), shape),
        _ => TensorData::new(
            values.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
            shape,
        ),
    };
    Tensor::from_data(data, (device, dtype))
}

/// Reads a float tensor into f64 values (row-major).
pub fn tensor_to_f64<const D: usize>(t: Tensor<D>) -> Result<Vec<f64>> {
    let data = t.into_data();
    data.try_into_vec_as::<f64>()
        .map_err(|e| Error::Backend(format!("{e:?}")))
}

impl Mlp {
    /// The plain device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// dtype of the network's tensors.
    pub fn dtype(&self) -> DType {
        self.config.model.precision.dtype()
    }

    /// Builds an input tensor `[n, d]` from row-major f64 values.
    pub fn input(&self, x: &[f64], n: usize) -> Tensor<2> {
        tensor_from_f64(x, [n, self.config.input_dim], self.dtype(), &self.device)
    }

    /// Forward pass with the given parameters (plain or autodiff tensors).
    ///
    /// `x: [n, input_dim]` → `[n, n_outputs]`.
    pub fn forward_with(&self, params: &[LayerParams], x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        let last = self.shapes.len() - 1;
        for (l, (s, p)) in self.shapes.iter().zip(params).enumerate() {
            let mut z = if s.weight_scale == 1.0 {
                h.matmul(p.weight.clone())
            } else {
                h.matmul(p.weight.clone()).mul_scalar(s.weight_scale)
            };
            if let Some(b) = &p.bias {
                let b = if s.bias_scale == 1.0 {
                    b.clone()
                } else {
                    b.clone().mul_scalar(s.bias_scale)
                };
                z = z + b.unsqueeze::<2>();
            }
            h = if l == last {
                z
            } else {
                self.config.model.activation.forward(z)
            };
        }
        h
    }

    /// Forward pass with the current parameters, no autodiff: `[n, d] → [n, K]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_with(&self.params, x)
    }

    /// Predictions on row-major f64 inputs, as row-major f64 `[n, K]`.
    pub fn predict(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        tensor_to_f64(self.forward(self.input(x, n)))
    }

    /// Parameters lifted onto the autodiff device as leaves that require gradients.
    pub fn params_requiring_grad(&self) -> Vec<LayerParams> {
        self.params
            .iter()
            .map(|p| LayerParams {
                weight: p.weight.clone().autodiff().require_grad(),
                bias: p.bias.clone().map(|b| b.autodiff().require_grad()),
            })
            .collect()
    }

    /// Parameters lifted onto the autodiff device as constants (no gradient retained).
    pub fn params_constant_autodiff(&self) -> Vec<LayerParams> {
        self.params
            .iter()
            .map(|p| LayerParams {
                weight: p.weight.clone().autodiff(),
                bias: p.bias.clone().map(|b| b.autodiff()),
            })
            .collect()
    }

    /// Per-layer flattened parameters (weights row-major, then bias), f64.
    pub fn flatten_layers(&self) -> Result<Vec<Vec<f64>>> {
        self.params
            .iter()
            .map(|p| {
                let mut v = tensor_to_f64(p.weight.clone())?;
                if let Some(b) = &p.bias {
                    v.extend(tensor_to_f64(b.clone())?);
                }
                Ok(v)
            })
            .collect()
    }

    /// All parameters as one f64 vector (layer by layer).
    pub fn flatten(&self) -> Result<Vec<f64>> {
        Ok(self.flatten_layers()?.concat())
    }

    /// Builds per-layer parameters from a flat vector (inverse of [`Mlp::flatten`]).
    pub fn unflatten(&self, flat: &[f64]) -> Vec<LayerParams> {
        let mut offset = 0;
        let dtype = self.dtype();
        self.shapes
            .iter()
            .map(|s| {
                let nw = s.n_in * s.n_out;
                let weight = tensor_from_f64(
                    &flat[offset..offset + nw],
                    [s.n_in, s.n_out],
                    dtype,
                    &self.device,
                );
                offset += nw;
                let bias = if self.config.model.bias {
                    let b = tensor_from_f64(
                        &flat[offset..offset + s.n_out],
                        [s.n_out],
                        dtype,
                        &self.device,
                    );
                    offset += s.n_out;
                    Some(b)
                } else {
                    None
                };
                LayerParams { weight, bias }
            })
            .collect()
    }

    /// Replaces the parameters by those of a flat vector.
    pub fn set_flat(&mut self, flat: &[f64]) {
        self.params = self.unflatten(flat);
    }
}

/// One dense layer's parameters as f64 values.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerValues {
    /// Fan-in.
    pub n_in: usize,
    /// Fan-out.
    pub n_out: usize,
    /// `W`, row-major `n_in × n_out`.
    pub weight: Vec<f64>,
    /// `b` (empty without biases).
    pub bias: Vec<f64>,
}

impl LayerValues {
    /// `W` as a matrix.
    pub fn weight_matrix(&self) -> faer::Mat<f64> {
        crate::linalg::mat_from_rows(&self.weight, self.n_in, self.n_out)
    }
}

impl Mlp {
    /// Every layer's parameters as f64 values.
    pub fn layer_values(&self) -> Result<Vec<LayerValues>> {
        self.params
            .iter()
            .zip(&self.shapes)
            .map(|(p, s)| {
                Ok(LayerValues {
                    n_in: s.n_in,
                    n_out: s.n_out,
                    weight: tensor_to_f64(p.weight.clone())?,
                    bias: match &p.bias {
                        Some(b) => tensor_to_f64(b.clone())?,
                        None => Vec::new(),
                    },
                })
            })
            .collect()
    }
}

/// Relative parameter changes between two parameter sets of one network.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterChange {
    /// ‖θ − θ0‖/‖θ0‖ over all parameters.
    pub total: f64,
    /// Per layer, weights and bias together.
    pub per_layer: Vec<f64>,
    /// ‖W − W0‖_F/‖W0‖_F per layer.
    pub weight: Vec<f64>,
    /// ‖b − b0‖/‖b0‖ per layer (NaN without biases).
    pub bias: Vec<f64>,
    /// ‖W − W0‖₂/‖W0‖₂ per layer (spectral norms).
    pub weight_spectral: Vec<f64>,
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn sq_norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum()
}

fn ratio(num_sq: f64, den_sq: f64) -> f64 {
    if den_sq == 0.0 {
        if num_sq == 0.0 {
            0.0
        } else if num_sq.is_nan() {
            f64::NAN
        } else {
            f64::INFINITY
        }
    } else {
        (num_sq / den_sq).sqrt()
    }
}

impl ParameterChange {
    /// Changes of `now` relative to `init`; `init_spectral` are the spectral norms of `init`'s
    /// weight matrices ([`spectral_norms`]).
    pub fn between(
        now: &[LayerValues],
        init: &[LayerValues],
        init_spectral: &[f64],
    ) -> Result<Self> {
        let mut c = ParameterChange {
            total: 0.0,
            per_layer: Vec::new(),
            weight: Vec::new(),
            bias: Vec::new(),
            weight_spectral: Vec::new(),
        };
        let (mut num, mut den) = (0.0, 0.0);
        for ((a, b), s0) in now.iter().zip(init).zip(init_spectral) {
            let (dw, w0) = (sq_dist(&a.weight, &b.weight), sq_norm(&b.weight));
            let (db, b0) = (sq_dist(&a.bias, &b.bias), sq_norm(&b.bias));
            num += dw + db;
            den += w0 + b0;
            c.per_layer.push(ratio(dw + db, w0 + b0));
            c.weight.push(ratio(dw, w0));
            c.bias.push(if b.bias.is_empty() {
                f64::NAN
            } else {
                ratio(db, b0)
            });
            let diff = crate::linalg::mat_from_rows(
                &a.weight
                    .iter()
                    .zip(&b.weight)
                    .map(|(x, y)| x - y)
                    .collect::<Vec<_>>(),
                a.n_in,
                a.n_out,
            );
            let s = if dw.is_finite() {
                crate::linalg::spectral_norm(diff.as_ref())?
            } else {
                f64::NAN
            };
            c.weight_spectral.push(ratio(s * s, s0 * s0));
        }
        c.total = ratio(num, den);
        Ok(c)
    }
}

/// Spectral norms ‖W‖₂ of every layer's weight matrix.
pub fn spectral_norms(layers: &[LayerValues]) -> Result<Vec<f64>> {
    layers
        .iter()
        .map(|l| crate::linalg::spectral_norm(l.weight_matrix().as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n_in: usize, n_out: usize, seed: u64, bias: bool) -> LayerValues {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        LayerValues {
            n_in,
            n_out,
            weight: (0..n_in * n_out).map(|_| next()).collect(),
            bias: if bias {
                (0..n_out).map(|_| next()).collect()
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn parameter_changes_split_weights_biases_and_spectral_norms() {
        let init = vec![layer(5, 7, 1, true), layer(7, 3, 2, false)];
        let mut now = init.clone();
        now[0].bias.iter_mut().for_each(|b| *b *= 3.0); // bias only
        now[1].weight = layer(7, 3, 9, false).weight;
        let spectral0 = spectral_norms(&init).unwrap();
        let c = ParameterChange::between(&now, &init, &spectral0).unwrap();
        assert_eq!(c.weight[0], 0.0);
        assert!((c.bias[0] - 2.0).abs() < 1e-14, "‖3b − b‖/‖b‖ = 2");
        assert!(c.bias[1].is_nan(), "no biases in layer 1");
        let dw: Vec<f64> = now[1]
            .weight
            .iter()
            .zip(&init[1].weight)
            .map(|(a, b)| a - b)
            .collect();
        let svd = |v: &[f64]| {
            crate::linalg::mat_from_rows(v, 7, 3)
                .singular_values()
                .unwrap()
                .into_iter()
                .fold(0.0f64, f64::max)
        };
        let expected = svd(&dw) / svd(&init[1].weight);
        assert!((c.weight_spectral[1] - expected).abs() < 1e-9 * expected);
        let total = ((sq_dist(&now[0].bias, &init[0].bias) + sq_dist(&dw, &[0.0; 21]))
            / init
                .iter()
                .map(|l| sq_norm(&l.weight) + sq_norm(&l.bias))
                .sum::<f64>())
        .sqrt();
        assert!((c.total - total).abs() < 1e-14);
    }
}
