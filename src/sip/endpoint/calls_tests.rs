//! The test extensions at the endpoint, sans-IO: SDP offer/answer, late
//! offer, rooms, hang-ups, and what the media workers are told.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::tests::{config, flow};
use super::*;
use crate::media::control::LegReport;
use crate::media::relay::LegId;
use crate::media::rtp::StatsSummary;
use crate::media::session::Feed;
use crate::sip::auth::{respond, Challenge};
use crate::sip::message::{parse, HeaderName, Message, Request, Response};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn media_config() -> EndpointConfig {
    let toml = "[[test_extensions]]\nextension = \"*43\"\naction = \"echo\"\n\
[[test_extensions]]\nextension = \"*45\"\naction = \"pair\"\nrecord = true\n\
[media]\ncodecs = [\"PCMU\", \"PCMA\"]\n";
    let full = crate::config::Config::from_toml_str(toml, std::path::Path::new("test")).unwrap();
    let mut c = config();
    c.media = EndpointConfig::from_config(&full).media;
    c
}

struct Phone {
    ep: Endpoint,
    now: Instant,
    wall: SystemTime,
    media: Vec<MediaCommand>,
    requests: Vec<Request>,
}

impl Phone {
    fn new() -> Phone {
        let now = Instant::now();
        Phone {
            ep: Endpoint::new(media_config(), now).unwrap(),
            now,
            wall: SystemTime::now(),
            media: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<Response> {
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { data, .. } => match parse(&data) {
                    Ok(Message::Response(r)) if r.status >= 200 => out.push(r),
                    Ok(Message::Request(r)) => self.requests.push(r),
                    _ => {}
                },
                Output::Media(c) => self.media.push(c),
                Output::CallRecord(_) | Output::ControlReply { .. } | Output::Event(_) => {}
                Output::Registrar(_) => {}
            }
        }
        out
    }

    fn send(&mut self, port: u16, text: &str) -> Vec<Response> {
        self.ep.handle_input(
            self.now,
            self.wall,
            Input::Message {
                flow: flow(port),
                data: Bytes::from(text.to_owned()),
            },
        );
        self.drain()
    }

