//! One behaviour per test, named after the RFC 3261 section it checks.
//!
//! The fixture is RFC 3261 §24.2's call with two record-routing proxies:
//! Alice (UAC) -> P1 -> P2 -> Bob (UAS). Bob receives Record-Route P2, P1
//! and keeps that order; Alice gets them back in the 2xx and reverses them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::super::message::{
    parse, CSeq, CallId, Contacts, Host, Message, Method, NameAddr, Request, Response, Uri, Via,
};
use super::*;

const CALL_ID: &str = "a84b4c76e66710@pc33.atlanta.example.com";
const ALICE_TAG: &str = "1928301774";
const BOB_TAG: &str = "a6c85cf";
const ALICE_CONTACT: &str = "<sip:alice@pc33.atlanta.example.com>";
const BOB_CONTACT: &str = "<sip:bob@192.0.2.4>";
const INVITE_CSEQ: u32 = 314159;

fn name_addr(s: &str) -> NameAddr {
    NameAddr::parse(s).unwrap()
}

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

fn reparse(request: &Request) -> Request {
    match parse(&request.to_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// Alice's INVITE as Bob receives it, with `record_route` (top first).
fn invite_with(record_route: &[&str]) -> Request {
    let mut lines = vec![
        "INVITE sip:bob@biloxi.example.com SIP/2.0".to_owned(),
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8".to_owned(),
        "Max-Forwards: 68".to_owned(),
        "To: Bob <sip:bob@biloxi.example.com>".to_owned(),
        format!("From: Alice <sip:alice@atlanta.example.com>;tag={ALICE_TAG}"),
        format!("Call-ID: {CALL_ID}"),
        format!("CSeq: {INVITE_CSEQ} INVITE"),
        format!("Contact: {ALICE_CONTACT}"),
    ];
    lines.extend(record_route.iter().map(|r| format!("Record-Route: {r}")));
    let text = lines.join("\r\n") + "\r\nContent-Length: 0\r\n\r\n";
    match parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn invite() -> Request {
    invite_with(&["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
}

/// Bob's answer with his tag and Contact and, as §12.1.1 requires of a
/// dialog-creating response, the INVITE's Record-Route.
fn answer(invite: &Request, status: u16, tag: &str, contact: &str) -> Response {
    let mut r = invite.response(status, Some(tag));
    r.headers.contact = Contacts::List(vec![name_addr(contact)]);
    r.headers.record_route = invite.headers.record_route.clone();
    r
}

/// Alice's and Bob's dialogs of the confirmed call.
fn pair_for(invite: &Request) -> (Dialog, Dialog) {
    let ok = answer(invite, 200, BOB_TAG, BOB_CONTACT);
    (
        Dialog::uac(invite, &ok).unwrap(),
        Dialog::uas(invite, &ok).unwrap(),
    )
}

fn pair() -> (Dialog, Dialog) {
    pair_for(&invite())
}

fn via(branch: &str) -> Via {
    Via::new(
        "UDP",
        Host::Domain("gw.example.com".into()),
        Some(5060),
        branch,
    )
}

fn send(dialog: &mut Dialog, method: Method) -> Request {
    dialog.request(method, via("z9hG4bKx"), 70).unwrap()
}

fn routes(list: &[NameAddr]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

#[test]
fn rfc3261_12_1_1_uas_dialog_keeps_record_route_order() {
    let (_, bob) = pair();
    assert_eq!(bob.role(), Role::Uas);
    assert_eq!(bob.state(), DialogState::Confirmed);
    assert_eq!(
        bob.id(),
        &DialogId::new(CallId::new(CALL_ID), BOB_TAG, ALICE_TAG)
    );
    assert_eq!(
        routes(bob.route_set()),
        ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(
        bob.remote_target(),
        &uri("sip:alice@pc33.atlanta.example.com")
    );
    assert_eq!(bob.remote_seq(), Some(INVITE_CSEQ));
    assert_eq!(bob.local_seq(), None);
    assert_eq!(bob.local_uri().tag(), Some(BOB_TAG));
    assert_eq!(bob.remote_uri().tag(), Some(ALICE_TAG));
    assert_eq!(bob.local_contact(), &name_addr(BOB_CONTACT));
    assert!(!bob.is_secure());
}

#[test]
fn rfc3261_12_1_2_uac_dialog_reverses_record_route() {
    let (alice, _) = pair();
    assert_eq!(alice.role(), Role::Uac);
    assert_eq!(alice.state(), DialogState::Confirmed);
    assert_eq!(
        alice.id(),
        &DialogId::new(CallId::new(CALL_ID), ALICE_TAG, BOB_TAG)
    );
    assert_eq!(
        routes(alice.route_set()),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(alice.remote_target(), &uri("sip:bob@192.0.2.4"));
    assert_eq!(alice.local_seq(), Some(INVITE_CSEQ));
    assert_eq!(alice.remote_seq(), None);
    assert_eq!(alice.remote_uri().tag(), Some(BOB_TAG));
    assert_eq!(alice.local_contact(), &name_addr(ALICE_CONTACT));
}

#[test]
fn rfc3261_12_1_1_secure_needs_sips_and_tls() {
    let mut inv = invite();
    inv.uri = uri("sips:bob@biloxi.example.com");
    assert!(!pair_for(&inv).1.is_secure(), "sips over UDP");
    inv.headers.via[0].transport = "TLS".into();
    assert!(pair_for(&inv).1.is_secure());
    inv.uri = uri("sip:bob@biloxi.example.com");
    assert!(!pair_for(&inv).0.is_secure(), "sip over TLS");
}

#[test]
fn rfc3261_12_1_1_provisional_answer_makes_an_early_dialog_2xx_confirms_it() {
    let inv = invite();
    let ringing = answer(&inv, 180, BOB_TAG, BOB_CONTACT);
    let mut bob = Dialog::uas(&inv, &ringing).unwrap();
    assert_eq!(bob.state(), DialogState::Early);
    assert_eq!(bob.send_response(&ringing), Ok(Outcome::Unchanged));
    let ok = answer(&inv, 200, BOB_TAG, BOB_CONTACT);
    assert_eq!(bob.send_response(&ok), Ok(Outcome::Confirmed));
    assert_eq!(bob.state(), DialogState::Confirmed);
}

#[test]
fn rfc3261_12_3_rejecting_the_invite_ends_the_early_uas_dialog() {
    let inv = invite();
    let mut bob = Dialog::uas(&inv, &answer(&inv, 183, BOB_TAG, BOB_CONTACT)).unwrap();
    let busy = inv.response(486, Some(BOB_TAG));
    assert_eq!(bob.send_response(&busy), Ok(Outcome::Terminated));
    assert_eq!(
        bob.request(Method::Info, via("z9hG4bKi"), 70),
        Err(DialogError::Terminated)
    );
}

#[test]
fn rfc3261_12_2_1_1_loose_routing() {
    let (mut alice, _) = pair();
    let bye = send(&mut alice, Method::Bye);
    // The remote target is the Request-URI; the whole route set is Route.
    assert_eq!(bye.uri, uri("sip:bob@192.0.2.4"));
    assert_eq!(
        routes(&bye.headers.route),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(alice.next_hop(), &uri("sip:p1.example.com;lr"));
    let h = &bye.headers;
    assert_eq!(
        h.from,
        name_addr("Alice <sip:alice@atlanta.example.com>;tag=1928301774")
    );
    assert_eq!(
        h.to,
        name_addr("Bob <sip:bob@biloxi.example.com>;tag=a6c85cf")
    );
    assert_eq!(h.call_id, CallId::new(CALL_ID));
    assert_eq!(h.via, [via("z9hG4bKx")]);
    assert_eq!(h.max_forwards, Some(70));
    assert!(h.contact.is_empty(), "BYE refreshes no target");
}

#[test]
fn rfc3261_12_2_1_1_strict_routing() {
    // P1 is a strict router (no lr) whose Record-Route URI carries what a
    // Request-URI must not: a method parameter and headers (§19.1.1).
    let inv = invite_with(&[
        "<sip:p2.example.com;lr>",
        "<sip:p1.example.com;transport=tcp;method=INVITE?x=y>;foo=bar",
    ]);
    let (mut alice, _) = pair_for(&inv);
    let info = send(&mut alice, Method::Info);
    assert_eq!(info.uri, uri("sip:p1.example.com;transport=tcp"));
    // The rest of the route set, then the remote target.
    assert_eq!(
        routes(&info.headers.route),
        ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.4>"]
    );
    assert_eq!(
        alice.next_hop(),
        &uri("sip:p1.example.com;transport=tcp;method=INVITE?x=y")
    );
    assert_eq!(reparse(&info), info);
}

#[test]
fn rfc3261_16_12_1_2_strict_route_set_from_uas_side() {
    // Bob's first route is P2; without lr it becomes his Request-URI and
    // Alice's Contact closes the Route header.
    let inv = invite_with(&["<sip:p2.example.com>", "<sip:p1.example.com;lr>"]);
    let (_, mut bob) = pair_for(&inv);
    let bye = send(&mut bob, Method::Bye);
    assert_eq!(bye.uri, uri("sip:p2.example.com"));
    assert_eq!(
        routes(&bye.headers.route),
        [
            "<sip:p1.example.com;lr>",
            "<sip:alice@pc33.atlanta.example.com>"
        ]
    );
}

#[test]
fn rfc3261_12_2_1_1_empty_route_set_sends_to_the_remote_target_without_route() {
    let (mut alice, _) = pair_for(&invite_with(&[]));
    let bye = send(&mut alice, Method::Bye);
    assert_eq!(bye.uri, uri("sip:bob@192.0.2.4"));
    assert!(bye.headers.route.is_empty());
    assert_eq!(alice.next_hop(), &uri("sip:bob@192.0.2.4"));
}

#[test]
fn rfc3261_12_2_1_1_cseq_is_one_above_the_local_sequence_number() {
    let (mut alice, _) = pair();
    for n in 1..=3 {
        let r = send(&mut alice, Method::Info);
        assert_eq!(
            r.headers.cseq,
            CSeq {
                seq: INVITE_CSEQ + n,
                method: Method::Info
            }
        );
        assert_eq!(alice.local_seq(), Some(INVITE_CSEQ + n));
    }
}

#[test]
fn rfc3261_12_2_1_1_uas_chooses_an_initial_cseq() {
    let (_, mut bob) = pair();
    assert_eq!(send(&mut bob, Method::Info).headers.cseq.seq, 1);
    assert_eq!(send(&mut bob, Method::Bye).headers.cseq.seq, 2);
}

#[test]
fn rfc3261_8_1_1_5_cseq_stays_below_2_pow_31() {
    let mut inv = invite();
    inv.headers.cseq.seq = (1 << 31) - 1;
    let (mut alice, _) = pair_for(&inv);
    assert_eq!(
        alice.request(Method::Bye, via("z9hG4bKb"), 70),
        Err(DialogError::SequenceExhausted)
    );
    assert_eq!(alice.local_seq(), Some((1 << 31) - 1));
}

#[test]
fn rfc3261_12_2_1_1_target_refresh_requests_carry_our_contact() {
    let (mut alice, _) = pair();
    for method in [
        Method::Update,
        Method::Notify,
        Method::Refer,
        Method::Subscribe,
    ] {
        let r = send(&mut alice, method);
        assert_eq!(
            r.headers.contact,
            Contacts::List(vec![name_addr(ALICE_CONTACT)])
        );
    }
    for method in [Method::Info, Method::Options, Method::Message] {
        assert!(send(&mut alice, method).headers.contact.is_empty());
    }
    let reinvite = send(&mut alice, Method::Invite);
    assert_eq!(
        reinvite.headers.contact.first(),
        Some(&name_addr(ALICE_CONTACT))
    );
}

#[test]
fn rfc3261_12_2_1_1_ack_and_cancel_are_not_built_here() {
    let (mut alice, _) = pair();
    for method in [Method::Ack, Method::Cancel] {
        assert_eq!(
            alice.request(method.clone(), via("z9hG4bKa"), 70),
            Err(DialogError::NotDialogRequest(method))
        );
    }
    assert_eq!(alice.local_seq(), Some(INVITE_CSEQ));
}

#[test]
fn rfc3261_12_2_2_in_order_request_sets_the_remote_sequence_number() {
    let (mut alice, mut bob) = pair();
    let bye = send(&mut alice, Method::Bye);
    assert_eq!(bob.receive_request(&bye), Ok(()));
    assert_eq!(bob.remote_seq(), Some(INVITE_CSEQ + 1));
}

#[test]
fn rfc3261_12_2_2_out_of_order_request_is_rejected_with_500() {
    let (mut alice, mut bob) = pair();
    let first = send(&mut alice, Method::Info);
    let second = send(&mut alice, Method::Info);
    assert_eq!(bob.receive_request(&second), Ok(()));
    let err = bob.receive_request(&first).unwrap_err();
    assert_eq!(
        err,
        DialogError::OutOfOrder {
            got: INVITE_CSEQ + 1,
            expected_above: INVITE_CSEQ + 2
        }
    );
    assert_eq!(err.status(), Some(500));
    // Equal is out of order too, and the remote number does not move back.
    assert!(matches!(
        bob.receive_request(&second),
        Err(DialogError::OutOfOrder { .. })
    ));
    assert_eq!(bob.remote_seq(), Some(INVITE_CSEQ + 2));
}

#[test]
fn rfc3261_12_2_2_ack_and_cancel_carry_the_invite_cseq() {
    let (alice, mut bob) = pair();
    let ack = alice.ack_for_2xx(INVITE_CSEQ, via("z9hG4bKack"));
    assert_eq!(bob.receive_request(&ack), Ok(()));
    let mut cancel = ack.clone();
    cancel.method = Method::Cancel;
    cancel.headers.cseq.method = Method::Cancel;
    assert_eq!(bob.receive_request(&cancel), Ok(()));
    assert_eq!(bob.remote_seq(), Some(INVITE_CSEQ));
}

#[test]
fn rfc3261_12_2_2_empty_remote_sequence_number_is_set_by_the_first_request() {
    let (mut alice, mut bob) = pair();
    assert_eq!(alice.remote_seq(), None);
    let info = send(&mut bob, Method::Info);
    assert_eq!(alice.receive_request(&info), Ok(()));
    assert_eq!(alice.remote_seq(), Some(1));
}

#[test]
fn rfc3261_12_2_2_request_of_another_dialog_is_refused() {
    let (mut alice, mut bob) = pair();
    let mut bye = send(&mut alice, Method::Bye);
    bye.headers.from = bye.headers.from.with_tag("someone-else");
    let err = bob.receive_request(&bye).unwrap_err();
    assert!(matches!(err, DialogError::WrongDialog(_)));
    assert_eq!(err.status(), Some(481));
    assert_eq!(bob.remote_seq(), Some(INVITE_CSEQ));
}

#[test]
fn rfc3261_12_2_2_reinvite_refreshes_the_target_only_when_accepted() {
    let (mut alice, mut bob) = pair();
    let mut reinvite = send(&mut alice, Method::Invite);
    reinvite.headers.contact = Contacts::List(vec![name_addr("<sip:alice@192.0.2.77:5070>")]);
    assert_eq!(bob.receive_request(&reinvite), Ok(()));
    assert_eq!(
        bob.remote_target(),
        &uri("sip:alice@pc33.atlanta.example.com")
    );
    assert!(bob.refresh_target(&reinvite));
    assert_eq!(bob.remote_target(), &uri("sip:alice@192.0.2.77:5070"));
}

#[test]
fn rfc3261_12_2_non_refresh_requests_do_not_change_the_target() {
    let (mut alice, mut bob) = pair();
    let mut info = send(&mut alice, Method::Info);
    info.headers.contact = Contacts::List(vec![name_addr("<sip:alice@192.0.2.77>")]);
    assert!(!bob.refresh_target(&info));
    assert_eq!(
        bob.remote_target(),
        &uri("sip:alice@pc33.atlanta.example.com")
    );
}

#[test]
fn rfc3261_12_2_1_2_2xx_to_reinvite_refreshes_the_target() {
    let (mut alice, _) = pair();
    let reinvite = send(&mut alice, Method::Invite);
    let mut ok = reinvite.response(200, None);
    ok.headers.contact = Contacts::List(vec![name_addr("<sip:bob@198.51.100.9>")]);
    assert_eq!(alice.receive_response(&ok), Ok(Outcome::TargetRefreshed));
    assert_eq!(alice.remote_target(), &uri("sip:bob@198.51.100.9"));
    assert_eq!(alice.local_invite_in_progress(), None);
}

#[test]
fn rfc3261_12_2_1_2_failed_reinvite_keeps_the_target() {
    let (mut alice, _) = pair();
    let update = send(&mut alice, Method::Update);
    let mut refused = update.response(488, None);
    refused.headers.contact = Contacts::List(vec![name_addr("<sip:bob@198.51.100.9>")]);
    assert_eq!(alice.receive_response(&refused), Ok(Outcome::Unchanged));
    assert_eq!(alice.remote_target(), &uri("sip:bob@192.0.2.4"));
}

#[test]
fn rfc3261_12_2_1_2_481_or_408_terminates_the_dialog() {
    for status in [481, 408] {
        let (mut alice, _) = pair();
        let info = send(&mut alice, Method::Info);
        assert_eq!(
            alice.receive_response(&info.response(status, None)),
            Ok(Outcome::Terminated)
        );
        assert_eq!(alice.state(), DialogState::Terminated);
        assert_eq!(
            alice.request(Method::Bye, via("z9hG4bKb"), 70),
            Err(DialogError::Terminated)
        );
    }
}

#[test]
fn rfc3261_13_2_2_4_ack_for_2xx_has_the_invite_cseq_and_the_route_set() {
    let (mut alice, _) = pair();
    let ack = alice.ack_for_2xx(INVITE_CSEQ, via("z9hG4bKack"));
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.headers.cseq,
        CSeq {
            seq: INVITE_CSEQ,
            method: Method::Ack
        }
    );
    assert_eq!(ack.uri, uri("sip:bob@192.0.2.4"));
    assert_eq!(
        routes(&ack.headers.route),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(ack.headers.to.tag(), Some(BOB_TAG));
    assert!(ack.headers.contact.is_empty());
    assert_eq!(
        alice.local_seq(),
        Some(INVITE_CSEQ),
        "ACK takes no new CSeq"
    );
    // A re-INVITE's ACK carries the re-INVITE's number.
    let reinvite = send(&mut alice, Method::Invite);
    let ack = alice.ack_for_2xx(reinvite.headers.cseq.seq, via("z9hG4bKack2"));
    assert_eq!(ack.headers.cseq.seq, INVITE_CSEQ + 1);
}

#[test]
fn rfc3261_13_2_2_4_early_dialog_confirmed_by_2xx_recomputes_the_route_set() {
    let inv = invite_with(&["<sip:p1.example.com;lr>"]);
    let mut table = Dialogs::new();
    let ringing = answer(&inv, 180, BOB_TAG, "<sip:bob@192.0.2.1>");
    let id = DialogId::new(CallId::new(CALL_ID), ALICE_TAG, BOB_TAG);
    assert_eq!(
        table.invite_response(&inv, &ringing),
        Ok(InviteResponse::Early {
            id: id.clone(),
            new: true
        })
    );
    let early = table.get(&id).unwrap();
    assert_eq!(early.state(), DialogState::Early);
    assert_eq!(routes(early.route_set()), ["<sip:p1.example.com;lr>"]);
    assert_eq!(early.local_invite_in_progress(), Some(INVITE_CSEQ));

    let mut ok = answer(&inv, 200, BOB_TAG, BOB_CONTACT);
    ok.headers.record_route = vec![
        name_addr("<sip:p2.example.com;lr>"),
        name_addr("<sip:p1.example.com;lr>"),
    ];
    assert_eq!(
        table.invite_response(&inv, &ok),
        Ok(InviteResponse::Confirmed {
            id: id.clone(),
            new: false
        })
    );
    let confirmed = table.get(&id).unwrap();
    assert_eq!(confirmed.state(), DialogState::Confirmed);
    assert_eq!(
        routes(confirmed.route_set()),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(confirmed.remote_target(), &uri("sip:bob@192.0.2.4"));
    assert_eq!(confirmed.local_invite_in_progress(), None);
    // The retransmitted 2xx is ACKed again and changes nothing.
    assert_eq!(
        table.invite_response(&inv, &ok),
        Ok(InviteResponse::Repeated { id })
    );
    assert_eq!(table.len(), 1);
}

#[test]
fn rfc3261_13_2_2_4_confirm_by_the_dialog_itself() {
    let inv = invite();
    let mut alice = Dialog::uac(&inv, &answer(&inv, 183, BOB_TAG, BOB_CONTACT)).unwrap();
    let ok = answer(&inv, 200, BOB_TAG, BOB_CONTACT);
    assert_eq!(alice.receive_response(&ok), Ok(Outcome::Confirmed));
    assert_eq!(alice.confirm(&ok), Err(DialogError::NotEarly));
}

#[test]
fn rfc3261_12_3_non_2xx_final_ends_the_early_uac_dialog() {
    let inv = invite();
    let mut alice = Dialog::uac(&inv, &answer(&inv, 180, BOB_TAG, BOB_CONTACT)).unwrap();
    let cancelled = inv.response(487, Some(BOB_TAG));
    assert_eq!(alice.receive_response(&cancelled), Ok(Outcome::Terminated));
    assert_eq!(alice.state(), DialogState::Terminated);
}

#[test]
fn rfc3261_12_1_2_forked_early_dialogs_are_distinct() {
    let inv = invite();
    let mut table = Dialogs::new();
    for tag in ["fork1", "fork2"] {
        let ringing = answer(&inv, 180, tag, BOB_CONTACT);
        assert!(matches!(
            table.invite_response(&inv, &ringing),
            Ok(InviteResponse::Early { new: true, .. })
        ));
    }
    assert_eq!(table.len(), 2);
    let call_id = CallId::new(CALL_ID);
    assert_eq!(table.dialog_set(&call_id, ALICE_TAG).count(), 2);
    // Each fork's responses find its own dialog.
    for tag in ["fork1", "fork2"] {
        let r = answer(&inv, 180, tag, BOB_CONTACT);
        assert_eq!(
            table.match_response(&r).map(|d| d.id().remote_tag.clone()),
            Some(tag.into())
        );
    }
    // A third fork answers 2xx straight away: a new confirmed dialog.
    let ok = answer(&inv, 200, "fork3", BOB_CONTACT);
    assert!(matches!(
        table.invite_response(&inv, &ok),
        Ok(InviteResponse::Confirmed { new: true, .. })
    ));
    assert_eq!(table.len(), 3);
}

#[test]
fn rfc3261_12_3_non_2xx_final_removes_every_early_fork() {
    let inv = invite();
    let mut table = Dialogs::new();
    for tag in ["fork1", "fork2"] {
        table
            .invite_response(&inv, &answer(&inv, 180, tag, BOB_CONTACT))
            .unwrap();
    }
    let busy = inv.response(486, Some("fork2"));
    let Ok(InviteResponse::Failed { mut terminated }) = table.invite_response(&inv, &busy) else {
        panic!("not Failed");
    };
    terminated.sort_by(|a, b| a.remote_tag.cmp(&b.remote_tag));
    let tags: Vec<_> = terminated.iter().map(|id| id.remote_tag.as_str()).collect();
    assert_eq!(tags, ["fork1", "fork2"]);
    assert!(table.is_empty());
}

#[test]
fn rfc3261_12_1_provisional_without_tag_makes_no_dialog() {
    let inv = invite();
    let mut table = Dialogs::new();
    assert_eq!(
        table.invite_response(&inv, &inv.response(100, None)),
        Ok(InviteResponse::NoDialog)
    );
    assert_eq!(
        table.invite_response(&inv, &inv.response(180, None)),
        Ok(InviteResponse::NoDialog)
    );
    assert!(table.is_empty());
    assert_eq!(
        Dialog::uac(&inv, &inv.response(180, None)),
        Err(DialogError::MissingTag(Side::Remote))
    );
}

#[test]
fn rfc3261_12_2_lookup_in_both_directions() {
    // Both ends of the call in one table (a call looping through us): same
    // Call-ID, tags swapped.
    let (alice, bob) = pair();
    let mut table = Dialogs::new();
    table.insert(alice.clone()).unwrap();
    table.insert(bob.clone()).unwrap();
    let (mut alice, mut bob) = (alice, bob);

    // Alice's request reaches Bob's dialog; its response reaches Alice's.
    let bye = send(&mut alice, Method::Bye);
    assert_eq!(
        table.match_request(&bye).map(|d| d.id().clone()),
        Some(bob.id().clone())
    );
    let ok = bye.response(200, None);
    assert_eq!(
        table.match_response(&ok).map(|d| d.id().clone()),
        Some(alice.id().clone())
    );

    // And the other way round.
    let info = send(&mut bob, Method::Info);
    assert_eq!(
        table.match_request(&info).map(|d| d.id().clone()),
        Some(alice.id().clone())
    );
    let ok = info.response(200, None);
    assert_eq!(
        table.match_response(&ok).map(|d| d.id().clone()),
        Some(bob.id().clone())
    );

    // Outside any dialog, or an unknown tag: nothing.
    assert!(table.match_request(&invite()).is_none());
    let mut stranger = bye.clone();
    stranger.headers.from = stranger.headers.from.with_tag("other");
    assert!(table.match_request(&stranger).is_none());

    assert!(table.remove(alice.id()).is_some());
    assert!(table.match_response(&bye.response(200, None)).is_none());
    assert_eq!(table.len(), 1);
}

#[test]
fn dialogs_refuse_a_duplicate_id() {
    let (alice, _) = pair();
    let mut table = Dialogs::new();
    table.insert(alice.clone()).unwrap();
    assert_eq!(
        table.insert(alice.clone()).map(|_| ()),
        Err(DialogError::Duplicate(Box::new(alice.id().clone())))
    );
}

#[test]
fn rfc3261_12_1_1_null_from_tag_of_rfc2543() {
    let mut inv = invite();
    inv.headers.from = name_addr("<sip:alice@atlanta.example.com>");
    let mut bob = Dialog::uas(&inv, &answer(&inv, 200, BOB_TAG, BOB_CONTACT)).unwrap();
    assert_eq!(bob.id().remote_tag, "");
    let bye = send(&mut bob, Method::Bye);
    assert_eq!(bye.headers.to.tag(), None, "no empty tag is printed");
    assert_eq!(reparse(&bye), bye);
    // The peer's requests, also without a From tag, find the dialog.
    let mut table = Dialogs::new();
    table.insert(bob).unwrap();
    let mut theirs = invite();
    theirs.headers.from = inv.headers.from.clone();
    theirs.headers.to = theirs.headers.to.with_tag(BOB_TAG);
    assert!(table.match_request(&theirs).is_some());
}

#[test]
fn rfc3261_12_1_creation_errors_by_cause() {
    let inv = invite();
    let ok = answer(&inv, 200, BOB_TAG, BOB_CONTACT);
    for status in [100, 486] {
        let r = answer(&inv, status, BOB_TAG, BOB_CONTACT);
        assert_eq!(
            Dialog::uas(&inv, &r),
            Err(DialogError::NotDialogForming {
                method: Method::Invite,
                status
            })
        );
    }
    let mut in_dialog = inv.clone();
    in_dialog.headers.to = in_dialog.headers.to.with_tag("x");
    assert!(matches!(
        Dialog::uac(&in_dialog, &ok),
        Err(DialogError::NotDialogForming { .. })
    ));

    let mut untagged = ok.clone();
    untagged.headers.to = inv.headers.to.clone();
    assert_eq!(
        Dialog::uas(&inv, &untagged),
        Err(DialogError::MissingTag(Side::Local))
    );
    let mut anonymous = inv.clone();
    anonymous.headers.from = name_addr("<sip:alice@atlanta.example.com>");
    let answered = answer(&anonymous, 200, BOB_TAG, BOB_CONTACT);
    assert_eq!(
        Dialog::uac(&anonymous, &answered),
        Err(DialogError::MissingTag(Side::Local))
    );

    let mut no_contact = inv.clone();
    no_contact.headers.contact = Contacts::default();
    assert_eq!(
        Dialog::uas(&no_contact, &ok),
        Err(DialogError::MissingContact(Side::Remote))
    );
    assert_eq!(
        Dialog::uac(&no_contact, &ok),
        Err(DialogError::MissingContact(Side::Local))
    );
    let mut two = ok.clone();
    two.headers.contact = Contacts::List(vec![name_addr(BOB_CONTACT), name_addr(BOB_CONTACT)]);
    assert_eq!(
        Dialog::uac(&inv, &two),
        Err(DialogError::MissingContact(Side::Remote))
    );

    let mut other_call = ok.clone();
    other_call.headers.call_id = CallId::new("other@example.com");
    assert_eq!(
        Dialog::uac(&inv, &other_call),
        Err(DialogError::ResponseMismatch("Call-ID"))
    );
    let mut other_cseq = ok;
    other_cseq.headers.cseq.seq += 1;
    assert_eq!(
        Dialog::uas(&inv, &other_cseq),
        Err(DialogError::ResponseMismatch("CSeq"))
    );
}

#[test]
fn rfc3261_14_1_one_invite_at_a_time() {
    let (mut alice, _) = pair();
    let reinvite = send(&mut alice, Method::Invite);
    assert_eq!(
        alice.request(Method::Invite, via("z9hG4bK2"), 70),
        Err(DialogError::InviteInProgress {
            side: Side::Local,
            cseq: INVITE_CSEQ + 1
        })
    );
    // Other requests still go, and the final response frees the way.
    send(&mut alice, Method::Update);
    assert_eq!(
        alice.receive_response(&reinvite.response(180, None)),
        Ok(Outcome::Unchanged)
    );
    assert!(alice.local_invite_in_progress().is_some());
    assert_eq!(
        alice.receive_response(&reinvite.response(488, None)),
        Ok(Outcome::Unchanged)
    );
    assert_eq!(
        send(&mut alice, Method::Invite).headers.cseq.seq,
        INVITE_CSEQ + 3
    );
}

#[test]
fn rfc3261_14_2_glare_is_answered_491() {
    let (mut alice, mut bob) = pair();
    send(&mut alice, Method::Invite);
    let theirs = send(&mut bob, Method::Invite);
    let err = alice.receive_request(&theirs).unwrap_err();
    assert_eq!(
        err,
        DialogError::InviteInProgress {
            side: Side::Local,
            cseq: INVITE_CSEQ + 1
        }
    );
    assert_eq!(err.status(), Some(491));
    // The refused INVITE's CSeq still counts (§12.2.2).
    assert_eq!(alice.remote_seq(), Some(1));
}

#[test]
fn rfc3261_14_2_invite_before_the_previous_is_answered_gets_500() {
    let (mut alice, mut bob) = pair();
    let first = send(&mut alice, Method::Invite);
    assert_eq!(bob.receive_request(&first), Ok(()));
    // Alice would not send it; a misbehaving peer might.
    let mut second = first.clone();
    second.headers.cseq.seq += 1;
    let err = bob.receive_request(&second).unwrap_err();
    assert_eq!(
        err,
        DialogError::InviteInProgress {
            side: Side::Remote,
            cseq: INVITE_CSEQ + 1
        }
    );
    assert_eq!(err.status(), Some(500));
    // Nor may Bob start one meanwhile (§14.1).
    assert!(matches!(
        bob.request(Method::Invite, via("z9hG4bKb"), 70),
        Err(DialogError::InviteInProgress {
            side: Side::Remote,
            ..
        })
    ));
    assert_eq!(
        bob.send_response(&first.response(200, None)),
        Ok(Outcome::Unchanged)
    );
    let mut third = first;
    third.headers.cseq.seq += 2;
    assert_eq!(bob.receive_request(&third), Ok(()));
}

#[test]
fn rfc3261_15_callee_cannot_send_bye_on_an_early_dialog() {
    let inv = invite();
    let ringing = answer(&inv, 180, BOB_TAG, BOB_CONTACT);
    let mut bob = Dialog::uas(&inv, &ringing).unwrap();
    assert_eq!(
        bob.request(Method::Bye, via("z9hG4bKb"), 70),
        Err(DialogError::ByeOnEarlyDialog)
    );
    // The caller may.
    let mut alice = Dialog::uac(&inv, &ringing).unwrap();
    assert_eq!(send(&mut alice, Method::Bye).method, Method::Bye);
}

#[test]
fn rfc3261_15_1_bye_ends_the_dialog_on_both_sides() {
    let (mut alice, mut bob) = pair();
    let bye = send(&mut alice, Method::Bye);
    assert_eq!(bob.receive_request(&bye), Ok(()));
    let ok = bye.response(200, None);
    assert_eq!(bob.send_response(&ok), Ok(Outcome::Terminated));
    // A challenge is answered with credentials in a new BYE (§22.2).
    assert_eq!(
        alice.receive_response(&bye.response(401, None)),
        Ok(Outcome::Unchanged)
    );
    assert_eq!(alice.receive_response(&ok), Ok(Outcome::Terminated));
    assert_eq!(
        bob.receive_request(&send_unchecked(&bye)),
        Err(DialogError::Terminated)
    );
}

/// A copy of `request` with the next CSeq, as a peer might still send.
fn send_unchecked(request: &Request) -> Request {
    let mut r = request.clone();
    r.headers.cseq.seq += 1;
    r
}

#[test]
fn printed_requests_reparse() {
    let strict = invite_with(&["<sip:p2.example.com>", "<sip:[2001:db8::1]:5080;lr>"]);
    for inv in [invite(), invite_with(&[]), strict] {
        let (mut alice, mut bob) = pair_for(&inv);
        for method in [Method::Invite, Method::Update, Method::Info, Method::Bye] {
            for dialog in [&mut alice, &mut bob] {
                let r = dialog.request(method.clone(), via("z9hG4bKp"), 70).unwrap();
                assert_eq!(reparse(&r), r);
                if method == Method::Invite {
                    let ack = dialog.ack_for_2xx(r.headers.cseq.seq, via("z9hG4bKq"));
                    assert_eq!(reparse(&ack), ack);
                    let ok = r.response(200, None);
                    assert_eq!(dialog.receive_response(&ok), Ok(Outcome::Unchanged));
                }
            }
        }
    }
}

// --- Property: two ends exchanging requests in any order ---

const METHODS: [Method; 6] = [
    Method::Invite,
    Method::Update,
    Method::Info,
    Method::Options,
    Method::Notify,
    Method::Message,
];

#[derive(Debug, Clone)]
enum Op {
    /// Alice (true) or Bob builds a request; it goes in flight.
    Send { alice: bool, method: usize },
    /// One request in flight arrives (any of them: the network reorders).
    Deliver { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0..METHODS.len()).prop_map(|(alice, method)| Op::Send { alice, method }),
        any::<usize>().prop_map(|pick| Op::Deliver { pick }),
    ]
}

/// Each end's dialog and what the peer has accepted from it so far.
struct End {
    id: DialogId,
    last_sent: u32,
    highest_accepted: Option<u32>,
}

proptest! {
    /// RFC 3261 §12.2.1.1 and §12.2.2 on random exchanges: every request an
    /// end builds has a CSeq above its previous one; each arrives (printed
    /// and parsed again) at the peer's dialog and each response at the
    /// sender's, both in one table; the receiver accepts exactly the
    /// requests above the highest CSeq it accepted before.
    #[test]
    fn local_cseq_increases_and_lookups_agree(
        start in 1u32..1 << 20,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut inv = invite();
        inv.headers.cseq.seq = start;
        let (alice, bob) = pair_for(&inv);
        let mut table = Dialogs::new();
        let mut ends = [
            // Bob accepted the INVITE: Alice's next CSeq must be above it.
            End { id: alice.id().clone(), last_sent: start, highest_accepted: Some(start) },
            End { id: bob.id().clone(), last_sent: 0, highest_accepted: None },
        ];
        table.insert(alice).unwrap();
        table.insert(bob).unwrap();
        let mut in_flight: Vec<(usize, Vec<u8>)> = Vec::new();
        for op in ops {
            match op {
                Op::Send { alice, method } => {
                    let from = if alice { 0 } else { 1 };
                    let dialog = table.get_mut(&ends[from].id).unwrap();
                    match dialog.request(METHODS[method].clone(), via("z9hG4bKprop"), 70) {
                        Ok(r) => {
                            prop_assert!(r.headers.cseq.seq > ends[from].last_sent);
                            prop_assert_eq!(dialog.local_seq(), Some(r.headers.cseq.seq));
                            ends[from].last_sent = r.headers.cseq.seq;
                            in_flight.push((from, r.to_bytes()));
                        }
                        Err(DialogError::InviteInProgress { .. }) => {
                            prop_assert_eq!(&METHODS[method], &Method::Invite);
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Deliver { pick } => {
                    if in_flight.is_empty() {
                        continue;
                    }
                    let (from, bytes) = in_flight.remove(pick % in_flight.len());
                    let to = 1 - from;
                    let Ok(Message::Request(request)) = parse(&bytes) else {
                        prop_assert!(false, "unparsable request");
                        continue;
                    };
                    let receiver = table.match_request(&request).unwrap();
                    prop_assert_eq!(receiver.id(), &ends[to].id);
                    let seq = request.headers.cseq.seq;
                    let in_order = ends[from].highest_accepted.is_none_or(|h| seq > h);
                    let result = receiver.receive_request(&request);
                    match &result {
                        Ok(()) => prop_assert!(in_order),
                        Err(DialogError::OutOfOrder { got, expected_above }) => {
                            prop_assert!(!in_order);
                            prop_assert_eq!(*got, seq);
                            prop_assert_eq!(Some(*expected_above), ends[from].highest_accepted);
                        }
                        // Glare: both ends sent an INVITE (§14.2).
                        Err(DialogError::InviteInProgress { .. }) => {
                            prop_assert!(in_order);
                            prop_assert_eq!(&request.method, &Method::Invite);
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                    if in_order {
                        ends[from].highest_accepted = Some(seq);
                    }
                    prop_assert_eq!(receiver.remote_seq(), ends[from].highest_accepted);
                    let status = match result {
                        Ok(()) => 200,
                        Err(e) => e.status().unwrap_or(500),
                    };
                    let response = request.response(status, None);
                    prop_assert_eq!(receiver.send_response(&response), Ok(Outcome::Unchanged));
                    let sender = table.match_response(&response).unwrap();
                    prop_assert_eq!(sender.id(), &ends[from].id);
                    prop_assert!(sender.receive_response(&response).is_ok());
                    if request.method == Method::Invite && status == 200 {
                        let ack = sender.ack_for_2xx(seq, via("z9hG4bKack"));
                        let receiver = table.match_request(&ack).unwrap();
                        prop_assert_eq!(receiver.receive_request(&ack), Ok(()));
                    }
                }
            }
        }
        prop_assert_eq!(table.len(), 2);
    }
}
