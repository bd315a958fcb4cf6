//! Keeps one outgoing leg a single continuous RTP stream while the gateway
//! switches what feeds it (hold music, then the agent, then a prompt).
//!
//! The far end sees one SSRC (ours) whose sequence numbers and timestamps
//! never jump: RFC 3550 §5.1 lets a receiver treat a jump as loss or a
//! restart, and many phones then drop audio until their jitter buffer
//! resyncs. The marker bit on the first packet after a switch tells the
//! receiver a talkspurt begins, so it may re-centre its buffer there.

use std::time::Instant;

use super::packet::{RtpPacket, Ssrc};

#[derive(Debug, Clone, Copy)]
struct Feed {
    ssrc: Ssrc,
    seq_offset: u16,
    ts_offset: u32,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    seq: u16,
    timestamp: u32,
    at: Instant,
}

/// Rewrites the packets of whatever feeds one outgoing leg.
#[derive(Debug, Clone)]
pub struct SourceRewriter {
    ssrc: Ssrc,
    clock_rate: u32,
    initial_seq: u16,
    initial_ts: u32,
    feed: Option<Feed>,
    last: Option<LastSent>,
}

impl SourceRewriter {
    /// `ssrc`, `initial_seq` and `initial_ts` should be random (RFC 3550
    /// §5.1); the caller draws them since this core owns no randomness.
    /// `clock_rate` is the outgoing payload format's timestamp rate.
    pub fn new(ssrc: Ssrc, clock_rate: u32, initial_seq: u16, initial_ts: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            initial_seq,
            initial_ts,
            feed: None,
            last: None,
        }
    }

    /// Our SSRC on this leg.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Forces the next packet to start a new feed even if it carries the
    /// same SSRC as the current one (e.g. a prompt player that reuses its
    /// SSRC for every prompt).
    pub fn switch_source(&mut self) {
        self.feed = None;
    }

    /// Rewrites `packet` in place for sending at `now`. A packet from a
    /// different SSRC than the current feed starts a new feed: it follows
    /// the last packet sent with sequence + 1 and the timestamp advanced by
    /// the time elapsed, and gets the marker bit. Packets of the current
    /// feed move by the feed's constant offsets, so their own gaps and
    /// reordering pass through unchanged.
    pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        packet: &mut RtpPacket<B>,
        now: Instant,
    ) {
        let in_ssrc = packet.ssrc();
        let in_seq = packet.sequence();
        let in_ts = packet.timestamp();
        let feed = match self.feed {
            Some(feed) if feed.ssrc == in_ssrc => feed,
            _ => {
                let (seq, ts) = match self.last {
                    Some(last) => {
                        let elapsed = now.saturating_duration_since(last.at);
                        let ticks =
                            elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
                        // Timestamps wrap modulo 2^32 (RFC 3550 §5.1).
                        let ticks = (ticks % (1u128 << 32)) as u32;
                        (last.seq.wrapping_add(1), last.timestamp.wrapping_add(ticks))
                    }
                    None => (self.initial_seq, self.initial_ts),
                };
                packet.set_marker(true);
                let feed = Feed {
                    ssrc: in_ssrc,
                    seq_offset: seq.wrapping_sub(in_seq),
                    ts_offset: ts.wrapping_sub(in_ts),
                };
                self.feed = Some(feed);
                feed
            }
        };
        let out_seq = in_seq.wrapping_add(feed.seq_offset);
        let out_ts = in_ts.wrapping_add(feed.ts_offset);
        packet.set_sequence(out_seq);
        packet.set_timestamp(out_ts);
        packet.set_ssrc(self.ssrc);
        // Only a packet newer than the last one sent moves the continuation
        // point, so a late packet cannot make the next feed reuse numbers.
        let newer = match self.last {
            None => true,
            Some(last) => {
                let ahead = out_seq.wrapping_sub(last.seq);
                ahead != 0 && ahead < 0x8000
            }
        };
        if newer {
            self.last = Some(LastSent {
                seq: out_seq,
                timestamp: out_ts,
                at: now,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::rtp::packet::RtpHeader;
    use std::time::Duration;

    const OURS: Ssrc = Ssrc(0x0005_0005);

    fn packet(ssrc: u32, seq: u16, ts: u32, marker: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + 160];
        RtpHeader {
            marker,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc: Ssrc(ssrc),
        }
        .write_header(&mut buf)
        .unwrap();
        buf
    }

    fn send(rw: &mut SourceRewriter, buf: &mut [u8], now: Instant) -> (u16, u32, bool) {
        let mut p = RtpPacket::parse(buf).unwrap();
        rw.rewrite(&mut p, now);
        assert_eq!(p.ssrc(), OURS);
        (p.sequence(), p.timestamp(), p.marker())
    }

    #[test]
    fn continuity_across_several_switches() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut rw = SourceRewriter::new(OURS, 8000, 10, 1000);
        // Hold music: 3 packets.
        for i in 0..3u16 {
            let mut b = packet(0xA, 40_000 + i, 7_000 + 160 * u32::from(i), false);
            let out = send(&mut rw, &mut b, ms(20 * u64::from(i)));
            assert_eq!(out, (10 + i, 1000 + 160 * u32::from(i), i == 0));
        }
        // Agent joins 100 ms after the last music packet (sent at 40 ms).
        let mut b = packet(0xB, 65_535, 4_294_967_000, false);
        assert_eq!(send(&mut rw, &mut b, ms(140)), (13, 1320 + 800, true));
        // The agent's own numbering wraps; ours follows by a constant offset.
        let mut b = packet(0xB, 0, 4_294_967_000u32.wrapping_add(160), false);
        assert_eq!(send(&mut rw, &mut b, ms(160)), (14, 2280, false));
        // A gap in the agent's stream (one lost packet) passes through.
        let mut b = packet(0xB, 2, 4_294_967_000u32.wrapping_add(480), true);
        assert_eq!(send(&mut rw, &mut b, ms(200)), (16, 2600, true));
        // A prompt starts 60 ms later.
        let mut b = packet(0xC, 5, 0, false);
        assert_eq!(send(&mut rw, &mut b, ms(260)), (17, 2600 + 480, true));
        // Back to the agent: a new feed again, fresh offsets.
        let mut b = packet(0xB, 50, 123_456, false);
        assert_eq!(send(&mut rw, &mut b, ms(280)), (18, 3080 + 160, true));
        let mut b = packet(0xB, 51, 123_616, false);
        assert_eq!(send(&mut rw, &mut b, ms(300)), (19, 3400, false));
    }

    #[test]
    fn explicit_switch_with_same_ssrc() {
        let t0 = Instant::now();
        let mut rw = SourceRewriter::new(OURS, 8000, 0, 0);
        let mut b = packet(0xC, 500, 80_000, false);
        assert_eq!(send(&mut rw, &mut b, t0), (0, 0, true));
        rw.switch_source();
        // Same player, next prompt restarts its numbering at 0.
        let mut b = packet(0xC, 0, 0, false);
        let out = send(&mut rw, &mut b, t0 + Duration::from_millis(20));
        assert_eq!(out, (1, 160, true));
    }

    #[test]
    fn late_packet_does_not_move_the_continuation_point() {
        let t0 = Instant::now();
        let mut rw = SourceRewriter::new(OURS, 8000, 100, 0);
        let mut a = packet(0xA, 1, 0, false);
        send(&mut rw, &mut a, t0);
        let mut c = packet(0xA, 3, 320, false);
        send(&mut rw, &mut c, t0 + Duration::from_millis(40));
        let mut late = packet(0xA, 2, 160, false);
        assert_eq!(
            send(&mut rw, &mut late, t0 + Duration::from_millis(45)),
            (101, 160, false)
        );
        let mut b = packet(0xB, 9, 9, false);
        // Follows seq 102 / ts 320 sent at 40 ms, not the late packet.
        assert_eq!(
            send(&mut rw, &mut b, t0 + Duration::from_millis(60)),
            (103, 480, true)
        );
    }
}
