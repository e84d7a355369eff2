//! `--verify RUN_DIR`: (1) integrity — every file on disk against the hashes recorded in
//! `report.json`; (2) reproduction — the recorded config re-run into a temporary directory;
//! (3) comparison — of every deterministic file the reproduction wrote or the directory holds
//! (a file missing on either side fails), of `report.json` and `report.md` without their
//! wall times, machine fields and paths, and of the recorded tolerances with this binary's:
//! bitwise where the recorded machine fingerprint matches this machine's, numerically within
//! this binary's tolerances for the config otherwise. The directory's description of itself
//! is compared, never believed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config;
use crate::report::repro;
use crate::report::verify::{
    compare_file, integrity, network_rtol, Fingerprint, Integrity, Verdict,
};
use crate::report::verify_report as report_check;
use crate::run::RunOptions;
use crate::{Error, Result};

/// What `--verify` found.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    /// The files on disk against their recorded hashes.
    pub integrity: Integrity,
    /// Whether the fingerprints match (so bitwise identity is required).
    pub bitwise_expected: bool,
    /// The recorded fingerprint and this machine's, when they differ.
    pub fingerprints: Option<(Fingerprint, Fingerprint)>,
    /// Every compared file and its verdict.
    pub files: Vec<(String, Verdict)>,
    /// Whether the reproduction was interrupted.
    pub interrupted: bool,
    /// How the recorded config's paths were read (a run recorded before relative paths
    /// followed the config file).
    pub notes: Vec<String>,
    /// Input files that are missing or differ from the recorded ones (then nothing was re-run).
    pub input_changes: Vec<String>,
}

impl VerifyOutcome {
    /// Integrity holds and every compared file is identical or within tolerance.
    pub fn ok(&self) -> bool {
        !self.interrupted
            && self.input_changes.is_empty()
            && self.integrity.ok()
            && self
                .files
                .iter()
                .all(|(_, v)| !matches!(v, Verdict::Mismatch(_)))
    }

    /// Whether every compared file is byte-identical (figures of an older figure style, which
    /// are not compared, aside).
    pub fn bitwise(&self) -> bool {
        self.files
            .iter()
            .filter(|(n, _)| n != OLDER_FIGURES)
            .all(|(_, v)| *v == Verdict::Identical)
    }

    /// Whether the figures were left out as drawn by an older figure style.
    pub fn older_figures(&self) -> bool {
        self.files.iter().any(|(n, _)| n == OLDER_FIGURES)
    }
}

/// The files of `dir` that `--verify` compares (deterministic outputs), with `kernels/…`.
fn verified_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut all = Vec::new();
    crate::report::verify::list_files(dir, "", &mut all)?;
    Ok(all
        .into_iter()
        .filter(|n| repro::is_verified_file(n))
        .collect())
}

