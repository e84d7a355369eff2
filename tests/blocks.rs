//! Explicit layer stacks (`model.blocks`: residual blocks, strided convolutions, average
//! pooling, layer norm) against mathematics written here, independently of the library's
//! interpreters:
//! 1. the burn network's forward pass equals a naive f64 loop over the blocks (explicit zero
//!    padding with XLA's rule for strides, the weight layout of `model::layers`);
//! 2. its parameter Jacobian (burn autodiff) equals central finite differences of that loop, and
//!    the tangent pass `J·t` (the parameter twin's) equals the Jacobian times `t`;
//! 3. the structured empirical NTK equals `J Jᵀ` of the naive per-sample Jacobian;
//! 4. the analytic NNGP/NTK equal neural-tangents 0.6.5 on the product of the keys
//!    (`tests/data/blocks_reference.json`, made by `tests/reference/blocks_reference.py`), and a stack
//!    written to be a plain MLP or conv net equals the plain nets' own analytic kernels;
//! 5. the empirical NTK approaches the analytic one as the width grows, log-log slope ≈ −1/2;
//! 6. end to end, a residual MLP and a strided, pooled, normalised residual conv net train with
//!    the parameter twin equal to the function-space twin, which equals the empirical kernel
//!    track under full-batch gradient descent.
//!
//! Tolerances (f64): forward 1e-12 relative; finite differences (step 1e-5) 1e-6 relative to the
//! largest Jacobian entry; empirical kernels 1e-10 relative to the largest entry; analytic
//! kernels 1e-12 relative to the largest entry, except ReLU entries of identical pairs (a point
//! with itself or its duplicate) at 1e-8, where neural-tangents' arccos of a cosine that rounds
//! just under 1 is off by ~1e-8.

mod common;

use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::linalg;
use ntk_dynamics::model::blocks::Block;
use ntk_dynamics::model::layers::{ImageShape, Padding, Readout};
use ntk_dynamics::model::{
    Activation, Architecture, ConvSettings, ModelSettings, Network, NetworkConfig, Parametrization,
};
use ntk_dynamics::ntk::analytic::MomentMethod;
use ntk_dynamics::ntk::blocks::BlockKernelConfig;
use ntk_dynamics::ntk::empirical::{
    backprop_signals, naive_jacobian, ntk_from_signals, trace_of_full,
};
use ntk_dynamics::ntk::KernelForm;
use serde_json::json;

fn stack(v: serde_json::Value) -> Vec<Block> {
    serde_json::from_value(v).expect("a stack")
}

struct Spec {
    image: Option<[usize; 3]>,
    input_dim: usize,
    readout: Readout,
    width: usize,
    n_outputs: usize,
    activation: Activation,
    parametrization: Parametrization,
    bias: bool,
    w_std: f64,
    b_std: f64,
}

fn spec_dense(d: usize) -> Spec {
    Spec {
        image: None,
        input_dim: d,
        readout: Readout::Flatten,
        width: 5,
        n_outputs: 2,
        activation: Activation::Erf,
        parametrization: Parametrization::Ntk,
        bias: true,
        w_std: 1.3,
        b_std: 0.4,
    }
}

fn spec_conv(image: [usize; 3], readout: Readout) -> Spec {
    Spec {
        image: Some(image),
        input_dim: image.iter().product(),
        readout,
        ..spec_dense(0)
    }
}

fn config(s: &Spec, blocks: Vec<Block>) -> NetworkConfig {
    let architecture = match s.image {
        None => Architecture::Mlp,
        Some(i) => Architecture::Conv(ConvSettings {
            filter: 1,
            padding: Padding::Same,
            readout: s.readout,
            image: ImageShape::from_array(i),
        }),
    };
    let mut c = NetworkConfig {
        input_dim: s.input_dim,
        n_outputs: s.n_outputs,
        model: ModelSettings {
            architecture,
            width: s.width,
            depth: 1,
            activation: s.activation,
            w_std: s.w_std,
            b_std: s.b_std,
            bias: s.bias,
            parametrization: s.parametrization,
            precision: Precision::F64,
            backend: Backend::Flex,
            blocks: Some(blocks),
        },
    };
    c.model.depth = c.program().unwrap().hidden_layers();
    c
}

// ---------------------------------------------------------------------------------------------
// A naive f64 forward pass over the blocks.

/// A feature map `[h][w][c]` (a feature vector is 1×1).
#[derive(Clone)]
struct Map {
    h: usize,
    w: usize,
    c: usize,
    v: Vec<f64>,
}

