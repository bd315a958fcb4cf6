//! The SDP parser (RFC 8866 §5, §9 grammar).

use std::net::IpAddr;
use std::str::FromStr;

use super::{
    Address, AddressFamily, Attribute, Bandwidth, Connection, Direction, MediaDescription, Origin,
    RtcpAttr, RtpMap, SessionDescription, Timing,
};

/// A parse failure and the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
}

/// Why a description was refused, grouped by cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("empty line inside the description")]
    EmptyLine,
    #[error("not a `<type>=<value>` line")]
    NotTypeValue,
    #[error("unknown line type `{0}`")]
    UnknownType(char),
    #[error("expected a `{0}=` line here")]
    Missing(char),
    #[error("`{0}=` line out of order or repeated")]
    OutOfOrder(char),
    #[error("unsupported protocol version (only v=0)")]
    BadVersion,
    #[error("malformed o= line")]
    BadOrigin,
    #[error("malformed address")]
    BadAddress,
    #[error("network type is not IN")]
    BadNetworkType,
    #[error("multicast connection addresses are not supported")]
    Multicast,
    #[error("malformed b= line")]
    BadBandwidth,
    #[error("malformed t= line")]
    BadTiming,
    #[error("malformed m= line")]
    BadMedia,
    #[error("payload type is not a number 0-127")]
    BadPayloadType,
    #[error("media section has no c= line and the session has none")]
    NoConnection,
    #[error("malformed a={0} attribute")]
    BadAttribute(&'static str),
    #[error("malformed attribute name")]
    BadAttributeName,
}

fn err(line: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

/// Parses a number made only of ASCII digits (`FromStr` would also take a
/// leading `+`, which the grammar does not allow).
fn digits<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn payload_type(s: &str) -> Option<u8> {
    digits::<u8>(s).filter(|&pt| pt <= 127)
}

/// Whether a token is usable as a name (`token` in RFC 8866 §9, which is
/// printable ASCII other than separators).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'<' | b'>' | b'@' | b',' | b';')
                && !matches!(
                    b,
                    b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'=' | b'{' | b'}'
                )
                && b != b':'
        })
}

/// `IN <addrtype> <address>` split into its three fields.
pub(super) fn address(
    nettype: &str,
    addrtype: &str,
    addr: &str,
) -> Result<Address, ParseErrorKind> {
    if nettype != "IN" {
        return Err(ParseErrorKind::BadNetworkType);
    }
    let family = match addrtype {
        "IP4" => AddressFamily::Ip4,
        "IP6" => AddressFamily::Ip6,
        _ => return Err(ParseErrorKind::BadAddress),
    };
    if addr.contains('/') {
        return Err(ParseErrorKind::Multicast);
    }
    match (family, IpAddr::from_str(addr)) {
        (AddressFamily::Ip4, Ok(ip @ IpAddr::V4(_)))
        | (AddressFamily::Ip6, Ok(ip @ IpAddr::V6(_))) => Ok(Address::Ip(ip)),
        (_, Ok(_)) => Err(ParseErrorKind::BadAddress),
        (_, Err(_)) => {
            // A host name's last label is never all digits, which also
            // keeps a mistyped dotted quad (203.0.113.300) an error.
            let last_label = addr.rsplit('.').next().unwrap_or_default();
            let host_ok = addr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && last_label.bytes().any(|b| b.is_ascii_alphabetic());
            if host_ok {
                Ok(Address::Fqdn {
                    family,
                    name: addr.to_owned(),
                })
            } else {
                Err(ParseErrorKind::BadAddress)
            }
        }
    }
}

fn fields<const N: usize>(value: &str) -> Option<[&str; N]> {
    let mut parts = value.split(' ');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().filter(|p| !p.is_empty())?;
    }
    parts.next().is_none().then_some(out)
}

