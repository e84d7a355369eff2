//! Reliability, round two (through the binary): no panics on derived quantities, sizes checked
//! before allocation, nothing accepted silently, data read right, exit codes by cause, signals,
//! sweeps; and a fuzz test of whole configs run end to end under a memory limit.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{csv_toml, run_bin, stderr, tiny_sine_toml, write, BIN};

/// Runs the binary on a config, returning its output; asserts bad input creates nothing.
/// Tests that time a run or train several networks take this lock, so that they do not share
/// the two cores with each other: a timing measured while another test's run competes for the
/// cores is up to twice as long.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn refused(dir: &Path, name: &str, text: &str, needles: &[&str]) {
    let cfg = write(dir, name, text);
    let o = run_bin(&[cfg.to_str().unwrap(), "--quiet"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{name}: {err}");
    for n in needles {
        assert!(err.contains(n), "{name}: {err:?} lacks {n:?}");
    }
    assert!(!dir.join("results").exists(), "{name} created output");
}

#[test]
fn derived_quantities_are_checked_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_sine_toml(tmp.path(), "");
    // a finite interval whose width is not
    refused(
        tmp.path(),
        "interval.toml",
        &base.replace("n_test = 12", "n_test = 12\ninterval = [-1e308, 1e308]"),
        &["data.interval", "finite width"],
    );
    // initial scales that overflow f32 activations
    refused(
        tmp.path(),
        "wstd.toml",
        &base.replace("depth = 2", "depth = 2\nw_std = 1e200"),
        &["model.w_std", "overflow"],
    );
    // a text whose held-out part is shorter than the context (no prompt for generation)
    let text = write(tmp.path(), "short.txt", &"abcdefghij".repeat(20));
    refused(
        tmp.path(),
        "text.toml",
        &format!(
            "[experiment]\nname = \"t\"\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 30\ntest_fraction = 0.1\nn_train = 4\nn_test = 0\n[outputs]\ndir = \"{}\"\n",
            text.display(),
            tmp.path().join("results").display()
        ),
        &["short.txt", "data.context = 30"],
    );
    // a 10,000-character name
    refused(
        tmp.path(),
        "name.toml",
        &base.replace(
            "name = \"tiny\"",
            &format!("name = \"{}\"", "n".repeat(10_000)),
        ),
        &["experiment.name", "at most 128"],
    );
}

#[test]
fn sizes_are_estimated_and_refused_before_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_sine_toml(tmp.path(), "");
    for (name, text) in [
        ("width.toml", base.replace("width = 64", "width = 1048576")),
        (
            "ntest.toml",
            base.replace("n_test = 12", "n_test = 10000000000"),
        ),
        (
            "dim.toml",
            base.replace(
                "kind = \"sine\"",
                "kind = \"teacher\"\ninput_dim = 100000000",
            ),
        ),
    ] {
        let t = Instant::now();
        refused(tmp.path(), name, &text, &["needs about", "available"]);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{name}: refused only after work"
        );
    }
    // a sweep of more runs than allowed is refused before expansion
    let sweep = common::sweep_toml(
        tmp.path(),
        "\"model.width\" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]",
        "",
    )
    .replace("seeds = 2", "seeds = 1000");
    let cfg = write(tmp.path(), "big.toml", &sweep);
    let o = run_bin(&[cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("at most 10000 runs"), "{}", stderr(&o));
}

/// The estimate of peak memory is within ±30 % of the measured peak RSS on runs dominated by
/// parameters, by kernels and by a multi-output full kernel.
#[test]
fn memory_estimate_is_within_thirty_percent_of_the_measured_peak() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results").display().to_string();
    let configs = [
        format!("[experiment]\nname = \"a\"\n[data]\nkind = \"teacher\"\nn_train = 64\nn_test = 64\n[model]\nwidth = 4096\n[training]\nsteps = 2\n[outputs]\ndir = \"{res}\"\n"),
        format!("[experiment]\nname = \"b\"\n[data]\nkind = \"sine\"\nn_train = 1200\nn_test = 2400\n[model]\nwidth = 128\n[training]\nsteps = 2\n[outputs]\ndir = \"{res}\"\n"),
        format!("[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nn_train = 200\ntest_fraction = 0.5\n[model]\nwidth = 256\n[training]\nsteps = 2\n[kernel]\nform = \"full\"\n[outputs]\ndir = \"{res}\"\n"),
    ];
    for (i, text) in configs.iter().enumerate() {
        let cfg = write(tmp.path(), &format!("m{i}.toml"), text);
        let out = tmp.path().join(format!("o{i}"));
        let o = common::run_into(&cfg, &out);
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        let est = r["resources"]["estimated_peak_bytes"].as_f64().unwrap();
        let got = r["resources"]["measured_peak_rss_bytes"].as_f64().unwrap();
        eprintln!(
            "config {i}: estimated {:.0} MB, measured {:.0} MB",
            est / 1e6,
            got / 1e6
        );
        assert!(
            (est / got - 1.0).abs() <= 0.3,
            "config {i}: estimate {est} vs measured {got}"
        );
    }
}

