//! Analytic convolutional NNGP/NTK (`ntk::conv`) against (1) neural-tangents 0.6.5's
//! `kernel_fn` on fixed inputs (`tests/data/cntk_reference.json`, made by
//! `tests/data/cntk_reference.py`), (2) a second, naive implementation written here (full
//! four-index covariances, explicit zero-padded arrays), (3) the dense NTK, which a 1×1 image
//! with 1×1 filters is, and (4) symmetry and positive semi-definiteness.
//! Tolerance: f64 throughout; 1e-12 relative to the largest entry of the matrix compared.

use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::model::{Activation, ModelSettings, NetworkConfig, Parametrization};
use ntk_dynamics::ntk::analytic::{AnalyticConfig, MomentMethod};
use ntk_dynamics::ntk::conv::{ConvKernelConfig, Padding, Readout, Spatial};

const RTOL: f64 = 1e-12;

fn base() -> ConvKernelConfig {
    ConvKernelConfig {
        image: Spatial {
            height: 5,
            width: 4,
        },
        channels: 1,
        conv_channels: 8,
        filter: 3,
        padding: Padding::Same,
        depth: 2,
        readout: Readout::Flatten,
        activation: Activation::Relu,
        w_std: 1.5,
        b_std: 0.2,
        bias: true,
        parametrization: Parametrization::Ntk,
        method: MomentMethod::Auto(64),
    }
}

/// The fixture's deterministic images (NHWC, row-major): x2[1] = x1[0], x1[2] = 0.
fn images(cfg: &ConvKernelConfig) -> (Vec<f64>, Vec<f64>) {
    let (h, w, c) = (cfg.image.height, cfg.image.width, cfg.channels);
    let img = |n: usize, second: bool| -> Vec<f64> {
        let mut v = Vec::with_capacity(h * w * c);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let (n, y, x, ch) = (n as f64, y as f64, x as f64, ch as f64);
                    v.push(if second {
                        (0.5 * (n + 2.0) - 0.3 * y + 0.8 * x + 0.2 * ch).cos()
                    } else {
                        (1.3 * (n + 1.0) + 0.7 * y - 0.4 * x + 0.9 * ch).sin() + 0.1 * ch
                    });
                }
            }
        }
        v
    };
    let mut x1: Vec<f64> = (0..3).flat_map(|n| img(n, false)).collect();
    let d = h * w * c;
    let mut x2: Vec<f64> = (0..2).flat_map(|n| img(n, true)).collect();
    x2[d..2 * d].copy_from_slice(&x1[..d]);
    x1[2 * d..].iter_mut().for_each(|v| *v = 0.0);
    (x1, x2)
}

/// The configuration of one fixture case: each key from the case, or from the file's top level
/// (the product fixture keeps the shared sizes there); `bias` defaults to true.
fn case_config(doc: &serde_json::Value, case: &serde_json::Value) -> ConvKernelConfig {
    let get = |k: &str| case.get(k).unwrap_or(&doc[k]);
    let n = |k: &str| get(k).as_u64().unwrap() as usize;
    let s = |k: &str| get(k).as_str().unwrap().to_string();
    let mut cfg = base();
    cfg.image = Spatial {
        height: n("height"),
        width: n("width"),
    };
    cfg.channels = n("channels");
    cfg.conv_channels = n("conv_channels");
    cfg.filter = n("filter");
    cfg.depth = n("depth");
    cfg.padding = if s("padding") == "same" {
        Padding::Same
    } else {
        Padding::Valid
    };
    cfg.readout = if s("readout") == "flatten" {
        Readout::Flatten
    } else {
        Readout::GlobalAvgPool
    };
    cfg.activation = activation(&s("activation"));
    cfg.w_std = get("w_std").as_f64().unwrap();
    cfg.b_std = get("b_std").as_f64().unwrap();
    cfg.bias = case.get("bias").is_none_or(|b| b.as_bool().unwrap());
    cfg.parametrization = if s("parametrization") == "ntk" {
        Parametrization::Ntk
    } else {
        Parametrization::Standard
    };
    cfg
}

