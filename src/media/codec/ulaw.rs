//! G.711 µ-law (ITU-T G.711 §3, Tables 2a/2b), on 16-bit linear PCM.
//!
//! G.711 defines µ-law on a 14-bit linear scale; we work on `i16` with
//! that scale shifted left by 2, the convention every RTP stack uses, so
//! the largest magnitude is 8031 × 4 = 32124.

use super::CodecError;

/// Bias added before the segment search: it turns the µ-law curve's
/// piecewise-linear segments into exact powers of two (G.711 §3.2).
const BIAS: i32 = 0x84;
/// Largest magnitude that still encodes without overflowing segment 7.
const CLIP: i32 = 32635;

/// Decode table, built at compile time from the segment structure: code
/// bits are inverted on the wire (G.711 §3.4), then sign (bit 7, set =
/// negative), segment (bits 6..4) and step within the segment (bits 3..0).
static DECODE: [i16; 256] = build_decode();

const fn build_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let u = !(code as u8);
        let mantissa = (u & 0x0F) as i32;
        let segment = ((u & 0x70) >> 4) as i32;
        let magnitude = (((mantissa << 3) + BIAS) << segment) - BIAS;
        table[code] = if u & 0x80 != 0 {
            -magnitude as i16
        } else {
            magnitude as i16
        };
        code += 1;
    }
    table
}

/// Decodes one µ-law code to linear PCM.
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[usize::from(code)]
}

/// Encodes one linear sample to µ-law, rounding to the nearest decision
/// interval's reconstruction value. Zero encodes as 0xFF (positive zero).
#[inline]
pub fn encode(sample: i16) -> u8 {
    let mut x = i32::from(sample);
    let sign: u8 = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    let x = x.min(CLIP) + BIAS;
    // x is in 132..=32767, so its top bit is 7..=14 and the segment 0..=7.
    let segment = (31 - x.leading_zeros()) as i32 - 7;
    let mantissa = (x >> (segment + 3)) & 0x0F;
    !(sign | ((segment as u8) << 4) | mantissa as u8)
}

/// Encodes `pcm` into `out` (same length), one code per sample.
pub fn encode_into(pcm: &[i16], out: &mut [u8]) -> Result<(), CodecError> {
    super::map_into(pcm, out, encode)
}

/// Decodes `codes` into `out` (same length), one sample per code.
pub fn decode_into(codes: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
    super::map_into(codes, out, decode)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reconstruction value straight from G.711 Table 2a, written
    /// independently of the decoder: segment s, step q give
    /// ((2q + 33) · 2^s − 33) on the 14-bit scale; ×4 for 16-bit.
    fn itu_value(code: u8) -> i16 {
        let u = !code;
        let s = u32::from((u >> 4) & 0x07);
        let q = i32::from(u & 0x0F);
        let v = (((2 * q + 33) << s) - 33) * 4;
        if u & 0x80 != 0 {
            -v as i16
        } else {
            v as i16
        }
    }

    /// Width of the decision interval a code belongs to, in 16-bit units.
    fn step(code: u8) -> i32 {
        let s = u32::from(((!code) >> 4) & 0x07);
        8 << s
    }

    #[test]
    fn anchors() {
        assert_eq!(decode(0xFF), 0);
        assert_eq!(decode(0x7F), 0);
        assert_eq!(decode(0x00), -32124);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(encode(i16::MIN), 0x00);
    }

    #[test]
    fn every_code_decodes_to_the_itu_value() {
        for code in 0..=255u8 {
            assert_eq!(decode(code), itu_value(code), "code {code:#04x}");
        }
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            // 0x7F is negative zero; G.711 encoders emit positive zero.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(encode(decode(code)), expected, "code {code:#04x}");
        }
    }

    #[test]
    fn encode_is_monotonic() {
        let mut previous = decode(encode(i16::MIN));
        for x in i16::MIN..=i16::MAX {
            let y = decode(encode(x));
            assert!(y >= previous, "decode(encode({x})) = {y} < {previous}");
            previous = y;
        }
    }

    #[test]
    fn slices_convert_and_reject_mismatched_lengths() {
        let pcm = [0i16, 1000, -1000, 32000, -32000];
        let mut codes = [0u8; 5];
        encode_into(&pcm, &mut codes).unwrap();
        let mut back = [0i16; 5];
        decode_into(&codes, &mut back).unwrap();
        for (i, &x) in pcm.iter().enumerate() {
            assert_eq!(codes[i], encode(x));
            assert_eq!(back[i], decode(codes[i]));
        }
        assert_eq!(
            encode_into(&pcm, &mut [0u8; 4]),
            Err(CodecError::LengthMismatch {
                input: 5,
                output: 4
            })
        );
        assert!(decode_into(&codes, &mut [0i16; 6]).is_err());
    }

    proptest! {
        #[test]
        fn quantisation_error_is_within_one_step(x in any::<i16>()) {
            let code = encode(x);
            let err = (i32::from(decode(code)) - i32::from(x)).abs();
            // Half a step inside the range; clipping above 32635 adds at most
            // 643 in the top segment, whose step is 1024.
            prop_assert!(err <= step(code), "x={} code={:#04x} err={}", x, code, err);
            if i32::from(x).abs() <= CLIP {
                prop_assert!(err <= step(code) / 2, "x={} err={}", x, err);
            }
        }
    }
}
