//! `cargo bench --bench ntk [-- quick]`: empirical-NTK, SGD-step and predictor timings, with the
//! achieved GFLOP/s beside a plain f32 GEMM measured in the same run (both CPU backends).
//! Figures are medians of a few repetitions; compare ratios within one run. The figures are also
//! written as JSON to `target/bench/ntk.json` (case, backend, median seconds, GFLOP/s, share of
//! the same run's GEMM rate) so that runs can be compared over time.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::tensor::{DType, Tensor};
use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::dynamics::network::NetworkTrainer;
use ntk_dynamics::linalg;
use ntk_dynamics::model::{
    tensor_from_f64, Activation, ModelSettings, NetworkConfig, Parametrization,
};
use ntk_dynamics::ntk::empirical::empirical_ntk;
use ntk_dynamics::ntk::KernelForm;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_it(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn gemm_gflops(backend: Backend, n: usize) -> f64 {
    let dev = backend.device();
    let a = tensor_from_f64(&vec![0.5; n * n], [n, n], DType::F32, &dev);
    let b = tensor_from_f64(&vec![0.25; n * n], [n, n], DType::F32, &dev);
    let t = time_it(5, || {
        let c: Tensor<2> = a.clone().matmul(b.clone());
        let _ = c.into_data();
    });
    2.0 * (n as f64).powi(3) / t / 1e9
}

fn net(backend: Backend, width: usize) -> NetworkConfig {
    NetworkConfig {
        input_dim: 16,
        n_outputs: 1,
        model: ModelSettings {
            architecture: ntk_dynamics::model::Architecture::Mlp,
            width,
            depth: 3,
            activation: Activation::Relu,
            w_std: 1.4,
            b_std: 0.1,
            bias: true,
            parametrization: Parametrization::Ntk,
            precision: Precision::F32,
            backend,
            blocks: None,
        },
    }
}

/// FLOPs of the structured empirical NTK: forward, one backward (signals only) per output, and the
/// per-layer Gram products of one point set with itself, counted on their N(N+1)/2 distinct
/// entries (the engine computes the lower triangle by block rows; a count of full N×N products
/// would credit it with work it skips). The Gram products run in f64, the rest in f32.
fn ntk_flops(c: &NetworkConfig, n: usize) -> f64 {
    let (n, d, w, k) = (
        n as f64,
        c.input_dim as f64,
        c.model.width as f64,
        c.n_outputs as f64,
    );
    let hidden = (c.model.depth - 1) as f64;
    let fwd = 2.0 * n * (d * w + hidden * w * w + w * k);
    let bwd = k * 2.0 * n * (hidden * w * w + w * k);
    let gram: f64 = c
        .shapes()
        .iter()
        .map(|s| n * (n + 1.0) * (s.n_in as f64 + k * s.n_out as f64))
        .sum();
    fwd + bwd + gram
}

/// One measured case for `target/bench/ntk.json`.
fn record(
    out: &mut Vec<serde_json::Value>,
    case: &str,
    backend: Backend,
    secs: f64,
    gflops: f64,
    gemm: f64,
) {
    out.push(serde_json::json!({
        "case": case,
        "backend": backend.name(),
        "median_s": secs,
        "gflops": gflops,
        "share_of_gemm": gflops / gemm,
    }));
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let mut json = Vec::new();
    let widths: &[usize] = if quick { &[1024] } else { &[1024, 4096] };
    for backend in [Backend::Flex, Backend::Ndarray] {
        bench_backend(backend, widths, quick, &mut json);
    }
    if !quick {
        peak_memory_and_end_to_end();
    }
    eigendecomposition_and_report(quick, &json);
}

/// The plain GEMM, the empirical NTK and an SGD step on one backend.
fn bench_backend(
    backend: Backend,
    widths: &[usize],
    quick: bool,
    json: &mut Vec<serde_json::Value>,
) {
    let gemm = gemm_gflops(backend, 1024);
    record(
        json,
        "gemm f32 1024^3",
        backend,
        2.0 * 1024f64.powi(3) / gemm / 1e9,
        gemm,
        gemm,
    );
    println!(
        "== backend {} — plain f32 GEMM 1024³: {gemm:.1} GFLOP/s",
        backend.name()
    );
    let mut cases: Vec<(usize, usize)> = widths.iter().map(|&w| (256, w)).collect();
    if !quick {
        cases.push((1024, 1024));
    }
    for (n, w) in cases {
        let c = net(backend, w);
        let net = c.init(0);
        let x: Vec<f64> = (0..n * 16)
            .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
            .collect();
        let t = time_it(3, || {
            let _ = empirical_ntk(&net, &x, n, None, KernelForm::Trace).unwrap();
        });
        let gf = ntk_flops(&c, n) / t / 1e9;
        record(
            json,
            &format!("empirical_ntk N={n} width={w} depth=3"),
            backend,
            t,
            gf,
            gemm,
        );
        println!("empirical NTK  N={n:<5} width={w:<5} depth=3: {t:8.4} s  {gf:7.1} GFLOP/s  ({:.0}% of GEMM)", 100.0 * gf / gemm);
    }
    for &w in widths {
        let c = net(backend, w);
        let b = 256;
        let x: Vec<f64> = (0..b * 16)
            .map(|i| ((i * 31) % 100) as f64 / 50.0 - 1.0)
            .collect();
        let y: Vec<f64> = (0..b).map(|i| (i as f64).sin()).collect();
        let mut tr = NetworkTrainer::new(c.init(1), 1e-3, 0.0);
        let t = time_it(5, || {
            tr.step(&x, &y, b).unwrap();
        });
        let flops = 3.0 * 2.0 * b as f64 * (16.0 * w as f64 + 2.0 * (w * w) as f64 + w as f64);
        record(
            json,
            &format!("sgd_step batch={b} width={w} depth=3"),
            backend,
            t,
            flops / t / 1e9,
            gemm,
        );
        println!(
            "SGD step       batch={b} width={w:<5} depth=3: {:8.4} s  {:7.1} GFLOP/s",
            t,
            flops / t / 1e9
        );
    }
}

/// Peak memory of the empirical NTK alone (peak RSS reset through /proc/self/clear_refs), and
/// wide_mlp end to end as the product runs it (without writing files).
fn peak_memory_and_end_to_end() {
    let c = net(Backend::Flex, 4096);
    let net = c.init(0);
    let n = 1024;
    let x: Vec<f64> = (0..n * 16)
        .map(|i| ((i * 13) % 97) as f64 / 48.0 - 1.0)
        .collect();
    let before = vm_hwm_kb();
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = Instant::now();
    let _k = empirical_ntk(&net, &x, n, None, KernelForm::Trace).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let after = vm_hwm_kb();
    let p = c.n_params() as f64;
    println!(
        "empirical NTK  N={n} width=4096 depth=3 (flex): {secs:.2} s, peak RSS {} MB ({}; before: {} MB); an N×P f32 Jacobian would need {:.0} GB",
        after.unwrap_or(0) / 1024,
        if reset { "peak reset before the call" } else { "peak of the whole process" },
        before.unwrap_or(0) / 1024,
        n as f64 * p * 4.0 / 1e9
    );
    // End to end, as the product runs it (without writing files).
    let exp =
        ntk_dynamics::config::load(std::path::Path::new("experiments/wide_mlp.toml")).unwrap();
    let ds = ntk_dynamics::data::load(&exp.data, exp.seed).unwrap();
    let t = Instant::now();
    let _ = ntk_dynamics::run::execute(&exp, &ds, &Default::default()).unwrap();
    println!(
        "wide_mlp.toml end to end (compute only): {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

/// The kernel predictor's eigendecomposition, the benchmark's peak memory, and the JSON file.
fn eigendecomposition_and_report(quick: bool, json: &[serde_json::Value]) {
    let n = if quick { 512 } else { 2048 };
    let a = linalg::mat_from_rows(
        &(0..n * n)
            .map(|i| ((i * 7) % 13) as f64 / 13.0)
            .collect::<Vec<_>>(),
        n,
        n,
    );
    let s = linalg::gram(a.as_ref(), a.as_ref());
    let t = time_it(1, || {
        let _ = linalg::sym_eigen(s.as_ref()).unwrap();
    });
    println!("kernel predictor: symmetric eigendecomposition N={n}: {t:.3} s");
    let mem = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.to_string())
        });
    println!(
        "peak resident memory of this benchmark: {}",
        mem.unwrap_or_else(|| "unknown".into())
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("ntk.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(json).unwrap_or_default(),
    ) {
        Ok(()) => println!("figures written to {}", path.display()),
        Err(e) => println!("could not write {}: {e}", path.display()),
    }
}

/// Peak resident memory of the process so far, kB.
fn vm_hwm_kb() -> Option<u64> {
    ntk_dynamics::system::peak_rss_bytes().map(|b| b / 1024)
}
