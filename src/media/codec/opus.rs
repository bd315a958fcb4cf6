//! Opus (RFC 6716) through libopus, framed the way RFC 7587 carries it in
//! RTP: 48 kHz clock, one Opus packet per RTP payload.
//!
//! We always encode mono: RFC 7587 §7 makes the SDP say `opus/48000/2`
//! whatever is sent, and §3.4 lets a sender send mono to a stereo-capable
//! receiver. Decoding is mono too: a stereo packet is downmixed by libopus,
//! which is what a telephone leg wants.
//!
//! Encoder settings, all chosen for a gateway transcoding many calls:
//! - `Application::Voip` (speech-tuned, favours intelligibility);
//! - 20 ms frames, the ptime every SIP peer expects;
//! - in-band FEC off: it costs bitrate and encoder time and only helps
//!   peers that decode it one packet late, which our jitter path does not;
//! - DTX off: a silent leg must keep sending so RTP timeouts and NAT
//!   bindings stay alive, and our recorder/mixer expect a packet every 20 ms;
//! - [`COMPLEXITY`], see there for the measurement behind it.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bandwidth, Bitrate, Channels};

use super::SampleRate;

/// Opus's RTP clock and the rate we run libopus at (RFC 7587 §4.1: the
/// RTP clock is always 48 kHz, whatever the coded bandwidth).
pub const OPUS_RATE: u32 = 48_000;
/// One 20 ms frame at 48 kHz: what we encode per packet and the RTP
/// timestamp step.
pub const FRAME_SAMPLES: usize = 960;
/// Longest audio one Opus packet may carry: 120 ms (RFC 6716 §3.2.5).
pub const MAX_PACKET_SAMPLES: usize = 5760;
/// Largest payload libopus produces for one frame (RFC 6716 §3.2.1: a
/// frame is at most 1275 bytes; one frame per packet plus the TOC byte).
pub const MAX_PAYLOAD_BYTES: usize = 1276;
/// Samples in one 2.5 ms step at 48 kHz: concealment must be asked for in
/// multiples of the shortest Opus frame.
const PLC_STEP: usize = 120;

/// Encoder complexity (0..=10). Measured with `benches/transcode.rs` on
/// the build machine, one call-second of PCMU<->Opus both ways: complexity
/// 10 costs markedly more encoder time than 5 while a narrowband voice
/// stream (SILK layer, what an 8 kHz G.711 leg feeds us) gains little
/// audible quality; 5 keeps the 1 kHz tone round trip as clean (tests
/// below) and leaves the most headroom over the 150 calls per core target.
/// The figures are in the bench output and the commit that set this.
pub const COMPLEXITY: u8 = 5;

