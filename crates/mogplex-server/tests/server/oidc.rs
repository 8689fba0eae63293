//! The OpenID provider: openid-client (a certified relying party, the pinned npm peer) completes
//! discovery, code + PKCE + nonce with the ID token's signature checked against the JWKS,
//! userinfo, refresh and revocation; signing keys rotate with the new key published before it
//! signs and the old one kept until its tokens expire, two servers on one database agreeing;
//! and the OpenID request parameters it does not support are refused with standard errors.

use crate::both;
use crate::harness::*;
use base64::Engine;
use mogplex_protocol::{JwkSet, OpenIdProviderMetadata, routes};
use mogplex_server::Config;
use mogplex_testkit::peers::{HttpBrowser, Login, RelyingParty, RpConfig};
use serde_json::Value;

pub const SECRETS_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// OpenID Connect on (a secrets key), keys read from the database on every use.
pub fn oidc_config(c: &mut Config) {
    c.env
        .insert("MOGPLEX_SECRETS_KEY".into(), SECRETS_KEY.into());
    c.key_cache_secs = 0;
}

pub async fn oidc_server(b: Backend) -> TestServer {
    TestServer::start_with(b, oidc_config).await
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// The header and claims of a compact JWS.
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    let mut it = jwt.split('.');
    let h = serde_json::from_slice(&b64(it.next().unwrap())).unwrap();
    let c = serde_json::from_slice(&b64(it.next().unwrap())).unwrap();
    (h, c)
}

/// Whether `jwt` verifies against a key of `set` (by kid, ES256).
pub fn verifies(jwt: &str, set: &JwkSet) -> bool {
    let (h, _) = jwt_parts(jwt);
    let Some(k) = set
        .keys
        .iter()
        .find(|k| Some(k.kid.as_str()) == h["kid"].as_str())
    else {
        return false;
    };
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let mut point = vec![4u8];
    point.extend(b64(k.x.as_deref().unwrap()));
    point.extend(b64(k.y.as_deref().unwrap()));
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        point,
    )
    .verify(input.as_bytes(), &b64(sig))
    .is_ok()
}