#[test]
fn nothing_is_accepted_silently_in_sweeps() {
    use ntk_dynamics::config::sweep;
    let tmp = tempfile::tempdir().unwrap();
    let sw = |vary: &str| sweep::expand(&common::sweep_toml(tmp.path(), vary, ""), None);
    let err = |vary: &str| sw(vary).unwrap_err().to_string();
    assert!(err("\"experiment.seed\" = [1, 2]").contains("sweep.seeds"));
    assert!(err("\"model.width\" = [16, 32, 16]").contains("listed twice"));
    assert!(
        err("\"model.width\" = [16, 16.0]").contains("same run")
            || err("\"model.width\" = [16, 16.0]").contains("model.width")
    );
    assert!(err("\"kernel.quadrature_order\" = [8, 16]").contains("no effect"));
    // With no diagonal regulariser (the default), absolute and relative are the same run.
    assert!(err("\"kernel.diag_reg_absolute\" = [true, false]").contains("set kernel.diag_reg > 0"));
    // σ_b in a network without biases (the sweep's base has bias = false).
    assert!(err("\"model.b_std\" = [0.0, 0.1]").contains("set model.bias = true"));
    let regularised = common::sweep_toml(
        tmp.path(),
        "\"kernel.diag_reg_absolute\" = [true, false]",
        "",
    )
    .replace("probe_size = 16", "probe_size = 16\ndiag_reg = 1e-3");
    assert!(sweep::expand(&regularised, None).is_ok());
    assert!(err("\"outputs.dir\" = [\"a\", \"b\"]").contains("no effect"));
    assert!(err("\"experiment.name\" = [\"a\", \"b\"]").contains("no effect"));
    // seeds that would wrap around u64
    let text = common::sweep_toml(tmp.path(), "\"model.width\" = [16]", "")
        .replace("seed = 0", "seed = 9223372036854775807");
    assert!(sweep::expand(&text, None)
        .unwrap_err()
        .to_string()
        .contains("64-bit"));
    // directory names stay short and distinct whatever the values
    let s = sw("\"training.learning_rate\" = [1e-300, 2e-300]").unwrap();
    let names: Vec<String> = s.points.iter().map(|p| p.dir_name()).collect();
    assert!(names.iter().all(|n| n.len() < 64), "{names:?}");
    assert_ne!(names[0], names[2]);
}

#[test]
fn data_files_are_read_right() {
    let tmp = tempfile::tempdir().unwrap();
    let load = |name: &str, content: &[u8], extra: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        let exp = ntk_dynamics::config::parse_str(&csv_toml(tmp.path(), &p, extra), None).unwrap();
        ntk_dynamics::data::load(&exp.data, 0)
    };
    // a byte-order mark and bare-CR line endings
    let ds = load(
        "bom.csv",
        b"\xEF\xBB\xBFa,b,y\r1,2,3\r4,5,6\r7,8,9\r",
        "test_fraction = 0.0\nstandardize = false",
    )
    .unwrap();
    assert_eq!((ds.n_train(), ds.input_dim), (3, 2));
    // huge values standardise to unit variance, not to zeros
    let ds = load(
        "huge.csv",
        b"a,y\n1e300,1\n-1e300,2\n5e299,3\n",
        "test_fraction = 0.0",
    )
    .unwrap();
    let var = ds.x_train.iter().map(|v| v * v).sum::<f64>() / 3.0;
    assert!(
        (var - 1.0).abs() < 1e-12 && ds.x_train.iter().all(|v| v.is_finite()),
        "{:?}",
        ds.x_train
    );
    // a duplicate column name is refused (it would leak the target into the features)
    let e = load("dup.csv", b"a,y,y\n1,2,3\n4,5,6\n", "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("dup.csv") && e.contains("more than once"), "{e}");
}

#[test]
fn exit_codes_follow_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    // a missing data file of any extension is bad input
    let text = format!(
        "[experiment]\nname = \"t\"\n[data]\nkind = \"text\"\npath = \"{}\"\n[outputs]\ndir = \"{}\"\n",
        tmp.path().join("absent.txt").display(),
        tmp.path().join("results").display()
    );
    refused(tmp.path(), "missing.toml", &text, &["absent.txt"]);
    // --out onto an existing file
    let cfg = write(tmp.path(), "t.toml", &tiny_sine_toml(tmp.path(), ""));
    let file = write(tmp.path(), "taken", "x");
    let o = run_bin(&[
        cfg.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("existing file"));
}

/// Limits the address space of the process `cmd` starts to `bytes`.
fn limit_address_space(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe and only touches the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
}

