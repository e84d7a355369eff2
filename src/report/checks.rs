//! What a run's report judges and what it only measures.
//!
//! A **check** has a criterion that follows from mathematics, with a stated basis: two tracks
//! that are the same model solved two ways must agree to round-off; below η_c the linearized
//! model's full-batch gradient descent must converge; values are finite unless a track is
//! reported diverged. A **measurement** is a figure whose size theory predicts only up to a
//! constant (the finite-width corrections scale as n^−1/2, Lee et al. 2019, Theorem 2.1; Θ0's
//! fluctuation about Θ∞ likewise by the central limit theorem over the hidden units): it is
//! reported with that statement, and the width sweeps test the scaling.

use serde::Serialize;

use crate::config::Experiment;
use crate::dynamics::Loss;
use crate::record::columns::{Column, Split};
use crate::record::{RunRecord, Track};

/// One check: a value against a bound, and the reason for the bound.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Measured value.
    pub value: f64,
    /// The bound.
    pub tolerance: f64,
    /// Whether it holds.
    pub pass: bool,
    /// Why the bound is what it is.
    pub basis: String,
}

/// Relative agreement to which two f64 solutions of one linear model must agree.
pub const EXACT_RTOL: f64 = 1e-8;

/// The checks of a run.
pub fn checks(r: &RunRecord, exp: &Experiment) -> Vec<Check> {
    let mut out = Vec::new();
    let full_batch = exp.training.batch_size.is_none_or(|b| b >= r.n_train_all);
    let twin = r.twin_track();
    let empirical = if twin == Track::LinearizedAvg {
        Track::KernelEmpiricalAvg
    } else {
        Track::KernelEmpirical
    };
    let exact_conditions = full_batch
        && exp.training.loss == Loss::Mse
        && exp.kernel.diag_reg.value == 0.0
        && exp.kernel.time == crate::dynamics::kernel::TimeMode::Discrete
        && r.tracks.contains(&empirical)
        && r.outputs.iter().all(|o| o.diverged_at_step.is_none());
    if exact_conditions {
        if let Some(v) = r.final_relative_rmse(twin, empirical) {
            out.push(Check {
                name: format!("{} ≡ {} (RMSE / RMS(y), {})", twin.name(), empirical.name(), r.evaluation_split()),
                value: v,
                tolerance: EXACT_RTOL,
                pass: v < EXACT_RTOL,
                basis: "full-batch gradient descent on the linearized model, computed step by step (twin) and in closed form from the same Θ0 (kernel track): one model, so they agree to f64 round-off".into(),
            });
        }
    }
    let ratio = r.learning_rate / r.critical_learning_rate;
    if full_batch && exp.training.loss == Loss::Mse && ratio < 1.0 {
        let losses: Vec<f64> = Column::Loss(twin, Split::Train)
            .series(r)
            .into_iter()
            .map(|p| p.1)
            .collect();
        let (first, last) = (
            losses.first().copied().unwrap_or(f64::NAN),
            losses.last().copied().unwrap_or(f64::NAN),
        );
        let converging = last <= first
            && r.outputs_of(twin)
                .is_some_and(|o| o.diverged_at_step.is_none());
        out.push(Check {
            name: format!("η/η_c < 1 ⇒ the twin's training loss decreases (final / initial, η/η_c = {ratio:.3})"),
            value: last / first,
            tolerance: 1.0,
            pass: converging,
            basis: "below η_c = 2(1+μ)NK/λ_max every eigenmode of (heavy-ball) gradient descent on a quadratic contracts".into(),
        });
    }
    let nonfinite = r.has_non_finite();
    let reported = r.outputs.iter().any(|o| o.diverged_at_step.is_some());
    out.push(Check {
        name: "non-finite values only in tracks reported diverged".into(),
        value: if nonfinite { 1.0 } else { 0.0 },
        tolerance: 0.0,
        pass: !nonfinite || reported,
        basis: "every track is guarded: a NaN/inf loss marks it diverged and freezes it".into(),
    });
    out
}

/// A figure reported with what theory says about it (no pass/fail).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measurement {
    /// What is measured.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// What theory predicts.
    pub theory: String,
}

