//! Random interleavings of every input never panic, never produce a
//! deadline in the past, terminate each transaction at most once, and leave
//! no transaction behind once the TU and the peer have answered everything
//! and all timers have fired.

use std::collections::HashSet;
use std::time::Instant;

use proptest::prelude::*;

use super::super::super::message::{Request, Response};
use super::super::{build, ClientTxId, ServerTxId, TimerConfig, TransactionLayer, TxEvent, TxId};
use super::{ms, Peer, Req};

const METHODS: [&str; 5] = ["INVITE", "REGISTER", "CANCEL", "ACK", "BYE"];
const BRANCHES: [&str; 3] = ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"];
const OLD_BRANCHES: [&str; 2] = ["a1", "b1"];
const TAGS: [&str; 2] = ["t1", "t2"];
const STATUSES: [u16; 7] = [100, 180, 200, 202, 486, 603, 700];

#[derive(Debug, Clone)]
enum Op {
    Receive {
        method: usize,
        branch: usize,
        cookie: bool,
        from_tag: usize,
        to_tag: Option<usize>,
        cseq: u32,
        reliable: bool,
    },
    Respond {
        pick: usize,
        status: usize,
    },
    Send {
        invite: bool,
        reliable: bool,
    },
    Answer {
        pick: usize,
        status: usize,
        tag: usize,
    },
    Cancel {
        pick: usize,
    },
    TransportError {
        pick: usize,
        client: bool,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..METHODS.len(), 0..BRANCHES.len(), any::<bool>(), 0..TAGS.len(), proptest::option::of(0..TAGS.len()), 1u32..3, any::<bool>())
            .prop_map(|(method, branch, cookie, from_tag, to_tag, cseq, reliable)| Op::Receive {
                method, branch, cookie, from_tag, to_tag, cseq, reliable
            }),
        2 => (any::<usize>(), 0..STATUSES.len()).prop_map(|(pick, status)| Op::Respond { pick, status }),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(invite, reliable)| Op::Send { invite, reliable }),
        2 => (any::<usize>(), 0..STATUSES.len(), 0..TAGS.len()).prop_map(|(pick, status, tag)| Op::Answer { pick, status, tag }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, client)| Op::TransportError { pick, client }),
        2 => (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// The TU and the peer, as far as the test needs them.
struct World {
    layer: TransactionLayer<Peer>,
    now: Instant,
    servers: Vec<(ServerTxId, Request)>,
    clients: Vec<(ClientTxId, Request)>,
    terminated: HashSet<TxId>,
    sent: u32,
}

impl World {
    fn drain(&mut self) {
        while self.layer.poll_transmit().is_some() {}
        while let Some(e) = self.layer.poll_event() {
            match e {
                TxEvent::Request { tx, request, .. } | TxEvent::Cancel { tx, request, .. } => {
                    self.servers.push((tx, request))
                }
                TxEvent::Terminated { tx } => {
                    assert!(self.terminated.insert(tx), "{tx} terminated twice")
                }
                _ => {}
            }
        }
    }

    fn respond(&mut self, pick: usize, status: u16) {
        if let Some((tx, request)) = self.servers.get(pick % self.servers.len().max(1)) {
            let _ = self
                .layer
                .respond(self.now, *tx, request.response(status, Some("uas")));
        }
    }

    fn answer(&mut self, pick: usize, status: u16, tag: &str) {
        if let Some((_, request)) = self.clients.get(pick % self.clients.len().max(1)) {
            let response: Response = request.response(status, Some(tag));
            self.layer.receive_response(self.now, response);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Receive {
                method,
                branch,
                cookie,
                from_tag,
                to_tag,
                cseq,
                reliable,
            } => {
                let request = Req {
                    method: METHODS[method],
                    branch: if cookie {
                        BRANCHES[branch]
                    } else {
                        OLD_BRANCHES[branch % OLD_BRANCHES.len()]
                    },
                    from_tag: TAGS[from_tag],
                    to_tag: to_tag.map(|t| TAGS[t]),
                    cseq,
                    ..Req::default()
                }
                .build();
                self.layer
                    .receive_request(self.now, request, "peer", reliable);
            }
            Op::Respond { pick, status } => self.respond(pick, STATUSES[status]),
            Op::Send { invite, reliable } => {
                self.sent += 1;
                let mut request = Req {
                    method: if invite { "INVITE" } else { "OPTIONS" },
                    ..Req::default()
                }
                .build();
                request.headers.via[0]
                    .params
                    .set("branch", Some(format!("z9hG4bKout{}", self.sent)));
                if let Ok(tx) = self
                    .layer
                    .send_request(self.now, request.clone(), "peer", reliable)
                {
                    self.clients.push((tx, request));
                }
            }
            Op::Answer { pick, status, tag } => self.answer(pick, STATUSES[status], TAGS[tag]),
            Op::Cancel { pick } => {
                if let Some((tx, request)) =
                    self.clients.get(pick % self.clients.len().max(1)).cloned()
                {
                    if let Ok(Some(cancel)) = self.layer.cancel(self.now, tx) {
                        self.clients
                            .push((cancel, build::cancel(&build::skeleton(&request))));
                    }
                }
            }
            Op::TransportError { pick, client } => {
                let tx: Option<TxId> = if client {
                    self.clients
                        .get(pick % self.clients.len().max(1))
                        .map(|c| c.0.into())
                } else {
                    self.servers
                        .get(pick % self.servers.len().max(1))
                        .map(|s| s.0.into())
                };
                if let Some(tx) = tx {
                    let _ = self.layer.transport_error(tx);
                }
            }
            Op::Advance { ms: step } => {
                self.now += ms(step);
                self.layer.handle_timeout(self.now);
                assert!(
                    self.layer.poll_timeout().is_none_or(|at| at > self.now),
                    "a due timer was left"
                );
            }
        }
        self.drain();
    }
}

proptest! {
    #[test]
    fn random_inputs_never_panic_and_every_transaction_ends(ops in proptest::collection::vec(op(), 0..60)) {
        let mut world = World {
            layer: TransactionLayer::new(TimerConfig::default()),
            now: Instant::now(),
            servers: Vec::new(),
            clients: Vec::new(),
            terminated: HashSet::new(),
            sent: 0,
        };
        for op in ops {
            world.apply(op);
        }
        // The TU answers everything it was given, the peer answers
        // everything that was sent; then every timer runs out.
        for pick in 0..world.servers.len() {
            world.respond(pick, 486);
        }
        for pick in 0..world.clients.len() {
            world.answer(pick, 486, "end");
        }
        world.drain();
        let mut rounds = 0;
        while let Some(at) = world.layer.poll_timeout() {
            rounds += 1;
            prop_assert!(rounds < 100_000, "timers never ran out");
            world.now = at;
            world.layer.handle_timeout(at);
            world.drain();
        }
        prop_assert_eq!(world.layer.live_transactions(), 0);
        prop_assert_eq!(world.layer.queued_timers(), 0);
    }
}
