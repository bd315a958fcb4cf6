//! The automatic call distributor (ACD): agent states and queues as one
//! sans-IO state machine.
//!
//! The call layer reports what happened — a caller entered a queue, an
//! agent's phone answered or declined, someone hung up, an agent pressed a
//! feature code — together with `now`, and drains [`Acd::poll_output`] for
//! what to do: ring these agents ([`Output::Offer`]), stop ringing
//! ([`Output::CancelOffer`]), send a caller elsewhere ([`Output::Overflow`]),
//! and the events to log. [`Acd::poll_timeout`] says when to call
//! [`Acd::handle_timeout`] (ring timeouts, wrap-up ends, maximum waits).
//!
//! The ACD is the single owner of agent state: an agent is offered at most
//! one call at a time, and every state has a way out (the two states that
//! wait on the phone or the clock, `Offered` and `WrapUp`, always have a
//! timer).
//!
//! Routing: a newly free agent or a new caller triggers a dispatch pass that
//! takes the waiting callers of all queues by priority (higher first) then
//! arrival, and gives each one not already ringing the members its queue's
//! strategy picks from the lowest penalty tier with a free member. Members
//! who already missed the call are skipped while others are free, so a ring
//! timeout moves the call to the next agent.

mod agent;
mod queue;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::config::{AgentId, QueueName};

pub use agent::{AgentEvent, AgentState, PauseReason, Why};
pub use queue::{Member, QueueConfig, Strategy, DEFAULT_RING_TIMEOUT, DEFAULT_WRAP_UP};

use agent::{AfterCall, Agent};
use queue::Queue;

/// A call as the call layer numbers it (unique while the ACD knows the call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// ACD-wide settings and the queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdConfig {
    pub queues: Vec<QueueConfig>,
    /// Offers in a row an agent may leave unanswered (ring timeout or
    /// decline) before being paused with [`PauseReason::MISSED_OFFERS`].
    pub max_missed_offers: u32,
    /// How many recent waits the estimated wait averages.
    pub wait_samples: usize,
}

impl AcdConfig {
    pub fn new(queues: Vec<QueueConfig>) -> Self {
        Self {
            queues,
            max_missed_offers: 3,
            wait_samples: 10,
        }
    }
}

/// Why an [`AcdConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("queue {0} is configured twice")]
    DuplicateQueue(QueueName),
    #[error("agent {agent} is listed twice in queue {queue}")]
    DuplicateMember { queue: QueueName, agent: AgentId },
    #[error("queue {0} has a zero ring timeout")]
    ZeroRingTimeout(QueueName),
    #[error("max_missed_offers must be at least 1")]
    ZeroMissedOffers,
}

/// Why an input was refused; the ACD's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcdError {
    #[error("no queue named {0}")]
    UnknownQueue(QueueName),
    #[error("{0} is unknown to the ACD")]
    UnknownCall(CallId),
    #[error("{0} is already in the ACD")]
    DuplicateCall(CallId),
    #[error("agent {0} is unknown to the ACD")]
    UnknownAgent(AgentId),
    /// The input makes no sense in the agent's state (e.g. hold while not
    /// on a call, login while logged in).
    #[error("agent {agent} cannot {action} while {state:?}")]
    WrongState {
        agent: AgentId,
        state: AgentState,
        action: &'static str,
    },
    /// An answer or decline for an offer that no longer exists (another
    /// agent answered first, the caller hung up, the ring timed out): the
    /// call layer must hang up that agent's leg.
    #[error("{call} is not offered to agent {agent}")]
    NotOffered { call: CallId, agent: AgentId },
}

/// Why a caller left a queue without an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverflowReason {
    /// The queue already held `max_len` callers.
    QueueFull,
    /// The caller waited `max_wait`.
    MaxWait,
    /// No member logged in (`join_empty = false` on entry, or
    /// `leave_when_empty = true` when the last one logged out).
    NoAgents,
}

