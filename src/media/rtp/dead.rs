//! Notices a dead phone: a call whose RTP has stopped (unplugged handset,
//! NAT binding gone, crashed softphone) while signalling still thinks the
//! call is up, which would otherwise keep an agent seat busy for ever.

use std::time::{Duration, Instant};

/// Reported once per silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDead {
    /// When the last packet (or the start of watching) was.
    pub last_activity: Instant,
    /// How long it has been silent at the time of the report.
    pub silent_for: Duration,
}

/// Watches one incoming RTP stream for silence.
#[derive(Debug, Clone)]
pub struct DeadStream {
    timeout: Duration,
    last_activity: Instant,
    reported: bool,
    paused: bool,
}

impl DeadStream {
    /// Starts watching at `now`: a stream that never sends is dead after
    /// `timeout` too.
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            timeout,
            last_activity: now,
            reported: false,
            paused: false,
        }
    }

    /// An RTP packet arrived. Revives a stream already reported dead.
    pub fn on_packet(&mut self, now: Instant) {
        if now > self.last_activity {
            self.last_activity = now;
        }
        self.reported = false;
    }

    /// Stops watching, e.g. while the far end holds the call with
    /// `a=sendonly`/`inactive` and legitimately sends nothing.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Watches again, counting silence from `now`.
    pub fn resume(&mut self, now: Instant) {
        self.paused = false;
        self.reported = false;
        self.last_activity = now;
    }

    /// When [`Self::handle_timeout`] next has something to say; None while
    /// paused or once the silence is reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.paused || self.reported {
            None
        } else {
            Some(self.last_activity + self.timeout)
        }
    }

    /// Reports the stream dead, once, when `timeout` has passed with no
    /// packet.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<StreamDead> {
        let deadline = self.poll_timeout()?;
        if now < deadline {
            return None;
        }
        self.reported = true;
        Some(StreamDead {
            last_activity: self.last_activity,
            silent_for: now.saturating_duration_since(self.last_activity),
        })
    }

    /// True after a report and until the next packet.
    pub fn is_dead(&self) -> bool {
        self.reported
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timing_on_a_virtual_clock() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut d = DeadStream::new(Duration::from_secs(5), t0);
        assert_eq!(d.poll_timeout(), Some(s(5000)));
        d.on_packet(s(3000));
        assert_eq!(d.poll_timeout(), Some(s(8000)));
        assert_eq!(d.handle_timeout(s(7999)), None);
        assert!(!d.is_dead());
        let dead = d.handle_timeout(s(8250)).unwrap();
        assert_eq!(dead.last_activity, s(3000));
        assert_eq!(dead.silent_for, Duration::from_millis(5250));
        assert!(d.is_dead());
        // Reported once only.
        assert_eq!(d.handle_timeout(s(9000)), None);
        assert_eq!(d.poll_timeout(), None);
        // The phone comes back.
        d.on_packet(s(10_000));
        assert!(!d.is_dead());
        assert_eq!(d.poll_timeout(), Some(s(15_000)));
        // A packet stamped earlier than the last one does not rewind.
        d.on_packet(s(9_000));
        assert_eq!(d.poll_timeout(), Some(s(15_000)));
    }

    #[test]
    fn never_sending_stream_is_dead_and_hold_pauses() {
        let t0 = Instant::now();
        let mut d = DeadStream::new(Duration::from_secs(2), t0);
        d.pause();
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(d.handle_timeout(t0 + Duration::from_secs(60)), None);
        d.resume(t0 + Duration::from_secs(60));
        assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(62)));
        assert!(d.handle_timeout(t0 + Duration::from_secs(62)).is_some());
    }
}
