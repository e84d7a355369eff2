//! One estimate of what a run needs — peak memory, disk and a rough time — made from the
//! checked config and the data sizes before anything large is allocated, and the checks that
//! refuse a run that cannot fit (with the numbers, and an override).
//!
//! The memory model counts what the run holds at its peak: the network's parameters and their
//! training copies (parameters, θ0, gradients, the update, momentum), the autodiff graph of a
//! training batch, the data in its copies, the backprop signals and kernels of the initial state
//! (Θ0 and the twin's copy of it, the analytic kernels, the predictors' eigenvectors), the
//! logged checkpoints and the outputs. It is calibrated against measured peak RSS (see the
//! table in `docs/performance.md`), with a fixed base for the process itself.

use crate::config::{Experiment, KernelSolution};
use crate::data::{DataSource, Dataset, DEFAULT_N_TEST, DEFAULT_N_TRAIN};
use crate::{Error, Result};

/// What the memory and disk checks do with a run (or sweep) whose estimate exceeds what the
/// machine has: refuse it before anything is allocated (the default), or let it start anyway
/// (`--force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitPolicy {
    /// Refuse, with the numbers and the setting that helps.
    #[default]
    Refuse,
    /// Start anyway (`--force`).
    Force,
}

impl LimitPolicy {
    fn forced(self) -> bool {
        self == LimitPolicy::Force
    }
}

/// Resident memory of the process before any run (code, allocator, thread pools), bytes.
pub const BASE_BYTES: u64 = 64 << 20;

/// Runs (and sweeps) estimated to take longer than this are announced with their estimate,
/// seconds.
pub const LONG_RUN_SECONDS: f64 = 60.0;

/// The estimate of a run as one line: the total and its largest phases.
pub fn describe_time(f: &Footprint) -> String {
    let mut phases: Vec<&(String, f64)> = f
        .phases
        .iter()
        .filter(|p| p.1 >= 0.05 * f.seconds && p.1 >= 1.0)
        .collect();
    phases.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list = phases
        .iter()
        .map(|(what, s)| format!("{what} {}", duration(*s)))
        .collect::<Vec<_>>()
        .join(", ");
    if list.is_empty() {
        format!("~{}", duration(f.seconds))
    } else {
        format!("~{} ({list})", duration(f.seconds))
    }
}

/// A duration for people: seconds, minutes or hours.
pub fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// The sizes that determine a run's footprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    /// Training points.
    pub n_train: u64,
    /// Validation and test points.
    pub n_heldout: u64,
    /// Input features.
    pub input_dim: u64,
    /// Outputs.
    pub n_outputs: u64,
    /// Training points the kernels are computed on (`kernel.train_subset`, else `n_train`).
    pub n_kernel: u64,
    /// Seconds of one Gaussian moment by quadrature, timed on this machine at the data's own
    /// first-layer arguments (`None`: not timed; the reference machine's rate is used).
    pub moment_seconds: Option<f64>,
}

impl Sizes {
    /// The sizes of a loaded data set.
    pub fn of(data: &Dataset) -> Self {
        Sizes {
            n_train: data.n_train() as u64,
            n_heldout: data.n_heldout() as u64,
            input_dim: data.input_dim as u64,
            n_outputs: data.n_outputs as u64,
            n_kernel: data.n_train() as u64,
            moment_seconds: None,
        }
    }

    /// The sizes of `exp` on its loaded data: [`Sizes::of`] with the kernel subset, and for an
    /// activation without a closed form the cost of a quadrature moment timed at the data's
    /// arguments (`time_model::measured_moment_seconds`).
    pub fn for_run(exp: &Experiment, data: &Dataset) -> Self {
        Sizes {
            moment_seconds: super::time_model::measured_moment_seconds(exp, data),
            ..Sizes::of(data).with_subset(exp)
        }
    }

    /// With the kernel subset of `exp` (capped at the training points).
    pub fn with_subset(self, exp: &Experiment) -> Self {
        Sizes {
            n_kernel: exp
                .kernel
                .train_subset
                .map_or(self.n_train, |m| (m as u64).min(self.n_train)),
            ..self
        }
    }

    /// The sizes of synthetic data, known from the config alone (None for files).
    pub fn from_config(exp: &Experiment) -> Option<Self> {
        let n_train = exp.data.n_train.unwrap_or(DEFAULT_N_TRAIN) as u64;
        let n_test = exp.data.n_test.unwrap_or(DEFAULT_N_TEST) as u64;
        let input_dim = match &exp.data.source {
            DataSource::Sine(_) => 1,
            DataSource::Teacher(t) => t.input_dim as u64,
            _ => return None,
        };
        Some(
            Sizes {
                n_train,
                n_heldout: n_test,
                input_dim,
                n_outputs: 1,
                n_kernel: n_train,
                moment_seconds: None,
            }
            .with_subset(exp),
        )
    }
}

/// What a run is estimated to need (a record: the report writes it).
pub use crate::record::Footprint;

/// Saturating arithmetic on byte counts (sizes may be absurd: the point is to refuse them).
fn mul(xs: &[u64]) -> u64 {
    xs.iter().fold(1u64, |a, &x| a.saturating_mul(x))
}

/// The footprint of `exp` on data of `sizes`: the dense path's, or the iterative path's when the
/// config resolved to it.
pub fn estimate(exp: &Experiment, s: Sizes) -> Footprint {
    match &exp.kernel.plan {
        Some(plan) => estimate_iterative(exp, s, plan),
        None => estimate_dense(exp, s),
    }
}

