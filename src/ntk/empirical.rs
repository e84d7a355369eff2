//! Empirical NTK of the burn network, `Θ(x, x') = Σ_θ ∂f(x)/∂θ · ∂f(x')/∂θ`.
//!
//! **Structured** ([`empirical_ntk`]): for a dense layer `z = s_w·h·W + s_b·b` the Jacobian of
//! an output w.r.t. `W` is the outer product of the layer input `h` and the backprop signal
//! `Δ = ∂f/∂z`, so
//! `Θ = Σ_l s_w²·(H1 H2ᵀ) ⊙ (Δ1 Δ2ᵀ) + s_b²·(Δ1 Δ2ᵀ)`.
//! One forward pass gives every `H`. For dense networks the explicit backward recursion
//! `Δ_l = (Δ_{l+1}·s_w·W_{l+1}ᵀ) ⊙ φ′(z_l)`, all K outputs stacked, gives every `Δ` with one GEMM
//! per layer; for conv nets one autodiff backward pass per output unit, with a zero "probe" leaf
//! added to each pre-activation, gives them for a whole batch of independent samples.
//! Where both sides are the same points the Gram products are taken on the lower triangle by
//! block rows and mirrored once per term.
//! A convolution is a dense layer on its im2col rows (one per image and output position,
//! [`crate::model::LayerInput`]); its weight gradient for image i is the sum over positions
//! `G_i = Σ_p A_{i,p}ᵀ Δ_{i,p}` (one small GEMM per image) and its kernel term is
//! `s_w²·⟨G_i, G_j⟩ + s_b²·⟨Σ_p Δ_{i,p}, Σ_q Δ_{j,q}⟩`, the Gram matrix of these per-image
//! gradients (`f²·C·C_out` numbers per image and output, never the whole Jacobian).
//! The `n × P` Jacobian is never built; the Gram products are accumulated in f64 (faer).
//! Under `mup` each term is weighted by its layer's learning-rate multiplier (the kernel that
//! governs SGD with per-layer learning rates); the naive kernel below is the unweighted `J Jᵀ`.
//!
//! **Naive** ([`naive_empirical_ntk`]): one backward pass per sample and output, an explicit
//! Jacobian, `Θ = J1 J2ᵀ`. For tests only.

use burn::tensor::Tensor;
use faer::{Mat, MatRef};

use crate::linalg;
use crate::model::{tensor_to_f64, LayerParams, Network};
use crate::ntk::KernelForm;
use crate::Result;

/// Layer inputs and backprop signals of a batch (f64 copies of the network's numbers).
///
/// Each matrix is stored transposed — one column per row of the tensor, i.e. the tensor's
/// row-major numbers as they are — which is both a straight copy and the layout in which the
/// Gram products `A·Bᵀ` run fastest (measured 139 vs 77 GFLOP/s for 1024 × 1024 in f64).
#[derive(Debug, Clone)]
pub struct BackpropSignals {
    /// `inputs_t[l]`: the input of layer `l` as its weights see it, `A(h)ᵀ`: `n_in × (n·R_l)`.
    inputs_t: Vec<Mat<f64>>,
    /// `deltas_t[k][l]`: `(∂f_k/∂z_l)ᵀ`, `n_out × (n·R_l)`.
    deltas_t: Vec<Vec<Mat<f64>>>,
    /// `R_l`: rows per point of layer `l` (output positions of a convolution, else 1).
    pub rows_per_point: Vec<usize>,
    /// `trace_factors_t[l]`, where known: `Uᵀ` (`r × n`) with `U·Uᵀ = Σ_k Δ_l^k·Δ_l^kᵀ`, a
    /// narrower factor of the output-summed signal Gram (see [`last_hidden_trace_factor`]).
    trace_factors_t: Vec<Option<Mat<f64>>>,
}

