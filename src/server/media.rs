//! The media workers: threads that own the RTP sockets of the sessions
//! given to them and pump their sans-IO [`Session`]s.
//!
//! Why threads with their own poll loop rather than tokio tasks: a call
//! centre's media is tens of thousands of small datagrams per second on
//! thousands of sockets. One `mio` loop per core reads each ready socket
//! until it would block and sends each forwarded packet straight away: no
//! task per socket, no waker, no cross-thread hand-off on the packet path
//! (a relayed packet is one `recv_from` and one `send_to`). Each worker has
//! one 20 ms media clock ([`Pacer`]) shared by all its sessions, which
//! drives playback, transcoding and recording.
//!
//! Sessions are placed on a worker by their id, so both legs of a call
//! live on the same thread and the relay needs no lock.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use crate::media::control::{LegReport, MediaCommand, MediaEvent};
use crate::media::pacer::{FrameIndex, Pacer, PacerStats};
use crate::media::player::FRAME;
use crate::media::ports::PortPair;
use crate::media::record::{Chunk, RecorderHandle, Recording, RecordingId};
use crate::media::relay::LegId;
use crate::media::rtp::rtcp::ntp_timestamp;
use crate::media::session::{Session, SessionConfig, SessionEvent, SessionId};

/// Largest datagram we read: RTP over Ethernet never comes near it.
const MAX_DATAGRAM: usize = 2048;
/// How often each worker logs its counters.
const STATS_EVERY: Duration = Duration::from_secs(10);
/// Socket buffers: a worker that is late by a few ms must not lose the
/// packets that queued meanwhile (thousands of streams at 50 packets/s).
const SOCKET_BUFFER: usize = 256 * 1024;
const WAKER: Token = Token(usize::MAX);
/// Sessions ticked between two looks at the sockets (about a quarter of a
/// millisecond of recording work).
const SERVE_EVERY: usize = 64;
/// Sockets served per look inside a tick (about a quarter of a millisecond
/// of relaying): when the worker is overloaded the tick still ends on time,
/// and the backlog waits in the socket buffers, where the next loop serves
/// it, rather than in the clock.
const SERVE_AT_MOST: usize = 32;

/// Why the media workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaRuntimeError {
    #[error("media worker poll: {0}")]
    Poll(#[source] std::io::Error),
    #[error("media worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("media clock: {0}")]
    Pacer(#[from] crate::media::pacer::PacerError),
}

/// The handle the signalling side uses: routes each command to its worker.
pub struct MediaRuntime {
    workers: Vec<WorkerHandle>,
}

struct WorkerHandle {
    commands: mpsc::Sender<Control>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

enum Control {
    Command(MediaCommand),
    Shutdown,
}

/// Settings of every worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The address RTP sockets bind to (and that SDP advertises).
    pub address: IpAddr,
    pub session: SessionConfig,
    /// Workers under SCHED_FIFO (`media.realtime`).
    pub realtime: bool,
}

impl MediaRuntime {
    /// Starts `workers` threads (at least one).
    pub fn start(
        workers: usize,
        config: WorkerConfig,
        events: UnboundedSender<MediaEvent>,
        recorder: Option<RecorderHandle>,
    ) -> Result<MediaRuntime, MediaRuntimeError> {
        let mut handles = Vec::new();
        for index in 0..workers.max(1) {
            let poll = Poll::new().map_err(MediaRuntimeError::Poll)?;
            let waker =
                Arc::new(Waker::new(poll.registry(), WAKER).map_err(MediaRuntimeError::Poll)?);
            let (tx, rx) = mpsc::channel();
            let worker = Worker::new(
                index,
                poll,
                rx,
                config.clone(),
                events.clone(),
                recorder.clone(),
            )?;
            let thread = std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || worker.run())
                .map_err(MediaRuntimeError::Spawn)?;
            handles.push(WorkerHandle {
                commands: tx,
                waker,
                thread: Some(thread),
            });
        }
        Ok(MediaRuntime { workers: handles })
    }

    /// Hands a command to the worker owning its session.
    pub fn send(&self, command: MediaCommand) {
        let n = self.workers.len() as u64;
        let Some(worker) = usize::try_from(command.session().0 % n)
            .ok()
            .and_then(|i| self.workers.get(i))
        else {
            return;
        };
        if worker.commands.send(Control::Command(command)).is_ok() {
            if let Err(e) = worker.waker.wake() {
                warn!(error = %e, "media worker wake-up failed");
            }
        }
    }

    /// Stops the workers; their sessions end (recordings are finished).
    pub fn shutdown(mut self) {
        for w in &self.workers {
            let _ = w.commands.send(Control::Shutdown);
            let _ = w.waker.wake();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                if t.join().is_err() {
                    warn!("a media worker panicked");
                }
            }
        }
    }
}

