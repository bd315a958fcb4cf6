//! Calls the endpoint answers itself: the test extensions an agent dials to
//! check its audio (echo, a prompt, two phones paired in a room). Each call
//! is one UAS dialog and one leg of a media session run by a media worker;
//! the endpoint negotiates the SDP (RFC 3264), picks the RTP ports, and
//! tells the worker what the leg hears through [`MediaCommand`]s.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tracing::{info, warn};

use super::super::dialog::{Dialog, DialogId};
use super::super::flow::Flow;
use super::super::message::{
    Contacts, HeaderName, Method, NameAddr, Request, Response, SipUri, Via,
};
use super::queue_calls::Role;
use super::{ClientPurpose, Endpoint, Output};
use crate::config::{TestAction, TestExtension};
use crate::media::control::{LegReport, MediaCommand, MediaEvent};
use crate::media::dtmf::parse_info_body;
use crate::media::player::{PlayItem, Player, Prompt};
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::record::{rfc3339_utc, RecordingMeta};
use crate::media::relay::LegId;
use crate::media::rtp::Ssrc;
use crate::media::sdp::{
    accept_answer, answer, make_offer, Answer, Direction, LocalMedia, Negotiated, NegotiationError,
    Preferences, SessionDescription,
};
use crate::media::session::{Feed, LegSetup, SessionId};

/// Silence between two plays of a test prompt.
const PROMPT_GAP: Duration = Duration::from_millis(500);

/// What the endpoint needs to answer calls with media.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Our RTP address, put in SDP.
    pub address: std::net::IpAddr,
    pub ports: std::ops::RangeInclusive<u16>,
    pub preferences: Preferences,
    pub test_extensions: Vec<TestExtension>,
    /// The prompts of the test extensions, loaded by the runtime.
    pub prompts: HashMap<PathBuf, Prompt>,
    /// Legs (RTP/RTCP port pairs) the process can hold open at once, from
    /// its open-file limit: beyond it a call is refused 503 up front
    /// rather than answered and then failed when its sockets cannot open.
    pub max_legs: Option<usize>,
}

/// One answered call (one leg).
#[derive(Debug)]
struct Call {
    session: SessionId,
    leg: LegId,
    call_id: String,
    /// Where the caller's requests come from, and ours go.
    flow: Flow,
    ports: PortPair,
    /// Our last SDP (answers to re-INVITEs keep its session id and bump
    /// its version, RFC 3264 §8).
    local_sdp: SessionDescription,
    /// `None` until the ACK brings the answer to our offer.
    negotiated: Option<Negotiated>,
    digits: String,
    /// A room's first caller waits here until its partner dials in.
    room: Option<String>,
    /// The call's counterpart in the session, if any.
    partner: Option<DialogId>,
    ended: bool,
    /// What to start once the media is negotiated.
    start: Option<PendingStart>,
    /// Our 2xx until its ACK arrives (RFC 3261 §13.3.1.4).
    unacked: Option<Unacked>,
    /// The leg's part in the call centre's flow; `None` for test calls.
    role: Option<Role>,
}

/// A 2xx the UAS core resends until the ACK: the INVITE server transaction
/// hands 2xx reliability to the TU (RFC 6026 §7.1), since the ACK may come
/// end to end through proxies that forward without retransmitting.
#[derive(Debug)]
struct Unacked {
    data: Bytes,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// What a test extension call starts with once its media is negotiated.
#[derive(Debug)]
pub(super) struct TestStart {
    extension: TestExtension,
    room: String,
    dialled: String,
    caller: String,
    wall: SystemTime,
}

/// A call answered but whose media waits for the SDP answer in the ACK.
#[derive(Debug)]
pub(super) enum PendingStart {
    Test(TestStart),
    /// A caller for a queue or a menu.
    Routed(super::routing::CallerStart),
    /// An agent's feature code: a confirmation tone, then our BYE.
    Feature(Player),
    /// An agent's call to a customer, whose leg is answered already.
    Outbound(Box<super::outbound::OutboundStart>),
}

/// The calls and the media resources they hold.
pub(super) struct Calls {
    settings: Option<MediaSettings>,
    ports: Option<PortAllocator>,
    next_session: u64,
    calls: HashMap<DialogId, Call>,
    by_leg: HashMap<(SessionId, LegId), DialogId>,
    /// Rooms with one caller waiting: room → that caller's dialog.
    rooms: HashMap<String, DialogId>,
    /// Port pairs allocated and not yet released.
    legs_in_use: usize,
    /// The calls whose 2xx awaits its ACK (`Call::unacked` is set): the
    /// timer paths look at these only, not at every call.
    awaiting_ack: HashSet<DialogId>,
}

impl Calls {
    pub(super) fn new(settings: Option<MediaSettings>) -> Calls {
        let ports = settings
            .as_ref()
            .and_then(|s| PortAllocator::new(s.ports.clone()).ok());
        Calls {
            settings,
            ports,
            next_session: 1,
            calls: HashMap::new(),
            by_leg: HashMap::new(),
            rooms: HashMap::new(),
            awaiting_ack: HashSet::new(),
            legs_in_use: 0,
        }
    }

