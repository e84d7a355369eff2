//! The one registry of figures: a [`Column`] is a per-checkpoint quantity, a [`Figure`] a
//! per-run one. Each knows its name (the column of `metrics.csv` / `sweep.csv`, the key of
//! `summary.json`) and how to read itself from a checkpoint or a record, so that a new figure is
//! added here once and every writer and plot picks it up.

use super::ensemble::{EnsembleCheckpoint, EnsembleGap, Predictive};
use super::{Checkpoint, ClassCheckpoint, KernelCheckpoint, Pair, RunRecord, Track};

/// Which part of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training points.
    Train,
    /// Validation points (carved from the training split).
    Val,
    /// Test points.
    Test,
}

impl Split {
    /// Name in column names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// A quantity logged at checkpoints (a column of `metrics.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// SGD steps taken.
    Step,
    /// t = η·step.
    Time,
    /// Half-MSE of a track.
    Loss(Track, Split),
    /// RMSE between the predictions of two tracks.
    Rmse(Pair, Split),
    /// ‖Θt − Θ0‖_F/‖Θ0‖_F on the probe set.
    NtkRelDrift,
    /// 1 − cos(Θt, Θ0) on the probe set.
    NtkKernelDistance,
    /// λ_max(Θt) on the probe set.
    NtkLambdaMax,
    /// λ_max of the full training kernel.
    NtkLambdaMaxFull,
    /// η·λ_max/(2(1+μ)NK) of the full training kernel.
    SharpnessRatio,
    /// Relative drift of one dense layer's term of Θ.
    NtkRelDriftLayer(usize),
    /// ‖θt − θ0‖/‖θ0‖.
    ParamRelChange,
    /// The same for one dense layer.
    ParamRelChangeLayer(usize),
    /// ‖W_t − W_0‖_F/‖W_0‖_F of one dense layer.
    WeightRelChangeLayer(usize),
    /// ‖b_t − b_0‖/‖b_0‖ of one dense layer.
    BiasRelChangeLayer(usize),
    /// ‖W_t − W_0‖₂/‖W_0‖₂ (spectral norms) of one dense layer.
    WeightSpectralChangeLayer(usize),
    /// Mean input-Jacobian norm of the network or of the linearized twin.
    InputGradNorm(Track),
    /// Mean norm of the input Jacobian's change since initialisation.
    InputGradChange(Track),
    /// Classification accuracy.
    Accuracy(Track, Split),
    /// Softmax cross-entropy (nats).
    Xent(Track, Split),
    /// Read-out temperature fitted on the validation points.
    Temperature(Track),
    /// Softmax cross-entropy at the fitted temperature (nats; validation or test).
    XentCalibrated(Track, Split),
    /// Fraction of points where two tracks predict the same class.
    Agreement(Pair),
    /// RMSE between a track's ensemble mean and the NTK-GP mean (test).
    EnsembleGpMeanRmse(Track),
    /// Median over test entries of a track's ensemble variance over the NTK-GP variance.
    EnsembleVarRatio(Track),
    /// Test loss of a track's ensemble mean.
    EnsembleMeanTestLoss(Track),
    /// Test loss of the NTK-GP mean.
    GpMeanTestLoss,
}

fn kernel(c: &Checkpoint, f: impl Fn(&KernelCheckpoint) -> f64) -> Option<f64> {
    c.kernel.as_ref().map(f)
}

fn layer(c: &Checkpoint, l: usize, f: impl Fn(&KernelCheckpoint) -> &Vec<f64>) -> Option<f64> {
    c.kernel.as_ref().and_then(|k| f(k).get(l).copied())
}

fn class(c: &Checkpoint, f: impl Fn(&ClassCheckpoint) -> Option<f64>) -> Option<f64> {
    c.classification.as_ref().and_then(f)
}

fn ens(c: &Checkpoint, f: impl Fn(&EnsembleCheckpoint) -> Option<f64>) -> Option<f64> {
    c.ensemble.as_ref().and_then(f)
}

