//! The soak test of issue 17: three processes of the real binary on one PostgreSQL database,
//! refresh chains, gateway requests and run events spread over all three, and one process
//! killed with SIGKILL and started again halfway. Bounded in count (12 chains of 30 refreshes,
//! a gateway request after each, 90 run events), so it ends in well under a minute here.
//!
//! Clients behave as the CLI does: a dropped connection or a 5xx from the killed process is
//! retried with the same token (within the refresh grace interval) on another process; an
//! append whose answer was lost is looked up before it is sent again.

use crate::harness::*;
use crate::refresh::{Proc, spawn_server_with};
use crate::runs::Sub;
use futures_util::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHAINS: usize = 12;
const PER_CHAIN: usize = 30;
const EVENTS: i64 = 90;
/// The process that is killed and started again; 0 and 1 stay up.
const KILLED: usize = 2;

/// Where requests go, and what each process answered.
struct Cluster {
    urls: Mutex<[String; 3]>,
    /// Per process: statuses answered, and requests that got no answer.
    answers: Mutex<[BTreeMap<u16, usize>; 3]>,
    unanswered: [AtomicUsize; 3],
    /// 5xx or unanswered requests from a process that stayed up: what went wrong.
    faults: Mutex<Vec<String>>,
}

impl Cluster {
    fn url(&self, p: usize) -> String {
        self.urls.lock().unwrap()[p].clone()
    }

