//! Call records from the store: list with filters, one record, CSV export.
//!
//! An agent token reads only the records of calls it answered.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::state::ApiState;
use super::time::{format_rfc3339, parse_rfc3339};
use crate::call::record::{CallOutcome, CallRecord, LegQuality};
use crate::storage::{CallRecordFilter, MAX_CALL_RECORDS};

/// A call record as the API shows it. Times are RFC 3339 UTC, durations
/// milliseconds; the recording's file path is not shown (recordings are
/// fetched by the record's id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    pub id: String,
    pub direction: &'static str,
    pub caller: String,
    pub dialled: String,
    pub queue: Option<String>,
    pub ivr_choices: String,
    pub offers: Vec<OfferView>,
    pub agent: Option<String>,
    pub arrived: String,
    pub queued: Option<String>,
    pub answered: Option<String>,
    pub ended: String,
    pub wait_ms: u64,
    pub talk_ms: u64,
    pub hold_ms: u64,
    pub wrap_up_ms: u64,
    pub outcome: &'static str,
    pub hung_up_by: Option<&'static str>,
    pub end_reason: String,
    /// Whether a recording exists (see `/recordings/{id}`).
    pub recorded: bool,
    pub caller_quality: Option<QualityView>,
    pub agent_quality: Option<QualityView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferView {
    pub agent: String,
    pub at: String,
    pub result: &'static str,
    pub ended: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityView {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub lost: u64,
    pub jitter_ms: f64,
    pub mos: f64,
    pub rtt_ms: Option<f64>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<&LegQuality> for QualityView {
    fn from(q: &LegQuality) -> Self {
        QualityView {
            packets_received: q.packets_received,
            packets_sent: q.packets_sent,
            lost: q.lost,
            jitter_ms: q.jitter_ms,
            mos: q.mos,
            rtt_ms: q.rtt_ms,
        }
    }
}

impl From<&CallRecord> for RecordView {
    fn from(r: &CallRecord) -> Self {
        RecordView {
            id: r.id.clone(),
            direction: r.direction.as_str(),
            caller: r.caller.clone(),
            dialled: r.dialled.clone(),
            queue: r.queue.as_ref().map(|q| q.as_str().to_owned()),
            ivr_choices: r.ivr_choices.clone(),
            offers: r
                .offers
                .iter()
                .map(|o| OfferView {
                    agent: o.agent.as_str().to_owned(),
                    at: format_rfc3339(o.at),
                    result: o.result.as_str(),
                    ended: o.ended.map(format_rfc3339),
                })
                .collect(),
            agent: r.agent.as_ref().map(|a| a.as_str().to_owned()),
            arrived: format_rfc3339(r.arrived),
            queued: r.queued.map(format_rfc3339),
            answered: r.answered.map(format_rfc3339),
            ended: format_rfc3339(r.ended),
            wait_ms: millis(r.wait),
            talk_ms: millis(r.talk),
            hold_ms: millis(r.hold),
            wrap_up_ms: millis(r.wrap_up),
            outcome: r.outcome.as_str(),
            hung_up_by: r.hung_up_by.map(|h| h.as_str()),
            end_reason: r.end_reason.clone(),
            recorded: r.recording.is_some(),
            caller_quality: r.caller_quality.as_ref().map(QualityView::from),
            agent_quality: r.agent_quality.as_ref().map(QualityView::from),
        }
    }
}

/// `?from=&to=&queue=&agent=&caller=&outcome=&limit=` of `/records` and
/// `/records.csv`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub caller: Option<String>,
    pub outcome: Option<String>,
    pub limit: Option<usize>,
}

/// A time range parameter pair; `from` before `to` when both are given.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<SystemTime>, Option<SystemTime>), ApiError> {
    let parse = |name: &str, v: Option<&str>| {
        v.map(|t| parse_rfc3339(t).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    let from = parse("from", from)?;
    let to = parse("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::bad_request("from must be before to"));
        }
    }
    Ok((from, to))
}

/// Builds the store filter; an agent token is held to its own records.
pub fn record_filter(
    caller: &Caller,
    q: &RecordQuery,
    max_limit: usize,
) -> Result<CallRecordFilter, ApiError> {
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let mut filter = CallRecordFilter {
        from,
        to,
        ..Default::default()
    };
    if let Some(queue) = &q.queue {
        filter.queue = Some(
            queue
                .parse()
                .map_err(|e| ApiError::bad_request(format!("queue {queue:?}: {e}")))?,
        );
    }
    if let Some(agent) = &q.agent {
        filter.agent = Some(
            agent
                .parse()
                .map_err(|e| ApiError::bad_request(format!("agent {agent:?}: {e}")))?,
        );
    }
    if let Some(caller) = q.caller.as_deref().filter(|c| !c.is_empty()) {
        filter.caller = Some(caller.to_owned());
    }
    if let Some(outcome) = &q.outcome {
        let parsed: CallOutcome = outcome.parse().map_err(|e| {
            let names: Vec<&str> = CallOutcome::ALL.iter().map(|o| o.as_str()).collect();
            ApiError::bad_request(format!("{e} (one of {})", names.join(", ")))
        })?;
        filter.outcome = Some(parsed);
    }
    if let Some(limit) = q.limit {
        if limit == 0 || limit > max_limit {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {max_limit}"
            )));
        }
        filter.limit = Some(limit);
    }
    if let Some(me) = caller.agent() {
        if filter.agent.as_ref().is_some_and(|a| a != me) {
            return Err(ApiError::forbidden(format!(
                "an agent token for {me} reads only its own records"
            )));
        }
        filter.agent = Some(me.clone());
    }
    Ok(filter)
}

