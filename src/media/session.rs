//! One call's media, sans-IO: up to two legs (the caller and whoever it is
//! bridged to), what each leg hears, the DTMF each leg sends, and the audio
//! taps that recording and transcoding read.
//!
//! A session is driven by its media worker:
//! - [`Session::on_rtp`] for every datagram on a leg's RTP socket. The
//!   fast path (both legs bridged with the same codec, or an echo) rewrites
//!   the packet in place and says where to send it: no decode, no copy, no
//!   allocation. The packet also feeds the leg's DTMF receiver and, when
//!   something needs the audio, the leg's jitter buffer.
//! - [`Session::on_tick`] once per 20 ms frame of the worker's pacer, for
//!   sessions that [`Session::needs_tick`]: it plays prompts, transcodes,
//!   sends scheduled DTMF, and returns the frame pair a recording writes.
//! - `poll_transmit` / `poll_event` drain what it produced;
//!   `poll_timeout` / `handle_timeout` watch for dead legs.
//!
//! The media bus is 8 kHz mono, 20 ms frames ([`crate::media::player`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::media::codec::{AudioCodecError, AudioDecoder, AudioEncoder};
use crate::media::dtmf::{ClockRate, DtmfReceiver, DtmfSender};
use crate::media::jitter::{JitterBuffer, JitterConfig, JitterConfigError, Playout};
use crate::media::pacer::FrameIndex;
use crate::media::player::{Player, BUS_RATE, FRAME_SAMPLES};
use crate::media::relay::{
    Direction, Forward, LegConfig, LegCounters, LegId, Relay, RelayConfig, RelayConfigError,
    RelayEvent,
};
use crate::media::rtp::{MosCodec, RtpHeader, Ssrc, StatsSummary};
use crate::media::sdp::{self, Codec};

/// Identifies a session in its worker; chosen by the signalling side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the signalling side negotiated for one leg, plus the random
/// numbers of our outgoing stream (RFC 3550 §5.1, §8.1; drawn by the
/// caller: the core owns no randomness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSetup {
    pub codec: Codec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// From the SDP; `None` for a hold address (0.0.0.0) or none at all.
    pub remote: Option<SocketAddr>,
    /// The direction in our SDP towards the leg.
    pub direction: sdp::Direction,
    pub our_ssrc: Ssrc,
    pub initial_seq: u16,
    pub initial_ts: u32,
}

/// Settings shared by every session of a worker.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Silence from a sending leg this long reports it dead.
    pub dead_after: Duration,
    /// Jitter buffer of the audio taps (recording, transcoding).
    pub jitter: JitterConfig,
}

/// What a leg hears.
#[derive(Debug, Clone)]
pub enum Feed {
    Silence,
    /// Its own audio, straight back (the echo test).
    Echo,
    /// The other leg: relayed when both use the same codec, else
    /// transcoded through the bus.
    Other,
    /// Prompts, music, tones.
    Play(Player),
}

/// How a digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    Rfc4733,
    Info,
}

impl DigitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::Info => "info",
        }
    }
}

/// Something the call logic should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Digit {
        leg: LegId,
        digit: char,
        duration_ms: u32,
    },
    /// The leg has sent nothing for the configured time.
    Dead { leg: LegId },
    /// A non-looping playlist ended.
    PlaybackDone { leg: LegId },
}

/// A packet the session generated (playback, transcoding, DTMF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub leg: LegId,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// One frame of each side, for the recording: `None` is a gap.
#[derive(Debug, Clone, Copy)]
pub struct TickAudio {
    pub left: Option<[i16; FRAME_SAMPLES]>,
    pub right: Option<[i16; FRAME_SAMPLES]>,
}

