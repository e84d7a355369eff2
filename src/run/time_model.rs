//! How long a run on the dense (eigendecomposition) path is expected to take, phase by phase,
//! from the same sizes the memory estimate uses. Each phase is its operation count at a rate
//! measured on this project's 2-core reference machine, plus a fixed per-operation cost where
//! small operations are bound by dispatch rather than arithmetic. The phases are those the run
//! times itself (`timings_s` in `report.json`), so every constant can be checked against a
//! recorded run; the table in `docs/performance.md` compares the estimates with measured runs.

use crate::config::KernelSolution;
use crate::dynamics::TwinSpace;

/// Dense products in faer (the empirical kernels' Gram products, kernel-track predictions),
/// FLOP/s on two cores.
pub const GEMM_FLOPS: f64 = 6.0e10;
/// The network's arithmetic in burn's tensors (forward and backward) on large batches, FLOP/s;
/// a batch of `B` points runs at `B/(B + TRAIN_HALF_RATE_BATCH)` of it.
pub const TRAIN_FLOPS: f64 = 1.0e11;
/// The batch size at which the network's arithmetic runs at half [`TRAIN_FLOPS`].
pub const TRAIN_HALF_RATE_BATCH: f64 = 48.0;
/// A conv net's training arithmetic (patches built from pad/slice/concatenate, per-position
/// products) runs at this fraction of the dense rate (digits_cnn: 0.42).
pub const CONV_TRAIN_EFFICIENCY: f64 = 0.45;
/// Lanczos iterations of a matrix-free λ_max (each a forward-mode and a reverse-mode pass).
pub const MATRIX_FREE_ITERATIONS: f64 = 30.0;
/// Dispatch cost of one layer's operations in a training step (forward, backward, update), s.
pub const STEP_SECONDS_PER_LAYER: f64 = 30e-6;
/// A symmetric eigendecomposition with vectors costs about this many FLOPs per m³...
pub const EIGEN_FLOPS_PER_CUBE: f64 = 10.0;
/// ... at this rate, FLOP/s.
pub const EIGEN_FLOPS: f64 = 5.0e10;
/// Eigenvalues alone (a spectrum) cost about this many FLOPs per m³ at [`EIGEN_FLOPS`].
pub const EIGENVALUES_FLOPS_PER_CUBE: f64 = 4.0;
/// One closed-form Gaussian moment pair `(E[φφ], E[φ'φ'])` (ReLU family, erf, identity), s.
pub const CLOSED_FORM_MOMENT_SECONDS: f64 = 4.0e-8;
/// One integrand evaluation of the piecewise Gauss–Legendre quadrature, s: the fallback rate
/// when no moment was timed on the data ([`measured_moment_seconds`]; a run and `--estimate`
/// always time them). Set when a moment pair at order 48 took about 1 ms; since the paired
/// integrals and `vzeroupper` a tanh pair takes about 0.3 ms, so it errs high.
pub const QUADRATURE_EVALUATION_SECONDS: f64 = 5.4e-8;
/// Process start, data loading and checks of a small run, s.
pub const SETUP_SECONDS: f64 = 0.05;
/// Writing the outputs of a run (figures, tables, reports), s.
pub const OUTPUT_SECONDS: f64 = 0.15;
/// One activation unit of a training step (forward and backward) for a piecewise-linear
/// activation, s.
pub const PIECEWISE_LINEAR_UNIT_SECONDS: f64 = 1e-9;
/// The same for a transcendental activation (erf, GELU, tanh, softplus, sin, cos; GELU on 300 ×
/// 2,048 units measured 38 ns), s.
pub const TRANSCENDENTAL_UNIT_SECONDS: f64 = 3.8e-8;
/// Drawing one Gaussian number (a teacher's weights), s: 1.6·10⁹ of them took 64 s.
pub const GAUSSIAN_SECONDS: f64 = 4.0e-8;
/// One multiply-add of the teacher's loop (vectorised), s: 110 points of a teacher with 10⁷
/// hidden units on 16 inputs took 11.2 s with its weights.
pub const SCALAR_MAC_SECONDS: f64 = 0.3e-9;
/// Fixed cost of one logged checkpoint (metrics, bookkeeping), s.
pub const CHECKPOINT_SECONDS: f64 = 3e-4;
/// Cores the kernel loops are spread over.
pub const CORES: f64 = 2.0;

