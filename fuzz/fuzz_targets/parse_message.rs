//! Fuzzes the SIP message parser with whole datagrams.
//!
//! `parse_roundtrip` parses the input and, when it parses, prints the message,
//! reparses the print and requires the reprint to be identical; it never
//! panics otherwise. So libFuzzer reports two classes of bug here: a panic
//! (or overflow, or runaway allocation) anywhere in the parser, and a printer
//! that emits something the parser reads back differently.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard::sip::message::fuzz::parse_roundtrip(data);
});
