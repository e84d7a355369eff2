//! IDX image data (`data.kind = "idx"`): files the tests write themselves (plain and gzip),
//! every malformed-header class as a clear error naming the file, seeded nested subsets,
//! training-only standardisation, and end-to-end runs of an MLP and a conv net. One test reads
//! the real Fashion-MNIST files of the Debian package when they are installed and says NOT RUN
//! loudly when they are not.

mod common;

use std::path::{Path, PathBuf};

use ntk_dynamics::config;
use ntk_dynamics::data::{self, idx};

/// Writes `n` images of `r × c` (pixel `(i·7 + p) mod 256`) and labels `i mod k`.
fn write_set(
    dir: &Path,
    prefix: &str,
    n: usize,
    r: usize,
    c: usize,
    k: u8,
    gz: bool,
) -> (PathBuf, PathBuf) {
    let ext = if gz { ".gz" } else { "" };
    let img = dir.join(format!("{prefix}-images{ext}"));
    let lab = dir.join(format!("{prefix}-labels{ext}"));
    let px: Vec<u8> = (0..n * r * c)
        .map(|p| ((p / (r * c) * 7 + p) % 256) as u8)
        .collect();
    idx::write_idx(&img, &[n, r, c], &px, gz).unwrap();
    let labels: Vec<u8> = (0..n).map(|i| (i % k as usize) as u8).collect();
    idx::write_idx(&lab, &[n], &labels, gz).unwrap();
    (img, lab)
}

fn idx_toml(
    dir: &Path,
    train: &(PathBuf, PathBuf),
    test: &(PathBuf, PathBuf),
    extra_data: &str,
    model: &str,
) -> String {
    format!(
        r#"[experiment]
name = "idx_tiny"

[data]
kind = "idx"
train_images = "{}"
train_labels = "{}"
test_images = "{}"
test_labels = "{}"
{extra_data}

[model]
width = 32
depth = 1
{model}

[training]
learning_rate = 0.5
steps = 4
batch_size = 8

[kernel]
form = "trace"
probe_size = 8

[logging]
every = 2
kernel_every = 2

[outputs]
dir = "{}"
"#,
        train.0.display(),
        train.1.display(),
        test.0.display(),
        test.1.display(),
        dir.join("results").display()
    )
}

fn load(dir: &Path, toml: &str) -> ntk_dynamics::Result<data::Dataset> {
    let exp = config::parse_str(toml, Some(&dir.join("c.toml")))?;
    data::load(&exp.data, exp.seed)
}

