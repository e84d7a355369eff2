//! Kernels computed block by block into [`KernelStore`]s, for data sets whose kernels do not fit
//! in memory as dense f64 matrices: the analytic NNGP and NTK (MLP and conv net) and the
//! structured empirical NTK (output-averaged), each as a symmetric training store and a
//! held-out × training store.
//!
//! The work is a fixed list of **units** (one row block of one store; an analytic unit fills the
//! NNGP and the NTK block together) in a fixed order, so that a run, or several processes each
//! taking the units `u ≡ I (mod N)` ([`KernelJob::compute`] with a shard), fill the same stores
//! with the same bits: every unit is computed from the same points in the same way whoever
//! computes it, and a unit whose block is already stored is skipped (a resumed or re-submitted
//! job computes only what is missing).
//!
//! - Analytic MLP: per block one f64 GEMM for the input kernel `x·x'/d`, then the layer
//!   recursion entry by entry ([`AnalyticConfig`]); pairs of identical inputs take the exact
//!   self-kernel `x·x/d` of the diagonal (so that repeated points give `qq' − K² = 0` exactly, as
//!   the dense path does). Conv nets: the CNTK of [`super::conv`] per block.
//! - Empirical: the backprop signals of a row block against those of each column block
//!   ([`ntk_from_signals`]); column blocks' signals are cached up to a memory budget and
//!   recomputed beyond it, never more than one row block's and the cached column blocks' signals
//!   at once (the `N × P` Jacobian is never formed).

use std::sync::Arc;

use rayon::prelude::*;

use super::analytic::AnalyticConfig;
use super::conv::ConvKernelConfig;
use super::empirical::{backprop_signals, ntk_from_signals, BackpropSignals};
use super::KernelForm;
use crate::model::{Network, NetworkConfig};
use crate::ntk::analytic::{input_kernel, MomentMethod};
use crate::store::KernelStore;
use crate::{Error, Result};

/// A kernel between the training points (symmetric) and from the held-out points to them.
#[derive(Debug, Clone)]
pub struct StoredKernel {
    /// Training × training.
    pub train: Arc<KernelStore>,
    /// Held-out × training (None without held-out points).
    pub heldout: Option<Arc<KernelStore>>,
    /// `Θ(x, x)` of every held-out point.
    pub heldout_diag: Vec<f64>,
}

impl StoredKernel {
    /// `max_x Θ(x, x)` over the held-out points (0 without them).
    pub fn heldout_diag_max(&self) -> f64 {
        self.heldout_diag.iter().copied().fold(0.0, f64::max)
    }
}

/// Which store a unit fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The symmetric training store.
    Train,
    /// The held-out × training store.
    Heldout,
}

/// Which kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Analytic NNGP and NTK together.
    Analytic,
    /// The empirical NTK at initialisation.
    Empirical,
}

/// One unit of work: a row block of one part of one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Which kernel.
    pub which: Which,
    /// Which part.
    pub part: Part,
    /// Row block.
    pub block: usize,
}

/// The stores of a run's kernels and what computes their blocks.
pub struct KernelJob<'a> {
    /// Training inputs (`n × d`, row-major).
    pub x_train: &'a [f64],
    /// Held-out inputs (`m × d`).
    pub x_heldout: &'a [f64],
    /// The analytic kernels' description (None: not asked for).
    pub analytic: Option<AnalyticJob>,
    /// The network whose empirical NTK is asked for (None: not asked for).
    pub empirical: Option<&'a Network>,
    /// Analytic NNGP stores (train, held-out).
    pub nngp: Option<(KernelStore, Option<KernelStore>)>,
    /// Analytic NTK stores.
    pub ntk: Option<(KernelStore, Option<KernelStore>)>,
    /// Empirical NTK stores.
    pub emp: Option<(KernelStore, Option<KernelStore>)>,
    /// Bytes of column-block signals the empirical kernel may keep.
    pub signal_budget_bytes: u64,
}

/// The analytic kernels of an architecture.
#[derive(Debug, Clone)]
pub struct AnalyticJob {
    /// The network description.
    pub arch: NetworkConfig,
    /// Quadrature nodes per piece (activations without closed form).
    pub quadrature_order: usize,
}

/// Per-point data of the analytic MLP kernel: layer variances, exact self input kernel, and an
/// identity shared by bitwise identical inputs.
struct PointData {
    q: Vec<crate::ntk::analytic::PointVariances>,
    k0_self: Vec<f64>,
    id: Vec<u64>,
}

