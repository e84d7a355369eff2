//! The reproducibility report (`report.md`, `report.json`): environment, config hash, checks with
//! tolerances, and the SHA-256 of every output file; and `--verify`, which re-runs a recorded
//! config and compares the hashes of its metrics files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Experiment;
use crate::dynamics::Loss;
use crate::record::{RunRecord, RunStatus, Track};
use crate::report::checks::{checks, measurements, measurements_md};
use crate::report::tables;
use crate::{Error, Result};

/// SHA-256 of bytes, lower-case hex (with the file IO, in `io.rs`).
pub use super::io::sha256_hex;

/// Files whose hashes `--verify` compares (deterministic outputs; plots, summary timings and the
/// report itself are excluded).
pub fn is_verified_file(name: &str) -> bool {
    name == "config.toml"
        || name == "metrics.csv"
        || name == "predictions.csv"
        || name == "summary.json"
        || name == "ensemble.csv"
        || name == "kernel_alignment.csv"
        || name == "test_bits_per_context.csv"
        || name == "predictions_steps.npy"
        || name == "predictions_steps.json"
        || name == "ensemble_members.npy"
        || name == "ensemble_members.json"
        || name == crate::report::figure_data::FIGURE_DATA
        || name.starts_with("kernels/")
}

/// SHA-256 and size of a file, read in pieces (an input may be larger than memory allows twice).
pub fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    // A pipe put in a data file's place would block the read: not a file to digest.
    let mut f = crate::data::open_regular_file(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    ))
}

/// One input file as `report.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct InputRecord {
    /// The file, relative to the run directory (as in its `config.toml`).
    pub file: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Every input file of `exp` with its hash and size, keyed by its config key; `dir` is the run
/// directory the paths are written relative to.
pub fn input_records(exp: &Experiment, dir: &Path) -> Result<BTreeMap<String, InputRecord>> {
    exp.data
        .source
        .input_files()
        .into_iter()
        .map(|(key, path)| {
            let (sha256, bytes) = file_digest(&path).map_err(|e| Error::io(&path, e))?;
            let file = crate::config::paths::relative_to(&path, dir)
                .display()
                .to_string();
            Ok((
                key.to_string(),
                InputRecord {
                    file,
                    sha256,
                    bytes,
                },
            ))
        })
        .collect()
}

/// The machine and build a run happened on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Environment {
    /// Crate version.
    pub crate_version: String,
    /// The commit of the source tree this binary was built from (captured at build time by
    /// `build.rs`; None when it was not built from a git checkout of its own).
    pub build_git_commit: Option<String>,
    /// Whether that source tree had uncommitted changes to tracked files when it was built.
    pub build_git_dirty: Option<bool>,
    /// rustc version at build time.
    pub rustc: String,
    /// OS (and distribution).
    pub os: String,
    /// CPU model.
    pub cpu: String,
    /// Threads available.
    pub threads: usize,
    /// The figure code's revision ([`crate::report::plot::FIGURE_STYLE`]) that drew the
    /// figures; absent from records written before it was kept, which are style 1.
    pub figure_style: u32,
}

impl Environment {
    /// Probes the current environment.
    pub fn detect() -> Self {
        let commit = Some(env!("NTK_BUILD_COMMIT").to_string()).filter(|c| !c.is_empty());
        let dirty = match env!("NTK_BUILD_DIRTY") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let distro = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| {
                    l.trim_start_matches("PRETTY_NAME=")
                        .trim_matches('"')
                        .to_string()
                })
            });
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Environment {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            build_git_commit: commit,
            build_git_dirty: dirty,
            rustc: env!("NTK_RUSTC_VERSION").to_string(),
            os: format!(
                "{} {}{}",
                std::env::consts::OS,
                std::env::consts::ARCH,
                distro.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            cpu,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            figure_style: crate::report::plot::FIGURE_STYLE,
        }
    }
}

