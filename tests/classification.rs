//! Classification on real data (issue: real data): one-hot targets, accuracy, cross-entropy
//! twin vs parameter space, and a digits run.

mod common;

use common::net;
use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::config;
use ntk_dynamics::data;
use ntk_dynamics::dynamics::linearized::LinearizedTwin;
use ntk_dynamics::dynamics::{cross_entropy, Loss, MinibatchSchedule};
use ntk_dynamics::linalg;
use ntk_dynamics::metrics::{accuracy, agreement, confusion};
use ntk_dynamics::model::{Activation, Parametrization};
use ntk_dynamics::ntk::empirical::naive_jacobian;
use ntk_dynamics::record::Track;
use ntk_dynamics::run::{self, RunOptions};

#[test]
fn accuracy_agreement_and_confusion_on_hand_made_examples() {
    // 3 points, 3 classes; targets one-hot (centred values work the same)
    let y = [0.9, -0.1, -0.1, -0.1, -0.1, 0.9, -0.1, 0.9, -0.1];
    let f = [2.0, 1.0, 0.0, 0.0, 0.1, 0.3, 5.0, 4.0, 0.0];
    assert_eq!(accuracy(&f, &y, 3), Some(2.0 / 3.0));
    let g = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    assert_eq!(agreement(&f, &g, 3), Some(2.0 / 3.0));
    let c = confusion(&f, &y, 3);
    assert_eq!(c, vec![vec![1, 0, 0], vec![1, 0, 0], vec![0, 0, 1]]);
    // cross-entropy of a uniform prediction is ln K
    let ce = cross_entropy(&[0.0; 4], &[1.0, 0.0, 0.0, 0.0], 4).unwrap();
    assert!((ce - 4f64.ln()).abs() < 1e-15);
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let f = [0.3, -1.2, 2.0, 0.1, 0.5, -0.4];
    let y = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let g = Loss::CrossEntropy.output_gradient(&f, &y, 3);
    for i in 0..6 {
        let h = 1e-6;
        let (mut p, mut m) = (f, f);
        p[i] += h;
        m[i] -= h;
        let fd =
            (cross_entropy(&p, &y, 3).unwrap() - cross_entropy(&m, &y, 3).unwrap()) / (2.0 * h);
        assert!((fd - g[i]).abs() < 1e-9, "entry {i}: fd {fd} vs {}", g[i]);
    }
}

#[test]
fn one_hot_classes_survive_the_split() {
    let text = "[experiment]\nname = \"d\"\n[data]\nkind = \"csv\"\npath = \"experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\ntest_fraction = 0.3\n";
    let exp = config::parse_str(text, None).unwrap();
    let ds = data::load(&exp.data, 0).unwrap();
    assert_eq!(ds.n_outputs, 10);
    assert_eq!(ds.n_train() + ds.n_test(), 1797);
    let file =
        data::csv::read_csv(std::path::Path::new("experiments/data/digits.csv"), None).unwrap();
    let col = file.header.iter().position(|h| h == "label").unwrap();
    for class in 0..10 {
        let in_file = file.rows.iter().filter(|r| r[col] == class as f64).count();
        let count = |y: &[f64]| y.chunks(10).filter(|r| r[class] == 1.0).count();
        assert_eq!(
            count(&ds.y_train) + count(&ds.y_test),
            in_file,
            "class {class}"
        );
        assert!(
            count(&ds.y_test) > 0,
            "class {class} missing from the test split"
        );
    }
    // every target row is one-hot
    assert!(ds
        .y_train
        .chunks(10)
        .all(|r| r.iter().sum::<f64>() == 1.0 && r.iter().all(|&v| v == 0.0 || v == 1.0)));
}