/// A temporary directory removed when dropped (also on errors and interruption).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Verifies the run in `dir` (see the module doc).
pub fn verify(dir: &Path, opts: &RunOptions<'_>) -> Result<VerifyOutcome> {
    let not_a_run = |m: &str| Error::NotARun {
        path: dir.to_path_buf(),
        message: m.into(),
    };
    if !dir.is_dir() {
        return Err(not_a_run("no such directory"));
    }
    if !dir.join("config.toml").is_file() || !dir.join("report.json").is_file() {
        return Err(not_a_run("config.toml and report.json are required"));
    }
    let report = repro::read_report(dir)?;
    let recorded = repro::recorded_hashes(&report)?;
    let integrity = integrity(dir, &recorded)?;
    let (exp, mut notes) = config::paths::load_recorded(dir)?;
    let input_changes = input_changes(&report, &exp, &mut notes);
    if !input_changes.is_empty() {
        return Ok(VerifyOutcome {
            integrity,
            bitwise_expected: false,
            fingerprints: None,
            files: Vec::new(),
            interrupted: false,
            notes,
            input_changes,
        });
    }
    let here = Fingerprint::detect(&exp);
    let then: Option<Fingerprint> = report
        .get("fingerprint")
        .and_then(|f| serde_json::from_value(f.clone()).ok());
    let bitwise_expected = then.as_ref() == Some(&here);
    let tmp = TempDir(std::env::temp_dir().join(format!(
        "ntk-verify-{}-{}",
        std::process::id(),
        crate::report::io::utc_stamp()
    )));
    let (record, _) = super::run_into(&exp, Some(&tmp.0), opts)?;
    let interrupted = record.status == crate::record::RunStatus::Interrupted;
    // What the directory should hold and how closely is what this binary says for this
    // config: the files the reproduction wrote, and this binary's tolerance policy; the
    // directory's own report.json is compared, never believed.
    let tolerances = crate::report::verify::tolerances(&record, &exp);
    let rtol = network_rtol(exp.model.precision);
    let figures = FigureComparison {
        recorded_style: repro::recorded_figure_style(&report),
    };
    let files = compare_dirs(dir, &tmp.0, &tolerances, rtol, bitwise_expected, figures)?;
    Ok(VerifyOutcome {
        integrity,
        bitwise_expected,
        fingerprints: (!bitwise_expected).then(|| (then.unwrap_or_else(|| here.clone()), here)),
        files,
        interrupted,
        notes,
        input_changes,
    })
}

/// The name under which `--verify` reports figures drawn by another figure style (not compared).
pub const OLDER_FIGURES: &str = "figures (*.png, *.svg)";

/// Whether a run's figures can be compared with the reproduction's: only when the recorded run
/// drew them with this build's figure code (its figure style). A figure is a drawing of numbers
/// that are compared themselves; an older drawing of the same numbers is not a mismatch.
#[derive(Debug, Clone, Copy)]
struct FigureComparison {
    recorded_style: u32,
}

impl FigureComparison {
    fn comparable(self) -> bool {
        self.recorded_style == crate::report::plot::FIGURE_STYLE
    }

    /// A figure file (PNG or SVG), or the figure data (style 3 on), left out when the styles
    /// differ.
    fn skips(self, name: &str) -> bool {
        !self.comparable()
            && (name.ends_with(".png")
                || name.ends_with(".svg")
                || name == crate::report::figure_data::FIGURE_DATA)
    }

    /// The verdict on the figures when they are not compared.
    fn verdict(self) -> Option<(String, Verdict)> {
        (!self.comparable()).then(|| {
            (
                OLDER_FIGURES.to_string(),
                Verdict::NotJudged(format!(
                    "drawn by figure style {}, this build draws style {}: not compared (the numbers they show are); re-running the config draws them anew",
                    self.recorded_style,
                    crate::report::plot::FIGURE_STYLE
                )),
            )
        })
    }
}

