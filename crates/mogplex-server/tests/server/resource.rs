//! RFC 8707 resource indicators: `resource` on the authorization request, the token endpoint
//! (code, refresh, device) and device authorization; a grant made with one is bound to it (its
//! tokens' audience, named again on every refresh, else `invalid_target` and nothing consumed);
//! invalid or unknown resources refused with `invalid_target`; and a bound token refused as an
//! account token by the API, userinfo and the model gateway.

use crate::both;
use crate::harness::*;
use mogplex_server::crypto;
use mogplex_server::db::clients::ClientRow;
use serde_json::Value;

/// A resource this test server issues tokens for besides the demo MCP server.
pub const OTHER: &str = "https://tools.example/mcp";

/// A server with the demo MCP server on, and [`OTHER`] as a second known resource.
pub async fn mcp_server(b: Backend) -> TestServer {
    TestServer::start_with(b, |c| {
        c.demo_mcp = true;
        c.resources = vec![OTHER.to_owned()];
        c.device_interval = 0;
    })
    .await
}

pub fn demo(s: &TestServer) -> String {
    format!("{}/mcp/demo", s.url)
}

/// The authorization request of `client_id` for `scope` and `resource` (if any).
pub fn mcp_authorize_url(
    s: &TestServer,
    client_id: &str,
    redirect: &str,
    scope: &str,
    resource: Option<&str>,
    p: &Pkce,
) -> String {
    let mut u = url::Url::parse(&format!("{}/api/auth/mcp/authorize", s.url)).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "st")
            .append_pair("code_challenge", &p.challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(r) = resource {
            q.append_pair("resource", r);
        }
    }
    u.to_string()
}

/// A signed-in browser for `email`.
pub async fn browser_of(s: &TestServer, email: &str) -> reqwest::Client {
    let b = browser();
    let r = sign_in(s, &b, email, PASSWORD, "/").await;
    assert_eq!(r.status(), 303);
    b
}

/// The browser part of a code flow for `client_id` with `resource`, approved on the consent
/// page (which must name the resource): the callback address the server sent the browser to.
pub async fn approved_callback(
    s: &TestServer,
    b: &reqwest::Client,
    client_id: &str,
    redirect: &str,
    scope: &str,
    resource: Option<&str>,
    p: &Pkce,
) -> String {
    let url = mcp_authorize_url(s, client_id, redirect, scope, resource, p);
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "the consent page");
    let page = r.text().await.unwrap();
    if let Some(res) = resource {
        assert!(
            page.contains(&format!("<code id=\"resource\">{res}</code>")),
            "the consent page names the resource: {page}"
        );
    }
    let r = b
        .post(format!("{}/api/auth/mcp/consent", s.url))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("request", hidden(&page, "request").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    location(&r)
}

/// Tokens from the code flow of `mogplex-cli` for `resource`: the token response.
pub async fn bound_tokens(
    s: &TestServer,
    email: &str,
    scope: &str,
    resource: Option<&str>,
) -> Value {
    let b = browser_of(s, email).await;
    let p = pkce();
    let cb = approved_callback(s, &b, "mogplex-cli", REDIRECT, scope, resource, &p).await;
    let code = query_param(&cb, "code").unwrap_or_else(|| panic!("no code: {cb}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "mogplex-cli"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", p.verifier.as_str()),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let (st, body, _) = token(s, &form).await;
    assert_eq!(st, 200, "{body}");
    body
}

async fn refresh_with(s: &TestServer, rt: &str, resource: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "mogplex-cli"),
        ("refresh_token", rt),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let (st, body, _) = token(s, &form).await;
    (st, body)
}

