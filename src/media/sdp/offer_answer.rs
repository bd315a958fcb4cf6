//! RFC 3264 offer/answer for one audio stream, over the codecs Switchboard
//! transcodes between.

use std::net::{IpAddr, SocketAddr};

use super::{
    Address, Attribute, Connection, Direction, MediaDescription, Origin, RtpMap,
    SessionDescription, Timing,
};

/// The RTP profile we speak. SRTP or AVPF offers are refused per stream:
/// RFC 3264 §6 requires the answer to keep the offered transport.
const PROFILE: &str = "RTP/AVP";
/// RFC 4733 named events.
const TELEPHONE_EVENT: &str = "telephone-event";
/// The events we receive: DTMF 0-9, *, #, A-D and flash (RFC 4733 §3.2).
const EVENTS: &str = "0-16";
/// RFC 3551 §4.5: audio packets default to 20 ms.
const DEFAULT_PTIME: u32 = 20;
/// The dynamic payload types we offer; fixed, so a re-offer that changes
/// the codec list never remaps a number (RFC 3264 §8.3.2).
const OPUS_PT: u8 = 96;
const TE_48000_PT: u8 = 100;
const TE_8000_PT: u8 = 101;

/// An audio codec we can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0 (RFC 3551).
    Pcmu,
    /// G.711 A-law, static payload type 8 (RFC 3551).
    Pcma,
    /// Opus (RFC 7587): always `opus/48000/2` in SDP, dynamic payload type.
    Opus,
}

impl Codec {
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48_000,
        }
    }

    /// The rtpmap channel count; RFC 7587 §7 mandates `/2` for opus.
    pub fn channels(self) -> Option<u16> {
        match self {
            Codec::Pcmu | Codec::Pcma => None,
            Codec::Opus => Some(2),
        }
    }

    /// The RFC 3551 static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }

    fn rtpmap(self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.encoding_name().to_owned(),
            clock_rate: self.clock_rate(),
            channels: self.channels(),
        }
    }
}

/// What an offered or answered payload type stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Codec(Codec),
    TelephoneEvent { clock_rate: u32 },
    Unknown,
}

/// Classifies a payload type by its rtpmap (encoding names are
/// case-insensitive, RFC 4855 §3), or by the static table when it has none.
fn classify(map: Option<&RtpMap>, payload_type: u8) -> Format {
    let Some(map) = map else {
        return match payload_type {
            0 => Format::Codec(Codec::Pcmu),
            8 => Format::Codec(Codec::Pcma),
            _ => Format::Unknown,
        };
    };
    let mono = matches!(map.channels, None | Some(1));
    let name = map.encoding.as_str();
    if name.eq_ignore_ascii_case("PCMU") && map.clock_rate == 8000 && mono {
        Format::Codec(Codec::Pcmu)
    } else if name.eq_ignore_ascii_case("PCMA") && map.clock_rate == 8000 && mono {
        Format::Codec(Codec::Pcma)
    } else if name.eq_ignore_ascii_case("opus")
        && map.clock_rate == 48_000
        && map.channels == Some(2)
    {
        Format::Codec(Codec::Opus)
    } else if name.eq_ignore_ascii_case(TELEPHONE_EVENT) && mono {
        Format::TelephoneEvent {
            clock_rate: map.clock_rate,
        }
    } else {
        Format::Unknown
    }
}

fn formats(m: &MediaDescription) -> impl Iterator<Item = (u8, Format)> + '_ {
    m.payload_types()
        .map(move |pt| (pt, classify(m.rtpmap(pt), pt)))
}

/// The caller's codec preference order, and whether to offer/accept RFC 4733
/// telephone-event. Never empty and without duplicates, so an offer always
/// has a valid format list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    codecs: Vec<Codec>,
    telephone_event: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    #[error("the codec preference list is empty")]
    Empty,
    #[error("codec {0:?} is listed twice")]
    Duplicate(Codec),
}

impl Preferences {
    pub fn new(codecs: Vec<Codec>, telephone_event: bool) -> Result<Self, PreferencesError> {
        if codecs.is_empty() {
            return Err(PreferencesError::Empty);
        }
        for (i, c) in codecs.iter().enumerate() {
            if codecs[..i].contains(c) {
                return Err(PreferencesError::Duplicate(*c));
            }
        }
        Ok(Self {
            codecs,
            telephone_event,
        })
    }

