//! The analytic MLP kernels of activations without a closed-form Gaussian moment (tanh,
//! softplus) are summed from Mehler (Hermite) series by default (`ntk::hermite`). Against the
//! 2-D piecewise Gauss–Legendre quadrature at a high order (a second, independent method), the
//! NNGP and NTK of depth-3 networks agree to 1e-10 of the largest entry, for both
//! parametrizations, with and without biases, on inputs with a duplicate and a zero point, at
//! variances where the series is used and where it is refused (the kernel then falls back to the
//! quadrature for those points). The reference quadrature's own accuracy: orders 96 and 160
//! agree to 1e-12 on these kernels.

mod common;

use ntk_dynamics::model::{Activation, Parametrization};
use ntk_dynamics::ntk::analytic::{AnalyticConfig, MomentMethod};

#[test]
fn series_kernels_equal_high_order_quadrature_kernels() {
    let d = 6;
    let (n1, n2) = (9, 7);
    let mut x1 = common::gauss(n1 * d, 3);
    let x2 = common::gauss(n2 * d, 4);
    x1[..d].copy_from_slice(&x2[2 * d..3 * d]); // a duplicate
    x1[4 * d..5 * d].iter_mut().for_each(|v| *v = 0.0); // a zero point
                                                        // σ_w = 1.5: every variance has a series; the larger σ_w: the largest variances are refused
                                                        // (φ(√q·z) nearly a step) and fall back to the quadrature. (Softplus grows linearly: at
                                                        // σ_w = 6 its third-layer variances reach 10⁵, where the reference quadrature itself moves
                                                        // by 5e-9 between orders 160 and 256.)
    for (act, scales) in [
        (Activation::Tanh, [1.5, 6.0]),
        (Activation::Softplus, [1.5, 3.0]),
    ] {
        for param in [Parametrization::Ntk, Parametrization::Standard] {
            for bias in [true, false] {
                for w_std in scales {
                    let arch = common::net(d, 1, 64, 3)
                        .act(act)
                        .param(param)
                        .bias(bias)
                        .stds(w_std, 0.3)
                        .build();
                    // The fallback quadrature at order 128 (the default 48 is accurate to only
                    // ~1e-5 at these large variances; see docs/performance.md).
                    let series = AnalyticConfig::new(&arch, 128);
                    let reference = AnalyticConfig {
                        arch: arch.clone(),
                        method: MomentMethod::Quadrature(160),
                    };
                    for (a, b) in [
                        (
                            series.kernels(&x1, n1, &x2, n2),
                            reference.kernels(&x1, n1, &x2, n2),
                        ),
                        (
                            series.kernels(&x1, n1, &x1, n1),
                            reference.kernels(&x1, n1, &x1, n1),
                        ),
                    ] {
                        let (en, et) = (
                            common::rel_max(&a.nngp, &b.nngp),
                            common::rel_max(&a.ntk, &b.ntk),
                        );
                        assert!(
                            en < 1e-10 && et < 1e-10,
                            "{act:?} {param:?} bias {bias} σ_w {w_std}: nngp {en:e}, ntk {et:e}"
                        );
                    }
                }
            }
        }
    }
}