impl Column {
    /// Column name.
    pub fn name(&self) -> String {
        match *self {
            Column::Step => "step".into(),
            Column::Time => "time".into(),
            Column::Loss(t, s) => format!("{}_{}_loss", t.name(), s.name()),
            Column::Rmse((a, b), s) => format!("rmse_{}_{}_{}", a.name(), b.name(), s.name()),
            Column::NtkRelDrift => "ntk_rel_drift".into(),
            Column::NtkKernelDistance => "ntk_kernel_distance".into(),
            Column::NtkLambdaMax => "ntk_lambda_max".into(),
            Column::NtkLambdaMaxFull => "ntk_lambda_max_full".into(),
            Column::SharpnessRatio => "sharpness_ratio".into(),
            Column::NtkRelDriftLayer(l) => format!("ntk_rel_drift_layer{l}"),
            Column::ParamRelChange => "param_rel_change".into(),
            Column::ParamRelChangeLayer(l) => format!("param_rel_change_layer{l}"),
            Column::WeightRelChangeLayer(l) => format!("weight_rel_change_layer{l}"),
            Column::BiasRelChangeLayer(l) => format!("bias_rel_change_layer{l}"),
            Column::WeightSpectralChangeLayer(l) => format!("weight_spectral_change_layer{l}"),
            Column::InputGradNorm(t) => format!("{}_input_grad_norm", t.name()),
            Column::InputGradChange(t) => format!("{}_input_grad_change", t.name()),
            Column::Accuracy(t, s) => format!("{}_{}_accuracy", t.name(), s.name()),
            Column::Xent(t, s) => format!("{}_{}_xent", t.name(), s.name()),
            Column::Temperature(t) => format!("{}_temperature", t.name()),
            Column::XentCalibrated(t, s) => format!("{}_{}_xent_calibrated", t.name(), s.name()),
            Column::Agreement((a, b)) => format!("agreement_{}_{}", a.name(), b.name()),
            Column::EnsembleGpMeanRmse(t) => format!("ensemble_{}_gp_mean_rmse_test", t.name()),
            Column::EnsembleVarRatio(t) => format!("ensemble_{}_var_ratio_test", t.name()),
            Column::EnsembleMeanTestLoss(t) => format!("ensemble_{}_mean_test_loss", t.name()),
            Column::GpMeanTestLoss => "ntk_gp_mean_test_loss".into(),
        }
    }

