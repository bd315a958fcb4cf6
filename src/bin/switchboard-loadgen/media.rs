//! Media load: N call pairs to the gateway's "pair" test extension (`*45<i>`,
//! MEDIA-SPEC.md), each pair two digest-authenticated INVITEs the gateway
//! bridges, then 20 ms RTP both ways for the hold time, then BYE.
//!
//! G.711 payloads are relayed untouched, so every PCMU packet carries a
//! stamp (pair, leg, sequence, send time) and the receiving side measures
//! one-way latency and per-leg loss exactly. Through a transcoder (any Opus
//! leg) the payload is not preserved: packets are counted per gateway source
//! address instead and latency is not measured.
//!
//! Threads: the SIP engine runs on the main thread; sender threads pace the
//! RTP from deadlines computed from the tick count (no drift), each leg in
//! one of 20 one-millisecond slots of the tick so the packets are spread the
//! way independent phones would send them; receiver threads poll their
//! share of the (non-blocking) RTP sockets every [`RECV_POLL`]. Polling
//! rather than blocking in `recv_from` matters on loopback: a sleeping
//! reader is woken by the sender, inside the sender's `sendto`, so blocking
//! readers would bill the gateway a wake-up per relayed packet (a sixth of
//! its CPU) that no phone on a network would cost it. The measured latency
//! includes up to one poll interval.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use socket2::{Domain, Protocol, Socket, Type};
use switchboard::media::rtp::{RtpHeader, RtpPacket, Ssrc};
use switchboard::media::sdp::{Address, SessionDescription};
use switchboard::sip::auth::{respond, Challenge};
use switchboard::sip::message::{parse, HeaderName, Message, Method, Request, Response, Uri};

#[derive(Args)]
pub struct MediaArgs {
    /// The gateway's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Set the pairs up on an rtpengine at this ng control address instead
    /// of calling the gateway (same RTP and measurement; see rtpengine.rs).
    #[arg(long)]
    rtpengine: Option<SocketAddr>,
    /// The agent every call authenticates as.
    #[arg(long, default_value = "1001")]
    user: String,
    #[arg(long, default_value = "pass1001")]
    password: String,
    /// Call pairs (each two legs bridged by the gateway).
    #[arg(long, default_value_t = 10)]
    pairs: u32,
    /// Call legs (INVITEs) started per second during setup.
    #[arg(long, default_value_t = 100)]
    setup_rate: u32,
    /// Seconds every call stays up once the last pair is set up (the
    /// steady phase, between the `STEADY start` and `STEADY end` lines).
    #[arg(long, default_value_t = 30)]
    hold_secs: u64,
    #[arg(long, value_enum, default_value_t = CodecChoice::Pcmu)]
    codec_a: CodecChoice,
    #[arg(long, value_enum, default_value_t = CodecChoice::Pcmu)]
    codec_b: CodecChoice,
    /// Local RTP sockets shared by all legs (the gateway latches each of its
    /// legs to the source address, so legs may share them).
    #[arg(long, default_value_t = 16)]
    rtp_sockets: usize,
    /// RTP sender threads.
    #[arg(long, default_value_t = 2)]
    sender_threads: usize,
    /// Threads polling the RTP sockets (each takes every n-th socket).
    #[arg(long, default_value_t = 2)]
    receiver_threads: usize,
    /// Run the receiver threads under SCHED_FIFO, as the gateway's media
    /// workers (`media.realtime`) run: otherwise a real-time gateway
    /// delays our reads, and that delay would be measured as its latency.
    /// The receivers only poll and sleep; the senders stay normal, since
    /// a sender behind its schedule sends without pause and a real-time
    /// one would then take the gateway's core.
    #[arg(long)]
    realtime_receivers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecChoice {
    Pcmu,
    Opus,
}

impl CodecChoice {
    fn payload_type(self) -> u8 {
        match self {
            CodecChoice::Pcmu => 0,
            CodecChoice::Opus => 111,
        }
    }

    /// RTP timestamp units per 20 ms packet.
    fn ticks_per_packet(self) -> u32 {
        match self {
            CodecChoice::Pcmu => 160,
            CodecChoice::Opus => 960,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            CodecChoice::Pcmu => "PCMU/8000",
            CodecChoice::Opus => "opus/48000/2",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot bind or configure a UDP socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot build the Opus frames: {0}")]
    Opus(#[from] audiopus::Error),
    #[error("a worker thread panicked")]
    Panicked,
    #[error("rtpengine: {0}")]
    Rtpengine(#[from] crate::rtpengine::NgError),
}

/// Why the SDP answer of a 200 gave no usable media address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    #[error("the 200 has no SDP body")]
    NoBody,
    #[error("unparsable SDP: {0}")]
    Parse(String),
    #[error("no audio m-line")]
    NoAudio,
    #[error("the audio stream was rejected (port 0)")]
    Rejected,
    #[error("no IP address in c=")]
    NoAddress,
    #[error("no payload type in the m-line")]
    NoFormat,
}

// ---------------------------------------------------------------- ids

/// A call leg: pair `i` has legs `2i` (A, first into the room) and `2i + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl LegId {
    pub(crate) fn pair(self) -> u32 {
        self.0 / 2
    }
    pub(crate) fn side(self) -> u8 {
        (self.0 % 2) as u8
    }
    pub(crate) fn peer(self) -> LegId {
        LegId(self.0 ^ 1)
    }
    fn from_parts(pair: u32, side: u8) -> Option<LegId> {
        pair.checked_mul(2)
            .and_then(|p| p.checked_add(u32::from(side & 1)))
            .filter(|_| side <= 1)
            .map(LegId)
    }
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

// ---------------------------------------------------------------- SDP

/// RFC 3264 §5: one audio stream with the codec asked plus RFC 4733
/// telephone-event, sendrecv.
pub fn sdp_offer(ip: IpAddr, port: u16, codec: CodecChoice, session: u64) -> String {
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let pt = codec.payload_type();
    format!(
        "v=0\r\no=loadgen {session} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {}\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        codec.rtpmap()
    )
}

/// Where the gateway wants this leg's RTP, and the payload type it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerMedia {
    pub addr: SocketAddr,
    pub payload_type: u8,
}

pub fn parse_answer(body: &[u8]) -> Result<AnswerMedia, AnswerError> {
    if body.is_empty() {
        return Err(AnswerError::NoBody);
    }
    let sdp =
        SessionDescription::parse_bytes(body).map_err(|e| AnswerError::Parse(e.to_string()))?;
    let audio = sdp.audio().ok_or(AnswerError::NoAudio)?;
    if audio.port == 0 {
        return Err(AnswerError::Rejected);
    }
    let ip = match sdp.connection_of(audio).map(|c| &c.address) {
        Some(Address::Ip(ip)) => *ip,
        _ => return Err(AnswerError::NoAddress),
    };
    // RFC 3264 §6.1: the answer lists the formats it will send, preferred
    // first; the gateway answers with one codec (plus telephone-event).
    let payload_type = audio
        .formats
        .first()
        .and_then(|f| f.parse::<u8>().ok())
        .ok_or(AnswerError::NoFormat)?;
    Ok(AnswerMedia {
        addr: SocketAddr::new(ip, audio.port),
        payload_type,
    })
}

// ---------------------------------------------------------------- stamp

/// Marks our PCMU payloads, so silence or anything else the gateway sends
/// (e.g. to the first caller before the bridge) is not taken for a stamp.
const STAMP_MAGIC: u32 = 0x5342_4c47;
pub const STAMP_LEN: usize = 21;

/// What each relayed PCMU payload carries at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub leg: LegId,
    pub seq: u32,
    /// Nanoseconds since the run's epoch, taken just before `send_to`.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp at the start of `payload`; false if it is too short.
    pub fn encode(&self, payload: &mut [u8]) -> bool {
        let Some(out) = payload.get_mut(..STAMP_LEN) else {
            return false;
        };
        out[0..4].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&self.leg.pair().to_be_bytes());
        out[8] = self.leg.side();
        out[9..13].copy_from_slice(&self.seq.to_be_bytes());
        out[13..21].copy_from_slice(&self.sent_ns.to_be_bytes());
        true
    }

