//! Puts the commit into `mogplex --version`: `0.1.0 (1a2b3c4d5e6f)`, with `-dirty` when the
//! checkout had uncommitted changes to tracked files, or just the version when built outside git.
//! `MOGPLEX_BUILD_COMMIT` (for packagers building from a tarball) wins over git.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    println!("cargo:rerun-if-env-changed=MOGPLEX_BUILD_COMMIT");
    let commit = match std::env::var("MOGPLEX_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => Some(c.trim().to_owned()),
        _ => {
            // Rebuild when HEAD moves: the HEAD file, the branch it names, and packed refs.
            for path in ["HEAD", "packed-refs", "index"] {
                if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
                && let Some(p) = git(&["rev-parse", "--git-path", &branch])
            {
                println!("cargo:rerun-if-changed={p}");
            }
            git(&["rev-parse", "--short=12", "HEAD"]).map(|c| {
                let dirty = Command::new("git")
                    .args(["diff-index", "--quiet", "HEAD", "--"])
                    .status()
                    .is_ok_and(|s| s.code() == Some(1));
                if dirty { format!("{c}-dirty") } else { c }
            })
        }
    };
    let line = match commit {
        Some(c) => format!("{version} ({c})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=MOGPLEX_VERSION_LINE={line}");
}
