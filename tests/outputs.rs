//! What a run writes for re-analysis: Θ_t at every kernel checkpoint and Θ0 test × train
//! (`outputs.save_kernel_checkpoints`, `outputs.save_kernels`), the kernel alignments of
//! `kernel_alignment.csv` recomputed from those saved kernels by a naive f64 implementation
//! (explicit centring matrix), and the saved kernels consistent with the ones the run saves
//! elsewhere (Θ0 and Θ_final).

mod common;

use std::path::Path;

use ntk_dynamics::data::npy;

fn read(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let (h, v) = npy::read_array(&npy::ArrayLocation {
        file: path.to_path_buf(),
        name: None,
    })
    .unwrap();
    (h.shape, v)
}

/// `⟨HAH, HBH⟩ / (‖HAH‖ ‖HBH‖)` with `H = I − 11ᵀ/n` formed explicitly.
fn naive_centered_alignment(a: &[f64], b: &[f64], n: usize) -> f64 {
    let h: Vec<f64> = (0..n * n)
        .map(|ij| (if ij / n == ij % n { 1.0 } else { 0.0 }) - 1.0 / n as f64)
        .collect();
    let mul = |x: &[f64], y: &[f64]| -> Vec<f64> {
        (0..n * n)
            .map(|ij| {
                (0..n)
                    .map(|l| x[(ij / n) * n + l] * y[l * n + ij % n])
                    .sum()
            })
            .collect()
    };
    let (ac, bc) = (mul(&mul(&h, a), &h), mul(&mul(&h, b), &h));
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    dot(&ac, &bc) / (dot(&ac, &ac).sqrt() * dot(&bc, &bc).sqrt())
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() / scale))
}

#[test]
fn saved_checkpoint_kernels_reproduce_the_logged_alignments() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 20;
    let x = common::gauss(n * 3 + 8 * 3, 21);
    let mut csv = String::from("a,b,c,y0,y1\n");
    for i in 0..n + 8 {
        let r = &x[3 * i..3 * i + 3];
        csv += &format!(
            "{},{},{},{},{}\n",
            r[0],
            r[1],
            r[2],
            r[0] * r[1],
            (r[2]).sin()
        );
    }
    let data = common::write(tmp.path(), "d.csv", &csv);
    let cfg = common::write(
        tmp.path(),
        "c.toml",
        &format!(
            "[experiment]\nname = \"o\"\n[data]\nkind = \"csv\"\npath = \"{}\"\n\
             target = [\"y0\", \"y1\"]\nshuffle = false\nstandardize = false\ntest_fraction = 0.2857142857142857\n\
             [model]\nwidth = 48\nprecision = \"f64\"\n[training]\nlr_scale = 0.9\nsteps = 40\n\
             [kernel]\nsolutions = [\"empirical\"]\nform = \"trace\"\nprobe_size = {n}\n\
             [logging]\nevery = 10\nkernel_every = 20\n\
             [outputs]\nsave_kernels = true\nsave_kernel_checkpoints = true\n",
            data.display()
        ),
    );
    let run = tmp.path().join("run");
    let o = common::run_into(&cfg, &run);
    assert!(o.status.success(), "{}", common::stderr(&o));
    // Targets of the training points: the first n rows (no shuffle), columns y0, y1.
    let y: Vec<f64> = csv
        .lines()
        .skip(1)
        .take(n)
        .flat_map(|l| {
            l.split(',')
                .skip(3)
                .map(|v| v.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let yy: Vec<f64> = (0..n * n)
        .map(|ij| {
            (0..2)
                .map(|c| y[(ij / n) * 2 + c] * y[(ij % n) * 2 + c])
                .sum()
        })
        .collect();
    let (_, theta0) = read(&run.join("kernels/empirical_ntk_step0.npy"));
    let text = std::fs::read_to_string(run.join("kernel_alignment.csv")).unwrap();
    let mut steps = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let step: u64 = f[0].parse().unwrap();
        let (shape, theta) = read(&run.join(format!("kernels/empirical_ntk_step{step}.npy")));
        assert_eq!(shape, vec![n, n]);
        let target: f64 = f[2].parse().unwrap();
        let cka: f64 = f[3].parse().unwrap();
        let want_target = naive_centered_alignment(&theta, &yy, n);
        let want_cka = naive_centered_alignment(&theta, &theta0, n);
        assert!(
            (target - want_target).abs() < 1e-10,
            "step {step}: {target} vs {want_target}"
        );
        assert!(
            (cka - want_cka).abs() < 1e-10,
            "step {step}: {cka} vs {want_cka}"
        );
        let (shape, _) =
            read(&run.join(format!("kernels/empirical_ntk_test_train_step{step}.npy")));
        assert_eq!(shape, vec![8, n]);
        steps.push(step);
    }
    assert_eq!(steps, vec![0, 20, 40]);
    // The same kernels as the run's other kernel files.
    let (_, init) = read(&run.join("kernels/empirical_ntk_init.npy"));
    assert!(max_rel(&init, &theta0) < 1e-12);
    let (_, fin) = read(&run.join("kernels/empirical_ntk_final.npy"));
    let (_, last) = read(&run.join("kernels/empirical_ntk_step40.npy"));
    assert!(max_rel(&fin, &last) < 1e-12);
    let (shape, tt0) = read(&run.join("kernels/empirical_ntk_test_train_init.npy"));
    assert_eq!(shape, vec![8, n]);
    let (_, tt_step0) = read(&run.join("kernels/empirical_ntk_test_train_step0.npy"));
    assert!(max_rel(&tt0, &tt_step0) < 1e-12);
}

/// The saved arrays of an `.npz` by name (read by the npz reader of the data path).
fn npz_array(file: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    let (h, v) = npy::read_array(&npy::ArrayLocation {
        file: file.to_path_buf(),
        name: Some(name.into()),
    })
    .unwrap();
    (h.shape, v)
}

/// The network's outputs column of `predictions.csv` for the test split, `n_test × K`.
fn network_test_outputs(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (split, net) = (
        header.iter().position(|h| *h == "split").unwrap(),
        header.iter().position(|h| *h == "network").unwrap(),
    );
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[split] == "test")
        .map(|f| f[net].parse().unwrap())
        .collect()
}

