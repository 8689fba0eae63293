//! The keyring store against a real Secret Service (gnome-keyring in a private D-Bus session,
//! started by `scripts/with-keyring`): secrets read back with `secret-tool`, `auth.json` holding
//! none, new refs on every write, items deleted or changed behind our back, two homes, migrate
//! both ways; and, in worker processes with their own environment, no D-Bus at all, a locked
//! keyring and a keyring that hangs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mogplex_auth::MogplexHome;
use mogplex_auth::credentials::Stored;
use mogplex_auth::credentials::ops::{self, migrate};
use mogplex_auth::credentials::{
    CredentialError, CredentialStore, FileStore, KeyringError, KeyringStore, Note, StoreChoice,
    StoreKind, open_store_with,
};
use mogplex_auth::secret::Secret;
use mogplex_auth::{Account, AccountEntry};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn sign_in(email: &str, n: u32) -> AccountEntry {
    AccountEntry {
        issuer: "http://127.0.0.1:9".into(),
        access_token: Some(Stored::Value(Secret::new(format!(
            "at-{email}-{n}-access-value"
        )))),
        refresh_token: Some(Stored::Value(Secret::new(format!(
            "rt-{email}-{n}-refresh-value"
        )))),
        id_token: Some(Stored::Value(Secret::new(format!(
            "it-{email}-{n}-id-value"
        )))),
        token_type: Some("Bearer".into()),
        expires_at: Some("2099-01-01T00:00:00Z".into()),
        account: Some(Account {
            id: Some(format!("u-{email}")),
            email: Some(email.into()),
            ..Account::default()
        }),
        ..AccountEntry::default()
    }
}

fn home() -> (tempfile::TempDir, MogplexHome) {
    let dir = tempfile::tempdir().unwrap();
    let home = MogplexHome::at(dir.path().join("home"));
    (dir, home)
}

fn keyring(home: &MogplexHome) -> KeyringStore {
    KeyringStore::open(home).unwrap()
}

fn refs_in(path: &Path) -> Vec<String> {
    let doc: mogplex_auth::credentials::Document =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc.keyring_refs().into_iter().map(str::to_owned).collect()
}

#[test]
fn secrets_live_in_the_keyring_and_auth_json_holds_only_references() {
    if !keyring_or_skip("secrets_live_in_the_keyring") {
        return;
    }
    let (_d, home) = home();
    let store = keyring(&home);
    let s: &dyn CredentialStore = &store;
    ops::store_provider_key(s, "openai", Secret::new("sk-proj-keyringvalue0001")).unwrap();
    let signed = ops::store_sign_in(s, sign_in("ada@example.com", 1)).unwrap();
    assert!(signed.written);

    let path = home.auth_file();
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        "sk-proj-keyringvalue0001",
        "at-ada@example.com-1",
        "rt-ada@example.com-1",
        "it-ada@example.com-1",
    ] {
        assert!(!text.contains(secret), "auth.json holds {secret}:\n{text}");
    }
    let v = read_json(&path);
    assert_eq!(v["version"], 2);
    assert_eq!(v["store"], "keyring");
    assert_eq!(v["accounts"][0]["account"]["email"], "ada@example.com");
    assert_eq!(v["accounts"][0]["expires_at"], "2099-01-01T00:00:00Z");
    assert!(v.get("keyring_pending").is_none());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Each reference names a real Secret Service item holding the value.
    let r = v["providers"]["openai"]["apiKey"]["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(r.starts_with(&store.namespace()), "{r}");
    let blob = secret_tool_lookup(&r).expect("the item exists");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&blob).unwrap()["value"],
        "sk-proj-keyringvalue0001"
    );
    let rt = v["accounts"][0]["refresh_token"]["keyring"]
        .as_str()
        .unwrap();
    assert!(
        secret_tool_lookup(rt)
            .unwrap()
            .contains("rt-ada@example.com-1")
    );

    // What is stored reads back whole; the metadata reads without the keyring.
    let loaded = s.load().unwrap();
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    assert_eq!(
        loaded.doc.provider_key("openai").unwrap().expose(),
        "sk-proj-keyringvalue0001"
    );
    let a = &loaded.doc.accounts[0];
    assert_eq!(
        a.bearer().unwrap().0.expose(),
        "at-ada@example.com-1-access-value"
    );
    let meta = s.load_metadata().unwrap();
    assert!(meta.doc.provider_key("openai").is_none());
    assert_eq!(
        ops::list_accounts(&meta.doc)[0].email.as_deref(),
        Some("ada@example.com")
    );
    // Exactly the referenced items exist for this home.
    let mut referenced = refs_in(&path);
    referenced.sort();
    assert_eq!(keyring_items(&store.namespace()), referenced);
}

