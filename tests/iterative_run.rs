//! A whole run on the iterative path against the same run on the eigendecomposition path: the
//! network and its twin train identically, and every kernel track (analytic NTK, NNGP,
//! empirical) predicts the same at every logged step and at t = ∞ to within the error the
//! iterative solves report. Also: the kernel stores on disk give the same numbers as in memory,
//! the resolved config re-parses to the same run, the report states how the figures were
//! measured, and combinations the iterative path cannot serve are refused with the reason.

mod common;

use std::path::{Path, PathBuf};

use ntk_dynamics::data::idx::write_idx;

fn idx_data(dir: &Path) -> [PathBuf; 4] {
    let mut out = Vec::new();
    for (name, n) in [("train", 160usize), ("test", 40)] {
        let px: Vec<u8> = (0..n * 25)
            .map(|p| ((p * 53 + (p / 25) * 29 + (p / 25) % 7 * 3) % 251) as u8)
            .collect();
        let img = dir.join(format!("{name}-img"));
        write_idx(&img, &[n, 5, 5], &px, false).unwrap();
        let lab = dir.join(format!("{name}-lab"));
        let labels: Vec<u8> = (0..n).map(|i| ((i * 7) % 3) as u8).collect();
        write_idx(&lab, &[n], &labels, false).unwrap();
        out.push(img);
        out.push(lab);
    }
    [
        out[0].clone(),
        out[1].clone(),
        out[2].clone(),
        out[3].clone(),
    ]
}

fn config(dir: &Path, data: &[PathBuf; 4], kernel: &str) -> String {
    format!(
        r#"[experiment]
name = "it"
seed = 4

[data]
kind = "idx"
train_images = "{}"
train_labels = "{}"
test_images = "{}"
test_labels = "{}"
scaling = "standardize"

[model]
width = 64
depth = 2
b_std = 0.05

[training]
learning_rate = 0.5
steps = 40
batch_size = 32
twin = "parameter"
momentum = 0.5

[kernel]
form = "trace"
solutions = ["analytic", "nngp", "empirical"]
diag_reg = 1e-3
probe_size = 16
{kernel}

[logging]
every = 10
kernel_every = 20

[outputs]
dir = "{}"
"#,
        data[0].display(),
        data[1].display(),
        data[2].display(),
        data[3].display(),
        dir.join("results").display()
    )
}

fn column(h: &[String], name: &str) -> usize {
    h.iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("{name} in {h:?}"))
}

fn run(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let cfg = common::write(dir, &format!("{name}.toml"), toml);
    let out = dir.join(name);
    let o = common::run_into(&cfg, &out);
    assert!(o.status.success(), "{name}: {}", common::stderr(&o));
    out
}

