//! IDX files, the format of MNIST, Fashion-MNIST and KMNIST (LeCun et al.): a big-endian header
//! `0x00 0x00 <type> <ndims>`, one 32-bit size per dimension, then the items. Images are
//! `n × rows × cols` unsigned bytes, labels `n` unsigned bytes. Plain or gzip-compressed (`.gz`,
//! recognised by its magic bytes). Every header is checked against the file's length before
//! anything is allocated; a truncated, padded or mislabelled file is an error naming the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::Serialize;

use super::Dataset;
use crate::{Error, Result};

/// The only item type read: unsigned bytes (every image and label file of the MNIST family).
pub const UNSIGNED_BYTE: u8 = 0x08;

/// Largest item count times item size accepted from a header (4 GiB: every MNIST-family file is
/// far below; a larger header is a corrupt or foreign file, refused before allocating).
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 32;

/// Pixel preprocessing (`data.scaling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelScaling {
    /// `x / 255`, in [0, 1].
    Unit,
    /// `x / 255`, then per pixel `(x − μ)/σ` with the training points' mean and population
    /// standard deviation; a pixel constant over the training points is centred only.
    Standardize,
}

/// Checked IDX source (`data.kind = "idx"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdxSource {
    /// Training images (`n × rows × cols` bytes).
    pub train_images: PathBuf,
    /// Training labels (`n` bytes).
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
    /// Pixel preprocessing.
    pub scaling: PixelScaling,
    /// Values of the true class and of the others in the one-hot targets.
    pub one_hot_values: [f64; 2],
    /// Names of the classes (label 0, 1, …), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// Fraction of the training subset held out for validation.
    pub validation_fraction: f64,
    /// `[rows, cols, 1]`, read from the training images' header when the config is checked.
    #[serde(skip)]
    pub image_shape: [usize; 3],
}

/// A header: item type and dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    /// Item type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B i16, 0x0C i32, 0x0D f32,
    /// 0x0E f64).
    pub item_type: u8,
    /// Dimensions, the first is the number of items.
    pub dims: Vec<usize>,
}

impl IdxHeader {
    /// Bytes of the header itself.
    pub fn len(&self) -> usize {
        4 + 4 * self.dims.len()
    }

    /// Whether the header has no dimensions (never a valid file).
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }
}

fn idx_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: message.into(),
    }
}

