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

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::super::dialog::{Dialog, DialogId};
use super::super::flow::Flow;
use super::super::message::{
    CSeq, CallId as SipCallId, Contacts, HeaderName, Headers, Method, NameAddr, Request, Response,
    SipUri, Uri, Via,
};
use super::super::transaction::ClientTxId;
use super::calls::PendingStart;
use super::routing::Caller;
use super::{ClientOutcome, ClientPurpose, Endpoint, Output};
use crate::call::acd::{self, Acd, AcdConfig, AgentState, OverflowReason, PauseReason};
use crate::call::announce::{position_announcement, AnnouncementPrompts};
use crate::call::record::{CallOutcome, CallRecordBuilder, HungUpBy, LegQuality, OfferResult};
use crate::config::{AgentId, DialPlan, IvrMenu, IvrName, PromptName, Queue, QueueName, Route};
use crate::media::control::LegReport;
use crate::media::control::MediaCommand;
use crate::media::player::{PlayItem, Player, Prompt};
use crate::media::ports::PortPair;
use crate::media::relay::LegId;
use crate::media::sdp::{accept_answer, make_offer, Direction, LocalMedia, SessionDescription};
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

/// A call whose legs have ended, waiting for their media reports before its
/// record is written.
#[derive(Debug)]
struct Closing {
    record: CallRecordBuilder,
    legs_open: u8,
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
    next: u64,
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
            next: 1,
        }
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
        let qid = acd::CallId(self.queues.next);
        self.queues.next += 1;
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
                } => info!(acd_call = %call, %queue, position, "waiting"),
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
                    if let Some(q) = self.queues.calls.get_mut(&call) {
                        let why = "caller hung up while queued";
                        q.who.record.ended(
                            wall,
                            CallOutcome::Abandoned,
                            Some(HungUpBy::Caller),
                            why,
                        );
                    }
                }
                acd::Output::Agent(event) => info!(
                    agent = %event.agent,
                    from = ?event.from,
                    to = ?event.to,
                    why = ?event.why,
                    "agent state"
                ),
            }
        }
    }

    /// Rings one agent with a call: our INVITE to the agent's most recently
    /// registered reachable contact, sent where that REGISTER came from
    /// (phones behind NAT). False when there is nothing to ring.
    fn offer(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) -> bool {
        let Some(q) = self.queues.calls.get(&call) else {
            return false;
        };
        let Some(binding) = self
            .registrar
            .contacts(agent.as_str())
            .iter()
            .filter(|b| b.reachable)
            .max_by_key(|b| b.expires_at)
            .cloned()
        else {
            info!(%agent, "agent has no reachable phone registered");
            return false;
        };
        let Some(settings) = self.calls.settings().cloned() else {
            return false;
        };
        let Some(ports) = self.calls.allocate_ports() else {
            warn!("no RTP port pair free: agent not rung");
            return false;
        };
        let local = LocalMedia {
            address: settings.address,
            rtp_port: ports.rtp(),
            session_id: rand::random::<u32>().into(),
            session_version: 1,
            direction: Direction::SendRecv,
            ptime: None,
            rtcp_mux: false,
        };
        let sdp = make_offer(&local, &settings.preferences);
        let flow = binding.flow.clone();
        let host = self.local_host(&flow);
        let mut from = NameAddr::new(
            SipUri::new(host.clone())
                .with_user(if q.who.number.is_empty() {
                    "anonymous"
                } else {
                    &q.who.number
                })
                .into(),
        )
        .with_tag(&self.ids.tag());
        from.display = Some(format!("{} ({})", q.who.number, q.queue));
        let to = NameAddr::new(
            SipUri::new(super::local_host_of(&self.config.domain, &flow))
                .with_user(agent.as_str())
                .into(),
        );
        let mut headers = Headers::new(
            from,
            to,
            SipCallId::new(self.ids.call_id(&self.config.domain)),
            CSeq {
                seq: 1,
                method: Method::Invite,
            },
        );
        let mut via = Via::new(
            flow.transport.as_str(),
            host.clone(),
            Some(flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        headers.via.push(via);
        headers.max_forwards = Some(70);
        let contact = SipUri::new(host)
            .with_user("switchboard")
            .with_port(flow.local.port());
        headers.contact = Contacts::List(vec![NameAddr::new(contact.into())]);
        headers.push(HeaderName::Allow, super::requests::ALLOW);
        headers.push(HeaderName::UserAgent, self.config.user_agent.clone());
        headers.push(HeaderName::ContentType, "application/sdp");
        let target: Uri = binding.contact.uri.clone();
        let invite = Request {
            method: Method::Invite,
            uri: target,
            headers,
            body: Bytes::from(sdp.to_string()),
        };
        let reliable = flow.is_reliable();
        match self
            .tx
            .send_request(now, invite.clone(), flow.clone(), reliable)
        {
            Ok(tx) => {
                info!(%agent, acd_call = %call, contact = %binding.key, "ringing agent");
                let wall = self.wall(now);
                if let Some(q) = self.queues.calls.get_mut(&call) {
                    q.who.record.offered(agent.clone(), wall);
                }
                self.clients.insert(tx, ClientPurpose::Offer);
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
            Err(error) => {
                tracing::error!(%error, "offer INVITE not sent");
                self.calls.release_ports(ports);
                false
            }
        }
    }

    /// Stops ringing an agent: CANCEL (RFC 3261 §9.1); its ports go back.
    fn withdraw_offer(&mut self, now: Instant, call: QueueCallId, agent: &AgentId) {
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
        let wall = self.wall(now);
        if let Some(q) = self.queues.calls.get_mut(&call) {
            // The ACD withdraws an offer when it rang too long, when another
            // agent answered (ring-all) or when the caller left.
            let result = if q.ending || q.agent.is_some() {
                OfferResult::Cancelled
            } else {
                OfferResult::RingTimeout
            };
            q.who.record.offer_ended(agent, wall, result);
        }
        if let Err(error) = self.tx.cancel(now, tx) {
            debug!(%error, "nothing to cancel");
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
                let status = match outcome {
                    ClientOutcome::Response(r) => r.status,
                    ClientOutcome::Timeout => 408,
                    ClientOutcome::TransportError => 503,
                };
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
        let dialog = match Dialog::uac(&ringing.invite, r) {
            Ok(d) => d,
            Err(error) => {
                warn!(%error, agent = %ringing.agent, "agent's 2xx forms no dialog");
                self.settle_failed_answer(now, &ringing);
                return;
            }
        };
        let id = dialog.id().clone();
        let mut via = Via::new(
            ringing.flow.transport.as_str(),
            self.local_host(&ringing.flow),
            Some(ringing.flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        let ack = Bytes::from(dialog.ack_for_2xx(1, via).to_bytes());
        self.outputs.push_back(Output::Transmit {
            flow: ringing.flow.clone(),
            data: ack.clone(),
        });
        self.queues.acks.insert(tx, (ringing.flow.clone(), ack));
        if let Err(error) = self.dialogs.insert(dialog) {
            warn!(%error, "agent dialog not kept");
            self.settle_failed_answer(now, &ringing);
            return;
        }
        let Some(ports) = ringing.ports else {
            info!(agent = %ringing.agent, "answer after the offer was withdrawn: hanging up");
            self.send_bye(now, &id, ringing.flow.clone());
            return;
        };
        let negotiated = SessionDescription::parse_bytes(&r.body)
            .ok()
            .and_then(|answer| accept_answer(&ringing.local_sdp, &answer).ok());
        let Some(negotiated) = negotiated else {
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
        let record = self
            .queues
            .settings
            .queue(&q.queue)
            .is_some_and(|c| c.record);
        if record {
            let who = (
                q.who.number.clone(),
                q.who.dialled.clone(),
                format!("agent {}", ringing.agent),
            );
            let call_id = q.who.call_id.clone();
            let path = self.start_recording(session, &call_id, now_wall, who);
            if let Some(q) = self.queues.calls.get_mut(&ringing.call) {
                q.who.record.recording(path);
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
            Role::Agent(..) | Role::Outbound(_) => {}
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
            Role::Ivr | Role::Goodbye | Role::Outbound(_) => return,
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
                self.close_record(q.who.session, q.who.record, legs_open);
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
    ) {
        self.queues
            .closing
            .insert(session, Closing { record, legs_open });
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
            match leg {
                LegId::Caller => closing.record.caller_quality(LegQuality::from(report)),
                LegId::Agent => closing.record.agent_quality(LegQuality::from(report)),
            }
        }
        closing.legs_open = closing.legs_open.saturating_sub(1);
        if closing.legs_open == 0 {
            if let Some(done) = self.queues.closing.remove(&session) {
                self.write_record(done.record);
            }
        }
    }

    /// Writes every record still waiting for media reports (shutdown: the
    /// media workers may stop before they report).
    pub(super) fn flush_records(&mut self) {
        let pending: Vec<Closing> = self.queues.closing.drain().map(|(_, c)| c).collect();
        for closing in pending {
            self.write_record(closing.record);
        }
    }

    fn write_record(&mut self, record: CallRecordBuilder) {
        let record = record.finish();
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
                let feed = if held {
                    let music = self.queues.settings.hold_music.as_ref();
                    looping(music.and_then(|m| self.queues.settings.prompt(m)).as_ref())
                } else {
                    Feed::Other
                };
                self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                    session,
                    leg: LegId::Caller,
                    feed,
                }));
                self.outbound_hold(now, session, held);
            }
            return;
        }
        let Role::Agent(call, agent) = role else {
            return;
        };
        let wall = self.wall(now);
        let Some(q) = self.queues.calls.get_mut(call) else {
            return;
        };
        if q.held == held {
            return;
        }
        q.held = held;
        if held {
            q.who.record.hold_started(wall);
        } else {
            q.who.record.hold_ended(wall);
        }
        let session = q.who.session;
        let feed = if held {
            let music = self.queues.settings.hold_music.as_ref();
            looping(music.and_then(|m| self.queues.settings.prompt(m)).as_ref())
        } else {
            Feed::Other
        };
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session,
            leg: LegId::Caller,
            feed,
        }));
        if let Some(acd) = self.queues.acd.as_mut() {
            let result = if held {
                acd.hold(now, agent)
            } else {
                acd.unhold(now, agent)
            };
            if let Err(error) = result {
                debug!(%error, "hold not counted");
            }
        }
        info!(%agent, held, "agent hold");
        self.pump_acd(now);
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