/// What the call layer must do or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ring these agents with the call (several with ring-all); the first to
    /// answer wins.
    Offer {
        call: CallId,
        queue: QueueName,
        agents: Vec<AgentId>,
        ring_timeout: Duration,
    },
    /// Stop ringing this agent (CANCEL its INVITE).
    CancelOffer {
        call: CallId,
        agent: AgentId,
    },
    /// The caller leaves the queue; the call layer routes it to the queue's
    /// overflow target.
    Overflow {
        call: CallId,
        queue: QueueName,
        reason: OverflowReason,
    },
    /// The caller joined the queue at this position.
    Queued {
        call: CallId,
        queue: QueueName,
        position: usize,
    },
    Answered {
        call: CallId,
        agent: AgentId,
        waited: Duration,
    },
    /// The caller hung up before an agent answered.
    Abandoned {
        call: CallId,
        queue: QueueName,
        waited: Duration,
    },
    Agent(AgentEvent),
}

/// Where a waiting caller stands, for announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    pub queue: QueueName,
    /// 1 = next to be served.
    pub position: usize,
    pub waited: Duration,
    /// Moving average of the queue's recent waits minus what this caller
    /// already waited (never below zero); `None` until a call was answered.
    pub estimated_wait: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Ring or wrap-up timer of the agent at this index.
    Agent(usize),
    MaxWait(CallId),
}

#[derive(Debug)]
struct Waiting {
    queue: usize,
    /// The call's place in its queue's `waiting` (dispatch order).
    key: queue::WaitKey,
    arrived: Instant,
    /// Agents (indexes) ringing with this call now.
    offered: Vec<usize>,
    /// Agents who already missed or declined it, skipped while others are
    /// free.
    tried: Vec<usize>,
    max_wait_at: Option<Instant>,
}

/// A call answered by an agent and not yet ended.
#[derive(Debug)]
struct Connected {
    agent: usize,
    queue: usize,
}

/// The ACD. See the module documentation.
#[derive(Debug)]
pub struct Acd {
    agents: Vec<Agent>,
    agent_index: HashMap<AgentId, usize>,
    queues: Vec<Queue>,
    queue_index: HashMap<QueueName, usize>,
    waiting: HashMap<CallId, Waiting>,
    connected: HashMap<CallId, Connected>,
    timers: BTreeSet<(Instant, Timer)>,
    outputs: VecDeque<Output>,
    max_missed: u32,
    next_seq: u64,
}

impl Acd {
    pub fn new(config: AcdConfig) -> Result<Self, ConfigError> {
        if config.max_missed_offers == 0 {
            return Err(ConfigError::ZeroMissedOffers);
        }
        let mut acd = Acd {
            agents: Vec::new(),
            agent_index: HashMap::new(),
            queues: Vec::new(),
            queue_index: HashMap::new(),
            waiting: HashMap::new(),
            connected: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            max_missed: config.max_missed_offers,
            next_seq: 0,
        };
        for q in config.queues {
            if acd.queue_index.contains_key(&q.name) {
                return Err(ConfigError::DuplicateQueue(q.name));
            }
            if q.ring_timeout.is_zero() {
                return Err(ConfigError::ZeroRingTimeout(q.name));
            }
            let mut members: Vec<(usize, u32)> = Vec::with_capacity(q.members.len());
            for m in &q.members {
                let ix = acd.agent_ix_or_insert(&m.agent);
                if members.iter().any(|(i, _)| *i == ix) {
                    return Err(ConfigError::DuplicateMember {
                        queue: q.name.clone(),
                        agent: m.agent.clone(),
                    });
                }
                members.push((ix, m.penalty));
            }
            acd.queue_index.insert(q.name.clone(), acd.queues.len());
            acd.queues.push(Queue::new(q, members, config.wait_samples));
        }
        Ok(acd)
    }

    // ----- queries -----

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Acd::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// An agent's state; agents never seen (not a member, never logged in)
    /// are logged out.
    pub fn agent_state(&self, agent: &AgentId) -> AgentState {
        self.agent_index
            .get(agent)
            .map_or(AgentState::LoggedOut, |&ix| self.agents[ix].state.clone())
    }

