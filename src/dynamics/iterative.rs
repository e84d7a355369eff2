//! Kernel regression under gradient descent without an eigendecomposition: the same
//! predictions as [`super::kernel::KernelPredictor`] (neural-tangents' `gradient_descent_mse`
//! plus exact discrete time and heavy-ball momentum) from products with a stored kernel.
//!
//! - At `t = η·s` (every requested step): `f_train = y + g_s(Θ_r)·r0` and
//!   `f_test = g0 + Θ_st·φ_s(Θ_r)·r0` with `r0 = f0 − y` and the per-eigenvalue factors of
//!   [`super::kernel::mode_factors`], both from one Lanczos basis per output column
//!   ([`crate::krylov::lanczos`]), which serves every step: the basis grows until the estimated
//!   error of every requested step is within the tolerance.
//! - At `t = ∞`: `f_train = y` (exactly, as neural-tangents), `f_test = g0 + Θ_st·α` with
//!   `Θ_r·α = y − f0` solved by conjugate gradients preconditioned with a Nyström approximation
//!   ([`crate::krylov::cg`], [`crate::krylov::nystrom`]). A singular kernel with λ = 0 from
//!   exactly repeated inputs is handled as the pseudo-inverse handles it: the residuals of each
//!   group of identical inputs are replaced by their mean, which removes exactly the part of the
//!   right-hand side in the null space those repeats span (`e_a − e_b`); the test predictions are
//!   then those of the pseudo-inverse.
//!
//! Every figure comes with its estimated largest error in output units (see the solvers' docs).

use std::collections::BTreeMap;
use std::sync::Arc;

use faer::Mat;

use super::kernel::{mode_factors, DiagReg, TimeMode};
use crate::krylov::cg;
use crate::krylov::lanczos::{self, KrylovColumn, ModeFunctions};
use crate::krylov::nystrom::{rp_cholesky, NystromPreconditioner};
use crate::krylov::{SolveReport, SolveSettings};
use crate::linalg;
use crate::store::KernelStore;
use crate::Result;

/// Inputs of an [`IterativePredictor`].
pub struct IterativeInputs<'a> {
    /// Train × train kernel (symmetric store).
    pub train: Arc<KernelStore>,
    /// Held-out × train kernel (None without held-out points).
    pub heldout: Option<Arc<KernelStore>>,
    /// `max_x Θ(x, x)` over the held-out points (0 without them): converts the solvers'
    /// energy-norm estimates into prediction units.
    pub heldout_diag_max: f64,
    /// Initial train outputs, `n × c`.
    pub f0_train: &'a Mat<f64>,
    /// Initial held-out outputs, `m × c`.
    pub f0_test: Option<&'a Mat<f64>>,
    /// Train targets, `n × c`.
    pub y_train: &'a Mat<f64>,
    /// |Y| = N·K.
    pub n_targets: usize,
    /// η.
    pub learning_rate: f64,
    /// Heavy-ball momentum μ.
    pub momentum: f64,
    /// Time mode.
    pub time: TimeMode,
    /// Regulariser.
    pub diag_reg: DiagReg,
    /// The steps whose predictions will be asked for (checkpoints): the Lanczos basis is grown
    /// until every one of them is within the tolerance, and their held-out predictions are
    /// computed together in one pass over the held-out kernel.
    pub planned_steps: Vec<u64>,
    /// Groups of training points with identical inputs (only groups of ≥ 2).
    pub duplicate_groups: Vec<Vec<usize>>,
    /// Tolerance, iteration caps, preconditioner rank, seed.
    pub settings: SolveSettings,
    /// Bytes a store on disk may take to be read into memory for the solves (each of which
    /// reads it a few hundred times).
    pub resident_budget_bytes: u64,
}

/// What the iterative predictor reports about its solves.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct IterativeReport {
    /// The time-`t` predictions (worst column).
    pub lanczos: SolveReport,
    /// The `t = ∞` solution (worst column).
    pub cg: SolveReport,
    /// Rank of the Nyström preconditioner actually built.
    pub preconditioner_rank: usize,
    /// Seconds spent in the time-`t` solve, the preconditioner and the `t = ∞` solve.
    pub seconds: [f64; 3],
}

/// The time-`t` functions of the planned steps.
struct Steps {
    time: TimeMode,
    a: f64,
    momentum: f64,
    steps: Vec<u64>,
}

impl ModeFunctions for Steps {
    fn len(&self) -> usize {
        self.steps.len()
    }
    fn factors(&self, e: f64, i: usize) -> (f64, f64) {
        mode_factors(self.time, self.a, self.momentum, e, self.steps[i])
    }
}

