//! Input sensitivity at sensitivity checkpoints: the input-Jacobian norms of the network and
//! of its linearized twin, and their changes since initialisation (see [`sensitivity`]).

use crate::dynamics::sensitivity;
use crate::linalg;
use crate::model::LayerParams;
use crate::ntk::KernelForm;
use crate::record::{Checkpoint, InputSensitivity};
use crate::Result;

use super::super::tracks::{Tracks, Twin};
use super::{Measurer, Now};

/// Measures input sensitivity every `logging.sensitivity_every` steps and at the last
/// checkpoint of a run with steps (a run without steps has no curve to show).
#[derive(Default)]
pub struct Sensitivity {
    /// Input gradients of f0 at the sensitivity points (computed at the first sensitivity
    /// checkpoint, which is step 0).
    g0: Option<sensitivity::InputGradients>,
}

impl Measurer for Sensitivity {
    fn measure(&mut self, now: &Now<'_, '_>, ck: &mut Checkpoint) -> Result<()> {
        let exp = now.tracks.exp;
        let due = now.step.is_multiple_of(exp.logging.sensitivity_every) || now.last;
        if exp.training.steps > 0 && due {
            ck.sensitivity = Some(self.input_sensitivity(now.tracks, now.step)?);
        }
        Ok(())
    }
}

impl Sensitivity {
    /// The figures at `step`.
    fn input_sensitivity(&mut self, tracks: &Tracks<'_>, step: u64) -> Result<InputSensitivity> {
        let init = tracks.init;
        let (n, x) = (init.sens_n, &init.sens_x);
        if self.g0.is_none() {
            self.g0 = Some(sensitivity::input_gradients(&init.net0, x, n)?);
        }
        let g0 = self.g0.as_ref().expect("set above");
        let g = if step == 0 {
            g0.clone()
        } else {
            sensitivity::input_gradients(&tracks.network.net, x, n)?
        };
        let norm = |g: &[Vec<f64>]| sensitivity::mean_jacobian_norm(g, n);
        let network_norm = norm(&g);
        let network_change = norm(&sensitivity::difference(&g, g0));
        let (linearized_norm, linearized_change) = match twin_displacement(tracks, step)? {
            // The twin's input Jacobian is not in parameter correspondence.
            TwinDisplacement::Unknown => (f64::NAN, f64::NAN),
            // θ_lin = θ0 (before any step): the twin's input Jacobian is f0's.
            TwinDisplacement::Zero => (norm(g0), 0.0),
            TwinDisplacement::Delta(delta) => {
                let change =
                    sensitivity::linearized_input_gradient_change(&init.net0, &delta, x, n)?;
                (norm(&sensitivity::sum(g0, &change)), norm(&change))
            }
        };
        Ok(InputSensitivity {
            network_norm,
            linearized_norm,
            network_change,
            linearized_change,
        })
    }
}

/// The twin's parameter displacement δ = θ_lin − θ0, as far as it is known.
enum TwinDisplacement {
    /// The function-space twin of an output-averaged kernel with K > 1: β is not in parameter
    /// correspondence.
    Unknown,
    /// δ = 0.
    Zero,
    /// δ, per layer.
    Delta(Vec<LayerParams>),
}

/// δ of the twin at `step`: the parameter-space twin carries it; the function-space twin's is
/// `D·Jᵀβ` for the full kernel (or a single output).
fn twin_displacement(tracks: &Tracks<'_>, step: u64) -> Result<TwinDisplacement> {
    let (exp, data) = (tracks.exp, tracks.data);
    Ok(match &tracks.twin {
        Twin::Parameter(_) if step == 0 => TwinDisplacement::Zero,
        Twin::Parameter(t) => TwinDisplacement::Delta(t.delta().to_vec()),
        Twin::Function(t) if exp.kernel.form == KernelForm::Full || data.n_outputs == 1 => {
            let beta = linalg::mat_to_rows(t.coefficients().as_ref());
            if beta.iter().all(|&b| b == 0.0) {
                TwinDisplacement::Zero
            } else {
                TwinDisplacement::Delta(sensitivity::displacement(
                    &tracks.init.net0,
                    &data.x_train,
                    data.n_train(),
                    &beta,
                )?)
            }
        }
        Twin::Function(_) => TwinDisplacement::Unknown,
    })
}
