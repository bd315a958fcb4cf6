//! An agent puts a queued caller on hold, with real peers over loopback:
//! baresip as the carrier (127.0.0.1:5080) calling the support DID with a
//! 440 Hz microphone, and SIPp as agent 1002's phone (tests/sipp/
//! agent_hold.xml) that answers the gateway's INVITE, streams a 1633 Hz
//! tone, holds with a re-INVITE `a=sendonly`, resumes with `a=sendrecv` and
//! hangs up. The caller must hear the configured `[media] hold_music` (a
//! 697 Hz tone here) while held, and only then, the agent before and after,
//! and the call record must count the hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::net::UdpSocket;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::audio::*;
use common::{free_port, sipp_at, Gateway};
use switchboard::call::record::{CallOutcome, HungUpBy};

const CALLER_TONE: f64 = 440.0;
/// What the SIPp phone sends (tests/sipp/tone-1633hz.ulaw).
const AGENT_TONE: f64 = 1633.0;
const HOLD_TONE: f64 = 697.0;
/// The scenario's timeline after the ACK: talk, hold, talk, BYE.
const TALK_BEFORE: f64 = 3.0;
const HOLD: f64 = 4.0;
const TALK_AFTER: f64 = 3.0;
/// Seconds in one analysis block.
const BLOCK_SECS: f64 = BLOCK as f64 / RATE as f64;

/// The demo configuration with `hold_music` a pure tone, and no OPTIONS
/// probes: between the REGISTER (one SIPp run) and the call (another, on
/// the same port) nobody would answer them, and the SIPp server scenario
/// would take a probe for an unexpected call.
fn hold_gateway(rec: &Path, hold_music: &Path) -> Gateway {
    let hold_music = hold_music.display().to_string();
    gateway_edited(rec, move |c| {
        for needle in ["qualify_interval_secs = 30\n", "[media]\n"] {
            assert!(c.contains(needle), "demo config lacks {needle:?}");
        }
        c.replace(
            "qualify_interval_secs = 30\n",
            "qualify_interval_secs = 0\n",
        )
        .replace(
            "[media]\n",
            &format!("[media]\nhold_music = {hold_music:?}\n"),
        )
    })
}

/// Registers agent 1002 with digest authentication from SIPp on `port`,
/// where the agent's SIPp phone will then listen.
fn register_1002(gw: &Gateway, dir: &Path, port: u16) {
    let csv = dir.join("agent-1002.csv");
    fs::write(&csv, "SEQUENTIAL\n1002;pass1002;\n").unwrap();
    let csv = csv.display().to_string();
    let (ok, out) = sipp_at(
        gw,
        Some(port),
        "register_auth.xml",
        &["-inf", &csv, "-m", "1"],
    );
    assert!(ok, "register_auth failed:\n{out}\n{}", gw.log());
    registered(gw, "1002");
}

/// The index range of the blocks where `tone` dominates, first to last.
fn span_of(tones: &[Option<f64>], tone: f64) -> Option<(usize, usize)> {
    let first = tones.iter().position(|t| *t == Some(tone))?;
    let last = tones.iter().rposition(|t| *t == Some(tone))?;
    Some((first, last))
}

fn seconds_of(tones: &[Option<f64>], tone: f64) -> f64 {
    tones.iter().filter(|t| **t == Some(tone)).count() as f64 * BLOCK_SECS
}