/// The test inputs as the run saw them (`predictions.csv` feature columns, test split).
fn test_inputs(run: &Path, d: usize) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let first = header.iter().position(|h| *h == "output").unwrap() + 1;
    let (split, output) = (0, first - 1);
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[split] == "test" && f[output] == "0")
        .map(|f| {
            f[first..first + d]
                .iter()
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect()
}

/// A dense layer as stax computes it under `parameterization="ntk"`:
/// `σ_w/√n_in · h W + σ_b · b`.
fn dense(h: &[f64], w: &[f64], b: &[f64], n_in: usize, n_out: usize) -> Vec<f64> {
    let (sw, sb) = (2f64.sqrt(), 0.1);
    (0..n_out)
        .map(|o| {
            sw / (n_in as f64).sqrt() * (0..n_in).map(|i| h[i] * w[i * n_out + o]).sum::<f64>()
                + sb * b[o]
        })
        .collect()
}

fn relu(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x.max(0.0)).collect()
}

/// A stride-1 SAME convolution (⌊(f−1)/2⌋ zeros before) of an NHWC image with an HWIO kernel,
/// as `stax.Conv(..., padding="SAME", parameterization="ntk")`.
fn conv_same(x: &[f64], hw: usize, c: usize, w: &[f64], b: &[f64], f: usize, o: usize) -> Vec<f64> {
    let (sw, sb) = (2f64.sqrt(), 0.1);
    let pad = (f - 1) / 2;
    let mut out = vec![0.0; hw * hw * o];
    for y in 0..hw {
        for xx in 0..hw {
            for oc in 0..o {
                let mut s = 0.0;
                for dy in 0..f {
                    for dx in 0..f {
                        let (iy, ix) = (y + dy, xx + dx);
                        if iy < pad || ix < pad || iy - pad >= hw || ix - pad >= hw {
                            continue;
                        }
                        for ic in 0..c {
                            s += x[((iy - pad) * hw + (ix - pad)) * c + ic]
                                * w[((dy * f + dx) * c + ic) * o + oc];
                        }
                    }
                }
                out[(y * hw + xx) * o + oc] = sw / ((f * f * c) as f64).sqrt() * s + sb * b[oc];
            }
        }
    }
    out
}

fn parameters_run(tmp: &Path, model: &str, d: usize, extra_data: &str) -> std::path::PathBuf {
    let x = common::gauss(40 * d, 5);
    let mut csv = (0..d)
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + ",y0,y1\n";
    for i in 0..40 {
        let r = &x[d * i..d * (i + 1)];
        csv += &(r
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
            + &format!(",{},{}\n", r[0] * r[1], r[d - 1]));
    }
    let data = common::write(tmp, "d.csv", &csv);
    let cfg = common::write(
        tmp,
        "p.toml",
        &format!(
            "[experiment]\nname = \"params\"\n[data]\nkind = \"csv\"\npath = \"{}\"\n\
             target = [\"y0\", \"y1\"]\nstandardize = false\ntest_fraction = 0.25\n{extra_data}\n\
             [model]\nprecision = \"f64\"\n{model}\n[training]\nlr_scale = 0.5\nsteps = 6\n\
             [kernel]\nsolutions = []\n[outputs]\nsave_parameters = true\n",
            data.display()
        ),
    );
    let run = tmp.join("run");
    let o = common::run_into(&cfg, &run);
    assert!(o.status.success(), "{}", common::stderr(&o));
    run
}