/// Seconds per stored entry of the analytic MLP kernels (GEMM and layer recursion, NNGP and NTK
/// together), measured on this project's 2-core reference machine: Fashion-MNIST, 3 ReLU layers,
/// N = 60,000 with 10,000 held-out rows (2.43·10⁹ entries in 318 s).
pub const ANALYTIC_SECONDS_PER_ENTRY: f64 = 1.3e-7;
/// Seconds per stored entry of one solver iteration with 10 columns, everything included (the
/// product with the store, the Nyström preconditioner's two products, the vector updates):
/// 1,938 s for 1,480 iterations and pivot passes of the three 60,000-point f32 kernels of
/// `experiments/fashion_mlp.toml` on this project's 2-core AVX-512 reference machine (the
/// product alone: 0.53 ns per stored f32 entry, 0.68 ns per f64 entry, `cargo bench --bench
/// kernel_regression -- --apply 20000`).
pub const APPLY_SECONDS_PER_ENTRY: f64 = 0.73e-9;
/// Fraction of the available memory a disk store may take when it is read into memory for its
/// solves (see `run::lockstep`).
pub const RESIDENT_FRACTION: f64 = 0.6;
/// f64 rate of the empirical kernel's Gram products on the iterative path (measured at
/// N = 60,000 with 10,000 held-out rows: 6.4·10¹³ FLOPs in 768 s).
pub const GRAM_FLOPS_PER_SECOND: f64 = 8.3e10;
/// Lanczos vectors assumed per output for the memory estimate (the solves stop earlier on the
/// runs measured; `solver_max_iterations` bounds it).
pub const ASSUMED_LANCZOS_VECTORS: u64 = 300;
/// Operator products assumed per kernel (Lanczos and CG together) for the time estimate: the
/// mean of the 60,000-point Fashion-MNIST run (analytic NTK 287, NNGP 616, empirical 505 at a
/// tolerance of 10⁻³).
pub const ASSUMED_PRODUCTS: f64 = 470.0;

/// The iterative path's footprint: network training as on the dense path, kernels in stores
/// (in memory, or on disk and not resident), the empirical kernel's signal cache, the Lanczos
/// bases, the Nyström factor and the held-out predictions of every planned step.
fn estimate_iterative(
    exp: &Experiment,
    s: Sizes,
    plan: &crate::config::IterativeSettings,
) -> Footprint {
    let dense = estimate_dense_training_only(exp, s);
    let (n, h, k) = (s.n_kernel, s.n_heldout, s.n_outputs);
    let kinds = KernelKinds::of(exp);
    let block = exp
        .kernel
        .block_size
        .unwrap_or(crate::config::defaults::STORE_BLOCK_ROWS);
    let store_bytes = super::stored::StorePlan::bytes_of(
        kinds.analytic,
        kinds.empirical,
        n as usize,
        h as usize,
        block,
        plan,
    );
    let in_memory = match plan.store {
        crate::config::StorePlace::Memory => true,
        crate::config::StorePlace::Disk => false,
        crate::config::StorePlace::Auto => {
            store_bytes as f64
                <= super::stored::MEMORY_STORE_FRACTION * available_memory_bytes() as f64
        }
    };
    let tracks = exp.kernel.solutions.len() as u64;
    let planned = exp.training.steps / exp.logging.every.max(1) + 2;
    let lanczos = ASSUMED_LANCZOS_VECTORS.min(plan.solver_max_iterations as u64);
    // What lives through the whole run: the network's training, stores kept in memory, the
    // kernel tracks' Lanczos bases and held-out predictions.
    let mut parts = dense.parts;
    parts.push((
        if in_memory {
            "kernel stores (in memory)"
        } else {
            "kernel stores (on disk: not resident)"
        }
        .into(),
        if in_memory { store_bytes } else { 0 },
    ));
    parts.push((
        "Lanczos bases of the kernel tracks".into(),
        mul(&[tracks, k, n, lanczos, 8]),
    ));
    parts.push((
        "held-out predictions of the planned steps".into(),
        mul(&[tracks, planned, h, k, 8]),
    ));
    parts.extend(iterative_phase_parts(exp, &s, plan, in_memory, block));
    let peak = parts
        .iter()
        .fold(BASE_BYTES, |a, (_, v)| a.saturating_add(*v));
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let (kernel_seconds, solve_seconds) = iterative_seconds(exp, &s, plan, block);
    let mut phases = dense.phases;
    for (phase, seconds) in phases.iter_mut() {
        match phase.as_str() {
            "kernels" => *seconds += kernel_seconds,
            "predictor setup" => *seconds += solve_seconds,
            _ => {}
        }
    }
    let seconds = phases.iter().map(|p| p.1).sum();
    // The training points' rows of predictions.csv (the dense estimate above counted the
    // held-out ones): one column a track and four index columns, ~22 bytes a number.
    let train_predictions = if exp.outputs.predictions.csv() {
        mul(&[n, k, tracks + 2 + 4, 22])
    } else {
        0
    };
    Footprint {
        peak_bytes: peak,
        disk_bytes: dense
            .disk_bytes
            .saturating_add(train_predictions)
            .saturating_add(if in_memory { 0 } else { store_bytes }),
        seconds,
        phases,
        parts,
    }
}

/// Which kinds of kernel a run's kernel tracks need.
struct KernelKinds {
    /// The analytic NTK or NNGP.
    analytic: bool,
    /// The empirical NTK.
    empirical: bool,
}

impl KernelKinds {
    fn of(exp: &Experiment) -> Self {
        let solutions = &exp.kernel.solutions;
        KernelKinds {
            analytic: solutions
                .iter()
                .any(|x| matches!(x, KernelSolution::Analytic | KernelSolution::Nngp)),
            empirical: solutions.contains(&KernelSolution::Empirical),
        }
    }
}