impl BackpropSignals {
    /// The input of layer `l` as its weights see it, `A(h)`: `(n·R_l) × n_in`.
    pub fn input(&self, l: usize) -> MatRef<'_, f64> {
        self.inputs_t[l].transpose()
    }

    /// `Δ_l^k = ∂f_k/∂z_l`: `(n·R_l) × n_out`.
    pub fn delta(&self, k: usize, l: usize) -> MatRef<'_, f64> {
        self.deltas_t[k][l].transpose()
    }

    /// `U` (`(n·R_l) × r`) with `U·Uᵀ = Σ_k Δ_l^k·Δ_l^kᵀ`, where layer `l` has one.
    pub fn trace_factor(&self, l: usize) -> Option<MatRef<'_, f64>> {
        self.trace_factors_t[l].as_ref().map(|u| u.transpose())
    }

    /// Number of outputs K.
    pub fn n_outputs(&self) -> usize {
        self.deltas_t.len()
    }

    /// The signals of points `0..n` (the first `n` points of the batch they were computed on).
    pub fn head(&self, n: usize) -> BackpropSignals {
        let head = |(m, r): (&Mat<f64>, &usize)| linalg::block(m.as_ref(), 0, m.nrows(), 0, n * r);
        BackpropSignals {
            inputs_t: self
                .inputs_t
                .iter()
                .zip(&self.rows_per_point)
                .map(head)
                .collect(),
            deltas_t: self
                .deltas_t
                .iter()
                .map(|d| d.iter().zip(&self.rows_per_point).map(head).collect())
                .collect(),
            rows_per_point: self.rows_per_point.clone(),
            trace_factors_t: self
                .trace_factors_t
                .iter()
                .zip(&self.rows_per_point)
                .map(|(u, r)| u.as_ref().map(|u| head((u, r))))
                .collect(),
        }
    }

    /// The signals of points `0..n` and of points `n..`, the batch split in two (each matrix
    /// split and freed in turn, so that at most one extra matrix is alive).
    pub fn split_at(self, n: usize) -> (BackpropSignals, BackpropSignals) {
        let rpp = self.rows_per_point;
        let split = |ms: Vec<Mat<f64>>| -> (Vec<Mat<f64>>, Vec<Mat<f64>>) {
            ms.into_iter()
                .zip(&rpp)
                .map(|(m, &r)| {
                    let cut = (n * r).min(m.ncols());
                    let head = linalg::block(m.as_ref(), 0, m.nrows(), 0, cut);
                    let tail = linalg::block(m.as_ref(), 0, m.nrows(), cut, m.ncols() - cut);
                    (head, tail)
                })
                .unzip()
        };
        let (inputs_head, inputs_tail) = split(self.inputs_t);
        let (deltas_head, deltas_tail) = self.deltas_t.into_iter().map(split).unzip();
        let (factors_head, factors_tail) = self
            .trace_factors_t
            .into_iter()
            .zip(&rpp)
            .map(|(u, &r)| match u {
                Some(u) => {
                    let (h, t) = split_one(u, n * r);
                    (Some(h), Some(t))
                }
                None => (None, None),
            })
            .unzip();
        (
            BackpropSignals {
                inputs_t: inputs_head,
                deltas_t: deltas_head,
                rows_per_point: rpp.clone(),
                trace_factors_t: factors_head,
            },
            BackpropSignals {
                inputs_t: inputs_tail,
                deltas_t: deltas_tail,
                rows_per_point: rpp,
                trace_factors_t: factors_tail,
            },
        )
    }

    /// Bytes of the f64 matrices.
    pub fn bytes(&self) -> u64 {
        let m = |m: &Mat<f64>| (m.nrows() * m.ncols() * 8) as u64;
        self.inputs_t.iter().map(m).sum::<u64>()
            + self.deltas_t.iter().flatten().map(m).sum::<u64>()
    }

    /// Number of points.
    pub fn n_points(&self) -> usize {
        match (self.inputs_t.first(), self.rows_per_point.first()) {
            (Some(m), Some(&r)) => m.ncols() / r.max(1),
            _ => 0,
        }
    }
}

/// Per-point parameter gradients of one convolution for one output: column i holds
/// `vec(Σ_p A_{i,p}ᵀ Δ_{i,p})` (`n_in·n_out` numbers), column-major `(n_in·n_out) × n`.
struct PointGradients {
    values: Vec<f64>,
    dim: usize,
    /// `Σ_p Δ_{i,p}`, `n × n_out` (the bias gradients).
    bias: Mat<f64>,
}

impl PointGradients {
    fn new(a: MatRef<'_, f64>, d: MatRef<'_, f64>, rows: usize) -> PointGradients {
        use rayon::prelude::*;
        let n = a.nrows() / rows;
        let (ni, no) = (a.ncols(), d.ncols());
        let dim = ni * no;
        let mut values = vec![0.0; n * dim];
        values
            .par_chunks_mut(dim.max(1))
            .enumerate()
            .for_each(|(i, out)| {
                let g = faer::MatMut::from_column_major_slice_mut(out, ni, no);
                faer::linalg::matmul::matmul(
                    g,
                    faer::Accum::Replace,
                    a.subrows(i * rows, rows).transpose(),
                    d.subrows(i * rows, rows),
                    1.0,
                    faer::Par::Seq,
                );
            });
        let bias = Mat::from_fn(n, no, |i, c| {
            (0..rows).map(|p| d[(i * rows + p, c)]).sum::<f64>()
        });
        PointGradients { values, dim, bias }
    }

