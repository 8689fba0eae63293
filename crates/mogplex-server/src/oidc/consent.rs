//! Consent: before a code goes to a client, the signed-in user is asked, on a page naming the
//! client, the scopes and the redirect, and answers with a CSRF-protected POST. Asked on the
//! first authorization of a client for an account, on every authorization to a loopback
//! redirect (any program on the machine can listen there and start its own authorization), and
//! when the client says `prompt=consent`. An approval is remembered only for registered clients
//! with a non-loopback redirect, and only for the scopes approved.

use super::clients::{Client, is_loopback};
use crate::db::User;
use crate::error::AppError;
use crate::web::{check_csrf, csrf_token, page_form, signed_in_user, to_login, with_cookie};
use crate::{AppState, pages};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mogplex_protocol::routes;

fn covers(granted: &str, requested: &str) -> bool {
    let g: Vec<&str> = granted.split(' ').collect();
    requested
        .split(' ')
        .filter(|p| !p.is_empty())
        .all(|p| g.contains(&p))
}

/// Whether this authorization must ask the user.
pub async fn needed(
    s: &AppState,
    user: &User,
    client: &Client,
    redirect_uri: &str,
    scope: &str,
    prompt_consent: bool,
) -> Result<bool, AppError> {
    if prompt_consent || client.builtin || is_loopback(redirect_uri) {
        return Ok(true);
    }
    Ok(!s
        .db
        .consent(&user.id, &client.id)
        .await?
        .is_some_and(|granted| covers(&granted, scope)))
}

/// Remembers an approval where that is allowed.
pub async fn remember(
    s: &AppState,
    user: &User,
    client: &Client,
    redirect_uri: &str,
    scope: &str,
) -> Result<(), AppError> {
    if !client.builtin && !is_loopback(redirect_uri) {
        s.db.remember_consent(&user.id, &client.id, scope).await?;
    }
    Ok(())
}

fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "confirm who you are",
        "profile" => "see your name",
        "email" => "see your email address",
        "offline_access" => "stay signed in (refresh its access without asking you)",
        "read" => "read your Mogplex data (models, MCP servers, runs)",
        "write" => "use models and change your Mogplex data",
        "mcp:demo" => "use the tools of the MCP server named below",
        "mcp:admin" => "use the administrative tools of the MCP server named below",
        _ => "an unknown permission",
    }
}

/// The consent page for the authorization request `raw` (its query string, sent back with the
/// answer so the POST re-checks it whole). `grant`: the scope, and the RFC 8707 resource the
/// tokens would be for, if any.
pub fn page(
    s: &AppState,
    headers: &HeaderMap,
    user: &User,
    client: &Client,
    grant: (&str, Option<&str>),
    redirect_uri: &str,
    raw: &str,
) -> Response {
    let (scope, resource) = grant;
    let (csrf, set) = csrf_token(s, headers);
    let esc = pages::esc;
    let items: String = scope
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| format!("<li><code>{}</code>: {}</li>", esc(p), esc(describe(p))))
        .collect();
    let self_named = if client.dynamic {
        "<p class=\"note\" id=\"dynamic\">This application registered itself: its name is its own claim, not checked by the administrator of this server.</p>"
    } else {
        ""
    };
    let warning = if is_loopback(redirect_uri) {
        "<p class=\"note\" id=\"loopback\">The answer goes to a program on this computer. Allow only if you just started this sign-in yourself.</p>"
    } else {
        ""
    };
    let for_resource = resource
        .map(|r| {
            format!(
                "<p>Only for the server <code id=\"resource\">{}</code>: the access cannot be used for your Mogplex account itself.</p>",
                esc(r)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Allow {name}?</h1><p>Signed in as {email}.</p>\
         <p id=\"client\"><strong>{name}</strong> (<code>{id}</code>) asks to:</p><ul id=\"scopes\">{items}</ul>{for_resource}{self_named}\
         <p>If you allow it, you are sent to <code id=\"redirect\">{redirect}</code>.</p>{warning}\
         <form id=\"consent\" method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <button id=\"approve\" name=\"decision\" value=\"allow\" type=\"submit\">Allow</button> \
         <button id=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button></form>",
        name = esc(&client.name),
        email = esc(&user.email),
        id = esc(&client.id),
        redirect = esc(redirect_uri),
        action = routes::CONSENT,
        csrf = esc(&csrf),
        request = esc(raw),
    );
    with_cookie(pages::layout("Allow access", &body).into_response(), set)
}

/// The answer: a signed-in session's CSRF-protected POST; the request is checked again whole.
pub async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form = page_form(&body)?;
    let raw = form.get("request").unwrap_or_default().to_owned();
    if signed_in_user(&s, &headers).await?.is_none() {
        return Ok(to_login(&format!("{}?{raw}", routes::AUTHORIZE)));
    }
    check_csrf(&s, &headers, &form)?;
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Err(AppError::page(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "Choose Allow or Deny.",
            ));
        }
    };
    crate::oauth::authorize_request(&s, &headers, &raw, Some(allow)).await
}
