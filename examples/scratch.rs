use ntk_dynamics::backend::{Backend, Precision};
use ntk_dynamics::model::{Activation, MlpConfig, Parametrization};
use ntk_dynamics::dynamics::network::NetworkTrainer;
use ntk_dynamics::ntk::empirical::naive_jacobian;
fn main() {
    let c = MlpConfig { input_dim: 2, width: 8, depth: 2, n_outputs: 1, activation: Activation::Tanh, w_std: 1.4, b_std: 0.5, bias: true, parametrization: Parametrization::Ntk, precision: Precision::F64, backend: Backend::Flex };
    let mlp = c.init(1);
    let n = 5;
    let x: Vec<f64> = (0..n*2).map(|i| (i as f64 * 0.37).sin()).collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64).cos()).collect();
    let f0 = mlp.predict(&x, n).unwrap();
    let jac = naive_jacobian(&mlp, &x, n).unwrap();
    let theta0 = mlp.flatten().unwrap();
    let mut tr = NetworkTrainer::new(mlp.clone(), 0.1, 0.0);
    tr.step(&x, &y, n).unwrap();
    let theta1 = tr.mlp.flatten().unwrap();
    // expected: θ1 = θ0 − lr Jᵀ (f0 − y)/n
    let mut maxerr: f64 = 0.0;
    for p in 0..theta0.len() {
        let g: f64 = (0..n).map(|i| jac[(i, p)] * (f0[i] - y[i]) / n as f64).sum();
        let exp = theta0[p] - 0.1 * g;
        maxerr = maxerr.max((exp - theta1[p]).abs());
    }
    println!("max param update error {maxerr:e}");
}
