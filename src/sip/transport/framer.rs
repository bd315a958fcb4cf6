//! Message framing on stream transports (RFC 3261 §18.3) with the RFC 5626
//! §4.4.1 CRLF keep-alive.
//!
//! On a stream there is no datagram boundary: the end of a SIP message is the
//! end of its header block plus exactly Content-Length body bytes. The framer
//! only looks at the header block far enough to find Content-Length; the real
//! parsing happens later, on the frame it hands out.

use bytes::{Buf, Bytes, BytesMut};

const CRLF: &[u8] = b"\r\n";
const CRLF_CRLF: &[u8] = b"\r\n\r\n";

/// One unit read off a stream transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole SIP message: header block and exactly Content-Length body bytes.
    Message(Bytes),
    /// An RFC 5626 §4.4.1 "ping" (a double CRLF between messages): the
    /// caller answers it with a single CRLF "pong".
    Ping,
}

/// Why a stream cannot be framed any further. Every error poisons the
/// framer: the byte stream has lost its message boundaries, so the
/// connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message is larger than the limit. `head` is the complete header
    /// block when Content-Length was what pushed it over (so the core can
    /// answer 513 Message Too Large before the connection is closed), `None`
    /// when the header block alone exceeds the limit.
    #[error("SIP message exceeds the size limit")]
    TooLarge { head: Option<Bytes> },
    /// The Content-Length value is not a number, or several Content-Length
    /// headers disagree (which would let two parsers frame differently).
    #[error("invalid Content-Length header")]
    BadContentLength,
    /// RFC 3261 §18.3: on a stream transport Content-Length is mandatory.
    #[error("SIP message on a stream transport without Content-Length")]
    MissingContentLength { head: Bytes },
}

#[derive(Debug)]
enum State {
    /// Looking for the end of a header block; the first `scanned` bytes of
    /// the buffer have already been searched (so a header block trickling in
    /// byte by byte is not rescanned from the start each time).
    Head {
        scanned: usize,
    },
    /// The header block is parsed and the message is `total` bytes long.
    Body {
        total: usize,
    },
    Poisoned,
}

/// Splits a byte stream into SIP messages and keep-alive pings.
///
/// Feed it with [`push`](Self::push) as bytes arrive, then call
/// [`next_frame`](Self::next_frame) until it returns `None`. When used that
/// way the buffer never holds more than `max_message_size` plus the last
/// pushed chunk. Body bytes are copied once, into the buffer; frames are
/// split off it without copying.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message_size: usize,
    state: State,
}

impl StreamFramer {
    pub fn new(max_message_size: usize) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            max_message_size,
            state: State::Head { scanned: 0 },
        }
    }

    /// Appends bytes read from the stream. Ignored once poisoned.
    pub fn push(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Poisoned) {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// True after an error: no frame will ever come out again.
    pub fn is_poisoned(&self) -> bool {
        matches!(self.state, State::Poisoned)
    }

    /// Bytes held that are not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The next complete frame, `None` when more bytes are needed (or the
    /// framer is poisoned), or the error that poisons it.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        loop {
            match self.state {
                State::Poisoned => return None,
                State::Body { total } => {
                    if self.buf.len() < total {
                        return None;
                    }
                    self.state = State::Head { scanned: 0 };
                    return Some(Ok(Frame::Message(self.buf.split_to(total).freeze())));
                }
                State::Head { scanned } => {
                    if scanned == 0 {
                        // Nothing of a message seen yet: CRLFs here are
                        // keep-alives or separators, never message bytes.
                        if self.buf.starts_with(CRLF_CRLF) {
                            // RFC 5626 §4.4.1: a double CRLF is a ping.
                            self.buf.advance(CRLF_CRLF.len());
                            return Some(Ok(Frame::Ping));
                        }
                        if !self.buf.is_empty() && CRLF_CRLF.starts_with(&self.buf) {
                            // Could still become a ping: wait for more.
                            return None;
                        }
                        if self.buf.starts_with(CRLF) {
                            // RFC 3261 §7.5: ignore CRLF before the start-line.
                            self.buf.advance(CRLF.len());
                            continue;
                        }
                        if self.buf.is_empty() {
                            return None;
                        }
                    }
                    if let Err(e) = self.parse_head(scanned) {
                        return Some(Err(self.poison(e)));
                    }
                    if matches!(self.state, State::Head { .. }) {
                        return None;
                    }
                }
            }
        }
    }

    /// Looks for the end of the header block; when found, reads
    /// Content-Length and moves to `State::Body`.
    fn parse_head(&mut self, scanned: usize) -> Result<(), FrameError> {
        // Re-examine the last 3 bytes already scanned: the terminator may
        // straddle the previous push.
        let from = scanned.saturating_sub(CRLF_CRLF.len() - 1);
        let Some(head_len) = find_from(&self.buf, from) else {
            if self.buf.len() >= self.max_message_size {
                return Err(FrameError::TooLarge { head: None });
            }
            self.state = State::Head {
                scanned: self.buf.len(),
            };
            return Ok(());
        };
        if head_len > self.max_message_size {
            return Err(FrameError::TooLarge { head: None });
        }
        let body_len = match content_length(&self.buf[..head_len])? {
            Some(n) => n,
            None => {
                return Err(FrameError::MissingContentLength {
                    head: self.buf.split_to(head_len).freeze(),
                })
            }
        };
        let total = match head_len.checked_add(body_len) {
            Some(t) if t <= self.max_message_size => t,
            _ => {
                return Err(FrameError::TooLarge {
                    head: Some(self.buf.split_to(head_len).freeze()),
                })
            }
        };
        // One allocation for the whole message instead of repeated growth
        // (each of which would copy the partial body again).
        self.buf.reserve(total.saturating_sub(self.buf.len()));
        self.state = State::Body { total };
        Ok(())
    }

    fn poison(&mut self, e: FrameError) -> FrameError {
        self.state = State::Poisoned;
        self.buf = BytesMut::new();
        e
    }
}