fn point_data(cfg: &AnalyticConfig, x: &[f64], n: usize, offset: u64) -> PointData {
    let d = cfg.arch.input_dim;
    let rows: Vec<&[f64]> = (0..n).map(|i| &x[i * d..(i + 1) * d]).collect();
    let q = rows.par_iter().map(|r| cfg.variances(r)).collect();
    let k0_self = rows.iter().map(|r| input_kernel(r, r)).collect();
    let id = crate::linalg::identical_rows(x, n)
        .into_iter()
        .map(|i| offset + i as u64)
        .collect();
    PointData { q, k0_self, id }
}

impl KernelJob<'_> {
    fn d(&self) -> usize {
        self.x_train.len().checked_div(self.n_train()).unwrap_or(1)
    }

    fn n_train(&self) -> usize {
        match (&self.ntk, &self.emp) {
            (Some((s, _)), _) | (None, Some((s, _))) => s.nrows(),
            _ => 0,
        }
    }

    /// Every unit, in the fixed order.
    pub fn units(&self) -> Vec<Unit> {
        let mut out = Vec::new();
        let mut add = |which: Which, stores: &Option<(KernelStore, Option<KernelStore>)>| {
            if let Some((t, h)) = stores {
                out.extend((0..t.n_blocks()).map(|block| Unit {
                    which,
                    part: Part::Train,
                    block,
                }));
                if let Some(h) = h {
                    out.extend((0..h.n_blocks()).map(|block| Unit {
                        which,
                        part: Part::Heldout,
                        block,
                    }));
                }
            }
        };
        add(Which::Analytic, &self.ntk);
        add(Which::Empirical, &self.emp);
        out
    }

    fn store(&self, which: Which, part: Part) -> Option<&KernelStore> {
        let pair = match which {
            Which::Analytic => self.ntk.as_ref(),
            Which::Empirical => self.emp.as_ref(),
        }?;
        match part {
            Part::Train => Some(&pair.0),
            Part::Heldout => pair.1.as_ref(),
        }
    }

    /// Whether a unit's block is stored (for the analytic kernels: in both stores).
    pub fn done(&self, u: Unit) -> bool {
        let has = |s: Option<&KernelStore>| s.is_some_and(|s| s.has_block(u.block));
        match u.which {
            Which::Analytic => {
                let nngp = self.nngp.as_ref().and_then(|p| match u.part {
                    Part::Train => Some(&p.0),
                    Part::Heldout => p.1.as_ref(),
                });
                has(self.store(u.which, u.part)) && has(nngp)
            }
            Which::Empirical => has(self.store(u.which, u.part)),
        }
    }

    /// Computes the missing units of shard `(index, count)` (all with `(0, 1)`), calling
    /// `progress` after each and `stop` before each (an interrupt error when it returns true).
    pub fn compute(
        &mut self,
        shard: (usize, usize),
        stop: &(dyn Fn() -> bool + Sync),
        progress: &dyn Fn(),
    ) -> Result<()> {
        let units: Vec<Unit> = self
            .units()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard.1.max(1) == shard.0)
            .map(|(_, u)| u)
            .filter(|&u| !self.done(u))
            .collect();
        let d = self.d();
        let analytic_points = match &self.analytic {
            Some(a) if units.iter().any(|u| u.which == Which::Analytic) => {
                let cfg = AnalyticConfig::new(&a.arch, a.quadrature_order);
                let n = self.x_train.len() / d;
                let m = self.x_heldout.len() / d;
                let mut all = self.x_train.to_vec();
                all.extend_from_slice(self.x_heldout);
                let pd = point_data(&cfg, &all, n + m, 0);
                Some((cfg, pd))
            }
            _ => None,
        };
        let mut cache = SignalCache::new(self.signal_budget_bytes);
        for u in units {
            if stop() {
                return Err(Error::Interrupted(
                    "while computing the kernel blocks".into(),
                ));
            }
            match u.which {
                Which::Analytic => {
                    let (cfg, pd) = analytic_points.as_ref().expect("prepared above");
                    self.analytic_unit(u, cfg, pd)?;
                }
                Which::Empirical => self.empirical_unit(u, &mut cache)?,
            }
            progress();
        }
        Ok(())
    }

    /// Rows `[r0, r1)` of a part and the number of columns of its block `b`.
    fn rows_of(&self, u: Unit, store: &KernelStore) -> (usize, usize, usize) {
        let (r0, r1) = store.block_range(u.block);
        (r0, r1, store.block_cols(u.block))
    }

    fn analytic_unit(&mut self, u: Unit, cfg: &AnalyticConfig, pd: &PointData) -> Result<()> {
        let d = self.d();
        let n = self.x_train.len() / d;
        let store = self
            .store(u.which, u.part)
            .expect("unit of an existing store");
        let (r0, r1, cols) = self.rows_of(u, store);
        // Global point indices of the rows (held-out points follow the training points).
        let g0 = if u.part == Part::Train { r0 } else { n + r0 };
        let x_rows = match u.part {
            Part::Train => &self.x_train[r0 * d..r1 * d],
            Part::Heldout => &self.x_heldout[r0 * d..r1 * d],
        };
        let x_cols = &self.x_train[..cols * d];
        let job = self.analytic.as_ref().expect("analytic job");
        let (nngp, ntk) =
            match ConvKernelConfig::of_network(&job.arch, MomentMethod::Auto(job.quadrature_order))
            {
                Some(conv) => conv_block(&conv, x_rows, r1 - r0, x_cols, cols, u.part, r0),
                None => mlp_block(cfg, pd, x_rows, g0, r1 - r0, x_cols, cols),
            };
        let set = |pair: &mut Option<(KernelStore, Option<KernelStore>)>, v: &[f64]| {
            let s = pair.as_mut().and_then(|p| match u.part {
                Part::Train => Some(&mut p.0),
                Part::Heldout => p.1.as_mut(),
            });
            match s {
                Some(s) => s.set_block(u.block, v),
                None => Ok(()),
            }
        };
        set(&mut self.nngp, &nngp)?;
        set(&mut self.ntk, &ntk)
    }

    fn empirical_unit(&mut self, u: Unit, cache: &mut SignalCache) -> Result<()> {
        let net = self.empirical.expect("empirical job");
        let d = self.d();
        let store = self
            .store(u.which, u.part)
            .expect("unit of an existing store");
        let block_rows = store.manifest().block_rows;
        let (r0, r1, cols) = self.rows_of(u, store);
        let x_rows = match u.part {
            Part::Train => &self.x_train[r0 * d..r1 * d],
            Part::Heldout => &self.x_heldout[r0 * d..r1 * d],
        };
        let rows = r1 - r0;
        let s_rows = if u.part == Part::Train {
            cache.get(net, self.x_train, block_rows, u.block)?
        } else {
            Arc::new(backprop_signals(net, x_rows, rows)?)
        };
        let mut out = vec![0.0; rows * cols];
        let n_col_blocks = cols.div_ceil(block_rows);
        for j in 0..n_col_blocks {
            let c0 = j * block_rows;
            let c1 = (c0 + block_rows).min(cols);
            let tile = if u.part == Part::Train && j == u.block {
                ntk_from_signals(net, &s_rows, &s_rows, KernelForm::Trace).total()
            } else {
                let s_cols = cache.get(net, self.x_train, block_rows, j)?;
                ntk_from_signals(net, &s_rows, &s_cols, KernelForm::Trace).total()
            };
            for i in 0..rows {
                for (c, jj) in (c0..c1).enumerate() {
                    out[i * cols + jj] = tile[(i, c)];
                }
            }
        }
        let s = match u.part {
            Part::Train => &mut self.emp.as_mut().expect("store").0,
            Part::Heldout => self.emp.as_mut().and_then(|p| p.1.as_mut()).expect("store"),
        };
        s.set_block(u.block, &out)
    }

    /// The computed stores (every unit must be done).
    pub fn finish(self) -> Result<JobStores> {
        let d = self.d();
        let m = self.x_heldout.len() / d;
        let (heldout_diag_nngp, heldout_diag_analytic) = match &self.analytic {
            Some(job) if self.ntk.is_some() || self.nngp.is_some() => {
                analytic_self_kernels(job, self.x_heldout, m)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let heldout_diag_emp = match self.empirical {
            Some(net) if self.emp.is_some() => empirical_self_kernels(net, self.x_heldout, m)?,
            _ => Vec::new(),
        };
        let wrap = |pair: Option<(KernelStore, Option<KernelStore>)>, diag: Vec<f64>| {
            pair.map(|(t, h)| StoredKernel {
                train: Arc::new(t),
                heldout: h.map(Arc::new),
                heldout_diag: diag,
            })
        };
        Ok(JobStores {
            nngp: wrap(self.nngp, heldout_diag_nngp),
            ntk: wrap(self.ntk, heldout_diag_analytic),
            empirical: wrap(self.emp, heldout_diag_emp),
        })
    }
}

/// The stores of a finished [`KernelJob`].
#[derive(Debug, Clone, Default)]
pub struct JobStores {
    /// Analytic NNGP.
    pub nngp: Option<StoredKernel>,
    /// Analytic NTK.
    pub ntk: Option<StoredKernel>,
    /// Empirical NTK at initialisation (output-averaged).
    pub empirical: Option<StoredKernel>,
}

/// `(K(x, x), Θ(x, x))` of each point, as `(nngp, ntk)` vectors.
fn analytic_self_kernels(job: &AnalyticJob, x: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let d = job.arch.input_dim;
    let pairs: Vec<(f64, f64)> = (0..m)
        .into_par_iter()
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            let k = crate::ntk::analytic_kernels_until(
                &job.arch,
                job.quadrature_order,
                (xi, 1),
                (xi, 1),
                &|| false,
            )
            .expect("never stopped");
            (k.nngp[(0, 0)], k.ntk[(0, 0)])
        })
        .collect();
    pairs.into_iter().unzip()
}

