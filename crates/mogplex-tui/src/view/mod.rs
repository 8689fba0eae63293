//! Drawing: every frame comes from the [`App`] alone.
//!
//! Text is wrapped here rather than by ratatui, so that the number of rows is known exactly: the
//! transcript keeps its end in view however long the answers are, and the cursor lands where the
//! next character goes. One module per screen, and one for the text helpers they share.

mod login;
mod overlay;
mod session;
mod text;

use crate::app::{App, Screen};
use ratatui::Frame;
pub use text::wrap;

pub fn draw(f: &mut Frame, app: &App) {
    match app.screen() {
        Screen::Login {
            mode,
            selected,
            error,
            notes,
        } => login::login(f, app, mode, *selected, error.as_ref(), notes),
        Screen::Session => session::session(f, app),
    }
    if let Some(o) = app.overlay() {
        overlay::overlay(f, o);
    }
}
