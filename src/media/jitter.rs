//! Adaptive jitter buffer for the paths that decode audio (recording,
//! transcoding). Sans-IO: the caller pushes packets as they arrive and pops
//! once per playout tick (one frame duration, normally 20 ms), passing `now`.
//!
//! Playout is by sequence number: each tick plays the next sequence number,
//! or reports it [`Playout::Missing`] if a later packet is already here but
//! this one is not. The delay is steered by comparing a smoothed buffer level
//! (frames queued ahead of the playout point) with a target delay derived
//! from the RFC 3550 §6.4.1 interarrival-jitter estimate:
//! - above target: one queued frame is dropped (also what absorbs a sender
//!   clock running faster than our ticks);
//! - below target, or nothing queued: a concealment tick is inserted without
//!   advancing (stretch; absorbs a slower sender clock and builds delay);
//! - a late packet raises the target at once by its lateness, while the target
//!   decays towards the jitter estimate only slowly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// RFC 3550 appendix A.1: packets this far behind the playout point are not
/// "late" but from another numbering (sender restart).
const MAX_MISORDER: i64 = 128;
/// Ticks between two delay adjustments (drop/stretch), so a level that has
/// just moved gets time to show in the filter.
const ADJUST_COOLDOWN: u32 = 8;
/// Hysteresis around the target level, in frames.
const LEVEL_HYSTERESIS: f64 = 1.5;
/// Buffer-level filter weight (new sample weight 1/16, as RFC 3550's jitter).
const LEVEL_GAIN: f64 = 1.0 / 16.0;
/// Per-tick decay of the target towards the jitter-derived value, as a
/// fraction of a frame: 1/256 frame per tick is one frame every ~5 s.
const TARGET_DECAY: f64 = 1.0 / 256.0;
/// Multiple of the jitter estimate used as the target delay. For jitter
/// uniform in [0, W) the RFC 3550 estimate converges near W/3, so 4 J covers
/// the whole spread with margin.
const JITTER_MULTIPLE: f64 = 4.0;

/// Configuration; see [`JitterConfig::default`] for typical values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// Audio per packet and per playout tick.
    pub frame_duration: Duration,
    /// RTP clock rate of the payload, for the jitter estimate.
    pub clock_rate: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Delay buffered before the first frame is played.
    pub initial_delay: Duration,
    /// Hard cap on frames held (one more packet may wait on probation
    /// after a sequence jump, see [`JitterBuffer::push`]).
    pub max_frames: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            frame_duration: Duration::from_millis(20),
            clock_rate: 8000,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(60),
            max_frames: 32,
        }
    }
}

/// Why a [`JitterConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterConfigError {
    #[error("frame duration must be non-zero")]
    ZeroFrameDuration,
    #[error("clock rate must be non-zero")]
    ZeroClockRate,
    #[error("min delay {min:?} exceeds max delay {max:?}")]
    MinAboveMax { min: Duration, max: Duration },
    #[error("initial delay {0:?} is outside min..=max")]
    InitialOutOfRange(Duration),
    #[error("max_frames {cap} cannot hold max delay plus headroom ({needed} frames)")]
    CapTooSmall { cap: usize, needed: usize },
}

/// What to play this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<T> {
    /// Nothing received yet (or buffering after a resync): play nothing.
    Empty,
    Frame(T),
    /// No frame for this tick: the caller conceals (repeat/fade or silence).
    /// Either a lost/late frame's slot or a stretch (see [`JitterStats`]).
    Missing,
}

/// Counters; every `Missing` is counted in `concealed`, and those that stand
/// for no lost slot (underruns, deliberate stretches) also in `stretched`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed (including duplicates, late and dropped ones).
    pub received: u64,
    pub played: u64,
    pub concealed: u64,
    pub stretched: u64,
    /// Arrived after their slot was played out as Missing.
    pub late: u64,
    pub duplicates: u64,
    /// Evicted because the buffer held `max_frames`.
    pub dropped_overflow: u64,
    /// Dropped to bring the delay down (sender clock faster, jitter subsided).
    pub dropped_skew: u64,
    /// Restarts on a sequence jump (sender restart).
    pub resyncs: u64,
    /// Stray packets far from the stream that did not lead to a resync.
    pub dropped_stray: u64,
    /// Frames queued ahead of the playout point, as a delay.
    pub current_delay: Duration,
    pub target_delay: Duration,
}

