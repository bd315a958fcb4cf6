//! The media clock: paces outgoing frames (prompts, hold music, relayed
//! audio) on a fixed period, normally 20 ms.
//!
//! Sans-IO: the runtime sleeps until [`Pacer::poll_timeout`] and then calls
//! [`Pacer::on_tick`] with the time it actually woke up. Deadlines are
//! computed as `start + n * period` from the frame index, never by adding a
//! period to the previous deadline, so rounding or late wake-ups cannot make
//! the clock drift (an hour of calls ends exactly on the grid).
//!
//! Late wake-ups: a peer's jitter buffer copes with a frame that arrives a
//! little late, but not with a burst of frames after a stall (it overflows
//! and the audio is clipped). So frames whose deadline has passed by more
//! than a period are skipped rather than sent in a burst, up to
//! `max_catch_up` frames per wake-up are sent (default 1), and RTP
//! timestamps are derived from the frame index so they jump over the
//! skipped frames (RFC 3550 §5.1: the timestamp reflects the sampling
//! instant, and a gap tells the receiver the frames are missing).

use std::time::{Duration, Instant};

use thiserror::Error;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a [`Pacer`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacerError {
    /// A zero period would make every instant a deadline.
    #[error("pacer period must be non-zero")]
    ZeroPeriod,
}

/// Index of a frame on the pacer's grid: frame `n` is due at
/// `start + n * period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameIndex(pub u64);

/// Result of one wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Frames to send now (0 after an early wake-up, normally 1, at most
    /// `max_catch_up`).
    pub frames: u32,
    /// Frames whose deadline passed and which must not be sent.
    pub skipped: u64,
    /// How late this wake-up was for the oldest deadline it served.
    pub late_by: Duration,
    /// Index of the first frame to send; frame `i` of this tick is
    /// `first_frame.0 + i`. Skipped frames precede it.
    pub first_frame: FrameIndex,
}

/// Upper bounds (exclusive, µs) of the lateness histogram buckets; the
/// last bucket holds everything from 100 ms up. Fine around a millisecond,
/// where the clock's target is (late by under 1 ms at p99).
pub const LATENESS_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 750, 1_000, 1_500, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// Number of lateness buckets (one more than the bounds: the overflow).
pub const LATENESS_BUCKET_COUNT: usize = LATENESS_BUCKETS_US.len() + 1;

/// Counters for monitoring the media clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacerStats {
    /// Wake-ups that had at least one deadline due.
    pub ticks: u64,
    /// Wake-ups before the next deadline (nothing to do).
    pub early_wakeups: u64,
    /// Frames handed out to send.
    pub frames: u64,
    /// Frames skipped because their deadline passed during a stall.
    pub skipped: u64,
    /// Largest `late_by` seen.
    pub max_late: Duration,
    /// Count of ticks per lateness bucket, see [`LATENESS_BUCKETS_US`].
    pub lateness_hist: [u64; LATENESS_BUCKET_COUNT],
}

impl PacerStats {
    /// An upper bound on the 99th percentile of lateness: the upper edge
    /// of the bucket holding it, capped by the maximum seen (so it stays
    /// meaningful when the overflow bucket holds it). Zero before any tick.
    pub fn p99_late(&self) -> Duration {
        if self.ticks == 0 {
            return Duration::ZERO;
        }
        // Smallest count c with c >= 0.99 * ticks, in integers.
        let target = self.ticks.saturating_mul(99).div_ceil(100).max(1);
        let mut seen = 0u64;
        for (i, count) in self.lateness_hist.iter().enumerate() {
            seen += count;
            if seen >= target {
                return match LATENESS_BUCKETS_US.get(i) {
                    Some(&us) => Duration::from_micros(us).min(self.max_late),
                    None => self.max_late,
                };
            }
        }
        self.max_late
    }

    /// The bucket counts as `a,b,c,…` (see [`LATENESS_BUCKETS_US`]), for
    /// a stats line from which a run's whole histogram can be summed.
    pub fn lateness_hist_text(&self) -> String {
        let counts: Vec<String> = self.lateness_hist.iter().map(u64::to_string).collect();
        counts.join(",")
    }

