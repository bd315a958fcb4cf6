//! Reading a whole message from bytes (RFC 3261 §7, §18.3).

use std::borrow::Cow;

use bytes::Bytes;

use super::error::{ParseError, ParseErrorKind, RawHead, SyntaxError};
use super::header::{parse_list, CSeq, CallId, Contacts, Header, HeaderName, Headers};
use super::method::Method;
use super::name_addr::NameAddr;
use super::scan::{parse_digits, trim_lws};
use super::uri::Uri;
use super::via::Via;
use super::{Message, Request, Response};

/// Parses one message from `buf`.
///
/// Bytes after the body that Content-Length declares are ignored (RFC 3261
/// §18.3, RFC 4475 §3.1.1.8); without Content-Length the body runs to the end
/// of `buf` (datagrams only: stream transports frame first).
pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let start = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .ok_or(ParseError::unanswerable(ParseErrorKind::Framing("empty")))?;
    let buf = &buf[start..];
    // A datagram whose headers run to its end without the empty line is read
    // as headers only (RFC 4475's archived `baddn` is one), so that its other
    // errors can still be answered.
    let (head, body_start) = find_head_end(buf).unwrap_or((buf.len(), buf.len()));
    let lines = unfold(&buf[..head]);
    let mut lines = lines.into_iter();
    let start_line = lines
        .next()
        .ok_or(ParseError::unanswerable(ParseErrorKind::Framing(
            "no start line",
        )))?;
    let start_line = std::str::from_utf8(&start_line)
        .map_err(|_| ParseError::unanswerable(ParseErrorKind::Encoding))?;
    let start = parse_start_line(start_line);

    let mut raw_lines = Vec::new();
    let mut bad_line = None;
    for line in lines {
        match split_header_line(&line) {
            Ok((name, value)) => raw_lines.push((name, value)),
            Err(e) => {
                bad_line.get_or_insert(e);
            }
        }
    }
    // A request whose start line is malformed is still answerable (400) when
    // its headers can be copied; its first word stands in for the method.
    let request_method = match &start {
        Ok(StartLine::Request { method, .. }) => Some(method.to_string()),
        Ok(StartLine::Response { .. }) => None,
        Err(_) if start_line.starts_with("SIP/") => None,
        Err(_) => Some(start_line.split(' ').next().unwrap_or_default().to_owned()),
    };
    let fail = |kind: ParseErrorKind| ParseError {
        kind,
        answerable: request_method
            .as_ref()
            .and_then(|m| answerable(m, &raw_lines)),
    };
    let start = start.map_err(&fail)?;
    if let Some(e) = bad_line {
        return Err(fail(e));
    }
    let start = match start {
        StartLine::Request {
            version: Some(v), ..
        } => return Err(fail(ParseErrorKind::Version(v))),
        s => s,
    };

    let (headers, content_length) = build_headers(&raw_lines).map_err(&fail)?;
    let available = buf.len() - body_start;
    let body_len = match content_length {
        Some(declared) if declared > available => {
            return Err(fail(ParseErrorKind::BodyLength {
                declared,
                available,
            }))
        }
        Some(declared) => declared,
        None => available,
    };
    let body = Bytes::copy_from_slice(&buf[body_start..body_start + body_len]);

    Ok(match start {
        StartLine::Request { method, uri, .. } => {
            // RFC 4475 §3.1.2.16: the CSeq method must be the request's.
            if headers.cseq.method != method {
                return Err(fail(ParseErrorKind::CSeqMismatch));
            }
            Message::Request(Request {
                method,
                uri,
                headers,
                body,
            })
        }
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

enum StartLine {
    Request {
        method: Method,
        uri: Uri,
        /// An unsupported version, answered with 505 once the headers are read.
        version: Option<String>,
    },
    Response {
        status: u16,
        reason: String,
    },
}

/// Where the header block ends and the body starts.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Splits the header block into lines (CRLF or bare LF) and joins folded
/// continuation lines with a single space (RFC 3261 §7.3.1).
fn unfold(head: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut out: Vec<Cow<'_, [u8]>> = Vec::with_capacity(16);
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some(prev)) => {
                let start = line
                    .iter()
                    .position(|&c| c != b' ' && c != b'\t')
                    .unwrap_or(line.len());
                let prev = prev.to_mut();
                while prev.last().is_some_and(|&c| c == b' ' || c == b'\t') {
                    prev.pop();
                }
                prev.push(b' ');
                prev.extend_from_slice(&line[start..]);
            }
            _ => out.push(Cow::Borrowed(line)),
        }
    }
    out
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseErrorKind> {
    let bad = ParseErrorKind::StartLine;
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = rest.splitn(3, ' ');
        if parts.next() != Some("2.0") {
            return Err(bad(SyntaxError::Expected("SIP/2.0")));
        }
        let code = parts
            .next()
            .ok_or(bad(SyntaxError::Expected("status code")))?;
        if code.len() != 3 {
            return Err(bad(SyntaxError::Expected("3-digit status code")));
        }
        let status: u16 = parse_digits(code).map_err(bad)?;
        if !(100..=699).contains(&status) {
            return Err(bad(SyntaxError::OutOfRange));
        }
        let reason = parts.next().unwrap_or_default().to_owned();
        return Ok(StartLine::Response { status, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly one space
    // between elements (RFC 4475 §3.1.2.7-9).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(SyntaxError::Expected(
            "Method SP Request-URI SP SIP-Version",
        )));
    };
    let method: Method = method.parse().map_err(bad)?;
    let uri: Uri = uri.parse().map_err(bad)?;
    // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.10).
    if uri.as_sip().is_some_and(|u| u.headers.is_some()) {
        return Err(bad(SyntaxError::UnexpectedChar('?')));
    }
    let version = if version.eq_ignore_ascii_case("SIP/2.0") {
        None
    } else if version.len() > 4
        && version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        Some(version.to_owned())
    } else {
        return Err(bad(SyntaxError::Expected("SIP-Version")));
    };
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

