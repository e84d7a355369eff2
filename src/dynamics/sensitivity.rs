//! Input sensitivity: the mean over points of the Frobenius norm of the input Jacobian
//! `‖∂f/∂x‖_F` (K × d per point) for the network and for its linearized twin.
//!
//! For the twin, `f_lin(x) = f(x; θ0) + J(x; θ0) δ` with `δ = θ_lin − θ0 = Σ_r β_r ∇θ f_r(θ0)`
//! (one backward pass over the training set). Its input Jacobian is
//! `∂f(x; θ0)/∂x + ∂/∂x [J(x; θ0) δ]`, and the second term is taken as a central difference
//! along δ of input gradients, `(∂f(x; θ0 + εδ)/∂x − ∂f(x; θ0 − εδ)/∂x)/(2ε)` with
//! `ε‖δ‖ = 1e-3·‖θ0‖`, so only first-order autodiff is needed.

use crate::model::{tensor_from_f64, tensor_to_f64, Mlp};
use crate::Result;

/// Input gradients of every output, `[k][point·d + i]`.
pub type InputGradients = Vec<Vec<f64>>;

/// Relative size of the parameter step of the central difference along δ.
pub const DIRECTION_STEP: f64 = 1e-3;

/// Input gradients `∂f_k/∂x` of every output, `[k][point·d + i]`.
pub fn input_gradients(mlp: &Mlp, x: &[f64], n: usize) -> Result<InputGradients> {
    let params = mlp.params_constant_autodiff();
    (0..mlp.config.n_outputs)
        .map(|k| {
            let xin = mlp.input(x, n).autodiff().require_grad();
            let out = mlp.forward_with(&params, xin.clone());
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

/// `δ = Σ_{a,k} β_{a,k} ∇θ f_k(x_a; θ0)` as a flat parameter vector (one backward pass).
pub fn displacement(mlp0: &Mlp, x_train: &[f64], n_train: usize, beta: &[f64]) -> Result<Vec<f64>> {
    let k = mlp0.config.n_outputs;
    let params = mlp0.params_requiring_grad();
    let xin = mlp0.input(x_train, n_train).autodiff();
    let out = mlp0.forward_with(&params, xin);
    let b = tensor_from_f64(
        beta,
        [n_train, k],
        mlp0.dtype(),
        &mlp0.device().clone().autodiff(),
    );
    let grads = (out * b).sum().backward();
    let mut flat = Vec::with_capacity(mlp0.config.n_params());
    for p in &params {
        flat.extend(tensor_to_f64(
            p.weight.grad(&grads).expect("weight gradient"),
        )?);
        if let Some(bias) = &p.bias {
            flat.extend(tensor_to_f64(bias.grad(&grads).expect("bias gradient"))?);
        }
    }
    Ok(flat)
}

/// `theta0` is `mlp0.flatten()`, passed in so that callers compute it once.
/// Input gradients of the linearized model `f(x; θ0) + J(x; θ0) δ` (`[k][point·d + i]`), and of
/// its change `J(x; θ0) δ` alone.
pub fn linearized_input_gradients(
    mlp0: &Mlp,
    theta0: &[f64],
    delta: &[f64],
    x: &[f64],
    n: usize,
) -> Result<(InputGradients, InputGradients)> {
    let g0 = input_gradients(mlp0, x, n)?;
    let (t_norm, d_norm) = (crate::metrics::norm(theta0), crate::metrics::norm(delta));
    if d_norm == 0.0 {
        let zero = g0.iter().map(|g| vec![0.0; g.len()]).collect();
        return Ok((g0, zero));
    }
    let eps = DIRECTION_STEP * t_norm.max(1e-12) / d_norm;
    let shifted = |sign: f64| -> Result<Vec<Vec<f64>>> {
        let mut m = mlp0.clone();
        let flat: Vec<f64> = theta0
            .iter()
            .zip(delta)
            .map(|(t, d)| t + sign * eps * d)
            .collect();
        m.set_flat(&flat);
        input_gradients(&m, x, n)
    };
    let (gp, gm) = (shifted(1.0)?, shifted(-1.0)?);
    let change: Vec<Vec<f64>> = gp
        .iter()
        .zip(&gm)
        .map(|(p, m)| {
            p.iter()
                .zip(m)
                .map(|(a, b)| (a - b) / (2.0 * eps))
                .collect()
        })
        .collect();
    let total = g0
        .iter()
        .zip(&change)
        .map(|(a, c)| a.iter().zip(c).map(|(x, y)| x + y).collect())
        .collect();
    Ok((total, change))
}
