//! `--verify` (integrity, reproduction, comparison) and determinism across thread counts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_bin, run_into, stderr, tiny_sine_toml, write, BIN};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn sha256(p: &Path) -> String {
    ntk_dynamics::report::repro::sha256_hex(&std::fs::read(p).unwrap())
}

/// Rewrites `report.json` with `f` applied to its JSON.
fn edit_report(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("report.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Multiplies the `network_train_loss` of the last metrics row by `factor` and records the new
/// hash (so integrity holds and only the comparison judges it).
fn perturb_loss(dir: &Path, factor: f64) {
    let p = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let col = lines[0]
        .split(',')
        .position(|c| c == "network_train_loss")
        .unwrap();
    let last = lines.len() - 1;
    let mut cells: Vec<String> = lines[last].split(',').map(String::from).collect();
    cells[col] = format!("{}", cells[col].parse::<f64>().unwrap() * factor);
    lines[last] = cells.join(",");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let h = sha256(&p);
    edit_report(dir, |v| {
        v["files_sha256"]["metrics.csv"] = serde_json::json!(h)
    });
}

#[test]
fn verify_checks_integrity_reproduces_and_compares() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "t.toml", &tiny_sine_toml(tmp.path(), ""));
    let run = tmp.path().join("run");
    assert!(run_into(&cfg, &run).status.success());
    let verify = |dir: &Path| run_bin(&["--verify", dir.to_str().unwrap(), "--quiet"]);

    // same machine: bitwise
    let o = verify(&run);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("bitwise identical"), "{}", stdout(&o));

    // a different fingerprint: numerical comparison, within tolerance …
    edit_report(&run, |v| {
        v["fingerprint"]["cpu"] = serde_json::json!("Some Other CPU")
    });
    perturb_loss(&run, 1.0 + 1e-5);
    let o = verify(&run);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("numerical comparison") && out.contains("within tolerance metrics.csv"),
        "{out}"
    );
    assert!(
        out.contains("network_train_loss") && out.contains("within the tolerances this build sets"),
        "{out}"
    );
    // … and beyond it (f32 tolerance 1e-3 relative)
    perturb_loss(&run, 1.01);
    let o = verify(&run);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("MISMATCH         metrics.csv")
            && stdout(&o).contains("network_train_loss")
    );

    // tampering: a changed, a missing and an extra file are named
    let fresh = tmp.path().join("fresh");
    assert!(run_into(&cfg, &fresh).status.success());
    let p = fresh.join("predictions.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen('0', "1", 1)).unwrap();
    std::fs::remove_file(fresh.join("loss.png")).unwrap();
    std::fs::write(fresh.join("notes.txt"), "mine").unwrap();
    let o = verify(&fresh);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for needle in [
        "changed  predictions.csv",
        "missing  loss.png",
        "extra    notes.txt",
        "NOT reproduced",
    ] {
        assert!(out.contains(needle), "{needle:?} in {out}");
    }

    // not a run: exit 2
    let o = verify(tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a run directory"));
    // no temporary directory left behind
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("ntk-verify-{}", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0);
}

/// Same seed, same machine, any thread count (1, 2, unset): identical bytes.
#[test]
fn outputs_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "t.toml",
        &tiny_sine_toml(tmp.path(), "momentum = 0.5\nbatch_size = 4"),
    );
    let mut dirs = Vec::new();
    for threads in [Some("1"), Some("2"), None] {
        let out = tmp
            .path()
            .join(format!("t{}", threads.unwrap_or("default")));
        let mut c = Command::new(BIN);
        c.args([
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        match threads {
            Some(t) => c.env("RAYON_NUM_THREADS", t),
            None => c.env_remove("RAYON_NUM_THREADS"),
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        dirs.push(out);
    }
    for f in [
        "metrics.csv",
        "predictions.csv",
        "kernels/empirical_ntk_final.npy",
        "kernels/analytic_ntk.npy",
    ] {
        let a = std::fs::read(dirs[0].join(f)).unwrap();
        for d in &dirs[1..] {
            assert_eq!(
                a,
                std::fs::read(d.join(f)).unwrap(),
                "{f} differs in {}",
                d.display()
            );
        }
    }
}

/// Fresh runs of one tiny config to forge, and `--verify` on them.
struct Forgeries {
    tmp: tempfile::TempDir,
    cfg: PathBuf,
}

impl Forgeries {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = write(tmp.path(), "t.toml", &tiny_sine_toml(tmp.path(), ""));
        Forgeries { tmp, cfg }
    }

    /// A finished run directory under `name`.
    fn fresh(&self, name: &str) -> PathBuf {
        let run = self.tmp.path().join(name);
        assert!(run_into(&self.cfg, &run).status.success());
        run
    }

    /// `--verify`'s exit code and output on `dir`.
    fn verify(&self, dir: &Path) -> (Option<i32>, String) {
        let o = run_bin(&["--verify", dir.to_str().unwrap(), "--quiet"]);
        (o.status.code(), stdout(&o))
    }
}

/// A directory cannot talk `--verify` into passing: what it should hold and how closely come
/// from the config and this binary, and its own report.json and report.md are re-derived and
/// compared. Each forgery is named. Here: its figures, report and tolerances edited.
#[test]
fn verify_judges_a_directory_by_its_config_not_by_its_own_report() {
    let f = Forgeries::new();
    // 1. loss × 10 with its hash updated, another CPU recorded, every tolerance widened
    let run = f.fresh("wide");
    perturb_loss(&run, 10.0);
    edit_report(&run, |v| {
        v["fingerprint"]["cpu"] = serde_json::json!("Some Other CPU");
        for (_, file) in v["tolerances"].as_object_mut().unwrap().iter_mut() {
            for (_, t) in file.as_object_mut().unwrap().iter_mut() {
                *t = serde_json::json!({"rtol": 1e300, "atol": 1e300});
            }
        }
    });
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MISMATCH         metrics.csv"), "{out}");
    assert!(
        out.contains("MISMATCH         report.json") && out.contains("tolerance policy"),
        "{out}"
    );
    // 2. a file and its hash entry deleted
    let run = f.fresh("deleted");
    std::fs::remove_file(run.join("predictions.csv")).unwrap();
    edit_report(&run, |v| {
        v["files_sha256"]
            .as_object_mut()
            .unwrap()
            .remove("predictions.csv");
    });
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("MISMATCH         predictions.csv")
            && out.contains("missing from the run directory"),
        "{out}"
    );
    // 3. report.md edited
    let run = f.fresh("md");
    let p = run.join("report.md");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen("**Completed**", "**Completed, verified by hand**", 1),
    )
    .unwrap();
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MISMATCH         report.md"), "{out}");
    // 4. status and seed in report.json edited
    for (name, key, value) in [
        ("status", "status", serde_json::json!("verified")),
        ("seed", "seed", serde_json::json!(7)),
    ] {
        let run = f.fresh(name);
        edit_report(&run, |v| v[key] = value.clone());
        let (code, out) = f.verify(&run);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(
            out.contains("MISMATCH         report.json"),
            "{name}: {out}"
        );
    }
}

