//! Core numerics checked against mathematics (issue: core).
//! Tolerances: f32 networks 1e-6 relative Frobenius for structured vs naive kernels (both built
//! from f32 gradients); f64 networks 1e-12; analytic kernels 1e-12 (closed forms), 1e-8
//! (quadrature of smooth activations).

mod common;

use common::net;
use faer::Mat;
use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::linalg;
use ntk_dynamics::model::{Activation, NetworkConfig, Parametrization};
use ntk_dynamics::ntk::analytic::{closed_form, gaussian_moments, AnalyticConfig, MomentMethod};
use ntk_dynamics::ntk::empirical::{empirical_ntk, naive_empirical_ntk, trace_of_full};
use ntk_dynamics::ntk::quadrature::GaussLegendre;
use ntk_dynamics::ntk::KernelForm;

fn inputs(n: usize, d: usize, seed: u64) -> Vec<f64> {
    common::gauss(n * d, seed)
}

#[allow(clippy::too_many_arguments)]
fn cfg(
    d: usize,
    width: usize,
    depth: usize,
    k: usize,
    act: Activation,
    bias: bool,
    par: Parametrization,
    precision: Precision,
) -> NetworkConfig {
    net(d, k, width, depth)
        .act(act)
        .bias(bias)
        .param(par)
        .precision(precision)
        .build()
}

#[test]
fn structured_equals_naive_for_every_activation_and_parametrization() {
    let (n1, n2, d) = (5, 4, 3);
    let x1 = inputs(n1, d, 1);
    let x2 = inputs(n2, d, 2);
    let mut worst: f64 = 0.0;
    for act in Activation::all() {
        for par in [Parametrization::Ntk, Parametrization::Standard] {
            for bias in [true, false] {
                for k in [1, 3] {
                    let c = cfg(d, 16, 2, k, act, bias, par, Precision::F32);
                    let net = c.init(7);
                    let naive = naive_empirical_ntk(&net, &x1, n1, &x2, n2).unwrap();
                    let full =
                        empirical_ntk(&net, &x1, n1, Some((&x2, n2)), KernelForm::Full).unwrap();
                    let e = linalg::rel_frobenius(full.total().as_ref(), naive.as_ref());
                    assert!(
                        e < 1e-6,
                        "{act:?} {par:?} bias={bias} K={k}: full rel err {e}"
                    );
                    let tr =
                        empirical_ntk(&net, &x1, n1, Some((&x2, n2)), KernelForm::Trace).unwrap();
                    let e2 = linalg::rel_frobenius(
                        tr.total().as_ref(),
                        trace_of_full(&naive, k).as_ref(),
                    );
                    assert!(
                        e2 < 1e-6,
                        "{act:?} {par:?} bias={bias} K={k}: trace rel err {e2}"
                    );
                    worst = worst.max(e).max(e2);
                }
            }
        }
    }
    eprintln!("worst structured-vs-naive relative error (f32): {worst:e}");
}

#[test]
fn structured_equals_naive_in_f64_tightly() {
    let (n, d) = (6, 4);
    let x = inputs(n, d, 3);
    for act in [Activation::Relu, Activation::Erf, Activation::Tanh] {
        let net = cfg(d, 24, 3, 2, act, true, Parametrization::Ntk, Precision::F64).init(11);
        let naive = naive_empirical_ntk(&net, &x, n, &x, n).unwrap();
        let full = empirical_ntk(&net, &x, n, None, KernelForm::Full).unwrap();
        let e = linalg::rel_frobenius(full.total().as_ref(), naive.as_ref());
        assert!(e < 1e-12, "{act:?}: f64 rel err {e}");
    }
}

