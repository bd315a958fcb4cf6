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
    pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(&mut self, packet: &mut RtpPacket<B>, now: Instant) {
        let in_ssrc = packet.ssrc();
        let in_seq = packet.sequence();
        let in_ts = packet.timestamp();
        let feed = match self.feed {
            Some(feed) if feed.ssrc == in_ssrc => feed,
            _ => {
                let (seq, ts) = match self.last {
                    Some(last) => {
                        let elapsed = now.saturating_duration_since(last.at);
                        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate)
                            / 1_000_000_000;
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
