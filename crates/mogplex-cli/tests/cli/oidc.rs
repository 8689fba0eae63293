//! Signing in against another authorization server (SPEC section 4, issue 13): the real `mogplex`
//! binary against node-oidc-provider (an OpenID-certified server from the npm registry, pinned,
//! started on loopback and configured as a deployer would: the `mogplex-cli` public client with
//! the CLI's redirect URIs, PKCE required, refresh token rotation, the device flow on), with
//! nothing but `MOGPLEX_URL` pointing at it. Its pages are played by `HttpBrowser`.

use crate::common::*;
use crate::signin::{Login, PORTS};
use mogplex_testkit::peers::{self, HttpBrowser, OidcConfig, OidcProvider};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// `mogplex <args>` signing in at `url`, its stderr read line by line.
pub fn login_at(home: &TestHome, url: &str, args: &[&str], env: &[(&str, &str)]) -> Login {
    let mut cmd = home.cmd(args);
    cmd.envs(env.iter().copied())
        .env("MOGPLEX_URL", url)
        .env("BROWSER", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Login {
        child,
        lines,
        seen: Vec::new(),
    }
}

/// The authorization address a waiting browser sign-in printed.
pub fn authorize_address(login: &mut Login) -> url::Url {
    let line = login.wait_for("response_type=code");
    url::Url::parse(line.trim()).unwrap()
}

pub fn param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Requests `address` (the browser's return) on the loopback listener; returns the answer.
pub fn deliver(address: &str) -> String {
    use std::io::{Read, Write};
    let u = url::Url::parse(address).unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", u.port().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let target = format!("{}?{}", u.path(), u.query().unwrap_or(""));
    s.write_all(format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn alice() -> peers::Login {
    peers::Login::new("alice", "any password")
}

/// `mogplex exec` against the provider: the refresh happens before the request, which then
/// fails (node-oidc-provider has no model gateway); what matters is what became of the sign-in.
fn exec_at(home: &TestHome, url: &str) -> std::process::Output {
    home.cmd(&["exec", "--model", "mogplex/echo", "hi"])
        .env("MOGPLEX_URL", url)
        .output()
        .unwrap()
}

/// The browser flow, a refresh after the access token expired, a replayed refresh token (signed
/// out), then the device flow and logout (revoked at the provider).
#[test]
fn signs_in_refreshes_and_logs_out_against_node_oidc_provider() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    // An issuer with a path that publishes only OpenID discovery under it (the RFC 8414
    // path-insertion address is a 404), and insists on a nonce.
    let provider = OidcProvider::start(OidcConfig {
        issuer_path: "/oidc".into(),
        require_nonce: true,
        access_token_ttl: Duration::from_secs(1),
        clock_tolerance: Duration::ZERO,
        ..OidcConfig::default()
    });
    let issuer = provider.issuer().to_owned();
    let home = TestHome::new();

    let mut login = login_at(&home, &issuer, &["login", "mogplex"], &[]);
    let authorize = authorize_address(&mut login);
    assert_eq!(
        param(&authorize, "client_id").as_deref(),
        Some("mogplex-cli")
    );
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    // Narrowed to what the provider lists (it has no `read`/`write`).
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("openid profile email offline_access")
    );
    assert!(param(&authorize, "nonce").is_some_and(|n| n.len() >= 43));
    let back = peers::block_on(HttpBrowser::new().authorize(authorize.as_str(), &alice())).unwrap();
    assert!(back.contains("code="), "{back}");
    let answer = deliver(&back);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as alice@example.com");
    let before_refresh = home.auth();
    let signed_in = home.account();
    let m = &signed_in;
    assert_eq!(m["issuer"], issuer.as_str());
    assert!(
        m["refresh_token"].is_string() && m["id_token"].is_string(),
        "{m}"
    );
    assert_eq!(m["account"]["email"], "alice@example.com");

    // The access token lives one second: the next run refreshes it (and the rotated refresh
    // token is stored) before it goes on.
    std::thread::sleep(Duration::from_millis(1500));
    let out = exec_at(&home, &issuer);
    let shown = home.render(&out);
    assert!(!shown.contains("sign-in has ended"), "{shown}");
    assert_ne!(out.status.code(), Some(64), "{shown}");
    let refreshed = home.account();
    assert!(refreshed["refresh_token"].is_string(), "{shown}");
    assert_ne!(refreshed["refresh_token"], m["refresh_token"], "rotated");
    assert_ne!(refreshed["access_token"], m["access_token"]);

    // The old refresh token replayed (auth.json restored from before the refresh): the provider
    // refuses it (and revokes the grant), and the CLI says the sign-in has ended.
    home.write_auth(&before_refresh);
    let out = exec_at(&home, &issuer);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("your Mogplex sign-in has ended; you are signed out"),
        "{stderr}"
    );
    assert!(
        home.auth().get("mogplex").is_none(),
        "the dead sign-in is removed"
    );

    // The device flow, approved in the provider's pages.
    let mut login = login_at(&home, &issuer, &["login", "--device"], &[]);
    let line = login.wait_for("which has the code filled in");
    let complete = line
        .trim()
        .trim_start_matches("(or open ")
        .trim_end_matches(", which has the code filled in)")
        .to_owned();
    let user_code = param(&url::Url::parse(&complete).unwrap(), "user_code").unwrap();
    peers::block_on(HttpBrowser::new().approve_device(&complete, &user_code, &alice())).unwrap();
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as alice@example.com");
    let rt = home.account()["refresh_token"]
        .as_str()
        .expect("a refresh token from the device flow")
        .to_owned();

    // Logout revokes the refresh token at the provider's revocation endpoint.
    let out = home
        .cmd(&["logout"])
        .env("MOGPLEX_URL", &issuer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not confirmed"));
    assert!(home.auth().get("mogplex").is_none());
    let refused = peers::block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{issuer}/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "mogplex-cli"),
                ("refresh_token", rt.as_str()),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(refused.0, 400, "{}", refused.1);
    assert!(refused.1.contains("invalid_grant"), "{}", refused.1);
}

/// An issuer with a path that publishes RFC 8414 metadata at the path-insertion address, and
/// another client id and scope set through the environment.
#[test]
fn path_insertion_and_the_client_settings_from_the_environment() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let provider = OidcProvider::start(OidcConfig {
        issuer_path: "/tenant/a".into(),
        oauth_metadata: false,
        rfc8414_path_insertion: true,
        cli_client_id: "acme-cli".into(),
        ..OidcConfig::default()
    });
    let issuer = provider.issuer().to_owned();
    let home = TestHome::new();
    let env = [
        ("MOGPLEX_CLIENT_ID", "acme-cli"),
        ("MOGPLEX_SCOPES", "openid email offline_access unknown"),
    ];
    let mut login = login_at(&home, &issuer, &["login", "mogplex"], &env);
    let authorize = authorize_address(&mut login);
    assert_eq!(param(&authorize, "client_id").as_deref(), Some("acme-cli"));
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("openid email offline_access")
    );
    let back = peers::block_on(HttpBrowser::new().authorize(authorize.as_str(), &alice())).unwrap();
    deliver(&back);
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as alice@example.com");
    assert_eq!(home.account()["issuer"], issuer.as_str());

    // A client id with a space is a usage error, before anything is sent.
    let out = home
        .cmd(&["login", "mogplex"])
        .env("MOGPLEX_URL", &issuer)
        .env("MOGPLEX_CLIENT_ID", "acme cli")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", home.render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: MOGPLEX_CLIENT_ID") && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// Sends raw bytes to a loopback port and returns the whole answer.
