//! The call centre end to end (issue 4), with real peers over loopback:
//! baresip as the carrier at 127.0.0.1:5080 (the demo trunk's peer) calling
//! the DID +15550100, which the demo routes to the `support` queue; baresip
//! phones registered as agents 1001 and 1002, answering automatically, who
//! log in with the `*21` feature code. The tests check what each side
//! hears (Goertzel on baresip's dumps) and what the recording holds, not
//! only the signalling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::audio::*;
use common::{free_port, sipp_at, Gateway};
use switchboard::call::record::{CallDirection, CallOutcome, HungUpBy, OfferResult};
use switchboard::storage::{CallRecordFilter, Store};

const CALLER_TONE: f64 = 440.0;
const AGENT_TONE: f64 = 1633.0;
/// The queue's music in the first test (a tone, to be measurable).
const MUSIC_TONE: f64 = 697.0;

fn tones(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let caller = dir.join("caller-440.wav");
    sox_wav(&caller, RATE, &["synth", "40", "sine", "440", "vol", "0.3"]);
    let agent = dir.join("agent-1633.wav");
    sox_wav(&agent, RATE, &["synth", "40", "sine", "1633", "vol", "0.3"]);
    (caller, agent)
}

/// A caller waits in the queue hearing the greeting and music; agent 1001
/// logs in, is offered the call, answers; both hear each other; the caller
/// hanging up ends the agent's leg; the recording has the caller on the
/// left and the agent on the right.
#[test]
fn a_queued_caller_is_bridged_to_the_agent_who_logs_in_and_recorded() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    // The queue's music is a 697 Hz tone here, so that what the waiting
    // caller hears can be measured; no greeting.
    let music = wavs.path().join("music-697.wav");
    sox_wav(&music, RATE, &["synth", "30", "sine", "697", "vol", "0.3"]);
    let music_key = format!(
        "greeting = \"\"\nmusic = {:?}\n",
        music.display().to_string()
    );
    let gw = gateway_edited(rec.path(), move |c| {
        c.replace(
            "agents = [\"1001\", \"1002\"]\n",
            &format!("agents = [\"1001\", \"1002\"]\n{music_key}"),
        )
    });
    let agent = Baresip::agent(&gw, "1001", &agent_mic, 60);
    registered(&gw, "1001");

    let mut caller = carrier_call(&gw, "+15551230001", "+15550100", &caller_mic, 20);
    gw.wait_for_log("caller queued", Duration::from_secs(10));
    // Music while nobody is logged in.
    thread::sleep(Duration::from_secs(6));
    log_in(&gw, &agent_mic, "1001");
    gw.wait_for_log("call bridged", Duration::from_secs(10));
    caller.wait(Duration::from_secs(30));
    gw.wait_for_log("partner hung up", Duration::from_secs(5));
    drop(agent);

    let heard = caller.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let rate = heard.sample_rate();
    let all = [CALLER_TONE, AGENT_TONE, MUSIC_TONE];
    let queued_part = &mono[..(rate as usize * 5).min(mono.len())];
    let waiting = ToneCount::of(queued_part, rate, &all);
    eprintln!("while queued the caller heard {waiting:?}");
    assert!(
        waiting.seconds_of(MUSIC_TONE) >= 3.5,
        "the caller did not hear the queue's music: {waiting:?}"
    );
    assert_eq!(
        waiting.seconds_of(AGENT_TONE),
        0.0,
        "agent audio before any agent answered: {waiting:?}"
    );
    let tail = &mono[mono.len().saturating_sub(rate as usize * 4)..];
    let after = ToneCount::of(tail, rate, &all);
    assert_eq!(
        after.seconds_of(MUSIC_TONE),
        0.0,
        "music after the answer: {after:?}"
    );
    let c = ToneCount::of(&mono, rate, &[CALLER_TONE, AGENT_TONE]);
    eprintln!("caller heard {c:?}");
    assert!(
        c.seconds_of(AGENT_TONE) >= 4.0,
        "caller heard too little of the agent: {c:?}\n{}",
        gw.log()
    );
    assert_eq!(c.seconds_of(CALLER_TONE), 0.0, "caller heard itself: {c:?}");

    wait_until("the recording", Duration::from_secs(5), || {
        !files_ending(rec.path(), ".wav").is_empty()
    });
    let wav = recording(rec.path());
    let left = channel(wav.samples(), 2, 0);
    let right = channel(wav.samples(), 2, 1);
    let l = ToneCount::of(&left, RATE, &[CALLER_TONE, AGENT_TONE]);
    let r = ToneCount::of(&right, RATE, &[CALLER_TONE, AGENT_TONE]);
    eprintln!("recording left {l:?}\nrecording right {r:?}");
    assert!(l.seconds_of(CALLER_TONE) >= 4.0, "left (caller): {l:?}");
    assert_eq!(
        l.seconds_of(AGENT_TONE),
        0.0,
        "agent leaked into the left: {l:?}"
    );
    assert!(r.seconds_of(AGENT_TONE) >= 4.0, "right (agent): {r:?}");
    assert_eq!(
        r.seconds_of(CALLER_TONE),
        0.0,
        "caller leaked into the right: {r:?}"
    );

    let records = call_records(&gw);
    assert_eq!(records.len(), 1, "{records:?}");
    let cdr = &records[0];
    assert_eq!(cdr.direction, CallDirection::Inbound);
    assert_eq!(cdr.outcome, CallOutcome::Answered);
    assert_eq!(cdr.caller, "+15551230001");
    assert_eq!(cdr.dialled, "+15550100");
    assert_eq!(cdr.queue.as_ref().map(|q| q.as_str()), Some("support"));
    assert_eq!(cdr.agent.as_ref().map(|a| a.as_str()), Some("1001"));
    assert_eq!(cdr.hung_up_by, Some(HungUpBy::Caller));
    assert!(cdr.wait >= Duration::from_secs(5), "{cdr:?}");
    assert!(cdr.talk >= Duration::from_secs(4), "{cdr:?}");
    assert!(cdr.recording.is_some(), "{cdr:?}");
    let quality = cdr.caller_quality.as_ref().expect("caller leg quality");
    assert!(quality.packets_received > 200, "{quality:?}");
    assert!(cdr.agent_quality.is_some(), "{cdr:?}");
}

