//! The call-centre flows at the endpoint, sans-IO on a virtual clock: a
//! carrier's caller answered and queued, offered to agents' phones by our
//! INVITE, ring timeouts, hang-ups while ringing, ring-all races, hold,
//! outbound calls through the trunk, toll-fraud refusals, IVR keys and
//! queue overflow. Every phone and the carrier are played by the test,
//! which writes their SIP and reads everything the endpoint transmits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::tests::flow;
use super::*;
use crate::call::acd::{AgentState, PauseReason};
use crate::call::record::{CallDirection, CallOutcome, CallRecord, HungUpBy, OfferResult};
use crate::config::PromptName;
use crate::media::control::LegReport;
use crate::media::player::Prompt;
use crate::media::relay::LegId;
use crate::media::rtp::StatsSummary;
use crate::media::session::{Feed, SessionId};
use crate::sip::auth::{respond, Challenge};
use crate::sip::message::{parse, Contacts, HeaderName, Message, Method, NameAddr, Request};

/// The carrier: its peer address is the trunk's.
const TRUNK: u16 = 5080;
/// Agents' phones, each registered from (and rung at) its own port.
const A1: u16 = 41001;
const A2: u16 = 41002;
const A3: u16 = 41003;

const CONFIG: &str = r#"
[sip]
listen = [{ transport = "udp", address = "127.0.0.1:5060" }]

[registrar]
# No OPTIONS probes: the test phones would have to answer them.
qualify_interval_secs = 0

[media]
codecs = ["PCMU", "PCMA"]
hold_music = "hold"

[[agents]]
id = "1001"
password = "pass1001"
dial_permissions = ["internal", "national"]

[[agents]]
id = "1002"
password = "pass1002"

[[agents]]
id = "1003"
password = "pass1003"

[[trunks]]
name = "carrier"
peer = "127.0.0.1:5080"
dids = ["+15550100", "+15550101", "+15550102", "+15550103", "+15550104"]
caller_id = "+15550199"
auth = { username = "sb-trunk", password = "trunk-secret" }

[[queues]]
name = "support"
extension = "500"
dids = ["+15550100"]
agents = ["1001", "1002"]
ring_timeout_secs = 5
announce_every_secs = 0

[[queues]]
name = "sales"
extension = "501"
agents = ["1003"]
announce_every_secs = 0

[[queues]]
name = "hotline"
dids = ["+15550102"]
agents = ["1001", "1002"]
strategy = "ring-all"
announce_every_secs = 0

[[queues]]
name = "brief"
dids = ["+15550103"]
agents = ["1003"]
max_wait_secs = 10
overflow = "hangup"
announce_every_secs = 0

[[queues]]
name = "busy"
dids = ["+15550104"]
agents = ["1003"]
max_wait_secs = 10
overflow = "message:all-agents-busy"
announce_every_secs = 0

[[ivr]]
name = "main"
dids = ["+15550101"]
prompt = "main-menu"
timeout_secs = 4
max_attempts = 2
options = { "1" = "queue:sales" }
default = "queue:support"
"#;

/// The configuration above, with a few prompts "loaded" (short synthetic
/// sounds, as the runtime would load the files) so that what a caller
/// hears can be told apart: the queues' music, the hold music and the
/// overflow message. The greeting and the IVR menu stay unloaded (silent).
fn flow_config() -> EndpointConfig {
    let config =
        crate::config::Config::from_toml_str(CONFIG, std::path::Path::new("test")).unwrap();
    let mut c = EndpointConfig::from_config(&config);
    for name in ["hold", "hold-music", "all-agents-busy"] {
        let prompt: PromptName = name.parse().unwrap();
        c.queues.prompts.insert(
            prompt.path(&c.queues.sounds_dir),
            Prompt::from_samples(name, vec![0; 800]),
        );
    }
    c
}

/// A phone's SDP.
fn sdp(rtp: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=- 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na={direction}\r\n"
    )
}

/// Whether a feed plays the prompt called `name` (the player's items are
/// private; their debug form names the prompt).
fn plays(feed: &Feed, name: &str) -> bool {
    matches!(feed, Feed::Play(_)) && format!("{feed:?}").contains(&format!("name: {name:?}"))
}

/// One phone's side of a dialog: what it needs to send requests in it.
#[derive(Debug, Clone)]
struct Leg {
    port: u16,
    call_id: String,
    /// Our From (with our tag) and the peer's To (with its tag, once known).
    local: String,
    remote: String,
    /// Where in-dialog requests go (the peer's Contact).
    target: String,
    /// Our last CSeq number.
    cseq: u32,
    /// The branch of our last INVITE (its CANCEL and non-2xx ACK reuse it).
    invite_branch: String,
    /// What our last INVITE dialled (Request-URI user part).
    dialled: String,
}

impl Leg {
    /// A phone about to place a call as `user`.
    fn new(port: u16, user: &str, call_id: &str) -> Leg {
        Leg {
            port,
            call_id: call_id.to_owned(),
            local: format!("<sip:{user}@127.0.0.1:{port}>;tag=t-{call_id}"),
            remote: String::new(),
            target: String::new(),
            cseq: 0,
            invite_branch: String::new(),
            dialled: String::new(),
        }
    }

    /// Our call was answered with `ok`: the dialog's remote side.
    fn answered(&mut self, ok: &Response) {
        self.remote = ok.headers.to.to_string();
        self.target = ok.headers.contact.first().unwrap().uri.to_string();
    }
}

/// The endpoint, the virtual clock, and everything the endpoint output.
struct Net {
    ep: Endpoint,
    t0: Instant,
    wall0: SystemTime,
    now: Instant,
    /// Every message transmitted, with the remote port it went to.
    sent: Vec<(u16, Message)>,
    media: Vec<MediaCommand>,
    /// How many of `media` were looked at for closed legs.
    media_seen: usize,
    records: Vec<CallRecord>,
    events: Vec<crate::control::Event>,
    replies: Vec<(
        u64,
        Result<crate::control::Reply, crate::control::ControlError>,
    )>,
    branches: u32,
    reg_cseq: u32,
}

impl Net {
    fn new() -> Net {
        let now = Instant::now();
        Net {
            ep: Endpoint::new(flow_config(), now).unwrap(),
            t0: now,
            wall0: SystemTime::now(),
            now,
            sent: Vec::new(),
            media: Vec::new(),
            media_seen: 0,
            records: Vec::new(),
            events: Vec::new(),
            replies: Vec::new(),
            branches: 0,
            reg_cseq: 0,
        }
    }

    fn wall(&self) -> SystemTime {
        self.wall0 + (self.now - self.t0)
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bKphone{}", self.branches)
    }

