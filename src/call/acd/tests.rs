//! ACD tests on a virtual clock.
