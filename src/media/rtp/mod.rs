//! RTP and RTCP (RFC 3550) for a relay that anchors all media.
//!
//! - [`packet`]: zero-copy RTP view with in-place header rewriting.
//! - [`rtcp`]: SR, RR, SDES and BYE compound packets.
//! - [`stats`]: per-source receiver statistics (RFC 3550 Appendix A) and a
//!   MOS estimate.
//! - [`rewriter`]: one continuous outgoing stream across feed switches.
//! - [`dead`]: detects a stream that has gone silent.
//!
//! Sans-IO like the rest of the media engine: time comes in as `Instant`.

pub mod dead;
pub mod packet;
pub mod rewriter;
pub mod rtcp;
pub mod stats;

pub use dead::{DeadStream, StreamDead};
pub use packet::{RtpError, RtpHeader, RtpPacket, Ssrc};
pub use rewriter::SourceRewriter;
pub use rtcp::{
    parse_compound, write_compound, Goodbye, ReceiverReport, ReportBlock, RtcpError, RtcpPacket,
    SdesChunk, SdesItem, SenderReport,
};
pub use stats::{estimate_mos, MosCodec, ReceiverStats, SeqVerdict, StatsSummary};

/// Fuzz body: RTP parsing and every accessor must not panic.
pub fn fuzz_rtp(data: &[u8]) {
    let mut buf = data.to_vec();
    if let Ok(mut p) = RtpPacket::parse(&mut buf[..]) {
        let _ = (p.payload().len(), p.extension(), p.csrcs().count());
        let (seq, ts) = (p.sequence(), p.timestamp());
        p.set_sequence(seq.wrapping_add(1));
        p.set_timestamp(ts.wrapping_add(160));
        p.set_ssrc(Ssrc(1));
        p.set_marker(true);
        let _ = p.set_payload_type(data.first().copied().unwrap_or(0));
    }
}

/// Fuzz body: RTCP parsing must not panic, and whatever parses must
/// serialise and parse back to the same packets.
pub fn fuzz_rtcp(data: &[u8]) {
    if let Ok(packets) = parse_compound(data) {
        let mut out = Vec::new();
        if write_compound(&packets, &mut out).is_ok() {
            let again = parse_compound(&out);
            assert_eq!(again.as_ref(), Ok(&packets), "RTCP round trip changed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    proptest! {
        #[test]
        fn rtp_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_rtp(&data);
        }

        #[test]
        fn rtp_v2_never_panics(first in 0u8..64, data in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Version 2 forced, so the CSRC/extension/padding paths run.
            let mut d = vec![0x80 | first];
            d.extend_from_slice(&data);
            fuzz_rtp(&d);
        }

        #[test]
        fn rtcp_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_rtcp(&data);
        }

        #[test]
        fn rtcp_known_types_never_panic(
            first in 0u8..64,
            pt in 200u8..=204,
            words in 0u8..20,
            body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut d = vec![0x80 | first, pt, 0, words];
            d.extend_from_slice(&body);
            fuzz_rtcp(&d);
        }

        #[test]
        fn stats_never_panic(
            pkts in proptest::collection::vec((any::<u16>(), any::<u32>(), 0u64..100_000, 0u8..3), 1..200)
        ) {
            let t0 = Instant::now();
            let mut s = ReceiverStats::new(8000, MosCodec::Opus);
            for (seq, ts, at, src) in pkts {
                s.update(Ssrc(u32::from(src)), seq, ts, t0 + Duration::from_millis(at));
                let _ = s.report_block(t0 + Duration::from_millis(at));
            }
            let m = s.summary().mos;
            prop_assert!((1.0..=4.5).contains(&m));
        }
    }
}
