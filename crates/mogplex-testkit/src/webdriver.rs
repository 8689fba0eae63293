//! A minimal W3C WebDriver client for driving Debian's headless Chromium through `chromedriver`.
//!
//! WebDriver is HTTP and JSON, so a few requests cover what the tests need (navigate, find,
//! type, click, read the address and the page) without a browser-automation framework.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags for Chromium as root in a container with no network beyond loopback.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
];

pub fn chromium_path() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

pub fn chromedriver_path() -> Option<&'static str> {
    ["/usr/bin/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: std::path::PathBuf,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless Chromium session.
    pub async fn start() -> Result<Self, String> {
        let chromium = chromium_path()
            .ok_or("Chromium is not installed (apt-get install chromium chromium-driver)")?;
        let driver_bin = chromedriver_path()
            .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("mogplex-chromium-{}-{port}", std::process::id()));
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let session = r["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {r}"))?
            .to_owned();
        Ok(Self {
            driver,
            base,
            session,
            http,
            _profile: profile,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if v["value"].get("error").is_some() {
            return Err(format!("webdriver {path}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    pub async fn url(&self) -> Result<String, String> {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    }

    pub async fn source(&self) -> Result<String, String> {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    }

    /// The element matching a CSS selector, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let started = Instant::now();
        loop {
            match self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await
            {
                Ok(v) => {
                    return v[ELEMENT_KEY]
                        .as_str()
                        .map(|s| Element(s.to_owned()))
                        .ok_or_else(|| format!("bad element: {v}"));
                }
                Err(e) if started.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let el = self.find(css).await?;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", el.0),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    pub async fn click(&self, css: &str) -> Result<(), String> {
        let el = self.find(css).await?;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", el.0),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn text(&self, css: &str) -> Result<String, String> {
        let el = self.find(css).await?;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", el.0),
            None,
        )
        .await
        .map(|v| v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until the address satisfies `pred`.
    pub async fn wait_for_url(&self, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let u = self.url().await?;
            if pred(&u) {
                return Ok(u);
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err(format!("timed out; the browser is at {u}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        // Best effort: end the session (which quits Chromium), then the driver.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = reqwest::Client::new()
                        .delete(url)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}
