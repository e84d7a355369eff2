//! The finite network trained by SGD (heavy-ball momentum optional) with burn-autodiff.
//!
//! Update (PyTorch convention): `v ← μ·v + ∇L_B(θ)`, `θ ← θ − η·v`.

use burn::tensor::{activation, Tensor};

use crate::dynamics::Loss;

use crate::model::{tensor_from_f64, LayerParams, LayerShape, Network};
use crate::Result;

/// SGD state of the network.
#[derive(Debug, Clone)]
pub struct NetworkTrainer {
    /// The network being trained.
    pub net: Network,
    velocity: Option<Vec<LayerParams>>,
    learning_rate: f64,
    momentum: f64,
    loss: Loss,
}

impl NetworkTrainer {
    /// A trainer for `net`.
    pub fn new(net: Network, learning_rate: f64, momentum: f64) -> Self {
        NetworkTrainer {
            net,
            velocity: None,
            learning_rate,
            momentum,
            loss: Loss::Mse,
        }
    }

    /// Uses `loss` instead of the default half-MSE.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// One SGD step on a batch (`x: |B| × d`, `y: |B| × K`, row-major f64). Returns the batch
    /// loss before the step.
    pub fn step(&mut self, x: &[f64], y: &[f64], batch: usize) -> Result<f64> {
        let k = self.net.config.n_outputs;
        let xt = self.net.input(x, batch).autodiff();
        let yt = tensor_from_f64(
            y,
            [batch, k],
            self.net.dtype(),
            &self.net.device().clone().autodiff(),
        );
        self.step_tensors(xt, yt)
    }

    /// One SGD step on prepared autodiff tensors `[|B|, d]`, `[|B|, K]`.
    pub fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64> {
        let params = self.net.params_requiring_grad();
        let out = self.net.forward_with(&params, x);
        let (loss_value, grads) = loss_and_gradients(out, y, self.loss, &params)?;
        // Release the autodiff leaves so that the update can reuse buffers.
        drop(params);
        let shapes = self.net.shapes.clone();
        self.net.params = sgd_update(
            std::mem::take(&mut self.net.params),
            grads,
            &mut self.velocity,
            (self.learning_rate, self.momentum),
            &shapes,
        );
        Ok(loss_value)
    }
}

/// The batch loss of outputs `out` against targets `y` (`[|B|, K]`) and its gradients with
/// respect to the autodiff leaves `wrt`: half-MSE `1/(2|B|K) Σ (f − y)²` or softmax
/// cross-entropy `−1/|B| Σ y·log softmax(f)`.
pub fn loss_and_gradients(
    out: Tensor<2>,
    y: Tensor<2>,
    loss: Loss,
    wrt: &[LayerParams],
) -> Result<(f64, Vec<LayerParams>)> {
    let [b, k] = y.dims();
    // Scaled with mul_scalar: burn-autodiff 0.22's div_scalar backward rounds the divisor to f32
    // (`ops.state.elem::<f32>()`), which costs f64 networks 3e-8 relative in every gradient.
    let loss = match loss {
        Loss::Mse => (out - y)
            .square()
            .sum()
            .mul_scalar(1.0 / (2.0 * (b * k) as f64)),
        Loss::CrossEntropy => (y * activation::log_softmax(out, 1))
            .sum()
            .mul_scalar(-1.0 / b as f64),
    };
    let loss_value = loss.clone().inner().into_scalar::<f64>();
    let grads = loss.backward();
    let missing = || crate::Error::Backend("no gradient for a parameter".into());
    let list = wrt
        .iter()
        .map(|p| {
            Ok(LayerParams {
                weight: p.weight.grad(&grads).ok_or_else(missing)?,
                bias: match &p.bias {
                    Some(b) => Some(b.grad(&grads).ok_or_else(missing)?),
                    None => None,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((loss_value, list))
}

/// One heavy-ball SGD update `v ← μv + g`, `p ← p − η·(per-layer rate)·v` of `params` with
/// gradients `grads` (`velocity` holds v between steps; μ = 0: plain SGD).
pub fn sgd_update(
    params: Vec<LayerParams>,
    grads: Vec<LayerParams>,
    velocity: &mut Option<Vec<LayerParams>>,
    (lr, momentum): (f64, f64),
    shapes: &[LayerShape],
) -> Vec<LayerParams> {
    let update = if momentum > 0.0 {
        let v = match velocity.take() {
            None => grads,
            Some(v) => v
                .into_iter()
                .zip(grads)
                .map(|(v, g)| LayerParams {
                    weight: v.weight.mul_scalar(momentum) + g.weight,
                    bias: match (v.bias, g.bias) {
                        (Some(vb), Some(gb)) => Some(vb.mul_scalar(momentum) + gb),
                        _ => None,
                    },
                })
                .collect(),
        };
        *velocity = Some(v.clone());
        v
    } else {
        grads
    };
    params
        .into_iter()
        .zip(update)
        .zip(shapes)
        .map(|((p, u), s)| LayerParams {
            weight: p.weight - u.weight.mul_scalar(lr * s.weight_lr),
            bias: match (p.bias, u.bias) {
                (Some(pb), Some(ub)) => Some(pb - ub.mul_scalar(lr * s.bias_lr)),
                (pb, _) => pb,
            },
        })
        .collect()
}
