//! The terminal while the cockpit runs: raw mode, the alternate screen and bracketed paste (put
//! back as they were on exit and on a panic), the thread that reads keys, and the clipboard.

use super::Msg;
use super::services::Tx;
use mogplex_tui::{App, Event, view};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm;
use std::io::Stdout;

/// Raw mode, the alternate screen and bracketed paste while it lives; the terminal as it was
/// when it is dropped, and on a panic too.
pub(super) struct TerminalGuard {
    terminal: ratatui::Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    pub(super) fn enter() -> std::io::Result<Self> {
        use crossterm::event::{
            EnableBracketedPaste, KeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
        };
        use crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};
        enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        let mut stdout = std::io::stdout();
        // Terminals that know the keyboard protocol then tell Shift+Enter from Enter; others
        // ignore the request.
        crossterm::execute!(
            stdout,
            EnterAlternateScreen,
            EnableBracketedPaste,
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )
        .inspect_err(|_| restore_terminal())?;
        let terminal = ratatui::Terminal::new(CrosstermBackend::new(stdout))
            .inspect_err(|_| restore_terminal())?;
        Ok(Self { terminal })
    }

    /// The terminal's columns and rows (0×0 when it cannot tell).
    pub(super) fn size(&self) -> (u16, u16) {
        self.terminal
            .size()
            .map(|s| (s.width, s.height))
            .unwrap_or_default()
    }

    /// Draws a frame of `app`.
    pub(super) fn draw(&mut self, app: &App) -> std::io::Result<()> {
        self.terminal.draw(|f| view::draw(f, app)).map(|_| ())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    use crossterm::event::{DisableBracketedPaste, PopKeyboardEnhancementFlags};
    use crossterm::terminal::{LeaveAlternateScreen, disable_raw_mode};
    let mut stdout = std::io::stdout();
    let _ = crossterm::execute!(
        stdout,
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Keys, pastes and resizes, read on their own thread (reading blocks).
pub(super) fn spawn_input(tx: Tx) {
    use crossterm::event::{Event as Term, KeyEventKind};
    std::thread::spawn(move || {
        loop {
            let msg = match crossterm::event::read() {
                Ok(Term::Key(k)) if k.kind != KeyEventKind::Release => Msg::App(Event::Key(k)),
                Ok(Term::Paste(text)) => Msg::App(Event::Paste(text)),
                Ok(Term::Resize(w, h)) => Msg::App(Event::Resize(w, h)),
                Ok(_) => continue,
                Err(_) => Msg::App(Event::InputClosed),
            };
            let closed = matches!(msg, Msg::App(Event::InputClosed));
            if tx.send(msg).is_err() || closed {
                break;
            }
        }
    });
}

/// OSC 52: asks the terminal to put `text` on the clipboard (terminals that do not allow it
/// ignore the request). Only ever used for addresses, never for secrets.
pub(super) fn copy_to_clipboard(text: &str) {
    use base64::Engine;
    use std::io::Write;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{encoded}\x07");
    let _ = out.flush();
}
