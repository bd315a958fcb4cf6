//! RTCP compound packets (RFC 3550 §6): SR, RR, SDES and BYE.
//!
//! RTCP runs at a few packets per second per call, so unlike RTP the parsed
//! form may allocate its lists; text (CNAME, BYE reason) stays borrowed.

use thiserror::Error;

use super::packet::Ssrc;

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
/// RFC 3550 §6.5: SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

const HEADER_LEN: usize = 4;
const REPORT_BLOCK_LEN: usize = 24;

/// Why a datagram is not a well-formed RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("empty RTCP datagram")]
    Empty,
    #[error("{remaining} trailing bytes cannot hold an RTCP header")]
    TruncatedHeader { remaining: usize },
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("length field says {declared} bytes, only {remaining} remain")]
    LengthOverrun { declared: usize, remaining: usize },
    #[error("packet type {packet_type} needs {needed} bytes, its length gives {len}")]
    BodyTooShort {
        packet_type: u8,
        needed: usize,
        len: usize,
    },
    #[error("padding count {count} does not fit in a {len}-byte packet")]
    BadPadding { count: u8, len: usize },
    #[error("SDES chunk is not terminated within its packet")]
    SdesUnterminated,
    #[error("BYE reason of {len} bytes overruns the packet")]
    ByeReasonOverrun { len: usize },
    #[error("{0} items exceed the 5-bit count field")]
    TooManyItems(usize),
    #[error("SDES item of {0} bytes exceeds 255")]
    ItemTooLong(usize),
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A wall-clock time as a 64-bit NTP timestamp (RFC 3550 §4): seconds
/// since 1900 in the high 32 bits, the fraction in the low 32.
pub fn ntp_timestamp(wall: std::time::SystemTime) -> u64 {
    let since = wall
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// One reception report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: Ssrc,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR (LSR).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// RFC 3550 §6.4.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: Ssrc,
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
    pub reports: Vec<ReportBlock>,
}

/// RFC 3550 §6.4.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport {
    pub ssrc: Ssrc,
    pub reports: Vec<ReportBlock>,
}

/// One SDES item (RFC 3550 §6.5): its type and raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

/// The items about one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: Ssrc,
    pub items: Vec<SdesItem<'a>>,
}

impl<'a> SdesChunk<'a> {
    /// The CNAME item's value, if any.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items
            .iter()
            .find(|i| i.kind == SDES_CNAME)
            .map(|i| i.value)
    }
}

/// RFC 3550 §6.6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye<'a> {
    pub sources: Vec<Ssrc>,
    pub reason: Option<&'a [u8]>,
}

/// One packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport),
    ReceiverReport(ReceiverReport),
    SourceDescription(Vec<SdesChunk<'a>>),
    Goodbye(Goodbye<'a>),
    /// APP, feedback (RFC 4585), XR...: kept so a relay can pass them on.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses every packet of a compound (RFC 3550 §6.1). Each packet's length
/// must fit the datagram and its body must hold what its count announces.
/// The "first packet is SR or RR" rule is not enforced, so reduced-size
/// RTCP (RFC 5506) from WebRTC agents is accepted.
pub fn parse_compound(data: &[u8]) -> Result<Vec<RtcpPacket<'_>>, RtcpError> {
    if data.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::with_capacity(3);
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < HEADER_LEN {
            return Err(RtcpError::TruncatedHeader {
                remaining: rest.len(),
            });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let declared = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if declared > rest.len() {
            return Err(RtcpError::LengthOverrun {
                declared,
                remaining: rest.len(),
            });
        }
        let (packet, tail) = rest.split_at(declared);
        packets.push(parse_one(packet)?);
        rest = tail;
    }
    Ok(packets)
}

fn parse_one(packet: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    let count = packet[0] & 0x1f;
    let packet_type = packet[1];
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        // RFC 3550 §6.4.1: the last octet counts the padding, itself
        // included; it may not eat into the header.
        let pad = packet[end - 1];
        if pad == 0 || usize::from(pad) > end - HEADER_LEN {
            return Err(RtcpError::BadPadding {
                count: pad,
                len: end,
            });
        }
        end -= usize::from(pad);
    }
    let body = &packet[HEADER_LEN..end];
    let need = |needed: usize| {
        if body.len() < needed {
            Err(RtcpError::BodyTooShort {
                packet_type,
                needed,
                len: body.len(),
            })
        } else {
            Ok(())
        }
    };
    let blocks = usize::from(count);
    match packet_type {
        PT_SR => {
            need(24 + blocks * REPORT_BLOCK_LEN)?;
            let ntp = (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8));
            Ok(RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(be32(body, 0)),
                ntp_timestamp: ntp,
                rtp_timestamp: be32(body, 12),
                packet_count: be32(body, 16),
                octet_count: be32(body, 20),
                reports: parse_blocks(&body[24..], blocks),
            }))
        }
        PT_RR => {
            need(4 + blocks * REPORT_BLOCK_LEN)?;
            Ok(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(be32(body, 0)),
                reports: parse_blocks(&body[4..], blocks),
            }))
        }
        PT_SDES => parse_sdes(body, blocks).map(RtcpPacket::SourceDescription),
        PT_BYE => {
            need(4 * blocks)?;
            let sources = (0..blocks).map(|i| Ssrc(be32(body, 4 * i))).collect();
            let reason = match body.get(4 * blocks) {
                None => None,
                Some(&len) => {
                    let start = 4 * blocks + 1;
                    let text = body.get(start..start + usize::from(len)).ok_or(
                        RtcpError::ByeReasonOverrun {
                            len: usize::from(len),
                        },
                    )?;
                    Some(text)
                }
            };
            Ok(RtcpPacket::Goodbye(Goodbye { sources, reason }))
        }
        _ => Ok(RtcpPacket::Other {
            packet_type,
            count,
            body,
        }),
    }
}

