//! End-to-end tests of the `experiment` binary: outputs, determinism, verify, bad input,
//! divergence, interruption (issues: experiment, report, reliability).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    csv_toml, run_bin as run, run_into, spawn_into, stderr, tiny_sine_toml as tiny_config, write,
};

#[test]
fn end_to_end_writes_every_file_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", &tiny_config(tmp.path(), ""));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for out in [&a, &b] {
        let o = run_into(&cfg, out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in [
        "config.toml",
        "metrics.csv",
        "predictions.csv",
        "summary.json",
        "report.md",
        "report.json",
        "loss.png",
        "divergence.png",
        "kernel_drift.png",
        "param_drift.png",
        "predictions.png",
        "spectrum.png",
        "kernels.png",
        "kernels/analytic_ntk.npy",
        "kernels/analytic_nngp.npy",
        "kernels/analytic_ntk_test_train.npy",
        "kernels/empirical_ntk_init.npy",
        "kernels/empirical_ntk_final.npy",
    ] {
        let p = a.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 0,
            "missing {f}"
        );
    }
    assert!(!a.join("INCOMPLETE").exists());
    let metrics = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    for col in [
        "step",
        "time",
        "network_train_loss",
        "network_test_loss",
        "linearized_train_loss",
        "kernel_analytic_test_loss",
        "kernel_empirical_train_loss",
        "rmse_network_linearized_train",
        "rmse_network_kernel_analytic_test",
        "ntk_rel_drift",
        "ntk_kernel_distance",
        "ntk_lambda_max",
        "ntk_rel_drift_layer0",
        "ntk_rel_drift_layer2",
        "param_rel_change",
        "param_rel_change_layer1",
    ] {
        assert!(header.contains(&col), "metrics.csv lacks {col}: {header:?}");
    }
    assert_eq!(metrics.lines().count(), 1 + 7, "checkpoints at 0,5,…,30");
    // Input sensitivity: ‖∂f/∂x‖ of the raw outputs (non-zero at t = 0) and its change since
    // t = 0 (zero there), for network and twin, which coincide at t = 0.
    let row0: Vec<&str> = metrics.lines().nth(1).unwrap().split(',').collect();
    let col = |name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).unwrap();
        row0[i].parse().unwrap()
    };
    assert!(col("network_input_grad_norm") > 0.0);
    assert_eq!(
        col("network_input_grad_norm"),
        col("linearized_input_grad_norm")
    );
    assert_eq!(col("network_input_grad_change"), 0.0);
    assert_eq!(col("linearized_input_grad_change"), 0.0);
    let preds = std::fs::read_to_string(a.join("predictions.csv")).unwrap();
    assert_eq!(
        preds.lines().next().unwrap(),
        "split,index,output,x,target,network,linearized,kernel_analytic,kernel_empirical"
    );
    assert_eq!(preds.lines().count(), 1 + 8 + 12);
    // .npy header that numpy accepts
    let npy = std::fs::read(a.join("kernels/analytic_ntk.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    assert!(String::from_utf8_lossy(&npy[10..10 + hlen]).contains("'shape': (8, 8)"));
    assert_eq!(npy.len(), 10 + hlen + 8 * 64);
    // determinism
    for f in [
        "metrics.csv",
        "predictions.csv",
        "config.toml",
        "kernels/empirical_ntk_final.npy",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between identical runs"
        );
    }
}

