//! Reproducibility across machines: the machine fingerprint a run records, the tolerance of
//! every numeric output (from the network's precision), the integrity of a run directory against
//! its recorded hashes, and the comparison of a reproduction with the recorded files — bitwise
//! where the fingerprint matches, numerically otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::config::Experiment;
use crate::record::RunRecord;
use crate::report::io::sha256_hex;
use crate::{Error, Result};

/// What must match for a reproduction to be bitwise identical.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    /// Crate version.
    pub crate_version: String,
    /// rustc version.
    pub rustc: String,
    /// CPU model name.
    pub cpu: String,
    /// SIMD instruction sets the numerics may use.
    pub isa: Vec<String>,
    /// burn backend.
    pub backend: String,
    /// Network precision.
    pub precision: String,
    /// Threads available.
    pub threads: usize,
    /// The numerics of this build: the revision of the order of operations
    /// ([`NUMERICS_REVISION`]) and the SIMD level the f32/f64 GEMM kernels dispatch to. Runs
    /// recorded before the field existed read as revision 1 (AVX2 GEMM kernels).
    #[serde(default = "numerics_revision_1")]
    pub numerics: String,
}

/// Bumped whenever the order of floating-point operations changes (so a reproduction with a
/// newer build is compared numerically, not bitwise). 2: the empirical NTK's signals of dense
/// networks by the explicit backward recursion, symmetric Gram products by block rows, a full
/// multi-output kernel's blocks below the output diagonal as transposes (and, with
/// the `avx512` feature, AVX-512 GEMM kernels where the CPU has them). 3: the output-averaged
/// empirical NTK of a dense network sums its last hidden layer's outputs through one narrow
/// factor (`φ′(z)·diag(√c)`) instead of output by output.
pub const NUMERICS_REVISION: u32 = 3;

fn numerics_revision_1() -> String {
    "rev 1, gemm avx2".into()
}

/// The SIMD level of the GEMM kernels on this CPU (burn and faer use the `gemm` crate: AVX2+FMA
/// by default; built with the `avx512` feature, AVX-512 where detected at run time).
fn gemm_simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "portable"
}

/// Instruction-set flags that change which SIMD kernels the numerics run.
const ISA_FLAGS: [&str; 8] = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
];

impl Fingerprint {
    /// This machine and build for an experiment.
    pub fn detect(exp: &Experiment) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        };
        let flags = field("flags").unwrap_or_default();
        Fingerprint {
            crate_version: env!("CARGO_PKG_VERSION").into(),
            rustc: env!("NTK_RUSTC_VERSION").into(),
            cpu: field("model name").unwrap_or_else(|| std::env::consts::ARCH.into()),
            isa: ISA_FLAGS
                .iter()
                .filter(|f| flags.split_whitespace().any(|g| g == **f))
                .map(|f| f.to_string())
                .collect(),
            backend: exp.model.backend.name().into(),
            precision: exp.model.precision.name().into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            numerics: format!("rev {NUMERICS_REVISION}, gemm {}", gemm_simd_level()),
        }
    }
}

/// `|a − b| ≤ atol + rtol·max(|a|, |b|)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

impl Tolerance {
    /// Whether two values agree (NaN agrees with NaN, inf with the same inf).
    pub fn accepts(&self, a: f64, b: f64) -> bool {
        if a.is_nan() || b.is_nan() {
            return a.is_nan() && b.is_nan();
        }
        if a.is_infinite() || b.is_infinite() {
            return a == b;
        }
        (a - b).abs() <= self.atol + self.rtol * a.abs().max(b.abs())
    }
}

/// Relative tolerance of values that depend on the network: f64 round-off (1e-9) or, for f32
/// networks, 1e-3 — about 10⁴ f32 epsilons, room for round-off that training amplifies when
/// SIMD paths differ between CPUs (observed: ~1e-4 on losses).
pub fn network_rtol(p: Precision) -> f64 {
    match p {
        Precision::F64 => 1e-9,
        Precision::F32 => 1e-3,
    }
}