/// More points than one block row of the symmetric Gram product (128), so that only its lower
/// triangle is multiplied and the rest is mirrored: both forms equal the naive Jacobian Gram
/// (f64) and are exactly symmetric.
#[test]
fn symmetric_structured_kernel_of_many_points_equals_naive() {
    use ntk_dynamics::ntk::empirical::trace_of_full;
    let (n, d) = (200, 3);
    let x = inputs(n, d, 5);
    for k in [1, 3] {
        let net = cfg(
            d,
            16,
            2,
            k,
            Activation::Relu,
            true,
            Parametrization::Ntk,
            Precision::F64,
        )
        .init(4);
        let naive = naive_empirical_ntk(&net, &x, n, &x, n).unwrap();
        for (form, want) in [
            (KernelForm::Full, naive.clone()),
            (KernelForm::Trace, trace_of_full(&naive, k)),
        ] {
            let got = empirical_ntk(&net, &x, n, None, form).unwrap().total();
            let e = linalg::rel_frobenius(got.as_ref(), want.as_ref());
            assert!(e < 1e-12, "K {k} {form:?}: {e}");
            for i in 0..got.nrows() {
                for j in 0..i {
                    assert_eq!(got[(i, j)], got[(j, i)], "K {k} {form:?} ({i}, {j})");
                }
            }
        }
    }
}

#[test]
fn backends_agree_to_f32_tolerance() {
    let (n, d) = (8, 3);
    let x = inputs(n, d, 4);
    let mut c = cfg(
        d,
        64,
        2,
        1,
        Activation::Relu,
        true,
        Parametrization::Ntk,
        Precision::F32,
    );
    let a = empirical_ntk(&c.init(5), &x, n, None, KernelForm::Trace)
        .unwrap()
        .total();
    c.model.backend = Backend::Ndarray;
    let b = empirical_ntk(&c.init(5), &x, n, None, KernelForm::Trace)
        .unwrap()
        .total();
    let e = linalg::rel_frobenius(a.as_ref(), b.as_ref());
    assert!(e < 1e-5, "flex vs ndarray kernels differ: {e}");
}

#[test]
fn backends_give_the_same_training_losses() {
    use ntk_dynamics::dynamics::network::NetworkTrainer;
    let (n, d) = (16, 3);
    let x = inputs(n, d, 6);
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
    let losses = |backend: Backend| -> Vec<f64> {
        let mut c = cfg(
            d,
            128,
            2,
            1,
            Activation::Tanh,
            true,
            Parametrization::Ntk,
            Precision::F32,
        );
        c.model.backend = backend;
        let mut t = NetworkTrainer::new(c.init(9), 0.5, 0.9);
        (0..30).map(|_| t.step(&x, &y, n).unwrap()).collect()
    };
    let (a, b) = (losses(Backend::Flex), losses(Backend::Ndarray));
    assert!(
        a.last().unwrap() < &(0.5 * a[0]),
        "training must make progress: {a:?}"
    );
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        assert!(
            (p - q).abs() <= 1e-5 * p.abs().max(1e-3),
            "step {i}: flex {p} vs ndarray {q}"
        );
    }
}

#[test]
fn same_seed_same_parameters_and_kernels_bit_for_bit() {
    let c = cfg(
        3,
        32,
        2,
        2,
        Activation::Gelu,
        true,
        Parametrization::Ntk,
        Precision::F32,
    );
    let (a, b) = (c.init(42), c.init(42));
    assert_eq!(a.flatten().unwrap(), b.flatten().unwrap());
    assert_ne!(a.flatten().unwrap(), c.init(43).flatten().unwrap());
    let x = inputs(5, 3, 9);
    let ka = empirical_ntk(&a, &x, 5, None, KernelForm::Full)
        .unwrap()
        .total();
    let kb = empirical_ntk(&b, &x, 5, None, KernelForm::Full)
        .unwrap()
        .total();
    assert_eq!(
        linalg::mat_to_rows(ka.as_ref()),
        linalg::mat_to_rows(kb.as_ref())
    );
}

#[test]
fn flatten_roundtrip() {
    let c = cfg(
        3,
        8,
        2,
        2,
        Activation::Relu,
        true,
        Parametrization::Standard,
        Precision::F64,
    );
    let mut m = c.init(1);
    let flat = m.flatten().unwrap();
    assert_eq!(flat.len(), c.n_params());
    let shifted: Vec<f64> = flat.iter().map(|v| v + 1.0).collect();
    m.set_flat(&shifted);
    assert_eq!(m.flatten().unwrap(), shifted);
}

