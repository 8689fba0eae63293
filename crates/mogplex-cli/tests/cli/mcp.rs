//! MCP tools through the real binary against a real `mogplex-server` whose account defines the
//! MCP reference server (`@modelcontextprotocol/server-everything`, the pinned npm peer) over
//! stdio, with the echo model making exact tool calls: `exec --allow-tool`, and calls it refuses.

use crate::common::*;
use crate::signin::Server;
use mogplex_testkit::peers::McpEverything;

const DEF_TOKEN: &str = "ghp_definitiontoken0123456789";

/// A server whose account (Ada) has the reference server as `everything`, and a home with a
/// personal access token for it.
fn setup() -> (Server, TestHome) {
    let server = Server::start();
    let e = McpEverything::locate();
    server.add_mcp(
        "ada@example.com",
        "everything",
        serde_json::json!({"command": e.program().display().to_string(), "args": e.args(),
            "env": {"EVERYTHING_TOKEN": DEF_TOKEN}}),
    );
    let token = mogplex_server::crypto::personal_access_token();
    server.add_pat("ada@example.com", "t", &token, None);
    let mut home = TestHome::new();
    home.env("MOGPLEX_URL", &server.url)
        .env("MOGPLEX_API_KEY", &token);
    (server, home)
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_runs_an_allowed_tool_and_sends_its_result_back() {
    let (_server, home) = setup();
    let out = home.run(&[
        "exec",
        "--allow-tool",
        "everything.echo",
        r#"call everything.echo {"message": "hello tools"}"#,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    // The echo model answers with the tool's result, which came from the real server.
    assert_eq!(stdout.trim(), "Echo: hello tools");
    assert!(
        stderr.contains(r#"tool: everything.echo {"message": "hello tools"}"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("tool result: Echo: hello tools"),
        "{stderr}"
    );

    // --json: the call and its result as events, then the answer.
    let out = home.run(&[
        "exec",
        "--json",
        "--allow-tool",
        "everything.get-sum",
        "--allow-tool",
        "everything.echo",
        r#"call everything.get-sum {"a": 2, "b": 40}"#,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let call = events.iter().find(|e| e["type"] == "tool_call").unwrap();
    assert_eq!(call["server"], "everything");
    assert_eq!(call["tool"], "get-sum");
    assert_eq!(call["arguments"], r#"{"a": 2, "b": 40}"#);
    let result = events.iter().find(|e| e["type"] == "tool_result").unwrap();
    assert_eq!(result["ok"], true);
    assert!(result["text"].as_str().unwrap().contains("42"), "{result}");
    assert_eq!(events.last().unwrap()["type"], "done");
    assert!(
        !home.log_text().contains(DEF_TOKEN),
        "a definition value was logged"
    );
}

#[test]
fn exec_refuses_a_tool_it_was_not_allowed() {
    let (_server, home) = setup();
    // No --allow-tool at all: nothing is connected, the call is refused.
    let out = home.run(&["exec", r#"call everything.echo {"message": "x"}"#]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "error: the model called the tool everything.echo, which is not approved for this run"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: allow it with `--allow-tool everything.echo`"),
        "{stderr}"
    );
    assert!(stdout.trim().is_empty(), "{stdout}");

    // Another tool of an allowed server is refused too.
    let out = home.run(&[
        "exec",
        "--allow-tool",
        "everything.echo",
        r#"call everything.get-env {}"#,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the model called the tool everything.get-env, which is not approved"),
        "{stderr}"
    );
    assert!(!stdout.contains("EVERYTHING_TOKEN"), "{stdout}");

    // Naming what does not exist is a usage error that lists what does.
    let out = home.run(&["exec", "--allow-tool", "nothere.echo", "hi"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hint: its MCP servers: everything"),
        "{stderr}"
    );
    let out = home.run(&["exec", "--allow-tool", "everything.nope", "hi"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has no tool `nope`"), "{stderr}");
    assert!(stderr.contains("echo"), "{stderr}");
    let out = home.run(&["exec", "--allow-tool", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("name a tool as `server.tool`"));
}

/// The processes whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so read after the last `)`.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` is running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// Opens `/mcp` until it shows the server connected (it connects in the background).
/// The words of a screen, one space between them: box borders dropped and
/// wrapped lines joined, so an assertion does not depend on where a line wraps.
pub fn flat(screen: &str) -> String {
    screen
        .lines()
        .flat_map(|line| {
            line.split(|c: char| c.is_whitespace() || ('\u{2500}'..='\u{257f}').contains(&c))
        })
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn wait_connected(t: &mut mogplex_testkit::term::Term) -> String {
    use mogplex_testkit::term::keys;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        crate::cockpit::submit(t, "/mcp");
        let screen = crate::cockpit::expect(t, "MCP servers");
        if flat(&screen).contains("connected ·") {
            return screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never connected:\n{screen}"
        );
        t.send(keys::ESC);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn cockpit_lists_tools_and_asks_before_every_call() {
    use crate::cockpit::{cockpit, expect, submit};
    use mogplex_testkit::term::keys;
    let (_server, home) = setup();
    let mut t = cockpit(&home, &[]);
    expect(&t, "MCP: everything");

    // /mcp: the server's state and its tools.
    let screen = wait_connected(&mut t);
    assert!(flat(&screen).contains("stdio · enabled"), "{screen}");
    assert!(screen.contains("echo"), "{screen}");
    assert!(!screen.contains(DEF_TOKEN), "{screen}");
    t.send(keys::ESC);

    // A call is shown with its arguments and waits; y runs it once, the result is shown and
    // goes back to the model (the echo model answers with it).
    submit(
        &mut t,
        r#"call everything.echo {"message": "from the cockpit"}"#,
    );
    let screen = expect(&t, "Allow it?");
    assert!(
        screen.contains(r#"The model calls everything.echo {"message": "from the cockpit"}"#),
        "{screen}"
    );
    t.send("y");
    expect(&t, "everything.echo → Echo: from the cockpit");
    t.wait_until(
        |s| s.matches("Echo: from the cockpit").count() >= 2,
        crate::cockpit::WAIT,
    )
    .unwrap_or_else(|s| panic!("the answer never came:\n{s}"));

    // n: the tool does not run, the model is told.
    submit(&mut t, r#"call everything.echo {"message": "refused"}"#);
    expect(&t, "Allow it?");
    t.send("n");
    expect(&t, "Not allowed; the model is told so.");
    expect(&t, "error: the user did not approve this tool call");
    assert!(!t.screen().contains("Echo: refused"), "{}", t.screen());

    // a: allowed for the session; the next call of that tool is not asked about.
    submit(&mut t, r#"call everything.echo {"message": "first"}"#);
    expect(&t, "Allow it?");
    t.send("a");
    expect(&t, "everything.echo → Echo: first");
    submit(&mut t, r#"call everything.echo {"message": "second"}"#);
    expect(&t, "everything.echo → Echo: second");
    let screen = t.screen();
    let after = &screen[screen.find(r#"{"message": "second"}"#).unwrap()..];
    assert!(!after.contains("Allow it?"), "{screen}");

    // The server is the cockpit's child, and stops with it.
    let servers = children(t.pid());
    assert_eq!(servers.len(), 1, "one MCP server process: {servers:?}");
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(crate::cockpit::WAIT).is_some());
    let deadline = std::time::Instant::now() + crate::cockpit::WAIT;
    while servers.iter().any(|p| alive(*p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the MCP server outlived the cockpit"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !home.log_text().contains(DEF_TOKEN),
        "a definition value was logged"
    );
}

#[test]
fn esc_cancels_a_running_tool_call_and_the_session_goes_on() {
    use crate::cockpit::{cockpit, expect, submit};
    use mogplex_testkit::term::keys;
    let (_server, home) = setup();
    let mut t = cockpit(&home, &[]);
    expect(&t, "MCP: everything");
    wait_connected(&mut t);
    t.send(keys::ESC);
    submit(
        &mut t,
        r#"call everything.trigger-long-running-operation {"duration": 60, "steps": 60}"#,
    );
    expect(&t, "Allow it?");
    t.send("y");
    expect(&t, "(Esc cancels it)");
    t.send(keys::ESC);
    expect(
        &t,
        "everything.trigger-long-running-operation → cancelled by the user",
    );
    // The model is told, and answers; the session takes the next prompt.
    expect(&t, "error: cancelled by the user");
    submit(&mut t, r#"call everything.echo {"message": "after"}"#);
    expect(&t, "Allow it?");
    t.send("y");
    expect(&t, "everything.echo → Echo: after");
    let log = home.log_text();
    assert!(log.contains("\"event\":\"tool.call\""), "{log}");
    assert!(
        log.contains("\"event\":\"mcp.stderr\""),
        "the server's stderr is logged: {log}"
    );
}

#[test]
fn failing_servers_are_their_own_errors_and_stderr_is_logged_masked() {
    use crate::cockpit::{cockpit, expect};
    use mogplex_testkit::term::keys;
    const BROKEN_SECRET: &str = "broken-definition-secret-0123456789";
    let (server, home) = setup();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mogplex-mcp/tests/misbehaving-server.mjs"
    );
    let node = mogplex_testkit::peers::Peers::get()
        .node()
        .display()
        .to_string();
    server.add_mcp(
        "ada@example.com",
        "broken",
        serde_json::json!({"command": node, "args": [script, "crash"],
            "env": {"DEF_SECRET": BROKEN_SECRET}}),
    );
    // A remote server that wants an OAuth sign-in.
    let remote = mogplex_testkit::FakeServer::start();
    remote.route(
        "/mcp",
        mogplex_testkit::Reply::json(401, serde_json::json!({"error": "invalid_token"}))
            .with_header("www-authenticate", "Bearer"),
    );
    server.add_mcp(
        "ada@example.com",
        // First by name, so that it is on the first page of /mcp.
        "auth-remote",
        serde_json::json!({"url": format!("{}/mcp", remote.url()), "http_headers": {}}),
    );
    let mut t = cockpit(&home, &[]);
    expect(&t, "1 model");
    // The other server connects; this one fails with its reason.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let screen = loop {
        let screen = wait_connected(&mut t);
        let text = flat(&screen);
        if text.contains("failed:") && text.contains("sign-in (HTTP 401)") {
            break screen;
        }
        assert!(std::time::Instant::now() < deadline, "{screen}");
        t.send(keys::ESC);
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // The overlay wraps the reason wherever the checkout's path puts it, so the
    // assertions read the overlay's words with the wrapping taken out.
    let text = flat(&screen);
    assert!(
        text.contains("failed: the handshake failed: connection closed"),
        "{screen}"
    );
    assert!(!screen.contains(BROKEN_SECRET), "{screen}");
    assert!(
        text.contains(
            "needs sign-in — /mcp login auth-remote (the server asks for sign-in (HTTP 401))"
        ),
        "{screen}"
    );
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(crate::cockpit::WAIT).is_some());
    let log = home.log_text();
    assert!(
        log.contains("misbehaving server in mode crash; token [REDACTED]"),
        "{log}"
    );
    assert!(!log.contains(BROKEN_SECRET), "{log}");
}