    fn drain(&mut self) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { flow, data } => {
                    let message = parse(&data).unwrap();
                    self.sent.push((flow.remote.port(), message));
                }
                Output::Media(c) => self.media.push(c),
                Output::CallRecord(r) => self.records.push(*r),
                Output::Event(e) => self.events.push(e),
                Output::ControlReply { id, result } => self.replies.push((id, result)),
                Output::Registrar(_) => {}
            }
        }
    }

    fn input(&mut self, input: Input) {
        let wall = self.wall();
        self.ep.handle_input(self.now, wall, input);
        self.drain();
    }

    /// `text` from the phone at `port`; the responses it got back.
    fn send(&mut self, port: u16, text: &str) -> Vec<Response> {
        let mark = self.mark();
        self.input(Input::Message {
            flow: flow(port),
            data: Bytes::from(text.to_owned()),
        });
        self.responses(mark, port)
    }

    /// Moves the clock on by `by`, firing every timer due on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        let mut steps = 0;
        while let Some(due) = self.ep.poll_timeout() {
            if due > end {
                break;
            }
            steps += 1;
            assert!(steps < 10_000, "a timer keeps firing at {due:?}");
            self.now = self.now.max(due);
            let wall = self.wall();
            self.ep.handle_timeout(self.now, wall);
            self.drain();
        }
        self.now = end;
        let wall = self.wall();
        self.ep.handle_timeout(self.now, wall);
        self.drain();
    }

    fn mark(&self) -> usize {
        self.sent.len()
    }

    /// Responses sent to `port` since `mark`, provisional ones included
    /// but for 100 Trying (hop by hop, RFC 3261 §17.2.1).
    fn responses(&self, mark: usize, port: u16) -> Vec<Response> {
        self.sent[mark..]
            .iter()
            .filter_map(|(p, m)| match m {
                Message::Response(r) if *p == port && r.status != 100 => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// `method` requests sent to `port` since `mark`.
    fn requests(&self, mark: usize, port: u16, method: Method) -> Vec<Request> {
        self.sent[mark..]
            .iter()
            .filter_map(|(p, m)| match m {
                Message::Request(r) if *p == port && r.method == method => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether anything at all was sent to `port` since `mark`.
    fn silent_to(&self, mark: usize, port: u16) -> bool {
        self.sent[mark..].iter().all(|(p, _)| *p != port)
    }

    /// The methods of the requests sent to `port` since `mark`, in order.
    fn methods(&self, mark: usize, port: u16) -> Vec<Method> {
        self.sent[mark..]
            .iter()
            .filter_map(|(p, m)| match m {
                Message::Request(r) if *p == port => Some(r.method.clone()),
                _ => None,
            })
            .collect()
    }

    fn state(&mut self, agent: &str) -> AgentState {
        self.ep
            .queues
            .acd_mut()
            .unwrap()
            .agent_state(&agent.parse().unwrap())
    }

    /// REGISTER with a digest exchange: 401, then credentials, then 200.
    fn register(&mut self, port: u16, user: &str) {
        self.reg_cseq += 2;
        let text = |branch: &str, cseq: u32, extra: &str| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{port}\r\nTo: <sip:{user}@127.0.0.1>\r\n\
Call-ID: reg-{user}-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n\
Expires: 3600\r\n{extra}Content-Length: 0\r\n\r\n"
            )
        };
        let branch = self.branch();
        let r = self.send(port, &text(&branch, self.reg_cseq - 1, ""));
        assert_eq!(r[0].status, 401);
        let challenge = r[0].headers.get(&HeaderName::WwwAuthenticate).unwrap();
        let creds = respond(
            &Challenge::parse(challenge).unwrap(),
            "REGISTER",
            "sip:127.0.0.1",
            user,
            &format!("pass{user}"),
            "cn0nce",
            1,
        )
        .unwrap();
        let extra = format!("Authorization: {}\r\n", creds.to_header_value());
        let branch = self.branch();
        let r = self.send(port, &text(&branch, self.reg_cseq, &extra));
        assert_eq!(r.last().unwrap().status, 200, "{user} registered");
    }

    /// The phone of `leg` sends an INVITE dialling `to`.
    fn invite(&mut self, leg: &mut Leg, to: &str, extra: &str, body: &str) -> Vec<Response> {
        leg.cseq += 1;
        leg.invite_branch = self.branch();
        leg.dialled = to.to_owned();
        let port = leg.port;
        let text = format!(
            "INVITE sip:{to}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\n\
Contact: <sip:phone@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n{extra}\
Content-Length: {}\r\n\r\n{body}",
            leg.invite_branch,
            leg.local,
            leg.call_id,
            leg.cseq,
            body.len()
        );
        self.send(port, &text)
    }

    /// The ACK of a non-2xx final response to our INVITE (RFC 3261
    /// §17.1.1.3: same branch, the response's To).
    fn ack_failure(&mut self, leg: &Leg, failure: &Response) {
        let port = leg.port;
        let text = format!(
            "ACK sip:{}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            leg.dialled, leg.invite_branch, leg.local, failure.headers.to, leg.call_id, leg.cseq
        );
        assert!(self.send(port, &text).is_empty());
    }

    /// CANCEL of our pending INVITE (RFC 3261 §9.1).
    fn cancel(&mut self, leg: &Leg) -> Vec<Response> {
        let port = leg.port;
        let text = format!(
            "CANCEL sip:{}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: <sip:{}@127.0.0.1>\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\n\
Content-Length: 0\r\n\r\n",
            leg.dialled, leg.invite_branch, leg.local, leg.dialled, leg.call_id, leg.cseq
        );
        self.send(port, &text)
    }

    /// An agent's INVITE with its digest exchange (407, ACK, credentials).
    fn agent_invite(&mut self, leg: &mut Leg, agent: &str, to: &str, body: &str) -> Vec<Response> {
        let r = self.invite(leg, to, "", body);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 407, "an agent's INVITE is challenged");
        self.ack_failure(leg, &r[0]);
        let challenge = r[0].headers.get(&HeaderName::ProxyAuthenticate).unwrap();
        let creds = respond(
            &Challenge::parse(challenge).unwrap(),
            "INVITE",
            &format!("sip:{to}@127.0.0.1:5060"),
            agent,
            &format!("pass{agent}"),
            "cn0nce",
            1,
        )
        .unwrap();
        let extra = format!("Proxy-Authorization: {}\r\n", creds.to_header_value());
        self.invite(leg, to, &extra, body)
    }

    /// A request in the dialog of `leg` (the ACK of a 2xx when `method` is
    /// ACK: the INVITE's CSeq, a new branch).
    fn in_dialog(&mut self, leg: &mut Leg, method: &str, body: &str) -> Vec<Response> {
        if method != "ACK" {
            leg.cseq += 1;
        }
        let branch = self.branch();
        let port = leg.port;
        let ctype = match (body.is_empty(), method) {
            (true, _) => String::new(),
            (false, "INFO") => "Content-Type: application/dtmf-relay\r\n".to_owned(),
            (false, _) => "Content-Type: application/sdp\r\n".to_owned(),
        };
        let text = format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n\
Contact: <sip:phone@127.0.0.1:{port}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            leg.target,
            leg.local,
            leg.remote,
            leg.call_id,
            leg.cseq,
            body.len()
        );
        self.send(port, &text)
    }

    /// A carrier's call to `did` from `number`, answered and ACKed.
    fn trunk_call(&mut self, number: &str, did: &str, call_id: &str) -> Leg {
        let mut leg = Leg::new(TRUNK, number, call_id);
        let r = self.invite(&mut leg, did, "", &sdp(30000, 1, "sendrecv"));
        let ok = r.last().unwrap();
        assert_eq!(ok.status, 200, "the gateway answers the caller itself");
        assert!(
            String::from_utf8_lossy(&ok.body).contains("m=audio "),
            "with SDP"
        );
        leg.answered(ok);
        assert!(self.in_dialog(&mut leg, "ACK", "").is_empty());
        leg
    }

    /// An agent registers and dials `*21`: logged in (or offered a call
    /// at once when one waits).
    fn login(&mut self, port: u16, agent: &str) {
        self.register(port, agent);
        let mut leg = Leg::new(port, agent, &format!("login-{agent}-{}", self.branches));
        let r = self.agent_invite(&mut leg, agent, "*21", &sdp(port + 1000, 1, "sendrecv"));
        let ok = r.last().unwrap();
        assert_eq!(ok.status, 200, "feature code answered");
        leg.answered(ok);
        self.in_dialog(&mut leg, "ACK", "");
    }

    /// The phone at `port` answers our INVITE `invite` with `status` (a
    /// 2xx carries its SDP answer): its side of the dialog.
    fn answer(&mut self, invite: &Request, port: u16, status: u16, tag: &str) -> Leg {
        let mut r = invite.response(status, Some(tag));
        if (200..300).contains(&status) {
            let contact = format!("sip:agent@127.0.0.1:{port}").parse().unwrap();
            r.headers.contact = Contacts::List(vec![NameAddr::new(contact)]);
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = Bytes::from(sdp(port + 2000, 1, "sendrecv"));
        }
        self.input(Input::Message {
            flow: flow(port),
            data: Bytes::from(r.to_bytes()),
        });
        Leg {
            port,
            call_id: invite.headers.call_id.to_string(),
            local: r.headers.to.to_string(),
            remote: invite.headers.from.to_string(),
            target: invite.headers.contact.first().unwrap().uri.to_string(),
            cseq: 0,
            invite_branch: String::new(),
            dialled: String::new(),
        }
    }

    /// The phone at `port` answers a request of ours 200 (BYE, CANCEL).
    fn ok(&mut self, request: &Request, port: u16) {
        let r = request.response(200, Some("ok"));
        self.input(Input::Message {
            flow: flow(port),
            data: Bytes::from(r.to_bytes()),
        });
    }

    /// Every leg the endpoint closed reports its media statistics, as a
    /// media worker would.
    fn close_legs(&mut self) {
        while self.media_seen < self.media.len() {
            let command = self.media[self.media_seen].clone();
            self.media_seen += 1;
            if let MediaCommand::CloseLeg { session, leg } = command {
                self.leg_closed(session, leg);
            }
        }
    }

    fn leg_closed(&mut self, session: SessionId, leg: LegId) {
        let ports = self
            .media
            .iter()
            .find_map(|c| match c {
                MediaCommand::OpenLeg {
                    session: s,
                    leg: l,
                    ports,
                    ..
                } if *s == session && *l == leg => Some(*ports),
                _ => None,
            })
            .unwrap();
        self.input(Input::Media(MediaEvent::LegClosed {
            session,
            leg,
            ports,
            report: LegReport {
                stats: StatsSummary {
                    packets: 100,
                    lost: 0,
                    jitter_ms: 1.0,
                    mos: 4.4,
                    round_trip_ms: None,
                },
                packets_received: 100,
                packets_sent: 100,
            },
        }));
    }

    /// The session of the latest caller leg opened since `media_mark`.
    fn caller_session(&self, media_mark: usize) -> SessionId {
        self.media[media_mark..]
            .iter()
            .rev()
            .find_map(|c| match c {
                MediaCommand::OpenLeg {
                    session,
                    leg: LegId::Caller,
                    ..
                } => Some(*session),
                _ => None,
            })
            .unwrap()
    }

    /// The feeds the caller leg of `session` was given since `media_mark`.
    fn caller_feeds(&self, media_mark: usize, session: SessionId) -> Vec<Feed> {
        self.media[media_mark..]
            .iter()
            .filter_map(|c| match c {
                MediaCommand::SetFeed {
                    session: s,
                    leg: LegId::Caller,
                    feed,
                } if *s == session => Some(feed.clone()),
                _ => None,
            })
            .collect()
    }

    /// The caller's session played its playlist to the end.
    fn playback_done(&mut self, session: SessionId) {
        self.input(Input::Media(MediaEvent::PlaybackDone {
            session,
            leg: LegId::Caller,
        }));
    }
}

fn offers(record: &CallRecord) -> Vec<(String, OfferResult)> {
    record
        .offers
        .iter()
        .map(|o| (o.agent.to_string(), o.result))
        .collect()
}

fn only_record(net: &Net) -> &CallRecord {
    assert_eq!(net.records.len(), 1, "{:#?}", net.records);
    &net.records[0]
}

/// A caller of the support queue answered by agent 1001: (caller's leg,
/// agent's leg).
fn bridged_call(net: &mut Net) -> (Leg, Leg) {
    net.login(A1, "1001");
    let mark = net.mark();
    let caller = net.trunk_call("+15557770001", "+15550100", "cust1");
    let invite = net.requests(mark, A1, Method::Invite).remove(0);
    net.answer(&invite, A1, 180, "ag1");
    let agent = net.answer(&invite, A1, 200, "ag1");
    assert!(matches!(net.state("1001"), AgentState::OnCall(_)));
    (caller, agent)
}

#[test]
fn a_queued_trunk_caller_is_offered_to_the_agent_who_logs_in_and_bridged() {
    let mut net = Net::new();
    let mut caller = net.trunk_call("+15557770001", "+15550100", "cust1");
    let caller_opened = net.media.iter().find_map(|c| match c {
        MediaCommand::OpenLeg {
            session,
            leg: LegId::Caller,
            ..
        } => Some(*session),
        _ => None,
    });
    let session = caller_opened.expect("the caller's leg opens");
    assert!(
        plays(net.caller_feeds(0, session).last().unwrap(), "hold-music"),
        "the waiting caller hears the queue's music"
    );

    // The agent registers and logs in with *21: the waiting call is offered.
    net.register(A1, "1001");
    let mark = net.mark();
    let mut login = Leg::new(A1, "1001", "login1");
    let r = net.agent_invite(&mut login, "1001", "*21", &sdp(42001, 1, "sendrecv"));
    assert_eq!(r.last().unwrap().status, 200);
    login.answered(r.last().unwrap());
    net.in_dialog(&mut login, "ACK", "");
    assert!(matches!(net.state("1001"), AgentState::Offered(_)));
    let invites = net.requests(mark, A1, Method::Invite);
    assert_eq!(invites.len(), 1, "one offer");
    let offer = &invites[0];
    assert_eq!(
        offer.uri.to_string(),
        "sip:1001@127.0.0.1:41001",
        "sent to the registered contact"
    );
    let from = &offer.headers.from;
    assert!(
        from.display.as_deref().unwrap().contains("+15557770001"),
        "{from}"
    );
    assert_eq!(
        from.uri.as_sip().unwrap().user.as_deref(),
        Some("+15557770001")
    );
    assert_eq!(
        offer.headers.get(&HeaderName::ContentType),
        Some("application/sdp")
    );
    assert!(String::from_utf8_lossy(&offer.body).contains("m=audio "));

    // The agent's phone rings, then answers.
    net.answer(offer, A1, 180, "ag1");
    let mark = net.mark();
    let media_mark = net.media.len();
    let mut agent = net.answer(offer, A1, 200, "ag1");
    let acks = net.requests(mark, A1, Method::Ack);
    assert_eq!(acks.len(), 1, "the 2xx is ACKed");
    assert_eq!(acks[0].headers.cseq.seq, 1);
    assert_eq!(acks[0].headers.cseq.method, Method::Ack);
    assert_eq!(acks[0].headers.call_id, offer.headers.call_id);
    // RFC 3261 §13.2.2.4: to the phone's Contact, the remote target.
    assert_eq!(acks[0].uri.to_string(), "sip:agent@127.0.0.1:41001");
    let new = &net.media[media_mark..];
    assert!(new.iter().any(|c| matches!(
        c,
        MediaCommand::OpenLeg { session: s, leg: LegId::Agent, feed: Feed::Other, .. } if *s == session
    )));
    assert!(new.iter().any(|c| matches!(
        c,
        MediaCommand::SetFeed { session: s, leg: LegId::Caller, feed: Feed::Other } if *s == session
    )));
    assert!(new
        .iter()
        .any(|c| matches!(c, MediaCommand::StartRecording { session: s, .. } if *s == session)));
    assert!(matches!(net.state("1001"), AgentState::OnCall(_)));

    // A retransmission of the 200 is ACKed again, and changes nothing else.
    let mark = net.mark();
    let media_mark = net.media.len();
    net.answer(offer, A1, 200, "ag1");
    assert_eq!(net.methods(mark, A1), vec![Method::Ack]);
    assert_eq!(net.media.len(), media_mark);

    // The caller hangs up: 200, and the agent gets our BYE.
    net.advance(Duration::from_secs(30));
    let mark = net.mark();
    let r = net.in_dialog(&mut caller, "BYE", "");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200);
    let byes = net.requests(mark, A1, Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].headers.call_id, offer.headers.call_id);
    assert_eq!(byes[0].headers.to.tag(), Some("ag1"));
    assert_eq!(byes[0].uri.to_string(), "sip:agent@127.0.0.1:41001");
    net.ok(&byes[0], A1);
    // No record before the media reports are in.
    assert!(net.records.is_empty());
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Answered);
    assert_eq!(record.direction, CallDirection::Inbound);
    assert_eq!(record.agent.as_ref().map(|a| a.as_str()), Some("1001"));
    assert_eq!(record.hung_up_by, Some(HungUpBy::Caller));
    assert_eq!(record.caller, "+15557770001");
    assert_eq!(
        record.queue.as_ref().map(|q| q.to_string()).as_deref(),
        Some("support")
    );
    assert_eq!(offers(record), vec![("1001".into(), OfferResult::Answered)]);
    assert!(record.recording.is_some());
    assert_eq!(record.talk, Duration::from_secs(30));
    assert!(record.caller_quality.is_some() && record.agent_quality.is_some());
    // After the queue's wrap-up time (10 s by default) the agent is free.
    assert_eq!(net.state("1001"), AgentState::WrapUp);
    net.advance(Duration::from_secs(10));
    assert_eq!(net.state("1001"), AgentState::Available);
    // A stray report later writes nothing more.
    net.leg_closed(session, LegId::Caller);
    assert_eq!(net.records.len(), 1);
    // The agent's own BYE for the finished call is not known any more.
    let r = net.in_dialog(&mut agent, "BYE", "");
    assert_eq!(r[0].status, 481);
}

