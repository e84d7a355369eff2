//! Data sets: synthetic (sine, teacher) and CSV files. All matrices row-major f64.

use std::path::Path;

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::config::{DataConfig, DataKind};
use crate::{Error, Result};

/// A train/test data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Input features d.
    pub input_dim: usize,
    /// Outputs K.
    pub n_outputs: usize,
    /// Training inputs, `n_train × d`.
    pub x_train: Vec<f64>,
    /// Training targets, `n_train × K`.
    pub y_train: Vec<f64>,
    /// Test inputs, `n_test × d`.
    pub x_test: Vec<f64>,
    /// Test targets, `n_test × K`.
    pub y_test: Vec<f64>,
    /// Feature names (d).
    pub feature_names: Vec<String>,
    /// Target names (K).
    pub target_names: Vec<String>,
    /// Class labels (as written in the file) when the targets are one-hot classes.
    pub classes: Option<Vec<String>>,
    /// For text data: the vocabulary, the context length and the first held-out characters
    /// (a prompt for generation).
    pub text: Option<TextInfo>,
}

/// What generation from a character model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TextInfo {
    /// Vocabulary in output order (sorted distinct characters).
    pub vocabulary: Vec<char>,
    /// Context length.
    pub context: usize,
    /// A prompt from the held-out part of the text.
    pub prompt: String,
}

impl TextInfo {
    /// One-hot encoding of a context (`context · V` features, character-major).
    pub fn encode(&self, context: &[char]) -> Vec<f64> {
        let v = self.vocabulary.len();
        let mut x = vec![0.0; context.len() * v];
        for (i, c) in context.iter().enumerate() {
            if let Ok(j) = self.vocabulary.binary_search(c) {
                x[i * v + j] = 1.0;
            }
        }
        x
    }

    /// Decodes a one-hot encoded context (argmax per position).
    pub fn decode(&self, x: &[f64]) -> String {
        x.chunks(self.vocabulary.len())
            .map(|c| self.vocabulary[crate::metrics::argmax_rows(c, c.len())[0]])
            .collect()
    }
}

/// How to cut a text into next-character samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextSampling {
    /// Characters of context.
    pub context: usize,
    /// Fold case.
    pub lowercase: bool,
    /// Held-out final fraction of the text.
    pub test_fraction: f64,
    /// Training contexts.
    pub n_train: usize,
    /// Test contexts.
    pub n_test: usize,
}

/// Builds next-character samples: train contexts from the first `1 − test_fraction` of the text,
/// test contexts (and their targets) entirely inside the rest, drawn without replacement.
pub fn text_dataset(
    text: &str,
    sampling: TextSampling,
    rng: &mut StdRng,
    path: &Path,
) -> Result<Dataset> {
    let TextSampling {
        context,
        lowercase,
        test_fraction,
        n_train,
        n_test,
    } = sampling;
    let chars: Vec<char> = if lowercase {
        text.to_lowercase().chars().collect()
    } else {
        text.chars().collect()
    };
    let mut vocabulary = chars.clone();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    let split = ((chars.len() as f64) * (1.0 - test_fraction)) as usize;
    // sample i uses chars[p − context .. p] → chars[p]
    let train_pos: Vec<usize> = (context..split).collect();
    let test_pos: Vec<usize> = (split + context..chars.len()).collect();
    let err = |m: String| Error::Data {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: m,
    };
    if train_pos.len() < n_train {
        return Err(err(format!(
            "data.n_train = {n_train} requested but the training part has only {} contexts",
            train_pos.len()
        )));
    }
    if test_pos.len() < n_test {
        return Err(err(format!(
            "data.n_test = {n_test} requested but the held-out part has only {} contexts",
            test_pos.len()
        )));
    }
    let pick = |pos: &[usize], n: usize, rng: &mut StdRng| -> Vec<usize> {
        let mut p = pos.to_vec();
        p.shuffle(rng);
        p.truncate(n);
        p.sort_unstable();
        p
    };
    let (tr, te) = (pick(&train_pos, n_train, rng), pick(&test_pos, n_test, rng));
    let info = TextInfo {
        vocabulary: vocabulary.clone(),
        context,
        prompt: chars[split..(split + context).min(chars.len())]
            .iter()
            .collect(),
    };
    let v = vocabulary.len();
    let encode_set = |pos: &[usize]| -> (Vec<f64>, Vec<f64>) {
        let mut x = Vec::with_capacity(pos.len() * context * v);
        let mut y = Vec::with_capacity(pos.len() * v);
        for &p in pos {
            x.extend(info.encode(&chars[p - context..p]));
            let t = vocabulary.binary_search(&chars[p]).unwrap_or(0);
            y.extend((0..v).map(|j| if j == t { 1.0 } else { 0.0 }));
        }
        (x, y)
    };
    let (x_train, y_train) = encode_set(&tr);
    let (x_test, y_test) = encode_set(&te);
    let name = |c: char| {
        if c == '\n' {
            "\\n".to_string()
        } else if c == ',' {
            "comma".to_string()
        } else {
            c.to_string()
        }
    };
    Ok(Dataset {
        input_dim: context * v,
        n_outputs: v,
        x_train,
        y_train,
        x_test,
        y_test,
        feature_names: (0..context)
            .flat_map(|i| vocabulary.iter().map(move |&c| format!("c{i}_{}", name(c))))
            .collect(),
        target_names: vocabulary
            .iter()
            .map(|&c| format!("next_{}", name(c)))
            .collect(),
        classes: Some(vocabulary.iter().map(|&c| name(c)).collect()),
        text: Some(info),
    })
}