/// One leg's sockets.
struct LegSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ports: PortPair,
    sent: u64,
    /// When our next RTCP report to the leg is due.
    next_report: Instant,
}

impl LegSockets {
    /// Sends RTP to the leg; a full socket buffer or an ICMP error drops
    /// the packet (RTP is loss-tolerant) and is counted.
    fn send(&mut self, data: &[u8], to: SocketAddr, counters: &mut Counters) {
        match self.rtp.send_to(data, to) {
            Ok(_) => {
                self.sent += 1;
                counters.packets_out += 1;
            }
            Err(_) => counters.send_errors += 1,
        }
    }
}

/// RFC 3550 §6.2: at least 5 s between reports, randomised by 0.5–1.5 so
/// that the reports of many calls do not fall in step.
fn report_interval() -> Duration {
    Duration::from_millis(2500 + rand::random::<u64>() % 5000)
}

struct Slot {
    session: Session,
    sockets: [Option<LegSockets>; 2],
    recording: Option<Recording>,
}

fn leg_index(leg: LegId) -> usize {
    match leg {
        LegId::Caller => 0,
        LegId::Agent => 1,
    }
}

const LEGS: [LegId; 2] = [LegId::Caller, LegId::Agent];

/// Tokens: four per slot (two legs × RTP/RTCP).
fn token(slot: usize, leg: LegId, rtcp: bool) -> Token {
    Token(slot * 4 + leg_index(leg) * 2 + usize::from(rtcp))
}

fn from_token(t: Token) -> (usize, LegId, bool) {
    let leg = if (t.0 / 2) % 2 == 0 {
        LegId::Caller
    } else {
        LegId::Agent
    };
    (t.0 / 4, leg, t.0 % 2 == 1)
}

#[derive(Default)]
struct Counters {
    bad_rtcp: u64,
    packets_in: u64,
    packets_out: u64,
    send_errors: u64,
}

struct Worker {
    index: usize,
    poll: Poll,
    commands: mpsc::Receiver<Control>,
    config: WorkerConfig,
    events: UnboundedSender<MediaEvent>,
    recorder: Option<RecorderHandle>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_session: HashMap<SessionId, usize>,
    pacer: Pacer,
    /// The clock's counters at the last stats line, so that each line
    /// covers its own interval.
    logged: PacerStats,
    /// Worst lateness since the last stats line.
    window_max: Duration,
    /// The waker fired: commands are waiting.
    wake_pending: bool,
    /// Events of the polls made inside a tick.
    mid_events: Option<Events>,
    /// Longest tick (playback, transcoding, recording of every session)
    /// since the last stats line: packets wait while it runs.
    tick_max: Duration,
    counters: Counters,
    next_recording: u64,
    buf: Vec<u8>,
    /// Our RTCP CNAME (RFC 3550 §6.5.1): stable for the process.
    cname: Vec<u8>,
}

impl Worker {
    fn new(
        index: usize,
        poll: Poll,
        commands: mpsc::Receiver<Control>,
        config: WorkerConfig,
        events: UnboundedSender<MediaEvent>,
        recorder: Option<RecorderHandle>,
    ) -> Result<Worker, MediaRuntimeError> {
        let pacer = Pacer::new(Instant::now(), FRAME)?;
        Ok(Worker {
            index,
            poll,
            commands,
            config: config.clone(),
            events,
            recorder,
            slots: Vec::new(),
            free: Vec::new(),
            by_session: HashMap::new(),
            logged: *pacer.stats(),
            window_max: Duration::ZERO,
            tick_max: Duration::ZERO,
            wake_pending: false,
            mid_events: Some(Events::with_capacity(SERVE_AT_MOST)),
            pacer,
            counters: Counters::default(),
            next_recording: 0,
            buf: vec![0u8; MAX_DATAGRAM],
            cname: format!("switchboard@{}", config.address).into_bytes(),
        })
    }

