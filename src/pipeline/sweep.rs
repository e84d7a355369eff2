//! Running a sweep: every point is a complete run into its own directory (`parallel` at a
//! time); a failed or diverged point is recorded and the sweep goes on.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::sweep::{value_text, Sweep, SweepPoint};
use crate::record::sweep::SweepRow;
use crate::run::RunOptions;

use super::run_into;

fn row_of(
    point: &SweepPoint,
    result: crate::Result<(crate::record::RunRecord, std::path::PathBuf)>,
    sweep_dir: &Path,
    wall_s: f64,
) -> SweepRow {
    let values = point
        .values
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    match result {
        Ok((r, dir)) => {
            let run_dir = dir
                .strip_prefix(sweep_dir)
                .unwrap_or(&dir)
                .display()
                .to_string();
            SweepRow::completed(values, point.seed, &r, run_dir, wall_s)
        }
        Err(e) => SweepRow::failed(values, point.seed, &e.to_string(), point.dir_name(), wall_s),
    }
}

/// Runs every point into `sweep_dir/<point>/`, `parallel` at a time. Never stops on a failed
/// point. `on_done(done, total, row)` is called after each point.
pub fn run(
    sweep: &Sweep,
    sweep_dir: &Path,
    interrupt: Option<Arc<AtomicBool>>,
    on_done: &(dyn Fn(usize, usize, &SweepRow) + Sync),
) -> Vec<SweepRow> {
    let n = sweep.points.len();
    let parallel = sweep.spec.parallel.unwrap_or(1).clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; n]);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                if interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let p = &sweep.points[i];
                let t = Instant::now();
                let opts = RunOptions {
                    interrupt: interrupt.clone(),
                    progress: &crate::run::Silent,
                };
                let result = run_into(&p.experiment, Some(&sweep_dir.join(p.dir_name())), &opts);
                let row = row_of(p, result, sweep_dir, t.elapsed().as_secs_f64());
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_done(d, n, &row);
                rows.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
            });
        }
    });
    rows.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}