/// The tolerance of a named output (a CSV column, a JSON key, a kernel file). Differences of
/// nearly equal numbers are judged on their inputs' scale: RMSEs and predictions on RMS(y),
/// relative changes and kernel distances on 1; accuracies allow two flipped near-ties.
pub fn tolerance_for(name: &str, p: Precision, target_scale: f64, n_eval: usize) -> Tolerance {
    let rtol = network_rtol(p);
    let data = [
        "step", "index", "output", "target", "seed", "n_params", "n_train", "n_test",
    ];
    if data.contains(&name)
        || name.starts_with("x") && name[1..].chars().all(|c| c.is_ascii_digit())
    {
        return Tolerance {
            rtol: 1e-12,
            atol: 0.0,
        };
    }
    let tracks = [
        "network",
        "linearized",
        "linearized_avg",
        "kernel_analytic",
        "kernel_empirical",
        "kernel_empirical_avg",
    ];
    if name.starts_with("rmse")
        || tracks.contains(&name)
        || name.starts_with("train") && name.len() < 6
        || name == "test"
    {
        return Tolerance {
            rtol,
            atol: rtol * target_scale,
        };
    }
    // Ensemble means and variances over members (ensemble.csv), on the targets' scale.
    if name.ends_with("_mean") {
        return Tolerance {
            rtol,
            atol: rtol * target_scale,
        };
    }
    if name.ends_with("_var") {
        return Tolerance {
            rtol,
            atol: rtol * target_scale * target_scale,
        };
    }
    if name.contains("accuracy") || name.contains("agreement") {
        return Tolerance {
            rtol,
            atol: 2.0 / n_eval.max(1) as f64,
        };
    }
    if name.contains("drift") || name.contains("distance") || name.contains("change") {
        return Tolerance { rtol, atol: rtol };
    }
    Tolerance { rtol, atol: 1e-300 }
}

/// The tolerances of every numeric output, as recorded in `report.json`.
pub fn tolerances(
    r: &RunRecord,
    exp: &Experiment,
) -> BTreeMap<String, BTreeMap<String, Tolerance>> {
    let p = exp.model.precision;
    let scale = r.target_scale();
    let n_eval = if r.data.y_test.is_empty() {
        r.n_train()
    } else {
        r.n_test()
    };
    let of = |names: Vec<String>| -> BTreeMap<String, Tolerance> {
        names
            .into_iter()
            .map(|n| {
                let t = tolerance_for(&n, p, scale, n_eval);
                (n, t)
            })
            .collect()
    };
    let mut out = BTreeMap::new();
    let metrics: Vec<String> = crate::record::columns::metrics_columns(r)
        .iter()
        .map(|c| c.name())
        .collect();
    out.insert("metrics.csv".into(), of(metrics));
    let mut preds: Vec<String> = vec!["index".into(), "output".into(), "target".into()];
    preds.extend(r.data.feature_names.iter().cloned());
    preds.extend(r.tracks.iter().map(|t| t.name().to_string()));
    out.insert("predictions.csv".into(), of(preds));
    if r.ensemble.is_some() {
        let mut names: Vec<String> = vec!["index".into(), "output".into(), "target".into()];
        names.extend(r.data.feature_names.iter().cloned());
        for t in ["network", "linearized", "ntk_gp", "nngp_gp"] {
            names.extend([format!("{t}_mean"), format!("{t}_var")]);
        }
        out.insert("ensemble.csv".into(), of(names));
    }
    if !r.context_bits.is_empty() {
        let mut names: Vec<String> = vec!["index".into()];
        names.extend(r.context_bits.iter().map(|c| c.model.clone()));
        out.insert("test_bits_per_context.csv".into(), of(names));
    }
    // summary.json keys are judged by their name like the CSV columns; these stand for the
    // kinds of keys.
    out.insert(
        "summary.json".into(),
        of(vec![
            "value".into(),
            "rmse".into(),
            "drift".into(),
            "accuracy".into(),
        ]),
    );
    out.insert("kernels".into(), kernel_tolerances(r, p));
    out
}

