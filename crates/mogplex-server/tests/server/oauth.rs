//! Authorization code + PKCE, refresh rotation, revocation, and the bearer check.

use crate::both;
use crate::harness::*;
use futures_util::future::join_all;

async fn metadata(b: Backend) {
    let s = TestServer::start(b).await;
    let m: serde_json::Value = plain()
        .get(format!("{}/.well-known/oauth-authorization-server", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], s.url);
    assert_eq!(
        m["authorization_endpoint"],
        format!("{}/api/auth/mcp/authorize", s.url)
    );
    assert_eq!(m["token_endpoint"], format!("{}/api/auth/mcp/token", s.url));
    assert_eq!(
        m["revocation_endpoint"],
        format!("{}/api/auth/mcp/revoke", s.url)
    );
    assert_eq!(
        m["device_authorization_endpoint"],
        format!("{}/api/auth/mcp/device", s.url)
    );
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}
both!(metadata);

async fn full_code_flow(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (code, p) = get_code(&s, "ada@example.com", REDIRECT).await;
    let (status, body, headers) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "mogplex-cli"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"],
        "openid profile email offline_access read write"
    );
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        whoami(&s, access).await,
        (200, Some("ada@example.com".into()))
    );
    // Nothing is stored in the clear.
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM access_tokens WHERE token_hash = '{access}'"
        ))
        .await,
        0
    );
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM auth_codes WHERE code_hash = '{code}'"
        ))
        .await,
        0
    );
    // Authenticated but unknown /api/v1 path: 404 in the v1 envelope; no token: 401.
    let r = plain()
        .get(format!("{}/api/v1/nothing", s.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = plain()
        .get(format!("{}/api/v1/nothing", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"mogplex\"");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "unauthorized");
    // /api/auth/user without a token: {"user":null}; with a bad one: 401.
    let r = plain()
        .get(format!("{}/api/auth/user", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"user": null})
    );
    assert_eq!(whoami(&s, "mog_at_nonsense").await, (401, None));
}
both!(full_code_flow);

async fn code_replay_revokes_what_it_issued(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (code, p) = get_code(&s, "ada@example.com", REDIRECT).await;
    let (status, first) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(status, 200);
    let (status, again) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        whoami(&s, first["access_token"].as_str().unwrap()).await.0,
        401,
        "the replay revoked the access token"
    );
    assert_eq!(
        refresh(&s, first["refresh_token"].as_str().unwrap())
            .await
            .0,
        400,
        "and the refresh token"
    );
}
both!(code_replay_revokes_what_it_issued);

async fn parallel_redemptions_have_one_winner(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (code, p) = get_code(&s, "ada@example.com", REDIRECT).await;
    let results = join_all((0..10).map(|_| exchange(&s, &code, &p, REDIRECT))).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(st, b)| *st == 200 || b["error"] == "invalid_grant")
    );
}
both!(parallel_redemptions_have_one_winner);

async fn refresh_rotation_and_reuse_detection(b: Backend) {
    // The strict rule, without the grace interval for lost responses (tests/server/refresh.rs).
    let s = TestServer::start_with(b, |c| c.refresh_grace = 0).await;
    s.user("ada@example.com").await;
    let (access1, refresh1) = signed_in_tokens(&s, "ada@example.com").await;
    let (status, second) = refresh(&s, &refresh1).await;
    assert_eq!(status, 200, "{second}");
    let refresh2 = second["refresh_token"].as_str().unwrap().to_owned();
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2, "refresh tokens rotate on every use");
    assert_eq!(whoami(&s, &access2).await.0, 200);
    assert_eq!(
        whoami(&s, &access1).await.0,
        200,
        "the earlier access token lives until it expires"
    );
    // Reuse of the rotated token revokes the whole family.
    let (status, reuse) = refresh(&s, &refresh1).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh(&s, &refresh2).await.0, 400);
    assert_eq!(whoami(&s, &access2).await.0, 401);
    assert_eq!(whoami(&s, &access1).await.0, 401);
}
both!(refresh_rotation_and_reuse_detection);

