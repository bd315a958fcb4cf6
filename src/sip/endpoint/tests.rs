#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::*;
use crate::sip::auth::{respond, Algorithm, Challenge};
use crate::sip::message::{parse, HeaderName, Message, Response};
use crate::sip::registrar::RegistrarConfig;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::Transport;

pub(super) fn config() -> EndpointConfig {
    EndpointConfig {
        domain: "127.0.0.1".into(),
        user_agent: "Switchboard/test".into(),
        timers: TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        },
        registrar: RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
            qualify_interval: Some(Duration::from_secs(30)),
            qualify_failures: 2,
        },
        realm: "127.0.0.1".into(),
        algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        nonce_ttl: Duration::from_secs(300),
        max_failures: 3,
        failure_window: Duration::from_secs(60),
        block: Duration::from_secs(300),
        agents: vec![
            ("1001".into(), "pass1001".into()),
            ("1002".into(), "pass1002".into()),
        ],
        dial_permissions: Default::default(),
        known_targets: vec![
            "1001".into(),
            "1002".into(),
            "500".into(),
            "+15550100".into(),
        ],
        trunks: crate::config::Config::from_toml_str(
            "[[trunks]]\nname = \"carrier\"\npeer = \"127.0.0.1:5080\"\n",
            std::path::Path::new("test"),
        )
        .unwrap()
        .trunks,
        listen: vec![(Transport::Udp, "127.0.0.1:5060".parse().unwrap())],
        media: None,
        queues: super::QueueSettings::default(),
    }
}

pub(super) fn flow(port: u16) -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: format!("127.0.0.1:{port}").parse().unwrap(),
        connection: None,
    }
}

struct Harness {
    ep: Endpoint,
    now: Instant,
    wall: SystemTime,
    branch: u32,
    cseq: u32,
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        Harness {
            ep: Endpoint::new(config(), now).unwrap(),
            now,
            wall: SystemTime::now(),
            branch: 0,
            cseq: 0,
        }
    }

    /// Sends `text` from `port`, returns the final responses sent back.
    fn send(&mut self, port: u16, text: &str) -> Vec<Response> {
        self.ep.handle_input(
            self.now,
            self.wall,
            Input::Message {
                flow: flow(port),
                data: Bytes::from(text.to_owned()),
            },
        );
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            if let Output::Transmit { data, .. } = o {
                if let Ok(Message::Response(r)) = parse(&data) {
                    if r.status >= 200 {
                        out.push(r);
                    }
                }
            }
        }
        out
    }

    fn register(&mut self, port: u16, user: &str, cseq: u32, extra: &str) -> Response {
        self.branch += 1;
        let text = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=f{port}\r\nTo: <sip:{user}@127.0.0.1>\r\n\
Call-ID: reg-{user}-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n{extra}\
Content-Length: 0\r\n\r\n",
            self.branch
        );
        let mut responses = self.send(port, &text);
        assert_eq!(responses.len(), 1, "one final response");
        responses.remove(0)
    }

    /// A full digest exchange: 401, then credentials.
    fn register_with(&mut self, port: u16, user: &str, password: &str, expires: u32) -> Response {
        // A phone keeps its Call-ID and counts CSeq up (RFC 3261 §10.2.4).
        self.cseq += 2;
        let cseq = self.cseq;
        let challenge = self.register(port, user, cseq - 1, "");
        assert_eq!(challenge.status, 401);
        let value = challenge
            .headers
            .get(&HeaderName::WwwAuthenticate)
            .unwrap()
            .to_owned();
        let challenge = Challenge::parse(&value).unwrap();
        let creds = respond(
            &challenge,
            "REGISTER",
            "sip:127.0.0.1",
            user,
            password,
            "cn0nce",
            1,
        )
        .unwrap();
        let extra = format!(
            "Authorization: {}\r\nExpires: {expires}\r\n",
            creds.to_header_value()
        );
        self.register(port, user, cseq, &extra)
    }
}

#[test]
fn register_with_digest_then_unregister() {
    let mut h = Harness::new();
    let ok = h.register_with(40000, "1001", "pass1001", 600);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers.contact.first().unwrap().params.get("expires"),
        Some(Some("600"))
    );
    assert!(ok.headers.get(&HeaderName::Date).is_some());
    assert_eq!(h.ep.registrar().contacts("1001").len(), 1);
    let gone = h.register_with(40000, "1001", "pass1001", 0);
    assert_eq!(gone.status, 200);
    assert!(gone.headers.contact.is_empty());
    assert!(h.ep.registrar().contacts("1001").is_empty());
}

