//! Switchboard: a SIP/VoIP gateway for call centres.
//!
//! The crate is split along the architecture drawn in `docs/architecture.md`:
//! protocol cores that own no sockets and read no clock (`sip`), the
//! configuration (`config`), the embedded store (`storage`) and the tokio
//! runtime that owns sockets and timers and pumps the cores (`server`).

pub mod config;
pub mod net;
pub mod sip;
pub mod storage;
