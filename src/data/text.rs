//! Text data for next-character prediction: `context` one-hot characters → the next one.
//! Training contexts come from the first `1 − test_fraction` of the text, test contexts (and
//! their targets) entirely from the rest.

use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, seq::SliceRandom};
use serde::Serialize;

use super::Dataset;
use crate::{Error, Result};

/// Checked text source (`data.kind = "text"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextSource {
    /// Text file.
    pub path: PathBuf,
    /// Characters of context.
    pub context: usize,
    /// Fold case.
    pub lowercase: bool,
    /// Held-out final fraction of the text for test contexts.
    pub test_fraction: f64,
    /// Final fraction of the training part held out for validation contexts (0: none).
    pub validation_fraction: f64,
    /// Validation contexts (only with `validation_fraction` > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_val: Option<usize>,
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
    /// Per training sample: the (up to) [`NGRAM_HISTORY`] characters before its target, and the
    /// target (what the n-gram baselines count: the training samples the network sees).
    pub train_histories: Vec<(Vec<char>, char)>,
    /// Per test sample: the (up to) [`NGRAM_HISTORY`] characters before its target, and the
    /// target (what the n-gram baselines are evaluated on).
    pub test_histories: Vec<(Vec<char>, char)>,
}

/// Characters of history kept for the n-gram baselines (5-grams).
pub const NGRAM_HISTORY: usize = 4;

/// The (up to) [`NGRAM_HISTORY`] characters before each target position, and the target.
fn histories(chars: &[char], positions: &[usize]) -> Vec<(Vec<char>, char)> {
    positions
        .iter()
        .map(|&p| (chars[p.saturating_sub(NGRAM_HISTORY)..p].to_vec(), chars[p]))
        .collect()
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

    /// Continues the prompt by `length` characters: each next character is the argmax of
    /// `model`'s outputs on the last `context` characters (`temperature` = 0, or non-finite
    /// outputs), or drawn from the softmax of outputs / `temperature` with a `seed`ed RNG.
    pub fn generate(
        &self,
        mut model: impl FnMut(&[f64]) -> Result<Vec<f64>>,
        temperature: f64,
        seed: u64,
        length: usize,
    ) -> Result<String> {
        use rand::{Rng, SeedableRng};
        let v = self.vocabulary.len();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ctx: Vec<char> = self.prompt.chars().collect();
        let mut text = String::new();
        for _ in 0..length {
            let x = self.encode(&ctx[ctx.len() - self.context..]);
            let f = model(&x)?;
            let next = if temperature == 0.0 || f.iter().any(|v| !v.is_finite()) {
                crate::metrics::argmax_rows(&f, v)[0]
            } else {
                let scaled: Vec<f64> = f.iter().map(|z| z / temperature).collect();
                let p = crate::metrics::softmax(&scaled);
                let u: f64 = rng.random();
                let mut acc = 0.0;
                p.iter()
                    .position(|pi| {
                        acc += pi;
                        u < acc
                    })
                    .unwrap_or(v - 1)
            };
            let c = self.vocabulary[next];
            text.push(c);
            ctx.push(c);
        }
        Ok(text)
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
    /// Final fraction of the training part of the text held out for validation contexts.
    pub validation_fraction: f64,
    /// Validation contexts (drawn from that part; 0 without it).
    pub n_val: usize,
}

/// Where a text's contexts can be drawn from: the training part ends at `split` (less its
/// validation part); each entry is the position of a context's target character.
struct TextParts<'a> {
    split: usize,
    train: &'a [usize],
    val: &'a [usize],
    test: &'a [usize],
}

/// Refuses a sampling the text cannot give: too few contexts in a part, a held-out part shorter
/// than a context (no prompt), or a training part with one character to predict.
fn check_parts(
    chars: &[char],
    parts: &TextParts<'_>,
    sampling: &TextSampling,
    path: &Path,
) -> Result<()> {
    let TextSampling {
        context,
        test_fraction,
        n_train,
        n_test,
        validation_fraction,
        n_val,
        ..
    } = *sampling;
    let (split, train_pos, val_pos, test_pos) = (parts.split, parts.train, parts.val, parts.test);
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
    if chars.len() < split + context {
        return Err(err(format!(
            "the held-out part (the last {:.0} % of the text, {} characters) is shorter than \
             data.context = {context}: no prompt for generation; lower data.context or raise \
             data.test_fraction",
            100.0 * test_fraction,
            chars.len() - split
        )));
    }
    if train_pos.is_empty() {
        return Err(err(format!(
            "the training part ({split} characters) is not longer than data.context = {context}"
        )));
    }
    let mut train_targets: Vec<char> = train_pos.iter().map(|&p| chars[p]).collect();
    train_targets.sort_unstable();
    train_targets.dedup();
    if train_targets.len() < 2 {
        return Err(err(format!(
            "the training part's next characters are all {:?}: next-character prediction needs at least two distinct characters to predict in the training part (the others occur only in the held-out part, or only before the first full context); use a longer or more varied text, or a smaller data.test_fraction{}",
            train_targets.first().copied().unwrap_or(' '),
            if validation_fraction > 0.0 {
                " or data.validation_fraction (the validation part is cut from the end of the training part)"
            } else {
                ""
            }
        )));
    }
    if val_pos.len() < n_val {
        return Err(err(format!(
            "data.n_val = {n_val} requested but the validation part (the last {:.0} % of the \
             training text) has only {} contexts",
            100.0 * validation_fraction,
            val_pos.len()
        )));
    }
    if test_pos.len() < n_test {
        return Err(err(format!(
            "data.n_test = {n_test} requested but the held-out part has only {} contexts",
            test_pos.len()
        )));
    }
    Ok(())
}

