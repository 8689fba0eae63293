//! `cargo xtask bench-server`: the account server under a bounded load on loopback.
//!
//! For each backend (SQLite, and PostgreSQL when it is reachable) it starts the release
//! `mogplex-server serve`, signs in through the real pages to mint refresh tokens, then:
//! - refresh throughput: [`CHAINS`] concurrent workers each rotate their own refresh-token chain
//!   for a fixed time, without and with the `openid` scope (an ES256 ID token on every refresh);
//!   reports grants per second (over the whole run, its first fifth and its last fifth, so a rate
//!   that decays as the database grows shows) and latency percentiles. node-oidc-provider (the
//!   pinned npm peer, its in-memory store, RS256 ID tokens as it signs by default) runs the same
//!   load from the same generator, for the ratios;
//! - bearer-check cost, two ways: in-process, the check itself (`Db::principal`) timed against the
//!   live database; and over HTTP, sequential requests to an endpoint behind the check and to one
//!   without it (the difference of the percentiles; noisy on a shared machine).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "benchmark password";
const REDIRECT: &str = "http://127.0.0.1:24816/auth/callback";
const ADMIN_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Concurrent refresh chains, each rotating its own token as fast as it is answered.
const CHAINS: usize = 16;
/// The two refresh loads: a plain OAuth refresh, and an OpenID one that issues an ID token.
const SCOPES: [(&str, &str); 2] = [
    ("oauth", "offline_access"),
    ("openid", "openid offline_access"),
];

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
        // OpenID Connect on: ID tokens on refreshes that carry the `openid` scope.
        .env("MOGPLEX_SECRETS_KEY", secrets_key())
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

/// A fresh 32-byte key (base64) for the benchmark server's sealed signing keys.
fn secrets_key() -> String {
    use base64::Engine;
    use sha2::Digest;
    let seed = format!("{:?}{}", Instant::now(), std::process::id());
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(seed.as_bytes()))
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

/// Signs in once, then mints `n` refresh tokens of `scope` through the code flow.
async fn mint_refresh_tokens(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    scope: &str,
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
            .append_pair("scope", scope)
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

/// What one refresh load measured.
struct Refreshes {
    ok: usize,
    failed: usize,
    /// Latency of each successful refresh, sorted.
    lat: Vec<Duration>,
    /// Rates over the first and the last fifth of the run.
    first: f64,
    last: f64,
    /// One of the answers, to check what was issued.
    sample: serde_json::Value,
}

/// Each token in `tokens` is a chain: a worker refreshes it at `token_url` as `client_id`, takes
/// the new refresh token, and goes on until `duration` is over or a refresh fails.
async fn refresh_load(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    tokens: Vec<String>,
    duration: Duration,
) -> Refreshes {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|mut rt| {
            let (http, url, client_id) = (http.clone(), token_url.to_owned(), client_id.to_owned());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut lat, mut at) =
                    (0usize, 0usize, Vec::new(), Vec::new());
                let mut sample = serde_json::Value::Null;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", client_id.as_str()),
                            ("refresh_token", rt.as_str()),
                        ])
                        .send()
                        .await;
                    let v: serde_json::Value = match r {
                        Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
                        _ => serde_json::Value::Null,
                    };
                    let Some(next) = v["refresh_token"].as_str() else {
                        failed += 1;
                        break;
                    };
                    rt = next.to_owned();
                    lat.push(t.elapsed());
                    at.push(start.elapsed());
                    ok += 1;
                    if sample.is_null() {
                        sample = v;
                    }
                }
                (ok, failed, lat, at, sample)
            })
        })
        .collect();
    let mut out = Refreshes {
        ok: 0,
        failed: 0,
        lat: Vec::new(),
        first: 0.0,
        last: 0.0,
        sample: serde_json::Value::Null,
    };
    let mut at = Vec::new();
    for t in tasks {
        if let Ok((o, f, l, a, sample)) = t.await {
            out.ok += o;
            out.failed += f;
            out.lat.extend(l);
            at.extend(a);
            if out.sample.is_null() {
                out.sample = sample;
            }
        }
    }
    out.lat.sort();
    let fifth = duration / 5;
    let secs = fifth.as_secs_f64().max(f64::EPSILON);
    out.first = at.iter().filter(|a| **a < fifth).count() as f64 / secs;
    out.last = at
        .iter()
        .filter(|a| **a >= duration - fifth && **a < duration)
        .count() as f64
        / secs;
    out
}

/// One line of the refresh table; the rate over the whole run is returned for the ratios.
fn refresh_row(server: &str, load: &str, r: &Refreshes, seconds: u64) -> f64 {
    let rate = r.ok as f64 / seconds as f64;
    let id_token = match r.sample["id_token"].as_str() {
        Some(t) => jws_alg(t),
        None => "none".into(),
    };
    println!(
        "{server:<20} {load:<7} {rate:>11.0} {:>9.0} {:>9.0} {:>8.2} {:>8.2} {:>7} {id_token:>9}",
        r.first,
        r.last,
        pct(&r.lat, 0.5),
        pct(&r.lat, 0.99),
        r.failed,
    );
    rate
}

