//! The benchmark's yardstick: the least a program can do to reach the same two outcomes as
//! `mogplex exec` (no credential, or a credential found): read the same environment variables
//! and parse the same `auth.json`. Nothing else.

use std::path::PathBuf;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> std::process::ExitCode {
    // The same variables as mogplex, read from its provider table (a `const`: nothing else of
    // `mogplex-auth` is linked in).
    let mut found = mogplex_auth::provider::PROVIDERS
        .iter()
        .any(|p| var(p.key_var).is_some());
    let home = var("MOGPLEX_HOME")
        .or_else(|| var("CODEX_HOME"))
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".mogplex")));
    if let Some(home) = home
        && let Ok(bytes) = std::fs::read(home.join("auth.json"))
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        found |= v.get("mogplex").is_some()
            || v.get("providers")
                .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()));
    }
    if found {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("error: no credentials");
        std::process::ExitCode::from(64)
    }
}
