//! The sans-IO media relay that anchors every call: caller leg ↔ agent leg.
//!
//! The media workers read a datagram from a leg's socket, hand it to
//! [`Relay::on_rtp`] together with the address it came from, and send the
//! (rewritten in place) bytes wherever the returned [`Forward`] says. The
//! relay owns no socket, no clock and no randomness: `now` is an argument
//! and the caller draws the random SSRCs and initial numbers.
//!
//! Per packet the relay
//! 1. parses the RTP header as a zero-copy view (malformed → dropped, counted);
//! 2. applies symmetric-RTP latching (RFC 4961 §3.2 behaviour; the caller
//!    may sit behind a NAT, so the address in its SDP is often unreachable
//!    and the address its packets come from is the one to send to);
//! 3. accounts the packet in the receiving leg's statistics and dead-stream
//!    detector;
//! 4. rewrites it for the other leg (our SSRC, continuous seq/ts, that leg's
//!    payload type) and says where to send it.
//!
//! Nothing is allocated per packet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::media::rtp::rtcp::{
    parse_compound, write_compound, ReceiverReport, RtcpPacket, SdesChunk, SdesItem, SenderReport,
    SDES_CNAME,
};
use crate::media::rtp::{
    DeadStream, MosCodec, ReceiverStats, RtpError, RtpPacket, SourceRewriter, Ssrc, StatsSummary,
};

/// One side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegId {
    Caller,
    Agent,
}

impl LegId {
    /// The leg that receives what this one sends.
    pub fn other(self) -> Self {
        match self {
            Self::Caller => Self::Agent,
            Self::Agent => Self::Caller,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Caller => 0,
            Self::Agent => 1,
        }
    }
}

/// A leg's media direction as the relay negotiated it for that leg (the
/// attribute in *our* SDP towards the leg, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// We send to the leg and forward what it sends.
    #[default]
    SendRecv,
    /// We send to the leg; the leg is not supposed to send (e.g. it is
    /// being played a prompt and must not be heard), so what it sends is not
    /// forwarded and its silence is not a dead stream.
    SendOnly,
    /// We only receive from the leg: nothing is forwarded to it (hold: the
    /// playback path feeds it music through [`Relay::inject`] instead).
    RecvOnly,
    /// Neither way.
    Inactive,
}

impl Direction {
    /// Whether the leg takes media from us (RFC 3264 §5.1: not when it
    /// declared itself sendonly or inactive).
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this leg's media is forwarded (and expected to keep coming).
    fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// Settings shared by both legs.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// A leg silent this long (while it should be sending) is reported dead.
    pub dead_after: Duration,
    /// Consecutive packets, same SSRC, from a new address needed to move a
    /// latched leg there (values below 1 count as 1).
    pub relatch_after: u8,
}

impl RelayConfig {
    /// Re-latch after 3 packets.
    pub fn new(dead_after: Duration) -> Self {
        Self {
            dead_after,
            relatch_after: 3,
        }
    }
}

/// What the signalling layer knows about one leg.
#[derive(Debug, Clone, Copy)]
pub struct LegConfig {
    /// The connection address and port from the leg's SDP, used until its
    /// first packet shows where it really is.
    pub expected_remote: Option<SocketAddr>,
    /// Our SSRC towards this leg (random, RFC 3550 §8.1).
    pub our_ssrc: Ssrc,
    /// First sequence number we send to this leg (random, RFC 3550 §5.1).
    pub initial_seq: u16,
    /// First timestamp we send to this leg (random, RFC 3550 §5.1).
    pub initial_ts: u32,
    /// The payload type this leg negotiated for the relayed codec.
    pub payload_type_out: u8,
    /// The payload type this leg negotiated for `telephone-event` (RFC 4733
    /// DTMF), if any. Events from the other leg are renumbered to it, not
    /// to `payload_type_out`, and dropped if this leg has none.
    pub telephone_event_pt: Option<u8>,
    /// RTP timestamp rate of this leg's payload format (8000 for G.711,
    /// 48000 for Opus): legs differ when the call is transcoded.
    pub clock_rate: u32,
    /// Codec for the MOS estimate in [`Relay::stats`].
    pub codec: MosCodec,
}

/// Why a relay cannot be built from the given configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RelayConfigError {
    #[error("payload type {payload_type} for the {leg:?} leg does not fit in 7 bits")]
    InvalidPayloadType { leg: LegId, payload_type: u8 },
}

/// Where to send the packet that [`Relay::on_rtp`] rewrote in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub leg: LegId,
    pub to: SocketAddr,
}

/// A packet [`Relay::accept`] took from a leg, with the header fields a
/// caller reading the payload needs, so that it need not parse again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// It is an RFC 4733 telephone-event, not audio.
    pub is_event: bool,
    pub sequence: u16,
    pub timestamp: u32,
    /// Where the payload lies in the datagram (padding excluded).
    pub payload: std::ops::Range<usize>,
}

/// Reported by [`Relay::handle_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// The leg has sent nothing for `dead_after`; reported once per silence.
    Dead { leg: LegId },
}