    pub fn decode(payload: &[u8]) -> Option<Stamp> {
        let b = payload.get(..STAMP_LEN)?;
        let word = |r: std::ops::Range<usize>| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(r)?.try_into().ok()?))
        };
        if word(0..4)? != STAMP_MAGIC {
            return None;
        }
        let leg = LegId::from_parts(word(4..8)?, b[8])?;
        let sent_ns = u64::from_be_bytes(b.get(13..21)?.try_into().ok()?);
        Some(Stamp {
            leg,
            seq: word(9..13)?,
            sent_ns,
        })
    }
}

// ---------------------------------------------------------------- accounting

/// One-way latency histogram: 10 µs buckets up to 1 s, then one overflow
/// bucket; the exact maximum is kept apart.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    max_ns: u64,
}

const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 100_000;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: vec![0; BUCKETS + 1],
            count: 0,
            max_ns: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, ns: u64) {
        let i = ((ns / BUCKET_NS) as usize).min(BUCKETS);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The upper edge of the bucket holding quantile `q` (so never an
    /// underestimate), capped by the maximum; None when empty.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                // The overflow bucket has no upper edge but the maximum.
                if i == BUCKETS {
                    return Some(self.max_ns);
                }
                return Some(((i as u64 + 1) * BUCKET_NS).min(self.max_ns));
            }
        }
        Some(self.max_ns)
    }

    /// Samples beyond the last bucket (1 s): their quantiles read as the
    /// maximum.
    pub fn overflow(&self) -> u64 {
        self.buckets[BUCKETS]
    }

    pub fn max_ns(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max_ns)
    }
}

/// Loss over all legs: per leg, what its peer received of what it sent.
/// Receiving more than was sent (duplicates, or a transcoder's own packets)
/// never hides another leg's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LossTotals {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// The worst single leg's loss.
    pub worst_leg_lost: u64,
}

pub fn loss_totals(sent: &BTreeMap<LegId, u64>, received: &HashMap<LegId, u64>) -> LossTotals {
    let mut t = LossTotals::default();
    for (leg, &s) in sent {
        let r = received.get(leg).copied().unwrap_or(0).min(s);
        t.sent += s;
        t.received += r;
        t.lost += s - r;
        t.worst_leg_lost = t.worst_leg_lost.max(s - r);
    }
    t
}

pub fn loss_pct(t: &LossTotals) -> f64 {
    if t.sent == 0 {
        0.0
    } else {
        t.lost as f64 * 100.0 / t.sent as f64
    }
}

// ---------------------------------------------------------------- pacing

pub const TICK: Duration = Duration::from_millis(20);
/// Each tick is cut into this many slots; a leg always sends in its slot.
pub const SLOTS: u32 = 20;

pub fn slot_of(leg: LegId) -> u32 {
    // Consecutive legs land in consecutive slots: with two sender threads
    // (leg % 2) one sends in the even slots, the other in the odd ones.
    leg.0 % SLOTS
}

/// When slot `slot` of tick `tick` is due: from the tick count, so a late
/// tick never shifts the ones after it.
pub fn deadline(epoch: Instant, tick: u64, slot: u32) -> Instant {
    let slot_len = TICK / SLOTS;
    let tick_ns = TICK.as_nanos() as u64;
    epoch + Duration::from_nanos(tick.saturating_mul(tick_ns)) + slot_len * slot.min(SLOTS - 1)
}

// ---------------------------------------------------------------- sockets

/// A UDP socket with large kernel buffers: at 2,000 pairs a burst of one
/// slot's packets must not overflow the defaults.
fn udp_socket(ip: IpAddr, buffer: usize) -> Result<UdpSocket, MediaError> {
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(MediaError::Socket)?;
    // Best effort: the kernel caps both at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(buffer);
    let _ = s.set_send_buffer_size(buffer);
    s.bind(&SocketAddr::new(ip, 0).into())
        .map_err(MediaError::Socket)?;
    Ok(s.into())
}