/// The agent heard the caller: checked on the agent's phone itself.
#[test]
fn the_agent_hears_the_caller() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    let gw = gateway(rec.path(), "");
    let mut agent = Baresip::agent(&gw, "1002", &agent_mic, 22);
    registered(&gw, "1002");
    log_in(&gw, &agent_mic, "1002");
    let mut caller = carrier_call(&gw, "+15551230002", "+15550100", &caller_mic, 14);
    gw.wait_for_log("call bridged", Duration::from_secs(15));
    caller.wait(Duration::from_secs(30));
    agent.wait(Duration::from_secs(30));
    let calls = agent.heard_all();
    let wav = calls.last().expect("the agent's phone took a call");
    let mono = channel(wav.samples(), wav.channels(), 0);
    let a = ToneCount::of(&mono, wav.sample_rate(), &[CALLER_TONE, AGENT_TONE]);
    eprintln!("agent heard {a:?}");
    assert!(
        a.seconds_of(CALLER_TONE) >= 3.0,
        "agent heard too little of the caller: {a:?}\n{}",
        gw.log()
    );
    assert_eq!(a.seconds_of(AGENT_TONE), 0.0, "agent heard itself: {a:?}");
}

/// A caller who hangs up while waiting is an abandoned call, and the
/// agent's phone, which was never rung, stays free.
#[test]
fn a_caller_hanging_up_while_queued_is_abandoned() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, _) = tones(wavs.path());
    let gw = gateway(rec.path(), "");
    let mut caller = carrier_call(&gw, "+15551230003", "+15550100", &caller_mic, 5);
    gw.wait_for_log("caller queued", Duration::from_secs(10));
    caller.wait(Duration::from_secs(15));
    gw.wait_for_log("caller abandoned", Duration::from_secs(5));
    assert!(!gw.log().contains("call bridged"));
    let records = call_records(&gw);
    assert_eq!(records[0].outcome, CallOutcome::Abandoned, "{records:?}");
    assert_eq!(records[0].hung_up_by, Some(HungUpBy::Caller));
    assert!(records[0].agent.is_none());
}

