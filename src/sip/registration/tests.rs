//! Registration scenarios on a virtual clock, against a carrier that
//! authenticates with our own `DigestVerifier`, so that the credentials we
//! send are checked by the server side of the same code base.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::*;
use crate::config::Secret;
use crate::sip::auth::{
    Algorithm, AuthError, Credentials, DigestVerifier, UserSecret, Verdict, VerifierConfig,
};
use crate::sip::message::{parse, CallId, Host, Message, SipUri, Via};

const REALM: &str = "carrier.example";
const CONTACT: &str = "<sip:4420@192.0.2.10:5060>";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sip(s: &str) -> SipUri {
    match s.parse::<Uri>() {
        Ok(Uri::Sip(u)) => u,
        other => panic!("{s}: {other:?}"),
    }
}

fn config(expires: u64) -> RegistrationConfig {
    let mut via = Via::new("UDP", Host::Ip([192, 0, 2, 10].into()), Some(5060), "x");
    via.params.set("rport", None);
    RegistrationConfig {
        trunk: "carrier".into(),
        registrar: sip("sip:sip.carrier.example"),
        aor: sip("sip:4420@sip.carrier.example"),
        // The endpoint's `expires` parameter is dropped.
        contact: NameAddr::parse(&format!("{CONTACT};expires=99")).unwrap(),
        auth_username: "4420".into(),
        password: Secret::new("s3cret"),
        expires: secs(expires),
        call_id: CallId::new("reg-1@192.0.2.10"),
        from_tag: "ft-1".into(),
        via,
    }
}

/// Deterministic tokens: t1, t2, ...
fn counter() -> TokenSource {
    let mut n = 0u32;
    Box::new(move || {
        n += 1;
        format!("t{n}")
    })
}

fn start(t0: Instant, expires: u64) -> TrunkRegistration {
    TrunkRegistration::new(config(expires), counter(), t0)
}

fn events(reg: &mut TrunkRegistration) -> Vec<RegistrationEvent> {
    std::iter::from_fn(|| reg.poll_event()).collect()
}

fn expires_of(req: &Request) -> u32 {
    req.headers
        .get(&HeaderName::Expires)
        .unwrap()
        .parse()
        .unwrap()
}

fn credentials(req: &Request, header: HeaderName) -> Credentials {
    Credentials::parse(req.headers.get(&header).unwrap()).unwrap()
}

/// A response to `req` with extra headers.
fn reply(req: &Request, status: u16, headers: &[(HeaderName, &str)]) -> Response {
    let mut r = req.response(status, Some("srv"));
    for (name, value) in headers {
        r.headers.push(name.clone(), *value);
    }
    r
}

/// A 200 listing `contacts` (with their parameters).
fn ok_listing(req: &Request, contacts: &[&str], headers: &[(HeaderName, &str)]) -> Response {
    let mut r = reply(req, 200, headers);
    r.headers.contact = Contacts::List(
        contacts
            .iter()
            .map(|c| NameAddr::parse(c).unwrap())
            .collect(),
    );
    r
}

