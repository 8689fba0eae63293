//! RFC 7591 dynamic client registration at `/api/auth/mcp/register`: advertised in both
//! discovery documents; a public loopback client registered, then through the code flow with
//! another port and a resource; a confidential one whose secret is shown once and works; every
//! kind of bad metadata refused with its RFC 7591 code and nothing stored; registrations
//! throttled per address, audited, and listed as dynamic by `client list --json`.

use crate::both;
use crate::harness::*;
use crate::resource::{approved_callback, browser_of, demo, mcp_server};
use serde_json::{Value, json};

pub async fn register(s: &TestServer, metadata: &Value) -> (u16, Value) {
    let r = plain()
        .post(format!("{}/api/auth/mcp/register", s.url))
        .json(metadata)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{st}"
    );
    (st, r.json().await.unwrap())
}

fn client_list(database: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
        .args(["client", "list", "--database", database, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn discovery_documents_advertise_registration(b: Backend) {
    let s = TestServer::start(b).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let v: Value = plain()
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["registration_endpoint"],
            format!("{}/api/auth/mcp/register", s.url),
            "{path}"
        );
        let scopes = v["scopes_supported"].to_string();
        assert!(
            scopes.contains("\"mcp:demo\"") && scopes.contains("\"mcp:admin\""),
            "{scopes}"
        );
    }
}
both!(discovery_documents_advertise_registration);

async fn a_public_loopback_client_registers_then_signs_in_on_any_port(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let (st, c) = register(
        &s,
        &json!({
            "client_name": "Tool X",
            "redirect_uris": ["http://127.0.0.1:5555/callback", "http://localhost:5556/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:demo",
            "software_id": "ignored-but-accepted"
        }),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let id = c["client_id"].as_str().unwrap().to_owned();
    assert!(c.get("client_secret").is_none(), "{c}");
    assert!(c["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(c["token_endpoint_auth_method"], "none");
    assert_eq!(c["client_name"], "Tool X");
    assert_eq!(
        c["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    // The code flow on another loopback port (RFC 8252 §7.3), for the demo MCP resource; the
    // consent page says the name is the client's own claim.
    let demo = demo(&s);
    let br = browser_of(&s, "ada@example.com").await;
    let p = pkce();
    let redirect = "http://127.0.0.1:6123/callback";
    let url = crate::resource::mcp_authorize_url(&s, &id, redirect, "mcp:demo", Some(&demo), &p);
    let page = br.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("id=\"dynamic\"") && page.contains("Tool X"),
        "{page}"
    );
    let cb = approved_callback(&s, &br, &id, redirect, "mcp:demo", Some(&demo), &p).await;
    assert!(cb.starts_with(redirect), "{cb}");
    let code = query_param(&cb, "code").unwrap();
    let (st, t, _) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &p.verifier),
            ("resource", &demo),
        ],
    )
    .await;
    assert_eq!(st, 200, "{t}");
    let (st, r, _) = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("resource", &demo),
        ],
    )
    .await;
    assert_eq!(st, 200, "{r}");
    // localhost is a loopback host too, any port.
    let url = crate::resource::mcp_authorize_url(
        &s,
        &id,
        "http://localhost:7001/cb",
        "mcp:demo",
        Some(&demo),
        &pkce(),
    );
    assert_eq!(br.get(&url).send().await.unwrap().status(), 200);
    // A dynamic client cannot use the device grant.
    let r = plain()
        .post(format!("{}/api/auth/mcp/device", s.url))
        .form(&[("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );

    assert_eq!(
        s.count("SELECT COUNT(*) FROM audit_log WHERE kind = 'client.register' AND outcome = 'ok'")
            .await,
        1
    );
    let listed = client_list(&s.database);
    let entry = listed.iter().find(|c| c["client_id"] == id).unwrap();
    assert_eq!(entry["dynamic"], true, "{entry}");
    assert_eq!(entry["confidential"], false);
    assert_eq!(entry["name"], "Tool X");
}
both!(a_public_loopback_client_registers_then_signs_in_on_any_port);

async fn a_confidential_client_gets_its_secret_once(b: Backend) {
    let s = TestServer::start(b).await;
    // No token_endpoint_auth_method: RFC 7591's default, client_secret_basic.
    let (st, c) = register(
        &s,
        &json!({"redirect_uris": ["https://app.example/callback"]}),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["client_secret_expires_at"], 0);
    assert_eq!(c["grant_types"], json!(["authorization_code"]));
    let id = c["client_id"].as_str().unwrap();
    let secret = c["client_secret"].as_str().unwrap();
    // Stored as a hash only.
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM oauth_clients WHERE client_id = '{id}' AND secret_hash <> '{secret}' AND dynamic = 1"
        ))
        .await,
        1
    );
    let introspect = |secret: String| {
        let url = format!("{}/api/auth/mcp/introspect", s.url);
        let id = id.to_owned();
        async move {
            plain()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", "mog_at_unknown")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(introspect(secret.to_owned()).await, 200);
    assert_eq!(introspect("mog_cs_wrong".to_owned()).await, 401);
    let listed = client_list(&s.database);
    assert_eq!(listed[0]["confidential"], true);
    assert_eq!(listed[0]["dynamic"], true);
    assert!(!listed[0].to_string().contains(secret));
}
both!(a_confidential_client_gets_its_secret_once);

async fn bad_metadata_is_refused_with_rfc_7591_codes(b: Backend) {
    let s = TestServer::start(b).await;
    let many: Vec<String> = (0..1000)
        .map(|i| format!("http://127.0.0.1:{}/cb", 1000 + i))
        .collect();
    let cases = [
        (
            json!({"redirect_uris": ["http://app.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://*.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["myapp://cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": many}), "invalid_redirect_uri"),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": []}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://app.example/cb"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [1]}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "client_name": "x".repeat(101)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "client_name": "a\u{7}b"}),
            "invalid_client_metadata",
        ),
        (json!(["https://app.example/cb"]), "invalid_client_metadata"),
    ];
    for (metadata, code) in &cases {
        let (st, e) = register(&s, metadata).await;
        assert_eq!(st, 400, "{metadata}: {e}");
        assert_eq!(e["error"], *code, "{metadata}: {e}");
        assert!(
            e["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    // Not JSON, or not said to be.
    let url = format!("{}/api/auth/mcp/register", s.url);
    for (ct, body) in [
        ("application/json", "{not json".to_owned()),
        (
            "application/x-www-form-urlencoded",
            "redirect_uris=https://app.example/cb".to_owned(),
        ),
    ] {
        let r = plain()
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_client_metadata"
        );
    }
    // Too large: 413, in the OAuth error shape.
    let big =
        json!({"redirect_uris": ["https://app.example/cb"], "client_uri": "x".repeat(70_000)});
    let r = plain().post(&url).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(s.count("SELECT COUNT(*) FROM oauth_clients").await, 0);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM audit_log WHERE kind = 'client.register'")
            .await,
        0
    );
}
both!(bad_metadata_is_refused_with_rfc_7591_codes);

async fn registrations_are_throttled_per_address(b: Backend) {
    let s = TestServer::start(b).await;
    let metadata = json!({
        "redirect_uris": ["http://127.0.0.1:5555/callback"],
        "token_endpoint_auth_method": "none"
    });
    let limit = mogplex_server::oidc::register::PER_ADDRESS;
    for i in 0..limit {
        let (st, e) = register(&s, &metadata).await;
        assert_eq!(st, 201, "registration {i}: {e}");
    }
    let r = plain()
        .post(format!("{}/api/auth/mcp/register", s.url))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 3600, "{wait}");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1")
            .await,
        limit
    );
}
both!(registrations_are_throttled_per_address);
