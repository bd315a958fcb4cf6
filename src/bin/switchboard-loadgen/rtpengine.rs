//! `media --rtpengine ADDR`: the same call pairs and RTP measurement as the
//! SIP mode, but each pair is set up on an rtpengine through its ng control
//! protocol instead of through the gateway, so both relays are measured by
//! one load generator.
//!
//! The ng protocol: every message is a cookie, one space and a bencoded
//! dictionary, over UDP; the reply repeats the cookie (rtpengine answers a
//! retransmitted cookie from its cache, so a resend is harmless). Per pair:
//! `offer` with leg A's SDP returns the SDP for leg B (rtpengine's port B
//! sends to), `answer` with leg B's SDP returns the SDP for leg A, and
//! `delete` ends the call.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::media::{
    parse_answer, sdp_offer, AnswerError, AnswerMedia, CodecChoice, LegId, Phase, Signalling,
};

// ---------------------------------------------------------------- bencode

/// A bencoded value. Dictionaries keep their order: rtpengine does not sort
/// its keys, so a decoder insisting on sorted keys would refuse its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// The entry `key` of a dictionary (the first, should it repeat).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BencodeError {
    #[error("input ends inside a value")]
    UnexpectedEnd,
    #[error("unexpected byte {byte:#04x} at offset {at}")]
    UnexpectedByte { at: usize, byte: u8 },
    #[error("bad integer or length at offset {at}")]
    BadNumber { at: usize },
    #[error("a string at offset {at} claims more bytes than remain")]
    TooLong { at: usize },
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0} bytes after the value")]
    Trailing(usize),
}

/// Replies nest two or three levels; the cap keeps hostile input from
/// exhausting the stack.
const MAX_DEPTH: usize = 32;

/// Decodes exactly one value spanning all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, BencodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    match input.len() - d.pos {
        0 => Ok(v),
        n => Err(BencodeError::Trailing(n)),
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd)
    }

    /// Digits (with a leading '-' if `signed`) up to `end`, consumed.
    fn number(&mut self, end: u8, signed: bool) -> Result<i64, BencodeError> {
        let start = self.pos;
        let stop = self.input[start..]
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::UnexpectedEnd)?;
        let digits = &self.input[start..start + stop];
        let valid = match digits {
            [] | [b'-'] => false,
            [b'-', rest @ ..] => signed && rest.iter().all(u8::is_ascii_digit),
            _ => digits.iter().all(u8::is_ascii_digit),
        };
        let n = std::str::from_utf8(digits)
            .ok()
            .filter(|_| valid)
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(BencodeError::BadNumber { at: start })?;
        self.pos = start + stop + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, BencodeError> {
        let at = self.pos;
        let len = usize::try_from(self.number(b':', false)?)
            .map_err(|_| BencodeError::BadNumber { at })?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.input.len())
            .ok_or(BencodeError::TooLong { at })?;
        let b = self.input[self.pos..end].to_vec();
        self.pos = end;
        Ok(b)
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                Ok(Value::Int(self.number(b'e', true)?))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek()? {
                        b'e' => break,
                        b'0'..=b'9' => {
                            let k = self.bytes()?;
                            entries.push((k, self.value(depth + 1)?));
                        }
                        byte => return Err(BencodeError::UnexpectedByte { at: self.pos, byte }),
                    }
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            byte => Err(BencodeError::UnexpectedByte { at: self.pos, byte }),
        }
    }
}

// ---------------------------------------------------------------- ng client

