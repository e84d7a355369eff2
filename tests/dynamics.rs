//! The three tracks checked against mathematics (issue: experiment).
//! f64 networks; tolerances: 1e-9 relative (function-space twin vs closed form), 1e-8
//! (function-space vs parameter-space linearized model).

mod common;

use common::{gauss, net};
use faer::linalg::solvers::Solve;
use faer::Mat;
use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::config;
use ntk_dynamics::data;
use ntk_dynamics::dynamics::kernel::{DiagReg, TimeMode};
use ntk_dynamics::dynamics::kernel::{KernelPredictor, PredictorInputs};
use ntk_dynamics::dynamics::linearized::LinearizedTwin;
use ntk_dynamics::dynamics::MinibatchSchedule;
use ntk_dynamics::linalg;
use ntk_dynamics::model::{Activation, NetworkConfig, Parametrization};
use ntk_dynamics::ntk::empirical::{empirical_ntk, naive_jacobian};
use ntk_dynamics::ntk::KernelForm;
use ntk_dynamics::run::{self, RunOptions};

fn tiny(k: usize, act: Activation) -> NetworkConfig {
    net(3, k, 12, 2)
        .act(act)
        .stds(1.3, 0.4)
        .bias(true)
        .param(Parametrization::Ntk)
        .precision(Precision::F64)
        .backend(Backend::Flex)
        .build()
}

#[test]
fn full_batch_twin_equals_discrete_closed_form() {
    let (n, m, k) = (6, 4, 2);
    let c = tiny(k, Activation::Tanh);
    let net = c.init(3);
    let x_all = gauss((n + m) * 3, 1);
    let y = linalg::mat_from_rows(&gauss(n * k, 2), n * k, 1);
    let theta_all = empirical_ntk(
        &net,
        &x_all,
        n + m,
        Some((&x_all[..n * 3], n)),
        KernelForm::Full,
    )
    .unwrap()
    .total();
    let f0 = net.predict(&x_all, n + m).unwrap();
    let f0m = linalg::mat_from_rows(&f0, (n + m) * k, 1);
    let lr = 0.3 * 2.0 * (n * k) as f64
        / linalg::sym_eigenvalues(linalg::block(theta_all.as_ref(), 0, n * k, 0, n * k).as_ref())
            .unwrap()
            .last()
            .unwrap();
    let mut twin = LinearizedTwin::new(theta_all.clone(), f0m.clone(), k, lr, 0.0);
    let pred = KernelPredictor::new(PredictorInputs {
        theta_train: &linalg::block(theta_all.as_ref(), 0, n * k, 0, n * k),
        theta_test_train: Some(&linalg::block(theta_all.as_ref(), n * k, m * k, 0, n * k)),
        f0_train: &linalg::block(f0m.as_ref(), 0, n * k, 0, 1),
        f0_test: Some(&linalg::block(f0m.as_ref(), n * k, m * k, 0, 1)),
        y_train: &y,
        n_targets: n * k,
        learning_rate: lr,
        momentum: 0.0,
        time: TimeMode::Discrete,
        diag_reg: DiagReg {
            value: 0.0,
            absolute: false,
        },
    })
    .unwrap();
    let batch: Vec<usize> = (0..n).collect();
    let mut worst: f64 = 0.0;
    for step in 0..=60u64 {
        if step % 10 == 0 {
            let (tr, te) = pred.predict(step);
            let closed: Vec<f64> = linalg::mat_to_rows(tr.as_ref())
                .into_iter()
                .chain(linalg::mat_to_rows(te.unwrap().as_ref()))
                .collect();
            let twin_v = linalg::mat_to_rows(twin.predictions().as_ref());
            let rel = ntk_dynamics::metrics::rel_change(&twin_v, &closed);
            worst = worst.max(rel);
            assert!(rel < 1e-9, "step {step}: relative difference {rel}");
        }
        twin.step(&batch, &y);
    }
    eprintln!("twin vs closed form, worst relative difference {worst:e}");
}

