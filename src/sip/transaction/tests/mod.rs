//! Layer tests on a virtual clock: `t0 = Instant::now()`, and time moves by
//! jumping to `poll_timeout()`, so a 32 s timer schedule runs in
//! microseconds. One behaviour per test, named after its RFC section.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod loss;
mod memory;
mod prop;
mod server;

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::message::{parse, Message, Request, Response};
use super::{TimerConfig, TransactionLayer, TxEvent};

/// Where a message came from or goes to: the layer never looks inside.
pub(super) type Peer = &'static str;

/// The fields of a test request that matter for matching.
#[derive(Clone, Copy)]
pub(super) struct Req {
    pub method: &'static str,
    pub uri: &'static str,
    pub branch: &'static str,
    pub sent_by: &'static str,
    pub from_tag: &'static str,
    pub to_tag: Option<&'static str>,
    pub call_id: &'static str,
    pub cseq: u32,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            method: "INVITE",
            uri: "sip:bob@biloxi.example.com",
            branch: "z9hG4bK74bf9",
            sent_by: "pc33.atlanta.example.com:5060",
            from_tag: "9fxced76sl",
            to_tag: None,
            call_id: "3848276298220188511@atlanta.example.com",
            cseq: 1,
        }
    }
}

impl Req {
    pub fn build(&self) -> Request {
        let to_tag = self.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let text = format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by};branch={branch}\r\nMax-Forwards: 70\r\n\
             Route: <sip:edge.example.com;lr>\r\n\
             From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}\r\nTo: Bob <sip:bob@biloxi.example.com>{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {m}\r\nContact: <sip:alice@192.0.2.101>\r\n\
             Content-Length: 0\r\n\r\n",
            m = self.method,
            uri = self.uri,
            sent_by = self.sent_by,
            branch = self.branch,
            from_tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The start line of a transmitted message, for readable assertions.
pub(super) fn start_line(data: &Bytes) -> String {
    let text = String::from_utf8_lossy(data);
    text.lines().next().unwrap_or_default().to_owned()
}

pub(super) fn parse_request(data: &Bytes) -> Request {
    match parse(data) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

pub(super) fn parse_response(data: &Bytes) -> Response {
    match parse(data) {
        Ok(Message::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// A layer on a virtual clock, recording what it sends and reports with the
/// time (ms after t0) at which it did.
pub(super) struct Harness {
    pub layer: TransactionLayer<Peer>,
    pub t0: Instant,
    pub now: Instant,
    pub sent: Vec<(u64, Peer, Bytes)>,
    pub events: Vec<(u64, TxEvent<Peer>)>,
}

impl Harness {
    pub fn new() -> Self {
        let t0 = Instant::now();
        Harness {
            layer: TransactionLayer::new(TimerConfig::default()),
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    /// Collects what the layer queued.
    pub fn drain(&mut self) {
        let at = self.elapsed_ms();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((at, t.dest, t.data));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((at, e));
        }
    }

    /// Fires every timer up to `t0 + until_ms`, jumping from deadline to
    /// deadline, and leaves the clock there.
    pub fn run_until(&mut self, until_ms: u64) {
        let limit = self.t0 + ms(until_ms);
        while let Some(at) = self.layer.poll_timeout().filter(|at| *at <= limit) {
            assert!(at >= self.now, "a deadline in the past");
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = limit;
    }

    /// Fires every timer until none is left.
    pub fn run_all(&mut self) {
        for _ in 0..10_000 {
            let Some(at) = self.layer.poll_timeout() else {
                return;
            };
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        panic!("timers never ran out");
    }

    pub fn receive(&mut self, request: Request, reliable: bool) {
        self.layer
            .receive_request(self.now, request, "peer", reliable);
        self.drain();
    }

    pub fn receive_response(&mut self, response: Response) {
        self.layer.receive_response(self.now, response);
        self.drain();
    }

    /// Takes what was sent so far: `(ms, start line)`.
    pub fn take_sent(&mut self) -> Vec<(u64, String)> {
        self.sent
            .drain(..)
            .map(|(at, _, d)| (at, start_line(&d)))
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<(u64, TxEvent<Peer>)> {
        std::mem::take(&mut self.events)
    }
}

/// Per-transaction records stay small: at 20,000 REGISTERs per second each
/// living 32 s (Timer J), over 600,000 are alive at once.
#[test]
fn transaction_records_stay_small() {
    use std::net::SocketAddr;
    let server = super::layer::size::server_tx::<SocketAddr>();
    let client = super::layer::size::client_tx::<SocketAddr>();
    assert!(server <= 176, "ServerTx<SocketAddr> is {server} bytes");
    eprintln!("ServerTx<SocketAddr>: {server} bytes, ClientTx<SocketAddr>: {client} bytes");
    assert!(client <= 208, "ClientTx<SocketAddr> is {client} bytes");
}
