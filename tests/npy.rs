//! NumPy data (`data.kind = "npy"`): files written by numpy itself (`tests/data/npy/`, from
//! `tests/reference/make_npy_fixtures.py`) read to the closed forms they were written from; an
//! `.npz` and a CSV holding the same numbers give the same run bit for bit; separate `.npy` files
//! with test arrays and image shapes; and every malformed array refused with the file and the
//! array named. The tests' own `.npy` writer below is a second, hand-written implementation of
//! the format (header dict, 64-byte alignment, little-endian payload).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use ntk_dynamics::config;
use ntk_dynamics::data::{self, npy};

/// A `.npy` file's bytes (format version 1).
fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    b.extend(payload);
    b
}

fn f64_payload(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_npy(shape: &[usize], v: &[f64]) -> Vec<u8> {
    npy_bytes("<f8", false, shape, &f64_payload(v))
}

fn i64_npy(v: &[i64]) -> Vec<u8> {
    let payload: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    npy_bytes("<i8", false, &[v.len()], &payload)
}

/// An `.npz` archive (stored, as `numpy.savez` writes it) of `(name, npy bytes)`.
fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/npy")
        .join(name)
}

fn file(path: PathBuf) -> npy::ArrayLocation {
    npy::ArrayLocation {
        file: path,
        name: None,
    }
}

fn member(path: PathBuf, name: &str) -> npy::ArrayLocation {
    npy::ArrayLocation {
        file: path,
        name: Some(name.into()),
    }
}

#[test]
fn arrays_numpy_wrote_read_to_their_closed_forms() {
    let matrix: Vec<f64> = (0..5)
        .flat_map(|i| (0..3).map(move |j| (10 * i + j) as f64))
        .collect();
    for name in ["fortran.npy", "big_endian.npy"] {
        let (h, v) = npy::read_array(&file(fixture(name))).unwrap();
        assert_eq!(h.shape, vec![5, 3], "{name}");
        assert_eq!(v, matrix, "{name}: row-major values 10 i + j");
    }
    let (h, v) = npy::read_array(&member(fixture("images.npz"), "x")).unwrap();
    assert_eq!(h.shape, vec![6, 4, 4, 2]);
    let mut expected = Vec::new();
    for i in 0..6 {
        for r in 0..4 {
            for c in 0..4 {
                for ch in 0..2 {
                    expected.push((100 * i + 10 * r + c) as f64 + 0.5 * ch as f64);
                }
            }
        }
    }
    assert_eq!(v, expected, "NHWC images from savez_compressed (deflate)");
    let (h, v) = npy::read_array(&member(fixture("images.npz"), "y")).unwrap();
    assert!(h.element.is_integer());
    assert_eq!(v, vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    let (_, v) = npy::read_array(&file(fixture("labels_u8.npy"))).unwrap();
    assert_eq!(v, vec![0.0, 1.0, 2.0, 0.0, 1.0]);
    let (_, v) = npy::read_array(&file(fixture("labels_bool.npy"))).unwrap();
    assert_eq!(v, vec![0.0, 1.0, 0.0, 1.0, 0.0]);
    let e = npy::read_array(&file(fixture("strings.npy")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("strings.npy") && e.contains("dtype"), "{e}");
}

#[test]
fn an_archive_numpy_wrote_runs_a_conv_net_with_its_test_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[experiment]\nname = \"img\"\n[data]\nkind = \"npy\"\nnpz = \"{}\"\nfeature_scale = 0.01\n\
         [model]\narchitecture = \"conv\"\nwidth = 8\ndepth = 1\nfilter = 3\n\
         [training]\nsteps = 3\n[kernel]\nsolutions = [\"analytic\"]\n[outputs]\ndir = \"{}\"\n",
        fixture("images.npz").display(),
        dir.path().display()
    );
    let cfg = common::write(dir.path(), "img.toml", &toml);
    let exp = config::load(&cfg).unwrap();
    let data::DataSource::Npy(src) = &exp.data.source else {
        panic!("not npy")
    };
    assert_eq!(src.image_shape, Some([4, 4, 2]));
    assert!(!src.standardize, "images are not standardised unless asked");
    assert!(
        src.one_hot.is_some(),
        "integer labels become one-hot classes"
    );
    let ds = data::load(&exp.data, exp.seed).unwrap();
    assert_eq!((ds.n_train(), ds.n_test(), ds.n_outputs), (6, 3, 3));
    // The test arrays are used as they are (not shuffled): the first test image is image 6.
    assert_eq!(ds.x_test[0], 6.0);
    let o = common::run_into(&cfg, &dir.path().join("run"));
    assert!(o.status.success(), "{}", common::stderr(&o));
    let resolved = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(resolved.contains("x_test = \"x_test\""), "{resolved}");
}

