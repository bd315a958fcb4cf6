//! Goertzel single-bin DFT: the power of one frequency in a block, far
//! cheaper than an FFT when only a handful of tones matter (DTMF, call
//! progress tones, and the interop tests asking which tone a peer hears).

/// Power of `freq` (Hz) in `samples` taken at `sample_rate`, scaled so a
/// sine of amplitude A at `freq` gives A²/2 — the same scale as the block's
/// mean square. The ratio of the two is therefore the fraction of the
/// block's energy at that frequency, independent of block length.
///
/// The bin is centred on `freq` exactly (not rounded to a DFT bin); its
/// width is about `sample_rate / samples.len()`, so the block must be long
/// enough to separate the tones of interest. Empty blocks and a zero rate
/// give 0.
pub fn power(samples: &[i16], sample_rate: u32, freq: f64) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (std::f64::consts::TAU * freq / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let magnitude_sq = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    2.0 * magnitude_sq / (n * n)
}

/// Mean square of a block (its power on the same scale as [`power`]).
pub fn mean_square(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    sum / samples.len() as f64
}

/// The tone a [`ToneDetector`] found in a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneDetection {
    /// Index into the detector's frequency list.
    pub index: usize,
    /// The frequency, in Hz.
    pub freq: f64,
    /// Its power (see [`power`]).
    pub power: f64,
    /// Its share of the block's energy, 0..≈1.
    pub purity: f64,
}

/// Reports which of a fixed set of frequencies dominates a block.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    sample_rate: u32,
    freqs: Vec<f64>,
    min_power: f64,
    min_purity: f64,
}

impl ToneDetector {
    /// Default floor: a tone of amplitude 100 (about −50 dBFS); quieter
    /// blocks are treated as silence.
    pub const DEFAULT_MIN_POWER: f64 = 100.0 * 100.0 / 2.0;
    /// Default share of the block's energy the tone must carry: anything
    /// less is noise or speech with a tone-like component, not a tone.
    pub const DEFAULT_MIN_PURITY: f64 = 0.5;

    /// A detector for `freqs` (Hz) at `sample_rate`, with the default
    /// thresholds.
    pub fn new(sample_rate: u32, freqs: &[f64]) -> Self {
        Self {
            sample_rate,
            freqs: freqs.to_vec(),
            min_power: Self::DEFAULT_MIN_POWER,
            min_purity: Self::DEFAULT_MIN_PURITY,
        }
    }

    /// Sets the minimum tone power (scale of [`power`]).
    pub fn with_min_power(mut self, min_power: f64) -> Self {
        self.min_power = min_power;
        self
    }

    /// Sets the minimum share of the block's energy.
    pub fn with_min_purity(mut self, min_purity: f64) -> Self {
        self.min_purity = min_purity;
        self
    }

    /// The strongest listed frequency in `block`, if it passes both the
    /// power floor and the purity threshold.
    pub fn detect(&self, block: &[i16]) -> Option<ToneDetection> {
        let total = mean_square(block);
        let best = self
            .freqs
            .iter()
            .enumerate()
            .map(|(index, &freq)| (index, freq, power(block, self.sample_rate, freq)))
            .max_by(|a, b| a.2.total_cmp(&b.2))?;
        let (index, freq, power) = best;
        let purity = if total > 0.0 { power / total } else { 0.0 };
        (power >= self.min_power && purity >= self.min_purity).then_some(ToneDetection {
            index,
            freq,
            power,
            purity,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::ToneGenerator;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn tone(freq: f64, amplitude: i16, rate: u32, len: usize) -> Vec<i16> {
        let mut out = vec![0i16; len];
        ToneGenerator::new(freq, amplitude, rate).fill(&mut out);
        out
    }

    fn add_noise(block: &mut [i16], amplitude: i16, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        for s in block {
            *s = s.saturating_add(rng.random_range(-amplitude..=amplitude));
        }
    }

    #[test]
    fn power_of_a_sine_is_half_its_amplitude_squared() {
        let block = tone(1000.0, 10000, 8000, 160);
        let p = power(&block, 8000, 1000.0);
        assert!((p / 5e7 - 1.0).abs() < 0.01, "power {p}");
        assert!((mean_square(&block) / 5e7 - 1.0).abs() < 0.01);
        // Two bins away (bin width 50 Hz) there is nothing.
        assert!(power(&block, 8000, 1100.0) < p * 1e-6);
        assert!(power(&block, 8000, 2000.0) < p * 1e-6);
        assert_eq!(power(&[], 8000, 1000.0), 0.0);
        assert_eq!(power(&block, 0, 1000.0), 0.0);
    }

    #[test]
    fn off_bin_tone_still_measures_close_to_its_power() {
        // 1033 Hz does not fit an integer number of cycles in 20 ms.
        let block = tone(1033.0, 8000, 8000, 160);
        let p = power(&block, 8000, 1033.0);
        assert!((p / 3.2e7 - 1.0).abs() < 0.05, "power {p}");
    }

    #[test]
    fn detector_reports_the_dominant_tone() {
        let freqs = [400.0, 1000.0, 1400.0, 2000.0];
        let detector = ToneDetector::new(8000, &freqs);
        for (i, &f) in freqs.iter().enumerate() {
            let mut block = tone(f, 8000, 8000, 160);
            add_noise(&mut block, 1000, i as u64);
            let d = detector.detect(&block).unwrap();
            assert_eq!(d.index, i);
            assert_eq!(d.freq, f);
            assert!(d.purity > 0.9, "purity {}", d.purity);
        }
        // Two tones: the louder one wins.
        let mut block = tone(400.0, 4000, 8000, 160);
        ToneGenerator::new(2000.0, 12000, 8000).mix_into(&mut block);
        assert_eq!(detector.detect(&block).map(|d| d.freq), Some(2000.0));
    }

    #[test]
    fn detector_ignores_noise_silence_and_unlisted_tones() {
        let detector = ToneDetector::new(8000, &[400.0, 1000.0]);
        let mut noise = vec![0i16; 160];
        add_noise(&mut noise, 10000, 7);
        assert_eq!(detector.detect(&noise), None);
        assert_eq!(detector.detect(&[0i16; 160]), None);
        assert_eq!(detector.detect(&[]), None);
        assert_eq!(detector.detect(&tone(1000.0, 50, 8000, 160)), None);
        assert_eq!(detector.detect(&tone(2500.0, 8000, 8000, 160)), None);
        // Lowering the floor lets the quiet tone through.
        let sensitive = detector.clone().with_min_power(100.0);
        assert_eq!(
            sensitive
                .detect(&tone(1000.0, 50, 8000, 160))
                .map(|d| d.index),
            Some(1)
        );
        // Raising purity rejects a tone buried in noise.
        // Tone power 8e6 against uniform noise of variance 3e6: purity ≈ 0.7.
        let mut noisy = tone(1000.0, 4000, 8000, 160);
        add_noise(&mut noisy, 3000, 9);
        assert_eq!(detector.detect(&noisy).map(|d| d.index), Some(1));
        assert_eq!(detector.clone().with_min_purity(0.95).detect(&noisy), None);
        assert_eq!(ToneDetector::new(8000, &[]).detect(&noisy), None);
    }
}
