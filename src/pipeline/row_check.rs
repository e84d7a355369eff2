//! Whether a completed sweep point's stored row (`rows/<point>.json`) says what its run
//! directory says: the row is what `sweep.csv` is collected from, so a row edited by hand (or
//! written by another run) must not reach it. The row is re-derived from the files of the run
//! directory wherever they hold its source:
//! - the swept values, seed and directory name from the plan;
//! - the loss and sharpness curves, every figure that is a `metrics.csv` column (its final
//!   value), and `lambda_ratio` from `metrics.csv`;
//! - `ntk_cka_distance` and `ntk_target_alignment_gain` from `kernel_alignment.csv`;
//! - the phase, the learning rates, `init_ntk_vs_analytic`, the t = ∞ test losses and the
//!   relative RMSEs the report lists from `summary.json`.
//!
//! The row must carry every figure those files say a run of its kind has, and no figure no run
//! writes. Figures whose source no file holds (accuracy at the early stop, ensemble gaps and
//! calibration, bits per character, n-gram baselines) are checked by name only.

use std::collections::BTreeSet;
use std::path::Path;

use crate::record::columns::non_final_figure_names;
use crate::record::sweep::StoredRow;
use crate::record::Track;

/// A CSV of numbers read back: its header and the cells of every row (`None` where empty: the
/// column was not measured at that checkpoint).
pub(crate) struct NumberTable {
    header: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

impl NumberTable {
    pub(crate) fn read(path: &Path) -> Option<NumberTable> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let header: Vec<String> = lines.next()?.split(',').map(str::to_string).collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split(',')
                    .map(|cell| (!cell.is_empty()).then(|| cell.parse().unwrap_or(f64::NAN)))
                    .collect()
            })
            .collect();
        Some(NumberTable { header, rows })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The values column `name` has, in row order (rows where it is empty skipped).
    fn values(&self, name: &str) -> Vec<f64> {
        self.column(name).map_or_else(Vec::new, |c| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c).copied().flatten())
                .collect()
        })
    }

    /// `(step, value)` of every row where column `name` has a value.
    pub(crate) fn series(&self, name: &str) -> Vec<(f64, f64)> {
        let (Some(step), Some(col)) = (self.column("step"), self.column(name)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| Some((r.get(step).copied()??, r.get(col).copied()??)))
            .collect()
    }

    /// The values a final figure of column `col` may have: the last row's value, or, where
    /// the last row has none (a kernel column measured less often), the last value the column
    /// has, or NaN when it has none.
    fn final_values(&self, col: usize) -> Vec<f64> {
        let last = self.rows.last().and_then(|r| r.get(col).copied().flatten());
        let last_any = self
            .rows
            .iter()
            .rev()
            .find_map(|r| r.get(col).copied().flatten());
        match last {
            Some(v) => vec![v],
            None => vec![last_any.unwrap_or(f64::NAN), f64::NAN],
        }
    }
}

/// The files of a point's run directory a row is re-derived from.
struct RunFiles {
    metrics: NumberTable,
    alignment: Option<NumberTable>,
    summary: serde_json::Value,
}

impl RunFiles {
    fn read(dir: &Path) -> Option<RunFiles> {
        Some(RunFiles {
            metrics: NumberTable::read(&dir.join("metrics.csv"))?,
            alignment: NumberTable::read(&dir.join("kernel_alignment.csv")),
            summary: serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).ok()?)
                .ok()?,
        })
    }

    /// A number of `summary.json` (read with serde_json's exact float parsing). `null` stands
    /// for a non-finite value (`summary.json` lists which under `non_finite`): NaN here, which
    /// [`same`] matches with any non-finite value of the row.
    fn summary_number(v: &serde_json::Value) -> Option<f64> {
        match v {
            serde_json::Value::Null => Some(f64::NAN),
            v => v.as_f64(),
        }
    }

    /// The values figure `name` may have according to the files, when they hold its source.
    fn allowed(&self, name: &str) -> Option<Vec<f64>> {
        if let Some(col) = self.metrics.column(name) {
            return Some(self.metrics.final_values(col));
        }
        let one = |v: f64| Some(vec![v]);
        match name {
            "learning_rate" | "critical_learning_rate" | "init_ntk_vs_analytic" => {
                Self::summary_number(self.summary.get(name)?).map(|v| vec![v])
            }
            "lambda_ratio" => {
                let l = self.metrics.values("ntk_lambda_max");
                match (l.first(), l.last()) {
                    (Some(a), Some(b)) if *a > 0.0 => one(b / a),
                    _ => one(f64::NAN),
                }
            }
            "ntk_cka_distance" => {
                let a = self.alignment.as_ref()?;
                one(a
                    .values("ntk_cka_init")
                    .last()
                    .map_or(f64::NAN, |c| 1.0 - c))
            }
            "ntk_target_alignment_gain" => {
                let v = self.alignment.as_ref()?.values("ntk_target_alignment");
                one(match (v.first(), v.last()) {
                    (Some(a), Some(b)) => b - a,
                    _ => f64::NAN,
                })
            }
            _ => self
                .infinite_time_loss(name)
                .or_else(|| self.rel_rmse(name)),
        }
    }

    /// `<track>_infinite_time_test_loss` from `summary.json`'s kernel solutions.
    fn infinite_time_loss(&self, name: &str) -> Option<Vec<f64>> {
        let track = name.strip_suffix("_infinite_time_test_loss")?;
        let solution = self.summary["kernel_solutions"]
            .as_array()?
            .iter()
            .find(|k| k["track"] == track)?;
        Self::summary_number(&solution["test_loss_infinite_time"]).map(|v| vec![v])
    }

    /// `rel_rmse_network_<track>` from the measurement `summary.json` lists for it, if it does.
    fn rel_rmse(&self, name: &str) -> Option<Vec<f64>> {
        let track = name.strip_prefix("rel_rmse_network_")?;
        let title = format!("RMSE(network, {track}) / RMS(y)");
        let m = self.summary["measurements"]
            .as_array()?
            .iter()
            .find(|m| m["name"].as_str().is_some_and(|n| n.starts_with(&title)))?;
        Self::summary_number(&m["value"]).map(|v| vec![v])
    }

    /// Figures a row of this run must carry, by what its files hold.
    fn required(&self) -> Vec<String> {
        let mut r: Vec<String> = [
            "init_ntk_vs_analytic",
            "learning_rate",
            "critical_learning_rate",
            "lambda_ratio",
        ]
        .map(String::from)
        .to_vec();
        let has = |c: &str| self.metrics.column(c).is_some();
        for t in Track::ALL.map(Track::name) {
            r.extend(
                [format!("{t}_train_loss"), format!("{t}_test_loss")]
                    .into_iter()
                    .filter(|c| has(c)),
            );
            if has(&format!("rmse_network_{t}_train")) {
                r.push(format!("rel_rmse_network_{t}"));
            }
        }
        if !self.metrics.values("ntk_rel_drift").is_empty() {
            r.extend(
                ["ntk_rel_drift", "ntk_kernel_distance", "param_rel_change"].map(String::from),
            );
            // Builds that wrote no kernel_alignment.csv wrote no CKA figures either.
            if self.alignment.is_some() {
                r.extend(["ntk_cka_distance", "ntk_target_alignment_gain"].map(String::from));
            }
            r.extend(
                self.metrics
                    .header
                    .iter()
                    .filter(|h| h.starts_with("param_rel_change_layer"))
                    .cloned(),
            );
        }
        r
    }
}