fn challenge(nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=TRUE" } else { "" };
    format!(r#"Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"{stale}"#)
}

/// A carrier registrar: digest authentication by `DigestVerifier`, then a
/// 200 listing our contact with the lifetime asked for (or `grant`).
struct Carrier {
    verifier: DigestVerifier,
    secret: UserSecret,
    /// Challenge as a proxy (407) rather than as the registrar (401).
    proxy: bool,
    grant: Option<u32>,
}

impl Carrier {
    fn new(now: Instant, password: &str, key: u8) -> Carrier {
        let verifier = DigestVerifier::new(
            VerifierConfig {
                realm: REALM.into(),
                // SHA-256 first, as RFC 8760 §2.4 recommends.
                algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                nonce_ttl: secs(2 * 3600),
                key: Some([key; 32]),
                replay_capacity: 100,
            },
            now,
        )
        .unwrap();
        Carrier {
            verifier,
            secret: UserSecret::new("4420", REALM, password),
            proxy: false,
            grant: None,
        }
    }

    fn answer(&mut self, now: Instant, req: &Request) -> Response {
        let (status, challenge_header, credentials_header) = if self.proxy {
            (
                407,
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        } else {
            (401, HeaderName::WwwAuthenticate, HeaderName::Authorization)
        };
        let verdict = req.headers.get(&credentials_header).map(|value| {
            let creds = Credentials::parse(value).unwrap();
            assert!(creds.uri_matches(&req.uri.to_string()), "{}", creds.uri);
            self.verifier
                .verify(now, "REGISTER", &creds, Some(&self.secret))
        });
        let stale = match verdict {
            Some(Verdict::Ok) => {
                let asked = expires_of(req);
                let mut r = req.response(200, Some("srv"));
                if asked > 0 {
                    let mut contact = req.headers.contact.first().unwrap().clone();
                    let granted = self.grant.unwrap_or(asked);
                    contact.params.set("expires", Some(granted.to_string()));
                    r.headers.contact = Contacts::List(vec![contact]);
                }
                return r;
            }
            Some(Verdict::Stale) => true,
            _ => false,
        };
        let mut r = req.response(status, Some("srv"));
        for c in self.verifier.challenges(now, stale) {
            r.headers
                .push(challenge_header.clone(), c.to_header_value());
        }
        r
    }
}

/// Registers through the carrier's challenge at `now`.
fn register(reg: &mut TrunkRegistration, carrier: &mut Carrier, now: Instant) {
    let first = reg.poll_request(now).unwrap();
    let challenged = carrier.answer(now, &first);
    assert_eq!(challenged.status, 401);
    reg.on_response(now, &challenged);
    let second = reg.poll_request(now).unwrap();
    let ok = carrier.answer(now, &second);
    assert_eq!(ok.status, 200);
    reg.on_response(now, &ok);
    assert!(matches!(reg.state(), RegistrationState::Registered { .. }));
    events(reg);
}

#[test]
fn registers_through_a_challenge_and_refreshes_before_expiry() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "s3cret", 1);
    let mut reg = start(t0, 3600);
    assert_eq!(reg.poll_timeout(), Some(t0));

    let r1 = reg.poll_request(t0).unwrap();
    assert_eq!(r1.headers.get(&HeaderName::Authorization), None);
    // One request at a time (RFC 3261 §10.2).
    assert_eq!(reg.poll_request(t0), None);
    assert_eq!(reg.poll_timeout(), None);

    let t1 = t0 + Duration::from_millis(80);
    reg.on_response(t1, &carrier.answer(t1, &r1));
    let r2 = reg.poll_request(t1).unwrap();
    let c2 = credentials(&r2, HeaderName::Authorization);
    // The topmost challenge we support: SHA-256.
    assert_eq!((c2.algorithm, c2.nc), (Algorithm::Sha256, Some(1)));
    assert_eq!(c2.uri, "sip:sip.carrier.example");
    let ok = carrier.answer(t1, &r2);
    assert_eq!(ok.status, 200, "the verifier accepts our credentials");

    let t2 = t1 + Duration::from_millis(80);
    reg.on_response(t2, &ok);
    // Counted from when the REGISTER left: the binding started later.
    assert_eq!(
        reg.state(),
        &RegistrationState::Registered {
            until: t1 + secs(3600)
        }
    );
    let refresh_at = t1 + secs(3540);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Registered {
            trunk: "carrier".into(),
            expires: secs(3600),
            refresh_at,
            renewed: false,
        }]
    );
    assert_eq!(reg.poll_timeout(), Some(refresh_at));
    assert_eq!(
        reg.poll_request(refresh_at - Duration::from_millis(1)),
        None
    );

    // The refresh reuses the nonce with the next count: no new challenge.
    let r3 = reg.poll_request(refresh_at).unwrap();
    let c3 = credentials(&r3, HeaderName::Authorization);
    assert_eq!(c3.nonce, c2.nonce);
    assert_eq!(c3.nc, Some(2));
    assert_ne!(c3.cnonce, c2.cnonce);
    let ok = carrier.answer(refresh_at, &r3);
    assert_eq!(ok.status, 200);
    reg.on_response(refresh_at, &ok);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Registered {
            trunk: "carrier".into(),
            expires: secs(3600),
            refresh_at: refresh_at + secs(3540),
            renewed: true,
        }]
    );
}

