//! An explicit layer stack, `model.blocks`: the pieces of residual networks (identity or
//! projection shortcuts with a branch scale, as neural-tangents'
//! `serial(FanOut(2), parallel(branch, shortcut), FanInSum())`), strided convolutions, average
//! pooling and layer normalisation, for dense and convolutional networks.
//!
//! A stack is written in the config as an array whose entries are either a name (`"dense"`,
//! `"activation"`, `"layer_norm"`) or a table tagged by `layer`:
//! ```toml
//! blocks = [
//!   { layer = "conv", filter = 3 },
//!   { layer = "residual", branch = [
//!       "activation", { layer = "conv", filter = 3 },
//!       "activation", { layer = "conv", filter = 3 } ] },
//!   { layer = "residual", shortcut = { layer = "conv", filter = 1, stride = 2 }, branch = [
//!       "activation", { layer = "conv", filter = 3, stride = 2 },
//!       "activation", { layer = "conv", filter = 3 } ] },
//!   { layer = "avg_pool", window = 2 },
//!   "activation",
//! ]
//! ```
//! Every dense layer and convolution has `model.width` outputs (channels), so a width sweep
//! scales the whole stack; the readout (`model.readout` for a conv net, then a dense layer to
//! the outputs) is appended. [`compile`] checks a stack against its input once and turns it into
//! the network's affine layers and the [`Op`]s that connect them; nothing downstream sees an
//! unchecked stack.
//!
//! What is allowed follows where the infinite-width kernels exist (neural-tangents 0.6.5): an
//! activation and a layer norm need Gaussian inputs (the output of a dense layer or convolution,
//! or of a pooling, a layer norm or a residual sum of such), and a residual sum needs both of its
//! terms Gaussian (neural-tangents' `FanInSum`), so residual networks are written in the
//! pre-activation form (`branch = [activation, conv, activation, conv]`).

use serde::{Deserialize, Serialize};

use super::layers::{ConvGeometry, LayerInput, Padding, PoolGeometry, Readout, Spatial};
use crate::{Error, Result};

/// A convolution of `model.width` channels in a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvBlock {
    /// Square filter size f.
    pub filter: usize,
    /// Stride in both directions (default 1).
    #[serde(default = "one")]
    pub stride: usize,
    /// Zero padding (default `same`, XLA's rule for strides).
    #[serde(default = "same")]
    pub padding: Padding,
}

/// Average pooling over square windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBlock {
    /// Window size w.
    pub window: usize,
    /// Stride (default: the window, so windows do not overlap).
    #[serde(default)]
    pub stride: Option<usize>,
    /// Zero padding (default `valid`); padded positions count in the average, as
    /// neural-tangents' `AvgPool(normalize_edges=False)`.
    #[serde(default = "valid")]
    pub padding: Padding,
}

impl PoolBlock {
    /// The stride in effect.
    pub fn stride(&self) -> usize {
        self.stride.unwrap_or(self.window)
    }
}

/// A residual block: `shortcut(h) + scale·branch(h)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidualBlock {
    /// The branch.
    pub branch: Vec<Block>,
    /// The shortcut: the identity (default) or a projection (a dense layer or a convolution).
    #[serde(default)]
    pub shortcut: Option<Box<Block>>,
    /// Factor on the branch (default 1); it multiplies the branch's kernels by `scale²`.
    #[serde(default = "unit")]
    pub scale: f64,
}

/// One entry of `model.blocks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Block {
    /// A dense layer of `model.width` units (neural-tangents' `Dense`).
    Dense,
    /// A convolution of `model.width` channels (`Conv`).
    Conv(ConvBlock),
    /// `model.activation`, elementwise.
    Activation,
    /// Normalisation over the features (channels at every position): `(z − mean)/√(var + ε)`
    /// with ε = 1e-12 and no trainable scale, as neural-tangents' `LayerNorm()`.
    LayerNorm,
    /// Average pooling (`AvgPool`).
    AvgPool(PoolBlock),
    /// A residual block.
    Residual(ResidualBlock),
}

fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}
fn same() -> Padding {
    Padding::Same
}
fn valid() -> Padding {
    Padding::Valid
}