/// Tolerances of the kernel files, on each matrix's scale: analytic kernels are f64
/// computations from the data alone (1e-12); empirical ones come from the network, and so do
/// the GPs (through η, a multiple of η_c from the empirical Θ0).
fn kernel_tolerances(r: &RunRecord, p: crate::backend::Precision) -> BTreeMap<String, Tolerance> {
    let on_scale = |v: &[f64], rtol: f64| Tolerance {
        rtol,
        atol: rtol * v.iter().fold(0.0f64, |a, x| a.max(x.abs())),
    };
    let mut kernels = BTreeMap::new();
    for (name, m) in [
        ("kernels/analytic_ntk.npy", &r.kernels.analytic_ntk),
        ("kernels/analytic_nngp.npy", &r.kernels.analytic_nngp),
        (
            "kernels/analytic_ntk_test_train.npy",
            &r.kernels.analytic_ntk_test_train,
        ),
        (
            "kernels/empirical_ntk_init.npy",
            &r.kernels.empirical_ntk_init,
        ),
        (
            "kernels/empirical_ntk_final.npy",
            &r.kernels.empirical_ntk_final,
        ),
    ] {
        if let Some((v, _)) = m {
            let rtol = if name.contains("analytic") {
                1e-12
            } else {
                network_rtol(p)
            };
            kernels.insert(name.to_string(), on_scale(v, rtol));
        }
    }
    for (stem, (v, _)) in &r.kernels.ensemble_gp {
        kernels.insert(format!("kernels/{stem}.npy"), on_scale(v, network_rtol(p)));
    }
    kernels
}

/// Files of a run directory that are not covered by its recorded hashes.
const UNHASHED: [&str; 3] = ["report.json", "report.md", super::repro::REPLOT_RECORD];

/// The result of checking a directory against its recorded hashes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Integrity {
    /// Files whose bytes differ from the recorded hash.
    pub changed: Vec<String>,
    /// Recorded files that are absent.
    pub missing: Vec<String>,
    /// Files present but not recorded.
    pub extra: Vec<String>,
    /// Files that match.
    pub matching: usize,
}

impl Integrity {
    /// Whether the directory is exactly what was recorded.
    pub fn ok(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Every file below `dir`, as paths relative to it (`kernels/…`).
pub fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            list_files(&e.path(), &format!("{name}/"), out)?;
        } else {
            out.push(name);
        }
    }
    Ok(())
}

/// Checks every file of `dir` against `recorded` (name → SHA-256).
pub fn integrity(dir: &Path, recorded: &BTreeMap<String, String>) -> Result<Integrity> {
    let mut present = Vec::new();
    list_files(dir, "", &mut present)?;
    let mut r = Integrity::default();
    for (name, hash) in recorded {
        match std::fs::read(dir.join(name)) {
            Ok(b) if sha256_hex(&b) == *hash => r.matching += 1,
            Ok(_) => r.changed.push(name.clone()),
            Err(_) => r.missing.push(name.clone()),
        }
    }
    r.extra = present
        .into_iter()
        .filter(|f| !recorded.contains_key(f) && !UNHASHED.contains(&f.as_str()))
        .collect();
    Ok(r)
}

/// How a reproduced file compares with the recorded one.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Byte for byte (for `summary.json`: every value, wall times aside).
    Identical,
    /// Numerically within the tolerances.
    WithinTolerance(Worst),
    /// Not reproduced.
    Mismatch(String),
    /// Compared and described, not judged (a figure's pixels across machines): what differs.
    NotJudged(String),
}

/// The largest differences found in a file, and where.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Worst {
    /// Largest absolute difference.
    pub abs: f64,
    /// Where it occurred (column or key).
    pub abs_at: String,
    /// Largest relative difference.
    pub rel: f64,
    /// Where it occurred.
    pub rel_at: String,
}

