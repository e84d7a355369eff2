//! A sweep as a Slurm job array: the batch script (`slurm/sweep.sbatch`, one array task per
//! shard, each running `experiment <dir>/sweep.toml --out <dir> --shard $SLURM_ARRAY_TASK_ID/N`
//! with this binary), its submission with `sbatch`, and what Slurm recorded of each task
//! (`scontrol show job`). The sweep directory must be on a filesystem every node sees.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::config::schema::SlurmSpec;
use crate::config::sweep::Sweep;
use crate::report::io;
use crate::{Error, Result};

/// Where the batch script, task logs and the submission record live.
pub const SLURM_DIR: &str = "slurm";

/// The submissions of a sweep (`slurm/jobs.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Submissions {
    /// Array job ids, oldest first.
    pub job_ids: Vec<String>,
    /// Array size (shards).
    pub tasks: usize,
}

/// Number of array tasks: `[slurm] tasks`, at most one per point.
pub fn task_count(sweep: &Sweep) -> usize {
    let points = sweep.points.len().max(1);
    sweep.slurm.tasks.unwrap_or(points).clamp(1, points)
}

/// A string as one single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A path as it may be written into a batch script: refused when it holds a control character
/// (a newline would end a `#` comment or an `#SBATCH` line and run the rest as a shell command
/// in every task), and — in an `#SBATCH` directive (`directive`), which sbatch reads without
/// shell quoting — a space, a quote, a backslash or `%` (sbatch's file-name pattern character).
pub fn script_path(key: &str, p: &Path, directive: bool) -> Result<String> {
    let s = p.display().to_string();
    let bad_char = s
        .chars()
        .find(|c| c.is_control() || (directive && (c.is_whitespace() || "'\"\\%".contains(*c))));
    match bad_char {
        None => Ok(s),
        Some(c) => Err(Error::value(
            key,
            format!("{s:?}"),
            format!(
                "a path without {} ({c:?} found): it is written into the Slurm batch script{}; choose a plainer directory",
                if directive {
                    "control characters, spaces, quotes, backslashes or %"
                } else {
                    "control characters (newlines, tabs, …)"
                },
                if directive { " as an #SBATCH directive, which is not shell-quoted" } else { "" }
            ),
        )),
    }
}

/// The batch script of a sweep in `dir` run by the binary `exe` (paths checked with
/// [`script_path`]).
pub fn sbatch_script(sweep: &Sweep, dir: &Path, exe: &Path) -> Result<String> {
    // Tasks start in whatever directory Slurm gives them: every path is absolute.
    let absolute = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let dir = absolute.as_path();
    let dir_text = script_path("--out", dir, false)?;
    let log = script_path("--out", &dir.join(SLURM_DIR).join("task-%A_%a.log"), false)?;
    script_path("--out", dir, true)?;
    let exe_text = script_path("<this binary>", exe, false)?;
    let spec: &SlurmSpec = &sweep.slurm;
    let n = task_count(sweep);
    let throttle = spec
        .max_parallel
        .map(|m| format!("%{m}"))
        .unwrap_or_default();
    let mut s = format!(
        "#!/bin/bash\n\
         # Written by ntk-dynamics for the sweep `{name}`: {points} points in {n} array tasks;\n\
         # task I runs the points whose index ≡ I (mod {n}) that are not completed yet, each into\n\
         # its own directory under {dir}. That directory must be on a filesystem every node sees.\n\
         #SBATCH --job-name=ntk-{name}\n\
         #SBATCH --array=0-{last}{throttle}\n\
         #SBATCH --output={log}\n",
        name = sweep.base.name,
        points = sweep.points.len(),
        dir = dir_text,
        last = n - 1,
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
    s += &format!(
        "set -eu\nexec {exe} {plan} --out {dir} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --quiet\n",
        exe = quote(&exe_text),
        plan = quote(&dir.join(super::sweep::PLAN_FILE).display().to_string()),
        dir = quote(&dir_text),
    );
    Ok(s)
}

/// `sbatch` on the PATH, or a clear error (nothing is submitted or written).
pub fn find_sbatch() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sbatch"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::value("--slurm", "sbatch", "sbatch on the PATH (Slurm's client commands are not installed or not on PATH here)"))
}

/// Refuses sweep directories the compute nodes cannot share: memory filesystems (tmpfs, ramfs),
/// which are local to each node.
pub fn check_shared(dir: &Path) -> Result<()> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let probe = if dir.exists() {
        dir.to_path_buf()
    } else {
        dir.ancestors()
            .find(|a| a.exists())
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    };
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::value("--out", probe.display(), "a path without NUL bytes"))?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)]
    let kind = st.f_type as i64;
    if rc == 0 && (kind == TMPFS_MAGIC || kind == RAMFS_MAGIC) {
        return Err(Error::OutputDir {
            path: dir.to_path_buf(),
            message: "is on a memory filesystem (tmpfs/ramfs), which each node has for itself; Slurm tasks on other nodes would not see it. Put --out on a shared filesystem".into(),
        });
    }
    Ok(())
}

