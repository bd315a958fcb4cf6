//! Media interop (issue 3): real peers send and receive audio through the
//! gateway's test extensions, and the tests check what was heard — tone
//! frequencies measured with Goertzel, not just that bytes arrived.
//!
//! - SIPp plays its G.711 A-law capture and an RFC 4733 capture (digit 1)
//!   into the echo extension after a 407 digest challenge; the gateway must
//!   report the digit and a loss-free call.
//! - baresip (aufile as microphone, sndfile dumping what it hears) calls the
//!   echo extension with a 1000 Hz tone and must hear 1000 Hz back.
//! - baresip calls a prompt extension playing a 1633 Hz tone, with its
//!   microphone at 440 Hz, recorded: it must hear 1633 Hz, and the
//!   recording must hold 440 Hz on the left (caller) channel only and
//!   1633 Hz on the right (gateway) channel only.
//! - A recorded echo call with an on/off microphone pattern: the right
//!   channel repeats the left one shortly after it (the channels are
//!   aligned, not offset by the call set-up or by buffering).
//! - A recorded call cut by SIGKILL still gives a WAV that opens and holds
//!   the audio up to the kill.
//!
//! Everything runs on loopback; every peer is a child process killed on
//! drop, and every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::audio::*;
use common::{require, sipp};
use switchboard::media::wav::WavReader;

fn prompt_extension(ext: &str, wav: &Path) -> String {
    format!(
        "[[test_extensions]]\nextension = \"{ext}\"\naction = \"prompt\"\nprompt = {:?}\nrecord = true\n",
        wav.display().to_string()
    )
}

/// `key=value` of the first log line containing `needle` and that key,
/// without the quotes tracing puts around string values.
fn log_field(log: &str, needle: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=");
    let line = log
        .lines()
        .find(|l| l.contains(needle) && l.contains(&pat))?;
    let start = line.find(&pat)? + pat.len();
    let value = line[start..].split_whitespace().next().unwrap_or("");
    Some(value.trim_matches('"').to_owned())
}

// ------------------------------------------------------------------- tests

#[test]
fn sipp_plays_g711a_and_rfc4733_pcaps_to_the_echo_extension() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let gw = gateway(rec.path(), "");
    let auth_uri = format!("*43@{}", gw.target());
    let (ok, out) = sipp(
        &gw,
        "echo_pcap_dtmf.xml",
        &["-s", "*43", "-auth_uri", &auth_uri, "-m", "1"],
    );
    assert!(ok, "echo_pcap_dtmf failed:\n{out}\n{}", gw.log());
    gw.wait_for_log("call ended", Duration::from_secs(5));
    let log = gw.log();
    assert_eq!(
        log_field(&log, "dtmf digit received", "digit").as_deref(),
        Some("1"),
        "no digit 1 reported:\n{log}"
    );
    assert_eq!(
        log_field(&log, "dtmf digit received", "source").as_deref(),
        Some("rfc4733"),
        "{log}"
    );
    // g711a.pcap holds 236 packets: all must have been echoed.
    let sent: u64 = log_field(&log, "call ended", "packets_sent")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no packets_sent in the call end line:\n{log}"));
    assert!(sent >= 236, "packets_sent={sent}:\n{log}");
    // The report covers the whole call: the audio capture (236 packets,
    // one SSRC) and the DTMF capture (10 packets, another SSRC, its end
    // packet sent three times with the same sequence number, which is not
    // a loss and must not count as a negative one).
    let received: u64 = log_field(&log, "call ended", "packets_received")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no packets_received in the call end line:\n{log}"));
    assert!(received >= 236, "packets_received={received}:\n{log}");
    assert_eq!(
        log_field(&log, "call ended", "lost").as_deref(),
        Some("0"),
        "{log}"
    );
    assert_eq!(
        log_field(&log, "call ended", "dtmf").as_deref(),
        Some("1"),
        "{log}"
    );
}