    fn invite_text(port: u16, to: &str, cseq: u32, extra: &str, body: &str) -> String {
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_owned()
        };
        format!(
            "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinv{port}-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=f{port}\r\nTo: <sip:{to}@127.0.0.1>\r\n\
Call-ID: call-{port}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:1001@127.0.0.1:{port}>\r\n{extra}{ctype}\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// INVITE, 407, INVITE with credentials: the final answer.
    fn call(&mut self, port: u16, to: &str, body: &str) -> Response {
        let r = self.send(port, &Self::invite_text(port, to, 1, "", body));
        assert_eq!(r[0].status, 407);
        let challenge = r[0]
            .headers
            .get(&HeaderName::ProxyAuthenticate)
            .unwrap()
            .to_owned();
        let creds = respond(
            &Challenge::parse(&challenge).unwrap(),
            "INVITE",
            &format!("sip:{to}@127.0.0.1"),
            "1001",
            "pass1001",
            "cn0nce",
            1,
        )
        .unwrap();
        let extra = format!("Proxy-Authorization: {}\r\n", creds.to_header_value());
        let mut r = self.send(port, &Self::invite_text(port, to, 2, &extra, body));
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    fn in_dialog(
        &mut self,
        port: u16,
        method: &str,
        ok: &Response,
        cseq: u32,
        body: &str,
    ) -> Vec<Response> {
        let to = ok.headers.to.to_string();
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let text = format!(
            "{method} sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{port}-{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=f{port}\r\nTo: {to}\r\n\
Call-ID: call-{port}\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send(port, &text)
    }

    fn closed(&mut self, command: &MediaCommand) {
        if let MediaCommand::CloseLeg { session, leg } = command {
            let ports = self
                .media
                .iter()
                .find_map(|c| match c {
                    MediaCommand::OpenLeg {
                        session: s,
                        leg: l,
                        ports,
                        ..
                    } if s == session && l == leg => Some(*ports),
                    _ => None,
                })
                .unwrap();
            self.ep.handle_input(
                self.now,
                self.wall,
                Input::Media(MediaEvent::LegClosed {
                    session: *session,
                    leg: *leg,
                    ports,
                    report: LegReport {
                        stats: StatsSummary {
                            packets: 10,
                            lost: 0,
                            jitter_ms: 0.0,
                            mos: 4.4,
                            round_trip_ms: None,
                        },
                        packets_received: 10,
                        packets_sent: 10,
                    },
                }),
            );
            self.drain();
        }
    }
}

#[test]
fn echo_call_answers_with_sdp_and_closes_its_media_on_bye() {
    let mut p = Phone::new();
    let ok = p.call(41000, "*43", OFFER);
    assert_eq!(ok.status, 200);
    assert!(
        ok.headers.contact.first().is_some(),
        "a 2xx to INVITE has a Contact"
    );
    let answer = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(answer.contains("m=audio 20000 RTP/AVP 0 101"), "{answer}");
    match &p.media[..] {
        [MediaCommand::OpenLeg {
            leg: LegId::Caller,
            feed: Feed::Echo,
            setup,
            ports,
            ..
        }] => {
            assert_eq!(setup.payload_type, 0);
            assert_eq!(setup.dtmf_payload_type, Some(101));
            assert_eq!(setup.remote, Some("127.0.0.1:40000".parse().unwrap()));
            assert_eq!(ports.rtp(), 20000);
        }
        other => panic!("{other:?}"),
    }
    let bye = p.in_dialog(41000, "BYE", &ok, 3, "");
    assert_eq!(bye[0].status, 200);
    let close = p.media.last().cloned().unwrap();
    assert!(matches!(
        close,
        MediaCommand::CloseLeg {
            leg: LegId::Caller,
            ..
        }
    ));
    p.closed(&close);
    // The ports came back: a new call gets a pair (round robin: the next).
    let ok = p.call(41002, "*43", OFFER);
    assert_eq!(ok.status, 200);
}

#[test]
fn no_common_codec_is_488_with_a_warning() {
    let mut p = Phone::new();
    let g722 = OFFER
        .replace("RTP/AVP 8 0 101", "RTP/AVP 9")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    let r = p.call(41000, "*43", &g722);
    assert_eq!(r.status, 488);
    assert!(r
        .headers
        .get(&HeaderName::Warning)
        .unwrap()
        .starts_with("305 "));
    assert!(p.media.is_empty());
}

#[test]
fn an_invite_without_offer_gets_ours_and_media_starts_with_the_ack() {
    let mut p = Phone::new();
    let ok = p.call(41000, "*43", "");
    assert_eq!(ok.status, 200);
    let offer = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(offer.contains("m=audio 20000 RTP/AVP 0 8"), "{offer}");
    assert!(p.media.is_empty(), "no media before the answer");
    let answer = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 8 101");
    p.in_dialog(41000, "ACK", &ok, 2, &answer);
    match &p.media[..] {
        [MediaCommand::OpenLeg { setup, .. }] => assert_eq!(setup.payload_type, 8),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_room_bridges_its_two_callers_and_one_hanging_up_ends_both() {
    let mut p = Phone::new();
    let first = p.call(41000, "*4517", OFFER);
    assert_eq!(first.status, 200);
    let second = p.call(41002, "*4517", OFFER);
    assert_eq!(second.status, 200);
    let opens: Vec<_> = p
        .media
        .iter()
        .filter_map(|c| match c {
            MediaCommand::OpenLeg {
                session, leg, feed, ..
            } => Some((*session, *leg, matches!(feed, Feed::Other))),
            _ => None,
        })
        .collect();
    assert_eq!(opens.len(), 2);
    assert_eq!(opens[0].0, opens[1].0, "one session");
    assert_eq!((opens[0].1, opens[0].2), (LegId::Caller, false));
    assert_eq!((opens[1].1, opens[1].2), (LegId::Agent, true));
    assert!(p.media.iter().any(|c| matches!(
        c,
        MediaCommand::SetFeed {
            leg: LegId::Caller,
            feed: Feed::Other,
            ..
        }
    )));
    assert!(p
        .media
        .iter()
        .any(|c| matches!(c, MediaCommand::StartRecording { .. })));
    // A third caller to another room waits alone.
    assert_eq!(p.call(41004, "*4518", OFFER).status, 200);
    let bye = p.in_dialog(41000, "BYE", &first, 3, "");
    assert_eq!(bye[0].status, 200);
    let closes = p
        .media
        .iter()
        .filter(|c| matches!(c, MediaCommand::CloseLeg { .. }))
        .count();
    assert_eq!(closes, 2, "both legs close");
    let byes: Vec<_> = p
        .requests
        .iter()
        .filter(|r| r.method == Method::Bye)
        .collect();
    assert_eq!(byes.len(), 1, "the partner is hung up");
    assert_eq!(byes[0].headers.call_id.to_string(), "call-41002");
}

#[test]
fn our_2xx_is_resent_until_the_ack_and_the_call_ends_without_one() {
    let mut p = Phone::new();
    let ok = p.call(41000, "*43", OFFER);
    assert_eq!(ok.status, 200);
    let start = p.now;
    let mut resent = 0;
    let mut steps = 0;
    while let Some(due) = p.ep.poll_timeout() {
        if due > start + std::time::Duration::from_secs(40) || steps > 1000 {
            break;
        }
        steps += 1;
        p.now = due;
        p.ep.handle_timeout(p.now, p.wall);
        resent += p
            .drain()
            .iter()
            .filter(|r| r.status == 200 && r.headers.cseq.method == Method::Invite)
            .count();
        if p.requests.iter().any(|r| r.method == Method::Bye) {
            break;
        }
    }
    // T1 = 0.5 s doubling to T2 = 4 s within 64·T1 = 32 s: 0.5, 1, 2, 4, 4…
    assert!((9..=11).contains(&resent), "{resent} retransmissions");
    assert!(
        p.requests.iter().any(|r| r.method == Method::Bye),
        "hung up after 64·T1"
    );
    assert!(p.now - start >= std::time::Duration::from_secs(32));

    // With the ACK, nothing more is sent.
    let mut p = Phone::new();
    let ok = p.call(41000, "*43", OFFER);
    p.in_dialog(41000, "ACK", &ok, 2, "");
    p.now += std::time::Duration::from_secs(1);
    p.ep.handle_timeout(p.now, p.wall);
    // (The 407 is still resent: this phone never ACKed it.)
    assert!(!p.drain().iter().any(|r| r.status == 200));
}

#[test]
fn a_hold_reinvite_is_answered_recvonly_and_updates_the_leg() {
    let mut p = Phone::new();
    let ok = p.call(41000, "*43", OFFER);
    p.in_dialog(41000, "ACK", &ok, 2, "");
    let hold = OFFER
        .replace("o=- 1 1 ", "o=- 1 2 ")
        .replace("a=sendrecv", "a=sendonly");
    let r = p.in_dialog(41000, "INVITE", &ok, 3, &hold);
    assert_eq!(r[0].status, 200);
    let answer = String::from_utf8(r[0].body.to_vec()).unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(answer.contains("m=audio 20000 "), "same port: {answer}");
    match p.media.last() {
        Some(MediaCommand::UpdateLeg { setup, .. }) => {
            assert_eq!(setup.direction, crate::media::sdp::Direction::RecvOnly);
        }
        other => panic!("{other:?}"),
    }
    // Resumed: sendrecv again, and our SDP version moves on (RFC 3264 §8).
    let resume = OFFER.replace("o=- 1 1 ", "o=- 1 3 ");
    let r = p.in_dialog(41000, "INVITE", &ok, 4, &resume);
    let answer2 = String::from_utf8(r[0].body.to_vec()).unwrap();
    assert!(answer2.contains("a=sendrecv"), "{answer2}");
    let version = |sdp: &str| {
        sdp.lines()
            .find(|l| l.starts_with("o="))
            .and_then(|l| l.split(' ').nth(2))
            .map(str::to_owned)
    };
    assert_ne!(version(&answer), version(&answer2));
    // That 200 is resent until its ACK like the first one.
    p.now += std::time::Duration::from_millis(600);
    p.ep.handle_timeout(p.now, p.wall);
    let again = p.drain();
    assert!(
        again
            .iter()
            .any(|r| r.status == 200 && r.headers.cseq.seq == 4),
        "{again:?}"
    );
}

/// Beyond the legs the open-file limit allows, a call is refused 503 up
/// front, not answered and then failed when its sockets cannot open.
#[test]
fn calls_beyond_the_capacity_are_refused_503() {
    let mut c = media_config();
    if let Some(m) = c.media.as_mut() {
        m.max_legs = Some(1);
    }
    let mut p = Phone::new();
    p.ep = Endpoint::new(c, p.now).unwrap();
    assert_eq!(p.call(41000, "*43", OFFER).status, 200);
    let refused = p.call(41001, "*43", OFFER);
    assert_eq!(refused.status, 503);
    assert!(refused.headers.get(&HeaderName::RetryAfter).is_some());
}