/// `report.json`.
pub fn report_json(
    r: &RunRecord,
    exp: &Experiment,
    env: &Environment,
    file_hashes: &[(String, String)],
) -> serde_json::Value {
    let cfg = &r.config_toml;
    serde_json::json!({
        "status": r.status,
        "name": r.name,
        "seed": r.seed,
        "config_sha256": sha256_hex(cfg.as_bytes()),
        "config_toml": cfg,
        "environment": env,
        "backend": exp.model.backend.name(),
        "precision": exp.model.precision.name(),
        "timings_s": r.timings.iter().map(|t| (t.phase.clone(), serde_json::json!(t.seconds))).collect::<serde_json::Map<_, _>>(),
        "summary": tables::plain_numbers(tables::summary_json(r)),
        "checks": checks(r, exp),
        "measurements": measurements(r),
        "notes": notes(r, exp),
        "files_sha256": file_hashes.iter().map(|(n, h)| (n.clone(), serde_json::json!(h))).collect::<serde_json::Map<_, _>>(),
        "fingerprint": crate::report::verify::Fingerprint::detect(exp),
        "tolerances": crate::report::verify::tolerances(r, exp),
        "precision_of_outputs": {
            "network, linearized twin, empirical kernels, kernel tracks (through f0 and η_c)": exp.model.precision.name(),
            "analytic kernels, data, kernel linear algebra": "f64",
        },
    })
}

fn notes(r: &RunRecord, exp: &Experiment) -> Vec<String> {
    let mut n = vec![
        "Loss L = 1/(2·N·K) Σ (f − y)² for every track; time t = learning_rate × step.".to_string(),
        if r.twin_space == crate::dynamics::TwinSpace::Parameter {
            "Linearized twin: the exact first-order Taylor model f(x; θ0) + J(x; θ0)(θ − θ0), trained by the same optimiser on the same batches, computed in parameter space (a forward tangent pass at θ0, training δ = θ − θ0 by first-order autodiff, as neural-tangents' `linearize`).".to_string()
        } else if r.twin_track() == Track::LinearizedAvg {
            "`linearized_avg` is NOT the linearization: it runs the twin's update with the output-averaged kernel Θ0_avg ⊗ I_K (kernel.form = \"trace\", K > 1), an approximation; likewise `kernel_empirical_avg`. Use kernel.form = \"full\" for the exact linearized model.".to_string()
        } else {
            "Linearized twin: the exact first-order Taylor model f(x; θ0) + J(x; θ0)(θ − θ0), trained by the same optimiser on the same batches, computed in function space with the full empirical Θ0.".to_string()
        },
        format!("Kernel tracks: closed-form full-batch gradient descent ({} time{}) from the same f0; the analytic kernel acts per output (Θ∞ ⊗ I_K).", exp.kernel.time.name(), if exp.training.momentum > 0.0 { ", with the same heavy-ball momentum" } else { "" }),
        format!("Critical learning rate η_c = 2·(1+μ)·N·K/λ_max(Θ0) with λ_max of the full (N·K)×(N·K) empirical NTK on the training set (μ = {}): the stability threshold of full-batch gradient descent on the linearized model; minibatch noise is not covered.", exp.training.momentum),
        format!("Kernel drift, kernel distance and ntk_lambda_max are measured on the output-averaged empirical NTK of the first {} training points (the probe set); ntk_lambda_max_full and sharpness_ratio = η·λ_max/(2(1+μ)NK) on the full kernel of all training points (1 = the edge of stability).", r.probe_size),
    ];
    if r.loss == Loss::CrossEntropy {
        n.push("Network and linearized twin are trained with softmax cross-entropy; the kernel tracks are the MSE closed form on the one-hot targets (their cross-entropy is that of a softmax of their outputs). The *_loss columns are the half-MSE for every track, so they stay comparable.".into());
    }
    if r.n_train() < r.n_train_all {
        n.push(format!("kernel.train_subset: the network and its twin train on all {} training points; the kernels (Θ0, Θ∞, the kernel tracks), η_c, the sharpness and every train-set figure use a random subset of {} of them (drawn with the run's seed). η_c and the sharpness use N = {} in 2(1+μ)NK/λ_max: λ_max of a kernel matrix grows in proportion to its number of points, so they estimate the full set's values (an estimate, not the full kernel's λ_max). The kernel tracks are kernel regression on the subset only.", r.n_train_all, r.n_train(), r.n_train()));
    }
    if exp.training.batch_size.is_some_and(|b| b < r.n_train_all) {
        n.push("The network and its linearization use minibatches; the kernel tracks are the full-batch solution, so they are compared at equal step (equal t = η·step), not equal batches.".into());
    }
    if exp.kernel.initial_outputs == crate::config::InitialOutputs::Zero {
        n.push("kernel.initial_outputs = \"zero\": the kernel tracks start from zero — plain kernel regression (neural-tangents' predict functions with fx_train_0 = 0; for the analytic kernels the mean over initialisations, Lee et al. 2019) — while the network and its twin start from the network's own f(·; θ0); differences between them include that start.".into());
    }
    if exp.training.center_outputs {
        n.push("center_outputs: every track reports f − f0, which starts at 0 and learns y (the network trains towards y + f0).".into());
    }
    if r.status == RunStatus::Interrupted {
        n.push(
            "The run was interrupted (SIGINT); figures are those of the last logged step.".into(),
        );
    }
    for o in &r.outputs {
        if let Some(s) = o.diverged_at_step {
            n.push(format!("Track `{}` diverged at step {s}; it was frozen there and its later values are not meaningful.", o.track.name()));
        }
    }
    for k in &r.kernel_solutions {
        match &k.solver {
            None => n.push(format!("`{}`: λ (diag_reg) = {:.3e}, condition number of the train kernel = {:.3e}; t = ∞ uses a pseudo-inverse dropping eigenvalues below 1e-12·λ_max.", k.track.name(), k.lambda, k.condition_number)),
            Some(s) => n.push(format!(
                "`{}`: solved iteratively from its kernel stored in blocks ({} entries), λ (diag_reg) = {:.3e}. At each logged step by Lanczos with full reorthogonalisation ({} vectors; estimated largest error of any prediction {:.1e}, {:.1e} at the final step on the held-out points — the difference of the m- and (m−5)-vector approximations, Saad 1992, and for held-out points its energy norm times max √Θ(x, x)); at t = ∞ by conjugate gradients with a rank-{} Nyström (randomly pivoted Cholesky) preconditioner ({} iterations; estimated largest error of a held-out prediction {:.1e}: the Hestenes–Stiefel/Strakoš–Tichý energy-norm estimate times max √Θ(x, x)){}; tolerance {:.0e}. λ_max is the largest Ritz value; the condition number is not computed. Exactly repeated training inputs with λ = 0 are handled as the pseudo-inverse handles them (their residuals averaged).",
                k.track.name(),
                s.storage.name(),
                k.lambda,
                s.report.lanczos.iterations,
                s.report.lanczos.error_estimate,
                s.final_step_error.1,
                s.report.preconditioner_rank,
                s.report.cg.iterations,
                s.report.cg.error_estimate,
                if s.report.lanczos.converged && s.report.cg.converged { "" } else { " — NOT within the tolerance: the iteration cap kernel.solver_max_iterations was reached" },
                s.tolerance,
            )),
        }
    }
    if let Some(it) = &r.iterative {
        n.push(format!(
            "Iterative path: no N × N matrix is decomposed. The kernels ({:.2} GB, {}) were computed block by block; the kernel drift and the spectra are those of the output-averaged kernels on the probe set ({} points); λ_max of the full empirical NTK (η_c and the sharpness ratio) is estimated on the first {} training points, λ_max(Θ_S)/|S| standing for λ_max(Θ_N)/N (both tend to the top eigenvalue of the kernel's integral operator; Koltchinskii & Giné 2000); ‖Θ0 − Θ∞‖_F/‖Θ∞‖_F is measured on {} training points.",
            it.store_bytes as f64 / 1e9,
            if it.store_on_disk { "stored on disk" } else { "held in memory" },
            it.probe_points,
            it.sharpness_points,
            it.comparison_points,
        ));
    }
    n
}

