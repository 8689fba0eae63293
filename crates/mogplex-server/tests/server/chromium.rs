//! The real pages in Debian's headless Chromium: sign in through the code flow, and approve a
//! device code on `/device`.

use crate::harness::*;
use mogplex_testkit::webdriver::Browser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback callback listener standing in for the CLI: answers the browser and hands over the
/// request's path and query.
async fn callback_listener() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/auth/callback",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            let body = "<!doctype html><title>done</title><p id=\"done\">Signed in; return to your terminal.</p>";
            let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
            if target.starts_with("/auth/callback")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(target);
            }
        }
    });
    (redirect, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_and_device_approval_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("ada@example.com").await;
    let browser = Browser::start()
        .await
        .expect("headless Chromium (scripts/test installs it)");

    // Code flow: the browser follows the authorize link, signs in on the real page, and lands on
    // the loopback callback with a code.
    let (redirect, got_callback) = callback_listener().await;
    let p = pkce();
    let link = authorize_url(
        &s,
        &redirect,
        &[
            ("response_type", "code"),
            ("scope", "openid offline_access"),
            ("state", "chromium-state"),
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    browser.goto(&link).await.unwrap();
    browser
        .wait_for_url(|u| u.contains("/login"))
        .await
        .unwrap();
    browser
        .type_into("#email", "ada@example.com")
        .await
        .unwrap();
    browser.type_into("#password", PASSWORD).await.unwrap();
    browser.click("#submit").await.unwrap();
    // The consent page names the client and the loopback redirect; the user allows.
    browser
        .wait_for_url(|u| u.contains("/api/auth/mcp/authorize"))
        .await
        .unwrap();
    browser.click("#approve").await.unwrap();
    let target = tokio::time::timeout(std::time::Duration::from_secs(15), got_callback)
        .await
        .expect("callback reached")
        .unwrap();
    let full = format!("http://127.0.0.1{target}");
    assert_eq!(
        query_param(&full, "state").as_deref(),
        Some("chromium-state")
    );
    assert_eq!(query_param(&full, "iss").as_deref(), Some(s.url.as_str()));
    let code = query_param(&full, "code").unwrap();
    let (status, tokens) = exchange(&s, &code, &p, &redirect).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        whoami(&s, tokens["access_token"].as_str().unwrap())
            .await
            .1
            .as_deref(),
        Some("ada@example.com")
    );

    // Device flow: the same (signed-in) browser opens verification_uri_complete and approves.
    let d: serde_json::Value = plain()
        .post(format!("{}/api/auth/mcp/device", s.url))
        .form(&[("client_id", "mogplex-cli")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    browser
        .goto(d["verification_uri_complete"].as_str().unwrap())
        .await
        .unwrap();
    browser.click("#continue").await.unwrap();
    assert_eq!(
        browser.text("#code").await.unwrap(),
        d["user_code"].as_str().unwrap()
    );
    browser.click("#approve").await.unwrap();
    assert!(
        browser
            .text("#message")
            .await
            .unwrap()
            .contains("signed in"),
        "{}",
        browser.source().await.unwrap()
    );
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let (st, b, _) = token(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "mogplex-cli"),
            ("device_code", d["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(st, 200, "{b}");
}
