//! The control API with a real call (issue 5): baresip as the carrier and
//! as agent 1001's phone, the API on the gateway's own port. Events arrive
//! over the WebSocket in order; hold, transfer and hang-up act on the real
//! call; the recording downloads byte-identical to the file on disk, and a
//! Range request returns the right bytes; an agent token cannot read
//! another agent's calls or any recording, QA can.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::thread;
use std::time::Duration;

use common::audio::*;
use common::http::{request, EventStream, HttpResponse};

const CALLER_TONE: f64 = 440.0;
const AGENT_TONE: f64 = 1633.0;

fn get(port: u16, path: &str, token: &str) -> HttpResponse {
    request(
        port,
        "GET",
        &format!("/api/v1{path}"),
        Some(token),
        &[],
        None,
    )
}

fn post(port: u16, path: &str, token: &str, body: Option<&str>) -> HttpResponse {
    request(
        port,
        "POST",
        &format!("/api/v1{path}"),
        Some(token),
        &[],
        body,
    )
}

/// Waits (bounded) until the event stream holds an event of `kind`.
fn wait_event(events: &EventStream, kind: &str) -> serde_json::Value {
    wait_until(&format!("a {kind} event"), Duration::from_secs(10), || {
        !events.of_type(kind).is_empty()
    });
    events.of_type(kind).remove(0)
}