    fn as_ref(&self) -> faer::MatRef<'_, f64> {
        faer::MatRef::from_column_major_slice(&self.values, self.dim, self.bias.nrows())
    }

    /// `cw·⟨G1_i, G2_j⟩ + cb·⟨B1_i, B2_j⟩`.
    fn kernel(&self, other: &PointGradients, cw: f64, cb: f64) -> Mat<f64> {
        let mut m = linalg::gram_maybe_sym(self.as_ref().transpose(), other.as_ref().transpose());
        m *= faer::Scale(cw);
        if cb != 0.0 {
            let mut b = linalg::gram_maybe_sym(self.bias.as_ref(), other.bias.as_ref());
            b *= faer::Scale(cb);
            m += &b;
        }
        m
    }
}

/// The empirical NTK split by layer: `Θ = Σ_l per_layer[l]`.
#[derive(Debug, Clone)]
pub struct EmpiricalNtk {
    /// Contribution of each dense layer (weights and bias).
    pub per_layer: Vec<Mat<f64>>,
    /// Representation of the output axes.
    pub form: KernelForm,
}

impl EmpiricalNtk {
    /// The whole kernel.
    pub fn total(&self) -> Mat<f64> {
        let mut t = self.per_layer[0].clone();
        for m in &self.per_layer[1..] {
            t += m;
        }
        t
    }
}

/// `tᵀ` in f64 (`t`'s row-major numbers as they are, widened).
fn to_mat_t(t: Tensor<2>) -> Result<Mat<f64>> {
    Ok(to_mats_t(t, 1)?.swap_remove(0))
}

/// `Bᵀ` in f64 for each of the `blocks` equal row blocks `B` of `t`, widened straight from the
/// tensor's own precision (no intermediate f64 vector, no transposition).
fn to_mats_t(t: Tensor<2>, blocks: usize) -> Result<Vec<Mat<f64>>> {
    fn split<T: Copy + Into<f64>>(
        v: &[T],
        rows: usize,
        cols: usize,
        blocks: usize,
    ) -> Vec<Mat<f64>> {
        (0..blocks)
            .map(|b| {
                let block = &v[b * rows * cols..(b + 1) * rows * cols];
                linalg::mat_t_from_rows_of(block, rows, cols)
            })
            .collect()
    }
    let [r, c] = t.dims();
    let blocks = blocks.max(1);
    let rows = r / blocks;
    let data = t.into_data();
    if let Ok(v) = data.as_slice::<f32>() {
        return Ok(split(v, rows, c, blocks));
    }
    if let Ok(v) = data.as_slice::<f64>() {
        return Ok(split(v, rows, c, blocks));
    }
    let v = data
        .try_into_vec_as::<f64>()
        .map_err(|e| crate::Error::Backend(format!("{e:?}")))?;
    Ok(split(&v, rows, c, blocks))
}

/// Forward with probes: returns the layer inputs and the outputs, and the probe leaves.
fn forward_probed(
    net: &Network,
    params: &[LayerParams],
    x: Tensor<2>,
    record_inputs: bool,
) -> (Vec<Tensor<2>>, Vec<Tensor<2>>, Tensor<2>) {
    let n = x.dims()[0];
    let ad_device = net.device().clone().autodiff();
    let dtype = net.dtype();
    if let Some(ops) = &net.ops {
        let layers = net.shapes.len();
        let mut inputs: Vec<Option<Tensor<2>>> = vec![None; layers];
        let mut probes: Vec<Option<Tensor<2>>> = vec![None; layers];
        let out = crate::model::flow::run(ops, x, net.config.model.activation, &mut |l, h| {
            let s = &net.shapes[l];
            let a = s.input.present(h);
            if record_inputs {
                inputs[l] = Some(a.clone().inner());
            }
            let rows = n * s.input.rows_per_image();
            let probe = Tensor::<2>::zeros([rows, s.n_out], (&ad_device, dtype)).require_grad();
            probes[l] = Some(probe.clone());
            s.affine(&params[l], a) + probe
        });
        let every = |v: Vec<Option<Tensor<2>>>| v.into_iter().flatten().collect::<Vec<_>>();
        return (every(inputs), every(probes), out);
    }
    let last = net.shapes.len() - 1;
    let mut inputs = Vec::new();
    let mut probes = Vec::new();
    let mut h = x;
    for (l, (s, p)) in net.shapes.iter().zip(params).enumerate() {
        let a = s.input.present(h);
        if record_inputs {
            inputs.push(a.clone().inner());
        }
        let rows = n * s.input.rows_per_image();
        let probe = Tensor::<2>::zeros([rows, s.n_out], (&ad_device, dtype)).require_grad();
        let mut z = a.matmul(p.weight.clone());
        if s.weight_scale != 1.0 {
            z = z.mul_scalar(s.weight_scale);
        }
        if let Some(b) = &p.bias {
            z = z + b.clone().mul_scalar(s.bias_scale).unsqueeze::<2>();
        }
        z = z + probe.clone();
        probes.push(probe);
        h = if l == last {
            z
        } else {
            net.config.model.activation.forward(z)
        };
    }
    (inputs, probes, h)
}

