//! The loopback listener that receives the browser's redirect (SPEC section 4, RFC 8252).
//!
//! 127.0.0.1 only; port 24816, then 24818, then (when the server allows any loopback port) an
//! ephemeral one. Requests are parsed by hyper's HTTP/1 server, one connection per task, each
//! with a header read timeout, a cap on the request head and an overall time limit, and no
//! keep-alive, so a client that sends nothing, half a request or too much cannot stall the wait.
//! `state` is checked before anything else; a wrong or missing `state`, an `error=` answer, or an
//! unrelated path is answered with a page and the wait goes on for the real callback. A second
//! `mogplex login` of the same user and home finding the port busy asks this one to stand down,
//! proving who it is with a secret from a 0600 file, and it does (see [`stand_down`]).

use crate::html;
use crate::secret::Secret;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// The fixed ports and the callback path are the protocol's (the server registers the same).
pub use mogplex_protocol::oauth::{CALLBACK_PATH, LOOPBACK_PORTS as FIXED_PORTS};
/// Requests whose head is larger than this are refused.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
// hyper refuses a read buffer under 8 KiB (it panics); this proves `max_buf_size` cannot.
const _: () = assert!(MAX_REQUEST_HEAD >= 8 * 1024);
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this, whatever the client does after its request head.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct CallbackServer {
    listener: TcpListener,
    pub redirect_uri: String,
    /// The stand-down secret of a fixed port, and the file that holds it (removed on drop).
    stand_down: Option<stand_down::Secret>,
    /// The title of the page the browser lands on when the sign-in arrived.
    signed_in: String,
}

/// The success page's title of the account sign-in.
pub const SIGNED_IN_TO_MOGPLEX: &str = "Signed in to Mogplex";

#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error("cannot listen on 127.0.0.1 for the browser's answer: ports {0:?} are taken")]
    PortsTaken(Vec<u16>),
    #[error("cannot listen on 127.0.0.1: {0}")]
    Io(#[from] std::io::Error),
    #[error("no sign-in arrived within {0} minutes")]
    TimedOut(u64),
    #[error("another `mogplex login` took over this sign-in")]
    StoodDown,
}

/// What the wait produced.
#[derive(Debug)]
pub struct Callback {
    pub code: Secret,
}

/// Something the user should hear about while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A request that was answered but did not end the wait.
    Rejected(String),
    /// The browser reported an error (`error=…`); the wait goes on.
    BrowserError(String),
}

impl CallbackServer {
    /// Binds a fixed port, asking a waiting `mogplex login` to stand down if it holds one, else
    /// (when allowed) an ephemeral port. `secrets` is the private directory (the home) where the
    /// stand-down secrets of the fixed ports are kept; `None`: this sign-in cannot be asked to
    /// stand down, and asks no other.
    pub async fn bind(
        allow_ephemeral: bool,
        secrets: Option<&Path>,
    ) -> Result<Self, LoopbackError> {
        for port in FIXED_PORTS {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => return Ok(Self::on(l, port).guarded(secrets)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    if let Some(dir) = secrets
                        && stand_down::ask(port, dir).await
                    {
                        for _ in 0..40 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
                                return Ok(Self::on(l, port).guarded(secrets));
                            }
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if allow_ephemeral {
            let l = TcpListener::bind(("127.0.0.1", 0)).await?;
            let port = l.local_addr()?.port();
            return Ok(Self::on(l, port));
        }
        Err(LoopbackError::PortsTaken(FIXED_PORTS.to_vec()))
    }

    fn on(listener: TcpListener, port: u16) -> Self {
        Self {
            listener,
            redirect_uri: mogplex_protocol::oauth::loopback_redirect_uri(port),
            stand_down: None,
            signed_in: SIGNED_IN_TO_MOGPLEX.to_owned(),
        }
    }

    /// Says on the success page what was signed in to (an MCP server's sign-in names it),
    /// instead of [`SIGNED_IN_TO_MOGPLEX`]. The page escapes it.
    pub fn success_title(mut self, title: &str) -> Self {
        title.clone_into(&mut self.signed_in);
        self
    }

    /// Writes this port's stand-down secret under `dir` (best effort: without it the sign-in
    /// works, it just cannot be asked to stand down).
    fn guarded(mut self, dir: Option<&Path>) -> Self {
        if let (Some(dir), Ok(addr)) = (dir, self.listener.local_addr()) {
            self.stand_down = stand_down::Secret::create(dir, addr.port());
        }
        self
    }

    /// Waits for the callback carrying `state`, or a pasted address that does, for at most
    /// `timeout`. Pasted lines arrive on `pasted`; notices go to `notify`. Connections still
    /// open when it returns are closed.
    pub async fn wait(
        self,
        state: &str,
        issuer: Option<&str>,
        timeout: Duration,
        mut pasted: Option<mpsc::Receiver<String>>,
        mut notify: impl FnMut(Notice),
    ) -> Result<Callback, LoopbackError> {
        let expected = Arc::new(Expected {
            state: state.to_owned(),
            issuer: issuer.map(str::to_owned),
            stand_down: self.stand_down.as_ref().map(|s| s.value.clone()),
            signed_in: self.signed_in.clone(),
        });
        let mut connections = JoinSet::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err(LoopbackError::TimedOut(timeout.as_secs() / 60)),
                accepted = self.listener.accept() => {
                    if let Ok((sock, _)) = accepted {
                        connections.spawn(serve(sock, expected.clone()));
                    }
                }
                Some(served) = connections.join_next(), if !connections.is_empty() => match served {
                    Ok(Some(Event::Code(code))) => return Ok(Callback { code }),
                    Ok(Some(Event::StandDown)) => return Err(LoopbackError::StoodDown),
                    Ok(Some(Event::Notice(n))) => notify(n),
                    // Nothing to report, or the connection's task ended early.
                    Ok(None) | Err(_) => {}
                },
                line = async { match pasted.as_mut() { Some(p) => p.recv().await, None => std::future::pending().await } } => {
                    match line {
                        Some(line) => match check_pasted(&line, state, issuer) {
                            Verdict::Code(code) => return Ok(Callback { code }),
                            Verdict::Answer { notice: Some(n), .. } => notify(n),
                            _ => {}
                        },
                        None => pasted = None,
                    }
                }
            }
        }
    }
}

