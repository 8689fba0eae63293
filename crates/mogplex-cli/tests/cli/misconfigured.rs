//! Authorization servers that are misconfigured for mogplex (issue 13's bad input), served by a
//! small axum fake on 127.0.0.1 that plays the browser too (its authorize endpoint redirects at
//! once): metadata that lacks fields, names another issuer or lists no S256; ID tokens that are
//! malformed, unsigned, for another audience, or checked against a JWKS that does not parse; and
//! token endpoints whose refresh answers must be classified (RFC 6749 section 5.2). Each is a
//! clear `error:` with a `hint:`, the documented exit code, no credential stored, and tokens
//! issued to a failed sign-in revoked first.

use crate::common::*;
use crate::oidc::{authorize_address, deliver, login_at, param};
use crate::signin::PORTS;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the ID token of a code exchange looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdToken {
    Good,
    Malformed,
    Unsigned,
    OtherAudience,
    /// Signed by a key that is not in the JWKS.
    Forged,
    /// Carrying another nonce than the authorization request's.
    OtherNonce,
}

struct Shared {
    /// The RFC 8414 document at the origin; `None`: 404. Built from `url`.
    metadata: Option<Value>,
    metadata_status: u16,
    id_token: IdToken,
    /// The body at `/jwks`; `None`: the real key set.
    jwks: Option<String>,
    /// The answer to a refresh; `None`: new tokens.
    refresh: Option<(u16, String)>,
    nonce: Option<String>,
    revoked: Vec<String>,
    issued: u32,
    key: EcdsaKeyPair,
    forger: EcdsaKeyPair,
    url: String,
}

fn keypair() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

