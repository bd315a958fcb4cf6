//! Switchboard: a SIP/VoIP gateway for call centres.
//!
//! The crate is split along the architecture drawn in `docs/architecture.md`:
//! protocol cores that own no sockets and read no clock (`sip`), the
//! configuration (`config`), the embedded store (`storage`), the tokio
//! network layer that owns the sockets (`net`) and the process that pumps
//! the cores (`server`).

pub mod api;
pub mod calendar;
pub mod call;
pub mod cli;
pub mod config;
pub mod control;
pub mod media;
pub mod net;
pub mod os;
pub mod server;
pub mod sip;
pub mod storage;