    pub fn codecs(&self) -> &[Codec] {
        &self.codecs
    }

    pub fn telephone_event(&self) -> bool {
        self.telephone_event
    }
}

impl Default for Preferences {
    /// G.711 first: every PSTN leg and desk phone has it, so it avoids
    /// transcoding; opus for the softphones that ask for it.
    fn default() -> Self {
        Self {
            codecs: vec![Codec::Pcma, Codec::Pcmu, Codec::Opus],
            telephone_event: true,
        }
    }
}

/// Our side of the media: where we receive RTP and how we describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address put in `o=` and `c=`.
    pub address: IpAddr,
    pub rtp_port: u16,
    pub session_id: u64,
    /// The caller increases this for each new description it sends in a
    /// dialog (RFC 3264 §8); [`make_reoffer`] does it for re-offers.
    pub session_version: u64,
    /// What we want: `sendonly` or `inactive` to put the peer on hold.
    pub direction: Direction,
    /// Our `a=ptime`, if we state one.
    pub ptime: Option<u32>,
    /// Whether we offer or accept RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
}

/// The outcome of a negotiation: what the media worker needs to run the
/// stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type to send and expect for `codec`.
    pub payload_type: u8,
    pub clock_rate: u32,
    /// telephone-event at the codec's clock rate, when both sides have it.
    pub dtmf_payload_type: Option<u8>,
    pub remote_rtp: SocketAddr,
    /// From `a=rtcp` (RFC 3605), else the RTP address when muxed, else the
    /// RTP port + 1 (RFC 3550 §11).
    pub remote_rtcp: SocketAddr,
    /// Whether RTP and RTCP share the port (RFC 5761): both sides said so.
    pub rtcp_mux: bool,
    /// The direction from our side: `SendOnly` means we send and the peer
    /// does not.
    pub direction: Direction,
    /// Packet duration to send with, ms: the peer's `a=ptime` (it states
    /// what it wants to receive, RFC 8866 §6.4), else ours, else 20.
    pub ptime: u32,
}

/// An answer to send, and the stream it sets up. `negotiated` is `None`
/// when the offer had its audio disabled (port 0): the answer keeps it at
/// port 0 (RFC 3264 §6) and there is no stream to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: SessionDescription,
    pub negotiated: Option<Negotiated>,
}

/// Why an offer cannot be answered, or an answer accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("the offer has no audio stream")]
    NoAudio,
    #[error("no codec in common")]
    NoCommonCodec,
    #[error("transport {0} not supported (only RTP/AVP)")]
    UnsupportedTransport(String),
    #[error("media address is a host name, which is not resolved here")]
    HostnameAddress,
    #[error("media address family differs from ours")]
    AddressFamilyMismatch,
    #[error("RTP port {0} leaves no room for RTCP on the next port")]
    NoRtcpPort(u16),
    #[error("the answer has {answer} media sections for our {offer}")]
    MediaCountMismatch { offer: usize, answer: usize },
    #[error("the answer rejected the audio stream")]
    AudioRejected,
}

impl NegotiationError {
    /// The RFC 3261 §20.43 warn-code and text for a 488 answering the offer.
    pub fn warning(&self) -> (u16, &'static str) {
        match self {
            NegotiationError::NoAudio | NegotiationError::AudioRejected => {
                (304, "Media type not available")
            }
            NegotiationError::NoCommonCodec => (305, "Incompatible media format"),
            NegotiationError::UnsupportedTransport(_) => (302, "Incompatible transport protocol"),
            NegotiationError::HostnameAddress | NegotiationError::AddressFamilyMismatch => {
                (301, "Incompatible network address formats")
            }
            NegotiationError::NoRtcpPort(_) | NegotiationError::MediaCountMismatch { .. } => {
                (307, "Session description parameter not understood")
            }
        }
    }

    /// A Warning header value (RFC 3261 §20.43):
    /// `305 switchboard "Incompatible media format"`.
    pub fn warning_text(&self, agent: &str) -> String {
        let (code, text) = self.warning();
        format!("{code} {agent} \"{text}\"")
    }
}

