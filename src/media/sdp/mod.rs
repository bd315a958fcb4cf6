//! SDP (RFC 8866, which obsoletes RFC 4566) parsing and printing, and the
//! RFC 3264 offer/answer model for the one audio stream a call carries.
//!
//! The types here only parse and print: [`SessionDescription::parse`] reads a
//! body, `Display` writes it back with CRLF line ends, and a parse of the
//! print gives back an equal value. Negotiation lives in [`offer_answer`]
//! and knows only the codecs in [`Codec`].
//!
//! Parsing is lenient on line ends (CRLF or a bare LF, RFC 8866 §5 asks
//! parsers to accept both) and strict on structure: lines must come in the
//! order of RFC 8866 §5, single-instance lines must not repeat, and every
//! line we type (`o=`, `c=`, `m=`, `a=rtpmap`, ...) must be well formed.
//! Errors carry the 1-based line number.

mod offer_answer;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

pub use offer_answer::{
    accept_answer, answer, make_offer, make_reoffer, Answer, Codec, LocalMedia, Negotiated,
    NegotiationError, Preferences, PreferencesError,
};
pub use parse::{ParseError, ParseErrorKind};

/// A whole session description: the session-level lines and the media
/// descriptions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: who made this description and its version (RFC 8866 §5.2).
    pub origin: Origin,
    /// `s=`: RFC 8866 §5.3 says a single space or `-` when there is none.
    pub session_name: String,
    /// `i=`
    pub information: Option<String>,
    /// `u=`
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`; applies to media without their own.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, each with its `r=` lines. At least one.
    pub timings: Vec<Timing>,
    /// `z=`, kept verbatim.
    pub time_zones: Option<String>,
    /// `k=` (obsolete in RFC 8866 but still parsed), kept verbatim.
    pub encryption_key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    /// RFC 3264 §8: increased every time a party changes its description.
    pub session_version: u64,
    pub address: Address,
}

/// The address of an `o=` or `c=` line (network type `IN` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A literal IPv4 (`IP4`) or IPv6 (`IP6`) address.
    Ip(IpAddr),
    /// A host name; RFC 8866 allows one, but a sans-IO core cannot resolve
    /// it, so negotiation refuses it.
    Fqdn { family: AddressFamily, name: String },
}

/// `IP4` or `IP6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    Ip4,
    Ip6,
}

/// `c=IN <addrtype> <address>`. Multicast suffixes (`/ttl/count`) are not
/// supported: a call centre's RTP is unicast, so they are a parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub address: Address,
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub kind: String,
    pub value: u64,
}

/// `t=<start> <stop>` and its `r=` lines (kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<String>,
}

/// An `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, when present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: String,
    /// The format list. For RTP profiles these are payload type numbers,
    /// checked to be 0-127 at parse time.
    pub formats: Vec<String>,
    /// `i=`
    pub title: Option<String>,
    /// Media-level `c=` lines.
    pub connections: Vec<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`, kept verbatim.
    pub encryption_key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

/// The stream direction attributes (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction from its two halves.
    pub fn from_parts(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end.
    pub fn reversed(self) -> Self {
        Direction::from_parts(self.receives(), self.sends())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    pub port: u16,
    pub address: Option<Address>,
}

/// An `a=` line. The ones negotiation needs are typed; the rest are kept
/// as they came so a print reproduces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Rtpmap(RtpMap),
    /// `a=fmtp:<payload type> <parameters>`; the parameters are
    /// codec-specific and kept verbatim.
    Fmtp {
        payload_type: u8,
        params: String,
    },
    /// `a=ptime:<ms>`
    Ptime(u32),
    /// `a=maxptime:<ms>`
    MaxPtime(u32),
    Direction(Direction),
    Rtcp(RtcpAttr),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// Any other attribute: `a=<name>` or `a=<name>:<value>`.
    Other {
        name: String,
        value: Option<String>,
    },
}

impl SessionDescription {
    /// Parses a body given as text.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parse::parse(text)
    }

    /// Parses a body as it came off the wire; it must be UTF-8.
    pub fn parse_bytes(data: &[u8]) -> Result<Self, ParseError> {
        match std::str::from_utf8(data) {
            Ok(text) => parse::parse(text),
            Err(e) => {
                let line = 1 + data[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                Err(ParseError {
                    line,
                    kind: ParseErrorKind::NotUtf8,
                })
            }
        }
    }

    /// The session-level direction attribute, if any.
    pub fn direction_attr(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The first audio section, if any.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.media == "audio")
    }

    /// The effective direction of a media section: its own attribute, else
    /// the session's, else `sendrecv` (RFC 8866 §6.7).
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        direction_in(&media.attributes)
            .or_else(|| self.direction_attr())
            .unwrap_or(Direction::SendRecv)
    }

    /// The connection that applies to a media section: its own, else the
    /// session's (RFC 8866 §5.7).
    pub fn connection_of<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connections.first().or(self.connection.as_ref())
    }

    /// Whether this description puts the call on hold: its audio stream is
    /// `sendonly` or `inactive` (RFC 3264 §8.4), or uses the RFC 2543
    /// convention of a `c=` address of 0.0.0.0, which older phones still
    /// send. A disabled stream (port 0) is not a hold.
    pub fn is_hold(&self) -> bool {
        let Some(audio) = self
            .media
            .iter()
            .find(|m| m.media == "audio" && m.port != 0)
        else {
            return false;
        };
        let unreachable = matches!(
            self.connection_of(audio).map(|c| &c.address),
            Some(Address::Ip(ip)) if ip.is_unspecified()
        );
        unreachable || !self.direction_of(audio).receives()
    }
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

impl MediaDescription {
    /// The `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtpmap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters for a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp {
                payload_type: pt,
                params,
            } if *pt == payload_type => Some(params.as_str()),
            _ => None,
        })
    }

    /// `a=ptime`, if present.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// `a=rtcp`, if present.
    pub fn rtcp(&self) -> Option<&RtcpAttr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// The format list as RTP payload types, when the profile is RTP; the
    /// parser has checked each is a number 0-127.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }
}

