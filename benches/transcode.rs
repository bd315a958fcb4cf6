//! One transcoded call-second: 50 frames each way between a PCMU leg and an
//! Opus leg over the 8 kHz media bus.
//!
//! - PCMU payload -> decode to 8 kHz -> encode Opus
//! - Opus payload -> decode to 8 kHz -> encode PCMU
//!
//! Calls per core = 1 s / (time per call-second). The `complexity` group
//! runs the same work with the Opus encoder at complexity 5 and 10, and
//! prints a waveform SNR for each so the throughput/quality trade behind
//! `opus::COMPLEXITY` can be re-measured.

// Setup only: coders built from constants cannot fail here, and a bench
// that cannot set up should stop loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::media::codec::opus::{OpusEncoder, FRAME_SAMPLES};
use switchboard::media::codec::{
    ulaw, AudioDecoder, AudioEncoder, OpusDecoder, Resampler, SampleRate, ToneGenerator,
};
use switchboard::media::sdp::Codec;

const FRAMES: usize = 50;

/// Speech-like test signal at 8 kHz: a few formant-ish tones with a slow
/// amplitude envelope plus low noise, so the encoders do not get the easy
/// case of a steady sine.
fn signal(frames: usize) -> Vec<Vec<i16>> {
    let mut tones: Vec<ToneGenerator> = [220.0, 700.0, 1200.0, 2500.0]
        .iter()
        .map(|&f| ToneGenerator::new(f, 2500, 8000))
        .collect();
    let mut lcg: u32 = 12345;
    (0..frames)
        .map(|i| {
            let mut frame = vec![0i16; 160];
            for t in &mut tones {
                t.mix_into(&mut frame);
            }
            let env = 0.4 + 0.6 * ((i as f64) * 0.3).sin().abs();
            for s in &mut frame {
                lcg = lcg.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = ((lcg >> 16) as i16 as i32) / 64;
                *s = ((f64::from(*s) * env) as i32 + noise).clamp(-32768, 32767) as i16;
            }
            frame
        })
        .collect()
}

fn pcmu_payloads(sig: &[Vec<i16>]) -> Vec<Vec<u8>> {
    sig.iter()
        .map(|f| f.iter().map(|&s| ulaw::encode(s)).collect())
        .collect()
}

fn opus_payloads(sig: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let mut enc = AudioEncoder::new(Codec::Opus, 8000).expect("opus encoder");
    sig.iter()
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).expect("encode");
            p
        })
        .collect()
}

fn bench_call_second(c: &mut Criterion) {
    let sig = signal(FRAMES);
    let pcmu_in = pcmu_payloads(&sig);
    let opus_in = opus_payloads(&sig);
    let mut pcmu_dec = AudioDecoder::new(Codec::Pcmu, 8000).expect("decoder");
    let mut opus_enc = AudioEncoder::new(Codec::Opus, 8000).expect("encoder");
    let mut opus_dec = AudioDecoder::new(Codec::Opus, 8000).expect("decoder");
    let mut pcmu_enc = AudioEncoder::new(Codec::Pcmu, 8000).expect("encoder");
    let (mut bus, mut payload) = (Vec::with_capacity(960), Vec::with_capacity(1500));
    c.bench_function("transcode call-second pcmu<->opus", |b| {
        b.iter(|| {
            for (pcmu, opus) in pcmu_in.iter().zip(&opus_in) {
                bus.clear();
                payload.clear();
                let _ = pcmu_dec.decode(black_box(pcmu), &mut bus);
                let _ = opus_enc.encode(&bus, &mut payload);
                black_box(&payload);
                bus.clear();
                payload.clear();
                let _ = opus_dec.decode(black_box(opus), &mut bus);
                let _ = pcmu_enc.encode(&bus, &mut payload);
                black_box(&payload);
            }
        })
    });
}

/// SNR (dB) of `decoded` against `orig`, at the lag (0..400 samples)
/// that best aligns them, to absorb codec and filter delay.
fn snr_db(orig: &[i16], decoded: &[i16]) -> f64 {
    let n = orig.len().saturating_sub(400);
    let mut best = f64::MIN;
    for lag in 0..400 {
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for i in 0..n {
            let o = f64::from(orig[i]);
            let d = f64::from(decoded[i + lag]);
            sig += o * o;
            err += (o - d) * (o - d);
        }
        best = best.max(10.0 * (sig / err.max(1.0)).log10());
    }
    best
}

/// PCMU decode -> 8 kHz -> Opus at `complexity`, the same work as
/// `AudioEncoder` but with the complexity open.
struct OpusSend {
    up: Resampler,
    enc: OpusEncoder,
    scratch: Vec<i16>,
}

impl OpusSend {
    fn new(complexity: u8) -> Self {
        Self {
            up: Resampler::new(SampleRate::Hz8000, SampleRate::Hz48000),
            enc: OpusEncoder::with_complexity(SampleRate::Hz8000, complexity).expect("encoder"),
            scratch: Vec::with_capacity(FRAME_SAMPLES),
        }
    }

    fn send(&mut self, pcm8k: &[i16], out: &mut Vec<u8>) {
        self.scratch.clear();
        self.up.process(pcm8k, &mut self.scratch);
        let _ = self.enc.encode(&self.scratch, out);
    }
}

fn bench_complexity(c: &mut Criterion) {
    let sig = signal(FRAMES * 2);
    let flat: Vec<i16> = sig.concat();
    let pcmu_in = pcmu_payloads(&sig[..FRAMES]);
    let opus_in = opus_payloads(&sig[..FRAMES]);
    let mut group = c.benchmark_group("transcode call-second by opus complexity");
    for complexity in [5u8, 10] {
        // Quality: 2 s of the test signal through Opus and back to 8 kHz.
        let mut tx = OpusSend::new(complexity);
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut down = Resampler::new(SampleRate::Hz48000, SampleRate::Hz8000);
        let mut decoded = Vec::new();
        for f in &sig {
            let (mut p, mut wide) = (Vec::new(), Vec::new());
            tx.send(f, &mut p);
            let _ = dec.decode(&p, &mut wide);
            down.process(&wide, &mut decoded);
        }
        eprintln!(
            "opus complexity {complexity}: SNR {:.1} dB over 2 s",
            snr_db(&flat, &decoded)
        );

        let mut pcmu_dec = AudioDecoder::new(Codec::Pcmu, 8000).expect("decoder");
        let mut opus_dec = AudioDecoder::new(Codec::Opus, 8000).expect("decoder");
        let mut pcmu_enc = AudioEncoder::new(Codec::Pcmu, 8000).expect("encoder");
        let (mut bus, mut payload) = (Vec::with_capacity(960), Vec::with_capacity(1500));
        group.bench_function(format!("complexity {complexity}"), |b| {
            b.iter(|| {
                for (pcmu, opus) in pcmu_in.iter().zip(&opus_in) {
                    bus.clear();
                    payload.clear();
                    let _ = pcmu_dec.decode(black_box(pcmu), &mut bus);
                    tx.send(&bus, &mut payload);
                    black_box(&payload);
                    bus.clear();
                    payload.clear();
                    let _ = opus_dec.decode(black_box(opus), &mut bus);
                    let _ = pcmu_enc.encode(&bus, &mut payload);
                    black_box(&payload);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_call_second, bench_complexity);
criterion_main!(benches);