#[test]
fn a_ring_timeout_cancels_the_phone_and_offers_the_call_to_the_next_agent() {
    let mut net = Net::new();
    net.login(A1, "1001");
    net.login(A2, "1002");
    let mark = net.mark();
    let mut caller = net.trunk_call("+15557770002", "+15550100", "cust2");
    let first = net.requests(mark, A1, Method::Invite);
    assert_eq!(first.len(), 1, "the longest idle agent is rung first");
    assert!(net.requests(mark, A2, Method::Invite).is_empty());
    net.answer(&first[0], A1, 180, "ag1");

    let mark = net.mark();
    net.advance(Duration::from_millis(4900));
    assert!(net.requests(mark, A1, Method::Cancel).is_empty());
    assert!(net.requests(mark, A2, Method::Invite).is_empty());
    net.advance(Duration::from_millis(100));
    let cancels = net.requests(mark, A1, Method::Cancel);
    assert_eq!(cancels.len(), 1, "rang for ring_timeout_secs: cancelled");
    assert_eq!(cancels[0].headers.call_id, first[0].headers.call_id);
    let second = net.requests(mark, A2, Method::Invite);
    assert_eq!(second.len(), 1, "the next agent is rung");

    // The first phone confirms the CANCEL and ends its INVITE with 487,
    // which the transaction layer ACKs; nothing else reaches it.
    let mark = net.mark();
    net.ok(&cancels[0], A1);
    net.answer(&first[0], A1, 487, "ag1");
    assert_eq!(net.methods(mark, A1), vec![Method::Ack]);
    assert_eq!(net.state("1001"), AgentState::Available);

    net.answer(&second[0], A2, 180, "ag2");
    net.answer(&second[0], A2, 200, "ag2");
    assert!(matches!(net.state("1002"), AgentState::OnCall(_)));
    let mark = net.mark();
    net.in_dialog(&mut caller, "BYE", "");
    let bye = net.requests(mark, A2, Method::Bye).remove(0);
    net.ok(&bye, A2);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Answered);
    assert_eq!(record.agent.as_ref().map(|a| a.as_str()), Some("1002"));
    assert_eq!(
        offers(record),
        vec![
            ("1001".into(), OfferResult::RingTimeout),
            ("1002".into(), OfferResult::Answered)
        ]
    );
    assert_eq!(record.wait, Duration::from_secs(5));
}

