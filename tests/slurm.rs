//! A sweep as a Slurm job array on a real single-node Slurm (Debian's slurmctld/slurmd/munge,
//! brought up by `tests/slurm/slurm-single-node.sh`, torn down by PID on every exit path):
//! submitted with `--slurm`, one task killed on purpose while it runs, collected (the killed
//! point is named with the state Slurm recorded), resubmitted (only that point runs again), and
//! compared with the same sweep run locally: identical point files and an identical `sweep.csv`
//! apart from wall times.
//!
//! Installing and starting daemons changes the machine, so it is opt-in: it runs only with
//! `NTK_SLURM_TESTS=1` in the environment (`.ci/run` sets it), and needs root and the Debian
//! package mirror (CI has both). Where any is missing the test says so loudly on stderr and does
//! not pretend to have run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/slurm/slurm-single-node.sh"
);

fn loud_skip(why: &str) {
    eprintln!(
        "\n{}\nSLURM INTEGRATION TEST NOT RUN: {why}\n{}\n",
        "!".repeat(78),
        "!".repeat(78)
    );
}

/// The environment variable that opts in to installing and starting a single-node Slurm.
const OPT_IN: &str = "NTK_SLURM_TESTS";

/// Whether the Slurm tests may change the machine (else a loud skip).
fn opted_in() -> bool {
    let yes = std::env::var(OPT_IN).is_ok_and(|v| v == "1");
    if !yes {
        loud_skip(&format!(
            "{OPT_IN}=1 not set (the test installs slurmctld, slurmd and munge with apt-get and starts them; .ci/run sets it)"
        ));
    }
    yes
}

/// One cluster at a time: the tests of this file start and stop the same daemons.
static CLUSTER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Stops the daemons when dropped (also on panic).
struct Cluster;

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").status();
    }
}

fn script(step: &str) -> bool {
    Command::new(SCRIPT)
        .arg(step)
        .status()
        .is_ok_and(|s| s.success())
}

fn squeue(args: &[&str]) -> String {
    Command::new("squeue")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn job_id(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("slurm/jobs.json")).unwrap())
            .unwrap();
    v["job_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn run(args: &[&str]) -> std::process::Output {
    common::run_bin(args)
}

/// `sweep.csv` without its wall-time column.
fn csv_without_wall_time(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let wall = header.iter().position(|h| *h == "wall_s").unwrap();
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != wall)
                .map(|(_, c)| c)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn summary_without_timings(p: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("timings_s");
    v
}

