//! The conversation: the messages sent with each prompt, the answer streaming in (kept as it
//! arrives, so a stopped answer stays in the conversation as far as it got), and how an answer
//! ends: done, failed, or stopped.

use super::services::Services;
use super::{Cockpit, Msg};
use crate::error::CliError;
use crate::exec::{TurnOutcome, TurnSink, provider_error};
use crate::exit;
use crate::log::Level;
use crate::tools::Toolbox;
use mogplex_auth::Provider;
use mogplex_protocol::ChatMessage;
use mogplex_providers::{Selection, StreamEvent, Url};
use mogplex_tui::Event;
use serde_json::json;
use tokio::task::AbortHandle;

#[derive(Debug)]
pub(crate) enum TurnMsg {
    /// From the answer started as `seq` (older ones are ignored).
    Started {
        seq: u64,
        model: String,
    },
    Delta {
        seq: u64,
        text: String,
    },
    Frame(String),
    Refreshed,
    Done {
        seq: u64,
        selection: Box<Selection>,
        outcome: Result<TurnOutcome, CliError>,
        /// The conversation with this turn's tool calls and results (the answer not yet).
        messages: Vec<ChatMessage>,
    },
}

/// The conversation and the answer in flight.
#[derive(Debug, Default)]
pub(super) struct Turn {
    pub messages: Vec<ChatMessage>,
    partial: String,
    seq: u64,
    answer: Option<(u64, AbortHandle)>,
}

impl Turn {
    /// Sends `text` after the conversation so far; the answer comes back as [`TurnMsg`]s.
    pub(super) fn start(
        &mut self,
        services: &Services,
        selection: Selection,
        base_url: Url,
        text: String,
        toolbox: Toolbox,
        cancel: std::sync::Arc<tokio::sync::Notify>,
    ) {
        self.messages.push(ChatMessage::user(text));
        self.partial.clear();
        self.seq += 1;
        let seq = self.seq;
        let mut messages = self.messages.clone();
        let task = services.spawn(|s| async move {
            let mut selection = selection;
            let outcome = async {
                let client = s.client().await?;
                let mut sink = ChannelSink {
                    services: s.clone(),
                    seq,
                };
                let mut gate = super::tools::CockpitGate {
                    services: s.clone(),
                    cancel,
                };
                crate::tools::tool_turn(
                    client,
                    s.store(),
                    &mut selection,
                    &base_url,
                    &mut messages,
                    &toolbox,
                    &mut sink,
                    &mut gate,
                )
                .await
            }
            .await;
            drop(toolbox);
            s.send(Msg::Turn(TurnMsg::Done {
                seq,
                selection: Box::new(selection),
                outcome,
                messages,
            }));
        });
        self.answer = Some((seq, task));
    }

    /// The model called a tool: what it said before the call is in the conversation with the
    /// call; the answer's text starts again after it.
    pub(super) fn tool_call_started(&mut self) {
        self.partial.clear();
    }

    fn current(&self, seq: u64) -> bool {
        self.answer.as_ref().is_some_and(|(g, _)| *g == seq)
    }

    /// Text of the current answer; `false` for an answer that is no longer awaited.
    pub(super) fn delta(&mut self, seq: u64, text: &str) -> bool {
        if !self.current(seq) {
            return false;
        }
        self.partial.push_str(text);
        true
    }

    /// The current answer ended: its text so far, or `None` for an answer no longer awaited.
    pub(super) fn end(&mut self, seq: u64) -> Option<String> {
        if !self.current(seq) {
            return None;
        }
        self.answer = None;
        Some(std::mem::take(&mut self.partial))
    }

    /// The answer is complete: it joins the conversation.
    pub(super) fn answered(&mut self, text: String) {
        self.messages.push(ChatMessage::assistant(text));
    }

    /// The prompt failed: it leaves the conversation, so the next one is not sent after it.
    pub(super) fn failed(&mut self) {
        self.messages.pop();
    }

    /// Stops the answer in flight; what arrived of it stays in the conversation. `false` when
    /// none was in flight.
    pub(super) fn stop(&mut self) -> bool {
        let Some((_, h)) = self.answer.take() else {
            return false;
        };
        h.abort();
        let partial = std::mem::take(&mut self.partial);
        if partial.is_empty() {
            self.messages.pop();
        } else {
            self.messages.push(ChatMessage::assistant(partial));
        }
        true
    }

    pub(super) fn abort(&mut self) {
        if let Some((_, h)) = self.answer.take() {
            h.abort();
        }
    }

    pub(super) fn in_flight(&self) -> bool {
        self.answer.is_some()
    }

    pub(super) fn has_messages(&self) -> bool {
        !self.messages.is_empty() || self.answer.is_some()
    }

    /// A new conversation: nothing of the last one is kept or awaited.
    pub(super) fn reset(&mut self) {
        self.abort();
        self.messages.clear();
        self.partial.clear();
    }
}

/// Streams a turn's output to the loop.
struct ChannelSink {
    services: Services,
    seq: u64,
}

impl TurnSink for ChannelSink {
    fn started(&mut self, model: &str) {
        self.services.send(Msg::Turn(TurnMsg::Started {
            seq: self.seq,
            model: model.to_owned(),
        }));
    }