type RawLine<'a> = (HeaderName, Cow<'a, str>);

fn split_header_line<'a>(line: &Cow<'a, [u8]>) -> Result<RawLine<'a>, ParseErrorKind> {
    let colon = line.iter().position(|&c| c == b':');
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let Some(colon) = colon else {
        return Err(ParseErrorKind::HeaderLine(text(line)));
    };
    let name = std::str::from_utf8(&line[..colon]).map_err(|_| ParseErrorKind::Encoding)?;
    // RFC 3261 §7.3.1: white space is allowed before the colon.
    let name: HeaderName = trim_lws(name)
        .parse()
        .map_err(|_| ParseErrorKind::HeaderLine(text(line)))?;
    let value = match line {
        Cow::Borrowed(b) => Cow::Borrowed(
            std::str::from_utf8(&b[colon + 1..]).map_err(|_| ParseErrorKind::Encoding)?,
        ),
        Cow::Owned(b) => Cow::Owned(
            std::str::from_utf8(&b[colon + 1..])
                .map_err(|_| ParseErrorKind::Encoding)?
                .to_owned(),
        ),
    };
    let value = match value {
        Cow::Borrowed(v) => Cow::Borrowed(trim_lws(v)),
        Cow::Owned(v) => Cow::Owned(trim_lws(&v).to_owned()),
    };
    Ok((name, value))
}

