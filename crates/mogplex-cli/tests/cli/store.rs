//! auth.json handling through the real binary: modes, refusals, corruption, limits, concurrency.

use crate::common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

/// Runs mogplex under a shell that set the umask first.
fn with_umask(home: &TestHome, umask: &str, args: &str, stdin: &str) -> std::process::Output {
    // The same environment mogplex would get, in a shell that sets the umask and then execs it.
    let c = home.cmd(&[]);
    let mut sh = std::process::Command::new("sh");
    sh.env_clear()
        .envs(c.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    sh.arg("-c").arg(format!(
        "umask {umask}; printf '%s' \"$KEY\" | exec \"$BIN\" {args}"
    ));
    sh.env("KEY", stdin).env("BIN", bin());
    sh.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn files_are_private_whatever_the_umask() {
    for umask in ["000", "022", "077"] {
        let mut home = TestHome::new();
        // A nested home: every directory mogplex creates is 0700.
        home.home = home.dir.path().join("a/b/home");
        let out = with_umask(
            &home,
            umask,
            "login openai --with-api-key",
            "sk-umask-test-0123456789",
        );
        assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
        assert_eq!(mode(&home.home), 0o700, "umask {umask}");
        assert_eq!(mode(&home.dir.path().join("a")), 0o700, "umask {umask}");
        assert_eq!(mode(&home.auth_path()), 0o600, "umask {umask}");
        assert_eq!(
            mode(&home.home.join("auth.json.lock")),
            0o600,
            "umask {umask}"
        );
        assert_eq!(mode(&home.home.join("logs")), 0o700, "umask {umask}");
        for log in std::fs::read_dir(home.home.join("logs")).unwrap() {
            assert_eq!(mode(&log.unwrap().path()), 0o600, "umask {umask}");
        }
        // A rewrite keeps 0600 too.
        let out = with_umask(
            &home,
            umask,
            "login groq --with-api-key",
            "gsk_umask0123456789",
        );
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(mode(&home.auth_path()), 0o600, "umask {umask}");
        assert_eq!(
            home.auth()["providers"]["openai"]["apiKey"],
            "sk-umask-test-0123456789"
        );
    }
}

#[test]
fn codex_home_is_honoured_with_a_warning() {
    let home = TestHome::new();
    let codex = home.dir.path().join("codex");
    let mut cmd = home.cmd(&["login", "openai", "--with-api-key"]);
    cmd.env_remove("MOGPLEX_HOME").env("CODEX_HOME", &codex);
    let out = output_with_stdin(cmd, "sk-codex-home-0123456789");
    snap!("codex_home_warning", home.render(&out));
    assert!(codex.join("auth.json").exists());
    // MOGPLEX_HOME wins over CODEX_HOME, silently.
    let mut cmd = home.cmd(&["logout", "openai"]);
    cmd.env("CODEX_HOME", &codex);
    let out = cmd.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("CODEX_HOME"));
}

/// Sets up a bad auth.json, runs a reading and a writing command, and checks the file is
/// untouched.
fn refused(name: &str, setup: impl Fn(&TestHome)) {
    let home = TestHome::new();
    std::fs::create_dir_all(&home.home).unwrap();
    setup(&home);
    let before = std::fs::symlink_metadata(home.auth_path()).unwrap();
    let read = home.run(&["exec", "hi"]);
    let write = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-refused-0123456789",
    );
    snap!(
        format!("refused_{name}"),
        format!("{}\n{}", home.render(&read), home.render(&write))
    );
    assert_eq!(read.status.code(), Some(78), "{name}");
    assert_eq!(write.status.code(), Some(78), "{name}");
    let after = std::fs::symlink_metadata(home.auth_path()).unwrap();
    assert_eq!(
        before.permissions().mode(),
        after.permissions().mode(),
        "{name}"
    );
    assert_eq!(before.len(), after.len(), "{name}");
    assert_eq!(before.file_type(), after.file_type(), "{name}");
}

