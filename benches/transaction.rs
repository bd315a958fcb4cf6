//! Transaction layer throughput at registrar scale.
//!
//! `register_udp_steady_state`: one REGISTER received and answered 200 per
//! iteration, the virtual clock advancing 50 µs each time (20,000 per
//! second), so that Timer J keeps about 640,000 transactions alive once the
//! run is long enough, as in production.
//!
//! `invite_client_180_200`: an outgoing INVITE, its 180 and 200 (RFC 6026
//! Accepted, then Timer M).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::sip::message::{parse, Message, Request};
use switchboard::sip::transaction::{TimerConfig, TransactionLayer, TxEvent};

const REGISTER: &str = "REGISTER sip:biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@biloxi.example.com>;tag=a73kszlfl\r\n\
To: Alice <sip:alice@biloxi.example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.101\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:alice@192.0.2.101:5060>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

const INVITE: &str = "INVITE sip:agent7@192.0.2.50 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
From: <sip:queue@switchboard.example.com>;tag=1928301774\r\n\
To: <sip:agent7@switchboard.example.com>\r\n\
Call-ID: a84b4c76e66710@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:queue@192.0.2.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn request(text: &str) -> Request {
    match parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn register_udp_steady_state(c: &mut Criterion) {
    let template = request(REGISTER);
    let source = SocketAddr::from(([192, 0, 2, 101], 5060));
    let mut layer: TransactionLayer<SocketAddr> = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let mut n: u64 = 0;
    c.bench_function("register_udp_steady_state", |b| {
        b.iter(|| {
            n += 1;
            let now = t0 + Duration::from_micros(50 * n);
            let mut register = template.clone();
            register.headers.via[0]
                .params
                .set("branch", Some(format!("z9hG4bK{n:016x}")));
            layer.receive_request(now, register, source, false);
            while let Some(event) = layer.poll_event() {
                if let TxEvent::Request { tx, request, .. } = event {
                    let ok = request.response(200, Some("b7c2a1"));
                    let _ = layer.respond(now, tx, ok);
                }
            }
            while let Some(t) = layer.poll_transmit() {
                black_box(t);
            }
            layer.handle_timeout(now);
        })
    });
    eprintln!(
        "live transactions at the end: {}",
        layer.live_transactions()
    );
}

fn invite_client_180_200(c: &mut Criterion) {
    let template = request(INVITE);
    let dest = SocketAddr::from(([192, 0, 2, 50], 5060));
    let mut layer: TransactionLayer<SocketAddr> = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let mut n: u64 = 0;
    c.bench_function("invite_client_180_200", |b| {
        b.iter(|| {
            n += 1;
            let now = t0 + Duration::from_micros(50 * n);
            let mut invite = template.clone();
            invite.headers.via[0]
                .params
                .set("branch", Some(format!("z9hG4bK{n:016x}")));
            let ringing = invite.response(180, Some("agent"));
            let ok = invite.response(200, Some("agent"));
            let _ = layer.send_request(now, invite, dest, false);
            layer.receive_response(now, ringing);
            layer.receive_response(now, ok);
            while let Some(e) = layer.poll_event() {
                black_box(e);
            }
            while let Some(t) = layer.poll_transmit() {
                black_box(t);
            }
            layer.handle_timeout(now);
        })
    });
}

criterion_group!(benches, register_udp_steady_state, invite_client_180_200);
criterion_main!(benches);
