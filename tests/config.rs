//! Config loading: defaults, resolved config round trip, the table of rejected configs (each
//! error names the key, the value or what is allowed, and the line), sweep errors pointing into
//! the user's file, and a fuzz/property test that the loader never panics on random bytes or
//! mutated valid configs (seeded).

mod common;

use std::path::Path;

use ntk_dynamics::config::{self, sweep};
use rand::{rngs::StdRng, Rng, SeedableRng};

const VALID: &str = include_str!("../experiments/wide_mlp.toml");

#[test]
fn shipped_config_parses_and_resolved_config_round_trips() {
    let exp = config::parse_str(VALID, None).unwrap();
    let resolved = exp.resolved_toml();
    let again = config::parse_str(&resolved, None).unwrap();
    assert_eq!(
        exp, again,
        "the resolved config must describe the same experiment"
    );
    let minimal = config::parse_str(
        "[experiment]\nname = \"m\"\n[data]\nkind = \"sine\"\n",
        None,
    )
    .unwrap();
    assert_eq!(minimal.model.width, 512);
    assert_eq!(minimal.training.steps, 1000);
    // 64 by default, capped at the 32 training points of the default sine data.
    assert_eq!(minimal.kernel.probe_size, 32);
    for key in [
        "width",
        "depth",
        "w_std",
        "b_std",
        "learning_rate",
        "steps",
        "diag_reg",
        "probe_size",
        "every",
        "kernel_every",
        "save_kernels",
    ] {
        assert!(
            minimal.resolved_toml().contains(key),
            "resolved config lacks {key}"
        );
    }
}

#[test]
fn conv_config_resolves_and_round_trips() {
    let text = include_str!("../experiments/digits_cnn.toml");
    let exp = config::parse_str(text, None).unwrap();
    let resolved = exp.resolved_toml();
    for line in [
        "architecture = \"conv\"",
        "filter = 3",
        "padding = \"same\"",
        "readout = \"flatten\"",
        "image_shape = [8, 8, 1]",
    ] {
        assert!(resolved.contains(line), "{line} missing from\n{resolved}");
    }
    assert_eq!(config::parse_str(&resolved, None).unwrap(), exp);
    // An MLP's resolved config names no architecture (configs written before conv nets existed
    // resolve to the same text).
    assert!(!config::parse_str(VALID, None)
        .unwrap()
        .resolved_toml()
        .contains("architecture"));
}

#[test]
fn loader_never_panics_on_random_or_mutated_input() {
    let mut rng = StdRng::seed_from_u64(2024);
    let alphabet: Vec<char> = "[]=\"'.,#\n _-0123456789abcdefghijklmnopqrstuvwxyz{}+eE"
        .chars()
        .collect();
    let mut errors = 0;
    for i in 0..3000 {
        let text: String = if i % 3 == 0 {
            let len = rng.random_range(0..200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).to_string()
        } else {
            let mut chars: Vec<char> = VALID.chars().collect();
            for _ in 0..rng.random_range(1..6) {
                let pos = rng.random_range(0..chars.len());
                match rng.random_range(0..3) {
                    0 => {
                        chars.remove(pos);
                    }
                    1 => chars.insert(pos, alphabet[rng.random_range(0..alphabet.len())]),
                    _ => chars[pos] = alphabet[rng.random_range(0..alphabet.len())],
                }
            }
            chars.into_iter().collect()
        };
        let r = std::panic::catch_unwind(|| config::parse_str(&text, None));
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
            Err(_) => panic!("config loader panicked on input {i}: {text:?}"),
        }
    }
    assert!(
        errors > 1000,
        "mutations should mostly be rejected ({errors})"
    );
}

/// A bad config and the words its error must contain.
type Case = (String, &'static [&'static str]);

/// Bad variants of the tiny sine config `base`.
fn bad_mlp_cases(base: &str) -> Vec<Case> {
    let mut cases = bad_model_and_training_cases(base);
    cases.extend(bad_data_kernel_and_name_cases(base));
    cases
}

/// Bad `[model]` and `[training]` values of the tiny sine config.
fn bad_model_and_training_cases(base: &str) -> Vec<Case> {
    vec![
        (base.replace("[model]", "[model\n"), &["TOML", "line"]),
        (
            base.replace("width = 64", "widht = 64"),
            &["model.widht", "line 11"],
        ),
        (
            base.replace("width = 64", "width = \"wide\""),
            &["model.width", "usize"],
        ),
        (base.replace("name = \"tiny\"\n", ""), &["name", "missing"]),
        (
            base.replace("width = 64", "width = 0"),
            &["model.width", "= 0", "[1, 1048576]", ":11"],
        ),
        (
            base.replace("depth = 2", "depth = 0"),
            &["model.depth", "[1, 64]", ":12"],
        ),
        (
            base.replace("learning_rate = 0.05", "learning_rate = -1.0"),
            &["training.learning_rate", "> 0", ":15"],
        ),
        (
            base.replace("learning_rate = 0.05", "learning_rate = nan"),
            &["training.learning_rate", "NaN"],
        ),
        (
            base.replace("steps = 30", "steps = 30\nbatch_size = 9"),
            &["training.batch_size", "n_train = 8"],
        ),
        (
            base.replace("probe_size = 6", "probe_size = 9"),
            &["kernel.probe_size", "n_train = 8"],
        ),
        (
            base.replace("[model]", "[model]\nactivation = \"swish\""),
            &["model.activation", "swish", "relu"],
        ),
        (
            base.replace(
                "[model]",
                "[model]\nactivation = { name = \"leaky_relu\", alpah = 0.3 }",
            ),
            &["model.activation", "alpah"],
        ),
        (
            base.replace(
                "[model]",
                "[model]\nactivation = { name = \"relu\", alpha = 0.3 }",
            ),
            &["model.activation", "alpha"],
        ),
        (
            base.replace("[model]", "[model]\nparametrization = \"meanfield\""),
            &["model.parametrization", "ntk", "standard", "mup"],
        ),
    ]
}