#[test]
fn mcp_tokens_live_in_the_keyring_and_go_with_their_entry() {
    use mogplex_auth::credentials::mcp::{entry_from_tokens, forget_mcp_server, store_mcp_token};
    if !keyring_or_skip("mcp_tokens_live_in_the_keyring") {
        return;
    }
    let (_d, home) = home();
    let store = keyring(&home);
    let s: &dyn CredentialStore = &store;
    let tokens: mogplex_auth::oauth::TokenResponse = serde_json::from_value(serde_json::json!({
        "access_token": "mcp-access-keyring-value-0001",
        "refresh_token": "mcp-refresh-keyring-value-0001",
        "token_type": "Bearer", "expires_in": 3600,
    }))
    .unwrap();
    let resource = "http://127.0.0.1:9/mcp/demo";
    let e = entry_from_tokens(
        Some("acct_a"),
        "demo",
        resource,
        "http://127.0.0.1:9",
        "mcl_1",
        Some("mcp:demo"),
        &tokens,
        None,
    );
    store_mcp_token(s, e).unwrap();
    let path = home.auth_file();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("mcp-access-keyring"), "{text}");
    assert!(!text.contains("mcp-refresh-keyring"), "{text}");
    let v = read_json(&path);
    assert_eq!(v["mcp_tokens"][0]["server"], "demo");
    assert_eq!(v["mcp_tokens"][0]["scope"], "mcp:demo");
    let r = v["mcp_tokens"][0]["refresh_token"]["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        secret_tool_lookup(&r)
            .unwrap()
            .contains("mcp-refresh-keyring-value-0001")
    );
    let loaded = s.load().unwrap();
    let m = loaded.doc.mcp_token(Some("acct_a"), resource).unwrap();
    assert_eq!(
        m.access().unwrap().expose(),
        "mcp-access-keyring-value-0001"
    );
    // Forgotten: the entry and its keyring items go.
    forget_mcp_server(s, Some("acct_a"), "demo").unwrap();
    assert!(secret_tool_lookup(&r).is_none());
    assert!(keyring_items(&store.namespace()).is_empty());
}

#[test]
fn every_write_of_a_secret_uses_a_new_item_and_deletes_the_old_one() {
    if !keyring_or_skip("every_write_uses_a_new_item") {
        return;
    }
    let (_d, home) = home();
    let store = keyring(&home);
    let s: &dyn CredentialStore = &store;
    ops::store_provider_key(s, "groq", Secret::new("gsk_first_value_000000")).unwrap();
    ops::store_sign_in(s, sign_in("bob@example.com", 1)).unwrap();
    let before = refs_in(&home.auth_file());
    // The same account signs in again: new tokens, new items; the key is untouched.
    ops::store_sign_in(s, sign_in("bob@example.com", 2)).unwrap();
    let after = refs_in(&home.auth_file());
    let key_ref = |refs: &[String]| refs.iter().find(|r| r.contains("providers.groq")).cloned();
    assert_eq!(
        key_ref(&before),
        key_ref(&after),
        "an unchanged secret keeps its item"
    );
    for r in before.iter().filter(|r| !r.contains("providers.groq")) {
        assert!(!after.contains(r), "{r} was rewritten in place");
        assert_eq!(secret_tool_lookup(r), None, "old item {r} was not deleted");
    }
    let mut sorted = after.clone();
    sorted.sort();
    assert_eq!(keyring_items(&store.namespace()), sorted);
    let loaded = s.load().unwrap();
    assert_eq!(loaded.doc.accounts.len(), 1);
    assert!(
        loaded.doc.accounts[0]
            .refresh_token
            .as_ref()
            .unwrap()
            .value()
            .unwrap()
            .expose()
            .starts_with("rt-bob@example.com-2")
    );

    // Removing the key deletes its item after the commit.
    let key = key_ref(&after).unwrap();
    assert!(ops::remove_provider_key(s, "groq").unwrap().value);
    assert_eq!(secret_tool_lookup(&key), None);
    // Logging out deletes the account's items.
    let out = ops::logout(s, &loaded.doc.accounts[0].id)
        .unwrap()
        .value
        .unwrap();
    assert!(
        out.refresh_token
            .unwrap()
            .expose()
            .starts_with("rt-bob@example.com-2")
    );
    assert!(keyring_items(&store.namespace()).is_empty());
}

