//! `mogplex status` and `mogplex status --json` through the real binary: each case's text, its
//! JSON and its exit code (0 usable, 64 none, 65 rejected, 69 not checked), against a real
//! `mogplex-server` for the Mogplex cases; no secret in any output.

use crate::common::*;
use crate::signin::{PORTS, Server, expire_in, run_against, signed_in, signed_in_again};

const OPENAI: &str = "sk-status-env-0123456789abcd";
const GROQ: &str = "gsk_status-stored-0123456789wxyz";

/// Snapshot with the filters for times and durations, which change from run to run.
macro_rules! status_snap {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
                (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
                (r"(in )?\d+ (s|min|h|days)( ago)?", "[WHEN]"),
                (r#""refresh_token_age_seconds": \d+"#, r#""refresh_token_age_seconds": "[AGE]""#),
                (r"acct_[0-9a-f]+", "acct_[ID]"),
                (r"usr_[0-9a-f]+", "usr_[ID]"),
                (r"pat_[0-9a-f]+", "pat_[ID]"),
                (r"mog_…[A-Za-z0-9_-]{4}", "mog_…[TAIL]"),
                (r"\(os error \d+\)", "(os error N)"),
                (r"unix:path=[^`]*", "unix:path=[BUS]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

/// Runs `status` and `status --json` with `run`, snapshots both, checks the exit code, that the
/// JSON agrees with it, and that none of `secrets` appears anywhere. Returns the JSON.
fn both(
    name: &str,
    home: &TestHome,
    run: impl Fn(&[&str]) -> std::process::Output,
    code: i32,
    secrets: &[&str],
) -> serde_json::Value {
    let text = run(&["status"]);
    let json = run(&["status", "--json"]);
    for out in [&text, &json] {
        assert_eq!(out.status.code(), Some(code), "{}", home.render(out));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for s in secrets {
            assert!(!all.contains(s), "a secret was printed: {all}");
        }
    }
    status_snap!(format!("status_{name}"), home.render(&text));
    status_snap!(format!("status_{name}_json"), home.render(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["exit_code"], code);
    assert_eq!(v["schema"], 1);
    v
}

#[test]
fn no_credential_is_64_and_says_the_ways_out() {
    let home = TestHome::new();
    let v = both("none", &home, |a| home.run(a), 64, &[]);
    assert_eq!(v["state"], "none");
    assert!(v["active"].is_null());
    // `auth status` is the same command.
    let out = home.run(&["auth", "status"]);
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(out.stdout, home.run(&["status"]).stdout);
}

#[test]
fn an_env_key_is_usable_and_masked() {
    let mut home = TestHome::new();
    home.env("OPENAI_API_KEY", OPENAI);
    let v = both("env_key", &home, |a| home.run(a), 0, &[OPENAI]);
    assert_eq!(v["credentials"][0]["source"]["var"], "OPENAI_API_KEY");
    assert_eq!(v["credentials"][0]["masked"], "sk-…abcd");
}

#[test]
fn a_stored_key_names_the_file_and_the_choice() {
    let home = TestHome::new();
    let out = home.run_stdin(&["login", "groq", "--with-api-key"], GROQ);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let v = both("stored_key", &home, |a| home.run(a), 0, &[GROQ]);
    assert_eq!(v["credentials"][0]["source"]["type"], "file");
    assert_eq!(
        v["credentials"][0]["source"]["field"],
        "providers.groq.apiKey"
    );
    assert_eq!(v["choice"]["provider"], "groq");
    assert_eq!(v["choice"]["in_use"], true);
}

#[test]
fn an_env_key_over_a_stored_one_is_said_with_the_choice_it_beats() {
    let mut home = TestHome::new();
    let out = home.run_stdin(&["login", "groq", "--with-api-key"], GROQ);
    assert_eq!(out.status.code(), Some(0));
    home.env("OPENAI_API_KEY", OPENAI);
    let v = both("env_override", &home, |a| home.run(a), 0, &[GROQ, OPENAI]);
    assert_eq!(v["credentials"][0]["provider"], "openai");
    assert_eq!(v["credentials"][1]["provider"], "groq");
    assert_eq!(v["choice"]["in_use"], false);
    let o = v["overrides"][0].as_str().unwrap();
    assert!(
        o.starts_with("OPENAI_API_KEY in this shell takes precedence"),
        "{o}"
    );
}

#[test]
fn a_corrupt_auth_json_is_moved_aside_and_said() {
    let home = TestHome::new();
    home.write_auth_raw(b"{ not json");
    let out = home.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = v["warnings"][0].as_str().unwrap();
    assert!(w.contains("auth.json.corrupt-"), "{w}");
}

/// `MOGPLEX_CREDENTIAL_STORE=keyring` with no keyring answering (no D-Bus session here): status
/// still reports, in text and JSON, saying the store could not be read; a variable still works
/// (exit 0), and with nothing else the exit code is 69 (could not be checked), never 64.
#[test]
fn status_reports_a_keyring_that_cannot_be_opened() {
    let mut home = TestHome::new();
    home.env("MOGPLEX_CREDENTIAL_STORE", "keyring");
    let v = both("keyring_unavailable", &home, |a| home.run(a), 69, &[]);
    assert_eq!(v["state"], "not_checked");
    assert_eq!(v["store"]["kind"], "keyring");
    let why = v["store"]["unavailable"].as_str().unwrap();
    assert!(why.contains("cannot reach"), "{why}");
    let w = v["warnings"][0].as_str().unwrap();
    assert!(w.contains("stored credentials are not read"), "{w}");
    // Nothing was written anywhere while reporting.
    assert!(!home.auth_path().exists());
    home.env("OPENAI_API_KEY", OPENAI);
    let v = both(
        "keyring_unavailable_env",
        &home,
        |a| home.run(a),
        0,
        &[OPENAI],
    );
    assert_eq!(v["credentials"][0]["source"]["type"], "env");
    assert!(v["store"]["unavailable"].is_string());
    // Commands that act still refuse, as before.
    let out = home.run(&["login", "groq", "--with-api-key"]);
    assert_eq!(out.status.code(), Some(78), "{}", home.render(&out));
}

#[test]
fn a_stored_key_in_the_keyring_names_the_keyring() {
    if std::env::var_os("MOGPLEX_TEST_SECRET_SERVICE").is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped a_stored_key_in_the_keyring_names_the_keyring: needs a real Secret Service; run `scripts/with-keyring cargo test -p mogplex-cli --test cli status` (scripts/test does)"
        );
        return;
    }
    let mut home = TestHome::new();
    for var in ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"] {
        if let Ok(v) = std::env::var(var) {
            home.env(var, &v);
        }
    }
    home.env("MOGPLEX_CREDENTIAL_STORE", "keyring");
    let out = home.run_stdin(&["login", "groq", "--with-api-key"], GROQ);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let v = both("keyring", &home, |a| home.run(a), 0, &[GROQ]);
    assert_eq!(v["credentials"][0]["source"]["type"], "keyring");
    assert_eq!(v["store"]["kind"], "keyring");
    assert!(
        !std::fs::read_to_string(home.auth_path())
            .unwrap()
            .contains(GROQ)
    );
}

/// A personal access token for ada, made on the server.
fn pat(server: &Server, expires_at: Option<i64>) -> String {
    let token = "mog_status0123456789abcdefghijKLMNOP".to_owned();
    server.add_pat("ada@example.com", "status test", &token, expires_at);
    token
}

#[test]
fn a_personal_access_token_is_checked_online_valid_then_revoked() {
    let server = Server::start();
    let mut home = TestHome::new();
    let token = pat(&server, None);
    home.env("MOGPLEX_URL", &server.url);
    home.env("MOGPLEX_API_KEY", &token);
    let v = both("pat_valid", &home, |a| home.run(a), 0, &[&token]);
    assert_eq!(v["check"]["status"], "valid");
    assert_eq!(v["check"]["email"], "ada@example.com");
    server.sql("UPDATE personal_access_tokens SET revoked_at = 1");
    let v = both("pat_revoked", &home, |a| home.run(a), 65, &[&token]);
    assert_eq!(v["check"]["status"], "rejected");
}

#[test]
fn a_service_that_is_down_is_not_checked_69() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut home = TestHome::new();
    home.env("MOGPLEX_URL", &format!("http://127.0.0.1:{port}"));
    home.env("MOGPLEX_API_KEY", "mog_status0123456789abcdefghijKLMNOP");
    let v = both(
        "service_down",
        &home,
        |a| home.run(a),
        69,
        &["mog_status0123456789abcdefghijKLMNOP"],
    );
    assert_eq!(v["check"]["status"], "not_checked");
    assert!(v["check"]["reason"].as_str().unwrap() != "");
}

#[test]
fn a_stored_token_expiring_soon_is_announced() {
    let server = Server::start();
    let mut home = TestHome::new();
    let in_two_days = time::OffsetDateTime::now_utc().unix_timestamp() + 2 * 86_400;
    let token = pat(&server, Some(in_two_days));
    home.env("MOGPLEX_URL", &server.url);
    let out = home.run_stdin(&["login", "mogplex", "--with-api-key"], &token);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let at = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    home.set_account_field("expires_at", at.into());
    let v = both("pat_expiring", &home, |a| home.run(a), 0, &[&token]);
    let n = v["notices"][0].as_str().unwrap();
    assert!(n.contains("personal access token ends in"), "{n}");
    // exec says it on stderr, before the answer.
    let out = home.run(&["exec", "hi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: the stored Mogplex personal access token ends in"),
        "{}",
        home.render(&out)
    );
    // And the cockpit's header, on a line of its own under the first (a pseudo-terminal).
    use crate::cockpit::{WAIT, cockpit, expect};
    let mut t = cockpit(&home, &[]);
    let screen = expect(&t, "personal access token ends in");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[0].starts_with("mogplex · Mogplex"), "{screen}");
    assert!(
        lines[1..4]
            .iter()
            .any(|l| l.contains("personal access token ends in")),
        "the notice is in the header: {screen}"
    );
    t.send(mogplex_testkit::term::keys::CTRL_C);
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(WAIT);
}