    /// Its value at a checkpoint; `None` when not measured there (kernel figures between kernel
    /// checkpoints, test figures without test points, a track not in the run).
    pub fn read(&self, c: &Checkpoint) -> Option<f64> {
        match *self {
            Column::Step => Some(c.step as f64),
            Column::Time => Some(c.time),
            Column::Loss(t, Split::Train) => c.train_loss.get(t).copied(),
            Column::Loss(t, Split::Val) => c.val_loss.get(t).copied().flatten(),
            Column::Loss(t, Split::Test) => c.test_loss.get(t).copied().flatten(),
            Column::Rmse(p, Split::Train) => c.rmse_train.get(p).copied(),
            Column::Rmse(p, Split::Test) => c.rmse_test.get(p).copied().flatten(),
            Column::Rmse(_, Split::Val) => None,
            Column::NtkRelDrift => kernel(c, |k| k.ntk_rel_drift),
            Column::NtkKernelDistance => kernel(c, |k| k.ntk_kernel_distance),
            Column::NtkLambdaMax => kernel(c, |k| k.ntk_lambda_max),
            Column::NtkLambdaMaxFull => kernel(c, |k| k.ntk_lambda_max_full),
            Column::SharpnessRatio => kernel(c, |k| k.sharpness_ratio),
            Column::NtkRelDriftLayer(l) => layer(c, l, |k| &k.ntk_rel_drift_per_layer),
            Column::ParamRelChange => kernel(c, |k| k.param_rel_change),
            Column::ParamRelChangeLayer(l) => layer(c, l, |k| &k.param_rel_change_per_layer),
            Column::WeightRelChangeLayer(l) => layer(c, l, |k| &k.weight_rel_change_per_layer),
            Column::BiasRelChangeLayer(l) => layer(c, l, |k| &k.bias_rel_change_per_layer),
            Column::WeightSpectralChangeLayer(l) => {
                layer(c, l, |k| &k.weight_spectral_change_per_layer)
            }
            Column::InputGradNorm(t) => c.sensitivity.and_then(|s| match t {
                Track::Network => Some(s.network_norm),
                Track::Linearized | Track::LinearizedAvg => Some(s.linearized_norm),
                _ => None,
            }),
            Column::InputGradChange(t) => c.sensitivity.and_then(|s| match t {
                Track::Network => Some(s.network_change),
                Track::Linearized | Track::LinearizedAvg => Some(s.linearized_change),
                _ => None,
            }),
            Column::Accuracy(t, Split::Train) => class(c, |k| k.train_accuracy.get(t).copied()),
            Column::Accuracy(t, Split::Val) => {
                class(c, |k| k.val_accuracy.get(t).copied().flatten())
            }
            Column::Accuracy(t, Split::Test) => {
                class(c, |k| k.test_accuracy.get(t).copied().flatten())
            }
            Column::Xent(t, Split::Train) => class(c, |k| k.train_xent.get(t).copied()),
            Column::Xent(t, Split::Test) => class(c, |k| k.test_xent.get(t).copied().flatten()),
            Column::Xent(t, Split::Val) => class(c, |k| k.val_xent.get(t).copied().flatten()),
            Column::Temperature(t) => class(c, |k| k.temperature.get(t).copied().flatten()),
            Column::XentCalibrated(t, Split::Val) => {
                class(c, |k| k.val_xent_calibrated.get(t).copied().flatten())
            }
            Column::XentCalibrated(t, Split::Test) => {
                class(c, |k| k.test_xent_calibrated.get(t).copied().flatten())
            }
            Column::XentCalibrated(_, Split::Train) => None,
            Column::Agreement(p) => class(c, |k| k.agreement.get(p).copied()),
            Column::EnsembleGpMeanRmse(t) => ens(c, |e| e.gp_mean_rmse.get(t).copied()),
            Column::EnsembleVarRatio(t) => ens(c, |e| e.var_ratio.get(t).copied()),
            Column::EnsembleMeanTestLoss(t) => ens(c, |e| e.mean_test_loss.get(t).copied()),
            Column::GpMeanTestLoss => ens(c, |e| Some(e.gp_mean_test_loss)),
        }
    }

    /// Whether this is a kernel figure (measured at kernel checkpoints only).
    pub fn is_kernel_figure(&self) -> bool {
        matches!(
            self,
            Column::NtkRelDrift
                | Column::NtkKernelDistance
                | Column::NtkLambdaMax
                | Column::NtkLambdaMaxFull
                | Column::SharpnessRatio
                | Column::NtkRelDriftLayer(_)
                | Column::ParamRelChange
                | Column::ParamRelChangeLayer(_)
                | Column::WeightRelChangeLayer(_)
                | Column::BiasRelChangeLayer(_)
                | Column::WeightSpectralChangeLayer(_)
        )
    }

    /// `(step, value)` over the checkpoints where it was measured.
    pub fn series(&self, r: &RunRecord) -> Vec<(f64, f64)> {
        r.checkpoints
            .iter()
            .filter_map(|c| Some((c.step as f64, self.read(c)?)))
            .collect()
    }

    /// Its final value: at the last checkpoint (kernel figures: the last kernel checkpoint).
    pub fn final_value(&self, r: &RunRecord) -> Option<f64> {
        r.checkpoints.iter().rev().find_map(|c| {
            if self.is_kernel_figure() || c.step == r.last()?.step {
                self.read(c)
            } else {
                None
            }
        })
    }
}

