//! Sweeps: power-law fits, the phase classifier, and small sweeps end to end (issue: sweeps).

mod common;

use std::path::{Path, PathBuf};

use common::{read_json, run_bin, run_into, stderr, sweep_toml, tiny_sine_toml};
use ntk_dynamics::config::sweep;
use ntk_dynamics::metrics::{loglog_fit, Phase, PhaseEvidence};
use ntk_dynamics::pipeline;
use ntk_dynamics::record::columns::{Column, Figure};
use ntk_dynamics::record::sweep::{fit_power_laws, PointStatus, SweepRow};

/// A sweep config of one point (width 32) in `dir`, and the sweep directory to write.
fn one_point_sweep(dir: &Path) -> (PathBuf, PathBuf) {
    let text = sweep_toml(dir, "\"model.width\" = [32]", "");
    (common::write(dir, "sw.toml", &text), dir.join("sweep"))
}

/// `experiment CONFIG --out OUT --quiet`.
fn run_sweep_into(cfg: &Path, out: &Path) -> std::process::Output {
    common::run_bin(&[
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

#[test]
fn fitted_slopes_recover_known_exponents() {
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = StdRng::seed_from_u64(1);
    let noise = Normal::<f64>::new(0.0, 0.05).unwrap();
    for exponent in [-0.5, -1.0, 0.3] {
        let mut rows = Vec::new();
        for w in [64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0f64] {
            for seed in 0..5u64 {
                let y = 3.0 * w.powf(exponent) * noise.sample(&mut rng).exp();
                rows.push(SweepRow {
                    values: vec![("model.width".into(), format!("{w}"))],
                    seed,
                    status: PointStatus::Completed,
                    run_dir: String::new(),
                    wall_s: 0.0,
                    phase: None,
                    figures: vec![("ntk_rel_drift".into(), y)],
                    loss_curve: vec![],
                    sharpness_curve: vec![],
                });
            }
        }
        let fits = fit_power_laws(&rows, "model.width", &[Figure::Final(Column::NtkRelDrift)]);
        let f = &fits[0];
        assert!(
            (f.slope - exponent).abs() < 0.03,
            "exponent {exponent}: fitted {}",
            f.slope
        );
        assert!(
            f.ci95 > 0.0 && (f.slope - exponent).abs() < 3.0 * f.ci95 + 1e-3,
            "interval {} should cover",
            f.ci95
        );
    }
    // Per-seed exponents e_s (each seed an exact power law): the fit is their mean, with the
    // t-interval over the 5 seeds (t_0.975,4 = 2.776445105 from tables), not a pooled
    // regression's standard error.
    let exps = [-0.3, -0.5, -0.45, -0.7, -0.55];
    let mut rows = Vec::new();
    for w in [64.0, 256.0, 1024.0f64] {
        for (seed, e) in exps.iter().enumerate() {
            rows.push(SweepRow {
                values: vec![("model.width".into(), format!("{w}"))],
                seed: seed as u64,
                status: PointStatus::Completed,
                run_dir: String::new(),
                wall_s: 0.0,
                phase: None,
                figures: vec![("ntk_rel_drift".into(), 2.0 * w.powf(*e))],
                loss_curve: vec![],
                sharpness_curve: vec![],
            });
        }
    }
    let f = &fit_power_laws(&rows, "model.width", &[Figure::Final(Column::NtkRelDrift)])[0];
    let mean = exps.iter().sum::<f64>() / 5.0;
    let sd = (exps.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    assert!((f.slope - mean).abs() < 1e-12, "{} vs {mean}", f.slope);
    assert!(
        (f.ci95 - 2.776_445_105 * sd / 5f64.sqrt()).abs() < 1e-7,
        "{}",
        f.ci95
    );
    for (_, _, local) in &f.local_slopes {
        assert!((local - mean).abs() < 1e-12, "local slope {local}");
    }
    // The figure's band: every seed's line is log y = log 2 + e_s·log x, so at x its values
    // are log 2 + e_s·log x, and the band is their t-interval mapped back by exp.
    for x in [64.0f64, 300.0, 1024.0] {
        let at: Vec<f64> = exps.iter().map(|e| 2f64.ln() + e * x.ln()).collect();
        let m = at.iter().sum::<f64>() / 5.0;
        let sd_at = (at.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 4.0).sqrt();
        let h = 2.776_445_105 * sd_at / 5f64.sqrt();
        let (lo, hi) = f.band_at(x).unwrap();
        assert!(((lo.ln() - (m - h)) / h).abs() < 1e-7, "{x}: {lo}");
        assert!(((hi.ln() - (m + h)) / h).abs() < 1e-7, "{x}: {hi}");
    }
    // exact power law: exact slope, zero-width interval
    let x = [1.0, 2.0, 4.0, 8.0];
    let y: Vec<f64> = x.iter().map(|v: &f64| 5.0 * v.powf(-0.75)).collect();
    let (s, _, se) = loglog_fit(&x, &y).unwrap();
    assert!((s + 0.75).abs() < 1e-12 && se < 1e-10);
}

/// Hand-made runs of each regime, labelled from the loss path, η/η_c, the sharpness ratio
/// η·λ_max/(2(1+μ)NK) at each kernel checkpoint and the kernel drift.
#[test]
fn phase_classifier_labels_hand_made_runs() {
    let decay: Vec<f64> = (0..50).map(|t| (-0.1 * t as f64).exp()).collect();
    let mut spike = vec![1.0, 3.0, 40.0, 12.0, 2.0, 0.5];
    spike.extend((0..20).map(|t| 0.4 * (-0.2 * t as f64).exp()));
    let run = |loss: &[f64], lr_ratio: f64, sharpness: &[f64], drift: f64, diverged: bool| {
        PhaseEvidence {
            train_loss: loss.to_vec(),
            lr_ratio,
            sharpness: sharpness.to_vec(),
            final_drift: drift,
            diverged,
        }
    };
    // below η_c, far from the edge: lazy when the kernel hardly moves, feature learning when
    // it moves far
    let flat = [0.5; 6];
    assert_eq!(run(&decay, 0.5, &flat, 0.01, false).classify(), Phase::Lazy);
    assert_eq!(
        run(&decay, 0.5, &[0.5, 0.6, 0.7, 0.75, 0.8, 0.8], 0.8, false).classify(),
        Phase::FeatureLearning
    );
    // progressive sharpening to the edge below η_c (the committed mup runs: 0.5 → 0.92–0.998,
    // held): edge of stability, not feature learning
    let sharpen = [0.5, 0.7, 0.85, 0.93, 0.96, 0.99, 0.97, 0.98];
    assert_eq!(
        run(&decay, 0.5, &sharpen, 0.6, false).classify(),
        Phase::EdgeOfStability
    );
    // one phenomenon, one label: at 1.5 η_c, ending at 1.009 and at 0.997 are both the edge
    for end in [1.009, 0.997] {
        let s = [1.5, 1.2, 1.0, end, end, end, end, end];
        assert_eq!(
            run(&spike, 1.5, &s, 0.5, false).classify(),
            Phase::EdgeOfStability
        );
    }
    // above η_c, the loss spikes and λ_max falls well below the edge → catapult
    let c = run(&spike, 1.5, &[1.5, 1.1, 0.8, 0.7, 0.7, 0.7], 0.3, false);
    assert!(c.spiked());
    assert_eq!(c.classify(), Phase::Catapult);
    // a ReLU run far above 2·η_c that still converges is a catapult too: label what happened
    assert_eq!(
        run(&spike, 6.0, &[6.0, 2.0, 0.8, 0.8], 0.9, false).classify(),
        Phase::Catapult
    );
    // above η_c without a loss spike: no catapult (feature learning by its drift)
    assert_eq!(
        run(&decay, 1.3, &[1.3, 1.0, 0.7, 0.6, 0.6], 0.4, false).classify(),
        Phase::FeatureLearning
    );
    // a spike, but the final sharpness is at the edge, not below it
    assert_eq!(
        run(&spike, 1.3, &[1.3, 1.2, 1.05, 1.02, 1.02], 0.4, false).classify(),
        Phase::EdgeOfStability
    );
    // started inside the band (η ≈ η_c) with a frozen kernel: at the edge by the choice of η,
    // not by the dynamics
    assert_eq!(
        run(&decay, 0.95, &[0.95, 0.95, 0.95, 0.95, 0.95], 0.02, false).classify(),
        Phase::Lazy
    );
    // started on the band's edge up to round-off (lr_scale = 0.9 gives 0.8999999999999999)
    // and sharpened a little: still at the edge by the choice of η; a start 10⁻⁶ below it is
    // outside
    let near = [0.8999999999999999, 0.905, 0.91, 0.914, 0.914];
    assert_eq!(run(&decay, 0.9, &near, 0.03, false).classify(), Phase::Lazy);
    let below = [0.899999, 0.905, 0.91, 0.914, 0.914];
    assert_eq!(
        run(&decay, 0.9, &below, 0.03, false).classify(),
        Phase::EdgeOfStability
    );
    // passing through the band is not holding it; under three kernel checkpoints, no verdict
    assert_eq!(
        run(&decay, 0.5, &[0.5, 0.95, 0.95, 0.95, 0.95, 0.7], 0.3, false).classify(),
        Phase::FeatureLearning
    );
    assert_eq!(
        run(&decay, 0.5, &[0.95, 0.95], 0.02, false).classify(),
        Phase::Lazy
    );
    // divergent: blown up, no progress, NaN, or marked
    let up: Vec<f64> = (0..20).map(|t| (0.5 * t as f64).exp()).collect();
    assert_eq!(
        run(&up, 3.0, &[3.0, 5.0, 5.0], 2.0, false).classify(),
        Phase::Divergent
    );
    assert_eq!(
        run(&[1.0, 0.5, f64::NAN], 0.5, &flat, 0.0, false).classify(),
        Phase::Divergent
    );
    assert_eq!(
        run(&decay, 0.5, &flat, 0.0, true).classify(),
        Phase::Divergent
    );
    // the old classifier called every λ_max decrease a catapult, even at 0.5·η_c
    assert_eq!(
        run(&decay, 0.5, &[0.5, 0.4, 0.3, 0.3], 0.05, false).classify(),
        Phase::Lazy
    );
}

#[test]
fn tiny_width_sweep_end_to_end_has_negative_drift_slope() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("w.toml");
    std::fs::write(
        &cfg,
        sweep_toml(tmp.path(), "\"model.width\" = [32, 128, 512]", ""),
    )
    .unwrap();
    let out = tmp.path().join("sweep");
    let o = run_into(&cfg, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "sweep.csv",
        "sweep.json",
        "sweep.md",
        "scaling.png",
        "sweep.toml",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    assert!(!out.join("INCOMPLETE").exists());
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("model.width,seed,status,phase,wall_s,run_dir"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let drift = json["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["figure"] == "ntk_rel_drift")
        .unwrap();
    assert!(
        drift["slope"].as_f64().unwrap() < 0.0,
        "drift slope {drift}"
    );
    assert!(std::fs::read_to_string(out.join("sweep.md"))
        .unwrap()
        .contains("wall time"));
}

#[test]
fn half_critical_rate_is_lazy_and_four_times_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let text = sweep_toml(tmp.path(), "\"training.lr_scale\" = [0.5, 4.0]", "")
        .replace("width = 256", "width = 1024");
    let sw = sweep::expand(&text, None).unwrap();
    assert_eq!(sw.points.len(), 4);
    let rows = pipeline::sweep::run(
        &sw,
        &tmp.path().join("out"),
        pipeline::sweep::Shard::ALL,
        None,
        ntk_dynamics::run::LimitPolicy::Refuse,
        &|_, _, _| {},
    )
    .unwrap();
    for r in &rows {
        let scale: f64 = r.values[0].1.parse().unwrap();
        let phase = r.phase.expect("completed");
        if scale < 1.0 {
            assert_eq!(phase, Phase::Lazy, "lr = 0.5 η_c must be lazy: {r:?}");
        } else {
            assert_ne!(phase, Phase::Lazy, "lr = 4 η_c must not be lazy");
        }
    }
}

#[test]
fn bad_sweeps_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    for (vary, needle) in [
        ("\"model.widht\" = [1, 2]", "widht"),
        ("\"width\" = [1]", "table.key"),
        ("\"model.width\" = []", "non-empty"),
        ("\"model.width\" = [0, 4]", "model.width"),
    ] {
        let e = sweep::expand(&sweep_toml(tmp.path(), vary, ""), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{vary}: {e}");
    }
}

#[test]
fn width_by_learning_rate_sweep_draws_phases_and_a_phase_diagram() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("pd.toml");
    std::fs::write(
        &cfg,
        sweep_toml(
            tmp.path(),
            "\"model.width\" = [64, 256]\n\"training.lr_scale\" = [0.5, 4.0]",
            "",
        )
        .replace("seeds = 2", "seeds = 1"),
    )
    .unwrap();
    let out = tmp.path().join("sweep");
    let o = run_into(&cfg, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["phases.png", "phase_diagram.png", "scaling.png"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4);
    assert!(csv.contains(",lazy,") && !csv.lines().skip(1).all(|l| l.contains(",lazy,")));
    replot_redraws_the_same_figures(&out);
}

/// `--replot` draws a sweep's figures from its stored files (sweep.json, then the curves from
/// the stored rows, or from each point's metrics.csv when the rows are gone) byte for byte as
/// the sweep drew them from its records in memory, and writes sweep.md unchanged.
fn replot_redraws_the_same_figures(out: &Path) {
    let names = [
        "phases.png",
        "phase_diagram.png",
        "scaling.png",
        "figures.png",
        "sweep.md",
    ];
    let before: Vec<Vec<u8>> = names
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    for drop_rows in [false, true] {
        if drop_rows {
            std::fs::remove_dir_all(out.join("rows")).unwrap();
        }
        let o = run_bin(&["--replot", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        for (f, b) in names.iter().zip(&before) {
            assert!(
                std::fs::read(out.join(f)).unwrap() == *b,
                "{f} differs after --replot (rows removed: {drop_rows})"
            );
        }
        let record = read_json(&out.join("replot.json"));
        assert!(record["files_sha256"]["phases.png"].is_string());
    }
    // A point is a run of its own: --replot redraws it from its figure data; without that
    // file (a run recorded before figure data was stored) it is refused with the reason.
    let point = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("report.json").is_file())
        .unwrap()
        .path();
    let o = run_bin(&["--replot", point.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(point.join("figure_data.ron")).unwrap();
    let o = run_bin(&["--replot", point.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("recorded before runs stored their figure data"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn shards_and_slurm_submissions_refuse_bad_requests_before_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let text = sweep_toml(tmp.path(), "\"model.width\" = [16, 32]", "");
    let cfg = tmp.path().join("s.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = tmp.path().join("out");
    let (c, o) = (cfg.to_str().unwrap(), out.to_str().unwrap());
    for (args, needle) in [
        (vec![c, "--out", o, "--shard", "2/2"], "--shard"),
        (vec![c, "--out", o, "--shard", "0/0"], "--shard"),
        (vec![c, "--out", o, "--shard", "x"], "--shard"),
        (vec![c, "--shard", "0/2"], "--out"),
        (vec![c, "--out", o, "--seed", "3"], "--seed"),
    ] {
        let r = common::run_bin(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains(needle), "{args:?}: {}", stderr(&r));
        assert!(!out.exists(), "{args:?} created {o}");
    }
    // No sbatch on the PATH: nothing is written or submitted.
    let r = std::process::Command::new(common::BIN)
        .args([c, "--out", o, "--slurm"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("sbatch"), "{}", stderr(&r));
    assert!(!out.exists());
    // A single-run config is not a sweep.
    let single = tmp.path().join("one.toml");
    std::fs::write(&single, tiny_sine_toml(tmp.path(), "")).unwrap();
    let r = common::run_bin(&[single.to_str().unwrap(), "--out", o, "--shard", "0/1"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    // [slurm] is checked in sweep configs and in single runs (whose kernel blocks it can
    // spread over a job array).
    let e = ntk_dynamics::config::parse_str(
        &(tiny_sine_toml(tmp.path(), "") + "[slurm]\ntasks = 0\n"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("slurm.tasks"), "{e}");
    for (extra, key) in [
        ("[slurm]\ntasks = 0\n", "slurm.tasks"),
        ("[slurm]\ntime = \"\"\n", "slurm.time"),
        ("[slurm]\npartiton = \"a\"\n", "partiton"),
    ] {
        let e = sweep::expand(&format!("{text}{extra}"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: {e}");
    }
}

#[test]
fn a_sweep_run_in_shards_collects_into_the_local_sweep_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("s.toml");
    std::fs::write(
        &cfg,
        sweep_toml(tmp.path(), "\"model.width\" = [16, 32]", ""),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let local = tmp.path().join("local");
    assert!(run_into(&cfg, &local).status.success());
    let sharded = tmp.path().join("sharded");
    let s = sharded.to_str().unwrap();
    // Two of three shards: collect names what is missing and keeps the directory INCOMPLETE.
    for shard in ["0/3", "2/3"] {
        let o = common::run_bin(&[c, "--out", s, "--shard", shard, "--quiet"]);
        assert!(o.status.success(), "{shard}: {}", stderr(&o));
    }
    let o = common::run_bin(&["--collect", s, "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    assert!(sharded.join("INCOMPLETE").exists());
    // The last shard, then a collect: the same sweep as the local run.
    let o = common::run_bin(&[c, "--out", s, "--shard", "1/3", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = common::run_bin(&["--collect", s, "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let strip = |p: &Path| -> Vec<String> {
        let t = std::fs::read_to_string(p.join("sweep.csv")).unwrap();
        let wall = t
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|h| h == "wall_s")
            .unwrap();
        t.lines()
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| *i != wall)
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    assert_eq!(strip(&sharded), strip(&local));
    assert!(!sharded.join("INCOMPLETE").exists());
    // Running the whole sweep again into the same directory runs nothing (all completed).
    let before = std::fs::read(sharded.join("rows/p0000.json")).unwrap();
    let o = common::run_bin(&[c, "--out", s, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(sharded.join("rows/p0000.json")).unwrap(),
        before
    );
    // A different sweep cannot be run into it.
    let other = tmp.path().join("o.toml");
    std::fs::write(
        &other,
        sweep_toml(tmp.path(), "\"model.width\" = [16, 64]", ""),
    )
    .unwrap();
    let o = common::run_bin(&[other.to_str().unwrap(), "--out", s, "--shard", "0/1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different sweep"), "{}", stderr(&o));
}

#[test]
fn collect_refuses_rows_made_from_another_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, out) = one_point_sweep(tmp.path());
    let o = run_sweep_into(&cfg, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    // Collecting the untouched directory again works; after editing its plan it is refused.
    let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let plan = out.join("sweep.toml");
    let edited = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("steps = 60", "steps = 40");
    std::fs::write(&plan, edited).unwrap();
    let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    let err = common::stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("changed after 2 point(s)"), "{err}");
}

#[test]
fn a_point_whose_directory_was_deleted_is_not_completed_and_runs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, out) = one_point_sweep(tmp.path());
    let run = || run_sweep_into(&cfg, &out);
    assert!(run().status.success());
    let point = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .unwrap();
    // A point whose files were changed after it ran is not completed either.
    std::fs::remove_file(point.join("metrics.csv")).unwrap();
    let _ = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(
        md.contains("differ from the hashes it recorded (metrics.csv)"),
        "{md}"
    );
    std::fs::remove_dir_all(&point).unwrap();
    // Its row alone does not make it completed: --collect says so, a resume runs it again.
    let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    let csv = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(
        csv.contains("is missing or unfinished (only its row is left)"),
        "{}\n{csv}",
        common::stderr(&o)
    );
    assert!(run().status.success());
    assert!(point.join("report.json").exists());
}

/// A forged edit of a stored sweep row.
type Forgery = fn(&mut serde_json::Value);

/// Sets a figure of a stored row (figures are `[name, text]` pairs).
fn set_figure(r: &mut serde_json::Value, name: &str, value: &str) {
    let f = r["figures"].as_array_mut().unwrap();
    let e = f.iter_mut().find(|e| e[0] == name).unwrap();
    e[1] = serde_json::json!(value);
}

/// Each forgery of a stored row, and the words `--collect` names it with.
fn row_forgeries() -> [(&'static str, Forgery, &'static str); 14] {
    [
        (
            "test loss",
            |r| set_figure(r, "network_test_loss", "0.5"),
            "network_test_loss",
        ),
        (
            "loss curve",
            |r| r["loss_curve"][3][1] = serde_json::json!("0.25"),
            "curve",
        ),
        ("seed", |r| r["seed"] = serde_json::json!(7), "seed"),
        (
            "run_dir",
            |r| r["run_dir"] = serde_json::json!("p0001_width=32_seed1"),
            "directory",
        ),
        (
            "phase",
            |r| r["phase"] = serde_json::json!("catapult"),
            "phase",
        ),
        (
            "rel rmse",
            |r| set_figure(r, "rel_rmse_network_linearized", "0.5"),
            "rel_rmse_network_linearized",
        ),
        (
            "learning rate",
            |r| set_figure(r, "learning_rate", "0.5"),
            "learning_rate",
        ),
        (
            "critical lr",
            |r| set_figure(r, "critical_learning_rate", "0.5"),
            "critical_learning_rate",
        ),
        (
            "init vs analytic",
            |r| set_figure(r, "init_ntk_vs_analytic", "0.5"),
            "init_ntk_vs_analytic",
        ),
        (
            "t = inf loss",
            |r| set_figure(r, "kernel_analytic_infinite_time_test_loss", "0.5"),
            "infinite_time",
        ),
        (
            "lambda ratio",
            |r| set_figure(r, "lambda_ratio", "0.5"),
            "lambda_ratio",
        ),
        (
            "removed figure",
            |r| {
                r["figures"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|e| e[0] != "network_test_loss");
            },
            "lacks the figure network_test_loss",
        ),
        (
            "added figure",
            |r| {
                r["figures"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!(["bogus_figure", "1234.5"]));
            },
            "does not write",
        ),
        (
            "status",
            |r| r["status"] = serde_json::json!("xyz"),
            "none of completed",
        ),
    ]
}

#[test]
fn a_stored_row_that_disagrees_with_its_run_directory_is_not_collected() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, out) = one_point_sweep(tmp.path());
    let run = || run_sweep_into(&cfg, &out);
    assert!(run().status.success());
    let row_path = out.join("rows").join("p0000.json");
    let honest = std::fs::read_to_string(&row_path).unwrap();
    assert!(honest.contains("rel_rmse_network_linearized") && honest.contains("learning_rate"));
    let mut row: serde_json::Value = serde_json::from_str(&honest).unwrap();
    let forgeries = row_forgeries();
    for (what, forge, named) in forgeries {
        let mut forged = row.clone();
        forge(&mut forged);
        std::fs::write(&row_path, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
        let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
        let err = common::stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{what}: {err}");
        let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
        let line = md
            .lines()
            .find(|l| l.contains("p0000_"))
            .unwrap_or_default();
        assert!(line.contains("p0000.json"), "{what}: {md}");
        assert!(line.contains(named), "{what}: {line}");
        // The point's row in sweep.csv is a missing point's: a status and nothing else.
        let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
        let row0 = csv.lines().nth(1).unwrap();
        assert!(row0.starts_with("32,0,\"missing: "), "{what}: {row0}");
        assert!(row0.ends_with(",,,,,,,,,,,,,,,,,,,,"), "{what}: {row0}");
    }
    // A row that says the point failed while its directory holds a completed run.
    let mut forged = row.clone();
    forged["status"] = serde_json::json!("failed: out of memory");
    std::fs::write(&row_path, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let _ = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("holds a completed run"), "{md}");
    // A point directory run with other settings than the plan's (its config edited, the hash
    // in its report updated): named, whatever its row says.
    std::fs::write(&row_path, &honest).unwrap();
    let point = out.join("p0000_width=32_seed0");
    let cfg_path = point.join("config.toml");
    let edited = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("steps = 60", "steps = 50");
    std::fs::write(&cfg_path, &edited).unwrap();
    let report_path = point.join("report.json");
    let mut report = common::read_json(&report_path);
    report["files_sha256"]["config.toml"] =
        serde_json::json!(ntk_dynamics::report::repro::sha256_hex(edited.as_bytes()));
    std::fs::write(&report_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    let _ = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(
        md.contains("other settings than the plan") && md.contains("steps = 50"),
        "{md}"
    );
    // A row file holding another point's row.
    let mut forged = row.clone();
    forged["index"] = serde_json::json!(1);
    std::fs::write(&row_path, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    assert!(
        common::stderr(&o).contains("holds the row of point 1"),
        "{}",
        common::stderr(&o)
    );
    // A resume keeps the directory aside and runs the point again; the fresh row is honest.
    row["figures"][0][1] = serde_json::json!("123.0");
    std::fs::write(&row_path, serde_json::to_string_pretty(&row).unwrap()).unwrap();
    assert!(run().status.success());
    assert!(std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".kept-")));
    let o = common::run_bin(&["--collect", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
}