#[test]
fn a_caller_hanging_up_while_the_agent_rings_cancels_the_offer() {
    let mut net = Net::new();
    net.login(A1, "1001");
    let mark = net.mark();
    let mut caller = net.trunk_call("+15557770003", "+15550100", "cust3");
    let invite = net.requests(mark, A1, Method::Invite).remove(0);
    net.answer(&invite, A1, 180, "ag1");
    net.advance(Duration::from_secs(2));

    let mark = net.mark();
    let r = net.in_dialog(&mut caller, "BYE", "");
    assert_eq!(r[0].status, 200);
    let cancels = net.requests(mark, A1, Method::Cancel);
    assert_eq!(cancels.len(), 1, "the ringing phone is cancelled");
    assert!(net.requests(mark, A1, Method::Bye).is_empty());

    // The phone's 487 is absorbed (ACKed by the transaction layer only).
    let mark = net.mark();
    net.ok(&cancels[0], A1);
    net.answer(&invite, A1, 487, "ag1");
    assert_eq!(net.methods(mark, A1), vec![Method::Ack]);

    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Abandoned);
    assert_eq!(record.hung_up_by, Some(HungUpBy::Caller));
    assert_eq!(record.agent, None);
    assert_eq!(
        offers(record),
        vec![("1001".into(), OfferResult::Cancelled)]
    );
    assert_eq!(record.wait, Duration::from_secs(2));

    // Not the agent's fault: not paused, and rung with the next call.
    assert_eq!(net.state("1001"), AgentState::Available);
    let mark = net.mark();
    net.trunk_call("+15557770004", "+15550100", "cust4");
    assert_eq!(net.requests(mark, A1, Method::Invite).len(), 1);
}

#[test]
fn ring_all_bridges_the_first_answer_and_hangs_up_the_second() {
    let mut net = Net::new();
    net.login(A1, "1001");
    net.login(A2, "1002");
    let mark = net.mark();
    let media_mark = net.media.len();
    let mut caller = net.trunk_call("+15557770005", "+15550102", "cust5");
    let session = net.caller_session(media_mark);
    let one = net.requests(mark, A1, Method::Invite).remove(0);
    let two = net.requests(mark, A2, Method::Invite).remove(0);
    net.answer(&one, A1, 180, "ag1");
    net.answer(&two, A2, 180, "ag2");

    // Both answer; the first is bridged and the other stops ringing.
    let mark = net.mark();
    net.answer(&one, A1, 200, "ag1");
    assert_eq!(net.methods(mark, A1), vec![Method::Ack]);
    assert_eq!(net.methods(mark, A2), vec![Method::Cancel]);
    // Its 200 crossed our CANCEL: ACKed, then hung up.
    let mark = net.mark();
    net.answer(&two, A2, 200, "ag2");
    assert_eq!(net.methods(mark, A2), vec![Method::Ack, Method::Bye]);
    let bye = net.requests(mark, A2, Method::Bye).remove(0);
    assert_eq!(bye.headers.call_id, two.headers.call_id);
    net.ok(&bye, A2);

    let agent_legs = net.media[media_mark..]
        .iter()
        .filter(|c| {
            matches!(
                c,
                MediaCommand::OpenLeg {
                    leg: LegId::Agent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(agent_legs, 1, "exactly one bridge");
    assert!(matches!(net.state("1001"), AgentState::OnCall(_)));
    assert_eq!(net.state("1002"), AgentState::Available);
    assert!(matches!(
        net.caller_feeds(media_mark, session).last(),
        Some(Feed::Other)
    ));

    let mark = net.mark();
    net.in_dialog(&mut caller, "BYE", "");
    assert!(net.requests(mark, A2, Method::Bye).is_empty());
    let bye = net.requests(mark, A1, Method::Bye).remove(0);
    net.ok(&bye, A1);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.agent.as_ref().map(|a| a.as_str()), Some("1001"));
    assert_eq!(
        offers(record),
        vec![
            ("1001".into(), OfferResult::Answered),
            ("1002".into(), OfferResult::Cancelled)
        ]
    );
}

#[test]
fn an_agent_on_hold_plays_the_hold_music_to_the_caller() {
    let mut net = Net::new();
    let media_mark = net.media.len();
    let (mut caller, mut agent) = bridged_call(&mut net);
    let session = net.caller_session(media_mark);
    net.advance(Duration::from_secs(2));

    let media_mark = net.media.len();
    let r = net.in_dialog(&mut agent, "INVITE", &sdp(43001, 2, "sendonly"));
    assert_eq!(r[0].status, 200);
    let answer = String::from_utf8_lossy(&r[0].body).into_owned();
    assert!(answer.contains("a=recvonly"), "{answer}");
    net.in_dialog(&mut agent, "ACK", "");
    let feeds = net.caller_feeds(media_mark, session);
    assert_eq!(feeds.len(), 1);
    assert!(plays(&feeds[0], "hold"), "{:?}", feeds[0]);
    assert!(matches!(net.state("1001"), AgentState::OnHold(_)));

    net.advance(Duration::from_secs(7));
    let media_mark = net.media.len();
    let r = net.in_dialog(&mut agent, "INVITE", &sdp(43001, 3, "sendrecv"));
    assert_eq!(r[0].status, 200);
    assert!(String::from_utf8_lossy(&r[0].body).contains("a=sendrecv"));
    net.in_dialog(&mut agent, "ACK", "");
    let feeds = net.caller_feeds(media_mark, session);
    assert!(matches!(feeds[..], [Feed::Other]), "{feeds:?}");
    assert!(matches!(net.state("1001"), AgentState::OnCall(_)));

    // The agent hangs up.
    net.advance(Duration::from_secs(3));
    let mark = net.mark();
    assert_eq!(net.in_dialog(&mut agent, "BYE", "")[0].status, 200);
    let bye = net.requests(mark, TRUNK, Method::Bye).remove(0);
    assert_eq!(bye.headers.call_id.to_string(), caller.call_id);
    net.ok(&bye, TRUNK);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.hold, Duration::from_secs(7));
    assert_eq!(record.talk, Duration::from_secs(5));
    assert_eq!(record.hung_up_by, Some(HungUpBy::Agent));
    assert!(
        !record.end_reason.contains("caller"),
        "the agent hung up: {}",
        record.end_reason
    );
    // The caller's BYE after ours belongs to no dialog.
    assert_eq!(net.in_dialog(&mut caller, "BYE", "")[0].status, 481);
}

#[test]
fn an_outbound_call_rings_the_agent_and_bridges_the_customers_answer() {
    let mut net = Net::new();
    net.login(A1, "1001");
    let mark = net.mark();
    let media_mark = net.media.len();
    let mut call = Leg::new(A1, "1001", "out1");
    let r = net.agent_invite(&mut call, "1001", "0212345678", &sdp(44001, 1, "sendrecv"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 180, "ringing at once");
    let tag = r[0].headers.to.tag().unwrap().to_owned();
    let invites = net.requests(mark, TRUNK, Method::Invite);
    assert_eq!(invites.len(), 1);
    let out = &invites[0];
    assert_eq!(out.uri.to_string(), "sip:0212345678@127.0.0.1:5080");
    assert_eq!(
        out.headers.from.uri.as_sip().unwrap().user.as_deref(),
        Some("+15550199"),
        "the trunk's caller id"
    );
    assert!(String::from_utf8_lossy(&out.body).contains("m=audio "));

    // The customer answers: ACK to the trunk first, then 200 to the agent
    // with the 180's To tag.
    net.answer(out, TRUNK, 180, "cust");
    let mark = net.mark();
    let mut customer = net.answer(out, TRUNK, 200, "cust");
    let order: Vec<_> = net.sent[mark..]
        .iter()
        .map(|(port, m)| match m {
            Message::Request(r) => (*port, r.method.to_string()),
            Message::Response(r) => (*port, r.status.to_string()),
        })
        .collect();
    assert_eq!(
        order,
        vec![(TRUNK, "ACK".to_owned()), (A1, "200".to_owned())]
    );
    let ack = net.requests(mark, TRUNK, Method::Ack).remove(0);
    assert_eq!(ack.uri.to_string(), "sip:agent@127.0.0.1:5080");
    assert_eq!(ack.headers.cseq.seq, 1);
    let ok = net.responses(mark, A1).remove(0);
    assert_eq!(ok.headers.to.tag(), Some(tag.as_str()));
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio "));
    call.answered(&ok);
    net.in_dialog(&mut call, "ACK", "");
    // The carrier's 200 again: ACKed again, the agent hears nothing more.
    let mark = net.mark();
    net.answer(out, TRUNK, 200, "cust");
    assert_eq!(net.methods(mark, TRUNK), vec![Method::Ack]);
    assert!(net.silent_to(mark, A1));
    let opened: Vec<_> = net.media[media_mark..]
        .iter()
        .filter_map(|c| match c {
            MediaCommand::OpenLeg {
                session, leg, feed, ..
            } => Some((*session, *leg, matches!(feed, Feed::Other))),
            _ => None,
        })
        .collect();
    // (The first leg opened is the *21 call's.)
    let bridged = &opened[opened.len() - 2..];
    assert_eq!(bridged[0].0, bridged[1].0, "one session");
    assert_eq!(
        (bridged[0].1, bridged[0].2, bridged[1].1, bridged[1].2),
        (LegId::Caller, true, LegId::Agent, true)
    );
    assert_eq!(
        net.state("1001"),
        AgentState::Paused(PauseReason::new("outbound call"))
    );
    let session = bridged[0].0;

    // The agent holds the customer for 4 s: hold music, counted as hold.
    net.advance(Duration::from_secs(2));
    let media_mark = net.media.len();
    let r = net.in_dialog(&mut call, "INVITE", &sdp(44001, 2, "sendonly"));
    assert_eq!(r[0].status, 200);
    net.in_dialog(&mut call, "ACK", "");
    net.advance(Duration::from_secs(4));
    let r = net.in_dialog(&mut call, "INVITE", &sdp(44001, 3, "sendrecv"));
    assert_eq!(r[0].status, 200);
    net.in_dialog(&mut call, "ACK", "");
    let feeds = net.caller_feeds(media_mark, session);
    assert_eq!(feeds.len(), 2, "{feeds:?}");
    assert!(plays(&feeds[0], "hold"), "{:?}", feeds[0]);
    assert!(matches!(feeds[1], Feed::Other));
    net.advance(Duration::from_secs(1));

    // The customer hangs up.
    let mark = net.mark();
    assert_eq!(net.in_dialog(&mut customer, "BYE", "")[0].status, 200);
    let bye = net.requests(mark, A1, Method::Bye).remove(0);
    net.ok(&bye, A1);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.direction, CallDirection::Outbound);
    assert_eq!(record.outcome, CallOutcome::Answered);
    assert_eq!(record.hung_up_by, Some(HungUpBy::Customer));
    assert_eq!(record.dialled, "0212345678");
    assert_eq!(record.hold, Duration::from_secs(4));
    assert_eq!(record.talk, Duration::from_secs(3));
    assert_eq!(net.state("1001"), AgentState::Available);
}

#[test]
fn an_outbound_failure_is_passed_back_and_a_cancel_is_followed() {
    let mut net = Net::new();
    net.register(A1, "1001");

    // Busy: the agent gets the trunk's 486.
    let mark = net.mark();
    let mut call = Leg::new(A1, "1001", "out2");
    let r = net.agent_invite(&mut call, "1001", "0212345678", &sdp(44001, 1, "sendrecv"));
    assert_eq!(r[0].status, 180);
    let tag = r[0].headers.to.tag().unwrap().to_owned();
    let out = net.requests(mark, TRUNK, Method::Invite).remove(0);
    let mark = net.mark();
    net.answer(&out, TRUNK, 486, "cust");
    assert_eq!(net.methods(mark, TRUNK), vec![Method::Ack]);
    let r = net.responses(mark, A1);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 486);
    assert_eq!(
        r[0].headers.to.tag(),
        Some(tag.as_str()),
        "the 180's To tag"
    );
    net.ack_failure(&call, &r[0]);
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Failed);
    assert_eq!(record.direction, CallDirection::Outbound);

    // Cancelled by the agent while the customer's phone rings.
    let mark = net.mark();
    let mut call = Leg::new(A1, "1001", "out3");
    let r = net.agent_invite(&mut call, "1001", "0212345679", &sdp(44001, 1, "sendrecv"));
    assert_eq!(r[0].status, 180);
    let out = net.requests(mark, TRUNK, Method::Invite).remove(0);
    net.answer(&out, TRUNK, 180, "cust");
    let mark = net.mark();
    let r = net.cancel(&call);
    let statuses: Vec<_> = r
        .iter()
        .map(|r| (r.status, r.headers.cseq.method.clone()))
        .collect();
    assert!(statuses.contains(&(200, Method::Cancel)), "{statuses:?}");
    assert!(statuses.contains(&(487, Method::Invite)), "{statuses:?}");
    let cancels = net.requests(mark, TRUNK, Method::Cancel);
    assert_eq!(cancels.len(), 1, "the trunk leg is cancelled");
    assert_eq!(cancels[0].headers.call_id, out.headers.call_id);
    let terminated = r.iter().find(|r| r.status == 487).unwrap().clone();
    net.ack_failure(&call, &terminated);
    // The carrier confirms; its 487 is ACKed and nothing reaches the agent.
    let mark = net.mark();
    net.ok(&cancels[0], TRUNK);
    net.answer(&out, TRUNK, 487, "cust");
    assert_eq!(net.methods(mark, TRUNK), vec![Method::Ack]);
    assert!(net.responses(mark, A1).is_empty());
    assert_eq!(net.records.len(), 2);
    assert_eq!(net.records[1].outcome, CallOutcome::Abandoned);
    assert_eq!(net.records[1].hung_up_by, Some(HungUpBy::Agent));
}

