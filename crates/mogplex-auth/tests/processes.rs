//! The file store (through the credential seam) across real processes: concurrent writers lose nothing, and a writer killed at any
//! moment never leaves a file that fails to parse or debris that trips a later write.
//!
//! The child processes are this test binary itself, re-run with `MOGPLEX_TEST_CHILD` set, so
//! they go through exactly the library code under test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::credentials::{CredentialStore, FileStore, ops};
use mogplex_auth::{MogplexHome, Secret};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn child(test: &str, auth: &Path, arg: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("MOGPLEX_TEST_CHILD", arg)
        .env("MOGPLEX_TEST_AUTH", auth)
        .stdin(Stdio::null());
    c
}

fn store_at(auth: &Path) -> FileStore {
    FileStore::new(&MogplexHome::at(auth.parent().unwrap()))
}

fn child_args() -> Option<(String, FileStore)> {
    let arg = std::env::var("MOGPLEX_TEST_CHILD").ok()?;
    let auth = std::env::var("MOGPLEX_TEST_AUTH").ok()?;
    Some((arg, store_at(Path::new(&auth))))
}

/// In a child: store one provider key. In the test process: nothing (it is run as a child only).
#[test]
fn child_store_one_key() {
    let Some((name, store)) = child_args() else {
        return;
    };
    ops::store_provider_key(&store, &name, Secret::new(format!("key-for-{name}"))).unwrap();
}

/// In a child: rewrite the file in a loop, with a growing value so sizes change, until killed.
#[test]
fn child_write_forever() {
    let Some((_, store)) = child_args() else {
        return;
    };
    println!("ready");
    let mut i = 0u64;
    loop {
        i += 1;
        let s: &dyn CredentialStore = &store;
        s.update(|f| {
            f.providers.entry("loop".into()).or_default().api_key =
                Some(mogplex_auth::credentials::Stored::Value(Secret::new(
                    "x".repeat((i % 5000) as usize + 1),
                )));
            f.extra.insert("counter".into(), i.into());
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn twenty_concurrent_writers_all_land() {
    if child_args().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("home/auth.json");
    let children: Vec<_> = (0..20)
        .map(|i| {
            child("child_store_one_key", &auth, &format!("provider-{i:02}"))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let loaded = store_at(&auth).load().unwrap();
    assert_eq!(loaded.doc.providers.len(), 20);
    for i in 0..20 {
        let name = format!("provider-{i:02}");
        assert_eq!(
            loaded.doc.provider_key(&name).unwrap().expose(),
            format!("key-for-{name}")
        );
    }
}

#[test]
fn a_writer_killed_at_random_moments_never_corrupts() {
    if child_args().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("home/auth.json");
    let store = store_at(&auth);
    ops::store_provider_key(&store, "keep", Secret::new("kept-key")).unwrap();
    let store: &dyn CredentialStore = &store;
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const KILLS: usize = 60;
    for round in 0..KILLS {
        let mut c = child("child_write_forever", &auth, "loop")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // libtest prints its own lines first; wait for the child's.
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the writer exited early"
            );
        }
        std::thread::sleep(Duration::from_micros(rand() % 30_000));
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&c),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        c.wait().unwrap();

        let loaded = store
            .load()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            loaded.moved_aside.is_none(),
            "round {round}: the file was corrupt"
        );
        assert_eq!(
            loaded.doc.provider_key("keep").unwrap().expose(),
            "kept-key",
            "round {round}"
        );
        // A later write succeeds and clears any temp file the killed writer left.
        store
            .update(|f| {
                f.extra.insert("round".into(), round.into());
                Ok(())
            })
            .unwrap();
        let debris: Vec<_> = std::fs::read_dir(auth.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "auth.json" && n != "auth.json.lock")
            .collect();
        assert!(debris.is_empty(), "round {round}: left behind {debris:?}");
    }
    let counter = store
        .load()
        .unwrap()
        .doc
        .extra
        .get("counter")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    assert!(counter > 0, "the writer did write");
}