/// burn's gradients vs central finite differences of the loss, in f64.
#[test]
fn gradients_match_finite_differences() {
    let (n, d) = (4, 3);
    let x = inputs(n, d, 5);
    for act in [Activation::Tanh, Activation::Gelu, Activation::Softplus] {
        let c = cfg(d, 6, 2, 2, act, true, Parametrization::Ntk, Precision::F64);
        let net = c.init(3);
        let jac = ntk_dynamics::ntk::empirical::naive_jacobian(&net, &x, n).unwrap();
        let flat = net.flatten().unwrap();
        let h = 1e-6;
        for pidx in (0..flat.len()).step_by(7) {
            let mut plus = net.clone();
            let mut minus = net.clone();
            let mut fp = flat.clone();
            fp[pidx] += h;
            plus.set_flat(&fp);
            let mut fm = flat.clone();
            fm[pidx] -= h;
            minus.set_flat(&fm);
            let yp = plus.predict(&x, n).unwrap();
            let ym = minus.predict(&x, n).unwrap();
            for r in 0..n * 2 {
                let fd = (yp[r] - ym[r]) / (2.0 * h);
                let g = jac[(r, pidx)];
                assert!(
                    (fd - g).abs() < 1e-7 * (1.0 + g.abs()),
                    "{act:?} param {pidx} row {r}: fd {fd} vs autodiff {g}"
                );
            }
        }
    }
}

fn acfg(
    act: Activation,
    depth: usize,
    par: Parametrization,
    d: usize,
    width: usize,
) -> AnalyticConfig {
    AnalyticConfig {
        arch: net(d, 1, width, depth)
            .act(act)
            .stds(1.3, 0.2)
            .bias(true)
            .param(par)
            .build(),
        method: MomentMethod::Auto(48),
    }
}

#[test]
fn depth_one_relu_is_the_arc_cosine_kernel() {
    // One hidden ReLU layer, w = 1, b = 0, inputs on the unit sphere scaled so that x·x'/d = cos α.
    let d = 2;
    for &alpha in &[
        0.0,
        0.3,
        1.0,
        std::f64::consts::FRAC_PI_2,
        2.5,
        std::f64::consts::PI,
    ] {
        let s = (d as f64).sqrt();
        let x1 = [s, 0.0];
        let x2 = [s * alpha.cos(), s * alpha.sin()];
        let c = AnalyticConfig {
            arch: net(d, 1, 1, 1)
                .act(Activation::Relu)
                .stds(1.0, 0.0)
                .bias(false)
                .param(Parametrization::Ntk)
                .build(),
            method: MomentMethod::Auto(64),
        };
        let k = c.kernels(&x1, 1, &x2, 1);
        let pi = std::f64::consts::PI;
        // Cho & Saul arc-cosine kernel of degree 1 (/2π) and degree 0 (derivative), |x| = 1.
        let nngp = (alpha.sin() + (pi - alpha) * alpha.cos()) / (2.0 * pi);
        let ntk = nngp + alpha.cos() * (pi - alpha) / (2.0 * pi);
        assert!(
            (k.nngp[(0, 0)] - nngp).abs() < 1e-14,
            "nngp at {alpha}: {} vs {nngp}",
            k.nngp[(0, 0)]
        );
        assert!(
            (k.ntk[(0, 0)] - ntk).abs() < 1e-14,
            "ntk at {alpha}: {} vs {ntk}",
            k.ntk[(0, 0)]
        );
    }
}

#[test]
fn identity_network_gives_the_linear_kernel() {
    let d = 3;
    let x1 = inputs(4, d, 1);
    let x2 = inputs(3, d, 2);
    let (w, b, depth) = (1.3f64, 0.2f64, 3);
    let c = AnalyticConfig {
        arch: net(d, 1, 1, depth)
            .act(Activation::Identity)
            .stds(w, b)
            .bias(true)
            .param(Parametrization::Ntk)
            .build(),
        method: MomentMethod::Auto(8),
    };
    let k = c.kernels(&x1, 4, &x2, 3);
    for i in 0..4 {
        for j in 0..3 {
            let k0: f64 = (0..d).map(|t| x1[i * d + t] * x2[j * d + t]).sum::<f64>() / d as f64;
            // Σ_{l+1} = w²Σ_l + b², Θ_{l+1} = Σ_{l+1} + w²Θ_l.
            let mut s = w * w * k0 + b * b;
            let mut t = s;
            for _ in 0..depth {
                s = w * w * s + b * b;
                t = s + w * w * t;
            }
            assert!((k.nngp[(i, j)] - s).abs() < 1e-12 * s.abs().max(1.0));
            assert!((k.ntk[(i, j)] - t).abs() < 1e-12 * t.abs().max(1.0));
        }
    }
}

