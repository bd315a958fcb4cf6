//! Cost of verifying a REGISTER's digest credentials: the registrar must
//! sustain well over 10,000 verifications a second on two cores.

// Setup failures in a benchmark should abort it loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use switchboard::sip::auth::{
    respond, Algorithm, Credentials, DigestVerifier, UserSecret, Verdict, VerifierConfig,
};

const URI: &str = "sip:switchboard.example";

fn bench_verify(c: &mut Criterion) {
    let t0 = Instant::now();
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let mut verifier = DigestVerifier::new(
            VerifierConfig {
                realm: "switchboard".into(),
                algorithms: vec![algorithm],
                nonce_ttl: Duration::from_secs(3600),
                key: Some([7; 32]),
                replay_capacity: 10_000,
            },
            t0,
        )
        .expect("valid config");
        let secret = UserSecret::new("agent-0042", "switchboard", "correct horse battery");
        let challenge = verifier.challenges(t0, false).remove(0);
        let now = t0 + Duration::from_secs(1);
        // Each request needs a fresh nonce count or the replay guard refuses
        // it; building the credentials is setup, not measured.
        let mut nc = 0u32;
        let mut next_credentials = || {
            nc += 1;
            respond(
                &challenge,
                "REGISTER",
                URI,
                "agent-0042",
                "correct horse battery",
                "8f2a91c0",
                nc,
            )
            .expect("qop=auth offered")
        };
        c.bench_function(&format!("verify/{algorithm}"), |b| {
            b.iter_batched(
                &mut next_credentials,
                |creds: Credentials| {
                    let verdict =
                        verifier.verify(now, "REGISTER", black_box(&creds), Some(&secret));
                    assert_eq!(verdict, Verdict::Ok);
                },
                BatchSize::SmallInput,
            )
        });
        let header = next_credentials().to_header_value();
        c.bench_function(&format!("parse+verify/{algorithm}"), |b| {
            b.iter_batched(
                || next_credentials().to_header_value(),
                |header: String| {
                    let creds = Credentials::parse(black_box(&header)).expect("well-formed");
                    verifier.verify(now, "REGISTER", &creds, Some(&secret))
                },
                BatchSize::SmallInput,
            )
        });
        c.bench_function(&format!("verify-unknown-user/{algorithm}"), |b| {
            let creds = Credentials::parse(&header).expect("well-formed");
            b.iter(|| verifier.verify(now, "REGISTER", black_box(&creds), None))
        });
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
