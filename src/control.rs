//! What the control API asks of the call core, and what the call core tells
//! the world: plain data, so that the endpoint stays sans-IO. The server
//! hands a [`Command`] to the endpoint with an id
//! (`sip::endpoint::Input::Control`) and returns the endpoint's answer
//! (`Output::ControlReply`) to whoever asked; the endpoint's [`Event`]s go
//! to the event hub (WebSocket clients, webhooks).
//!
//! Every type here serialises to the JSON the API speaks (docs/api.md).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A live call as the API names it: the ACD's call number for queued and
/// outbound calls (`call-<n>` in logs and events).
pub type CallNumber = u64;

/// A request to the call core.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Every configured or logged-in agent with its state.
    ListAgents,
    Login {
        agent: String,
    },
    Logout {
        agent: String,
    },
    Pause {
        agent: String,
        reason: String,
    },
    /// Back to available from a pause.
    Unpause {
        agent: String,
    },
    /// Every queue: waiting callers, agents by state.
    QueueStatus,
    /// Calls in progress with their legs.
    ListCalls,
    Hangup {
        call: CallNumber,
    },
    /// The caller hears hold music; `hold: false` resumes.
    Hold {
        call: CallNumber,
        hold: bool,
    },
    /// Blind transfer of the caller to a route (`queue:<name>`,
    /// `agent:<id>`, `ivr:<name>`) or an external number.
    Transfer {
        call: CallNumber,
        target: String,
    },
    /// Digits sent (RFC 4733) to the other party of `call` from the agent's
    /// side.
    SendDtmf {
        call: CallNumber,
        digits: String,
    },
    /// Pause (card numbers) or resume the call's recording.
    Record {
        call: CallNumber,
        paused: bool,
    },
    /// Click-to-call: the agent's phone first, then the customer through the
    /// trunk, bridged and recorded like inbound calls.
    Originate {
        agent: String,
        number: String,
    },
    /// An API agent's answer to an offer published on its event stream.
    OfferAnswer {
        agent: String,
        call: CallNumber,
        accept: bool,
    },
    /// Counters and gauges for `/metrics`.
    Metrics,
    /// A call command (`Hangup`, `Hold`, `Transfer`, `SendDtmf`, `Record`)
    /// on behalf of an agent: carried out only if the call is that agent's,
    /// checked by the call core in the same step (a check by the API
    /// first would race the call moving on), else refused as forbidden.
    AsAgent {
        agent: String,
        steer: Box<Command>,
    },
}

impl Command {
    /// The call a call command steers.
    pub fn call(&self) -> Option<CallNumber> {
        match self {
            Command::Hangup { call }
            | Command::Hold { call, .. }
            | Command::Transfer { call, .. }
            | Command::SendDtmf { call, .. }
            | Command::Record { call, .. } => Some(*call),
            _ => None,
        }
    }
}

/// The call core's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Agents(Vec<AgentView>),
    Queues(Vec<QueueView>),
    Calls(Vec<CallView>),
    Call(CallView),
    Metrics(MetricsView),
    /// Done; nothing to report.
    Done,
}

/// Why a command was refused; the API maps the kind to a status.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{kind:?}: {message}")]
pub struct ControlError {
    pub kind: ControlErrorKind,
    pub message: String,
}

