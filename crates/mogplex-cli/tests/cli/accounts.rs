//! Several accounts: two `mogplex-server` processes, one with two accounts, and the real binary:
//! add, list, switch, choose per process (`MOGPLEX_ACCOUNT`, `--account`), two processes at once
//! as two accounts (the server decides by each one's token: one account has a plan with the
//! model, the other none), and logout of one, then of all.

use crate::signin::{PORTS, Server, signed_in, signed_in_again};

fn emails(home: &crate::common::TestHome) -> Vec<String> {
    home.auth()["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        a["account"]["email"].as_str().unwrap_or("-"),
                        a["issuer"].as_str().unwrap_or("-")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn accounts_side_by_side_each_process_its_own_and_logout_one_then_all() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let one = Server::start();
    let two = Server::start();
    // Bob has no plan on the first service: a request with his token is refused there.
    one.add_user("bob@example.com");
    let home = signed_in(&one);
    let added = signed_in_again(&home, &one, "bob@example.com");
    assert!(
        added.contains("added this account beside the 1 other"),
        "{added}"
    );
    signed_in_again(&home, &two, "ada@example.com");
    assert_eq!(
        emails(&home),
        [
            format!("ada@example.com {}", one.url),
            format!("bob@example.com {}", one.url),
            format!("ada@example.com {}", two.url),
        ]
    );
    let tokens: Vec<String> = home.auth()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["access_token"].as_str().unwrap().to_owned())
        .collect();

    let at_one = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = home.cmd(args);
        c.env("MOGPLEX_URL", &one.url);
        c.envs(env.iter().copied());
        c
    };
    // The list: every account, which one is the default and which one this shell uses.
    let out = at_one(&["account", "list"], &[]).output().unwrap();
    snap!(
        "account_list",
        home.render(&out)
            .replace(&one.url, "[ONE]")
            .replace(&two.url, "[TWO]")
    );
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    for t in &tokens {
        assert!(!listed.contains(t.as_str()), "a token in the list");
    }

    // Two processes at once, as two accounts of the same service.
    let ada = at_one(&["exec", "hi"], &[("MOGPLEX_ACCOUNT", "ada@example.com")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bob = at_one(&["exec", "--account", "bob@example.com", "hi"], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (ada, bob) = (
        ada.wait_with_output().unwrap(),
        bob.wait_with_output().unwrap(),
    );
    // The server decided by the token each one sent: Ada's plan has the model, Bob has none.
    assert_eq!(ada.status.code(), Some(0), "{}", home.render(&ada));
    assert_eq!(bob.status.code(), Some(65), "{}", home.render(&bob));
    let bob_err = String::from_utf8_lossy(&bob.stderr);
    assert!(bob_err.contains("cannot use models yet"), "{bob_err}");
    // The stored default did not change.
    assert_eq!(home.account()["account"]["email"], "ada@example.com");
    assert_eq!(home.account()["issuer"], two.url.as_str());

    // An account nobody stored: exit 64 with the stored ones, never a token.
    let out = at_one(&["exec", "hi"], &[("MOGPLEX_ACCOUNT", "eve@example.com")])
        .output()
        .unwrap();
    snap!("account_unknown", home.render(&out));
    assert_eq!(out.status.code(), Some(64));

    // `account use` switches the default; logout signs out that one, revoking it.
    let out = at_one(&["account", "use", "bob@example.com"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    assert_eq!(home.account()["account"]["email"], "bob@example.com");
    let out = at_one(&["logout"], &[]).output().unwrap();
    snap!("account_logout_one", home.render(&out));
    assert_eq!(
        emails(&home),
        [
            format!("ada@example.com {}", one.url),
            format!("ada@example.com {}", two.url),
        ]
    );
    // Ada on the first service is still signed in and used there.
    let out = at_one(&["exec", "hi"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
    // And all of them.
    let out = at_one(&["logout", "--all"], &[]).output().unwrap();
    snap!("account_logout_all", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    assert!(emails(&home).is_empty());
}

/// `/account` in the cockpit (a pseudo-terminal): lists the accounts, switches to another, and the
/// header names it by email at once; the stored default follows; `/logout --all` asks, then
/// signs out of every account, revoking each and the MCP sign-in obtained for one of them.
#[test]
fn the_cockpit_lists_and_switches_accounts() {
    use crate::cockpit::{WAIT, cockpit, expect, submit};
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let one = Server::start_with(|c| c.demo_mcp = true);
    one.add_user("bob@example.com");
    let home = signed_in(&one);
    signed_in_again(&home, &one, "bob@example.com");
    // Bob (the default now) lists the demo MCP server and signs in to it.
    let demo = serde_json::json!({"url": format!("{}/mcp/demo", one.url)});
    one.add_mcp("bob@example.com", "demo", demo);
    let (code, _, err, _) = crate::mcp_oauth::mcp_login(&home, &one, &["mcp", "login", "demo"]);
    assert_eq!(code, 0, "{err}");
    let live_mcp = || {
        one.count(
            "SELECT COUNT(*) FROM token_families WHERE resource IS NOT NULL AND revoked_at IS NULL",
        )
    };
    assert_eq!(live_mcp(), 1);
    let mut t = cockpit(&home, &[("MOGPLEX_URL", &one.url)]);
    expect(&t, "bob@example.com");
    submit(&mut t, "/account");
    let screen = expect(&t, "Stored Mogplex accounts");
    assert!(screen.contains("ada@example.com"), "{screen}");
    submit(&mut t, "/account ada@example.com");
    let screen = expect(&t, "Now using ada@example.com");
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.contains("ada@example.com"), "{screen}");
    assert_eq!(home.account()["account"]["email"], "ada@example.com");
    submit(&mut t, "/account eve@example.com");
    let screen = expect(&t, "matches `eve@example.com`");
    assert!(
        screen.contains("stored accounts: ada@example.com, bob@example.com"),
        "{screen}"
    );
    // /logout --all asks, then signs out of both, revoking each at the service.
    let live = || one.count("SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL");
    assert_eq!(live(), 3, "two accounts and one MCP sign-in");
    submit(&mut t, "/logout --all");
    expect(&t, "Sign out of every Mogplex account in this home?");
    t.send("n");
    t.wait_until(|s| !s.contains("every Mogplex account"), WAIT)
        .unwrap_or_else(|s| panic!("the question stayed open:\n{s}"));
    assert_eq!(emails(&home).len(), 2, "no keeps both");
    submit(&mut t, "/logout --all");
    expect(&t, "Sign out of every Mogplex account in this home?");
    t.send("y");
    let screen = expect(&t, "Signed out of 2 Mogplex accounts");
    assert!(
        screen.contains("Sign in with Mogplex"),
        "the login screen: {screen}"
    );
    assert!(emails(&home).is_empty());
    let deadline = std::time::Instant::now() + WAIT;
    while live() != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(live(), 0, "both revoked on the server");
    assert_eq!(live_mcp(), 0, "the MCP sign-in too");
    assert!(home.auth().get("mcp_tokens").is_none());
    t.send(mogplex_testkit::term::keys::CTRL_C);
    t.send(mogplex_testkit::term::keys::CTRL_C);
    let _ = t.wait_exit(WAIT);
}
