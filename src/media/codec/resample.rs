//! Streaming polyphase FIR resampler between the rates our legs use
//! (8 kHz narrowband, 16 kHz wideband, 48 kHz Opus), all integer ratios.
//!
//! One windowed-sinc low-pass, designed at the higher rate, serves both
//! directions: upsampling by L evaluates it as L polyphase branches (never
//! multiplying the inserted zeros), downsampling by M evaluates it only at
//! every M-th input. The filter's history survives between calls, so a
//! call fed 20 ms frames produces exactly the samples a single call over
//! the whole signal would — no clicks at frame boundaries.

use super::CodecError;

/// The sample rates we transcode between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleRate {
    /// 8 kHz: G.711, G.729, narrowband telephony.
    Hz8000,
    /// 16 kHz: G.722 (audio rate), wideband.
    Hz16000,
    /// 48 kHz: Opus, WebRTC.
    Hz48000,
}

impl SampleRate {
    /// The rate in Hz.
    pub const fn hz(self) -> u32 {
        match self {
            Self::Hz8000 => 8000,
            Self::Hz16000 => 16000,
            Self::Hz48000 => 48000,
        }
    }

    /// Samples in one 20 ms frame (the packetisation time we use): 160,
    /// 320 or 960.
    pub const fn samples_per_20ms(self) -> usize {
        (self.hz() / 50) as usize
    }

    /// Multiples of 8 kHz, which makes every ratio between two rates an
    /// integer.
    const fn units(self) -> usize {
        (self.hz() / 8000) as usize
    }
}

impl TryFrom<u32> for SampleRate {
    type Error = CodecError;

    fn try_from(hz: u32) -> Result<Self, Self::Error> {
        match hz {
            8000 => Ok(Self::Hz8000),
            16000 => Ok(Self::Hz16000),
            48000 => Ok(Self::Hz48000),
            other => Err(CodecError::UnsupportedRate(other)),
        }
    }
}

/// Taps per polyphase branch. 48 taps with a Kaiser window (β = 8, about
/// 80 dB stop-band) give a transition band of about 0.1 × the lower rate,
/// so at 8 kHz the pass band is flat to ~3.2 kHz and the stop band starts
/// at the 4 kHz Nyquist.
const TAPS_PER_PHASE: usize = 48;
const KAISER_BETA: f64 = 8.0;
/// Cut-off (−6 dB point) as a fraction of the lower rate's Nyquist.
const CUTOFF: f64 = 0.9;

/// Converts a mono stream of `i16` from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: SampleRate,
    to: SampleRate,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Passthrough,
    Up(Upsampler),
    Down(Downsampler),
}

impl Resampler {
    /// A resampler from `from` to `to`. Designing the filter allocates;
    /// processing afterwards does not (beyond growing a `Vec` output).
    pub fn new(from: SampleRate, to: SampleRate) -> Self {
        let (f, t) = (from.units(), to.units());
        let kind = if f == t {
            Kind::Passthrough
        } else if t > f {
            Kind::Up(Upsampler::new(t / f))
        } else {
            Kind::Down(Downsampler::new(f / t))
        };
        Self { from, to, kind }
    }

    /// Input rate.
    pub fn from_rate(&self) -> SampleRate {
        self.from
    }

    /// Output rate.
    pub fn to_rate(&self) -> SampleRate {
        self.to
    }

    /// How many samples the next `process` call on `input_len` samples
    /// yields. Downsampling carries a partial phase over, so an input that
    /// is not a multiple of the ratio yields one more or one fewer output
    /// depending on earlier calls; 20 ms frames always yield a 20 ms frame.
    pub fn output_len(&self, input_len: usize) -> usize {
        match &self.kind {
            Kind::Passthrough => input_len,
            Kind::Up(u) => input_len * u.factor,
            Kind::Down(d) => (d.pending + input_len) / d.factor,
        }
    }