/// What the dense path's phases do, in sizes.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Kernel (training) points and all points (training and held out).
    pub n: f64,
    /// All points.
    pub a: f64,
    /// Input features and outputs.
    pub d: f64,
    /// Outputs.
    pub k: f64,
    /// Rows per point of the empirical kernel (K in full form, 1 in trace form).
    pub r: f64,
    /// Multiply-adds of one point's forward pass.
    pub macs: f64,
    /// Layers with weights.
    pub layers: f64,
    /// Width of one entry's Gram product of the empirical kernel.
    pub gram_width: f64,
    /// Gram products per entry (K in trace form, K² in full form).
    pub products: f64,
    /// Rows of the initial empirical kernel.
    pub signal_rows: f64,
    /// Points of a training batch.
    pub batch: f64,
    /// Steps, logged checkpoints, kernel checkpoints, sensitivity checkpoints.
    pub steps: f64,
    /// Logged checkpoints.
    pub checkpoints: f64,
    /// Kernel checkpoints.
    pub kernel_checkpoints: f64,
    /// Probe points of the kernel checkpoints.
    pub probe: f64,
    /// The twin's space.
    pub twin: TwinSpace,
    /// Kernel solutions.
    pub solutions: Vec<KernelSolution>,
    /// Seconds of one analytic kernel entry (all layers and position pairs).
    pub analytic_entry_seconds: f64,
    /// Ensemble members beyond the first.
    pub extra_members: f64,
    /// Ensemble members trained at the same time (each mostly on one core).
    pub members_in_flight: f64,
    /// A conv net (its training runs at [`CONV_TRAIN_EFFICIENCY`] of the dense rate).
    pub conv: bool,
    /// Activation units of one point's forward pass (every hidden unit, every position).
    pub units: f64,
    /// Seconds of one unit's activation in a step (forward and backward).
    pub unit_seconds: f64,
    /// Seconds of making the data beyond reading them (a teacher network's weights and labels).
    pub data_seconds: f64,
}

/// Seconds of one Gaussian moment pair: closed form, or two piecewise Gauss–Legendre double
/// integrals of `(2·order)²` evaluations each.
pub fn moment_seconds(closed_form: bool, quadrature_order: usize) -> f64 {
    if closed_form {
        CLOSED_FORM_MOMENT_SECONDS
    } else {
        let per_integral = (2.0 * quadrature_order as f64).powi(2);
        2.0 * per_integral * QUADRATURE_EVALUATION_SECONDS
    }
}

/// Training-point pairs whose first-layer moment arguments are sampled by
/// [`measured_moment_seconds`].
pub const MOMENT_SAMPLE_PAIRS: usize = 4;
/// Moments timed by [`measured_moment_seconds`] (spread evenly over the sampled arguments).
pub const MOMENT_SAMPLES: usize = 16;