impl Dataset {
    /// Training points.
    pub fn n_train(&self) -> usize {
        self.x_train.len() / self.input_dim
    }

    /// Test points.
    pub fn n_test(&self) -> usize {
        self.x_test.len() / self.input_dim
    }

    /// Training then test inputs, `(n_train + n_test) × d`.
    pub fn x_all(&self) -> Vec<f64> {
        [self.x_train.as_slice(), self.x_test.as_slice()].concat()
    }
}

/// Builds the data set of a config (`seed` drives sampling, noise and splits).
pub fn load(cfg: &DataConfig, seed: u64) -> Result<Dataset> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xDA7A_5EED);
    let mut ds = match &cfg.kind {
        DataKind::Sine {
            frequency,
            interval,
        } => {
            let n_train = cfg.n_train.unwrap_or(32);
            let n_test = cfg.n_test.unwrap_or(256);
            let [lo, hi] = *interval;
            let x_train: Vec<f64> = (0..n_train).map(|_| rng.random_range(lo..hi)).collect();
            let x_test: Vec<f64> = (0..n_test)
                .map(|i| {
                    if n_test == 1 {
                        0.5 * (lo + hi)
                    } else {
                        lo + (hi - lo) * i as f64 / (n_test - 1) as f64
                    }
                })
                .collect();
            Dataset {
                input_dim: 1,
                n_outputs: 1,
                y_train: x_train.iter().map(|x| (frequency * x).sin()).collect(),
                y_test: x_test.iter().map(|x| (frequency * x).sin()).collect(),
                x_train,
                x_test,
                feature_names: vec!["x".into()],
                target_names: vec!["y".into()],
                classes: None,
                text: None,
            }
        }
        DataKind::Teacher {
            input_dim,
            teacher_width,
        } => {
            let (d, m) = (*input_dim, *teacher_width);
            let w: Vec<f64> = (0..d * m)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let a: Vec<f64> = (0..m).map(|_| StandardNormal.sample(&mut rng)).collect();
            let teacher = |x: &[f64]| -> f64 {
                let mut s = 0.0;
                for j in 0..m {
                    let z: f64 =
                        (0..d).map(|i| x[i] * w[j * d + i]).sum::<f64>() / (d as f64).sqrt();
                    s += a[j] * z.max(0.0);
                }
                s * (2.0 / m as f64).sqrt()
            };
            let mut sphere = |n: usize| -> Vec<f64> {
                let mut v = Vec::with_capacity(n * d);
                for _ in 0..n {
                    let p: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
                    let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
                    v.extend(p.iter().map(|x| x / norm * (d as f64).sqrt()));
                }
                v
            };
            let x_train = sphere(cfg.n_train.unwrap_or(32));
            let x_test = sphere(cfg.n_test.unwrap_or(256));
            Dataset {
                input_dim: d,
                n_outputs: 1,
                y_train: x_train.chunks(d).map(teacher).collect(),
                y_test: x_test.chunks(d).map(teacher).collect(),
                x_train,
                x_test,
                feature_names: (0..d).map(|i| format!("x{i}")).collect(),
                target_names: vec!["y".into()],
                classes: None,
                text: None,
            }
        }
        DataKind::Text {
            path,
            context,
            lowercase,
            test_fraction,
        } => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let sampling = TextSampling {
                context: *context,
                lowercase: *lowercase,
                test_fraction: *test_fraction,
                n_train: cfg.n_train.unwrap_or(32),
                n_test: cfg.n_test.unwrap_or(256),
            };
            text_dataset(&text, sampling, &mut rng, path)?
        }
        DataKind::Csv {
            path,
            test_path,
            target,
            standardize,
            test_fraction,
            shuffle,
            one_hot,
            feature_scale,
        } => {
            let main = read_csv(path)?;
            let (mut train, mut test) = match test_path {
                Some(tp) => {
                    let t = read_csv(tp)?;
                    if t.header != main.header {
                        return Err(Error::Data {
                            path: tp.clone(),
                            line: Some(1),
                            column: None,
                            message: format!(
                                "header {:?} differs from the training file's {:?}",
                                t.header, main.header
                            ),
                        });
                    }
                    let mut tr = main.rows;
                    if *shuffle {
                        tr.shuffle(&mut rng);
                    }
                    (tr, t.rows)
                }
                None => {
                    let mut rows = main.rows;
                    if *shuffle {
                        rows.shuffle(&mut rng);
                    }
                    let n_test = (rows.len() as f64 * test_fraction).round() as usize;
                    let test = rows.split_off(rows.len() - n_test);
                    (rows, test)
                }
            };
            if let Some(n) = cfg.n_train {
                if n > train.len() {
                    return Err(Error::Data {
                        path: path.clone(),
                        line: None,
                        column: None,
                        message: format!(
                            "data.n_train = {n} requested but the training split has only {} rows",
                            train.len()
                        ),
                    });
                }
                train.truncate(n);
            }
            if let Some(n) = cfg.n_test {
                if n > test.len() {
                    return Err(Error::Data {
                        path: test_path.clone().unwrap_or_else(|| path.clone()),
                        line: None,
                        column: None,
                        message: format!(
                            "data.n_test = {n} requested but the test split has only {} rows",
                            test.len()
                        ),
                    });
                }
                test.truncate(n);
            }
            if train.is_empty() {
                return Err(Error::Data {
                    path: path.clone(),
                    line: None,
                    column: None,
                    message: "no training rows".into(),
                });
            }
            let mut target_idx = Vec::new();
            for t in target {
                let idx = main
                    .header
                    .iter()
                    .position(|h| h == t)
                    .ok_or_else(|| Error::Data {
                        path: path.clone(),
                        line: Some(1),
                        column: Some(t.clone()),
                        message: format!(
                            "target column not found; the header has: {}",
                            main.header.join(", ")
                        ),
                    })?;
                target_idx.push(idx);
            }
            let feat_idx: Vec<usize> = (0..main.header.len())
                .filter(|i| !target_idx.contains(i))
                .collect();
            if feat_idx.is_empty() {
                return Err(Error::Data {
                    path: path.clone(),
                    line: Some(1),
                    column: None,
                    message: "no feature columns (every column is a target)".into(),
                });
            }
            let pick = |rows: &[Vec<f64>], idx: &[usize]| -> Vec<f64> {
                rows.iter()
                    .flat_map(|r| idx.iter().map(move |&i| r[i]))
                    .collect()
            };
            let mut ds = match one_hot {
                None => Dataset {
                    input_dim: feat_idx.len(),
                    n_outputs: target_idx.len(),
                    x_train: pick(&train, &feat_idx),
                    y_train: pick(&train, &target_idx),
                    x_test: pick(&test, &feat_idx),
                    y_test: pick(&test, &target_idx),
                    feature_names: feat_idx.iter().map(|&i| main.header[i].clone()).collect(),
                    target_names: target.clone(),
                    classes: None,
                    text: None,
                },
                Some([on, off]) => {
                    let (on, off) = (*on, *off);
                    // Classes: the distinct labels of both splits, in numeric order.
                    let col = target_idx[0];
                    let mut labels: Vec<f64> = train.iter().chain(&test).map(|r| r[col]).collect();
                    labels.sort_by(|a, b| a.total_cmp(b));
                    labels.dedup();
                    let mut train_labels: Vec<usize> = train
                        .iter()
                        .map(|r| labels.iter().position(|&l| l == r[col]).unwrap_or(0))
                        .collect();
                    let test_labels: Vec<usize> = test
                        .iter()
                        .map(|r| labels.iter().position(|&l| l == r[col]).unwrap_or(0))
                        .collect();
                    let k = labels.len();
                    if k < 2 {
                        return Err(Error::Data {
                            path: path.clone(),
                            line: None,
                            column: Some(target[0].clone()),
                            message: "one-hot targets need at least two classes".into(),
                        });
                    }
                    corrupt_labels(&mut train_labels, k, cfg.label_noise, &mut rng);
                    let encode = |ls: &[usize]| -> Vec<f64> {
                        ls.iter()
                            .flat_map(|&c| (0..k).map(move |j| if j == c { on } else { off }))
                            .collect()
                    };
                    let names: Vec<String> = labels.iter().map(|l| format!("{l}")).collect();
                    Dataset {
                        input_dim: feat_idx.len(),
                        n_outputs: k,
                        x_train: pick(&train, &feat_idx),
                        y_train: encode(&train_labels),
                        x_test: pick(&test, &feat_idx),
                        y_test: encode(&test_labels),
                        feature_names: feat_idx.iter().map(|&i| main.header[i].clone()).collect(),
                        target_names: names.iter().map(|n| format!("{}={n}", target[0])).collect(),
                        classes: Some(names),
                        text: None,
                    }
                }
            };
            if *standardize {
                standardize_columns(&mut ds.x_train, &mut ds.x_test, &ds.feature_names, path)?;
                if one_hot.is_none() {
                    standardize_columns(&mut ds.y_train, &mut ds.y_test, &ds.target_names, path)?;
                }
            }
            if *feature_scale != 1.0 {
                for v in ds.x_train.iter_mut().chain(ds.x_test.iter_mut()) {
                    *v *= feature_scale;
                }
            }
            ds
        }
    };
    if cfg.noise > 0.0 {
        for y in ds.y_train.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *y += cfg.noise * z;
        }
    }
    Ok(ds)
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

