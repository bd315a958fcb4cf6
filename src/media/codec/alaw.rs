//! G.711 A-law (ITU-T G.711 §4, Tables 1a/1b), on 16-bit linear PCM.
//!
//! G.711 defines A-law on a 13-bit linear scale; we work on `i16` with
//! that scale shifted left by 3, so the largest magnitude is 4032 × 8 =
//! 32256.

use super::CodecError;

/// Even bits are inverted on the wire (G.711 §4.4) to keep enough ones
/// density on old TDM links; we undo it with this mask.
const EVEN_BITS: u8 = 0x55;

/// Decode table, built at compile time: after undoing the even-bit
/// inversion, bit 7 is the sign (set = positive), bits 6..4 the segment and
/// bits 3..0 the step within it.
static DECODE: [i16; 256] = build_decode();

const fn build_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let a = (code as u8) ^ EVEN_BITS;
        let mantissa = ((a & 0x0F) as i32) << 4;
        let segment = ((a & 0x70) >> 4) as i32;
        // Segments 0 and 1 share the same step (A-law's linear core); the
        // half-step offset (8 / 0x108) centres the value in its interval.
        let magnitude = match segment {
            0 => mantissa + 8,
            1 => mantissa + 0x108,
            _ => (mantissa + 0x108) << (segment - 1),
        };
        table[code] = if a & 0x80 != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        code += 1;
    }
    table
}

/// Decodes one A-law code to linear PCM.
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[usize::from(code)]
}

/// Encodes one linear sample to A-law (nearest reconstruction value).
#[inline]
pub fn encode(sample: i16) -> u8 {
    // Work on the 13-bit scale G.711 specifies.
    let x = i32::from(sample) >> 3;
    // Negative values map -1 → 0 so that both signs have 4096 magnitudes
    // and no code is wasted on a negative zero.
    let (magnitude, mask) = if x >= 0 {
        (x, EVEN_BITS | 0x80)
    } else {
        (-x - 1, EVEN_BITS)
    };
    // magnitude is 0..=4095: segment 0 covers 0..=31, then each segment
    // doubles (top bit 5..=11 → segment 1..=7).
    let code = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let segment = (31 - magnitude.leading_zeros()) as i32 - 4;
        ((segment as u8) << 4) | ((magnitude >> segment) & 0x0F) as u8
    };
    code ^ mask
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

    /// Reconstruction value from G.711 Table 1a, independent of the
    /// decoder: segment 0 gives 2q + 1, segment s ≥ 1 gives
    /// (2q + 33) · 2^(s−1) on the 13-bit scale (×8 for 16-bit).
    fn itu_value(code: u8) -> i16 {
        let a = code ^ 0x55;
        let s = u32::from((a >> 4) & 0x07);
        let q = i32::from(a & 0x0F);
        let v = if s == 0 {
            2 * q + 1
        } else {
            (2 * q + 33) << (s - 1)
        } * 8;
        if a & 0x80 != 0 {
            v as i16
        } else {
            -v as i16
        }
    }

    fn step(code: u8) -> i32 {
        let s = u32::from(((code ^ 0x55) >> 4) & 0x07);
        16 << s.saturating_sub(1)
    }

    #[test]
    fn anchors() {
        assert_eq!(decode(0xD5), 8);
        assert_eq!(decode(0x55), -8);
        assert_eq!(decode(0xAA), 32256);
        assert_eq!(decode(0x2A), -32256);
        assert_eq!(encode(0), 0xD5);
        assert_eq!(encode(-1), 0x55);
        assert_eq!(encode(i16::MAX), 0xAA);
        assert_eq!(encode(i16::MIN), 0x2A);
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
            assert_eq!(encode(decode(code)), code, "code {code:#04x}");
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
        assert!(encode_into(&pcm, &mut [0u8; 4]).is_err());
        assert_eq!(
            decode_into(&codes, &mut [0i16; 6]),
            Err(CodecError::LengthMismatch {
                input: 5,
                output: 6
            })
        );
    }

    proptest! {
        #[test]
        fn quantisation_error_is_within_one_step(x in any::<i16>()) {
            let code = encode(x);
            let err = (i32::from(decode(code)) - i32::from(x)).abs();
            // A-law's top interval is centred on 32256 too, so unlike µ-law
            // there is no clipping region: half a step holds everywhere.
            prop_assert!(err <= step(code) / 2, "x={} code={:#04x} err={}", x, code, err);
        }
    }
}