fn wait_for(p: &Path) {
    for _ in 0..600 {
        if p.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", p.display());
}

#[test]
fn sigterm_is_an_interrupt_and_interrupts_act_within_seconds_in_every_phase() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    // SIGTERM during training: stops at a step boundary, writes an interrupted report
    let long = write(
        tmp.path(),
        "long.toml",
        &tiny_sine_toml(tmp.path(), "")
            .replace("steps = 30", "steps = 100000000")
            .replace("every = 5", "every = 1000")
            .replace("kernel_every = 10", "kernel_every = 1000"),
    );
    let out = tmp.path().join("term");
    let mut child = common::spawn_into(&long, &out);
    wait_for(&out.join("INCOMPLETE"));
    std::thread::sleep(Duration::from_millis(800));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let rj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rj["status"], "interrupted");
    // SIGINT during a quadrature kernel phase (a tanh conv net with global average pooling)
    // takes effect within 3 s
    let slow = slow_conv_kernel(tmp.path());
    let out = tmp.path().join("quad");
    let mut child = common::spawn_into(&slow, &out);
    wait_for(&out.join("INCOMPLETE"));
    std::thread::sleep(Duration::from_millis(1000));
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let code = child.wait().unwrap().code();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(code, Some(130));
}

/// Random whole configs (every data kind, sweeps, extreme but in-range values) run end to end
/// with a few steps under a 6 GiB address-space limit: each completes (exit 0, no INCOMPLETE
/// marker) or is refused before it starts (exit 2, nothing created) — never a panic, abort or
/// hang.
#[test]
fn fuzzed_configs_complete_or_are_refused_before_they_start() {
    let _serial = heavy();
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let csv = write(
        tmp.path(),
        "d.csv",
        "a,b,label\n0,1,0\n1,0,1\n2,2,0\n3,1,1\n0,3,0\n1,1,1\n2,0,0\n3,3,1\n",
    );
    let txt = write(
        tmp.path(),
        "t.txt",
        &"the quick brown fox jumps over the lazy dog. ".repeat(20),
    );
    let mut rng = StdRng::seed_from_u64(7);
    let pick = |rng: &mut StdRng, v: &[&str]| v[rng.random_range(0..v.len())].to_string();
    for i in 0..36 {
        let res = tmp.path().join(format!("res{i}"));
        let data = match i % 4 {
            0 => format!("kind = \"sine\"\nn_train = {}\nn_test = {}\nfrequency = {}\ninterval = [{}, {}]\nnoise = {}",
                rng.random_range(1..40), rng.random_range(0..50), pick(&mut rng, &["0.0", "1e-300", "3.0", "-1e3"]),
                pick(&mut rng, &["-1e150", "-3.0", "0.0"]), pick(&mut rng, &["1e150", "3.0", "1e-300"]), pick(&mut rng, &["0.0", "1e3"])),
            1 => format!("kind = \"teacher\"\nn_train = {}\nn_test = {}\ninput_dim = {}\nteacher_width = {}",
                rng.random_range(1..30), rng.random_range(0..30), pick(&mut rng, &["1", "7", "5000", "100000000"]), pick(&mut rng, &["1", "64"])),
            2 => format!("kind = \"csv\"\npath = \"{}\"\ntarget = [\"label\"]\none_hot = {}\ntest_fraction = {}\nstandardize = {}",
                csv.display(), pick(&mut rng, &["true", "false"]), pick(&mut rng, &["0.0", "0.25", "0.9"]), pick(&mut rng, &["true", "false"])),
            _ => format!("kind = \"text\"\npath = \"{}\"\ncontext = {}\nn_train = {}\nn_test = {}\ntest_fraction = {}",
                txt.display(), pick(&mut rng, &["1", "4", "400"]), rng.random_range(1..20), rng.random_range(0..20), pick(&mut rng, &["0.1", "0.5", "0.999"])),
        };
        let sweep = if rng.random_range(0..5) == 0 {
            "\n[sweep]\nseeds = 2\n[sweep.vary]\n\"model.width\" = [8, 16]\n".to_string()
        } else {
            String::new()
        };
        let text = format!(
            "[experiment]\nname = \"f{i}\"\nseed = {}\n[data]\n{data}\n[model]\nwidth = {}\ndepth = {}\nactivation = \"{}\"\nw_std = {}\nb_std = {}\nbias = {}\nparametrization = \"{}\"\nprecision = \"{}\"\n[training]\n{} = {}\nsteps = {}\nmomentum = {}\nmax_loss = {}\n[kernel]\nsolutions = {}\nform = \"{}\"\ntime = \"{}\"\ndiag_reg = {}\n[logging]\nevery = 1\nkernel_every = {}\n[outputs]\ndir = \"{}\"\n{sweep}",
            pick(&mut rng, &["0", "9223372036854775806", "42"]),
            pick(&mut rng, &["1", "8", "64", "1048576"]), rng.random_range(1..4),
            pick(&mut rng, &["relu", "tanh", "erf", "identity", "gelu"]),
            pick(&mut rng, &["1e-300", "1.4", "50.0"]), pick(&mut rng, &["0.0", "1e-300", "3.0"]),
            pick(&mut rng, &["true", "false"]), pick(&mut rng, &["ntk", "standard", "mup"]), pick(&mut rng, &["f32", "f64"]),
            pick(&mut rng, &["learning_rate", "lr_scale"]), pick(&mut rng, &["1e-300", "0.5", "1e300"]),
            rng.random_range(0..4), pick(&mut rng, &["0.0", "0.99"]), pick(&mut rng, &["1e-300", "1e10"]),
            pick(&mut rng, &["[\"empirical\"]", "[\"analytic\", \"empirical\"]", "[]"]),
            pick(&mut rng, &["full", "trace"]), pick(&mut rng, &["discrete", "continuous"]), pick(&mut rng, &["0.0", "1e300"]),
            pick(&mut rng, &["1", "2"]), res.display()
        );
        let cfg = write(tmp.path(), &format!("f{i}.toml"), &text);
        let mut cmd = Command::new(BIN);
        cmd.args([cfg.to_str().unwrap(), "--quiet"]);
        limit_address_space(&mut cmd, 6 << 30);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "config {i} hangs:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let out: Output = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match status.code() {
            Some(0) => {
                let incomplete = walk_has(&res, "INCOMPLETE");
                assert!(
                    !incomplete,
                    "config {i} left an incomplete run:\n{text}\n{err}"
                );
            }
            Some(2) => assert!(
                !res.exists(),
                "config {i} refused after creating output:\n{text}\n{err}"
            ),
            other => panic!("config {i}: exit {other:?}\n{text}\n{err}"),
        }
    }
}