/// Standardises columns with the training statistics (population std); a constant column is an error.
fn standardize_columns(
    train: &mut [f64],
    test: &mut [f64],
    names: &[String],
    path: &Path,
) -> Result<()> {
    let c = names.len();
    let n = train.len() / c;
    for j in 0..c {
        let mean = (0..n).map(|i| train[i * c + j]).sum::<f64>() / n as f64;
        let var = (0..n)
            .map(|i| (train[i * c + j] - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let std = var.sqrt();
        if std.partial_cmp(&(1e-12 * mean.abs().max(1.0))) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::Data { path: path.to_path_buf(), line: None, column: Some(names[j].clone()), message: "constant column cannot be standardised (set data.standardize = false or drop the column)".into() });
        }
        for v in train.iter_mut().skip(j).step_by(c) {
            *v = (*v - mean) / std;
        }
        for v in test.iter_mut().skip(j).step_by(c) {
            *v = (*v - mean) / std;
        }
    }
    Ok(())
}

/// A parsed numeric CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// Column names.
    pub header: Vec<String>,
    /// Rows of finite numbers.
    pub rows: Vec<Vec<f64>>,
}

/// Reads a numeric CSV with a header row. Rejects ragged rows, non-numeric and non-finite cells
/// with an error naming file, line and column.
pub fn read_csv(path: &Path) -> Result<CsvTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_csv(&text, path)
}