/// The keys of an entry that takes none (`{ layer = "dense" }`): any key is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// The table form of a block (`{ layer = "...", ... }`).
#[derive(Deserialize)]
#[serde(tag = "layer", rename_all = "snake_case", deny_unknown_fields)]
enum BlockTable {
    Dense(NoKeys),
    Conv(ConvBlock),
    Activation(NoKeys),
    LayerNorm(NoKeys),
    AvgPool(PoolBlock),
    Residual(ResidualBlock),
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Block;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "\"dense\", \"activation\", \"layer_norm\" or a table { layer = \"dense\" | \"conv\" | \"activation\" | \"layer_norm\" | \"avg_pool\" | \"residual\", ... }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Block, E> {
                match s {
                    "dense" => Ok(Block::Dense),
                    "activation" => Ok(Block::Activation),
                    "layer_norm" => Ok(Block::LayerNorm),
                    other => Err(E::invalid_value(
                        serde::de::Unexpected::Str(other),
                        &"\"dense\", \"activation\" (model.activation) or \"layer_norm\" (conv, avg_pool and residual are tables: { layer = \"conv\", filter = 3 }; a residual's identity shortcut is written by leaving `shortcut` out; the readout is model.readout)",
                    )),
                }
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                m: M,
            ) -> std::result::Result<Block, M::Error> {
                let t = BlockTable::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(match t {
                    BlockTable::Dense(_) => Block::Dense,
                    BlockTable::Conv(c) => Block::Conv(c),
                    BlockTable::Activation(_) => Block::Activation,
                    BlockTable::LayerNorm(_) => Block::LayerNorm,
                    BlockTable::AvgPool(p) => Block::AvgPool(p),
                    BlockTable::Residual(r) => Block::Residual(r),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// ε of layer normalisation (neural-tangents' `LayerNorm` default).
pub const LAYER_NORM_EPS: f64 = 1e-12;

/// One step of a checked stack. Affine layers are numbered in execution order (branch before
/// shortcut within a residual block); their shapes are the network's [`super::LayerShape`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Affine layer `l`: `z = s_w·A(h)·W_l + s_b·b_l`.
    Affine(usize),
    /// The activation.
    Activation,
    /// Layer normalisation over the channels of every row.
    LayerNorm,
    /// Average pooling of a feature map.
    AvgPool(PoolGeometry),
    /// `shortcut(h) + scale·branch(h)`; `shortcut` is `None` for the identity, else an affine
    /// layer.
    Residual {
        /// The branch.
        branch: Vec<Op>,
        /// The projection's affine layer, if any.
        shortcut: Option<usize>,
        /// Factor on the branch.
        scale: f64,
    },
}

/// A checked stack: the affine layers `(input map, fan-in, fan-out)` in execution order (the
/// readout last) and the ops, ending with the readout's `Affine`.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// `(input map, n_in, n_out)` of every affine layer.
    pub layers: Vec<(LayerInput, usize, usize)>,
    /// The ops.
    pub ops: Vec<Op>,
}

impl Program {
    /// Number of affine layers before the readout.
    pub fn hidden_layers(&self) -> usize {
        self.layers.len() - 1
    }
}

/// What flows between blocks: a feature map (or a feature vector: 1×1, `image = false`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stream {
    spatial: Spatial,
    channels: usize,
    image: bool,
    gaussian: bool,
    /// Dense layers and convolutions applied so far.
    layers_before: usize,
}

/// The input of a stack: `d` features, or an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StackInput {
    /// A feature vector of this length.
    Features(usize),
    /// An image.
    Image(super::layers::ImageShape),
}

struct Compiler {
    width: usize,
    layers: Vec<(LayerInput, usize, usize)>,
}

