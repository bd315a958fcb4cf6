//! Stateless nonces (RFC 7616 §3.3 "nonce", §5.4).
//!
//! A nonce is `base64url(secs ‖ random ‖ tag)` where `secs` is the issue time
//! in whole seconds since the issuer's epoch (u64, big-endian), `random` is
//! 64 bits from a CSPRNG and `tag` is HMAC-SHA256(key, secs ‖ random)
//! truncated to 128 bits. Checking a nonce needs only the key, so issuing a
//! challenge stores nothing: a flood of unauthenticated requests costs CPU
//! but never memory.
//!
//! Timestamps are relative to a monotonic [`Instant`] epoch, so nonces do not
//! survive a restart: with a fresh random key they become `Invalid` and the
//! client is simply challenged again.

use std::fmt;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes covered by the MAC: issue seconds and the random value.
const BODY_LEN: usize = 16;
/// Truncated HMAC length; 128 bits keep forgery infeasible (NIST SP 800-107
/// §5.3.4 allows truncation to this size) while keeping the nonce short.
const TAG_LEN: usize = 16;
const RAW_LEN: usize = BODY_LEN + TAG_LEN;
/// `RAW_LEN` bytes in unpadded base64.
const ENCODED_LEN: usize = 43;

/// What identifies an authentic nonce: its issue time and random value. Used
/// as the key of the [`ReplayGuard`](super::ReplayGuard) so that it stores 16
/// bytes per nonce instead of a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceId([u8; BODY_LEN]);

/// A nonce that carries our MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticNonce {
    /// Identity of the nonce, for replay tracking.
    pub id: NonceId,
    /// When it was issued, rounded down to the second.
    pub issued_at: Instant,
}

/// The outcome of [`NonceIssuer::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours and within its lifetime.
    Valid,
    /// Ours but older than the lifetime: the client should retry with a new
    /// nonce (`stale=TRUE`, RFC 7616 §3.3).
    Stale,
    /// Not issued by this issuer, tampered with, or unparseable.
    Invalid,
}

/// Issues and authenticates nonces.
pub struct NonceIssuer {
    /// HMAC keyed once; cloning a keyed state skips re-hashing the key pads on
    /// every nonce.
    mac: HmacSha256,
    epoch: Instant,
    rng: StdRng,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key must never reach a log.
        f.debug_struct("NonceIssuer")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// An issuer with the given HMAC key; nonce times count from `epoch`.
    pub fn new(key: [u8; 32], epoch: Instant) -> Self {
        // RFC 2104 §2: a key shorter than the hash block is zero-padded to the
        // block size, so padding it ourselves gives the same HMAC and lets us
        // use the infallible fixed-size constructor.
        let mut block = [0u8; 64];
        block[..key.len()].copy_from_slice(&key);
        let mac = <HmacSha256 as KeyInit>::new(hmac::digest::Key::<HmacSha256>::from_slice(&block));
        NonceIssuer {
            mac,
            epoch,
            rng: StdRng::from_rng(&mut rand::rng()),
        }
    }

    /// An issuer with a fresh random key.
    pub fn with_random_key(epoch: Instant) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(key, epoch)
    }

    fn tag(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac
    }

    /// A new nonce (43 base64url characters, no padding).
    pub fn issue(&mut self, now: Instant) -> String {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&secs.to_be_bytes());
        raw[8..BODY_LEN].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        let tag = self.tag(&raw[..BODY_LEN]).finalize().into_bytes();
        raw[BODY_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Authenticates `nonce` and recovers its identity and issue time, or
    /// `None` if it is not one of ours. The tag is compared in constant time.
    pub fn inspect(&self, nonce: &str) -> Option<AuthenticNonce> {
        if nonce.len() != ENCODED_LEN {
            return None;
        }
        // Decoding needs a little slack over RAW_LEN for its length estimate.
        let mut buf = [0u8; RAW_LEN + 3];
        let len = URL_SAFE_NO_PAD.decode_slice(nonce, &mut buf).ok()?;
        if len != RAW_LEN {
            return None;
        }
        let (body, tag) = buf[..RAW_LEN].split_at(BODY_LEN);
        self.tag(body).verify_truncated_left(tag).ok()?;
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&body[..8]);
        let issued_at = self
            .epoch
            .checked_add(Duration::from_secs(u64::from_be_bytes(secs)))?;
        let mut id = [0u8; BODY_LEN];
        id.copy_from_slice(body);
        Some(AuthenticNonce {
            id: NonceId(id),
            issued_at,
        })
    }

    /// Classifies `nonce` at `now` for a lifetime of `ttl`.
    ///
    /// Issue times have one-second granularity (rounded down), so a nonce is
    /// accepted until `ttl` has passed since the start of the second it was
    /// issued in, i.e. for at most one second more than `ttl`.
    pub fn check(&self, nonce: &str, now: Instant, ttl: Duration) -> NonceStatus {
        match self.inspect(nonce) {
            None => NonceStatus::Invalid,
            Some(n) => classify(n.issued_at, now, ttl),
        }
    }
}

