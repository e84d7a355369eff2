//! What kind each layer of the network is. Every layer is linear in its weight matrix,
//! `z = s_w·A(h)·W + s_b·b`, where `A` presents the previous layer's output `h` to the weights:
//! - [`LayerInput::Dense`]: `A(h) = h` (`[n, n_in]`);
//! - [`LayerInput::Patches`]: a stride-1 convolution as a product with the im2col matrix, one row
//!   per (image, output position) holding the `f × f × C` patch it reads (zeros where it reads
//!   padding), so `W` is `[f²·C, C_out]` with row `(dy·f + dx)·C + c` and the layer's fan-in is
//!   `C·f²`, as neural-tangents' `stax.Conv`;
//! - [`LayerInput::Flatten`], [`LayerInput::AveragePool`]: the readouts after the last
//!   convolution (neural-tangents' `Flatten`, `GlobalAvgPool`).
//!
//! Feature maps travel as `[n·P, C]` tensors: row `i·P + p` is image `i` at position `p`
//! (row-major over height and width), which is also the NHWC layout of an input row `[n, H·W·C]`.
//! Because `A` is linear, tangents (`J·t`) and backprop signals pass through it unchanged, and the
//! weight gradient of one image is `Σ_p A(h)_{p}ᵀ δ_p` (a sum over its rows).

use burn::tensor::{ops::PadMode, Tensor};
use serde::{Deserialize, Serialize};

/// Zero padding of a convolution (stride 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// Output as large as the input; `(f − 1)/2` zeros before (rounded down) and the rest after,
    /// as XLA's `SAME`.
    Same,
    /// No padding; the output shrinks by `f − 1` per convolution.
    Valid,
}

impl Padding {
    /// Zeros before the first row (and column) of a feature map and after the last, for an
    /// `f × f` filter.
    pub fn zeros(self, filter: usize) -> (usize, usize) {
        match self {
            Padding::Same => {
                let before = (filter - 1) / 2;
                (before, filter - 1 - before)
            }
            Padding::Valid => (0, 0),
        }
    }

    /// Feature-map size after each of `depth` convolutions with an `f × f` filter (`image`
    /// first), or `None` when a `valid` convolution would leave no positions.
    pub fn spatial_sizes(
        self,
        image: Spatial,
        filter: usize,
        depth: usize,
    ) -> Option<Vec<Spatial>> {
        let mut s = image;
        let mut out = vec![s];
        for _ in 0..depth {
            s = match self {
                Padding::Same => s,
                Padding::Valid => Spatial {
                    height: (s.height + 1).checked_sub(filter).filter(|&h| h > 0)?,
                    width: (s.width + 1).checked_sub(filter).filter(|&w| w > 0)?,
                },
            };
            out.push(s);
        }
        Some(out)
    }
}

/// How the last convolution's feature map is read out before the dense output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// Flatten all positions and channels.
    Flatten,
    /// Average over positions.
    GlobalAvgPool,
}

impl Readout {
    /// The readout in words ("flatten", "global average pool").
    pub fn words(self) -> &'static str {
        match self {
            Readout::Flatten => "flatten",
            Readout::GlobalAvgPool => "global average pool",
        }
    }
}

/// Height and width of a feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spatial {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Spatial {
    /// Number of positions.
    pub fn positions(self) -> usize {
        self.height * self.width
    }
}

/// An image's shape (NHWC): each data row is the image flattened row-major in `(h, w, c)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels.
    pub channels: usize,
}

impl ImageShape {
    /// From `data.image_shape = [height, width, channels]`.
    pub fn from_array(a: [usize; 3]) -> Self {
        ImageShape {
            height: a[0],
            width: a[1],
            channels: a[2],
        }
    }

    /// `[height, width, channels]`.
    pub fn to_array(self) -> [usize; 3] {
        [self.height, self.width, self.channels]
    }

    /// Features per image, `H·W·C` (None on overflow).
    pub fn features(self) -> Option<usize> {
        self.height
            .checked_mul(self.width)?
            .checked_mul(self.channels)
    }

    /// Height and width.
    pub fn spatial(self) -> Spatial {
        Spatial {
            height: self.height,
            width: self.width,
        }
    }
}

/// The convolutional part of `[model]` with `architecture = "conv"`: `depth` convolutions of
/// `width` channels (`f × f`, stride 1), each followed by the activation, a readout, and one dense
/// layer to the outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSettings {
    /// Square filter size f.
    pub filter: usize,
    /// Zero padding of every convolution.
    pub padding: Padding,
    /// Readout before the dense output layer.
    pub readout: Readout,
    /// The input image (from `data.image_shape`; serialised with the data, not the model).
    pub image: ImageShape,
}

