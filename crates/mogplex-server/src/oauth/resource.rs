//! RFC 8707 resource indicators: the resources this server issues access tokens for (the demo
//! MCP server when it is on, and any the operator names), how a request's `resource` parameter
//! is checked, and the scopes that go with a resource.
//!
//! A grant made with a resource is bound to it: its access tokens carry that audience, every
//! refresh must name it again, and this server's own API and model gateway refuse them (they
//! accept account tokens only, which name no resource). So a token obtained for an MCP server
//! can never be used as an account token, nor for another resource.

use crate::Config;
use mogplex_protocol::oauth::{DEFAULT_SCOPE, MCP_SCOPES, SUPPORTED_SCOPES};
use mogplex_protocol::routes;

/// The longest `resource` accepted.
pub const MAX_RESOURCE_LEN: usize = 2000;

/// Scopes about the account's identity, which a client may ask for beside a resource's own.
const IDENTITY_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The demo MCP server's resource identifier: `P/mcp/demo`.
pub fn demo(issuer: &str) -> String {
    format!("{issuer}{}", routes::MCP_DEMO)
}

/// Every resource this server issues tokens for, as it writes them.
pub fn known(cfg: &Config) -> Vec<String> {
    let mut all: Vec<String> = Vec::with_capacity(cfg.resources.len() + 1);
    if cfg.demo_mcp {
        all.push(demo(&cfg.issuer));
    }
    all.extend(cfg.resources.iter().cloned());
    all
}

/// The canonical form of an absolute URI without a fragment (scheme and host lower-cased, the
/// path normalised as the URL parser does), or why it is not one.
fn canonical(uri: &str) -> Result<String, String> {
    if uri.contains('#') {
        return Err("resource must not contain a fragment (RFC 8707 §2)".into());
    }
    let u = url::Url::parse(uri)
        .map_err(|_| "resource must be an absolute URI (RFC 8707 §2)".to_owned())?;
    if u.cannot_be_a_base() || !u.has_host() {
        return Err("resource must be an absolute URI with a host (RFC 8707 §2)".into());
    }
    Ok(u.as_str().to_owned())
}

/// Checks a request's `resource` parameter: `Ok(None)` when absent, `Ok(Some(resource))` as this
/// server writes it when it is one this server issues tokens for, else `Err` with the
/// `invalid_target` description.
pub fn check(cfg: &Config, requested: Option<&str>) -> Result<Option<String>, String> {
    let Some(requested) = requested else {
        return Ok(None);
    };
    if requested.is_empty() {
        return Err("resource is empty: name the resource's absolute URI or leave it out".into());
    }
    if requested.len() > MAX_RESOURCE_LEN {
        return Err(format!("resource is over {MAX_RESOURCE_LEN} characters"));
    }
    let wanted = canonical(requested)?;
    known(cfg)
        .into_iter()
        .find(|k| canonical(k).is_ok_and(|c| c == wanted))
        .map(Some)
        .ok_or_else(|| format!("this server issues no tokens for the resource {wanted}"))
}

/// A requested scope this server does not grant (for that resource, or at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedScope;

/// The scope of a request: a subset of what the server supports for it, the default when it
/// names none. Without a resource that is the account's scopes; with one, that resource's
/// (`mcp:demo`, `mcp:admin`) and the identity scopes, defaulting to `mcp:demo`.
pub fn check_scope(
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<String, UnsupportedScope> {
    let Some(scope) = scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(match resource {
            None => DEFAULT_SCOPE.to_owned(),
            Some(_) => MCP_SCOPES[0].to_owned(),
        });
    };
    let allowed = |p: &str| match resource {
        None => SUPPORTED_SCOPES.contains(&p),
        Some(_) => MCP_SCOPES.contains(&p) || IDENTITY_SCOPES.contains(&p),
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in scope.split(' ').filter(|p| !p.is_empty()) {
        if !allowed(p) {
            return Err(UnsupportedScope);
        }
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    Ok(parts.join(" "))
}

/// Whether a request naming `asked` (checked by [`check`]) may use a grant bound to `bound`:
/// the same resource, or neither names one. `Err` is the `invalid_target` description.
pub fn matches(bound: Option<&str>, asked: Option<&str>) -> Result<(), String> {
    match (bound, asked) {
        (None, None) => Ok(()),
        (Some(b), Some(a)) if a == b => Ok(()),
        (Some(b), _) => Err(format!(
            "this grant is bound to the resource {b}: send resource={b} with this request"
        )),
        (None, Some(_)) => Err(
            "this grant was made without a resource; a resource cannot be added later (start a new authorization with it)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::new("http://127.0.0.1:8787");
        c.demo_mcp = true;
        c.resources = vec!["https://tools.example/mcp".into()];
        c
    }

    #[test]
    fn resources_are_known_absolute_and_fragment_free() {
        let c = cfg();
        assert_eq!(check(&c, None), Ok(None));
        let demo = "http://127.0.0.1:8787/mcp/demo";
        assert_eq!(check(&c, Some(demo)), Ok(Some(demo.to_owned())));
        // The same URI written differently is the same resource.
        assert_eq!(
            check(&c, Some("HTTP://127.0.0.1:8787/mcp/demo")),
            Ok(Some(demo.to_owned()))
        );
        assert!(check(&c, Some("https://tools.example/mcp")).is_ok());
        for bad in [
            "",
            "/mcp/demo",
            "mcp/demo",
            "urn:x",
            "http://127.0.0.1:8787/mcp/demo#f",
            "http://127.0.0.1:8787/mcp/other",
            "https://tools.example/mcp/",
        ] {
            assert!(check(&c, Some(bad)).is_err(), "{bad}");
        }
        let mut off = cfg();
        off.demo_mcp = false;
        assert!(check(&off, Some(demo)).is_err());
    }

    #[test]
    fn scopes_follow_the_resource() {
        assert_eq!(check_scope(None, None).unwrap(), DEFAULT_SCOPE);
        assert_eq!(check_scope(None, Some("r")).unwrap(), "mcp:demo");
        assert_eq!(
            check_scope(Some("mcp:demo mcp:admin mcp:demo"), Some("r")).unwrap(),
            "mcp:demo mcp:admin"
        );
        assert_eq!(
            check_scope(Some("openid mcp:demo"), Some("r")).unwrap(),
            "openid mcp:demo"
        );
        assert!(check_scope(Some("mcp:demo"), None).is_err());
        assert!(check_scope(Some("read"), Some("r")).is_err());
        assert!(check_scope(Some("write mcp:demo"), Some("r")).is_err());
    }

    #[test]
    fn bound_grants_need_their_resource() {
        assert!(matches(None, None).is_ok());
        assert!(matches(Some("a"), Some("a")).is_ok());
        assert!(matches(Some("a"), None).is_err());
        assert!(matches(Some("a"), Some("b")).is_err());
        assert!(matches(None, Some("a")).is_err());
    }
}
