//! Browser pages: sign-in, sign-out, and device approval.
//!
//! CSRF: a random token in an HttpOnly, SameSite=Strict cookie that each form must echo
//! (double submit), compared in constant time. Sessions: an opaque token in an HttpOnly,
//! SameSite=Lax cookie (Lax so that the CLI's top-level navigation to the authorize endpoint
//! carries it), stored only as a hash. Cookies are `__Host-` prefixed and `Secure` when the
//! public URL is https.

use crate::crypto::{self, now};
use crate::db::User;
use crate::error::AppError;
use crate::{AppState, audit, pages};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mogplex_protocol::routes;
use std::net::SocketAddr;

// Sign-in and device-code limits: `crate::throttle`.
const SESSION_TTL: i64 = 7 * 24 * 3600;

/// A parsed `application/x-www-form-urlencoded` body or query: no parameter may repeat.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

/// The most fields a form or query may have: no endpoint takes more than a dozen, and checking
/// for repeats costs the square of the count.
pub const MAX_FORM_FIELDS: usize = 64;

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if pairs.len() == MAX_FORM_FIELDS {
                return Err(format!("the form has more than {MAX_FORM_FIELDS} fields"));
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(format!("the parameter {k} appears more than once"));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Form(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn cookie_name(s: &AppState, base: &str) -> String {
    if s.cfg.secure_cookies {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(s: &AppState, name: &str, value: &str, same_site: &str, max_age: i64) -> HeaderValue {
    let secure = if s.cfg.secure_cookies { "; Secure" } else { "" };
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// The browser session token of this request, if it sent one.
pub(crate) fn session_token(s: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(s, "mogplex_session")).filter(|t| t.len() < 128)
}

pub async fn signed_in_user(s: &AppState, headers: &HeaderMap) -> Result<Option<User>, AppError> {
    match cookie(headers, &cookie_name(s, "mogplex_session")) {
        Some(token) if token.len() < 128 => Ok(s.db.web_session_user(&token).await?),
        _ => Ok(None),
    }
}

/// The CSRF token of this browser, and the Set-Cookie to send when it is new.
pub(crate) fn csrf_token(s: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let name = cookie_name(s, "mogplex_csrf");
    match cookie(headers, &name).filter(|t| t.len() == 43) {
        Some(t) => (t, None),
        None => {
            let t = crypto::b64url(&crypto::random_bytes::<32>());
            let c = set_cookie(s, &name, &t, "Strict", SESSION_TTL);
            (t, Some(c))
        }
    }
}

pub(crate) fn check_csrf(s: &AppState, headers: &HeaderMap, form: &Form) -> Result<(), AppError> {
    let expected = cookie(headers, &cookie_name(s, "mogplex_csrf"));
    match (expected, form.get("csrf")) {
        (Some(e), Some(got)) if e.len() == 43 && crypto::ct_eq(&e, got) => Ok(()),
        _ => Err(AppError::page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your safety this form could not be accepted. Go back, reload the page and try again.",
        )),
    }
}

pub(crate) fn page_form(body: &[u8]) -> Result<Form, AppError> {
    Form::parse(body).map_err(|e| AppError::page(StatusCode::BAD_REQUEST, "Invalid form", e))
}

/// Where sign-in may return to: this server's own authorize request or device page, nothing else.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n
                .strip_prefix(routes::AUTHORIZE)
                .is_some_and(|q| q.starts_with('?'))
                || n == routes::DEVICE_PAGE
                || n.strip_prefix(routes::DEVICE_PAGE)
                    .is_some_and(|q| q.starts_with('?'))
                || n == routes::MODELS_PAGE
                || n == routes::PLANS_PAGE)
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(crate) fn with_cookie(mut r: Response, c: Option<HeaderValue>) -> Response {
    if let Some(c) = c {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[derive(Debug, serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let (csrf, set) = csrf_token(&s, &headers);
    let next = safe_next(q.next.as_deref());
    let axum::response::Html(mut page) =
        pages::login_page(&csrf, &next, "", None, s.cfg.sign_in_note.as_deref());
    // "Continue with …" for each identity provider, under the form.
    let sso = crate::oidc::sso::buttons(&s, &next).await;
    if !sso.is_empty() {
        page = page.replacen("</form>", &format!("</form>{sso}"), 1);
    }
    with_cookie(axum::response::Html(page).into_response(), set)
}

/// Signs the browser in as `user_id` (a new session cookie) and sends it on to `next`.
pub(crate) async fn start_session(
    s: &AppState,
    user_id: &str,
    next: &str,
) -> Result<Response, AppError> {
    let token = crypto::token("");
    s.db.create_web_session(&token, user_id, SESSION_TTL)
        .await?;
    let mut r = Redirect::to(&safe_next(Some(next))).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            s,
            &cookie_name(s, "mogplex_session"),
            &token,
            "Lax",
            SESSION_TTL,
        ),
    );
    Ok(r)
}

pub async fn login_submit(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form = page_form(&body)?;
    check_csrf(&s, &headers, &form)?;
    let (csrf, _) = csrf_token(&s, &headers);
    let email = form.get("email").unwrap_or_default().trim().to_lowercase();
    let password = form.get("password").unwrap_or_default();
    let next = safe_next(form.get("next"));
    if email.len() > 320 || password.len() > 1024 {
        return Ok((
            StatusCode::BAD_REQUEST,
            pages::login_page(
                &csrf,
                &next,
                "",
                Some("That email or password is too long."),
                s.cfg.sign_in_note.as_deref(),
            ),
        )
            .into_response());
    }
    let attempt = match crate::throttle::SignIn::begin(&s, &email, &addr).await? {
        Ok(a) => a,
        Err(refused) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                pages::login_page(
                    &csrf,
                    &next,
                    &email,
                    Some(&refused.message),
                    s.cfg.sign_in_note.as_deref(),
                ),
            )
                .into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from((refused.until - now()).max(1)),
            );
            return Ok(r);
        }
    };
    // Unknown accounts are checked against a dummy hash, so both failures take as long.
    let found = s.db.user_by_email(&email).await?;
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| s.dummy_hash.to_string());
    let ok = match crate::password::verify(password.to_owned(), hash).await {
        Ok(ok) => ok && found.is_some(),
        Err(busy) => {
            // Not checked: neither a failure nor a success. The slots go back.
            attempt.not_checked(&s).await?;
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                pages::login_page(
                    &csrf,
                    &next,
                    &email,
                    Some(&format!("{busy}.")),
                    s.cfg.sign_in_note.as_deref(),
                ),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return Ok(r);
        }
    };
    let reason = if found.is_some() {
        "wrong password"
    } else {
        "unknown account"
    };
    let Some((user, _)) = found.filter(|_| ok) else {
        audit_sign_in(&s, &addr, &email, None, Some(reason)).await;
        attempt.failed(&s).await?;
        return Ok((
            StatusCode::UNAUTHORIZED,
            pages::login_page(
                &csrf,
                &next,
                &email,
                Some("Incorrect email or password."),
                s.cfg.sign_in_note.as_deref(),
            ),
        )
            .into_response());
    };
    attempt.succeeded(&s).await?;
    if s.db.is_disabled(&user.id).await? {
        audit_sign_in(&s, &addr, &email, Some(&user.id), Some("account disabled")).await;
        return Ok((
            StatusCode::FORBIDDEN,
            pages::login_page(
                &csrf,
                &next,
                &email,
                Some("This account is disabled. Ask the administrator of this Mogplex service."),
                s.cfg.sign_in_note.as_deref(),
            ),
        )
            .into_response());
    }
    audit_sign_in(&s, &addr, &email, Some(&user.id), None).await;
    let token = crypto::token("");
    s.db.create_web_session(&token, &user.id, SESSION_TTL)
        .await?;
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &s,
            &cookie_name(&s, "mogplex_session"),
            &token,
            "Lax",
            SESSION_TTL,
        ),
    );
    Ok(r)
}

