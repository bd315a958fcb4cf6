//! The registrar against SIPp (Debian `sip-tester`) over loopback: digest
//! REGISTER, wrong password, unregister, OPTIONS, persistence across a
//! restart, IPv6 and TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{sipp, stored_contacts, Gateway};

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn sipp_registers_with_digest_and_binding_survives_restart() {
    let gw = Gateway::start("127.0.0.1", "");
    let (ok, out) = sipp(&gw, "register_auth.xml", &["-inf", "agents.csv", "-m", "3"]);
    assert!(ok, "register_auth failed:\n{out}\n{}", gw.log());
    for agent in ["1001", "1002", "1003"] {
        wait_for("persisted binding", || {
            stored_contacts(&gw.db_path(), agent).len() == 1
        });
    }
    gw.wait_for_log("registered agent=1001", Duration::from_secs(5));

    // Clean shutdown, then a restart on the same store restores them.
    let (dir, port, code) = gw.stop();
    assert_eq!(code, 0, "clean exit on SIGTERM");
    let gw = Gateway::start_in(dir, "127.0.0.1", port, |c| c);
    gw.wait_for_log("registrations restored bindings=3", Duration::from_secs(5));
}

#[test]
fn sipp_wrong_password_is_rejected_and_stores_nothing() {
    let gw = Gateway::start("127.0.0.1", "");
    let (ok, out) = sipp(
        &gw,
        "register_wrong_password.xml",
        &["-inf", "agents.csv", "-m", "1"],
    );
    assert!(ok, "wrong password scenario failed:\n{out}\n{}", gw.log());
    gw.wait_for_log("authentication failed", Duration::from_secs(5));
    thread::sleep(Duration::from_millis(300));
    assert!(stored_contacts(&gw.db_path(), "1001").is_empty());
}

#[test]
fn sipp_unregister_removes_the_binding() {
    let gw = Gateway::start("127.0.0.1", "");
    let (ok, out) = sipp(&gw, "unregister.xml", &["-inf", "agents.csv", "-m", "1"]);
    assert!(ok, "unregister failed:\n{out}\n{}", gw.log());
    gw.wait_for_log("binding removed aor=1001", Duration::from_secs(5));
    wait_for("binding gone from the store", || {
        stored_contacts(&gw.db_path(), "1001").is_empty()
    });
}

#[test]
fn sipp_options_gets_200_with_allow() {
    let gw = Gateway::start("127.0.0.1", "");
    let (ok, out) = sipp(&gw, "options.xml", &["-m", "1"]);
    assert!(ok, "options failed:\n{out}\n{}", gw.log());
}

#[test]
fn sipp_registers_over_ipv6() {
    let gw = Gateway::start("::1", "");
    let (ok, out) = sipp(&gw, "register_auth.xml", &["-inf", "agents.csv", "-m", "1"]);
    assert!(ok, "IPv6 register failed:\n{out}\n{}", gw.log());
    wait_for("persisted IPv6 binding", || {
        stored_contacts(&gw.db_path(), "1001").len() == 1
    });
}

#[test]
fn sipp_registers_over_tcp() {
    let gw = Gateway::start("127.0.0.1", "");
    let (ok, out) = sipp(
        &gw,
        "register_auth.xml",
        &["-inf", "agents.csv", "-m", "1", "-t", "t1"],
    );
    assert!(ok, "TCP register failed:\n{out}\n{}", gw.log());
    wait_for("persisted TCP binding", || {
        stored_contacts(&gw.db_path(), "1001").len() == 1
    });
}
