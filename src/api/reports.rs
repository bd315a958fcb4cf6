//! Queue and agent reports over a time range, computed from the call
//! records of the calls that *arrived* in the range (`from` inclusive,
//! `to` exclusive). Definitions (docs/api.md repeats them):
//!
//! - queue `offered`: calls whose last queue was this one; `answered`,
//!   `abandoned`, `overflowed`, `timed_out` by outcome;
//! - agent `offered`: calls whose phone rang at this agent (or that it
//!   answered or placed); `answered`: calls it answered; `abandoned`:
//!   calls whose caller hung up while this agent's phone rang;
//! - `abandon_rate` = abandoned / offered;
//! - `asa_secs` (average speed of answer) = mean wait in queue of the
//!   answered calls;
//! - `aht_secs` (average handle time) = mean talk + hold + wrap-up of the
//!   answered calls;
//! - `service_level` = calls answered within `api.service_level_secs` of
//!   queueing / offered;
//! - `longest_wait_secs` = the longest wait in queue of any offered call;
//! - `occupancy` = handle time / staffed time, where the staffed time is
//!   the range's length for an agent and the range's length times the
//!   configured members for a queue: the share of the period spent on
//!   calls if everyone was logged in throughout (login sessions are not
//!   stored yet, so time logged out counts as idle).
//!
//! Rates are fractions from 0 to 1, `null` when there is nothing to
//! divide by.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::ApiQuery;
use super::records::time_range;
use super::state::ApiState;
use super::time::format_rfc3339;
use crate::call::record::{CallOutcome, CallRecord, OfferResult};
use crate::storage::CallRecordFilter;

/// Longest range one report covers.
pub const MAX_REPORT_RANGE: Duration = Duration::from_secs(400 * 86_400);

/// One row of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReportRow {
    /// The queue or agent.
    pub name: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Queue rows only: calls sent to the overflow route, and calls that
    /// reached the maximum wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflowed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<u64>,
    pub abandon_rate: Option<f64>,
    pub asa_secs: Option<f64>,
    pub aht_secs: Option<f64>,
    pub service_level: Option<f64>,
    pub answered_within_threshold: u64,
    pub longest_wait_secs: f64,
    pub talk_secs: f64,
    pub hold_secs: f64,
    pub wrap_up_secs: f64,
    pub occupancy: Option<f64>,
}

/// Running sums for one row.
#[derive(Debug, Default)]
struct Tally {
    offered: u64,
    answered: u64,
    abandoned: u64,
    overflowed: u64,
    timed_out: u64,
    within: u64,
    wait_answered: Duration,
    longest_wait: Duration,
    talk: Duration,
    hold: Duration,
    wrap_up: Duration,
}

impl Tally {
    fn offered(&mut self, r: &CallRecord) {
        self.offered += 1;
        self.longest_wait = self.longest_wait.max(r.wait);
    }

    fn answered(&mut self, r: &CallRecord, threshold: Duration) {
        self.answered += 1;
        self.wait_answered += r.wait;
        self.talk += r.talk;
        self.hold += r.hold;
        self.wrap_up += r.wrap_up;
        if r.wait <= threshold {
            self.within += 1;
        }
    }

    fn row(&self, name: String, staffed: Option<Duration>, queue: bool) -> ReportRow {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let handle = self.talk + self.hold + self.wrap_up;
        let answered = self.answered as f64;
        ReportRow {
            name,
            offered: self.offered,
            answered: self.answered,
            abandoned: self.abandoned,
            overflowed: queue.then_some(self.overflowed),
            timed_out: queue.then_some(self.timed_out),
            abandon_rate: ratio(self.abandoned as f64, self.offered as f64),
            asa_secs: ratio(self.wait_answered.as_secs_f64(), answered),
            aht_secs: ratio(handle.as_secs_f64(), answered),
            service_level: ratio(self.within as f64, self.offered as f64),
            answered_within_threshold: self.within,
            longest_wait_secs: self.longest_wait.as_secs_f64(),
            talk_secs: self.talk.as_secs_f64(),
            hold_secs: self.hold.as_secs_f64(),
            wrap_up_secs: self.wrap_up.as_secs_f64(),
            occupancy: staffed.and_then(|s| ratio(handle.as_secs_f64(), s.as_secs_f64())),
        }
    }
}

/// Accumulates records into queue and agent rows.
pub struct ReportBuilder {
    threshold: Duration,
    queues: BTreeMap<String, Tally>,
    agents: BTreeMap<String, Tally>,
}

