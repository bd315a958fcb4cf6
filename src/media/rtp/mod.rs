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
