//! Checks that need the data (batch and probe sizes, memory) before any work or output.

use crate::config::Experiment;
use crate::data::Dataset;
use crate::{Error, Result};

/// Checks a config against its data before any work or output.
pub fn preflight(exp: &Experiment, data: &Dataset) -> Result<()> {
    let n_train = data.n_train();
    if let Some(b) = exp.training.batch_size {
        if b > n_train {
            return Err(Error::value(
                "training.batch_size",
                b,
                format!("an integer in [1, number of training points = {n_train}]"),
            ));
        }
    }
    check_memory(exp, n_train + data.n_heldout(), n_train, data.n_outputs)
}

/// Refuses work whose kernels would not fit in memory (call before creating any output).
pub fn check_memory(exp: &Experiment, n_all: usize, n_train: usize, k: usize) -> Result<()> {
    let rpp = exp.kernel.form.rows_per_point(k) as u64;
    let (n_all, n_train) = (n_all as u64, n_train as u64);
    // Θ0(all, train) + analytic kernels + predictors' eigenvectors, f64.
    let kernel_bytes =
        8 * (n_all * rpp * n_train * rpp * 3 + 2 * n_all * n_train + 2 * (n_train * rpp).pow(2));
    // Layer inputs and backprop signals of the points held at once (all, or train + one block),
    // f64.
    let held = exp
        .kernel
        .block_size
        .map(|b| n_train + (b as u64).min(n_all))
        .unwrap_or(n_all);
    let signal_bytes =
        8 * held * exp.model.width as u64 * (exp.model.depth as u64 + 1) * (k as u64 + 1);
    let needed = kernel_bytes + signal_bytes;
    let available = available_memory_bytes();
    if needed > available {
        return Err(Error::Memory {
            what: format!(
                "kernels for {n_all} points × {k} outputs ({} form)",
                exp.kernel.form.name()
            ),
            needed_bytes: needed,
            available_bytes: available,
        });
    }
    Ok(())
}

/// Available memory from `/proc/meminfo` (or a generous default elsewhere).
pub fn available_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(16 << 30)
}
