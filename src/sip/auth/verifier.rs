//! The registrar side: issue challenges and verify credentials
//! (RFC 3261 §22.4, RFC 7616 §3.4-3.5, RFC 8760).

use std::fmt;
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

use super::challenge::Challenge;
use super::credentials::Credentials;
use super::digest::{request_digest, Algorithm, HexDigest, Qop, QopAuth};
use super::error::ConfigError;
use super::nonce::{classify, NonceIssuer, NonceStatus};
use super::replay::{ReplayError, ReplayGuard};

/// A user's password reduced to `HA1 = H(username ":" realm ":" password)`
/// for each algorithm (RFC 2617 §3.2.2.2), computed once when configuration
/// is loaded so that verification never hashes the password.
///
/// HA1 is password-equivalent for this realm: `Debug` does not show it.
#[derive(Clone)]
pub struct UserSecret {
    username: String,
    realm: String,
    ha1_md5: HexDigest,
    ha1_sha256: HexDigest,
}

impl UserSecret {
    /// Derives the HA1 values for `username` in `realm`.
    pub fn new(username: &str, realm: &str, password: &str) -> Self {
        let parts: [&[u8]; 3] = [username.as_bytes(), realm.as_bytes(), password.as_bytes()];
        UserSecret {
            username: username.to_owned(),
            realm: realm.to_owned(),
            ha1_md5: Algorithm::Md5.hex_digest(&parts),
            ha1_sha256: Algorithm::Sha256.hex_digest(&parts),
        }
    }

