//! The demo MCP server at `/mcp/demo`: its RFC 9728 document, the 401 and 403 challenges exactly
//! as the contract has them, tokens for other resources (and account tokens) refused; and the
//! whole MCP authorization path as a client walks it, from the 401 through protected resource
//! metadata, authorization server discovery, dynamic registration, code + PKCE + resource,
//! consent and the token, to the official Rust SDK (`rmcp`, as the CLI uses it) listing and
//! calling the tools, a step-up to `mcp:admin` after a 403, and a refresh naming the resource.

use crate::both;
use crate::harness::*;
use crate::register::register;
use crate::resource::{OTHER, approved_callback, bound_tokens, browser_of, demo, mcp_server};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

fn challenge_401(s: &TestServer) -> String {
    format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/demo\", scope=\"mcp:demo\"",
        s.url
    )
}

/// A JSON-RPC POST to the demo server: status, `WWW-Authenticate`, body.
async fn rpc(s: &TestServer, bearer: Option<&str>, body: &Value) -> (u16, String, Value) {
    let mut req = plain()
        .post(demo(s))
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, www, r.json().await.unwrap_or(Value::Null))
}

fn list_tools() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

async fn metadata_and_challenges(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let demo = demo(&s);
    let prm: Value = plain()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp/demo",
            s.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        prm,
        json!({
            "resource": demo,
            "authorization_servers": [s.url],
            "scopes_supported": ["mcp:demo", "mcp:admin"],
            "bearer_methods_supported": ["header"],
        })
    );

    // No token, a made-up one, an account token, a token for another resource: all 401 with
    // the same challenge.
    let (account, _) = signed_in_tokens(&s, "ada@example.com").await;
    let other = bound_tokens(&s, "ada@example.com", "mcp:demo", Some(OTHER)).await;
    let other = other["access_token"].as_str().unwrap().to_owned();
    for bearer in [
        None,
        Some("mog_at_madeup"),
        Some(account.as_str()),
        Some(other.as_str()),
    ] {
        let (st, www, body) = rpc(&s, bearer, &list_tools()).await;
        assert_eq!(st, 401, "{bearer:?}: {body}");
        assert_eq!(www, challenge_401(&s), "{bearer:?}");
        assert_eq!(body["error"], "invalid_token");
    }
    // A token for this server without mcp:demo: 403, naming the scope.
    let t = bound_tokens(&s, "ada@example.com", "openid", Some(&demo)).await;
    let (st, www, _) = rpc(&s, t["access_token"].as_str(), &list_tools()).await;
    assert_eq!(st, 403);
    assert_eq!(
        www,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:demo\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/demo\"",
            s.url
        )
    );

    // With mcp:demo: the tools, and admin_stats refused with the step-up challenge.
    let t = bound_tokens(&s, "ada@example.com", "mcp:demo", Some(&demo)).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let (st, _, body) = rpc(&s, Some(&access), &list_tools()).await;
    assert_eq!(st, 200, "{body}");
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whoami", "time", "admin_stats"]);
    let call = |name: &str, args: Value| json!({"jsonrpc": "2.0", "id": "c1", "method": "tools/call", "params": {"name": name, "arguments": args}});
    let (st, www, _) = rpc(&s, Some(&access), &call("admin_stats", json!({}))).await;
    assert_eq!(st, 403);
    assert_eq!(
        www,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:demo mcp:admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/demo\"",
            s.url
        )
    );
    // Bad input: answered, never a 5xx.
    let (st, _, body) = rpc(&s, Some(&access), &call("whoami", json!({"x": 1}))).await;
    assert_eq!(
        (st, &body["result"]["isError"]),
        (200, &json!(true)),
        "{body}"
    );
    let (st, _, body) = rpc(&s, Some(&access), &call("nope", json!({}))).await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (200, &json!(-32602)),
        "{body}"
    );
    let (st, _, body) = rpc(
        &s,
        Some(&access),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    )
    .await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (200, &json!(-32601)),
        "{body}"
    );
    let (st, _, body) = rpc(&s, Some(&access), &json!([list_tools()])).await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (400, &json!(-32600)),
        "{body}"
    );
    let (st, _, _) = rpc(
        &s,
        Some(&access),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(st, 202);
    let c = plain();
    let r = c
        .post(demo.as_str())
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(demo.as_str())
        .bearer_auth(&access)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A page of another origin cannot reach it (DNS rebinding).
    let r = c
        .post(demo.as_str())
        .bearer_auth(&access)
        .header("origin", "http://evil.example")
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // No server-to-client stream.
    let r = c
        .get(demo.as_str())
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = c.get(demo.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A server without the demo has neither the server nor its document.
    let off = TestServer::start(b).await;
    for path in [
        "/mcp/demo",
        "/.well-known/oauth-protected-resource/mcp/demo",
    ] {
        let r = c.get(format!("{}{path}", off.url)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}
both!(metadata_and_challenges);

/// An `rmcp` client of the demo server with `bearer`.
async fn connect(
    url: &str,
    bearer: Option<&str>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(b) = bearer {
        config = config.auth_header(b);
    }
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    ().serve(transport).await.map_err(|e| format!("{e:?}"))
}

async fn call_text(c: &RunningService<RoleClient, ()>, tool: &str) -> Result<String, String> {
    let r = c
        .call_tool(CallToolRequestParams::new(tool.to_owned()))
        .await
        .map_err(|e| format!("{e:?}"))?;
    assert_ne!(r.is_error, Some(true), "{tool}: {r:?}");
    match r.content.first() {
        Some(ContentBlock::Text(t)) => Ok(t.text.clone()),
        other => panic!("{tool}: {other:?}"),
    }
}

/// The `key="value"` parameter of a `WWW-Authenticate` challenge.
fn param(challenge: &str, key: &str) -> String {
    let marker = format!("{key}=\"");
    let start = challenge.find(&marker).unwrap() + marker.len();
    let end = challenge[start..].find('"').unwrap() + start;
    challenge[start..end].to_owned()
}

/// The client's side of the authorization, as the MCP authorization specification has it:
/// the 401's `resource_metadata` → the protected resource metadata (its resource must be the
/// server's URL) → the authorization server's metadata (its issuer checked) → dynamic
/// registration → code + PKCE + resource → tokens.
async fn sign_in_like_an_mcp_client(
    s: &TestServer,
    browser: &reqwest::Client,
    scope: &str,
    client_id: Option<&str>,
) -> (String, Value) {
    let demo = demo(s);
    let r = plain()
        .post(&demo)
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let prm: Value = plain()
        .get(param(&www, "resource_metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], demo);
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let asm: Value = plain()
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], issuer);
    let redirect = "http://127.0.0.1:33418/callback";
    let client_id = match client_id {
        Some(id) => id.to_owned(),
        None => {
            let endpoint = asm["registration_endpoint"].as_str().unwrap();
            assert_eq!(endpoint, format!("{}/api/auth/mcp/register", s.url));
            let (st, c) = register(
                s,
                &json!({
                    "client_name": "rmcp test client",
                    "redirect_uris": [redirect],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "none",
                }),
            )
            .await;
            assert_eq!(st, 201, "{c}");
            c["client_id"].as_str().unwrap().to_owned()
        }
    };
    let p = pkce();
    let cb = approved_callback(s, browser, &client_id, redirect, scope, Some(&demo), &p).await;
    assert_eq!(query_param(&cb, "iss").as_deref(), Some(issuer));
    let code = query_param(&cb, "code").unwrap();
    let (st, t, _) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &p.verifier),
            ("resource", &demo),
        ],
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["scope"], scope);
    (client_id, t)
}

