//! Per-stream audio decoders and encoders over the codecs we negotiate
//! (PCMU, PCMA, Opus), converting between the codec's own rate and the
//! rate the media bus wants.
//!
//! Each stream owns its coder state and its own [`Resampler`]: the
//! resampler is stateful and frame-continuous, so sharing one between
//! streams (or re-creating it per frame) would splice unrelated history
//! into the signal and click at every frame boundary.

use super::opus::{OpusDecoder, OpusEncoder, OpusError, MAX_PACKET_SAMPLES};
use super::{alaw, ulaw, CodecError, Resampler, SampleRate};
use crate::media::sdp::Codec;

/// G.711 is one byte per 8 kHz sample; refuse payloads longer than the
/// 120 ms an Opus packet may carry, so one call's output stays bounded
/// whatever a peer sends.
const MAX_G711_PAYLOAD: usize = 960;
/// G.711 concealment repeats the last 20 ms at most this many times
/// (fading) before going silent.
const G711_CONCEAL_FRAMES: usize = 3;
/// Samples per 20 ms at 8 kHz: one G.711 frame.
const G711_FRAME: usize = 160;

/// Why a stream could not be set up or a frame converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioCodecError {
    /// The requested PCM rate is not one we resample to (8/16/48 kHz).
    #[error(transparent)]
    Rate(#[from] CodecError),
    /// An RTP payload with no audio in it.
    #[error("empty audio payload")]
    EmptyPayload,
    /// A G.711 payload longer than the 120 ms we accept per packet.
    #[error("G.711 payload of {bytes} bytes exceeds {max}")]
    PayloadTooLong {
        /// Payload length.
        bytes: usize,
        /// Longest accepted.
        max: usize,
    },
    /// `encode` takes exactly one 20 ms frame at the stream's rate.
    #[error("encoder needs one 20 ms frame of {expected} samples, got {got}")]
    FrameLength {
        /// Samples in 20 ms at the input rate.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// The Opus layer failed (bad packet, or libopus setup).
    #[error(transparent)]
    Opus(#[from] OpusError),
}

/// Which G.711 law a stream uses.
#[derive(Debug, Clone, Copy)]
enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw::decode(code),
            Law::Alaw => alaw::decode(code),
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw::encode(sample),
            Law::Alaw => alaw::encode(sample),
        }
    }
}

fn codec_rate(codec: Codec) -> SampleRate {
    match codec {
        Codec::Pcmu | Codec::Pcma => SampleRate::Hz8000,
        Codec::Opus => SampleRate::Hz48000,
    }
}

#[derive(Debug)]
enum DecoderKind {
    G711 {
        law: Law,
        /// Last received 20 ms (8 kHz), the material concealment repeats.
        last: Vec<i16>,
        /// 8 kHz samples concealed since the last good packet: drives the
        /// fade so a long outage ends in silence, not an endless buzz.
        concealed: usize,
    },
    Opus(Box<OpusDecoder>),
}

/// Decodes one received RTP stream to mono PCM at a chosen rate.
#[derive(Debug)]
pub struct AudioDecoder {
    kind: DecoderKind,
    resampler: Resampler,
    /// PCM at the codec's rate, reused between calls.
    scratch: Vec<i16>,
}

impl AudioDecoder {
    /// A decoder for `codec` producing PCM at `out_rate` (8000, 16000 or
    /// 48000 Hz).
    pub fn new(codec: Codec, out_rate: u32) -> Result<Self, AudioCodecError> {
        let out = SampleRate::try_from(out_rate)?;
        let kind = match codec {
            Codec::Pcmu => DecoderKind::G711 {
                law: Law::Ulaw,
                last: Vec::with_capacity(G711_FRAME),
                concealed: 0,
            },
            Codec::Pcma => DecoderKind::G711 {
                law: Law::Alaw,
                last: Vec::with_capacity(G711_FRAME),
                concealed: 0,
            },
            Codec::Opus => DecoderKind::Opus(Box::new(OpusDecoder::new()?)),
        };
        Ok(Self {
            kind,
            resampler: Resampler::new(codec_rate(codec), out),
            scratch: Vec::with_capacity(MAX_PACKET_SAMPLES),
        })
    }

