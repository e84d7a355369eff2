//! Analytic infinite-width NNGP and NTK of a convolutional network (the CNTK: Novak et al.
//! 2019; Arora et al. 2019), as neural-tangents 0.6.5 computes them for
//! `stax.serial(*[Conv(C, (f, f), padding=P), φ] * depth, Flatten() | GlobalAvgPool(), Dense(1))`
//! with stride 1. Inputs are NHWC images, each flattened row-major in `(h, w, c)` order.
//!
//! For a pair of images (a, b) the state is a covariance per pair of spatial positions
//! `(p, p')`. The input covariance is `K0(p, p') = Σ_c a[p, c]·b[p', c] / C` (normalised by the
//! channel count, as `x·x'/d` for a dense input). With `ntk` parametrization a convolution maps
//! `K ↦ W²·(1/f²) Σ_δ K(p + δ, p' + δ) + b²` (the sum over the f² filter offsets; a zero-padded
//! position contributes 0 but still counts in f²) and `Θ ↦ K_new + W²·(1/f²) Σ_δ Θ(p + δ, p' + δ)`;
//! the nonlinearity maps `K(p, p') ↦ E[φ(u)φ(v)]` and `Θ(p, p') ↦ Θ(p, p')·E[φ'(u)φ'(v)]` for
//! `(u, v) ~ N(0, [[q_a(p), K], [K, q_b(p')]])`, `q_a(p)` being image a's own variance at p.
//! `Flatten` keeps the mean of the same-position entries `(1/P) Σ_p K(p, p)` and only needs
//! those (memory per pair ∝ P = H·W); `GlobalAvgPool` keeps the mean of all entries
//! `(1/P²) Σ_{p,p'} K(p, p')` and needs all position pairs (∝ P²). The final dense layer is the
//! MLP's. Everything in f64; `q` is taken from the same arithmetic as `K(x, x)`'s diagonal.

use rayon::prelude::*;

pub use crate::model::layers::{Padding, Readout, Spatial};
use crate::model::{Activation, Architecture, NetworkConfig, Parametrization};
use crate::ntk::analytic::{pair_moments, position_series, AnalyticKernels, MomentMethod};
use crate::ntk::hermite::Series;

/// A convolutional architecture, as far as its analytic kernels depend on it.
/// Position pairs of one kernel entry between two looks at the stop request.
const STOP_LOOK_EVERY: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct ConvKernelConfig {
    /// Input image size.
    pub image: Spatial,
    /// Input channels.
    pub channels: usize,
    /// Channels of every convolution (enters only the `standard` NTK).
    pub conv_channels: usize,
    /// Square filter size f.
    pub filter: usize,
    /// Padding of every convolution.
    pub padding: Padding,
    /// Convolutions, each followed by the activation.
    pub depth: usize,
    /// Readout before the dense output layer.
    pub readout: Readout,
    /// Activation.
    pub activation: Activation,
    /// σ_w.
    pub w_std: f64,
    /// σ_b.
    pub b_std: f64,
    /// Whether the layers have biases.
    pub bias: bool,
    /// `ntk` or `standard` (`mup` is not defined for convolutions here).
    pub parametrization: Parametrization,
    /// Moment evaluation.
    pub method: MomentMethod,
}

/// One image's own state after each convolution l = 1..=depth: the pre-activation variances
/// `q_l(p)` and, for an activation without a closed form, each position's Hermite series of φ
/// and φ′ at that variance ([`Series`]; `None` where the quadrature is used).
#[derive(Debug, Clone)]
struct ImageState {
    q: Vec<Vec<f64>>,
    series: Vec<Vec<Option<Series>>>,
}

/// The taps of one convolution: for every output position and filter tap (row-major), the input
/// position it reads, or −1 where it reads zero padding.
#[derive(Debug, Clone)]
struct Taps {
    inputs: usize,
    outputs: usize,
    index: Vec<i32>,
}

impl ConvKernelConfig {
    /// The feature-map size after each convolution, or `None` when a `valid` convolution
    /// would leave no positions.
    pub fn spatial_sizes(&self) -> Option<Vec<Spatial>> {
        self.padding
            .spatial_sizes(self.image, self.filter, self.depth)
    }

