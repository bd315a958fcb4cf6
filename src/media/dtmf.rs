//! DTMF: RFC 4733 telephone-events carried in RTP, and the SIP INFO bodies
//! (`application/dtmf-relay`, `application/dtmf`) some peers use instead.
//!
//! Everything here is sans-IO: the receiver is fed RTP fields and payload
//! bytes, the sender returns the packets to send with their send offsets,
//! and the INFO parser takes a content type and a body.

use std::num::NonZeroU32;
use std::time::Duration;

/// Length of one RFC 4733 event block (RFC 4733 §2.3).
pub const EVENT_LEN: usize = 4;

/// Duration reported for an INFO body that carries no `Duration` line
/// (`application/dtmf` never does). 100 ms is the usual minimum tone length
/// a media server needs to recognise a digit.
pub const DEFAULT_INFO_DURATION_MS: u32 = 100;

/// Default update interval while a digit is held (RFC 4733 §2.5.1.2 suggests
/// 50 ms for DTMF).
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_millis(50);

/// Number of times the final (end) packet is sent (RFC 4733 §2.5.1.4).
pub const END_PACKET_COUNT: usize = 3;

/// Why a DTMF payload, digit or INFO body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload has {0} bytes, at least 4 are needed")]
    Truncated(usize),
    #[error("event code {0} is not a DTMF digit (0..=15)")]
    NotDtmf(u8),
    #[error("{0:?} is not a DTMF digit")]
    InvalidDigit(char),
    #[error("volume {0} is out of range 0..=63")]
    Volume(u8),
    #[error("duration {units} timestamp units does not fit the 16-bit duration field")]
    DurationTooLong { units: u64 },
    #[error("clock rate must be non-zero")]
    ZeroClockRate,
    #[error("content type {0:?} is not a DTMF INFO body")]
    ContentType(String),
    #[error("INFO body is not UTF-8")]
    NotUtf8,
    #[error("INFO body has no Signal")]
    MissingSignal,
    #[error("INFO body has an unparsable Duration {0:?}")]
    BadDuration(String),
    #[error("INFO body has an unknown signal {0:?}")]
    BadSignal(String),
}

/// An RTP clock rate in Hz (never zero, so conversions cannot divide by zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockRate(NonZeroU32);

impl ClockRate {
    pub const NARROWBAND: ClockRate = ClockRate(NonZeroU32::MIN.saturating_add(7999));
    pub const FULLBAND: ClockRate = ClockRate(NonZeroU32::MIN.saturating_add(47999));

    pub fn new(hz: u32) -> Result<Self, DtmfError> {
        NonZeroU32::new(hz)
            .map(ClockRate)
            .ok_or(DtmfError::ZeroClockRate)
    }

    pub fn hz(self) -> u32 {
        self.0.get()
    }

