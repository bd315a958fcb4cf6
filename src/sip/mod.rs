//! The SIP signalling core. Everything below this module is sans-IO: it is
//! driven with `(now, input)` and returns what to transmit and when it next
//! wants to be woken.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod flow;
pub mod message;
pub mod registrar;
pub mod registration;
pub mod transaction;
pub mod transport;
