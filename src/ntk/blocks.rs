//! Analytic infinite-width NNGP and NTK of a network written as an explicit stack
//! (`model.blocks`: residual blocks, strided convolutions, average pooling, layer norm), as
//! neural-tangents 0.6.5 computes them for the matching `stax` layers (`FanOut(2)`,
//! `parallel(branch, shortcut)`, `FanInSum()`, `Conv(strides=...)`, `AvgPool`, `LayerNorm()`).
//!
//! For a pair of inputs (a, b) the state is the covariance `K(p, p')` and the NTK `Θ(p, p')` of
//! the stream over every pair of positions (a dense stream is one position whose channels are
//! the features; the input covariance is `Σ_c a[p, c]·b[p', c]/C`). The ops map it as follows
//! (`S` averages over a layer's taps: `S(M)(o, o') = (1/f²)·Σ_δ M(s·o + δ, s·o' + δ)` for a
//! convolution, zero padding contributing 0; the identity for a dense layer; the mean over equal
//! positions for `Flatten` and over all pairs for `GlobalAvgPool`):
//! - affine layer, fan-in `n_in`: `K ← σ_w²·S(K) + σ_b²`; `Θ ← K + σ_w²·S(Θ)` under `ntk`,
//!   `Θ ← n_in·S(K) + σ_w²·S(Θ) + 1_bias` under `standard`;
//! - activation: `K(p, p') ← E[φ(u)φ(v)]`, `Θ(p, p') ← Θ(p, p')·E[φ′(u)φ′(v)]` for
//!   `(u, v) ~ N(0, [[q_a(p), K], [K, q_b(p')]])`, `q_a(p)` being a's own variance at `p`;
//! - layer norm: `K(p, p')` and `Θ(p, p')` divided by `√((ε + q_a(p))·(ε + q_b(p')))`;
//! - average pooling with window w: `M(o, o') ← (1/w⁴)·Σ_{δ, δ′} M(s·o + δ, s·o' + δ′)`;
//! - residual: `K ← K_shortcut + scale²·K_branch`, the same for `Θ` (both terms are centred
//!   Gaussians with independent weights, neural-tangents' `FanInSum`).
//!
//! Each input's own variances are taken from the same interpreter run on the pair (a, a), so a
//! duplicated point gives `q q′ − K² = 0` exactly. Everything in f64.

use rayon::prelude::*;

use crate::model::blocks::{Op, Program, LAYER_NORM_EPS};
use crate::model::layers::{ConvGeometry, LayerInput, Spatial};
use crate::model::{Architecture, NetworkConfig, Parametrization};
use crate::ntk::analytic::{pair_moments, position_series, AnalyticKernels, MomentMethod};
use crate::ntk::hermite::Series;

/// Entries of a state between two looks at the stop request.
const STOP_LOOK_EVERY: usize = 256;

/// For every output position and tap, the input position it reads (−1: padding).
#[derive(Debug, Clone)]
struct Taps {
    inputs: usize,
    outputs: usize,
    per_output: usize,
    index: Vec<i32>,
}

impl Taps {
    fn of(g: &ConvGeometry) -> Taps {
        let (f, s) = (g.filter as isize, g.stride as isize);
        let (rb, cb) = (g.pad.0 as isize, g.pad_cols().0 as isize);
        let (hi, wi) = (g.input.height as isize, g.input.width as isize);
        let mut index = Vec::with_capacity(g.output.positions() * g.filter * g.filter);
        for o in 0..g.output.positions() {
            let (oy, ox) = ((o / g.output.width) as isize, (o % g.output.width) as isize);
            for dy in 0..f {
                for dx in 0..f {
                    let (y, x) = (oy * s - rb + dy, ox * s - cb + dx);
                    index.push(if (0..hi).contains(&y) && (0..wi).contains(&x) {
                        (y * wi + x) as i32
                    } else {
                        -1
                    });
                }
            }
        }
        Taps {
            inputs: g.input.positions(),
            outputs: g.output.positions(),
            per_output: g.filter * g.filter,
            index,
        }
    }

    fn of_output(&self, o: usize) -> &[i32] {
        &self.index[o * self.per_output..(o + 1) * self.per_output]
    }

