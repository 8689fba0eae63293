//! OAuth for a remote MCP server end to end: the real `mogplex` binary against a real
//! `mogplex-server` (library, 127.0.0.1 port 0) serving the demo MCP server, which the account
//! lists as `demo`. `mogplex mcp login demo` through the browser (played by a cookie-jar client)
//! and the paste box, one registration across sign-ins (counted on the server), the stored
//! bearer in `exec` and the cockpit, a refresh that names the resource, the step-up after a 403,
//! `mcp logout` and `mogplex logout` forgetting the tokens; and no token anywhere in what the
//! binary printed or logged. One sign-in is completed in Debian's headless Chromium (the driver
//! of the account sign-in's browser tests), back through the loopback listener.

use crate::common::*;
use crate::signin::{
    Login, PASSWORD, PORTS, Server, browser_until_callback, chromium_browser_command, run_against,
    signed_in, signed_in_again,
};
use serde_json::Value;
use std::io::Write;

/// A server with the demo MCP server, Ada's account listing it as `demo`, and a home signed in
/// as Ada (`MOGPLEX_URL` set).
pub fn setup() -> (Server, TestHome) {
    let server = Server::start_with(|c| c.demo_mcp = true);
    server.add_mcp(
        "ada@example.com",
        "demo",
        serde_json::json!({"url": format!("{}/mcp/demo", server.url)}),
    );
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    (server, home)
}

fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// `mogplex <args>` (an `mcp login`), the browser played up to the callback, whose address is
/// pasted. Returns the exit code, stdout, stderr and the authorization request.
pub fn mcp_login(home: &TestHome, server: &Server, args: &[&str]) -> (i32, String, String, String) {
    let mut login = Login::start(home, server, args, "true");
    let authorize = login.authorize_url();
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    let stdin = login.child.stdin.as_mut().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).unwrap();
    let (code, out, err) = login.finish();
    (code, out, err, authorize)
}

/// Every token `auth.json` holds now (account and MCP).
pub fn tokens(home: &TestHome) -> Vec<String> {
    let auth = home.auth();
    let mut out = Vec::new();
    for list in ["accounts", "mcp_tokens"] {
        for e in auth[list].as_array().into_iter().flatten() {
            for f in ["access_token", "refresh_token", "id_token"] {
                if let Some(t) = e[f].as_str() {
                    out.push(t.to_owned());
                }
            }
        }
    }
    out
}

fn mcp_entry(home: &TestHome) -> Value {
    home.auth()["mcp_tokens"][0].clone()
}

/// Makes the stored MCP token look like it expires in `secs` seconds.
pub fn expire_mcp_in(home: &TestHome, secs: i64) {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let mut v = home.auth();
    for m in v["mcp_tokens"].as_array_mut().unwrap() {
        m["expires_at"] = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
    }
    home.write_auth(&v);
}

/// The MCP sign-ins the server still honours.
const LIVE_MCP_GRANTS: &str =
    "SELECT COUNT(*) FROM token_families WHERE resource IS NOT NULL AND revoked_at IS NULL";

const MCP_REFRESHES: &str = "SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL AND family_id IN (SELECT id FROM token_families WHERE resource IS NOT NULL)";