/// `Θ0(x, x)` (output-averaged) of each point, from the diagonal of small blocks.
fn empirical_self_kernels(net: &Network, x: &[f64], m: usize) -> Result<Vec<f64>> {
    let d = net.config.input_dim;
    let mut out = Vec::with_capacity(m);
    const B: usize = 256;
    let mut r = 0;
    while r < m {
        let nb = B.min(m - r);
        let s = backprop_signals(net, &x[r * d..(r + nb) * d], nb)?;
        let k = ntk_from_signals(net, &s, &s, KernelForm::Trace).total();
        out.extend((0..nb).map(|i| k[(i, i)]));
        r += nb;
    }
    Ok(out)
}

/// NNGP and NTK rows of an MLP block (row-major `rows × cols`).
fn mlp_block(
    cfg: &AnalyticConfig,
    pd: &PointData,
    x_rows: &[f64],
    g0: usize,
    rows: usize,
    x_cols: &[f64],
    cols: usize,
) -> (Vec<f64>, Vec<f64>) {
    let d = cfg.arch.input_dim;
    let a = crate::linalg::mat_from_rows(x_rows, rows, d);
    let b = crate::linalg::mat_from_rows(x_cols, cols, d);
    let mut gram = crate::linalg::gram(a.as_ref(), b.as_ref());
    gram *= faer::Scale(1.0 / d as f64);
    let mut nngp = vec![0.0; rows * cols];
    let mut ntk = vec![0.0; rows * cols];
    nngp.par_chunks_mut(cols)
        .zip(ntk.par_chunks_mut(cols))
        .enumerate()
        .for_each(|(i, (kn, kt))| {
            let gi = g0 + i;
            for j in 0..cols {
                let k0 = if pd.id[gi] == pd.id[j] {
                    pd.k0_self[gi]
                } else {
                    gram[(i, j)]
                };
                let (a, b) = cfg.entry(k0, &pd.q[gi], &pd.q[j]);
                kn[j] = a;
                kt[j] = b;
            }
        });
    (nngp, ntk)
}