/// Minibatch SGD with momentum: the function-space twin equals an explicit parameter-space
/// linearized model `f0 + J (θ − θ0)` trained by the same SGD.
#[test]
fn function_space_twin_equals_parameter_space_model() {
    let (n, m, k, d) = (8, 3, 2, 3);
    let c = tiny(k, Activation::Gelu);
    let net = c.init(5);
    let x_all = gauss((n + m) * d, 7);
    let y_vals = gauss(n * k, 8);
    let y = linalg::mat_from_rows(&y_vals, n * k, 1);
    let jac = naive_jacobian(&net, &x_all, n + m).unwrap(); // ((n+m)·K) × P
    let p = jac.ncols();
    let theta_all = linalg::gram(
        jac.as_ref(),
        linalg::block(jac.as_ref(), 0, n * k, 0, p).as_ref(),
    );
    let f0 = net.predict(&x_all, n + m).unwrap();
    let (lr, mu) = (0.05, 0.7);
    let mut twin = LinearizedTwin::new(
        theta_all,
        linalg::mat_from_rows(&f0, (n + m) * k, 1),
        k,
        lr,
        mu,
    );
    let mut delta = vec![0.0; p];
    let mut vel = vec![0.0; p];
    let mut sched = MinibatchSchedule::new(n, 3, 11);
    for _ in 0..40 {
        let batch = sched.next_batch();
        // parameter space: g = Σ_{a∈B,k} (f_lin − y)/(|B|K) ∇f
        let mut grad = vec![0.0; p];
        for &a in &batch {
            for o in 0..k {
                let r = a * k + o;
                let f: f64 = f0[r] + (0..p).map(|j| jac[(r, j)] * delta[j]).sum::<f64>();
                let g = (f - y_vals[r]) / (batch.len() * k) as f64;
                for j in 0..p {
                    grad[j] += g * jac[(r, j)];
                }
            }
        }
        for j in 0..p {
            vel[j] = mu * vel[j] + grad[j];
            delta[j] -= lr * vel[j];
        }
        twin.step(&batch, &y);
    }
    let param_space: Vec<f64> = (0..(n + m) * k)
        .map(|r| f0[r] + (0..p).map(|j| jac[(r, j)] * delta[j]).sum::<f64>())
        .collect();
    let fs = linalg::mat_to_rows(twin.predictions().as_ref());
    let rel = ntk_dynamics::metrics::rel_change(&fs, &param_space);
    assert!(rel < 1e-8, "function space vs parameter space: {rel}");
}

fn spd(n: usize, seed: u64) -> Mat<f64> {
    let a = linalg::mat_from_rows(&gauss(n * (n + 2), seed), n, n + 2);
    linalg::gram(a.as_ref(), a.as_ref())
}

#[allow(clippy::too_many_arguments)]
fn inputs<'a>(
    theta: &'a Mat<f64>,
    tst: &'a Mat<f64>,
    f0: &'a Mat<f64>,
    g0: &'a Mat<f64>,
    y: &'a Mat<f64>,
    lr: f64,
    time: TimeMode,
    reg: DiagReg,
) -> PredictorInputs<'a> {
    PredictorInputs {
        theta_train: theta,
        theta_test_train: Some(tst),
        f0_train: f0,
        f0_test: Some(g0),
        y_train: y,
        n_targets: y.nrows() * y.ncols(),
        learning_rate: lr,
        momentum: 0.0,
        time,
        diag_reg: reg,
    }
}

/// A small kernel-regression problem: an SPD train kernel, a test × train kernel, initial
/// outputs and targets (2 outputs).
struct Problem {
    n: usize,
    theta: faer::Mat<f64>,
    tst: faer::Mat<f64>,
    f0: faer::Mat<f64>,
    g0: faer::Mat<f64>,
    y: faer::Mat<f64>,
}

/// No ridge.
const NO_REG: DiagReg = DiagReg {
    value: 0.0,
    absolute: false,
};

