//! Kernel figures of the network at kernel checkpoints: the drift of its empirical NTK on the
//! probe set, the sharpness (λ_max of the full training kernel), kernel–target alignment and
//! the parameter changes; with `outputs.save_kernel_checkpoints`, Θ_t itself.

use faer::Mat;

use crate::linalg;
use crate::ntk::empirical::{backprop_signals, ntk_from_signals, BackpropSignals};
use crate::ntk::KernelForm;
use crate::record::{Checkpoint, KernelCheckpoint, NamedMatrix};
use crate::Result;

use super::super::tracks::Tracks;
use super::{Measurer, Now};

/// Measures the kernel figures every `logging.kernel_every` steps and at the last checkpoint.
pub struct KernelFigures {
    /// The probe-set kernel at the last kernel checkpoint.
    pub last_probe: Mat<f64>,
    /// With `outputs.save_kernel_checkpoints`: Θ_t at every kernel checkpoint.
    pub saved: Vec<NamedMatrix>,
    /// Spectral norms of the initial weight matrices (computed at the first kernel checkpoint
    /// after step 0).
    spectral0: Option<Vec<f64>>,
}

impl KernelFigures {
    /// Before the first checkpoint: the last probe kernel is Θ0's.
    pub fn new(tracks: &Tracks<'_>) -> Self {
        KernelFigures {
            last_probe: tracks.init.theta0_probe.clone(),
            saved: Vec::new(),
            spectral0: None,
        }
    }
}

impl Measurer for KernelFigures {
    fn measure(&mut self, now: &Now<'_, '_>, ck: &mut Checkpoint) -> Result<()> {
        let tracks = now.tracks;
        if !(now.step.is_multiple_of(tracks.exp.logging.kernel_every) || now.last) {
            return Ok(());
        }
        let (kc, probe) = if now.step == 0 {
            initial_kernel_checkpoint(tracks)?
        } else {
            self.kernel_checkpoint(tracks)?
        };
        self.last_probe = probe;
        ck.kernel = Some(kc);
        if tracks.exp.outputs.save_kernel_checkpoints {
            self.saved.extend(checkpoint_kernels(tracks, now.step)?);
        }
        Ok(())
    }
}

impl KernelFigures {
    /// Kernel figures of the network now: drift of its output-averaged empirical NTK on the
    /// probe set (the first `probe_size` training points) against Θ0 there, λ_max of its full
    /// training kernel (the sharpness), and the parameter changes; also that probe kernel.
    fn kernel_checkpoint(&mut self, tracks: &Tracks<'_>) -> Result<(KernelCheckpoint, Mat<f64>)> {
        let (net, init, exp, data) = (&tracks.network.net, tracks.init, tracks.exp, tracks.data);
        let (s, lambda_full, n_sharp) = probe_signals_and_sharpness(tracks)?;
        let ntk = ntk_from_signals(net, &s, &s, KernelForm::Trace);
        let total = ntk.total();
        if self.spectral0.is_none() {
            self.spectral0 = Some(init.net0.weight_spectral_norms()?);
        }
        let spectral0 = self.spectral0.as_deref().unwrap_or_default();
        let change = net.change_from(&init.net0, spectral0)?;
        let probe0 = init.theta0_probe.as_ref();
        let kc = KernelCheckpoint {
            ntk_rel_drift: linalg::rel_frobenius(total.as_ref(), probe0),
            ntk_kernel_distance: linalg::kernel_distance(total.as_ref(), probe0),
            ntk_lambda_max: linalg::lambda_max(total.as_ref())?,
            ntk_lambda_max_full: lambda_full,
            sharpness_ratio: super::super::sharpness_ratio(
                exp,
                tracks.rates.lr,
                lambda_full,
                n_sharp * data.n_outputs,
            ),
            ntk_rel_drift_per_layer: ntk
                .per_layer
                .iter()
                .zip(&init.probe_layers)
                .map(|(a, b)| linalg::rel_frobenius(a.as_ref(), b.as_ref()))
                .collect(),
            param_rel_change: change.total,
            param_rel_change_per_layer: change.per_layer,
            weight_rel_change_per_layer: change.weight,
            bias_rel_change_per_layer: change.bias,
            weight_spectral_change_per_layer: change.weight_spectral,
            ntk_target_alignment: target_alignment(tracks, total.as_ref()),
            ntk_cka_init: linalg::centered_alignment(total.as_ref(), probe0),
        };
        Ok((kc, total))
    }
}