/// The columns of `metrics.csv`, in order: step, time, losses, divergences, kernel figures,
/// input sensitivity, classification figures.
pub fn metrics_columns(r: &RunRecord) -> Vec<Column> {
    let mut cols = vec![Column::Step, Column::Time];
    let val = !r.data.y_val.is_empty();
    for &t in &r.tracks {
        cols.extend([Column::Loss(t, Split::Train), Column::Loss(t, Split::Test)]);
        if val {
            cols.push(Column::Loss(t, Split::Val));
        }
    }
    for &p in &r.pairs {
        cols.extend([Column::Rmse(p, Split::Train), Column::Rmse(p, Split::Test)]);
    }
    cols.extend([
        Column::NtkRelDrift,
        Column::NtkKernelDistance,
        Column::NtkLambdaMax,
        Column::NtkLambdaMaxFull,
        Column::SharpnessRatio,
    ]);
    cols.extend((0..r.n_layers).map(Column::NtkRelDriftLayer));
    cols.push(Column::ParamRelChange);
    cols.extend((0..r.n_layers).map(Column::ParamRelChangeLayer));
    cols.extend((0..r.n_layers).map(Column::WeightRelChangeLayer));
    cols.extend((0..r.n_layers).map(Column::BiasRelChangeLayer));
    cols.extend((0..r.n_layers).map(Column::WeightSpectralChangeLayer));
    let twin = r.twin_track();
    cols.extend([
        Column::InputGradNorm(Track::Network),
        Column::InputGradNorm(twin),
        Column::InputGradChange(Track::Network),
        Column::InputGradChange(twin),
    ]);
    if r.data.classes.is_some() {
        for &t in &r.tracks {
            cols.extend([
                Column::Accuracy(t, Split::Train),
                Column::Accuracy(t, Split::Test),
                Column::Xent(t, Split::Train),
                Column::Xent(t, Split::Test),
            ]);
            if val {
                cols.extend([
                    Column::Accuracy(t, Split::Val),
                    Column::Xent(t, Split::Val),
                    Column::Temperature(t),
                    Column::XentCalibrated(t, Split::Val),
                    Column::XentCalibrated(t, Split::Test),
                ]);
            }
        }
        cols.extend(r.pairs.iter().map(|&p| Column::Agreement(p)));
    }
    if r.ensemble.is_some() {
        for t in [Track::Network, Track::Linearized] {
            cols.extend([
                Column::EnsembleGpMeanRmse(t),
                Column::EnsembleVarRatio(t),
                Column::EnsembleMeanTestLoss(t),
            ]);
        }
        cols.push(Column::GpMeanTestLoss);
    }
    cols
}

/// A gap figure of an ensemble against the NTK GP (see [`EnsembleGap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapFigure {
    /// RMSE(ensemble mean, GP mean)/RMS(y).
    MeanGap,
    /// The mean gap M exact GP draws would show.
    MeanGapFloor,
    /// RMS of the standardised mean differences.
    MeanZRms,
    /// Median variance ratio.
    VarRatio,
    /// RMS of the log variance ratio.
    VarLogRatioRms,
    /// Its value for M exact GP draws.
    VarLogRatioFloor,
}

impl GapFigure {
    /// Every gap figure, in column order.
    pub const ALL: [GapFigure; 6] = [
        GapFigure::MeanGap,
        GapFigure::MeanGapFloor,
        GapFigure::MeanZRms,
        GapFigure::VarRatio,
        GapFigure::VarLogRatioRms,
        GapFigure::VarLogRatioFloor,
    ];

    /// Name (after `ensemble_<track>_`).
    pub fn name(self) -> &'static str {
        match self {
            GapFigure::MeanGap => "mean_gap",
            GapFigure::MeanGapFloor => "mean_gap_floor",
            GapFigure::MeanZRms => "mean_z_rms",
            GapFigure::VarRatio => "var_ratio",
            GapFigure::VarLogRatioRms => "var_log_ratio_rms",
            GapFigure::VarLogRatioFloor => "var_log_ratio_floor",
        }
    }

    /// Its value.
    pub fn read(self, g: &EnsembleGap) -> f64 {
        match self {
            GapFigure::MeanGap => g.mean_gap,
            GapFigure::MeanGapFloor => g.mean_gap_floor,
            GapFigure::MeanZRms => g.mean_z_rms,
            GapFigure::VarRatio => g.var_ratio,
            GapFigure::VarLogRatioRms => g.var_log_ratio_rms,
            GapFigure::VarLogRatioFloor => g.var_log_ratio_floor,
        }
    }
}

