//! SIP transport layer, sans-IO part (RFC 3261 §18, RFC 5626 keep-alives).
//!
//! This module deals in raw bytes, never in parsed messages: it tells the
//! socket-owning runtime (`crate::net`) where one SIP message ends on a
//! stream transport ([`StreamFramer`]) and answers STUN keep-alives that
//! share the SIP UDP port ([`stun`]). Nothing here owns a socket.

mod framer;
pub mod fuzz;
pub mod stun;

use std::fmt;
use std::str::FromStr;

pub use framer::{find_header_end, Frame, FrameError, StreamFramer};

/// A SIP transport protocol, as named in the Via header (RFC 3261 §18, §20.42).
///
/// Non-exhaustive so that `Tls`, `Ws` and `Wss` can be added without breaking
/// callers; every property below is a `match` that will then demand an answer
/// for the new variant.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The token used in the Via header's sent-protocol (`SIP/2.0/UDP`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Reliable transports make the transaction layer skip retransmissions
    /// (RFC 3261 §17.1.1.2: Timer A is not started over a reliable transport).
    pub const fn is_reliable(self) -> bool {
        match self {
            Transport::Udp => false,
            Transport::Tcp => true,
        }
    }

    /// Stream transports need framing by Content-Length (RFC 3261 §18.3).
    pub const fn is_stream(self) -> bool {
        match self {
            Transport::Udp => false,
            Transport::Tcp => true,
        }
    }

    /// The port used when a URI or Via carries none (RFC 3261 §19.1.2;
    /// 5061 for TLS once it exists).
    pub const fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport name is not one this build supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SIP transport {name:?}")]
pub struct UnknownTransport {
    /// The rejected name, as given.
    pub name: String,
}

/// Configuration files name transports (`transport = "udp"`); any case.
impl<'de> serde::Deserialize<'de> for Transport {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Transport {
    type Err = UnknownTransport;

    /// Case-insensitive: the Via transport token is case-insensitive
    /// (RFC 3261 §7.3.1), and the `transport=` URI parameter is lower case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("udp") {
            Ok(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Ok(Transport::Tcp)
        } else {
            Err(UnknownTransport { name: s.to_owned() })
        }
    }
}

/// Identifies one connection of a stream transport for the lifetime of the
/// process (never reused), so the core can pin responses and in-dialog
/// requests to the connection a request arrived on (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn transport_names_round_trip() {
        for t in [Transport::Udp, Transport::Tcp] {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("udp".parse::<Transport>().unwrap(), Transport::Udp);
        assert_eq!("tCp".parse::<Transport>().unwrap(), Transport::Tcp);
        let err = "SCTP".parse::<Transport>().unwrap_err();
        assert_eq!(err.name, "SCTP");
        assert!("".parse::<Transport>().is_err());
    }

    #[test]
    fn transport_properties() {
        assert!(!Transport::Udp.is_reliable());
        assert!(!Transport::Udp.is_stream());
        assert!(Transport::Tcp.is_reliable());
        assert!(Transport::Tcp.is_stream());
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
    }

    #[test]
    fn connection_id_display() {
        assert_eq!(ConnectionId(42).to_string(), "conn#42");
    }
}