pub async fn list_records(
    caller: Caller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecords)?;
    let filter = record_filter(&caller, &q, MAX_CALL_RECORDS)?;
    let records = state
        .blocking(move |store| Ok(store.call_records(&filter)?))
        .await?;
    let views: Vec<RecordView> = records.iter().map(RecordView::from).collect();
    Ok(Json(json!({ "records": views })).into_response())
}

/// One record by the Call-ID of its caller leg (URL-encoded in the path).
pub async fn get_record(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecords)?;
    let lookup = id.clone();
    let record = state
        .blocking(move |store| Ok(store.call_record(&lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call record {id:?}")))?;
    if let Some(me) = caller.agent() {
        if record.agent.as_ref() != Some(me) {
            return Err(ApiError::forbidden(format!(
                "call {id:?} was not answered by agent {me}"
            )));
        }
    }
    Ok(Json(json!({ "record": RecordView::from(&record) })).into_response())
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "direction",
    "caller",
    "dialled",
    "queue",
    "ivr_choices",
    "agent",
    "offered_agents",
    "arrived",
    "queued",
    "answered",
    "ended",
    "wait_ms",
    "talk_ms",
    "hold_ms",
    "wrap_up_ms",
    "outcome",
    "hung_up_by",
    "end_reason",
    "recorded",
    "caller_mos",
    "agent_mos",
];

/// Rows of one CSV export at most (about 30 MB); `limit` may ask for fewer.
pub const MAX_CSV_ROWS: usize = 100_000;

/// RFC 4180 field: quoted when it holds a comma, quote or line break.
/// A field a spreadsheet would run as a formula (starting with `=`, `@`,
/// a tab or carriage return, or `+`/`-` not followed by digits only, as
/// in "+4930...") gets a leading `'` (OWASP "CSV injection").
pub fn csv_field(out: &mut String, value: &str) {
    let risky = match value.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !value[1..].bytes().all(|b| b.is_ascii_digit()) || value.len() == 1,
        _ => false,
    };
    let mut text = String::with_capacity(value.len() + 1);
    if risky {
        text.push('\'');
    }
    text.push_str(value);
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

fn csv_row(out: &mut String, r: &CallRecord) {
    let opt_time = |t: Option<SystemTime>| t.map(format_rfc3339).unwrap_or_default();
    let mos = |q: &Option<LegQuality>| q.map(|q| format!("{:.2}", q.mos)).unwrap_or_default();
    let offered: Vec<&str> = r.offers.iter().map(|o| o.agent.as_str()).collect();
    let fields: [String; 22] = [
        r.id.clone(),
        r.direction.as_str().to_owned(),
        r.caller.clone(),
        r.dialled.clone(),
        r.queue
            .as_ref()
            .map(|q| q.as_str().to_owned())
            .unwrap_or_default(),
        r.ivr_choices.clone(),
        r.agent
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        offered.join(";"),
        format_rfc3339(r.arrived),
        opt_time(r.queued),
        opt_time(r.answered),
        format_rfc3339(r.ended),
        millis(r.wait).to_string(),
        millis(r.talk).to_string(),
        millis(r.hold).to_string(),
        millis(r.wrap_up).to_string(),
        r.outcome.as_str().to_owned(),
        r.hung_up_by
            .map(|h| h.as_str().to_owned())
            .unwrap_or_default(),
        r.end_reason.clone(),
        r.recording.is_some().to_string(),
        mos(&r.caller_quality),
        mos(&r.agent_quality),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

/// The same filters as `/records`; every matching record (up to
/// [`MAX_CSV_ROWS`]), newest first, as `text/csv` (RFC 4180, CRLF line
/// ends, a header row).
pub async fn records_csv(
    caller: Caller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadRecords)?;
    let mut filter = record_filter(&caller, &q, MAX_CSV_ROWS)?;
    filter.limit = Some(filter.limit.unwrap_or(MAX_CSV_ROWS));
    let body = state
        .blocking(move |store| {
            let mut out = CSV_COLUMNS.join(",");
            out.push_str("\r\n");
            store.scan_call_records(&filter, |r| csv_row(&mut out, &r))?;
            Ok(out)
        })
        .await?;
    let mut name = String::from("call-records");
    if let Some(from) = &q.from {
        let _ = write!(name, "-{}", from.get(..10).unwrap_or(""));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: &str) -> String {
        let mut s = String::new();
        csv_field(&mut s, v);
        s
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("+4930123456"), "+4930123456");
        assert_eq!(field("-5"), "-5");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(field("@SUM(1)"), "'@SUM(1)");
        assert_eq!(field("-"), "'-");
        assert_eq!(field(""), "");
    }
}
