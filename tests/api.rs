//! The control API served by a running gateway: the signalling loop
//! answers its commands (readiness), tokens are required, and a taken API
//! port stops the start. The call flows themselves are driven through the
//! API in the interop tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{free_port, Gateway};

/// One HTTP/1.1 request; returns the status and the body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_gateway_serves_the_api_and_answers_its_commands() {
    let gw = Gateway::start("127.0.0.1", "");
    gw.wait_for_log("control API listening", Duration::from_secs(10));
    assert_eq!(http(gw.api_port, "GET", "/api/v1/healthz", None).0, 200);
    // Ready means the signalling loop took the command and answered it.
    let (status, body) = http(gw.api_port, "GET", "/api/v1/readyz", None);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let (status, body) = http(gw.api_port, "GET", "/api/v1/agents", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing_token"), "{body}");
    let (status, body) = http(gw.api_port, "GET", "/api/v1/records", Some("qa-demo"));
    assert_eq!((status, body.as_str()), (200, r#"{"records":[]}"#));
    let (status, _) = http(gw.api_port, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let (_, _, code) = gw.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_taken_api_port_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api_port = taken.local_addr().unwrap().port();
    let sip_port = free_port("127.0.0.1");
    let config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml"),
    )
    .unwrap()
    .replace("\"127.0.0.1:5060\"", &format!("\"127.0.0.1:{sip_port}\""))
    .replace(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:{api_port}\""),
    )
    .replace(
        "path = \"var/switchboard.db\"",
        &format!(
            "path = {:?}",
            dir.path().join("sb.db").display().to_string()
        ),
    );
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("control API"), "{stderr}");
    assert!(stderr.contains(&api_port.to_string()), "{stderr}");
    drop(taken);
}