/// Seconds of one Gaussian moment by quadrature for `exp` on `data`, timed on this machine:
/// the mean over up to [`MOMENT_SAMPLES`] moments at the first-layer arguments of a few
/// training-point pairs (for a conv net, spread over its position pairs). What a moment
/// costs depends on its arguments by a factor of ~70 (a pair with correlation 1, e.g. two
/// zero-padded positions, skips the inner integral) and on the activation, so no fixed rate
/// is within 2× of both a kernel on images with blank borders and one on dense inputs. `None`
/// for activations with a closed form (their moments cost [`CLOSED_FORM_MOMENT_SECONDS`]) or
/// without analytic kernels to compute.
pub fn measured_moment_seconds(
    exp: &crate::config::Experiment,
    data: &crate::data::Dataset,
) -> Option<f64> {
    use crate::ntk::analytic::{gaussian_moments, MomentMethod};
    let act = exp.model.activation;
    let analytic = exp
        .kernel
        .solutions
        .iter()
        .any(|s| matches!(s, KernelSolution::Analytic | KernelSolution::Nngp));
    if !analytic || crate::ntk::analytic::closed_form(act, 1.0, 1.0, 0.5).is_some() {
        return None;
    }
    let arch = super::network_config(exp, data);
    let d = data.input_dim;
    let n = data.n_train();
    if exp.model.architecture == crate::model::Architecture::Mlp && exp.model.blocks.is_none() {
        return Some(series_moment_seconds(exp, data));
    }
    let point = |i: usize| &data.x_train[i * d..(i + 1) * d];
    let mut arguments = Vec::new();
    for pair in 0..MOMENT_SAMPLE_PAIRS.min(n / 2) {
        arguments.extend(crate::ntk::first_layer_moment_arguments(
            &arch,
            point(2 * pair),
            point(2 * pair + 1),
        ));
    }
    if arguments.is_empty() {
        return None;
    }
    // Spread by the golden ratio, not a stride: a stride on an image's row-major positions
    // would keep hitting the same (often blank) columns.
    let len = arguments.len();
    let sample: Vec<_> = (0..MOMENT_SAMPLES.min(len))
        .map(|j| &arguments[((j as f64 * 0.618_033_988_75).fract() * len as f64) as usize % len])
        .collect();
    let method = MomentMethod::Auto(exp.kernel.quadrature_order);
    // The rule's nodes are computed (an eigendecomposition) and cached by the first call: not
    // part of a moment's cost. Timed on the worker threads that compute the kernels.
    crate::ntk::quadrature::GaussLegendre::new(exp.kernel.quadrature_order);
    if let crate::model::Architecture::Conv(c) = exp.model.architecture {
        if exp.model.blocks.is_none() {
            let p = c.image.spatial().positions() as f64;
            let pairs = match c.readout {
                crate::model::layers::Readout::Flatten => p,
                crate::model::layers::Readout::GlobalAvgPool => p * p,
            };
            // Each image's series (one per position and layer) spread over the moments of the
            // entries it takes part in (N/2 of them in a symmetric N × N kernel, `pairs` moments
            // per layer each).
            let series_share = 2.0 * p / (n.max(1) as f64 * pairs);
            let sample: Vec<(f64, f64, f64)> = sample.iter().map(|&&a| a).collect();
            return Some(conv_series_moment_seconds(
                act,
                &sample,
                method,
                series_share,
            ));
        }
    }
    use rayon::prelude::*;
    let seconds: f64 = sample
        .par_iter()
        .map(|&&(q, qp, k)| {
            let start = std::time::Instant::now();
            std::hint::black_box(gaussian_moments(act, q, qp, k, method));
            start.elapsed().as_secs_f64()
        })
        .sum();
    Some(seconds / sample.len() as f64)
}

/// Seconds of one position pair's moment of a conv kernel whose moments are Mehler sums where
/// both positions' series converge and quadratures elsewhere ([`crate::ntk::conv`]), timed on
/// `sample` (first-layer arguments): each sampled variance's series is built, and each moment
/// timed as the kernel computes it; a series' build time counts `series_share` times per moment.
fn conv_series_moment_seconds(
    act: crate::model::Activation,
    sample: &[(f64, f64, f64)],
    method: crate::ntk::analytic::MomentMethod,
    series_share: f64,
) -> f64 {
    use crate::ntk::analytic::{pair_moments, position_series};
    use crate::ntk::hermite::Series;
    let mut variances: Vec<f64> = sample.iter().flat_map(|&(q, qp, _)| [q, qp]).collect();
    variances.sort_by(f64::total_cmp);
    variances.dedup();
    let start = std::time::Instant::now();
    let series: Vec<Option<Series>> = variances
        .iter()
        .map(|&q| position_series(act, method, q))
        .collect();
    let per_series = start.elapsed().as_secs_f64() / variances.len().max(1) as f64;
    let of = |q: f64| {
        let i = variances.partition_point(|&v| v.total_cmp(&q).is_lt());
        series[i].as_ref()
    };
    let start = std::time::Instant::now();
    for &(q, qp, k) in sample {
        std::hint::black_box(pair_moments(act, method, (q, qp, k), (of(q), of(qp))));
    }
    start.elapsed().as_secs_f64() / sample.len().max(1) as f64 + per_series * series_share
}

/// Points whose first-layer series are timed for the estimate of an MLP kernel.
const SERIES_SAMPLE_POINTS: usize = 32;