/// The local address the kernel would use to reach `target`.
fn local_ip_for(target: SocketAddr) -> Result<IpAddr, MediaError> {
    let unspecified: IpAddr = if target.is_ipv6() {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    };
    let probe = UdpSocket::bind(SocketAddr::new(unspecified, 0)).map_err(MediaError::Socket)?;
    probe.connect(target).map_err(MediaError::Socket)?;
    Ok(probe.local_addr().map_err(MediaError::Socket)?.ip())
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn opus_frames() -> Result<Vec<Vec<u8>>, MediaError> {
    use audiopus::coder::Encoder;
    use audiopus::{Application, Channels, SampleRate};
    let encoder = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
    let mut out = [0u8; 1275];
    let mut frames = Vec::with_capacity(50);
    // 440 Hz: exactly 440 periods in the 50 frames, so the loop is seamless.
    for f in 0..50usize {
        let pcm: Vec<i16> = (0..960usize)
            .map(|i| {
                let n = (f * 960 + i) as f64;
                (8000.0 * (std::f64::consts::TAU * 440.0 * n / 48_000.0).sin()) as i16
            })
            .collect();
        let len = encoder.encode(&pcm, &mut out)?;
        frames.push(out[..len].to_vec());
    }
    Ok(frames)
}

// ---------------------------------------------------------------- RTP threads

/// A leg whose media runs, handed to its sender thread once both legs of
/// the pair are answered.
struct SendLeg {
    leg: LegId,
    codec: CodecChoice,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    seq: u32,
    sent: u64,
    /// The wall-clock tick (see `wall_tick`) the leg joined its sender in.
    first_tick: u64,
}

#[derive(Default)]
struct SenderReport {
    sent: Vec<(LegId, u64)>,
    /// Packets due by the stop (one per 20 ms of wall time since each leg
    /// joined): more than were sent means this generator fell behind.
    due: u64,
    slots: u64,
    /// Slots that started more than 2 ms after their deadline.
    late_slots: u64,
    max_late: Duration,
    send_errors: u64,
}

fn sender(
    epoch: Instant,
    legs: mpsc::Receiver<SendLeg>,
    stop: Arc<AtomicBool>,
    opus: Arc<Vec<Vec<u8>>>,
) -> SenderReport {
    let mut by_slot: Vec<Vec<SendLeg>> = (0..SLOTS).map(|_| Vec::new()).collect();
    let mut report = SenderReport::default();
    let mut buf = [0xffu8; 1500];
    let mut tick = wall_tick(epoch) + 1;
    while !stop.load(Ordering::Acquire) {
        for (slot, legs_here) in (0u32..).zip(by_slot.iter_mut()) {
            let due = deadline(epoch, tick, slot);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            let late = Instant::now().saturating_duration_since(due);
            report.slots += 1;
            report.max_late = report.max_late.max(late);
            if late > Duration::from_millis(2) {
                report.late_slots += 1;
            }
            for l in legs_here.iter_mut() {
                let Some(len) = build_packet(epoch, l, &opus, &mut buf) else {
                    continue;
                };
                match l.socket.send_to(&buf[..len], l.remote) {
                    Ok(_) => l.sent += 1,
                    Err(_) => report.send_errors += 1,
                }
                l.seq = l.seq.wrapping_add(1);
            }
        }
        tick += 1;
        // New legs join at a tick boundary. What they are due is counted
        // on the wall clock, not this loop's ticks: a loop that fell behind
        // must show as packets not sent.
        while let Ok(mut l) = legs.try_recv() {
            l.first_tick = wall_tick(epoch);
            let slot = slot_of(l.leg) as usize;
            if let Some(v) = by_slot.get_mut(slot) {
                v.push(l);
            }
        }
    }
    report.sent = by_slot.iter().flatten().map(|l| (l.leg, l.sent)).collect();
    let stopped = wall_tick(epoch);
    report.due = by_slot
        .iter()
        .flatten()
        .map(|l| stopped.saturating_sub(l.first_tick))
        .sum();
    report
}

/// The 20 ms tick the wall clock is in, counted from `epoch`.
fn wall_tick(epoch: Instant) -> u64 {
    (epoch.elapsed().as_nanos() / TICK.as_nanos()) as u64
}

/// Writes the next packet of `l` into `buf`; its length.
fn build_packet(epoch: Instant, l: &SendLeg, opus: &[Vec<u8>], buf: &mut [u8]) -> Option<usize> {
    let header = RtpHeader {
        marker: l.seq == 0,
        payload_type: l.codec.payload_type(),
        sequence: l.seq as u16,
        timestamp: l.seq.wrapping_mul(l.codec.ticks_per_packet()),
        ssrc: Ssrc(0x4c47_0000 ^ l.leg.0),
    };
    let n = header.write_header(buf).ok()?;
    match l.codec {
        CodecChoice::Pcmu => {
            let payload = buf.get_mut(n..n + 160)?;
            payload.fill(0xff);
            let stamp = Stamp {
                leg: l.leg,
                seq: l.seq,
                sent_ns: epoch.elapsed().as_nanos() as u64,
            };
            stamp.encode(payload).then_some(n + 160)
        }
        CodecChoice::Opus => {
            let frame = opus.get(l.seq as usize % opus.len().max(1))?;
            buf.get_mut(n..n + frame.len())?.copy_from_slice(frame);
            Some(n + frame.len())
        }
    }
}

#[derive(Default)]
struct RecvReport {
    /// Stamped packets by the leg that sent them.
    by_leg: HashMap<LegId, u64>,
    /// Every RTP packet by the gateway address it came from.
    by_source: HashMap<SocketAddr, u64>,
    latency: LatencyHistogram,
    not_rtp: u64,
}

/// How often a receiver thread drains its sockets.
const RECV_POLL: Duration = Duration::from_micros(500);

fn receiver(
    epoch: Instant,
    sockets: Vec<Arc<UdpSocket>>,
    stop: Arc<AtomicBool>,
    realtime: bool,
) -> RecvReport {
    if realtime {
        switchboard::os::media_thread(true);
    }
    let mut report = RecvReport::default();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Acquire) {
        for socket in &sockets {
            // Non-blocking: drain what is queued, then the next socket.
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let now_ns = epoch.elapsed().as_nanos() as u64;
                account(&mut report, &buf[..len], from, now_ns);
            }
        }
        thread::sleep(RECV_POLL);
    }
    report
}

fn account(report: &mut RecvReport, data: &[u8], from: SocketAddr, now_ns: u64) {
    let Ok(packet) = RtpPacket::parse(data) else {
        report.not_rtp += 1;
        return;
    };
    // RTCP (RFC 3550 §12.1: types 200-204 read as 72-76 here) is not media.
    if (72..=76).contains(&packet.payload_type()) {
        report.not_rtp += 1;
        return;
    }
    *report.by_source.entry(from).or_insert(0) += 1;
    if packet.payload_type() == 0 {
        if let Some(stamp) = Stamp::decode(packet.payload()) {
            *report.by_leg.entry(stamp.leg).or_insert(0) += 1;
            report.latency.record(now_ns.saturating_sub(stamp.sent_ns));
        }
    }
}

// ---------------------------------------------------------------- SIP

/// RFC 3261 §17.1.1.2 Timer A starts at T1 and doubles; §17.1.2.2 caps the
/// BYE retransmissions at T2; both give up after 64*T1.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const GIVE_UP: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Inviting,
    Answered,
    Failed,
    Closing,
    Closed,
}

/// What the engine knows of one call leg.
struct SipLeg {
    phase: Phase,
    cseq: u32,
    /// The request in flight (INVITE or BYE), resent on loss.
    request: Vec<u8>,
    started: Instant,
    last_sent: Instant,
    retransmits: u32,
    /// A provisional answer stops INVITE retransmissions (§17.1.1.2).
    provisional: bool,
    /// The dialog (RFC 3261 §12.1.2), once the 200 came.
    to: String,
    remote_target: String,
    remote_addr: SocketAddr,
    route: Vec<String>,
    ack: Vec<u8>,
    media: Option<AnswerMedia>,
}

#[derive(Default)]
struct SipStats {
    failures: BTreeMap<u16, u32>,
    retransmits: u64,
    /// BYEs from the gateway while the calls should have stayed up.
    remote_byes_early: u32,
    /// BYEs from the gateway during our teardown (it ends a pair when one
    /// side leaves, so these cross our own BYE of the other side).
    remote_byes_teardown: u32,
    /// Final answers to our BYEs by status; 0 = none in 32 s.
    bye_status: BTreeMap<u16, u32>,
    bad_answers: u32,
}