    pub(super) fn settings(&self) -> Option<&MediaSettings> {
        self.settings.as_ref()
    }

    pub(super) fn allocate_ports(&mut self) -> Option<PortPair> {
        let max = self.settings.as_ref().and_then(|s| s.max_legs);
        if max.is_some_and(|max| self.legs_in_use >= max) {
            warn!(
                legs = self.legs_in_use,
                "call capacity (open-file limit) reached"
            );
            return None;
        }
        let ports = self.ports.as_mut().and_then(PortAllocator::allocate)?;
        self.legs_in_use += 1;
        Some(ports)
    }

    pub(super) fn release_ports(&mut self, ports: PortPair) {
        if let Some(alloc) = self.ports.as_mut() {
            match alloc.release(ports) {
                Ok(()) => self.legs_in_use = self.legs_in_use.saturating_sub(1),
                Err(e) => warn!(error = %e, "RTP ports released twice"),
            }
        }
    }

    pub(super) fn leg_of(&self, id: &DialogId) -> Option<LegId> {
        self.calls.get(id).map(|c| c.leg)
    }

    pub(super) fn session_of(&self, id: &DialogId) -> Option<SessionId> {
        self.calls.get(id).map(|c| c.session)
    }

    pub(super) fn call_id_of(&self, id: &DialogId) -> Option<String> {
        self.calls.get(id).map(|c| c.call_id.clone())
    }

    pub(super) fn set_role(&mut self, id: &DialogId, role: Role) {
        if let Some(c) = self.calls.get_mut(id) {
            c.role = Some(role);
        }
    }

    /// The leg no longer has a partner (a transfer ends the agent's leg
    /// without the caller's).
    pub(super) fn clear_partner(&mut self, id: &DialogId) {
        if let Some(c) = self.calls.get_mut(id) {
            c.partner = None;
        }
    }

    pub(super) fn set_partner(&mut self, id: &DialogId, partner: DialogId) {
        if let Some(c) = self.calls.get_mut(id) {
            c.partner = Some(partner);
        }
    }

    /// A leg we placed (our INVITE answered, already ACKed): its media is
    /// opened by the caller of this with [`Endpoint::open_leg`].
    pub(super) fn add_leg(
        &mut self,
        id: DialogId,
        flow: Flow,
        ports: PortPair,
        local_sdp: SessionDescription,
        partner: Option<DialogId>,
        role: Role,
    ) {
        let call_id = id.call_id.to_string();
        self.calls.insert(
            id,
            Call {
                session: SessionId(0),
                leg: LegId::Agent,
                call_id,
                flow,
                ports,
                local_sdp,
                negotiated: None,
                digits: String::new(),
                room: None,
                partner,
                ended: false,
                start: None,
                unacked: None,
                role: Some(role),
            },
        );
    }

