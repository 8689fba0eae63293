//! What a Mogplex sign-in brings to the cockpit, against a real `mogplex-server`: the hosted
//! state (account, catalog, MCP servers) synced, cached, shown stale, and gone at sign-out; and
//! runs, followed by a second cockpit with `--attach`.

use crate::cockpit::{WAIT, cockpit, cockpit_with, expect, submit};
use crate::common::*;
use crate::signin::{PORTS, Server, browser_until_callback, signed_in};
use mogplex_testkit::term::{Term, keys};

const MCP_TOKEN: &str = "ghp_hostedstate0123456789abcdef";

fn server_with_mcp() -> Server {
    let server = Server::start();
    server.add_mcp(
        "ada@example.com",
        "github",
        serde_json::json!({"command": "github-mcp", "args": ["--stdio"],
            "env": {"GITHUB_TOKEN": MCP_TOKEN, "LOG_LEVEL": "info"}}),
    );
    server
}

fn hosted_files(home: &TestHome) -> Vec<std::path::PathBuf> {
    ["account.json", "models.json", "mcp.json"]
        .iter()
        .map(|f| home.home.join("hosted").join(f))
        .collect()
}

/// The run id the header shows (`… · run run_…`).
fn run_id(t: &Term) -> String {
    let screen = t
        .wait_for("run run_", WAIT)
        .unwrap_or_else(|s| panic!("no run on screen:\n{s}"));
    let at = screen.find("run run_").unwrap() + 4;
    screen[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[test]
fn hosted_state_is_cached_shown_stale_and_gone_at_logout() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = server_with_mcp();
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    let mut t = cockpit(&home, &[]);

    // Synced in the background: the header names the account, its catalog and MCP servers.
    let screen = expect(&t, "MCP: github");
    assert!(
        screen.contains("Mogplex sign-in (ada@example.com) · 1 model"),
        "{screen}"
    );
    for f in hosted_files(&home) {
        assert!(f.exists(), "{} is written", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&home.home.join("hosted")), 0o700);
    // /mcp lists the server, its secret-looking value masked.
    submit(&mut t, "/mcp");
    let list = expect(&t, "┌ MCP servers");
    assert!(
        list.contains("stdio · enabled · github-mcp --stdio"),
        "{list}"
    );
    assert!(list.contains("LOG_LEVEL=info"), "{list}");
    assert!(list.contains("GITHUB_TOKEN=…cdef"), "{list}");
    t.send(keys::ESC);
    t.wait_until(|s| !s.contains("┌ MCP servers"), WAIT)
        .unwrap();
    submit(&mut t, "/quit");
    assert!(t.wait_exit(WAIT).expect("quit").success());

    // The service is gone: the cockpit starts from the saved copy, and says it is stale.
    let url = server.url.clone();
    drop(server);
    let mut t = cockpit(&home, &[]);
    let screen = expect(&t, "(stale)");
    assert!(screen.contains("MCP: github"), "{screen}");
    assert!(
        screen.contains("mogplex · Mogplex · mogplex/echo"),
        "{screen}"
    );
    submit(&mut t, "/status");
    let status = expect(&t, "┌ status");
    assert!(status.contains("stale: saved"), "{status}");
    t.send(keys::ESC);
    t.wait_until(|s| !s.contains("┌ status"), WAIT).unwrap();
    submit(&mut t, "/model");
    let models = expect(&t, "┌ model");
    let models = if models.contains("mogplex/echo") {
        models
    } else {
        expect(&t, "mogplex/echo")
    };
    assert!(models.contains("Echo"), "the saved catalog:\n{models}");
    t.send(keys::ESC);
    t.wait_until(|s| !s.contains("┌ model"), WAIT).unwrap();

    // /logout: the entries leave the screen in the frame that closes the question, and the files
    // are gone by then.
    submit(&mut t, "/logout");
    expect(&t, "Sign out of Mogplex?");
    t.send("y");
    let after = t
        .wait_until(|s| !s.contains("Sign out of Mogplex?"), WAIT)
        .unwrap();
    assert!(!after.contains("MCP: github"), "{after}");
    assert!(!after.contains("(stale)"), "{after}");
    assert!(!home.home.join("hosted").exists(), "the cache is removed");
    let screen = expect(&t, "Signed out of Mogplex");
    assert!(
        screen.contains("Sign in with Mogplex"),
        "nothing else resolves:\n{screen}"
    );
    assert!(
        !t.raw_output().contains(MCP_TOKEN),
        "an MCP value was drawn"
    );
    assert!(
        !home.log_text().contains(MCP_TOKEN),
        "an MCP value was logged"
    );
    let _ = url;
}

#[test]
fn logout_from_the_shell_removes_the_cache_too() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = server_with_mcp();
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    let mut t = cockpit(&home, &[]);
    expect(&t, "MCP: github");
    submit(&mut t, "/quit");
    t.wait_exit(WAIT).expect("quit");
    assert!(home.home.join("hosted/mcp.json").exists());
    let out = home.run(&["logout"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert!(!home.home.join("hosted").exists());
}

#[test]
fn a_second_cockpit_attaches_to_a_run_and_follows_it_live() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let mut first_home = signed_in(&server);
    first_home.env("MOGPLEX_URL", &server.url);
    let mut second_home = signed_in(&server);
    second_home.env("MOGPLEX_URL", &server.url);

    let mut first = cockpit(&first_home, &[]);
    expect(&first, "mogplex · Mogplex · mogplex/echo");
    submit(&mut first, "the first message");
    first
        .wait_until(|s| s.matches("the first message").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    let id = run_id(&first);
    submit(&mut first, "/status");
    let status = expect(&first, "┌ status");
    assert!(status.contains(&id), "/status shows the run:\n{status}");
    first.send(keys::ESC);
    first.wait_until(|s| !s.contains("┌ status"), WAIT).unwrap();

    // The second cockpit replays the history…
    let mut second = cockpit_with(&second_home, &["--attach", &id], &[]);
    let screen = expect(&second, &format!("Attached to {id}"));
    let screen = if screen.matches("the first message").count() >= 2 {
        screen
    } else {
        second
            .wait_until(|s| s.matches("the first message").count() >= 2, WAIT)
            .unwrap_or_else(|s| panic!("no history:\n{s}"))
    };
    assert!(screen.contains("you › the first message"), "{screen}");
    // …then follows what the first one does, live.
    submit(&mut first, "said after attaching");
    second
        .wait_until(|s| s.matches("said after attaching").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("nothing live:\n{s}"));
    // What is typed in the attached cockpit is added to the run, and the first one sees it.
    submit(&mut second, "typed in the attached cockpit");
    first
        .wait_until(|s| s.contains("you › typed in the attached cockpit"), WAIT)
        .unwrap_or_else(|s| panic!("the first cockpit did not see it:\n{s}"));
    // /quit detaches; the run stays.
    submit(&mut second, "/quit");
    assert!(second.wait_exit(WAIT).expect("quit").success());
    let out = second_home.run(&["--attach", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", second_home.render(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("you › the first message\nthe first message\n"),
        "{text}"
    );
    assert!(
        text.contains("you › typed in the attached cockpit"),
        "{text}"
    );
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM run_events WHERE run_id = '{id}'"
        )),
        6,
        "three prompts and three answers"
    );
}

