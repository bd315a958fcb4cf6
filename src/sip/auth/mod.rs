//! SIP digest authentication (RFC 3261 §22; RFC 2617 and RFC 7616 for the
//! header grammar and computations; RFC 8760 for SHA-256), sans-IO.
//!
//! * Registrar side: [`DigestVerifier`] issues [`Challenge`]s and verifies
//!   [`Credentials`] against a [`UserSecret`]. Nonces are stateless
//!   ([`NonceIssuer`]); nonce counts are tracked in a bounded
//!   [`ReplayGuard`]. We require `qop=auth`.
//! * Client side: [`respond`] answers a carrier's challenge; [`ClientAuth`]
//!   keeps the challenges of one client exchange (a registration, an INVITE)
//!   and answers them in its next request.
//! * [`FailureLimiter`] blocks sources that keep failing.
//!
//! Typical registrar flow for a request from `ip`:
//!
//! 1. `limiter.is_blocked(now, ip)`: drop or refuse without further work.
//! 2. No `Authorization`: answer 401 with `verifier.challenges(now, false)`
//!    (one `WWW-Authenticate` per challenge).
//! 3. Otherwise [`Credentials::parse`] (malformed: 400), check
//!    [`Credentials::uri_matches`] against the Request-URI, look up the
//!    user's secret, then `verifier.verify(..)`:
//!    `Ok` → `limiter.record_success(ip)`; `Stale` → 401 with
//!    `challenges(now, true)`; `Failed(_)` → `limiter.record_failure(now, ip)`
//!    and 401 (or 403).

mod answer;
mod challenge;
mod client;
mod credentials;
mod digest;
mod error;
mod limiter;
mod nonce;
mod params;
mod replay;
mod verifier;

pub use answer::{ChallengeError, Challenger, ClientAuth};
pub use challenge::Challenge;
pub use client::respond;
pub use credentials::Credentials;
pub use digest::{Algorithm, HexDigest, Qop};
pub use error::{AuthError, ConfigError, Malformed};
pub use limiter::FailureLimiter;
pub use nonce::{AuthenticNonce, NonceId, NonceIssuer, NonceStatus};
pub use replay::{ReplayError, ReplayGuard};
pub use verifier::{DigestVerifier, FailReason, UserSecret, Verdict, VerifierConfig};