/// Agent 1001's phone rings but nobody answers it: after the queue's ring
/// timeout the call is withdrawn from 1001 (CANCEL) and offered to 1002,
/// who answers.
#[test]
fn an_unanswered_offer_moves_to_the_next_agent() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    let gw = gateway_edited(rec.path(), |c| {
        c.replace(
            "agents = [\"1001\", \"1002\"]\n",
            "agents = [\"1001\", \"1002\"]\nring_timeout_secs = 3\n",
        )
    });
    // 1001 does not answer (manual answer mode); 1002 does.
    let silent = Baresip::start(Phone {
        account: format!("<sip:1001@{}>;auth_pass=pass1001;regint=60", gw.target()),
        port: common::free_port("127.0.0.1"),
        mic: &agent_mic,
        seconds: 40,
        command: None,
    });
    let answering = Baresip::agent(&gw, "1002", &agent_mic, 40);
    registered(&gw, "1001");
    registered(&gw, "1002");
    // 1001 first: idle the longest, so offered first.
    log_in(&gw, &agent_mic, "1001");
    log_in(&gw, &agent_mic, "1002");
    let mut caller = carrier_call(&gw, "+15551230004", "+15550100", &caller_mic, 16);
    gw.wait_for_log(
        "offer withdrawn agent=1001 acd_call=call-1",
        Duration::from_secs(20),
    );
    gw.wait_for_log("agent=1002 queue=support", Duration::from_secs(10));
    caller.wait(Duration::from_secs(30));
    drop((silent, answering));
    let log = gw.log();
    let first = log.find("ringing agent agent=1001 acd_call=call-1");
    let second = log.find("ringing agent agent=1002 acd_call=call-1");
    assert!(
        first.is_some() && second.is_some() && first < second,
        "{log}"
    );
    let records = call_records(&gw);
    let offers: Vec<(&str, OfferResult)> = records[0]
        .offers
        .iter()
        .map(|o| (o.agent.as_str(), o.result))
        .collect();
    assert_eq!(
        offers,
        [
            ("1001", OfferResult::RingTimeout),
            ("1002", OfferResult::Answered)
        ]
    );
}

/// The carrier's call for the IVR DID (+15550101 in the demo) hears the
/// menu; pressing 1 (RFC 4733, SIPp's capture) sends it to the sales queue;
/// the call record keeps the choice.
#[test]
fn an_ivr_choice_routes_the_caller_to_its_queue() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let gw = gateway(rec.path(), "");
    let (ok, out) = sipp_at(
        &gw,
        Some(CARRIER_PORT),
        "carrier_ivr_dtmf.xml",
        &["-s", "+15550101", "-m", "1"],
    );
    assert!(ok, "carrier_ivr_dtmf failed:\n{out}\n{}", gw.log());
    gw.wait_for_log("route=queue:sales", Duration::from_secs(5));
    let records = call_records(&gw);
    let cdr = &records[0];
    assert_eq!(cdr.ivr_choices, "1", "{cdr:?}");
    assert_eq!(cdr.queue.as_ref().map(|q| q.as_str()), Some("sales"));
    assert_eq!(cdr.outcome, CallOutcome::Abandoned, "{cdr:?}");
}

/// Agent 1001 (allowed national numbers) calls a customer: the gateway
/// places the call through the trunk (SIPp's UAS echoing RTP), bridges it,
/// and the agent hears its own tone come back from the far end; the call is
/// recorded and has an outbound call record.
#[test]
fn an_agent_calls_a_customer_through_the_trunk() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (_, agent_mic) = tones(wavs.path());
    let gw = gateway(rec.path(), "");
    let _carrier = CarrierUas::start();
    let mut agent = Baresip::call_as(&gw, "1001", "2125550123", &agent_mic, 10);
    gw.wait_for_log("outbound call bridged", Duration::from_secs(10));
    agent.wait(Duration::from_secs(20));
    let heard = agent.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let a = ToneCount::of(&mono, heard.sample_rate(), &[CALLER_TONE, AGENT_TONE]);
    eprintln!("agent heard {a:?}");
    assert!(
        a.seconds_of(AGENT_TONE) >= 3.0,
        "the far end's echo did not come back: {a:?}\n{}",
        gw.log()
    );
    let records = call_records(&gw);
    let cdr = &records[0];
    assert_eq!(cdr.direction, CallDirection::Outbound, "{cdr:?}");
    assert_eq!(cdr.outcome, CallOutcome::Answered, "{cdr:?}");
    assert_eq!(cdr.dialled, "2125550123");
    assert_eq!(cdr.agent.as_ref().map(|a| a.as_str()), Some("1001"));
    assert_eq!(cdr.hung_up_by, Some(HungUpBy::Agent));
    assert!(cdr.recording.is_some(), "{cdr:?}");
}