/// Per-leg packet counters (packets received *from* the leg).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// Valid packets accepted from the latched source.
    pub accepted: u64,
    /// Datagrams that are not valid RTP.
    pub malformed: u64,
    /// RTCP multiplexed onto the RTP port (RFC 5761 §4), which the
    /// relay does not rewrite as if it were RTP.
    pub rtcp: u64,
    /// DTMF events the other leg did not negotiate `telephone-event` for.
    pub unmapped_event: u64,
    /// Valid packets from another address that did not (yet) re-latch,
    /// e.g. spoofed.
    pub foreign_source: u64,
    /// Accepted but not forwarded because of the directions (hold).
    pub held: u64,
    /// Accepted but the other leg has no known address yet.
    pub no_destination: u64,
    /// Forwarded to the other leg.
    pub forwarded: u64,
}

/// A new source address seen on a latched leg, on its way to re-latching.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    ssrc: Ssrc,
    count: u8,
}

#[derive(Debug, Clone)]
struct Leg {
    expected_remote: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    candidate: Option<Candidate>,
    payload_type_out: u8,
    telephone_event_pt: Option<u8>,
    direction: Direction,
    /// Rewrites what is sent *to* this leg.
    rewriter: SourceRewriter,
    /// Measures what is received *from* this leg.
    stats: ReceiverStats,
    dead: DeadStream,
    counters: LegCounters,
    /// What we sent to the leg, for our sender reports (RFC 3550 §6.4.1).
    sent: SentCounts,
    /// Where the leg's RTCP comes from (symmetric RTCP, like RTP).
    rtcp_latched: Option<SocketAddr>,
    /// Our last SR to the leg: its NTP middle 32 bits, for the round trip.
    last_sr_sent: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default)]
struct SentCounts {
    packets: u32,
    octets: u32,
    last_ts: u32,
    /// Packets sent since the last report: an SR only when we are a sender
    /// (RFC 3550 §6.4).
    since_report: u32,
}

impl SentCounts {
    fn count(&mut self, len: usize, header_len: usize, ts: u32) {
        self.packets = self.packets.wrapping_add(1);
        let payload = len.saturating_sub(header_len);
        self.octets = self
            .octets
            .wrapping_add(u32::try_from(payload).unwrap_or(u32::MAX));
        self.last_ts = ts;
        self.since_report = self.since_report.saturating_add(1);
    }
}

impl Leg {
    fn new(
        now: Instant,
        config: &RelayConfig,
        id: LegId,
        c: LegConfig,
    ) -> Result<Leg, RelayConfigError> {
        for pt in [Some(c.payload_type_out), c.telephone_event_pt]
            .into_iter()
            .flatten()
        {
            if pt > 0x7f {
                return Err(RelayConfigError::InvalidPayloadType {
                    leg: id,
                    payload_type: pt,
                });
            }
        }
        Ok(Leg {
            expected_remote: c.expected_remote,
            latched: None,
            candidate: None,
            payload_type_out: c.payload_type_out,
            telephone_event_pt: c.telephone_event_pt,
            direction: Direction::SendRecv,
            rewriter: SourceRewriter::new(c.our_ssrc, c.clock_rate, c.initial_seq, c.initial_ts),
            stats: ReceiverStats::new(c.clock_rate, c.codec),
            dead: DeadStream::new(config.dead_after, now),
            counters: LegCounters::default(),
            sent: SentCounts::default(),
            rtcp_latched: None,
            last_sr_sent: None,
        })
    }

    fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.expected_remote)
    }

    /// Symmetric RTP (RFC 4961 §3.2): send to where the leg's packets come
    /// from. Returns whether the packet comes from the (possibly new)
    /// latched source. The first packet latches; moving needs
    /// `relatch_after` consecutive packets from one new address with one
    /// SSRC, so a single spoofed packet can neither hijack the call nor
    /// inject audio into it.
    fn latch(&mut self, from: SocketAddr, ssrc: Ssrc, relatch_after: u8) -> bool {
        match self.latched {
            None => {
                self.latched = Some(from);
                true
            }
            Some(current) if current == from => {
                self.candidate = None;
                true
            }
            Some(_) => {
                let count = match self.candidate {
                    Some(c) if c.from == from && c.ssrc == ssrc => c.count.saturating_add(1),
                    _ => 1,
                };
                if count >= relatch_after {
                    self.latched = Some(from);
                    self.candidate = None;
                    true
                } else {
                    self.candidate = Some(Candidate { from, ssrc, count });
                    false
                }
            }
        }
    }
}

/// The relay core of one call.
#[derive(Debug, Clone)]
pub struct Relay {
    legs: [Leg; 2],
    config: RelayConfig,
}

impl Relay {
    /// `legs[0]` is the caller leg, `legs[1]` the agent leg. Both start
    /// `SendRecv` and are watched for silence from `now`.
    pub fn new(
        now: Instant,
        config: RelayConfig,
        legs: [LegConfig; 2],
    ) -> Result<Self, RelayConfigError> {
        let [caller, agent] = legs;
        Ok(Self {
            legs: [
                Leg::new(now, &config, LegId::Caller, caller)?,
                Leg::new(now, &config, LegId::Agent, agent)?,
            ],
            config,
        })
    }

    /// A relay whose agent leg is not there yet (a caller hearing a prompt,
    /// music or its own echo): packets from the caller have nowhere to go
    /// until [`Self::attach`] brings the other leg.
    pub fn single(
        now: Instant,
        config: RelayConfig,
        caller: LegConfig,
    ) -> Result<Self, RelayConfigError> {
        let absent = LegConfig {
            expected_remote: None,
            ..caller
        };
        let mut relay = Self::new(now, config, [caller, absent])?;
        relay.legs[LegId::Agent.index()].direction = Direction::Inactive;
        relay.legs[LegId::Agent.index()].dead.pause();
        Ok(relay)
    }

