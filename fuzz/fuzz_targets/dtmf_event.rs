//! Fuzzes the RFC 4733 telephone-event payload parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::dtmf::fuzz_dtmf(data);
});