impl Map {
    fn at(&self, y: isize, x: isize, c: usize) -> f64 {
        if y < 0 || x < 0 || y as usize >= self.h || x as usize >= self.w {
            0.0
        } else {
            self.v[(y as usize * self.w + x as usize) * self.c + c]
        }
    }
}

/// Output size and zeros before, XLA's rule.
fn extent(n: usize, f: usize, s: usize, same: bool) -> (usize, usize) {
    if same {
        let out = n.div_ceil(s);
        let total = ((out - 1) * s + f).saturating_sub(n);
        (out, total / 2)
    } else {
        ((n - f) / s + 1, 0)
    }
}

struct Naive<'a> {
    s: &'a Spec,
    layers: &'a [Vec<f64>],
    next: usize,
}

impl Naive<'_> {
    fn scales(&self, n_in: usize) -> (f64, f64) {
        match self.s.parametrization {
            Parametrization::Ntk => (self.s.w_std / (n_in as f64).sqrt(), self.s.b_std),
            _ => (1.0, 1.0),
        }
    }

    /// A convolution of `f`, stride `st` (a dense layer is a 1×1 convolution of a 1×1 map).
    fn affine(&mut self, m: &Map, f: usize, st: usize, same: bool, n_out: usize) -> Map {
        let p = &self.layers[self.next];
        self.next += 1;
        let n_in = f * f * m.c;
        let (sw, sb) = self.scales(n_in);
        let (ho, bh) = extent(m.h, f, st, same);
        let (wo, bw) = extent(m.w, f, st, same);
        let mut v = vec![0.0; ho * wo * n_out];
        for y in 0..ho {
            for x in 0..wo {
                for co in 0..n_out {
                    let mut acc = 0.0;
                    for dy in 0..f {
                        for dx in 0..f {
                            let (iy, ix) = (
                                (y * st + dy) as isize - bh as isize,
                                (x * st + dx) as isize - bw as isize,
                            );
                            for ci in 0..m.c {
                                acc +=
                                    m.at(iy, ix, ci) * p[((dy * f + dx) * m.c + ci) * n_out + co];
                            }
                        }
                    }
                    let b = if self.s.bias {
                        p[n_in * n_out + co]
                    } else {
                        0.0
                    };
                    v[(y * wo + x) * n_out + co] = sw * acc + sb * b;
                }
            }
        }
        Map {
            h: ho,
            w: wo,
            c: n_out,
            v,
        }
    }

    fn block(&mut self, b: &Block, m: Map) -> Map {
        let width = self.s.width;
        match b {
            Block::Dense => self.affine(&m, 1, 1, true, width),
            Block::Conv(c) => {
                self.affine(&m, c.filter, c.stride, c.padding == Padding::Same, width)
            }
            Block::Activation => Map {
                v: m.v.iter().map(|&z| self.s.activation.value(z)).collect(),
                ..m
            },
            Block::LayerNorm => {
                let mut v = m.v.clone();
                for row in v.chunks_mut(m.c) {
                    let mean = row.iter().sum::<f64>() / m.c as f64;
                    let var = row.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / m.c as f64;
                    let sd = (var + 1e-12).sqrt();
                    row.iter_mut().for_each(|z| *z = (*z - mean) / sd);
                }
                Map { v, ..m }
            }
            Block::AvgPool(p) => {
                let (w, st) = (p.window, p.stride.unwrap_or(p.window));
                let same = p.padding == Padding::Same;
                let (ho, bh) = extent(m.h, w, st, same);
                let (wo, bw) = extent(m.w, w, st, same);
                let mut v = vec![0.0; ho * wo * m.c];
                for y in 0..ho {
                    for x in 0..wo {
                        for c in 0..m.c {
                            let mut acc = 0.0;
                            for dy in 0..w {
                                for dx in 0..w {
                                    acc += m.at(
                                        (y * st + dy) as isize - bh as isize,
                                        (x * st + dx) as isize - bw as isize,
                                        c,
                                    );
                                }
                            }
                            v[(y * wo + x) * m.c + c] = acc / (w * w) as f64;
                        }
                    }
                }
                Map {
                    h: ho,
                    w: wo,
                    c: m.c,
                    v,
                }
            }
            Block::Residual(r) => {
                let mut b = m.clone();
                for x in &r.branch {
                    b = self.block(x, b);
                }
                let s = match r.shortcut.as_deref() {
                    None => m,
                    Some(p) => self.block(p, m),
                };
                Map {
                    v: s.v.iter().zip(&b.v).map(|(a, c)| a + r.scale * c).collect(),
                    ..s
                }
            }
        }
    }
}

