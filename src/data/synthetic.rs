//! Synthetic data: `y = sin(ω·x)` on an interval, and a random one-hidden-layer ReLU teacher on
//! the sphere of radius √d.

use rand::{rngs::StdRng, Rng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::Dataset;

/// `y = sin(frequency · x)` on an interval; train points uniform at random, test points on a
/// grid (`data.kind = "sine"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SineSource {
    /// ω.
    pub frequency: f64,
    /// `[lo, hi]`.
    pub interval: [f64; 2],
    /// Std of Gaussian noise on the training targets.
    pub noise: f64,
}

/// Inputs uniform on the sphere of radius √d, targets from a random ReLU teacher
/// (`data.kind = "teacher"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TeacherSource {
    /// d.
    pub input_dim: usize,
    /// Teacher hidden width.
    pub teacher_width: usize,
    /// Std of Gaussian noise on the training targets.
    pub noise: f64,
}

/// The sine data set.
pub fn sine(src: &SineSource, n_train: usize, n_test: usize, rng: &mut StdRng) -> Dataset {
    let frequency = src.frequency;
    let [lo, hi] = src.interval;
    let x_train: Vec<f64> = (0..n_train).map(|_| rng.random_range(lo..hi)).collect();
    let x_test: Vec<f64> = (0..n_test)
        .map(|i| {
            if n_test == 1 {
                0.5 * (lo + hi)
            } else {
                lo + (hi - lo) * i as f64 / (n_test - 1) as f64
            }
        })
        .collect();
    Dataset {
        input_dim: 1,
        n_outputs: 1,
        y_train: x_train.iter().map(|x| (frequency * x).sin()).collect(),
        y_test: x_test.iter().map(|x| (frequency * x).sin()).collect(),
        x_train,
        x_test,
        x_val: Vec::new(),
        y_val: Vec::new(),
        feature_names: vec!["x".into()],
        target_names: vec!["y".into()],
        classes: None,
        text: None,
    }
}

/// The teacher data set: `y = √(2/m) Σ_j a_j relu(w_j·x/√d)`, `w, a ~ N(0, 1)`.
pub fn teacher(src: &TeacherSource, n_train: usize, n_test: usize, rng: &mut StdRng) -> Dataset {
    let (d, m) = (src.input_dim, src.teacher_width);
    let w: Vec<f64> = (0..d * m).map(|_| StandardNormal.sample(rng)).collect();
    let a: Vec<f64> = (0..m).map(|_| StandardNormal.sample(rng)).collect();
    let teacher = |x: &[f64]| -> f64 {
        let mut s = 0.0;
        for j in 0..m {
            let z: f64 = (0..d).map(|i| x[i] * w[j * d + i]).sum::<f64>() / (d as f64).sqrt();
            s += a[j] * z.max(0.0);
        }
        s * (2.0 / m as f64).sqrt()
    };
    let mut sphere = |n: usize| -> Vec<f64> {
        let mut v = Vec::with_capacity(n * d);
        for _ in 0..n {
            let p: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
            let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            v.extend(p.iter().map(|x| x / norm * (d as f64).sqrt()));
        }
        v
    };
    let x_train = sphere(n_train);
    let x_test = sphere(n_test);
    Dataset {
        input_dim: d,
        n_outputs: 1,
        y_train: x_train.chunks(d).map(teacher).collect(),
        y_test: x_test.chunks(d).map(teacher).collect(),
        x_train,
        x_test,
        x_val: Vec::new(),
        y_val: Vec::new(),
        feature_names: (0..d).map(|i| format!("x{i}")).collect(),
        target_names: vec!["y".into()],
        classes: None,
        text: None,
    }
}
