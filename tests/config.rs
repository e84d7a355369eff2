//! Config loading: defaults, resolved config round trip, and a fuzz/property test that the loader
//! never panics on random bytes or mutated valid configs (seeded).

use ntk_dynamics::config;
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
    assert_eq!(minimal.kernel.probe_size, 64);
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