/// The larger of an iterative run's two phases that never overlap: computing the kernels (the
/// signal cache and one block of rows) and solving (one store read into memory, the Nyström
/// factor and its basis, one chunk of stacked coefficients).
fn iterative_phase_parts(
    exp: &Experiment,
    s: &Sizes,
    plan: &crate::config::IterativeSettings,
    in_memory: bool,
    block: usize,
) -> Vec<(String, u64)> {
    let (n, h, k) = (s.n_kernel, s.n_heldout, s.n_outputs);
    let (w, l) = (exp.model.width as u64, exp.model.depth as u64);
    // One point's signals: every layer's input and its K backprop signals (dense layers).
    let per_point = (s.input_dim + l * w) * 8 + k * (l * w + k) * 8;
    let cache = if KernelKinds::of(exp).empirical {
        mul(&[n, per_point])
            .min((super::stored::SIGNAL_CACHE_FRACTION * available_memory_bytes() as f64) as u64)
    } else {
        0
    };
    let kernel_phase = vec![
        ("empirical kernel's signal cache (f64)".to_string(), cache),
        (
            "one block of kernel rows being computed".to_string(),
            mul(&[block as u64, n.saturating_add(h), 8, 3]),
        ),
    ];
    // A store on disk is read into memory for its solves when it fits (one kernel at a time).
    let one_train_store = mul(&[
        crate::store::symmetric_entries(n, block as u64),
        plan.storage.bytes(),
    ]);
    let resident = if !in_memory
        && (one_train_store as f64) <= RESIDENT_FRACTION * available_memory_bytes() as f64
    {
        one_train_store
    } else {
        0
    };
    let tracks = exp.kernel.solutions.len() as u64;
    let rank = plan.preconditioner_rank.unwrap_or(0) as u64;
    let solve_phase = vec![
        (
            "one disk store read into memory for its solves".to_string(),
            resident,
        ),
        (
            "Nyström preconditioner".to_string(),
            mul(&[n, rank, 8, 2, tracks.min(1)]),
        ),
        (
            "held-out predictions of the planned steps (one chunk)".to_string(),
            mul(&[32, n, k, 8]),
        ),
    ];
    let sum = |v: &[(String, u64)]| v.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b));
    if sum(&kernel_phase) >= sum(&solve_phase) {
        kernel_phase
    } else {
        solve_phase
    }
}

/// Seconds an iterative run adds to its kernels phase (the stored kernels' entries) and to its
/// predictor setup (the solves).
fn iterative_seconds(
    exp: &Experiment,
    s: &Sizes,
    plan: &crate::config::IterativeSettings,
    block: usize,
) -> (f64, f64) {
    let (n, h, k) = (s.n_kernel, s.n_heldout, s.n_outputs);
    let (w, l) = (exp.model.width as u64, exp.model.depth as u64);
    let kinds = KernelKinds::of(exp);
    let entries = crate::store::symmetric_entries(n, block as u64) + n * h;
    let kernel_seconds = if kinds.analytic {
        entries as f64 * ANALYTIC_SECONDS_PER_ENTRY
    } else {
        0.0
    };
    // Gram widths of one entry of the output-averaged empirical kernel of a dense net: every
    // layer's input, the K signals of each hidden layer but the last, the last hidden layer's
    // trace factor (one column per unit) and the readout's K × K identity signals.
    let emp_seconds = if kinds.empirical {
        let signals = if k > 1 {
            l.saturating_sub(1) * k * w + w + k * k
        } else {
            l * w + 1
        };
        let gram_width = (s.input_dim + l * w + signals) as f64;
        2.0 * entries as f64 * gram_width / GRAM_FLOPS_PER_SECOND
    } else {
        0.0
    };
    let train_entries = crate::store::symmetric_entries(n, block as u64) as f64;
    let rank = plan.preconditioner_rank.unwrap_or(0) as u64;
    let pivot_passes = (rank as f64 / crate::krylov::nystrom::PIVOT_BLOCK as f64).ceil();
    let tracks = exp.kernel.solutions.len() as u64;
    let solve_seconds =
        tracks as f64 * (ASSUMED_PRODUCTS + pivot_passes) * train_entries * APPLY_SECONDS_PER_ENTRY;
    (emp_seconds + kernel_seconds, solve_seconds)
}

/// The dense path's footprint without its kernels (the network, its training and outputs).
fn estimate_dense_training_only(exp: &Experiment, s: Sizes) -> Footprint {
    let mut e = exp.clone();
    e.kernel.solutions = Vec::new();
    e.kernel.plan = None;
    let mut f = estimate_dense(&e, Sizes { n_kernel: 0, ..s });
    f.parts.retain(|(what, _)| {
        !(what.starts_with("backprop")
            || what.starts_with("per-point")
            || what.starts_with("empirical")
            || what.starts_with("analytic")
            || what.starts_with("kernel"))
    });
    f
}

/// The sizes the dense path's footprint is made of.
struct DenseShape {
    /// Bytes per network number (4 in f32, 8 in f64).
    b: u64,
    /// Training points the network trains on.
    n_all_train: u64,
    /// Held-out points.
    h: u64,
    /// Input features.
    d: u64,
    /// Outputs K.
    k: u64,
    /// Training points of the kernel view.
    n: u64,
    /// Every point of the kernel view.
    a: u64,
    /// Whether the kernel view is a subset of the training points.
    subset: bool,
    /// Whether Θ0 (and the signals) have held-out rows.
    heldout_rows: bool,
    /// Points whose backprop signals are held.
    signal_rows: u64,
    /// Width and depth of an MLP.
    w: u64,
    l: u64,
    /// Kernel rows per point.
    r: u64,
    /// A conv net's layers: (rows per point, fan-in, fan-out).
    conv: Option<Vec<(u64, u64, u64)>>,
    /// Trainable parameters.
    params: u64,
    /// Per point: numbers of every layer's presented input, and of its outputs.
    inputs_per_point: u64,
    outputs_per_point: u64,
    /// Training batch size.
    batch: u64,
    /// Logged checkpoints (with room for the last and an interrupted one).
    checkpoints: u64,
    /// Tracks.
    tracks: u64,
    /// Columns of `metrics.csv`, about.
    columns: u64,
}

impl DenseShape {
    fn of(exp: &Experiment, s: &Sizes) -> Self {
        let m = &exp.model;
        let (n_all_train, h, d, k) = (s.n_train, s.n_heldout, s.input_dim, s.n_outputs);
        // Kernels, figures and predictions live on the kernel view: n training points.
        let n = s.n_kernel;
        let a = n.saturating_add(h);
        let subset = n < n_all_train;
        let rows_per_point = exp.kernel.form.rows_per_point(k as usize);
        // Θ0's held-out rows serve the function-space twin and the empirical kernel track only.
        let heldout_rows = exp.kernel.solutions.contains(&KernelSolution::Empirical)
            || (!subset
                && exp.training.twin.resolve(
                    (a as usize).saturating_mul(rows_per_point),
                    (n as usize).saturating_mul(rows_per_point),
                ) == crate::dynamics::TwinSpace::Function);
        let (w, l) = (m.width as u64, m.depth as u64);
        let conv = conv_layers(exp, d, k);
        let (params, inputs_per_point, outputs_per_point) =
            layer_sizes(conv.as_deref(), d, w, l, k);
        let tracks = 2 + exp.kernel.solutions.len() as u64;
        DenseShape {
            b: match m.precision {
                crate::backend::Precision::F32 => 4,
                crate::backend::Precision::F64 => 8,
            },
            n_all_train,
            h,
            d,
            k,
            n,
            a,
            subset,
            heldout_rows,
            signal_rows: if heldout_rows { a } else { n },
            w,
            l,
            r: rows_per_point as u64,
            conv,
            params,
            inputs_per_point,
            outputs_per_point,
            batch: exp
                .training
                .batch_size
                .map(|x| x as u64)
                .unwrap_or(n_all_train),
            checkpoints: exp.training.steps / exp.logging.every + 2,
            tracks,
            columns: 2 * tracks + tracks * (tracks - 1) + 10 + 6 * (l + 1) + 5 * tracks,
        }
    }
}

