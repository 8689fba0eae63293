//! A third-party OAuth client library (the `oauth2` crate) completes code + PKCE, refresh and the
//! device flow against the server: proof that it speaks standard OAuth, not just to our CLI.

use crate::harness::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl,
    PkceCodeChallenge, RedirectUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};

/// The HTTP transport handed to the library: our reqwest, never following redirects.
async fn transport(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let r = plain()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = http::Response::builder().status(r.status());
    for (k, v) in r.headers() {
        out = out.header(k, v);
    }
    Ok(out
        .body(r.bytes().await?.to_vec())
        .expect("a response built from a valid one"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oauth2_crate_completes_code_refresh_and_device_flows() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.user("ada@example.com").await;
    let client = BasicClient::new(ClientId::new("mogplex-cli".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(format!("{}/api/auth/mcp/authorize", s.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/api/auth/mcp/token", s.url)).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{}/api/auth/mcp/device", s.url)).unwrap(),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    // Authorization code + PKCE, the library building the link and checking nothing odd comes back.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (link, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let r = browser.get(link.as_str()).send().await.unwrap();
    let next = query_param(&format!("{}{}", s.url, location(&r)), "next").unwrap();
    let r = sign_in(&s, &browser, "ada@example.com", PASSWORD, &next).await;
    let r = browser
        .get(format!("{}{}", s.url, location(&r)))
        .send()
        .await
        .unwrap();
    let r = approve_consent(&s, &browser, r).await;
    let callback = location(&r);
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&callback, "code").unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&transport)
        .await
        .unwrap();
    assert_eq!(
        whoami(&s, tokens.access_token().secret())
            .await
            .1
            .as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(tokens.expires_in().map(|d| d.as_secs()), Some(3600));

    // Refresh.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&transport)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    assert_eq!(whoami(&s, refreshed.access_token().secret()).await.0, 200);

    // Device flow: the library polls while a browser approves.
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .request_async(&transport)
        .await
        .unwrap();
    let user_code = details.user_code().secret().clone();
    let poll = client.exchange_device_access_token(&details).request_async(
        &transport,
        tokio::time::sleep,
        None,
    );
    let approve = async {
        let page = browser
            .get(format!("{}/device?user_code={user_code}", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&page, "csrf");
        let page = browser
            .post(format!("{}/device", s.url))
            .form(&[("csrf", csrf.as_str()), ("user_code", user_code.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = browser
            .post(format!("{}/device/approve", s.url))
            .form(&[
                ("csrf", hidden(&page, "csrf").as_str()),
                ("user_code", user_code.as_str()),
                ("decision", "approve"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    let (tokens, ()) = tokio::join!(poll, approve);
    let tokens = tokens.unwrap();
    assert_eq!(whoami(&s, tokens.access_token().secret()).await.0, 200);
}
