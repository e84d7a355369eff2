//! Ensembles against the infinite-width Gaussian process: the GP's mean and covariance against
//! a naive f64 computation of the closed forms (matrix exponential by Taylor series with scaling
//! and squaring, matrix powers by repeated products, inverses by Gauss–Jordan), and trained
//! ensembles against the GP at two widths.

mod common;

use faer::Mat;
use ntk_dynamics::dynamics::gp::{EnsembleGp, GpInputs, GpKernel};
use ntk_dynamics::dynamics::kernel::{DiagReg, TimeMode};

type M = Vec<Vec<f64>>;

fn zeros(r: usize, c: usize) -> M {
    vec![vec![0.0; c]; r]
}

fn eye(n: usize) -> M {
    let mut m = zeros(n, n);
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    m
}

fn mul(a: &M, b: &M) -> M {
    let (r, k, c) = (a.len(), b.len(), b[0].len());
    let mut o = zeros(r, c);
    for i in 0..r {
        for j in 0..c {
            o[i][j] = (0..k).map(|l| a[i][l] * b[l][j]).sum();
        }
    }
    o
}

fn tr(a: &M) -> M {
    (0..a[0].len())
        .map(|j| a.iter().map(|row| row[j]).collect())
        .collect()
}

fn add(a: &M, b: &M, s: f64) -> M {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(u, v)| u + s * v).collect())
        .collect()
}

fn scale(a: &M, s: f64) -> M {
    a.iter()
        .map(|r| r.iter().map(|v| v * s).collect())
        .collect()
}

/// Gauss–Jordan inverse with partial pivoting.
fn inv(a: &M) -> M {
    let n = a.len();
    let mut m: M = a
        .iter()
        .zip(eye(n))
        .map(|(r, e)| r.iter().copied().chain(e).collect())
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs()))
            .unwrap();
        m.swap(c, p);
        let d = m[c][c];
        for v in m[c].iter_mut() {
            *v /= d;
        }
        for r in 0..n {
            if r != c {
                let f = m[r][c];
                let row_c = m[c].clone();
                for (v, w) in m[r].iter_mut().zip(row_c) {
                    *v -= f * w;
                }
            }
        }
    }
    m.into_iter().map(|r| r[n..].to_vec()).collect()
}

/// exp(a) by scaling and squaring of a 30-term Taylor series.
fn expm(a: &M) -> M {
    let norm: f64 = a.iter().flatten().map(|v| v.abs()).sum();
    let sq = (norm.max(1.0).log2().ceil() as i32 + 4).max(0);
    let a = scale(a, 0.5f64.powi(sq));
    let (mut term, mut sum) = (eye(a.len()), eye(a.len()));
    for k in 1..30 {
        term = scale(&mul(&term, &a), 1.0 / k as f64);
        sum = add(&sum, &term, 1.0);
    }
    for _ in 0..sq {
        sum = mul(&sum, &sum);
    }
    sum
}

fn to_faer(m: &M) -> Mat<f64> {
    Mat::from_fn(m.len(), m[0].len(), |i, j| m[i][j])
}

fn block(m: &M, r: std::ops::Range<usize>, c: std::ops::Range<usize>) -> M {
    m[r].iter().map(|row| row[c.clone()].to_vec()).collect()
}

/// A positive definite kernel on `n` points from random features.
fn kernel(n: usize, seed: u64) -> M {
    let f = common::gauss(n * (n + 2), seed);
    let f: M = f.chunks(n + 2).map(|c| c.to_vec()).collect();
    scale(&mul(&f, &tr(&f)), 1.0 / (n + 2) as f64)
}

fn max_rel_diff(a: &Mat<f64>, b: &M) -> f64 {
    // Relative to the largest entry of the reference (absolute when it is all zero).
    let scale = b.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let mut d = 0.0f64;
    for (i, row) in b.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            d = d.max((a[(i, j)] - v).abs());
        }
    }
    d / scale
}

/// The GP's test covariance in closed form, from `g = Θ_td Θ_r⁻¹ (I − R)`, `R` and `Θ_r⁻¹`
/// (the kernel that drives the dynamics) and the NNGP blocks: with every layer trained
/// `K_tt + g K_dd gᵀ − g K_tdᵀ − K_td gᵀ`, with the readout only `K_tt − K_td Θ_r⁻¹ (I − R²) K_tdᵀ`.
fn closed_form_test_cov(
    get: GpKernel,
    (g, r, a_inv): (&M, &M, &M),
    (k_dd, k_td, k_tt): (&M, &M, &M),
) -> M {
    let n = r.len();
    match get {
        GpKernel::Ntk => {
            let sand = mul(&mul(g, k_dd), &tr(g));
            let cross = mul(g, &tr(k_td));
            add(
                &add(&add(k_tt, &sand, 1.0), &cross, -1.0),
                &tr(&cross),
                -1.0,
            )
        }
        GpKernel::Nngp => {
            let i_r2 = add(&eye(n), &mul(r, r), -1.0);
            let q = mul(&mul(&mul(k_td, a_inv), &i_r2), &tr(k_td));
            add(k_tt, &q, -1.0)
        }
    }
}

