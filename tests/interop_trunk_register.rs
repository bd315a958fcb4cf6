//! The registration client against a real registrar: gateway A has a trunk
//! whose peer is gateway B and registers with it as B's agent 1003 (digest
//! authenticated); on SIGTERM A un-registers before exiting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{stored_contacts, Gateway};

#[test]
fn gateway_registers_with_a_trunk_and_unregisters_at_shutdown() {
    let carrier = Gateway::start("127.0.0.1", "");
    let peer = carrier.target();
    let gateway = Gateway::start_with("127.0.0.1", |c| {
        c.replace("peer = \"127.0.0.1:5080\"", &format!("peer = \"{peer}\""))
            .replace(
                "transport = \"udp\"\ndids = [\"+15550100\", \"+15550101\"]\n",
                "transport = \"udp\"\ndids = [\"+15550100\", \"+15550101\"]\n\n[trunks.register]\nusername = \"1003\"\npassword = \"pass1003\"\nexpires_secs = 120\n",
            )
    });
    assert!(gateway.log().contains("configuration loaded"));
    gateway.wait_for_log(
        "registered with trunk trunk=carrier",
        Duration::from_secs(10),
    );
    carrier.wait_for_log("registered agent=1003", Duration::from_secs(5));
    assert_eq!(stored_contacts_eventually(&carrier, 1), 1);

    let (_, _, code) = gateway.stop();
    assert_eq!(code, 0);
    carrier.wait_for_log("binding removed aor=1003", Duration::from_secs(5));
    assert_eq!(stored_contacts_eventually(&carrier, 0), 0);
}

fn stored_contacts_eventually(gw: &Gateway, want: usize) -> usize {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = stored_contacts(&gw.db_path(), "1003").len();
        if n == want || std::time::Instant::now() > end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