#[test]
fn an_item_deleted_or_changed_behind_our_back() {
    if !keyring_or_skip("an_item_deleted_or_changed_behind_our_back") {
        return;
    }
    let (_d, home) = home();
    let store = keyring(&home);
    let s: &dyn CredentialStore = &store;
    ops::store_provider_key(s, "openai", Secret::new("sk-original-000000000")).unwrap();
    ops::store_provider_key(s, "groq", Secret::new("gsk_original_00000000")).unwrap();
    ops::store_provider_key(s, "xai", Secret::new("xai-original-00000000")).unwrap();
    let v = read_json(&home.auth_file());
    let item = |p: &str| {
        v["providers"][p]["apiKey"]["keyring"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (openai, groq, xai) = (item("openai"), item("groq"), item("xai"));

    // Changed to another valid value: that value is used.
    secret_tool_store(&openai, r#"{"value":"sk-changed-elsewhere-01"}"#);
    // Deleted: reads as not stored, with a note.
    secret_tool_clear(&groq);
    // Changed to something that is not a mogplex credential: reported, ignored, kept for now.
    secret_tool_store(&xai, "not json at all");

    let loaded = s.load().unwrap();
    assert_eq!(
        loaded.doc.provider_key("openai").unwrap().expose(),
        "sk-changed-elsewhere-01"
    );
    assert!(loaded.doc.provider_key("groq").is_none());
    assert!(loaded.doc.provider_key("xai").is_none());
    assert_eq!(loaded.notes.len(), 2, "{:?}", loaded.notes);
    let texts: Vec<String> = loaded.notes.iter().map(Note::text).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("providers.groq.apiKey") && t.contains("gone"))
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("providers.xai.apiKey")
                && t.contains("removed with the next change"))
    );
    assert!(
        !texts.concat().contains("not json"),
        "a note quoted the item"
    );
    assert!(
        secret_tool_lookup(&xai).is_some(),
        "removed before the user was told"
    );

    // The next write says so again and removes it.
    let updated = ops::store_provider_key(s, "mistral", Secret::new("mistral-key-000000")).unwrap();
    assert!(
        updated
            .notes
            .iter()
            .any(|n| matches!(n, Note::Unreadable { .. }))
    );
    assert_eq!(secret_tool_lookup(&xai), None);
    let refs = refs_in(&home.auth_file());
    assert!(!refs.contains(&groq) && !refs.contains(&xai));
    assert!(s.load().unwrap().notes.is_empty());
}

