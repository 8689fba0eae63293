//! The protocol pieces of the MCP authorization specification (revision 2025-11-25) on the
//! client side: the `WWW-Authenticate` challenge of a 401 or 403 ([`Challenge`]), the server's
//! canonical URL as the RFC 8707 resource ([`canonical_resource`]), its RFC 9728 protected
//! resource metadata, fetched and checked against that URL ([`protected_resource`]), and RFC 7591
//! dynamic registration of mogplex as a public native client ([`register`]).

use super::discovery::{check_endpoint, misconfigured};
use super::{Metadata, OAuthError, unreachable_err};
use mogplex_protocol::OAuthErrorBody;
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, DEVICE_CODE_GRANT as DEVICE_GRANT, REFRESH_TOKEN_GRANT, auth_method,
};
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

/// The parameters of a `Bearer` challenge that matter to an MCP client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    /// `invalid_token`, `insufficient_scope`, …
    pub error: Option<String>,
    /// The scope to ask for (for `insufficient_scope`: everything the request needs).
    pub scope: Option<String>,
    /// Where the RFC 9728 document is.
    pub resource_metadata: Option<String>,
}

impl Challenge {
    pub fn insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some(mogplex_protocol::oauth::bearer_error::INSUFFICIENT_SCOPE)
    }
}

/// Reads the first `Bearer` challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1: several
/// challenges, each a scheme and comma-separated `name=value` or `name="quoted"` parameters).
/// `None` when there is no Bearer challenge.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut in_bearer = false;
    let mut found = false;
    let mut c = Challenge::default();
    let is_tchar = |ch: u8| ch.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&ch);
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if start == i {
            // Not a token: skip the character (a stray quote, say).
            i += 1;
            continue;
        }
        let token = &header[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !(j + 1 < b.len() && b[j + 1] == b'=') {
            // A parameter.
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' {
                    i += 1;
                }
                header[s..i].to_owned()
            };
            if in_bearer {
                match token.to_ascii_lowercase().as_str() {
                    "error" => c.error = Some(value),
                    "scope" => c.scope = Some(value),
                    "resource_metadata" => c.resource_metadata = Some(value),
                    _ => {}
                }
            }
        } else {
            // A new challenge's scheme (a token68 after a scheme is skipped as a token too).
            if found && in_bearer {
                break;
            }
            in_bearer = token.eq_ignore_ascii_case("bearer");
            found |= in_bearer;
            i = j;
        }
    }
    found.then_some(c)
}

/// The canonical URL of an MCP server, as it is named as a resource (RFC 8707; MCP
/// authorization §"Canonical Server URI"): scheme and host lower-case, no fragment, and no
/// trailing slash on a bare origin. `None` for anything but an absolute http(s) URL.
pub fn canonical_resource(url: &str) -> Option<String> {
    let mut u = Url::parse(url.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return None;
    }
    u.set_fragment(None);
    let s = u.to_string();
    Some(if u.path() == "/" && u.query().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s
    })
}

/// Whether two resource identifiers name the same server (a trailing slash aside).
pub fn same_resource(a: &str, b: &str) -> bool {
    match (canonical_resource(a), canonical_resource(b)) {
        (Some(a), Some(b)) => a.trim_end_matches('/') == b.trim_end_matches('/'),
        _ => false,
    }
}

/// RFC 9728 protected resource metadata, as far as a client needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// Where to look for the metadata of `server` without a challenge naming it (RFC 9728 §3.1 and
/// MCP authorization): the well-known name inserted before the path, then at the root.
pub fn metadata_candidates(server: &Url) -> Vec<String> {
    let origin = server.origin().ascii_serialization();
    let path = server.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        out.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    out.push(format!("{origin}/.well-known/oauth-protected-resource"));
    out
}

