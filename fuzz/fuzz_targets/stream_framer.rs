//! Fuzzes the stream (TCP/TLS) framer: the input is treated as bytes arriving
//! on one connection, which the framer must cut into messages by
//! Content-Length (RFC 3261 §18.3) without panicking, looping or buffering
//! without bound, however the bytes are split and whatever they claim.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::sip::transport::fuzz::framer(data);
});
