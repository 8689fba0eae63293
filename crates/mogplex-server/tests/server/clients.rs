//! Registered clients and consent: `client add|list|remove` (bad registrations refused with RFC
//! 7591 codes), a confidential client through openid-client with `client_secret_basic` and
//! `client_secret_post`, introspection and revocation of its own tokens only, client
//! authentication mistakes answered with the standard errors; and the consent page, asked on a
//! client's first authorization and on every loopback one, remembered only for registered
//! clients with non-loopback redirects, approved only by a CSRF-protected POST.

use crate::both;
use crate::harness::*;
use crate::oidc::{SECRETS_KEY, oidc_server, relying_party};
use mogplex_server::crypto;
use mogplex_server::db::clients::ClientRow;
use mogplex_testkit::peers::{Login, RpConfig};
use serde_json::Value;

const APP_REDIRECT: &str = "https://app.example/callback";

fn server_bin(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
        .args(args)
        .env("MOGPLEX_SECRETS_KEY", SECRETS_KEY)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `client add` through the binary: the secret it printed once, if confidential.
fn add_client(db: &str, id: &str, extra: &[&str]) -> Option<String> {
    let mut args = vec![
        "client",
        "add",
        "--database",
        db,
        "--id",
        id,
        "--name",
        "Example App",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = server_bin(&args);
    assert_eq!(code, 0, "{err}");
    let out = out.trim();
    (out != id).then(|| out.to_owned())
}

async fn public_client(s: &TestServer, id: &str, redirects: &[&str]) {
    let row = ClientRow {
        client_id: id.into(),
        name: format!("App {id}"),
        secret_hash: None,
        auth_method: "none".into(),
        redirect_uris: redirects.iter().map(|r| (*r).to_owned()).collect(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        created_at: 0,
        dynamic: false,
    };
    assert!(s.db().add_client(&row).await.unwrap());
}

/// A signed-in browser's authorization request for `client_id`; the first answer.
async fn authorize(
    s: &TestServer,
    b: &reqwest::Client,
    client_id: &str,
    redirect: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let p = pkce();
    let mut u = url::Url::parse(&format!("{}/api/auth/mcp/authorize", s.url)).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", "st")
        .append_pair("code_challenge", &p.challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    b.get(u.as_str()).send().await.unwrap()
}

async fn signed_in_browser(s: &TestServer) -> reqwest::Client {
    let b = browser();
    let r = sign_in(s, &b, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
    b
}

async fn consent_is_asked_and_remembered_only_where_safe(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    public_client(&s, "web-app", &[APP_REDIRECT]).await;
    let br = signed_in_browser(&s).await;

    // First authorization: the page names the client, the scopes, the redirect.
    let r = authorize(&s, &br, "web-app", APP_REDIRECT, "openid email", &[]).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    for wanted in [
        "App web-app",
        "web-app",
        "openid",
        "see your email address",
        APP_REDIRECT,
    ] {
        assert!(page.contains(wanted), "{wanted} in {page}");
    }
    // The answer needs the CSRF token; a forged POST is refused and issues nothing.
    let forged = br
        .post(format!("{}/api/auth/mcp/consent", s.url))
        .form(&[
            ("csrf", "x".repeat(43).as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(s.count("SELECT COUNT(*) FROM auth_codes").await, 0);
    // Without a session: back to the sign-in page.
    let r = plain()
        .post(format!("{}/api/auth/mcp/consent", s.url))
        .form(&[
            ("request", hidden(&page, "request").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?next="), "{}", location(&r));

    // Deny: access_denied to the client, nothing remembered.
    let r = authorize(&s, &br, "web-app", APP_REDIRECT, "openid email", &[]).await;
    let r = answer_consent(&s, &br, r, "deny").await;
    let to = location(&r);
    assert!(to.starts_with(APP_REDIRECT), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(s.count("SELECT COUNT(*) FROM consents").await, 0);

    // Allow: a code, and the approval is remembered for these scopes.
    let r = authorize(&s, &br, "web-app", APP_REDIRECT, "openid email", &[]).await;
    let r = approve_consent(&s, &br, r).await;
    assert!(query_param(&location(&r), "code").is_some());
    let r = authorize(&s, &br, "web-app", APP_REDIRECT, "openid", &[]).await;
    assert_eq!(r.status(), 303, "remembered: no page");
    assert!(query_param(&location(&r), "code").is_some());
    // Wider scope, or prompt=consent: asked again.
    let r = authorize(
        &s,
        &br,
        "web-app",
        APP_REDIRECT,
        "openid email profile",
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = authorize(
        &s,
        &br,
        "web-app",
        APP_REDIRECT,
        "openid",
        &[("prompt", "consent")],
    )
    .await;
    assert_eq!(r.status(), 200);

    // Loopback redirects ask every time, the CLI's and a registered native client's (any port).
    public_client(&s, "native", &["http://127.0.0.1:7000/cb"]).await;
    for (client, redirect) in [
        ("mogplex-cli", REDIRECT),
        ("mogplex-cli", "http://127.0.0.1:40111/auth/callback"),
        ("native", "http://127.0.0.1:7000/cb"),
        ("native", "http://127.0.0.1:7123/cb"),
    ] {
        for _ in 0..2 {
            let r = authorize(&s, &br, client, redirect, "openid", &[]).await;
            assert_eq!(r.status(), 200, "{client} {redirect}");
            let page = r.text().await.unwrap();
            assert!(page.contains("id=\"loopback\""), "{page}");
            let r = br
                .post(format!("{}/api/auth/mcp/consent", s.url))
                .form(&[
                    ("csrf", hidden(&page, "csrf").as_str()),
                    ("request", hidden(&page, "request").as_str()),
                    ("decision", "allow"),
                ])
                .send()
                .await
                .unwrap();
            assert!(location(&r).starts_with(redirect));
        }
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM consents").await,
        1,
        "only web-app's"
    );
    // An unregistered redirect of a registered client is shown as an error, never redirected.
    let r = authorize(
        &s,
        &br,
        "web-app",
        "https://evil.example/callback",
        "openid",
        &[],
    )
    .await;
    assert_eq!(r.status(), 400);
}
both!(consent_is_asked_and_remembered_only_where_safe);

async fn confidential_clients_through_openid_client(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let id = format!("app-{method}");
        let secret = add_client(
            &s.database,
            &id,
            &[
                "--confidential",
                "--auth-method",
                method,
                "--redirect-uri",
                APP_REDIRECT,
            ],
        )
        .unwrap();
        assert!(secret.starts_with("mog_cs_"));
        assert_eq!(
            s.count(&format!(
                "SELECT COUNT(*) FROM oauth_clients WHERE secret_hash = '{}'",
                crypto::hash(&secret)
            ))
            .await,
            1,
            "stored as its hash"
        );
        let mut cfg = RpConfig::new(&s.url, &id, APP_REDIRECT).with_secret(&secret, method);
        cfg.scope = "openid email offline_access".into();
        cfg.steps = vec!["userinfo".into(), "refresh".into()];
        let events = relying_party(cfg, Login::new("ada@example.com", PASSWORD))
            .await
            .unwrap();
        let refreshed = events.iter().find(|e| e["step"] == "refresh").unwrap();
        assert_eq!(refreshed["claims"]["aud"], id.as_str());
        let access = refreshed["response"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let refresh_token = refreshed["response"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();

        // Introspection of its own tokens, authenticated its way.
        let introspect = |token: String, creds: (String, String)| {
            let url = format!("{}/api/auth/mcp/introspect", s.url);
            async move {
                let r = plain()
                    .post(url)
                    .basic_auth(creds.0, Some(creds.1))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        if method == "client_secret_basic" {
            let (st, body) = introspect(access.clone(), (id.clone(), secret.clone())).await;
            assert_eq!(st, 200, "{body}");
            assert_eq!(body["active"], true);
            assert_eq!(body["client_id"], id.as_str());
            assert_eq!(body["username"], "ada@example.com");
            let (_, body) = introspect(refresh_token.clone(), (id.clone(), secret.clone())).await;
            assert_eq!(body["active"], true);
            // Another client's token is inactive to it.
            let (cli_access, _) = signed_in_tokens(&s, "ada@example.com").await;
            let (_, body) = introspect(cli_access.clone(), (id.clone(), secret.clone())).await;
            assert_eq!(body, serde_json::json!({"active": false}));
            // ...and it cannot revoke it.
            let r = plain()
                .post(format!("{}/api/auth/mcp/revoke", s.url))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", cli_access.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(whoami(&s, &cli_access).await.0, 200, "not revoked");
            // Nor may anyone revoke this client's tokens without its secret.
            let r = plain()
                .post(format!("{}/api/auth/mcp/revoke", s.url))
                .form(&[("token", access.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                introspect(access.clone(), (id.clone(), secret.clone()))
                    .await
                    .1["active"],
                true
            );
            // It revokes its own; introspection then says inactive.
            let r = plain()
                .post(format!("{}/api/auth/mcp/revoke", s.url))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", refresh_token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                introspect(access.clone(), (id.clone(), secret.clone()))
                    .await
                    .1["active"],
                false
            );
            // A wrong secret: 401 invalid_client.
            let (st, body) = introspect(access.clone(), (id.clone(), "mog_cs_wrong".into())).await;
            assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
        } else {
            // Secret in the body: its registered method; Basic for it is refused.
            let r = plain()
                .post(format!("{}/api/auth/mcp/introspect", s.url))
                .form(&[
                    ("token", access.as_str()),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
            let (st, body) = introspect(access.clone(), (id.clone(), secret.clone())).await;
            assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
            // The secret both ways at once: invalid_request.
            let r = plain()
                .post(format!("{}/api/auth/mcp/token", s.url))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400);
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
        }
    }
}
both!(confidential_clients_through_openid_client);

async fn client_authentication_mistakes_get_standard_errors(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    let secret = add_client(
        &s.database,
        "conf",
        &["--confidential", "--redirect-uri", APP_REDIRECT],
    )
    .unwrap();
    public_client(&s, "pub", &[APP_REDIRECT]).await;
    let post = |form: Vec<(&'static str, String)>, basic: Option<(&'static str, String)>| {
        let url = format!("{}/api/auth/mcp/token", s.url);
        async move {
            let mut req = plain().post(url).form(&form);
            if let Some((u, p)) = basic {
                req = req.basic_auth(u, Some(p));
            }
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap()["error"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    let refresh = || ("grant_type", "refresh_token".to_owned());
    let rt = || ("refresh_token", "mog_rt_x".to_owned());
    for (form, basic, wanted) in [
        // The secret both ways at once.
        (
            vec![refresh(), rt(), ("client_secret", secret.clone())],
            Some(("conf", secret.clone())),
            (400, "invalid_request"),
        ),
        // A confidential client without its secret, with a wrong one, with the wrong method.
        (
            vec![refresh(), rt(), ("client_id", "conf".into())],
            None,
            (401, "invalid_client"),
        ),
        (
            vec![refresh(), rt()],
            Some(("conf", "mog_cs_nope".into())),
            (401, "invalid_client"),
        ),
        (
            vec![
                refresh(),
                rt(),
                ("client_id", "conf".into()),
                ("client_secret", secret.clone()),
            ],
            None,
            (401, "invalid_client"),
        ),
        // A public client sending a secret; an unknown client.
        (
            vec![
                refresh(),
                rt(),
                ("client_id", "pub".into()),
                ("client_secret", "x".into()),
            ],
            None,
            (401, "invalid_client"),
        ),
        (
            vec![refresh(), rt(), ("client_id", "nobody".into())],
            None,
            (401, "invalid_client"),
        ),
        // A grant the client is not registered for.
        (
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("device_code", "x".into()),
                ("client_id", "pub".into()),
            ],
            None,
            (400, "unauthorized_client"),
        ),
        // Right secret, real grant check: the refresh token is unknown.
        (
            vec![refresh(), rt()],
            Some(("conf", secret.clone())),
            (400, "invalid_grant"),
        ),
    ] {
        assert_eq!(
            post(form.clone(), basic).await,
            (wanted.0, wanted.1.to_owned()),
            "{form:?}"
        );
    }
    // A public client cannot introspect.
    let r = plain()
        .post(format!("{}/api/auth/mcp/introspect", s.url))
        .form(&[("token", "x"), ("client_id", "pub")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The metadata lists the methods.
    let m: Value = plain()
        .get(format!("{}/.well-known/oauth-authorization-server", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
}
both!(client_authentication_mistakes_get_standard_errors);

async fn client_commands_refuse_bad_registrations(b: Backend) {
    let s = oidc_server(b).await;
    let db = s.database.as_str();
    let thousand: Vec<String> = (0..1000)
        .map(|i| format!("https://app.example/cb{i}"))
        .collect();
    let mut many = vec!["client", "add", "--database", db, "--name", "Many"];
    for u in &thousand {
        many.push("--redirect-uri");
        many.push(u);
    }
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--redirect-uri", "http://app.example/cb"],
            "not a loopback address",
        ),
        (
            vec!["--redirect-uri", "https://app.example/cb#frag"],
            "fragment",
        ),
        (vec!["--redirect-uri", "https://*.example/cb"], "wildcard"),
        (vec!["--redirect-uri", "https://app.example/*"], "wildcard"),
        (vec!["--redirect-uri", "myapp://cb"], "scheme"),
        (vec![], "needs at least one redirect URI"),
        (
            vec!["--redirect-uri", APP_REDIRECT, "--grant-type", "password"],
            "invalid_client_metadata",
        ),
        (
            vec![
                "--redirect-uri",
                APP_REDIRECT,
                "--auth-method",
                "client_secret_post",
            ],
            "needs --confidential",
        ),
    ];
    for (extra, wanted) in cases {
        let mut args = vec!["client", "add", "--database", db, "--name", "Bad"];
        args.extend(extra.iter());
        let (code, out, err) = server_bin(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(wanted) && err.contains("hint: "),
            "{extra:?}: {err}"
        );
        assert!(out.is_empty());
    }
    let (code, _, err) = server_bin(&many);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid_redirect_uri: 1000 redirect URIs"),
        "{err}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients").await,
        0,
        "nothing stored"
    );

    // list and remove.
    add_client(db, "keep", &["--redirect-uri", APP_REDIRECT]);
    let (code, out, _) = server_bin(&["client", "list", "--database", db, "--json"]);
    assert_eq!(code, 0);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["redirect_uris"],
        serde_json::json!([APP_REDIRECT])
    );
    let (code, _, err) = server_bin(&[
        "client",
        "add",
        "--database",
        db,
        "--id",
        "keep",
        "--name",
        "Again",
        "--redirect-uri",
        APP_REDIRECT,
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = server_bin(&["client", "remove", "--database", db, "--id", "keep"]);
    assert_eq!(code, 0);
    let (code, _, err) = server_bin(&["client", "remove", "--database", db, "--id", "keep"]);
    assert_eq!(code, 2);
    assert!(err.contains("hint: see `mogplex-server client list`"));
    let (code, _, _) = server_bin(&["client", "remove", "--database", db, "--id", "mogplex-cli"]);
    assert_eq!(code, 2);
}
both!(client_commands_refuse_bad_registrations);

/// A registered client with the device grant: its code's confirmation page names it, and the
/// tokens are its own.
async fn device_grant_of_a_registered_client(b: Backend) {
    let s = oidc_server(b).await;
    s.user("ada@example.com").await;
    add_client(
        &s.database,
        "tv-app",
        &[
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
    );
    let (status, d, _) = {
        let r = plain()
            .post(format!("{}/api/auth/mcp/device", s.url))
            .form(&[("client_id", "tv-app"), ("scope", "openid")])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(status, 200, "{d}");
    let user_code = d["user_code"].as_str().unwrap();
    let br = signed_in_browser(&s).await;
    let page = br
        .get(format!("{}/device", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = br
        .post(format!("{}/device", s.url))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in to Example App?"), "{page}");
    // The CLI cannot redeem another client's device code; an unregistered grant is refused.
    let (st, body, _) = token(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "mogplex-cli"),
            ("device_code", d["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    let (st, body, _) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "tv-app"),
            ("code", "x"),
            ("redirect_uri", APP_REDIRECT),
            ("code_verifier", &"v".repeat(43)),
        ],
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}
both!(device_grant_of_a_registered_client);