    /// Number of input features of one image, `H·W·C`.
    pub fn input_dim(&self) -> usize {
        self.image.positions() * self.channels
    }

    fn taps(&self) -> Vec<Taps> {
        let sizes = self
            .spatial_sizes()
            .expect("a valid convolution leaves positions (checked by the caller)");
        let start = -(self.padding.zeros(self.filter).0 as isize);
        let f = self.filter as isize;
        sizes
            .windows(2)
            .map(|w| {
                let (input, output) = (w[0], w[1]);
                let (hi, wi) = (input.height as isize, input.width as isize);
                let mut index = Vec::with_capacity(output.positions() * self.filter * self.filter);
                for o in 0..output.positions() {
                    let (oy, ox) = ((o / output.width) as isize, (o % output.width) as isize);
                    for dy in 0..f {
                        for dx in 0..f {
                            let (y, x) = (oy + start + dy, ox + start + dx);
                            index.push(if (0..hi).contains(&y) && (0..wi).contains(&x) {
                                (y * wi + x) as i32
                            } else {
                                -1
                            });
                        }
                    }
                }
                Taps {
                    inputs: input.positions(),
                    outputs: output.positions(),
                    index,
                }
            })
            .collect()
    }

    fn bias_var(&self) -> f64 {
        if self.bias {
            self.b_std * self.b_std
        } else {
            0.0
        }
    }

    /// Whether every position pair is needed (global average pooling) or only equal positions.
    fn full(&self) -> bool {
        self.readout == Readout::GlobalAvgPool
    }

    /// `Σ_δ s(p + δ, p' + δ)` over the filter taps inside the input (zero padding), for every
    /// output position pair (`full`) or every output position (`p = p'`), into `out`.
    fn conv_sum(&self, taps: &Taps, s: &[f64], full: bool, out: &mut Vec<f64>) {
        let ff = self.filter * self.filter;
        let (pin, pout) = (taps.inputs, taps.outputs);
        out.clear();
        if full {
            for o1 in 0..pout {
                let t1 = &taps.index[o1 * ff..(o1 + 1) * ff];
                for o2 in 0..pout {
                    let t2 = &taps.index[o2 * ff..(o2 + 1) * ff];
                    let mut acc = 0.0;
                    for (&i1, &i2) in t1.iter().zip(t2) {
                        if i1 >= 0 && i2 >= 0 {
                            acc += s[i1 as usize * pin + i2 as usize];
                        }
                    }
                    out.push(acc);
                }
            }
        } else {
            for t in taps.index.chunks_exact(ff) {
                let mut acc = 0.0;
                for &i in t {
                    if i >= 0 {
                        acc += s[i as usize];
                    }
                }
                out.push(acc);
            }
        }
    }

    /// The input covariance `Σ_c a[p, c]·b[p', c] / C` (all pairs or equal positions).
    fn input_covariance(&self, a: &[f64], b: &[f64], full: bool) -> Vec<f64> {
        let c = self.channels;
        let p = self.image.positions();
        let cov = |i: usize, j: usize| -> f64 {
            let mut s = 0.0;
            for k in 0..c {
                s += a[i * c + k] * b[j * c + k];
            }
            s / c as f64
        };
        if full {
            (0..p * p).map(|idx| cov(idx / p, idx % p)).collect()
        } else {
            (0..p).map(|i| cov(i, i)).collect()
        }
    }

