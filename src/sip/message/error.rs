//! Parse errors, grouped by what the receiver can do about them.

use thiserror::Error;

/// A syntax error inside one element (URI, header value, start line).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyntaxError {
    #[error("expected {0}")]
    Expected(&'static str),
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("unterminated <...>")]
    UnterminatedAngle,
    #[error("value out of range")]
    OutOfRange,
    #[error("empty value")]
    Empty,
}

/// Why a message could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Not even a start line and header block could be found; nothing can be
    /// answered.
    #[error("not a SIP message: {0}")]
    Framing(&'static str),
    /// The start line is malformed.
    #[error("bad start line: {0}")]
    StartLine(SyntaxError),
    /// RFC 3261 §8.2.2 / RFC 4475 §3.1.2.15: answered with 505.
    #[error("unsupported SIP version {0:?}")]
    Version(String),
    /// A header line without a colon or with an invalid name.
    #[error("bad header line: {0}")]
    HeaderLine(String),
    /// A header's value does not follow its grammar.
    #[error("bad {header} header: {error}")]
    Header {
        header: &'static str,
        error: SyntaxError,
    },
    /// A header that must appear once appears several times (RFC 4475 §3.3.9).
    #[error("header {0} appears more than once")]
    Duplicate(&'static str),
    /// A mandatory header is missing (RFC 3261 §8.1.1).
    #[error("missing {0} header")]
    Missing(&'static str),
    /// Content-Length disagrees with the bytes present (RFC 4475 §3.1.2.2).
    #[error("Content-Length {declared} but {available} body bytes")]
    BodyLength { declared: usize, available: usize },
    /// CSeq method and request method differ (RFC 4475 §3.1.2.16).
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// Headers are not valid UTF-8.
    #[error("header section is not valid UTF-8")]
    Encoding,
}

/// A message that could not be parsed, with what is needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// For a request whose start line and header lines could be read, the
    /// raw header lines that a response copies (RFC 3261 §8.2.6.2: Via,
    /// From, To, Call-ID, CSeq); `None` when no response can be formed
    /// (a response, or no request line).
    pub answerable: Option<RawHead>,
}

/// The raw, unfolded header lines of a request that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawHead {
    pub method: String,
    /// `(canonical name, value)` for the headers a response copies.
    pub copied: Vec<(&'static str, String)>,
}

impl ParseError {
    pub(crate) fn unanswerable(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            answerable: None,
        }
    }

    /// The status code to answer with, when an answer can be formed.
    pub fn status(&self) -> u16 {
        match self.kind {
            ParseErrorKind::Version(_) => 505,
            _ => 400,
        }
    }
}