/// As above: files added to or removed from the directory with their hash entries.
#[test]
fn verify_judges_the_file_set_by_the_config() {
    let f = Forgeries::new();
    // 5. an extra verified-kind file the config does not write
    let run = f.fresh("extra");
    std::fs::write(run.join("kernels/forged.npy"), b"x").unwrap_or_else(|_| {
        std::fs::create_dir_all(run.join("kernels")).unwrap();
        std::fs::write(run.join("kernels/forged.npy"), b"x").unwrap();
    });
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("kernels/forged.npy") && out.contains("not written by this config"),
        "{out}"
    );
    // 6. a figure and its hash entry deleted; a notes file added with a hash entry
    let run = f.fresh("figures");
    std::fs::remove_file(run.join("loss.png")).unwrap();
    std::fs::write(run.join("notes.txt"), b"verified by hand").unwrap();
    edit_report(&run, |v| {
        let files = v["files_sha256"].as_object_mut().unwrap();
        files.remove("loss.png");
        files.insert(
            "notes.txt".into(),
            serde_json::json!(ntk_dynamics::report::repro::sha256_hex(b"verified by hand")),
        );
    });
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("loss.png") && out.contains("missing from the run directory"),
        "{out}"
    );
    assert!(
        out.contains("notes.txt") && out.contains("not written by this config"),
        "{out}"
    );
}

