//! Calls through the queues: the call centre's inbound flow.
//!
//! A caller (from a trunk, or an agent dialling a queue's extension) is
//! answered by the gateway itself: its leg joins a new media session and
//! hears the queue's greeting, then hold music. The caller enters the ACD
//! (`call::acd`), which is the one owner of agent state and decides whom to
//! ring. Each offer is an INVITE of ours to the agent's registered contact
//! (a UAC dialog on our side, RFC 3261 §13.2), carrying our SDP offer for
//! the agent's leg of the same session. The first 2xx the ACD accepts is
//! ACKed and bridged: the agent's leg opens hearing the caller, the caller's
//! feed switches from music to the agent, and recording starts. Any other
//! 2xx (a ring-all loser, an answer racing our CANCEL or the caller's
//! hang-up) is ACKed and sent BYE at once, so no phone is left in a one-way
//! call. Ring timeouts come from the ACD as `CancelOffer` (our CANCEL,
//! RFC 3261 §9.1).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::super::dialog::DialogId;
use super::super::flow::Flow;
use super::super::message::{Request, Response};
use super::super::transaction::ClientTxId;
use super::calls::PendingStart;
use super::routing::Caller;
use super::{ClientOutcome, ClientPurpose, Endpoint, Output};
use crate::call::acd::{self, Acd, AcdConfig, AgentState, OverflowReason, PauseReason};
use crate::call::announce::{position_announcement, AnnouncementPrompts};
use crate::call::record::{CallOutcome, CallRecordBuilder, HungUpBy, LegQuality, OfferResult};
use crate::config::{AgentId, DialPlan, IvrMenu, IvrName, PromptName, Queue, QueueName, Route};
use crate::control::{ControlError, ControlErrorKind, Event};
use crate::media::control::LegReport;
use crate::media::control::MediaCommand;
use crate::media::player::{PlayItem, Player, Prompt};
use crate::media::ports::PortPair;
use crate::media::relay::LegId;
use crate::media::sdp::SessionDescription;
use crate::media::session::{Feed, SessionId};

/// A call's number in the ACD.
pub(super) type QueueCallId = acd::CallId;

/// The part a leg plays in the call centre's flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    /// The caller of a queued call (answered by us).
    Caller(QueueCallId),
    /// The agent who answered a queued call (our INVITE).
    Agent(QueueCallId, AgentId),
    /// A caller in an IVR menu (`QueueCalls::ivr_calls`).
    Ivr,
    /// Hears a last prompt (a feature code's beeps, a message route), then
    /// our BYE.
    Goodbye,
    /// A leg of a call an agent placed through the trunk.
    Outbound(super::outbound::Side),
    /// A leg of a caller transferred to an external number.
    Forwarded(QueueCallId),
}

/// The queues, IVR menus and dial plan, and the prompts they play.
#[derive(Debug, Clone, Default)]
pub struct QueueSettings {
    pub queues: Vec<Queue>,
    pub ivr: Vec<IvrMenu>,
    pub dial_plan: DialPlan,
    /// What a caller hears while the agent holds the call.
    pub hold_music: Option<PromptName>,
    pub sounds_dir: PathBuf,
    /// Every prompt the configuration names, loaded once by the runtime.
    pub prompts: HashMap<PathBuf, Prompt>,
    /// Agents whose offers go to their desktop first (`handoff = "api"`).
    pub api_agents: std::collections::HashSet<AgentId>,
}

impl QueueSettings {
    pub(super) fn prompt(&self, name: &PromptName) -> Option<Prompt> {
        self.prompts.get(&name.path(&self.sounds_dir)).cloned()
    }

    pub(super) fn queue(&self, name: &QueueName) -> Option<&Queue> {
        self.queues.iter().find(|q| &q.name == name)
    }
}

/// An agent's phone ringing with a call: our INVITE.
#[derive(Debug)]
struct Ringing {
    call: QueueCallId,
    agent: AgentId,
    invite: Request,
    flow: Flow,
    /// Released (`None`) when the offer is withdrawn: a 2xx that still
    /// comes is only ACKed and hung up.
    ports: Option<PortPair>,
    local_sdp: SessionDescription,
    /// A provisional response arrived (logged once).
    ringing: bool,
}

/// What the caller of a waiting call is hearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Greeting,
    Music,
    /// Position and estimated wait; music again after it.
    Announcement,
}

#[derive(Debug)]
struct QueueCall {
    who: Caller,
    queue: QueueName,
    waiting: Waiting,
    agent: Option<(AgentId, DialogId)>,
    held: bool,
    /// The caller's leg has ended: offers withdrawn now are cancellations,
    /// not missed rings.
    ending: bool,
    /// When the next position announcement is due.
    next_announce: Option<Instant>,
}

/// A queued call as the control API lists it.
pub(super) struct CallSummary {
    pub(super) call: QueueCallId,
    pub(super) call_id: String,
    pub(super) caller: String,
    pub(super) dialled: String,
    pub(super) queue: QueueName,
    pub(super) direction: crate::call::record::CallDirection,
    pub(super) agent: Option<(AgentId, DialogId)>,
    pub(super) held: bool,
    pub(super) ringing: bool,
    pub(super) recording: bool,
    pub(super) recording_paused: bool,
}

/// A call whose legs have ended, waiting for their media reports before its
/// record is written.
#[derive(Debug)]
struct Closing {
    record: CallRecordBuilder,
    legs_open: u8,
    /// The call's number in events, if it had one.
    call: Option<u64>,
}

