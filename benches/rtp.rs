//! The per-packet relay cost: one 172-byte G.711 packet (12-byte header,
//! 160 bytes of PCMU, 20 ms) parsed as a view, accounted in the receiver
//! statistics and rewritten in place for the outgoing leg.
//!
//! Each iteration first stamps the next incoming sequence number and
//! timestamp into the buffer (12 bytes, standing in for the socket read),
//! so the statistics see an in-order stream, and the virtual clock
//! advances 20 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::rtp::{
    MosCodec, ReceiverStats, RtpHeader, RtpPacket, SourceRewriter, Ssrc,
};

fn relay_one_packet(c: &mut Criterion) {
    let mut buf = [0xd5u8; 172];
    let mut stats = ReceiverStats::new(8000, MosCodec::G711);
    let mut rewriter = SourceRewriter::new(Ssrc(0x5eed_0001), 8000, 4321, 98_765);
    let t0 = Instant::now();
    let mut n: u32 = 0;
    c.bench_function("rtp_parse_stats_rewrite_g711_172b", |b| {
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
            if let Ok(mut p) = RtpPacket::parse(&mut buf[..]) {
                stats.update(p.ssrc(), p.sequence(), p.timestamp(), now);
                rewriter.rewrite(&mut p, now);
                black_box(p.payload().len());
            }
        })
    });
    black_box(stats.summary());
}

criterion_group!(benches, relay_one_packet);
criterion_main!(benches);
