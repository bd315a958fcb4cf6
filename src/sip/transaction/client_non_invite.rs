//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6), with a
//! `Held` state before it for a CANCEL that may not be sent yet (§9.1).
//!
//! ```text
//!   Held --provisional to the INVITE / send--+
//!                                            v
//!   request from TU / send ----------------> Trying --+ Timer E / send (2x, at most T2)
//!                                     1xx     |  |
//!                 +-- Proceeding <-- to TU ---+  | Timer F (64*T1) / inform TU --> Terminated
//!  Timer E / send |    |  | 1xx / to TU          |
//!  (every T2)     +----+  | 200-699 / to TU      | 200-699 / to TU
//!                         v                      |
//!                      Completed <---------------+
//!                         | responses / absorb
//!                         | Timer K (T4 unreliable, 0 reliable)
//!                         v
//!                     Terminated
//! ```

use std::time::Instant;

use super::timers::{earliest, unless_reliable, Fired, Retransmit};
use super::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// RFC 3261 §9.1: a CANCEL whose INVITE has had no provisional response
    /// yet; it is sent when one arrives, or dropped if a final one does.
    Held,
    Trying {
        e: Option<Retransmit>,
        f: Instant,
    },
    Proceeding {
        e: Option<Retransmit>,
        f: Instant,
    },
    Completed {
        k: Instant,
    },
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientNonInvite {
    pub(super) state: State,
    reliable: bool,
}

impl ClientNonInvite {
    /// Not sent yet (Held) until [`ClientNonInvite::start`].
    pub(super) fn new(reliable: bool) -> Self {
        ClientNonInvite {
            state: State::Held,
            reliable,
        }
    }

    /// The request goes out now; the layer transmits it.
    pub(super) fn start(&mut self, now: Instant, config: &TimerConfig) {
        if self.state == State::Held {
            self.state = State::Trying {
                e: Retransmit::start(now, config.t1, self.reliable),
                f: now + config.t1x64(),
            };
        }
    }

    /// A response matched this transaction: whether it goes to the TU.
    pub(super) fn on_response(&mut self, status: u16, now: Instant, config: &TimerConfig) -> bool {
        match self.state {
            State::Trying { e, f } | State::Proceeding { e, f } if status < 200 => {
                self.state = State::Proceeding { e, f };
                true
            }
            State::Trying { .. } | State::Proceeding { .. } => {
                self.state = match unless_reliable(now, self.reliable, config.t4) {
                    Some(k) => State::Completed { k },
                    None => State::Terminated,
                };
                true
            }
            // Completed absorbs retransmissions; a held request was never
            // sent, so nothing can answer it.
            State::Held | State::Completed { .. } | State::Terminated => false,
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant, config: &TimerConfig) -> Fired {
        match &mut self.state {
            State::Trying { f, .. } | State::Proceeding { f, .. } if *f <= now => {
                self.state = State::Terminated;
                Fired::Timeout
            }
            State::Trying { e: Some(e), .. } if e.at <= now => {
                e.rearm(now, (e.interval * 2).min(config.t2));
                Fired::Retransmit
            }
            // RFC 3261 §17.1.2.2: after a provisional response, every T2.
            State::Proceeding { e: Some(e), .. } if e.at <= now => {
                e.rearm(now, config.t2);
                Fired::Retransmit
            }
            State::Completed { k } if *k <= now => {
                self.state = State::Terminated;
                Fired::Terminated
            }
            _ => Fired::Idle,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Trying { e, f } | State::Proceeding { e, f } => {
                earliest(&[e.map(|e| e.at), Some(f)])
            }
            State::Completed { k } => Some(k),
            State::Held | State::Terminated => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(tx: &mut ClientNonInvite, c: &TimerConfig, t0: Instant, until: Duration) -> Vec<u128> {
        let mut sent = Vec::new();
        while let Some(at) = tx.deadline().filter(|at| *at - t0 <= until) {
            if tx.on_timer(at, c) == Fired::Retransmit {
                sent.push((at - t0).as_millis());
            }
        }
        sent
    }

    #[test]
    fn rfc3261_17_1_2_2_timer_e_caps_at_t2() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ClientNonInvite::new(false);
        tx.start(t0, &c);
        assert_eq!(
            run(&mut tx, &c, t0, Duration::from_secs(16)),
            [500, 1500, 3500, 7500, 11500, 15500]
        );
    }

    #[test]
    fn held_request_has_no_timers_until_started() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ClientNonInvite::new(false);
        assert_eq!(tx.deadline(), None);
        assert!(!tx.on_response(200, t0, &c));
        tx.start(t0, &c);
        assert_eq!(tx.deadline(), Some(t0 + c.t1));
    }
}
