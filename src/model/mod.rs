//! The network: the checked model description ([`ModelSettings`], the `[model]` table), the
//! burn MLP `input_dim → width × depth hidden layers → n_outputs` built from it, and its
//! activations (`activation.rs`).
//!
//! Parametrizations follow neural-tangents' `stax` exactly (`docs/conventions.md`):
//! - [`Parametrization::Ntk`]: `z = (σ_w/√n_in)·h·W + σ_b·b` with `W, b ~ N(0, 1)` trainable;
//! - [`Parametrization::Standard`]: `z = h·W + b` with `W ~ N(0, σ_w²/n_in)`, `b ~ N(0, σ_b²)`;
//! - [`Parametrization::Mup`]: the maximal-update parametrization for SGD (see its doc).
//!
//! Parameters are plain (non-autodiff) burn tensors; a training step or a kernel computation
//! lifts them onto the autodiff device as leaves, so the model itself holds no graph.

pub(crate) mod activation;
pub mod blocks;
pub(crate) mod flow;
pub mod layers;
pub(crate) mod tangent;

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

pub use activation::Activation;
pub use layers::{Architecture, ConvSettings, ImageShape, LayerInput};

use crate::backend::{Backend, Precision};
use crate::{Error, Result};

/// A row-major array of any rank `(name, values, shape)`: a named parameter tensor.
pub type NamedArray = (String, Vec<f64>, Vec<usize>);

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
/// ([`NetworkConfig::init`]) and the analytic kernels ([`crate::ntk::analytic`]) are built. Field
/// names and serialisation are those of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// MLP or conv net (with its filter, padding, readout and input image).
    pub architecture: Architecture,
    /// Hidden width n (channels of every convolution in a conv net).
    pub width: usize,
    /// Number of hidden layers L (≥ 1): dense layers, or convolutions in a conv net.
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
    /// An explicit layer stack (`model.blocks`) instead of `depth` × [layer, activation]; when
    /// set, `depth` is the number of its dense layers and convolutions.
    pub blocks: Option<Vec<blocks::Block>>,
}

/// The `[model]` table as a config file writes it: the architecture's keys first, then the
/// rest; with `blocks`, the keys the stack replaces (`depth`, a conv net's `filter` and
/// `padding`) are left out, so that the written config reads back.
impl Serialize for ModelSettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match (self.architecture, &self.blocks) {
            (Architecture::Mlp, _) => {}
            (Architecture::Conv(c), Some(_)) => {
                m.serialize_entry("architecture", "conv")?;
                m.serialize_entry("readout", &c.readout)?;
            }
            (Architecture::Conv(c), None) => {
                m.serialize_entry("architecture", "conv")?;
                m.serialize_entry("filter", &c.filter)?;
                m.serialize_entry("padding", &c.padding)?;
                m.serialize_entry("readout", &c.readout)?;
            }
        }
        m.serialize_entry("width", &self.width)?;
        if self.blocks.is_none() {
            m.serialize_entry("depth", &self.depth)?;
        }
        m.serialize_entry("activation", &self.activation)?;
        m.serialize_entry("w_std", &self.w_std)?;
        m.serialize_entry("b_std", &self.b_std)?;
        m.serialize_entry("bias", &self.bias)?;
        m.serialize_entry("parametrization", &self.parametrization)?;
        m.serialize_entry("precision", &self.precision)?;
        m.serialize_entry("backend", &self.backend)?;
        if let Some(b) = &self.blocks {
            m.serialize_entry("blocks", b)?;
        }
        m.end()
    }
}

/// A [`ModelSettings`] on a data set's input and output sizes; [`NetworkConfig::init`] builds the
/// [`Network`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
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
    /// How the weights see the previous layer's output.
    pub input: LayerInput,
    /// Fan-in (`f²·C` for a convolution).
    pub n_in: usize,
    /// Fan-out (output channels for a convolution).
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