impl Worst {
    fn note(&mut self, at: &str, a: f64, b: f64) {
        if !(a.is_finite() && b.is_finite()) {
            return;
        }
        let d = (a - b).abs();
        let rel = d / a.abs().max(b.abs()).max(1e-300);
        if d > self.abs {
            self.abs = d;
            self.abs_at = at.to_string();
        }
        if d > 0.0 && rel > self.rel {
            self.rel = rel;
            self.rel_at = at.to_string();
        }
    }
}

fn parse_cell(s: &str) -> Option<f64> {
    match s {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Whether a figure is an argmax count (accuracy, agreement). Across machines these are not
/// judged: outputs that are near-tied (early in training, or classes with equal scores) flip
/// their argmax under round-off, so a handful of flips says nothing about the outputs, which are
/// compared themselves.
pub fn is_argmax_figure(name: &str) -> bool {
    name.contains("accuracy") || name.contains("agreement")
}

/// Compares two CSV texts column by column (numerically: argmax figures are noted, not judged).
pub fn compare_csv(
    a: &str,
    b: &str,
    tol: &BTreeMap<String, Tolerance>,
    default: Tolerance,
) -> Verdict {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let (ha, hb) = (la.next().unwrap_or(""), lb.next().unwrap_or(""));
    if ha != hb {
        return Verdict::Mismatch("the header differs".into());
    }
    let header: Vec<&str> = ha.split(',').collect();
    let mut worst = Worst::default();
    let (ra, rb): (Vec<&str>, Vec<&str>) = (la.collect(), lb.collect());
    if ra.len() != rb.len() {
        return Verdict::Mismatch(format!("{} rows vs {} recorded", rb.len(), ra.len()));
    }
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        for ((c, u), v) in header.iter().zip(x.split(',')).zip(y.split(',')) {
            if u == v {
                continue;
            }
            match (parse_cell(u), parse_cell(v)) {
                (Some(p), Some(q)) => {
                    worst.note(c, p, q);
                    if !is_argmax_figure(c)
                        && !tol.get(*c).copied().unwrap_or(default).accepts(p, q)
                    {
                        return Verdict::Mismatch(format!(
                            "row {} column `{c}`: {u} recorded, {v} reproduced",
                            i + 2
                        ));
                    }
                }
                _ => {
                    return Verdict::Mismatch(format!(
                        "row {} column `{c}`: {u:?} recorded, {v:?} reproduced",
                        i + 2
                    ))
                }
            }
        }
    }
    Verdict::WithinTolerance(worst)
}

/// Compares two JSON documents: strings and structure exactly, numbers within the tolerance
/// of their kind of key (`value`, `rmse`, `drift`, `accuracy` in `tol`); `timings_s` is
/// skipped: wall times are not results.
pub fn compare_json(
    a: &serde_json::Value,
    b: &serde_json::Value,
    tol: &BTreeMap<String, Tolerance>,
    default: Tolerance,
) -> Verdict {
    let mut worst = Worst::default();
    let kinds = JsonTolerances {
        value: tol.get("value").copied().unwrap_or(default),
        rmse: tol.get("rmse").copied().unwrap_or(default),
        drift: tol.get("drift").copied().unwrap_or(default),
        accuracy: tol.get("accuracy").copied().unwrap_or(default),
    };
    match walk_json(a, b, "", &kinds, &mut worst) {
        Ok(()) => Verdict::WithinTolerance(worst),
        Err(m) => Verdict::Mismatch(m),
    }
}

struct JsonTolerances {
    value: Tolerance,
    rmse: Tolerance,
    drift: Tolerance,
    accuracy: Tolerance,
}

impl JsonTolerances {
    fn of(&self, path: &str) -> Tolerance {
        if path.contains("rmse") || path.contains("divergence") || path.contains("test_infinite") {
            self.rmse
        } else if path.contains("accuracy") || path.contains("agreement") {
            self.accuracy
        } else if path.contains("drift") || path.contains("distance") || path.contains("change") {
            self.drift
        } else {
            self.value
        }
    }
}

fn walk_json(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
    tol: &JsonTolerances,
    worst: &mut Worst,
) -> std::result::Result<(), String> {
    use serde_json::Value as V;
    match (a, b) {
        (V::Object(x), V::Object(y)) => {
            if x.keys().ne(y.keys()) {
                return Err(format!("{path}: different keys"));
            }
            // The value of a named check or measurement (`{name, value, …}`) is a dimensionless
            // figure (a drift, an RMSE over RMS(y), a loss ratio, a relative error), judged on
            // the scale 1 like the drift columns, and a check's value may also differ by a
            // thousandth of the threshold it is judged against: round-off-sized figures (5e-15
            // against 1e-8) differ relatively by O(1) between CPUs.
            let named = x.get("name").is_some_and(|n| n.is_string());
            let check_tolerance = x
                .get("tolerance")
                .and_then(|t| t.as_f64())
                .or(named.then_some(0.0));
            for (k, v) in x {
                if k == "timings_s" {
                    continue;
                }
                let here = format!("{path}.{k}");
                if let (Some(t), "value", V::Number(p), V::Number(q)) =
                    (check_tolerance, k.as_str(), v, &y[k])
                {
                    let (p, q) = (
                        p.as_f64().unwrap_or(f64::NAN),
                        q.as_f64().unwrap_or(f64::NAN),
                    );
                    let base = tol.of(&here);
                    // (A bitwise comparison, rtol = 0, stays exact.)
                    let loose = if base.rtol > 0.0 {
                        Tolerance {
                            rtol: base.rtol,
                            atol: base.atol.max(1e-3 * t.abs()).max(base.rtol),
                        }
                    } else {
                        base
                    };
                    worst.note(&here, p, q);
                    if !loose.accepts(p, q) {
                        return Err(format!("{here}: {p} recorded, {q} reproduced"));
                    }
                    continue;
                }
                walk_json(v, &y[k], &here, tol, worst)?;
            }
            Ok(())
        }
        (V::Array(x), V::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                walk_json(u, v, &format!("{path}[{i}]"), tol, worst)?;
            }
            Ok(())
        }
        (V::Number(x), V::Number(y)) => {
            let (p, q) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            worst.note(path, p, q);
            let t = tol.of(path);
            // Numerically (rtol > 0), argmax figures are noted, not judged.
            if t.accepts(p, q) || (t.rtol > 0.0 && is_argmax_figure(path)) {
                Ok(())
            } else {
                Err(format!("{path}: {p} recorded, {q} reproduced"))
            }
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} recorded, {b} reproduced")),
    }
}

