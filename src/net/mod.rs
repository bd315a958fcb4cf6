//! The tokio side of the SIP transport layer (RFC 3261 §18): the only code
//! in Switchboard that owns sockets.
//!
//! [`Network::bind`] opens the listening sockets and returns a handle plus
//! a stream of [`NetEvent`]s. Everything received goes out as raw bytes;
//! framing on streams and STUN keep-alives are delegated to the sans-IO
//! [`crate::sip::transport`] module. [`Network::send`] never blocks and never
//! awaits: whatever cannot be done on the spot is handed to a task and any
//! failure comes back as [`NetEvent::SendFailed`].
//!
//! The network runs until [`Network::shutdown`] (or until the last handle is
//! dropped, which stops it without waiting for queues to drain).

mod tcp;
mod udp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

pub use crate::sip::transport::{ConnectionId, Transport};

/// Events waiting for the core. When the core falls behind, receive tasks
/// wait (UDP datagrams then queue in the kernel, TCP peers are slowed down
/// by flow control) instead of buffering without bound.
const EVENT_QUEUE: usize = 4096;
/// How long queued outgoing messages may take to flush at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// One socket to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    pub transport: Transport,
    pub address: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLimits {
    /// Largest SIP message accepted, on any transport.
    pub max_message_size: usize,
    /// A TCP connection without traffic in either direction for this long
    /// is closed. Also bounds how long a single write may stall.
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections (inbound and outbound) at most.
    pub max_tcp_connections: usize,
    pub connect_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            // The largest UDP payload; TCP messages beyond it are rare and
            // better refused (RFC 3261 §21.5.14, 513).
            max_message_size: 65_535,
            // Longer than the RFC 5626 §4.4.1 keep-alive interval for
            // connection-oriented transports (95-120 s).
            tcp_idle_timeout: Duration::from_secs(300),
            max_tcp_connections: 10_000,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Raw bytes received, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub transport: Transport,
    /// The address of our socket (the one to put in a Via or Contact).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection it arrived on (stream transports); send responses
    /// back on it (RFC 3261 §18.2.2).
    pub connection: Option<ConnectionId>,
    pub data: Bytes,
}

/// Raw bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub transport: Transport,
    pub destination: SocketAddr,
    /// Preferred connection (stream transports). When it is gone, an open
    /// connection to `destination` is used, else a new one is opened.
    pub connection: Option<ConnectionId>,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// One SIP message (a whole datagram, or one frame of a stream).
    Message(Inbound),
    /// A message over the size limit. `inbound.data` is its header block,
    /// so the core can answer 513 (RFC 3261 §21.5.14); on TCP the connection
    /// is closed shortly afterwards.
    Oversized { inbound: Inbound },
    /// An [`Outbound`] could not be sent. `connection` is the connection it
    /// was queued on, `None` when none was established.
    SendFailed {
        transport: Transport,
        destination: SocketAddr,
        connection: Option<ConnectionId>,
        error: SendError,
    },
    /// A stream connection ended, for whatever reason.
    ConnectionClosed {
        id: ConnectionId,
        remote: SocketAddr,
    },
}

/// Why an [`Outbound`] was not sent.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No socket of that transport can reach the destination's address
    /// family (or a loopback-only socket for a remote destination).
    #[error("no socket for this destination")]
    NoSocket,
    /// The per-connection (or per-UDP-socket) outgoing queue is full.
    #[error("outgoing queue full")]
    QueueFull,
    /// The connection closed before the message was written.
    #[error("connection closed")]
    ConnectionClosed,
    /// Opening a connection would exceed `max_tcp_connections`.
    #[error("connection limit reached")]
    ConnectionLimit,
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("connect failed: {0}")]
    Connect(io::ErrorKind),
    #[error("I/O error: {0}")]
    Io(io::ErrorKind),
    #[error("network shutting down")]
    ShuttingDown,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind {transport} socket on {address}: {source}")]
    Bind {
        transport: Transport,
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Handle to the running network. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    handle: Arc<Handle>,
}

/// Dropping the last [`Network`] stops the tasks (which otherwise keep the
/// network alive through their own references).
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.signal_stop();
    }
}

struct Inner {
    limits: NetLimits,
    runtime: tokio::runtime::Handle,
    local_addrs: Vec<(Transport, SocketAddr)>,
    /// Emptied at shutdown so the sockets close; read-locked per datagram
    /// sent, which is uncontended.
    udp: RwLock<Vec<Arc<udp::Endpoint>>>,
    conns: Mutex<tcp::ConnTable>,
    /// `None` after shutdown, so the event receiver ends once the tasks
    /// (which hold the other senders) are gone.
    events: Mutex<Option<mpsc::Sender<NetEvent>>>,
    /// `None` after shutdown: no new task may start.
    tasks: Mutex<Option<JoinSet<()>>>,
    stop: watch::Sender<bool>,
    stopping: AtomicBool,
    next_connection: AtomicU64,
}