impl LayerShape {
    /// `s_w·a·W + s_b·b` for the presented input `a` (plain or autodiff tensors).
    pub(crate) fn affine(&self, p: &LayerParams, a: Tensor<2>) -> Tensor<2> {
        let mut z = if self.weight_scale == 1.0 {
            a.matmul(p.weight.clone())
        } else {
            a.matmul(p.weight.clone()).mul_scalar(self.weight_scale)
        };
        if let Some(b) = &p.bias {
            let b = if self.bias_scale == 1.0 {
                b.clone()
            } else {
                b.clone().mul_scalar(self.bias_scale)
            };
            z = z + b.unsqueeze::<2>();
        }
        z
    }
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
pub struct Network {
    /// Its configuration.
    pub config: NetworkConfig,
    /// Per-layer shapes (depth + 1 dense layers).
    pub shapes: Vec<LayerShape>,
    /// Per-layer parameters, on the plain (non-autodiff) device.
    pub params: Vec<LayerParams>,
    /// The ops of an explicit stack (`model.blocks`); `None`: `depth` × [layer, activation].
    pub(crate) ops: Option<Vec<blocks::Op>>,
    device: Device,
}

impl NetworkConfig {
    /// Number of dense layers (hidden layers + readout).
    pub fn n_layers(&self) -> usize {
        self.model.depth + 1
    }

    /// The checked stack of `model.blocks` (`None` without one).
    pub fn program(&self) -> Option<blocks::Program> {
        let stack = self.model.blocks.as_ref()?;
        let (input, readout) = match self.model.architecture {
            Architecture::Mlp => (
                blocks::StackInput::Features(self.input_dim),
                layers::Readout::Flatten,
            ),
            Architecture::Conv(c) => (blocks::StackInput::Image(c.image), c.readout),
        };
        Some(
            blocks::compile(stack, input, self.model.width, readout, self.n_outputs)
                .expect("the config check compiles model.blocks"),
        )
    }

    /// `(input, n_in, n_out)` of every layer.
    fn layer_inputs(&self) -> Vec<(LayerInput, usize, usize)> {
        if let Some(p) = self.program() {
            return p.layers;
        }
        let (depth, width, k) = (self.model.depth, self.model.width, self.n_outputs);
        match self.model.architecture {
            Architecture::Mlp => (0..=depth)
                .map(|l| {
                    let n_in = if l == 0 { self.input_dim } else { width };
                    let n_out = if l == depth { k } else { width };
                    (LayerInput::Dense, n_in, n_out)
                })
                .collect(),
            Architecture::Conv(c) => {
                let sizes = c
                    .spatial_sizes(depth)
                    .expect("the config check keeps positions after every convolution");
                let mut layers: Vec<(LayerInput, usize, usize)> = sizes
                    .windows(2)
                    .enumerate()
                    .map(|(l, w)| {
                        let channels = if l == 0 { c.image.channels } else { width };
                        let g = layers::ConvGeometry {
                            input: w[0],
                            output: w[1],
                            channels,
                            filter: c.filter,
                            pad: c.padding.zeros(c.filter),
                            pad_cols: None,
                            stride: 1,
                        };
                        (
                            LayerInput::Patches(g),
                            c.filter * c.filter * channels,
                            width,
                        )
                    })
                    .collect();
                let positions = sizes[depth].positions();
                layers.push(match c.readout {
                    layers::Readout::Flatten => {
                        (LayerInput::Flatten { positions }, positions * width, k)
                    }
                    layers::Readout::GlobalAvgPool => {
                        (LayerInput::AveragePool { positions }, width, k)
                    }
                });
                layers
            }
        }
    }

