//! The one way into the cockpit's state ([`Event`]) and the one way out of it ([`Effect`]), as in
//! codex's `app_event.rs`: the runtime turns keys, network results and timers into events, and
//! carries out the effects, whose results come back as events.

use crate::command::SlashCommand;
use crate::state::{Entry, Header, ModelChoice};
use mogplex_auth::{Provider, Secret};
use ratatui::crossterm::event::KeyEvent;

/// Everything that can happen to the cockpit.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// Resolution ran (at start, after sign-in, after logout): the header, or none at all.
    Resolved(Option<Header>),
    /// The header changed (a sync finished, a run was created); the screen stays as it is.
    HeaderChanged(Header),
    /// Whether the account service offers device codes (learnt in the background).
    DeviceFlowOffered(bool),
    SignInUrl(String),
    DeviceCode {
        uri: String,
        code: String,
        /// The address with the code filled in, when the service offers one.
        complete: Option<String>,
    },
    /// Something to say on the login screen while a sign-in waits.
    SignInNote(String),
    SignInFailed {
        message: String,
        hint: String,
    },
    SignedIn {
        email: String,
    },
    Delta(String),
    AnswerDone,
    AnswerFailed {
        message: String,
        hint: Option<String>,
    },
    StatusReady(Vec<(String, String)>),
    ModelsReady(Vec<ModelChoice>),
    ListReady {
        title: String,
        rows: Vec<(String, String)>,
    },
    /// Something to say in the transcript (for example which variable still wins after /logout).
    Notice(String),
    /// An entry for the transcript that did not start here (a run followed with --attach).
    Replayed(Entry),
    /// The terminal's input is gone: the session ends.
    InputClosed,
    /// The login screen, asked for by the runtime (a run to attach to needs a Mogplex sign-in).
    ShowLogin,
    /// The Mogplex account's state is gone (signed out): lists drawn from it close.
    AccountListsGone,
    /// The terminal's size (at start and whenever it changes), for a page's height.
    Resize(u16, u16),
    /// An `/mcp login` is waiting for the browser (`true`) or has ended: while it waits, an
    /// address with a `code` (or `error`) and a `state` submitted in the composer goes to it,
    /// never to the model as a prompt.
    McpSignInWaiting(bool),
    /// The credential in use now belongs to someone else (another account signed in): the
    /// transcript starts again, with this said first.
    NewConversation(String),
    /// A key was stored from `/login` while another credential (`keep`, a short label) stays in
    /// use: ask whether to switch to it.
    AskSwitch {
        provider: Provider,
        keep: String,
    },
    /// The model calls a tool and waits for the user's approval (`server.tool`, its arguments).
    ToolApproval {
        tool: String,
        arguments: String,
    },
    /// The approved call is running (Esc cancels it).
    ToolRunning {
        tool: String,
    },
    /// The call ended: its result (or why it failed), already shortened for the screen.
    ToolDone {
        tool: String,
        ok: bool,
        text: String,
    },
}

/// The user's answer to a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolApproval {
    Once,
    /// This tool, for the rest of the session.
    Always,
    No,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A slash command for the runtime to carry out (after the App did its part: `/login` has
    /// opened the login screen, `/model` its list, waiting for the models), with its arguments.
    Command {
        command: SlashCommand,
        args: Vec<String>,
    },
    StartBrowserSignIn,
    StartDeviceSignIn,
    CancelSignIn,
    /// An address pasted while waiting for the browser.
    SubmitCallback(String),
    /// An address submitted in the composer while an `/mcp login` waits.
    SubmitMcpCallback(String),
    /// Put text on the clipboard (through the terminal).
    Copy(String),
    StoreKey {
        provider: Provider,
        key: Secret,
    },
    SendPrompt(String),
    CancelAnswer,
    Logout(Option<Provider>),
    /// `/logout --all`, confirmed.
    LogoutAll,
    /// Yes to [`Event::AskSwitch`]: the stored key of this provider becomes the user's choice.
    UseStoredKey(Provider),
    PickModel(String),
    /// The answer to [`Event::ToolApproval`].
    ApproveTool(ToolApproval),
    /// Esc while a tool call runs: stop it (the model is told, the answer goes on).
    CancelTool,
    Quit,
}