/// Seconds of one layer's moment of one kernel entry of an MLP, whose moments are Mehler sums
/// ([`crate::ntk::hermite`]) where a point's series converges and quadratures elsewhere: timed
/// on the first-layer variances of up to [`SERIES_SAMPLE_POINTS`] training points. A pair's sum,
/// plus each point's series (one per point and layer) spread over the entries of its row (one
/// per training point), with the pairs that involve a point without a series (a fraction
/// `1 − (1 − f)²` for a fraction f of such points) at a quadrature moment's time.
fn series_moment_seconds(exp: &crate::config::Experiment, data: &crate::data::Dataset) -> f64 {
    use crate::ntk::analytic::{gaussian_moments, input_kernel, point_series, MomentMethod};
    use crate::ntk::hermite::Series;
    let m = &exp.model;
    let act = m.activation;
    let (d, n) = (data.input_dim, data.n_train());
    let (w2, b2) = (
        m.w_std * m.w_std,
        if m.bias { m.b_std * m.b_std } else { 0.0 },
    );
    let count = SERIES_SAMPLE_POINTS.min(n).max(1);
    let q: Vec<f64> = (0..count)
        .map(|j| {
            let x = &data.x_train[(j * n / count) * d..(j * n / count + 1) * d];
            w2 * input_kernel(x, x) + b2
        })
        .collect();
    let start = std::time::Instant::now();
    let method = MomentMethod::Auto(exp.kernel.quadrature_order);
    let series: Vec<Option<Series>> = q.iter().map(|&q| point_series(act, method, q)).collect();
    let per_series = start.elapsed().as_secs_f64() / count as f64;
    let with: Vec<&Series> = series.iter().flatten().collect();
    let start = std::time::Instant::now();
    for pair in with.windows(2) {
        std::hint::black_box(pair[0].moments(pair[1], 0.5));
    }
    let per_pair = start.elapsed().as_secs_f64() / with.len().saturating_sub(1).max(1) as f64;
    let without: Vec<f64> = q
        .iter()
        .zip(&series)
        .filter(|(_, s)| s.is_none())
        .map(|(&q, _)| q)
        .collect();
    let refused = without.len() as f64 / count as f64;
    let per_quadrature = if without.is_empty() {
        0.0
    } else {
        crate::ntk::quadrature::GaussLegendre::new(exp.kernel.quadrature_order);
        let sample = &without[..without.len().min(4)];
        let start = std::time::Instant::now();
        for &q in sample {
            std::hint::black_box(gaussian_moments(act, q, q, 0.5 * q, method));
        }
        start.elapsed().as_secs_f64() / sample.len() as f64
    };
    let p_quadrature = 1.0 - (1.0 - refused) * (1.0 - refused);
    per_pair * (1.0 - p_quadrature) + per_quadrature * p_quadrature + per_series / n.max(1) as f64
}

/// The rate of the network's arithmetic on a batch of `b` points, FLOP/s.
fn train_rate(w: &Workload, b: f64) -> f64 {
    let conv = if w.conv { CONV_TRAIN_EFFICIENCY } else { 1.0 };
    conv * TRAIN_FLOPS * b / (b + TRAIN_HALF_RATE_BATCH)
}

/// Multiply-adds of one point's forward pass: the parameters of an MLP, or per conv layer
/// `(positions, fan-in, fan-out)` the positions times the weights.
pub fn forward_macs(conv: Option<&[(u64, u64, u64)]>, params: u64) -> f64 {
    match conv {
        None => params as f64,
        Some(layers) => layers.iter().map(|&(r, i, o)| (r * i * o) as f64).sum(),
    }
}

/// Width of one entry's Gram product of the empirical kernel: every layer's input and signal
/// (width `w`, `l` hidden layers), or a convolution's per-point gradients (`n_in·n_out` wide).
pub fn gram_width(conv: Option<&[(u64, u64, u64)]>, w: u64, l: u64) -> f64 {
    match conv {
        None => (l + 1) as f64 * w as f64,
        Some(layers) => layers
            .iter()
            .map(|&(r, i, o)| {
                if r > 1 {
                    (i * o) as f64
                } else {
                    (i + o) as f64
                }
            })
            .sum(),
    }
}

