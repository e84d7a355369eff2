// Records the build's identity for the reproducibility report: the compiler version, and the
// commit and dirty flag of the source tree this binary was built from (not of whatever directory
// it later runs in).
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NTK_RUSTC_VERSION={}", version.trim());
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // Only when the crate is the top of its own checkout (not a checkout that merely contains it).
    let top = git(&["rev-parse", "--show-toplevel"]);
    let own = top
        .as_deref()
        .is_some_and(|t| std::fs::canonicalize(t).ok() == std::fs::canonicalize(&root).ok());
    let commit = if own {
        git(&["rev-parse", "HEAD"])
    } else {
        None
    };
    let dirty = commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| if s.is_empty() { "false" } else { "true" });
    println!(
        "cargo:rustc-env=NTK_BUILD_COMMIT={}",
        commit.as_deref().unwrap_or("")
    );
    println!("cargo:rustc-env=NTK_BUILD_DIRTY={}", dirty.unwrap_or(""));
    // What `--version` prints: the crate version and the same build identity.
    let identity = match (commit.as_deref(), dirty) {
        (Some(c), Some("true")) => format!("commit {c}, with uncommitted changes"),
        (Some(c), _) => format!("commit {c}"),
        (None, _) => "no git checkout at build time".to_string(),
    };
    println!(
        "cargo:rustc-env=NTK_VERSION_TEXT={} (built from {identity}; captured at build time)",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    // Re-run when the sources or the checkout's state change, so the identity is never stale.
    for p in [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src",
        ".git/HEAD",
        ".git/index",
        ".git/refs",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
}
