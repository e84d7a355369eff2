//! Input sensitivity: the mean over points of the Frobenius norm of the input Jacobian
//! `‖∂f/∂x‖_F` (K × d per point) for the network and for its linearized twin.
//!
//! For the twin, `f_lin(x) = f(x; θ0) + J(x; θ0)·δ` with `δ = θ_lin − θ0 = D·Σ_r β_r ∇θ f_r(θ0)`
//! (one backward pass over the training set, [`displacement`]). Its input Jacobian is
//! `∂f(x; θ0)/∂x + ∂/∂x [J(x; θ0)·δ]`; the second term is computed exactly by differentiating
//! the tangent pass `J(x; θ0)·δ` (`model/tangent.rs`) with respect to `x`
//! (first-order autodiff only).

use crate::model::{tensor_to_f64, LayerParams, Network};
use crate::Result;

/// Input gradients of every output, `[k][point·d + i]`.
pub type InputGradients = Vec<Vec<f64>>;

/// Input gradients `∂f_k/∂x` of every output, `[k][point·d + i]`.
pub fn input_gradients(net: &Network, x: &[f64], n: usize) -> Result<InputGradients> {
    let params = net.params_constant_autodiff();
    (0..net.config.n_outputs)
        .map(|k| {
            let xin = net.input(x, n).autodiff().require_grad();
            let out = net.forward_with(&params, xin.clone());
            let grads = out.narrow(1, k, 1).sum().backward();
            tensor_to_f64(xin.grad(&grads).expect("input gradient"))
        })
        .collect()
}

/// Mean over points of `‖Σ_k-stacked gradients‖_F`.
pub fn mean_jacobian_norm(grads: &[Vec<f64>], n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let d = grads[0].len() / n;
    (0..n)
        .map(|a| {
            grads
                .iter()
                .map(|g| g[a * d..(a + 1) * d].iter().map(|v| v * v).sum::<f64>())
                .sum::<f64>()
                .sqrt()
        })
        .sum::<f64>()
        / n as f64
}

/// The twin's displacement `δ = θ_lin − θ0 = D·Σ_{a,k} β_{a,k} ∇θ f_k(x_a; θ0)` per layer (one
/// backward pass), with `D` the per-layer learning-rate factors (identity except under mup):
/// SGD with per-layer rates moves the parameters by `D·Jᵀ·g`, which is what the twin's
/// coefficients β accumulate (`f_lin − f0 = J·δ = Θ_D·β` with the learning-rate-weighted
/// kernel `Θ_D = J·D·Jᵀ`).
pub fn displacement(
    net0: &Network,
    x_train: &[f64],
    n_train: usize,
    beta: &[f64],
) -> Result<Vec<LayerParams>> {
    net0.vjp(x_train, n_train, beta, true)
}

/// Input gradients `∂/∂x [J(x; θ0)·δ]` (`[k][point·d + i]`): the change of the linearized
/// model's input Jacobian, by first-order autodiff of the tangent pass (exact; for kinked
/// activations almost everywhere). The twin's input Jacobian is `∂f(x; θ0)/∂x` plus this.
pub fn linearized_input_gradient_change(
    net0: &Network,
    delta: &[LayerParams],
    x: &[f64],
    n: usize,
) -> Result<InputGradients> {
    let params = net0.params_constant_autodiff();
    let tangent: Vec<LayerParams> = delta
        .iter()
        .map(|t| LayerParams {
            weight: t.weight.clone().autodiff(),
            bias: t.bias.clone().map(|b| b.autodiff()),
        })
        .collect();
    (0..net0.config.n_outputs)
        .map(|k| {
            let xin = net0.input(x, n).autodiff().require_grad();
            let (_, f_dot) = net0.forward_tangent(&params, &tangent, xin.clone());
            let grads = f_dot.narrow(1, k, 1).sum().backward();
            let g = xin
                .grad(&grads)
                .ok_or_else(|| crate::Error::Backend("no input gradient".into()))?;
            tensor_to_f64(g)
        })
        .collect()
}

/// `a − b` entrywise, per output.
pub fn difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> InputGradients {
    a.iter()
        .zip(b)
        .map(|(p, q)| p.iter().zip(q).map(|(u, v)| u - v).collect())
        .collect()
}

/// `a + b` entrywise, per output.
pub fn sum(a: &[Vec<f64>], b: &[Vec<f64>]) -> InputGradients {
    a.iter()
        .zip(b)
        .map(|(p, q)| p.iter().zip(q).map(|(u, v)| u + v).collect())
        .collect()
}