/// The audit record of a sign-in attempt: the email only when it looks like one (a password
/// typed into the email field stays out of the log).
async fn audit_sign_in(
    s: &AppState,
    addr: &SocketAddr,
    email: &str,
    user_id: Option<&str>,
    failure: Option<&str>,
) {
    let mut e = audit::Event::new(audit::kind::SIGN_IN).client(addr);
    if email.contains('@') && !email.chars().any(char::is_whitespace) {
        e = e.email(email);
    }
    if let Some(id) = user_id {
        e = e.user(id);
    }
    if let Some(f) = failure {
        e = e.failed(f);
    }
    s.audit.record(e).await;
}

pub async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form = page_form(&body)?;
    check_csrf(&s, &headers, &form)?;
    if let Some(token) = cookie(&headers, &cookie_name(&s, "mogplex_session")) {
        s.db.delete_web_session(&token).await?;
    }
    let mut r = pages::message_page(
        "Signed out",
        "You are signed out of Mogplex in this browser.",
    )
    .into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&s, &cookie_name(&s, "mogplex_session"), "", "Lax", 0),
    );
    Ok(r)
}

pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(Redirect::to(routes::LOGIN_PAGE).into_response());
    };
    let (csrf, set) = csrf_token(&s, &headers);
    let body = format!(
        "<h1>Mogplex</h1><p id=\"message\">Signed in as {}.</p><form method=\"post\" action=\"/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
        pages::esc(&user.email),
        pages::esc(&csrf)
    );
    Ok(with_cookie(
        pages::layout("Mogplex", &body).into_response(),
        set,
    ))
}