impl ConvSettings {
    /// Feature-map size after each convolution (the image first), or `None` when a `valid`
    /// convolution would leave no positions.
    pub fn spatial_sizes(&self, depth: usize) -> Option<Vec<Spatial>> {
        self.padding
            .spatial_sizes(self.image.spatial(), self.filter, depth)
    }
}

/// The network's architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Architecture {
    /// Dense hidden layers.
    Mlp,
    /// Convolutional hidden layers.
    Conv(ConvSettings),
}

impl Architecture {
    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mlp => "mlp",
            Architecture::Conv(_) => "conv",
        }
    }
}

/// Serialises into the `[model]` table: nothing for the MLP (the default; configs written before
/// convolutions existed stay byte-identical), `architecture`, `filter`, `padding` and `readout`
/// for a conv net.
impl Serialize for Architecture {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Architecture::Mlp => s.serialize_map(Some(0))?.end(),
            Architecture::Conv(c) => {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("architecture", "conv")?;
                m.serialize_entry("filter", &c.filter)?;
                m.serialize_entry("padding", &c.padding)?;
                m.serialize_entry("readout", &c.readout)?;
                m.end()
            }
        }
    }
}

/// The geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input feature-map size.
    pub input: Spatial,
    /// Output feature-map size.
    pub output: Spatial,
    /// Input channels.
    pub channels: usize,
    /// Filter size f.
    pub filter: usize,
    /// Zeros before and after each row of the map (the vertical axis), and each column.
    pub pad: (usize, usize),
    /// Zeros before and after each column's axis (the horizontal one), when it differs from
    /// the vertical (strided `same` convolutions of non-square maps); `None`: as `pad`.
    pub pad_cols: Option<(usize, usize)>,
    /// Stride in both directions.
    pub stride: usize,
}

/// Output size and zeros `(before, after)` of a window of `f` with stride `s` on `n` positions
/// (XLA's rules: `same` gives `⌈n/s⌉` outputs with the padding split evenly, the extra zero
/// after; `valid` gives `⌊(n − f)/s⌋ + 1`), or `None` when nothing is left.
pub fn window_extent(
    n: usize,
    f: usize,
    s: usize,
    padding: Padding,
) -> Option<(usize, (usize, usize))> {
    match padding {
        Padding::Same => {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + f).saturating_sub(n);
            (out > 0).then_some((out, (total / 2, total - total / 2)))
        }
        Padding::Valid => (n >= f).then(|| ((n - f) / s + 1, (0, 0))),
    }
}

impl ConvGeometry {
    /// A convolution of an `f × f` filter with stride `s` on a `channels`-channel map.
    pub fn new(
        input: Spatial,
        channels: usize,
        filter: usize,
        stride: usize,
        padding: Padding,
    ) -> std::result::Result<ConvGeometry, String> {
        if filter == 0 || stride == 0 {
            return Err("a filter and a stride of at least 1".into());
        }
        let (rows, cols) = match (
            window_extent(input.height, filter, stride, padding),
            window_extent(input.width, filter, stride, padding),
        ) {
            (Some(r), Some(c)) => (r, c),
            _ => {
                return Err(format!(
                    "a filter that fits the {}×{} map it reads with {} padding",
                    input.height,
                    input.width,
                    match padding {
                        Padding::Same => "same",
                        Padding::Valid => "valid",
                    }
                ))
            }
        };
        Ok(ConvGeometry {
            input,
            output: Spatial {
                height: rows.0,
                width: cols.0,
            },
            channels,
            filter,
            pad: rows.1,
            pad_cols: (cols.1 != rows.1).then_some(cols.1),
            stride,
        })
    }

    /// Zeros before and after the columns.
    pub fn pad_cols(&self) -> (usize, usize) {
        self.pad_cols.unwrap_or(self.pad)
    }
}

/// The geometry of an average pooling: like a convolution's, with a window instead of a filter,
/// dividing by `window²` (padded positions count as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// The window as a (weightless) convolution's geometry.
    pub window: ConvGeometry,
    /// Output feature-map size.
    pub output: Spatial,
}

impl PoolGeometry {
    /// Average pooling over `w × w` windows with stride `s`.
    pub fn new(
        input: Spatial,
        channels: usize,
        window: usize,
        stride: usize,
        padding: Padding,
    ) -> std::result::Result<PoolGeometry, String> {
        let g = ConvGeometry::new(input, channels, window, stride, padding)?;
        Ok(PoolGeometry {
            window: g,
            output: g.output,
        })
    }

    /// The pooled map of `h` (`[n·P_in, C]` → `[n·P_out, C]`; plain or autodiff tensors): the
    /// mean over each window's `w²` taps, zeros included.
    pub fn apply(&self, h: Tensor<2>) -> Tensor<2> {
        let g = self.window;
        let taps = window_taps(&g, h);
        let [n, ho, wo, c] = taps[0].dims();
        let ff = taps.len() as f64;
        let mut sum = taps[0].clone();
        for t in &taps[1..] {
            sum = sum + t.clone();
        }
        sum.div_scalar(ff).reshape([n * ho * wo, c])
    }
}

