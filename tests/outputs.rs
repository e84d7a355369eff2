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