#[test]
fn out_into_non_empty_directory_is_refused_and_runs_never_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", &tiny_config(tmp.path(), ""));
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "precious").unwrap();
    let o = run_into(&cfg, &busy);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(busy.join("keep.txt")).unwrap(),
        "precious"
    );
    // two runs into the results root get two directories
    for _ in 0..2 {
        let o = run(&[cfg.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let runs = std::fs::read_dir(tmp.path().join("results/tiny"))
        .unwrap()
        .count();
    assert_eq!(runs, 2);
}

#[test]
fn steps_zero_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "t.toml",
        &tiny_config(tmp.path(), "").replace("steps = 30", "steps = 0"),
    );
    let out = tmp.path().join("o");
    let o = run_into(&cfg, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn divergent_learning_rate_is_recorded_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_text = tiny_config(tmp.path(), "")
        .replace("learning_rate = 0.05", "lr_scale = 4.0")
        .replace("steps = 30", "steps = 200");
    let cfg = write(tmp.path(), "d.toml", &cfg_text);
    let out = tmp.path().join("o");
    let o = run_into(&cfg, &out);
    assert!(
        o.status.success(),
        "a diverged track is a valid result: {}",
        stderr(&o)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["tracks"]["linearized"]["diverged_at_step"].is_u64(),
        "linearized twin must be marked diverged: {summary}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("diverged at step"), "report must say so");
    assert!(out.join("loss.png").is_file());
}

#[test]
fn sigint_stops_at_a_step_boundary_and_writes_an_interrupted_report() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "long.toml",
        &tiny_config(tmp.path(), "")
            .replace("steps = 30", "steps = 100000000")
            .replace("every = 5", "every = 1000")
            .replace("kernel_every = 10", "kernel_every = 1000"),
    );
    let out = tmp.path().join("o");
    let mut child = spawn_into(&cfg, &out);
    wait_for(&out.join("INCOMPLETE"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let rj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rj["status"], "interrupted");
    assert!(!out.join("INCOMPLETE").exists());
    assert!(
        std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .count()
            >= 2
    );
}

fn wait_for(p: &Path) {
    for _ in 0..600 {
        if p.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{} never appeared", p.display());
}

#[test]
fn sigkill_leaves_earlier_runs_intact_and_the_partial_run_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", &tiny_config(tmp.path(), ""));
    let done = tmp.path().join("done");
    assert!(run_into(&cfg, &done).status.success());
    let snapshot: Vec<(PathBuf, Vec<u8>)> = walk(&done)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let long = write(
        tmp.path(),
        "long.toml",
        &tiny_config(tmp.path(), "")
            .replace("steps = 30", "steps = 100000000")
            .replace("every = 5", "every = 1000")
            .replace("kernel_every = 10", "kernel_every = 1000"),
    );
    let partial = tmp.path().join("partial");
    let mut child = spawn_into(&long, &partial);
    wait_for(&partial.join("INCOMPLETE"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for (p, b) in snapshot {
        assert_eq!(std::fs::read(&p).unwrap(), b, "{} changed", p.display());
    }
    assert!(
        partial.join("INCOMPLETE").exists(),
        "the killed run must be identifiable as incomplete"
    );
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

/// Bad configs through the binary: exit code 2, a message naming the file, the key (and its
/// line), nothing created. (The full table of rejected configs runs in-process in
/// `tests/config.rs`.)
#[test]
fn bad_configs_are_rejected_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_config(tmp.path(), "");
    let cases: Vec<(String, &[&str])> = vec![
        (base.replace("[model]", "[model\n"), &["TOML", "line"]),
        (
            base.replace("width = 64", "widht = 64"),
            &["widht", "line 11"],
        ),
        (
            base.replace("width = 64", "width = 0"),
            &["model.width", "= 0", "[1, 1048576]", ":11"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let cfg = write(tmp.path(), &format!("bad{i}.toml"), text);
        let o = run(&[cfg.to_str().unwrap(), "--quiet"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert!(
            err.contains(&format!("bad{i}.toml")),
            "case {i} must name the file: {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "case {i}: {err:?} lacks {n:?}");
        }
        assert!(
            !tmp.path().join("results").exists(),
            "case {i} created output"
        );
    }
    let o = run(&[tmp.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml"));
}

#[test]
fn bad_data_files_are_rejected_with_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_cfg = |path: &Path, extra: &str| csv_toml(tmp.path(), path, extra);
    let cases: Vec<(&str, &str, &str, &[&str])> = vec![
        ("ragged.csv", "a,b,y\n1,2,3\n4,5\n", "", &[":3", "2 cells"]),
        (
            "text.csv",
            "a,b,y\n1,2,3\n4,x,6\n",
            "",
            &[":3", "column `b`", "not a number"],
        ),
        (
            "nan.csv",
            "a,b,y\n1,2,3\n4,NaN,6\n",
            "",
            &[":3", "column `b`", "non-finite"],
        ),
        (
            "inf.csv",
            "a,b,y\n1,2,3\n4,inf,6\n",
            "",
            &[":3", "non-finite"],
        ),
        ("empty.csv", "", "", &["empty file"]),
        (
            "notarget.csv",
            "a,b,z\n1,2,3\n4,5,6\n",
            "",
            &["column `y`", "not found"],
        ),
        (
            "const.csv",
            "a,b,y\n1,2,3\n1,5,6\n1,7,1\n1,3,2\n1,0,2\n",
            "test_fraction = 0.0",
            &["column `a`", "constant"],
        ),
        (
            "few.csv",
            "a,b,y\n1,2,3\n2,5,6\n3,7,1\n",
            "n_train = 50\ntest_fraction = 0.0",
            &["n_train = 50", "only 3"],
        ),
    ];
    for (name, content, extra, needles) in cases {
        let data = write(tmp.path(), name, content);
        let cfg = write(tmp.path(), &format!("{name}.toml"), &csv_cfg(&data, extra));
        let o = run(&[cfg.to_str().unwrap(), "--quiet"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name), "{name}: must name the file: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: {err:?} lacks {n:?}");
        }
        assert!(
            !tmp.path().join("results").exists(),
            "{name} created output"
        );
    }
    let cfg = write(
        tmp.path(),
        "nofile.toml",
        &csv_cfg(&tmp.path().join("absent.csv"), ""),
    );
    let o = run(&[cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("absent.csv"));
}

/// `n_test = 0` is valid for every data kind.
#[test]
fn no_test_points_is_valid_for_every_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = write(
        tmp.path(),
        "d.csv",
        "a,b,y\n1,2,3\n2,1,0\n3,5,1\n4,4,2\n5,0,1\n6,2,2\n",
    );
    let base = tiny_config(tmp.path(), "");
    let cases = [
        base.replace("n_test = 12", "n_test = 0"),
        base.replace("kind = \"sine\"", "kind = \"teacher\"\ninput_dim = 3")
            .replace("n_test = 12", "n_test = 0"),
        base.replace(
            "kind = \"sine\"\nn_train = 8\nn_test = 12",
            &format!(
                "kind = \"csv\"\npath = \"{}\"\ntarget = [\"y\"]\ntest_fraction = 0.0",
                csv.display()
            ),
        )
        .replace("probe_size = 6", "probe_size = 4"),
    ];
    for (i, text) in cases.iter().enumerate() {
        let cfg = write(tmp.path(), &format!("n{i}.toml"), text);
        let out = tmp.path().join(format!("o{i}"));
        let o = run_into(&cfg, &out);
        assert!(o.status.success(), "case {i}: {}", stderr(&o));
        let m = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        let row: Vec<&str> = m.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(
            row[3], "",
            "case {i}: the test loss must be empty without test points"
        );
    }
}

#[test]
fn verify_and_collect_take_no_other_job() {
    // Each of these used to drop one of its parts silently.
    for args in [
        vec!["--verify", "a", "--collect", "b"],
        vec!["--verify", "a", "--out", "b"],
        vec!["--verify", "a", "--seed", "3"],
        vec!["--collect", "a", "--out", "b"],
        vec!["--collect", "a", "cfg.toml"],
    ] {
        let o = common::run_bin(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            common::stderr(&o).contains("cannot be used with"),
            "{args:?}: {}",
            common::stderr(&o)
        );
    }
}