/// Why an Opus operation failed. libopus's own error is kept as the
/// source so logs can show its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    /// libopus refused to create or configure a coder (out of memory or a
    /// setting it does not know): a setup problem, not a packet problem.
    #[error("cannot set up the Opus coder")]
    Setup(#[source] audiopus::Error),
    /// An RTP payload with no bytes is not an Opus packet (RFC 6716 §3.1
    /// requires at least the TOC byte).
    #[error("empty Opus payload")]
    EmptyPayload,
    /// The TOC/frame-count bytes are inconsistent (RFC 6716 §3.1, §3.2.5).
    #[error("malformed Opus packet header")]
    MalformedHeader,
    /// The packet claims more than 120 ms of audio (RFC 6716 §3.2.5 limit).
    #[error("Opus packet carries {samples} samples at 48 kHz, more than 120 ms")]
    TooLong {
        /// Samples at 48 kHz the header announces.
        samples: usize,
    },
    /// libopus rejected the packet body while decoding.
    #[error("Opus packet could not be decoded")]
    Decode(#[source] audiopus::Error),
    /// Encoding expects exactly one 20 ms frame at 48 kHz.
    #[error("Opus encoder needs {expected} samples, got {got}")]
    FrameLength {
        /// Samples one frame must have.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// libopus failed to encode a well-formed frame.
    #[error("Opus encoding failed")]
    Encode(#[source] audiopus::Error),
}

/// Samples at 48 kHz in one frame of TOC configuration `config`
/// (RFC 6716 §3.1, Table 2).
fn frame_samples_for_config(config: u8) -> usize {
    match config {
        // SILK-only NB/MB/WB: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid SWB/FB: 10, 20 ms.
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Audio length (samples at 48 kHz) an Opus packet announces, read from
/// its TOC byte and, for code 3, the frame-count byte (RFC 6716 §3.1,
/// §3.2). Used to size the decode and to refuse over-long packets before
/// handing them to libopus.
pub fn packet_samples(packet: &[u8]) -> Result<usize, OpusError> {
    let Some(&toc) = packet.first() else {
        return Err(OpusError::EmptyPayload);
    };
    let per_frame = frame_samples_for_config(toc >> 3);
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        // Code 3: the second byte's low 6 bits count the frames, and zero
        // frames is invalid (RFC 6716 §3.2.5, requirement R5).
        _ => match packet.get(1) {
            Some(&count) if count & 0x3F != 0 => usize::from(count & 0x3F),
            _ => return Err(OpusError::MalformedHeader),
        },
    };
    let samples = per_frame * frames;
    if samples > MAX_PACKET_SAMPLES {
        return Err(OpusError::TooLong { samples });
    }
    Ok(samples)
}

/// A mono Opus encoder producing one packet per 20 ms frame at 48 kHz.
pub struct OpusEncoder {
    inner: Encoder,
    buf: Box<[u8; MAX_PAYLOAD_BYTES]>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder at [`COMPLEXITY`] for audio whose content came from
    /// `content_rate` (e.g. 8 kHz for a G.711 leg).
    pub fn new(content_rate: SampleRate) -> Result<Self, OpusError> {
        Self::with_complexity(content_rate, COMPLEXITY)
    }

    /// As [`OpusEncoder::new`] with an explicit complexity (0..=10); the
    /// bench uses it to compare settings.
    ///
    /// Nothing above `content_rate / 2` exists in the signal, so the coded
    /// bandwidth is capped there and the bitrate set at the top of RFC 7587
    /// §3.1.1's recommended range for that bandwidth (NB 8–12, WB 16–20,
    /// FB 28–40 kbit/s for speech): spending bits or CPU on empty bands
    /// would only cost throughput.
    pub fn with_complexity(content_rate: SampleRate, complexity: u8) -> Result<Self, OpusError> {
        let mut inner = Encoder::new(
            audiopus::SampleRate::Hz48000,
            Channels::Mono,
            Application::Voip,
        )
        .map_err(OpusError::Setup)?;
        let (bandwidth, bitrate) = match content_rate {
            SampleRate::Hz8000 => (Bandwidth::Narrowband, 12_000),
            SampleRate::Hz16000 => (Bandwidth::Wideband, 20_000),
            SampleRate::Hz48000 => (Bandwidth::Fullband, 40_000),
        };
        inner.set_complexity(complexity).map_err(OpusError::Setup)?;
        inner
            .set_max_bandwidth(bandwidth)
            .map_err(OpusError::Setup)?;
        inner
            .set_bitrate(Bitrate::BitsPerSecond(bitrate))
            .map_err(OpusError::Setup)?;
        inner.set_inband_fec(false).map_err(OpusError::Setup)?;
        inner
            .set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, 0)
            .map_err(OpusError::Setup)?;
        Ok(Self {
            inner,
            buf: Box::new([0; MAX_PAYLOAD_BYTES]),
        })
    }

    /// Encodes one 20 ms frame ([`FRAME_SAMPLES`] at 48 kHz), appending the
    /// packet to `out`; returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, OpusError> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(OpusError::FrameLength {
                expected: FRAME_SAMPLES,
                got: pcm.len(),
            });
        }
        let n = self
            .inner
            .encode(pcm, &mut self.buf[..])
            .map_err(OpusError::Encode)?;
        let packet = self
            .buf
            .get(..n)
            .ok_or(OpusError::Encode(audiopus::Error::Opus(
                audiopus::ErrorCode::InternalError,
            )))?;
        out.extend_from_slice(packet);
        Ok(n)
    }
}

/// A mono Opus decoder at 48 kHz with packet loss concealment.
pub struct OpusDecoder {
    inner: Decoder,
    /// Decode scratch sized for the longest packet, so decoding never
    /// allocates and never writes past what a packet may carry.
    buf: Box<[i16; MAX_PACKET_SAMPLES]>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A mono decoder at 48 kHz.
    pub fn new() -> Result<Self, OpusError> {
        let inner = Decoder::new(audiopus::SampleRate::Hz48000, Channels::Mono)
            .map_err(OpusError::Setup)?;
        Ok(Self {
            inner,
            buf: Box::new([0; MAX_PACKET_SAMPLES]),
        })
    }

