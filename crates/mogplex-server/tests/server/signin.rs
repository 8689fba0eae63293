//! The sign-in page: CSRF, throttling, no user enumeration, safe redirects, headers.

use crate::both;
use crate::harness::*;

async fn csrf_is_required(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let client = browser();
    // No CSRF cookie or field at all.
    let r = client
        .post(format!("{}/login", s.url))
        .form(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The cookie but a different field (a forged cross-site form cannot read the cookie).
    client.get(format!("{}/login", s.url)).send().await.unwrap();
    let r = client
        .post(format!("{}/login", s.url))
        .form(&[
            ("csrf", "x".repeat(43).as_str()),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("mogplex_session=")),
        "no session"
    );
    // The same form with the right token works.
    assert_eq!(
        sign_in(&s, &client, "ada@example.com", PASSWORD, "/")
            .await
            .status(),
        303
    );
}
both!(csrf_is_required);

async fn same_answer_for_unknown_email_and_wrong_password(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let wrong = sign_in(&s, &browser(), "ada@example.com", "wrong password!", "/").await;
    let unknown = sign_in(&s, &browser(), "nobody@example.com", "wrong password!", "/").await;
    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    let (a, b2) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    let strip = |t: &str| {
        t.replace("ada@example.com", "E")
            .replace("nobody@example.com", "E")
            .split("name=\"csrf\" value=\"")
            .map(|p| p.get(43..).unwrap_or(p).to_owned())
            .collect::<String>()
    };
    assert_eq!(strip(&a), strip(&b2));
    assert!(a.contains("Incorrect email or password."));
}
both!(same_answer_for_unknown_email_and_wrong_password);

async fn sign_in_is_throttled_per_account(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            sign_in(&s, &browser(), "ada@example.com", "wrong password!", "/")
                .await
                .status(),
            401
        );
    }
    // Even the right password is refused now, and says when to come back.
    let r = sign_in(&s, &browser(), "ada@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many sign-in attempts")
    );
    // Unknown accounts are throttled the same way (no enumeration through the limit).
    for _ in 0..5 {
        sign_in(&s, &browser(), "ghost@example.com", "wrong password!", "/").await;
    }
    assert_eq!(
        sign_in(&s, &browser(), "ghost@example.com", "wrong password!", "/")
            .await
            .status(),
        429
    );
    // The count lives in the database, shared by every server process.
    assert_eq!(
        s.count("SELECT COUNT(*) FROM throttle WHERE key LIKE 'login:pair:%' AND count >= 5")
            .await,
        2
    );
}
both!(sign_in_is_throttled_per_account);

async fn sign_in_is_throttled_per_address(b: Backend) {
    let s = TestServer::start(b).await;
    for i in 0..30 {
        sign_in(
            &s,
            &browser(),
            &format!("user{i}@example.com"),
            "wrong password!",
            "/",
        )
        .await;
    }
    s.user("ada@example.com").await;
    assert_eq!(
        sign_in(&s, &browser(), "ada@example.com", PASSWORD, "/")
            .await
            .status(),
        429
    );
}
both!(sign_in_is_throttled_per_address);

async fn post_login_redirect_stays_on_this_server(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    for (next, expected) in [
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        (
            "/api/auth/mcp/authorize?client_id=mogplex-cli",
            "/api/auth/mcp/authorize?client_id=mogplex-cli",
        ),
        ("/device?user_code=BCDF-GHJK", "/device?user_code=BCDF-GHJK"),
        ("/logout", "/"),
    ] {
        let r = sign_in(&s, &browser(), "ada@example.com", PASSWORD, next).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), expected, "{next}");
    }
}
both!(post_login_redirect_stays_on_this_server);

async fn pages_cannot_be_framed_and_cookies_are_guarded(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let r = browser()
        .get(format!("{}/login", s.url))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csrf_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    let r = sign_in(&s, &browser(), "ada@example.com", PASSWORD, "/").await;
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mogplex_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    // Over https the cookies take the __Host- prefix and Secure.
    let https = TestServer::start_with(b, |c| {
        *c = mogplex_server::Config::new("https://accounts.example")
    })
    .await;
    let r = browser()
        .get(format!("{}/login", https.url))
        .send()
        .await
        .unwrap();
    let c = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        c.starts_with("__Host-mogplex_csrf=") && c.contains("; Secure") && c.contains("Path=/"),
        "{c}"
    );
}
both!(pages_cannot_be_framed_and_cookies_are_guarded);
