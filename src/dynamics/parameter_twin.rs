//! The linearized twin in parameter space: `f_lin(x) = f(x; θ0) + J(x; θ0)·δ` evaluated by a
//! forward tangent pass through the network at θ0 (activations and φ′ held at θ0, see
//! [`crate::model::tangent`]) and trained by the same optimiser on the same batches through
//! ordinary first-order autodiff with respect to δ = θ − θ0 — the way neural-tangents'
//! `linearize` works. Memory O(P) and a step costs a small multiple of the network's, for any
//! number of training points; the function-space twin ([`super::linearized`]) needs Θ0 on all
//! points instead. Both are the same model: on small problems they agree to round-off.

use burn::tensor::Tensor;

use crate::dynamics::network::{loss_and_gradients, sgd_update};
use crate::dynamics::Loss;
use crate::model::{tensor_from_f64, tensor_to_f64, LayerParams, Network};
use crate::Result;

/// The parameter-space twin: θ0 (fixed) and the displacement δ with its SGD state.
#[derive(Debug, Clone)]
pub struct ParameterTwin {
    net0: Network,
    delta: Vec<LayerParams>,
    velocity: Option<Vec<LayerParams>>,
    learning_rate: f64,
    momentum: f64,
    loss: Loss,
}

impl ParameterTwin {
    /// The twin of `net0` (δ = 0), trained with learning rate η and heavy-ball momentum μ.
    pub fn new(net0: Network, learning_rate: f64, momentum: f64) -> Self {
        let delta = net0
            .params
            .iter()
            .map(|p| LayerParams {
                weight: p.weight.zeros_like(),
                bias: p.bias.as_ref().map(|b| b.zeros_like()),
            })
            .collect();
        ParameterTwin {
            net0,
            delta,
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

    /// δ = θ_lin − θ0 per layer.
    pub fn delta(&self) -> &[LayerParams] {
        &self.delta
    }

    /// One SGD step on prepared autodiff tensors `x: [|B|, d]`, `y: [|B|, K]`; returns the batch
    /// loss before the step.
    pub fn step_tensors(&mut self, x: Tensor<2>, y: Tensor<2>) -> Result<f64> {
        let theta0 = self.net0.params_constant_autodiff();
        let delta: Vec<LayerParams> = self
            .delta
            .iter()
            .map(|p| LayerParams {
                weight: p.weight.clone().autodiff().require_grad(),
                bias: p.bias.clone().map(|b| b.autodiff().require_grad()),
            })
            .collect();
        let (f0, f_dot) = self.net0.forward_tangent(&theta0, &delta, x);
        let (loss, grads) = loss_and_gradients(f0 + f_dot, y, self.loss, &delta)?;
        drop(delta);
        self.delta = sgd_update(
            std::mem::take(&mut self.delta),
            grads,
            &mut self.velocity,
            (self.learning_rate, self.momentum),
            &self.net0.shapes,
        );
        Ok(loss)
    }

    /// One SGD step on a batch (`x: |B| × d`, `y: |B| × K`, row-major f64).
    pub fn step(&mut self, x: &[f64], y: &[f64], batch: usize) -> Result<f64> {
        let k = self.net0.config.n_outputs;
        let ad = self.net0.device().clone().autodiff();
        let xt = self.net0.input(x, batch).autodiff();
        let yt = tensor_from_f64(y, [batch, k], self.net0.dtype(), &ad);
        self.step_tensors(xt, yt)
    }

    /// `f0(x) + J(x; θ0)·δ` on the rows of `x`, row-major `n × K`.
    pub fn predict(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let (f0, f_dot) =
            self.net0
                .forward_tangent(&self.net0.params, &self.delta, self.net0.input(x, n));
        tensor_to_f64(f0 + f_dot)
    }
}
