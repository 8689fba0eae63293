//! How long `load()` takes with the keyring store against the file store, for a document of two
//! accounts (access, refresh and ID tokens each) and two provider keys: warm (in one process)
//! and cold (a fresh process: connecting to the keyring included). A measurement, not a test:
//! ignored by default, it prints figures and asserts nothing about time.
//!
//! ```text
//! scripts/with-keyring \
//!   cargo test --release -p mogplex-auth --test credential_bench -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mogplex_auth::MogplexHome;
use mogplex_auth::credentials::Stored;
use mogplex_auth::credentials::{CredentialStore, FileStore, KeyringStore, ops};
use mogplex_auth::secret::Secret;
use mogplex_auth::{Account, AccountEntry};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

const WARM_RUNS: usize = 200;
const COLD_RUNS: usize = 20;

fn fill(store: &dyn CredentialStore) {
    for (n, email) in ["ada@example.com", "bob@example.com"].iter().enumerate() {
        let entry = AccountEntry {
            issuer: "https://www.mogplex.com".into(),
            access_token: Some(Stored::Value(Secret::new(format!(
                "access-{n}-{}",
                "a".repeat(900)
            )))),
            refresh_token: Some(Stored::Value(Secret::new(format!(
                "refresh-{n}-0123456789abcdef"
            )))),
            id_token: Some(Stored::Value(Secret::new(format!(
                "id-{n}-{}",
                "i".repeat(900)
            )))),
            token_type: Some("Bearer".into()),
            expires_at: Some("2099-01-01T00:00:00Z".into()),
            account: Some(Account {
                id: Some(format!("u{n}")),
                email: Some((*email).into()),
                ..Account::default()
            }),
            ..AccountEntry::default()
        };
        ops::store_sign_in(store, entry).unwrap();
    }
    ops::store_provider_key(
        store,
        "openai",
        Secret::new("sk-proj-bench-0123456789abcdef"),
    )
    .unwrap();
    ops::store_provider_key(store, "groq", Secret::new("gsk_bench_0123456789abcdef")).unwrap();
}

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "median {:>8.3} ms, p90 {:>8.3} ms, min {:>8.3} ms ({} runs)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples.len()
    )
}

/// In a worker: open the store and load once, printing the time both took.
#[test]
fn worker_cold_load() {
    let Some((kind, home)) = worker_store() else {
        return;
    };
    let started = Instant::now();
    let store: Box<dyn CredentialStore> = match kind.as_str() {
        "keyring" => Box::new(KeyringStore::open(&home).unwrap()),
        _ => Box::new(FileStore::new(&home)),
    };
    let loaded = store.load().unwrap();
    assert_eq!(loaded.doc.accounts.len(), 2);
    println!("\nelapsed-ns: {}", started.elapsed().as_nanos());
}

fn cold(kind: &str, home: &Path) -> Vec<Duration> {
    (0..COLD_RUNS)
        .map(|_| {
            let out = worker(
                "worker_cold_load",
                &[
                    ("MOGPLEX_TEST_CHOICE", kind),
                    ("MOGPLEX_HOME", &home.display().to_string()),
                ],
            )
            .stderr(Stdio::null())
            .output()
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ns = text
                .lines()
                .find_map(|l| l.strip_prefix("elapsed-ns: "))
                .unwrap_or_else(|| panic!("{text}"));
            Duration::from_nanos(ns.trim().parse().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "a measurement: run it under scripts/with-keyring with --ignored --nocapture"]
fn load_time_keyring_against_file() {
    if is_worker() || !keyring_or_skip("load_time_keyring_against_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file_home = MogplexHome::at(dir.path().join("file"));
    let keyring_home = MogplexHome::at(dir.path().join("keyring"));
    let file = FileStore::new(&file_home);
    let keyring = KeyringStore::open(&keyring_home).unwrap();
    fill(&file);
    fill(&keyring);

    let warm = |s: &dyn CredentialStore| -> Vec<Duration> {
        (0..WARM_RUNS)
            .map(|_| {
                let t = Instant::now();
                let loaded = s.load().unwrap();
                let took = t.elapsed();
                assert_eq!(loaded.doc.accounts.len(), 2);
                took
            })
            .collect()
    };
    let (file_warm, keyring_warm) = (warm(&file), warm(&keyring));
    let file_cold = cold("file", file_home.path());
    let keyring_cold = cold("keyring", keyring_home.path());
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    println!("load(), 2 accounts (access, refresh, ID tokens) + 2 provider keys:");
    println!("  file store,    warm: {}", stats(file_warm.clone()));
    println!("  keyring store, warm: {}", stats(keyring_warm.clone()));
    println!(
        "  file store,    cold (open + load in a fresh process): {}",
        stats(file_cold.clone())
    );
    println!(
        "  keyring store, cold (open + probe + load, fresh process): {}",
        stats(keyring_cold.clone())
    );
    println!(
        "  keyring/file ratio: warm {:.0}x, cold {:.0}x",
        median(&keyring_warm) / median(&file_warm),
        median(&keyring_cold) / median(&file_cold)
    );
}