    /// One image's state: the pre-activation variances `q_l(p)` after each convolution
    /// l = 1..=depth (the diagonal of its own covariance, with the same arithmetic) and their
    /// series.
    /// `None` when `stop` returned true (looked at before each position's series: a refused
    /// one takes about a millisecond).
    fn variances(
        &self,
        taps: &[Taps],
        x: &[f64],
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<ImageState> {
        let w2 = self.w_std * self.w_std;
        let b2 = self.bias_var();
        let ff = (self.filter * self.filter) as f64;
        let mut e = self.input_covariance(x, x, false);
        let mut state = ImageState {
            q: Vec::with_capacity(self.depth),
            series: Vec::with_capacity(self.depth),
        };
        let mut sums = Vec::new();
        for g in taps {
            self.conv_sum(g, &e, false, &mut sums);
            let q: Vec<f64> = sums.iter().map(|&s| w2 * (s / ff) + b2).collect();
            let series: Vec<Option<Series>> = q
                .iter()
                .map(|&v| (!stop()).then(|| position_series(self.activation, self.method, v)))
                .collect::<Option<_>>()?;
            e = q
                .iter()
                .zip(&series)
                .map(|(&v, s)| {
                    pair_moments(
                        self.activation,
                        self.method,
                        (v, v, v),
                        (s.as_ref(), s.as_ref()),
                    )
                    .0
                })
                .collect();
            state.q.push(q);
            state.series.push(series);
        }
        Some(state)
    }

    /// The states of `n` images (rows of `x`), `None` when stopped.
    fn states(
        &self,
        taps: &[Taps],
        x: &[f64],
        n: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<ImageState>> {
        let d = self.input_dim();
        (0..n)
            .into_par_iter()
            .map(|i| self.variances(taps, &x[i * d..(i + 1) * d], stop))
            .collect()
    }

    /// `(nngp, ntk)` of one pair of images, given their variances; `None` when `stop` is set
    /// (looked at every [`STOP_LOOK_EVERY`] position pairs: one pair of a quadrature kernel
    /// with global average pooling can take minutes).
    fn entry(
        &self,
        taps: &[Taps],
        (a, b): (&[f64], &[f64]),
        (sa, sb): (&ImageState, &ImageState),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<(f64, f64)> {
        // Scalar arithmetic and libm calls below (see `clear_avx_upper_state`).
        crate::linalg::clear_avx_upper_state();
        let full = self.full();
        let w2 = self.w_std * self.w_std;
        let b2 = self.bias_var();
        let bias_one = if self.bias { 1.0 } else { 0.0 };
        let ff = (self.filter * self.filter) as f64;
        let n = self.conv_channels as f64;
        // E[φφ] (the input covariance before the first convolution) and Θ·E[φ'φ'] (0 there).
        let mut e = self.input_covariance(a, b, full);
        let mut t = vec![0.0; e.len()];
        let mut fan_in = self.channels as f64;
        let (mut ke, mut kt) = (Vec::new(), Vec::new());
        for (l, g) in taps.iter().enumerate() {
            self.conv_sum(g, &e, full, &mut ke);
            if l == 0 {
                // Θ is 0 below the first convolution.
                kt.clear();
                kt.resize(ke.len(), 0.0);
            } else {
                self.conv_sum(g, &t, full, &mut kt);
            }
            let pout = g.outputs;
            e.clear();
            let mut t_new = Vec::with_capacity(ke.len());
            for (idx, (&se, &st)) in ke.iter().zip(&kt).enumerate() {
                if idx % STOP_LOOK_EVERY == 0 && stop() {
                    return None;
                }
                let k = w2 * (se / ff) + b2;
                let theta = match self.parametrization {
                    Parametrization::Ntk => k + w2 * (st / ff),
                    // neural-tangents' standard Conv: Θ ← fan_in·K_in + W²·Θ_in + 1 with the
                    // fan-in C_in·f² and K_in, Θ_in averaged over the filter taps.
                    Parametrization::Standard | Parametrization::Mup => {
                        fan_in * ff * (se / ff) + w2 * (st / ff) + bias_one
                    }
                };
                let (pa, pb) = if full {
                    (idx / pout, idx % pout)
                } else {
                    (idx, idx)
                };
                let (m, kdot) = pair_moments(
                    self.activation,
                    self.method,
                    (sa.q[l][pa], sb.q[l][pb], k),
                    (sa.series[l][pa].as_ref(), sb.series[l][pb].as_ref()),
                );
                e.push(m);
                t_new.push(theta * kdot);
            }
            t = t_new;
            fan_in = n;
        }
        // Readout: the mean over equal positions (flatten) or over all pairs (pooling), the
        // latter summed as K(p, p) + (K(p, p') + K(p', p)) over p ≤ p' so that swapping the two
        // images (which transposes the state) gives the same bits.
        let p_last = taps.last().map_or(self.image.positions(), |t| t.outputs);
        let mean = |v: &[f64]| -> f64 {
            if !full {
                return v.iter().sum::<f64>() / v.len() as f64;
            }
            let mut s = 0.0;
            for i in 0..p_last {
                s += v[i * p_last + i];
                for j in i + 1..p_last {
                    s += v[i * p_last + j] + v[j * p_last + i];
                }
            }
            s / v.len() as f64
        };
        let (re, rt) = (mean(&e), mean(&t));
        let k = w2 * re + b2;
        let theta = match self.parametrization {
            Parametrization::Ntk => k + w2 * rt,
            Parametrization::Standard | Parametrization::Mup => {
                let positions = if full { 1.0 } else { p_last as f64 };
                positions * fan_in * re + w2 * rt + bias_one
            }
        };
        Some((k, theta))
    }

    /// The Gaussian-moment arguments `(q, q', k)` of the first convolution for two images, one
    /// per position pair the kernel entry evaluates (every pair with global average pooling,
    /// equal positions with flatten): a sample of what an entry costs, for the time estimate.
    pub fn first_layer_moment_arguments(&self, a: &[f64], b: &[f64]) -> Vec<(f64, f64, f64)> {
        let taps = self.taps();
        let Some(g) = taps.first() else {
            return Vec::new();
        };
        let full = self.full();
        let w2 = self.w_std * self.w_std;
        let b2 = self.bias_var();
        let ff = (self.filter * self.filter) as f64;
        let layer = |cov: Vec<f64>, full: bool| -> Vec<f64> {
            let mut sums = Vec::new();
            self.conv_sum(g, &cov, full, &mut sums);
            sums.iter().map(|&s| w2 * (s / ff) + b2).collect()
        };
        let qa = layer(self.input_covariance(a, a, false), false);
        let qb = layer(self.input_covariance(b, b, false), false);
        let k = layer(self.input_covariance(a, b, full), full);
        let pout = g.outputs;
        k.iter()
            .enumerate()
            .map(|(idx, &k)| {
                let (pa, pb) = if full {
                    (idx / pout, idx % pout)
                } else {
                    (idx, idx)
                };
                (qa[pa], qb[pb], k)
            })
            .collect()
    }

    /// The analytic kernels of a conv net built from `arch` (None for an MLP).
    pub fn of_network(arch: &NetworkConfig, method: MomentMethod) -> Option<ConvKernelConfig> {
        let Architecture::Conv(c) = arch.model.architecture else {
            return None;
        };
        Some(ConvKernelConfig {
            image: c.image.spatial(),
            channels: c.image.channels,
            conv_channels: arch.model.width,
            filter: c.filter,
            padding: c.padding,
            depth: arch.model.depth,
            readout: c.readout,
            activation: arch.model.activation,
            w_std: arch.model.w_std,
            b_std: arch.model.b_std,
            bias: arch.model.bias,
            parametrization: arch.model.parametrization,
            method,
        })
    }

    /// NNGP and NTK between the images in the rows of `x1` (`n1 × H·W·C`) and `x2`.
    pub fn kernels(&self, x1: &[f64], n1: usize, x2: &[f64], n2: usize) -> AnalyticKernels {
        self.kernels_until(x1, n1, x2, n2, &|| false)
            .expect("never stopped")
    }

    /// [`ConvKernelConfig::kernels`], checking `stop` before every pair; `None` when stopped.
    pub fn kernels_until(
        &self,
        x1: &[f64],
        n1: usize,
        x2: &[f64],
        n2: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<AnalyticKernels> {
        let d = self.input_dim();
        assert_eq!(x1.len(), n1 * d);
        assert_eq!(x2.len(), n2 * d);
        let taps = self.taps();
        // The same images on both sides: the kernel is symmetric bit for bit (the state of
        // (b, a) is the transpose of that of (a, b)), so only j ≥ i is computed.
        let same = std::ptr::eq(x1, x2);
        let q1 = self.states(&taps, x1, n1, stop)?;
        let q2 = if same {
            Vec::new()
        } else {
            self.states(&taps, x2, n2, stop)?
        };
        let q2 = if same { &q1 } else { &q2 };
        crate::ntk::pairwise(n1, n2, same, |i, j| {
            self.entry(
                &taps,
                (&x1[i * d..(i + 1) * d], &x2[j * d..(j + 1) * d]),
                (&q1[i], &q2[j]),
                stop,
            )
        })
    }
}
