//! `experiment`: runs one ntk-dynamics experiment from a TOML config (thin CLI over the library).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ntk_dynamics::config::{self, sweep};
use ntk_dynamics::record::{RunRecord, RunStatus};
use ntk_dynamics::report::{self, io, repro};
use ntk_dynamics::run::{self, Progress, RunOptions};
use ntk_dynamics::{data, pipeline, Error};

// Large tensors are allocated and freed every step; mimalloc keeps them instead of returning
// them to the OS (glibc's malloc spent ~35% of the run in page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train a network, its linearization and the NTK kernel solution side by side.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Example:\n  cargo run --release --bin experiment -- experiments/wide_mlp.toml\n  experiment experiments/wide_mlp.toml --seed 3 --out /tmp/run1\n  experiment --verify results/wide_mlp/<run id>\n\nExit codes: 0 success, 1 failure (or --verify mismatch), 2 bad config or data, 130 interrupted."
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
    #[arg(long)]
    force: bool,
    /// Re-run the config recorded in a run directory and compare its metrics files' hashes.
    #[arg(long, value_name = "RUN_DIR")]
    verify: Option<PathBuf>,
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
    let cli = Cli::parse();
    match real_main(&cli) {
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

fn real_main(cli: &Cli) -> anyhow::Result<ExitCode> {
    if cli.force {
        run::memory::FORCE.store(true, Ordering::SeqCst);
    }
    if let Some(dir) = &cli.verify {
        return verify(dir, cli.quiet);
    }
    let path = cli
        .config
        .as_ref()
        .context("a CONFIG file is required (see --help)")?;
    let text = config::read_config(path)?;
    if sweep::is_sweep(&text) {
        return run_sweep(cli, path, &text);
    }
    let mut exp = config::parse_str(&text, Some(path))?;
    if let Some(seed) = cli.seed {
        exp.seed = seed;
    }
    let progress = CliProgress {
        quiet: cli.quiet,
        tty: std::io::stderr().is_terminal(),
        bar: Default::default(),
    };
    let interrupt = interrupt_flag();
    let (record, dir) = run_into(&exp, cli.out.as_deref(), &progress, Some(interrupt))?;
    if !cli.quiet {
        print_summary(&record, &exp, &dir);
    }
    Ok(if record.status == RunStatus::Interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Validates data, creates the run directory, runs and writes every output.
fn run_into(
    exp: &config::Experiment,
    out: Option<&Path>,
    progress: &dyn Progress,
    interrupt: Option<Arc<AtomicBool>>,
) -> anyhow::Result<(RunRecord, PathBuf)> {
    Ok(pipeline::run_into(
        exp,
        out,
        &RunOptions {
            interrupt,
            progress,
        },
    )?)
}

fn interrupt_flag() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: stop at once (run directories keep their INCOMPLETE marker).
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping at the next step boundary (again to abort)");
    });
    interrupt
}

/// Runs every point of a sweep config into one sweep directory.
fn run_sweep(cli: &Cli, path: &Path, text: &str) -> anyhow::Result<ExitCode> {
    let mut sw = sweep::expand(text, Some(path))?;
    if let Some(seed) = cli.seed {
        for p in &mut sw.points {
            p.seed = seed + (p.seed - sw.base.seed);
            p.experiment.seed = p.seed;
        }
    }
    // Check every point's data and footprint before creating anything.
    for p in &sw.points {
        run::preflight_config(&p.experiment)?;
        let ds = data::load(&p.experiment.data, p.experiment.seed)?;
        run::preflight(&p.experiment, &ds)?;
    }
    let dir = io::create_sweep_dir(&sw.base.outputs.dir, &sw.base.name, cli.out.as_deref())?;
    io::write_atomic(&dir.join("sweep.toml"), text.as_bytes())?;
    let interrupt = interrupt_flag();
    let quiet = cli.quiet;
    let rows = pipeline::sweep::run(&sw, &dir, Some(interrupt.clone()), &|done, total, row| {
        if !quiet {
            eprintln!(
                "[sweep] {done}/{total} {} seed {}: {} ({:.1} s)",
                row.values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                row.seed,
                row.phase.map(|p| p.name()).unwrap_or(&row.status),
                row.wall_s
            );
        }
    });
    let fits = report::sweep::write_sweep(&dir, &sw, &rows)?;
    if !quiet {
        println!("sweep directory: {}", dir.display());
        for f in &fits {
            println!(
                "  {} {}: exponent {:.3} ± {:.3} (95 %, {} runs)",
                f.figure,
                f.group.clone().unwrap_or_default(),
                f.slope,
                f.ci95,
                f.n
            );
        }
        println!(
            "wall time {:.1} s (sum over points); report: {}",
            rows.iter().map(|r| r.wall_s).sum::<f64>(),
            dir.join("sweep.md").display()
        );
    }
    Ok(if interrupt.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
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
    use ntk_dynamics::report::verify::Verdict;
    let progress = CliProgress {
        quiet,
        tty: std::io::stderr().is_terminal(),
        bar: Default::default(),
    };
    let opts = RunOptions {
        interrupt: Some(interrupt_flag()),
        progress: &progress,
    };
    let out = pipeline::verify::verify(dir, &opts)?;
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
    if let Some((then, now)) = &out.fingerprints {
        println!(
            "reproduction on a different machine fingerprint (recorded: {}, {} threads, {}; here: {}, {} threads, {}): numerical comparison",
            then.cpu,
            then.threads,
            then.isa.join(" "),
            now.cpu,
            now.threads,
            now.isa.join(" ")
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
        }
    }
    if out.interrupted {
        println!(
            "interrupted: the reproduction did not finish (its temporary directory was removed)"
        );
        return Ok(ExitCode::from(130));
    }
    println!(
        "{}",
        if !out.ok() {
            "NOT reproduced"
        } else if out.bitwise() {
            "reproduced: bitwise identical"
        } else {
            "reproduced: within the recorded tolerances"
        }
    );
    Ok(if out.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