/// Seconds per point pair and layer of an empirical kernel beyond its Gram arithmetic (the
/// products of per-layer Gram matrices and their sums pass over `N × N` memory once each; at a
/// narrow width this, not the GEMM, is the cost: 4,100 × 4,000 entries of a width-32, depth-2
/// ReLU MLP took 3.0 s, of which the GEMMs at [`GEMM_FLOPS`] are 0.1 s).
pub const EMPIRICAL_ENTRY_LAYER_SECONDS: f64 = 5.5e-8;
/// Seconds of one analytic kernel entry beyond its moments (its row buffer and the two
/// matrices it is copied into): the same 16 M entries of a depth-2 ReLU kernel took 1.7 s
/// where the moments alone account for 0.66 s.
pub const ANALYTIC_ENTRY_SECONDS: f64 = 1.2e-7;

/// Seconds of one analytic kernel entry of `exp`'s network on `d` input features: a moment per
/// layer, and for a conv net per kept position pair (P of them with a flatten readout, P² with
/// global average pooling) with its filter sums.
/// `measured_moment`, when given, replaces the reference rate of a quadrature moment.
pub fn analytic_entry_seconds(
    exp: &crate::config::Experiment,
    d: u64,
    measured_moment: Option<f64>,
) -> f64 {
    let m = &exp.model;
    let closed = crate::ntk::analytic::closed_form(m.activation, 1.0, 1.0, 0.5).is_some();
    let moment = match measured_moment {
        Some(t) if !closed => t,
        _ => moment_seconds(closed, exp.kernel.quadrature_order),
    };
    let arch = crate::model::NetworkConfig {
        input_dim: d as usize,
        n_outputs: 1,
        model: m.clone(),
    };
    let mode = crate::ntk::analytic::MomentMethod::Auto(0);
    if let Some(stack) = crate::ntk::blocks::BlockKernelConfig::of_network(&arch, mode) {
        // Every position pair of the stream at every activation, and the sums of the layers.
        let (moments, sums) = stack.entry_work();
        return moments * moment + sums * 1e-9 + d as f64 * 1e-9;
    }
    let l = m.depth as f64;
    match m.architecture {
        crate::model::Architecture::Conv(c) => {
            let p = c.image.spatial().positions() as f64;
            let pairs = match c.readout {
                crate::model::layers::Readout::Flatten => p,
                crate::model::layers::Readout::GlobalAvgPool => p * p,
            };
            l * pairs * (2.0 * (c.filter * c.filter) as f64 * 1e-9 + moment)
        }
        crate::model::Architecture::Mlp => l * moment + d as f64 * 1e-9,
    }
}

/// Seconds of one activation unit in a training step.
pub fn unit_seconds(activation: crate::model::Activation) -> f64 {
    use crate::model::Activation as A;
    match activation {
        A::Relu | A::LeakyRelu { .. } | A::Abs | A::Identity => PIECEWISE_LINEAR_UNIT_SECONDS,
        _ => TRANSCENDENTAL_UNIT_SECONDS,
    }
}

fn eigen_seconds(m: f64) -> f64 {
    EIGEN_FLOPS_PER_CUBE * m.powi(3) / EIGEN_FLOPS
}

/// Seconds of the empirical kernel between `rows` points and the `n` training points: the
/// signals (a forward and K backward passes) and the Gram products.
fn empirical_seconds(w: &Workload, rows: f64, n: f64) -> f64 {
    (2.0 * rows * w.macs * (1.0 + w.k) + 2.0 * rows * n * w.gram_width * (1.0 + w.products))
        / GEMM_FLOPS
        + rows * n * w.layers * EMPIRICAL_ENTRY_LAYER_SECONDS
}

/// λ_max of the full `(N·K)²` empirical kernel on `n` points: the explicit kernel's Gram
/// product up to `explicit_rows` rows (its λ_max by Lanczos is cheap), else matrix-free
/// Lanczos, each iteration a forward-mode and a reverse-mode pass over the `n` points.
fn lambda_max_seconds(w: &Workload, n: f64, explicit_rows: f64) -> f64 {
    let rows = n * w.k;
    if rows <= explicit_rows {
        2.0 * rows * rows * w.gram_width / GEMM_FLOPS
    } else {
        MATRIX_FREE_ITERATIONS * 8.0 * n * w.macs / train_rate(w, n)
    }
}

