//! The analytic MLP and conv kernels of activations without a closed-form Gaussian moment (tanh,
//! softplus) are summed from Mehler (Hermite) series by default (`ntk::hermite`; the stacks'
//! are tested in `tests/blocks.rs`). Against the
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

    // σ_w = 1.5: every variance has a series on the standard rule; tanh at σ_w = 3: variances
    // of about 7–16 take long series on the fine rule; the largest σ_w: the largest variances
    // are refused (φ(√q·z) nearly a step) and fall back to the quadrature. (Softplus grows
    // linearly: at σ_w = 6 its third-layer variances reach 10⁵, where the reference quadrature
    // itself moves by 5e-9 between orders 160 and 256.)
    for (act, scales) in [
        (Activation::Tanh, &[1.5, 3.0, 6.0][..]),
        (Activation::Softplus, &[1.5, 3.0][..]),
    ] {
        for param in [Parametrization::Ntk, Parametrization::Standard] {
            for bias in [true, false] {
                for &w_std in scales {
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

/// The conv kernels (`ntk::conv`) of tanh and softplus sum each position pair's moments from the
/// two positions' series (computed per image and layer, with only the terms they need, and
/// extended to the longest within the set before pairing). Against the same recursion with every
/// moment by the 2-D quadrature at order 96 (which agrees with order 160 to 2.1e-13 on these
/// kernels): within 1e-10 of the largest entry, for flatten and
/// global average pooling, same and valid padding, both parametrizations, at a σ_w where every
/// series is used and one where the largest variances are refused (quadrature for those
/// positions), on images with a duplicate and a zero image. Each entry is also the same bits
/// whatever other images share its call (the sum's length depends on its two positions only).
#[test]
fn conv_series_kernels_equal_high_order_quadrature_kernels() {
    use ntk_dynamics::ntk::conv::{ConvKernelConfig, Padding, Readout, Spatial};
    let image = Spatial {
        height: 5,
        width: 5,
    };
    let d = image.positions() * 2;
    let (n1, n2) = (3, 2);
    let mut x1 = common::gauss(n1 * d, 5);
    let x2 = common::gauss(n2 * d, 6);
    x1[..d].copy_from_slice(&x2[d..2 * d]); // a duplicate
    x1[2 * d..].iter_mut().for_each(|v| *v = 0.0); // a zero image
    for (act, scales) in [
        (Activation::Tanh, [1.5, 4.0]),
        (Activation::Softplus, [1.5, 3.0]),
    ] {
        for readout in [Readout::Flatten, Readout::GlobalAvgPool] {
            for padding in [Padding::Same, Padding::Valid] {
                for param in [Parametrization::Ntk, Parametrization::Standard] {
                    for w_std in scales {
                        let series = ConvKernelConfig {
                            image,
                            channels: 2,
                            conv_channels: 16,
                            filter: 3,
                            padding,
                            depth: 2,
                            readout,
                            activation: act,
                            w_std,
                            b_std: 0.3,
                            bias: true,
                            parametrization: param,
                            method: MomentMethod::Auto(128),
                        };
                        let reference = ConvKernelConfig {
                            method: MomentMethod::Quadrature(96),
                            ..series.clone()
                        };
                        let name = format!("{act:?} {readout:?} {padding:?} {param:?} σ_w {w_std}");
                        let a = series.kernels(&x1, n1, &x2, n2);
                        let b = reference.kernels(&x1, n1, &x2, n2);
                        let (en, et) = (
                            common::rel_max(&a.nngp, &b.nngp),
                            common::rel_max(&a.ntk, &b.ntk),
                        );
                        assert!(en < 1e-10 && et < 1e-10, "{name}: nngp {en:e}, ntk {et:e}");
                        // The same entries from a call with one image less on each side.
                        let c = series.kernels(&x1[d..], n1 - 1, &x2[d..], 1);
                        for i in 0..n1 - 1 {
                            for j in 0..1 {
                                assert_eq!(
                                    (c.nngp[(i, j)].to_bits(), c.ntk[(i, j)].to_bits()),
                                    (
                                        a.nngp[(i + 1, j + 1)].to_bits(),
                                        a.ntk[(i + 1, j + 1)].to_bits()
                                    ),
                                    "{name}: entry ({i}, {j}) depends on its call"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
