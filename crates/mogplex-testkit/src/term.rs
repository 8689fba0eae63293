//! A real pseudo-terminal for testing full-screen programs.
//!
//! The program runs as a session leader with the pty as its controlling terminal (util-linux
//! `setsid --ctty`, so spawning stays std's safe spawn, with no fork in a threaded test), at a set
//! size. A thread reads everything it writes and feeds a vt100 parser, answering cursor-position
//! queries the way a terminal would. Tests read the screen as text and type keys as a terminal
//! sends them.

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys as a terminal sends them.
pub mod keys {
    pub const ENTER: &str = "\r";
    pub const ESC: &str = "\x1b";
    pub const TAB: &str = "\t";
    pub const BACKSPACE: &str = "\x7f";
    pub const UP: &str = "\x1b[A";
    pub const DOWN: &str = "\x1b[B";
    pub const CTRL_C: &str = "\x03";
    /// Alt+Enter: a new line in the composer on every terminal.
    pub const ALT_ENTER: &str = "\x1b\r";

    /// Text as a bracketed paste.
    pub fn paste(text: &str) -> String {
        format!("\x1b[200~{text}\x1b[201~")
    }
}

pub struct Term {
    child: Child,
    writer: File,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Everything the program wrote, for leak checks.
    raw: Arc<Mutex<Vec<u8>>>,
    started: Instant,
    /// When each chunk of output arrived, and the length of the output after it.
    arrivals: Arc<Mutex<Vec<(Duration, usize)>>>,
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

/// `program` wrapped so that it runs with the pty as its controlling terminal; add arguments and
/// environment to it, then hand it to [`Term::spawn`].
pub fn command(program: impl Into<PathBuf>) -> Command {
    let mut c = Command::new("setsid");
    c.arg("--ctty").arg(program.into());
    c
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Term {
    /// Starts `cmd` (from [`command`]) on a new pty of `cols`×`rows`.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> std::io::Result<Self> {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
        grantpt(&controller)?;
        unlockpt(&controller)?;
        let name = ptsname(&controller, Vec::new())?;
        let path = PathBuf::from(name.to_string_lossy().into_owned());
        rustix::termios::tcsetwinsize(
            &controller,
            rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )?;
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
        };
        cmd.stdin(Stdio::from(open()?))
            .stdout(Stdio::from(open()?))
            .stderr(Stdio::from(open()?));
        let started = Instant::now();
        let child = cmd.spawn()?;
        let controller = File::from(controller);
        let writer = controller.try_clone()?;
        let mut answer = controller.try_clone()?;
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            nonzero(rows),
            nonzero(cols),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (s, r, times) = (screen.clone(), raw.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let mut reader = controller;
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let bytes = &buf[..n];
                        let at = started.elapsed();
                        // A terminal answers "where is the cursor?"; a program waiting for the
                        // answer would otherwise hang.
                        if bytes.windows(4).any(|w| w == b"\x1b[6n") {
                            let _ = answer.write_all(b"\x1b[1;1R");
                        }
                        if let Ok(mut raw) = r.lock() {
                            raw.extend_from_slice(bytes);
                            if let Ok(mut t) = times.lock() {
                                t.push((at, raw.len()));
                            }
                        }
                        if let Ok(mut p) = s.lock() {
                            p.process(bytes);
                        }
                    }
                }
            }
        });
        Ok(Self {
            child,
            writer,
            screen,
            raw,
            started,
            arrivals,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `keys` (see [`keys`]).
    pub fn send(&mut self, keys: &str) {
        let _ = self.writer.write_all(keys.as_bytes());
        let _ = self.writer.flush();
    }

    /// Types `text` one character at a time, as a person would (a paste arrives as one block).
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.send(c.encode_utf8(&mut [0u8; 4]));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The screen as text, one line a row, trailing spaces removed.
    pub fn screen(&self) -> String {
        let Ok(p) = self.screen.lock() else {
            return String::new();
        };
        let (_, cols) = p.screen().size();
        p.screen()
            .rows(0, cols.into())
            .map(|r| r.trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything written so far, as text (escape sequences included).
    pub fn raw_output(&self) -> String {
        self.raw
            .lock()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default()
    }

    /// How long after spawning the first byte arrived.
    pub fn first_output(&self) -> Option<Duration> {
        self.arrivals.lock().ok()?.first().map(|(t, _)| *t)
    }

    /// How long after spawning the output first contained `needle` (to the read that completed
    /// it).
    pub fn time_to(&self, needle: &str) -> Option<Duration> {
        let raw = self.raw.lock().ok()?;
        let at = raw
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())?
            + needle.len();
        let times = self.arrivals.lock().ok()?;
        times.iter().find(|(_, len)| *len >= at).map(|(t, _)| *t)
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until the screen shows `needle`; returns the screen, or the last screen as the error.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, String> {
        self.wait_until(|s| s.contains(needle), timeout)
    }

    /// How long ago the last output arrived.
    fn quiet_for(&self) -> Duration {
        let last = self
            .arrivals
            .lock()
            .ok()
            .and_then(|t| t.last().map(|(at, _)| *at))
            .unwrap_or_default();
        self.started.elapsed().saturating_sub(last)
    }

    /// Waits until `pred` holds for the screen, and the program has stopped writing for a
    /// moment (a frame arrives in several reads: a half-drawn one must not pass or fail a test).
    pub fn wait_until(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        const SETTLE: Duration = Duration::from_millis(40);
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) && self.quiet_for() >= SETTLE {
                // Read again: the screen may have changed between the two looks.
                let again = self.screen();
                if pred(&again) {
                    return Ok(again);
                }
            }
            if Instant::now() >= deadline {
                return Err(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the program to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
