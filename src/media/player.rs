//! What the gateway plays into a call: prompts (WAV files), silences and
//! tones, in a playlist that may loop (hold music, a greeting followed by
//! music, a test prompt repeated until hang-up).
//!
//! Prompts are decoded and converted to the media bus rate (8 kHz) once,
//! when loaded, and shared between calls behind an `Arc`: a thousand callers
//! on hold share one copy of the music. The player itself is a cursor: each
//! 20 ms tick asks it for the next frame. Pacing is the caller's (the
//! worker's [`crate::media::pacer::Pacer`]), so a player never drifts from
//! the wall clock and never bursts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::media::codec::{Resampler, SampleRate, ToneGenerator};
use crate::media::wav::{WavError, WavReader};

/// Sample rate of the media bus inside a session.
pub const BUS_RATE: u32 = 8000;
/// Samples per 20 ms frame on the bus.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one bus frame.
pub const FRAME: Duration = Duration::from_millis(20);

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {source}")]
    Wav { path: String, source: WavError },
    #[error("{path}: sample rate {rate} Hz is not 8000, 16000 or 48000")]
    Rate { path: String, rate: u32 },
    #[error("{path}: the file holds no audio")]
    Empty { path: String },
}

/// A sound ready to play: 8 kHz mono PCM, shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    name: String,
    samples: Arc<[i16]>,
}

impl Prompt {
    /// Loads a 16-bit PCM mono WAV (8, 16 or 48 kHz) and converts it to the
    /// bus rate.
    pub fn load(name: &str, path: &Path) -> Result<Prompt, PromptError> {
        let shown = || path.display().to_string();
        let wav = WavReader::open(path).map_err(|source| PromptError::Wav {
            path: shown(),
            source,
        })?;
        let rate = SampleRate::try_from(wav.sample_rate()).map_err(|_| PromptError::Rate {
            path: shown(),
            rate: wav.sample_rate(),
        })?;
        let samples = wav.into_samples();
        let samples = if rate.hz() == BUS_RATE {
            samples
        } else {
            let mut resampler = Resampler::new(rate, SampleRate::Hz8000);
            let mut out = Vec::with_capacity(resampler.output_len(samples.len()));
            resampler.process(&samples, &mut out);
            out
        };
        if samples.is_empty() {
            return Err(PromptError::Empty { path: shown() });
        }
        Ok(Prompt {
            name: name.to_owned(),
            samples: samples.into(),
        })
    }

    /// A prompt from bus-rate samples (synthesised sounds, tests).
    pub fn from_samples(name: &str, samples: Vec<i16>) -> Prompt {
        Prompt {
            name: name.to_owned(),
            samples: samples.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(BUS_RATE))
    }
}

/// One entry of a playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayItem {
    Prompt(Prompt),
    Silence(Duration),
    /// A sine tone, e.g. the 425 Hz/1 kHz beeps of call-progress tones.
    Tone {
        freq_hz: f64,
        amplitude: i16,
        duration: Duration,
    },
}

impl PlayItem {
    fn samples(&self) -> usize {
        match self {
            PlayItem::Prompt(p) => p.samples.len(),
            PlayItem::Silence(d) | PlayItem::Tone { duration: d, .. } => {
                usize::try_from(d.as_millis() * u128::from(BUS_RATE) / 1000).unwrap_or(usize::MAX)
            }
        }
    }
}

/// A playlist and where we are in it.
#[derive(Debug, Clone)]
pub struct Player {
    items: Vec<PlayItem>,
    looping: bool,
    index: usize,
    offset: usize,
    tone: Option<ToneGenerator>,
}

impl Player {
    /// Plays `items` in order, from the start again when `looping`. A
    /// looping playlist that holds no audio at all plays silence.
    pub fn new(items: Vec<PlayItem>, looping: bool) -> Player {
        let mut player = Player {
            items,
            looping,
            index: 0,
            offset: 0,
            tone: None,
        };
        player.start_item();
        player
    }

    fn start_item(&mut self) {
        self.offset = 0;
        self.tone = match self.items.get(self.index) {
            Some(PlayItem::Tone {
                freq_hz, amplitude, ..
            }) => Some(ToneGenerator::new(*freq_hz, *amplitude, BUS_RATE)),
            _ => None,
        };
    }

