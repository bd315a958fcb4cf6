//! A real softphone (baresip) registering to the gateway as agent 1001 with
//! the demo password; a wrong password is refused; un-registering on exit
//! removes the binding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, require, stored_contacts, Gateway};

struct Baresip {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Baresip {
    fn start(gw: &Gateway, user: &str, password: &str) -> Baresip {
        require("baresip");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port("127.0.0.1");
        fs::write(
            dir.path().join("config"),
            format!(
                "sip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\ndns_server 127.0.0.1:53\n\
module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n"
            ),
        )
        .unwrap();
        fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{user}@{}>;auth_pass={password};regint=600\n",
                gw.target()
            ),
        )
        .unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Baresip { child, _dir: dir }
    }

    /// Gone without a word (no un-REGISTER): a crashed or unplugged phone.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// baresip un-registers on its first SIGTERM and exits on the second.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        thread::sleep(Duration::from_millis(1500));
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn baresip_registers_as_1001_and_unregisters_on_exit() {
    let gw = Gateway::start("127.0.0.1", "");
    let phone = Baresip::start(&gw, "1001", "pass1001");
    gw.wait_for_log("registered agent=1001", Duration::from_secs(15));
    wait_for("binding in the store", || {
        stored_contacts(&gw.db_path(), "1001").len() == 1
    });
    phone.terminate();
    gw.wait_for_log("binding removed aor=1001", Duration::from_secs(10));
    wait_for("binding removed from the store", || {
        stored_contacts(&gw.db_path(), "1001").is_empty()
    });
}

#[test]
fn baresip_with_wrong_password_is_refused() {
    let gw = Gateway::start("127.0.0.1", "");
    let phone = Baresip::start(&gw, "1002", "not-the-password");
    gw.wait_for_log("authentication failed user=1002", Duration::from_secs(15));
    thread::sleep(Duration::from_millis(500));
    assert!(!gw.log().contains("registered agent=1002"));
    assert!(stored_contacts(&gw.db_path(), "1002").is_empty());
    drop(phone);
}

/// Qualify: a live phone answers the gateway's OPTIONS and stays reachable;
/// once it is gone the pings time out and the contact is marked unreachable.
/// T1 is shortened so that Timer F (64×T1) takes 3.2 s instead of 32 s.
#[test]
fn qualify_keeps_a_live_phone_reachable_and_marks_a_dead_one() {
    let gw = Gateway::start_with("127.0.0.1", |c| {
        c.replace("qualify_interval_secs = 30", "qualify_interval_secs = 1")
            .replace(
                "[registrar]",
                "[sip.timers]\nt1_ms = 50\nt2_ms = 400\n\n[registrar]",
            )
    });
    let phone = Baresip::start(&gw, "1001", "pass1001");
    gw.wait_for_log("registered agent=1001", Duration::from_secs(15));
    thread::sleep(Duration::from_secs(5));
    assert!(
        !gw.log().contains("contact unreachable"),
        "a phone answering OPTIONS was marked unreachable:\n{}",
        gw.log()
    );
    phone.kill();
    gw.wait_for_log(
        "contact unreachable (qualify) aor=1001",
        Duration::from_secs(20),
    );
}