#[test]
fn quadrature_reproduces_closed_forms() {
    let cases = [
        (1.0, 1.0, 0.5),
        (2.0, 0.7, -0.9),
        (0.3, 0.3, 0.3),
        (1.5, 2.5, 1.2),
        (0.8, 1.1, 0.0),
    ];
    for act in Activation::all() {
        if closed_form(act, 1.0, 1.0, 0.5).is_none() {
            continue;
        }
        // The default order, split at the kinks: 1e-8 for every activation, kinked ones included.
        let (order, tol) = (ntk_dynamics::ntk::quadrature::DEFAULT_ORDER, 1e-8);
        for &(q, qp, k) in &cases {
            let (e, kd) = closed_form(act, q, qp, k).unwrap();
            let (eq, kdq) = gaussian_moments(act, q, qp, k, MomentMethod::Quadrature(order));
            assert!(
                (e - eq).abs() < tol * e.abs().max(1.0),
                "{act:?} E[φφ] at {q},{qp},{k}: closed {e} quad {eq}"
            );
            assert!(
                (kd - kdq).abs() < tol * kd.abs().max(1.0),
                "{act:?} E[φ'φ'] at {q},{qp},{k}: closed {kd} quad {kdq}"
            );
        }
    }
}

#[test]
fn quadrature_integrates_gaussian_moments() {
    let gh = GaussLegendre::new(48);
    // E[u²v²] = q q' + 2k² for a centred Gaussian pair.
    let (q, qp, k) = (1.7, 0.6, 0.4);
    let v = gh.expect2(q, qp, k, |x| x * x, |x| x * x);
    assert!((v - (q * qp + 2.0 * k * k)).abs() < 1e-12);
    // E[tanh(u)²] for q = 1 against a 1-D fine trapezoid.
    let trap: f64 = {
        let (n, lim) = (200_000, 12.0);
        let h = 2.0 * lim / n as f64;
        (0..=n)
            .map(|i| {
                let x = -lim + i as f64 * h;
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * x.tanh().powi(2) * (-x * x / 2.0).exp()
            })
            .sum::<f64>()
            * h
            / (2.0 * std::f64::consts::PI).sqrt()
    };
    let g = gh.expect2(1.0, 1.0, 1.0, |x| x.tanh(), |x| x.tanh());
    assert!((g - trap).abs() < 1e-10, "tanh second moment {g} vs {trap}");
}

fn is_psd_symmetric(m: &Mat<f64>) -> bool {
    let sym = (0..m.nrows()).all(|i| {
        (0..m.ncols()).all(|j| (m[(i, j)] - m[(j, i)]).abs() <= 1e-12 * m[(i, j)].abs().max(1.0))
    });
    let ev = linalg::sym_eigenvalues(m.as_ref()).unwrap();
    sym && ev[0] > -1e-10 * ev.last().unwrap()
}

#[test]
fn analytic_kernels_are_symmetric_psd_and_exact_on_duplicates() {
    let d = 4;
    let mut x = inputs(10, d, 8);
    // duplicate and collinear rows
    let row: Vec<f64> = x[..d].to_vec();
    x[d..2 * d].copy_from_slice(&row);
    for t in 0..d {
        x[2 * d + t] = 3.0 * row[t];
    }
    for act in Activation::all() {
        for par in [Parametrization::Ntk, Parametrization::Standard] {
            let c = acfg(act, 3, par, d, 128);
            let k = c.kernels(&x, 10, &x, 10);
            assert!(is_psd_symmetric(&k.nngp), "{act:?} {par:?} nngp");
            assert!(is_psd_symmetric(&k.ntk), "{act:?} {par:?} ntk");
            // Duplicate rows give identical kernel rows exactly.
            for j in 0..10 {
                assert_eq!(
                    k.ntk[(0, j)],
                    k.ntk[(1, j)],
                    "{act:?} duplicate row differs"
                );
            }
        }
    }
    // Cross kernels: k(X1, X2) equals the corresponding block of k(X, X).
    let c = acfg(Activation::Erf, 2, Parametrization::Ntk, d, 1);
    let full = c.kernels(&x, 10, &x, 10);
    let cross = c.kernels(&x[..3 * d], 3, &x[5 * d..], 5);
    for i in 0..3 {
        for j in 0..5 {
            assert_eq!(cross.ntk[(i, j)], full.ntk[(i, 5 + j)]);
        }
    }
}

