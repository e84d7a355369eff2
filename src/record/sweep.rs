//! The record of one sweep point: its swept values, status, regime and final figures (a row of
//! `sweep.csv`).

use serde::Serialize;

use super::columns::{run_figures, Column, Figure, Split};
use super::{RunRecord, RunStatus, Track};
use crate::metrics::{self, Phase};

/// Figures of one finished (or failed) sweep point.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    /// Swept values as text.
    pub values: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
    /// Whether the point completed, and why not.
    pub status: PointStatus,
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
    /// `η·λ_max(Θ_t)/(2(1+μ)·N·K)` (full training kernel) at every kernel checkpoint.
    #[serde(skip)]
    pub sharpness_curve: Vec<(f64, f64)>,
}

/// Where a sweep point stands. Written as `completed`, `interrupted`, `failed: <error>` and
/// `missing: <why>` (in `sweep.csv`, `sweep.md` and the stored rows).
#[derive(Debug, Clone, PartialEq)]
pub enum PointStatus {
    /// The run finished.
    Completed,
    /// The run was stopped by a signal.
    Interrupted,
    /// The run failed with this error.
    Failed(String),
    /// No usable row: not run yet, its task's state, or why its row does not count.
    Missing(String),
}

impl PointStatus {
    /// Whether the point's run finished (and counts in fits and figures).
    pub fn is_completed(&self) -> bool {
        *self == PointStatus::Completed
    }

    /// The status written as text (the inverse of [`std::fmt::Display`]), if it is one of the
    /// four forms.
    pub fn parse_exact(text: &str) -> Option<PointStatus> {
        match text {
            "completed" => Some(PointStatus::Completed),
            "interrupted" => Some(PointStatus::Interrupted),
            _ => match (
                text.strip_prefix("failed: "),
                text.strip_prefix("missing: "),
            ) {
                (Some(e), _) => Some(PointStatus::Failed(e.to_string())),
                (_, Some(why)) => Some(PointStatus::Missing(why.to_string())),
                _ => None,
            },
        }
    }

    /// [`PointStatus::parse_exact`], with text that is none of the four forms read as a
    /// failure with that text.
    pub fn parse(text: &str) -> PointStatus {
        Self::parse_exact(text).unwrap_or_else(|| PointStatus::Failed(text.to_string()))
    }

    /// The one-word kind (`completed`, `interrupted`, `failed`, `missing`).
    pub fn kind(&self) -> &'static str {
        match self {
            PointStatus::Completed => "completed",
            PointStatus::Interrupted => "interrupted",
            PointStatus::Failed(_) => "failed",
            PointStatus::Missing(_) => "missing",
        }
    }
}

/// Serialised as its text, so `sweep.json` holds the same strings as `sweep.csv`.
impl Serialize for PointStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for PointStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PointStatus::Completed | PointStatus::Interrupted => f.write_str(self.kind()),
            PointStatus::Failed(why) | PointStatus::Missing(why) => {
                write!(f, "{}: {why}", self.kind())
            }
        }
    }
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
        SweepRow {
            values,
            seed,
            status: match r.status {
                RunStatus::Completed => PointStatus::Completed,
                RunStatus::Interrupted => PointStatus::Interrupted,
            },
            run_dir,
            wall_s,
            phase: Some(r.phase_evidence().classify()),
            figures: run_figures(r)
                .into_iter()
                .map(|f| (f.name(), f.read(r)))
                .collect(),
            loss_curve,
            sharpness_curve: Column::SharpnessRatio.series(r),
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
        Self::unfinished(
            values,
            seed,
            PointStatus::Failed(error.to_string()),
            run_dir,
            wall_s,
        )
    }

    /// The row of a point without a record, with its `status` (interrupted, missing, failed).
    pub fn unfinished(
        values: Vec<(String, String)>,
        seed: u64,
        status: PointStatus,
        run_dir: String,
        wall_s: f64,
    ) -> Self {
        SweepRow {
            values,
            seed,
            status,
            run_dir,
            wall_s,
            phase: None,
            figures: Vec::new(),
            loss_curve: Vec::new(),
            sharpness_curve: Vec::new(),
        }
    }

    /// A figure (NaN where the row does not have it).
    pub fn figure(&self, f: Figure) -> f64 {
        self.figure_named(&f.name())
    }

    /// Whether the row has a figure (finite or not).
    pub fn has_figure(&self, f: Figure) -> bool {
        self.stored(&f.name()).is_some()
    }

    /// A figure by its column name in `sweep.csv` (NaN where the row does not have it).
    pub fn figure_named(&self, name: &str) -> f64 {
        self.stored(name).unwrap_or(f64::NAN)
    }

    /// The row's value of the figure named `name`, if it has one.
    fn stored(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|(n, _)| n == name).map(|f| f.1)
    }

    /// A swept value as a number, if it is one.
    pub fn value_f64(&self, key: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// A sweep row as stored in the sweep directory (`rows/<point>.json`) by whichever process ran
/// the point: numbers as their shortest round-trip text, so a row read back is bit for bit the
/// row written (NaN and ∞ included) and a sweep collected from rows written by Slurm tasks equals
/// one run locally.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct StoredRow {
    /// Point index in the sweep.
    pub index: usize,
    /// Swept values as text.
    pub values: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
    /// Status.
    pub status: String,
    /// Run directory.
    pub run_dir: String,
    /// Wall time (s).
    pub wall_s: String,
    /// Phase name.
    pub phase: Option<String>,
    /// Figures.
    pub figures: Vec<(String, String)>,
    /// Network train loss per checkpoint.
    pub loss_curve: Vec<(String, String)>,
    /// Sharpness ratio per kernel checkpoint.
    pub sharpness_curve: Vec<(String, String)>,
    /// SHA-256 of the sweep plan (`sweep.toml`) the point was run from (absent in rows written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
}

