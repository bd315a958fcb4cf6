//! The control API's commands, carried out on the call core: agents' states
//! through the ACD (its one owner), live views of queues and calls, and
//! commands on calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::info;

use super::queue_calls::Role;
use super::Endpoint;
use crate::call::acd::{self, AgentState, PauseReason};
use crate::config::{AgentId, Route, PERSONAL_QUEUE_PREFIX};
use crate::control::{
    AgentView, CallView, Command, ControlError, ControlErrorKind, Event, LegView, MetricsView,
    QueueView, Reply, WaitingCaller,
};
use crate::media::control::MediaCommand;
use crate::media::relay::LegId;
use crate::media::session::Feed;
use crate::sip::dialog::DialogId;

fn not_found(what: impl std::fmt::Display) -> ControlError {
    ControlError::new(ControlErrorKind::NotFound, format!("no {what}"))
}

fn invalid(why: impl Into<String>) -> ControlError {
    ControlError::new(ControlErrorKind::Invalid, why)
}

/// A DTMF key (RFC 4733 events 0-15).
fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

impl Endpoint {
    /// Carries out one command of the control API.
    pub(super) fn control(
        &mut self,
        now: Instant,
        command: Command,
    ) -> Result<Reply, ControlError> {
        match command {
            Command::ListAgents => Ok(Reply::Agents(self.agent_views())),
            Command::Login { agent } => self.agent_command(now, &agent, AgentAction::Login),
            Command::Logout { agent } => self.agent_command(now, &agent, AgentAction::Logout),
            Command::Pause { agent, reason } => {
                let reason = reason.trim();
                if reason.is_empty() || reason.len() > 64 {
                    return Err(invalid("a pause reason is 1 to 64 characters"));
                }
                self.agent_command(now, &agent, AgentAction::Pause(PauseReason::new(reason)))
            }
            Command::Unpause { agent } => self.agent_command(now, &agent, AgentAction::Unpause),
            Command::QueueStatus => Ok(Reply::Queues(self.queue_views(now))),
            Command::ListCalls => Ok(Reply::Calls(self.call_views())),
            Command::Hangup { call } => self.control_hangup(now, call),
            Command::Hold { call, hold } => {
                self.control_hold(now, call, hold)?;
                Ok(Reply::Done)
            }
            Command::Transfer { call, target } => self.control_transfer(now, call, &target),
            Command::SendDtmf { call, digits } => self.control_dtmf(call, &digits),
            Command::Record { call, paused } => self.control_record(call, paused),
            Command::Originate { agent, number } => self.originate(now, &agent, &number),
            Command::OfferAnswer {
                agent,
                call,
                accept,
            } => {
                let id: AgentId = agent
                    .parse()
                    .map_err(|_| not_found(format!("agent {agent}")))?;
                self.offer_answer(now, acd::CallId(call), &id, accept)?;
                Ok(Reply::Done)
            }
            Command::Metrics => Ok(Reply::Metrics(self.metrics_view(now))),
            Command::AsAgent { agent, steer } => {
                let Some(call) = steer.call() else {
                    return Err(invalid("only a call command is run as an agent"));
                };
                let handler = self
                    .call_views()
                    .into_iter()
                    .find(|v| v.call == call)
                    .ok_or_else(|| not_found(format!("call {call}")))?
                    .agent;
                if handler.as_deref() != Some(agent.as_str()) {
                    return Err(ControlError::new(
                        ControlErrorKind::Forbidden,
                        format!("call {call} is not handled by agent {agent}"),
                    ));
                }
                self.control(now, *steer)
            }
        }
    }