/// The call-centre calls and the ACD.
pub(super) struct QueueCalls {
    acd: Option<Acd>,
    settings: QueueSettings,
    calls: HashMap<QueueCallId, QueueCall>,
    ringing: HashMap<ClientTxId, Ringing>,
    /// The ACK of each agent's 2xx, sent again for every retransmission of
    /// the 2xx until the INVITE transaction ends (RFC 6026 §7.2).
    pub(super) acks: HashMap<ClientTxId, (Flow, Bytes)>,
    closing: HashMap<SessionId, Closing>,
    /// Position announcements due, earliest first.
    announce_at: BTreeSet<(Instant, QueueCallId)>,
    announcements: Option<AnnouncementPrompts>,
    pub(super) menus: HashMap<IvrName, Arc<IvrMenu>>,
    pub(super) ivr_calls: HashMap<DialogId, super::routing::IvrCall>,
    /// IVR key timeouts due, earliest first.
    pub(super) ivr_at: BTreeSet<(Instant, DialogId)>,
    /// Offers published to API agents' desktops, awaiting their answer.
    api_offers: std::collections::HashSet<(QueueCallId, AgentId)>,
    pub(super) next: u64,
    /// Ended calls by (queue, outcome), for metrics.
    pub(super) outcomes: BTreeMap<(String, String), u64>,
    /// Loss and jitter over the legs closed so far, for metrics.
    pub(super) rtp: RtpTotals,
}

#[derive(Debug, Default)]
pub(super) struct RtpTotals {
    pub(super) lost: u64,
    pub(super) jitter_sum: f64,
    pub(super) legs: u64,
}

impl QueueCalls {
    pub(super) fn new(settings: QueueSettings) -> QueueCalls {
        let config = AcdConfig::new(settings.queues.iter().map(Into::into).collect());
        let acd = match Acd::new(config) {
            Ok(acd) => Some(acd),
            Err(error) => {
                // The configuration validation rules this out.
                tracing::error!(%error, "queues not usable: calls to them are refused");
                None
            }
        };
        let announcements = settings
            .queues
            .iter()
            .any(|q| q.announce_every.is_some())
            .then(|| {
                AnnouncementPrompts::from_lookup(|name| {
                    name.parse::<PromptName>()
                        .ok()
                        .and_then(|p| settings.prompt(&p))
                })
            })
            .and_then(|loaded| {
                loaded
                    .map_err(|error| warn!(%error, "queue announcements disabled"))
                    .ok()
            });
        let menus = settings
            .ivr
            .iter()
            .map(|m| (m.name.clone(), Arc::new(m.clone())))
            .collect();
        QueueCalls {
            acd,
            settings,
            calls: HashMap::new(),
            ringing: HashMap::new(),
            acks: HashMap::new(),
            closing: HashMap::new(),
            announce_at: BTreeSet::new(),
            announcements,
            menus,
            ivr_calls: HashMap::new(),
            ivr_at: BTreeSet::new(),
            api_offers: std::collections::HashSet::new(),
            next: 1,
            outcomes: BTreeMap::new(),
            rtp: RtpTotals::default(),
        }
    }

    pub(super) fn agent_state(&self, agent: &AgentId) -> AgentState {
        self.acd
            .as_ref()
            .map_or(AgentState::LoggedOut, |a| a.agent_state(agent))
    }

    pub(super) fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The callers waiting in `queue` with their place.
    pub(super) fn waiting_in(
        &self,
        now: Instant,
        queue: &QueueName,
    ) -> Vec<(QueueCallId, String, acd::CallStatus)> {
        let Some(acd) = self.acd.as_ref() else {
            return Vec::new();
        };
        self.calls
            .iter()
            .filter(|(_, q)| &q.queue == queue && q.agent.is_none())
            .filter_map(|(id, q)| Some((*id, q.who.number.clone(), acd.call_status(now, *id)?)))
            .collect()
    }

    /// Every queued or answered call, for the control API.
    pub(super) fn call_summaries(&self) -> Vec<CallSummary> {
        self.calls
            .iter()
            .map(|(id, q)| CallSummary {
                call: *id,
                call_id: q.who.call_id.clone(),
                caller: q.who.number.clone(),
                dialled: q.who.dialled.clone(),
                queue: q.queue.clone(),
                direction: q.who.direction,
                agent: q.agent.clone(),
                held: q.held,
                ringing: self
                    .ringing
                    .values()
                    .any(|r| r.call == *id && r.ports.is_some()),
                recording: q.who.recording.is_some(),
                recording_paused: q.who.recording_paused,
            })
            .collect()
    }

    /// The caller's dialog and session of a queued call.
    pub(super) fn caller_of(&self, call: QueueCallId) -> Option<(DialogId, SessionId)> {
        self.calls
            .get(&call)
            .map(|q| (q.who.dialog.clone(), q.who.session))
    }

    /// The agent who answered a queued call.
    pub(super) fn answering_agent(&self, call: QueueCallId) -> Option<AgentId> {
        self.calls
            .get(&call)
            .and_then(|q| q.agent.as_ref().map(|(a, _)| a.clone()))
    }

    /// The session of a call an agent answered.
    pub(super) fn agent_leg_of(&self, call: QueueCallId) -> Option<SessionId> {
        self.calls
            .get(&call)
            .filter(|q| q.agent.is_some())
            .map(|q| q.who.session)
    }

    /// Takes a caller out of its queue call (a transfer), with the agent
    /// who had answered it, if any.
    pub(super) fn take_caller(
        &mut self,
        call: QueueCallId,
    ) -> Option<(Caller, Option<(AgentId, DialogId)>)> {
        let q = self.calls.remove(&call)?;
        if let Some(at) = q.next_announce {
            self.announce_at.remove(&(at, call));
        }
        Some((q.who, q.agent))
    }