impl Problem {
    fn new() -> Self {
        let (n, m, c) = (7, 4, 2);
        Problem {
            n,
            theta: spd(n, 1),
            tst: linalg::mat_from_rows(&gauss(m * n, 2), m, n),
            f0: linalg::mat_from_rows(&gauss(n * c, 3), n, c),
            g0: linalg::mat_from_rows(&gauss(m * c, 4), m, c),
            y: linalg::mat_from_rows(&gauss(n * c, 5), n, c),
        }
    }

    /// Kernel regression on the problem at learning rate `lr`.
    fn predictor(&self, lr: f64, time: TimeMode, reg: DiagReg) -> KernelPredictor {
        let (theta, tst, f0, g0, y) = (&self.theta, &self.tst, &self.f0, &self.g0, &self.y);
        KernelPredictor::new(inputs(theta, tst, f0, g0, y, lr, time, reg)).unwrap()
    }
}

#[test]
fn predictor_limits_and_regulariser() {
    let q = Problem::new();
    for time in [TimeMode::Discrete, TimeMode::Continuous] {
        let p = q.predictor(0.1, time, NO_REG);
        let (tr, te) = p.predict(0);
        assert!(
            linalg::rel_frobenius(tr.as_ref(), q.f0.as_ref()) < 1e-13,
            "t = 0 train"
        );
        assert!(
            linalg::rel_frobenius(te.unwrap().as_ref(), q.g0.as_ref()) < 1e-13,
            "t = 0 test"
        );
        let (tr, _) = p.predict_infinite();
        assert!(
            linalg::rel_frobenius(tr.as_ref(), q.y.as_ref()) < 1e-13,
            "t = ∞ train"
        );
        // a very long time converges to the t = ∞ solution
        let (tr_long, te_long) = p.predict(10_000_000);
        let (_, te_inf) = p.predict_infinite();
        assert!(linalg::rel_frobenius(tr_long.as_ref(), q.y.as_ref()) < 1e-8);
        assert!(linalg::rel_frobenius(te_long.unwrap().as_ref(), te_inf.unwrap().as_ref()) < 1e-8);
    }
}

/// Discrete-time kernel regression tends to continuous time as lr → 0 at fixed t = lr·steps.
#[test]
fn discrete_time_predictor_tends_to_continuous_time() {
    let q = Problem::new();
    let t: f64 = 3.0;
    let cont = q
        .predictor(1e-3, TimeMode::Continuous, NO_REG)
        .predict(3000)
        .1
        .unwrap();
    let mut prev = f64::INFINITY;
    for lr in [1e-1, 1e-2, 1e-3] {
        let steps = (t / lr).round() as u64;
        let disc = q
            .predictor(lr, TimeMode::Discrete, NO_REG)
            .predict(steps)
            .1
            .unwrap();
        let e = linalg::rel_frobenius(disc.as_ref(), cont.as_ref());
        assert!(
            e < prev,
            "discrete-continuous gap must shrink with lr: {e} !< {prev}"
        );
        prev = e;
    }
    assert!(prev < 1e-3, "gap at lr 1e-3: {prev}");
}

/// With a ridge, the t = ∞ test predictions equal a direct solve with the regulariser:
/// relative λ = r·trace/n, t = ∞ test = g0 + Θst (Θ + λI)⁻¹ (y − f0).
#[test]
fn predictor_regulariser_equals_a_direct_solve() {
    let q = Problem::new();
    let n = q.n;
    let r = 0.05;
    let lambda = r * (0..n).map(|i| q.theta[(i, i)]).sum::<f64>() / n as f64;
    for (reg, lam) in [
        (
            DiagReg {
                value: r,
                absolute: false,
            },
            lambda,
        ),
        (
            DiagReg {
                value: 0.7,
                absolute: true,
            },
            0.7,
        ),
    ] {
        let p = q.predictor(0.1, TimeMode::Continuous, reg);
        assert!((p.lambda - lam).abs() < 1e-12 * lam);
        let mut a = q.theta.clone();
        for i in 0..n {
            a[(i, i)] += lam;
        }
        let sol = a.llt(faer::Side::Lower).unwrap().solve(&q.y - &q.f0);
        let expect = &q.g0 + linalg::matmul(q.tst.as_ref(), sol.as_ref());
        let (_, te) = p.predict_infinite();
        assert!(linalg::rel_frobenius(te.unwrap().as_ref(), expect.as_ref()) < 1e-10);
    }
}

