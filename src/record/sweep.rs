//! The record of one sweep point: its swept values, status, regime and final figures (a row of
//! `sweep.csv`).

use serde::Serialize;

use super::columns::{run_figures, Column, Split};
use super::{RunRecord, RunStatus, Track};
use crate::metrics::{self, Phase};

/// Figures of one finished (or failed) sweep point.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    /// Swept values as text.
    pub values: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
    /// `completed`, `interrupted` or `failed: …`.
    pub status: String,
    /// Run directory (relative to the sweep directory).
    pub run_dir: String,
    /// Wall time of the point in seconds.
    pub wall_s: f64,
    /// Training regime.
    pub phase: Option<Phase>,
    /// Named final figures (NaN where not available).
    pub figures: Vec<(String, f64)>,
    /// Network train loss at every checkpoint (for phase plots).
    #[serde(skip)]
    pub loss_curve: Vec<(f64, f64)>,
    /// λ_max(Θ_t)·η/(2·N·K) at every kernel checkpoint.
    #[serde(skip)]
    pub sharpness_curve: Vec<(f64, f64)>,
}

impl SweepRow {
    /// The row of a finished run.
    pub fn completed(
        values: Vec<(String, String)>,
        seed: u64,
        r: &RunRecord,
        run_dir: String,
        wall_s: f64,
    ) -> Self {
        let loss_curve = Column::Loss(Track::Network, Split::Train).series(r);
        let losses: Vec<f64> = loss_curve.iter().map(|p| p.1).collect();
        let diverged = r
            .outputs_of(Track::Network)
            .and_then(|o| o.diverged_at_step)
            .is_some();
        let n_targets = r.y_train.len() as f64;
        SweepRow {
            values,
            seed,
            status: match r.status {
                RunStatus::Completed => "completed".into(),
                RunStatus::Interrupted => "interrupted".into(),
            },
            run_dir,
            wall_s,
            phase: Some(metrics::classify_phase(&losses, r.lambda_ratio(), diverged)),
            figures: run_figures(r)
                .into_iter()
                .map(|f| (f.name(), f.read(r)))
                .collect(),
            loss_curve,
            sharpness_curve: Column::NtkLambdaMax
                .series(r)
                .into_iter()
                .map(|(s, l)| (s, l * r.learning_rate / (2.0 * n_targets)))
                .collect(),
        }
    }

    /// The row of a point that failed with `error`.
    pub fn failed(
        values: Vec<(String, String)>,
        seed: u64,
        error: &str,
        run_dir: String,
        wall_s: f64,
    ) -> Self {
        SweepRow {
            values,
            seed,
            status: format!("failed: {error}"),
            run_dir,
            wall_s,
            phase: None,
            figures: Vec::new(),
            loss_curve: Vec::new(),
            sharpness_curve: Vec::new(),
        }
    }

    /// A figure by name.
    pub fn figure(&self, name: &str) -> f64 {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|f| f.1)
            .unwrap_or(f64::NAN)
    }

    /// A swept value as a number, if it is one.
    pub fn value_f64(&self, key: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// A fitted power law `y ∝ x^slope` with a 95 % confidence interval over all runs (seeds).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PowerLawFit {
    /// Figure name.
    pub figure: String,
    /// Group (value of the second swept key), if any.
    pub group: Option<String>,
    /// Slope.
    pub slope: f64,
    /// Half-width of the 95 % interval (1.96 standard errors of the regression slope).
    pub ci95: f64,
    /// Intercept of log y on log x.
    pub intercept: f64,
    /// Runs used.
    pub n: usize,
}

/// Log-log fits of the named figures against the numeric key `x_key`, per value of the other key.
pub fn fit_power_laws(rows: &[SweepRow], x_key: &str, figures: &[String]) -> Vec<PowerLawFit> {
    let group_key = rows
        .first()
        .and_then(|r| r.values.iter().map(|(k, _)| k.clone()).find(|k| k != x_key));
    let mut groups: Vec<Option<String>> = Vec::new();
    for r in rows {
        let g = group_key.as_ref().and_then(|gk| {
            r.values
                .iter()
                .find(|(k, _)| k == gk)
                .map(|(_, v)| v.clone())
        });
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut fits = Vec::new();
    for g in &groups {
        for f in figures {
            let (xs, ys): (Vec<f64>, Vec<f64>) = rows
                .iter()
                .filter(|r| {
                    group_key.as_ref().and_then(|gk| {
                        r.values
                            .iter()
                            .find(|(k, _)| k == gk)
                            .map(|(_, v)| v.clone())
                    }) == *g
                })
                .filter_map(|r| Some((r.value_f64(x_key)?, r.figure(f))))
                .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
                .unzip();
            if let Some((slope, intercept, se)) = metrics::loglog_fit(&xs, &ys) {
                fits.push(PowerLawFit {
                    figure: f.clone(),
                    group: g.clone(),
                    slope,
                    ci95: 1.96 * se,
                    intercept,
                    n: xs.len(),
                });
            }
        }
    }
    fits
}
