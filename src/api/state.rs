//! What every handler shares: the line to the call core, the event hub,
//! the tokens, the store and the recording directory.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::auth::{AuthLimiter, TokenTable};
use super::control_client::{ControlCallError, ControlClient};
use super::error::ApiError;
use super::events::EventHub;
use super::metrics::ApiCounters;
use crate::config::{ApiToken, Config};
use crate::control::{Command, Reply};
use crate::storage::Store;

/// The parts of the configuration the API uses.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub tokens: Vec<ApiToken>,
    pub recordings_dir: PathBuf,
    /// `api.service_level_secs`: answered within this counts for the
    /// service level.
    pub service_level: Duration,
    /// Configured members per queue, for queue occupancy.
    pub queue_members: BTreeMap<String, usize>,
    /// Configured agents: each has a row in the agent report.
    pub agents: Vec<String>,
}

impl ApiSettings {
    pub fn from_config(config: &Config) -> Self {
        ApiSettings {
            tokens: config.api.tokens.clone(),
            recordings_dir: config.recording.dir.clone(),
            service_level: config.api.service_level,
            queue_members: config
                .queues
                .iter()
                .map(|q| (q.name.as_str().to_owned(), q.agents.len()))
                .collect(),
            agents: config
                .agents
                .iter()
                .map(|a| a.id.as_str().to_owned())
                .collect(),
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

pub struct Shared {
    pub control: ControlClient,
    pub events: EventHub,
    pub tokens: TokenTable,
    pub limiter: Mutex<AuthLimiter>,
    /// A read connection of its own (WAL: never blocks the writer); used
    /// from blocking threads only.
    store: Arc<Mutex<Store>>,
    pub recordings_dir: PathBuf,
    pub service_level: Duration,
    pub queue_members: BTreeMap<String, usize>,
    pub agents: Vec<String>,
    pub counters: Arc<ApiCounters>,
    /// Becomes true when the server stops: event streams close.
    pub shutdown: watch::Receiver<bool>,
}

impl Deref for ApiState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl ApiState {
    pub fn new(
        settings: ApiSettings,
        control: ControlClient,
        events: EventHub,
        store: Store,
        counters: Arc<ApiCounters>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        ApiState(Arc::new(Shared {
            control,
            events,
            tokens: TokenTable::new(&settings.tokens),
            limiter: Mutex::new(AuthLimiter::default()),
            store: Arc::new(Mutex::new(store)),
            recordings_dir: settings.recordings_dir,
            service_level: settings.service_level,
            queue_members: settings.queue_members,
            agents: settings.agents,
            counters,
            shutdown,
        }))
    }

    /// Runs `f` with the store on a blocking thread: SQLite and file I/O
    /// never run on the runtime's worker.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.0.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
    }

    /// Sends `command` to the call core; refusals and silence become API
    /// errors.
    pub async fn command(&self, command: Command) -> Result<Reply, ApiError> {
        match self.control.call(command).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refused)) => Err(refused.into()),
            Err(ControlCallError::Timeout) => {
                self.counters.control_timeouts.inc();
                Err(ApiError::Unavailable(
                    "the call core did not answer in time".into(),
                ))
            }
            Err(ControlCallError::Unavailable) => Err(ApiError::Unavailable(
                "the call core is not accepting commands".into(),
            )),
        }
    }
}