fn sine_experiment(width: usize, seed: u64, steps: u64) -> config::Experiment {
    let toml = format!(
        r#"
[experiment]
name = "scaling"
seed = {seed}
[data]
kind = "sine"
n_train = 16
n_test = 48
[model]
width = {width}
depth = 2
b_std = 1.0
[training]
lr_scale = 0.5
steps = {steps}
center_outputs = true
[kernel]
solutions = ["analytic"]
probe_size = 16
[logging]
every = {steps}
kernel_every = {steps}
"#
    );
    config::parse_str(&toml, None).unwrap()
}

/// A wide network tracks its linearization; narrow ones do not (averaged over seeds).
#[test]
fn wide_network_tracks_its_linearization() {
    let mut rel = Vec::new();
    let mut drift = Vec::new();
    for width in [64usize, 4096] {
        let (mut r_sum, mut d_sum) = (0.0, 0.0);
        let seeds = 3;
        for seed in 0..seeds {
            let exp = sine_experiment(width, seed, 150);
            let ds = data::load(&exp.data, exp.seed).unwrap();
            let rec = run::execute(&exp, &ds, &RunOptions::default()).unwrap();
            let last = rec.last().unwrap();
            use ntk_dynamics::record::Track;
            let scale = ntk_dynamics::metrics::rms(&ds.y_test).unwrap();
            let rmse = last.rmse_test.get((Track::Network, Track::Linearized));
            r_sum += rmse.copied().flatten().unwrap() / scale;
            d_sum += rec.last_kernel().unwrap().ntk_rel_drift;
        }
        rel.push(r_sum / seeds as f64);
        drift.push(d_sum / seeds as f64);
    }
    eprintln!("RMSE(net, lin)/RMS(y) at widths 64, 4096: {rel:?}; kernel drift {drift:?}");
    assert!(rel[1] < 0.05, "width 4096: {}", rel[1]);
    assert!(
        rel[0] > 4.0 * rel[1],
        "width 64 {} vs 4096 {}",
        rel[0],
        rel[1]
    );
    assert!(
        drift[0] > 4.0 * drift[1],
        "drift: width 64 {} vs 4096 {}",
        drift[0],
        drift[1]
    );
}

/// Duplicate training points make the kernel singular: predictions stay finite, the t = ∞ solution
/// uses the pseudo-inverse, and the condition number is reported as infinite/huge.
#[test]
fn singular_kernels_give_finite_predictions() {
    let n = 6;
    let mut x = gauss(n * 3, 4);
    let first: Vec<f64> = x[..3].to_vec();
    x[3..6].copy_from_slice(&first); // duplicate point
    let c = tiny(1, Activation::Relu);
    let net = c.init(2);
    let theta = empirical_ntk(&net, &x, n, None, KernelForm::Full)
        .unwrap()
        .total();
    let y = linalg::mat_from_rows(&gauss(n, 9), n, 1);
    let f0 = linalg::mat_from_rows(&net.predict(&x, n).unwrap(), n, 1);
    let tst = linalg::block(theta.as_ref(), 0, 2, 0, n);
    let g0 = linalg::block(f0.as_ref(), 0, 2, 0, 1);
    for reg in [
        DiagReg {
            value: 0.0,
            absolute: false,
        },
        DiagReg {
            value: 1e-14,
            absolute: false,
        },
    ] {
        let p = KernelPredictor::new(inputs(
            &theta,
            &tst,
            &f0,
            &g0,
            &y,
            0.1,
            TimeMode::Continuous,
            reg,
        ))
        .unwrap();
        assert!(
            p.condition_number > 1e6,
            "condition number {}",
            p.condition_number
        );
        let (tr, te) = p.predict(1000);
        let (_, te_inf) = p.predict_infinite();
        for v in linalg::mat_to_rows(tr.as_ref())
            .into_iter()
            .chain(linalg::mat_to_rows(te.unwrap().as_ref()))
            .chain(linalg::mat_to_rows(te_inf.unwrap().as_ref()))
        {
            assert!(v.is_finite());
        }
    }
}