struct Sip {
    socket: UdpSocket,
    target: SocketAddr,
    local: SocketAddr,
    domain: String,
    run: u32,
    user: String,
    password: String,
    codecs: [CodecChoice; 2],
    rtp_ports: Vec<u16>,
    local_ip: IpAddr,
    legs: Vec<SipLeg>,
    ready: Vec<LegId>,
    stats: SipStats,
    tearing_down: bool,
}

/// Status recorded for a leg that got no final answer in time.
const STATUS_TIMEOUT: u16 = 408;
/// Status recorded for a 200 whose SDP answer is unusable.
const STATUS_BAD_ANSWER: u16 = 1;

impl Sip {
    fn leg_of(&self, call_id: &str) -> Option<LegId> {
        let rest = call_id.strip_prefix("lgm-")?;
        let (leg, run) = rest.split_once('-')?;
        let run = run.split('@').next()?;
        if u32::from_str_radix(run, 16).ok()? != self.run {
            return None;
        }
        let leg = LegId(leg.parse().ok()?);
        (leg.index() < self.legs.len()).then_some(leg)
    }

    fn request_uri(&self, leg: LegId) -> String {
        format!("sip:*45{}@{}", leg.pair(), self.domain)
    }

    fn branch(&self, leg: LegId, what: &str, cseq: u32) -> String {
        format!("z9hG4bK-lgm-{:x}-{}-{what}{cseq}", self.run, leg.0)
    }