#[test]
fn attach_with_logout_signs_in_first_and_other_accounts_runs_are_refused() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let mut home = signed_in(&server);
    home.env("MOGPLEX_URL", &server.url);
    let mut first = cockpit(&home, &[]);
    expect(&first, "mogplex · Mogplex · mogplex/echo");
    submit(&mut first, "before the logout");
    let id = run_id(&first);
    first
        .wait_until(|s| s.matches("before the logout").count() >= 2, WAIT)
        .unwrap_or_else(|s| panic!("no echo:\n{s}"));
    // The run holds the prompt and its answer. (On loopback the answer is written long before
    // `/quit`; the drain on quit is for slow links and is not what this checks.)
    submit(&mut first, "/quit");
    first.wait_exit(WAIT).expect("quit");
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM run_events WHERE run_id = '{id}'"
        )),
        2,
        "the prompt and its answer"
    );

    // --attach … --logout: the stored sign-in goes, the login screen says why it is there…
    let url_file = home.dir.path().join("browser-url");
    let browser = format!("echo >> {}", url_file.display());
    let mut t = cockpit_with(
        &home,
        &["--attach", &id, "--logout"],
        &[("BROWSER", &browser)],
    );
    let screen = expect(&t, &format!("Sign in with Mogplex to attach to {id}"));
    assert!(screen.contains("Sign in with a device code"), "{screen}");
    assert!(home.account().is_null(), "signed out first");
    // …a sign-in through the paste box…
    t.send(keys::ENTER);
    expect(&t, "Waiting for you to sign in in your browser");
    let authorize = crate::cockpit::browser_url(&url_file);
    let callback = server.block_on(browser_until_callback(&server.url, &authorize));
    t.send(&keys::paste(&callback));
    t.send(keys::ENTER);
    // …and then the attach.
    let screen = expect(&t, &format!("Attached to {id}"));
    assert!(screen.contains("Signed in as ada@example.com"), "{screen}");
    t.wait_until(|s| s.contains("you › before the logout"), WAIT)
        .unwrap_or_else(|s| panic!("no history:\n{s}"));
    submit(&mut t, "/quit");
    t.wait_exit(WAIT).expect("quit");

    // Another account's run does not exist for it: a clear error, exit 1, before any screen.
    server.add_user("bob@example.com");
    let mut bob = crate::signin::signed_in_as(&server, "bob@example.com");
    bob.env("MOGPLEX_URL", &server.url);
    let out = bob.run(&["--attach", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", bob.render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: cannot attach to {id}: there is no such run for this account"
        )),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    let mut t = cockpit_with(&bob, &["--attach", &id], &[]);
    let status = t.wait_exit(WAIT).expect("ends without opening the cockpit");
    assert_eq!(status.code(), Some(1));
    assert!(
        t.screen().contains("no such run for this account"),
        "{}",
        t.screen()
    );
    let out = bob.run(&["--attach", "run_doesnotexist"]);
    assert_eq!(out.status.code(), Some(1), "{}", bob.render(&out));
}