/// Parses CSV text (see [`read_csv`]).
pub fn parse_csv(text: &str, path: &Path) -> Result<CsvTable> {
    let err = |line: usize, column: Option<String>, message: String| Error::Data {
        path: path.to_path_buf(),
        line: Some(line),
        column,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, head) = lines.next().ok_or_else(|| Error::Data {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: "empty file (a header row and data rows are required)".into(),
    })?;
    let header: Vec<String> = head
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    if let Some(pos) = header.iter().position(|h| h.is_empty()) {
        return Err(err(
            1,
            None,
            format!("empty column name at position {}", pos + 1),
        ));
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(err(
                i + 1,
                None,
                format!(
                    "{} cells, but the header has {} columns",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(cells.len());
        for (c, cell) in cells.iter().enumerate() {
            let s = cell.trim();
            let v: f64 = s.parse().map_err(|_| {
                err(
                    i + 1,
                    Some(header[c].clone()),
                    format!("not a number: {s:?}"),
                )
            })?;
            if !v.is_finite() {
                return Err(err(
                    i + 1,
                    Some(header[c].clone()),
                    format!("non-finite value {s:?}"),
                ));
            }
            row.push(v);
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(err(1, None, "no data rows after the header".into()));
    }
    Ok(CsvTable { header, rows })
}