/// The activation of a fixture's name (neural-tangents' stax layer names).
fn activation(name: &str) -> Activation {
    match name {
        "relu" => Activation::Relu,
        "leaky_relu_0.1" => Activation::LeakyRelu { alpha: 0.1 },
        "abs" => Activation::Abs,
        "erf" => Activation::Erf,
        "gelu" => Activation::Gelu,
        "sin" => Activation::Sin,
        "cos" => Activation::Cos,
        "identity" => Activation::Identity,
        a => panic!("{a}"),
    }
}

/// Max |a − b| over max |b|.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn flat(m: &faer::Mat<f64>) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| m[(i, j)])
        .collect()
}

/// A covariance between positions of two images, `[y1][x1][y2][x2]`.
type Cov = Vec<Vec<Vec<Vec<f64>>>>;

/// The input covariance of two `h × w × c` images (channel mean of products).
fn naive_cov(u: &[f64], v: &[f64], (h, w, c): (usize, usize, usize)) -> Cov {
    (0..h)
        .map(|y1| {
            (0..w)
                .map(|x1| {
                    (0..h)
                        .map(|y2| {
                            (0..w)
                                .map(|x2| {
                                    (0..c)
                                        .map(|k| {
                                            u[(y1 * w + x1) * c + k] * v[(y2 * w + x2) * c + k]
                                        })
                                        .sum::<f64>()
                                        / c as f64
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// A convolution of a covariance: zero-pad by `(lo, hi)`, then average over the `f × f` taps:
/// out[p1][p2] = (1/f²) Σ_t pad[p1 + t][p2 + t].
fn naive_conv(s: &Cov, f: usize, (lo, hi): (usize, usize)) -> Cov {
    let (hh, ww) = (s.len(), s[0].len());
    let (ph, pw) = (hh + lo + hi, ww + lo + hi);
    let mut pad = vec![vec![vec![vec![0.0; pw]; ph]; pw]; ph];
    for y1 in 0..hh {
        for x1 in 0..ww {
            for y2 in 0..hh {
                for x2 in 0..ww {
                    pad[y1 + lo][x1 + lo][y2 + lo][x2 + lo] = s[y1][x1][y2][x2];
                }
            }
        }
    }
    let (oh, ow) = (ph + 1 - f, pw + 1 - f);
    let mut out = vec![vec![vec![vec![0.0; ow]; oh]; ow]; oh];
    for y1 in 0..oh {
        for x1 in 0..ow {
            for y2 in 0..oh {
                for x2 in 0..ow {
                    let mut acc = 0.0;
                    for i in 0..f {
                        for j in 0..f {
                            acc += pad[y1 + i][x1 + j][y2 + i][x2 + j];
                        }
                    }
                    out[y1][x1][y2][x2] = acc / (f * f) as f64;
                }
            }
        }
    }
    out
}

/// `g` applied entrywise to two covariances of the same shape (with the entry's positions).
fn map2(s: &Cov, t: &Cov, g: &dyn Fn(usize, usize, usize, usize, f64, f64) -> f64) -> Cov {
    let (hh, ww) = (s.len(), s[0].len());
    (0..hh)
        .map(|y1| {
            (0..ww)
                .map(|x1| {
                    (0..hh)
                        .map(|y2| {
                            (0..ww)
                                .map(|x2| g(y1, x1, y2, x2, s[y1][x1][y2][x2], t[y1][x1][y2][x2]))
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The readout's sums of the last layer's NNGP and NTK covariances over the positions it
/// pairs (all pairs for a global average pool, equal positions for flatten), as means.
fn naive_readout_means(cfg: &ConvKernelConfig, eab: &Cov, tab: &Cov) -> (f64, f64) {
    let (hh, ww) = (eab.len(), eab[0].len());
    let (mut se, mut st, mut count) = (0.0, 0.0, 0.0);
    for y1 in 0..hh {
        for x1 in 0..ww {
            for y2 in 0..hh {
                for x2 in 0..ww {
                    if cfg.readout == Readout::GlobalAvgPool || (y1 == y2 && x1 == x2) {
                        se += eab[y1][x1][y2][x2];
                        st += tab[y1][x1][y2][x2];
                        count += 1.0;
                    }
                }
            }
        }
    }
    (se / count, st / count)
}

/// The naive recursion: every covariance a 4-index array `[y1][x1][y2][x2]`, each convolution
/// an explicit zero-padded array and a sum over taps, images' own covariances carried in full.
fn naive(cfg: &ConvKernelConfig, a: &[f64], b: &[f64]) -> (f64, f64) {
    let (h, w, c) = (cfg.image.height, cfg.image.width, cfg.channels);
    let f = cfg.filter;
    let pads = match cfg.padding {
        Padding::Same => ((f - 1) / 2, f - 1 - (f - 1) / 2),
        Padding::Valid => (0, 0),
    };
    let conv = |s: &Cov| naive_conv(s, f, pads);
    let w2 = cfg.w_std * cfg.w_std;
    let b2 = if cfg.bias { cfg.b_std * cfg.b_std } else { 0.0 };
    let one = if cfg.bias { 1.0 } else { 0.0 };
    let standard = cfg.parametrization == Parametrization::Standard;
    let cov = |u: &[f64], v: &[f64]| naive_cov(u, v, (h, w, c));
    let (mut eab, mut eaa, mut ebb) = (cov(a, b), cov(a, a), cov(b, b));
    let mut tab = map2(&eab, &eab, &|_, _, _, _, _, _| 0.0);
    let mut fan_in = c as f64;
    for _ in 0..cfg.depth {
        let (cab, caa, cbb, ctab) = (conv(&eab), conv(&eaa), conv(&ebb), conv(&tab));
        let k = |s: &Cov| map2(s, s, &|_, _, _, _, v, _| w2 * v + b2);
        let (kab, kaa, kbb) = (k(&cab), k(&caa), k(&cbb));
        let theta = map2(&cab, &ctab, &|_, _, _, _, e, t| {
            if standard {
                fan_in * (f * f) as f64 * e + w2 * t + one
            } else {
                w2 * e + b2 + w2 * t
            }
        });
        let mom = |s: &Cov, qa: &Cov, qb: &Cov, which: usize| -> Cov {
            map2(s, s, &|y1, x1, y2, x2, v, _| {
                let m = ntk_dynamics::ntk::analytic::gaussian_moments(
                    cfg.activation,
                    qa[y1][x1][y1][x1],
                    qb[y2][x2][y2][x2],
                    v,
                    cfg.method,
                );
                if which == 0 {
                    m.0
                } else {
                    m.1
                }
            })
        };
        let kdot = mom(&kab, &kaa, &kbb, 1);
        tab = map2(&theta, &kdot, &|_, _, _, _, t, d| t * d);
        eab = mom(&kab, &kaa, &kbb, 0);
        eaa = mom(&kaa, &kaa, &kaa, 0);
        ebb = mom(&kbb, &kbb, &kbb, 0);
        fan_in = cfg.conv_channels as f64;
    }
    let (hh, ww) = (eab.len(), eab[0].len());
    let (re, rt) = naive_readout_means(cfg, &eab, &tab);
    let k = w2 * re + b2;
    let theta = if standard {
        let positions = if cfg.readout == Readout::Flatten {
            (hh * ww) as f64
        } else {
            1.0
        };
        positions * fan_in * re + w2 * rt + one
    } else {
        k + w2 * rt
    };
    (k, theta)
}

fn variants() -> Vec<(String, ConvKernelConfig)> {
    let mut out = Vec::new();
    for padding in [Padding::Same, Padding::Valid] {
        for readout in [Readout::Flatten, Readout::GlobalAvgPool] {
            for depth in 1..=3 {
                for channels in 1..=2 {
                    for parametrization in [Parametrization::Ntk, Parametrization::Standard] {
                        let mut c = base();
                        c.padding = padding;
                        c.readout = readout;
                        c.depth = depth;
                        c.channels = channels;
                        c.parametrization = parametrization;
                        if padding == Padding::Valid {
                            c.image = Spatial {
                                height: 8,
                                width: 7,
                            };
                        }
                        out.push((format!("{padding:?} {readout:?} depth {depth} C {channels} {parametrization:?}"), c));
                    }
                }
            }
        }
    }
    for (act, f) in [
        (Activation::Erf, 2),
        (Activation::Gelu, 3),
        (Activation::Tanh, 3),
        (Activation::LeakyRelu { alpha: 0.1 }, 2),
    ] {
        let mut c = base();
        c.activation = act;
        c.filter = f;
        out.push((format!("{act:?} filter {f}"), c));
    }
    out
}

#[test]
fn fast_recursion_equals_the_naive_one_on_duplicate_and_zero_images() {
    for (name, cfg) in variants() {
        let (x1, x2) = images(&cfg);
        let d = cfg.input_dim();
        let k = cfg.kernels(&x1, 3, &x2, 2);
        let mut nngp = Vec::new();
        let mut ntk = Vec::new();
        for i in 0..3 {
            for j in 0..2 {
                let (a, b) = naive(&cfg, &x1[i * d..(i + 1) * d], &x2[j * d..(j + 1) * d]);
                nngp.push(a);
                ntk.push(b);
            }
        }
        let (en, et) = (rel_err(&flat(&k.nngp), &nngp), rel_err(&flat(&k.ntk), &ntk));
        assert!(en < RTOL && et < RTOL, "{name}: nngp {en:e}, ntk {et:e}");
    }
}

#[test]
fn a_one_pixel_image_with_one_by_one_filters_is_the_dense_network() {
    for parametrization in [Parametrization::Ntk, Parametrization::Standard] {
        for act in [Activation::Relu, Activation::Erf] {
            let mut cfg = base();
            cfg.image = Spatial {
                height: 1,
                width: 1,
            };
            cfg.channels = 6;
            cfg.filter = 1;
            cfg.conv_channels = 512;
            cfg.parametrization = parametrization;
            cfg.activation = act;
            let (x1, x2) = images(&cfg);
            let conv = cfg.kernels(&x1, 3, &x2, 2);
            let net = AnalyticConfig::new(
                &NetworkConfig {
                    input_dim: 6,
                    n_outputs: 1,
                    model: ModelSettings {
                        architecture: ntk_dynamics::model::Architecture::Mlp,
                        width: 512,
                        depth: cfg.depth,
                        activation: act,
                        w_std: cfg.w_std,
                        b_std: cfg.b_std,
                        bias: true,
                        parametrization,
                        precision: Precision::F64,
                        backend: Backend::Flex,
                        blocks: None,
                    },
                },
                64,
            )
            .kernels(&x1, 3, &x2, 2);
            let e = rel_err(&flat(&conv.ntk), &flat(&net.ntk));
            let en = rel_err(&flat(&conv.nngp), &flat(&net.nngp));
            assert!(
                e < RTOL && en < RTOL,
                "{parametrization:?} {act:?}: {e:e} {en:e}"
            );
        }
    }
}

#[test]
fn train_kernels_are_symmetric_and_positive_semidefinite() {
    for (name, cfg) in variants() {
        let (x1, _) = images(&cfg);
        let k = cfg.kernels(&x1, 3, &x1, 3);
        for m in [&k.nngp, &k.ntk] {
            for i in 0..3 {
                for j in 0..3 {
                    assert_eq!(m[(i, j)], m[(j, i)], "{name}");
                }
            }
            let eig = ntk_dynamics::linalg::sym_eigenvalues(m.as_ref()).unwrap();
            let max = eig.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(eig.iter().all(|&v| v >= -1e-12 * max), "{name}: {eig:?}");
        }
    }
}

#[test]
fn kernels_equal_neural_tangents() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cntk_reference.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let cfg = case_config(&doc, c);
        // neural-tangents' own round-off on self-pairs of ReLU-type nets with C ≥ 2 (its input
        // covariance's diagonal and its variances differ by an ulp; sqrt(qq' − K²) turns that
        // into ~1e-10): those entries are compared at 1e-8 (tests/data/cntk_conventions.md §7).
        let loose: Vec<&str> = c["roundoff_sensitive"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let (x1, x2) = images(&cfg);
        for (key, k, rows, cols) in [
            ("12", cfg.kernels(&x1, 3, &x2, 2), 3, 2),
            ("11", cfg.kernels(&x1, 3, &x1, 3), 3, 3),
        ] {
            for (which, m) in [("nngp", &k.nngp), ("ntk", &k.ntk)] {
                let reference = &c[format!("{which}_{key}")];
                let scale = (0..rows)
                    .flat_map(|i| (0..cols).map(move |j| (i, j)))
                    .map(|(i, j)| reference[i][j].as_f64().unwrap().abs())
                    .fold(0.0f64, f64::max);
                for i in 0..rows {
                    for j in 0..cols {
                        let r = reference[i][j].as_f64().unwrap();
                        let entry = format!("{which}_{key}[{i}][{j}]");
                        let tol = if loose.contains(&entry.as_str()) {
                            1e-8
                        } else {
                            RTOL
                        };
                        assert!(
                            (m[(i, j)] - r).abs() <= tol * scale,
                            "{name} {entry}: {} vs neural-tangents {r}",
                            m[(i, j)]
                        );
                    }
                }
            }
        }
    }
}

/// The full product of the conv kernel keys (activation × depth × padding × readout ×
/// parametrization × bias off / b_std = 0 / b_std = 0.7), 576 networks, against
/// neural-tangents 0.6.5 (`tests/data/cntk_product_reference.json`, made by
/// `tests/data/cntk_product_reference.py`): every entry at 1e-12 of the matrix's largest
/// entry, the identical-patch pairs of ReLU-type nets at 1e-8 (neural-tangents' own round-off,
/// measured up to 4.7e-11). Every disagreeing entry is listed before the test fails.
#[test]
fn kernels_equal_neural_tangents_over_the_product_of_the_conv_keys() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cntk_product_reference.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 576);
    let mut failures = Vec::new();
    for c in cases {
        let s = |k: &str| c[k].as_str().unwrap().to_string();
        let cfg = case_config(&doc, c);
        let label = format!(
            "{} depth {} {} {} {} bias {} b_std {}",
            s("activation"),
            cfg.depth,
            s("padding"),
            s("readout"),
            s("parametrization"),
            cfg.bias,
            cfg.b_std
        );
        let relu_family = matches!(
            cfg.activation,
            Activation::Relu | Activation::LeakyRelu { .. } | Activation::Abs
        );
        let (x1, x2) = images(&cfg);
        for (key, k) in [
            ("12", cfg.kernels(&x1, 3, &x2, 2)),
            ("11", cfg.kernels(&x1, 3, &x1, 3)),
        ] {
            for (which, m) in [("nngp", &k.nngp), ("ntk", &k.ntk)] {
                let reference: Vec<f64> = c[format!("{which}_{key}")]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
                    .collect();
                let cols = m.ncols();
                let scale = reference.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                for (idx, (&ours, &theirs)) in flat(m).iter().zip(&reference).enumerate() {
                    let (i, j) = (idx / cols, idx % cols);
                    // Pairs of images with identical patches: x2[1] = x1[0], and x1[1] is
                    // x1[0] shifted by 3 rows and 2 columns (0.7·3 − 0.4·2 = 1.3, the phase
                    // step between images). There the angle between two positions is zero,
                    // neural-tangents' two computations of the same variance differ by an ulp
                    // and √(qq' − k²) lifts it to ~1e-11..1e-10 under ReLU-type activations
                    // (cntk_conventions.md §7).
                    let source = |side: &str, n: usize| match (side, n) {
                        ("1", 0) | ("2", 1) => 'A',
                        ("1", 1) => 'B',
                        _ => '-',
                    };
                    let identical = source("1", i) != '-' && source(&key[1..], j) != '-';
                    let tol = if relu_family && identical { 1e-8 } else { RTOL };
                    let err = (ours - theirs).abs() / scale;
                    if err.is_nan() || err > tol {
                        failures.push(format!(
                            "{label}: {which}_{key}[{i}][{j}] {ours} vs {theirs} ({err:.2e})"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} entries of 2304 matrices disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