/// The sign-in page, coming back to `next` afterwards.
pub fn to_login(next: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    Redirect::to(&format!("{}?{q}", routes::LOGIN_PAGE)).into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

/// Shows the code entry form, prefilled from `verification_uri_complete`. A GET never approves.
pub async fn device_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Result<Response, AppError> {
    let prefill = q.user_code.unwrap_or_default();
    let Some(user) = signed_in_user(&s, &headers).await? else {
        let next = if prefill.is_empty() {
            routes::DEVICE_PAGE.to_owned()
        } else {
            format!(
                "{}?{}",
                routes::DEVICE_PAGE,
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &prefill)
                    .finish()
            )
        };
        return Ok(to_login(&next));
    };
    let (csrf, set) = csrf_token(&s, &headers);
    let prefill: String = prefill.chars().take(16).collect();
    Ok(with_cookie(
        pages::device_entry_page(&csrf, &user.email, &prefill, None).into_response(),
        set,
    ))
}

/// The 429 page for too many wrong device codes.
fn device_refused(csrf: &str, user: &User, refused: crate::throttle::Refused) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        pages::device_entry_page(csrf, &user.email, "", Some(&refused.message)),
    )
        .into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from((refused.until - now()).max(1)),
    );
    r
}

/// Looks the code up and asks the user to confirm. Wrong codes count towards a limit.
pub async fn device_submit(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form = page_form(&body)?;
    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(to_login(routes::DEVICE_PAGE));
    };
    check_csrf(&s, &headers, &form)?;
    let (csrf, _) = csrf_token(&s, &headers);
    let attempt = match crate::throttle::DeviceCode::begin(&s, &user.id, &addr).await? {
        Ok(a) => a,
        Err(refused) => return Ok(device_refused(&csrf, &user, refused)),
    };
    let input = form.get("user_code").unwrap_or_default();
    let valid = match crypto::normalize_user_code(input) {
        Some(code) => {
            s.db.device_by_user_code(&code)
                .await?
                .filter(|d| d.status == "pending" && d.expires_at > now())
                .map(|d| (code, d.client_id))
        }
        None => None,
    };
    let Some((code, client_id)) = valid else {
        // The slots stay taken: a wrong code counts.
        let shown: String = input.chars().take(16).collect();
        return Ok((
            StatusCode::BAD_REQUEST,
            pages::device_entry_page(
                &csrf,
                &user.email,
                &shown,
                Some("That code is not valid or has expired. Check your terminal and try again."),
            ),
        )
            .into_response());
    };
    attempt.valid(&s).await?;
    Ok(pages::device_confirm_page(
        &csrf,
        &user.email,
        &crypto::display_user_code(&code),
        &crate::oidc::clients::find(&s, &client_id)
            .await?
            .map(|c| c.name)
            .unwrap_or(client_id),
    )
    .into_response())
}

