//! Fuzzes a transcoded (PCMU ↔ Opus), recorded media session with arbitrary
//! RTP and RTCP on both legs and clock ticks in between.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::session::fuzz_session(data);
});
