//! The gateway registering with carrier trunks (RFC 3261 §10.2): the client
//! side of REGISTER, sans-IO.
//!
//! One [`TrunkRegistration`] per trunk with a `[trunks.register]` section.
//! It decides which REGISTER to send and when, and reads the answers; the
//! endpoint owns the transport and the transaction layer. Driving it:
//!
//! 1. `poll_request(now)` until `None`; send each request in a non-INVITE
//!    client transaction towards the trunk's peer, and remember which trunk
//!    the `ClientTxId` belongs to. At most one request is in flight at a
//!    time (RFC 3261 §10.2: no new REGISTER before the previous one has a
//!    final response or has timed out).
//! 2. Feed that transaction's responses to `on_response(now, &response)`
//!    (provisional ones are ignored), its timeout (Timer F) to
//!    `on_timeout(now)` and a transport failure to
//!    `on_transport_error(now)`; then `poll_request(now)` again, since a
//!    challenge or a 423 is answered at once.
//! 3. Log what `poll_event()` reports.
//! 4. Fold `poll_timeout()` into the endpoint's deadline; when it passes,
//!    call `handle_timeout(now)` and then `poll_request(now)`.
//! 5. At shutdown, `shutdown(now)` and keep driving until
//!    [`RegistrationState::Unregistered`] (or until the process gives up).
//!
//! Identifiers: the Call-ID and From tag are fixed for the life of the
//! registration (RFC 3261 §10.2: one Call-ID for all REGISTERs to a
//! registrar, so that it can order them by CSeq) and come in the configuration.
//! Via branches and digest cnonces must be fresh and unpredictable for
//! every request; they come from a [`TokenSource`] the endpoint supplies
//! (random in production, a counter in tests).
//!
//! The Via's sent-by comes from a template in the configuration rather
//! than a per-request argument: it is the address of the socket requests
//! towards this trunk leave from, which does not change while the
//! registration lives, and this keeps `poll_request` free of arguments the
//! endpoint would have to rebuild on every poll.

mod config;
#[cfg(test)]
mod tests;
mod timing;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::message::{
    CSeq, Contacts, HeaderName, Headers, Method, NameAddr, Request, Response, Uri, BRANCH_MAGIC,
};

pub use crate::sip::auth::ChallengeError;
use crate::sip::auth::{Challenger, ClientAuth};
pub use config::{ConfigError, RegistrationConfig};

/// Fresh unpredictable tokens, one per call: Via branches (after the
/// `z9hG4bK` cookie) and digest cnonces. RFC 3261 §8.1.1.7 and §19.3 want
/// branches unique and unguessable; 64 random bits in hex are plenty.
pub type TokenSource = Box<dyn FnMut() -> String + Send>;

/// Answers to challenges and 423s sent in a row without reaching a final
/// outcome. A legitimate exchange needs at most about four (a proxy's 407,
/// the registrar's 401, a 423, a stale nonce); beyond that the server is
/// looping and we back off instead of flooding it.
const MAX_IMMEDIATE_RETRIES: u32 = 6;

/// RFC 3261 §8.1.1.5: CSeq numbers stay below 2^31.
const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Where a registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registered yet (or no longer): a REGISTER is on its way or about
    /// to be.
    Registering,
    /// The registrar holds our binding until `until` at least (counted from
    /// when the REGISTER was sent). Refreshes happen in this state.
    Registered { until: Instant },
    /// The last attempt failed; the next is due at `retry_at`. A binding
    /// from an earlier success may still be live at the registrar.
    Failed { retry_at: Instant, reason: Failure },
    /// `shutdown` was called: the un-REGISTER is on its way.
    Unregistering,
    /// Done: the binding was removed, or there was none, or the registrar
    /// could not be reached. Nothing more is sent.
    Unregistered,
}

/// Why a registration attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Failure {
    /// A final response other than 2xx, 401, 407 or (answerable) 423.
    #[error("registrar answered {status} {reason}")]
    Rejected { status: u16, reason: String },
    /// Our answer to a challenge was challenged again without `stale`.
    #[error("credentials refused for realm {realm:?}")]
    BadCredentials { realm: String },
    /// A 401 or 407 that we cannot answer.
    #[error("cannot answer the challenge: {0}")]
    Challenge(#[from] ChallengeError),
    /// A 423 whose Min-Expires is missing or not above what we asked.
    #[error("423 without a Min-Expires above the {asked} s asked for")]
    BadMinExpires { asked: u32 },
    /// A 2xx granting our contact a lifetime of zero.
    #[error("the registrar accepted the REGISTER but granted no lifetime")]
    NotBound,
    /// Too many challenges or 423s in a row (see `MAX_IMMEDIATE_RETRIES`).
    #[error("no final answer after {0} immediate retries")]
    NoProgress(u32),
    /// No final response: the transaction timed out (Timer F).
    #[error("no answer from the registrar")]
    Timeout,
    /// The transport could not deliver the request.
    #[error("transport error towards the registrar")]
    Transport,
}

