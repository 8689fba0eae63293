//! `cargo demo`: the cockpit signing in against a local account server, from a fresh clone.
//!
//! Says up front what it is about to build (the first run compiles for a few minutes), builds
//! `mogplex` and `mogplex-server` in the release profile with cargo's progress on the terminal
//! (the same builds `cargo xtask bench…` uses, so neither is compiled twice), starts
//! `mogplex-server dev` on a free loopback port with a fresh data directory, runs the cockpit
//! against it with a fresh Mogplex home (and none of this shell's credential variables, which
//! would otherwise take precedence over the demo sign-in), and stops the server and removes both
//! directories when the cockpit exits.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use xtask_lite::release_bin;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Variables that would change what the demo shows, by their shape rather than a list (this
/// crate cannot read the provider table): every key, token, key helper and base URL variable,
/// every `MOGPLEX_` variable, and the deprecated home variable.
fn would_interfere(name: &str) -> bool {
    ["_API_KEY", "_API_TOKEN", "_API_KEY_HELPER", "_BASE_URL"]
        .iter()
        .any(|end| name.ends_with(end))
        || name.starts_with("MOGPLEX_")
        || name == "CODEX_HOME"
}

/// The set variables the demo removes from the cockpit's environment, by name.
fn cleared() -> Vec<OsString> {
    std::env::vars_os()
        .filter(|(k, v)| !v.is_empty() && k.to_str().is_some_and(would_interfere))
        .map(|(k, _)| k)
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

fn run() -> Result<i32, String> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(
            "the demo is the cockpit, which needs a terminal; run `cargo demo` in one".into(),
        );
    }
    let started = Instant::now();
    eprintln!("==> mogplex demo: building mogplex and mogplex-server in the release profile.");
    eprintln!(
        "    The first run compiles for a few minutes (cargo shows its progress below; the last step of each,\n    optimising and linking, can sit still for a minute). Later runs start at once."
    );
    eprintln!("==> 1 of 2: mogplex");
    let mogplex = release_bin("mogplex-cli", "mogplex")?;
    eprintln!("==> 2 of 2: mogplex-server");
    let server_bin = release_bin("mogplex-server", "mogplex-server")?;
    eprintln!(
        "==> built in {:.0} s; starting mogplex-server dev",
        started.elapsed().as_secs_f64()
    );
    let tmp = TempDir(std::env::temp_dir().join(format!("mogplex-demo-{}", std::process::id())));
    let data = tmp.0.join("server");
    let home = tmp.0.join("home");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let log = tmp.0.join("server.log");
    let server = start_server(&server_bin, &data, &log).map_err(|e| {
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
    println!("(which shows the demo account too; then allow the Mogplex CLI on the consent page),");
    println!("or use a device code, or paste the address the browser ends on. Then chat with");
    println!("mogplex/echo. /quit, or Ctrl+C twice, ends the demo.");
    let cleared = cleared();
    let ignored: Vec<String> = cleared
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
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

    let mut cockpit = Command::new(&mogplex);
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

#[cfg(test)]
mod tests {
    use super::would_interfere;

    #[test]
    fn credential_and_address_variables_are_cleared() {
        for v in [
            "OPENAI_API_KEY",
            "VERCEL_API_TOKEN",
            "MOGPLEX_API_KEY_HELPER",
            "ANTHROPIC_BASE_URL",
            "MOGPLEX_URL",
            "MOGPLEX_ATTACH_RUN_ID",
            "CODEX_HOME",
            "SOME_FUTURE_PROVIDER_API_KEY",
        ] {
            assert!(would_interfere(v), "{v}");
        }
        for v in ["PATH", "HOME", "TERM", "BROWSER", "API_KEYS_DOC"] {
            assert!(!would_interfere(v), "{v}");
        }
    }
}
