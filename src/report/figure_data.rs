//! `figure_data.ron`: the numbers behind a run's figures, so that `experiment --replot DIR`
//! redraws them without re-running anything.
//!
//! It holds the run's record (every checkpoint, the spectra, the probe kernels, the kernel
//! solutions, the ensemble's members and the text samples) in RON, which writes every float
//! as Rust's shortest round-trip text and keeps NaN, ±inf and `None` apart (JSON cannot).
//! Left out: wall times (they differ between any two runs, so the file stays deterministic),
//! the kernel tracks' t = ∞ test predictions (no figure draws them; `summary.json` keeps their
//! loss and accuracy),
//! the data (read again from the recorded config, whose inputs are checked against their
//! recorded SHA-256) and the final output values when `predictions.csv` holds them (read back
//! from it). When that file is not written they are stored here, up to
//! [`MAX_STORED_OUTPUT_VALUES`]; beyond, they are not stored and the run's output figures are
//! redrawn only by running it again.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::{RunRecord, TrackOutputs};
use crate::{Error, Result};

/// File name of the figure data in a run directory.
pub const FIGURE_DATA: &str = "figure_data.ron";

/// Layout of the file; a build reads only its own layout.
pub const FIGURE_DATA_LAYOUT: u32 = 1;

/// Output values (tracks × points × K) stored in the figure data at most, when
/// `predictions.csv` is not written: about 4 MB of text.
pub const MAX_STORED_OUTPUT_VALUES: usize = 200_000;

/// Where a run's final output values are kept for its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputValues {
    /// In `predictions.csv`.
    PredictionsCsv,
    /// In the figure data itself.
    Stored,
    /// Nowhere: that many values, more than [`MAX_STORED_OUTPUT_VALUES`], without
    /// `predictions.csv`.
    NotStored(usize),
}

#[derive(Serialize)]
struct Stored<'a> {
    layout: u32,
    record: &'a RunRecord,
    outputs: Vec<TrackOutputs>,
    output_values: OutputValues,
}

#[derive(Deserialize)]
struct Loaded {
    layout: u32,
    record: RunRecord,
    outputs: Vec<TrackOutputs>,
    output_values: OutputValues,
}