    /// Sends what `build` makes to process `p`: the response if it is an answer to keep (not a
    /// 5xx, not a dropped connection), else `None`, with a 5xx or a drop from a process that
    /// stayed up recorded as a fault.
    async fn send(
        &self,
        p: usize,
        what: &str,
        build: impl FnOnce(&str) -> reqwest::RequestBuilder,
    ) -> Option<reqwest::Response> {
        let url = self.url(p);
        match build(&url).send().await {
            Ok(r) => {
                let st = r.status().as_u16();
                *self.answers.lock().unwrap()[p].entry(st).or_default() += 1;
                if st < 500 {
                    return Some(r);
                }
                if p != KILLED {
                    let body = r.text().await.unwrap_or_default();
                    self.faults
                        .lock()
                        .unwrap()
                        .push(format!("{what} on process {p}: {st} {body}"));
                }
                None
            }
            Err(e) => {
                self.unanswered[p].fetch_add(1, Ordering::Relaxed);
                if p != KILLED {
                    self.faults
                        .lock()
                        .unwrap()
                        .push(format!("{what} on process {p}: no answer: {e}"));
                }
                None
            }
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One sign-in refreshed `PER_CHAIN` times, step `k` on process `(chain + k) % 3`, each new
/// access token used at once for a gateway request on the next process. The refreshes
/// answered 200, or the error that ended the sign-in.
async fn chain(
    c: Arc<Cluster>,
    chain: usize,
    mut rt: String,
    progress: Arc<AtomicUsize>,
) -> Result<usize, String> {
    let http = client();
    let mut p = chain % 3;
    let mut refreshed = 0;
    while refreshed < PER_CHAIN {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", "mogplex-cli"),
            ("refresh_token", rt.as_str()),
        ];
        let Some(r) = c
            .send(p, "a refresh", |u| {
                http.post(format!("{u}/api/auth/mcp/token")).form(&form)
            })
            .await
        else {
            // The CLI's retry: the same token, on another process.
            p = (p + 1) % 3;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let st = r.status();
        let body: serde_json::Value = match r.json().await {
            Ok(b) => b,
            Err(_) => {
                p = (p + 1) % 3;
                continue;
            }
        };
        if st != 200 {
            return Err(format!(
                "chain {chain}, refresh {refreshed}, process {p}: {st} {body}"
            ));
        }
        rt = body["refresh_token"].as_str().unwrap().to_owned();
        refreshed += 1;
        progress.fetch_add(1, Ordering::Relaxed);
        // The gateway, with the access token just issued, on the next process.
        let access = body["access_token"].as_str().unwrap().to_owned();
        let chat = json!({
            "model": mogplex_server::gateway::ECHO_MODEL,
            "messages": [{"role": "user", "content": format!("chain {chain} step {refreshed}")}],
        });
        let mut g = (p + 1) % 3;
        loop {
            let sent = c
                .send(g, "a gateway request", |u| {
                    http.post(format!("{u}{}", mogplex_protocol::routes::INFERENCE))
                        .bearer_auth(&access)
                        .json(&chat)
                })
                .await;
            if let Some(r) = sent {
                let st = r.status();
                if st != 200 {
                    return Err(format!(
                        "chain {chain}, gateway {refreshed}, process {g}: {st} {}",
                        r.text().await.unwrap_or_default()
                    ));
                }
                break;
            }
            g = (g + 1) % 3;
        }
        p = (p + 1) % 3;
    }
    Ok(refreshed)
}

/// Appends events 1..=EVENTS to `run`, event `n` on process `n % 3`, one after another. An
/// append without an answer is looked up on process 0 before it is sent again, so each is
/// stored once.
async fn appender(c: Arc<Cluster>, pat: String, run: String, progress: Arc<AtomicUsize>) {
    let http = client();
    let events = |u: &str| format!("{u}/api/v1/mogplex/runs/{run}/events");
    for n in 1..=EVENTS {
        // Paced by the refreshes, so the appends span the whole load and the kill.
        let due = (n as usize - 1) * CHAINS * PER_CHAIN / EVENTS as usize;
        while progress.load(Ordering::Relaxed) < due {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut p = (n % 3) as usize;
        loop {
            let sent = c
                .send(p, "an append", |u| {
                    http.post(events(u))
                        .bearer_auth(&pat)
                        .json(&json!({"type": "message", "n": n}))
                })
                .await;
            if let Some(r) = sent {
                assert_eq!(r.status(), 201, "append {n} on process {p}");
                break;
            }
            // Did it land before the process went away? (Its transaction has ended by now.)
            tokio::time::sleep(Duration::from_millis(300)).await;
            let snap: serde_json::Value = http
                .get(format!("{}/api/v1/mogplex/runs/{run}", c.url(0)))
                .bearer_auth(&pat)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if snap["data"]["eventCount"].as_i64() == Some(n) {
                break;
            }
            p = (p + 1) % 3;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_on_postgres_survive_a_kill_under_load() {
    // A database of its own (prefix ops_soak_), dropped with `seed` at the end.
    let (database, dir, name) = empty_database(Backend::Postgres).await;
    let name = name.unwrap();
    let renamed = name.replacen("mogplex_test_", "ops_soak_", 1);
    let admin = sqlx::PgPool::connect(ADMIN_PG).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} RENAME TO {renamed}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let database = database.replace(&name, &renamed);
    // Seeded through the library: an account with a plan that gives the echo model, and a
    // personal access token for the run.
    let seed = TestServer::on_database(&database, dir, Some(renamed), |_| {}).await;
    let uid = seed.user("ada@example.com").await;
    seed.db()
        .upsert_model(&mogplex_server::gateway::echo_row())
        .await
        .unwrap();
    let plan = seed
        .db()
        .set_plan("soak", &[mogplex_server::gateway::ECHO_MODEL.to_owned()])
        .await
        .unwrap()
        .unwrap();
    seed.db().assign_plan(&uid, Some(&plan)).await.unwrap();
    let pat = mogplex_server::crypto::personal_access_token();
    seed.db()
        .create_pat(&uid, "soak", &pat, None)
        .await
        .unwrap();

    let logs = tempfile::tempdir().unwrap();
    let log = |p: usize, life: usize| logs.path().join(format!("serve-{p}-{life}.log"));
    // The gateway's per-token limit is shared by the processes; the load here is not abuse.
    let args = ["--rate-limit", "100000"];
    let mut procs: Vec<Proc> = Vec::new();
    let mut urls = Vec::new();
    for p in 0..3 {
        let (proc, url) = spawn_server_with(&database, &log(p, 0), &args);
        procs.push(proc);
        urls.push(url);
    }
    let cluster = Arc::new(Cluster {
        urls: Mutex::new([urls[0].clone(), urls[1].clone(), urls[2].clone()]),
        answers: Mutex::new(Default::default()),
        unanswered: Default::default(),
        faults: Mutex::new(Vec::new()),
    });

    // Sign-ins on all three processes, one after another (all from one address, they would
    // meet the sign-in throttle if concurrent).
    let mut tokens = Vec::new();
    for i in 0..CHAINS {
        tokens.push(
            signed_in_tokens(urls[i % 3].as_str(), "ada@example.com")
                .await
                .1,
        );
    }

    // A run followed from processes 0 and 1, while events are appended on all three.
    let run = {
        let r = client()
            .post(format!("{}/api/v1/mogplex/runs", urls[0]))
            .bearer_auth(&pat)
            .json(&json!({"title": "soak"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let followers: Vec<_> = [0usize, 1]
        .into_iter()
        .map(|p| {
            let (url, pat, run) = (urls[p].clone(), pat.clone(), run.clone());
            tokio::spawn(async move {
                let mut sub = Sub::open(&url, &pat, &run, None).await;
                sub.next(EVENTS as usize).await
            })
        })
        .collect();
    // Both streams are open before the first append.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let progress = Arc::new(AtomicUsize::new(0));
    let chains: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, rt)| tokio::spawn(chain(cluster.clone(), i, rt, progress.clone())))
        .collect();
    let appends = tokio::spawn(appender(
        cluster.clone(),
        pat.clone(),
        run.clone(),
        progress.clone(),
    ));

    // Halfway through the refreshes: SIGKILL, then the same process started again.
    while progress.load(Ordering::Relaxed) < CHAINS * PER_CHAIN / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(procs.remove(KILLED));
    let (proc, url) = spawn_server_with(&database, &log(KILLED, 1), &args);
    procs.insert(KILLED, proc);
    cluster.urls.lock().unwrap()[KILLED] = url;
    let at_restart = progress.load(Ordering::Relaxed);

    let results: Vec<Result<usize, String>> = join_all(chains)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    appends.await.unwrap();
    let delivered: Vec<Vec<(i64, i64)>> = join_all(followers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    let answers = cluster.answers.lock().unwrap().clone();
    let unanswered: Vec<usize> = cluster
        .unanswered
        .iter()
        .map(|u| u.load(Ordering::Relaxed))
        .collect();
    eprintln!(
        "soak: answers per process {answers:?}, unanswered {unanswered:?}, {at_restart} refreshes before the restart"
    );
    // No sign-in lost: every chain ran to its end.
    let lost: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(lost.is_empty(), "{} sign-ins lost: {lost:?}", lost.len());
    let refreshed: usize = results.iter().map(|r| *r.as_ref().unwrap()).sum();
    assert_eq!(refreshed, CHAINS * PER_CHAIN);
    // The processes that stayed up answered everything, and never with a 5xx.
    let faults = cluster.faults.lock().unwrap().clone();
    assert!(faults.is_empty(), "{faults:?}");
    // The kill cut requests, and the load really was spread over all three, the restarted
    // one included.
    assert!(unanswered[KILLED] > 0);
    for (p, a) in answers.iter().enumerate() {
        assert!(a.get(&200).copied().unwrap_or(0) > 0, "process {p}: {a:?}");
    }
    let after = client()
        .get(format!("{}/health/ready", cluster.url(KILLED)))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    // Every event, once and in order, on both streams.
    let expected: Vec<(i64, i64)> = (1..=EVENTS).map(|n| (n, n)).collect();
    for (p, got) in delivered.iter().enumerate() {
        assert_eq!(got, &expected, "the subscriber on process {p}");
    }
    assert_eq!(
        seed.count(&format!(
            "SELECT COUNT(*) FROM run_events WHERE run_id = '{run}'"
        ))
        .await,
        EVENTS
    );
    // An audit row for every refresh answered (a refresh whose answer was lost may add one).
    let audited = seed
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'token.refreshed' AND outcome = 'ok' AND user_id = '{uid}'"
        ))
        .await;
    assert!(
        audited >= refreshed as i64,
        "{audited} refreshes audited, {refreshed} answered"
    );
    drop(procs);
}