#[test]
fn a_signed_in_account_valid_expired_and_revoked() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let home = signed_in(&server);
    let secrets = || {
        let a = home.account();
        vec![
            a["access_token"].as_str().unwrap_or("").to_owned(),
            a["refresh_token"].as_str().unwrap_or("").to_owned(),
        ]
    };
    let run = |a: &[&str]| run_against(&home, &server, a);

    let s = secrets();
    let refs: Vec<&str> = s.iter().map(String::as_str).collect();
    let v = both("signed_in", &home, run, 0, &refs);
    assert_eq!(v["check"]["status"], "valid");
    assert_eq!(v["account"]["email"], "ada@example.com");
    assert!(v["credentials"][0]["access_token_expires_at"].is_string());
    assert!(v["credentials"][0]["refresh_token_age_seconds"].is_number());

    // An expired access token is renewed with the refresh token, as any command would.
    expire_in(&home, -60);
    let before = secrets();
    let refs: Vec<&str> = before.iter().map(String::as_str).collect();
    let v = both("signed_in_expired", &home, run, 0, &refs);
    assert_eq!(v["check"]["status"], "valid");
    assert_ne!(secrets()[0], before[0], "renewed");

    // Revoked on the service: rejected.
    server.sql("UPDATE token_families SET revoked_at = 1");
    let s = secrets();
    let refs: Vec<&str> = s.iter().map(String::as_str).collect();
    let text = run(&["status", "--json"]);
    assert_eq!(text.status.code(), Some(65), "{}", home.render(&text));
    let v: serde_json::Value = serde_json::from_slice(&text.stdout).unwrap();
    assert_eq!(v["check"]["status"], "rejected");
    let all = String::from_utf8_lossy(&text.stdout).into_owned();
    for s in &refs {
        assert!(s.is_empty() || !all.contains(s));
    }
    status_snap!("status_signed_in_revoked_json", home.render(&text));
}

