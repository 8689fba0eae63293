//! What the cockpit's background tasks share: the environment, `auth.json`, the one model client
//! (built on first use, off the first frame) and the channel back to the loop. The one place
//! that gives the bearer for a credential, renewing a signed-in account session under the lock.

use super::Msg;
use crate::error::CliError;
use crate::exec::Store;
use crate::exec::model_client;
use mogplex_auth::credentials::CredentialStore;
use mogplex_auth::{Credential, CredentialKind, Env, Secret};
use mogplex_providers::{ModelClient, ModelSource, Selection, Url};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{OnceCell, mpsc};
use tokio::task::AbortHandle;

pub(super) type Tx = mpsc::UnboundedSender<Msg>;

/// Cheap to clone: each background task takes its own.
#[derive(Clone)]
pub(super) struct Services {
    env: Arc<dyn Env + Send + Sync>,
    store: Store,
    client: Arc<OnceCell<ModelClient>>,
    tx: Tx,
}

impl Services {
    pub(super) fn new(env: Arc<dyn Env + Send + Sync>, store: Store, tx: Tx) -> Self {
        Self {
            env,
            store,
            client: Arc::new(OnceCell::new()),
            tx,
        }
    }

    pub(super) fn env(&self) -> &(dyn Env + Send + Sync) {
        &*self.env
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Tells the loop. The loop is gone only when the cockpit is quitting; nothing is left to
    /// tell then.
    pub(super) fn send(&self, msg: Msg) {
        let _ = self.tx.send(msg);
    }

    /// The account service's address (`MOGPLEX_URL` or the hosted default).
    pub(super) fn account_base(&self) -> Result<Url, CliError> {
        crate::signin::account_base(self.env())
    }

    /// The model client, built once for the whole session.
    pub(super) async fn client(&self) -> Result<&ModelClient, CliError> {
        self.client
            .get_or_try_init(|| async { model_client() })
            .await
    }

    /// A bearer for `credential` at `base` (see [`bearer_for`]).
    pub(super) async fn bearer(
        &self,
        credential: &Credential,
        base: &Url,
    ) -> Result<Secret, CliError> {
        bearer_for(&self.store, credential, base).await
    }

    /// A selection of `credential` for the account's own endpoints, with a fresh bearer.
    pub(super) async fn account_selection(
        &self,
        credential: &Credential,
        base: &Url,
    ) -> Result<Selection, CliError> {
        let mut sel = Selection::new(credential, None, ModelSource::AccountDefault);
        sel.credential.secret = self.bearer(credential, base).await?;
        Ok(sel)
    }

    /// Runs `task` in the background with its own copy of the services.
    pub(super) fn spawn<F, Fut>(&self, task: F) -> AbortHandle
    where
        F: FnOnce(Services) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(task(self.clone())).abort_handle()
    }

    /// Runs `work` (which takes the `auth.json` lock) on the blocking pool and sends the message
    /// it makes.
    pub(super) fn spawn_blocking(
        &self,
        work: impl FnOnce(&dyn CredentialStore) -> Msg + Send + 'static,
    ) {
        let s = self.clone();
        tokio::task::spawn_blocking(move || {
            let msg = work(&*s.store);
            s.send(msg);
        });
    }
}

/// A bearer for `credential` at `base`: a signed-in session is renewed first (under the lock,
/// refreshing when it is due); keys and tokens are used as they are.
pub(super) async fn bearer_for(
    store: &Store,
    credential: &Credential,
    base: &Url,
) -> Result<Secret, CliError> {
    if credential.kind == CredentialKind::AccountSession {
        crate::exec::renew(store, credential, base, None).await
    } else {
        Ok(credential.secret.clone())
    }
}
