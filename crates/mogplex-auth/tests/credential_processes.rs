//! The credential store (schema version 2) across real processes: twenty at once adding,
//! switching, removing and refreshing accounts lose nothing and write only to their own
//! account; a writer (and a migration) killed at random points never leaves a half-written
//! file, a credential in two places or in none, or a keyring item nothing references after
//! the next write. The killed writers also write MCP tokens (an entry stored, one rotated the
//! way a refresh commits it, one forgotten, one going with its account's logout): afterwards
//! every MCP entry is its old or its new value whole, none outlives its account, and the
//! entries nothing wrote are untouched. The workers are this test binary itself, re-run with `MOGPLEX_TEST_CHILD`.
//! The keyring variants run under `scripts/with-keyring` (a real Secret Service).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mogplex_auth::MogplexHome;
use mogplex_auth::credentials::mcp::{entry_from_tokens, forget_mcp_token, store_mcp_token};
use mogplex_auth::credentials::ops::{self, migrate};
use mogplex_auth::credentials::{
    CredentialStore, Document, FileStore, KeyringStore, McpTokenEntry, StoreChoice, StoreKind,
    Stored, open_store_with,
};
use mogplex_auth::oauth::TokenResponse;
use mogplex_auth::secret::Secret;
use mogplex_auth::{Account, AccountEntry};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use support::*;

const ISSUERS: [&str; 2] = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"];

fn sign_in(issuer: &str, user: &str, round: u32) -> AccountEntry {
    AccountEntry {
        issuer: issuer.into(),
        access_token: Some(Stored::Value(Secret::new(format!("at-{user}-{round}")))),
        refresh_token: Some(Stored::Value(Secret::new(format!("rt-{user}-{round}")))),
        token_type: Some("Bearer".into()),
        expires_at: Some("2099-01-01T00:00:00Z".into()),
        account: Some(Account {
            id: Some(user.into()),
            email: Some(format!("{user}@example.com")),
            ..Account::default()
        }),
        ..AccountEntry::default()
    }
}

fn id_of(issuer: &str, user: &str) -> String {
    mogplex_auth::credentials::document::account_entry_id(issuer, user)
}

/// What a token refresh writes: new tokens for one entry, found by id under the lock, and
/// nothing else.
fn refresh_write(store: &dyn CredentialStore, entry_id: &str, user: &str, round: u32) {
    let mut locked = store.locked().unwrap();
    let mut doc = locked.document().clone();
    let Some(entry) = doc.account_mut(entry_id) else {
        return;
    };
    entry.access_token = Some(Stored::Value(Secret::new(format!("at-{user}-{round}"))));
    entry.refresh_token = Some(Stored::Value(Secret::new(format!("rt-{user}-{round}"))));
    locked.write(doc).unwrap();
}

/// The demo MCP server's resource, whose token for ada is rotated every round (and for bob never
/// written after the start), and another one, whose tokens come and go.
const MCP_DEMO: &str = "http://127.0.0.1:9001/mcp/demo";
const MCP_OTHER: &str = "http://127.0.0.1:9002/mcp/other";

/// An MCP sign-in as the token endpoint answers it: the tokens tagged `<tag>-<round>` and a
/// lifetime of 3600 + round seconds, so that every field of an entry says which write made it.
fn mcp_answer(tag: &str, round: u32) -> TokenResponse {
    serde_json::from_value(serde_json::json!({
        "access_token": format!("mat-{tag}-{round}"),
        "refresh_token": format!("mrt-{tag}-{round}"),
        "token_type": "Bearer",
        "expires_in": 3600 + round,
        "scope": "mcp:demo",
    }))
    .unwrap()
}

fn mcp_entry(account: &str, resource: &str, tag: &str, round: u32) -> McpTokenEntry {
    let server = if resource == MCP_DEMO {
        "demo"
    } else {
        "other"
    };
    entry_from_tokens(
        Some(account),
        server,
        resource,
        ISSUERS[0],
        "mcl_kill",
        Some("mcp:demo"),
        &mcp_answer(tag, round),
        None,
    )
}