#[test]
fn granted_expiry_shorter_than_asked_is_used() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    assert_eq!(expires_of(&r1), 3600);
    // Our contact's parameter wins over another binding's and the header.
    reg.on_response(
        t0,
        &ok_listing(
            &r1,
            &[
                "<sip:other@198.51.100.1>;expires=3000",
                &format!("{CONTACT};expires=60"),
            ],
            &[(HeaderName::Expires, "1800")],
        ),
    );
    assert_eq!(
        reg.state(),
        &RegistrationState::Registered {
            until: t0 + secs(60)
        }
    );
    // Short lifetimes are refreshed at half-time.
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(30)));
    let r2 = reg.poll_request(t0 + secs(30)).unwrap();
    // We keep asking for what we want; the registrar decides.
    assert_eq!(expires_of(&r2), 3600);
}

#[test]
fn granted_expiry_falls_back_to_expires_header_then_request() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    // Our contact is not listed: the Expires header tells.
    reg.on_response(
        t0,
        &ok_listing(
            &r1,
            &["<sip:other@198.51.100.1>;expires=3000"],
            &[(HeaderName::Expires, "1800")],
        ),
    );
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(1740)));

    let t1 = t0 + secs(1740);
    let r2 = reg.poll_request(t1).unwrap();
    // Neither: what we asked for.
    reg.on_response(t1, &reply(&r2, 200, &[]));
    assert_eq!(
        reg.state(),
        &RegistrationState::Registered {
            until: t1 + secs(3600)
        }
    );
}

#[test]
fn zero_lifetime_in_a_200_is_a_failure() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.on_response(
        t0,
        &ok_listing(&r1, &[&format!("{CONTACT};expires=0")], &[]),
    );
    assert!(matches!(
        reg.state(),
        RegistrationState::Failed {
            reason: Failure::NotBound,
            ..
        }
    ));
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let t0 = Instant::now();
    let mut reg = start(t0, 60);
    let r1 = reg.poll_request(t0).unwrap();
    assert_eq!(expires_of(&r1), 60);
    reg.on_response(t0, &reply(&r1, 423, &[(HeaderName::MinExpires, "300")]));
    // At once, with the registrar's minimum (RFC 3261 §10.2.8).
    let r2 = reg.poll_request(t0).unwrap();
    assert_eq!(expires_of(&r2), 300);
    assert_eq!(r2.headers.cseq.seq, 2);
    reg.on_response(t0, &reply(&r2, 200, &[]));
    assert_eq!(
        reg.state(),
        &RegistrationState::Registered {
            until: t0 + secs(300)
        }
    );
    // And from then on.
    let r3 = reg.poll_request(t0 + secs(240)).unwrap();
    assert_eq!(expires_of(&r3), 300);
}

#[test]
fn interval_too_brief_without_a_higher_minimum_fails() {
    let t0 = Instant::now();
    for min in [None, Some("60"), Some("30"), Some("soon")] {
        let mut reg = start(t0, 60);
        let r1 = reg.poll_request(t0).unwrap();
        let headers: Vec<(HeaderName, &str)> =
            min.iter().map(|m| (HeaderName::MinExpires, *m)).collect();
        reg.on_response(t0, &reply(&r1, 423, &headers));
        assert!(
            matches!(
                reg.state(),
                RegistrationState::Failed {
                    reason: Failure::BadMinExpires { asked: 60 },
                    ..
                }
            ),
            "{min:?}: {:?}",
            reg.state()
        );
        assert_eq!(reg.poll_request(t0), None);
    }
}

