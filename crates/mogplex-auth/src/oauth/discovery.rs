//! Finding an authorization server's metadata (SPEC section 4, "Other authorization servers").
//!
//! Any standards-compliant server must do, so the CLI looks where the standards say, in order:
//! RFC 8414 section 3 (`/.well-known/oauth-authorization-server` inserted between the host and
//! the issuer's path), then OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`
//! appended to the issuer), then, for an issuer with a path, the RFC 8414 name appended as
//! earlier CLIs used it. A 404 (or any 4xx, or a document that is not JSON) moves on to the next;
//! a connection failure stops at once. A document found is checked before anything is used: its
//! `issuer` is exactly the address the CLI was pointed at (RFC 8414 §3.3, OpenID Discovery §4.3),
//! it names the required endpoints, they are `https` (or loopback `http`), and PKCE with S256 is
//! offered. Everything wrong with a server is a [`OAuthError::Misconfigured`] that says what to
//! fix, so the user can tell its administrator.

use super::{Metadata, OAuthError};
use mogplex_protocol::oauth::PKCE_METHOD;
use reqwest::Url;
use serde_json::Value;

/// Which standard a metadata address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RFC 8414 authorization server metadata.
    OAuth,
    /// OpenID Connect Discovery 1.0.
    OpenId,
}

/// The metadata addresses for `issuer`, in the order they are tried.
pub fn candidates(issuer: &Url) -> Vec<(String, Kind)> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    let appended = |well_known: &str| {
        format!(
            "{}/.well-known/{well_known}",
            issuer.as_str().trim_end_matches('/')
        )
    };
    let mut out = vec![
        (
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            Kind::OAuth,
        ),
        (appended("openid-configuration"), Kind::OpenId),
    ];
    if !path.is_empty() {
        out.push((appended("oauth-authorization-server"), Kind::OAuth));
    }
    out
}