/// Layer inputs `H_l` and backprop signals `Δ_l^k` of the rows of `x` (`n × d`, row-major):
/// one forward and one backward pass per output unit, parameters as constants.
pub fn backprop_signals(net: &Network, x: &[f64], n: usize) -> Result<BackpropSignals> {
    Ok(signals_and_outputs(net, x, n)?.0)
}

/// [`backprop_signals`] and the network's outputs on the same rows (row-major `n × K`, f64),
/// taken from the first forward pass.
pub fn signals_and_outputs(
    net: &Network,
    x: &[f64],
    n: usize,
) -> Result<(BackpropSignals, Vec<f64>)> {
    if is_dense(net) {
        dense_signals_and_outputs(net, x, n)
    } else {
        autodiff_signals_and_outputs(net, x, n)
    }
}

/// [`signals_and_outputs`] by autodiff, for any architecture: a zero "probe" leaf added to each
/// pre-activation, one forward and one backward pass per output. The path of convolutional
/// networks, and for dense ones an independent check of the explicit recursion
/// ([`signals_and_outputs`] takes that one for them).
pub fn autodiff_signals_and_outputs(
    net: &Network,
    x: &[f64],
    n: usize,
) -> Result<(BackpropSignals, Vec<f64>)> {
    let k_out = net.config.n_outputs;
    let params = net.params_constant_autodiff();
    let xin = net.input(x, n).autodiff();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut deltas = Vec::with_capacity(k_out);
    for k in 0..k_out {
        let (ins, probes, out) = forward_probed(net, &params, xin.clone(), k == 0);
        if k == 0 {
            inputs = ins.into_iter().map(to_mat_t).collect::<Result<_>>()?;
            outputs = tensor_to_f64(out.clone().inner())?;
        }
        let fk = if k_out == 1 {
            out.sum()
        } else {
            out.narrow(1, k, 1).sum()
        };
        let grads = fk.backward();
        let dk = probes
            .iter()
            .map(|p| {
                let g = p.grad(&grads).expect("probe leaf has a gradient");
                to_mat_t(g)
            })
            .collect::<Result<Vec<_>>>()?;
        deltas.push(dk);
    }
    Ok((
        BackpropSignals {
            inputs_t: inputs,
            deltas_t: deltas,
            trace_factors_t: vec![None; net.shapes.len()],
            rows_per_point: rows_per_point(net),
        },
        outputs,
    ))
}

/// Whether every layer of `net` is dense (an MLP).
fn is_dense(net: &Network) -> bool {
    net.ops.is_none()
        && net
            .shapes
            .iter()
            .all(|s| matches!(s.input, crate::model::LayerInput::Dense))
}