impl ControlError {
    pub fn new(kind: ControlErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlErrorKind {
    /// No such agent, queue or call (404).
    NotFound,
    /// The command makes no sense in the current state (409), e.g. pausing
    /// a logged-out agent or holding a call not yet answered.
    Conflict,
    /// The command is malformed (422), e.g. a transfer target that is no
    /// route and no number, a digit that is no DTMF key.
    Invalid,
    /// The gateway cannot do it now (503): no trunk, no ports.
    Unavailable,
    /// Not this agent's to steer (403): the call is handled by another.
    Forbidden,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: String,
    /// `logged_out`, `available`, `offered`, `on_call`, `on_hold`,
    /// `wrap_up`, `paused`.
    pub state: String,
    /// The pause reason while paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The call offered to or handled by the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<CallNumber>,
    /// Phones registered for the agent.
    pub registered: usize,
    pub queues: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingCaller {
    pub call: CallNumber,
    pub caller: String,
    pub position: usize,
    pub waited_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub name: String,
    pub waiting: Vec<WaitingCaller>,
    pub longest_wait_secs: u64,
    /// Member agents by state name.
    pub agents: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegView {
    /// `caller`, `agent` or `customer`.
    pub role: String,
    pub call_id: String,
    pub party: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub call: CallNumber,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// `queued`, `ringing`, `connected`, `held`.
    pub state: String,
    pub caller: String,
    pub dialled: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub legs: Vec<LegView>,
    pub recording: bool,
    pub recording_paused: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsView {
    pub calls_active: u64,
    /// `(queue, outcome) -> count` since start.
    pub calls_by_queue_outcome: Vec<(String, String, u64)>,
    /// `(queue, waiting callers, longest wait in seconds)`.
    pub queue_waiting: Vec<(String, u64, u64)>,
    /// `(state, agents)`.
    pub agents_by_state: Vec<(String, u64)>,
    pub registrations: u64,
    /// `(status code, responses sent)`.
    pub sip_responses: Vec<(u16, u64)>,
    /// RTP packets lost and the mean jitter over the legs closed so far.
    pub rtp_packets_lost: u64,
    pub rtp_jitter_ms_mean: f64,
}

/// Something that happened, for the event stream and webhooks. The event
/// hub stamps each with a sequence number and a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CallOffered {
        call: CallNumber,
        agent: String,
        queue: String,
        caller: String,
        waited_secs: u64,
        ivr_choices: String,
    },
    CallRinging {
        call: CallNumber,
        agent: String,
    },
    CallAnswered {
        call: CallNumber,
        agent: String,
    },
    CallHeld {
        call: CallNumber,
        agent: String,
    },
    CallResumed {
        call: CallNumber,
        agent: String,
    },
    CallTransferred {
        call: CallNumber,
        target: String,
    },
    CallEnded {
        call: CallNumber,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        outcome: String,
    },
    AgentStateChanged {
        agent: String,
        from: String,
        to: String,
        why: String,
    },
    QueueCallerJoined {
        call: CallNumber,
        queue: String,
        caller: String,
        position: usize,
    },
    QueueCallerLeft {
        call: CallNumber,
        queue: String,
        /// `answered`, `overflowed`, `timed_out`.
        reason: String,
    },
    QueueCallerAbandoned {
        call: CallNumber,
        queue: String,
        waited_secs: u64,
    },
    RecordingStarted {
        call: CallNumber,
        path: String,
    },
    RecordingPaused {
        call: CallNumber,
        paused: bool,
    },
    RecordingCompleted {
        call: CallNumber,
        path: String,
    },
}

impl Event {
    /// The agent the event concerns, for agent tokens' filtering.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::CallOffered { agent, .. }
            | Event::CallRinging { agent, .. }
            | Event::CallAnswered { agent, .. }
            | Event::CallHeld { agent, .. }
            | Event::CallResumed { agent, .. }
            | Event::AgentStateChanged { agent, .. } => Some(agent),
            Event::CallEnded { agent, .. } => agent.as_deref(),
            _ => None,
        }
    }

    /// The call the event concerns.
    pub fn call(&self) -> Option<CallNumber> {
        match self {
            Event::CallOffered { call, .. }
            | Event::CallRinging { call, .. }
            | Event::CallAnswered { call, .. }
            | Event::CallHeld { call, .. }
            | Event::CallResumed { call, .. }
            | Event::CallTransferred { call, .. }
            | Event::CallEnded { call, .. }
            | Event::QueueCallerJoined { call, .. }
            | Event::QueueCallerLeft { call, .. }
            | Event::QueueCallerAbandoned { call, .. }
            | Event::RecordingStarted { call, .. }
            | Event::RecordingPaused { call, .. }
            | Event::RecordingCompleted { call, .. } => Some(*call),
            Event::AgentStateChanged { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commands_and_events_speak_tagged_json() {
        let c: Command =
            serde_json::from_str(r#"{"command":"pause","agent":"1001","reason":"lunch"}"#).unwrap();
        assert_eq!(
            c,
            Command::Pause {
                agent: "1001".into(),
                reason: "lunch".into()
            }
        );
        let e = Event::CallAnswered {
            call: 7,
            agent: "1001".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"call_answered","call":7,"agent":"1001"}"#
        );
        assert_eq!(e.agent(), Some("1001"));
        assert_eq!(e.call(), Some(7));
    }
}
