//! Empirical NTK of the burn network, `Θ(x, x') = Σ_θ ∂f(x)/∂θ · ∂f(x')/∂θ`.
//!
//! **Structured** ([`empirical_ntk`]): for a dense layer `z = s_w·h·W + s_b·b` the Jacobian of
//! an output w.r.t. `W` is the outer product of the layer input `h` and the backprop signal
//! `Δ = ∂f/∂z`, so
//! `Θ = Σ_l s_w²·(H1 H2ᵀ) ⊙ (Δ1 Δ2ᵀ) + s_b²·(Δ1 Δ2ᵀ)`.
//! One forward pass gives every `H`; one backward pass per output unit, with a zero "probe"
//! leaf added to each pre-activation, gives every `Δ` for a whole batch of independent samples.
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
use faer::Mat;

use crate::linalg;
use crate::model::{tensor_to_f64, LayerParams, Network};
use crate::ntk::KernelForm;
use crate::Result;

/// Layer inputs and backprop signals of a batch.
#[derive(Debug, Clone)]
pub struct BackpropSignals {
    /// `inputs[l]`: the input of layer `l` as its weights see it, `A(h)`: `(n·R_l) × n_in`.
    pub inputs: Vec<Mat<f64>>,
    /// `deltas[k][l]`: `∂f_k/∂z_l`, `(n·R_l) × n_out` (f64 copies of the network's numbers).
    pub deltas: Vec<Vec<Mat<f64>>>,
    /// `R_l`: rows per point of layer `l` (output positions of a convolution, else 1).
    pub rows_per_point: Vec<usize>,
}

impl BackpropSignals {
    /// The signals of points `0..n` (the first `n` points of the batch they were computed on).
    pub fn head(&self, n: usize) -> BackpropSignals {
        let head = |(m, r): (&Mat<f64>, &usize)| linalg::block(m.as_ref(), 0, n * r, 0, m.ncols());
        BackpropSignals {
            inputs: self
                .inputs
                .iter()
                .zip(&self.rows_per_point)
                .map(head)
                .collect(),
            deltas: self
                .deltas
                .iter()
                .map(|d| d.iter().zip(&self.rows_per_point).map(head).collect())
                .collect(),
            rows_per_point: self.rows_per_point.clone(),
        }
    }

    /// Number of points.
    pub fn n_points(&self) -> usize {
        match (self.inputs.first(), self.rows_per_point.first()) {
            (Some(m), Some(&r)) => m.nrows() / r.max(1),
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
    fn new(a: &Mat<f64>, d: &Mat<f64>, rows: usize) -> PointGradients {
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
                    a.as_ref().subrows(i * rows, rows).transpose(),
                    d.as_ref().subrows(i * rows, rows),
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
        let mut m = linalg::matmul(self.as_ref().transpose(), other.as_ref());
        m *= faer::Scale(cw);
        if cb != 0.0 {
            let mut b = linalg::gram(self.bias.as_ref(), other.bias.as_ref());
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

fn to_mat(t: Tensor<2>) -> Result<Mat<f64>> {
    let [r, c] = t.dims();
    let v = tensor_to_f64(t)?;
    Ok(linalg::mat_from_rows(&v, r, c))
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
    let k_out = net.config.n_outputs;
    let params = net.params_constant_autodiff();
    let xin = net.input(x, n).autodiff();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut deltas = Vec::with_capacity(k_out);
    for k in 0..k_out {
        let (ins, probes, out) = forward_probed(net, &params, xin.clone(), k == 0);
        if k == 0 {
            inputs = ins.into_iter().map(to_mat).collect::<Result<_>>()?;
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
                to_mat(g)
            })
            .collect::<Result<Vec<_>>>()?;
        deltas.push(dk);
    }
    Ok((
        BackpropSignals {
            inputs,
            deltas,
            rows_per_point: rows_per_point(net),
        },
        outputs,
    ))
}

/// Backprop signals of the rows of `x` for every output in **one** backward pass: each point is
/// repeated K times and row `(i, k)` is seeded with output k (`Σ_{i,k} f_k(x_i)` over the
/// matching rows). Same numbers as [`backprop_signals`] up to round-off, with one pass instead of
/// K — the faster choice for a few points and many outputs (e.g. generating text).
pub fn backprop_signals_batched(net: &Network, x: &[f64], n: usize) -> Result<BackpropSignals> {
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
    let pick = |m: Mat<f64>, k: usize, r: usize| {
        Mat::from_fn(n * r, m.ncols(), |row, c| {
            m[((row / r * k_out + k) * r + row % r, c)]
        })
    };
    let inputs = ins
        .into_iter()
        .zip(&rpp)
        .map(|(t, &r)| Ok(pick(to_mat(t)?, 0, r)))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<Mat<f64>> = probes
        .iter()
        .map(|p| {
            let g = p
                .grad(&grads)
                .ok_or_else(|| crate::Error::Backend("probe leaf without a gradient".into()))?;
            to_mat(g)
        })
        .collect::<Result<_>>()?;
    let deltas = (0..k_out)
        .map(|k| {
            all.iter()
                .zip(&rpp)
                .map(|(m, &r)| pick(m.clone(), k, r))
                .collect()
        })
        .collect();
    Ok(BackpropSignals {
        inputs,
        deltas,
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
    let k_out = s1.deltas.len();
    let r = s1.rows_per_point[l];
    let same = std::ptr::eq(s1, s2);
    let grads =
        |s: &BackpropSignals, k: usize| PointGradients::new(&s.inputs[l], &s.deltas[k][l], r);
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
    let n1 = s1.n_points();
    let n2 = s2.n_points();
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
        if s.input.rows_per_image() > 1 {
            per_layer.push(conv_layer_kernel(s1, s2, l, (cw, cb), form));
            continue;
        }
        let gh = linalg::gram(s1.inputs[l].as_ref(), s2.inputs[l].as_ref());
        let combine =
            |gd: &Mat<f64>| Mat::from_fn(n1, n2, |i, j| (cw * gh[(i, j)] + cb) * gd[(i, j)]);
        let m = match form {
            KernelForm::Trace => {
                let gd = if k_out == 1 {
                    linalg::gram(s1.deltas[0][l].as_ref(), s2.deltas[0][l].as_ref())
                } else {
                    // Σ_k Δ1^k Δ2^kᵀ as one product over the concatenated columns.
                    let cat = |s: &BackpropSignals, n: usize| {
                        let w = s.deltas[0][l].ncols();
                        Mat::from_fn(n, w * k_out, |i, c| s.deltas[c / w][l][(i, c % w)])
                    };
                    let mut g = linalg::gram(cat(s1, n1).as_ref(), cat(s2, n2).as_ref());
                    g *= faer::Scale(1.0 / k_out as f64);
                    g
                };
                combine(&gd)
            }
            KernelForm::Full => {
                let mut full = Mat::zeros(n1 * k_out, n2 * k_out);
                for k in 0..k_out {
                    for kp in 0..k_out {
                        let gd = linalg::gram(s1.deltas[k][l].as_ref(), s2.deltas[kp][l].as_ref());
                        let c = combine(&gd);
                        place_output_block(&mut full, &c, (k, kp), k_out);
                    }
                }
                full
            }
        };
        per_layer.push(m);
    }
    EmpiricalNtk { per_layer, form }
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
