//! Call-centre call handling above the SIP and media cores.
//!
//! [`acd`] is the sans-IO automatic call distributor: agent states and
//! queues, driven by the call layer with `(now, input)` and read back as
//! outputs and a next timer deadline. [`ivr`] is a sans-IO IVR menu in the
//! same style, and [`announce`] builds the queue position and wait
//! announcements. [`record`] builds each call's detail record (CDR) from
//! the events the call layer feeds it; `storage` keeps it.

pub mod acd;
pub mod announce;
pub mod ivr;
pub mod record;
