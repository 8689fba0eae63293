//! Smoke tests of the third-party test peers: that node-oidc-provider, configured as a deployer
//! would, publishes its metadata, runs the code + PKCE flow, rotates refresh tokens and runs the
//! device flow through `HttpBrowser`; that the MCP reference server answers over stdio; and that
//! `scripts/with-keyring` gives a working Secret Service. Later tests build on exactly these
//! behaviours, so when one of them changes (a new pinned version), it shows here first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use mogplex_testkit::peers::{
    self, Account, CLI_CLIENT_ID, CLI_REDIRECT_URIS, DEVICE_CODE_GRANT, HttpBrowser, Login,
    McpEverything, OidcConfig, OidcProvider, RelyingParty, RpConfig,
};
use serde_json::Value;
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

const SCOPE: &str = "openid profile email offline_access";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    b64(&bytes)
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = http().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn bearer_get(url: &str, token: &str) -> reqwest::Response {
    http().get(url).bearer_auth(token).send().await.unwrap()
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An authorization request of the CLI client, as the CLI builds it.
struct Authorization {
    redirect_uri: String,
    scope: String,
    extra: Vec<(&'static str, &'static str)>,
}

impl Default for Authorization {
    fn default() -> Self {
        Self {
            redirect_uri: CLI_REDIRECT_URIS[0].into(),
            scope: SCOPE.into(),
            // OpenID Connect Core section 11: offline_access is granted only with consent.
            extra: vec![("prompt", "consent"), ("nonce", "n-0S6_WzA2Mj")],
        }
    }
}

/// Runs `auth` through the HTTP browser as `login`; returns the provider's metadata and the
/// final redirect's parameters, and the PKCE verifier.
async fn authorize(
    op: &OidcProvider,
    auth: &Authorization,
    login: &Login,
) -> (Value, HashMap<String, String>, String) {
    let (_, meta) = get_json(&op.discovery_url()).await;
    let verifier = random();
    let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
    let state = random();
    let mut url = reqwest::Url::parse(meta["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLI_CLIENT_ID)
        .append_pair("redirect_uri", &auth.redirect_uri)
        .append_pair("scope", &auth.scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(&auth.extra);
    let back = HttpBrowser::new()
        .authorize(url.as_str(), login)
        .await
        .unwrap();
    assert!(back.starts_with(&auth.redirect_uri), "{back}");
    let params = query(&back);
    assert_eq!(params["state"], state);
    assert_eq!(params["iss"], op.issuer(), "RFC 9207 iss on the redirect");
    (meta, params, verifier)
}

/// A code + PKCE sign-in of the CLI client; returns the provider's metadata and the tokens.
async fn sign_in_with(op: &OidcProvider, auth: &Authorization, login: &Login) -> (Value, Value) {
    let (meta, params, verifier) = authorize(op, auth, login).await;
    assert!(params.contains_key("code"), "{params:?}");
    let (status, tokens) = post_form(
        meta["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLI_CLIENT_ID),
            ("code", &params["code"]),
            ("redirect_uri", &auth.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    (meta, tokens)
}

async fn sign_in(op: &OidcProvider, login: &Login) -> (Value, Value) {
    sign_in_with(op, &Authorization::default(), login).await
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn discovery_without_an_issuer_path_serves_both_documents_at_the_root() {
    let op = OidcProvider::start(OidcConfig::default());
    assert_eq!(op.issuer(), op.origin());
    let (status, oidc) = get_json(&op.discovery_url()).await;
    assert_eq!(status, 200);
    assert_eq!(oidc["issuer"], op.issuer());
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    let grants = oidc["grant_types_supported"].as_array().unwrap();
    for grant in ["authorization_code", "refresh_token", DEVICE_CODE_GRANT] {
        assert!(grants.iter().any(|g| g == grant), "{grant} in {grants:?}");
    }
    for endpoint in [
        "device_authorization_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        assert!(oidc[endpoint].is_string(), "{endpoint} in {oidc}");
    }
    let (status, oauth) = get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        op.origin()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(oauth["issuer"], op.issuer());
    assert_eq!(oauth["token_endpoint"], oidc["token_endpoint"]);
}

#[tokio::test]
async fn discovery_with_an_issuer_path_and_rfc8414_path_insertion() {
    // As node-oidc-provider publishes it: both documents appended to the issuer, none inserted.
    let op = OidcProvider::start(OidcConfig {
        issuer_path: "/oidc".into(),
        ..Default::default()
    });
    assert_eq!(op.issuer(), format!("{}/oidc", op.origin()));
    let (status, oidc) = get_json(&op.discovery_url()).await;
    assert_eq!(status, 200);
    assert_eq!(oidc["issuer"], op.issuer());
    assert_eq!(oidc["token_endpoint"], format!("{}/token", op.issuer()));
    let appended = format!("{}/.well-known/oauth-authorization-server", op.issuer());
    assert_eq!(get_json(&appended).await.0, 200);
    let inserted = format!(
        "{}/.well-known/oauth-authorization-server/oidc",
        op.origin()
    );
    assert_eq!(get_json(&inserted).await.0, 404);
    let root = format!("{}/.well-known/openid-configuration", op.origin());
    assert_eq!(get_json(&root).await.0, 404);
    drop(op);

    // As a deployer who routes RFC 8414 section 3 URLs would publish it, or one with OIDC only.
    let op = OidcProvider::start(OidcConfig {
        issuer_path: "/oidc".into(),
        rfc8414_path_insertion: true,
        oauth_metadata: false,
        ..Default::default()
    });
    let inserted = format!(
        "{}/.well-known/oauth-authorization-server/oidc",
        op.origin()
    );
    let (status, oauth) = get_json(&inserted).await;
    assert_eq!(status, 200);
    assert_eq!(oauth["issuer"], op.issuer());
    assert_eq!(oauth["token_endpoint"], format!("{}/token", op.issuer()));
    let appended = format!("{}/.well-known/oauth-authorization-server", op.issuer());
    assert_eq!(get_json(&appended).await.0, 404);
    assert_eq!(get_json(&op.discovery_url()).await.0, 200);
}

#[tokio::test]
async fn code_flow_with_pkce_then_refresh_rotates_and_a_replay_revokes_the_grant() {
    let op = OidcProvider::start(OidcConfig {
        access_token_ttl: Duration::from_secs(2),
        clock_tolerance: Duration::ZERO,
        issuer_path: "/oidc".into(),
        ..Default::default()
    });
    let (meta, tokens) = sign_in(&op, &Login::new("alice@example.com", "any password")).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 2);
    assert_eq!(tokens["scope"], SCOPE);
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], op.issuer());
    assert_eq!(id["aud"], CLI_CLIENT_ID);
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    // The provider's default (conform_id_token_claims): with an access token issued, the
    // profile and email claims come from userinfo only.
    assert!(
        id.get("email").is_none() && id.get("name").is_none(),
        "{id}"
    );

    let userinfo = meta["userinfo_endpoint"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let r = bearer_get(userinfo, access).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["name"], "Alice Example");

    // The short access-token lifetime is real: the token stops working by itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if bearer_get(userinfo, access).await.status() == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the access token never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let token_endpoint = meta["token_endpoint"].as_str().unwrap();
    let first = tokens["refresh_token"].as_str().unwrap();
    let refresh = |rt: String| async move {
        post_form(
            token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLI_CLIENT_ID),
                ("refresh_token", &rt),
            ],
        )
        .await
    };
    let (status, rotated) = refresh(first.to_owned()).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(second, first, "the refresh token rotates");
    let r = bearer_get(userinfo, rotated["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);

    // Replaying the rotated-out token is reuse: refused, and the whole grant is revoked.
    let (status, replay) = refresh(first.to_owned()).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, after) = refresh(second.to_owned()).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn revocation_introspection_and_a_confidential_client() {
    let secret = random();
    let callback = "http://127.0.0.1:9/sso/callback";
    let op = OidcProvider::start(OidcConfig {
        clients: vec![peers::confidential_client(
            "company-sso",
            &secret,
            &[callback],
        )],
        ..Default::default()
    });
    let (meta, tokens) = sign_in(&op, &Login::new("alice", "x")).await;
    let introspect = meta["introspection_endpoint"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let active = |token: String| {
        let secret = secret.clone();
        async move {
            let r = http()
                .post(introspect)
                .basic_auth("company-sso", Some(&secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["active"].clone()
        }
    };
    // A confidential client may introspect (the provider's default policy: resource servers
    // can); the CLI revokes its refresh token, which is then inactive and refused.
    assert_eq!(active(refresh.to_owned()).await, true);
    let (status, _) = post_form(
        meta["revocation_endpoint"].as_str().unwrap(),
        &[("client_id", CLI_CLIENT_ID), ("token", refresh)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post_form(
        meta["token_endpoint"].as_str().unwrap(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLI_CLIENT_ID),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(active(refresh.to_owned()).await, false);

    // The confidential client signs a user in with its secret, and not without it.
    let url = format!(
        "{}?response_type=code&client_id=company-sso&redirect_uri={}&scope=openid%20email&state=s1&code_challenge={}&code_challenge_method=S256",
        meta["authorization_endpoint"].as_str().unwrap(),
        callback,
        b64(&sha2::Sha256::digest(
            b"verifier-verifier-verifier-verifier-verifier"
        )),
    );
    let back = HttpBrowser::new()
        .authorize(&url, &Login::new("alice", "x"))
        .await
        .unwrap();
    let code = query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback),
        (
            "code_verifier",
            "verifier-verifier-verifier-verifier-verifier",
        ),
    ];
    let token_endpoint = meta["token_endpoint"].as_str().unwrap();
    let r = http()
        .post(token_endpoint)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no client authentication");
    let r = http()
        .post(token_endpoint)
        .basic_auth("company-sso", Some("wrong secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = http()
        .post(token_endpoint)
        .basic_auth("company-sso", Some(&secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["aud"],
        "company-sso"
    );
}

#[tokio::test]
async fn the_login_page_checks_a_given_password_and_consent_can_be_denied() {
    let op = OidcProvider::start(OidcConfig {
        accounts: vec![Account::new("bob", "bob@example.com", "Bob").with_password("correct")],
        ..Default::default()
    });
    let (_, meta) = get_json(&op.discovery_url()).await;
    let url = format!(
        "{}?response_type=code&client_id={CLI_CLIENT_ID}&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        meta["authorization_endpoint"].as_str().unwrap(),
        CLI_REDIRECT_URIS[1],
        b64(&sha2::Sha256::digest(b"v")),
    );
    let err = HttpBrowser::new()
        .authorize(&url, &Login::new("bob@example.com", "wrong"))
        .await
        .unwrap_err();
    assert!(
        err.contains("refused the login") && err.contains("Invalid email or password"),
        "{err}"
    );
    let err = HttpBrowser::new()
        .authorize(&url, &Login::new("nobody@example.com", "correct"))
        .await
        .unwrap_err();
    assert!(err.contains("refused the login"), "{err}");

    let back = HttpBrowser::new()
        .authorize(&url, &Login::new("BOB@example.com", "correct").denying())
        .await
        .unwrap();
    let params = query(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s");

    // PKCE is required: an authorization without a challenge is refused at the redirect URI.
    let no_pkce = url.split("&code_challenge").next().unwrap().to_owned();
    let back = HttpBrowser::new()
        .authorize(&no_pkce, &Login::new("bob", "correct"))
        .await
        .unwrap();
    assert_eq!(query(&back)["error"], "invalid_request", "{back}");
}

#[tokio::test]
async fn refresh_tokens_scopes_nonce_and_redirect_matching_follow_the_configuration() {
    let alice = Login::new("alice", "pw");
    let op = OidcProvider::start(OidcConfig {
        extra_scopes: vec!["read".into(), "write".into()],
        require_nonce: true,
        ..Default::default()
    });
    let (_, meta) = get_json(&op.discovery_url()).await;
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!([
            "openid",
            "profile",
            "email",
            "offline_access",
            "read",
            "write"
        ])
    );
    // Without prompt=consent the provider drops offline_access and issues no refresh token;
    // the extra scopes are granted as asked.
    let without_consent = Authorization {
        scope: format!("{SCOPE} read write"),
        extra: vec![("nonce", "n")],
        ..Default::default()
    };
    let (_, tokens) = sign_in_with(&op, &without_consent, &alice).await;
    assert_eq!(tokens["scope"], "openid profile email read write");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");

    // A native client's loopback redirect may use any port (RFC 8252 section 7.3).
    let other_port = Authorization {
        redirect_uri: "http://127.0.0.1:45999/auth/callback".into(),
        ..Default::default()
    };
    let (_, tokens) = sign_in_with(&op, &other_port, &alice).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");

    // require_nonce: an openid authorization without nonce comes back with an error.
    let no_nonce = Authorization {
        extra: vec![("prompt", "consent")],
        ..Default::default()
    };
    let (_, params, _) = authorize(&op, &no_nonce, &alice).await;
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["error_description"], "nonce is required");
    drop(op);

    let op = OidcProvider::start(OidcConfig {
        refresh_without_offline_access: true,
        cli_exact_redirect_uris: true,
        conform_id_token_claims: false,
        ..Default::default()
    });
    let (_, tokens) = sign_in_with(&op, &without_consent, &alice).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com", "{id}");
    let (_, meta) = get_json(&op.discovery_url()).await;
    let url = format!(
        "{}?response_type=code&client_id={CLI_CLIENT_ID}&redirect_uri=http://127.0.0.1:45999/auth/callback&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        meta["authorization_endpoint"].as_str().unwrap(),
        b64(&sha2::Sha256::digest(b"v")),
    );
    let err = HttpBrowser::new()
        .authorize(&url, &alice)
        .await
        .unwrap_err();
    assert!(
        err.contains("showed an error") && err.contains("redirect_uri"),
        "{err}"
    );
}

#[tokio::test]
async fn device_flow_with_the_user_code_entered_over_http() {
    let op = OidcProvider::start(OidcConfig::default());
    let (_, meta) = get_json(&op.discovery_url()).await;
    let (status, device) = post_form(
        meta["device_authorization_endpoint"].as_str().unwrap(),
        &[("client_id", CLI_CLIENT_ID), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(status, 200, "{device}");
    let device_code = device["device_code"].as_str().unwrap();
    let token_endpoint = meta["token_endpoint"].as_str().unwrap();
    let form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", CLI_CLIENT_ID),
        ("device_code", device_code),
    ];
    let poll = || post_form(token_endpoint, &form);
    let (status, pending) = poll().await;
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );

    let browser = HttpBrowser::new();
    let login = Login::new("alice@example.com", "pw");
    let err = browser
        .approve_device(
            device["verification_uri"].as_str().unwrap(),
            "WRONG-CODE",
            &login,
        )
        .await
        .unwrap_err();
    assert!(err.contains("refused the user code"), "{err}");
    browser
        .approve_device(
            device["verification_uri"].as_str().unwrap(),
            device["user_code"].as_str().unwrap(),
            &login,
        )
        .await
        .unwrap();
    let (status, tokens) = poll().await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string() && tokens["refresh_token"].is_string());
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["sub"],
        "alice"
    );
    let (status, used) = poll().await;
    assert_eq!(
        (status, used["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The complete verification address (code filled in), answered with "Abort".
    let (_, device) = post_form(
        meta["device_authorization_endpoint"].as_str().unwrap(),
        &[("client_id", CLI_CLIENT_ID), ("scope", "openid")],
    )
    .await;
    let err = HttpBrowser::new()
        .approve_device(
            device["verification_uri_complete"].as_str().unwrap(),
            device["user_code"].as_str().unwrap(),
            &login.clone().denying(),
        )
        .await
        .unwrap_err();
    assert!(err.contains("after \"Abort\""), "{err}");
    let form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", CLI_CLIENT_ID),
        ("device_code", device["device_code"].as_str().unwrap()),
    ];
    let (status, denied) = post_form(token_endpoint, &form).await;
    assert_eq!(
        (status, denied["error"].as_str()),
        (400, Some("access_denied"))
    );
}

#[test]
fn openid_client_signs_in_refreshes_and_revokes_against_the_provider() {
    let secret = random();
    let callback = "http://127.0.0.1:9/rp/callback";
    let op = OidcProvider::start(OidcConfig {
        issuer_path: "/oidc".into(),
        rfc8414_path_insertion: true,
        clients: vec![peers::confidential_client("tool", &secret, &[callback])],
        ..Default::default()
    });
    let mut rp_config =
        RpConfig::new(op.issuer(), "tool", callback).with_secret(&secret, "client_secret_basic");
    rp_config.scope = "openid email offline_access".into();
    rp_config.params = vec![("prompt".into(), "consent".into())];
    // RFC 8414 discovery with the issuer's path inserted, as openid-client does it.
    rp_config.rfc8414 = true;
    let mut rp = RelyingParty::start(&rp_config).unwrap();
    let url = rp.authorization_url().unwrap();
    assert_eq!(rp.events()[0]["metadata"]["issuer"], op.issuer());
    let back =
        peers::block_on(HttpBrowser::new().authorize(&url, &Login::new("alice", "x"))).unwrap();
    let events = rp.finish(&back).unwrap();
    let steps: Vec<&str> = events.iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "discovery",
            "authorize",
            "token",
            "userinfo",
            "refresh",
            "revoke",
            "done"
        ]
    );
    assert_eq!(events[2]["claims"]["sub"], "alice");
    assert_eq!(events[2]["claims"]["aud"], "tool");
    assert_eq!(events[3]["response"]["email"], "alice@example.com");
    assert_ne!(
        events[4]["response"]["refresh_token"],
        events[2]["response"]["refresh_token"]
    );

    // A wrong secret: the library's error event, with the server's error code.
    let mut rp = RelyingParty::start(
        &RpConfig::new(op.issuer(), "tool", callback).with_secret("wrong", "client_secret_post"),
    )
    .unwrap();
    let url = rp.authorization_url().unwrap();
    let back =
        peers::block_on(HttpBrowser::new().authorize(&url, &Login::new("alice", "x"))).unwrap();
    let err = rp.finish(&back).unwrap_err();
    assert!(
        err.contains(r#""at":"token""#) && err.contains("invalid_client"),
        "{err}"
    );
}

/// The benchmark's chains (`cargo xtask bench-server`): each minted token refreshes, rotates,
/// carries an ID token exactly when `openid` is in its scope, and is refused when replayed.
#[test]
fn minted_benchmark_refresh_tokens_rotate_like_signed_in_ones() {
    for (scope, id_token) in [("openid offline_access", true), ("offline_access", false)] {
        let provider = OidcProvider::start(OidcConfig {
            bench_refresh_tokens: Some((2, scope.to_owned())),
            ..Default::default()
        });
        let tokens = provider.refresh_tokens().to_vec();
        assert_eq!(tokens.len(), 2);
        assert_ne!(tokens[0], tokens[1]);
        let url = format!("{}/token", provider.issuer());
        let refresh = |rt: String| {
            let url = url.clone();
            peers::block_on(async move {
                let r = http()
                    .post(&url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", CLI_CLIENT_ID),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        };
        let (status, v) = refresh(tokens[0].clone());
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["scope"], scope);
        assert_eq!(v["id_token"].is_string(), id_token, "{v}");
        let next = v["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(next, tokens[0]);
        assert_eq!(refresh(next).0, 200);
        let (status, v) = refresh(tokens[0].clone());
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
    }
}

#[test]
fn a_bad_configuration_fails_with_the_providers_message() {
    let err = OidcProvider::try_start(OidcConfig {
        clients: vec![serde_json::json!({
            "client_id": "broken", "client_secret": "s",
            "redirect_uris": ["https://example.com/cb#fragment"],
        })],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.contains("invalid client \"broken\"") && err.contains("must not contain fragments"),
        "{err}"
    );
}

#[test]
fn server_everything_answers_initialize_over_stdio() {
    let mut child = McpEverything::locate()
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"mogplex-testkit","version":"0"}}}}}}"#
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let reply: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["id"], 1);
    assert_eq!(
        reply["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );
    assert_eq!(reply["result"]["protocolVersion"], "2025-11-25");
    assert!(reply["result"]["capabilities"]["tools"].is_object());
}

#[test]
fn with_keyring_gives_a_private_unlocked_secret_service() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/with-keyring");
    let out = std::process::Command::new(script)
        .args([
            "sh",
            "-c",
            "printf %s s3cret | secret-tool store --label=probe service mogplex-testkit username alice \
             && secret-tool lookup service mogplex-testkit username alice && printf '\\n%s' \"$HOME\"",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (secret, home) = stdout.split_once('\n').unwrap();
    assert_eq!(secret, "s3cret");
    assert!(home.contains("mogplex-keyring."), "{home}");
    assert!(
        !std::path::Path::new(home).exists(),
        "the temporary home is removed"
    );
}