/// Why a session or leg could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("leg payload types: {0}")]
    Relay(#[from] RelayConfigError),
    #[error("codec: {0}")]
    Codec(#[from] AudioCodecError),
    #[error("jitter buffer: {0}")]
    Jitter(#[from] JitterConfigError),
    #[error("the {0:?} leg is not set up")]
    NoLeg(LegId),
}

/// Longest event we accept from a caller (a stuck key is cut here).
const MAX_DIGIT: Duration = Duration::from_secs(5);

/// A leg's received audio, decoded for whoever reads the bus.
struct Tap {
    jitter: JitterBuffer<Vec<u8>>,
    decoder: AudioDecoder,
    /// Decoded bus samples not yet consumed (a packet may hold more or
    /// less than one frame).
    pcm: Vec<i16>,
    /// Samples one packet holds, for concealment.
    packet_samples: usize,
}

impl Tap {
    fn new(setup: &LegSetup, jitter: &JitterConfig) -> Result<Tap, SessionError> {
        let cfg = JitterConfig {
            clock_rate: setup.codec.clock_rate(),
            ..jitter.clone()
        };
        Ok(Tap {
            jitter: JitterBuffer::new(cfg)?,
            decoder: AudioDecoder::new(setup.codec, BUS_RATE)?,
            pcm: Vec::with_capacity(2 * FRAME_SAMPLES),
            packet_samples: FRAME_SAMPLES,
        })
    }

    /// The next bus frame: decoded in order from the jitter buffer, loss
    /// concealed by the codec; `None` when the leg is not sending.
    fn pull(&mut self, now: Instant) -> Option<[i16; FRAME_SAMPLES]> {
        while self.pcm.len() < FRAME_SAMPLES {
            let before = self.pcm.len();
            match self.jitter.pop(now) {
                Playout::Frame(payload) => {
                    if self.decoder.decode(&payload, &mut self.pcm).is_err() {
                        // A corrupt payload is a lost one.
                        self.decoder.conceal(self.packet_samples, &mut self.pcm);
                    } else {
                        self.packet_samples = (self.pcm.len() - before).max(1);
                    }
                }
                Playout::Missing => self.decoder.conceal(self.packet_samples, &mut self.pcm),
                Playout::Empty => break,
            }
            if self.pcm.len() == before {
                break;
            }
        }
        if self.pcm.len() < FRAME_SAMPLES {
            self.pcm.clear();
            return None;
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        frame.copy_from_slice(&self.pcm[..FRAME_SAMPLES]);
        self.pcm.drain(..FRAME_SAMPLES);
        Some(frame)
    }
}

/// Packets we originate towards a leg carry their own SSRC, sequence and
/// timestamp; the relay's rewriter splices them into the leg's stream.
struct Generator {
    encoder: AudioEncoder,
    ssrc: Ssrc,
    seq: u16,
    ts: u32,
    /// Scheduled DTMF packets: (when, packet bytes).
    dtmf: VecDeque<(Instant, Vec<u8>)>,
    buf: Vec<u8>,
}

impl Generator {
    fn new(setup: &LegSetup) -> Result<Generator, SessionError> {
        Ok(Generator {
            encoder: AudioEncoder::new(setup.codec, BUS_RATE)?,
            // Any value other than what the leg itself uses will do: the
            // rewriter only needs to see a change of source.
            ssrc: Ssrc(setup.our_ssrc.0 ^ 0x5eed_5eed),
            seq: setup.initial_seq,
            ts: setup.initial_ts,
            dtmf: VecDeque::new(),
            buf: Vec::with_capacity(256),
        })
    }

    /// An RTP packet of one encoded bus frame.
    fn audio(&mut self, pt: u8, pcm: &[i16]) -> Option<Vec<u8>> {
        let header = RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.encoder.frame_ticks());
        self.buf.clear();
        if self.encoder.encode(pcm, &mut self.buf).is_err() {
            return None;
        }
        let mut packet = vec![0u8; 12 + self.buf.len()];
        let n = header.write_header(&mut packet).ok()?;
        packet[n..].copy_from_slice(&self.buf);
        Some(packet)
    }
}

struct LegMedia {
    setup: LegSetup,
    feed: Feed,
    dtmf_rx: Option<DtmfReceiver>,
    tap: Option<Tap>,
    generator: Generator,
}

impl LegMedia {
    fn new(setup: LegSetup) -> Result<LegMedia, SessionError> {
        let dtmf_rx = setup
            .dtmf_payload_type
            .and_then(|_| ClockRate::new(setup.codec.clock_rate()).ok())
            .map(DtmfReceiver::new);
        Ok(LegMedia {
            generator: Generator::new(&setup)?,
            setup,
            feed: Feed::Silence,
            dtmf_rx,
            tap: None,
        })
    }
}

/// See the module documentation.
pub struct Session {
    id: SessionId,
    config: SessionConfig,
    relay: Relay,
    legs: [Option<LegMedia>; 2],
    /// Whether the recording taps run.
    recording: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
}

fn index(leg: LegId) -> usize {
    match leg {
        LegId::Caller => 0,
        LegId::Agent => 1,
    }
}

fn relay_direction(d: sdp::Direction) -> Direction {
    match d {
        sdp::Direction::SendRecv => Direction::SendRecv,
        sdp::Direction::SendOnly => Direction::SendOnly,
        sdp::Direction::RecvOnly => Direction::RecvOnly,
        sdp::Direction::Inactive => Direction::Inactive,
    }
}

fn leg_config(setup: &LegSetup) -> LegConfig {
    LegConfig {
        expected_remote: setup.remote,
        our_ssrc: setup.our_ssrc,
        initial_seq: setup.initial_seq,
        initial_ts: setup.initial_ts,
        payload_type_out: setup.payload_type,
        telephone_event_pt: setup.dtmf_payload_type,
        clock_rate: setup.codec.clock_rate(),
        codec: match setup.codec {
            Codec::Pcmu | Codec::Pcma => MosCodec::G711,
            Codec::Opus => MosCodec::Opus,
        },
    }
}

impl Session {
    /// A session with its caller leg, hearing silence.
    pub fn new(
        now: Instant,
        id: SessionId,
        config: SessionConfig,
        caller: LegSetup,
    ) -> Result<Session, SessionError> {
        let relay = Relay::single(
            now,
            RelayConfig::new(config.dead_after),
            leg_config(&caller),
        )?;
        let mut session = Session {
            id,
            config,
            relay,
            legs: [Some(LegMedia::new(caller.clone())?), None],
            recording: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        session
            .relay
            .set_direction(now, LegId::Caller, relay_direction(caller.direction));
        Ok(session)
    }

    /// A session whose first leg is `leg`: an agent's phone called before
    /// the customer (click-to-call) starts the session on the agent's
    /// side, and the caller's position waits, inactive, for its leg.
    pub fn with_leg(
        now: Instant,
        id: SessionId,
        config: SessionConfig,
        leg: LegId,
        setup: LegSetup,
    ) -> Result<Session, SessionError> {
        let mut session = Session::new(now, id, config, setup.clone())?;
        if leg == LegId::Agent {
            session.attach(now, LegId::Agent, setup)?;
            session.detach(now, LegId::Caller);
        }
        Ok(session)
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Brings in (or replaces) a leg.
    pub fn attach(
        &mut self,
        now: Instant,
        leg: LegId,
        setup: LegSetup,
    ) -> Result<(), SessionError> {
        self.relay.attach(now, leg, leg_config(&setup))?;
        self.relay
            .set_direction(now, leg, relay_direction(setup.direction));
        self.legs[index(leg)] = Some(LegMedia::new(setup)?);
        self.refresh_taps()
    }

    /// A leg hung up: nothing is sent to it any more, and what hears it
    /// hears silence.
    pub fn detach(&mut self, now: Instant, leg: LegId) {
        self.legs[index(leg)] = None;
        self.relay.set_direction(now, leg, Direction::Inactive);
        self.relay.set_expected_remote(leg, None);
    }

    pub fn has_leg(&self, leg: LegId) -> bool {
        self.legs[index(leg)].is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.iter().all(Option::is_none)
    }

    /// A re-INVITE changed the leg's direction or address (hold, resume,
    /// a phone that moved). A codec change rebuilds the leg's coders.
    pub fn update(
        &mut self,
        now: Instant,
        leg: LegId,
        setup: LegSetup,
    ) -> Result<(), SessionError> {
        let Some(media) = self.legs[index(leg)].as_mut() else {
            return Err(SessionError::NoLeg(leg));
        };
        if media.setup.codec != setup.codec || media.setup.payload_type != setup.payload_type {
            let feed = media.feed.clone();
            self.attach(now, leg, setup)?;
            return self.set_feed(leg, feed);
        }
        self.relay.set_expected_remote(leg, setup.remote);
        self.relay
            .set_direction(now, leg, relay_direction(setup.direction));
        media.setup = setup;
        Ok(())
    }

    /// Chooses what `leg` hears from now on.
    pub fn set_feed(&mut self, leg: LegId, feed: Feed) -> Result<(), SessionError> {
        let Some(media) = self.legs[index(leg)].as_mut() else {
            return Err(SessionError::NoLeg(leg));
        };
        // The relay's rewriter sees the new feed by its SSRC and starts a
        // new talkspurt in the leg's stream (RFC 3550 §5.1).
        media.feed = feed;
        self.refresh_taps()
    }

    /// Starts or stops the recording taps.
    pub fn set_recording(&mut self, on: bool) -> Result<(), SessionError> {
        self.recording = on;
        self.refresh_taps()
    }

    /// The legs whose audio someone reads get a tap; others keep the pure
    /// relay path.
    fn refresh_taps(&mut self) -> Result<(), SessionError> {
        for leg in [LegId::Caller, LegId::Agent] {
            let needed = self.recording || self.transcodes_into(leg.other());
            let jitter = self.config.jitter.clone();
            if let Some(media) = self.legs[index(leg)].as_mut() {
                if needed && media.tap.is_none() {
                    media.tap = Some(Tap::new(&media.setup, &jitter)?);
                } else if !needed {
                    media.tap = None;
                }
            }
        }
        Ok(())
    }

    /// Whether `leg` hears the other leg through the bus (codecs differ).
    fn transcodes_into(&self, leg: LegId) -> bool {
        let (Some(to), Some(from)) = (&self.legs[index(leg)], &self.legs[index(leg.other())])
        else {
            return false;
        };
        matches!(to.feed, Feed::Other) && to.setup.codec != from.setup.codec
    }

    /// Whether [`Self::on_tick`] has work: playback, transcoding, DTMF to
    /// send or recording.
    pub fn needs_tick(&self) -> bool {
        self.recording
            || self.legs.iter().flatten().any(|m| {
                matches!(m.feed, Feed::Play(_)) || !m.generator.dtmf.is_empty() || m.tap.is_some()
            })
    }

    /// Whether the tick sends packets (prompts, transcoding, DTMF): such
    /// sessions are ticked first, as one batch, so their packets keep time.
    pub fn sends_on_tick(&self) -> bool {
        [LegId::Caller, LegId::Agent].into_iter().any(|leg| {
            self.transcodes_into(leg)
                || self.legs[index(leg)].as_ref().is_some_and(|m| {
                    matches!(m.feed, Feed::Play(_)) || !m.generator.dtmf.is_empty()
                })
        })
    }

    /// One datagram on `leg`'s RTP socket. On `Some`, the packet has been
    /// rewritten in place and goes to the returned leg and address.
    pub fn on_rtp(
        &mut self,
        now: Instant,
        leg: LegId,
        from: SocketAddr,
        packet: &mut [u8],
    ) -> Option<Forward> {
        let media = self.legs[index(leg)].as_mut()?;
        let accepted = self.relay.accept(now, leg, from, packet)?;
        let payload = packet.get(accepted.payload.clone())?;
        let (seq, ts) = (accepted.sequence, accepted.timestamp);
        let mut digits = Vec::new();
        if accepted.is_event {
            if let Some(rx) = media.dtmf_rx.as_mut() {
                digits = rx.feed(seq, ts, payload).unwrap_or_default();
            }
        } else if let Some(tap) = media.tap.as_mut() {
            tap.jitter.push(now, seq, ts, payload.to_vec());
        }
        let echo = matches!(media.feed, Feed::Echo) && self.relay.direction(leg).receives();
        for d in digits {
            self.events.push_back(SessionEvent::Digit {
                leg,
                digit: d.digit,
                duration_ms: d.duration_ms,
            });
            self.relay_digit(now, leg.other(), d.digit, d.duration_ms);
        }
        if echo {
            if accepted.is_event {
                return None;
            }
            let to = self.relay.inject(now, leg, packet).ok().flatten()?;
            return Some(Forward { leg, to });
        }
        let other = leg.other();
        let other_hears_us = self.legs[index(other)]
            .as_ref()
            .is_some_and(|m| matches!(m.feed, Feed::Other));
        if !other_hears_us || self.transcodes_into(other) {
            // Transcoded audio leaves on the tick; events were turned into
            // digits above and are re-sent at the other leg's clock rate.
            return None;
        }
        self.relay.forward(now, leg, &accepted, packet)
    }

    /// Re-sends a digit received on one leg to `to` when the two legs do
    /// not share a clock rate (RFC 4733 events cannot be relayed as they
    /// are: their timestamps and durations count in the sender's clock).
    fn relay_digit(&mut self, now: Instant, to: LegId, digit: char, duration_ms: u32) {
        if !self.transcodes_into(to) {
            return;
        }
        let duration = Duration::from_millis(u64::from(duration_ms)).min(MAX_DIGIT);
        // Digits already reached the call logic; sending is best effort.
        let _ = self.send_digit(now, to, digit, duration);
    }

    /// Sends a digit to `leg` as RFC 4733 events (from an INFO, or from a
    /// leg at another clock rate). `false` when the leg has no
    /// telephone-event or the digit is not a DTMF key.
    pub fn send_digit(
        &mut self,
        now: Instant,
        leg: LegId,
        digit: char,
        duration: Duration,
    ) -> bool {
        let Some(media) = self.legs[index(leg)].as_mut() else {
            return false;
        };
        let (Some(pt), Ok(clock)) = (
            media.setup.dtmf_payload_type,
            ClockRate::new(media.setup.codec.clock_rate()),
        ) else {
            return false;
        };
        let gen = &mut media.generator;
        let Ok(packets) = DtmfSender::new(clock).packets(digit, duration, gen.ts) else {
            return false;
        };
        for p in packets {
            let Ok(payload) = p.event.serialize() else {
                continue;
            };
            let header = RtpHeader {
                marker: p.marker,
                payload_type: pt,
                sequence: gen.seq,
                timestamp: p.timestamp,
                ssrc: gen.ssrc,
            };
            gen.seq = gen.seq.wrapping_add(1);
            let mut data = vec![0u8; 12 + payload.len()];
            if header.write_header(&mut data).is_ok() {
                data[12..].copy_from_slice(&payload);
                gen.dtmf.push_back((now + p.send_offset, data));
            }
        }
        // The audio after the event continues past it.
        gen.ts = gen
            .ts
            .wrapping_add(clock.units(duration).try_into().unwrap_or(u32::MAX));
        true
    }

    /// One 20 ms frame of the worker's clock. Returns the frame pair to
    /// record when recording.
    pub fn on_tick(&mut self, now: Instant, _frame: FrameIndex) -> Option<TickAudio> {
        let mut heard: [Option<[i16; FRAME_SAMPLES]>; 2] = [None, None];
        for leg in [LegId::Caller, LegId::Agent] {
            if let Some(tap) = self.legs[index(leg)].as_mut().and_then(|m| m.tap.as_mut()) {
                heard[index(leg)] = tap.pull(now);
            }
        }
        let mut played_to_caller = None;
        for leg in [LegId::Caller, LegId::Agent] {
            let transcode = self.transcodes_into(leg);
            // RFC 3264 §5.1: nothing goes to a leg that holds us (it said
            // sendonly or inactive); its playlist moves on regardless.
            let listens = self.relay.direction(leg).receives();
            let Some(media) = self.legs[index(leg)].as_mut() else {
                continue;
            };
            let pt = media.setup.payload_type;
            let pcm = match &mut media.feed {
                Feed::Play(player) => {
                    let mut frame = [0i16; FRAME_SAMPLES];
                    if player.next_frame(&mut frame) {
                        Some(frame)
                    } else {
                        self.events.push_back(SessionEvent::PlaybackDone { leg });
                        media.feed = Feed::Silence;
                        None
                    }
                }
                Feed::Other if transcode => heard[index(leg.other())],
                _ => None,
            };
            if leg == LegId::Caller {
                played_to_caller = pcm;
            }
            let mut packets: Vec<Vec<u8>> = Vec::new();
            while media
                .generator
                .dtmf
                .front()
                .is_some_and(|(due, _)| *due <= now)
            {
                if let Some((_, p)) = media.generator.dtmf.pop_front() {
                    packets.push(p);
                }
            }
            if let (Some(pcm), true) = (pcm, listens) {
                if let Some(p) = media.generator.audio(pt, &pcm) {
                    packets.push(p);
                }
            }
            for mut p in packets {
                let event_pt = media.setup.dtmf_payload_type;
                let is_event = event_pt.is_some() && p.get(1).map(|b| b & 0x7f) == event_pt;
                if let Ok(Some(to)) = self.relay.inject(now, leg, &mut p) {
                    if is_event {
                        // `inject` stamps the audio payload type.
                        if let Some(pt) = event_pt {
                            p[1] = (p[1] & 0x80) | pt;
                        }
                    }
                    self.transmits.push_back(Transmit { leg, to, data: p });
                }
            }
        }
        if !self.recording {
            return None;
        }
        let right = if self.legs[1].is_some() {
            heard[1]
        } else {
            played_to_caller.or(match self.legs[0].as_ref().map(|m| &m.feed) {
                Some(Feed::Echo) => heard[0],
                _ => None,
            })
        };
        Some(TickAudio {
            left: heard[0],
            right,
        })
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.relay.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(RelayEvent::Dead { leg }) = self.relay.handle_timeout(now) {
            if self.has_leg(leg) {
                self.events.push_back(SessionEvent::Dead { leg });
            }
        }
    }

    /// An RTCP datagram from `leg`; see [`Relay::on_rtcp`].
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        ntp_now: u64,
        leg: LegId,
        from: SocketAddr,
        packet: &[u8],
    ) -> bool {
        self.has_leg(leg) && self.relay.on_rtcp(now, ntp_now, leg, from, packet)
    }

    /// Our periodic RTCP report to `leg`; see [`Relay::rtcp_report`]. The
    /// SDP's RTCP address is the RTP port + 1 (RFC 3550 §11) unless the
    /// leg's RTCP has been seen.
    pub fn rtcp_report(
        &mut self,
        now: Instant,
        ntp_now: u64,
        leg: LegId,
        cname: &[u8],
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let setup = &self.legs[index(leg)].as_ref()?.setup;
        let sdp_rtcp = setup
            .remote
            .map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1)));
        self.relay.rtcp_report(now, ntp_now, leg, cname, sdp_rtcp)
    }

    /// Receive statistics of what `leg` sent us.
    pub fn stats(&self, leg: LegId) -> StatsSummary {
        self.relay.stats(leg)
    }

    pub fn counters(&self, leg: LegId) -> LegCounters {
        self.relay.counters(leg)
    }

    /// Where `leg`'s media goes (latched, else from its SDP).
    pub fn destination(&self, leg: LegId) -> Option<SocketAddr> {
        self.relay.destination(leg)
    }
}