/// A conv net's layers: (rows per point, fan-in, fan-out) from the same shapes the network is
/// built with (sizes are checked; the shapes allocate nothing); None for an MLP.
fn conv_layers(exp: &Experiment, d: u64, k: u64) -> Option<Vec<(u64, u64, u64)>> {
    let m = &exp.model;
    // A stack (model.blocks) of either kind takes the autodiff path of a conv net.
    match (m.architecture, &m.blocks) {
        (crate::model::Architecture::Mlp, None) => None,
        _ => Some(
            crate::model::NetworkConfig {
                input_dim: d as usize,
                n_outputs: k as usize,
                model: m.clone(),
            }
            .shapes()
            .iter()
            .map(|s| {
                (
                    s.input.rows_per_image() as u64,
                    s.n_in as u64,
                    s.n_out as u64,
                )
            })
            .collect(),
        ),
    }
}

/// Parameters, and per point the numbers of every layer's presented input and of its outputs.
fn layer_sizes(
    conv: Option<&[(u64, u64, u64)]>,
    d: u64,
    w: u64,
    l: u64,
    k: u64,
) -> (u64, u64, u64) {
    match conv {
        None => (
            mul(&[d, w])
                .saturating_add(mul(&[l.saturating_sub(1), w, w]))
                .saturating_add(mul(&[w, k]))
                .saturating_add(mul(&[l, w]).saturating_add(k)),
            d.saturating_add(mul(&[l, w])),
            mul(&[l, w]).saturating_add(k),
        ),
        Some(layers) => {
            let params = layers.iter().fold(0u64, |a, &(_, i, o)| {
                a.saturating_add(mul(&[i, o]).saturating_add(o))
            });
            let (inputs, outputs) = layers.iter().fold((0u64, 0u64), |(a, b), &(r, i, o)| {
                (
                    a.saturating_add(mul(&[r, i])),
                    b.saturating_add(mul(&[r, o])),
                )
            });
            (params, inputs, outputs)
        }
    }
}

/// The network's, the data's and the initial kernels' parts of the dense path's peak.
fn dense_model_parts(exp: &Experiment, z: &DenseShape) -> Vec<(String, u64)> {
    let (a, n, h, d, k, r) = (z.a, z.n, z.h, z.d, z.k, z.r);
    let momentum = u64::from(exp.training.momentum > 0.0);
    let both_sides = z.signal_rows.saturating_add(n);
    vec![
        // parameters, θ0, gradients, the update, momentum
        (
            "parameters and their training copies".into(),
            mul(&[z.params, z.b, 4 + momentum]),
        ),
        (
            "autodiff graph of a training batch".into(),
            match &z.conv {
                None => mul(&[z.batch, z.w.saturating_add(k), z.l + 1, z.b, 4]),
                Some(_) => mul(&[
                    z.batch,
                    z.inputs_per_point
                        .saturating_add(mul(&[z.outputs_per_point, 2])),
                    z.b,
                    4,
                ]),
            },
        ),
        (
            "data".into(),
            if z.subset {
                // every point once, the view's points in its copies
                mul(&[z.n_all_train.saturating_add(h), d.saturating_add(k), 8])
                    .saturating_add(mul(&[a, d.saturating_add(k), 8, 3]))
            } else {
                mul(&[a, d.saturating_add(k), 8, 3])
            },
        ),
        (
            // All points' signals and, while Θ0 is formed, the training rows' copy.
            "backprop signals (f64)".into(),
            mul(&[both_sides, z.inputs_per_point, 8]).saturating_add(mul(&[
                k,
                both_sides,
                z.outputs_per_point,
                8,
            ])),
        ),
        (
            // A convolution's per-point weight gradients of one output, both sides of Θ0.
            "per-point conv gradients (f64)".into(),
            z.conv.as_ref().map_or(0, |layers| {
                layers
                    .iter()
                    .filter(|(r, _, _)| *r > 1)
                    .map(|&(_, i, o)| mul(&[both_sides, i, o, 8]))
                    .max()
                    .unwrap_or(0)
            }),
        ),
        (
            "empirical Θ0 and the twin's copy".into(),
            if z.heldout_rows {
                mul(&[a, r, n, r, 8, 2])
            } else {
                mul(&[n, r, n, r, 8])
            },
        ),
        ("analytic kernels".into(), mul(&[a, n, 8, 2])),
        (
            // Every image's Hermite series of φ and φ′ per position and layer (`ntk::conv`;
            // activations without a closed form), counted at `hermite::TERMS` terms each: 1.5×
            // the terms a series needs is below that up to q ≈ 4.3 (tanh), and the longer ones
            // (up to `hermite::LONG_TERMS`, q ≤ 16) are those of the few largest variances.
            "Hermite series of the conv kernel's positions (f64)".into(),
            conv_series_positions(exp, z)
                .map_or(0, |p| mul(&[a, p, 2, crate::ntk::hermite::TERMS as u64, 8])),
        ),
    ]
}

