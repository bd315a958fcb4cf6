//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3) and the
//! merged-request key (§8.2.2.2).
//!
//! A key is one flat string, so that a live transaction costs one small
//! allocation for it and a lookup is one hash of one string. Fields are
//! joined with `\n`, which none of them can contain (header values are
//! unfolded and a URI or token has no line break).

use std::fmt::Write as _;

use super::super::message::{Method, Request, Response, Via};

/// The branch, lower-cased: parameter values compare case-insensitively
/// unless their header says otherwise (RFC 3261 §7.3.1), and Via does not.
fn push_branch(out: &mut String, branch: &str) {
    out.extend(branch.chars().map(|c| c.to_ascii_lowercase()));
}

/// A branch with the magic cookie (RFC 3261 §8.1.1.7), or `None` for an
/// RFC 2543 request.
fn rfc3261_branch(via: &Via) -> Option<&str> {
    via.branch().filter(|_| via.is_rfc3261_branch())
}

/// The server transaction key of a request (RFC 3261 §17.2.3), matched as
/// if its method were `method` (an ACK is matched to its INVITE, and a
/// CANCEL's target is found as if the CANCEL were the INVITE, §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerKey {
    pub(super) text: String,
    /// Built by the RFC 2543 rules: the branch lacked the magic cookie.
    pub(super) rfc2543: bool,
}

pub(super) fn server_key(request: &Request, method: &Method) -> Option<ServerKey> {
    let via = request.headers.top_via()?;
    let mut text = String::with_capacity(96);
    if let Some(branch) = rfc3261_branch(via) {
        // Branch, sent-by and method (ACK counting as INVITE).
        text.push_str(method.as_str());
        text.push('\n');
        push_branch(&mut text, branch);
        let _ = write!(text, "\n{}", via.host);
        if let Some(port) = via.port {
            let _ = write!(text, ":{port}");
        }
        return Some(ServerKey {
            text,
            rfc2543: false,
        });
    }
    // RFC 3261 §17.2.3, last paragraphs: Request-URI, To tag, From tag,
    // Call-ID, CSeq and top Via. The INVITE key leaves the To tag out: the ACK
    // carries the tag of the response rather than the INVITE's, and is
    // checked against it separately (see `TransactionLayer::rfc2543_ack_tags`);
    // an INVITE retransmission has the To tag of the original by definition
    // of a retransmission.
    let h = &request.headers;
    let _ = write!(text, "2543\n{method}\n{}\n", request.uri);
    if *method != Method::Invite {
        text.push_str(h.to.tag().unwrap_or_default());
    }
    let _ = write!(
        text,
        "\n{}\n{}\n{}\n{via}",
        h.from.tag().unwrap_or_default(),
        h.call_id,
        h.cseq.seq
    );
    Some(ServerKey {
        text,
        rfc2543: true,
    })
}

/// The client transaction key of a request we send or a response we
/// receive: top Via branch and CSeq method (RFC 3261 §17.1.3). Our own
/// branches are unique, so the sent-by is not needed.
pub(super) fn client_key(method: &Method, via: &Via) -> Option<String> {
    let branch = via.branch()?;
    let mut text = String::with_capacity(method.as_str().len() + 1 + branch.len());
    text.push_str(method.as_str());
    text.push('\n');
    push_branch(&mut text, branch);
    Some(text)
}

pub(super) fn response_client_key(response: &Response) -> Option<String> {
    client_key(&response.headers.cseq.method, response.headers.top_via()?)
}

/// Whether a request sent in a client transaction has a usable branch.
pub(super) fn has_rfc3261_branch(request: &Request) -> bool {
    request.headers.top_via().and_then(rfc3261_branch).is_some()
}