async fn parallel_refreshes_have_one_winner(b: Backend) {
    // Without the grace interval, which answers concurrent retries (tests/server/refresh.rs).
    let s = TestServer::start_with(b, |c| c.refresh_grace = 0).await;
    s.user("ada@example.com").await;
    let (_, rt) = signed_in_tokens(&s, "ada@example.com").await;
    let results = join_all((0..10).map(|_| refresh(&s, &rt))).await;
    assert_eq!(
        results.iter().filter(|(st, _)| *st == 200).count(),
        1,
        "{results:?}"
    );
}
both!(parallel_refreshes_have_one_winner);

async fn refresh_tokens_expire_when_idle(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (_, rt) = signed_in_tokens(&s, "ada@example.com").await;
    let lifetime = s
        .count("SELECT MAX(expires_at - created_at) FROM refresh_tokens")
        .await;
    // The expiry is set when the tokens are made, `created_at` when they are stored: a second
    // may tick in between.
    assert!(
        (30 * 24 * 3600 - 1..=30 * 24 * 3600).contains(&lifetime),
        "{lifetime}"
    );
    s.sql("UPDATE refresh_tokens SET expires_at = created_at - 1")
        .await;
    assert_eq!(refresh(&s, &rt).await.0, 400);
    // Access tokens live one hour.
    assert!(
        s.count("SELECT MAX(expires_at) FROM access_tokens").await - mogplex_server::crypto::now()
            <= 3600
    );
}
both!(refresh_tokens_expire_when_idle);

async fn pkce_is_s256_only_and_strict(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let client = browser();
    let r = sign_in(&s, &client, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
    let p = pkce();
    let long = "a".repeat(44);
    let plus = format!("{}+", &p.challenge[..42]);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "code"), ("code_challenge", &p.challenge)],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("code_challenge_method", "S256")],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &long),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &plus),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "token"),
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "S256"),
            ],
            "unsupported_response_type",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "S256"),
                ("scope", "admin"),
            ],
            "invalid_scope",
        ),
    ];
    for (params, expected) in cases {
        let mut params = params;
        params.push(("state", "st"));
        let r = client
            .get(authorize_url(&s, REDIRECT, &params))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{params:?}");
        let loc = location(&r);
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some(expected),
            "{params:?}"
        );
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st"));
        assert_eq!(query_param(&loc, "iss").as_deref(), Some(s.url.as_str()));
        assert!(query_param(&loc, "code").is_none());
    }
    // At the token endpoint: a wrong verifier, a short one, bad characters.
    for (verifier, expected) in [
        (pkce().verifier, "invalid_grant"),
        ("x".repeat(42), "invalid_request"),
        (format!("{}!", "x".repeat(50)), "invalid_request"),
        ("x".repeat(129), "invalid_request"),
    ] {
        let (code, _) = get_code(&s, "ada@example.com", REDIRECT).await;
        let (status, body, _) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "mogplex-cli"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(expected)),
            "{verifier}"
        );
    }
}
both!(pkce_is_s256_only_and_strict);