/// Length of the header block at the start of `buf` including its
/// terminating empty line, if `buf` holds all of it.
pub fn find_header_end(buf: &[u8]) -> Option<usize> {
    find_from(buf, 0)
}

fn find_from(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(CRLF_CRLF.len())
        .position(|w| w == CRLF_CRLF)
        .map(|i| from + i + CRLF_CRLF.len())
}

/// Content-Length of a complete header block (which ends in CRLFCRLF), or
/// `None` when there is no such header.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let lines = &head[..head.len().saturating_sub(CRLF_CRLF.len())];
    let mut found: Option<usize> = None;
    // The first line is the start-line, never a header.
    let mut rest = lines.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = rest.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        // RFC 3261 §7.3.1: LWS is allowed between the name and the colon.
        let name = trim_wsp(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = Vec::new();
        let mut push_segment = |segment: &[u8]| {
            let segment = trim_wsp(segment);
            if !segment.is_empty() {
                if !value.is_empty() {
                    // A fold is equivalent to a single SP (RFC 3261 §7.3.1).
                    value.push(b' ');
                }
                value.extend_from_slice(segment);
            }
        };
        push_segment(&line[colon + 1..]);
        // Folded continuation lines start with whitespace.
        while let Some(next) = rest.next_if(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t'))
        {
            push_segment(next.strip_suffix(b"\r").unwrap_or(next));
        }
        let n = parse_decimal(&value).ok_or(FrameError::BadContentLength)?;
        match found {
            Some(previous) if previous != n => return Err(FrameError::BadContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', tail @ ..] = s {
        s = tail;
    }
    while let [head @ .., b' ' | b'\t'] = s {
        s = head;
    }
    s
}

fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(f: &mut StreamFramer) -> Vec<Result<Frame, FrameError>> {
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    const OPTIONS: &str =
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn single_message() {
        let mut f = StreamFramer::new(4096);
        f.push(OPTIONS.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(OPTIONS))]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn zero_length_body_and_back_to_back_messages() {
        let a = "BYE sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut f = StreamFramer::new(4096);
        f.push(format!("{a}{OPTIONS}{a}").as_bytes());
        assert_eq!(
            frames(&mut f),
            vec![Ok(msg(a)), Ok(msg(OPTIONS)), Ok(msg(a))]
        );
    }

    #[test]
    fn body_may_contain_blank_lines() {
        let m = "MESSAGE sip:x SIP/2.0\r\nl: 8\r\n\r\n\r\n\r\nab\r\n";
        let mut f = StreamFramer::new(4096);
        f.push(m.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(m))]);
    }

    #[test]
    fn waits_for_the_whole_body() {
        let mut f = StreamFramer::new(4096);
        let (a, b) = OPTIONS.split_at(OPTIONS.len() - 2);
        f.push(a.as_bytes());
        assert!(f.next_frame().is_none());
        f.push(b.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(OPTIONS))]);
    }

    #[test]
    fn content_length_variants() {
        for header in [
            "content-length: 5",
            "CONTENT-LENGTH:5",
            "Content-Length :  5",
            "Content-Length\t:\t5 ",
            "l: 5",
            "L:5",
            "Content-Length:\r\n 5",
            "Content-Length:\r\n\t  5\r\n ",
            "Content-Length: 00005",
        ] {
            let m =
                format!("INFO sip:x SIP/2.0\r\nTo: <sip:y>\r\n{header}\r\nSubject: s\r\n\r\nhello");
            let mut f = StreamFramer::new(4096);
            f.push(m.as_bytes());
            assert_eq!(frames(&mut f), vec![Ok(msg(&m))], "{header:?}");
        }
    }

    #[test]
    fn headers_merely_resembling_content_length_are_ignored() {
        // "Content-Length" only inside a value, a header named "Lx", and
        // the start-line do not count.
        let m = "INFO sip:l:5 SIP/2.0\r\nSubject: Content-Length: 99\r\nLx: 7\r\nl: 1\r\n\r\nZ";
        let mut f = StreamFramer::new(4096);
        f.push(m.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(m))]);
    }

    #[test]
    fn bad_content_length_poisons() {
        for header in [
            "Content-Length: five",
            "Content-Length: -1",
            "Content-Length: 1 2",
            "Content-Length:\r\n 1\r\n 2",
            "Content-Length:",
            "Content-Length: 99999999999999999999999999",
            "Content-Length: 5\r\nl: 6",
        ] {
            let m = format!("INFO sip:x SIP/2.0\r\n{header}\r\n\r\nhello");
            let mut f = StreamFramer::new(4096);
            f.push(m.as_bytes());
            assert_eq!(
                f.next_frame(),
                Some(Err(FrameError::BadContentLength)),
                "{header:?}"
            );
            assert!(f.is_poisoned());
            f.push(OPTIONS.as_bytes());
            assert_eq!(f.next_frame(), None);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn repeated_equal_content_length_is_accepted() {
        let m = "INFO sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 1\r\n\r\nZ";
        let mut f = StreamFramer::new(4096);
        f.push(m.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(m))]);
    }

    #[test]
    fn missing_content_length_returns_the_head() {
        let head = "INFO sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
        let mut f = StreamFramer::new(4096);
        f.push(format!("{head}body").as_bytes());
        assert_eq!(
            f.next_frame(),
            Some(Err(FrameError::MissingContentLength {
                head: Bytes::from_static(head.as_bytes())
            }))
        );
        assert!(f.is_poisoned());
    }

    #[test]
    fn too_large_by_content_length_returns_the_head() {
        let head = "INVITE sip:x SIP/2.0\r\nContent-Length: 100\r\n\r\n";
        let mut f = StreamFramer::new(head.len() + 99);
        f.push(head.as_bytes());
        assert_eq!(
            f.next_frame(),
            Some(Err(FrameError::TooLarge {
                head: Some(Bytes::from_static(head.as_bytes()))
            }))
        );
        assert!(f.is_poisoned());

        // Exactly at the limit is fine.
        let mut f = StreamFramer::new(head.len() + 100);
        f.push(head.as_bytes());
        f.push(&[b'x'; 100]);
        assert!(
            matches!(f.next_frame(), Some(Ok(Frame::Message(m))) if m.len() == head.len() + 100)
        );
    }

    #[test]
    fn too_large_headers_without_end() {
        let mut f = StreamFramer::new(64);
        f.push(b"INVITE sip:x SIP/2.0\r\n");
        assert_eq!(f.next_frame(), None);
        f.push(&[b'a'; 41]);
        assert_eq!(f.next_frame(), None, "63 bytes: still within the limit");
        f.push(b"b");
        assert_eq!(
            f.next_frame(),
            Some(Err(FrameError::TooLarge { head: None }))
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn header_block_longer_than_limit_in_one_push() {
        let mut f = StreamFramer::new(30);
        f.push(b"INVITE sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            f.next_frame(),
            Some(Err(FrameError::TooLarge { head: None }))
        );
    }

    #[test]
    fn pings_and_lone_crlfs() {
        let mut f = StreamFramer::new(4096);
        f.push(b"\r\n\r\n");
        assert_eq!(frames(&mut f), vec![Ok(Frame::Ping)]);
        // A lone CRLF before a message is skipped.
        f.push(format!("\r\n{OPTIONS}").as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(OPTIONS))]);
        // A lone CRLF at the end is kept: it may be the start of a ping.
        f.push(b"\r\n");
        assert_eq!(frames(&mut f), vec![]);
        f.push(b"\r");
        assert_eq!(frames(&mut f), vec![]);
        f.push(b"\n");
        assert_eq!(frames(&mut f), vec![Ok(Frame::Ping)]);
        // Six CRLF bytes: a ping, then a lone CRLF that waits.
        f.push(b"\r\n\r\n\r\n");
        assert_eq!(frames(&mut f), vec![Ok(Frame::Ping)]);
        f.push(OPTIONS.as_bytes());
        assert_eq!(frames(&mut f), vec![Ok(msg(OPTIONS))]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn header_terminator_split_across_pushes() {
        let mut f = StreamFramer::new(4096);
        for b in OPTIONS.as_bytes() {
            assert_eq!(f.next_frame(), None);
            f.push(std::slice::from_ref(b));
        }
        assert_eq!(frames(&mut f), vec![Ok(msg(OPTIONS))]);
    }

    #[test]
    fn find_header_end_works() {
        assert_eq!(find_header_end(b"A\r\nB: c\r\n\r\nbody"), Some(11));
        assert_eq!(find_header_end(b"A\r\nB: c\r\n"), None);
        assert_eq!(find_header_end(b""), None);
    }

    /// A generated stream item: what went on the wire and what the framer
    /// must produce for it.
    #[derive(Debug, Clone)]
    enum Item {
        Ping,
        Message {
            lone_crlf_before: bool,
            bytes: Vec<u8>,
        },
    }

    fn message_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![
                "INVITE sip:a@b SIP/2.0",
                "SIP/2.0 200 OK",
                "BYE sip:c SIP/2.0",
            ]),
            prop::sample::select(vec![
                "Content-Length: ",
                "content-length:",
                "l: ",
                "Content-Length :  ",
                "CONTENT-LENGTH:\r\n   ",
            ]),
            prop::collection::vec("[A-Za-z0-9;=.@ -]{1,20}", 0..4),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(start, cl, headers, body)| {
                let mut m = format!("{start}\r\n");
                for (i, h) in headers.iter().enumerate() {
                    m.push_str(&format!("X-H{i}: {h}\r\n"));
                }
                m.push_str(&format!("{cl}{}\r\n\r\n", body.len()));
                let mut m = m.into_bytes();
                m.extend_from_slice(&body);
                m
            })
    }

    fn item_strategy() -> impl Strategy<Value = Item> {
        prop_oneof![
            1 => Just(Item::Ping),
            3 => (any::<bool>(), message_strategy())
                .prop_map(|(lone_crlf_before, bytes)| Item::Message { lone_crlf_before, bytes }),
        ]
    }

    proptest! {
        #[test]
        fn any_split_yields_the_same_frames(
            items in prop::collection::vec(item_strategy(), 1..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for item in &items {
                match item {
                    Item::Ping => {
                        wire.extend_from_slice(b"\r\n\r\n");
                        expected.push(Frame::Ping);
                    }
                    Item::Message { lone_crlf_before, bytes } => {
                        if *lone_crlf_before {
                            wire.extend_from_slice(b"\r\n");
                        }
                        wire.extend_from_slice(bytes);
                        expected.push(Frame::Message(Bytes::copy_from_slice(bytes)));
                    }
                }
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();

            let max = 1024;
            let mut f = StreamFramer::new(max);
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                let chunk = &wire[w[0]..w[1]];
                f.push(chunk);
                prop_assert!(f.buffered() <= max + chunk.len());
                while let Some(frame) = f.next_frame() {
                    got.push(frame.map_err(|e| TestCaseError::fail(e.to_string()))?);
                }
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(f.buffered(), 0);
        }

        #[test]
        fn oversized_is_reported_the_same_for_any_split(
            body_len in 200usize..2000,
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let head = format!("INVITE sip:x SIP/2.0\r\nContent-Length: {body_len}\r\n\r\n");
            let mut wire = format!("\r\n\r\n{head}").into_bytes();
            wire.resize(wire.len() + body_len, b'b');
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();

            let max = 200;
            let mut f = StreamFramer::new(max);
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                let chunk = &wire[w[0]..w[1]];
                f.push(chunk);
                prop_assert!(f.buffered() <= max + chunk.len());
                got.extend(std::iter::from_fn(|| f.next_frame()));
            }
            prop_assert_eq!(got, vec![
                Ok(Frame::Ping),
                Err(FrameError::TooLarge { head: Some(Bytes::from(head.into_bytes())) }),
            ]);
        }
    }
}
