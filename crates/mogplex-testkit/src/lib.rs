//! A fake upstream model server for tests.
//!
//! Real HTTP on a 127.0.0.1 port-0 listener, on its own thread and runtime so that synchronous
//! tests (which run the `mogplex` binary) and async tests can both use it. Each route answers with
//! a scripted [`Reply`]; every request is recorded (method, path, query, headers, body) so tests
//! can check exactly what an adapter sent. The real model services are on the internet, so this is
//! the one fake the test suite allows itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod peers;
pub mod term;
pub mod webdriver;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Reply {
    /// `text/event-stream`, each frame sent as its own chunk with a pause in between.
    Sse {
        frames: Vec<String>,
        pause: Duration,
    },
    /// Any status with a body and extra headers.
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// `text/event-stream` that sends these frames and then breaks the connection (no end).
    SseThenCut {
        frames: Vec<String>,
        pause: Duration,
    },
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply::Status {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Reply::Status {
                status,
                body,
                mut headers,
            } => {
                headers.push((name.into(), value.into()));
                Reply::Status {
                    status,
                    body,
                    headers,
                }
            }
            other => other,
        }
    }
}

/// An OpenAI-style stream: a role frame, one frame per piece, a finish frame, a usage frame,
/// then `[DONE]`.
pub fn openai_stream(pieces: &[&str]) -> Reply {
    let mut frames = vec![openai_frame(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    )];
    frames.extend(
        pieces
            .iter()
            .map(|p| openai_frame(serde_json::json!({"content": p}), None)),
    );
    frames.push(openai_frame(serde_json::json!({}), Some("stop")));
    frames.push(format!(
        "data: {}\n\n",
        serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],
            "usage":{"prompt_tokens":5,"completion_tokens":pieces.len(),"total_tokens":5+pieces.len()}})
    ));
    frames.push("data: [DONE]\n\n".into());
    Reply::Sse {
        frames,
        pause: Duration::from_millis(5),
    }
}

/// An OpenAI-style stream that sends `pieces`, then an in-stream error frame, then ends.
pub fn openai_stream_error(pieces: &[&str], message: &str) -> Reply {
    let mut frames: Vec<String> = pieces
        .iter()
        .map(|p| openai_frame(serde_json::json!({"content": p}), None))
        .collect();
    frames.push(format!(
        "data: {}\n\n",
        serde_json::json!({"error": {"message": message, "type": "server_error"}})
    ));
    Reply::Sse {
        frames,
        pause: Duration::from_millis(5),
    }
}

pub fn openai_frame(delta: serde_json::Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",
            "system_fingerprint":"fp","choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}]})
    )
}

/// An Anthropic Messages stream with the event sequence the real API sends.
pub fn anthropic_stream(pieces: &[&str]) -> Reply {
    let ev = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut frames = vec![
        ev(
            "message_start",
            serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":7,"output_tokens":1}}}),
        ),
        ev(
            "content_block_start",
            serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        ev("ping", serde_json::json!({"type":"ping"})),
    ];
    frames.extend(pieces.iter().map(|p| {
        ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}}))
    }));
    frames.push(ev(
        "content_block_stop",
        serde_json::json!({"type":"content_block_stop","index":0}),
    ));
    frames.push(ev("message_delta", serde_json::json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":pieces.len()}})));
    frames.push(ev(
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    ));
    Reply::Sse {
        frames,
        pause: Duration::from_millis(5),
    }
}

/// An OpenAI-style stream that calls one tool: the id and name first, then the arguments in
/// `arg_pieces`, then `finish_reason: "tool_calls"` and `[DONE]`.
pub fn openai_tool_call_stream(id: &str, name: &str, arg_pieces: &[&str]) -> Reply {
    let mut frames = vec![openai_frame(
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
        None,
    )];
    frames.extend(arg_pieces.iter().map(|p| {
        openai_frame(
            serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
            None,
        )
    }));
    frames.push(openai_frame(serde_json::json!({}), Some("tool_calls")));
    frames.push("data: [DONE]\n\n".into());
    Reply::Sse {
        frames,
        pause: Duration::from_millis(5),
    }
}

/// An Anthropic stream that says `text`, then calls one tool (`tool_use` block with its input
/// streamed as `input_json_delta` pieces), ending with `stop_reason: "tool_use"`.
pub fn anthropic_tool_use_stream(text: &str, id: &str, name: &str, json_pieces: &[&str]) -> Reply {
    let ev = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut frames = vec![
        ev(
            "message_start",
            serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":7,"output_tokens":1}}}),
        ),
        ev(
            "content_block_start",
            serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        ev(
            "content_block_delta",
            serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}),
        ),
        ev(
            "content_block_stop",
            serde_json::json!({"type":"content_block_stop","index":0}),
        ),
        ev(
            "content_block_start",
            serde_json::json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
        ),
    ];
    frames.extend(json_pieces.iter().map(|p| {
        ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":p}}))
    }));
    frames.push(ev(
        "content_block_stop",
        serde_json::json!({"type":"content_block_stop","index":1}),
    ));
    frames.push(ev("message_delta", serde_json::json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}})));
    frames.push(ev(
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    ));
    Reply::Sse {
        frames,
        pause: Duration::from_millis(5),
    }
}

/// An Anthropic stream that fails part way with an `error` event.
pub fn anthropic_stream_error(pieces: &[&str], message: &str) -> Reply {
    let Reply::Sse { mut frames, pause } = anthropic_stream(pieces) else {
        unreachable!()
    };
    frames.truncate(3 + pieces.len());
    frames.push(format!(
        "event: error\ndata: {}\n\n",
        serde_json::json!({"type":"error","error":{"type":"overloaded_error","message":message}})
    ));
    Reply::Sse { frames, pause }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Reply>,
    recorded: Vec<Recorded>,
}

/// The server; stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// Starts with no routes; unknown paths answer 404 with an OpenAI-shaped error.
    pub fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        self.shared
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), reply);
        self
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().recorded.clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut s = shared.lock().unwrap();
        s.recorded.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        s.routes.get(uri.path()).cloned()
    };
    match reply {
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"error":{"message":"no such route on the fake server"}}"#,
            ))
            .unwrap(),
        Some(Reply::Status {
            status,
            body,
            headers,
        }) => {
            let mut resp = Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(
                    HeaderName::try_from(k).unwrap(),
                    HeaderValue::try_from(v).unwrap(),
                );
            }
            resp.body(Body::from(body)).unwrap()
        }
        Some(Reply::SseThenCut { frames, pause }) => {
            let items: Vec<Result<Bytes, std::io::Error>> = frames
                .into_iter()
                .map(|f| Ok(Bytes::from(f)))
                .chain(std::iter::once(Err(std::io::Error::other(
                    "cut by the fake server",
                ))))
                .collect();
            let stream =
                futures_util::stream::unfold(items.into_iter(), move |mut it| async move {
                    let item = it.next()?;
                    tokio::time::sleep(pause).await;
                    Some((item, it))
                });
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Some(Reply::Sse { frames, pause }) => {
            let stream =
                futures_util::stream::unfold(frames.into_iter(), move |mut it| async move {
                    let frame = it.next()?;
                    tokio::time::sleep(pause).await;
                    Some((Ok::<_, std::convert::Infallible>(Bytes::from(frame)), it))
                });
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}