/// What the sign-in waits for.
struct Expected {
    state: String,
    issuer: Option<String>,
    /// The secret a stand-down request must carry; `None`: none is honoured.
    stand_down: Option<crate::secret::Secret>,
    /// The success page's title.
    signed_in: String,
}

/// What a connection's request means for the wait, once its answer has been sent.
enum Event {
    Code(Secret),
    StandDown,
    Notice(Notice),
}

/// How a request (or a pasted address) is answered.
enum Verdict {
    Code(Secret),
    Answer {
        status: u16,
        page: String,
        notice: Option<Notice>,
    },
}

pub fn page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Mogplex</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style></head>\
         <body><h1 id=\"title\">{t}</h1><p id=\"message\">{m}</p></body></html>",
        t = html::escape(title),
        m = html::escape(message)
    )
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Checks a request target (`/auth/callback?…`) in the order SPEC section 4 requires: `state`
/// before anything else.
fn check_target(target: &str, state: &str, issuer: Option<&str>) -> Verdict {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Verdict::Answer {
            status: 404,
            page: page(
                "Not found",
                "This address is only for the Mogplex CLI's sign-in.",
            ),
            notice: None,
        };
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(seen, _)| *seen == k) {
            let msg = format!("the sign-in answer repeats the parameter {k}");
            return Verdict::Answer {
                status: 400,
                page: page("Sign-in answer not accepted", &msg),
                notice: Some(Notice::Rejected(msg)),
            };
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("state") {
        Some(s) if ct_eq(s, state) => {}
        _ => {
            let msg = "a sign-in answer arrived that does not belong to the sign-in in this terminal (state mismatch); ignored it".to_owned();
            return Verdict::Answer {
                status: 400,
                page: page(
                    "Sign-in answer not accepted",
                    "This answer does not match the sign-in waiting in your terminal. Start the sign-in again from the terminal.",
                ),
                notice: Some(Notice::Rejected(msg)),
            };
        }
    }
    if let (Some(expected), Some(got)) = (issuer, get("iss"))
        && got.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        let msg = format!("the sign-in answer came from {got}, not {expected}; ignored it");
        return Verdict::Answer {
            status: 400,
            page: page("Sign-in answer not accepted", &msg),
            notice: Some(Notice::Rejected(msg)),
        };
    }
    if let Some(err) = get("error") {
        let detail = get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let msg = format!("{err}{detail}");
        return Verdict::Answer {
            status: 400,
            page: page(
                "Sign-in not completed",
                &format!(
                    "The sign-in was not completed ({msg}). You can try again in the browser, or return to the terminal."
                ),
            ),
            notice: Some(Notice::BrowserError(msg)),
        };
    }
    match get("code").filter(|c| !c.is_empty()) {
        Some(code) => Verdict::Code(Secret::new(code)),
        None => {
            let msg = "the sign-in answer has no code".to_owned();
            Verdict::Answer {
                status: 400,
                page: page("Sign-in answer not accepted", &msg),
                notice: Some(Notice::Rejected(msg)),
            }
        }
    }
}

