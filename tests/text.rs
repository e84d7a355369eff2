//! Next-character data (issue: language modelling).

mod common;

use ntk_dynamics::data::text::{text_dataset, TextSampling};
use ntk_dynamics::dynamics::cross_entropy;
use rand::{rngs::StdRng, SeedableRng};

const TEXT: &str = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\nThe slings and arrows of outrageous fortune.";

#[test]
fn vocabulary_and_one_hot_round_trip() {
    let mut rng = StdRng::seed_from_u64(0);
    let ds = text_dataset(
        TEXT,
        TextSampling {
            context: 5,
            lowercase: true,
            test_fraction: 0.25,
            n_train: 20,
            n_test: 10,
            validation_fraction: 0.0,
            n_val: 0,
        },
        &mut rng,
        std::path::Path::new("t.txt"),
    )
    .unwrap();
    let info = ds.text.clone().unwrap();
    let mut expect: Vec<char> = TEXT.to_lowercase().chars().collect();
    expect.sort_unstable();
    expect.dedup();
    assert_eq!(
        info.vocabulary, expect,
        "sorted distinct characters, case folded"
    );
    let v = info.vocabulary.len();
    assert_eq!((ds.input_dim, ds.n_outputs), (5 * v, v));
    for ctx in ["to be", "that ", "ion.\n"] {
        let chars: Vec<char> = ctx.chars().collect();
        assert_eq!(info.decode(&info.encode(&chars)), ctx);
    }
    // every training sample is a real 5-character window followed by its next character
    let lower: String = TEXT.to_lowercase();
    for a in 0..ds.n_train() {
        let ctx = info.decode(&ds.x_train[a * 5 * v..(a + 1) * 5 * v]);
        let next = info.vocabulary[ds.y_train[a * v..(a + 1) * v]
            .iter()
            .position(|&y| y == 1.0)
            .unwrap()];
        assert!(
            lower.contains(&format!("{ctx}{next}")),
            "{ctx:?} → {next:?} is not in the text"
        );
    }
}

#[test]
fn train_and_test_contexts_never_overlap() {
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let mut rng = StdRng::seed_from_u64(3);
    let (context, frac) = (4, 0.3);
    let ds = text_dataset(
        &text,
        TextSampling {
            context,
            lowercase: false,
            test_fraction: frac,
            n_train: 100,
            n_test: 50,
            validation_fraction: 0.0,
            n_val: 0,
        },
        &mut rng,
        std::path::Path::new("t.txt"),
    )
    .unwrap();
    let info = ds.text.clone().unwrap();
    let v = info.vocabulary.len();
    let split = (400.0 * (1.0 - frac)) as usize;
    let chars: Vec<char> = text.chars().collect();
    let windows = |x: &[f64], n: usize| -> Vec<String> {
        (0..n)
            .map(|a| info.decode(&x[a * context * v..(a + 1) * context * v]))
            .collect()
    };
    let train_part: String = chars[..split].iter().collect();
    let test_part: String = chars[split..].iter().collect();
    for w in windows(&ds.x_train, ds.n_train()) {
        assert!(train_part.contains(&w));
    }
    for w in windows(&ds.x_test, ds.n_test()) {
        assert!(
            test_part.contains(&w),
            "test window {w:?} must lie in the held-out part"
        );
    }
    assert_eq!(ds.n_train(), 100);
    assert_eq!(ds.n_test(), 50);
}

#[test]
fn uniform_predictor_scores_log2_v_bits() {
    for v in [2usize, 39, 64] {
        let f = vec![0.0; 3 * v];
        let mut y = vec![0.0; 3 * v];
        for a in 0..3 {
            y[a * v + a % v] = 1.0;
        }
        let bits = cross_entropy(&f, &y, v).unwrap() / std::f64::consts::LN_2;
        assert!((bits - (v as f64).log2()).abs() < 1e-12);
    }
}

#[test]
fn tiny_character_model_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let txt = tmp.path().join("t.txt");
    std::fs::write(&txt, TEXT.repeat(3)).unwrap();
    let cfg = tmp.path().join("lm.toml");
    std::fs::write(&cfg, format!("[experiment]\nname = \"lm\"\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 4\nn_train = 40\nn_test = 16\ntest_fraction = 0.2\n[model]\nwidth = 64\n[training]\nloss = \"cross_entropy\"\nlr_scale = 0.5\nsteps = 20\n[kernel]\nsolutions = [\"analytic\"]\nform = \"trace\"\nprobe_size = 8\n[logging]\nevery = 5\nkernel_every = 10\n", txt.display())).unwrap();
    let out = tmp.path().join("o");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_experiment"))
        .args([
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Generated text") && report.contains("bits"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["text_samples"].as_array().unwrap().len(), 4);
    assert!(
        summary["classification"]["classes"]
            .as_array()
            .unwrap()
            .len()
            > 10,
        "vocabulary written in order"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(metrics
        .lines()
        .next()
        .unwrap()
        .contains("network_test_xent"));
    // n-gram baselines (unigram … 5-gram) beside the tracks, and the flags follow from them.
    let c = &summary["classification"];
    let baselines = c["ngram_baselines"].as_array().unwrap();
    assert_eq!(
        baselines
            .iter()
            .map(|b| b["order"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let unigram = baselines[0]["bits_per_char"].as_f64().unwrap();
    assert!(unigram > 0.0 && unigram.is_finite());
    let flags: Vec<String> = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    for (track, bits) in c["test_bits_per_char"].as_object().unwrap() {
        let bits = bits.as_f64().unwrap();
        let flagged = flags.iter().any(|f| f.starts_with(&format!("{track}:")));
        assert_eq!(
            flagged,
            bits >= unigram,
            "{track}: {bits} vs unigram {unigram}"
        );
    }
    let drift = summary["kernel"]["ntk_rel_drift"].as_f64().unwrap();
    assert_eq!(
        flags.iter().any(|f| f.contains("lazy regime")),
        drift >= 0.1
    );
    assert!(report.contains("## Language model") && report.contains("5-gram"));
}
