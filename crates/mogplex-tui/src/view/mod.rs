//! Drawing: every frame comes from the [`App`] alone, from the rows [`crate::layout`] makes.
//!
//! One module per screen, and one for how rows look. Every screen draws at any size: what does
//! not fit is cut, and a screen too small for its parts says so instead.

mod login;
mod overlay;
mod session;
mod style;

use crate::app::{App, Screen};
pub use crate::text::wrap;
use ratatui::Frame;

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
