//! The mogplex cockpit.
//!
//! [`App`] is the whole state of a session. It changes only through [`App::update`], which takes
//! an [`Event`] (a key, a network result, a timer) and returns the [`Effect`]s the runtime must
//! carry out (start a sign-in, store a key, send a prompt, …) whose results come back as events.
//! [`view::draw`] renders a frame from the state alone. So every screen can be tested without a
//! terminal or a network, and the network never blocks drawing. The slash commands are one table,
//! [`command::SlashCommand`].

pub mod app;
pub mod command;
pub mod composer;
pub mod layout;
pub mod sanitize;
pub mod state;
pub mod text;
pub mod view;

pub use app::{
    App, Ask, Effect, Entry, EntryKind, Event, Header, LoginChoice, LoginMode, ModelChoice,
    Overlay, Screen, ToolApproval,
};
pub use command::SlashCommand;
pub use composer::Composer;
pub use sanitize::sanitize;
