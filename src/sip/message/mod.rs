//! SIP messages: types that only parse and print (RFC 3261 §7, §20, §25).
//!
//! Our own parser rather than `rsip`: see docs/adr/0001-sip-parser.md.

mod date;
mod error;
pub mod fuzz;
mod header;
mod method;
mod name_addr;
mod params;
mod parser;
mod scan;
mod uri;
mod via;

use std::fmt::Write as _;

use bytes::Bytes;

pub use date::http_date;
pub use error::{ParseError, ParseErrorKind, RawHead, SyntaxError};
pub use header::{CSeq, CallId, Contacts, Header, HeaderName, Headers};
pub use method::Method;
pub use name_addr::NameAddr;
pub use params::Params;
pub use parser::parse;
pub use uri::{Host, SipUri, Uri};
pub use via::{Via, BRANCH_MAGIC};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Writes headers, Content-Length and body after a start line.
fn finish(mut head: String, headers: &Headers, body: &Bytes) -> Vec<u8> {
    headers.write(&mut head);
    // Writing to a String cannot fail.
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512 + self.headers.other.len() * 32);
        let _ = write!(head, "{} {} SIP/2.0\r\n", self.method, self.uri);
        finish(head, &self.headers, &self.body)
    }

    /// A response to this request (RFC 3261 §8.2.6.2): Via, From, To, Call-ID
    /// and CSeq copied; `to_tag` added to To unless it already has one (a
    /// UAS must add one to every response but 100, §8.2.6.2).
    pub fn response(&self, status: u16, to_tag: Option<&str>) -> Response {
        let mut to = self.headers.to.clone();
        if let (Some(tag), None) = (to_tag, to.tag()) {
            to = to.with_tag(tag);
        }
        let mut headers = Headers::new(
            self.headers.from.clone(),
            to,
            self.headers.call_id.clone(),
            self.headers.cseq.clone(),
        );
        headers.via = self.headers.via.clone();
        Response {
            status,
            reason: reason_phrase(status).to_owned(),
            headers,
            body: Bytes::new(),
        }
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512 + self.headers.other.len() * 32);
        let _ = write!(head, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        finish(head, &self.headers, &self.body)
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

impl RawHead {
    /// A response to a request that failed to parse, built from its raw
    /// header lines (RFC 3261 §8.2.6.2), e.g. a 400 naming the error.
    pub fn response_bytes(&self, status: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
        for (name, value) in &self.copied {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        for (name, value) in extra {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }
}

/// The default reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests;