    fn agent_views(&self) -> Vec<AgentView> {
        let queues = &self.queues.settings().queues;
        self.config
            .agents
            .iter()
            .map(|(id, _)| {
                let state = id
                    .parse::<AgentId>()
                    .map_or(AgentState::LoggedOut, |a| self.queues.agent_state(&a));
                let (reason, call) = match &state {
                    AgentState::Paused(r) => (Some(r.as_str().to_owned()), None),
                    AgentState::Offered(c) | AgentState::OnCall(c) | AgentState::OnHold(c) => {
                        (None, Some(c.0))
                    }
                    _ => (None, None),
                };
                AgentView {
                    id: id.clone(),
                    state: state.name().to_owned(),
                    reason,
                    call,
                    registered: self.registrar.contacts(id).len(),
                    queues: queues
                        .iter()
                        .filter(|q| !q.name.as_str().starts_with(PERSONAL_QUEUE_PREFIX))
                        .filter(|q| q.agents.iter().any(|a| a.as_str() == id))
                        .map(|q| q.name.to_string())
                        .collect(),
                }
            })
            .collect()
    }

    fn agent_command(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
    ) -> Result<Reply, ControlError> {
        let id: AgentId = agent
            .parse()
            .ok()
            .filter(|a: &AgentId| self.config.agents.iter().any(|(x, _)| x == a.as_str()))
            .ok_or_else(|| not_found(format!("agent {agent}")))?;
        let Some(acd) = self.queues.acd_mut() else {
            return Err(ControlError::new(
                ControlErrorKind::Unavailable,
                "no queues are configured",
            ));
        };
        let result = match action {
            AgentAction::Login => acd.login(now, &id),
            AgentAction::Logout => acd.logout(now, &id),
            AgentAction::Pause(reason) => acd.pause(now, &id, reason),
            AgentAction::Unpause => acd.unpause(now, &id),
        };
        result.map_err(|e| ControlError::new(ControlErrorKind::Conflict, e.to_string()))?;
        info!(agent = %id, "agent state changed by the control API");
        self.pump_acd(now);
        Ok(Reply::Done)
    }

    fn queue_views(&self, now: Instant) -> Vec<QueueView> {
        self.queues
            .settings()
            .queues
            .iter()
            .filter(|q| !q.name.as_str().starts_with(PERSONAL_QUEUE_PREFIX))
            .map(|q| {
                let mut waiting: Vec<WaitingCaller> = self
                    .queues
                    .waiting_in(now, &q.name)
                    .into_iter()
                    .map(|(call, caller, status)| WaitingCaller {
                        call: call.0,
                        caller,
                        position: status.position,
                        waited_secs: status.waited.as_secs(),
                    })
                    .collect();
                waiting.sort_by_key(|w| w.position);
                let mut agents: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for a in &q.agents {
                    let state = self.queues.agent_state(a).name().to_owned();
                    agents.entry(state).or_default().push(a.to_string());
                }
                QueueView {
                    name: q.name.to_string(),
                    longest_wait_secs: waiting.iter().map(|w| w.waited_secs).max().unwrap_or(0),
                    waiting,
                    agents,
                }
            })
            .collect()
    }

    fn call_views(&self) -> Vec<CallView> {
        let mut views: Vec<CallView> = self
            .queues
            .call_summaries()
            .into_iter()
            .map(|c| {
                let mut legs = vec![LegView {
                    role: "caller".to_owned(),
                    call_id: c.call_id.clone(),
                    party: c.caller.clone(),
                }];
                if let Some((agent, dialog)) = &c.agent {
                    legs.push(LegView {
                        role: "agent".to_owned(),
                        call_id: dialog.call_id.to_string(),
                        party: agent.to_string(),
                    });
                }
                let state = match (&c.agent, c.held, c.ringing) {
                    (Some(_), true, _) => "held",
                    (Some(_), false, _) => "connected",
                    (None, _, true) => "ringing",
                    (None, _, false) => "queued",
                };
                CallView {
                    call: c.call.0,
                    direction: c.direction.as_str().to_owned(),
                    state: state.to_owned(),
                    caller: c.caller,
                    dialled: c.dialled,
                    queue: Some(c.queue.to_string()),
                    agent: c.agent.as_ref().map(|(a, _)| a.to_string()),
                    legs,
                    recording: c.recording,
                    recording_paused: c.recording_paused,
                }
            })
            .collect();
        views.extend(self.outbound.connected.values().map(|o| CallView {
            call: o.call,
            direction: "outbound".to_owned(),
            state: "connected".to_owned(),
            caller: o.agent.to_string(),
            dialled: o.number.clone(),
            queue: None,
            agent: Some(o.agent.to_string()),
            legs: vec![
                LegView {
                    role: "customer".to_owned(),
                    call_id: o.customer_leg.call_id.to_string(),
                    party: o.number.clone(),
                },
                LegView {
                    role: "agent".to_owned(),
                    call_id: o.agent_leg.call_id.to_string(),
                    party: o.agent.to_string(),
                },
            ],
            recording: true,
            recording_paused: o.recording_paused,
        }));
        views.sort_by_key(|v| v.call);
        views
    }

