//! Two layers talking over a lossy datagram network: the retransmission
//! rules of RFC 3261 §17 recover from lost messages, and each side's TU sees
//! every request and every final response exactly once.

use std::time::Instant;

use super::super::super::message::{parse, Message, Request};
use super::super::{TimerConfig, TransactionLayer, TxEvent};
use super::{ms, Peer, Req};

/// Client and server layers; the server's TU answers every request at once
/// with `answer`. The n-th message towards a side is lost when n is listed.
struct Net {
    t0: Instant,
    now: Instant,
    uac: TransactionLayer<Peer>,
    uas: TransactionLayer<Peer>,
    answer: u16,
    lose_to_uas: &'static [usize],
    lose_to_uac: &'static [usize],
    sent_to_uas: usize,
    sent_to_uac: usize,
    uac_events: Vec<(u64, TxEvent<Peer>)>,
    uas_events: Vec<(u64, TxEvent<Peer>)>,
}

impl Net {
    fn new(answer: u16, lose_to_uas: &'static [usize], lose_to_uac: &'static [usize]) -> Self {
        let t0 = Instant::now();
        Net {
            t0,
            now: t0,
            uac: TransactionLayer::new(TimerConfig::default()),
            uas: TransactionLayer::new(TimerConfig::default()),
            answer,
            lose_to_uas,
            lose_to_uac,
            sent_to_uas: 0,
            sent_to_uac: 0,
            uac_events: Vec::new(),
            uas_events: Vec::new(),
        }
    }

    fn elapsed(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    /// Delivers messages and events until both sides are quiet.
    fn pump(&mut self) {
        let at = self.elapsed();
        loop {
            let mut busy = false;
            while let Some(t) = self.uac.poll_transmit() {
                busy = true;
                let n = self.sent_to_uas;
                self.sent_to_uas += 1;
                if !self.lose_to_uas.contains(&n) {
                    match parse(&t.data) {
                        Ok(Message::Request(r)) => {
                            self.uas.receive_request(self.now, r, "uac", false)
                        }
                        Ok(Message::Response(r)) => self.uas.receive_response(self.now, r),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            while let Some(t) = self.uas.poll_transmit() {
                busy = true;
                let n = self.sent_to_uac;
                self.sent_to_uac += 1;
                if !self.lose_to_uac.contains(&n) {
                    match parse(&t.data) {
                        Ok(Message::Request(r)) => {
                            self.uac.receive_request(self.now, r, "uas", false)
                        }
                        Ok(Message::Response(r)) => self.uac.receive_response(self.now, r),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            while let Some(e) = self.uas.poll_event() {
                busy = true;
                if let TxEvent::Request { tx, request, .. } = &e {
                    let response = request.response(self.answer, Some("uas"));
                    self.uas.respond(self.now, *tx, response).unwrap();
                }
                self.uas_events.push((at, e));
            }
            while let Some(e) = self.uac.poll_event() {
                busy = true;
                self.uac_events.push((at, e));
            }
            if !busy {
                return;
            }
        }
    }

    fn run(&mut self, request: Request) {
        self.uac
            .send_request(self.now, request, "uas", false)
            .unwrap();
        self.pump();
        let limit = self.t0 + ms(120_000);
        loop {
            let next = [self.uac.poll_timeout(), self.uas.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = next.filter(|at| *at <= limit) else {
                break;
            };
            self.now = at;
            self.uac.handle_timeout(at);
            self.uas.handle_timeout(at);
            self.pump();
        }
        assert_eq!(
            self.uac.live_transactions() + self.uas.live_transactions(),
            0
        );
    }

    /// `(ms, status)` of the responses the client's TU saw.
    fn uac_responses(&self) -> Vec<(u64, u16)> {
        self.uac_events
            .iter()
            .filter_map(|(at, e)| match e {
                TxEvent::Response { response, .. } => Some((*at, response.status)),
                _ => None,
            })
            .collect()
    }

    fn uas_requests(&self) -> usize {
        self.uas_events
            .iter()
            .filter(|(_, e)| matches!(e, TxEvent::Request { .. }))
            .count()
    }

    fn timeouts(&self) -> usize {
        self.uac_events
            .iter()
            .chain(&self.uas_events)
            .filter(|(_, e)| matches!(e, TxEvent::Timeout { .. } | TxEvent::ServerTimeout { .. }))
            .count()
    }
}

fn register() -> Request {
    Req {
        method: "REGISTER",
        uri: "sip:biloxi.example.com",
        ..Req::default()
    }
    .build()
}

#[test]
fn rfc3261_17_1_2_2_lost_requests_are_retransmitted_until_one_arrives() {
    // The first two REGISTERs are lost; the one at 1.5 s gets through.
    let mut net = Net::new(200, &[0, 1], &[]);
    net.run(register());
    assert_eq!(net.uac_responses(), [(1500, 200)]);
    assert_eq!(net.uas_requests(), 1);
    assert_eq!(net.timeouts(), 0);
}

#[test]
fn rfc3261_17_2_2_lost_response_is_resent_on_the_retransmitted_request() {
    let mut net = Net::new(200, &[], &[0]);
    net.run(register());
    assert_eq!(net.uac_responses(), [(500, 200)]);
    assert_eq!(net.uas_requests(), 1, "the retransmission was absorbed");
    assert_eq!(net.sent_to_uas, 2);
}

#[test]
fn rfc3261_17_2_1_lost_non_2xx_is_recovered_by_timer_g() {
    // Towards the UAC: 0 = 100 Trying, 1 = 486, 2 = the 486 again at 0.5 s.
    let mut net = Net::new(486, &[], &[1, 2]);
    net.run(Req::default().build());
    assert_eq!(net.uac_responses(), [(0, 100), (1500, 486)]);
    assert_eq!(net.uas_requests(), 1);
    assert_eq!(net.timeouts(), 0, "the ACK reached the server");
    // INVITE, ACK: the 100 stopped Timer A.
    assert_eq!(net.sent_to_uas, 2);
}

#[test]
fn rfc3261_17_1_1_2_lost_ack_is_resent_on_the_retransmitted_final() {
    // Towards the UAS: 0 = INVITE, 1 = ACK (lost), 2 = the ACK again.
    let mut net = Net::new(603, &[1], &[]);
    net.run(Req::default().build());
    assert_eq!(
        net.uac_responses(),
        [(0, 100), (0, 603)],
        "the 603 retransmission was absorbed"
    );
    assert_eq!(net.sent_to_uas, 3);
    assert_eq!(net.sent_to_uac, 3, "100, 603, one Timer G retransmission");
    assert_eq!(net.timeouts(), 0);
}