    fn record_lateness(&mut self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENESS_BUCKETS_US
            .iter()
            .position(|&bound| us < bound)
            .unwrap_or(LATENESS_BUCKETS_US.len());
        if let Some(slot) = self.lateness_hist.get_mut(bucket) {
            *slot += 1;
        }
        self.max_late = self.max_late.max(late);
    }
}

/// The fixed-period media clock.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    period: Duration,
    max_catch_up: u32,
    /// Index of the next frame not yet sent or skipped.
    next: u64,
    /// First frame of the latest tick that sent something.
    current: u64,
    stats: PacerStats,
}

impl Pacer {
    /// A clock whose frame 0 is due at `start`.
    pub fn new(start: Instant, period: Duration) -> Result<Self, PacerError> {
        if period.is_zero() {
            return Err(PacerError::ZeroPeriod);
        }
        Ok(Self {
            start,
            period,
            max_catch_up: 1,
            next: 0,
            current: 0,
            stats: PacerStats::default(),
        })
    }

    /// Allow up to `frames` frames per late wake-up (clamped to at least 1).
    /// More than 1 trades a small burst for fewer gaps after short stalls.
    #[must_use]
    pub fn with_max_catch_up(mut self, frames: u32) -> Self {
        self.max_catch_up = frames.max(1);
        self
    }

    /// The configured period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Deadline of frame `n`: `start + n * period`, exact.
    pub fn deadline(&self, n: FrameIndex) -> Instant {
        self.start + self.offset(n.0)
    }