#[test]
fn baresip_hears_its_1000_hz_tone_back_from_the_echo_extension() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let mic_dir = tempfile::tempdir().unwrap();
    let mic = mic_dir.path().join("mic-1000.wav");
    sox_wav(&mic, RATE, &["synth", "10", "sine", "1000", "vol", "0.3"]);
    let gw = gateway(rec.path(), "");
    let mut phone = Baresip::call(&gw, "*43", &mic, 5);
    phone.wait(Duration::from_secs(15));
    gw.wait_for_log("call ended", Duration::from_secs(5));

    let heard = phone.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let count = ToneCount::of(&mono, heard.sample_rate(), &[1000.0, 1633.0]);
    assert!(
        count.seconds_of(1000.0) >= 2.5,
        "baresip heard too little of its 1000 Hz tone: {count:?}\n{}",
        gw.log()
    );
    eprintln!("baresip heard back {count:?}");
    assert_eq!(count.seconds_of(1633.0), 0.0, "{count:?}");
    assert!(energy_share(&mono, heard.sample_rate(), 1633.0) < 0.01);
}

#[test]
fn baresip_hears_the_prompt_and_the_recording_has_each_leg_on_its_channel() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let mic = wavs.path().join("mic-440.wav");
    sox_wav(&mic, RATE, &["synth", "10", "sine", "440", "vol", "0.3"]);
    let prompt = wavs.path().join("prompt-1633.wav");
    sox_wav(&prompt, RATE, &["synth", "2", "sine", "1633", "vol", "0.3"]);
    let gw = gateway(rec.path(), &prompt_extension("*46", &prompt));
    let mut phone = Baresip::call(&gw, "*46", &mic, 6);
    phone.wait(Duration::from_secs(15));
    gw.wait_for_log("call ended", Duration::from_secs(5));

    // Gateway -> phone: the prompt (2 s tone, 0.5 s silence, again).
    let heard = phone.heard();
    let mono = channel(heard.samples(), heard.channels(), 0);
    let count = ToneCount::of(&mono, heard.sample_rate(), &[1633.0, 440.0]);
    assert!(
        count.seconds_of(1633.0) >= 3.0,
        "baresip heard too little of the prompt: {count:?}\n{}",
        gw.log()
    );
    assert_eq!(
        count.seconds_of(440.0),
        0.0,
        "its own tone came back: {count:?}"
    );

    // Phone -> gateway, and channel placement: caller left, gateway right.
    wait_until("the recording", Duration::from_secs(5), || {
        !files_ending(rec.path(), ".wav").is_empty()
    });
    let wav = recording(rec.path());
    let left = channel(wav.samples(), 2, 0);
    let right = channel(wav.samples(), 2, 1);
    let l = ToneCount::of(&left, RATE, &[440.0, 1633.0]);
    let r = ToneCount::of(&right, RATE, &[440.0, 1633.0]);
    eprintln!("baresip heard {count:?}\nrecording left {l:?}\nrecording right {r:?}");
    assert!(l.seconds_of(440.0) >= 3.0, "left (caller): {l:?}");
    assert_eq!(
        l.seconds_of(1633.0),
        0.0,
        "prompt leaked into the left: {l:?}"
    );
    assert!(r.seconds_of(1633.0) >= 3.0, "right (gateway): {r:?}");
    assert_eq!(
        r.seconds_of(440.0),
        0.0,
        "caller leaked into the right: {r:?}"
    );
    assert!(energy_share(&left, RATE, 1633.0) < 0.01);
    assert!(energy_share(&right, RATE, 440.0) < 0.01);
}