#[test]
fn mcp_login_from_the_shell_stores_refreshes_steps_up_and_logs_out() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let demo = format!("{}/mcp/demo", server.url);
    let mut seen = Vec::new();
    let mut printed = Vec::new();
    fn texts(out: &std::process::Output) -> [String; 2] {
        [
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ]
    }

    // Before: the server asks for a sign-in, and list says how.
    let out = home.run(&["mcp", "list"]);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        list.contains(&format!(
            "demo  http  {demo}  needs sign-in — mogplex mcp login demo"
        )),
        "{list}"
    );
    // exec cannot use it yet, and says what to do.
    let out = home.run(&["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"]);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("error: the MCP server `demo` needs sign-in"),
        "{err}"
    );
    assert!(
        err.contains("hint: sign in to it with `mogplex mcp login demo`"),
        "{err}"
    );

    // The sign-in: the authorization request names the resource, the scope and S256.
    let (code, out, err, authorize) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    printed.extend([out.clone(), err.clone()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "Signed in to the MCP server demo");
    assert!(
        err.contains("Open this address in a browser to sign in to the MCP server demo")
            || err.contains("Opening your browser to sign in to the MCP server demo"),
        "{err}"
    );
    assert!(
        err.contains(&format!("registered mogplex as a client of {}", server.url)),
        "{err}"
    );
    assert_eq!(
        query(&authorize, "resource").as_deref(),
        Some(demo.as_str())
    );
    assert_eq!(query(&authorize, "scope").as_deref(), Some("mcp:demo"));
    assert_eq!(
        query(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query(&authorize, "client_id").unwrap().starts_with("mcl_"));
    assert_eq!(mode(&home.auth_path()), 0o600);
    let auth = home.auth();
    let m = &auth["mcp_tokens"][0];
    assert_eq!(m["server"], "demo");
    assert_eq!(m["resource"], demo.as_str());
    assert_eq!(m["issuer"], server.url.as_str());
    assert_eq!(m["scope"], "mcp:demo");
    assert_eq!(m["account"], auth["default_account"]);
    assert!(m["access_token"].as_str().unwrap().starts_with("mog_at_"));
    assert!(m["refresh_token"].as_str().unwrap().starts_with("mog_rt_"));
    assert_eq!(auth["mcp_clients"].as_array().unwrap().len(), 1);
    assert_eq!(auth["mcp_clients"][0]["client_id"], m["client_id"]);
    seen.extend(tokens(&home));

    // A second sign-in reuses the registered client: one registration on the server.
    let (code, out, err, authorize2) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    printed.extend([out.clone(), err.clone()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("registered mogplex"), "{err}");
    assert_eq!(
        query(&authorize2, "client_id"),
        query(&authorize, "client_id")
    );
    assert_eq!(
        server.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1"),
        1
    );
    assert_eq!(home.auth()["mcp_tokens"].as_array().unwrap().len(), 1);
    seen.extend(tokens(&home));

    let out = home.run(&["mcp", "list"]);
    printed.extend(texts(&out));
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(list.contains("signed in (mcp:demo), until"), "{list}");

    // A tool call with the stored bearer.
    let whoami = |home: &TestHome| {
        run_against(
            home,
            &server,
            &["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"],
        )
    };
    let out = whoami(&home);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ada@example.com"
    );

    // Due for renewal: one refresh, which names the resource (the bound grant refuses any
    // other), and the call goes on with the new token.
    let before = mcp_entry(&home)["access_token"].clone();
    let refreshes = server.count(MCP_REFRESHES);
    expire_mcp_in(&home, 60);
    let out = whoami(&home);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ada@example.com"
    );
    assert_eq!(server.count(MCP_REFRESHES), refreshes + 1);
    assert_ne!(mcp_entry(&home)["access_token"], before);
    seen.extend(tokens(&home));

    // admin_stats needs mcp:admin: the call fails naming the scope; a sign-in with it works.
    let admin = |home: &TestHome| {
        run_against(
            home,
            &server,
            &[
                "exec",
                "--allow-tool",
                "demo.admin_stats",
                "call demo.admin_stats {}",
            ],
        )
    };
    let out = admin(&home);
    printed.extend(texts(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("needs more access (mcp:demo mcp:admin"),
        "{}",
        home.render(&out)
    );
    let (code, out, err, authorize) = mcp_login(
        &home,
        &server,
        &["mcp", "login", "demo", "--scope", "mcp:demo mcp:admin"],
    );
    printed.extend([out, err.clone()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        query(&authorize, "scope").as_deref(),
        Some("mcp:demo mcp:admin")
    );
    let out = admin(&home);
    printed.extend(texts(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("live sign-ins to this server"),
        "{}",
        home.render(&out)
    );
    seen.extend(tokens(&home));

    // mcp logout: the tokens go, and the sign-in is revoked at the authorization server.
    let out = home.run(&["mcp", "logout", "demo"]);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("Signed out of the MCP server demo: removed its tokens from"),
        "{}",
        home.render(&out)
    );
    assert!(home.auth().get("mcp_tokens").is_none());
    assert_eq!(server.count(LIVE_MCP_GRANTS), 0);
    let out = home.run(&["mcp", "logout", "demo"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));

    // `mogplex logout` forgets the account's MCP tokens with the account and revokes them at
    // their authorization server; the registration stays.
    let (code, out, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    printed.extend([out, err.clone()]);
    assert_eq!(code, 0, "{err}");
    seen.extend(tokens(&home));
    assert_eq!(server.count(LIVE_MCP_GRANTS), 1);
    let out = home.run(&["logout"]);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("note: also removed the sign-ins to its MCP servers (demo)"),
        "{}",
        home.render(&out)
    );
    let auth = home.auth();
    assert!(auth.get("mcp_tokens").is_none(), "{auth}");
    assert_eq!(auth["mcp_clients"].as_array().unwrap().len(), 1);
    assert_eq!(server.count(LIVE_MCP_GRANTS), 0, "revoked on the server");

    // `mogplex logout --all` does the same for every account.
    printed.push(signed_in_again(&home, &server, "ada@example.com"));
    let (code, out, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    printed.extend([out, err.clone()]);
    assert_eq!(code, 0, "{err}");
    seen.extend(tokens(&home));
    assert_eq!(server.count(LIVE_MCP_GRANTS), 1);
    let out = home.run(&["logout", "--all"]);
    printed.extend(texts(&out));
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(home.auth().get("mcp_tokens").is_none());
    assert_eq!(server.count(LIVE_MCP_GRANTS), 0, "revoked on the server");

    // No token was printed or logged, ever.
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 8, "{}", seen.len());
    let log = home.log_text();
    assert!(log.contains("\"event\":\"mcp.login\""), "{log}");
    for t in &seen {
        for p in &printed {
            assert!(!p.contains(t.as_str()), "a token was printed: {p}");
        }
        assert!(!log.contains(t.as_str()), "a token was logged");
    }
}

#[test]
fn the_cockpit_signs_in_connects_calls_and_steps_up() {
    use crate::cockpit::{browser_url, cockpit, expect, submit};
    use crate::mcp::{flat, wait_connected};
    use mogplex_testkit::term::keys;
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let url_file = home.dir.path().join("browser-url");
    let browser = format!("echo >> {}", url_file.display());
    let mut t = cockpit(&home, &[("BROWSER", &browser)]);
    expect(&t, "MCP: demo");

    // /mcp: the server needs a sign-in, and says how.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        submit(&mut t, "/mcp");
        let screen = expect(&t, "MCP servers");
        if flat(&screen).contains("needs sign-in — /mcp login demo") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{screen}");
        t.send(keys::ESC);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    t.send(keys::ESC);

    // /mcp login demo: the browser is asked to open the authorization request; it comes back
    // to the loopback listener, or (`paste`) the user submits its address in the composer.
    let sign_in = |t: &mut mogplex_testkit::term::Term, paste: bool| {
        let _ = std::fs::remove_file(&url_file);
        submit(t, "/mcp login demo");
        let authorize = browser_url(&url_file);
        let callback = server.block_on(browser_until_callback(&server.url, &authorize));
        if paste {
            expect(t, "Paste here the address");
            submit(t, &callback);
            expect(t, "Address received; finishing the MCP sign-in");
            return authorize;
        }
        let answer =
            server.block_on(async { reqwest::get(&callback).await.unwrap().text().await.unwrap() });
        assert!(answer.contains("You can close this window"), "{answer}");
        // The page says which server was signed in to, not the account.
        assert!(
            answer.contains("<h1 id=\"title\">Signed in to the MCP server demo</h1>"),
            "{answer}"
        );
        assert!(!answer.contains("Signed in to Mogplex"), "{answer}");
        authorize
    };
    let authorize = sign_in(&mut t, false);
    assert_eq!(query(&authorize, "scope").as_deref(), Some("mcp:demo"));
    expect(&t, "Signed in to the MCP server demo (mcp:demo)");
    let screen = wait_connected(&mut t);
    assert!(flat(&screen).contains("connected · 3 tools"), "{screen}");
    assert!(screen.contains("whoami"), "{screen}");
    t.send(keys::ESC);

    submit(&mut t, "call demo.whoami {}");
    expect(&t, "Allow it?");
    t.send("y");
    expect(&t, "demo.whoami → ada@example.com");

    // A tool that needs more access: said, and /mcp shows the scope a new sign-in asks for.
    submit(&mut t, "call demo.admin_stats {}");
    expect(&t, "Allow it?");
    t.send("y");
    expect(
        &t,
        "needs more access (mcp:demo mcp:admin): /mcp login demo",
    );
    submit(&mut t, "/mcp");
    let screen = expect(&t, "MCP servers");
    assert!(
        flat(&screen).contains("needs more access (mcp:demo mcp:admin) — /mcp login demo"),
        "{screen}"
    );
    t.send(keys::ESC);

    // The step-up, through the paste path: the wider scope, the same client; the address
    // never reached the model (the echo model would have answered it); the tool works after it.
    let authorize2 = sign_in(&mut t, true);
    assert_eq!(
        query(&authorize2, "scope").as_deref(),
        Some("mcp:demo mcp:admin")
    );
    assert_eq!(
        query(&authorize2, "client_id"),
        query(&authorize, "client_id")
    );
    let screen = expect(&t, "Signed in to the MCP server demo (mcp:demo mcp:admin)");
    assert!(
        !screen.contains("state="),
        "the address was shown or sent: {screen}"
    );
    wait_connected(&mut t);
    t.send(keys::ESC);
    submit(&mut t, "call demo.admin_stats {}");
    expect(&t, "Allow it?");
    t.send("y");
    expect(&t, "demo.admin_stats → live sign-ins to this server");
    assert_eq!(
        server.count("SELECT COUNT(*) FROM oauth_clients WHERE dynamic = 1"),
        1
    );
    let seen = tokens(&home);

    // /mcp logout demo: the tokens go.
    submit(&mut t, "/mcp logout demo");
    expect(&t, "Signed out of the MCP server demo");
    assert!(home.auth().get("mcp_tokens").is_none());
    let screen = t.screen();
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(crate::cockpit::WAIT).is_some());
    let log = home.log_text();
    for tok in &seen {
        assert!(!screen.contains(tok.as_str()), "a token on screen");
        assert!(!log.contains(tok.as_str()), "a token was logged");
    }
}

/// Revokes `token` at the server's MCP revocation endpoint (RFC 7009), as an administrator or
/// another device would.
fn revoke_on_server(server: &Server, token: &str, hint: &str) {
    let url = format!("{}/api/auth/mcp/revoke", server.url);
    let status = server.block_on(async {
        reqwest::Client::new()
            .post(url)
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
}

/// A connected server that refuses its token mid-session (the access token revoked on the
/// server): the cockpit renews it once, reconnects and the call goes on; when the sign-in itself
/// was revoked, the renewal fails and only then does the server need a new sign-in.
#[test]
fn a_mid_session_401_renews_the_token_once_and_reconnects() {
    use crate::cockpit::{WAIT, cockpit, expect, submit};
    use crate::mcp::{flat, wait_connected};
    use mogplex_testkit::term::keys;
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let (code, _, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    assert_eq!(code, 0, "{err}");
    let mut t = cockpit(&home, &[]);
    wait_connected(&mut t);
    t.send(keys::ESC);
    let answered = |t: &mogplex_testkit::term::Term, n: usize| {
        t.wait_until(
            |s| s.matches("demo.whoami → ada@example.com").count() >= n,
            WAIT,
        )
        .unwrap_or_else(|s| panic!("answer {n} never appeared:\n{s}"))
    };
    submit(&mut t, "call demo.whoami {}");
    expect(&t, "Allow it?");
    t.send("y");
    answered(&t, 1);

    // The access token is revoked on the server: the next call is refused with a 401, the token
    // is refreshed once (naming the resource) and the call answers in a new session.
    let before = mcp_entry(&home);
    revoke_on_server(
        &server,
        before["access_token"].as_str().unwrap(),
        "access_token",
    );
    let refreshes = server.count(MCP_REFRESHES);
    submit(&mut t, "call demo.whoami {}");
    expect(&t, "Allow it?");
    t.send("y");
    let screen = answered(&t, 2);
    assert!(!screen.contains("needs a new sign-in"), "{screen}");
    assert_eq!(server.count(MCP_REFRESHES), refreshes + 1, "one refresh");
    let after = mcp_entry(&home);
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    submit(&mut t, "/mcp");
    let screen = expect(&t, "MCP servers");
    assert!(flat(&screen).contains("connected · 3 tools"), "{screen}");
    t.send(keys::ESC);

    // The sign-in itself is revoked: the renewal is refused, and now it needs a sign-in.
    revoke_on_server(
        &server,
        after["refresh_token"].as_str().unwrap(),
        "refresh_token",
    );
    submit(&mut t, "call demo.whoami {}");
    expect(&t, "Allow it?");
    t.send("y");
    expect(
        &t,
        "The MCP server demo needs a new sign-in: /mcp login demo",
    );
    submit(&mut t, "/mcp");
    let screen = expect(&t, "MCP servers");
    assert!(
        flat(&screen).contains("needs sign-in — /mcp login demo"),
        "{screen}"
    );
    assert!(
        home.auth().get("mcp_tokens").is_none(),
        "invalid_grant removed it"
    );
    t.send(keys::ESC);
    let seen = [&before, &after].map(|e| {
        [e["access_token"].as_str(), e["refresh_token"].as_str()].map(|t| t.unwrap().to_owned())
    });
    let screen = t.screen();
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(WAIT).is_some());
    let log = home.log_text();
    assert!(log.contains("\"event\":\"mcp.reconnected\""), "{log}");
    for tok in seen.iter().flatten() {
        assert!(!screen.contains(tok.as_str()), "a token on screen");
        assert!(!log.contains(tok.as_str()), "a token was logged");
    }
}

/// `mogplex mcp login demo` with `BROWSER` set to headless Chromium, which signs in on the
/// server's page, allows the MCP consent page and follows the redirect to the loopback listener:
/// the token lands in auth.json, bound to the demo resource on the server, and `exec` calls
/// the demo `whoami` tool with it.
#[test]
fn mcp_login_in_headless_chromium_then_exec_calls_whoami() {
    chromium_mcp_login(
        &["mcp", "login", "demo"],
        "Opening your browser to sign in to the MCP server demo",
    );
}

/// The device path, with a client the administrator registered for the device grant (named in
/// the definition): Chromium opens the address with the code filled in, signs in and approves.
#[test]
fn mcp_device_login_approved_in_headless_chromium_then_exec_calls_whoami() {
    chromium_mcp_login(&["mcp", "login", "demo", "--device"], "and enter the code:");
}

/// Without a client id, a device sign-in asks to register for the device grant, which
/// mogplex-server refuses to a client nobody vouched for: one clear error, the browser path as
/// the way out, nothing stored.
#[test]
fn mcp_device_login_without_a_device_client_says_to_use_the_browser() {
    let (server, home) = setup();
    let out = run_against(&home, &server, &["mcp", "login", "demo", "--device"]);
    assert_eq!(out.status.code(), Some(1), "{}", home.render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: the authorization server of the MCP server demo registers no client for the device flow\n"),
        "{err}"
    );
    assert!(err.contains("device_code"), "{err}");
    assert!(
        err.contains("hint: sign in in the browser instead: `mogplex mcp login demo`"),
        "{err}"
    );
    assert!(home.auth().get("mcp_tokens").is_none());
    assert!(home.auth().get("mcp_clients").is_none());
}

fn chromium_mcp_login(args: &[&str], says: &str) {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let demo = format!("{}/mcp/demo", server.url);
    let device = args.contains(&"--device");
    if device {
        server.block_on(async {
            let row = mogplex_server::db::clients::ClientRow {
                client_id: "mcl_device".into(),
                name: "mogplex on a headless machine".into(),
                secret_hash: None,
                auth_method: "none".into(),
                redirect_uris: vec![],
                grant_types: vec![
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                    "refresh_token".into(),
                ],
                created_at: 0,
                dynamic: false,
            };
            assert!(server.state.db.add_client(&row).await.unwrap());
        });
        server.add_mcp(
            "ada@example.com",
            "demo",
            serde_json::json!({"url": &demo, "client_id": "mcl_device"}),
        );
    }
    assert!(home.auth().get("mcp_tokens").is_none());
    let mut cmd = home.cmd(args);
    cmd.env("BROWSER", chromium_browser_command())
        .env("CHROMIUM_TEST_EMAIL", "ada@example.com")
        .env("CHROMIUM_TEST_PASS", PASSWORD);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Signed in to the MCP server demo"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{err}");
    assert_eq!(
        err.contains("registered mogplex as a client"),
        !device,
        "{err}"
    );

    // The token is in auth.json (0600), for the demo resource, and the server holds one live
    // grant bound to that resource.
    assert_eq!(mode(&home.auth_path()), 0o600);
    let m = mcp_entry(&home);
    assert_eq!(m["server"], "demo");
    assert_eq!(m["resource"], demo.as_str());
    assert_eq!(m["scope"], "mcp:demo");
    let access = m["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("mog_at_"), "{m}");
    assert!(m["refresh_token"].as_str().unwrap().starts_with("mog_rt_"));
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM token_families WHERE resource = '{demo}' AND revoked_at IS NULL"
        )),
        1
    );

    // exec calls the demo `whoami` tool with it.
    let out = run_against(
        &home,
        &server,
        &["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ada@example.com"
    );
    assert_eq!(
        mcp_entry(&home)["access_token"],
        access.as_str(),
        "no refresh needed"
    );
    assert!(!home.log_text().contains(&access), "the token was logged");
}

/// `/logout` (one account) in the cockpit forgets the MCP tokens obtained for that account and
/// revokes them at the authorization server; Bob's MCP sign-in, of another account, stays.
#[test]
fn the_cockpits_logout_forgets_and_revokes_the_accounts_mcp_sign_in() {
    use crate::cockpit::{WAIT, cockpit, expect, submit};
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let (code, _, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    assert_eq!(code, 0, "{err}");
    server.add_user("bob@example.com");
    crate::signin::signed_in_again(&home, &server, "bob@example.com");
    server.add_mcp(
        "bob@example.com",
        "demo",
        serde_json::json!({"url": format!("{}/mcp/demo", server.url)}),
    );
    let (code, _, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.count(LIVE_MCP_GRANTS), 2);
    assert_eq!(home.auth()["mcp_tokens"].as_array().unwrap().len(), 2);

    // Bob is the default now: /logout signs him out, with his MCP sign-in.
    let mut t = cockpit(&home, &[("MOGPLEX_URL", &server.url)]);
    expect(&t, "bob@example.com");
    submit(&mut t, "/logout");
    expect(&t, "Sign out of Mogplex?");
    t.send("y");
    expect(&t, "Signed out of Mogplex");
    let deadline = std::time::Instant::now() + WAIT;
    while server.count(LIVE_MCP_GRANTS) != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        server.count(LIVE_MCP_GRANTS),
        1,
        "Bob's MCP sign-in revoked, Ada's kept"
    );
    let left = home.auth()["mcp_tokens"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "{left:?}");
    let ada = home.auth()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"]["email"] == "ada@example.com")
        .unwrap()["id"]
        .clone();
    assert_eq!(left[0]["account"], ada, "{left:?}");
    t.send(mogplex_testkit::term::keys::CTRL_C);
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(WAIT);
}