    /// `(1/f²)·Σ_δ m(t_δ(o), t_δ(o'))` (a convolution: the same tap on both sides).
    fn conv(&self, m: &[f64]) -> Vec<f64> {
        let ff = self.per_output as f64;
        let mut out = Vec::with_capacity(self.outputs * self.outputs);
        for o1 in 0..self.outputs {
            let t1 = self.of_output(o1);
            for o2 in 0..self.outputs {
                let mut acc = 0.0;
                for (&i1, &i2) in t1.iter().zip(self.of_output(o2)) {
                    if i1 >= 0 && i2 >= 0 {
                        acc += m[i1 as usize * self.inputs + i2 as usize];
                    }
                }
                out.push(acc / ff);
            }
        }
        out
    }

    /// `(1/w⁴)·Σ_{δ, δ′} m(t_δ(o), t_δ′(o'))` (a pooling: every pair of taps).
    fn pool(&self, m: &[f64]) -> Vec<f64> {
        let ww = (self.per_output * self.per_output) as f64;
        let mut out = Vec::with_capacity(self.outputs * self.outputs);
        for o1 in 0..self.outputs {
            let t1 = self.of_output(o1);
            for o2 in 0..self.outputs {
                let t2 = self.of_output(o2);
                let mut acc = 0.0;
                for &i1 in t1.iter().filter(|&&i| i >= 0) {
                    let row = &m[i1 as usize * self.inputs..(i1 as usize + 1) * self.inputs];
                    for &i2 in t2.iter().filter(|&&i| i >= 0) {
                        acc += row[i2 as usize];
                    }
                }
                out.push(acc / ww);
            }
        }
        out
    }
}

/// How an affine layer averages the state.
#[derive(Debug, Clone)]
enum Reduce {
    /// A dense layer: the state is one position.
    Dense,
    /// A convolution.
    Conv(Taps),
    /// The mean over equal positions (`Flatten`).
    Diagonal,
    /// The mean over all position pairs (`GlobalAvgPool`).
    All,
}

/// An op with what the kernel needs of it.
#[derive(Debug, Clone)]
enum KernelOp {
    Affine {
        reduce: Reduce,
        fan_in: f64,
    },
    Activation,
    LayerNorm,
    Pool(Taps),
    Residual {
        branch: Vec<KernelOp>,
        shortcut: Option<Box<KernelOp>>,
        scale_sq: f64,
    },
}

/// The analytic kernels of a stack.
#[derive(Debug, Clone)]
pub struct BlockKernelConfig {
    ops: Vec<KernelOp>,
    input: Spatial,
    channels: usize,
    arch: NetworkConfig,
    method: MomentMethod,
}

/// The covariance and NTK of the stream over position pairs (`p × p`, row-major).
#[derive(Debug, Clone)]
struct State {
    k: Vec<f64>,
    t: Vec<f64>,
    positions: usize,
}

/// One input's own state at an activation or a layer norm: the variance `q(p)` of every
/// position and, at an activation without a closed form, each position's Hermite series of φ and
/// φ′ at that variance ([`Series`]; `None` where the quadrature is used; empty at a
/// layer norm).
#[derive(Debug, Clone)]
struct Own {
    q: Vec<f64>,
    series: Vec<Option<Series>>,
}

/// Each input's own states, one per activation or layer norm in execution order: recorded on
/// the pair (a, a), read on (a, b).
enum Variances<'a> {
    Record(Vec<Own>),
    Read {
        a: &'a [Own],
        b: &'a [Own],
        next: usize,
    },
}

impl Variances<'_> {
    /// The two inputs' own states at the next activation or layer norm; when recording, the
    /// diagonal of `st` and the series `series` makes of it (`None` when `stop` returned true,
    /// looked at before each position's series).
    fn take(
        &mut self,
        st: &State,
        series: &dyn Fn(f64) -> Option<Series>,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<(&Own, &Own)> {
        match self {
            Variances::Record(tape) => {
                let p = st.positions;
                let q: Vec<f64> = (0..p).map(|i| st.k[i * p + i]).collect();
                let own: Vec<Option<Series>> = q
                    .iter()
                    .map(|&v| (!stop()).then(|| series(v)))
                    .collect::<Option<_>>()?;
                tape.push(Own { q, series: own });
                let last = tape.last().expect("just pushed");
                Some((last, last))
            }
            Variances::Read { a, b, next } => {
                let out = (&a[*next], &b[*next]);
                *next += 1;
                Some(out)
            }
        }
    }
}

