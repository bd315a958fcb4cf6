//! Queued calls under load (issue 4): the call centre's inbound flow with
//! this generator playing every peer. M agents register (digest) and log in
//! with `*21` (407 challenge, 200, the gateway's BYE after its beeps); then
//! the carrier, from a socket bound to the address the gateway's trunk
//! trusts, delivers calls to a DID routed to a queue, at a fixed rate (open
//! loop, optionally capped at N calls in progress). Each call: carrier
//! INVITE with a PCMU offer → the gateway's 200 (it answers and queues the
//! caller) → ACK; the gateway's INVITE to an agent → the agent's 200 with a
//! PCMU answer → the gateway's ACK (bridged); after the hold time the
//! carrier's BYE → 200, and the gateway's BYE to the agent → 200.
//!
//! All UDP, one thread, one `mio` poll over the carrier's socket, the
//! agents' sockets (agents share them: each contact is distinct by its user
//! part, `sip:<id>@<socket>`) and one RTP sink whose port every SDP names.
//! No RTP is sent (media load is `media`'s job), so the gateway's dead-RTP
//! detection must be off or longer than a call (`media.dead_after_secs`).
//!
//! Retransmissions follow RFC 3261: our requests are resent on Timers A/E
//! and given up after 64·T1 (§17.1.1.2, §17.1.2.2); the agents' 2xx is
//! resent until the ACK (§13.3.1.4); a retransmitted 2xx from the gateway
//! gets our ACK again (§13.2.2.4); a retransmitted request gets the same
//! answer (finished agent legs are remembered for 64·T1 for that).
//!
//!   switchboard-loadgen calls --target 127.0.0.1:5060 --carrier 127.0.0.2:5080 \
//!       --agents 1200 --rate 500 --calls 10000 --hold-ms 2000

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::io::{self, ErrorKind, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use switchboard::sip::auth::{respond, Challenge};
use switchboard::sip::message::{
    parse, Contacts, HeaderName, Message, Method, NameAddr, Request, Response, Uri,
};

use crate::media::{parse_answer, sdp_offer, CodecChoice, LatencyHistogram};

#[derive(Args, Debug, Clone)]
pub struct CallsArgs {
    /// The gateway's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// The carrier's address: the `peer` of the gateway's trunk. Not the
    /// demo's 127.0.0.1:5080, which the interop tests use.
    #[arg(long, default_value = "127.0.0.2:5080")]
    carrier: SocketAddr,
    /// The DID the carrier calls, routed to a queue by the gateway.
    #[arg(long, default_value = "+15550100")]
    did: String,
    /// The gateway's `sip.domain` (default: the target's IP).
    #[arg(long)]
    domain: Option<String>,
    /// Agents, with ids `first-agent`, `first-agent + 1`, ...
    #[arg(long, default_value_t = 100)]
    agents: u32,
    #[arg(long, default_value_t = 10_000)]
    first_agent: u32,
    /// Every agent's password, `{id}` replaced by its id.
    #[arg(long, default_value = "pass{id}")]
    password: String,
    /// UDP sockets the agents share (agent i on socket i mod n).
    #[arg(long, default_value_t = 4)]
    agent_sockets: usize,
    /// The agents' sockets on this port and the ones after it (default:
    /// any free ports). Fixed ports keep the agents' contacts across runs
    /// against one gateway, as phones re-registering would; otherwise each
    /// run adds a binding per agent until the old ones expire.
    #[arg(long, default_value_t = 0)]
    agent_port: u16,
    /// Registrations, then logins, started per second before the calls.
    #[arg(long, default_value_t = 500)]
    setup_rate: u32,
    /// Calls the carrier starts per second (open loop).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Calls in all.
    #[arg(long, default_value_t = 1000)]
    calls: u32,
    /// At most this many calls in progress (0: no cap); a call due while
    /// the cap is reached starts as soon as one ends.
    #[arg(long, default_value_t = 0)]
    concurrent: u32,
    /// Milliseconds the carrier stays on once the agent is bridged.
    #[arg(long, default_value_t = 2000)]
    hold_ms: u64,
    /// Seconds a caller answered by the gateway waits for an agent before
    /// hanging up (a failure).
    #[arg(long, default_value_t = 10)]
    max_wait_secs: u64,
    /// Seconds between the last login and the first call, after the
    /// `AGENTS ready` line (the bench script samples the idle gateway).
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error("cannot bind the carrier's socket to {addr}: {source}")]
    CarrierSocket {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind or configure a UDP socket: {0}")]
    Socket(#[source] io::Error),
    #[error("cannot poll the sockets: {0}")]
    Poll(#[source] io::Error),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("cannot watch for SIGINT and SIGTERM: {0}")]
    Signals(#[source] io::Error),
    #[error("interrupted while the agents were being set up")]
    Interrupted,
    #[error("the agents' sockets from port {0} on run past 65535")]
    AgentPorts(u16),
    #[error("agent ids {first}..{first}+{count} overflow")]
    AgentIds { first: u32, count: u32 },
}

// ---------------------------------------------------------------- timing

/// RFC 3261 §17.1.1.1: T1 (round-trip estimate), T2 (the cap of non-INVITE
/// and 2xx retransmission intervals), and 64·T1 (when a transaction gives
/// up: Timers B, F and H).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const GIVE_UP: Duration = Duration::from_secs(32);
/// How long the gateway's BYE of a login call may take after its 200
/// (it plays about 1.2 s of beeps first).
const LOGIN_BYE_WITHIN: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What a request in flight needs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    Now,
    Later,
    GiveUp,
}

/// A message we resend until it is answered: a request of ours, or an
/// agent's 2xx until its ACK.
#[derive(Debug)]
struct Outgoing {
    data: Bytes,
    socket: usize,
    to: SocketAddr,
    first: Instant,
    next: Instant,
    interval: Duration,
    /// INVITE: Timer A doubles without a cap and stops at a provisional
    /// answer (§17.1.1.2); otherwise the interval is capped at T2
    /// (§17.1.2.2 Timer E, §13.3.1.4 for a 2xx).
    invite: bool,
    provisional: bool,
}

impl Outgoing {
    fn new(data: Vec<u8>, socket: usize, to: SocketAddr, now: Instant, invite: bool) -> Self {
        Outgoing {
            data: Bytes::from(data),
            socket,
            to,
            first: now,
            next: now + T1,
            interval: T1,
            invite,
            provisional: false,
        }
    }

    /// When something is next due: a retransmission, or giving up.
    fn due(&self) -> Instant {
        let give_up = self.first + GIVE_UP;
        if self.invite && self.provisional {
            give_up
        } else {
            self.next.min(give_up)
        }
    }

    fn poll(&mut self, now: Instant) -> Resend {
        if now >= self.first + GIVE_UP {
            return Resend::GiveUp;
        }
        if (self.invite && self.provisional) || now < self.next {
            return Resend::Later;
        }
        self.interval = if self.invite {
            self.interval * 2
        } else {
            (self.interval * 2).min(T2)
        };
        self.next = now + self.interval;
        Resend::Now
    }
}

/// What a timer wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Agent(u32),
    Call(u32),
    Leg(u64),
}

/// Wake-ups, earliest first. Each entity remembers the time of its
/// earliest entry (`armed`); an entry popped for another time is stale and
/// skipped, and an entity woken early re-arms for what is really due.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
}

impl Timers {
    fn arm(&mut self, armed: &mut Option<Instant>, key: Key, at: Option<Instant>) {
        let Some(at) = at else { return };
        if armed.is_some_and(|a| a <= at) {
            return;
        }
        *armed = Some(at);
        self.heap.push(Reverse((at, key)));
    }

    fn pop_due(&mut self, now: Instant) -> Option<(Instant, Key)> {
        let &Reverse((at, key)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some((at, key))
    }

    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
}

/// Whether a popped entry is the entity's live one; disarms it if so.
fn fire(armed: &mut Option<Instant>, at: Instant) -> bool {
    if *armed == Some(at) {
        *armed = None;
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------- accounting

/// Anything that went wrong, by kind. A call that fails counts once in
/// `failed` whatever number of problems it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    RegisterStatus(u16),
    RegisterTimeout,
    LoginStatus(u16),
    LoginTimeout,
    LoginNoBye,
    /// A final answer other than 2xx to the carrier's INVITE.
    InviteStatus(u16),
    InviteTimeout,
    /// The gateway's 200 had no usable SDP answer.
    BadAnswer,
    /// No agent was bridged within `max_wait_secs` of the gateway's 200.
    NotBridged,
    /// The gateway sent the carrier a BYE while the call should be up.
    GatewayHungUpCaller,
    /// The gateway sent the agent a BYE while the caller was still on.
    AgentHungUpEarly,
    /// The gateway never ACKed an agent's 200.
    AgentNoAck,
    /// The gateway's offer to an agent had no usable SDP.
    AgentBadOffer,
    /// An offer to an agent for no call of ours (e.g. one that had ended).
    OfferForUnknownCall,
    /// The gateway cancelled an offer (ring timeout or caller gone).
    OfferCancelled,
    /// The agent leg got no BYE within 64·T1 of the caller's.
    AgentNotHungUp,
    ByeStatus(u16),
    ByeTimeout,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RegisterStatus(s) => write!(f, "register_{s}"),
            Problem::RegisterTimeout => f.write_str("register_timeout"),
            Problem::LoginStatus(s) => write!(f, "login_{s}"),
            Problem::LoginTimeout => f.write_str("login_timeout"),
            Problem::LoginNoBye => f.write_str("login_no_bye"),
            Problem::InviteStatus(s) => write!(f, "invite_{s}"),
            Problem::InviteTimeout => f.write_str("invite_timeout"),
            Problem::BadAnswer => f.write_str("bad_sdp_answer"),
            Problem::NotBridged => f.write_str("not_bridged"),
            Problem::GatewayHungUpCaller => f.write_str("gateway_bye_to_caller"),
            Problem::AgentHungUpEarly => f.write_str("gateway_bye_to_agent_early"),
            Problem::AgentNoAck => f.write_str("agent_200_not_acked"),
            Problem::AgentBadOffer => f.write_str("agent_bad_sdp_offer"),
            Problem::OfferForUnknownCall => f.write_str("offer_for_unknown_call"),
            Problem::OfferCancelled => f.write_str("offer_cancelled"),
            Problem::AgentNotHungUp => f.write_str("agent_not_hung_up"),
            Problem::ByeStatus(s) => write!(f, "bye_{s}"),
            Problem::ByeTimeout => f.write_str("bye_timeout"),
        }
    }
}

/// `kind=count,...`, or `none`.
fn problems_text(problems: &BTreeMap<Problem, u32>) -> String {
    if problems.is_empty() {
        return "none".to_owned();
    }
    problems
        .iter()
        .map(|(p, n)| format!("{p}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Default)]
struct Stats {
    registered: u32,
    logged_in: u32,
    attempted: u32,
    /// 200 from the gateway to the carrier.
    answered: u32,
    /// An agent answered the gateway's offer and got its ACK.
    bridged: u32,
    /// Both BYEs answered 200, nothing went wrong.
    completed: u32,
    failed: u32,
    problems: BTreeMap<Problem, u32>,
    /// Calls bridged and not yet hung up, and the most at once.
    up: usize,
    peak_up: usize,
    peak_in_progress: usize,
    first_start: Option<Instant>,
    last_start: Option<Instant>,
    first_bridge: Option<Instant>,
    last_bridge: Option<Instant>,
    /// Carrier: INVITE sent → the gateway's 200.
    invite_to_200: LatencyHistogram,
    /// The gateway's 200 to the carrier → its INVITE at the agent.
    answer_to_offer: LatencyHistogram,
    /// The carrier's BYE → the gateway's BYE at the agent.
    bye_to_agent_bye: LatencyHistogram,
    /// Ours resent (requests, and agents' 2xx).
    retransmitted: u64,
    /// Retransmissions from the gateway: 2xx re-ACKed, requests answered again.
    duplicates: u64,
    send_errors: u64,
    unparsable: u64,
    rtp_packets: u64,
}

impl Stats {
    fn problem(&mut self, p: Problem) {
        *self.problems.entry(p).or_insert(0) += 1;
    }
}

fn since_ns(earlier: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(earlier).as_nanos() as u64
}

// ---------------------------------------------------------------- entities

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentPhase {
    Idle,
    Registering,
    Registered,
    /// `*21` sent (again with credentials after the 407).
    LoggingIn,
    /// The 200 came and was ACKed: waiting for the gateway's BYE.
    AwaitingBye,
    LoggedIn,
    Failed,
}

struct Agent {
    id: String,
    password: String,
    socket: usize,
    phase: AgentPhase,
    out: Option<Outgoing>,
    cseq: u32,
    /// The ACK of the login's 2xx, again for its retransmissions.
    ack: Bytes,
    deadline: Option<Instant>,
    armed: Option<Instant>,
}

impl Agent {
    fn due(&self) -> Option<Instant> {
        match self.phase {
            AgentPhase::Registering | AgentPhase::LoggingIn => self.out.as_ref().map(Outgoing::due),
            AgentPhase::AwaitingBye => self.deadline,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    Inviting,
    /// Answered by the gateway; waiting for an agent (deadline: max wait).
    Queued,
    /// Bridged (deadline: the end of the hold).
    Talking,
    /// Our BYE in flight.
    Hanging,
    /// Our BYE answered; waiting for the gateway's BYE to the agent.
    AwaitingAgentBye,
}

struct Call {
    phase: CallPhase,
    started: Instant,
    answered: Option<Instant>,
    bye_sent: Option<Instant>,
    /// The gateway's INVITE to an agent, and that agent's ACK. Both may
    /// come before we read the gateway's 200 to the carrier: the gateway
    /// sends them in the same step, and the agents' sockets may be read
    /// first.
    offered: Option<Instant>,
    agent_acked: bool,
    out: Option<Outgoing>,
    /// The dialog's To (with the gateway's tag) and remote target.
    to: String,
    remote_target: String,
    ack: Bytes,
    deadline: Option<Instant>,
    agent_hung_up: bool,
    failed: bool,
    armed: Option<Instant>,
}

impl Call {
    fn due(&self) -> Option<Instant> {
        match self.phase {
            CallPhase::Inviting | CallPhase::Hanging => self.out.as_ref().map(Outgoing::due),
            CallPhase::Queued | CallPhase::Talking | CallPhase::AwaitingAgentBye => self.deadline,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegPhase {
    /// Our 200 sent, no ACK yet.
    Unacked,
    Up,
    /// BYE answered; remembered for retransmissions until `forget_at`.
    Closed,
}

/// An agent's leg: the gateway's INVITE, answered by the agent.
struct Leg {
    call_id: String,
    call: Option<u32>,
    phase: LegPhase,
    /// Our 200, resent until the ACK and for a retransmitted INVITE.
    ok: Outgoing,
    forget_at: Option<Instant>,
    armed: Option<Instant>,
}

impl Leg {
    fn due(&self) -> Option<Instant> {
        match self.phase {
            LegPhase::Unacked => Some(self.ok.due()),
            LegPhase::Up => None,
            LegPhase::Closed => self.forget_at,
        }
    }
}

// ---------------------------------------------------------------- messages

/// The fields every request of a dialog repeats.
struct Head<'a> {
    via: SocketAddr,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
}

fn request_text(
    method: &str,
    ruri: &str,
    branch: &str,
    cseq: u32,
    head: &Head<'_>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
{extra}User-Agent: switchboard-loadgen\r\nContent-Length: {len}\r\n\r\n{body}",
        via = head.via,
        from = head.from,
        to = head.to,
        call_id = head.call_id,
        len = body.len(),
    )
    .into_bytes()
}

/// The agent's SDP answer: PCMU only (the gateway offers it first).
fn sdp_answer(ip: IpAddr, port: u16, session: u64) -> String {
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=loadgen-agent {session} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\n\
t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The carrier's calling number for call `n`: the gateway shows it to the
/// agent in its INVITE's From, which is how an offer is matched to a call.
fn caller_number(n: u32) -> String {
    format!("+1999{n:07}")
}

fn call_of_caller(user: &str) -> Option<u32> {
    user.strip_prefix("+1999")?.parse().ok()
}

/// Our Call-IDs: `<kind><run>-<index>@<host>`, kind `r` (registration),
/// `l` (login), `c` (carrier call).
fn our_id(call_id: &str, kind: char, run: u32) -> Option<u32> {
    let rest = call_id.strip_prefix(kind)?;
    let (r, rest) = rest.split_once('-')?;
    if u32::from_str_radix(r, 16).ok()? != run {
        return None;
    }
    rest.split('@').next()?.parse().ok()
}

fn user_of(uri: &Uri) -> Option<String> {
    uri.as_sip().and_then(|u| u.user_unescaped())
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A non-blocking UDP socket with large kernel buffers (the kernel caps
/// them at net.core.{r,w}mem_max).
fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(s.into()))
}

/// The sockets, and what sending costs.
struct Net {
    sockets: Vec<UdpSocket>,
    locals: Vec<SocketAddr>,
    send_errors: u64,
}

impl Net {
    fn send(&mut self, socket: usize, data: &[u8], to: SocketAddr) {
        // A full send buffer is recovered by retransmission.
        let sent = self
            .sockets
            .get(socket)
            .map(|s| s.send_to(data, to).is_ok());
        if sent != Some(true) {
            self.send_errors += 1;
        }
    }

    fn resend(&mut self, out: &Outgoing) {
        self.send(out.socket, &out.data, out.to);
    }
}

const CARRIER: usize = 0;

// ---------------------------------------------------------------- generator

struct Generator {
    args: CallsArgs,
    domain: String,
    run: u32,
    local_ip: IpAddr,
    rtp_port: u16,
    rtp_socket: usize,
    poll: Poll,
    net: Net,
    timers: Timers,
    agents: Vec<Agent>,
    calls: HashMap<u32, Call>,
    legs: HashMap<u64, Leg>,
    leg_ids: HashMap<String, u64>,
    next_leg: u64,
    stats: Stats,
    buf: Vec<u8>,
    epoch: Instant,
    /// Set by the first SIGINT or SIGTERM: no new call starts, those in
    /// progress finish (the second signal ends the process at once).
    stop: Arc<AtomicBool>,
}

/// Which start function an open-loop stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Register,
    Login,
    Calls,
}

impl Generator {
    fn new(args: CallsArgs) -> Result<Generator, CallsError> {
        for (value, name) in [
            (args.agents, "--agents"),
            (args.rate, "--rate"),
            (args.calls, "--calls"),
            (args.setup_rate, "--setup-rate"),
            (args.agent_sockets as u32, "--agent-sockets"),
        ] {
            if value == 0 {
                return Err(CallsError::Zero(name));
            }
        }
        if args.first_agent.checked_add(args.agents).is_none() {
            return Err(CallsError::AgentIds {
                first: args.first_agent,
                count: args.agents,
            });
        }
        let local_ip = args.carrier.ip();
        let poll = Poll::new().map_err(CallsError::Poll)?;
        let mut sockets =
            vec![
                udp_socket(args.carrier).map_err(|source| CallsError::CarrierSocket {
                    addr: args.carrier,
                    source,
                })?,
            ];
        // Agents and the RTP sink on the target's side of loopback, on
        // ports of their own: never the trunk peer's address.
        let agent_ip = args.target.ip();
        for i in 0..args.agent_sockets {
            let port = match args.agent_port {
                0 => 0,
                p => u16::try_from(i)
                    .ok()
                    .and_then(|i| p.checked_add(i))
                    .ok_or(CallsError::AgentPorts(p))?,
            };
            sockets.push(udp_socket(SocketAddr::new(agent_ip, port)).map_err(CallsError::Socket)?);
        }
        sockets.push(udp_socket(SocketAddr::new(local_ip, 0)).map_err(CallsError::Socket)?);
        let rtp_socket = sockets.len() - 1;
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry()
                .register(s, Token(i), Interest::READABLE)
                .map_err(CallsError::Poll)?;
        }
        let locals = sockets
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(CallsError::Socket)?;
        let rtp_port = locals[rtp_socket].port();
        let agents = (0..args.agents)
            .map(|i| {
                let id = (args.first_agent + i).to_string();
                Agent {
                    password: args.password.replace("{id}", &id),
                    id,
                    socket: 1 + i as usize % args.agent_sockets,
                    phase: AgentPhase::Idle,
                    out: None,
                    cseq: 0,
                    ack: Bytes::new(),
                    deadline: None,
                    armed: None,
                }
            })
            .collect();
        let domain = args
            .domain
            .clone()
            .unwrap_or_else(|| host(args.target.ip()));
        Ok(Generator {
            domain,
            run: rand::random(),
            local_ip,
            rtp_port,
            rtp_socket,
            poll,
            net: Net {
                sockets,
                locals,
                send_errors: 0,
            },
            timers: Timers::default(),
            agents,
            calls: HashMap::new(),
            legs: HashMap::new(),
            leg_ids: HashMap::new(),
            next_leg: 0,
            stats: Stats::default(),
            buf: vec![0u8; 65_536],
            epoch: Instant::now(),
            stop: watch_signals()?,
            args,
        })
    }

    // ------------------------------------------------------------ loop

    /// Starts `count` items at `rate` per second (calls also under the
    /// concurrency cap) and runs until every one is settled.
    fn drive(&mut self, stage: Stage, count: u32, rate: u32) -> Result<(), CallsError> {
        let interval = Duration::from_secs(1) / rate;
        let t0 = Instant::now();
        let mut started = 0u32;
        let mut next_progress = t0 + PROGRESS_EVERY;
        let mut events = Events::with_capacity(1024);
        let mut count = count;
        loop {
            let now = Instant::now();
            if self.stop.load(Ordering::Relaxed) && started < count {
                if stage != Stage::Calls {
                    return Err(CallsError::Interrupted);
                }
                marker(&format!(
                    "INTERRUPTED: no new calls; waiting for the {} in progress",
                    self.calls.len()
                ));
                count = started;
            }
            while started < count && t0 + interval * started <= now && self.may_start(stage) {
                match stage {
                    Stage::Register => self.start_register(started, now),
                    Stage::Login => self.start_login(started, now),
                    Stage::Calls => self.start_call(started, now),
                }
                started += 1;
            }
            self.fire_timers(now);
            if stage == Stage::Calls && now >= next_progress {
                // After a stall (a busy machine), one line, not a burst.
                next_progress = (next_progress + PROGRESS_EVERY).max(now + PROGRESS_EVERY / 2);
                self.progress(now);
            }
            if started == count && self.settled(stage) {
                return Ok(());
            }
            let mut wake = self.timers.next();
            if started < count && self.may_start(stage) {
                let at = t0 + interval * started;
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            if stage == Stage::Calls {
                wake = Some(wake.map_or(next_progress, |w| w.min(next_progress)));
            }
            let timeout = wake
                .map_or(Duration::from_millis(100), |w| {
                    w.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            self.wait(&mut events, timeout)?;
        }
    }

    /// Handles datagrams and timers for `d`.
    fn idle(&mut self, d: Duration) -> Result<(), CallsError> {
        let end = Instant::now() + d;
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            self.fire_timers(now);
            if now >= end {
                return Ok(());
            }
            let wake = self.timers.next().map_or(end, |w| w.min(end));
            self.wait(&mut events, wake.saturating_duration_since(now))?;
        }
    }

    fn wait(&mut self, events: &mut Events, timeout: Duration) -> Result<(), CallsError> {
        match self.poll.poll(events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(CallsError::Poll(e)),
        }
        for event in events.iter() {
            self.drain(event.token().0);
        }
        Ok(())
    }

    /// Reads `socket` until it would block (mio is edge-triggered).
    fn drain(&mut self, socket: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(s) = self.net.sockets.get(socket) {
            let (len, from) = match s.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP errors and the like: nothing to read.
                Err(_) => continue,
            };
            if socket == self.rtp_socket {
                self.stats.rtp_packets += 1;
                continue;
            }
            let now = Instant::now();
            match buf.get(..len).map(parse) {
                Some(Ok(Message::Response(r))) => self.on_response(&r, now),
                Some(Ok(Message::Request(r))) => self.on_request(socket, &r, from, now),
                _ => self.stats.unparsable += 1,
            }
        }
        self.buf = buf;
    }

    fn may_start(&self, stage: Stage) -> bool {
        stage != Stage::Calls
            || self.args.concurrent == 0
            || self.calls.len() < self.args.concurrent as usize
    }

    fn settled(&self, stage: Stage) -> bool {
        match stage {
            Stage::Register => self
                .agents
                .iter()
                .all(|a| a.phase != AgentPhase::Registering),
            Stage::Login => self
                .agents
                .iter()
                .all(|a| !matches!(a.phase, AgentPhase::LoggingIn | AgentPhase::AwaitingBye)),
            Stage::Calls => self.calls.is_empty(),
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                Key::Agent(ix) => self.agent_timer(ix, at, now),
                Key::Call(n) => self.call_timer(n, at, now),
                Key::Leg(id) => self.leg_timer(id, at, now),
            }
        }
    }

    fn progress(&mut self, now: Instant) {
        let s = &self.stats;
        println!(
            "PROGRESS t_s={:.1} attempted={} answered={} bridged={} completed={} failed={} in_progress={} up={}",
            now.duration_since(self.epoch).as_secs_f64(),
            s.attempted,
            s.answered,
            s.bridged,
            s.completed,
            s.failed,
            self.calls.len(),
            s.up
        );
    }

    // ------------------------------------------------------------ dispatch

    fn on_response(&mut self, r: &Response, now: Instant) {
        let call_id = r.headers.call_id.as_str();
        if let Some(n) = our_id(call_id, 'c', self.run) {
            self.call_response(n, r, now);
        } else if let Some(ix) = our_id(call_id, 'r', self.run) {
            self.register_response(ix, r, now);
        } else if let Some(ix) = our_id(call_id, 'l', self.run) {
            self.login_response(ix, r, now);
        }
        // Anything else is for an earlier run.
    }

    fn on_request(&mut self, socket: usize, req: &Request, from: SocketAddr, now: Instant) {
        let call_id = req.headers.call_id.as_str();
        match req.method {
            Method::Invite if req.headers.to.tag().is_none() && socket != CARRIER => {
                self.offer(socket, req, from, now)
            }
            Method::Ack => self.leg_ack(call_id, now),
            Method::Bye => {
                if let Some(n) = our_id(call_id, 'c', self.run) {
                    self.reply(socket, req, 200, from);
                    self.gateway_bye_to_caller(n, now);
                } else if let Some(ix) = our_id(call_id, 'l', self.run) {
                    self.reply(socket, req, 200, from);
                    self.login_bye(ix);
                } else {
                    self.leg_bye(socket, req, from, now);
                }
            }
            // §9.2: our 200 went out at once, so the CANCEL changes
            // nothing; it is answered all the same.
            Method::Cancel => {
                self.stats.problem(Problem::OfferCancelled);
                self.reply(socket, req, 200, from);
            }
            // The gateway's qualify probes (and anything harmless).
            Method::Options => self.reply(socket, req, 200, from),
            // A re-INVITE: this generator keeps one offer per call.
            Method::Invite => self.reply(socket, req, 488, from),
            _ => self.reply(socket, req, 481, from),
        }
    }

    fn reply(&mut self, socket: usize, req: &Request, status: u16, to: SocketAddr) {
        let tag = format!("lg{:x}", self.run);
        let data = req.response(status, Some(&tag)).to_bytes();
        self.net.send(socket, &data, to);
    }

    // ------------------------------------------------------------ agents

    fn agent_head<'a>(&self, a: &Agent, from: &'a str, to: &'a str, call_id: &'a str) -> Head<'a> {
        Head {
            via: self.net.locals[a.socket],
            from,
            to,
            call_id,
        }
    }

    fn register_text(&self, ix: u32, cseq: u32, auth: &str) -> Vec<u8> {
        let a = &self.agents[ix as usize];
        let (run, domain, target) = (self.run, &self.domain, self.args.target);
        let from = format!("<sip:{}@{domain}>;tag=r{run:x}-{ix}", a.id);
        let to = format!("<sip:{}@{domain}>", a.id);
        let call_id = format!("r{run:x}-{ix}@{domain}");
        let extra = format!(
            "Contact: <sip:{}@{}>\r\nExpires: 3600\r\n{auth}",
            a.id, self.net.locals[a.socket]
        );
        request_text(
            "REGISTER",
            &format!("sip:{target}"),
            &format!("z9hG4bK-r{run:x}-{ix}-{cseq}"),
            cseq,
            &self.agent_head(a, &from, &to, &call_id),
            &extra,
            "",
        )
    }

    fn start_register(&mut self, ix: u32, now: Instant) {
        let data = self.register_text(ix, 1, "");
        let a = &mut self.agents[ix as usize];
        let out = Outgoing::new(data, a.socket, self.args.target, now, false);
        self.net.resend(&out);
        a.out = Some(out);
        a.cseq = 1;
        a.phase = AgentPhase::Registering;
        self.timers.arm(
            &mut a.armed,
            Key::Agent(ix),
            a.out.as_ref().map(Outgoing::due),
        );
    }

    fn register_response(&mut self, ix: u32, r: &Response, now: Instant) {
        let Some(a) = self.agents.get(ix as usize) else {
            return;
        };
        let cseq = r.headers.cseq.seq;
        if a.phase != AgentPhase::Registering || cseq != a.cseq || r.status < 200 {
            return;
        }
        match (r.status, cseq) {
            (401, 1) => {
                let creds = r
                    .headers
                    .get(&HeaderName::WwwAuthenticate)
                    .and_then(|v| Challenge::parse(v).ok())
                    .and_then(|c| {
                        let uri = format!("sip:{}", self.args.target);
                        respond(&c, "REGISTER", &uri, &a.id, &a.password, "lgcnonce", 1).ok()
                    });
                let Some(creds) = creds else {
                    return self.agent_failed(ix, Problem::RegisterStatus(401));
                };
                let auth = format!("Authorization: {}\r\n", creds.to_header_value());
                let data = self.register_text(ix, 2, &auth);
                let a = &mut self.agents[ix as usize];
                let out = Outgoing::new(data, a.socket, self.args.target, now, false);
                self.net.resend(&out);
                a.out = Some(out);
                a.cseq = 2;
            }
            (200..=299, 2) => {
                let a = &mut self.agents[ix as usize];
                a.out = None;
                a.phase = AgentPhase::Registered;
                self.stats.registered += 1;
            }
            (status, _) => self.agent_failed(ix, Problem::RegisterStatus(status)),
        }
    }

    fn login_ruri(&self) -> String {
        format!("sip:*21@{}", self.domain)
    }

    fn login_text(&self, ix: u32, cseq: u32, auth: &str) -> Vec<u8> {
        let a = &self.agents[ix as usize];
        let (run, domain) = (self.run, &self.domain);
        let ruri = self.login_ruri();
        let from = format!("<sip:{}@{domain}>;tag=l{run:x}-{ix}", a.id);
        let to = format!("<{ruri}>");
        let call_id = format!("l{run:x}-{ix}@{domain}");
        let extra = format!(
            "Contact: <sip:{}@{}>\r\n{auth}Content-Type: application/sdp\r\n",
            a.id, self.net.locals[a.socket]
        );
        let body = sdp_offer(
            self.local_ip,
            self.rtp_port,
            CodecChoice::Pcmu,
            u64::from(ix),
        );
        request_text(
            "INVITE",
            &ruri,
            &format!("z9hG4bK-l{run:x}-{ix}-{cseq}"),
            cseq,
            &self.agent_head(a, &from, &to, &call_id),
            &extra,
            &body,
        )
    }

    /// An ACK of the login call: for a non-2xx answer it belongs to the
    /// INVITE transaction (same branch and Request-URI, §17.1.1.3); for the
    /// 2xx it is a transaction of its own, to the remote target (§13.2.2.4).
    fn login_ack(&self, ix: u32, r: &Response, success: bool) -> Vec<u8> {
        let a = &self.agents[ix as usize];
        let (run, domain) = (self.run, &self.domain);
        let cseq = r.headers.cseq.seq;
        let from = format!("<sip:{}@{domain}>;tag=l{run:x}-{ix}", a.id);
        let to = r.headers.to.to_string();
        let call_id = format!("l{run:x}-{ix}@{domain}");
        let (ruri, branch) = if success {
            let target = r
                .headers
                .contact
                .first()
                .map_or_else(|| self.login_ruri(), |c| c.uri.to_string());
            (target, format!("z9hG4bK-l{run:x}-{ix}-a{cseq}"))
        } else {
            (self.login_ruri(), format!("z9hG4bK-l{run:x}-{ix}-{cseq}"))
        };
        request_text(
            "ACK",
            &ruri,
            &branch,
            cseq,
            &self.agent_head(a, &from, &to, &call_id),
            "",
            "",
        )
    }

    fn start_login(&mut self, ix: u32, now: Instant) {
        if self.agents[ix as usize].phase != AgentPhase::Registered {
            return;
        }
        let data = self.login_text(ix, 1, "");
        let a = &mut self.agents[ix as usize];
        let out = Outgoing::new(data, a.socket, self.args.target, now, true);
        self.net.resend(&out);
        a.out = Some(out);
        a.cseq = 1;
        a.phase = AgentPhase::LoggingIn;
        self.timers.arm(
            &mut a.armed,
            Key::Agent(ix),
            a.out.as_ref().map(Outgoing::due),
        );
    }

    fn login_response(&mut self, ix: u32, r: &Response, now: Instant) {
        let Some(a) = self.agents.get(ix as usize) else {
            return;
        };
        let (phase, current, socket) = (a.phase, a.cseq, a.socket);
        let cseq = r.headers.cseq.seq;
        let target = self.args.target;
        if r.status < 200 {
            if phase == AgentPhase::LoggingIn && cseq == current {
                if let Some(out) = self.agents[ix as usize].out.as_mut() {
                    out.provisional = true;
                }
            }
            return;
        }
        if r.is_success() {
            if phase != AgentPhase::LoggingIn || cseq != current {
                // A retransmitted 2xx: our ACK was lost.
                self.stats.duplicates += 1;
                let ack = self.agents[ix as usize].ack.clone();
                if !ack.is_empty() {
                    self.net.send(socket, &ack, target);
                }
                return;
            }
            let ack = Bytes::from(self.login_ack(ix, r, true));
            self.net.send(socket, &ack, target);
            let a = &mut self.agents[ix as usize];
            a.ack = ack;
            a.out = None;
            a.phase = AgentPhase::AwaitingBye;
            a.deadline = Some(now + LOGIN_BYE_WITHIN);
            self.timers.arm(&mut a.armed, Key::Agent(ix), a.deadline);
            return;
        }
        // Every non-2xx final answer is ACKed, retransmissions included.
        let ack = self.login_ack(ix, r, false);
        self.net.send(socket, &ack, target);
        if phase != AgentPhase::LoggingIn || cseq != current {
            return;
        }
        let challenge = match r.status {
            407 => Some(("Proxy-Authorization", HeaderName::ProxyAuthenticate)),
            401 => Some(("Authorization", HeaderName::WwwAuthenticate)),
            _ => None,
        };
        let auth = challenge.filter(|_| cseq == 1).and_then(|(field, name)| {
            let c = Challenge::parse(r.headers.get(&name)?).ok()?;
            let creds = respond(
                &c,
                "INVITE",
                &self.login_ruri(),
                &a.id,
                &a.password,
                "lgcnonce",
                1,
            )
            .ok()?;
            Some(format!("{field}: {}\r\n", creds.to_header_value()))
        });
        let Some(auth) = auth else {
            return self.agent_failed(ix, Problem::LoginStatus(r.status));
        };
        // RFC 3261 §22.2: the request again with credentials, a new CSeq
        // and a new transaction.
        let data = self.login_text(ix, cseq + 1, &auth);
        let a = &mut self.agents[ix as usize];
        let out = Outgoing::new(data, a.socket, target, now, true);
        self.net.resend(&out);
        a.out = Some(out);
        a.cseq = cseq + 1;
        self.timers.arm(
            &mut a.armed,
            Key::Agent(ix),
            a.out.as_ref().map(Outgoing::due),
        );
    }

    /// The gateway hangs up the login call after its beeps.
    fn login_bye(&mut self, ix: u32) {
        let Some(a) = self.agents.get_mut(ix as usize) else {
            return;
        };
        match a.phase {
            AgentPhase::AwaitingBye => {
                a.phase = AgentPhase::LoggedIn;
                a.deadline = None;
                self.stats.logged_in += 1;
            }
            _ => self.stats.duplicates += 1,
        }
    }

    fn agent_failed(&mut self, ix: u32, problem: Problem) {
        if let Some(a) = self.agents.get_mut(ix as usize) {
            a.phase = AgentPhase::Failed;
            a.out = None;
            a.deadline = None;
        }
        self.stats.problem(problem);
    }

    fn agent_timer(&mut self, ix: u32, at: Instant, now: Instant) {
        let Some(a) = self.agents.get_mut(ix as usize) else {
            return;
        };
        if !fire(&mut a.armed, at) {
            return;
        }
        match a.phase {
            AgentPhase::Registering | AgentPhase::LoggingIn => {
                let registering = a.phase == AgentPhase::Registering;
                let Some(out) = a.out.as_mut() else {
                    return;
                };
                match out.poll(now) {
                    Resend::Now => {
                        self.net.resend(out);
                        self.stats.retransmitted += 1;
                    }
                    Resend::Later => {}
                    Resend::GiveUp => {
                        let p = if registering {
                            Problem::RegisterTimeout
                        } else {
                            Problem::LoginTimeout
                        };
                        return self.agent_failed(ix, p);
                    }
                }
            }
            AgentPhase::AwaitingBye if a.deadline.is_some_and(|d| now >= d) => {
                return self.agent_failed(ix, Problem::LoginNoBye);
            }
            _ => {}
        }
        let a = &mut self.agents[ix as usize];
        let due = a.due();
        self.timers.arm(&mut a.armed, Key::Agent(ix), due);
    }

    // ------------------------------------------------------------ carrier

    fn call_strings(&self, n: u32) -> (String, String, String) {
        let (run, ip) = (self.run, host(self.local_ip));
        let from = format!("<sip:{}@{ip}>;tag=c{run:x}-{n}", caller_number(n));
        let call_id = format!("c{run:x}-{n}@{ip}");
        (from, call_id, self.invite_ruri())
    }

    fn invite_ruri(&self) -> String {
        format!("sip:{}@{}", self.args.did, self.args.target)
    }

    fn start_call(&mut self, n: u32, now: Instant) {
        let (from, call_id, ruri) = self.call_strings(n);
        let to = format!("<{ruri}>");
        let head = Head {
            via: self.net.locals[CARRIER],
            from: &from,
            to: &to,
            call_id: &call_id,
        };
        let extra = format!(
            "Contact: <sip:carrier@{}>\r\nContent-Type: application/sdp\r\n",
            self.net.locals[CARRIER]
        );
        let body = sdp_offer(
            self.local_ip,
            self.rtp_port,
            CodecChoice::Pcmu,
            u64::from(n),
        );
        let run = self.run;
        let data = request_text(
            "INVITE",
            &ruri,
            &format!("z9hG4bK-c{run:x}-{n}-i"),
            1,
            &head,
            &extra,
            &body,
        );
        let out = Outgoing::new(data, CARRIER, self.args.target, now, true);
        self.net.resend(&out);
        let mut call = Call {
            phase: CallPhase::Inviting,
            started: now,
            answered: None,
            bye_sent: None,
            offered: None,
            agent_acked: false,
            out: Some(out),
            to: String::new(),
            remote_target: String::new(),
            ack: Bytes::new(),
            deadline: None,
            agent_hung_up: false,
            failed: false,
            armed: None,
        };
        let due = call.due();
        self.timers.arm(&mut call.armed, Key::Call(n), due);
        self.calls.insert(n, call);
        self.stats.attempted += 1;
        self.stats.first_start.get_or_insert(now);
        self.stats.last_start = Some(now);
        self.stats.peak_in_progress = self.stats.peak_in_progress.max(self.calls.len());
    }

    fn call_response(&mut self, n: u32, r: &Response, now: Instant) {
        let target = self.args.target;
        let Some(call) = self.calls.get_mut(&n) else {
            // A late retransmission for a call settled already.
            if r.headers.cseq.method == Method::Invite && r.status >= 200 {
                self.stats.duplicates += 1;
            }
            return;
        };
        match (&r.headers.cseq.method, r.status) {
            (Method::Invite, 100..=199) if call.phase == CallPhase::Inviting => {
                if let Some(out) = call.out.as_mut() {
                    out.provisional = true;
                }
            }
            (Method::Invite, 100..=199) => {}
            (Method::Invite, 200..=299) if call.phase != CallPhase::Inviting => {
                // §13.2.2.4: a retransmitted 2xx, our ACK was lost.
                self.stats.duplicates += 1;
                if !call.ack.is_empty() {
                    self.net.send(CARRIER, &call.ack, target);
                }
            }
            (Method::Invite, 200..=299) => self.call_answered(n, r, now),
            (Method::Invite, status) => {
                let inviting = call.phase == CallPhase::Inviting;
                let ack = self.carrier_non2xx_ack(n, r);
                self.net.send(CARRIER, &ack, target);
                if inviting {
                    self.fail_call(n, Problem::InviteStatus(status));
                    self.finish_call(n);
                }
            }
            (Method::Bye, 100..=199) => {}
            (Method::Bye, status) if call.phase == CallPhase::Hanging => {
                call.out = None;
                if !(200..300).contains(&status) {
                    self.fail_call(n, Problem::ByeStatus(status));
                    return self.finish_call(n);
                }
                self.caller_gone(n, now);
            }
            _ => {}
        }
    }

    /// §17.1.1.3: the ACK of a non-2xx answer, in the INVITE transaction.
    fn carrier_non2xx_ack(&self, n: u32, r: &Response) -> Vec<u8> {
        let (from, call_id, ruri) = self.call_strings(n);
        let to = r.headers.to.to_string();
        let head = Head {
            via: self.net.locals[CARRIER],
            from: &from,
            to: &to,
            call_id: &call_id,
        };
        let run = self.run;
        request_text(
            "ACK",
            &ruri,
            &format!("z9hG4bK-c{run:x}-{n}-i"),
            r.headers.cseq.seq,
            &head,
            "",
            "",
        )
    }

    fn call_answered(&mut self, n: u32, r: &Response, now: Instant) {
        let (from, call_id, ruri) = self.call_strings(n);
        let to = r.headers.to.to_string();
        let remote_target = r
            .headers
            .contact
            .first()
            .map_or(ruri, |c| c.uri.to_string());
        let head = Head {
            via: self.net.locals[CARRIER],
            from: &from,
            to: &to,
            call_id: &call_id,
        };
        let run = self.run;
        // §13.2.2.4: the ACK of a 2xx is a transaction of its own.
        let ack = Bytes::from(request_text(
            "ACK",
            &remote_target,
            &format!("z9hG4bK-c{run:x}-{n}-a"),
            r.headers.cseq.seq,
            &head,
            "",
            "",
        ));
        self.net.send(CARRIER, &ack, self.args.target);
        let usable = parse_answer(&r.body).is_ok();
        let max_wait = Duration::from_secs(self.args.max_wait_secs);
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        self.stats.answered += 1;
        self.stats.invite_to_200.record(since_ns(call.started, now));
        call.phase = CallPhase::Queued;
        call.out = None;
        call.answered = Some(now);
        call.to = to;
        call.remote_target = remote_target;
        call.ack = ack;
        call.deadline = Some(now + max_wait);
        self.timers
            .arm(&mut call.armed, Key::Call(n), call.deadline);
        if call.offered.is_some() {
            // The offer overtook this 200 (see `Call::offered`).
            self.stats.answer_to_offer.record(0);
        }
        if !usable {
            self.fail_call(n, Problem::BadAnswer);
            self.hang_up(n, now);
        } else if call.agent_acked {
            self.start_talking(n, now);
        }
    }

    /// The carrier's BYE (§15.1.1).
    fn hang_up(&mut self, n: u32, now: Instant) {
        let Some(call) = self.calls.get(&n) else {
            return;
        };
        if call.phase == CallPhase::Talking {
            self.stats.up = self.stats.up.saturating_sub(1);
        }
        let (from, call_id, _) = self.call_strings(n);
        let head = Head {
            via: self.net.locals[CARRIER],
            from: &from,
            to: &call.to,
            call_id: &call_id,
        };
        let run = self.run;
        let data = request_text(
            "BYE",
            &call.remote_target,
            &format!("z9hG4bK-c{run:x}-{n}-b"),
            2,
            &head,
            "",
            "",
        );
        let out = Outgoing::new(data, CARRIER, self.args.target, now, false);
        self.net.resend(&out);
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        call.out = Some(out);
        call.phase = CallPhase::Hanging;
        call.bye_sent = Some(now);
        call.deadline = None;
        let due = call.due();
        self.timers.arm(&mut call.armed, Key::Call(n), due);
    }

    /// The caller's side is over (our BYE answered, or the gateway's BYE):
    /// the call ends once the agent's leg is hung up too.
    fn caller_gone(&mut self, n: u32, now: Instant) {
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        if call.agent_hung_up || call.answered.is_none() {
            return self.finish_call(n);
        }
        call.phase = CallPhase::AwaitingAgentBye;
        call.deadline = Some(now + GIVE_UP);
        self.timers
            .arm(&mut call.armed, Key::Call(n), call.deadline);
    }

    fn gateway_bye_to_caller(&mut self, n: u32, now: Instant) {
        let Some(call) = self.calls.get(&n) else {
            self.stats.duplicates += 1;
            return;
        };
        match call.phase {
            CallPhase::Queued | CallPhase::Talking => {
                if call.phase == CallPhase::Talking {
                    self.stats.up = self.stats.up.saturating_sub(1);
                }
                self.fail_call(n, Problem::GatewayHungUpCaller);
                self.caller_gone(n, now);
            }
            // Crossing BYEs: ours is answered 481 or 200; either ends it.
            CallPhase::Hanging => {}
            CallPhase::Inviting | CallPhase::AwaitingAgentBye => self.stats.duplicates += 1,
        }
    }

    fn fail_call(&mut self, n: u32, problem: Problem) {
        self.stats.problem(problem);
        if let Some(call) = self.calls.get_mut(&n) {
            if !call.failed {
                call.failed = true;
                self.stats.failed += 1;
            }
        }
    }

    fn finish_call(&mut self, n: u32) {
        if let Some(call) = self.calls.remove(&n) {
            if call.phase == CallPhase::Talking {
                self.stats.up = self.stats.up.saturating_sub(1);
            }
            if !call.failed {
                self.stats.completed += 1;
            }
        }
    }

    fn call_timer(&mut self, n: u32, at: Instant, now: Instant) {
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        if !fire(&mut call.armed, at) {
            return;
        }
        let expired = call.deadline.is_some_and(|d| now >= d);
        match call.phase {
            CallPhase::Inviting | CallPhase::Hanging => {
                let inviting = call.phase == CallPhase::Inviting;
                let Some(out) = call.out.as_mut() else {
                    return;
                };
                match out.poll(now) {
                    Resend::Now => {
                        self.net.resend(out);
                        self.stats.retransmitted += 1;
                    }
                    Resend::Later => {}
                    Resend::GiveUp => {
                        let p = if inviting {
                            Problem::InviteTimeout
                        } else {
                            Problem::ByeTimeout
                        };
                        self.fail_call(n, p);
                        return self.finish_call(n);
                    }
                }
            }
            CallPhase::Queued if expired => {
                self.fail_call(n, Problem::NotBridged);
                return self.hang_up(n, now);
            }
            CallPhase::Talking if expired => return self.hang_up(n, now),
            CallPhase::AwaitingAgentBye if expired => {
                self.fail_call(n, Problem::AgentNotHungUp);
                return self.finish_call(n);
            }
            _ => {}
        }
        if let Some(call) = self.calls.get_mut(&n) {
            let due = call.due();
            self.timers.arm(&mut call.armed, Key::Call(n), due);
        }
    }

    // ------------------------------------------------------------ agent legs

    /// The gateway offers a call to an agent: the phone answers at once.
    fn offer(&mut self, socket: usize, req: &Request, from: SocketAddr, now: Instant) {
        let call_id = req.headers.call_id.as_str();
        if let Some(&id) = self.leg_ids.get(call_id) {
            // A retransmitted INVITE: the same 200 again.
            self.stats.duplicates += 1;
            if let Some(leg) = self.legs.get(&id) {
                self.net.resend(&leg.ok);
            }
            return;
        }
        if parse_answer(&req.body).is_err() {
            self.stats.problem(Problem::AgentBadOffer);
            return self.reply(socket, req, 488, from);
        }
        let call = user_of(&req.headers.from.uri)
            .and_then(|u| call_of_caller(&u))
            .filter(|n| self.calls.contains_key(n));
        match call.and_then(|n| self.calls.get_mut(&n)) {
            Some(c) => {
                c.offered = Some(now);
                if let Some(answered) = c.answered {
                    self.stats.answer_to_offer.record(since_ns(answered, now));
                }
            }
            None => self.stats.problem(Problem::OfferForUnknownCall),
        }
        let id = self.next_leg;
        self.next_leg += 1;
        let agent = user_of(&req.uri).unwrap_or_default();
        let mut ok = req.response(200, Some(&format!("a{:x}-{id}", self.run)));
        let contact = format!("sip:{agent}@{}", self.net.locals[socket]);
        if let Ok(uri) = contact.parse::<Uri>() {
            ok.headers.contact = Contacts::List(vec![NameAddr::new(uri)]);
        }
        ok.headers
            .push(HeaderName::ContentType, "application/sdp".to_owned());
        ok.body = Bytes::from(sdp_answer(self.local_ip, self.rtp_port, id));
        let out = Outgoing::new(ok.to_bytes(), socket, from, now, false);
        self.net.resend(&out);
        let mut leg = Leg {
            call_id: call_id.to_owned(),
            call,
            phase: LegPhase::Unacked,
            ok: out,
            forget_at: None,
            armed: None,
        };
        let due = leg.due();
        self.timers.arm(&mut leg.armed, Key::Leg(id), due);
        self.leg_ids.insert(leg.call_id.clone(), id);
        self.legs.insert(id, leg);
    }

    fn leg_ack(&mut self, call_id: &str, now: Instant) {
        let Some(leg) = self
            .leg_ids
            .get(call_id)
            .and_then(|id| self.legs.get_mut(id))
        else {
            return;
        };
        if leg.phase != LegPhase::Unacked {
            self.stats.duplicates += 1;
            return;
        }
        leg.phase = LegPhase::Up;
        self.stats.bridged += 1;
        self.stats.first_bridge.get_or_insert(now);
        self.stats.last_bridge = Some(now);
        let Some(n) = leg.call else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&n) {
            call.agent_acked = true;
            if call.phase == CallPhase::Queued {
                self.start_talking(n, now);
            }
        }
    }

    /// The caller is answered and its agent bridged: the hold starts.
    fn start_talking(&mut self, n: u32, now: Instant) {
        let hold = Duration::from_millis(self.args.hold_ms);
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        call.phase = CallPhase::Talking;
        call.deadline = Some(now + hold);
        self.stats.up += 1;
        self.stats.peak_up = self.stats.peak_up.max(self.stats.up);
        self.timers
            .arm(&mut call.armed, Key::Call(n), call.deadline);
    }

    fn leg_bye(&mut self, socket: usize, req: &Request, from: SocketAddr, now: Instant) {
        let Some(&id) = self.leg_ids.get(req.headers.call_id.as_str()) else {
            return self.reply(socket, req, 481, from);
        };
        self.reply(socket, req, 200, from);
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.phase == LegPhase::Closed {
            self.stats.duplicates += 1;
            return;
        }
        if leg.phase == LegPhase::Unacked {
            self.stats.problem(Problem::AgentNoAck);
        }
        leg.phase = LegPhase::Closed;
        leg.forget_at = Some(now + GIVE_UP);
        self.timers.arm(&mut leg.armed, Key::Leg(id), leg.forget_at);
        let Some(n) = leg.call else {
            return;
        };
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        call.agent_hung_up = true;
        if let Some(sent) = call.bye_sent {
            self.stats.bye_to_agent_bye.record(since_ns(sent, now));
        }
        match call.phase {
            CallPhase::AwaitingAgentBye => self.finish_call(n),
            CallPhase::Queued | CallPhase::Talking => self.fail_call(n, Problem::AgentHungUpEarly),
            CallPhase::Inviting | CallPhase::Hanging => {}
        }
    }

    fn leg_timer(&mut self, id: u64, at: Instant, now: Instant) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if !fire(&mut leg.armed, at) {
            return;
        }
        match leg.phase {
            LegPhase::Unacked => match leg.ok.poll(now) {
                Resend::Now => {
                    self.net.resend(&leg.ok);
                    self.stats.retransmitted += 1;
                }
                Resend::Later => {}
                Resend::GiveUp => {
                    leg.phase = LegPhase::Closed;
                    leg.forget_at = Some(now);
                    self.stats.problem(Problem::AgentNoAck);
                    if let Some(n) = leg.call {
                        self.fail_call(n, Problem::AgentNoAck);
                    }
                }
            },
            LegPhase::Closed if leg.forget_at.is_some_and(|t| now >= t) => {
                if let Some(leg) = self.legs.remove(&id) {
                    self.leg_ids.remove(&leg.call_id);
                }
                return;
            }
            _ => {}
        }
        if let Some(leg) = self.legs.get_mut(&id) {
            let due = leg.due();
            self.timers.arm(&mut leg.armed, Key::Leg(id), due);
        }
    }

    // ------------------------------------------------------------ run

    fn run(&mut self) -> Result<bool, CallsError> {
        let agents = self.args.agents;
        let setup = Instant::now();
        self.drive(Stage::Register, agents, self.args.setup_rate)?;
        self.drive(Stage::Login, agents, self.args.setup_rate)?;
        let setup_secs = setup.elapsed().as_secs_f64();
        marker(&format!(
            "AGENTS ready registered={} logged_in={} of {agents} in {setup_secs:.1} s",
            self.stats.registered, self.stats.logged_in
        ));
        self.idle(Duration::from_secs(self.args.settle_secs))?;

        marker("CALLS start");
        let t0 = Instant::now();
        self.drive(Stage::Calls, self.args.calls, self.args.rate)?;
        let calls_secs = t0.elapsed().as_secs_f64();
        marker("CALLS end");
        // Late retransmissions get their answers (and the bench script has
        // time to read this process's CPU time).
        self.idle(Duration::from_secs(2))?;
        self.stats.send_errors = self.net.send_errors;
        self.report(setup_secs, calls_secs);
        Ok(self.stats.failed == 0
            && self.stats.completed == self.stats.attempted
            && !self.stop.load(Ordering::Relaxed)
            && self.stats.logged_in == agents)
    }

    fn report(&self, setup_secs: f64, calls_secs: f64) {
        let s = &self.stats;
        let a = &self.args;
        let per_s = |count: u32, from: Option<Instant>, to: Option<Instant>| match (from, to) {
            // n events over the n-1 intervals between the first and last.
            (Some(f), Some(t)) if count > 1 && t > f => {
                f64::from(count - 1) / t.duration_since(f).as_secs_f64()
            }
            _ => 0.0,
        };
        let offered = per_s(s.attempted, s.first_start, s.last_start);
        let bridged = per_s(s.bridged, s.first_bridge, s.last_bridge);
        let ms = |h: &LatencyHistogram, q: f64| {
            h.quantile_ns(q)
                .map_or("n/a".to_owned(), |n| format!("{:.2}", n as f64 / 1e6))
        };
        let max = |h: &LatencyHistogram| {
            h.max_ns()
                .map_or("n/a".to_owned(), |n| format!("{:.2}", n as f64 / 1e6))
        };
        let cap = if a.concurrent == 0 {
            "no cap".to_owned()
        } else {
            format!("at most {} in progress", a.concurrent)
        };
        println!(
            "calls load: {} calls at {}/s ({cap}), hold {} ms, {} agents on {} sockets, DID {}",
            a.calls, a.rate, a.hold_ms, a.agents, a.agent_sockets, a.did
        );
        println!(
            "  agents: {} registered, {} logged in, {setup_secs:.1} s",
            s.registered, s.logged_in
        );
        println!(
            "  calls: attempted {}, answered by the gateway {}, bridged {}, completed {}, failed {} ({calls_secs:.1} s)",
            s.attempted, s.answered, s.bridged, s.completed, s.failed
        );
        println!("  rate: offered {offered:.0}/s, bridged {bridged:.0}/s (first to last bridge)");
        println!(
            "  setup latency ms: INVITE->200 p50 {} p99 {} max {}; carrier 200->agent INVITE p50 {} p99 {} max {}",
            ms(&s.invite_to_200, 0.5),
            ms(&s.invite_to_200, 0.99),
            max(&s.invite_to_200),
            ms(&s.answer_to_offer, 0.5),
            ms(&s.answer_to_offer, 0.99),
            max(&s.answer_to_offer)
        );
        println!(
            "  teardown latency ms: carrier BYE->agent BYE p50 {} p99 {} max {}",
            ms(&s.bye_to_agent_bye, 0.5),
            ms(&s.bye_to_agent_bye, 0.99),
            max(&s.bye_to_agent_bye)
        );
        println!(
            "  concurrency: peak {} calls bridged at once, peak {} in progress",
            s.peak_up, s.peak_in_progress
        );
        println!("  problems: {}", problems_text(&s.problems));
        println!(
            "  SIP: {} retransmissions sent, {} gateway retransmissions answered, {} send errors, {} unparsable; RTP packets received {}",
            s.retransmitted, s.duplicates, s.send_errors, s.unparsable, s.rtp_packets
        );
        println!(
            "RESULT calls={} rate={} attempted={} answered={} bridged={} completed={} failed={} offered_cps={offered:.0} bridged_cps={bridged:.0} \
inv_p50_ms={} inv_p99_ms={} offer_p50_ms={} offer_p99_ms={} bye_p50_ms={} bye_p99_ms={} peak_up={} retrans={} problems={}",
            a.calls,
            a.rate,
            s.attempted,
            s.answered,
            s.bridged,
            s.completed,
            s.failed,
            ms(&s.invite_to_200, 0.5),
            ms(&s.invite_to_200, 0.99),
            ms(&s.answer_to_offer, 0.5),
            ms(&s.answer_to_offer, 0.99),
            ms(&s.bye_to_agent_bye, 0.5),
            ms(&s.bye_to_agent_bye, 0.99),
            s.peak_up,
            s.retransmitted,
            problems_text(&s.problems)
        );
    }
}

/// The first SIGINT or SIGTERM sets the flag (a clean stop: the calls in
/// progress finish and the report is printed); the second exits at once.
fn watch_signals() -> Result<Arc<AtomicBool>, CallsError> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(CallsError::Signals)?;
    // Registered here, before any load, so an early signal is not lost.
    let (mut int, mut term) = runtime
        .block_on(async {
            Ok::<_, io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(CallsError::Signals)?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                for _ in 0..2 {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    if flag.swap(true, Ordering::Relaxed) {
                        std::process::exit(130);
                    }
                    eprintln!("switchboard-loadgen calls: stopping (again to quit at once)");
                }
            });
        })
        .map_err(CallsError::Signals)?;
    Ok(stop)
}

