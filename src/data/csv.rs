//! CSV data: a numeric table with a header row, split into train and test (a seeded shuffle and
//! a held-out fraction, or a separate test file), regression or one-hot class targets, optional
//! standardisation with training statistics.

use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use serde::Serialize;

use super::Dataset;
use crate::{Error, Result};

/// Checked CSV source (`data.kind = "csv"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsvSource {
    /// Data file.
    pub path: PathBuf,
    /// Optional test file (same header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    /// Target columns.
    pub target: Vec<String>,
    /// Feature columns, in this order (None: every column that is not a target). Columns
    /// neither selected nor targets are not parsed, so they may hold text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Standardise features (and regression targets) with training statistics.
    pub standardize: bool,
    /// Held-out fraction when there is no test file.
    pub test_fraction: f64,
    /// Shuffle rows before the split.
    pub shuffle: bool,
    /// Factor on every feature after loading (and standardising).
    pub feature_scale: f64,
    /// Std of Gaussian noise on the training targets.
    pub noise: f64,
    /// Fraction of the training split held out as a validation split (for early stopping).
    pub validation_fraction: f64,
    /// One-hot class targets (None = regression targets).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<OneHot>,
    /// `[height, width, channels]` of each row's image (its product is the number of feature
    /// columns, checked on loading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
}

/// Refuses two regression target columns with the same value in every training row: the
/// network would fit two copies of one output (the names differ, the data do not).
fn check_distinct_targets(
    src: &CsvSource,
    header: &[String],
    train: &[Vec<f64>],
    target_idx: &[usize],
) -> Result<()> {
    for (j, &b) in target_idx.iter().enumerate() {
        for &a in &target_idx[..j] {
            let column = |i: usize| train.iter().map(|r| r[i]).collect::<Vec<f64>>();
            let (ca, cb) = (column(a), column(b));
            // `copy = relation × original`, whichever way round holds.
            let Some((copy, original, relation)) = copy_relation(&ca, &cb, src.standardize)
                .map(|c| (b, a, c))
                .or_else(|| copy_relation(&cb, &ca, src.standardize).map(|c| (a, b, c)))
            else {
                continue;
            };
            let c = (relation * 1e10).round() / 1e10;
            let (copy, original) = (&header[copy], &header[original]);
            let relation = if ca.iter().zip(&cb).all(|(x, y)| x.to_bits() == y.to_bits()) {
                format!("{copy:?} holds the same values as {original:?}, so the two outputs would be identical")
            } else if c == 0.0 {
                format!("{copy:?} is 0, an output with nothing to learn")
            } else if src.standardize {
                format!(
                    "{copy:?} = {c} × {original:?} + a constant, so after data.standardize the two outputs are {}",
                    if c > 0.0 { "identical" } else { "each other's negative" }
                )
            } else {
                format!(
                    "{copy:?} = {c} × {original:?}, so under the squared loss the kernel and linearized tracks predict exactly {c} times the other output"
                )
            };
            let listed: Vec<&String> = target_idx.iter().map(|&i| &header[i]).collect();
            return Err(Error::value(
                "data.target",
                format!("{listed:?}"),
                format!(
                    "target columns that are not copies of each other: in every training row of {} {relation}; list only one of them",
                    src.path.display(),
                ),
            ));
        }
    }
    Ok(())
}

