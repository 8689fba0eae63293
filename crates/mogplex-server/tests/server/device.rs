//! RFC 8628 device authorization, end to end through the pages.

use crate::both;
use crate::harness::*;

struct Device {
    device_code: String,
    user_code: String,
}

async fn start_device(s: &TestServer) -> Device {
    let r = plain()
        .post(format!("{}/api/auth/mcp/device", s.url))
        .form(&[
            ("client_id", "mogplex-cli"),
            ("scope", "openid offline_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["verification_uri"], format!("{}/device", s.url));
    assert_eq!(v["expires_in"], 600);
    let user_code = v["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        v["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", s.url)
    );
    assert!(user_code.len() == 9 && user_code.as_bytes()[4] == b'-');
    assert!(
        user_code
            .replace('-', "")
            .bytes()
            .all(|c| b"BCDFGHJKLMNPQRSTVWXZ".contains(&c)),
        "{user_code}"
    );
    Device {
        device_code: v["device_code"].as_str().unwrap().to_owned(),
        user_code,
    }
}

async fn poll(s: &TestServer, d: &Device) -> (u16, serde_json::Value) {
    let (st, b, _) = token(
        s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "mogplex-cli"),
            ("device_code", &d.device_code),
        ],
    )
    .await;
    (st, b)
}

/// Signs in a browser and submits the user code; returns the client and the confirmation page.
async fn enter_code(s: &TestServer, email: &str, code: &str) -> (reqwest::Client, u16, String) {
    let client = browser();
    // Following verification_uri_complete while signed out goes through sign-in and back.
    let r = client
        .get(format!("{}/device?user_code={code}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let next = query_param(&format!("{}{}", s.url, location(&r)), "next").unwrap();
    let r = sign_in(s, &client, email, PASSWORD, &next).await;
    assert_eq!(location(&r), next);
    let page = client
        .get(format!("{}{next}", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("value=\"{code}\"")),
        "the code is prefilled"
    );
    let csrf = hidden(&page, "csrf");
    let r = client
        .post(format!("{}/device", s.url))
        .form(&[("csrf", csrf.as_str()), ("user_code", code)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (client, status, r.text().await.unwrap())
}

async fn decide(s: &TestServer, client: &reqwest::Client, page: &str, decision: &str) -> u16 {
    let csrf = hidden(page, "csrf");
    let code = hidden(page, "user_code");
    client
        .post(format!("{}/device/approve", s.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("user_code", code.as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn device_flow_approve(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let d = start_device(&s).await;
    assert_eq!(poll(&s, &d).await.1["error"], "authorization_pending");
    // Entering the code (even the lowercase, dashless form) shows a confirmation, and GET never approves.
    let typed = d.user_code.replace('-', "").to_lowercase();
    let (client, status, page) = enter_code(&s, "ada@example.com", &typed).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&d.user_code));
    assert_eq!(
        s.count("SELECT COUNT(*) FROM device_codes WHERE status = 'pending'")
            .await,
        1
    );
    // Approval needs the CSRF token.
    let r = client
        .post(format!("{}/device/approve", s.url))
        .form(&[("user_code", d.user_code.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(decide(&s, &client, &page, "approve").await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let (st, tokens) = poll(&s, &d).await;
    assert_eq!(st, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid offline_access");
    assert_eq!(
        whoami(&s, tokens["access_token"].as_str().unwrap())
            .await
            .1
            .as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(
        refresh(&s, tokens["refresh_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    // Never again after success.
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    assert_eq!(poll(&s, &d).await.1["error"], "invalid_grant");
}
both!(device_flow_approve);

async fn device_flow_slow_down_deny_and_expiry(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let d = start_device(&s).await;
    assert_eq!(poll(&s, &d).await.1["error"], "authorization_pending");
    let (st, body) = poll(&s, &d).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("slow_down")));
    assert_eq!(
        s.count("SELECT MAX(interval_secs) FROM device_codes").await,
        10,
        "slow_down adds 5 seconds"
    );
    // Denied.
    let (client, _, page) = enter_code(&s, "ada@example.com", &d.user_code).await;
    assert_eq!(decide(&s, &client, &page, "deny").await, 200);
    s.sql("UPDATE device_codes SET last_polled_at = last_polled_at - 60")
        .await;
    assert_eq!(poll(&s, &d).await.1["error"], "access_denied");
    // Expired.
    let d2 = start_device(&s).await;
    s.sql("UPDATE device_codes SET expires_at = 0 WHERE status = 'pending'")
        .await;
    assert_eq!(poll(&s, &d2).await.1["error"], "expired_token");
    let (_, status, page) = enter_code(&s, "ada@example.com", &d2.user_code).await;
    assert_eq!(status, 400, "an expired code cannot be entered: {page}");
    assert_eq!(
        poll(
            &s,
            &Device {
                device_code: "mog_dc_unknown".into(),
                user_code: String::new()
            }
        )
        .await
        .1["error"],
        "invalid_grant"
    );
}
both!(device_flow_slow_down_deny_and_expiry);

async fn wrong_user_codes_are_throttled(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let d = start_device(&s).await;
    let (client, status, _) = enter_code(&s, "ada@example.com", "BCDF-BCDF").await;
    assert_eq!(status, 400);
    let page = client
        .get(format!("{}/device", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    for _ in 0..9 {
        let r = client
            .post(format!("{}/device", s.url))
            .form(&[("csrf", csrf.as_str()), ("user_code", "ZZZZ-ZZZZ")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    // Now even the right code is refused for a while.
    let r = client
        .post(format!("{}/device", s.url))
        .form(&[("csrf", csrf.as_str()), ("user_code", d.user_code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}
both!(wrong_user_codes_are_throttled);