impl Network {
    /// Opens every socket in `specs` and starts their tasks. Port 0 binds an
    /// ephemeral port (see [`local_addrs`](Self::local_addrs)). Must be
    /// called inside a tokio runtime, which then runs all network tasks.
    pub async fn bind(
        specs: &[ListenSpec],
        limits: NetLimits,
    ) -> Result<(Network, mpsc::Receiver<NetEvent>), NetError> {
        // Open every socket before starting anything, so a failure leaves
        // nothing running.
        let mut udp_sockets = Vec::new();
        let mut tcp_listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for spec in specs {
            let bind_error = |source| NetError::Bind {
                transport: spec.transport,
                address: spec.address,
                source,
            };
            match spec.transport {
                Transport::Udp => {
                    let socket = udp::bind(spec.address).map_err(bind_error)?;
                    let local = socket.local_addr().map_err(bind_error)?;
                    local_addrs.push((Transport::Udp, local));
                    udp_sockets.push((Arc::new(socket), local));
                }
                Transport::Tcp => {
                    let listener = tcp::listen(spec.address).map_err(bind_error)?;
                    let local = listener.local_addr().map_err(bind_error)?;
                    local_addrs.push((Transport::Tcp, local));
                    tcp_listeners.push((listener, local));
                }
            }
        }

        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (stop, _) = watch::channel(false);
        let mut endpoints = Vec::new();
        let mut backlogs = Vec::new();
        for (socket, local) in udp_sockets {
            let (endpoint, backlog_rx) = udp::Endpoint::new(Arc::clone(&socket), local);
            endpoints.push(Arc::new(endpoint));
            backlogs.push((socket, local, backlog_rx));
        }
        let inner = Arc::new(Inner {
            limits,
            runtime: tokio::runtime::Handle::current(),
            local_addrs,
            udp: RwLock::new(endpoints),
            conns: Mutex::new(tcp::ConnTable::default()),
            events: Mutex::new(Some(events_tx.clone())),
            tasks: Mutex::new(Some(JoinSet::new())),
            stop,
            stopping: AtomicBool::new(false),
            next_connection: AtomicU64::new(1),
        });
        for (socket, local, backlog_rx) in backlogs {
            inner.spawn(udp::receive_loop(
                Arc::clone(&socket),
                local,
                inner.limits.max_message_size,
                events_tx.clone(),
                inner.stop.subscribe(),
            ));
            inner.spawn(udp::backlog_loop(
                socket,
                backlog_rx,
                events_tx.clone(),
                inner.stop.subscribe(),
            ));
        }
        for (listener, local) in tcp_listeners {
            inner.spawn(tcp::accept_loop(Arc::clone(&inner), listener, local));
        }
        let network = Network {
            handle: Arc::new(Handle { inner }),
        };
        Ok((network, events_rx))
    }

    /// The bound addresses, in the order of the specs, with real ports.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.handle.inner.local_addrs.clone()
    }

    /// Sends without blocking or awaiting; failures are reported as
    /// [`NetEvent::SendFailed`]. Callable from any thread.
    pub fn send(&self, out: Outbound) {
        let inner = &self.handle.inner;
        if inner.stopping.load(Ordering::Relaxed) {
            debug!(destination = %out.destination, "network shut down, message dropped");
            return;
        }
        let out = Outbound {
            destination: canonical(out.destination),
            ..out
        };
        match out.transport {
            Transport::Udp => udp::send(inner, out),
            Transport::Tcp => tcp::send(inner, out),
        }
    }

    /// Stops accepting and receiving, gives queued outgoing messages up to
    /// about a second to be written, then closes every socket. Afterwards
    /// the event receiver ends (once its buffered events are read) and
    /// [`send`](Self::send) drops everything. Idempotent.
    pub async fn shutdown(&self) {
        let inner = &self.handle.inner;
        inner.signal_stop();
        let tasks = lock(&inner.tasks).take();
        lock(&inner.events).take();
        // The receive tasks hold the other references; the sockets close
        // when those end.
        inner
            .udp
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Some(mut tasks) = tasks {
            let drained = tokio::time::timeout(FLUSH_TIMEOUT + Duration::from_secs(1), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                warn!(
                    remaining = tasks.len(),
                    "network tasks did not stop in time, aborting them"
                );
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
        lock(&inner.conns).clear();
    }
}

impl Inner {
    fn signal_stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.send_replace(true);
    }

    /// Runs `task` on the network's runtime, unless shutting down.
    fn spawn<F>(&self, task: F) -> bool
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = lock(&self.tasks);
        let Some(set) = tasks.as_mut() else {
            return false;
        };
        // Reap finished tasks so the set only holds live ones.
        while set.try_join_next().is_some() {}
        set.spawn_on(task, &self.runtime);
        true
    }

    fn events(&self) -> Option<mpsc::Sender<NetEvent>> {
        lock(&self.events).clone()
    }

    fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed))
    }

    /// Reports a failure from a context that must not wait.
    fn send_failed(
        &self,
        transport: Transport,
        destination: SocketAddr,
        connection: Option<ConnectionId>,
        error: SendError,
    ) {
        debug!(%transport, %destination, %error, "send failed");
        if let Some(events) = lock(&self.events).as_ref() {
            report_now(
                events,
                NetEvent::SendFailed {
                    transport,
                    destination,
                    connection,
                    error,
                },
            );
        }
    }
}

