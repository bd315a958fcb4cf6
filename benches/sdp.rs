//! Cost of handling an incoming INVITE's SDP: parse the offer and build the
//! answer. Runs once per call set-up and per re-INVITE.

// Setup failures in a benchmark should abort it loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::sdp::{answer, Direction, LocalMedia, Preferences, SessionDescription};

/// A linphone-style offer: opus, G722, PCMU, telephone-event at two rates.
const OFFER: &str = "v=0\r\n\
o=alice 1234 678 IN IP4 192.168.0.23\r\n\
s=Talk\r\n\
c=IN IP4 192.168.0.23\r\n\
t=0 0\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 9 0 8 101 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp:7079\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn bench_sdp(c: &mut Criterion) {
    let local = LocalMedia {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        rtp_port: 30_000,
        session_id: 42,
        session_version: 1,
        direction: Direction::SendRecv,
        ptime: Some(20),
        rtcp_mux: false,
    };
    let prefs = Preferences::default();
    c.bench_function("sdp/parse", |b| {
        b.iter(|| SessionDescription::parse(black_box(OFFER)).expect("valid offer"))
    });
    c.bench_function("sdp/parse_answer_print", |b| {
        b.iter(|| {
            let offer = SessionDescription::parse(black_box(OFFER)).expect("valid offer");
            let a = answer(&offer, &local, &prefs).expect("common codec");
            a.sdp.to_string()
        })
    });
}

criterion_group!(benches, bench_sdp);
criterion_main!(benches);