/// Builds an offer of one audio stream with our codecs in preference order
/// (RFC 3264 §5), plus telephone-event at each offered clock rate.
pub fn make_offer(local: &LocalMedia, prefs: &Preferences) -> SessionDescription {
    offer_with(local, prefs, None)
}

/// A re-offer in the same session (hold, resume, codec change): the same
/// session id with the version one up from `previous`, our last description
/// (offer or answer), and payload type numbers kept from it (RFC 3264
/// §8, §8.3.2).
pub fn make_reoffer(
    previous: &SessionDescription,
    local: &LocalMedia,
    prefs: &Preferences,
) -> SessionDescription {
    let local = LocalMedia {
        session_id: previous.origin.session_id,
        session_version: previous.origin.session_version.wrapping_add(1),
        ..local.clone()
    };
    offer_with(&local, prefs, previous.audio())
}

fn offer_with(
    local: &LocalMedia,
    prefs: &Preferences,
    previous: Option<&MediaDescription>,
) -> SessionDescription {
    let mut taken: Vec<u8> = Vec::new();
    let mut pick = |format: Format, preferred: u8| -> u8 {
        let earlier =
            previous.and_then(|m| formats(m).find(|&(_, f)| f == format).map(|(pt, _)| pt));
        let pt = earlier
            .filter(|pt| !taken.contains(pt))
            .or_else(|| Some(preferred).filter(|pt| !taken.contains(pt)))
            .or_else(|| (96..=127).find(|pt| !taken.contains(pt)))
            .unwrap_or(preferred);
        taken.push(pt);
        pt
    };
    let mut chosen: Vec<(u8, RtpMap)> = Vec::new();
    for &codec in &prefs.codecs {
        let pt = match codec.static_payload_type() {
            Some(pt) => pt,
            None => pick(Format::Codec(codec), OPUS_PT),
        };
        chosen.push((pt, codec.rtpmap(pt)));
    }
    let mut dtmf = Vec::new();
    if prefs.telephone_event {
        for &codec in &prefs.codecs {
            let rate = codec.clock_rate();
            if dtmf.contains(&rate) {
                continue;
            }
            dtmf.push(rate);
            let preferred = if rate == 8000 {
                TE_8000_PT
            } else {
                TE_48000_PT
            };
            let pt = pick(Format::TelephoneEvent { clock_rate: rate }, preferred);
            chosen.push((pt, telephone_event(pt, rate)));
        }
    }
    let mut attributes = Vec::new();
    for (_, map) in &chosen {
        attributes.push(Attribute::Rtpmap(map.clone()));
        if map.encoding == TELEPHONE_EVENT {
            attributes.push(Attribute::Fmtp {
                payload_type: map.payload_type,
                params: EVENTS.to_owned(),
            });
        }
    }
    let media = audio_section(
        local,
        chosen.iter().map(|(pt, _)| pt.to_string()).collect(),
        attributes,
        local.direction,
        local.rtcp_mux,
    );
    description(local, vec![media])
}

fn telephone_event(payload_type: u8, clock_rate: u32) -> RtpMap {
    RtpMap {
        payload_type,
        encoding: TELEPHONE_EVENT.to_owned(),
        clock_rate,
        channels: None,
    }
}

fn audio_section(
    local: &LocalMedia,
    formats: Vec<String>,
    mut attributes: Vec<Attribute>,
    direction: Direction,
    rtcp_mux: bool,
) -> MediaDescription {
    if let Some(p) = local.ptime {
        attributes.push(Attribute::Ptime(p));
    }
    if rtcp_mux {
        attributes.push(Attribute::RtcpMux);
    }
    attributes.push(Attribute::Direction(direction));
    MediaDescription {
        media: "audio".to_owned(),
        port: local.rtp_port,
        port_count: None,
        proto: PROFILE.to_owned(),
        formats,
        title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        encryption_key: None,
        attributes,
    }
}

fn description(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "-".to_owned(),
            session_id: local.session_id,
            session_version: local.session_version,
            address: Address::Ip(local.address),
        },
        // RFC 8866 §5.3: "-" when the session has no name.
        session_name: "-".to_owned(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection {
            address: Address::Ip(local.address),
        }),
        bandwidths: Vec::new(),
        timings: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        encryption_key: None,
        attributes: Vec::new(),
        media,
    }
}