    /// Timestamp units in `d`, rounded to nearest.
    pub fn units(self, d: Duration) -> u64 {
        let nanos = d.as_nanos().saturating_mul(u128::from(self.hz()));
        u64::try_from((nanos + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// Milliseconds in `units` timestamp units, rounded to nearest.
    pub fn millis(self, units: u64) -> u32 {
        let hz = u64::from(self.hz());
        u32::try_from((units.saturating_mul(1000) + hz / 2) / hz).unwrap_or(u32::MAX)
    }
}

/// Converts a duration in timestamp units between clock rates, rounding to
/// nearest, for relaying events between legs that negotiated telephone-event
/// at different rates (e.g. 8000 and 48000, RFC 4733 §2.3.5: the duration is
/// in the units of the RTP timestamp clock).
pub fn rescale(duration: u32, from: ClockRate, to: ClockRate) -> u32 {
    let from = u64::from(from.hz());
    let scaled = (u64::from(duration) * u64::from(to.hz()) + from / 2) / from;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// One RFC 4733 event block (RFC 4733 §2.3, figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0..=15 are the DTMF digits (RFC 4733 §3.2).
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63 (6 bits).
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block. Trailing bytes (padding, or further
    /// blocks from senders that stack events, §2.5.1.5) are ignored: a DTMF
    /// key press is one event at a time. The R bit is ignored (§2.3.3).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::Truncated(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    pub fn serialize(&self) -> Result<[u8; EVENT_LEN], DtmfError> {
        if self.volume > 63 {
            return Err(DtmfError::Volume(self.volume));
        }
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | self.volume;
        Ok([self.event, flags, d0, d1])
    }
}

/// RFC 4733 §3.2: events 0-9 are the digits, 10 `*`, 11 `#`, 12-15 `A`-`D`.
pub fn event_to_digit(event: u8) -> Result<char, DtmfError> {
    match event {
        0..=9 => Ok(char::from(b'0' + event)),
        10 => Ok('*'),
        11 => Ok('#'),
        12..=15 => Ok(char::from(b'A' + event - 12)),
        _ => Err(DtmfError::NotDtmf(event)),
    }
}

/// Inverse of [`event_to_digit`]; lower-case `a`-`d` are accepted.
pub fn digit_to_event(digit: char) -> Result<u8, DtmfError> {
    match digit {
        '0'..='9' => Ok(digit as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        'A'..='D' => Ok(digit as u8 - b'A' + 12),
        'a'..='d' => Ok(digit as u8 - b'a' + 12),
        _ => Err(DtmfError::InvalidDigit(digit)),
    }
}

/// One key press, whichever way it was signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    pub digit: char,
    pub duration_ms: u32,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    event: u8,
    /// Longest duration seen for this segment (updates may be reordered).
    duration: u16,
    /// Duration carried over from earlier segments of a long event.
    carried: u64,
    ended: bool,
}

/// Turns a stream of telephone-event packets into one [`DigitEvent`] per key
/// press (RFC 4733 §2.5.2).
///
/// An event is identified by its RTP timestamp (§2.2.1: all packets of one
/// event carry the event's start timestamp), so retransmitted updates and the
/// three end packets collapse into one digit, and a second press of the same
/// key (new timestamp) is a new digit. If the start/update packets are lost,
/// the end packet alone yields the digit; if all end packets are lost, the
/// digit is emitted when the next event starts, or by [`DtmfReceiver::flush`].
#[derive(Debug)]
pub struct DtmfReceiver {
    clock: ClockRate,
    current: Option<Current>,
}

impl DtmfReceiver {
    pub fn new(clock: ClockRate) -> Self {
        DtmfReceiver {
            clock,
            current: None,
        }
    }

    /// Feeds one telephone-event RTP packet. Returns the digits completed by
    /// it: usually none or one, two when it reveals that the previous event's
    /// end packets were all lost and is itself an end packet.
    ///
    /// The sequence number is accepted for symmetry with the RTP layer; events
    /// are ordered by timestamp, which RFC 4733 makes authoritative.
    pub fn feed(
        &mut self,
        _seq: u16,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Vec<DigitEvent>, DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let digit = event_to_digit(ev.event)?;
        let mut out = Vec::new();
        let mut carried = 0;
        if let Some(cur) = self.current.as_mut() {
            if cur.timestamp == timestamp {
                if cur.ended {
                    // Second/third end packet or a late update: already reported.
                    return Ok(out);
                }
                cur.duration = cur.duration.max(ev.duration);
                if ev.end {
                    cur.ended = true;
                    out.push(digit_of(
                        self.clock,
                        cur.event,
                        cur.carried + u64::from(cur.duration),
                    ));
                }
                return Ok(out);
            }
            // Serial-number comparison: a timestamp before the current event's
            // belongs to an older event whose packets arrived late.
            if (timestamp.wrapping_sub(cur.timestamp) as i32) < 0 {
                return Ok(out);
            }
            if !cur.ended {
                let total = cur.carried + u64::from(cur.duration);
                // RFC 4733 §2.5.2.3: a long event continues in a new segment
                // whose timestamp is the old one plus the old duration, without
                // an end on the old segment. Carry the duration over.
                if cur.event == ev.event
                    && timestamp.wrapping_sub(cur.timestamp) == u32::from(cur.duration)
                {
                    carried = total;
                } else {
                    out.push(digit_of(self.clock, cur.event, total));
                }
            }
        }
        let cur = Current {
            timestamp,
            event: ev.event,
            duration: ev.duration,
            carried,
            ended: ev.end,
        };
        if ev.end {
            out.push(DigitEvent {
                digit,
                duration_ms: self.clock.millis(carried + u64::from(ev.duration)),
            });
        }
        self.current = Some(cur);
        Ok(out)
    }

    /// Emits the current event if its end was never seen; call when the
    /// stream stops or after a timeout the caller chooses (no clock here).
    pub fn flush(&mut self) -> Option<DigitEvent> {
        let cur = self.current.as_mut()?;
        if cur.ended {
            return None;
        }
        cur.ended = true;
        let (event, total) = (cur.event, cur.carried + u64::from(cur.duration));
        Some(digit_of(self.clock, event, total))
    }
}

fn digit_of(clock: ClockRate, event: u8, units: u64) -> DigitEvent {
    DigitEvent {
        // Only DTMF codes (0..=15) are ever stored in `current`.
        digit: event_to_digit(event).unwrap_or('?'),
        duration_ms: clock.millis(units),
    }
}

/// One packet of an outgoing event; the RTP layer adds the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// When to send it, relative to the key press.
    pub send_offset: Duration,
    /// RTP marker bit: set on the first packet of the event (RFC 4733 §2.2.2).
    pub marker: bool,
    /// RTP timestamp: the event's start for every packet (§2.2.1).
    pub timestamp: u32,
    pub event: TelephoneEvent,
}

/// Produces the packet sequence for one digit (RFC 4733 §2.5.1).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    clock: ClockRate,
    update_interval: Duration,
    volume: u8,
}

impl DtmfSender {
    /// A sender with 50 ms updates and volume 10 (-10 dBm0, typical).
    pub fn new(clock: ClockRate) -> Self {
        DtmfSender {
            clock,
            update_interval: DEFAULT_UPDATE_INTERVAL,
            volume: 10,
        }
    }

