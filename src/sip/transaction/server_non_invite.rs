//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!                    Request received / pass to TU
//!   Trying --1xx from TU / send--> Proceeding --+ 1xx from TU / send
//!     |                              |  request / send last response
//!     | 200-699 from TU / send       | 200-699 from TU / send
//!     +------------> Completed <-----+
//!                      | request / send last response
//!                      | Timer J (64*T1 unreliable, 0 reliable)
//!                      v
//!                  Terminated
//! ```

use std::time::Instant;

use super::timers::{unless_reliable, Fired};
use super::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Trying,
    Proceeding,
    Completed { j: Instant },
    Terminated,
}

/// The TU tried to respond after the final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FinalAlreadySent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerNonInvite {
    pub(super) state: State,
    reliable: bool,
}

impl ServerNonInvite {
    pub(super) fn new(reliable: bool) -> Self {
        ServerNonInvite {
            state: State::Trying,
            reliable,
        }
    }

    /// A retransmission of the request: whether to send the last response
    /// again. In Trying there is none yet, and the request is absorbed.
    pub(super) fn on_request(&self) -> bool {
        matches!(self.state, State::Proceeding | State::Completed { .. })
    }

    /// A response from the TU, which the layer sends if this returns `Ok`.
    pub(super) fn on_tu_response(
        &mut self,
        status: u16,
        now: Instant,
        config: &TimerConfig,
    ) -> Result<(), FinalAlreadySent> {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => self.state = State::Proceeding,
            State::Trying | State::Proceeding => {
                self.state = match unless_reliable(now, self.reliable, config.t1x64()) {
                    Some(j) => State::Completed { j },
                    None => State::Terminated,
                }
            }
            State::Completed { .. } | State::Terminated => return Err(FinalAlreadySent),
        }
        Ok(())
    }

    pub(super) fn on_timer(&mut self, now: Instant) -> Fired {
        match self.state {
            State::Completed { j } if j <= now => {
                self.state = State::Terminated;
                Fired::Terminated
            }
            _ => Fired::Idle,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Completed { j } => Some(j),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3261_17_2_2_figure_8() {
        let (t0, c) = (Instant::now(), TimerConfig::default());
        let mut tx = ServerNonInvite::new(false);
        assert!(!tx.on_request(), "nothing to resend in Trying");
        assert_eq!(tx.on_tu_response(180, t0, &c), Ok(()));
        assert!(tx.on_request());
        assert_eq!(tx.on_tu_response(200, t0, &c), Ok(()));
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(tx.on_tu_response(200, t0, &c), Err(FinalAlreadySent));
        assert_eq!(tx.on_timer(t0 + Duration::from_secs(31)), Fired::Idle);
        assert_eq!(tx.on_timer(t0 + Duration::from_secs(32)), Fired::Terminated);
        let mut tcp = ServerNonInvite::new(true);
        assert_eq!(tcp.on_tu_response(404, t0, &c), Ok(()));
        assert_eq!(
            tcp.state,
            State::Terminated,
            "Timer J is zero on reliable transports"
        );
    }
}