/// The measurements of a run.
pub fn measurements(r: &RunRecord) -> Vec<Measurement> {
    let mut out = Vec::new();
    let split = r.evaluation_split();
    if r.init_ntk_vs_analytic.is_finite() {
        out.push(Measurement {
            name: "‖Θ0 − Θ∞‖_F/‖Θ∞‖_F (train × train, output-averaged Θ0)".into(),
            value: r.init_ntk_vs_analytic,
            theory: "O(n^−1/2) at initialisation (central limit theorem over the hidden units; the constant depends on the architecture)".into(),
        });
    }
    let twin = r.twin_track();
    for other in [twin, Track::KernelAnalytic] {
        if let Some(v) = r.final_relative_rmse(Track::Network, other) {
            out.push(Measurement {
                name: format!("RMSE(network, {}) / RMS(y) ({split}, final step)", other.name()),
                value: v,
                theory: if other == Track::KernelAnalytic
                    && r.kernel_start == crate::config::InitialOutputs::Zero
                {
                    "O(1): the kernel track starts from zero (kernel.initial_outputs = \"zero\"), the network from its random f(·; θ0), whose part outside the kernel's reach stays (Lee et al. 2019: the mean prediction against one network's)".into()
                } else if other == Track::KernelAnalytic {
                    "O(n^−1/2) plus Θ0's own fluctuation (Lee et al. 2019, Theorem 2.1 and §2.3)".into()
                } else {
                    "O(n^−1/2) for the exact linearization under gradient descent below η_c (Lee et al. 2019, Theorem 2.1); an averaged twin adds the averaging error".into()
                },
            });
        }
    }
    if let Some(k) = r.last_kernel() {
        out.push(Measurement {
            name: "relative NTK drift ‖Θ_t − Θ0‖_F/‖Θ0‖_F (probe set)".into(),
            value: k.ntk_rel_drift,
            theory: "→ 0 as n grows in the ntk and standard parametrizations (O(1/n) for smooth activations; measured slower for ReLU); order one under mup".into(),
        });
    }
    let e = r.phase_evidence();
    out.push(Measurement {
        name: format!(
            "regime: {} (η/η_c = {:.3}, final sharpness ratio {:.3}, loss spike {})",
            e.classify().name(),
            e.lr_ratio,
            e.final_sharpness(),
            if e.spiked() { "yes" } else { "no" }
        ),
        value: e.final_drift,
        theory: format!(
            "edge of stability when the sharpness ratio, starting outside [{}, {}], comes into that band and stays there over the last quarter of the kernel checkpoints (at least two), whatever η/η_c (Cohen et al. 2021; the ratio uses the NTK, the Gauss–Newton part of the Hessian; the late ratios are in report.json's phase); catapult when η > η_c, the loss spikes and the final sharpness ends below that band (Lewkowycz et al. 2020); otherwise lazy with drift < {}, feature learning above; the value is the final drift",
            crate::metrics::EDGE_BAND.0,
            crate::metrics::EDGE_BAND.1,
            crate::metrics::LAZY_DRIFT
        ),
    });
    out
}

/// The measurements as a table.
pub fn measurements_md(r: &RunRecord) -> String {
    let mut s = "| figure | value | what theory predicts |\n|---|---|---|\n".to_string();
    for m in measurements(r) {
        s += &format!("| {} | {:.4e} | {} |\n", m.name, m.value, m.theory);
    }
    s
}

/// Warnings a text run owes its reader: tracks whose test cross-entropy (early stopped at the
/// fitted temperature when there are validation points) is worse than the unigram baseline's (they have learnt less than character frequencies), and kernel drift that
/// puts the run outside the lazy regime the NTK describes (drift ≥ [`crate::metrics::LAZY_DRIFT`]).
pub fn text_flags(r: &RunRecord) -> Vec<String> {
    let mut flags = Vec::new();
    let Some(unigram) = r.ngram_baselines.first() else {
        return flags;
    };
    for &t in &r.tracks {
        // With validation points a track is judged at its early-stopping checkpoint and
        // fitted read-out temperature, else at the last step with softmax(f).
        let judged = match r.early_stop(t) {
            Some(e) => Some((e.test_xent, "early stopped, fitted temperature")),
            None => Column::Xent(t, Split::Test)
                .final_value(r)
                .map(|x| (x, "last step")),
        };
        if let Some((x, when)) = judged {
            let bits = x / std::f64::consts::LN_2;
            if bits >= unigram.bits_per_char || bits.is_nan() {
                flags.push(format!(
                    "{}: {bits:.2} bits/char on the test text ({when}), worse than the unigram baseline ({:.2})",
                    t.name(),
                    unigram.bits_per_char
                ));
            }
        }
    }
    if let Some(k) = r.last_kernel() {
        if k.ntk_rel_drift >= crate::metrics::LAZY_DRIFT || k.ntk_rel_drift.is_nan() {
            flags.push(format!(
                "kernel drift {:.3} ≥ {}: the network left the lazy regime, so its linearization and the NTK kernel tracks do not describe it",
                k.ntk_rel_drift,
                crate::metrics::LAZY_DRIFT
            ));
        }
    }
    flags
}