    /// Sets the update interval; zero is replaced by 1 ms.
    pub fn with_update_interval(mut self, interval: Duration) -> Self {
        self.update_interval = interval.max(Duration::from_millis(1));
        self
    }

    pub fn with_volume(mut self, volume: u8) -> Result<Self, DtmfError> {
        if volume > 63 {
            return Err(DtmfError::Volume(volume));
        }
        self.volume = volume;
        Ok(self)
    }

    /// The packets for `digit` held for `duration`, starting at RTP timestamp
    /// `start_ts`: a marked first packet, one update per interval carrying the
    /// duration so far, then three identical end packets (RFC 4733 §2.5.1.4)
    /// carrying the total duration.
    ///
    /// Durations beyond the 16-bit field (about 8 s at 8 kHz, 1.36 s at
    /// 48 kHz) are rejected rather than segmented: no IVR digit is that long.
    pub fn packets(
        &self,
        digit: char,
        duration: Duration,
        start_ts: u32,
    ) -> Result<Vec<DtmfPacket>, DtmfError> {
        let event = digit_to_event(digit)?;
        let total_units = self.clock.units(duration);
        let total = u16::try_from(total_units)
            .map_err(|_| DtmfError::DurationTooLong { units: total_units })?;
        let mut out = Vec::new();
        let mut offset = Duration::ZERO;
        // Each update reports the tone length up to the end of its interval,
        // as common senders do, so the first packet is never duration 0.
        while offset < duration {
            let upto = (offset + self.update_interval).min(duration);
            let units = u16::try_from(self.clock.units(upto)).unwrap_or(total);
            out.push(DtmfPacket {
                send_offset: offset,
                marker: out.is_empty(),
                timestamp: start_ts,
                event: TelephoneEvent {
                    event,
                    end: false,
                    volume: self.volume,
                    duration: units.min(total),
                },
            });
            offset += self.update_interval;
        }
        for _ in 0..END_PACKET_COUNT {
            out.push(DtmfPacket {
                send_offset: duration,
                marker: out.is_empty(),
                timestamp: start_ts,
                event: TelephoneEvent {
                    event,
                    end: true,
                    volume: self.volume,
                    duration: total,
                },
            });
        }
        Ok(out)
    }
}

/// Parses a SIP INFO DTMF body. `application/dtmf-relay` is the
/// `Signal=5\r\nDuration=160\r\n` form (duration in ms); `application/dtmf`
/// carries just the digit or its RFC 4733 event code.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Result<DigitEvent, DtmfError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| DtmfError::NotUtf8)?;
    match media.as_str() {
        "application/dtmf-relay" => parse_dtmf_relay(text),
        "application/dtmf" => Ok(DigitEvent {
            digit: parse_signal(text.trim())?,
            duration_ms: DEFAULT_INFO_DURATION_MS,
        }),
        _ => Err(DtmfError::ContentType(content_type.to_owned())),
    }
}