/// The network's backprop signals on the probe set and λ_max of its full training kernel (on
/// the sharpness points, whose number it returns too): from all points' signals when the
/// explicit kernel is small enough, else by matrix-free products.
fn probe_signals_and_sharpness(tracks: &Tracks<'_>) -> Result<(BackpropSignals, f64, usize)> {
    let (net, exp, data) = (&tracks.network.net, tracks.exp, tracks.data);
    let d = net.config.input_dim;
    let n = data.n_train();
    let p = exp.kernel.probe_size.min(n);
    let k = data.n_outputs;
    let (x_sharp, n_sharp) = super::super::sharpness_sample(exp, data);
    if tracks.init.stored.is_some() {
        let s = backprop_signals(net, &data.x_train[..p * d], p)?;
        let lambda = super::super::lambda_max_full_matrix_free(net, x_sharp, n_sharp)?;
        Ok((s, lambda, n_sharp))
    } else if n * k <= super::super::EXPLICIT_FULL_MAX_ROWS {
        let s_all = backprop_signals(net, &data.x_train, n)?;
        let lambda = super::super::lambda_max_full(net, &s_all, &data.x_train)?;
        Ok((s_all.head(p), lambda, n_sharp))
    } else {
        let s = backprop_signals(net, &data.x_train[..p * d], p)?;
        let lambda = super::super::lambda_max_full_matrix_free(net, &data.x_train, n)?;
        Ok((s, lambda, n_sharp))
    }
}

/// The kernel figures at θ0, from what is already known: no drift or parameter change, the
/// probe kernel's and the full kernel's λ_max (the latter is the one η_c comes from).
fn initial_kernel_checkpoint(tracks: &Tracks<'_>) -> Result<(KernelCheckpoint, Mat<f64>)> {
    let net = &tracks.network.net;
    let probe0 = &tracks.init.theta0_probe;
    let l = net.shapes.len();
    let zeros = vec![0.0; l];
    let bias = if net.config.model.bias {
        zeros.clone()
    } else {
        vec![f64::NAN; l]
    };
    let n_targets =
        super::super::sharpness_sample(tracks.exp, tracks.data).1 * tracks.data.n_outputs;
    let rates = tracks.rates;
    let kc = KernelCheckpoint {
        ntk_rel_drift: 0.0,
        ntk_kernel_distance: 0.0,
        ntk_lambda_max: linalg::lambda_max(probe0.as_ref())?,
        ntk_lambda_max_full: rates.lambda_max0,
        sharpness_ratio: super::super::sharpness_ratio(
            tracks.exp,
            rates.lr,
            rates.lambda_max0,
            n_targets,
        ),
        ntk_rel_drift_per_layer: zeros.clone(),
        param_rel_change: 0.0,
        param_rel_change_per_layer: zeros.clone(),
        weight_rel_change_per_layer: zeros.clone(),
        bias_rel_change_per_layer: bias,
        weight_spectral_change_per_layer: zeros,
        ntk_target_alignment: target_alignment(tracks, probe0.as_ref()),
        ntk_cka_init: linalg::centered_alignment(probe0.as_ref(), probe0.as_ref()),
    };
    Ok((kc, probe0.clone()))
}

/// Θ_t of the network now, train × train and test × train in the run's form, under their
/// `.npy` file stems (`outputs.save_kernel_checkpoints`).
fn checkpoint_kernels(tracks: &Tracks<'_>, step: u64) -> Result<Vec<NamedMatrix>> {
    let (net, data, form) = (&tracks.network.net, tracks.data, tracks.exp.kernel.form);
    let pack = |m: Mat<f64>| (linalg::mat_to_rows(m.as_ref()), [m.nrows(), m.ncols()]);
    let s_train = backprop_signals(net, &data.x_train, data.n_train())?;
    let train = ntk_from_signals(net, &s_train, &s_train, form).total();
    let mut out = vec![(format!("empirical_ntk_step{step}"), pack(train))];
    if data.n_test() > 0 {
        let s_test = backprop_signals(net, &data.x_test, data.n_test())?;
        let test = ntk_from_signals(net, &s_test, &s_train, form).total();
        out.push((format!("empirical_ntk_test_train_step{step}"), pack(test)));
    }
    Ok(out)
}

/// Centred kernel–target alignment of a probe-set kernel: with `y yᵀ` of the probe points'
/// training targets (Cortes et al. 2012; as tracked during training by Baratin et al. 2021).
fn target_alignment(tracks: &Tracks<'_>, probe_kernel: faer::MatRef<'_, f64>) -> f64 {
    let (p, k) = (probe_kernel.nrows(), tracks.data.n_outputs);
    let y = linalg::target_kernel(&tracks.data.y_train[..p * k], p, k);
    linalg::centered_alignment(probe_kernel, y.as_ref())
}
