//! Fuzzes the SDP parser: whatever parses must print and reparse to the same value, and
//! offer/answer and hold detection run on it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::sdp::fuzz_parse(data);
});