fn raw(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The stand-down address ignores a web page's GET (an `<img>` is enough to send one), a form
/// post, a wrong secret, and the right secret in a GET; a sign-in started in another home (for
/// another server) cannot stop a waiting one either, and takes the other port. The waiting
/// sign-in then completes.
#[test]
fn only_the_same_homes_mogplex_can_ask_a_waiting_sign_in_to_stand_down() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let provider = OidcProvider::start(OidcConfig::default());
    let home = TestHome::new();
    let mut login = login_at(&home, provider.issuer(), &["login", "mogplex"], &[]);
    let authorize = authorize_address(&mut login);
    login.wait_for("Waiting for the sign-in");
    let redirect = url::Url::parse(&param(&authorize, "redirect_uri").unwrap()).unwrap();
    assert_eq!(
        redirect.port(),
        Some(24816),
        "port 24816 was busy: {}",
        crate::common::port_holders(24816)
    );
    let secret_file = home.home.join("login-24816.stand-down");
    assert_eq!(mode(&secret_file), 0o600);
    let secret = std::fs::read_to_string(&secret_file).unwrap();

    let host = "host: 127.0.0.1:24816\r\n";
    for request in [
        format!("GET /auth/stand-down HTTP/1.1\r\n{host}accept: image/*\r\n\r\n"),
        format!(
            "POST /auth/stand-down HTTP/1.1\r\n{host}origin: https://evil.example\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 3\r\n\r\nx=1"
        ),
        format!(
            "POST /auth/stand-down HTTP/1.1\r\n{host}x-mogplex-stand-down: guessed\r\ncontent-length: 0\r\n\r\n"
        ),
        format!("GET /auth/stand-down HTTP/1.1\r\n{host}x-mogplex-stand-down: {secret}\r\n\r\n"),
    ] {
        let answer = raw(24816, &request);
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }
    assert!(login.child.try_wait().unwrap().is_none(), "still waiting");

    let elsewhere = OidcProvider::start(OidcConfig::default());
    let other = TestHome::new();
    let mut second = login_at(&other, elsewhere.issuer(), &["login", "mogplex"], &[]);
    let second_authorize = authorize_address(&mut second);
    let second_redirect = param(&second_authorize, "redirect_uri").unwrap();
    assert!(second_redirect.contains(":24818/"), "{second_redirect}");
    assert!(login.child.try_wait().unwrap().is_none(), "still waiting");

    let back = peers::block_on(HttpBrowser::new().authorize(authorize.as_str(), &alice())).unwrap();
    assert!(deliver(&back).starts_with("HTTP/1.1 200"));
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in as alice@example.com");
    assert!(!secret_file.exists(), "the secret goes with the listener");

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&second.child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let (code, _, _) = second.finish();
    assert_eq!(code, 130);
}