/// Equal as numbers, non-finite equal to non-finite (the row and the files hold shortest
/// round-trip text, so a value read back from either is the value written, bit for bit; a
/// missing or non-finite figure is NaN in one and may be ±∞ in the other).
fn same(a: f64, b: f64) -> bool {
    a == b || (!a.is_finite() && !b.is_finite())
}

fn same_curve(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| same(x.0, y.0) && same(x.1, y.1))
}

/// What the plan says of a point: its swept values, seed and directory name.
pub(crate) struct PlannedPoint<'a> {
    /// Swept keys and their values as text.
    pub values: &'a [(String, String)],
    /// Seed.
    pub seed: u64,
    /// Directory name in the sweep directory.
    pub dir_name: &'a str,
}

/// Why a completed `row` disagrees with the point's run directory `point_dir` and its plan,
/// if it does.
pub(crate) fn row_disagreement(
    point_dir: &Path,
    plan: &PlannedPoint<'_>,
    row: &StoredRow,
) -> Option<String> {
    if row.values != plan.values || row.seed != plan.seed || row.run_dir != plan.dir_name {
        return Some(format!(
            "its row holds swept values {:?}, seed {} and directory {:?} but the plan gives this point {:?}, seed {} and directory {:?}",
            row.values, row.seed, row.run_dir, plan.values, plan.seed, plan.dir_name
        ));
    }
    let Some(files) = RunFiles::read(point_dir) else {
        return Some("its metrics.csv or summary.json cannot be read".into());
    };
    let phase = files.summary["phase"]["label"].as_str();
    if phase.is_some() && row.phase.as_deref() != phase {
        return Some(format!(
            "its row gives the phase {} but summary.json gives {}",
            row.phase.as_deref().unwrap_or("(none)"),
            phase.unwrap_or("(none)")
        ));
    }
    let r = row.row();
    for (curve, column) in [
        (&r.loss_curve, "network_train_loss"),
        (&r.sharpness_curve, "sharpness_ratio"),
    ] {
        let from_file = files.metrics.series(column);
        if !same_curve(curve, &from_file) {
            return Some(format!(
                "its row's {column} curve ({} points) is not the {column} column of metrics.csv ({} points)",
                curve.len(),
                from_file.len()
            ));
        }
    }
    figure_disagreement(&files, &r.figures)
}

/// A figure of the row that is missing, unknown, listed twice, or not what the files give.
fn figure_disagreement(files: &RunFiles, figures: &[(String, f64)]) -> Option<String> {
    let names: BTreeSet<&str> = figures.iter().map(|(n, _)| n.as_str()).collect();
    if names.len() != figures.len() {
        let twice = figures
            .iter()
            .enumerate()
            .find(|(i, (n, _))| figures[..*i].iter().any(|(m, _)| m == n))
            .map_or("", |(_, (n, _))| n.as_str());
        return Some(format!("its row lists the figure {twice} twice"));
    }
    if let Some(missing) = files
        .required()
        .into_iter()
        .find(|n| !names.contains(n.as_str()))
    {
        return Some(format!(
            "its row lacks the figure {missing}, which a run with these files has"
        ));
    }
    let known = non_final_figure_names();
    if let Some(unknown) = names
        .iter()
        .find(|n| files.metrics.column(n).is_none() && !known.contains(**n))
    {
        return Some(format!(
            "its row carries a figure {unknown}, which a run with these files does not write"
        ));
    }
    figures.iter().find_map(|(name, value)| {
        let allowed = files.allowed(name)?;
        (!allowed.iter().any(|&a| same(a, *value))).then(|| {
            format!(
                "its row gives {name} = {value:?} but its run directory's files give {:?}",
                allowed[0]
            )
        })
    })
}
