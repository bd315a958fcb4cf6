//! Call detail records (CDRs): what happened to one call, for reports,
//! billing and the control API.
//!
//! The call layer keeps one [`CallRecordBuilder`] per call and feeds it as
//! things happen (queued, offered, answered, held, ended), each with the
//! wall-clock time it happened at; [`CallRecordBuilder::finish`] turns it
//! into a [`CallRecord`] with the derived durations. Pure: no clock is read,
//! nothing is written; `storage` persists the finished record.
//!
//! The arithmetic never panics: wall-clock times can step backwards (NTP),
//! so an interval whose end is before its start counts as zero.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::config::{AgentId, QueueName};
use crate::media::control::LegReport;

/// Most IVR digits kept per call. A caller pressing keys for an hour must
/// not grow a record without bound; menus need a handful.
pub const MAX_IVR_CHOICES: usize = 64;

/// Reason stored when a call's record is finished without
/// [`CallRecordBuilder::ended`] having been called.
pub const NO_END_REPORTED: &str = "no end reported";

/// Text that names no variant of one of the record's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {found:?}")]
pub struct UnknownName {
    /// Which enum was being parsed ("outcome", "direction", ...).
    pub kind: &'static str,
    pub found: String,
}

/// Declares a fieldless enum with stable lower-case names: stored in the
/// database and used in the control API, so they must never change.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { kind: $kind, found: text.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Who placed the call, seen from the gateway.
    CallDirection, "direction" {
        /// From a trunk or an outside caller to the call centre.
        Inbound = "inbound",
        /// From an agent to an outside number.
        Outbound = "outbound",
        /// Between two of our own extensions.
        Internal = "internal",
    }
);

named_enum!(
    /// How the call ended, from the caller's point of view.
    CallOutcome, "outcome" {
        /// An agent (or the dialled party) answered.
        Answered = "answered",
        /// The caller hung up before anyone answered.
        Abandoned = "abandoned",
        /// The queue sent the caller elsewhere (overflow destination, no
        /// agents logged in, queue full).
        Overflowed = "overflowed",
        /// The caller reached the queue's maximum wait.
        TimedOut = "timed_out",
        /// The call never reached a queue or an agent: an error or no route.
        Failed = "failed",
    }
);

named_enum!(
    /// Which side hung up.
    HungUpBy, "hung-up side" {
        Caller = "caller",
        Agent = "agent",
        /// The customer an agent called out to (outbound calls).
        Customer = "customer",
        /// The gateway ended the call (timeout, shutdown, error).
        Gateway = "gateway",
    }
);

named_enum!(
    /// How one offer to one agent ended.
    OfferResult, "offer result" {
        /// The agent picked up.
        Answered = "answered",
        /// The agent's phone rang for the queue's ring timeout.
        RingTimeout = "ring_timeout",
        /// The agent declined (486/603) or the phone refused the call.
        Rejected = "rejected",
        /// We stopped ringing: another agent answered first, the caller
        /// hung up or overflowed, or the call ended with the offer open.
        Cancelled = "cancelled",
        /// The offer could not be delivered (no binding, transport error).
        Failed = "failed",
    }
);

/// One time an agent's phone was rung for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRecord {
    pub agent: AgentId,
    /// When we started ringing.
    pub at: SystemTime,
    pub result: OfferResult,
    /// When the offer ended (answered, timed out, ...). `None` only for an
    /// offer the builder still has open.
    pub ended: Option<SystemTime>,
}

/// Media quality of one leg, as the media worker measured it when the leg
/// closed (RFC 3550 receiver statistics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegQuality {
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Packets lost on the way to us.
    pub lost: u64,
    /// Interarrival jitter (RFC 3550 A.8), milliseconds.
    pub jitter_ms: f64,
    /// Estimated mean opinion score, 1 to 4.5.
    pub mos: f64,
    /// Round trip from RTCP (RFC 3550 §6.4.1), when the phone reported one.
    pub rtt_ms: Option<f64>,
}

