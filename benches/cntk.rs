//! `cargo bench --bench cntk [-- quick]`: the analytic convolutional NNGP + NTK (`ntk::conv`) of
//! all 1797 digits (8×8×1 images; 3×3 filters, `same` padding, two ReLU convolutions, flatten
//! readout), train × train — the case neural-tangents takes 122 s for on a 2-core machine
//! (`benches/cntk_neural_tangents.py` times it in the same sitting). `quick` uses 400 images.
//! Prints the median wall time of a few repetitions and the pairs per second.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use ntk_dynamics::model::{Activation, Parametrization};
use ntk_dynamics::ntk::analytic::MomentMethod;
use ntk_dynamics::ntk::conv::{ConvKernelConfig, Padding, Readout, Spatial};

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/data/digits.csv");
    let text = std::fs::read_to_string(&path).expect("experiments/data/digits.csv");
    // Pixels 0..16 standardised per column over the data set (as the field's CNTK papers do).
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(64).map(|v| v.parse().unwrap()).collect())
        .collect();
    let n = if quick { 400 } else { rows.len() };
    let mut x: Vec<f64> = rows[..n].iter().flatten().copied().collect();
    for c in 0..64 {
        let col: Vec<f64> = (0..n).map(|i| x[i * 64 + c]).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        for i in 0..n {
            x[i * 64 + c] = if sd > 0.0 {
                (x[i * 64 + c] - mean) / sd
            } else {
                0.0
            };
        }
    }
    let cfg = ConvKernelConfig {
        image: Spatial {
            height: 8,
            width: 8,
        },
        channels: 1,
        conv_channels: 64,
        filter: 3,
        padding: Padding::Same,
        depth: 2,
        readout: Readout::Flatten,
        activation: Activation::Relu,
        w_std: 2f64.sqrt(),
        b_std: 0.0,
        bias: true,
        parametrization: Parametrization::Ntk,
        method: MomentMethod::Auto(64),
    };
    let reps = if quick { 3 } else { 2 };
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let k = cfg.kernels(&x, n, &x, n);
        std::hint::black_box(&k);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    println!(
        "analytic CNTK (NNGP + NTK), {n} digits train x train, flatten, depth 2, 3x3 same: median {median:.2} s over {reps} runs ({:.0} pairs/s)",
        (n * n) as f64 / median
    );
}
