//! The leak test for MCP tokens (issue 16): real access and refresh tokens for the demo MCP
//! server, obtained from a real `mogplex-server` by `mogplex mcp login` and rotated by a refresh,
//! and none of them (nor their last 12 characters) in anything a command left behind: its
//! stdout and stderr, the cockpit's whole terminal output, the logs (with `MOGPLEX_DEBUG=1`),
//! every file under the temp home except `auth.json` itself, and the environment of every child
//! `mogplex` started (a stdio MCP server and the `BROWSER` command, both of which write their
//! environment to a file). It lives apart from `leak.rs`, whose secrets are planted, because
//! these must be issued by a real authorization server.

use crate::common::*;
use crate::mcp_oauth::{expire_mcp_in, setup, tokens};
use crate::signin::{Login, PORTS, browser_until_callback, run_against};
use mogplex_testkit::peers::McpEverything;
use mogplex_testkit::term::keys;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn script(home: &TestHome, name: &str, body: &str) -> String {
    let p = home.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// Every file under `dir` (recursively) but the ones `skip` names, as text.
fn files_under(dir: &Path, skip: &[&Path], out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            files_under(&p, skip, out);
        } else if ft.is_file() && !skip.contains(&p.as_path()) {
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            out.push((p.display().to_string(), text));
        }
    }
}

#[test]
fn no_mcp_token_reaches_output_logs_state_files_or_child_environments() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, mut home) = setup();
    home.env("MOGPLEX_DEBUG", "1");
    let dumps = home.dir.path().join("child-env");
    std::fs::create_dir_all(&dumps).unwrap();
    // A stdio MCP server (the reference server) that first writes its environment down.
    let e = McpEverything::locate();
    let probe = script(
        &home,
        "probe-server",
        &format!("env >> {}/stdio-$$\nexec \"$@\"", dumps.display()),
    );
    let mut args = vec![e.program().display().to_string()];
    args.extend(e.args());
    server.add_mcp(
        "ada@example.com",
        "probe",
        serde_json::json!({"command": probe, "args": args}),
    );
    // The browser: writes its environment down, and the address for the test to play.
    let url_file = home.dir.path().join("browser-url");
    let browser = script(
        &home,
        "browser",
        &format!(
            "env >> {}/browser-$$\necho \"$1\" >> {}",
            dumps.display(),
            url_file.display()
        ),
    );

    let mut seen: Vec<String> = Vec::new();
    let mut printed: Vec<(String, String)> = Vec::new();
    let run = |home: &TestHome, args: &[&str], printed: &mut Vec<(String, String)>| {
        let out = run_against(home, &server, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push((args.join(" "), text));
        out
    };

    run(&home, &["mcp", "list"], &mut printed);
    // `mcp login demo`, the browser script started, the browser played up to the callback,
    // whose address is pasted.
    let login = |home: &TestHome, printed: &mut Vec<(String, String)>| {
        let mut login = Login::start(home, &server, &["mcp", "login", "demo"], &browser);
        let authorize = login.authorize_url();
        let callback = server.block_on(browser_until_callback(&server.url, &authorize));
        let stdin = login.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{callback}\n").as_bytes()).unwrap();
        let (code, out, err) = login.finish();
        assert_eq!(code, 0, "{err}");
        printed.push(("mcp login demo".into(), format!("{out}{err}")));
    };
    login(&home, &mut printed);
    seen.extend(tokens(&home));
    assert!(
        std::fs::read_to_string(&url_file)
            .unwrap()
            .contains("/api/auth/mcp/authorize?"),
        "the browser script ran"
    );

    for args in [
        vec!["mcp", "list"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"],
        vec![
            "exec",
            "--json",
            "--allow-tool",
            "demo.whoami",
            "call demo.whoami {}",
        ],
        vec!["exec", "call demo.whoami {}"],
        vec![
            "exec",
            "--allow-tool",
            "probe.echo",
            "call probe.echo {\"message\":\"hi\"}",
        ],
    ] {
        run(&home, &args, &mut printed);
    }
    let out = run(
        &home,
        &["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"],
        &mut printed,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ada@example.com",
        "{}",
        home.render(&out)
    );
    // A refresh rotates both tokens; the new ones are searched for too.
    expire_mcp_in(&home, 60);
    let before = tokens(&home);
    run(
        &home,
        &["exec", "--allow-tool", "demo.whoami", "call demo.whoami {}"],
        &mut printed,
    );
    let after = tokens(&home);
    assert!(
        after.iter().any(|t| !before.contains(t)),
        "a refresh happened"
    );
    seen.extend(after);

    // The cockpit: /mcp with both servers connected, a call to whoami, /mcp again.
    let mut t = crate::cockpit::cockpit(&home, &[]);
    crate::cockpit::expect(&t, "MCP: ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        crate::cockpit::submit(&mut t, "/mcp");
        let screen = crate::cockpit::expect(&t, "MCP servers");
        let flat = crate::mcp::flat(&screen);
        if flat.contains("connected · 3 tools") && flat.matches("connected ·").count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{screen}");
        t.send(keys::ESC);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    t.send(keys::ESC);
    crate::cockpit::submit(&mut t, "call demo.whoami {}");
    crate::cockpit::expect(&t, "Allow it?");
    t.send("y");
    crate::cockpit::expect(&t, "demo.whoami → ada@example.com");
    crate::cockpit::submit(&mut t, "/mcp");
    crate::cockpit::expect(&t, "MCP servers");
    t.send(keys::ESC);
    t.send(keys::CTRL_C);
    t.send(keys::CTRL_C);
    assert!(t.wait_exit(crate::cockpit::WAIT).is_some());
    printed.push(("the cockpit".into(), t.raw_output()));
    seen.extend(tokens(&home));

    // Signing out of the server, in again, and out of the account (which forgets it too).
    run(&home, &["mcp", "logout", "demo"], &mut printed);
    run(&home, &["mcp", "logout", "demo"], &mut printed);
    login(&home, &mut printed);
    seen.extend(tokens(&home));
    run(&home, &["status", "--json"], &mut printed);
    run(&home, &["logout"], &mut printed);
    run(&home, &["mcp", "list"], &mut printed);
    run(&home, &["status"], &mut printed);

    seen.sort();
    seen.dedup();
    let mcp: Vec<&String> = seen.iter().filter(|t| t.starts_with("mog_")).collect();
    assert!(mcp.len() >= 8, "{}", mcp.len());
    let logs = home.log_text();
    assert!(
        logs.contains("\"event\":\"mcp.login\""),
        "the commands logged"
    );
    let mut files = Vec::new();
    files_under(home.dir.path(), &[home.auth_path().as_path()], &mut files);
    let children: Vec<&(String, String)> = files
        .iter()
        .filter(|(p, _)| p.contains("child-env"))
        .collect();
    assert!(
        children.iter().any(|(p, _)| p.contains("/stdio-")),
        "the stdio server was started"
    );
    assert!(children.iter().any(|(p, _)| p.contains("/browser-")));
    assert!(
        files.iter().any(|(p, _)| p.contains("/logs/")),
        "the logs are among the files searched"
    );
    for token in &seen {
        let tail = &token[token.len() - 12..];
        for (what, text) in printed.iter().chain(files.iter()) {
            assert!(!text.contains(token.as_str()), "a token in {what}:\n{text}");
            assert!(!text.contains(tail), "part of a token in {what}:\n{text}");
        }
    }
}