/// Fuzz body: arbitrary datagrams and RTCP on both legs of a transcoded,
/// recorded session, with ticks in between, must not panic.
pub fn fuzz_session(data: &[u8]) {
    let t0 = Instant::now();
    let leg = |codec, pt, port, ssrc| LegSetup {
        codec,
        payload_type: pt,
        dtmf_payload_type: Some(101),
        remote: Some(([10, 0, 0, 1], port).into()),
        direction: sdp::Direction::SendRecv,
        our_ssrc: Ssrc(ssrc),
        initial_seq: 1,
        initial_ts: 1,
    };
    let config = SessionConfig {
        dead_after: Duration::from_secs(5),
        jitter: JitterConfig::default(),
    };
    let Ok(mut s) = Session::new(t0, SessionId(1), config, leg(Codec::Pcmu, 0, 4000, 7)) else {
        return;
    };
    if s.attach(t0, LegId::Agent, leg(Codec::Opus, 111, 4002, 8))
        .is_err()
        || s.set_feed(LegId::Caller, Feed::Other).is_err()
        || s.set_feed(LegId::Agent, Feed::Other).is_err()
        || s.set_recording(true).is_err()
    {
        return;
    }
    let from: SocketAddr = ([10, 0, 0, 1], 4000).into();
    let mut buf = [0u8; 1500];
    for (i, chunk) in data.chunks(200).enumerate() {
        let now = t0 + Duration::from_millis(10 * i as u64);
        let leg = if i % 2 == 0 {
            LegId::Caller
        } else {
            LegId::Agent
        };
        let packet = &mut buf[..chunk.len()];
        packet.copy_from_slice(chunk);
        let _ = s.on_rtp(now, leg, from, packet);
        let _ = s.on_rtcp(now, 0, leg, from, chunk);
        if i % 2 == 1 {
            let _ = s.on_tick(now, FrameIndex(i as u64 / 2));
        }
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
        s.handle_timeout(now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::media::codec::goertzel::power;
    use crate::media::codec::ToneGenerator;
    use crate::media::dtmf::TelephoneEvent;
    use crate::media::player::{PlayItem, Prompt, FRAME};
    use crate::media::rtp::RtpPacket;

    const CALLER: ([u8; 4], u16) = ([192, 0, 2, 10], 40_000);
    const AGENT: ([u8; 4], u16) = ([192, 0, 2, 20], 42_000);

    fn setup(codec: Codec, pt: u8, remote: ([u8; 4], u16), ssrc: u32) -> LegSetup {
        LegSetup {
            codec,
            payload_type: pt,
            dtmf_payload_type: Some(101),
            remote: Some(remote.into()),
            direction: sdp::Direction::SendRecv,
            our_ssrc: Ssrc(ssrc),
            initial_seq: 100,
            initial_ts: 1000,
        }
    }

    fn config() -> SessionConfig {
        SessionConfig {
            dead_after: Duration::from_secs(5),
            jitter: JitterConfig::default(),
        }
    }

    /// A phone's stream: 20 ms packets of a tone in `codec`.
    struct Phone {
        encoder: AudioEncoder,
        tone: ToneGenerator,
        seq: u16,
        ts: u32,
        pt: u8,
        ssrc: u32,
    }

    impl Phone {
        fn new(codec: Codec, pt: u8, freq: f64, ssrc: u32) -> Phone {
            Phone {
                encoder: AudioEncoder::new(codec, BUS_RATE).unwrap(),
                tone: ToneGenerator::new(freq, 8000, BUS_RATE),
                seq: 1,
                ts: 0,
                pt,
                ssrc,
            }
        }

        fn packet(&mut self) -> Vec<u8> {
            let mut pcm = [0i16; FRAME_SAMPLES];
            self.tone.fill(&mut pcm);
            let mut payload = Vec::new();
            self.encoder.encode(&pcm, &mut payload).unwrap();
            let mut p = vec![0u8; 12 + payload.len()];
            RtpHeader {
                marker: false,
                payload_type: self.pt,
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: Ssrc(self.ssrc),
            }
            .write_header(&mut p)
            .unwrap();
            p[12..].copy_from_slice(&payload);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(self.encoder.frame_ticks());
            p
        }
    }

    fn decode_all(codec: Codec, packets: &[Vec<u8>]) -> Vec<i16> {
        let mut dec = AudioDecoder::new(codec, BUS_RATE).unwrap();
        let mut pcm = Vec::new();
        for p in packets {
            let view = RtpPacket::parse(&p[..]).unwrap();
            dec.decode(view.payload(), &mut pcm).unwrap();
        }
        pcm
    }

    fn dominant(pcm: &[i16], freq: f64, other: f64) -> bool {
        power(pcm, BUS_RATE, freq) > 100.0 * power(pcm, BUS_RATE, other)
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4000)) {
            fuzz_session(&data);
        }
    }

    #[test]
    fn echo_returns_the_packet_to_where_it_came_from() {
        let t0 = Instant::now();
        let mut s =
            Session::new(t0, SessionId(1), config(), setup(Codec::Pcmu, 0, CALLER, 7)).unwrap();
        s.set_feed(LegId::Caller, Feed::Echo).unwrap();
        assert!(!s.needs_tick());
        let nat: SocketAddr = ([203, 0, 113, 5], 61_000).into();
        let mut phone = Phone::new(Codec::Pcmu, 0, 1000.0, 0xabc);
        let mut p = phone.packet();
        let fwd = s.on_rtp(t0, LegId::Caller, nat, &mut p).unwrap();
        assert_eq!((fwd.leg, fwd.to), (LegId::Caller, nat));
        assert_eq!(RtpPacket::parse(&p[..]).unwrap().ssrc(), Ssrc(7));
    }

    #[test]
    fn a_leg_that_holds_us_is_sent_nothing() {
        let t0 = Instant::now();
        let mut held = setup(Codec::Pcmu, 0, CALLER, 7);
        // Our SDP says recvonly: the phone sends (its music), hears nothing.
        held.direction = sdp::Direction::RecvOnly;
        let mut s = Session::new(t0, SessionId(1), config(), held.clone()).unwrap();
        s.set_feed(LegId::Caller, Feed::Echo).unwrap();
        let mut phone = Phone::new(Codec::Pcmu, 0, 1000.0, 0xabc);
        let mut p = phone.packet();
        assert!(s.on_rtp(t0, LegId::Caller, CALLER.into(), &mut p).is_none());
        let prompt = Prompt::from_samples("beep", vec![1000; 1600]);
        s.set_feed(
            LegId::Caller,
            Feed::Play(Player::new(vec![PlayItem::Prompt(prompt)], true)),
        )
        .unwrap();
        s.on_tick(t0, FrameIndex(0));
        assert!(s.poll_transmit().is_none());
        // Resumed (sendrecv again): the prompt is heard.
        held.direction = sdp::Direction::SendRecv;
        s.update(t0, LegId::Caller, held).unwrap();
        s.on_tick(t0 + FRAME, FrameIndex(1));
        assert!(s.poll_transmit().is_some());
    }

    #[test]
    fn a_prompt_is_played_one_packet_per_tick_in_the_legs_codec() {
        let t0 = Instant::now();
        for (codec, pt) in [(Codec::Pcmu, 0), (Codec::Pcma, 8), (Codec::Opus, 111)] {
            let mut s =
                Session::new(t0, SessionId(1), config(), setup(codec, pt, CALLER, 7)).unwrap();
            let mut tone = ToneGenerator::new(1000.0, 8000, BUS_RATE);
            let mut samples = vec![0i16; 8000];
            tone.fill(&mut samples);
            let prompt = Prompt::from_samples("tone", samples);
            s.set_feed(
                LegId::Caller,
                Feed::Play(Player::new(vec![PlayItem::Prompt(prompt)], true)),
            )
            .unwrap();
            assert!(s.needs_tick());
            let mut sent = Vec::new();
            for i in 0..50u64 {
                assert!(s.on_tick(t0 + FRAME * i as u32, FrameIndex(i)).is_none());
                while let Some(t) = s.poll_transmit() {
                    assert_eq!((t.leg, t.to), (LegId::Caller, CALLER.into()));
                    sent.push(t.data);
                }
            }
            assert_eq!(sent.len(), 50, "{codec:?}");
            let first = RtpPacket::parse(&sent[0][..]).unwrap();
            let last = RtpPacket::parse(&sent[49][..]).unwrap();
            assert_eq!(first.payload_type(), pt);
            assert_eq!(last.sequence().wrapping_sub(first.sequence()), 49);
            assert_eq!(
                last.timestamp().wrapping_sub(first.timestamp()),
                49 * codec.clock_rate() / 50
            );
            let pcm = decode_all(codec, &sent);
            assert!(dominant(&pcm[1600..], 1000.0, 1633.0), "{codec:?}");
        }
    }

    #[test]
    fn bridged_legs_with_one_codec_are_relayed_without_the_tick() {
        let t0 = Instant::now();
        let mut s =
            Session::new(t0, SessionId(1), config(), setup(Codec::Pcmu, 0, CALLER, 7)).unwrap();
        s.attach(t0, LegId::Agent, setup(Codec::Pcmu, 0, AGENT, 8))
            .unwrap();
        s.set_feed(LegId::Caller, Feed::Other).unwrap();
        s.set_feed(LegId::Agent, Feed::Other).unwrap();
        assert!(!s.needs_tick(), "nothing reads the audio: pure relay");
        let mut caller = Phone::new(Codec::Pcmu, 0, 697.0, 0xc);
        let mut agent = Phone::new(Codec::Pcmu, 0, 1209.0, 0xa);
        let mut p = caller.packet();
        let fwd = s.on_rtp(t0, LegId::Caller, CALLER.into(), &mut p).unwrap();
        assert_eq!((fwd.leg, fwd.to), (LegId::Agent, AGENT.into()));
        let mut p = agent.packet();
        let fwd = s.on_rtp(t0, LegId::Agent, AGENT.into(), &mut p).unwrap();
        assert_eq!((fwd.leg, fwd.to), (LegId::Caller, CALLER.into()));
        assert_eq!(RtpPacket::parse(&p[..]).unwrap().ssrc(), Ssrc(7));
    }

    #[test]
    fn different_codecs_are_transcoded_both_ways_and_recorded_aligned() {
        let t0 = Instant::now();
        let mut s =
            Session::new(t0, SessionId(1), config(), setup(Codec::Pcmu, 0, CALLER, 7)).unwrap();
        s.attach(t0, LegId::Agent, setup(Codec::Opus, 111, AGENT, 8))
            .unwrap();
        s.set_feed(LegId::Caller, Feed::Other).unwrap();
        s.set_feed(LegId::Agent, Feed::Other).unwrap();
        s.set_recording(true).unwrap();
        let mut caller = Phone::new(Codec::Pcmu, 0, 697.0, 0xc);
        let mut agent = Phone::new(Codec::Opus, 111, 1209.0, 0xa);
        let (mut to_agent, mut to_caller) = (Vec::new(), Vec::new());
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for i in 0..100u64 {
            let now = t0 + FRAME * i as u32;
            let mut p = caller.packet();
            assert!(s
                .on_rtp(now, LegId::Caller, CALLER.into(), &mut p)
                .is_none());
            let mut p = agent.packet();
            assert!(s.on_rtp(now, LegId::Agent, AGENT.into(), &mut p).is_none());
            if let Some(audio) = s.on_tick(now, FrameIndex(i)) {
                left.extend_from_slice(&audio.left.unwrap_or([0; FRAME_SAMPLES]));
                right.extend_from_slice(&audio.right.unwrap_or([0; FRAME_SAMPLES]));
            }
            while let Some(t) = s.poll_transmit() {
                match t.leg {
                    LegId::Agent => to_agent.push(t.data),
                    LegId::Caller => to_caller.push(t.data),
                }
            }
        }
        // The jitter buffer holds the first ~60 ms back.
        assert!(to_agent.len() >= 90, "{}", to_agent.len());
        assert!(to_caller.len() >= 90, "{}", to_caller.len());
        assert_eq!(
            RtpPacket::parse(&to_agent[0][..]).unwrap().payload_type(),
            111
        );
        assert_eq!(
            RtpPacket::parse(&to_caller[0][..]).unwrap().payload_type(),
            0
        );
        let heard_by_agent = decode_all(Codec::Opus, &to_agent);
        let heard_by_caller = decode_all(Codec::Pcmu, &to_caller);
        assert!(dominant(&heard_by_agent[800..], 697.0, 1209.0));
        assert!(dominant(&heard_by_caller[800..], 1209.0, 697.0));
        assert_eq!(left.len(), 16_000);
        assert_eq!(right.len(), 16_000);
        assert!(dominant(&left[1600..], 697.0, 1209.0));
        assert!(dominant(&right[1600..], 1209.0, 697.0));
    }

    fn event(seq: u16, ts: u32, digit: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        RtpHeader {
            marker: seq == 1,
            payload_type: 101,
            sequence: seq,
            timestamp: ts,
            ssrc: Ssrc(0xc),
        }
        .write_header(&mut p)
        .unwrap();
        let body = TelephoneEvent {
            event: digit,
            end,
            volume: 10,
            duration,
        }
        .serialize()
        .unwrap();
        p[12..].copy_from_slice(&body);
        p
    }

    #[test]
    fn rfc4733_digits_become_events_and_cross_clock_rates() {
        let t0 = Instant::now();
        let mut s =
            Session::new(t0, SessionId(1), config(), setup(Codec::Pcmu, 0, CALLER, 7)).unwrap();
        s.attach(t0, LegId::Agent, setup(Codec::Opus, 111, AGENT, 8))
            .unwrap();
        s.set_feed(LegId::Agent, Feed::Other).unwrap();
        for (i, (end, dur)) in [(false, 400), (false, 800), (true, 1280), (true, 1280)]
            .into_iter()
            .enumerate()
        {
            let mut p = event(i as u16 + 1, 8000, 5, end, dur);
            s.on_rtp(t0, LegId::Caller, CALLER.into(), &mut p);
        }
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Digit {
                leg: LegId::Caller,
                digit: '5',
                duration_ms: 160
            })
        );
        assert_eq!(s.poll_event(), None);
        // Re-sent to the Opus leg at 48 kHz, paced by the ticks.
        let mut events = Vec::new();
        for i in 0..20u64 {
            s.on_tick(t0 + FRAME * i as u32, FrameIndex(i));
            while let Some(t) = s.poll_transmit() {
                let p = RtpPacket::parse(&t.data[..]).unwrap();
                if p.payload_type() == 101 {
                    events.push(TelephoneEvent::parse(p.payload()).unwrap());
                }
            }
        }
        let last = events.last().unwrap();
        assert!(last.end);
        assert_eq!(last.event, 5);
        assert_eq!(last.duration, 160 * 48);
    }

    #[test]
    fn a_session_may_start_with_the_agents_leg() {
        let t0 = Instant::now();
        let mut s = Session::with_leg(
            t0,
            SessionId(1),
            config(),
            LegId::Agent,
            setup(Codec::Pcmu, 0, CALLER, 7),
        )
        .unwrap();
        assert!(s.has_leg(LegId::Agent));
        assert!(!s.has_leg(LegId::Caller));
        s.set_feed(LegId::Agent, Feed::Silence).unwrap();
        s.attach(t0, LegId::Caller, setup(Codec::Pcmu, 0, CALLER, 8))
            .unwrap();
        assert!(s.has_leg(LegId::Caller));
    }
}
