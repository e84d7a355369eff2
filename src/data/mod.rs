//! Data sets: the checked `[data]` table ([`DataConfig`]) and the train/test [`Dataset`] built
//! from it: synthetic ([`synthetic`]: sine, teacher), CSV files ([`csv`]), IDX image files
//! ([`idx`]: MNIST, Fashion-MNIST, KMNIST), NumPy arrays ([`npy`]) and text ([`text`]).
//! All matrices are row-major f64.

pub mod csv;
pub mod idx;
pub mod npy;
pub mod synthetic;
pub mod text;

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

pub use self::csv::{CsvSource, OneHot};
pub use idx::{IdxSource, PixelScaling};
pub use npy::{NpyFiles, NpySource};
pub use synthetic::{SineSource, TeacherSource};
pub use text::{TextInfo, TextSource};

use crate::Result;

/// A train/test data set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Input features d.
    pub input_dim: usize,
    /// Outputs K.
    pub n_outputs: usize,
    /// Training inputs, `n_train × d`.
    pub x_train: Vec<f64>,
    /// Training targets, `n_train × K`.
    pub y_train: Vec<f64>,
    /// Validation inputs (carved from the training split; empty unless asked for),
    /// `n_val × d`.
    pub x_val: Vec<f64>,
    /// Validation targets, `n_val × K`.
    pub y_val: Vec<f64>,
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

impl Dataset {
    /// Training points.
    pub fn n_train(&self) -> usize {
        self.x_train.len() / self.input_dim
    }

    /// Test points.
    pub fn n_test(&self) -> usize {
        self.x_test.len() / self.input_dim
    }

    /// Validation points.
    pub fn n_val(&self) -> usize {
        self.x_val.len() / self.input_dim
    }

    /// Points after the training points in [`Dataset::x_all`]: validation then test.
    pub fn n_heldout(&self) -> usize {
        self.n_val() + self.n_test()
    }

    /// Training, validation then test inputs, `(n_train + n_val + n_test) × d`.
    pub fn x_all(&self) -> Vec<f64> {
        [
            self.x_train.as_slice(),
            self.x_val.as_slice(),
            self.x_test.as_slice(),
        ]
        .concat()
    }

    /// Moves the last `round(n_train · fraction)` training points (at most all but one) into the
    /// validation split.
    pub fn carve_validation(&mut self, fraction: f64) {
        let n_val = ((self.n_train() as f64 * fraction).round() as usize)
            .min(self.n_train().saturating_sub(1));
        if n_val == 0 {
            return;
        }
        let keep = self.n_train() - n_val;
        self.x_val = self.x_train.split_off(keep * self.input_dim);
        self.y_val = self.y_train.split_off(keep * self.n_outputs);
    }
}

/// Default training points of the synthetic and text kinds.
pub const DEFAULT_N_TRAIN: usize = 32;
/// Default test points of the synthetic and text kinds.
pub const DEFAULT_N_TEST: usize = 256;

/// Where the data come from (the config's `data.kind` and its keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSource {
    /// `y = sin(ω·x)`.
    Sine(SineSource),
    /// A random ReLU teacher.
    Teacher(TeacherSource),
    /// A CSV file.
    Csv(CsvSource),
    /// Images and labels in IDX files (MNIST, Fashion-MNIST, KMNIST).
    Idx(IdxSource),
    /// Next-character prediction on a text file.
    Text(TextSource),
    /// NumPy arrays.
    Npy(NpySource),
}

/// The checked `[data]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataConfig {
    /// What data.
    #[serde(flatten)]
    pub source: DataSource,
    /// Training points (csv: an optional cap on the training split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_train: Option<usize>,
    /// Test points (csv: an optional cap on the test split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_test: Option<usize>,
}

impl DataSource {
    /// The input files this source reads, each with its config key (one entry per file).
    pub fn input_files(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        let mut copy = self.clone();
        copy.input_files_mut()
            .into_iter()
            .map(|(key, p)| (key, p.clone()))
            .collect()
    }