#[test]
fn saved_mlp_parameters_reproduce_the_network_in_an_independent_forward_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let run = parameters_run(tmp.path(), "width = 16\ndepth = 2", 3, "");
    let file = run.join("parameters_final.npz");
    let layers: Vec<(Vec<usize>, Vec<f64>, Vec<f64>)> = (0..3)
        .map(|l| {
            let (shape, w) = npz_array(&file, &format!("layer{l}_W"));
            let (_, b) = npz_array(&file, &format!("layer{l}_b"));
            (shape, w, b)
        })
        .collect();
    assert_eq!(
        layers.iter().map(|l| l.0.clone()).collect::<Vec<_>>(),
        vec![vec![3, 16], vec![16, 16], vec![16, 2]]
    );
    let mut ours = Vec::new();
    for x in test_inputs(&run, 3) {
        let mut h = x;
        for (l, (shape, w, b)) in layers.iter().enumerate() {
            let z = dense(&h, w, b, shape[0], shape[1]);
            h = if l < 2 { relu(z) } else { z };
        }
        ours.extend(h);
    }
    let recorded = network_test_outputs(&run);
    assert_eq!(ours.len(), recorded.len());
    assert!(
        max_rel(&recorded, &ours) < 1e-9,
        "{}",
        max_rel(&recorded, &ours)
    );
    // θ0 holds the standard-normal draws of the ntk parametrization.
    let (_, w0) = npz_array(&run.join("parameters_init.npz"), "layer1_W");
    let mean = w0.iter().sum::<f64>() / w0.len() as f64;
    let std = (w0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w0.len() as f64).sqrt();
    assert!(mean.abs() < 0.2 && (std - 1.0).abs() < 0.15, "{mean} {std}");
}

#[test]
fn saved_conv_parameters_are_hwio_and_reproduce_the_network_in_an_independent_forward_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let (hw, c, f, width) = (4, 2, 3, 5);
    let run = parameters_run(
        tmp.path(),
        &format!("architecture = \"conv\"\nwidth = {width}\ndepth = 2\nfilter = {f}"),
        hw * hw * c,
        "image_shape = [4, 4, 2]",
    );
    let file = run.join("parameters_final.npz");
    let (s0, w0) = npz_array(&file, "layer0_W");
    let (s1, w1) = npz_array(&file, "layer1_W");
    let (s2, w2) = npz_array(&file, "layer2_W");
    assert_eq!(s0, vec![f, f, c, width]);
    assert_eq!(s1, vec![f, f, width, width]);
    assert_eq!(s2, vec![hw * hw * width, 2]);
    let b: Vec<Vec<f64>> = (0..3)
        .map(|l| npz_array(&file, &format!("layer{l}_b")).1)
        .collect();
    let mut ours = Vec::new();
    for x in test_inputs(&run, hw * hw * c) {
        let h = relu(conv_same(&x, hw, c, &w0, &b[0], f, width));
        let h = relu(conv_same(&h, hw, width, &w1, &b[1], f, width));
        ours.extend(dense(&h, &w2, &b[2], hw * hw * width, 2));
    }
    let recorded = network_test_outputs(&run);
    assert_eq!(ours.len(), recorded.len());
    assert!(
        max_rel(&recorded, &ours) < 1e-9,
        "{}",
        max_rel(&recorded, &ours)
    );
}

