//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by
//! RFC 6026 §7.1, Figure 5).
//!
//! ```text
//!                  INVITE / pass to TU, send 100
//!   Proceeding --+ INVITE / send last provisional; 1xx from TU / send
//!     |      |
//!     |      | 2xx from TU / send                      2xx from TU / send
//!     |      +--------------------------> Accepted --+ ACK / pass to TU
//!     | 300-699 from TU / send                |        INVITE / absorb
//!     v                                       | Timer L (64*T1)
//!   Completed --+ INVITE / send response      v
//!     |  |        Timer G / send response   Terminated
//!     |  | Timer H (64*T1) / inform TU ---> Terminated
//!     | ACK
//!     v
//!   Confirmed --+ ACK, INVITE / absorb
//!     | Timer I (T4 unreliable, 0 reliable)
//!     v
//!   Terminated
//! ```

use std::time::Instant;

use super::server_non_invite::FinalAlreadySent;
use super::timers::{earliest, unless_reliable, Fired, Retransmit};
use super::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Proceeding,
    /// A non-2xx final response was sent: Timer G retransmits it (on
    /// unreliable transports) until the ACK, Timer H gives up.
    Completed {
        g: Option<Retransmit>,
        h: Instant,
    },
    Confirmed {
        i: Instant,
    },
    /// RFC 6026: a 2xx was sent; the TU retransmits it, the ACK goes to the
    /// TU, and INVITE retransmissions are absorbed until Timer L.
    Accepted {
        l: Instant,
    },
    Terminated,
}

/// What to do with an ACK matching this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckAction {
    Absorb,
    /// RFC 6026 §7.1: in Accepted the ACK (for the 2xx) goes to the TU.
    PassUp,
}

/// What to do with the TU's response once sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Keep it: it is resent on an INVITE retransmission or by Timer G.
    ForRetransmission,
    /// Forget it: a 2xx is retransmitted by the TU, never by the
    /// transaction (RFC 6026 §7.1).
    No,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerInvite {
    pub(super) state: State,
    reliable: bool,
}

impl ServerInvite {
    pub(super) fn new(reliable: bool) -> Self {
        ServerInvite {
            state: State::Proceeding,
            reliable,
        }
    }

    /// A retransmission of the INVITE: whether to send the last response
    /// again (the latest provisional in Proceeding, the final in Completed).
    pub(super) fn on_request(&self) -> bool {
        matches!(self.state, State::Proceeding | State::Completed { .. })
    }

    pub(super) fn on_ack(&mut self, now: Instant, config: &TimerConfig) -> AckAction {
        match self.state {
            State::Completed { .. } => {
                self.state = match unless_reliable(now, self.reliable, config.t4) {
                    Some(i) => State::Confirmed { i },
                    None => State::Terminated,
                };
                AckAction::Absorb
            }
            State::Accepted { .. } => AckAction::PassUp,
            // Nothing to acknowledge before a final response; in Confirmed
            // this is a retransmission of the ACK.
            State::Proceeding | State::Confirmed { .. } | State::Terminated => AckAction::Absorb,
        }
    }

    pub(super) fn on_tu_response(
        &mut self,
        status: u16,
        now: Instant,
        config: &TimerConfig,
    ) -> Result<Keep, FinalAlreadySent> {
        match self.state {
            State::Proceeding if status < 200 => Ok(Keep::ForRetransmission),
            State::Proceeding if status < 300 => {
                self.state = State::Accepted {
                    l: now + config.t1x64(),
                };
                Ok(Keep::No)
            }
            State::Proceeding => {
                self.state = State::Completed {
                    g: Retransmit::start(now, config.t1, self.reliable),
                    h: now + config.t1x64(),
                };
                Ok(Keep::ForRetransmission)
            }
            // RFC 6026 §7.1: the TU's 2xx retransmissions pass through.
            State::Accepted { .. } if (200..300).contains(&status) => Ok(Keep::No),
            State::Accepted { .. }
            | State::Completed { .. }
            | State::Confirmed { .. }
            | State::Terminated => Err(FinalAlreadySent),
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant, config: &TimerConfig) -> Fired {
        match &mut self.state {
            State::Completed { h, .. } if *h <= now => {
                self.state = State::Terminated;
                Fired::Timeout
            }
            State::Completed { g: Some(g), .. } if g.at <= now => {
                g.rearm(now, (g.interval * 2).min(config.t2));
                Fired::Retransmit
            }
            State::Confirmed { i: at } | State::Accepted { l: at } if *at <= now => {
                self.state = State::Terminated;
                Fired::Terminated
            }
            _ => Fired::Idle,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Completed { g, h } => earliest(&[g.map(|g| g.at), Some(h)]),
            State::Confirmed { i } => Some(i),
            State::Accepted { l } => Some(l),
            State::Proceeding | State::Terminated => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3261_17_2_1_timer_g_doubles_to_t2_until_h() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ServerInvite::new(false);
        assert_eq!(tx.on_tu_response(486, t0, &c), Ok(Keep::ForRetransmission));
        let mut fired = Vec::new();
        while let Some(at) = tx.deadline() {
            let outcome = tx.on_timer(at, &c);
            fired.push(((at - t0).as_millis(), outcome));
        }
        let retransmits: Vec<_> = fired
            .iter()
            .filter(|(_, f)| *f == Fired::Retransmit)
            .map(|(t, _)| *t)
            .collect();
        // 0.5, 1.5, 3.5, then every 4 s (T2) until H at 32 s.
        assert_eq!(
            retransmits,
            [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(fired.last(), Some(&(32000, Fired::Timeout)));
    }

    #[test]
    fn rfc6026_7_1_accepted_passes_2xx_and_ack() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ServerInvite::new(true);
        assert_eq!(tx.on_tu_response(200, t0, &c), Ok(Keep::No));
        assert!(
            !tx.on_request(),
            "INVITE retransmissions are absorbed in Accepted"
        );
        assert_eq!(tx.on_tu_response(200, t0, &c), Ok(Keep::No));
        assert_eq!(tx.on_tu_response(486, t0, &c), Err(FinalAlreadySent));
        assert_eq!(tx.on_ack(t0, &c), AckAction::PassUp);
        assert_eq!(
            tx.deadline(),
            Some(t0 + Duration::from_secs(32)),
            "Timer L runs on reliable transports too"
        );
    }
}