/// The `alg` of a compact JWS's header, to show which ID tokens were issued.
fn jws_alg(jws: &str) -> String {
    use base64::Engine;
    jws.split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// node-oidc-provider under the same refresh loads, one fresh provider per load.
fn node_rows(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    seconds: u64,
) -> Result<Vec<f64>, String> {
    use mogplex_testkit::peers::{OidcConfig, OidcProvider};
    let mut rates = Vec::new();
    for (load, scope) in SCOPES {
        let provider = OidcProvider::try_start(OidcConfig {
            bench_refresh_tokens: Some((CHAINS, scope.to_owned())),
            ..OidcConfig::default()
        })?;
        let tokens = provider.refresh_tokens().to_vec();
        if tokens.len() != CHAINS {
            return Err(format!(
                "node-oidc-provider minted {} refresh tokens, not {CHAINS}: {}",
                tokens.len(),
                provider.stderr()
            ));
        }
        let url = format!("{}/token", provider.issuer());
        let r = rt.block_on(refresh_load(
            http,
            &url,
            "mogplex-cli",
            tokens,
            Duration::from_secs(seconds),
        ));
        rates.push(refresh_row("node-oidc-provider", load, &r, seconds));
    }
    Ok(rates)
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
    // `XTASK_BENCH_ONLY=sqlite|postgres|node`: one server only (to watch it, e.g. with perf).
    let only = std::env::var("XTASK_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if !wanted("sqlite") {
        backends.clear();
    }
    let pg_ok = wanted("postgres")
        && Command::new("psql")
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
    } else if wanted("postgres") {
        println!("(PostgreSQL not reachable at 127.0.0.1:5432: skipping it)");
    }
    println!(
        "refresh grant: {CHAINS} concurrent chains, {seconds} s per load, one load generator (this process, 2 threads)\n\
         oauth: scope offline_access; openid: scope openid offline_access, an ID token on every refresh\n"
    );
    println!(
        "{:<20} {:<7} {:>11} {:>9} {:>9} {:>8} {:>8} {:>7} {:>9}",
        "server",
        "load",
        "refreshes/s",
        "1st fifth",
        "5th fifth",
        "p50 ms",
        "p99 ms",
        "failed",
        "ID token"
    );
    let mut checks = Vec::new();
    let mut gateways = Vec::new();
    let mut bearers = Vec::new();
    let mut ours = Vec::new();
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
            let mut chains = Vec::new();
            for (_, scope) in SCOPES {
                chains.push(mint_refresh_tokens(&http, &server.url, CHAINS, scope).await?);
            }
            // Warm up, then measure.
            sequential(
                &http,
                &format!("{}/api/v1/bench", server.url),
                Some(&pat),
                300,
            )
            .await;
            let token_url = format!("{}/api/auth/mcp/token", server.url);
            let mut loads = Vec::new();
            for tokens in chains {
                loads.push(
                    refresh_load(&http, &token_url, "mogplex-cli", tokens, Duration::from_secs(seconds))
                        .await,
                );
            }
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
            Ok::<_, String>((loads, open, guarded, check, (g_ok, g_failed, g_lat, g_seq)))
        })?;
        let (loads, open, guarded, check, gateway) = row;
        let server_name = format!("mogplex ({name})");
        let rates: Vec<f64> = SCOPES
            .iter()
            .zip(&loads)
            .map(|((load, _), r)| refresh_row(&server_name, load, r, seconds))
            .collect();
        ours.push((name, rates));
        bearers.push(format!(
            "bearer check over HTTP right after the load ({name}): no auth p50/p99 {:.3}/{:.3} ms, \
             bearer {:.3}/{:.3} ms, added {:.3}/{:.3} ms",
            pct(&open, 0.5),
            pct(&open, 0.99),
            pct(&guarded, 0.5),
            pct(&guarded, 0.99),
            pct(&guarded, 0.5) - pct(&open, 0.5),
            pct(&guarded, 0.99) - pct(&open, 0.99),
        ));
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let node = if wanted("node") {
        node_rows(&rt, &http, seconds)
    } else {
        Err("not asked for (XTASK_BENCH_ONLY)".into())
    };
    match node {
        Ok(node) => {
            println!();
            for (name, rates) in &ours {
                let ratios: Vec<String> = SCOPES
                    .iter()
                    .zip(rates.iter().zip(&node))
                    .map(|((load, _), (us, them))| format!("{load} {:.2}x", us / them))
                    .collect();
                println!(
                    "mogplex ({name}) / node-oidc-provider: {} (target: at least 2x)",
                    ratios.join(", ")
                );
            }
        }
        Err(e) => println!("(node-oidc-provider did not run: {e})"),
    }
    println!();
    for line in bearers {
        println!("{line}");
    }
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
