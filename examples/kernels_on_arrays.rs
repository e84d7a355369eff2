//! The library without the command line, in the spirit of neural-tangents' `kernel_fn` and
//! `empirical_ntk_fn`: a network described by a config, its analytic infinite-width NNGP/NTK and
//! its empirical NTK at initialisation as plain functions on arrays, and how close the empirical
//! kernel comes to the analytic one as the width grows (the gap shrinks like width^(-1/2)).
//!
//! Run with `cargo run --release --example kernels_on_arrays`.

use ntk_dynamics::config;
use ntk_dynamics::ntk::{self, empirical, KernelForm};
use ntk_dynamics::run;

fn main() -> ntk_dynamics::Result<()> {
    // Eight points on a circle in 2-D: row-major, n × d.
    let n = 8;
    let x: Vec<f64> = (0..n)
        .flat_map(|i| {
            let a = i as f64 * std::f64::consts::TAU / n as f64;
            [a.cos(), a.sin()]
        })
        .collect();
    for width in [64, 256, 1024, 4096] {
        let exp = config::parse_str(
            &format!(
                "[experiment]\nname = \"kernels\"\n[data]\nkind = \"teacher\"\ninput_dim = 2\nn_train = {n}\nn_test = 0\n[model]\nwidth = {width}\ndepth = 2\n"
            ),
            None,
        )?;
        // The network a run on this data builds: 2 inputs, 1 output.
        let data = ntk_dynamics::data::load(&exp.data, exp.seed)?;
        let arch = run::network_config(&exp, &data);
        // kernel_fn: the analytic NNGP and NTK between the rows of x (closed form for ReLU).
        let analytic = ntk::analytic_kernels_until(&arch, 48, (&x, n), (&x, n), &|| false)
            .expect("not interrupted");
        // empirical_ntk_fn: Θ0 of one random initialisation, output-averaged.
        let net = arch.init(exp.seed);
        let theta0 = empirical::empirical_ntk(&net, &x, n, None, KernelForm::Trace)?.total();
        let gap = (&theta0 - &analytic.ntk).norm_l2() / analytic.ntk.norm_l2();
        println!(
            "width {width:5}: Θ∞(x0, x0) = {:.4}, Θ0(x0, x0) = {:.4}, ‖Θ0 − Θ∞‖/‖Θ∞‖ = {gap:.4}",
            analytic.ntk[(0, 0)],
            theta0[(0, 0)]
        );
    }
    Ok(())
}
