//! Error bodies: the OpenAI-shaped `{"error":{…}}` of the inference endpoints and the
//! `{"ok":false,"error":{…}}` envelope of `/api/v1/…`.

use serde::{Deserialize, Serialize};

/// `{"error":{"message":…}}`, as the inference endpoints (and OpenAI-compatible providers) send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Providers send a string or a number here; both are kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<serde_json::Value>,
}

impl ApiErrorBody {
    /// `{"error":{"message", "type", "code"}}`.
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> Self {
        Self {
            error: ApiError {
                message: message.into(),
                kind: Some(kind.to_owned()),
                code: code.map(|c| serde_json::Value::String(c.to_owned())),
            },
        }
    }
}

impl ApiError {
    /// The code as text, whether the sender used a string or a number.
    pub fn code_str(&self) -> Option<String> {
        match &self.code {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// `{"ok":false,"error":{"code","message"}}`, the envelope of `/api/v1/…` errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct V1ErrorBody {
    pub ok: bool,
    pub error: V1Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct V1Error {
    pub code: String,
    pub message: String,
}

impl V1ErrorBody {
    /// `{"ok":false,"error":{"code","message"}}`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: V1Error {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}
