//! Whether a completed sweep point's stored row (`rows/<point>.json`) says what its run
//! directory says: the row is what `sweep.csv` is collected from, so a row edited by hand (or
//! written by another run) must not reach it. The row is re-derived where the run directory
//! holds its source: the swept values and seed from the plan, the loss and sharpness curves
//! and every figure that is a `metrics.csv` column from that file. Figures computed from data
//! that is not in a file of the run directory (relative RMSEs, CKA, ensemble gaps, n-gram
//! baselines) are not re-derived.

use std::path::Path;

use crate::record::sweep::StoredRow;

/// `metrics.csv` read back: its header and, per column, the values of every row (`None` where
/// the cell is empty: the column was not measured at that checkpoint).
struct MetricsTable {
    header: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

impl MetricsTable {
    fn read(path: &Path) -> Option<MetricsTable> {
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
        Some(MetricsTable { header, rows })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// `(step, value)` of every row where column `name` has a value.
    fn series(&self, name: &str) -> Option<Vec<(f64, f64)>> {
        let (step, col) = (self.column("step")?, self.column(name)?);
        Some(
            self.rows
                .iter()
                .filter_map(|r| Some((r.get(step).copied()??, r.get(col).copied()??)))
                .collect(),
        )
    }

    /// The values a final figure of column `col` may have: the last row's value, or, where
    /// the last row has none (a kernel column measured less often), the last value the column
    /// has, or NaN when it has none.
    fn final_values(&self, col: usize) -> [f64; 2] {
        let last = self.rows.last().and_then(|r| r.get(col).copied().flatten());
        let last_any = self
            .rows
            .iter()
            .rev()
            .find_map(|r| r.get(col).copied().flatten());
        match last {
            Some(v) => [v, v],
            None => [last_any.unwrap_or(f64::NAN), f64::NAN],
        }
    }
}

/// Equal as numbers, NaN equal to NaN (the row and the CSV both hold shortest round-trip text,
/// so a value read back from either is the value written, bit for bit).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_curve(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| same(x.0, y.0) && same(x.1, y.1))
}

/// Why `row` (stored for a point whose plan values are `values` and seed `seed`) disagrees with
/// the point's run directory `point_dir`, if it does.
pub(crate) fn row_disagreement(
    point_dir: &Path,
    values: &[(String, String)],
    seed: u64,
    row: &StoredRow,
) -> Option<String> {
    if row.values != values || row.seed != seed {
        return Some(format!(
            "its row holds swept values {:?} and seed {} but the plan gives this point {values:?} and seed {seed}",
            row.values, row.seed
        ));
    }
    let metrics = point_dir.join("metrics.csv");
    let Some(table) = MetricsTable::read(&metrics) else {
        return Some("its metrics.csv cannot be read".into());
    };
    let row = row.row();
    for (curve, column) in [
        (&row.loss_curve, "network_train_loss"),
        (&row.sharpness_curve, "sharpness_ratio"),
    ] {
        let from_file = table.series(column).unwrap_or_default();
        if !same_curve(curve, &from_file) {
            return Some(format!(
                "its row's {column} curve ({} points) is not the {column} column of metrics.csv ({} points)",
                curve.len(),
                from_file.len()
            ));
        }
    }
    row.figures.iter().find_map(|(name, value)| {
        let col = table.column(name)?;
        let allowed = table.final_values(col);
        (!allowed.iter().any(|&a| same(a, *value))).then(|| {
            format!(
                "its row gives {name} = {value:?} but the final {name} in metrics.csv is {:?}",
                allowed[0]
            )
        })
    })
}