/// One training step of the network and its twin.
fn step_seconds(w: &Workload) -> f64 {
    let network = 6.0 * w.batch * w.macs / train_rate(w, w.batch)
        + w.batch * w.units * w.unit_seconds
        + w.layers * STEP_SECONDS_PER_LAYER;
    let twin = match w.twin {
        // Θ0's batch rows times the residual.
        TwinSpace::Function => 2.0 * w.batch * w.r * w.n * w.k / GEMM_FLOPS,
        // The tangent pass and its backward, on a second thread next to the network's step.
        _ => network,
    };
    network + twin
}

/// One logged checkpoint: every track's outputs on every point.
fn checkpoint_seconds(w: &Workload) -> f64 {
    let network = 2.0 * w.a * w.macs / train_rate(w, w.a) + w.a * w.units * w.unit_seconds / 2.0;
    let twin = match w.twin {
        TwinSpace::Function => 2.0 * w.a * w.r * w.n * w.r / GEMM_FLOPS,
        _ => 2.0 * network,
    };
    let tracks: f64 = w
        .solutions
        .iter()
        .map(|s| {
            let m = match s {
                KernelSolution::Empirical => w.n * w.r,
                _ => w.n,
            };
            2.0 * w.a * m * w.k / GEMM_FLOPS
        })
        .sum();
    network + twin + tracks + CHECKPOINT_SECONDS
}

/// The estimated seconds of each phase, under the names the run times them with.
pub fn dense_phases(w: &Workload, explicit_rows: f64) -> Vec<(String, f64)> {
    let empirical = empirical_seconds(w, w.signal_rows, w.n);
    let analytic = if w
        .solutions
        .iter()
        .any(|s| matches!(s, KernelSolution::Analytic | KernelSolution::Nngp))
    {
        w.a * w.n * (w.analytic_entry_seconds + ANALYTIC_ENTRY_SECONDS) / CORES
    } else {
        0.0
    };
    let predictors: f64 = w
        .solutions
        .iter()
        .map(|s| match s {
            KernelSolution::Empirical => eigen_seconds(w.n * w.r),
            _ => eigen_seconds(w.n),
        })
        .sum::<f64>()
        // η_c: λ_max of the full Θ0, by Lanczos on Θ0 itself when the run has it (full form or
        // K = 1), else as at a kernel checkpoint.
        + if w.r == w.k {
            0.0
        } else {
            lambda_max_seconds(w, w.n, explicit_rows)
        };
    let kernel_checkpoint =
        empirical_seconds(w, w.probe, w.probe) + lambda_max_seconds(w, w.n, explicit_rows);
    // An ensemble member trains and logs its outputs but measures no kernel figures.
    let member_training = w.steps * step_seconds(w) + w.checkpoints * checkpoint_seconds(w);
    let training = member_training + w.kernel_checkpoints * kernel_checkpoint;
    // Θ_final on the training points, and the spectra (eigenvalues only) of Θ0, Θ_final and
    // the analytic NTK there.
    let spectra = 2.0 + f64::from(u8::from(analytic > 0.0));
    let final_kernels = empirical_seconds(w, w.n, w.n)
        + spectra * EIGENVALUES_FLOPS_PER_CUBE * w.n.powi(3) / EIGEN_FLOPS;
    let mut phases = vec![
        (
            "set-up".to_string(),
            SETUP_SECONDS + w.a * w.d * 2e-8 + w.data_seconds,
        ),
        ("kernels".to_string(), empirical + analytic),
        ("predictor setup".to_string(), predictors),
        ("training".to_string(), training),
        ("final kernels".to_string(), final_kernels),
    ];
    if w.extra_members > 0.0 {
        phases.push((
            "ensemble members".to_string(),
            w.extra_members * (member_training + empirical) / w.members_in_flight.clamp(1.0, CORES),
        ));
    }
    phases.push(("outputs".to_string(), OUTPUT_SECONDS));
    phases
}
