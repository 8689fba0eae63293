//! The loopback listener that receives the browser's redirect (SPEC section 4, RFC 8252).
//!
//! 127.0.0.1 only; port 24816, then 24818, then (when the server allows any loopback port) an
//! ephemeral one. Every connection is handled on its own task with a read timeout and a header
//! cap, so a client that sends nothing or too much cannot stall the wait. `state` is checked
//! before anything else; a wrong or missing `state`, an `error=` answer, or an unrelated path is
//! answered with a page and the wait goes on for the real callback. A second `mogplex login`
//! finding the port busy asks this one to stand down, and it does.

use crate::html;
use crate::secret::Secret;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub const FIXED_PORTS: [u16; 2] = [24816, 24818];
pub const CALLBACK_PATH: &str = "/auth/callback";
const STAND_DOWN_PATH: &str = "/auth/stand-down";
const STAND_DOWN_OK: &str = "mogplex: standing down";
/// Requests whose head is larger than this are refused.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct CallbackServer {
    listener: TcpListener,
    pub redirect_uri: String,
}

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
    /// (when allowed) an ephemeral port.
    pub async fn bind(allow_ephemeral: bool) -> Result<Self, LoopbackError> {
        for port in FIXED_PORTS {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => return Ok(Self::on(l, port)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    if ask_to_stand_down(port).await {
                        for _ in 0..40 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
                                return Ok(Self::on(l, port));
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
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        }
    }

    /// Waits for the callback carrying `state`, or a pasted address that does, for at most
    /// `timeout`. Pasted lines arrive on `pasted`; notices go to `notify`.
    pub async fn wait(
        self,
        state: &str,
        issuer: Option<&str>,
        timeout: Duration,
        mut pasted: Option<mpsc::Receiver<String>>,
        mut notify: impl FnMut(Notice),
    ) -> Result<Callback, LoopbackError> {
        let (tx, mut rx) = mpsc::channel::<Event>(16);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err(LoopbackError::TimedOut(timeout.as_secs() / 60)),
                accepted = self.listener.accept() => {
                    if let Ok((sock, _)) = accepted {
                        let (tx, state, issuer) = (tx.clone(), state.to_owned(), issuer.map(str::to_owned));
                        tokio::spawn(async move { handle(sock, &state, issuer.as_deref(), tx).await });
                    }
                }
                Some(ev) = rx.recv() => match ev {
                    Event::Code(code) => return Ok(Callback { code }),
                    Event::StandDown => return Err(LoopbackError::StoodDown),
                    Event::Notice(n) => notify(n),
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

enum Event {
    Code(Secret),
    StandDown,
    Notice(Notice),
}

/// How a request (or a pasted address) is answered.
enum Verdict {
    Code(Secret),
    StandDown,
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
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks a request target (`/auth/callback?…`) in the order SPEC section 4 requires: `state`
/// before anything else.
fn check_target(target: &str, state: &str, issuer: Option<&str>) -> Verdict {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == STAND_DOWN_PATH {
        return Verdict::StandDown;
    }
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
    match check_target(&target, state, issuer) {
        Verdict::StandDown => Verdict::Answer {
            status: 0,
            page: String::new(),
            notice: None,
        },
        v => v,
    }
}

async fn respond(sock: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\n\
         referrer-policy: no-referrer\r\nx-frame-options: DENY\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

async fn handle(mut sock: TcpStream, state: &str, issuer: Option<&str>, tx: mpsc::Sender<Event>) {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        let mut chunk = [0u8; 1024];
        let n = match tokio::time::timeout(READ_TIMEOUT, sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return, // silence, or the peer went away
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            respond(
                &mut sock,
                431,
                "Request Header Fields Too Large",
                &page("Request too large", "This request is too large."),
            )
            .await;
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        respond(
            &mut sock,
            405,
            "Method Not Allowed",
            &page(
                "Not allowed",
                "Only the browser's sign-in redirect is accepted here.",
            ),
        )
        .await;
        return;
    }
    match check_target(target, state, issuer) {
        Verdict::Code(code) => {
            respond(
                &mut sock,
                200,
                "OK",
                &page(
                    "Signed in to Mogplex",
                    "You can close this window and return to your terminal.",
                ),
            )
            .await;
            let _ = tx.send(Event::Code(code)).await;
        }
        Verdict::StandDown => {
            let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{STAND_DOWN_OK}", STAND_DOWN_OK.len()).as_bytes()).await;
            let _ = tx.send(Event::StandDown).await;
        }
        Verdict::Answer {
            status,
            page,
            notice,
        } => {
            let reason = if status == 404 {
                "Not Found"
            } else {
                "Bad Request"
            };
            respond(&mut sock, status, reason, &page).await;
            if let Some(n) = notice {
                let _ = tx.send(Event::Notice(n)).await;
            }
        }
    }
}

/// Asks whoever holds `port` to stand down; true when a waiting `mogplex login` agreed.
async fn ask_to_stand_down(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(
            format!("GET {STAND_DOWN_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        Some(String::from_utf8_lossy(&out).contains(STAND_DOWN_OK))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
