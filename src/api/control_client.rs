//! The API's line to the call core. Handlers hold a [`ControlClient`] (a
//! cheap clone) and await the answer to a [`Command`]; the signalling task
//! holds the [`ControlReceiver`], feeds each `(id, command)` to the endpoint
//! as `Input::Control`, and hands the endpoint's `Output::ControlReply` to
//! the [`ControlReplier`], which wakes the waiting handler.
//!
//! The endpoint answers every command in the same `handle_input` call, so a
//! reply is normally back within one turn of the signalling loop; the
//! timeout only guards against a stalled or stopped core.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::control::{Command, ControlError, Reply};

/// What the call core answered.
pub type ControlResult = Result<Reply, ControlError>;

/// Why a command got no answer from the call core (as opposed to a
/// refusal, which is a [`ControlError`] inside `Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlCallError {
    /// The signalling task is gone (shutting down) or its queue is full.
    #[error("the call core is not accepting commands")]
    Unavailable,
    /// No answer within the client's timeout.
    #[error("the call core did not answer in time")]
    Timeout,
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<ControlResult>>>>;

/// Sends commands to the call core and awaits the answers.
#[derive(Clone)]
pub struct ControlClient {
    tx: mpsc::Sender<(u64, Command)>,
    waiters: Waiters,
    next_id: Arc<AtomicU64>,
    timeout: Duration,
}

/// The signalling task's end: commands to feed to the endpoint.
pub struct ControlReceiver {
    rx: mpsc::Receiver<(u64, Command)>,
}

/// The signalling task's end: delivers the endpoint's answers.
#[derive(Clone)]
pub struct ControlReplier {
    waiters: Waiters,
}

/// A client and the two server ends. `capacity` commands may wait for the
/// signalling task; beyond that, [`ControlClient::call`] fails at once
/// with [`ControlCallError::Unavailable`] rather than queueing without
/// bound.
pub fn control_channel(
    capacity: usize,
    timeout: Duration,
) -> (ControlClient, ControlReceiver, ControlReplier) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let waiters: Waiters = Arc::default();
    (
        ControlClient {
            tx,
            waiters: waiters.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
            timeout,
        },
        ControlReceiver { rx },
        ControlReplier { waiters },
    )
}

impl ControlClient {
    /// Sends `command` and waits for the answer, at most the client's
    /// timeout.
    pub async fn call(&self, command: Command) -> Result<ControlResult, ControlCallError> {
        self.call_within(command, self.timeout).await
    }

    /// As [`ControlClient::call`] with another timeout (readiness probes
    /// want a short one).
    pub async fn call_within(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<ControlResult, ControlCallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        self.lock().insert(id, reply_tx);
        // Removes the waiter however this future ends (answer, timeout,
        // the client went away), so the map never grows.
        let _guard = WaiterGuard { id, client: self };
        if self.tx.try_send((id, command)).is_err() {
            return Err(ControlCallError::Unavailable);
        }
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(result)) => Ok(result),
            // The replier dropped the sender: the core is gone.
            Ok(Err(_)) => Err(ControlCallError::Unavailable),
            Err(_) => Err(ControlCallError::Timeout),
        }
    }

    /// Commands sent and not answered yet.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<ControlResult>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct WaiterGuard<'a> {
    id: u64,
    client: &'a ControlClient,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.client.lock().remove(&self.id);
    }
}

impl ControlReceiver {
    /// The next command, or `None` once every client is gone.
    pub async fn recv(&mut self) -> Option<(u64, Command)> {
        self.rx.recv().await
    }

    /// A command already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<(u64, Command)> {
        self.rx.try_recv().ok()
    }
}

impl ControlReplier {
    /// Wakes whoever sent command `id`. An answer nobody waits for any
    /// more (the client timed out) is dropped.
    pub fn reply(&self, id: u64, result: ControlResult) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlErrorKind;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn answers_reach_the_caller_that_asked() -> TestResult {
        let (client, mut rx, replier) = control_channel(8, Duration::from_secs(5));
        let core = tokio::spawn(async move {
            while let Some((id, command)) = rx.recv().await {
                let result = match command {
                    Command::ListAgents => Ok(Reply::Agents(vec![])),
                    _ => Err(ControlError::new(ControlErrorKind::Invalid, "no")),
                };
                replier.reply(id, result);
            }
        });
        let (a, b) = tokio::join!(
            client.call(Command::ListAgents),
            client.call(Command::QueueStatus)
        );
        assert_eq!(a?, Ok(Reply::Agents(vec![])));
        assert_eq!(b?.map_err(|e| e.kind), Err(ControlErrorKind::Invalid));
        assert_eq!(client.pending(), 0);
        drop(client);
        core.await?;
        Ok(())
    }

    #[tokio::test]
    async fn a_silent_core_times_out_and_leaves_no_waiter() {
        let (client, mut rx, replier) = control_channel(8, Duration::from_millis(100));
        let result = client.call(Command::ListCalls).await;
        assert_eq!(result, Err(ControlCallError::Timeout));
        assert_eq!(client.pending(), 0);
        // The late answer goes nowhere and does not panic.
        let (id, _) = rx.try_recv().unwrap_or((0, Command::Metrics));
        replier.reply(id, Ok(Reply::Done));
    }

    #[tokio::test]
    async fn a_stopped_or_full_core_is_unavailable_at_once() {
        let (client, rx, _replier) = control_channel(1, Duration::from_secs(60));
        // Full: the first command waits in the queue, the second cannot.
        let first = client.clone();
        let waiting = tokio::spawn(async move { first.call(Command::ListCalls).await });
        tokio::task::yield_now().await;
        assert_eq!(
            client.call(Command::ListCalls).await,
            Err(ControlCallError::Unavailable)
        );
        // Stopped: the receiver is gone.
        drop(rx);
        assert_eq!(
            client.call(Command::ListCalls).await,
            Err(ControlCallError::Unavailable)
        );
        waiting.abort();
    }
}