impl From<&LegReport> for LegQuality {
    fn from(report: &LegReport) -> Self {
        LegQuality {
            packets_received: report.packets_received,
            packets_sent: report.packets_sent,
            // Never negative (duplicates do not cancel losses), so the
            // fallback is unreachable in practice.
            lost: u64::try_from(report.stats.lost).unwrap_or(0),
            jitter_ms: report.stats.jitter_ms,
            mos: report.stats.mos,
            rtt_ms: report.stats.round_trip_ms,
        }
    }
}

/// What happened to one call: the finished record.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The caller leg's SIP Call-ID.
    pub id: String,
    pub direction: CallDirection,
    /// Who called (the From user or number as received).
    pub caller: String,
    /// What was dialled (the Request-URI user or number).
    pub dialled: String,
    /// The last queue the call was in: where it was answered or given up.
    pub queue: Option<QueueName>,
    /// Digits pressed in menus, in order (at most [`MAX_IVR_CHOICES`]).
    pub ivr_choices: String,
    /// Every agent rung, in the order they were rung.
    pub offers: Vec<OfferRecord>,
    /// Who answered.
    pub agent: Option<AgentId>,
    /// When the INVITE arrived.
    pub arrived: SystemTime,
    /// When the call first entered a queue.
    pub queued: Option<SystemTime>,
    /// When an agent (or the dialled party) answered.
    pub answered: Option<SystemTime>,
    pub ended: SystemTime,
    /// Time in queue: from first queued to answered, or to the end if
    /// nobody answered; zero if never queued.
    pub wait: Duration,
    /// From answered to the end, less the time on hold.
    pub talk: Duration,
    /// Time on hold, summed over every hold.
    pub hold: Duration,
    /// The agent's wrap-up after the call.
    pub wrap_up: Duration,
    pub outcome: CallOutcome,
    pub hung_up_by: Option<HungUpBy>,
    /// Why it ended, for people (a SIP status, "caller hung up", ...).
    pub end_reason: String,
    /// The recording, relative to the recording directory.
    pub recording: Option<PathBuf>,
    pub caller_quality: Option<LegQuality>,
    pub agent_quality: Option<LegQuality>,
}

/// How the call ended, as reported to the builder.
#[derive(Debug, Clone)]
struct End {
    at: SystemTime,
    outcome: CallOutcome,
    hung_up_by: Option<HungUpBy>,
    reason: String,
}

/// Collects one call's events as they happen; [`CallRecordBuilder::finish`]
/// makes the record. Every method tolerates events out of order or missing
/// (an answer without an offer, a hold end without a start): a record is
/// written for every call, including the ones that went wrong.
#[derive(Debug, Clone)]
pub struct CallRecordBuilder {
    id: String,
    direction: CallDirection,
    caller: String,
    dialled: String,
    arrived: SystemTime,
    queue: Option<QueueName>,
    queued: Option<SystemTime>,
    ivr_choices: String,
    offers: Vec<OfferRecord>,
    agent: Option<AgentId>,
    answered: Option<SystemTime>,
    hold: Duration,
    on_hold_since: Option<SystemTime>,
    wrap_up: Duration,
    recording: Option<PathBuf>,
    caller_quality: Option<LegQuality>,
    agent_quality: Option<LegQuality>,
    end: Option<End>,
    /// The latest time fed so far: the end of a call whose end was never
    /// reported.
    last_seen: SystemTime,
}

impl CallRecordBuilder {
    /// A call that arrived at `arrived`; `id` is the caller leg's Call-ID.
    pub fn new(
        id: impl Into<String>,
        direction: CallDirection,
        caller: impl Into<String>,
        dialled: impl Into<String>,
        arrived: SystemTime,
    ) -> Self {
        CallRecordBuilder {
            id: id.into(),
            direction,
            caller: caller.into(),
            dialled: dialled.into(),
            arrived,
            queue: None,
            queued: None,
            ivr_choices: String::new(),
            offers: Vec::new(),
            agent: None,
            answered: None,
            hold: Duration::ZERO,
            on_hold_since: None,
            wrap_up: Duration::ZERO,
            recording: None,
            caller_quality: None,
            agent_quality: None,
            end: None,
            last_seen: arrived,
        }
    }