/// Writes the same data as a CSV (every value in Rust's shortest round-trip form) and as an
/// `.npz`; returns the two configs.
fn same_data_two_ways(dir: &Path, classes: bool) -> (PathBuf, PathBuf) {
    let n = 40;
    let x = common::gauss(n * 3, 11);
    let y: Vec<f64> = if classes {
        (0..n).map(|i| (i % 3) as f64).collect()
    } else {
        common::gauss(n, 12)
    };
    let mut csv = String::from("x0,x1,x2,y\n");
    for i in 0..n {
        csv += &format!("{},{},{},{}\n", x[3 * i], x[3 * i + 1], x[3 * i + 2], y[i]);
    }
    let y_npy = if classes {
        i64_npy(&y.iter().map(|&v| v as i64).collect::<Vec<_>>())
    } else {
        f64_npy(&[n], &y)
    };
    write_npz(
        &dir.join("d.npz"),
        &[("x", f64_npy(&[n, 3], &x)), ("y", y_npy)],
    );
    let csv_path = common::write(dir, "d.csv", &csv);
    let body = |data: String| {
        format!(
            "[experiment]\nname = \"same\"\nseed = 5\n[data]\n{data}test_fraction = 0.25\n\
             [model]\nwidth = 32\n[training]\nsteps = 10\nlr_scale = 0.5\n[logging]\nevery = 2\n\
             [outputs]\ndir = \"{}\"\n",
            dir.join("results").display()
        )
    };
    let one_hot = if classes { "one_hot = true\n" } else { "" };
    let c = common::write(
        dir,
        "csv.toml",
        &body(format!(
            "kind = \"csv\"\npath = \"{}\"\ntarget = [\"y\"]\n{one_hot}",
            csv_path.display()
        )),
    );
    let z = common::write(
        dir,
        "npz.toml",
        &body(format!(
            "kind = \"npy\"\nnpz = \"{}\"\n",
            dir.join("d.npz").display()
        )),
    );
    (c, z)
}

#[test]
fn an_npz_and_a_csv_of_the_same_numbers_give_the_same_run_bit_for_bit() {
    for classes in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (c, z) = same_data_two_ways(dir.path(), classes);
        for (cfg, out) in [(&c, "csv"), (&z, "npz")] {
            let o = common::run_into(cfg, &dir.path().join(out));
            assert!(o.status.success(), "{out}: {}", common::stderr(&o));
        }
        for f in ["metrics.csv", "predictions.csv"] {
            let a = std::fs::read(dir.path().join("csv").join(f)).unwrap();
            let b = std::fs::read(dir.path().join("npz").join(f)).unwrap();
            assert!(a == b, "{f} differs (classes: {classes})");
        }
    }
}

#[test]
fn separate_npy_files_fortran_order_and_a_declared_image_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 8;
    // x stored column-major: element (i, j) = i + 0.1 j.
    let col_major: Vec<f64> = (0..4)
        .flat_map(|j| (0..n).map(move |i| i as f64 + 0.1 * j as f64))
        .collect();
    std::fs::write(
        d.join("x.npy"),
        npy_bytes("<f8", true, &[n, 4], &f64_payload(&col_major)),
    )
    .unwrap();
    std::fs::write(d.join("y.npy"), f64_npy(&[n, 2], &common::gauss(2 * n, 1))).unwrap();
    std::fs::write(d.join("xt.npy"), f64_npy(&[3, 4], &common::gauss(12, 2))).unwrap();
    std::fs::write(d.join("yt.npy"), f64_npy(&[3, 2], &common::gauss(6, 3))).unwrap();
    let toml = |extra: &str| {
        format!(
            "[experiment]\nname = \"sep\"\n[data]\nkind = \"npy\"\nx = \"{}\"\ny = \"{}\"\n\
             x_test = \"{}\"\ny_test = \"{}\"\nshuffle = false\nstandardize = false\n{extra}\n\
             [training]\nsteps = 2\n",
            d.join("x.npy").display(),
            d.join("y.npy").display(),
            d.join("xt.npy").display(),
            d.join("yt.npy").display()
        )
    };
    let exp = config::load(&common::write(d, "a.toml", &toml(""))).unwrap();
    let ds = data::load(&exp.data, 0).unwrap();
    assert_eq!((ds.n_train(), ds.n_test(), ds.n_outputs), (8, 3, 2));
    assert_eq!(
        &ds.x_train[4..8],
        &[1.0, 1.1, 1.2, 1.3],
        "row 1 in row-major order"
    );
    let exp = config::load(&common::write(
        d,
        "b.toml",
        &toml("image_shape = [2, 2, 1]"),
    ))
    .unwrap();
    let data::DataSource::Npy(src) = &exp.data.source else {
        panic!()
    };
    assert_eq!(src.image_shape, Some([2, 2, 1]));
    let e = config::load(&common::write(
        d,
        "c.toml",
        &toml("image_shape = [3, 2, 1]"),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("data.image_shape") && e.contains("4 features"),
        "{e}"
    );
}