/// Every file of the run directory `dir` against the reproduction's in `reproduced`: the
/// deterministic files within `tolerances` (bitwise when `bitwise`), the figures by
/// [`crate::report::figure_check::compare_png`], files present in only one of the two as
/// mismatches, and the reports re-derived.
fn compare_dirs(
    dir: &Path,
    reproduced: &Path,
    tolerances: &BTreeMap<String, BTreeMap<String, crate::report::verify::Tolerance>>,
    rtol: f64,
    bitwise_expected: bool,
    figures: FigureComparison,
) -> Result<Vec<(String, Verdict)>> {
    let mut names: BTreeSet<String> = verified_files(dir)?;
    names.extend(verified_files(reproduced)?);
    let mut files = Vec::new();
    for name in &names {
        if figures.skips(name) {
            continue;
        }
        if name == "config.toml" {
            files.push((name.clone(), same_config(dir, reproduced)));
            continue;
        }
        let verdict = match (
            std::fs::read(dir.join(name)),
            std::fs::read(reproduced.join(name)),
        ) {
            (Ok(a), Ok(b)) => compare_file(name, &a, &b, tolerances, rtol, bitwise_expected),
            (Err(_), _) => {
                Verdict::Mismatch("missing from the run directory (this config writes it)".into())
            }
            (_, Err(_)) => Verdict::Mismatch(
                "not written by this config and build: a file the run did not produce".into(),
            ),
        };
        files.push((name.clone(), verdict));
    }
    // Every other file must be present exactly when the reproduction wrote it: a deleted
    // figure or an added file fails. Figures present in both are compared pixel by pixel.
    let listed = |d: &Path| -> Result<BTreeSet<String>> {
        let mut all = Vec::new();
        crate::report::verify::list_files(d, "", &mut all)?;
        Ok(all.into_iter().collect())
    };
    let (present, written) = (listed(dir)?, listed(reproduced)?);
    for name in present.intersection(&written) {
        if names.contains(name) || !name.ends_with(".png") || figures.skips(name) {
            continue;
        }
        let verdict = match (
            std::fs::read(dir.join(name)),
            std::fs::read(reproduced.join(name)),
        ) {
            (Ok(a), Ok(b)) => crate::report::figure_check::compare_png(&a, &b, bitwise_expected),
            (Err(e), _) | (_, Err(e)) => Verdict::Mismatch(format!("cannot be read ({e})")),
        };
        files.push((name.clone(), verdict));
    }
    for name in present.symmetric_difference(&written) {
        if names.contains(name)
            || name == "report.json"
            || name == "report.md"
            || name == repro::REPLOT_RECORD
            || figures.skips(name)
        {
            continue;
        }
        files.push((
            name.clone(),
            Verdict::Mismatch(if written.contains(name) {
                "missing from the run directory (this config writes it)".into()
            } else {
                "not written by this config and build: a file the run did not produce".into()
            }),
        ));
    }
    files.push((
        "report.json".into(),
        report_check::compare_report_json(dir, reproduced, tolerances, rtol, bitwise_expected),
    ));
    files.push((
        "report.md".into(),
        report_check::compare_report_md(dir, reproduced, bitwise_expected, figures.comparable()),
    ));
    files.extend(figures.verdict());
    Ok(files)
}

/// The recorded input files (`report.json`'s `inputs`) against the files the recorded config
/// reads now: one line per file that is missing or differs.
pub(super) fn input_changes(
    report: &serde_json::Value,
    exp: &config::Experiment,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let Some(recorded) = report.get("inputs").and_then(|v| {
        serde_json::from_value::<BTreeMap<String, repro::InputRecord>>(v.clone()).ok()
    }) else {
        if !exp.data.source.input_files().is_empty() {
            notes.push("no input-file hashes recorded (a run recorded before they were): the input data are not checked".into());
        }
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (key, path) in exp.data.source.input_files() {
        let shown = path.display();
        let Some(then) = recorded.get(key) else {
            changes.push(format!(
                "input data changed: {shown} ({key} has no recorded hash)"
            ));
            continue;
        };
        match repro::file_digest(&path) {
            Err(e) => changes.push(format!("input data missing: {shown} ({key}: {e})")),
            Ok((sha, bytes)) if sha != then.sha256 || bytes != then.bytes => {
                changes.push(format!(
                    "input data changed: {shown} ({key}: recorded {} bytes, SHA-256 {}…; now {bytes} bytes, SHA-256 {}…)",
                    then.bytes,
                    &then.sha256[..then.sha256.len().min(12)],
                    &sha[..12]
                ))
            }
            Ok(_) => {}
        }
    }
    changes
}

/// The recorded and the reproduced `config.toml` compared as configs: each read with its paths
/// relative to its own directory, so the same files and settings are the same config wherever
/// the two directories are.
fn same_config(recorded: &Path, reproduced: &Path) -> Verdict {
    let read = |d: &Path| config::paths::load_recorded(d).map(|(e, _)| e.with_absolute_paths());
    match (read(recorded), read(reproduced)) {
        (Ok(a), Ok(b)) if a == b => Verdict::Identical,
        (Ok(_), Ok(_)) => Verdict::Mismatch("a different config (settings or files)".into()),
        (Err(e), _) | (_, Err(e)) => Verdict::Mismatch(format!("unreadable: {e}")),
    }
}