    /// Delay the filter adds, in output samples (rounded down).
    pub fn delay(&self) -> usize {
        match &self.kind {
            Kind::Passthrough => 0,
            Kind::Up(u) => (u.factor * TAPS_PER_PHASE - 1) / 2,
            Kind::Down(d) => (d.taps.len() - 1) / 2 / d.factor,
        }
    }

    /// Resamples `input`, appending the result to `out`. Does not allocate
    /// when `out` already has room for [`Resampler::output_len`] samples.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(self.output_len(input.len()));
        match &mut self.kind {
            Kind::Passthrough => out.extend_from_slice(input),
            Kind::Up(u) => u.run(input, |s| out.push(s)),
            Kind::Down(d) => d.run(input, |s| out.push(s)),
        }
    }

    /// Resamples `input` into the front of `out`, returning how many samples
    /// were written. Nothing is consumed if `out` is too small.
    pub fn process_into(&mut self, input: &[i16], out: &mut [i16]) -> Result<usize, CodecError> {
        let needed = self.output_len(input.len());
        let Some(dest) = out.get_mut(..needed) else {
            return Err(CodecError::OutputTooSmall {
                needed,
                available: out.len(),
            });
        };
        let mut slots = dest.iter_mut();
        let mut put = |s| {
            if let Some(slot) = slots.next() {
                *slot = s;
            }
        };
        match &mut self.kind {
            Kind::Passthrough => input.iter().for_each(|&s| put(s)),
            Kind::Up(u) => u.run(input, put),
            Kind::Down(d) => d.run(input, put),
        }
        Ok(needed)
    }

    /// Forgets the history (e.g. after a hold or an SSRC change), as if
    /// the resampler had just been created.
    pub fn reset(&mut self) {
        match &mut self.kind {
            Kind::Passthrough => {}
            Kind::Up(u) => u.history.reset(),
            Kind::Down(d) => {
                d.history.reset();
                d.pending = 0;
            }
        }
    }
}

/// Last `len` samples, stored twice so the window is always one contiguous
/// slice (oldest first) without shifting on every push.
#[derive(Debug, Clone)]
struct History {
    buf: Vec<f32>,
    len: usize,
    pos: usize,
}

impl History {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; 2 * len],
            len,
            pos: 0,
        }
    }

    #[inline]
    fn push(&mut self, x: f32) {
        self.buf[self.pos] = x;
        self.buf[self.pos + self.len] = x;
        self.pos += 1;
        if self.pos == self.len {
            self.pos = 0;
        }
    }

    #[inline]
    fn window(&self) -> &[f32] {
        &self.buf[self.pos..self.pos + self.len]
    }

    fn reset(&mut self) {
        self.buf.iter_mut().for_each(|x| *x = 0.0);
        self.pos = 0;
    }
}

#[derive(Debug, Clone)]
struct Upsampler {
    factor: usize,
    /// `factor` branches of TAPS_PER_PHASE taps each, ordered to match the
    /// history window (oldest first) and scaled by `factor` to make up for
    /// the energy of the zeros a textbook upsampler would insert.
    branches: Vec<f32>,
    history: History,
}

impl Upsampler {
    fn new(factor: usize) -> Self {
        let h = lowpass(factor);
        let k = TAPS_PER_PHASE;
        let gain = factor as f64;
        let mut branches = Vec::with_capacity(factor * k);
        // Output y[nL + p] = Σ_k h[kL + p] · x[n − k]; window[j] = x[n − (K−1−j)].
        for p in 0..factor {
            for j in 0..k {
                branches.push((h[(k - 1 - j) * factor + p] * gain) as f32);
            }
        }
        Self {
            factor,
            branches,
            history: History::new(k),
        }
    }