/// Writes the batch script and submits it; returns the array job id. With `wait`, `sbatch
/// --wait` blocks until every task has ended (the id is recorded in `slurm/jobs.json` as soon
/// as Slurm gives it). Returns the id and `sbatch`'s exit status.
pub fn submit(sweep: &Sweep, dir: &Path, wait: bool) -> Result<(String, Option<i32>)> {
    let exe = std::env::current_exe().map_err(|e| Error::io(Path::new("<this binary>"), e))?;
    let script = dir.join(SLURM_DIR).join("sweep.sbatch");
    io::write_atomic(&script, sbatch_script(sweep, dir, &exe)?.as_bytes())?;
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if wait {
        cmd.arg("--wait");
    }
    let mut child = cmd
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io(Path::new("sbatch"), e))?;
    let stdout = child.stdout.take().ok_or_else(|| {
        Error::io(
            Path::new("sbatch"),
            std::io::Error::other("no standard output"),
        )
    })?;
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| Error::io(Path::new("sbatch"), e))?;
    // `--parsable` prints `jobid` or `jobid;cluster`; a wrapper that ignores it may print
    // sbatch's usual "Submitted batch job <jobid>".
    let trimmed = first.trim();
    let id = trimmed
        .strip_prefix("Submitted batch job ")
        .unwrap_or(trimmed)
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
        let mut subs = read_submissions(dir)?;
        subs.job_ids.push(id.clone());
        subs.tasks = task_count(sweep);
        io::write_atomic(
            &dir.join(SLURM_DIR).join("jobs.json"),
            (serde_json::to_string_pretty(&subs).unwrap_or_default() + "\n").as_bytes(),
        )?;
    }
    let status = child
        .wait()
        .map_err(|e| Error::io(Path::new("sbatch"), e))?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::OutputDir {
            path: dir.to_path_buf(),
            message: format!(
                "sbatch gave no job id (exit status {}, output {first:?}): the array may not have been submitted; check `squeue` before submitting again",
                status
                    .code()
                    .map_or("none (killed by a signal)".to_string(), |c| c.to_string())
            ),
        });
    }
    Ok((id, status.code()))
}

/// The recorded submissions of a sweep directory (none: default).
pub fn read_submissions(dir: &Path) -> Result<Submissions> {
    let p = dir.join(SLURM_DIR).join("jobs.json");
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| Error::io(&p, std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Submissions::default()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// What Slurm recorded of one array task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskState {
    /// `ArrayTaskId`.
    pub task: usize,
    /// `JobState` (COMPLETED, FAILED, CANCELLED, TIMEOUT, RUNNING, PENDING, …).
    pub state: String,
    /// `Reason`.
    pub reason: String,
    /// `ExitCode` (`code:signal`).
    pub exit_code: String,
}

impl TaskState {
    /// One line for reports.
    pub fn describe(&self) -> String {
        format!(
            "Slurm task {}: {} (reason {}, exit code {})",
            self.task, self.state, self.reason, self.exit_code
        )
    }
}

/// Task ids of an `ArrayTaskId` value: `3`, or pending ranges such as `1-3,5%1`.
fn task_ids(v: &str) -> Vec<usize> {
    let v = v.split('%').next().unwrap_or_default();
    v.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if a <= b => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => part.parse().ok().into_iter().collect(),
        })
        .collect()
}

/// Parses `scontrol show job <id>` output: one state per array task (a pending range record
/// stands for each of its tasks).
pub fn parse_scontrol(text: &str) -> Vec<TaskState> {
    text.split("\n\n")
        .flat_map(|record| {
            let field = |k: &str| {
                record
                    .split_whitespace()
                    .find_map(|t| t.strip_prefix(&format!("{k}=")))
                    .map(str::to_string)
            };
            let ids = field("ArrayTaskId")
                .map(|v| task_ids(&v))
                .unwrap_or_default();
            ids.into_iter()
                .map(|task| TaskState {
                    task,
                    state: field("JobState").unwrap_or_default(),
                    reason: field("Reason").unwrap_or_default(),
                    exit_code: field("ExitCode").unwrap_or_default(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The task states of array job `id` as Slurm reports them now (empty when `scontrol` is not
/// available or the job is no longer known).
pub fn task_states(id: &str) -> Vec<TaskState> {
    Command::new("scontrol")
        .args(["show", "job", id])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_scontrol(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_records_parse_per_task() {
        let text = "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=x\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=3:0\n\nJobId=11 ArrayJobId=10 ArrayTaskId=1 JobName=x\n   JobState=CANCELLED Reason=None\n   ExitCode=0:15\n";
        let t = parse_scontrol(text);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].task, t[0].state.as_str(), t[0].exit_code.as_str()),
            (2, "FAILED", "3:0")
        );
        assert_eq!((t[1].task, t[1].state.as_str()), (1, "CANCELLED"));
        let pending = parse_scontrol("JobId=10 ArrayJobId=10 ArrayTaskId=1-3%1 JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0\n");
        assert_eq!(
            pending.iter().map(|t| t.task).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(quote("a'b"), "'a'\\''b'");
    }
}