/// Empirical → analytic as the width grows, slope of the log-log fit in [−0.7, −0.3].
#[test]
fn empirical_ntk_converges_to_analytic_with_width() {
    let (n, d) = (8, 4);
    let x = inputs(n, d, 21);
    for act in [Activation::Relu, Activation::Erf] {
        let widths = [64usize, 128, 256, 512, 1024, 2048];
        let mut means = Vec::new();
        for &w in &widths {
            let c = net(d, 1, w, 2)
                .act(act)
                .stds(1.4, 0.1)
                .bias(true)
                .param(Parametrization::Ntk)
                .precision(Precision::F32)
                .backend(Backend::Flex)
                .build();
            let analytic = AnalyticConfig::new(&c, 48).kernels(&x, n, &x, n).ntk;
            let seeds = 10;
            let mean = (0..seeds)
                .map(|s| {
                    let e = empirical_ntk(&c.init(1000 + s), &x, n, None, KernelForm::Trace)
                        .unwrap()
                        .total();
                    linalg::rel_frobenius(e.as_ref(), analytic.as_ref())
                })
                .sum::<f64>()
                / seeds as f64;
            means.push(mean);
        }
        let wf: Vec<f64> = widths.iter().map(|&w| w as f64).collect();
        let (slope, _, _) = ntk_dynamics::metrics::loglog_fit(&wf, &means).unwrap();
        eprintln!("{act:?}: mean rel distance {means:?}, slope {slope:.3}");
        assert!((-0.7..=-0.3).contains(&slope), "{act:?}: slope {slope}");
        assert!(
            *means.last().unwrap() < 0.1,
            "{act:?}: at width 2048 {}",
            means.last().unwrap()
        );
    }
}

/// The standard-parametrization analytic NTK matches a wide standard network (it depends on width).
#[test]
fn standard_parametrization_analytic_matches_wide_network() {
    let (n, d) = (6, 3);
    let x = inputs(n, d, 4);
    let c = net(d, 1, 2048, 2)
        .act(Activation::Erf)
        .stds(1.2, 0.2)
        .bias(true)
        .param(Parametrization::Standard)
        .precision(Precision::F32)
        .backend(Backend::Flex)
        .build();
    let analytic = AnalyticConfig::new(&c, 48).kernels(&x, n, &x, n).ntk;
    let mean = (0..4)
        .map(|s| {
            linalg::rel_frobenius(
                empirical_ntk(&c.init(s), &x, n, None, KernelForm::Trace)
                    .unwrap()
                    .total()
                    .as_ref(),
                analytic.as_ref(),
            )
        })
        .sum::<f64>()
        / 4.0;
    assert!(mean < 0.1, "standard parametrization: mean distance {mean}");
}

/// Under mup the structured kernel is the learning-rate-weighted NTK `J diag(η_p/η) Jᵀ`, and the
/// readout starts at 1/n scale.
#[test]
fn mup_kernel_is_the_learning_rate_weighted_ntk() {
    let (n, d) = (5, 3);
    let x = inputs(n, d, 12);
    let c = cfg(
        d,
        16,
        2,
        2,
        Activation::Relu,
        true,
        Parametrization::Mup,
        Precision::F64,
    );
    let net = c.init(3);
    let jac = ntk_dynamics::ntk::empirical::naive_jacobian(&net, &x, n).unwrap();
    // per-parameter multipliers in flatten order (weights row-major, then bias, per layer)
    let mut m = Vec::new();
    for s in c.shapes() {
        m.extend(std::iter::repeat_n(s.weight_lr, s.n_in * s.n_out));
        m.extend(std::iter::repeat_n(s.bias_lr, s.n_out));
    }
    let scaled = faer::Mat::from_fn(jac.nrows(), jac.ncols(), |i, j| jac[(i, j)] * m[j].sqrt());
    let weighted = linalg::gram(scaled.as_ref(), scaled.as_ref());
    let structured = empirical_ntk(&net, &x, n, None, KernelForm::Full)
        .unwrap()
        .total();
    let e = linalg::rel_frobenius(structured.as_ref(), weighted.as_ref());
    assert!(e < 1e-12, "mup weighted kernel: {e}");
    let shapes = c.shapes();
    assert_eq!(
        (
            shapes[0].weight_lr,
            shapes[1].weight_lr,
            shapes[2].weight_lr
        ),
        (16.0, 1.0, 1.0 / 16.0)
    );
    // output weights ~ N(0, σ²/n²): their sample std is close to σ/n
    let flat = net.flatten_layers().unwrap();
    let out_w = &flat[2][..16 * 2];
    let std = (out_w.iter().map(|v| v * v).sum::<f64>() / out_w.len() as f64).sqrt();
    assert!(
        (std / (1.5 / 16.0) - 1.0).abs() < 0.5,
        "output weight std {std}"
    );
}