/// The twin's input Jacobian (central difference along δ of autodiff input gradients) matches a
/// finite difference in x of the explicit parameter-space model `f0(x) + J(x) δ`.
/// `f_lin(x) = f(x; θ0) + J(x; θ0)·δ` evaluated explicitly in f64 with a naive Jacobian.
fn explicit_twin(net64: &ntk_dynamics::model::Network, delta: &[f64], x: &[f64]) -> Vec<f64> {
    let k = net64.config.n_outputs;
    let f0 = net64.predict(x, 1).unwrap();
    let j = naive_jacobian(net64, x, 1).unwrap();
    (0..k)
        .map(|o| f0[o] + (0..delta.len()).map(|p| j[(o, p)] * delta[p]).sum::<f64>())
        .collect()
}

/// Flattens per-layer parameter tensors (weights row-major, then bias).
fn flat(layers: &[ntk_dynamics::model::LayerParams]) -> Vec<f64> {
    use ntk_dynamics::model::tensor_to_f64;
    layers
        .iter()
        .flat_map(|l| {
            let mut v = tensor_to_f64(l.weight.clone()).unwrap();
            if let Some(b) = &l.bias {
                v.extend(tensor_to_f64(b.clone()).unwrap());
            }
            v
        })
        .collect()
}

/// The twin's input sensitivity under ReLU at the default settings (width 512, depth 2, σ_w = √2,
/// σ_b = 0.1, ntk, f32 network) against an independent f64 computation of the explicit
/// parameter-space model: δ = Jᵀβ from a naive Jacobian and central differences in x of
/// `f(x; θ0) + J(x; θ0)·δ` (ReLU networks are piecewise linear in x; h = 1e-6 crosses no kink
/// here). Tolerance 2e-3 relative: the production pass runs in f32.
#[test]
fn twin_input_gradient_is_exact_under_relu_at_default_width() {
    use ntk_dynamics::dynamics::sensitivity;
    let (n, d) = (16, 1);
    let c = net(d, 1, 512, 2)
        .stds(std::f64::consts::SQRT_2, 0.1)
        .precision(Precision::F32)
        .build();
    let net = c.init(4);
    let mut c64 = c.clone();
    c64.model.precision = Precision::F64;
    let mut net64 = c64.init(4);
    net64.set_flat(&net.flatten().unwrap()); // the same (f32-representable) θ0, in f64
    let pi = std::f64::consts::PI;
    let x_train: Vec<f64> = (0..n)
        .map(|i| -pi + 2.0 * pi * (i as f64 + 0.3) / n as f64)
        .collect();
    let beta: Vec<f64> = gauss(n, 2).iter().map(|v| 0.05 * v).collect();
    let jac = naive_jacobian(&net64, &x_train, n).unwrap();
    let delta: Vec<f64> = (0..jac.ncols())
        .map(|p| (0..n).map(|r| jac[(r, p)] * beta[r]).sum())
        .collect();
    let x: Vec<f64> = vec![-2.71, -0.93, 0.41, 1.37, 2.89];
    let change = {
        let dl = sensitivity::displacement(&net, &x_train, n, &beta).unwrap();
        let e = flat(&dl);
        let err = ntk_dynamics::metrics::rel_change(&e, &delta);
        assert!(err < 1e-4, "δ = Jᵀβ: relative error {err}");
        sensitivity::linearized_input_gradient_change(&net, &dl, &x, x.len()).unwrap()
    };
    let g0 = sensitivity::input_gradients(&net, &x, x.len()).unwrap();
    let h = 1e-6;
    let (mut num, mut den) = (0.0, 0.0);
    for (a, &xa) in x.iter().enumerate() {
        let fd = (explicit_twin(&net64, &delta, &[xa + h])[0]
            - explicit_twin(&net64, &delta, &[xa - h])[0])
            / (2.0 * h);
        let got = g0[0][a] + change[0][a];
        num += (fd - got).powi(2);
        den += fd * fd;
    }
    let err = (num / den).sqrt();
    assert!(err < 2e-3, "twin input gradient: relative error {err}");
}