/// The headers a response copies from its request (RFC 3261 §8.2.6.2).
fn answerable(method: &str, lines: &[RawLine<'_>]) -> Option<RawHead> {
    let copied: Vec<(&'static str, String)> = lines
        .iter()
        .filter_map(|(name, value)| {
            let canonical = match name {
                HeaderName::Via => "Via",
                HeaderName::From => "From",
                HeaderName::To => "To",
                HeaderName::CallId => "Call-ID",
                HeaderName::CSeq => "CSeq",
                _ => return None,
            };
            Some((canonical, value.to_string()))
        })
        .collect();
    // Without a Via there is nowhere to send a response.
    copied.iter().any(|(n, _)| *n == "Via").then(|| RawHead {
        method: method.to_owned(),
        copied,
    })
}

fn build_headers(lines: &[RawLine<'_>]) -> Result<(Headers, Option<usize>), ParseErrorKind> {
    fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ParseErrorKind> {
        if slot.is_some() {
            return Err(ParseErrorKind::Duplicate(name));
        }
        *slot = Some(value);
        Ok(())
    }
    let typed =
        |header: &'static str| move |error: SyntaxError| ParseErrorKind::Header { header, error };

    let (mut from, mut to, mut call_id, mut cseq, mut max_forwards, mut content_length) =
        (None, None, None, None, None, None);
    let mut via = Vec::new();
    let mut contact: Option<Contacts> = None;
    let mut route = Vec::new();
    let mut record_route = Vec::new();
    let mut other = Vec::new();
    for (name, value) in lines {
        let value: &str = value;
        match name {
            HeaderName::Via => via.extend(parse_list(value, Via::parse).map_err(typed("Via"))?),
            HeaderName::From => once(
                &mut from,
                NameAddr::parse(value).map_err(typed("From"))?,
                "From",
            )?,
            HeaderName::To => once(&mut to, NameAddr::parse(value).map_err(typed("To"))?, "To")?,
            HeaderName::CallId => once(
                &mut call_id,
                value.parse::<CallId>().map_err(typed("Call-ID"))?,
                "Call-ID",
            )?,
            HeaderName::CSeq => once(
                &mut cseq,
                value.parse::<CSeq>().map_err(typed("CSeq"))?,
                "CSeq",
            )?,
            HeaderName::MaxForwards => once(
                &mut max_forwards,
                parse_digits::<u8>(value).map_err(typed("Max-Forwards"))?,
                "Max-Forwards",
            )?,
            HeaderName::ContentLength => {
                let n = parse_digits::<usize>(value).map_err(typed("Content-Length"))?;
                // Repeating the same value is harmless; differing values are
                // ambiguous framing (RFC 4475 §3.3.10).
                if content_length.is_some_and(|old| old != n) {
                    return Err(ParseErrorKind::Duplicate("Content-Length"));
                }
                content_length = Some(n);
            }
            HeaderName::Contact => {
                let parsed = if value == "*" {
                    Contacts::Wildcard
                } else {
                    Contacts::List(parse_list(value, NameAddr::parse).map_err(typed("Contact"))?)
                };
                contact = Some(match (contact.take(), parsed) {
                    (None, p) => p,
                    (Some(Contacts::List(mut a)), Contacts::List(b)) => {
                        a.extend(b);
                        Contacts::List(a)
                    }
                    // '*' cannot be combined with other contacts (RFC 3261 §10.2.2).
                    _ => return Err(ParseErrorKind::Duplicate("Contact")),
                });
            }
            HeaderName::Route => {
                route.extend(parse_list(value, NameAddr::parse).map_err(typed("Route"))?)
            }
            HeaderName::RecordRoute => record_route
                .extend(parse_list(value, NameAddr::parse).map_err(typed("Record-Route"))?),
            HeaderName::ContentType => {
                if other
                    .iter()
                    .any(|h: &Header| h.name == HeaderName::ContentType)
                {
                    return Err(ParseErrorKind::Duplicate("Content-Type"));
                }
                other.push(Header {
                    name: name.clone(),
                    value: value.to_owned(),
                });
            }
            _ => other.push(Header {
                name: name.clone(),
                value: value.to_owned(),
            }),
        }
    }
    if via.is_empty() {
        return Err(ParseErrorKind::Missing("Via"));
    }
    let mut headers = Headers::new(
        from.ok_or(ParseErrorKind::Missing("From"))?,
        to.ok_or(ParseErrorKind::Missing("To"))?,
        call_id.ok_or(ParseErrorKind::Missing("Call-ID"))?,
        cseq.ok_or(ParseErrorKind::Missing("CSeq"))?,
    );
    headers.via = via;
    headers.max_forwards = max_forwards;
    headers.contact = contact.unwrap_or_default();
    headers.route = route;
    headers.record_route = record_route;
    headers.other = other;
    Ok((headers, content_length))
}
