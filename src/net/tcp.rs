//! TCP: a listener task per socket and one task per connection, which
//! frames what it reads (RFC 3261 §18.3), answers CRLF keep-alives
//! (RFC 5626 §4.4.1) and writes what the core queues for it.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tracing::{debug, warn};

use super::{
    canonical, deliver, lock, pick_source, stopped, ConnectionId, Inbound, Inner, NetEvent,
    Outbound, SendError, FLUSH_TIMEOUT,
};
use crate::sip::transport::{Frame, FrameError, StreamFramer, Transport};

/// Messages waiting to be written on one connection. Deep enough for a
/// burst of responses and requests in flight; a peer that lets it fill up
/// is not reading, and further messages fail at once rather than pile up.
const OUTGOING_QUEUE: usize = 128;
const READ_CHUNK: usize = 16 * 1024;
/// Time left for a 513 to go out after an oversized message, before the
/// connection that can no longer be framed is closed.
const OVERSIZE_GRACE: Duration = Duration::from_secs(1);
/// Pause after a failed accept (typically out of file descriptors), so
/// the listener does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const LISTEN_BACKLOG: i32 = 1024;

struct Conn {
    transport: Transport,
    remote: SocketAddr,
    queue: mpsc::Sender<Bytes>,
}

/// Open (and opening) connections. Lock order: `conns` before `events`.
#[derive(Default)]
pub(super) struct ConnTable {
    by_id: HashMap<ConnectionId, Conn>,
    /// The most recent connection to each remote address, so a response or
    /// request to an address reuses the connection it already has.
    by_remote: HashMap<(Transport, SocketAddr), ConnectionId>,
}

impl ConnTable {
    fn insert(
        &mut self,
        id: ConnectionId,
        transport: Transport,
        remote: SocketAddr,
        queue: mpsc::Sender<Bytes>,
    ) {
        self.by_remote.insert((transport, remote), id);
        self.by_id.insert(
            id,
            Conn {
                transport,
                remote,
                queue,
            },
        );
    }

    fn remove(&mut self, id: ConnectionId) {
        if let Some(conn) = self.by_id.remove(&id) {
            let key = (conn.transport, conn.remote);
            if self.by_remote.get(&key) == Some(&id) {
                self.by_remote.remove(&key);
            }
        }
    }

    /// The connection to send on: the requested one if still open, else
    /// the one to the destination.
    fn route(
        &self,
        connection: Option<ConnectionId>,
        transport: Transport,
        destination: SocketAddr,
    ) -> Option<(ConnectionId, &Conn)> {
        connection
            .and_then(|id| self.by_id.get(&id).map(|c| (id, c)))
            .or_else(|| {
                let id = *self.by_remote.get(&(transport, destination))?;
                self.by_id.get(&id).map(|c| (id, c))
            })
    }

    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.by_remote.clear();
    }
}

pub(super) fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Rebinding right after a restart must not fail on connections still
    // in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

pub(super) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, local: SocketAddr) {
    let mut stop = inner.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(%local, error = %e, "TCP accept failed");
                tokio::select! {
                    biased;
                    _ = stopped(&mut stop) => return,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let remote = canonical(remote);
        let Some(events) = inner.events() else {
            return;
        };
        let (queue, rx) = mpsc::channel(OUTGOING_QUEUE);
        let id = {
            let mut conns = lock(&inner.conns);
            if conns.by_id.len() >= inner.limits.max_tcp_connections {
                drop(conns);
                // Dropping the stream closes it.
                debug!(%local, %remote, "TCP connection refused: connection limit reached");
                continue;
            }
            let id = inner.next_connection_id();
            conns.insert(id, Transport::Tcp, remote, queue);
            id
        };
        debug!(%local, %remote, connection = %id, "TCP connection accepted");
        let connection = Connection {
            inner: Arc::clone(&inner),
            id,
            transport: Transport::Tcp,
            remote,
            events,
            stop: inner.stop.subscribe(),
        };
        if !inner.spawn(connection.run(stream, rx)) {
            lock(&inner.conns).remove(id);
            return;
        }
    }
}