/// Under mup the twin's displacement is `D·Jᵀβ` (per-layer learning rates): its tangent
/// `J(x)·δ` must equal the learning-rate-weighted kernel's prediction `Θ_D(x, X)·β`, and its
/// input gradient must match central differences of the explicit model (f64, tanh, K = 2).
#[test]
fn twin_displacement_carries_the_mup_learning_rates() {
    use ntk_dynamics::dynamics::sensitivity;
    let (n, d, k) = (6, 3, 2);
    let c = net(d, k, 24, 2)
        .act(Activation::Tanh)
        .stds(1.3, 0.4)
        .param(Parametrization::Mup)
        .build();
    let net = c.init(8);
    let x_train = gauss(n * d, 1);
    let beta = gauss(n * k, 2);
    let delta = sensitivity::displacement(&net, &x_train, n, &beta).unwrap();
    let x = gauss(3 * d, 3);
    let tangent = net.jvp(&x, 3, &delta).unwrap();
    let theta = empirical_ntk(&net, &x, 3, Some((&x_train, n)), KernelForm::Full)
        .unwrap()
        .total();
    let kernel_pred = linalg::mat_to_rows(
        linalg::matmul(
            theta.as_ref(),
            linalg::mat_from_rows(&beta, n * k, 1).as_ref(),
        )
        .as_ref(),
    );
    let err = ntk_dynamics::metrics::rel_change(&tangent, &kernel_pred);
    assert!(err < 1e-10, "J(x)·δ vs Θ_D(x, X)·β: {err}");
    let change = sensitivity::linearized_input_gradient_change(&net, &delta, &x, 3).unwrap();
    let g0 = sensitivity::input_gradients(&net, &x, 3).unwrap();
    let dflat = flat(&delta);
    let h = 1e-5;
    for a in 0..3 {
        for i in 0..d {
            let mut xp = x[a * d..(a + 1) * d].to_vec();
            let mut xm = xp.clone();
            xp[i] += h;
            xm[i] -= h;
            let (fp, fm) = (
                explicit_twin(&net, &dflat, &xp),
                explicit_twin(&net, &dflat, &xm),
            );
            for o in 0..k {
                let fd = (fp[o] - fm[o]) / (2.0 * h);
                let g = g0[o][a * d + i] + change[o][a * d + i];
                assert!(
                    (fd - g).abs() < 1e-6 * (1.0 + fd.abs()),
                    "point {a} dim {i} output {o}: fd {fd} vs {g}"
                );
            }
        }
    }
}

