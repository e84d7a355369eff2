//! NumPy arrays as data (`data.kind = "npy"`): `x` and `y` as `.npy` files, or as named arrays in
//! one `.npz` archive (what `numpy.save` / `numpy.savez` / `numpy.savez_compressed` write), with
//! optional separate test arrays.
//!
//! - `x`: `(N,)`, `(N, d)`, `(N, H, W)` or `(N, H, W, C)` (images, NHWC; the shape gives
//!   `image_shape`), float32/64, integer or bool, C or Fortran order.
//! - `y`: `(N,)` or `(N, K)`; integer (or bool) labels of shape `(N,)` or `(N, 1)` become one-hot
//!   classes unless `data.one_hot = false`; floats are regression targets.
//!
//! Every header is checked against the file (magic, version, a header no longer than numpy's own
//! default limit, dtype, shape, the payload's length) before anything is allocated, and every
//! value must be finite; an error names the file and the array. Once read, the arrays go through
//! the CSV path ([`super::csv::from_tables`]): the same split, one-hot encoding, standardisation
//! and scaling, so an `.npz` and a CSV holding the same numbers give the same run bit for bit.

use std::io::Read;
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar};
use rand::rngs::StdRng;
use serde::Serialize;

use super::csv::{CsvSource, CsvTable, OneHot};
use super::Dataset;
use crate::{Error, Result};

/// Largest header accepted, in bytes: numpy's own default for `np.load` (`max_header_size`,
/// numpy ≥ 1.24), above which numpy refuses a header as unsafe to parse.
pub const MAX_HEADER_BYTES: usize = 10_000;

/// Bytes before the header text: magic (6), version (2), header length (2 in version 1, 4 in
/// versions 2 and 3).
const PREAMBLE_V1: usize = 10;
const PREAMBLE_V2: usize = 12;

/// Where the arrays are.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NpyFiles {
    /// One `.npy` file per array.
    Files {
        /// Inputs.
        x: PathBuf,
        /// Targets.
        y: PathBuf,
        /// Test inputs (with `y_test`; absent: a held-out fraction of `x`).
        #[serde(skip_serializing_if = "Option::is_none")]
        x_test: Option<PathBuf>,
        /// Test targets.
        #[serde(skip_serializing_if = "Option::is_none")]
        y_test: Option<PathBuf>,
    },
    /// Named arrays in one `.npz` archive.
    Archive {
        /// The archive.
        npz: PathBuf,
        /// Name of the inputs.
        x: String,
        /// Name of the targets.
        y: String,
        /// Name of the test inputs.
        #[serde(skip_serializing_if = "Option::is_none")]
        x_test: Option<String>,
        /// Name of the test targets.
        #[serde(skip_serializing_if = "Option::is_none")]
        y_test: Option<String>,
    },
}

/// The role of an array (its config key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `x`
    X,
    /// `y`
    Y,
    /// `x_test`
    XTest,
    /// `y_test`
    YTest,
}

impl Role {
    /// The config key (`data.x`, …).
    pub fn key(self) -> &'static str {
        match self {
            Role::X => "data.x",
            Role::Y => "data.y",
            Role::XTest => "data.x_test",
            Role::YTest => "data.y_test",
        }
    }
}

/// One array: a file, or an archive and the array's name in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayLocation {
    /// The `.npy` file or the `.npz` archive.
    pub file: PathBuf,
    /// The array's name in the archive.
    pub name: Option<String>,
}

impl std::fmt::Display for ArrayLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.file.display()),
            Some(n) => write!(f, "{}, array {n:?}", self.file.display()),
        }
    }
}

