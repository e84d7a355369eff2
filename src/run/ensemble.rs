//! An ensemble: `members` networks that differ only in their initialisation seed
//! (`experiment.seed + m`, modulo 2⁶⁴), each trained with its own linearized twin on the same
//! data, minibatch order and learning rate, against the infinite-width Gaussian process of
//! [`crate::dynamics::gp`]. Member 0 is the run's own network. No files are written here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use faer::Mat;

use crate::config::Experiment;
use crate::data::Dataset;
use crate::dynamics::gp::{EnsembleGp, GaussianOutputs, GpInputs, GpKernel};
use crate::linalg;
use crate::metrics::{self, stats};
use crate::record::ensemble::{
    Calibration, EnsembleCheckpoint, EnsembleGap, EnsembleOutputs, EnsembleRecord, Predictive,
};
use crate::record::{Checkpoint, Keyed, NamedMatrix, PerTrack, Track};
use crate::{Error, Result};

use super::initial::Initial;
use super::measure::{MemberTrace, Slices, TraceKeeper};
use super::tracks::{KernelTracks, Tracks};
use super::{network_config, Rates, RunOptions};

/// Per entry: mean and unbiased variance over members.
type MeanVar = (Vec<f64>, Vec<f64>);

/// The two-sided 95 % quantile of the standard normal.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Refuses data an ensemble cannot be compared on: no test points, or an output-averaged twin
/// (which is not the linearization when K > 1).
pub fn check_data(exp: &Experiment, data: &Dataset) -> Result<()> {
    if exp.ensemble.is_none() {
        return Ok(());
    }
    if data.n_test() == 0 {
        return Err(Error::value(
            "data.n_test",
            0,
            "at least 1 test point with [ensemble]: the ensemble is compared with the Gaussian process on the test points",
        ));
    }
    if super::predictors::averaged_kernel(exp, data.n_outputs) {
        return Err(Error::value(
            "kernel.form",
            "trace",
            "\"full\" with [ensemble] and several outputs: the output-averaged twin is not the linearization whose ensemble the Gaussian process describes",
        ));
    }
    Ok(())
}

/// Trains members 1 … M − 1 (`parallel` at a time), each a network and its twin; `own` is
/// member 0's trace (the run's own network). Returns every member's trace in seed order and
/// the seconds spent.
pub fn train_members(
    exp: &Experiment,
    data: &Dataset,
    rates: Rates,
    own: MemberTrace,
    opts: &RunOptions<'_>,
) -> Result<(Vec<MemberTrace>, f64)> {
    let members = exp.ensemble.map_or(1, |e| e.members);
    let clock = Instant::now();
    let parallel = super::parallel_members(exp);
    let next = AtomicUsize::new(1);
    let slots: Mutex<Vec<Option<Result<MemberTrace>>>> =
        Mutex::new((0..members).map(|_| None).collect());
    opts.progress
        .start("ensemble members", (members - 1) as u64);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                if opts.interrupted() {
                    break;
                }
                let m = next.fetch_add(1, Ordering::SeqCst);
                if m >= members {
                    break;
                }
                let result = train_member(exp, data, rates, m);
                let failed = result.is_err();
                slots.lock().unwrap_or_else(|e| e.into_inner())[m] = Some(result);
                opts.progress.advance(1);
                if failed {
                    break;
                }
            });
        }
    });
    opts.progress.finish();
    if opts.interrupted() {
        return Err(Error::Interrupted(
            "while training the ensemble members".into(),
        ));
    }
    let mut traces = vec![own];
    for slot in slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .skip(1)
    {
        traces.push(slot.ok_or_else(|| {
            Error::Interrupted("an ensemble member did not run (another one failed)".into())
        })??);
    }
    Ok((traces, clock.elapsed().as_secs_f64()))
}

/// Member `m`: a network initialised with seed `experiment.seed + m` and its twin, trained in
/// lockstep (no kernel tracks, no kernel figures).
fn train_member(exp: &Experiment, data: &Dataset, rates: Rates, m: usize) -> Result<MemberTrace> {
    let net = network_config(exp, data).init(exp.seed.wrapping_add(m as u64));
    let init = Initial::member(exp, data, &net)?;
    let mut tracks = Tracks::new(exp, (data, data), &init, net, rates, KernelTracks::None)?;
    let mut keeper = TraceKeeper::default();
    super::lockstep::train(&mut tracks, &mut [&mut keeper], &RunOptions::default())?;
    Ok(keeper.into_trace(&tracks))
}