    /// The call entered `queue`. Entering another queue later (overflow to
    /// a second queue) replaces the queue but keeps the first queued time,
    /// so the wait is the caller's whole wait.
    pub fn queued(&mut self, queue: QueueName, at: SystemTime) {
        self.seen(at);
        self.queue = Some(queue);
        self.queued.get_or_insert(at);
    }

    /// The caller pressed `digit` in a menu. Digits beyond
    /// [`MAX_IVR_CHOICES`] are not kept.
    pub fn ivr_digit(&mut self, digit: char) {
        if self.ivr_choices.chars().count() < MAX_IVR_CHOICES {
            self.ivr_choices.push(digit);
        }
    }

    /// We started ringing `agent`. An offer to the same agent that is still
    /// open (which the ACD never makes) is closed as cancelled first.
    pub fn offered(&mut self, agent: AgentId, at: SystemTime) {
        self.seen(at);
        self.offer_ended(&agent, at, OfferResult::Cancelled);
        self.offers.push(OfferRecord {
            agent,
            at,
            // Placeholder until the offer ends; `ended: None` marks it open.
            result: OfferResult::Cancelled,
            ended: None,
        });
    }

    /// `agent`'s open offer ended with `result`. Without an open offer for
    /// that agent, nothing changes.
    pub fn offer_ended(&mut self, agent: &AgentId, at: SystemTime, result: OfferResult) {
        self.seen(at);
        if let Some(offer) = self
            .offers
            .iter_mut()
            .rev()
            .find(|o| o.ended.is_none() && &o.agent == agent)
        {
            offer.result = result;
            offer.ended = Some(at);
        }
    }

    /// `agent` answered; closes that agent's open offer as answered. A
    /// second answer (a transfer, later) replaces the agent but keeps the
    /// first answer time, so the talk time covers the whole conversation.
    pub fn answered(&mut self, agent: AgentId, at: SystemTime) {
        self.offer_ended(&agent, at, OfferResult::Answered);
        self.agent = Some(agent);
        self.answered.get_or_insert(at);
    }

    /// The call was put on hold. A second start while on hold is ignored.
    pub fn hold_started(&mut self, at: SystemTime) {
        self.seen(at);
        self.on_hold_since.get_or_insert(at);
    }

    /// The call was taken off hold; the hold's length is added to the
    /// hold time. Without a hold in progress, nothing changes.
    pub fn hold_ended(&mut self, at: SystemTime) {
        self.seen(at);
        if let Some(since) = self.on_hold_since.take() {
            self.hold += elapsed(since, at);
        }
    }

    /// Where the call was recorded, relative to the recording directory.
    pub fn recording(&mut self, path: PathBuf) {
        self.recording = Some(path);
    }

    pub fn caller_quality(&mut self, quality: LegQuality) {
        self.caller_quality = Some(quality);
    }

    pub fn agent_quality(&mut self, quality: LegQuality) {
        self.agent_quality = Some(quality);
    }

    /// The answering agent's wrap-up time after the call.
    pub fn wrap_up(&mut self, wrap_up: Duration) {
        self.wrap_up = wrap_up;
    }

    /// The call ended. Only the first report counts: a later one (a
    /// cleanup path after the real end) does not overwrite it.
    pub fn ended(
        &mut self,
        at: SystemTime,
        outcome: CallOutcome,
        hung_up_by: Option<HungUpBy>,
        reason: impl Into<String>,
    ) {
        self.seen(at);
        if self.end.is_none() {
            self.end = Some(End {
                at,
                outcome,
                hung_up_by,
                reason: reason.into(),
            });
        }
    }