pub(super) fn send(inner: &Arc<Inner>, out: Outbound) {
    let Outbound {
        transport,
        destination,
        connection,
        mut data,
    } = out;
    let mut conns = lock(&inner.conns);
    // Each pass either sends or drops one stale entry, so this ends.
    while let Some((id, conn)) = conns.route(connection, transport, destination) {
        match conn.queue.try_send(data) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => {
                drop(conns);
                inner.send_failed(transport, destination, Some(id), SendError::QueueFull);
                return;
            }
            // The task has ended and not yet removed its entry.
            Err(mpsc::error::TrySendError::Closed(back)) => {
                data = back;
                conns.remove(id);
            }
        }
    }

    // RFC 3261 §18.1.1 / §18.2.2: no connection, so open one.
    if conns.by_id.len() >= inner.limits.max_tcp_connections {
        drop(conns);
        inner.send_failed(transport, destination, None, SendError::ConnectionLimit);
        return;
    }
    let Some(events) = inner.events() else {
        drop(conns);
        inner.send_failed(transport, destination, None, SendError::ShuttingDown);
        return;
    };
    let (queue, rx) = mpsc::channel(OUTGOING_QUEUE);
    if queue.try_send(data).is_err() {
        // A fresh queue has room; this is only here to not lose a message
        // silently should that ever change.
        drop(conns);
        inner.send_failed(transport, destination, None, SendError::QueueFull);
        return;
    }
    let id = inner.next_connection_id();
    // Registered before the connect completes, so further messages to the
    // same destination queue behind this one instead of opening more
    // connections.
    conns.insert(id, transport, destination, queue);
    drop(conns);
    debug!(%destination, connection = %id, "opening TCP connection");
    let connection = Connection {
        inner: Arc::clone(inner),
        id,
        transport,
        remote: destination,
        events,
        stop: inner.stop.subscribe(),
    };
    if !inner.spawn(connection.connect_and_run(rx)) {
        lock(&inner.conns).remove(id);
        inner.send_failed(transport, destination, None, SendError::ShuttingDown);
    }
}

async fn connect(remote: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(remote).await
}