// ---- printing (RFC 8866 §5: lines end in CRLF, in the grammar's order) ----

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ip4 => "IP4",
            AddressFamily::Ip6 => "IP6",
        })
    }
}

impl fmt::Display for Address {
    /// `IN <addrtype> <address>`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(IpAddr::V4(ip)) => write!(f, "IN IP4 {ip}"),
            Address::Ip(IpAddr::V6(ip)) => write!(f, "IN IP6 {ip}"),
            Address::Fqdn { family, name } => write!(f, "IN {family} {name}"),
        }
    }
}

impl fmt::Display for Attribute {
    /// The text after `a=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap(m) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    m.payload_type, m.encoding, m.clock_rate
                )?;
                match m.channels {
                    Some(c) => write!(f, "/{c}"),
                    None => Ok(()),
                }
            }
            Attribute::Fmtp {
                payload_type,
                params,
            } => write!(f, "fmtp:{payload_type} {params}"),
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::MaxPtime(p) => write!(f, "maxptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp(r) => match &r.address {
                Some(a) => write!(f, "rtcp:{} {a}", r.port),
                None => write!(f, "rtcp:{}", r.port),
            },
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Other { name, value } => match value {
                Some(v) => write!(f, "{name}:{v}"),
                None => f.write_str(name),
            },
        }
    }
}

fn write_common(
    f: &mut fmt::Formatter<'_>,
    connections: &[&Connection],
    bandwidths: &[Bandwidth],
) -> fmt::Result {
    for c in connections {
        write!(f, "c={}\r\n", c.address)?;
    }
    for b in bandwidths {
        write!(f, "b={}:{}\r\n", b.kind, b.value)?;
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.address, self.session_name
        )?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        let connections: Vec<&Connection> = self.connection.iter().collect();
        write_common(f, &connections, &self.bandwidths)?;
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.encryption_key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.title {
            write!(f, "i={i}\r\n")?;
        }
        let connections: Vec<&Connection> = self.connections.iter().collect();
        write_common(f, &connections, &self.bandwidths)?;
        if let Some(k) = &self.encryption_key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

/// Fuzz body: parse arbitrary bytes; whatever parses must print to text
/// that parses back to the same value, and answering it must not panic.
/// The panics are deliberate: they are how a fuzzer reports a bug.
pub fn fuzz_parse(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let printed = sdp.to_string();
    match SessionDescription::parse(&printed) {
        Ok(again) => assert_eq!(again, sdp, "print/parse round trip changed the SDP"),
        Err(e) => panic!("printed SDP does not parse: {e}\n{printed}"),
    }
    let local = LocalMedia {
        address: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        rtp_port: 40_000,
        session_id: 1,
        session_version: 1,
        direction: Direction::SendRecv,
        ptime: Some(20),
        rtcp_mux: true,
    };
    let _ = answer(&sdp, &local, &Preferences::default());
    let _ = sdp.is_hold();
}
