//! Paths in configs: relative paths follow the config file, so a config runs from any working
//! directory; a run's resolved `config.toml` records its paths relative to the run directory, so
//! a results tree moved elsewhere still verifies (from any directory); a sweep's plan is
//! rewritten for the sweep directory; and a run recorded before the rule (paths relative to its
//! working directory) is still read, the working directory recovered from where it sits.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ntk_dynamics::config;
use ntk_dynamics::data::DataSource;

fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(common::BIN)
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

/// A project: `proj/data/d.csv` and `proj/cfg/c.toml` (data `../data/d.csv`, outputs `../out`).
fn project(root: &Path, extra: &str) -> PathBuf {
    let proj = root.join("proj");
    std::fs::create_dir_all(proj.join("data")).unwrap();
    std::fs::create_dir_all(proj.join("cfg")).unwrap();
    let x = common::gauss(30 * 2, 4);
    let mut csv = String::from("a,b,y\n");
    for i in 0..30 {
        csv += &format!(
            "{},{},{}\n",
            x[2 * i],
            x[2 * i + 1],
            x[2 * i] - x[2 * i + 1]
        );
    }
    std::fs::write(proj.join("data/d.csv"), csv).unwrap();
    common::write(
        &proj.join("cfg"),
        "c.toml",
        &format!(
            "[experiment]\nname = \"p\"\n[data]\nkind = \"csv\"\npath = \"../data/d.csv\"\n\
             target = [\"y\"]\n[model]\nwidth = 16\n[training]\nsteps = 4\n[logging]\nevery = 2\n\
             kernel_every = 2\n[outputs]\ndir = \"../out\"\n{extra}"
        ),
    )
}

#[test]
fn a_config_runs_from_any_directory_and_its_run_verifies_after_the_tree_moves() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path(), "");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let o = run_in(&elsewhere, &["../proj/cfg/c.toml", "--quiet"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let runs: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("proj/out/p"))
        .expect("outputs.dir = \"../out\" resolved against the config's directory")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let resolved = std::fs::read_to_string(runs[0].join("config.toml")).unwrap();
    assert!(
        resolved.contains("path = \"../../../data/d.csv\""),
        "paths relative to the run directory: {resolved}"
    );
    assert!(resolved.contains(&format!(
        "#   {}",
        tmp.path().join("proj/data/d.csv").display()
    )));
    // Move the whole tree (as a clone elsewhere would) and verify from a third directory.
    std::fs::rename(tmp.path().join("proj"), tmp.path().join("moved")).unwrap();
    let run = tmp
        .path()
        .join("moved/out/p")
        .join(runs[0].file_name().unwrap());
    let o = run_in(&elsewhere, &["--verify", run.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", common::stderr(&o));
    assert!(out.contains("bitwise identical"), "{out}");
}

#[test]
fn a_sweep_plan_is_rewritten_for_its_directory_and_its_shards_reopen_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = project(
        tmp.path(),
        "[sweep]\nseeds = 2\n[sweep.vary]\n\"model.width\" = [8, 16]\n",
    );
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let sweep_dir = tmp.path().join("sw");
    let o = run_in(
        &elsewhere,
        &[
            cfg.to_str().unwrap(),
            "--out",
            sweep_dir.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let plan = std::fs::read_to_string(sweep_dir.join("sweep.toml")).unwrap();
    assert!(plan.contains("path = \"../proj/data/d.csv\""), "{plan}");
    // A shard started from the plan itself (as a Slurm array task is) finds the same plan.
    let o = run_in(
        tmp.path(),
        &[
            sweep_dir.join("sweep.toml").to_str().unwrap(),
            "--out",
            sweep_dir.to_str().unwrap(),
            "--shard",
            "0/1",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
}

#[test]
fn a_run_recorded_with_working_directory_paths_is_read_from_anywhere() {
    // The layout such a run has: <working directory>/<outputs.dir>/<name>/<run>/config.toml,
    // with data paths relative to that working directory.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkout");
    std::fs::create_dir_all(root.join("inputs")).unwrap();
    std::fs::write(root.join("inputs/d.csv"), "a,y\n1,2\n3,4\n5,6\n").unwrap();
    let run = root.join("results/old/20250101T000000Z-seed0");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        "[experiment]\nname = \"old\"\n[data]\nkind = \"csv\"\npath = \"inputs/d.csv\"\n\
         target = [\"y\"]\n[outputs]\ndir = \"results\"\n",
    )
    .unwrap();
    let (exp, notes) = config::paths::load_recorded(&run).unwrap();
    let DataSource::Csv(c) = &exp.data.source else {
        panic!()
    };
    assert_eq!(c.path, root.join("inputs/d.csv"));
    assert_eq!(exp.outputs.dir, run.join("results"));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("data.path"), "{}", notes[0]);
}

#[test]
fn relative_paths_follow_the_config_file_not_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = project(tmp.path(), "");
    let exp = config::load(&cfg).unwrap();
    let DataSource::Csv(c) = &exp.data.source else {
        panic!()
    };
    assert_eq!(c.path, tmp.path().join("proj/data/d.csv"));
    assert_eq!(exp.outputs.dir, tmp.path().join("proj/out"));
    // A missing file is named where it was looked for.
    std::fs::remove_file(tmp.path().join("proj/data/d.csv")).unwrap();
    let e = config::load(&cfg)
        .and_then(|e| ntk_dynamics::data::load(&e.data, 0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&tmp.path().join("proj/data/d.csv").display().to_string()),
        "{e}"
    );
}

#[test]
fn verify_names_a_changed_input_file_before_re_running_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = project(tmp.path(), "");
    let run = tmp.path().join("run");
    let o = common::run_into(&cfg, &run);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let report = common::read_json(&run.join("report.json"));
    let data = tmp.path().join("proj/data/d.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    assert_eq!(
        report["inputs"]["data.path"]["bytes"].as_u64(),
        Some(text.len() as u64)
    );
    assert_eq!(report["inputs"]["data.path"]["file"], "../proj/data/d.csv");
    // One changed cell.
    let edited = text.replacen(',', ",9", 1);
    std::fs::write(&data, &edited).unwrap();
    let o = common::run_bin(&["--verify", run.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("input data changed:")
            && out.contains("d.csv")
            && out.contains("nothing was re-run"),
        "{out}"
    );
    assert!(!out.contains("metrics.csv"), "nothing compared: {out}");
    std::fs::remove_file(&data).unwrap();
    let o = common::run_bin(&["--verify", run.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("input data missing:"), "{out}");
}