/// The delay before the retry that a failure at `now` scheduled.
fn retry_delay(reg: &TrunkRegistration, now: Instant) -> Duration {
    match reg.state() {
        RegistrationState::Failed { retry_at, .. } => *retry_at - now,
        other => panic!("not failed: {other:?}"),
    }
}

/// `delay` is the doubling backoff's `bound` less at most 20 % jitter.
fn assert_backoff(delay: Duration, bound: u64) {
    let bound = secs(bound);
    assert!(
        delay <= bound && delay >= bound * 4 / 5,
        "{delay:?} not in the window of {bound:?}"
    );
}

#[test]
fn wrong_password_fails_and_backs_off_doubling_to_half_an_hour() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "not-our-password", 1);
    let mut reg = start(t0, 3600);
    let mut now = t0;
    for bound in [30, 60, 120, 240, 480, 960, 1800, 1800] {
        assert_eq!(reg.poll_timeout(), Some(now));
        let first = reg.poll_request(now).unwrap();
        assert_eq!(
            first.headers.get(&HeaderName::Authorization),
            None,
            "a retry starts afresh"
        );
        reg.on_response(now, &carrier.answer(now, &first));
        let answer = reg.poll_request(now).unwrap();
        let refused = carrier.answer(now, &answer);
        // Our own verifier issues a new nonce with the refusal, not stale.
        assert_eq!(refused.status, 401);
        reg.on_response(now, &refused);
        let delay = retry_delay(&reg, now);
        assert_backoff(delay, bound);
        assert_eq!(
            events(&mut reg),
            [RegistrationEvent::Failed {
                trunk: "carrier".into(),
                reason: Failure::BadCredentials {
                    realm: REALM.into()
                },
                retry_at: now + delay,
            }]
        );
        assert_eq!(
            reg.poll_request(now + delay - Duration::from_millis(1)),
            None
        );
        now += delay;
    }
}

#[test]
fn same_nonce_challenged_again_without_stale_is_bad_credentials() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    let x = challenge("nonce-x", false);
    reg.on_response(t0, &reply(&r1, 401, &[(HeaderName::WwwAuthenticate, &x)]));
    let r2 = reg.poll_request(t0).unwrap();
    reg.on_response(t0, &reply(&r2, 401, &[(HeaderName::WwwAuthenticate, &x)]));
    assert!(matches!(
        reg.state(),
        RegistrationState::Failed {
            reason: Failure::BadCredentials { .. },
            ..
        }
    ));
    assert_eq!(reg.poll_request(t0), None);
}

#[test]
fn stale_challenge_is_answered_again() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    let x = challenge("nonce-x", false);
    reg.on_response(t0, &reply(&r1, 401, &[(HeaderName::WwwAuthenticate, &x)]));
    let r2 = reg.poll_request(t0).unwrap();
    let y = challenge("nonce-y", true);
    reg.on_response(t0, &reply(&r2, 401, &[(HeaderName::WwwAuthenticate, &y)]));
    let r3 = reg.poll_request(t0).unwrap();
    let c3 = credentials(&r3, HeaderName::Authorization);
    assert_eq!((c3.nonce.as_str(), c3.nc), ("nonce-y", Some(1)));
    assert_eq!(reg.state(), &RegistrationState::Registering);
}

#[test]
fn endless_challenges_end_in_a_failure() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let mut answers = 0;
    while let Some(req) = reg.poll_request(t0) {
        let stale = challenge(&format!("n{answers}"), answers > 0);
        reg.on_response(
            t0,
            &reply(&req, 401, &[(HeaderName::WwwAuthenticate, &stale)]),
        );
        answers += 1;
        assert!(answers < 20, "never gives up");
    }
    assert_eq!(answers, 7);
    assert!(matches!(
        reg.state(),
        RegistrationState::Failed {
            reason: Failure::NoProgress(6),
            ..
        }
    ));
}