fn naive_forward(s: &Spec, blocks: &[Block], layers: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    let mut m = match s.image {
        None => Map {
            h: 1,
            w: 1,
            c: x.len(),
            v: x.to_vec(),
        },
        Some([h, w, c]) => Map {
            h,
            w,
            c,
            v: x.to_vec(),
        },
    };
    let mut nv = Naive { s, layers, next: 0 };
    for b in blocks {
        m = nv.block(b, m);
    }
    let features = match (s.image, s.readout) {
        (Some(_), Readout::GlobalAvgPool) => (0..m.c)
            .map(|c| (0..m.h * m.w).map(|p| m.v[p * m.c + c]).sum::<f64>() / (m.h * m.w) as f64)
            .collect(),
        _ => m.v,
    };
    let flat = Map {
        h: 1,
        w: 1,
        c: features.len(),
        v: features,
    };
    nv.affine(&flat, 1, 1, true, s.n_outputs).v
}

// ---------------------------------------------------------------------------------------------

/// The stacks the finite-network tests run: every block kind, with strides, both paddings,
/// identity and projection shortcuts and a branch scale.
fn finite_cases() -> Vec<(&'static str, Spec, Vec<Block>)> {
    let mut standard = spec_dense(4);
    standard.parametrization = Parametrization::Standard;
    standard.activation = Activation::Relu;
    let mut nobias = spec_conv([5, 4, 2], Readout::GlobalAvgPool);
    nobias.bias = false;
    nobias.activation = Activation::Tanh;
    vec![
        (
            "residual MLP, layer norm, projection",
            spec_dense(4),
            stack(json!([
                "dense", "layer_norm",
                {"layer": "residual", "branch": ["activation", "dense", "activation", "dense"], "scale": 0.6},
                "activation",
                {"layer": "residual", "branch": ["dense"], "shortcut": {"layer": "dense"}},
                "activation"
            ])),
        ),
        (
            "residual MLP, standard, relu",
            standard,
            stack(
                json!(["dense", {"layer": "residual", "branch": ["activation", "dense"]}, "activation"]),
            ),
        ),
        (
            "strided conv, projection, pooling, flatten",
            spec_conv([6, 5, 2], Readout::Flatten),
            stack(json!([
                {"layer": "conv", "filter": 3},
                {"layer": "residual", "branch": ["activation", {"layer": "conv", "filter": 3, "stride": 2}, "activation", {"layer": "conv", "filter": 2}],
                 "shortcut": {"layer": "conv", "filter": 1, "stride": 2}},
                "layer_norm",
                {"layer": "avg_pool", "window": 2, "stride": 1, "padding": "same"},
                "activation"
            ])),
        ),
        (
            "valid strides, pooling, no bias, tanh, global pool",
            nobias,
            stack(json!([
                {"layer": "conv", "filter": 2, "stride": 2, "padding": "valid"},
                "activation",
                {"layer": "avg_pool", "window": 2},
                {"layer": "conv", "filter": 1},
                {"layer": "residual", "branch": ["activation", {"layer": "conv", "filter": 3}], "scale": 1.5},
                "activation"
            ])),
        ),
    ]
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, x| a.max(x.abs()))
}

#[test]
fn forward_equals_a_naive_loop_over_the_blocks() {
    for (name, s, blocks) in finite_cases() {
        let net = config(&s, blocks.clone()).init(7);
        let n = 3;
        let x = common::gauss(n * s.input_dim, 2);
        let got = net.predict(&x, n).unwrap();
        let layers = net.flatten_layers().unwrap();
        let want: Vec<f64> = (0..n)
            .flat_map(|i| {
                naive_forward(
                    &s,
                    &blocks,
                    &layers,
                    &x[i * s.input_dim..(i + 1) * s.input_dim],
                )
            })
            .collect();
        let err = got
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-12 * max_abs(&want),
            "{name}: {err:e} (outputs {want:?})"
        );
    }
}

