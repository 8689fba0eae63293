//! A browser played over HTTP ([`HttpBrowser`]): login, consent and device pages.

use super::*;

/// Plays a user's browser in node-oidc-provider's pages (and mogplex-server's sign-in and
/// consent pages) over plain HTTP: follows redirects by
/// hand, keeps cookies (so a second authorization in the same browser reuses the session),
/// fills the login form, answers consent and the device pages. Stops at the client's redirect
/// URI without fetching it.
#[derive(Debug, Clone)]
pub struct HttpBrowser {
    http: reqwest::Client,
}

impl Default for HttpBrowser {
    fn default() -> Self {
        Self::new()
    }
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

enum Outcome {
    Redirect(String),
    Done,
}

impl HttpBrowser {
    /// A fresh browser: no cookies, no session at the provider.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client builds");
        Self { http }
    }

    /// Opens an authorization URL, signs in and consents as `login`, and returns the address
    /// the provider finally redirects to (the `redirect_uri` of the URL, with `code`, `state`
    /// and `iss`, or `error`), without requesting it. (With `response_mode=form_post` the
    /// posted fields come back as that address's query.)
    pub async fn authorize(&self, authorize_url: &str, login: &Login) -> Result<String, String> {
        let url = Url::parse(authorize_url).map_err(|e| format!("{authorize_url}: {e}"))?;
        let redirect = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("{authorize_url} has no redirect_uri"))?;
        self.authorize_until(authorize_url, &redirect, login).await
    }

    /// [`Self::authorize`], stopping at any address that starts with `redirect_prefix` (for an
    /// authorization URL that does not carry its `redirect_uri`, e.g. a pushed request).
    pub async fn authorize_until(
        &self,
        authorize_url: &str,
        redirect_prefix: &str,
        login: &Login,
    ) -> Result<String, String> {
        let url = Url::parse(authorize_url).map_err(|e| format!("{authorize_url}: {e}"))?;
        let stop = |u: &Url| u.as_str().starts_with(redirect_prefix);
        match self.drive(url, &stop, login, None).await? {
            Outcome::Redirect(to) => Ok(to),
            Outcome::Done => {
                Err("the provider showed a success page instead of redirecting".into())
            }
        }
    }

    /// Opens the device verification page (plain or complete), enters `user_code`, signs in
    /// and consents as `login`, and returns once the provider shows its success page. With a
    /// [`Login::denying`] user it answers "Abort" and returns the page after that as an error.
    pub async fn approve_device(
        &self,
        verification_uri: &str,
        user_code: &str,
        login: &Login,
    ) -> Result<(), String> {
        let url = Url::parse(verification_uri).map_err(|e| format!("{verification_uri}: {e}"))?;
        match self.drive(url, &|_| false, login, Some(user_code)).await? {
            Outcome::Done => Ok(()),
            Outcome::Redirect(to) => Err(format!("unexpected redirect to {to}")),
        }
    }

    async fn drive(
        &self,
        start: Url,
        stop: &dyn Fn(&Url) -> bool,
        login: &Login,
        user_code: Option<&str>,
    ) -> Result<Outcome, String> {
        let mut step = Step::Get(start);
        let mut visited = Vec::new();
        let mut submitted_login = false;
        let mut submitted_code = false;
        let mut aborted = false;
        for _ in 0..30 {
            let (url, request) = match step {
                Step::Get(url) => (url.clone(), self.http.get(url)),
                Step::Post(url, form) => (url.clone(), self.http.post(url).form(&form)),
            };
            visited.push(url.to_string());
            let response = request
                .send()
                .await
                .map_err(|e| format!("{url}: {e} (visited {visited:?})"))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{status} without Location at {url}"))?;
                let next = url
                    .join(location)
                    .map_err(|e| format!("bad Location {location:?}: {e}"))?;
                if stop(&next) {
                    return Ok(Outcome::Redirect(next.into()));
                }
                step = Step::Get(next);
                continue;
            }
            let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
            let unexpected = |what: &str| {
                format!(
                    "{what} at {url} ({status}): {} (visited {visited:?})",
                    page_text(&body)
                )
            };
            if has_id(&body, "success") && status == StatusCode::OK {
                return Ok(Outcome::Done);
            }
            if aborted {
                return Err(unexpected(
                    "after \"Abort\" (as asked), the provider showed",
                ));
            }
            if let Some(form) = Form::find(&body, "login") {
                if submitted_login {
                    return Err(unexpected("the provider refused the login"));
                }
                submitted_login = true;
                // The provider's form names the account `login`; mogplex-server's names it
                // `email` and carries hidden fields (CSRF, where to go next) to send back.
                let account_field = if form.fields.iter().any(|(n, _)| n == "email") {
                    "email"
                } else {
                    "login"
                };
                let mut fields: Vec<(String, String)> = form
                    .fields
                    .iter()
                    .filter(|(n, _)| !matches!(n.as_str(), "login" | "email" | "password"))
                    .cloned()
                    .collect();
                fields.push((account_field.to_owned(), login.login.clone()));
                fields.push(("password".to_owned(), login.password.clone()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "consent") {
                let decision = if login.allow { "allow" } else { "deny" };
                let mut fields = form.fields_except("decision");
                fields.push(("decision".to_owned(), decision.to_owned()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "op.deviceInputForm") {
                let code = user_code.ok_or_else(|| unexpected("a device code page"))?;
                if submitted_code {
                    return Err(unexpected("the provider refused the user code"));
                }
                submitted_code = true;
                let mut fields = form.fields_except("user_code");
                fields.push(("user_code".into(), code.into()));
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::find(&body, "op.deviceConfirmForm") {
                let mut fields = form.fields_except("abort");
                if !login.allow {
                    fields.push(("abort".into(), "yes".into()));
                    aborted = true;
                }
                step = Step::Post(form.action(&url)?, fields);
            } else if let Some(form) = Form::auto_submitted(&body) {
                let action = form.action(&url)?;
                if stop(&action) {
                    // response_mode=form_post: the same parameters, handed back as a query.
                    let mut to = action;
                    to.query_pairs_mut().extend_pairs(&form.fields);
                    return Ok(Outcome::Redirect(to.into()));
                }
                step = Step::Post(action, form.fields);
            } else if has_id(&body, "error") {
                return Err(unexpected("the provider showed an error"));
            } else {
                return Err(unexpected("an unexpected page"));
            }
        }
        Err(format!("more than 30 requests without an end: {visited:?}"))
    }
}

/// A `<form>` of a page: its `action` and its `<input>` fields, entities decoded.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn find(html: &str, id: &str) -> Option<Self> {
        Self::find_where(html, |attrs| attr(attrs, "id") == Some(id))
    }

    /// The form of a page that submits itself (the provider's `form_post` pages).
    fn auto_submitted(html: &str) -> Option<Self> {
        if !html.contains("document.forms[0].submit()") {
            return None;
        }
        Self::find_where(html, |_| true)
    }

    fn find_where(html: &str, wanted: impl Fn(&[(String, String)]) -> bool) -> Option<Self> {
        let mut rest = html;
        while let Some(at) = rest.find("<form") {
            let (attrs, after) = tag_attributes(&rest[at + 5..])?;
            if wanted(&attrs) {
                let inner = &after[..after.find("</form>").unwrap_or(after.len())];
                let mut fields = Vec::new();
                let mut scan = inner;
                while let Some(i) = scan.find("<input") {
                    let Some((a, next)) = tag_attributes(&scan[i + 6..]) else {
                        break;
                    };
                    if let Some(name) = attr(&a, "name") {
                        fields.push((name.to_owned(), attr(&a, "value").unwrap_or("").to_owned()));
                    }
                    scan = next;
                }
                return Some(Self {
                    action: attr(&attrs, "action").unwrap_or("").to_owned(),
                    fields,
                });
            }
            rest = after;
        }
        None
    }

    fn action(&self, base: &Url) -> Result<Url, String> {
        base.join(&self.action)
            .map_err(|e| format!("bad form action {:?}: {e}", self.action))
    }

    fn fields_except(&self, name: &str) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|(n, _)| n != name)
            .cloned()
            .collect()
    }
}