/// Fetches and checks the protected resource metadata of the MCP server at `resource` (its
/// canonical URL): from the challenge's `resource_metadata` when it names one, else from the
/// well-known addresses. The document must name `resource` itself (RFC 9728 §3.3; a document
/// for another resource is never used) and at least one authorization server, each an https
/// (or loopback http) address.
pub async fn protected_resource(
    http: &reqwest::Client,
    resource: &str,
    challenge: Option<&Challenge>,
) -> Result<ResourceMetadata, OAuthError> {
    let server = Url::parse(resource).map_err(|e| OAuthError::Protocol(e.to_string()))?;
    let candidates = match challenge.and_then(|c| c.resource_metadata.clone()) {
        Some(url) => {
            check_endpoint(resource, "resource_metadata", &url)?;
            vec![url]
        }
        None => metadata_candidates(&server),
    };
    let mut tried = Vec::new();
    for url in candidates {
        let resp = http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable_err(&url, e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(OAuthError::Server {
                url,
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            tried.push(format!("{url} (HTTP {})", status.as_u16()));
            continue;
        }
        let body = resp.text().await.map_err(|e| unreachable_err(&url, e))?;
        let meta: ResourceMetadata = serde_json::from_str(&body).map_err(|e| {
            misconfigured(
                resource,
                format!("its protected resource metadata at {url} cannot be read: {e}"),
                "have its administrator publish an RFC 9728 document",
            )
        })?;
        if !same_resource(&meta.resource, resource) {
            return Err(misconfigured(
                resource,
                format!(
                    "its protected resource metadata at {url} is for {}, not for this server",
                    meta.resource
                ),
                "have its administrator publish metadata whose `resource` is the server's own URL; mogplex does not sign in for another resource",
            ));
        }
        if meta.authorization_servers.is_empty() {
            return Err(misconfigured(
                resource,
                format!("its protected resource metadata at {url} names no authorization server"),
                "have its administrator list the authorization server in `authorization_servers`",
            ));
        }
        for a in &meta.authorization_servers {
            check_endpoint(resource, "authorization_servers", a)?;
        }
        return Ok(meta);
    }
    Err(misconfigured(
        resource,
        format!(
            "it asks for sign-in but publishes no protected resource metadata (tried {})",
            tried.join(", ")
        ),
        "have its administrator publish RFC 9728 metadata, or name the resource_metadata in its WWW-Authenticate challenge",
    ))
}

/// The scope to ask for: what the challenge names, else what the metadata lists, else none.
pub fn scope_to_ask(challenge: Option<&Challenge>, meta: &ResourceMetadata) -> Option<String> {
    challenge
        .and_then(|c| c.scope.clone())
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            meta.scopes_supported
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.join(" "))
        })
}

/// The name mogplex registers under.
pub const CLIENT_NAME: &str = "mogplex";

/// What a registration answers (RFC 7591 §3.2.1).
#[derive(Debug, Deserialize)]
struct Registered {
    client_id: String,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
}

