//! `cargo bench --bench tanh_cntk [-- quick]`: the analytic conv NNGP + NTK of a tanh net (no
//! closed-form moment), Mehler series sums (`ntk::hermite`, the default) against every moment by
//! the 2-D Gauss–Legendre quadrature at the default order 48 (what the conv kernels did before),
//! in one sitting:
//! 1. digits (8×8×1, intensities scaled to [0, 1] as in `experiments/digits_cnn.toml`), 3×3 `same` convolutions, depth 2, flatten readout, σ_w = 1.5,
//!    N × N for N = 60 (`quick`: 30): both methods timed, and their largest difference relative to
//!    the largest entry;
//! 2. the same kernel of 200 (`quick`) or 500 digits: the series timed, the quadrature's time
//!    estimated from its measured seconds per moment in case 1;
//! 3. three 16×16×1 images, depth 4, global average pooling (every position pair, 256² of them
//!    per layer): the series timed; the quadrature's time estimated from its measured seconds per
//!    moment in case 1 times this kernel's moments (running it would take about half an hour).
//!
//! Prints one line per case and writes `target/bench/tanh_cntk.json`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use ntk_dynamics::model::{Activation, Parametrization};
use ntk_dynamics::ntk::analytic::MomentMethod;
use ntk_dynamics::ntk::conv::{ConvKernelConfig, Padding, Readout, Spatial};

fn digits(n: usize) -> Vec<f64> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/data/digits.csv");
    let text = std::fs::read_to_string(&path).expect("experiments/data/digits.csv");
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .take(n)
        .map(|l| l.split(',').take(64).map(|v| v.parse().unwrap()).collect())
        .collect();
    // Intensities 0–16 scaled to [0, 1], as experiments/digits_cnn.toml does.
    rows.iter().flatten().map(|v| v / 16.0).collect()
}

fn config(side: usize, depth: usize, readout: Readout, method: MomentMethod) -> ConvKernelConfig {
    ConvKernelConfig {
        image: Spatial {
            height: side,
            width: side,
        },
        channels: 1,
        conv_channels: 64,
        filter: 3,
        padding: Padding::Same,
        depth,
        readout,
        activation: Activation::Tanh,
        w_std: 1.5,
        b_std: 0.1,
        bias: true,
        parametrization: Parametrization::Ntk,
        method,
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 30 } else { 60 };
    let x = digits(n);
    let series = config(8, 2, Readout::Flatten, MomentMethod::Auto(48));
    let quadrature = config(8, 2, Readout::Flatten, MomentMethod::Quadrature(48));
    let (ks, ts) = timed(|| series.kernels(&x, n, &x, n));
    let (kq, tq) = timed(|| quadrature.kernels(&x, n, &x, n));
    let scale = |m: &faer::Mat<f64>| {
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .fold(0.0f64, |a, (i, j)| a.max(m[(i, j)].abs()))
    };
    let diff = |a: &faer::Mat<f64>, b: &faer::Mat<f64>| {
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .fold(0.0f64, |m, (i, j)| m.max((a[(i, j)] - b[(i, j)]).abs()))
            / scale(b)
    };
    let (dn, dt) = (diff(&ks.nngp, &kq.nngp), diff(&ks.ntk, &kq.ntk));
    // Moments of the quadrature run: the symmetric N(N+1)/2 entries, 64 positions, 2 layers.
    let moments = (n * (n + 1) / 2) as f64 * 64.0 * 2.0;
    let per_moment = tq / moments;
    println!(
        "tanh CNTK, {n} digits, flatten, depth 2: series {ts:.3} s, quadrature(48) {tq:.2} s, ratio {:.0}x; largest difference / largest entry: NNGP {dn:.1e}, NTK {dt:.1e}",
        tq / ts
    );
    // The same kernel of more images: the quadrature's time estimated from its rate above.
    let big = if quick { 200 } else { 500 };
    let xb = digits(big);
    let (_, tb) = timed(|| series.kernels(&xb, big, &xb, big));
    let big_estimated = (big * (big + 1) / 2) as f64 * 64.0 * 2.0 * per_moment;
    println!(
        "tanh CNTK, {big} digits, flatten, depth 2: series {tb:.2} s; quadrature(48) estimated {big_estimated:.0} s, ratio ~{:.0}x",
        big_estimated / tb
    );
    let side = 16;
    let images: Vec<f64> = (0..3 * side * side)
        .map(|i| (i as f64 * 0.37).sin())
        .collect();
    let gap = config(side, 4, Readout::GlobalAvgPool, MomentMethod::Auto(48));
    let (_, tg) = timed(|| gap.kernels(&images, 3, &images, 3));
    let gap_moments = 6.0 * (side * side * side * side) as f64 * 4.0;
    let estimated = gap_moments * per_moment;
    println!(
        "tanh CNTK, 3 images 16x16, global average pooling, depth 4: series {tg:.2} s; quadrature(48) estimated {:.0} s ({gap_moments:.0} moments at {:.1} µs, measured above), ratio ~{:.0}x",
        estimated,
        per_moment * 1e6,
        estimated / tg
    );
    let json = serde_json::json!({
        "flatten_digits": {"n": n, "series_s": ts, "quadrature48_s": tq, "ratio": tq / ts,
            "max_rel_diff_nngp": dn, "max_rel_diff_ntk": dt},
        "flatten_digits_large": {"n": big, "series_s": tb, "quadrature48_estimated_s": big_estimated},
        "global_pool_16x16": {"images": 3, "series_s": tg, "quadrature48_estimated_s": estimated,
            "quadrature_s_per_moment": per_moment},
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(
        dir.join("tanh_cntk.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .expect("target/bench/tanh_cntk.json");
}
