//! Which model answers: `/model` (the models each credential offers, a Mogplex account's from
//! its catalog), a pick remembered for the next session and `mogplex exec`, and the account's
//! default model when none is picked.

use super::{Cockpit, Msg};
use crate::error::CliError;
use crate::exec::provider_error;
use crate::log::Level;
use mogplex_auth::Provider;
use mogplex_auth::state::{State, model_key, remember_model};
use mogplex_protocol::CliModel;
use mogplex_providers::known_models;
use mogplex_tui::{Event, ModelChoice, Overlay};
use serde_json::json;

#[derive(Debug)]
pub(crate) enum ModelsMsg {
    /// The Mogplex account's default model, for the header.
    DefaultModel(String),
    Catalog(Result<Vec<CliModel>, CliError>),
}

#[derive(Debug, Default)]
pub(super) struct Models {
    /// A model picked with `/model` in this session: it wins while its provider has a credential.
    pub picked: Option<(Provider, String)>,
    /// What the open `/model` list offers: id shown → provider and model.
    choices: Vec<(String, Provider, String)>,
    /// The other providers' models, while the Mogplex catalog loads.
    pending: Vec<ModelChoice>,
}

impl Cockpit<'_> {
    pub(super) fn on_models(&mut self, msg: ModelsMsg) {
        match msg {
            ModelsMsg::DefaultModel(model) => self.set_default_model(Provider::Mogplex, model),
            ModelsMsg::Catalog(result) => self.catalog(result),
        }
    }

    /// The model a provider chose itself (the Mogplex account's catalog), when none is picked:
    /// into the selection and the header, without changing the screen.
    pub(super) fn set_default_model(&mut self, provider: Provider, model: String) {
        if let Some(sel) = &mut self.creds.selection
            && sel.provider() == provider
            && sel.model.is_none()
        {
            sel.model = Some(model);
            self.refresh_header();
        }
    }

    pub(super) fn fetch_default_model(&self) {
        let Some(sel) = self.creds.selection.clone() else {
            return;
        };
        if sel.model.is_some()
            || self
                .hosted
                .state
                .as_ref()
                .is_some_and(|h| !h.models.is_empty())
        {
            return;
        }
        let Ok(base) = sel.spec.base_url(self.services.env()) else {
            return;
        };
        self.services.spawn(|s| async move {
            let Ok(client) = s.client().await else {
                return;
            };
            let mut sel = sel;
            match s.bearer(&sel.credential, &base).await {
                Ok(secret) => sel.credential.secret = secret,
                Err(_) => return,
            }
            if let Ok(m) = client.account_default_model(&sel, &base).await {
                s.send(Msg::Models(ModelsMsg::DefaultModel(m)));
            }
        });
    }

    pub(super) fn load_models(&mut self) {
        self.models.choices.clear();
        let mut choices = Vec::new();
        let last = State::load(&self.ctx.home).last_picked(self.creds.account_id().as_deref());
        let mut creds: Vec<_> = self.creds.resolution.credentials.iter().collect();
        // The provider in use first.
        if let Some(sel) = &self.creds.selection {
            creds.sort_by_key(|c| c.provider != sel.provider());
        }
        let mut mogplex = None;
        for c in creds {
            if c.provider == Provider::Mogplex {
                mogplex = Some(c.clone());
                continue;
            }
            let mut models: Vec<String> = known_models(c.provider)
                .iter()
                .map(|m| (*m).to_owned())
                .collect();
            if let Some(m) = last.get(&c.provider)
                && !models.contains(m)
            {
                models.push(m.clone());
            }
            if let Some((p, m)) = &self.models.picked
                && *p == c.provider
                && !models.contains(m)
            {
                models.push(m.clone());
            }
            for m in models {
                let id = format!("{}/{m}", c.provider.id());
                let detail = format!("{} · {}", c.provider.display_name(), c.source.short_label());
                self.models.choices.push((id.clone(), c.provider, m));
                choices.push(ModelChoice::new(id, detail));
            }
        }
        let Some(credential) = mogplex else {
            self.app.update(Event::ModelsReady(choices));
            return;
        };
        let Ok(base) = self.services.account_base() else {
            self.app.update(Event::ModelsReady(choices));
            return;
        };
        // The saved catalog at once, while the account service is asked for the current one.
        if let Some(saved) = self.hosted.state.as_ref().map(|h| h.models.clone()) {
            let shown = self.model_list(&saved, choices.clone());
            self.app.update(Event::ModelsReady(shown));
        }
        self.models.pending = choices;
        self.services.spawn(|s| async move {
            let result = async {
                let client = s.client().await?;
                let sel = s.account_selection(&credential, &base).await?;
                client
                    .account_models(&sel, &base)
                    .await
                    .map_err(|e| provider_error(&e, &sel, &base))
            }
            .await;
            s.send(Msg::Models(ModelsMsg::Catalog(result)));
        });
    }

    /// The Mogplex catalog's entries with the other providers' models (`others`), the provider
    /// in use first; each entry is remembered for the pick.
    fn model_list(&mut self, catalog: &[CliModel], others: Vec<ModelChoice>) -> Vec<ModelChoice> {
        self.models
            .choices
            .retain(|(_, p, _)| *p != Provider::Mogplex);
        let mut choices = Vec::new();
        for m in catalog {
            self.models
                .choices
                .push((m.slug.clone(), Provider::Mogplex, m.slug.clone()));
            choices.push(ModelChoice::new(m.slug.clone(), model_detail(m)));
        }
        let in_use_is_mogplex = self
            .creds
            .selection
            .as_ref()
            .is_some_and(|s| s.provider() == Provider::Mogplex);
        if in_use_is_mogplex {
            choices.extend(others);
            choices
        } else {
            others.into_iter().chain(choices).collect()
        }
    }

    fn catalog(&mut self, result: Result<Vec<CliModel>, CliError>) {
        let pending = std::mem::take(&mut self.models.pending);
        let showing_saved = matches!(
            self.app.overlay(),
            Some(Overlay::Model {
                choices: Some(_),
                ..
            })
        );
        let models = match result {
            Ok(models) => {
                if models.is_empty()
                    && let Ok(base) = self.services.account_base()
                {
                    let site = crate::signin::base_label(&base);
                    self.note(format!(
                        "Your Mogplex account has no models yet: see Available Models ({site}/web/models) and Plans & Billing ({site}/plans-and-billing)"
                    ));
                }
                self.catalog_fetched(&models);
                models
            }
            Err(e) => {
                let (message, _) = self.texts(&e);
                let first = message.lines().next().unwrap_or_default().to_owned();
                let saved = if showing_saved {
                    " (showing the saved one)"
                } else {
                    ""
                };
                self.note(format!(
                    "The Mogplex model catalog is not available{saved}: {first}"
                ));
                self.catalog_failed(first);
                if showing_saved {
                    return;
                }
                Vec::new()
            }
        };
        // Only if the list is still open (the user may have closed it while it loaded).
        if matches!(self.app.overlay(), Some(Overlay::Model { .. })) {
            let choices = self.model_list(&models, pending);
            self.app.update(Event::ModelsReady(choices));
        }
    }

    pub(super) fn pick_model(&mut self, id: &str) {
        let Some((_, provider, model)) =
            self.models.choices.iter().find(|(i, ..)| i == id).cloned()
        else {
            return;
        };
        self.models.picked = Some((provider, model.clone()));
        let key = model_key(provider, self.creds.account_id().as_deref());
        // A pick of a provider's model is a choice of its credential, for the next session too.
        let entry = self
            .creds
            .resolution
            .for_provider(provider)
            .filter(|c| !c.source.is_env())
            .map(|c| c.account_entry.clone());
        let chosen = match entry {
            Some(account) => mogplex_auth::state::remember_choice(
                &self.ctx.home,
                mogplex_auth::state::Choice::new(provider, account.as_deref(), "model"),
            ),
            None => Ok(()),
        };
        if let Err(e) = remember_model(&self.ctx.home, &key, &model).and(chosen) {
            self.log.write(
                Level::Warn,
                "state.write",
                "could not remember the model",
                json!({"error": e.to_string()}),
            );
        }
        self.creds.selection = self.choose();
        let header = self.header();
        self.app.update(Event::Resolved(header));
        self.log.write(
            Level::Info,
            "model.pick",
            "model picked",
            json!({"provider": provider.id(), "model": model}),
        );
        self.record(mogplex_protocol::RunEvent::Model {
            model: model.clone(),
            provider: provider.id().to_owned(),
            session: self.session_id(),
        });
        if let Some(sel) = &self.creds.selection {
            let text = format!(
                "Now using {model} ({} · {})",
                sel.provider().display_name(),
                sel.credential.source.short_label()
            );
            self.note(text);
        }
    }

    /// Forgets a `/model` pick of `provider` (its credential is gone).
    pub(super) fn forget_pick(&mut self, provider: Provider) {
        if self
            .models
            .picked
            .as_ref()
            .is_some_and(|(p, _)| *p == provider)
        {
            self.models.picked = None;
        }
    }
}