/// `body` has been checked to hold `count` blocks.
fn parse_blocks(body: &[u8], count: usize) -> Vec<ReportBlock> {
    body.chunks_exact(REPORT_BLOCK_LEN)
        .take(count)
        .map(|b| {
            // Sign-extend the 24-bit cumulative loss.
            let lost = ((be32(b, 4) << 8) as i32) >> 8;
            ReportBlock {
                ssrc: Ssrc(be32(b, 0)),
                fraction_lost: b[4],
                cumulative_lost: lost,
                highest_seq: be32(b, 8),
                jitter: be32(b, 12),
                last_sr: be32(b, 16),
                delay_since_last_sr: be32(b, 20),
            }
        })
        .collect()
}

/// RFC 3550 §6.5: each chunk is an SSRC, items, then at least one null
/// octet padding the chunk to a 32-bit boundary.
fn parse_sdes(body: &[u8], count: usize) -> Result<Vec<SdesChunk<'_>>, RtcpError> {
    let mut chunks = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        if body.len() < at + 4 {
            return Err(RtcpError::BodyTooShort {
                packet_type: PT_SDES,
                needed: at + 4,
                len: body.len(),
            });
        }
        let ssrc = Ssrc(be32(body, at));
        at += 4;
        let mut items = Vec::new();
        loop {
            let kind = *body.get(at).ok_or(RtcpError::SdesUnterminated)?;
            if kind == 0 {
                // Skip the null terminator and the padding after it.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1).ok_or(RtcpError::SdesUnterminated)?);
            let value = body
                .get(at + 2..at + 2 + len)
                .ok_or(RtcpError::SdesUnterminated)?;
            items.push(SdesItem { kind, value });
            at += 2 + len;
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Ok(chunks)
}

impl RtcpPacket<'_> {
    /// Appends this packet, header included, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = out.len();
        let (count, packet_type) = match self {
            Self::SenderReport(sr) => (sr.reports.len(), PT_SR),
            Self::ReceiverReport(rr) => (rr.reports.len(), PT_RR),
            Self::SourceDescription(chunks) => (chunks.len(), PT_SDES),
            Self::Goodbye(bye) => (bye.sources.len(), PT_BYE),
            Self::Other {
                packet_type, count, ..
            } => (usize::from(*count), *packet_type),
        };
        let count = u8::try_from(count)
            .ok()
            .filter(|c| *c <= 31)
            .ok_or(RtcpError::TooManyItems(count))?;
        out.extend_from_slice(&[0x80 | count, packet_type, 0, 0]);
        match self {
            Self::SenderReport(sr) => {
                out.extend_from_slice(&sr.ssrc.0.to_be_bytes());
                out.extend_from_slice(&sr.ntp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.octet_count.to_be_bytes());
                write_blocks(&sr.reports, out);
            }
            Self::ReceiverReport(rr) => {
                out.extend_from_slice(&rr.ssrc.0.to_be_bytes());
                write_blocks(&rr.reports, out);
            }
            Self::SourceDescription(chunks) => {
                for chunk in chunks {
                    out.extend_from_slice(&chunk.ssrc.0.to_be_bytes());
                    for item in &chunk.items {
                        let len = u8::try_from(item.value.len())
                            .map_err(|_| RtcpError::ItemTooLong(item.value.len()))?;
                        out.extend_from_slice(&[item.kind, len]);
                        out.extend_from_slice(item.value);
                    }
                    // Null terminator, then nulls to the 32-bit boundary.
                    out.push(0);
                    while (out.len() - start) % 4 != 0 {
                        out.push(0);
                    }
                }
            }
            Self::Goodbye(bye) => {
                for s in &bye.sources {
                    out.extend_from_slice(&s.0.to_be_bytes());
                }
                if let Some(reason) = bye.reason {
                    let len = u8::try_from(reason.len())
                        .map_err(|_| RtcpError::ItemTooLong(reason.len()))?;
                    out.push(len);
                    out.extend_from_slice(reason);
                }
                while (out.len() - start) % 4 != 0 {
                    out.push(0);
                }
            }
            Self::Other { body, .. } => {
                out.extend_from_slice(body);
                // An opaque body may end off a word boundary: pad it the
                // RFC 3550 §6.4.1 way so the receiver gets it back exactly.
                let pad = (4 - (out.len() - start) % 4) % 4;
                if pad > 0 {
                    out.extend_from_slice(&[0, 0, 0][..pad - 1]);
                    out.push(pad as u8);
                    out[start] |= 0x20;
                }
            }
        }
        let words = (out.len() - start) / 4 - 1;
        let words = u16::try_from(words).map_err(|_| RtcpError::TooManyItems(words))?;
        out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        Ok(())
    }
}