    /// Position and estimated wait of a caller still waiting.
    pub fn call_status(&self, now: Instant, call: CallId) -> Option<CallStatus> {
        let w = self.waiting.get(&call)?;
        let q = &self.queues[w.queue];
        let waited = now.saturating_duration_since(w.arrived);
        Some(CallStatus {
            queue: q.config.name.clone(),
            position: q.position(call)?,
            waited,
            estimated_wait: q.average_wait().map(|avg| avg.saturating_sub(waited)),
        })
    }

    /// Callers waiting in a queue.
    pub fn queue_len(&self, queue: &QueueName) -> Option<usize> {
        self.queue_index
            .get(queue)
            .map(|&q| self.queues[q].waiting.len())
    }

    // ----- agent inputs -----

    /// The agent logs in (feature code or API); any agent id may log in, it
    /// is only offered calls of the queues it is a member of.
    pub fn login(&mut self, now: Instant, agent: &AgentId) -> Result<(), AcdError> {
        let ix = self.agent_ix_or_insert(agent);
        match self.agents[ix].state {
            AgentState::LoggedOut => {
                self.agents[ix].missed = 0;
                self.agents[ix].idle_since = Some(now);
                self.transition(now, ix, AgentState::Available, Why::Login);
                self.dispatch(now);
                Ok(())
            }
            _ => Err(self.wrong_state(ix, "log in")),
        }
    }

