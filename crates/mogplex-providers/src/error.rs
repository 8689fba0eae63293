//! Everything that can go wrong talking to a model, classified so the CLI can map it to an exit
//! code and say what to do. Messages from upstream are kept as they came; the CLI redacts them
//! before they are shown or logged.

use mogplex_auth::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the credential was not accepted.
    Unauthorized,
    /// 403: the credential is valid but may not do this.
    Forbidden,
    /// The Mogplex gateway's answer for an account without access to the model.
    NoModelAccess,
    /// 429.
    RateLimited,
    /// 5xx, a connection that could not be made, or a timeout.
    Unavailable,
    /// 404: usually an unknown model.
    NotFound,
    /// Another 4xx.
    BadRequest,
    /// An error frame inside a stream that had started.
    InStream,
    /// The answer did not have the expected shape, or the stream ended early.
    Protocol,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", provider.display_name())]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub provider: Provider,
    pub status: Option<u16>,
    /// The provider's own message (unredacted), or a description of what failed.
    pub message: String,
    /// The `Retry-After` header of a 429, as sent.
    pub retry_after: Option<String>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, provider: Provider, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn from_reqwest(provider: Provider, e: &reqwest::Error) -> Self {
        let kind = if e.is_decode() || e.is_body() && !e.is_timeout() {
            ErrorKind::Protocol
        } else {
            ErrorKind::Unavailable
        };
        // reqwest's Display names the URL, never headers. The root cause says what happened.
        let mut root: &dyn std::error::Error = e;
        while let Some(s) = root.source() {
            root = s;
        }
        let message = if e.is_timeout() {
            "timed out waiting for an answer".to_owned()
        } else if e.is_connect() {
            format!("cannot connect: {root}")
        } else if std::ptr::addr_eq(root, e as &dyn std::error::Error) {
            e.to_string()
        } else {
            format!("{e}: {root}")
        };
        Self::new(kind, provider, message)
    }

    /// Classifies an error status and its body.
    pub(crate) fn from_status(
        provider: Provider,
        status: u16,
        body: &str,
        retry_after: Option<String>,
    ) -> Self {
        let (message, code) = error_message(body);
        let message = message.unwrap_or_else(|| {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error");
            format!("HTTP {status} {reason}")
        });
        let no_access = provider == Provider::Mogplex
            && (code.as_deref() == Some(mogplex_protocol::NO_MODEL_ACCESS_CODE)
                || (matches!(status, 400 | 403) && mentions_model_access(&message)));
        let kind = match status {
            _ if no_access => ErrorKind::NoModelAccess,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::BadRequest,
        };
        Self {
            kind,
            provider,
            status: Some(status),
            message,
            retry_after,
        }
    }
}

fn mentions_model_access(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model access") || m.contains("access to") && m.contains("model")
}

/// The message and code of an error body in any of the shapes providers use:
/// `{"error":{"message","code"}}` (OpenAI, Anthropic, the Mogplex gateway and `/api/v1`),
/// `{"error":"text"}`, `{"message":"text"}`, `{"detail":"text"}`, or plain text.
pub fn error_message(body: &str) -> (Option<String>, Option<String>) {
    let body = body.trim();
    if body.is_empty() {
        return (None, None);
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = v.get("error").unwrap_or(&v);
        let text = |k: &str| err.get(k).and_then(|m| m.as_str()).map(str::to_owned);
        let message = match err {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => text("message").or_else(|| text("detail")),
        };
        let code = text("code").or_else(|| text("type"));
        if message.is_some() {
            return (message, code);
        }
    }
    let mut text: String = body.chars().take(300).collect();
    if body.chars().count() > 300 {
        text.push('…');
    }
    (Some(text), None)
}