#[test]
fn gp_mean_and_covariance_equal_the_closed_forms() {
    let (n, m, k) = (7, 5, 2);
    let theta = kernel(n + m, 11);
    let nngp = kernel(n + m, 12);
    let y: M = common::gauss(n * k, 13)
        .chunks(k)
        .map(|c| c.to_vec())
        .collect();
    let (d, t) = (0..n, n..n + m);
    let (th_dd, th_td) = (
        block(&theta, d.clone(), d.clone()),
        block(&theta, t.clone(), d.clone()),
    );
    let (k_dd, k_td, k_tt) = (
        block(&nngp, d.clone(), d.clone()),
        block(&nngp, t.clone(), d.clone()),
        block(&nngp, t.clone(), t.clone()),
    );
    let p = (n * k) as f64;
    let lr = 0.7 * 2.0 * p / 40.0;
    let steps = 23u64;
    let mut checked = 0;
    for time in [TimeMode::Discrete, TimeMode::Continuous] {
        for reg in [0.0, 0.1] {
            for get in [GpKernel::Ntk, GpKernel::Nngp] {
                let inputs = GpInputs {
                    ntk_train: &to_faer(&th_dd),
                    ntk_test_train: &to_faer(&th_td),
                    nngp_train: &to_faer(&k_dd),
                    nngp_test_train: &to_faer(&k_td),
                    nngp_test: &to_faer(&k_tt),
                    y_train: &to_faer(&y),
                    n_targets: n * k,
                    learning_rate: lr,
                    momentum: 0.0,
                    time,
                    diag_reg: DiagReg {
                        value: reg,
                        absolute: false,
                    },
                };
                let gp = EnsembleGp::new(get, inputs).unwrap();
                let (a_dd, a_td) = match get {
                    GpKernel::Ntk => (&th_dd, &th_td),
                    GpKernel::Nngp => (&k_dd, &k_td),
                };
                let trace: f64 = (0..n).map(|i| a_dd[i][i]).sum();
                let a_r = add(a_dd, &eye(n), reg * trace / n as f64);
                let a_inv = inv(&a_r);
                for s in [Some(steps), None] {
                    // R = (I − ηΘ_r/P)^s, or exp(−ηsΘ_r/P); 0 at t = ∞.
                    let r = match (s, time) {
                        (None, _) => zeros(n, n),
                        (Some(s), TimeMode::Discrete) => {
                            let a = add(&eye(n), &a_r, -lr / p);
                            (0..s).fold(eye(n), |acc, _| mul(&acc, &a))
                        }
                        (Some(s), TimeMode::Continuous) => expm(&scale(&a_r, -lr * s as f64 / p)),
                    };
                    let i_r = add(&eye(n), &r, -1.0);
                    let g = mul(&mul(a_td, &a_inv), &i_r); // Θ_td Θ_r⁻¹ (I − R)
                    let mean_test = mul(&g, &y);
                    let cov_test =
                        closed_form_test_cov(get, (&g, &r, &a_inv), (&k_dd, &k_td, &k_tt));
                    let mean_train = match s {
                        None => y.clone(),
                        Some(_) => mul(&i_r, &y),
                    };
                    let sand = match get {
                        GpKernel::Ntk => k_dd.clone(),
                        GpKernel::Nngp => add(&k_dd, &eye(n), reg * trace / n as f64),
                    };
                    let cov_train = mul(&mul(&r, &sand), &r);
                    let (train, test) = gp.at(s);
                    let what = format!("{time:?} reg {reg} {get:?} {s:?}");
                    for (name, ours, reference) in [
                        ("test mean", &test.mean, &mean_test),
                        ("test covariance", &test.cov, &cov_test),
                        ("train mean", &train.mean, &mean_train),
                    ] {
                        let e = max_rel_diff(ours, reference);
                        assert!(e < 1e-10, "{what}: {name} differs by {e:e} (relative)");
                    }
                    // The train covariance is R·S·R (0 at t = ∞, compared absolutely).
                    let e = max_rel_diff(&train.cov, &cov_train);
                    assert!(e < 1e-10, "{what}: train covariance differs by {e:e}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 16);
}

/// 64 members on sine data: the ensemble's figures against the NTK GP at `width`.
fn ensemble_gaps(width: usize) -> ntk_dynamics::record::ensemble::EnsembleRecord {
    use ntk_dynamics::run::{self, RunOptions};
    use ntk_dynamics::{config, data};
    let text = format!(
        r#"[experiment]
name = "ens"
seed = 0
[data]
kind = "sine"
n_train = 16
n_test = 48
[model]
width = {width}
depth = 2
b_std = 1.0
[training]
lr_scale = 0.5
steps = 100
[kernel]
solutions = ["analytic"]
[logging]
every = 50
kernel_every = 100
[ensemble]
members = 64
"#
    );
    let exp = config::parse_str(&text, None).unwrap();
    let ds = data::load(&exp.data, exp.seed).unwrap();
    let rec = run::execute(&exp, &ds, &RunOptions::default()).unwrap();
    let e = rec.ensemble.expect("an ensemble record");
    assert_eq!(e.members, 64);
    // Every checkpoint carries the ensemble figures.
    assert!(rec.checkpoints.iter().all(|c| c.ensemble.is_some()));
    e
}

#[test]
fn wide_ensembles_match_the_gp_and_narrow_ones_do_not() {
    use ntk_dynamics::record::Track;
    let wide = ensemble_gaps(1024);
    let narrow = ensemble_gaps(64);
    for t in [Track::Network, Track::Linearized] {
        let g = wide.gap(t).unwrap();
        // Width 1024: the median ratio of the sample variance (64 members) to the GP variance is
        // near 1 (its sampling spread alone is ±18 % in ln: `var_log_ratio_floor`), and the
        // ensemble mean lies within a few standard errors √(σ²_GP/M) of the GP mean.
        assert!(
            (0.6..=1.6).contains(&g.var_ratio),
            "{t:?} width 1024: variance ratio {}",
            g.var_ratio
        );
        assert!(
            g.mean_z_rms < 3.0,
            "{t:?} width 1024: RMS z {}",
            g.mean_z_rms
        );
        assert!((g.var_log_ratio_floor - 0.18).abs() < 0.01);
    }
    // Width 64: the finite-width corrections are visible (measured: RMS z 6.0 vs 1.7 for the
    // network; ln variance ratio RMS 0.58 vs 0.21; twin variance ratio 2.4 vs 1.05).
    let (w, n) = (
        wide.gap(Track::Network).unwrap(),
        narrow.gap(Track::Network).unwrap(),
    );
    assert!(
        n.mean_z_rms > 2.0 * w.mean_z_rms,
        "{} vs {}",
        n.mean_z_rms,
        w.mean_z_rms
    );
    assert!(n.var_log_ratio_rms > 1.5 * w.var_log_ratio_rms);
    let twin = narrow.gap(Track::Linearized).unwrap();
    assert!(!(0.6..=1.6).contains(&twin.var_ratio), "{}", twin.var_ratio);
}

#[test]
fn ensemble_configs_that_the_gp_does_not_describe_are_refused() {
    use ntk_dynamics::config;
    let base = |extra_training: &str, extra_model: &str, ensemble: &str| {
        format!("[experiment]\nname = \"e\"\n[data]\nkind = \"sine\"\n[model]\nwidth = 8\n{extra_model}\n[training]\nsteps = 1\n{extra_training}\n[ensemble]\n{ensemble}\n")
    };
    for (text, key) in [
        (
            base("center_outputs = true", "", "members = 4"),
            "training.center_outputs",
        ),
        (
            base("loss = \"cross_entropy\"", "", "members = 4"),
            "training.loss",
        ),
        (
            base("", "parametrization = \"mup\"", "members = 4")
                + "[kernel]\nsolutions = [\"empirical\"]\n",
            "model.parametrization",
        ),
        (base("", "", "members = 1"), "ensemble.members"),
        (base("", "", ""), "ensemble.members"),
        (
            base("", "", "members = 4\nparallel = 0"),
            "ensemble.parallel",
        ),
        (base("", "", "members = 4\nmembrs = 3"), "ensemble.membrs"),
    ] {
        let err = config::parse_str(&text, None).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn width_sweeps_of_ensembles_fit_the_gap_exponents() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write(
        dir.path(),
        "s.toml",
        "[experiment]\nname = \"es\"\n[data]\nkind = \"sine\"\nn_train = 6\nn_test = 8\n[model]\nwidth = 16\nb_std = 1.0\n[training]\nlr_scale = 0.5\nsteps = 10\n[kernel]\nsolutions = [\"analytic\"]\n[logging]\nevery = 5\nkernel_every = 10\n[ensemble]\nmembers = 4\n[sweep]\nseeds = 2\n[sweep.vary]\n\"model.width\" = [16, 32, 64]\n",
    );
    let out = dir.path().join("sweep");
    let o = common::run_into(&cfg, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let text = json.to_string();
    for f in [
        "ensemble_network_mean_gap",
        "ensemble_network_var_log_ratio_rms",
        "ensemble_linearized_mean_gap",
    ] {
        assert!(
            text.contains(&format!("\"figure\":\"{f}\"")),
            "no fit of {f}"
        );
    }
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains("ensemble_network_mean_gap_floor"));
    // Each point is a full run directory with ensemble.csv.
    let points = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("ensemble.csv").exists())
        .count();
    assert_eq!(points, 6);
}