    /// Decodes one RTP payload, appending PCM at the output rate. Opus
    /// payloads may carry any legal duration (2.5–120 ms, taken from the
    /// packet's TOC byte, RFC 6716 §3.1). On error nothing is appended.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), AudioCodecError> {
        self.scratch.clear();
        match &mut self.kind {
            DecoderKind::G711 {
                law,
                last,
                concealed,
            } => {
                if payload.is_empty() {
                    return Err(AudioCodecError::EmptyPayload);
                }
                if payload.len() > MAX_G711_PAYLOAD {
                    return Err(AudioCodecError::PayloadTooLong {
                        bytes: payload.len(),
                        max: MAX_G711_PAYLOAD,
                    });
                }
                let law = *law;
                self.scratch
                    .extend(payload.iter().map(|&code| law.decode(code)));
                let tail = self.scratch.len().saturating_sub(G711_FRAME);
                last.clear();
                last.extend_from_slice(&self.scratch[tail..]);
                *concealed = 0;
            }
            DecoderKind::Opus(dec) => {
                dec.decode(payload, &mut self.scratch)?;
            }
        }
        self.resampler.process(&self.scratch, out);
        Ok(())
    }

    /// Packet loss concealment: appends exactly `samples` (at the output
    /// rate).
    ///
    /// Opus uses libopus's own concealment (RFC 6716 §4.4), which
    /// extrapolates the last packet's spectrum and fades.
    ///
    /// G.711 has none built in, so we repeat the last received 20 ms,
    /// halving its amplitude every 20 ms (−6 dB steps), and go silent
    /// after 60 ms. Why not plain zeros: one lost packet in a voice or a
    /// tone is far less audible continued than cut out (the idea of ITU-T
    /// G.711 Appendix I, without its pitch search); why the fade: a frame
    /// repeated at full level for long turns into a 50 Hz buzz, and a long
    /// outage should sound like one.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if samples == 0 {
            return;
        }
        let from = self.resampler.from_rate().hz() as usize;
        let to = self.resampler.to_rate().hz() as usize;
        // Samples needed at the codec rate; rounding up and trimming after
        // resampling keeps the promise of exactly `samples`.
        let needed = (samples * from).div_ceil(to);
        self.scratch.clear();
        match &mut self.kind {
            DecoderKind::G711 {
                last, concealed, ..
            } => {
                for i in 0..needed {
                    let k = *concealed + i;
                    let step = k / G711_FRAME;
                    let sample = match last.get(k % last.len().max(1)) {
                        Some(&s) if step < G711_CONCEAL_FRAMES => s >> (step + 1),
                        _ => 0,
                    };
                    self.scratch.push(sample);
                }
                *concealed = concealed.saturating_add(needed);
            }
            DecoderKind::Opus(dec) => {
                dec.conceal(needed, &mut self.scratch);
                // libopus conceals in 2.5 ms steps; keep the resampler's
                // input a whole number of output periods so later frames
                // stay aligned.
                self.scratch.truncate(needed);
            }
        }
        let start = out.len();
        self.resampler.process(&self.scratch, out);
        out.resize(start + samples, 0);
    }
}

#[derive(Debug)]
enum EncoderKind {
    G711(Law),
    Opus(Box<OpusEncoder>),
}

/// Encodes one sent RTP stream from mono PCM at a chosen rate.
#[derive(Debug)]
pub struct AudioEncoder {
    kind: EncoderKind,
    resampler: Resampler,
    frame_ticks: u32,
    /// One frame at the codec's rate, reused between calls.
    scratch: Vec<i16>,
}

impl AudioEncoder {
    /// An encoder for `codec` fed PCM at `in_rate` (8000, 16000 or 48000).
    pub fn new(codec: Codec, in_rate: u32) -> Result<Self, AudioCodecError> {
        let input = SampleRate::try_from(in_rate)?;
        let kind = match codec {
            Codec::Pcmu => EncoderKind::G711(Law::Ulaw),
            Codec::Pcma => EncoderKind::G711(Law::Alaw),
            Codec::Opus => EncoderKind::Opus(Box::new(OpusEncoder::new(input)?)),
        };
        let rate = codec_rate(codec);
        Ok(Self {
            kind,
            resampler: Resampler::new(input, rate),
            // RTP clock = codec rate for all three (RFC 3551 §4.5.14,
            // RFC 7587 §4.1), so 20 ms is one frame at that rate.
            frame_ticks: rate.hz() / 50,
            scratch: Vec::with_capacity(rate.samples_per_20ms()),
        })
    }

