//! The gateway's SIP endpoint: the transaction user core of a back-to-back
//! user agent. It owns the transaction layer, the registrar and digest
//! authentication, decides the answer to every request, and tells the
//! runtime what to transmit and when to wake it. Sans-IO: it is driven with
//! `(now, input)` and never touches a socket or a clock.

mod calls;
#[cfg(test)]
mod calls_tests;
mod control;
#[cfg(test)]
mod flow_tests;
mod forward;
mod ids;
mod in_dialog;
mod originate;
mod outbound;
mod qualify;
mod queue_calls;
mod register;
mod requests;
mod routing;
#[cfg(test)]
mod tests;
mod trunk_auth;
mod trunks;
mod uac;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::media::control::{MediaCommand, MediaEvent};
use crate::media::sdp::Preferences;

pub use calls::MediaSettings;
pub use queue_calls::QueueSettings;

use super::auth::{
    ConfigError as AuthConfigError, DigestVerifier, FailureLimiter, UserSecret, VerifierConfig,
};
use super::dialog::Dialogs;
use super::flow::Flow;
use super::message::{
    parse, reason_phrase, HeaderName, Host, Message, Method, Request, Response, BRANCH_MAGIC,
};
use super::registrar::{Registrar, RegistrarConfig, RegistrarEvent};
use super::registration::TrunkRegistration;
use super::transaction::{ClientTxId, TimerConfig, TransactionLayer, TxEvent};
use super::transport::Transport;
use ids::IdGenerator;

/// Nonces whose counts we remember: a busy registrar's nonces in flight
/// (each is used for one REGISTER refresh cycle).
const REPLAY_CAPACITY: usize = 200_000;
/// Sources the brute-force limiter tracks at once.
const LIMITER_CAPACITY: usize = 100_000;

/// What the endpoint needs from the configuration, in its own terms.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub domain: String,
    pub user_agent: String,
    pub timers: TimerConfig,
    pub registrar: RegistrarConfig,
    pub realm: String,
    pub algorithms: Vec<super::auth::Algorithm>,
    pub nonce_ttl: std::time::Duration,
    pub max_failures: u32,
    pub failure_window: std::time::Duration,
    pub block: std::time::Duration,
    /// `(agent id, password)`.
    pub agents: Vec<(String, String)>,
    /// What each agent may dial through the trunk.
    pub dial_permissions: HashMap<crate::config::AgentId, Vec<crate::config::DialPermission>>,
    /// Extensions and DIDs we know (queues, agents): calls to them are
    /// answered 480 until call handling exists; others get 404.
    pub known_targets: Vec<String>,
    /// The carriers' trunks: where their requests come from, and the
    /// registrations some of them want.
    pub trunks: Vec<crate::config::Trunk>,
    /// Our listening sockets (the real ports once bound): requests we
    /// originate leave from these.
    pub listen: Vec<(Transport, SocketAddr)>,
    /// Media for the calls we answer; `None` answers none (tests of the
    /// signalling alone).
    pub media: Option<calls::MediaSettings>,
    /// The queues and what they play (prompts loaded by the runtime).
    pub queues: QueueSettings,
}