    /// When the runtime should wake up next: the next frame's deadline.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline(FrameIndex(self.next))
    }

    /// Account for a wake-up at `now` and say how many frames to send.
    pub fn on_tick(&mut self, now: Instant) -> Tick {
        let due_at = self.poll_timeout();
        if now < due_at {
            self.stats.early_wakeups += 1;
            return Tick {
                frames: 0,
                skipped: 0,
                late_by: Duration::ZERO,
                first_frame: FrameIndex(self.next),
            };
        }
        let late_by = now - due_at;
        // Last frame whose deadline is <= now; at least `next` as it is due.
        let last_due = self.frames_elapsed(now).max(self.next);
        let due = last_due - self.next + 1;
        let frames = due.min(u64::from(self.max_catch_up));
        let skipped = due - frames;
        // Skip the oldest: the newest frames are the ones still on time.
        let first = self.next + skipped;
        self.next = last_due + 1;
        self.current = first;

        self.stats.ticks += 1;
        self.stats.frames += frames;
        self.stats.skipped += skipped;
        self.stats.record_lateness(late_by);
        Tick {
            // frames <= max_catch_up, a u32.
            frames: u32::try_from(frames).unwrap_or(self.max_catch_up),
            skipped,
            late_by,
            first_frame: FrameIndex(first),
        }
    }

    /// RTP timestamp of the first frame of the latest tick (frame 0 before
    /// any): `base + n * period * clock_rate`, modulo 2^32 (RFC 3550 §5.1).
    pub fn rtp_timestamp(&self, base: u32, clock_rate: u32) -> u32 {
        self.rtp_timestamp_of(FrameIndex(self.current), base, clock_rate)
    }

    /// RTP timestamp of any frame. Computed from the index rather than by
    /// accumulating samples per frame, so a period that is not a whole
    /// number of samples still does not drift.
    pub fn rtp_timestamp_of(&self, frame: FrameIndex, base: u32, clock_rate: u32) -> u32 {
        let nanos = self.period.as_nanos() * u128::from(frame.0);
        let samples = nanos * u128::from(clock_rate) / NANOS_PER_SEC;
        // Truncation is the RFC 3550 wrap-around, intended.
        #[allow(clippy::cast_possible_truncation)]
        let wrapped = samples as u32;
        base.wrapping_add(wrapped)
    }

    /// Monitoring counters.
    pub fn stats(&self) -> &PacerStats {
        &self.stats
    }

    fn offset(&self, n: u64) -> Duration {
        let nanos = self.period.as_nanos() * u128::from(n);
        let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
        // The remainder is < 10^9, so it fits.
        let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
        Duration::new(secs, sub)
    }

    /// `floor((now - start) / period)`: index of the latest deadline <= now.
    fn frames_elapsed(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / self.period.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    const PERIOD: Duration = Duration::from_millis(20);

    fn pacer(t0: Instant) -> Pacer {
        Pacer::new(t0, PERIOD).unwrap()
    }

    #[test]
    fn zero_period_is_rejected() {
        assert_eq!(
            Pacer::new(Instant::now(), Duration::ZERO).unwrap_err(),
            PacerError::ZeroPeriod
        );
    }

    #[test]
    fn one_hour_with_jitter_stays_on_the_grid() {
        let t0 = Instant::now();
        let mut p = pacer(t0);
        let mut rng = StdRng::seed_from_u64(7);
        let mut expected_ts = 1000u32;
        for n in 0..180_000u64 {
            let deadline = p.poll_timeout();
            assert_eq!(deadline, t0 + PERIOD * u32::try_from(n).unwrap());
            let jitter = Duration::from_micros(rng.random_range(0..=5_000));
            let tick = p.on_tick(deadline + jitter);
            assert_eq!(tick.frames, 1, "tick {n}");
            assert_eq!(tick.skipped, 0, "tick {n}");
            assert_eq!(tick.late_by, jitter);
            assert_eq!(tick.first_frame, FrameIndex(n));
            assert_eq!(p.rtp_timestamp(1000, 8000), expected_ts);
            expected_ts = expected_ts.wrapping_add(160);
        }
        assert_eq!(p.poll_timeout(), t0 + Duration::from_secs(3600));
        assert_eq!(
            p.deadline(FrameIndex(180_000)),
            t0 + Duration::from_secs(3600)
        );
        let s = p.stats();
        assert_eq!((s.ticks, s.frames, s.skipped), (180_000, 180_000, 0));
        assert!(s.max_late <= Duration::from_millis(5));
        assert!(s.p99_late() <= Duration::from_millis(5));
        assert!(s.p99_late() > Duration::from_millis(2));
        assert_eq!(s.lateness_hist.iter().sum::<u64>(), 180_000);
        let text = s.lateness_hist_text();
        let parsed: Vec<u64> = text.split(',').map(|c| c.parse().unwrap()).collect();
        assert_eq!(parsed, s.lateness_hist);
    }

    #[test]
    fn late_by_less_than_a_period_sends_exactly_one_frame() {
        let t0 = Instant::now();
        let mut p = pacer(t0).with_max_catch_up(4);
        let tick = p.on_tick(t0 + Duration::from_millis(19));
        assert_eq!((tick.frames, tick.skipped), (1, 0));
        assert_eq!(tick.late_by, Duration::from_millis(19));
        assert_eq!(p.poll_timeout(), t0 + PERIOD);
    }

    #[test]
    fn stall_of_70ms_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = pacer(t0);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..10 {
            let d = p.poll_timeout();
            assert_eq!(p.on_tick(d).frames, 1);
        }
        // The thread was descheduled for 70 ms after its last tick (frame
        // 9 at 180 ms); add jitter so the check does not rely on one phase.
        let last = t0 + Duration::from_millis(180);
        for trial in 0..20 {
            let mut q = p.clone();
            let jitter = Duration::from_micros(rng.random_range(0..=5_000));
            let tick = q.on_tick(last + Duration::from_millis(70) + jitter);
            assert_eq!(tick.frames, 1, "no burst, trial {trial}");
            assert!((2..=3).contains(&tick.skipped), "trial {trial}: {tick:?}");
            assert_eq!(q.stats().skipped, tick.skipped);
            // Back on the grid: the next deadline is after the wake-up.
            let next = q.poll_timeout();
            assert!(next > last + Duration::from_millis(70) + jitter);
            assert!(next - (last + Duration::from_millis(70) + jitter) <= PERIOD);
            // And it sends one frame at a time again.
            assert_eq!(q.on_tick(next).frames, 1);
        }
        let tick = p.on_tick(last + Duration::from_millis(70));
        // Frames 10, 11 (200, 220 ms) skipped, frame 12 (240 ms) sent.
        assert_eq!(tick.skipped, 2);
        assert_eq!(tick.first_frame, FrameIndex(12));
        assert_eq!(tick.late_by, Duration::from_millis(50));
    }

    #[test]
    fn max_catch_up_bounds_the_burst() {
        let t0 = Instant::now();
        let mut p = pacer(t0).with_max_catch_up(2);
        // Frames 0..=4 due at 80 ms: send the newest two, skip three.
        let tick = p.on_tick(t0 + Duration::from_millis(80));
        assert_eq!((tick.frames, tick.skipped), (2, 3));
        assert_eq!(tick.first_frame, FrameIndex(3));
        assert_eq!(p.poll_timeout(), t0 + Duration::from_millis(100));
        assert_eq!(p.stats().frames, 2);
        // Zero is clamped: a pacer always sends at least one frame.
        let mut z = pacer(t0).with_max_catch_up(0);
        assert_eq!(z.on_tick(t0).frames, 1);
    }

    #[test]
    fn early_wakeup_sends_nothing_and_keeps_the_deadline() {
        let t0 = Instant::now();
        let mut p = pacer(t0);
        assert_eq!(p.on_tick(t0).frames, 1);
        let tick = p.on_tick(t0 + Duration::from_millis(5));
        assert_eq!((tick.frames, tick.skipped), (0, 0));
        assert_eq!(p.poll_timeout(), t0 + PERIOD);
        assert_eq!(p.stats().early_wakeups, 1);
        assert_eq!(p.stats().ticks, 1);
    }

    #[test]
    fn timestamps_advance_160_per_frame_across_skips() {
        let t0 = Instant::now();
        let mut p = pacer(t0);
        let base = u32::MAX - 200; // also crosses the 2^32 wrap
        p.on_tick(t0);
        assert_eq!(p.rtp_timestamp(base, 8000), base);
        p.on_tick(t0 + PERIOD);
        assert_eq!(p.rtp_timestamp(base, 8000), base.wrapping_add(160));
        // Stall: frames 2..=5 due at 100 ms, 2, 3, 4 skipped, 5 sent.
        let tick = p.on_tick(t0 + Duration::from_millis(100) + Duration::from_millis(3));
        assert_eq!(tick.skipped, 3);
        assert_eq!(p.rtp_timestamp(base, 8000), base.wrapping_add(5 * 160));
        assert_eq!(
            p.rtp_timestamp_of(FrameIndex(6), base, 8000),
            base.wrapping_add(960)
        );
    }

    #[test]
    fn fractional_samples_per_frame_do_not_drift() {
        // 10 ms at 11.025 kHz is 110.25 samples: accumulating a rounded
        // per-frame step would drift by 0.25 samples a frame.
        let t0 = Instant::now();
        let p = Pacer::new(t0, Duration::from_millis(10)).unwrap();
        assert_eq!(p.rtp_timestamp_of(FrameIndex(4), 0, 11_025), 441);
        assert_eq!(
            p.rtp_timestamp_of(FrameIndex(360_000), 0, 11_025),
            3600 * 11_025
        );
    }

    #[test]
    fn p99_uses_bucket_edges_and_max() {
        let mut s = PacerStats::default();
        assert_eq!(s.p99_late(), Duration::ZERO);
        for _ in 0..99 {
            s.ticks += 1;
            s.record_lateness(Duration::from_micros(50));
        }
        s.ticks += 1;
        s.record_lateness(Duration::from_millis(300));
        assert_eq!(s.p99_late(), Duration::from_micros(100));
        assert_eq!(s.max_late, Duration::from_millis(300));
        s.ticks += 1;
        s.record_lateness(Duration::from_millis(300));
        assert_eq!(s.p99_late(), Duration::from_millis(300));
    }
}