    /// Sets up `leg` afresh (the agent answering, or a leg replaced by a
    /// transfer): new latching, statistics and outgoing numbering.
    pub fn attach(
        &mut self,
        now: Instant,
        leg: LegId,
        config: LegConfig,
    ) -> Result<(), RelayConfigError> {
        self.legs[leg.index()] = Leg::new(now, &self.config, leg, config)?;
        Ok(())
    }

    /// Changes where `leg` is expected to be (a re-INVITE moved it), keeping
    /// its latching: a latched leg follows its packets, not its SDP.
    pub fn set_expected_remote(&mut self, leg: LegId, remote: Option<SocketAddr>) {
        self.leg_mut(leg).expected_remote = remote;
    }

    fn leg(&self, id: LegId) -> &Leg {
        &self.legs[id.index()]
    }

    fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        &mut self.legs[id.index()]
    }

    /// One datagram arrived on `leg`'s socket from `from`. On `Some`, the
    /// packet has been rewritten in place for the returned leg and must be
    /// sent to the returned address; on `None` it is dropped (the reason is
    /// counted in [`Self::counters`]). [`Self::accept`] then
    /// [`Self::forward`], for callers that look at the packet in between.
    pub fn on_rtp(
        &mut self,
        now: Instant,
        leg: LegId,
        from: SocketAddr,
        packet: &mut [u8],
    ) -> Option<Forward> {
        let accepted = self.accept(now, leg, from, packet)?;
        self.forward(now, leg, &accepted, packet)
    }

    /// The receiving half of [`Self::on_rtp`]: checks the datagram is RTP
    /// from the leg's (possibly new) latched source and accounts it in the
    /// leg's statistics and dead-stream detector. `None` when dropped.
    pub fn accept(
        &mut self,
        now: Instant,
        leg: LegId,
        from: SocketAddr,
        packet: &[u8],
    ) -> Option<Accepted> {
        let relatch_after = self.config.relatch_after.max(1);
        let rx = self.leg_mut(leg);
        // RFC 5761 §4: with rtcp-mux, a second byte whose low 7 bits are
        // 64..=95 is RTCP (types 192..=223), not RTP with the marker set.
        if let [first, second, ..] = *packet {
            if first >> 6 == 2 && (64..=95).contains(&(second & 0x7f)) {
                rx.counters.rtcp += 1;
                return None;
            }
        }
        let Ok(p) = RtpPacket::parse(packet) else {
            rx.counters.malformed += 1;
            return None;
        };
        let ssrc = p.ssrc();
        if !rx.latch(from, ssrc, relatch_after) {
            rx.counters.foreign_source += 1;
            return None;
        }
        rx.counters.accepted += 1;
        rx.stats.update(ssrc, p.sequence(), p.timestamp(), now);
        rx.dead.on_packet(now);
        let start = p.header_len();
        Some(Accepted {
            is_event: rx.telephone_event_pt == Some(p.payload_type()),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            payload: start..start + p.payload().len(),
        })
    }

    /// The sending half of [`Self::on_rtp`]: rewrites an accepted packet
    /// from `leg` in place for the other leg, if the directions let it pass.
    pub fn forward(
        &mut self,
        now: Instant,
        leg: LegId,
        accepted: &Accepted,
        packet: &mut [u8],
    ) -> Option<Forward> {
        let forward_from_rx = self.leg(leg).direction.sends();
        let out = leg.other();
        let tx = self.leg(out);
        let Some(to) = tx.destination() else {
            self.leg_mut(leg).counters.no_destination += 1;
            return None;
        };
        if !(forward_from_rx && tx.direction.receives()) {
            self.leg_mut(leg).counters.held += 1;
            return None;
        }
        let pt_out = if accepted.is_event {
            match tx.telephone_event_pt {
                Some(pt) => pt,
                None => {
                    self.leg_mut(leg).counters.unmapped_event += 1;
                    return None;
                }
            }
        } else {
            tx.payload_type_out
        };
        let len = packet.len();
        // `accept` parsed the same bytes.
        let mut p = RtpPacket::parse(packet).ok()?;
        let tx = self.leg_mut(out);
        // RFC 4733 §2.1: events share the audio's SSRC and timestamp clock,
        // so the same rewriter keeps both continuous.
        tx.rewriter.rewrite(&mut p, now);
        // Checked ≤ 127 in `new`, so this cannot fail.
        let _ = p.set_payload_type(pt_out);
        let (header_len, ts) = (p.header_len(), p.timestamp());
        tx.sent.count(len, header_len, ts);
        self.leg_mut(leg).counters.forwarded += 1;
        Some(Forward { leg: out, to })
    }

    /// Rewrites a locally generated packet (hold music, a prompt) for `leg`
    /// so it continues the stream that leg hears, and says where to send it.
    /// Works whatever the directions are: the playback path decides when to
    /// play.
    pub fn inject(
        &mut self,
        now: Instant,
        leg: LegId,
        packet: &mut [u8],
    ) -> Result<Option<SocketAddr>, RtpError> {
        let tx = self.leg_mut(leg);
        let len = packet.len();
        let mut p = RtpPacket::parse(packet)?;
        let Some(to) = tx.destination() else {
            return Ok(None);
        };
        tx.rewriter.rewrite(&mut p, now);
        p.set_payload_type(tx.payload_type_out)?;
        let (header_len, ts) = (p.header_len(), p.timestamp());
        tx.sent.count(len, header_len, ts);
        Ok(Some(to))
    }

    /// An RTCP compound from `leg` (RFC 3550 §6): a sender report sets the
    /// LSR/DLSR of our next report; a report about our stream gives the
    /// round trip (§6.4.1: A - LSR - DLSR) used in the MOS estimate.
    /// `ntp_now` is the wall clock in NTP format. Returns false when the
    /// datagram is not valid RTCP.
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        ntp_now: u64,
        leg: LegId,
        from: SocketAddr,
        packet: &[u8],
    ) -> bool {
        let Ok(packets) = parse_compound(packet) else {
            return false;
        };
        let l = self.leg_mut(leg);
        l.rtcp_latched = Some(from);
        let ours = l.rewriter.ssrc();
        let arrival = (ntp_now >> 16) as u32;
        for p in &packets {
            let blocks = match p {
                RtcpPacket::SenderReport(sr) => {
                    l.stats.on_sender_report(sr.ntp_timestamp, now);
                    &sr.reports
                }
                RtcpPacket::ReceiverReport(rr) => &rr.reports,
                _ => continue,
            };
            for b in blocks.iter().filter(|b| b.ssrc == ours && b.last_sr != 0) {
                if l.last_sr_sent == Some(b.last_sr) {
                    let rtt = arrival
                        .wrapping_sub(b.last_sr)
                        .wrapping_sub(b.delay_since_last_sr);
                    // Units of 1/65536 s; a negative (wrapped) value is a
                    // clock step, not a round trip.
                    if rtt < 65_536 * 10 {
                        l.stats.set_round_trip(Duration::from_nanos(
                            u64::from(rtt) * 1_000_000_000 / 65_536,
                        ));
                    }
                }
            }
        }
        true
    }

    /// Our RTCP report to `leg` (RFC 3550 §6.4): an SR when we sent media
    /// since the last report, else an RR, each with a report block about
    /// the leg's stream when it has one, plus SDES CNAME (§6.1: every
    /// compound carries one). `ntp_now` is the wall clock in NTP format.
    /// Returns the datagram and where to send it: where the leg's RTCP
    /// comes from, else `sdp_rtcp`.
    pub fn rtcp_report(
        &mut self,
        now: Instant,
        ntp_now: u64,
        leg: LegId,
        cname: &[u8],
        sdp_rtcp: Option<SocketAddr>,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let l = self.leg_mut(leg);
        let to = l.rtcp_latched.or(sdp_rtcp)?;
        let ssrc = l.rewriter.ssrc();
        let reports: Vec<_> = l.stats.report_block(now).into_iter().collect();
        let report = if l.sent.since_report > 0 {
            l.sent.since_report = 0;
            l.last_sr_sent = Some((ntp_now >> 16) as u32);
            RtcpPacket::SenderReport(SenderReport {
                ssrc,
                ntp_timestamp: ntp_now,
                rtp_timestamp: l.sent.last_ts,
                packet_count: l.sent.packets,
                octet_count: l.sent.octets,
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
        };
        let sdes = RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc,
            items: vec![SdesItem {
                kind: SDES_CNAME,
                value: cname,
            }],
        }]);
        let mut out = Vec::with_capacity(128);
        write_compound(&[report, sdes], &mut out).ok()?;
        Some((out, to))
    }

    /// Changes `leg`'s direction (hold, unhold, re-INVITE).
    pub fn set_direction(&mut self, now: Instant, leg: LegId, direction: Direction) {
        let l = self.leg_mut(leg);
        let before = l.direction;
        l.direction = direction;
        if before.receives() != direction.receives() {
            // Whatever feeds the leg next (the other leg again, or music)
            // is a new talkspurt: marker bit, continuous numbering
            // (RFC 3550 §5.1, RFC 3551 §4.1).
            l.rewriter.switch_source();
        }
        if before.sends() && !direction.sends() {
            // A leg on hold legitimately sends nothing.
            l.dead.pause();
        } else if !before.sends() && direction.sends() {
            l.dead.resume(now);
        }
    }

    /// The leg's current direction.
    pub fn direction(&self, leg: LegId) -> Direction {
        self.leg(leg).direction
    }

    /// Where the leg's media is sent: its latched address, else the SDP one.
    pub fn destination(&self, leg: LegId) -> Option<SocketAddr> {
        self.leg(leg).destination()
    }

    /// When [`Self::handle_timeout`] next has something to report.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs.iter().filter_map(|l| l.dead.poll_timeout()).min()
    }

    /// Reports a dead leg, once per silence. Call until it returns `None`:
    /// both legs may be due at once.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<RelayEvent> {
        [LegId::Caller, LegId::Agent].into_iter().find_map(|id| {
            self.leg_mut(id)
                .dead
                .handle_timeout(now)
                .map(|_| RelayEvent::Dead { leg: id })
        })
    }

    /// Receive statistics of what `leg` sends us.
    pub fn stats(&self, leg: LegId) -> StatsSummary {
        self.leg(leg).stats.summary()
    }

    /// Packet counters of what `leg` sends us.
    pub fn counters(&self, leg: LegId) -> LegCounters {
        self.leg(leg).counters
    }
}

