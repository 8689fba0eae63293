//! Tokens go only to their issuer: a sign-in stored from one `mogplex-server`, and `MOGPLEX_URL`
//! naming another. The other server sits behind a relay that records every byte it is sent (its
//! request log, at the wire), so "nothing of the first sign-in reached it" is checked where it
//! would have arrived.

use crate::signin::{PORTS, Server, expire_in, run_against, signed_in};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A TCP relay in front of `upstream` that keeps everything clients send.
pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { url, seen }
    }

    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }
}

#[test]
fn a_sign_in_is_never_sent_to_another_service_nor_removed_by_it() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let one = Server::start();
    let two = Server::start();
    let recorder = Recorder::start(&two.url);
    let home = signed_in(&one);
    // Due for a refresh: a session with the first service would renew it now.
    expire_in(&home, 10);
    let before = home.account();
    let secrets: Vec<String> = ["access_token", "refresh_token", "id_token"]
        .iter()
        .filter_map(|f| before[*f].as_str().map(str::to_owned))
        .collect();
    assert!(secrets.len() >= 2, "{before}");

    let against_two = |args: &[&str]| {
        home.cmd(args)
            .env("MOGPLEX_URL", &recorder.url)
            .output()
            .unwrap()
    };
    // A prompt: no Mogplex sign-in here, and it says why.
    let out = against_two(&["exec", "hi"]);
    snap!("other_issuer_exec", home.render(&out));
    assert_eq!(out.status.code(), Some(64));
    // The same in --json: the notice is an event's, not only stderr's.
    let out = against_two(&["exec", "--json", "hi"]);
    assert_eq!(out.status.code(), Some(64));
    let event: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(event["type"], "error");
    assert!(
        event["hints"][0]
            .as_str()
            .unwrap()
            .contains(&format!("MOGPLEX_URL={}", one.url)),
        "{event}"
    );
    // Signing out of the other service deletes nothing of this one.
    let out = against_two(&["logout"]);
    snap!("other_issuer_logout", home.render(&out));
    assert_eq!(out.status.code(), Some(0));
    // A model named for the gateway: still nothing sent.
    let out = against_two(&["exec", "--model", "mogplex/echo", "hi"]);
    assert_eq!(out.status.code(), Some(64), "{}", home.render(&out));

    let received = recorder.received();
    for s in &secrets {
        assert!(
            !received.contains(s.as_str()),
            "a token of the first service reached the second"
        );
    }
    assert!(
        !received.contains("refresh_token"),
        "no refresh was attempted at the second service:\n{received}"
    );
    // The sign-in survives, unchanged, and still works with its own service.
    assert_eq!(home.account(), before);
    let out = run_against(&home, &one, &["exec", "hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", home.render(&out));
}

/// A password inside an address is a secret: never printed, never logged, never in `--json`.
#[test]
fn userinfo_in_addresses_is_masked_everywhere() {
    let mut home = crate::common::TestHome::new();
    // Nothing listens on port 9.
    home.env("OPENAI_API_KEY", "sk-userinfo-test-0123456789")
        .env(
            "OPENAI_BASE_URL",
            "http://ada:OpenAiPassw0rd@127.0.0.1:9/v1",
        )
        .env("MOGPLEX_URL", "http://bob:MogplexPassw0rd@127.0.0.1:9");
    let out = home.run(&["exec", "hi"]);
    snap!("userinfo_masked", home.render(&out));
    assert_eq!(out.status.code(), Some(69));
    let out_json = home.run(&["exec", "--json", "hi"]);
    let all = format!(
        "{}{}{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out_json.stdout),
        String::from_utf8_lossy(&out_json.stderr),
        home.log_text()
    );
    assert!(all.contains("[REDACTED]@127.0.0.1:9"), "{all}");
    for secret in ["OpenAiPassw0rd", "MogplexPassw0rd", "ada:", "bob:"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
}