/// Positions summed over the layers of a conv net whose analytic kernel sums Hermite series
/// (an upper bound: each layer's input positions), or `None` when it has none.
fn conv_series_positions(exp: &Experiment, z: &DenseShape) -> Option<u64> {
    let m = &exp.model;
    let series = KernelKinds::of(exp).analytic
        && m.blocks.is_none()
        && crate::ntk::analytic::closed_form(m.activation, 1.0, 1.0, 0.5).is_none();
    let layers = z.conv.as_ref().filter(|_| series)?;
    Some(
        layers[..layers.len().saturating_sub(1)]
            .iter()
            .fold(0u64, |acc, &(r, _, _)| acc.saturating_add(r)),
    )
}

/// The kernel predictors', the data source's and the logs' parts of the dense path's peak.
fn dense_run_parts(exp: &Experiment, z: &DenseShape) -> Vec<(String, u64)> {
    let (a, n, h, d, k, r) = (z.a, z.n, z.h, z.d, z.k, z.r);
    let predictor =
        |rows: u64| mul(&[rows, rows, 8, 3]).saturating_add(mul(&[h, rows / n.max(1), rows, 8]));
    let pred: u64 = exp
        .kernel
        .solutions
        .iter()
        .map(|s| match s {
            KernelSolution::Analytic | KernelSolution::Nngp => predictor(n),
            KernelSolution::Empirical => predictor(n.saturating_mul(r)),
        })
        .sum();
    let mut parts = vec![("kernel predictors".into(), pred)];
    if let DataSource::Teacher(t) = &exp.data.source {
        // Drawn before anything else and dropped once the labels are made: counted in the peak
        // (it is the peak when it is large).
        parts.push((
            "teacher network (data.teacher_width)".into(),
            mul(&[t.input_dim as u64, t.teacher_width as u64, 8])
                .saturating_add(mul(&[t.teacher_width as u64, 8])),
        ));
    }
    parts.push((
        "logged checkpoints".into(),
        mul(&[z.checkpoints, z.columns, 8, 3]),
    ));
    parts.push((
        "final predictions and tables".into(),
        mul(&[a, k, z.tracks, 8, 4]).saturating_add(mul(&[a, k, d.min(64) + z.tracks + 4, 24])),
    ));
    parts
}

/// An ensemble's parts of the peak — `parallel` members in flight (each its network, autodiff
/// graph, signals, Θ0 and twin), every member's logged predictions, and the GPs' test
/// covariances — added to `parts`; the number of members beside the run's own network.
fn dense_ensemble_parts(exp: &Experiment, z: &DenseShape, parts: &mut Vec<(String, u64)>) -> u64 {
    let Some(e) = exp.ensemble else {
        return 0;
    };
    let in_flight = super::parallel_members(exp) as u64;
    let per_member: u64 = parts
        .iter()
        .filter(|(what, _)| {
            what.starts_with("parameters")
                || what.starts_with("autodiff")
                || what.starts_with("backprop")
                || what.starts_with("empirical")
        })
        .map(|p| p.1)
        .sum();
    parts.push((
        "ensemble members in flight".into(),
        mul(&[in_flight, per_member]),
    ));
    parts.push((
        "ensemble members' logged predictions".into(),
        mul(&[e.members as u64, z.checkpoints, z.a, z.k, 8, 2]),
    ));
    parts.push((
        "ensemble Gaussian processes".into(),
        mul(&[z.h, z.h.saturating_add(z.n), 8, 8]),
    ));
    (e.members as u64).saturating_sub(1)
}

/// What the dense path's optional outputs add: to the peak (kernel checkpoints and checkpoint
/// predictions, held until written, as `parts`) and to the disk (every optional file).
struct OptionalOutputs {
    parts: Vec<(String, u64)>,
    peak_bytes: u64,
    file_bytes: u64,
}

fn dense_optional_outputs(exp: &Experiment, z: &DenseShape) -> OptionalOutputs {
    let (a, n, k, r) = (z.a, z.n, z.k, z.r);
    let mut parts = Vec::new();
    let kernel_files = if exp.outputs.save_kernels {
        mul(&[n, r, n, r, 8, 2]).saturating_add(mul(&[a, n, 8, 2]))
    } else {
        0
    };
    // Θ_t train × train and held-out × train at every kernel checkpoint, held until the run's
    // files are written (the same bytes again on disk).
    let checkpoint_kernels = if exp.outputs.save_kernel_checkpoints {
        let kernel_checkpoints = exp.training.steps / exp.logging.kernel_every.max(1) + 1;
        mul(&[kernel_checkpoints, a, r, n, r, 8])
    } else {
        0
    };
    if checkpoint_kernels > 0 {
        parts.push((
            "kernel checkpoints (outputs.save_kernel_checkpoints)".into(),
            checkpoint_kernels,
        ));
    }
    // θ0 and θ_final as f64 `.npz` files.
    let parameter_files = if exp.outputs.save_parameters {
        mul(&[z.params, 8, 2])
    } else {
        0
    };
    // Every track's outputs at every checkpoint, held and then written once.
    let prediction_steps = if exp.outputs.predictions == crate::config::Predictions::Checkpoints {
        let logged = exp.training.steps / exp.logging.every.max(1) + 1;
        mul(&[logged, z.tracks, a, k, 8])
    } else {
        0
    };
    if prediction_steps > 0 {
        parts.push((
            "every track's outputs at every checkpoint (outputs.save_predictions = \"checkpoints\")"
                .into(),
            prediction_steps,
        ));
    }
    OptionalOutputs {
        parts,
        peak_bytes: checkpoint_kernels.saturating_add(prediction_steps),
        file_bytes: kernel_files
            .saturating_add(checkpoint_kernels)
            .saturating_add(parameter_files)
            .saturating_add(prediction_steps),
    }
}

/// The dense path's files on disk: the metrics, the predictions, the optional files and the
/// figures.
fn dense_disk_bytes(exp: &Experiment, z: &DenseShape, optional_files: u64) -> u64 {
    let figure_bytes = 3 << 20;
    let svg_bytes = if exp.outputs.formats.len() > 1 {
        16 << 20
    } else {
        0
    };
    let prediction_columns = if !exp.outputs.predictions.csv() {
        0
    } else if z.d as usize <= crate::record::MAX_INPUT_COLUMNS {
        z.d + z.tracks + 4
    } else {
        z.tracks + 4
    };
    mul(&[z.checkpoints, z.columns, 22])
        .saturating_add(mul(&[z.a, z.k, prediction_columns, 22]))
        .saturating_add(optional_files)
        .saturating_add(figure_bytes + svg_bytes)
}