/// A per-run figure (a column of `sweep.csv`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// A checkpoint column at the end of the run.
    Final(Column),
    /// Final RMSE between two tracks over RMS(y) on the evaluation split.
    RelRmse(Pair),
    /// Early stopping: the test accuracy at the checkpoint with the best validation accuracy
    /// (the earliest such checkpoint).
    EarlyStoppedTestAccuracy(Track),
    /// Test loss of a kernel track's t = ∞ solution.
    InfiniteTimeTestLoss(Track),
    /// Test accuracy of a kernel track's t = ∞ solution.
    InfiniteTimeTestAccuracy(Track),
    /// ‖Θ0 − Θ∞‖/‖Θ∞‖ on train × train.
    InitNtkVsAnalytic,
    /// η.
    LearningRate,
    /// η_c.
    CriticalLearningRate,
    /// λ_max(Θ_final)/λ_max(Θ0) on the probe set.
    LambdaRatio,
    /// `1 − CKA(Θ_final, Θ0)` on the probe set: how far the kernel turned (0 for a kernel that
    /// only rescaled).
    CkaDistance,
    /// Centred kernel–target alignment of Θ_final minus that of Θ0 on the probe set.
    TargetAlignmentGain,
    /// A final gap between a track's ensemble and the NTK GP.
    EnsembleGap(Track, GapFigure),
    /// Fraction of test targets inside a predictive distribution's 95 % interval.
    Coverage95(Predictive),
    /// Gaussian negative log-likelihood of the test targets under a predictive distribution.
    Nll(Predictive),
    /// Text: a track's final test cross-entropy in bits per character (softmax of its outputs).
    TestBitsPerChar(Track),
    /// Text with validation points: a track's test bits/char at its early stop (the checkpoint of
    /// least temperature-calibrated validation cross-entropy), read out at the fitted temperature.
    EarlyStoppedTestBitsPerChar(Track),
    /// Text: final test bits/char of the network minus that of its linearized twin.
    BitsGapNetworkTwin,
    /// Text: test bits/char of the Witten–Bell n-gram baseline of an order.
    NgramBitsPerChar(usize),
}

impl Figure {
    /// Name (a column of `sweep.csv`).
    pub fn name(&self) -> String {
        match *self {
            Figure::Final(c) => c.name(),
            Figure::RelRmse((a, b)) => format!("rel_rmse_{}_{}", a.name(), b.name()),
            Figure::EarlyStoppedTestAccuracy(t) => {
                format!("{}_early_stopped_test_accuracy", t.name())
            }
            Figure::InfiniteTimeTestLoss(t) => format!("{}_infinite_time_test_loss", t.name()),
            Figure::InfiniteTimeTestAccuracy(t) => {
                format!("{}_infinite_time_test_accuracy", t.name())
            }
            Figure::InitNtkVsAnalytic => "init_ntk_vs_analytic".into(),
            Figure::LearningRate => "learning_rate".into(),
            Figure::CriticalLearningRate => "critical_learning_rate".into(),
            Figure::LambdaRatio => "lambda_ratio".into(),
            Figure::CkaDistance => "ntk_cka_distance".into(),
            Figure::TargetAlignmentGain => "ntk_target_alignment_gain".into(),
            Figure::EnsembleGap(t, g) => format!("ensemble_{}_{}", t.name(), g.name()),
            Figure::Coverage95(p) => format!("{}_coverage95", p.name()),
            Figure::Nll(p) => format!("{}_nll", p.name()),
            Figure::TestBitsPerChar(t) => format!("{}_test_bits_per_char", t.name()),
            Figure::EarlyStoppedTestBitsPerChar(t) => {
                format!("{}_early_stopped_test_bits_per_char", t.name())
            }
            Figure::BitsGapNetworkTwin => "bits_gap_network_linearized".into(),
            Figure::NgramBitsPerChar(n) => format!("ngram{n}_test_bits_per_char"),
        }
    }

