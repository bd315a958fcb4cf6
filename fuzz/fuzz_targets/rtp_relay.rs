//! Fuzzes the two-leg RTP relay core with arbitrary packets on both legs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::media::relay::fuzz_relay(data);
});