    /// The user name the secret belongs to.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The realm the HA1 values were computed for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn ha1(&self, algorithm: Algorithm) -> &HexDigest {
        match algorithm {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSecret")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Configuration of a [`DigestVerifier`].
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The realm challenged for and required in credentials.
    pub realm: String,
    /// Algorithms offered, one challenge each, in this order. RFC 8760 §2.4:
    /// list the preferred (SHA-256) first; keep MD5 only for old phones.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays usable; older ones get `stale=TRUE`.
    pub nonce_ttl: Duration,
    /// Nonce HMAC key; `None` draws a random one (the right choice in
    /// production). A fixed key is for reproducible tests and benchmarks:
    /// nonce times count from a per-process `Instant`, so reusing a key across
    /// restarts would let nonces from the previous run pass as fresh while the
    /// replay guard, which starts empty, has no record of their counts.
    pub key: Option<[u8; 32]>,
    /// Most nonces tracked for replay protection at once (see
    /// [`ReplayGuard`]); size it for the number of clients expected to hold a
    /// live nonce within one `nonce_ttl`.
    pub replay_capacity: usize,
}

/// The longest nonce lifetime accepted in configuration. Longer lifetimes
/// widen the window in which a captured nonce is useful, for no benefit.
const MAX_NONCE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Outcome of [`DigestVerifier::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Ok,
    /// The digest is right but the nonce expired (or is no longer tracked):
    /// challenge again with `stale=TRUE`. Not a failed attempt.
    Stale,
    /// Refused; counts as a failed attempt.
    Failed(FailReason),
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The realm is not ours.
    RealmMismatch,
    /// The algorithm is not one we offer.
    UnsupportedAlgorithm,
    /// No `qop=auth` with `cnonce` and `nc`: we require it so that nonce
    /// counts protect against replay.
    QopRequired,
    /// The nonce was not issued by us or was tampered with.
    InvalidNonce,
    /// Unknown user or wrong password: deliberately one reason, so that the
    /// answer does not reveal which user names exist.
    BadCredentials,
    /// The nonce count was already used (RFC 7616 §3.4).
    Replayed,
}

/// Issues digest challenges and verifies credentials. Sans-IO: the caller
/// supplies `now`, and looks up the [`UserSecret`] by `creds.username`.
#[derive(Debug)]
pub struct DigestVerifier {
    realm: String,
    algorithms: Vec<Algorithm>,
    nonce_ttl: Duration,
    nonces: NonceIssuer,
    replay: ReplayGuard,
    /// Random HA1s used when the user is unknown, so that path does exactly
    /// the work of a wrong password.
    decoy: UserSecret,
}

impl DigestVerifier {
    /// Builds a verifier whose nonce clock starts at `now`.
    pub fn new(config: VerifierConfig, now: Instant) -> Result<Self, ConfigError> {
        if config.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        for (i, a) in config.algorithms.iter().enumerate() {
            if config.algorithms[..i].contains(a) {
                return Err(ConfigError::DuplicateAlgorithm(*a));
            }
        }
        if config.realm.contains(['\r', '\n']) {
            return Err(ConfigError::InvalidRealm);
        }
        if config.nonce_ttl.is_zero() || config.nonce_ttl > MAX_NONCE_TTL {
            return Err(ConfigError::InvalidNonceTtl(config.nonce_ttl));
        }
        if config.replay_capacity == 0 {
            return Err(ConfigError::ZeroReplayCapacity);
        }
        let nonces = match config.key {
            Some(key) => NonceIssuer::new(key, now),
            None => NonceIssuer::with_random_key(now),
        };
        let mut decoy_password = [0u8; 32];
        rand::rng().fill_bytes(&mut decoy_password);
        let decoy_password = Algorithm::Sha256.hex_digest(&[&decoy_password]);
        Ok(DigestVerifier {
            decoy: UserSecret::new("", &config.realm, decoy_password.as_str()),
            realm: config.realm,
            algorithms: config.algorithms,
            nonce_ttl: config.nonce_ttl,
            nonces,
            replay: ReplayGuard::new(config.replay_capacity),
        })
    }

    /// The realm challenged for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Challenges for a 401/407: one per configured algorithm, in order, all
    /// sharing one fresh nonce (RFC 8760 §2.4: a server offering several
    /// algorithms sends one challenge each). `stale` tells the client that
    /// only its nonce was out of date.
    pub fn challenges(&mut self, now: Instant, stale: bool) -> Vec<Challenge> {
        let nonce = self.nonces.issue(now);
        self.algorithms
            .iter()
            .map(|&algorithm| Challenge {
                realm: self.realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop: vec![Qop::Auth],
                stale,
            })
            .collect()
    }

    /// Verifies `creds` sent with a request of `method`. `secret` is the
    /// stored secret for `creds.username`, or `None` if there is no such
    /// user. The caller must also check [`Credentials::uri_matches`] against
    /// the Request-URI.
    ///
    /// The order of checks matters:
    /// * checks that do not depend on the user come first and are cheap;
    /// * the digest is computed the same way for unknown users (with a decoy
    ///   HA1) and compared in constant time, so neither the verdict nor the
    ///   timing tells whether a user exists;
    /// * `Stale` is only answered when the digest is right for the stale nonce
    ///   (RFC 7616 §3.3 "stale"), otherwise stale nonces would give an
    ///   attacker free password guesses that never count as failures;
    /// * the nonce count is recorded only after the digest is verified, so an
    ///   attacker cannot burn a legitimate client's counts.
    pub fn verify(
        &mut self,
        now: Instant,
        method: &str,
        creds: &Credentials,
        secret: Option<&UserSecret>,
    ) -> Verdict {
        if creds.realm != self.realm {
            return Verdict::Failed(FailReason::RealmMismatch);
        }
        if !self.algorithms.contains(&creds.algorithm) {
            return Verdict::Failed(FailReason::UnsupportedAlgorithm);
        }
        let (Some(Qop::Auth), Some(cnonce), Some(nc)) =
            (creds.qop, creds.cnonce.as_deref(), creds.nc)
        else {
            return Verdict::Failed(FailReason::QopRequired);
        };
        let Some(nonce) = self.nonces.inspect(&creds.nonce) else {
            return Verdict::Failed(FailReason::InvalidNonce);
        };
        let freshness = classify(nonce.issued_at, now, self.nonce_ttl);
        let Some(expires) = nonce.issued_at.checked_add(self.nonce_ttl) else {
            return Verdict::Failed(FailReason::InvalidNonce);
        };
        if freshness == NonceStatus::Invalid {
            return Verdict::Failed(FailReason::InvalidNonce);
        }

        let known = secret.filter(|s| s.username == creds.username);
        let ha1 = known.unwrap_or(&self.decoy).ha1(creds.algorithm);
        let expected = request_digest(
            creds.algorithm,
            ha1,
            method,
            &creds.uri,
            &creds.nonce,
            Some(QopAuth { nc, cnonce }),
        );
        if !(response_matches(&expected, &creds.response) && known.is_some()) {
            return Verdict::Failed(FailReason::BadCredentials);
        }
        if freshness == NonceStatus::Stale {
            return Verdict::Stale;
        }
        match self.replay.accept(now, nonce.id, expires, nc) {
            Ok(()) => Verdict::Ok,
            Err(ReplayError::Replayed { .. }) => Verdict::Failed(FailReason::Replayed),
            // The guard cannot vouch for this nonce any more; a new nonce
            // fixes that without bothering the user.
            Err(ReplayError::Forgotten) => Verdict::Stale,
        }
    }
}

/// Constant-time comparison of the expected digest with the client's
/// `response`. Hex case is folded (some clients send uppercase although
/// RFC 2617 says `32LHEX`); only the length, which is public, can end the
/// comparison early.
fn response_matches(expected: &HexDigest, response: &str) -> bool {
    let expected = expected.as_bytes();
    let given = response.as_bytes();
    if given.len() != expected.len() {
        return false;
    }
    let mut folded = [0u8; 64];
    for (dst, src) in folded.iter_mut().zip(given) {
        *dst = src.to_ascii_lowercase();
    }
    bool::from(folded[..given.len()].ct_eq(expected))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sip::auth::client::respond;

    const TTL: Duration = Duration::from_secs(300);
    const URI: &str = "sip:switchboard.example";

    fn config(algorithms: Vec<Algorithm>) -> VerifierConfig {
        VerifierConfig {
            realm: "switchboard".into(),
            algorithms,
            nonce_ttl: TTL,
            key: Some([42; 32]),
            replay_capacity: 100,
        }
    }

    fn verifier(t0: Instant) -> DigestVerifier {
        DigestVerifier::new(config(vec![Algorithm::Sha256, Algorithm::Md5]), t0).unwrap()
    }

    fn alice() -> UserSecret {
        UserSecret::new("alice", "switchboard", "s3cret")
    }

    /// Credentials from a phone that knows `password`, answering the
    /// challenge for `algorithm`.
    fn answer(
        v: &mut DigestVerifier,
        now: Instant,
        algorithm: Algorithm,
        password: &str,
        nc: u32,
    ) -> Credentials {
        let ch = v
            .challenges(now, false)
            .into_iter()
            .find(|c| c.algorithm == algorithm)
            .unwrap();
        respond(&ch, "REGISTER", URI, "alice", password, "0a4f113b", nc).unwrap()
    }

    #[test]
    fn challenges_share_one_nonce_in_configured_order() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let cs = v.challenges(t0, false);
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].algorithm, Algorithm::Sha256);
        assert_eq!(cs[1].algorithm, Algorithm::Md5);
        assert_eq!(cs[0].nonce, cs[1].nonce);
        for c in &cs {
            assert_eq!(c.realm, "switchboard");
            assert_eq!(c.qop, vec![Qop::Auth]);
            assert!(!c.stale);
            assert_eq!(c.opaque, None);
        }
        assert!(v.challenges(t0, true).iter().all(|c| c.stale));
        assert_ne!(v.challenges(t0, false)[0].nonce, cs[0].nonce);
    }

    #[test]
    fn correct_password_is_accepted_with_each_algorithm() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let creds = answer(&mut v, t0, alg, "s3cret", 1);
            assert_eq!(
                v.verify(
                    t0 + Duration::from_secs(1),
                    "REGISTER",
                    &creds,
                    Some(&alice())
                ),
                Verdict::Ok,
                "{alg}"
            );
        }
    }

    #[test]
    fn credentials_survive_the_header_round_trip() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let creds = answer(&mut v, t0, Algorithm::Sha256, "s3cret", 1);
        let parsed = Credentials::parse(&creds.to_header_value()).unwrap();
        assert_eq!(
            v.verify(t0, "REGISTER", &parsed, Some(&alice())),
            Verdict::Ok
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let wrong = answer(&mut v, t0, Algorithm::Md5, "guess", 1);
        assert_eq!(
            v.verify(t0, "REGISTER", &wrong, Some(&alice())),
            Verdict::Failed(FailReason::BadCredentials)
        );
        let right = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        assert_eq!(
            v.verify(t0, "REGISTER", &right, None),
            Verdict::Failed(FailReason::BadCredentials)
        );
        // A secret looked up for another name is no secret for this one.
        let bob = UserSecret::new("bob", "switchboard", "s3cret");
        assert_eq!(
            v.verify(t0, "REGISTER", &right, Some(&bob)),
            Verdict::Failed(FailReason::BadCredentials)
        );
    }

    #[test]
    fn decoy_digest_does_not_authenticate_anyone() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        // Even credentials computed with the decoy's own HA1 fail, because
        // no user was found.
        let ch = &v.challenges(t0, false)[0];
        let ha1 = *v.decoy.ha1(ch.algorithm);
        let response = request_digest(
            ch.algorithm,
            &ha1,
            "REGISTER",
            URI,
            &ch.nonce,
            Some(QopAuth { nc: 1, cnonce: "c" }),
        );
        let creds = Credentials {
            username: String::new(),
            realm: ch.realm.clone(),
            nonce: ch.nonce.clone(),
            uri: URI.into(),
            response: response.as_str().into(),
            algorithm: ch.algorithm,
            cnonce: Some("c".into()),
            nc: Some(1),
            qop: Some(Qop::Auth),
            opaque: None,
        };
        assert_eq!(
            v.verify(t0, "REGISTER", &creds, None),
            Verdict::Failed(FailReason::BadCredentials)
        );
    }

    fn flip_first_digit(hex: &str) -> String {
        let first = if hex.starts_with('0') { "1" } else { "0" };
        format!("{first}{}", &hex[1..])
    }

    #[test]
    fn any_tampering_with_signed_fields_fails() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let good = answer(&mut v, t0, Algorithm::Sha256, "s3cret", 1);
        let tampered: Vec<(&str, Credentials)> = vec![
            (
                "uri",
                Credentials {
                    uri: "sip:other.example".into(),
                    ..good.clone()
                },
            ),
            (
                "cnonce",
                Credentials {
                    cnonce: Some("0a4f113c".into()),
                    ..good.clone()
                },
            ),
            (
                "nc",
                Credentials {
                    nc: Some(2),
                    ..good.clone()
                },
            ),
            (
                "response",
                Credentials {
                    response: flip_first_digit(&good.response),
                    ..good.clone()
                },
            ),
            (
                "response length",
                Credentials {
                    response: good.response[..63].into(),
                    ..good.clone()
                },
            ),
        ];
        for (what, creds) in tampered {
            assert_eq!(
                v.verify(t0, "REGISTER", &creds, Some(&alice())),
                Verdict::Failed(FailReason::BadCredentials),
                "{what}"
            );
        }
        assert_eq!(
            v.verify(t0, "INVITE", &good, Some(&alice())),
            Verdict::Failed(FailReason::BadCredentials),
            "method"
        );
        // Failed attempts did not burn the count: the genuine request passes.
        assert_eq!(v.verify(t0, "REGISTER", &good, Some(&alice())), Verdict::Ok);
    }

    #[test]
    fn uppercase_hex_response_is_accepted() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let mut creds = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        creds.response = creds.response.to_ascii_uppercase();
        assert_eq!(
            v.verify(t0, "REGISTER", &creds, Some(&alice())),
            Verdict::Ok
        );
    }

    #[test]
    fn wrong_realm_fails() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let mut creds = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        creds.realm = "other".into();
        assert_eq!(
            v.verify(t0, "REGISTER", &creds, Some(&alice())),
            Verdict::Failed(FailReason::RealmMismatch)
        );
    }

    #[test]
    fn algorithm_not_offered_fails() {
        let t0 = Instant::now();
        let mut only_sha = DigestVerifier::new(config(vec![Algorithm::Sha256]), t0).unwrap();
        let ch = Challenge {
            algorithm: Algorithm::Md5,
            ..only_sha.challenges(t0, false).remove(0)
        };
        let creds = respond(&ch, "REGISTER", URI, "alice", "s3cret", "c", 1).unwrap();
        assert_eq!(
            only_sha.verify(t0, "REGISTER", &creds, Some(&alice())),
            Verdict::Failed(FailReason::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn qop_auth_with_cnonce_and_nc_is_required() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let good = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        // The RFC 2069 form, correctly computed by the client, still fails.
        let legacy_challenge = Challenge {
            qop: vec![],
            ..v.challenges(t0, false)[1].clone()
        };
        let legacy = respond(
            &legacy_challenge,
            "REGISTER",
            URI,
            "alice",
            "s3cret",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(legacy.qop, None);
        let cases = [
            legacy,
            Credentials {
                qop: Some(Qop::AuthInt),
                ..good.clone()
            },
            Credentials {
                cnonce: None,
                ..good.clone()
            },
            Credentials {
                nc: None,
                ..good.clone()
            },
        ];
        for creds in cases {
            assert_eq!(
                v.verify(t0, "REGISTER", &creds, Some(&alice())),
                Verdict::Failed(FailReason::QopRequired),
                "{creds:?}"
            );
        }
    }

    #[test]
    fn foreign_or_forged_nonce_is_invalid() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let mut other = DigestVerifier::new(
            VerifierConfig {
                key: None,
                ..config(vec![Algorithm::Md5])
            },
            t0,
        )
        .unwrap();
        let foreign = answer(&mut other, t0, Algorithm::Md5, "s3cret", 1);
        assert_eq!(
            v.verify(t0, "REGISTER", &foreign, Some(&alice())),
            Verdict::Failed(FailReason::InvalidNonce)
        );
        let mut forged = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        forged.nonce.replace_range(
            ..1,
            if forged.nonce.starts_with('A') {
                "B"
            } else {
                "A"
            },
        );
        assert_eq!(
            v.verify(t0, "REGISTER", &forged, Some(&alice())),
            Verdict::Failed(FailReason::InvalidNonce)
        );
    }

    #[test]
    fn expired_nonce_with_right_digest_is_stale() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let creds = answer(&mut v, t0, Algorithm::Sha256, "s3cret", 1);
        let late = t0 + TTL + Duration::from_secs(2);
        assert_eq!(
            v.verify(late, "REGISTER", &creds, Some(&alice())),
            Verdict::Stale
        );
        // Retrying with a fresh nonce works.
        let retry = answer(&mut v, late, Algorithm::Sha256, "s3cret", 1);
        assert_eq!(
            v.verify(late, "REGISTER", &retry, Some(&alice())),
            Verdict::Ok
        );
    }

    #[test]
    fn expired_nonce_with_wrong_digest_is_a_failure() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let creds = answer(&mut v, t0, Algorithm::Sha256, "guess", 1);
        let late = t0 + TTL + Duration::from_secs(2);
        assert_eq!(
            v.verify(late, "REGISTER", &creds, Some(&alice())),
            Verdict::Failed(FailReason::BadCredentials)
        );
        assert_eq!(
            v.verify(late, "REGISTER", &creds, None),
            Verdict::Failed(FailReason::BadCredentials)
        );
    }

    #[test]
    fn nonce_is_valid_through_its_ttl() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let creds = answer(&mut v, t0, Algorithm::Md5, "s3cret", 1);
        assert_eq!(
            v.verify(t0 + TTL, "REGISTER", &creds, Some(&alice())),
            Verdict::Ok
        );
    }

    #[test]
    fn replayed_request_fails_and_next_count_passes() {
        let t0 = Instant::now();
        let mut v = verifier(t0);
        let ch = v.challenges(t0, false).remove(0);
        let first = respond(&ch, "REGISTER", URI, "alice", "s3cret", "c", 1).unwrap();
        assert_eq!(
            v.verify(t0, "REGISTER", &first, Some(&alice())),
            Verdict::Ok
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            v.verify(later, "REGISTER", &first, Some(&alice())),
            Verdict::Failed(FailReason::Replayed)
        );
        let second = respond(&ch, "REGISTER", URI, "alice", "s3cret", "c", 2).unwrap();
        assert_eq!(
            v.verify(later, "REGISTER", &second, Some(&alice())),
            Verdict::Ok
        );
        assert_eq!(
            v.verify(later, "REGISTER", &first, Some(&alice())),
            Verdict::Failed(FailReason::Replayed)
        );
    }

    #[test]
    fn nonce_evicted_from_full_replay_guard_is_stale() {
        let t0 = Instant::now();
        let mut v = DigestVerifier::new(
            VerifierConfig {
                replay_capacity: 2,
                ..config(vec![Algorithm::Md5])
            },
            t0,
        )
        .unwrap();
        let oldest = v.challenges(t0, false).remove(0);
        let first = respond(&oldest, "REGISTER", URI, "alice", "s3cret", "c", 1).unwrap();
        assert_eq!(
            v.verify(t0, "REGISTER", &first, Some(&alice())),
            Verdict::Ok
        );
        // Two younger nonces in use push the oldest out of the guard.
        for s in 1..3 {
            let t = t0 + Duration::from_secs(s);
            let creds = answer(&mut v, t, Algorithm::Md5, "s3cret", 1);
            assert_eq!(v.verify(t, "REGISTER", &creds, Some(&alice())), Verdict::Ok);
        }
        // Its next count cannot be vouched for: a new nonce is requested,
        // which is not a failure.
        let t = t0 + Duration::from_secs(3);
        let next = respond(&oldest, "REGISTER", URI, "alice", "s3cret", "c", 2).unwrap();
        assert_eq!(
            v.verify(t, "REGISTER", &next, Some(&alice())),
            Verdict::Stale
        );
        // And neither is a replay of its first request.
        assert_eq!(
            v.verify(t, "REGISTER", &first, Some(&alice())),
            Verdict::Stale
        );
    }

    #[test]
    fn rejects_bad_configuration() {
        let t0 = Instant::now();
        let err = |c: VerifierConfig| DigestVerifier::new(c, t0).err();
        assert_eq!(err(config(vec![])), Some(ConfigError::NoAlgorithms));
        assert_eq!(
            err(config(vec![
                Algorithm::Md5,
                Algorithm::Sha256,
                Algorithm::Md5
            ])),
            Some(ConfigError::DuplicateAlgorithm(Algorithm::Md5))
        );
        assert_eq!(
            err(VerifierConfig {
                realm: "a\r\nVia: x".into(),
                ..config(vec![Algorithm::Md5])
            }),
            Some(ConfigError::InvalidRealm)
        );
        assert_eq!(
            err(VerifierConfig {
                replay_capacity: 0,
                ..config(vec![Algorithm::Md5])
            }),
            Some(ConfigError::ZeroReplayCapacity)
        );
        for ttl in [Duration::ZERO, MAX_NONCE_TTL + Duration::from_secs(1)] {
            assert_eq!(
                err(VerifierConfig {
                    nonce_ttl: ttl,
                    ..config(vec![Algorithm::Md5])
                }),
                Some(ConfigError::InvalidNonceTtl(ttl))
            );
        }
    }

    #[test]
    fn user_secret_precomputes_ha1_and_hides_it() {
        let s = UserSecret::new("Mufasa", "testrealm@host.com", "Circle Of Life");
        // RFC 2617 §3.5 HA1.
        assert_eq!(
            s.ha1(Algorithm::Md5).as_str(),
            "939e7578ed9e3c518a452acee763bce9"
        );
        assert_eq!(s.username(), "Mufasa");
        assert_eq!(s.realm(), "testrealm@host.com");
        let shown = format!("{s:?}");
        assert!(!shown.contains("939e7578"), "{shown}");
        assert!(
            !shown.contains(s.ha1(Algorithm::Sha256).as_str()),
            "{shown}"
        );
    }

    #[test]
    fn response_comparison() {
        let d = Algorithm::Md5.hex_digest(&[b"x"]);
        assert!(response_matches(&d, d.as_str()));
        assert!(response_matches(&d, &d.as_str().to_ascii_uppercase()));
        assert!(!response_matches(&d, &d.as_str()[1..]));
        assert!(!response_matches(&d, ""));
        assert!(!response_matches(&d, &format!("{}0", d.as_str())));
        let flipped = flip_first_digit(d.as_str());
        assert!(!response_matches(&d, &flipped));
    }
}