#[derive(Debug, thiserror::Error)]
pub enum NgError {
    #[error("ng socket: {0}")]
    Io(#[source] std::io::Error),
    #[error("no reply from rtpengine")]
    Timeout,
    #[error("the reply has no cookie")]
    NoCookie,
    #[error("undecodable reply: {0}")]
    Bencode(#[from] BencodeError),
    #[error("the reply is not a dictionary with a \"result\"")]
    NoResult,
    #[error("rtpengine refused: {0}")]
    Refused(String),
    #[error("the reply has no \"sdp\"")]
    NoSdp,
    #[error("rtpengine's SDP is unusable: {0}")]
    Sdp(#[from] AnswerError),
}

impl NgError {
    /// The failure tally key.
    fn cause(&self) -> &'static str {
        match self {
            NgError::Io(_) => "io",
            NgError::Timeout => "timeout",
            NgError::NoCookie | NgError::Bencode(_) | NgError::NoResult => "malformed",
            NgError::Refused(_) => "refused",
            NgError::NoSdp | NgError::Sdp(_) => "sdp",
        }
    }
}

/// The request datagram: cookie, space, bencoded dictionary.
pub fn request_bytes(cookie: &str, fields: Vec<(&str, Value)>) -> Vec<u8> {
    let mut out = format!("{cookie} ").into_bytes();
    Value::Dict(
        fields
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
    .encode(&mut out);
    out
}

/// The reply to `cookie` in `datagram`: `Ok(None)` if it answers another
/// cookie (a late reply to an earlier resend), an error if rtpengine said
/// "error" or the datagram is malformed.
pub fn parse_reply(cookie: &str, datagram: &[u8]) -> Result<Option<Value>, NgError> {
    let space = datagram
        .iter()
        .position(|&b| b == b' ')
        .ok_or(NgError::NoCookie)?;
    if &datagram[..space] != cookie.as_bytes() {
        return Ok(None);
    }
    let reply = decode(&datagram[space + 1..])?;
    let result = reply
        .get("result")
        .and_then(Value::as_bytes)
        .ok_or(NgError::NoResult)?;
    if result == b"error" {
        let reason = reply
            .get("error-reason")
            .and_then(Value::as_bytes)
            .map_or_else(String::new, |r| String::from_utf8_lossy(r).into_owned());
        return Err(NgError::Refused(reason));
    }
    Ok(Some(reply))
}

/// The media address in the SDP of an offer or answer reply.
pub fn reply_media(reply: &Value) -> Result<AnswerMedia, NgError> {
    let sdp = reply
        .get("sdp")
        .and_then(Value::as_bytes)
        .ok_or(NgError::NoSdp)?;
    Ok(parse_answer(sdp)?)
}

/// Resends after this long without a reply; gives up after `ATTEMPTS`.
const RESEND: Duration = Duration::from_millis(500);
const ATTEMPTS: u32 = 4;

pub struct NgClient {
    socket: UdpSocket,
    server: SocketAddr,
    prefix: u32,
    next: u64,
}

impl NgClient {
    pub fn new(local_ip: IpAddr, server: SocketAddr) -> Result<NgClient, NgError> {
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).map_err(NgError::Io)?;
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(NgError::Io)?;
        Ok(NgClient {
            socket,
            server,
            prefix: rand::random(),
            next: 0,
        })
    }

    /// One command and its reply, blocking (the setup is paced by the
    /// caller; a loopback round trip is far shorter than the pacing).
    pub fn request(&mut self, fields: Vec<(&str, Value)>) -> Result<Value, NgError> {
        self.next += 1;
        let cookie = format!("{:x}_{}", self.prefix, self.next);
        let datagram = request_bytes(&cookie, fields);
        let mut buf = vec![0u8; 65_536];
        for _ in 0..ATTEMPTS {
            self.socket
                .send_to(&datagram, self.server)
                .map_err(NgError::Io)?;
            let sent = Instant::now();
            while sent.elapsed() < RESEND {
                let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                    continue;
                };
                if from != self.server {
                    continue;
                }
                if let Some(reply) = parse_reply(&cookie, &buf[..len])? {
                    return Ok(reply);
                }
            }
        }
        Err(NgError::Timeout)
    }
}

// ---------------------------------------------------------------- sessions

#[derive(Default)]
struct NgStats {
    /// Legs that could not be set up, by cause.
    failures: BTreeMap<&'static str, u32>,
    deleted: u32,
    delete_failures: BTreeMap<&'static str, u32>,
}

/// The calls on one rtpengine, as the media run's [`Signalling`].
pub struct NgCalls {
    client: NgClient,
    run: u32,
    codecs: [CodecChoice; 2],
    rtp_ports: Vec<u16>,
    local_ip: IpAddr,
    phases: Vec<Phase>,
    media: Vec<Option<AnswerMedia>>,
    ready: Vec<LegId>,
    stats: NgStats,
}

impl NgCalls {
    /// Checks rtpengine answers ("ping") before any call is set up.
    pub fn new(
        server: SocketAddr,
        local_ip: IpAddr,
        codecs: [CodecChoice; 2],
        rtp_ports: Vec<u16>,
        legs: usize,
    ) -> Result<NgCalls, NgError> {
        let mut client = NgClient::new(local_ip, server)?;
        client.request(vec![("command", Value::text("ping"))])?;
        Ok(NgCalls {
            client,
            run: rand::random(),
            codecs,
            rtp_ports,
            local_ip,
            phases: vec![Phase::Idle; legs],
            media: vec![None; legs],
            ready: Vec::new(),
            stats: NgStats::default(),
        })
    }

