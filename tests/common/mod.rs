//! Shared test scaffolding: the allocator, a model builder, seeded inputs, config builders and
//! the binary-spawning helper. (Each test crate uses part of it.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::model::{Activation, ModelSettings, NetworkConfig, Parametrization};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `experiment` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_experiment");

/// Runs the binary with `args`.
pub fn run_bin(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run experiment")
}

/// Runs the binary on `cfg` into the run directory `out`, quietly.
pub fn run_into(cfg: &Path, out: &Path) -> Output {
    run_bin(&[
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

/// Starts the binary on `cfg` into `out`, quietly, without waiting.
pub fn spawn_into(cfg: &Path, out: &Path) -> std::process::Child {
    Command::new(BIN)
        .args([
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .spawn()
        .expect("start experiment")
}

/// Largest |a − b| over the largest |b| (matrices of the same shape).
pub fn rel_max(a: &faer::Mat<f64>, b: &faer::Mat<f64>) -> f64 {
    let mut e: f64 = 0.0;
    let mut s: f64 = 0.0;
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            e = e.max((a[(i, j)] - b[(i, j)]).abs());
            s = s.max(b[(i, j)].abs());
        }
    }
    e / s
}

/// Standard error of a finished process.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Writes a file into `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `n` standard-normal values from a seeded RNG.
pub fn gauss(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// An MLP description with test defaults (relu, σ_w = 1.5, σ_b = 0.3, biases, ntk, f64, flex),
/// adjusted by the builder methods.
#[derive(Debug, Clone)]
pub struct Net(pub NetworkConfig);

/// `d` inputs, `k` outputs, `width`, `depth` hidden layers.
pub fn net(d: usize, k: usize, width: usize, depth: usize) -> Net {
    Net(NetworkConfig {
        input_dim: d,
        n_outputs: k,
        model: ModelSettings {
            architecture: ntk_dynamics::model::Architecture::Mlp,
            width,
            depth,
            activation: Activation::Relu,
            w_std: 1.5,
            b_std: 0.3,
            bias: true,
            parametrization: Parametrization::Ntk,
            precision: Precision::F64,
            backend: Backend::Flex,
            blocks: None,
        },
    })
}

impl Net {
    /// Activation.
    pub fn act(mut self, a: Activation) -> Self {
        self.0.model.activation = a;
        self
    }
    /// σ_w and σ_b.
    pub fn stds(mut self, w: f64, b: f64) -> Self {
        self.0.model.w_std = w;
        self.0.model.b_std = b;
        self
    }
    /// Biases on or off.
    pub fn bias(mut self, b: bool) -> Self {
        self.0.model.bias = b;
        self
    }
    /// Parametrization.
    pub fn param(mut self, p: Parametrization) -> Self {
        self.0.model.parametrization = p;
        self
    }
    /// Precision.
    pub fn precision(mut self, p: Precision) -> Self {
        self.0.model.precision = p;
        self
    }
    /// Backend.
    pub fn backend(mut self, b: Backend) -> Self {
        self.0.model.backend = b;
        self
    }
    /// The description.
    pub fn build(self) -> NetworkConfig {
        self.0
    }
}

/// A tiny sine experiment (8 training points, width 64, 30 steps) writing under
/// `dir/results`, with extra `[training]` lines.
pub fn tiny_sine_toml(dir: &Path, extra_training: &str) -> String {
    format!(
        r#"[experiment]
name = "tiny"
seed = 3

[data]
kind = "sine"
n_train = 8
n_test = 12

[model]
width = 64
depth = 2

[training]
learning_rate = 0.05
steps = 30
{extra_training}

[kernel]
probe_size = 6

[logging]
every = 5
kernel_every = 10

[outputs]
dir = "{}"
save_kernels = true
"#,
        dir.join("results").display()
    )
}

/// A CSV experiment on `path` with target `y`, extra `[data]` lines, writing under
/// `dir/results`.
pub fn csv_toml(dir: &Path, path: &Path, extra_data: &str) -> String {
    format!("[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"{}\"\ntarget = [\"y\"]\n{extra_data}\n[model]\nwidth = 16\n[training]\nsteps = 2\n[outputs]\ndir = \"{}\"\n", path.display(), dir.join("results").display())
}

/// A small teacher sweep (`vary` lines under `[sweep.vary]`, extra `[training]` lines).
pub fn sweep_toml(dir: &Path, vary: &str, extra: &str) -> String {
    format!(
        r#"[experiment]
name = "s"
seed = 0
[data]
kind = "teacher"
input_dim = 4
n_train = 16
n_test = 8
[model]
width = 256
depth = 1
b_std = 0.0
bias = false
[training]
lr_scale = 0.5
steps = 60
max_loss = 1e6
{extra}
[kernel]
solutions = ["analytic"]
probe_size = 16
[logging]
every = 1
kernel_every = 10
[outputs]
dir = "{}"
[sweep]
seeds = 2
[sweep.vary]
{vary}
"#,
        dir.display()
    )
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A CSV file as its header and its rows of cells (no quoting: the run's own CSVs).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (
        header,
        lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect(),
    )
}

/// A conv net on `image = [height, width, channels]` images with `k` outputs: `depth`
/// convolutions of `channels` channels (`filter`, `padding`), a `readout`, test defaults as
/// [`net`].
pub fn conv_net(
    image: [usize; 3],
    k: usize,
    channels: usize,
    depth: usize,
    (filter, padding, readout): (
        usize,
        ntk_dynamics::model::layers::Padding,
        ntk_dynamics::model::layers::Readout,
    ),
) -> Net {
    let mut n = net(image.iter().product(), k, channels, depth);
    n.0.model.architecture =
        ntk_dynamics::model::Architecture::Conv(ntk_dynamics::model::ConvSettings {
            filter,
            padding,
            readout,
            image: ntk_dynamics::model::ImageShape::from_array(image),
        });
    n
}
