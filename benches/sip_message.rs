//! Parse and print of a typical INVITE and REGISTER: the work done for every
//! SIP message the gateway receives and sends.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switchboard::sip::message::parse;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
User-Agent: bench\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 162\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 pc33.atlanta.example.com\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const REGISTER: &[u8] = b"REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-2-3;rport\r\n\
From: <sip:1001@127.0.0.1>;tag=abcdef\r\n\
To: <sip:1001@127.0.0.1>\r\n\
Call-ID: 1-1234@127.0.0.1\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:1001@127.0.0.1:5070;transport=udp>\r\n\
Authorization: Digest username=\"1001\", realm=\"127.0.0.1\", nonce=\"abcdefabcdefabcdefabcdef\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"xyz\", qop=auth, nc=00000001\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_message");
    for (name, msg) in [("invite", INVITE), ("register", REGISTER)] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| parse(black_box(msg)))
        });
        let Ok(parsed) = parse(msg) else { return };
        g.bench_function(format!("print_{name}"), |b| {
            b.iter(|| black_box(&parsed).to_bytes())
        });
        g.bench_function(format!("parse_print_{name}"), |b| {
            b.iter(|| parse(black_box(msg)).map(|m| m.to_bytes()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
