//! `skills/mogplex-auth/SKILL.md` stays true to this binary: every `mogplex …` command and flag
//! it names exists in the clap command tree, and every `status --json` field it names (written
//! as `` `.field.path` ``) is in the JSON the binary prints.

use crate::common::*;
use crate::signin::Server;
use clap::CommandFactory;

fn skill() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../skills/mogplex-auth/SKILL.md"
    );
    std::fs::read_to_string(path).unwrap()
}

/// Every backticked span of the skill.
fn spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.trim().to_owned())
        .collect()
}

/// Checks one command line (`mogplex login <provider> --with-api-key`) against the tree.
fn check_command(line: &str) -> Result<(), String> {
    let root = mogplex_cli::args::Cli::command();
    let mut cmd = &root;
    let mut positional_used = false;
    // The option just named, when it takes a value and the value is the next word.
    let mut value_of: Option<&clap::Arg> = None;
    for word in line.split_whitespace().skip(1) {
        if word == "…" || word == "..." {
            value_of = None;
            continue;
        }
        if let Some(arg) = value_of.take() {
            let possible = arg.get_possible_values();
            if !possible.is_empty()
                && !word.starts_with('<')
                && !possible.iter().any(|v| v.matches(word, false))
            {
                return Err(format!(
                    "`{line}`: --{} takes no value `{word}`",
                    arg.get_long().unwrap_or_default()
                ));
            }
            continue;
        }
        if let Some(flag) = word.strip_prefix("--") {
            let (flag, inline_value) = match flag.split_once('=') {
                Some((f, _)) => (f, true),
                None => (flag, false),
            };
            if ["help", "version"].contains(&flag) {
                continue;
            }
            let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(flag)) else {
                return Err(format!("`{line}`: `{}` has no --{flag}", cmd.get_name()));
            };
            if !inline_value && arg.get_action().takes_values() {
                value_of = Some(arg);
            }
            continue;
        }
        if word.starts_with('<') && cmd.get_name() == "mogplex" && word == "<command>" {
            return Ok(());
        }
        if !positional_used && let Some(sub) = cmd.find_subcommand(word) {
            cmd = sub;
            continue;
        }
        // At the top, a word is a command: one word alone is never sent as a prompt.
        if cmd.get_name() == "mogplex" {
            return Err(format!("`{line}`: mogplex has no command `{word}`"));
        }
        if cmd.get_positionals().next().is_some() && !positional_used {
            positional_used = true;
            continue;
        }
        return Err(format!(
            "`{line}`: `{}` has no subcommand or argument `{word}`",
            cmd.get_name()
        ));
    }
    Ok(())
}

#[test]
fn every_command_and_flag_the_skill_names_exists() {
    let text = skill();
    let commands: Vec<String> = spans(&text)
        .into_iter()
        .filter(|s| s == "mogplex" || s.starts_with("mogplex "))
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    for c in &commands {
        check_command(c).unwrap();
    }
    assert!(text.contains("`mogplex status --json`"));
    // The checker itself refuses what does not exist.
    assert!(check_command("mogplex status --yaml").is_err());
    assert!(check_command("mogplex credentials migrate --to keyring").is_ok());
    assert!(check_command("mogplex credentials migrate --to vault").is_err());
    assert!(check_command("mogplex whoami").is_err());
}

/// Whether `path` (`.credentials[].source.var`) resolves in `v`.
fn has_path(v: &serde_json::Value, path: &str) -> bool {
    let mut cur = vec![v.clone()];
    for seg in path.trim_start_matches('.').split('.') {
        let (key, each) = match seg.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (seg, false),
        };
        let mut next = Vec::new();
        for c in &cur {
            let Some(x) = c.as_object().and_then(|o| o.get(key)) else {
                continue;
            };
            if each {
                next.extend(x.as_array().cloned().unwrap_or_default());
            } else {
                next.push(x.clone());
            }
        }
        if next.is_empty() {
            return false;
        }
        cur = next;
    }
    true
}

#[test]
fn every_json_field_the_skill_names_is_in_status_json() {
    let field = regex_lite(&skill());
    assert!(field.len() >= 15, "{field:?}");
    // Documents covering the shapes: a stored token checked valid (account, choice, check.email)
    // and a variable whose service is down (check.reason).
    let server = Server::start();
    let token = "mog_skill01234567890123456789abcdef".to_owned();
    server.add_pat("ada@example.com", "skill", &token, None);
    let mut a = TestHome::new();
    a.env("MOGPLEX_URL", &server.url);
    assert_eq!(
        a.run_stdin(&["login", "mogplex", "--with-api-key"], &token)
            .status
            .code(),
        Some(0)
    );
    let mut b = TestHome::new();
    b.env("MOGPLEX_URL", "http://127.0.0.1:9")
        .env("MOGPLEX_API_KEY", &token);
    let docs: Vec<serde_json::Value> = [a, b]
        .iter()
        .map(|h| serde_json::from_slice(&h.run(&["status", "--json"]).stdout).unwrap())
        .collect();
    for f in &field {
        assert!(
            docs.iter().any(|d| has_path(d, f)),
            "the skill names `{f}`, which `mogplex status --json` does not have"
        );
    }
    assert!(!has_path(&docs[0], ".nosuch"));
}

/// The backticked spans that are JSON paths: `.name`, `.a[].b.c`.
fn regex_lite(text: &str) -> Vec<String> {
    spans(text)
        .into_iter()
        .filter(|s| {
            s.starts_with('.')
                && s.len() > 1
                && s[1..].split('.').all(|seg| {
                    let seg = seg.strip_suffix("[]").unwrap_or(seg);
                    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
        })
        .collect()
}