fn walk_has(d: &Path, name: &str) -> bool {
    std::fs::read_dir(d)
        .map(|es| {
            es.filter_map(|e| e.ok()).any(|e| {
                let p = e.path();
                p.file_name().is_some_and(|n| n == name) || (p.is_dir() && walk_has(&p, name))
            })
        })
        .unwrap_or(false)
}

#[test]
fn slurm_scripts_refuse_paths_that_would_break_out_of_their_lines() {
    use ntk_dynamics::pipeline::slurm::script_path;
    use std::path::Path;
    // A newline would end an #SBATCH line or a comment and run the rest as a shell command.
    let e = script_path("--out", Path::new("/tmp/a\nrm -rf ~"), false).unwrap_err();
    assert!(
        e.to_string().contains("--out") && e.to_string().contains("control"),
        "{e}"
    );
    // #SBATCH directives are not shell-quoted: spaces, quotes and % are refused there.
    for bad in ["/tmp/a b", "/tmp/a'b", "/tmp/a%b", "/tmp/a\"b"] {
        assert!(script_path("--out", Path::new(bad), true).is_err(), "{bad}");
        assert!(
            script_path("--out", Path::new(bad), false).is_ok(),
            "{bad} (quoted elsewhere)"
        );
    }
    assert_eq!(
        script_path("--out", Path::new("/scratch/sweep-1"), true).unwrap(),
        "/scratch/sweep-1"
    );
    // Build identity: recorded from the source tree this binary was built from.
    let env = ntk_dynamics::report::repro::Environment::detect();
    assert!(
        env.build_git_commit.as_ref().is_none_or(|c| c.len() == 40),
        "{env:?}"
    );
}

#[test]
fn meaningless_setups_and_endless_inputs_are_refused_with_the_reason() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run = |name: &str, toml: &str| {
        let cfg = common::write(d, name, toml);
        let o = common::run_bin(&[
            cfg.to_str().unwrap(),
            "--quiet",
            "--out",
            d.join(name).with_extension("out").to_str().unwrap(),
        ]);
        (o.status.code(), common::stderr(&o))
    };
    // Cross-entropy on a one-output regression would train towards 1 − y.
    let (code, e) = run(
        "xent.toml",
        "[experiment]\nname = \"x\"\n[data]\nkind = \"sine\"\n[model]\nwidth = 8\n[training]\nsteps = 2\nloss = \"cross_entropy\"\n",
    );
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("training.loss") && e.contains("one-hot"), "{e}");
    // A text of one repeated character has nothing to predict.
    let text = common::write(d, "a.txt", &"a".repeat(500));
    let (code, e) = run(
        "vocab.toml",
        &format!("[experiment]\nname = \"v\"\n[data]\nkind = \"text\"\npath = \"{}\"\n[model]\nwidth = 8\n[training]\nsteps = 2\n", text.display()),
    );
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("vocabulary of 1"), "{e}");
    // The same target twice would train two identical outputs.
    let csv = common::write(d, "t.csv", "a,y\n1,2\n2,3\n3,5\n4,4\n5,1\n");
    let (code, e) = run(
        "dup.toml",
        &common::csv_toml(d, &csv, "").replace("target = [\"y\"]", "target = [\"y\", \"y\"]"),
    );
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("data.target") && e.contains("twice"), "{e}");
    // Endless or special files are not read.
    let o = common::run_bin(&["/dev/zero", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("not a regular file"),
        "{}",
        common::stderr(&o)
    );
    let (code, e) = run(
        "zero.toml",
        &common::csv_toml(d, std::path::Path::new("/dev/zero"), ""),
    );
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("not a regular file"), "{e}");
    // A teacher too large for memory is refused before it is drawn, naming its key.
    let (code, e) = run(
        "teacher.toml",
        "[experiment]\nname = \"t\"\n[data]\nkind = \"teacher\"\nteacher_width = 1000000000\n[model]\nwidth = 8\n[training]\nsteps = 2\n",
    );
    assert_ne!(code, Some(0), "{e}");
    assert!(e.contains("data.teacher_width"), "{e}");
}