impl Shared {
    fn good_metadata(url: &str) -> Value {
        json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "revocation_endpoint": format!("{url}/revoke"),
            "jwks_uri": format!("{url}/jwks"),
            "userinfo_endpoint": format!("{url}/userinfo"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "offline_access"],
        })
    }

    fn jwks(&self) -> String {
        let p = self.key.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])}]})
        .to_string()
    }

    fn id_token(&self) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let aud = if self.id_token == IdToken::OtherAudience {
            "someone-else"
        } else {
            "mogplex-cli"
        };
        let nonce = if self.id_token == IdToken::OtherNonce {
            Some("replayed-from-another-sign-in".to_owned())
        } else {
            self.nonce.clone()
        };
        let claims = json!({"iss": self.url, "sub": "carol", "aud": aud, "exp": now + 300,
            "iat": now, "nonce": nonce, "email": "carol@example.com"});
        let body = B64.encode(claims.to_string());
        match self.id_token {
            IdToken::Malformed => "not-a-jwt".into(),
            IdToken::Unsigned => format!("{}.{body}.", B64.encode(r#"{"alg":"none"}"#)),
            _ => {
                let input = format!("{}.{body}", B64.encode(r#"{"alg":"ES256","kid":"k1"}"#));
                let key = if self.id_token == IdToken::Forged {
                    &self.forger
                } else {
                    &self.key
                };
                let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
                format!("{input}.{}", B64.encode(sig.as_ref()))
            }
        }
    }
}

type S = State<Arc<Mutex<Shared>>>;

async fn metadata(State(s): S) -> Response {
    let s = s.lock().unwrap();
    match &s.metadata {
        Some(m) => (
            StatusCode::from_u16(s.metadata_status).unwrap(),
            axum::Json(m.clone()),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn authorize(State(s): S, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    s.nonce = q.get("nonce").cloned();
    let mut to = url::Url::parse(&q["redirect_uri"]).unwrap();
    to.query_pairs_mut()
        .append_pair("code", "fake_code")
        .append_pair("state", &q["state"])
        .append_pair("iss", &s.url);
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

async fn token(State(s): S, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    if f.get("grant_type").map(String::as_str) == Some("refresh_token")
        && let Some((status, body)) = s.refresh.clone()
    {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    s.issued += 1;
    let n = s.issued;
    let mut t = json!({"access_token": format!("fake_at_{n}"), "refresh_token": format!("fake_rt_{n}"),
        "token_type": "Bearer", "expires_in": 60, "scope": "openid email offline_access"});
    if f.get("grant_type").map(String::as_str) == Some("authorization_code") {
        t["id_token"] = s.id_token().into();
    }
    axum::Json(t).into_response()
}

async fn revoke(State(s): S, Form(f): Form<HashMap<String, String>>) -> StatusCode {
    s.lock().unwrap().revoked.push(f["token"].clone());
    StatusCode::OK
}

async fn jwks(State(s): S) -> Response {
    let s = s.lock().unwrap();
    let body = s.jwks.clone().unwrap_or_else(|| s.jwks());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn userinfo() -> axum::Json<Value> {
    axum::Json(json!({"sub": "carol", "email": "carol@example.com"}))
}

/// The fake on 127.0.0.1, issuer at its origin; `/api/auth/user` is a 404 as on any server
/// that is not Mogplex.
struct Fake {
    url: String,
    shared: Arc<Mutex<Shared>>,
    _rt: tokio::runtime::Runtime,
}

impl Fake {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared {
            metadata: Some(Shared::good_metadata(&url)),
            metadata_status: 200,
            id_token: IdToken::Good,
            jwks: None,
            refresh: None,
            nonce: None,
            revoked: Vec::new(),
            issued: 0,
            key: keypair(),
            forger: keypair(),
            url: url.clone(),
        }));
        let app = axum::Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/jwks", get(jwks))
            .route("/userinfo", get(userinfo))
            .with_state(shared.clone());
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            shared,
            _rt: rt,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Shared)) {
        f(&mut self.shared.lock().unwrap());
    }

    fn revoked(&self) -> Vec<String> {
        self.shared.lock().unwrap().revoked.clone()
    }
}

/// A browser sign-in against the fake, the browser's part played by following its redirect.
fn browser_sign_in(fake: &Fake, home: &TestHome) -> (i32, String, String) {
    let mut login = login_at(home, &fake.url, &["login", "mogplex"], &[]);
    let authorize = authorize_address(&mut login);
    assert!(param(&authorize, "nonce").is_some(), "{authorize}");
    let back = location_of(authorize.as_str());
    assert!(deliver(&back).starts_with("HTTP/1.1 200"));
    login.finish()
}

/// A plain `mogplex login mogplex` that ends before any browser is involved.
fn login_output(fake: &Fake, home: &TestHome) -> (i32, String) {
    let out = home
        .cmd(&["login", "mogplex"])
        .env("MOGPLEX_URL", &fake.url)
        .env("BROWSER", "true")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The redirect an authorization URL answers with, without following it.
fn location_of(url: &str) -> String {
    mogplex_testkit::peers::block_on(async {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap();
        r.headers()["location"].to_str().unwrap().to_owned()
    })
}

fn assert_refused(home: &TestHome, code: i32, err: &str, problem: &str, hint: &str) {
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("error: the authorization server at http://127.0.0.1:")
            && err.contains(problem),
        "{problem} in\n{err}"
    );
    assert!(err.contains(&format!("hint: {hint}")), "{hint} in\n{err}");
    assert!(err.contains("hint: nothing was stored"), "{err}");
    assert!(!home.auth_path().exists(), "no credential stored:\n{err}");
}

/// A change to the good metadata document.
type Change = Box<dyn Fn(&mut Value)>;

#[test]
fn metadata_that_cannot_be_used_is_refused_before_signing_in() {
    let fake = Fake::start();
    let url = fake.url.clone();
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "lacks fields",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("token_endpoint");
            }),
            "lacks token_endpoint",
            "have its administrator enable the authorization code grant",
        ),
        (
            "lists no S256",
            Box::new(|m| m["code_challenge_methods_supported"] = json!(["plain"])),
            "it lists no S256 PKCE method (code_challenge_methods_supported: plain)",
            "have its administrator require PKCE with S256",
        ),
        (
            "no PKCE at all",
            Box::new(|m| {
                m.as_object_mut()
                    .unwrap()
                    .remove("code_challenge_methods_supported");
            }),
            "does not advertise PKCE",
            "have its administrator require PKCE with S256",
        ),
        (
            "plain http endpoint",
            Box::new(|m| m["token_endpoint"] = json!("http://as.example/token")),
            "which is not https",
            "have its administrator publish an absolute https address as token_endpoint",
        ),
        (
            "offers none of the scopes",
            Box::new(|m| m["scopes_supported"] = json!(["admin"])),
            "it offers none of the scopes mogplex asks for",
            "set MOGPLEX_SCOPES to scopes it offers",
        ),
    ];
    for (name, change, problem, hint) in cases {
        let home = TestHome::new();
        let mut m = Shared::good_metadata(&url);
        change(&mut m);
        fake.set(|s| s.metadata = Some(m));
        let (code, err) = login_output(&fake, &home);
        eprintln!("--- {name}");
        assert_refused(&home, code, &err, problem, hint);
    }

    // Another issuer: the server's answer is not used at all.
    let home = TestHome::new();
    let mut m = Shared::good_metadata(&url);
    m["issuer"] = json!("https://login.example");
    fake.set(|s| s.metadata = Some(m));
    let (code, err) = login_output(&fake, &home);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains(&format!(
            "error: the server at {url} names another issuer (https://login.example)"
        )),
        "{err}"
    );
    assert!(err.contains("hint: if https://login.example is the server you mean, set MOGPLEX_URL=https://login.example"), "{err}");
    assert!(!home.auth_path().exists());

    // No metadata anywhere: the address is probably not the issuer.
    fake.set(|s| s.metadata = None);
    let (code, err) = login_output(&fake, &home);
    assert_refused(
        &home,
        code,
        &err,
        "it publishes no authorization server metadata (tried",
        "set MOGPLEX_URL to the server's issuer",
    );
    // A server in trouble is unavailable (69), not misconfigured.
    fake.set(|s| {
        s.metadata = Some(Shared::good_metadata(&url));
        s.metadata_status = 503;
    });
    let (code, err) = login_output(&fake, &home);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("error: cannot reach"), "{err}");
    assert!(fake.revoked().is_empty());
}

