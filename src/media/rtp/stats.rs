//! Receiver statistics for one source: RFC 3550 Appendix A.1 (sequence
//! validation), A.3 (expected and lost counts) and A.8 (interarrival
//! jitter), turned into RTCP report blocks and a call-quality summary.

use std::time::{Duration, Instant};

use super::packet::Ssrc;
use super::rtcp::ReportBlock;

/// RFC 3550 A.1: a jump ahead larger than this is not a plain loss burst.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a packet this far behind is late, not a restart.
const MAX_MISORDER: u16 = 100;
/// RFC 3550 A.1: in-sequence packets needed before a source is valid.
const MIN_SEQUENTIAL: u8 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What the sequence check made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Counted (in order, late, or duplicate: A.1 does not tell those apart).
    Accepted,
    /// The source is still on probation; the packet is not counted.
    Probation,
    /// A large jump; counted only if the next packet confirms it.
    BadSequence,
    /// The second packet after a large jump confirmed it: the sender
    /// restarted and the statistics began again from this packet.
    Restarted,
}

/// The codec in use, for the E-model's equipment impairment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MosCodec {
    /// G.711 with packet loss concealment: Ie = 0, Bpl = 25.1 (ITU-T G.113
    /// Appendix I).
    G711,
    /// Opus. G.113 gives no values; we use Ie = 0 (transparent at the
    /// narrowband ceiling of this model) and Bpl = 25.1 like concealed G.711,
    /// since Opus conceals loss too. An approximation, not an ITU figure.
    Opus,
}

impl MosCodec {
    fn ie(self) -> f64 {
        match self {
            Self::G711 | Self::Opus => 0.0,
        }
    }

    fn bpl(self) -> f64 {
        match self {
            Self::G711 | Self::Opus => 25.1,
        }
    }
}

/// A snapshot for logs and CDRs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSummary {
    /// Packets counted by the A.1 check.
    pub packets: u64,
    /// Packets lost, summed over sources (never negative: duplicates do
    /// not cancel losses).
    pub lost: i64,
    /// Interarrival jitter, A.8, in milliseconds.
    pub jitter_ms: f64,
    /// Estimated MOS, see [`ReceiverStats::summary`].
    pub mos: f64,
    /// Round trip from RTCP (RFC 3550 §6.4.1), when measured.
    pub round_trip_ms: Option<f64>,
}

/// Statistics about the packets received from one source.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    codec: MosCodec,
    ssrc: Option<Ssrc>,
    // RFC 3550 A.1 `source` fields.
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    // A.8: the jitter is kept scaled by 16 to stay in integers.
    jitter_q4: u64,
    last_transit: Option<u32>,
    clock_origin: Option<Instant>,
    // For LSR/DLSR (RFC 3550 §6.4.1).
    last_sr: Option<(u32, Instant)>,
    round_trip: Option<Duration>,
    /// (expected, received) of the sources before the current one: a
    /// call's summary covers all of them (phones change SSRC, e.g. to play
    /// DTMF or after a re-INVITE), while reports stay per source.
    earlier: (u64, u64),
}

