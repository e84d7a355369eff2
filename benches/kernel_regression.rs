//! `cargo bench --bench kernel_regression -- [N ...] [--f32] [--exact] [--unit] [--disk DIR] [--data DIR] [--tol T]`: the
//! matrix-free kernel-regression path on Fashion-MNIST (the Debian package's IDX files) — the
//! analytic NTK and NNGP of neural-tangents' reference FC net (3 hidden ReLU layers, W_std² = 2,
//! b_std = 0.05, readout W_std = 1; pixels/255 standardised with training statistics (`--unit`:
//! pixels/255 only); one-hot
//! targets; diag_reg 1e-4 relative; t = ∞; all 10,000 test images) on the first N training images
//! of a seeded permutation: kernel time, solve time, preconditioner, CG iterations, error
//! estimate, accuracy, peak RSS, and — with `--exact` where N allows — the eigendecomposition
//! path's accuracy and the largest difference of the test predictions. Writes
//! `target/bench/kernel_regression.json`. Default N: 10000. `--data DIR`: IDX files with the
//! standard names in DIR instead of the Debian package's (e.g. files holding exactly the first N
//! training images, so that the subset is the one `benches/fashion_kernels_nt.py` takes).
//! `--tol T`: the solver tolerance (estimated largest prediction error; default 1e-4).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use faer::Mat;
use ntk_dynamics::data::idx::{dataset, IdxSource, PixelScaling};
use ntk_dynamics::data::Dataset;
use ntk_dynamics::dynamics::iterative::{IterativeInputs, IterativePredictor};
use ntk_dynamics::dynamics::kernel::{DiagReg, KernelPredictor, PredictorInputs, TimeMode};
use ntk_dynamics::krylov::SolveSettings;
use ntk_dynamics::model::{
    Activation, Architecture, ModelSettings, NetworkConfig, Parametrization,
};
use ntk_dynamics::ntk::blocked::{AnalyticJob, KernelJob};
use ntk_dynamics::store::{KernelStore, StoragePrecision, StoreManifest, StoreShape};

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

fn peak_rss_mb() -> f64 {
    ntk_dynamics::run::memory::peak_rss_bytes().unwrap_or(0) as f64 / 1e6
}

fn arch() -> NetworkConfig {
    NetworkConfig {
        input_dim: 784,
        n_outputs: 10,
        model: ModelSettings {
            architecture: Architecture::Mlp,
            width: 512,
            depth: 3,
            activation: Activation::Relu,
            w_std: 2f64.sqrt(),
            b_std: 0.05,
            bias: true,
            parametrization: Parametrization::Ntk,
            precision: ntk_dynamics::backend::Precision::F64,
            backend: ntk_dynamics::backend::Backend::Flex,
            blocks: None,
        },
    }
}

fn accuracy(pred: &Mat<f64>, y: &[f64]) -> f64 {
    let k = pred.ncols();
    let n = pred.nrows();
    let hits = (0..n)
        .filter(|&i| {
            let p = (0..k)
                .max_by(|&a, &b| pred[(i, a)].total_cmp(&pred[(i, b)]))
                .unwrap();
            y[i * k + p] == 1.0
        })
        .count();
    hits as f64 / n as f64
}

/// Seconds of one product `A·V` (V: n × 10) with a symmetric n × n store, f64 and f32.
fn time_apply(n: usize) {
    for precision in [StoragePrecision::F64, StoragePrecision::F32] {
        let mut s = KernelStore::in_memory(StoreShape::Symmetric { n }, 1024, precision);
        for b in 0..s.n_blocks() {
            let (r0, r1) = s.block_range(b);
            let v: Vec<f64> = (0..(r1 - r0) * r1)
                .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
                .collect();
            s.set_block(b, &v).unwrap();
        }
        let v = Mat::from_fn(n, 10, |i, j| ((i + j) % 13) as f64);
        let _ = s.apply(v.as_ref()).unwrap();
        let t = Instant::now();
        for _ in 0..5 {
            let _ = s.apply(v.as_ref()).unwrap();
        }
        let sec = t.elapsed().as_secs_f64() / 5.0;
        let entries = ntk_dynamics::store::symmetric_entries(n as u64, 1024) as f64;
        eprintln!(
            "apply n = {n} ({}): {sec:.3} s, {:.2} ns per stored entry, {:.1} GB/s",
            precision.name(),
            sec / entries * 1e9,
            entries * precision.bytes() as f64 / sec / 1e9
        );
    }
}