#[test]
fn plain_and_gzip_files_give_the_same_data_with_the_shape_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let plain = (
        write_set(dir.path(), "tr", 30, 5, 4, 3, false),
        write_set(dir.path(), "te", 10, 5, 4, 3, false),
    );
    let gz = (
        write_set(dir.path(), "trz", 30, 5, 4, 3, true),
        write_set(dir.path(), "tez", 10, 5, 4, 3, true),
    );
    let a = load(
        dir.path(),
        &idx_toml(dir.path(), &plain.0, &plain.1, "", ""),
    )
    .unwrap();
    let b = load(dir.path(), &idx_toml(dir.path(), &gz.0, &gz.1, "", "")).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        (a.input_dim, a.n_outputs, a.n_train(), a.n_test()),
        (20, 3, 30, 10)
    );
    // All points by default, in file order; pixels / 255; one-hot labels i mod 3.
    assert_eq!(a.x_train[5], 5.0 / 255.0);
    assert_eq!(&a.y_train[..6], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let exp = config::parse_str(
        &idx_toml(
            dir.path(),
            &plain.0,
            &plain.1,
            "",
            "architecture = \"conv\"",
        ),
        None,
    )
    .unwrap();
    match &exp.model.architecture {
        ntk_dynamics::model::Architecture::Conv(c) => {
            assert_eq!((c.image.height, c.image.width, c.image.channels), (5, 4, 1))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn subsets_are_seeded_and_nested_and_standardisation_uses_training_points_only() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = (
        write_set(dir.path(), "tr", 50, 3, 3, 4, false),
        write_set(dir.path(), "te", 20, 3, 3, 4, false),
    );
    let small = load(
        dir.path(),
        &idx_toml(dir.path(), &tr, &te, "n_train = 10\nn_test = 5", ""),
    )
    .unwrap();
    let large = load(
        dir.path(),
        &idx_toml(dir.path(), &tr, &te, "n_train = 30\nn_test = 5", ""),
    )
    .unwrap();
    assert_eq!(&large.x_train[..10 * 9], &small.x_train[..]);
    assert_eq!(small.x_test, large.x_test);
    let s = load(
        dir.path(),
        &idx_toml(
            dir.path(),
            &tr,
            &te,
            "n_train = 30\nscaling = \"standardize\"",
            "",
        ),
    )
    .unwrap();
    for p in 0..9 {
        let col: Vec<f64> = (0..30).map(|i| s.x_train[i * 9 + p]).collect();
        let mean = col.iter().sum::<f64>() / 30.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 30.0;
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-9,
            "pixel {p}: {mean} {var}"
        );
    }
    // The test points use the training statistics, not their own.
    let u = load(
        dir.path(),
        &idx_toml(dir.path(), &tr, &te, "n_train = 30", ""),
    )
    .unwrap();
    let col: Vec<f64> = (0..30).map(|i| u.x_train[i * 9]).collect();
    let (m, sd) = {
        let m = col.iter().sum::<f64>() / 30.0;
        (
            m,
            (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 30.0).sqrt(),
        )
    };
    assert!((s.x_test[0] - (u.x_test[0] - m) / sd).abs() < 1e-12);
}

fn expect_error(dir: &Path, toml: &str, needles: &[&str]) {
    let e = load(dir, toml).expect_err("should fail").to_string();
    for n in needles {
        assert!(e.contains(n), "{e:?} lacks {n:?}");
    }
}

/// Truncated (plain and gzip), corrupt gzip and padded image files are refused, naming the
/// file.
fn damaged_image_files_are_refused(d: &Path, tr: &(PathBuf, PathBuf), te: &(PathBuf, PathBuf)) {
    // Truncated images (plain and gzip).
    let cut = d.join("cut");
    let bytes = std::fs::read(&tr.0).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    expect_error(
        d,
        &idx_toml(d, &(cut.clone(), tr.1.clone()), te, "", ""),
        &["cut", "truncated", "[12, 4, 4]"],
    );
    let cutz = d.join("cut.gz");
    idx::write_idx(&cutz, &[12, 4, 4], &bytes[16..bytes.len() - 5], true).unwrap();
    expect_error(
        d,
        &idx_toml(d, &(cutz.clone(), tr.1.clone()), te, "", ""),
        &["cut.gz", "truncated"],
    );
    // A corrupt gzip stream.
    let bad_gz = d.join("bad.gz");
    let mut gzb = std::fs::read(&write_set(d, "z", 12, 4, 4, 3, true).0).unwrap();
    let mid = gzb.len() / 2;
    gzb.truncate(mid);
    std::fs::write(&bad_gz, &gzb).unwrap();
    expect_error(
        d,
        &idx_toml(d, &(bad_gz.clone(), tr.1.clone()), te, "", ""),
        &["bad.gz"],
    );
    // Padded: longer than the header says.
    let pad = d.join("pad");
    let mut long = bytes.clone();
    long.extend_from_slice(&[0, 0, 0]);
    std::fs::write(&pad, &long).unwrap();
    expect_error(
        d,
        &idx_toml(d, &(pad, tr.1.clone()), te, "", ""),
        &["pad", "longer than its header"],
    );
}

#[test]
fn malformed_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tr, te) = (
        write_set(d, "tr", 12, 4, 4, 3, false),
        write_set(d, "te", 6, 4, 4, 3, false),
    );
    damaged_image_files_are_refused(d, &tr, &te);
    // Wrong magic: a CSV given as images.
    let csv = common::write(d, "x.csv", "a,b\n1,2\n");
    expect_error(
        d,
        &idx_toml(d, &(csv, tr.1.clone()), &te, "", ""),
        &["x.csv", "not an IDX file", "magic"],
    );
    // Another item type.
    let ints = d.join("ints");
    std::fs::write(&ints, [0u8, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 5]).unwrap();
    expect_error(
        d,
        &idx_toml(d, &tr, &(te.0.clone(), ints), "", ""),
        &["ints", "0x0c", "unsigned bytes"],
    );
    // Labels and images swapped; counts that disagree.
    expect_error(
        d,
        &idx_toml(d, &(tr.1.clone(), tr.0.clone()), &te, "", ""),
        &["tr-labels", "3 dimensions"],
    );
    let few = write_set(d, "few", 7, 4, 4, 3, false);
    expect_error(
        d,
        &idx_toml(d, &(tr.0.clone(), few.1.clone()), &te, "", ""),
        &["few-labels", "7 labels for the 12 images"],
    );
    // A test set of another image size.
    let other = write_set(d, "other", 6, 5, 5, 3, false);
    expect_error(
        d,
        &idx_toml(d, &tr, &other, "", ""),
        &["other-images", "5×5", "4×4"],
    );
    // More points than the file holds; a missing file.
    expect_error(
        d,
        &idx_toml(d, &tr, &te, "n_train = 13", ""),
        &["data.n_train", "13", "at most the 12 images"],
    );
    expect_error(
        d,
        &idx_toml(d, &(d.join("absent"), tr.1.clone()), &te, "", ""),
        &["absent"],
    );
    // Keys of other kinds are rejected by name.
    let e = config::parse_str(&idx_toml(d, &tr, &te, "target = [\"y\"]", ""), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target"), "{e}");
    expect_error(
        d,
        &idx_toml(d, &tr, &te, "class_names = [\"a\", \"a\", \"b\"]", ""),
        &["data.class_names", "distinct"],
    );
    expect_error(
        d,
        &idx_toml(d, &tr, &te, "class_names = [\"a\", \"b\"]", ""),
        &["data.class_names", "3 labels"],
    );
}

