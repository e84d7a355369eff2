//! Paths in a config: every relative path is resolved against the directory of the config file
//! that holds it (so a config works from any working directory), and every config the simulator
//! writes — a run's resolved `config.toml`, a sweep's plan — records its paths relative to the
//! directory it is written in (so a results tree stays valid when the repository is cloned
//! elsewhere), with the absolute forms in a comment.
//!
//! Configs written before this rule resolved their paths against the working directory. For an
//! input file that does not exist next to the config but does exist relative to the working
//! directory, that older reading is kept and a note says so.

use std::path::{Component, Path, PathBuf};

use super::schema::{ConfigSpec, DataSpec};
use super::Experiment;

/// `p` made absolute (against the working directory) and normalised lexically (`.` dropped,
/// `..` applied), without touching the filesystem.
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The path of `target` relative to the directory `dir` (both made absolute first); `target`
/// itself when they share no root.
pub fn relative_to(target: &Path, dir: &Path) -> PathBuf {
    let (t, d) = (absolute(target), absolute(dir));
    let tc: Vec<Component> = t.components().collect();
    let dc: Vec<Component> = d.components().collect();
    let common = tc.iter().zip(&dc).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return t;
    }
    let mut out: PathBuf = dc[common..].iter().map(|_| Component::ParentDir).collect();
    out.extend(&tc[common..]);
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The base directory of a config file: its parent (the working directory for a bare name).
pub fn base_of(file: Option<&Path>) -> PathBuf {
    let parent = file.and_then(Path::parent).unwrap_or(Path::new(""));
    absolute(parent)
}

/// Where relative paths are resolved: the config's directory, and the directory an older
/// config's paths were relative to (the working directory of the run that wrote it).
struct Bases<'a> {
    config: &'a Path,
    older: &'a Path,
}

/// An input path resolved against the config's directory; `notes` gets a line when only the
/// older reading of it exists (a config written before the rule).
fn input(p: &mut PathBuf, key: &str, bases: &Bases<'_>, notes: &mut Vec<String>) {
    if p.is_absolute() {
        *p = absolute(p);
        return;
    }
    let next_to_config = absolute(&bases.config.join(&*p));
    let older = absolute(&bases.older.join(&*p));
    if !next_to_config.exists() && older.exists() {
        notes.push(format!(
            "{key} = {:?} is not found next to the config (in {}) but is in {}: read from there, as configs written before relative paths followed the config file were",
            p.display(),
            bases.config.display(),
            bases.older.display()
        ));
        *p = older;
    } else {
        *p = next_to_config;
    }
}

fn output(p: &mut PathBuf, base: &Path) {
    *p = absolute(&base.join(&*p));
}

impl ConfigSpec {
    /// Every relative path resolved against `base` (see the module doc); returns notes.
    pub fn rebase(&mut self, base: &Path) -> Vec<String> {
        self.rebase_with(base, &absolute(Path::new("")))
    }

    /// [`ConfigSpec::rebase`], an input missing next to the config looked for under `older`.
    fn rebase_with(&mut self, base: &Path, older: &Path) -> Vec<String> {
        let mut notes = Vec::new();
        let n = &mut notes;
        let base = &Bases {
            config: base,
            older,
        };
        match &mut self.data {
            DataSpec::Csv(s) => {
                if let Some(p) = &mut s.path {
                    input(p, "data.path", base, n);
                }
                if let Some(p) = &mut s.test_path {
                    input(p, "data.test_path", base, n);
                }
            }
            DataSpec::Text(s) => {
                if let Some(p) = &mut s.path {
                    input(p, "data.path", base, n);
                }
            }
            DataSpec::Idx(s) => {
                for (key, p) in [
                    ("data.train_images", &mut s.train_images),
                    ("data.train_labels", &mut s.train_labels),
                    ("data.test_images", &mut s.test_images),
                    ("data.test_labels", &mut s.test_labels),
                ] {
                    if let Some(p) = p {
                        input(p, key, base, n);
                    }
                }
            }
            DataSpec::Npy(s) => match &mut s.npz {
                Some(p) => input(p, "data.npz", base, n),
                None => {
                    for (key, v) in [
                        ("data.x", &mut s.x),
                        ("data.y", &mut s.y),
                        ("data.x_test", &mut s.x_test),
                        ("data.y_test", &mut s.y_test),
                    ] {
                        if let Some(v) = v {
                            let mut p = PathBuf::from(&*v);
                            input(&mut p, key, base, n);
                            *v = p.to_string_lossy().into_owned();
                        }
                    }
                }
            },
            DataSpec::Sine(_) | DataSpec::Teacher(_) => {}
        }
        match &mut self.outputs.dir {
            Some(p) => output(p, base.config),
            // The default results root is under the working directory.
            None => {
                self.outputs.dir = Some(absolute(Path::new(super::defaults::OUTPUT_DIR)));
            }
        }
        if let Some(p) = &mut self.kernel.store_dir {
            output(p, base.config);
        }
        notes
    }
}