#[test]
fn predictions_at_every_checkpoint_give_back_the_logged_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let text = common::tiny_sine_toml(tmp.path(), "")
        .replace("save_kernels = true", "save_predictions = \"checkpoints\"");
    let cfg = common::write(tmp.path(), "s.toml", &text);
    let run = tmp.path().join("run");
    let o = common::run_into(&cfg, &run);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let index = common::read_json(&run.join("predictions_steps.json"));
    let (shape, values) = read(&run.join("predictions_steps.npy"));
    let tracks: Vec<String> = index["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let (n_train, n_points) = (8, 20);
    assert_eq!(shape, vec![7, tracks.len(), n_points, 1]);
    assert_eq!(index["points"]["train"], serde_json::json!([0, 8]));
    // L = ½ · mean (f − y)² on the training points, per track and checkpoint, against metrics.csv.
    let (mh, rows) = common::read_csv(&run.join("metrics.csv"));
    let (ph, prow) = common::read_csv(&run.join("predictions.csv"));
    let col = |h: &[String], n: &str| h.iter().position(|c| c == n).unwrap();
    let y: Vec<f64> = prow
        .iter()
        .filter(|r| r[0] == "train")
        .map(|r| r[col(&ph, "target")].parse().unwrap())
        .collect();
    for (c, row) in rows.iter().enumerate() {
        assert_eq!(
            index["steps"][c].as_u64().unwrap(),
            row[0].parse::<u64>().unwrap()
        );
        for (ti, t) in tracks.iter().enumerate() {
            let f = &values[(c * tracks.len() + ti) * n_points..][..n_train];
            let loss =
                0.5 * f.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n_train as f64;
            let logged: f64 = row[col(&mh, &format!("{t}_train_loss"))].parse().unwrap();
            assert!(
                (loss - logged).abs() <= 1e-12 * logged.abs().max(1e-300),
                "{t} at checkpoint {c}: {loss} vs {logged}"
            );
        }
    }
    // The last checkpoint is what predictions.csv holds.
    let last = rows.len() - 1;
    for (ti, t) in tracks.iter().enumerate() {
        let f = &values[(last * tracks.len() + ti) * n_points..][..n_points];
        let csv: Vec<f64> = prow
            .iter()
            .map(|r| r[col(&ph, t)].parse().unwrap())
            .collect();
        assert_eq!(f, &csv[..], "{t}");
    }
}

#[test]
fn ensemble_members_average_to_the_recorded_ensemble_mean() {
    let tmp = tempfile::tempdir().unwrap();
    let text = common::tiny_sine_toml(tmp.path(), "") + "\n[ensemble]\nmembers = 4\n";
    let text = text.replace("save_kernels = true", "save_kernels = false");
    let cfg = common::write(tmp.path(), "e.toml", &text);
    let run = tmp.path().join("run");
    let o = common::run_into(&cfg, &run);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let index = common::read_json(&run.join("ensemble_members.json"));
    let (shape, values) = read(&run.join("ensemble_members.npy"));
    assert_eq!(shape[1..], [4, 12, 1]);
    let (h, rows) = common::read_csv(&run.join("ensemble.csv"));
    let test: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "test").collect();
    for (ti, t) in index["tracks"].as_array().unwrap().iter().enumerate() {
        let t = t.as_str().unwrap();
        let (mean_col, var_col) = (
            h.iter().position(|c| *c == format!("{t}_mean")).unwrap(),
            h.iter().position(|c| *c == format!("{t}_var")).unwrap(),
        );
        for (i, r) in test.iter().enumerate() {
            let m: Vec<f64> = (0..4).map(|m| values[(ti * 4 + m) * 12 + i]).collect();
            let mean = m.iter().sum::<f64>() / 4.0;
            let recorded: f64 = r[mean_col].parse().unwrap();
            assert!(
                (mean - recorded).abs() < 1e-12 * recorded.abs().max(1.0),
                "{t} {i}"
            );
            // The recorded variance is the unbiased sample variance over the members.
            let ss = m.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
            let var: f64 = r[var_col].parse().unwrap();
            assert!(
                (var - ss / 3.0).abs() <= 1e-9 * var.max(1e-300),
                "{t} {i}: {var} vs {}",
                ss / 3.0
            );
        }
    }
}

#[test]
fn width_sweeps_carry_the_final_alignments_of_their_points() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::write(
        tmp.path(),
        "w.toml",
        "[experiment]\nname = \"w\"\n[data]\nkind = \"sine\"\nn_train = 8\nn_test = 8\n\
         [model]\nwidth = 32\n[training]\nlr_scale = 0.5\nsteps = 20\n[kernel]\nsolutions = []\n\
         probe_size = 8\n[logging]\nevery = 10\nkernel_every = 10\n\
         [sweep]\nseeds = 1\n[sweep.vary]\n\"model.width\" = [32, 128]\n",
    );
    let out = tmp.path().join("sw");
    let o = common::run_bin(&[
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (h, rows) = common::read_csv(&out.join("sweep.csv"));
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for r in &rows {
        let dir = out.join(r[col("run_dir")].trim_matches('"'));
        let (_, ka) = common::read_csv(&dir.join("kernel_alignment.csv"));
        let (first, last) = (&ka[0], &ka[ka.len() - 1]);
        let num = |s: &str| s.parse::<f64>().unwrap();
        assert_eq!(num(&r[col("ntk_cka_distance")]), 1.0 - num(&last[3]));
        assert_eq!(
            num(&r[col("ntk_target_alignment_gain")]),
            num(&last[2]) - num(&first[2])
        );
    }
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(
        md.contains("ntk_cka_distance"),
        "fitted against width: {md}"
    );
}