/// A pasted address: the one the browser ended on, from another machine.
fn check_pasted(line: &str, state: &str, issuer: Option<&str>) -> Verdict {
    let line = line.trim();
    if line.is_empty() {
        return Verdict::Answer {
            status: 0,
            page: String::new(),
            notice: None,
        };
    }
    let target = match url::Url::parse(line) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) if line.starts_with('/') => line.to_owned(),
        Err(_) => {
            let msg = "that is not an address; paste the whole address your browser shows after signing in (it contains /auth/callback?code=…)".to_owned();
            return Verdict::Answer {
                status: 0,
                page: String::new(),
                notice: Some(Notice::Rejected(msg)),
            };
        }
    };
    // Any other path (the stand-down one too) is answered without a notice: ignored.
    check_target(&target, state, issuer)
}

/// Serves one connection (a single request: no keep-alive) and, once the answer is sent and the
/// connection closed, says what it meant for the wait.
async fn serve(sock: TcpStream, expected: Arc<Expected>) -> Option<Event> {
    let outcome: Arc<Mutex<Option<Event>>> = Arc::default();
    let service = {
        let outcome = outcome.clone();
        service_fn(move |req: Request<hyper::body::Incoming>| {
            let (response, event) = answer(&req, &expected);
            if event.is_some() {
                *outcome.lock().unwrap_or_else(PoisonError::into_inner) = event;
            }
            std::future::ready(Ok::<_, Infallible>(response))
        })
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(false);
    let connection = http.serve_connection(TokioIo::new(sock), service);
    // A refused head (too large: 431, malformed: 400) is answered by hyper itself; a timeout or
    // a client gone away just ends the connection.
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
    outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// The answer to one request, and what it means for the wait.
fn answer<B>(req: &Request<B>, expected: &Expected) -> (Response<String>, Option<Event>) {
    if let Some((response, honoured)) = stand_down::answer(req, expected.stand_down.as_ref()) {
        return (response, honoured.then_some(Event::StandDown));
    }
    if req.method() != Method::GET {
        let page = page(
            "Not allowed",
            "Only the browser's sign-in redirect is accepted here.",
        );
        return (html_response(StatusCode::METHOD_NOT_ALLOWED, page), None);
    }
    let target = req.uri().path_and_query().map_or("/", |t| t.as_str());
    match check_target(target, &expected.state, expected.issuer.as_deref()) {
        Verdict::Code(code) => {
            let page = page(
                &expected.signed_in,
                "You can close this window and return to your terminal.",
            );
            (html_response(StatusCode::OK, page), Some(Event::Code(code)))
        }
        Verdict::Answer {
            status,
            page,
            notice,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (html_response(status, page), notice.map(Event::Notice))
        }
    }
}

fn html_response(status: StatusCode, page: String) -> Response<String> {
    let mut response = Response::new(page);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONNECTION, "close"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The stand-down handshake: a newer `mogplex login` that finds a fixed port busy asks the
/// waiting one to free it. Only the same user's `mogplex` of the same home may: the waiting
/// listener writes a random secret to a 0600 file in the home (`login-<port>.stand-down`), and
/// honours only a `POST` that carries it in the `x-mogplex-stand-down` header. A plain GET (what
/// an `<img>` tag sends), a form post from a web page (which cannot set the header without a
/// preflight nobody answers), a wrong or missing secret: each is answered `403` and ignored, and
/// the sign-in goes on. Both sides live here and nowhere else.
mod stand_down {
    use super::{Path, PathBuf};
    use hyper::header::{self, HeaderValue};
    use hyper::{Method, Request, Response, StatusCode};
    use std::time::Duration;
    use subtle::ConstantTimeEq;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const PATH: &str = "/auth/stand-down";
    const HEADER: &str = "x-mogplex-stand-down";
    const OK: &str = "mogplex: standing down";
    /// A secret file larger than this is not ours.
    const MAX_SECRET: u64 = 256;

    fn file(dir: &Path, port: u16) -> PathBuf {
        dir.join(format!("login-{port}.stand-down"))
    }

    /// The secret of a listener on a fixed port, in its file; the file goes with it.
    #[derive(Debug)]
    pub(super) struct Secret {
        pub(super) value: crate::secret::Secret,
        path: PathBuf,
    }

    impl Secret {
        pub(super) fn create(dir: &Path, port: u16) -> Option<Self> {
            let value = crate::oauth::random_b64(32).ok()?;
            crate::home::ensure_private_dir(dir).ok()?;
            let path = file(dir, port);
            crate::private_file::write(&path, value.as_bytes()).ok()?;
            Some(Self {
                value: crate::secret::Secret::new(value),
                path,
            })
        }
    }

    impl Drop for Secret {
        fn drop(&mut self) {
            // Only our own: a newer login may have written its secret there since.
            if let Ok(Some(bytes)) = crate::private_file::read(&self.path, MAX_SECRET)
                && bytes == self.value.expose().as_bytes()
            {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    /// For a request to the stand-down path: the answer, and whether to stand down. `None` for
    /// any other request.
    pub(super) fn answer<B>(
        req: &Request<B>,
        secret: Option<&crate::secret::Secret>,
    ) -> Option<(Response<String>, bool)> {
        if req.uri().path() != PATH {
            return None;
        }
        let given = req.headers().get(HEADER).map(HeaderValue::as_bytes);
        let honoured = req.method() == Method::POST
            && matches!((secret, given), (Some(s), Some(g)) if bool::from(s.expose().as_bytes().ct_eq(g)));
        let mut response = if honoured {
            Response::new(OK.to_owned())
        } else {
            let mut r = Response::new(super::page(
                "Not allowed",
                "Only mogplex itself can stop this sign-in.",
            ));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        };
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Some((response, honoured))
    }

    /// Asks whoever holds `port` to stand down, with the secret its listener left under `dir`;
    /// true when a waiting `mogplex login` agreed. Without a secret file (another home, another
    /// user, no login waiting) nothing is sent.
    pub(super) async fn ask(port: u16, dir: &Path) -> bool {
        let Ok(Some(secret)) = crate::private_file::read(&file(dir, port), MAX_SECRET) else {
            return false;
        };
        let Ok(secret) = String::from_utf8(secret) else {
            return false;
        };
        let secret = crate::secret::Secret::new(secret);
        let attempt = async {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            let request = crate::secret::Secret::new(format!(
                "POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{HEADER}: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                secret.expose()
            ));
            s.write_all(request.expose().as_bytes()).await.ok()?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.ok()?;
            Some(String::from_utf8_lossy(&out).contains(OK))
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// The stand-down request, for tests: `secret` as given.
    #[cfg(test)]
    pub(super) fn request(method: &str, secret: Option<&str>) -> Vec<u8> {
        let header = secret
            .map(|s| format!("{HEADER}: {s}\r\n"))
            .unwrap_or_default();
        format!("{method} {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n{header}content-length: 0\r\n\r\n")
            .into_bytes()
    }

    #[cfg(test)]
    pub(super) fn secret_file(dir: &Path, port: u16) -> PathBuf {
        file(dir, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn code(v: Verdict) -> Option<String> {
        match v {
            Verdict::Code(c) => Some(c.expose().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn state_first() {
        assert_eq!(
            code(check_target("/auth/callback?code=c1&state=s", "s", None)),
            Some("c1".into())
        );
        assert!(code(check_target("/auth/callback?code=c1&state=x", "s", None)).is_none());
        assert!(code(check_target("/auth/callback?code=c1", "s", None)).is_none());
        assert!(
            code(check_target(
                "/auth/callback?code=c1&state=s&state=s",
                "s",
                None
            ))
            .is_none()
        );
        assert!(
            code(check_target(
                "/auth/callback?error=access_denied&state=s",
                "s",
                None
            ))
            .is_none()
        );
        assert!(code(check_target("/favicon.ico", "s", None)).is_none());
        assert!(
            code(check_target(
                "/auth/callback?code=c1&state=s&iss=http://evil",
                "s",
                Some("http://good")
            ))
            .is_none()
        );
        assert_eq!(
            code(check_target(
                "/auth/callback?code=c1&state=s&iss=http://good",
                "s",
                Some("http://good")
            )),
            Some("c1".into())
        );
    }

    #[test]
    fn pasted_addresses() {
        assert_eq!(
            code(check_pasted(
                "  http://127.0.0.1:24816/auth/callback?code=c2&state=s \n",
                "s",
                None
            )),
            Some("c2".into())
        );
        assert!(code(check_pasted("hello", "s", None)).is_none());
        assert!(
            code(check_pasted(
                "http://127.0.0.1:24816/auth/stand-down",
                "s",
                None
            ))
            .is_none()
        );
    }

    #[test]
    fn pages_escape() {
        assert!(page("<x>", "a\"b\u{1b}c").contains("&lt;x&gt;"));
        assert!(!page("t", "\u{1b}[31m").contains('\u{1b}'));
    }

    /// A listener on an ephemeral port waiting for state `s`, its stand-down secret under `dir`;
    /// its notices arrive on the receiver.
    fn listening_in(
        dir: &Path,
    ) -> (
        u16,
        tokio::task::JoinHandle<Result<Callback, LoopbackError>>,
        mpsc::UnboundedReceiver<Notice>,
    ) {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let server = CallbackServer::on(TcpListener::from_std(l).unwrap(), port).guarded(Some(dir));
        let (tx, rx) = mpsc::unbounded_channel();
        let wait = server.wait("s", None, Duration::from_secs(600), None, move |n| {
            let _ = tx.send(n);
        });
        (port, tokio::spawn(wait), rx)
    }

    /// Sends `bytes` and reads the whole answer (the listener closes every connection).
    async fn request(port: u16, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = s.write_all(bytes).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").into_bytes()
    }

    async fn next_notice(rx: &mut mpsc::UnboundedReceiver<Notice>) -> Notice {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a notice")
            .expect("the wait is still going")
    }

    #[tokio::test]
    async fn silent_and_half_requests_are_cut_off_and_the_callback_still_arrives() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let home = tempfile::tempdir().unwrap();
        let (port, wait, _notices) = listening_in(home.path());
        let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut half = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        half.write_all(b"GET /auth/callback?code=c0&state=s HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        // Both are closed by the header read timeout, without an answer, while the wait goes on.
        for sock in [&mut silent, &mut half] {
            let mut buf = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(60), sock.read_to_end(&mut buf));
            assert!(closed.await.is_ok(), "the listener closed the connection");
            assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
        }
        assert!(!wait.is_finished());
        let answer = request(port, &get("/auth/callback?code=c1&state=s")).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let head = answer.to_ascii_lowercase();
        for h in [
            "content-type: text/html; charset=utf-8",
            "cache-control: no-store",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
            "connection: close",
        ] {
            assert!(head.contains(h), "{h} in {answer}");
        }
        assert!(answer.contains("Signed in to Mogplex"), "{answer}");
        let callback = wait.await.unwrap().unwrap();
        assert_eq!(callback.code.expose(), "c1");
    }

    #[tokio::test]
    async fn refused_requests_are_answered_and_the_wait_goes_on_until_told_to_stand_down() {
        let home = tempfile::tempdir().unwrap();
        let (port, wait, mut notices) = listening_in(home.path());
        let post = request(
            port,
            b"POST /auth/callback?code=c&state=s HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        // A head that reaches the cap without ending (exactly the cap, so the listener reads all
        // of it and closes cleanly after answering).
        let mut huge = b"GET /auth/callback?code=c&state=s HTTP/1.1\r\nx-pad: ".to_vec();
        huge.resize(MAX_REQUEST_HEAD, b'a');
        let huge = request(port, &huge).await;
        assert!(
            huge.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{huge}"
        );
        let favicon = request(port, &get("/favicon.ico")).await;
        assert!(
            favicon.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{favicon}"
        );
        let garbage = request(port, b"\x16\x03\x01 not http\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");

        let wrong = request(port, &get("/auth/callback?code=stolen&state=x")).await;
        assert!(wrong.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{wrong}");
        assert!(
            matches!(next_notice(&mut notices).await, Notice::Rejected(m) if m.contains("state mismatch"))
        );
        let denied = request(
            port,
            &get("/auth/callback?error=access_denied&error_description=%3Cscript%3E&state=s"),
        )
        .await;
        assert!(
            denied.contains("&lt;script&gt;") && !denied.contains("<script>"),
            "{denied}"
        );
        assert_eq!(
            next_notice(&mut notices).await,
            Notice::BrowserError("access_denied: <script>".into())
        );
        assert!(!wait.is_finished());

        // Stand-down requests without the secret: a page's GET, a form post, a wrong secret, the
        // right secret in a GET. Each is refused and the wait goes on.
        let file = stand_down::secret_file(home.path(), port);
        let secret = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for req in [
            get("/auth/stand-down"),
            stand_down::request("POST", None),
            stand_down::request("POST", Some("not-the-secret")),
            stand_down::request("GET", Some(&secret)),
            stand_down::request("PUT", Some(&secret)),
        ] {
            let answer = request(port, &req).await;
            assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
        }
        // Another home has no secret for this port: nothing is even sent.
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(!stand_down::ask(port, elsewhere.path()).await);
        assert!(!wait.is_finished());

        assert!(
            stand_down::ask(port, home.path()).await,
            "the waiting listener agreed"
        );
        assert!(matches!(wait.await.unwrap(), Err(LoopbackError::StoodDown)));
        assert!(!file.exists(), "the secret goes with the listener");
    }
}
