//! `experiment`: runs one ntk-dynamics experiment from a TOML config (thin CLI over the library).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ntk_dynamics::config::{self, sweep};
use ntk_dynamics::error::alloc_report;
use ntk_dynamics::record::{RunRecord, RunStatus};
use ntk_dynamics::report::{self, repro};
use ntk_dynamics::run::{self, Interrupt, Progress, RunOptions};
use ntk_dynamics::{pipeline, Error};

// Large tensors are allocated and freed every step; mimalloc keeps them instead of returning
// them to the OS (glibc's malloc spent ~35% of the run in page faults). A failed allocation that
// std would only abort on is reported as an out-of-memory error (exit 1) through
// `alloc_report::install_abort_report`.
#[global_allocator]
static ALLOCATOR: alloc_report::ReportingAllocator<mimalloc::MiMalloc> =
    alloc_report::ReportingAllocator(mimalloc::MiMalloc);

/// Train a network, its linearization and the NTK kernel solution side by side.
#[derive(Parser, Debug)]
#[command(
    version = env!("NTK_VERSION_TEXT"),
    about,
    after_help = "Example:\n  cargo run --release --bin experiment -- experiments/wide_mlp.toml\n  experiment experiments/wide_mlp.toml --seed 3 --out /tmp/run1\n  experiment --verify results/wide_mlp/<run id>\n  experiment experiments/width_sweep.toml --out /cluster/w --slurm --wait\n\nExit codes: 0 success, 1 failure (or --verify mismatch), 2 bad config or data, 130 interrupted."
)]
struct Cli {
    /// Experiment config (TOML).
    config: Option<PathBuf>,
    /// Write the run into exactly this directory (must be absent or empty) instead of
    /// `<outputs.dir>/<name>/<run id>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override `experiment.seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Run even when the estimated peak memory or disk use exceeds what is available.
    #[arg(long, conflicts_with_all = ["verify", "collect"])]
    force: bool,
    /// Print the estimated time (per phase), peak memory and disk use of the run (every point
    /// of a sweep) on this machine, and exit without running or creating anything.
    #[arg(
        long,
        conflicts_with_all = ["shard", "slurm", "kernel_shard", "out", "verify", "collect"]
    )]
    estimate: bool,
    /// Check a run directory: its files against their recorded hashes, then re-run its recorded
    /// config and compare every output (bitwise on the recording machine, within tolerances
    /// elsewhere).
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["config", "collect", "shard", "slurm", "kernel_shard", "seed", "out"]
    )]
    verify: Option<PathBuf>,
    /// Sweeps: run only the points with index ≡ I (mod N) that are not completed, into the
    /// sweep directory given by --out (created with its plan by the first shard).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Build sweep.csv / sweep.json / sweep.md and the plots of a sweep directory from its
    /// finished points; names missing and failed ones (exit 1 while any is not completed).
    #[arg(
        long,
        value_name = "SWEEP_DIR",
        conflicts_with_all = ["config", "shard", "slurm", "kernel_shard", "seed", "out"]
    )]
    collect: Option<PathBuf>,
    /// Redraw a run's figures (from its figure_data.ron) or a sweep's figures and sweep.md (from
    /// sweep.json) with this build's figure code, re-running nothing; replot.json records what
    /// was redrawn.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["config", "collect", "verify", "shard", "slurm", "kernel_shard", "seed", "out", "estimate", "force"]
    )]
    replot: Option<PathBuf>,
    /// Sweeps: write <--out>/slurm/sweep.sbatch and submit it with sbatch as a job array (one
    /// task per shard); resubmitting runs only points that are missing or failed.
    #[arg(long)]
    slurm: bool,
    /// With --slurm: wait until the array ends, then collect (exit 1 when a point failed).
    #[arg(long, requires = "slurm")]
    wait: bool,
    /// Single runs with the iterative solver and kernel.store = "disk": compute the kernel
    /// blocks u ≡ I (mod N) not stored yet into kernel.store_dir, then exit (the run itself,
    /// started afterwards, continues from the stored blocks).
    #[arg(long, value_name = "I/N")]
    kernel_shard: Option<String>,
}

/// Progress bars on a terminal, plain log lines otherwise.
struct CliProgress {
    quiet: bool,
    tty: bool,
    bar: std::sync::Mutex<Option<(ProgressBar, String, u64, u64)>>,
}