async fn the_sdk_uses_the_demo_server_after_the_mcp_authorization_flow(b: Backend) {
    let s = mcp_server(b).await;
    s.user("ada@example.com").await;
    let demo = demo(&s);

    // Without a token the SDK sees the challenge it needs to start the authorization.
    let e = connect(&demo, None).await.unwrap_err();
    assert!(e.contains("resource_metadata"), "{e}");

    let br = browser_of(&s, "ada@example.com").await;
    let (client_id, t) = sign_in_like_an_mcp_client(&s, &br, "mcp:demo", None).await;
    let access = t["access_token"].as_str().unwrap();
    let c = connect(&demo, Some(access)).await.unwrap();
    let info = c.peer_info().unwrap();
    assert_eq!(info.protocol_version.as_str(), "2025-11-25");
    let tools: Vec<String> = c
        .list_tools(None)
        .await
        .unwrap()
        .tools
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert_eq!(tools, ["whoami", "time", "admin_stats"]);
    assert_eq!(call_text(&c, "whoami").await.unwrap(), "ada@example.com");
    let time = call_text(&c, "time").await.unwrap();
    assert!(
        time::OffsetDateTime::parse(&time, &time::format_description::well_known::Rfc3339).is_ok(),
        "{time}"
    );
    // admin_stats needs mcp:admin: the SDK reports the 403's challenge, with the larger scope.
    let e = call_text(&c, "admin_stats").await.unwrap_err();
    assert!(e.contains("mcp:demo mcp:admin"), "{e}");
    c.cancel().await.unwrap();

    // Step-up: the same client, signed in again with the larger scope (no new registration).
    let (_, t2) = sign_in_like_an_mcp_client(&s, &br, "mcp:demo mcp:admin", Some(&client_id)).await;
    let c = connect(&demo, t2["access_token"].as_str()).await.unwrap();
    assert_eq!(
        call_text(&c, "admin_stats").await.unwrap(),
        "live sign-ins to this server: 2"
    );
    c.cancel().await.unwrap();

    // A refresh names the resource; its access token works, the old sign-in's too.
    let (st, r, _) = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("resource", &demo),
        ],
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let c = connect(&demo, r["access_token"].as_str()).await.unwrap();
    assert_eq!(call_text(&c, "whoami").await.unwrap(), "ada@example.com");
    c.cancel().await.unwrap();
    // The MCP token is no account token.
    assert_eq!(whoami(&s, r["access_token"].as_str().unwrap()).await.0, 401);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1")
            .await,
        1
    );
}
both!(the_sdk_uses_the_demo_server_after_the_mcp_authorization_flow);