    fn run(&mut self, input: &[i16], mut emit: impl FnMut(i16)) {
        for &x in input {
            self.history.push(f32::from(x));
            let window = self.history.window();
            for branch in self.branches.chunks_exact(TAPS_PER_PHASE) {
                emit(to_i16(dot(window, branch)));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Downsampler {
    factor: usize,
    /// The low-pass, reversed to match the history window (oldest first).
    taps: Vec<f32>,
    history: History,
    /// Inputs received since the last output (0..factor).
    pending: usize,
}

impl Downsampler {
    fn new(factor: usize) -> Self {
        let taps: Vec<f32> = lowpass(factor).iter().rev().map(|&t| t as f32).collect();
        let history = History::new(taps.len());
        Self {
            factor,
            taps,
            history,
            pending: 0,
        }
    }

    fn run(&mut self, input: &[i16], mut emit: impl FnMut(i16)) {
        for &x in input {
            self.history.push(f32::from(x));
            self.pending += 1;
            if self.pending == self.factor {
                self.pending = 0;
                emit(to_i16(dot(self.history.window(), &self.taps)));
            }
        }
    }
}

/// Kaiser-windowed sinc low-pass of `ratio × TAPS_PER_PHASE` taps at the
/// higher rate, cutting at CUTOFF × the lower rate's Nyquist, unity DC gain.
fn lowpass(ratio: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    let n = ratio * TAPS_PER_PHASE;
    // Cut-off in cycles per (high-rate) sample.
    let fc = CUTOFF * 0.5 / ratio as f64;
    let centre = (n - 1) as f64 / 2.0;
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut h: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 - centre;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            };
            let r = t / centre;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|t| *t /= sum);
    h
}

/// Modified Bessel function of the first kind, order 0 (power series; the
/// terms fall off fast for the β we use).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= half / k as f64;
        let t = term * term;
        sum += t;
        if t < sum * 1e-16 {
            break;
        }
    }
    sum
}