/// What happened, for the endpoint to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// A 2xx bound our contact for `expires`; the next refresh is at
    /// `refresh_at`. `renewed` is true for a refresh of a live registration
    /// (worth a debug line), false when it registers anew (worth info).
    Registered {
        trunk: String,
        expires: Duration,
        refresh_at: Instant,
        renewed: bool,
    },
    /// The binding expired before a refresh succeeded: the carrier no
    /// longer routes calls to us.
    Lapsed { trunk: String },
    /// An attempt failed; the next is at `retry_at`.
    Failed {
        trunk: String,
        reason: Failure,
        retry_at: Instant,
    },
    /// After `shutdown`: the binding is gone (`Ok`), or the un-REGISTER
    /// failed and the binding will expire on its own.
    Unregistered {
        trunk: String,
        result: Result<(), Failure>,
    },
}

/// The REGISTER awaiting its final response.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    cseq: u32,
    sent_at: Instant,
    /// The Expires asked for; 0 for the un-REGISTER.
    expires: u32,
}

impl InFlight {
    fn is_unregister(&self) -> bool {
        self.expires == 0
    }
}

/// The registration of one trunk with its carrier's registrar.
pub struct TrunkRegistration {
    config: RegistrationConfig,
    tokens: TokenSource,
    /// The lifetime asked for, in seconds (raised by 423s).
    asked: u32,
    /// The CSeq of the last request sent.
    cseq: u32,
    state: RegistrationState,
    /// When the next REGISTER is due (never while one is in flight).
    due: Option<Instant>,
    in_flight: Option<InFlight>,
    shutting_down: bool,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    /// Challenges and 423s answered since the last final outcome.
    immediate_retries: u32,
    auth: ClientAuth,
    /// The latest time a binding of ours may still exist at the registrar:
    /// decides whether shutdown needs an un-REGISTER.
    bound_until: Option<Instant>,
    events: VecDeque<RegistrationEvent>,
}

impl fmt::Debug for TrunkRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkRegistration")
            .field("trunk", &self.config.trunk)
            .field("state", &self.state)
            .field("cseq", &self.cseq)
            .field("due", &self.due)
            .finish_non_exhaustive()
    }
}

impl TrunkRegistration {
    /// A registration whose first REGISTER is due at `now`.
    pub fn new(mut config: RegistrationConfig, tokens: TokenSource, now: Instant) -> Self {
        config.contact.params.remove("expires");
        let asked = secs(config.expires).max(1);
        TrunkRegistration {
            config,
            tokens,
            asked,
            cseq: 0,
            state: RegistrationState::Registering,
            due: Some(now),
            in_flight: None,
            shutting_down: false,
            failures: 0,
            immediate_retries: 0,
            auth: ClientAuth::default(),
            bound_until: None,
            events: VecDeque::new(),
        }
    }

