//! Fuzzes the WAV reader (prompts, hold music and recordings read back).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::wav::fuzz_wav(data);
});