    /// [`DataSource::input_files`], to be rewritten in place (relative paths, see
    /// [`crate::config::paths`]).
    pub fn input_files_mut(&mut self) -> Vec<(&'static str, &mut std::path::PathBuf)> {
        match self {
            DataSource::Sine(_) | DataSource::Teacher(_) => Vec::new(),
            DataSource::Csv(c) => std::iter::once(("data.path", &mut c.path))
                .chain(c.test_path.as_mut().map(|p| ("data.test_path", p)))
                .collect(),
            DataSource::Text(t) => vec![("data.path", &mut t.path)],
            DataSource::Idx(i) => vec![
                ("data.train_images", &mut i.train_images),
                ("data.train_labels", &mut i.train_labels),
                ("data.test_images", &mut i.test_images),
                ("data.test_labels", &mut i.test_labels),
            ],
            DataSource::Npy(n) => match &mut n.files {
                NpyFiles::Archive { npz, .. } => vec![("data.npz", npz)],
                NpyFiles::Files {
                    x,
                    y,
                    x_test,
                    y_test,
                } => [
                    Some(("data.x", x)),
                    Some(("data.y", y)),
                    x_test.as_mut().map(|p| ("data.x_test", p)),
                    y_test.as_mut().map(|p| ("data.y_test", p)),
                ]
                .into_iter()
                .flatten()
                .collect(),
            },
        }
    }

    /// Standard deviation of the Gaussian noise added to the training targets (0 for text).
    pub fn noise(&self) -> f64 {
        match self {
            DataSource::Sine(s) => s.noise,
            DataSource::Teacher(s) => s.noise,
            DataSource::Csv(s) => s.noise,
            DataSource::Npy(s) => s.noise,
            DataSource::Idx(_) | DataSource::Text(_) => 0.0,
        }
    }
}

/// Opens a file for reading, refusing anything but a regular file *before* opening it (opening
/// a named pipe blocks until a writer comes; a device or a directory is not data).
pub fn open_regular_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory is not read)",
        ));
    }
    std::fs::File::open(path)
}

/// Largest config file read, in bytes (a config is a few kilobytes; more is not a config).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a text file of at most `cap` bytes, refusing a longer one (or an endless one such as
/// `/dev/zero`) after reading `cap + 1` bytes, never more. `what` names the file's role.
pub fn read_text_capped(
    path: &std::path::Path,
    cap: u64,
    what: &str,
) -> std::result::Result<String, String> {
    use std::io::Read;
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(format!(
            "the {what} is not a regular file (a device, pipe or directory is not read)"
        ));
    }
    let file = open_regular_file(path).map_err(|e| format!("cannot read the {what}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the {what}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "the {what} is not a regular file (a device, pipe or directory is not read)"
        ));
    }
    if meta.len() > cap {
        return Err(format!(
            "the {what} has {} bytes, more than the {cap} read",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the {what}: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!(
            "the {what} is larger than {cap} bytes (or endless), more than is read"
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("the {what} is not UTF-8 text: {e}"))
}

/// The most bytes of a data file read as text: a quarter of the available memory (parsing
/// holds the text, its rows and the data set at once).
pub fn data_file_cap() -> u64 {
    crate::system::available_memory_bytes() / 4
}

/// Builds the data set of a config (`seed` drives sampling, noise and splits).
pub fn load(cfg: &DataConfig, seed: u64) -> Result<Dataset> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xDA7A_5EED);
    let n_train = cfg.n_train.unwrap_or(DEFAULT_N_TRAIN);
    let n_test = cfg.n_test.unwrap_or(DEFAULT_N_TEST);
    let mut ds = match &cfg.source {
        DataSource::Sine(src) => synthetic::sine(src, n_train, n_test, &mut rng),
        DataSource::Teacher(src) => synthetic::teacher(src, n_train, n_test, &mut rng),
        DataSource::Text(src) => text::dataset(src, n_train, n_test, &mut rng)?,
        DataSource::Csv(src) => csv::dataset(src, cfg.n_train, cfg.n_test, &mut rng)?,
        DataSource::Idx(src) => idx::dataset(src, cfg.n_train, cfg.n_test, seed)?,
        DataSource::Npy(src) => npy::dataset(src, cfg.n_train, cfg.n_test, &mut rng)?,
    };
    let noise = cfg.source.noise();
    if noise > 0.0 {
        for y in ds.y_train.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *y += noise * z;
        }
    }
    Ok(ds)
}
