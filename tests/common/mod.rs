//! Shared helpers for the interop tests: a gateway process on free loopback
//! ports with its own store, and the real peers that talk to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod audio;
pub mod http;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A UDP+TCP port pair free on `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((ip, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// Fails with a clear message when a peer program is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "{program} is not installed: run scripts/install-test-deps.sh (the README's test command does)");
}

pub struct Gateway {
    pub port: u16,
    /// The control API's port (on 127.0.0.1).
    pub api_port: u16,
    pub ip: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts the gateway on the demo configuration, moved to free ports on
    /// `ip` (127.0.0.1 or ::1), with `extra` TOML appended to `[registrar]`.
    pub fn start(ip: &str, registrar_extra: &str) -> Gateway {
        let extra = format!("[registrar]\n{registrar_extra}\n");
        Self::start_with(ip, |c| c.replace("[registrar]\n", &extra))
    }

    /// Starts the gateway on the demo configuration as changed by `edit`.
    pub fn start_with(ip: &str, edit: impl Fn(String) -> String) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(ip);
        Self::start_in(dir, ip, port, edit)
    }

    pub fn start_in(
        dir: tempfile::TempDir,
        ip: &str,
        port: u16,
        edit: impl Fn(String) -> String,
    ) -> Gateway {
        let demo = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml"),
        )
        .unwrap();
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        let db = dir.path().join("switchboard.db");
        // Gateways run side by side in the tests: each API gets a port.
        let api_port = loop {
            let p = free_port("127.0.0.1");
            if p != port {
                break p;
            }
        };
        let config = demo
            .replace(
                "listen = \"127.0.0.1:8080\"",
                &format!("listen = \"127.0.0.1:{api_port}\""),
            )
            .replace("\"127.0.0.1:5060\"", &format!("\"{host}:{port}\""))
            .replace(
                "path = \"var/switchboard.db\"",
                &format!("path = {:?}", db.display().to_string()),
            )
            .replace("level = \"info\"", "level = \"debug\"");
        let config = edit(config);
        let config_path = dir.path().join("switchboard.toml");
        fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let gw = Gateway {
            port,
            api_port,
            ip: ip.to_owned(),
            dir,
            child: Some(child),
            log,
        };
        gw.wait_for_log("registrations restored", Duration::from_secs(20));
        gw
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.parse().unwrap(), self.port)
    }

    /// `ip:port` as SIPp and baresip want it.
    pub fn target(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway log never showed {needle:?}:\n{}", self.log());
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("switchboard.db")
    }

    /// SIGTERM, then wait for a clean exit; returns the temp dir so a
    /// restart can reuse the store.
    pub fn stop(mut self) -> (tempfile::TempDir, u16, i32) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("gateway did not stop on SIGTERM:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        };
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.port, code)
    }
}

impl Gateway {
    /// SIGKILL, as a crash or a power cut would: no shutdown code runs.
    /// The temp dir (store, config) stays with `self`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp")
}

/// A UDP port `p` with `p + 2` free too: SIPp binds its audio RTP socket
/// on `-mp` and its video one two ports above.
fn free_media_port(ip: &str) -> u16 {
    for _ in 0..100 {
        let audio = UdpSocket::bind((ip, 0)).unwrap();
        let port = audio.local_addr().unwrap().port();
        if port < u16::MAX - 2 && UdpSocket::bind((ip, port + 2)).is_ok() {
            return port;
        }
    }
    panic!("no free media port pair on {ip}");
}

/// Runs a SIPp scenario against the gateway and returns (success, output).
/// Ports are chosen free but other tests run meanwhile: a run that could
/// not bind its sockets is tried again.
pub fn sipp(gw: &Gateway, scenario: &str, args: &[&str]) -> (bool, String) {
    sipp_at(gw, None, scenario, args)
}

/// Like [`sipp`], with SIPp's SIP socket on `port` when given (a carrier
/// must send from the trunk's peer address).
pub fn sipp_at(gw: &Gateway, port: Option<u16>, scenario: &str, args: &[&str]) -> (bool, String) {
    let mut result = sipp_once(gw, port, scenario, args);
    for _ in 0..2 {
        if result.0 || !result.1.contains("Unable to bind") {
            break;
        }
        result = sipp_once(gw, port, scenario, args);
    }
    result
}

fn sipp_once(gw: &Gateway, port: Option<u16>, scenario: &str, args: &[&str]) -> (bool, String) {
    require("sipp");
    let local = port.unwrap_or_else(|| free_port(&gw.ip));
    let media = free_media_port(&gw.ip);
    let out = Command::new("sipp")
        .current_dir(sipp_dir())
        .args([
            "-sf",
            scenario,
            "-i",
            &gw.ip,
            "-p",
            &local.to_string(),
            "-mp",
            &media.to_string(),
        ])
        .args([
            "-timeout",
            "20s",
            "-timeout_error",
            "-max_recv_loops",
            "1000",
        ])
        .args(args)
        .arg(gw.target())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The bindings the store holds (read from the SQLite file).
pub fn stored_contacts(db: &Path, aor: &str) -> Vec<String> {
    let store = switchboard::storage::Store::open(db).unwrap();
    store
        .load_bindings(std::time::SystemTime::now())
        .unwrap()
        .into_iter()
        .filter(|b| b.aor == aor)
        .map(|b| b.contact)
        .collect()
}
