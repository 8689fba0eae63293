//! The environment of every child process mogplex starts (MCP stdio servers, the browser
//! opener): the parent's, without anything that could carry a credential, plus what the caller
//! names.
//!
//! A child inherits the whole environment by default, so an MCP server started from a shell with
//! `OPENAI_API_KEY` or `MOGPLEX_API_KEY` set would receive them. One function decides what is
//! dropped so that every spawn applies the same rule: every provider's key variable, every
//! `MOGPLEX_*` variable, any name that says it holds a secret (`…KEY…`, `…TOKEN…`, `…SECRET…`,
//! `…PASSWORD…`, `…PASSWD…`, `…CREDENTIAL…`, `…AUTH…`, `…SESSION…`, `…COOKIE…`), and any value
//! that starts like a known key (`sk-`, `mog_`, …). A variable the caller names (an MCP
//! definition's `env`) is set to the caller's value, whatever its name.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// Parts of a variable name that mark it as a credential (compared in upper case).
const SECRET_NAME_PARTS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
    "SESSION",
    "COOKIE",
];

/// Whether the parent's variable `name` (with `value`) must not reach a child.
pub fn is_credential_var(name: &OsStr, value: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    if upper.starts_with("MOGPLEX_")
        || crate::Provider::ALL.iter().any(|p| p.env_var() == upper)
        || SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
    {
        return true;
    }
    let value = value.to_string_lossy();
    let value = value.trim_start();
    crate::provider::key_prefixes().any(|prefix| value.starts_with(prefix))
        || value.starts_with("Bearer ")
}

/// The environment for a child: `parent` without credential variables, then `named` (which
/// wins). Use with `Command::env_clear().envs(…)`.
pub fn child_env(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    named: &BTreeMap<String, String>,
) -> Vec<(OsString, OsString)> {
    let mut out: BTreeMap<OsString, OsString> = parent
        .into_iter()
        .filter(|(k, v)| !is_credential_var(k, v))
        .collect();
    for (k, v) in named {
        out.insert(k.into(), v.into());
    }
    out.into_iter().collect()
}

/// [`child_env`] of this process's environment.
pub fn child_env_of_process(named: &BTreeMap<String, String>) -> Vec<(OsString, OsString)> {
    child_env(std::env::vars_os(), named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_dropped_and_named_variables_kept() {
        let parent = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/ada"),
            ("LANG", "C.UTF-8"),
            ("OPENAI_API_KEY", "sk-abc"),
            ("MOGPLEX_API_KEY", "mog_abc"),
            ("MOGPLEX_URL", "http://127.0.0.1:1"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("innocent_name", "sk-ant-looks-like-a-key"),
            ("SOMETHING", "Bearer abc"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let named = BTreeMap::from([("GITHUB_TOKEN".to_owned(), "from-definition".to_owned())]);
        let env = child_env(parent, &named);
        let names: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["GITHUB_TOKEN", "HOME", "LANG", "PATH"]);
        assert!(env.contains(&("GITHUB_TOKEN".into(), "from-definition".into())));
    }
}
