//! The RTP fixed header (RFC 3550 §5.1) as a zero-copy view.
//!
//! A relay forwards thousands of packets per second per core, so parsing
//! allocates nothing: [`RtpPacket`] validates once and keeps the offsets of
//! the payload, and the setters rewrite header fields in place, in whatever
//! buffer the packet arrived in.

use thiserror::Error;

/// Length of the fixed header, before any CSRC (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// A synchronisation source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("packet of {len} bytes is shorter than the 12-byte RTP header")]
    TooShort { len: usize },
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("{csrc_count} CSRCs need {needed} bytes, packet has {len}")]
    CsrcTruncated {
        csrc_count: u8,
        needed: usize,
        len: usize,
    },
    #[error("header extension needs {needed} bytes, packet has {len}")]
    ExtensionTruncated { needed: usize, len: usize },
    #[error("padding count {count} exceeds the {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
    #[error("payload type {0} does not fit in 7 bits")]
    InvalidPayloadType(u8),
    #[error("buffer of {len} bytes cannot hold a {needed}-byte header")]
    BufferTooSmall { needed: usize, len: usize },
}

/// A validated RTP packet over any byte buffer: `&[u8]`, `bytes::Bytes`
/// (read only) or `&mut [u8]`, `Vec<u8>`, `bytes::BytesMut` (rewritable).
#[derive(Debug, Clone)]
pub struct RtpPacket<B> {
    buf: B,
    payload_start: usize,
    payload_end: usize,
}