    /// The agent logs out: at once when idle, ringing (the offer is
    /// withdrawn) or in wrap-up; after the call and its wrap-up when talking.
    pub fn logout(&mut self, now: Instant, agent: &AgentId) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        match self.agents[ix].state.clone() {
            AgentState::LoggedOut => return Err(self.wrong_state(ix, "log out")),
            AgentState::OnCall(_) | AgentState::OnHold(_) => {
                self.agents[ix].after_call = Some(AfterCall::Logout);
                return Ok(());
            }
            AgentState::Offered(call) => {
                self.withdraw_offer_by_agent(ix, call);
                self.transition(now, ix, AgentState::LoggedOut, Why::Logout);
            }
            AgentState::Available | AgentState::WrapUp | AgentState::Paused(_) => {
                self.transition(now, ix, AgentState::LoggedOut, Why::Logout);
            }
        }
        self.agents[ix].after_call = None;
        self.leave_if_empty(now, ix);
        self.dispatch(now);
        Ok(())
    }

    /// The agent pauses: at once when idle, ringing (the offer is withdrawn)
    /// or in wrap-up; after the call and its wrap-up when talking. Pausing
    /// while paused changes the reason.
    pub fn pause(
        &mut self,
        now: Instant,
        agent: &AgentId,
        reason: PauseReason,
    ) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        match self.agents[ix].state.clone() {
            AgentState::LoggedOut => return Err(self.wrong_state(ix, "pause")),
            AgentState::OnCall(_) | AgentState::OnHold(_) => {
                self.agents[ix].after_call = Some(AfterCall::Pause(reason));
                return Ok(());
            }
            AgentState::Offered(call) => {
                self.withdraw_offer_by_agent(ix, call);
                self.transition(now, ix, AgentState::Paused(reason), Why::Pause);
            }
            AgentState::Available | AgentState::WrapUp | AgentState::Paused(_) => {
                self.agents[ix].after_call = None;
                self.transition(now, ix, AgentState::Paused(reason), Why::Pause);
            }
        }
        self.dispatch(now);
        Ok(())
    }

    /// The agent is ready again; also cancels a pause requested during a
    /// call. Resets the missed-offer count.
    pub fn unpause(&mut self, now: Instant, agent: &AgentId) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        match self.agents[ix].state {
            AgentState::Paused(_) => {
                self.agents[ix].missed = 0;
                self.agents[ix].idle_since = Some(now);
                self.transition(now, ix, AgentState::Available, Why::Unpause);
                self.dispatch(now);
                Ok(())
            }
            AgentState::OnCall(_) | AgentState::OnHold(_)
                if matches!(self.agents[ix].after_call, Some(AfterCall::Pause(_))) =>
            {
                self.agents[ix].after_call = None;
                Ok(())
            }
            _ => Err(self.wrong_state(ix, "unpause")),
        }
    }

    /// The agent's phone answered the offered call (200 OK). Other agents
    /// ringing with it get [`Output::CancelOffer`]. [`AcdError::NotOffered`]
    /// means the answer came too late and the agent's leg must be hung up.
    pub fn answered(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &AgentId,
    ) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        if self.agents[ix].state != AgentState::Offered(call) {
            return Err(AcdError::NotOffered {
                call,
                agent: agent.clone(),
            });
        }
        let Some(w) = self.waiting.remove(&call) else {
            return Err(AcdError::NotOffered {
                call,
                agent: agent.clone(),
            });
        };
        self.unqueue(call, &w);
        for &other in w.offered.iter().filter(|&&o| o != ix) {
            self.cancel_offer(now, other, call);
        }
        let waited = now.saturating_duration_since(w.arrived);
        let q = &mut self.queues[w.queue];
        q.record_wait(waited);
        *q.answered.entry(ix).or_insert(0) += 1;
        self.agents[ix].missed = 0;
        self.transition(now, ix, AgentState::OnCall(call), Why::Answer);
        self.connected.insert(
            call,
            Connected {
                agent: ix,
                queue: w.queue,
            },
        );
        self.outputs.push_back(Output::Answered {
            call,
            agent: agent.clone(),
            waited,
        });
        self.dispatch(now);
        Ok(())
    }

    /// The agent's phone declined the offer (486 Busy Here / 603 Decline,
    /// RFC 3261 §21.4.7, §21.6.2). Counts as a missed offer, so a phone
    /// that declines everything ends up paused instead of being rung in a
    /// loop; the call goes to the next agent.
    pub fn rejected(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &AgentId,
    ) -> Result<(), AcdError> {
        self.offer_missed(now, call, agent, Why::Rejected)
    }

    /// The offer ended without an answer on the phone's side before our
    /// ring timer fired (408 Request Timeout, 480 Temporarily Unavailable,
    /// the INVITE transaction timing out, RFC 3261 §17.1.1.2): a missed
    /// offer like a ring timeout, but there is nothing left to cancel.
    pub fn offer_timed_out(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &AgentId,
    ) -> Result<(), AcdError> {
        self.offer_missed(now, call, agent, Why::RingTimeout)
    }

    /// An offer the phone ended without answering (declined or timed out
    /// on its side): withdrawn, counted as missed, the call offered on.
    fn offer_missed(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &AgentId,
        why: Why,
    ) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        if self.agents[ix].state != AgentState::Offered(call) {
            return Err(AcdError::NotOffered {
                call,
                agent: agent.clone(),
            });
        }
        self.withdraw_offer(ix, call);
        self.missed_offer(now, ix, why, false);
        self.dispatch(now);
        Ok(())
    }

    /// The agent put the caller on hold (re-INVITE with sendonly/inactive,
    /// RFC 3264 §8.4).
    pub fn hold(&mut self, now: Instant, agent: &AgentId) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        match self.agents[ix].state {
            AgentState::OnCall(call) => {
                self.transition(now, ix, AgentState::OnHold(call), Why::Hold);
                Ok(())
            }
            _ => Err(self.wrong_state(ix, "hold")),
        }
    }

    /// The agent took the caller off hold.
    pub fn unhold(&mut self, now: Instant, agent: &AgentId) -> Result<(), AcdError> {
        let ix = self.agent_ix(agent)?;
        match self.agents[ix].state {
            AgentState::OnHold(call) => {
                self.transition(now, ix, AgentState::OnCall(call), Why::Unhold);
                Ok(())
            }
            _ => Err(self.wrong_state(ix, "unhold")),
        }
    }

    // ----- call inputs -----

    /// A caller enters a queue. `priority`: higher is served first; equal
    /// priorities by arrival. Emits [`Output::Queued`] or, when the queue
    /// is full or empty of agents, [`Output::Overflow`] (the call is then
    /// not kept).
    pub fn enqueue(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &QueueName,
        priority: i32,
    ) -> Result<(), AcdError> {
        let qix = *self
            .queue_index
            .get(queue)
            .ok_or_else(|| AcdError::UnknownQueue(queue.clone()))?;
        if self.waiting.contains_key(&call) || self.connected.contains_key(&call) {
            return Err(AcdError::DuplicateCall(call));
        }
        let q = &self.queues[qix];
        let overflow = if q.config.max_len.is_some_and(|max| q.waiting.len() >= max) {
            Some(OverflowReason::QueueFull)
        } else if !q.config.join_empty && !self.anyone_logged_in(qix) {
            Some(OverflowReason::NoAgents)
        } else {
            None
        };
        if let Some(reason) = overflow {
            self.outputs.push_back(Output::Overflow {
                call,
                queue: queue.clone(),
                reason,
            });
            return Ok(());
        }
        let max_wait_at = q.config.max_wait.map(|d| now + d);
        if let Some(at) = max_wait_at {
            self.timers.insert((at, Timer::MaxWait(call)));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = (Reverse(priority), seq);
        let q = &mut self.queues[qix];
        q.insert(key, call);
        let position = q.position(call).unwrap_or(q.waiting.len());
        self.waiting.insert(
            call,
            Waiting {
                queue: qix,
                key,
                arrived: now,
                offered: Vec::new(),
                tried: Vec::new(),
                max_wait_at,
            },
        );
        self.outputs.push_back(Output::Queued {
            call,
            queue: queue.clone(),
            position,
        });
        self.dispatch(now);
        Ok(())
    }

    /// Either side hung up. A waiting caller (ringing agents or not) is
    /// abandoned and its offers cancelled; an answered call ends and its
    /// agent goes to wrap-up.
    pub fn hangup(&mut self, now: Instant, call: CallId) -> Result<(), AcdError> {
        if let Some(w) = self.waiting.remove(&call) {
            self.unqueue(call, &w);
            for &ix in &w.offered {
                self.cancel_offer(now, ix, call);
            }
            self.outputs.push_back(Output::Abandoned {
                call,
                queue: self.queues[w.queue].config.name.clone(),
                waited: now.saturating_duration_since(w.arrived),
            });
        } else if let Some(c) = self.connected.remove(&call) {
            let wrap_up = self.queues[c.queue].config.wrap_up;
            if wrap_up.is_zero() {
                self.end_wrap_up(now, c.agent, Why::CallEnded);
            } else {
                self.transition(now, c.agent, AgentState::WrapUp, Why::CallEnded);
                self.set_agent_timer(c.agent, now + wrap_up);
            }
        } else {
            return Err(AcdError::UnknownCall(call));
        }
        self.dispatch(now);
        Ok(())
    }

    /// Fires the timers due at `now`: ring timeouts, wrap-up ends, maximum
    /// waits.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer));
            match timer {
                Timer::Agent(ix) => {
                    self.agents[ix].deadline = None;
                    match self.agents[ix].state {
                        AgentState::Offered(call) => {
                            self.withdraw_offer(ix, call);
                            self.missed_offer(now, ix, Why::RingTimeout, true);
                        }
                        AgentState::WrapUp => self.end_wrap_up(now, ix, Why::WrapUpDone),
                        // Every other transition removes the timer.
                        _ => {}
                    }
                }
                Timer::MaxWait(call) => {
                    if let Some(w) = self.waiting.get_mut(&call) {
                        w.max_wait_at = None;
                        self.overflow(now, call, OverflowReason::MaxWait);
                    }
                }
            }
        }
        self.dispatch(now);
    }

    // ----- internals -----

    fn agent_ix(&self, agent: &AgentId) -> Result<usize, AcdError> {
        self.agent_index
            .get(agent)
            .copied()
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    fn agent_ix_or_insert(&mut self, agent: &AgentId) -> usize {
        if let Some(&ix) = self.agent_index.get(agent) {
            return ix;
        }
        let ix = self.agents.len();
        self.agents.push(Agent::new(agent.clone()));
        self.agent_index.insert(agent.clone(), ix);
        ix
    }

    fn wrong_state(&self, ix: usize, action: &'static str) -> AcdError {
        AcdError::WrongState {
            agent: self.agents[ix].id.clone(),
            state: self.agents[ix].state.clone(),
            action,
        }
    }

    /// The one place agent state changes: drops the running timer (only
    /// `Offered` and `WrapUp` have one, set by the caller right after) and
    /// emits the event.
    fn transition(&mut self, now: Instant, ix: usize, to: AgentState, why: Why) {
        if let Some(at) = self.agents[ix].deadline.take() {
            self.timers.remove(&(at, Timer::Agent(ix)));
        }
        let a = &mut self.agents[ix];
        let from = std::mem::replace(&mut a.state, to.clone());
        self.outputs.push_back(Output::Agent(AgentEvent {
            agent: a.id.clone(),
            from,
            to,
            why,
            at: now,
        }));
    }

    fn set_agent_timer(&mut self, ix: usize, at: Instant) {
        if let Some(old) = self.agents[ix].deadline.replace(at) {
            self.timers.remove(&(old, Timer::Agent(ix)));
        }
        self.timers.insert((at, Timer::Agent(ix)));
    }

    /// Takes agent `ix` off the call's ringing list, remembering it missed
    /// the call. The agent's own transition is the caller's.
    fn withdraw_offer(&mut self, ix: usize, call: CallId) {
        if let Some(w) = self.waiting.get_mut(&call) {
            w.offered.retain(|&o| o != ix);
            if !w.tried.contains(&ix) {
                w.tried.push(ix);
            }
        }
    }

    /// The agent pauses or logs out while ringing: stop the phone and give
    /// the call to someone else. Not a miss.
    fn withdraw_offer_by_agent(&mut self, ix: usize, call: CallId) {
        self.withdraw_offer(ix, call);
        self.outputs.push_back(Output::CancelOffer {
            call,
            agent: self.agents[ix].id.clone(),
        });
    }

    /// The offer to `ix` is withdrawn through no fault of the agent (another
    /// answered, the caller left): stop the phone and make the agent
    /// available again without a miss.
    fn cancel_offer(&mut self, now: Instant, ix: usize, call: CallId) {
        self.outputs.push_back(Output::CancelOffer {
            call,
            agent: self.agents[ix].id.clone(),
        });
        self.transition(now, ix, AgentState::Available, Why::OfferCancelled);
    }

    /// A declined or unanswered offer: back to available, or paused after
    /// too many in a row. A phone our ring timer gave up on is still
    /// ringing, so it is cancelled (`cancel`); a declining one already
    /// stopped.
    fn missed_offer(&mut self, now: Instant, ix: usize, why: Why, cancel: bool) {
        if cancel {
            if let Some(call) = self.agents[ix].state.call() {
                self.outputs.push_back(Output::CancelOffer {
                    call,
                    agent: self.agents[ix].id.clone(),
                });
            }
        }
        let a = &mut self.agents[ix];
        a.missed += 1;
        if a.missed >= self.max_missed {
            self.transition(
                now,
                ix,
                AgentState::Paused(PauseReason::missed_offers()),
                Why::MissedOffers,
            );
        } else {
            self.transition(now, ix, AgentState::Available, why);
        }
    }

    /// Wrap-up over (or none configured): apply a pause or logout requested
    /// during the call, else become available.
    fn end_wrap_up(&mut self, now: Instant, ix: usize, why: Why) {
        match self.agents[ix].after_call.take() {
            Some(AfterCall::Pause(reason)) => {
                self.transition(now, ix, AgentState::Paused(reason), Why::Pause);
            }
            Some(AfterCall::Logout) => {
                self.transition(now, ix, AgentState::LoggedOut, Why::Logout);
                self.leave_if_empty(now, ix);
            }
            None => {
                self.agents[ix].idle_since = Some(now);
                self.transition(now, ix, AgentState::Available, why);
            }
        }
    }

    fn unqueue(&mut self, call: CallId, w: &Waiting) {
        self.queues[w.queue].remove(call);
        if let Some(at) = w.max_wait_at {
            self.timers.remove(&(at, Timer::MaxWait(call)));
        }
    }

    fn overflow(&mut self, now: Instant, call: CallId, reason: OverflowReason) {
        let Some(w) = self.waiting.remove(&call) else {
            return;
        };
        self.unqueue(call, &w);
        for &ix in &w.offered {
            self.cancel_offer(now, ix, call);
        }
        self.outputs.push_back(Output::Overflow {
            call,
            queue: self.queues[w.queue].config.name.clone(),
            reason,
        });
    }

    fn anyone_logged_in(&self, qix: usize) -> bool {
        self.queues[qix]
            .members
            .iter()
            .any(|&(ix, _)| self.agents[ix].state.is_logged_in())
    }

    /// After agent `ix` logged out: queues with `leave_when_empty` that now
    /// have nobody logged in send their callers to overflow. Nobody of such
    /// a queue is logged in, so nobody rings and no offer is cancelled.
    fn leave_if_empty(&mut self, now: Instant, ix: usize) {
        let mut leaving = Vec::new();
        for (qix, q) in self.queues.iter().enumerate() {
            if q.config.leave_when_empty
                && q.members.iter().any(|&(m, _)| m == ix)
                && !self.anyone_logged_in(qix)
            {
                leaving.extend(q.waiting.iter().map(|(_, c)| *c));
            }
        }
        for call in leaving {
            self.overflow(now, call, OverflowReason::NoAgents);
        }
    }

    /// Offers waiting callers to free agents, callers of all queues by
    /// priority then arrival, so an agent in several queues serves the
    /// caller who has waited longest.
    fn dispatch(&mut self, now: Instant) {
        // From the waiting calls, not from every queue's list: with each
        // agent's own queue there are more queues than agents, nearly all
        // empty, and a dispatch runs for every call that arrives, is
        // answered or ends. Sequence numbers are unique, so the order is
        // the same as merging the queues' lists.
        let mut order: Vec<(queue::WaitKey, CallId)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.offered.is_empty())
            .map(|(&c, w)| (w.key, c))
            .collect();
        if order.is_empty() || !self.agents.iter().any(|a| a.state == AgentState::Available) {
            return;
        }
        order.sort_unstable();
        for (_, call) in order {
            let Some(picked) = self.pick(call) else {
                continue;
            };
            let Some(w) = self.waiting.get_mut(&call) else {
                continue;
            };
            w.offered.clone_from(&picked);
            let qix = w.queue;
            let ring = self.queues[qix].config.ring_timeout;
            for &ix in &picked {
                self.transition(now, ix, AgentState::Offered(call), Why::Offer);
                self.set_agent_timer(ix, now + ring);
            }
            self.outputs.push_back(Output::Offer {
                call,
                queue: self.queues[qix].config.name.clone(),
                agents: picked
                    .iter()
                    .map(|&ix| self.agents[ix].id.clone())
                    .collect(),
                ring_timeout: ring,
            });
        }
    }

    /// The members to ring with `call`: the free ones of the lowest penalty
    /// tier, preferring those who have not yet missed this call, chosen by
    /// the queue's strategy.
    fn pick(&mut self, call: CallId) -> Option<Vec<usize>> {
        let w = self.waiting.get_mut(&call)?;
        let q = &mut self.queues[w.queue];
        let agents = &self.agents;
        // (position in members, agent index, penalty)
        let free: Vec<(usize, usize, u32)> = q
            .members
            .iter()
            .enumerate()
            .filter(|(_, (ix, _))| agents[*ix].state == AgentState::Available)
            .map(|(pos, &(ix, pen))| (pos, ix, pen))
            .collect();
        if free.is_empty() {
            return None;
        }
        let untried: Vec<_> = free
            .iter()
            .copied()
            .filter(|(_, ix, _)| !w.tried.contains(ix))
            .collect();
        let pool = if untried.is_empty() {
            // Everyone free already missed it: start a new round rather
            // than leave the caller waiting next to free agents.
            w.tried.clear();
            free
        } else {
            untried
        };
        let best = pool.iter().map(|&(_, _, pen)| pen).min()?;
        let tier: Vec<_> = pool.into_iter().filter(|&(_, _, p)| p == best).collect();
        let idle = |ix: usize| agents[ix].idle_since;
        let chosen = match q.config.strategy {
            Strategy::RingAll => return Some(tier.iter().map(|&(_, ix, _)| ix).collect()),
            Strategy::LongestIdle => tier.iter().min_by_key(|&&(pos, ix, _)| (idle(ix), pos)),
            Strategy::FewestCalls => tier.iter().min_by_key(|&&(pos, ix, _)| {
                (q.answered.get(&ix).copied().unwrap_or(0), idle(ix), pos)
            }),
            Strategy::RoundRobin => {
                let last = q.rr_last;
                tier.iter()
                    .find(|&&(pos, _, _)| last.is_none_or(|l| pos > l))
                    .or_else(|| tier.first())
            }
        };
        let &(pos, ix, _) = chosen?;
        q.rr_last = Some(pos);
        Some(vec![ix])
    }

    /// Checks the ownership invariants; the tests call it after every input.
    #[cfg(test)]
    fn check_invariants(&self) -> Result<(), String> {
        let mut ringing: HashMap<usize, CallId> = HashMap::new();
        for (call, w) in &self.waiting {
            for &ix in &w.offered {
                if ringing.insert(ix, *call).is_some() {
                    return Err(format!("agent {ix} offered two calls"));
                }
                if self.agents[ix].state != AgentState::Offered(*call) {
                    return Err(format!("agent {ix} in {call}'s offers but not Offered"));
                }
            }
            if let Some(at) = w.max_wait_at {
                if !self.timers.contains(&(at, Timer::MaxWait(*call))) {
                    return Err(format!("{call} lost its max-wait timer"));
                }
            }
            if self.connected.contains_key(call) {
                return Err(format!("{call} both waiting and connected"));
            }
            if !self.queues[w.queue].waiting.contains(&(w.key, *call)) {
                return Err(format!("{call} not in its queue's list"));
            }
        }
        let listed: usize = self.queues.iter().map(|q| q.waiting.len()).sum();
        if listed != self.waiting.len() {
            return Err(format!(
                "{listed} calls in queue lists, {} waiting",
                self.waiting.len()
            ));
        }
        let mut talking: HashMap<usize, CallId> = HashMap::new();
        for (call, c) in &self.connected {
            if talking.insert(c.agent, *call).is_some() {
                return Err(format!("agent {} on two calls", c.agent));
            }
            match self.agents[c.agent].state {
                AgentState::OnCall(x) | AgentState::OnHold(x) if x == *call => {}
                ref s => return Err(format!("{call} connected but agent is {s:?}")),
            }
        }
        for (ix, a) in self.agents.iter().enumerate() {
            let timed = matches!(a.state, AgentState::Offered(_) | AgentState::WrapUp);
            match (timed, a.deadline) {
                (true, Some(at)) if self.timers.contains(&(at, Timer::Agent(ix))) => {}
                (false, None) => {}
                _ => return Err(format!("agent {ix} {:?} timer {:?}", a.state, a.deadline)),
            }
            match a.state {
                AgentState::Offered(call) if ringing.get(&ix) != Some(&call) => {
                    return Err(format!("agent {ix} Offered {call} unknown to the call"));
                }
                AgentState::OnCall(call) | AgentState::OnHold(call)
                    if talking.get(&ix) != Some(&call) =>
                {
                    return Err(format!("agent {ix} on {call} unknown to the call"));
                }
                _ => {}
            }
        }
        // Every timer belongs to a live agent deadline or max wait.
        for &(at, timer) in &self.timers {
            let live = match timer {
                Timer::Agent(ix) => self.agents[ix].deadline == Some(at),
                Timer::MaxWait(call) => {
                    self.waiting.get(&call).and_then(|w| w.max_wait_at) == Some(at)
                }
            };
            if !live {
                return Err(format!("stale timer {timer:?} at {at:?}"));
            }
        }
        Ok(())
    }
}