impl ReceiverStats {
    /// `clock_rate` is the RTP timestamp rate of the payload format (8000
    /// for G.711, 48000 for Opus).
    pub fn new(clock_rate: u32, codec: MosCodec) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            codec,
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            clock_origin: None,
            last_sr: None,
            round_trip: None,
            earlier: (0, 0),
        }
    }

    /// The source measured, once a packet has been seen.
    pub fn ssrc(&self) -> Option<Ssrc> {
        self.ssrc
    }

    /// Accounts one packet. A packet from another SSRC means the far end
    /// replaced its source (RFC 3550 §8.2), so everything starts again.
    pub fn update(&mut self, ssrc: Ssrc, seq: u16, rtp_ts: u32, now: Instant) -> SeqVerdict {
        if self.ssrc != Some(ssrc) {
            let earlier = (
                self.earlier.0 + self.expected(),
                self.earlier.1 + self.received,
            );
            let round_trip = self.round_trip;
            *self = Self::new(self.clock_rate, self.codec);
            self.earlier = earlier;
            self.round_trip = round_trip;
            self.ssrc = Some(ssrc);
            // A.1: a new source starts on probation.
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let verdict = self.update_seq(seq);
        match verdict {
            SeqVerdict::Accepted => self.update_jitter(rtp_ts, now),
            SeqVerdict::Restarted => {
                // New timestamp base too: the old transit means nothing.
                self.last_transit = None;
                self.update_jitter(rtp_ts, now);
            }
            SeqVerdict::Probation | SeqVerdict::BadSequence => {}
        }
        verdict
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`, line for line.
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Accepted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        let mut verdict = SeqVerdict::Accepted;
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the other side restarted without
                // telling us, so resync.
                self.init_seq(seq);
                verdict = SeqVerdict::Restarted;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::BadSequence;
            }
        }
        // Otherwise a duplicate or reordered packet: counted, as in A.1.
        self.received += 1;
        verdict
    }

    /// RFC 3550 A.8, with the arrival clock counted in timestamp units from
    /// the first packet (only differences of transit times matter).
    fn update_jitter(&mut self, rtp_ts: u32, now: Instant) {
        let origin = *self.clock_origin.get_or_insert(now);
        let elapsed = now.saturating_duration_since(origin);
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        // Like RTP timestamps, the arrival clock wraps modulo 2^32.
        let arrival = (ticks % (1u128 << 32)) as u32;
        let transit = arrival.wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last) as i32;
            let d = u64::from(d.unsigned_abs());
            // J += (|D| - J) / 16, in the integer form of A.8. |D| < 2^31,
            // so J stays below 2^35 and u64 cannot overflow.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Records a sender report from this source (its NTP timestamp) so
    /// that the next report block carries LSR and DLSR (RFC 3550 §6.4.1).
    pub fn on_sender_report(&mut self, ntp_timestamp: u64, now: Instant) {
        let middle = (ntp_timestamp >> 16) as u32;
        self.last_sr = Some((middle, now));
    }

    /// The round-trip time measured from our own reports (RFC 3550 §6.4.1),
    /// used as delay in the MOS estimate.
    pub fn set_round_trip(&mut self, rtt: Duration) {
        self.round_trip = Some(rtt);
    }

    /// RFC 3550 A.3: the highest sequence number with its wrap count.
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// RFC 3550 A.3: packets expected since the base sequence number.
    pub fn expected(&self) -> u64 {
        if self.ssrc.is_none() || self.probation > 0 {
            return 0;
        }
        (u64::from(self.extended_max()) + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Packets counted by the A.1 check.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// RFC 3550 A.3: cumulative loss; negative when duplicates arrived.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units (A.8).
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// A report block for an SR or RR about this source, and the start of
    /// the next reporting interval (A.3 `expected_prior`/`received_prior`).
    /// None before the source has passed probation.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        if self.probation > 0 {
            return None;
        }
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        // The field is 24-bit signed: clamp (RFC 3550 §6.4.1).
        let cumulative_lost = self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32;
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                // DLSR is in units of 1/65536 s.
                let units = delay.as_nanos() * 65_536 / 1_000_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost,
            highest_seq: self.extended_max(),
            jitter: self.jitter(),
            last_sr: lsr,
            delay_since_last_sr: dlsr,
        })
    }

    /// Packets, loss, jitter in ms and an estimated MOS, over every source
    /// the leg has had (jitter: the current source's). Duplicates do not
    /// offset losses here: the loss is never negative.
    ///
    /// The MOS comes from a simplified ITU-T G.107 E-model:
    /// `R = 93.2 - Id - Ie_eff`, with
    /// - one-way delay `d` (ms) = half the round trip if known via
    ///   [`Self::set_round_trip`], plus twice the jitter (a de-jitter buffer
    ///   sized at twice the jitter);
    /// - `Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)` (Cole and
    ///   Rosenbluth's fit, `H` the step function);
    /// - `Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)` with `Ppl` the loss in
    ///   percent (random loss, BurstR = 1) and `Ie`/`Bpl` from [`MosCodec`];
    /// - `MOS = 1` for R < 0, `4.5` for R > 100, otherwise
    ///   `1 + 0.035 R + 7e-6 R (R - 60) (100 - R)`.
    pub fn summary(&self) -> StatsSummary {
        let jitter_ms = self.jitter_q4 as f64 / 16.0 * 1000.0 / f64::from(self.clock_rate);
        let expected = self.earlier.0 + self.expected();
        let received = self.earlier.1 + self.received;
        // Per source, so that one source's duplicates do not hide
        // another's losses.
        let lost = self.lost().max(0)
            + i64::try_from(self.earlier.0.saturating_sub(self.earlier.1)).unwrap_or(i64::MAX);
        let loss_pct = if expected == 0 {
            0.0
        } else {
            (lost as f64 / expected as f64 * 100.0).min(100.0)
        };
        let one_way_ms = self.round_trip.map_or(0.0, |rtt| rtt.as_secs_f64() * 500.0);
        StatsSummary {
            packets: received,
            lost,
            jitter_ms,
            mos: estimate_mos(self.codec, one_way_ms + 2.0 * jitter_ms, loss_pct),
            round_trip_ms: self.round_trip.map(|rtt| rtt.as_secs_f64() * 1000.0),
        }
    }
}

/// The simplified E-model of [`ReceiverStats::summary`].
pub fn estimate_mos(codec: MosCodec, delay_ms: f64, loss_pct: f64) -> f64 {
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = loss_pct.clamp(0.0, 100.0);
    let ie = codec.ie();
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + codec.bpl());
    let r = 93.2 - id - ie_eff;
    if r < 0.0 {
        1.0
    } else if r > 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SRC: Ssrc = Ssrc(0x1234);
    const FRAME: Duration = Duration::from_millis(20);

    /// Feeds `seqs` as G.711 (20 ms, 160 ticks per packet, perfect pacing:
    /// arrival and timestamp both follow the sequence number).
    fn feed(stats: &mut ReceiverStats, t0: Instant, seqs: &[u16]) -> Vec<SeqVerdict> {
        seqs.iter()
            .map(|&s| {
                let ts = u32::from(s).wrapping_mul(160);
                stats.update(SRC, s, ts, t0 + FRAME * u32::from(s))
            })
            .collect()
    }

    #[test]
    fn the_summary_covers_every_source_and_duplicates_are_not_negative_loss() {
        let t0 = Instant::now();
        let mut stats = ReceiverStats::new(8000, MosCodec::G711);
        let seqs: Vec<u16> = (1..=100).collect();
        feed(&mut stats, t0, &seqs);
        // A second source (DTMF played from another SSRC) with its end
        // packet sent three times, the same sequence number each time.
        for seq in [500u16, 501, 502, 503, 503, 503] {
            stats.update(Ssrc(0xd7), seq, 0, t0);
        }
        let s = stats.summary();
        assert_eq!(
            s.packets,
            100 + 6 - 2,
            "probation packets of each source are not counted"
        );
        assert_eq!(s.lost, 0);
        assert!(stats.lost() < 0, "per-source A.3 loss keeps its sign");
    }

    #[test]
    fn probation_then_in_order() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        let v = feed(&mut s, t0, &(100..110).collect::<Vec<_>>());
        assert_eq!(v[0], SeqVerdict::Probation);
        assert!(v[1..].iter().all(|v| *v == SeqVerdict::Accepted));
        // A.1: the packet that ends probation becomes the base.
        assert_eq!((s.received(), s.expected(), s.lost()), (9, 9, 0));
        assert_eq!(s.jitter(), 0);
        let rb = s.report_block(t0).unwrap();
        assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, 0));
        assert_eq!(rb.highest_seq, 109);
        assert_eq!(rb.ssrc, SRC);
    }

    #[test]
    fn broken_probation_restarts_it() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        let v = feed(&mut s, t0, &[10, 12, 13]);
        assert_eq!(
            v,
            [
                SeqVerdict::Probation,
                SeqVerdict::Probation,
                SeqVerdict::Accepted
            ]
        );
        assert!(ReceiverStats::new(8000, MosCodec::G711)
            .report_block(t0)
            .is_none());
    }

    #[test]
    fn loss_and_fraction_per_interval() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        // 100 is probation; base 101; 105 and 106 lost; 101..=110 expected.
        feed(&mut s, t0, &[100, 101, 102, 103, 104, 107, 108, 109, 110]);
        assert_eq!((s.expected(), s.received(), s.lost()), (10, 8, 2));
        let rb = s.report_block(t0).unwrap();
        assert_eq!(rb.fraction_lost, 51); // (2 << 8) / 10
        assert_eq!(rb.cumulative_lost, 2);
        // The next interval has no loss: fraction 0, cumulative still 2.
        feed(&mut s, t0, &(111..=120).collect::<Vec<_>>());
        let rb = s.report_block(t0).unwrap();
        assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, 2));
        assert_eq!(rb.highest_seq, 120);
    }

    #[test]
    fn reordering_and_duplicates() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        feed(&mut s, t0, &[1, 2, 4, 3, 5]);
        assert_eq!((s.expected(), s.received(), s.lost()), (4, 4, 0));
        assert_eq!(s.extended_max(), 5);
        // A duplicate is counted too (A.1), so loss goes negative.
        feed(&mut s, t0, &[5]);
        assert_eq!(s.lost(), -1);
        let rb = s.report_block(t0).unwrap();
        assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, -1));
        // A packet 60 behind is late, not a jump: counted, max unchanged.
        feed(&mut s, t0, &(6..=70).collect::<Vec<_>>());
        assert_eq!(s.update(SRC, 10, 1600, t0), SeqVerdict::Accepted);
        assert_eq!(s.extended_max(), 70);
    }

    #[test]
    fn wrap_at_65535() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        let v = feed(&mut s, t0, &[65533, 65534, 65535, 0, 1, 2]);
        assert!(v[1..].iter().all(|v| *v == SeqVerdict::Accepted));
        assert_eq!(s.extended_max(), 65536 + 2);
        assert_eq!((s.expected(), s.received(), s.lost()), (5, 5, 0));
        assert_eq!(s.report_block(t0).unwrap().highest_seq, 0x1_0002);
    }

    #[test]
    fn large_jump_needs_confirmation_then_restarts() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        feed(&mut s, t0, &(100..=110).collect::<Vec<_>>());
        // One stray packet far ahead is ignored...
        assert_eq!(s.update(SRC, 30_000, 0, t0), SeqVerdict::BadSequence);
        assert_eq!(s.update(SRC, 111, 0, t0), SeqVerdict::Accepted);
        assert_eq!((s.received(), s.extended_max()), (11, 111));
        // ...two in a row mean the sender restarted (A.1).
        assert_eq!(s.update(SRC, 5000, 0, t0), SeqVerdict::BadSequence);
        assert_eq!(s.update(SRC, 5001, 160, t0), SeqVerdict::Restarted);
        assert_eq!(s.update(SRC, 5002, 320, t0), SeqVerdict::Accepted);
        assert_eq!((s.expected(), s.received(), s.lost()), (2, 2, 0));
    }

    #[test]
    fn new_ssrc_starts_over() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        feed(&mut s, t0, &(1..=10).collect::<Vec<_>>());
        assert_eq!(s.update(Ssrc(9), 500, 0, t0), SeqVerdict::Probation);
        assert_eq!(s.ssrc(), Some(Ssrc(9)));
        assert_eq!(s.received(), 0);
    }

    #[test]
    fn jitter_follows_a8() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        s.update(SRC, 1, 0, t0); // probation
        s.update(SRC, 2, 160, t0 + Duration::from_millis(20)); // transit -160
        s.update(SRC, 3, 320, t0 + Duration::from_millis(50)); // 10 ms late: D = 80
        assert_eq!(s.jitter(), 5); // 80 / 16
        s.update(SRC, 4, 480, t0 + Duration::from_millis(60)); // back on time: D = 80
                                                               // J = 5 + (80 - 5) / 16 = 9.6875
        assert_eq!(s.jitter(), 9);
        let sum = s.summary();
        assert!((sum.jitter_ms - 9.6875 / 8.0).abs() < 1e-9);
        assert_eq!((sum.packets, sum.lost), (3, 0));
    }

    #[test]
    fn lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        feed(&mut s, t0, &[1, 2]);
        s.on_sender_report(0x1122_3344_5566_7788, t0);
        let rb = s.report_block(t0 + Duration::from_millis(1500)).unwrap();
        assert_eq!(rb.last_sr, 0x3344_5566);
        assert_eq!(rb.delay_since_last_sr, 98_304); // 1.5 * 65536
    }

    #[test]
    fn mos_estimates() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        // R = 93.2 with no impairment.
        assert!(close(estimate_mos(MosCodec::G711, 0.0, 0.0), 4.409_285_824));
        // 5 % loss: Ie_eff = 95 * 5 / 30.1.
        assert!(close(
            estimate_mos(MosCodec::G711, 0.0, 5.0),
            3.922_838_992_6
        ));
        // 200 ms: Id = 4.8 + 0.11 * 22.7.
        assert!(close(
            estimate_mos(MosCodec::Opus, 200.0, 0.0),
            4.226_180_124
        ));
        assert!(close(
            estimate_mos(MosCodec::G711, 0.0, 100.0),
            1.176_862_406
        ));
        assert!(close(estimate_mos(MosCodec::G711, 2000.0, 0.0), 1.0));
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000, MosCodec::G711);
        feed(&mut s, t0, &[100, 101, 102, 103, 104, 107, 108, 109, 110]);
        s.set_round_trip(Duration::from_millis(100));
        // 20 % loss, 50 ms one way, no jitter.
        let expected = estimate_mos(MosCodec::G711, 50.0, 20.0);
        assert!(close(s.summary().mos, expected));
        assert!(s.summary().mos < 4.0);
    }
}