#[test]
fn an_mlp_and_a_conv_net_run_end_to_end_on_idx_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tr, te) = (
        write_set(d, "tr", 24, 6, 6, 3, true),
        write_set(d, "te", 9, 6, 6, 3, true),
    );
    for (name, model) in [
        ("mlp", ""),
        (
            "conv",
            "architecture = \"conv\"\nreadout = \"global_avg_pool\"",
        ),
    ] {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &idx_toml(d, &tr, &te, "class_names = [\"a\", \"b\", \"c\"]", model),
        );
        let out = d.join(name);
        let o = common::run_into(&cfg, &out);
        assert!(o.status.success(), "{name}: {}", common::stderr(&o));
        let summary = common::read_json(&out.join("summary.json"));
        assert!(
            summary["tracks"]["network"]["test_loss"].is_number(),
            "{name}"
        );
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("accuracy"), "{name}");
    }
}

/// The Debian package's files (`apt-get install dataset-fashion-mnist`).
const FASHION: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn the_real_fashion_mnist_files_load_with_their_known_counts() {
    let dir = Path::new(FASHION);
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!(
            "\n\n*** NOT RUN: {FASHION} is absent (apt-get install dataset-fashion-mnist; .ci/run installs it) ***\n"
        );
        return;
    }
    let (h, px) = idx::read_bytes(&dir.join("train-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(h.dims, vec![60000, 28, 28]);
    assert_eq!(px.len(), 60000 * 784);
    let (h, labels) = idx::read_bytes(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(h.dims, vec![10000]);
    // The test set is balanced: 1,000 images of each of the 10 classes.
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [1000; 10]);
}
