//! `cargo xtask bench-cockpit [RUNS]`: how long the cockpit takes from spawn to a complete first
//! frame of the login screen, and its peak memory.
//!
//! Each run starts the release `mogplex` on a fresh pseudo-terminal (80×24, an empty home, no
//! credentials), waits until the frame's last row (the login screen's key hints) has been
//! written, reads the peak RSS (`VmHWM`) and quits with `q`. The same pty spawn of a program that
//! prints the marker at once (`printf`) is measured too: that is the floor the cockpit cannot go
//! under (setsid, exec, the pty).

use mogplex_testkit::term::{self, Term};
use std::path::Path;
use std::time::Duration;

/// The last row of the login screen's first frame.
const MARKER: &str = "q quit";

fn spawn(program: &Path, args: &[&str], home: &Path) -> Result<Term, String> {
    let mut cmd = term::command(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("MOGPLEX_HOME", home)
        // Nothing answers here, so the background check for device codes fails at once.
        .env("MOGPLEX_URL", "http://127.0.0.1:9")
        .env("TERM", "xterm-256color");
    Term::spawn(cmd, 80, 24).map_err(|e| format!("cannot start {}: {e}", program.display()))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

pub fn run(runs: usize) -> Result<(), String> {
    let mogplex = xtask_lite::release_bin("mogplex-cli", "mogplex")?;
    let dir = std::env::temp_dir().join(format!("mogplex-bench-cockpit-{}", std::process::id()));
    let mut first_frames = Vec::with_capacity(runs);
    let mut first_bytes = Vec::with_capacity(runs);
    let mut floors = Vec::with_capacity(runs);
    let mut peak = 0u64;
    for i in 0..runs + 5 {
        let home = dir.join(format!("home-{i}"));
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let mut t = spawn(&mogplex, &[], &home)?;
        t.wait_for(MARKER, Duration::from_secs(10))
            .map_err(|s| format!("the login screen did not appear:\n{s}"))?;
        let frame = t.time_to(MARKER).ok_or("no marker time")?;
        let first = t.first_output().ok_or("no output")?;
        let rss = peak_rss_kib(t.pid()).unwrap_or(0);
        t.send("q");
        let status = t
            .wait_exit(Duration::from_secs(10))
            .ok_or("the cockpit did not quit on q")?;
        if !status.success() {
            return Err(format!("the cockpit exited with {status}"));
        }
        let floor = spawn(Path::new("/usr/bin/printf"), &[MARKER], &home)?;
        floor
            .wait_for(MARKER, Duration::from_secs(10))
            .map_err(|_| "printf printed nothing")?;
        let floor_time = floor.time_to(MARKER).ok_or("no floor time")?;
        // The first runs warm the page cache.
        if i >= 5 {
            first_frames.push(frame);
            first_bytes.push(first);
            floors.push(floor_time);
            peak = peak.max(rss);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    for v in [&mut first_frames, &mut first_bytes, &mut floors] {
        v.sort();
    }
    let ms = crate::ms;
    println!("{runs} runs after 5 warm-up runs; release mogplex, 80×24 pty, empty home\n");
    println!("{:<48} {:>9} {:>9} {:>9}", "", "median", "p90", "max");
    for (name, v) in [
        ("spawn to first byte", &first_bytes),
        (
            "spawn to complete login screen (first frame)",
            &first_frames,
        ),
        ("floor: the same spawn of printf", &floors),
    ] {
        println!(
            "{name:<48} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            ms(percentile(v, 50)),
            ms(percentile(v, 90)),
            ms(*v.last().unwrap_or(&Duration::ZERO))
        );
    }
    println!(
        "\nfirst frame, median: {:.2} ms (target under 20 ms)",
        ms(percentile(&first_frames, 50))
    );
    println!(
        "peak RSS on the login screen: {:.1} MiB",
        peak as f64 / 1024.0
    );
    Ok(())
}