    /// Encodes exactly one 20 ms frame given at the input rate (160
    /// samples at 8000), appending the RTP payload to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), AudioCodecError> {
        let expected = self.resampler.from_rate().samples_per_20ms();
        if pcm.len() != expected {
            return Err(AudioCodecError::FrameLength {
                expected,
                got: pcm.len(),
            });
        }
        self.scratch.clear();
        self.resampler.process(pcm, &mut self.scratch);
        match &mut self.kind {
            EncoderKind::G711(law) => {
                let law = *law;
                out.extend(self.scratch.iter().map(|&s| law.encode(s)));
            }
            EncoderKind::Opus(enc) => {
                enc.encode(&self.scratch, out)?;
            }
        }
        Ok(())
    }

    /// RTP timestamp units per 20 ms frame: 160 for G.711, 960 for Opus.
    pub fn frame_ticks(&self) -> u32 {
        self.frame_ticks
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::goertzel::{mean_square, power};
    use crate::media::codec::{ToneDetector, ToneGenerator};

    const CODECS: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::Opus];
    const RATES: [u32; 3] = [8000, 16000, 48000];

    /// Sends `frames` 20 ms frames of a `freq` tone at `rate` through an
    /// encoder and decoder for `codec`, returning the decoded PCM at `rate`.
    fn round_trip(codec: Codec, rate: u32, freq: f64, frames: usize) -> Vec<i16> {
        let mut enc = AudioEncoder::new(codec, rate).unwrap();
        let mut dec = AudioDecoder::new(codec, rate).unwrap();
        let mut gen = ToneGenerator::new(freq, 10_000, rate);
        let mut frame = vec![0; rate as usize / 50];
        let mut pcm = Vec::new();
        for _ in 0..frames {
            gen.fill(&mut frame);
            let mut payload = Vec::new();
            enc.encode(&frame, &mut payload).unwrap();
            dec.decode(&payload, &mut pcm).unwrap();
        }
        pcm
    }

    /// The last 200 ms (past codec and filter start-up) carry the 1 kHz
    /// tone, and 3 kHz (far from it, still in the narrowband) is absent.
    fn assert_tone_survives(pcm: &[i16], rate: u32) {
        let block = &pcm[pcm.len() - rate as usize / 5..];
        let det = ToneDetector::new(rate, &[1000.0, 3000.0]);
        let hit = det.detect(block).expect("tone detected");
        assert_eq!(hit.freq, 1000.0);
        assert!(hit.purity > 0.8, "purity {}", hit.purity);
        let far = power(block, rate, 3000.0) / mean_square(block);
        assert!(far < 0.01, "3 kHz share {far}");
    }

    #[test]
    fn pcmu_round_trip_at_8k_keeps_a_1khz_tone() {
        let pcm = round_trip(Codec::Pcmu, 8000, 1000.0, 25);
        assert_eq!(pcm.len(), 25 * 160);
        assert_tone_survives(&pcm, 8000);
    }

    #[test]
    fn opus_round_trip_at_8k_keeps_a_1khz_tone() {
        let pcm = round_trip(Codec::Opus, 8000, 1000.0, 25);
        assert_eq!(pcm.len(), 25 * 160);
        assert_tone_survives(&pcm, 8000);
    }

    #[test]
    fn every_codec_at_every_rate_keeps_the_tone_and_frame_size() {
        for codec in CODECS {
            for rate in RATES {
                let pcm = round_trip(codec, rate, 1000.0, 25);
                assert_eq!(pcm.len(), 25 * rate as usize / 50, "{codec:?} {rate}");
                assert_tone_survives(&pcm, rate);
            }
        }
    }

    #[test]
    fn pcmu_to_opus_transcode_keeps_the_tone() {
        // The gateway's real path: PCMU in, 8 kHz bus, Opus out, and back.
        let mut g711_enc = AudioEncoder::new(Codec::Pcmu, 8000).unwrap();
        let mut g711_dec = AudioDecoder::new(Codec::Pcmu, 8000).unwrap();
        let mut opus_enc = AudioEncoder::new(Codec::Opus, 8000).unwrap();
        let mut opus_dec = AudioDecoder::new(Codec::Opus, 8000).unwrap();
        let mut gen = ToneGenerator::new(1000.0, 10_000, 8000);
        let mut out = Vec::new();
        for _ in 0..25 {
            let mut frame = [0i16; 160];
            gen.fill(&mut frame);
            let (mut p1, mut bus, mut p2) = (Vec::new(), Vec::new(), Vec::new());
            g711_enc.encode(&frame, &mut p1).unwrap();
            g711_dec.decode(&p1, &mut bus).unwrap();
            opus_enc.encode(&bus, &mut p2).unwrap();
            opus_dec.decode(&p2, &mut out).unwrap();
        }
        assert_tone_survives(&out, 8000);
    }

    #[test]
    fn frame_ticks_follow_the_rtp_clock() {
        for rate in RATES {
            assert_eq!(
                AudioEncoder::new(Codec::Pcmu, rate).unwrap().frame_ticks(),
                160
            );
            assert_eq!(
                AudioEncoder::new(Codec::Pcma, rate).unwrap().frame_ticks(),
                160
            );
            assert_eq!(
                AudioEncoder::new(Codec::Opus, rate).unwrap().frame_ticks(),
                960
            );
        }
    }

    #[test]
    fn conceal_appends_exactly_what_is_asked() {
        for codec in CODECS {
            for rate in RATES {
                let mut dec = AudioDecoder::new(codec, rate).unwrap();
                let mut out = Vec::new();
                // Before any packet, after one, odd lengths, long gaps.
                for n in [160, 7, 0, 161, 2000, 320] {
                    let before = out.len();
                    dec.conceal(n, &mut out);
                    assert_eq!(out.len() - before, n, "{codec:?} {rate} {n}");
                }
                let mut enc = AudioEncoder::new(codec, rate).unwrap();
                let mut payload = Vec::new();
                enc.encode(&vec![0; rate as usize / 50], &mut payload)
                    .unwrap();
                let before = out.len();
                dec.decode(&payload, &mut out).unwrap();
                assert_eq!(out.len() - before, rate as usize / 50);
                let before = out.len();
                dec.conceal(480, &mut out);
                assert_eq!(out.len() - before, 480);
            }
        }
    }

    #[test]
    fn g711_conceal_fades_the_last_frame_then_goes_silent() {
        let mut dec = AudioDecoder::new(Codec::Pcmu, 8000).unwrap();
        let mut gen = ToneGenerator::new(1000.0, 10_000, 8000);
        let mut frame = [0i16; 160];
        gen.fill(&mut frame);
        let payload: Vec<u8> = frame.iter().map(|&s| ulaw::encode(s)).collect();
        let mut pcm = Vec::new();
        dec.decode(&payload, &mut pcm).unwrap();
        let mut hidden = Vec::new();
        dec.conceal(160 * 4, &mut hidden);
        let level: Vec<f64> = hidden.chunks(160).map(mean_square).collect();
        let orig = mean_square(&pcm);
        // −6 dB in amplitude per frame is a quarter in power.
        assert!((level[0] / orig - 0.25).abs() < 0.02, "{level:?}");
        assert!((level[1] / orig - 0.0625).abs() < 0.01, "{level:?}");
        assert!(level[2] > 0.0 && level[2] < level[1]);
        assert_eq!(level[3], 0.0);
        // The repeat is the tone, so a lost packet still sounds like it.
        assert_eq!(
            ToneDetector::new(8000, &[1000.0, 3000.0])
                .detect(&hidden[..160])
                .map(|d| d.freq),
            Some(1000.0)
        );
        // A good packet restarts the fade.
        dec.decode(&payload, &mut pcm).unwrap();
        let mut again = Vec::new();
        dec.conceal(160, &mut again);
        assert!((mean_square(&again) / orig - 0.25).abs() < 0.02);
    }

    #[test]
    fn bad_payloads_are_errors_and_append_nothing() {
        for codec in CODECS {
            let mut dec = AudioDecoder::new(codec, 8000).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                dec.decode(&[], &mut out).unwrap_err(),
                match codec {
                    Codec::Opus => AudioCodecError::Opus(OpusError::EmptyPayload),
                    _ => AudioCodecError::EmptyPayload,
                }
            );
            assert!(out.is_empty());
        }
        let mut g711 = AudioDecoder::new(Codec::Pcma, 16000).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            g711.decode(&[0xD5; 961], &mut out),
            Err(AudioCodecError::PayloadTooLong {
                bytes: 961,
                max: 960
            })
        );
        let mut opus = AudioDecoder::new(Codec::Opus, 8000).unwrap();
        // Code 3 with zero frames (RFC 6716 §3.2.5 R5).
        assert_eq!(
            opus.decode(&[0x0B, 0x00], &mut out),
            Err(AudioCodecError::Opus(OpusError::MalformedHeader))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn bad_rates_and_frame_lengths_are_refused() {
        assert_eq!(
            AudioDecoder::new(Codec::Opus, 44_100).unwrap_err(),
            AudioCodecError::Rate(CodecError::UnsupportedRate(44_100))
        );
        assert_eq!(
            AudioEncoder::new(Codec::Pcmu, 11_025).unwrap_err(),
            AudioCodecError::Rate(CodecError::UnsupportedRate(11_025))
        );
        let mut enc = AudioEncoder::new(Codec::Opus, 16000).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            enc.encode(&[0; 160], &mut out),
            Err(AudioCodecError::FrameLength {
                expected: 320,
                got: 160
            })
        );
        assert!(out.is_empty());
    }
}
