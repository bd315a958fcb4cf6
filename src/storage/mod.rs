//! Embedded store.