/// `Some(c)` when column `b` is `c` times column `a` in every row (`c·a + constant` when
/// `centred`, as standardising makes such columns identical), to a relative residual of
/// 1e-12: a least-squares fit `c = ⟨a, b⟩ / ⟨a, a⟩` on the (centred) columns and its residual.
fn copy_relation(a: &[f64], b: &[f64], centred: bool) -> Option<f64> {
    if a.is_empty() {
        return None;
    }
    let mean = |x: &[f64]| {
        if centred {
            x.iter().sum::<f64>() / x.len() as f64
        } else {
            0.0
        }
    };
    let (ma, mb) = (mean(a), mean(b));
    let pairs = || a.iter().zip(b).map(|(x, y)| (x - ma, y - mb));
    let (aa, ab, bb) = pairs().fold((0.0, 0.0, 0.0), |(aa, ab, bb), (x, y)| {
        (aa + x * x, ab + x * y, bb + y * y)
    });
    if !centred && aa > 0.0 && aa.is_finite() && bb == 0.0 {
        // A column of zeros is 0 times the other (a constant one is refused by standardising).
        return Some(0.0);
    }
    if !(aa > 0.0 && bb > 0.0 && aa.is_finite() && bb.is_finite()) {
        // Identical columns are copies even when constant.
        return (a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())).then_some(1.0);
    }
    let c = ab / aa;
    let residual: f64 = pairs().map(|(x, y)| (y - c * x).powi(2)).sum();
    (residual <= 1e-24 * bb).then_some(c)
}

/// One-hot class targets from a single label column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OneHot {
    /// Always true (the config key that selects this).
    #[serde(rename = "one_hot")]
    pub enabled: bool,
    /// Values of the true class and of the others.
    #[serde(rename = "one_hot_values")]
    pub values: [f64; 2],
    /// Fraction of training labels replaced by a random other class.
    pub label_noise: f64,
}

/// Rows of numbers.
type Rows = Vec<Vec<f64>>;

/// A parsed numeric CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// Column names.
    pub header: Vec<String>,
    /// Rows of finite numbers.
    pub rows: Vec<Vec<f64>>,
}