/// What a refresh of an MCP token commits (`fresh_mcp_token` after the token endpoint
/// answered): under the lock, the entry re-read and renewed from the answer, nothing else.
fn mcp_refresh_write(store: &dyn CredentialStore, account: &str, round: u32) {
    let mut locked = store.locked().unwrap();
    let mut doc = locked.document().clone();
    let Some(slot) = doc
        .mcp_tokens
        .iter_mut()
        .find(|m| m.is_for(Some(account), MCP_DEMO))
    else {
        return;
    };
    *slot = entry_from_tokens(
        slot.account.as_deref(),
        &slot.server,
        &slot.resource,
        &slot.issuer,
        &slot.client_id,
        None,
        &mcp_answer("demo", round),
        Some(slot),
    );
    locked.write(doc).unwrap();
}

fn open(choice: &str, home: &str) -> Arc<dyn CredentialStore> {
    open_store_with(StoreChoice::parse(choice).unwrap(), &MogplexHome::at(home)).unwrap()
}

/// In a worker: sign in as user N, store a key, switch to it, add and remove a temporary
/// account, refresh three times, and switch the default to whatever account is there.
#[test]
fn worker_churn() {
    let (Some(choice), Some(home), Some(n)) = (
        worker_var("MOGPLEX_TEST_CHOICE"),
        worker_var("MOGPLEX_HOME"),
        worker_var("MOGPLEX_TEST_N"),
    ) else {
        return;
    };
    let store = open(&choice, &home);
    let s = &*store;
    let n: usize = n.parse().unwrap();
    let issuer = ISSUERS[n % 2];
    let user = format!("user{n:02}");
    let id = id_of(issuer, &user);
    ops::store_sign_in(s, sign_in(issuer, &user, 0)).unwrap();
    ops::store_provider_key(
        s,
        &format!("prov{n:02}"),
        Secret::new(format!("key-{user}")),
    )
    .unwrap();
    ops::set_default_account(s, &id).unwrap();
    let tmp = format!("tmp{n:02}");
    ops::store_sign_in(s, sign_in(issuer, &tmp, 0)).unwrap();
    for round in 1..=3 {
        refresh_write(s, &id, &user, round);
        if let Some(other) = s.load_metadata().unwrap().doc.accounts.first() {
            // It may be gone by now (another worker's temporary account): that is fine.
            let _ = ops::set_default_account(s, &other.id.clone());
        }
    }
    assert!(
        ops::logout(s, &id_of(issuer, &tmp))
            .unwrap()
            .value
            .is_some()
    );
}