fn write_blocks(blocks: &[ReportBlock], out: &mut Vec<u8>) {
    for b in blocks {
        out.extend_from_slice(&b.ssrc.0.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
}

/// Serialises a compound packet (RFC 3550 §6.1) into `out`.
pub fn write_compound(packets: &[RtcpPacket<'_>], out: &mut Vec<u8>) -> Result<(), RtcpError> {
    for p in packets {
        p.write(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod ntp_tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn ntp_time_of_known_instants() {
        assert_eq!(ntp_timestamp(UNIX_EPOCH), NTP_UNIX_OFFSET << 32);
        let half = UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(
            ntp_timestamp(half),
            ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // RR from 0x01020304 with one block about 0x0a0b0c0d: 5/256 lost,
    // cumulative -1, highest 0x00010005, jitter 17, LSR 0x11223344, DLSR 0x10000.
    const RR: [u8; 32] = [
        0x81, 201, 0, 7, 1, 2, 3, 4, //
        0x0a, 0x0b, 0x0c, 0x0d, 5, 0xff, 0xff, 0xff, //
        0, 1, 0, 5, 0, 0, 0, 17, //
        0x11, 0x22, 0x33, 0x44, 0, 1, 0, 0,
    ];

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc(0x0a0b_0c0d),
            fraction_lost: 5,
            cumulative_lost: -1,
            highest_seq: 0x0001_0005,
            jitter: 17,
            last_sr: 0x1122_3344,
            delay_since_last_sr: 0x1_0000,
        }
    }

    #[test]
    fn parses_and_writes_known_rr() {
        let packets = parse_compound(&RR).unwrap();
        let expected = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(0x0102_0304),
            reports: vec![block()],
        });
        assert_eq!(packets, vec![expected.clone()]);
        let mut out = Vec::new();
        expected.write(&mut out).unwrap();
        assert_eq!(out, RR);
    }

    #[test]
    fn sr_sdes_bye_compound_round_trip() {
        let packets = vec![
            RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(7),
                ntp_timestamp: 0x8000_0001_4000_0000,
                rtp_timestamp: 160_000,
                packet_count: 1000,
                octet_count: 160_000,
                reports: vec![block(), block()],
            }),
            RtcpPacket::SourceDescription(vec![SdesChunk {
                ssrc: Ssrc(7),
                items: vec![
                    SdesItem {
                        kind: SDES_CNAME,
                        value: b"agent7@pbx",
                    },
                    SdesItem {
                        kind: 6,
                        value: b"switchboard",
                    },
                ],
            }]),
            RtcpPacket::Goodbye(Goodbye {
                sources: vec![Ssrc(7)],
                reason: Some(b"call ended"),
            }),
        ];
        let mut out = Vec::new();
        write_compound(&packets, &mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        // SR header: RC=2, length (28 + 48) / 4 - 1 = 18 words.
        assert_eq!(out[..4], [0x82, 200, 0, 18]);
        let parsed = parse_compound(&out).unwrap();
        assert_eq!(parsed, packets);
        match &parsed[1] {
            RtcpPacket::SourceDescription(chunks) => {
                assert_eq!(chunks[0].cname(), Some(&b"agent7@pbx"[..]));
            }
            other => panic!("expected SDES, got {other:?}"),
        }
    }

    #[test]
    fn sdes_known_vector() {
        // One chunk, CNAME "ab": 4 + 2 + 2 = 8, then a null and 3 pad bytes.
        let sdes = [0x81, 202, 0, 3, 0, 0, 0, 9, 1, 2, b'a', b'b', 0, 0, 0, 0];
        let p = parse_compound(&sdes).unwrap();
        let mut out = Vec::new();
        write_compound(&p, &mut out).unwrap();
        assert_eq!(out, sdes);
    }

    #[test]
    fn empty_bye_and_unknown_types() {
        let data = [
            0x80, 203, 0, 0, // BYE with no source
            0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, // RTPFB, kept opaque
        ];
        let p = parse_compound(&data).unwrap();
        assert_eq!(
            p[0],
            RtcpPacket::Goodbye(Goodbye {
                sources: vec![],
                reason: None
            })
        );
        assert_eq!(
            p[1],
            RtcpPacket::Other {
                packet_type: 205,
                count: 1,
                body: &[0, 0, 0, 1, 0, 0, 0, 2]
            }
        );
    }

    #[test]
    fn malformed_lengths_are_rejected() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        // Length claims 8 words, only 7 present.
        let mut v = RR;
        v[3] = 8;
        assert!(matches!(
            parse_compound(&v),
            Err(RtcpError::LengthOverrun { declared: 36, .. })
        ));
        // RC says 2 blocks, the length only holds one.
        let mut v = RR;
        v[0] = 0x82;
        assert!(matches!(
            parse_compound(&v),
            Err(RtcpError::BodyTooShort {
                packet_type: 201,
                ..
            })
        ));
        // Trailing bytes after a good packet.
        let mut v = RR.to_vec();
        v.extend_from_slice(&[0x80, 201]);
        assert_eq!(
            parse_compound(&v),
            Err(RtcpError::TruncatedHeader { remaining: 2 })
        );
        let mut v = RR;
        v[0] = 0x41;
        assert_eq!(parse_compound(&v), Err(RtcpError::BadVersion(1)));
        // Padding count larger than the packet.
        let mut v = RR;
        v[0] = 0xa1;
        v[31] = 40;
        assert!(matches!(
            parse_compound(&v),
            Err(RtcpError::BadPadding { count: 40, .. })
        ));
        // SDES item running past the packet.
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 9, 1, 9, b'a', b'b'];
        assert_eq!(parse_compound(&sdes), Err(RtcpError::SdesUnterminated));
        // BYE reason longer than the packet.
        let bye = [0x81, 203, 0, 2, 0, 0, 0, 9, 20, b'x', 0, 0];
        assert_eq!(
            parse_compound(&bye),
            Err(RtcpError::ByeReasonOverrun { len: 20 })
        );
    }

    #[test]
    fn writer_rejects_what_the_wire_cannot_carry() {
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![block(); 32],
        });
        assert_eq!(rr.write(&mut Vec::new()), Err(RtcpError::TooManyItems(32)));
        let long = [b'x'; 256];
        let sdes = RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc: Ssrc(1),
            items: vec![SdesItem {
                kind: SDES_CNAME,
                value: &long,
            }],
        }]);
        assert_eq!(
            sdes.write(&mut Vec::new()),
            Err(RtcpError::ItemTooLong(256))
        );
    }

    #[test]
    fn opaque_body_off_word_boundary_is_padded() {
        let p = RtcpPacket::Other {
            packet_type: 204,
            count: 0,
            body: &[1, 2, 3, 4, 5],
        };
        let mut out = Vec::new();
        p.write(&mut out).unwrap();
        assert_eq!(out, [0xa0, 204, 0, 2, 1, 2, 3, 4, 5, 0, 0, 3]);
        assert_eq!(parse_compound(&out).unwrap(), vec![p]);
    }
}