impl ReportBuilder {
    /// Rows for `queues` and `agents` are present even without calls.
    pub fn new<'a>(
        threshold: Duration,
        queues: impl IntoIterator<Item = &'a str>,
        agents: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        ReportBuilder {
            threshold,
            queues: queues
                .into_iter()
                .map(|q| (q.to_owned(), Tally::default()))
                .collect(),
            agents: agents
                .into_iter()
                .map(|a| (a.to_owned(), Tally::default()))
                .collect(),
        }
    }

    pub fn add(&mut self, r: &CallRecord) {
        if let Some(queue) = &r.queue {
            let t = self.queues.entry(queue.as_str().to_owned()).or_default();
            t.offered(r);
            match r.outcome {
                CallOutcome::Answered => t.answered(r, self.threshold),
                CallOutcome::Abandoned => t.abandoned += 1,
                CallOutcome::Overflowed => t.overflowed += 1,
                CallOutcome::TimedOut => t.timed_out += 1,
                CallOutcome::Failed => {}
            }
        }
        let mut offered: Vec<&str> = r.offers.iter().map(|o| o.agent.as_str()).collect();
        if let Some(a) = &r.agent {
            offered.push(a.as_str());
        }
        offered.sort_unstable();
        offered.dedup();
        for agent in offered {
            let t = self.agents.entry(agent.to_owned()).or_default();
            t.offered(r);
            let answered_here =
                r.answered.is_some() && r.agent.as_ref().is_some_and(|a| a.as_str() == agent);
            if answered_here {
                t.answered(r, self.threshold);
            }
            // An abandoned call's offer is cancelled only by the caller
            // leaving: the other reasons (another agent answered, the
            // queue overflowed) have other outcomes.
            let rang_when_caller_left = r.outcome == CallOutcome::Abandoned
                && r.offers
                    .iter()
                    .rev()
                    .find(|o| o.agent.as_str() == agent)
                    .is_some_and(|o| o.result == OfferResult::Cancelled);
            if rang_when_caller_left {
                t.abandoned += 1;
            }
        }
    }

    /// Queue rows; `members` gives the configured members per queue for
    /// occupancy.
    pub fn queue_rows(
        &self,
        period: Duration,
        members: &BTreeMap<String, usize>,
    ) -> Vec<ReportRow> {
        self.queues
            .iter()
            .map(|(name, t)| {
                let staffed = members
                    .get(name)
                    .filter(|n| **n > 0)
                    .map(|n| period * u32::try_from(*n).unwrap_or(u32::MAX));
                t.row(name.clone(), staffed, true)
            })
            .collect()
    }

    pub fn agent_rows(&self, period: Duration) -> Vec<ReportRow> {
        self.agents
            .iter()
            .map(|(name, t)| t.row(name.clone(), Some(period), false))
            .collect()
    }
}

/// `?from=&to=` (both required) and optionally the one queue or agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    queue: Option<String>,
    agent: Option<String>,
}

async fn build(
    state: &ApiState,
    q: &ReportQuery,
) -> Result<(ReportBuilder, SystemTime, SystemTime), ApiError> {
    let (Some(from), Some(to)) = time_range(q.from.as_deref(), q.to.as_deref())? else {
        return Err(ApiError::bad_request("from and to are required"));
    };
    if to.duration_since(from).unwrap_or_default() > MAX_REPORT_RANGE {
        return Err(ApiError::bad_request("a report covers at most 400 days"));
    }
    let threshold = state.service_level;
    let queues: Vec<String> = state.queue_members.keys().cloned().collect();
    let agents = state.agents.clone();
    let builder = state
        .blocking(move |store| {
            let mut b = ReportBuilder::new(
                threshold,
                queues.iter().map(String::as_str),
                agents.iter().map(String::as_str),
            );
            let filter = CallRecordFilter {
                from: Some(from),
                to: Some(to),
                ..Default::default()
            };
            store.scan_call_records(&filter, |r| b.add(&r))?;
            Ok(b)
        })
        .await?;
    Ok((builder, from, to))
}

fn report(
    kind: &str,
    rows: Vec<ReportRow>,
    from: SystemTime,
    to: SystemTime,
    threshold: Duration,
) -> Response {
    Json(json!({
        "from": format_rfc3339(from),
        "to": format_rfc3339(to),
        "service_level_secs": threshold.as_secs(),
        kind: rows,
    }))
    .into_response()
}

pub async fn queue_report(
    caller: Caller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadReports)?;
    if q.agent.is_some() {
        return Err(ApiError::bad_request(
            "agent is not a filter of the queue report",
        ));
    }
    let (b, from, to) = build(&state, &q).await?;
    let period = to.duration_since(from).unwrap_or_default();
    let mut rows = b.queue_rows(period, &state.queue_members);
    if let Some(queue) = &q.queue {
        rows.retain(|r| &r.name == queue);
    }
    Ok(report("queues", rows, from, to, state.service_level))
}

