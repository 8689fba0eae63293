//! `cargo xtask bench-server`: the account server under a bounded load on loopback.
//!
//! For each backend (SQLite, and PostgreSQL when it is reachable) it starts the release
//! `mogplex-server serve`, signs in through the real pages to mint refresh tokens, then:
//! - refresh throughput: concurrent workers each rotate their own refresh-token chain for a fixed
//!   time; reports grants per second and latency percentiles;
//! - bearer-check cost, two ways: in-process, the check itself (`Db::principal`) timed against the
//!   live database; and over HTTP, sequential requests to an endpoint behind the check and to one
//!   without it (the difference of the percentiles; noisy on a shared machine).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "benchmark password";
const REDIRECT: &str = "http://127.0.0.1:24816/auth/callback";
const ADMIN_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &std::path::Path, database: &str) -> Result<Server, String> {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--database",
            database,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--rate-limit",
            "100000000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let mut line = String::new();
    err.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.contains("listening") {
        return Err(format!("server did not start: {line}"));
    }
    Ok(Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        })
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].replace("&amp;", "&"))
}

fn query_param(u: &str, name: &str) -> Option<String> {
    url::Url::parse(u)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs in once, then mints `n` refresh tokens through the code flow.
async fn mint_refresh_tokens(
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<String>, String> {
    let e = |e: reqwest::Error| e.to_string();
    let r = http.get(format!("{base}/login")).send().await.map_err(e)?;
    let csrf = cookie(&r, "mogplex_csrf").ok_or("no csrf cookie")?;
    let page = r.text().await.map_err(e)?;
    let field = hidden(&page, "csrf").ok_or("no csrf field")?;
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", format!("mogplex_csrf={csrf}"))
        .form(&[
            ("csrf", field.as_str()),
            ("email", "bench@example.com"),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .map_err(e)?;
    let session = cookie(&r, "mogplex_session").ok_or("sign-in failed")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let verifier = "v".repeat(64);
        let challenge = pkce(&verifier);
        let mut u = url::Url::parse(&format!("{base}/api/auth/mcp/authorize"))
            .map_err(|e| e.to_string())?;
        u.query_pairs_mut()
            .append_pair("client_id", "mogplex-cli")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "s");
        let cookies = format!("mogplex_session={session}; mogplex_csrf={csrf}");
        let r = http
            .get(u.as_str())
            .header("cookie", &cookies)
            .send()
            .await
            .map_err(e)?;
        // Every loopback authorization asks for consent: allow.
        let page = r.text().await.map_err(e)?;
        let request = hidden(&page, "request").ok_or("no consent page")?;
        let r = http
            .post(format!("{base}/api/auth/mcp/consent"))
            .header("cookie", &cookies)
            .form(&[
                ("csrf", field.as_str()),
                ("request", request.as_str()),
                ("decision", "allow"),
            ])
            .send()
            .await
            .map_err(e)?;
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or("no redirect")?
            .to_owned();
        let code = query_param(&loc, "code").ok_or("no code")?;
        let v: serde_json::Value = http
            .post(format!("{base}/api/auth/mcp/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "mogplex-cli"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .map_err(e)?
            .json()
            .await
            .map_err(e)?;
        out.push(
            v["refresh_token"]
                .as_str()
                .ok_or("no refresh token")?
                .to_owned(),
        );
    }
    Ok(out)
}

/// S256 of the verifier (RFC 7636).
fn pkce(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn refresh_load(
    http: &reqwest::Client,
    base: &str,
    tokens: Vec<String>,
    duration: Duration,
) -> (usize, usize, Vec<Duration>) {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|mut rt| {
            let http = http.clone();
            let url = format!("{base}/api/auth/mcp/token");
            tokio::spawn(async move {
                let (mut ok, mut failed, mut lat) = (0usize, 0usize, Vec::new());
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", "mogplex-cli"),
                            ("refresh_token", &rt),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            lat.push(t.elapsed());
                            match v["refresh_token"].as_str() {
                                Some(next) => {
                                    rt = next.to_owned();
                                    ok += 1;
                                }
                                None => break,
                            }
                        }
                        _ => {
                            failed += 1;
                            break;
                        }
                    }
                }
                (ok, failed, lat)
            })
        })
        .collect();
    let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((o, f, l)) = t.await {
            ok += o;
            failed += f;
            lat.extend(l);
        }
    }
    lat.sort();
    (ok, failed, lat)
}