#[test]
fn an_overflowing_scale_is_blamed_on_the_key_that_causes_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, key) in [
        ("b_std = 1e300", "model.b_std"),
        (
            "activation = { name = \"leaky_relu\", alpha = 1e300 }",
            "model.activation.alpha",
        ),
        ("w_std = 1e200", "model.w_std"),
    ] {
        let cfg = common::write(
            tmp.path(),
            "s.toml",
            &format!("[experiment]\nname = \"s\"\n[data]\nkind = \"sine\"\n[model]\nwidth = 8\n{model}\n[training]\nsteps = 2\n"),
        );
        let o = common::run_bin(&[cfg.to_str().unwrap(), "--quiet"]);
        assert_eq!(o.status.code(), Some(2), "{model}");
        let e = common::stderr(&o);
        assert!(
            e.contains(&format!("`{key}`")) && e.contains("s.toml:"),
            "{model}: {e}"
        );
    }
}

#[test]
fn a_sweep_whose_simultaneous_points_do_not_fit_together_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Each point alone needs well under the memory; 1000 of them at once do not fit.
    let cfg = common::write(
        tmp.path(),
        "p.toml",
        "[experiment]\nname = \"p\"\n[data]\nkind = \"sine\"\n[model]\nwidth = 8\n[training]\nsteps = 2\n\
         [sweep]\nseeds = 1000\nparallel = 1000\n[sweep.vary]\n\"model.depth\" = [1]\n",
    );
    let out = tmp.path().join("sw");
    let o = common::run_bin(&[
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let e = common::stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("sweep.parallel"), "{e}");
    assert!(!out.exists(), "nothing is created");
}

/// Sends `signal` to a run `after` it created its directory; returns (exit code, seconds from
/// the signal to the exit).
fn signal_after(cfg: &Path, out: &Path, signal: &str, after: Duration) -> (Option<i32>, f64) {
    let mut child = common::spawn_into(cfg, out);
    wait_for(&out.join("INCOMPLETE"));
    std::thread::sleep(after);
    let t = Instant::now();
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let code = child.wait().unwrap().code();
    (code, t.elapsed().as_secs_f64())
}