/// [`signals_and_outputs`] of a dense network by the explicit backward recursion, for every
/// output at once: one forward pass with plain tensors (`z_l = s_w·h_l·W_l + s_b·b_l`,
/// `h_{l+1} = φ(z_l)`), then with the K seeds stacked as `K·n` rows (block k is `e_k`),
/// `Δ_l = (Δ_{l+1}·s_w·W_{l+1}ᵀ) ⊙ φ′(z_l)`: one GEMM per layer for all outputs, no autodiff
/// graph and no repeated forward passes. Each layer's signals are widened to f64 as soon as they
/// are computed, so only two layers of the network's own numbers are alive at a time.
fn dense_signals_and_outputs(
    net: &Network,
    x: &[f64],
    n: usize,
) -> Result<(BackpropSignals, Vec<f64>)> {
    let k_out = net.config.n_outputs;
    let activation = net.config.model.activation;
    let last = net.shapes.len() - 1;
    let mut inputs = Vec::with_capacity(last + 1);
    let mut slopes = Vec::with_capacity(last);
    let mut h = net.input(x, n);
    for (l, (s, p)) in net.shapes.iter().zip(&net.params).enumerate() {
        let mut z = h.clone().matmul(p.weight.clone());
        if s.weight_scale != 1.0 {
            z = z.mul_scalar(s.weight_scale);
        }
        if let Some(b) = &p.bias {
            z = z + b.clone().mul_scalar(s.bias_scale).unsqueeze::<2>();
        }
        inputs.push(to_mat_t(h)?);
        h = if l == last {
            z
        } else {
            slopes.push(activation.derivative_tensor(z.clone()));
            activation.forward(z)
        };
    }
    let outputs = tensor_to_f64(h)?;
    let seeds: Vec<f64> = (0..k_out * n)
        .flat_map(|r| (0..k_out).map(move |k| if r / n == k { 1.0 } else { 0.0 }))
        .collect();
    let mut delta =
        crate::model::tensor_from_f64(&seeds, [k_out * n, k_out], net.dtype(), net.device());
    let mut by_layer = vec![Vec::new(); last + 1];
    let mut trace_factors_t = vec![None; last + 1];
    for l in (0..last).rev() {
        let next = &net.shapes[l + 1];
        let mut g = delta
            .clone()
            .matmul(net.params[l + 1].weight.clone().transpose());
        if next.weight_scale != 1.0 {
            g = g.mul_scalar(next.weight_scale);
        }
        by_layer[l + 1] = to_mats_t(delta, k_out)?;
        let width = g.dims()[1];
        let slope = slopes.pop().expect("one slope per hidden layer");
        if l + 1 == last && k_out > 1 {
            trace_factors_t[l] = Some(last_hidden_trace_factor(net, slope.clone())?);
        }
        delta = if k_out == 1 {
            g * slope
        } else {
            (g.reshape([k_out, n, width]) * slope.unsqueeze::<3>()).reshape([k_out * n, width])
        };
    }
    by_layer[0] = to_mats_t(delta, k_out)?;
    // by_layer[l][k] → deltas[k][l]
    let mut deltas = vec![Vec::with_capacity(last + 1); k_out];
    for layer in by_layer {
        for (k, m) in layer.into_iter().enumerate() {
            deltas[k].push(m);
        }
    }
    Ok((
        BackpropSignals {
            inputs_t: inputs,
            deltas_t: deltas,
            rows_per_point: vec![1; last + 1],
            trace_factors_t,
        },
        outputs,
    ))
}

/// The trace factor of the last hidden layer of a dense network: its signals are
/// `Δ^k = φ′(z) ⊙ s_w·W_L[:, k]ᵀ` (the readout is linear), so
/// `Σ_k Δ^k(x)_i·Δ^k(x′)_i = φ′_i(x)·φ′_i(x′)·c_i` with `c_i = s_w²·Σ_k W_L[i, k]²`:
/// `U = φ′(z)·diag(√c)` has one column per unit instead of one per unit and output, and the
/// output-summed Gram of that layer costs a K-th of the products.
fn last_hidden_trace_factor(net: &Network, slope: Tensor<2>) -> Result<Mat<f64>> {
    let last = net.shapes.len() - 1;
    let readout = tensor_to_f64(net.params[last].weight.clone())?;
    let k_out = net.config.n_outputs;
    let s_w = net.shapes[last].weight_scale;
    let root_c: Vec<f64> = readout
        .chunks(k_out)
        .map(|row| s_w * row.iter().map(|w| w * w).sum::<f64>().sqrt())
        .collect();
    let mut u_t = to_mat_t(slope)?;
    for j in 0..u_t.ncols() {
        for (u, c) in u_t.col_as_slice_mut(j).iter_mut().zip(&root_c) {
            *u *= c;
        }
    }
    Ok(u_t)
}

/// Splits the columns of `m` at `cut` (clamped to its width).
fn split_one(m: Mat<f64>, cut: usize) -> (Mat<f64>, Mat<f64>) {
    let cut = cut.min(m.ncols());
    (
        linalg::block(m.as_ref(), 0, m.nrows(), 0, cut),
        linalg::block(m.as_ref(), 0, m.nrows(), cut, m.ncols() - cut),
    )
}