/// Two phones in one room of the demo's pair extension (`*45` + digits,
/// recorded): each hears the other's tone through the relay, neither hears
/// itself, and the recording has the first caller left, the second right.
#[test]
fn two_baresip_phones_paired_hear_each_other_and_are_recorded_apart() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let mic_a = wavs.path().join("mic-440.wav");
    sox_wav(&mic_a, RATE, &["synth", "12", "sine", "440", "vol", "0.3"]);
    let mic_b = wavs.path().join("mic-1633.wav");
    sox_wav(&mic_b, RATE, &["synth", "12", "sine", "1633", "vol", "0.3"]);
    let gw = gateway(rec.path(), "");
    let mut first = Baresip::call(&gw, "*4577", &mic_a, 9);
    gw.wait_for_log("media started", Duration::from_secs(10));
    let mut second = Baresip::call(&gw, "*4577", &mic_b, 6);
    second.wait(Duration::from_secs(15));
    // The second hanging up ends the first too (the gateway's BYE).
    gw.wait_for_log("partner hung up", Duration::from_secs(5));
    first.wait(Duration::from_secs(15));

    let tones = [440.0, 1633.0];
    let heard_by = |phone: &Baresip| {
        let wav = phone.heard();
        let mono = channel(wav.samples(), wav.channels(), 0);
        ToneCount::of(&mono, wav.sample_rate(), &tones)
    };
    let a = heard_by(&first);
    let b = heard_by(&second);
    eprintln!("first heard {a:?}\nsecond heard {b:?}");
    assert!(
        a.seconds_of(1633.0) >= 3.0,
        "first heard too little of the second: {a:?}\n{}",
        gw.log()
    );
    assert_eq!(a.seconds_of(440.0), 0.0, "first heard itself: {a:?}");
    assert!(
        b.seconds_of(440.0) >= 3.0,
        "second heard too little of the first: {b:?}"
    );
    assert_eq!(b.seconds_of(1633.0), 0.0, "second heard itself: {b:?}");

    wait_until("the recording", Duration::from_secs(5), || {
        !files_ending(rec.path(), ".wav").is_empty()
    });
    let wav = recording(rec.path());
    let left = channel(wav.samples(), 2, 0);
    let right = channel(wav.samples(), 2, 1);
    let l = ToneCount::of(&left, RATE, &tones);
    let r = ToneCount::of(&right, RATE, &tones);
    eprintln!("recording left {l:?}\nrecording right {r:?}");
    assert!(l.seconds_of(440.0) >= 3.0, "left (first caller): {l:?}");
    assert_eq!(
        l.seconds_of(1633.0),
        0.0,
        "second caller leaked into the left: {l:?}"
    );
    assert!(r.seconds_of(1633.0) >= 3.0, "right (second caller): {r:?}");
    assert_eq!(
        r.seconds_of(440.0),
        0.0,
        "first caller leaked into the right: {r:?}"
    );
}

#[test]
fn echo_recording_channels_are_aligned() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    // 300 ms of 440 Hz, 500 ms of silence, repeated: onsets to line up.
    let burst = wavs.path().join("burst.wav");
    sox_wav(
        &burst,
        RATE,
        &[
            "synth", "0.3", "sine", "440", "vol", "0.3", "pad", "0", "0.5",
        ],
    );
    let mic = wavs.path().join("mic-bursts.wav");
    require("sox");
    let mut args: Vec<String> = vec![burst.display().to_string(); 12];
    args.push(mic.display().to_string());
    assert!(Command::new("sox").args(&args).status().unwrap().success());

    let gw = gateway(
        rec.path(),
        "[[test_extensions]]\nextension = \"*47\"\naction = \"echo\"\nrecord = true\n",
    );
    let mut phone = Baresip::call(&gw, "*47", &mic, 6);
    phone.wait(Duration::from_secs(15));
    gw.wait_for_log("call ended", Duration::from_secs(5));
    wait_until("the recording", Duration::from_secs(5), || {
        !files_ending(rec.path(), ".wav").is_empty()
    });
    let wav = recording(rec.path());
    let left = envelope(&channel(wav.samples(), 2, 0), RATE, 440.0);
    let right = envelope(&channel(wav.samples(), 2, 1), RATE, 440.0);
    let on = left.iter().filter(|x| **x).count();
    assert!(on >= 50, "too few tone frames on the left: {on}");
    // The echo comes back within the jitter buffer and one pacing tick:
    // well under 200 ms (10 frames). A channel shifted by the set-up time
    // or by a whole buffer would agree far worse at every small lag.
    let (lag, agree) = best_lag(&left, &right, 20);
    eprintln!("echo recording: right lags left by {lag} x 20 ms, agreement {agree:.3}");
    assert!(
        lag <= 10 && agree >= 0.9,
        "right channel lags the left by {lag} frames (20 ms each), agreement {agree:.2}"
    );
}