    /// The record. Offers still open are closed as cancelled at the end; a
    /// hold still open counts up to the end. Without a reported end, the
    /// call ended at the latest time fed, as [`CallOutcome::Failed`] with
    /// reason [`NO_END_REPORTED`].
    pub fn finish(self) -> CallRecord {
        let end = self.end.unwrap_or_else(|| End {
            at: self.last_seen,
            outcome: CallOutcome::Failed,
            hung_up_by: None,
            reason: NO_END_REPORTED.to_owned(),
        });
        let mut offers = self.offers;
        for offer in offers.iter_mut().filter(|o| o.ended.is_none()) {
            offer.result = OfferResult::Cancelled;
            offer.ended = Some(end.at);
        }
        let hold = self.hold
            + self
                .on_hold_since
                .map_or(Duration::ZERO, |s| elapsed(s, end.at));
        let wait = self.queued.map_or(Duration::ZERO, |q| {
            elapsed(q, self.answered.unwrap_or(end.at))
        });
        let talk = self
            .answered
            .map_or(Duration::ZERO, |a| elapsed(a, end.at).saturating_sub(hold));
        CallRecord {
            id: self.id,
            direction: self.direction,
            caller: self.caller,
            dialled: self.dialled,
            queue: self.queue,
            ivr_choices: self.ivr_choices,
            offers,
            agent: self.agent,
            arrived: self.arrived,
            queued: self.queued,
            answered: self.answered,
            ended: end.at,
            wait,
            talk,
            hold,
            wrap_up: self.wrap_up,
            outcome: end.outcome,
            hung_up_by: end.hung_up_by,
            end_reason: end.reason,
            recording: self.recording,
            caller_quality: self.caller_quality,
            agent_quality: self.agent_quality,
        }
    }

    fn seen(&mut self, at: SystemTime) {
        self.last_seen = self.last_seen.max(at);
    }
}

