//! The control API: REST and a WebSocket event stream under `/api/v1`
//! (axum), for agent desktops, CRMs, supervisors and quality staff.
//! docs/api.md describes it for its users; `openapi.json` is its schema.
//!
//! ```text
//!  signalling thread (server::pump)            API thread (own tokio runtime)
//!  ───────────────────────────────             ──────────────────────────────
//!  ControlReceiver ──(id, Command)──> Endpoint   handlers ── ControlClient::call
//!  Output::ControlReply ─> ControlReplier ──oneshot──> waiting handler
//!  Output::Event ────────> EventHub::publish ──> WebSocket streams, webhooks
//!                                                 Store (own read connection),
//!                                                 recordings: spawn_blocking
//! ```
//!
//! The call core is only ever reached through [`ControlClient`], so the
//! API never touches protocol state; the signalling thread only does a
//! non-blocking send and a short lock per reply or event. SQLite queries
//! and file I/O run on blocking threads of the API's runtime.
//!
//! [`start`] binds the listener (an error stops the gateway's start),
//! opens the API's store connection and starts the thread; the returned
//! [`ApiLink`] is what the signalling task wires into its loop, and
//! [`ApiServer::shutdown`] stops the thread.

mod auth;
mod control_client;
mod error;
mod events;
mod extract;
mod live;
mod metrics;
mod openapi;
mod recordings;
mod records;
mod reports;
mod retention;
mod routes;
mod state;
mod time;
mod webhooks;
mod ws;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

pub use auth::{allows, Access, Caller};
pub use control_client::{
    control_channel, ControlCallError, ControlClient, ControlReceiver, ControlReplier,
    ControlResult,
};
pub use error::ApiError;
pub use events::{Backlog, EventHub, StampedEvent, EVENT_TYPES, RETAIN_EVENTS, RETAIN_FOR};
pub use metrics::ApiCounters;
pub use openapi::document as openapi_document;
pub use routes::{router, routes, Route, PREFIX};
pub use state::{ApiSettings, ApiState};
pub use time::{format_rfc3339, parse_rfc3339, TimeError};

use crate::config::Config;
use crate::storage::{StorageError, Store};

/// Commands that may wait for the signalling task before new ones are
/// refused with 503.
pub const CONTROL_QUEUE: usize = 256;
/// How long a handler waits for the call core's answer (then 503).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store for the API: {0}")]
    Store(#[from] StorageError),
    #[error("cannot start the API thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the signalling task needs: commands to feed to the endpoint, where
/// to send the replies, where to publish events.
pub struct ApiLink {
    pub requests: ControlReceiver,
    pub replies: ControlReplier,
    pub events: EventHub,
}

/// The running API.
pub struct ApiServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Where the API listens (the real port when the configured one is 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes event streams, lets requests in flight finish (briefly) and
    /// joins the thread.
    pub fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the API thread panicked");
            }
        }
    }
}

/// Binds `[api] listen`, opens a read connection to the store (which must
/// exist: the server opens it first), and serves the API on a thread of
/// its own.
pub fn start(config: &Config) -> Result<(ApiServer, ApiLink), ApiStartError> {
    let addr = config.api.listen;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ApiStartError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ApiStartError::Bind { addr, source })?;
    let store = Store::open(&config.storage.path)?;
    let (client, requests, replies) = control_channel(CONTROL_QUEUE, CONTROL_TIMEOUT);
    let events = EventHub::default();
    let counters = Arc::new(ApiCounters::default());
    let (stop, stopped) = watch::channel(false);
    let state = ApiState::new(
        ApiSettings::from_config(config),
        client,
        events.clone(),
        store,
        counters.clone(),
        stopped.clone(),
    );
    let webhooks = config.api.webhooks.clone();
    let retention = config.recording.retention;
    let thread = std::thread::Builder::new()
        .name("api".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    warn!(error = %e, "cannot start the API runtime");
                    return;
                }
            };
            runtime.block_on(serve(listener, state, webhooks, retention, stopped));
        })
        .map_err(ApiStartError::Thread)?;
    info!(address = %local_addr, "control API listening");
    Ok((
        ApiServer {
            local_addr,
            stop,
            thread: Some(thread),
        },
        ApiLink {
            requests,
            replies,
            events,
        },
    ))
}

async fn serve(
    listener: std::net::TcpListener,
    state: ApiState,
    webhooks: Vec<crate::config::Webhook>,
    retention: Option<Duration>,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "the API listener cannot be used");
            return;
        }
    };
    for hook in webhooks {
        tokio::spawn(webhooks::run(
            hook,
            state.events.clone(),
            state.counters.clone(),
            stopped.clone(),
        ));
    }
    if let Some(keep) = retention {
        tokio::spawn(retention::task(state.clone(), keep, state.counters.clone()));
    }
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut stop = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                warn!(error = %e, "the API server stopped");
            }
        }
        // Requests in flight get a grace period after the stop, no more.
        () = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
}