impl EndpointConfig {
    pub fn from_config(config: &Config) -> Self {
        let mut known_targets: Vec<String> =
            config.agents.iter().map(|a| a.id.to_string()).collect();
        for q in &config.queues {
            known_targets.extend(q.extension.iter().map(ToString::to_string));
            known_targets.extend(q.dids.iter().map(ToString::to_string));
        }
        for t in &config.trunks {
            known_targets.extend(t.dids.iter().map(ToString::to_string));
        }
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        EndpointConfig {
            domain: config.sip.domain.clone(),
            user_agent: config.sip.user_agent.clone(),
            timers: TimerConfig {
                t1: config.sip.timers.t1,
                t2: config.sip.timers.t2,
                t4: config.sip.timers.t4,
            },
            registrar: RegistrarConfig {
                min_expires: secs(config.registrar.min_expires),
                max_expires: secs(config.registrar.max_expires),
                default_expires: secs(config.registrar.default_expires),
                max_contacts: config.registrar.max_contacts_per_agent,
                qualify_interval: config.registrar.qualify_interval,
                qualify_failures: config.registrar.qualify_failures,
            },
            realm: config.auth.realm.clone(),
            algorithms: config.auth.algorithms.clone(),
            nonce_ttl: config.auth.nonce_ttl,
            max_failures: config.auth.max_failures,
            failure_window: config.auth.failure_window,
            block: config.auth.block_duration,
            agents: config
                .agents
                .iter()
                .map(|a| (a.id.to_string(), a.password.expose().to_owned()))
                .collect(),
            dial_permissions: config
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.dial_permissions.clone()))
                .collect(),
            known_targets,
            trunks: config.trunks.clone(),
            listen: config
                .sip
                .listen
                .iter()
                .map(|l| (l.transport, l.address))
                .collect(),
            media: Some(calls::MediaSettings {
                address: config.media.address,
                ports: config.media.rtp_ports.clone(),
                preferences: Preferences::new(config.media.codecs.clone(), true)
                    .unwrap_or_default(),
                test_extensions: config.test_extensions.clone(),
                prompts: HashMap::new(),
                max_legs: None,
            }),
            queues: QueueSettings {
                queues: config
                    .queues
                    .iter()
                    .cloned()
                    .chain(config.agents.iter().filter_map(|a| {
                        let busy = "all-agents-busy".parse().ok()?;
                        crate::config::Queue::personal(&a.id, config.media.hold_music.clone(), busy)
                    }))
                    .collect(),
                ivr: config.ivr.clone(),
                dial_plan: config.dial_plan.clone(),
                hold_music: Some(config.media.hold_music.clone()),
                sounds_dir: config.media.sounds_dir.clone(),
                prompts: HashMap::new(),
                api_agents: config
                    .agents
                    .iter()
                    .filter(|a| a.handoff == crate::config::Handoff::Api)
                    .map(|a| a.id.clone())
                    .collect(),
            },
        }
    }
}

/// Something that happened on the network.
#[derive(Debug, Clone)]
pub enum Input {
    /// A datagram or a framed stream message.
    Message { flow: Flow, data: Bytes },
    /// A message over the size limit; `head` is its header block if known.
    Oversized { flow: Flow, head: Bytes },
    /// A media worker reports on a session.
    Media(MediaEvent),
    /// A request of the control API; answered with
    /// [`Output::ControlReply`] carrying the same `id`.
    Control {
        id: u64,
        command: crate::control::Command,
    },
}

/// Something for the runtime to do.
#[derive(Debug, Clone)]
pub enum Output {
    Transmit {
        flow: Flow,
        data: Bytes,
    },
    /// A registration changed: persist or log it.
    Registrar(RegistrarEvent),
    /// For the media worker owning the command's session.
    Media(MediaCommand),
    /// A call ended: store its record.
    CallRecord(Box<crate::call::record::CallRecord>),
    /// The answer to [`Input::Control`] `id`.
    ControlReply {
        id: u64,
        result: Result<crate::control::Reply, crate::control::ControlError>,
    },
    /// For the event stream and webhooks.
    Event(crate::control::Event),
}

/// What a pending client transaction was for.
#[derive(Debug, Clone)]
enum ClientPurpose {
    Qualify {
        aor: String,
        contact: String,
    },
    /// A REGISTER of the trunk registration at this index.
    TrunkRegister(usize),
    /// Our BYE ending a call: whatever the answer, the call is over for
    /// us. The request and where it went are kept so that a carrier's
    /// challenge can be answered (the carrier bills until it accepts a BYE).
    Bye(Box<(Request, Flow)>),
    /// Our INVITE offering a queued call to an agent.
    Offer,
    /// Our INVITE to the trunk for an agent's outbound call.
    Outbound,
    /// Our INVITE of a click-to-call (to the agent, then to the trunk).
    Originate,
    /// Our INVITE to the number a caller is transferred to.
    Forward,
}

pub struct Endpoint {
    config: EndpointConfig,
    tx: TransactionLayer<Flow>,
    registrar: Registrar,
    verifier: DigestVerifier,
    limiter: FailureLimiter,
    users: HashMap<String, UserSecret>,
    ids: IdGenerator,
    clients: HashMap<ClientTxId, ClientPurpose>,
    /// The carrier's challenges answered on our trunk INVITEs, by the
    /// transaction of the authenticated INVITE (see `trunk_auth`).
    trunk_auth: HashMap<ClientTxId, crate::sip::auth::ClientAuth>,
    dialogs: Dialogs,
    trunks: Vec<(TrunkRegistration, Flow)>,
    calls: calls::Calls,
    queues: queue_calls::QueueCalls,
    outbound: outbound::Outbound,
    originate: originate::Originate,
    forwards: forward::Forwards,
    /// The wall-clock time of the last input, to date what happens at a
    /// monotonic `now` (call records, recordings).
    clock: (Instant, SystemTime),
    /// Responses built, by status code (metrics).
    responses: std::collections::BTreeMap<u16, u64>,
    outputs: VecDeque<Output>,
}