/// Row-blocked empirical kernel equals the one-shot kernel.
#[test]
fn blocked_empirical_ntk_equals_unblocked() {
    let (n1, n2, d) = (11, 6, 3);
    let x1 = inputs(n1, d, 31);
    let x2 = inputs(n2, d, 32);
    // f64: with f32 the batch size changes burn's kernels and results differ at 1e-8.
    let net = cfg(
        d,
        32,
        2,
        2,
        Activation::Tanh,
        true,
        Parametrization::Ntk,
        Precision::F64,
    )
    .init(2);
    let s2 = ntk_dynamics::ntk::empirical::backprop_signals(&net, &x2, n2).unwrap();
    for form in [KernelForm::Full, KernelForm::Trace] {
        let one = empirical_ntk(&net, &x1, n1, Some((&x2, n2)), form)
            .unwrap()
            .total();
        for block in [1, 4, 11, 50] {
            let b = ntk_dynamics::ntk::empirical::empirical_ntk_blocked(
                &net, &x1, n1, &s2, form, block,
            )
            .unwrap();
            let e = linalg::rel_frobenius(b.as_ref(), one.as_ref());
            assert!(e < 1e-12, "{form:?} block {block}: {e}");
        }
    }
}

/// The explicit backward recursion of dense networks (all K outputs stacked in one pass) gives
/// the signals and outputs that autodiff gives (a zero probe leaf per layer, one backward pass
/// per output), for every activation and parametrization, with and without bias, K = 1 and 4
/// (f64 networks); so does the output-averaged kernel built from them.
#[test]
fn explicit_dense_signals_equal_autodiff_signals() {
    use ntk_dynamics::ntk::empirical::{
        autodiff_signals_and_outputs, ntk_from_signals, signals_and_outputs,
    };
    let (n, d) = (3, 5);
    for act in Activation::all() {
        for bias in [true, false] {
            for (k, par) in [
                (1, Parametrization::Ntk),
                (4, Parametrization::Ntk),
                (1, Parametrization::Standard),
                (4, Parametrization::Mup),
            ] {
                let c = cfg(d, 16, 3, k, act, bias, par, Precision::F64);
                let net = c.init(2);
                let x = inputs(n, d, 9);
                let (a, fa) = signals_and_outputs(&net, &x, n).unwrap();
                let (b, fb) = autodiff_signals_and_outputs(&net, &x, n).unwrap();
                let case = format!("{} bias {bias} K {k} {par:?}", act.name());
                for (u, v) in fa.iter().zip(&fb) {
                    assert!(
                        (u - v).abs() <= 1e-14 * (1.0 + v.abs()),
                        "{case}: f {u} vs {v}"
                    );
                }
                for l in 0..4 {
                    let e = linalg::rel_frobenius(a.input(l), b.input(l));
                    assert!(e < 1e-14, "{case} layer {l} input: {e}");
                    for o in 0..k {
                        let e = linalg::rel_frobenius(a.delta(o, l), b.delta(o, l));
                        assert!(e < 1e-13, "{case} layer {l} output {o}: {e}");
                    }
                }
                // The output-averaged kernel: the dense signals sum the last hidden layer's
                // outputs through its narrow trace factor, the autodiff ones term by term.
                let ka = ntk_from_signals(&net, &a, &a, KernelForm::Trace).total();
                let kb = ntk_from_signals(&net, &b, &b, KernelForm::Trace).total();
                let e = linalg::rel_frobenius(ka.as_ref(), kb.as_ref());
                assert!(e < 1e-13, "{case} trace kernel: {e}");
            }
        }
    }
}
