//! Agent states and the events every transition emits.

use std::fmt;
use std::time::Instant;

use crate::config::AgentId;

use super::CallId;

/// Why an agent is paused: free text chosen by the agent or the supervisor
/// ("break", "lunch", "training"), or [`PauseReason::missed_offers`] when the
/// ACD paused the agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PauseReason(String);

impl PauseReason {
    /// The reason the ACD gives when it pauses an agent who let too many
    /// offers in a row go unanswered.
    pub const MISSED_OFFERS: &'static str = "missed offers";

    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    pub fn missed_offers() -> Self {
        Self(Self::MISSED_OFFERS.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent's state. The ACD is its only owner: the call layer reports what
/// happened (answer, hang-up, 486) and the ACD decides the new state, so two
/// parts of the gateway can never disagree about whether an agent is free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentState {
    LoggedOut,
    /// Waiting for a call.
    Available,
    /// The agent's phone is ringing with this call (a ring timer runs).
    Offered(CallId),
    /// Talking.
    OnCall(CallId),
    /// The agent put the caller on hold.
    OnHold(CallId),
    /// After-call work; a timer returns the agent to `Available`.
    WrapUp,
    Paused(PauseReason),
}

impl AgentState {
    /// The state's name in the control API and its events.
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Available => "available",
            AgentState::Offered(_) => "offered",
            AgentState::OnCall(_) => "on_call",
            AgentState::OnHold(_) => "on_hold",
            AgentState::WrapUp => "wrap_up",
            AgentState::Paused(_) => "paused",
        }
    }

    /// Logged in, whatever the agent is doing (the sense of "no agent logged
    /// in" in the queues' join/leave rules).
    pub fn is_logged_in(&self) -> bool {
        !matches!(self, AgentState::LoggedOut)
    }

    /// The call the agent is ringing with or talking on.
    pub fn call(&self) -> Option<CallId> {
        match self {
            AgentState::Offered(c) | AgentState::OnCall(c) | AgentState::OnHold(c) => Some(*c),
            _ => None,
        }
    }
}

/// What caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    Login,
    Logout,
    Pause,
    Unpause,
    /// A call was offered to the agent.
    Offer,
    /// The agent answered the offered call.
    Answer,
    /// The phone declined the offer (486 Busy Here / 603 Decline).
    Rejected,
    /// The phone rang for the queue's ring timeout without an answer.
    RingTimeout,
    /// The offer was withdrawn: another agent answered (ring-all), the caller
    /// hung up or overflowed, or the agent paused or logged out while ringing.
    OfferCancelled,
    Hold,
    Unhold,
    /// The call ended (either side hung up).
    CallEnded,
    /// The wrap-up time elapsed.
    WrapUpDone,
    /// Too many offers in a row went unanswered: the ACD paused the agent.
    MissedOffers,
}

/// One agent transition, for logs, call records and the control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEvent {
    pub agent: AgentId,
    pub from: AgentState,
    pub to: AgentState,
    pub why: Why,
    pub at: Instant,
}

/// What an agent asked for while on a call; applied once the call and its
/// wrap-up are over, because the ACD cannot end a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AfterCall {
    Pause(PauseReason),
    Logout,
}

#[derive(Debug)]
pub(super) struct Agent {
    pub(super) id: AgentId,
    pub(super) state: AgentState,
    /// When the agent last became available after a call, a login or an
    /// unpause (not after a missed offer): the longest-idle key.
    pub(super) idle_since: Option<Instant>,
    /// Offers in a row not answered (timed out or declined).
    pub(super) missed: u32,
    /// The running ring or wrap-up timer; `Some` exactly in `Offered` and
    /// `WrapUp`.
    pub(super) deadline: Option<Instant>,
    pub(super) after_call: Option<AfterCall>,
}

impl Agent {
    pub(super) fn new(id: AgentId) -> Self {
        Self {
            id,
            state: AgentState::LoggedOut,
            idle_since: None,
            missed: 0,
            deadline: None,
            after_call: None,
        }
    }
}
