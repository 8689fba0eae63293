//! `cargo xtask …`: project automation that is not part of the product.
//!
//! `cargo xtask man [DIR]` writes the man pages ([`man`]).
//!
//! `cargo demo` is not here but in `xtask/lite` (a crate without dependencies, so that it starts
//! at once); both build the product binaries through [`xtask_lite::release_bin`], in the release
//! profile, so each is compiled once (docs/contributing.md says why release).
//!
//! `cargo xtask bench` times whole `mogplex` processes (spawn to exit) reaching "clear failure"
//! (no credential) and "credential resolved" (stopped at the last check before the network),
//! each against `baseline`, a minimal Rust program that reads the same variables and parses the
//! same `auth.json`. It reports medians, the ratio, and each process's peak RSS (from wait4).

mod cockpit_bench;
mod man;
mod server_bench;

use xtask_lite::release_bin;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(300)),
        Some("bench-cockpit") => {
            cockpit_bench::run(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(50))
        }
        Some("bench-server") => {
            server_bench::run(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5))
        }
        Some("man") => man::run(args.get(1).map(String::as_str)),
        _ => Err("usage: cargo xtask bench [RUNS] | cargo xtask bench-cockpit [RUNS] | cargo xtask bench-server [SECONDS] | cargo xtask man [DIR]".to_owned()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Sample {
    wall: Duration,
    max_rss_kib: i64,
    code: i32,
}

/// Spawns and reaps one process, with its own resource usage.
fn run_once(cmd: &mut Command) -> Result<Sample, String> {
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; `status` is a valid out pointer;
    // the pid is our own child, reaped exactly once here (the Child handle is forgotten below so
    // it does not try to reap it again).
    #[allow(unsafe_code)]
    let (ret, rusage) = unsafe {
        let mut rusage: libc::rusage = std::mem::zeroed();
        let ret = libc::wait4(pid, &mut status, 0, &mut rusage);
        (ret, rusage)
    };
    let wall = start.elapsed();
    std::mem::forget(child);
    if ret != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Sample {
        wall,
        max_rss_kib: rusage.ru_maxrss,
        code,
    })
}

struct Stats {
    median: Duration,
    p10: Duration,
    p90: Duration,
    max_rss_kib: i64,
}

impl Stats {
    fn of(samples: &[Sample]) -> Stats {
        let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        walls.sort();
        let at = |p: usize| walls[(walls.len() * p / 100).min(walls.len() - 1)];
        Stats {
            median: at(50),
            p10: at(10),
            p90: at(90),
            max_rss_kib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
        }
    }
}

/// One program and the exit code it must end with.
struct Case<'a> {
    name: &'a str,
    expect_code: i32,
    make: &'a dyn Fn() -> Command,
}

/// Runs the cases in turn, one run of each per round (so that a change of load on a shared
/// machine touches all of them alike), after 20 warm-up rounds.
fn measure(runs: usize, cases: &[Case]) -> Result<Vec<Stats>, String> {
    let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::with_capacity(runs)).collect();
    for round in 0..runs + 20 {
        for (case, out) in cases.iter().zip(&mut samples) {
            let s = run_once(&mut (case.make)())?;
            if s.code != case.expect_code {
                return Err(format!(
                    "{}: exit code {} (expected {})",
                    case.name, s.code, case.expect_code
                ));
            }
            if round >= 20 {
                out.push(s);
            }
        }
    }
    Ok(samples.iter().map(|s| Stats::of(s)).collect())
}

/// The start-up target of SPEC section 8.
const TARGET_RATIO: f64 = 1.3;

/// Copies a binary into `dir`, as installing it would (`cargo install`, a package manager): both
/// programs are measured from a copy. The file the linker wrote is not the one users run, and on
/// this kernel (6.x, ext4) its page cache costs about 15 more page faults per start (0.1–0.2 ms)
/// than a copy's.
fn installed(bin: &Path, dir: &Path) -> Result<PathBuf, String> {
    let name = bin.file_name().ok_or("a binary without a name")?;
    let to = dir.join(name);
    std::fs::copy(bin, &to).map_err(|e| format!("cannot copy {}: {e}", bin.display()))?;
    Ok(to)
}