    /// Whether a non-looping playlist has played to its end.
    pub fn finished(&self) -> bool {
        !self.looping && self.index >= self.items.len()
    }

    /// Fills `out` (one bus frame, or any length) with the next samples.
    /// Returns false, with `out` silent, once a non-looping playlist ended.
    /// A frame may span the end of one item and the start of the next.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        let total: usize = self.items.iter().map(PlayItem::samples).sum();
        if self.finished() || total == 0 {
            out.fill(0);
            return false;
        }
        let mut filled = 0;
        while filled < out.len() {
            let Some(item) = self.items.get(self.index) else {
                if self.looping {
                    self.index = 0;
                    self.start_item();
                    continue;
                }
                out[filled..].fill(0);
                break;
            };
            let len = item.samples();
            let take = (len - self.offset.min(len)).min(out.len() - filled);
            let dst = &mut out[filled..filled + take];
            match item {
                PlayItem::Prompt(p) => {
                    dst.copy_from_slice(&p.samples[self.offset..self.offset + take])
                }
                PlayItem::Silence(_) => dst.fill(0),
                PlayItem::Tone { .. } => match self.tone.as_mut() {
                    Some(gen) => gen.fill(dst),
                    None => dst.fill(0),
                },
            }
            filled += take;
            self.offset += take;
            if self.offset >= len {
                self.index += 1;
                self.start_item();
                if self.index >= self.items.len() && !self.looping {
                    out[filled..].fill(0);
                    break;
                }
            }
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::goertzel::power;

    fn ramp(n: usize) -> Prompt {
        Prompt::from_samples("ramp", (1..=n).map(|i| i as i16).collect())
    }

    #[test]
    fn plays_a_prompt_once_then_silence() {
        let mut p = Player::new(vec![PlayItem::Prompt(ramp(200))], false);
        let mut f = [0i16; FRAME_SAMPLES];
        assert!(p.next_frame(&mut f));
        assert_eq!(f[0], 1);
        assert_eq!(f[159], 160);
        assert!(p.next_frame(&mut f));
        assert_eq!(f[39], 200);
        assert!(f[40..].iter().all(|&s| s == 0));
        assert!(p.finished());
        assert!(!p.next_frame(&mut f));
    }

    #[test]
    fn looping_wraps_inside_a_frame_with_the_gap() {
        let items = vec![
            PlayItem::Prompt(ramp(100)),
            PlayItem::Silence(Duration::from_millis(5)), // 40 samples
        ];
        let mut p = Player::new(items, true);
        let mut f = [0i16; FRAME_SAMPLES];
        for _ in 0..100 {
            assert!(p.next_frame(&mut f));
        }
        // 100 frames = 16000 samples = 114 cycles of 140 + 40 samples in.
        let mut f2 = [0i16; 140];
        p.next_frame(&mut f2);
        assert_eq!(f2[0], 41);
        assert_eq!(f2[59], 100);
        assert!(f2[60..100].iter().all(|&s| s == 0));
        assert_eq!(f2[100], 1);
        assert!(!p.finished());
    }

    #[test]
    fn a_tone_item_has_its_frequency() {
        let mut p = Player::new(
            vec![PlayItem::Tone {
                freq_hz: 1000.0,
                amplitude: 8000,
                duration: Duration::from_millis(200),
            }],
            false,
        );
        let mut all = Vec::new();
        let mut f = [0i16; FRAME_SAMPLES];
        while p.next_frame(&mut f) {
            all.extend_from_slice(&f);
        }
        assert_eq!(all.len(), 1600);
        assert!(power(&all, BUS_RATE, 1000.0) > 100.0 * power(&all, BUS_RATE, 1633.0));
    }

    #[test]
    fn an_empty_looping_playlist_is_silence() {
        let mut p = Player::new(vec![], true);
        let mut f = [7i16; FRAME_SAMPLES];
        assert!(!p.next_frame(&mut f));
        assert!(f.iter().all(|&s| s == 0));
    }

    #[test]
    fn loads_shipped_sounds_at_bus_rate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sounds");
        let p = Prompt::load("hold-music", &dir.join("hold-music.wav")).unwrap();
        assert!(p.duration() > Duration::from_secs(5));
        let err = Prompt::load("x", &dir.join("missing.wav")).unwrap_err();
        assert!(err.to_string().contains("missing.wav"));
    }
}