/// The file's bytes for the record `r`; `in_predictions_csv` when `predictions.csv` holds the
/// output values (only each track's divergence step is stored then).
pub fn encode(r: &RunRecord, in_predictions_csv: bool) -> Vec<u8> {
    let n_values: usize = r
        .outputs
        .iter()
        .map(|o| o.train.len() + o.val.len() + o.test.len())
        .sum();
    let output_values = if in_predictions_csv {
        OutputValues::PredictionsCsv
    } else if n_values <= MAX_STORED_OUTPUT_VALUES {
        OutputValues::Stored
    } else {
        OutputValues::NotStored(n_values)
    };
    let outputs = r
        .outputs
        .iter()
        .map(|o| {
            if output_values != OutputValues::Stored {
                TrackOutputs {
                    track: o.track,
                    train: Vec::new(),
                    val: Vec::new(),
                    test: Vec::new(),
                    diverged_at_step: o.diverged_at_step,
                }
            } else {
                o.clone()
            }
        })
        .collect();
    let stored = Stored {
        layout: FIGURE_DATA_LAYOUT,
        record: r,
        outputs,
        output_values,
    };
    let pretty = ron::ser::PrettyConfig::new()
        .struct_names(false)
        .compact_arrays(true)
        .indentor(" ");
    // Every type in the record serialises (derived, no maps with non-string keys).
    let mut text = ron::ser::to_string_pretty(&stored, pretty).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

/// What a figure-data file holds.
pub struct FigureData {
    /// The record, its data, outputs and wall times empty.
    pub record: RunRecord,
    /// Every track's outputs; their values are empty unless stored here.
    pub outputs: Vec<TrackOutputs>,
    /// Where the output values are (see [`fill_outputs`] for `predictions.csv`).
    pub output_values: OutputValues,
}

/// The figure data stored in `path`.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<FigureData> {
    let bad = |message: String| Error::NotARun {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text ({e})")))?;
    let layout_only: std::result::Result<LayoutOnly, _> = ron::from_str(text);
    if let Ok(l) = layout_only {
        if l.layout != FIGURE_DATA_LAYOUT {
            return Err(bad(format!(
                "figure data of layout {}, this build reads layout {FIGURE_DATA_LAYOUT}: redraw it with the build that wrote it, or re-run the config",
                l.layout
            )));
        }
    }
    let loaded: Loaded = ron::from_str(text).map_err(|e| {
        bad(format!(
            "cannot be read as figure data ({e}); it is written by `experiment` and not meant to be edited"
        ))
    })?;
    debug_assert_eq!(loaded.layout, FIGURE_DATA_LAYOUT);
    Ok(FigureData {
        record: loaded.record,
        outputs: loaded.outputs,
        output_values: loaded.output_values,
    })
}

/// Just the layout number (ignores the rest).
#[derive(Deserialize)]
struct LayoutOnly {
    layout: u32,
}

/// Fills the output values of `outputs` (in the order `predictions.csv` writes its track
/// columns: `split,index,output,…,target,<one per track>`) from that file's `text`, for data
/// `data` (they give each split's size and K).
pub fn fill_outputs(
    path: &Path,
    text: &str,
    data: &crate::data::Dataset,
    outputs: &mut [TrackOutputs],
) -> Result<()> {
    let bad = |line: Option<usize>, message: String| Error::Data {
        path: path.to_path_buf(),
        line,
        column: None,
        message,
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| bad(Some(1), "empty file".into()))?
        .split(',')
        .collect();
    let target = header
        .iter()
        .rposition(|c| *c == "target")
        .ok_or_else(|| bad(Some(1), "no `target` column".into()))?;
    let names: Vec<&str> = outputs.iter().map(|o| o.track.name()).collect();
    if header[target + 1..] != names[..] {
        return Err(bad(
            Some(1),
            format!(
                "track columns {:?}, the figure data has {names:?}",
                &header[target + 1..]
            ),
        ));
    }
    let k = data.n_outputs;
    let sizes = [data.y_train.len(), data.y_val.len(), data.y_test.len()];
    for o in outputs.iter_mut() {
        o.train = vec![f64::NAN; sizes[0]];
        o.val = vec![f64::NAN; sizes[1]];
        o.test = vec![f64::NAN; sizes[2]];
    }
    for (i, line) in lines.enumerate() {
        let at = Some(i + 2);
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(bad(
                at,
                format!("{} cells, the header has {}", cells.len(), header.len()),
            ));
        }
        let split = match cells[0] {
            "train" => 0,
            "val" => 1,
            "test" => 2,
            other => return Err(bad(at, format!("split `{other}`"))),
        };
        let index: usize = cells[1].parse().map_err(|_| bad(at, "index".into()))?;
        let output: usize = cells[2].parse().map_err(|_| bad(at, "output".into()))?;
        let slot = index * k + output;
        if output >= k || slot >= sizes[split] {
            return Err(bad(
                at,
                format!("point {index}, output {output} is beyond the data's size"),
            ));
        }
        for (o, cell) in outputs.iter_mut().zip(&cells[target + 1..]) {
            let v: f64 = cell
                .parse()
                .map_err(|_| bad(at, format!("`{cell}` is not a number")))?;
            match split {
                0 => o.train[slot] = v,
                1 => o.val[slot] = v,
                _ => o.test[slot] = v,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::record::{PerTrack, Track};

    /// NaN, ±inf, `None` and `Some(NaN)` stay apart through the file's encoding, and finite
    /// values come back bit for bit (shortest round-trip text).
    #[test]
    fn non_finite_and_missing_values_survive_the_encoding() {
        let values: PerTrack<Option<f64>> = crate::record::Keyed(vec![
            (Track::Network, Some(f64::NAN)),
            (Track::Linearized, None),
            (Track::KernelAnalytic, Some(f64::INFINITY)),
            (Track::KernelEmpirical, Some(f64::NEG_INFINITY)),
            (Track::KernelNngp, Some(0.1 + 0.2)),
            (Track::LinearizedAvg, Some(-5e-324)),
        ]);
        let text = ron::ser::to_string(&values).unwrap();
        let back: PerTrack<Option<f64>> = ron::from_str(&text).unwrap();
        let bits = |k: &PerTrack<Option<f64>>| -> Vec<Option<u64>> {
            k.values().map(|v| v.map(|x| x.to_bits())).collect()
        };
        assert_eq!(
            back.values()
                .map(|v| v.map(f64::is_nan))
                .collect::<Vec<_>>(),
            vec![
                Some(true),
                None,
                Some(false),
                Some(false),
                Some(false),
                Some(false)
            ]
        );
        let finite = |k: &PerTrack<Option<f64>>| bits(k)[2..].to_vec();
        assert_eq!(finite(&back), finite(&values));
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            values.keys().collect::<Vec<_>>()
        );
    }
}
