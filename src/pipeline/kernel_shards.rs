//! One run's kernel blocks spread over processes — `--kernel-shard I/N` computes the blocks
//! `u ≡ I (mod N)` of an iterative run's stores (on disk) and exits; `--slurm` submits them as a
//! Slurm job array followed by the run itself, which finds every block stored and continues
//! from the assembled kernels. A block already stored is never recomputed, so a re-submission
//! computes only what is missing; every block is the same bits whichever process computes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::Experiment;
use crate::data;
use crate::report::io;
use crate::run::stored::{self, StorePlan};
use crate::run::{self, RunOptions};
use crate::{Error, Result};

use super::sweep::Shard;

/// What a shard did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardReport {
    /// Blocks this shard computed now.
    pub computed: usize,
    /// Blocks stored after it (all shards' work so far).
    pub stored: usize,
    /// Blocks in all.
    pub total: usize,
    /// The store directory.
    pub dir: PathBuf,
}

/// The experiment as it runs on its data, its kernel view and its store plan, which must be on
/// disk (shards of other processes write into it).
fn disk_plan(
    exp: &Experiment,
    limits: run::LimitPolicy,
) -> Result<(Experiment, data::Dataset, StorePlan)> {
    run::preflight_config(exp, limits)?;
    let ds = data::load(&exp.data, exp.seed)?;
    let exp = exp.resolved_for(&ds)?;
    let view = run::kernel_view(&exp, &ds)?.into_owned();
    let plan = StorePlan::of(&exp, &view).ok_or_else(|| {
        Error::value(
            "kernel.solver",
            "(resolved to exact)",
            "\"iterative\": only an iterative run keeps its kernels in blocks that processes can share",
        )
    })?;
    if plan.dir.is_none() {
        return Err(Error::value(
            "kernel.store",
            "(in memory)",
            "\"disk\", with a kernel.store_dir on a filesystem every process sees: shards write their blocks there",
        ));
    }
    Ok((exp, view, plan))
}

/// Computes shard `shard` of the kernel blocks of `exp` (see the module doc).
pub fn kernel_shard(exp: &Experiment, shard: Shard, opts: &RunOptions<'_>) -> Result<ShardReport> {
    let (exp, view, plan) = disk_plan(exp, opts.limits)?;
    let net = run::network_config(&exp, &view).init(exp.seed);
    let x_heldout = [view.x_val.as_slice(), view.x_test.as_slice()].concat();
    let job = plan.job(&exp, &view, &x_heldout, &net)?;
    let total = job.units().len();
    let before = job.units().into_iter().filter(|&u| job.done(u)).count();
    drop(job);
    stored::compute(
        &plan,
        &exp,
        &view,
        &net,
        opts,
        Some((shard.index, shard.count)),
    )?;
    let job = plan.job(&exp, &view, &x_heldout, &net)?;
    let after = job.units().into_iter().filter(|&u| job.done(u)).count();
    Ok(ShardReport {
        computed: after - before,
        stored: after,
        total,
        dir: plan.dir.clone().unwrap_or_default(),
    })
}

/// A string as one single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Number of array tasks: `[slurm] tasks`, default 4, at most one per block.
pub fn task_count(exp: &Experiment, blocks: usize) -> usize {
    exp.slurm
        .as_ref()
        .and_then(|s| s.tasks)
        .unwrap_or(4)
        .clamp(1, blocks.max(1))
}