/// How this server's own endpoints answer a bearer: `/api/auth/user`, `/api/v1/…`, userinfo
/// and the gateway.
async fn account_endpoints(s: &TestServer, bearer: &str) -> Vec<u16> {
    let c = plain();
    let mut statuses = vec![whoami(s, bearer).await.0];
    for path in ["/api/v1/mogplex/mcp/servers", "/api/auth/mcp/userinfo"] {
        let r = c
            .get(format!("{}{path}", s.url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let r = c
        .post(format!("{}/api/cli/inference/chat/completions", s.url))
        .bearer_auth(bearer)
        .json(&serde_json::json!({
            "model": "mogplex/echo",
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await
        .unwrap();
    statuses.push(r.status().as_u16());
    statuses
}

async fn a_code_grant_is_bound_to_its_resource(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let demo = demo(&s);
    let t = bound_tokens(&s, "ada@example.com", "mcp:demo", Some(&demo)).await;
    assert_eq!(t["scope"], "mcp:demo");
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    // The token of an MCP server is not an account token: every account endpoint refuses it.
    assert_eq!(account_endpoints(&s, access).await, [401, 401, 401, 401]);
    // An account token still works everywhere (the same account, no resource).
    let (account, _) = signed_in_tokens(&s, "ada@example.com").await;
    let statuses = account_endpoints(&s, &account).await;
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");

    // A refresh of the bound sign-in must name its resource: without it, or with another one
    // (known or not, well-formed or not), invalid_target, and the token is not consumed.
    let bad: [Option<&str>; 6] = [
        None,
        Some(OTHER),
        Some("https://unknown.example/mcp"),
        Some("/mcp/demo"),
        Some(""),
        Some("http://127.0.0.1:1/mcp/demo#fragment"),
    ];
    for resource in bad {
        let (st, e) = refresh_with(&s, &rt, resource).await;
        assert_eq!(st, 400, "{resource:?}: {e}");
        assert_eq!(e["error"], "invalid_target", "{resource:?}: {e}");
    }
    let (st, frag) = refresh_with(&s, &rt, Some(&format!("{demo}#x"))).await;
    assert_eq!((st, frag["error"].as_str()), (400, Some("invalid_target")));
    let (st, r2) = refresh_with(&s, &rt, Some(&demo)).await;
    assert_eq!(st, 200, "{r2}");
    assert_eq!(r2["scope"], "mcp:demo");
    let access2 = r2["access_token"].as_str().unwrap();
    assert_eq!(account_endpoints(&s, access2).await, [401, 401, 401, 401]);

    // The audit log shows the resource each token request named.
    let with_resource = s
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'token.refreshed' AND outcome = 'ok' AND detail = 'refresh_token resource={demo}'"
        ))
        .await;
    assert_eq!(with_resource, 1);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM token_families WHERE resource IS NOT NULL")
            .await,
        1
    );
}
both!(a_code_grant_is_bound_to_its_resource);

async fn an_account_sign_in_cannot_gain_a_resource(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let demo = demo(&s);
    let (access, rt) = signed_in_tokens(&s, "ada@example.com").await;
    let (st, e) = refresh_with(&s, &rt, Some(&demo)).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_target")));
    // Refused before anything changed: the same token still refreshes, without a resource.
    let (st, r) = refresh_with(&s, &rt, None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(whoami(&s, &access).await.0, 200);

    // A code obtained without a resource cannot be exchanged for one, and a code for one
    // resource not for another.
    let br = browser_of(&s, "ada@example.com").await;
    let p = pkce();
    let scope = "openid offline_access";
    let cb = approved_callback(&s, &br, "mogplex-cli", REDIRECT, scope, None, &p).await;
    let code = query_param(&cb, "code").unwrap();
    let (st, e, _) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "mogplex-cli"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
            ("resource", &demo),
        ],
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );
    let p = pkce();
    let cb = approved_callback(
        &s,
        &br,
        "mogplex-cli",
        REDIRECT,
        "mcp:demo",
        Some(&demo),
        &p,
    )
    .await;
    let code = query_param(&cb, "code").unwrap();
    let (st, e, _) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "mogplex-cli"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
            ("resource", OTHER),
        ],
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );
    // The exchange without naming the resource again is bound all the same.
    let p = pkce();
    let cb = approved_callback(
        &s,
        &br,
        "mogplex-cli",
        REDIRECT,
        "mcp:demo",
        Some(&demo),
        &p,
    )
    .await;
    let code = query_param(&cb, "code").unwrap();
    let (st, t) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(st, 200, "{t}");
    let bound = t["access_token"].as_str().unwrap();
    assert_eq!(whoami(&s, bound).await.0, 401);
    let (st, e) = refresh_with(&s, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_target")));
}
both!(an_account_sign_in_cannot_gain_a_resource);

/// The error an authorization request for `resource` and `scope` is sent back with.
async fn authorize_error(s: &TestServer, scope: &str, resource: Option<&str>) -> (String, String) {
    let url = mcp_authorize_url(s, "mogplex-cli", REDIRECT, scope, resource, &pkce());
    let r = plain().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(
        back.starts_with(REDIRECT),
        "sent back to the client: {back}"
    );
    (
        query_param(&back, "error").unwrap_or_default(),
        query_param(&back, "error_description").unwrap_or_default(),
    )
}

async fn authorization_requests_with_bad_resources_are_refused(b: Backend) {
    let s = mcp_server(b).await;
    let demo = demo(&s);
    for bad in [
        "mcp/demo".to_owned(),
        format!("{demo}#top"),
        "https://unknown.example/mcp".to_owned(),
        format!("{demo}/"),
        String::new(),
        format!("https://x.example/{}", "a".repeat(2100)),
    ] {
        let (error, desc) = authorize_error(&s, "mcp:demo", Some(&bad)).await;
        assert_eq!(error, "invalid_target", "{bad}: {desc}");
        assert!(!desc.is_empty());
    }
    // The MCP scopes only with a resource; the account's scopes not with one.
    assert_eq!(
        authorize_error(&s, "mcp:demo", None).await.0,
        "invalid_scope"
    );
    assert_eq!(
        authorize_error(&s, "read mcp:demo", Some(&demo)).await.0,
        "invalid_scope"
    );
    // A good request goes on to sign-in.
    let url = mcp_authorize_url(
        &s,
        "mogplex-cli",
        REDIRECT,
        "mcp:demo",
        Some(&demo),
        &pkce(),
    );
    let r = plain().get(&url).send().await.unwrap();
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));
    // Without the demo MCP server on, its resource is unknown here.
    let off = TestServer::start(b).await;
    let (error, _) =
        authorize_error(&off, "mcp:demo", Some(&format!("{}/mcp/demo", off.url))).await;
    assert_eq!(error, "invalid_target");
}
both!(authorization_requests_with_bad_resources_are_refused);