impl BlockKernelConfig {
    /// The kernels of a network with `model.blocks` (None without).
    pub fn of_network(arch: &NetworkConfig, method: MomentMethod) -> Option<BlockKernelConfig> {
        let program = arch.program()?;
        let (input, channels) = match arch.model.architecture {
            Architecture::Mlp => (
                Spatial {
                    height: 1,
                    width: 1,
                },
                arch.input_dim,
            ),
            Architecture::Conv(c) => (c.image.spatial(), c.image.channels),
        };
        Some(BlockKernelConfig {
            ops: kernel_ops(&program, &program.ops),
            input,
            channels,
            arch: arch.clone(),
            method,
        })
    }

    fn input_covariance(&self, a: &[f64], b: &[f64]) -> State {
        let (c, p) = (self.channels, self.input.positions());
        let cov = |i: usize, j: usize| -> f64 {
            let mut s = 0.0;
            for k in 0..c {
                s += a[i * c + k] * b[j * c + k];
            }
            s / c as f64
        };
        State {
            k: (0..p * p).map(|idx| cov(idx / p, idx % p)).collect(),
            t: vec![0.0; p * p],
            positions: p,
        }
    }

    fn affine(&self, reduce: &Reduce, fan_in: f64, st: State) -> State {
        let m = &self.arch.model;
        let w2 = m.w_std * m.w_std;
        let (b2, b1) = if m.bias {
            (m.b_std * m.b_std, 1.0)
        } else {
            (0.0, 0.0)
        };
        let p = st.positions;
        let (sk, stt, positions) = match reduce {
            Reduce::Dense => (st.k, st.t, p),
            Reduce::Conv(taps) => (taps.conv(&st.k), taps.conv(&st.t), taps.outputs),
            Reduce::Diagonal => {
                let mean = |v: &[f64]| (0..p).map(|i| v[i * p + i]).sum::<f64>() / p as f64;
                (vec![mean(&st.k)], vec![mean(&st.t)], 1)
            }
            Reduce::All => {
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                (vec![mean(&st.k)], vec![mean(&st.t)], 1)
            }
        };
        let k: Vec<f64> = sk.iter().map(|&s| w2 * s + b2).collect();
        let t = match m.parametrization {
            Parametrization::Ntk => k.iter().zip(&stt).map(|(&k, &t)| k + w2 * t).collect(),
            Parametrization::Standard | Parametrization::Mup => sk
                .iter()
                .zip(&stt)
                .map(|(&s, &t)| fan_in * s + w2 * t + b1)
                .collect(),
        };
        State { k, t, positions }
    }

