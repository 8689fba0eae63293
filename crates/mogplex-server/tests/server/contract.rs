//! The server keeps the contract of `mogplex-protocol`: its metadata document is exactly the
//! protocol type (nothing the server publishes is lost when the CLI reads it), every endpoint it
//! advertises answers, and every route the protocol names is served.

use crate::both;
use crate::harness::*;
use mogplex_protocol::{AuthorizationServerMetadata, routes};

async fn metadata_is_the_protocol_type(b: Backend) {
    let s = TestServer::start(b).await;
    let raw: serde_json::Value = plain()
        .get(format!(
            "{}{}",
            s.url,
            routes::AUTHORIZATION_SERVER_METADATA
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let typed: AuthorizationServerMetadata = serde_json::from_value(raw.clone()).unwrap();
    // A member the protocol type does not know would be dropped here.
    assert_eq!(serde_json::to_value(&typed).unwrap(), raw);
    // The test server runs with OpenID Connect on, so the RFC 8414 document carries the OpenID
    // members too (jwks_uri, userinfo), as the OpenID document does.
    assert_eq!(typed, mogplex_server::oidc::discovery_document(&s.url));
    assert!(typed.jwks_uri.is_some(), "{raw}");
    assert!(typed.authorization_response_iss_parameter_supported);

    // Every advertised endpoint answers for itself (a bad request, not the 404 of no route).
    let advertised = [
        ("GET", typed.authorization_endpoint.clone()),
        ("POST", typed.token_endpoint.clone()),
        ("POST", typed.revocation_endpoint.clone().unwrap()),
        ("POST", typed.device_authorization_endpoint.clone().unwrap()),
        ("POST", typed.registration_endpoint.clone().unwrap()),
    ];
    for (method, url) in advertised {
        assert!(url.starts_with(&s.url), "{url}");
        let r = send(method, &url, None).await;
        assert_eq!(r.status(), 400, "{method} {url}");
    }
}
both!(metadata_is_the_protocol_type);

async fn send(method: &str, url: &str, bearer: Option<&str>) -> reqwest::Response {
    let client = plain();
    let mut req = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        other => panic!("no such method {other}"),
    };
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap()
}

async fn every_protocol_route_is_served(b: Backend) {
    let s = TestServer::start(b).await;
    s.user("ada@example.com").await;
    let (access, _) = signed_in_tokens(&s, "ada@example.com").await;
    let r = send("POST", &format!("{}{}", s.url, routes::RUNS), Some(&access)).await;
    assert_eq!(r.status(), 201);
    let run: serde_json::Value = r.json().await.unwrap();
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    for (method, path) in routes::ENDPOINTS {
        let url = format!("{}{}", s.url, path.replace("{id}", &id));
        let r = send(method, &url, Some(&access)).await;
        let status = r.status().as_u16();
        // The fallbacks answer 404 (and a wrong method 405): anything else is the route itself.
        assert!(
            status != 404 && status != 405,
            "{method} {path} answered {status}"
        );
    }
}
both!(every_protocol_route_is_served);