/// A carrier that challenges every call and its BYE (SIPp checking the
/// digest with `verifyauth`): the gateway answers with the trunk's
/// `[trunks.auth]` credentials, the call is carried, bridged and heard end
/// to end, and the carrier accepts our BYE.
#[test]
fn a_carrier_that_challenges_calls_gets_the_trunks_credentials() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (_, agent_mic) = tones(wavs.path());
    let gw = gateway_edited(rec.path(), |c| {
        let peer = "peer = \"127.0.0.1:5080\"\n";
        assert!(c.contains(peer), "demo config lacks the trunk's peer line");
        c.replacen(
            peer,
            &format!("{peer}auth = {{ username = \"sb-trunk\", password = \"trunk-secret\" }}\n"),
            1,
        )
    });
    let mut carrier = CarrierUas::start_scenario("carrier_auth_uas.xml");
    let mut agent = Baresip::call_as(&gw, "1001", "2125550124", &agent_mic, 8);
    gw.wait_for_log("outbound call bridged", Duration::from_secs(10));
    agent.wait(Duration::from_secs(20));
    let heard = agent.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let a = ToneCount::of(&mono, heard.sample_rate(), &[CALLER_TONE, AGENT_TONE]);
    assert!(
        a.seconds_of(AGENT_TONE) >= 2.0,
        "the far end's echo did not come back: {a:?}\n{}",
        gw.log()
    );
    let records = call_records(&gw);
    assert_eq!(
        records[0].outcome,
        CallOutcome::Answered,
        "{:?}",
        records[0]
    );
    // The agent hung up: the carrier challenged our BYE and accepted the
    // authenticated one (SIPp exits 0 only then).
    assert!(
        carrier.succeeded_within(Duration::from_secs(10)),
        "the carrier did not accept our calls' credentials\n{}",
        gw.log()
    );
}

/// Toll fraud: nothing reaches the trunk without an authenticated agent
/// allowed to dial the number. A stranger's INVITE to an international
/// number is challenged; agent 1001 (national only) dialling abroad and
/// agent 1002 (no permissions) dialling a national number are refused 403;
/// the trunk's address receives not one datagram.
#[test]
fn calls_without_authentication_or_permission_never_reach_the_trunk() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (_, agent_mic) = tones(wavs.path());
    let gw = gateway(rec.path(), "");
    let trunk = UdpSocket::bind(("127.0.0.1", CARRIER_PORT)).unwrap();
    trunk.set_nonblocking(true).unwrap();

    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = stranger.local_addr().unwrap().port();
    let invite = format!(
        "INVITE sip:00442071234567@{gw} SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKfraud1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:attacker@127.0.0.1>;tag=f1\r\n\
To: <sip:00442071234567@{gw}>\r\nCall-ID: fraud-1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:attacker@127.0.0.1:{port}>\r\n\
Content-Length: 0\r\n\r\n",
        gw = gw.target()
    );
    stranger.send_to(invite.as_bytes(), gw.addr()).unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut statuses = Vec::new();
    while let Ok(n) = stranger.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let status = text.get(8..11).unwrap_or("").to_owned();
        statuses.push(status.clone());
        if status != "100" {
            break;
        }
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("407"),
        "{statuses:?}"
    );

    let mut abroad = Baresip::call_as(&gw, "1001", "+442071234567", &agent_mic, 4);
    abroad.wait(Duration::from_secs(15));
    let mut national = Baresip::call_as(&gw, "1002", "2125550123", &agent_mic, 4);
    national.wait(Duration::from_secs(15));
    let log = gw.log();
    assert_eq!(
        log.matches("outbound call refused: no dial permission")
            .count(),
        2,
        "{log}"
    );
    assert!(!log.contains("outbound call placed"), "{log}");
    thread::sleep(Duration::from_millis(300));
    let mut datagram = [0u8; 2048];
    assert!(
        trunk.recv_from(&mut datagram).is_err(),
        "something reached the trunk: {}",
        String::from_utf8_lossy(&datagram)
    );
}

/// An agent's phone that rings and never answers (manual answer mode).
fn ringing_phone(gw: &Gateway, id: &str, mic: &Path, seconds: u32) -> Baresip {
    Baresip::start(Phone {
        account: format!("<sip:{id}@{}>;auth_pass=pass{id};regint=60", gw.target()),
        port: free_port("127.0.0.1"),
        mic,
        seconds,
        command: None,
    })
}

