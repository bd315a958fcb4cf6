//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1), merged requests
//! (§8.2.2.2) and CANCEL matching (§9.2).

use super::super::super::message::Request;
use super::super::{ServerTxId, TxError, TxEvent, TxId};
use super::{parse_response, Harness, Req};

/// The transaction of the only `Request` event so far.
fn new_request(h: &mut Harness) -> ServerTxId {
    match &h.take_events()[..] {
        [(_, TxEvent::Request { tx, .. })] => *tx,
        other => panic!("{other:?}"),
    }
}

fn respond(h: &mut Harness, tx: ServerTxId, request: &Request, status: u16) {
    h.layer
        .respond(h.now, tx, request.response(status, Some("uas-tag")))
        .unwrap();
    h.drain();
}

fn register() -> Request {
    Req {
        method: "REGISTER",
        uri: "sip:biloxi.example.com",
        ..Req::default()
    }
    .build()
}

fn ack_for(invite: &Req, to_tag: &'static str) -> Request {
    Req {
        method: "ACK",
        to_tag: Some(to_tag),
        ..*invite
    }
    .build()
}

fn sent_times(h: &Harness) -> Vec<u64> {
    h.sent.iter().map(|(t, ..)| *t).collect()
}

#[test]
fn rfc3261_17_2_1_100_trying_is_sent_at_once() {
    let mut h = Harness::new();
    let invite = Req::default().build();
    h.receive(invite.clone(), false);
    let trying = parse_response(&h.sent[0].2);
    assert_eq!(h.sent.len(), 1);
    assert_eq!((trying.status, trying.headers.to.tag()), (100, None));
    assert_eq!(trying.headers.via, invite.headers.via);
    assert_eq!(h.sent[0].1, "peer", "responses go back to the source");
    assert_eq!(
        h.take_events(),
        [(
            0,
            TxEvent::Request {
                tx: ServerTxId(0),
                request: invite,
                source: "peer"
            }
        )]
    );
    // Not for other methods (§17.2.2).
    h.take_sent();
    h.receive(register(), false);
    assert_eq!(h.take_sent(), []);
}

#[test]
fn rfc3261_17_2_1_invite_retransmission_resends_the_last_provisional() {
    let mut h = Harness::new();
    let invite = Req::default().build();
    h.receive(invite.clone(), false);
    let tx = new_request(&mut h);
    h.receive(invite.clone(), false);
    assert_eq!(h.sent.len(), 2);
    assert_eq!(
        h.sent[0].2.as_ptr(),
        h.sent[1].2.as_ptr(),
        "the same 100 again"
    );
    h.take_sent();
    respond(&mut h, tx, &invite, 180);
    h.receive(invite.clone(), false);
    let lines: Vec<_> = h.take_sent().into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]);
    assert_eq!(h.take_events(), [], "retransmissions never reach the TU");
}

#[test]
fn rfc3261_17_2_2_non_invite_retransmission_absorbed_then_answered() {
    let mut h = Harness::new();
    let request = register();
    h.receive(request.clone(), false);
    let tx = new_request(&mut h);
    h.receive(request.clone(), false);
    assert_eq!(h.take_sent(), [], "Trying: nothing to resend yet");
    respond(&mut h, tx, &request, 200);
    h.receive(request.clone(), false);
    assert_eq!(h.sent.len(), 2);
    assert_eq!(h.sent[0].2, h.sent[1].2);
    assert_eq!(h.take_events(), []);
}

#[test]
fn rfc3261_17_2_1_timer_g_retransmits_until_timer_h() {
    let mut h = Harness::new();
    let invite = Req::default().build();
    h.receive(invite.clone(), false);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &invite, 486);
    h.run_all();
    assert_eq!(
        sent_times(&h),
        [0, 0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(h.sent[1..]
        .iter()
        .all(|(_, _, d)| d.as_ptr() == h.sent[1].2.as_ptr()));
    assert_eq!(
        h.take_events(),
        [
            (32000, TxEvent::ServerTimeout { tx }),
            (32000, TxEvent::Terminated { tx: tx.into() })
        ]
    );
}

#[test]
fn rfc3261_17_2_1_timer_h_without_ack_on_reliable_transports() {
    let mut h = Harness::new();
    let invite = Req::default().build();
    h.receive(invite.clone(), true);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &invite, 486);
    h.run_all();
    assert_eq!(sent_times(&h), [0, 0], "no Timer G on reliable transports");
    assert_eq!(h.take_events()[0], (32000, TxEvent::ServerTimeout { tx }));
}

