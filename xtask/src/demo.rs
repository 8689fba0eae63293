//! `cargo demo`: the cockpit signing in against a local account server, from a fresh clone.
//!
//! Builds `mogplex` and `mogplex-server`, starts `mogplex-server dev` on a free loopback port
//! with a fresh data directory, runs the cockpit against it with a fresh Mogplex home (and none
//! of this shell's credential variables, which would otherwise take precedence over the demo
//! sign-in), and stops the server and removes both directories when the cockpit exits.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Variables that would change what the demo shows: every credential variable, and the
/// attach and deprecated home variables.
fn cleared() -> Vec<&'static str> {
    mogplex_auth::Provider::ALL
        .iter()
        .map(|p| p.env_var())
        .chain(["MOGPLEX_ATTACH_RUN_ID", "CODEX_HOME"])
        .collect()
}

struct Server {
    child: Child,
    url: String,
    email: String,
    password: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run() -> Result<i32, String> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(
            "the demo is the cockpit, which needs a terminal; run `cargo demo` in one".into(),
        );
    }
    eprintln!("==> building mogplex and mogplex-server");
    crate::cargo(&[
        "build",
        "--quiet",
        "-p",
        "mogplex-cli",
        "--bin",
        "mogplex",
        "-p",
        "mogplex-server",
        "--bin",
        "mogplex-server",
    ])?;
    let bin = crate::target_dir().join("debug");
    let tmp = TempDir(std::env::temp_dir().join(format!("mogplex-demo-{}", std::process::id())));
    let data = tmp.0.join("server");
    let home = tmp.0.join("home");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let log = tmp.0.join("server.log");
    let server = start_server(&bin.join("mogplex-server"), &data, &log).map_err(|e| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        format!("{e}\n{}", text.trim_end())
    })?;

    println!();
    println!("mogplex demo");
    println!("  account service: {} (mogplex-server dev)", server.url);
    println!("  demo account:    {}", server.email);
    println!("  password:        {}", server.password);
    println!(
        "  Mogplex home:    {} (fresh, removed afterwards)",
        home.display()
    );
    println!();
    println!("In the cockpit choose \"Sign in with Mogplex\": a browser opens at the sign-in page");
    println!("(which shows the demo account too), or use a device code, or paste the address the");
    println!(
        "browser ends on. Then chat with mogplex/echo. /quit, or Ctrl+C twice, ends the demo."
    );
    let cleared = cleared();
    let ignored: Vec<&str> = cleared
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    if !ignored.is_empty() {
        println!(
            "\nnote: the demo ignores {} from this shell (they would take precedence over the demo sign-in)",
            ignored.join(", ")
        );
    }
    print!("\nPress Enter to open the cockpit… ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read from the terminal: {e}"))?;

    let mut cockpit = Command::new(bin.join("mogplex"));
    for v in &cleared {
        cockpit.env_remove(v);
    }
    let status = cockpit
        .env("MOGPLEX_HOME", &home)
        .env("MOGPLEX_URL", &server.url)
        .status()
        .map_err(|e| format!("cannot start mogplex: {e}"))?;
    drop(server);
    println!("Demo over: the account server has stopped and the demo's directories are removed.");
    Ok(status.code().unwrap_or(1))
}

fn start_server(bin: &Path, data: &Path, log: &Path) -> Result<Server, String> {
    let log =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut child = Command::new(bin)
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // The server's log must not draw over the cockpit.
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the server's output is not readable")?;
    let mut server = Server {
        child,
        url: String::new(),
        email: String::new(),
        password: String::new(),
    };
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let line = line.trim().to_owned();
        if let Some(u) = line.strip_prefix("mogplex-server dev: listening on ") {
            server.url = u.to_owned();
        } else if let Some(e) = line.strip_prefix("demo account:") {
            server.email = e.trim().to_owned();
        } else if let Some(p) = line.strip_prefix("demo password:") {
            server.password = p.trim().to_owned();
            break;
        }
    }
    if server.url.is_empty() || server.password.is_empty() {
        return Err("mogplex-server dev did not start; its log:".into());
    }
    Ok(server)
}