#[test]
fn id_tokens_that_do_not_check_out_fail_the_sign_in_and_the_tokens_are_revoked() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let fake = Fake::start();
    let cases = [
        (
            IdToken::Malformed,
            None,
            "it returned a malformed ID token",
            "have its administrator check that ID tokens are signed JWTs",
        ),
        (
            IdToken::Unsigned,
            None,
            "it returned an unsigned ID token (alg \"none\")",
            "have its administrator sign ID tokens",
        ),
        (
            IdToken::OtherAudience,
            None,
            "it issued the ID token for another audience, not the client mogplex-cli",
            "set MOGPLEX_CLIENT_ID to the client registered for mogplex",
        ),
        (
            IdToken::Forged,
            None,
            "the ID token's signature does not verify with the keys at its jwks_uri",
            "have its administrator check the provider's signing keys",
        ),
        (
            IdToken::OtherNonce,
            None,
            "the ID token does not carry the nonce of this sign-in",
            "have its administrator return the authorization request's nonce in the ID token",
        ),
        (
            IdToken::Good,
            Some("<html>keys</html>"),
            "/jwks cannot be used: it is not JSON",
            "have its administrator serve a JSON Web Key Set (RFC 7517) at jwks_uri",
        ),
    ];
    for (n, (id_token, jwks, problem, hint)) in cases.into_iter().enumerate() {
        let home = TestHome::new();
        fake.set(|s| {
            s.id_token = id_token;
            s.jwks = jwks.map(str::to_owned);
            s.revoked.clear();
        });
        let (code, _, err) = browser_sign_in(&fake, &home);
        eprintln!("--- {id_token:?}");
        assert_refused(&home, code, &err, problem, hint);
        // Tokens were issued before the ID token was checked: both are revoked first.
        let i = n + 1;
        assert_eq!(
            fake.revoked(),
            [format!("fake_rt_{i}"), format!("fake_at_{i}")],
            "{err}"
        );
    }
}

#[test]
fn identity_from_the_id_token_and_refresh_answers_classified_by_status_and_body() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let fake = Fake::start();
    // No `/api/auth/user` here (a 404): the account is the ID token's, and the sign-in works.
    let home = TestHome::new();
    let (code, out, err) = browser_sign_in(&fake, &home);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as carol@example.com");
    assert_eq!(home.account()["account"]["id"], "carol");
    assert!(fake.revoked().is_empty());

    let exec = |home: &TestHome| {
        home.cmd(&["exec", "--model", "mogplex/echo", "hi"])
            .env("MOGPLEX_URL", &fake.url)
            .output()
            .unwrap()
    };
    // The access token lives 60 s, inside the 5-minute margin: every run refreshes.
    // A 5xx is transient: the sign-in is kept.
    fake.set(|s| s.refresh = Some((503, String::new())));
    let out = exec(&home);
    assert_eq!(out.status.code(), Some(69), "{}", home.render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is kept, try again shortly"));
    assert!(home.account()["refresh_token"].is_string());
    // A 400 whose body is not an RFC 6749 error (here: none) on a refresh means signed out.
    fake.set(|s| s.refresh = Some((400, String::new())));
    let out = exec(&home);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("your Mogplex sign-in has ended; you are signed out"),
        "{stderr}"
    );
    assert!(home.auth().get("mogplex").is_none());

    // The same with a 401 and an HTML page, after signing in again.
    fake.set(|s| s.refresh = None);
    let (code, _, err) = browser_sign_in(&fake, &home);
    assert_eq!(code, 0, "{err}");
    fake.set(|s| s.refresh = Some((401, "<html>Unauthorized</html>".into())));
    let out = exec(&home);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    assert!(home.auth().get("mogplex").is_none());
    // And `invalid_grant`, with its description.
    fake.set(|s| s.refresh = None);
    let (code, _, err) = browser_sign_in(&fake, &home);
    assert_eq!(code, 0, "{err}");
    fake.set(|s| {
        s.refresh = Some((
            400,
            json!({"error": "invalid_grant", "error_description": "grant revoked"}).to_string(),
        ))
    });
    let out = exec(&home);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("grant revoked"));
}
