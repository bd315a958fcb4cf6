#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub(crate) const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 162\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 pc33.atlanta.example.com\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn request(text: &str) -> Request {
    match parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn typical_invite_parses_and_round_trips() {
    let r = request(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.headers.cseq.seq, 314159);
    assert_eq!(r.headers.from.tag(), Some("1928301774"));
    assert_eq!(r.headers.to.display.as_deref(), Some("Bob"));
    assert_eq!(
        r.headers.get(&HeaderName::ContentType),
        Some("application/sdp")
    );
    assert_eq!(r.body.len(), 162);
    assert!(r.body.ends_with(b"PCMU/8000\r\n"));
    fuzz::parse_roundtrip(INVITE.as_bytes());
    let again = request(std::str::from_utf8(&r.to_bytes()).unwrap());
    assert_eq!(again, r);
}

#[test]
fn folding_compact_forms_and_space_before_colon() {
    let text = "OPTIONS sip:[::1]:5060 SIP/2.0\r\n\
v  : SIP/2.0/TCP [::1]:5070\r\n  ;branch=z9hG4bK1\r\n\
f: <sip:a@[::1]>;tag=x\r\n\
t: sip:b@[::1]\r\n\
i: id1\r\n\
CSeq: 0009\r\n\tOPTIONS\r\n\
l: 0\r\n\r\n";
    let r = request(text);
    assert_eq!(r.headers.top_via().and_then(Via::branch), Some("z9hG4bK1"));
    assert_eq!(r.headers.cseq.seq, 9);
    assert_eq!(r.uri.to_string(), "sip:[::1]:5060");
}

#[test]
fn trailing_bytes_after_content_length_are_ignored() {
    let text = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
Content-Length: 0\r\n\r\nINVITE sip:x SIP/2.0\r\n\r\n";
    assert!(request(text).body.is_empty());
}

#[test]
fn errors_carry_what_a_400_needs() {
    let text = "OPTIONS sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 8 INVITE\r\n\r\n";
    let err = parse(text.as_bytes()).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::CSeqMismatch);
    let head = err.answerable.unwrap();
    let answer = String::from_utf8(head.response_bytes(400, "Bad Request", &[])).unwrap();
    assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\r\n"));
    assert!(answer.contains("CSeq: 8 INVITE\r\n"));

    let version = text.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
    assert_eq!(parse(version.as_bytes()).unwrap_err().status(), 505);

    // Responses cannot be answered.
    let resp = "SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP h\r\n\r\n";
    assert!(parse(resp.as_bytes()).unwrap_err().answerable.is_none());
}

#[test]
fn body_shorter_than_content_length_is_rejected() {
    let text = INVITE.replace("Content-Length: 162", "Content-Length: 9999");
    assert!(matches!(
        parse(text.as_bytes()).unwrap_err().kind,
        ParseErrorKind::BodyLength { declared: 9999, .. }
    ));
}

#[test]
fn response_copies_headers_and_adds_tag() {
    let r = request(INVITE);
    let resp = r.response(486, Some("t1"));
    assert_eq!(resp.headers.to.tag(), Some("t1"));
    assert_eq!(resp.headers.via, r.headers.via);
    let printed = String::from_utf8(resp.to_bytes()).unwrap();
    assert!(printed.starts_with("SIP/2.0 486 Busy Here\r\n"));
    assert!(printed.ends_with("Content-Length: 0\r\n\r\n"));
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        fuzz::parse_roundtrip(&data);
    }

    #[test]
    fn never_panics_on_mutated_invite(pos in 0usize..INVITE.len(), byte in proptest::num::u8::ANY) {
        let mut data = INVITE.as_bytes().to_vec();
        data[pos] = byte;
        fuzz::parse_roundtrip(&data);
    }
}

#[test]
fn multibyte_characters_at_slicing_points_do_not_panic() {
    for line in [
        "OPTIONS sip:a@b SIPé/2.0",
        "OPTIONS sip:a@b SIé/2.0",
        "OPTIONS sip:a@b ééé",
    ] {
        let text = format!("{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
        assert!(parse(text.as_bytes()).is_err());
    }
}

#[test]
fn user_part_unescaped_for_dialled_numbers() {
    let uri: Uri = "sip:%2A43@127.0.0.1".parse().unwrap();
    assert_eq!(
        uri.as_sip().unwrap().user_unescaped().as_deref(),
        Some("*43")
    );
    let plain: Uri = "sip:*45%3712@127.0.0.1".parse().unwrap();
    assert_eq!(
        plain.as_sip().unwrap().user_unescaped().as_deref(),
        Some("*45712")
    );
    let none: Uri = "sip:127.0.0.1".parse().unwrap();
    assert_eq!(none.as_sip().unwrap().user_unescaped(), None);
}
