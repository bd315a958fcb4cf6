//! Sample-level codecs and signal tools for the media engine: G.711
//! µ-law/A-law, rate conversion between the rates our legs use, Goertzel
//! tone measurement and a tone generator.
//!
//! Everything here is sans-IO and works on caller-provided buffers, so the
//! media workers can convert a 20 ms frame without allocating.

pub mod alaw;
pub mod audio;
pub mod goertzel;
pub mod opus;
pub mod resample;
pub mod tone;
pub mod ulaw;

pub use audio::{AudioCodecError, AudioDecoder, AudioEncoder};
pub use goertzel::{ToneDetection, ToneDetector};
pub use opus::{OpusDecoder, OpusEncoder, OpusError};
pub use resample::{Resampler, SampleRate};
pub use tone::ToneGenerator;

/// Why a codec operation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Slice conversions map sample `i` to code `i`, so both sides must
    /// have the same length; a mismatch is a caller bug we refuse to guess
    /// around (truncating would silently drop audio).
    #[error("input has {input} samples but output has room for {output}")]
    LengthMismatch {
        /// Length of the input slice.
        input: usize,
        /// Length of the output slice.
        output: usize,
    },
    /// The resampler only knows the rates our SDP offers (8, 16, 48 kHz).
    #[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 48000)")]
    UnsupportedRate(u32),
    /// A fixed output buffer cannot hold what one `process` call yields.
    #[error("output buffer holds {available} samples but {needed} are needed")]
    OutputTooSmall {
        /// Samples this call produces.
        needed: usize,
        /// Capacity of the buffer the caller gave.
        available: usize,
    },
}

/// Applies a per-sample codec function from `input` into `out`, which must
/// have the same length (G.711 is one code per sample, both laws alike).
pub(crate) fn map_into<I: Copy, O>(
    input: &[I],
    out: &mut [O],
    f: impl Fn(I) -> O,
) -> Result<(), CodecError> {
    if input.len() != out.len() {
        return Err(CodecError::LengthMismatch {
            input: input.len(),
            output: out.len(),
        });
    }
    for (o, &i) in out.iter_mut().zip(input) {
        *o = f(i);
    }
    Ok(())
}