/// The final-figures section of the report (also the binary's end-of-run summary): losses per
/// track, divergences, kernel drift, classification and the kernel tracks at t = ∞.
pub fn final_figures_md(r: &RunRecord) -> String {
    let mut s = if r.network.is_empty() {
        String::new()
    } else {
        format!("Network: {}.\n\n", r.network)
    };
    s += &format!("learning rate η = {:.6}, critical rate η_c = 2(1+μ)·N·K/λ_max(Θ0) = {:.6}; {} parameters; ‖Θ0 − Θ∞‖/‖Θ∞‖ = {:.4}.\n\n", r.learning_rate, r.critical_learning_rate, r.n_params, r.init_ntk_vs_analytic);
    s += "| track | train loss | test loss | diverged at |\n|---|---|---|---|\n";
    let cell = |v: Option<f64>| v.map(tables::fmt_f64).unwrap_or_else(|| "–".into());
    if let Some(c) = r.last() {
        for &t in &r.tracks {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                t.name(),
                cell(c.train_loss.get(t).copied()),
                cell(c.test_loss.get(t).copied().flatten()),
                r.outputs_of(t)
                    .and_then(|o| o.diverged_at_step)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "–".into())
            );
        }
        s += "\n| divergence (RMSE) | train | test |\n|---|---|---|\n";
        for &(a, b) in &r.pairs {
            s += &format!(
                "| {} vs {} | {} | {} |\n",
                a.name(),
                b.name(),
                cell(c.rmse_train.get((a, b)).copied()),
                cell(c.rmse_test.get((a, b)).copied().flatten())
            );
        }
    }
    if let Some(k) = r.last_kernel() {
        s += &format!("\nKernel drift on the probe set: relative {:.4e}, kernel distance {:.4e}, λ_max {:.4e}; per layer {:?}.\nRelative parameter change {:.4e}; per layer {:?}.\n", k.ntk_rel_drift, k.ntk_kernel_distance, k.ntk_lambda_max, k.ntk_rel_drift_per_layer.iter().map(|v| format!("{v:.3e}")).collect::<Vec<_>>(), k.param_rel_change, k.param_rel_change_per_layer.iter().map(|v| format!("{v:.3e}")).collect::<Vec<_>>());
    }
    if let Some(cl) = r.last().and_then(|c| c.classification.as_ref()) {
        s += &classification_md(r, cl);
    }
    for k in &r.kernel_solutions {
        s += &format!(
            "\n`{}` at t = ∞: test loss {}",
            k.track.name(),
            cell(k.test_loss_infinite_time)
        );
        // Written for the iterative path only (the earlier records' reports keep their bytes).
        match k
            .solver
            .as_ref()
            .and_then(|_| super::tables::infinite_time_accuracy(r, k))
        {
            Some(a) => s += &format!(", test accuracy {a:.4}."),
            None => s += ".",
        }
    }
    s
}

