//! Running a checked stack ([`super::blocks::Op`]) on tensors: one interpreter for the forward
//! pass, the tangent pass and the probed pass of the empirical kernel, which differ only in what
//! flows (a tensor, or a tensor with its tangent) and in what an affine layer does (the caller's
//! closure). Every op is a burn tensor function, so autodiff through it is exact.

use burn::tensor::Tensor;

use super::blocks::{Op, LAYER_NORM_EPS};
use super::layers::PoolGeometry;
use super::Activation;

/// What flows between the ops.
pub(crate) trait Flow: Clone {
    /// The activation, elementwise.
    fn activation(self, act: Activation) -> Self;
    /// Normalisation of every row over its columns (the channels).
    fn layer_norm(self) -> Self;
    /// Average pooling.
    fn avg_pool(self, g: &PoolGeometry) -> Self;
    /// `self + scale·branch`.
    fn add_scaled(self, branch: Self, scale: f64) -> Self;
}

/// Runs `ops` on `x`, calling `affine(l, h)` for affine layer `l` (the branch of a residual
/// block before its shortcut).
pub(crate) fn run<F: Flow>(
    ops: &[Op],
    x: F,
    act: Activation,
    affine: &mut dyn FnMut(usize, F) -> F,
) -> F {
    let mut h = x;
    for op in ops {
        h = match op {
            Op::Affine(l) => affine(*l, h),
            Op::Activation => h.activation(act),
            Op::LayerNorm => h.layer_norm(),
            Op::AvgPool(g) => h.avg_pool(g),
            Op::Residual {
                branch,
                shortcut,
                scale,
            } => {
                let b = run(branch, h.clone(), act, affine);
                let s = match shortcut {
                    None => h,
                    Some(l) => affine(*l, h),
                };
                s.add_scaled(b, *scale)
            }
        };
    }
    h
}

fn scaled(t: Tensor<2>, c: f64) -> Tensor<2> {
    if c == 1.0 {
        t
    } else {
        t.mul_scalar(c)
    }
}

/// `(x − mean)/√(var + ε)` over the columns, and the pieces its tangent needs.
fn normalise(x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let centred = x.clone() - x.mean_dim(1);
    let sd = centred
        .clone()
        .square()
        .mean_dim(1)
        .add_scalar(LAYER_NORM_EPS)
        .sqrt();
    (centred / sd.clone(), sd)
}

impl Flow for Tensor<2> {
    fn activation(self, act: Activation) -> Self {
        act.forward(self)
    }
    fn layer_norm(self) -> Self {
        normalise(self).0
    }
    fn avg_pool(self, g: &PoolGeometry) -> Self {
        g.apply(self)
    }
    fn add_scaled(self, branch: Self, scale: f64) -> Self {
        self + scaled(branch, scale)
    }
}

/// A value and its tangent (`None`: zero).
#[derive(Clone)]
pub(crate) struct Tangent {
    pub(crate) value: Tensor<2>,
    pub(crate) dot: Option<Tensor<2>>,
}

impl Flow for Tangent {
    fn activation(self, act: Activation) -> Self {
        Tangent {
            dot: self
                .dot
                .map(|d| act.derivative_tensor(self.value.clone()) * d),
            value: act.forward(self.value),
        }
    }
    /// `y = x̃/σ` with `x̃ = x − mean x`, `σ = √(mean x̃² + ε)`: `ẏ = (x̃̇ − y·mean(y·x̃̇))/σ`.
    fn layer_norm(self) -> Self {
        let (y, sd) = normalise(self.value);
        let dot = self.dot.map(|d| {
            let dc = d.clone() - d.mean_dim(1);
            let proj = (y.clone() * dc.clone()).mean_dim(1);
            (dc - y.clone() * proj) / sd
        });
        Tangent { value: y, dot }
    }
    fn avg_pool(self, g: &PoolGeometry) -> Self {
        Tangent {
            value: g.apply(self.value),
            dot: self.dot.map(|d| g.apply(d)),
        }
    }
    fn add_scaled(self, branch: Self, scale: f64) -> Self {
        let dot = match (self.dot, branch.dot) {
            (Some(a), Some(b)) => Some(a + scaled(b, scale)),
            (Some(a), None) => Some(a),
            (None, Some(b)) => Some(scaled(b, scale)),
            (None, None) => None,
        };
        Tangent {
            value: self.value + scaled(branch.value, scale),
            dot,
        }
    }
}