/// Loads the text file of a source and samples `n_train` and `n_test` contexts.
pub fn dataset(
    src: &TextSource,
    n_train: usize,
    n_test: usize,
    rng: &mut StdRng,
) -> Result<Dataset> {
    let text = super::read_text_capped(&src.path, super::data_file_cap(), "text file").map_err(
        |message| Error::Data {
            path: src.path.clone(),
            line: None,
            column: None,
            message,
        },
    )?;
    let sampling = TextSampling {
        context: src.context,
        lowercase: src.lowercase,
        test_fraction: src.test_fraction,
        n_train,
        n_test,
        validation_fraction: src.validation_fraction,
        n_val: src.n_val.unwrap_or(0),
    };
    text_dataset(&text, sampling, rng, &src.path)
}

/// The sorted distinct characters of a text; refused with fewer than two.
fn vocabulary_of(chars: &[char], lowercase: bool, path: &Path) -> Result<Vec<char>> {
    let mut vocabulary = chars.to_vec();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    if vocabulary.len() < 2 {
        return Err(Error::Data {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: format!(
                "a vocabulary of {} character(s){}: next-character prediction needs at least two distinct characters (there is nothing to predict)",
                vocabulary.len(),
                if lowercase { " after lowercasing" } else { "" }
            ),
        });
    }
    Ok(vocabulary)
}

/// The one-hot inputs (the `context` characters before each position) and targets (the
/// character at it) of the samples at `pos`, row-major.
fn encode_contexts(info: &TextInfo, chars: &[char], pos: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (context, vocabulary) = (info.context, &info.vocabulary);
    let v = vocabulary.len();
    let mut x = Vec::with_capacity(pos.len() * context * v);
    let mut y = Vec::with_capacity(pos.len() * v);
    for &p in pos {
        x.extend(info.encode(&chars[p - context..p]));
        let t = vocabulary.binary_search(&chars[p]).unwrap_or(0);
        y.extend((0..v).map(|j| if j == t { 1.0 } else { 0.0 }));
    }
    (x, y)
}

/// A character as it appears in feature, target and class names (newline as `\n`, comma as
/// `comma`).
fn display_name(c: char) -> String {
    if c == '\n' {
        "\\n".to_string()
    } else if c == ',' {
        "comma".to_string()
    } else {
        c.to_string()
    }
}

/// Builds next-character samples: test contexts (and their targets) entirely inside the last
/// `test_fraction` of the text, validation contexts entirely inside the last
/// `validation_fraction` of the part before it, training contexts from the rest; each drawn
/// without replacement.
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
        validation_fraction,
        n_val,
    } = sampling;
    let chars: Vec<char> = if lowercase {
        text.to_lowercase().chars().collect()
    } else {
        text.chars().collect()
    };
    let vocabulary = vocabulary_of(&chars, lowercase, path)?;
    let split = ((chars.len() as f64) * (1.0 - test_fraction)) as usize;
    let train_end = split - ((split as f64) * validation_fraction).round() as usize;
    // sample i uses chars[p − context .. p] → chars[p]
    let train_pos: Vec<usize> = (context..train_end).collect();
    let val_pos: Vec<usize> = if train_end < split {
        (train_end + context..split).collect()
    } else {
        Vec::new()
    };
    let test_pos: Vec<usize> = (split + context..chars.len()).collect();
    let parts = TextParts {
        split,
        train: &train_pos,
        val: &val_pos,
        test: &test_pos,
    };
    check_parts(&chars, &parts, &sampling, path)?;
    let err = |m: String| Error::Data {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: m,
    };
    let pick = |pos: &[usize], n: usize, rng: &mut StdRng| -> Vec<usize> {
        let mut p = pos.to_vec();
        p.shuffle(rng);
        p.truncate(n);
        p.sort_unstable();
        p
    };
    let (tr, te) = (pick(&train_pos, n_train, rng), pick(&test_pos, n_test, rng));
    if let Some(first) = tr
        .first()
        .map(|&p0| chars[p0])
        .filter(|&c| tr.iter().all(|&p| chars[p] == c))
    {
        return Err(err(format!(
            "all {n_train} sampled training contexts (data.n_train) are followed by {first:?}: the network would learn one constant answer, and next-character prediction needs at least two distinct characters among the training targets; raise data.n_train (the training part has {} contexts) or use a more varied text",
            train_pos.len()
        )));
    }
    // Drawn after the others: a run without validation draws what it drew before.
    let va = pick(&val_pos, n_val, rng);
    let info = TextInfo {
        vocabulary: vocabulary.clone(),
        context,
        prompt: chars[split..(split + context).min(chars.len())]
            .iter()
            .collect(),
        train_histories: histories(&chars, &tr),
        test_histories: histories(&chars, &te),
    };
    let v = vocabulary.len();
    let encode_set = |pos: &[usize]| encode_contexts(&info, &chars, pos);
    let (x_train, y_train) = encode_set(&tr);
    let (x_test, y_test) = encode_set(&te);
    let (x_val, y_val) = encode_set(&va);
    let name = display_name;
    Ok(Dataset {
        input_dim: context * v,
        n_outputs: v,
        x_train,
        y_train,
        x_test,
        x_val,
        y_val,
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