/// The carrier's digest challenge with `nonce`.
fn carrier_challenge(nonce: &str, stale: bool) -> Challenge {
    Challenge {
        realm: "carrier.example".into(),
        nonce: nonce.into(),
        opaque: None,
        algorithm: crate::sip::auth::Algorithm::Md5,
        qop: vec![crate::sip::auth::Qop::Auth],
        stale,
    }
}

/// Agent 1001 (registered) dials `number` as call `call_id`: its leg, and
/// our INVITE to the trunk.
fn agent_dials(net: &mut Net, call_id: &str, number: &str) -> (Leg, Request) {
    let mark = net.mark();
    let mut call = Leg::new(A1, "1001", call_id);
    let r = net.agent_invite(&mut call, "1001", number, &sdp(44001, 1, "sendrecv"));
    assert_eq!(r[0].status, 180);
    let invite = net.requests(mark, TRUNK, Method::Invite).remove(0);
    (call, invite)
}

/// The carrier challenges `invite` with a 407 carrying `nonce`.
fn challenge_from_trunk(net: &mut Net, invite: &Request, nonce: &str, stale: bool) {
    let mut r = invite.response(407, Some("challenger"));
    let challenge = carrier_challenge(nonce, stale);
    r.headers
        .push(HeaderName::ProxyAuthenticate, challenge.to_header_value());
    net.input(Input::Message {
        flow: flow(TRUNK),
        data: Bytes::from(r.to_bytes()),
    });
}

/// `request` answers the carrier's challenge with `nonce` with the trunk's
/// credentials (the digest recomputed from the password).
fn assert_answers_challenge(request: &Request, nonce: &str) {
    let value = request
        .headers
        .get(&HeaderName::ProxyAuthorization)
        .expect("Proxy-Authorization");
    let c = crate::sip::auth::Credentials::parse(value).unwrap();
    assert_eq!(c.username, "sb-trunk");
    assert_eq!(c.realm, "carrier.example");
    assert_eq!(c.nonce, nonce);
    assert_eq!(c.uri, request.uri.to_string());
    let expected = respond(
        &carrier_challenge(nonce, false),
        &request.method.to_string(),
        &c.uri,
        "sb-trunk",
        "trunk-secret",
        c.cnonce.as_deref().unwrap(),
        c.nc.unwrap(),
    )
    .unwrap();
    assert_eq!(
        c.response, expected.response,
        "digest of the trunk's password"
    );
}

#[test]
fn a_carriers_challenge_is_answered_with_the_trunks_credentials() {
    let mut net = Net::new();
    net.register(A1, "1001");
    let (mut call, first) = agent_dials(&mut net, "out-auth", "0212345678");
    assert!(first.headers.get(&HeaderName::ProxyAuthorization).is_none());

    // 407: ACKed, and the INVITE sent again with credentials, CSeq + 1,
    // a new branch, the same Call-ID, From tag and offer.
    let mark = net.mark();
    challenge_from_trunk(&mut net, &first, "n-1", false);
    assert_eq!(net.methods(mark, TRUNK), vec![Method::Ack, Method::Invite]);
    assert!(net.responses(mark, A1).is_empty(), "the agent sees nothing");
    let second = net.requests(mark, TRUNK, Method::Invite).remove(0);
    assert_eq!(second.headers.call_id, first.headers.call_id);
    assert_eq!(second.headers.from.tag(), first.headers.from.tag());
    assert_eq!(second.headers.cseq.seq, first.headers.cseq.seq + 1);
    assert_ne!(
        second.headers.via[0].branch(),
        first.headers.via[0].branch()
    );
    assert_eq!(second.body, first.body);
    assert_answers_challenge(&second, "n-1");

    // Answered: ACK with the new CSeq, the agent gets its 200.
    let mark = net.mark();
    let _customer = net.answer(&second, TRUNK, 200, "cust");
    let ack = net.requests(mark, TRUNK, Method::Ack).remove(0);
    assert_eq!(ack.headers.cseq.seq, second.headers.cseq.seq);
    let ok = net.responses(mark, A1).remove(0);
    assert_eq!(ok.status, 200);
    call.answered(&ok);
    net.in_dialog(&mut call, "ACK", "");

    // The agent hangs up; the carrier challenges our BYE too, and gets an
    // authenticated one (the carrier bills until it accepts a BYE).
    let mark = net.mark();
    assert_eq!(net.in_dialog(&mut call, "BYE", "")[0].status, 200);
    let bye = net.requests(mark, TRUNK, Method::Bye).remove(0);
    let mark = net.mark();
    challenge_from_trunk(&mut net, &bye, "n-bye", false);
    let again = net.requests(mark, TRUNK, Method::Bye);
    assert_eq!(again.len(), 1, "{:?}", net.methods(mark, TRUNK));
    assert_eq!(again[0].headers.call_id, bye.headers.call_id);
    assert_eq!(again[0].headers.cseq.seq, bye.headers.cseq.seq + 1);
    assert_answers_challenge(&again[0], "n-bye");
    // Refused again: nothing more is sent.
    let mark = net.mark();
    challenge_from_trunk(&mut net, &again[0], "n-bye2", false);
    assert!(net.requests(mark, TRUNK, Method::Bye).is_empty());
}

