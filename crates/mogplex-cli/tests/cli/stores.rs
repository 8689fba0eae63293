//! Which store holds the credentials (`MOGPLEX_CREDENTIAL_STORE`), as the binary reports it,
//! without a D-Bus session (the keyring itself is tested under `scripts/with-keyring`).

use crate::common::*;

/// A home with no D-Bus session bus to find a keyring on.
fn no_dbus(store: &str) -> TestHome {
    let mut home = TestHome::new();
    let runtime = home.dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    home.env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
        .env("MOGPLEX_CREDENTIAL_STORE", store);
    home
}

#[test]
fn keyring_without_a_keyring_fails_clearly_and_writes_nothing() {
    let home = no_dbus("keyring");
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-keyring-test-0123456789",
    );
    snap!("keyring_without_dbus", home.render(&out));
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MOGPLEX_CREDENTIAL_STORE=file"), "{err}");
    assert!(!home.auth_path().exists(), "nothing written elsewhere");
    // Reads fail the same way: no silent fallback to the file.
    let out = home.run(&["exec", "hi"]);
    assert_eq!(out.status.code(), Some(78), "{}", home.render(&out));
}

#[test]
fn auto_without_a_keyring_uses_the_file_and_says_why() {
    let home = no_dbus("auto");
    let out = home.run_stdin(
        &["login", "openai", "--with-api-key"],
        "sk-auto-test-0123456789",
    );
    snap!("auto_without_dbus", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        home.auth()["providers"]["openai"]["apiKey"],
        "sk-auto-test-0123456789"
    );
    assert_eq!(home.auth()["store"], "file");
}

#[test]
fn an_unknown_store_is_a_usage_error() {
    let home = no_dbus("vault");
    let out = home.run(&["exec", "hi"]);
    snap!("unknown_store", home.render(&out));
    assert_eq!(out.status.code(), Some(2));
}

/// Inside `scripts/with-keyring`: the variables that reach its private Secret Service.
fn with_keyring(home: &mut TestHome) -> bool {
    if std::env::var_os("MOGPLEX_TEST_SECRET_SERVICE").is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: needs a real Secret Service; run `scripts/with-keyring cargo test -p mogplex-cli --test cli -- stores::`"
        );
        return false;
    }
    for var in [
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
        "XDG_DATA_HOME",
    ] {
        if let Ok(v) = std::env::var(var) {
            home.env(var, &v);
        }
    }
    true
}

fn secret_tool_lookup(r: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "mogplex", "username", r])
        .output()
        .expect("secret-tool runs");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

fn keyring_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("keyring") {
                out.push(r.clone());
            }
            m.values().for_each(|v| keyring_refs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keyring_refs(v, out)),
        _ => {}
    }
}

#[test]
fn credentials_migrate_moves_every_secret_into_the_keyring_and_back() {
    const KEY: &str = "sk-migrate-openai-0123456789";
    const PAT: &str = "mog_migrate_pat_0123456789";
    let server = FakeServer::start();
    let mut home = TestHome::new();
    if !with_keyring(&mut home) {
        return;
    }
    route_all_providers(&mut home, &server);
    for (p, k) in [("openai", KEY), ("mogplex", PAT)] {
        let out = home.run_stdin(&["login", p, "--with-api-key"], k);
        assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    }
    let out = home.run(&["credentials", "migrate", "--to", "keyring"]);
    snap!("migrate_to_keyring", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    // auth.json keeps references only; the keyring holds the values.
    let text = std::fs::read_to_string(home.auth_path()).unwrap();
    assert!(!text.contains(KEY) && !text.contains(PAT), "{text}");
    let mut refs = Vec::new();
    keyring_refs(&home.auth(), &mut refs);
    assert_eq!(refs.len(), 2, "{text}");
    let values: Vec<String> = refs
        .iter()
        .map(|r| secret_tool_lookup(r).expect("the keyring item exists"))
        .collect();
    assert!(values.iter().any(|v| v.contains(KEY)), "{values:?}");
    assert!(values.iter().any(|v| v.contains(PAT)), "{values:?}");
    // The keyring store reads them, and names itself as the source.
    home.env("MOGPLEX_CREDENTIAL_STORE", "keyring");
    let out = home.run(&["exec", "--json", "--model", "gpt-4.1", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let session: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(session["credential"]["source"], "keyring", "{session}");
    // Nothing the keyring store handles leaks: not in any output of these commands, nor in logs.
    let mut seen = vec![out];
    for args in [
        &["account", "list"][..],
        &["exec", "--json", "hi"],
        &["exec", "--model", "mogplex/echo", "hi"],
        &["logout", "openai"],
    ] {
        seen.push(home.run(args));
    }
    let mut text = home.log_text();
    for o in &seen {
        text.push_str(&String::from_utf8_lossy(&o.stdout));
        text.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    for secret in [KEY, PAT] {
        assert!(!text.contains(secret), "a stored secret leaked:\n{text}");
    }
    let out = home.run_stdin(&["login", "openai", "--with-api-key"], KEY);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    // Again: nothing to do.
    let out = home.run(&["credentials", "migrate", "--to", "keyring"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Nothing to move"));
    // And back: the values in auth.json, the keyring items gone.
    let out = home.run(&["credentials", "migrate", "--to", "file"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let text = std::fs::read_to_string(home.auth_path()).unwrap();
    assert!(text.contains(KEY) && text.contains(PAT), "{text}");
    for r in &refs {
        assert!(
            secret_tool_lookup(r).is_none(),
            "{r} is still in the keyring"
        );
    }
}
