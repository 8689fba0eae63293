//! Storage that holds under pressure (issue 17): a full disk answers 507 and loses no
//! acknowledged write, the WAL stays bounded under sustained load and is merged on shutdown, and
//! the SQLite files are private to the server's user.

use crate::harness::*;
use mogplex_server::crypto;
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn db_path(s: &TestServer) -> PathBuf {
    PathBuf::from(s.database.strip_prefix("sqlite://").unwrap())
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// A log sink for this thread: what the server logs from tasks on a current-thread runtime.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs until the guard is dropped.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// Fills the filesystem of `dir` until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    p
}

// One thread, so the server's handlers log to this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_full_disk_answers_507_and_loses_no_acknowledged_write() {
    let logs = Logs::default();
    let _capturing = logs.capture();
    // Mounting needs root (as on the CI machine); elsewhere this test has nothing to stand on.
    let Some(fs) = Tmpfs::mount("6m") else {
        assert_ne!(
            effective_uid(),
            0,
            "mount -t tmpfs failed although running as root"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = fs.0.path().join("data");
    let database = format!("sqlite://{}", data.join("m.db").display());
    let s = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    // A new data directory is private, and so are the database and its WAL.
    assert_eq!(mode(&data), 0o700);
    let path = db_path(&s);
    assert_eq!(mode(&path), 0o600);
    s.user("full@example.com").await;
    let (_, mut rt) = signed_in_tokens(&s, "full@example.com").await;
    assert_eq!(mode(&suffixed(&path, "-wal")), 0o600);
    let pat = crypto::personal_access_token();
    let uid = s
        .db()
        .user_by_email("full@example.com")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    s.db().create_pat(&uid, "t", &pat, None).await.unwrap();
    let r = plain()
        .post(format!("{}/api/v1/mogplex/runs", s.url))
        .bearer_auth(&pat)
        .json(&json!({"title": "full"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let run = r.json::<serde_json::Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let filler = fill(fs.0.path());
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let (status, body) = refresh(&s, &rt).await;
        match status {
            200 => {
                rt = body["refresh_token"].as_str().unwrap().to_owned();
                acknowledged.push(rt.clone());
            }
            507 | 503 => refused += 1,
            other => panic!("a refresh on a full disk answered {other}: {body}"),
        }
    }
    let mut appended = Vec::new();
    for n in 0..10 {
        let r = plain()
            .post(format!("{}/api/v1/mogplex/runs/{run}/events", s.url))
            .bearer_auth(&pat)
            .json(&json!({"type": "message", "n": n}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => appended.push(r.json::<serde_json::Value>().await.unwrap()),
            507 | 503 => {
                assert!(r.headers().contains_key("retry-after"));
                refused += 1
            }
            other => panic!("an append on a full disk answered {other}"),
        }
    }
    assert!(refused > 0, "the disk never refused a write");
    let text = logs.text();
    assert!(
        text.contains("storage error") && text.contains("full"),
        "no storage error logged: {text}"
    );

    // Space again: everything acknowledged is there, and the sign-in goes on.
    std::fs::remove_file(filler).unwrap();
    for t in &acknowledged {
        let q = format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{}'",
            crypto::hash(t)
        );
        assert_eq!(s.count(&q).await, 1, "an acknowledged refresh was lost");
    }
    let stored = s
        .count(&format!(
            "SELECT COUNT(*) FROM run_events WHERE run_id = '{run}'"
        ))
        .await;
    assert_eq!(stored as usize, appended.len(), "{appended:?}");
    let (status, body) = refresh(&s, &rt).await;
    assert_eq!(status, 200, "{body}");
    drop(s);
}

fn effective_uid() -> u32 {
    // The owner of a file we just created is our effective user.
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_bounded_under_sustained_refreshes_and_is_merged_on_shutdown() {
    const CHAINS: usize = 16;
    const PER_CHAIN: usize = 125;
    const WAL_BOUND: u64 = 32 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let database = format!("sqlite://{}", path.display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = mogplex_server::AppState::new(&database, mogplex_server::Config::new(&url))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mogplex_server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let hash = mogplex_server::password::hash(PASSWORD.into())
        .await
        .unwrap();
    state
        .db
        .create_user("wal@example.com", "W", &hash)
        .await
        .unwrap();
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        chains.push(signed_in_tokens(url.as_str(), "wal@example.com").await.1);
    }
    let wal = suffixed(&path, "-wal");
    let largest = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (wal, largest, done) = (wal.clone(), largest.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                largest.fetch_max(file_len(&wal), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for mut rt in chains {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..PER_CHAIN {
                let (st, b) = refresh(url.as_str(), &rt).await;
                assert_eq!(st, 200, "{b}");
                rt = b["refresh_token"].as_str().unwrap().to_owned();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();
    let largest = largest
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(file_len(&wal));
    assert!(
        largest < WAL_BOUND,
        "the WAL grew to {largest} bytes over {} refreshes",
        CHAINS * PER_CHAIN
    );
    // The database file itself holds the data: checkpoints ran during the load.
    assert!(
        file_len(&path) > 512 * 1024,
        "the database file is {} bytes",
        file_len(&path)
    );
    // A graceful stop merges the WAL and truncates it.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(file_len(&wal), 0, "the WAL was left after shutdown");
    let rows = {
        use sqlx::Row;
        let mogplex_server::db::Db::Sqlite(p) = &state.db else {
            unreachable!()
        };
        sqlx::query("SELECT COUNT(*) FROM refresh_tokens")
            .fetch_one(p)
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    assert_eq!(rows as usize, CHAINS * (PER_CHAIN + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_other_users_can_read_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.db");
    let database = format!("sqlite://{}", path.display());
    mogplex_server::db::Db::connect(&database).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = mogplex_server::db::Db::connect(&database)
        .await
        .unwrap_err();
    let e = e.to_string();
    assert!(e.contains("readable by other users"), "{e}");
    assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
    // The binary says it as error and hint, and exits without serving.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
        .args(["serve", "--database", &database, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("error: the database file"), "{err}");
    assert!(err.contains("hint: run `chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    mogplex_server::db::Db::connect(&database).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_leaves_one_self_contained_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let database = format!("sqlite://{}", path.display());
    let seed = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    seed.user("ada@example.com").await;
    drop(seed);
    let (mut proc, url) = crate::refresh::spawn_server(&database, &dir.path().join("serve.log"));
    let (_, mut rt) = signed_in_tokens(url.as_str(), "ada@example.com").await;
    for _ in 0..20 {
        let (st, b) = refresh(url.as_str(), &rt).await;
        assert_eq!(st, 200, "{b}");
        rt = b["refresh_token"].as_str().unwrap().to_owned();
    }
    assert!(file_len(&suffixed(&path, "-wal")) > 0);
    let pid = proc.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || {
        let s = proc.0.wait().unwrap();
        (s, proc)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success(), "{status:?}");
    assert_eq!(
        file_len(&suffixed(&path, "-wal")),
        0,
        "the WAL was left after SIGTERM"
    );
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("database checkpointed"), "{log}");
    let q = format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{}'",
        crypto::hash(&rt)
    );
    let db = TestServer::on_database(&database, tempfile::tempdir().unwrap(), None, |_| {}).await;
    assert_eq!(db.count(&q).await, 1);
}