/// Reads an `.npy` file written by this crate: shape and values.
pub fn read_npy(bytes: &[u8]) -> Option<(Vec<usize>, Vec<f64>)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return None;
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(bytes.get(10..10 + hlen)?).ok()?;
    let shape_txt = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let data = &bytes[10 + hlen..];
    let values = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Some((shape, values))
}

/// Compares two `.npy` kernels entry by entry.
pub fn compare_npy(a: &[u8], b: &[u8], tol: Tolerance) -> Verdict {
    match (read_npy(a), read_npy(b)) {
        (Some((sa, va)), Some((sb, vb))) if sa == sb => {
            let mut worst = Worst::default();
            for (i, (p, q)) in va.iter().zip(&vb).enumerate() {
                worst.note(&format!("entry {i}"), *p, *q);
                if !tol.accepts(*p, *q) {
                    return Verdict::Mismatch(format!("entry {i}: {p} recorded, {q} reproduced"));
                }
            }
            Verdict::WithinTolerance(worst)
        }
        _ => Verdict::Mismatch("shapes differ or a file is not .npy".into()),
    }
}

/// Compares a reproduced file with the recorded one: bitwise when `bitwise` (same
/// fingerprint), else numerically with the given tolerances (this build's policy for the config).
pub fn compare_file(
    name: &str,
    recorded: &[u8],
    reproduced: &[u8],
    tolerances: &BTreeMap<String, BTreeMap<String, Tolerance>>,
    precision_rtol: f64,
    bitwise: bool,
) -> Verdict {
    if recorded == reproduced {
        return Verdict::Identical;
    }
    if bitwise && name == "summary.json" {
        // Wall times differ between any two runs: everything else must be identical.
        let exact = Tolerance {
            rtol: 0.0,
            atol: 0.0,
        };
        let all: BTreeMap<String, Tolerance> = ["value", "rmse", "drift", "accuracy"]
            .iter()
            .map(|k| (k.to_string(), exact))
            .collect();
        return match (
            serde_json::from_slice::<serde_json::Value>(recorded),
            serde_json::from_slice::<serde_json::Value>(reproduced),
        ) {
            (Ok(a), Ok(b)) => match compare_json(&a, &b, &all, exact) {
                Verdict::WithinTolerance(_) => Verdict::Identical,
                v => v,
            },
            _ => Verdict::Mismatch("not JSON".into()),
        };
    }
    if bitwise || name == "config.toml" {
        return Verdict::Mismatch("bytes differ".into());
    }
    let default = Tolerance {
        rtol: precision_rtol,
        atol: 1e-300,
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    if name.ends_with(".csv") {
        let empty = BTreeMap::new();
        compare_csv(
            &text(recorded),
            &text(reproduced),
            tolerances.get(name).unwrap_or(&empty),
            default,
        )
    } else if name.ends_with(".json") {
        match (
            serde_json::from_slice::<serde_json::Value>(recorded),
            serde_json::from_slice::<serde_json::Value>(reproduced),
        ) {
            (Ok(a), Ok(b)) => {
                let empty = BTreeMap::new();
                compare_json(&a, &b, tolerances.get(name).unwrap_or(&empty), default)
            }
            _ => Verdict::Mismatch("not JSON".into()),
        }
    } else if name.ends_with(".npy") {
        let t = tolerances
            .get("kernels")
            .and_then(|k| k.get(name))
            .or_else(|| {
                // Every member's outputs, judged like the members' mean: on the targets' scale
                // (a near-zero output may not be held to a relative tolerance alone).
                (name == "ensemble_members.npy")
                    .then(|| tolerances.get("ensemble.csv")?.get("network_mean"))
                    .flatten()
            })
            .copied()
            .unwrap_or(default);
        compare_npy(recorded, reproduced, t)
    } else if name == crate::report::figure_data::FIGURE_DATA {
        Verdict::NotJudged(
            "the numbers behind the figures, compared bitwise only on the recording's fingerprint; elsewhere they are judged where they are also stored (metrics.csv, predictions.csv, summary.json) and, for the spectra and probe kernels, as drawn (spectrum.png, kernels.png)".into(),
        )
    } else {
        Verdict::Mismatch("bytes differ".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_comparison_uses_column_tolerances_and_names_the_worst_column() {
        let a = "step,loss,rmse_a_b\n0,1.0,0.0\n10,0.5,1e-15\n";
        let b = "step,loss,rmse_a_b\n0,1.0004,0.0\n10,0.5,3e-15\n";
        let mut tol = BTreeMap::new();
        tol.insert(
            "loss".into(),
            Tolerance {
                rtol: 1e-3,
                atol: 0.0,
            },
        );
        tol.insert(
            "rmse_a_b".into(),
            Tolerance {
                rtol: 1e-3,
                atol: 1e-3,
            },
        );
        let d = Tolerance {
            rtol: 1e-12,
            atol: 0.0,
        };
        match compare_csv(a, b, &tol, d) {
            Verdict::WithinTolerance(w) => {
                assert_eq!(w.abs_at, "loss");
                assert_eq!(w.rel_at, "rmse_a_b");
            }
            v => panic!("{v:?}"),
        }
        let c = "step,loss,rmse_a_b\n0,1.01,0.0\n10,0.5,1e-15\n";
        assert!(matches!(compare_csv(a, c, &tol, d), Verdict::Mismatch(_)));
        let npy = crate::report::npy::encode_f64(&[1.0, 2.0], &[2]);
        assert_eq!(read_npy(&npy), Some((vec![2], vec![1.0, 2.0])));
    }
}