/// η_c = 2(1+μ)·N·K/λ_max of the full multi-output Θ0 on the training set, whatever
/// `kernel.form` is: against λ_max of `J·Jᵀ` from a naive Jacobian (f64, full
/// eigendecomposition), μ = 0.9, K = 3, to 1e-9 relative. The output-averaged form must give
/// the same η_c (before, its λ_max came from the averaged kernel).
#[test]
fn critical_learning_rate_uses_the_full_kernel_and_momentum() {
    let text = |form: &str| {
        format!(
            "[experiment]\nname = \"c\"\nseed = 2\n[data]\nkind = \"csv\"\npath = \"experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\nn_train = 40\nn_test = 10\n[model]\nwidth = 48\nprecision = \"f64\"\n[training]\nlr_scale = 1.0\nmomentum = 0.9\nsteps = 0\n[kernel]\nform = \"{form}\"\nsolutions = [\"empirical\"]\n"
        )
    };
    let mut rates = Vec::new();
    for form in ["full", "trace"] {
        let exp = config::parse_str(&text(form), None).unwrap();
        let ds = data::load(&exp.data, exp.seed).unwrap();
        let net = run::network_config(&exp, &ds).init(exp.seed);
        let init = run::Initial::compute(&exp, &ds, &net, &run::RunOptions::default()).unwrap();
        let critical = run::learning_rates(&exp, &ds, &init, &net)
            .unwrap()
            .critical_lr;
        rates.push(critical);
        if form == "full" {
            let jac = naive_jacobian(&net, &ds.x_train, ds.n_train()).unwrap();
            let theta = linalg::gram(jac.as_ref(), jac.as_ref());
            let lambda = *linalg::sym_eigenvalues(theta.as_ref())
                .unwrap()
                .last()
                .unwrap();
            let expected = 2.0 * 1.9 * (ds.n_train() * ds.n_outputs) as f64 / lambda;
            assert!(
                (critical - expected).abs() < 1e-9 * expected,
                "η_c {critical} vs 2(1+μ)NK/λ_max {expected}"
            );
        }
    }
    assert!(
        (rates[0] - rates[1]).abs() < 1e-9 * rates[0],
        "η_c must not depend on kernel.form: {rates:?}"
    );
}

/// The kernel track with heavy-ball momentum (closed form, per eigenmode a 4 × 4 matrix power)
/// equals the function-space twin trained full batch with the same momentum, on train and test
/// points (f64, 1e-9 relative), at several step counts.
#[test]
fn heavy_ball_kernel_track_equals_the_full_batch_twin_with_momentum() {
    let (n, m, d) = (10, 4, 2);
    let a = gauss((n + m) * 5, 3);
    let feats = linalg::mat_from_rows(&a, n + m, 5);
    let theta_all = linalg::gram(
        feats.as_ref(),
        linalg::block(feats.as_ref(), 0, n, 0, 5).as_ref(),
    );
    let f0: Vec<f64> = gauss(n + m, 4).iter().map(|v| 0.3 * v).collect();
    let y = linalg::mat_from_rows(&gauss(n, 5), n, 1);
    let _ = d;
    let lambda = *linalg::sym_eigenvalues(linalg::block(theta_all.as_ref(), 0, n, 0, n).as_ref())
        .unwrap()
        .last()
        .unwrap();
    let mu = 0.9;
    let lr = 1.5 * (2.0 * n as f64 / lambda); // above the momentum-free η_c, below 2(1+μ)N/λ
    let mut twin = LinearizedTwin::new(
        theta_all.clone(),
        linalg::mat_from_rows(&f0, n + m, 1),
        1,
        lr,
        mu,
    );
    let theta_train = linalg::block(theta_all.as_ref(), 0, n, 0, n);
    let theta_test = linalg::block(theta_all.as_ref(), n, m, 0, n);
    let f0_train = linalg::mat_from_rows(&f0[..n], n, 1);
    let f0_test = linalg::mat_from_rows(&f0[n..], m, 1);
    let pred = KernelPredictor::new(PredictorInputs {
        theta_train: &theta_train,
        theta_test_train: Some(&theta_test),
        f0_train: &f0_train,
        f0_test: Some(&f0_test),
        y_train: &y,
        n_targets: n,
        learning_rate: lr,
        momentum: mu,
        time: TimeMode::Discrete,
        diag_reg: DiagReg {
            value: 0.0,
            absolute: false,
        },
    })
    .unwrap();
    let batch: Vec<usize> = (0..n).collect();
    for step in 1..=120u64 {
        twin.step(&batch, &y);
        if step % 30 == 0 {
            let (tr, te) = pred.predict(step);
            let mut closed = linalg::mat_to_rows(tr.as_ref());
            closed.extend(linalg::mat_to_rows(te.unwrap().as_ref()));
            let twin_v = linalg::mat_to_rows(twin.predictions().as_ref());
            let rel = ntk_dynamics::metrics::rel_change(&twin_v, &closed);
            assert!(
                rel < 1e-9,
                "step {step}: twin vs heavy-ball closed form {rel}"
            );
        }
    }
}