#[derive(Debug)]
struct Pending<T> {
    seq: u16,
    ts: u32,
    payload: T,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer<T> {
    cfg: JitterConfig,
    /// Frames by extended sequence number; all keys are >= `next` once started.
    frames: BTreeMap<i64, (u32, T)>,
    highest: Option<i64>,
    /// Playout point (extended seq); `None` until playout starts.
    next: Option<i64>,
    first_arrival: Option<Instant>,
    epoch: Option<Instant>,
    /// RFC 3550 §6.4.1 jitter, in timestamp units.
    jitter: f64,
    last_transit: Option<f64>,
    /// Target delay in frames (fractional, so it can decay slowly).
    target: f64,
    /// Smoothed buffer level in frames.
    level: f64,
    since_adjust: u32,
    /// Underrun ticks not yet matched to a lost slot: when the gap they hid
    /// turns out to be loss, those slots were already concealed in time.
    underrun_credit: u32,
    /// Bit i set: a packet for slot `next - 1 - i` was already seen, played
    /// or late, so another copy is a duplicate.
    seen_mask: u128,
    /// RFC 3550 A.1 probation: a packet far from the stream, kept until the
    /// next one confirms a new numbering.
    pending: Option<Pending<T>>,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    pub fn new(cfg: JitterConfig) -> Result<Self, JitterConfigError> {
        if cfg.frame_duration.is_zero() {
            return Err(JitterConfigError::ZeroFrameDuration);
        }
        if cfg.clock_rate == 0 {
            return Err(JitterConfigError::ZeroClockRate);
        }
        if cfg.min_delay > cfg.max_delay {
            return Err(JitterConfigError::MinAboveMax {
                min: cfg.min_delay,
                max: cfg.max_delay,
            });
        }
        if cfg.initial_delay < cfg.min_delay || cfg.initial_delay > cfg.max_delay {
            return Err(JitterConfigError::InitialOutOfRange(cfg.initial_delay));
        }
        // Room for the maximum delay, the frame being played and a burst.
        let needed = frames_in(cfg.max_delay, cfg.frame_duration).ceil() as usize + 4;
        if cfg.max_frames < needed {
            return Err(JitterConfigError::CapTooSmall {
                cap: cfg.max_frames,
                needed,
            });
        }
        let target = frames_in(cfg.initial_delay, cfg.frame_duration);
        Ok(JitterBuffer {
            cfg,
            frames: BTreeMap::new(),
            highest: None,
            next: None,
            first_arrival: None,
            epoch: None,
            jitter: 0.0,
            last_transit: None,
            target,
            level: 0.0,
            since_adjust: 0,
            underrun_credit: 0,
            seen_mask: 0,
            pending: None,
            stats: JitterStats::default(),
        })
    }

    /// Frames currently held (never more than `max_frames`).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats.clone();
        s.current_delay = self.cfg.frame_duration.mul_f64(self.depth() as f64);
        s.target_delay = self.cfg.frame_duration.mul_f64(self.target);
        s
    }

    /// Extends a 16-bit sequence number to the one closest to `reference`
    /// (handles the wrap at 65535).
    fn extend(seq: u16, reference: i64) -> i64 {
        let delta = i64::from(seq.wrapping_sub(reference as u16) as i16);
        reference + delta
    }

    fn depth(&self) -> i64 {
        match (self.highest, self.next) {
            (Some(h), Some(n)) if !self.frames.is_empty() => h - n + 1,
            (_, None) => self.frames.len() as i64,
            _ => 0,
        }
    }