/// RFC 3264 §6: a refused stream is answered with port 0 and the offered
/// formats (the list must not be empty; its content is ignored).
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: offered.media.clone(),
        port: 0,
        port_count: None,
        proto: offered.proto.clone(),
        formats: offered.formats.clone(),
        title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        encryption_key: None,
        attributes: Vec::new(),
    }
}

/// The peer's RTP address for a media section.
fn remote_ip(sdp: &SessionDescription, m: &MediaDescription) -> Result<IpAddr, NegotiationError> {
    match sdp.connection_of(m).map(|c| &c.address) {
        Some(Address::Ip(ip)) => Ok(*ip),
        // The parser refuses an active stream without c=, so this is a
        // host name.
        _ => Err(NegotiationError::HostnameAddress),
    }
}

fn remote_rtcp(
    ip: IpAddr,
    m: &MediaDescription,
    muxed: bool,
) -> Result<SocketAddr, NegotiationError> {
    if let Some(rtcp) = m.rtcp() {
        let ip = match &rtcp.address {
            Some(Address::Ip(a)) => *a,
            Some(Address::Fqdn { .. }) => return Err(NegotiationError::HostnameAddress),
            None => ip,
        };
        return Ok(SocketAddr::new(ip, rtcp.port));
    }
    if muxed {
        return Ok(SocketAddr::new(ip, m.port));
    }
    let port = m
        .port
        .checked_add(1)
        .ok_or(NegotiationError::NoRtcpPort(m.port))?;
    Ok(SocketAddr::new(ip, port))
}

/// What the peer's description says about its receiving: a stream sent to
/// 0.0.0.0 is the RFC 2543 hold, i.e. it does not want our media.
fn effective_direction(sdp: &SessionDescription, m: &MediaDescription, ip: IpAddr) -> Direction {
    let d = sdp.direction_of(m);
    if ip.is_unspecified() {
        Direction::from_parts(d.sends(), false)
    } else {
        d
    }
}

struct Accepted {
    codec: Codec,
    payload_type: u8,
    dtmf: Option<u8>,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    rtcp_mux: bool,
    direction: Direction,
    ptime: u32,
}

fn accept_offered(
    offer: &SessionDescription,
    m: &MediaDescription,
    local: &LocalMedia,
    prefs: &Preferences,
) -> Result<Accepted, NegotiationError> {
    if m.proto != PROFILE {
        return Err(NegotiationError::UnsupportedTransport(m.proto.clone()));
    }
    let ip = remote_ip(offer, m)?;
    // The legacy hold address 0.0.0.0 says nothing about the family.
    if ip.is_ipv4() != local.address.is_ipv4() && !ip.is_unspecified() {
        return Err(NegotiationError::AddressFamilyMismatch);
    }
    // Our preference order wins, the offerer's numbers are kept (§6.1).
    let (codec, payload_type) = prefs
        .codecs
        .iter()
        .find_map(|&c| {
            formats(m)
                .find(|&(_, f)| f == Format::Codec(c))
                .map(|(pt, _)| (c, pt))
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let dtmf = prefs
        .telephone_event
        .then(|| {
            formats(m)
                .find(|&(_, f)| {
                    f == Format::TelephoneEvent {
                        clock_rate: codec.clock_rate(),
                    }
                })
                .map(|(pt, _)| pt)
        })
        .flatten();
    let rtcp_mux = m.rtcp_mux() && local.rtcp_mux;
    let offered = effective_direction(offer, m, ip);
    // RFC 3264 §6.1: we may send only if they receive, and receive only if
    // they send; within that, what we want.
    let direction = Direction::from_parts(
        offered.receives() && local.direction.sends(),
        offered.sends() && local.direction.receives(),
    );
    Ok(Accepted {
        codec,
        payload_type,
        dtmf,
        remote_rtp: SocketAddr::new(ip, m.port),
        remote_rtcp: remote_rtcp(ip, m, rtcp_mux)?,
        rtcp_mux,
        direction,
        ptime: m.ptime().or(local.ptime).unwrap_or(DEFAULT_PTIME),
    })
}

/// Answers an offer (RFC 3264 §6): the first active audio stream we can
/// serve is accepted with one codec, the first of `prefs` the offer has,
/// under the offerer's payload type, plus telephone-event at that codec's
/// clock rate when offered. Every other stream is refused with port 0.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
    prefs: &Preferences,
) -> Result<Answer, NegotiationError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut negotiated = None;
    let mut first_error = None;
    let mut any_audio = false;
    for m in &offer.media {
        let is_audio = m.media == "audio";
        any_audio |= is_audio;
        if negotiated.is_some() || !is_audio || m.port == 0 {
            media.push(rejected(m));
            continue;
        }
        match accept_offered(offer, m, local, prefs) {
            Ok(a) => {
                let mut formats = vec![a.payload_type.to_string()];
                let mut attributes = vec![Attribute::Rtpmap(a.codec.rtpmap(a.payload_type))];
                if let Some(pt) = a.dtmf {
                    formats.push(pt.to_string());
                    attributes.push(Attribute::Rtpmap(telephone_event(pt, a.codec.clock_rate())));
                    attributes.push(Attribute::Fmtp {
                        payload_type: pt,
                        params: EVENTS.to_owned(),
                    });
                }
                media.push(audio_section(
                    local,
                    formats,
                    attributes,
                    a.direction,
                    a.rtcp_mux,
                ));
                negotiated = Some(Negotiated {
                    codec: a.codec,
                    payload_type: a.payload_type,
                    clock_rate: a.codec.clock_rate(),
                    dtmf_payload_type: a.dtmf,
                    remote_rtp: a.remote_rtp,
                    remote_rtcp: a.remote_rtcp,
                    rtcp_mux: a.rtcp_mux,
                    direction: a.direction,
                    ptime: a.ptime,
                });
            }
            Err(e) => {
                first_error.get_or_insert(e);
                media.push(rejected(m));
            }
        }
    }
    if negotiated.is_none() {
        if let Some(e) = first_error {
            return Err(e);
        }
        if !any_audio {
            return Err(NegotiationError::NoAudio);
        }
    }
    Ok(Answer {
        sdp: description(local, media),
        negotiated,
    })
}

