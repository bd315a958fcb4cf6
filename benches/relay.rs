//! Per-packet cost of `Relay::on_rtp`: one 172-byte G.711 packet (12-byte
//! header, 160 bytes of PCMU, 20 ms) from the latched caller, parsed,
//! latched, accounted (statistics and dead-stream detector), rewritten in
//! place for the agent leg and addressed.
//!
//! Each iteration first stamps the next incoming sequence number, timestamp
//! and SSRC into the buffer (12 bytes, standing in for the socket read,
//! and undoing the previous iteration's rewrite), so the relay sees one
//! in-order stream; the virtual clock advances 20 ms.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::relay::{LegConfig, LegId, Relay, RelayConfig};
use switchboard::media::rtp::{MosCodec, RtpHeader, Ssrc};

fn on_rtp_one_packet(c: &mut Criterion) {
    let t0 = Instant::now();
    let caller: SocketAddr = ([203, 0, 113, 7], 61_234).into();
    let agent: SocketAddr = ([10, 1, 0, 5], 20_000).into();
    let leg = |remote, ssrc| LegConfig {
        expected_remote: Some(remote),
        our_ssrc: Ssrc(ssrc),
        initial_seq: 4321,
        initial_ts: 98_765,
        payload_type_out: 0,
        telephone_event_pt: Some(101),
        clock_rate: 8000,
        codec: MosCodec::G711,
    };
    let Ok(mut relay) = Relay::new(
        t0,
        RelayConfig::new(Duration::from_secs(30)),
        [leg(caller, 0x5eed_0001), leg(agent, 0x5eed_0002)],
    ) else {
        return;
    };
    let mut buf = [0xd5u8; 172];
    let mut n: u32 = 0;
    c.bench_function("relay_on_rtp_g711_172b", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let incoming = RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: n as u16,
                timestamp: n.wrapping_mul(160),
                ssrc: Ssrc(0xabcd_ef01),
            };
            let _ = incoming.write_header(&mut buf);
            let now = t0 + Duration::from_millis(20) * n;
            black_box(relay.on_rtp(now, LegId::Caller, caller, black_box(&mut buf[..])));
        })
    });
    black_box(relay.stats(LegId::Caller));
}

criterion_group!(benches, on_rtp_one_packet);
criterion_main!(benches);