/// Bad `[data]`, `[logging]`, `[kernel]`, more `[training]` and name values of the tiny sine
/// config.
fn bad_data_kernel_and_name_cases(base: &str) -> Vec<Case> {
    vec![
        (
            base.replace("kind = \"sine\"", "kind = \"images\""),
            &["data", "images", "sine", "teacher", "csv", "text"],
        ),
        (
            base.replace("kind = \"sine\"", "kind = \"sine\"\ninput_dim = 4"),
            &["data", "input_dim"],
        ),
        (
            base.replace("kind = \"sine\"", "kind = \"teacher\"\nfrequency = 2.0"),
            &["data", "frequency"],
        ),
        (
            base.replace("kernel_every = 10", "kernel_every = 7"),
            &["logging.kernel_every", "multiple", ":24"],
        ),
        (
            base.replace("[kernel]", "[kernel]\nform = \"diagonal\""),
            &["kernel.form", "full", "trace"],
        ),
        (
            base.replace(
                "[kernel]",
                "[kernel]\nsolutions = [\"analytic\", \"analytic\"]",
            ),
            &["kernel.solutions", "at most once"],
        ),
        (
            base.replace("[model]", "[model]\nparametrization = \"mup\""),
            &["kernel.solutions", "mup"],
        ),
        (
            base.replace(
                "learning_rate = 0.05",
                "learning_rate = 0.05\nlr_scale = 0.5",
            ),
            &["training.lr_scale", "not both"],
        ),
        (
            base.replace("[training]", "[training]\nmomentum = 1.0"),
            &["training.momentum", "[0, 1)"],
        ),
        (
            base.replace("[training]", "[training]\nloss = \"hinge\""),
            &["training.loss", "mse"],
        ),
        (
            base.replace("name = \"tiny\"", "name = \"../up\""),
            &["experiment.name", "letters"],
        ),
        (
            base.replace(
                "name = \"tiny\"",
                &format!("name = \"{}\"", "a".repeat(300)),
            ),
            &["experiment.name", "at most 128"],
        ),
    ]
}

/// Bad conv-net configs: the image comes from the data; conv keys only with
/// `architecture = "conv"`.
fn bad_conv_cases(base: &str) -> Vec<Case> {
    let digits = "[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nimage_shape = [8, 8, 1]\n[model]\narchitecture = \"conv\"\nwidth = 8\n";
    vec![
        (
            base.replace("[model]", "[model]\narchitecture = \"conv\""),
            &[
                "data.image_shape",
                "required",
                "model.architecture = \"conv\"",
            ],
        ),
        (
            base.replace("[model]", "[model]\nfilter = 3"),
            &["model.filter", "only with model.architecture = \"conv\""],
        ),
        (
            base.replace("[model]", "[model]\narchitecture = \"resnet\""),
            &["model.architecture", "resnet", "mlp", "conv"],
        ),
        (
            format!("{digits}filter = 9\n"),
            &["model.filter", "9", "[1, 8]"],
        ),
        (
            format!("{digits}padding = \"valid\"\ndepth = 4\n"),
            &["model.depth", "at most 3", "8×8"],
        ),
        (
            format!("{digits}parametrization = \"mup\"\n"),
            &["model.parametrization", "mup", "conv"],
        ),
        (
            format!("{digits}readout = \"max\"\n"),
            &["model.readout", "max", "flatten", "global_avg_pool"],
        ),
        (
            digits.replace("[8, 8, 1]", "[8, 0, 1]"),
            &["data.image_shape", "[8, 0, 1]", "at least 1"],
        ),
    ]
}

/// Every rejected config names the file, the dotted key and what is allowed (or the parser's
/// position), in-process.
#[test]
fn bad_configs_are_rejected_with_key_line_and_allowed_values() {
    let base = common::tiny_sine_toml(Path::new("/tmp/unused"), "");
    let cases: Vec<Case> = bad_mlp_cases(&base)
        .into_iter()
        .chain(bad_conv_cases(&base))
        .collect();
    for (i, (text, needles)) in cases.iter().enumerate() {
        let file = format!("bad{i}.toml");
        let err = config::parse_str(text, Some(Path::new(&file)))
            .expect_err(&format!("case {i} must be rejected"))
            .to_string();
        assert!(err.contains(&file), "case {i} must name the file: {err}");
        for n in *needles {
            assert!(err.contains(n), "case {i}: {err:?} lacks {n:?}");
        }
    }
}

/// A bad swept value names the point and the line of the key in `[sweep.vary]` of the user's
/// file (not of a generated config).
#[test]
fn sweep_errors_point_into_the_users_file() {
    let text = common::sweep_toml(Path::new("/tmp/unused"), "\"model.width\" = [16, 0]", "");
    let err = sweep::expand(&text, Some(Path::new("s.toml")))
        .unwrap_err()
        .to_string();
    let line = text
        .lines()
        .position(|l| l.starts_with("\"model.width\""))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("s.toml:{line}")), "{err}");
    assert!(err.contains("model.width = 0"), "{err}");
}