/// Dot product with independent accumulators so the compiler can keep it
/// in SIMD registers (a single f32 accumulator forces sequential adds).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn to_i16(v: f32) -> i16 {
    // `as` saturates, which is what overshoot near full scale should do.
    v.round() as i16
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::goertzel::{mean_square, power};
    use crate::media::codec::{ToneDetector, ToneGenerator};
    use SampleRate::*;

    const ALL: [SampleRate; 3] = [Hz8000, Hz16000, Hz48000];

    fn tone(freq: f64, amplitude: i16, rate: SampleRate, seconds: f64) -> Vec<i16> {
        let mut out = vec![0i16; (f64::from(rate.hz()) * seconds) as usize];
        ToneGenerator::new(freq, amplitude, rate.hz()).fill(&mut out);
        out
    }

    fn in_frames(r: &mut Resampler, input: &[i16], frame: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for chunk in input.chunks(frame) {
            r.process(chunk, &mut out);
        }
        out
    }

    fn db(ratio: f64) -> f64 {
        10.0 * ratio.log10()
    }

    /// The settled part of an output: skips the filter's start-up
    /// transient and keeps 200 ms (a whole number of 1 kHz cycles at every
    /// rate).
    fn settled(out: &[i16], rate: SampleRate) -> &[i16] {
        let skip = rate.samples_per_20ms() * 3;
        &out[skip..skip + rate.samples_per_20ms() * 10]
    }

    #[test]
    fn rates_parse_and_frame_sizes_match() {
        assert_eq!(SampleRate::try_from(8000), Ok(Hz8000));
        assert_eq!(SampleRate::try_from(16000), Ok(Hz16000));
        assert_eq!(SampleRate::try_from(48000), Ok(Hz48000));
        assert_eq!(
            SampleRate::try_from(44100),
            Err(CodecError::UnsupportedRate(44100))
        );
        let sizes: Vec<usize> = ALL.iter().map(|r| r.samples_per_20ms()).collect();
        assert_eq!(sizes, [160, 320, 960]);
        for from in ALL {
            for to in ALL {
                let mut r = Resampler::new(from, to);
                assert_eq!((r.from_rate(), r.to_rate()), (from, to));
                let mut out = Vec::new();
                r.process(&vec![0; from.samples_per_20ms()], &mut out);
                assert_eq!(out.len(), to.samples_per_20ms(), "{from:?}->{to:?}");
            }
        }
    }

    #[test]
    fn sine_keeps_frequency_and_amplitude() {
        for from in ALL {
            for to in ALL {
                let input = tone(1000.0, 10000, from, 0.5);
                let mut r = Resampler::new(from, to);
                let out = in_frames(&mut r, &input, from.samples_per_20ms());
                let block = settled(&out, to);
                let p = power(block, to.hz(), 1000.0);
                let gain_db = db(p / 5e7);
                assert!(
                    gain_db.abs() < 1.0,
                    "{from:?}->{to:?}: gain {gain_db:.2} dB"
                );
                // Everything else (images, aliases, rounding) is 40 dB down.
                let purity = p / mean_square(block);
                assert!(purity > 0.9999, "{from:?}->{to:?}: purity {purity}");
                // And a detector listening for neighbouring tones hears 1 kHz.
                let heard = ToneDetector::new(to.hz(), &[900.0, 1000.0, 1100.0]).detect(block);
                assert_eq!(heard.map(|d| d.freq), Some(1000.0), "{from:?}->{to:?}");
            }
        }
    }

    #[test]
    fn telephony_band_is_flat_within_1_db() {
        // 300–3400 Hz is what a narrowband leg carries (ITU-T G.712); the
        // cut-off at 3.6 kHz keeps its top edge to about −0.8 dB.
        for (from, to) in [(Hz8000, Hz48000), (Hz48000, Hz8000), (Hz8000, Hz16000)] {
            for freq in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
                let input = tone(freq, 10000, from, 0.5);
                let out = in_frames(
                    &mut Resampler::new(from, to),
                    &input,
                    from.samples_per_20ms(),
                );
                let gain_db = db(power(settled(&out, to), to.hz(), freq) / 5e7);
                assert!(
                    gain_db.abs() < 1.0,
                    "{from:?}->{to:?} {freq} Hz: {gain_db:.2} dB"
                );
            }
        }
    }

    #[test]
    fn downsampling_rejects_energy_above_the_new_nyquist() {
        for (from, to, freq) in [
            (Hz48000, Hz8000, 6000.0),
            (Hz16000, Hz8000, 6000.0),
            (Hz48000, Hz16000, 12000.0),
            (Hz48000, Hz8000, 20000.0),
        ] {
            let input = tone(freq, 20000, from, 0.5);
            let mut r = Resampler::new(from, to);
            let out = in_frames(&mut r, &input, from.samples_per_20ms());
            let residue = db(mean_square(settled(&out, to)) / mean_square(&input));
            assert!(
                residue < -40.0,
                "{from:?}->{to:?} {freq} Hz: {residue:.1} dB"
            );
        }
    }

    #[test]
    fn upsampling_suppresses_images() {
        // A 3 kHz tone at 8 kHz has images at 5, 11, 13, ... kHz once the
        // zeros are inserted; the interpolation filter must remove them.
        let input = tone(3000.0, 20000, Hz8000, 0.5);
        for to in [Hz16000, Hz48000] {
            let mut r = Resampler::new(Hz8000, to);
            let out = in_frames(&mut r, &input, 160);
            let block = settled(&out, to);
            let wanted = power(block, to.hz(), 3000.0);
            let images = db((mean_square(block) - wanted) / wanted);
            assert!(images < -40.0, "8k->{to:?}: images at {images:.1} dB");
        }
    }

    #[test]
    fn frames_equal_one_pass() {
        // A chirp plus a low tone covers the whole band.
        for from in ALL {
            let n = from.samples_per_20ms() * 25;
            let rate = f64::from(from.hz());
            let input: Vec<i16> = (0..n)
                .map(|i| {
                    let t = i as f64 / rate;
                    let chirp = (std::f64::consts::PI * 3000.0 * t * t * 2.0).sin();
                    (12000.0 * chirp + 8000.0 * (std::f64::consts::TAU * 300.0 * t).sin()) as i16
                })
                .collect();
            for to in ALL {
                let whole = in_frames(&mut Resampler::new(from, to), &input, n);
                let framed = in_frames(
                    &mut Resampler::new(from, to),
                    &input,
                    from.samples_per_20ms(),
                );
                // Odd chunks exercise the carried-over phase of the decimator.
                let ragged = in_frames(&mut Resampler::new(from, to), &input, 7);
                assert_eq!(whole.len(), framed.len());
                assert_eq!(whole.len(), ragged.len());
                for (i, ((w, f), g)) in whole.iter().zip(&framed).zip(&ragged).enumerate() {
                    assert!(
                        (w - f).abs() <= 1,
                        "{from:?}->{to:?} sample {i}: {w} vs {f}"
                    );
                    assert!(
                        (w - g).abs() <= 1,
                        "{from:?}->{to:?} sample {i}: {w} vs {g}"
                    );
                }
            }
        }
    }

    #[test]
    fn output_len_tracks_partial_phase() {
        let mut r = Resampler::new(Hz48000, Hz8000);
        let mut out = Vec::new();
        assert_eq!(r.output_len(5), 0);
        r.process(&[1; 5], &mut out);
        assert!(out.is_empty());
        assert_eq!(r.output_len(1), 1);
        assert_eq!(r.output_len(13), 3);
        r.process(&[1; 13], &mut out);
        assert_eq!(out.len(), 3);
        r.reset();
        assert_eq!(r.output_len(5), 0);
    }

    #[test]
    fn process_into_fills_a_fixed_buffer() {
        let input = tone(1000.0, 10000, Hz8000, 0.1);
        let mut a = Resampler::new(Hz8000, Hz48000);
        let mut b = a.clone();
        let mut expected = Vec::new();
        a.process(&input[..160], &mut expected);
        let mut buf = [0i16; 960];
        assert_eq!(b.process_into(&input[..160], &mut buf), Ok(960));
        assert_eq!(&buf[..], &expected[..]);
        // Too small: error, and the state is untouched.
        let mut small = [0i16; 959];
        assert_eq!(
            b.process_into(&input[160..320], &mut small),
            Err(CodecError::OutputTooSmall {
                needed: 960,
                available: 959
            })
        );
        a.process(&input[160..320], &mut expected);
        assert_eq!(b.process_into(&input[160..320], &mut buf), Ok(960));
        assert_eq!(&buf[..], &expected[960..]);
        let mut same = Resampler::new(Hz16000, Hz16000);
        assert_eq!(same.process_into(&[1, 2, 3], &mut buf), Ok(3));
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(same.delay(), 0);
    }

    #[test]
    fn reset_forgets_history() {
        let input = tone(1000.0, 10000, Hz16000, 0.1);
        let mut r = Resampler::new(Hz16000, Hz8000);
        let mut first = Vec::new();
        r.process(&input, &mut first);
        r.reset();
        let mut second = Vec::new();
        r.process(&input, &mut second);
        assert_eq!(first, second);
    }

    #[test]
    fn delay_is_reported_in_output_samples() {
        // An impulse comes out centred on the reported delay.
        for (from, to) in [(Hz8000, Hz48000), (Hz48000, Hz8000), (Hz8000, Hz16000)] {
            let mut input = vec![0i16; from.samples_per_20ms() * 4];
            input[0] = 30000;
            let mut out = Vec::new();
            let mut r = Resampler::new(from, to);
            r.process(&input, &mut out);
            let peak = out
                .iter()
                .enumerate()
                .max_by_key(|(_, s)| s.unsigned_abs())
                .map(|(i, _)| i)
                .unwrap();
            assert!(
                peak.abs_diff(r.delay()) <= 1,
                "{from:?}->{to:?}: {peak} vs {}",
                r.delay()
            );
        }
    }
}
