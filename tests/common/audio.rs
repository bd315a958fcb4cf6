//! Audio helpers for the interop tests: tones made with sox, what a WAV
//! holds measured with Goertzel, and baresip as a phone with a WAV file as
//! its microphone that dumps what it hears.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, require, Gateway};
use switchboard::call::record::CallRecord;
use switchboard::media::codec::goertzel::{mean_square, power};
use switchboard::media::codec::ToneDetector;
use switchboard::media::wav::WavReader;
use switchboard::storage::{CallRecordFilter, Store};

/// The audio tests measure timing-sensitive things (pacing, alignment) on a
/// shared two-core machine: one call at a time keeps them from starving
/// each other.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub const RATE: u32 = 8000;
/// 100 ms analysis blocks: a 10 Hz wide Goertzel bin, narrow enough to
/// separate every pair of tones used here.
pub const BLOCK: usize = 800;

// ---------------------------------------------------------------- analysis

/// Makes a mono 16-bit WAV with sox: `effects` are sox synth arguments,
/// e.g. `["synth", "3", "sine", "1000", "vol", "0.3"]`.
pub fn sox_wav(path: &Path, rate: u32, effects: &[&str]) {
    require("sox");
    let status = Command::new("sox")
        .args(["-n", "-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(path)
        .args(effects)
        .status()
        .unwrap();
    assert!(status.success(), "sox failed for {}", path.display());
}

/// One channel of interleaved samples.
pub fn channel(samples: &[i16], channels: u16, which: usize) -> Vec<i16> {
    samples
        .iter()
        .skip(which)
        .step_by(usize::from(channels))
        .copied()
        .collect()
}

/// Per 100 ms block, which of `freqs` dominates it (None: silence or no
/// clear tone).
pub fn block_tones(samples: &[i16], rate: u32, freqs: &[f64]) -> Vec<Option<f64>> {
    let detector = ToneDetector::new(rate, freqs).with_min_purity(0.6);
    samples
        .chunks_exact(BLOCK * rate as usize / RATE as usize)
        .map(|b| detector.detect(b).map(|d| d.freq))
        .collect()
}

/// What a signal holds, tone by tone: how many 100 ms blocks each of
/// `freqs` dominates.
#[derive(Debug)]
pub struct ToneCount {
    pub blocks: usize,
    per_freq: Vec<(f64, usize)>,
}

impl ToneCount {
    pub fn of(samples: &[i16], rate: u32, freqs: &[f64]) -> ToneCount {
        let tones = block_tones(samples, rate, freqs);
        let per_freq = freqs
            .iter()
            .map(|&f| (f, tones.iter().filter(|t| **t == Some(f)).count()))
            .collect();
        ToneCount {
            blocks: tones.len(),
            per_freq,
        }
    }

    pub fn seconds_of(&self, freq: f64) -> f64 {
        self.per_freq
            .iter()
            .find(|(f, _)| *f == freq)
            .map_or(0.0, |(_, n)| *n as f64 * BLOCK as f64 / f64::from(RATE))
    }
}

/// Fraction of the whole signal's energy at `freq`.
pub fn energy_share(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let total = mean_square(samples);
    if total == 0.0 {
        return 0.0;
    }
    power(samples, rate, freq) / total
}

/// 20 ms envelope of `freq`: true where the tone is on.
pub fn envelope(samples: &[i16], rate: u32, freq: f64) -> Vec<bool> {
    let frame = rate as usize / 50;
    samples
        .chunks_exact(frame)
        .map(|b| power(b, rate, freq) > 200.0 * 200.0 / 2.0)
        .collect()
}

/// The lag (in 20 ms frames, `b` behind `a`) in 0..=max_lag at which the
/// two envelopes agree best, and the share of frames that agree there.
pub fn best_lag(a: &[bool], b: &[bool], max_lag: usize) -> (usize, f64) {
    (0..=max_lag)
        .map(|lag| {
            let n = a.len().min(b.len().saturating_sub(lag));
            let agree = (0..n).filter(|&i| a[i] == b[i + lag]).count();
            (lag, if n == 0 { 0.0 } else { agree as f64 / n as f64 })
        })
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap_or((0, 0.0))
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_ending(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out.sort();
    out
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------- gateway

/// A gateway whose recordings go to `rec`, with `extensions` (TOML
/// `[[test_extensions]]` tables) appended to the demo configuration.
pub fn gateway(rec: &Path, extensions: &str) -> Gateway {
    let extensions = extensions.to_owned();
    gateway_edited(rec, move |c| format!("{c}\n{extensions}\n"))
}

/// A gateway whose recordings go to `rec`, on the demo configuration as
/// changed by `edit`.
pub fn gateway_edited(rec: &Path, edit: impl Fn(String) -> String + 'static) -> Gateway {
    let rec = rec.display().to_string();
    Gateway::start_with("127.0.0.1", move |c| {
        assert!(
            c.contains("[recording]\ndir = \"var/recordings\""),
            "demo config lacks the [recording] dir line"
        );
        let c = c.replace(
            "[recording]\ndir = \"var/recordings\"",
            &format!("[recording]\ndir = {rec:?}"),
        );
        edit(c)
    })
}

/// The stereo recording the gateway wrote under `rec` (exactly one).
pub fn recording(rec: &Path) -> WavReader {
    let wavs = files_ending(rec, ".wav");
    assert_eq!(wavs.len(), 1, "recordings: {wavs:?}");
    let wav = WavReader::open_recording(&wavs[0]).unwrap();
    assert_eq!(wav.channels(), 2, "recordings are stereo");
    assert_eq!(wav.sample_rate(), RATE, "recordings are 8 kHz");
    wav
}

// ------------------------------------------------------------- call centre

/// The demo trunk's peer address: requests from it are the carrier's.
pub const CARRIER_PORT: u16 = 5080;

/// The carrier delivering a call for `did` from `caller`, hanging up after
/// `seconds`.
pub fn carrier_call(gw: &Gateway, caller: &str, did: &str, mic: &Path, seconds: u32) -> Baresip {
    Baresip::start(Phone {
        account: format!("<sip:{caller}@127.0.0.1:{CARRIER_PORT}>;regint=0"),
        port: CARRIER_PORT,
        mic,
        seconds,
        command: Some(format!("/dial sip:{did}@{}", gw.target())),
    })
}

/// Waits until the agent's phone is registered (the store has it).
pub fn registered(gw: &Gateway, agent: &str) {
    wait_until(
        &format!("agent {agent} registered"),
        Duration::from_secs(10),
        || !super::stored_contacts(&gw.db_path(), agent).is_empty(),
    );
}

/// The agent dials `*21` from another softphone of theirs and the gateway
/// confirms with beeps, then hangs up.
pub fn log_in(gw: &Gateway, agent_mic: &Path, agent: &str) {
    let mut phone = Baresip::call_as(gw, agent, "*21", agent_mic, 4);
    gw.wait_for_log(
        &format!("agent={agent} code=*21 done=true"),
        Duration::from_secs(10),
    );
    phone.wait(Duration::from_secs(10));
}

/// The call records the gateway stored (waits for the first one).
pub fn call_records(gw: &Gateway) -> Vec<CallRecord> {
    gw.wait_for_log("call record", Duration::from_secs(10));
    let mut found = Vec::new();
    wait_until(
        "the call record in the store",
        Duration::from_secs(5),
        || {
            let store = Store::open(&gw.db_path()).unwrap();
            found = store.call_records(&CallRecordFilter::default()).unwrap();
            !found.is_empty()
        },
    );
    found
}

// ------------------------------------------------------------------- peers

/// baresip with a WAV file as its microphone (aufile) and sndfile dumping
/// what it sends (`-enc.wav`) and hears (`-dec.wav`) per call; it quits
/// after `seconds`.
pub struct Baresip {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// How to start a baresip.
pub struct Phone<'a> {
    /// The `accounts` line: AOR and parameters.
    pub account: String,
    /// Its SIP port on 127.0.0.1 (the carrier must be at a known one).
    pub port: u16,
    pub mic: &'a Path,
    pub seconds: u32,
    /// A command run at start, e.g. `/dial sip:*43@127.0.0.1:5060`.
    pub command: Option<String>,
}

impl Baresip {
    /// Agent 1001 calling `extension` (no REGISTER: the INVITE is
    /// challenged, 407, and answered with these credentials like any agent
    /// call), hanging up (BYE) after `seconds`.
    pub fn call(gw: &Gateway, extension: &str, mic: &Path, seconds: u32) -> Baresip {
        Baresip::call_as(gw, "1001", extension, mic, seconds)
    }

    /// Like [`Baresip::call`], as agent `id` (password `pass<id>`).
    pub fn call_as(gw: &Gateway, id: &str, extension: &str, mic: &Path, seconds: u32) -> Baresip {
        Baresip::start(Phone {
            account: format!("<sip:{id}@{}>;auth_pass=pass{id};regint=0", gw.target()),
            port: free_port("127.0.0.1"),
            mic,
            seconds,
            command: Some(format!("/dial sip:{extension}@{}", gw.target())),
        })
    }

    /// An agent's phone: registered, answering every call at once.
    pub fn agent(gw: &Gateway, id: &str, mic: &Path, seconds: u32) -> Baresip {
        Baresip::start(Phone {
            account: format!(
                "<sip:{id}@{}>;auth_pass=pass{id};regint=60;answermode=auto",
                gw.target()
            ),
            port: free_port("127.0.0.1"),
            mic,
            seconds,
            command: None,
        })
    }

    pub fn start(phone: Phone<'_>) -> Baresip {
        require("baresip");
        let dir = tempfile::tempdir().unwrap();
        let dumps = dir.path().join("dumps");
        fs::create_dir(&dumps).unwrap();
        // No audio_player: the decode filters (sndfile) still run, and a
        // container has no sound card. module_tmp uuid/account and
        // net_interface are the traps tests/interop_baresip.rs documents.
        fs::write(
            dir.path().join("config"),
            format!(
                "sip_listen 127.0.0.1:{}\nnet_interface 127.0.0.1\ndns_server 127.0.0.1:53\n\
module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n\
module menu.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n\
audio_source aufile,{}\nsnd_path {}\n",
                phone.port,
                phone.mic.display(),
                dumps.display()
            ),
        )
        .unwrap();
        fs::write(dir.path().join("accounts"), format!("{}\n", phone.account)).unwrap();
        let mut command = Command::new("baresip");
        command
            .arg("-f")
            .arg(dir.path())
            .args(["-t", &phone.seconds.to_string()]);
        if let Some(c) = &phone.command {
            command.arg("-e").arg(c);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Baresip {
            child: Some(child),
            dir,
        }
    }

    /// Waits (bounded) for baresip to quit on its own `-t`.
    pub fn wait(&mut self, timeout: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.child = None;
        panic!("baresip did not quit within {timeout:?}");
    }

    /// What baresip heard in its one call (the decoder side of its
    /// sndfile dump).
    pub fn heard(&self) -> WavReader {
        let dumps = self.heard_all();
        assert_eq!(dumps.len(), 1, "baresip calls: {}", dumps.len());
        dumps.into_iter().next().unwrap()
    }

    /// What baresip heard, one WAV per call, in the order of the calls.
    pub fn heard_all(&self) -> Vec<WavReader> {
        files_ending(&self.dir.path().join("dumps"), "-dec.wav")
            .iter()
            .map(|p| WavReader::open_recording(p).unwrap())
            .collect()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIPp's built-in UAS as the carrier at 127.0.0.1:5080, echoing the RTP it
/// receives: it answers one call and quits after the BYE.
pub struct CarrierUas(std::process::Child);

impl CarrierUas {
    /// SIPp's built-in UAS.
    pub fn start() -> CarrierUas {
        CarrierUas::start_with(&["-sn", "uas"])
    }

    /// SIPp running `scenario` (a file in tests/sipp) as the carrier.
    pub fn start_scenario(scenario: &str) -> CarrierUas {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        CarrierUas::start_with(&["-sf", &path.display().to_string()])
    }

    fn start_with(scenario: &[&str]) -> CarrierUas {
        require("sipp");
        let media = free_port("127.0.0.1");
        let child = Command::new("sipp")
            .args(scenario)
            .args(["-i", "127.0.0.1", "-p"])
            .arg(CARRIER_PORT.to_string())
            .args(["-mp", &media.to_string(), "-rtp_echo", "-m", "1"])
            .args(["-timeout", "40s", "-timeout_error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // SIPp binds its sockets at start.
        thread::sleep(Duration::from_millis(500));
        CarrierUas(child)
    }
}

impl CarrierUas {
    /// Whether SIPp ended, within `timeout`, with every call successful.
    pub fn succeeded_within(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            match self.0.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => thread::sleep(Duration::from_millis(100)),
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for CarrierUas {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