fn model_detail(m: &CliModel) -> String {
    let mut parts = vec![m.display_name.clone()];
    if let Some(w) = m.context_window {
        parts.push(format!("{}k context", w / 1000));
    }
    let mut caps = Vec::new();
    if m.caps.tool_use {
        caps.push("tools");
    }
    if m.caps.reasoning_effort {
        caps.push("reasoning");
    }
    if !caps.is_empty() {
        parts.push(caps.join(", "));
    }
    if let Some(p) = &m.pricing {
        parts.push(format!(
            "{} {}/{} per M tokens",
            p.currency, p.input_per_million, p.output_per_million
        ));
    }
    parts.push("Mogplex account".into());
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_show_capabilities_and_pricing_where_known() {
        let m: CliModel = serde_json::from_value(json!({
            "slug": "mogplex/gpt-4.1", "provider": "openai", "displayName": "GPT-4.1",
            "caps": {"toolUse": true, "streaming": true, "reasoningEffort": false},
            "contextWindow": 1047576,
            "pricing": {"inputPerMillion": 2.0, "outputPerMillion": 8.0, "currency": "USD"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            model_detail(&m),
            "GPT-4.1 · 1047k context · tools · USD 2/8 per M tokens · Mogplex account"
        );
        let bare: CliModel = serde_json::from_value(
            json!({"slug": "mogplex/echo", "provider": "mogplex", "displayName": "Echo"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model_detail(&bare), "Echo · Mogplex account");
    }
}