impl Progress for CliProgress {
    fn start(&self, phase: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = if self.tty {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(phase.to_string());
            b
        } else {
            eprintln!("[{phase}] started ({total} units)");
            ProgressBar::hidden()
        };
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((bar, phase.to_string(), total, 0));
    }
    fn advance(&self, n: u64) {
        if let Some((b, phase, total, done)) =
            self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
        {
            b.inc(n);
            let before = *done * 10 / (*total).max(1);
            *done += n;
            if !self.tty && *done * 10 / (*total).max(1) > before {
                eprintln!("[{phase}] {done}/{total}");
            }
        }
    }
    fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("note: {message}");
        }
    }
    fn finish(&self) {
        if let Some((b, phase, _, _)) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
            if !self.tty && !self.quiet {
                eprintln!("[{phase}] done");
            }
        }
    }
}

fn is_input_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ConfigParse { .. }
            | Error::ConfigValue { .. }
            | Error::Data { .. }
            | Error::OutputDir { .. }
            | Error::Memory { .. }
            | Error::NotARun { .. }
    )
}

fn main() -> ExitCode {
    alloc_report::install_abort_report();
    let cli = Cli::parse();
    // A failed allocation inside a library (possible past the estimate with --force) is
    // reported as an out-of-memory error by the run; its panic message is not printed twice.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !ntk_dynamics::error::is_allocation_failure(&ntk_dynamics::error::panic_message(
            info.payload(),
        )) {
            default_hook(info);
        }
    }));
    // An allocation that panics outside a run (e.g. a data set of 2^61 points under --force) is
    // the same out-of-memory error, not a silent exit 101.
    let outcome = std::panic::catch_unwind(|| real_main(&cli)).unwrap_or_else(|payload| {
        let message = ntk_dynamics::error::panic_message(payload.as_ref());
        if !ntk_dynamics::error::is_allocation_failure(&message) {
            std::panic::resume_unwind(payload);
        }
        Err(Error::OutOfMemory(format!(
            "an allocation failed ({message}) before the run could start (past the memory estimate, with --force); `experiment CONFIG --estimate` shows the footprint: reduce the largest part"
        ))
        .into())
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted(_))) {
                return ExitCode::from(130);
            }
            let input = e.downcast_ref::<Error>().is_some_and(is_input_error);
            ExitCode::from(if input { 2 } else { 1 })
        }
    }
}

/// What the memory and disk checks do with a run past the machine: `--force` starts it anyway.
fn limits(cli: &Cli) -> run::LimitPolicy {
    if cli.force {
        run::LimitPolicy::Force
    } else {
        run::LimitPolicy::Refuse
    }
}