    /// Decodes one packet of any legal duration (2.5–120 ms), appending
    /// the 48 kHz samples to `out`; returns how many were appended.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        let announced = packet_samples(packet)?;
        // Give libopus exactly the announced length: it then cannot write
        // more, and a body that disagrees with its header is an error.
        let dest = &mut self.buf[..announced];
        let n = self
            .inner
            .decode(Some(packet), dest, false)
            .map_err(OpusError::Decode)?;
        let decoded = self.buf.get(..n).ok_or(OpusError::MalformedHeader)?;
        out.extend_from_slice(decoded);
        Ok(n)
    }

    /// Appends at least `samples` of concealment (48 kHz) to `out`,
    /// rounded up to the 2.5 ms step libopus conceals in; returns how many
    /// were appended. libopus extrapolates from the last packet and fades
    /// to silence over repeated losses (RFC 6716 §4.4). Should libopus fail
    /// (it does not for a valid length) the gap is filled with silence so
    /// the caller's timing holds.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> usize {
        let total = samples.div_ceil(PLC_STEP) * PLC_STEP;
        let mut left = total;
        while left > 0 {
            // One Opus frame at most per call (libopus caps PLC at 120 ms;
            // 20 ms steps match what a real stream would have sent).
            let chunk = left.min(FRAME_SAMPLES);
            let dest = &mut self.buf[..chunk];
            match self.inner.decode(None::<&[u8]>, dest, false) {
                Ok(n) if n == chunk => out.extend_from_slice(&self.buf[..chunk]),
                _ => out.resize(out.len() + chunk, 0),
            }
            left -= chunk;
        }
        total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::ToneGenerator;
    use proptest::prelude::*;

    fn tone_frames(freq: f64, frames: usize) -> Vec<Vec<i16>> {
        let mut g = ToneGenerator::new(freq, 8000, OPUS_RATE);
        (0..frames)
            .map(|_| {
                let mut f = vec![0; FRAME_SAMPLES];
                g.fill(&mut f);
                f
            })
            .collect()
    }

    #[test]
    fn toc_durations_follow_rfc6716_table2() {
        // config 1 (SILK NB 20 ms), code 0: one frame.
        assert_eq!(packet_samples(&[1 << 3]).unwrap(), 960);
        // config 3 (SILK NB 60 ms), code 1: two frames = 120 ms.
        assert_eq!(packet_samples(&[(3 << 3) | 1]).unwrap(), 5760);
        // config 16 (CELT NB 2.5 ms), code 3 with 4 frames.
        assert_eq!(packet_samples(&[(16 << 3) | 3, 4]).unwrap(), 480);
        // config 12 (hybrid SWB 10 ms), code 2.
        assert_eq!(packet_samples(&[(12 << 3) | 2]).unwrap(), 960);
    }

    #[test]
    fn toc_rejects_empty_zero_frames_and_over_120ms() {
        assert_eq!(packet_samples(&[]), Err(OpusError::EmptyPayload));
        assert_eq!(
            packet_samples(&[(1 << 3) | 3]),
            Err(OpusError::MalformedHeader)
        );
        assert_eq!(
            packet_samples(&[(1 << 3) | 3, 0]),
            Err(OpusError::MalformedHeader)
        );
        // 60 ms frames × 3 = 180 ms.
        assert_eq!(
            packet_samples(&[(3 << 3) | 3, 3]),
            Err(OpusError::TooLong { samples: 8640 })
        );
    }

    #[test]
    fn encoder_emits_20ms_packets_the_decoder_reads_back() {
        let mut enc = OpusEncoder::new(SampleRate::Hz48000).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        for frame in tone_frames(1000.0, 10) {
            let mut pkt = Vec::new();
            let n = enc.encode(&frame, &mut pkt).unwrap();
            assert_eq!(n, pkt.len());
            assert!(n > 1 && n <= MAX_PAYLOAD_BYTES);
            assert_eq!(packet_samples(&pkt).unwrap(), FRAME_SAMPLES);
            let mut pcm = Vec::new();
            assert_eq!(dec.decode(&pkt, &mut pcm).unwrap(), FRAME_SAMPLES);
            assert_eq!(pcm.len(), FRAME_SAMPLES);
        }
    }

    #[test]
    fn encoder_refuses_wrong_frame_length() {
        let mut enc = OpusEncoder::new(SampleRate::Hz8000).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            enc.encode(&[0; 480], &mut out),
            Err(OpusError::FrameLength {
                expected: 960,
                got: 480
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn conceal_rounds_up_to_2_5ms_and_appends_exactly_that() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(dec.conceal(960, &mut out), 960);
        assert_eq!(dec.conceal(100, &mut out), 120);
        assert_eq!(dec.conceal(2000, &mut out), 2040);
        assert_eq!(out.len(), 960 + 120 + 2040);
        assert_eq!(dec.conceal(0, &mut out), 0);
    }

    #[test]
    fn garbage_body_with_valid_header_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        // Code 2 (two frames, explicit length) whose length byte points
        // past the end: RFC 6716 §3.2.4 makes this invalid.
        let bad = [(1 << 3) | 2, 250, 1, 2];
        assert!(matches!(
            dec.decode(&bad, &mut out),
            Err(OpusError::Decode(_))
        ));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let mut dec = OpusDecoder::new().unwrap();
            let mut out = Vec::new();
            match dec.decode(&bytes, &mut out) {
                Ok(n) => {
                    prop_assert_eq!(n, out.len());
                    prop_assert!(n <= MAX_PACKET_SAMPLES);
                }
                Err(_) => prop_assert!(out.is_empty()),
            }
        }
    }
}