#[test]
fn a_real_call_is_watched_and_steered_over_the_api() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let caller_mic = wavs.path().join("caller.wav");
    sox_wav(
        &caller_mic,
        RATE,
        &["synth", "40", "sine", "440", "vol", "0.3"],
    );
    let agent_mic = wavs.path().join("agent.wav");
    sox_wav(
        &agent_mic,
        RATE,
        &["synth", "40", "sine", "1633", "vol", "0.3"],
    );
    let gw = gateway(rec.path(), "");
    gw.wait_for_log("control API listening", Duration::from_secs(10));
    let api = gw.api_port;
    let events = EventStream::connect(api, "supervisor-demo");

    let agent = Baresip::agent(&gw, "1001", &agent_mic, 60);
    registered(&gw, "1001");
    // The agent's desktop logs it in; another agent's token may not.
    assert_eq!(
        post(api, "/agents/1001/login", "agent-1002-demo", None).status,
        403
    );
    let login = post(api, "/agents/1001/login", "agent-1001-demo", None);
    assert!(login.status < 300, "{} {}", login.status, login.text());

    let caller = carrier_call(&gw, "+15551230100", "+15550100", &caller_mic, 30);
    gw.wait_for_log("call bridged", Duration::from_secs(20));
    let calls = get(api, "/calls", "supervisor-demo").json();
    let call = &calls["calls"][0];
    assert_eq!(call["state"], "connected", "{calls}");
    assert_eq!(call["agent"], "1001");
    let number = call["call"].as_u64().unwrap();
    // Agent 1002 does not see 1001's call; 1001 does.
    let theirs = get(api, "/calls", "agent-1002-demo").json();
    assert_eq!(
        theirs["calls"].as_array().map(Vec::len),
        Some(0),
        "{theirs}"
    );
    let mine = get(api, "/calls", "agent-1001-demo").json();
    assert_eq!(mine["calls"].as_array().map(Vec::len), Some(1), "{mine}");
    // QA reads but does not steer.
    assert_eq!(
        post(api, &format!("/calls/{number}/hold"), "qa-demo", None).status,
        403
    );

    // The supervisor holds and resumes the call.
    thread::sleep(Duration::from_secs(2));
    let held = post(
        api,
        &format!("/calls/{number}/hold"),
        "supervisor-demo",
        None,
    );
    assert!(held.status < 300, "{} {}", held.status, held.text());
    wait_event(&events, "call_held");
    thread::sleep(Duration::from_secs(3));
    assert!(
        post(
            api,
            &format!("/calls/{number}/unhold"),
            "supervisor-demo",
            None
        )
        .status
            < 300
    );
    wait_event(&events, "call_resumed");
    thread::sleep(Duration::from_secs(2));

    // Blind transfer to the sales queue: the agent's phone is released, the
    // caller waits in sales (nobody logged in there).
    let moved = post(
        api,
        &format!("/calls/{number}/transfer"),
        "supervisor-demo",
        Some(r#"{"target":"queue:sales"}"#),
    );
    assert!(moved.status < 300, "{} {}", moved.status, moved.text());
    wait_event(&events, "call_transferred");
    gw.wait_for_log("transferred by the control API", Duration::from_secs(5));
    let queues = get(api, "/queues", "supervisor-demo").json();
    let sales = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "sales")
        .cloned()
        .unwrap();
    assert_eq!(
        sales["waiting"].as_array().map(Vec::len),
        Some(1),
        "{queues}"
    );

    // Hang up from the API: the caller gets our BYE.
    let hung = post(
        api,
        &format!("/calls/{number}/hangup"),
        "supervisor-demo",
        None,
    );
    assert!(hung.status < 300, "{} {}", hung.status, hung.text());
    gw.wait_for_log("hung up by the control API", Duration::from_secs(5));
    wait_event(&events, "call_ended");
    drop((agent, caller));

    // The events came in order, numbered.
    let seqs: Vec<u64> = events
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let types = events.types();
    let at = |kind: &str| {
        types
            .iter()
            .position(|t| t == kind)
            .unwrap_or_else(|| panic!("no {kind} in {types:?}"))
    };
    assert!(at("queue_caller_joined") < at("call_offered"), "{types:?}");
    assert!(at("call_offered") < at("call_answered"), "{types:?}");
    assert!(at("call_answered") < at("recording_started"), "{types:?}");
    assert!(at("recording_started") < at("call_held"), "{types:?}");
    assert!(at("call_held") < at("call_resumed"), "{types:?}");
    assert!(at("call_resumed") < at("call_transferred"), "{types:?}");
    assert!(at("call_transferred") < at("call_ended"), "{types:?}");

    // The recording: QA finds it and downloads it byte for byte.
    wait_until("the recording is listed", Duration::from_secs(10), || {
        get(api, "/recordings", "qa-demo").json()["recordings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let listed = get(api, "/recordings", "qa-demo").json();
    let audio_path = listed["recordings"][0]["audio"]
        .as_str()
        .unwrap()
        .trim_start_matches("/api/v1")
        .to_owned();
    let on_disk = std::fs::read(&files_ending(rec.path(), ".wav")[0]).unwrap();
    let whole = get(api, &audio_path, "qa-demo");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole.body == on_disk, "the download differs from the file");
    let part = request(
        api,
        "GET",
        &format!("/api/v1{audio_path}"),
        Some("qa-demo"),
        &[("Range", "bytes=100-1099")],
        None,
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, on_disk[100..1100]);
    let expected = format!("bytes 100-1099/{}", on_disk.len());
    assert_eq!(part.header("content-range"), Some(expected.as_str()));
    // The agent can read no recording; the caller and agent are on their
    // channels.
    assert_eq!(get(api, "/recordings", "agent-1001-demo").status, 403);
    assert_eq!(get(api, &audio_path, "agent-1001-demo").status, 403);
    let wav = recording(rec.path());
    let left = ToneCount::of(
        &channel(wav.samples(), 2, 0),
        RATE,
        &[CALLER_TONE, AGENT_TONE],
    );
    let right = ToneCount::of(
        &channel(wav.samples(), 2, 1),
        RATE,
        &[CALLER_TONE, AGENT_TONE],
    );
    assert!(left.seconds_of(CALLER_TONE) >= 3.0, "{left:?}");
    assert!(right.seconds_of(AGENT_TONE) >= 2.0, "{right:?}");

    // The call record, as QA and the answering agent see it.
    let records = get(api, "/records", "qa-demo").json();
    assert_eq!(
        records["records"].as_array().map(Vec::len),
        Some(1),
        "{records}"
    );
    let other = get(api, "/records", "agent-1002-demo").json();
    assert_eq!(
        other["records"].as_array().map(Vec::len),
        Some(0),
        "{other}"
    );
}

/// Click-to-call through the API: agent 1001's phone rings first (and
/// answers), then the customer (SIPp's UAS echoing RTP at the trunk); the
/// agent hears its own tone back through the customer's leg.
#[test]
fn click_to_call_rings_the_agent_then_the_customer() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let agent_mic = wavs.path().join("agent.wav");
    sox_wav(
        &agent_mic,
        RATE,
        &["synth", "40", "sine", "1633", "vol", "0.3"],
    );
    let gw = gateway(rec.path(), "");
    gw.wait_for_log("control API listening", Duration::from_secs(10));
    let api = gw.api_port;
    let mut agent = Baresip::agent(&gw, "1001", &agent_mic, 16);
    registered(&gw, "1001");
    let _carrier = CarrierUas::start();
    let placed = post(
        api,
        "/calls",
        "agent-1001-demo",
        Some(r#"{"agent":"1001","number":"2125550123"}"#),
    );
    assert!(placed.status < 300, "{} {}", placed.status, placed.text());
    gw.wait_for_log("outbound call bridged", Duration::from_secs(15));
    // 1002 may not place calls for 1001.
    let not_yours = post(
        api,
        "/calls",
        "agent-1002-demo",
        Some(r#"{"agent":"1001","number":"2125550123"}"#),
    );
    assert_eq!(not_yours.status, 403);
    agent.wait(Duration::from_secs(30));
    let calls = agent.heard_all();
    let wav = calls.last().expect("the agent's phone took the call");
    let heard = ToneCount::of(
        &channel(wav.samples(), wav.channels(), 0),
        wav.sample_rate(),
        &[AGENT_TONE],
    );
    assert!(
        heard.seconds_of(AGENT_TONE) >= 3.0,
        "no echo from the customer: {heard:?}\n{}",
        gw.log()
    );
    let records = get(api, "/records", "qa-demo").json();
    assert_eq!(records["records"][0]["direction"], "outbound", "{records}");
}