#[test]
fn a_sweep_runs_as_a_slurm_array_survives_a_killed_task_and_equals_the_local_sweep() {
    let _lock = CLUSTER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !opted_in() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud_skip("not root (the single-node Slurm needs root to install and run its daemons)");
        return;
    }
    if !script("install") {
        loud_skip("could not install slurmctld/slurmd/munge with apt-get (no package mirror?)");
        return;
    }
    let _cluster = Cluster;
    assert!(script("start"), "the single-node Slurm did not start");

    // Under the target directory: a real filesystem the (single) node shares with us.
    let base =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    // Points 2 and 3 (width 1024, 400 steps) run for seconds: long enough to kill one.
    let cfg = common::write(
        &base,
        "sweep.toml",
        "[experiment]\nname = \"slurm_sweep\"\n[data]\nkind = \"sine\"\nn_train = 32\nn_test = 32\n[model]\nwidth = 16\n[training]\nlr_scale = 0.5\nsteps = 400\n[logging]\nevery = 50\nkernel_every = 100\n[sweep]\nseeds = 2\n[sweep.vary]\n\"model.width\" = [16, 1024]\n[slurm]\nmax_parallel = 1\ncpus_per_task = 1\n",
    );
    let cfg_s = cfg.to_str().unwrap();
    let local = base.join("local");
    let o = run(&[cfg_s, "--out", local.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "local sweep: {}", common::stderr(&o));

    // Submit, then kill task 3 while it runs.
    let dir = base.join("slurm");
    let dir_s = dir.to_str().unwrap();
    let o = run(&[cfg_s, "--out", dir_s, "--slurm", "--quiet"]);
    assert!(o.status.success(), "submit: {}", common::stderr(&o));
    let script_text = std::fs::read_to_string(dir.join("slurm/sweep.sbatch")).unwrap();
    assert!(
        script_text.contains("#SBATCH --array=0-3%1"),
        "{script_text}"
    );
    assert!(script_text.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""));
    let id = job_id(&dir);
    let task3 = format!("{id}_3");
    wait_until("task 3 to run", Duration::from_secs(180), || {
        squeue(&["-h", "-j", &task3, "-o", "%T"]) == "RUNNING"
    });
    assert!(Command::new("scancel")
        .arg(&task3)
        .status()
        .unwrap()
        .success());
    wait_until("the array to end", Duration::from_secs(180), || {
        squeue(&["-h", "-j", &id]).is_empty()
    });

    // Collect: the killed point is named, with what Slurm recorded.
    let o = run(&["--collect", dir_s, "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let err = common::stderr(&o);
    assert!(err.contains("p0003") && err.contains("CANCELLED"), "{err}");
    let md = std::fs::read_to_string(dir.join("sweep.md")).unwrap();
    assert!(
        md.contains("3 completed") && md.contains("CANCELLED"),
        "{md}"
    );
    assert!(dir.join("INCOMPLETE").exists());
    let before: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(dir.join(format!("rows/p{i:04}.json"))).unwrap())
        .collect();

    // Resubmit and wait: only the missing point runs.
    let o = run(&[cfg_s, "--out", dir_s, "--slurm", "--wait", "--quiet"]);
    assert!(o.status.success(), "resume: {}", common::stderr(&o));
    for (i, b) in before.iter().enumerate() {
        let now = std::fs::read(dir.join(format!("rows/p{i:04}.json"))).unwrap();
        assert_eq!(&now, b, "point {i} ran again");
    }
    assert!(!dir.join("INCOMPLETE").exists());
    let sweep_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(sweep_json["slurm"]["job_ids"].as_array().unwrap().len(), 2);

    // The same sweep as the local one.
    assert_eq!(csv_without_wall_time(&dir), csv_without_wall_time(&local));
    for p in std::fs::read_dir(&local).unwrap().flatten() {
        let name = p.file_name().to_string_lossy().to_string();
        if !name.starts_with('p') || !p.path().is_dir() {
            continue;
        }
        for f in ["config.toml", "metrics.csv", "predictions.csv"] {
            assert_eq!(
                std::fs::read(p.path().join(f)).unwrap(),
                std::fs::read(dir.join(&name).join(f)).unwrap(),
                "{name}/{f}"
            );
        }
        assert_eq!(
            summary_without_timings(&p.path().join("summary.json")),
            summary_without_timings(&dir.join(&name).join("summary.json"))
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

/// A small image data set in IDX files (90 training and 20 test images of 6×6, 3 classes).
fn idx_files(dir: &Path) -> [PathBuf; 4] {
    use ntk_dynamics::data::idx::write_idx;
    let mut paths = Vec::new();
    for (name, n) in [("train", 90usize), ("test", 20)] {
        let px: Vec<u8> = (0..n * 36)
            .map(|p| ((p * 37 + p / 36 * 11) % 256) as u8)
            .collect();
        let img = dir.join(format!("{name}-images"));
        write_idx(&img, &[n, 6, 6], &px, false).unwrap();
        let lab = dir.join(format!("{name}-labels"));
        write_idx(
            &lab,
            &[n],
            &(0..n).map(|i| (i % 3) as u8).collect::<Vec<_>>(),
            false,
        )
        .unwrap();
        paths.push(img);
        paths.push(lab);
    }
    [
        paths[0].clone(),
        paths[1].clone(),
        paths[2].clone(),
        paths[3].clone(),
    ]
}

fn kernel_config(base: &Path, data: &[PathBuf; 4], store: &str) -> PathBuf {
    common::write(
        base,
        &format!("{store}.toml"),
        &format!(
            "[experiment]\nname = \"slurm_kernel\"\n[data]\nkind = \"idx\"\ntrain_images = \"{}\"\ntrain_labels = \"{}\"\ntest_images = \"{}\"\ntest_labels = \"{}\"\n\
             [model]\nwidth = 32\n[training]\nlearning_rate = 0.5\nsteps = 20\n[kernel]\nform = \"trace\"\nsolutions = [\"analytic\", \"empirical\"]\n\
             solver = \"iterative\"\nstore = \"disk\"\nstore_dir = \"{}\"\nkeep_store = true\nblock_size = 16\nprobe_size = 8\n\
             [logging]\nevery = 10\nkernel_every = 10\n[outputs]\ndir = \"{}\"\n[slurm]\ntasks = 3\ncpus_per_task = 1\n",
            data[0].display(),
            data[1].display(),
            data[2].display(),
            data[3].display(),
            base.join(store).display(),
            base.join("results").display(),
        ),
    )
}

#[test]
fn a_runs_kernel_blocks_on_a_slurm_array_equal_the_one_process_kernel_bit_for_bit() {
    let _lock = CLUSTER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !opted_in() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud_skip("not root (the single-node Slurm needs root to install and run its daemons)");
        return;
    }
    if !script("install") {
        loud_skip("could not install slurmctld/slurmd/munge with apt-get (no package mirror?)");
        return;
    }
    let _cluster = Cluster;
    assert!(script("start"), "the single-node Slurm did not start");
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("slurm-kernel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = idx_files(&base);

    // One process: every block, then the run.
    let cfg_a = kernel_config(&base, &data, "store_a");
    let run_a = base.join("run_a");
    let o = run(&[
        cfg_a.to_str().unwrap(),
        "--out",
        run_a.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "one process: {}", common::stderr(&o));

    // The same run with its blocks split: one shard by hand first (a re-submission must not
    // recompute what is stored), then the rest as a Slurm array followed by the run.
    let cfg_b = kernel_config(&base, &data, "store_b");
    let o = run(&[cfg_b.to_str().unwrap(), "--kernel-shard", "1/3"]);
    assert!(o.status.success(), "shard: {}", common::stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        said.contains("kernel shard 1/3") && said.contains("of 16 stored"),
        "{said}"
    );
    let stamp = |dir: &Path| -> std::collections::BTreeMap<String, std::time::SystemTime> {
        files(dir)
            .keys()
            .filter(|k| k.ends_with(".bin"))
            .map(|k| {
                (
                    k.clone(),
                    std::fs::metadata(dir.join(k)).unwrap().modified().unwrap(),
                )
            })
            .collect()
    };
    let first = stamp(&base.join("store_b"));
    assert!(
        !first.is_empty() && first.len() < 24,
        "{} blocks after one shard",
        first.len()
    );
    let run_b = base.join("run_b");
    let o = run(&[
        cfg_b.to_str().unwrap(),
        "--out",
        run_b.to_str().unwrap(),
        "--slurm",
        "--wait",
        "--quiet",
    ]);
    assert!(
        o.status.success(),
        "slurm: {}{}",
        String::from_utf8_lossy(&o.stdout),
        common::stderr(&o)
    );
    let after = stamp(&base.join("store_b"));
    for (k, t) in &first {
        assert_eq!(after.get(k), Some(t), "{k} was computed again");
    }
    // The assembled kernel is the one-process kernel, bit for bit, block file by block file.
    let (a, b) = (files(&base.join("store_a")), files(&base.join("store_b")));
    let blocks = |m: &std::collections::BTreeMap<String, Vec<u8>>| {
        m.iter()
            .filter(|(k, _)| k.ends_with(".bin") || k.ends_with("manifest.json"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        blocks(&a).len(),
        24 + 6,
        "24 blocks (the analytic units fill the NNGP and the NTK) and 6 manifests"
    );
    assert_eq!(blocks(&a), blocks(&b));
    // And the run continued from it: the same figures as the one-process run.
    for f in ["metrics.csv", "predictions.csv"] {
        assert_eq!(
            std::fs::read(run_a.join(f)).unwrap(),
            std::fs::read(run_b.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        summary_without_timings(&run_a.join("summary.json")),
        summary_without_timings(&run_b.join("summary.json"))
    );
    let _ = std::fs::remove_dir_all(&base);
}