    /// Accepts one packet. Duplicates and late packets are counted and
    /// dropped. A packet more than `max_frames` ahead of the newest, or more
    /// than 128 behind the playout point, is held on probation: if the next
    /// packet follows it the sender restarted and the buffer resyncs to the
    /// new numbering (RFC 3550 A.1), otherwise it is dropped as a stray.
    pub fn push(&mut self, now: Instant, seq: u16, ts: u32, payload: T) {
        self.stats.received += 1;
        let Some(highest) = self.highest else {
            self.accept_first(now, seq, ts, payload);
            return;
        };
        let ext = Self::extend(seq, highest);
        let floor = self.next.unwrap_or(highest);
        let ahead = ext - highest;
        if ahead > self.cfg.max_frames as i64 || ext < floor - MAX_MISORDER {
            self.probation(now, seq, ts, payload);
            return;
        }
        // A packet in the stream's range ends any probation: it was a stray.
        if self.pending.take().is_some() {
            self.stats.dropped_stray += 1;
        }
        if let Some(next) = self.next {
            if ext < next {
                let back = next - 1 - ext;
                if back < 128 && self.seen_mask & (1u128 << back) != 0 {
                    self.stats.duplicates += 1;
                } else {
                    // Grow fast: enough to have caught this one.
                    self.stats.late += 1;
                    if back < 128 {
                        self.seen_mask |= 1u128 << back;
                    }
                    let max = frames_in(self.cfg.max_delay, self.cfg.frame_duration);
                    self.target = (self.target.max(self.level) + (next - ext) as f64).min(max);
                }
                return;
            }
        }
        if self.frames.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.update_jitter(now, ts);
        self.frames.insert(ext, (ts, payload));
        self.highest = Some(highest.max(ext));
        if self.frames.len() > self.cfg.max_frames {
            // Evict the oldest; the playout point moves past it so it is not
            // reported Missing (it was received, just not kept).
            if let Some((old, _)) = self.frames.pop_first() {
                self.stats.dropped_overflow += 1;
                if let Some(next) = self.next.as_mut() {
                    while *next <= old {
                        self.seen_mask = (self.seen_mask << 1) | u128::from(*next == old);
                        *next += 1;
                    }
                }
            }
        }
    }

    fn accept_first(&mut self, now: Instant, seq: u16, ts: u32, payload: T) {
        let ext = i64::from(seq);
        self.first_arrival = Some(now);
        self.epoch = Some(now);
        self.update_jitter(now, ts);
        self.frames.insert(ext, (ts, payload));
        self.highest = Some(ext);
    }

    /// RFC 3550 A.1: a jump is believed once the next packet follows it.
    fn probation(&mut self, now: Instant, seq: u16, ts: u32, payload: T) {
        match self.pending.take() {
            Some(p) if p.seq.wrapping_add(1) == seq => {
                self.resync();
                self.accept_first(now, p.seq, p.ts, p.payload);
                self.push_counted(now, seq, ts, payload);
            }
            previous => {
                if previous.is_some() {
                    self.stats.dropped_stray += 1;
                }
                self.pending = Some(Pending { seq, ts, payload });
            }
        }
    }

    /// `push` for a packet already counted in `received`.
    fn push_counted(&mut self, now: Instant, seq: u16, ts: u32, payload: T) {
        self.stats.received -= 1;
        self.push(now, seq, ts, payload);
    }

    fn resync(&mut self) {
        self.stats.resyncs += 1;
        self.frames.clear();
        self.highest = None;
        self.next = None;
        self.first_arrival = None;
        self.epoch = None;
        self.jitter = 0.0;
        self.last_transit = None;
        self.target = frames_in(self.cfg.initial_delay, self.cfg.frame_duration);
        self.level = 0.0;
        self.since_adjust = 0;
        self.underrun_credit = 0;
        self.seen_mask = 0;
    }