/// Prints a phase marker the bench script waits for, at once.
fn marker(text: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub fn run(args: CallsArgs) -> ExitCode {
    match Generator::new(args).and_then(|mut g| g.run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(CallsError::Interrupted) => {
            eprintln!("switchboard-loadgen calls: interrupted during the set-up");
            ExitCode::from(130)
        }
        Err(e @ CallsError::Zero(_)) => {
            eprintln!("switchboard-loadgen calls: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("switchboard-loadgen calls: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn invite_retransmits_double_until_a_provisional_answer() {
        let t0 = Instant::now();
        let to: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let mut out = Outgoing::new(b"INVITE".to_vec(), 0, to, t0, true);
        assert_eq!(out.due(), t0 + T1);
        assert_eq!(out.poll(t0 + Duration::from_millis(499)), Resend::Later);
        assert_eq!(out.poll(t0 + T1), Resend::Now);
        // Timer A doubles: next at 0.5 + 1 s.
        assert_eq!(out.due(), t0 + T1 + 2 * T1);
        assert_eq!(out.poll(t0 + 3 * T1), Resend::Now);
        assert_eq!(out.due(), t0 + 3 * T1 + 4 * T1);
        out.provisional = true;
        assert_eq!(out.due(), t0 + GIVE_UP);
        assert_eq!(out.poll(t0 + Duration::from_secs(20)), Resend::Later);
        assert_eq!(out.poll(t0 + GIVE_UP), Resend::GiveUp);
    }

    #[test]
    fn non_invite_and_2xx_retransmits_cap_at_t2() {
        let t0 = Instant::now();
        let to: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let mut out = Outgoing::new(b"BYE".to_vec(), 0, to, t0, false);
        let mut intervals = Vec::new();
        let now = loop {
            let now = out.due();
            match out.poll(now) {
                Resend::Now => intervals.push(out.interval),
                Resend::GiveUp => break now,
                Resend::Later => panic!("woken for nothing at {:?}", now - t0),
            }
        };
        assert_eq!(
            &intervals[..5],
            &[Duration::from_secs(1), Duration::from_secs(2), T2, T2, T2]
        );
        assert_eq!(now, t0 + GIVE_UP);
        // 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5: 10 resends.
        assert_eq!(intervals.len(), 10);
    }

    #[test]
    fn timers_skip_stale_entries_and_keep_the_earliest() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut armed = None;
        let key = Key::Call(7);
        timers.arm(&mut armed, key, Some(t0 + T2));
        // An earlier wake-up replaces it; a later one is not queued.
        timers.arm(&mut armed, key, Some(t0 + T1));
        timers.arm(&mut armed, key, Some(t0 + GIVE_UP));
        timers.arm(&mut armed, key, None);
        assert_eq!(timers.heap.len(), 2);
        assert_eq!(timers.next(), Some(t0 + T1));
        assert_eq!(timers.pop_due(t0), None);
        let (at, k) = timers.pop_due(t0 + T1).unwrap();
        assert_eq!(k, key);
        assert!(fire(&mut armed, at));
        assert_eq!(armed, None);
        // The entry for T2 is stale now: the entity has no wake-up armed.
        let (at, _) = timers.pop_due(t0 + T2).unwrap();
        assert!(!fire(&mut armed, at));
        assert_eq!(timers.pop_due(t0 + GIVE_UP), None);
    }

    #[test]
    fn our_call_ids_carry_the_run_and_the_index() {
        assert_eq!(our_id("c1f-42@127.0.0.1", 'c', 0x1f), Some(42));
        assert_eq!(our_id("c1f-42@127.0.0.1", 'c', 0x2f), None);
        assert_eq!(our_id("c1f-42@127.0.0.1", 'l', 0x1f), None);
        assert_eq!(our_id("r1f-x@127.0.0.1", 'r', 0x1f), None);
        assert_eq!(our_id("0a1b2c3d@switchboard", 'c', 0x1f), None);
        assert_eq!(call_of_caller(&caller_number(0)), Some(0));
        assert_eq!(call_of_caller(&caller_number(12_345_678)), Some(12_345_678));
        assert_eq!(call_of_caller("+15551230001"), None);
    }

    #[test]
    fn requests_and_the_agents_answer_parse() {
        let via: SocketAddr = "127.0.0.2:5080".parse().unwrap();
        let head = Head {
            via,
            from: "<sip:+19990000003@127.0.0.2>;tag=c1-3",
            to: "<sip:+15550100@127.0.0.1:5060>",
            call_id: "c1-3@127.0.0.2",
        };
        let body = sdp_offer("127.0.0.2".parse().unwrap(), 4000, CodecChoice::Pcmu, 3);
        let text = request_text(
            "INVITE",
            "sip:+15550100@127.0.0.1:5060",
            "z9hG4bK-c1-3-i",
            1,
            &head,
            "Content-Type: application/sdp\r\n",
            &body,
        );
        let Ok(Message::Request(req)) = parse(&text) else {
            panic!("unparsable: {}", String::from_utf8_lossy(&text));
        };
        assert_eq!(req.method, Method::Invite);
        assert_eq!(req.headers.cseq.seq, 1);
        assert_eq!(
            user_of(&req.headers.from.uri).as_deref(),
            Some("+19990000003")
        );
        assert_eq!(
            req.headers.top_via().and_then(|v| v.branch()),
            Some("z9hG4bK-c1-3-i")
        );
        assert_eq!(parse_answer(&req.body).unwrap().addr.port(), 4000);
        let answer = sdp_answer("127.0.0.1".parse().unwrap(), 4002, 9);
        let m = parse_answer(answer.as_bytes()).unwrap();
        assert_eq!((m.addr.port(), m.payload_type), (4002, 0));
    }

    #[test]
    fn problems_print_by_kind() {
        let mut stats = Stats::default();
        assert_eq!(problems_text(&stats.problems), "none");
        stats.problem(Problem::InviteStatus(503));
        stats.problem(Problem::NotBridged);
        stats.problem(Problem::InviteStatus(503));
        assert_eq!(problems_text(&stats.problems), "invite_503=2,not_bridged=1");
    }
}