#[test]
fn recording_cut_by_sigkill_still_opens() {
    let _serial = serial();
    let rec = tempfile::tempdir().unwrap();
    let wavs = tempfile::tempdir().unwrap();
    let mic = wavs.path().join("mic-440.wav");
    sox_wav(&mic, RATE, &["synth", "20", "sine", "440", "vol", "0.3"]);
    let prompt = wavs.path().join("prompt-1633.wav");
    sox_wav(&prompt, RATE, &["synth", "2", "sine", "1633", "vol", "0.3"]);
    let mut gw = gateway(rec.path(), &prompt_extension("*46", &prompt));
    let phone = Baresip::call(&gw, "*46", &mic, 20);
    wait_until("the recording to start", Duration::from_secs(10), || {
        !files_ending(rec.path(), ".wav").is_empty()
    });
    thread::sleep(Duration::from_secs(3));
    gw.kill9();
    drop(phone);

    let wav = recording(rec.path());
    let seconds = wav.frames() as f64 / f64::from(RATE);
    eprintln!(
        "after SIGKILL: {seconds:.2} s, truncated={}",
        wav.truncated()
    );
    assert!(
        seconds >= 2.0,
        "only {seconds:.2} s survived the kill (truncated={})",
        wav.truncated()
    );
    let left = channel(wav.samples(), 2, 0);
    let right = channel(wav.samples(), 2, 1);
    assert!(ToneCount::of(&left, RATE, &[440.0, 1633.0]).seconds_of(440.0) >= 1.5);
    assert!(ToneCount::of(&right, RATE, &[440.0, 1633.0]).seconds_of(1633.0) >= 1.0);
}

// ------------------------------------------- the analysis on sox-made WAVs