#[test]
fn rfc3261_17_2_1_ack_stops_timer_g_and_timer_i_absorbs() {
    let mut h = Harness::new();
    let fields = Req::default();
    let invite = fields.build();
    h.receive(invite.clone(), false);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &invite, 486);
    h.run_until(1000);
    h.receive(ack_for(&fields, "uas-tag"), false);
    assert_eq!(
        h.take_events(),
        [],
        "the ACK for a non-2xx stays in the transaction"
    );
    h.run_until(2000);
    h.receive(ack_for(&fields, "uas-tag"), false);
    h.receive(invite.clone(), false);
    h.run_all();
    assert_eq!(sent_times(&h), [0, 0, 500], "nothing after the ACK");
    assert_eq!(
        h.take_events(),
        [(6000, TxEvent::Terminated { tx: tx.into() })],
        "Timer I = T4"
    );
}

#[test]
fn rfc3261_17_2_1_timer_i_is_zero_on_reliable_transports() {
    let mut h = Harness::new();
    let fields = Req::default();
    let invite = fields.build();
    h.receive(invite.clone(), true);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &invite, 404);
    h.receive(ack_for(&fields, "uas-tag"), true);
    assert_eq!(
        h.take_events(),
        [(0, TxEvent::Terminated { tx: tx.into() })]
    );
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn rfc3261_17_2_2_timer_j_absorbs_retransmissions_for_64_t1() {
    let mut h = Harness::new();
    let request = register();
    h.receive(request.clone(), false);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &request, 200);
    h.run_until(31_999);
    h.receive(request.clone(), false);
    assert_eq!(sent_times(&h), [0, 31_999]);
    h.run_all();
    assert_eq!(
        h.take_events(),
        [(32_000, TxEvent::Terminated { tx: tx.into() })]
    );
    // Afterwards the same request is new again.
    h.receive(request.clone(), false);
    assert!(matches!(
        &h.take_events()[..],
        [(32_000, TxEvent::Request { .. })]
    ));
}

#[test]
fn rfc3261_17_2_2_timer_j_is_zero_on_reliable_transports() {
    let mut h = Harness::new();
    let request = register();
    h.receive(request.clone(), true);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &request, 200);
    assert_eq!(
        h.take_events(),
        [(0, TxEvent::Terminated { tx: tx.into() })]
    );
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn rfc6026_7_1_accepted_passes_tu_2xx_and_acks_and_absorbs_invites() {
    let mut h = Harness::new();
    let fields = Req::default();
    let invite = fields.build();
    h.receive(invite.clone(), false);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &invite, 200);
    h.run_until(500);
    assert_eq!(
        sent_times(&h),
        [0, 0],
        "the layer does not retransmit a 2xx"
    );
    // The TU's own retransmission of the 2xx (RFC 3261 §13.3.1.4) passes.
    respond(&mut h, tx, &invite, 200);
    h.receive(invite.clone(), false);
    assert_eq!(
        sent_times(&h),
        [0, 0, 500],
        "INVITE retransmission absorbed"
    );
    // The ACK for a 2xx normally has a branch of its own: no transaction.
    let ack = Req {
        branch: "z9hG4bKack",
        ..fields
    };
    h.receive(ack_for(&ack, "uas-tag"), false);
    // One reusing the INVITE's branch matches the Accepted transaction,
    // which passes it up too.
    h.receive(ack_for(&fields, "uas-tag"), false);
    let acks = h
        .take_events()
        .into_iter()
        .filter(|(_, e)| matches!(e, TxEvent::Ack { .. }))
        .count();
    assert_eq!(acks, 2);
    assert_eq!(
        h.layer.respond(h.now, tx, invite.response(486, None)),
        Err(TxError::FinalAlreadySent(tx))
    );
    h.run_all();
    assert_eq!(
        h.take_events(),
        [(32_000, TxEvent::Terminated { tx: tx.into() })],
        "Timer L"
    );
}

#[test]
fn rfc3261_8_2_2_2_merged_request_is_answered_482_by_the_layer() {
    let mut h = Harness::new();
    let first = Req::default();
    h.receive(first.build(), false);
    new_request(&mut h);
    h.take_sent();
    // The same request forked back to us through another proxy.
    let merged = Req {
        branch: "z9hG4bKviaproxy2",
        sent_by: "proxy2.example.com",
        ..first
    };
    h.receive(merged.build(), false);
    let answer = parse_response(&h.sent[0].2);
    assert_eq!(answer.status, 482);
    assert!(answer.headers.to.tag().is_some());
    assert_eq!(answer.headers.via, merged.build().headers.via);
    h.take_sent();
    // Its retransmission gets the 482 again, its ACK ends it, and the TU
    // never hears of any of it.
    h.receive(merged.build(), false);
    assert_eq!(h.take_sent(), [(0, "SIP/2.0 482 Loop Detected".to_owned())]);
    let tag: &'static str = Box::leak(answer.headers.to.tag().unwrap().into());
    h.receive(ack_for(&merged, tag), false);
    h.run_all();
    assert_eq!(h.take_sent(), [], "the ACK stopped Timer G");
    assert_eq!(h.take_events(), []);
    // A different CSeq is a new request.
    h.receive(
        Req {
            cseq: 2,
            branch: "z9hG4bKnext",
            ..merged
        }
        .build(),
        false,
    );
    new_request(&mut h);
}

