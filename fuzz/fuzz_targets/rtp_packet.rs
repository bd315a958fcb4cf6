//! Fuzzes the RTP packet view (header, CSRC list, extension, padding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::rtp::fuzz_rtp(data);
});