    /// Marks a queued call's recording paused or resumed: `None` when there
    /// is no such call, `Some(false)` when it is not recorded.
    pub(super) fn recording_paused(&mut self, call: QueueCallId, paused: bool) -> Option<bool> {
        let q = self.calls.get_mut(&call)?;
        if q.who.recording.is_none() {
            return Some(false);
        }
        q.who.recording_paused = paused;
        Some(true)
    }

    pub(super) fn acd_mut(&mut self) -> Option<&mut Acd> {
        self.acd.as_mut()
    }

    pub(super) fn has_acd(&self) -> bool {
        self.acd.is_some()
    }

    pub(super) fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Where a dialled number goes.
    pub(super) fn route(&self, dialled: &str) -> Option<Route> {
        self.settings.dial_plan.route(dialled)
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.acd.as_ref().and_then(Acd::poll_timeout),
            self.announce_at.first().map(|(at, _)| *at),
            self.ivr_at.first().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// A player for a prompt played once.
pub(super) fn once(prompt: &Prompt) -> Feed {
    Feed::Play(Player::new(vec![PlayItem::Prompt(prompt.clone())], false))
}

/// A player looping a prompt (music); silence without one.
fn looping(prompt: Option<&Prompt>) -> Feed {
    match prompt {
        Some(p) => Feed::Play(Player::new(vec![PlayItem::Prompt(p.clone())], true)),
        None => Feed::Silence,
    }
}

impl Endpoint {
    /// The caller enters a queue (from the dial plan, an IVR choice or
    /// another queue's overflow): greeting, then music, and the ACD.
    pub(super) fn enqueue_caller(&mut self, now: Instant, mut who: Caller, queue: QueueName) {
        let qid = match who.number_in_acd {
            Some(qid) => qid,
            None => {
                let qid = acd::CallId(self.queues.next);
                self.queues.next += 1;
                who.number_in_acd = Some(qid);
                qid
            }
        };
        let config = self.queues.settings.queue(&queue);
        let greeting = config
            .and_then(|q| q.greeting.as_ref())
            .and_then(|g| self.queues.settings.prompt(g));
        let music = config.and_then(|q| self.queues.settings.prompt(&q.music));
        let (feed, waiting) = match &greeting {
            Some(g) => (once(g), Waiting::Greeting),
            None => (looping(music.as_ref()), Waiting::Music),
        };
        let next_announce = match waiting {
            Waiting::Music => self.announce_due(now, &queue),
            _ => None,
        };
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session: who.session,
            leg: LegId::Caller,
            feed,
        }));
        self.calls.set_role(&who.dialog, Role::Caller(qid));
        info!(call = %who.call_id, %queue, acd_call = %qid, "caller queued");
        who.record.queued(queue.clone(), self.wall(now));
        let dialog = who.dialog.clone();
        if let Some(at) = next_announce {
            self.queues.announce_at.insert((at, qid));
        }
        self.queues.calls.insert(
            qid,
            QueueCall {
                who,
                queue: queue.clone(),
                waiting,
                agent: None,
                held: false,
                ending: false,
                next_announce,
            },
        );
        let entered = match self.queues.acd.as_mut() {
            Some(acd) => acd.enqueue(now, qid, &queue, 0),
            None => Err(acd::AcdError::UnknownQueue(queue)),
        };
        if let Err(error) = entered {
            warn!(%error, "caller not queued: hanging up");
            self.hang_up(now, &dialog, "queue refused the call");
        }
        self.pump_acd(now);
    }

    /// When a caller who starts hearing music now is next told its
    /// position, if the queue announces.
    fn announce_due(&self, now: Instant, queue: &QueueName) -> Option<Instant> {
        self.queues.announcements.as_ref()?;
        let every = self.queues.settings.queue(queue)?.announce_every?;
        Some(now + every)
    }

    /// Position announcements that are due: each caller still waiting with
    /// music hears its position and estimated wait, then music again.
    fn announce(&mut self, now: Instant) {
        while let Some(&(at, qid)) = self.queues.announce_at.first() {
            if at > now {
                break;
            }
            self.queues.announce_at.remove(&(at, qid));
            let status = self
                .queues
                .acd
                .as_ref()
                .and_then(|a| a.call_status(now, qid));
            let (Some(q), Some(status), Some(prompts)) = (
                self.queues.calls.get_mut(&qid),
                status,
                self.queues.announcements.as_ref(),
            ) else {
                continue;
            };
            q.next_announce = None;
            if q.agent.is_some() || q.waiting != Waiting::Music {
                continue;
            }
            let Some(config) = self.queues.settings.queue(&q.queue) else {
                continue;
            };
            let items = position_announcement(
                prompts,
                status.position,
                status.estimated_wait,
                config.announce_position,
                config.announce_wait,
            );
            if items.is_empty() {
                continue;
            }
            q.waiting = Waiting::Announcement;
            debug!(acd_call = %qid, position = status.position, "position announced");
            self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                session: q.who.session,
                leg: LegId::Caller,
                feed: Feed::Play(Player::new(items, false)),
            }));
        }
    }

    pub(super) fn queues_handle_timeout(&mut self, now: Instant) {
        if let Some(acd) = self.queues.acd.as_mut() {
            acd.handle_timeout(now);
        }
        self.pump_acd(now);
        self.announce(now);
        self.ivr_handle_timeout(now);
    }

    /// Carries out what the ACD decided.
    pub(super) fn pump_acd(&mut self, now: Instant) {
        loop {
            let Some(output) = self.queues.acd.as_mut().and_then(Acd::poll_output) else {
                return;
            };
            match output {
                acd::Output::Offer {
                    call,
                    queue,
                    agents,
                    ring_timeout,
                } => {
                    for agent in agents {
                        if !self.offer(now, call, &agent) {
                            // No phone to ring: a missed offer, so that an
                            // agent logged in without a phone is paused.
                            if let Some(acd) = self.queues.acd.as_mut() {
                                let _ = acd.offer_timed_out(now, call, &agent);
                            }
                        }
                    }
                    debug!(acd_call = %call, %queue, ring_secs = ring_timeout.as_secs(), "offered");
                }
                acd::Output::CancelOffer { call, agent } => self.withdraw_offer(now, call, &agent),
                acd::Output::Overflow {
                    call,
                    queue,
                    reason,
                } => {
                    info!(acd_call = %call, %queue, ?reason, "caller leaves the queue");
                    let left = match reason {
                        OverflowReason::MaxWait => "timed_out",
                        OverflowReason::QueueFull | OverflowReason::NoAgents => "overflowed",
                    };
                    self.event(Event::QueueCallerLeft {
                        call: call.0,
                        queue: queue.to_string(),
                        reason: left.to_owned(),
                    });
                    let outcome = match reason {
                        OverflowReason::MaxWait => CallOutcome::TimedOut,
                        OverflowReason::QueueFull | OverflowReason::NoAgents => {
                            CallOutcome::Overflowed
                        }
                    };
                    self.leave_queue(now, call, outcome, format!("{reason:?}"));
                }
                acd::Output::Queued {
                    call,
                    queue,
                    position,
                } => {
                    info!(acd_call = %call, %queue, position, "waiting");
                    let caller = self
                        .queues
                        .calls
                        .get(&call)
                        .map(|q| q.who.number.clone())
                        .unwrap_or_default();
                    self.event(Event::QueueCallerJoined {
                        call: call.0,
                        queue: queue.to_string(),
                        caller,
                        position,
                    });
                }
                acd::Output::Answered {
                    call,
                    agent,
                    waited,
                } => {
                    info!(acd_call = %call, %agent, waited_ms = waited.as_millis() as u64, "answered by agent")
                }
                acd::Output::Abandoned {
                    call,
                    queue,
                    waited,
                } => {
                    info!(acd_call = %call, %queue, waited_ms = waited.as_millis() as u64, "caller abandoned");
                    let wall = self.wall(now);
                    // A transferred caller left its queue call first.
                    if let Some(q) = self.queues.calls.get_mut(&call) {
                        let why = "caller hung up while queued";
                        q.who.record.ended(
                            wall,
                            CallOutcome::Abandoned,
                            Some(HungUpBy::Caller),
                            why,
                        );
                        self.event(Event::QueueCallerAbandoned {
                            call: call.0,
                            queue: queue.to_string(),
                            waited_secs: waited.as_secs(),
                        });
                    }
                }
                acd::Output::Agent(event) => {
                    info!(
                        agent = %event.agent,
                        from = ?event.from,
                        to = ?event.to,
                        why = ?event.why,
                        "agent state"
                    );
                    self.event(Event::AgentStateChanged {
                        agent: event.agent.to_string(),
                        from: event.from.name().to_owned(),
                        to: event.to.name().to_owned(),
                        why: format!("{:?}", event.why),
                    });
                }
            }
        }
    }

    /// Rings one agent with a call: our INVITE to the agent's most recently
    /// registered reachable contact, sent where that REGISTER came from
    /// (phones behind NAT). False when there is nothing to ring.
    /// Offers a call to one agent: published as an event (the agent
    /// desktop's screen pop), then the agent's phone rings — or, for an agent
    /// taking offers over the API, its desktop answers first. False when
    /// there is nothing to ring.
    fn offer(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) -> bool {
        let wall = self.wall(now);
        let Some(q) = self.queues.calls.get_mut(&call) else {
            return false;
        };
        q.who.record.offered(agent.clone(), wall);
        let offered = Event::CallOffered {
            call: call.0,
            agent: agent.to_string(),
            queue: q.queue.to_string(),
            caller: q.who.number.clone(),
            waited_secs: wall
                .duration_since(q.who.arrived)
                .unwrap_or_default()
                .as_secs(),
            ivr_choices: q.who.ivr_choices.clone(),
        };
        self.event(offered);
        if self.queues.settings.api_agents.contains(agent) {
            info!(%agent, acd_call = %call, "offer published to the agent's desktop");
            self.queues.api_offers.insert((call, agent.clone()));
            return true;
        }
        self.ring_phone(now, call, agent)
    }

    /// The agent's desktop answered an offer published on its stream.
    pub(super) fn offer_answer(
        &mut self,
        now: Instant,
        call: QueueCallId,
        agent: &AgentId,
        accept: bool,
    ) -> Result<(), ControlError> {
        if !self.queues.api_offers.remove(&(call, agent.clone())) {
            return Err(ControlError::new(
                ControlErrorKind::Conflict,
                format!("{call} is not offered to agent {agent}"),
            ));
        }
        if accept && self.ring_phone(now, call, agent) {
            info!(%agent, acd_call = %call, "offer accepted on the desktop");
            return Ok(());
        }
        let wall = self.wall(now);
        if let Some(q) = self.queues.calls.get_mut(&call) {
            q.who.record.offer_ended(agent, wall, OfferResult::Rejected);
        }
        if let Some(acd) = self.queues.acd.as_mut() {
            let _ = acd.rejected(now, call, agent);
        }
        info!(%agent, acd_call = %call, accept, "offer declined on the desktop (or no phone)");
        self.pump_acd(now);
        Ok(())
    }

    /// Rings the agent's phone with a call: our INVITE to its most recently
    /// registered reachable contact, sent where that REGISTER came from
    /// (phones behind NAT).
    fn ring_phone(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) -> bool {
        let Some(q) = self.queues.calls.get(&call) else {
            return false;
        };
        let (number, queue) = (q.who.number.clone(), q.queue.clone());
        let Some(binding) = self.agent_contact(agent.as_str()) else {
            return false;
        };
        let Some(leg) = self.new_leg() else {
            return false;
        };
        let flow = binding.flow.clone();
        let from = self.our_name_addr(&flow, &number, Some(format!("{number} ({queue})")));
        let to = self.our_name_addr(&flow, agent.as_str(), None);
        let invite = self.build_invite(&flow, binding.contact.uri.clone(), from, to, &leg.sdp);
        let (ports, sdp) = (leg.ports, leg.sdp);
        let Some(tx) = self.send_request(now, &invite, &flow, ClientPurpose::Offer) else {
            self.calls.release_ports(ports);
            return false;
        };
        info!(%agent, acd_call = %call, contact = %binding.key, "ringing agent");
        self.queues.ringing.insert(
            tx,
            Ringing {
                call,
                agent: agent.clone(),
                invite,
                flow,
                ports: Some(ports),
                local_sdp: sdp,
                ringing: false,
            },
        );
        true
    }

    /// Stops ringing an agent: CANCEL (RFC 3261 §9.1); its ports go back.
    fn withdraw_offer(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) {
        if self.queues.api_offers.remove(&(call, agent.clone())) {
            // Published only: nothing rings. The desktop's late answer gets
            // a conflict.
            self.offer_ended(now, call, agent);
            return;
        }
        let found = self
            .queues
            .ringing
            .iter_mut()
            .find(|(_, r)| r.call == call && &r.agent == agent && r.ports.is_some());
        let Some((&tx, ringing)) = found else {
            return;
        };
        if let Some(ports) = ringing.ports.take() {
            self.calls.release_ports(ports);
        }
        info!(%agent, acd_call = %call, "offer withdrawn");
        self.offer_ended(now, call, agent);
        if let Err(error) = self.tx.cancel(now, tx) {
            debug!(%error, "nothing to cancel");
        }
    }

    /// The ACD withdrew an offer: it rang too long, another agent answered
    /// (ring-all) or the caller left.
    fn offer_ended(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) {
        let wall = self.wall(now);
        if let Some(q) = self.queues.calls.get_mut(&call) {
            let result = if q.ending || q.agent.is_some() {
                OfferResult::Cancelled
            } else {
                OfferResult::RingTimeout
            };
            q.who.record.offer_ended(agent, wall, result);
        }
    }

    /// The ACK of an agent's 2xx, again for a retransmitted 2xx. True when
    /// the response was such a retransmission.
    pub(super) fn reack(&mut self, tx: ClientTxId, outcome: &ClientOutcome<'_>) -> bool {
        let ClientOutcome::Response(r) = outcome else {
            return false;
        };
        if !(200..300).contains(&r.status) {
            return false;
        }
        let Some((flow, ack)) = self.queues.acks.get(&tx) else {
            return false;
        };
        self.outputs.push_back(Output::Transmit {
            flow: flow.clone(),
            data: ack.clone(),
        });
        true
    }

    /// The INVITE transaction of an offer ended: no more 2xx to ACK.
    pub(super) fn offer_terminated(&mut self, tx: ClientTxId) {
        self.queues.acks.remove(&tx);
    }

    /// What an agent's phone answered to our offer.
    pub(super) fn offer_outcome(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        outcome: ClientOutcome<'_>,
    ) {
        match outcome {
            ClientOutcome::Response(r) if r.status < 200 => {
                if let Some(ringing) = self.queues.ringing.get_mut(&tx) {
                    if !ringing.ringing && r.status > 100 {
                        ringing.ringing = true;
                        debug!(agent = %ringing.agent, status = r.status, "agent's phone rings");
                        let event = Event::CallRinging {
                            call: ringing.call.0,
                            agent: ringing.agent.to_string(),
                        };
                        self.event(event);
                    }
                }
            }
            ClientOutcome::Response(r) if r.status < 300 => {
                if let Some(ringing) = self.queues.ringing.remove(&tx) {
                    self.agent_answered(now, tx, ringing, r);
                }
            }
            outcome => {
                let Some(ringing) = self.queues.ringing.remove(&tx) else {
                    return;
                };
                let Some(ports) = ringing.ports else {
                    // Withdrawn already: the ACD has moved on.
                    return;
                };
                self.calls.release_ports(ports);
                let status = outcome.status();
                info!(agent = %ringing.agent, status, "agent did not take the call");
                let result = match status {
                    486 | 600 | 603 => OfferResult::Rejected,
                    408 | 480 | 487 => OfferResult::RingTimeout,
                    _ => OfferResult::Failed,
                };
                let wall = self.wall(now);
                if let Some(q) = self.queues.calls.get_mut(&ringing.call) {
                    q.who.record.offer_ended(&ringing.agent, wall, result);
                }
                if let Some(acd) = self.queues.acd.as_mut() {
                    // 486 Busy Here, 600 Busy Everywhere, 603 Decline: the
                    // agent said no; anything else is a missed offer.
                    let result = if matches!(status, 486 | 600 | 603) {
                        acd.rejected(now, ringing.call, &ringing.agent)
                    } else {
                        acd.offer_timed_out(now, ringing.call, &ringing.agent)
                    };
                    if let Err(error) = result {
                        debug!(%error, "offer already settled");
                    }
                }
                self.pump_acd(now);
            }
        }
    }

    /// An agent's phone answered: ACK, then bridge if the ACD gives this
    /// agent the call, else BYE.
    fn agent_answered(&mut self, now: Instant, tx: ClientTxId, ringing: Ringing, r: &Response) {
        let Some(id) = self.accept_2xx(tx, &ringing.invite, &ringing.flow, r) else {
            self.settle_failed_answer(now, &ringing);
            return;
        };
        let Some(ports) = ringing.ports else {
            info!(agent = %ringing.agent, "answer after the offer was withdrawn: hanging up");
            self.send_bye(now, &id, ringing.flow.clone());
            return;
        };
        let Some(negotiated) = super::uac::negotiate(&ringing.local_sdp, &r.body) else {
            warn!(agent = %ringing.agent, "agent's answer has no usable SDP: hanging up");
            self.send_bye(now, &id, ringing.flow.clone());
            self.calls.release_ports(ports);
            self.settle_failed_answer(now, &ringing);
            return;
        };
        let accepted = match self.queues.acd.as_mut() {
            Some(acd) => acd.answered(now, ringing.call, &ringing.agent),
            None => Err(acd::AcdError::UnknownCall(ringing.call)),
        };
        let bridged = accepted
            .is_ok()
            .then(|| self.queues.calls.get(&ringing.call))
            .flatten()
            .filter(|q| q.agent.is_none())
            .map(|q| (q.who.session, q.who.dialog.clone()));
        let Some((session, caller)) = bridged else {
            // Ring-all: another agent was first; or the caller has gone.
            info!(agent = %ringing.agent, "answer for a call already taken or ended: hanging up");
            self.send_bye(now, &id, ringing.flow.clone());
            self.calls.release_ports(ports);
            self.pump_acd(now);
            return;
        };
        self.calls.add_leg(
            id.clone(),
            ringing.flow.clone(),
            ports,
            ringing.local_sdp.clone(),
            Some(caller.clone()),
            Role::Agent(ringing.call, ringing.agent.clone()),
        );
        self.open_leg(&id, session, LegId::Agent, negotiated, Feed::Other);
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session,
            leg: LegId::Caller,
            feed: Feed::Other,
        }));
        self.calls.set_partner(&caller, id.clone());
        let now_wall = self.wall(now);
        let Some(q) = self.queues.calls.get_mut(&ringing.call) else {
            return;
        };
        q.agent = Some((ringing.agent.clone(), id));
        q.who.record.answered(ringing.agent.clone(), now_wall);
        info!(call = %q.who.call_id, agent = %ringing.agent, queue = %q.queue, "call bridged");
        let queue = q.queue.to_string();
        // A transferred caller is recorded already: one file per call.
        let record = q.who.recording.is_none()
            && self
                .queues
                .settings
                .queue(&q.queue)
                .is_some_and(|c| c.record);
        let who = (
            q.who.number.clone(),
            q.who.dialled.clone(),
            format!("agent {}", ringing.agent),
        );
        let call_id = q.who.call_id.clone();
        let number = ringing.call.0;
        self.event(Event::CallAnswered {
            call: number,
            agent: ringing.agent.to_string(),
        });
        self.event(Event::QueueCallerLeft {
            call: number,
            queue,
            reason: "answered".to_owned(),
        });
        if record {
            let path = self.start_recording(session, &call_id, now_wall, who);
            self.event(Event::RecordingStarted {
                call: number,
                path: path.display().to_string(),
            });
            if let Some(q) = self.queues.calls.get_mut(&ringing.call) {
                q.who.record.recording(path.clone());
                q.who.recording = Some(path);
            }
        }
        self.pump_acd(now);
    }

    /// An answer that cannot become a bridge counts as a refused offer.
    fn settle_failed_answer(&mut self, now: Instant, ringing: &Ringing) {
        if let Some(ports) = ringing.ports {
            self.calls.release_ports(ports);
        }
        if let Some(acd) = self.queues.acd.as_mut() {
            let _ = acd.rejected(now, ringing.call, &ringing.agent);
        }
        self.pump_acd(now);
    }

    /// The ACD sends a caller away (queue full, waited too long, nobody
    /// logged in): to the queue's overflow route (another queue, a menu,
    /// a message then our BYE).
    fn leave_queue(&mut self, now: Instant, call: QueueCallId, outcome: CallOutcome, why: String) {
        let Some(mut q) = self.queues.calls.remove(&call) else {
            return;
        };
        if let Some(at) = q.next_announce {
            self.queues.announce_at.remove(&(at, call));
        }
        let route = self
            .queues
            .settings
            .queue(&q.queue)
            .map_or(Route::Hangup, |c| c.overflow.clone());
        if !matches!(route, Route::Queue(_) | Route::Ivr(_)) {
            let wall = self.wall(now);
            q.who
                .record
                .ended(wall, outcome, Some(HungUpBy::Gateway), why);
        }
        self.route_caller(now, q.who, route);
    }

    /// A prompt played to its end: greeting or announcement → music; a
    /// menu's prompt → its key timeout; a last message → our BYE.
    pub(super) fn role_playback_done(&mut self, now: Instant, id: &DialogId, role: &Role) {
        match role {
            Role::Goodbye => self.hang_up(now, id, "message played"),
            Role::Ivr => self.ivr_playback_done(now, id),
            Role::Caller(qid) => {
                let qid = *qid;
                let Some(q) = self.queues.calls.get(&qid) else {
                    return;
                };
                if q.agent.is_some() || q.waiting == Waiting::Music {
                    return;
                }
                let queue = q.queue.clone();
                let next = self.announce_due(now, &queue);
                let music = self
                    .queues
                    .settings
                    .queue(&queue)
                    .and_then(|c| self.queues.settings.prompt(&c.music));
                let Some(q) = self.queues.calls.get_mut(&qid) else {
                    return;
                };
                q.waiting = Waiting::Music;
                q.next_announce = next;
                let session = q.who.session;
                if let Some(at) = next {
                    self.queues.announce_at.insert((at, qid));
                }
                self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                    session,
                    leg: LegId::Caller,
                    feed: looping(music.as_ref()),
                }));
            }
            Role::Agent(..) | Role::Outbound(_) | Role::Forwarded(_) => {}
        }
    }

    /// A leg of a queued call is ending, before its partner is hung up:
    /// the first leg to end says who hung up.
    pub(super) fn role_leg_ending(&mut self, now: Instant, id: &DialogId, role: &Role, why: &str) {
        let (call, side) = match role {
            Role::Caller(call) => (call, HungUpBy::Caller),
            Role::Agent(call, _) => (call, HungUpBy::Agent),
            Role::Ivr => return self.ivr_leg_ending(now, id, why),
            Role::Outbound(side) => return self.outbound_leg_ending(now, id, *side, why),
            Role::Forwarded(call) => return self.forwarded_leg_ending(now, *call, id, why),
            Role::Goodbye => return,
        };
        let wall = self.wall(now);
        let Some(q) = self.queues.calls.get_mut(call) else {
            return;
        };
        if matches!(role, Role::Caller(_)) {
            q.ending = true;
        }
        // The BYE came from this leg's phone; anything else is ours.
        let by = if why == BYE_RECEIVED {
            side
        } else {
            HungUpBy::Gateway
        };
        let outcome = match (&q.agent, by) {
            (Some(_), _) => CallOutcome::Answered,
            (None, HungUpBy::Caller) => CallOutcome::Abandoned,
            (None, _) => CallOutcome::Failed,
        };
        q.who.record.ended(wall, outcome, Some(by), why);
    }

    /// A leg of a queued call ended (BYE either way, dead RTP, shutdown).
    pub(super) fn role_leg_ended(&mut self, now: Instant, role: &Role) {
        let call = match role {
            Role::Caller(call) => *call,
            Role::Agent(call, _) => *call,
            Role::Ivr | Role::Goodbye | Role::Outbound(_) | Role::Forwarded(_) => return,
        };
        if let Some(acd) = self.queues.acd.as_mut() {
            if let Err(error) = acd.hangup(now, call) {
                debug!(%error, "call already gone from the ACD");
            }
        }
        self.pump_acd(now);
        if let Role::Caller(call) = role {
            if let Some(mut q) = self.queues.calls.remove(call) {
                if let Some(at) = q.next_announce {
                    self.queues.announce_at.remove(&(at, *call));
                }
                let wrap_up = self.queues.settings.queue(&q.queue).map(|c| c.wrap_up);
                if let (Some(wrap_up), Some(_)) = (wrap_up, &q.agent) {
                    q.who.record.wrap_up(wrap_up);
                }
                let legs_open = if q.agent.is_some() { 2 } else { 1 };
                self.close_record(q.who.session, q.who.record, legs_open, Some(call.0));
            }
        }
    }

    /// A caller's record waits for the media reports of its `legs_open`
    /// legs, then is written.
    pub(super) fn close_record(
        &mut self,
        session: SessionId,
        record: CallRecordBuilder,
        legs_open: u8,
        call: Option<u64>,
    ) {
        self.queues.closing.insert(
            session,
            Closing {
                record,
                legs_open,
                call,
            },
        );
    }

    /// A leg's media closed with its statistics (`None`: it never opened):
    /// once every leg of an ended call has reported, its record is written.
    pub(super) fn role_leg_closed(
        &mut self,
        session: SessionId,
        leg: LegId,
        report: Option<&LegReport>,
    ) {
        let Some(closing) = self.queues.closing.get_mut(&session) else {
            return;
        };
        if let Some(report) = report {
            self.queues.rtp.lost += u64::try_from(report.stats.lost).unwrap_or(0);
            self.queues.rtp.jitter_sum += report.stats.jitter_ms;
            self.queues.rtp.legs += 1;
            match leg {
                LegId::Caller => closing.record.caller_quality(LegQuality::from(report)),
                LegId::Agent => closing.record.agent_quality(LegQuality::from(report)),
            }
        }
        closing.legs_open = closing.legs_open.saturating_sub(1);
        if closing.legs_open == 0 {
            if let Some(done) = self.queues.closing.remove(&session) {
                self.write_record(done.record, done.call);
            }
        }
    }

    /// Writes every record still waiting for media reports (shutdown: the
    /// media workers may stop before they report).
    pub(super) fn flush_records(&mut self) {
        let pending: Vec<Closing> = self.queues.closing.drain().map(|(_, c)| c).collect();
        for closing in pending {
            self.write_record(closing.record, closing.call);
        }
    }

    fn write_record(&mut self, record: CallRecordBuilder, call: Option<u64>) {
        let record = record.finish();
        let queue = record
            .queue
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        *self
            .queues
            .outcomes
            .entry((queue, record.outcome.as_str().to_owned()))
            .or_default() += 1;
        if let Some(call) = call {
            self.event(Event::CallEnded {
                call,
                agent: record.agent.as_ref().map(ToString::to_string),
                outcome: record.outcome.as_str().to_owned(),
            });
            if let Some(path) = &record.recording {
                self.event(Event::RecordingCompleted {
                    call,
                    path: path.display().to_string(),
                });
            }
        }
        info!(
            call = %record.id,
            outcome = record.outcome.as_str(),
            agent = record.agent.as_ref().map(AgentId::as_str).unwrap_or(""),
            wait_ms = record.wait.as_millis() as u64,
            talk_ms = record.talk.as_millis() as u64,
            hold_ms = record.hold.as_millis() as u64,
            "call record"
        );
        self.outputs.push_back(Output::CallRecord(Box::new(record)));
    }

    /// The agent's re-INVITE changed the direction: `held` is whether the
    /// agent now holds the caller (RFC 3264 §8.4: sendonly or inactive from
    /// the agent), who then hears the hold music instead of silence.
    pub(super) fn role_direction(&mut self, now: Instant, id: &DialogId, role: &Role, held: bool) {
        if role == &Role::Outbound(super::outbound::Side::Agent) {
            // The customer of an outbound call hears the hold music too.
            if let Some(session) = self.calls.session_of(id) {
                let feed = self.hold_feed(held);
                self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                    session,
                    leg: LegId::Caller,
                    feed,
                }));
                self.outbound_hold(now, session, held);
            }
            return;
        }
        let Role::Agent(call, _) = role else {
            return;
        };
        if let Err(error) = self.set_hold(now, *call, held) {
            debug!(%error, "hold not applied");
        }
    }

    /// What the held party hears: the hold music while held, else the other
    /// party.
    fn hold_feed(&self, held: bool) -> Feed {
        if !held {
            return Feed::Other;
        }
        let music = self.queues.settings.hold_music.as_ref();
        looping(music.and_then(|m| self.queues.settings.prompt(m)).as_ref())
    }

    /// A queued call put on hold (the agent's phone, or the control API) or
    /// resumed: the caller hears the hold music meanwhile, the hold time is
    /// counted, and the ACD knows.
    pub(super) fn set_hold(
        &mut self,
        now: Instant,
        call: QueueCallId,
        held: bool,
    ) -> Result<(), ControlError> {
        let wall = self.wall(now);
        let Some(q) = self.queues.calls.get_mut(&call) else {
            return Err(ControlError::new(
                ControlErrorKind::NotFound,
                format!("no {call}"),
            ));
        };
        let Some((agent, _)) = q.agent.clone() else {
            return Err(ControlError::new(
                ControlErrorKind::Conflict,
                format!("{call} is not answered yet"),
            ));
        };
        if q.held == held {
            return Ok(());
        }
        q.held = held;
        if held {
            q.who.record.hold_started(wall);
        } else {
            q.who.record.hold_ended(wall);
        }
        let session = q.who.session;
        let feed = self.hold_feed(held);
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session,
            leg: LegId::Caller,
            feed,
        }));
        if let Some(acd) = self.queues.acd.as_mut() {
            let result = if held {
                acd.hold(now, &agent)
            } else {
                acd.unhold(now, &agent)
            };
            if let Err(error) = result {
                debug!(%error, "hold not counted");
            }
        }
        info!(%agent, held, "agent hold");
        let event = if held {
            Event::CallHeld {
                call: call.0,
                agent: agent.to_string(),
            }
        } else {
            Event::CallResumed {
                call: call.0,
                agent: agent.to_string(),
            }
        };
        self.event(event);
        self.pump_acd(now);
        Ok(())
    }

    /// Answers an agent's feature code, if the dialled number is one:
    /// `*21` log in (or back from a pause), `*22` log out, `*23` pause
    /// (`*23` + 1 break, 2 lunch, 3 training). The phone hears two rising
    /// beeps when done, three low ones when refused (e.g. already logged in).
    pub(super) fn feature_call(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        user: &str,
    ) -> Option<Response> {
        let dialled = Self::dialled(request);
        let code = dialled.get(..3)?;
        let rest = dialled.get(3..).unwrap_or("");
        let agent: AgentId = user.parse().ok()?;
        let acd = self.queues.acd.as_mut()?;
        let result = match (code, rest) {
            (FEATURE_LOGIN, "") => match acd.agent_state(&agent) {
                AgentState::Paused(_) => acd.unpause(now, &agent),
                _ => acd.login(now, &agent),
            },
            (FEATURE_LOGOUT, "") => acd.logout(now, &agent),
            (FEATURE_PAUSE, reason) => {
                let reason = match reason {
                    "" | "1" => "break",
                    "2" => "lunch",
                    "3" => "training",
                    _ => return None,
                };
                acd.pause(now, &agent, PauseReason::new(reason))
            }
            _ => return None,
        };
        let done = match result {
            Ok(()) => true,
            Err(error) => {
                info!(%agent, %error, "feature code refused");
                false
            }
        };
        info!(%agent, code = %dialled, done, "feature code");
        self.pump_acd(now);
        let player = Player::new(confirmation(done), false);
        Some(self.answer_call(
            now,
            request,
            source,
            &dialled,
            PendingStart::Feature(player),
        ))
    }
}

/// The reason `end_call` is given for a BYE from the leg's own phone
/// (whichever side that is: the record's `hung_up_by` names it).
pub(super) const BYE_RECEIVED: &str = "BYE received";

/// Log in, or come back from a pause.
const FEATURE_LOGIN: &str = "*21";
const FEATURE_LOGOUT: &str = "*22";
/// Pause; a digit after it gives the reason.
const FEATURE_PAUSE: &str = "*23";

/// Two rising beeps (done) or three low ones (refused).
fn confirmation(done: bool) -> Vec<PlayItem> {
    let beep = |freq_hz: f64, ms: u64| PlayItem::Tone {
        freq_hz,
        amplitude: 8000,
        duration: Duration::from_millis(ms),
    };
    let gap = || PlayItem::Silence(Duration::from_millis(120));
    let mut items = vec![PlayItem::Silence(Duration::from_millis(300))];
    if done {
        items.extend([beep(660.0, 180), gap(), beep(990.0, 250)]);
    } else {
        items.extend([
            beep(400.0, 150),
            gap(),
            beep(400.0, 150),
            gap(),
            beep(400.0, 150),
        ]);
    }
    items.push(PlayItem::Silence(Duration::from_millis(300)));
    items
}
