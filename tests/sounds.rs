//! The shipped default sounds (config/sounds/) load with our WAV reader at
//! the G.711 rate, are not silent, and the hold music is long enough to loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use switchboard::media::wav::WavReader;

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

#[test]
fn every_shipped_sound_is_8khz_mono_and_audible() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sounds");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wav") {
            continue;
        }
        let wav = WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(wav.sample_rate(), 8000, "{}", path.display());
        assert!(!wav.truncated(), "{}", path.display());
        let seconds = wav.frames() as f64 / 8000.0;
        assert!(seconds >= 0.2, "{}: {seconds} s", path.display());
        // Speech and music sit well above the noise floor (RMS of full
        // scale is ~23,000; -40 dBFS is ~330).
        assert!(
            rms(wav.samples()) > 330.0,
            "{} is nearly silent",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 19, "expected the 19 default sounds, found {count}");
    let hold = WavReader::open(dir.join("hold-music.wav")).unwrap();
    assert!(hold.frames() >= 20 * 8000, "hold music shorter than 20 s");
}