#[test]
fn two_homes_keep_their_items_apart() {
    if !keyring_or_skip("two_homes_keep_their_items_apart") {
        return;
    }
    let (_a, home_a) = home();
    let (_b, home_b) = home();
    let (a, b) = (keyring(&home_a), keyring(&home_b));
    assert_ne!(a.namespace(), b.namespace());
    ops::store_provider_key(&a, "openai", Secret::new("sk-home-a-0000000000")).unwrap();
    ops::store_provider_key(&b, "openai", Secret::new("sk-home-b-0000000000")).unwrap();
    let key = |s: &KeyringStore| {
        let s: &dyn CredentialStore = s;
        s.load()
            .unwrap()
            .doc
            .provider_key("openai")
            .unwrap()
            .expose()
            .to_owned()
    };
    assert_eq!(key(&a), "sk-home-a-0000000000");
    assert_eq!(key(&b), "sk-home-b-0000000000");
    ops::remove_provider_key(&a, "openai").unwrap();
    assert!(keyring_items(&a.namespace()).is_empty());
    assert_eq!(keyring_items(&b.namespace()).len(), 1);
}

#[test]
fn migrate_moves_everything_both_ways_new_copy_first() {
    if !keyring_or_skip("migrate_moves_everything_both_ways") {
        return;
    }
    let (_d, home) = home();
    let file = FileStore::new(&home);
    ops::store_provider_key(&file, "openai", Secret::new("sk-migrated-0000000000")).unwrap();
    ops::store_sign_in(&file, sign_in("cy@example.com", 1)).unwrap();
    let text = std::fs::read_to_string(home.auth_file()).unwrap();
    assert!(text.contains("sk-migrated-0000000000"));

    let m = migrate(&home, StoreKind::Keyring).unwrap();
    assert_eq!(
        (m.from.clone(), m.to.clone(), m.moved),
        (StoreKind::File, StoreKind::Keyring, 4)
    );
    let text = std::fs::read_to_string(home.auth_file()).unwrap();
    assert!(
        !text.contains("sk-migrated") && !text.contains("rt-cy@"),
        "{text}"
    );
    let ns = keyring(&home).namespace();
    assert_eq!(keyring_items(&ns).len(), 4);
    assert!(migrate(&home, StoreKind::Keyring).unwrap().already);

    // The file store still reads a keyring document, and refuses to write secrets into it.
    let loaded = (&file as &dyn CredentialStore).load().unwrap();
    assert_eq!(
        loaded.doc.provider_key("openai").unwrap().expose(),
        "sk-migrated-0000000000"
    );
    let e = ops::store_provider_key(&file, "groq", Secret::new("gsk_refused_000000")).unwrap_err();
    assert!(matches!(e, CredentialError::KeyringDocument { .. }), "{e}");
    assert!(
        e.hint()
            .unwrap()
            .contains("mogplex credentials migrate --to file")
    );
    assert!(
        !std::fs::read_to_string(home.auth_file())
            .unwrap()
            .contains("gsk_refused")
    );

    let m = migrate(&home, StoreKind::File).unwrap();
    assert_eq!(
        (m.from, m.to, m.moved),
        (StoreKind::Keyring, StoreKind::File, 4)
    );
    let v = read_json(&home.auth_file());
    assert_eq!(v["store"], "file");
    assert_eq!(v["providers"]["openai"]["apiKey"], "sk-migrated-0000000000");
    assert!(
        keyring_items(&ns).is_empty(),
        "the old copy was not removed"
    );
}

