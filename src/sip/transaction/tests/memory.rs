//! Rough memory cost of a live transaction at registrar scale: REGISTERs
//! over UDP answered 200, each then waiting 64*T1 in Completed (Timer J).
//!
//! Run alone, as it reads the process's resident set size:
//! `cargo test --lib sip::transaction::tests::memory -- --ignored --nocapture`

use std::time::{Duration, Instant};

use super::super::super::message::{HeaderName, Request, Response};
use super::super::{TimerConfig, TransactionLayer, TxEvent};
use super::Req;

/// Resident set size from /proc (Linux), assuming 4 KiB pages.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A registrar's 200: the request's headers plus Contact, Expires, Date.
fn registrar_ok(request: &Request, n: usize) -> Response {
    let mut ok = request.response(200, Some(&format!("{n:08x}")));
    ok.headers.push(
        HeaderName::Contact,
        "<sip:alice@192.0.2.101:5060;transport=udp>;expires=3600",
    );
    ok.headers.push(
        HeaderName::Other("Date".into()),
        "Sat, 13 Nov 2010 23:29:00 GMT",
    );
    ok.headers.push(HeaderName::Server, "Switchboard");
    ok
}

#[test]
#[ignore = "slow, and measures the whole process: run alone with --ignored"]
fn bytes_per_live_register_transaction() {
    const N: usize = 200_000;
    let template = Req {
        method: "REGISTER",
        uri: "sip:biloxi.example.com",
        ..Req::default()
    }
    .build();
    let response_len = registrar_ok(&template, 0).to_bytes().len();
    let mut layer: TransactionLayer<std::net::SocketAddr> =
        TransactionLayer::new(TimerConfig::default());
    let source = std::net::SocketAddr::from(([192, 0, 2, 101], 5060));
    let t0 = Instant::now();
    let before = resident_bytes();
    let started = Instant::now();
    for n in 0..N {
        // 20,000 per second of virtual time: all still in Timer J at the end.
        let now = t0 + Duration::from_micros(50 * n as u64);
        let mut request = template.clone();
        request.headers.via[0]
            .params
            .set("branch", Some(format!("z9hG4bK{n:016x}")));
        request.headers.from = request.headers.from.with_tag(&format!("{n:010x}"));
        layer.receive_request(now, request, source, false);
        while layer.poll_transmit().is_some() {}
        while let Some(event) = layer.poll_event() {
            if let TxEvent::Request { tx, request, .. } = event {
                let ok = registrar_ok(&request, n);
                assert_eq!(layer.respond(now, tx, ok), Ok(()));
            }
        }
        while layer.poll_transmit().is_some() {}
        layer.handle_timeout(now);
    }
    let elapsed = started.elapsed();
    let after = resident_bytes();
    assert_eq!(layer.live_transactions(), N);
    if let (Some(before), Some(after)) = (before, after) {
        let per_tx = after.saturating_sub(before) / N;
        eprintln!(
            "{N} live REGISTER transactions: {per_tx} bytes each (resident), \
             of which the kept 200 OK is {response_len} bytes; {:.1} µs per REGISTER (this build)",
            elapsed.as_secs_f64() * 1e6 / N as f64
        );
        // The response must be kept (RFC 3261 §17.2.2); the rest is the
        // record, two keys, two index entries and a timer entry.
        assert!(
            per_tx < response_len + 700,
            "{per_tx} bytes per transaction"
        );
    }
}
