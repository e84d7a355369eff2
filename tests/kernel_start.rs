//! `kernel.initial_outputs = "zero"` (the kernel tracks start from zero: plain kernel regression,
//! the mean over initialisations) against a second path to the same numbers: with
//! `training.center_outputs = true` every track learns `y` from a centred start and reports
//! `f − f0` — for a kernel track the same closed form, reached by shifting the targets by the
//! network's `f0` and subtracting it again. Under the half-MSE the two agree to round-off.

use ntk_dynamics::config;
use ntk_dynamics::data;
use ntk_dynamics::record::{RunRecord, Track};
use ntk_dynamics::run::{self, RunOptions};

fn run(text: &str) -> RunRecord {
    let exp = config::parse_str(text, None).unwrap();
    let ds = data::load(&exp.data, exp.seed).unwrap();
    run::execute(&exp, &ds, &RunOptions::default()).unwrap()
}

fn teacher(training: &str, kernel: &str) -> String {
    format!(
        "[experiment]\nname = \"t\"\nseed = 3\n[data]\nkind = \"teacher\"\nn_train = 24\nn_test = 11\ninput_dim = 5\n[model]\nwidth = 64\ndepth = 2\nprecision = \"f64\"\n[training]\nlr_scale = 0.5\nsteps = 30\nbatch_size = 8\nmomentum = 0.5\n{training}\n[kernel]\nsolutions = [\"analytic\", \"nngp\", \"empirical\"]\ndiag_reg = 1e-6\n{kernel}\n[logging]\nevery = 10\nkernel_every = 30\n"
    )
}

#[test]
fn zero_start_kernel_tracks_equal_centred_kernel_tracks() {
    let zero = run(&teacher("", "initial_outputs = \"zero\""));
    let centred = run(&teacher("center_outputs = true", ""));
    for t in [
        Track::KernelAnalytic,
        Track::KernelNngp,
        Track::KernelEmpirical,
    ] {
        let (a, b) = (zero.outputs_of(t).unwrap(), centred.outputs_of(t).unwrap());
        let scale = a.test.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        for (x, y) in a
            .train
            .iter()
            .chain(&a.test)
            .zip(b.train.iter().chain(&b.test))
        {
            assert!(
                (x - y).abs() <= 1e-9 * scale,
                "{}: {x} vs {y} (scale {scale})",
                t.name()
            );
        }
    }
    // The network starts from its own outputs either way: the zero start moves only the kernel
    // tracks, so the network's final test predictions differ from the centred run's by f0.
    let net = zero.outputs_of(Track::Network).unwrap();
    assert!(net.test.iter().any(|v| v.abs() > 1e-6));
}

#[test]
fn zero_start_with_centred_outputs_is_refused() {
    let e = config::parse_str(
        &teacher("center_outputs = true", "initial_outputs = \"zero\""),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("kernel.initial_outputs"), "{e}");
}
