//! Tool calls in the session: each call the model makes is shown (server, tool, arguments) and
//! waits for the user's answer (y once, a always for this tool this session, n or Esc no); a
//! running call is cancelled with Esc; its result is shown shortened.

use super::{App, Effect, EntryKind, ToolApproval};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ToolPhase {
    Idle,
    Asking,
    Running,
}

impl App {
    /// Whether a tool call waits for the user's answer.
    pub fn is_asking_about_a_tool(&self) -> bool {
        self.tool == ToolPhase::Asking
    }

    /// Whether an approved tool call is running.
    pub fn is_running_a_tool(&self) -> bool {
        self.tool == ToolPhase::Running
    }

    pub(super) fn tool_approval(&mut self, tool: String, arguments: String) {
        self.tool = ToolPhase::Asking;
        self.say(
            EntryKind::Notice,
            format!(
                "The model calls {tool} {arguments}\nAllow it? y: once · a: always for {tool} this session · n: no"
            ),
        );
    }

    pub(super) fn tool_running(&mut self, tool: String) {
        self.tool = ToolPhase::Running;
        self.say(
            EntryKind::Notice,
            format!("Running {tool}… (Esc cancels it)"),
        );
    }

    pub(super) fn tool_done(&mut self, tool: String, ok: bool, text: String) {
        if self.tool == ToolPhase::Running {
            self.tool = ToolPhase::Idle;
        }
        let kind = if ok {
            EntryKind::Notice
        } else {
            EntryKind::Error
        };
        self.say(kind, format!("{tool} → {text}"));
    }

    /// The keys of a call that waits or runs; `None` for a key that is not theirs.
    pub(super) fn tool_key(&mut self, k: &KeyEvent) -> Option<Vec<Effect>> {
        let plain = !k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match self.tool {
            ToolPhase::Asking => {
                let answer = match k.code {
                    KeyCode::Char('y' | 'Y') if plain => ToolApproval::Once,
                    KeyCode::Char('a' | 'A') if plain => ToolApproval::Always,
                    KeyCode::Char('n' | 'N') if plain => ToolApproval::No,
                    KeyCode::Esc => ToolApproval::No,
                    // Nothing else is typed while the question is open.
                    _ => return Some(Vec::new()),
                };
                self.tool = ToolPhase::Idle;
                let said = match answer {
                    ToolApproval::Once => "Allowed once.",
                    ToolApproval::Always => "Allowed for the rest of this session.",
                    ToolApproval::No => "Not allowed; the model is told so.",
                };
                self.say(EntryKind::Notice, said);
                Some(vec![Effect::ApproveTool(answer)])
            }
            ToolPhase::Running if k.code == KeyCode::Esc => {
                self.say(EntryKind::Notice, "Cancelling the tool call…");
                Some(vec![Effect::CancelTool])
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Header};
    use ratatui::crossterm::event::KeyEvent;

    fn key(c: KeyCode) -> Event {
        Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn a_call_waits_for_an_answer_and_a_running_call_is_cancelled_with_esc() {
        let mut app = App::new(Some(Header::default()));
        app.update(Event::ToolApproval {
            tool: "everything.echo".into(),
            arguments: "{}".into(),
        });
        assert!(app.is_asking_about_a_tool());
        // Other keys do nothing while the question is open.
        assert_eq!(app.update(key(KeyCode::Char('x'))), vec![]);
        assert_eq!(app.composer().text(), "");
        assert_eq!(
            app.update(key(KeyCode::Char('a'))),
            vec![Effect::ApproveTool(ToolApproval::Always)]
        );
        app.update(Event::ToolRunning {
            tool: "everything.echo".into(),
        });
        assert_eq!(app.update(key(KeyCode::Esc)), vec![Effect::CancelTool]);
        app.update(Event::ToolApproval {
            tool: "everything.echo".into(),
            arguments: "{}".into(),
        });
        assert_eq!(
            app.update(key(KeyCode::Esc)),
            vec![Effect::ApproveTool(ToolApproval::No)]
        );
        assert!(!app.is_asking_about_a_tool());
    }
}
