//! OAuth clients: the built-in public client `mogplex-cli` and the clients an administrator
//! registers (`mogplex-server client add`), public or confidential. Here: finding one,
//! checking its redirect URIs (exact match; loopback port variance only for native public
//! clients, RFC 8252 §7.3), authenticating it at the token, revocation and introspection
//! endpoints (`client_secret_basic`, `client_secret_post`, or `none`), and validating a
//! registration (RFC 7591 error codes).

use crate::AppState;
use crate::crypto;
use crate::db::clients::ClientRow;
use crate::error::AppError;
use crate::web::Form;
use axum::http::{HeaderMap, header};
use base64::Engine;
use mogplex_protocol::oauth::{
    AUTHORIZATION_CODE_GRANT, CLIENT_ID, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT, auth_method,
    error_code,
};

/// At most this many redirect URIs per client, each at most this long.
pub const MAX_REDIRECT_URIS: usize = 20;
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// Grant types a client may be registered for.
pub const GRANT_TYPES: &[&str] = &[
    AUTHORIZATION_CODE_GRANT,
    REFRESH_TOKEN_GRANT,
    DEVICE_CODE_GRANT,
];

/// RFC 7591 §3.2.2 error codes of a registration.
pub const INVALID_REDIRECT_URI: &str = "invalid_redirect_uri";
pub const INVALID_CLIENT_METADATA: &str = "invalid_client_metadata";

#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    secret_hash: Option<String>,
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// `mogplex-cli`, not in the database.
    pub builtin: bool,
    /// Registered by itself (RFC 7591): its name is its own claim.
    pub dynamic: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("confidential", &self.is_confidential())
            .field("builtin", &self.builtin)
            .field("dynamic", &self.dynamic)
            .finish_non_exhaustive()
    }
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        Self {
            id: r.client_id,
            name: r.name,
            secret_hash: r.secret_hash,
            auth_method: r.auth_method,
            redirect_uris: r.redirect_uris,
            grant_types: r.grant_types,
            builtin: false,
            dynamic: r.dynamic,
        }
    }
}

/// Whether `uri` is an `http` redirect to a loopback address (RFC 8252 §7.3), `localhost`
/// included (§8.3: allowed, though the literal address is preferred).
pub fn is_loopback(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| u.scheme() == "http" && loopback_host(&u))
}

fn loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

impl Client {
    /// The Mogplex CLI: public, native, its loopback redirects, every grant.
    pub fn cli() -> Self {
        Self {
            id: CLIENT_ID.to_owned(),
            name: "the Mogplex CLI".to_owned(),
            secret_hash: None,
            auth_method: auth_method::NONE.to_owned(),
            redirect_uris: mogplex_protocol::oauth::LOOPBACK_PORTS
                .iter()
                .map(|p| mogplex_protocol::oauth::loopback_redirect_uri(*p))
                .collect(),
            grant_types: GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
            builtin: true,
            dynamic: false,
        }
    }

    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Exact match; a native public client's loopback redirect may differ in its port.
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        if self.builtin {
            return crate::oauth::redirect_allowed(uri);
        }
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        if self.is_confidential() {
            return false;
        }
        let Ok(u) = url::Url::parse(uri) else {
            return false;
        };
        if u.scheme() != "http" || !loopback_host(&u) || u.as_str() != uri || u.fragment().is_some()
        {
            return false;
        }
        self.redirect_uris.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|mut reg| {
                loopback_host(&reg) && reg.set_port(u.port()).is_ok() && reg.as_str() == uri
            })
        })
    }
}

/// The client `client_id` names, if the server knows it.
pub async fn find(s: &AppState, client_id: &str) -> Result<Option<Client>, AppError> {
    if client_id == CLIENT_ID {
        return Ok(Some(Client::cli()));
    }
    if client_id.is_empty() || client_id.len() > 128 {
        return Ok(None);
    }
    Ok(s.db.client(client_id).await?.map(Client::from))
}

fn invalid_client(desc: &str) -> AppError {
    AppError::oauth(error_code::INVALID_CLIENT, desc)
}

/// `Authorization: Basic` credentials (RFC 6749 §2.3.1: each part form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AppError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some(b64) = v.to_str().ok().and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return Ok(None);
    };
    let bad = || invalid_client("the Authorization header's client credentials are malformed");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((dec(id), dec(secret))))
}

