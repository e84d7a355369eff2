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
        .map(|j| {
            let r = col(&r0, j);
            let z = col(&z0, j);
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
        })
        .collect();
    let d = s.delay.max(1);
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
            let apj = ap.col_as_slice(a);
            let pap = dot(&cj.p, apj);
            if pap.is_nan() || pap <= 0.0 {
                // The direction has no energy: the residual lies in the null space.
                cj.done = true;
                cj.report.converged = true;
                continue;
            }
            let alpha = cj.rz / pap;
            for ((x, r), (p, a)) in
                cj.x.iter_mut()
                    .zip(cj.r.iter_mut())
                    .zip(cj.p.iter().zip(apj))
            {
                *x += alpha * p;
                *r -= alpha * a;
            }
            cj.terms.push(alpha * cj.rz);
            cj.report.iterations = it + 1;
            r_new.col_as_slice_mut(a).copy_from_slice(&cj.r);
        }
        let z = apply_p(&r_new);
        for (a, &j) in active.iter().enumerate() {
            let cj = &mut cols[j];
            if cj.done {
                continue;
            }
            let k = cj.terms.len();
            if k >= d {
                let est: f64 = cj.terms[k - d..].iter().sum();
                cj.report.error_estimate = scale * est.max(0.0).sqrt();
                if cj.report.error_estimate <= s.tolerance {
                    cj.report.converged = true;
                    cj.done = true;
                    continue;
                }
            }
            let zj = z.col_as_slice(a);
            let rz_new = dot(&cj.r, zj);
            if rz_new.is_nan() || rz_new <= 0.0 {
                cj.report.converged = true;
                cj.report.error_estimate = 0.0;
                cj.done = true;
                continue;
            }
            let beta = rz_new / cj.rz;
            for (p, z) in cj.p.iter_mut().zip(zj) {
                *p = z + beta * *p;
            }
            cj.rz = rz_new;
        }
    }
    let x = Mat::from_fn(n, c, |i, j| cols[j].x[i]);
    Ok(CgSolution {
        x,
        reports: cols.iter().map(|c| c.report).collect(),
    })
}