    fn run(mut self) {
        crate::os::media_thread(self.config.realtime);
        let mut events = Events::with_capacity(1024);
        let mut next_stats = Instant::now() + STATS_EVERY;
        let mut next_dead_check = Instant::now();
        loop {
            let now = Instant::now();
            let deadline = self.pacer.poll_timeout().min(next_dead_check);
            // epoll counts in whole milliseconds (rounded up): wait for the
            // whole ones, then sleep the rest precisely, so that the media
            // clock is not a millisecond late at every tick.
            let wait = deadline.saturating_duration_since(now);
            let coarse = Duration::from_millis(wait.as_millis() as u64);
            if let Err(e) = self.poll.poll(&mut events, Some(coarse)) {
                if e.kind() != ErrorKind::Interrupted {
                    warn!(worker = self.index, error = %e, "media poll failed");
                    // A poll that keeps failing must not become a busy
                    // loop: a real-time thread would hold its core.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let mut tick_due = self.pacer.poll_timeout();
            for event in &events {
                if event.token() == WAKER {
                    self.wake_pending = true;
                } else {
                    self.readable(event.token());
                }
                // A busy loop must not hold the clock back: a thousand
                // ready sockets take milliseconds to serve.
                let now = Instant::now();
                if now >= tick_due {
                    self.tick(now);
                    tick_due = self.pacer.poll_timeout();
                }
            }
            if std::mem::take(&mut self.wake_pending) && !self.drain_commands() {
                self.close_all();
                return;
            }
            if events.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if !left.is_zero() && left < Duration::from_millis(1) {
                    std::thread::sleep(left);
                }
            }
            let now = Instant::now();
            if now >= self.pacer.poll_timeout() {
                self.tick(now);
            }
            if now >= next_dead_check {
                self.check_dead(now);
                self.send_reports(now);
                next_dead_check = now + Duration::from_millis(200);
            }
            if now >= next_stats {
                self.log_stats();
                next_stats = now + STATS_EVERY;
            }
        }
    }

    /// Returns false on shutdown.
    fn drain_commands(&mut self) -> bool {
        while let Ok(control) = self.commands.try_recv() {
            match control {
                Control::Command(c) => self.command(c),
                Control::Shutdown => return false,
            }
        }
        true
    }

    fn command(&mut self, command: MediaCommand) {
        let now = Instant::now();
        match command {
            MediaCommand::OpenLeg {
                session,
                leg,
                ports,
                setup,
                feed,
            } => self.open_leg(now, session, leg, ports, setup, feed),
            MediaCommand::UpdateLeg {
                session,
                leg,
                setup,
            } => {
                if let Some(slot) = self.slot_mut(session) {
                    if let Err(e) = slot.session.update(now, leg, setup) {
                        warn!(%session, error = %e, "media update refused");
                    }
                }
            }
            MediaCommand::SetFeed { session, leg, feed } => {
                if let Some(slot) = self.slot_mut(session) {
                    if let Err(e) = slot.session.set_feed(leg, feed) {
                        warn!(%session, error = %e, "feed not set");
                    }
                }
            }
            MediaCommand::SendDigit {
                session,
                leg,
                digit,
                duration,
            } => {
                if let Some(slot) = self.slot_mut(session) {
                    slot.session.send_digit(now, leg, digit, duration);
                }
            }
            MediaCommand::StartRecording {
                session,
                path,
                meta,
            } => self.start_recording(session, path, meta),
            MediaCommand::PauseRecording { session, paused } => {
                let frame = self.pacer_frame();
                if let Some(rec) = self.slot_mut(session).and_then(|s| s.recording.as_mut()) {
                    if paused {
                        rec.pause(frame);
                    } else {
                        rec.resume(frame);
                    }
                }
            }
            MediaCommand::CloseLeg { session, leg } => self.close_leg(now, session, leg),
        }
    }

    fn pacer_frame(&self) -> FrameIndex {
        // The frame the next tick will write.
        FrameIndex(self.pacer.stats().frames + self.pacer.stats().skipped)
    }

    fn slot_mut(&mut self, session: SessionId) -> Option<&mut Slot> {
        let i = *self.by_session.get(&session)?;
        self.slots.get_mut(i)?.as_mut()
    }

    fn bind(&self, port: u16) -> std::io::Result<UdpSocket> {
        let addr = SocketAddr::new(self.config.address, port);
        let domain = socket2::Domain::for_address(addr);
        let socket =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        // Larger buffers are a wish; the system may cap them.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        Ok(UdpSocket::from_std(socket.into()))
    }

    fn open_sockets(
        &mut self,
        slot: usize,
        leg: LegId,
        ports: PortPair,
    ) -> std::io::Result<LegSockets> {
        let mut rtp = self.bind(ports.rtp())?;
        let mut rtcp = self.bind(ports.rtcp())?;
        let registry = self.poll.registry();
        registry.register(&mut rtp, token(slot, leg, false), Interest::READABLE)?;
        registry.register(&mut rtcp, token(slot, leg, true), Interest::READABLE)?;
        Ok(LegSockets {
            rtp,
            rtcp,
            ports,
            sent: 0,
            // §6.2: the first report after half an interval.
            next_report: Instant::now() + report_interval(),
        })
    }

    fn open_leg(
        &mut self,
        now: Instant,
        session: SessionId,
        leg: LegId,
        ports: PortPair,
        setup: crate::media::session::LegSetup,
        feed: crate::media::session::Feed,
    ) {
        let index = match self.by_session.get(&session) {
            Some(&i) => i,
            None => match self.free.pop() {
                Some(i) => i,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            },
        };
        let sockets = match self.open_sockets(index, leg, ports) {
            Ok(s) => s,
            Err(e) => {
                if !self.by_session.contains_key(&session) {
                    self.free.push(index);
                }
                let _ = self.events.send(MediaEvent::OpenFailed {
                    session,
                    leg,
                    ports,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let result = match self.slots.get_mut(index).and_then(Option::as_mut) {
            Some(slot) => slot
                .session
                .attach(now, leg, setup)
                .and_then(|()| slot.session.set_feed(leg, feed))
                .map(|()| {
                    slot.sockets[leg_index(leg)] = Some(sockets);
                }),
            None => Session::with_leg(now, session, self.config.session.clone(), leg, setup)
                .and_then(|mut s| s.set_feed(leg, feed).map(|()| s))
                .map(|s| {
                    let mut slot = Slot {
                        session: s,
                        sockets: [None, None],
                        recording: None,
                    };
                    slot.sockets[leg_index(leg)] = Some(sockets);
                    if let Some(place) = self.slots.get_mut(index) {
                        *place = Some(slot);
                    }
                    self.by_session.insert(session, index);
                }),
        };
        if let Err(e) = result {
            let _ = self.events.send(MediaEvent::OpenFailed {
                session,
                leg,
                ports,
                reason: e.to_string(),
            });
        }
    }

    fn start_recording(
        &mut self,
        session: SessionId,
        path: std::path::PathBuf,
        meta: crate::media::record::RecordingMeta,
    ) {
        let Some(recorder) = self.recorder.clone() else {
            warn!(%session, "recording asked for but no recorder runs");
            return;
        };
        // Ids unique across workers: worker index in the low bits.
        self.next_recording += 1;
        let id = RecordingId(self.next_recording * 64 + self.index as u64);
        let frame = self.pacer_frame();
        let Some(slot) = self.slot_mut(session) else {
            return;
        };
        if let Err(e) = recorder.start(id, path, meta) {
            warn!(%session, error = %e, "recording not started");
            return;
        }
        if let Err(e) = slot.session.set_recording(true) {
            warn!(%session, error = %e, "recording taps not started");
        }
        slot.recording = Some(Recording::new(id, frame));
    }

    fn close_leg(&mut self, now: Instant, session: SessionId, leg: LegId) {
        let Some(&index) = self.by_session.get(&session) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let report = LegReport {
            stats: slot.session.stats(leg),
            packets_received: slot.session.counters(leg).accepted,
            packets_sent: slot.sockets[leg_index(leg)].as_ref().map_or(0, |s| s.sent),
        };
        slot.session.detach(now, leg);
        if let Some(mut sockets) = slot.sockets[leg_index(leg)].take() {
            let registry = self.poll.registry();
            let _ = registry.deregister(&mut sockets.rtp);
            let _ = registry.deregister(&mut sockets.rtcp);
            let _ = self.events.send(MediaEvent::LegClosed {
                session,
                leg,
                ports: sockets.ports,
                report,
            });
        }
        if slot.session.is_empty() {
            if let (Some(rec), Some(recorder)) = (slot.recording.take(), self.recorder.as_ref()) {
                if let Err(e) = recorder.finish(rec.id(), rec.summary()) {
                    warn!(%session, error = %e, "recording not finished");
                }
            }
            self.slots[index] = None;
            self.by_session.remove(&session);
            self.free.push(index);
        }
    }

    fn close_all(&mut self) {
        let now = Instant::now();
        let sessions: Vec<SessionId> = self.by_session.keys().copied().collect();
        for s in sessions {
            for leg in LEGS {
                self.close_leg(now, s, leg);
            }
        }
    }

    fn readable(&mut self, token: Token) {
        let (index, leg, rtcp) = from_token(token);
        loop {
            let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            let Some(sockets) = slot.sockets[leg_index(leg)].as_ref() else {
                return;
            };
            let socket = if rtcp { &sockets.rtcp } else { &sockets.rtp };
            let (len, from) = match socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    // ICMP port unreachable from an earlier send, on Linux.
                    debug!(error = %e, "rtp receive error");
                    continue;
                }
            };
            self.counters.packets_in += 1;
            let now = Instant::now();
            if rtcp {
                let ntp = ntp_timestamp(SystemTime::now());
                if !slot.session.on_rtcp(now, ntp, leg, from, &self.buf[..len]) {
                    self.counters.bad_rtcp += 1;
                }
                continue;
            }
            let packet = &mut self.buf[..len];
            if let Some(fwd) = slot.session.on_rtp(now, leg, from, packet) {
                if let Some(out) = slot.sockets[leg_index(fwd.leg)].as_mut() {
                    out.send(packet, fwd.to, &mut self.counters);
                }
            }
            Self::drain_session(slot, &self.events, &mut self.counters);
        }
    }

    /// Sends what a session generated and passes its events on.
    fn drain_session(
        slot: &mut Slot,
        events: &UnboundedSender<MediaEvent>,
        counters: &mut Counters,
    ) {
        while let Some(t) = slot.session.poll_transmit() {
            if let Some(out) = slot.sockets[leg_index(t.leg)].as_mut() {
                out.send(&t.data, t.to, counters);
            }
        }
        let session = slot.session.id();
        while let Some(event) = slot.session.poll_event() {
            let event = match event {
                SessionEvent::Digit {
                    leg,
                    digit,
                    duration_ms,
                } => MediaEvent::Digit {
                    session,
                    leg,
                    digit,
                    duration_ms,
                },
                SessionEvent::Dead { leg } => MediaEvent::Dead { session, leg },
                SessionEvent::PlaybackDone { leg } => MediaEvent::PlaybackDone { session, leg },
            };
            let _ = events.send(event);
        }
    }

    fn tick(&mut self, now: Instant) {
        let tick = self.pacer.on_tick(now);
        self.window_max = self.window_max.max(tick.late_by);
        let mut batch: Vec<Chunk> = Vec::new();
        for n in 0..u64::from(tick.frames) {
            let frame = FrameIndex(tick.first_frame.0 + n);
            // Sessions that send on the clock (prompts, transcoding, DTMF)
            // first, all together: their packets leave on time. Then those
            // that only record, with looks at the sockets in between.
            for urgent in [true, false] {
                let mut ticked = 0usize;
                for i in 0..self.slots.len() {
                    let Some(slot) = self.slots[i].as_mut() else {
                        continue;
                    };
                    if !slot.session.needs_tick() || slot.session.sends_on_tick() != urgent {
                        continue;
                    }
                    let audio = slot.session.on_tick(now, frame);
                    if let (Some(rec), Some(audio)) = (slot.recording.as_mut(), audio) {
                        rec.tick(
                            frame,
                            audio.left.as_ref().map(|f| &f[..]),
                            audio.right.as_ref().map(|f| &f[..]),
                            &mut batch,
                        );
                    }
                    Self::drain_session(slot, &self.events, &mut self.counters);
                    ticked += 1;
                    if !urgent && ticked % SERVE_EVERY == 0 {
                        self.serve_ready();
                    }
                }
            }
        }
        if let Some(recorder) = self.recorder.as_ref() {
            // A full queue is counted by the recorder and padded later.
            let _ = recorder.write(batch);
        }
        self.tick_max = self.tick_max.max(now.elapsed());
    }

    /// Serves the sockets that became ready, in the middle of a long tick:
    /// a thousand recorded calls take milliseconds to tick, and relayed
    /// packets must not wait for all of them.
    fn serve_ready(&mut self) {
        let Some(mut events) = self.mid_events.take() else {
            return;
        };
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() {
            for event in &events {
                if event.token() == WAKER {
                    // Commands wait for the end of the tick: they may
                    // open or close the sessions being ticked.
                    self.wake_pending = true;
                } else {
                    self.readable(event.token());
                }
            }
        }
        self.mid_events = Some(events);
    }

    fn check_dead(&mut self, now: Instant) {
        for slot in self.slots.iter_mut().flatten() {
            if slot.session.poll_timeout().is_some_and(|t| t <= now) {
                slot.session.handle_timeout(now);
                Self::drain_session(slot, &self.events, &mut self.counters);
            }
        }
    }

    /// Sends the RTCP reports that are due (checked with the dead legs,
    /// five times a second: report times need no better precision).
    fn send_reports(&mut self, now: Instant) {
        let ntp = ntp_timestamp(SystemTime::now());
        for slot in self.slots.iter_mut().flatten() {
            for leg in LEGS {
                let Some(sockets) = slot.sockets[leg_index(leg)].as_mut() else {
                    continue;
                };
                if now < sockets.next_report {
                    continue;
                }
                sockets.next_report = now + report_interval();
                if let Some((data, to)) = slot.session.rtcp_report(now, ntp, leg, &self.cname) {
                    if sockets.rtcp.send_to(&data, to).is_err() {
                        self.counters.send_errors += 1;
                    }
                }
            }
        }
    }

    fn log_stats(&mut self) {
        let total = *self.pacer.stats();
        let mut window = PacerStats {
            ticks: total.ticks - self.logged.ticks,
            skipped: total.skipped - self.logged.skipped,
            max_late: self.window_max,
            ..PacerStats::default()
        };
        for (w, (t, l)) in window.lateness_hist.iter_mut().zip(
            total
                .lateness_hist
                .iter()
                .zip(self.logged.lateness_hist.iter()),
        ) {
            *w = t - l;
        }
        info!(
            worker = self.index,
            sessions = self.by_session.len(),
            packets_in = self.counters.packets_in,
            packets_out = self.counters.packets_out,
            send_errors = self.counters.send_errors,
            bad_rtcp = self.counters.bad_rtcp,
            skipped_frames = window.skipped,
            late_p99_us = u64::try_from(window.p99_late().as_micros()).unwrap_or(u64::MAX),
            late_max_us = u64::try_from(window.max_late.as_micros()).unwrap_or(u64::MAX),
            tick_max_us = u64::try_from(self.tick_max.as_micros()).unwrap_or(u64::MAX),
            late_hist = %window.lateness_hist_text(),
            "media worker stats"
        );
        self.logged = total;
        self.window_max = Duration::ZERO;
        self.tick_max = Duration::ZERO;
    }
}
