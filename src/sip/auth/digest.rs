//! The digest computations shared by the verifier and the client:
//! `H(data)` rendered as lowercase hex, and the request-digest of
//! RFC 2617 §3.2.2.1 / RFC 7616 §3.4.1.
//!
//! Everything here works on stack buffers: hashing is fed piecewise and hex
//! output lands in a [`HexDigest`], so verifying a request allocates nothing.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::error::AuthError;

/// A digest algorithm usable for SIP (RFC 3261 §22.4 for MD5, RFC 8760 §2.2
/// for SHA-256). The `-sess` variants are not supported: RFC 8760 §2.5 notes
/// they are not meaningful for SIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the RFC 3261 default when `algorithm` is absent.
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token as written in headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// `H(parts[0] ":" parts[1] ":" ...)` as lowercase hex: the shape of every
    /// digest input in RFC 2617 §3.2.2 (A1, A2 and KD all join fields with
    /// colons).
    pub fn hex_digest(self, parts: &[&[u8]]) -> HexDigest {
        match self {
            Algorithm::Md5 => hash_parts::<Md5>(parts),
            Algorithm::Sha256 => hash_parts::<Sha256>(parts),
        }
    }
}

/// Configuration files list algorithms by their exact header token
/// (`"MD5"`, `"SHA-256"`): unlike in headers, other spellings are refused so
/// that the file reads as what goes on the wire.
impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        [Algorithm::Md5, Algorithm::Sha256]
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &["MD5", "SHA-256"]))
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;

    /// Algorithm tokens are case-insensitive (RFC 7616 §3.3).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(AuthError::UnsupportedAlgorithm(s.to_owned()))
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quality-of-protection value (RFC 2617 §3.2.1). Only `auth` is used by
/// the verifier and the client; `auth-int` is recognised so that it can be
/// parsed and refused explicitly rather than as a syntax error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of the request line only.
    Auth,
    /// `auth-int`: authentication with integrity protection of the body.
    AuthInt,
}

impl Qop {
    /// The token as written in headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

impl FromStr for Qop {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auth") {
            Ok(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Ok(Qop::AuthInt)
        } else {
            Err(AuthError::UnsupportedQop(s.to_owned()))
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A digest rendered as lowercase hex, held inline (64 bytes is enough for
/// SHA-256) so that computing one never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexDigest {
    buf: [u8; 64],
    len: u8,
}

impl HexDigest {
    fn encode(bytes: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let mut len = 0;
        for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
            len += 2;
        }
        HexDigest { buf, len }
    }

    /// The hex digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The hex digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hash_parts<D: Digest>(parts: &[&[u8]]) -> HexDigest {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    HexDigest::encode(&hasher.finalize())
}

/// The `nc` value as sent on the wire: 8 lowercase hex digits
/// (RFC 2617 §3.2.2 `nc-value = 8LHEX`).
pub(crate) fn nonce_count_hex(nc: u32) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, digit) in out.iter_mut().enumerate() {
        let shift = 28 - 4 * i;
        *digit = HEX[((nc >> shift) & 0xf) as usize];
    }
    out
}

/// The client-chosen values that enter the request-digest when `qop=auth`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QopAuth<'a> {
    pub nc: u32,
    pub cnonce: &'a str,
}

/// The request-digest (the `response` parameter), RFC 2617 §3.2.2.1:
///
/// * `qop=auth`: `KD(HA1, nonce ":" nc ":" cnonce ":" "auth" ":" HA2)`
/// * no qop (RFC 2069 compatibility): `KD(HA1, nonce ":" HA2)`
///
/// with `HA2 = H(method ":" digest-uri)` and `KD(s, d) = H(s ":" d)`.
pub(crate) fn request_digest(
    algorithm: Algorithm,
    ha1: &HexDigest,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
) -> HexDigest {
    let ha2 = algorithm.hex_digest(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some(QopAuth { nc, cnonce }) => algorithm.hex_digest(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            &nonce_count_hex(nc),
            cnonce.as_bytes(),
            Qop::Auth.as_str().as_bytes(),
            ha2.as_bytes(),
        ]),
        None => algorithm.hex_digest(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_from_str_is_case_insensitive() -> Result<(), AuthError> {
        assert_eq!("MD5".parse::<Algorithm>()?, Algorithm::Md5);
        assert_eq!("md5".parse::<Algorithm>()?, Algorithm::Md5);
        assert_eq!("SHA-256".parse::<Algorithm>()?, Algorithm::Sha256);
        assert_eq!("sha-256".parse::<Algorithm>()?, Algorithm::Sha256);
        Ok(())
    }

    #[test]
    fn algorithm_rejects_unsupported() {
        for s in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "", "SHA256"] {
            assert_eq!(
                s.parse::<Algorithm>(),
                Err(AuthError::UnsupportedAlgorithm(s.to_owned()))
            );
        }
    }

    #[test]
    fn algorithm_display_round_trips() -> Result<(), AuthError> {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(alg.to_string().parse::<Algorithm>()?, alg);
        }
        assert_eq!(Algorithm::Sha256.to_string(), "SHA-256");
        Ok(())
    }

    #[test]
    fn qop_parse_and_display() -> Result<(), AuthError> {
        assert_eq!("AUTH".parse::<Qop>()?, Qop::Auth);
        assert_eq!("auth-int".parse::<Qop>()?, Qop::AuthInt);
        assert_eq!(Qop::AuthInt.to_string(), "auth-int");
        assert!("auth-conf".parse::<Qop>().is_err());
        Ok(())
    }

    #[test]
    fn hex_digest_matches_known_vectors() {
        // RFC 1321 §A.5 and FIPS 180-2 test vectors.
        assert_eq!(
            Algorithm::Md5.hex_digest(&[b"abc"]).as_str(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Algorithm::Sha256.hex_digest(&[b"abc"]).as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_digest_joins_parts_with_colons() {
        assert_eq!(
            Algorithm::Md5.hex_digest(&[b"a", b"b", b"c"]),
            Algorithm::Md5.hex_digest(&[b"a:b:c"])
        );
        assert_eq!(
            Algorithm::Sha256.hex_digest(&[b"", b""]),
            Algorithm::Sha256.hex_digest(&[b":"])
        );
    }

    #[test]
    fn nonce_count_is_eight_lowercase_hex_digits() {
        assert_eq!(&nonce_count_hex(1), b"00000001");
        assert_eq!(&nonce_count_hex(0xdead_beef), b"deadbeef");
        assert_eq!(&nonce_count_hex(u32::MAX), b"ffffffff");
    }
}
