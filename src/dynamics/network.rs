//! The finite network trained by SGD (heavy-ball momentum optional) with burn-autodiff.
//!
//! Update (PyTorch convention): `v ← μ·v + ∇L_B(θ)`, `θ ← θ − η·v`.

use burn::tensor::{activation, Tensor};

use crate::dynamics::Loss;

use crate::model::{tensor_from_f64, LayerParams, Mlp};
use crate::Result;

/// SGD state of the network.
#[derive(Debug, Clone)]
pub struct NetworkTrainer {
    /// The network being trained.
    pub mlp: Mlp,
    velocity: Option<Vec<LayerParams>>,
    learning_rate: f64,
    momentum: f64,
    loss: Loss,
}

impl NetworkTrainer {
    /// A trainer for `mlp`.
    pub fn new(mlp: Mlp, learning_rate: f64, momentum: f64) -> Self {
        NetworkTrainer {
            mlp,
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
        let k = self.mlp.config.n_outputs;
        let xt = self.mlp.input(x, batch).autodiff();
        let yt = tensor_from_f64(
            y,
            [batch, k],
            self.mlp.dtype(),
            &self.mlp.device().clone().autodiff(),
        );
        self.step_tensors(xt, yt)
    }

    /// One SGD step on prepared autodiff tensors `[|B|, d]`, `[|B|, K]`.
    pub fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64> {
        let [b, k] = y.dims();
        let params = self.mlp.params_requiring_grad();
        let out = self.mlp.forward_with(&params, x);
        let loss = match self.loss {
            Loss::Mse => (out - y).square().sum().div_scalar(2.0 * (b * k) as f64),
            Loss::CrossEntropy => (y * activation::log_softmax(out, 1))
                .sum()
                .div_scalar(-(b as f64)),
        };
        let loss_value = loss.clone().inner().into_scalar::<f64>();
        let grads = loss.backward();
        let mut grad_list = Vec::with_capacity(params.len());
        for p in &params {
            let gw = p.weight.grad(&grads).expect("weight gradient");
            let gb = p
                .bias
                .as_ref()
                .map(|b| b.grad(&grads).expect("bias gradient"));
            grad_list.push(LayerParams {
                weight: gw,
                bias: gb,
            });
        }
        // Release the graph and the autodiff leaves so that the update can reuse buffers.
        drop(grads);
        drop(params);
        let update = if self.momentum > 0.0 {
            let v = match self.velocity.take() {
                None => grad_list,
                Some(v) => v
                    .into_iter()
                    .zip(grad_list)
                    .map(|(v, g)| LayerParams {
                        weight: v.weight.mul_scalar(self.momentum) + g.weight,
                        bias: match (v.bias, g.bias) {
                            (Some(vb), Some(gb)) => Some(vb.mul_scalar(self.momentum) + gb),
                            _ => None,
                        },
                    })
                    .collect(),
            };
            self.velocity = Some(v.clone());
            v
        } else {
            grad_list
        };
        let lr = self.learning_rate;
        let shapes = self.mlp.shapes.clone();
        self.mlp.params = std::mem::take(&mut self.mlp.params)
            .into_iter()
            .zip(update)
            .zip(&shapes)
            .map(|((p, u), s)| LayerParams {
                weight: p.weight - u.weight.mul_scalar(lr * s.weight_lr),
                bias: match (p.bias, u.bias) {
                    (Some(pb), Some(ub)) => Some(pb - ub.mul_scalar(lr * s.bias_lr)),
                    (pb, _) => pb,
                },
            })
            .collect();
        Ok(loss_value)
    }
}