/// The command line of the benchmark.
struct Options {
    f32_store: bool,
    exact: bool,
    scaling: PixelScaling,
    disk: Option<std::path::PathBuf>,
    tolerance: f64,
    data_dir: String,
    ns: Vec<usize>,
}

impl Options {
    fn parse(args: &[String]) -> Self {
        let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| &args[i + 1]);
        let ns: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        Options {
            f32_store: args.iter().any(|a| a == "--f32"),
            exact: args.iter().any(|a| a == "--exact"),
            scaling: if args.iter().any(|a| a == "--unit") {
                PixelScaling::Unit
            } else {
                PixelScaling::Standardize
            },
            disk: value("--disk").map(std::path::PathBuf::from),
            tolerance: value("--tol").map_or(1e-4, |t| t.parse().expect("--tol T")),
            data_dir: value("--data").map_or(FASHION.to_string(), |d| d.clone()),
            ns: if ns.is_empty() { vec![10000] } else { ns },
        }
    }

    fn precision(&self) -> StoragePrecision {
        if self.f32_store {
            StoragePrecision::F32
        } else {
            StoragePrecision::F64
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--apply") {
        let n: usize = args[i + 1].parse().expect("N");
        time_apply(n);
        return;
    }
    let opts = Options::parse(&args);
    if !std::path::Path::new(&opts.data_dir)
        .join("train-images-idx3-ubyte.gz")
        .exists()
    {
        eprintln!(
            "NOT RUN: {} is absent (apt-get install dataset-fashion-mnist)",
            opts.data_dir
        );
        return;
    }
    let mut records = Vec::new();
    for &n in &opts.ns {
        records.extend(bench_size(n, &opts));
    }
    let _ = std::fs::create_dir_all("target/bench");
    let _ = std::fs::write(
        "target/bench/kernel_regression.json",
        serde_json::to_string_pretty(&records).unwrap(),
    );
}

/// The first `n` training images of Fashion-MNIST and every test image.
fn fashion(n: usize, opts: &Options) -> Dataset {
    let d = &opts.data_dir;
    let src = IdxSource {
        train_images: format!("{d}/train-images-idx3-ubyte.gz").into(),
        train_labels: format!("{d}/train-labels-idx1-ubyte.gz").into(),
        test_images: format!("{d}/t10k-images-idx3-ubyte.gz").into(),
        test_labels: format!("{d}/t10k-labels-idx1-ubyte.gz").into(),
        scaling: opts.scaling,
        one_hot_values: [1.0, 0.0],
        class_names: None,
        validation_fraction: 0.0,
        image_shape: [28, 28, 1],
    };
    dataset(&src, Some(n), None, 0).expect("data")
}

/// The analytic NTK and NNGP stores of `data` (train × train and test × train), and seconds.
fn analytic_stores(data: &Dataset, opts: &Options) -> (ntk_dynamics::ntk::blocked::JobStores, f64) {
    let (n, m) = (data.n_train(), data.n_test());
    let (precision, block) = (opts.precision(), 1024);
    let make = |shape: StoreShape, name: &str| match &opts.disk {
        None => KernelStore::in_memory(shape, block, precision),
        Some(dir) => {
            let sub = dir.join(format!("{name}-{n}"));
            let _ = std::fs::remove_dir_all(&sub);
            KernelStore::on_disk(
                &sub,
                StoreManifest {
                    shape,
                    block_rows: block,
                    precision,
                    identity: "bench".into(),
                },
            )
            .expect("store")
        }
    };
    let clock = Instant::now();
    let mut job = KernelJob {
        x_train: &data.x_train,
        x_heldout: &data.x_test,
        analytic: Some(AnalyticJob {
            arch: arch(),
            quadrature_order: 48,
        }),
        empirical: None,
        nngp: Some((
            make(StoreShape::Symmetric { n }, "nngp"),
            Some(make(StoreShape::Rect { nrows: m, ncols: n }, "nngp-test")),
        )),
        ntk: Some((
            make(StoreShape::Symmetric { n }, "ntk"),
            Some(make(StoreShape::Rect { nrows: m, ncols: n }, "ntk-test")),
        )),
        emp: None,
        signal_budget_bytes: 0,
    };
    job.compute((0, 1), &|| false, &|| {}).expect("kernels");
    (job.finish().expect("stores"), clock.elapsed().as_secs_f64())
}

