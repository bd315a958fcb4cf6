//! What the gateway does with each RFC 4475 message: the parser's verdict and
//! the answer the endpoint sends, against `manifest.toml`.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use switchboard::sip::auth::Algorithm;
use switchboard::sip::endpoint::{Endpoint, EndpointConfig, Input, Output};
use switchboard::sip::flow::Flow;
use switchboard::sip::message::{parse, Message};
use switchboard::sip::registrar::RegistrarConfig;
use switchboard::sip::transaction::TimerConfig;
use switchboard::sip::transport::Transport;

use super::manifest::{self, Entry, Expect, Kind};

/// A UAS for example.com, the domain the torture messages are addressed to.
fn endpoint(now: Instant) -> Endpoint {
    let config = EndpointConfig {
        domain: "example.com".into(),
        user_agent: "Switchboard/torture".into(),
        timers: TimerConfig::default(),
        registrar: RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            qualify_interval: None,
            qualify_failures: 2,
        },
        realm: "example.com".into(),
        algorithms: vec![Algorithm::Md5],
        nonce_ttl: Duration::from_secs(300),
        max_failures: 1000,
        failure_window: Duration::from_secs(60),
        block: Duration::from_secs(1),
        agents: vec![("user".into(), "secret".into())],
        dial_permissions: Default::default(),
        known_targets: vec!["user".into()],
        trunks: Vec::new(),
        listen: Vec::new(),
        media: None,
        queues: Default::default(),
    };
    match Endpoint::new(config, now) {
        Ok(e) => e,
        Err(e) => panic!("endpoint: {e}"),
    }
}

/// The status codes of the final responses the endpoint sends for `data`.
fn answers(data: &[u8]) -> Vec<u16> {
    let now = Instant::now();
    let mut ep = endpoint(now);
    let flow = Flow {
        transport: Transport::Udp,
        local: "192.0.2.1:5060".parse().unwrap_or_else(|e| panic!("{e}")),
        remote: "192.0.2.99:5060".parse().unwrap_or_else(|e| panic!("{e}")),
        connection: None,
    };
    ep.handle_input(
        now,
        SystemTime::now(),
        Input::Message {
            flow,
            data: Bytes::copy_from_slice(data),
        },
    );
    let mut codes = Vec::new();
    while let Some(out) = ep.poll_output() {
        if let Output::Transmit { data, .. } = out {
            let status = std::str::from_utf8(&data[..data.len().min(12)])
                .ok()
                .and_then(|l| l.strip_prefix("SIP/2.0 "))
                .and_then(|l| l.get(..3))
                .and_then(|c| c.parse::<u16>().ok());
            match status {
                Some(100) => {}
                Some(code) => codes.push(code),
                None => panic!(
                    "the endpoint sent a request: {}",
                    String::from_utf8_lossy(&data)
                ),
            }
        }
    }
    codes
}

fn check(entry: &Entry) -> Result<(), String> {
    let data = std::fs::read(manifest::dir().join(format!("{}.dat", entry.name)))
        .map_err(|e| e.to_string())?;
    let parsed = parse(&data);
    if entry.must_parse {
        match (&parsed, entry.kind) {
            (Ok(Message::Request(_)), Kind::Request)
            | (Ok(Message::Response(_)), Kind::Response) => {}
            (other, _) => return Err(format!("must parse as a {:?}, got {other:?}", entry.kind)),
        }
    }
    // Whatever parses prints to a fixed point.
    switchboard::sip::message::fuzz::parse_roundtrip(&data);
    let codes = answers(&data);
    let allowed: Vec<u16> = entry
        .answer
        .into_iter()
        .chain(entry.alternatives.iter().copied())
        .collect();
    let ok = match (entry.expect, entry.kind) {
        (Expect::InvalidDrop, _) | (Expect::Valid, Kind::Response) => codes.is_empty(),
        (Expect::Invalid400, _) => codes == [400],
        (Expect::ValidSemantic, _) => codes.len() == 1 && allowed.contains(&codes[0]),
        // Processed normally: one answer, and not a complaint about the message.
        (Expect::Valid, Kind::Request) => {
            codes.len() == 1 && (codes[0] != 400 || allowed.contains(&400)) && codes[0] < 500
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {:?} {allowed:?}, answered {codes:?} (parse: {:?})",
            entry.expect,
            parsed.err()
        ))
    }
}

#[test]
fn every_torture_message_gets_the_rfc_answer() -> Result<(), Box<dyn std::error::Error>> {
    let mut failures = Vec::new();
    for entry in manifest::load()? {
        if let Err(why) = check(&entry) {
            failures.push(format!("{} ({}): {why}", entry.name, entry.section));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the torture messages were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