/// Fuzz body: arbitrary datagrams on either leg, from two addresses, must
/// not panic, and a forwarded packet keeps its length and carries our SSRC.
pub fn fuzz_relay(data: &[u8]) {
    let t0 = Instant::now();
    let a: SocketAddr = ([10, 0, 0, 1], 4000).into();
    let b: SocketAddr = ([10, 0, 0, 2], 4000).into();
    let leg = |ssrc, pt| LegConfig {
        expected_remote: Some(a),
        our_ssrc: Ssrc(ssrc),
        initial_seq: 1,
        initial_ts: 1,
        payload_type_out: pt,
        telephone_event_pt: Some(101),
        clock_rate: 8000,
        codec: MosCodec::G711,
    };
    let Ok(mut relay) = Relay::new(
        t0,
        RelayConfig::new(Duration::from_secs(5)),
        [leg(7, 0), leg(8, 8)],
    ) else {
        return;
    };
    let mut buf = [0u8; 1500];
    for (i, chunk) in data.chunks(64).enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let id = if i % 2 == 0 {
            LegId::Caller
        } else {
            LegId::Agent
        };
        let from = if i % 3 == 0 { b } else { a };
        let packet = &mut buf[..chunk.len()];
        packet.copy_from_slice(chunk);
        if let Some(fwd) = relay.on_rtp(now, id, from, packet) {
            let ours = if fwd.leg == LegId::Caller { 7 } else { 8 };
            let ok = RtpPacket::parse(&packet[..]).map(|p| p.ssrc() == Ssrc(ours));
            assert_eq!(ok, Ok(true), "forwarded packet lost our SSRC");
        }
        let _ = relay.handle_timeout(now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::rtp::rtcp::ReportBlock;
    use crate::media::rtp::RtpHeader;
    use proptest::prelude::*;

    const CALLER_SDP: ([u8; 4], u16) = ([192, 168, 1, 20], 40_000);
    const CALLER_NAT: ([u8; 4], u16) = ([203, 0, 113, 7], 61_234);
    const AGENT: ([u8; 4], u16) = ([10, 1, 0, 5], 20_000);
    const OUR_TO_CALLER: Ssrc = Ssrc(0xC0C0_0001);
    const OUR_TO_AGENT: Ssrc = Ssrc(0xA6A6_0002);

    fn addr(a: ([u8; 4], u16)) -> SocketAddr {
        a.into()
    }

    fn relay(t0: Instant) -> Relay {
        Relay::new(
            t0,
            RelayConfig::new(Duration::from_secs(5)),
            [
                LegConfig {
                    expected_remote: Some(addr(CALLER_SDP)),
                    our_ssrc: OUR_TO_CALLER,
                    initial_seq: 1000,
                    initial_ts: 50_000,
                    payload_type_out: 0,
                    telephone_event_pt: Some(101),
                    clock_rate: 8000,
                    codec: MosCodec::G711,
                },
                LegConfig {
                    expected_remote: Some(addr(AGENT)),
                    our_ssrc: OUR_TO_AGENT,
                    initial_seq: 30_000,
                    initial_ts: 7_000_000,
                    payload_type_out: 96,
                    telephone_event_pt: Some(110),
                    clock_rate: 8000,
                    codec: MosCodec::G711,
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn rtcp_reports_and_round_trip() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let ntp0: u64 = 0xE000_0000_0000_0000;
        // Nothing known about the caller yet: an RR without report blocks,
        // to the SDP's RTCP address.
        let sdp_rtcp: SocketAddr = ([192, 168, 1, 20], 40_001).into();
        let (rr, to) = r
            .rtcp_report(t0, ntp0, LegId::Caller, b"sb@test", Some(sdp_rtcp))
            .unwrap();
        assert_eq!(to, sdp_rtcp);
        match &parse_compound(&rr).unwrap()[..] {
            [RtcpPacket::ReceiverReport(rr), RtcpPacket::SourceDescription(sdes)] => {
                assert_eq!(rr.ssrc, OUR_TO_CALLER);
                assert!(rr.reports.is_empty());
                assert_eq!(sdes[0].cname(), Some(&b"sb@test"[..]));
            }
            other => panic!("{other:?}"),
        }
        // The agent talks, the caller hears it: our next report to the
        // caller is an SR counting what we sent, with a block about the
        // caller's stream.
        for i in 0..10u16 {
            let now = ms(t0, 20 * u64::from(i));
            let mut b = pkt(0x1111, 100 + i, 160 * u32::from(i));
            r.on_rtp(now, LegId::Caller, addr(CALLER_NAT), &mut b);
            let mut b = pkt(0x2222, 500 + i, 160 * u32::from(i));
            assert!(r.on_rtp(now, LegId::Agent, addr(AGENT), &mut b).is_some());
        }
        let t1 = ms(t0, 5000);
        let ntp1 = ntp0 + (5u64 << 32);
        let (sr, _) = r
            .rtcp_report(t1, ntp1, LegId::Caller, b"sb@test", Some(sdp_rtcp))
            .unwrap();
        let lsr = match &parse_compound(&sr).unwrap()[0] {
            RtcpPacket::SenderReport(sr) => {
                assert_eq!(sr.ssrc, OUR_TO_CALLER);
                assert_eq!(sr.packet_count, 10);
                assert_eq!(sr.octet_count, 10 * 160);
                assert_eq!(sr.reports[0].ssrc, Ssrc(0x1111));
                (sr.ntp_timestamp >> 16) as u32
            }
            other => panic!("{other:?}"),
        };
        // The caller's RR about our stream arrives 60 ms later having held
        // it 20 ms: a 40 ms round trip. Its source is now where reports go.
        let mut back = Vec::new();
        let block = ReportBlock {
            ssrc: OUR_TO_CALLER,
            fraction_lost: 0,
            cumulative_lost: 0,
            highest_seq: 509,
            jitter: 0,
            last_sr: lsr,
            delay_since_last_sr: 65_536 / 50,
        };
        write_compound(
            &[RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(0x1111),
                reports: vec![block],
            })],
            &mut back,
        )
        .unwrap();
        let rtcp_from: SocketAddr = ([203, 0, 113, 7], 61_235).into();
        let arrival = ntp1 + (u64::from(u32::MAX) / 1000 * 60);
        assert!(r.on_rtcp(ms(t1, 60), arrival, LegId::Caller, rtcp_from, &back));
        assert!(!r.on_rtcp(ms(t1, 60), arrival, LegId::Caller, rtcp_from, b"junk"));
        let (_, to) = r
            .rtcp_report(
                ms(t1, 5000),
                arrival,
                LegId::Caller,
                b"sb@test",
                Some(sdp_rtcp),
            )
            .unwrap();
        assert_eq!(to, rtcp_from);
        let rtt = r.stats(LegId::Caller).round_trip_ms.unwrap();
        assert!((rtt - 40.0).abs() < 0.5, "{rtt}");
    }

    fn pkt(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        let mut buf = vec![0xd5u8; 172];
        RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc: Ssrc(ssrc),
        }
        .write_header(&mut buf)
        .unwrap();
        buf
    }

    /// (ssrc, seq, ts, marker, pt) of a forwarded packet.
    fn fields(buf: &[u8]) -> (Ssrc, u16, u32, bool, u8) {
        let p = RtpPacket::parse(buf).unwrap();
        (
            p.ssrc(),
            p.sequence(),
            p.timestamp(),
            p.marker(),
            p.payload_type(),
        )
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn flows_both_ways_rewritten_to_the_right_place() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        for i in 0..3u16 {
            let now = ms(t0, 20 * u64::from(i));
            let mut b = pkt(0x1111, 500 + i, 8000 + 160 * u32::from(i));
            let fwd = r.on_rtp(now, LegId::Caller, addr(CALLER_SDP), &mut b);
            assert_eq!(
                fwd,
                Some(Forward {
                    leg: LegId::Agent,
                    to: addr(AGENT)
                })
            );
            assert_eq!(
                fields(&b),
                (
                    OUR_TO_AGENT,
                    30_000 + i,
                    7_000_000 + 160 * u32::from(i),
                    i == 0,
                    96
                )
            );
            assert_eq!(b.len(), 172);
            assert!(b[12..].iter().all(|&x| x == 0xd5), "payload untouched");

            let mut b = pkt(0x2222, 9 + i, 160 * u32::from(i));
            let fwd = r.on_rtp(now, LegId::Agent, addr(AGENT), &mut b);
            assert_eq!(
                fwd,
                Some(Forward {
                    leg: LegId::Caller,
                    to: addr(CALLER_SDP)
                })
            );
            assert_eq!(
                fields(&b),
                (
                    OUR_TO_CALLER,
                    1000 + i,
                    50_000 + 160 * u32::from(i),
                    i == 0,
                    0
                )
            );
        }
        assert_eq!(r.counters(LegId::Caller).forwarded, 3);
        assert_eq!(r.counters(LegId::Agent).accepted, 3);
        assert_eq!(r.stats(LegId::Caller).lost, 0);
    }

    #[test]
    fn latches_to_the_nat_address_not_the_sdp_one() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        // Before the caller sends anything, the SDP address is all we have.
        let mut b = pkt(0x2222, 1, 0);
        let fwd = r.on_rtp(t0, LegId::Agent, addr(AGENT), &mut b).unwrap();
        assert_eq!(fwd.to, addr(CALLER_SDP));
        let mut b = pkt(0x1111, 1, 0);
        r.on_rtp(ms(t0, 10), LegId::Caller, addr(CALLER_NAT), &mut b)
            .unwrap();
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_NAT)));
        let mut b = pkt(0x2222, 2, 160);
        let fwd = r.on_rtp(ms(t0, 20), LegId::Agent, addr(AGENT), &mut b);
        assert_eq!(fwd.map(|f| f.to), Some(addr(CALLER_NAT)));
    }

    #[test]
    fn unknown_destination_drops() {
        let t0 = Instant::now();
        let mut cfg = [LegConfig {
            expected_remote: None,
            our_ssrc: Ssrc(1),
            initial_seq: 0,
            initial_ts: 0,
            payload_type_out: 0,
            telephone_event_pt: None,
            clock_rate: 8000,
            codec: MosCodec::G711,
        }; 2];
        cfg[1].our_ssrc = Ssrc(2);
        let mut r = Relay::new(t0, RelayConfig::new(Duration::from_secs(5)), cfg).unwrap();
        let mut b = pkt(0x2222, 1, 0);
        assert_eq!(r.on_rtp(t0, LegId::Agent, addr(AGENT), &mut b), None);
        assert_eq!(r.counters(LegId::Agent).no_destination, 1);
        // The caller's first packet reveals its address.
        let mut b = pkt(0x1111, 1, 0);
        let fwd = r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut b);
        assert_eq!(fwd.map(|f| f.to), Some(addr(AGENT)), "agent latched too");
        let mut b = pkt(0x2222, 2, 160);
        let fwd = r.on_rtp(t0, LegId::Agent, addr(AGENT), &mut b);
        assert_eq!(fwd.map(|f| f.to), Some(addr(CALLER_NAT)));
    }

    #[test]
    fn spoofed_packet_does_not_relatch_but_three_consecutive_do() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let spoofer: SocketAddr = ([198, 51, 100, 66], 5060).into();
        let mut seq = 1u16;
        let mut caller = |r: &mut Relay, from: SocketAddr, ssrc: u32| {
            seq += 1;
            let mut b = pkt(ssrc, seq, u32::from(seq) * 160);
            r.on_rtp(ms(t0, u64::from(seq) * 20), LegId::Caller, from, &mut b)
        };
        assert!(caller(&mut r, addr(CALLER_NAT), 0x1111).is_some());
        // One spoofed packet: dropped, no re-latch.
        assert_eq!(caller(&mut r, spoofer, 0x6666), None);
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_NAT)));
        assert_eq!(r.counters(LegId::Caller).foreign_source, 1);
        // Two from the spoofer, interrupted by the real caller: starts over.
        assert_eq!(caller(&mut r, spoofer, 0x6666), None);
        assert!(caller(&mut r, addr(CALLER_NAT), 0x1111).is_some());
        assert_eq!(caller(&mut r, spoofer, 0x6666), None);
        assert_eq!(caller(&mut r, spoofer, 0x6666), None);
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_NAT)));
        // Changing SSRC between packets also starts over.
        assert_eq!(caller(&mut r, spoofer, 0x7777), None);
        assert_eq!(caller(&mut r, spoofer, 0x7777), None);
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_NAT)));
        // The third consecutive packet (same SSRC) re-latches and is forwarded:
        // a NAT rebinding moved the caller.
        let fwd = caller(&mut r, spoofer, 0x7777);
        assert_eq!(fwd.map(|f| f.to), Some(addr(AGENT)));
        assert_eq!(r.destination(LegId::Caller), Some(spoofer));
        // Now the old address is the foreign one.
        assert_eq!(caller(&mut r, addr(CALLER_NAT), 0x1111), None);
    }

    #[test]
    fn dtmf_events_keep_their_own_payload_type() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let mut b = pkt(0x1111, 1, 0);
        r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut b)
            .unwrap();
        assert_eq!(fields(&b).4, 96, "audio PT mapped");
        let mut ev = pkt(0x1111, 2, 160);
        ev[1] = 101;
        r.on_rtp(ms(t0, 20), LegId::Caller, addr(CALLER_NAT), &mut ev)
            .unwrap();
        assert_eq!(fields(&ev), (OUR_TO_AGENT, 30_001, 7_000_160, false, 110));
        // A leg without telephone-event gets no events (they would be played
        // as noise), and the drop is counted.
        let mut r = relay(t0);
        r.leg_mut(LegId::Agent).telephone_event_pt = None;
        let mut ev = pkt(0x1111, 2, 160);
        ev[1] = 101;
        assert_eq!(r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut ev), None);
        assert_eq!(r.counters(LegId::Caller).unmapped_event, 1);
    }

    #[test]
    fn muxed_rtcp_is_not_relayed_as_rtp() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        // A receiver report (PT 201) on the RTP port.
        let mut rr = [0x80u8, 201, 0, 1, 0, 0, 0x11, 0x11];
        let before = rr;
        assert_eq!(r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut rr), None);
        assert_eq!(rr, before);
        let c = r.counters(LegId::Caller);
        assert_eq!((c.rtcp, c.malformed, c.accepted), (1, 0, 0));
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_SDP)));
    }

    #[test]
    fn malformed_dropped_and_counted() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let mut short = [0x80u8; 5];
        assert_eq!(
            r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut short),
            None
        );
        let mut v1 = pkt(1, 1, 1);
        v1[0] = 0x40;
        assert_eq!(r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut v1), None);
        let c = r.counters(LegId::Caller);
        assert_eq!((c.malformed, c.accepted, c.forwarded), (2, 0, 0));
        // Malformed packets latch nothing.
        assert_eq!(r.destination(LegId::Caller), Some(addr(CALLER_SDP)));
        assert_eq!(v1[1..], pkt(1, 1, 1)[1..], "not rewritten");
    }

    #[test]
    fn hold_stops_forwarding_and_unhold_sets_the_marker() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let agent = |r: &mut Relay, i: u16| {
            let mut b = pkt(0x2222, i, u32::from(i) * 160);
            let fwd = r.on_rtp(ms(t0, u64::from(i) * 20), LegId::Agent, addr(AGENT), &mut b);
            fwd.map(|_| fields(&b))
        };
        assert_eq!(agent(&mut r, 0).map(|f| (f.1, f.3)), Some((1000, true)));
        assert_eq!(agent(&mut r, 1).map(|f| (f.1, f.3)), Some((1001, false)));
        // The agent puts the caller on hold: the caller hears nothing of the
        // agent (music comes through `inject`).
        r.set_direction(ms(t0, 30), LegId::Caller, Direction::RecvOnly);
        assert_eq!(agent(&mut r, 2), None);
        assert_eq!(agent(&mut r, 3), None);
        assert_eq!(r.counters(LegId::Agent).held, 2);
        // Music, 2 packets, continues the caller's stream.
        for (k, seq) in [(0u16, 1002u16), (1, 1003)] {
            let mut m = pkt(0x3333, 77 + k, 0);
            let to = r.inject(ms(t0, 80 + 20 * u64::from(k)), LegId::Caller, &mut m);
            assert_eq!(to, Ok(Some(addr(CALLER_SDP))));
            assert_eq!(
                (fields(&m).0, fields(&m).1, fields(&m).3),
                (OUR_TO_CALLER, seq, k == 0)
            );
        }
        // Unhold: the agent is heard again, starting a talkspurt.
        r.set_direction(ms(t0, 110), LegId::Caller, Direction::SendRecv);
        let f = agent(&mut r, 6).unwrap();
        assert_eq!((f.1, f.3), (1004, true));
        let f = agent(&mut r, 7).unwrap();
        assert_eq!((f.1, f.3), (1005, false));
    }

    #[test]
    fn unhold_without_music_restarts_cleanly() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let mut b = pkt(0x2222, 100, 16_000);
        r.on_rtp(t0, LegId::Agent, addr(AGENT), &mut b).unwrap();
        r.set_direction(ms(t0, 10), LegId::Caller, Direction::Inactive);
        // 1 s of held agent audio, same SSRC, never reaches the caller.
        for i in 1..=50u16 {
            let mut b = pkt(0x2222, 100 + i, 16_000 + 160 * u32::from(i));
            let now = ms(t0, 20 * u64::from(i));
            assert_eq!(r.on_rtp(now, LegId::Agent, addr(AGENT), &mut b), None);
        }
        r.set_direction(ms(t0, 1010), LegId::Caller, Direction::SendRecv);
        let mut b = pkt(0x2222, 151, 16_000 + 160 * 51);
        r.on_rtp(ms(t0, 1020), LegId::Agent, addr(AGENT), &mut b)
            .unwrap();
        // Same agent SSRC, yet a new talkspurt: no sequence gap for the
        // caller's phone to count as 50 lost packets, marker set, timestamp
        // advanced by the 1020 ms of wall time.
        assert_eq!(
            fields(&b),
            (OUR_TO_CALLER, 1001, 50_000 + 8 * 1020, true, 0)
        );
    }

    #[test]
    fn sendonly_leg_is_not_forwarded_and_not_dead() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        r.set_direction(t0, LegId::Caller, Direction::SendOnly);
        let mut b = pkt(0x1111, 1, 0);
        assert_eq!(r.on_rtp(t0, LegId::Caller, addr(CALLER_NAT), &mut b), None);
        // The agent still reaches the caller.
        let mut b = pkt(0x2222, 1, 0);
        assert!(r.on_rtp(t0, LegId::Agent, addr(AGENT), &mut b).is_some());
        // Only the agent's detector is armed.
        assert_eq!(r.poll_timeout(), Some(ms(t0, 5000)));
        assert_eq!(
            r.handle_timeout(ms(t0, 60_000)),
            Some(RelayEvent::Dead { leg: LegId::Agent })
        );
        assert_eq!(r.handle_timeout(ms(t0, 60_000)), None);
    }

    #[test]
    fn dead_leg_reported_once() {
        let t0 = Instant::now();
        let mut r = relay(t0);
        let mut i = 0u16;
        // Both talk for a second; then the caller's phone is unplugged.
        while i < 50 {
            let now = ms(t0, u64::from(i) * 20);
            let mut b = pkt(0x1111, i, u32::from(i) * 160);
            r.on_rtp(now, LegId::Caller, addr(CALLER_NAT), &mut b);
            let mut b = pkt(0x2222, i, u32::from(i) * 160);
            r.on_rtp(now, LegId::Agent, addr(AGENT), &mut b);
            assert_eq!(r.handle_timeout(now), None);
            i += 1;
        }
        assert_eq!(r.poll_timeout(), Some(ms(t0, 980 + 5000)));
        while i < 500 {
            let now = ms(t0, u64::from(i) * 20);
            let mut b = pkt(0x2222, i, u32::from(i) * 160);
            r.on_rtp(now, LegId::Agent, addr(AGENT), &mut b);
            let ev = r.handle_timeout(now);
            if now == ms(t0, 980 + 5000) {
                assert_eq!(ev, Some(RelayEvent::Dead { leg: LegId::Caller }));
            } else {
                assert_eq!(ev, None, "at {i}");
            }
            i += 1;
        }
        assert_eq!(r.stats(LegId::Caller).packets, 49, "first is probation");
    }

    #[test]
    fn invalid_payload_type_is_refused() {
        let t0 = Instant::now();
        let leg = LegConfig {
            expected_remote: None,
            our_ssrc: Ssrc(1),
            initial_seq: 0,
            initial_ts: 0,
            payload_type_out: 0,
            telephone_event_pt: None,
            clock_rate: 8000,
            codec: MosCodec::G711,
        };
        let bad = LegConfig {
            payload_type_out: 128,
            ..leg
        };
        let err = Relay::new(t0, RelayConfig::new(Duration::from_secs(1)), [leg, bad]);
        assert_eq!(
            err.err(),
            Some(RelayConfigError::InvalidPayloadType {
                leg: LegId::Agent,
                payload_type: 128
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
            fuzz_relay(&data);
        }

        #[test]
        fn never_panics_on_version_2_bytes(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 11..64), 1..20)
        ) {
            let mut data = Vec::new();
            for mut c in chunks {
                c.resize(64, 0);
                c[0] = 0x80 | (c[0] & 0x3f);
                data.extend_from_slice(&c);
            }
            fuzz_relay(&data);
        }
    }
}