#[test]
fn two_accounts_are_listed_with_the_one_in_use() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    server.add_user("bob@example.com");
    let home = signed_in(&server);
    signed_in_again(&home, &server, "bob@example.com");
    let run = |a: &[&str]| run_against(&home, &server, a);
    let v = both("two_accounts", &home, run, 0, &[]);
    let accounts = v["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{v}");
    let in_use: Vec<_> = accounts.iter().filter(|a| a["in_use"] == true).collect();
    assert_eq!(in_use.len(), 1);
    assert_eq!(in_use[0]["email"], "bob@example.com");
    assert_eq!(v["account"]["email"], "bob@example.com");
    assert_eq!(v["check"]["email"], "bob@example.com");
}

#[test]
fn a_helper_key_is_shown_by_the_helper_variable_never_its_output() {
    let mut home = TestHome::new();
    let p = home.dir.path().join("helper");
    std::fs::write(&p, "#!/bin/sh\necho sk-helper-status-0123456789mnop\n").unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    home.env("OPENAI_API_KEY_HELPER", p.to_str().unwrap());
    let v = both(
        "helper",
        &home,
        |a| home.run(a),
        0,
        &["sk-helper-status-0123456789mnop"],
    );
    assert_eq!(v["credentials"][0]["source"]["type"], "helper");
}

/// A sign-in to the demo MCP server (a real `mogplex-server`): both outputs list it (server,
/// resource, authorization server, account, scope, expiry, renewal), never a token; after
/// `mcp logout` it is gone from both.
#[test]
fn mcp_sign_ins_are_listed_with_their_expiry_never_their_tokens() {
    use crate::mcp_oauth::{mcp_login, setup, tokens};
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, home) = setup();
    let (code, _, err, _) = mcp_login(&home, &server, &["mcp", "login", "demo"]);
    assert_eq!(code, 0, "{err}");
    let secrets = tokens(&home);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let v = both(
        "mcp_signed_in",
        &home,
        |args| run_against(&home, &server, args),
        0,
        &secrets,
    );
    let m = &v["mcp_signins"][0];
    assert_eq!(m["server"], "demo");
    assert_eq!(m["resource"], format!("{}/mcp/demo", server.url));
    assert_eq!(m["issuer"], server.url);
    assert_eq!(m["scope"], "mcp:demo");
    assert_eq!(m["account_entry"], v["account"]["entry"]);
    assert_eq!(m["expired"], false);
    assert_eq!(m["has_refresh_token"], true);
    assert!(m["access_token_expires_at"].is_string(), "{m}");
    assert_eq!(
        m.as_object().unwrap().len(),
        8,
        "no field holds a token: {m}"
    );

    let out = run_against(&home, &server, &["mcp", "logout", "demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    let out = run_against(&home, &server, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mcp_signins"], serde_json::json!([]));
    let out = run_against(&home, &server, &["status"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("MCP sign-ins"));
}
