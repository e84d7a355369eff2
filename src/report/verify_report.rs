//! `--verify` of a run's own description: `report.json` and `report.md` re-derived by the
//! reproduction and compared with the recorded ones, leaving out only what legitimately differs
//! between two runs of one config (wall times, the machine, memory estimates, file hashes that
//! are compared file by file, and paths, which are relative to each run's own directory).

use std::collections::BTreeMap;
use std::path::Path;

use super::verify::{compare_json, Tolerance, Verdict};

/// `report.json` keys left out of the comparison: timings, the machine (its fingerprint decides
/// how the rest is compared), resource estimates sized from this machine's memory, the per-file
/// hashes (each file is compared itself) and the config's text and inputs (paths relative to the
/// run directory; the config is compared as a config and the inputs by their hashes first).
const VOLATILE_JSON_KEYS: &[&str] = &[
    "timings_s",
    "environment",
    "fingerprint",
    "resources",
    "files_sha256",
    "config_toml",
    "config_sha256",
    "inputs",
];

/// `report.md` sections left out for the same reasons (and `## Plots`, the list of figures,
/// when the recorded figures were drawn by another figure style).
const VOLATILE_MD_SECTIONS: &[&str] = &[
    "## Environment",
    "## Input data",
    "## Wall time per phase",
    "## Files (SHA-256)",
    "## Resolved config",
];

/// What the recorded `report.json` says about its own inputs that is not so: its config text
/// and digest must be those of the directory's `config.toml`, and its input data files the
/// same contents (digest and size; the recorded paths may be relative to another place) as
/// the reproduction read.
fn self_description_mismatch(
    dir: &Path,
    recorded: &serde_json::Value,
    reproduced: &serde_json::Value,
) -> Option<String> {
    let config = std::fs::read(dir.join("config.toml")).ok()?;
    if recorded.get("config_sha256").and_then(|v| v.as_str())
        != Some(crate::report::repro::sha256_hex(&config).as_str())
    {
        return Some(".config_sha256: not the digest of the directory's config.toml".into());
    }
    if recorded.get("config_toml").and_then(|v| v.as_str())
        != Some(String::from_utf8_lossy(&config).as_ref())
    {
        return Some(".config_toml: not the text of the directory's config.toml".into());
    }
    let contents = |v: &serde_json::Value| -> Option<BTreeMap<String, (String, u64)>> {
        v.get("inputs")?
            .as_object()?
            .iter()
            .map(|(key, f)| {
                Some((
                    key.clone(),
                    (
                        f.get("sha256")?.as_str()?.to_string(),
                        f.get("bytes")?.as_u64()?,
                    ),
                ))
            })
            .collect()
    };
    if contents(recorded) != contents(reproduced) {
        return Some(
            ".inputs: the recorded input files (digest, size) are not those the reproduction read"
                .into(),
        );
    }
    None
}

/// Compares the recorded and the reproduced `report.json`. Across machines the `notes` (which
/// may name the machine's SIMD kernels) are left out too.
pub fn compare_report_json(
    recorded_dir: &Path,
    reproduced_dir: &Path,
    tolerances: &BTreeMap<String, BTreeMap<String, Tolerance>>,
    rtol: f64,
    bitwise: bool,
) -> Verdict {
    let read = |d: &Path| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(d.join("report.json")).ok()?).ok()
    };
    let (Some(mut a), Some(mut b)) = (read(recorded_dir), read(reproduced_dir)) else {
        return Verdict::Mismatch("not readable as JSON".into());
    };
    if let Some(why) = self_description_mismatch(recorded_dir, &a, &b) {
        return Verdict::Mismatch(why);
    }
    for v in [&mut a, &mut b] {
        if let serde_json::Value::Object(m) = v {
            for k in VOLATILE_JSON_KEYS {
                m.remove(*k);
            }
            if !bitwise {
                m.remove("notes");
            }
        }
    }
    let exact = Tolerance {
        rtol: 0.0,
        atol: 0.0,
    };
    let (tol, default) = if bitwise {
        let all = ["value", "rmse", "drift", "accuracy"]
            .iter()
            .map(|k| (k.to_string(), exact))
            .collect();
        (all, exact)
    } else {
        (
            tolerances.get("summary.json").cloned().unwrap_or_default(),
            Tolerance { rtol, atol: 1e-300 },
        )
    };
    // The recorded tolerances must be this binary's policy for the config, so that a directory
    // cannot widen its own: as text on the recorded machine, and across machines within 5 %
    // (their absolute parts scale with the run's own kernels and targets, which differ there
    // by round-off).
    let policy = if bitwise {
        a.get("tolerances") == b.get("tolerances")
    } else {
        match (a.get("tolerances"), b.get("tolerances")) {
            (Some(x), Some(y)) => matches!(
                compare_json(
                    x,
                    y,
                    &BTreeMap::new(),
                    Tolerance {
                        rtol: 0.05,
                        atol: 0.0
                    }
                ),
                Verdict::Identical | Verdict::WithinTolerance(_)
            ),
            (x, y) => x == y,
        }
    };
    if !policy {
        return Verdict::Mismatch(
            ".tolerances: differ from this binary's tolerance policy for this config".into(),
        );
    }
    match compare_json(&a, &b, &tol, default) {
        Verdict::WithinTolerance(_) if bitwise => Verdict::Identical,
        v => v,
    }
}