    /// A request of this leg's dialog (or the INVITE creating it).
    #[allow(clippy::too_many_arguments)]
    fn request_text(
        &self,
        method: &str,
        ruri: &str,
        leg: LegId,
        branch: &str,
        cseq: u32,
        to: &str,
        extra: &str,
        body: &str,
    ) -> Vec<u8> {
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=lgm{run:x}-{n}\r\nTo: {to}\r\n\
Call-ID: lgm-{n}-{run:x}@{domain}\r\nCSeq: {cseq} {method}\r\n{extra}\
User-Agent: switchboard-loadgen\r\nContent-Length: {len}\r\n\r\n{body}",
            local = self.local,
            user = self.user,
            domain = self.domain,
            run = self.run,
            n = leg.0,
            len = body.len(),
        )
        .into_bytes()
    }

    fn invite(&self, leg: LegId, cseq: u32, auth: &str) -> Vec<u8> {
        let codec = self.codecs[leg.side() as usize];
        let port = self.rtp_ports[leg.index() % self.rtp_ports.len()];
        let body = sdp_offer(self.local_ip, port, codec, u64::from(leg.0));
        let ruri = self.request_uri(leg);
        let extra = format!(
            "Contact: <sip:{}@{}>\r\n{auth}Content-Type: application/sdp\r\n",
            self.user, self.local
        );
        let to = format!("<{ruri}>");
        self.request_text(
            "INVITE",
            &ruri,
            leg,
            &self.branch(leg, "i", cseq),
            cseq,
            &to,
            &extra,
            &body,
        )
    }

    fn send(&self, data: &[u8], to: SocketAddr) {
        // A full send buffer is recovered by retransmission.
        let _ = self.socket.send_to(data, to);
    }

    fn start_invite(&mut self, leg: LegId, now: Instant) {
        let request = self.invite(leg, 1, "");
        self.send(&request, self.target);
        let l = &mut self.legs[leg.index()];
        l.phase = Phase::Inviting;
        l.cseq = 1;
        l.request = request;
        l.started = now;
        l.last_sent = now;
    }

    fn start_bye(&mut self, leg: LegId, now: Instant) {
        let l = &self.legs[leg.index()];
        let cseq = l.cseq + 1;
        let routes: String = l.route.iter().map(|r| format!("Route: {r}\r\n")).collect();
        let request = self.request_text(
            "BYE",
            &l.remote_target,
            leg,
            &self.branch(leg, "b", cseq),
            cseq,
            &l.to,
            &routes,
            "",
        );
        let to = l.remote_addr;
        self.send(&request, to);
        let l = &mut self.legs[leg.index()];
        l.phase = Phase::Closing;
        l.cseq = cseq;
        l.request = request;
        l.started = now;
        l.last_sent = now;
        l.retransmits = 0;
    }

    fn fail(&mut self, leg: LegId, status: u16) {
        self.legs[leg.index()].phase = Phase::Failed;
        *self.stats.failures.entry(status).or_insert(0) += 1;
    }

    /// RFC 3261 §17.1.1.3: the ACK of a non-2xx final answer belongs to the
    /// INVITE transaction: same branch and Request-URI, the answer's To.
    fn ack_failure(&self, leg: LegId, resp: &Response) {
        let cseq = resp.headers.cseq.seq;
        let ruri = self.request_uri(leg);
        let ack = self.request_text(
            "ACK",
            &ruri,
            leg,
            &self.branch(leg, "i", cseq),
            cseq,
            &resp.headers.to.to_string(),
            "",
            "",
        );
        self.send(&ack, self.target);
    }

    fn on_response(&mut self, resp: &Response, now: Instant) {
        let Some(leg) = self.leg_of(resp.headers.call_id.as_str()) else {
            return;
        };
        let cseq = resp.headers.cseq.seq;
        let (phase, current) = {
            let l = &self.legs[leg.index()];
            (l.phase, l.cseq)
        };
        match resp.headers.cseq.method {
            Method::Invite if resp.status < 200 && phase == Phase::Inviting && cseq == current => {
                self.legs[leg.index()].provisional = true;
            }
            Method::Invite if resp.status < 200 => {}
            Method::Invite if resp.status < 300 => {
                if phase == Phase::Inviting && cseq == current {
                    self.on_answer(leg, resp, now);
                } else {
                    // A retransmitted 200: our ACK was lost (§13.2.2.4).
                    let l = &self.legs[leg.index()];
                    if !l.ack.is_empty() {
                        self.send(&l.ack, l.remote_addr);
                    }
                }
            }
            Method::Invite => {
                self.ack_failure(leg, resp);
                if phase != Phase::Inviting || cseq != current {
                    return;
                }
                let challenge = match resp.status {
                    407 => Some(("Proxy-Authorization", HeaderName::ProxyAuthenticate)),
                    401 => Some(("Authorization", HeaderName::WwwAuthenticate)),
                    _ => None,
                };
                let creds = challenge.filter(|_| cseq == 1).and_then(|(field, name)| {
                    let c = Challenge::parse(resp.headers.get(&name)?).ok()?;
                    let uri = self.request_uri(leg);
                    let creds = respond(&c, "INVITE", &uri, &self.user, &self.password, "lgm", 1);
                    Some(format!("{field}: {}\r\n", creds.ok()?.to_header_value()))
                });
                match creds {
                    Some(auth) => {
                        // RFC 3261 §22.2: the same request again with
                        // credentials, a new CSeq and a new transaction.
                        let request = self.invite(leg, cseq + 1, &auth);
                        self.send(&request, self.target);
                        let l = &mut self.legs[leg.index()];
                        l.cseq = cseq + 1;
                        l.request = request;
                        l.last_sent = now;
                        l.retransmits = 0;
                        l.provisional = false;
                    }
                    None => self.fail(leg, resp.status),
                }
            }
            // Counted once, whether or not the gateway's own BYE of this
            // leg crossed ours and closed it already.
            Method::Bye
                if resp.status >= 200
                    && cseq == current
                    && matches!(phase, Phase::Closing | Phase::Closed)
                    && !self.legs[leg.index()].ack.is_empty() =>
            {
                *self.stats.bye_status.entry(resp.status).or_insert(0) += 1;
                self.legs[leg.index()].ack.clear();
                self.legs[leg.index()].phase = Phase::Closed;
            }
            _ => {}
        }
    }

    fn on_answer(&mut self, leg: LegId, resp: &Response, now: Instant) {
        let contact = resp.headers.contact.first().map(|c| c.uri.clone());
        let remote_target = contact
            .as_ref()
            .map_or_else(|| self.request_uri(leg), ToString::to_string);
        // Send in-dialog requests where the Contact says when it is an IP.
        let remote_addr = contact
            .as_ref()
            .and_then(Uri::as_sip)
            .and_then(|u| Some(SocketAddr::new(u.host.ip()?, u.port.unwrap_or(5060))))
            .unwrap_or(self.target);
        // RFC 3261 §12.1.2: the UAC's route set is the Record-Route reversed.
        let route: Vec<String> = resp
            .headers
            .record_route
            .iter()
            .rev()
            .map(ToString::to_string)
            .collect();
        let to = resp.headers.to.to_string();
        let cseq = resp.headers.cseq.seq;
        let routes: String = route.iter().map(|r| format!("Route: {r}\r\n")).collect();
        // RFC 3261 §13.2.2.4: the ACK of a 2xx is its own transaction (new
        // branch), sent to the remote target, with the INVITE's CSeq number.
        let ack = self.request_text(
            "ACK",
            &remote_target,
            leg,
            &self.branch(leg, "a", cseq),
            cseq,
            &to,
            &routes,
            "",
        );
        self.send(&ack, remote_addr);
        let media = parse_answer(&resp.body);
        let l = &mut self.legs[leg.index()];
        l.to = to;
        l.remote_target = remote_target;
        l.remote_addr = remote_addr;
        l.route = route;
        l.ack = ack;
        l.phase = Phase::Answered;
        match media {
            Ok(m) => {
                l.media = Some(m);
                if self.legs[leg.peer().index()].media.is_some() {
                    self.ready.extend([leg.peer(), leg]);
                }
            }
            Err(_) => {
                self.stats.bad_answers += 1;
                *self.stats.failures.entry(STATUS_BAD_ANSWER).or_insert(0) += 1;
                self.start_bye(leg, now);
            }
        }
    }

    fn on_request(&mut self, req: &Request, from: SocketAddr) {
        if req.method == Method::Ack {
            return;
        }
        let status = match req.method {
            // A re-INVITE: this generator keeps one offer per call.
            Method::Invite => 488,
            _ => 200,
        };
        self.send(&req.response(status, None).to_bytes(), from);
        if req.method == Method::Bye {
            if let Some(leg) = self.leg_of(req.headers.call_id.as_str()) {
                let l = &mut self.legs[leg.index()];
                if matches!(l.phase, Phase::Answered | Phase::Closing) {
                    // Our BYE, if any, still waits for its answer.
                    if l.phase == Phase::Answered {
                        l.ack.clear();
                    }
                    l.phase = Phase::Closed;
                    if self.tearing_down {
                        self.stats.remote_byes_teardown += 1;
                    } else {
                        self.stats.remote_byes_early += 1;
                    }
                }
            }
        }
    }

    /// Waits up to `wait` for one datagram and handles it.
    fn poll(&mut self, buf: &mut [u8], wait: Duration) {
        let _ = self
            .socket
            .set_read_timeout(Some(wait.max(Duration::from_micros(100))));
        let Ok((len, from)) = self.socket.recv_from(buf) else {
            return;
        };
        let now = Instant::now();
        match buf.get(..len).map(parse) {
            Some(Ok(Message::Response(resp))) => self.on_response(&resp, now),
            Some(Ok(Message::Request(req))) => self.on_request(&req, from),
            _ => {}
        }
    }

    /// Retransmissions and time-outs (RFC 3261 §17.1.1.2, §17.1.2.2).
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.legs.len() {
            let l = &self.legs[i];
            let leg = LegId(i as u32);
            match l.phase {
                Phase::Inviting | Phase::Closing if now.duration_since(l.started) > GIVE_UP => {
                    if l.phase == Phase::Inviting {
                        self.fail(leg, STATUS_TIMEOUT);
                    } else {
                        self.legs[i].phase = Phase::Closed;
                        self.legs[i].ack.clear();
                        *self.stats.bye_status.entry(0).or_insert(0) += 1;
                    }
                }
                Phase::Inviting | Phase::Closing => {
                    let interval =
                        (T1 * (1 << l.retransmits.min(4))).min(if l.phase == Phase::Closing {
                            T2
                        } else {
                            GIVE_UP
                        });
                    if (l.phase == Phase::Closing || !l.provisional)
                        && now.duration_since(l.last_sent) >= interval
                    {
                        let to = if l.phase == Phase::Closing {
                            l.remote_addr
                        } else {
                            self.target
                        };
                        self.send(&l.request, to);
                        let l = &mut self.legs[i];
                        l.last_sent = now;
                        l.retransmits += 1;
                        self.stats.retransmits += 1;
                    }
                }
                _ => {}
            }
        }
    }

    fn count(&self, phase: Phase) -> usize {
        self.legs.iter().filter(|l| l.phase == phase).count()
    }
}

/// Sets the calls up and tears them down: the gateway over SIP, or an
/// rtpengine over its ng protocol (`--rtpengine`); the RTP streams and
/// their measurement are the same for both.
pub(crate) trait Signalling {
    /// Starts setting `leg` up (legs A then B of each pair, in order).
    fn start(&mut self, leg: LegId, now: Instant);
    /// Waits up to `wait` for signalling and handles it.
    fn poll(&mut self, buf: &mut [u8], wait: Duration);
    /// Retransmissions and time-outs.
    fn sweep(&mut self, now: Instant);
    /// Legs whose media address became known since the last call.
    fn take_ready(&mut self) -> Vec<LegId>;
    /// Where `leg` sends its RTP.
    fn media(&self, leg: LegId) -> Option<AnswerMedia>;
    fn phase(&self, leg: LegId) -> Phase;
    fn count(&self, phase: Phase) -> usize;
    fn begin_teardown(&mut self);
    /// Ends `leg`.
    fn stop(&mut self, leg: LegId, now: Instant);
    fn setup_failed(&self) -> u32;
    /// Setup failures by cause, and what it took.
    fn setup_report(&self) -> String;
    fn teardown_report(&self) -> String;
}