fn classification_md(r: &RunRecord, cl: &crate::record::ClassCheckpoint) -> String {
    let mut s = format!(
        "\n| accuracy ({} classes, loss `{}`) | train | test | test cross-entropy (bits) |\n|---|---|---|---|\n",
        r.data.n_outputs,
        r.loss.name()
    );
    for &t in &r.tracks {
        s += &format!(
            "| {} | {:.4} | {} | {} |\n",
            t.name(),
            cl.train_accuracy.get(t).copied().unwrap_or(f64::NAN),
            cl.test_accuracy
                .get(t)
                .copied()
                .flatten()
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "–".into()),
            cl.test_xent
                .get(t)
                .copied()
                .flatten()
                .map(|v| format!("{:.4}", v / std::f64::consts::LN_2))
                .unwrap_or_else(|| "–".into())
        );
    }
    s += "\nCross-entropy is that of a softmax of each track's outputs (for the kernel tracks, trained with MSE, a read-out rather than their training loss); for text data it is bits per character. A uniform predictor scores log2(K) bits.\n";
    s += "\n| agreement of predicted classes | fraction |\n|---|---|\n";
    for ((a, b), v) in cl.agreement.iter() {
        s += &format!("| {} vs {} | {:.4} |\n", a.name(), b.name(), v);
    }
    s
}

/// The checks as a table.
pub fn checks_md(r: &RunRecord, exp: &Experiment) -> String {
    let mut s =
        "| check | value | tolerance | result | basis |\n|---|---|---|---|---|\n".to_string();
    for c in checks(r, exp) {
        s += &format!(
            "| {} | {:.4e} | {} | {} | {} |\n",
            c.name,
            c.value,
            c.tolerance,
            if c.pass { "pass" } else { "FAIL" },
            c.basis
        );
    }
    s
}

fn environment_md(exp: &Experiment, env: &Environment) -> String {
    let mut s = "## Environment\n\n| item | value |\n|---|---|\n".to_string();
    s += &format!("| ntk-dynamics | {} |\n| built from commit (captured at build time) | {} |\n| source tree dirty when built | {} |\n| rustc | {} |\n| burn backend | {} |\n| network precision | {} |\n| OS | {} |\n| CPU | {} |\n| threads | {} |\n| figure style | {} |\n\n",
        env.crate_version, env.build_git_commit.as_deref().unwrap_or("(not built from a git checkout)"), env.build_git_dirty.map(|d| d.to_string()).unwrap_or_else(|| "unknown".into()), env.rustc, exp.model.backend.name(), exp.model.precision.name(), env.os, env.cpu, env.threads, env.figure_style);
    s
}

/// The figure style a run's `report.json` records (1 when it predates the field).
pub fn recorded_figure_style(report: &serde_json::Value) -> u32 {
    report["environment"]["figure_style"]
        .as_u64()
        .map_or(1, |v| v as u32)
}