/// Kernel regression predictions from a stored kernel (see the module doc).
pub struct IterativePredictor {
    columns: Vec<KrylovColumn>,
    funcs: Steps,
    y: Mat<f64>,
    g0: Option<Mat<f64>>,
    heldout: Option<Arc<KernelStore>>,
    /// Held-out predictions of the planned steps.
    planned: BTreeMap<u64, Mat<f64>>,
    infinite_test: Option<Mat<f64>>,
    scale: f64,
    /// The regulariser λ actually added.
    pub lambda: f64,
    /// Largest Ritz value of `Θ_r` (converges to λ_max from below).
    pub lambda_max: f64,
    /// What the solves report.
    pub report: IterativeReport,
}

/// Worst of several columns' reports.
fn worst(reports: impl Iterator<Item = SolveReport>) -> SolveReport {
    reports.fold(
        SolveReport {
            converged: true,
            ..SolveReport::default()
        },
        |a, b| SolveReport {
            iterations: a.iterations.max(b.iterations),
            error_estimate: a.error_estimate.max(b.error_estimate),
            converged: a.converged && b.converged,
        },
    )
}

impl IterativePredictor {
    /// Runs the solves (see the module doc).
    pub fn new(p: IterativeInputs<'_>) -> Result<Self> {
        let n = p.train.nrows();
        // The solves read the kernel a few hundred times: from memory when it fits.
        let train = if p.train.is_on_disk()
            && p.train.manifest().total_bytes() <= p.resident_budget_bytes
        {
            Arc::new(p.train.load_into_memory()?)
        } else {
            p.train.clone()
        };
        let trace: f64 = train.diagonal()?.iter().sum();
        let lambda = if p.diag_reg.absolute {
            p.diag_reg.value
        } else {
            p.diag_reg.value * trace / n.max(1) as f64
        };
        let scale = p.heldout_diag_max.max(0.0).sqrt();
        let r0 = p.f0_train - p.y_train;
        let funcs = Steps {
            time: p.time,
            a: p.learning_rate / p.n_targets as f64,
            momentum: p.momentum,
            steps: p.planned_steps.clone(),
        };
        let clock = std::time::Instant::now();
        let columns = lanczos::lanczos(
            train.as_ref(),
            lambda,
            r0.as_ref(),
            &funcs,
            scale,
            &p.settings,
        )?;
        let t_lanczos = clock.elapsed().as_secs_f64();
        let lambda_max = columns
            .iter()
            .flat_map(|c| c.tri.ritz.theta.iter().copied())
            .fold(0.0, f64::max);
        let clock = std::time::Instant::now();
        let factor = if p.settings.preconditioner_rank > 0 {
            rp_cholesky(
                train.as_ref(),
                p.settings.preconditioner_rank,
                p.settings.seed,
            )?
        } else {
            Mat::zeros(n, 0)
        };
        let precond = NystromPreconditioner::new(&factor, lambda)?;
        drop(factor);
        let t_precond = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let mut rhs = p.y_train - p.f0_train;
        if lambda == 0.0 {
            average_duplicates(&mut rhs, &p.duplicate_groups);
        }
        let sol = cg::solve(
            train.as_ref(),
            lambda,
            rhs.as_ref(),
            precond.as_ref(),
            scale,
            &p.settings,
        )?;
        let t_cg = clock.elapsed().as_secs_f64();
        drop(train);
        let report = IterativeReport {
            lanczos: worst(columns.iter().map(|c| c.report)),
            cg: worst(sol.reports.iter().copied()),
            preconditioner_rank: precond.as_ref().map_or(0, |p| p.rank()),
            seconds: [t_lanczos, t_precond, t_cg],
        };
        let mut me = IterativePredictor {
            columns,
            funcs,
            y: p.y_train.clone(),
            g0: p.f0_test.cloned(),
            heldout: p.heldout.clone(),
            planned: BTreeMap::new(),
            infinite_test: None,
            scale,
            lambda,
            lambda_max,
            report,
        };
        me.prepare_heldout(&sol.x)?;
        Ok(me)
    }

    /// The coefficient vectors `φ_s(Θ_r)·r0` (`n × c`) of step index `i` of the planned steps,
    /// or of `steps` when given.
    fn test_coefficients(&self, step: u64) -> Mat<f64> {
        let (a, mu, time) = (self.funcs.a, self.funcs.momentum, self.funcs.time);
        let cols: Vec<Vec<f64>> = self
            .columns
            .iter()
            .map(|col| {
                let c = col
                    .tri
                    .ritz
                    .coefficients(|e| mode_factors(time, a, mu, e, step).1);
                if c.is_empty() {
                    vec![0.0; self.y.nrows()]
                } else {
                    col.expand(&c)
                }
            })
            .collect();
        Mat::from_fn(self.y.nrows(), cols.len(), |i, j| cols[j][i])
    }