/// Cross-entropy, minibatches and momentum: the function-space twin equals an explicit
/// parameter-space linearized model.
#[test]
fn cross_entropy_twin_equals_parameter_space_model() {
    let (n, m, k, d) = (6, 2, 3, 4);
    let c = net(d, k, 10, 2)
        .act(Activation::Tanh)
        .stds(1.2, 0.3)
        .bias(true)
        .param(Parametrization::Ntk)
        .precision(Precision::F64)
        .backend(Backend::Flex)
        .build();
    let net = c.init(4);
    let x: Vec<f64> = (0..(n + m) * d)
        .map(|i| ((i * 37 % 17) as f64 - 8.0) / 6.0)
        .collect();
    let labels = [0usize, 2, 1, 1, 0, 2];
    let y_vals: Vec<f64> = labels
        .iter()
        .flat_map(|&l| (0..k).map(move |j| if j == l { 1.0 } else { 0.0 }))
        .collect();
    let jac = naive_jacobian(&net, &x, n + m).unwrap();
    let p = jac.ncols();
    let theta = linalg::gram(
        jac.as_ref(),
        linalg::block(jac.as_ref(), 0, n * k, 0, p).as_ref(),
    );
    let f0 = net.predict(&x, n + m).unwrap();
    let (lr, mu) = (0.5, 0.5);
    let mut twin =
        LinearizedTwin::new(theta, linalg::mat_from_rows(&f0, (n + m) * k, 1), k, lr, mu)
            .with_loss(Loss::CrossEntropy);
    let y = linalg::mat_from_rows(&y_vals, n * k, 1);
    let (mut delta, mut vel) = (vec![0.0; p], vec![0.0; p]);
    let mut sched = MinibatchSchedule::new(n, 2, 3);
    for _ in 0..30 {
        let batch = sched.next_batch();
        let f_of =
            |r: usize, delta: &[f64]| f0[r] + (0..p).map(|j| jac[(r, j)] * delta[j]).sum::<f64>();
        let fb: Vec<f64> = batch
            .iter()
            .flat_map(|&a| (0..k).map(move |o| a * k + o))
            .map(|r| f_of(r, &delta))
            .collect();
        let yb: Vec<f64> = batch
            .iter()
            .flat_map(|&a| (0..k).map(move |o| a * k + o))
            .map(|r| y_vals[r])
            .collect();
        // softmax cross-entropy gradient, written out independently of the library
        let mut grad = vec![0.0; p];
        for (bi, &a) in batch.iter().enumerate() {
            let row = &fb[bi * k..(bi + 1) * k];
            let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
            for o in 0..k {
                let g = ((row[o] - mx).exp() / z - yb[bi * k + o]) / batch.len() as f64;
                for j in 0..p {
                    grad[j] += g * jac[(a * k + o, j)];
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
    let rel = ntk_dynamics::metrics::rel_change(
        &linalg::mat_to_rows(twin.predictions().as_ref()),
        &param_space,
    );
    assert!(rel < 1e-8, "cross-entropy twin vs parameter space: {rel}");
}

/// A digits run at width 1024: the network reaches > 90 % test accuracy.
#[test]
fn digits_network_reaches_ninety_percent() {
    let text = std::fs::read_to_string("experiments/digits.toml")
        .unwrap()
        .replace("n_train = 500", "n_train = 300")
        .replace("steps = 300", "steps = 200")
        .replace("form = \"full\"", "form = \"trace\"")
        .replace(
            "solutions = [\"analytic\", \"empirical\"]",
            "solutions = [\"analytic\"]",
        );
    let exp =
        config::parse_str(&text, Some(std::path::Path::new("experiments/digits.toml"))).unwrap();
    assert_eq!(exp.model.width, 1024);
    let ds = data::load(&exp.data, exp.seed).unwrap();
    let rec = run::execute(&exp, &ds, &RunOptions::default()).unwrap();
    let cl = rec.last().unwrap().classification.clone().unwrap();
    let acc = |t| cl.test_accuracy.get(t).copied().flatten().unwrap();
    let network = acc(Track::Network);
    eprintln!(
        "digits test accuracy: network {network:.4}, linearized {:.4}, analytic kernel {:.4}",
        acc(rec.twin_track()),
        acc(Track::KernelAnalytic)
    );
    assert!(network > 0.9, "network test accuracy {network}");
}

/// A validation split carved from the training data drives early stopping: the early-stopped
/// test accuracy is the test accuracy at the checkpoint with the best validation accuracy
/// (recomputed here from the checkpoints), never the best test accuracy. With the
/// output-averaged kernel and K = 10 the twin and the empirical-kernel track carry their own
/// names.
#[test]
fn early_stopping_uses_the_validation_split_and_averaged_tracks_are_named() {
    use ntk_dynamics::record::columns::{run_figures, Column, Figure, Split};
    let text = "[experiment]\nname = \"v\"\n[data]\nkind = \"csv\"\npath = \"experiments/data/digits.csv\"\ntarget = [\"label\"]\none_hot = true\nstandardize = false\nfeature_scale = 0.0625\nn_train = 200\nn_test = 300\nvalidation_fraction = 0.25\nlabel_noise = 0.3\n[model]\nwidth = 256\n[training]\nlr_scale = 0.5\nsteps = 120\n[kernel]\nform = \"trace\"\nprobe_size = 16\n[logging]\nevery = 10\nkernel_every = 60\n";
    let exp = config::parse_str(text, None).unwrap();
    let ds = data::load(&exp.data, exp.seed).unwrap();
    assert_eq!((ds.n_train(), ds.n_val(), ds.n_test()), (150, 50, 300));
    let rec = run::execute(&exp, &ds, &RunOptions::default()).unwrap();
    assert!(rec.tracks.contains(&Track::LinearizedAvg));
    assert!(rec.tracks.contains(&Track::KernelEmpiricalAvg));
    assert!(!rec.tracks.contains(&Track::Linearized));
    for t in [Track::Network, Track::LinearizedAvg] {
        let (mut best_val, mut at_best) = (f64::NEG_INFINITY, f64::NAN);
        for c in &rec.checkpoints {
            let v = Column::Accuracy(t, Split::Val).read(c).unwrap();
            if v > best_val {
                best_val = v;
                at_best = Column::Accuracy(t, Split::Test).read(c).unwrap();
            }
        }
        let f = Figure::EarlyStoppedTestAccuracy(t);
        assert!(run_figures(&rec).contains(&f));
        assert_eq!(f.read(&rec), at_best, "{t:?}");
    }
    let csv = ntk_dynamics::report::tables::metrics_csv(&rec);
    let header = csv.lines().next().unwrap();
    assert!(header.contains("network_val_accuracy") && header.contains("linearized_avg_val_loss"));
    let preds = ntk_dynamics::report::tables::predictions_csv(&rec);
    assert_eq!(
        preds.lines().filter(|l| l.starts_with("val,")).count(),
        50 * 10
    );
}