fn samples_md(r: &RunRecord) -> String {
    let mut s = "\n## Generated text\n\n".to_string();
    for smp in &r.samples {
        s += &format!(
            "**{}**, {}: prompt `{}`\n\n```text\n{}\n```\n\n",
            smp.model.name(),
            if smp.temperature == 0.0 {
                "greedy".to_string()
            } else {
                format!("temperature {}", smp.temperature)
            },
            smp.prompt.replace('\n', "⏎"),
            smp.text
        );
    }
    s
}

/// The "Ensemble" section: gaps to the NTK GP, calibration, cost.
fn ensemble_md(r: &RunRecord, e: &crate::record::ensemble::EnsembleRecord) -> String {
    let mut s = format!(
        "\n\n## Ensemble\n\n{} networks that differ only in their initialisation seed (experiment.seed + m), each trained with its own linearized twin on the same data, batches and learning rate η, against the infinite-width Gaussian process of gradient descent on the half-MSE at the same step (Lee et al. 2019; neural-tangents `gradient_descent_mse_ensemble`): `ntk_gp` with every layer trained (analytic NTK Θ∞, prior NNGP 𝒦), `nngp_gp` with the readout only (𝒦 drives the dynamics; its t = ∞ limit is the Bayesian posterior). Statistics over members: mean and unbiased variance (divisor M − 1) per test entry; members whose track diverged (loss non-finite or past `max_loss`, or a final training loss not below the initial one) are left out (network {}, twin {}). The {} members other than the run's own network took {:.1} s ({} at a time).\n\n",
        e.members,
        e.diverged_members.get(Track::Network).copied().unwrap_or(0),
        e.diverged_members.get(Track::Linearized).copied().unwrap_or(0),
        e.members - 1,
        e.member_seconds,
        e.parallel
    );
    s += "| ensemble vs NTK GP (test, final step) | mean gap RMSE/RMS(y) | floor √(mean σ²_GP/M)/RMS(y) | RMS z of the mean | median var ratio | RMS ln var ratio | its floor for exact GP draws |\n|---|---|---|---|---|---|---|\n";
    for g in &e.gaps {
        s += &format!(
            "| {} | {:.4e} | {:.4e} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            g.track.name(),
            g.mean_gap,
            g.mean_gap_floor,
            g.mean_z_rms,
            g.var_ratio,
            g.var_log_ratio_rms,
            g.var_log_ratio_floor
        );
    }
    s += "\nz = (ensemble mean − GP mean)/√(σ²_GP/M) per entry: RMS ≈ 1 when the members are exact GP draws, larger where the finite-width mean correction exceeds the Monte-Carlo error. The floor of the log variance ratio is √(ψ₁(ν/2) + (ψ(ν/2) − ln(ν/2))²), ν = M − 1: what sampling alone gives.\n\n";
    s += "| predictive distribution (test targets) | coverage of the 95 % interval | Gaussian NLL (nats) |\n|---|---|---|\n";
    for c in &e.calibration {
        s += &format!(
            "| {} | {:.3} | {:.4} |\n",
            c.source.name(),
            c.coverage95,
            c.nll
        );
    }
    s += &format!("\nThe intervals are those of the function f (μ ± 1.96σ), with no observation noise; a calibrated distribution covers 0.95 of the targets only if the targets are draws from it, which a fixed target function such as sin(x) is not. Test loss of the NTK-GP mean: {}.\n", r.last().and_then(|c| c.ensemble.as_ref()).map(|c| tables::fmt_f64(c.gp_mean_test_loss)).unwrap_or_else(|| "–".into()));
    s
}