async fn a_device_grant_is_bound_to_its_resource(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let demo = demo(&s);
    let device = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/api/auth/mcp/device", s.url);
        async move {
            let r = plain().post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, e) = device(vec![
        ("client_id", "mogplex-cli".into()),
        ("resource", format!("{demo}#f")),
    ])
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );
    let (st, e) = device(vec![
        ("client_id", "mogplex-cli".into()),
        ("scope", "mcp:demo".into()),
    ])
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    let (st, d) = device(vec![
        ("client_id", "mogplex-cli".into()),
        ("scope", "mcp:demo mcp:admin".into()),
        ("resource", demo.clone()),
    ])
    .await;
    assert_eq!(st, 200, "{d}");
    let device_code = d["device_code"].as_str().unwrap().to_owned();
    let user_code = d["user_code"].as_str().unwrap().to_owned();

    // Approved through the pages.
    let br = browser_of(&s, "ada@example.com").await;
    let page = br
        .get(format!("{}/device?user_code={user_code}", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = br
        .post(format!("{}/device", s.url))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("user_code", user_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    let r = br
        .post(format!("{}/device/approve", s.url))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("user_code", hidden(&page, "user_code").as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let poll = |resource: Option<String>| {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
            ),
            ("client_id", "mogplex-cli".to_owned()),
            ("device_code", device_code.clone()),
        ];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let s = &s;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, body, _) = token(s, &form).await;
            (st, body)
        }
    };
    // Another resource than the device authorization named: refused, and the grant waits.
    let (st, e) = poll(Some(OTHER.to_owned())).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );
    let (st, t) = poll(Some(demo.clone())).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["scope"], "mcp:demo mcp:admin");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(account_endpoints(&s, access).await, [401, 401, 401, 401]);
    let (st, e) = refresh_with(&s, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_target")));
    let (st, _) = refresh_with(&s, t["refresh_token"].as_str().unwrap(), Some(&demo)).await;
    assert_eq!(st, 200);
}
both!(a_device_grant_is_bound_to_its_resource);

async fn introspection_names_the_resource_as_audience(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let secret = crypto::token("mog_cs_");
    let app = "https://app.example/callback";
    let row = ClientRow {
        client_id: "tools-app".into(),
        name: "Tools App".into(),
        secret_hash: Some(crypto::hash(&secret)),
        auth_method: "client_secret_post".into(),
        redirect_uris: vec![app.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        created_at: 0,
        dynamic: false,
    };
    assert!(s.db().add_client(&row).await.unwrap());
    let br = browser_of(&s, "ada@example.com").await;
    let p = pkce();
    let cb = approved_callback(&s, &br, "tools-app", app, "mcp:demo", Some(OTHER), &p).await;
    let code = query_param(&cb, "code").unwrap();
    let (st, t, _) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "tools-app"),
            ("client_secret", &secret),
            ("code", &code),
            ("redirect_uri", app),
            ("code_verifier", &p.verifier),
            ("resource", OTHER),
        ],
    )
    .await;
    assert_eq!(st, 200, "{t}");
    let r = plain()
        .post(format!("{}/api/auth/mcp/introspect", s.url))
        .form(&[
            ("client_id", "tools-app"),
            ("client_secret", secret.as_str()),
            ("token", t["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["aud"], OTHER);
    assert_eq!(v["scope"], "mcp:demo");
    // Consent for a resource is asked every time, never remembered.
    let url = mcp_authorize_url(&s, "tools-app", app, "mcp:demo", Some(OTHER), &pkce());
    let r = br.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "the consent page again");
}
both!(introspection_names_the_resource_as_audience);
