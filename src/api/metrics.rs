//! `/metrics` (Prometheus text exposition format 0.0.4), `/healthz` and
//! `/readyz`, and the API's own counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::state::ApiState;
use crate::control::{Command, MetricsView, Reply};

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the API itself counts.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Responses by status class: 2xx, 3xx, 4xx, 5xx.
    pub responses: [Counter; 4],
    pub auth_failures: Counter,
    pub rate_limited: Counter,
    pub control_timeouts: Counter,
    pub event_streams: Gauge,
    pub webhook_delivered: Counter,
    pub webhook_retries: Counter,
    pub webhook_failed: Counter,
    /// Events a webhook never got: they left the retention window while
    /// it was behind (a slow or unreachable receiver).
    pub webhook_dropped: Counter,
    pub recordings_deleted: Counter,
    pub retention_records_deleted: Counter,
    pub retention_files_deleted: Counter,
}

/// Middleware: counts every response by status class.
pub async fn count_responses(
    State(counters): State<Arc<ApiCounters>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let class = usize::from(response.status().as_u16() / 100);
    if let Some(c) = class.checked_sub(2).and_then(|i| counters.responses.get(i)) {
        c.inc();
    }
    response
}

/// Escapes a label value (backslash, double quote, line feed).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// The exposition of the call core's figures and the API's counters.
pub fn render(core: &MetricsView, api: &ApiCounters, events_published: u64) -> String {
    let mut e = Exposition(String::new());
    e.single(
        "switchboard_calls_active",
        "gauge",
        "Calls in progress.",
        core.calls_active,
    );
    e.family(
        "switchboard_calls_total",
        "counter",
        "Finished calls by queue and outcome since start.",
    );
    for (queue, outcome, n) in &core.calls_by_queue_outcome {
        e.sample(
            "switchboard_calls_total",
            &[("queue", queue), ("outcome", outcome)],
            n,
        );
    }
    e.family(
        "switchboard_queue_waiting",
        "gauge",
        "Callers waiting in the queue.",
    );
    for (queue, waiting, _) in &core.queue_waiting {
        e.sample("switchboard_queue_waiting", &[("queue", queue)], waiting);
    }
    e.family(
        "switchboard_queue_longest_wait_seconds",
        "gauge",
        "Wait of the longest-waiting caller in the queue.",
    );
    for (queue, _, longest) in &core.queue_waiting {
        e.sample(
            "switchboard_queue_longest_wait_seconds",
            &[("queue", queue)],
            longest,
        );
    }
    e.family("switchboard_agents", "gauge", "Agents by state.");
    for (state, n) in &core.agents_by_state {
        e.sample("switchboard_agents", &[("state", state)], n);
    }
    e.single(
        "switchboard_registrations",
        "gauge",
        "Registered agent bindings.",
        core.registrations,
    );
    e.family(
        "switchboard_sip_responses_total",
        "counter",
        "SIP responses sent by status code.",
    );
    for (code, n) in &core.sip_responses {
        e.sample(
            "switchboard_sip_responses_total",
            &[("code", &code.to_string())],
            n,
        );
    }
    e.single(
        "switchboard_rtp_packets_lost_total",
        "counter",
        "RTP packets lost on the legs closed so far.",
        core.rtp_packets_lost,
    );
    e.single(
        "switchboard_rtp_jitter_ms_mean",
        "gauge",
        "Mean interarrival jitter of the legs closed so far, milliseconds.",
        core.rtp_jitter_ms_mean,
    );
    e.family(
        "switchboard_api_responses_total",
        "counter",
        "API responses by status class.",
    );
    for (class, c) in ["2xx", "3xx", "4xx", "5xx"].iter().zip(&api.responses) {
        e.sample(
            "switchboard_api_responses_total",
            &[("class", class)],
            c.get(),
        );
    }
    let counters: [(&str, &str, &Counter); 10] = [
        (
            "switchboard_api_auth_failures_total",
            "Requests with a token that is not configured.",
            &api.auth_failures,
        ),
        (
            "switchboard_api_rate_limited_total",
            "Requests refused after too many failed authentications.",
            &api.rate_limited,
        ),
        (
            "switchboard_api_control_timeouts_total",
            "Commands the call core did not answer in time.",
            &api.control_timeouts,
        ),
        (
            "switchboard_api_webhook_delivered_total",
            "Events delivered to webhooks.",
            &api.webhook_delivered,
        ),
        (
            "switchboard_api_webhook_retries_total",
            "Webhook delivery attempts that were retried.",
            &api.webhook_retries,
        ),
        (
            "switchboard_api_webhook_failed_total",
            "Events a webhook refused or did not take after every retry.",
            &api.webhook_failed,
        ),
        (
            "switchboard_api_webhook_dropped_total",
            "Events that left the retention window before a webhook got them.",
            &api.webhook_dropped,
        ),
        (
            "switchboard_api_recordings_deleted_total",
            "Recordings deleted through the API.",
            &api.recordings_deleted,
        ),
        (
            "switchboard_api_retention_records_deleted_total",
            "Call records of expired recordings deleted by the retention policy.",
            &api.retention_records_deleted,
        ),
        (
            "switchboard_api_retention_files_deleted_total",
            "Recording files (WAV and sidecar) deleted by the retention policy.",
            &api.retention_files_deleted,
        ),
    ];
    for (name, help, c) in counters {
        e.single(name, "counter", help, c.get());
    }
    e.single(
        "switchboard_api_events_published_total",
        "counter",
        "Events published by the call core.",
        events_published,
    );
    e.single(
        "switchboard_api_event_streams",
        "gauge",
        "Open WebSocket event streams.",
        api.event_streams.get(),
    );
    e.0
}