impl NpyFiles {
    /// Where the array of `role` is (None: a test array that is not given).
    pub fn location(&self, role: Role) -> Option<ArrayLocation> {
        match self {
            NpyFiles::Files {
                x,
                y,
                x_test,
                y_test,
            } => {
                let file = match role {
                    Role::X => Some(x),
                    Role::Y => Some(y),
                    Role::XTest => x_test.as_ref(),
                    Role::YTest => y_test.as_ref(),
                };
                file.map(|f| ArrayLocation {
                    file: f.clone(),
                    name: None,
                })
            }
            NpyFiles::Archive {
                npz,
                x,
                y,
                x_test,
                y_test,
            } => {
                let name = match role {
                    Role::X => Some(x),
                    Role::Y => Some(y),
                    Role::XTest => x_test.as_ref(),
                    Role::YTest => y_test.as_ref(),
                };
                name.map(|n| ArrayLocation {
                    file: npz.clone(),
                    name: Some(n.clone()),
                })
            }
        }
    }

    /// The files read (each once).
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            NpyFiles::Files {
                x,
                y,
                x_test,
                y_test,
            } => [Some(x), Some(y), x_test.as_ref(), y_test.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            NpyFiles::Archive { npz, .. } => vec![npz.clone()],
        }
    }
}

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// IEEE float of 4 or 8 bytes.
    Float(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// Bool (one byte, 0 or 1).
    Bool,
}

impl Element {
    /// Whether the values are labels (integers or bools).
    pub fn is_integer(self) -> bool {
        !matches!(self, Element::Float(_))
    }

    fn bytes(self) -> usize {
        match self {
            Element::Float(b) | Element::Int(b) | Element::Uint(b) => b,
            Element::Bool => 1,
        }
    }
}

/// A checked array header.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayHeader {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type.
    pub element: Element,
    /// Column-major (Fortran) order.
    pub fortran_order: bool,
}

impl ArrayHeader {
    /// Elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn array_error(at: &ArrayLocation, message: impl Into<String>) -> Error {
    let message = message.into();
    Error::Data {
        path: at.file.clone(),
        line: None,
        column: None,
        message: match &at.name {
            Some(n) => format!("array {n:?}: {message}"),
            None => message,
        },
    }
}