/// The GPs of an ensemble run on its data (`ntk` and `nngp`), from the analytic kernels of
/// the initial state and the NNGP between the test points.
pub fn gaussian_processes(
    exp: &Experiment,
    data: &Dataset,
    init: &Initial,
    lr: f64,
) -> Result<Vec<EnsembleGp>> {
    let (n, k) = (data.n_train(), data.n_outputs);
    let (n_val, m) = (data.n_val(), data.n_test());
    let arch = network_config(exp, data);
    let nngp_test = crate::ntk::analytic_kernels_until(
        &arch,
        exp.kernel.quadrature_order,
        (&data.x_test, m),
        (&data.x_test, m),
        &|| false,
    )
    .ok_or_else(|| Error::Interrupted("while computing the test NNGP".into()))?
    .nngp;
    let train = |a: &Mat<f64>| linalg::block(a.as_ref(), 0, n, 0, n);
    let test_train = |a: &Mat<f64>| linalg::block(a.as_ref(), n + n_val, m, 0, n);
    let (ntk_train, ntk_tt) = (train(&init.analytic_ntk), test_train(&init.analytic_ntk));
    let (nngp_train, nngp_tt) = (train(&init.analytic_nngp), test_train(&init.analytic_nngp));
    let y = linalg::mat_from_rows(&data.y_train, n, k);
    [GpKernel::Ntk, GpKernel::Nngp]
        .into_iter()
        .map(|get| {
            EnsembleGp::new(
                get,
                GpInputs {
                    ntk_train: &ntk_train,
                    ntk_test_train: &ntk_tt,
                    nngp_train: &nngp_train,
                    nngp_test_train: &nngp_tt,
                    nngp_test: &nngp_test,
                    y_train: &y,
                    n_targets: n * k,
                    learning_rate: lr,
                    momentum: exp.training.momentum,
                    time: exp.kernel.time,
                    diag_reg: exp.kernel.diag_reg,
                },
            )
        })
        .collect()
}

/// Mean and unbiased variance over members of each entry of `slice` at checkpoint `i`
/// (members whose track diverged are left out).
fn member_stats(
    traces: &[MemberTrace],
    track: Track,
    i: usize,
    slice: &std::ops::Range<usize>,
) -> MeanVar {
    let rows: Vec<&[f64]> = traces
        .iter()
        .filter(|t| diverged_at(t, track).is_none())
        .filter_map(|t| {
            let p = match track {
                Track::Network => t.network.get(i),
                _ => t.linearized.get(i),
            }?;
            p.get(slice.clone())
        })
        .collect();
    let len = slice.len();
    let stat = |j: usize| {
        let v: Vec<f64> = rows.iter().map(|r| r[j]).collect();
        (stats::mean(&v), stats::sample_variance(&v))
    };
    (0..len).map(stat).unzip()
}

/// Marks a member's track diverged when its final training loss is not below its initial one
/// or is not finite (the phase classifier's divergent rule, [`crate::metrics::Phase`]): with η
/// set from member 0's η_c, another member's own η_c can be lower, and its twin then grows
/// without passing `training.max_loss` within the run.
pub fn mark_divergent(traces: &mut [MemberTrace], data: &Dataset) {
    let sl = Slices::of(data);
    let loss = |p: Option<&Vec<f64>>| {
        p.and_then(|p| metrics::half_mse(p.get(sl.train.clone())?, &data.y_train))
            .unwrap_or(f64::NAN)
    };
    for t in traces.iter_mut() {
        let last_step = t.steps.last().copied().unwrap_or(0);
        for (preds, flag) in [
            (&t.network, &mut t.network_diverged),
            (&t.linearized, &mut t.linearized_diverged),
        ] {
            let (first, last) = (loss(preds.first()), loss(preds.last()));
            if flag.is_none() && preds.len() > 1 && (!last.is_finite() || last >= first) {
                *flag = Some(last_step);
            }
        }
    }
}

fn diverged_at(t: &MemberTrace, track: Track) -> Option<u64> {
    match track {
        Track::Network => t.network_diverged,
        _ => t.linearized_diverged,
    }
}

/// The GP variance of each test entry (`n_test × K`, a point's variance repeated per output).
fn per_entry(var: &[f64], k: usize) -> Vec<f64> {
    var.iter()
        .flat_map(|&v| std::iter::repeat_n(v, k))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len() % 2 == 1 {
        v[h]
    } else {
        0.5 * (v[h - 1] + v[h])
    }
}

/// Ratios `a/b` of the entries where `b > 0`.
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter(|(_, &d)| d > 0.0)
        .map(|(n, d)| n / d)
        .collect()
}

/// Calibration of a Gaussian predictive `(mean, variance)` per entry on targets `y`.
pub fn calibrate(source: Predictive, mean: &[f64], var: &[f64], y: &[f64]) -> Calibration {
    let n = y.len().max(1) as f64;
    let mut inside = 0usize;
    let mut nll = 0.0;
    for ((&m, &v), &t) in mean.iter().zip(var).zip(y) {
        let v = v.max(f64::MIN_POSITIVE);
        let r = t - m;
        if r.abs() <= Z95 * v.sqrt() {
            inside += 1;
        }
        nll += 0.5 * (2.0 * std::f64::consts::PI * v).ln() + r * r / (2.0 * v);
    }
    Calibration {
        source,
        coverage95: inside as f64 / n,
        nll: nll / n,
    }
}