/// The two batch scripts of a run's kernel job: the array of shards and the run after it.
pub fn scripts(
    exp: &Experiment,
    config: &Path,
    out: Option<&Path>,
    slurm_dir: &Path,
    exe: &Path,
    tasks: usize,
) -> Result<(String, String)> {
    use super::slurm::script_path;
    let spec = exp.slurm.clone().unwrap_or_default();
    let logs = script_path("kernel.store_dir", slurm_dir, true)?;
    let exe = script_path("<this binary>", exe, false)?;
    let config = script_path("CONFIG", config, false)?;
    let out = out.map(|o| script_path("--out", o, false)).transpose()?;
    let header = |name: &str, log: &str| {
        let mut s = format!(
            "#!/bin/bash\n#SBATCH --job-name=ntk-{}-{name}\n#SBATCH --output={logs}/{log}\n",
            exp.name,
        );
        let opt = |flag: &str, v: Option<String>| v.map(|v| format!("#SBATCH --{flag}={v}\n"));
        s.extend(
            [
                opt("partition", spec.partition.clone()),
                opt("time", spec.time.clone()),
                opt("cpus-per-task", spec.cpus_per_task.map(|c| c.to_string())),
                opt("mem", spec.mem.clone()),
            ]
            .into_iter()
            .flatten(),
        );
        for a in spec.extra_args.iter().flatten() {
            s += &format!("#SBATCH {a}\n");
        }
        s
    };
    let throttle = spec
        .max_parallel
        .map(|m| format!("%{m}"))
        .unwrap_or_default();
    let exe_q = quote(&exe);
    let cfg_q = quote(&config);
    let array = format!(
        "{}# Written by ntk-dynamics for the run `{name}`: its kernel blocks in {tasks} array tasks;\n\
         # task I computes the blocks u ≡ I (mod {tasks}) not stored yet.\n\
         #SBATCH --array=0-{last}{throttle}\nset -eu\nexec {exe_q} {cfg_q} --kernel-shard \"${{SLURM_ARRAY_TASK_ID}}/{tasks}\" --quiet\n",
        header("kernel", "kernel-%A_%a.log"),
        name = exp.name,
        last = tasks - 1,
    );
    let out_arg = out
        .map(|o| format!(" --out {}", quote(&o)))
        .unwrap_or_default();
    let run = format!(
        "{}# Written by ntk-dynamics: the run `{name}` itself, once every kernel block is stored.\nset -eu\nexec {exe_q} {cfg_q}{out_arg} --quiet\n",
        header("run", "run-%j.log"),
        name = exp.name,
    );
    Ok((array, run))
}

/// What `--slurm` submitted for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The array job of kernel shards (None when every block was already stored).
    pub array: Option<String>,
    /// The run's job.
    pub run: String,
    /// Its exit status with `wait` (`sbatch --wait`).
    pub status: Option<i32>,
    /// The directory of the scripts and logs.
    pub slurm_dir: PathBuf,
}

fn sbatch(args: &[&str], script: &Path) -> Result<(String, Option<i32>)> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io(Path::new("sbatch"), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Numerics(format!(
            "sbatch did not submit {} (exit {:?}, output {text:?})",
            script.display(),
            out.status.code()
        )));
    }
    Ok((id, out.status.code()))
}

/// Submits the kernel shards of `exp` (those with blocks missing) and the run after them.
pub fn submit(
    exp: &Experiment,
    config: &Path,
    out: Option<&Path>,
    wait: bool,
    limits: run::LimitPolicy,
) -> Result<Submitted> {
    super::slurm::find_sbatch()?;
    let (resolved, view, plan) = disk_plan(exp, limits)?;
    let dir = plan.dir.clone().unwrap_or_default();
    super::slurm::check_shared(&dir)?;
    if let Some(o) = out {
        super::slurm::check_shared(o)?;
    }
    let net = run::network_config(&resolved, &view).init(resolved.seed);
    let x_heldout = [view.x_val.as_slice(), view.x_test.as_slice()].concat();
    let job = plan.job(&resolved, &view, &x_heldout, &net)?;
    let missing = job.units().into_iter().filter(|&u| !job.done(u)).count();
    drop(job);
    let slurm_dir = dir.join(super::slurm::SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir).map_err(|e| Error::io(&slurm_dir, e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io(Path::new("<this binary>"), e))?;
    let config = std::fs::canonicalize(config).map_err(|e| Error::io(config, e))?;
    let tasks = task_count(exp, missing);
    let (array_text, run_text) = scripts(exp, &config, out, &slurm_dir, &exe, tasks)?;
    let array_script = slurm_dir.join("kernel.sbatch");
    let run_script = slurm_dir.join("run.sbatch");
    io::write_atomic(&array_script, array_text.as_bytes())?;
    io::write_atomic(&run_script, run_text.as_bytes())?;
    let array = if missing > 0 {
        Some(sbatch(&[], &array_script)?.0)
    } else {
        None
    };
    let dep = array
        .as_ref()
        .map(|id| format!("--dependency=afterok:{id}"));
    // A failed shard makes the dependency impossible: the run is then cancelled, not left
    // pending for ever.
    let mut args: Vec<&str> = dep.iter().map(String::as_str).collect();
    args.push("--kill-on-invalid-dep=yes");
    if wait {
        args.push("--wait");
    }
    let (run_id, status) = sbatch(&args, &run_script)?;
    Ok(Submitted {
        array,
        run: run_id,
        status: if wait { status } else { None },
        slurm_dir,
    })
}