    /// The dialog of a live call's caller (or, outbound, the agent) and its
    /// media session.
    fn live_call(
        &self,
        call: u64,
    ) -> Result<(DialogId, crate::media::session::SessionId), ControlError> {
        if let Some((dialog, session)) = self.queues.caller_of(acd::CallId(call)) {
            return Ok((dialog, session));
        }
        self.outbound
            .connected
            .iter()
            .find(|(_, o)| o.call == call)
            .map(|(session, o)| (o.agent_leg.clone(), *session))
            .ok_or_else(|| not_found(format!("call {call}")))
    }

    fn control_hangup(&mut self, now: Instant, call: u64) -> Result<Reply, ControlError> {
        let (dialog, _) = self.live_call(call)?;
        info!(call, "hung up by the control API");
        self.hang_up(now, &dialog, "hung up by the control API");
        Ok(Reply::Done)
    }

    fn control_hold(&mut self, now: Instant, call: u64, hold: bool) -> Result<(), ControlError> {
        let qid = acd::CallId(call);
        let agent_leg = self.queues.agent_leg_of(qid);
        if let Some(session) = agent_leg {
            self.set_hold(now, qid, hold)?;
            // The agent does not hear the caller while the API holds.
            self.outputs
                .push_back(super::Output::Media(MediaCommand::SetFeed {
                    session,
                    leg: LegId::Agent,
                    feed: if hold { Feed::Silence } else { Feed::Other },
                }));
            return Ok(());
        }
        if self.queues.caller_of(qid).is_some() {
            return Err(ControlError::new(
                ControlErrorKind::Conflict,
                format!("call {call} is not answered yet"),
            ));
        }
        let (agent_leg, _) = self.live_call(call)?;
        // An outbound call: the customer hears the hold music.
        self.role_direction(
            now,
            &agent_leg,
            &Role::Outbound(super::outbound::Side::Agent),
            hold,
        );
        Ok(())
    }

    fn control_transfer(
        &mut self,
        now: Instant,
        call: u64,
        target: &str,
    ) -> Result<Reply, ControlError> {
        let qid = acd::CallId(call);
        if let Some(needed) = super::outbound::permission_for(target) {
            // An external number: the answering agent's dial permissions
            // apply, as if the agent had dialled it (toll fraud).
            let Some(agent) = self.queues.answering_agent(qid) else {
                return Err(not_found(format!("answered call {call}")));
            };
            if !self.may_dial(agent.as_str(), needed) {
                return Err(invalid(format!(
                    "agent {agent} may not dial {needed:?} numbers"
                )));
            }
            if self.outbound_trunk().is_none() {
                return Err(ControlError::new(ControlErrorKind::Unavailable, "no trunk"));
            }
        } else {
            let route: Route = target
                .parse()
                .map_err(|e| invalid(format!("transfer target {target:?}: {e}")))?;
            self.check_transfer_route(&route)?;
        }
        let Some((who, agent)) = self.queues.take_caller(qid) else {
            return Err(not_found(format!("queued call {call}")));
        };
        // The agent's leg (if answered) ends; the caller stays.
        if let Some((_, agent_leg)) = agent {
            self.calls.clear_partner(&who.dialog);
            self.calls.clear_partner(&agent_leg);
            self.hang_up(now, &agent_leg, "transferred by the control API");
        }
        if let Some(acd) = self.queues.acd_mut() {
            let _ = acd.hangup(now, qid);
        }
        self.pump_acd(now);
        info!(call, %target, "call transferred");
        self.event(Event::CallTransferred {
            call,
            target: target.to_owned(),
        });
        match target.parse::<Route>() {
            Ok(route) if super::outbound::permission_for(target).is_none() => {
                self.route_caller(now, who, route)
            }
            _ => self.forward(now, who, target),
        }
        Ok(Reply::Done)
    }