fn origin(value: &str) -> Result<Origin, ParseErrorKind> {
    let [username, id, version, nettype, addrtype, addr] =
        fields::<6>(value).ok_or(ParseErrorKind::BadOrigin)?;
    Ok(Origin {
        username: username.to_owned(),
        session_id: digits(id).ok_or(ParseErrorKind::BadOrigin)?,
        session_version: digits(version).ok_or(ParseErrorKind::BadOrigin)?,
        address: address(nettype, addrtype, addr)?,
    })
}

fn connection(value: &str) -> Result<Connection, ParseErrorKind> {
    let [nettype, addrtype, addr] = fields::<3>(value).ok_or(ParseErrorKind::BadAddress)?;
    Ok(Connection {
        address: address(nettype, addrtype, addr)?,
    })
}

fn bandwidth(value: &str) -> Result<Bandwidth, ParseErrorKind> {
    let (kind, bw) = value.split_once(':').ok_or(ParseErrorKind::BadBandwidth)?;
    if !is_token(kind) {
        return Err(ParseErrorKind::BadBandwidth);
    }
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value: digits(bw).ok_or(ParseErrorKind::BadBandwidth)?,
    })
}

fn timing(value: &str) -> Result<Timing, ParseErrorKind> {
    let [start, stop] = fields::<2>(value).ok_or(ParseErrorKind::BadTiming)?;
    Ok(Timing {
        start: digits(start).ok_or(ParseErrorKind::BadTiming)?,
        stop: digits(stop).ok_or(ParseErrorKind::BadTiming)?,
        repeats: Vec::new(),
    })
}

/// Whether a transport protocol carries RTP, whose formats are payload types
/// (RFC 8866 §5.14).
fn is_rtp(proto: &str) -> bool {
    proto.split('/').any(|p| p == "RTP")
}

fn media(value: &str) -> Result<MediaDescription, ParseErrorKind> {
    let mut parts = value.split(' ');
    let bad = || ParseErrorKind::BadMedia;
    let media = parts.next().filter(|m| is_token(m)).ok_or_else(bad)?;
    let port_field = parts.next().ok_or_else(bad)?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (digits(p).ok_or_else(bad)?, Some(digits(n).ok_or_else(bad)?)),
        None => (digits(port_field).ok_or_else(bad)?, None),
    };
    let proto = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    if !proto.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    if formats.is_empty() || formats.iter().any(|f| !is_token(f)) {
        return Err(bad());
    }
    if is_rtp(proto) && formats.iter().any(|f| payload_type(f).is_none()) {
        return Err(ParseErrorKind::BadPayloadType);
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        encryption_key: None,
        attributes: Vec::new(),
    })
}

fn attribute(value: &str) -> Result<Attribute, ParseErrorKind> {
    let (name, val) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (value, None),
    };
    if !is_token(name) {
        return Err(ParseErrorKind::BadAttributeName);
    }
    let flag = |a: Attribute, label| match val {
        None => Ok(a),
        Some(_) => Err(ParseErrorKind::BadAttribute(label)),
    };
    let need = |label| val.ok_or(ParseErrorKind::BadAttribute(label));
    Ok(match name {
        "sendrecv" => flag(Attribute::Direction(Direction::SendRecv), "sendrecv")?,
        "sendonly" => flag(Attribute::Direction(Direction::SendOnly), "sendonly")?,
        "recvonly" => flag(Attribute::Direction(Direction::RecvOnly), "recvonly")?,
        "inactive" => flag(Attribute::Direction(Direction::Inactive), "inactive")?,
        "rtcp-mux" => flag(Attribute::RtcpMux, "rtcp-mux")?,
        "ptime" => {
            Attribute::Ptime(digits(need("ptime")?).ok_or(ParseErrorKind::BadAttribute("ptime"))?)
        }
        "maxptime" => Attribute::MaxPtime(
            digits(need("maxptime")?).ok_or(ParseErrorKind::BadAttribute("maxptime"))?,
        ),
        "rtpmap" => Attribute::Rtpmap(
            rtpmap(need("rtpmap")?).ok_or(ParseErrorKind::BadAttribute("rtpmap"))?,
        ),
        "fmtp" => {
            let bad = ParseErrorKind::BadAttribute("fmtp");
            let (pt, params) = need("fmtp")?.split_once(' ').ok_or(bad.clone())?;
            if params.is_empty() {
                return Err(bad);
            }
            Attribute::Fmtp {
                payload_type: payload_type(pt).ok_or(bad)?,
                params: params.to_owned(),
            }
        }
        "rtcp" => Attribute::Rtcp(rtcp(need("rtcp")?)?),
        _ => Attribute::Other {
            name: name.to_owned(),
            value: val.map(str::to_owned),
        },
    })
}