/// Backprop signals of the rows of `x` for every output in **one** backward pass: each point is
/// repeated K times and row `(i, k)` is seeded with output k (`Σ_{i,k} f_k(x_i)` over the
/// matching rows). Same numbers as [`backprop_signals`] up to round-off, with one pass instead of
/// K — the faster choice for a few points and many outputs (e.g. generating text).
pub fn backprop_signals_batched(net: &Network, x: &[f64], n: usize) -> Result<BackpropSignals> {
    if is_dense(net) {
        return Ok(dense_signals_and_outputs(net, x, n)?.0);
    }
    let k_out = net.config.n_outputs;
    let d = net.config.input_dim;
    let rep: Vec<f64> = (0..n)
        .flat_map(|i| (0..k_out).flat_map(move |_| x[i * d..(i + 1) * d].iter().copied()))
        .collect();
    let params = net.params_constant_autodiff();
    let xin = net.input(&rep, n * k_out).autodiff();
    let (ins, probes, out) = forward_probed(net, &params, xin, true);
    let eye: Vec<f64> = (0..n * k_out)
        .flat_map(|r| (0..k_out).map(move |k| if r % k_out == k { 1.0 } else { 0.0 }))
        .collect();
    let mask = crate::model::tensor_from_f64(
        &eye,
        [n * k_out, k_out],
        net.dtype(),
        &net.device().clone().autodiff(),
    );
    let grads = (out * mask).sum().backward();
    // point i·K + k (its R rows): the inputs are repeated, the signals belong to output k
    let rpp = rows_per_point(net);
    let pick = |m_t: &Mat<f64>, k: usize, r: usize| {
        Mat::from_fn(m_t.nrows(), n * r, |c, row| {
            m_t[(c, (row / r * k_out + k) * r + row % r)]
        })
    };
    let inputs = ins
        .into_iter()
        .zip(&rpp)
        .map(|(t, &r)| Ok(pick(&to_mat_t(t)?, 0, r)))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<Mat<f64>> = probes
        .iter()
        .map(|p| {
            let g = p
                .grad(&grads)
                .ok_or_else(|| crate::Error::Backend("probe leaf without a gradient".into()))?;
            to_mat_t(g)
        })
        .collect::<Result<_>>()?;
    let deltas = (0..k_out)
        .map(|k| all.iter().zip(&rpp).map(|(m, &r)| pick(m, k, r)).collect())
        .collect();
    Ok(BackpropSignals {
        inputs_t: inputs,
        deltas_t: deltas,
        trace_factors_t: vec![None; rpp.len()],
        rows_per_point: rpp,
    })
}

/// Writes the `(k, k')` output block `c` (`n1 × n2`) into a full-form kernel (index
/// `point·K + output`).
fn place_output_block(full: &mut Mat<f64>, c: &Mat<f64>, (k, kp): (usize, usize), k_out: usize) {
    for i in 0..c.nrows() {
        for j in 0..c.ncols() {
            full[(i * k_out + k, j * k_out + kp)] = c[(i, j)];
        }
    }
}

/// Rows per point of every layer of `net`.
fn rows_per_point(net: &Network) -> Vec<usize> {
    net.shapes
        .iter()
        .map(|s| s.input.rows_per_image())
        .collect()
}

/// One convolution's kernel term from per-point gradients, in the configured form.
fn conv_layer_kernel(
    s1: &BackpropSignals,
    s2: &BackpropSignals,
    l: usize,
    (cw, cb): (f64, f64),
    form: KernelForm,
) -> Mat<f64> {
    let k_out = s1.n_outputs();
    let r = s1.rows_per_point[l];
    let same = std::ptr::eq(s1, s2);
    let grads = |s: &BackpropSignals, k: usize| PointGradients::new(s.input(l), s.delta(k, l), r);
    let (n1, n2) = (s1.n_points(), s2.n_points());
    match form {
        KernelForm::Trace => {
            let mut m = Mat::zeros(n1, n2);
            for k in 0..k_out {
                let g1 = grads(s1, k);
                let term = if same {
                    g1.kernel(&g1, cw, cb)
                } else {
                    g1.kernel(&grads(s2, k), cw, cb)
                };
                m += &term;
            }
            m *= faer::Scale(1.0 / k_out as f64);
            m
        }
        KernelForm::Full => {
            let mut full = Mat::zeros(n1 * k_out, n2 * k_out);
            for k in 0..k_out {
                let g1 = grads(s1, k);
                for kp in 0..k_out {
                    let c = if same && kp == k {
                        g1.kernel(&g1, cw, cb)
                    } else {
                        g1.kernel(&grads(s2, kp), cw, cb)
                    };
                    place_output_block(&mut full, &c, (k, kp), k_out);
                }
            }
            full
        }
    }
}