    /// The ids naming a pair's call on rtpengine.
    fn ids(&self, pair: u32) -> [(&'static str, Value); 3] {
        [
            (
                "call-id",
                Value::text(&format!("lgr-{pair}-{:x}", self.run)),
            ),
            ("from-tag", Value::text(&format!("a{pair}"))),
            ("to-tag", Value::text(&format!("b{pair}"))),
        ]
    }

    fn sdp(&self, leg: LegId) -> Value {
        let port = self.rtp_ports[leg.index() % self.rtp_ports.len()];
        let sdp = sdp_offer(
            self.local_ip,
            port,
            self.codecs[leg.side() as usize],
            u64::from(leg.0),
        );
        Value::Bytes(sdp.into_bytes())
    }

    /// offer (leg A) or answer (leg B): the reply's SDP is where the OTHER
    /// leg sends.
    fn negotiate(&mut self, leg: LegId) -> Result<AnswerMedia, NgError> {
        let command = if leg.side() == 0 { "offer" } else { "answer" };
        let [call_id, from_tag, to_tag] = self.ids(leg.pair());
        let mut fields = vec![("command", Value::text(command)), call_id, from_tag];
        if leg.side() == 1 {
            fields.push(to_tag);
        }
        fields.push(("sdp", self.sdp(leg)));
        // Our SDP's addresses are rewritten to rtpengine's, as a SIP proxy
        // would have it do.
        fields.push((
            "replace",
            Value::List(vec![
                Value::text("origin"),
                Value::text("session-connection"),
            ]),
        ));
        let reply = self.client.request(fields)?;
        reply_media(&reply)
    }

    fn fail(&mut self, leg: LegId, cause: &'static str) {
        self.phases[leg.index()] = Phase::Failed;
        *self.stats.failures.entry(cause).or_insert(0) += 1;
    }
}

impl Signalling for NgCalls {
    fn start(&mut self, leg: LegId, _now: Instant) {
        let peer = leg.peer();
        if leg.side() == 1 && self.phases[peer.index()] != Phase::Inviting {
            // The offer failed: there is no call to answer.
            self.fail(leg, "no-offer");
            return;
        }
        match self.negotiate(leg) {
            Ok(media) => {
                self.media[peer.index()] = Some(media);
                if leg.side() == 0 {
                    self.phases[leg.index()] = Phase::Inviting;
                } else {
                    self.phases[leg.index()] = Phase::Answered;
                    self.phases[peer.index()] = Phase::Answered;
                    self.ready.extend([peer, leg]);
                }
            }
            Err(e) => {
                self.fail(leg, e.cause());
                if leg.side() == 1 {
                    self.fail(peer, "no-answer");
                }
            }
        }
    }

    fn poll(&mut self, _buf: &mut [u8], wait: Duration) {
        // Every exchange is synchronous: nothing arrives unasked.
        thread::sleep(wait);
    }

    fn sweep(&mut self, _now: Instant) {}

    fn take_ready(&mut self) -> Vec<LegId> {
        std::mem::take(&mut self.ready)
    }

    fn media(&self, leg: LegId) -> Option<AnswerMedia> {
        self.media[leg.index()]
    }

    fn phase(&self, leg: LegId) -> Phase {
        self.phases[leg.index()]
    }

    fn count(&self, phase: Phase) -> usize {
        self.phases.iter().filter(|&&p| p == phase).count()
    }

    fn begin_teardown(&mut self) {}

    /// One `delete` per call, sent for whichever leg comes first.
    fn stop(&mut self, leg: LegId, _now: Instant) {
        if self.phases[leg.index()] != Phase::Answered {
            return;
        }
        let [call_id, from_tag, _] = self.ids(leg.pair());
        match self
            .client
            .request(vec![("command", Value::text("delete")), call_id, from_tag])
        {
            Ok(_) => self.stats.deleted += 1,
            Err(e) => *self.stats.delete_failures.entry(e.cause()).or_insert(0) += 1,
        }
        self.phases[leg.index()] = Phase::Closed;
        self.phases[leg.peer().index()] = Phase::Closed;
    }

    fn setup_failed(&self) -> u32 {
        self.stats.failures.values().sum()
    }