/// One malformed case: the arrays (name in `d.npz`, bytes), and what the error must say.
struct Case {
    what: &'static str,
    arrays: Vec<(&'static str, Vec<u8>)>,
    extra: &'static str,
    expect: &'static [&'static str],
}

fn malformed_cases() -> Vec<Case> {
    let mut cases = malformed_encoding_cases();
    cases.extend(malformed_shape_cases());
    cases
}

/// Arrays whose dtype, values, lengths or bytes are wrong.
fn malformed_encoding_cases() -> Vec<Case> {
    let x = || f64_npy(&[4, 2], &[0.5; 8]);
    let y = || i64_npy(&[0, 1, 0, 1]);
    let mut nan = vec![0.5; 8];
    nan[5] = f64::NAN;
    let mut huge = x();
    huge[8..10].copy_from_slice(&60_000u16.to_le_bytes());
    let mut truncated = x();
    truncated.truncate(truncated.len() - 8);
    let mut bad_magic = x();
    bad_magic[1] = b'X';
    vec![
        Case {
            what: "strings",
            arrays: vec![
                ("x", npy_bytes("<U1", false, &[4, 2], &[0; 32])),
                ("y", y()),
            ],
            extra: "",
            expect: &["\"x\"", "dtype <U1"],
        },
        Case {
            what: "complex",
            arrays: vec![
                ("x", npy_bytes("<c16", false, &[4, 2], &[0; 128])),
                ("y", y()),
            ],
            extra: "",
            expect: &["\"x\"", "dtype"],
        },
        Case {
            what: "ragged (object)",
            arrays: vec![("x", npy_bytes("|O", false, &[4], &[0; 32])), ("y", y())],
            extra: "",
            expect: &["\"x\"", "dtype"],
        },
        Case {
            what: "half floats",
            arrays: vec![
                ("x", npy_bytes("<f2", false, &[4, 2], &[0; 16])),
                ("y", y()),
            ],
            extra: "",
            expect: &["\"x\"", "float32"],
        },
        Case {
            what: "NaN",
            arrays: vec![("x", f64_npy(&[4, 2], &nan)), ("y", y())],
            extra: "",
            expect: &["\"x\"", "non-finite", "index [2, 1]", "data.x"],
        },
        Case {
            what: "lengths",
            arrays: vec![("x", x()), ("y", i64_npy(&[0, 1, 0]))],
            extra: "",
            expect: &["data.y", "as many targets"],
        },
        Case {
            what: "0-d",
            arrays: vec![("x", f64_npy(&[], &[1.0])), ("y", y())],
            extra: "",
            expect: &["\"x\"", "0-d"],
        },
        Case {
            what: "huge header",
            arrays: vec![("x", huge), ("y", y())],
            extra: "",
            expect: &["\"x\"", "header of 60000 bytes"],
        },
        Case {
            what: "truncated",
            arrays: vec![("x", truncated), ("y", y())],
            extra: "",
            expect: &["\"x\"", "truncated or padded"],
        },
        Case {
            what: "magic",
            arrays: vec![("x", bad_magic), ("y", y())],
            extra: "",
            expect: &["\"x\"", "magic"],
        },
    ]
}