#[test]
fn topmost_supported_challenge_is_answered() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    let unsupported =
        format!(r#"Digest realm="{REALM}", nonce="a", algorithm=SHA-512-256, qop="auth""#);
    let int_only = format!(r#"Digest realm="{REALM}", nonce="b", qop="auth-int""#);
    let md5 = challenge("c", false);
    reg.on_response(
        t0,
        &reply(
            &r1,
            401,
            &[
                (HeaderName::WwwAuthenticate, &unsupported),
                (HeaderName::WwwAuthenticate, &int_only),
                (HeaderName::WwwAuthenticate, &md5),
            ],
        ),
    );
    let r2 = reg.poll_request(t0).unwrap();
    let c2 = credentials(&r2, HeaderName::Authorization);
    assert_eq!((c2.nonce.as_str(), c2.algorithm), ("c", Algorithm::Md5));
}

#[test]
fn unanswerable_challenges_fail() {
    let t0 = Instant::now();
    let cases: [(&[(HeaderName, &str)], Failure); 2] = [
        (
            &[(HeaderName::WwwAuthenticate, r#"Basic realm="x""#)],
            ChallengeError::Unusable(AuthError::UnsupportedScheme).into(),
        ),
        (&[], ChallengeError::Missing(401).into()),
    ];
    for (headers, expected) in cases {
        let mut reg = start(t0, 3600);
        let r1 = reg.poll_request(t0).unwrap();
        reg.on_response(t0, &reply(&r1, 401, headers));
        match reg.state() {
            RegistrationState::Failed { reason, .. } => assert_eq!(reason, &expected),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn proxy_challenge_is_answered_in_proxy_authorization() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "s3cret", 1);
    carrier.proxy = true;
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    let challenged = carrier.answer(t0, &r1);
    assert_eq!(challenged.status, 407);
    reg.on_response(t0, &challenged);
    let r2 = reg.poll_request(t0).unwrap();
    assert_eq!(r2.headers.get(&HeaderName::Authorization), None);
    assert!(r2.headers.get(&HeaderName::ProxyAuthorization).is_some());
    let ok = carrier.answer(t0, &r2);
    assert_eq!(ok.status, 200);
    reg.on_response(t0, &ok);
    assert!(matches!(reg.state(), RegistrationState::Registered { .. }));
}

#[test]
fn service_unavailable_honours_retry_after() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.on_response(
        t0,
        &reply(&r1, 503, &[(HeaderName::RetryAfter, "120 (maintenance)")]),
    );
    let expected = RegistrationState::Failed {
        retry_at: t0 + secs(120),
        reason: Failure::Rejected {
            status: 503,
            reason: "Service Unavailable".into(),
        },
    };
    assert_eq!(reg.state(), &expected);
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(120)));
    assert_eq!(reg.poll_request(t0 + secs(119)), None);
    let r2 = reg.poll_request(t0 + secs(120)).unwrap();
    assert_eq!(r2.headers.cseq.seq, 2);
    assert_eq!(reg.state(), &RegistrationState::Registering);

    // A day is capped at the longest backoff.
    reg.on_response(
        t0 + secs(120),
        &reply(&r2, 503, &[(HeaderName::RetryAfter, "86400")]),
    );
    assert_eq!(retry_delay(&reg, t0 + secs(120)), secs(1800));
}

#[test]
fn timeout_fails_and_retries_after_backoff() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    let t1 = t0 + secs(32);
    reg.on_timeout(t1);
    let delay = retry_delay(&reg, t1);
    assert_backoff(delay, 30);
    assert!(matches!(
        reg.state(),
        RegistrationState::Failed {
            reason: Failure::Timeout,
            ..
        }
    ));
    let r2 = reg.poll_request(t1 + delay).unwrap();
    assert_eq!(r2.headers.cseq.seq, 2);
    assert_ne!(r2.headers.via[0].branch(), r1.headers.via[0].branch());
    // A late answer to the first request changes nothing.
    reg.on_response(t1 + delay, &reply(&r1, 200, &[]));
    assert_eq!(reg.state(), &RegistrationState::Registering);
}