impl Endpoint {
    /// Fails only when the authentication settings are unusable (the
    /// configuration validation rules them out first).
    pub fn new(config: EndpointConfig, now: Instant) -> Result<Self, AuthConfigError> {
        let verifier = DigestVerifier::new(
            VerifierConfig {
                realm: config.realm.clone(),
                algorithms: config.algorithms.clone(),
                nonce_ttl: config.nonce_ttl,
                key: None,
                replay_capacity: REPLAY_CAPACITY,
            },
            now,
        )?;
        let users = config
            .agents
            .iter()
            .map(|(id, password)| (id.clone(), UserSecret::new(id, &config.realm, password)))
            .collect();
        let mut ids = IdGenerator::new();
        Ok(Endpoint {
            tx: TransactionLayer::new(config.timers),
            registrar: Registrar::new(config.registrar.clone()),
            verifier,
            limiter: FailureLimiter::new(
                config.max_failures,
                config.failure_window,
                config.block,
                LIMITER_CAPACITY,
            ),
            users,
            trunks: trunks::build(&config, &mut ids, now),
            ids,
            clients: HashMap::new(),
            trunk_auth: HashMap::new(),
            dialogs: Dialogs::new(),
            calls: calls::Calls::new(config.media.clone()),
            queues: queue_calls::QueueCalls::new(config.queues.clone()),
            outbound: outbound::Outbound::default(),
            originate: originate::Originate::default(),
            forwards: forward::Forwards::default(),
            clock: (now, SystemTime::now()),
            responses: std::collections::BTreeMap::new(),
            outputs: VecDeque::new(),
            config,
        })
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    pub fn handle_input(&mut self, now: Instant, wall: SystemTime, input: Input) {
        self.clock = (now, wall);
        match input {
            Input::Message { flow, data } => self.handle_message(now, wall, flow, &data),
            Input::Oversized { flow, head } => self.handle_oversized(flow, &head),
            Input::Media(event) => self.media_event(now, event),
            Input::Control { id, command } => {
                let result = self.control(now, command);
                self.outputs.push_back(Output::ControlReply { id, result });
            }
        }
        self.pump(now, wall);
    }

    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.clock = (now, wall);
        self.tx.handle_timeout(now);
        for probe in self.registrar.handle_timeout(now) {
            self.send_qualify(now, probe);
        }
        self.drive_trunks(now);
        self.calls_handle_timeout(now);
        if self.queues.poll_timeout().is_some_and(|t| t <= now) {
            self.queues_handle_timeout(now);
        }
        self.pump(now, wall);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tx.poll_timeout(),
            self.registrar.poll_timeout(),
            self.trunks_timeout(),
            self.calls_timeout(),
            self.queues.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_message(&mut self, now: Instant, wall: SystemTime, flow: Flow, data: &[u8]) {
        match parse(data) {
            Ok(Message::Request(mut request)) => {
                let reply_to = stamp_via(&mut request, &flow);
                // RFC 4475 §3.2.1: a branch that is only the magic cookie
                // identifies no transaction; answered 400, statelessly.
                if request.headers.top_via().and_then(|v| v.branch()) == Some(BRANCH_MAGIC)
                    && request.method != Method::Ack
                {
                    let data = self.reply(&request, 400).to_bytes();
                    self.outputs.push_back(Output::Transmit {
                        flow: reply_to,
                        data: data.into(),
                    });
                    return;
                }
                // RFC 3261 §8.2.7: a REGISTER without credentials changes
                // nothing and is answered statelessly (a challenge, mostly).
                // Half of every registration is such a request: no
                // transaction state is kept for it, and a flood of them
                // costs no memory. A retransmission is simply challenged again.
                if request.method == Method::Register
                    && request.headers.get(&HeaderName::Authorization).is_none()
                {
                    let response = self.answer(now, wall, &request, &reply_to);
                    self.outputs.push_back(Output::Transmit {
                        flow: reply_to,
                        data: response.to_bytes().into(),
                    });
                    return;
                }
                let reliable = reply_to.is_reliable();
                self.tx.receive_request(now, request, reply_to, reliable);
            }
            Ok(Message::Response(response)) => self.tx.receive_response(now, response),
            Err(error) => {
                debug!(remote = %flow.remote, %error, "unparseable message");
                if let Some(head) = &error.answerable {
                    let status = error.status();
                    let warning = format!(
                        "399 {} \"{}\"",
                        self.config.domain,
                        error.kind.to_string().replace('"', "'")
                    );
                    let data = head.response_bytes(
                        status,
                        reason_phrase(status),
                        &[("Server", &self.config.user_agent), ("Warning", &warning)],
                    );
                    self.outputs.push_back(Output::Transmit {
                        flow,
                        data: data.into(),
                    });
                }
            }
        }
    }

    /// RFC 3261 §18.1.1 / §18.3: a message over the limit is answered 513
    /// when its header block can be read.
    fn handle_oversized(&mut self, flow: Flow, head: &[u8]) {
        let answerable = match parse(head) {
            Ok(Message::Request(r)) => Some(r.response(513, Some(&self.ids.tag())).to_bytes()),
            Err(e) => e.answerable.map(|h| {
                h.response_bytes(
                    513,
                    reason_phrase(513),
                    &[("Server", &self.config.user_agent)],
                )
            }),
            Ok(Message::Response(_)) => None,
        };
        match answerable {
            Some(data) => self.outputs.push_back(Output::Transmit {
                flow,
                data: data.into(),
            }),
            None => debug!(remote = %flow.remote, "oversized message dropped"),
        }
    }

    /// Drains the transaction layer and the registrar into outputs.
    fn pump(&mut self, now: Instant, wall: SystemTime) {
        while let Some(event) = self.tx.poll_event() {
            self.on_tx_event(now, wall, event);
        }
        if !self.trunks.is_empty() {
            // A challenge or a 423 from a carrier is answered at once.
            self.drive_trunks(now);
        }
        while let Some(t) = self.tx.poll_transmit() {
            self.outputs.push_back(Output::Transmit {
                flow: t.dest,
                data: t.data,
            });
        }
        while let Some(event) = self.registrar.poll_event() {
            match &event {
                RegistrarEvent::Updated { aor, binding } => {
                    debug!(%aor, contact = %binding.key, "binding updated")
                }
                RegistrarEvent::Removed { aor, contact } => {
                    info!(%aor, %contact, "binding removed")
                }
                RegistrarEvent::Reachability {
                    aor,
                    contact,
                    reachable: true,
                } => {
                    info!(%aor, %contact, "contact reachable again")
                }
                RegistrarEvent::Reachability {
                    aor,
                    contact,
                    reachable: false,
                } => {
                    warn!(%aor, %contact, "contact unreachable (qualify)")
                }
            }
            self.outputs.push_back(Output::Registrar(event));
        }
    }

    fn on_tx_event(&mut self, now: Instant, wall: SystemTime, event: TxEvent<Flow>) {
        match event {
            TxEvent::Request {
                tx,
                request,
                source,
            } => {
                let response = self.answer(now, wall, &request, &source);
                let provisional = response.status < 200;
                if let Err(e) = self.tx.respond(now, tx, response) {
                    warn!(error = %e, "response to a finished transaction");
                }
                if provisional {
                    // An outbound call answers later, on this transaction.
                    self.outbound_bind(tx);
                }
            }
            TxEvent::Cancel {
                tx,
                request,
                target,
                ..
            } => {
                // RFC 3261 §9.2: an INVITE still unanswered is an outbound
                // call being placed (the others are answered at once).
                if let Some(invite) = target {
                    self.outbound_cancel(now, invite);
                }
                let status = if target.is_some() { 200 } else { 481 };
                let response = self.reply(&request, status);
                if let Err(e) = self.tx.respond(now, tx, response) {
                    warn!(error = %e, "response to a finished transaction");
                }
            }
            TxEvent::Response { tx, response } => {
                self.client_event(now, tx, ClientOutcome::Response(&response))
            }
            TxEvent::Timeout { tx } => self.client_event(now, tx, ClientOutcome::Timeout),
            TxEvent::TransportError {
                tx: super::transaction::TxId::Client(tx),
            } => self.client_event(now, tx, ClientOutcome::TransportError),
            TxEvent::Ack { request, .. } => self.in_dialog_ack(now, &request),
            TxEvent::Terminated {
                tx: super::transaction::TxId::Client(tx),
            } => self.offer_terminated(tx),
            _ => {}
        }
    }

    /// Hands the fate of one of our requests to whoever sent it.
    fn client_event(&mut self, now: Instant, tx: ClientTxId, outcome: ClientOutcome<'_>) {
        if self.reack(tx, &outcome) {
            return;
        }
        let finished = !matches!(outcome, ClientOutcome::Response(r) if r.status < 200);
        let purpose = if finished {
            self.clients.remove(&tx)
        } else {
            self.clients.get(&tx).cloned()
        };
        if finished {
            if let (Some(purpose), ClientOutcome::Response(r)) = (&purpose, outcome) {
                if matches!(r.status, 401 | 407) && self.answer_trunk_challenge(now, tx, purpose, r)
                {
                    return;
                }
            }
            self.trunk_auth.remove(&tx);
        }
        match (purpose, outcome) {
            (Some(ClientPurpose::Qualify { aor, contact }), outcome) => {
                if finished {
                    let answered = matches!(outcome, ClientOutcome::Response(_));
                    self.registrar.qualify_result(&aor, &contact, answered);
                }
            }
            (Some(ClientPurpose::TrunkRegister(index)), outcome) => {
                if let Some((reg, _)) = self.trunks.get_mut(index) {
                    match outcome {
                        ClientOutcome::Response(r) => reg.on_response(now, r),
                        ClientOutcome::Timeout => reg.on_timeout(now),
                        ClientOutcome::TransportError => reg.on_transport_error(now),
                    }
                }
            }
            (Some(ClientPurpose::Offer), outcome) => self.offer_outcome(now, tx, outcome),
            (Some(ClientPurpose::Outbound), outcome) => self.outbound_outcome(now, tx, outcome),
            (Some(ClientPurpose::Originate), outcome) => self.originate_outcome(now, tx, outcome),
            (Some(ClientPurpose::Forward), outcome) => self.forward_outcome(now, tx, outcome),
            (Some(ClientPurpose::Bye(_)), _) | (None, _) => {}
        }
    }

    /// Publishes an event for the control API's stream and webhooks.
    fn event(&mut self, event: crate::control::Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// The wall-clock time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        let (at, wall) = self.clock;
        match now.checked_duration_since(at) {
            Some(later) => wall + later,
            None => wall - at.saturating_duration_since(now),
        }
    }

    fn local_host(&self, flow: &Flow) -> Host {
        local_host_of(&self.config.domain, flow)
    }
}

/// How one of our client transactions went.
#[derive(Clone, Copy)]
enum ClientOutcome<'a> {
    Response(&'a Response),
    Timeout,
    TransportError,
}

impl ClientOutcome<'_> {
    /// The final status, or what the TU acts as if it had received: 408
    /// for a timeout (RFC 3261 §17.1.1.2), 503 for a transport failure
    /// (§8.1.3.1).
    fn status(&self) -> u16 {
        match self {
            ClientOutcome::Response(r) => r.status,
            ClientOutcome::Timeout => 408,
            ClientOutcome::TransportError => 503,
        }
    }
}

/// Our address for Via and Contact on a flow (the listening socket's, or
/// the domain when bound to a wildcard address).
fn local_host_of(domain: &str, flow: &Flow) -> Host {
    if !flow.local.ip().is_unspecified() {
        return Host::Ip(flow.local.ip());
    }
    match domain.parse() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Domain(domain.to_ascii_lowercase()),
    }
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: records where a request really came
/// from in its top Via, and returns the flow its responses go to (§18.2.2:
/// the same connection on streams; on UDP the source address when `rport`
/// was asked for, else the source IP with the sent-by port).
fn stamp_via(request: &mut Request, flow: &Flow) -> Flow {
    let Some(via) = request.headers.via.first_mut() else {
        return flow.clone();
    };
    let source_ip = flow.remote.ip();
    let rport_asked = via.rport().is_some();
    if via.host.ip() != Some(source_ip) || rport_asked {
        via.params.set("received", Some(source_ip.to_string()));
    }
    if rport_asked {
        via.params
            .set("rport", Some(flow.remote.port().to_string()));
        return flow.clone();
    }
    if flow.transport.is_reliable() {
        return flow.clone();
    }
    let port = via.port.unwrap_or(flow.transport.default_port());
    flow.towards(SocketAddr::new(source_ip, port))
}