/// Gap figures of one track's ensemble against the NTK GP (see [`EnsembleGap`]).
fn gap(
    track: Track,
    (mean, var): (&[f64], &[f64]),
    (gp_mean, gp_var): (&[f64], &[f64]),
    members: usize,
    y_scale: f64,
) -> EnsembleGap {
    let mf = members as f64;
    let rmse = metrics::rmse(mean, gp_mean).unwrap_or(f64::NAN);
    let z: Vec<f64> = mean
        .iter()
        .zip(gp_mean)
        .zip(gp_var)
        .filter(|(_, &v)| v > 0.0)
        .map(|((a, b), v)| (a - b) / (v / mf).sqrt())
        .collect();
    let logs: Vec<f64> = ratios(var, gp_var)
        .into_iter()
        .filter(|r| *r > 0.0)
        .map(f64::ln)
        .collect();
    let nu = (members - 1) as f64;
    EnsembleGap {
        track,
        mean_gap: rmse / y_scale,
        mean_gap_floor: (stats::mean(gp_var) / mf).sqrt() / y_scale,
        mean_z_rms: metrics::rms(&z).unwrap_or(f64::NAN),
        var_ratio: median(ratios(var, gp_var)),
        var_log_ratio_rms: metrics::rms(&logs).unwrap_or(f64::NAN),
        var_log_ratio_floor: stats::log_chi2_rms(nu),
    }
}

/// Ensemble figures at every checkpoint (written into `checkpoints`) and the final record.
pub fn evaluate(
    exp: &Experiment,
    data: &Dataset,
    gps: &[EnsembleGp],
    traces: &[MemberTrace],
    checkpoints: &mut [Checkpoint],
) -> Result<(EnsembleRecord, Vec<NamedMatrix>)> {
    let sl = Slices::of(data);
    let ntk = gps
        .iter()
        .find(|g| g.get() == GpKernel::Ntk)
        .ok_or_else(|| Error::Interrupted("no NTK Gaussian process".into()))?;
    let steps = traces.first().map(|t| t.steps.clone()).unwrap_or_default();
    add_checkpoints(data, ntk, traces, &steps, checkpoints);
    let last = steps.len().saturating_sub(1);
    let last_step = steps.last().copied();
    let at_end: Vec<GpAtEnd> = gps
        .iter()
        .map(|g| {
            let (train, test) = g.at(last_step);
            (g.get(), train, test)
        })
        .collect();
    let k = data.n_outputs;
    let train = ensemble_outputs(traces, &at_end, (&sl.train, last), false, k);
    let test = ensemble_outputs(traces, &at_end, (&sl.test, last), true, k);
    let y = &data.y_test;
    let members = traces.len();
    let diverged_members: PerTrack<usize> = Keyed(
        TRACKS
            .iter()
            .map(|&t| {
                (
                    t,
                    traces
                        .iter()
                        .filter(|m| diverged_at(m, t).is_some())
                        .count(),
                )
            })
            .collect(),
    );
    let y_scale = metrics::rms(y).unwrap_or(1.0).max(1e-300);
    let (gp_mean, gp_var) = (
        test.gp_mean.get(GpKernel::Ntk).cloned().unwrap_or_default(),
        test.gp_var.get(GpKernel::Ntk).cloned().unwrap_or_default(),
    );
    let gaps = TRACKS
        .iter()
        .filter_map(|&t| {
            let used = members - diverged_members.get(t).copied().unwrap_or(0);
            let stats = (test.mean.get(t)?.as_slice(), test.var.get(t)?.as_slice());
            (used >= 2).then(|| gap(t, stats, (&gp_mean, &gp_var), used, y_scale))
        })
        .collect();
    let files = if exp.outputs.save_kernels {
        gp_files(&at_end)
    } else {
        Vec::new()
    };
    Ok((
        EnsembleRecord {
            members,
            diverged_members,
            train,
            calibration: calibrations(&test, &at_end, y),
            test,
            gaps,
            member_test: member_test_outputs(traces, last, &sl.test),
            member_seconds: 0.0,
            parallel: super::parallel_members(exp),
        },
        files,
    ))
}

/// The tracks an ensemble member has.
const TRACKS: [Track; 2] = [Track::Network, Track::Linearized];

/// A GP at the last checkpoint: its kernel, its training and its test outputs.
type GpAtEnd = (GpKernel, GaussianOutputs, GaussianOutputs);