async fn redirect_uris_match_exactly_except_loopback_port(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let client = browser();
    sign_in(&s, &client, "ada@example.com", PASSWORD, "/").await;
    let p = pkce();
    let ok = [
        ("response_type", "code"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ];
    for bad in [
        "http://127.0.0.1/auth/callback",
        "http://localhost:24816/auth/callback",
        "https://127.0.0.1:24816/auth/callback",
        "http://evil.example:24816/auth/callback",
        "http://127.0.0.1:24816/auth/callback?x=1",
        "http://127.0.0.1:24816/other",
        "http://127.0.0.1:24816/auth/./callback",
        "",
    ] {
        let r = client
            .get(authorize_url(&s, bad, &ok))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            400,
            "{bad} is shown an error page, not redirected to"
        );
        assert!(r.headers().get("location").is_none());
    }
    let r = client
        .get(authorize_url(&s, REDIRECT, &ok).replace("client_id=mogplex-cli", "client_id=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Any port of a loopback redirect (both fixed ports busy: the CLI's ephemeral fallback).
    let ephemeral = "http://127.0.0.1:51234/auth/callback";
    let (code, p) = get_code(&s, "ada@example.com", ephemeral).await;
    // The code is bound to its redirect: another one fails.
    assert_eq!(
        exchange(&s, &code, &p, REDIRECT).await.1["error"],
        "invalid_grant"
    );
    let (code, p) = get_code(&s, "ada@example.com", "http://[::1]:40000/auth/callback").await;
    assert_eq!(
        exchange(&s, &code, &p, "http://[::1]:40000/auth/callback")
            .await
            .0,
        200
    );
}
both!(redirect_uris_match_exactly_except_loopback_port);

async fn codes_expire_after_a_minute(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (code, p) = get_code(&s, "ada@example.com", REDIRECT).await;
    let ttl =
        s.count("SELECT MAX(expires_at) FROM auth_codes").await - mogplex_server::crypto::now();
    assert!((55..=60).contains(&ttl), "{ttl}");
    s.sql("UPDATE auth_codes SET expires_at = expires_at - 61")
        .await;
    assert_eq!(
        exchange(&s, &code, &p, REDIRECT).await.1["error"],
        "invalid_grant"
    );
}
both!(codes_expire_after_a_minute);

async fn revocation_semantics(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let revoke = |t: String| {
        let url = format!("{}/api/auth/mcp/revoke", s.url);
        async move {
            plain()
                .post(url)
                .form(&[("token", t.as_str()), ("client_id", "mogplex-cli")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        revoke("mog_rt_unknown".into()).await,
        200,
        "unknown tokens: 200"
    );
    // Revoking an access token leaves the refresh token working.
    let (access, rt) = signed_in_tokens(&s, "ada@example.com").await;
    assert_eq!(revoke(access.clone()).await, 200);
    assert_eq!(whoami(&s, &access).await.0, 401);
    assert_eq!(refresh(&s, &rt).await.0, 200);
    // Revoking a refresh token kills its access tokens.
    let (access, rt) = signed_in_tokens(&s, "ada@example.com").await;
    assert_eq!(revoke(rt.clone()).await, 200);
    assert_eq!(whoami(&s, &access).await.0, 401);
    assert_eq!(refresh(&s, &rt).await.0, 400);
    let r = plain()
        .post(format!("{}/api/auth/mcp/revoke", s.url))
        .form(&[("client_id", "mogplex-cli")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "token is required");
}
both!(revocation_semantics);

async fn personal_access_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let uid = s.user("ada@example.com").await;
    let token = mogplex_server::crypto::personal_access_token();
    let row = s.db().create_pat(&uid, "ci", &token, None).await.unwrap();
    assert!(row.prefix.starts_with("mog_") && !row.prefix.contains(&token[8..]));
    assert_eq!(
        whoami(&s, &token).await,
        (200, Some("ada@example.com".into()))
    );
    assert!(s.db().revoke_pat(&uid, &row.id).await.unwrap());
    assert_eq!(whoami(&s, &token).await.0, 401);
    let expiring = mogplex_server::crypto::personal_access_token();
    s.db()
        .create_pat(
            &uid,
            "old",
            &expiring,
            Some(mogplex_server::crypto::now() - 1),
        )
        .await
        .unwrap();
    assert_eq!(whoami(&s, &expiring).await.0, 401);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
}
both!(personal_access_tokens);

async fn two_servers_on_one_database_share_state(b: Backend) {
    // Without the grace interval, which answers concurrent retries (tests/server/refresh.rs).
    let s1 = TestServer::start_with(b, |c| c.refresh_grace = 0).await;
    s1.user("ada@example.com").await;
    let s2 = TestServer::on_database(&s1.database, tempfile::tempdir().unwrap(), None, |c| {
        c.refresh_grace = 0
    })
    .await;
    let (code, p) = get_code(&s1, "ada@example.com", REDIRECT).await;
    // Redeeming on both at once: one wins across processes.
    let (a, b2) = tokio::join!(
        exchange(&s1, &code, &p, REDIRECT),
        exchange(&s2, &code, &p, REDIRECT)
    );
    assert_eq!([a.0, b2.0].iter().filter(|st| **st == 200).count(), 1);
    // (That replay revoked the winner's tokens; a fresh sign-in for the refresh race.)
    let (_, rt) = signed_in_tokens(&s2, "ada@example.com").await;
    let (x, y) = tokio::join!(refresh(&s1, &rt), refresh(&s2, &rt));
    assert_eq!(
        [x.0, y.0].iter().filter(|st| **st == 200).count(),
        1,
        "{x:?} {y:?}"
    );
}
both!(two_servers_on_one_database_share_state);
