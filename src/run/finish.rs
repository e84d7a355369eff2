//! The end of a run: from the tracks after training, what the measurers kept and the loop's
//! checkpoints, the final outputs, the final empirical kernel and the spectra, the kernel
//! tracks' t = ∞ solutions, and the [`RunRecord`].

use faer::Mat;

use crate::linalg;
use crate::metrics;
use crate::metrics::ngram::NgramBaseline;
use crate::ntk::empirical::{backprop_signals, ntk_from_signals, trace_of_full};
use crate::ntk::KernelForm;
use crate::record::{ContextBits, KernelMatrices, KernelSolutionSummary, RunRecord, TrackOutputs};
use crate::Result;

use super::lockstep::Trained;
use super::measure::{RunMeasurers, Slices};
use super::samples;
use super::tracks::Tracks;

/// Highest n-gram order of the text baselines.
pub const NGRAM_MAX_ORDER: usize = 5;

/// Spectra of the training kernels and the initial empirical kernel's distance from the
/// analytic one.
struct Spectra {
    init_vs_analytic: f64,
    init: Vec<f64>,
    fin: Vec<f64>,
    analytic: Vec<f64>,
}

fn descending_eigenvalues(m: &Mat<f64>) -> Result<Vec<f64>> {
    let mut v = linalg::sym_eigenvalues(m.as_ref())?;
    v.reverse();
    Ok(v)
}

/// A run after training: its tracks, what was measured of them, and the loop's log.
pub struct Ended<'a> {
    /// The tracks at the last step.
    pub tracks: Tracks<'a>,
    /// The measurers' state.
    pub measured: RunMeasurers,
    /// The loop's log.
    pub trained: Trained,
}