    /// Layer shapes and scale constants.
    pub fn shapes(&self) -> Vec<LayerShape> {
        self.layer_inputs()
            .into_iter()
            .enumerate()
            .map(|(l, (input, n_in, n_out))| {
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
                    input,
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

    /// The network in words, e.g. `conv net: 2 × [Conv(64 channels, 3×3, stride 1, same
    /// padding), relu] → flatten → dense(10) on 8×8×1 images; ntk parametrization`.
    pub fn describe(&self) -> String {
        let m = &self.model;
        let act = m.activation.name();
        let body = match (m.architecture, &m.blocks) {
            (Architecture::Mlp, Some(b)) => format!(
                "residual/normalised MLP, width {}: {} → dense({}) on {} inputs (act = {act})",
                m.width,
                blocks::describe(b),
                self.n_outputs,
                self.input_dim
            ),
            (Architecture::Conv(c), Some(b)) => format!(
                "conv net, {} channels: {} → {} → dense({}) on {}×{}×{} images (act = {act})",
                m.width,
                blocks::describe(b),
                c.readout.words(),
                self.n_outputs,
                c.image.height,
                c.image.width,
                c.image.channels,
            ),
            _ => self.describe_plain(),
        };
        format!(
            "{body}; {} parametrization{}",
            m.parametrization.name(),
            if m.bias { "" } else { ", no biases" }
        )
    }

    fn describe_plain(&self) -> String {
        let m = &self.model;
        let act = m.activation.name();
        match m.architecture {
            Architecture::Mlp => format!(
                "MLP: {} × [dense({}), {act}] → dense({}) on {} inputs",
                m.depth, m.width, self.n_outputs, self.input_dim
            ),
            Architecture::Conv(c) => format!(
                "conv net: {} × [Conv({} channels, {f}×{f}, stride 1, {} padding), {act}] → {} → dense({}) on {}×{}×{} images",
                m.depth,
                m.width,
                match c.padding {
                    layers::Padding::Same => "same",
                    layers::Padding::Valid => "valid",
                },
                c.readout.words(),
                self.n_outputs,
                c.image.height,
                c.image.width,
                c.image.channels,
                f = c.filter,
            ),
        }
    }

    /// Number of trainable parameters P.
    pub fn n_params(&self) -> usize {
        self.shapes()
            .iter()
            .map(|s| s.n_in * s.n_out + if self.model.bias { s.n_out } else { 0 })
            .sum()
    }

    /// Builds the network with parameters drawn from seeded normal streams: every
    /// `(layer, weight | bias, chunk of INIT_CHUNK values)` has its own `StdRng` seeded from
    /// `seed` and those indices, so the chunks are drawn in parallel and the parameters are
    /// bit-identical for any thread count. Values are drawn in f64 and stored in the network's
    /// precision.
    pub fn init(&self, seed: u64) -> Network {
        let shapes = self.shapes();
        let device = self.model.backend.device();
        let dtype = self.model.precision.dtype();
        let params = shapes
            .iter()
            .enumerate()
            .map(|(l, s)| {
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
                let data = |part: u64, n: usize, std: f64, shape: Vec<usize>| {
                    normals(seed, l as u64, part, n, std, dtype, shape)
                };
                LayerParams {
                    weight: Tensor::<2>::from_data(
                        data(0, s.n_in * s.n_out, w_std, vec![s.n_in, s.n_out]),
                        (&device, dtype),
                    ),
                    bias: self.model.bias.then(|| {
                        Tensor::<1>::from_data(
                            data(1, s.n_out, b_std, vec![s.n_out]),
                            (&device, dtype),
                        )
                    }),
                }
            })
            .collect();
        Network {
            config: self.clone(),
            shapes,
            params,
            ops: self.program().map(|p| p.ops),
            device,
        }
    }
}

/// Values per random stream of [`NetworkConfig::init`].
pub const INIT_CHUNK: usize = 1 << 16;

/// The seed of one stream (SplitMix64 of the seed and the stream's indices).
fn stream_seed(seed: u64, layer: u64, part: u64, chunk: u64) -> u64 {
    let mut z = seed
        ^ layer.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ part.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ chunk.wrapping_mul(0x1656_67B1_9E37_79F9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` values `std·N(0, 1)` from the streams of one (layer, part), in `dtype`.
fn normals(
    seed: u64,
    layer: u64,
    part: u64,
    n: usize,
    std: f64,
    dtype: DType,
    shape: Vec<usize>,
) -> TensorData {
    use rayon::prelude::*;
    fn fill<T: Send>(
        out: &mut [T],
        seed: u64,
        layer: u64,
        part: u64,
        std: f64,
        cast: impl Fn(f64) -> T + Sync,
    ) {
        out.par_chunks_mut(INIT_CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let mut rng = StdRng::seed_from_u64(stream_seed(seed, layer, part, c as u64));
                for v in chunk.iter_mut() {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *v = cast(std * z);
                }
            });
    }
    match dtype {
        DType::F64 => {
            let mut v = vec![0.0f64; n];
            fill(&mut v, seed, layer, part, std, |x| x);
            TensorData::new(v, shape)
        }
        _ => {
            let mut v = vec![0.0f32; n];
            fill(&mut v, seed, layer, part, std, |x| x as f32);
            TensorData::new(v, shape)
        }
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

impl Network {
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
        if let Some(ops) = &self.ops {
            let act = self.config.model.activation;
            return flow::run(ops, x, act, &mut |l, h| {
                self.shapes[l].affine(&params[l], self.shapes[l].input.present(h))
            });
        }
        let mut h = x;
        let last = self.shapes.len() - 1;
        for (l, (s, p)) in self.shapes.iter().zip(params).enumerate() {
            let z = s.affine(p, s.input.present(h));
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

    /// The parameters as neural-tangents' `stax` lays them out, one named array per layer `l`:
    /// `layer<l>_W` (`[n_in, n_out]` for a dense layer, `[f, f, C_in, C_out]` — HWIO — for a
    /// convolution) and `layer<l>_b` (`[n_out]`), the values as stored (under `ntk` the
    /// standard-normal draws that the forward pass scales by σ_w/√n_in and σ_b, as
    /// `stax.Dense`/`stax.Conv` with `parameterization="ntk"`).
    pub fn named_parameters(&self) -> Result<Vec<NamedArray>> {
        let mut out = Vec::new();
        for (l, (s, p)) in self.shapes.iter().zip(&self.params).enumerate() {
            let shape = match s.input {
                layers::LayerInput::Patches(g) => vec![g.filter, g.filter, g.channels, s.n_out],
                _ => vec![s.n_in, s.n_out],
            };
            out.push((
                format!("layer{l}_W"),
                tensor_to_f64(p.weight.clone())?,
                shape,
            ));
            if let Some(b) = &p.bias {
                out.push((
                    format!("layer{l}_b"),
                    tensor_to_f64(b.clone())?,
                    vec![s.n_out],
                ));
            }
        }
        Ok(out)
    }

    /// All parameters as one f64 vector (layer by layer).
    pub fn flatten(&self) -> Result<Vec<f64>> {
        Ok(self.flatten_layers()?.concat())
    }

    /// Builds per-layer parameters from a flat vector (inverse of [`Network::flatten`]).
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

/// Rows per block when a weight matrix is summed in f64.
const SUM_BLOCK_ROWS: usize = 256;

/// `Σ x²` of a matrix, summed in f64 (cast in row blocks so the f64 temporary stays small).
fn sum_sq2(t: &Tensor<2>) -> Result<f64> {
    let [rows, _] = t.dims();
    let mut s = 0.0;
    let mut r0 = 0;
    while r0 < rows {
        let n = SUM_BLOCK_ROWS.min(rows - r0);
        let block = t
            .clone()
            .narrow(0, r0, n)
            .cast(burn::tensor::FloatDType::F64);
        s += block.square().sum().into_scalar::<f64>();
        r0 += n;
    }
    Ok(s)
}

/// `Σ x²` of a vector, in f64.
fn sum_sq1(t: &Tensor<1>) -> f64 {
    t.clone()
        .cast(burn::tensor::FloatDType::F64)
        .square()
        .sum()
        .into_scalar::<f64>()
}

/// Relative tolerance of a spectral norm from products in precision `p` (on ‖W‖₂²).
fn spectral_rtol(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1e-6,
        Precision::F64 => 1e-10,
    }
}

/// ‖W‖₂ by Lanczos on `v ↦ Wᵀ(W v)` with products in the tensor's precision (no copy of W).
fn spectral_norm(w: &Tensor<2>, p: Precision) -> Result<f64> {
    let [n_in, n_out] = w.dims();
    if n_in == 0 || n_out == 0 {
        return Ok(0.0);
    }
    let (dev, dtype) = (w.device(), w.dtype());
    let l = crate::linalg::lanczos_lambda_max(
        n_out,
        |v| {
            let vt = tensor_from_f64(v, [n_out, 1], dtype, &dev);
            let u = w.clone().matmul(vt);
            tensor_to_f64(w.clone().transpose().matmul(u))
        },
        crate::linalg::LANCZOS_MAX_ITER,
        spectral_rtol(p),
    )?;
    Ok(l.max(0.0).sqrt())
}

impl Network {
    /// Spectral norms ‖W‖₂ of every layer's weight matrix.
    pub fn weight_spectral_norms(&self) -> Result<Vec<f64>> {
        let p = self.config.model.precision;
        self.params
            .iter()
            .map(|l| spectral_norm(&l.weight, p))
            .collect()
    }

    /// Changes of these parameters relative to `init`'s (the same network earlier), in the
    /// network's precision with f64 sums; `init_spectral` are `init`'s
    /// [`Network::weight_spectral_norms`].
    pub fn change_from(&self, init: &Network, init_spectral: &[f64]) -> Result<ParameterChange> {
        let p = self.config.model.precision;
        let mut c = ParameterChange {
            total: 0.0,
            per_layer: Vec::new(),
            weight: Vec::new(),
            bias: Vec::new(),
            weight_spectral: Vec::new(),
        };
        let (mut num, mut den) = (0.0, 0.0);
        for ((a, b), s0) in self.params.iter().zip(&init.params).zip(init_spectral) {
            let dw_t = a.weight.clone() - b.weight.clone();
            let (dw, w0) = (sum_sq2(&dw_t)?, sum_sq2(&b.weight)?);
            let (db, b0) = match (&a.bias, &b.bias) {
                (Some(x), Some(y)) => (sum_sq1(&(x.clone() - y.clone())), sum_sq1(y)),
                _ => (0.0, 0.0),
            };
            num += dw + db;
            den += w0 + b0;
            c.per_layer.push(ratio(dw + db, w0 + b0));
            c.weight.push(ratio(dw, w0));
            c.bias.push(if b.bias.is_none() {
                f64::NAN
            } else {
                ratio(db, b0)
            });
            let s = if dw.is_finite() {
                spectral_norm(&dw_t, p)?
            } else {
                f64::NAN
            };
            c.weight_spectral.push(ratio(s * s, s0 * s0));
        }
        c.total = ratio(num, den);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(seed: u64) -> Network {
        NetworkConfig {
            input_dim: 5,
            n_outputs: 3,
            model: ModelSettings {
                architecture: Architecture::Mlp,
                width: 7,
                depth: 1,
                activation: Activation::Relu,
                w_std: 1.0,
                b_std: 0.5,
                bias: true,
                parametrization: Parametrization::Standard,
                precision: Precision::F64,
                backend: Backend::Flex,
                blocks: None,
            },
        }
        .init(seed)
    }

    #[test]
    fn parameter_changes_split_weights_biases_and_spectral_norms() {
        let init = net(1);
        let other = net(2);
        // layer 0: biases tripled, weights kept; layer 1: weights replaced, bias kept
        let mut now = init.clone();
        now.params[0].bias = now.params[0].bias.clone().map(|b| b.mul_scalar(3.0));
        now.params[1].weight = other.params[1].weight.clone();
        let s0 = init.weight_spectral_norms().unwrap();
        let c = now.change_from(&init, &s0).unwrap();
        assert_eq!(c.weight[0], 0.0);
        assert!(
            (c.bias[0] - 2.0).abs() < 1e-14,
            "‖3b − b‖/‖b‖ = 2: {}",
            c.bias[0]
        );
        assert_eq!(c.bias[1], 0.0);
        let vals = |t: &Tensor<2>| tensor_to_f64(t.clone()).unwrap();
        let (w1, w0) = (vals(&now.params[1].weight), vals(&init.params[1].weight));
        let dw: Vec<f64> = w1.iter().zip(&w0).map(|(a, b)| a - b).collect();
        let svd = |v: &[f64]| {
            crate::linalg::mat_from_rows(v, 7, 3)
                .singular_values()
                .unwrap()
                .into_iter()
                .fold(0.0f64, f64::max)
        };
        let expected = svd(&dw) / svd(&w0);
        assert!((c.weight_spectral[1] - expected).abs() < 1e-8 * expected);
        let flat = |m: &Network| m.flatten().unwrap();
        let total = crate::metrics::rel_change(&flat(&now), &flat(&init));
        assert!((c.total - total).abs() < 1e-13 * total);
    }

    #[test]
    fn initialisation_is_seeded_and_has_the_right_scale() {
        let a = net(5);
        assert_eq!(a.flatten().unwrap(), net(5).flatten().unwrap());
        assert_ne!(a.flatten().unwrap(), net(6).flatten().unwrap());
        // a wide layer's weights have std σ_w/√n_in (standard parametrization)
        let c = NetworkConfig {
            input_dim: 400,
            n_outputs: 1,
            model: ModelSettings {
                architecture: Architecture::Mlp,
                width: 500,
                ..net(0).config.model
            },
        };
        let w = tensor_to_f64(c.init(3).params[0].weight.clone()).unwrap();
        let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
        assert!(
            (var * 400.0 - 1.0).abs() < 0.01,
            "variance × fan-in = {}",
            var * 400.0
        );
    }
}
