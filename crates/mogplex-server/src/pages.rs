//! Server-rendered pages. Plain HTML forms that work without JavaScript; every value that comes
//! from outside is escaped with [`esc`].

use axum::response::Html;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#111}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.err{color:#a00}.note{background:#f3f3f3;padding:.5rem}.code{font-family:monospace;font-size:1.6rem;letter-spacing:.2rem}";

pub fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · Mogplex</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    ))
}

pub fn message_page(title: &str, message: &str) -> Html<String> {
    layout(
        title,
        &format!(
            "<h1>{}</h1><p id=\"message\">{}</p>",
            esc(title),
            esc(message)
        ),
    )
}

/// `note` is said above the form (the development server names its demo account there).
pub fn login_page(
    csrf: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
    note: Option<&str>,
) -> Html<String> {
    let mut err = note
        .map(|n| format!("<p class=\"note\" id=\"note\">{}</p>", esc(n)))
        .unwrap_or_default();
    if let Some(e) = error {
        err.push_str(&format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)));
    }
    layout(
        "Sign in",
        &format!(
            "<h1>Sign in to Mogplex</h1>{err}<form id=\"login\" method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{}\">\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button id=\"submit\" type=\"submit\">Sign in</button></form>",
            esc(csrf),
            esc(next),
            esc(email)
        ),
    )
}

pub fn device_entry_page(
    csrf: &str,
    email: &str,
    prefill: &str,
    error: Option<&str>,
) -> Html<String> {
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    layout(
        "Connect a device",
        &format!(
            "<h1>Connect a device</h1><p>Signed in as {}.</p>{err}<p>Enter the code your terminal shows.</p>\
             <form method=\"post\" action=\"/device\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"user_code\">Code</label><input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" required value=\"{}\">\
             <button id=\"continue\" type=\"submit\">Continue</button></form>",
            esc(email),
            esc(csrf),
            esc(prefill)
        ),
    )
}

/// `client`: the name of the application asking (the Mogplex CLI, or a registered client).
pub fn device_confirm_page(csrf: &str, email: &str, user_code: &str, client: &str) -> Html<String> {
    layout(
        "Approve sign-in",
        &format!(
            "<h1>Sign in to {}?</h1><p>A device showing this code wants to sign in as {}:</p>\
             <p class=\"code\" id=\"code\">{}</p><p>Approve only if you started this sign-in yourself.</p>\
             <form method=\"post\" action=\"/device/approve\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"user_code\" value=\"{}\">\
             <button id=\"approve\" name=\"decision\" value=\"approve\" type=\"submit\">Approve</button> \
             <button id=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button></form>",
            esc(client),
            esc(email),
            esc(user_code),
            esc(csrf),
            esc(user_code)
        ),
    )
}