/// Freshness of an authentic nonce issued at `issued_at`.
pub(crate) fn classify(issued_at: Instant, now: Instant, ttl: Duration) -> NonceStatus {
    match now.checked_duration_since(issued_at) {
        // Issued "after now": not something we handed out by this clock.
        None => NonceStatus::Invalid,
        Some(age) if age > ttl => NonceStatus::Stale,
        Some(_) => NonceStatus::Valid,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn issuer(t0: Instant) -> NonceIssuer {
        NonceIssuer::new([7u8; 32], t0)
    }

    #[test]
    fn padded_key_equals_hmac_of_short_key() {
        let t0 = Instant::now();
        let ours = issuer(t0).tag(b"body").finalize().into_bytes();
        let mut reference = <HmacSha256 as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        reference.update(b"body");
        assert_eq!(ours, reference.finalize().into_bytes());
    }

    #[test]
    fn fresh_nonce_is_valid() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let n = iss.issue(t0 + Duration::from_secs(10));
        assert_eq!(n.len(), ENCODED_LEN);
        assert!(n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            iss.check(&n, t0 + Duration::from_secs(10), TTL),
            NonceStatus::Valid
        );
    }

    #[test]
    fn nonce_goes_stale_after_ttl() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let n = iss.issue(t0 + Duration::from_secs(10));
        assert_eq!(
            iss.check(&n, t0 + Duration::from_secs(310), TTL),
            NonceStatus::Valid
        );
        assert_eq!(
            iss.check(&n, t0 + Duration::from_millis(310_001), TTL),
            NonceStatus::Stale
        );
        assert_eq!(
            iss.check(&n, t0 + Duration::from_secs(100_000), TTL),
            NonceStatus::Stale
        );
    }

    #[test]
    fn issue_time_is_rounded_down_to_the_second() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let n = iss.issue(t0 + Duration::from_millis(10_900));
        let a = iss.inspect(&n).unwrap();
        assert_eq!(a.issued_at, t0 + Duration::from_secs(10));
    }

    #[test]
    fn nonces_are_unique() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let a = iss.issue(t0);
        let b = iss.issue(t0);
        assert_ne!(a, b);
        assert_ne!(iss.inspect(&a).unwrap().id, iss.inspect(&b).unwrap().id);
    }

    #[test]
    fn other_key_is_invalid() {
        let t0 = Instant::now();
        let n = issuer(t0).issue(t0);
        let other = NonceIssuer::new([8u8; 32], t0);
        assert_eq!(other.check(&n, t0, TTL), NonceStatus::Invalid);
        let random = NonceIssuer::with_random_key(t0);
        assert_eq!(random.check(&n, t0, TTL), NonceStatus::Invalid);
    }

    #[test]
    fn any_tampering_is_invalid() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let n = iss.issue(t0 + Duration::from_secs(5));
        let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                raw[i] ^= 1 << bit;
                let forged = URL_SAFE_NO_PAD.encode(&raw);
                assert_eq!(
                    iss.check(&forged, t0 + Duration::from_secs(5), TTL),
                    NonceStatus::Invalid,
                    "byte {i} bit {bit}"
                );
                raw[i] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn garbage_is_invalid() {
        let t0 = Instant::now();
        let iss = issuer(t0);
        for n in [
            "",
            "abc",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            &"A".repeat(ENCODED_LEN),
            &"!".repeat(ENCODED_LEN),
            &"é".repeat(ENCODED_LEN),
            &"A".repeat(ENCODED_LEN + 1),
        ] {
            assert_eq!(iss.check(n, t0, TTL), NonceStatus::Invalid, "{n:?}");
        }
    }

    #[test]
    fn nonce_from_the_future_is_invalid() {
        let t0 = Instant::now();
        let mut iss = issuer(t0);
        let n = iss.issue(t0 + Duration::from_secs(100));
        assert_eq!(
            iss.check(&n, t0 + Duration::from_secs(50), TTL),
            NonceStatus::Invalid
        );
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let t0 = Instant::now();
        let shown = format!("{:?}", NonceIssuer::new([0xab; 32], t0));
        assert!(shown.starts_with("NonceIssuer { epoch: "), "{shown}");
        assert!(!shown.contains("mac") && !shown.contains("rng"), "{shown}");
    }
}