/// `<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
fn rtpmap(value: &str) -> Option<RtpMap> {
    let [pt, map] = fields::<2>(value)?;
    let mut parts = map.split('/');
    let encoding = parts.next().filter(|e| is_token(e))?;
    let clock_rate = digits(parts.next()?)?;
    let channels = match parts.next() {
        Some(c) => Some(digits(c)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type: payload_type(pt)?,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

/// RFC 3605: `<port> [<nettype> <addrtype> <address>]`
fn rtcp(value: &str) -> Result<RtcpAttr, ParseErrorKind> {
    let bad = ParseErrorKind::BadAttribute("rtcp");
    let (port, address) = match value.split_once(' ') {
        Some((port, rest)) => {
            let [n, t, a] = fields::<3>(rest).ok_or(bad.clone())?;
            (port, Some(address(n, t, a)?))
        }
        None => (value, None),
    };
    Ok(RtcpAttr {
        port: digits(port).ok_or(bad)?,
        address,
    })
}

/// Position in the RFC 8866 §5 line order, so a line may only move forward.
fn session_rank(kind: char) -> Option<u8> {
    Some(match kind {
        'i' => 3,
        'u' => 4,
        'e' => 5,
        'p' => 6,
        'c' => 7,
        'b' => 8,
        't' => 9,
        'r' => 10,
        'z' => 11,
        'k' => 12,
        'a' => 13,
        _ => return None,
    })
}

fn media_rank(kind: char) -> Option<u8> {
    Some(match kind {
        'i' => 1,
        'c' => 2,
        'b' => 3,
        'k' => 4,
        'a' => 5,
        _ => return None,
    })
}

/// Lines that may appear more than once in a row.
fn repeatable(kind: char, in_media: bool) -> bool {
    match kind {
        'e' | 'p' | 'b' | 't' | 'r' | 'a' => true,
        'c' => in_media,
        _ => false,
    }
}

pub(super) fn parse(text: &str) -> Result<SessionDescription, ParseError> {
    // Lenient on line ends: split on LF and drop one CR before it. Blank
    // lines at the very end (a trailing CRLF CRLF) are tolerated.
    let mut lines: Vec<(usize, &str)> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect();
    while lines.last().is_some_and(|(_, l)| l.is_empty()) {
        lines.pop();
    }
    let mut parsed = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        let mut chars = line.chars();
        let (kind, rest) = match (chars.next(), line.get(1..2)) {
            (None, _) => return Err(err(n, ParseErrorKind::EmptyLine)),
            (Some(k), Some("=")) if k.is_ascii_lowercase() => (k, &line[2..]),
            _ => return Err(err(n, ParseErrorKind::NotTypeValue)),
        };
        parsed.push((n, kind, rest));
    }
    let mut iter = parsed.into_iter().peekable();

    let mut expect = |want: char, after: usize| -> Result<(usize, &str), ParseError> {
        match iter.next() {
            Some((n, k, v)) if k == want => Ok((n, v)),
            Some((n, _, _)) => Err(err(n, ParseErrorKind::Missing(want))),
            None => Err(err(after + 1, ParseErrorKind::Missing(want))),
        }
    };
    let (n, v) = expect('v', 0)?;
    if v != "0" {
        return Err(err(n, ParseErrorKind::BadVersion));
    }
    let (n, o) = expect('o', n)?;
    let origin = origin(o).map_err(|k| err(n, k))?;
    let (n, s) = expect('s', n)?;
    if s.is_empty() {
        return Err(err(n, ParseErrorKind::Missing('s')));
    }
    let mut sdp = SessionDescription {
        origin,
        session_name: s.to_owned(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        timings: Vec::new(),
        time_zones: None,
        encryption_key: None,
        attributes: Vec::new(),
        media: Vec::new(),
    };
    let mut last_line = n;
    let mut rank = 2u8;
    let mut prev: Option<char> = None;
    // Session part.
    while let Some(&(n, kind, value)) = iter.peek() {
        if kind == 'm' {
            break;
        }
        iter.next();
        last_line = n;
        let at = |k| err(n, k);
        let r = session_rank(kind).ok_or_else(|| {
            at(match kind {
                'v' | 'o' | 's' => ParseErrorKind::OutOfOrder(kind),
                _ => ParseErrorKind::UnknownType(kind),
            })
        })?;
        // `t` may follow `r` (RFC 8866 §9: 1*(time-field *repeat-field)).
        let back_to_t = kind == 't' && prev == Some('r');
        let ok = r > rank || (r == rank && prev == Some(kind) && repeatable(kind, false));
        if !(ok || back_to_t) || (kind == 'r' && sdp.timings.is_empty()) {
            return Err(at(ParseErrorKind::OutOfOrder(kind)));
        }
        rank = r;
        prev = Some(kind);
        match kind {
            'i' => sdp.information = Some(value.to_owned()),
            'u' => sdp.uri = Some(value.to_owned()),
            'e' => sdp.emails.push(value.to_owned()),
            'p' => sdp.phones.push(value.to_owned()),
            'c' => sdp.connection = Some(connection(value).map_err(at)?),
            'b' => sdp.bandwidths.push(bandwidth(value).map_err(at)?),
            't' => sdp.timings.push(timing(value).map_err(at)?),
            'r' => {
                if let Some(t) = sdp.timings.last_mut() {
                    t.repeats.push(value.to_owned());
                }
            }
            'z' => sdp.time_zones = Some(value.to_owned()),
            'k' => sdp.encryption_key = Some(value.to_owned()),
            _ => sdp.attributes.push(attribute(value).map_err(at)?),
        }
    }
    if sdp.timings.is_empty() {
        let n = iter.peek().map_or(last_line + 1, |&(n, _, _)| n);
        return Err(err(n, ParseErrorKind::Missing('t')));
    }
    // Media sections.
    while let Some((m_line, _, value)) = iter.next() {
        let mut m = media(value).map_err(|k| err(m_line, k))?;
        let mut rank = 0u8;
        let mut prev = 'm';
        while let Some(&(n, kind, value)) = iter.peek() {
            if kind == 'm' {
                break;
            }
            iter.next();
            let at = |k| err(n, k);
            let r = media_rank(kind).ok_or_else(|| {
                at(match kind {
                    'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
                        ParseErrorKind::OutOfOrder(kind)
                    }
                    _ => ParseErrorKind::UnknownType(kind),
                })
            })?;
            let ok = r > rank || (r == rank && prev == kind && repeatable(kind, true));
            if !ok {
                return Err(at(ParseErrorKind::OutOfOrder(kind)));
            }
            rank = r;
            prev = kind;
            match kind {
                'i' => m.title = Some(value.to_owned()),
                'c' => m.connections.push(connection(value).map_err(at)?),
                'b' => m.bandwidths.push(bandwidth(value).map_err(at)?),
                'k' => m.encryption_key = Some(value.to_owned()),
                _ => m.attributes.push(attribute(value).map_err(at)?),
            }
        }
        // RFC 8866 §5.7: every active stream needs an address, its own or
        // the session's.
        if m.port != 0 && m.connections.is_empty() && sdp.connection.is_none() {
            return Err(err(m_line, ParseErrorKind::NoConnection));
        }
        sdp.media.push(m);
    }
    Ok(sdp)
}