#[test]
fn jacobian_equals_finite_differences_and_the_tangent_pass_equals_it() {
    for (name, s, blocks) in finite_cases() {
        let net = config(&s, blocks.clone()).init(3);
        let d = s.input_dim;
        let x = common::gauss(2 * d, 5);
        let jac = naive_jacobian(&net, &x, 2).unwrap();
        let layers = net.flatten_layers().unwrap();
        let k = s.n_outputs;
        let h = 1e-5;
        let (mut worst, mut largest, mut col) = (0.0f64, 0.0f64, 0);
        for l in 0..layers.len() {
            for j in 0..layers[l].len() {
                let mut plus = layers.clone();
                plus[l][j] += h;
                let mut minus = layers.clone();
                minus[l][j] -= h;
                for i in 0..2 {
                    let xi = &x[i * d..(i + 1) * d];
                    let (fp, fm) = (
                        naive_forward(&s, &blocks, &plus, xi),
                        naive_forward(&s, &blocks, &minus, xi),
                    );
                    for o in 0..k {
                        let fd = (fp[o] - fm[o]) / (2.0 * h);
                        worst = worst.max((fd - jac[(i * k + o, col)]).abs());
                        largest = largest.max(jac[(i * k + o, col)].abs());
                    }
                }
                col += 1;
            }
        }
        assert_eq!(col, net.config.n_params(), "{name}");
        assert!(worst <= 1e-6 * largest, "{name}: {worst:e} vs {largest:e}");
        // J·t by the tangent pass against the Jacobian times t.
        let t = common::gauss(col, 11);
        let tangent = net.unflatten(&t);
        let jt = net.jvp(&x, 2, &tangent).unwrap();
        let want: Vec<f64> = (0..2 * k)
            .map(|r| (0..col).map(|c| jac[(r, c)] * t[c]).sum())
            .collect();
        let err = jt
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-10 * max_abs(&want),
            "{name} tangent pass: {err:e}"
        );
    }
}