/// Prometheus metrics (admin and supervisor tokens).
pub async fn metrics(caller: Caller, State(state): State<ApiState>) -> Result<Response, ApiError> {
    caller.require(Access::ReadMetrics)?;
    let core = match state.command(Command::Metrics).await? {
        Reply::Metrics(m) => m,
        other => {
            return Err(ApiError::internal(format!(
                "Metrics: unexpected reply {other:?}"
            )))
        }
    };
    let text = render(&core, &state.counters, state.events.latest());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Liveness: the API answers. No token needed.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// How long `/readyz` waits for the call core.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Readiness: the call core answers a command (even with a refusal)
/// within a second. No token needed.
pub async fn readyz(State(state): State<ApiState>) -> Result<Response, ApiError> {
    match state
        .control
        .call_within(Command::Metrics, READY_TIMEOUT)
        .await
    {
        // Any answer, a refusal included, shows the signalling loop runs.
        Ok(_) => Ok(Json(json!({ "status": "ready" })).into_response()),
        _ => Err(ApiError::Unavailable(
            "the call core is not answering".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_typed_and_labels_escaped() {
        let core = MetricsView {
            calls_active: 2,
            calls_by_queue_outcome: vec![("sa\"les".into(), "answered".into(), 5)],
            queue_waiting: vec![("sales".into(), 3, 42)],
            agents_by_state: vec![("available".into(), 4)],
            registrations: 7,
            sip_responses: vec![(200, 10), (486, 1)],
            rtp_packets_lost: 9,
            rtp_jitter_ms_mean: 1.5,
        };
        let api = ApiCounters::default();
        api.responses[2].add(3);
        api.auth_failures.inc();
        let text = render(&core, &api, 12);
        for line in [
            "switchboard_calls_active 2",
            "switchboard_calls_total{queue=\"sa\\\"les\",outcome=\"answered\"} 5",
            "switchboard_queue_waiting{queue=\"sales\"} 3",
            "switchboard_queue_longest_wait_seconds{queue=\"sales\"} 42",
            "switchboard_agents{state=\"available\"} 4",
            "switchboard_registrations 7",
            "switchboard_sip_responses_total{code=\"486\"} 1",
            "switchboard_rtp_packets_lost_total 9",
            "switchboard_rtp_jitter_ms_mean 1.5",
            "switchboard_api_responses_total{class=\"4xx\"} 3",
            "switchboard_api_auth_failures_total 1",
            "switchboard_api_events_published_total 12",
            "switchboard_api_event_streams 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample belongs to a family declared with HELP and TYPE.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert!(typed.contains(name), "{name} has no TYPE");
            }
        }
    }
}
