//! Preconditioned conjugate gradients for `(A + μI)·X = B`, one independent iteration per
//! column of `B` sharing each operator product.
//!
//! Error estimate (Hestenes & Stiefel 1952; Strakoš & Tichý, ETNA 2002): in exact arithmetic
//! `‖x − x_j‖²_A − ‖x − x_{j+d}‖²_A = Σ_{i=j}^{j+d−1} α_i·(r_iᵀz_i)`, so after `d` more iterations
//! the sum estimates `‖x − x_j‖²_A` from below, tightly once the error falls by a steady factor.
//! A column stops when `scale·√(that sum) ≤ tolerance`, where `scale = max_x √Θ(x, x)` over the
//! points whose predictions `Θ(x, X)·α` are wanted, and returns the later iterate `x_{j+d}`
//! (whose energy-norm error is smaller still): by Cauchy–Schwarz in the kernel's feature space the
//! reported number then bounds every such prediction's error as far as the estimate is right.

use faer::{Mat, MatRef};

use super::nystrom::NystromPreconditioner;
use super::{SolveReport, SolveSettings, SymOperator};
use crate::Result;

/// The solution and, per column, what the iteration reports.
#[derive(Debug, Clone)]
pub struct CgSolution {
    /// `X`, `n × c`.
    pub x: Mat<f64>,
    /// Per column.
    pub reports: Vec<SolveReport>,
}

/// One column's iteration state.
struct Column {
    x: Vec<f64>,
    r: Vec<f64>,
    p: Vec<f64>,
    rz: f64,
    /// `α_i·r_iᵀz_i` of every step so far.
    terms: Vec<f64>,
    report: SolveReport,
    done: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Column `j` of `m`.
fn col(m: &Mat<f64>, j: usize) -> Vec<f64> {
    m.col_as_slice(j).to_vec()
}

/// Solves `(A + shift·I)·X = B` by PCG (see the module doc); `scale` converts the energy-norm
/// estimate into prediction units.
pub fn solve(
    op: &dyn SymOperator,
    shift: f64,
    b: MatRef<'_, f64>,
    precond: Option<&NystromPreconditioner>,
    scale: f64,
    s: &SolveSettings,
) -> Result<CgSolution> {
    let n = op.dim();
    let c = b.ncols();
    let apply_p = |r: &Mat<f64>| -> Mat<f64> {
        match precond {
            Some(p) => p.apply(r.as_ref()),
            None => r.clone(),
        }
    };
    let r0 = b.to_owned();
    let z0 = apply_p(&r0);
    let mut cols: Vec<Column> = (0..c)
        .map(|j| Column::start(col(&r0, j), col(&z0, j)))
        .collect();
    let stop = Stop {
        delay: s.delay.max(1),
        scale,
        tolerance: s.tolerance,
    };
    for it in 0..s.max_iterations {
        let active: Vec<usize> = (0..c).filter(|&j| !cols[j].done).collect();
        if active.is_empty() {
            break;
        }
        let p = Mat::from_fn(n, active.len(), |i, a| cols[active[a]].p[i]);
        let mut ap = op.apply(p.as_ref())?;
        ap += faer::Scale(shift) * &p;
        let mut r_new = Mat::<f64>::zeros(n, active.len());
        for (a, &j) in active.iter().enumerate() {
            let cj = &mut cols[j];
            if cj.step(ap.col_as_slice(a), it) {
                r_new.col_as_slice_mut(a).copy_from_slice(&cj.r);
            }
        }
        let z = apply_p(&r_new);
        for (a, &j) in active.iter().enumerate() {
            cols[j].next_direction(z.col_as_slice(a), &stop);
        }
    }
    let x = Mat::from_fn(n, c, |i, j| cols[j].x[i]);
    Ok(CgSolution {
        x,
        reports: cols.iter().map(|c| c.report).collect(),
    })
}

/// When a column's solve stops: its error estimate (the last `delay` terms, times `scale`)
/// at most `tolerance`.
struct Stop {
    delay: usize,
    scale: f64,
    tolerance: f64,
}

impl Column {
    /// A column at x = 0 with residual `r` and preconditioned residual `z`.
    fn start(r: Vec<f64>, z: Vec<f64>) -> Self {
        let n = r.len();
        let rz = dot(&r, &z);
        Column {
            x: vec![0.0; n],
            done: rz.is_nan() || rz <= 0.0,
            p: z,
            r,
            rz,
            terms: Vec::new(),
            report: SolveReport {
                iterations: 0,
                error_estimate: 0.0,
                converged: rz.is_nan() || rz <= 0.0,
            },
        }
    }

    /// The step along `p` given `A·p` (iteration `it`): false when the direction has no energy
    /// (the residual lies in the null space, and the column is done).
    fn step(&mut self, ap: &[f64], it: usize) -> bool {
        let pap = dot(&self.p, ap);
        if pap.is_nan() || pap <= 0.0 {
            self.done = true;
            self.report.converged = true;
            return false;
        }
        let alpha = self.rz / pap;
        for ((x, r), (p, a)) in self
            .x
            .iter_mut()
            .zip(self.r.iter_mut())
            .zip(self.p.iter().zip(ap))
        {
            *x += alpha * p;
            *r -= alpha * a;
        }
        self.terms.push(alpha * self.rz);
        self.report.iterations = it + 1;
        true
    }

    /// Stops when the error estimate is within tolerance (or the residual vanished); else the
    /// next search direction from the preconditioned residual `z`.
    fn next_direction(&mut self, z: &[f64], stop: &Stop) {
        if self.done {
            return;
        }
        let k = self.terms.len();
        if k >= stop.delay {
            let est: f64 = self.terms[k - stop.delay..].iter().sum();
            self.report.error_estimate = stop.scale * est.max(0.0).sqrt();
            if self.report.error_estimate <= stop.tolerance {
                self.report.converged = true;
                self.done = true;
                return;
            }
        }
        let rz_new = dot(&self.r, z);
        if rz_new.is_nan() || rz_new <= 0.0 {
            self.report.converged = true;
            self.report.error_estimate = 0.0;
            self.done = true;
            return;
        }
        let beta = rz_new / self.rz;
        for (p, z) in self.p.iter_mut().zip(z) {
            *p = z + beta * *p;
        }
        self.rz = rz_new;
    }
}