fn text(v: f64) -> String {
    format!("{v:?}")
}

fn number(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

fn pairs(v: &[(f64, f64)]) -> Vec<(String, String)> {
    v.iter().map(|&(a, b)| (text(a), text(b))).collect()
}

fn unpairs(v: &[(String, String)]) -> Vec<(f64, f64)> {
    v.iter().map(|(a, b)| (number(a), number(b))).collect()
}

impl StoredRow {
    /// The stored form of point `index`'s row.
    pub fn of(index: usize, r: &SweepRow) -> Self {
        StoredRow {
            plan_sha256: None,
            index,
            values: r.values.clone(),
            seed: r.seed,
            status: r.status.to_string(),
            run_dir: r.run_dir.clone(),
            wall_s: text(r.wall_s),
            phase: r.phase.map(|p| p.name().to_string()),
            figures: r
                .figures
                .iter()
                .map(|(n, v)| (n.clone(), text(*v)))
                .collect(),
            loss_curve: pairs(&r.loss_curve),
            sharpness_curve: pairs(&r.sharpness_curve),
        }
    }

    /// Whether the stored row says its point completed.
    pub fn is_completed(&self) -> bool {
        PointStatus::parse(&self.status).is_completed()
    }

    /// The row.
    pub fn row(&self) -> SweepRow {
        SweepRow {
            values: self.values.clone(),
            seed: self.seed,
            status: PointStatus::parse(&self.status),
            run_dir: self.run_dir.clone(),
            wall_s: number(&self.wall_s),
            phase: self.phase.as_deref().and_then(Phase::from_name),
            figures: self
                .figures
                .iter()
                .map(|(n, v)| (n.clone(), number(v)))
                .collect(),
            loss_curve: unpairs(&self.loss_curve),
            sharpness_curve: unpairs(&self.sharpness_curve),
        }
    }
}

/// A power law `y ∝ x^slope` fitted to a sweep: one least-squares fit of log y on log x per
/// seed, summarised over seeds (the seeds are the independent replicates; pooling all runs as
/// independent points would understate the interval).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PowerLawFit {
    /// The fitted figure (written as its name).
    #[serde(serialize_with = "figure_name")]
    pub figure: Figure,
    /// Group (value of the second swept key), if any.
    pub group: Option<String>,
    /// Mean over seeds of the per-seed slopes.
    pub slope: f64,
    /// Half-width of the two-sided 95 % interval of that mean: Student's t with (seeds − 1)
    /// degrees of freedom times the standard error (NaN with one seed).
    pub ci95: f64,
    /// Mean over seeds of the per-seed intercepts of log y on log x.
    pub intercept: f64,
    /// The per-seed slopes.
    pub seed_slopes: Vec<f64>,
    /// The per-seed intercepts of log y on log x, in the order of `seed_slopes` (not written:
    /// the figures' confidence band of the fitted line is drawn from them).
    #[serde(skip)]
    pub seed_intercepts: Vec<f64>,
    /// The fitted `(seed, x, y)` points (not written: the figures draw them).
    #[serde(skip)]
    pub points: Vec<(u64, f64, f64)>,
    /// Slopes between neighbouring x values of the mean over seeds of log y:
    /// `(x_lo, x_hi, slope)` (a bending curve shows here, not in one exponent).
    pub local_slopes: Vec<(f64, f64, f64)>,
    /// Per x value: `(x, geometric mean over seeds, lower, upper)` with the 95 % t-interval of the
    /// mean of log y.
    pub per_x: Vec<(f64, f64, f64, f64)>,
    /// Runs used.
    pub n: usize,
}