impl Ended<'_> {
    /// Text runs: the n-gram baselines, and `−log₂ p(target)` on every test context for each
    /// track (early stopped, at its fitted temperature) and each n-gram order.
    fn text_evaluation(&self) -> (Vec<NgramBaseline>, Vec<ContextBits>) {
        let (data, k) = (self.tracks.data, self.tracks.data.n_outputs);
        let Some(text) = &data.text else {
            return (Vec::new(), Vec::new());
        };
        let mut bits: Vec<ContextBits> = self
            .measured
            .classification
            .stopped_test
            .iter()
            .map(|s| {
                let scaled: Vec<f64> = s.test.iter().map(|v| v / s.temperature).collect();
                ContextBits {
                    model: s.track.name().to_string(),
                    context_chars: text.context,
                    bits: crate::dynamics::cross_entropy_per_row(&scaled, &data.y_test, k)
                        .into_iter()
                        .map(|nats| nats / std::f64::consts::LN_2)
                        .collect(),
                }
            })
            .collect();
        let (baselines, per_order) = crate::metrics::ngram::evaluate(
            &text.train_histories,
            &text.test_histories,
            &text.vocabulary,
            NGRAM_MAX_ORDER,
        );
        bits.extend(per_order.into_iter().enumerate().map(|(i, b)| ContextBits {
            model: format!("ngram{}", i + 1),
            context_chars: i,
            bits: b,
        }));
        (baselines, bits)
    }

    /// Final kernels, spectra and outputs: the record of the run.
    pub fn into_record(mut self) -> Result<RunRecord> {
        let (exp, data, init) = (self.tracks.exp, self.tracks.data, self.tracks.init);
        let status = self.trained.status;
        let n_train = data.n_train();
        let form = exp.kernel.form;
        let net = &self.tracks.network.net;
        let preds = &self.trained.last_predictions;
        let sl = Slices::of(data);
        let outputs: Vec<TrackOutputs> = preds
            .iter()
            .map(|(t, v)| TrackOutputs {
                track: t,
                train: v[sl.train.clone()].to_vec(),
                val: v[sl.val.clone()].to_vec(),
                test: v[sl.test.clone()].to_vec(),
                diverged_at_step: self.tracks.diverged.get(t).copied().flatten(),
            })
            .collect();
        let (spectra, mut kernels) = match &init.stored {
            Some(stored) => (self.probe_spectra(stored)?, KernelMatrices::default()),
            None => self.train_spectra()?,
        };
        kernels.checkpoints = std::mem::take(&mut self.measured.kernel.saved);
        let samples = match &data.text {
            Some(info) => samples::generate(exp, info, init, &self.tracks)?,
            None => Vec::new(),
        };
        let (ngram_baselines, context_bits) = self.text_evaluation();
        Ok(RunRecord {
            iterative: init.stored.as_ref().map(|st| crate::record::IterativeRun {
                probe_points: exp.kernel.probe_size.min(n_train),
                sharpness_points: super::sharpness_sample(exp, data).1,
                comparison_points: st.empirical_vs_analytic.1,
                store_bytes: st.plan.bytes(),
                store_on_disk: st.plan.dir.is_some(),
            }),
            name: exp.name.clone(),
            kernel_start: exp.kernel.initial_outputs,
            center_outputs: exp.training.center_outputs,
            twin_space: self.tracks.twin.space(),
            n_train_all: self.tracks.train.n_train(),
            seed: exp.seed,
            config_toml: exp.resolved_toml(),
            status,
            n_layers: net.shapes.len(),
            n_params: net.config.n_params(),
            network: net.config.describe(),
            data: data.clone(),
            outputs,
            kernel_solutions: self.kernel_solutions(),
            learning_rate: self.tracks.rates.lr,
            critical_learning_rate: self.tracks.rates.critical_lr,
            init_ntk_vs_analytic: spectra.init_vs_analytic,
            spectrum_init: spectra.init,
            spectrum_final: spectra.fin,
            spectrum_analytic: spectra.analytic,
            probe_ntk_init: linalg::mat_to_rows(init.theta0_probe.as_ref()),
            probe_ntk_final: linalg::mat_to_rows(self.measured.kernel.last_probe.as_ref()),
            probe_size: exp.kernel.probe_size.min(n_train),
            kernels,
            prediction_steps: self.prediction_steps_record(),
            parameters: if exp.outputs.save_parameters {
                Some([
                    init.net0.named_parameters()?,
                    self.tracks.network.net.named_parameters()?,
                ])
            } else {
                None
            },
            timings: Vec::new(),
            kernel_form: form,
            loss: exp.training.loss,
            samples,
            ensemble: None,
            ngram_baselines,
            context_bits,
            tracks: self.tracks.order,
            pairs: self.tracks.pairs,
            checkpoints: self.trained.checkpoints,
        })
    }

    /// Spectra of the output-averaged training kernels (empirical at θ0 and at the end, analytic)
    /// and the initial empirical kernel's distance from the analytic one; with the kernels
    /// written as `.npy` files when asked for. The final kernel is computed in the form and rows
    /// a figure uses; without a step it is Θ0.
    fn train_spectra(&self) -> Result<(Spectra, KernelMatrices)> {
        let (exp, data, init) = (self.tracks.exp, self.tracks.data, self.tracks.init);
        let (n_train, k) = (data.n_train(), data.n_outputs);
        let form = exp.kernel.form;
        let net = &self.tracks.network.net;
        let trained = self.trained.checkpoints.last().is_some_and(|c| c.step > 0);
        let saved_form = if exp.outputs.save_kernels {
            form
        } else {
            KernelForm::Trace
        };
        let theta_final = if trained {
            let s_final = backprop_signals(net, &data.x_train, n_train)?;
            ntk_from_signals(net, &s_final, &s_final, saved_form).total()
        } else {
            let rows = n_train * form.rows_per_point(k);
            let t0 = linalg::block(init.theta0.as_ref(), 0, rows, 0, rows);
            match (form, saved_form) {
                (KernelForm::Full, KernelForm::Trace) => trace_of_full(&t0, k),
                _ => t0,
            }
        };
        let theta_final_trace = match saved_form {
            KernelForm::Full => trace_of_full(&theta_final, k),
            KernelForm::Trace => theta_final.clone(),
        };
        let analytic_train = linalg::block(init.analytic_ntk.as_ref(), 0, n_train, 0, n_train);
        let spectrum_init = descending_eigenvalues(&init.theta0_trace_train)?;
        // Untrained, the final kernel is Θ0's block itself: its spectrum is the initial one.
        let spectrum_final = if trained {
            descending_eigenvalues(&theta_final_trace)?
        } else {
            spectrum_init.clone()
        };
        let spectra = Spectra {
            init_vs_analytic: linalg::rel_frobenius(
                init.theta0_trace_train.as_ref(),
                analytic_train.as_ref(),
            ),
            analytic: descending_eigenvalues(&analytic_train)?,
            init: spectrum_init,
            fin: spectrum_final,
        };
        let kernels = if exp.outputs.save_kernels {
            self.kernel_matrices(&analytic_train, theta_final)?
        } else {
            KernelMatrices::default()
        };
        Ok((spectra, kernels))
    }

    /// [`Ended::train_spectra`] of an iterative run: on the probe set (the first
    /// `kernel.probe_size` training points), whose kernels are dense; the distance between the
    /// empirical and analytic kernels from the stores when both exist.
    fn probe_spectra(&self, stored: &super::initial::Stored) -> Result<Spectra> {
        let init = self.tracks.init;
        let trained = self.trained.checkpoints.last().is_some_and(|c| c.step > 0);
        let spectrum_init = descending_eigenvalues(&init.theta0_probe)?;
        Ok(Spectra {
            init_vs_analytic: stored.empirical_vs_analytic.0,
            analytic: if stored.probe_analytic_ntk.nrows() > 0 {
                descending_eigenvalues(&stored.probe_analytic_ntk)?
            } else {
                Vec::new()
            },
            fin: if trained {
                descending_eigenvalues(&self.measured.kernel.last_probe)?
            } else {
                spectrum_init.clone()
            },
            init: spectrum_init,
        })
    }

    /// The kernel tracks' closed-form figures and t = ∞ test predictions.
    fn kernel_solutions(&self) -> Vec<KernelSolutionSummary> {
        let (exp, data) = (self.tracks.exp, self.tracks.data);
        let sl = Slices::of(data);
        let f0_test = &self.tracks.init.f0_all[sl.test.clone()];
        // The predictor's held-out rows are the validation then the test points.
        let test_rows = (sl.test.start - sl.train.end)..(sl.test.end - sl.train.end);
        self.tracks
            .predictors
            .iter()
            .map(|(track, pr)| {
                let (_, test) = pr.predict_infinite();
                let mut test = test
                    .map(|t| linalg::mat_to_rows(t.as_ref())[test_rows.clone()].to_vec())
                    .unwrap_or_default();
                if exp.training.center_outputs {
                    for (a, b) in test.iter_mut().zip(f0_test) {
                        *a -= b;
                    }
                }
                KernelSolutionSummary {
                    track: *track,
                    lambda: pr.lambda(),
                    condition_number: pr.condition_number().unwrap_or(f64::NAN),
                    lambda_max: pr.lambda_max(),
                    test_loss_infinite_time: metrics::half_mse(&test, &data.y_test),
                    test_infinite_time: test,
                    solver: pr.solver_report().map(|report| {
                        let last = self.trained.checkpoints.last().map_or(0, |c| c.step);
                        let plan = exp.kernel.plan.as_ref();
                        crate::record::IterativeSolve {
                            report,
                            final_step_error: pr.error_estimate(last),
                            storage: plan.map(|p| p.storage).unwrap_or_default(),
                            tolerance: plan.map_or(0.0, |p| p.solver_tolerance),
                        }
                    }),
                }
            })
            .collect()
    }

    /// Every track's outputs at every checkpoint as one array (when they were kept).
    fn prediction_steps_record(&self) -> Option<crate::record::PredictionSteps> {
        let kept = &self.measured.predictions.as_ref()?.steps;
        let first = &kept.first()?.1;
        let tracks: Vec<crate::record::Track> = first.keys().collect();
        let data = self.tracks.data;
        let (n_points, k) = (data.n_train() + data.n_heldout(), data.n_outputs);
        let mut values = Vec::with_capacity(kept.len() * tracks.len() * n_points * k);
        for (_, preds) in kept {
            for &t in &tracks {
                match preds.get(t) {
                    Some(v) if v.len() == n_points * k => values.extend_from_slice(v),
                    _ => values.extend(std::iter::repeat_n(f64::NAN, n_points * k)),
                }
            }
        }
        let lr = self.tracks.rates.lr;
        Some(crate::record::PredictionSteps {
            steps: kept.iter().map(|(s, _)| *s).collect(),
            times: kept.iter().map(|(s, _)| lr * *s as f64).collect(),
            tracks,
            n_points,
            n_outputs: k,
            values,
        })
    }

    /// The kernels written as `.npy` files (non-finite ones are left out).
    fn kernel_matrices(
        &self,
        analytic_train: &Mat<f64>,
        theta_final: Mat<f64>,
    ) -> Result<KernelMatrices> {
        let (exp, data, init) = (self.tracks.exp, self.tracks.data, self.tracks.init);
        let (n_train, n_val, n_test) = (data.n_train(), data.n_val(), data.n_test());
        let r = exp.kernel.form.rows_per_point(data.n_outputs);
        let rows = n_train * r;
        // Θ0 test × train: the rows the run formed, or computed from θ0 now.
        let test_train_init = if n_test == 0 {
            None
        } else if init.theta0.nrows() > rows {
            Some(linalg::block(
                init.theta0.as_ref(),
                (n_train + n_val) * r,
                n_test * r,
                0,
                rows,
            ))
        } else {
            let net0 = &init.net0;
            let s_train = backprop_signals(net0, &data.x_train, n_train)?;
            let s_test = backprop_signals(net0, &data.x_test, n_test)?;
            Some(ntk_from_signals(net0, &s_test, &s_train, exp.kernel.form).total())
        };
        let pack = |m: Mat<f64>| {
            linalg::is_finite(m.as_ref())
                .then(|| (linalg::mat_to_rows(m.as_ref()), [m.nrows(), m.ncols()]))
        };
        Ok(KernelMatrices {
            analytic_ntk: pack(analytic_train.clone()),
            analytic_nngp: pack(linalg::block(
                init.analytic_nngp.as_ref(),
                0,
                n_train,
                0,
                n_train,
            )),
            analytic_ntk_test_train: pack(linalg::block(
                init.analytic_ntk.as_ref(),
                n_train + n_val,
                n_test,
                0,
                n_train,
            )),
            empirical_ntk_init: pack(linalg::block(init.theta0.as_ref(), 0, rows, 0, rows)),
            empirical_ntk_final: pack(theta_final),
            empirical_ntk_test_train_init: test_train_init.and_then(pack),
            checkpoints: Vec::new(),
            ensemble_gp: Vec::new(),
        })
    }
}