    fn activation(
        &self,
        st: State,
        q: &mut Variances,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<State> {
        let (act, method) = (self.arch.model.activation, self.method);
        let (oa, ob) = q.take(&st, &|v| position_series(act, method, v), stop)?;
        let p = st.positions;
        let mut k = Vec::with_capacity(st.k.len());
        let mut t = Vec::with_capacity(st.k.len());
        for (idx, (&kv, &tv)) in st.k.iter().zip(&st.t).enumerate() {
            if idx % STOP_LOOK_EVERY == 0 && stop() {
                return None;
            }
            let (i, j) = (idx / p, idx % p);
            let (e, kdot) = pair_moments(
                act,
                method,
                (oa.q[i], ob.q[j], kv),
                (oa.series[i].as_ref(), ob.series[j].as_ref()),
            );
            k.push(e);
            t.push(tv * kdot);
        }
        Some(State { k, t, positions: p })
    }

    fn layer_norm(
        &self,
        mut st: State,
        q: &mut Variances,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<State> {
        let (oa, ob) = q.take(&st, &|_| None, stop)?;
        let (qa, qb) = (&oa.q, &ob.q);
        let p = st.positions;
        for idx in 0..st.k.len() {
            let norm = ((LAYER_NORM_EPS + qa[idx / p]) * (LAYER_NORM_EPS + qb[idx % p])).sqrt();
            st.k[idx] /= norm;
            st.t[idx] /= norm;
        }
        Some(st)
    }

    fn run(
        &self,
        ops: &[KernelOp],
        mut st: State,
        q: &mut Variances,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<State> {
        for op in ops {
            st = match op {
                KernelOp::Affine { reduce, fan_in } => self.affine(reduce, *fan_in, st),
                KernelOp::Activation => self.activation(st, q, stop)?,
                KernelOp::LayerNorm => self.layer_norm(st, q, stop)?,
                KernelOp::Pool(taps) => State {
                    k: taps.pool(&st.k),
                    t: taps.pool(&st.t),
                    positions: taps.outputs,
                },
                KernelOp::Residual {
                    branch,
                    shortcut,
                    scale_sq,
                } => {
                    let b = self.run(branch, st.clone(), q, stop)?;
                    let s = match shortcut {
                        None => st,
                        Some(p) => self.run(std::slice::from_ref(p), st, q, stop)?,
                    };
                    State {
                        k: s.k
                            .iter()
                            .zip(&b.k)
                            .map(|(x, y)| x + scale_sq * y)
                            .collect(),
                        t: s.t
                            .iter()
                            .zip(&b.t)
                            .map(|(x, y)| x + scale_sq * y)
                            .collect(),
                        positions: s.positions,
                    }
                }
            };
        }
        Some(st)
    }

    /// Number of input features of one point.
    pub fn input_dim(&self) -> usize {
        self.input.positions() * self.channels
    }

    /// One input's own states at every activation and layer norm.
    fn variances(&self, x: &[f64], stop: &(dyn Fn() -> bool + Sync)) -> Option<Vec<Own>> {
        let mut q = Variances::Record(Vec::new());
        self.run(&self.ops, self.input_covariance(x, x), &mut q, stop)?;
        match q {
            Variances::Record(tape) => Some(tape),
            Variances::Read { .. } => unreachable!("recorded"),
        }
    }

    fn entry(
        &self,
        (a, b): (&[f64], &[f64]),
        (qa, qb): (&[Own], &[Own]),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<(f64, f64)> {
        crate::linalg::clear_avx_upper_state();
        let mut q = Variances::Read {
            a: qa,
            b: qb,
            next: 0,
        };
        let st = self.run(&self.ops, self.input_covariance(a, b), &mut q, stop)?;
        Some((st.k[0], st.t[0]))
    }

    /// NNGP and NTK between the rows of `x1` (`n1 × d`) and `x2` (`n2 × d`).
    pub fn kernels(&self, x1: &[f64], n1: usize, x2: &[f64], n2: usize) -> AnalyticKernels {
        self.kernels_until(x1, n1, x2, n2, &|| false)
            .expect("never stopped")
    }

    /// [`BlockKernelConfig::kernels`], looking at `stop` during every entry; `None` when
    /// stopped.
    pub fn kernels_until(
        &self,
        x1: &[f64],
        n1: usize,
        x2: &[f64],
        n2: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<AnalyticKernels> {
        let d = self.input_dim();
        assert_eq!(x1.len(), n1 * d);
        assert_eq!(x2.len(), n2 * d);
        let own = |x: &[f64], n: usize| -> Option<Vec<Vec<Own>>> {
            (0..n)
                .into_par_iter()
                .map(|i| self.variances(&x[i * d..(i + 1) * d], stop))
                .collect()
        };
        let q1 = own(x1, n1)?;
        let same = std::ptr::eq(x1, x2);
        let q2 = if same { Vec::new() } else { own(x2, n2)? };
        let q2 = if same { &q1 } else { &q2 };
        crate::ntk::pairwise(n1, n2, same, |i, j| {
            self.entry(
                (&x1[i * d..(i + 1) * d], &x2[j * d..(j + 1) * d]),
                (&q1[i], &q2[j]),
                stop,
            )
        })
    }

    /// The moment arguments `(q, q', k)` of the first activation for the points `a` and `b`,
    /// one per position pair (a sample of what an entry costs, for the time estimate).
    pub fn first_activation_arguments(&self, a: &[f64], b: &[f64]) -> Vec<(f64, f64, f64)> {
        let never = || false;
        let (Some(qa), Some(qb)) = (self.variances(a, &never), self.variances(b, &never)) else {
            return Vec::new();
        };
        let Some(path) = first_activation(&self.ops) else {
            return Vec::new();
        };
        let mut q = Variances::Read {
            a: &qa,
            b: &qb,
            next: 0,
        };
        let Some(st) = self.run(&path, self.input_covariance(a, b), &mut q, &never) else {
            return Vec::new();
        };
        let p = st.positions;
        // The first activation's variances follow those of the layer norms before it.
        let before = count_layer_norms(&path);
        let (qa0, qb0) = (&qa[before].q, &qb[before].q);
        st.k.iter()
            .enumerate()
            .map(|(idx, &k)| (qa0[idx / p], qb0[idx % p], k))
            .collect()
    }

    /// `(moments, multiply-adds)` of one kernel entry: Gaussian moments per activation times
    /// its position pairs, and the sums of the affine layers and poolings.
    pub fn entry_work(&self) -> (f64, f64) {
        let mut work = (0.0, 0.0);
        let p = self.input.positions();
        work_of(&self.ops, p, &mut work);
        work
    }
}

/// The ops before the first activation on the main path (entering residual branches), or
/// `None` without an activation.
fn first_activation(ops: &[KernelOp]) -> Option<Vec<KernelOp>> {
    let mut path = Vec::new();
    for op in ops {
        match op {
            KernelOp::Activation => return Some(path),
            KernelOp::Residual { branch, .. } => {
                if let Some(inner) = first_activation(branch) {
                    path.extend(inner);
                    return Some(path);
                }
                path.push(op.clone());
            }
            other => path.push(other.clone()),
        }
    }
    None
}

fn count_layer_norms(ops: &[KernelOp]) -> usize {
    ops.iter()
        .map(|o| match o {
            KernelOp::LayerNorm => 1,
            KernelOp::Residual { branch, .. } => count_layer_norms(branch),
            _ => 0,
        })
        .sum()
}

fn work_of(ops: &[KernelOp], mut p: usize, work: &mut (f64, f64)) -> usize {
    for op in ops {
        p = match op {
            KernelOp::Affine { reduce, .. } => match reduce {
                Reduce::Dense => p,
                Reduce::Conv(t) => {
                    work.1 += 2.0 * (t.outputs * t.outputs * t.per_output) as f64;
                    t.outputs
                }
                Reduce::Diagonal | Reduce::All => {
                    work.1 += (p * p) as f64;
                    1
                }
            },
            KernelOp::Activation => {
                work.0 += (p * p) as f64;
                p
            }
            KernelOp::LayerNorm => p,
            KernelOp::Pool(t) => {
                work.1 += 2.0 * (t.outputs * t.outputs * t.per_output * t.per_output) as f64;
                t.outputs
            }
            KernelOp::Residual {
                branch, shortcut, ..
            } => {
                let out = work_of(branch, p, work);
                if let Some(s) = shortcut {
                    work_of(std::slice::from_ref(s), p, work);
                }
                out
            }
        };
    }
    p
}

fn kernel_ops(program: &Program, ops: &[Op]) -> Vec<KernelOp> {
    ops.iter()
        .map(|op| match op {
            Op::Affine(l) => affine_op(program, *l),
            Op::Activation => KernelOp::Activation,
            Op::LayerNorm => KernelOp::LayerNorm,
            Op::AvgPool(g) => KernelOp::Pool(Taps::of(&g.window)),
            Op::Residual {
                branch,
                shortcut,
                scale,
            } => KernelOp::Residual {
                branch: kernel_ops(program, branch),
                shortcut: shortcut.map(|l| Box::new(affine_op(program, l))),
                scale_sq: scale * scale,
            },
        })
        .collect()
}

fn affine_op(program: &Program, l: usize) -> KernelOp {
    let (input, n_in, _) = program.layers[l];
    KernelOp::Affine {
        reduce: match input {
            LayerInput::Dense => Reduce::Dense,
            LayerInput::Patches(g) => Reduce::Conv(Taps::of(&g)),
            LayerInput::Flatten { .. } => Reduce::Diagonal,
            LayerInput::AveragePool { .. } => Reduce::All,
        },
        fan_in: n_in as f64,
    }
}