/// As above: report.json's description of its inputs, whitespace, and swapped figures.
#[test]
fn verify_rederives_the_report_and_compares_figures() {
    let f = Forgeries::new();
    // 7. report.json's description of its own inputs: config digest, config text, input files
    for (name, key, value) in [
        (
            "config_sha256",
            "config_sha256",
            serde_json::json!("0".repeat(64)),
        ),
        (
            "config_toml",
            "config_toml",
            serde_json::json!("[experiment]\nname = \"forged\"\n"),
        ),
        (
            "inputs",
            "inputs",
            serde_json::json!({"data.path": {"bytes": 1, "file": "data.csv", "sha256": "0".repeat(64)}}),
        ),
    ] {
        let run = f.fresh(name);
        edit_report(&run, |v| v[key] = value.clone());
        let (code, out) = f.verify(&run);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.contains(&format!(".{key}:")), "{name}: {out}");
    }
    // 8. whitespace appended to report.md
    let run = f.fresh("md_newline");
    let p = run.join("report.md");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{text}\n")).unwrap();
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("whitespace at the end"), "{out}");
    // 9. a figure replaced by another of the run's figures, its hash updated: on this machine
    // (bytes: one of the same size) and with another CPU recorded (pixels are not judged
    // across machines, the size is: one of another size)
    for other_cpu in [false, true] {
        let run = f.fresh(&format!("swapped_figure_{other_cpu}"));
        let other = if other_cpu {
            "divergence.png"
        } else {
            "param_drift.png"
        };
        std::fs::copy(run.join(other), run.join("loss.png")).unwrap();
        let digest = sha256(&run.join("loss.png"));
        edit_report(&run, |v| {
            v["files_sha256"]["loss.png"] = serde_json::json!(digest);
            if other_cpu {
                v["fingerprint"]["cpu"] = serde_json::json!("Some Other CPU");
            }
        });
        let (code, out) = f.verify(&run);
        assert_eq!(code, Some(1), "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("loss.png"))
            .unwrap_or_default();
        assert!(line.contains("MISMATCH"), "{out}");
        assert!(
            line.contains(if other_cpu {
                "the reproduction's 960×640"
            } else {
                "bytes must be identical"
            }),
            "{out}"
        );
    }
}

/// A run whose figures were drawn by an earlier figure style: its numbers are compared as
/// always, its figures (and report.md's plot list) are not, and the verdict says so; an edited
/// number still fails.
#[test]
fn figures_of_an_earlier_figure_style_are_not_compared_but_numbers_are() {
    let f = Forgeries::new();
    let run = f.fresh("older_style");
    // What an earlier style looks like: other figure bytes (hashes recorded), another plot list.
    std::fs::copy(run.join("divergence.png"), run.join("loss.png")).unwrap();
    let digest = sha256(&run.join("loss.png"));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    std::fs::write(
        run.join("report.md"),
        md.replace("![loss.png](loss.png)\n", ""),
    )
    .unwrap();
    edit_report(&run, |v| {
        v["files_sha256"]["loss.png"] = serde_json::json!(digest);
        v["environment"]
            .as_object_mut()
            .unwrap()
            .remove("figure_style");
    });
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("drawn by figure style 1") && out.contains("not compared"),
        "{out}"
    );
    assert!(!out.contains("MISMATCH"), "{out}");
    perturb_loss(&run, 1.5);
    let (code, out) = f.verify(&run);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("metrics.csv"), "{out}");
}

/// An input file replaced by a named pipe is a changed input, not a read that blocks forever.
#[test]
fn verify_does_not_block_on_an_input_replaced_by_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d.csv");
    let rows: String = (0..40)
        .map(|i| format!("{},{}\n", i as f64 * 0.1, (i as f64 * 0.1).sin()))
        .collect();
    std::fs::write(&data, format!("x,y\n{rows}")).unwrap();
    let cfg = write(
        tmp.path(),
        "c.toml",
        &common::csv_toml(tmp.path(), &data, ""),
    );
    let run = tmp.path().join("run");
    assert!(run_into(&cfg, &run).status.success());
    std::fs::remove_file(&data).unwrap();
    let c = std::ffi::CString::new(data.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let start = std::time::Instant::now();
    let o = run_bin(&["--verify", run.to_str().unwrap(), "--quiet"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("not a regular file"), "{}", stdout(&o));
}