/// Registers mogplex with the authorization server `meta` describes (RFC 7591): a public native
/// client (`token_endpoint_auth_method` none) with the loopback `redirect_uri`, for the code and
/// refresh grants. Returns the client id and the redirect URIs registered.
pub async fn register(
    http: &reqwest::Client,
    meta: &Metadata,
    redirect_uri: &str,
    device: bool,
) -> Result<(String, Vec<String>), OAuthError> {
    let server = super::discovery::normalize(&meta.issuer).to_owned();
    let Some(url) = meta.registration_endpoint.clone() else {
        return Err(misconfigured(
            &server,
            "it offers no dynamic client registration, and the MCP server's definition names no client id",
            "add the client id its administrator registered for mogplex to the definition (`client_id` beside `url`)",
        ));
    };
    check_endpoint(&server, "registration_endpoint", &url)?;
    // The device grant only for a device sign-in: many servers (mogplex-server among them)
    // register no device client nobody vouched for, and the browser path must not pay for it.
    let mut grants = vec![AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT];
    if device {
        grants.push(DEVICE_GRANT);
    }
    let body = json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": grants,
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method::NONE,
    });
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable_err(&url, e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| unreachable_err(&url, e))?;
    if status.is_success() {
        let r: Registered = serde_json::from_str(&text)
            .map_err(|e| OAuthError::Protocol(format!("registration response: {e}")))?;
        if r.client_id.is_empty() {
            return Err(OAuthError::Protocol(
                "the registration response has an empty client_id".into(),
            ));
        }
        let uris = r
            .redirect_uris
            .unwrap_or_else(|| vec![redirect_uri.to_owned()]);
        return Ok((r.client_id, uris));
    }
    if status.is_server_error() {
        return Err(OAuthError::Server {
            url,
            status: status.as_u16(),
        });
    }
    let reason = match serde_json::from_str::<OAuthErrorBody>(&text) {
        Ok(e) if !e.error.is_empty() => match e.error_description {
            Some(d) if !d.is_empty() => format!("{} ({d})", e.error),
            _ => e.error,
        },
        _ => format!("HTTP {}", status.as_u16()),
    };
    Err(OAuthError::RegistrationRefused { server, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_quotes_escapes_and_other_schemes() {
        let c = parse_challenge(
            r#"Bearer resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp/demo", scope="mcp:demo""#,
        )
        .unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp/demo")
        );
        assert_eq!(c.scope.as_deref(), Some("mcp:demo"));
        assert!(!c.insufficient_scope());
        let c = parse_challenge(
            r#"Basic realm="x", Bearer error="insufficient_scope", scope="mcp:demo mcp:admin", resource_metadata="https://a/b""#,
        )
        .unwrap();
        assert!(c.insufficient_scope());
        assert_eq!(c.scope.as_deref(), Some("mcp:demo mcp:admin"));
        assert_eq!(c.resource_metadata.as_deref(), Some("https://a/b"));
        let c = parse_challenge(r#"bearer realm="a \"q\" b",error=invalid_token"#).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(parse_challenge("Bearer"), Some(Challenge::default()));
        // Parameters of another scheme are not the bearer's.
        let c = parse_challenge(r#"Bearer scope="a", Basic scope="b""#).unwrap();
        assert_eq!(c.scope.as_deref(), Some("a"));
        assert_eq!(parse_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_challenge(""), None);
        // Garbage is not a panic.
        for junk in [
            "\"",
            "=",
            "Bearer =\"",
            "Bearer scope=\"unterminated",
            "Bearer a==b",
        ] {
            let _ = parse_challenge(junk);
        }
    }

    #[test]
    fn resources_are_canonical() {
        assert_eq!(
            canonical_resource("HTTP://Example.COM/").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(
            canonical_resource("https://example.com/mcp#x").as_deref(),
            Some("https://example.com/mcp")
        );
        assert_eq!(
            canonical_resource("http://127.0.0.1:9/mcp/demo").as_deref(),
            Some("http://127.0.0.1:9/mcp/demo")
        );
        assert_eq!(canonical_resource("file:///x"), None);
        assert_eq!(canonical_resource("not a url"), None);
        assert!(same_resource(
            "https://a.example/mcp/",
            "https://A.example/mcp"
        ));
        assert!(!same_resource(
            "https://a.example/mcp",
            "https://a.example/other"
        ));
    }

    #[test]
    fn metadata_is_looked_for_under_the_path_then_at_the_root() {
        let u = Url::parse("https://a.example/mcp/demo").unwrap();
        assert_eq!(
            metadata_candidates(&u),
            [
                "https://a.example/.well-known/oauth-protected-resource/mcp/demo",
                "https://a.example/.well-known/oauth-protected-resource"
            ]
        );
        let u = Url::parse("https://a.example/").unwrap();
        assert_eq!(
            metadata_candidates(&u),
            ["https://a.example/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn the_scope_comes_from_the_challenge_else_the_metadata() {
        let meta = ResourceMetadata {
            resource: "https://a/mcp".into(),
            authorization_servers: vec!["https://a".into()],
            scopes_supported: Some(vec!["x".into(), "y".into()]),
        };
        let c = Challenge {
            scope: Some("x".into()),
            ..Challenge::default()
        };
        assert_eq!(scope_to_ask(Some(&c), &meta).as_deref(), Some("x"));
        assert_eq!(scope_to_ask(None, &meta).as_deref(), Some("x y"));
    }
}
