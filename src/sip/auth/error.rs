//! Errors of the digest authentication module, grouped by cause.

use std::time::Duration;

use thiserror::Error;

use super::digest::Algorithm;

/// Why a `WWW-Authenticate` / `Authorization` (or `Proxy-*`) value was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The value does not follow the auth-param grammar, or misses / repeats a
    /// parameter.
    #[error("malformed digest header: {0}")]
    Malformed(#[from] Malformed),
    /// The scheme is not `Digest` (e.g. `Basic`, which SIP forbids,
    /// RFC 3261 §22.1).
    #[error("unsupported authentication scheme (only Digest is supported)")]
    UnsupportedScheme,
    /// An `algorithm` we do not implement (e.g. `MD5-sess`, `SHA-512-256`).
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A `qop` we cannot honour: an unknown value in credentials, or a
    /// challenge that offers only qop values other than `auth`.
    #[error("unsupported quality of protection {0:?}")]
    UnsupportedQop(String),
}

/// The syntax or structure problem found in a digest header value. Byte
/// offsets (`at`) index the string handed to `parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    /// Nothing, or only whitespace, where a scheme was expected.
    #[error("empty header value")]
    Empty,
    /// A parameter name (token) was expected.
    #[error("expected a parameter name at byte {at}")]
    ExpectedName { at: usize },
    /// A parameter name was not followed by `=`.
    #[error("expected '=' at byte {at}")]
    ExpectedEquals { at: usize },
    /// `name=` with no value.
    #[error("missing parameter value at byte {at}")]
    MissingValue { at: usize },
    /// Two parameters not separated by a comma.
    #[error("expected ',' at byte {at}")]
    ExpectedComma { at: usize },
    /// A quoted-string without its closing quote.
    #[error("unterminated quoted string starting at byte {at}")]
    UnterminatedQuote { at: usize },
    /// A backslash escaping CR, LF or a non-ASCII byte, which quoted-pair
    /// does not allow (RFC 3261 §25.1).
    #[error("invalid quoted-pair escape at byte {at}")]
    InvalidEscape { at: usize },
    /// A raw control character inside a quoted string (only HTAB, or a
    /// folded line, may appear unescaped).
    #[error("control character inside quoted string at byte {at}")]
    ControlCharacter { at: usize },
    /// A parameter given twice (RFC 7616 §3.4: each MUST appear at most once).
    #[error("duplicate parameter {0:?}")]
    DuplicateParam(String),
    /// A parameter the header requires is absent.
    #[error("missing required parameter {0:?}")]
    MissingParam(&'static str),
    /// `nc` is not exactly 8 lowercase hex digits (RFC 2617 §3.2.2 `8LHEX`).
    #[error("nonce count is not 8 lowercase hex digits")]
    InvalidNonceCount,
    /// `cnonce`/`nc` without `qop`: RFC 2617 §3.2.2 says they MUST NOT be sent
    /// without a qop directive.
    #[error("{0:?} given without qop")]
    UnexpectedWithoutQop(&'static str),
}

/// Why a [`DigestVerifier`](super::DigestVerifier) configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// At least one algorithm must be offered.
    #[error("no digest algorithm configured")]
    NoAlgorithms,
    /// The same algorithm listed twice would produce two identical challenges.
    #[error("digest algorithm {0} configured twice")]
    DuplicateAlgorithm(Algorithm),
    /// The realm contains CR or LF, which cannot be sent in a header.
    #[error("realm contains a line break")]
    InvalidRealm,
    /// The nonce lifetime must be positive and at most a day.
    #[error("nonce lifetime {0:?} out of range (0, 24 h]")]
    InvalidNonceTtl(Duration),
    /// The replay guard needs room for at least one nonce.
    #[error("replay guard capacity must be at least 1")]
    ZeroReplayCapacity,
}