/// Structured empirical NTK between the rows of `x1` and `x2` from their backprop signals.
pub fn ntk_from_signals(
    net: &Network,
    s1: &BackpropSignals,
    s2: &BackpropSignals,
    form: KernelForm,
) -> EmpiricalNtk {
    let k_out = net.config.n_outputs;
    let mut per_layer = Vec::with_capacity(net.shapes.len());
    for (l, s) in net.shapes.iter().enumerate() {
        // Learning-rate multipliers (1 except under mup) weight each term, so that the kernel is
        // the one that governs SGD: Θ = Σ_l η_l/η · J_l J_lᵀ.
        let cw = s.weight_scale * s.weight_scale * s.weight_lr;
        let cb = if net.config.model.bias {
            s.bias_scale * s.bias_scale * s.bias_lr
        } else {
            0.0
        };
        per_layer.push(if s.input.rows_per_image() > 1 {
            conv_layer_kernel(s1, s2, l, (cw, cb), form)
        } else {
            dense_layer_kernel((s1, s2), l, (cw, cb), form, k_out)
        });
    }
    EmpiricalNtk { per_layer, form }
}

/// `out (+)= a·bᵀ`; where the row and column points are the same (`same`), only the lower
/// triangle (half the work).
fn signal_product(
    same: bool,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    out: &mut Mat<f64>,
    accum: faer::Accum,
) {
    if same {
        linalg::gram_lower_into(out.as_mut(), a, accum)
    } else {
        linalg::gram_into(out.as_mut(), a, b, accum)
    }
}

/// `(cw·GH + cb) ⊙ GD`, in place in `gd`.
fn combine_terms(gh: &Mat<f64>, gd: &mut Mat<f64>, (cw, cb): (f64, f64)) {
    for j in 0..gd.ncols() {
        let h = gh.col_as_slice(j);
        for (d, &h) in gd.col_as_slice_mut(j).iter_mut().zip(h) {
            *d *= cw * h + cb;
        }
    }
}

/// A dense layer's term of the kernel: `(cw·GH + cb) ⊙ GD` with GH the Gram matrix of the
/// layer's inputs and GD that of its backprop signals (averaged over outputs, or per output
/// pair in the full form). Where the row and column points are the same, only lower triangles
/// are multiplied (half the work) and each layer term is mirrored once.
fn dense_layer_kernel(
    (s1, s2): (&BackpropSignals, &BackpropSignals),
    l: usize,
    coefficients: (f64, f64),
    form: KernelForm,
    k_out: usize,
) -> Mat<f64> {
    let (n1, n2) = (s1.n_points(), s2.n_points());
    let same = std::ptr::eq(s1, s2);
    let mut gh = Mat::zeros(n1, n2);
    signal_product(
        same,
        s1.input(l),
        s2.input(l),
        &mut gh,
        faer::Accum::Replace,
    );
    match form {
        KernelForm::Trace => {
            // Σ_k Δ1^k Δ2^kᵀ / K, accumulated in one matrix.
            let mut gd = Mat::zeros(n1, n2);
            if let (Some(u1), Some(u2)) = (s1.trace_factor(l), s2.trace_factor(l)) {
                signal_product(same, u1, u2, &mut gd, faer::Accum::Replace);
            } else {
                for k in 0..k_out {
                    let accum = if k == 0 {
                        faer::Accum::Replace
                    } else {
                        faer::Accum::Add
                    };
                    signal_product(same, s1.delta(k, l), s2.delta(k, l), &mut gd, accum);
                }
            }
            if k_out > 1 {
                gd *= faer::Scale(1.0 / k_out as f64);
            }
            combine_terms(&gh, &mut gd, coefficients);
            if same {
                linalg::mirror_lower(&mut gd);
            }
            gd
        }
        KernelForm::Full => {
            if same {
                linalg::mirror_lower(&mut gh);
            }
            full_form_layer_kernel((s1, s2), l, &gh, coefficients, k_out)
        }
    }
}

/// A dense layer's term of the full (`N·K × N·K`) kernel: one block per output pair.
fn full_form_layer_kernel(
    (s1, s2): (&BackpropSignals, &BackpropSignals),
    l: usize,
    gh: &Mat<f64>,
    coefficients: (f64, f64),
    k_out: usize,
) -> Mat<f64> {
    let (n1, n2) = (s1.n_points(), s2.n_points());
    let same = std::ptr::eq(s1, s2);
    let mut full = Mat::zeros(n1 * k_out, n2 * k_out);
    let mut gd = Mat::zeros(n1, n2);
    for k in 0..k_out {
        for kp in 0..k_out {
            if same && kp < k {
                // Block (k, kp) is block (kp, k) transposed (GH is symmetric), taken when k was
                // kp: not multiplied twice, and the kernel exactly symmetric.
                for i in 0..n1 {
                    for j in 0..n2 {
                        full[(i * k_out + k, j * k_out + kp)] =
                            full[(j * k_out + kp, i * k_out + k)];
                    }
                }
                continue;
            }
            if same && k == kp {
                linalg::gram_lower_into(gd.as_mut(), s1.delta(k, l), faer::Accum::Replace);
                combine_terms(gh, &mut gd, coefficients);
                linalg::mirror_lower(&mut gd);
            } else {
                linalg::gram_into(
                    gd.as_mut(),
                    s1.delta(k, l),
                    s2.delta(kp, l),
                    faer::Accum::Replace,
                );
                combine_terms(gh, &mut gd, coefficients);
            }
            place_output_block(&mut full, &gd, (k, kp), k_out);
        }
    }
    full
}