/// Concurrent streamed echo completions through the gateway for `duration`; each latency is the
/// whole answer, read to `[DONE]`.
async fn gateway_load(
    http: &reqwest::Client,
    base: &str,
    pat: &str,
    workers: usize,
    duration: Duration,
) -> (usize, usize, Vec<Duration>) {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (http, url, pat) = (http.clone(), format!("{base}/api/cli/inference/chat/completions"), pat.to_owned());
            tokio::spawn(async move {
                let body = serde_json::json!({"model": "mogplex/echo", "stream": true,
                    "messages": [{"role": "user", "content": "measure the gateway with a short prompt of a dozen words or so"}]});
                let (mut ok, mut failed, mut lat) = (0usize, 0usize, Vec::new());
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match http.post(&url).bearer_auth(&pat).json(&body).send().await {
                        Ok(r) if r.status().is_success() => match r.text().await {
                            Ok(text) if text.trim_end().ends_with("data: [DONE]") => {
                                lat.push(t.elapsed());
                                ok += 1;
                            }
                            _ => failed += 1,
                        },
                        _ => failed += 1,
                    }
                }
                (ok, failed, lat)
            })
        })
        .collect();
    let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((o, f, l)) = t.await {
            ok += o;
            failed += f;
            lat.extend(l);
        }
    }
    lat.sort();
    (ok, failed, lat)
}

