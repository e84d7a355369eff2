//! Language modelling at scale: the text validation split, the kernel subset, the
//! read-out temperature and early stopping. Oracles: the text itself, brute-force searches and
//! the metrics file recomputed independently.

mod common;

use ntk_dynamics::data::text::{text_dataset, TextSampling};
use ntk_dynamics::dynamics::cross_entropy;
use ntk_dynamics::metrics::fit_temperature;
use rand::{rngs::StdRng, Rng, SeedableRng};

const TEXT: &str = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\nThe slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\nAnd by opposing end them.";

#[test]
fn temperature_is_the_minimum_of_a_brute_force_search() {
    let mut rng = StdRng::seed_from_u64(11);
    for (n, k, scale) in [(50usize, 5usize, 0.05), (80, 12, 3.0), (30, 3, 40.0)] {
        let f: Vec<f64> = (0..n * k)
            .map(|_| scale * rng.random_range(-1.0..1.0))
            .collect();
        // Targets correlated with the outputs so that a finite temperature is optimal.
        let mut y = vec![0.0; n * k];
        for a in 0..n {
            let row = &f[a * k..(a + 1) * k];
            let best = (0..k).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
            let t = if rng.random_bool(0.6) {
                best
            } else {
                rng.random_range(0..k)
            };
            y[a * k + t] = 1.0;
        }
        let (t, x) = fit_temperature(&f, &y, k).unwrap();
        let xent = |t: f64| {
            let s: Vec<f64> = f.iter().map(|v| v / t).collect();
            cross_entropy(&s, &y, k).unwrap()
        };
        // A grid of 20 001 temperatures, log-spaced over [1e-3, 1e3].
        let (tg, xg) = (0..=20_000)
            .map(|i| 10f64.powf(-3.0 + 6.0 * i as f64 / 20_000.0))
            .map(|t| (t, xent(t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!((x - xent(t)).abs() < 1e-12, "reported xent is that of T");
        assert!(x <= xg + 1e-12, "n={n}: golden section {x} vs grid {xg}");
        assert!(
            (t.ln() - tg.ln()).abs() < 2e-3,
            "n={n}: T = {t} vs grid {tg}"
        );
    }
    assert!(fit_temperature(&[], &[], 3).is_none());
    assert!(fit_temperature(&[f64::NAN, 0.0], &[1.0, 0.0], 2).is_none());
}

#[test]
fn validation_contexts_sit_between_training_and_test_text() {
    let text: String = TEXT.repeat(4);
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    let (context, test_fraction, validation_fraction) = (5, 0.2, 0.25);
    let mut rng = StdRng::seed_from_u64(2);
    let split = (chars.len() as f64 * (1.0 - test_fraction)) as usize;
    let train_end = split - (split as f64 * validation_fraction).round() as usize;
    let n_val_available = split - train_end - context;
    let ds = text_dataset(
        &text,
        TextSampling {
            context,
            lowercase: true,
            test_fraction,
            n_train: train_end - context,
            n_test: 20,
            validation_fraction,
            n_val: n_val_available,
        },
        &mut rng,
        std::path::Path::new("t.txt"),
    )
    .unwrap();
    let info = ds.text.clone().unwrap();
    // The n-gram baselines count exactly the training samples: every target from position
    // `context` to the end of the training part, after its (up to) 4 previous characters.
    let expected: Vec<(Vec<char>, char)> = (context..train_end)
        .map(|p| (chars[p.saturating_sub(4)..p].to_vec(), chars[p]))
        .collect();
    assert_eq!(info.train_histories, expected);
    assert_eq!(ds.n_train(), train_end - context, "every training context");
    assert_eq!(ds.n_val(), n_val_available, "every validation context");
    let v = info.vocabulary.len();
    // Windows of the validation part (context and target inside it) are exactly the
    // validation samples; every training sample's window ends before it.
    let window = |x: &[f64], y: &[f64]| -> String {
        let t = y.iter().position(|&b| b == 1.0).unwrap();
        format!("{}{}", info.decode(x), info.vocabulary[t])
    };
    // Every sample of a split as its text window, and the windows ending at `positions`.
    let windows = |x: &[f64], y: &[f64], n: usize| -> Vec<String> {
        (0..n)
            .map(|a| {
                window(
                    &x[a * context * v..(a + 1) * context * v],
                    &y[a * v..(a + 1) * v],
                )
            })
            .collect()
    };
    let ending_at = |positions: std::ops::Range<usize>| -> Vec<String> {
        positions
            .map(|p| chars[p - context..=p].iter().collect())
            .collect()
    };
    assert_eq!(
        windows(&ds.x_val, &ds.y_val, ds.n_val()),
        ending_at(train_end + context..split)
    );
    assert_eq!(
        windows(&ds.x_train, &ds.y_train, ds.n_train()),
        ending_at(context..train_end)
    );
    // Asking for more validation contexts than the part holds is an error naming both.
    let err = text_dataset(
        &text,
        TextSampling {
            context,
            lowercase: true,
            test_fraction,
            n_train: 10,
            n_test: 5,
            validation_fraction,
            n_val: n_val_available + 1,
        },
        &mut rng,
        std::path::Path::new("t.txt"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("data.n_val") && err.contains(&n_val_available.to_string()),
        "{err}"
    );
}

fn lm_toml(
    txt: &std::path::Path,
    data_extra: &str,
    training_extra: &str,
    kernel_extra: &str,
) -> String {
    format!(
        "[experiment]\nname = \"lm\"\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 4\nn_train = 150\nn_test = 40\ntest_fraction = 0.2\n{data_extra}\n[model]\nwidth = 64\n[training]\nloss = \"cross_entropy\"\nlearning_rate = 2.0\nbatch_size = 16\nsteps = 40\n{training_extra}\n[kernel]\nsolutions = [\"analytic\"]\nform = \"trace\"\nprobe_size = 8\n{kernel_extra}\n[logging]\nevery = 10\nkernel_every = 20\n",
        txt.display()
    )
}

#[test]
fn refused_kernel_subset_and_validation_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let txt = common::write(tmp.path(), "t.txt", &TEXT.repeat(4));
    let cases = [
        (
            "",
            "twin = \"function\"",
            "train_subset = 50",
            "training.twin",
        ),
        ("", "", "train_subset = 151", "kernel.train_subset"),
        ("", "", "train_subset = 0", "kernel.train_subset"),
        ("", "", "train_subset = 5", "kernel.probe_size"),
        ("n_val = 10", "", "", "data.n_val"),
        (
            "validation_fraction = 1.0",
            "",
            "",
            "data.validation_fraction",
        ),
    ];
    for (data, training, kernel, key) in cases {
        let cfg = common::write(tmp.path(), "c.toml", &lm_toml(&txt, data, training, kernel));
        let o = common::run_into(&cfg, &tmp.path().join("never"));
        assert_eq!(o.status.code(), Some(2), "{data} {training} {kernel}");
        assert!(
            common::stderr(&o).contains(key),
            "{key}: {}",
            common::stderr(&o)
        );
        assert!(!tmp.path().join("never").exists(), "nothing written");
    }
    let sine = common::tiny_sine_toml(tmp.path(), "center_outputs = true").replace(
        "[kernel]\nprobe_size = 6",
        "[kernel]\ntrain_subset = 8\nprobe_size = 4",
    );
    let cfg = common::write(tmp.path(), "s.toml", &sine);
    let o = common::run_into(&cfg, &tmp.path().join("never"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("training.center_outputs"),
        "{}",
        common::stderr(&o)
    );
}

/// Early stopping, recomputed from metrics.csv (`head`, `rows`): the checkpoint with the
/// lowest calibrated validation cross-entropy (the first of ties), and its calibrated test
/// figure, as summary.json reports them.
fn check_early_stopping(summary: &serde_json::Value, head: &[String], rows: &[Vec<String>]) {
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let early = &summary["classification"]["early_stopped"];
    for track in ["network", "linearized", "kernel_analytic"] {
        let val = col(&format!("{track}_val_xent_calibrated"));
        let best = rows
            .iter()
            .filter(|r| !r[val].is_empty())
            .min_by(|a, b| {
                let (x, y): (f64, f64) = (a[val].parse().unwrap(), b[val].parse().unwrap());
                x.total_cmp(&y)
            })
            .unwrap();
        let e = &early[track];
        assert_eq!(
            e["step"].as_u64().unwrap().to_string(),
            best[col("step")],
            "{track}"
        );
        let test: f64 = best[col(&format!("{track}_test_xent_calibrated"))]
            .parse()
            .unwrap();
        let bits = e["test_bits_per_char"].as_f64().unwrap();
        assert!(
            (bits - test / std::f64::consts::LN_2).abs() < 1e-12,
            "{track}"
        );
        let t: f64 = best[col(&format!("{track}_temperature"))].parse().unwrap();
        // serde_json parses floats to within one ulp.
        assert!(
            (e["temperature"].as_f64().unwrap() - t).abs() <= 1e-12 * t,
            "{track}"
        );
        // The fitted temperature never does worse on validation than T = 1.
        let raw: f64 = best[col(&format!("{track}_val_xent"))].parse().unwrap();
        let cal: f64 = best[val].parse().unwrap();
        assert!(cal <= raw + 1e-12, "{track}: {cal} vs {raw}");
    }
}

/// Per-context bits of a run in `out`: one row per test context; each track's mean is its
/// early-stopped test bits/char and each n-gram column's mean its baseline (computed by other
/// code: the cross-entropy over all contexts, the baseline's own sum); the paired comparison is
/// the mean of the per-context differences.
fn check_context_bits(out: &std::path::Path, summary: &serde_json::Value, report: &str) {
    let early = &summary["classification"]["early_stopped"];
    let (bhead, brows) = common::read_csv(&out.join("test_bits_per_context.csv"));
    assert_eq!(brows.len(), 40);
    let mean = |name: &str| -> f64 {
        let c = bhead.iter().position(|h| h == name).unwrap();
        brows
            .iter()
            .map(|r| r[c].parse::<f64>().unwrap())
            .sum::<f64>()
            / brows.len() as f64
    };
    for track in ["network", "linearized", "kernel_analytic"] {
        let bits = early[track]["test_bits_per_char"].as_f64().unwrap();
        assert!(
            (mean(track) - bits).abs() < 1e-9 * bits,
            "{track}: {} vs {bits}",
            mean(track)
        );
    }
    let baselines = summary["classification"]["ngram_baselines"]
        .as_array()
        .unwrap();
    for b in baselines {
        let order = b["order"].as_u64().unwrap();
        let bits = b["bits_per_char"].as_f64().unwrap();
        assert!(
            (mean(&format!("ngram{order}")) - bits).abs() < 1e-12 * bits,
            "{order}"
        );
    }
    // The paired comparison is the mean of the per-context differences.
    let paired = &summary["classification"]["paired_vs_network"];
    let d = paired["ngram5"]["mean_difference_bits"].as_f64().unwrap();
    assert!((d - (mean("network") - mean("ngram5"))).abs() < 1e-9);
    assert_eq!(paired["ngram5"]["context_chars"], 4);
    assert!(report.contains("Paired on the same 40 test contexts"));
}

#[test]
fn subset_run_trains_on_all_points_and_early_stops_on_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let txt = common::write(tmp.path(), "t.txt", &TEXT.repeat(4));
    let cfg = common::write(
        tmp.path(),
        "c.toml",
        &lm_toml(
            &txt,
            "validation_fraction = 0.2\nn_val = 30",
            "momentum = 0.5",
            "train_subset = 40",
        ),
    );
    let out = tmp.path().join("o");
    let o = common::run_into(&cfg, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let summary = common::read_json(&out.join("summary.json"));
    assert_eq!(summary["n_train"], 150);
    assert_eq!(summary["kernel_train_subset"], 40);
    // η_c = 2(1+μ)·m·K/λ_max on the subset's full kernel, and the step-0 sharpness is η/η_c·…
    let (eta, eta_c) = (
        summary["learning_rate"].as_f64().unwrap(),
        summary["critical_learning_rate"].as_f64().unwrap(),
    );
    let (head, rows) = common::read_csv(&out.join("metrics.csv"));
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let k = summary["n_outputs"].as_u64().unwrap() as f64;
    let lambda0: f64 = rows[0][col("ntk_lambda_max_full")].parse().unwrap();
    assert!((eta_c - 2.0 * 1.5 * 40.0 * k / lambda0).abs() < 1e-9 * eta_c);
    let sharp0: f64 = rows[0][col("sharpness_ratio")].parse().unwrap();
    assert!((sharp0 - eta / eta_c).abs() < 1e-9 * sharp0.max(1e-300));
    // Train figures are on the subset: predictions.csv holds its 40 training rows per output.
    let (phead, prow) = common::read_csv(&out.join("predictions.csv"));
    let split = phead.iter().position(|h| h == "split").unwrap();
    let train_rows = prow.iter().filter(|r| r[split] == "train").count();
    assert_eq!(train_rows as f64, 40.0 * k);
    check_early_stopping(&summary, &head, &rows);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("kernel.train_subset") && report.contains("Early stopped"));
    assert!(report.contains("computed in parameter space"));
    check_context_bits(&out, &summary, &report);
}
