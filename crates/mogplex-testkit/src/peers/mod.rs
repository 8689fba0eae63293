//! Third-party test peers from the npm registry, pinned in `peers/package-lock.json`.
//!
//! The suite proves interoperability against real, certified implementations rather than our
//! own idea of the standards: node-oidc-provider (an OpenID-certified authorization server,
//! configured as a deployer would, see `peers/oidc-provider.mjs`), openid-client (a certified
//! relying party) and `@modelcontextprotocol/server-everything` (the MCP reference server).
//!
//! [`Peers::get`] installs them once per lockfile into `target/peers/<hash>` (`peers/install`,
//! under a file lock, so parallel test binaries and threads wait for one `npm ci`);
//! `scripts/test` runs the same script before `cargo test`, so CI pays the install once and a
//! developer running one test by hand gets it lazily. Nothing here uses the network afterwards.
//!
//! [`OidcProvider`] runs the provider on 127.0.0.1 port 0 and kills it on drop; [`HttpBrowser`]
//! plays the user in its login, consent and device pages over plain HTTP (a cookie-keeping
//! reqwest client), so a test can complete a sign-in without Chromium; [`RelyingParty`] drives
//! openid-client through a sign-in against any server (ours included); [`McpEverything`] is the
//! command line that starts the MCP reference server over stdio.

use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

mod browser;
mod mcp;
mod oidc;
mod rp;

pub use browser::HttpBrowser;
pub use mcp::McpEverything;
pub use oidc::{OidcConfig, OidcProvider, confidential_client};
pub use rp::{Login, RelyingParty, RpConfig};

/// The client id and redirect URIs the CLI uses (SPEC section 4), and the device grant.
pub const CLI_CLIENT_ID: &str = "mogplex-cli";
pub const CLI_REDIRECT_URIS: [&str; 2] = [
    "http://127.0.0.1:24816/auth/callback",
    "http://127.0.0.1:24818/auth/callback",
];
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long a peer may take to start or to answer on a loaded 2-core machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Captured stderr is kept to this many bytes (the tail), enough for any failure message.
const STDERR_LIMIT: usize = 256 * 1024;

/// The installed peers: a `node_modules` tree and our scripts next to it.
#[derive(Debug)]
pub struct Peers {
    dir: PathBuf,
    node: PathBuf,
}

static PEERS: OnceLock<Result<Peers, String>> = OnceLock::new();

impl Peers {
    /// The installed peers, installing them first if this lockfile has not been installed yet.
    /// Panics with the installer's message when that fails (no node, no registry).
    pub fn get() -> &'static Peers {
        match Self::try_get() {
            Ok(peers) => peers,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_get() -> Result<&'static Peers, String> {
        PEERS.get_or_init(install).as_ref().map_err(Clone::clone)
    }

    /// The install directory (`target/peers/<lockfile hash>`), holding `node_modules`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The absolute path of `node`.
    pub fn node(&self) -> &Path {
        &self.node
    }

    /// One of our scripts (`oidc-provider.mjs`, …), copied next to `node_modules` so that its
    /// imports resolve there.
    pub fn script(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A file inside an installed package, e.g. `("openid-client", "package.json")`.
    pub fn package_file(&self, package: &str, file: &str) -> PathBuf {
        self.dir.join("node_modules").join(package).join(file)
    }
}

fn install() -> Result<Peers, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/install");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "installing the npm test peers failed ({}):\n{stderr}",
            out.status
        ));
    }
    if !stderr.trim().is_empty() {
        eprintln!("{}", stderr.trim_end());
    }
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed no directory", script.display()))?;
    let node = find_in_path("node").ok_or(
        "node is not on PATH (hint: apt-get install nodejs npm, or run scripts/test)".to_owned(),
    )?;
    Ok(Peers { dir, node })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs a future to completion on a fresh current-thread runtime, for synchronous tests that
/// use the async helpers here (not callable from inside a runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
        .block_on(future)
}

/// An account of the provider. Its login page accepts the id or the email (any case), and the
/// password when one is set, else any non-empty password.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password: Option<String>,
}

impl Account {
    /// An account with a verified email that accepts any password.
    pub fn new(id: &str, email: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            email: Some(email.into()),
            email_verified: true,
            name: Some(name.into()),
            password: None,
        }
    }

    pub fn with_password(mut self, password: &str) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn unverified(mut self) -> Self {
        self.email_verified = false;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "emailVerified": self.email_verified,
            "name": self.name,
            "password": self.password,
        })
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One of our node scripts as a child process: a cleared environment (only `PATH` and what the
/// caller adds), stdout read line by line, stderr kept for failure messages (and printed if the
/// test panics), killed on drop. The scripts exit by themselves when their stdin closes.
#[derive(Debug)]
struct NodeScript {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl NodeScript {
    fn spawn(name: &'static str, args: &[String], env: &[(&str, String)]) -> Result<Self, String> {
        let peers = Peers::try_get()?;
        let mut cmd = Command::new(peers.node());
        cmd.arg(peers.script(name))
            .args(args)
            .current_dir(peers.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stderr = capture(child.stderr.take().expect("stderr is piped"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining even when nobody listens, so the child never blocks on a pipe.
                let _ = tx.send(line);
            }
        });
        Ok(Self {
            name,
            child,
            stdin,
            lines,
            stderr,
        })
    }

    /// The next stdout line, parsed as JSON, waiting at most [`ANSWER_TIMEOUT`].
    fn next_json(&mut self) -> Result<Value, String> {
        let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(self.failure("no answer on stdout"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(self.failure("it exited"));
            }
        };
        serde_json::from_str(&line).map_err(|e| self.failure(&format!("{line:?} is not JSON: {e}")))
    }

    fn send_line(&mut self, line: &str) -> Result<(), String> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().ok_or("stdin is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| self.failure(&format!("cannot write to its stdin: {e}")))
    }

    /// A failure message with the child's exit status (once it has exited) and stderr.
    fn failure(&mut self, why: &str) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "still running".into(),
        };
        // Let the stderr reader collect what a dying child wrote last.
        std::thread::sleep(Duration::from_millis(100));
        format!(
            "node {}: {why} ({status})\nits stderr:\n{}",
            self.name,
            self.stderr()
        )
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} stderr ---\n{}", self.name, self.stderr());
        }
    }
}

fn capture(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&String::from_utf8_lossy(&buf[..n]));
            if log.len() > STDERR_LIMIT {
                let mut cut = log.len() - STDERR_LIMIT;
                while !log.is_char_boundary(cut) {
                    cut += 1;
                }
                log.drain(..cut);
            }
        }
    });
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_passwords() {
        let login = Login::new("alice", "hunter2");
        let account = Account::new("a", "a@example.com", "A").with_password("hunter2");
        let text = format!("{login:?} {account:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