/// A quadrature conv kernel with global average pooling: one entry is 2·16⁴ position pairs of
/// tanh moments (minutes); the kernel loop looks at the request every 64 pairs. σ_w = 8 makes
/// every variance large (q ≈ 30–60), where tanh's Hermite series are refused (φ(√q·z) nearly a
/// step) and each moment is a 2-D quadrature; at the default σ_w the series take a second.
fn slow_conv_kernel(dir: &Path) -> PathBuf {
    let pixels: String = (0..6)
        .map(|i| {
            (0..257)
                .map(|j| format!("{:.3}", ((i * 257 + j) as f64 * 0.37).sin()))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let header = (0..256)
        .map(|j| format!("p{j}"))
        .chain(["y".to_string()])
        .collect::<Vec<_>>()
        .join(",");
    let csv = write(dir, "img.csv", &format!("{header}\n{pixels}"));
    write(
        dir,
        "conv.toml",
        &format!(
            "[experiment]\nname = \"gap\"\n[data]\nkind = \"csv\"\npath = \"{}\"\ntarget = [\"y\"]\ntest_fraction = 0.5\nimage_shape = [16, 16, 1]\n[model]\narchitecture = \"conv\"\nwidth = 8\ndepth = 4\nfilter = 3\nreadout = \"global_avg_pool\"\nactivation = \"tanh\"\nw_std = 8.0\n[training]\nsteps = 10\n[kernel]\nsolutions = [\"analytic\"]\n[outputs]\ndir = \"{}\"\n",
            csv.display(),
            dir.join("results").display()
        ),
    )
}

#[test]
fn every_phase_stops_within_about_a_second_of_sigterm() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let conv = slow_conv_kernel(tmp.path());
    let out = tmp.path().join("conv");
    let (code, seconds) = signal_after(&conv, &out, "-TERM", Duration::from_millis(1500));
    assert_eq!(code, Some(130));
    assert!(seconds < 1.5, "the conv kernel took {seconds} s to stop");
    assert!(!out.exists(), "an interrupted kernel phase leaves nothing");
    // A dense eigendecomposition (the exact predictor of 3,000 points) has no boundary inside:
    // the process ends itself one second after the signal.
    let eig = write(
        tmp.path(),
        "eig.toml",
        "[experiment]\nname = \"eig\"\n[data]\nkind = \"teacher\"\ninput_dim = 4\nn_train = 3000\nn_test = 10\n[model]\nwidth = 32\ndepth = 1\n[training]\nsteps = 5\ntwin = \"parameter\"\n[kernel]\nsolutions = [\"analytic\"]\nsolver = \"exact\"\n",
    );
    let out = tmp.path().join("eig");
    let (code, seconds) = signal_after(&eig, &out, "-TERM", Duration::from_millis(1500));
    assert_eq!(code, Some(130));
    assert!(
        seconds < 2.5,
        "the eigendecomposition took {seconds} s to stop"
    );
}

#[test]
fn estimate_lists_phases_creates_nothing_and_long_runs_announce_theirs() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", &tiny_sine_toml(tmp.path(), ""));
    let o = run_bin(&["--estimate", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    for phase in [
        "set-up",
        "kernels",
        "predictor setup",
        "training",
        "final kernels",
        "outputs",
    ] {
        assert!(text.contains(phase), "{text}");
    }
    assert!(
        !tmp.path().join("results").exists(),
        "--estimate created output"
    );
    // A quadrature kernel estimated at minutes is announced before it starts (and --estimate
    // says the same): a tanh conv net with global average pooling, a millisecond a moment.
    let slow = slow_conv_kernel(tmp.path());
    let o = run_bin(&["--estimate", slow.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("min (kernels"), "{text}");
    let out = tmp.path().join("slow");
    let child = Command::new(BIN)
        .args([slow.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&out.join("INCOMPLETE"));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert!(
        stderr(&o).contains("gap: estimated ~") && stderr(&o).contains("min (kernels"),
        "{}",
        stderr(&o)
    );
}

/// Runs `cfg` into `out` with `--force` under a 4 GiB address-space limit: exit code, stderr.
fn forced_under_4_gib(cfg: &Path, out: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        cfg.to_str().unwrap(),
        "--force",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    limit_address_space(&mut cmd, 4 << 30);
    let o: Output = cmd.output().unwrap();
    (o.status.code(), stderr(&o))
}

#[test]
fn a_failed_allocation_past_the_estimate_is_an_out_of_memory_error() {
    let tmp = tempfile::tempdir().unwrap();
    // 30,000 points on the exact path: the first N × N matrix (7.2 GB) cannot be allocated
    // under a 4 GiB address-space limit.
    let cfg = write(
        tmp.path(),
        "oom.toml",
        "[experiment]\nname = \"oom\"\n[data]\nkind = \"teacher\"\ninput_dim = 4\nn_train = 30000\nn_test = 10\n[model]\nwidth = 8\ndepth = 1\n[training]\nsteps = 2\ntwin = \"parameter\"\n[kernel]\nsolutions = [\"empirical\"]\nsolver = \"exact\"\n",
    );
    let out = tmp.path().join("oom");
    let (code, err) = forced_under_4_gib(&cfg, &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("out of memory: an allocation failed"), "{err}");
    assert!(err.contains("kernel.solver = \"iterative\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "nothing was written, nothing is left");
}

#[test]
fn targets_without_signal_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, data) in [
        ("frequency0", "frequency = 0.0"),
        ("tiny_interval", "interval = [0.0, 1e-300]"),
    ] {
        let text =
            tiny_sine_toml(tmp.path(), "").replace("n_test = 12", &format!("n_test = 12\n{data}"));
        refused(
            tmp.path(),
            &format!("{name}.toml"),
            &text,
            &["`data`", "targets that vary"],
        );
    }
}

#[test]
fn a_slurm_out_path_that_cannot_go_into_the_script_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tiny_sine_toml(tmp.path(), "") + "\n[sweep]\nseeds = 2\n";
    let cfg = write(tmp.path(), "sw.toml", &sweep);
    let out = tmp.path().join("a b%c");
    let o = run_bin(&[
        cfg.to_str().unwrap(),
        "--slurm",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(!out.exists(), "{err}");
}

#[test]
fn a_wrong_type_inside_data_names_its_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tiny_sine_toml(tmp.path(), "");
    for (line, key) in [
        ("n_train = \"eight\"", "data.n_train"),
        ("interval = [0.0]", "data.interval"),
        ("noise = true", "data.noise"),
    ] {
        let text = base.replace("n_train = 8", line);
        let want_line = text.lines().position(|l| l == line).unwrap() + 1;
        refused(
            tmp.path(),
            "data_type.toml",
            &text,
            &[
                &format!("data_type.toml:{want_line}"),
                &format!("`{key}`"),
                // The snippet shows the offending line, not the table header.
                &format!("{want_line} | {line}"),
            ],
        );
    }
}

#[test]
fn a_swept_kernel_store_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = common::sweep_toml(
        tmp.path(),
        "\"kernel.store_dir\" = [\"/tmp/a\", \"/tmp/b\"]",
        "",
    );
    refused(
        tmp.path(),
        "store_dir.toml",
        &text,
        &["kernel.store_dir", "set it once"],
    );
}

#[test]
fn a_failed_allocation_in_std_is_an_out_of_memory_error_not_an_abort() {
    let tmp = tempfile::tempdir().unwrap();
    // With --force past the estimate, the teacher's 1e9 × 16 weights (128 GB) are requested
    // from a Vec under a 4 GiB address-space limit: std aborts on that, which the binary turns
    // into an error with exit status 1.
    let cfg = write(
        tmp.path(),
        "teacher_oom.toml",
        "[experiment]\nname = \"t\"\n[data]\nkind = \"teacher\"\nteacher_width = 1000000000\n[model]\nwidth = 8\n[training]\nsteps = 2\n",
    );
    let (code, err) = forced_under_4_gib(&cfg, &tmp.path().join("run"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("error: out of memory: an allocation of"),
        "{err}"
    );
    assert!(err.contains("--estimate"), "{err}");
}

/// The `--estimate` line of a phase, in seconds.
fn estimated_seconds(text: &str, phase: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(phase) && l.trim_end().ends_with(" s"))
        .unwrap_or_else(|| panic!("no {phase} line in {text}"));
    line.trim_end()
        .trim_end_matches(" s")
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_quadrature_kernel_takes_within_two_of_its_estimate() {
    let _serial = heavy();
    // A tanh kernel (no closed form): its moments (Mehler series for an MLP, with the 2-D
    // quadrature for points whose series is refused) are timed on this machine at the data's
    // own first-layer arguments, so the estimate holds whatever the machine and the inputs.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "tanh.toml",
        &format!("[experiment]\nname = \"t\"\n[data]\nkind = \"teacher\"\ninput_dim = 8\nn_train = 800\nn_test = 200\n[model]\nwidth = 32\ndepth = 2\nactivation = \"tanh\"\n[training]\nsteps = 2\n[kernel]\nsolutions = [\"analytic\"]\n[outputs]\ndir = \"{}\"\n", tmp.path().join("results").display()),
    );
    let o = run_bin(&["--estimate", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let estimate = estimated_seconds(&String::from_utf8_lossy(&o.stdout), "kernels");
    let out = tmp.path().join("run");
    let o = common::run_into(&cfg, &out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let measured = common::read_json(&out.join("report.json"))["timings_s"]["kernels"]
        .as_f64()
        .unwrap();
    let ratio = measured / estimate;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "kernels: measured {measured} s, estimated {estimate} s"
    );
}

/// Target columns that are scaled or (with standardising) affine copies of each other are
/// refused; an affine copy of raw targets runs.
fn copied_targets_are_refused(tmp: &Path) {
    // A scaled copy (y2 = −3·y) and, with the default data.standardize, an affine one
    // (y2 = 2·y + 5), which standardising makes identical. Without standardising the affine
    // copy is a different target and runs.
    for (name, scale, shift, standardize, refusal) in [
        ("scaled", -3.0, 0.0, "", Some("= -3 ×")),
        (
            "affine",
            2.0,
            5.0,
            "",
            Some("after data.standardize the two outputs are identical"),
        ),
        (
            "negative_affine",
            -0.5,
            -1.0,
            "",
            Some("after data.standardize the two outputs are each other's negative"),
        ),
        (
            "zero",
            0.0,
            0.0,
            "standardize = false",
            Some("\"y2\" is 0, an output with nothing to learn"),
        ),
        ("affine_raw", 2.0, 5.0, "standardize = false", None),
    ] {
        let data = tmp.join(format!("{name}_targets.csv"));
        let rows: String = (0..40)
            .map(|i| {
                let y = (i as f64).sin();
                format!("{},{y},{}\n", i as f64 * 0.1, scale * y + shift)
            })
            .collect();
        std::fs::write(&data, format!("x,y,y2\n{rows}")).unwrap();
        // The run that is allowed writes into its own directory (the refusals check that
        // nothing appears under theirs).
        let runs = tempfile::tempdir().unwrap();
        let out_dir = if refusal.is_some() { tmp } else { runs.path() };
        let toml = csv_toml(out_dir, &data, standardize)
            .replace("target = [\"y\"]", "target = [\"y\", \"y2\"]");
        match refusal {
            Some(why) => refused(
                tmp,
                &format!("{name}.toml"),
                &toml,
                &["data.target", "not copies of each other", why],
            ),
            None => {
                let cfg = write(runs.path(), &format!("{name}.toml"), &toml);
                let o = run_bin(&[cfg.to_str().unwrap(), "--quiet"]);
                assert!(o.status.success(), "{name}: {}", stderr(&o));
            }
        }
    }
}

/// Texts with one character to predict, in the training part or in its sample, are refused.
fn one_character_texts_are_refused(tmp: &Path) {
    // A text whose training part has one character to predict.
    let text = tmp.join("ab.txt");
    std::fs::write(&text, format!("{}{}", "a".repeat(4900), "b".repeat(100))).unwrap();
    refused(
        tmp,
        "ab.toml",
        &format!("[experiment]\nname = \"t\"\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 4\nn_train = 100\nn_test = 20\n[model]\nwidth = 16\n[training]\nsteps = 2\nloss = \"cross_entropy\"\n[outputs]\ndir = \"{}\"\n", text.display(), tmp.join("results").display()),
        &["at least two distinct characters to predict in the training part"],
    );
    // A training part with two characters to predict, but a sample of it with one.
    let text = tmp.join("mostly_a.txt");
    std::fs::write(&text, format!("{}b{}", "a".repeat(2000), "a".repeat(3000))).unwrap();
    refused(
        tmp,
        "mostly_a.toml",
        &format!("[experiment]\nname = \"t\"\n[data]\nkind = \"text\"\npath = \"{}\"\ncontext = 4\nn_train = 5\nn_test = 20\n[model]\nwidth = 16\n[training]\nsteps = 2\nloss = \"cross_entropy\"\n[outputs]\ndir = \"{}\"\n", text.display(), tmp.join("results").display()),
        &["sampled training contexts", "data.n_train"],
    );
}

#[test]
fn hostile_round_four_refusals() {
    let _serial = heavy();
    let tmp = tempfile::tempdir().unwrap();
    // A named pipe as a data file is refused before it is opened (opening it would block).
    let fifo = tmp.path().join("pipe.csv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let start = Instant::now();
    refused(
        tmp.path(),
        "fifo.toml",
        &csv_toml(tmp.path(), &fifo, ""),
        &["not a regular file"],
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    // Two target columns with the same values.
    let data = tmp.path().join("twin_targets.csv");
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "{},{},{}\n",
                i as f64 * 0.1,
                (i as f64).sin(),
                (i as f64).sin()
            )
        })
        .collect();
    std::fs::write(&data, format!("x,y,y2\n{rows}")).unwrap();
    refused(
        tmp.path(),
        "twin_targets.toml",
        &csv_toml(tmp.path(), &data, "").replace("target = [\"y\"]", "target = [\"y\", \"y2\"]"),
        &[
            "data.target",
            "not copies of each other",
            "holds the same values as",
        ],
    );
    copied_targets_are_refused(tmp.path());
    one_character_texts_are_refused(tmp.path());
    // A swept key that is not swept: the listed values are shown, at the key's line.
    let sweep = common::sweep_toml(tmp.path(), "\"sweep.parallel\" = [1, 2]", "");
    let line = sweep
        .lines()
        .position(|l| l.starts_with("\"sweep.parallel\""))
        .unwrap()
        + 1;
    refused(
        tmp.path(),
        "sw.toml",
        &sweep,
        &[
            &format!("sw.toml:{line}"),
            "= [1, 2]",
            "not of [sweep] itself",
        ],
    );
}

#[test]
fn an_impossible_size_past_the_estimate_is_an_out_of_memory_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "huge.toml",
        "[experiment]\nname = \"h\"\n[data]\nkind = \"sine\"\nn_train = 2305843009213693952\n[model]\nwidth = 8\n[training]\nsteps = 2\n",
    );
    let out = tmp.path().join("run");
    let o = run_bin(&[
        cfg.to_str().unwrap(),
        "--force",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("out of memory"), "{err}");
    // --version names the build.
    let v = run_bin(&["--version"]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("built from"));
}

#[test]
fn an_out_directory_on_a_pseudo_filesystem_is_refused_for_what_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "t.toml", &tiny_sine_toml(tmp.path(), ""));
    let o = run_bin(&[cfg.to_str().unwrap(), "--out", "/proc/ntk-run", "--quiet"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("filesystem with no storage"), "{err}");
    assert!(!err.contains("free disk space"), "{err}");
}
