//! A whole digest-authenticated registration through the sans-IO endpoint:
//! REGISTER → 401 (stateless), REGISTER with credentials → 200 (transaction,
//! digest check, registrar, persistence event). Only the gateway's side is
//! timed; building the client's messages and its digest is not. The virtual
//! clock advances 50 µs per registration (20,000/s), so transactions expire
//! as they would under that load.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard::config::Config;
use switchboard::sip::auth::{respond, Challenge};
use switchboard::sip::endpoint::{Endpoint, EndpointConfig, Input, Output};
use switchboard::sip::flow::Flow;
use switchboard::sip::transport::Transport;

fn register(n: u64, cseq: u64, auth: &str) -> Bytes {
    Bytes::from(format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{n}-{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag={n}\r\nTo: <sip:1001@127.0.0.1>\r\n\
Call-ID: {n}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@127.0.0.1:5090>\r\n\
Expires: 3600\r\n{auth}User-Agent: bench\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn drain(ep: &mut Endpoint) -> Option<Bytes> {
    let mut last = None;
    while let Some(out) = ep.poll_output() {
        if let Output::Transmit { data, .. } = out {
            last = Some(data);
        }
    }
    last
}

fn bench(c: &mut Criterion) {
    let Ok(config) = Config::load(std::path::Path::new("config/switchboard.toml")) else {
        panic!("demo config")
    };
    let start = Instant::now();
    let Ok(mut ep) = Endpoint::new(EndpointConfig::from_config(&config), start) else {
        panic!("endpoint")
    };
    let flow = Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap_or_else(|e| panic!("{e}")),
        remote: "127.0.0.1:5090".parse().unwrap_or_else(|e| panic!("{e}")),
        connection: None,
    };
    let wall = SystemTime::now();
    let mut now = start;
    let mut n = 0u64;
    let mut g = c.benchmark_group("endpoint");
    g.throughput(Throughput::Elements(1));
    g.bench_function("register_with_digest", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                now += Duration::from_micros(50);
                let first = Input::Message {
                    flow: flow.clone(),
                    data: register(n, 1, ""),
                };
                let t = Instant::now();
                ep.handle_timeout(now, wall);
                ep.handle_input(now, wall, first);
                let challenge = drain(&mut ep);
                spent += t.elapsed();

                let text = challenge
                    .map(|d| String::from_utf8_lossy(&d).into_owned())
                    .unwrap_or_default();
                let value = text
                    .lines()
                    .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
                    .unwrap_or_else(|| panic!("no challenge in {text}"));
                let Ok(ch) = Challenge::parse(value) else {
                    panic!("bad challenge")
                };
                let Ok(creds) = respond(
                    &ch,
                    "REGISTER",
                    "sip:127.0.0.1:5060",
                    "1001",
                    "pass1001",
                    "c",
                    1,
                ) else {
                    panic!("respond")
                };
                let auth = format!("Authorization: {}\r\n", creds.to_header_value());
                let second = Input::Message {
                    flow: flow.clone(),
                    data: register(n, 2, &auth),
                };

                let t = Instant::now();
                ep.handle_input(now, wall, second);
                let ok = drain(&mut ep);
                spent += t.elapsed();
                assert!(ok.is_some_and(|d| d.starts_with(b"SIP/2.0 200")));
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