/// Compares the recorded and the reproduced `report.md` without its volatile sections, with
/// SHA-256 digests and quoted wall times masked: the text must be identical, and on the recorded
/// machine its numbers too. Across machines the numbers are not judged here (they render
/// figures that summary.json and report.json compare within tolerance) and the generated text
/// samples are left out (sampling amplifies round-off).
pub fn compare_report_md(
    recorded_dir: &Path,
    reproduced_dir: &Path,
    bitwise: bool,
    figures_comparable: bool,
) -> Verdict {
    let read = |d: &Path| std::fs::read_to_string(d.join("report.md")).ok();
    let (Some(a), Some(b)) = (read(recorded_dir), read(reproduced_dir)) else {
        return Verdict::Mismatch("missing or not text".into());
    };
    let trailing = |t: &str| t.len() - t.trim_end().len();
    if trailing(&a) != trailing(&b) {
        return Verdict::Mismatch("different whitespace at the end".into());
    }
    let (a, b) = (
        stable_text(&a, bitwise, figures_comparable),
        stable_text(&b, bitwise, figures_comparable),
    );
    let (ta, na) = split_numbers(&a);
    let (tb, nb) = split_numbers(&b);
    if let Some((i, (x, y))) = ta
        .lines()
        .zip(tb.lines())
        .enumerate()
        .find(|(_, (x, y))| x != y)
    {
        return Verdict::Mismatch(format!(
            "line {} of the compared text: {x:?} recorded, {y:?} reproduced",
            i + 1
        ));
    }
    if ta.lines().count() != tb.lines().count() || na.len() != nb.len() {
        return Verdict::Mismatch("different length".into());
    }
    if !bitwise {
        // Across machines the report's numbers are renderings of figures compared, with this
        // binary's tolerances, in summary.json and report.json; round-off-sized figures and
        // near-tied accuracies printed here differ legitimately, so only the text is compared.
        return Verdict::WithinTolerance(Default::default());
    }
    if let Some((x, y)) = na.iter().zip(&nb).find(|(x, y)| x != y) {
        return Verdict::Mismatch(format!("a number: {x} recorded, {y} reproduced"));
    }
    Verdict::Identical
}

/// The report without its volatile sections (and, across machines, its generated text), with
/// 64-digit hex digests replaced by `<sha256>`.
fn stable_text(md: &str, bitwise: bool, figures_comparable: bool) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in md.lines() {
        if line.starts_with("## ") {
            skip = VOLATILE_MD_SECTIONS.contains(&line.trim_end())
                || (!bitwise && line.trim_end() == "## Generated text")
                || (!figures_comparable && line.trim_end() == "## Plots");
        }
        if skip {
            continue;
        }
        let masked: String = line
            .split('`')
            .map(|w| {
                if w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                    "<sha256>"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join("`");
        out += &mask_wall_times(&masked);
        out.push('\n');
    }
    out
}

/// `took 10.0 s` → `took <time> s`: wall times quoted in running text.
fn mask_wall_times(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("took ") {
        let (head, tail) = rest.split_at(i + 5);
        out += head;
        let n = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(tail.len());
        let unit = tail[n..]
            .strip_prefix(" s")
            .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric()));
        if n > 0 && unit {
            out += "<time>";
            rest = &tail[n..];
        } else {
            rest = tail;
        }
    }
    out + rest
}

/// The text with every number replaced by `#`, and the numbers in order.
fn split_numbers(s: &str) -> (String, Vec<String>) {
    let mut text = String::with_capacity(s.len());
    let mut nums = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()));
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if starts && !after_word {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || chars[j] == '.'
                    || ((chars[j] == 'e' || chars[j] == 'E')
                        && chars
                            .get(j + 1)
                            .is_some_and(|d| d.is_ascii_digit() || *d == '-' || *d == '+')))
            {
                if chars[j] == 'e' || chars[j] == 'E' {
                    j += 1;
                }
                j += 1;
            }
            nums.push(chars[i..j].iter().collect());
            text.push('#');
            i = j;
        } else {
            text.push(c);
            i += 1;
        }
    }
    (text, nums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_split_from_the_text() {
        let (t, n) = split_numbers("| loss | 1.25e-3 | x2 step 40, -0.5 |");
        assert_eq!(t, "| loss | # | x2 step #, # |");
        assert_eq!(n, vec!["1.25e-3", "40", "-0.5"]);
    }

    #[test]
    fn wall_times_in_running_text_are_masked() {
        assert_eq!(
            mask_wall_times("31 members took 10.0 s (2 at a time); it took 5 steps"),
            "31 members took <time> s (2 at a time); it took 5 steps"
        );
    }

    #[test]
    fn volatile_sections_and_digests_are_left_out() {
        let md = format!(
            "# R\nStatus: ok `{}`.\n## Wall time per phase\n| a | 1 |\n## Checks\n| c | 2 |\n",
            "a".repeat(64)
        );
        assert_eq!(
            stable_text(&md, true, true),
            "# R\nStatus: ok `<sha256>`.\n## Checks\n| c | 2 |\n"
        );
    }
}
