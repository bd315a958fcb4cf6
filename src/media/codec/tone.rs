//! Sine tone generator for test signals, comfort tones and interop probes.

/// A sine oscillator whose phase carries over between calls, so a tone
/// generated in 20 ms frames is the same signal as one generated at once.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Phase advance per sample, in cycles.
    step: f64,
    /// Current phase in cycles, kept in [0, 1) so precision does not decay
    /// over a long call.
    phase: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// A tone of `freq_hz` with peak `amplitude` at `sample_rate`, starting
    /// at phase 0. A zero sample rate yields silence rather than NaNs.
    pub fn new(freq_hz: f64, amplitude: i16, sample_rate: u32) -> Self {
        let step = if sample_rate == 0 {
            0.0
        } else {
            (freq_hz / f64::from(sample_rate)).rem_euclid(1.0)
        };
        let amplitude = if sample_rate == 0 {
            0.0
        } else {
            f64::from(amplitude)
        };
        Self {
            step,
            phase: 0.0,
            amplitude,
        }
    }

    /// The next sample.
    #[inline]
    pub fn next_sample(&mut self) -> i16 {
        let v = self.amplitude * (std::f64::consts::TAU * self.phase).sin();
        self.phase += self.step;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        // |v| <= |amplitude| <= 32768, and `as` saturates the one edge case.
        v.round() as i16
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = self.next_sample();
        }
    }

    /// Adds the next `out.len()` samples onto `out` (saturating), to mix
    /// tones or tone and noise.
    pub fn mix_into(&mut self, out: &mut [i16]) {
        for s in out {
            *s = s.saturating_add(self.next_sample());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_continue_the_phase() {
        let mut whole = ToneGenerator::new(1000.0, 12000, 8000);
        let mut framed = ToneGenerator::new(1000.0, 12000, 8000);
        let mut a = vec![0i16; 8000];
        whole.fill(&mut a);
        let mut b = vec![0i16; 8000];
        for frame in b.chunks_mut(160) {
            framed.fill(frame);
        }
        assert_eq!(a, b);
    }

    #[test]
    fn produces_the_expected_waveform() {
        // 2 kHz at 8 kHz is a quarter cycle per sample: 0, A, 0, -A, ...
        let mut g = ToneGenerator::new(2000.0, 10000, 8000);
        let mut out = [0i16; 8];
        g.fill(&mut out);
        assert_eq!(out, [0, 10000, 0, -10000, 0, 10000, 0, -10000]);
        let peak = {
            let mut g = ToneGenerator::new(440.0, 20000, 48000);
            let mut buf = vec![0i16; 4800];
            g.fill(&mut buf);
            buf.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)
        };
        assert!((19980..=20000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn zero_rate_is_silent_and_mixing_saturates() {
        let mut g = ToneGenerator::new(1000.0, 10000, 0);
        let mut out = [5i16; 4];
        g.fill(&mut out);
        assert_eq!(out, [0; 4]);
        let mut g = ToneGenerator::new(2000.0, 30000, 8000);
        let mut out = [30000i16; 4];
        g.mix_into(&mut out);
        assert_eq!(out, [30000, i16::MAX, 30000, 0]);
    }
}
