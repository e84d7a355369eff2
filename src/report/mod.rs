//! Reporters: they consume records and write files. All file IO of the library lives here:
//! `io.rs` (run directories, the atomic write), [`tables`] (CSV/JSON/NPY contents), [`plot`]
//! (charts), [`repro`] (the reproducibility report and `--verify` hashes), `sweep.rs` (sweep
//! outputs).

pub mod checks;
pub(crate) mod figure_check;
pub mod figure_data;
pub(crate) mod io;
pub(crate) mod npy;
pub mod plot;
pub mod repro;
pub(crate) mod sweep;
pub mod tables;
pub mod verify;
pub(crate) mod verify_report;

use std::path::Path;

use crate::config::Experiment;
use crate::record::RunRecord;
use crate::report::plot::{ImageFormat, Plot};
use crate::Result;

/// Writes every output of a run into its (fresh) directory: data files, plots, then the report
/// with the hashes of everything before it (and the run's estimated resources, and its peak
/// memory as `measure_peak_rss_bytes` reads it once the figures are drawn);
/// finally removes the `INCOMPLETE` marker. Returns `(file, sha256)` pairs.
pub fn write_run(
    dir: &Path,
    record: &RunRecord,
    exp: &Experiment,
    footprint: &crate::record::Footprint,
    measure_peak_rss_bytes: fn() -> Option<u64>,
) -> Result<Vec<(String, String)>> {
    let mut hashes = Vec::new();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "checks".into(),
        serde_json::json!(checks::checks(record, exp)),
    );
    extra.insert(
        "measurements".into(),
        serde_json::json!(checks::measurements(record)),
    );
    let with_predictions = exp.outputs.predictions.csv();
    let mut files = tables::data_files(record, extra, with_predictions);
    files.push((
        figure_data::FIGURE_DATA.to_string(),
        figure_data::encode(record, with_predictions),
    ));
    for (name, bytes) in files {
        io::write_atomic(&dir.join(&name), &bytes)?;
        hashes.push((name, repro::sha256_hex(&bytes)));
    }
    let mut plots = Vec::new();
    for (name, bytes) in render_plots(
        dir,
        &format!("{}: all figures", record.name),
        plot::run_charts::figures(record),
        &exp.outputs.formats,
    )? {
        io::write_atomic(&dir.join(&name), &bytes)?;
        hashes.push((name.clone(), repro::sha256_hex(&bytes)));
        plots.push(name);
    }
    let env = repro::Environment::detect();
    let mut json = repro::report_json(record, exp, &env, &hashes);
    let inputs = repro::input_records(exp, dir)?;
    json["inputs"] = serde_json::json!(inputs);
    json["resources"] = serde_json::json!({
        "estimated_peak_bytes": footprint.peak_bytes,
        "measured_peak_rss_bytes": measure_peak_rss_bytes(),
        "estimated_disk_bytes": footprint.disk_bytes,
        "estimated_seconds": footprint.seconds,
        "estimated_phase_seconds": footprint.phases.iter().map(|(p, s)| (p.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "estimate_parts": footprint.parts,
    });
    io::write_atomic(
        &dir.join("report.json"),
        (serde_json::to_string_pretty(&json).unwrap_or_default() + "\n").as_bytes(),
    )?;
    io::write_atomic(
        &dir.join("report.md"),
        repro::report_md(record, exp, &env, &hashes, &plots, &inputs).as_bytes(),
    )?;
    io::mark_complete(dir)?;
    Ok(hashes)
}

/// Figures from which on a contact sheet (`figures.png`) is drawn.
pub const CONTACT_SHEET_MIN_FIGURES: usize = 3;

/// Every plot (under its file stem) in every requested format, plus `figures.png`, the contact
/// sheet of the PNGs (what a person opens first) when there are at least
/// [`CONTACT_SHEET_MIN_FIGURES`] of them, as `(file name, bytes)`.
pub fn render_plots(
    dir: &Path,
    title: &str,
    figures: Vec<(String, Plot)>,
    formats: &[ImageFormat],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (stem, fig) in &figures {
        for &f in formats {
            let name = format!("{stem}.{}", f.extension());
            let bytes = fig.render(&dir.join(&name), f)?;
            out.push((name, bytes));
        }
    }
    let pngs: Vec<(String, Vec<u8>)> = out
        .iter()
        .filter(|(n, _)| n.ends_with(".png"))
        .cloned()
        .collect();
    // A contact sheet of one or two figures only repeats them at a smaller size.
    if pngs.len() >= CONTACT_SHEET_MIN_FIGURES {
        let sheet = plot::contact_sheet(&dir.join("figures.png"), title, &pngs)?;
        out.push(("figures.png".into(), sheet));
    }
    Ok(out)
}
