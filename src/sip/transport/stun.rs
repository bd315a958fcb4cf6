//! STUN keep-alives on the SIP UDP port (RFC 5626 §4.4.2, §8.4).
//!
//! A UA keeps its NAT binding and flow alive by sending STUN Binding
//! requests (RFC 5389) to the SIP port; the server answers them with the
//! reflexive address it saw (XOR-MAPPED-ADDRESS), and never passes them to
//! the SIP stack. No authentication is used for this usage, so this is the
//! minimal credential-less Binding server.

use std::net::{IpAddr, SocketAddr};

/// RFC 5389 §6: fixed value in every STUN header.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_FINGERPRINT: u16 = 0x8028;
/// RFC 5389 §15.5: the CRC is XOR-ed with this so a STUN CRC never equals
/// the CRC of the same bytes in another protocol.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// Whether a datagram is STUN rather than SIP (RFC 5389 §6 and RFC 5626
/// §4.4.2 demultiplexing): the two most significant bits are zero (a SIP
/// message starts with an ASCII letter) and the magic cookie is present.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN
        && datagram[0] & 0xC0 == 0
        && datagram[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// The success response to a Binding request received from `source`, or
/// `None` for anything else: not STUN, not a Binding request, malformed,
/// a wrong FINGERPRINT, or a comprehension-required attribute (RFC 5389
/// §7.3.1 would require an error response or authentication there, which a
/// keep-alive responder does not offer; the client then sees a failed
/// keep-alive rather than a wrong answer).
pub fn binding_response(request: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    if !is_stun(request) || u16::from_be_bytes([request[0], request[1]]) != BINDING_REQUEST {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([request[2], request[3]]));
    // RFC 5389 §6: the length covers everything after the header and is a
    // multiple of 4 (attributes are padded).
    if body_len % 4 != 0 || HEADER_LEN + body_len != request.len() {
        return None;
    }
    let with_fingerprint = check_attributes(request)?;
    let transaction_id = &request[8..HEADER_LEN];

    let mut response = Vec::with_capacity(HEADER_LEN + 24 + 8);
    response.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    response.extend_from_slice(&0u16.to_be_bytes()); // length, set below
    response.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    response.extend_from_slice(transaction_id);

    // RFC 5389 §15.2 XOR-MAPPED-ADDRESS.
    let x_port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match source.ip() {
        IpAddr::V4(ip) => {
            let x_addr = u32::from(ip) ^ MAGIC_COOKIE;
            push_attribute_header(&mut response, ATTR_XOR_MAPPED_ADDRESS, 8);
            response.extend_from_slice(&[0, FAMILY_IPV4]);
            response.extend_from_slice(&x_port.to_be_bytes());
            response.extend_from_slice(&x_addr.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            // The IPv6 address is XOR-ed with the cookie followed by the
            // transaction id.
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(transaction_id);
            push_attribute_header(&mut response, ATTR_XOR_MAPPED_ADDRESS, 20);
            response.extend_from_slice(&[0, FAMILY_IPV6]);
            response.extend_from_slice(&x_port.to_be_bytes());
            response.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
        }
    }

    if with_fingerprint {
        // RFC 5389 §15.5: the length field must already count the
        // FINGERPRINT attribute when the CRC is computed.
        let body_len = response.len() - HEADER_LEN + 8;
        set_length(&mut response, body_len);
        let crc = crc32(&response) ^ FINGERPRINT_XOR;
        push_attribute_header(&mut response, ATTR_FINGERPRINT, 4);
        response.extend_from_slice(&crc.to_be_bytes());
    } else {
        let body_len = response.len() - HEADER_LEN;
        set_length(&mut response, body_len);
    }
    Some(response)
}

/// Walks the request's attributes: `Some(true)` when it ends with a valid
/// FINGERPRINT, `Some(false)` when it has none, `None` when it must not be
/// answered.
fn check_attributes(request: &[u8]) -> Option<bool> {
    let mut pos = HEADER_LEN;
    while pos < request.len() {
        let attr = request.get(pos..pos + 4)?;
        let kind = u16::from_be_bytes([attr[0], attr[1]]);
        let len = usize::from(u16::from_be_bytes([attr[2], attr[3]]));
        let value_start = pos + 4;
        let value = request.get(value_start..value_start + len)?;
        let next = value_start + len.div_ceil(4) * 4;
        if kind == ATTR_FINGERPRINT {
            // RFC 5389 §15.5: FINGERPRINT is last, and covers everything
            // before it (with the length field as sent).
            let expected = crc32(&request[..pos]) ^ FINGERPRINT_XOR;
            let ok = len == 4 && next == request.len() && value == expected.to_be_bytes();
            return ok.then_some(true);
        }
        // RFC 5389 §15: 0x0000-0x7FFF are comprehension-required.
        if kind < 0x8000 {
            return None;
        }
        pos = next;
    }
    (pos == request.len()).then_some(false)
}

fn push_attribute_header(out: &mut Vec<u8>, kind: u16, len: u16) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

fn set_length(message: &mut [u8], body_len: usize) {
    // Responses built here are at most a few dozen bytes.
    let len = u16::try_from(body_len).unwrap_or(u16::MAX);
    message[2..4].copy_from_slice(&len.to_be_bytes());
}

/// CRC-32 as used by FINGERPRINT (ISO HDLC / IEEE 802.3, reflected,
/// polynomial 0xEDB88320). Bitwise: keep-alives are rare and tiny.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const TXID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn request(attributes: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        r.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        r.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        r.extend_from_slice(&TXID);
        r.extend_from_slice(attributes);
        r
    }

    fn with_fingerprint(mut r: Vec<u8>) -> Vec<u8> {
        let len = r.len() - HEADER_LEN + 8;
        r[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let crc = crc32(&r) ^ FINGERPRINT_XOR;
        r.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&crc.to_be_bytes());
        r
    }

    /// Independent decoder of XOR-MAPPED-ADDRESS, following RFC 5389 §15.2.
    fn decode_mapped(response: &[u8]) -> SocketAddr {
        assert!(is_stun(response));
        assert_eq!(
            u16::from_be_bytes([response[0], response[1]]),
            BINDING_SUCCESS
        );
        assert_eq!(&response[8..20], &TXID);
        let body_len = u16::from_be_bytes([response[2], response[3]]) as usize;
        assert_eq!(response.len(), HEADER_LEN + body_len);
        let attr = &response[20..];
        assert_eq!(
            u16::from_be_bytes([attr[0], attr[1]]),
            ATTR_XOR_MAPPED_ADDRESS
        );
        let cookie = MAGIC_COOKIE.to_be_bytes();
        let port = u16::from_be_bytes([attr[6] ^ cookie[0], attr[7] ^ cookie[1]]);
        match attr[5] {
            FAMILY_IPV4 => {
                let a: Vec<u8> = attr[8..12].iter().zip(cookie).map(|(x, k)| x ^ k).collect();
                SocketAddr::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(), port)
            }
            FAMILY_IPV6 => {
                let key: Vec<u8> = cookie.iter().chain(TXID.iter()).copied().collect();
                let mut a = [0u8; 16];
                for (i, (x, k)) in attr[8..24].iter().zip(key).enumerate() {
                    a[i] = x ^ k;
                }
                SocketAddr::new(Ipv6Addr::from(a).into(), port)
            }
            f => panic!("unknown family {f}"),
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn recognises_stun_and_not_sip() {
        assert!(is_stun(&request(&[])));
        assert!(!is_stun(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"));
        assert!(!is_stun(&request(&[])[..19]));
        let mut r = request(&[]);
        r[7] ^= 1;
        assert!(!is_stun(&r), "wrong cookie");
        let mut r = request(&[]);
        r[0] |= 0x40;
        assert!(!is_stun(&r), "top bits set");
    }

    #[test]
    fn answers_ipv4_binding_request() {
        let source: SocketAddr = "192.0.2.33:40001".parse().unwrap();
        let response = binding_response(&request(&[]), source).unwrap();
        assert_eq!(response.len(), 32);
        assert_eq!(decode_mapped(&response), source);
        // The XOR really obfuscates (RFC 5389 §15.2's point).
        assert_ne!(&response[28..32], &[192, 0, 2, 33]);
    }

    #[test]
    fn answers_ipv6_binding_request() {
        let source: SocketAddr = "[2001:db8::1:2]:5062".parse().unwrap();
        let response = binding_response(&request(&[]), source).unwrap();
        assert_eq!(response.len(), 44);
        assert_eq!(decode_mapped(&response), source);
    }

    #[test]
    fn optional_attributes_are_ignored_and_fingerprint_echoed() {
        // SOFTWARE (0x8022, comprehension-optional) with 3 bytes + padding.
        let software = [0x80, 0x22, 0, 3, b'a', b'b', b'c', 0];
        let source: SocketAddr = "198.51.100.7:5060".parse().unwrap();
        let response = binding_response(&request(&software), source).unwrap();
        assert_eq!(decode_mapped(&response), source);
        assert_eq!(
            response.len(),
            32,
            "no FINGERPRINT unless the request had one"
        );

        let response = binding_response(&with_fingerprint(request(&software)), source).unwrap();
        assert_eq!(decode_mapped(&response), source);
        let (signed, fp) = response.split_at(response.len() - 8);
        assert_eq!(&fp[..4], &[0x80, 0x28, 0, 4]);
        assert_eq!(fp[4..], (crc32(signed) ^ FINGERPRINT_XOR).to_be_bytes());
    }

    #[test]
    fn rejects_what_it_must_not_answer() {
        let source: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(
            binding_response(b"OPTIONS sip:x SIP/2.0\r\n\r\n", source),
            None
        );
        // A Binding success response, not a request.
        let mut r = request(&[]);
        r[1] = 0x01;
        r[0] = 0x01;
        assert_eq!(binding_response(&r, source), None);
        // Length field disagreeing with the datagram.
        let mut r = request(&[]);
        r.push(0);
        assert_eq!(binding_response(&r, source), None);
        // Truncated attribute.
        assert_eq!(
            binding_response(&request(&[0x80, 0x22, 0, 8]), source),
            None
        );
        // Comprehension-required attribute (USERNAME).
        assert_eq!(
            binding_response(&request(&[0, 6, 0, 4, b'u', b's', b'e', b'r']), source),
            None
        );
        // Corrupted FINGERPRINT.
        let mut r = with_fingerprint(request(&[]));
        let last = r.len() - 1;
        r[last] ^= 1;
        assert_eq!(binding_response(&r, source), None);
    }
}
