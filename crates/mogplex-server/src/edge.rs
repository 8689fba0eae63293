//! The HTTP edge: accepting connections and running HTTP/1.1 on them, with the bounds a public
//! server needs that `axum::serve` does not give.
//!
//! - A client has [`Edge::header_read_timeout`] to send a request's headers: from the accept
//!   for a new connection, from the first byte of the next request on a kept-alive one. A
//!   connection that dribbles them (slowloris) or sends nothing is answered `408` and closed.
//! - A kept-alive connection may sit idle between requests for [`Edge::idle_timeout`], longer
//!   than the clients' own pools keep connections (90 s for reqwest, hyper and Go), so a client
//!   does not send its next request into a connection the server is closing. hyper has one
//!   timer for both (its header read timeout runs while idle too), so the edge keeps its own:
//!   [`Timed`] on the socket, told by the service when a request starts and its response ends.
//! - One client address may hold at most [`Edge::max_connections_per_address`] connections at
//!   once; a connection past that is answered `503` with `Retry-After` at once and closed, so one
//!   client cannot use up the process's file descriptors and starve everybody else, and a client
//!   over the bound learns why rather than seeing a reset.
//! - Shutdown is bounded: on the signal the listener closes, every connection is asked to finish
//!   its request and close, live streams (run followers) are told to end through
//!   [`Closing`], and whatever is still open after [`Edge::drain`] is dropped.
//!
//! Each request carries `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`
//! gives, so handlers keep extracting the client address the same way.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// The bounds of the edge; [`Edge::default`] is what `serve` uses unless told otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
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
            idle_timeout: Duration::from_secs(120),
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

/// Where a connection is between requests, and so which deadline its socket reads have.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Receiving a request's headers: they must be complete by then.
    Head(Instant),
    /// A request is being answered: no read deadline (the request timeout bounds the handler).
    Busy,
    /// Waiting for the next request: the first byte must come by then.
    Idle(Instant),
}

/// A connection's phase, shared by its socket ([`Timed`]), its service and its response bodies.
#[derive(Debug, Clone)]
struct Clock {
    state: Arc<Mutex<(Phase, Option<Waker>)>>,
    edge: Edge,
}

impl Clock {
    fn new(edge: Edge) -> Self {
        let head = Phase::Head(Instant::now() + edge.header_read_timeout);
        Self {
            state: Arc::new(Mutex::new((head, None))),
            edge,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Option<Waker>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The phase now; while busy, `cx` is woken when the phase has a deadline again (a read
    /// parked then has no timer to wake it).
    fn get(&self, cx: &Context<'_>) -> Phase {
        let mut st = self.lock();
        if let Phase::Busy = st.0 {
            st.1 = Some(cx.waker().clone());
        }
        st.0
    }

    /// Bytes arrived: on an idle connection they begin a request, whose headers are now due.
    fn bytes_read(&self) {
        let mut st = self.lock();
        if let Phase::Idle(_) = st.0 {
            st.0 = Phase::Head(Instant::now() + self.edge.header_read_timeout);
        }
    }

    fn request_started(&self) {
        self.lock().0 = Phase::Busy;
    }

    fn response_ended(&self) {
        let waker = {
            let mut st = self.lock();
            st.0 = Phase::Idle(Instant::now() + self.edge.idle_timeout);
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// What a client whose headers did not arrive in time is told before the connection closes.
const TIMED_OUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 52\r\n\r\nerror: the request's headers did not arrive in time\n";

/// What a connection past [`Edge::max_connections_per_address`] is told.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 65\r\n\r\nerror: too many connections from this address; retry in a second\n";

/// The socket of one connection, with the deadline of its [`Phase`] on reads: when it passes
/// with nothing (or not enough) received, a `408` is written if nothing else is waiting to be,
/// and the read fails, which ends the connection.
struct Timed {
    io: TcpStream,
    clock: Clock,
    sleep: Pin<Box<Sleep>>,
    /// hyper could not write all it had the last time: its bytes come before anything of ours.
    backlog: bool,
}

impl Timed {
    fn new(io: TcpStream, clock: Clock) -> Self {
        Self {
            io,
            clock,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            backlog: false,
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_read();
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let (deadline, answer) = match this.clock.get(cx) {
            Phase::Busy => return Poll::Pending,
            Phase::Head(d) => (d, !this.backlog),
            Phase::Idle(d) => (d, false),
        };
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        if this.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if answer {
            // A fresh socket's send buffer holds this whole; if it does not, the client is not
            // reading and closing is all that is left.
            let _ = Pin::new(&mut this.io).poll_write(cx, TIMED_OUT);
        }
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.backlog = !matches!(r, Poll::Ready(Ok(n)) if n == buf.len());
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.backlog = !matches!(r, Poll::Ready(Ok(n)) if n == len);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A response body that tells the connection's [`Clock`] when it is done with (written out, or
/// abandoned): the connection is then idle until the next request.
struct Tracked {
    inner: axum::body::Body,
    clock: Clock,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.clock.response_ended();
    }
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The router as a hyper service for one connection, with its client address attached.
#[derive(Clone)]
struct WithAddr {
    router: Router,
    addr: SocketAddr,
    trust_proxy: bool,
    clock: Clock,
}

/// The client address a trusted proxy forwarded: the last `X-Forwarded-For` entry.
fn forwarded(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithAddr {
    type Response = hyper::Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.clock.request_started();
        let addr = match self.trust_proxy.then(|| forwarded(req.headers())).flatten() {
            Some(ip) => SocketAddr::new(ip, 0),
            None => self.addr,
        };
        req.extensions_mut().insert(ConnectInfo(addr));
        let mut router = self.router.clone();
        let routed = tower_service::Service::call(&mut router, req);
        let clock = self.clock.clone();
        Box::pin(async move {
            let resp = routed.await?;
            Ok(resp.map(|inner| Tracked { inner, clock }))
        })
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

/// Refusals being written at once; past this a connection over its address's bound is closed
/// without an answer, so a flood of them cannot hold descriptors either.
const REFUSALS_AT_ONCE: usize = 64;

/// Answers a connection over its address's bound with [`TOO_MANY`] and closes it. The request
/// it may already have sent is read and thrown away for a moment first: closing a socket with
/// unread bytes resets it, and the reset can destroy the answer before the client reads it.
async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(TOO_MANY).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
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
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
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
        let _ = stream.set_nodelay(true);
        let Some(slot) = PerAddress::take(&table, addr.ip(), edge.max_connections_per_address)
        else {
            tracing::debug!("too many connections from one address; answering 503");
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tasks.spawn(async move {
                    let _permit = permit;
                    refuse(stream).await;
                });
            }
            continue;
        };
        let clock = Clock::new(edge);
        let svc = WithAddr {
            router: router.clone(),
            addr,
            trust_proxy: edge.trust_proxy,
            clock: clock.clone(),
        };
        let closing = closing.clone();
        tasks.spawn(async move {
            let _slot = slot;
            // The edge keeps the header and idle deadlines itself (`Timed`): hyper's own header
            // timeout would also run while the connection is idle, and it needs a timer.
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(Timed::new(stream, clock)), svc);
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