impl Signalling for Sip {
    fn start(&mut self, leg: LegId, now: Instant) {
        self.start_invite(leg, now);
    }
    fn poll(&mut self, buf: &mut [u8], wait: Duration) {
        Sip::poll(self, buf, wait);
    }
    fn sweep(&mut self, now: Instant) {
        Sip::sweep(self, now);
    }
    fn take_ready(&mut self) -> Vec<LegId> {
        std::mem::take(&mut self.ready)
    }
    fn media(&self, leg: LegId) -> Option<AnswerMedia> {
        self.legs[leg.index()].media
    }
    fn phase(&self, leg: LegId) -> Phase {
        self.legs[leg.index()].phase
    }
    fn count(&self, phase: Phase) -> usize {
        Sip::count(self, phase)
    }
    fn begin_teardown(&mut self) {
        self.tearing_down = true;
    }
    fn stop(&mut self, leg: LegId, now: Instant) {
        self.start_bye(leg, now);
    }
    fn setup_failed(&self) -> u32 {
        self.stats.failures.values().sum()
    }
    fn setup_report(&self) -> String {
        format!(
            "{:?} (1 = unusable SDP answer, 408 = no answer), {} SIP retransmissions",
            self.stats.failures, self.stats.retransmits
        )
    }
    fn teardown_report(&self) -> String {
        format!(
            "answers to our BYEs by status {:?} (0 = none), BYEs from the gateway: {} during teardown, {} before it",
            self.stats.bye_status, self.stats.remote_byes_teardown, self.stats.remote_byes_early
        )
    }
}

// ---------------------------------------------------------------- run