/// `from..to`, zero if the clock went backwards in between.
fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::media::rtp::stats::StatsSummary;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn agent(id: &str) -> AgentId {
        id.parse().unwrap()
    }

    fn queue(name: &str) -> QueueName {
        name.parse().unwrap()
    }

    fn inbound() -> CallRecordBuilder {
        CallRecordBuilder::new(
            "a84b4c76e66710@pc33",
            CallDirection::Inbound,
            "+4930123456",
            "800",
            t(0),
        )
    }

    #[test]
    fn answered_call_splits_wait_talk_and_hold() {
        let mut b = inbound();
        b.ivr_digit('1');
        b.ivr_digit('3');
        b.queued(queue("sales"), t(5));
        b.offered(agent("1001"), t(10));
        b.offer_ended(&agent("1001"), t(25), OfferResult::RingTimeout);
        b.offered(agent("1002"), t(25));
        b.answered(agent("1002"), t(30));
        b.hold_started(t(40));
        b.hold_ended(t(50));
        b.hold_started(t(60));
        b.hold_ended(t(65));
        b.wrap_up(Duration::from_secs(15));
        b.ended(t(100), CallOutcome::Answered, Some(HungUpBy::Caller), "BYE");
        let r = b.finish();

        assert_eq!(r.wait, Duration::from_secs(25));
        assert_eq!(r.hold, Duration::from_secs(15));
        assert_eq!(r.talk, Duration::from_secs(70 - 15));
        assert_eq!(r.wrap_up, Duration::from_secs(15));
        assert_eq!(r.ivr_choices, "13");
        assert_eq!(r.agent, Some(agent("1002")));
        assert_eq!(r.queue, Some(queue("sales")));
        assert_eq!(
            (r.queued, r.answered, r.ended),
            (Some(t(5)), Some(t(30)), t(100))
        );
        assert_eq!(r.outcome, CallOutcome::Answered);
        assert_eq!(r.hung_up_by, Some(HungUpBy::Caller));
        assert_eq!(r.end_reason, "BYE");
        assert_eq!(
            r.offers,
            vec![
                OfferRecord {
                    agent: agent("1001"),
                    at: t(10),
                    result: OfferResult::RingTimeout,
                    ended: Some(t(25)),
                },
                OfferRecord {
                    agent: agent("1002"),
                    at: t(25),
                    result: OfferResult::Answered,
                    ended: Some(t(30)),
                },
            ]
        );
    }

    #[test]
    fn abandoned_call_waits_until_the_end_and_open_offers_are_cancelled() {
        let mut b = inbound();
        b.queued(queue("support"), t(2));
        // Ring-all: two agents at once, one declines.
        b.offered(agent("1001"), t(3));
        b.offered(agent("1002"), t(3));
        b.offer_ended(&agent("1002"), t(4), OfferResult::Rejected);
        b.ended(
            t(20),
            CallOutcome::Abandoned,
            Some(HungUpBy::Caller),
            "CANCEL",
        );
        let r = b.finish();

        assert_eq!(r.wait, Duration::from_secs(18));
        assert_eq!(r.talk, Duration::ZERO);
        assert_eq!(r.agent, None);
        assert_eq!(r.outcome, CallOutcome::Abandoned);
        let results: Vec<_> = r.offers.iter().map(|o| (o.result, o.ended)).collect();
        assert_eq!(
            results,
            vec![
                (OfferResult::Cancelled, Some(t(20))),
                (OfferResult::Rejected, Some(t(4))),
            ]
        );
    }

    #[test]
    fn a_call_never_queued_has_no_wait() {
        let mut b = CallRecordBuilder::new("x", CallDirection::Outbound, "1001", "0301234", t(0));
        b.answered(agent("1001"), t(8));
        b.ended(t(68), CallOutcome::Answered, Some(HungUpBy::Agent), "BYE");
        let r = b.finish();
        assert_eq!(r.wait, Duration::ZERO);
        assert_eq!(r.talk, Duration::from_secs(60));
        assert!(r.offers.is_empty(), "an answer without an offer adds none");
    }

    #[test]
    fn an_open_hold_counts_up_to_the_end() {
        let mut b = inbound();
        b.answered(agent("1001"), t(10));
        b.hold_started(t(20));
        b.hold_started(t(25)); // already on hold: ignored
        b.ended(t(50), CallOutcome::Answered, Some(HungUpBy::Caller), "BYE");
        let r = b.finish();
        assert_eq!(r.hold, Duration::from_secs(30));
        assert_eq!(r.talk, Duration::from_secs(10));
    }

    #[test]
    fn unmatched_events_change_nothing() {
        let mut b = inbound();
        b.hold_ended(t(5));
        b.offer_ended(&agent("1001"), t(6), OfferResult::Rejected);
        b.ended(t(10), CallOutcome::Failed, None, "404");
        let r = b.finish();
        assert_eq!(r.hold, Duration::ZERO);
        assert!(r.offers.is_empty());
        assert_eq!(r.outcome, CallOutcome::Failed);
    }

    #[test]
    fn times_going_backwards_saturate_at_zero() {
        let mut b = inbound();
        b.queued(queue("sales"), t(50));
        b.answered(agent("1001"), t(40)); // before queued
        b.hold_started(t(45));
        b.hold_ended(t(30)); // before its start
        b.hold_started(t(100)); // still open, after the end
        b.ended(t(35), CallOutcome::Answered, Some(HungUpBy::Agent), "BYE");
        let r = b.finish();
        assert_eq!(r.wait, Duration::ZERO);
        assert_eq!(r.hold, Duration::ZERO);
        assert_eq!(r.talk, Duration::ZERO);
        assert_eq!(r.ended, t(35));
    }

    #[test]
    fn hold_longer_than_the_answered_time_leaves_no_talk() {
        let mut b = inbound();
        b.hold_started(t(1)); // before the answer: the caller held by an IVR
        b.answered(agent("1001"), t(10));
        b.ended(t(12), CallOutcome::Answered, Some(HungUpBy::Caller), "BYE");
        let r = b.finish();
        assert_eq!(r.hold, Duration::from_secs(11));
        assert_eq!(r.talk, Duration::ZERO);
    }

    #[test]
    fn without_an_end_the_record_fails_at_the_last_known_time() {
        let mut b = inbound();
        b.queued(queue("sales"), t(3));
        b.offered(agent("1001"), t(7));
        b.hold_started(t(9));
        let r = b.finish();
        assert_eq!(r.outcome, CallOutcome::Failed);
        assert_eq!(r.ended, t(9));
        assert_eq!(r.end_reason, NO_END_REPORTED);
        assert_eq!(r.hung_up_by, None);
        assert_eq!(r.wait, Duration::from_secs(6));
        assert_eq!(r.hold, Duration::ZERO);
        assert_eq!(r.offers[0].result, OfferResult::Cancelled);
        assert_eq!(r.offers[0].ended, Some(t(9)));

        let bare = inbound().finish();
        assert_eq!(bare.ended, bare.arrived);
        assert_eq!(bare.outcome, CallOutcome::Failed);
    }

    #[test]
    fn the_first_end_wins() {
        let mut b = inbound();
        b.ended(
            t(10),
            CallOutcome::Abandoned,
            Some(HungUpBy::Caller),
            "CANCEL",
        );
        b.ended(
            t(11),
            CallOutcome::Failed,
            Some(HungUpBy::Gateway),
            "cleanup",
        );
        let r = b.finish();
        assert_eq!(
            (r.ended, r.outcome, r.end_reason.as_str()),
            (t(10), CallOutcome::Abandoned, "CANCEL")
        );
    }

    #[test]
    fn overflow_to_a_second_queue_keeps_the_first_queued_time() {
        let mut b = inbound();
        b.queued(queue("sales"), t(5));
        b.queued(queue("overflow"), t(65));
        b.answered(agent("1001"), t(70));
        b.ended(t(90), CallOutcome::Answered, Some(HungUpBy::Caller), "BYE");
        let r = b.finish();
        assert_eq!(r.queue, Some(queue("overflow")));
        assert_eq!(r.queued, Some(t(5)));
        assert_eq!(r.wait, Duration::from_secs(65));
    }

    #[test]
    fn a_second_offer_to_the_same_agent_cancels_the_first() {
        let mut b = inbound();
        b.offered(agent("1001"), t(1));
        b.offered(agent("1001"), t(2));
        b.answered(agent("1001"), t(3));
        let r = b.finish();
        let results: Vec<_> = r.offers.iter().map(|o| (o.result, o.ended)).collect();
        assert_eq!(
            results,
            vec![
                (OfferResult::Cancelled, Some(t(2))),
                (OfferResult::Answered, Some(t(3))),
            ]
        );
    }

    #[test]
    fn ivr_choices_are_bounded() {
        let mut b = inbound();
        for _ in 0..MAX_IVR_CHOICES + 10 {
            b.ivr_digit('5');
        }
        assert_eq!(b.finish().ivr_choices.len(), MAX_IVR_CHOICES);
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for o in CallOutcome::ALL {
            assert_eq!(o.as_str().parse::<CallOutcome>(), Ok(*o));
        }
        for d in CallDirection::ALL {
            assert_eq!(d.to_string().parse::<CallDirection>(), Ok(*d));
        }
        for h in HungUpBy::ALL {
            assert_eq!(h.as_str().parse::<HungUpBy>(), Ok(*h));
        }
        for r in OfferResult::ALL {
            assert_eq!(r.as_str().parse::<OfferResult>(), Ok(*r));
        }
        assert_eq!(CallOutcome::ALL.len(), 5);
        assert_eq!(
            "Answered".parse::<CallOutcome>(),
            Err(UnknownName {
                kind: "outcome",
                found: "Answered".to_owned()
            })
        );
    }

    #[test]
    fn leg_quality_from_a_media_report() {
        let report = LegReport {
            stats: StatsSummary {
                packets: 990,
                lost: 10,
                jitter_ms: 2.5,
                mos: 4.3,
                round_trip_ms: Some(40.0),
            },
            packets_received: 1000,
            packets_sent: 1001,
        };
        assert_eq!(
            LegQuality::from(&report),
            LegQuality {
                packets_received: 1000,
                packets_sent: 1001,
                lost: 10,
                jitter_ms: 2.5,
                mos: 4.3,
                rtt_ms: Some(40.0),
            }
        );
    }
}