#[test]
fn refused_trunk_credentials_fail_the_call_with_403_to_the_agent() {
    let mut net = Net::new();
    net.register(A1, "1001");
    let mark = net.mark();
    let (call, first) = agent_dials(&mut net, "out-badauth", "0212345678");
    challenge_from_trunk(&mut net, &first, "n-1", false);
    let second = net.requests(mark, TRUNK, Method::Invite).remove(1);

    // Challenged again, not stale: the password is wrong. No third INVITE;
    // the agent gets 403, not the carrier's challenge.
    let mark = net.mark();
    challenge_from_trunk(&mut net, &second, "n-2", false);
    assert_eq!(net.methods(mark, TRUNK), vec![Method::Ack]);
    let r = net.responses(mark, A1);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 403);
    net.ack_failure(&call, &r[0]);
    assert_eq!(only_record(&net).outcome, CallOutcome::Failed);

    // A stale nonce, on the other hand, is answered once more.
    let mark = net.mark();
    let (_call, first) = agent_dials(&mut net, "out-stale", "0212345679");
    challenge_from_trunk(&mut net, &first, "n-3", false);
    let second = net.requests(mark, TRUNK, Method::Invite).remove(1);
    challenge_from_trunk(&mut net, &second, "n-4", true);
    let third = net.requests(mark, TRUNK, Method::Invite).remove(2);
    assert_eq!(third.headers.cseq.seq, first.headers.cseq.seq + 2);
    assert_answers_challenge(&third, "n-4");
}

#[test]
fn nobody_reaches_the_trunk_without_authentication_and_permission() {
    let mut net = Net::new();
    // A stranger: challenged, and nothing goes to the carrier.
    let mark = net.mark();
    let mut stranger = Leg::new(42000, "1001", "fraud1");
    let r = net.invite(
        &mut stranger,
        "+442071234567",
        "",
        &sdp(45000, 1, "sendrecv"),
    );
    assert_eq!(r[0].status, 407);
    net.ack_failure(&stranger, &r[0]);
    // Wrong credentials fare no better.
    let creds = respond(
        &Challenge::parse(r[0].headers.get(&HeaderName::ProxyAuthenticate).unwrap()).unwrap(),
        "INVITE",
        "sip:+442071234567@127.0.0.1:5060",
        "1001",
        "guessed",
        "cn0nce",
        1,
    )
    .unwrap();
    let extra = format!("Proxy-Authorization: {}\r\n", creds.to_header_value());
    let r = net.invite(
        &mut stranger,
        "+442071234567",
        &extra,
        &sdp(45000, 1, "sendrecv"),
    );
    assert_eq!(r[0].status, 403);
    net.ack_failure(&stranger, &r[0]);
    assert!(net.silent_to(mark, TRUNK), "nothing toward the carrier");

    // An agent without the permission the number needs: 403.
    let mut call = Leg::new(A2, "1002", "fraud2");
    let r = net.agent_invite(&mut call, "1002", "0212345678", &sdp(45002, 1, "sendrecv"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 403);
    net.ack_failure(&call, &r[0]);
    let mut call = Leg::new(A1, "1001", "fraud3");
    let r = net.agent_invite(
        &mut call,
        "1001",
        "+442071234567",
        &sdp(45004, 1, "sendrecv"),
    );
    assert_eq!(r[0].status, 403, "national only: no international call");
    net.ack_failure(&call, &r[0]);
    assert!(net.silent_to(mark, TRUNK), "nothing toward the carrier");

    // The carrier's call for a number we do not serve is not sent back out.
    for (i, number) in ["+15559999", "0212345678"].into_iter().enumerate() {
        let mark = net.mark();
        let mut call = Leg::new(TRUNK, "+15557770006", &format!("fraud-trunk{i}"));
        let r = net.invite(&mut call, number, "", &sdp(30000, 1, "sendrecv"));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 404);
        net.ack_failure(&call, &r[0]);
        assert!(
            net.sent[mark..]
                .iter()
                .all(|(p, m)| *p != TRUNK || matches!(m, Message::Response(_))),
            "only the answer goes back to the carrier"
        );
    }
    assert!(net.media.is_empty(), "no call was answered");
    assert!(net.records.is_empty());
}

#[test]
fn an_ivr_key_by_sip_info_routes_the_caller_to_the_options_queue() {
    let mut net = Net::new();
    net.login(A3, "1003");
    let mark = net.mark();
    let media_mark = net.media.len();
    let mut caller = net.trunk_call("+15557770007", "+15550101", "cust7");
    let session = net.caller_session(media_mark);
    assert!(
        matches!(net.caller_feeds(media_mark, session)[..], [Feed::Play(_)]),
        "the menu plays"
    );
    assert!(net.requests(mark, A3, Method::Invite).is_empty());

    let r = net.in_dialog(&mut caller, "INFO", "Signal=1\r\nDuration=160\r\n");
    assert_eq!(r[0].status, 200);
    let invites = net.requests(mark, A3, Method::Invite);
    assert_eq!(invites.len(), 1, "a sales agent is offered the call");
    net.answer(&invites[0], A3, 200, "ag3");
    let mark = net.mark();
    net.in_dialog(&mut caller, "BYE", "");
    let bye = net.requests(mark, A3, Method::Bye).remove(0);
    net.ok(&bye, A3);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.ivr_choices, "1");
    assert_eq!(
        record.queue.as_ref().map(|q| q.to_string()).as_deref(),
        Some("sales")
    );
    assert_eq!(record.agent.as_ref().map(|a| a.as_str()), Some("1003"));

    // The same key as an RFC 4733 event, reported by the media worker.
    net.advance(Duration::from_secs(20));
    assert_eq!(net.state("1003"), AgentState::Available, "wrap-up over");
    let mark = net.mark();
    let media_mark = net.media.len();
    net.trunk_call("+15557770011", "+15550101", "cust11");
    let session = net.caller_session(media_mark);
    net.input(Input::Media(MediaEvent::Digit {
        session,
        leg: LegId::Caller,
        digit: '1',
        duration_ms: 160,
    }));
    assert_eq!(net.requests(mark, A3, Method::Invite).len(), 1);
}

#[test]
fn an_ivr_without_a_key_takes_the_default_route_after_its_attempts() {
    let mut net = Net::new();
    net.login(A1, "1001");
    let mark = net.mark();
    let media_mark = net.media.len();
    net.trunk_call("+15557770008", "+15550101", "cust8");
    let session = net.caller_session(media_mark);

    // First attempt: the menu plays, then 4 s for a key.
    net.playback_done(session);
    net.advance(Duration::from_millis(3900));
    assert_eq!(net.caller_feeds(media_mark, session).len(), 1);
    net.advance(Duration::from_millis(100));
    assert_eq!(
        net.caller_feeds(media_mark, session).len(),
        2,
        "no key: the menu again"
    );
    // Second attempt, the last one.
    net.playback_done(session);
    net.advance(Duration::from_millis(3900));
    assert!(net.requests(mark, A1, Method::Invite).is_empty());
    net.advance(Duration::from_millis(100));
    let invites = net.requests(mark, A1, Method::Invite);
    assert_eq!(invites.len(), 1, "routed to support, the default");
    assert!(plays(
        net.caller_feeds(media_mark, session).last().unwrap(),
        "hold-music"
    ));
}

#[test]
fn a_caller_waiting_too_long_overflows_to_a_hang_up() {
    let mut net = Net::new();
    let mut caller = net.trunk_call("+15557770009", "+15550103", "cust9");
    let mark = net.mark();
    net.advance(Duration::from_millis(9900));
    assert!(net.requests(mark, TRUNK, Method::Bye).is_empty());
    net.advance(Duration::from_millis(100));
    let byes = net.requests(mark, TRUNK, Method::Bye);
    assert_eq!(byes.len(), 1, "max_wait_secs reached: hung up");
    assert_eq!(byes[0].headers.call_id.to_string(), caller.call_id);
    net.ok(&byes[0], TRUNK);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::TimedOut);
    assert_eq!(record.hung_up_by, Some(HungUpBy::Gateway));
    assert_eq!(record.wait, Duration::from_secs(10));
    assert_eq!(net.in_dialog(&mut caller, "BYE", "")[0].status, 481);
}