pub async fn agent_report(
    caller: Caller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadReports)?;
    if q.queue.is_some() {
        return Err(ApiError::bad_request(
            "queue is not a filter of the agent report",
        ));
    }
    let (b, from, to) = build(&state, &q).await?;
    let period = to.duration_since(from).unwrap_or_default();
    let mut rows = b.agent_rows(period);
    if let Some(agent) = &q.agent {
        rows.retain(|r| &r.name == agent);
    }
    Ok(report("agents", rows, from, to, state.service_level))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::call::record::{CallDirection, CallRecordBuilder, HungUpBy};
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// Queued at 0, offered to `rung` in turn (10 s each), answered by the
    /// last after `wait` s if `answer`, talk 60 s, hold 10 s, wrap 20 s.
    fn call(n: u64, rung: &[&str], wait: u64, answer: bool) -> CallRecord {
        let mut b =
            CallRecordBuilder::new(format!("c{n}"), CallDirection::Inbound, "+49", "800", t(0));
        b.queued("sales".parse().unwrap(), t(0));
        for (i, a) in rung.iter().enumerate() {
            let at = t(i as u64 * 10);
            b.offered(a.parse().unwrap(), at);
            if i + 1 < rung.len() {
                b.offer_ended(
                    &a.parse().unwrap(),
                    t(i as u64 * 10 + 10),
                    OfferResult::RingTimeout,
                );
            }
        }
        if answer {
            b.answered(rung.last().unwrap().parse().unwrap(), t(wait));
            b.hold_started(t(wait + 30));
            b.hold_ended(t(wait + 40));
            b.wrap_up(Duration::from_secs(20));
            b.ended(
                t(wait + 70),
                CallOutcome::Answered,
                Some(HungUpBy::Caller),
                "BYE",
            );
        } else {
            b.ended(
                t(wait),
                CallOutcome::Abandoned,
                Some(HungUpBy::Caller),
                "CANCEL",
            );
        }
        b.finish()
    }

    #[test]
    fn queue_and_agent_figures() {
        let mut b = ReportBuilder::new(
            Duration::from_secs(20),
            ["sales", "empty"],
            ["1001", "1002", "1003"],
        );
        b.add(&call(1, &["1001"], 5, true)); // within 20 s
        b.add(&call(2, &["1001", "1002"], 15, true)); // 1001 missed, 1002 answered at 15 s
        b.add(&call(3, &["1001", "1002", "1003"], 25, true)); // 1003 at 25 s: outside
        b.add(&call(4, &["1002"], 8, false)); // abandoned while 1002 rang
        let period = Duration::from_secs(3600);
        let members = BTreeMap::from([("sales".to_owned(), 2), ("empty".to_owned(), 0)]);
        let queues = b.queue_rows(period, &members);
        assert_eq!(queues.len(), 2);
        let empty = &queues[0];
        assert_eq!((empty.name.as_str(), empty.offered), ("empty", 0));
        assert_eq!((empty.abandon_rate, empty.occupancy), (None, None));
        let sales = &queues[1];
        assert_eq!((sales.offered, sales.answered, sales.abandoned), (4, 3, 1));
        assert_eq!(sales.abandon_rate, Some(0.25));
        assert_eq!(sales.asa_secs, Some((5.0 + 15.0 + 25.0) / 3.0));
        // Handle: talk 60 s (70 less 10 on hold) + hold 10 + wrap 20 = 90 s.
        assert_eq!(sales.aht_secs, Some(90.0));
        assert_eq!(sales.service_level, Some(2.0 / 4.0));
        assert_eq!(sales.longest_wait_secs, 25.0);
        assert_eq!(sales.occupancy, Some(270.0 / 7200.0));
        assert_eq!((sales.overflowed, sales.timed_out), (Some(0), Some(0)));

        let agents = b.agent_rows(period);
        let row = |n: &str| agents.iter().find(|r| r.name == n).unwrap().clone();
        let a1 = row("1001");
        assert_eq!((a1.offered, a1.answered, a1.abandoned), (3, 1, 0));
        assert_eq!(a1.service_level, Some(1.0 / 3.0));
        assert_eq!(a1.occupancy, Some(90.0 / 3600.0));
        assert_eq!(a1.overflowed, None);
        let a2 = row("1002");
        assert_eq!((a2.offered, a2.answered, a2.abandoned), (3, 1, 1));
        assert_eq!(a2.asa_secs, Some(15.0));
        let a3 = row("1003");
        assert_eq!(
            (a3.offered, a3.answered, a3.service_level),
            (1, 1, Some(0.0))
        );
        assert_eq!(a3.longest_wait_secs, 25.0);
    }
}