fn twenty_at_once(choice: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home_s = home.display().to_string();
    let workers: Vec<_> = (0..20)
        .map(|n| {
            worker(
                "worker_churn",
                &[
                    ("MOGPLEX_TEST_CHOICE", choice),
                    ("MOGPLEX_HOME", &home_s),
                    ("MOGPLEX_TEST_N", &n.to_string()),
                ],
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    let store = open(choice, &home_s);
    let loaded = store.load().unwrap();
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    let doc = &loaded.doc;
    assert_eq!(doc.accounts.len(), 20, "{:#?}", ops::list_accounts(doc));
    for n in 0..20 {
        let (issuer, user) = (ISSUERS[n % 2], format!("user{n:02}"));
        let a = doc
            .account(&id_of(issuer, &user))
            .expect("every account is there");
        assert_eq!(a.issuer, issuer);
        let value = |s: &Option<Stored>| s.as_ref().unwrap().value().unwrap().expose().to_owned();
        assert_eq!(value(&a.access_token), format!("at-{user}-3"));
        assert_eq!(value(&a.refresh_token), format!("rt-{user}-3"));
        assert_eq!(
            doc.provider_key(&format!("prov{n:02}")).unwrap().expose(),
            format!("key-{user}")
        );
    }
    assert_eq!(doc.providers.len(), 20);
    assert!(
        doc.default_entry().is_some(),
        "the default names a stored account"
    );
    assert_eq!(doc.accounts_for(ISSUERS[0]).count(), 10);
    if choice == "keyring" {
        let raw: Document = serde_json::from_value(read_json(&home.join("auth.json"))).unwrap();
        assert!(!raw.has_inline_secrets());
        assert!(raw.keyring_pending.is_empty());
        let mut refs: Vec<String> = raw.keyring_refs().into_iter().map(str::to_owned).collect();
        refs.sort();
        let ns = KeyringStore::open(&MogplexHome::at(&home))
            .unwrap()
            .namespace();
        assert_eq!(
            keyring_items(&ns),
            refs,
            "orphaned or missing keyring items"
        );
    }
}

#[test]
fn twenty_processes_adding_switching_removing_and_refreshing_lose_nothing() {
    if is_worker() {
        return;
    }
    twenty_at_once("file");
}

#[test]
fn twenty_processes_on_the_keyring_store_lose_nothing() {
    if is_worker() || !keyring_or_skip("twenty_processes_on_the_keyring_store") {
        return;
    }
    twenty_at_once("keyring");
}

/// In a worker: rewrite forever (refreshes of ada, a key stored and removed, an account added
/// and removed) with the store `MOGPLEX_TEST_CHOICE` names; with `migrate`, also move
/// everything to the keyring and back each round.
#[test]
fn worker_write_forever() {
    let Some((choice, home)) = worker_store() else {
        return;
    };
    let (file, keyring): (Arc<dyn CredentialStore>, Option<Arc<dyn CredentialStore>>) =
        match choice.as_str() {
            "migrate" => (
                Arc::new(FileStore::new(&home)),
                Some(Arc::new(KeyringStore::open(&home).unwrap())),
            ),
            _ => (open(&choice, &home.path().display().to_string()), None),
        };
    let ada = id_of(ISSUERS[0], "ada");
    let tmp = id_of(ISSUERS[1], "tmp");
    println!("\nready");
    let mut round = 1u32;
    loop {
        let stores: Vec<&dyn CredentialStore> = match &keyring {
            Some(k) => {
                migrate(&home, StoreKind::Keyring).unwrap();
                vec![&**k]
            }
            None => vec![&*file],
        };
        for s in stores {
            refresh_write(s, &ada, "ada", round);
            mcp_refresh_write(s, &ada, round);
            store_mcp_token(s, mcp_entry(&ada, MCP_OTHER, "other", round)).unwrap();
            ops::store_provider_key(
                s,
                "churn",
                Secret::new("x".repeat(round as usize % 3000 + 1)),
            )
            .unwrap();
            ops::store_sign_in(s, sign_in(ISSUERS[1], "tmp", round)).unwrap();
            store_mcp_token(s, mcp_entry(&tmp, MCP_DEMO, "tmp", round)).unwrap();
            forget_mcp_token(s, Some(&ada), MCP_OTHER).unwrap();
            ops::remove_provider_key(s, "churn").unwrap();
            // Takes tmp's MCP token with it.
            ops::logout(s, &tmp).unwrap();
        }
        if keyring.is_some() {
            migrate(&home, StoreKind::File).unwrap();
            refresh_write(&*file, &ada, "ada", round);
        }
        round += 1;
    }
}

/// After a kill: the file parses, every credential is in exactly one place (values inline in a
/// file-store document, references that resolve in a keyring one), and ada's tokens are a pair
/// written together.
fn check_after_kill(home: &Path, round: usize, namespace: Option<&str>) {
    let path = home.join("auth.json");
    let raw: Document = serde_json::from_value(read_json(&path))
        .unwrap_or_else(|e| panic!("round {round}: half-written auth.json: {e}"));
    match raw.store_kind() {
        StoreKind::Keyring => assert!(!raw.has_inline_secrets(), "round {round}: {raw:?}"),
        _ => assert!(raw.keyring_refs().is_empty(), "round {round}: {raw:?}"),
    }
    let store = FileStore::new(&MogplexHome::at(home));
    let loaded = (&store as &dyn CredentialStore).load().unwrap();
    assert!(loaded.moved_aside.is_none(), "round {round}: corrupt");
    assert!(loaded.notes.is_empty(), "round {round}: {:?}", loaded.notes);
    let doc = &loaded.doc;
    assert_eq!(
        doc.provider_key("keep").unwrap().expose(),
        "kept-key",
        "round {round}"
    );
    let bob = doc.account(&id_of(ISSUERS[1], "bob")).unwrap();
    assert_eq!(
        bob.bearer().unwrap().0.expose(),
        "at-bob-0",
        "round {round}"
    );
    let bob_refresh = bob.refresh_token.as_ref().and_then(Stored::value);
    assert_eq!(
        bob_refresh.map(|r| r.expose()),
        Some("rt-bob-0"),
        "round {round}: the untouched account was touched"
    );
    let ada = doc.account(&id_of(ISSUERS[0], "ada")).unwrap();
    let token = |s: &Option<Stored>| s.as_ref().unwrap().value().unwrap().expose().to_owned();
    let (at, rt) = (token(&ada.access_token), token(&ada.refresh_token));
    assert_eq!(
        at.strip_prefix("at-"),
        rt.strip_prefix("rt-"),
        "round {round}: torn refresh"
    );
    check_mcp_after_kill(doc, round);

    // The next write (with the store the document is in) sweeps what the dead writer left.
    let next: Arc<dyn CredentialStore> = match raw.store_kind() {
        StoreKind::Keyring => Arc::new(KeyringStore::open(&MogplexHome::at(home)).unwrap()),
        _ => Arc::new(store),
    };
    next.update(|d| {
        d.extra.insert("round".into(), round.into());
        Ok(())
    })
    .unwrap();
    let debris: Vec<_> = std::fs::read_dir(home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "auth.json" && n != "auth.json.lock")
        .collect();
    assert!(debris.is_empty(), "round {round}: left behind {debris:?}");
    if let Some(ns) = namespace {
        let raw: Document = serde_json::from_value(read_json(&path)).unwrap();
        assert!(raw.keyring_pending.is_empty(), "round {round}");
        let mut refs: Vec<String> = raw.keyring_refs().into_iter().map(str::to_owned).collect();
        refs.sort();
        assert_eq!(
            keyring_items(ns),
            refs,
            "round {round}: orphaned keyring items"
        );
    }
}

/// The tag (`demo`, `other`, `tmp`, `bob`) and round an MCP entry was written with, checking
/// that it is one write's value whole: both tokens, the lifetime and the fixed fields agree.
fn whole_mcp_entry(m: &McpTokenEntry, round: usize) -> (String, u32) {
    let token = |s: &Option<Stored>| {
        s.as_ref()
            .and_then(Stored::value)
            .unwrap_or_else(|| panic!("round {round}: a token is missing: {m:?}"))
            .expose()
            .to_owned()
    };
    let (at, rt) = (token(&m.access_token), token(&m.refresh_token));
    let made = at.strip_prefix("mat-").unwrap();
    assert_eq!(
        Some(made),
        rt.strip_prefix("mrt-"),
        "round {round}: torn {m:?}"
    );
    let (tag, n) = made.rsplit_once('-').unwrap();
    let n: u32 = n.parse().unwrap();
    let time = |s: &Option<String>| {
        time::OffsetDateTime::parse(
            s.as_deref().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(
        (time(&m.expires_at) - time(&m.obtained_at)).whole_seconds(),
        3600 + i64::from(n),
        "round {round}: the lifetime of another write: {m:?}"
    );
    let server = if m.resource == MCP_DEMO {
        "demo"
    } else {
        "other"
    };
    assert_eq!(m.server, server, "round {round}");
    assert_eq!(m.issuer, ISSUERS[0], "round {round}");
    assert_eq!(m.client_id, "mcl_kill", "round {round}");
    assert_eq!(m.scope.as_deref(), Some("mcp:demo"), "round {round}");
    assert_eq!(m.token_type.as_deref(), Some("Bearer"), "round {round}");
    assert_eq!(
        m.id,
        mogplex_auth::credentials::document::mcp_token_id(m.account.as_deref(), &m.resource)
    );
    (tag.to_owned(), n)
}

/// After a kill, the MCP entries: ada's demo token is there and whole (rotated or not), bob's
/// is exactly what was stored before any writer ran, ada's other token and tmp's are there
/// whole or not at all, and no entry outlives its account.
fn check_mcp_after_kill(doc: &Document, round: usize) {
    let (ada, bob, tmp) = (
        id_of(ISSUERS[0], "ada"),
        id_of(ISSUERS[1], "bob"),
        id_of(ISSUERS[1], "tmp"),
    );
    assert!(
        doc.mcp_tokens.len() <= 4,
        "round {round}: {:?}",
        doc.mcp_tokens
    );
    for m in &doc.mcp_tokens {
        let owner = m.account.as_deref().unwrap();
        assert!(
            doc.account(owner).is_some(),
            "round {round}: an MCP token outlived its account: {m:?}"
        );
        let (tag, _) = whole_mcp_entry(m, round);
        let expected = match (owner, m.resource.as_str()) {
            (a, MCP_DEMO) if a == ada => "demo",
            (a, MCP_OTHER) if a == ada => "other",
            (a, MCP_DEMO) if a == bob => "bob",
            (a, MCP_DEMO) if a == tmp => "tmp",
            _ => panic!("round {round}: an entry nothing wrote: {m:?}"),
        };
        assert_eq!(tag, expected, "round {round}: {m:?}");
    }
    assert!(
        doc.mcp_token(Some(&ada), MCP_DEMO).is_some(),
        "round {round}: lost"
    );
    let b = doc
        .mcp_token(Some(&bob), MCP_DEMO)
        .expect("bob's MCP token");
    assert_eq!(
        whole_mcp_entry(b, round),
        ("bob".into(), 0),
        "round {round}"
    );
}

fn kill_at_random_points(choice: &str, rounds: usize, max_delay_us: u64) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = FileStore::new(&MogplexHome::at(&home));
    ops::store_provider_key(&store, "keep", Secret::new("kept-key")).unwrap();
    ops::store_sign_in(&store, sign_in(ISSUERS[1], "bob", 0)).unwrap();
    ops::store_sign_in(&store, sign_in(ISSUERS[0], "ada", 0)).unwrap();
    let (ada, bob) = (id_of(ISSUERS[0], "ada"), id_of(ISSUERS[1], "bob"));
    store_mcp_token(&store, mcp_entry(&ada, MCP_DEMO, "demo", 0)).unwrap();
    store_mcp_token(&store, mcp_entry(&bob, MCP_DEMO, "bob", 0)).unwrap();
    let bob_before = {
        let doc = (&store as &dyn CredentialStore).load().unwrap().doc;
        doc.mcp_token(Some(&bob), MCP_DEMO).unwrap().clone()
    };
    let namespace = (choice == "migrate").then(|| {
        KeyringStore::open(&MogplexHome::at(&home))
            .unwrap()
            .namespace()
    });
    let mut rand = rng();
    for round in 0..rounds {
        let mut w = worker(
            "worker_write_forever",
            &[
                ("MOGPLEX_TEST_CHOICE", choice),
                ("MOGPLEX_HOME", &home.display().to_string()),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut out = BufReader::new(w.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "ready" {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the writer exited early"
            );
        }
        std::thread::sleep(Duration::from_micros(rand() % max_delay_us));
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&w),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        w.wait().unwrap();
        check_after_kill(&home, round, namespace.as_deref());
        let doc = (&store as &dyn CredentialStore).load().unwrap().doc;
        let bob_now = doc.mcp_token(Some(&bob), MCP_DEMO).unwrap();
        for (now, before) in [
            (&bob_now.expires_at, &bob_before.expires_at),
            (&bob_now.obtained_at, &bob_before.obtained_at),
        ] {
            assert_eq!(now, before, "round {round}: bob's MCP token was rewritten");
        }
    }
    let doc = (&store as &dyn CredentialStore).load().unwrap().doc;
    let demo = doc.mcp_token(Some(&ada), MCP_DEMO).unwrap();
    assert!(
        whole_mcp_entry(demo, rounds).1 > 0,
        "the writers rotated it"
    );
}

#[test]
fn a_version_2_writer_killed_at_random_points_loses_nothing() {
    if is_worker() {
        return;
    }
    kill_at_random_points("file", 40, 40_000);
}

#[test]
fn a_keyring_writer_and_migration_killed_at_random_points_lose_nothing() {
    if is_worker() || !keyring_or_skip("a_keyring_writer_and_migration_killed") {
        return;
    }
    kill_at_random_points("migrate", 25, 600_000);
}