fn real_main(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &cli.verify {
        return verify(dir, cli.quiet);
    }
    if let Some(dir) = &cli.collect {
        return collect(dir, cli.quiet);
    }
    if let Some(dir) = &cli.replot {
        let done = ntk_dynamics::pipeline::replot::replot(dir)?;
        if !cli.quiet {
            println!("redrawn in {}: {}", dir.display(), done.written.join(", "));
            if !done.removed.is_empty() {
                println!("removed (no longer drawn): {}", done.removed.join(", "));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = cli
        .config
        .as_ref()
        .context("a CONFIG file is required (see --help)")?;
    let text = config::read_config(path)?;
    if sweep::is_sweep(&text) {
        if cli.estimate {
            let sw = sweep::expand(&text, Some(path))?;
            let points: Vec<_> = sw.points.iter().map(|p| p.experiment.clone()).collect();
            let footprints = pipeline::estimate_points(&points, limits(cli))?;
            print_estimates(&points, &footprints);
            return Ok(ExitCode::SUCCESS);
        }
        return run_sweep(cli, path, &text);
    }
    if cli.shard.is_some() {
        anyhow::bail!(Error::value(
            "--shard",
            path.display(),
            "a sweep config (one with a [sweep] section); a single run's kernel blocks are split with --kernel-shard"
        ));
    }
    let (mut exp, notes) = config::parse_str_noted(&text, Some(path))?;
    print_notes(&notes, cli.quiet);
    if let Some(seed) = cli.seed {
        exp.seed = seed;
    }
    if cli.estimate {
        let footprints = pipeline::estimate_points(std::slice::from_ref(&exp), limits(cli))
            .map_err(|e| locate_in(e.into(), &text, path))?;
        print_estimates(std::slice::from_ref(&exp), &footprints);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(shard) = &cli.kernel_shard {
        return kernel_shard(cli, &exp, shard);
    }
    if cli.slurm {
        return submit_kernel_job(cli, &exp, path);
    }
    let progress = CliProgress {
        quiet: cli.quiet,
        tty: std::io::stderr().is_terminal(),
        bar: Default::default(),
    };
    let interrupt = interrupt_flag();
    let opts = RunOptions {
        interrupt: Some(interrupt),
        progress: &progress,
        limits: limits(cli),
    };
    let (record, dir) = pipeline::run_into(&exp, cli.out.as_deref(), &opts)
        .map_err(|e| locate_in(e.into(), &text, path))?;
    if !cli.quiet {
        print_summary(&record, &exp, &dir);
    }
    Ok(if record.status == RunStatus::Interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--estimate`: each run's time per phase, memory and disk, then the total (standard output).
fn print_estimates(points: &[ntk_dynamics::config::Experiment], footprints: &[run::Footprint]) {
    use std::io::Write;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut text = String::new();
    for (exp, f) in points.iter().zip(footprints) {
        text += &format!(
            "{} (seed {}): {}; peak memory ~{:.2} GiB, disk ~{:.2} GiB\n",
            exp.name,
            exp.seed,
            run::memory::describe_time(f),
            gib(f.peak_bytes),
            gib(f.disk_bytes)
        );
        for (phase, seconds) in &f.phases {
            text += &format!("  {phase:<18} {seconds:>10.1} s\n");
        }
    }
    if points.len() > 1 {
        let total: f64 = footprints.iter().map(|f| f.seconds).sum();
        text += &format!(
            "total: {} for {} runs one after the other\n",
            run::memory::duration(total),
            points.len()
        );
    }
    // A closed pipe (`| head`) is not an error of the estimate.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Notes on how a config's paths were read (on standard error, unless quiet).
fn print_notes(notes: &[String], quiet: bool) {
    if !quiet {
        for n in notes {
            eprintln!("note: {n}");
        }
    }
}

/// The config path of a command line that has one.
fn path_of(cli: &Cli) -> &Path {
    cli.config.as_deref().unwrap_or(Path::new("<config>"))
}

/// A config value error found once the data were loaded, with the config's file and line.
fn locate_in(e: anyhow::Error, text: &str, path: &Path) -> anyhow::Error {
    match e.downcast::<Error>() {
        Ok(err) => config::locate(err, &config::KeyLines::new(text), Some(path)).into(),
        Err(e) => e,
    }
}

/// `--kernel-shard I/N`: one shard of a run's kernel blocks.
fn kernel_shard(cli: &Cli, exp: &config::Experiment, shard: &str) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::{kernel_shards, sweep::Shard};
    let shard = Shard::parse(shard)?;
    let progress = CliProgress {
        quiet: cli.quiet,
        tty: std::io::stderr().is_terminal(),
        bar: Default::default(),
    };
    let opts = RunOptions {
        interrupt: Some(interrupt_flag()),
        progress: &progress,
        limits: limits(cli),
    };
    let r = kernel_shards::kernel_shard(exp, shard, &opts).map_err(|e| {
        locate_in(
            e.into(),
            &std::fs::read_to_string(path_of(cli)).unwrap_or_default(),
            path_of(cli),
        )
    })?;
    if !cli.quiet {
        println!(
            "kernel shard {}/{}: {} block(s) computed; {} of {} stored in {}",
            shard.index,
            shard.count,
            r.computed,
            r.stored,
            r.total,
            r.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--slurm` on a single run: its missing kernel blocks as a job array, then the run.
fn submit_kernel_job(cli: &Cli, exp: &config::Experiment, path: &Path) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::kernel_shards;
    let s = kernel_shards::submit(exp, path, cli.out.as_deref(), cli.wait, limits(cli)).map_err(
        |e| {
            locate_in(
                e.into(),
                &std::fs::read_to_string(path).unwrap_or_default(),
                path,
            )
        },
    )?;
    if !cli.quiet {
        match &s.array {
            Some(a) => println!("submitted the kernel blocks as array job {a} and the run as job {} (after it); scripts and logs in {}", s.run, s.slurm_dir.display()),
            None => println!("every kernel block is stored; submitted the run as job {}; logs in {}", s.run, s.slurm_dir.display()),
        }
    }
    Ok(match s.status {
        Some(0) | None => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(1),
    })
}

fn interrupt_flag() -> Arc<Interrupt> {
    let interrupt = Arc::new(Interrupt::default());
    let flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.request() {
            // Second Ctrl-C: stop at once (run directories keep their INCOMPLETE marker).
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping at the next step boundary (again to abort)");
        // A computation without a look at the request (a dense factorisation or product)
        // would keep the process running for as long as it takes: past the grace period the
        // process ends here (its run directory keeps its INCOMPLETE marker).
        let flag = flag.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while start.elapsed() < flag.grace() {
                if flag.honoured() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if !flag.honoured() {
                eprintln!(
                    "interrupt: the current computation cannot stop at a boundary within {:.1} s; ending the process now",
                    flag.grace().as_secs_f64()
                );
                std::process::exit(130);
            }
        });
    });
    interrupt
}

/// Runs the points of a sweep config into one sweep directory: all of them (a fresh directory,
/// or the --out directory of an earlier run of the same sweep, resuming it), one shard of them
/// (--shard), or as a Slurm job array (--slurm).
fn run_sweep(cli: &Cli, path: &Path, text: &str) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::sweep::{self as psweep, Shard};
    if cli.seed.is_some() {
        anyhow::bail!(Error::value(
            "--seed",
            cli.seed.unwrap_or_default(),
            "no --seed with a sweep config: set experiment.seed in it (every process of a sweep expands the same plan)"
        ));
    }
    let shard = cli.shard.as_deref().map(Shard::parse).transpose()?;
    if cli.slurm {
        // Checked before anything is created or submitted.
        ntk_dynamics::pipeline::slurm::find_sbatch()?;
    }
    let sw = sweep::expand(text, Some(path))?;
    print_notes(&sw.notes, cli.quiet);
    let config_dir = ntk_dynamics::config::paths::base_of(Some(path));
    let out = cli.out.as_deref();
    if (shard.is_some() || cli.slurm) && out.is_none() {
        anyhow::bail!(Error::value(
            if cli.slurm { "--slurm" } else { "--shard" },
            "(no --out)",
            "--out DIR: the sweep directory every task writes into"
        ));
    }
    if cli.slurm {
        let o = out.unwrap_or(Path::new("."));
        // The paths the batch script will hold, checked before the directory is created.
        let abs = std::path::absolute(o).unwrap_or_else(|_| o.to_path_buf());
        ntk_dynamics::pipeline::slurm::script_path("--out", &abs, false)?;
        ntk_dynamics::pipeline::slurm::script_path("--out", &abs, true)?;
        ntk_dynamics::pipeline::slurm::check_shared(o)?;
    }
    let seconds = psweep::preflight(&sw, shard, out, limits(cli))?;
    if seconds > run::memory::LONG_RUN_SECONDS && !cli.quiet {
        eprintln!(
            "note: {} points, estimated ~{} one after the other at the reference machine's rates (`--estimate` lists them)",
            sw.points.len(),
            run::memory::duration(seconds)
        );
    }
    let dir = psweep::prepare_dir(&sw, text, &config_dir, out, shard.is_some() || cli.slurm)?;
    if cli.slurm {
        return submit_slurm(cli, &sw, &dir);
    }
    let quiet = cli.quiet;
    let shard = shard.unwrap_or(Shard::ALL);
    let outcome = psweep::run_and_collect(
        &sw,
        &dir,
        shard,
        interrupt_flag(),
        limits(cli),
        &|done, total, row| {
            if !quiet {
                print_sweep_progress(done, total, row);
            }
        },
    )?;
    let (interrupted, failed) = (outcome.interrupted, outcome.failed());
    match &outcome.collected {
        None if !quiet => println!(
            "shard {}/{}: {} point(s) run, {failed} not completed; collect with `experiment --collect {}`",
            shard.index,
            shard.count,
            outcome.rows.len(),
            dir.display()
        ),
        Some(c) if !quiet => print_collected(c, &dir),
        _ => {}
    }
    if outcome.collected.is_some() && failed > 0 && !interrupted {
        // As --collect: a sweep with a point that did not complete is not a success.
        eprintln!("error: {failed} point(s) of the sweep did not complete (see sweep.md)");
    }
    Ok(sweep_exit_code(interrupted, failed))
}

/// A sweep's (or shard's) exit status: 130 when interrupted, 1 when a point did not complete.
fn sweep_exit_code(interrupted: bool, failed: usize) -> ExitCode {
    if interrupted {
        ExitCode::from(130)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One line on a finished sweep point.
fn print_sweep_progress(done: usize, total: usize, row: &ntk_dynamics::record::sweep::SweepRow) {
    eprintln!(
        "[sweep] {done}/{total} {} seed {}: {} ({:.1} s)",
        row.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        row.seed,
        row.phase
            .map(|p| p.name().to_string())
            .unwrap_or_else(|| row.status.to_string()),
        row.wall_s
    );
}

/// Submits the sweep in `dir` as a Slurm array; with --wait, collects when it ends.
fn submit_slurm(cli: &Cli, sw: &sweep::Sweep, dir: &Path) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::{slurm, sweep as psweep};
    let pending = psweep::pending(sw, dir, psweep::Shard::ALL)?;
    if pending.is_empty() {
        if !cli.quiet {
            println!(
                "every point of {} is completed; nothing submitted",
                dir.display()
            );
        }
        return collect(dir, cli.quiet);
    }
    let (id, status) = slurm::submit(sw, dir, cli.wait)?;
    if !cli.quiet {
        println!(
            "submitted array job {id}: {} task(s) for {} point(s) to run ({}); batch script {}",
            slurm::task_count(sw),
            pending.len(),
            dir.display(),
            dir.join(slurm::SLURM_DIR).join("sweep.sbatch").display()
        );
    }
    if !cli.wait {
        if !cli.quiet {
            println!(
                "collect when it has ended: experiment --collect {}",
                dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !cli.quiet {
        println!("array job {id} ended (sbatch exit {status:?})");
    }
    collect(dir, cli.quiet)
}

/// Collects a sweep directory (see `--collect`); exit 1 while a point is not completed.
fn collect(dir: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::{slurm, sweep as psweep};
    let subs = slurm::read_submissions(dir)?;
    let states = subs
        .job_ids
        .last()
        .map(|id| slurm::task_states(id))
        .unwrap_or_default();
    let tasks = subs.tasks.max(1);
    let reason = |i: usize| match states.iter().find(|t| t.task == i % tasks) {
        Some(t) => t.describe(),
        None if subs.job_ids.is_empty() => "not run".to_string(),
        None => format!(
            "not run (Slurm task {} of array job {} is no longer known to scontrol)",
            i % tasks,
            subs.job_ids.last().cloned().unwrap_or_default()
        ),
    };
    let mut extra = serde_json::Map::new();
    if !subs.job_ids.is_empty() {
        extra.insert(
            "slurm".into(),
            serde_json::json!({
                "job_id": subs.job_ids.last(),
                "job_ids": subs.job_ids,
                "tasks": subs.tasks,
                "task_states": states,
            }),
        );
    }
    let c = psweep::collect(dir, &reason, extra)?;
    if !quiet {
        print_collected(&c, dir);
    }
    let incomplete = c.incomplete();
    for (point, status) in &incomplete {
        eprintln!("not completed: {point}: {status}");
    }
    Ok(if incomplete.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_collected(c: &ntk_dynamics::pipeline::sweep::Collected, dir: &Path) {
    println!("sweep directory: {}", dir.display());
    for f in &c.fits {
        let interval = if f.ci95.is_finite() {
            format!("± {:.3} (95 %, {} runs)", f.ci95, f.n)
        } else {
            format!("({} runs; one seed: no interval)", f.n)
        };
        println!(
            "  {} {}: exponent {:.3} {interval}",
            f.figure.name(),
            f.group.clone().unwrap_or_default(),
            f.slope,
        );
    }
    println!(
        "{} of {} points completed; wall time {:.1} s (sum over points); report: {}",
        c.rows.iter().filter(|r| r.status.is_completed()).count(),
        c.rows.len(),
        c.rows.iter().map(|r| r.wall_s).sum::<f64>(),
        dir.join("sweep.md").display()
    );
}

/// The end-of-run summary: the report's final-figures and checks tables.
fn print_summary(r: &RunRecord, exp: &config::Experiment, dir: &Path) {
    println!("run directory: {}", dir.display());
    println!(
        "status: {:?}, step {}",
        r.status,
        r.last().map(|c| c.step).unwrap_or(0)
    );
    println!("{}", repro::final_figures_md(r));
    println!("\n{}", repro::checks_md(r, exp));
    println!("{}", report::checks::measurements_md(r));
    let total: f64 = r
        .timings
        .iter()
        .filter(|t| t.phase != run::EMPIRICAL_NTK_TIMING)
        .map(|t| t.seconds)
        .sum();
    println!(
        "wall time {total:.2} s; report: {}",
        dir.join("report.md").display()
    );
}

fn verify(dir: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    use ntk_dynamics::pipeline::verify::OLDER_FIGURES;
    use ntk_dynamics::report::verify::Verdict;
    let progress = CliProgress {
        quiet,
        tty: std::io::stderr().is_terminal(),
        bar: Default::default(),
    };
    // --force is refused with --verify: a reproduction runs under the checks.
    let opts = RunOptions {
        interrupt: Some(interrupt_flag()),
        progress: &progress,
        limits: run::LimitPolicy::Refuse,
    };
    let out = pipeline::verify::verify(dir, &opts)?;
    print_notes(&out.notes, quiet);
    let i = &out.integrity;
    println!(
        "integrity: {} file(s) match their recorded SHA-256{}",
        i.matching,
        if i.ok() { "" } else { "; NOT INTACT:" }
    );
    for (what, list) in [
        ("changed", &i.changed),
        ("missing", &i.missing),
        ("extra", &i.extra),
    ] {
        for f in list {
            println!("  {what:<8} {f}");
        }
    }
    if !out.input_changes.is_empty() {
        for c in &out.input_changes {
            println!("{c}");
        }
        println!(
            "NOT reproduced: the input data differ from the recorded run's (nothing was re-run)"
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some((then, now)) = &out.fingerprints {
        println!(
            "reproduction on a different machine or build fingerprint (recorded: {}, {} threads, {}, numerics {}; here: {}, {} threads, {}, numerics {}): numerical comparison (accuracies and agreements, argmax counts that flip on near-tied outputs, are shown but not judged)",
            then.cpu,
            then.threads,
            then.isa.join(" "),
            then.numerics,
            now.cpu,
            now.threads,
            now.isa.join(" "),
            now.numerics
        );
    } else {
        println!("reproduction on the same machine fingerprint: bitwise comparison");
    }
    for (name, v) in &out.files {
        match v {
            Verdict::Identical => println!("  identical        {name}"),
            Verdict::WithinTolerance(w) => println!(
                "  within tolerance {name}: largest |Δ| {:.3e} at `{}`, largest relative {:.3e} at `{}`",
                w.abs, w.abs_at, w.rel, w.rel_at
            ),
            Verdict::Mismatch(m) => println!("  MISMATCH         {name}: {m}"),
            Verdict::NotJudged(m) => println!("  not judged       {name}: {m}"),
        }
    }
    if out.interrupted {
        println!(
            "interrupted: the reproduction did not finish (its temporary directory was removed)"
        );
        return Ok(ExitCode::from(130));
    }
    let older = if out.older_figures() {
        " (its figures, drawn by an earlier figure style, not compared)"
    } else {
        ""
    };
    println!(
        "{}{}",
        if !out.ok() {
            "NOT reproduced"
        } else if out.bitwise() {
            "reproduced: bitwise identical"
        } else if out
            .files
            .iter()
            .any(|(n, v)| matches!(v, Verdict::NotJudged(_)) && n != OLDER_FIGURES)
        {
            "reproduced: within the tolerances this build sets for the config (the same as recorded); figures compared by size, ink and gross difference only (not judged pixel by pixel across machines)"
        } else {
            "reproduced: within the tolerances this build sets for the config (the same as recorded)"
        },
        if out.ok() { older } else { "" }
    );
    Ok(if out.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
