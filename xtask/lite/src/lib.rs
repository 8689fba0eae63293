//! Building the product's release binaries, for the demo and for `cargo xtask`'s benchmarks.
//!
//! This crate has no dependencies so that `cargo demo` (its `demo` binary) starts within seconds
//! on a fresh clone and can say what it is about to compile. Every binary is built here the same
//! way, in the `release` profile, so the demo and the benchmarks share one build of each.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_owned)
        .unwrap_or_default()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs cargo in the workspace, its output (and progress) going to this terminal.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

/// Builds a product binary on its own, in the release profile, showing cargo's progress, and
/// returns its path. On its own: built in one cargo invocation with the server (or with xtask,
/// which links the server), the CLI's dependencies would be compiled with the server's features
/// (aws-lc-rs, HTTP/2) and it would not be the program `cargo install` gives users.
///
/// `XTASK_<BIN>` (`XTASK_MOGPLEX`, `XTASK_MOGPLEX_SERVER`, `XTASK_BASELINE`) names a binary to use
/// instead, to compare builds (another checkout's, an older commit's).
pub fn release_bin(package: &str, bin: &str) -> Result<PathBuf, String> {
    let var = format!("XTASK_{}", bin.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var).filter(|p| !p.is_empty()) {
        eprintln!("==> {bin}: {} (from {var})", Path::new(&path).display());
        return Ok(PathBuf::from(path));
    }
    cargo(&["build", "--release", "-p", package, "--bin", bin])?;
    Ok(target_dir().join("release").join(bin))
}