/// Structured empirical NTK between `x1` (`n1` rows) and `x2` (`n2` rows; `None` = `x1`).
pub fn empirical_ntk(
    net: &Network,
    x1: &[f64],
    n1: usize,
    x2: Option<(&[f64], usize)>,
    form: KernelForm,
) -> Result<EmpiricalNtk> {
    let s1 = backprop_signals(net, x1, n1)?;
    match x2 {
        None => Ok(ntk_from_signals(net, &s1, &s1, form)),
        Some((x2, n2)) => {
            let s2 = backprop_signals(net, x2, n2)?;
            Ok(ntk_from_signals(net, &s1, &s2, form))
        }
    }
}

/// Structured NTK between the rows of `x` and points whose signals are `s_cols`, computed in
/// row blocks of `block` points, so that only one block's signals are in memory at a time.
pub fn empirical_ntk_blocked(
    net: &Network,
    x: &[f64],
    n: usize,
    s_cols: &BackpropSignals,
    form: KernelForm,
    block: usize,
) -> Result<Mat<f64>> {
    let d = net.config.input_dim;
    let rpp = form.rows_per_point(net.config.n_outputs);
    let cols = s_cols.n_points() * rpp;
    let mut out = Mat::zeros(n * rpp, cols);
    let block = block.max(1);
    let mut r0 = 0;
    while r0 < n {
        let nb = block.min(n - r0);
        let s = backprop_signals(net, &x[r0 * d..(r0 + nb) * d], nb)?;
        let t = ntk_from_signals(net, &s, s_cols, form).total();
        out.submatrix_mut(r0 * rpp, 0, nb * rpp, cols)
            .copy_from(t.as_ref());
        r0 += nb;
    }
    Ok(out)
}

/// Explicit Jacobian `(n·K) × P` (row `i·K + k`), one backward pass per sample and output.
/// Tests only: this is exactly what the structured kernel avoids.
pub fn naive_jacobian(net: &Network, x: &[f64], n: usize) -> Result<Mat<f64>> {
    let k_out = net.config.n_outputs;
    let d = net.config.input_dim;
    let p = net.config.n_params();
    let mut jac = Mat::zeros(n * k_out, p);
    for i in 0..n {
        for k in 0..k_out {
            let params = net.params_requiring_grad();
            let xi = net.input(&x[i * d..(i + 1) * d], 1).autodiff();
            let out = net.forward_with(&params, xi);
            let fk = out.narrow(1, k, 1).sum();
            let grads = fk.backward();
            let mut row = Vec::with_capacity(p);
            for lp in &params {
                let gw = lp.weight.grad(&grads).expect("weight gradient");
                row.extend(tensor_to_f64(gw)?);
                if let Some(b) = &lp.bias {
                    let gb = b.grad(&grads).expect("bias gradient");
                    row.extend(tensor_to_f64(gb)?);
                }
            }
            for (c, v) in row.into_iter().enumerate() {
                jac[(i * k_out + k, c)] = v;
            }
        }
    }
    Ok(jac)
}

/// Naive empirical NTK, full form `(n1·K) × (n2·K)`, from explicit Jacobians.
pub fn naive_empirical_ntk(
    net: &Network,
    x1: &[f64],
    n1: usize,
    x2: &[f64],
    n2: usize,
) -> Result<Mat<f64>> {
    let j1 = naive_jacobian(net, x1, n1)?;
    let j2 = naive_jacobian(net, x2, n2)?;
    Ok(linalg::gram(j1.as_ref(), j2.as_ref()))
}

/// Output-averaged (trace) form of a full kernel.
pub fn trace_of_full(full: &Mat<f64>, k_out: usize) -> Mat<f64> {
    let n1 = full.nrows() / k_out;
    let n2 = full.ncols() / k_out;
    Mat::from_fn(n1, n2, |i, j| {
        (0..k_out)
            .map(|k| full[(i * k_out + k, j * k_out + k)])
            .sum::<f64>()
            / k_out as f64
    })
}
