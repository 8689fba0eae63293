//! The shell around the binary: completion scripts (loaded into a real bash and asked to
//! complete) and `--version` naming the commit.

use crate::common::*;
use std::process::Command;

/// Loads `mogplex completions bash` into bash and returns what it completes for `words`
/// (the last word being the one under the cursor).
fn bash_complete(home: &TestHome, words: &[&str]) -> Vec<String> {
    let out = home.run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", home.render(&out));
    let script = home.dir.path().join("mogplex.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = words.join(" ");
    let cword = words.len() - 1;
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={}\n\
         _mogplex mogplex '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        line.len(),
        words[cword],
        words[cword - 1],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let home = TestHome::new();
    let mut got = bash_complete(&home, &["mogplex", "lo"]);
    got.sort();
    assert_eq!(got, ["login", "logout"]);
    let flags = bash_complete(&home, &["mogplex", "login", "--"]);
    assert!(flags.contains(&"--device".to_owned()), "{flags:?}");
    assert!(flags.contains(&"--with-api-key".to_owned()), "{flags:?}");
    let shells = bash_complete(&home, &["mogplex", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.contains(&shell.to_owned()), "{shells:?}");
    }
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    let home = TestHome::new();
    for (shell, marker) in [
        ("zsh", "#compdef mogplex"),
        ("fish", "complete -c mogplex"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = home.run(&["completions", shell]);
        assert!(out.status.success(), "{}", home.render(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
    }
    let out = home.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", home.render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values"), "{err}");
}

#[test]
fn completions_need_no_home_and_touch_none() {
    let home = TestHome::new();
    // A home that cannot be opened (a file where the directory should be) does not matter.
    std::fs::create_dir_all(home.home.parent().unwrap()).unwrap();
    std::fs::write(&home.home, "not a directory").unwrap();
    let out = home.run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", home.render(&out));
    assert_eq!(
        std::fs::read_to_string(&home.home).unwrap(),
        "not a directory"
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let home = TestHome::new();
    let out = home.run(&["--version"]);
    assert!(out.status.success(), "{}", home.render(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = match git_head() {
        Some(commit) => format!("mogplex {} ({commit}", env!("CARGO_PKG_VERSION")),
        None => format!("mogplex {}", env!("CARGO_PKG_VERSION")),
    };
    assert!(text.starts_with(&expected), "{text} (expected {expected})");
}

fn git_head() -> Option<String> {
    if std::env::var_os("MOGPLEX_BUILD_COMMIT").is_some() {
        return std::env::var("MOGPLEX_BUILD_COMMIT").ok();
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
