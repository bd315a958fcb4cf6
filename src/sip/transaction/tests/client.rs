//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2) and CANCEL (§9.1).

use super::super::super::message::{Method, Request};
use super::super::{ClientTxId, TxError, TxEvent, TxId};
use super::{parse_request, Harness, Req};

fn send(h: &mut Harness, request: Request, reliable: bool) -> ClientTxId {
    let tx = h
        .layer
        .send_request(h.now, request, "server", reliable)
        .unwrap();
    h.drain();
    tx
}

fn sent_times(h: &Harness) -> Vec<u64> {
    h.sent.iter().map(|(t, ..)| *t).collect()
}

fn invite() -> Request {
    Req::default().build()
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
fn rfc3261_17_1_1_2_timer_a_doubles_until_timer_b() {
    let mut h = Harness::new();
    let tx = send(&mut h, invite(), false);
    h.run_all();
    assert_eq!(sent_times(&h), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    // Serialized once: every retransmission is the same buffer.
    let first = h.sent[0].2.as_ptr();
    assert!(h
        .sent
        .iter()
        .all(|(_, dest, d)| *dest == "server" && d.as_ptr() == first));
    assert_eq!(
        h.take_events(),
        [
            (32000, TxEvent::Timeout { tx }),
            (32000, TxEvent::Terminated { tx: tx.into() })
        ]
    );
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn rfc3261_17_1_1_2_no_timer_a_on_reliable_transports() {
    let mut h = Harness::new();
    let tx = send(&mut h, invite(), true);
    h.run_all();
    assert_eq!(sent_times(&h), [0]);
    assert_eq!(h.take_events()[0], (32000, TxEvent::Timeout { tx }));
}

#[test]
fn rfc3261_17_1_2_2_timer_e_doubles_up_to_t2_then_timer_f() {
    let mut h = Harness::new();
    let tx = send(&mut h, register(), false);
    h.run_all();
    assert_eq!(
        sent_times(&h),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(h.take_events()[0], (32000, TxEvent::Timeout { tx }));
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn rfc3261_17_1_2_2_timer_e_continues_at_t2_after_a_provisional() {
    let mut h = Harness::new();
    let request = register();
    let tx = send(&mut h, request.clone(), false);
    h.run_until(1000);
    h.receive_response(request.response(100, None));
    assert!(
        matches!(&h.take_events()[..], [(1000, TxEvent::Response { tx: t, response })] if *t == tx && response.status == 100)
    );
    h.run_until(20000);
    // The timer armed at 500 ms still fires at 1500 ms, then every T2.
    assert_eq!(sent_times(&h), [0, 500, 1500, 5500, 9500, 13500, 17500]);
}

#[test]
fn rfc3261_17_1_2_2_timer_f_times_out_on_reliable_transports() {
    let mut h = Harness::new();
    let tx = send(&mut h, register(), true);
    h.run_all();
    assert_eq!(sent_times(&h), [0]);
    assert_eq!(
        h.take_events(),
        [
            (32000, TxEvent::Timeout { tx }),
            (32000, TxEvent::Terminated { tx: tx.into() })
        ]
    );
}

#[test]
fn rfc3261_17_1_1_3_ack_for_a_non_2xx_final_and_resent_on_its_retransmission() {
    let mut h = Harness::new();
    let request = invite();
    let tx = send(&mut h, request.clone(), false);
    let busy = request.response(486, Some("bob-1"));
    h.run_until(100);
    h.receive_response(busy.clone());
    let sent = h.take_sent();
    assert_eq!(
        sent[1],
        (100, "ACK sip:bob@biloxi.example.com SIP/2.0".to_owned())
    );
    assert!(
        matches!(&h.take_events()[..], [(100, TxEvent::Response { tx: t, response })] if *t == tx && response.status == 486)
    );

    // The retransmitted 486 is absorbed and answered with the same ACK.
    h.run_until(10_000);
    assert_eq!(h.take_sent(), [], "Timer A stopped");
    h.receive_response(busy.clone());
    assert_eq!(
        h.take_sent(),
        [(10_000, "ACK sip:bob@biloxi.example.com SIP/2.0".to_owned())]
    );
    assert_eq!(h.take_events(), []);

    // Timer D: 32 s after the 486.
    h.run_all();
    assert_eq!(
        h.take_events(),
        [(32_100, TxEvent::Terminated { tx: tx.into() })]
    );
    h.receive_response(busy.clone());
    assert_eq!(h.take_events(), [(32_100, TxEvent::Stray(busy))]);
}

#[test]
fn rfc3261_17_1_1_3_ack_content() {
    let mut h = Harness::new();
    let request = invite();
    send(&mut h, request.clone(), true);
    h.sent.clear();
    h.receive_response(request.response(404, Some("t404")));
    let ack = parse_request(&h.sent[0].2);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, request.uri);
    assert_eq!(ack.headers.via, request.headers.via[..1]);
    assert_eq!(ack.headers.route, request.headers.route);
    assert_eq!(ack.headers.from, request.headers.from);
    assert_eq!(ack.headers.to.tag(), Some("t404"));
    assert_eq!(ack.headers.call_id, request.headers.call_id);
    assert_eq!(
        (ack.headers.cseq.seq, ack.headers.cseq.method),
        (1, Method::Ack)
    );
    assert_eq!(h.sent[0].1, "server", "the ACK goes where the INVITE went");
}

#[test]
fn rfc3261_17_1_1_2_timer_d_is_zero_on_reliable_transports() {
    let mut h = Harness::new();
    let request = invite();
    let tx = send(&mut h, request.clone(), true);
    h.receive_response(request.response(486, Some("b")));
    assert_eq!(h.take_sent().len(), 2, "INVITE and ACK");
    assert!(
        matches!(h.take_events().last(), Some((0, TxEvent::Terminated { tx: t })) if *t == TxId::from(tx))
    );
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn rfc3261_17_1_2_2_timer_k_absorbs_final_retransmissions() {
    let mut h = Harness::new();
    let request = register();
    let tx = send(&mut h, request.clone(), false);
    let ok = request.response(200, Some("r"));
    h.run_until(100);
    h.receive_response(ok.clone());
    assert_eq!(h.take_events().len(), 1);
    h.run_until(5000);
    h.receive_response(ok.clone());
    assert_eq!(h.take_events(), [], "absorbed in Completed");
    h.run_all();
    assert_eq!(
        h.take_events(),
        [(5100, TxEvent::Terminated { tx: tx.into() })]
    );
    assert_eq!(
        h.take_sent().len(),
        1,
        "no retransmission after the final response"
    );

    // Reliable: Timer K is zero.
    let tx = send(
        &mut h,
        Req {
            branch: "z9hG4bKtcp",
            ..Req::default()
        }
        .build(),
        true,
    );
    h.receive_response(
        Req {
            branch: "z9hG4bKtcp",
            ..Req::default()
        }
        .build()
        .response(500, Some("x")),
    );
    assert!(
        matches!(h.take_events().last(), Some((_, TxEvent::Terminated { tx: t })) if *t == TxId::from(tx))
    );
}

#[test]
fn rfc6026_7_2_accepted_passes_every_2xx_until_timer_m() {
    let mut h = Harness::new();
    let request = invite();
    let tx = send(&mut h, request.clone(), false);
    h.take_sent();
    let ok = request.response(200, Some("fork-a"));
    h.receive_response(ok.clone());
    h.run_until(2000);
    h.receive_response(ok.clone());
    h.receive_response(request.response(200, Some("fork-b")));
    let statuses: Vec<_> = h
        .take_events()
        .into_iter()
        .map(|(at, e)| match e {
            TxEvent::Response { tx: t, response } if t == tx => {
                (at, response.headers.to.tag().map(str::to_owned))
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (0, Some("fork-a".into())),
            (2000, Some("fork-a".into())),
            (2000, Some("fork-b".into()))
        ]
    );
    h.run_all();
    assert_eq!(
        h.take_sent(),
        [],
        "the layer neither retransmits nor ACKs a 2xx"
    );
    assert_eq!(
        h.take_events(),
        [(32000, TxEvent::Terminated { tx: tx.into() })]
    );
    h.receive_response(ok.clone());
    assert_eq!(h.take_events(), [(32000, TxEvent::Stray(ok))]);
}

#[test]
fn rfc3261_17_1_3_responses_match_branch_and_cseq_method() {
    let mut h = Harness::new();
    let request = invite();
    send(&mut h, request.clone(), true);
    let other_branch = Req {
        branch: "z9hG4bKother",
        ..Req::default()
    }
    .build()
    .response(180, None);
    h.receive_response(other_branch.clone());
    let mut wrong_method = request.response(200, Some("x"));
    wrong_method.headers.cseq.method = Method::Bye;
    h.receive_response(wrong_method.clone());
    assert_eq!(
        h.take_events(),
        [
            (0, TxEvent::Stray(other_branch)),
            (0, TxEvent::Stray(wrong_method))
        ]
    );
}

#[test]
fn rfc3261_9_1_cancel_is_held_until_a_provisional_response() {
    let mut h = Harness::new();
    let request = invite();
    let invite_tx = send(&mut h, request.clone(), false);
    let cancel_tx = h.layer.cancel(h.now, invite_tx).unwrap().unwrap();
    h.drain();
    assert_eq!(
        h.layer.cancel(h.now, invite_tx),
        Ok(Some(cancel_tx)),
        "same CANCEL again"
    );
    h.run_until(600);
    assert_eq!(sent_times(&h), [0, 500], "INVITE only");
    h.take_sent();
    h.receive_response(request.response(180, Some("b")));
    let sent: Vec<_> = h
        .sent
        .iter()
        .map(|(t, _, d)| (*t, parse_request(d)))
        .collect();
    assert_eq!(sent.len(), 1);
    let (at, cancel) = &sent[0];
    assert_eq!(*at, 600);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, request.uri);
    assert_eq!(cancel.headers.via, request.headers.via[..1]);
    assert_eq!(
        cancel.headers.to, request.headers.to,
        "the INVITE's To, without the response's tag"
    );
    assert_eq!(cancel.headers.route, request.headers.route);
    assert_eq!(
        (cancel.headers.cseq.seq, &cancel.headers.cseq.method),
        (1, &Method::Cancel)
    );

    // The CANCEL's 200 and the INVITE's 487 go to their own transactions.
    h.receive_response(cancel.response(200, Some("b")));
    h.receive_response(request.response(487, Some("b")));
    let events: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|(_, e)| match e {
            TxEvent::Response { tx, response } => Some((tx, response.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [(invite_tx, 180), (cancel_tx, 200), (invite_tx, 487)]
    );
}

#[test]
fn rfc3261_9_1_held_cancel_is_dropped_by_a_final_response() {
    let mut h = Harness::new();
    let request = invite();
    let invite_tx = send(&mut h, request.clone(), true);
    let cancel_tx = h.layer.cancel(h.now, invite_tx).unwrap().unwrap();
    h.take_sent();
    h.receive_response(request.response(486, Some("b")));
    let sent = h.take_sent();
    assert_eq!(
        sent,
        [(0, "ACK sip:bob@biloxi.example.com SIP/2.0".to_owned())],
        "no CANCEL"
    );
    assert!(h.take_events().contains(&(
        0,
        TxEvent::Terminated {
            tx: cancel_tx.into()
        }
    )));
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn rfc3261_9_1_no_cancel_after_a_final_response() {
    let mut h = Harness::new();
    let request = invite();
    let tx = send(&mut h, request.clone(), false);
    h.receive_response(request.response(603, Some("b")));
    assert_eq!(h.layer.cancel(h.now, tx), Ok(None));
    let reg = send(&mut h, register(), false);
    assert_eq!(h.layer.cancel(h.now, reg), Err(TxError::NotAnInvite(reg)));
    h.run_all();
    assert_eq!(
        h.layer.cancel(h.now, tx),
        Err(TxError::UnknownTransaction(TxId::Client(tx)))
    );
}

#[test]
fn rfc3261_9_1_cancelled_invite_without_final_response_times_out() {
    let mut h = Harness::new();
    let request = invite();
    let tx = send(&mut h, request.clone(), true);
    h.run_until(1000);
    h.receive_response(request.response(180, Some("b")));
    let cancel_tx = h.layer.cancel(h.now, tx).unwrap().unwrap();
    h.drain();
    let cancel = parse_request(&h.sent.last().unwrap().2);
    assert_eq!(cancel.method, Method::Cancel);
    h.receive_response(cancel.response(200, Some("b")));
    // The CANCEL's 200 came, the INVITE's 487 never does: 64*T1 after the
    // CANCEL, the INVITE is given up.
    h.run_all();
    let events = h.take_events();
    assert!(events.contains(&(
        1000,
        TxEvent::Terminated {
            tx: cancel_tx.into()
        }
    )));
    assert!(events.contains(&(33_000, TxEvent::Timeout { tx })));
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn stale_timers_are_pruned_so_poll_timeout_is_exact() {
    let mut h = Harness::new();
    let request = invite();
    send(&mut h, request.clone(), false);
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + super::ms(500)));
    h.receive_response(request.response(180, None));
    assert_eq!(h.layer.poll_timeout(), None, "Proceeding runs no timer");
    assert_eq!(h.layer.queued_timers(), 0);
}

#[test]
fn send_request_rejects_what_is_not_a_transaction() {
    let mut h = Harness::new();
    let ack = Req {
        method: "ACK",
        ..Req::default()
    }
    .build();
    assert_eq!(
        h.layer.send_request(h.now, ack, "s", false),
        Err(TxError::AckIsNotATransaction)
    );
    let old = Req {
        branch: "1234",
        ..Req::default()
    }
    .build();
    assert_eq!(
        h.layer.send_request(h.now, old, "s", false),
        Err(TxError::MissingBranch)
    );
    let mut no_via = invite();
    no_via.headers.via.clear();
    assert_eq!(
        h.layer.send_request(h.now, no_via, "s", false),
        Err(TxError::MissingBranch)
    );
    send(&mut h, invite(), false);
    assert_eq!(
        h.layer.send_request(h.now, invite(), "s", false),
        Err(TxError::DuplicateBranch)
    );
    assert_eq!(h.layer.live_transactions(), 1);
}

#[test]
fn rfc3261_17_1_4_transport_error_terminates_and_informs_the_tu() {
    let mut h = Harness::new();
    let tx = send(&mut h, invite(), false);
    assert_eq!(h.layer.transport_error(tx), Ok(()));
    h.drain();
    assert_eq!(
        h.take_events(),
        [
            (0, TxEvent::TransportError { tx: tx.into() }),
            (0, TxEvent::Terminated { tx: tx.into() })
        ]
    );
    assert_eq!(
        h.layer.transport_error(tx),
        Err(TxError::UnknownTransaction(tx.into()))
    );
    assert_eq!(h.layer.poll_timeout(), None);
}