#[test]
fn success_resets_the_backoff() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let mut now = t0;
    for _ in 0..3 {
        reg.poll_request(now).unwrap();
        reg.on_transport_error(now);
        now += retry_delay(&reg, now);
    }
    let req = reg.poll_request(now).unwrap();
    reg.on_response(now, &reply(&req, 200, &[]));
    let refresh = reg.poll_request(now + secs(3540)).unwrap();
    now += secs(3540);
    reg.on_response(now, &reply(&refresh, 500, &[]));
    assert_backoff(retry_delay(&reg, now), 30);
}

#[test]
fn provisional_and_unrelated_responses_are_ignored() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.on_response(t0, &reply(&r1, 100, &[]));
    let mut other_cseq = reply(&r1, 200, &[]);
    other_cseq.headers.cseq.seq = 7;
    reg.on_response(t0, &other_cseq);
    let mut other_call = reply(&r1, 200, &[]);
    other_call.headers.call_id = CallId::new("someone-else");
    reg.on_response(t0, &other_call);
    assert_eq!(reg.state(), &RegistrationState::Registering);
    assert_eq!(reg.poll_request(t0), None, "still in flight");
    reg.on_response(t0, &reply(&r1, 200, &[]));
    assert!(matches!(reg.state(), RegistrationState::Registered { .. }));
}

#[test]
fn binding_lapses_when_the_refresh_is_not_answered_in_time() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.on_response(
        t0,
        &ok_listing(&r1, &[&format!("{CONTACT};expires=2")], &[]),
    );
    events(&mut reg);
    let refresh_at = t0 + secs(1);
    assert!(reg.poll_request(refresh_at).is_some());
    // The transaction is still running when the binding ends.
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(2)));
    reg.handle_timeout(t0 + secs(2));
    assert_eq!(reg.state(), &RegistrationState::Registering);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Lapsed {
            trunk: "carrier".into()
        }]
    );
    assert_eq!(reg.poll_timeout(), None);
}

#[test]
fn shutdown_unregisters_with_expires_zero() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "s3cret", 1);
    let mut reg = start(t0, 3600);
    register(&mut reg, &mut carrier, t0);

    let t1 = t0 + secs(600);
    reg.shutdown(t1);
    assert_eq!(reg.state(), &RegistrationState::Unregistering);
    assert_eq!(reg.poll_timeout(), Some(t1));
    let bye = reg.poll_request(t1).unwrap();
    assert_eq!(expires_of(&bye), 0);
    assert_eq!(bye.headers.cseq.seq, 3);
    assert_eq!(
        bye.headers.contact,
        Contacts::List(vec![NameAddr::parse(CONTACT).unwrap()])
    );
    // The nonce of the last registration is reused.
    assert_eq!(credentials(&bye, HeaderName::Authorization).nc, Some(2));
    let ok = carrier.answer(t1, &bye);
    assert_eq!(ok.status, 200);
    reg.on_response(t1, &ok);
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Unregistered {
            trunk: "carrier".into(),
            result: Ok(())
        }]
    );
    assert_eq!(reg.poll_timeout(), None);
    assert_eq!(reg.poll_request(t1 + secs(3600)), None);
}

#[test]
fn shutdown_answers_a_challenge() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "s3cret", 1);
    let mut reg = start(t0, 3600);
    register(&mut reg, &mut carrier, t0);
    // The carrier restarted with a new key: it no longer knows our nonce,
    // and challenges without `stale`. That is not a wrong password.
    let t1 = t0 + secs(600);
    let mut carrier = Carrier::new(t1, "s3cret", 2);
    reg.shutdown(t1);
    let bye = reg.poll_request(t1).unwrap();
    let challenged = carrier.answer(t1, &bye);
    assert_eq!(challenged.status, 401);
    reg.on_response(t1, &challenged);
    let answer = reg.poll_request(t1).unwrap();
    assert_eq!(expires_of(&answer), 0);
    let ok = carrier.answer(t1, &answer);
    assert_eq!(ok.status, 200);
    reg.on_response(t1, &ok);
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
}

