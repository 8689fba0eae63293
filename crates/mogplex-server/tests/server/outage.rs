//! A PostgreSQL outage (issue 17), simulated with a TCP proxy between the server and the shared
//! cluster that the test cuts and restores: 503 with `Retry-After` during it, never a 500; 200
//! after, without a restart; no acknowledged write lost.

use crate::harness::*;
use crate::refresh::opsa_database;
use mogplex_server::crypto;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Forwards 127.0.0.1:PORT to the local PostgreSQL until cut.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c, l) = (cut.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { port, cut, live }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_answers_503_and_recovers_without_losing_a_write() {
    let proxy = Proxy::start().await;
    let (database, dir, pg) = opsa_database(Backend::Postgres).await;
    let through = database.replace(":5432/", &format!(":{}/", proxy.port));
    let s = TestServer::on_database(&through, dir, pg, |_| {}).await;
    s.user("ada@example.com").await;
    let (access, mut rt) = signed_in_tokens(&s, "ada@example.com").await;
    let mut acknowledged = vec![];
    for _ in 0..3 {
        let (st, b) = refresh(&s, &rt).await;
        assert_eq!(st, 200, "{b}");
        rt = b["refresh_token"].as_str().unwrap().to_owned();
        acknowledged.push(rt.clone());
    }

    // Several pooled connections, all of which the cut breaks: after it, none may fail a
    // request (the pool pings them while the outage is recent, and drops the dead ones).
    let warm = futures_util::future::join_all((0..8).map(|_| whoami(&s, &access))).await;
    assert!(warm.iter().all(|(st, _)| *st == 200), "{warm:?}");

    proxy.cut();
    let (st, b, headers) = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(st, 503, "{b}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let r = plain()
        .get(format!("{}/api/auth/user", s.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));

    proxy.restore();
    // The same server recovers by itself; the client retries what was refused.
    let (st, b) = refresh(&s, &rt).await;
    assert_eq!(st, 200, "{b}");
    acknowledged.push(b["refresh_token"].as_str().unwrap().to_owned());
    for _ in 0..8 {
        assert_eq!(whoami(&s, &access).await.0, 200);
    }
    for t in &acknowledged {
        let q = format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{}'",
            crypto::hash(t)
        );
        assert_eq!(s.count(&q).await, 1, "an acknowledged refresh was lost");
    }
}