/// The dense (eigendecomposition) path's footprint.
fn estimate_dense(exp: &Experiment, s: Sizes) -> Footprint {
    let z = DenseShape::of(exp, &s);
    let mut parts = dense_model_parts(exp, &z);
    parts.extend(dense_run_parts(exp, &z));
    let extra_members = dense_ensemble_parts(exp, &z, &mut parts);
    let base_peak = parts
        .iter()
        .fold(BASE_BYTES, |acc, (_, v)| acc.saturating_add(*v));
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let optional = dense_optional_outputs(exp, &z);
    // Each optional part is pushed after the sorted ones and the list sorted again.
    for part in optional.parts {
        parts.push(part);
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    }
    let workload = dense_workload(exp, &z, &s, extra_members);
    let phases = super::time_model::dense_phases(&workload, super::EXPLICIT_FULL_MAX_ROWS as f64);
    Footprint {
        peak_bytes: base_peak.saturating_add(optional.peak_bytes),
        disk_bytes: dense_disk_bytes(exp, &z, optional.file_bytes),
        seconds: phases.iter().map(|p| p.1).sum(),
        phases,
        parts,
    }
}

/// What the time model prices of a dense run.
fn dense_workload(
    exp: &Experiment,
    z: &DenseShape,
    s: &Sizes,
    extra_members: u64,
) -> super::time_model::Workload {
    let (n, a, d, k, r) = (z.n, z.a, z.d, z.k, z.r);
    super::time_model::Workload {
        n: n as f64,
        a: a as f64,
        d: d as f64,
        k: k as f64,
        r: r as f64,
        macs: super::time_model::forward_macs(z.conv.as_deref(), z.params),
        layers: (z.l + 1) as f64,
        gram_width: super::time_model::gram_width(z.conv.as_deref(), z.w, z.l),
        products: match exp.kernel.form {
            crate::ntk::KernelForm::Full => (k * k) as f64,
            crate::ntk::KernelForm::Trace => k as f64,
        },
        signal_rows: z.signal_rows as f64,
        batch: z.batch as f64,
        steps: exp.training.steps as f64,
        checkpoints: z.checkpoints as f64,
        kernel_checkpoints: (exp.training.steps / exp.logging.kernel_every.max(1) + 1) as f64,
        probe: exp.kernel.probe_size.min(n as usize) as f64,
        twin: exp.training.twin.resolve(
            (a as usize).saturating_mul(r as usize),
            (n as usize).saturating_mul(r as usize),
        ),
        solutions: exp.kernel.solutions.clone(),
        analytic_entry_seconds: super::time_model::analytic_entry_seconds(exp, d, s.moment_seconds),
        extra_members: extra_members as f64,
        members_in_flight: super::parallel_members(exp) as f64,
        conv: z.conv.is_some(),
        units: z.outputs_per_point.saturating_sub(k) as f64,
        unit_seconds: super::time_model::unit_seconds(exp.model.activation),
        data_seconds: match &exp.data.source {
            DataSource::Teacher(t) => {
                let weights = (t.input_dim * t.teacher_width) as f64;
                weights * super::time_model::GAUSSIAN_SECONDS
                    + (z.n_all_train + z.h) as f64 * weights * super::time_model::SCALAR_MAC_SECONDS
            }
            _ => 0.0,
        },
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The setting that shrinks a named part of the footprint.
pub fn advice_for(part: &str) -> &'static str {
    match part {
        p if p.starts_with("empirical Θ0") => "training.twin = \"parameter\" (no function-space copy) or kernel.solver = \"iterative\" (no dense Θ0), or fewer points (data.n_train, kernel.train_subset)",
        p if p.starts_with("kernel predictors") || p.starts_with("analytic kernels") => "kernel.solver = \"iterative\" (no N × N matrix is decomposed) or kernel.train_subset",
        p if p.starts_with("backprop signals") || p.starts_with("per-point conv") => "kernel.block_size (signals of one row block at a time) or kernel.solver = \"iterative\"",
        p if p.starts_with("kernel stores (in memory)") => "kernel.store = \"disk\" or kernel.storage = \"f32\" (half the bytes)",
        p if p.starts_with("empirical kernel's signal cache") => "fewer kernel.solutions (drop \"empirical\") or a narrower network",
        p if p.starts_with("one block of kernel rows") => "a smaller kernel.block_size",
        p if p.starts_with("Lanczos bases") => "a looser kernel.solver_tolerance or a smaller kernel.solver_max_iterations",
        p if p.starts_with("Nyström") => "a smaller kernel.preconditioner_rank",
        p if p.starts_with("held-out predictions") => "a larger logging.every (fewer logged steps)",
        p if p.starts_with("ensemble") => "ensemble.parallel (fewer members at once) or fewer ensemble.members",
        p if p.starts_with("teacher network") => "a smaller data.teacher_width (the default is 256)",
        p if p.starts_with("autodiff graph") => "a smaller training.batch_size",
        p if p.starts_with("data") => "fewer points (data.n_train, data.n_test)",
        p if p.starts_with("parameters") => "a narrower network (model.width) or fewer layers (model.depth)",
        p if p.starts_with("logged checkpoints") => "a larger logging.every",
        p if p.starts_with("kernel checkpoints") => "outputs.save_kernel_checkpoints = false or a larger logging.kernel_every",
        p if p.starts_with("every track's outputs") => "outputs.save_predictions = true (final outputs only) or a larger logging.every",
        _ => "fewer points (data.n_train) or a narrower network (model.width)",
    }
}

/// Refuses a sweep whose `parallel` largest points (by estimated peak memory) do not fit in the
/// available memory together (unless `policy` forces it): each point alone may fit while the
/// points that run at the same time do not.
pub fn check_concurrent_points(
    peaks: &mut [u64],
    parallel: usize,
    policy: LimitPolicy,
) -> Result<()> {
    if policy.forced() || parallel <= 1 {
        return Ok(());
    }
    peaks.sort_unstable_by(|a, b| b.cmp(a));
    let at_once = parallel.min(peaks.len());
    let need = peaks[..at_once]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b));
    let available = available_memory_bytes();
    if need > available {
        let fits = peaks
            .iter()
            .scan(0u64, |acc, &p| {
                *acc = acc.saturating_add(p);
                Some(*acc)
            })
            .take_while(|&s| s <= available)
            .count()
            .max(1);
        return Err(Error::Memory {
            what: format!(
                "{at_once} sweep points at the same time (sweep.parallel = {parallel}; the largest {} each)",
                gib(peaks[0])
            ),
            needed_bytes: need,
            available_bytes: available,
            advice: format!("sweep.parallel = {fits} or fewer (that many of the largest points fit together)"),
        });
    }
    Ok(())
}