/// `report.md`.
pub fn report_md(
    r: &RunRecord,
    exp: &Experiment,
    env: &Environment,
    file_hashes: &[(String, String)],
    plots: &[String],
    inputs: &BTreeMap<String, InputRecord>,
) -> String {
    let cfg = &r.config_toml;
    let mut s = format!(
        "# Run report: {}\n\nStatus: **{:?}**. Seed {}. Config SHA-256 `{}`.\n\n",
        r.name,
        r.status,
        r.seed,
        sha256_hex(cfg.as_bytes())
    );
    s += &environment_md(exp, env);
    if !inputs.is_empty() {
        s += "## Input data\n\nChecked by `--verify` before anything is re-run.\n\n| key | file (relative to this directory) | bytes | SHA-256 |\n|---|---|---|---|\n";
        for (key, i) in inputs {
            s += &format!(
                "| `{key}` | `{}` | {} | `{}` |\n",
                i.file, i.bytes, i.sha256
            );
        }
        s += "\n";
    }
    s += "## Wall time per phase\n\n| phase | seconds |\n|---|---|\n";
    for t in &r.timings {
        s += &format!("| {} | {:.3} |\n", t.phase, t.seconds);
    }
    s += &format!(
        "\n## Final figures (step {})\n\n",
        r.last().map(|c| c.step).unwrap_or(0)
    );
    s += &final_figures_md(r);
    if !r.samples.is_empty() {
        s += &samples_md(r);
    }
    if let Some(e) = &r.ensemble {
        s += &ensemble_md(r, e);
    }
    s += &crate::report::checks::language_model_md(r);
    s += "\n\n## Checks\n\n";
    s += &checks_md(r, exp);
    s += "\n## Measurements\n\n";
    s += &measurements_md(r);
    s += "\n## Notes\n\n";
    for n in notes(r, exp) {
        s += &format!("- {n}\n");
    }
    if !plots.is_empty() {
        s += "\n## Plots\n\nThe figures below are files of this directory; `experiment --replot <this directory>` redraws them from `figure_data.ron` without re-running anything. A sweep point's figures are sometimes left out of a repository that keeps its sweep's tables (they are large); re-running the sweep, or `--replot` of the point, writes them again.\n\n";
        if r.loss == crate::dynamics::Loss::CrossEntropy {
            s += &format!(
                "`loss.png` plots each track's softmax cross-entropy ({}), what the network and its twin minimise; the loss columns of the tables above are the half-MSE ½·mean (f − y)² of every track, comparable across tracks.\n\n",
                if r.data.text.is_some() { "bits per character" } else { "nats" }
            );
        }
        for p in plots {
            s += &format!("![{p}]({p})\n");
        }
    }
    s += "\n## Files (SHA-256)\n\n| file | sha256 |\n|---|---|\n";
    for (n, h) in file_hashes {
        s += &format!("| {n} | `{h}` |\n");
    }
    s += &format!("\n## Resolved config\n\n```toml\n{cfg}```\n\nReproduce with `cargo run --release --bin experiment -- --verify <this directory>`.\n");
    s
}

/// A run's `report.json`, parsed.
pub fn read_report(dir: &Path) -> crate::Result<serde_json::Value> {
    let p = dir.join("report.json");
    let text = std::fs::read_to_string(&p).map_err(|e| crate::Error::io(&p, e))?;
    let mut report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| crate::Error::io(&p, std::io::Error::other(e)))?;
    apply_replot(dir, &mut report)?;
    Ok(report)
}

/// The record of `experiment --replot` in a run or sweep directory.
pub const REPLOT_RECORD: &str = "replot.json";

/// A run's report as it stands after `--replot` (when its directory holds [`REPLOT_RECORD`]):
/// the redrawn figures' hashes replace the recorded ones, figures it removed leave the list,
/// and the figure style is the one that redrew them.
fn apply_replot(dir: &Path, report: &mut serde_json::Value) -> crate::Result<()> {
    let p = dir.join(REPLOT_RECORD);
    if !p.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&p).map_err(|e| crate::Error::io(&p, e))?;
    let replot: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| crate::Error::io(&p, std::io::Error::other(e)))?;
    if let Some(files) = report["files_sha256"].as_object_mut() {
        for removed in replot["removed"].as_array().into_iter().flatten() {
            files.remove(removed.as_str().unwrap_or_default());
        }
        for (name, hash) in replot["files_sha256"].as_object().into_iter().flatten() {
            files.insert(name.clone(), hash.clone());
        }
    }
    if let Some(style) = replot["redrawn_by"]["figure_style"].as_u64() {
        report["environment"]["figure_style"] = serde_json::json!(style);
    }
    Ok(())
}

/// Recorded hashes of every file of a run (from its `report.json`, as [`read_report`] gives it:
/// with a `--replot`'s figures).
pub fn recorded_hashes(
    report: &serde_json::Value,
) -> crate::Result<std::collections::BTreeMap<String, String>> {
    let map = report
        .get("files_sha256")
        .and_then(|m| m.as_object())
        .ok_or_else(|| crate::Error::Verify("report.json has no files_sha256".into()))?;
    Ok(map
        .iter()
        .map(|(k, h)| (k.clone(), h.as_str().unwrap_or_default().to_string()))
        .collect())
}