#[test]
fn an_agent_on_hold_gives_the_caller_hold_music_then_the_conversation_back() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let caller_mic = wavs.path().join("caller-440.wav");
    sox_wav(
        &caller_mic,
        RATE,
        &["synth", "40", "sine", "440", "vol", "0.3"],
    );
    let hold_music = wavs.path().join("hold-697.wav");
    sox_wav(
        &hold_music,
        RATE,
        &["synth", "30", "sine", "697", "vol", "0.3"],
    );
    // The phone used to dial *21 only needs some microphone.
    let login_mic = caller_mic.clone();

    let gw = hold_gateway(rec.path(), &hold_music);
    let agent_port = free_port("127.0.0.1");
    register_1002(&gw, wavs.path(), agent_port);

    // The caller's baresip quits on its own once the call (about 12 s:
    // bridged at once, then the scenario's 10 s) is long over.
    let (agent, mut caller) = thread::scope(|s| {
        let agent = s.spawn(|| {
            sipp_at(
                &gw,
                Some(agent_port),
                "agent_hold.xml",
                &["-m", "1", "-timeout", "60s"],
            )
        });
        // The phone must listen before it is logged in (and so offered
        // calls): an INVITE to a closed port fails the offer at once.
        wait_until(
            "the agent's SIPp on its port",
            Duration::from_secs(10),
            || UdpSocket::bind(("127.0.0.1", agent_port)).is_err(),
        );
        log_in(&gw, &login_mic, "1002");
        // Another test binary (another checkout on this machine) may be
        // playing the carrier right now: wait for its port.
        wait_until(
            "port 5080 free for the carrier",
            Duration::from_secs(40),
            || UdpSocket::bind(("127.0.0.1", CARRIER_PORT)).is_ok(),
        );
        let caller = carrier_call(&gw, "+15551230006", "+15550100", &caller_mic, 22);
        gw.wait_for_log("caller queued", Duration::from_secs(15));
        gw.wait_for_log("call bridged", Duration::from_secs(15));
        (agent.join().unwrap(), caller)
    });
    let (ok, out) = agent;
    assert!(ok, "agent_hold failed:\n{out}\n{}", gw.log());
    caller.wait(Duration::from_secs(40));
    let log = gw.log();
    let bridged = log.find("call bridged");
    let held = log.find("agent=1002 held=true");
    let resumed = log.find("agent=1002 held=false");
    assert!(
        bridged.is_some() && bridged < held && held < resumed,
        "bridge, hold and resume not logged in order:\n{log}"
    );

    // What the caller heard, 100 ms block by block.
    let heard = caller.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let tones = block_tones(
        &mono,
        heard.sample_rate(),
        &[CALLER_TONE, AGENT_TONE, HOLD_TONE],
    );
    let summary = format!(
        "caller heard: agent {:.1} s, hold music {:.1} s, itself {:.1} s in {:.1} s",
        seconds_of(&tones, AGENT_TONE),
        seconds_of(&tones, HOLD_TONE),
        seconds_of(&tones, CALLER_TONE),
        tones.len() as f64 * BLOCK_SECS,
    );
    eprintln!("{summary}");
    let Some((hold_start, hold_end)) = span_of(&tones, HOLD_TONE) else {
        panic!("the caller never heard the hold music: {summary}\n{log}");
    };
    let hold_span = &tones[hold_start..=hold_end];
    let before = &tones[..hold_start];
    let after = &tones[hold_end + 1..];
    let timeline = format!(
        "{summary}; hold music from {:.1} s to {:.1} s",
        hold_start as f64 * BLOCK_SECS,
        (hold_end + 1) as f64 * BLOCK_SECS
    );
    // Held for 4 s: most of it must be the hold music, in one stretch.
    assert!(
        seconds_of(hold_span, HOLD_TONE) >= HOLD - 1.5,
        "too little hold music: {timeline}"
    );
    assert!(
        (hold_span.len() as f64) * BLOCK_SECS <= HOLD + 1.5,
        "hold music outside the hold: {timeline}"
    );
    // The agent's phone keeps sending while it holds (sendonly): none of
    // that may reach the caller then; a block at either edge may.
    assert!(
        seconds_of(hold_span, AGENT_TONE) <= 2.0 * BLOCK_SECS,
        "the caller heard the agent during the hold: {timeline}"
    );
    // The conversation before the hold and after the resume.
    assert!(
        seconds_of(before, AGENT_TONE) >= TALK_BEFORE - 1.5,
        "too little of the agent before the hold: {timeline}"
    );
    assert!(
        seconds_of(after, AGENT_TONE) >= TALK_AFTER - 1.5,
        "the conversation did not come back after the hold: {timeline}"
    );
    assert_eq!(
        seconds_of(&tones, CALLER_TONE),
        0.0,
        "the caller heard itself: {timeline}"
    );

    let records = call_records(&gw);
    assert_eq!(records.len(), 1, "{records:?}");
    let cdr = &records[0];
    eprintln!(
        "call record: wait {:?}, talk {:?}, hold {:?}",
        cdr.wait, cdr.talk, cdr.hold
    );
    assert_eq!(cdr.outcome, CallOutcome::Answered, "{cdr:?}");
    assert_eq!(cdr.agent.as_ref().map(|a| a.as_str()), Some("1002"));
    assert_eq!(cdr.hung_up_by, Some(HungUpBy::Agent), "{cdr:?}");
    assert!(
        cdr.hold >= Duration::from_secs(3) && cdr.hold <= Duration::from_secs(7),
        "hold time {:?}: {cdr:?}",
        cdr.hold
    );
    assert!(cdr.talk >= Duration::from_secs(5), "{cdr:?}");
}