#[test]
fn rfc3261_9_2_cancel_names_the_invite_it_matches() {
    let mut h = Harness::new();
    let fields = Req::default();
    let invite = fields.build();
    h.receive(invite.clone(), false);
    let invite_tx = new_request(&mut h);
    let cancel = Req {
        method: "CANCEL",
        ..fields
    }
    .build();
    h.receive(cancel.clone(), false);
    let cancel_tx = match &h.take_events()[..] {
        [(
            _,
            TxEvent::Cancel {
                tx,
                target,
                request,
                source,
            },
        )] => {
            assert_eq!(
                (*target, request, *source),
                (Some(invite_tx), &cancel, "peer")
            );
            *tx
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(
        cancel_tx, invite_tx,
        "a CANCEL has a transaction of its own"
    );
    respond(&mut h, cancel_tx, &cancel, 200);
    respond(&mut h, invite_tx, &invite, 487);
    h.receive(cancel.clone(), false);
    let lines: Vec<_> = h.take_sent().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        lines,
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 200 OK",
            "SIP/2.0 487 Request Terminated",
            "SIP/2.0 200 OK"
        ]
    );
    assert_eq!(h.take_events(), [], "CANCEL retransmission absorbed");

    let stray = Req {
        method: "CANCEL",
        branch: "z9hG4bKnone",
        call_id: "unknown@atlanta.example.com",
        ..fields
    };
    h.receive(stray.build(), false);
    assert!(matches!(
        &h.take_events()[..],
        [(_, TxEvent::Cancel { target: None, .. })]
    ));
}

#[test]
fn rfc3261_17_2_3_rfc2543_requests_match_by_dialog_fields() {
    let mut h = Harness::new();
    let fields = Req {
        branch: "4c2d1e",
        ..Req::default()
    };
    let invite = fields.build();
    h.receive(invite.clone(), false);
    let tx = new_request(&mut h);
    h.receive(invite.clone(), false);
    assert_eq!(
        h.take_events(),
        [],
        "retransmission matched without a cookie"
    );
    respond(&mut h, tx, &invite, 486);
    h.take_sent();
    // An ACK with another To tag acknowledges some other response.
    h.receive(ack_for(&fields, "not-ours"), false);
    assert!(matches!(&h.take_events()[..], [(_, TxEvent::Ack { .. })]));
    h.receive(ack_for(&fields, "uas-tag"), false);
    assert_eq!(h.take_events(), []);
    h.run_all();
    assert_eq!(h.take_sent(), [], "the matching ACK stopped Timer G");
    assert_eq!(
        h.take_events(),
        [(5000, TxEvent::Terminated { tx: tx.into() })]
    );

    // Non-INVITE: a different Request-URI is a different transaction (a
    // To tag keeps the merged-request check out of the way).
    let reg = Req {
        method: "REGISTER",
        branch: "77",
        to_tag: Some("reg"),
        ..Req::default()
    };
    h.receive(reg.build(), false);
    h.receive(reg.build(), false);
    assert_eq!(h.take_events().len(), 1);
    h.receive(
        Req {
            uri: "sip:other.example.com",
            ..reg
        }
        .build(),
        false,
    );
    assert_eq!(h.take_events().len(), 1);
}

#[test]
fn respond_errors_never_panic() {
    let mut h = Harness::new();
    let request = register();
    let ghost = ServerTxId(42);
    assert_eq!(
        h.layer.respond(h.now, ghost, request.response(200, None)),
        Err(TxError::UnknownTransaction(TxId::Server(ghost)))
    );
    h.receive(request.clone(), true);
    let tx = new_request(&mut h);
    for bad in [0, 99, 700] {
        assert_eq!(
            h.layer.respond(h.now, tx, request.response(bad, None)),
            Err(TxError::InvalidStatus(bad))
        );
    }
    respond(&mut h, tx, &request, 200);
    // Terminated at once on a reliable transport: the id is dead.
    assert_eq!(
        h.layer.respond(h.now, tx, request.response(200, None)),
        Err(TxError::UnknownTransaction(TxId::Server(tx)))
    );
}

#[test]
fn rfc3261_17_2_4_transport_error_terminates_and_informs_the_tu() {
    let mut h = Harness::new();
    let request = register();
    h.receive(request.clone(), false);
    let tx = new_request(&mut h);
    respond(&mut h, tx, &request, 200);
    assert_eq!(h.layer.transport_error(tx), Ok(()));
    h.drain();
    assert_eq!(
        h.take_events(),
        [
            (0, TxEvent::TransportError { tx: tx.into() }),
            (0, TxEvent::Terminated { tx: tx.into() })
        ]
    );
    assert_eq!(h.layer.live_transactions(), 0);
}

#[test]
fn requests_without_via_are_dropped() {
    let mut h = Harness::new();
    let mut request = register();
    request.headers.via.clear();
    h.receive(request, false);
    assert_eq!((h.take_sent(), h.take_events()), (vec![], vec![]));
}
