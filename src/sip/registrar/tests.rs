#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::sip::message::{parse, Message};
use crate::sip::transport::Transport;

fn config() -> RegistrarConfig {
    RegistrarConfig {
        min_expires: 60,
        max_expires: 3600,
        default_expires: 1800,
        max_contacts: 3,
        qualify_interval: Some(Duration::from_secs(30)),
        qualify_failures: 2,
    }
}

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:40000".parse().unwrap(),
        connection: None,
    }
}

fn register(call_id: &str, cseq: u32, contact: &str, expires: Option<&str>) -> Request {
    let expires = expires
        .map(|e| format!("Expires: {e}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{cseq}\r\n\
From: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\n{expires}Content-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn register_lists_and_expires_bindings() {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let mut r = Registrar::new(config());
    let listed = r
        .register(
            t0,
            w0,
            "1001",
            &register("c1", 1, "<sip:1001@10.0.0.1:5062>", Some("120")),
            &flow(),
        )
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].params.get("expires"), Some(Some("120")));
    assert!(matches!(
        r.poll_event(),
        Some(RegistrarEvent::Updated { .. })
    ));
    // A second device (several contacts per agent), default expiry.
    r.register(
        t0,
        w0,
        "1001",
        &register("c2", 1, "<sip:1001@10.0.0.2>", None),
        &flow(),
    )
    .unwrap();
    assert_eq!(r.contacts("1001").len(), 2);
    // Virtual time: the first binding ends at 120 s, the second stays.
    r.handle_timeout(t0 + Duration::from_secs(121));
    assert_eq!(r.contacts("1001").len(), 1);
    assert_eq!(r.contacts("1001")[0].key, "sip:1001@10.0.0.2");
}

#[test]
fn interval_too_brief_and_clamp_to_max() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    let err = r
        .register(
            t0,
            w0,
            "1001",
            &register("c", 1, "<sip:1001@h>", Some("30")),
            &flow(),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min: 60 });
    assert_eq!(err.status(), 423);
    let listed = r
        .register(
            t0,
            w0,
            "1001",
            &register("c", 2, "<sip:1001@h>;expires=99999999999999", None),
            &flow(),
        )
        .unwrap();
    assert_eq!(listed[0].params.get("expires"), Some(Some("3600")));
}

#[test]
fn unregister_one_and_wildcard() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 1, "<sip:1001@a>", None),
        &flow(),
    )
    .unwrap();
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 2, "<sip:1001@b>", None),
        &flow(),
    )
    .unwrap();
    let listed = r
        .register(
            t0,
            w0,
            "1001",
            &register("c", 3, "<sip:1001@a>", Some("0")),
            &flow(),
        )
        .unwrap();
    assert_eq!(listed.len(), 1);
    // '*' needs Expires: 0.
    assert!(r
        .register(t0, w0, "1001", &register("c", 4, "*", None), &flow())
        .is_err());
    let listed = r
        .register(t0, w0, "1001", &register("c", 5, "*", Some("0")), &flow())
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(r.binding_count(), 0);
}

#[test]
fn out_of_order_cseq_is_refused() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 5, "<sip:1001@a>", None),
        &flow(),
    )
    .unwrap();
    let err = r
        .register(
            t0,
            w0,
            "1001",
            &register("c", 4, "<sip:1001@a>", None),
            &flow(),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::OutOfOrder);
    // Another Call-ID (a rebooted phone) replaces the binding.
    r.register(
        t0,
        w0,
        "1001",
        &register("other", 1, "<sip:1001@a>", None),
        &flow(),
    )
    .unwrap();
    assert_eq!(r.contacts("1001").len(), 1);
}

#[test]
fn contact_limit() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    for (i, host) in ["a", "b", "c"].iter().enumerate() {
        r.register(
            t0,
            w0,
            "1001",
            &register("c", i as u32 + 1, &format!("<sip:1001@{host}>"), None),
            &flow(),
        )
        .unwrap();
    }
    let err = r
        .register(
            t0,
            w0,
            "1001",
            &register("c", 9, "<sip:1001@d>", None),
            &flow(),
        )
        .unwrap_err();
    assert_eq!(err.status(), 403);
    // Refreshing an existing one is fine at the limit.
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 10, "<sip:1001@a>", None),
        &flow(),
    )
    .unwrap();
}

#[test]
fn qualify_probes_and_marks_unreachable() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 1, "<sip:1001@a>", None),
        &flow(),
    )
    .unwrap();
    while r.poll_event().is_some() {}
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let probes = r.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(probes.len(), 1);
    r.qualify_result("1001", "sip:1001@a", false);
    assert!(r.contacts("1001")[0].reachable, "one miss is tolerated");
    let probes = r.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(probes.len(), 1);
    r.qualify_result("1001", "sip:1001@a", false);
    assert!(!r.contacts("1001")[0].reachable);
    assert!(matches!(
        r.poll_event(),
        Some(RegistrarEvent::Reachability {
            reachable: false,
            ..
        })
    ));
    r.qualify_result("1001", "sip:1001@a", true);
    assert!(r.contacts("1001")[0].reachable);
}

#[test]
fn refreshes_keep_one_schedule_entry_per_binding() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut r = Registrar::new(config());
    // A phone refreshing 1,000 times (and a second one once): the schedules
    // hold one expiry and one qualify entry per binding, not one per refresh.
    for cseq in 1..=1000 {
        let at = t0 + Duration::from_millis(u64::from(cseq));
        r.register(
            at,
            w0,
            "1001",
            &register("c", cseq, "<sip:1001@a>", None),
            &flow(),
        )
        .unwrap();
    }
    r.register(
        t0,
        w0,
        "1001",
        &register("d", 1, "<sip:1001@b>", None),
        &flow(),
    )
    .unwrap();
    assert_eq!(r.scheduled(), (2, 2));
    r.register(
        t0,
        w0,
        "1001",
        &register("d", 2, "<sip:1001@b>", Some("0")).clone(),
        &flow(),
    )
    .unwrap();
    assert_eq!(r.scheduled(), (1, 1));
    r.register(
        t0,
        w0,
        "1001",
        &register("c", 1001, "*", Some("0")),
        &flow(),
    )
    .unwrap();
    assert_eq!(r.scheduled(), (0, 0));
}