/// The ensemble figures of each checkpoint the members logged, against the NTK-GP there.
fn add_checkpoints(
    data: &Dataset,
    ntk: &EnsembleGp,
    traces: &[MemberTrace],
    steps: &[u64],
    checkpoints: &mut [Checkpoint],
) {
    let k = data.n_outputs;
    let sl = Slices::of(data);
    for (i, &step) in steps.iter().enumerate() {
        let Some(ck) = checkpoints.iter_mut().find(|c| c.step == step) else {
            continue;
        };
        let (_, test) = ntk.at(Some(step));
        let gp_mean = linalg::mat_to_rows(test.mean.as_ref());
        let gp_var = per_entry(&test.variance(), k);
        let stats_of = |t: Track| member_stats(traces, t, i, &sl.test);
        let per_track = |f: &dyn Fn(&MeanVar) -> f64| {
            Keyed(TRACKS.iter().map(|&t| (t, f(&stats_of(t)))).collect())
        };
        ck.ensemble = Some(EnsembleCheckpoint {
            gp_mean_rmse: per_track(&|(m, _)| metrics::rmse(m, &gp_mean).unwrap_or(f64::NAN)),
            var_ratio: per_track(&|(_, v)| median(ratios(v, &gp_var))),
            mean_test_loss: per_track(&|(m, _)| {
                metrics::half_mse(m, &data.y_test).unwrap_or(f64::NAN)
            }),
            gp_mean_test_loss: metrics::half_mse(&gp_mean, &data.y_test).unwrap_or(f64::NAN),
        });
    }
}

/// The members' mean and variance per track on a slice of the points at checkpoint `last`,
/// next to each GP's (its test outputs when `test`, else its training outputs).
fn ensemble_outputs(
    traces: &[MemberTrace],
    at_end: &[GpAtEnd],
    (slice, last): (&std::ops::Range<usize>, usize),
    test: bool,
    k: usize,
) -> EnsembleOutputs {
    let stats: Vec<(Track, MeanVar)> = TRACKS
        .iter()
        .map(|&t| (t, member_stats(traces, t, last, slice)))
        .collect();
    let pick = |o: &GpAtEnd| if test { o.2.clone() } else { o.1.clone() };
    EnsembleOutputs {
        mean: Keyed(stats.iter().map(|(t, s)| (*t, s.0.clone())).collect()),
        var: Keyed(stats.iter().map(|(t, s)| (*t, s.1.clone())).collect()),
        gp_mean: Keyed(
            at_end
                .iter()
                .map(|o| (o.0, linalg::mat_to_rows(pick(o).mean.as_ref())))
                .collect(),
        ),
        gp_var: Keyed(
            at_end
                .iter()
                .map(|o| (o.0, per_entry(&pick(o).variance(), k)))
                .collect(),
        ),
    }
}

/// Calibration of each predictive distribution on the test targets `y`: the ensembles'
/// (per track), then the GPs'.
fn calibrations(test: &EnsembleOutputs, at_end: &[GpAtEnd], y: &[f64]) -> Vec<Calibration> {
    let mut calibration: Vec<Calibration> = TRACKS
        .iter()
        .filter_map(|&t| {
            Some(calibrate(
                Predictive::Ensemble(t),
                test.mean.get(t)?,
                test.var.get(t)?,
                y,
            ))
        })
        .collect();
    calibration.extend(at_end.iter().filter_map(|o| {
        Some(calibrate(
            Predictive::Gp(o.0),
            test.gp_mean.get(o.0)?,
            test.gp_var.get(o.0)?,
            y,
        ))
    }));
    calibration
}

/// Every member's test outputs at checkpoint `last`, per track.
fn member_test_outputs(
    traces: &[MemberTrace],
    last: usize,
    test: &std::ops::Range<usize>,
) -> PerTrack<Vec<Vec<f64>>> {
    Keyed(
        TRACKS
            .iter()
            .map(|&t| {
                let rows = traces
                    .iter()
                    .filter_map(|m| {
                        let p = match t {
                            Track::Network => m.network.get(last),
                            _ => m.linearized.get(last),
                        }?;
                        Some(p.get(test.clone())?.to_vec())
                    })
                    .collect();
                (t, rows)
            })
            .collect(),
    )
}

/// Each GP's test mean and covariance at the end as `.npy` files.
fn gp_files(at_end: &[GpAtEnd]) -> Vec<NamedMatrix> {
    at_end
        .iter()
        .flat_map(|(g, _, t)| {
            let (m, kk) = (t.mean.nrows(), t.mean.ncols());
            let nt = t.cov.nrows();
            [
                (
                    format!("{}_gp_mean_test", g.name()),
                    (linalg::mat_to_rows(t.mean.as_ref()), [m, kk]),
                ),
                (
                    format!("{}_gp_cov_test", g.name()),
                    (linalg::mat_to_rows(t.cov.as_ref()), [nt, nt]),
                ),
            ]
        })
        .collect()
}