#[test]
fn challenges_offer_configured_algorithms_in_order() {
    let mut h = Harness::new();
    let r = h.register(40000, "1001", 1, "");
    let offered: Vec<_> = r.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=MD5"));
    assert!(offered[1].contains("algorithm=SHA-256"));
    // Unknown users get the same challenge (no enumeration).
    let unknown = h.register(40001, "9999", 1, "");
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown
            .headers
            .get_all(&HeaderName::WwwAuthenticate)
            .count(),
        2
    );
}

#[test]
fn wrong_password_unknown_user_and_brute_force_block() {
    let mut h = Harness::new();
    assert_eq!(h.register_with(40000, "1001", "wrong", 600).status, 403);
    assert_eq!(h.register_with(40000, "9999", "pass1001", 600).status, 403);
    assert_eq!(h.register_with(40000, "1001", "wrong", 600).status, 403);
    // Third failure blocked the source: even the right password is refused
    // (and no challenge is given).
    assert_eq!(h.register(40000, "1001", 100, "").status, 403);
    // After the block ends, it works again.
    h.now += Duration::from_secs(301);
    assert_eq!(h.register_with(40000, "1001", "pass1001", 600).status, 200);
}

#[test]
fn registering_another_users_aor_is_forbidden() {
    let mut h = Harness::new();
    let challenge = h.register(40000, "1002", 1, "");
    let value = challenge
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_owned();
    let c = Challenge::parse(&value).unwrap();
    let creds = respond(&c, "REGISTER", "sip:127.0.0.1", "1001", "pass1001", "x", 1).unwrap();
    let r = h.register(
        40000,
        "1002",
        2,
        &format!("Authorization: {}\r\n", creds.to_header_value()),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn interval_too_brief_carries_min_expires() {
    let mut h = Harness::new();
    let r = h.register_with(40000, "1001", "pass1001", 10);
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get(&HeaderName::MinExpires), Some("60"));
}

fn request(method: &str, uri: &str, port: u16, extra: &str) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{port}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a\r\nTo: <{uri}>\r\nCall-ID: {method}-{port}\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn options_unknown_methods_and_dialogless_requests() {
    let mut h = Harness::new();
    let r = h.send(41000, &request("OPTIONS", "sip:127.0.0.1", 41000, ""));
    assert_eq!(r[0].status, 200);
    assert!(r[0]
        .headers
        .get(&HeaderName::Allow)
        .unwrap()
        .contains("REGISTER"));
    let r = h.send(41001, &request("FROB", "sip:127.0.0.1", 41001, ""));
    assert_eq!(r[0].status, 501);
    assert!(r[0].headers.get(&HeaderName::Allow).is_some());
    let r = h.send(41002, &request("SUBSCRIBE", "sip:127.0.0.1", 41002, ""));
    assert_eq!(r[0].status, 405);
    let r = h.send(41003, &request("BYE", "sip:127.0.0.1", 41003, ""));
    assert_eq!(r[0].status, 481);
    let r = h.send(
        41004,
        &request("OPTIONS", "sip:127.0.0.1", 41004, "Require: foo, bar\r\n"),
    );
    assert_eq!(r[0].status, 420);
    assert_eq!(r[0].headers.get(&HeaderName::Unsupported), Some("foo, bar"));
    let r = h.send(41005, &request("OPTIONS", "tel:+15550100", 41005, ""));
    assert_eq!(r[0].status, 416);
}

#[test]
fn invites_need_authentication_unless_from_the_trunk() {
    let mut h = Harness::new();
    let r = h.send(
        42000,
        &request("INVITE", "sip:+15559999@127.0.0.1", 42000, ""),
    );
    assert_eq!(
        r[0].status, 407,
        "no call from an unknown source without credentials"
    );
    let r = h.send(
        5080,
        &request("INVITE", "sip:+15550100@127.0.0.1", 5080, ""),
    );
    assert_eq!(
        r[0].status, 480,
        "the DID exists but calls are not handled yet"
    );
    let r = h.send(
        5080,
        &request("INVITE", "sip:12345@127.0.0.1", 5080, "")
            .replace("INVITE5080", "INVITE5080b")
            .replace("INVITE-5080", "INVITE-5080b"),
    );
    assert_eq!(r[0].status, 404);
}

#[test]
fn malformed_request_gets_400_with_warning_and_response_is_dropped() {
    let mut h = Harness::new();
    let bad =
        request("OPTIONS", "sip:127.0.0.1", 43000, "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let r = h.send(43000, &bad);
    assert_eq!(r[0].status, 400);
    assert!(r[0]
        .headers
        .get(&HeaderName::Warning)
        .unwrap()
        .contains("CSeq"));
    let r = h.send(43001, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n");
    assert!(r.is_empty());
}

#[test]
fn retransmitted_register_is_absorbed_not_reauthenticated() {
    let mut h = Harness::new();
    let challenge = h.register(40000, "1001", 1, "");
    let value = challenge
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_owned();
    let c = Challenge::parse(&value).unwrap();
    let creds = respond(&c, "REGISTER", "sip:127.0.0.1", "1001", "pass1001", "x", 1).unwrap();
    let extra = format!("Authorization: {}\r\n", creds.to_header_value());
    let first = h.register(40000, "1001", 2, &extra);
    assert_eq!(first.status, 200);
    // Same branch again: the transaction layer resends the 200 (a replayed
    // nonce count would otherwise be refused).
    h.branch -= 1;
    let again = h.register(40000, "1001", 2, &extra);
    assert_eq!(again.status, 200);
}

#[test]
fn qualify_marks_silent_contacts_unreachable() {
    let mut h = Harness::new();
    assert_eq!(h.register_with(40000, "1001", "pass1001", 3600).status, 200);
    while h.ep.poll_output().is_some() {}
    // Nobody answers the OPTIONS pings: after two rounds (each ending in
    // Timer F) the contact is unreachable.
    let end = h.now + Duration::from_secs(120);
    let mut options_sent = 0;
    while let Some(t) = h.ep.poll_timeout() {
        if t > end {
            break;
        }
        h.now = t;
        h.ep.handle_timeout(h.now, h.wall);
        while let Some(o) = h.ep.poll_output() {
            if let Output::Transmit { data, .. } = o {
                if data.starts_with(b"OPTIONS ") {
                    options_sent += 1;
                }
            }
        }
    }
    assert!(options_sent >= 2);
    assert!(!h.ep.registrar().contacts("1001")[0].reachable);
}

#[test]
fn requests_inside_a_known_dialog_are_checked_and_answered() {
    use crate::sip::dialog::Dialog;
    let mut h = Harness::new();
    // A dialog as the call layer will create it: their INVITE, our 200.
    let invite = match parse(
        request(
            "INVITE",
            "sip:500@127.0.0.1",
            44000,
            "Contact: <sip:1001@127.0.0.1:44000>\r\n",
        )
        .replace("CSeq: 1 INVITE", "CSeq: 10 INVITE")
        .as_bytes(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    let mut ok = invite.response(200, Some("ours"));
    ok.headers.contact =
        crate::sip::message::Contacts::List(vec![crate::sip::message::NameAddr::new(
            "sip:gw@127.0.0.1:5060".parse().unwrap(),
        )]);
    h.ep.dialogs
        .insert(Dialog::uas(&invite, &ok).unwrap())
        .unwrap();

    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        request(method, "sip:gw@127.0.0.1:5060", 44000, "")
            .replace(
                "To: <sip:gw@127.0.0.1:5060>",
                "To: <sip:500@127.0.0.1>;tag=ours",
            )
            .replace("Call-ID: ", "Call-ID: INVITE-44000\r\nX-Old-Call-ID: ")
            .replace(
                &format!("CSeq: 1 {method}"),
                &format!("CSeq: {cseq} {method}"),
            )
            .replace(
                &format!("branch=z9hG4bK{method}44000"),
                &format!("branch=z9hG4bK{branch}"),
            )
    };
    // Out of order (CSeq not above the INVITE's): 500 (RFC 3261 §12.2.2).
    assert_eq!(h.send(44000, &in_dialog("INFO", 10, "a"))[0].status, 500);
    assert_eq!(h.send(44000, &in_dialog("INFO", 11, "b"))[0].status, 200);
    assert_eq!(h.send(44000, &in_dialog("BYE", 12, "c"))[0].status, 200);
    // The BYE ended the dialog: the next request belongs to none.
    assert_eq!(h.send(44000, &in_dialog("INFO", 13, "d"))[0].status, 481);
}