    fn setup_report(&self) -> String {
        format!("{:?} (rtpengine ng)", self.stats.failures)
    }

    fn teardown_report(&self) -> String {
        format!(
            "rtpengine ng: {} calls deleted, delete failures {:?}",
            self.stats.deleted, self.stats.delete_failures
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_an_offer_as_rtpengine_expects() {
        let msg = request_bytes(
            "c1",
            vec![
                ("command", Value::text("offer")),
                ("call-id", Value::text("x")),
                ("replace", Value::List(vec![Value::text("origin")])),
                ("n", Value::Int(-3)),
            ],
        );
        assert_eq!(
            msg,
            b"c1 d7:command5:offer7:call-id1:x7:replacel6:origine1:ni-3ee".to_vec()
        );
    }

    #[test]
    fn decodes_what_it_encodes_keeping_key_order() {
        let v = Value::Dict(vec![
            (b"z".to_vec(), Value::Int(42)),
            (
                b"a".to_vec(),
                Value::List(vec![Value::text(""), Value::Int(0)]),
            ),
            (b"sdp".to_vec(), Value::Bytes(b"v=0\r\n\x00\xff".to_vec())),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(decode(&out).unwrap(), v);
    }

    #[test]
    fn malformed_bencode_is_an_error_by_cause() {
        use BencodeError::*;
        let cases: &[(&[u8], BencodeError)] = &[
            (b"", UnexpectedEnd),
            (b"d6:result2:ok", UnexpectedEnd),
            (b"i12", UnexpectedEnd),
            (b"5:abc", TooLong { at: 0 }),
            (b"99999999999999999999999:x", BadNumber { at: 0 }),
            (b"i-e", BadNumber { at: 1 }),
            (b"i1x2e", BadNumber { at: 1 }),
            (b"-1:x", UnexpectedByte { at: 0, byte: b'-' }),
            (b"di1ei2ee", UnexpectedByte { at: 1, byte: b'i' }),
            (b"x", UnexpectedByte { at: 0, byte: b'x' }),
            (b"i1ei2e", Trailing(3)),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input).as_ref(), Err(want), "{input:?}");
        }
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert_eq!(decode(&deep), Err(TooDeep));
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:40003\r\n";

    fn reply(cookie: &str, fields: Vec<(&str, Value)>) -> Vec<u8> {
        request_bytes(cookie, fields)
    }

    #[test]
    fn an_ok_reply_gives_the_media_address() {
        let d = reply(
            "k7",
            vec![("sdp", Value::text(SDP)), ("result", Value::text("ok"))],
        );
        let r = parse_reply("k7", &d).unwrap().unwrap();
        let m = reply_media(&r).unwrap();
        assert_eq!(m.addr, "127.0.0.1:40002".parse().unwrap());
        assert_eq!(m.payload_type, 0);
    }

    #[test]
    fn replies_that_do_not_serve_are_told_apart() {
        // Another cookie: a late answer to an earlier request.
        let d = reply("k6", vec![("result", Value::text("ok"))]);
        assert!(parse_reply("k7", &d).unwrap().is_none());
        let d = reply(
            "k7",
            vec![
                ("result", Value::text("error")),
                ("error-reason", Value::text("Unknown call-id")),
            ],
        );
        assert!(
            matches!(parse_reply("k7", &d), Err(NgError::Refused(r)) if r == "Unknown call-id")
        );
        assert!(matches!(
            parse_reply("k7", b"k7 d3:fooi1ee"),
            Err(NgError::NoResult)
        ));
        assert!(matches!(
            parse_reply("k7", b"k7 le"),
            Err(NgError::NoResult)
        ));
        assert!(matches!(
            parse_reply("k7", b"k7 d6:result"),
            Err(NgError::Bencode(_))
        ));
        assert!(matches!(parse_reply("k7", b"k7"), Err(NgError::NoCookie)));
        let ok = parse_reply("k7", &reply("k7", vec![("result", Value::text("ok"))]))
            .unwrap()
            .unwrap();
        assert!(matches!(reply_media(&ok), Err(NgError::NoSdp)));
        let bad = parse_reply(
            "k7",
            &reply(
                "k7",
                vec![
                    ("result", Value::text("ok")),
                    ("sdp", Value::text("v=0\r\n")),
                ],
            ),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(reply_media(&bad), Err(NgError::Sdp(_))));
    }
}