fn bench(runs: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("mogplex-bench-{}", std::process::id()));
    let empty_home = dir.join("empty");
    let full_home = dir.join("full");
    let bin_dir = dir.join("bin");
    for d in [&empty_home, &full_home, &bin_dir] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let mogplex = installed(&release_bin("mogplex-cli", "mogplex")?, &bin_dir)?;
    let baseline = installed(&release_bin("xtask", "baseline")?, &bin_dir)?;
    let auth = serde_json::json!({"version": 1,
        "mogplex": {"issuer": "https://www.mogplex.com", "access_token": "a".repeat(64), "refresh_token": "r".repeat(64),
            "id_token": "i".repeat(600), "token_type": "Bearer", "scope": "openid profile email offline_access read write",
            "expires_at": "2099-01-01T00:00:00Z", "obtained_at": "2026-11-22T06:00:00Z", "account": {"id": "u1", "email": "ada@example.com"}},
        "providers": {"openai": {"apiKey": format!("sk-{}", "k".repeat(48))}, "anthropic": {"apiKey": format!("sk-ant-{}", "k".repeat(90))}}});
    write_private(&full_home.join("auth.json"), &auth.to_string())?;

    let cmd = |bin: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(bin);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("MOGPLEX_HOME", home)
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // "Resolved" ends at the last check before the network: a plain-http base URL for a
    // non-loopback host is refused after resolution and model selection (exit 2).
    let key = [
        ("OPENAI_API_KEY", "sk-benchmark-0123456789abcdef"),
        ("OPENAI_BASE_URL", "http://example.com/v1"),
    ];
    println!(
        "{runs} rounds after 20 warm-up rounds, the four programs in turn in each (installed copies of the\nrelease builds); wall time from spawn to exit\n"
    );
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>12}",
        "scenario", "median", "p10", "p90", "peak RSS"
    );
    let row = |name: &str, s: &Stats| {
        println!(
            "{name:<52} {:>8.3}ms {:>8.3}ms {:>8.3}ms {:>9.1}MiB",
            ms(s.median),
            ms(s.p10),
            ms(s.p90),
            s.max_rss_kib as f64 / 1024.0
        );
    };
    let names = [
        "mogplex exec hi (no credential, exit 64)",
        "baseline (no credential)",
        "mogplex exec hi (resolved, exit 2 before network)",
        "baseline (resolved)",
    ];
    let stats = measure(
        runs,
        &[
            Case {
                name: names[0],
                expect_code: 64,
                make: &|| cmd(&mogplex, &empty_home, &["exec", "hi"], &[]),
            },
            Case {
                name: names[1],
                expect_code: 64,
                make: &|| cmd(&baseline, &empty_home, &[], &[]),
            },
            Case {
                name: names[2],
                expect_code: 2,
                make: &|| cmd(&mogplex, &full_home, &["exec", "hi"], &key),
            },
            Case {
                name: names[3],
                expect_code: 0,
                make: &|| cmd(&baseline, &full_home, &[], &key),
            },
        ],
    )?;
    for (name, s) in names.iter().zip(&stats) {
        row(name, s);
    }
    println!();
    let ratio = |m: &Stats, b: &Stats| {
        format!(
            "{:.2}x (p10 {:.2}x; target at most {TARGET_RATIO}x)",
            ms(m.median) / ms(b.median),
            ms(m.p10) / ms(b.p10)
        )
    };
    println!("ratio, no credential: {}", ratio(&stats[0], &stats[1]));
    println!("ratio, resolved:      {}", ratio(&stats[2], &stats[3]));
    let peak = stats[0].max_rss_kib.max(stats[2].max_rss_kib) as f64 / 1024.0;
    println!("mogplex peak RSS:     {peak:.1} MiB (target under 10 MiB)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| e.to_string())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())
}