#[test]
fn a_dead_writers_leftover_items_are_swept_by_the_next_write() {
    if !keyring_or_skip("a_dead_writers_leftover_items_are_swept") {
        return;
    }
    let (_d, home) = home();
    let store = keyring(&home);
    ops::store_provider_key(&store, "openai", Secret::new("sk-kept-00000000000")).unwrap();
    // What a writer killed between setting an item and committing leaves behind.
    let orphan = format!("{}providers.groq/apiKey/deadbeef", store.namespace());
    secret_tool_store(&orphan, r#"{"value":"gsk_orphan"}"#);
    let mut v = read_json(&home.auth_file());
    v["keyring_pending"] = serde_json::json!([orphan]);
    std::fs::write(home.auth_file(), v.to_string()).unwrap();
    let updated = (&store as &dyn CredentialStore).update(|_| Ok(())).unwrap();
    assert!(
        updated.written,
        "a pending list is swept even by a write that changes nothing"
    );
    assert_eq!(secret_tool_lookup(&orphan), None);
    assert!(
        read_json(&home.auth_file())
            .get("keyring_pending")
            .is_none()
    );
    assert_eq!(keyring_items(&store.namespace()).len(), 1);
}

// ---- worker processes, each with its own environment -------------------------------------

/// In a worker: open the store `MOGPLEX_TEST_CHOICE` names for `MOGPLEX_HOME`, store a key,
/// and report what happened on stdout.
#[test]
fn worker_store_a_key() {
    let Some((choice, home)) = worker_store() else {
        return;
    };
    // libtest has printed "test worker_store_a_key ... " without a newline.
    println!();
    let started = Instant::now();
    let result = open_store_with(StoreChoice::parse(&choice).unwrap(), &home).and_then(|s| {
        println!("store: {}", s.info().kind);
        if let Some(why) = &s.info().fallback {
            println!("fallback: {why}");
        }
        ops::store_provider_key(&*s, "openai", Secret::new("sk-worker-0000000000")).map(|_| ())
    });
    match result {
        Ok(()) => println!("outcome: stored"),
        Err(e) => {
            let kind = match &e {
                CredentialError::Keyring(KeyringError::NoSession { .. }) => "no-session",
                CredentialError::Keyring(KeyringError::Unavailable { .. }) => "unavailable",
                CredentialError::Keyring(KeyringError::Locked { .. }) => "locked",
                CredentialError::Keyring(KeyringError::Unresponsive { .. }) => "unresponsive",
                _ => "other",
            };
            println!("outcome: {kind}");
            println!("error: {e}");
            println!("hint: {}", e.hint().unwrap_or_default());
        }
    }
    println!("elapsed-ms: {}", started.elapsed().as_millis());
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
    }
}