    /// The test extension a dialled number reaches: an exact match, or a
    /// pair extension followed by the room's digits.
    fn test_extension(&self, dialled: &str) -> Option<(TestExtension, String)> {
        let settings = self.settings.as_ref()?;
        settings.test_extensions.iter().find_map(|t| {
            let code = t.extension.as_str();
            match t.action {
                TestAction::Pair => dialled
                    .strip_prefix(code)
                    .filter(|room| !room.is_empty() && room.chars().all(|c| c.is_ascii_digit()))
                    .map(|room| (t.clone(), room.to_owned())),
                _ => (dialled == code).then(|| (t.clone(), String::new())),
            }
        })
    }
}

/// A file name from a Call-ID: anything but `[A-Za-z0-9._-]` becomes `_`.
fn file_safe(call_id: &str) -> String {
    call_id
        .chars()
        .take(96)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Our side of a leg's SDP: sendrecv on `rtp_port`, no ptime of our own,
/// RTCP on the next port (RFC 3264 §5; version per RFC 3264 §8).
pub(super) fn our_media(
    address: std::net::IpAddr,
    rtp_port: u16,
    session_id: u64,
    session_version: u64,
) -> LocalMedia {
    LocalMedia {
        address,
        rtp_port,
        session_id,
        session_version,
        direction: Direction::SendRecv,
        ptime: None,
        rtcp_mux: false,
    }
}

fn leg_setup(n: &Negotiated) -> LegSetup {
    let remote = (!n.remote_rtp.ip().is_unspecified()).then_some(n.remote_rtp);
    LegSetup {
        codec: n.codec,
        payload_type: n.payload_type,
        dtmf_payload_type: n.dtmf_payload_type,
        remote,
        direction: n.direction,
        our_ssrc: Ssrc(rand::random()),
        initial_seq: rand::random(),
        initial_ts: rand::random(),
    }
}

impl Endpoint {
    /// The dialled user part of an INVITE, unescaped.
    pub(super) fn dialled(request: &Request) -> String {
        request
            .uri
            .as_sip()
            .and_then(SipUri::user_unescaped)
            .unwrap_or_default()
    }

    /// The caller's user part (From), for records and the agent's display.
    pub(super) fn caller_user(request: &Request) -> String {
        request
            .headers
            .from
            .uri
            .as_sip()
            .and_then(SipUri::user_unescaped)
            .unwrap_or_default()
    }

    /// Answers an INVITE to a test extension, if it is one.
    pub(super) fn test_call(
        &mut self,
        now: Instant,
        wall: SystemTime,
        request: &Request,
        source: &Flow,
    ) -> Option<Response> {
        let dialled = Self::dialled(request);
        let (extension, room) = self.calls.test_extension(&dialled)?;
        let contact = extension.extension.to_string();
        let start = PendingStart::Test(TestStart {
            extension,
            room,
            caller: Self::caller_user(request),
            dialled,
            wall,
        });
        Some(self.answer_call(now, request, source, &contact, start))
    }

    /// Answers an INVITE ourselves: SDP answer (or our offer when the
    /// INVITE has none), RTP ports, the UAS dialog, and the 2xx resent until
    /// the ACK. What the call then does is `start`, run once the media is
    /// negotiated.
    pub(super) fn answer_call(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        contact_user: &str,
        start: PendingStart,
    ) -> Response {
        self.answer_call_tagged(now, request, source, contact_user, start, None)
    }

    /// [`Endpoint::answer_call`] with the To tag of a provisional response
    /// already sent (the 2xx must carry the same one, RFC 3261 §12.1.1).
    pub(super) fn answer_call_tagged(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        contact_user: &str,
        start: PendingStart,
        tag: Option<&str>,
    ) -> Response {
        let Some(settings) = self.calls.settings.clone() else {
            return self.reply(request, 480);
        };
        let offer = if request.body.is_empty() {
            None
        } else {
            match SessionDescription::parse_bytes(&request.body) {
                Ok(offer) => Some(offer),
                Err(_) => return self.not_acceptable(request, None),
            }
        };
        let Some(ports) = self.calls.allocate_ports() else {
            warn!("no RTP port pair free: call refused");
            let mut r = self.reply(request, 503);
            r.headers.push(HeaderName::RetryAfter, "5");
            return r;
        };
        let local = our_media(
            settings.address,
            ports.rtp(),
            rand::random::<u32>().into(),
            1,
        );
        let (sdp, negotiated) = match &offer {
            // RFC 3261 §13.2.1: an INVITE without an offer gets ours in the
            // 2xx, and the answer comes in the ACK.
            None => (make_offer(&local, &settings.preferences), None),
            Some(offer) => match answer(offer, &local, &settings.preferences) {
                Ok(Answer {
                    sdp,
                    negotiated: Some(n),
                }) => (sdp, Some(n)),
                Ok(_) => {
                    self.release(ports);
                    return self.not_acceptable(request, Some(&NegotiationError::NoAudio));
                }
                Err(e) => {
                    self.release(ports);
                    return self.not_acceptable(request, Some(&e));
                }
            },
        };
        let mut response = match tag {
            Some(tag) => self.reply_tagged(request, 200, tag),
            None => self.reply(request, 200),
        };
        let contact = SipUri::new(self.local_host(source))
            .with_user(contact_user)
            .with_port(source.local.port());
        response.headers.contact = Contacts::List(vec![NameAddr::new(contact.into())]);
        response
            .headers
            .push(HeaderName::Allow, super::requests::ALLOW);
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = Bytes::from(sdp.to_string());
        let dialog_id = match Dialog::uas(request, &response)
            .map_err(|e| e.to_string())
            .and_then(|d| {
                self.dialogs
                    .insert(d)
                    .map(|d| d.id().clone())
                    .map_err(|e| e.to_string())
            }) {
            Ok(id) => id,
            Err(e) => {
                warn!(error = %e, "dialog not created");
                self.release(ports);
                return self.reply(request, 500);
            }
        };
        let call_id = request.headers.call_id.to_string();
        info!(
            call = %call_id,
            to = contact_user,
            codec = negotiated.as_ref().map_or("(offer sent)", |n| n.codec.encoding_name()),
            "call answered"
        );
        self.calls.calls.insert(
            dialog_id.clone(),
            Call {
                // Given when the media starts.
                session: SessionId(0),
                leg: LegId::Caller,
                call_id,
                flow: source.clone(),
                ports,
                local_sdp: sdp,
                negotiated: None,
                digits: String::new(),
                room: None,
                partner: None,
                ended: false,
                start: Some(start),
                unacked: None,
                role: None,
            },
        );
        self.resend_until_ack(now, &dialog_id, &response);
        if let Some(n) = negotiated {
            self.start_media(now, &dialog_id, n);
        }
        response
    }

    /// The ACK of our 2xx: for an INVITE without an offer it carries the
    /// answer to ours (RFC 3264 §5); without one, the call cannot go on
    /// and is hung up (RFC 3261 §13.3.1.4).
    pub(super) fn call_ack(&mut self, now: Instant, id: &DialogId, request: &Request) {
        let Some(call) = self.calls.calls.get_mut(id) else {
            return;
        };
        call.unacked = None;
        self.calls.awaiting_ack.remove(id);
        if call.negotiated.is_some() || call.ended {
            return;
        }
        let accepted = SessionDescription::parse_bytes(&request.body)
            .map_err(|_| NegotiationError::NoAudio)
            .and_then(|answer| accept_answer(&call.local_sdp, &answer));
        match accepted {
            Ok(n) if !request.body.is_empty() => self.start_media(now, id, n),
            _ => {
                warn!(call = %call.call_id, "the ACK carried no usable answer to our offer");
                self.hang_up(now, id, "no SDP answer");
            }
        }
    }

    /// The call's media starts: its leg joins a new session, or the session
    /// of the partner waiting in its room.
    fn start_media(&mut self, now: Instant, id: &DialogId, negotiated: Negotiated) {
        let Some(start) = self.calls.calls.get_mut(id).and_then(|c| c.start.take()) else {
            return;
        };
        match start {
            PendingStart::Test(start) => self.start_test_media(id, negotiated, start),
            PendingStart::Routed(start) => self.start_routed_media(now, id, negotiated, start),
            PendingStart::Outbound(start) => self.start_outbound_media(now, id, negotiated, *start),
            PendingStart::Feature(player) => {
                let session = self.new_session();
                self.open_leg(id, session, LegId::Caller, negotiated, Feed::Play(player));
                self.calls.set_role(id, Role::Goodbye);
            }
        }
    }

    /// Opens a call's leg in a media session.
    pub(super) fn open_leg(
        &mut self,
        id: &DialogId,
        session: SessionId,
        leg: LegId,
        negotiated: Negotiated,
        feed: Feed,
    ) {
        let Some(call) = self.calls.calls.get_mut(id) else {
            return;
        };
        call.session = session;
        call.leg = leg;
        info!(call = %call.call_id, %session, codec = negotiated.codec.encoding_name(), "media started");
        self.outputs.push_back(Output::Media(MediaCommand::OpenLeg {
            session,
            leg,
            ports: call.ports,
            setup: leg_setup(&negotiated),
            feed,
        }));
        call.negotiated = Some(negotiated);
        self.calls.by_leg.insert((session, leg), id.clone());
    }

    fn start_test_media(&mut self, id: &DialogId, negotiated: Negotiated, start: TestStart) {
        let settings = self.calls.settings.clone();
        let extension = &start.extension;
        // A room's second caller joins the first one's session.
        let partner = (extension.action == TestAction::Pair)
            .then(|| self.calls.rooms.remove(&start.room))
            .flatten()
            .filter(|d| self.calls.calls.get(d).is_some_and(|c| !c.ended));
        let joined = partner
            .as_ref()
            .and_then(|first| self.calls.calls.get(first))
            .map(|c| c.session);
        let (session, leg) = match joined {
            Some(session) => (session, LegId::Agent),
            None => (self.new_session(), LegId::Caller),
        };
        let feed = match &extension.action {
            TestAction::Echo => Feed::Echo,
            TestAction::Prompt(path) => match settings.as_ref().and_then(|s| s.prompts.get(path)) {
                Some(p) => Feed::Play(Player::new(
                    vec![PlayItem::Prompt(p.clone()), PlayItem::Silence(PROMPT_GAP)],
                    true,
                )),
                None => Feed::Silence,
            },
            TestAction::Pair if joined.is_some() => Feed::Other,
            TestAction::Pair => Feed::Silence,
        };
        self.open_leg(id, session, leg, negotiated, feed);
        let Some(call) = self.calls.calls.get_mut(id) else {
            return;
        };
        call.partner = partner.clone();
        let call_id = call.call_id.clone();
        if let Some(first) = &partner {
            self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                session,
                leg: LegId::Caller,
                feed: Feed::Other,
            }));
            if let Some(c) = self.calls.calls.get_mut(first) {
                c.partner = Some(id.clone());
                c.room = None;
            }
        } else if extension.action == TestAction::Pair {
            self.calls.rooms.insert(start.room.clone(), id.clone());
            if let Some(c) = self.calls.calls.get_mut(id) {
                c.room = Some(start.room.clone());
            }
        }
        if extension.record && leg == LegId::Caller {
            let right = match extension.action {
                TestAction::Pair => "second caller",
                _ => "gateway",
            };
            let who = (start.caller, start.dialled, right.to_owned());
            self.start_recording(session, &call_id, start.wall, who);
        }
    }

    /// Records a session: `<recording dir>/YYYYMMDD/<call-id>-<session>.wav`,
    /// the caller on the left. `who` is (caller, dialled, right channel).
    /// Returns the path, relative to the recording directory.
    pub(super) fn start_recording(
        &mut self,
        session: SessionId,
        call_id: &str,
        wall: SystemTime,
        (caller, callee, right): (String, String, String),
    ) -> PathBuf {
        let stamp = rfc3339_utc(wall);
        let day: String = stamp
            .chars()
            .take(10)
            .filter(char::is_ascii_digit)
            .collect();
        let path = PathBuf::from(day).join(format!("{}-{session}.wav", file_safe(call_id)));
        self.outputs
            .push_back(Output::Media(MediaCommand::StartRecording {
                session,
                path: path.clone(),
                meta: RecordingMeta {
                    call_id: call_id.to_owned(),
                    caller,
                    callee,
                    started: stamp,
                    left: "caller".to_owned(),
                    right,
                },
            }));
        path
    }

    pub(super) fn new_session(&mut self) -> SessionId {
        let id = SessionId(self.calls.next_session);
        self.calls.next_session += 1;
        id
    }

    fn release(&mut self, ports: PortPair) {
        self.calls.release_ports(ports);
    }

    /// RFC 3261 §21.4.26: 488, with a Warning saying why (§20.43).
    fn not_acceptable(&mut self, request: &Request, why: Option<&NegotiationError>) -> Response {
        let mut r = self.reply(request, 488);
        let warning = match why {
            Some(e) => e.warning_text(&self.config.domain),
            None => format!(
                "399 {} \"an SDP offer is required in the INVITE\"",
                self.config.domain
            ),
        };
        r.headers.push(HeaderName::Warning, warning);
        r
    }

    /// A request inside one of our calls' dialogs, after the dialog layer
    /// checked it. Returns the answer, or `None` when the call layer has
    /// nothing to say (the generic in-dialog answer applies).
    pub(super) fn in_call(
        &mut self,
        now: Instant,
        id: &DialogId,
        request: &Request,
    ) -> Option<Response> {
        if !self.calls.calls.contains_key(id) {
            return None;
        }
        match request.method {
            Method::Bye => {
                self.end_call(now, id, super::queue_calls::BYE_RECEIVED);
                None
            }
            Method::Invite | Method::Update => Some(self.reinvite(now, id, request)),
            Method::Info => Some(self.info_digit(now, id, request)),
            _ => None,
        }
    }

    /// RFC 3264 §8: a new offer in the dialog (hold, resume, a new address).
    fn reinvite(&mut self, now: Instant, id: &DialogId, request: &Request) -> Response {
        let Some(settings) = self.calls.settings.clone() else {
            return self.reply(request, 488);
        };
        let Some(call) = self.calls.calls.get(id) else {
            return self.reply(request, 481);
        };
        if request.body.is_empty() {
            // An offerless re-INVITE (a session refresh): our last SDP again.
            let sdp = call.local_sdp.to_string();
            let mut r = self.reply(request, 200);
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = Bytes::from(sdp);
            return r;
        }
        let Ok(offer) = SessionDescription::parse_bytes(&request.body) else {
            return self.not_acceptable(request, None);
        };
        let local = our_media(
            settings.address,
            call.ports.rtp(),
            call.local_sdp.origin.session_id,
            call.local_sdp.origin.session_version + 1,
        );
        let (sdp, negotiated) = match answer(&offer, &local, &settings.preferences) {
            Ok(Answer {
                sdp,
                negotiated: Some(n),
            }) => (sdp, n),
            Ok(_) => return self.not_acceptable(request, Some(&NegotiationError::NoAudio)),
            // RFC 3264 §8: a refused re-offer leaves the session as it was.
            Err(e) => return self.not_acceptable(request, Some(&e)),
        };
        if call.negotiated.is_none() {
            // RFC 3261 §14.2: our offer is still unanswered.
            return self.reply(request, 491);
        }
        let (session, leg) = (call.session, call.leg);
        let setup = leg_setup(&negotiated);
        info!(call = %call.call_id, direction = negotiated.direction.as_str(), "media renegotiated");
        let role = call.role.clone();
        self.outputs
            .push_back(Output::Media(MediaCommand::UpdateLeg {
                session,
                leg,
                setup,
            }));
        if let Some(role) = role {
            // Our side may not send: the peer holds the call.
            self.role_direction(now, id, &role, !negotiated.direction.sends());
        }
        if let Some(c) = self.calls.calls.get_mut(id) {
            c.local_sdp = sdp.clone();
            c.negotiated = Some(negotiated);
        }
        let mut r = self.reply(request, 200);
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = Bytes::from(sdp.to_string());
        if request.method == Method::Invite {
            // §13.3.1.4 holds for a re-INVITE's 2xx too.
            self.resend_until_ack(now, id, &r);
        }
        r
    }

    fn resend_until_ack(&mut self, now: Instant, id: &DialogId, response: &Response) {
        let t1 = self.config.timers.t1;
        if let Some(call) = self.calls.calls.get_mut(id) {
            call.unacked = Some(Unacked {
                data: Bytes::from(response.to_bytes()),
                next: now + t1,
                interval: t1,
                give_up: now + t1.saturating_mul(64),
            });
            self.calls.awaiting_ack.insert(id.clone());
        }
    }

    /// SIP INFO with a DTMF body (application/dtmf-relay, application/dtmf).
    fn info_digit(&mut self, now: Instant, id: &DialogId, request: &Request) -> Response {
        let content_type = request.headers.get(&HeaderName::ContentType).unwrap_or("");
        let digit = match parse_info_body(content_type, &request.body) {
            Ok(d) => d,
            Err(_) => {
                let mut r = self.reply(request, 415);
                r.headers.push(
                    HeaderName::Accept,
                    "application/dtmf-relay, application/dtmf",
                );
                return r;
            }
        };
        if let Some(call) = self.calls.calls.get_mut(id) {
            call.digits.push(digit.digit);
            info!(call = %call.call_id, digit = %digit.digit, source = "info", "dtmf digit received");
            let (session, leg) = (call.session, call.leg);
            if call.partner.is_some() {
                self.outputs
                    .push_back(Output::Media(MediaCommand::SendDigit {
                        session,
                        leg: leg.other(),
                        digit: digit.digit,
                        duration: Duration::from_millis(u64::from(digit.duration_ms.max(40))),
                    }));
            }
            if call.role == Some(Role::Ivr) {
                self.ivr_digit(now, id, digit.digit);
            }
        }
        self.reply(request, 200)
    }

    /// Ends a call's leg: its media closes (the ports come back with
    /// [`MediaEvent::LegClosed`]) and a paired partner is hung up too.
    fn end_call(&mut self, now: Instant, id: &DialogId, why: &str) {
        let Some(call) = self.calls.calls.get_mut(id) else {
            return;
        };
        if call.ended {
            return;
        }
        call.ended = true;
        let (session, leg, partner, room, role) = (
            call.session,
            call.leg,
            call.partner.clone(),
            call.room.take(),
            call.role.clone(),
        );
        info!(call = %call.call_id, reason = why, "call ending");
        if let Some(room) = room {
            self.calls.rooms.remove(&room);
        }
        self.outputs
            .push_back(Output::Media(MediaCommand::CloseLeg { session, leg }));
        if let Some(role) = &role {
            self.role_leg_ending(now, id, role, why);
        }
        if let Some(p) = partner {
            self.hang_up(now, &p, "partner hung up");
        }
        if let Some(role) = role {
            self.role_leg_ended(now, &role);
        }
    }

    /// We end the call: BYE to the caller (RFC 3261 §15.1.1), media closed.
    pub(super) fn hang_up(&mut self, now: Instant, id: &DialogId, why: &str) {
        // A call already ending (its BYE is being answered) needs no BYE.
        let Some(flow) = self
            .calls
            .calls
            .get(id)
            .filter(|c| !c.ended)
            .map(|c| c.flow.clone())
        else {
            return;
        };
        self.send_bye(now, id, flow);
        self.end_call(now, id, why);
    }

    /// Our BYE in a dialog, which is then forgotten (whatever the answer,
    /// the call is over; a carrier's challenge is answered, see
    /// `trunk_auth`).
    pub(super) fn send_bye(&mut self, now: Instant, id: &DialogId, flow: Flow) {
        let mut via = Via::new(
            flow.transport.as_str(),
            self.local_host(&flow),
            Some(flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        if let Some(dialog) = self.dialogs.get_mut(id) {
            match dialog.request(Method::Bye, via, 70) {
                Ok(bye) => {
                    let purpose = ClientPurpose::Bye(Box::new((bye.clone(), flow.clone())));
                    self.send_request(now, &bye, &flow, purpose);
                }
                Err(e) => warn!(error = %e, "BYE not built"),
            }
        }
        self.dialogs.remove(id);
    }

    /// Hangs up every call (shutdown).
    pub(super) fn hang_up_all(&mut self, now: Instant) {
        let ids: Vec<DialogId> = self.calls.calls.keys().cloned().collect();
        for id in ids {
            self.hang_up(now, &id, "gateway shutting down");
        }
        self.flush_records();
    }

    /// When a 2xx is next due again.
    pub(super) fn calls_timeout(&self) -> Option<Instant> {
        self.calls
            .awaiting_ack
            .iter()
            .filter_map(|id| self.calls.calls.get(id)?.unacked.as_ref())
            .map(|u| u.next.min(u.give_up))
            .min()
    }

    /// RFC 3261 §13.3.1.4: our 2xx again at T1, 2·T1, … capped at T2
    /// until the ACK; after 64·T1 without one the call is hung up.
    pub(super) fn calls_handle_timeout(&mut self, now: Instant) {
        let t2 = self.config.timers.t2;
        let mut lost = Vec::new();
        let calls = &mut self.calls.calls;
        self.calls
            .awaiting_ack
            .retain(|id| calls.get(id).is_some_and(|c| c.unacked.is_some()));
        for id in &self.calls.awaiting_ack {
            let Some(call) = calls.get_mut(id) else {
                continue;
            };
            let Some(u) = call.unacked.as_mut() else {
                continue;
            };
            if now >= u.give_up {
                warn!(call = %call.call_id, "no ACK for our 2xx: hanging up");
                call.unacked = None;
                lost.push(id.clone());
            } else if now >= u.next {
                self.outputs.push_back(Output::Transmit {
                    flow: call.flow.clone(),
                    data: u.data.clone(),
                });
                u.interval = (u.interval * 2).min(t2);
                u.next = now + u.interval;
            }
        }
        for id in lost {
            self.hang_up(now, &id, "no ACK");
        }
    }

    /// What a media worker reports.
    pub(super) fn media_event(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Digit {
                session,
                leg,
                digit,
                ..
            } => {
                let Some(id) = self.calls.by_leg.get(&(session, leg)).cloned() else {
                    return;
                };
                if let Some(call) = self.calls.calls.get_mut(&id) {
                    call.digits.push(digit);
                    info!(call = %call.call_id, %digit, source = "rfc4733", "dtmf digit received");
                    if call.role == Some(Role::Ivr) {
                        self.ivr_digit(now, &id, digit);
                    }
                }
            }
            MediaEvent::Dead { session, leg } => {
                if let Some(id) = self.calls.by_leg.get(&(session, leg)).cloned() {
                    warn!(%session, "no RTP from the phone: hanging up");
                    self.hang_up(now, &id, "no RTP");
                }
            }
            MediaEvent::PlaybackDone { session, leg } => {
                let Some(id) = self.calls.by_leg.get(&(session, leg)).cloned() else {
                    return;
                };
                if let Some(role) = self.calls.calls.get(&id).and_then(|c| c.role.clone()) {
                    self.role_playback_done(now, &id, &role);
                }
            }
            MediaEvent::OpenFailed {
                session,
                leg,
                ports,
                reason,
            } => {
                warn!(%session, rtp_port = ports.rtp(), %reason, "RTP ports not opened");
                self.role_leg_closed(session, leg, None);
                if let Some(id) = self.calls.by_leg.get(&(session, leg)).cloned() {
                    self.hang_up(now, &id, "media failed");
                    self.forget(&id, ports);
                }
            }
            MediaEvent::LegClosed {
                session,
                leg,
                ports,
                report,
            } => {
                if let Some(id) = self.calls.by_leg.get(&(session, leg)).cloned() {
                    if let Some(call) = self.calls.calls.get(&id) {
                        log_call_end(call, &report);
                    }
                    self.forget(&id, ports);
                }
                self.role_leg_closed(session, leg, Some(&report));
            }
        }
    }

    fn forget(&mut self, id: &DialogId, ports: PortPair) {
        if let Some(call) = self.calls.calls.remove(id) {
            self.calls.awaiting_ack.remove(id);
            self.calls.by_leg.remove(&(call.session, call.leg));
            self.release(ports);
        }
    }
}

fn log_call_end(call: &Call, report: &LegReport) {
    info!(
        call = %call.call_id,
        packets_received = report.packets_received,
        packets_sent = report.packets_sent,
        lost = report.stats.lost,
        jitter_ms = format!("{:.1}", report.stats.jitter_ms),
        mos = format!("{:.2}", report.stats.mos),
        rtt_ms = report.stats.round_trip_ms.map(|r| format!("{r:.1}")).unwrap_or_default(),
        dtmf = %call.digits,
        "call ended"
    );
}