fn refuse(key: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> Error {
    Error::value(key, value.to_string(), allowed.into())
}

impl Compiler {
    fn affine(&mut self, input: LayerInput, n_in: usize) -> usize {
        self.layers.push((input, n_in, self.width));
        self.layers.len() - 1
    }

    fn conv(&mut self, key: &str, c: &ConvBlock, s: Stream) -> Result<(usize, Stream)> {
        if !s.image {
            return Err(refuse(
                key,
                "conv",
                "\"dense\" in a dense network (convolutions need model.architecture = \"conv\")",
            ));
        }
        let geometry = ConvGeometry::new(s.spatial, s.channels, c.filter, c.stride, c.padding)
            .map_err(|why| {
                refuse(
                    key,
                    format!("conv {}×{} stride {}", c.filter, c.filter, c.stride),
                    why,
                )
            })?;
        let l = self.affine(
            LayerInput::Patches(geometry),
            c.filter * c.filter * s.channels,
        );
        Ok((
            l,
            Stream {
                spatial: geometry.output,
                channels: self.width,
                image: true,
                gaussian: true,
                layers_before: s.layers_before + 1,
            },
        ))
    }

    fn projection(&mut self, key: &str, b: &Block, s: Stream) -> Result<(usize, Stream)> {
        match b {
            Block::Dense if !s.image => {
                let l = self.affine(LayerInput::Dense, s.channels);
                Ok((
                    l,
                    Stream {
                        channels: self.width,
                        gaussian: true,
                        layers_before: s.layers_before + 1,
                        ..s
                    },
                ))
            }
            Block::Conv(c) => self.conv(key, c, s),
            other => Err(refuse(
                key,
                describe_one(other),
                "a projection: { layer = \"dense\" } in a dense network, { layer = \"conv\", filter = 1, stride = s } in a conv net (leave `shortcut` out for the identity)",
            )),
        }
    }

    fn blocks(&mut self, key: &str, blocks: &[Block], mut s: Stream) -> Result<(Vec<Op>, Stream)> {
        let mut ops = Vec::with_capacity(blocks.len());
        for (i, b) in blocks.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let (op, next) = self.block(&key, b, s)?;
            ops.push(op);
            s = next;
        }
        Ok((ops, s))
    }

    fn block(&mut self, key: &str, b: &Block, s: Stream) -> Result<(Op, Stream)> {
        let needs_gaussian = |what: &str| {
            let fix = match (what, s.layers_before) {
                (_, 0) => "start the stack with a dense layer or convolution",
                ("layer_norm", _) => {
                    "put the layer norm before the activation (conv → layer_norm → activation)"
                }
                _ => "put a dense layer or convolution before it; residual blocks are written in pre-activation form, branch = [\"activation\", conv, \"activation\", conv]",
            };
            refuse(
                key,
                what,
                format!(
                    "\"{what}\" only right after a dense layer or convolution (or a pooling, layer norm or residual sum of one): its infinite-width kernel needs Gaussian inputs (neural-tangents 0.6.5), and this one follows an activation or is the data; {fix}"
                ),
            )
        };
        Ok(match b {
            Block::Dense => {
                if s.image {
                    return Err(refuse(
                        key,
                        "dense",
                        "\"conv\" in a conv net ({ layer = \"conv\", filter = 1 } is a dense layer at every position; model.readout flattens or pools before the output layer)",
                    ));
                }
                let l = self.affine(LayerInput::Dense, s.channels);
                (
                    Op::Affine(l),
                    Stream {
                        channels: self.width,
                        gaussian: true,
                        layers_before: s.layers_before + 1,
                        ..s
                    },
                )
            }
            Block::Conv(c) => {
                let (l, out) = self.conv(key, c, s)?;
                (Op::Affine(l), out)
            }
            Block::Activation => {
                if !s.gaussian {
                    return Err(needs_gaussian("activation"));
                }
                (
                    Op::Activation,
                    Stream {
                        gaussian: false,
                        ..s
                    },
                )
            }
            Block::LayerNorm => {
                if !s.gaussian {
                    return Err(needs_gaussian("layer_norm"));
                }
                (Op::LayerNorm, s)
            }
            Block::AvgPool(p) => {
                if !s.image {
                    return Err(refuse(
                        key,
                        "avg_pool",
                        "pooling in a conv net only (model.architecture = \"conv\" with data.image_shape)",
                    ));
                }
                let g = PoolGeometry::new(s.spatial, s.channels, p.window, p.stride(), p.padding)
                    .map_err(|why| {
                    let why = why.replace("a filter", "a window");
                    let what = format!("avg_pool {}", p.window);
                    refuse(
                        key,
                        what,
                        format!("{why} (a smaller window, or padding = \"same\")"),
                    )
                })?;
                (
                    Op::AvgPool(g),
                    Stream {
                        spatial: g.output,
                        ..s
                    },
                )
            }
            Block::Residual(r) => self.residual(key, r, s)?,
        })
    }

    fn residual(&mut self, key: &str, r: &ResidualBlock, s: Stream) -> Result<(Op, Stream)> {
        if r.branch.is_empty() {
            return Err(refuse(
                format!("{key}.branch").as_str(),
                "[]",
                "at least one block",
            ));
        }
        if !(r.scale.is_finite() && r.scale > 0.0) {
            return Err(refuse(
                &format!("{key}.scale"),
                r.scale,
                "a positive finite factor on the branch",
            ));
        }
        let (branch, out) = self.blocks(&format!("{key}.branch"), &r.branch, s)?;
        let (shortcut, short) = match &r.shortcut {
            None => (None, s),
            Some(p) => {
                let (l, o) = self.projection(&format!("{key}.shortcut"), p, s)?;
                (Some(l), o)
            }
        };
        if !out.gaussian {
            return Err(refuse(
                &format!("{key}.branch"),
                "(ends in an activation)",
                "a branch that ends in a dense layer or convolution (or pooling or layer norm after one): a residual sum needs Gaussian terms (neural-tangents' FanInSum)",
            ));
        }
        if !short.gaussian {
            return Err(refuse(
                &format!("{key}.shortcut"),
                "identity",
                "a projection shortcut ({ layer = \"conv\", filter = 1 } or { layer = \"dense\" }) here: the block's input is not Gaussian (it follows an activation or is the data), and a residual sum needs Gaussian terms",
            ));
        }
        if (short.spatial, short.channels) != (out.spatial, out.channels) {
            return Err(refuse(
                &format!("{key}.shortcut"),
                if r.shortcut.is_some() { "projection" } else { "identity" },
                format!(
                    "a shortcut whose output has the branch's shape ({}×{}×{}; the shortcut gives {}×{}×{}): a projection {{ layer = \"conv\", filter = 1, stride = {} }} with the branch's stride",
                    out.spatial.height, out.spatial.width, out.channels,
                    short.spatial.height, short.spatial.width, short.channels,
                    s.spatial.height.div_ceil(out.spatial.height.max(1)).max(1)
                ),
            ));
        }
        Ok((
            Op::Residual {
                branch,
                shortcut,
                scale: r.scale,
            },
            out,
        ))
    }
}