/// The caller hangs up while agent 1001's phone rings: the gateway cancels
/// the offer (CANCEL, the phone's 487), the call is abandoned with the
/// offer cancelled, and the agent is not counted as having missed it.
#[test]
fn a_caller_hanging_up_while_the_agent_rings_cancels_the_offer() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    let gw = gateway_edited(rec.path(), |c| {
        c.replace(
            "agents = [\"1001\", \"1002\"]\n",
            "agents = [\"1001\", \"1002\"]\nring_timeout_secs = 30\ngreeting = \"\"\n",
        )
    });
    let phone = ringing_phone(&gw, "1001", &agent_mic, 30);
    registered(&gw, "1001");
    log_in(&gw, &agent_mic, "1001");
    let mut caller = carrier_call(&gw, "+15551230005", "+15550100", &caller_mic, 6);
    gw.wait_for_log("ringing agent agent=1001", Duration::from_secs(10));
    caller.wait(Duration::from_secs(15));
    gw.wait_for_log("offer withdrawn agent=1001", Duration::from_secs(5));
    let records = call_records(&gw);
    drop(phone);
    let cdr = &records[0];
    assert_eq!(cdr.outcome, CallOutcome::Abandoned, "{cdr:?}");
    let offers: Vec<(&str, OfferResult)> = cdr
        .offers
        .iter()
        .map(|o| (o.agent.as_str(), o.result))
        .collect();
    assert_eq!(offers, [("1001", OfferResult::Cancelled)]);
    let log = gw.log();
    assert!(
        !log.contains("why=RingTimeout"),
        "counted as a miss:\n{log}"
    );
    assert!(!log.contains("call bridged"), "{log}");
}

/// Ring-all: both agents' phones ring and answer at once; exactly one is
/// bridged; the other is cancelled or, if its 2xx crossed our CANCEL, ACKed
/// and sent BYE — never left in a call.
#[test]
fn ring_all_bridges_one_agent_and_releases_the_other() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    let gw = gateway_edited(rec.path(), |c| {
        c.replace(
            "agents = [\"1001\", \"1002\"]\n",
            "agents = [\"1001\", \"1002\"]\nstrategy = \"ring-all\"\ngreeting = \"\"\n",
        )
    });
    let first = Baresip::agent(&gw, "1001", &agent_mic, 40);
    let second = Baresip::agent(&gw, "1002", &agent_mic, 40);
    registered(&gw, "1001");
    registered(&gw, "1002");
    log_in(&gw, &agent_mic, "1001");
    log_in(&gw, &agent_mic, "1002");
    let mut caller = carrier_call(&gw, "+15551230006", "+15550100", &caller_mic, 8);
    gw.wait_for_log("call bridged", Duration::from_secs(10));
    caller.wait(Duration::from_secs(20));
    let records = call_records(&gw);
    drop((first, second));
    let log = gw.log();
    assert_eq!(log.matches("call bridged").count(), 1, "{log}");
    assert_eq!(log.matches("ringing agent").count(), 2, "{log}");
    let released = log.contains("offer withdrawn")
        || log.contains("answer for a call already taken or ended: hanging up");
    assert!(released, "the other phone was not released:\n{log}");
    let cdr = &records[0];
    assert_eq!(cdr.outcome, CallOutcome::Answered, "{cdr:?}");
    assert_eq!(cdr.offers.len(), 2, "{cdr:?}");
}

/// A gateway shut down (SIGTERM) with a call in progress hangs up both
/// phones and still writes the call's record before it exits.
#[test]
fn a_call_cut_by_shutdown_still_leaves_its_record() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let (caller_mic, agent_mic) = tones(wavs.path());
    let gw = gateway(rec.path(), "");
    let agent = Baresip::agent(&gw, "1002", &agent_mic, 30);
    registered(&gw, "1002");
    log_in(&gw, &agent_mic, "1002");
    let caller = carrier_call(&gw, "+15551230007", "+15550100", &caller_mic, 30);
    gw.wait_for_log("call bridged", Duration::from_secs(15));
    thread::sleep(Duration::from_secs(2));
    let db = gw.db_path();
    let (dir, _, code) = gw.stop();
    drop((agent, caller));
    assert_eq!(code, 0, "the gateway exits cleanly");
    let store = Store::open(&db).unwrap();
    let records = store.call_records(&CallRecordFilter::default()).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let cdr = &records[0];
    assert_eq!(cdr.outcome, CallOutcome::Answered, "{cdr:?}");
    assert_eq!(cdr.hung_up_by, Some(HungUpBy::Gateway), "{cdr:?}");
    assert!(cdr.end_reason.contains("shutting down"), "{cdr:?}");
    assert_eq!(cdr.agent.as_ref().map(|a| a.as_str()), Some("1002"));
    drop(dir);
}
