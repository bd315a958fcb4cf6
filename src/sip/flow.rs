//! Where a message came from or goes to: the transport, both addresses and,
//! on stream transports, the connection (RFC 3261 §18.2.2 answers on it).

use std::net::SocketAddr;

use super::transport::{ConnectionId, Transport};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    /// Our socket's address.
    pub local: SocketAddr,
    /// The peer's address as seen on the wire (NAT-mapped).
    pub remote: SocketAddr,
    /// The stream connection, when there is one.
    pub connection: Option<ConnectionId>,
}

impl Flow {
    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }

    /// The same path to another remote address (a response's or request's
    /// destination when not the source of the request).
    pub fn towards(&self, remote: SocketAddr) -> Flow {
        Flow {
            transport: self.transport,
            local: self.local,
            remote,
            connection: if remote == self.remote {
                self.connection
            } else {
                None
            },
        }
    }
}