    fn event(&mut self, ev: StreamEvent) {
        let msg = match ev {
            StreamEvent::Delta(text) => TurnMsg::Delta {
                seq: self.seq,
                text,
            },
            StreamEvent::Frame(f) => TurnMsg::Frame(f),
        };
        self.services.send(Msg::Turn(msg));
    }

    fn refreshed(&mut self) {
        self.services.send(Msg::Turn(TurnMsg::Refreshed));
    }
}

impl Cockpit<'_> {
    pub(super) fn on_turn(&mut self, msg: TurnMsg) {
        match msg {
            TurnMsg::Started { seq, model } => {
                if self.turn.current(seq) {
                    self.log.write(
                        Level::Info,
                        "request.start",
                        "sending the prompt",
                        json!({"model": model, "messages": self.turn.messages.len()}),
                    );
                }
            }
            TurnMsg::Delta { seq, text } => {
                if self.turn.delta(seq, &text) {
                    self.app.update(Event::Delta(text));
                }
            }
            TurnMsg::Frame(f) => self.log.write(
                Level::Debug,
                "stream.chunk",
                "stream frame",
                json!({"frame": f}),
            ),
            TurnMsg::Refreshed => self.log.write(
                Level::Info,
                "session.refreshed",
                "refreshed the sign-in after a 401",
                json!({}),
            ),
            TurnMsg::Done {
                seq,
                selection,
                outcome,
                messages,
            } => self.turn_done(seq, *selection, outcome, messages),
        }
    }

    pub(super) fn send_prompt(&mut self, text: String) {
        let Some(selection) = self.creds.selection.clone() else {
            let e = crate::exec::no_credential(&self.creds.resolution);
            self.show_error(&e);
            return;
        };
        let base_url = match selection.spec.base_url(self.services.env()) {
            Ok(u) => u,
            Err(e) => {
                let e = CliError::usage(e.to_string()).hint(e.hint());
                self.show_error(&e);
                return;
            }
        };
        self.record(mogplex_protocol::RunEvent::Prompt {
            text: text.clone(),
            session: self.session_id(),
        });
        let (toolbox, cancel) = (self.mcp.toolbox.clone(), self.mcp.cancel.clone());
        self.turn
            .start(&self.services, selection, base_url, text, toolbox, cancel);
    }

    pub(super) fn cancel_answer(&mut self) {
        if self.turn.stop() {
            self.log.write(
                Level::Info,
                "response.cancelled",
                "answer stopped by the user",
                json!({}),
            );
        }
    }

    fn turn_done(
        &mut self,
        seq: u64,
        selection: Selection,
        outcome: Result<TurnOutcome, CliError>,
        messages: Vec<ChatMessage>,
    ) {
        let Some(partial) = self.turn.end(seq) else {
            return;
        };
        if matches!(&outcome, Ok(TurnOutcome { finish: Ok(_), .. })) {
            self.turn.messages = messages;
        }
        let failure = match outcome {
            Ok(TurnOutcome {
                model,
                finish: Ok(f),
            }) => {
                self.turn.answered(partial.clone());
                self.app.update(Event::AnswerDone);
                self.record(mogplex_protocol::RunEvent::Answer {
                    text: partial.clone(),
                    model: Some(model.clone()),
                    session: self.session_id(),
                });
                self.log.write(
                    Level::Info,
                    "response.done",
                    "answer complete",
                    json!({"chars": partial.chars().count(), "finish_reason": f.finish_reason, "model": model}),
                );
                self.resync_after_answer(&selection, Some(&model));
                self.set_default_model(selection.provider(), model);
                None
            }
            Ok(TurnOutcome { finish: Err(e), .. }) => {
                let base = selection.spec.base_url(self.services.env()).ok();
                Some(match base {
                    Some(b) => provider_error(&e, &selection, &b),
                    None => CliError::new(exit::FAILURE, e.message.clone()),
                })
            }
            Err(e) => Some(e),
        };
        let same_service = selection.provider() == Provider::Mogplex;
        let Some(err) = failure else {
            self.settle_run_failure(None, same_service);
            return;
        };
        self.turn.failed();
        if err.code == exit::FORBIDDEN {
            // No model access: the account's catalog may have changed too.
            self.resync_after_answer(&selection, None);
        }
        self.log.write(
            Level::Error,
            "response.error",
            &err.message,
            json!({"causes": err.causes, "exit_code": err.code}),
        );
        let (message, hint) = self.texts(&err);
        self.record(mogplex_protocol::RunEvent::Error {
            message: message.lines().next().unwrap_or_default().to_owned(),
            session: self.session_id(),
        });
        self.app.update(Event::AnswerFailed {
            message: message.clone(),
            hint: (!hint.is_empty()).then(|| hint.clone()),
        });
        if err.code == exit::NO_CREDENTIAL {
            // Signed out (the sign-in ended): show whatever still resolves, or the login screen
            // with the reason.
            self.show_resolution();
            if self
                .creds
                .resolution
                .for_provider(Provider::Mogplex)
                .is_none()
            {
                self.run = None;
                self.drop_hosted();
            }
            if self.creds.selection.is_none() {
                self.app.update(Event::SignInFailed { message, hint });
            }
        }
        self.settle_run_failure(Some(&err), same_service);
    }
}