async fn sequential(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    n: usize,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = http.get(url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let t = Instant::now();
        if let Ok(r) = req.send().await {
            let _ = r.bytes().await;
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

pub fn run(seconds: u64) -> Result<(), String> {
    let bin = xtask_lite::release_bin("mogplex-server", "mogplex-server")?;
    let dir = std::env::temp_dir().join(format!("mogplex-server-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}", dir.join("bench.db").display()),
    )];
    let pg_name = format!("mogplex_bench_{}", std::process::id());
    let pg_ok = Command::new("psql")
        .args([ADMIN_PG, "-qc", &format!("CREATE DATABASE {pg_name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if pg_ok {
        backends.push((
            "postgres",
            format!("postgres://postgres@127.0.0.1:5432/{pg_name}"),
        ));
    } else {
        println!("(PostgreSQL not reachable at 127.0.0.1:5432: skipping it)");
    }
    println!(
        "{seconds} s of refresh load per backend, 32 concurrent chains; 3000 sequential requests for the bearer check\n"
    );
    println!(
        "{:<9} {:>12} {:>9} {:>9} {:>9} | {:>14} {:>14} {:>14}",
        "backend",
        "refreshes/s",
        "p50 ms",
        "p99 ms",
        "failed",
        "no auth p50/p99",
        "bearer p50/p99",
        "added p50/p99"
    );
    let mut checks = Vec::new();
    let mut gateways = Vec::new();
    for (name, database) in &backends {
        let mut add = Command::new(&bin)
            .args([
                "user",
                "add",
                "--database",
                database,
                "--email",
                "bench@example.com",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut i) = add.stdin.take() {
            use std::io::Write;
            let _ = i.write_all(PASSWORD.as_bytes());
        }
        add.wait().map_err(|e| e.to_string())?;
        let pat = Command::new(&bin)
            .args([
                "pat",
                "create",
                "--database",
                database,
                "--email",
                "bench@example.com",
            ])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .map_err(|e| e.to_string())?;
        // The echo model on a plan for the benchmark account, as an administrator would set it up.
        for args in [
            vec![
                "model",
                "add",
                "--database",
                database,
                "--slug",
                "mogplex/echo",
                "--display-name",
                "Echo",
                "--echo",
            ],
            vec![
                "plan",
                "create",
                "--database",
                database,
                "--name",
                "bench",
                "--model",
                "mogplex/echo",
            ],
            vec![
                "plan",
                "assign",
                "--database",
                database,
                "--email",
                "bench@example.com",
                "--plan",
                "bench",
            ],
        ] {
            let ok = Command::new(&bin)
                .args(&args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!(
                    "setting up the benchmark failed: mogplex-server {}",
                    args.join(" ")
                ));
            }
        }
        let server = start(&bin, database)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        let row = rt.block_on(async {
            let tokens = mint_refresh_tokens(&http, &server.url, 32).await?;
            // Warm up, then measure.
            sequential(
                &http,
                &format!("{}/api/v1/bench", server.url),
                Some(&pat),
                300,
            )
            .await;
            let (ok, failed, lat) =
                refresh_load(&http, &server.url, tokens, Duration::from_secs(seconds)).await;
            let open = sequential(
                &http,
                &format!("{}/.well-known/oauth-authorization-server", server.url),
                None,
                3000,
            )
            .await;
            let guarded = sequential(
                &http,
                &format!("{}/api/v1/bench", server.url),
                Some(&pat),
                3000,
            )
            .await;
            let db = mogplex_server::db::Db::connect(database)
                .await
                .map_err(|e| e.to_string())?;
            let mut check = Vec::with_capacity(5000);
            for _ in 0..5000 {
                let t = Instant::now();
                let found = db.principal(&pat).await.map_err(|e| e.to_string())?;
                check.push(t.elapsed());
                if found.is_none() {
                    return Err("the benchmark token did not authenticate".into());
                }
            }
                        check.sort();
            let (g_ok, g_failed, g_lat) = gateway_load(&http, &server.url, &pat, 16, Duration::from_secs(seconds)).await;
            let g_seq = {
                let mut v = Vec::with_capacity(1000);
                for _ in 0..1000 {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{}/api/cli/inference/chat/completions", server.url))
                        .bearer_auth(&pat)
                        .json(&serde_json::json!({"model": "mogplex/echo", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = r.text().await;
                    v.push(t.elapsed());
                }
                v.sort();
                v
            };
            Ok::<_, String>((ok, failed, lat, open, guarded, check, (g_ok, g_failed, g_lat, g_seq)))
        })?;
        let (ok, failed, lat, open, guarded, check, gateway) = row;
        println!(
            "{name:<9} {:>12.0} {:>9.2} {:>9.2} {:>9} | {:>6.3}/{:<7.3} {:>6.3}/{:<7.3} {:>6.3}/{:<7.3}",
            ok as f64 / seconds as f64,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            failed,
            pct(&open, 0.5),
            pct(&open, 0.99),
            pct(&guarded, 0.5),
            pct(&guarded, 0.99),
            pct(&guarded, 0.5) - pct(&open, 0.5),
            pct(&guarded, 0.99) - pct(&open, 0.99),
        );
        checks.push((name, pct(&check, 0.5), pct(&check, 0.99)));
        let (g_ok, g_failed, g_lat, g_seq) = gateway;
        gateways.push(format!(
            "gateway, echo ({name}): {:.0} requests/s with 16 clients (p50 {:.2} ms, p99 {:.2} ms, {g_failed} failed); \
             one client: p50 {:.3} ms, p99 {:.3} ms per streamed answer, {:.3} / {:.3} ms over the no-auth endpoint",
            g_ok as f64 / seconds as f64,
            pct(&g_lat, 0.5),
            pct(&g_lat, 0.99),
            pct(&g_seq, 0.5),
            pct(&g_seq, 0.99),
            pct(&g_seq, 0.5) - pct(&open, 0.5),
            pct(&g_seq, 0.99) - pct(&open, 0.99),
        ));
        drop(server);
    }
    println!();
    for line in gateways {
        println!("{line}");
    }
    for (name, p50, p99) in checks {
        println!(
            "bearer check in-process ({name}): p50 {p50:.3} ms, p99 {p99:.3} ms (target: under 1 ms at p99)"
        );
    }
    if pg_ok {
        let _ = Command::new("psql")
            .args([
                ADMIN_PG,
                "-qc",
                &format!("DROP DATABASE {pg_name} WITH (FORCE)"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