    /// Its value in a record (NaN where it is not available).
    pub fn read(&self, r: &RunRecord) -> f64 {
        match *self {
            Figure::Final(c) => c.final_value(r),
            Figure::RelRmse((a, b)) => r.final_relative_rmse(a, b),
            Figure::EarlyStoppedTestAccuracy(t) => {
                let mut best: Option<(f64, f64)> = None;
                for c in &r.checkpoints {
                    let val = Column::Accuracy(t, Split::Val).read(c);
                    let test = Column::Accuracy(t, Split::Test).read(c);
                    if let (Some(v), Some(te)) = (val, test) {
                        if best.is_none_or(|(bv, _)| v > bv) {
                            best = Some((v, te));
                        }
                    }
                }
                best.map(|b| b.1)
            }
            Figure::InfiniteTimeTestLoss(t) => r
                .kernel_solutions
                .iter()
                .find(|k| k.track == t)
                .and_then(|k| k.test_loss_infinite_time),
            Figure::InfiniteTimeTestAccuracy(t) => {
                let k = r.kernel_solutions.iter().find(|k| k.track == t);
                k.zip(r.data.classes.as_ref()).and_then(|(k, classes)| {
                    crate::metrics::accuracy(&k.test_infinite_time, &r.data.y_test, classes.len())
                })
            }
            Figure::TestBitsPerChar(t) => Column::Xent(t, Split::Test)
                .final_value(r)
                .map(|x| x / std::f64::consts::LN_2),
            Figure::EarlyStoppedTestBitsPerChar(t) => r
                .early_stop(t)
                .map(|e| e.test_xent / std::f64::consts::LN_2),
            Figure::BitsGapNetworkTwin => {
                let bits = |t| Figure::TestBitsPerChar(t).read(r);
                Some(bits(Track::Network) - bits(r.twin_track()))
            }
            Figure::NgramBitsPerChar(n) => r
                .ngram_baselines
                .iter()
                .find(|b| b.order == n)
                .map(|b| b.bits_per_char),
            Figure::InitNtkVsAnalytic => Some(r.init_ntk_vs_analytic),
            Figure::CkaDistance => r.last_kernel().map(|k| 1.0 - k.ntk_cka_init),
            Figure::TargetAlignmentGain => r
                .checkpoints
                .iter()
                .find_map(|c| c.kernel.as_ref())
                .zip(r.last_kernel())
                .map(|(first, last)| last.ntk_target_alignment - first.ntk_target_alignment),
            Figure::LearningRate => Some(r.learning_rate),
            Figure::CriticalLearningRate => Some(r.critical_learning_rate),
            Figure::LambdaRatio => Some(r.lambda_ratio()),
            Figure::EnsembleGap(t, g) => r
                .ensemble
                .as_ref()
                .and_then(|e| e.gap(t))
                .map(|x| g.read(x)),
            Figure::Coverage95(p) => r
                .ensemble
                .as_ref()
                .and_then(|e| e.calibration_of(p))
                .map(|c| c.coverage95),
            Figure::Nll(p) => r
                .ensemble
                .as_ref()
                .and_then(|e| e.calibration_of(p))
                .map(|c| c.nll),
        }
        .unwrap_or(f64::NAN)
    }
}

