//! UDP sockets: one receive task per socket, sends straight from the
//! caller's thread (RFC 3261 §18.1.1, §18.2.2), STUN keep-alives answered
//! in place (RFC 5626 §4.4.2).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::{
    deliver, pick_source, report_now, stopped, Inbound, Inner, NetEvent, Outbound, SendError,
};
use crate::sip::transport::{find_header_end, stun, Transport};

/// Requested socket buffers: a burst of REGISTERs from thousands of phones
/// must not overflow the default few hundred KiB. The kernel may grant less
/// (net.core.rmem_max); that is not an error.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;
/// Larger than any UDP payload, so a datagram is never silently truncated.
const RECEIVE_BUFFER: usize = 65_535 + 1;
/// Datagrams waiting for the socket to become writable again.
const BACKLOG: usize = 1024;

/// A bound UDP socket as seen by senders.
pub(super) struct Endpoint {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// Datagrams that could not be sent on the spot, for [`backlog_loop`].
    backlog: mpsc::Sender<(SocketAddr, Bytes)>,
}

impl Endpoint {
    pub(super) fn new(
        socket: Arc<UdpSocket>,
        local: SocketAddr,
    ) -> (Endpoint, mpsc::Receiver<(SocketAddr, Bytes)>) {
        let (backlog, rx) = mpsc::channel(BACKLOG);
        (
            Endpoint {
                socket,
                local,
                backlog,
            },
            rx,
        )
    }
}

pub(super) fn bind(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if address.is_ipv6() {
        // So "[::]:5060" and "0.0.0.0:5060" can both be bound, each family
        // on its own socket.
        socket.set_only_v6(true)?;
    }
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        debug!(%address, error = %e, "could not enlarge the UDP receive buffer");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        debug!(%address, error = %e, "could not enlarge the UDP send buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// What to do with a received datagram.
#[derive(Debug, PartialEq, Eq)]
enum Datagram {
    /// Blank: some phones keep their NAT binding open with CRLFs or spaces.
    Ignore,
    /// RFC 5626 §4.4.2 STUN keep-alive, never passed to the SIP stack.
    Stun,
    Message,
    /// Over the limit, with a header block of this length within it.
    Oversized(usize),
    /// Over the limit and no header block to answer with.
    Drop,
}

fn classify(datagram: &[u8], max_message_size: usize) -> Datagram {
    if datagram
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
    {
        Datagram::Ignore
    } else if stun::is_stun(datagram) {
        Datagram::Stun
    } else if datagram.len() <= max_message_size {
        Datagram::Message
    } else {
        match find_header_end(&datagram[..max_message_size]) {
            Some(head) => Datagram::Oversized(head),
            None => Datagram::Drop,
        }
    }
}

pub(super) async fn receive_loop(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    max_message_size: usize,
    events: mpsc::Sender<NetEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut dropped_oversized: u64 = 0;
    loop {
        let received = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, remote) = match received {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems;
            // they concern a peer, not this socket.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
                ) =>
            {
                debug!(%local, error = %e, "UDP receive error");
                continue;
            }
            Err(e) => {
                warn!(%local, error = %e, "UDP receive error");
                // Do not spin on a persistent error.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = &buf[..len];
        let inbound = |data: &[u8]| Inbound {
            transport: Transport::Udp,
            local,
            remote,
            connection: None,
            data: Bytes::copy_from_slice(data),
        };
        let event = match classify(datagram, max_message_size) {
            Datagram::Ignore => continue,
            Datagram::Stun => {
                if let Some(response) = stun::binding_response(datagram, remote) {
                    // A lost keep-alive answer is retried by the client.
                    if let Err(e) = socket.try_send_to(&response, remote) {
                        debug!(%remote, error = %e, "STUN response not sent");
                    }
                }
                continue;
            }
            Datagram::Message => NetEvent::Message(inbound(datagram)),
            Datagram::Oversized(head) => NetEvent::Oversized {
                inbound: inbound(&datagram[..head]),
            },
            Datagram::Drop => {
                dropped_oversized += 1;
                debug!(%remote, len, dropped_oversized, "oversized datagram without a header block dropped");
                continue;
            }
        };
        if events.is_closed() {
            return;
        }
        deliver(&events, &mut stop, event).await;
    }
}

/// Sends the datagrams that found the socket not writable.
pub(super) async fn backlog_loop(
    socket: Arc<UdpSocket>,
    mut backlog: mpsc::Receiver<(SocketAddr, Bytes)>,
    events: mpsc::Sender<NetEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (destination, data) = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            next = backlog.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        let sent = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            r = socket.send_to(&data, destination) => r,
        };
        if let Err(e) = sent {
            debug!(%destination, error = %e, "UDP send failed");
            report_now(
                &events,
                NetEvent::SendFailed {
                    transport: Transport::Udp,
                    destination,
                    connection: None,
                    error: SendError::Io(e.kind()),
                },
            );
        }
    }
}

pub(super) fn send(inner: &Inner, out: Outbound) {
    let endpoints = inner.udp.read().unwrap_or_else(PoisonError::into_inner);
    let destination = out.destination;
    let Some(endpoint) = pick_source(
        endpoints.iter().map(|e| (e.local.ip(), e)),
        destination.ip(),
    ) else {
        drop(endpoints);
        inner.send_failed(Transport::Udp, destination, None, SendError::NoSocket);
        return;
    };
    // Send on the spot unless earlier datagrams are still waiting, which
    // would then be overtaken.
    if endpoint.backlog.capacity() == endpoint.backlog.max_capacity() {
        match endpoint.socket.try_send_to(&out.data, destination) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                drop(endpoints);
                inner.send_failed(Transport::Udp, destination, None, SendError::Io(e.kind()));
                return;
            }
        }
    }
    let error = match endpoint.backlog.try_send((destination, out.data)) {
        Ok(()) => return,
        Err(mpsc::error::TrySendError::Full(_)) => SendError::QueueFull,
        Err(mpsc::error::TrySendError::Closed(_)) => SendError::ShuttingDown,
    };
    drop(endpoints);
    inner.send_failed(Transport::Udp, destination, None, error);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(b"", 100), Datagram::Ignore);
        assert_eq!(classify(b"\r\n\r\n", 100), Datagram::Ignore);
        assert_eq!(classify(b" \t\r\n", 100), Datagram::Ignore);
        assert_eq!(
            classify(b"OPTIONS sip:a SIP/2.0\r\n\r\n", 100),
            Datagram::Message
        );
        let mut stun = vec![0, 1, 0, 0];
        stun.extend_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
        stun.extend_from_slice(&[7; 12]);
        assert_eq!(classify(&stun, 100), Datagram::Stun);

        let big = format!("INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n{}", "b".repeat(100));
        assert_eq!(classify(big.as_bytes(), big.len()), Datagram::Message);
        assert_eq!(classify(big.as_bytes(), 40), Datagram::Oversized(32));
        assert_eq!(classify(big.as_bytes(), 32), Datagram::Oversized(32));
        assert_eq!(
            classify(big.as_bytes(), 31),
            Datagram::Drop,
            "header block not within the limit"
        );
    }

    #[tokio::test]
    async fn ipv6_sockets_are_v6_only() {
        let socket = bind("[::1]:0".parse().unwrap()).unwrap();
        assert!(socket2::SockRef::from(&socket).only_v6().unwrap());
    }
}