#[test]
fn unsafe_files_are_refused_and_left_alone() {
    refused("symlink", |h| {
        let target = h.dir.path().join("target.json");
        std::fs::write(&target, "{}").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, h.auth_path()).unwrap();
    });
    refused("directory", |h| std::fs::create_dir(h.auth_path()).unwrap());
    refused("fifo", |h| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            h.auth_path(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap()
    });
    refused("group_readable", |h| {
        h.write_auth(&json!({"version": 1}));
        std::fs::set_permissions(h.auth_path(), std::fs::Permissions::from_mode(0o640)).unwrap();
    });
    refused("world_readable", |h| {
        h.write_auth(&json!({"version": 1}));
        std::fs::set_permissions(h.auth_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    });
    refused("too_large", |h| {
        let mut big = b"{\"version\":1,\"pad\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 10));
        big.extend(b"\"}");
        h.write_auth_raw(&big);
    });
    if rustix::process::geteuid().is_root() {
        refused("other_owner", |h| {
            h.write_auth(&json!({"version": 1}));
            rustix::fs::chown(h.auth_path(), Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
        });
    }
}

#[test]
fn a_corrupt_file_is_moved_aside_and_reported() {
    let home = TestHome::new();
    let garbage = b"{\"providers\": {\"openai\": {\"apiKey\": \"sk-corrupt-0123456789\"";
    home.write_auth_raw(garbage);
    let out = home.run(&["exec", "hi"]);
    snap!("corrupt_moved_aside", home.render(&out));
    assert_eq!(out.status.code(), Some(64));
    assert!(!home.auth_path().exists());
    let moved: Vec<_> = std::fs::read_dir(&home.home)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("auth.json.corrupt-")
        })
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        std::fs::read(moved[0].path()).unwrap(),
        garbage,
        "the original bytes are kept"
    );
    // Wrong structure (valid JSON) counts as corrupt too, and a write then starts afresh.
    home.write_auth(&json!({"providers": {"openai": "sk-not-an-object-0123456789"}}));
    let out = home.run_stdin(
        &["login", "groq", "--with-api-key"],
        "gsk_after_corrupt0123",
    );
    snap!("corrupt_moved_aside_on_write", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        home.auth(),
        json!({"version": 2, "store": "file", "providers": {"groq": {"apiKey": "gsk_after_corrupt0123"}}})
    );
}

#[test]
fn control_characters_and_bad_keys_are_refused() {
    let home = TestHome::new();
    for (name, input) in [
        ("escape", "sk-abc\u{1b}[31mdef"),
        ("two_lines", "sk-first-0123456789\nsk-second-0123456789"),
        ("inner_space", "sk-abc def-0123456789"),
        ("empty", "  \n"),
        ("nul", "sk-abc\0def"),
    ] {
        let out = home.run_stdin(&["login", "openai", "--with-api-key"], input);
        snap!(format!("bad_key_{name}"), home.render(&out));
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(!home.auth_path().exists(), "{name}: nothing written");
    }
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        &"k".repeat(70 * 1024),
    );
    assert_eq!(out.status.code(), Some(2));
    // Surrounding whitespace and the trailing newline of `echo` are fine.
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "  sk-trimmed-0123456789 \n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        home.auth()["providers"]["openai"]["apiKey"],
        "sk-trimmed-0123456789"
    );
}

#[test]
fn unknown_keys_survive_a_rewrite() {
    let home = TestHome::new();
    home.write_auth(&json!({"version": 1, "later": {"a": [1, 2]}, "mogplex": {"api_key": "mog_keep0123456789abcdef", "extra": "x"},
        "providers": {"openai": {"apiKey": "sk-keep-0123456789", "organization": "org-1"}}}));
    let out = home.run_stdin(
        &["login", "anthropic", "--with-api-key"],
        "sk-ant-new-0123456789",
    );
    assert_eq!(out.status.code(), Some(0));
    let v = home.auth();
    assert_eq!(v["later"], json!({"a": [1, 2]}));
    // A version 1 file is rewritten as version 2: its entry is now the default account.
    assert_eq!(v["version"], 2);
    assert!(v.get("mogplex").is_none(), "{v}");
    assert_eq!(home.account()["extra"], "x");
    assert_eq!(home.account()["api_key"], "mog_keep0123456789abcdef");
    assert_eq!(v["providers"]["openai"]["organization"], "org-1");
    assert_eq!(
        v["providers"]["anthropic"]["apiKey"],
        "sk-ant-new-0123456789"
    );
    // A newer schema version is read but never rewritten.
    home.write_auth(
        &json!({"version": 3, "providers": {"openai": {"apiKey": "sk-keep-0123456789"}}}),
    );
    let out = home.run_stdin(&["login", "groq", "--with-api-key"], "gsk_new0123456789");
    snap!("newer_schema_version", home.render(&out));
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(home.auth()["version"], 3);
}

#[test]
fn concurrent_logins_lose_nothing() {
    let home = TestHome::new();
    let providers = [
        "mogplex",
        "anthropic",
        "openai",
        "google",
        "groq",
        "mistral",
        "deepseek",
        "xai",
        "cohere",
        "vercel",
    ];
    let children: Vec<_> = providers
        .iter()
        .map(|p| {
            use std::io::Write;
            let mut c = home
                .cmd(&["login", p, "--with-api-key"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let key = if *p == "mogplex" {
                "mog_concurrent0123456789".to_owned()
            } else {
                format!("key-{p}-0123456789")
            };
            c.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
            c
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v = home.auth();
    assert_eq!(home.account()["api_key"], "mog_concurrent0123456789");
    for p in &providers[1..] {
        assert_eq!(v["providers"][p]["apiKey"], format!("key-{p}-0123456789"));
    }
}