fn data_error(path: &Path, line: Option<usize>, column: Option<String>, message: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Builds the data set of a CSV source; `n_train`/`n_test` cap the splits.
pub fn dataset(
    src: &CsvSource,
    n_train: Option<usize>,
    n_test: Option<usize>,
    rng: &mut StdRng,
) -> Result<Dataset> {
    let keep = src
        .features
        .as_ref()
        .map(|f| [f.as_slice(), &src.target].concat());
    let main = read_csv(&src.path, keep.as_deref())?;
    let test = match &src.test_path {
        Some(tp) => Some(read_csv(tp, keep.as_deref())?),
        None => None,
    };
    from_tables(src, &main, test.as_ref(), n_train, n_test, rng)
}

/// Builds the data set of a table already in memory (`test`: the rows of a separate test file,
/// with the same header); `src.path` and `src.test_path` only name the tables in messages.
pub fn from_tables(
    src: &CsvSource,
    main: &CsvTable,
    test: Option<&CsvTable>,
    n_train: Option<usize>,
    n_test: Option<usize>,
    rng: &mut StdRng,
) -> Result<Dataset> {
    let (train, test) = split_rows(src, main, test, n_train, n_test, rng)?;
    let (feat_idx, target_idx) = feature_and_target_columns(src, main)?;
    let pick = |rows: &[Vec<f64>], idx: &[usize]| -> Vec<f64> {
        rows.iter()
            .flat_map(|r| idx.iter().map(move |&i| r[i]))
            .collect()
    };
    if src.one_hot.is_none() {
        check_distinct_targets(src, &main.header, &train, &target_idx)?;
    }
    let feature_names: Vec<String> = feat_idx.iter().map(|&i| main.header[i].clone()).collect();
    let mut ds = match src.one_hot {
        None => Dataset {
            input_dim: feat_idx.len(),
            n_outputs: target_idx.len(),
            x_train: pick(&train, &feat_idx),
            y_train: pick(&train, &target_idx),
            x_val: Vec::new(),
            y_val: Vec::new(),
            x_test: pick(&test, &feat_idx),
            y_test: pick(&test, &target_idx),
            feature_names,
            target_names: src.target.clone(),
            classes: None,
            text: None,
        },
        Some(one_hot) => {
            let (classes, y_train, y_test) =
                one_hot_targets(src, &one_hot, &train, &test, target_idx[0], rng)?;
            Dataset {
                input_dim: feat_idx.len(),
                n_outputs: classes.len(),
                x_train: pick(&train, &feat_idx),
                y_train,
                x_val: Vec::new(),
                y_val: Vec::new(),
                x_test: pick(&test, &feat_idx),
                y_test,
                feature_names,
                target_names: classes
                    .iter()
                    .map(|n| format!("{}={n}", src.target[0]))
                    .collect(),
                classes: Some(classes),
                text: None,
            }
        }
    };
    ds.carve_validation(src.validation_fraction);
    preprocess(src, &mut ds)?;
    Ok(ds)
}

/// The feature and the target columns of a CSV table (features: the named ones, else every
/// column that is not a target), checked against the header and `data.image_shape`.
fn feature_and_target_columns(
    src: &CsvSource,
    main: &CsvTable,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let column = |name: &String, what: &str| {
        main.header.iter().position(|h| h == name).ok_or_else(|| {
            data_error(
                &src.path,
                Some(1),
                Some(name.clone()),
                format!(
                    "{what} column not found; the header has: {}",
                    main.header.join(", ")
                ),
            )
        })
    };
    let target_idx = src
        .target
        .iter()
        .map(|t| column(t, "target"))
        .collect::<Result<Vec<usize>>>()?;
    let feat_idx: Vec<usize> = match &src.features {
        Some(names) => names
            .iter()
            .map(|f| column(f, "feature"))
            .collect::<Result<Vec<usize>>>()?,
        None => (0..main.header.len())
            .filter(|i| !target_idx.contains(i))
            .collect(),
    };
    if feat_idx.is_empty() {
        return Err(data_error(
            &src.path,
            Some(1),
            None,
            "no feature columns (every column is a target)".into(),
        ));
    }
    if let Some(shape) = src.image_shape {
        let product = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if product != Some(feat_idx.len()) {
            return Err(Error::value(
                "data.image_shape",
                format!("{shape:?}"),
                format!(
                    "[height, width, channels] whose product equals the {} feature columns of {} (this one's product is {})",
                    feat_idx.len(),
                    src.path.display(),
                    product.map_or("too large".to_string(), |p| p.to_string())
                ),
            ));
        }
    }
    Ok((feat_idx, target_idx))
}

/// Standardises the columns (`data.standardize`; targets too unless one-hot) and scales the
/// features (`data.feature_scale`), with the training points' statistics.
fn preprocess(src: &CsvSource, ds: &mut Dataset) -> Result<()> {
    if src.standardize {
        standardize_columns(
            &mut ds.x_train,
            [&mut ds.x_val, &mut ds.x_test],
            &ds.feature_names,
            &src.path,
        )?;
        if src.one_hot.is_none() {
            standardize_columns(
                &mut ds.y_train,
                [&mut ds.y_val, &mut ds.y_test],
                &ds.target_names,
                &src.path,
            )?;
        }
    }
    if src.feature_scale != 1.0 {
        for v in ds
            .x_train
            .iter_mut()
            .chain(ds.x_val.iter_mut())
            .chain(ds.x_test.iter_mut())
        {
            *v *= src.feature_scale;
        }
    }
    Ok(())
}

/// Train and test rows: a seeded shuffle (when asked) and a held-out fraction, or the rows of
/// the separate test file; then the optional caps.
fn split_rows(
    src: &CsvSource,
    main: &CsvTable,
    test: Option<&CsvTable>,
    n_train: Option<usize>,
    n_test: Option<usize>,
    rng: &mut StdRng,
) -> Result<(Rows, Rows)> {
    let (mut train, mut test) = match test {
        Some(t) => {
            if t.header != main.header {
                return Err(data_error(
                    src.test_path.as_ref().unwrap_or(&src.path),
                    Some(1),
                    None,
                    format!(
                        "header {:?} differs from the training file's {:?}",
                        t.header, main.header
                    ),
                ));
            }
            let mut tr = main.rows.clone();
            if src.shuffle {
                tr.shuffle(rng);
            }
            (tr, t.rows.clone())
        }
        None => {
            let mut rows = main.rows.clone();
            if src.shuffle {
                rows.shuffle(rng);
            }
            let n_test = (rows.len() as f64 * src.test_fraction).round() as usize;
            let test = rows.split_off(rows.len() - n_test);
            (rows, test)
        }
    };
    if let Some(n) = n_train {
        if n > train.len() {
            return Err(data_error(
                &src.path,
                None,
                None,
                format!(
                    "data.n_train = {n} requested but the training split has only {} rows",
                    train.len()
                ),
            ));
        }
        train.truncate(n);
    }
    if let Some(n) = n_test {
        if n > test.len() {
            return Err(data_error(
                src.test_path.as_ref().unwrap_or(&src.path),
                None,
                None,
                format!(
                    "data.n_test = {n} requested but the test split has only {} rows",
                    test.len()
                ),
            ));
        }
        test.truncate(n);
    }
    if train.is_empty() {
        return Err(data_error(&src.path, None, None, "no training rows".into()));
    }
    Ok((train, test))
}

/// Class names (the distinct labels of both splits, in numeric order) and one-hot train and
/// test targets; a fraction of the training labels is corrupted when asked.
fn one_hot_targets(
    src: &CsvSource,
    one_hot: &OneHot,
    train: &[Vec<f64>],
    test: &[Vec<f64>],
    col: usize,
    rng: &mut StdRng,
) -> Result<(Vec<String>, Vec<f64>, Vec<f64>)> {
    let [on, off] = one_hot.values;
    let mut labels: Vec<f64> = train.iter().chain(test).map(|r| r[col]).collect();
    labels.sort_by(|a, b| a.total_cmp(b));
    labels.dedup();
    let index = |rows: &[Vec<f64>]| -> Vec<usize> {
        rows.iter()
            .map(|r| labels.iter().position(|&l| l == r[col]).unwrap_or(0))
            .collect()
    };
    let mut train_labels = index(train);
    let test_labels = index(test);
    let k = labels.len();
    if k < 2 {
        return Err(data_error(
            &src.path,
            None,
            Some(src.target[0].clone()),
            "one-hot targets need at least two classes".into(),
        ));
    }
    corrupt_labels(&mut train_labels, k, one_hot.label_noise, rng);
    let encode = |ls: &[usize]| -> Vec<f64> {
        ls.iter()
            .flat_map(|&c| (0..k).map(move |j| if j == c { on } else { off }))
            .collect()
    };
    let names = labels.iter().map(|l| format!("{l}")).collect();
    Ok((names, encode(&train_labels), encode(&test_labels)))
}

/// Replaces a fraction of the labels by a uniformly drawn *other* class (seeded).
pub fn corrupt_labels(labels: &mut [usize], k: usize, fraction: f64, rng: &mut StdRng) {
    if fraction <= 0.0 || k < 2 {
        return;
    }
    let n = (labels.len() as f64 * fraction).round() as usize;
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    idx.shuffle(rng);
    for &i in idx.iter().take(n) {
        let shift = rng.random_range(1..k);
        labels[i] = (labels[i] + shift) % k;
    }
}

/// Standardises columns with the training statistics (population std), in the training and
/// the `other` sets; a constant column is an error.
fn standardize_columns(
    train: &mut [f64],
    mut other: [&mut Vec<f64>; 2],
    names: &[String],
    path: &Path,
) -> Result<()> {
    let c = names.len();
    let n = train.len() / c;
    for j in 0..c {
        let (mean, std) = column_stats((0..n).map(|i| train[i * c + j]), n);
        if std.partial_cmp(&(1e-12 * mean.abs().max(1.0))) != Some(std::cmp::Ordering::Greater) {
            return Err(data_error(
                path,
                None,
                Some(names[j].clone()),
                "constant column cannot be standardised (set data.standardize = false or drop the column)".into(),
            ));
        }
        for v in train.iter_mut().skip(j).step_by(c) {
            *v = (*v - mean) / std;
        }
        for set in other.iter_mut() {
            for v in set.iter_mut().skip(j).step_by(c) {
                *v = (*v - mean) / std;
            }
        }
    }
    Ok(())
}

/// Mean and population standard deviation of a column: the plain two-pass sums, or — when they
/// overflow (values near f64's range) — the same computed on values scaled by the largest
/// magnitude.
fn column_stats(values: impl Iterator<Item = f64> + Clone, n: usize) -> (f64, f64) {
    let two_pass = |scale: f64| {
        let mean = values.clone().map(|v| v / scale).sum::<f64>() / n as f64;
        let var = values
            .clone()
            .map(|v| (v / scale - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        (mean * scale, var.sqrt() * scale)
    };
    let (mean, std) = two_pass(1.0);
    if mean.is_finite() && std.is_finite() {
        return (mean, std);
    }
    let m = values.clone().fold(0.0f64, |a, v| a.max(v.abs()));
    two_pass(m.max(f64::MIN_POSITIVE))
}

/// Reads a numeric CSV with a header row; `keep` (when given) names the columns read, the others
/// are skipped unparsed. Rejects ragged rows, non-numeric and non-finite cells with an error
/// naming file, line and column.
pub fn read_csv(path: &Path, keep: Option<&[String]>) -> Result<CsvTable> {
    let text = super::read_text_capped(path, super::data_file_cap(), "data file")
        .map_err(|m| data_error(path, None, None, m))?;
    parse_csv(&text, path, keep)
}

/// Parses CSV text (see [`read_csv`]).
pub fn parse_csv(text: &str, path: &Path, keep: Option<&[String]>) -> Result<CsvTable> {
    // A UTF-8 byte-order mark is dropped; lines end in \n, \r\n or a bare \r.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .flat_map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            l.split('\r')
        })
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, head) = lines.next().ok_or_else(|| {
        data_error(
            path,
            None,
            None,
            "empty file (a header row and data rows are required)".into(),
        )
    })?;
    let header: Vec<String> = head
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    check_header(&header, path)?;
    let selected: Vec<usize> = match keep {
        None => (0..header.len()).collect(),
        Some(names) => {
            for n in names {
                if !header.contains(n) {
                    return Err(data_error(
                        path,
                        Some(1),
                        Some(n.clone()),
                        format!("column not found; the header has: {}", header.join(", ")),
                    ));
                }
            }
            (0..header.len())
                .filter(|&i| names.contains(&header[i]))
                .collect()
        }
    };
    let hint = if keep.is_none() {
        " (every column is read unless data.features names the feature columns)"
    } else {
        ""
    };
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(data_error(
                path,
                Some(i + 1),
                None,
                format!(
                    "{} cells, but the header has {} columns",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(selected.len());
        for &c in &selected {
            let s = cells[c].trim();
            let v: f64 = s.parse().map_err(|_| {
                data_error(
                    path,
                    Some(i + 1),
                    Some(header[c].clone()),
                    format!("not a number: {s:?}{hint}"),
                )
            })?;
            if !v.is_finite() {
                return Err(data_error(
                    path,
                    Some(i + 1),
                    Some(header[c].clone()),
                    format!("non-finite value {s:?}"),
                ));
            }
            row.push(v);
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(data_error(
            path,
            Some(1),
            None,
            "no data rows after the header".into(),
        ));
    }
    Ok(CsvTable {
        header: selected.iter().map(|&i| header[i].clone()).collect(),
        rows,
    })
}

/// Column names: distinct and non-empty.
fn check_header(header: &[String], path: &Path) -> Result<()> {
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(data_error(
                path,
                Some(1),
                Some(h.clone()),
                format!(
                    "column name {h:?} appears more than once (columns {} and {})",
                    header[..i].iter().position(|x| x == h).unwrap_or(0) + 1,
                    i + 1
                ),
            ));
        }
    }
    if let Some(pos) = header.iter().position(|h| h.is_empty()) {
        return Err(data_error(
            path,
            Some(1),
            None,
            format!("empty column name at position {}", pos + 1),
        ));
    }
    Ok(())
}