pub async fn jwks(s: &(impl Base + ?Sized)) -> JwkSet {
    plain()
        .get(format!("{}{}", s.base(), routes::JWKS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// openid-client signs `login` in through `HttpBrowser` and runs its steps; all its events.
pub async fn relying_party(cfg: RpConfig, login: Login) -> Result<Vec<Value>, String> {
    let (rp, url) = tokio::task::spawn_blocking(move || {
        let mut rp = RelyingParty::start(&cfg)?;
        let url = rp.authorization_url()?;
        Ok::<_, String>((rp, url))
    })
    .await
    .unwrap()?;
    let back = HttpBrowser::new().authorize(&url, &login).await?;
    tokio::task::spawn_blocking(move || rp.finish(&back))
        .await
        .unwrap()
}

fn event<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["step"] == step)
        .unwrap_or_else(|| panic!("no {step} in {events:?}"))
}

async fn openid_client_completes_discovery_code_userinfo_refresh_and_revocation(b: Backend) {
    let s = oidc_server(b).await;
    let uid = s.user("ada@example.com").await;
    let mut cfg = RpConfig::new(&s.url, "mogplex-cli", REDIRECT);
    cfg.scope = "openid profile email offline_access".into();
    let events = relying_party(cfg, Login::new("ada@example.com", PASSWORD))
        .await
        .unwrap();

    let meta: OpenIdProviderMetadata =
        serde_json::from_value(event(&events, "discovery")["metadata"].clone()).unwrap();
    assert_eq!(meta, mogplex_server::oidc::discovery_document(&s.url));
    let nonce = event(&events, "authorize")["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = event(&events, "token");
    let claims = &token["claims"];
    assert_eq!(claims["iss"], s.url.as_str());
    assert_eq!(claims["sub"], uid.as_str());
    assert_eq!(claims["aud"], "mogplex-cli");
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["name"], "Test");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!(claims["auth_time"].as_i64().unwrap() <= iat);
    let id_token = token["response"]["id_token"].as_str().unwrap();
    let (header, _) = jwt_parts(id_token);
    assert_eq!(header["alg"], "ES256");
    assert!(verifies(id_token, &jwks(&s).await));

    let info = &event(&events, "userinfo")["response"];
    assert_eq!(info["sub"], uid.as_str());
    assert_eq!(info["email"], "ada@example.com");

    // The refresh's ID token repeats the sign-in time and carries no nonce.
    let refreshed = event(&events, "refresh");
    assert_eq!(refreshed["claims"]["auth_time"], claims["auth_time"]);
    assert_eq!(refreshed["claims"]["sub"], uid.as_str());
    assert!(refreshed["claims"].get("nonce").is_none());

    // Revocation of the refreshed refresh token ended the sign-in.
    let rt = refreshed["response"]["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&s, rt).await.0, 400);
    let at = refreshed["response"]["access_token"].as_str().unwrap();
    assert_eq!(whoami(&s, at).await.0, 401);
}
both!(openid_client_completes_discovery_code_userinfo_refresh_and_revocation);

/// Scope decides the claims: without `email` and `profile` the ID token and userinfo say only
/// who; without `openid` there is no ID token, and userinfo refuses the token.
async fn claims_follow_the_scope(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    let mut cfg = RpConfig::new(&s.url, "mogplex-cli", REDIRECT);
    cfg.scope = "openid".into();
    let events = relying_party(cfg, Login::new("ada@example.com", PASSWORD))
        .await
        .unwrap();
    let claims = &event(&events, "token")["claims"];
    assert!(
        claims.get("email").is_none() && claims.get("name").is_none(),
        "{claims}"
    );
    let info = &event(&events, "userinfo")["response"];
    assert!(info.get("email").is_none(), "{info}");

    // No openid: an OAuth sign-in, and userinfo answers insufficient_scope.
    let mut cfg = RpConfig::new(&s.url, "mogplex-cli", REDIRECT);
    cfg.scope = "read offline_access".into();
    cfg.rfc8414 = true;
    cfg.steps = vec![];
    let events = relying_party(cfg, Login::new("ada@example.com", PASSWORD))
        .await
        .unwrap();
    let response = &event(&events, "token")["response"];
    assert!(response.get("id_token").is_none(), "{response}");
    let r = plain()
        .get(format!("{}{}", s.url, routes::USERINFO))
        .bearer_auth(response["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    // A bad bearer: 401 invalid_token, JSON.
    let r = plain()
        .post(format!("{}{}", s.url, routes::USERINFO))
        .bearer_auth("mog_at_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
}
both!(claims_follow_the_scope);

/// The address an authorization request with `extra` parameters is sent back to, for a
/// signed-in browser.
async fn authorize_answer(s: &TestServer, extra: &[(&str, &str)]) -> (u16, String) {
    let client = browser();
    let r = sign_in(s, &client, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
    let p = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let r = client
        .get(authorize_url(s, REDIRECT, &params))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let to = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, to)
}

async fn unsupported_openid_parameters_are_refused(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    // A 10 KB nonce makes the address longer than the server reads at all: 431, before any
    // handler; one over the nonce bound but within the address limit is invalid_request.
    let (status, _) = authorize_answer(&s, &[("nonce", &"n".repeat(10 * 1024))]).await;
    assert_eq!(status, 431);
    let long_nonce = "n".repeat(1024);
    for (extra, wanted) in [
        (vec![("nonce", long_nonce.as_str())], "nonce"),
        (vec![("max_age", "0")], "max_age"),
        (vec![("prompt", "login")], "prompt=login"),
        (vec![("prompt", "none")], "prompt=none"),
        (
            vec![("prompt", "select_account consent")],
            "prompt=select_account",
        ),
    ] {
        let (status, to) = authorize_answer(&s, &extra).await;
        assert_eq!(status, 303, "{extra:?}");
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request"),
            "{to}"
        );
        assert!(
            query_param(&to, "error_description")
                .unwrap()
                .contains(wanted),
            "{to}"
        );
        assert_eq!(query_param(&to, "state").as_deref(), Some("st"));
        assert!(query_param(&to, "code").is_none());
    }
    // A nonce within bounds, and prompt=consent, are fine: on to the consent page.
    let n = "n".repeat(512);
    for extra in [vec![("nonce", n.as_str())], vec![("prompt", "consent")]] {
        let (status, to) = authorize_answer(&s, &extra).await;
        assert_eq!((status, to.as_str()), (200, ""), "{extra:?}");
    }
}
both!(unsupported_openid_parameters_are_refused);

/// Without MOGPLEX_SECRETS_KEY the provider is off: discovery says so in JSON, tokens come
/// without an ID token, and the OAuth sign-in works as before.
async fn without_a_secrets_key_openid_connect_is_off(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.env.remove("MOGPLEX_SECRETS_KEY");
    })
    .await;
    s.user("ada@example.com").await;
    let r = plain()
        .get(format!("{}{}", s.url, routes::OPENID_CONFIGURATION))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("MOGPLEX_SECRETS_KEY")
    );
    let (code, p) = get_code(&s, "ada@example.com", REDIRECT).await;
    let (status, body) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(status, 200);
    assert!(body.get("id_token").is_none(), "{body}");
}
both!(without_a_secrets_key_openid_connect_is_off);

/// An ID token from the code flow of `s` (harness browser, no nonce).
async fn id_token_from(s: &TestServer) -> String {
    let (code, p) = get_code(s, "ada@example.com", REDIRECT).await;
    let (status, body) = exchange(s, &code, &p, REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    body["id_token"].as_str().unwrap().to_owned()
}

fn kid(jwt: &str) -> String {
    jwt_parts(jwt).0["kid"].as_str().unwrap().to_owned()
}

fn kids(set: &JwkSet) -> Vec<String> {
    let mut k: Vec<String> = set.keys.iter().map(|k| k.kid.clone()).collect();
    k.sort();
    k
}

/// Two servers on one database: a rotated-in key is published by both before either signs with
/// it; once its time comes both sign with it; tokens of the old key keep verifying against the
/// published set until they have expired, then the old key is gone from it.
async fn keys_rotate_without_breaking_issued_tokens(b: Backend) {
    let (database, dir, pg) = empty_database(b).await;
    let a = TestServer::on_database(&database, dir, pg, oidc_config).await;
    let second = tempfile::tempdir().unwrap();
    let bsrv = TestServer::on_database(&database, second, None, oidc_config).await;
    a.user("ada@example.com").await;

    let before = id_token_from(&a).await;
    let old = kid(&before);
    assert_eq!(
        kid(&id_token_from(&bsrv).await),
        old,
        "one current key for both"
    );
    assert_eq!(kids(&jwks(&a).await), vec![old.clone()]);

    // Rotate (as `mogplex-server keys rotate` does): published at once, signing in 300 s.
    let sealer = mogplex_server::secrets::SecretBox::from_config(&a.state.cfg).unwrap();
    let new = mogplex_server::oidc::keys::rotate(a.db(), &sealer, 300)
        .await
        .unwrap()
        .kid;
    for s in [&a, &bsrv] {
        let mut both = vec![old.clone(), new.clone()];
        both.sort();
        assert_eq!(kids(&jwks(s).await), both);
        assert_eq!(
            kid(&id_token_from(s).await),
            old,
            "not signing before its time"
        );
    }

    // Its time comes: both servers sign with it; the old token still verifies.
    // (Every key moved back by more than the lead: their order stays, the new one's time has come.)
    a.sql(
        "UPDATE signing_keys SET activates_at = activates_at - 400, created_at = created_at - 400",
    )
    .await;
    for s in [&a, &bsrv] {
        let t = id_token_from(s).await;
        assert_eq!(kid(&t), new);
        let set = jwks(s).await;
        assert!(verifies(&t, &set) && verifies(&before, &set));
    }

    // Once every token of the old key has expired (the ID token lifetime after the new key
    // took over), the old key is no longer published.
    a.sql("UPDATE signing_keys SET activates_at = activates_at - 3600, created_at = created_at - 3600")
        .await;
    for s in [&a, &bsrv] {
        let set = jwks(s).await;
        assert_eq!(kids(&set), vec![new.clone()]);
        assert!(!verifies(&before, &set));
    }
    drop(bsrv);
}
both!(keys_rotate_without_breaking_issued_tokens);

fn server_bin(args: &[&str], secrets_key: Option<&str>) -> (i32, String, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"));
    c.args(args).env_remove("MOGPLEX_SECRETS_KEY");
    if let Some(k) = secrets_key {
        c.env("MOGPLEX_SECRETS_KEY", k);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `keys rotate` and `keys list` against a database a server signs from.
async fn keys_commands(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    let first = kid(&id_token_from(&s).await);
    let db = s.database.as_str();

    // Without the secrets key: a clear error, nothing added.
    let (code, _, err) = server_bin(&["keys", "rotate", "--database", db], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: cannot make a signing key")
            && err.contains("hint: set MOGPLEX_SECRETS_KEY"),
        "{err}"
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM signing_keys").await, 1);

    let (code, out, err) = server_bin(
        &["keys", "rotate", "--database", db, "--lead", "600"],
        Some(SECRETS_KEY),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published now, signing from"), "{out}");
    let (code, out, _) = server_bin(&["keys", "list", "--database", db, "--json"], None);
    assert_eq!(code, 0);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states[0], (first.as_str(), "current"));
    assert_eq!(states[1].1, "next");
    assert_eq!(jwks(&s).await.keys.len(), 2);
    // The server still signs with the first key, and the private parts are sealed.
    assert_eq!(kid(&id_token_from(&s).await), first);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM signing_keys WHERE private_sealed LIKE '%PRIVATE%' OR private_sealed LIKE 'MIG%'").await,
        0
    );
}
both!(keys_commands);

/// Unknown discovery documents and API paths answer a JSON 404; pages stay HTML.
async fn unknown_well_known_and_api_paths_answer_json(b: Backend) {
    let s = TestServer::start(b).await;
    for path in [
        "/.well-known/webfinger",
        "/.well-known/oauth-protected-resource/x",
        "/api/auth/mcp/nothing",
        "/api/auth/nothing",
        "/api/cli/nothing",
        "/api/nothing",
    ] {
        for post in [false, true] {
            let url = format!("{}{path}", s.url);
            let r = if post {
                plain().post(&url)
            } else {
                plain().get(&url)
            }
            .send()
            .await
            .unwrap();
            assert_eq!(r.status(), 404, "{path}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{path}"
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "not_found", "{path}");
        }
    }
    let r = plain()
        .get(format!("{}/nothing", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
both!(unknown_well_known_and_api_paths_answer_json);

/// A `serve` process on `database` with the secrets key; its URL, stopped on drop.
struct Serve(std::process::Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(database: &str, log: &std::path::Path) -> Serve {
    let mut running = Serve(
        std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
            .args(["serve", "--database", database, "--listen", "127.0.0.1:0"])
            .env("MOGPLEX_SECRETS_KEY", SECRETS_KEY)
            .env_remove("MOGPLEX_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
        String::new(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.split_once(" as ")?.1.split(' ').next().map(str::to_owned))
        {
            assert!(!text.contains("OpenID Connect is off"), "{text}");
            running.1 = url;
            return running;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not start: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Two real `serve` processes on one PostgreSQL database and `keys rotate` from a third: both
/// publish the same keys, before and after the rotation, and both sign with the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_on_one_postgres_publish_and_sign_alike() {
    let (database, dir, pg) = empty_database(Backend::Postgres).await;
    // The harness server owns the database (dropped with it) and makes the first key.
    let s = TestServer::on_database(&database, dir, pg, oidc_config).await;
    s.user("ada@example.com").await;
    let first = kid(&id_token_from(&s).await);
    let logs = tempfile::tempdir().unwrap();
    let p1 = serve(&database, &logs.path().join("1.log"));
    let p2 = serve(&database, &logs.path().join("2.log"));
    for p in [&p1, &p2] {
        assert_eq!(kids(&jwks(p.1.as_str()).await), vec![first.clone()]);
        let (code, pkce) = get_code(p.1.as_str(), "ada@example.com", REDIRECT).await;
        let (status, body) = exchange(p.1.as_str(), &code, &pkce, REDIRECT).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            kid(body["id_token"].as_str().unwrap()),
            first,
            "the same current key"
        );
    }
    let (code, out, err) = server_bin(
        &["keys", "rotate", "--database", &database],
        Some(SECRETS_KEY),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("in 300 s"), "{out}");
    // A process that has read the keys keeps them up to 30 s: long before the new key signs.
    // The harness server reads them every time: it publishes both at once and still signs
    // with the first.
    let both = kids(&jwks(&s).await);
    assert_eq!(both.len(), 2);
    assert!(both.contains(&first));
    assert_eq!(kid(&id_token_from(&s).await), first);
}
