//! Shared by the credential store's process and keyring tests: re-running this test binary as
//! a worker process, and reading the real Secret Service back with `secret-tool`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Set by `scripts/with-keyring`: this process runs inside a private D-Bus session with an
/// unlocked gnome-keyring.
pub const UNDER_WRAPPER: &str = "MOGPLEX_TEST_SECRET_SERVICE";

/// Whether the keyring tests can run; prints why not when they cannot. They skip ONLY when not
/// started by the wrapper: under it, a keyring that does not answer is a failure.
pub fn keyring_or_skip(test: &str) -> bool {
    if std::env::var_os(UNDER_WRAPPER).is_some() {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "{UNDER_WRAPPER} is set but there is no D-Bus session"
        );
        return true;
    }
    // Straight to stderr: libtest captures eprintln! of passing tests, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs a real Secret Service; run `scripts/with-keyring cargo test -p mogplex-auth --test keyring` (scripts/test does)"
    );
    false
}

/// This test binary, to run `test` alone as a worker with `vars` set.
pub fn worker(test: &str, vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("MOGPLEX_TEST_CHILD", "1")
        .stdin(Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// In a worker: the variable the parent set, or `None` when this is the test run itself.
pub fn worker_var(name: &str) -> Option<String> {
    std::env::var_os("MOGPLEX_TEST_CHILD")?;
    std::env::var(name).ok()
}

/// In a worker: the store choice (`MOGPLEX_TEST_CHOICE`) and the home (`MOGPLEX_HOME`) the
/// parent named.
pub fn worker_store() -> Option<(String, mogplex_auth::MogplexHome)> {
    let choice = worker_var("MOGPLEX_TEST_CHOICE")?;
    let home = worker_var("MOGPLEX_HOME")?;
    Some((choice, mogplex_auth::MogplexHome::at(home)))
}

pub fn is_worker() -> bool {
    std::env::var_os("MOGPLEX_TEST_CHILD").is_some()
}

/// The blob stored under `r` (service `mogplex`), read with libsecret's own tool.
pub fn secret_tool_lookup(r: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "mogplex", "username", r])
        .output()
        .expect("secret-tool runs");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// Writes `blob` under `r` with `secret-tool`, as a user (or another program) could.
pub fn secret_tool_store(r: &str, blob: &str) {
    use std::io::Write;
    let mut c = Command::new("secret-tool")
        .args([
            "store",
            "--label=changed behind mogplex's back",
            "service",
            "mogplex",
            "username",
            r,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(blob.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success());
}

pub fn secret_tool_clear(r: &str) {
    let ok = Command::new("secret-tool")
        .args(["clear", "service", "mogplex", "username", r])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Every `mogplex` keyring item whose user name starts with `prefix`.
pub fn keyring_items(prefix: &str) -> Vec<String> {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "mogplex"])
        .output()
        .unwrap();
    // A failed search (the daemon gone, a D-Bus timeout) must not read as "no items".
    assert!(
        out.status.success(),
        "secret-tool search failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut items: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("attribute.username = "))
        .filter(|u| u.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    items.sort();
    items
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small xorshift generator seeded from the pid: random kill points, reproducible enough.
pub fn rng() -> impl FnMut() -> u64 {
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