#[test]
fn a_caller_waiting_too_long_hears_the_overflow_message_then_is_hung_up() {
    let mut net = Net::new();
    let media_mark = net.media.len();
    net.trunk_call("+15557770010", "+15550104", "cust10");
    let session = net.caller_session(media_mark);
    let mark = net.mark();
    net.advance(Duration::from_secs(10));
    assert!(plays(
        net.caller_feeds(media_mark, session).last().unwrap(),
        "all-agents-busy"
    ));
    assert!(net.requests(mark, TRUNK, Method::Bye).is_empty());
    net.playback_done(session);
    let bye = net.requests(mark, TRUNK, Method::Bye).remove(0);
    net.ok(&bye, TRUNK);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::TimedOut);
    assert_eq!(record.hung_up_by, Some(HungUpBy::Gateway));
}

#[test]
fn an_answer_after_the_caller_left_is_acked_and_hung_up() {
    let mut net = Net::new();
    net.login(A1, "1001");
    let mark = net.mark();
    let mut caller = net.trunk_call("+15557770012", "+15550100", "cust12");
    let invite = net.requests(mark, A1, Method::Invite).remove(0);
    // The caller leaves before the phone even said it rings: our CANCEL
    // waits for a provisional response (RFC 3261 §9.1)...
    let mark = net.mark();
    net.in_dialog(&mut caller, "BYE", "");
    assert!(net.silent_to(mark, A1));
    // ...and the phone answers meanwhile: ACK, then BYE; never a bridge.
    let media_mark = net.media.len();
    net.answer(&invite, A1, 200, "ag1");
    assert_eq!(net.methods(mark, A1), vec![Method::Ack, Method::Bye]);
    assert!(!net.media[media_mark..]
        .iter()
        .any(|c| matches!(c, MediaCommand::OpenLeg { .. })));
    let bye = net.requests(mark, A1, Method::Bye).remove(0);
    net.ok(&bye, A1);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Abandoned);
    assert_eq!(
        offers(record),
        vec![("1001".into(), OfferResult::Cancelled)]
    );
    assert_eq!(net.state("1001"), AgentState::Available);
}

#[test]
fn an_agent_missing_three_offers_in_a_row_is_paused() {
    let mut net = Net::new();
    net.login(A1, "1001");
    let mark = net.mark();
    net.trunk_call("+15557770013", "+15550100", "cust13");
    for round in 1..=3 {
        let invites = net.requests(mark, A1, Method::Invite);
        assert_eq!(invites.len(), round, "rung again: nobody else is free");
        let invite = invites.last().unwrap();
        net.answer(invite, A1, 180, "ag1");
        let cancel_mark = net.mark();
        net.advance(Duration::from_secs(5));
        let cancel = net.requests(cancel_mark, A1, Method::Cancel).remove(0);
        net.ok(&cancel, A1);
        net.answer(invite, A1, 487, "ag1");
    }
    assert_eq!(
        net.state("1001"),
        AgentState::Paused(PauseReason::missed_offers())
    );
    assert_eq!(net.requests(mark, A1, Method::Invite).len(), 3);
}

// ----------------------------------------------------------- control API

impl Net {
    /// One control command; its reply.
    fn control(&mut self, command: crate::control::Command) -> Result<Reply, ControlError> {
        let id = self.replies.len() as u64 + 1000;
        self.input(Input::Control { id, command });
        let (got, result) = self.replies.pop().expect("a reply");
        assert_eq!(got, id);
        result
    }

    fn events_of(&self, kind: &str) -> Vec<&crate::control::Event> {
        self.events
            .iter()
            .filter(|e| {
                serde_json::to_value(e)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
                    .as_deref()
                    == Some(kind)
            })
            .collect()
    }
}

use crate::control::{Command, ControlError, ControlErrorKind, Reply};

#[test]
fn the_control_api_steers_agents_through_the_acd() {
    let mut net = Net::new();
    net.register(A1, "1001");
    assert_eq!(
        net.control(Command::Login {
            agent: "1001".into()
        }),
        Ok(Reply::Done)
    );
    assert_eq!(net.state("1001"), AgentState::Available);
    let again = net.control(Command::Login {
        agent: "1001".into(),
    });
    assert_eq!(again.unwrap_err().kind, ControlErrorKind::Conflict);
    assert_eq!(
        net.control(Command::Pause {
            agent: "1001".into(),
            reason: "lunch".into()
        }),
        Ok(Reply::Done)
    );
    let Ok(Reply::Agents(agents)) = net.control(Command::ListAgents) else {
        panic!("agents");
    };
    let a = agents.iter().find(|a| a.id == "1001").unwrap();
    assert_eq!(
        (a.state.as_str(), a.reason.as_deref(), a.registered),
        ("paused", Some("lunch"), 1)
    );
    assert!(a.queues.contains(&"support".to_owned()), "{a:?}");
    let unknown = net.control(Command::Logout {
        agent: "9999".into(),
    });
    assert_eq!(unknown.unwrap_err().kind, ControlErrorKind::NotFound);
    let blank = net.control(Command::Pause {
        agent: "1001".into(),
        reason: " ".into(),
    });
    assert_eq!(blank.unwrap_err().kind, ControlErrorKind::Invalid);
    let changes = net.events_of("agent_state_changed");
    assert!(changes.len() >= 2, "{changes:?}");
}

#[test]
fn the_control_api_sees_the_queue_and_steers_a_live_call() {
    let mut net = Net::new();
    net.register(A1, "1001");
    let _caller = net.trunk_call("+15557770009", "+15550100", "cust9");
    let Ok(Reply::Queues(queues)) = net.control(Command::QueueStatus) else {
        panic!("queues");
    };
    let support = queues.iter().find(|q| q.name == "support").unwrap();
    assert_eq!(support.waiting.len(), 1);
    assert_eq!(support.waiting[0].caller, "+15557770009");
    assert_eq!(support.waiting[0].position, 1);
    assert!(net
        .events_of("queue_caller_joined")
        .iter()
        .any(|e| e.call().is_some()));
    let call = support.waiting[0].call;
    // Not answered yet: no hold.
    let early = net.control(Command::Hold { call, hold: true });
    assert_eq!(early.unwrap_err().kind, ControlErrorKind::Conflict);

    // Agent 1001 logs in and answers.
    let mark = net.mark();
    net.control(Command::Login {
        agent: "1001".into(),
    })
    .unwrap();
    let invite = net.requests(mark, A1, Method::Invite).remove(0);
    assert_eq!(net.events_of("call_offered").len(), 1);
    net.answer(&invite, A1, 200, "agx");
    let Ok(Reply::Calls(calls)) = net.control(Command::ListCalls) else {
        panic!("calls");
    };
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, "connected");
    assert_eq!(calls[0].agent.as_deref(), Some("1001"));
    assert_eq!(calls[0].legs.len(), 2);

    // Hold from the API: the caller hears the hold music, the agent nothing.
    let media_mark = net.media.len();
    assert_eq!(
        net.control(Command::Hold { call, hold: true }),
        Ok(Reply::Done)
    );
    let feeds: Vec<(LegId, &Feed)> = net.media[media_mark..]
        .iter()
        .filter_map(|c| match c {
            MediaCommand::SetFeed { leg, feed, .. } => Some((*leg, feed)),
            _ => None,
        })
        .collect();
    assert!(feeds
        .iter()
        .any(|(l, f)| *l == LegId::Caller && plays(f, "hold")));
    assert!(feeds
        .iter()
        .any(|(l, f)| *l == LegId::Agent && matches!(f, Feed::Silence)));
    assert_eq!(net.events_of("call_held").len(), 1);
    net.control(Command::Hold { call, hold: false }).unwrap();
    assert_eq!(net.events_of("call_resumed").len(), 1);

    // DTMF and recording pause; bad digits are refused.
    let bad = net.control(Command::SendDtmf {
        call,
        digits: "12x".into(),
    });
    assert_eq!(bad.unwrap_err().kind, ControlErrorKind::Invalid);
    net.control(Command::SendDtmf {
        call,
        digits: "42#".into(),
    })
    .unwrap();
    let digits = net
        .media
        .iter()
        .filter(|c| matches!(c, MediaCommand::SendDigit { .. }))
        .count();
    assert_eq!(digits, 3);
    net.control(Command::Record { call, paused: true }).unwrap();
    assert!(net
        .media
        .iter()
        .any(|c| matches!(c, MediaCommand::PauseRecording { paused: true, .. })));

    // Another agent may not steer it; the core checks in the same step.
    let not_theirs = net.control(Command::AsAgent {
        agent: "1002".into(),
        steer: Box::new(Command::Hangup { call }),
    });
    assert_eq!(not_theirs.unwrap_err().kind, ControlErrorKind::Forbidden);
    let not_a_call_command = net.control(Command::AsAgent {
        agent: "1001".into(),
        steer: Box::new(Command::ListCalls),
    });
    assert_eq!(
        not_a_call_command.unwrap_err().kind,
        ControlErrorKind::Invalid
    );

    // Hang up from the API, as the agent handling it: BYE to both phones.
    let mark = net.mark();
    net.control(Command::AsAgent {
        agent: "1001".into(),
        steer: Box::new(Command::Hangup { call }),
    })
    .unwrap();
    assert_eq!(net.requests(mark, TRUNK, Method::Bye).len(), 1);
    assert_eq!(net.requests(mark, A1, Method::Bye).len(), 1);
    let gone = net.control(Command::Hangup { call });
    assert_eq!(gone.unwrap_err().kind, ControlErrorKind::NotFound);
    net.close_legs();
    assert_eq!(net.events_of("call_ended").len(), 1);
    assert_eq!(net.events_of("recording_completed").len(), 1);
}