    /// The trunk's name.
    pub fn trunk(&self) -> &str {
        &self.config.trunk
    }

    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// The REGISTER to send now, if one is due: the initial one, a refresh,
    /// a retry, an answer to a challenge or a 423, or the un-REGISTER after
    /// [`shutdown`](Self::shutdown).
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some() || self.due.is_none_or(|due| due > now) {
            return None;
        }
        self.due = None;
        let expires = if self.shutting_down { 0 } else { self.asked };
        // RFC 3261 §10.2: the CSeq grows by one with every REGISTER of the
        // Call-ID (capped below 2^31: reached after decades of refreshes).
        self.cseq = self.cseq.saturating_add(1).min(MAX_CSEQ);
        let uri = Uri::Sip(self.config.registrar.clone());
        let credentials = match self.auth.credentials(
            "REGISTER",
            &uri.to_string(),
            &self.config.auth_username,
            self.config.password.expose(),
            &mut *self.tokens,
        ) {
            Ok(headers) => headers,
            Err(error) => {
                // Only challenges we can answer are kept, so this does not
                // happen; if it did, retrying later starts afresh.
                self.fail(
                    now,
                    expires == 0,
                    ChallengeError::Unusable(error).into(),
                    None,
                );
                return None;
            }
        };
        let aor = NameAddr::new(self.config.aor.clone().into());
        let mut headers = Headers::new(
            aor.clone().with_tag(&self.config.from_tag),
            aor,
            self.config.call_id.clone(),
            CSeq {
                seq: self.cseq,
                method: Method::Register,
            },
        );
        let mut via = self.config.via.clone();
        via.params
            .set("branch", Some(format!("{BRANCH_MAGIC}{}", (self.tokens)())));
        headers.via.push(via);
        headers.max_forwards = Some(70);
        // RFC 3261 §10.2.2: the un-REGISTER names the same contact with
        // Expires: 0.
        headers.contact = Contacts::List(vec![self.config.contact.clone()]);
        headers.push(HeaderName::Expires, expires.to_string());
        for (name, value) in credentials {
            headers.push(name, value);
        }
        self.in_flight = Some(InFlight {
            cseq: self.cseq,
            sent_at: now,
            expires,
        });
        if matches!(self.state, RegistrationState::Failed { .. }) {
            self.state = RegistrationState::Registering;
        }
        Some(Request {
            method: Method::Register,
            uri,
            headers,
            body: Bytes::new(),
        })
    }

    /// A response to the REGISTER in flight. Responses to anything else
    /// (another CSeq or Call-ID) are ignored, as are provisional ones.
    pub fn on_response(&mut self, now: Instant, response: &Response) {
        let Some(flight) = self.in_flight else {
            return;
        };
        let cseq = &response.headers.cseq;
        if cseq.seq != flight.cseq
            || cseq.method != Method::Register
            || response.headers.call_id != self.config.call_id
            || response.is_provisional()
        {
            return;
        }
        self.in_flight = None;
        if self.shutting_down && !flight.is_unregister() {
            // The REGISTER that was in flight at shutdown: all that matters
            // is whether it left a binding to remove.
            if response.is_success() {
                self.record_binding(now, response, flight);
            }
            self.continue_shutdown(now);
            return;
        }
        match response.status {
            200..=299 => self.on_success(now, response, flight),
            401 => self.on_challenge(now, response, flight, Challenger::Registrar),
            407 => self.on_challenge(now, response, flight, Challenger::Proxy),
            423 if !flight.is_unregister() => self.on_too_brief(now, response, flight),
            status => {
                // RFC 3261 §20.33: Retry-After says when to come back (503,
                // and also 404, 413, 480, 486, 500, 600, 603).
                let retry_after = response
                    .headers
                    .get(&HeaderName::RetryAfter)
                    .and_then(timing::delta_seconds)
                    .map(|s| Duration::from_secs(s.into()));
                let failure = Failure::Rejected {
                    status,
                    reason: response.reason.clone(),
                };
                self.fail(now, flight.is_unregister(), failure, retry_after);
            }
        }
    }

    /// The REGISTER in flight got no final response (Timer F, RFC 3261
    /// §17.1.2.2): treated like a 408 (§8.1.3.1).
    pub fn on_timeout(&mut self, now: Instant) {
        self.lost(now, Failure::Timeout);
    }

    /// The transport could not send the REGISTER in flight (RFC 3261
    /// §17.1.4): treated like a 503 without Retry-After (§8.1.3.1).
    pub fn on_transport_error(&mut self, now: Instant) {
        self.lost(now, Failure::Transport);
    }

    /// Removes our binding: the next request is a REGISTER with Expires: 0
    /// (answering challenges as usual), after which the registration is
    /// [`Unregistered`](RegistrationState::Unregistered). A REGISTER in
    /// flight is waited for first (RFC 3261 §10.2). When no binding can
    /// exist (never registered, nothing in flight), it is at once.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutting_down || self.state == RegistrationState::Unregistered {
            return;
        }
        self.shutting_down = true;
        self.state = RegistrationState::Unregistering;
        self.due = None;
        if self.in_flight.is_none() {
            self.continue_shutdown(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) and
    /// [`poll_request`](Self::poll_request) next have work: a REGISTER due,
    /// or the expiry of a binding whose refresh is still in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let due = if self.in_flight.is_none() {
            self.due
        } else {
            None
        };
        let lapse = match self.state {
            RegistrationState::Registered { until } => Some(until),
            _ => None,
        };
        match (due, lapse) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Timer work: a binding whose refresh has not succeeded by its expiry
    /// is lost ([`RegistrationEvent::Lapsed`]). Due requests are handed out
    /// by [`poll_request`](Self::poll_request).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let RegistrationState::Registered { until } = self.state {
            if until <= now {
                self.state = RegistrationState::Registering;
                self.events.push_back(RegistrationEvent::Lapsed {
                    trunk: self.config.trunk.clone(),
                });
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    fn on_success(&mut self, now: Instant, response: &Response, flight: InFlight) {
        if flight.is_unregister() {
            self.bound_until = None;
            self.finish(Ok(()));
            return;
        }
        let Some(granted) = self.record_binding(now, response, flight) else {
            self.fail(now, false, Failure::NotBound, None);
            return;
        };
        self.auth.accepted();
        self.failures = 0;
        self.immediate_retries = 0;
        let until = flight.sent_at + granted;
        let refresh_at = flight.sent_at + timing::refresh_delay(granted);
        let renewed = matches!(self.state, RegistrationState::Registered { .. });
        self.state = RegistrationState::Registered { until };
        self.due = Some(refresh_at);
        self.events.push_back(RegistrationEvent::Registered {
            trunk: self.config.trunk.clone(),
            expires: granted,
            refresh_at,
            renewed,
        });
    }

    /// Notes the binding a 2xx to a REGISTER created, and returns its
    /// lifetime; `None` when the lifetime granted is zero.
    fn record_binding(
        &mut self,
        now: Instant,
        response: &Response,
        flight: InFlight,
    ) -> Option<Duration> {
        let granted = timing::granted(response, &self.config.contact.uri, flight.expires)
            .min(timing::MAX_TRACKED_LIFETIME);
        if granted == 0 {
            return None;
        }
        let granted = Duration::from_secs(granted.into());
        // The registrar started the clock when the request arrived, before
        // `now`: the binding may last until `now + granted` at the latest.
        self.note_possible_binding(now + granted);
        Some(granted)
    }

    fn note_possible_binding(&mut self, until: Instant) {
        self.bound_until = Some(self.bound_until.map_or(until, |b| b.max(until)));
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        response: &Response,
        flight: InFlight,
        who: Challenger,
    ) {
        if !self.retry_at_once() {
            let failure = Failure::NoProgress(self.immediate_retries);
            self.fail(now, flight.is_unregister(), failure, None);
            return;
        }
        match self.auth.challenged(who, response) {
            Ok(()) => self.due = Some(now),
            Err(ChallengeError::BadCredentials { realm }) => {
                let failure = Failure::BadCredentials { realm };
                self.fail(now, flight.is_unregister(), failure, None);
            }
            Err(error) => self.fail(now, flight.is_unregister(), error.into(), None),
        }
    }

    /// RFC 3261 §10.2.8: a 423 names the shortest lifetime the registrar
    /// accepts in Min-Expires; we ask for that from now on.
    fn on_too_brief(&mut self, now: Instant, response: &Response, flight: InFlight) {
        let min = response
            .headers
            .get(&HeaderName::MinExpires)
            .and_then(timing::delta_seconds);
        let Some(min) = min.filter(|&min| min > flight.expires) else {
            let failure = Failure::BadMinExpires {
                asked: flight.expires,
            };
            self.fail(now, false, failure, None);
            return;
        };
        if !self.retry_at_once() {
            let failure = Failure::NoProgress(self.immediate_retries);
            self.fail(now, false, failure, None);
            return;
        }
        self.asked = min;
        self.due = Some(now);
    }

    /// Counts an immediate retry; false when there have been too many.
    fn retry_at_once(&mut self) -> bool {
        if self.immediate_retries >= MAX_IMMEDIATE_RETRIES {
            return false;
        }
        self.immediate_retries += 1;
        true
    }

    /// The request in flight ended without a response.
    fn lost(&mut self, now: Instant, failure: Failure) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        if !flight.is_unregister() {
            // It may have reached the registrar and created a binding.
            let lifetime = flight.expires.min(timing::MAX_TRACKED_LIFETIME);
            self.note_possible_binding(now + Duration::from_secs(lifetime.into()));
        }
        if self.shutting_down && !flight.is_unregister() {
            self.continue_shutdown(now);
            return;
        }
        self.fail(now, flight.is_unregister(), failure, None);
    }

    /// An attempt failed: schedule a retry after the backoff (or the
    /// server's Retry-After, capped like the backoff), or end the shutdown.
    fn fail(
        &mut self,
        now: Instant,
        unregister: bool,
        reason: Failure,
        retry_after: Option<Duration>,
    ) {
        self.immediate_retries = 0;
        self.auth.clear();
        if unregister {
            // Shutting down: the binding will expire on its own.
            self.finish(Err(reason));
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = match retry_after {
            Some(delay) => delay.min(timing::BACKOFF_MAX),
            None => timing::backoff(self.failures, self.config.call_id.as_str()),
        };
        let retry_at = now + delay;
        self.due = Some(retry_at);
        self.state = RegistrationState::Failed {
            retry_at,
            reason: reason.clone(),
        };
        self.events.push_back(RegistrationEvent::Failed {
            trunk: self.config.trunk.clone(),
            reason,
            retry_at,
        });
    }

    /// Shutting down with nothing in flight: un-REGISTER if a binding may
    /// exist, else we are done.
    fn continue_shutdown(&mut self, now: Instant) {
        if self.bound_until.is_some_and(|until| until > now) {
            self.due = Some(now);
        } else {
            self.finish(Ok(()));
        }
    }

    fn finish(&mut self, result: Result<(), Failure>) {
        self.state = RegistrationState::Unregistered;
        self.due = None;
        self.in_flight = None;
        self.events.push_back(RegistrationEvent::Unregistered {
            trunk: self.config.trunk.clone(),
            result,
        });
    }
}

/// Whole seconds of `d`, saturating at `u32::MAX`.
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
