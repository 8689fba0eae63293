//! Shared harness: the real `mogplex` binary, a cleared environment, a temp home, and snapshots
//! of exit code, stdout and stderr together with temp paths, ports and ids filtered.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use mogplex_testkit::{
    FakeServer, Reply, anthropic_stream, openai_stream, openai_stream_error,
};

pub struct TestHome {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    env: Vec<(String, String)>,
}

impl TestHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("mogplex-home");
        Self {
            dir,
            home,
            env: Vec::new(),
        }
    }

    pub fn env(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The variables the test set.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn auth_path(&self) -> PathBuf {
        self.home.join("auth.json")
    }

    /// A command with nothing of the developer's environment: PATH, a HOME inside the temp dir,
    /// MOGPLEX_HOME, and what the test set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("user"))
            .env("MOGPLEX_HOME", &self.home)
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        output_with_stdin(self.cmd(args), input)
    }

    /// Writes auth.json the way mogplex would (home 0700, file 0600).
    pub fn write_auth(&self, value: &serde_json::Value) {
        self.write_auth_raw(serde_json::to_string_pretty(value).unwrap().as_bytes());
    }

    pub fn write_auth_raw(&self, bytes: &[u8]) {
        std::fs::create_dir_all(&self.home).unwrap();
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(self.auth_path(), bytes).unwrap();
        std::fs::set_permissions(self.auth_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn auth(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.auth_path()).unwrap()).unwrap()
    }

    /// The stored default Mogplex account (`auth.json` version 2: `accounts[default_account]`),
    /// or null when none is stored.
    pub fn account(&self) -> serde_json::Value {
        let v = self.auth();
        if v["version"] == 1 {
            return v["mogplex"].clone();
        }
        let Some(id) = v["default_account"].as_str() else {
            return serde_json::Value::Null;
        };
        v["accounts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["id"] == id))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// Changes the stored default account's `field` to `value`.
    pub fn set_account_field(&self, field: &str, value: serde_json::Value) {
        let mut v = self.auth();
        let id = v["default_account"].clone();
        for a in v["accounts"].as_array_mut().unwrap() {
            if a["id"] == id {
                a[field] = value.clone();
            }
        }
        self.write_auth(&v);
    }

    /// Every log line written under the home.
    pub fn log_text(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.home.join("logs")) {
            for e in entries.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap());
            }
        }
        all
    }

    /// Snapshot text: exit code, stdout and stderr, with this home's paths filtered.
    pub fn render(&self, out: &Output) -> String {
        let text = format!(
            "exit_code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            out.status
                .code()
                .map_or("signal".to_owned(), |c| c.to_string()),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.replace(&self.dir.path().display().to_string(), "[TEMP]")
    }
}

/// Runs `cmd` with `input` on its stdin.
pub fn output_with_stdin(mut cmd: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A program may exit without reading its input (a usage error): that is not the test's
    // failure, so a closed pipe is fine here.
    match child.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mogplex"))
}

pub fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Snapshot with the filters every CLI snapshot needs.
#[macro_export]
macro_rules! snap {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
                (r"\d{8}T\d{6}Z(-\d+)?", "[TIMESTAMP]"),
                (r"[0-9a-f]{8}\.jsonl", "[ID].jsonl"),
                (r"\(os error \d+\)", "(os error N)"),
                (r"(acct|pat)_[0-9a-f]{12}", "${1}_[ID]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

/// Sets every base-URL variable to a distinct prefix on `server`, so the request path tells
/// which provider was used: `/<provider id>/…`.
pub fn route_all_providers(home: &mut TestHome, server: &FakeServer) {
    use mogplex_auth::provider::{Api, PROVIDERS};
    for p in &PROVIDERS {
        let id = p.id;
        home.env(p.base_url_var, &format!("{}/{id}", server.url()));
        let endpoint = match p.api {
            Api::MogplexGateway => "api/cli/inference/chat/completions",
            Api::AnthropicMessages => "v1/messages",
            Api::OpenAiCompatible => "chat/completions",
        };
        let reply = if p.api == Api::AnthropicMessages {
            anthropic_stream(&["Hello", " from ", id])
        } else {
            openai_stream(&["Hello", " from ", id])
        };
        server.route(&format!("/{id}/{endpoint}"), reply);
    }
    server.route(
        "/mogplex/api/models",
        Reply::json(200, serde_json::json!([{"slug": "mogplex/echo", "provider": "mogplex", "displayName": "Echo"}])),
    );
}

/// A terminal for stdin: the test keeps the controller side open while the child runs.
pub struct Pty {
    pub controller: std::os::fd::OwnedFd,
    pub path: PathBuf,
}

impl Pty {
    pub fn open() -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let path = PathBuf::from(name.to_str().unwrap());
        Self { controller, path }
    }

    pub fn stdio(&self) -> Stdio {
        Stdio::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .unwrap(),
        )
    }
}

/// Who listens on `port` now (`ss -ltnp`), for an assertion that a fixed loopback port was
/// free: a failure then names the process that held it.
pub fn port_holders(port: u16) -> String {
    let out = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("(ss could not run: {e})"),
    }
}
