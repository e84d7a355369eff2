//! First-order products with the network's parameter Jacobian `J = ∂f/∂θ`, without building it:
//! the tangent (forward-mode) pass `J(x)·t` and the cotangent (reverse-mode) pass `J(X)ᵀ·u`.
//!
//! The tangent pass carries `ż` alongside `z` through every layer,
//! `ż_l = s_w·(A(ḣ_{l−1})·W_l + A(h_{l−1})·δW_l) + s_b·δb_l` (`A` the layer's linear input map,
//! [`crate::model::LayerInput`]), `ḣ_l = φ′(z_l) ⊙ ż_l` (`ḣ_0 = 0`), and
//! returns `ż_L = J(x)·t`. φ′ is evaluated as a tensor function of `z`
//! ([`crate::model::Activation::derivative_tensor`]), so first-order autodiff of the pass with
//! respect to `x` gives the exact input derivative of `J(x)·t` (φ″ terms included; for kinked
//! activations φ′ is a mask and the derivative is exact almost everywhere) — the way
//! neural-tangents' `linearize` evaluates `f_lin` with `jax.jvp`.

use burn::tensor::Tensor;

use super::{tensor_from_f64, tensor_to_f64, LayerParams, Network};
use crate::Result;

impl Network {
    /// `(f(x; θ), J(x; θ)·t)` for parameters `params` and a tangent `t` of the same shapes
    /// (plain or autodiff tensors). `x: [n, d]` → two `[n, K]` tensors.
    pub fn forward_tangent(
        &self,
        params: &[LayerParams],
        tangent: &[LayerParams],
        x: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let act = self.config.model.activation;
        if let Some(ops) = &self.ops {
            let out = super::flow::run(
                ops,
                super::flow::Tangent {
                    value: x,
                    dot: None,
                },
                act,
                &mut |l, h| self.affine_tangent(l, &params[l], &tangent[l], h),
            );
            let dot = out.dot.expect("the readout gives a tangent");
            return (out.value, dot);
        }
        let last = self.shapes.len() - 1;
        let mut h = x;
        let mut h_dot: Option<Tensor<2>> = None;
        for (l, ((s, p), t)) in self.shapes.iter().zip(params).zip(tangent).enumerate() {
            // A is linear: the tangent of A(h) is A(ḣ).
            let a = s.input.present(h);
            let mut z = a.clone().matmul(p.weight.clone());
            let mut z_dot = a.matmul(t.weight.clone());
            if let Some(hd) = h_dot {
                z_dot = z_dot + s.input.present(hd).matmul(p.weight.clone());
            }
            if s.weight_scale != 1.0 {
                z = z.mul_scalar(s.weight_scale);
                z_dot = z_dot.mul_scalar(s.weight_scale);
            }
            if let (Some(b), Some(db)) = (&p.bias, &t.bias) {
                z = z + b.clone().mul_scalar(s.bias_scale).unsqueeze::<2>();
                z_dot = z_dot + db.clone().mul_scalar(s.bias_scale).unsqueeze::<2>();
            }
            if l == last {
                return (z, z_dot);
            }
            h_dot = Some(act.derivative_tensor(z.clone()) * z_dot);
            h = act.forward(z);
        }
        unreachable!("a network has at least one layer")
    }

    /// Affine layer `l` of a stack and its tangent:
    /// `ż = s_w·(A(h)·δW + A(ḣ)·W) + s_b·δb`.
    fn affine_tangent(
        &self,
        l: usize,
        p: &LayerParams,
        t: &LayerParams,
        h: super::flow::Tangent,
    ) -> super::flow::Tangent {
        let s = &self.shapes[l];
        let a = s.input.present(h.value);
        let z = s.affine(p, a.clone());
        let mut z_dot = a.matmul(t.weight.clone());
        if let Some(hd) = h.dot {
            z_dot = z_dot + s.input.present(hd).matmul(p.weight.clone());
        }
        if s.weight_scale != 1.0 {
            z_dot = z_dot.mul_scalar(s.weight_scale);
        }
        if let Some(db) = &t.bias {
            z_dot = z_dot + db.clone().mul_scalar(s.bias_scale).unsqueeze::<2>();
        }
        super::flow::Tangent {
            value: z,
            dot: Some(z_dot),
        }
    }

    /// `J(X; θ)ᵀ·u` per layer for the rows of `x` (`n × d`, row-major) and `u` (`n × K`,
    /// row-major): the parameter gradient of `Σ f ⊙ u`, one backward pass. With `lr_weighted`
    /// each layer's weight and bias parts are multiplied by their learning-rate factors (the
    /// displacement `D·Jᵀu` of SGD with per-layer rates; 1 except under mup).
    pub fn vjp(
        &self,
        x: &[f64],
        n: usize,
        u: &[f64],
        lr_weighted: bool,
    ) -> Result<Vec<LayerParams>> {
        let k = self.config.n_outputs;
        let params = self.params_requiring_grad();
        let xin = self.input(x, n).autodiff();
        let out = self.forward_with(&params, xin);
        let ut = tensor_from_f64(u, [n, k], self.dtype(), &self.device().clone().autodiff());
        let grads = (out * ut).sum().backward();
        params
            .iter()
            .zip(&self.shapes)
            .map(|(p, s)| {
                let gw = p
                    .weight
                    .grad(&grads)
                    .ok_or_else(|| crate::Error::Backend("no weight gradient".into()))?;
                let gb = match &p.bias {
                    Some(b) => Some(
                        b.grad(&grads)
                            .ok_or_else(|| crate::Error::Backend("no bias gradient".into()))?,
                    ),
                    None => None,
                };
                Ok(if lr_weighted {
                    LayerParams {
                        weight: scale(gw, s.weight_lr),
                        bias: gb.map(|b| scale(b, s.bias_lr)),
                    }
                } else {
                    LayerParams {
                        weight: gw,
                        bias: gb,
                    }
                })
            })
            .collect()
    }

    /// `J(X)·t` on the rows of `x`, row-major `n × K` f64 (no autodiff).
    pub fn jvp(&self, x: &[f64], n: usize, tangent: &[LayerParams]) -> Result<Vec<f64>> {
        let (_, f_dot) = self.forward_tangent(&self.params, tangent, self.input(x, n));
        tensor_to_f64(f_dot)
    }

    /// `Θ·v = J·D·Jᵀ·v` on the rows of `x` (`v`, the result: row-major `n × K`): the full
    /// multi-output empirical NTK (learning-rate weighted, as the structured kernel) applied to
    /// a vector, by one backward and one tangent pass in the network's precision.
    pub fn ntk_matvec(&self, x: &[f64], n: usize, v: &[f64]) -> Result<Vec<f64>> {
        let t = self.vjp(x, n, v, true)?;
        self.jvp(x, n, &t)
    }
}

fn scale<const D: usize>(t: Tensor<D>, c: f64) -> Tensor<D> {
    if c == 1.0 {
        t
    } else {
        t.mul_scalar(c)
    }
}