/// Takes the answer to an offer we sent (RFC 3264 §5-6, UAC side). We send
/// with the answer's payload type numbers.
pub fn accept_answer(
    offer_we_sent: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if offer_we_sent.media.len() != answer.media.len() {
        return Err(NegotiationError::MediaCountMismatch {
            offer: offer_we_sent.media.len(),
            answer: answer.media.len(),
        });
    }
    let (ours, theirs) = offer_we_sent
        .media
        .iter()
        .zip(&answer.media)
        .find(|(o, a)| o.media == "audio" && o.port != 0 && a.port != 0)
        .ok_or(NegotiationError::AudioRejected)?;
    if theirs.proto != ours.proto {
        return Err(NegotiationError::UnsupportedTransport(theirs.proto.clone()));
    }
    // A dynamic type answered without an rtpmap takes the mapping we offered
    // for that number.
    let answered = |pt: u8| classify(theirs.rtpmap(pt).or(ours.rtpmap(pt)), pt);
    let offered: Vec<Format> = formats(ours).map(|(_, f)| f).collect();
    let (codec, payload_type) = theirs
        .payload_types()
        .find_map(|pt| match answered(pt) {
            Format::Codec(c) if offered.contains(&Format::Codec(c)) => Some((c, pt)),
            _ => None,
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let te = Format::TelephoneEvent {
        clock_rate: codec.clock_rate(),
    };
    let dtmf = if offered.contains(&te) {
        theirs.payload_types().find(|&pt| answered(pt) == te)
    } else {
        None
    };
    let ip = remote_ip(answer, theirs)?;
    let rtcp_mux = ours.rtcp_mux() && theirs.rtcp_mux();
    let we_want = offer_we_sent.direction_of(ours);
    let they_do = effective_direction(answer, theirs, ip);
    Ok(Negotiated {
        codec,
        payload_type,
        clock_rate: codec.clock_rate(),
        dtmf_payload_type: dtmf,
        remote_rtp: SocketAddr::new(ip, theirs.port),
        remote_rtcp: remote_rtcp(ip, theirs, rtcp_mux)?,
        rtcp_mux,
        direction: Direction::from_parts(
            we_want.sends() && they_do.receives(),
            we_want.receives() && they_do.sends(),
        ),
        ptime: theirs.ptime().or(ours.ptime()).unwrap_or(DEFAULT_PTIME),
    })
}