/// Authenticates the client of a token, revocation or introspection request. `Ok(None)`: the
/// request names no client at all (allowed only where the caller says so).
pub async fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    f: &Form,
) -> Result<Option<Client>, AppError> {
    let basic = basic_credentials(headers)?;
    let posted = f.get("client_secret");
    if basic.is_some() && posted.is_some() {
        return Err(AppError::oauth(
            error_code::INVALID_REQUEST,
            "the client secret was sent both in the Authorization header and in the body; use one",
        ));
    }
    let (id, secret, method) = match (&basic, posted) {
        (Some((id, secret)), _) => {
            if f.get("client_id").is_some_and(|c| c != id) {
                return Err(AppError::oauth(
                    error_code::INVALID_REQUEST,
                    "client_id in the body differs from the Authorization header's",
                ));
            }
            (
                id.as_str(),
                Some(secret.as_str()),
                auth_method::CLIENT_SECRET_BASIC,
            )
        }
        (None, Some(secret)) => {
            let Some(id) = f.get("client_id").filter(|c| !c.is_empty()) else {
                return Err(AppError::oauth(
                    error_code::INVALID_REQUEST,
                    "client_id is required with client_secret",
                ));
            };
            (id, Some(secret), auth_method::CLIENT_SECRET_POST)
        }
        (None, None) => match f.get("client_id").filter(|c| !c.is_empty()) {
            Some(id) => (id, None, auth_method::NONE),
            None => return Ok(None),
        },
    };
    let Some(client) = find(s, id).await? else {
        return Err(invalid_client("unknown client"));
    };
    match (&client.secret_hash, secret) {
        (None, None) => Ok(Some(client)),
        (None, Some(_)) => Err(invalid_client(
            "this client is public: send its client_id without a secret",
        )),
        (Some(_), None) => Err(invalid_client(
            "this client is confidential: authenticate with its secret",
        )),
        (Some(hash), Some(secret)) => {
            if !crypto::ct_eq(hash, &crypto::hash(secret)) {
                return Err(invalid_client("client authentication failed"));
            }
            if client.auth_method != method {
                return Err(invalid_client(&format!(
                    "this client is registered for {}, not {method}",
                    client.auth_method
                )));
            }
            Ok(Some(client))
        }
    }
}

/// [`authenticate`] where a client is required.
pub async fn require(s: &AppState, headers: &HeaderMap, f: &Form) -> Result<Client, AppError> {
    authenticate(s, headers, f)
        .await?
        .ok_or_else(|| AppError::oauth(error_code::INVALID_REQUEST, "client_id is required"))
}

/// `unauthorized_client` unless the client is registered for `grant`.
pub fn check_grant(client: &Client, grant: &str) -> Result<(), AppError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(AppError::oauth(
            error_code::UNAUTHORIZED_CLIENT,
            format!("this client is not registered for the {grant} grant"),
        ))
    }
}

/// Checks one redirect URI of a registration: https, or http to a loopback address; no
/// fragment, no wildcard, no user part, already in canonical form.
pub fn check_redirect_uri(uri: &str) -> Result<(), (&'static str, String)> {
    let bad = |why: &str| (INVALID_REDIRECT_URI, format!("redirect URI {uri:?} {why}"));
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err((
            INVALID_REDIRECT_URI,
            format!("a redirect URI is over {MAX_REDIRECT_URI_LEN} characters"),
        ));
    }
    if uri.contains('*') {
        return Err(bad("has a wildcard: register each address exactly"));
    }
    let u = url::Url::parse(uri).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if u.fragment().is_some() || uri.contains('#') {
        return Err(bad(
            "has a fragment, which redirects may not carry (RFC 6749 §3.1.2)",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("has a user name or password"));
    }
    match u.scheme() {
        "https" => {}
        "http" if loopback_host(&u) => {}
        "http" => {
            return Err(bad(
                "uses http to a host that is not a loopback address: use https (http only for 127.0.0.1, [::1] or localhost)",
            ));
        }
        other => return Err(bad(&format!("uses the scheme {other}: use https"))),
    }
    if u.as_str() != uri {
        return Err(bad(&format!(
            "is not in canonical form: register {:?}",
            u.as_str()
        )));
    }
    Ok(())
}

/// Checks a whole registration.
pub fn check_registration(
    redirect_uris: &[String],
    grant_types: &[String],
    method: &str,
) -> Result<(), (&'static str, String)> {
    if grant_types.is_empty() {
        return Err((
            INVALID_CLIENT_METADATA,
            "give at least one grant type".into(),
        ));
    }
    if let Some(g) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err((
            INVALID_CLIENT_METADATA,
            format!(
                "unsupported grant type {g:?} (supported: {})",
                GRANT_TYPES.join(", ")
            ),
        ));
    }
    if ![
        auth_method::NONE,
        auth_method::CLIENT_SECRET_BASIC,
        auth_method::CLIENT_SECRET_POST,
    ]
    .contains(&method)
    {
        return Err((
            INVALID_CLIENT_METADATA,
            format!("unsupported token endpoint auth method {method:?}"),
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err((
            INVALID_REDIRECT_URI,
            format!(
                "{} redirect URIs: at most {MAX_REDIRECT_URIS} per client",
                redirect_uris.len()
            ),
        ));
    }
    let code = grant_types.iter().any(|g| g == AUTHORIZATION_CODE_GRANT);
    if code && redirect_uris.is_empty() {
        return Err((
            INVALID_REDIRECT_URI,
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    for uri in redirect_uris {
        check_redirect_uri(uri)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            secret_hash: None,
            auth_method: "none".into(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            grant_types: vec![AUTHORIZATION_CODE_GRANT.into()],
            builtin: false,
            dynamic: false,
        }
    }

    #[test]
    fn redirects_match_exactly_with_loopback_port_variance_for_native_clients() {
        let c = public(&["http://127.0.0.1:5000/cb", "https://app.example/cb"]);
        assert!(c.redirect_allowed("http://127.0.0.1:5000/cb"));
        assert!(c.redirect_allowed("http://127.0.0.1:6123/cb"));
        assert!(!c.redirect_allowed("http://127.0.0.1:6123/other"));
        assert!(!c.redirect_allowed("https://app.example/cb/"));
        assert!(!c.redirect_allowed("https://app.example:444/cb"));
        let mut conf = c.clone();
        conf.secret_hash = Some("h".into());
        assert!(!conf.redirect_allowed("http://127.0.0.1:6123/cb"));
        assert!(conf.redirect_allowed("http://127.0.0.1:5000/cb"));
    }
}