/// NNGP and NTK rows of a conv-net block (row-major `rows × cols`); a training block's
/// diagonal tile uses the symmetric kernel of its own images.
fn conv_block(
    conv: &ConvKernelConfig,
    x_rows: &[f64],
    rows: usize,
    x_cols: &[f64],
    cols: usize,
    part: Part,
    r0: usize,
) -> (Vec<f64>, Vec<f64>) {
    let d = conv.input_dim();
    let (left, square) = if part == Part::Train {
        (r0, true)
    } else {
        (cols, false)
    };
    let rect = conv.kernels(x_rows, rows, &x_cols[..left * d], left);
    let diag = square.then(|| conv.kernels(x_rows, rows, x_rows, rows));
    let mut nngp = vec![0.0; rows * cols];
    let mut ntk = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            let (a, b) = if j < left {
                (rect.nngp[(i, j)], rect.ntk[(i, j)])
            } else {
                let t = diag.as_ref().expect("square tile");
                (t.nngp[(i, j - left)], t.ntk[(i, j - left)])
            };
            nngp[i * cols + j] = a;
            ntk[i * cols + j] = b;
        }
    }
    (nngp, ntk)
}

/// Column blocks' backprop signals, kept while they fit a byte budget, recomputed otherwise.
struct SignalCache {
    budget: u64,
    used: u64,
    blocks: Vec<Option<Arc<BackpropSignals>>>,
}

impl SignalCache {
    fn new(budget: u64) -> Self {
        SignalCache {
            budget,
            used: 0,
            blocks: Vec::new(),
        }
    }

    /// The signals of training block `j` (rows `[j·R, (j+1)·R)` of `x`).
    fn get(
        &mut self,
        net: &Network,
        x: &[f64],
        block_rows: usize,
        j: usize,
    ) -> Result<Arc<BackpropSignals>> {
        if let Some(Some(s)) = self.blocks.get(j) {
            return Ok(s.clone());
        }
        let d = net.config.input_dim;
        let n = x.len() / d;
        let c0 = j * block_rows;
        let c1 = (c0 + block_rows).min(n);
        let s = Arc::new(backprop_signals(net, &x[c0 * d..c1 * d], c1 - c0)?);
        let bytes = s.bytes();
        if self.used + bytes <= self.budget {
            if self.blocks.len() <= j {
                self.blocks.resize(j + 1, None);
            }
            self.blocks[j] = Some(s.clone());
            self.used += bytes;
        }
        Ok(s)
    }
}
