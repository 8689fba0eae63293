//! Single sign-on with node-oidc-provider (the pinned npm peer) as the company's identity
//! provider: a new user of an allowed domain signs in through it and gets an account; an
//! existing account is linked by verified email; another domain, an unverified email, the
//! provider's error, a forged state and a state from another browser each get a clear page and
//! touch no account; the signed-in session then authorizes the CLI as usual.

use crate::both;
use crate::harness::*;
use crate::oidc::{SECRETS_KEY, jwt_parts};
use mogplex_testkit::peers::{
    Account, HttpBrowser, Login, OidcConfig, OidcProvider, confidential_client,
};

fn server_bin(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogplex-server"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts sign-in with the provider in `br`; the provider's address it was sent to.
async fn start(s: &TestServer, br: &reqwest::Client) -> String {
    let r = br
        .get(format!("{}/sso/acme?next=%2F", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    location(&r)
}

/// The whole provider round trip as `user`: our server's final answer to the browser.
async fn sso(s: &TestServer, br: &reqwest::Client, user: &str) -> reqwest::Response {
    let at_idp = start(s, br).await;
    let callback = HttpBrowser::new()
        .authorize_until(
            &at_idp,
            &format!("{}/sso/callback", s.url),
            &Login::new(user, "any"),
        )
        .await
        .unwrap();
    br.get(&callback).send().await.unwrap()
}

async fn users(s: &TestServer) -> i64 {
    s.count("SELECT COUNT(*) FROM users").await
}

async fn single_sign_on_through_a_company_identity_provider(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.env
            .insert("ACME_SECRET".into(), "acme-client-secret".into());
        c.key_cache_secs = 0;
    })
    .await;
    let callback = format!("{}/sso/callback", s.url);
    let idp = tokio::task::spawn_blocking(move || {
        OidcProvider::start(OidcConfig {
            accounts: vec![
                Account::new("alice", "alice@example.com", "Alice Example"),
                Account::new("ada", "ada@example.com", "Ada"),
                Account::new("bob", "bob@other.example", "Bob"),
                Account::new("carol", "carol@example.com", "Carol").unverified(),
            ],
            clients: vec![confidential_client(
                "mogplex",
                "acme-client-secret",
                &[&callback],
            )],
            ..Default::default()
        })
    })
    .await
    .unwrap();
    let existing = s.user("ada@example.com").await;
    let db = s.database.as_str();
    let (code, out, err) = server_bin(&[
        "idp",
        "add",
        "--database",
        db,
        "--id",
        "acme",
        "--name",
        "Acme",
        "--issuer",
        idp.issuer(),
        "--client-id",
        "mogplex",
        "--client-secret-env",
        "ACME_SECRET",
        "--allowed-domain",
        "example.com",
        "--create-accounts",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/sso/callback"), "{out}");
    let (code, _, err) = server_bin(&[
        "idp",
        "add",
        "--database",
        db,
        "--id",
        "x",
        "--name",
        "X",
        "--issuer",
        idp.issuer(),
        "--client-id",
        "m",
        "--client-secret-env",
        "S",
        "--create-accounts",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("needs at least one --allowed-domain") && err.contains("hint: "),
        "{err}"
    );

    // The sign-in page offers it.
    let br = browser();
    let page = br
        .get(format!("{}/login", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"sso-acme\"") && page.contains("Continue with Acme"),
        "{page}"
    );

    // A new user of the allowed domain: an account is created, the browser signed in.
    let before = users(&s).await;
    let r = sso(&s, &br, "alice").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/");
    let home = br
        .get(format!("{}/", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Signed in as alice@example.com"), "{home}");
    assert_eq!(users(&s).await, before + 1);
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM users WHERE email = 'alice@example.com' AND email_verified = 1"
        )
        .await,
        1
    );
    // Again: the same account (linked by the provider's subject), none created.
    let again = browser();
    assert_eq!(sso(&s, &again, "alice").await.status(), 303);
    assert_eq!(users(&s).await, before + 1);

    // An existing account is linked by its verified email.
    let ada = browser();
    assert_eq!(sso(&s, &ada, "ada").await.status(), 303);
    assert_eq!(users(&s).await, before + 1);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM sso_identities WHERE user_id = '{existing}'"
        ))
        .await,
        1
    );

    // Refusals: a page saying why, no account touched, no session.
    for (user, wanted) in [
        ("bob", "Accounts of other.example cannot sign in"),
        ("carol", "has not verified"),
    ] {
        let br = browser();
        let r = sso(&s, &br, user).await;
        assert_eq!(r.status(), 400, "{user}");
        let text = r.text().await.unwrap();
        assert!(text.contains(wanted), "{user}: {text}");
        let home = br.get(format!("{}/", s.url)).send().await.unwrap();
        assert_eq!(home.status(), 303, "not signed in");
    }
    assert_eq!(users(&s).await, before + 1);

    // A forged state; a state started in another browser; the provider's error.
    let br = browser();
    let r = br
        .get(format!("{}/sso/callback?state=forged&code=x", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("unknown, expired or already used")
    );
    let at_idp = start(&s, &br).await;
    let state = query_param(&at_idp, "state").unwrap();
    let r = plain()
        .get(format!("{}/sso/callback?state={state}&code=x", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not started in this browser")
    );
    let at_idp = start(&s, &br).await;
    let state = query_param(&at_idp, "state").unwrap();
    let r = br
        .get(format!(
            "{}/sso/callback?state={state}&error=access_denied&error_description=nope",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Acme refused the sign-in (access_denied: nope)")
    );
    assert_eq!(users(&s).await, before + 1);

    // The SSO session authorizes the CLI like a password one (the consent page included).
    let br = browser();
    assert_eq!(sso(&s, &br, "alice").await.status(), 303);
    let p = pkce();
    let r = br
        .get(authorize_url(
            &s,
            REDIRECT,
            &[
                ("response_type", "code"),
                ("scope", "openid email"),
                ("state", "st"),
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let r = approve_consent(&s, &br, r).await;
    let code = query_param(&location(&r), "code").unwrap();
    let (status, body) = exchange(&s, &code, &p, REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    let _ = SECRETS_KEY;
}
both!(single_sign_on_through_a_company_identity_provider);
