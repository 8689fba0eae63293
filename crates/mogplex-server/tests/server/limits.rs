//! Oversized and malformed requests get a 4xx with a clear error, never a 500.

use crate::both;
use crate::harness::*;

async fn oversized_and_malformed_requests(b: Backend) {
    let s = TestServer::start(b).await;
    let c = plain();
    let tok = format!("{}/api/auth/mcp/token", s.url);
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "huge body",
            "x=".to_owned() + &"a".repeat(100 * 1024),
            form,
            413,
            "invalid_request",
        ),
        (
            "json body",
            "{\"grant_type\":\"refresh_token\"}".into(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            "no content type",
            "grant_type=refresh_token".into(),
            "",
            400,
            "invalid_request",
        ),
        (
            "duplicate parameter",
            "grant_type=refresh_token&grant_type=authorization_code&client_id=mogplex-cli".into(),
            form,
            400,
            "invalid_request",
        ),
        (
            "missing grant_type",
            "client_id=mogplex-cli".into(),
            form,
            400,
            "invalid_request",
        ),
        (
            "unknown grant",
            "grant_type=password&client_id=mogplex-cli".into(),
            form,
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown client",
            "grant_type=refresh_token&client_id=other&refresh_token=x".into(),
            form,
            401,
            "invalid_client",
        ),
        (
            "missing client",
            "grant_type=refresh_token&refresh_token=x".into(),
            form,
            400,
            "invalid_request",
        ),
        (
            "bad percent-encoding",
            "grant_type=%ZZ&client_id=mogplex-cli".into(),
            form,
            400,
            "unsupported_grant_type",
        ),
        (
            "binary",
            String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01]).into_owned(),
            form,
            400,
            "invalid_request",
        ),
        (
            "missing code",
            "grant_type=authorization_code&client_id=mogplex-cli".into(),
            form,
            400,
            "invalid_request",
        ),
    ];
    for (name, body, ct, status, error) in cases {
        let mut req = c.post(&tok).body(body);
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        let v: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|_| panic!("{name}: OAuth JSON"));
        assert_eq!(v["error"], error, "{name}");
    }
    for path in ["/api/auth/mcp/revoke", "/api/auth/mcp/device"] {
        let r = c
            .post(format!("{}{path}", s.url))
            .header("content-type", form)
            .body("a=".to_owned() + &"b".repeat(200 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
    }
    // Huge headers: 431.
    let r = c
        .get(format!("{}/api/auth/user", s.url))
        .header("x-filler", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    // Odd Authorization headers: 401, never 500.
    for auth in [
        "Basic abc",
        "Bearer",
        "Bearer ",
        &format!("Bearer {}", "a".repeat(600)),
        "Bearer mog_' OR '1'='1",
    ] {
        let r = c
            .get(format!("{}/api/auth/user", s.url))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
    }
    // Malformed authorize requests: an error page, not a redirect, not a 500.
    for q in [
        "",
        "client_id=mogplex-cli",
        "client_id=mogplex-cli&client_id=x",
        "%ZZ=1",
        "redirect_uri=%00",
    ] {
        let r = c
            .get(format!("{}/api/auth/mcp/authorize?{q}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
    // Pages with bad forms.
    for path in ["/login", "/device", "/device/approve", "/logout"] {
        let r = c
            .post(format!("{}{path}", s.url))
            .header("content-type", form)
            .body("csrf=%&&&===")
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error() || r.status().is_redirection(),
            "{path}: {}",
            r.status()
        );
    }
    let r = c
        .get(format!("{}/no/such/page", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
both!(oversized_and_malformed_requests);