/// An issuer as compared: without a trailing slash.
pub fn normalize(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

pub(crate) fn misconfigured(
    server: &str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> OAuthError {
    OAuthError::Misconfigured {
        server: server.to_owned(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// An endpoint must be an absolute `https` address, or `http` on a loopback host.
pub(crate) fn check_endpoint(server: &str, name: &str, value: &str) -> Result<(), OAuthError> {
    let fix = format!("have its administrator publish an absolute https address as {name}");
    let url = Url::parse(value).map_err(|_| {
        misconfigured(
            server,
            format!("its metadata names {name} {value:?}, which is not an absolute address"),
            fix.clone(),
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(misconfigured(
            server,
            format!("its metadata names {name} {value}, which is not https"),
            fix,
        )),
    }
}

/// Checks a metadata document found at `url` for the issuer `expected`, and reads it.
pub fn check(url: &str, kind: Kind, expected: &str, doc: Value) -> Result<Metadata, OAuthError> {
    let server = normalize(expected);
    let Value::Object(map) = &doc else {
        return Err(misconfigured(
            server,
            format!("its metadata at {url} is not a JSON object"),
            "have its administrator fix the metadata document",
        ));
    };
    let found = match map.get("issuer") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(misconfigured(
                server,
                format!("its metadata at {url} names no issuer"),
                "have its administrator publish the issuer in the metadata",
            ));
        }
    };
    if normalize(&found) != server {
        return Err(OAuthError::IssuerMismatch {
            expected: server.to_owned(),
            found,
        });
    }
    let missing: Vec<&str> = ["authorization_endpoint", "token_endpoint"]
        .into_iter()
        .filter(|k| !matches!(map.get(*k), Some(Value::String(s)) if !s.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(misconfigured(
            server,
            format!("its metadata at {url} lacks {}", missing.join(" and ")),
            format!(
                "have its administrator enable the authorization code grant, so that the metadata names {}",
                missing.join(" and ")
            ),
        ));
    }
    let meta: Metadata = serde_json::from_value(doc).map_err(|e| {
        misconfigured(
            server,
            format!("its metadata at {url} does not follow RFC 8414: {e}"),
            "have its administrator fix the metadata document",
        )
    })?;
    check_endpoint(
        server,
        "authorization_endpoint",
        &meta.authorization_endpoint,
    )?;
    check_endpoint(server, "token_endpoint", &meta.token_endpoint)?;
    for (name, value) in [
        ("revocation_endpoint", &meta.revocation_endpoint),
        (
            "device_authorization_endpoint",
            &meta.device_authorization_endpoint,
        ),
        ("jwks_uri", &meta.jwks_uri),
        ("userinfo_endpoint", &meta.userinfo_endpoint),
    ] {
        if let Some(v) = value {
            check_endpoint(server, name, v)?;
        }
    }
    let pkce_fix = "have its administrator require PKCE with S256 for the client (mogplex sends no other method)";
    match &meta.code_challenge_methods_supported {
        Some(methods) if methods.iter().any(|m| m == PKCE_METHOD) => {}
        Some(methods) => {
            return Err(misconfigured(
                server,
                format!(
                    "it lists no S256 PKCE method (code_challenge_methods_supported: {})",
                    if methods.is_empty() {
                        "none".to_owned()
                    } else {
                        methods.join(", ")
                    }
                ),
                pkce_fix,
            ));
        }
        // RFC 8414: absent means no PKCE. OpenID Discovery has no such member, so an OpenID
        // provider that omits it is given the benefit of the doubt (the challenge is sent anyway).
        None if kind == Kind::OAuth => {
            return Err(misconfigured(
                server,
                format!(
                    "its metadata at {url} does not advertise PKCE (no code_challenge_methods_supported)"
                ),
                pkce_fix,
            ));
        }
        None => {}
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_insertion_then_openid_then_appended() {
        let at = |s: &str| {
            candidates(&Url::parse(s).unwrap())
                .into_iter()
                .map(|(u, _)| u)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            at("https://as.example/tenant/a/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant/a",
                "https://as.example/tenant/a/.well-known/openid-configuration",
                "https://as.example/tenant/a/.well-known/oauth-authorization-server"
            ]
        );
    }

    fn doc() -> Value {
        json!({
            "issuer": "https://as.example/t",
            "authorization_endpoint": "https://as.example/t/auth",
            "token_endpoint": "https://as.example/t/token",
            "code_challenge_methods_supported": ["plain", "S256"],
        })
    }

    fn problem(e: OAuthError) -> String {
        match e {
            OAuthError::Misconfigured { problem, .. } => problem,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn documents_are_checked_before_use() {
        let url = "https://as.example/.well-known/oauth-authorization-server/t";
        let ok = check(url, Kind::OAuth, "https://as.example/t/", doc()).unwrap();
        assert_eq!(ok.token_endpoint, "https://as.example/t/token");

        let e = check(url, Kind::OAuth, "https://as.example/u", doc()).unwrap_err();
        assert!(matches!(e, OAuthError::IssuerMismatch { .. }), "{e}");

        let mut d = doc();
        d.as_object_mut().unwrap().remove("token_endpoint");
        assert!(
            problem(check(url, Kind::OAuth, "https://as.example/t", d).unwrap_err())
                .contains("lacks token_endpoint")
        );

        let mut d = doc();
        d["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(
            problem(check(url, Kind::OAuth, "https://as.example/t", d).unwrap_err())
                .contains("no S256")
        );
        let mut d = doc();
        d.as_object_mut()
            .unwrap()
            .remove("code_challenge_methods_supported");
        assert!(check(url, Kind::OAuth, "https://as.example/t", d.clone()).is_err());
        assert!(check(url, Kind::OpenId, "https://as.example/t", d).is_ok());

        let mut d = doc();
        d["token_endpoint"] = json!("http://as.example/t/token");
        assert!(
            problem(check(url, Kind::OAuth, "https://as.example/t", d).unwrap_err())
                .contains("not https")
        );
        let mut d = doc();
        d["issuer"] = json!("http://127.0.0.1:1");
        d["token_endpoint"] = json!("http://127.0.0.1:1/token");
        d["authorization_endpoint"] = json!("http://127.0.0.1:1/auth");
        assert!(check(url, Kind::OAuth, "http://127.0.0.1:1", d).is_ok());
        assert!(check(url, Kind::OAuth, "https://as.example/t", json!([1])).is_err());
    }
}
