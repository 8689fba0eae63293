//! The HTTP edge: accepting connections and running HTTP/1.1 on them, with the bounds a public
//! server needs that `axum::serve` does not give.
//!
//! - A client has [`Edge::header_read_timeout`] to send a request's headers; a connection that
//!   dribbles them (slowloris) is closed then.
//! - One client address may hold at most [`Edge::max_connections_per_address`] connections at
//!   once; connections past that are closed as soon as they are accepted, so one client cannot
//!   use up the process's file descriptors and starve everybody else.
//! - Shutdown is bounded: on the signal the listener closes, every connection is asked to finish
//!   its request and close, live streams (run followers) are told to end through
//!   [`Closing`], and whatever is still open after [`Edge::drain`] is dropped.
//!
//! Each request carries `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`
//! gives, so handlers keep extracting the client address the same way.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The bounds of the edge; [`Edge::default`] is what `serve` uses unless told otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub header_read_timeout: Duration,
    /// 0: no bound.
    pub max_connections_per_address: usize,
    /// How long shutdown waits for open connections before dropping them.
    pub drain: Duration,
    /// Behind a reverse proxy: the client address is the last `X-Forwarded-For` entry (the one
    /// the proxy added), so throttles key on the client rather than on the proxy.
    pub trust_proxy: bool,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections_per_address: 256,
            drain: Duration::from_secs(5),
            trust_proxy: false,
        }
    }
}

/// Tells long-lived responses (server-sent event streams) that the server is shutting down.
#[derive(Debug, Clone)]
pub struct Closing(Arc<watch::Sender<bool>>);

impl Default for Closing {
    fn default() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
}

impl Closing {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn is_closing(&self) -> bool {
        *self.0.borrow()
    }

    fn begin(&self) {
        self.0.send_replace(true);
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; uncounted when dropped.
struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The router as a hyper service for one connection, with its client address attached.
#[derive(Clone)]
struct WithAddr {
    router: Router,
    addr: SocketAddr,
    trust_proxy: bool,
}

/// The client address a trusted proxy forwarded: the last `X-Forwarded-For` entry.
fn forwarded(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithAddr {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        let addr = match self.trust_proxy.then(|| forwarded(req.headers())).flatten() {
            Some(ip) => SocketAddr::new(ip, 0),
            None => self.addr,
        };
        req.extensions_mut().insert(ConnectInfo(addr));
        let mut router = self.router.clone();
        tower_service::Service::call(&mut router, req)
    }
}

/// Raises this process's open-file limit to its hard bound: every connection is a descriptor,
/// and the common soft default (1,024) is what a flood of slow connections used to exhaust.
/// Returns the limit now in force, when known.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if setrlimit(Resource::Nofile, l).is_err() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    l.current
}

/// Serves `router` on `listener` within the bounds of `edge` until `shutdown` resolves, then
/// closes within `edge.drain`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    edge: Edge,
    closing: Closing,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let table = Arc::new(PerAddress::default());
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a little rather
                // than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = PerAddress::take(&table, addr.ip(), edge.max_connections_per_address)
        else {
            tracing::debug!("too many connections from one address; closing the newest");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = WithAddr {
            router: router.clone(),
            addr,
            trust_proxy: edge.trust_proxy,
        };
        let closing = closing.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(edge.header_read_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                () = closing.wait() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    closing.begin();
    let drained = tokio::time::timeout(edge.drain, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            "closing {} connections still open after {} s",
            tasks.len(),
            edge.drain.as_secs()
        );
        tasks.shutdown().await;
    }
    Ok(())
}