    fn check_transfer_route(&self, route: &Route) -> Result<(), ControlError> {
        match route {
            Route::Queue(q) if self.queues.settings().queue(q).is_none() => {
                Err(not_found(format!("queue {q}")))
            }
            Route::Ivr(m) if !self.queues.menus.contains_key(m) => {
                Err(not_found(format!("IVR menu {m}")))
            }
            Route::Agent(a) if !self.config.agents.iter().any(|(x, _)| x == a.as_str()) => {
                Err(not_found(format!("agent {a}")))
            }
            Route::Queue(_) | Route::Ivr(_) | Route::Agent(_) => Ok(()),
            Route::Message(_) | Route::Hangup => Err(invalid(
                "a call is transferred to a queue, an IVR menu, an agent or a number",
            )),
        }
    }

    fn control_dtmf(&mut self, call: u64, digits: &str) -> Result<Reply, ControlError> {
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(is_dtmf_key) {
            return Err(invalid("digits are 1 to 32 of 0-9, *, #, A-D"));
        }
        let (_, session) = self.live_call(call)?;
        for digit in digits.chars() {
            self.outputs
                .push_back(super::Output::Media(MediaCommand::SendDigit {
                    session,
                    leg: LegId::Caller,
                    digit,
                    duration: Duration::from_millis(160),
                }));
        }
        Ok(Reply::Done)
    }

    fn control_record(&mut self, call: u64, paused: bool) -> Result<Reply, ControlError> {
        let (_, session) = self.live_call(call)?;
        let recorded = match self.queues.recording_paused(acd::CallId(call), paused) {
            Some(recorded) => recorded,
            None => match self.outbound.connected.get_mut(&session) {
                Some(o) => {
                    o.recording_paused = paused;
                    true
                }
                None => false,
            },
        };
        if !recorded {
            return Err(ControlError::new(
                ControlErrorKind::Conflict,
                format!("call {call} is not being recorded"),
            ));
        }
        self.outputs
            .push_back(super::Output::Media(MediaCommand::PauseRecording {
                session,
                paused,
            }));
        info!(call, paused, "recording paused by the control API");
        self.event(Event::RecordingPaused { call, paused });
        Ok(Reply::Done)
    }

    fn metrics_view(&self, now: Instant) -> MetricsView {
        let queues = self.queue_views(now);
        let mut agents_by_state: BTreeMap<String, u64> = BTreeMap::new();
        for a in self.agent_views() {
            *agents_by_state.entry(a.state).or_default() += 1;
        }
        let rtp = &self.queues.rtp;
        MetricsView {
            calls_active: (self.queues.call_count() + self.outbound.connected.len()) as u64,
            calls_by_queue_outcome: self
                .queues
                .outcomes
                .iter()
                .map(|((q, o), n)| (q.clone(), o.clone(), *n))
                .collect(),
            queue_waiting: queues
                .iter()
                .map(|q| (q.name.clone(), q.waiting.len() as u64, q.longest_wait_secs))
                .collect(),
            agents_by_state: agents_by_state.into_iter().collect(),
            registrations: self.registrar.binding_count() as u64,
            sip_responses: self.responses.iter().map(|(s, n)| (*s, *n)).collect(),
            rtp_packets_lost: rtp.lost,
            rtp_jitter_ms_mean: if rtp.legs == 0 {
                0.0
            } else {
                rtp.jitter_sum / rtp.legs as f64
            },
        }
    }
}

enum AgentAction {
    Login,
    Logout,
    Pause(PauseReason),
    Unpause,
}