async fn write_bounded(stream: &mut TcpStream, data: &[u8], limit: Duration) -> io::Result<()> {
    match timeout(limit, stream.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Frames,
    /// After an oversized message: read and throw away until the close, so
    /// unread data does not turn the close into a reset, which would
    /// discard whatever of the 513 is still in our send buffer.
    Discard,
    Stopped,
}

enum End {
    Closed,
    Shutdown,
}

/// One connection's task state.
struct Connection {
    inner: Arc<Inner>,
    id: ConnectionId,
    transport: Transport,
    remote: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn connect_and_run(mut self, mut rx: mpsc::Receiver<Bytes>) {
        // Originate from the listening address when it is a specific one,
        // so the peer sees the same host as in our Via and Contact.
        let source = pick_source(
            self.inner
                .local_addrs
                .iter()
                .filter(|(t, _)| *t == self.transport)
                .map(|(_, a)| (a.ip(), a.ip())),
            self.remote.ip(),
        )
        .filter(|ip| !ip.is_unspecified());
        let connected = tokio::select! {
            biased;
            _ = stopped(&mut self.stop) => Err(SendError::ShuttingDown),
            r = timeout(self.inner.limits.connect_timeout, connect(self.remote, source)) => match r {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(SendError::Connect(e.kind())),
                Err(_) => Err(SendError::ConnectTimeout),
            },
        };
        match connected {
            Ok(stream) => self.run(stream, rx).await,
            Err(error) => {
                debug!(remote = %self.remote, connection = %self.id, %error, "TCP connect failed");
                lock(&self.inner.conns).remove(self.id);
                rx.close();
                while rx.try_recv().is_ok() {
                    let event = self.failure(None, error);
                    deliver(&self.events, &mut self.stop, event).await;
                }
            }
        }
    }

    async fn run(mut self, mut stream: TcpStream, mut rx: mpsc::Receiver<Bytes>) {
        // Every write is a whole message; Nagle would only delay it.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(connection = %self.id, error = %e, "cannot set TCP_NODELAY");
        }
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                debug!(connection = %self.id, error = %e, "connection dead on arrival");
                return self.close(stream, rx, End::Closed).await;
            }
        };
        let idle_timeout = self.inner.limits.tcp_idle_timeout;
        let mut framer = StreamFramer::new(self.inner.limits.max_message_size);
        let mut chunk = vec![0u8; READ_CHUNK];
        // Frames read but not yet accepted by the event queue. While any
        // wait, reading pauses: TCP flow control then slows the peer down.
        let mut pending: VecDeque<NetEvent> = VecDeque::new();
        let mut reading = Reading::Frames;
        let mut close_at: Option<Instant> = None;
        let mut last_activity = Instant::now();
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);

        let end = 'conn: loop {
            // Unbiased: a core that keeps this connection's queue busy must
            // not starve reading, nor the reverse.
            tokio::select! {
                _ = stopped(&mut self.stop) => break 'conn End::Shutdown,
                permit = self.events.reserve(), if !pending.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = pending.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => break 'conn End::Closed,
                },
                out = rx.recv() => {
                    let Some(data) = out else { break 'conn End::Closed };
                    if let Err(e) = write_bounded(&mut stream, &data, idle_timeout).await {
                        debug!(connection = %self.id, error = %e, "TCP write failed");
                        let event = self.failure(Some(self.id), SendError::Io(e.kind()));
                        deliver(&self.events, &mut self.stop, event).await;
                        break 'conn End::Closed;
                    }
                    last_activity = Instant::now();
                }
                read = stream.read(&mut chunk), if pending.is_empty() && reading != Reading::Stopped => {
                    let n = match read {
                        Ok(n) if n > 0 => n,
                        // End of stream or error: finish delivering, then close.
                        _ => {
                            reading = Reading::Stopped;
                            close_at.get_or_insert_with(Instant::now);
                            continue;
                        }
                    };
                    last_activity = Instant::now();
                    if reading == Reading::Discard {
                        continue;
                    }
                    framer.push(&chunk[..n]);
                    while let Some(frame) = framer.next_frame() {
                        match frame {
                            Ok(Frame::Message(data)) => {
                                pending.push_back(NetEvent::Message(self.inbound(local, data)));
                            }
                            Ok(Frame::Ping) => {
                                // RFC 5626 §4.4.1: a double-CRLF ping is
                                // answered with a single CRLF pong.
                                if write_bounded(&mut stream, b"\r\n", idle_timeout).await.is_err() {
                                    break 'conn End::Closed;
                                }
                            }
                            Err(FrameError::TooLarge { head: Some(head) }) => {
                                pending.push_back(NetEvent::Oversized { inbound: self.inbound(local, head) });
                                reading = Reading::Discard;
                                close_at = Some(Instant::now() + OVERSIZE_GRACE);
                            }
                            Err(e) => {
                                debug!(connection = %self.id, remote = %self.remote, error = %e,
                                    "closing connection: stream cannot be framed");
                                reading = Reading::Stopped;
                                close_at = Some(Instant::now());
                            }
                        }
                    }
                }
                _ = &mut idle => {
                    let deadline = last_activity + idle_timeout;
                    if deadline <= Instant::now() {
                        debug!(connection = %self.id, remote = %self.remote, "closing idle TCP connection");
                        break 'conn End::Closed;
                    }
                    idle.as_mut().reset(deadline);
                }
                _ = sleep_until(close_at.unwrap_or_else(Instant::now)), if close_at.is_some() && pending.is_empty() => {
                    break 'conn End::Closed;
                }
            }
        };
        self.close(stream, rx, end).await;
    }

    async fn close(mut self, mut stream: TcpStream, mut rx: mpsc::Receiver<Bytes>, end: End) {
        // Out of the table first, so nothing new is queued behind the
        // messages drained below.
        lock(&self.inner.conns).remove(self.id);
        rx.close();
        match end {
            End::Shutdown => {
                // What the core queued before the shutdown gets a bounded
                // chance to go out.
                let deadline = Instant::now() + FLUSH_TIMEOUT;
                while let Some(data) = rx.recv().await {
                    if !matches!(
                        timeout_at(deadline, stream.write_all(&data)).await,
                        Ok(Ok(()))
                    ) {
                        break;
                    }
                }
            }
            End::Closed => {
                while rx.try_recv().is_ok() {
                    let event = self.failure(Some(self.id), SendError::ConnectionClosed);
                    deliver(&self.events, &mut self.stop, event).await;
                }
            }
        }
        // FIN after the last byte written.
        if let Err(e) = stream.shutdown().await {
            debug!(connection = %self.id, error = %e, "TCP shutdown failed");
        }
        drop(stream);
        debug!(connection = %self.id, remote = %self.remote, "TCP connection closed");
        let event = NetEvent::ConnectionClosed {
            id: self.id,
            remote: self.remote,
        };
        deliver(&self.events, &mut self.stop, event).await;
    }

    fn inbound(&self, local: SocketAddr, data: Bytes) -> Inbound {
        Inbound {
            transport: self.transport,
            local,
            remote: self.remote,
            connection: Some(self.id),
            data,
        }
    }

    fn failure(&self, connection: Option<ConnectionId>, error: SendError) -> NetEvent {
        NetEvent::SendFailed {
            transport: self.transport,
            destination: self.remote,
            connection,
            error,
        }
    }
}