/// Reads the resolved `config.toml` of the run directory `run_dir`. A run recorded before
/// relative paths followed the config file wrote them relative to its working directory, which
/// is recovered from where the run directory sits: `<working directory>/<outputs.dir>/<name>/<run>`
/// (for a run written elsewhere with `--out`, the present working directory is tried).
pub fn load_recorded(run_dir: &Path) -> crate::Result<(Experiment, Vec<String>)> {
    use super::{locate, parse_error, KeyLines};
    let file = run_dir.join("config.toml");
    let text = super::read_config(&file)?;
    let lines = KeyLines::new(&text);
    let mut spec: ConfigSpec =
        toml::from_str(&text).map_err(|e| parse_error(&e, &lines, Some(&file)))?;
    let older = spec
        .outputs
        .dir
        .as_ref()
        .filter(|d| d.is_relative())
        .and_then(|d| {
            let parent = absolute(run_dir).parent()?.to_path_buf();
            let tail = d.join(&spec.experiment.name);
            let depth = tail.components().count();
            let root: PathBuf = parent
                .components()
                .take(parent.components().count().checked_sub(depth)?)
                .collect();
            (absolute(&root.join(&tail)) == parent).then_some(root)
        })
        .unwrap_or_else(|| absolute(Path::new("")));
    let notes = spec.rebase_with(&absolute(run_dir), &older);
    let exp = spec.check().map_err(|e| locate(e, &lines, Some(&file)))?;
    Ok((exp, notes))
}

/// Applies `f` to every path of a checked experiment.
fn each_path(exp: &mut Experiment, f: &mut dyn FnMut(&mut PathBuf)) {
    for (_, p) in exp.data.source.input_files_mut() {
        f(p);
    }
    f(&mut exp.outputs.dir);
    if let Some(p) = &mut exp.kernel.iterative.store_dir {
        f(p);
    }
    if let Some(p) = exp.kernel.plan.as_mut().and_then(|p| p.store_dir.as_mut()) {
        f(p);
    }
}

impl Experiment {
    /// What the experiment computes, as TOML text, wherever its files are: the resolved config
    /// with every input path cut to its file name and no output directory. Two runs of one
    /// plan made in different places (or a sweep directory moved since) have the same
    /// settings text.
    pub fn settings_toml(&self) -> String {
        let mut exp = self.clone();
        each_path(&mut exp, &mut |p| {
            *p = p.file_name().map(PathBuf::from).unwrap_or_default();
        });
        exp.outputs.dir = PathBuf::new();
        exp.resolved_toml()
    }

    /// The resolved config as written into `dir`: its paths relative to `dir`, the absolute
    /// forms in a leading comment.
    pub fn resolved_toml_in(&self, dir: &Path) -> String {
        let mut absolute_forms = Vec::new();
        let mut exp = self.clone();
        each_path(&mut exp, &mut |p| {
            *p = absolute(p);
            absolute_forms.push(p.display().to_string());
        });
        each_path(&mut exp, &mut |p| *p = relative_to(p, dir));
        let mut text = String::from(
            "# Resolved config. Relative paths are relative to this file's directory; when written\n# they were:\n",
        );
        for a in absolute_forms {
            text += &format!("#   {a}\n");
        }
        text + "\n" + &exp.resolved_toml()
    }

    /// This experiment with every path absolute and normalised (to compare two configs).
    pub fn with_absolute_paths(&self) -> Experiment {
        let mut exp = self.clone();
        each_path(&mut exp, &mut |p| *p = absolute(p));
        exp
    }
}

/// Keys of `[data]` that hold input files (`x`, `y`, … only without `npz`: then they name arrays).
const INPUT_KEYS: [&str; 7] = [
    "path",
    "test_path",
    "train_images",
    "train_labels",
    "test_images",
    "test_labels",
    "npz",
];
const NPY_FILE_KEYS: [&str; 4] = ["x", "y", "x_test", "y_test"];

/// Config text (a sweep's plan) with its relative paths, written for a config in `from`,
/// rewritten for a file in the directory `to`; swept path values included. Comments and key
/// order are not kept (the plan is TOML the simulator writes and reads).
pub fn rebased_text(text: &str, from: &Path, to: &Path) -> crate::Result<String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| crate::Error::ConfigParse {
        file: PathBuf::from("<sweep plan>"),
        line: None,
        key: None,
        message: e.to_string(),
    })?;
    let move_path = |v: &mut toml::Value, is_input: bool| {
        if let toml::Value::String(s) = v {
            let p = Path::new(s.as_str());
            if p.is_relative() {
                let mut abs = absolute(&from.join(p));
                if is_input && !abs.exists() && p.exists() {
                    abs = absolute(p);
                }
                *s = relative_to(&abs, to).to_string_lossy().into_owned();
            }
        }
    };
    let npz = table.get("data").and_then(|d| d.get("npz")).is_some();
    let keys: Vec<(&str, &str, bool)> = INPUT_KEYS
        .iter()
        .map(|k| ("data", *k, true))
        .chain(
            NPY_FILE_KEYS
                .iter()
                .filter(|_| !npz)
                .map(|k| ("data", *k, true)),
        )
        .chain([("outputs", "dir", false), ("kernel", "store_dir", false)])
        .collect();
    for (section, key, is_input) in &keys {
        if let Some(v) = table.get_mut(*section).and_then(|s| s.get_mut(*key)) {
            move_path(v, *is_input);
        }
        let dotted = format!("{section}.{key}");
        if let Some(toml::Value::Array(vals)) = table
            .get_mut("sweep")
            .and_then(|s| s.get_mut("vary"))
            .and_then(|v| v.get_mut(&dotted))
        {
            for v in vals {
                move_path(v, *is_input);
            }
        }
    }
    Ok(toml::to_string(&table).unwrap_or_else(|_| text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_walk_up_and_down() {
        assert_eq!(
            relative_to(Path::new("/a/b/data/x.csv"), Path::new("/a/results/r/run")),
            PathBuf::from("../../../b/data/x.csv")
        );
        assert_eq!(
            relative_to(Path::new("/a/b"), Path::new("/a/b")),
            PathBuf::from(".")
        );
        assert_eq!(absolute(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