    /// Held-out predictions of every planned step and of `t = ∞` in passes over the held-out
    /// kernel (a few steps' coefficients at a time).
    fn prepare_heldout(&mut self, alpha_inf: &Mat<f64>) -> Result<()> {
        let Some(store) = self.heldout.clone() else {
            return Ok(());
        };
        let c = self.y.ncols();
        let n = self.y.nrows();
        let mut coeffs: Vec<(Option<u64>, Mat<f64>)> = vec![(None, alpha_inf.clone())];
        coeffs.extend(
            self.funcs
                .steps
                .clone()
                .into_iter()
                .map(|s| (Some(s), self.test_coefficients(s))),
        );
        const CHUNK: usize = 32;
        for chunk in coeffs.chunks(CHUNK) {
            let stacked = Mat::from_fn(n, c * chunk.len(), |i, j| chunk[j / c].1[(i, j % c)]);
            let out = store.apply(stacked.as_ref())?;
            for (k, (step, _)) in chunk.iter().enumerate() {
                let mut pred = out.as_ref().submatrix(0, k * c, out.nrows(), c).to_owned();
                if let Some(g0) = &self.g0 {
                    pred += g0;
                }
                match step {
                    None => self.infinite_test = Some(pred),
                    Some(s) => {
                        self.planned.insert(*s, pred);
                    }
                }
            }
        }
        Ok(())
    }

    /// Train and held-out predictions after `steps` steps.
    pub fn predict(&self, steps: u64) -> Result<(Mat<f64>, Option<Mat<f64>>)> {
        let (a, mu, time) = (self.funcs.a, self.funcs.momentum, self.funcs.time);
        let mut train = self.y.clone();
        for (j, col) in self.columns.iter().enumerate() {
            let c = col
                .tri
                .ritz
                .coefficients(|e| mode_factors(time, a, mu, e, steps).0);
            if c.is_empty() {
                // b = 0: the residual stays 0.
                continue;
            }
            for (i, v) in col.expand(&c).into_iter().enumerate() {
                train[(i, j)] += v;
            }
        }
        let test = match (&self.heldout, self.planned.get(&steps)) {
            (None, _) => None,
            (Some(_), Some(p)) => Some(p.clone()),
            (Some(store), None) => {
                let mut pred = store.apply(self.test_coefficients(steps).as_ref())?;
                if let Some(g0) = &self.g0 {
                    pred += g0;
                }
                Some(pred)
            }
        };
        Ok((train, test))
    }

    /// The `t = ∞` solution: `y` on the training points and the held-out predictions.
    pub fn predict_infinite(&self) -> (Mat<f64>, Option<Mat<f64>>) {
        (self.y.clone(), self.infinite_test.clone())
    }

    /// Estimated largest error `(train, held-out)` of the predictions after `steps` steps.
    pub fn error_estimate(&self, steps: u64) -> (f64, f64) {
        let one = Steps {
            time: self.funcs.time,
            a: self.funcs.a,
            momentum: self.funcs.momentum,
            steps: vec![steps],
        };
        self.columns
            .iter()
            .map(|c| c.tri.estimate(&one, 0, self.scale))
            .fold((0.0, 0.0), |(a, b), (c, d)| (a.max(c), b.max(d)))
    }

    /// The largest Ritz values of the train kernel found by the Lanczos processes (descending,
    /// at most `k`): its top eigenvalues as far as they have converged.
    pub fn top_ritz_values(&self, k: usize) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .columns
            .iter()
            .max_by_key(|c| c.tri.dim())
            .map(|c| c.tri.ritz.theta.clone())
            .unwrap_or_default();
        v.sort_by(|a, b| b.total_cmp(a));
        v.truncate(k);
        v
    }
}

/// Replaces each group's rows of `m` by their mean.
pub fn average_duplicates(m: &mut Mat<f64>, groups: &[Vec<usize>]) {
    for g in groups {
        for j in 0..m.ncols() {
            let mean = g.iter().map(|&i| m[(i, j)]).sum::<f64>() / g.len() as f64;
            for &i in g {
                m[(i, j)] = mean;
            }
        }
    }
}

/// Groups (of ≥ 2) of rows of `x` (`n × d`, row-major) that are bitwise identical.
pub fn duplicate_groups(x: &[f64], n: usize) -> Vec<Vec<usize>> {
    let first = linalg::identical_rows(x, n);
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, f) in first.into_iter().enumerate() {
        groups.entry(f).or_default().push(i);
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

/// `‖·‖_max` of a matrix (for tests and reports).
pub fn max_abs(m: &Mat<f64>) -> f64 {
    linalg::mat_to_rows(m.as_ref())
        .iter()
        .fold(0.0, |a, v| a.max(v.abs()))
}