/// Kernel regression at N = `n` with each analytic kernel: one record each.
fn bench_size(n: usize, opts: &Options) -> Vec<serde_json::Value> {
    let data = fashion(n, opts);
    let (stores, kernel_s) = analytic_stores(&data, opts);
    eprintln!(
        "N = {n}: kernels {kernel_s:.1} s, peak RSS {:.0} MB",
        peak_rss_mb()
    );
    let mut records = Vec::new();
    for (name, sk) in [
        ("ntk", stores.ntk.as_ref().unwrap()),
        ("nngp", stores.nngp.as_ref().unwrap()),
    ] {
        let mut rec = solve_record(&data, sk, opts);
        rec["kernel"] = serde_json::json!(name);
        rec["kernels_s"] = serde_json::json!(kernel_s);
        eprintln!("{rec}");
        records.push(rec);
    }
    for sk in [stores.ntk.as_ref().unwrap(), stores.nngp.as_ref().unwrap()] {
        sk.train.remove_files().ok();
        if let Some(h) = &sk.heldout {
            h.remove_files().ok();
        }
    }
    records
}

/// The t = ∞ kernel regression of one stored kernel by the iterative solver (and, with
/// `--exact`, by the eigendecomposition): times, accuracy and solver figures.
fn solve_record(
    data: &Dataset,
    sk: &ntk_dynamics::ntk::blocked::StoredKernel,
    opts: &Options,
) -> serde_json::Value {
    let (n, m) = (data.n_train(), data.n_test());
    let y = ntk_dynamics::linalg::mat_from_rows(&data.y_train, n, 10);
    let zeros = Mat::<f64>::zeros(n, 10);
    let zeros_t = Mat::<f64>::zeros(m, 10);
    let clock = Instant::now();
    let reg = DiagReg {
        value: 1e-4,
        absolute: false,
    };
    let it = IterativePredictor::new(IterativeInputs {
        train: sk.train.clone(),
        heldout: sk.heldout.clone(),
        heldout_diag_max: sk.heldout_diag_max(),
        f0_train: &zeros,
        f0_test: Some(&zeros_t),
        y_train: &y,
        n_targets: n * 10,
        learning_rate: 1.0,
        momentum: 0.0,
        time: TimeMode::Continuous,
        diag_reg: reg,
        planned_steps: Vec::new(),
        duplicate_groups: Vec::new(),
        resident_budget_bytes: u64::MAX,
        settings: SolveSettings {
            tolerance: opts.tolerance,
            max_iterations: 1000,
            delay: 5,
            preconditioner_rank: (n / 10).clamp(256, 3000),
            seed: 0,
        },
    })
    .expect("solve");
    let solve_s = clock.elapsed().as_secs_f64();
    let (_, test) = it.predict_infinite();
    let test = test.unwrap();
    let acc = accuracy(&test, &data.y_test);
    let mut rec = serde_json::json!({
        "n": n, "storage": opts.precision().name(), "disk": opts.disk.is_some(),
        "solve_s": solve_s, "accuracy": acc, "tolerance": opts.tolerance,
        "cg": it.report.cg, "preconditioner_rank": it.report.preconditioner_rank,
        "seconds_lanczos_precond_cg": it.report.seconds, "peak_rss_mb": peak_rss_mb(),
    });
    if opts.exact {
        let clock = Instant::now();
        let dense = sk.train.to_dense().unwrap();
        let dt = sk.heldout.as_ref().unwrap().to_dense().unwrap();
        let ex = KernelPredictor::new(PredictorInputs {
            theta_train: &dense,
            theta_test_train: Some(&dt),
            f0_train: &zeros,
            f0_test: Some(&zeros_t),
            y_train: &y,
            n_targets: n * 10,
            learning_rate: 1.0,
            momentum: 0.0,
            time: TimeMode::Continuous,
            diag_reg: reg,
        })
        .unwrap();
        let (_, te) = ex.predict_infinite();
        let te = te.unwrap();
        rec["exact_s"] = serde_json::json!(clock.elapsed().as_secs_f64());
        rec["exact_accuracy"] = serde_json::json!(accuracy(&te, &data.y_test));
        rec["max_abs_difference"] = serde_json::json!((&te - &test).norm_max());
    }
    rec
}