/// The names every figure other than [`Figure::Final`] can have (a `Final` figure is named after
/// its `metrics.csv` column), for every track, pair, ensemble gap and predictive distribution,
/// and n-gram orders up to 64: what a stored sweep row may carry besides `metrics.csv` columns.
pub fn non_final_figure_names() -> std::collections::BTreeSet<String> {
    use crate::dynamics::gp::GpKernel;
    use crate::record::ensemble::Predictive;
    let mut f = vec![
        Figure::InitNtkVsAnalytic,
        Figure::LearningRate,
        Figure::CriticalLearningRate,
        Figure::LambdaRatio,
        Figure::CkaDistance,
        Figure::TargetAlignmentGain,
        Figure::BitsGapNetworkTwin,
    ];
    f.extend((1..=64).map(Figure::NgramBitsPerChar));
    for a in Track::ALL {
        f.extend(Track::ALL.map(|b| Figure::RelRmse((a, b))));
        f.extend([
            Figure::EarlyStoppedTestAccuracy(a),
            Figure::InfiniteTimeTestLoss(a),
            Figure::InfiniteTimeTestAccuracy(a),
            Figure::TestBitsPerChar(a),
            Figure::EarlyStoppedTestBitsPerChar(a),
        ]);
        f.extend(GapFigure::ALL.map(|g| Figure::EnsembleGap(a, g)));
        f.extend([Predictive::Ensemble(a)].map(Figure::Coverage95));
        f.extend([Predictive::Ensemble(a)].map(Figure::Nll));
    }
    for g in [GpKernel::Ntk, GpKernel::Nngp] {
        f.extend([
            Figure::Coverage95(Predictive::Gp(g)),
            Figure::Nll(Predictive::Gp(g)),
        ]);
    }
    f.iter().map(Figure::name).collect()
}

/// The per-run figures of a record, in `sweep.csv` order.
pub fn run_figures(r: &RunRecord) -> Vec<Figure> {
    let mut f = Vec::new();
    for &t in &r.tracks {
        f.push(Figure::Final(Column::Loss(t, Split::Train)));
        f.push(Figure::Final(Column::Loss(t, Split::Test)));
    }
    f.extend(
        r.pairs
            .iter()
            .filter(|(a, _)| *a == Track::Network)
            .map(|&p| Figure::RelRmse(p)),
    );
    if let Some(k) = r.last_kernel() {
        f.extend(
            [
                Column::NtkRelDrift,
                Column::NtkKernelDistance,
                Column::ParamRelChange,
            ]
            .map(Figure::Final),
        );
        f.extend([Figure::CkaDistance, Figure::TargetAlignmentGain]);
        f.extend(
            (0..k.param_rel_change_per_layer.len())
                .map(|l| Figure::Final(Column::ParamRelChangeLayer(l))),
        );
    }
    if r.last().is_some_and(|c| c.classification.is_some()) {
        for &t in &r.tracks {
            f.push(Figure::Final(Column::Accuracy(t, Split::Test)));
            if !r.data.y_val.is_empty() {
                f.push(Figure::EarlyStoppedTestAccuracy(t));
            }
        }
    }
    if !r.ngram_baselines.is_empty() {
        f.extend(r.tracks.iter().map(|&t| Figure::TestBitsPerChar(t)));
        if !r.data.y_val.is_empty() {
            f.extend(
                r.tracks
                    .iter()
                    .map(|&t| Figure::EarlyStoppedTestBitsPerChar(t)),
            );
        }
        f.push(Figure::BitsGapNetworkTwin);
        f.push(Figure::Final(Column::Agreement((
            Track::Network,
            r.twin_track(),
        ))));
        f.extend(
            r.ngram_baselines
                .iter()
                .map(|b| Figure::NgramBitsPerChar(b.order)),
        );
    }
    for k in &r.kernel_solutions {
        if k.test_loss_infinite_time.is_some() {
            f.push(Figure::InfiniteTimeTestLoss(k.track));
        }
        if r.data.classes.is_some() {
            f.push(Figure::InfiniteTimeTestAccuracy(k.track));
        }
    }
    f.extend([
        Figure::InitNtkVsAnalytic,
        Figure::LearningRate,
        Figure::CriticalLearningRate,
        Figure::LambdaRatio,
    ]);
    if let Some(e) = &r.ensemble {
        for g in &e.gaps {
            f.extend(GapFigure::ALL.map(|x| Figure::EnsembleGap(g.track, x)));
        }
        for c in &e.calibration {
            f.extend([Figure::Coverage95(c.source), Figure::Nll(c.source)]);
        }
    }
    f
}
