//! Messages the transaction layer writes itself: the ACK for a non-2xx final
//! response (RFC 3261 §17.1.1.3), CANCEL (§9.1), 100 Trying (§17.2.1) and
//! 482 Loop Detected for a merged request (§8.2.2.2).

use bytes::Bytes;

use super::super::message::{CSeq, HeaderName, Headers, Method, NameAddr, Request, Response};

/// RFC 3261 §8.1.1.6: the recommended initial Max-Forwards.
const MAX_FORWARDS: u8 = 70;

/// Serializes once into an exactly-sized buffer: the bytes may live for
/// 32 s in a transaction waiting for retransmissions, so the spare capacity
/// of the printing buffer is given back.
pub(super) fn request_bytes(request: &Request) -> Bytes {
    Bytes::from(request.to_bytes().into_boxed_slice())
}

pub(super) fn response_bytes(response: &Response) -> Bytes {
    Bytes::from(response.to_bytes().into_boxed_slice())
}

/// What an INVITE client transaction keeps of its request to build the ACK
/// and the CANCEL later: Request-URI, top Via, From, To, Call-ID, CSeq and
/// Route. Everything else (body, Contact, other headers) is dropped.
pub(super) fn skeleton(request: &Request) -> Request {
    let h = &request.headers;
    let mut headers = Headers::new(
        h.from.clone(),
        h.to.clone(),
        h.call_id.clone(),
        h.cseq.clone(),
    );
    headers.via = h.via.first().cloned().into_iter().collect();
    headers.route = h.route.clone();
    Request {
        method: request.method.clone(),
        uri: request.uri.clone(),
        headers,
        body: Bytes::new(),
    }
}

/// A request built from the skeleton: same Request-URI, Call-ID, From,
/// CSeq number, the single top Via and the Route set, with `method`.
fn from_skeleton(skeleton: &Request, method: Method, to: &NameAddr) -> Request {
    let s = &skeleton.headers;
    let cseq = CSeq {
        seq: s.cseq.seq,
        method: method.clone(),
    };
    let mut headers = Headers::new(s.from.clone(), to.clone(), s.call_id.clone(), cseq);
    headers.via = s.via.clone();
    headers.route = s.route.clone();
    headers.max_forwards = Some(MAX_FORWARDS);
    Request {
        method,
        uri: skeleton.uri.clone(),
        headers,
        body: Bytes::new(),
    }
}

/// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response has the
/// INVITE's Request-URI, Call-ID, From, CSeq number, top Via (so the same
/// branch) and Route headers, and the To of the response (with its tag).
pub(super) fn ack(skeleton: &Request, response: &Response) -> Request {
    from_skeleton(skeleton, Method::Ack, &response.headers.to)
}

/// RFC 3261 §9.1: the CANCEL has the INVITE's Request-URI, Call-ID, From,
/// To, CSeq number, top Via and Route headers.
pub(super) fn cancel(skeleton: &Request) -> Request {
    from_skeleton(skeleton, Method::Cancel, &skeleton.headers.to)
}

/// RFC 3261 §17.2.1, §8.2.6.1: 100 Trying, without a To tag and with the
/// request's Timestamp copied.
pub(super) fn trying(request: &Request) -> Response {
    let mut response = request.response(100, None);
    let timestamp = HeaderName::Other("Timestamp".to_owned());
    for value in request.headers.get_all(&timestamp) {
        response.headers.push(timestamp.clone(), value);
    }
    response
}

/// RFC 3261 §8.2.2.2: the answer to a merged request. A final response
/// needs a To tag (§8.2.6.2) with at least 32 random bits (§19.3).
pub(super) fn loop_detected(request: &Request) -> Response {
    let tag = format!("{:016x}", rand::random::<u64>());
    request.response(482, Some(&tag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::super::message::{parse, Message};
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKother\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Timestamp: 54\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn invite() -> Request {
        match parse(INVITE.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc3261_17_1_1_3_ack_for_non_2xx() {
        let invite = invite();
        let response = invite.response(486, Some("bobtag"));
        let ack = ack(&skeleton(&invite), &response);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        assert_eq!(ack.headers.via, invite.headers.via[..1]);
        assert_eq!(ack.headers.route, invite.headers.route);
        assert_eq!(ack.headers.from, invite.headers.from);
        assert_eq!(ack.headers.to.tag(), Some("bobtag"));
        assert_eq!(ack.headers.call_id, invite.headers.call_id);
        assert_eq!(
            ack.headers.cseq,
            CSeq {
                seq: 314159,
                method: Method::Ack
            }
        );
        assert!(ack.body.is_empty() && ack.headers.other.is_empty());
        // It prints as a valid request.
        assert!(matches!(parse(&ack.to_bytes()), Ok(Message::Request(r)) if r == ack));
    }

    #[test]
    fn rfc3261_9_1_cancel() {
        let invite = invite();
        let cancel = cancel(&skeleton(&invite));
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.uri, invite.uri);
        assert_eq!(cancel.headers.via, invite.headers.via[..1]);
        assert_eq!(cancel.headers.route, invite.headers.route);
        assert_eq!(cancel.headers.to, invite.headers.to);
        assert_eq!(
            cancel.headers.cseq,
            CSeq {
                seq: 314159,
                method: Method::Cancel
            }
        );
        assert!(matches!(parse(&cancel.to_bytes()), Ok(Message::Request(r)) if r == cancel));
    }

    #[test]
    fn rfc3261_8_2_6_1_trying_copies_timestamp_and_has_no_tag() {
        let trying = trying(&invite());
        assert_eq!(trying.status, 100);
        assert_eq!(trying.headers.to.tag(), None);
        assert_eq!(
            trying.headers.get(&HeaderName::Other("timestamp".into())),
            Some("54")
        );
    }

    #[test]
    fn rfc3261_8_2_2_2_loop_detected_has_a_tag() {
        let r = loop_detected(&invite());
        assert_eq!(r.status, 482);
        assert!(r.headers.to.tag().is_some_and(|t| t.len() == 16));
    }

    #[test]
    fn serialized_buffers_are_exact() {
        let r = invite();
        assert_eq!(request_bytes(&r), Bytes::from(r.to_bytes()));
    }
}