fn item_size(t: u8) -> Option<usize> {
    match t {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Parses a header from the first bytes of a (decompressed) file.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<IdxHeader> {
    if bytes.len() < 4 {
        return Err(idx_error(
            path,
            format!(
                "not an IDX file: {} bytes, shorter than the 4-byte magic number",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || item_size(bytes[2]).is_none() || bytes[3] == 0 {
        return Err(idx_error(
            path,
            format!(
                "not an IDX file: magic number {:02x} {:02x} {:02x} {:02x}, expected 00 00 <type 08/09/0b/0c/0d/0e> <dimensions ≥ 1>",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let nd = bytes[3] as usize;
    if bytes.len() < 4 + 4 * nd {
        return Err(idx_error(
            path,
            format!(
                "truncated header: {nd} dimensions need {} bytes, the file has {}",
                4 + 4 * nd,
                bytes.len()
            ),
        ));
    }
    let dims = (0..nd)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    Ok(IdxHeader {
        item_type: bytes[2],
        dims,
    })
}

/// Whether `bytes` start with the gzip magic number.
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Reads at most `limit` bytes of the decompressed content of `path`.
fn read_content(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = super::open_regular_file(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 2];
    let mut probe = file.try_clone().map_err(|e| Error::io(path, e))?;
    let got = probe.read(&mut head).map_err(|e| Error::io(path, e))?;
    let file = super::open_regular_file(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    let reader: Box<dyn Read> = if is_gzip(&head[..got]) {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| idx_error(path, format!("cannot read (corrupt gzip stream?): {e}")))?;
    Ok(out)
}

/// The header of an IDX file (reads at most its first 1 KiB).
pub fn read_header(path: &Path) -> Result<IdxHeader> {
    let bytes = read_content(path, 1024)?;
    parse_header(&bytes, path)
}

/// An IDX file of unsigned bytes: its header and items, checked to be exactly as long as the
/// header says.
pub fn read_bytes(path: &Path) -> Result<(IdxHeader, Vec<u8>)> {
    let header = read_header(path)?;
    if header.item_type != UNSIGNED_BYTE {
        return Err(idx_error(
            path,
            format!(
                "item type 0x{:02x}; only unsigned bytes (0x08), the type of every MNIST-family image and label file, are read",
                header.item_type
            ),
        ));
    }
    let payload = header
        .dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&p| p <= MAX_PAYLOAD_BYTES)
        .ok_or_else(|| {
            idx_error(
                path,
                format!(
                    "header dimensions {:?} describe more than {MAX_PAYLOAD_BYTES} bytes: not an MNIST-family file",
                    header.dims
                ),
            )
        })?;
    let expected = header.len() as u64 + payload;
    // One byte more than expected tells a padded file from an exact one.
    let bytes = read_content(path, expected + 1)?;
    if bytes.len() as u64 != expected {
        let what = if (bytes.len() as u64) < expected {
            "truncated"
        } else {
            "longer than its header says"
        };
        return Err(idx_error(
            path,
            format!(
                "{what}: the header {:?} needs {expected} bytes ({} of header and {payload} of items), the (decompressed) file has {}{}",
                header.dims,
                header.len(),
                if (bytes.len() as u64) > expected { "more".to_string() } else { bytes.len().to_string() },
                if (bytes.len() as u64) > expected { "" } else { " bytes" },
            ),
        ));
    }
    let items = bytes[header.len()..].to_vec();
    Ok((header, items))
}

/// Images of a file: `(n, [rows, cols, 1], pixels)` from a 3-dimensional header.
fn read_images(path: &Path) -> Result<(usize, [usize; 3], Vec<u8>)> {
    let (h, px) = read_bytes(path)?;
    match h.dims[..] {
        [n, r, c] if n > 0 && r > 0 && c > 0 => Ok((n, [r, c, 1], px)),
        _ => Err(idx_error(
            path,
            format!(
                "an image file has 3 non-zero dimensions (items, rows, columns); this header has {:?} (a label file given as images?)",
                h.dims
            ),
        )),
    }
}

/// Labels of a file from a 1-dimensional header.
fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let (h, labels) = read_bytes(path)?;
    if h.dims.len() != 1 {
        return Err(idx_error(
            path,
            format!(
                "a label file has 1 dimension (items); this header has {:?} (an image file given as labels?)",
                h.dims
            ),
        ));
    }
    Ok(labels)
}

/// The image shape `[rows, cols, 1]` from an image file's header.
pub fn image_shape(path: &Path) -> Result<[usize; 3]> {
    let h = read_header(path)?;
    match h.dims[..] {
        [_, r, c] if r > 0 && c > 0 => Ok([r, c, 1]),
        _ => Err(idx_error(
            path,
            format!(
                "an image file has 3 dimensions (items, rows, columns); this header has {:?}",
                h.dims
            ),
        )),
    }
}

/// Mixed into the run's seed for the training subset.
const TRAIN_SUBSET_SEED: u64 = 0x1D7_7A1;
/// Mixed into the run's seed for the test subset.
const TEST_SUBSET_SEED: u64 = 0x1D7_7E57;

/// `n` of `total` indices: all of them in file order, or a seeded random subset (the first `n`
/// of one permutation, so that a smaller subset of the same seed is contained in a larger one).
fn subset(total: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..total).collect();
    if n < total {
        rows.shuffle(&mut StdRng::seed_from_u64(seed));
        rows.truncate(n);
    }
    rows
}

/// One split: images and labels, checked to agree, subset to `n` points.
struct Split {
    pixels: Vec<f64>,
    labels: Vec<usize>,
}

fn load_split(
    images: &Path,
    labels: &Path,
    n: Option<usize>,
    shape: [usize; 3],
    seed: u64,
    key: &str,
) -> Result<Split> {
    let (count, file_shape, px) = read_images(images)?;
    if file_shape != shape {
        return Err(idx_error(
            images,
            format!(
                "images of {}×{}, the training images are {}×{}",
                file_shape[0], file_shape[1], shape[0], shape[1]
            ),
        ));
    }
    let lab = read_labels(labels)?;
    if lab.len() != count {
        return Err(idx_error(
            labels,
            format!(
                "{} labels for the {count} images of {}",
                lab.len(),
                images.display()
            ),
        ));
    }
    let n = n.unwrap_or(count);
    if n > count {
        return Err(Error::value(
            key,
            n,
            format!("at most the {count} images of {}", images.display()),
        ));
    }
    let d = shape[0] * shape[1];
    let rows = subset(count, n, seed);
    let pixels = rows
        .iter()
        .flat_map(|&i| px[i * d..(i + 1) * d].iter().map(|&p| p as f64 / 255.0))
        .collect();
    let labels = rows.iter().map(|&i| lab[i] as usize).collect();
    Ok(Split { pixels, labels })
}

/// Builds the data set of an IDX source: seeded subsets of `n_train`/`n_test` points (all by
/// default), pixels scaled, one-hot targets over the labels `0 … max` of both files.
pub fn dataset(
    src: &IdxSource,
    n_train: Option<usize>,
    n_test: Option<usize>,
    seed: u64,
) -> Result<Dataset> {
    let shape = image_shape(&src.train_images)?;
    let train = load_split(
        &src.train_images,
        &src.train_labels,
        n_train,
        shape,
        seed ^ TRAIN_SUBSET_SEED,
        "data.n_train",
    )?;
    let test = load_split(
        &src.test_images,
        &src.test_labels,
        n_test,
        shape,
        seed ^ TEST_SUBSET_SEED,
        "data.n_test",
    )?;
    if train.labels.is_empty() {
        return Err(Error::value("data.n_train", 0, "at least 1 training image"));
    }
    let k = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |m| m + 1);
    let classes: Vec<String> = match &src.class_names {
        Some(names) if names.len() >= k => names.clone(),
        Some(names) => {
            return Err(Error::value(
                "data.class_names",
                format!("{} names", names.len()),
                format!("a name for each of the {k} labels 0…{} in the files", k - 1),
            ))
        }
        None => (0..k).map(|c| c.to_string()).collect(),
    };
    let k = classes.len();
    if k < 2 {
        return Err(idx_error(
            &src.train_labels,
            "every label is 0: classification needs at least 2 classes",
        ));
    }
    let [on, off] = src.one_hot_values;
    let one_hot = |labels: &[usize]| -> Vec<f64> {
        labels
            .iter()
            .flat_map(|&c| (0..k).map(move |j| if j == c { on } else { off }))
            .collect()
    };
    let d = shape[0] * shape[1] * shape[2];
    let mut ds = Dataset {
        input_dim: d,
        n_outputs: k,
        y_train: one_hot(&train.labels),
        x_train: train.pixels,
        x_val: Vec::new(),
        y_val: Vec::new(),
        y_test: one_hot(&test.labels),
        x_test: test.pixels,
        feature_names: (0..d)
            .map(|i| format!("px_{}_{}", i / shape[1], i % shape[1]))
            .collect(),
        target_names: classes.iter().map(|c| format!("class={c}")).collect(),
        classes: Some(classes),
        text: None,
    };
    ds.carve_validation(src.validation_fraction);
    if src.scaling == PixelScaling::Standardize {
        standardize_pixels(&mut ds);
    }
    Ok(ds)
}

/// Per pixel `(x − μ)/σ` with the training points' mean and population standard deviation (a
/// pixel constant over the training points is only centred).
fn standardize_pixels(ds: &mut Dataset) {
    let d = ds.input_dim;
    let n = ds.n_train() as f64;
    let mut mean = vec![0.0; d];
    for row in ds.x_train.chunks(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; d];
    for row in ds.x_train.chunks(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 0.0 {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    for x in [&mut ds.x_train, &mut ds.x_val, &mut ds.x_test] {
        for row in x.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
                *v = (*v - m) * s;
            }
        }
    }
}

/// Writes an IDX file of unsigned bytes (tests and tools; gzip-compressed when `gzip`).
pub fn write_idx(path: &Path, dims: &[usize], items: &[u8], gzip: bool) -> std::io::Result<()> {
    let mut bytes = vec![0u8, 0, UNSIGNED_BYTE, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(items);
    if gzip {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes)?;
        bytes = enc.finish()?;
    }
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_nested_and_all_means_file_order() {
        assert_eq!(subset(5, 5, 1), vec![0, 1, 2, 3, 4]);
        let small = subset(100, 10, 7);
        let large = subset(100, 40, 7);
        assert_eq!(&large[..10], &small[..]);
        let mut s = small.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn headers_parse_big_endian_dimensions() {
        let b = [0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28];
        let h = parse_header(&b, Path::new("x")).unwrap();
        assert_eq!(h.dims, vec![60000, 28, 28]);
        assert_eq!(h.len(), 16);
        assert!(parse_header(&[0, 0, 7, 1], Path::new("x")).is_err());
        assert!(parse_header(&[0, 0, 8, 3, 0, 0], Path::new("x")).is_err());
    }
}