#[test]
fn shutdown_waits_for_the_register_in_flight() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.shutdown(t0);
    // RFC 3261 §10.2: not before the previous REGISTER has its answer.
    assert_eq!(reg.poll_request(t0), None);
    reg.on_response(t0, &reply(&r1, 200, &[]));
    let bye = reg.poll_request(t0).unwrap();
    assert_eq!((expires_of(&bye), bye.headers.cseq.seq), (0, 2));
    reg.on_timeout(t0 + secs(32));
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Unregistered {
            trunk: "carrier".into(),
            result: Err(Failure::Timeout)
        }]
    );
}

#[test]
fn shutdown_without_a_binding_sends_nothing() {
    let t0 = Instant::now();
    let mut reg = start(t0, 3600);
    let r1 = reg.poll_request(t0).unwrap();
    reg.on_response(t0, &reply(&r1, 403, &[]));
    events(&mut reg);
    reg.shutdown(t0 + secs(1));
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
    assert_eq!(reg.poll_request(t0 + secs(1)), None);
    assert_eq!(
        events(&mut reg),
        [RegistrationEvent::Unregistered {
            trunk: "carrier".into(),
            result: Ok(())
        }]
    );
}

#[test]
fn cseq_increments_while_call_id_and_from_tag_stay() {
    let t0 = Instant::now();
    let mut carrier = Carrier::new(t0, "s3cret", 1);
    let mut reg = start(t0, 3600);
    let mut sent = Vec::new();
    let mut now = t0;
    // Challenge, register, a refresh that fails, the retry, shutdown.
    for step in 0..6 {
        if step == 5 {
            reg.shutdown(now);
        }
        if let Some(t) = reg.poll_timeout() {
            now = now.max(t);
        }
        let req = reg.poll_request(now).unwrap();
        let response = if step == 3 {
            reply(&req, 500, &[])
        } else {
            carrier.answer(now, &req)
        };
        sent.push(req);
        reg.on_response(now, &response);
    }
    assert_eq!(reg.state(), &RegistrationState::Unregistered);
    let branches: std::collections::HashSet<&str> = sent
        .iter()
        .map(|r| r.headers.via[0].branch().unwrap())
        .collect();
    assert_eq!(branches.len(), sent.len(), "a fresh branch every time");
    for (i, req) in sent.iter().enumerate() {
        assert_eq!(req.headers.cseq.seq, u32::try_from(i).unwrap() + 1);
        assert_eq!(req.headers.cseq.method, Method::Register);
        assert_eq!(req.headers.call_id.as_str(), "reg-1@192.0.2.10");
        assert_eq!(req.headers.from.tag(), Some("ft-1"));
        assert_eq!(req.headers.to.tag(), None);
        assert_eq!(
            req.headers.to.uri.to_string(),
            "sip:4420@sip.carrier.example"
        );
        assert_eq!(req.headers.from.uri, req.headers.to.uri);
        assert_eq!(req.uri.to_string(), "sip:sip.carrier.example");
        assert_eq!(req.headers.max_forwards, Some(70));
        let via = &req.headers.via[0];
        assert!(via.is_rfc3261_branch());
        assert_eq!(via.rport(), Some(None));
        assert_eq!(
            via.to_string().split(';').next(),
            Some("SIP/2.0/UDP 192.0.2.10:5060")
        );
        // What we build survives the printer and the parser.
        assert_eq!(
            parse(&req.to_bytes()).unwrap(),
            Message::Request(req.clone())
        );
    }
}