/// Bytes of an array's file or archive entry: at most `limit` of them (the header), or all of
/// them (`None`), and the payload's full length.
fn read_bytes(at: &ArrayLocation, limit: Option<usize>) -> Result<(Vec<u8>, u64)> {
    let io = |e: std::io::Error| array_error(at, format!("cannot read: {e}"));
    let file = super::open_regular_file(&at.file).map_err(io)?;
    match &at.name {
        None => {
            let len = file.metadata().map_err(io)?.len();
            read_up_to(file, len, limit, at)
        }
        Some(name) => {
            let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
                .map_err(|e| array_error(at, format!("not a readable .npz (zip) archive: {e}")))?;
            let mut names: Vec<String> = zip
                .file_names()
                .filter_map(|n| n.strip_suffix(".npy"))
                .map(String::from)
                .collect();
            names.sort();
            let entry = zip.by_name(&format!("{name}.npy")).map_err(|_| {
                array_error(
                    at,
                    format!(
                        "no such array in the archive; it holds: {} (data.x, data.y, data.x_test and data.y_test name the arrays)",
                        if names.is_empty() {
                            "no arrays".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?;
            let len = entry.size();
            read_up_to(entry, len, limit, at)
        }
    }
}

fn read_up_to(
    r: impl Read,
    len: u64,
    limit: Option<usize>,
    at: &ArrayLocation,
) -> Result<(Vec<u8>, u64)> {
    let take = limit.map_or(len, |l| (l as u64).min(len));
    if limit.is_none() {
        let available = crate::system::available_memory_bytes();
        if len.saturating_mul(3) > available {
            return Err(Error::Memory {
                what: format!("reading {at}"),
                needed_bytes: len.saturating_mul(3),
                available_bytes: available,
                advice: "a smaller array (data.n_train caps the points used, not the points read)"
                    .into(),
            });
        }
    }
    let mut bytes = Vec::with_capacity(take as usize);
    r.take(take)
        .read_to_end(&mut bytes)
        .map_err(|e| array_error(at, format!("cannot read: {e}")))?;
    Ok((bytes, len))
}

/// The header's length in bytes (preamble included), checked before it is parsed.
fn header_length(bytes: &[u8], at: &ArrayLocation) -> Result<usize> {
    if bytes.len() < PREAMBLE_V1 || &bytes[..6] != b"\x93NUMPY" {
        return Err(array_error(
            at,
            "not a .npy array (no \\x93NUMPY magic; save it with numpy.save or numpy.savez)",
        ));
    }
    let (preamble, text) = match bytes[6] {
        1 => (
            PREAMBLE_V1,
            u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        ),
        2 | 3 if bytes.len() >= PREAMBLE_V2 => (
            PREAMBLE_V2,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => {
            return Err(array_error(
                at,
                format!("unsupported .npy format version {v} (versions 1, 2 and 3 are read)"),
            ))
        }
    };
    if text > MAX_HEADER_BYTES {
        return Err(array_error(
            at,
            format!(
                "header of {text} bytes, more than the {MAX_HEADER_BYTES} numpy itself accepts (a corrupt or hostile file)"
            ),
        ));
    }
    Ok(preamble + text)
}

/// Reads and checks an array's header: element type, shape, and the payload's length against
/// the shape.
pub fn read_header(at: &ArrayLocation) -> Result<ArrayHeader> {
    let (bytes, len) = read_bytes(at, Some(PREAMBLE_V2 + MAX_HEADER_BYTES))?;
    parse_header(&bytes, len, at)
}

fn parse_header(bytes: &[u8], len: u64, at: &ArrayLocation) -> Result<ArrayHeader> {
    let header_len = header_length(bytes, at)?;
    if bytes.len() < header_len {
        return Err(array_error(at, "truncated inside its header"));
    }
    let npy = NpyFile::new(&bytes[..header_len]).map_err(|e| {
        array_error(
            at,
            format!("unreadable .npy header ({e}): a dtype of objects (ragged rows), strings or records is not read; float32, float64, integers or bool are"),
        )
    })?;
    let element = element_of(&npy.dtype()).map_err(|m| array_error(at, m))?;
    let shape = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| array_error(at, "a dimension too large for this machine"))?;
    let payload = shape
        .iter()
        .try_fold(element.bytes() as u64, |a, &d| a.checked_mul(d as u64));
    let have = len.saturating_sub(header_len as u64);
    if payload != Some(have) {
        return Err(array_error(
            at,
            format!(
                "shape {shape:?} of {}-byte elements needs {} bytes of data, the file has {have} (truncated or padded)",
                element.bytes(),
                payload.map_or("more than 2^64".into(), |p| p.to_string())
            ),
        ));
    }
    Ok(ArrayHeader {
        shape,
        element,
        fortran_order: npy.order() == Order::Fortran,
    })
}

fn element_of(dtype: &DType) -> std::result::Result<Element, String> {
    let allowed = "float32, float64, integers or bool";
    let DType::Plain(ts) = dtype else {
        return Err(format!(
            "a structured dtype ({}); {allowed} are read",
            dtype.descr()
        ));
    };
    let bytes = ts.num_bytes().unwrap_or(0);
    match (ts.type_char(), bytes) {
        (TypeChar::Float, 4 | 8) => Ok(Element::Float(bytes)),
        (TypeChar::Int, 1 | 2 | 4 | 8) => Ok(Element::Int(bytes)),
        (TypeChar::Uint, 1 | 2 | 4 | 8) => Ok(Element::Uint(bytes)),
        (TypeChar::Bool, 1) => Ok(Element::Bool),
        _ => Err(format!(
            "dtype {ts} is not read; {allowed} are (convert with .astype(numpy.float32))"
        )),
    }
}

/// Reads an array: its header and its values as f64 in C (row-major) order, every one finite.
pub fn read_array(at: &ArrayLocation) -> Result<(ArrayHeader, Vec<f64>)> {
    let (bytes, len) = read_bytes(at, None)?;
    let header = parse_header(&bytes, len, at)?;
    let npy = NpyFile::new(&bytes[..])
        .map_err(|e| array_error(at, format!("unreadable .npy header: {e}")))?;
    let read = |e: std::io::Error| array_error(at, format!("unreadable data: {e}"));
    let values = match header.element {
        Element::Float(4) => as_f64::<f32>(npy, f64::from),
        Element::Float(_) => as_f64::<f64>(npy, |v| v),
        Element::Int(1) => as_f64::<i8>(npy, f64::from),
        Element::Int(2) => as_f64::<i16>(npy, f64::from),
        Element::Int(4) => as_f64::<i32>(npy, f64::from),
        Element::Int(_) => as_f64::<i64>(npy, |v| v as f64),
        Element::Uint(1) => as_f64::<u8>(npy, f64::from),
        Element::Uint(2) => as_f64::<u16>(npy, f64::from),
        Element::Uint(4) => as_f64::<u32>(npy, f64::from),
        Element::Uint(_) => as_f64::<u64>(npy, |v| v as f64),
        Element::Bool => as_f64::<bool>(npy, |b| f64::from(u8::from(b))),
    }
    .map_err(read)?;
    let values = if header.fortran_order {
        fortran_to_c(&values, &header.shape)
    } else {
        values
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(array_error(
            at,
            format!(
                "non-finite value {} at index {:?} (flat index {i}); every value must be finite",
                values[i],
                multi_index(i, &header.shape)
            ),
        ));
    }
    Ok((header, values))
}

/// The values of an array of element type `T`, each converted by `f`.
fn as_f64<T: npyz::Deserialize>(npy: NpyFile<&[u8]>, f: fn(T) -> f64) -> std::io::Result<Vec<f64>> {
    Ok(npy.into_vec::<T>()?.into_iter().map(f).collect())
}

/// The index tuple of a row-major flat index.
fn multi_index(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        index[d] = flat % shape[d].max(1);
        flat /= shape[d].max(1);
    }
    index
}

/// The values of a column-major array in row-major order.
pub fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let k = shape.len();
    // Column-major strides: the first index moves fastest.
    let mut strides = vec![1usize; k];
    for d in 1..k {
        strides[d] = strides[d - 1] * shape[d - 1];
    }
    let mut index = vec![0usize; k];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(
            values[index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()],
        );
        // Next row-major index: the last index moves fastest.
        for d in (0..k).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// The input layout an `x` header describes: features per point and the image shape.
pub fn input_layout(
    at: &ArrayLocation,
    h: &ArrayHeader,
) -> Result<(usize, usize, Option<[usize; 3]>)> {
    let bad = |why: String| Err(array_error(at, why));
    match h.shape.as_slice() {
        [] => {
            bad("a 0-d array (a scalar); inputs are (N,), (N, d), (N, H, W) or (N, H, W, C)".into())
        }
        [n] => Ok((*n, 1, None)),
        [n, d] => Ok((*n, *d, None)),
        [n, hh, w] => Ok((*n, hh * w, Some([*hh, *w, 1]))),
        [n, hh, w, c] => Ok((*n, hh * w * c, Some([*hh, *w, *c]))),
        s => bad(format!(
            "shape {s:?}; inputs are (N,), (N, d), (N, H, W) or (N, H, W, C) (images in NHWC order)"
        )),
    }
}

/// Points and outputs a `y` header describes.
pub fn target_layout(at: &ArrayLocation, h: &ArrayHeader) -> Result<(usize, usize)> {
    match h.shape.as_slice() {
        [n] => Ok((*n, 1)),
        [n, k] => Ok((*n, *k)),
        s => Err(array_error(
            at,
            format!("shape {s:?}; targets are (N,) or (N, K)"),
        )),
    }
}

/// Checked NumPy source (`data.kind = "npy"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpySource {
    /// The arrays.
    #[serde(flatten)]
    pub files: NpyFiles,
    /// Standardise features (and regression targets) with training statistics.
    pub standardize: bool,
    /// Held-out fraction when there are no test arrays.
    pub test_fraction: f64,
    /// Shuffle points before the split.
    pub shuffle: bool,
    /// Factor on every feature after loading (and standardising).
    pub feature_scale: f64,
    /// Std of Gaussian noise on the training targets.
    pub noise: f64,
    /// Fraction of the training split held out for validation.
    pub validation_fraction: f64,
    /// One-hot class targets (None = regression targets).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<OneHot>,
    /// `[height, width, channels]` of each point's image (from the array's shape, or the
    /// config for a 2-d `x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
    /// Outputs K (regression) or 1 (a label column), from `y`'s header.
    #[serde(skip)]
    pub target_columns: usize,
}

impl NpySource {
    /// Names of the target columns of the table the arrays become.
    fn target_names(&self) -> Vec<String> {
        if self.target_columns == 1 {
            vec!["y".into()]
        } else {
            (0..self.target_columns).map(|k| format!("y{k}")).collect()
        }
    }

    /// The CSV settings of the table the arrays become (paths name the arrays in messages).
    fn as_csv(&self) -> CsvSource {
        let x = self.files.location(Role::X).map(|l| l.file);
        CsvSource {
            path: x.unwrap_or_default(),
            test_path: self.files.location(Role::XTest).map(|l| l.file),
            target: self.target_names(),
            features: None,
            standardize: self.standardize,
            test_fraction: self.test_fraction,
            shuffle: self.shuffle,
            feature_scale: self.feature_scale,
            noise: self.noise,
            validation_fraction: self.validation_fraction,
            one_hot: self.one_hot,
            image_shape: self.image_shape,
        }
    }
}

/// Reads `x` and `y` (one role pair) into a table with columns `x0 … x{d−1}` then the targets.
fn table(src: &NpySource, x_role: Role, y_role: Role) -> Result<Option<CsvTable>> {
    let (Some(xl), Some(yl)) = (src.files.location(x_role), src.files.location(y_role)) else {
        return Ok(None);
    };
    let (xh, x) = read_array(&xl).map_err(|e| keyed(e, x_role))?;
    let (yh, y) = read_array(&yl).map_err(|e| keyed(e, y_role))?;
    let (n, d, _) = input_layout(&xl, &xh)?;
    let (ny, k) = target_layout(&yl, &yh)?;
    if ny != n {
        return Err(array_error(
            &yl,
            format!("{ny} targets for the {n} inputs of {xl}"),
        ));
    }
    if n == 0 {
        return Err(array_error(&xl, "no points (the first dimension is 0)"));
    }
    let header: Vec<String> = (0..d)
        .map(|j| format!("x{j}"))
        .chain(src.target_names())
        .collect();
    if header.len() != d + k {
        return Err(array_error(
            &yl,
            format!(
                "{k} target columns where the training targets have {}",
                src.target_columns
            ),
        ));
    }
    let rows = (0..n)
        .map(|i| [&x[i * d..(i + 1) * d], &y[i * k..(i + 1) * k]].concat())
        .collect();
    Ok(Some(CsvTable { header, rows }))
}

/// An array's error with the config key that names the array.
fn keyed(e: Error, role: Role) -> Error {
    match e {
        Error::Data {
            path,
            line,
            column,
            message,
        } => Error::Data {
            path,
            line,
            column,
            message: format!("{message} ({} in the config)", role.key()),
        },
        other => other,
    }
}

/// Builds the data set of a NumPy source; `n_train`/`n_test` cap the splits.
pub fn dataset(
    src: &NpySource,
    n_train: Option<usize>,
    n_test: Option<usize>,
    rng: &mut StdRng,
) -> Result<Dataset> {
    let main = table(src, Role::X, Role::Y)?.ok_or_else(|| {
        Error::value(
            "data.x",
            "(absent)",
            "the inputs and targets (data.x, data.y)",
        )
    })?;
    let test = table(src, Role::XTest, Role::YTest)?;
    super::csv::from_tables(&src.as_csv(), &main, test.as_ref(), n_train, n_test, rng)
}

/// Names the arrays of an `.npz` archive holds (for defaults and messages).
pub fn archive_arrays(npz: &Path) -> Result<Vec<String>> {
    let at = ArrayLocation {
        file: npz.to_path_buf(),
        name: None,
    };
    let file =
        super::open_regular_file(npz).map_err(|e| array_error(&at, format!("cannot read: {e}")))?;
    let zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| array_error(&at, format!("not a readable .npz (zip) archive: {e}")))?;
    let mut names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.strip_suffix(".npy"))
        .map(String::from)
        .collect();
    names.sort();
    Ok(names)
}
