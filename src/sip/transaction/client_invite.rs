//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by
//! RFC 6026 §7.2, Figure 3).
//!
//! ```text
//!   INVITE from TU / send
//!   Calling --+ Timer A / send (2x)
//!     |  |  | Timer B (64*T1) / inform TU -----------------------> Terminated
//!     |  |  | 2xx / to TU ----------------------+
//!     |  | 1xx / to TU                          v
//!     |  +---> Proceeding --+ 1xx / to TU    Accepted --+ 2xx / to TU
//!     |         |  |  2xx / to TU ----------->   | Timer M (64*T1)
//!     |         |  | (§9.1: 64*T1 after CANCEL)  v
//!     |         |  +-- / inform TU ---------> Terminated
//!     | 300-699 / to TU, send ACK
//!     v         v
//!   Completed --+ 300-699 / send ACK
//!     | Timer D (32 s unreliable, 0 reliable)
//!     v
//!   Terminated
//! ```

use std::time::{Duration, Instant};

use super::timers::{earliest, unless_reliable, Fired, Retransmit};
use super::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Calling {
        a: Option<Retransmit>,
        b: Instant,
    },
    /// `cancelled`: when a CANCEL was sent, the time after which the INVITE
    /// is given up if no final response came (RFC 3261 §9.1).
    Proceeding {
        cancelled: Option<Instant>,
    },
    /// RFC 6026: a 2xx came; further 2xx (forks, retransmissions) go to the
    /// TU until Timer M.
    Accepted {
        m: Instant,
    },
    Completed {
        d: Instant,
    },
    Terminated,
}

/// What to do with a response matching this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reaction {
    PassUp,
    /// The first non-2xx final response: pass it up, build and send the ACK.
    PassUpAndAck,
    /// A retransmission of the non-2xx final response: send the ACK again.
    ResendAck,
    /// A 2xx after a non-2xx final (another fork): the transaction is done
    /// with it, but the TU may need to ACK it and hang up.
    Stray,
    Absorb,
}

/// Timer D: "at least 32 seconds" (RFC 3261 §17.1.1.2), to outlast the
/// server's Timer H, which is 64*T1 with the server's T1.
fn timer_d(config: &TimerConfig) -> Duration {
    config.t1x64().max(Duration::from_secs(32))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientInvite {
    pub(super) state: State,
    pub(super) reliable: bool,
}

impl ClientInvite {
    /// The INVITE is sent now; the layer transmits it.
    pub(super) fn start(now: Instant, reliable: bool, config: &TimerConfig) -> Self {
        ClientInvite {
            state: State::Calling {
                a: Retransmit::start(now, config.t1, reliable),
                b: now + config.t1x64(),
            },
            reliable,
        }
    }

    pub(super) fn on_response(
        &mut self,
        status: u16,
        now: Instant,
        config: &TimerConfig,
    ) -> Reaction {
        match self.state {
            State::Calling { .. } | State::Proceeding { .. } if status < 200 => {
                if let State::Calling { .. } = self.state {
                    self.state = State::Proceeding { cancelled: None };
                }
                Reaction::PassUp
            }
            State::Calling { .. } | State::Proceeding { .. } if status < 300 => {
                self.state = State::Accepted {
                    m: now + config.t1x64(),
                };
                Reaction::PassUp
            }
            State::Calling { .. } | State::Proceeding { .. } => {
                self.state = match unless_reliable(now, self.reliable, timer_d(config)) {
                    Some(d) => State::Completed { d },
                    None => State::Terminated,
                };
                Reaction::PassUpAndAck
            }
            State::Accepted { .. } if (200..300).contains(&status) => Reaction::PassUp,
            State::Completed { .. } if status >= 300 => Reaction::ResendAck,
            State::Completed { .. } if status >= 200 => Reaction::Stray,
            State::Accepted { .. } | State::Completed { .. } | State::Terminated => {
                Reaction::Absorb
            }
        }
    }

    /// Whether a CANCEL may be sent now: only after a provisional response
    /// and before a final one (RFC 3261 §9.1).
    pub(super) fn may_cancel(&self) -> bool {
        matches!(self.state, State::Proceeding { .. })
    }

    /// Whether a final response has arrived (or the transaction ended
    /// without one): a held CANCEL is dropped then.
    pub(super) fn is_over(&self) -> bool {
        matches!(
            self.state,
            State::Accepted { .. } | State::Completed { .. } | State::Terminated
        )
    }

    /// RFC 3261 §9.1: a CANCEL was sent; if no final response arrives within
    /// 64*T1, the INVITE is considered cancelled and destroyed.
    pub(super) fn on_cancel_sent(&mut self, now: Instant, config: &TimerConfig) {
        if let State::Proceeding { cancelled: None } = self.state {
            self.state = State::Proceeding {
                cancelled: Some(now + config.t1x64()),
            };
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant) -> Fired {
        match &mut self.state {
            State::Calling { b, .. } if *b <= now => {
                self.state = State::Terminated;
                Fired::Timeout
            }
            // Timer A doubles without a cap (unlike E and G).
            State::Calling { a: Some(a), .. } if a.at <= now => {
                a.rearm(now, a.interval * 2);
                Fired::Retransmit
            }
            State::Proceeding {
                cancelled: Some(at),
            } if *at <= now => {
                self.state = State::Terminated;
                Fired::Timeout
            }
            State::Accepted { m: at } | State::Completed { d: at } if *at <= now => {
                self.state = State::Terminated;
                Fired::Terminated
            }
            _ => Fired::Idle,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Calling { a, b } => earliest(&[a.map(|a| a.at), Some(b)]),
            State::Proceeding { cancelled } => cancelled,
            State::Accepted { m } => Some(m),
            State::Completed { d } => Some(d),
            State::Terminated => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_17_1_1_2_final_responses() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ClientInvite::start(t0, false, &c);
        assert!(!tx.may_cancel());
        assert_eq!(tx.on_response(180, t0, &c), Reaction::PassUp);
        assert!(tx.may_cancel());
        assert_eq!(tx.on_response(486, t0, &c), Reaction::PassUpAndAck);
        assert!(tx.is_over());
        assert_eq!(tx.on_response(486, t0, &c), Reaction::ResendAck);
        assert_eq!(tx.on_response(200, t0, &c), Reaction::Stray);
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(32)));

        let mut tcp = ClientInvite::start(t0, true, &c);
        assert_eq!(
            tcp.deadline(),
            Some(t0 + Duration::from_secs(32)),
            "only Timer B on reliable transports"
        );
        assert_eq!(tcp.on_response(603, t0, &c), Reaction::PassUpAndAck);
        assert_eq!(
            tcp.state,
            State::Terminated,
            "Timer D is zero on reliable transports"
        );
    }

    #[test]
    fn rfc3261_9_1_cancelled_invite_gives_up_after_64_t1() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ClientInvite::start(t0, true, &c);
        tx.on_response(180, t0, &c);
        assert_eq!(tx.deadline(), None, "no timer in Proceeding");
        tx.on_cancel_sent(t0, &c);
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(tx.on_timer(t0 + Duration::from_secs(32)), Fired::Timeout);
    }
}