fn parse_dtmf_relay(text: &str) -> Result<DigitEvent, DtmfError> {
    let mut digit = None;
    let mut duration_ms = DEFAULT_INFO_DURATION_MS;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = Some(parse_signal(value)?),
            "duration" => {
                duration_ms = value
                    .parse()
                    .map_err(|_| DtmfError::BadDuration(value.to_owned()))?;
            }
            _ => {}
        }
    }
    let digit = digit.ok_or(DtmfError::MissingSignal)?;
    Ok(DigitEvent { digit, duration_ms })
}

/// A signal is a single digit character, or an event code 0..=15 (some
/// gateways send `Signal=10` for `*`).
fn parse_signal(value: &str) -> Result<char, DtmfError> {
    let mut chars = value.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if let Ok(event) = digit_to_event(c) {
            return event_to_digit(event);
        }
    }
    value
        .parse::<u8>()
        .ok()
        .and_then(|code| event_to_digit(code).ok())
        .ok_or_else(|| DtmfError::BadSignal(value.to_owned()))
}

/// Fuzz entry point: runs every parser on arbitrary bytes. Must never panic.
pub fn fuzz_dtmf(data: &[u8]) {
    let _ = TelephoneEvent::parse(data);
    let _ = parse_info_body("application/dtmf-relay", data);
    let _ = parse_info_body("application/dtmf", data);
    let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
    for chunk in data.chunks(8) {
        if let [s0, s1, t0, t1, t2, t3, rest @ ..] = chunk {
            let _ = rx.feed(
                u16::from_be_bytes([*s0, *s1]),
                u32::from_be_bytes([*t0, *t1, *t2, *t3]),
                rest,
            );
        }
    }
    let _ = rx.flush();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .serialize()
        .unwrap()
    }

    #[test]
    fn parse_serialize_round_trip_and_bits() {
        let raw = [11u8, 0x80 | 0x40 | 0x0a, 0x03, 0x20];
        let ev = TelephoneEvent::parse(&raw).unwrap();
        // The R bit (0x40) is ignored on receipt.
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.serialize().unwrap(), [11, 0x8a, 0x03, 0x20]);
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::Truncated(3))
        );
        assert_eq!(TelephoneEvent::parse(&[]), Err(DtmfError::Truncated(0)));
        let bad = TelephoneEvent { volume: 64, ..ev };
        assert_eq!(bad.serialize(), Err(DtmfError::Volume(64)));
    }

    #[test]
    fn digit_mapping() {
        let all = "0123456789*#ABCD";
        for (code, c) in all.chars().enumerate() {
            assert_eq!(event_to_digit(code as u8).unwrap(), c);
            assert_eq!(digit_to_event(c).unwrap(), code as u8);
        }
        assert_eq!(digit_to_event('b').unwrap(), 13);
        assert_eq!(event_to_digit(16), Err(DtmfError::NotDtmf(16)));
        assert_eq!(digit_to_event('x'), Err(DtmfError::InvalidDigit('x')));
    }

    #[test]
    fn repeated_updates_and_triple_end_yield_one_digit() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        let ts = 1000;
        let mut got = Vec::new();
        for (i, d) in [160u16, 160, 560, 960].iter().enumerate() {
            got.extend(rx.feed(i as u16, ts, &pkt(5, false, *d)).unwrap());
        }
        for i in 0..3 {
            got.extend(rx.feed(10 + i, ts, &pkt(5, true, 1280)).unwrap());
        }
        assert_eq!(
            got,
            vec![DigitEvent {
                digit: '5',
                duration_ms: 160
            }]
        );
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn end_packet_alone_yields_digit() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        let got = rx.feed(7, 500, &pkt(11, true, 800)).unwrap();
        assert_eq!(
            got,
            vec![DigitEvent {
                digit: '#',
                duration_ms: 100
            }]
        );
    }

    #[test]
    fn same_key_twice_is_two_digits() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        let mut got = Vec::new();
        for ts in [1000u32, 3000] {
            got.extend(rx.feed(1, ts, &pkt(1, false, 400)).unwrap());
            for _ in 0..3 {
                got.extend(rx.feed(2, ts, &pkt(1, true, 800)).unwrap());
            }
        }
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|d| d.digit == '1' && d.duration_ms == 100));
    }

    #[test]
    fn lost_end_packets_emit_on_next_event_or_flush() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        assert!(rx.feed(1, 1000, &pkt(3, false, 400)).unwrap().is_empty());
        // The next press is an end-only packet: both digits come out, in order.
        let got = rx.feed(9, 5000, &pkt(4, true, 800)).unwrap();
        let digits: Vec<char> = got.iter().map(|d| d.digit).collect();
        assert_eq!(digits, vec!['3', '4']);
        assert_eq!(got[0].duration_ms, 50);
        assert!(rx.feed(10, 9000, &pkt(6, false, 160)).unwrap().is_empty());
        assert_eq!(
            rx.flush(),
            Some(DigitEvent {
                digit: '6',
                duration_ms: 20
            })
        );
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn stale_packets_of_an_old_event_are_ignored() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        assert_eq!(rx.feed(1, 8000, &pkt(2, true, 800)).unwrap().len(), 1);
        assert_eq!(rx.feed(2, 9000, &pkt(3, true, 800)).unwrap().len(), 1);
        // A late end packet of the first press.
        assert!(rx.feed(3, 8000, &pkt(2, true, 800)).unwrap().is_empty());
    }

    #[test]
    fn long_event_segments_are_merged() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        assert!(rx.feed(1, 0, &pkt(7, false, 65535)).unwrap().is_empty());
        let got = rx.feed(2, 65535, &pkt(7, true, 8000)).unwrap();
        assert_eq!(
            got,
            vec![DigitEvent {
                digit: '7',
                duration_ms: 9192 // (65535 + 8000) / 8 rounded
            }]
        );
    }

    #[test]
    fn timestamp_wrap_is_a_new_event_not_stale() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        assert_eq!(
            rx.feed(1, u32::MAX - 100, &pkt(1, true, 800))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(rx.feed(2, 500, &pkt(2, true, 800)).unwrap().len(), 1);
    }

    #[test]
    fn receiver_rejects_malformed_and_non_dtmf() {
        let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
        assert_eq!(rx.feed(1, 0, &[5, 0]), Err(DtmfError::Truncated(2)));
        assert_eq!(
            rx.feed(1, 0, &pkt(16, true, 1)),
            Err(DtmfError::NotDtmf(16))
        );
    }

    #[test]
    fn sender_packet_sequence_at_8k() {
        let tx = DtmfSender::new(ClockRate::NARROWBAND);
        let pkts = tx.packets('9', Duration::from_millis(120), 4242).unwrap();
        // Updates at 0, 50, 100 ms, then three end packets.
        assert_eq!(pkts.len(), 3 + 3);
        assert!(pkts[0].marker);
        assert!(pkts[1..].iter().all(|p| !p.marker));
        assert!(pkts
            .iter()
            .all(|p| p.timestamp == 4242 && p.event.event == 9));
        let durs: Vec<u16> = pkts.iter().map(|p| p.event.duration).collect();
        assert_eq!(durs, vec![400, 800, 960, 960, 960, 960]);
        let offs: Vec<u64> = pkts
            .iter()
            .map(|p| p.send_offset.as_millis() as u64)
            .collect();
        assert_eq!(offs, vec![0, 50, 100, 120, 120, 120]);
        assert!(pkts[..3].iter().all(|p| !p.event.end));
        assert!(pkts[3..].iter().all(|p| p.event.end));
    }

    #[test]
    fn sender_at_48k_and_limits() {
        let tx = DtmfSender::new(ClockRate::FULLBAND)
            .with_update_interval(Duration::from_millis(20))
            .with_volume(0)
            .unwrap();
        let pkts = tx.packets('a', Duration::from_millis(100), 0).unwrap();
        assert_eq!(pkts.len(), 5 + 3);
        assert_eq!(pkts[0].event.duration, 960);
        assert_eq!(pkts.last().unwrap().event.duration, 4800);
        assert_eq!(pkts[0].event.event, 12);
        assert!(matches!(
            tx.packets('1', Duration::from_secs(2), 0),
            Err(DtmfError::DurationTooLong { units: 96000 })
        ));
        assert_eq!(
            tx.packets('x', Duration::from_millis(100), 0),
            Err(DtmfError::InvalidDigit('x'))
        );
        assert!(DtmfSender::new(ClockRate::FULLBAND)
            .with_volume(64)
            .is_err());
    }

    #[test]
    fn sender_output_round_trips_through_receiver() {
        for clock in [ClockRate::NARROWBAND, ClockRate::FULLBAND] {
            let tx = DtmfSender::new(clock);
            let mut rx = DtmfReceiver::new(clock);
            let mut got = Vec::new();
            for (i, p) in tx
                .packets('#', Duration::from_millis(240), 77)
                .unwrap()
                .iter()
                .enumerate()
            {
                got.extend(
                    rx.feed(i as u16, p.timestamp, &p.event.serialize().unwrap())
                        .unwrap(),
                );
            }
            assert_eq!(
                got,
                vec![DigitEvent {
                    digit: '#',
                    duration_ms: 240
                }]
            );
        }
    }

    #[test]
    fn rescale_between_rates() {
        let nb = ClockRate::NARROWBAND;
        let fb = ClockRate::FULLBAND;
        assert_eq!(rescale(800, nb, fb), 4800);
        assert_eq!(rescale(4800, fb, nb), 800);
        assert_eq!(rescale(7, fb, nb), 1); // 1.17 rounds to 1
        assert_eq!(rescale(u32::MAX, nb, fb), u32::MAX);
        assert_eq!(ClockRate::new(0), Err(DtmfError::ZeroClockRate));
        assert_eq!(ClockRate::new(8000).unwrap(), nb);
        assert_eq!(nb.hz(), 8000);
        assert_eq!(fb.hz(), 48000);
    }

    #[test]
    fn info_dtmf_relay() {
        let d = parse_info_body("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(
            d,
            DigitEvent {
                digit: '5',
                duration_ms: 160
            }
        );
        let d = parse_info_body(
            "Application/DTMF-Relay; charset=utf-8",
            b"signal = *\nduration= 250",
        )
        .unwrap();
        assert_eq!(d.digit, '*');
        assert_eq!(d.duration_ms, 250);
        let d = parse_info_body("application/dtmf-relay", b"Signal=11").unwrap();
        assert_eq!(d.digit, '#');
        assert_eq!(d.duration_ms, DEFAULT_INFO_DURATION_MS);
    }

    #[test]
    fn info_dtmf_plain() {
        let d = parse_info_body("application/dtmf", b"7\r\n").unwrap();
        assert_eq!(d.digit, '7');
        assert_eq!(
            parse_info_body("application/dtmf", b"10").unwrap().digit,
            '*'
        );
    }

    #[test]
    fn info_malformed() {
        use DtmfError::*;
        let relay = "application/dtmf-relay";
        assert_eq!(parse_info_body(relay, b"Duration=160"), Err(MissingSignal));
        assert_eq!(parse_info_body(relay, b""), Err(MissingSignal));
        assert_eq!(
            parse_info_body(relay, b"Signal=X"),
            Err(BadSignal("X".into()))
        );
        assert_eq!(
            parse_info_body(relay, b"Signal=16"),
            Err(BadSignal("16".into()))
        );
        assert_eq!(
            parse_info_body(relay, b"Signal=1\r\nDuration=-5"),
            Err(BadDuration("-5".into()))
        );
        assert_eq!(parse_info_body(relay, &[0xff, 0xfe]), Err(NotUtf8));
        assert_eq!(
            parse_info_body("text/plain", b"Signal=1"),
            Err(ContentType("text/plain".into()))
        );
        assert_eq!(
            parse_info_body("application/dtmf", b"12"),
            Ok(DigitEvent {
                digit: 'A',
                duration_ms: DEFAULT_INFO_DURATION_MS
            })
        );
        assert_eq!(
            parse_info_body("application/dtmf", b""),
            Err(BadSignal(String::new()))
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_dtmf(&data);
        }

        #[test]
        fn event_round_trip(event: u8, end: bool, volume in 0u8..64, duration: u16) {
            let ev = TelephoneEvent { event, end, volume, duration };
            prop_assert_eq!(TelephoneEvent::parse(&ev.serialize().unwrap()).unwrap(), ev);
        }

        #[test]
        fn any_packet_stream_yields_at_most_one_digit_per_timestamp(
            pkts in proptest::collection::vec((0u32..4, 0u8..16, any::<bool>(), any::<u16>()), 0..64)
        ) {
            let mut rx = DtmfReceiver::new(ClockRate::NARROWBAND);
            let mut total = 0usize;
            let mut distinct = std::collections::BTreeSet::new();
            for (i, (ts, ev, end, dur)) in pkts.iter().enumerate() {
                distinct.insert(*ts);
                total += rx.feed(i as u16, ts * 10_000, &pkt(*ev, *end, *dur)).unwrap().len();
            }
            total += usize::from(rx.flush().is_some());
            prop_assert!(total <= pkts.len());
            // Events start at strictly increasing timestamps and each is
            // reported at most once, so never more digits than timestamps.
            prop_assert!(total <= distinct.len());
        }
    }
}