/// Queues an event without waiting; when the core is this far behind the
/// event is dropped (and logged) rather than stalling the caller.
fn report_now(events: &mpsc::Sender<NetEvent>, event: NetEvent) {
    if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
        warn!(?event, "event queue full, event dropped");
    }
}

/// Delivers an event, waiting for room unless the network is stopping.
async fn deliver(
    events: &mpsc::Sender<NetEvent>,
    stop: &mut watch::Receiver<bool>,
    event: NetEvent,
) {
    if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
        tokio::select! {
            biased;
            _ = stopped(stop) => {}
            _ = events.send(event) => {}
        }
    }
}

/// Resolves once the network is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|&s| s).await;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind
    // (tables, senders) that is still consistent enough to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// IPv4-mapped IPv6 addresses are written as IPv4: our IPv6 sockets are
/// IPv6-only, so the IPv4 socket is the one that can reach them.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            // Keeps the scope id a link-local address needs.
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// How well a local address suits sending to `destination`, without a
/// routing table: `None` when it cannot (other family, or loopback-only for
/// a remote destination); the same address is best, then the longest common
/// prefix (same subnet), then a wildcard address (the kernel routes).
fn source_score(local: IpAddr, destination: IpAddr) -> Option<u32> {
    let common_prefix = match (local, destination) {
        (IpAddr::V4(l), IpAddr::V4(d)) => (u32::from(l) ^ u32::from(d)).leading_zeros(),
        (IpAddr::V6(l), IpAddr::V6(d)) => (u128::from(l) ^ u128::from(d)).leading_zeros(),
        _ => return None,
    };
    if local.is_unspecified() {
        Some(0)
    } else if local.is_loopback() && !destination.is_loopback() {
        None
    } else {
        Some(common_prefix + 1)
    }
}

/// The best of `candidates` for `destination` by [`source_score`]; the
/// first one wins ties.
fn pick_source<T>(
    candidates: impl IntoIterator<Item = (IpAddr, T)>,
    destination: IpAddr,
) -> Option<T> {
    let mut best: Option<(u32, T)> = None;
    for (ip, item) in candidates {
        if let Some(score) = source_score(ip, destination) {
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, item));
            }
        }
    }
    best.map(|(_, item)| item)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn source_selection() {
        let locals = [
            ip("0.0.0.0"),
            ip("10.0.0.1"),
            ip("192.168.1.1"),
            ip("127.0.0.1"),
            ip("::"),
        ];
        let pick = |d: &str| pick_source(locals.iter().map(|&l| (l, l)), ip(d));
        assert_eq!(pick("192.168.1.77"), Some(ip("192.168.1.1")));
        assert_eq!(pick("10.9.9.9"), Some(ip("10.0.0.1")));
        assert_eq!(pick("127.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(pick("2001:db8::1"), Some(ip("::")));

        let loopback_only = [ip("127.0.0.1")];
        assert_eq!(
            pick_source(loopback_only.iter().map(|&l| (l, l)), ip("192.0.2.1")),
            None
        );
        assert_eq!(
            pick_source(loopback_only.iter().map(|&l| (l, l)), ip("::1")),
            None
        );
        let wildcard_first = [ip("0.0.0.0"), ip("0.0.0.0")];
        assert_eq!(
            pick_source(
                wildcard_first.iter().enumerate().map(|(i, &l)| (l, i)),
                ip("1.2.3.4")
            ),
            Some(0)
        );
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let a: SocketAddr = "[::ffff:192.0.2.1]:5060".parse().unwrap();
        assert_eq!(
            canonical(a),
            "192.0.2.1:5060".parse::<SocketAddr>().unwrap()
        );
        let b: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        assert_eq!(canonical(b), b);
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            5060,
            0,
            3,
        ));
        assert_eq!(canonical(scoped), scoped);
    }
}