/// RFC 3261 §8.2.2.2: a request without a To tag is checked against the
/// live transactions by From tag, Call-ID and CSeq. `None` for a request
/// with a To tag (inside a dialog, where no merging can happen).
pub(super) fn merge_key(request: &Request) -> Option<String> {
    let h = &request.headers;
    if h.to.tag().is_some() || request.method == Method::Ack {
        return None;
    }
    let from_tag = h.from.tag().unwrap_or_default();
    let mut text = String::with_capacity(from_tag.len() + h.call_id.as_str().len() + 24);
    let _ = write!(
        text,
        "{from_tag}\n{}\n{} {}",
        h.call_id, h.cseq.seq, h.cseq.method
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::super::message::{parse, Message};
    use super::*;

    fn req(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn invite(via: &str, to: &str) -> Request {
        req(&format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=f1\r\n\
             To: {to}\r\nCall-ID: c1@h\r\nCSeq: 4 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    #[test]
    fn rfc3261_17_2_3_branch_sent_by_and_method() {
        let a = invite(
            "SIP/2.0/UDP h.example.com:5060;branch=z9hG4bKAbC",
            "<sip:bob@example.com>",
        );
        let b = invite(
            "SIP/2.0/UDP h.example.com:5060;branch=z9hG4bKabc;rport",
            "<sip:bob@example.com>",
        );
        let other_port = invite(
            "SIP/2.0/UDP h.example.com:5070;branch=z9hG4bKabc",
            "<sip:bob@example.com>",
        );
        let ka = server_key(&a, &Method::Invite).unwrap();
        assert!(!ka.rfc2543);
        assert_eq!(ka, server_key(&b, &Method::Invite).unwrap());
        assert_ne!(ka, server_key(&other_port, &Method::Invite).unwrap());
        assert_ne!(ka, server_key(&a, &Method::Cancel).unwrap());
    }

    #[test]
    fn rfc3261_17_2_3_rfc2543_keys_use_dialog_fields() {
        let a = invite("SIP/2.0/UDP h:5060;branch=1", "<sip:bob@example.com>");
        let ka = server_key(&a, &Method::Invite).unwrap();
        assert!(ka.rfc2543);
        // The INVITE key ignores the To tag; the ACK is checked against the
        // response's tag instead.
        let tagged = invite("SIP/2.0/UDP h:5060;branch=1", "<sip:bob@example.com>;tag=x");
        assert_eq!(ka, server_key(&tagged, &Method::Invite).unwrap());
        // Other methods include it.
        assert_ne!(
            server_key(&a, &Method::Bye),
            server_key(&tagged, &Method::Bye)
        );
        let other_via = invite("SIP/2.0/UDP h:5061;branch=1", "<sip:bob@example.com>");
        assert_ne!(ka, server_key(&other_via, &Method::Invite).unwrap());
    }

    #[test]
    fn rfc3261_8_2_2_2_merge_key_only_without_to_tag() {
        let a = invite(
            "SIP/2.0/UDP h:5060;branch=z9hG4bK1",
            "<sip:bob@example.com>",
        );
        let b = invite(
            "SIP/2.0/UDP other:5060;branch=z9hG4bK2",
            "<sip:bob@example.com>",
        );
        assert_eq!(merge_key(&a), merge_key(&b));
        assert!(merge_key(&a).is_some());
        let in_dialog = invite(
            "SIP/2.0/UDP h:5060;branch=z9hG4bK1",
            "<sip:bob@example.com>;tag=t",
        );
        assert_eq!(merge_key(&in_dialog), None);
    }

    #[test]
    fn rfc3261_17_1_3_client_key_is_branch_and_cseq_method() {
        let a = invite(
            "SIP/2.0/UDP h:5060;branch=z9hG4bK1",
            "<sip:bob@example.com>",
        );
        let via = a.headers.top_via().unwrap();
        assert_eq!(
            client_key(&Method::Invite, via).as_deref(),
            Some("INVITE\nz9hg4bk1")
        );
        assert_ne!(
            client_key(&Method::Invite, via),
            client_key(&Method::Cancel, via)
        );
        assert!(has_rfc3261_branch(&a));
        assert!(!has_rfc3261_branch(&invite(
            "SIP/2.0/UDP h;branch=1",
            "<sip:b@h>"
        )));
    }
}