pub fn run(args: MediaArgs) -> ExitCode {
    if args.pairs == 0 || args.setup_rate == 0 || args.rtp_sockets == 0 || args.sender_threads == 0
    {
        eprintln!("pairs, setup-rate, rtp-sockets and sender-threads must be at least 1");
        return ExitCode::from(2);
    }
    match run_media(&args) {
        Ok(ok) if ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("switchboard-loadgen media: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints a phase marker the bench script waits for, at once.
fn marker(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn run_media(args: &MediaArgs) -> Result<bool, MediaError> {
    const BUFFER: usize = 8 << 20;
    let local_ip = local_ip_for(args.rtpengine.unwrap_or(args.target))?;
    let stamped = args.codec_a == CodecChoice::Pcmu && args.codec_b == CodecChoice::Pcmu;
    let opus = Arc::new(if stamped { Vec::new() } else { opus_frames()? });
    let epoch = Instant::now();

    let mut rtp = Vec::new();
    for _ in 0..args.rtp_sockets {
        let s = udp_socket(local_ip, BUFFER)?;
        s.set_nonblocking(true).map_err(MediaError::Socket)?;
        rtp.push(Arc::new(s));
    }
    let rtp_ports = rtp
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<u16>, _>>()
        .map_err(MediaError::Socket)?;

    let recv_stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    let threads = args.receiver_threads.clamp(1, rtp.len().max(1));
    for i in 0..threads {
        let share: Vec<Arc<UdpSocket>> = rtp.iter().skip(i).step_by(threads).cloned().collect();
        let stop = recv_stop.clone();
        let realtime = args.realtime_receivers;
        let h = thread::Builder::new()
            .name(format!("rtp-recv-{i}"))
            .spawn(move || receiver(epoch, share, stop, realtime))
            .map_err(MediaError::Thread)?;
        receivers.push(h);
    }
    let send_stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut to_senders = Vec::new();
    for i in 0..args.sender_threads {
        let (tx, rx) = mpsc::channel();
        let (stop, opus) = (send_stop.clone(), opus.clone());
        let h = thread::Builder::new()
            .name(format!("rtp-send-{i}"))
            .spawn(move || sender(epoch, rx, stop, opus))
            .map_err(MediaError::Thread)?;
        senders.push(h);
        to_senders.push(tx);
    }

    let legs_total = args.pairs as usize * 2;
    let codecs = [args.codec_a, args.codec_b];
    let mut sip: Box<dyn Signalling> = if let Some(ng) = args.rtpengine {
        Box::new(crate::rtpengine::NgCalls::new(
            ng, local_ip, codecs, rtp_ports, legs_total,
        )?)
    } else {
        let sip_socket = udp_socket(local_ip, BUFFER)?;
        let local = sip_socket.local_addr().map_err(MediaError::Socket)?;
        Box::new(Sip {
            socket: sip_socket,
            target: args.target,
            local,
            domain: host(args.target.ip()),
            run: rand::random(),
            user: args.user.clone(),
            password: args.password.clone(),
            codecs,
            rtp_ports,
            local_ip,
            legs: (0..legs_total)
                .map(|_| SipLeg {
                    phase: Phase::Idle,
                    cseq: 0,
                    request: Vec::new(),
                    started: epoch,
                    last_sent: epoch,
                    retransmits: 0,
                    provisional: false,
                    to: String::new(),
                    remote_target: String::new(),
                    remote_addr: args.target,
                    route: Vec::new(),
                    ack: Vec::new(),
                    media: None,
                })
                .collect(),
            ready: Vec::new(),
            stats: SipStats::default(),
            tearing_down: false,
        })
    };
    let mut buf = vec![0u8; 65_536];
    let mut last_sweep = epoch;
    let mut pump = |sip: &mut Box<dyn Signalling>, to_senders: &[mpsc::Sender<SendLeg>]| {
        sip.poll(&mut buf, Duration::from_millis(2));
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(50) {
            last_sweep = now;
            sip.sweep(now);
        }
        for leg in sip.take_ready() {
            let Some(media) = sip.media(leg) else {
                continue;
            };
            let send = SendLeg {
                leg,
                codec: codecs[leg.side() as usize],
                socket: rtp[leg.index() % rtp.len()].clone(),
                remote: media.addr,
                seq: 0,
                sent: 0,
                first_tick: 0,
            };
            // A closed channel means the thread is gone; the join reports it.
            let _ = to_senders[leg.index() % to_senders.len()].send(send);
        }
    };

    // Setup: open loop at the asked rate, legs A then B of each pair.
    let interval = Duration::from_secs(1) / args.setup_rate;
    let setup_start = Instant::now();
    let setup_end = setup_start + interval * legs_total as u32 + GIVE_UP + Duration::from_secs(2);
    let mut started = 0usize;
    loop {
        let now = Instant::now();
        while started < legs_total && setup_start + interval * started as u32 <= now {
            sip.start(LegId(started as u32), now);
            started += 1;
        }
        pump(&mut sip, &to_senders);
        if (started == legs_total && sip.count(Phase::Inviting) == 0) || now > setup_end {
            break;
        }
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let legs_up = sip.count(Phase::Answered);

    marker(&format!("STEADY start legs_up={legs_up}"));
    let steady_start = Instant::now();
    let hold = Duration::from_secs(args.hold_secs);
    while steady_start.elapsed() < hold {
        pump(&mut sip, &to_senders);
    }
    marker("STEADY end");
    let steady_secs = steady_start.elapsed().as_secs_f64();

    send_stop.store(true, Ordering::Release);
    let mut sent: BTreeMap<LegId, u64> = BTreeMap::new();
    let (mut late_slots, mut slots, mut max_late, mut send_errors) = (0, 0, Duration::ZERO, 0);
    let mut due = 0;
    for h in senders {
        let r = h.join().map_err(|_| MediaError::Panicked)?;
        sent.extend(r.sent);
        late_slots += r.late_slots;
        slots += r.slots;
        max_late = max_late.max(r.max_late);
        send_errors += r.send_errors;
        due += r.due;
    }
    // Let what is in flight arrive rather than guess how much it is.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_millis(500) {
        pump(&mut sip, &to_senders);
    }
    recv_stop.store(true, Ordering::Release);
    let mut by_leg: HashMap<LegId, u64> = HashMap::new();
    let mut by_source: HashMap<SocketAddr, u64> = HashMap::new();
    let mut latency = LatencyHistogram::default();
    let mut not_rtp = 0;
    for h in receivers {
        let r = h.join().map_err(|_| MediaError::Panicked)?;
        for (k, v) in r.by_leg {
            *by_leg.entry(k).or_insert(0) += v;
        }
        for (k, v) in r.by_source {
            *by_source.entry(k).or_insert(0) += v;
        }
        latency.merge(&r.latency);
        not_rtp += r.not_rtp;
    }
    let received = if stamped {
        by_leg
    } else {
        // Packets from the gateway port of leg X carry what X's peer sent.
        let mut m = HashMap::new();
        for leg in (0..legs_total as u32).map(LegId) {
            if let Some(media) = sip.media(leg) {
                let count = by_source.get(&media.addr).copied().unwrap_or(0);
                m.insert(leg.peer(), count);
            }
        }
        m
    };
    let totals = loss_totals(&sent, &received);

    // Teardown at twice the setup rate.
    let bye_interval = interval / 2;
    let to_close: Vec<LegId> = (0..legs_total as u32)
        .map(LegId)
        .filter(|&l| sip.phase(l) == Phase::Answered)
        .collect();
    sip.begin_teardown();
    let teardown = Instant::now();
    let teardown_end =
        teardown + bye_interval * to_close.len() as u32 + GIVE_UP + Duration::from_secs(2);
    let mut next = 0;
    loop {
        let now = Instant::now();
        while next < to_close.len() && teardown + bye_interval * next as u32 <= now {
            // The gateway hangs up the other leg of a pair itself: a leg
            // it closed meanwhile gets no BYE of ours.
            if sip.phase(to_close[next]) == Phase::Answered {
                sip.stop(to_close[next], now);
            }
            next += 1;
        }
        pump(&mut sip, &to_senders);
        if (next == to_close.len() && sip.count(Phase::Closing) == 0) || now > teardown_end {
            break;
        }
    }

    let ms = |ns: Option<u64>| ns.map_or("n/a".to_owned(), |n| format!("{:.3}", n as f64 / 1e6));
    let (p50, p99, max) = if stamped {
        (
            ms(latency.quantile_ns(0.5)),
            ms(latency.quantile_ns(0.99)),
            ms(latency.max_ns()),
        )
    } else {
        ("n/a".to_owned(), "n/a".to_owned(), "n/a".to_owned())
    };
    let setup_failed = sip.setup_failed();
    let codec = |c: CodecChoice| {
        if c == CodecChoice::Pcmu {
            "pcmu"
        } else {
            "opus"
        }
    };
    println!(
        "media load: {} pairs ({} legs), leg A {}, leg B {}, {} RTP sockets, {} sender threads",
        args.pairs,
        legs_total,
        codec(args.codec_a),
        codec(args.codec_b),
        args.rtp_sockets,
        args.sender_threads
    );
    println!(
        "  setup: {legs_up} legs up, {setup_failed} failed {}, {setup_secs:.1} s",
        sip.setup_report()
    );
    println!("  steady phase: {steady_secs:.1} s with all answered calls up");
    println!("  RTP: sent {} received {} lost {} ({:.4} %), worst leg lost {}, send errors {send_errors}, non-media datagrams {not_rtp}",
        totals.sent, totals.received, totals.lost, loss_pct(&totals), totals.worst_leg_lost);
    if stamped {
        println!("  one-way latency through the relay (ms): p50 {p50} p99 {p99} max {max} ({} samples, {} over 1 s, whose quantiles read as the max)", latency.count(), latency.overflow());
    } else {
        println!("  transcoded: payloads are not preserved, so loss is counted per gateway port (capped at what was sent) and latency is not measured");
    }
    println!("  generator pacing: sent {} of {due} packets due ({:.2} %); {late_slots} of {slots} send slots more than 2 ms late, worst {:.2} ms{}",
        totals.sent, if due == 0 { 100.0 } else { totals.sent as f64 * 100.0 / due as f64 },
        max_late.as_secs_f64() * 1e3,
        if totals.sent + due / 1000 < due { " -- GENERATOR OVERLOADED: the offered load is below the nominal" } else { "" });
    println!("  teardown: {}", sip.teardown_report());
    println!(
        "RESULT pairs={} legs_up={legs_up} setup_failed={setup_failed} sent={} received={} lost={} loss_pct={:.4} lat_p50_ms={p50} lat_p99_ms={p99} lat_max_ms={max}",
        args.pairs, totals.sent, totals.received, totals.lost, loss_pct(&totals)
    );
    Ok(setup_failed == 0 && totals.sent > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ANSWER: &str =
        "v=0\r\no=switchboard 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 20004 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

    #[test]
    fn offer_is_valid_sdp_with_the_codec_and_telephone_event() {
        for (codec, pt, map) in [
            (CodecChoice::Pcmu, 0u8, "PCMU"),
            (CodecChoice::Opus, 111, "opus"),
        ] {
            let text = sdp_offer("127.0.0.1".parse().unwrap(), 40000, codec, 7);
            let sdp = SessionDescription::parse(&text).unwrap();
            let audio = sdp.audio().unwrap();
            assert_eq!(audio.port, 40000);
            assert_eq!(audio.formats, vec![pt.to_string(), "101".to_owned()]);
            assert_eq!(audio.rtpmap(pt).unwrap().encoding, map);
            assert!(audio.rtpmap(101).is_some());
        }
        let v6 = sdp_offer("::1".parse().unwrap(), 40000, CodecChoice::Pcmu, 7);
        assert!(v6.contains("c=IN IP6 ::1"));
        assert!(SessionDescription::parse(&v6).is_ok());
    }

    #[test]
    fn answer_gives_the_gateway_address_and_chosen_codec() {
        let m = parse_answer(ANSWER.as_bytes()).unwrap();
        assert_eq!(m.addr, "127.0.0.1:20004".parse().unwrap());
        assert_eq!(m.payload_type, 0);
    }

    #[test]
    fn unusable_answers_are_refused_by_cause() {
        assert_eq!(parse_answer(b""), Err(AnswerError::NoBody));
        assert!(matches!(
            parse_answer(b"garbage"),
            Err(AnswerError::Parse(_))
        ));
        let rejected = ANSWER.replace("m=audio 20004", "m=audio 0");
        assert_eq!(
            parse_answer(rejected.as_bytes()),
            Err(AnswerError::Rejected)
        );
        let no_c = ANSWER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 gw.example");
        assert_eq!(parse_answer(no_c.as_bytes()), Err(AnswerError::NoAddress));
        let video = ANSWER.replace("m=audio", "m=video");
        assert_eq!(parse_answer(video.as_bytes()), Err(AnswerError::NoAudio));
    }

    #[test]
    fn stamp_round_trips_and_rejects_other_payloads() {
        let stamp = Stamp {
            leg: LegId(4001),
            seq: 0xdead_beef,
            sent_ns: 123_456_789_012,
        };
        let mut payload = [0xffu8; 160];
        assert!(stamp.encode(&mut payload));
        assert_eq!(Stamp::decode(&payload), Some(stamp));
        assert_eq!(stamp.leg.pair(), 2000);
        assert_eq!(stamp.leg.side(), 1);
        // PCMU silence, a short payload, a bad leg byte.
        assert_eq!(Stamp::decode(&[0xffu8; 160]), None);
        assert_eq!(Stamp::decode(&payload[..STAMP_LEN - 1]), None);
        assert!(!stamp.encode(&mut [0u8; STAMP_LEN - 1]));
        payload[8] = 2;
        assert_eq!(Stamp::decode(&payload), None);
    }

    #[test]
    fn legs_pair_up() {
        assert_eq!(LegId(6).peer(), LegId(7));
        assert_eq!(LegId(7).peer(), LegId(6));
        assert_eq!(LegId::from_parts(3, 1), Some(LegId(7)));
        assert_eq!(LegId::from_parts(u32::MAX, 0), None);
    }

    #[test]
    fn histogram_quantiles_never_underestimate() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_ns(0.5), None);
        for us in 1..=100u64 {
            h.record(us * 1_000);
        }
        // p50 is 50 µs, in the 50-60 µs bucket: reported as its upper edge.
        assert_eq!(h.quantile_ns(0.5), Some(60_000));
        assert_eq!(h.quantile_ns(0.99), Some(100_000));
        assert_eq!(h.max_ns(), Some(100_000));
        let mut other = LatencyHistogram::default();
        other.record(5_000_000_000); // beyond the last bucket
        h.merge(&other);
        assert_eq!(h.count(), 101);
        assert_eq!(h.overflow(), 1);
        assert_eq!(h.quantile_ns(1.0), Some(5_000_000_000));
        assert_eq!(h.quantile_ns(0.5), Some(60_000));
    }

    #[test]
    fn loss_is_per_leg_and_surplus_does_not_hide_it() {
        let sent = BTreeMap::from([(LegId(0), 100), (LegId(1), 100), (LegId(2), 50)]);
        // Leg 0 fully received, leg 1 short by 3, leg 2 over-counted (a
        // transcoder's own packets), leg 3 never sent.
        let received = HashMap::from([
            (LegId(0), 100),
            (LegId(1), 97),
            (LegId(2), 80),
            (LegId(3), 9),
        ]);
        let t = loss_totals(&sent, &received);
        assert_eq!(
            t,
            LossTotals {
                sent: 250,
                received: 247,
                lost: 3,
                worst_leg_lost: 3
            }
        );
        assert!((loss_pct(&t) - 1.2).abs() < 1e-9);
        assert_eq!(loss_pct(&LossTotals::default()), 0.0);
    }

    #[test]
    fn pacing_deadlines_come_from_the_tick_count() {
        let t0 = Instant::now();
        assert_eq!(deadline(t0, 0, 0), t0);
        assert_eq!(deadline(t0, 1, 0), t0 + Duration::from_millis(20));
        assert_eq!(deadline(t0, 3, 5), t0 + Duration::from_millis(65));
        // 90,000 ticks is 30 min: still exact, no accumulated drift.
        assert_eq!(
            deadline(t0, 90_000, 19),
            t0 + Duration::from_millis(1_800_019)
        );
        // Slots past the end clamp to the last one.
        assert_eq!(deadline(t0, 0, 99), t0 + Duration::from_millis(19));
    }

    #[test]
    fn each_sender_threads_legs_spread_over_the_tick() {
        // Two sender threads take legs by parity; together they use every
        // slot, each slot equally.
        let mut per_slot = [0u32; SLOTS as usize];
        for leg in 0..4000 {
            per_slot[slot_of(LegId(leg)) as usize] += 1;
        }
        assert!(per_slot.iter().all(|&n| n == 200));
        assert_ne!(slot_of(LegId(10)), slot_of(LegId(11)));
    }

    #[test]
    fn packets_carry_rtp_header_and_stamp() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let epoch = Instant::now();
        let mut l = SendLeg {
            leg: LegId(5),
            codec: CodecChoice::Pcmu,
            socket,
            remote: "127.0.0.1:9".parse().unwrap(),
            seq: 3,
            sent: 0,
            first_tick: 0,
        };
        let mut buf = [0u8; 1500];
        let len = build_packet(epoch, &l, &[], &mut buf).unwrap();
        assert_eq!(len, 172);
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!((p.payload_type(), p.sequence(), p.timestamp()), (0, 3, 480));
        let stamp = Stamp::decode(p.payload()).unwrap();
        assert_eq!((stamp.leg, stamp.seq), (LegId(5), 3));
        l.codec = CodecChoice::Opus;
        let frames = vec![vec![1u8, 2, 3]; 2];
        let len = build_packet(epoch, &l, &frames, &mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(
            (p.payload_type(), p.timestamp(), p.payload()),
            (111, 2880, &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn opus_frames_are_fifty_nonempty_packets() {
        let frames = opus_frames().unwrap();
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|f| !f.is_empty() && f.len() < 400));
    }
}
