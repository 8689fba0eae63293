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