    /// RFC 3550 §6.4.1: J += (|D| - J) / 16 with D the change in transit time.
    fn update_jitter(&mut self, now: Instant, ts: u32) {
        let Some(epoch) = self.epoch else { return };
        let arrival =
            now.saturating_duration_since(epoch).as_secs_f64() * f64::from(self.cfg.clock_rate);
        // Transit in timestamp units; the u32 timestamp is unwrapped relative
        // to the previous transit so a wrap is not a giant jump.
        let raw = arrival - f64::from(ts);
        let transit = match self.last_transit {
            Some(prev) => {
                let span = f64::from(u32::MAX) + 1.0;
                raw + ((prev - raw) / span).round() * span
            }
            None => raw,
        };
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            // A timestamp discontinuity over a second is not network jitter.
            if d < f64::from(self.cfg.clock_rate) {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// Called once per playout tick.
    pub fn pop(&mut self, now: Instant) -> Playout<T> {
        let Some(mut next) = self.next else {
            return self.try_start(now);
        };
        self.adapt_target();
        let depth = self.depth();
        self.level += (depth as f64 - self.level) * LEVEL_GAIN;
        self.since_adjust = self.since_adjust.saturating_add(1);
        let target_frames = self.target.ceil();

        if self.frames.is_empty() {
            // Underrun: stall the playout point; if the gap turns out to be
            // loss these ticks will have concealed it.
            self.underrun_credit += 1;
            return self.stretch();
        }
        if self.since_adjust >= ADJUST_COOLDOWN {
            if self.level > target_frames + LEVEL_HYSTERESIS && self.frames.len() > 1 {
                if self.frames.remove(&next).is_some() {
                    self.stats.dropped_skew += 1;
                    next = self.advance(true);
                    self.level -= 1.0;
                    self.since_adjust = 0;
                }
            } else if self.level < target_frames - LEVEL_HYSTERESIS {
                self.level += 1.0;
                self.since_adjust = 0;
                return self.stretch();
            }
        }
        // Slots already concealed by underrun ticks are skipped silently.
        while self.underrun_credit > 0 && !self.frames.contains_key(&next) {
            self.underrun_credit -= 1;
            self.stats.stretched -= 1;
            next = self.advance(false);
        }
        self.underrun_credit = 0;
        match self.frames.remove(&next) {
            Some((_, payload)) => {
                self.advance(true);
                self.stats.played += 1;
                Playout::Frame(payload)
            }
            None => {
                self.advance(false);
                self.stats.concealed += 1;
                Playout::Missing
            }
        }
    }

    fn stretch(&mut self) -> Playout<T> {
        self.stats.concealed += 1;
        self.stats.stretched += 1;
        Playout::Missing
    }

    fn advance(&mut self, seen: bool) -> i64 {
        let next = self.next.map_or(0, |n| n + 1);
        self.next = Some(next);
        self.seen_mask = (self.seen_mask << 1) | u128::from(seen);
        next
    }

    fn try_start(&mut self, now: Instant) -> Playout<T> {
        let (Some(first), Some(&lowest)) = (self.first_arrival, self.frames.keys().next()) else {
            return Playout::Empty;
        };
        let wait = self.cfg.frame_duration.mul_f64(self.target);
        if now.saturating_duration_since(first) < wait {
            return Playout::Empty;
        }
        self.next = Some(lowest);
        self.level = self.depth() as f64;
        self.since_adjust = 0;
        self.pop(now)
    }

    /// Target from the jitter estimate: follow it up at once, down slowly.
    fn adapt_target(&mut self) {
        let frame = self.cfg.frame_duration.as_secs_f64();
        let min = frames_in(self.cfg.min_delay, self.cfg.frame_duration);
        let max = frames_in(self.cfg.max_delay, self.cfg.frame_duration);
        let jitter_s = self.jitter / f64::from(self.cfg.clock_rate);
        let desired = (JITTER_MULTIPLE * jitter_s / frame).clamp(min, max);
        self.target = if desired >= self.target {
            desired
        } else {
            (self.target - TARGET_DECAY).max(desired)
        };
    }
}

fn frames_in(d: Duration, frame: Duration) -> f64 {
    d.as_secs_f64() / frame.as_secs_f64()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TICK: Duration = Duration::from_millis(20);

    fn jb() -> JitterBuffer<u32> {
        JitterBuffer::new(JitterConfig::default()).unwrap()
    }

    /// Runs a tick-by-tick simulation: before each tick, every arrival due by
    /// then is pushed. Returns the outputs and the per-pop slot count
    /// (frame + lost-slot concealments + skew drops), see the property test.
    struct Sim {
        jb: JitterBuffer<u32>,
        t0: Instant,
        arrivals: Vec<(Duration, u16, u32, u32)>,
        out: Vec<Playout<u32>>,
        slots: Vec<i64>,
        max_len: usize,
    }

    impl Sim {
        fn new(mut arrivals: Vec<(Duration, u16, u32, u32)>) -> Self {
            arrivals.sort_by_key(|a| a.0);
            Sim {
                jb: jb(),
                t0: Instant::now(),
                arrivals,
                out: Vec::new(),
                slots: Vec::new(),
                max_len: 0,
            }
        }

        fn run(&mut self, ticks: usize) {
            let mut i = 0;
            for k in 0..ticks {
                let now = TICK * k as u32;
                while i < self.arrivals.len() && self.arrivals[i].0 <= now {
                    let (at, seq, ts, p) = self.arrivals[i];
                    self.jb.push(self.t0 + at, seq, ts, p);
                    self.max_len = self.max_len.max(self.jb.len());
                    i += 1;
                }
                let before = self.jb.stats();
                let o = self.jb.pop(self.t0 + now);
                let after = self.jb.stats();
                let slot = i64::from(matches!(o, Playout::Frame(_)))
                    + (after.concealed - before.concealed) as i64
                    - (after.stretched as i64 - before.stretched as i64)
                    + (after.dropped_skew - before.dropped_skew) as i64;
                self.slots.push(slot);
                self.out.push(o);
            }
        }

        fn frames(&self) -> Vec<u32> {
            self.out
                .iter()
                .filter_map(|o| match o {
                    Playout::Frame(p) => Some(*p),
                    _ => None,
                })
                .collect()
        }
    }

    fn steady(n: u32, base_seq: u16) -> Vec<(Duration, u16, u32, u32)> {
        (0..n)
            .map(|i| (TICK * i, base_seq.wrapping_add(i as u16), i * 160, i))
            .collect()
    }

    #[test]
    fn empty_before_start_then_in_order() {
        let mut sim = Sim::new(steady(100, 0));
        assert_eq!(sim.jb.pop(sim.t0), Playout::Empty);
        sim.run(130);
        assert_eq!(sim.out[0], Playout::Empty);
        let frames = sim.frames();
        // The initial delay is drained towards the (tiny) jitter target by
        // skew drops; everything else is played in order.
        let s = sim.jb.stats();
        assert_eq!(frames.len() as u64 + s.dropped_skew, 100);
        assert!(frames.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.concealed, s.stretched, "no slot reported lost");
        assert_eq!(s.late + s.duplicates + s.dropped_overflow, 0);
    }

    #[test]
    fn reordering_is_put_back_in_order() {
        let mut arr = steady(50, 100);
        // Swap arrival times of pairs (1,2), (11,12), ...
        for i in (1..49).step_by(10) {
            let t = arr[i].0;
            arr[i].0 = arr[i + 1].0;
            arr[i + 1].0 = t + Duration::from_millis(1);
        }
        let mut sim = Sim::new(arr);
        sim.run(80);
        let f = sim.frames();
        assert!(f.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sim.jb.stats().late, 0);
    }

    #[test]
    fn duplicates_are_dropped_before_and_after_playout() {
        let mut b = jb();
        let t0 = Instant::now();
        b.push(t0, 1, 0, 1);
        b.push(t0, 1, 0, 1);
        b.push(t0, 2, 160, 2);
        b.push(t0, 3, 320, 3);
        let now = t0 + Duration::from_millis(60);
        assert_eq!(b.pop(now), Playout::Frame(1));
        b.push(now, 1, 0, 1);
        assert_eq!(b.pop(now + TICK), Playout::Frame(2));
        let s = b.stats();
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.late, 0);
        assert_eq!(s.received, 5);
    }

    #[test]
    fn loss_is_missing_once_and_late_is_counted_and_grows_target() {
        let mut b = jb();
        let t0 = Instant::now();
        for s in [1u16, 2, 3, 5, 6] {
            b.push(
                t0 + TICK * u32::from(s),
                s,
                u32::from(s) * 160,
                u32::from(s),
            );
        }
        let mut out = Vec::new();
        for k in 0..5 {
            out.push(b.pop(t0 + Duration::from_millis(120) + TICK * k));
        }
        assert_eq!(
            out,
            vec![
                Playout::Frame(1),
                Playout::Frame(2),
                Playout::Frame(3),
                Playout::Missing,
                Playout::Frame(5)
            ]
        );
        let before = b.stats().target_delay;
        b.push(t0 + Duration::from_millis(300), 4, 640, 4);
        let s = b.stats();
        assert_eq!(s.late, 1);
        assert!(
            s.target_delay > before,
            "{:?} -> {:?}",
            before,
            s.target_delay
        );
        assert_eq!(s.concealed - s.stretched, 1);
        assert_eq!(b.pop(t0 + Duration::from_millis(320)), Playout::Frame(6));
    }

    #[test]
    fn burst_loss_concealed_during_underrun_adds_no_delay() {
        // Frames 40..45 lost: the buffer runs dry, the underrun ticks stand
        // in for the lost slots, and playout resumes without extra delay.
        let arr: Vec<_> = steady(100, 7)
            .into_iter()
            .filter(|a| !(40..45).contains(&a.3))
            .collect();
        let mut sim = Sim::new(arr);
        sim.run(120);
        let s = sim.jb.stats();
        assert_eq!(s.concealed - s.stretched, 5, "{s:?}");
        assert_eq!(s.late, 0);
        let pos = |p: u32| sim.out.iter().position(|o| *o == Playout::Frame(p));
        let (before, after) = (pos(39).unwrap(), pos(45).unwrap());
        assert_eq!(after - before, 6, "frame 45 plays in its own slot");
    }

    #[test]
    fn sequence_wrap() {
        let mut sim = Sim::new(steady(200, 65500));
        sim.run(230);
        let f = sim.frames();
        assert!(f.windows(2).all(|w| w[0] < w[1]));
        assert!(f.len() >= 195);
        let s = sim.jb.stats();
        assert_eq!(s.resyncs + s.late + s.dropped_stray, 0);
    }

    #[test]
    fn sender_restart_resyncs_after_confirmation() {
        let mut b = jb();
        let t0 = Instant::now();
        let mut k = 0u32;
        let mut tick = |b: &mut JitterBuffer<u32>, seq: u16, p: u32| {
            let now = t0 + TICK * k;
            k += 1;
            b.push(now, seq, p * 160, p);
            b.pop(now)
        };
        for i in 0..20u32 {
            tick(&mut b, 1000 + i as u16, i);
        }
        // New numbering far away; one stray alone does not resync.
        let mut outs = Vec::new();
        for i in 0..20u32 {
            outs.push(tick(&mut b, 40000 + i as u16, 100 + i));
        }
        let s = b.stats();
        assert_eq!(s.resyncs, 1);
        assert!(
            outs.contains(&Playout::Empty),
            "buffering again after resync"
        );
        assert!(outs.contains(&Playout::Frame(100)));
        let f: Vec<u32> = outs
            .iter()
            .filter_map(|o| {
                if let Playout::Frame(p) = o {
                    Some(*p)
                } else {
                    None
                }
            })
            .collect();
        assert!(f.windows(2).all(|w| w[0] < w[1]));

        // A single stray far packet is dropped, the stream goes on.
        let mut b = jb();
        b.push(t0, 10, 0, 0);
        b.push(t0, 30000, 0, 99);
        b.push(t0, 11, 160, 1);
        assert_eq!(b.stats().dropped_stray, 1);
        assert_eq!(b.stats().resyncs, 0);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn memory_is_capped() {
        let cfg = JitterConfig::default();
        let cap = cfg.max_frames;
        let mut b = JitterBuffer::new(cfg).unwrap();
        let t0 = Instant::now();
        // A burst before playout starts: far more than the cap.
        for i in 0..(cap as u16 * 3) {
            b.push(t0, i, u32::from(i) * 160, u32::from(i));
            assert!(b.len() <= cap);
        }
        assert_eq!(b.stats().dropped_overflow, cap as u64 * 2);
        assert!(matches!(
            b.pop(t0 + Duration::from_secs(1)),
            Playout::Frame(_)
        ));
    }

    #[test]
    fn config_validation() {
        let d = JitterConfig::default();
        let ms = Duration::from_millis;
        let err = |c: JitterConfig| JitterBuffer::<()>::new(c).err();
        assert_eq!(
            err(JitterConfig {
                frame_duration: Duration::ZERO,
                ..d.clone()
            }),
            Some(JitterConfigError::ZeroFrameDuration)
        );
        assert_eq!(
            err(JitterConfig {
                clock_rate: 0,
                ..d.clone()
            }),
            Some(JitterConfigError::ZeroClockRate)
        );
        assert_eq!(
            err(JitterConfig {
                min_delay: ms(300),
                ..d.clone()
            }),
            Some(JitterConfigError::MinAboveMax {
                min: ms(300),
                max: ms(200)
            })
        );
        assert_eq!(
            err(JitterConfig {
                initial_delay: ms(10),
                ..d.clone()
            }),
            Some(JitterConfigError::InitialOutOfRange(ms(10)))
        );
        assert_eq!(
            err(JitterConfig {
                max_frames: 5,
                ..d.clone()
            }),
            Some(JitterConfigError::CapTooSmall { cap: 5, needed: 14 })
        );
        assert!(err(d).is_none());
    }

    #[test]
    fn target_follows_jitter_up_fast_and_down_slowly() {
        let mut b = jb();
        let t0 = Instant::now();
        let mut k = 0u32;
        // 10 s with arrivals jittered 0..80 ms (deterministic pattern).
        for i in 0..500u32 {
            let jitter = Duration::from_millis(u64::from((i * 37) % 80));
            b.push(t0 + TICK * i + jitter, i as u16, i * 160, i);
            b.pop(t0 + TICK * k);
            k += 1;
        }
        let high = b.stats().target_delay;
        assert!(high >= Duration::from_millis(60), "target {high:?}");
        assert!(high <= Duration::from_millis(200));
        // Then 2 s of perfectly regular arrivals: target decays, but slowly.
        for i in 500..600u32 {
            b.push(
                t0 + TICK * i + Duration::from_millis(80),
                i as u16,
                i * 160,
                i,
            );
            b.pop(t0 + TICK * k);
            k += 1;
        }
        let later = b.stats().target_delay;
        assert!(later < high, "{later:?} < {high:?}");
        assert!(
            high - later <= Duration::from_millis(20),
            "{high:?} -> {later:?}"
        );
    }

    fn skew_run(rate: f64) -> (JitterStats, Duration) {
        let mut b = jb();
        let t0 = Instant::now();
        let ticks = 30_000u32; // 10 minutes
        let mut sent = 0u32;
        let mut worst = Duration::ZERO;
        for k in 0..ticks {
            let now = TICK * k;
            // Sender's packet i leaves at i * 20 ms / rate of our clock.
            while TICK.mul_f64(f64::from(sent) / rate) <= now {
                b.push(t0 + now, sent as u16, sent.wrapping_mul(160), sent);
                sent += 1;
            }
            b.pop(t0 + now);
            assert!(b.len() <= JitterConfig::default().max_frames);
            if k > 100 {
                worst = worst.max(b.stats().current_delay);
            }
        }
        (b.stats(), worst)
    }

    #[test]
    fn faster_sender_is_absorbed_by_drops() {
        let (s, worst) = skew_run(1.001);
        assert!(worst <= Duration::from_millis(200), "{worst:?}");
        // 30 surplus frames in 10 min, plus the initial delay drained.
        assert!((25..=40).contains(&s.dropped_skew), "{s:?}");
        assert_eq!(s.concealed - s.stretched, 0, "{s:?}");
        assert!(s.stretched < 10, "{s:?}");
        assert_eq!(s.late + s.dropped_overflow, 0);
    }

    #[test]
    fn slower_sender_is_absorbed_by_stretches() {
        let (s, worst) = skew_run(0.999);
        assert!(worst <= Duration::from_millis(200), "{worst:?}");
        // 30 frames short in 10 min: about as many stretches, no loss.
        assert!((25..=45).contains(&s.stretched), "{s:?}");
        assert_eq!(s.concealed, s.stretched);
        assert_eq!(s.late + s.dropped_overflow, 0);
        assert!(s.played >= 29_900, "{s:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_operations_never_panic_and_stay_capped(
            ops in proptest::collection::vec(
                (any::<bool>(), any::<u16>(), any::<u32>(), 0u64..100, any::<bool>()),
                0..400,
            ),
        ) {
            let mut b = jb();
            let t0 = Instant::now() + Duration::from_secs(10);
            let mut now = t0;
            for (is_push, seq, ts, step_ms, backwards) in ops {
                // Time may even go backwards (a caller bug must not panic).
                now = if backwards {
                    now.checked_sub(Duration::from_millis(step_ms)).unwrap_or(now)
                } else {
                    now + Duration::from_millis(step_ms)
                };
                if is_push {
                    b.push(now, seq, ts, u32::from(seq));
                } else {
                    b.pop(now);
                }
                prop_assert!(b.len() <= JitterConfig::default().max_frames);
                let s = b.stats();
                prop_assert!(s.concealed >= s.stretched);
                prop_assert!(s.target_delay <= Duration::from_millis(200));
            }
        }

        #[test]
        fn delivers_in_order_once_and_reports_each_lost_slot_once(
            base_seq: u16,
            base_ts: u32,
            frames in proptest::collection::vec(
                (0u32..150, prop::bool::weighted(0.1), prop::option::weighted(0.1, 0u32..150)),
                20..300,
            ),
        ) {
            let mut arrivals = Vec::new();
            let mut lost = std::collections::BTreeSet::new();
            for (i, (delay, is_lost, dup)) in frames.iter().enumerate() {
                let i = i as u32;
                if *is_lost {
                    lost.insert(i);
                    continue;
                }
                let seq = base_seq.wrapping_add(i as u16);
                let ts = base_ts.wrapping_add(i * 160);
                let at = TICK * i + Duration::from_millis(u64::from(*delay));
                arrivals.push((at, seq, ts, i));
                if let Some(d) = dup {
                    arrivals.push((TICK * i + Duration::from_millis(u64::from(*d)), seq, ts, i));
                }
            }
            let pushed = arrivals.len() as u64;
            let mut sim = Sim::new(arrivals);
            sim.run(frames.len() + 100);
            let cap = JitterConfig::default().max_frames;
            prop_assert!(sim.max_len <= cap);
            let s = sim.jb.stats();
            prop_assert_eq!(s.received, pushed);
            prop_assert_eq!(s.dropped_overflow, 0);
            prop_assert!(sim.jb.is_empty());

            // In order, no frame twice, no lost frame.
            let f = sim.frames();
            prop_assert!(f.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(f.iter().all(|p| !lost.contains(p)));

            // Every slot between two consecutive frames is accounted exactly
            // once: as a Missing for a lost/late slot, or a skew drop.
            let positions: Vec<usize> = sim
                .out
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o, Playout::Frame(_)))
                .map(|(k, _)| k)
                .collect();
            for (w, p) in positions.windows(2).zip(f.windows(2)) {
                let accounted: i64 = sim.slots[w[0] + 1..=w[1]].iter().sum();
                prop_assert_eq!(accounted, i64::from(p[1] - p[0]));
            }

            // Each unique received frame was played, or dropped as late/skew.
            let unique = (frames.len() - lost.len()) as u64;
            prop_assert_eq!(s.received - s.duplicates, unique);
            prop_assert_eq!(s.played + s.late + s.dropped_skew, unique);
        }
    }
}