#[test]
fn structured_ntk_equals_the_naive_jacobian_gram() {
    for (name, s, blocks) in finite_cases() {
        let net = config(&s, blocks).init(9);
        let (d, k) = (s.input_dim, s.n_outputs);
        let (n1, n2) = (4, 3);
        let mut x1 = common::gauss(n1 * d, 21);
        let x2 = common::gauss(n2 * d, 22);
        x1[3 * d..].copy_from_slice(&x2[..d]);
        let j1 = naive_jacobian(&net, &x1, n1).unwrap();
        let j2 = naive_jacobian(&net, &x2, n2).unwrap();
        let full_12 = linalg::gram(j1.as_ref(), j2.as_ref());
        let full_11 = linalg::gram(j1.as_ref(), j1.as_ref());
        let s1 = backprop_signals(&net, &x1, n1).unwrap();
        let s2 = backprop_signals(&net, &x2, n2).unwrap();
        let got = ntk_from_signals(&net, &s1, &s2, KernelForm::Full).total();
        assert!(common::rel_max(&got, &full_12) < 1e-10, "{name} full 12");
        let got = ntk_from_signals(&net, &s1, &s1, KernelForm::Full).total();
        assert!(common::rel_max(&got, &full_11) < 1e-10, "{name} full 11");
        let got = ntk_from_signals(&net, &s1, &s2, KernelForm::Trace).total();
        assert!(
            common::rel_max(&got, &trace_of_full(&full_12, k)) < 1e-10,
            "{name} trace"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Analytic kernels.

fn reference() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/blocks_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's deterministic inputs: `(i, j, c)` = (row, column, channel) of an image, and
/// `(0, k, 0)` for feature k of a vector; x2[1] = x1[0], x1[2] = 0.
fn fixture_inputs(shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (h, w, c) = match shape {
        [d] => (1, *d, 1),
        [h, w, c] => (*h, *w, *c),
        _ => panic!("{shape:?}"),
    };
    let point = |n: usize, second: bool| -> Vec<f64> {
        let mut v = Vec::new();
        for i in 0..h {
            for j in 0..w {
                for ch in 0..c {
                    let (n, i, j, ch) = (n as f64, i as f64, j as f64, ch as f64);
                    v.push(if second {
                        (0.5 * (n + 2.0) - 0.3 * i + 0.8 * j + 0.2 * ch).cos()
                    } else {
                        (1.3 * (n + 1.0) + 0.7 * i - 0.4 * j + 0.9 * ch).sin() + 0.1 * ch
                    });
                }
            }
        }
        v
    };
    let d = h * w * c;
    let mut x1: Vec<f64> = (0..3).flat_map(|n| point(n, false)).collect();
    let mut x2: Vec<f64> = (0..2).flat_map(|n| point(n, true)).collect();
    x2[d..2 * d].copy_from_slice(&x1[..d]);
    x1[2 * d..].iter_mut().for_each(|v| *v = 0.0);
    (x1, x2)
}

#[test]
fn analytic_kernels_equal_neural_tangents_on_the_product_of_the_keys() {
    let doc = reference();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        72,
        "3 dense stacks × 8 + 3 conv stacks × 2 readouts × 8"
    );
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let conv = c["architecture"] == "conv";
        let shape: Vec<usize> = if conv {
            doc["image"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        } else {
            vec![doc["dense_dim"].as_u64().unwrap() as usize]
        };
        let mut s = if conv {
            spec_conv(
                [shape[0], shape[1], shape[2]],
                match c["readout"].as_str().unwrap() {
                    "flatten" => Readout::Flatten,
                    _ => Readout::GlobalAvgPool,
                },
            )
        } else {
            spec_dense(shape[0])
        };
        s.width = doc["width"].as_u64().unwrap() as usize;
        s.n_outputs = 1;
        s.w_std = doc["w_std"].as_f64().unwrap();
        s.b_std = doc["b_std"].as_f64().unwrap();
        s.bias = c["bias"].as_bool().unwrap();
        s.parametrization = match c["parametrization"].as_str().unwrap() {
            "ntk" => Parametrization::Ntk,
            _ => Parametrization::Standard,
        };
        let relu = c["activation"] == "relu";
        s.activation = if relu {
            Activation::Relu
        } else {
            Activation::Erf
        };
        let cfg = config(&s, stack(c["blocks"].clone()));
        let k = BlockKernelConfig::of_network(&cfg, MomentMethod::Auto(64)).unwrap();
        let (x1, x2) = fixture_inputs(&shape);
        for (key, got, rows, cols) in [
            ("12", k.kernels(&x1, 3, &x2, 2), 3, 2),
            ("11", k.kernels(&x1, 3, &x1, 3), 3, 3),
        ] {
            for (which, m) in [("nngp", &got.nngp), ("ntk", &got.ntk)] {
                let r = &c[format!("{which}_{key}")];
                let at = |i: usize, j: usize| r[i][j].as_f64().unwrap();
                let scale = (0..rows)
                    .flat_map(|i| (0..cols).map(move |j| (i, j)))
                    .map(|(i, j)| at(i, j).abs())
                    .fold(0.0f64, f64::max);
                for i in 0..rows {
                    for j in 0..cols {
                        let identical = if key == "11" {
                            i == j
                        } else {
                            (i, j) == (0, 1)
                        };
                        let tol = if relu && identical { 1e-8 } else { 1e-12 };
                        assert!(
                            (m[(i, j)] - at(i, j)).abs() <= tol * scale,
                            "{name} {which}_{key}[{i}][{j}]: {} vs neural-tangents {}",
                            m[(i, j)],
                            at(i, j)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_stack_written_as_a_plain_net_has_the_plain_nets_kernels() {
    use ntk_dynamics::ntk::analytic::AnalyticConfig;
    use ntk_dynamics::ntk::conv::ConvKernelConfig;
    for param in [Parametrization::Ntk, Parametrization::Standard] {
        // MLP: depth 3.
        let mut s = spec_dense(6);
        s.parametrization = param;
        s.activation = Activation::Gelu;
        let cfg = config(
            &s,
            stack(json!([
                "dense",
                "activation",
                "dense",
                "activation",
                "dense",
                "activation"
            ])),
        );
        let x = common::gauss(5 * 6, 1);
        let got = BlockKernelConfig::of_network(&cfg, MomentMethod::Auto(64))
            .unwrap()
            .kernels(&x, 5, &x[..12], 2);
        let mut plain = cfg.clone();
        plain.model.blocks = None;
        let want = AnalyticConfig::new(&plain, 64).kernels(&x, 5, &x[..12], 2);
        assert!(
            common::rel_max(&got.nngp, &want.nngp) < 1e-12,
            "{param:?} mlp nngp"
        );
        assert!(
            common::rel_max(&got.ntk, &want.ntk) < 1e-12,
            "{param:?} mlp ntk"
        );
        // Conv: two 3×3 convolutions, both paddings and readouts.
        for (padding, readout) in [
            (Padding::Same, Readout::Flatten),
            (Padding::Valid, Readout::GlobalAvgPool),
        ] {
            let mut s = spec_conv([6, 5, 2], readout);
            s.parametrization = param;
            let p = if padding == Padding::Same {
                "same"
            } else {
                "valid"
            };
            let conv = json!({"layer": "conv", "filter": 3, "padding": p});
            let cfg = config(&s, stack(json!([conv, "activation", conv, "activation"])));
            let x = common::gauss(4 * 60, 2);
            let got = BlockKernelConfig::of_network(&cfg, MomentMethod::Auto(64))
                .unwrap()
                .kernels(&x, 4, &x, 4);
            let mut plain = cfg.clone();
            plain.model.blocks = None;
            plain.model.depth = 2;
            if let Architecture::Conv(c) = &mut plain.model.architecture {
                c.filter = 3;
                c.padding = padding;
            }
            let want = ConvKernelConfig::of_network(&plain, MomentMethod::Auto(64))
                .unwrap()
                .kernels(&x, 4, &x, 4);
            assert!(
                common::rel_max(&got.nngp, &want.nngp) < 1e-12,
                "{param:?} {p} nngp"
            );
            assert!(
                common::rel_max(&got.ntk, &want.ntk) < 1e-12,
                "{param:?} {p} ntk"
            );
        }
    }
}

/// Mean over `seeds` initialisations of ‖Θ_emp − Θ_an‖_F/‖Θ_an‖_F on 4 fixed inputs.
fn mean_relative_error(s: &Spec, blocks: &[Block], seeds: u64) -> f64 {
    let cfg = config(s, blocks.to_vec());
    let n = 4;
    let x = common::gauss(n * s.input_dim, 4);
    let analytic = BlockKernelConfig::of_network(&cfg, MomentMethod::Auto(64))
        .unwrap()
        .kernels(&x, n, &x, n)
        .ntk;
    let mut e = 0.0;
    for seed in 0..seeds {
        let net: Network = cfg.init(100 + seed);
        let sig = backprop_signals(&net, &x, n).unwrap();
        let mut diff = ntk_from_signals(&net, &sig, &sig, KernelForm::Full).total();
        diff -= &analytic;
        e += linalg::frobenius(diff.as_ref()) / linalg::frobenius(analytic.as_ref());
    }
    e / seeds as f64
}

#[test]
fn empirical_ntk_approaches_the_analytic_one_as_the_width_grows() {
    let dense = stack(json!([
        "dense", "layer_norm",
        {"layer": "residual", "branch": ["activation", "dense", "activation", "dense"]},
        "activation"
    ]));
    let conv = stack(json!([
        {"layer": "conv", "filter": 3},
        {"layer": "residual", "branch": ["activation", {"layer": "conv", "filter": 3, "stride": 2}],
         "shortcut": {"layer": "conv", "filter": 1, "stride": 2}},
        "layer_norm",
        {"layer": "avg_pool", "window": 2},
        "activation"
    ]));
    for (name, mut s, blocks, widths) in [
        ("residual MLP", spec_dense(6), dense, [32usize, 128, 512]),
        (
            "conv stack",
            spec_conv([6, 6, 1], Readout::Flatten),
            conv,
            [8, 32, 128],
        ),
    ] {
        s.n_outputs = 1;
        s.activation = Activation::Relu;
        let errs: Vec<f64> = widths
            .iter()
            .map(|&w| {
                s.width = w;
                mean_relative_error(&s, &blocks, 6)
            })
            .collect();
        let ws: Vec<f64> = widths.iter().map(|&w| w as f64).collect();
        let (slope, _, _) = ntk_dynamics::metrics::loglog_fit(&ws, &errs).unwrap();
        eprintln!("{name}: relative Frobenius errors {errs:?}, slope {slope:.3}");
        assert!(
            (slope + 0.5).abs() < 0.15,
            "{name}: slope {slope} ({errs:?})"
        );
        assert!(errs[2] < 0.2, "{name}: {errs:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// End to end, from a config file.

fn run_text(text: &str) -> ntk_dynamics::record::RunRecord {
    use ntk_dynamics::{config, data, run};
    let exp = config::parse_str(text, None).unwrap();
    let ds = data::load(&exp.data, exp.seed).unwrap();
    run::execute(&exp, &ds, &run::RunOptions::default()).unwrap()
}

/// Largest |a − b| over the final train and test outputs of two tracks, relative to the
/// largest |b|.
fn track_gap(
    a: &ntk_dynamics::record::RunRecord,
    ta: ntk_dynamics::record::Track,
    b: &ntk_dynamics::record::RunRecord,
    tb: ntk_dynamics::record::Track,
) -> f64 {
    let (x, y) = (a.outputs_of(ta).unwrap(), b.outputs_of(tb).unwrap());
    let ys: Vec<f64> = y.train.iter().chain(&y.test).copied().collect();
    let gap = x
        .train
        .iter()
        .chain(&x.test)
        .zip(&ys)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    gap / max_abs(&ys)
}

const RESIDUAL_MLP: &str = "[experiment]\nname = \"r\"\nseed = 4\n[data]\nkind = \"sine\"\nn_train = 12\nn_test = 9\n[model]\nwidth = 48\nprecision = \"f64\"\nb_std = 0.5\nblocks = [\n  \"dense\", \"layer_norm\",\n  { layer = \"residual\", branch = [\"activation\", \"dense\", \"activation\", \"dense\"], scale = 0.7 },\n  \"activation\",\n  { layer = \"residual\", branch = [\"dense\"], shortcut = { layer = \"dense\" } },\n  \"activation\",\n]\n[training]\nlr_scale = 0.5\nsteps = 40\ntwin = \"TWIN\"\n[kernel]\nsolutions = [\"analytic\", \"empirical\"]\n[logging]\nevery = 10\nkernel_every = 20\n";

fn conv_stack(dir: &std::path::Path) -> String {
    format!(
        "[experiment]\nname = \"c\"\n[data]\nkind = \"csv\"\npath = \"{}/experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\nn_train = 24\nn_test = 16\nimage_shape = [8, 8, 1]\n[model]\narchitecture = \"conv\"\nwidth = 6\nreadout = \"global_avg_pool\"\nprecision = \"f64\"\nparametrization = \"standard\"\nblocks = [\n  {{ layer = \"conv\", filter = 3 }},\n  {{ layer = \"residual\", branch = [\"activation\", {{ layer = \"conv\", filter = 3, stride = 2 }}, \"activation\", {{ layer = \"conv\", filter = 3 }}],\n    shortcut = {{ layer = \"conv\", filter = 1, stride = 2 }} }},\n  \"layer_norm\",\n  {{ layer = \"avg_pool\", window = 2 }},\n  \"activation\",\n]\n[training]\nlr_scale = 0.5\nsteps = 20\ntwin = \"TWIN\"\n[kernel]\nsolutions = [\"analytic\", \"empirical\"]\nform = \"full\"\nprobe_size = 8\n[logging]\nevery = 10\nkernel_every = 10\n[outputs]\ndir = \"{}\"\n",
        env!("CARGO_MANIFEST_DIR"),
        dir.display()
    )
}

/// Under full-batch gradient descent in f64 the parameter-space twin (tangent pass), the
/// function-space twin (Θ0 from the structured kernel) and the empirical kernel track (closed
/// form from the same Θ0) are one model: their outputs agree to round-off.
#[test]
fn residual_nets_train_with_twins_equal_to_the_empirical_kernel_track() {
    use ntk_dynamics::record::Track;
    let tmp = tempfile::tempdir().unwrap();
    let conv = conv_stack(tmp.path());
    for (name, text) in [
        ("residual MLP", RESIDUAL_MLP),
        ("conv stack", conv.as_str()),
    ] {
        let f = run_text(&text.replace("TWIN", "function"));
        let p = run_text(&text.replace("TWIN", "parameter"));
        let tp = track_gap(&p, Track::Linearized, &f, Track::Linearized);
        let tk = track_gap(&f, Track::Linearized, &f, Track::KernelEmpirical);
        eprintln!(
            "{name}: parameter vs function twin {tp:e}, function twin vs kernel track {tk:e}"
        );
        assert!(tp < 1e-10, "{name}: parameter vs function twin {tp:e}");
        assert!(
            tk < 1e-10,
            "{name}: function twin vs empirical kernel track {tk:e}"
        );
        assert!(f.outputs_of(Track::KernelAnalytic).is_some(), "{name}");
        // The resolved config reads back to the same experiment.
        let exp = ntk_dynamics::config::parse_str(&text.replace("TWIN", "function"), None).unwrap();
        let again = ntk_dynamics::config::parse_str(&exp.resolved_toml(), None).unwrap();
        assert_eq!(again, exp, "{name}");
    }
}

/// Each stack a kernel does not exist for is refused naming the entry, the line of
/// `model.blocks` and what to write instead; so are the keys the stack replaces.
#[test]
fn stacks_without_an_infinite_width_kernel_are_refused_with_the_entry_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let conv = conv_stack(tmp.path()).replace("TWIN", "function");
    let cases: Vec<(String, &[&str])> = vec![
        (
            conv.replace(
                "\"layer_norm\",\n",
                "\"layer_norm\", \"activation\", \"activation\",\n",
            ),
            &[
                "bad.toml:19",
                "model.blocks[4]",
                "\"activation\" only right after",
                "pre-activation",
            ],
        ),
        (
            conv.replace("filter = 3 }],\n", "filter = 3 }, \"activation\"],\n"),
            &[
                "model.blocks[1].branch",
                "ends in an activation",
                "FanInSum",
            ],
        ),
        (
            conv.replace(
                "],\n    shortcut = { layer = \"conv\", filter = 1, stride = 2 } },",
                "] },",
            ),
            &[
                "model.blocks[1].shortcut",
                "4×4×6",
                "8×8×6",
                "filter = 1, stride = 2",
            ],
        ),
        (
            conv.replace("window = 2 }", "window = 2, strid = 3 }"),
            &["bad.toml", "unknown field `strid`", "stride"],
        ),
        (
            conv.replace("\"layer_norm\",\n", "\"layernorm\",\n"),
            &["bad.toml", "layernorm", "\"layer_norm\""],
        ),
        (
            RESIDUAL_MLP.replace("TWIN", "function").replace(
                "\"dense\", \"layer_norm\"",
                "{ layer = \"dense\", width = 128 }, \"layer_norm\"",
            ),
            &["bad.toml", "unknown field `width`"],
        ),
        (
            RESIDUAL_MLP
                .replace("TWIN", "function")
                .replace("b_std = 0.5", "b_std = 0.5\nreadout = \"flatten\""),
            &["model.readout", "only with model.architecture = \"conv\""],
        ),
        (
            conv.replace("  \"layer_norm\",\n", "  \"activation\", \"layer_norm\",\n"),
            &[
                "model.blocks[3]",
                "put the layer norm before the activation",
            ],
        ),
        (
            conv.replace(
                "  { layer = \"conv\", filter = 3 },\n  { layer = \"residual\"",
                "  \"activation\",\n  { layer = \"residual\"",
            ),
            &[
                "model.blocks[0]",
                "start the stack with a dense layer or convolution",
            ],
        ),
        (
            conv.replace("width = 6\n", "width = 6\ndepth = 2\n"),
            &["model.depth", "not with model.blocks"],
        ),
        (
            conv.replace(
                "{ layer = \"avg_pool\", window = 2 }",
                "{ layer = \"avg_pool\", window = 9 }",
            ),
            &["model.blocks[3]", "fits the 4×4 map"],
        ),
        (
            RESIDUAL_MLP.replace("TWIN", "function").replace(
                "[\"dense\"], shortcut",
                "[\"dense\"], scale = -1.0, shortcut",
            ),
            &["model.blocks[4].scale", "positive"],
        ),
        (
            RESIDUAL_MLP.replace("TWIN", "function").replace(
                "\"dense\", \"layer_norm\"",
                "{ layer = \"conv\", filter = 3 }",
            ),
            &["model.blocks[0]", "\"dense\" in a dense network"],
        ),
        (
            RESIDUAL_MLP
                .replace("TWIN", "function")
                .replace("b_std = 0.5", "b_std = 0.5\nparametrization = \"mup\""),
            &["model.parametrization", "mup", "model.blocks"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let err = ntk_dynamics::config::parse_str(text, Some(std::path::Path::new("bad.toml")))
            .expect_err(&format!("case {i} must be refused"))
            .to_string();
        for n in *needles {
            assert!(err.contains(n), "case {i}: {err:?} lacks {n:?}");
        }
    }
}

/// The analytic kernels of tanh and softplus stacks sum each position pair's moments from the
/// two positions' Hermite series (`ntk::hermite`; each input's series recorded with its own
/// variances and extended to a common length before inputs are paired). Against the same
/// interpreter with every moment by the 2-D quadrature at order 96: within 1e-10 of the largest
/// entry on every stack of the finite-network cases (dense and conv, layer norm, residual
/// branches, strides, pooling, both readouts), at σ_w = 1.3 (every series used) and σ_w = 4
/// (the largest variances refused: quadrature for those positions), on inputs with a duplicate
/// and a zero point.
#[test]
fn series_stack_kernels_equal_high_order_quadrature_kernels() {
    for case in 0..finite_cases().len() {
        for act in [Activation::Tanh, Activation::Softplus] {
            for w_std in [1.3, 4.0] {
                let (name, mut s, blocks) = finite_cases().swap_remove(case);
                s.activation = act;
                s.w_std = w_std;
                let cfg = config(&s, blocks);
                let series = BlockKernelConfig::of_network(&cfg, MomentMethod::Auto(128)).unwrap();
                let reference =
                    BlockKernelConfig::of_network(&cfg, MomentMethod::Quadrature(96)).unwrap();
                let d = s.input_dim;
                let mut x = common::gauss(4 * d, 9);
                let first = x[..d].to_vec();
                x[3 * d..].copy_from_slice(&first); // a duplicate
                x[2 * d..3 * d].iter_mut().for_each(|v| *v = 0.0); // a zero point
                let (a, b) = (
                    series.kernels(&x, 4, &x[d..], 3),
                    reference.kernels(&x, 4, &x[d..], 3),
                );
                let (en, et) = (
                    common::rel_max(&a.nngp, &b.nngp),
                    common::rel_max(&a.ntk, &b.ntk),
                );
                assert!(
                    en < 1e-10 && et < 1e-10,
                    "{name} {act:?} σ_w {w_std}: nngp {en:e}, ntk {et:e}"
                );
            }
        }
    }
}