/// Runs the worker with `env` replacing the session's keyring variables; fails if it does
/// not finish within a minute (far beyond the 3 s bound, so a hang is caught, not timed).
fn run_worker(choice: &str, home: &Path, env: &[(&str, &str)]) -> Report {
    let mut cmd = worker("worker_store_a_key", &[("MOGPLEX_TEST_CHOICE", choice)]);
    cmd.env("MOGPLEX_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the worker hung past the keyring bound"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    Report {
        lines: out.lines().map(str::to_owned).collect(),
    }
}

/// No D-Bus at all: an address that leads nowhere, and a runtime directory without a bus.
fn no_dbus(dir: &Path) -> Vec<(&'static str, String)> {
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    vec![
        (
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", dir.join("no-bus-here").display()),
        ),
        ("XDG_RUNTIME_DIR", runtime.display().to_string()),
    ]
}

fn borrowed<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn without_dbus_keyring_fails_clearly_and_auto_falls_back_saying_why() {
    if is_worker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = no_dbus(dir.path());

    let home = dir.path().join("strict");
    let r = run_worker("keyring", &home, &borrowed(&env));
    assert_eq!(r.get("outcome"), Some("no-session"), "{:?}", r.lines);
    assert!(r.get("error").unwrap().contains("no D-Bus session"));
    assert!(
        r.get("hint")
            .unwrap()
            .contains("MOGPLEX_CREDENTIAL_STORE=file")
    );
    assert!(!home.join("auth.json").exists(), "something was written");

    let home = dir.path().join("auto");
    let r = run_worker("auto", &home, &borrowed(&env));
    assert_eq!(r.get("store"), Some("file"), "{:?}", r.lines);
    assert!(r.get("fallback").unwrap().contains("no D-Bus session"));
    assert_eq!(r.get("outcome"), Some("stored"));
    assert_eq!(
        read_json(&home.join("auth.json"))["providers"]["openai"]["apiKey"],
        "sk-worker-0000000000"
    );
}

/// A D-Bus session and gnome-keyring of this test's own (so locking or stopping them cannot
/// disturb the other tests), ended by pid on drop.
struct PrivateKeyring {
    dbus: Child,
    daemon: Child,
    address: String,
    runtime: PathBuf,
    data: PathBuf,
}

impl PrivateKeyring {
    fn start(dir: &Path) -> Self {
        let runtime = dir.join("runtime");
        let data = dir.join("data");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", &data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = daemon.stdin.take().unwrap();
            stdin.write_all(b"private-pw").unwrap();
        }
        let me = Self {
            dbus,
            daemon,
            address,
            runtime,
            data,
        };
        // Wait until our daemon (not one D-Bus would activate) owns the Secret Service name.
        let deadline = Instant::now() + Duration::from_secs(30);
        while me.owner_pid() != Some(me.daemon.id()) {
            assert!(Instant::now() < deadline, "gnome-keyring did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }

    fn dbus_send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args(["--print-reply", "--reply-timeout=5000"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn owner_pid(&self) -> Option<u32> {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            "string:org.freedesktop.secrets",
        ]);
        out.split_whitespace()
            .skip_while(|w| *w != "uint32")
            .nth(1)?
            .parse()
            .ok()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
            ("XDG_RUNTIME_DIR", self.runtime.display().to_string()),
            ("XDG_DATA_HOME", self.data.display().to_string()),
        ]
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.daemon);
        rustix::process::kill_process(pid, signal).unwrap();
    }
}

impl Drop for PrivateKeyring {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.daemon),
            rustix::process::Signal::CONT,
        );
        for child in [&mut self.daemon, &mut self.dbus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_locked_keyring_fails_with_how_to_unlock_and_writes_nothing() {
    if !keyring_or_skip("a_locked_keyring") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keyring = PrivateKeyring::start(dir.path());
    // It works while unlocked…
    let home = dir.path().join("home");
    let r = run_worker("keyring", &home, &borrowed(&keyring.env()));
    assert_eq!(r.get("outcome"), Some("stored"), "{:?}", r.lines);
    let before = std::fs::read(home.join("auth.json")).unwrap();
    // …and once locked (no one can answer the unlock prompt here) it says so.
    keyring.dbus_send(&[
        "--dest=org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login",
    ]);
    let r = run_worker("keyring", &home, &borrowed(&keyring.env()));
    assert!(matches!(r.get("outcome"), Some("locked")), "{:?}", r.lines);
    assert!(r.get("error").unwrap().contains("is locked"));
    assert!(
        r.get("hint")
            .unwrap()
            .contains("gnome-keyring-daemon --unlock")
    );
    assert_eq!(std::fs::read(home.join("auth.json")).unwrap(), before);

    // A fresh home: nothing written anywhere.
    let fresh = dir.path().join("fresh");
    let r = run_worker("keyring", &fresh, &borrowed(&keyring.env()));
    assert_eq!(r.get("outcome"), Some("locked"), "{:?}", r.lines);
    assert!(!fresh.join("auth.json").exists());
}

#[test]
fn a_hanging_keyring_is_given_up_on_within_the_bound() {
    if !keyring_or_skip("a_hanging_keyring") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keyring = PrivateKeyring::start(dir.path());
    keyring.signal(rustix::process::Signal::STOP);

    let home = dir.path().join("strict");
    let r = run_worker("keyring", &home, &borrowed(&keyring.env()));
    assert_eq!(r.get("outcome"), Some("unresponsive"), "{:?}", r.lines);
    assert!(
        r.get("error")
            .unwrap()
            .contains("did not answer within 3 s")
    );
    assert!(
        r.get("hint")
            .unwrap()
            .contains("MOGPLEX_CREDENTIAL_STORE=file")
    );
    assert!(!home.join("auth.json").exists());

    let home = dir.path().join("auto");
    let r = run_worker("auto", &home, &borrowed(&keyring.env()));
    assert_eq!(r.get("store"), Some("file"), "{:?}", r.lines);
    assert!(r.get("fallback").unwrap().contains("did not answer"));
    assert_eq!(r.get("outcome"), Some("stored"));
    keyring.signal(rustix::process::Signal::CONT);
}