/// The paired comparison of the network with every other model on the same test contexts.
fn paired_md(r: &RunRecord) -> String {
    let rows = r.paired_vs_network();
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let context = r
        .context_bits
        .iter()
        .find(|c| c.model == "network")
        .map_or(0, |c| c.context_chars);
    let mut s = format!(
        "\nPaired on the same {} test contexts (`test_bits_per_context.csv`; every track early stopped at its fitted temperature, the network reads {context} characters): the mean over contexts of bits(network) − bits(model), with the 95 % interval of that mean by batch means (the contexts in text order cut into 50 contiguous blocks, Student's t on the block means, since neighbouring contexts overlap). Negative: the network is better.\n\n| model | characters read | network − model (bits/char) | 95 % interval |\n|---|---|---|---|\n",
        first.n
    );
    for (c, p) in &rows {
        s += &format!(
            "| {} | {} | {:+.4} | [{:+.4}, {:+.4}] |\n",
            c.model,
            c.context_chars,
            p.mean_difference,
            p.mean_difference - p.ci95,
            p.mean_difference + p.ci95
        );
    }
    s
}

/// The report's language-model section: tracks against the n-gram baselines, and the flags.
pub fn language_model_md(r: &RunRecord) -> String {
    if r.ngram_baselines.is_empty() {
        return String::new();
    }
    let early = !r.data.y_val.is_empty();
    let mut s = if early {
        "\n\n## Language model\n\n| model | test bits/char (final) | test accuracy (final) | early stopped: step | T | val bits/char | test bits/char | test accuracy |\n|---|---|---|---|---|---|---|---|\n"
    } else {
        "\n\n## Language model\n\n| model | test bits/char | test accuracy |\n|---|---|---|\n"
    }
    .to_string();
    let ln2 = std::f64::consts::LN_2;
    for &t in &r.tracks {
        let bits = Column::Xent(t, Split::Test)
            .final_value(r)
            .map(|x| format!("{:.3}", x / std::f64::consts::LN_2))
            .unwrap_or_else(|| "–".into());
        let acc = Column::Accuracy(t, Split::Test)
            .final_value(r)
            .map(|a| format!("{a:.4}"))
            .unwrap_or_else(|| "–".into());
        let stopped = match (early, r.early_stop(t)) {
            (false, _) => String::new(),
            (true, None) => " – | – | – | – | – |".into(),
            (true, Some(e)) => format!(
                " {} | {:.3} | {:.3} | {:.3} | {:.4} |",
                e.step,
                e.temperature,
                e.val_xent / ln2,
                e.test_xent / ln2,
                e.test_accuracy
            ),
        };
        s += &format!("| {} | {bits} | {acc} |{stopped}\n", t.name());
    }
    let blank = if early { " | | | | |" } else { "" };
    for b in &r.ngram_baselines {
        s += &format!(
            "| {}-gram (Witten–Bell, on the training samples; sees {} characters) | {:.3} | {:.4} |{blank}\n",
            b.order,
            b.order - 1,
            b.bits_per_char,
            b.accuracy
        );
    }
    s += "\nBaselines: interpolated Witten–Bell n-gram models counted on exactly the run's training samples (the target after the last n − 1 characters of each sample's context) and evaluated on the same test samples as the tracks. An n-gram model sees the previous n − 1 characters; the network and its twin see the whole context (data.context characters). For the MSE-trained kernel tracks the bits are those of a softmax of their outputs (a read-out, not their training loss).\n";
    if early {
        s += "\nEarly stopped: each track at the checkpoint with the lowest validation cross-entropy of softmax(f/T), with the read-out temperature T fitted on the validation points at that checkpoint (temperature scaling, Guo et al. 2017); its test figures use the same T. The final columns are softmax(f) at the last step.\n";
    }
    s += &paired_md(r);
    let flags = text_flags(r);
    if !flags.is_empty() {
        s += "\n**Flags:**\n\n";
        for f in flags {
            s += &format!("- {f}\n");
        }
    }
    s
}