impl<B: AsRef<[u8]>> RtpPacket<B> {
    /// Validates the header, CSRC list, extension and padding.
    pub fn parse(buf: B) -> Result<Self, RtpError> {
        let data = buf.as_ref();
        let len = data.len();
        if len < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = data[0] & 0x0f;
        let mut offset = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if offset > len {
            return Err(RtpError::CsrcTruncated {
                csrc_count,
                needed: offset,
                len,
            });
        }
        // RFC 3550 §5.3.1: a 4-byte extension header (profile-defined 16
        // bits, then the length in 32-bit words, not counting itself).
        if data[0] & 0x10 != 0 {
            let ext_words = match data.get(offset + 2..offset + 4) {
                Some(w) => usize::from(u16::from_be_bytes([w[0], w[1]])),
                None => {
                    return Err(RtpError::ExtensionTruncated {
                        needed: offset + 4,
                        len,
                    })
                }
            };
            offset += 4 + 4 * ext_words;
            if offset > len {
                return Err(RtpError::ExtensionTruncated {
                    needed: offset,
                    len,
                });
            }
        }
        let mut payload_end = len;
        // RFC 3550 §5.1: the last octet counts the padding, itself included,
        // so it can be neither 0 nor reach into the header.
        if data[0] & 0x20 != 0 {
            let count = data[len - 1];
            let available = len - offset;
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::BadPadding { count, available });
            }
            payload_end = len - usize::from(count);
        }
        Ok(Self {
            buf,
            payload_start: offset,
            payload_end,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Always 2 once parsed.
    pub fn version(&self) -> u8 {
        self.bytes()[0] >> 6
    }

    pub fn has_padding(&self) -> bool {
        self.bytes()[0] & 0x20 != 0
    }

    pub fn has_extension(&self) -> bool {
        self.bytes()[0] & 0x10 != 0
    }

    pub fn csrc_count(&self) -> u8 {
        self.bytes()[0] & 0x0f
    }

    pub fn marker(&self) -> bool {
        self.bytes()[1] & 0x80 != 0
    }

    pub fn payload_type(&self) -> u8 {
        self.bytes()[1] & 0x7f
    }

    pub fn sequence(&self) -> u16 {
        let b = self.bytes();
        u16::from_be_bytes([b[2], b[3]])
    }

    pub fn timestamp(&self) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    pub fn ssrc(&self) -> Ssrc {
        let b = self.bytes();
        Ssrc(u32::from_be_bytes([b[8], b[9], b[10], b[11]]))
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + '_ {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        self.bytes()[FIXED_HEADER_LEN..end]
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The extension's profile-defined 16 bits and its data, if present.
    pub fn extension(&self) -> Option<(u16, &[u8])> {
        if !self.has_extension() {
            return None;
        }
        let start = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        let b = self.bytes();
        let profile = u16::from_be_bytes([b[start], b[start + 1]]);
        Some((profile, &b[start + 4..self.payload_start]))
    }

    /// The payload, without header, extension or padding.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[self.payload_start..self.payload_end]
    }

    /// Length of everything before the payload.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The whole packet as received (or as rewritten).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }

    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<B> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    pub fn set_sequence(&mut self, seq: u16) {
        self.bytes_mut()[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    pub fn set_timestamp(&mut self, ts: u32) {
        self.bytes_mut()[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    pub fn set_ssrc(&mut self, ssrc: Ssrc) {
        self.bytes_mut()[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    }

    pub fn set_marker(&mut self, marker: bool) {
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    pub fn set_payload_type(&mut self, pt: u8) -> Result<(), RtpError> {
        if pt > 0x7f {
            return Err(RtpError::InvalidPayloadType(pt));
        }
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x80) | pt;
        Ok(())
    }

    /// The payload, writable in place (e.g. for transcoding same-size codecs).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.payload_start, self.payload_end);
        &mut self.bytes_mut()[start..end]
    }
}

/// The fields of a header we originate: no CSRC, extension or padding, which
/// is what an anchoring gateway sends on its own legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: Ssrc,
}

impl RtpHeader {
    /// Writes the 12-byte fixed header at the start of `buf` and returns the
    /// number of bytes written, so the payload goes at `buf[n..]`.
    pub fn write_header(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        if self.payload_type > 0x7f {
            return Err(RtpError::InvalidPayloadType(self.payload_type));
        }
        let Some(out) = buf.get_mut(..FIXED_HEADER_LEN) else {
            return Err(RtpError::BufferTooSmall {
                needed: FIXED_HEADER_LEN,
                len: buf.len(),
            });
        };
        out[0] = 0x80;
        out[1] = self.payload_type | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        Ok(FIXED_HEADER_LEN)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // V=2, M=1, PT=0 (PCMU), seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304.
    const SIMPLE: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc,
        0xdd,
    ];

    #[test]
    fn parses_known_vector() {
        let p = RtpPacket::parse(&SIMPLE[..]).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), Ssrc(0x0102_0304));
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(p.header_len(), 12);
        assert!(p.extension().is_none());
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut v = vec![0xb2, 0x08, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]; // P, X, CC=2, PT 8
        v.extend_from_slice(&[0, 0, 0, 0x11, 0, 0, 0, 0x22]); // CSRCs
        v.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]); // ext, 2 words
        v.extend_from_slice(&[9, 9, 9]); // payload
        v.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = RtpPacket::parse(&v[..]).unwrap();
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![Ssrc(0x11), Ssrc(0x22)]);
        assert_eq!(p.extension(), Some((0xbede, &[1, 2, 3, 4, 5, 6, 7, 8][..])));
        assert_eq!(p.payload(), &[9, 9, 9]);
        assert_eq!(p.payload_type(), 8);
        assert!(!p.marker());
        assert_eq!(p.header_len(), 32);
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        assert_eq!(
            RtpPacket::parse(&SIMPLE[..11]).unwrap_err(),
            RtpError::TooShort { len: 11 }
        );
        let mut v = SIMPLE;
        v[0] = 0x40;
        assert_eq!(
            RtpPacket::parse(&v[..]).unwrap_err(),
            RtpError::BadVersion(1)
        );
        v[0] = 0x82; // two CSRCs, only 4 bytes after the header
        assert!(matches!(
            RtpPacket::parse(&v[..]),
            Err(RtpError::CsrcTruncated { .. })
        ));
        v[0] = 0x90; // extension header says 0xccdd words
        assert!(matches!(
            RtpPacket::parse(&v[..]),
            Err(RtpError::ExtensionTruncated { .. })
        ));
        v[0] = 0xa0;
        v[15] = 5; // padding 5 > 4 bytes available
        assert_eq!(
            RtpPacket::parse(&v[..]).unwrap_err(),
            RtpError::BadPadding {
                count: 5,
                available: 4
            }
        );
        v[15] = 0;
        assert!(matches!(
            RtpPacket::parse(&v[..]),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        v[15] = 4; // all padding: empty payload is fine
        assert_eq!(RtpPacket::parse(&v[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn extension_header_cut_short_is_rejected() {
        let v = [0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde];
        assert_eq!(
            RtpPacket::parse(&v[..]).unwrap_err(),
            RtpError::ExtensionTruncated {
                needed: 16,
                len: 14
            }
        );
    }

    #[test]
    fn setters_rewrite_in_place() {
        let mut v = SIMPLE.to_vec();
        let mut p = RtpPacket::parse(&mut v[..]).unwrap();
        p.set_sequence(0xfffe);
        p.set_timestamp(7);
        p.set_ssrc(Ssrc(0xcafe_f00d));
        p.set_marker(false);
        p.set_payload_type(96).unwrap();
        assert_eq!(
            p.set_payload_type(128),
            Err(RtpError::InvalidPayloadType(128))
        );
        assert_eq!(p.sequence(), 0xfffe);
        assert_eq!(p.timestamp(), 7);
        assert_eq!(p.ssrc(), Ssrc(0xcafe_f00d));
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(
            v[..12],
            [0x80, 96, 0xff, 0xfe, 0, 0, 0, 7, 0xca, 0xfe, 0xf0, 0x0d]
        );
    }

    #[test]
    fn write_header_round_trips() {
        let h = RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: Ssrc(0x0102_0304),
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.write_header(&mut buf).unwrap(), 12);
        buf[12..].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buf, SIMPLE);
        assert!(matches!(
            h.write_header(&mut [0u8; 11]),
            Err(RtpError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn works_over_bytes() {
        let b = bytes::Bytes::from_static(&SIMPLE);
        let p = RtpPacket::parse(b.clone()).unwrap();
        assert_eq!(p.payload().as_ptr(), b[12..].as_ptr());
    }
}