/// Checks a stack on its input and builds the network's layers and ops: `width` outputs per
/// dense layer or convolution, then the readout (`readout` for an image stream) and a dense
/// layer to `n_outputs`. Errors name the entry (`model.blocks[2].branch[1]`).
pub fn compile(
    blocks: &[Block],
    input: StackInput,
    width: usize,
    readout: Readout,
    n_outputs: usize,
) -> Result<Program> {
    let start = match input {
        StackInput::Features(d) => Stream {
            spatial: Spatial {
                height: 1,
                width: 1,
            },
            channels: d,
            image: false,
            gaussian: false,
            layers_before: 0,
        },
        StackInput::Image(i) => Stream {
            spatial: i.spatial(),
            channels: i.channels,
            image: true,
            gaussian: false,
            layers_before: 0,
        },
    };
    let mut c = Compiler {
        width,
        layers: Vec::new(),
    };
    let (mut ops, end) = c.blocks("model.blocks", blocks, start)?;
    if c.layers.is_empty() {
        return Err(refuse(
            "model.blocks",
            "(no dense layer or convolution)",
            "a stack with at least one dense layer or convolution",
        ));
    }
    let positions = end.spatial.positions();
    let (input, n_in) = match (end.image, readout) {
        (false, _) => (LayerInput::Dense, end.channels),
        (true, Readout::Flatten) => (LayerInput::Flatten { positions }, positions * end.channels),
        (true, Readout::GlobalAvgPool) => (LayerInput::AveragePool { positions }, end.channels),
    };
    c.layers.push((input, n_in, n_outputs));
    ops.push(Op::Affine(c.layers.len() - 1));
    Ok(Program {
        layers: c.layers,
        ops,
    })
}

/// The stack in words, e.g. `conv(3×3/2) → [act → conv(3×3)] + proj`.
pub fn describe(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(describe_one)
        .collect::<Vec<_>>()
        .join(" → ")
}

fn describe_one(b: &Block) -> String {
    match b {
        Block::Dense => "dense".into(),
        Block::Conv(c) => {
            let stride = if c.stride > 1 {
                format!("/{}", c.stride)
            } else {
                String::new()
            };
            let pad = if c.padding == Padding::Valid {
                " valid"
            } else {
                ""
            };
            format!("conv({f}×{f}{stride}{pad})", f = c.filter)
        }
        Block::Activation => "act".into(),
        Block::LayerNorm => "layer_norm".into(),
        Block::AvgPool(p) => format!("avg_pool({w}×{w}/{})", p.stride(), w = p.window),
        Block::Residual(r) => {
            let short = match r.shortcut.as_deref() {
                None => "identity".to_string(),
                Some(p) => describe_one(p),
            };
            let scale = if r.scale == 1.0 {
                String::new()
            } else {
                format!("{}·", r.scale)
            };
            format!("({scale}[{}] + {short})", describe(&r.branch))
        }
    }
}