/// The `f²` shifted (and strided) views of a padded feature map that a window reads, each
/// `[n, H_out, W_out, C]`, in filter-tap order `(dy, dx)` row-major.
fn window_taps(g: &ConvGeometry, h: Tensor<2>) -> Vec<Tensor<4>> {
    use burn::tensor::Slice;
    let [rows, cols] = h.dims();
    let c = g.channels;
    let n = rows * cols / (g.input.positions() * c);
    let x = h.reshape([n, g.input.height, g.input.width, c]);
    let (rb, ra) = g.pad;
    let (cb, ca) = g.pad_cols();
    let x = if rb + ra + cb + ca > 0 {
        x.pad([(rb, ra), (cb, ca), (0, 0)], PadMode::Constant(0.0))
    } else {
        x
    };
    let (ho, wo, f, s) = (g.output.height, g.output.width, g.filter, g.stride);
    (0..f * f)
        .map(|t| {
            let (dy, dx) = ((t / f) as isize, (t % f) as isize);
            let (s_, ho_, wo_) = (s as isize, ho as isize, wo as isize);
            x.clone().slice([
                Slice::new(0, Some(n as isize), 1),
                Slice::new(dy, Some(dy + (ho_ - 1) * s_ + 1), s_),
                Slice::new(dx, Some(dx + (wo_ - 1) * s_ + 1), s_),
                Slice::new(0, Some(c as isize), 1),
            ])
        })
        .collect()
}

/// How a layer's weights see the previous layer's output (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerInput {
    /// `[n, n_in]` as it is.
    Dense,
    /// im2col patches of a feature map `[n·P_in, C]` → `[n·P_out, f²·C]`.
    Patches(ConvGeometry),
    /// `[n·P, C]` → `[n, P·C]`.
    Flatten {
        /// Positions P.
        positions: usize,
    },
    /// `[n·P, C]` → `[n, C]`, the mean over positions.
    AveragePool {
        /// Positions P.
        positions: usize,
    },
}

impl LayerInput {
    /// Rows per image of the layer's presented input and of its output (positions of a
    /// convolution's output; 1 otherwise).
    pub fn rows_per_image(&self) -> usize {
        match self {
            LayerInput::Patches(g) => g.output.positions(),
            _ => 1,
        }
    }

    /// `A(h)`: the layer's input as its weights see it (plain or autodiff tensors).
    pub fn present(&self, h: Tensor<2>) -> Tensor<2> {
        match *self {
            LayerInput::Dense => h,
            LayerInput::Flatten { positions } => {
                let [rows, c] = h.dims();
                h.reshape([rows / positions, positions * c])
            }
            LayerInput::AveragePool { positions } => {
                let [rows, c] = h.dims();
                h.reshape([rows / positions, positions, c])
                    .mean_dim(1)
                    .reshape([rows / positions, c])
            }
            LayerInput::Patches(g) if g.stride > 1 || g.pad_cols.is_some() => {
                let [rows, cols] = h.dims();
                let (n, ho, wo, f, c) = (
                    rows * cols / (g.input.positions() * g.channels),
                    g.output.height,
                    g.output.width,
                    g.filter,
                    g.channels,
                );
                let taps = window_taps(&g, h);
                let patches = if taps.len() == 1 {
                    taps.into_iter().next().expect("one tap")
                } else {
                    Tensor::cat(taps, 3)
                };
                patches.reshape([n * ho * wo, f * f * c])
            }
            LayerInput::Patches(g) => {
                let [rows, cols] = h.dims();
                let c = g.channels;
                let n = rows * cols / (g.input.positions() * c);
                let x = h.reshape([n, g.input.height, g.input.width, c]);
                let (before, after) = g.pad;
                let x = if before + after > 0 {
                    x.pad(
                        [(before, after), (before, after), (0, 0)],
                        PadMode::Constant(0.0),
                    )
                } else {
                    x
                };
                let (ho, wo, f) = (g.output.height, g.output.width, g.filter);
                let taps: Vec<Tensor<4>> = (0..f * f)
                    .map(|t| {
                        let (dy, dx) = (t / f, t % f);
                        x.clone().slice([0..n, dy..dy + ho, dx..dx + wo, 0..c])
                    })
                    .collect();
                let patches = if taps.len() == 1 {
                    taps.into_iter().next().expect("one tap")
                } else {
                    Tensor::cat(taps, 3)
                };
                patches.reshape([n * ho * wo, f * f * c])
            }
        }
    }
}
