//! The network over real loopback sockets (127.0.0.1 and [::1] only).
//! Every test is bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use switchboard::net::{Inbound, ListenSpec, NetEvent, NetLimits, Network, Outbound, SendError};
use switchboard::sip::transport::{ConnectionId, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::Receiver;
use tokio::time::{sleep, timeout};

/// Longest wait for any single expected thing.
const WAIT: Duration = Duration::from_secs(5);

async fn bounded<F: Future<Output = ()>>(test: F) {
    timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

fn spec(transport: Transport, address: &str) -> ListenSpec {
    ListenSpec {
        transport,
        address: address.parse().unwrap(),
    }
}

async fn start(specs: &[ListenSpec], limits: NetLimits) -> (Network, Receiver<NetEvent>) {
    Network::bind(specs, limits).await.unwrap()
}

fn addr(net: &Network, transport: Transport, v6: bool) -> SocketAddr {
    net.local_addrs()
        .into_iter()
        .find(|(t, a)| *t == transport && a.is_ipv6() == v6)
        .map(|(_, a)| a)
        .unwrap()
}

async fn next_event(rx: &mut Receiver<NetEvent>) -> NetEvent {
    timeout(WAIT, rx.recv())
        .await
        .expect("no event in time")
        .expect("event stream ended")
}

async fn next_message(rx: &mut Receiver<NetEvent>) -> Inbound {
    match next_event(rx).await {
        NetEvent::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Asserts that no event arrives for a little while.
async fn no_event(rx: &mut Receiver<NetEvent>) {
    if let Ok(event) = timeout(Duration::from_millis(200), rx.recv()).await {
        panic!("unexpected event {event:?}");
    }
}

fn request(method: &str, body: &str) -> String {
    format!(
        "{method} sip:agent@example.com SIP/2.0\r\nVia: SIP/2.0/TCP client.example.com;branch=z9hG4bK{}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        body.len()
    )
}

fn outbound(
    transport: Transport,
    destination: SocketAddr,
    connection: Option<ConnectionId>,
    data: &str,
) -> Outbound {
    Outbound {
        transport,
        destination,
        connection,
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

async fn read_exact_string(stream: &mut TcpStream, len: usize) -> String {
    let mut buf = vec![0; len];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read timed out")
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// Reads until the peer closes; returns what was read.
async fn read_to_close(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut data))
        .await
        .expect("connection not closed in time")?;
    Ok(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_request_in_reply_out_v4_and_v6() {
    bounded(async {
        for (listen, client_addr) in [("127.0.0.1:0", "127.0.0.1:0"), ("[::1]:0", "[::1]:0")] {
            let (net, mut rx) = start(&[spec(Transport::Udp, listen)], NetLimits::default()).await;
            let server = net.local_addrs()[0].1;
            assert_ne!(server.port(), 0);
            let client = UdpSocket::bind(client_addr).await.unwrap();
            let req = request("OPTIONS", "");
            client.send_to(req.as_bytes(), server).await.unwrap();

            let m = next_message(&mut rx).await;
            assert_eq!(m.transport, Transport::Udp);
            assert_eq!(m.local, server);
            assert_eq!(m.remote, client.local_addr().unwrap());
            assert_eq!(m.connection, None);
            assert_eq!(m.data, req.as_bytes());

            let reply = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
            net.send(outbound(Transport::Udp, m.remote, None, reply));
            let mut buf = [0u8; 2048];
            let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..n], reply.as_bytes());
            assert_eq!(from, server);
            net.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn udp_send_without_socket_of_that_family_fails() {
    bounded(async {
        let (net, mut rx) =
            start(&[spec(Transport::Udp, "127.0.0.1:0")], NetLimits::default()).await;
        let destination: SocketAddr = "[::1]:5060".parse().unwrap();
        net.send(outbound(Transport::Udp, destination, None, "x"));
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::SendFailed {
                transport: Transport::Udp,
                destination,
                connection: None,
                error: SendError::NoSocket
            }
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn udp_oversized_and_blank_datagrams() {
    bounded(async {
        let limits = NetLimits {
            max_message_size: 300,
            ..NetLimits::default()
        };
        let (net, mut rx) = start(&[spec(Transport::Udp, "127.0.0.1:0")], limits).await;
        let server = net.local_addrs()[0].1;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();

        // Blank keep-alives are ignored.
        client.send_to(b"\r\n\r\n", server).await.unwrap();
        client.send_to(b" ", server).await.unwrap();
        // Over the limit with no header block in it: dropped.
        client.send_to(&[b'x'; 500], server).await.unwrap();
        // Over the limit with a header block: delivered as Oversized.
        let big = request("MESSAGE", &"b".repeat(500));
        client.send_to(big.as_bytes(), server).await.unwrap();
        match next_event(&mut rx).await {
            NetEvent::Oversized { inbound } => {
                let head_len = big.find("\r\n\r\n").unwrap() + 4;
                assert_eq!(inbound.data, &big.as_bytes()[..head_len]);
                assert_eq!(inbound.remote, client.local_addr().unwrap());
            }
            other => panic!("expected Oversized, got {other:?}"),
        }
        let small = request("MESSAGE", "hi");
        client.send_to(small.as_bytes(), server).await.unwrap();
        assert_eq!(next_message(&mut rx).await.data, small.as_bytes());
        net.shutdown().await;
    })
    .await;
}

/// A STUN Binding request (RFC 5389 §6) without attributes.
fn stun_request(transaction_id: [u8; 12]) -> Vec<u8> {
    let mut r = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    r.extend_from_slice(&transaction_id);
    r
}

/// Decodes XOR-MAPPED-ADDRESS from a Binding success response.
fn stun_mapped_address(response: &[u8], transaction_id: [u8; 12]) -> SocketAddr {
    assert_eq!(&response[0..2], &[0x01, 0x01], "Binding success response");
    assert_eq!(&response[8..20], &transaction_id);
    let attr = &response[20..];
    assert_eq!(&attr[0..2], &[0x00, 0x20], "XOR-MAPPED-ADDRESS");
    let mut key = vec![0x21, 0x12, 0xA4, 0x42];
    key.extend_from_slice(&transaction_id);
    let port = u16::from_be_bytes([attr[6] ^ key[0], attr[7] ^ key[1]]);
    let ip: IpAddr = match attr[5] {
        1 => {
            let b: Vec<u8> = attr[8..12].iter().zip(&key).map(|(a, k)| a ^ k).collect();
            [b[0], b[1], b[2], b[3]].into()
        }
        2 => {
            let mut b = [0u8; 16];
            for (i, (a, k)) in attr[8..24].iter().zip(&key).enumerate() {
                b[i] = a ^ k;
            }
            b.into()
        }
        f => panic!("family {f}"),
    };
    SocketAddr::new(ip, port)
}

#[tokio::test]
async fn stun_binding_requests_are_answered_not_delivered() {
    bounded(async {
        let (net, mut rx) = start(
            &[
                spec(Transport::Udp, "127.0.0.1:0"),
                spec(Transport::Udp, "[::1]:0"),
            ],
            NetLimits::default(),
        )
        .await;
        for v6 in [false, true] {
            let server = addr(&net, Transport::Udp, v6);
            let client = UdpSocket::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" })
                .await
                .unwrap();
            let txid = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 42, if v6 { 6 } else { 4 }];
            client.send_to(&stun_request(txid), server).await.unwrap();
            let mut buf = [0u8; 512];
            let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(from, server);
            assert_eq!(
                stun_mapped_address(&buf[..n], txid),
                client.local_addr().unwrap()
            );

            // The next event is the SIP message sent after the STUN request.
            let req = request("OPTIONS", "");
            client.send_to(req.as_bytes(), server).await.unwrap();
            assert_eq!(next_message(&mut rx).await.data, req.as_bytes());
        }
        net.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_across_partial_writes() {
    bounded(async {
        let (net, mut rx) =
            start(&[spec(Transport::Tcp, "127.0.0.1:0")], NetLimits::default()).await;
        let server = net.local_addrs()[0].1;
        let mut client = TcpStream::connect(server).await.unwrap();

        let a = request("INVITE", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n\r\n");
        for piece in [&a[..10], &a[10..a.len() - 20], &a[a.len() - 20..]] {
            client.write_all(piece.as_bytes()).await.unwrap();
            client.flush().await.unwrap();
            sleep(Duration::from_millis(30)).await;
        }
        let first = next_message(&mut rx).await;
        assert_eq!(first.data, a.as_bytes());
        assert_eq!(first.transport, Transport::Tcp);
        assert_eq!(first.local, server);
        assert_eq!(first.remote, client.local_addr().unwrap());
        let id = first.connection.expect("connection id");

        // Two messages and a separating CRLF in one write.
        let b = request("ACK", "");
        let c = request("BYE", "x");
        client
            .write_all(format!("{b}\r\n{c}").as_bytes())
            .await
            .unwrap();
        for expected in [&b, &c] {
            let m = next_message(&mut rx).await;
            assert_eq!(m.data, expected.as_bytes());
            assert_eq!(m.connection, Some(id));
        }

        // A response goes back on the connection.
        let ok = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        net.send(outbound(Transport::Tcp, first.remote, Some(id), ok));
        assert_eq!(read_exact_string(&mut client, ok.len()).await, ok);

        drop(client);
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed {
                id,
                remote: first.remote
            }
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tcp_ping_is_answered_with_pong_over_ipv6() {
    bounded(async {
        let (net, mut rx) = start(&[spec(Transport::Tcp, "[::1]:0")], NetLimits::default()).await;
        let server = net.local_addrs()[0].1;
        let mut client = TcpStream::connect(server).await.unwrap();
        client.write_all(b"\r\n\r\n").await.unwrap();
        assert_eq!(read_exact_string(&mut client, 2).await, "\r\n");
        // A ping split over two writes is still a ping.
        client.write_all(b"\r\n").await.unwrap();
        sleep(Duration::from_millis(30)).await;
        client.write_all(b"\r\n").await.unwrap();
        assert_eq!(read_exact_string(&mut client, 2).await, "\r\n");
        no_event(&mut rx).await;

        let req = request("OPTIONS", "");
        client.write_all(req.as_bytes()).await.unwrap();
        assert_eq!(next_message(&mut rx).await.data, req.as_bytes());
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_tcp_message_gives_oversized_then_close() {
    bounded(async {
        let limits = NetLimits {
            max_message_size: 1024,
            ..NetLimits::default()
        };
        let (net, mut rx) = start(&[spec(Transport::Tcp, "127.0.0.1:0")], limits).await;
        let server = net.local_addrs()[0].1;
        let mut client = TcpStream::connect(server).await.unwrap();
        let head = "INVITE sip:agent@example.com SIP/2.0\r\nVia: SIP/2.0/TCP c;branch=z9hG4bK1\r\nContent-Length: 5000\r\n\r\n";
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(&[b'v'; 3000]).await.unwrap();

        let inbound = match next_event(&mut rx).await {
            NetEvent::Oversized { inbound } => inbound,
            other => panic!("expected Oversized, got {other:?}"),
        };
        assert_eq!(inbound.data, head.as_bytes());
        let id = inbound.connection.expect("connection id");
        // The rest of the body arrives after the server gave up framing; it
        // must not turn the close into a reset that loses the 513.
        client.write_all(&[b'v'; 2000]).await.unwrap();

        // The 513 still goes out within the grace period, then the close.
        let too_large = "SIP/2.0 513 Message Too Large\r\nContent-Length: 0\r\n\r\n";
        net.send(outbound(Transport::Tcp, inbound.remote, Some(id), too_large));
        // A client slow to read still gets it: the close is orderly.
        sleep(Duration::from_millis(1500)).await;
        let received = read_to_close(&mut client).await.unwrap();
        assert_eq!(String::from_utf8(received).unwrap(), too_large);
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed {
                id,
                remote: inbound.remote
            }
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn missing_content_length_closes_the_connection() {
    bounded(async {
        let (net, mut rx) =
            start(&[spec(Transport::Tcp, "127.0.0.1:0")], NetLimits::default()).await;
        let server = net.local_addrs()[0].1;
        let mut client = TcpStream::connect(server).await.unwrap();
        let good = request("OPTIONS", "");
        client
            .write_all(
                format!("{good}OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP c\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        // The message before the unframeable one is still delivered.
        let m = next_message(&mut rx).await;
        assert_eq!(m.data, good.as_bytes());
        assert!(read_to_close(&mut client).await.unwrap().is_empty());
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed { .. }
        ));
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn idle_tcp_connection_is_closed() {
    bounded(async {
        let limits = NetLimits {
            tcp_idle_timeout: Duration::from_millis(400),
            ..NetLimits::default()
        };
        let (net, mut rx) = start(&[spec(Transport::Tcp, "127.0.0.1:0")], limits).await;
        let server = net.local_addrs()[0].1;
        let mut client = TcpStream::connect(server).await.unwrap();
        // Traffic keeps it open well past the idle timeout.
        let mut last_traffic = tokio::time::Instant::now();
        for _ in 0..6 {
            sleep(Duration::from_millis(150)).await;
            client.write_all(b"\r\n\r\n").await.unwrap();
            assert_eq!(read_exact_string(&mut client, 2).await, "\r\n");
            last_traffic = tokio::time::Instant::now();
        }
        // Then silence closes it.
        assert!(read_to_close(&mut client).await.unwrap().is_empty());
        let silence = last_traffic.elapsed();
        assert!(
            silence >= Duration::from_millis(300),
            "closed after {silence:?} of silence"
        );
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed { .. }
        ));
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn send_to_tcp_destination_without_connection_opens_one() {
    bounded(async {
        let (net, mut rx) =
            start(&[spec(Transport::Tcp, "127.0.0.1:0")], NetLimits::default()).await;
        let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let destination = peer.local_addr().unwrap();

        let first = request("INVITE", "sdp");
        let second = request("CANCEL", "");
        net.send(outbound(Transport::Tcp, destination, None, &first));
        net.send(outbound(Transport::Tcp, destination, None, &second));
        let (mut stream, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
        // Both went over the one connection, in order.
        assert_eq!(read_exact_string(&mut stream, first.len()).await, first);
        assert_eq!(read_exact_string(&mut stream, second.len()).await, second);

        // The new connection also receives.
        let ok = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        stream.write_all(ok.as_bytes()).await.unwrap();
        let m = next_message(&mut rx).await;
        assert_eq!(m.data, ok.as_bytes());
        assert_eq!(m.remote, destination);
        let id = m.connection.expect("connection id");

        // And is reused for the next message to that destination.
        let ack = request("ACK", "");
        net.send(outbound(Transport::Tcp, destination, None, &ack));
        assert_eq!(read_exact_string(&mut stream, ack.len()).await, ack);
        assert!(
            timeout(Duration::from_millis(200), peer.accept())
                .await
                .is_err(),
            "no second connection"
        );

        drop(stream);
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed {
                id,
                remote: destination
            }
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn full_connection_queue_fails_fast() {
    bounded(async {
        let (net, mut rx) = start(&[], NetLimits::default()).await;
        let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let destination = peer.local_addr().unwrap();
        // On this single-threaded runtime the connection task cannot run
        // before this loop yields, so everything queues behind the connect.
        let total = 200;
        for i in 0..total {
            net.send(outbound(
                Transport::Tcp,
                destination,
                None,
                &format!("{i:03}"),
            ));
        }
        let mut failed = 0;
        while failed < total - 128 {
            match next_event(&mut rx).await {
                NetEvent::SendFailed {
                    error: SendError::QueueFull,
                    connection: Some(_),
                    ..
                } => failed += 1,
                other => panic!("expected QueueFull, got {other:?}"),
            }
        }
        // The queued ones are written in order once connected.
        let (mut stream, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
        let expected: String = (0..128).map(|i| format!("{i:03}")).collect();
        assert_eq!(
            read_exact_string(&mut stream, expected.len()).await,
            expected
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_network() {
    bounded(async {
        let (net, mut rx) = start(
            &[
                spec(Transport::Udp, "127.0.0.1:0"),
                spec(Transport::Tcp, "127.0.0.1:0"),
            ],
            NetLimits::default(),
        )
        .await;
        let tcp = addr(&net, Transport::Tcp, false);
        let mut client = TcpStream::connect(tcp).await.unwrap();
        client
            .write_all(request("OPTIONS", "").as_bytes())
            .await
            .unwrap();
        next_message(&mut rx).await;
        drop(net.clone());
        no_event(&mut rx).await;
        drop(net);
        assert!(read_to_close(&mut client).await.unwrap().is_empty());
        while timeout(WAIT, rx.recv())
            .await
            .expect("event stream did not end")
            .is_some()
        {}
    })
    .await;
}

#[tokio::test]
async fn tcp_connect_failure_is_reported() {
    bounded(async {
        let (net, mut rx) = start(&[], NetLimits::default()).await;
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        net.send(outbound(Transport::Tcp, closed, None, "x"));
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::SendFailed {
                transport: Transport::Tcp,
                destination: closed,
                connection: None,
                error: SendError::Connect(io::ErrorKind::ConnectionRefused)
            }
        );
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tcp_connection_limit_is_enforced() {
    bounded(async {
        let limits = NetLimits {
            max_tcp_connections: 2,
            ..NetLimits::default()
        };
        let (net, mut rx) = start(&[spec(Transport::Tcp, "127.0.0.1:0")], limits).await;
        let server = net.local_addrs()[0].1;
        let req = request("OPTIONS", "");

        let mut open = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(server).await.unwrap();
            c.write_all(req.as_bytes()).await.unwrap();
            let m = next_message(&mut rx).await;
            open.push((c, m.connection.unwrap(), m.remote));
        }
        // The third is accepted by the kernel, then closed by the server.
        let mut third = TcpStream::connect(server).await.unwrap();
        let _ = third.write_all(req.as_bytes()).await;
        let _ = read_to_close(&mut third).await;
        no_event(&mut rx).await;

        // Outbound connections count too.
        let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let destination = peer.local_addr().unwrap();
        net.send(outbound(Transport::Tcp, destination, None, &req));
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::SendFailed {
                transport: Transport::Tcp,
                destination,
                connection: None,
                error: SendError::ConnectionLimit
            }
        );

        // The admitted ones still work; closing one frees a slot.
        open[1].0.write_all(req.as_bytes()).await.unwrap();
        assert_eq!(next_message(&mut rx).await.connection, Some(open[1].1));
        let (first, id, remote) = open.remove(0);
        drop(first);
        assert_eq!(
            next_event(&mut rx).await,
            NetEvent::ConnectionClosed { id, remote }
        );
        let mut fourth = TcpStream::connect(server).await.unwrap();
        fourth.write_all(req.as_bytes()).await.unwrap();
        assert_eq!(next_message(&mut rx).await.data, req.as_bytes());
        net.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_closes_and_ends_the_event_stream() {
    bounded(async {
        let (net, mut rx) = start(
            &[
                spec(Transport::Udp, "127.0.0.1:0"),
                spec(Transport::Tcp, "127.0.0.1:0"),
            ],
            NetLimits::default(),
        )
        .await;
        let udp = addr(&net, Transport::Udp, false);
        let tcp = addr(&net, Transport::Tcp, false);
        let mut client = TcpStream::connect(tcp).await.unwrap();
        let req = request("OPTIONS", "");
        client.write_all(req.as_bytes()).await.unwrap();
        let m = next_message(&mut rx).await;

        // Queued just before the shutdown: still written.
        let ok = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        net.send(outbound(Transport::Tcp, m.remote, m.connection, ok));
        let other_handle = net.clone();
        net.shutdown().await;
        assert_eq!(read_to_close(&mut client).await.unwrap(), ok.as_bytes());

        // The event stream ends.
        let mut rest = Vec::new();
        while let Some(event) = timeout(WAIT, rx.recv())
            .await
            .expect("event stream did not end")
        {
            rest.push(event);
        }
        assert!(
            rest.iter()
                .all(|e| matches!(e, NetEvent::ConnectionClosed { .. })),
            "{rest:?}"
        );

        // Sending afterwards is a no-op, and the ports are free again.
        other_handle.send(outbound(Transport::Udp, udp, None, "x"));
        let (again, _rx) = start(
            &[
                spec(Transport::Udp, &udp.to_string()),
                spec(Transport::Tcp, &tcp.to_string()),
            ],
            NetLimits::default(),
        )
        .await;
        again.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    bounded(async {
        let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap();
        let err = match Network::bind(
            &[spec(Transport::Udp, &address.to_string())],
            NetLimits::default(),
        )
        .await
        {
            Ok(_) => panic!("bound a port already in use"),
            Err(e) => e,
        };
        assert!(err.to_string().contains(&address.to_string()), "{err}");
    })
    .await;
}
