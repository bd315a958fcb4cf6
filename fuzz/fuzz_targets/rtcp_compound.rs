//! Fuzzes the RTCP compound parser: whatever parses must survive write and reparse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::rtp::fuzz_rtcp(data);
});