/// Kernel tracks at the final step: within the reported estimate (which bounds them up to
/// round-off; the tolerance is far below any figure of the run), and their t = ∞ test losses.
fn check_kernel_tracks(exact: &Path, iterative: &Path, tol: f64) {
    let (he, pe) = common::read_csv(&exact.join("predictions.csv"));
    let (hi, pi) = common::read_csv(&iterative.join("predictions.csv"));
    let summary = common::read_json(&iterative.join("summary.json"));
    for track in ["kernel_analytic", "kernel_nngp", "kernel_empirical_avg"] {
        let sol = summary["kernel_solutions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["track"] == track)
            .unwrap_or_else(|| panic!("{track}: {summary}"));
        let solver = &sol["solver"];
        assert_eq!(solver["lanczos_converged"], true, "{track}");
        assert_eq!(solver["cg_converged"], true, "{track}");
        let bound = solver["final_step_error_estimate_test"]
            .as_f64()
            .unwrap()
            .max(solver["final_step_error_estimate_train"].as_f64().unwrap())
            .max(tol)
            * 2.0
            + 1e-9;
        let (ce, ci) = (column(&he, track), column(&hi, track));
        let worst = pe
            .iter()
            .zip(&pi)
            .map(|(a, b)| (a[ce].parse::<f64>().unwrap() - b[ci].parse::<f64>().unwrap()).abs())
            .fold(0.0, f64::max);
        assert!(worst <= bound, "{track}: {worst:e} > {bound:e}");
        // t = ∞ test loss.
        let exact_summary = common::read_json(&exact.join("summary.json"));
        let le = exact_summary["kernel_solutions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["track"] == track)
            .unwrap()["test_loss_infinite_time"]
            .as_f64()
            .unwrap();
        let li = sol["test_loss_infinite_time"].as_f64().unwrap();
        assert!(
            (le - li).abs() <= 1e-6 * le.abs().max(1.0),
            "{track}: t = inf loss {le} vs {li}"
        );
    }
}

/// Loss curves of every logged step agree as well (metrics.csv).
fn check_kernel_loss_curves(exact: &Path, iterative: &Path) {
    let me = std::fs::read_to_string(exact.join("metrics.csv")).unwrap();
    let mi = std::fs::read_to_string(iterative.join("metrics.csv")).unwrap();
    let header: Vec<&str> = me.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header,
        mi.lines().next().unwrap().split(',').collect::<Vec<_>>()
    );
    for (le, li) in me.lines().skip(1).zip(mi.lines().skip(1)) {
        for ((h, a), b) in header.iter().zip(le.split(',')).zip(li.split(',')) {
            if h.starts_with("kernel_") && h.ends_with("_loss") {
                let (a, b) = (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap());
                assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3), "{h}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn the_iterative_path_reproduces_the_eigendecomposition_path_within_its_reported_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = idx_data(d);
    let tol = 1e-7;
    let exact = run(d, "exact", &config(d, &data, "solver = \"exact\""));
    let iterative = run(
        d,
        "iterative",
        &config(
            d,
            &data,
            &format!("solver = \"iterative\"\nsolver_tolerance = {tol}\nblock_size = 48\nsharpness_points = 160"),
        ),
    );
    // Training is the same computation on both paths.
    let (he, pe) = common::read_csv(&exact.join("predictions.csv"));
    let (hi, pi) = common::read_csv(&iterative.join("predictions.csv"));
    assert_eq!(he, hi);
    for track in ["network", "linearized"] {
        let (ce, ci) = (column(&he, track), column(&hi, track));
        for (a, b) in pe.iter().zip(&pi) {
            assert_eq!(a[ce], b[ci], "{track}");
        }
    }
    check_kernel_tracks(&exact, &iterative, tol);
    check_kernel_loss_curves(&exact, &iterative);
    let report = std::fs::read_to_string(iterative.join("report.md")).unwrap();
    for needle in [
        "Iterative path",
        "Lanczos",
        "Nyström",
        "probe set (16 points)",
    ] {
        assert!(report.contains(needle), "{needle} not in the report");
    }
    // The resolved config runs the same computation again (from its own directory: its paths
    // are relative to it), with stores of its own.
    let again_cfg = common::write(
        &iterative,
        "again.toml",
        &std::fs::read_to_string(iterative.join("config.toml"))
            .unwrap()
            .replace(".kernel-store", ".kernel-store-again"),
    );
    let again = d.join("again");
    let o = common::run_into(&again_cfg, &again);
    assert!(o.status.success(), "again: {}", common::stderr(&o));
    assert_eq!(
        std::fs::read(iterative.join("metrics.csv")).unwrap(),
        std::fs::read(again.join("metrics.csv")).unwrap()
    );
}

#[test]
fn stores_on_disk_give_the_numbers_of_stores_in_memory_and_are_removed_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = idx_data(d);
    let mem = run(
        d,
        "mem",
        &config(
            d,
            &data,
            "solver = \"iterative\"\nstore = \"memory\"\nblock_size = 40",
        ),
    );
    let store = d.join("store");
    let disk = run(
        d,
        "disk",
        &config(
            d,
            &data,
            &format!(
                "solver = \"iterative\"\nstore = \"disk\"\nstore_dir = \"{}\"\nblock_size = 40",
                store.display()
            ),
        ),
    );
    for f in ["metrics.csv", "predictions.csv"] {
        assert_eq!(
            std::fs::read(mem.join(f)).unwrap(),
            std::fs::read(disk.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        !store.exists() || std::fs::read_dir(&store).unwrap().next().is_none(),
        "store left behind"
    );
}

#[test]
fn combinations_the_iterative_path_cannot_serve_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = idx_data(d);
    for (extra, key, training) in [
        ("solver = \"iterative\"\nform = \"full\"", "kernel.form", ""),
        ("solver = \"iterative\"", "training.twin", "function"),
    ] {
        let mut text = config(d, &data, extra);
        if key == "kernel.form" {
            text = text.replace("form = \"trace\"\n", "");
        }
        if !training.is_empty() {
            text = text.replace("twin = \"parameter\"", &format!("twin = \"{training}\""));
        }
        let cfg = common::write(d, "bad.toml", &text);
        let out = d.join("bad");
        let o = common::run_into(&cfg, &out);
        assert_eq!(o.status.code(), Some(2), "{key}: {}", common::stderr(&o));
        let err = common::stderr(&o);
        assert!(
            err.contains(key) && err.contains("iteratively"),
            "{key}: {err}"
        );
        assert!(err.contains("bad.toml:"), "{key}: no file:line in {err}");
        assert!(!out.exists());
    }
}
