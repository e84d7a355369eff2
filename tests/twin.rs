//! The linearized twin in parameter space (`f0 + J(·; θ0)·δ` by a tangent pass, trained through
//! autodiff with respect to δ) against the twin in function space (`f0 + Θ0(·, X)·β`): the same
//! model, so in f64 their predictions agree to round-off, for the half-MSE and cross-entropy,
//! full batch and minibatches, momentum, muP's per-layer rates, and K > 1 outputs with the full
//! kernel.

mod common;

use ntk_dynamics::config;
use ntk_dynamics::data;
use ntk_dynamics::record::{RunRecord, Track};
use ntk_dynamics::run::{self, RunOptions};

/// Runs `text` with `[training] twin = …` inserted.
fn run_with_twin(text: &str, twin: &str) -> RunRecord {
    let text = text.replace("[training]\n", &format!("[training]\ntwin = \"{twin}\"\n"));
    let exp = config::parse_str(&text, None).unwrap();
    let ds = data::load(&exp.data, exp.seed).unwrap();
    run::execute(&exp, &ds, &RunOptions::default()).unwrap()
}

/// Max |difference| of the twins' final predictions (train and test) over max |prediction|.
fn twin_gap(text: &str) -> f64 {
    let f = run_with_twin(text, "function");
    let p = run_with_twin(text, "parameter");
    let (a, b) = (
        f.outputs_of(Track::Linearized).expect("exact twin"),
        p.outputs_of(Track::Linearized).expect("exact twin"),
    );
    let scale = a
        .train
        .iter()
        .chain(&a.test)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .train
        .iter()
        .chain(&a.test)
        .zip(b.train.iter().chain(&b.test))
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    // Both runs train the same network.
    assert_eq!(
        f.outputs_of(Track::Network).unwrap().test,
        p.outputs_of(Track::Network).unwrap().test
    );
    diff / scale
}

/// The first 30 rows of the digits file with labels 0, 1 or 2, as `d.csv` in `dir`.
fn three_digit_classes(dir: &std::path::Path) -> std::path::PathBuf {
    let src = std::fs::read_to_string("experiments/data/digits.csv").unwrap();
    let mut lines = src.lines();
    let header = lines.next().unwrap();
    let label = header.split(',').position(|h| h == "label").unwrap();
    let rows: Vec<&str> = lines
        .filter(|l| l.split(',').nth(label).unwrap().parse::<f64>().unwrap() < 3.0)
        .take(30)
        .collect();
    common::write(dir, "d.csv", &format!("{header}\n{}\n", rows.join("\n")))
}

fn sine(extra_model: &str, extra_training: &str) -> String {
    format!(
        "[experiment]\nname = \"t\"\nseed = 4\n[data]\nkind = \"sine\"\nn_train = 12\nn_test = 9\n[model]\nwidth = 48\ndepth = 2\nprecision = \"f64\"\nb_std = 0.5\n{extra_model}\n[training]\nlr_scale = 0.7\nsteps = 40\n{extra_training}\n[kernel]\nsolutions = []\n[logging]\nevery = 10\nkernel_every = 20\n"
    )
}

#[test]
fn parameter_and_function_twins_agree_in_f64() {
    let cases = [
        ("full batch, MSE", sine("", "")),
        (
            "minibatch and momentum",
            sine("", "batch_size = 5\nmomentum = 0.9\nlr_scale = 0.3"),
        ),
        (
            "muP",
            sine("parametrization = \"mup\"\nactivation = \"tanh\"", ""),
        ),
        (
            "erf, standard",
            sine("parametrization = \"standard\"\nactivation = \"erf\"", ""),
        ),
    ];
    for (what, text) in cases {
        let text = text.replace(
            "lr_scale = 0.7\nsteps = 40\nbatch_size",
            "steps = 40\nbatch_size",
        );
        let gap = twin_gap(&text);
        assert!(gap < 1e-10, "{what}: relative gap {gap:e}");
    }
}

#[test]
fn parameter_twin_matches_with_cross_entropy_and_several_outputs() {
    // Three classes from the digits file (a few rows), one-hot, full multi-output kernel.
    let tmp = tempfile::tempdir().unwrap();
    let csv = three_digit_classes(tmp.path());
    for (loss, extra) in [
        ("mse", ""),
        ("cross_entropy", "batch_size = 8\nmomentum = 0.5\n"),
    ] {
        let text = format!(
            "[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"{}\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\ntest_fraction = 0.3\n[model]\nwidth = 32\nprecision = \"f64\"\n[training]\nlearning_rate = 0.5\nsteps = 30\nloss = \"{loss}\"\n{extra}[kernel]\nsolutions = []\nform = \"full\"\n[logging]\nevery = 10\nkernel_every = 30\n",
            csv.display()
        );
        let gap = twin_gap(&text);
        assert!(gap < 1e-10, "{loss}: relative gap {gap:e}");
    }
}

#[test]
fn auto_keeps_small_twins_in_function_space_and_the_choice_is_recorded_only_when_set() {
    let text = sine("", "");
    let exp = config::parse_str(&text, None).unwrap();
    assert!(!exp.resolved_toml().contains("twin"));
    let exp = config::parse_str(
        &text.replace("[training]\n", "[training]\ntwin = \"parameter\"\n"),
        None,
    )
    .unwrap();
    assert!(exp.resolved_toml().contains("twin = \"parameter\""));
    let err = config::parse_str(
        &text.replace("[training]\n", "[training]\ntwin = \"both\"\n"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("twin"), "{err}");
}

/// The exact (parameter-space) twin next to the output-averaged empirical kernel track
/// (`kernel.form = "trace"`, K = 3, `solutions = ["empirical"]`): it runs (this combination once
/// panicked), the twin is the exact `linearized` and the kernel track `kernel_empirical_avg`
/// (named for the approximation it is), and no check claims the two are one model.
#[test]
fn parameter_twin_beside_the_output_averaged_empirical_kernel_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = three_digit_classes(tmp.path());
    let text = format!(
        "[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"{}\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\ntest_fraction = 0.3\n[model]\nwidth = 32\n[training]\nlr_scale = 0.5\nsteps = 20\n[kernel]\nsolutions = [\"empirical\"]\nform = \"trace\"\n[logging]\nevery = 5\nkernel_every = 10\n",
        csv.display()
    );
    let r = run_with_twin(&text, "parameter");
    assert_eq!(
        r.tracks,
        vec![Track::Network, Track::Linearized, Track::KernelEmpiricalAvg]
    );
    let exp = config::parse_str(
        &text.replace("[training]\n", "[training]\ntwin = \"parameter\"\n"),
        None,
    )
    .unwrap();
    for c in ntk_dynamics::report::checks::checks(&r, &exp) {
        assert!(
            !c.name.contains("≡"),
            "no identity check between different models: {}",
            c.name
        );
    }
}
