//! Fuzz bodies, kept in the library so they always compile (fuzz/ calls them).

use super::parse;

/// Parses `data`; whatever parses must print to something that parses back
/// to the same message and prints identically (printing is a fixed point).
pub fn parse_roundtrip(data: &[u8]) {
    let Ok(first) = parse(data) else { return };
    let printed = first.to_bytes();
    match parse(&printed) {
        Ok(second) => {
            assert_eq!(second, first, "reparse differs");
            assert_eq!(second.to_bytes(), printed, "reprint differs");
        }
        Err(e) => panic!(
            "printed message does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        ),
    }
}