#[test]
fn a_blind_transfer_moves_the_caller_to_another_queue() {
    let mut net = Net::new();
    let media_mark = net.media.len();
    let (_caller, _agent) = bridged_call(&mut net);
    let session = net.caller_session(media_mark);
    let Ok(Reply::Calls(calls)) = net.control(Command::ListCalls) else {
        panic!("calls");
    };
    let call = calls[0].call;
    let nowhere = net.control(Command::Transfer {
        call,
        target: "queue:nowhere".into(),
    });
    assert_eq!(nowhere.unwrap_err().kind, ControlErrorKind::NotFound);
    let mark = net.mark();
    net.control(Command::Transfer {
        call,
        target: "queue:sales".into(),
    })
    .unwrap();
    // The agent's leg ends; the caller stays and waits in sales.
    assert_eq!(net.requests(mark, A1, Method::Bye).len(), 1);
    assert!(net.requests(mark, TRUNK, Method::Bye).is_empty());
    assert_eq!(net.events_of("call_transferred").len(), 1);
    let Ok(Reply::Queues(queues)) = net.control(Command::QueueStatus) else {
        panic!("queues");
    };
    let sales = queues.iter().find(|q| q.name == "sales").unwrap();
    assert_eq!(sales.waiting.len(), 1, "{queues:?}");
    assert!(net
        .caller_feeds(media_mark, session)
        .iter()
        .any(|f| plays(f, "hold-music")));
}

/// A queue announcing every 5 s: after the greeting, music; 5 s later the
/// caller hears its position (and, once a call was answered, the wait),
/// then the music again; the next announcement 5 s after that.
#[test]
fn a_waiting_caller_hears_its_position_at_the_queues_interval() {
    let text = CONFIG.replace(
        "[[queues]]\nname = \"sales\"",
        "[[queues]]\nname = \"announced\"\ndids = [\"+15550105\"]\nagents = [\"1003\"]\n\
greeting = \"\"\nannounce_every_secs = 5\n\n[[queues]]\nname = \"sales\"",
    );
    let config = crate::config::Config::from_toml_str(&text, std::path::Path::new("test")).unwrap();
    let mut c = EndpointConfig::from_config(&config);
    let names = crate::call::announce::AnnouncementPrompts::names();
    for name in names.iter().map(String::as_str).chain(["hold-music"]) {
        let prompt: PromptName = name.parse().unwrap();
        c.queues.prompts.insert(
            prompt.path(&c.queues.sounds_dir),
            Prompt::from_samples(name, vec![0; 800]),
        );
    }
    let mut net = Net::new();
    net.ep = Endpoint::new(c, net.now).unwrap();
    let media_mark = net.media.len();
    let _caller = net.trunk_call("+15557770010", "+15550105", "cust10");
    let session = net.caller_session(media_mark);
    let feeds = net.caller_feeds(media_mark, session);
    assert!(plays(feeds.last().unwrap(), "hold-music"), "{feeds:?}");

    let mark = net.media.len();
    net.advance(Duration::from_millis(4900));
    assert!(net.caller_feeds(mark, session).is_empty(), "too early");
    net.advance(Duration::from_millis(200));
    let feeds = net.caller_feeds(mark, session);
    assert_eq!(feeds.len(), 1, "{feeds:?}");
    assert!(plays(&feeds[0], "position"), "{:?}", feeds[0]);
    assert!(plays(&feeds[0], "digit-1"), "first in line: {:?}", feeds[0]);

    // The announcement ends: music again, and the next one 5 s later.
    let mark = net.media.len();
    net.playback_done(session);
    let feeds = net.caller_feeds(mark, session);
    assert!(plays(feeds.last().unwrap(), "hold-music"), "{feeds:?}");
    let mark = net.media.len();
    net.advance(Duration::from_secs(5));
    assert!(net
        .caller_feeds(mark, session)
        .iter()
        .any(|f| plays(f, "position")));
}

/// A blind transfer to an external number: the agent's dial permission
/// applies; the caller hears ringback, then the number's answer in the
/// same session; the caller's BYE ends the far leg too.
#[test]
fn a_blind_transfer_to_a_number_goes_out_through_the_trunk() {
    let mut net = Net::new();
    let media_mark = net.media.len();
    let (mut caller, _agent) = bridged_call(&mut net);
    let session = net.caller_session(media_mark);
    let call = 1;
    let abroad = net.control(Command::Transfer {
        call,
        target: "+442071234567".into(),
    });
    assert_eq!(abroad.unwrap_err().kind, ControlErrorKind::Invalid);
    let mark = net.mark();
    let media_mark = net.media.len();
    net.control(Command::Transfer {
        call,
        target: "0212345678".into(),
    })
    .unwrap();
    assert_eq!(
        net.requests(mark, A1, Method::Bye).len(),
        1,
        "agent released"
    );
    let invite = net
        .requests(mark, TRUNK, Method::Invite)
        .into_iter()
        .find(|r| r.uri.to_string().contains("0212345678"))
        .expect("the number is called through the trunk");
    assert!(net
        .caller_feeds(media_mark, session)
        .iter()
        .any(|f| matches!(f, Feed::Play(_))));
    let media_mark = net.media.len();
    net.answer(&invite, TRUNK, 200, "far1");
    let opened = net.media[media_mark..].iter().any(|c| {
        matches!(c, MediaCommand::OpenLeg { session: s, leg: LegId::Agent, feed: Feed::Other, .. } if *s == session)
    });
    assert!(opened, "the far end joins the caller's session");
    let mark = net.mark();
    assert_eq!(net.in_dialog(&mut caller, "BYE", "")[0].status, 200);
    assert_eq!(net.requests(mark, TRUNK, Method::Bye).len(), 1);
    net.close_legs();
    let record = only_record(&net);
    assert_eq!(record.outcome, CallOutcome::Answered);
    assert_eq!(record.hung_up_by, Some(HungUpBy::Caller));
}

/// An agent taking offers over the API: the offer is only published (no
/// INVITE) until the desktop accepts; then the phone rings and the call is
/// bridged. A reject moves the call on; an answer to no open offer is a
/// conflict.
#[test]
fn an_api_agent_accepts_the_offer_on_its_desktop_before_the_phone_rings() {
    let text = CONFIG
        .replace(
            "id = \"1003\"\npassword = \"pass1003\"\n",
            "id = \"1003\"\npassword = \"pass1003\"\nhandoff = \"api\"\n",
        )
        .replace(
            "name = \"sales\"\nextension = \"501\"\n",
            "name = \"sales\"\nextension = \"501\"\ndids = [\"+15550106\"]\n",
        );
    let config = crate::config::Config::from_toml_str(&text, std::path::Path::new("test")).unwrap();
    let mut net = Net::new();
    net.ep = Endpoint::new(EndpointConfig::from_config(&config), net.now).unwrap();
    net.register(A3, "1003");
    net.control(Command::Login {
        agent: "1003".into(),
    })
    .unwrap();

    let mark = net.mark();
    let _caller = net.trunk_call("+15557770020", "+15550106", "cust20");
    let offered = net.events_of("call_offered");
    assert_eq!(offered.len(), 1, "the screen pop");
    let call = offered[0].call().unwrap();
    assert!(
        net.requests(mark, A3, Method::Invite).is_empty(),
        "nothing rings before the desktop accepts"
    );
    let wrong = net.control(Command::OfferAnswer {
        agent: "1003".into(),
        call: call + 1,
        accept: true,
    });
    assert_eq!(wrong.unwrap_err().kind, ControlErrorKind::Conflict);

    // Reject: the offer ends; the ACD offers again (1003 is the only member).
    net.control(Command::OfferAnswer {
        agent: "1003".into(),
        call,
        accept: false,
    })
    .unwrap();
    assert_eq!(net.events_of("call_offered").len(), 2);

    // Accept: the phone rings, answers, the call is bridged.
    net.control(Command::OfferAnswer {
        agent: "1003".into(),
        call,
        accept: true,
    })
    .unwrap();
    let invite = net.requests(mark, A3, Method::Invite).remove(0);
    net.answer(&invite, A3, 200, "api1");
    assert!(matches!(net.state("1003"), AgentState::OnCall(_)));
    assert_eq!(net.events_of("call_answered").len(), 1);
}