impl PowerLawFit {
    /// The 95 % t-interval, over seeds, of the fitted power law at `x`: each seed's fitted line
    /// `a_s + b_s·log x` evaluated at `x`, Student's t (seeds − 1 degrees of freedom) on their
    /// mean, mapped back by `exp`. A pointwise confidence band of the mean fit (narrowest near
    /// the seeds' common pivot, wider where their slopes disagree); None with fewer than two
    /// seeds.
    pub fn band_at(&self, x: f64) -> Option<(f64, f64)> {
        if self.seed_slopes.len() < 2 || self.seed_intercepts.len() != self.seed_slopes.len() {
            return None;
        }
        let at: Vec<f64> = self
            .seed_slopes
            .iter()
            .zip(&self.seed_intercepts)
            .map(|(b, a)| a + b * x.ln())
            .collect();
        let (m, h) = metrics::stats::mean_ci95(&at);
        h.is_finite().then(|| ((m - h).exp(), (m + h).exp()))
    }
}

/// Value of `key` in a row, if swept.
fn value_of(r: &SweepRow, key: &str) -> Option<String> {
    r.values
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Log-log fits of the figures against the numeric key `x_key`, per value of the other
/// key (see [`PowerLawFit`]).
pub fn fit_power_laws(rows: &[SweepRow], x_key: &str, figures: &[Figure]) -> Vec<PowerLawFit> {
    let group_key = rows
        .first()
        .and_then(|r| r.values.iter().map(|(k, _)| k.clone()).find(|k| k != x_key));
    let group_of = |r: &SweepRow| group_key.as_ref().and_then(|gk| value_of(r, gk));
    let mut groups: Vec<Option<String>> = Vec::new();
    for r in rows {
        let g = group_of(r);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut fits = Vec::new();
    for g in &groups {
        let in_group: Vec<&SweepRow> = rows.iter().filter(|r| group_of(r) == *g).collect();
        for f in figures {
            let points: Vec<(u64, f64, f64)> = in_group
                .iter()
                .filter_map(|r| Some((r.seed, r.value_f64(x_key)?, r.figure(*f))))
                .filter(|(_, x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
                .collect();
            if let Some(fit) = fit_one(*f, g.clone(), &points) {
                fits.push(fit);
            }
        }
    }
    fits
}

/// Serialises a figure as its name (its column in `sweep.csv`).
fn figure_name<S: serde::Serializer>(f: &Figure, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.name())
}

/// The fit of one figure from `(seed, x, y)` points.
fn fit_one(
    figure: Figure,
    group: Option<String>,
    points: &[(u64, f64, f64)],
) -> Option<PowerLawFit> {
    let mut seeds: Vec<u64> = points.iter().map(|p| p.0).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let (mut slopes, mut intercepts) = (Vec::new(), Vec::new());
    for s in &seeds {
        let (xs, ys): (Vec<f64>, Vec<f64>) = points
            .iter()
            .filter(|p| p.0 == *s)
            .map(|p| (p.1, p.2))
            .unzip();
        if let Some((slope, intercept, _)) = metrics::loglog_fit(&xs, &ys) {
            slopes.push(slope);
            intercepts.push(intercept);
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let (slope, ci95) = metrics::stats::mean_ci95(&slopes);
    let mut xs: Vec<f64> = points.iter().map(|p| p.1).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let per_x: Vec<(f64, f64, f64, f64)> = xs
        .iter()
        .map(|&x| {
            let logs: Vec<f64> = points
                .iter()
                .filter(|p| p.1 == x)
                .map(|p| p.2.ln())
                .collect();
            let (m, h) = metrics::stats::mean_ci95(&logs);
            let h = if h.is_finite() { h } else { 0.0 };
            (x, m.exp(), (m - h).exp(), (m + h).exp())
        })
        .collect();
    let local_slopes = per_x
        .windows(2)
        .map(|w| {
            (
                w[0].0,
                w[1].0,
                (w[1].1 / w[0].1).ln() / (w[1].0 / w[0].0).ln(),
            )
        })
        .collect();
    Some(PowerLawFit {
        figure,
        group,
        slope,
        ci95,
        intercept: intercepts.iter().sum::<f64>() / intercepts.len() as f64,
        seed_slopes: slopes,
        seed_intercepts: intercepts,
        local_slopes,
        per_x,
        n: points.len(),
        points: points.to_vec(),
    })
}

#[cfg(test)]
mod status_tests {
    use super::PointStatus;

    #[test]
    fn a_status_read_back_from_its_text_is_the_status_written() {
        for s in [
            PointStatus::Completed,
            PointStatus::Interrupted,
            PointStatus::Failed("data.n_train: too large".into()),
            PointStatus::Missing("not run".into()),
            PointStatus::Missing("task state FAILED: missing: nested".into()),
        ] {
            assert_eq!(PointStatus::parse_exact(&s.to_string()), Some(s.clone()));
            assert_eq!(PointStatus::parse(&s.to_string()), s);
        }
        assert_eq!(PointStatus::parse_exact("xyz"), None);
    }
}