/// Approval happens only here: a CSRF-protected POST from a signed-in session.
pub async fn device_approve(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form = page_form(&body)?;
    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(to_login(routes::DEVICE_PAGE));
    };
    check_csrf(&s, &headers, &form)?;
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(AppError::page(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "Choose Approve or Deny.",
            ));
        }
    };
    // Codes tried here count towards the same limit as on the entry page.
    let attempt = match crate::throttle::DeviceCode::begin(&s, &user.id, &addr).await? {
        Ok(a) => a,
        Err(refused) => {
            let (csrf, _) = csrf_token(&s, &headers);
            return Ok(device_refused(&csrf, &user, refused));
        }
    };
    let Some(code) = form.get("user_code").and_then(crypto::normalize_user_code) else {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Invalid code",
            "That code is not valid.",
        ));
    };
    let decided = s.db.decide_device(&code, &user.id, approve).await?;
    let kind = if approve {
        audit::kind::DEVICE_APPROVED
    } else {
        audit::kind::DEVICE_DENIED
    };
    let mut e = audit::Event::new(kind)
        .user(&user.id)
        .email(&user.email)
        .client(&addr);
    if !decided {
        e = e.failed("code expired or already used");
    }
    s.audit.record(e).await;
    if decided {
        attempt.valid(&s).await?;
    }
    if !decided {
        return Err(AppError::page(
            StatusCode::BAD_REQUEST,
            "Code no longer valid",
            "This code has expired or was already used. Start the sign-in again from your terminal.",
        ));
    }
    Ok(if approve {
        pages::message_page(
            "Device connected",
            "The Mogplex CLI is signed in. You can close this window and return to your terminal.",
        )
    } else {
        pages::message_page("Sign-in denied", "The device was not signed in.")
    }
    .into_response())
}

pub fn not_found_page() -> Html<String> {
    pages::message_page("Not found", "There is nothing at this address.")
}

fn money(p: &mogplex_protocol::Pricing) -> String {
    format!(
        "{:.2} / {:.2} {} per million tokens (input / output)",
        p.input_per_million, p.output_per_million, p.currency
    )
}

/// Available Models: the models the signed-in user's plan allows.
pub async fn models_page(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(to_login(routes::MODELS_PAGE));
    };
    let plan = s.db.user_plan(&user.id).await?;
    let rows = s.db.plan_models(&user.id).await?;
    let mut body = format!(
        "<h1>Available Models</h1><p>Signed in as {}.</p>",
        pages::esc(&user.email)
    );
    match &plan {
        None => body.push_str("<p id=\"message\">Your account has no plan yet, so it cannot use any model. See <a href=\"/plans-and-billing\">Plans &amp; Billing</a>.</p>"),
        Some(name) if rows.is_empty() => body.push_str(&format!("<p id=\"message\">Your plan, {}, includes no models yet.</p>", pages::esc(name))),
        Some(name) => {
            body.push_str(&format!("<p id=\"message\">Your plan, {}, includes:</p><ul id=\"models\">", pages::esc(name)));
            for m in rows.iter().filter_map(crate::gateway::catalog_entry) {
                let price = m.pricing.as_ref().map(|p| format!(" · {}", money(p))).unwrap_or_default();
                let ctx = m.context_window.map(|c| format!(" · {c} tokens of context")).unwrap_or_default();
                body.push_str(&format!("<li><code>{}</code> {}{}{}</li>", pages::esc(&m.slug), pages::esc(&m.display_name), pages::esc(&ctx), pages::esc(&price)));
            }
            body.push_str("</ul><p>Use one with <code>mogplex --model SLUG</code>.</p>");
        }
    }
    Ok(pages::layout("Available Models", &body).into_response())
}

/// Plans & Billing: the signed-in user's plan. Billing itself is handled by the administrator.
pub async fn plans_page(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(user) = signed_in_user(&s, &headers).await? else {
        return Ok(to_login(routes::PLANS_PAGE));
    };
    let plan = s.db.user_plan(&user.id).await?;
    let message = match plan {
        Some(name) => format!("Your plan is {}. See <a href=\"/web/models\">Available Models</a> for what it includes.", pages::esc(&name)),
        None => "Your account has no plan, so it cannot use models yet. Ask the administrator of this Mogplex service to assign one \
                 (<code>mogplex-server plan assign --email YOU --plan NAME</code>)."
            .to_owned(),
    };
    let body = format!(
        "<h1>Plans &amp; Billing</h1><p>Signed in as {}.</p><p id=\"message\">{message}</p>",
        pages::esc(&user.email)
    );
    Ok(pages::layout("Plans & Billing", &body).into_response())
}

/// The browser pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::HOME_PAGE, get(home))
        .route(routes::LOGIN_PAGE, get(login_page).post(login_submit))
        .route(routes::LOGOUT, post(logout))
        .route(routes::DEVICE_PAGE, get(device_page).post(device_submit))
        .route(routes::DEVICE_APPROVE, post(device_approve))
        .route(routes::MODELS_PAGE, get(models_page))
        .route(routes::PLANS_PAGE, get(plans_page))
}