/// The helpers above decide pass or fail, so they are checked on signals
/// made by an independent tool (sox), not by our own tone generator.
#[test]
fn analysis_finds_sox_tones_and_rejects_absent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wav");
    sox_wav(&a, RATE, &["synth", "2", "sine", "1000", "vol", "0.3"]);
    let wav = WavReader::open(&a).unwrap();
    let count = ToneCount::of(wav.samples(), RATE, &[1000.0, 1633.0]);
    assert_eq!(count.blocks, 20);
    assert_eq!(count.seconds_of(1000.0), 2.0);
    assert_eq!(count.seconds_of(1633.0), 0.0);
    assert!(energy_share(wav.samples(), RATE, 1000.0) > 0.95);
    assert!(energy_share(wav.samples(), RATE, 1633.0) < 0.001);

    // Through G.711 (sox's A-law) the tone is still unmistakable.
    let alaw = dir.path().join("alaw.wav");
    let status = Command::new("sox")
        .arg(&a)
        .args(["-e", "a-law", "-t", "raw"])
        .arg(&alaw)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = fs::read(&alaw).unwrap();
    let decoded: Vec<i16> = bytes
        .iter()
        .map(|&b| switchboard::media::codec::alaw::decode(b))
        .collect();
    assert_eq!(
        ToneCount::of(&decoded, RATE, &[1000.0, 1633.0]).seconds_of(1000.0),
        2.0
    );

    // Silence and white noise hold no tone.
    let quiet = dir.path().join("quiet.wav");
    sox_wav(
        &quiet,
        RATE,
        &["synth", "1", "sine", "1000", "vol", "0.001"],
    );
    let noise = dir.path().join("noise.wav");
    sox_wav(&noise, RATE, &["synth", "1", "whitenoise", "vol", "0.3"]);
    for p in [&quiet, &noise] {
        let w = WavReader::open(p).unwrap();
        let c = ToneCount::of(w.samples(), RATE, &[1000.0, 1633.0]);
        assert_eq!(
            c.seconds_of(1000.0) + c.seconds_of(1633.0),
            0.0,
            "{p:?}: {c:?}"
        );
    }

    // A stereo file with a tone per channel, as a recording should be.
    let l = dir.path().join("l.wav");
    let r = dir.path().join("r.wav");
    sox_wav(&l, RATE, &["synth", "1", "sine", "440", "vol", "0.3"]);
    sox_wav(&r, RATE, &["synth", "1", "sine", "1633", "vol", "0.3"]);
    let st = dir.path().join("st.wav");
    let status = Command::new("sox")
        .arg("-M")
        .args([&l, &r, &st])
        .status()
        .unwrap();
    assert!(status.success());
    let w = WavReader::open_recording(&st).unwrap();
    assert_eq!(w.channels(), 2);
    let left = channel(w.samples(), 2, 0);
    let right = channel(w.samples(), 2, 1);
    assert_eq!(
        ToneCount::of(&left, RATE, &[440.0, 1633.0]).seconds_of(440.0),
        1.0
    );
    assert_eq!(
        ToneCount::of(&right, RATE, &[440.0, 1633.0]).seconds_of(1633.0),
        1.0
    );
    assert_eq!(
        ToneCount::of(&left, RATE, &[440.0, 1633.0]).seconds_of(1633.0),
        0.0
    );
}

#[test]
fn best_lag_finds_a_delayed_copy_of_bursts() {
    let dir = tempfile::tempdir().unwrap();
    let burst = dir.path().join("burst.wav");
    sox_wav(
        &burst,
        RATE,
        &[
            "synth", "0.3", "sine", "440", "vol", "0.3", "pad", "0", "0.5",
        ],
    );
    let w = WavReader::open(&burst).unwrap();
    let mut a = Vec::new();
    for _ in 0..5 {
        a.extend_from_slice(w.samples());
    }
    // b: the same, 120 ms (6 frames) later.
    let mut b = vec![0i16; 960];
    b.extend_from_slice(&a);
    let (ea, eb) = (envelope(&a, RATE, 440.0), envelope(&b, RATE, 440.0));
    let (lag, agree) = best_lag(&ea, &eb, 20);
    assert_eq!(lag, 6);
    assert!(agree > 0.95, "{agree}");
    // Unrelated envelopes (b all silent) never agree well.
    let silent = vec![false; eb.len()];
    assert!(best_lag(&ea, &silent, 20).1 < 0.7);
}

#[test]
fn log_field_reads_key_values() {
    let log =
        "x\n2026 INFO call ended call=abc@h packets_received=250 lost=0 jitter_ms=1.5 dtmf=1\n";
    assert_eq!(log_field(log, "call ended", "lost").as_deref(), Some("0"));
    assert_eq!(
        log_field(log, "call ended", "packets_received").as_deref(),
        Some("250")
    );
    assert_eq!(
        log_field(log, "call ended", "call").as_deref(),
        Some("abc@h")
    );
    assert_eq!(log_field(log, "call ended", "mos"), None);
    assert_eq!(log_field(log, "dtmf digit", "digit"), None);
    let quoted = "INFO dtmf digit received call=x digit=\"1\" source=rfc4733\n";
    assert_eq!(
        log_field(quoted, "dtmf digit", "digit").as_deref(),
        Some("1")
    );
}