/// Parses the attributes of a tag whose name has just been consumed; returns them (values
/// entity-decoded) and the text after the tag's `>`.
fn tag_attributes(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut attrs = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((attrs, &s[i + 1..]));
        }
        let start = i;
        while i < bytes.len() && !b" \t\r\n=>/".contains(&bytes[i]) {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let end = s[i + 1..].find(quote as char)? + i + 1;
                value = decode_entities(&s[i + 1..end]);
                i = end + 1;
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&s[start..i]);
            }
        }
        attrs.push((name, value));
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn has_id(html: &str, id: &str) -> bool {
    html.contains(&format!("id=\"{id}\""))
}

/// The visible text of a page, squeezed, for error messages.
fn page_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let text = decode_entities(&out.split_whitespace().collect::<Vec<_>>().join(" "));
    text.chars().take(600).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_forms_inputs_and_decodes_entities() {
        let html = r#"<p>x</p><form id="other" action="/no"><input name="a"></form>
<form id="op.deviceConfirmForm" method="post" action="/device?x=1&amp;y=2">
<input type="hidden" name="xsrf" value="a&quot;b"/>
<input type=hidden name=user_code value=ABCD-EFGH>
<input type="text" name="confirm" value='yes' disabled>
</form>"#;
        let form = Form::find(html, "op.deviceConfirmForm").unwrap();
        assert_eq!(form.action, "/device?x=1&y=2");
        assert_eq!(
            form.fields,
            vec![
                ("xsrf".to_owned(), "a\"b".to_owned()),
                ("user_code".to_owned(), "ABCD-EFGH".to_owned()),
                ("confirm".to_owned(), "yes".to_owned()),
            ]
        );
        assert!(Form::find(html, "missing").is_none());
        assert_eq!(page_text("<h1>Hi</h1>\n<p>a &amp; b</p>"), "Hi a & b");
    }
}
