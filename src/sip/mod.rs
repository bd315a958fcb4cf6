//! The SIP signalling core. Everything below this module is sans-IO: it is
//! driven with `(now, input)` and returns what to transmit and when it next
//! wants to be woken.

pub mod auth;
pub mod message;
pub mod transaction;