/// Arrays of the wrong rank or width, missing or unpaired, or targets that cannot be one-hot.
fn malformed_shape_cases() -> Vec<Case> {
    let x = || f64_npy(&[4, 2], &[0.5; 8]);
    let y = || i64_npy(&[0, 1, 0, 1]);
    vec![
        Case {
            what: "3-d targets",
            arrays: vec![("x", x()), ("y", f64_npy(&[4, 1, 1], &[0.0; 4]))],
            extra: "",
            expect: &["\"y\"", "targets are (N,) or (N, K)"],
        },
        Case {
            what: "missing array",
            arrays: vec![("inputs", x()), ("y", y())],
            extra: "",
            expect: &["no such array", "inputs, y"],
        },
        Case {
            what: "one test array",
            arrays: vec![("x", x()), ("y", y())],
            extra: "x_test = \"x\"\n",
            expect: &["data.x_test", "both"],
        },
        Case {
            what: "test width",
            arrays: vec![
                ("x", x()),
                ("y", y()),
                ("x_test", f64_npy(&[2, 3], &[0.0; 6])),
                ("y_test", i64_npy(&[0, 1])),
            ],
            extra: "",
            expect: &["data.x_test", "2 features"],
        },
        Case {
            what: "an archive with one test array",
            arrays: vec![
                ("x", x()),
                ("y", y()),
                ("x_test", f64_npy(&[2, 2], &[0.0; 4])),
            ],
            extra: "",
            expect: &["data.npz", "only x_test"],
        },
        Case {
            what: "one-hot of a matrix",
            arrays: vec![("x", x()), ("y", f64_npy(&[4, 2], &[0.0; 8]))],
            extra: "one_hot = true\n",
            expect: &["data.one_hot", "2 columns"],
        },
    ]
}

#[test]
fn every_malformed_array_is_refused_naming_the_file_and_the_array() {
    for case in malformed_cases() {
        let dir = tempfile::tempdir().unwrap();
        let npz = dir.path().join("d.npz");
        write_npz(&npz, &case.arrays);
        let cfg = common::write(
            dir.path(),
            "m.toml",
            &format!(
                "[experiment]\nname = \"m\"\n[data]\nkind = \"npy\"\nnpz = \"{}\"\n{}[training]\nsteps = 1\n",
                npz.display(),
                case.extra
            ),
        );
        let e = match config::load(&cfg) {
            Err(e) => e.to_string(),
            Ok(exp) => data::load(&exp.data, 0)
                .map(|_| "loaded".to_string())
                .unwrap_or_else(|e| e.to_string()),
        };
        for want in case.expect {
            assert!(e.contains(want), "{}: {want:?} not in: {e}", case.what);
        }
        assert!(
            e.contains("d.npz") || e.contains("m.toml"),
            "{}: names neither the archive nor the config: {e}",
            case.what
        );
    }
    // Through the binary: a clear message, a non-zero exit, nothing written.
    let dir = tempfile::tempdir().unwrap();
    write_npz(
        &dir.path().join("d.npz"),
        &[("x", f64_npy(&[], &[1.0])), ("y", i64_npy(&[0]))],
    );
    let cfg = common::write(
        dir.path(),
        "m.toml",
        &format!(
            "[experiment]\nname = \"m\"\n[data]\nkind = \"npy\"\nnpz = \"{}\"\n[outputs]\ndir = \"{}\"\n",
            dir.path().join("d.npz").display(),
            dir.path().join("results").display()
        ),
    );
    let o = common::run_bin(&[cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("0-d"), "{}", common::stderr(&o));
    assert!(!dir.path().join("results").exists());
}

#[test]
fn csv_features_choose_columns_and_leave_text_columns_unread() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,a,b,c,y\n");
    for i in 0..12 {
        csv += &format!("p{i},{},{},{},{}\n", i, i * i, 3 * i + 1, i % 2);
    }
    let path = common::write(dir.path(), "t.csv", &csv);
    let load = |extra: &str| {
        let cfg = common::write(
            dir.path(),
            "t.toml",
            &common::csv_toml(dir.path(), &path, extra),
        );
        config::load(&cfg).and_then(|e| data::load(&e.data, 0))
    };
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("id") && e.contains("data.features"), "{e}");
    let ds = load("features = [\"c\", \"a\"]\nstandardize = false\nshuffle = false").unwrap();
    assert_eq!(ds.feature_names, vec!["c", "a"]);
    assert_eq!(
        &ds.x_train[..4],
        &[1.0, 0.0, 4.0, 1.0],
        "columns in the order asked"
    );
    for (bad, want) in [
        ("features = []", "at least one"),
        ("features = [\"a\", \"a\"]", "twice"),
        ("features = [\"a\", \"y\"]", "data.target"),
        ("features = [\"zz\"]", "column not found"),
    ] {
        let e = load(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}