/// Refuses a sweep whose points' outputs together do not fit on the disk of `root` (the sweep
/// directory, or `outputs.dir`), unless `policy` forces it: each point alone may fit while all
/// of them, written one after another into the same directory, do not.
pub fn check_sweep_disk(disks: &[u64], root: &std::path::Path, policy: LimitPolicy) -> Result<()> {
    if policy.forced() {
        return Ok(());
    }
    let need = disks.iter().fold(0u64, |a, &b| a.saturating_add(b));
    match free_disk_bytes(root) {
        Some(free) if need > free => Err(Error::Memory {
            what: format!(
                "the outputs of all {} sweep points on disk under {} (estimated {} together)",
                disks.len(),
                root.display(),
                gib(need)
            ),
            needed_bytes: need,
            available_bytes: free,
            advice: "free disk space, write the sweep to a larger disk (--out DIR), fewer points or seeds, or turn optional outputs off (outputs.save_kernels, outputs.save_kernel_checkpoints, outputs.save_predictions, outputs.save_parameters)".into(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a footprint that exceeds the available memory or the free disk space of `out_root`
/// (unless `policy` forces it).
pub fn check_footprint(
    f: &Footprint,
    exp: &Experiment,
    out_root: &std::path::Path,
    policy: LimitPolicy,
) -> Result<()> {
    if policy.forced() {
        return Ok(());
    }
    let available = available_memory_bytes();
    if f.peak_bytes > available {
        let parts = f
            .parts
            .iter()
            .take(3)
            .map(|(what, b)| format!("{what} {}", gib(*b)))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::Memory {
            what: format!(
                "this run (estimated peak {}; largest parts: {parts})",
                gib(f.peak_bytes)
            ),
            needed_bytes: f.peak_bytes,
            available_bytes: available,
            advice: f
                .parts
                .first()
                .map_or("reduce the number of points".into(), |(what, _)| {
                    format!(
                        "the largest part, {what}, shrinks with {}",
                        advice_for(what)
                    )
                }),
        });
    }
    if is_pseudo_filesystem(out_root) {
        return Err(Error::OutputDir {
            path: out_root.to_path_buf(),
            message: "is on a filesystem with no storage (such as /proc or /sys), which holds no files: write the run to a directory on a disk (--out DIR or outputs.dir)".into(),
        });
    }
    if let Some(free) = free_disk_bytes(out_root) {
        if f.disk_bytes > free {
            return Err(Error::Memory {
                what: format!(
                    "the outputs on disk under {} (estimated {})",
                    out_root.display(),
                    gib(f.disk_bytes)
                ),
                needed_bytes: f.disk_bytes,
                available_bytes: free,
                advice: disk_advice(exp),
            });
        }
    }
    Ok(())
}

/// What shrinks the outputs of `exp` on disk: only the output settings that are on now.
fn disk_advice(exp: &Experiment) -> String {
    let o = &exp.outputs;
    let mut settings = Vec::new();
    if o.save_kernel_checkpoints {
        settings.push("outputs.save_kernel_checkpoints = false");
    }
    if o.save_kernels {
        settings.push("outputs.save_kernels = false");
    }
    if o.predictions == crate::config::Predictions::Checkpoints {
        settings.push("outputs.save_predictions = true (final outputs only)");
    } else if o.predictions.csv() {
        settings.push("outputs.save_predictions = false");
    }
    if o.save_parameters {
        settings.push("outputs.save_parameters = false");
    }
    if o.formats.len() > 1 {
        settings.push("outputs.formats = [\"png\"]");
    }
    if exp.kernel.plan.is_some() {
        settings
            .push("kernel.storage = \"f32\" or kernel.store_dir on a larger disk (a disk store)");
    }
    if settings.is_empty() {
        "free disk space, or write the run to a larger disk (--out DIR or outputs.dir): every optional output is already off".into()
    } else {
        format!(
            "free disk space, write the run to a larger disk (--out DIR), or set {}",
            settings.join(" or ")
        )
    }
}

/// Checks a config against its data before any work or output: batch size, footprint (the disk
/// part against `outputs.dir`).
pub fn preflight(exp: &Experiment, data: &Dataset, policy: LimitPolicy) -> Result<Footprint> {
    preflight_into(exp, data, None, policy)
}

/// [`preflight`] of a run written into `out` (`--out`) when given, else under `outputs.dir`:
/// the disk estimate is checked against the filesystem the files will actually go to.
pub fn preflight_into(
    exp: &Experiment,
    data: &Dataset,
    out: Option<&std::path::Path>,
    policy: LimitPolicy,
) -> Result<Footprint> {
    let n_train = data.n_train();
    if let Some(b) = exp.training.batch_size {
        if b > n_train {
            return Err(Error::value(
                "training.batch_size",
                b,
                format!("an integer in [1, number of training points = {n_train}]"),
            ));
        }
    }
    check_magnitudes(exp, data)?;
    if exp.training.loss == crate::dynamics::Loss::CrossEntropy && data.classes.is_none() {
        return Err(Error::value(
            "training.loss",
            "\"cross_entropy\"",
            format!(
                "\"mse\" for these targets: softmax cross-entropy needs one-hot class targets (data.one_hot = true for CSV, integer labels in .npy/.npz, idx or text data), and these are {} real-valued output(s), along which it would train towards 1 − y",
                data.n_outputs
            ),
        ));
    }
    check_targets_carry_signal(data)?;
    let f = estimate(exp, Sizes::for_run(exp, data));
    check_footprint(&f, exp, out.unwrap_or(&exp.outputs.dir), policy)?;
    Ok(f)
}

/// Decimal orders of magnitude the network's activations (the network's precision) and the
/// f64 kernels (products of two activations) may reach.
fn magnitude_limit(p: crate::backend::Precision) -> f64 {
    let kernels = 145.0; // squared, within f64's 1.8e308 with a margin
    match p {
        crate::backend::Precision::F32 => 30.0_f64.min(kernels),
        crate::backend::Precision::F64 => kernels,
    }
}

/// Refuses inputs whose size, grown through the layers' scales, would overflow the network's
/// precision or the f64 kernels before the first step.
fn check_magnitudes(exp: &Experiment, data: &Dataset) -> Result<()> {
    let x_max = data
        .x_train
        .iter()
        .chain(&data.x_val)
        .chain(&data.x_test)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let m = &exp.model;
    let growth = (x_max.max(1.0) * (data.input_dim as f64).sqrt()).log10()
        + (m.depth + 1) as f64 * m.w_std.max(1.0).log10()
        + m.b_std.max(1.0).log10();
    let limit = magnitude_limit(m.precision);
    if growth > limit {
        return Err(Error::value(
            "data",
            format!("inputs up to {x_max:e}"),
            format!(
                "inputs that, grown by the layers' scales, stay below 1e{limit:.0} (here about 1e{growth:.0}): \
                 activations ({}) or kernels (f64) would overflow; rescale the inputs (data.interval, data.feature_scale) or the scales",
                m.precision.name()
            ),
        ));
    }
    Ok(())
}

/// Refuses training targets whose root mean square is 0 or so small that its square underflows
/// (below √(smallest normal f64) ≈ 1.5e-154): every error is reported relative to it, and a
/// network fitted to them learns nothing (e.g. a sine of frequency 0, or an interval of width
/// 1e-300).
fn check_targets_carry_signal(data: &Dataset) -> Result<()> {
    let y = &data.y_train;
    if y.is_empty() {
        return Ok(());
    }
    let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let rms = if scale > 0.0 {
        scale * (y.iter().map(|v| (v / scale).powi(2)).sum::<f64>() / y.len() as f64).sqrt()
    } else {
        0.0
    };
    if rms < f64::MIN_POSITIVE.sqrt() {
        return Err(Error::value(
            "data",
            format!("training targets with RMS {rms:e}"),
            "targets that vary: every training target is 0 (or below 1.5e-154, where squared errors underflow), so there is nothing to learn and every error relative to RMS(y) is undefined; for sine data use a frequency ≠ 0 and an interval of positive width, for files check the target column",
        ));
    }
    Ok(())
}

/// Checks what can be checked before the data are loaded: the footprint of synthetic data
/// (whose sizes the config fixes) and the size of data files.
pub fn preflight_config(exp: &Experiment, policy: LimitPolicy) -> Result<()> {
    if let DataSource::Teacher(t) = &exp.data.source {
        // The teacher's weights (d × m, and m) are drawn before anything else.
        let need = mul(&[t.input_dim as u64, t.teacher_width as u64, 8])
            .saturating_add(mul(&[t.teacher_width as u64, 8]));
        if need > available_memory_bytes() && !policy.forced() {
            return Err(Error::Memory {
                what: format!(
                    "the teacher network of data.teacher_width = {} on {} inputs",
                    t.teacher_width, t.input_dim
                ),
                needed_bytes: need,
                available_bytes: available_memory_bytes(),
                advice: if t.input_dim > t.teacher_width {
                    "a smaller data.input_dim (the teacher's weights are input_dim × teacher_width)"
                } else {
                    "a smaller data.teacher_width (the default is 256)"
                }
                .into(),
            });
        }
    }
    if let Some(s) = Sizes::from_config(exp) {
        return check_footprint(&estimate(exp, s), exp, &exp.outputs.dir, policy);
    }
    let path = match &exp.data.source {
        DataSource::Csv(c) => &c.path,
        DataSource::Text(t) => &t.path,
        _ => return Ok(()),
    };
    if let Ok(meta) = std::fs::metadata(path) {
        // A file is held a few times over while parsed (text, rows, columns).
        let need = meta.len().saturating_mul(16);
        if need > available_memory_bytes() && !policy.forced() {
            return Err(Error::Memory {
                what: format!("reading {}", path.display()),
                needed_bytes: need,
                available_bytes: available_memory_bytes(),
                advice: "use a smaller file (data.n_train caps the rows used, not the rows read)"
                    .into(),
            });
        }
    }
    Ok(())
}

pub use crate::system::{
    available_memory_bytes, free_disk_bytes, is_pseudo_filesystem, peak_rss_bytes,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(outputs: &str) -> Experiment {
        let text = format!(
            "[experiment]\nname = \"t\"\n[data]\nkind = \"sine\"\n[model]\nwidth = 8\n[training]\nsteps = 1\n[outputs]\n{outputs}\n"
        );
        crate::config::parse_str(&text, None).expect("config")
    }

    #[test]
    fn a_sweep_is_checked_for_the_disk_of_all_its_points_together() {
        let free = free_disk_bytes(std::path::Path::new(".")).expect("statvfs");
        // Each point alone fits; the points together need twice the free space.
        let each = free / 4 + 1;
        let err = check_sweep_disk(&[each; 8], std::path::Path::new("."), LimitPolicy::Refuse)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("all 8 sweep points"), "{text}");
        assert!(text.contains("--out DIR"), "{text}");
        assert!(
            check_sweep_disk(&[1, 2, 3], std::path::Path::new("."), LimitPolicy::Refuse).is_ok()
        );
    }

    #[test]
    fn disk_advice_names_only_the_outputs_that_are_on() {
        let on = disk_advice(&exp("save_kernels = true\nsave_parameters = true"));
        assert!(on.contains("outputs.save_kernels = false"), "{on}");
        assert!(on.contains("outputs.save_parameters = false"), "{on}");
        let off = disk_advice(&exp("save_kernels = false\nsave_predictions = false"));
        assert!(!off.contains("= false"), "{off}");
        assert!(off.contains("already off"), "{off}");
    }
}
