//! The administrator's commands on the real binary: accounts (list, passwd, disable, enable,
//! remove), plans, models and MCP definitions listed and removed, `--json` everywhere, and the
//! audit log they write and `audit` reads.

use crate::harness::*;
use crate::ops::{add_user, admin, serve};

/// Runs an admin command with `--json` and parses its stdout.
fn json(args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = admin(&a, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands_list_change_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("a.db").display());
    let d = ["--database", database.as_str()];
    let with = |head: &[&'static str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .map(|s| s.to_string())
            .chain(d.iter().map(|s| s.to_string()))
            .chain(tail.iter().map(|s| s.to_string()))
            .collect()
    };
    let run_json = |head: &[&'static str], tail: &[&str], stdin: Option<&str>| {
        let v = with(head, tail);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        json(&v, stdin)
    };
    let added = run_json(
        &["user", "add"],
        &["--email", "Ann@Example.com", "--password-stdin"],
        Some(PASSWORD),
    );
    assert_eq!(added["email"], "ann@example.com");
    add_user(&database, "bob@example.com");
    let users = run_json(&["user", "list"], &[], None);
    let emails: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);

    // Models and plans.
    run_json(
        &["model", "add"],
        &["--slug", "mogplex/echo", "--display-name", "Echo", "--echo"],
        None,
    );
    let plan = run_json(
        &["plan", "create"],
        &["--name", "team", "--model", "mogplex/echo"],
        None,
    );
    assert_eq!(plan["plan"], "team");
    run_json(
        &["plan", "assign"],
        &["--email", "ann@example.com", "--plan", "team"],
        None,
    );
    let plans = run_json(&["plan", "list"], &[], None);
    assert_eq!(plans["plans"][0]["name"], "team");
    assert_eq!(plans["plans"][0]["models"][0], "mogplex/echo");
    assert_eq!(plans["plans"][0]["accounts"], 1);
    let models = run_json(&["model", "list"], &[], None);
    assert_eq!(models["models"][0]["slug"], "mogplex/echo");
    assert_eq!(models["models"][0]["upstream"], "echo");

    // MCP definitions.
    run_json(
        &["mcp", "add"],
        &[
            "--email",
            "ann@example.com",
            "--name",
            "files",
            "--command",
            "mcp-files",
        ],
        None,
    );
    let servers = run_json(&["mcp", "list"], &["--email", "ann@example.com"], None);
    assert_eq!(servers["servers"][0]["name"], "files");
    assert_eq!(servers["servers"][0]["config"]["command"], "mcp-files");
    run_json(
        &["mcp", "remove"],
        &["--email", "ann@example.com", "--name", "files"],
        None,
    );
    let servers = run_json(&["mcp", "list"], &["--email", "ann@example.com"], None);
    assert_eq!(servers["servers"].as_array().unwrap().len(), 0);
    let v = with(
        &["mcp", "remove"],
        &["--email", "ann@example.com", "--name", "files"],
    );
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    let (code, _, err) = admin(&v, None);
    assert_eq!(code, 2);
    assert!(err.contains("error: ann@example.com has no MCP server named files"));
    assert!(err.contains("hint: see `mogplex-server mcp list`"));

    // A running server: Ann signs in; disabling her ends her tokens and refuses her sign-in.
    let server = serve(&database, dir.path(), &[]);
    let url = server.url.as_str();
    let (access, _) = signed_in_tokens(url, "ann@example.com").await;
    assert_eq!(whoami(url, &access).await.0, 200);
    let pat = run_json(&["pat", "create"], &["--email", "ann@example.com"], None);
    let pat_token = pat["token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(url, &pat_token).await.0, 200);
    run_json(&["user", "disable"], &["--email", "ann@example.com"], None);
    assert_eq!(whoami(url, &access).await.0, 401);
    assert_eq!(whoami(url, &pat_token).await.0, 401);
    let c = browser();
    let r = sign_in(url, &c, "ann@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("disabled"));
    let users = run_json(&["user", "list"], &[], None);
    assert!(users["users"][0]["disabled_at"].is_i64());
    run_json(&["user", "enable"], &["--email", "ann@example.com"], None);
    // A new password, and the old one no longer works.
    run_json(
        &["user", "passwd"],
        &["--email", "ann@example.com", "--password-stdin"],
        Some("a brand new password"),
    );
    let r = sign_in(url, &browser(), "ann@example.com", PASSWORD, "/").await;
    assert_eq!(r.status(), 401);
    let r = sign_in(
        url,
        &browser(),
        "ann@example.com",
        "a brand new password",
        "/",
    )
    .await;
    assert_eq!(r.status(), 303);

    // Removing a model takes it out of its plans.
    run_json(&["model", "remove"], &["--slug", "mogplex/echo"], None);
    let plans = run_json(&["plan", "list"], &[], None);
    assert_eq!(plans["plans"][0]["models"].as_array().unwrap().len(), 0);

    // The audit log: Ann's events, as JSON, and as lines.
    let log = run_json(&["audit"], &["--user", "ann@example.com"], None);
    let events = log["events"].as_array().unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| format!("{} {} {}", e["kind"], e["outcome"], e["detail"]))
        .collect();
    for expected in [
        "\"admin\" \"ok\" \"user add\"",
        "\"admin\" \"ok\" \"plan assign team\"",
        "\"admin\" \"ok\" \"user disable\"",
        "\"admin\" \"ok\" \"user passwd\"",
        "\"sign_in\" \"failed\" \"account disabled\"",
        "\"sign_in\" \"failed\" \"wrong password\"",
        "\"pat.created\" \"ok\"",
    ] {
        assert!(
            kinds.iter().any(|k| k.starts_with(expected)),
            "no {expected} in {kinds:#?}"
        );
    }
    assert!(!format!("{log}").contains(&pat_token));
    assert!(!format!("{log}").contains(PASSWORD));
    let v = with(&["audit"], &["--since", "1h"]);
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    let (code, out, err) = admin(&v, None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("\tmodel remove mogplex/echo")),
        "{out}"
    );
    let v = with(&["audit"], &["--since", "yesterday-ish"]);
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    let (code, _, err) = admin(&v, None);
    assert_eq!(code, 2);
    assert!(err.contains("hint: use a duration"), "{err}");

    // Removing Bob removes him and everything he owns.
    run_json(&["user", "remove"], &["--email", "bob@example.com"], None);
    let users = run_json(&["user", "list"], &[], None);
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    let server = serve(&database, dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        let log = std::fs::read_to_string(&server.log).unwrap();
        if let Some(at) = log.lines().find_map(|l| {
            l.split_once("health and metrics on ")
                .map(|x| x.1.trim().to_owned())
        }) {
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let c = plain();
    let r = c.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("mogplex_db_pool_max_connections")
    );
    assert_eq!(
        c.get(format!("{metrics}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Not on the public listener.
    let r = c
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
