//! The router called directly (tower `oneshot`, no sockets) with the call
//! core played by a task answering from a script, a temporary store with
//! records written through the storage API, and recordings on disk. One
//! test streams events over a real WebSocket on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::call::record::{
    CallDirection, CallOutcome, CallRecord, CallRecordBuilder, HungUpBy, LegQuality,
};
use crate::control::{
    AgentView, CallView, Command, ControlError, ControlErrorKind, Event, LegView, MetricsView,
    QueueView, Reply, WaitingCaller,
};
use crate::media::record::{EndedBy, Pause, RecordingMeta, Sidecar};

const ADMIN: &str = "admin-demo";
const SUPERVISOR: &str = "supervisor-demo";
const QA: &str = "qa-demo";
const AGENT1: &str = "agent-1001-demo";
const AGENT2: &str = "agent-1002-demo";
const DAY: &str = "20261122";

fn demo() -> Config {
    Config::from_toml_str(
        include_str!("../../config/switchboard.toml"),
        std::path::Path::new("switchboard.toml"),
    )
    .unwrap()
}

fn t(text: &str) -> std::time::SystemTime {
    parse_rfc3339(text).unwrap()
}

// --- the call core double ---

fn call_view(call: u64, agent: Option<&str>, state: &str) -> CallView {
    CallView {
        call,
        direction: "inbound".into(),
        state: state.into(),
        caller: "+4930123456".into(),
        dialled: "+15550100".into(),
        queue: Some("support".into()),
        agent: agent.map(str::to_owned),
        legs: vec![LegView {
            role: "caller".into(),
            call_id: format!("leg-{call}"),
            party: "+4930123456".into(),
        }],
        recording: true,
        recording_paused: false,
    }
}

fn refuse(kind: ControlErrorKind, message: &str) -> Result<Reply, ControlError> {
    Err(ControlError::new(kind, message))
}

/// What the fake call core answers.
fn script(command: &Command) -> Result<Reply, ControlError> {
    use ControlErrorKind::*;
    match command {
        Command::ListAgents => Ok(Reply::Agents(
            [
                ("1001", "on_call"),
                ("1002", "paused"),
                ("1003", "available"),
            ]
            .into_iter()
            .map(|(id, state)| AgentView {
                id: id.into(),
                state: state.into(),
                reason: (state == "paused").then(|| "lunch".into()),
                call: (state == "on_call").then_some(7),
                registered: 1,
                queues: vec![],
            })
            .collect(),
        )),
        Command::QueueStatus => Ok(Reply::Queues(vec![
            QueueView {
                name: "support".into(),
                waiting: vec![WaitingCaller {
                    call: 9,
                    caller: "+4940".into(),
                    position: 1,
                    waited_secs: 12,
                }],
                longest_wait_secs: 12,
                agents: BTreeMap::from([
                    ("on_call".into(), vec!["1001".into()]),
                    ("paused".into(), vec!["1002".into()]),
                ]),
            },
            QueueView {
                name: "sales".into(),
                waiting: vec![],
                longest_wait_secs: 0,
                agents: BTreeMap::from([("available".into(), vec!["1003".into()])]),
            },
        ])),
        Command::ListCalls => Ok(Reply::Calls(vec![
            call_view(7, Some("1001"), "connected"),
            call_view(8, Some("1002"), "held"),
            call_view(9, None, "queued"),
        ])),
        Command::Metrics => Ok(Reply::Metrics(MetricsView {
            calls_active: 3,
            calls_by_queue_outcome: vec![("support".into(), "answered".into(), 4)],
            queue_waiting: vec![("support".into(), 1, 12)],
            agents_by_state: vec![("available".into(), 1)],
            registrations: 2,
            sip_responses: vec![(200, 5)],
            rtp_packets_lost: 0,
            rtp_jitter_ms_mean: 0.5,
        })),
        Command::Login { agent } | Command::Logout { agent } if agent == "9999" => {
            refuse(NotFound, "no agent 9999")
        }
        Command::Pause { agent, .. } if agent == "1002" => refuse(Conflict, "already paused"),
        Command::Hangup { call: 404 } => refuse(NotFound, "no call 404"),
        Command::Hold { call: 9, .. } => refuse(Conflict, "not answered yet"),
        Command::Hold { call: 66, .. } => refuse(Unavailable, "no media ports"),
        Command::Transfer { target, .. } if target == "bogus!" => {
            refuse(Invalid, "no such route or number")
        }
        Command::SendDtmf { digits, .. } if digits.contains('X') => {
            refuse(Invalid, "X is no DTMF key")
        }
        Command::OfferAnswer { call: 55, .. } => refuse(Conflict, "no offer for call 55"),
        Command::Originate { agent, .. } => Ok(Reply::Call(call_view(20, Some(agent), "ringing"))),
        // As the core does: the call must be the agent's, in the same step.
        Command::AsAgent { agent, steer } => {
            let Ok(Reply::Calls(calls)) = script(&Command::ListCalls) else {
                return refuse(Invalid, "no calls");
            };
            match calls.iter().find(|c| Some(c.call) == steer.call()) {
                None => refuse(NotFound, "no such call"),
                Some(c) if c.agent.as_deref() != Some(agent.as_str()) => {
                    refuse(Forbidden, "not this agent's call")
                }
                Some(_) => script(steer),
            }
        }
        _ => Ok(Reply::Done),
    }
}

// --- fixtures ---

struct Fixture {
    router: Router,
    state: ApiState,
    commands: Arc<Mutex<Vec<Command>>>,
    dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
}

/// The WAV of call-1, bytes 0..1000 with a pattern so that ranges are
/// checkable.
fn wav_bytes() -> Vec<u8> {
    let mut b = b"RIFF\x00\x00\x00\x00WAVEfmt ".to_vec();
    b.extend((b.len()..1000).map(|i| u8::try_from(i % 251).unwrap()));
    b
}

fn quality(mos: f64) -> LegQuality {
    LegQuality {
        packets_received: 3000,
        packets_sent: 3000,
        lost: 2,
        jitter_ms: 1.5,
        mos,
        rtt_ms: Some(30.0),
    }
}

/// An answered call of `agent` in support at `hh`:00 on 2026-11-22.
fn answered(id: &str, agent: &str, hh: u32, talk_secs: u64, recording: Option<&str>) -> CallRecord {
    let at = |m: u32, s: u64| t(&format!("2026-11-22T{hh:02}:{m:02}:{s:02}Z"));
    let mut b = CallRecordBuilder::new(
        id,
        CallDirection::Inbound,
        "+4930123456",
        "+15550100",
        at(0, 0),
    );
    b.ivr_digit('1');
    b.queued("support".parse().unwrap(), at(0, 2));
    b.offered(agent.parse().unwrap(), at(0, 5));
    b.answered(agent.parse().unwrap(), at(0, 10));
    if let Some(r) = recording {
        b.recording(PathBuf::from(r));
    }
    b.caller_quality(quality(4.3));
    b.agent_quality(quality(4.1));
    b.wrap_up(Duration::from_secs(15));
    b.ended(
        at(0, 10) + Duration::from_secs(talk_secs),
        CallOutcome::Answered,
        Some(HungUpBy::Caller),
        "BYE",
    );
    b.finish()
}

fn records() -> Vec<CallRecord> {
    let mut abandoned = CallRecordBuilder::new(
        "call-3",
        CallDirection::Inbound,
        "=cmd|calc",
        "+15550101",
        t("2026-11-22T12:00:00Z"),
    );
    abandoned.queued("sales".parse().unwrap(), t("2026-11-22T12:00:01Z"));
    abandoned.offered("1003".parse().unwrap(), t("2026-11-22T12:00:02Z"));
    abandoned.ended(
        t("2026-11-22T12:00:40Z"),
        CallOutcome::Abandoned,
        Some(HungUpBy::Caller),
        "CANCEL, with a comma",
    );
    let mut old = answered("call-old", "1001", 9, 30, Some("20261001/call-old-1.wav"));
    old.arrived = t("2026-10-01T09:00:00Z");
    vec![
        answered(
            "call-1@pc",
            "1001",
            10,
            60,
            Some(&format!("{DAY}/call-1_pc-1.wav")),
        ),
        answered(
            "call-2@pc",
            "1002",
            11,
            5,
            Some(&format!("{DAY}/call-2_pc-1.wav")),
        ),
        abandoned.finish(),
        answered("evil", "1001", 13, 20, Some("../../etc/passwd.wav")),
        answered("gone", "1001", 14, 20, Some(&format!("{DAY}/gone-1.wav"))),
        old,
    ]
}

fn sidecar(call_id: &str) -> Sidecar {
    Sidecar {
        meta: RecordingMeta {
            call_id: call_id.into(),
            caller: "+4930123456".into(),
            callee: "1001".into(),
            started: "2026-11-22T10:00:10Z".into(),
            left: "caller".into(),
            right: "agent".into(),
        },
        wav: "call-1_pc-1.wav".into(),
        sample_rate: 8000,
        channels: 2,
        complete: true,
        ended_by: Some(EndedBy::Finish),
        frames: Some(480_000),
        duration_s: Some(60.0),
        pauses: Some(vec![Pause {
            start_s: 10.0,
            end_s: 20.5,
        }]),
        gap_frames_left: Some(3),
        gap_frames_right: Some(0),
        unpadded_frames: Some(0),
        dropped_chunks: 0,
        dropped_frames: 0,
        error: None,
    }
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with_core(true).await
    }

    /// `answering`: a core that answers from [`script`]; otherwise one
    /// that reads commands and never answers.
    async fn with_core(answering: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("switchboard.db");
        let rec = dir.path().join("recordings");
        std::fs::create_dir_all(rec.join(DAY)).unwrap();
        std::fs::write(rec.join(DAY).join("call-1_pc-1.wav"), wav_bytes()).unwrap();
        std::fs::write(
            rec.join(DAY).join("call-1_pc-1.json"),
            serde_json::to_vec(&sidecar("call-1@pc")).unwrap(),
        )
        .unwrap();
        std::fs::write(rec.join(DAY).join("call-2_pc-1.wav"), b"RIFF-two").unwrap();
        {
            let (_bindings, handle) = Store::open(&db).unwrap().spawn_writer().unwrap();
            let writer = handle.call_record_writer();
            for r in records() {
                writer.write(r);
            }
            handle.close().unwrap();
        }
        let mut settings = ApiSettings::from_config(&demo());
        settings.recordings_dir = rec;
        let timeout = if answering {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(50)
        };
        let (client, mut requests, replies) = control_channel(64, timeout);
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = commands.clone();
        tokio::spawn(async move {
            while let Some((id, command)) = requests.recv().await {
                if answering {
                    replies.reply(id, script(&command));
                }
                seen.lock().unwrap().push(command);
            }
        });
        let (stop, stopped) = watch::channel(false);
        let state = ApiState::new(
            settings,
            client,
            EventHub::default(),
            Store::open(&db).unwrap(),
            Arc::new(ApiCounters::default()),
            stopped,
        );
        Fixture {
            router: router(state.clone()),
            state,
            commands,
            dir,
            stop,
        }
    }

    fn recordings(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// The commands the core received since the last call.
    fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut *self.commands.lock().unwrap())
    }

    async fn request(&self, req: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send_from(method, uri, token, body, "192.0.2.10:40000", &[])
            .await
    }

    /// A GET as QA with extra request headers (Range, If-Range).
    async fn get_qa_with(&self, uri: &str, extra: &[(&str, &str)]) -> Answer {
        self.send_from(Method::GET, uri, Some(QA), None, "192.0.2.10:1", extra)
            .await
    }

    async fn send_from(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        from: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let mut req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let addr: SocketAddr = from.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        self.request(req).await
    }

    async fn get(&self, uri: &str, token: &str) -> Answer {
        self.send(Method::GET, uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Option<Value>) -> Answer {
        self.send(Method::POST, uri, Some(token), body).await
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and, for errors, the JSON error shape and code.
    #[track_caller]
    fn expect(&self, status: StatusCode, code: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text());
        if let Some(code) = code {
            let j = self.json();
            assert_eq!(j["error"]["code"], code, "{j}");
            assert!(j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        self
    }
}

fn ids(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| match &x[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

// --- infrastructure ---

#[tokio::test]
async fn health_ready_and_openapi_need_no_token() {
    let f = Fixture::new().await;
    let a = f.send(Method::GET, "/api/v1/healthz", None, None).await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.json()["status"], "ok");
    let a = f.send(Method::GET, "/api/v1/readyz", None, None).await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.json()["status"], "ready");
    let a = f
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.json()["openapi"], "3.0.3");
}

#[tokio::test]
async fn a_silent_core_makes_commands_and_readiness_503() {
    let f = Fixture::with_core(false).await;
    f.send(Method::GET, "/api/v1/readyz", None, None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"));
    f.get("/api/v1/agents", ADMIN)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"));
    assert_eq!(f.state.counters.control_timeouts.get(), 1);
    assert_eq!(f.state.control.pending(), 0);
}

#[tokio::test]
async fn missing_wrong_and_rate_limited_tokens() {
    let f = Fixture::new().await;
    let a = f.send(Method::GET, "/api/v1/agents", None, None).await;
    a.expect(StatusCode::UNAUTHORIZED, Some("missing_token"));
    assert!(a
        .header(header::WWW_AUTHENTICATE)
        .unwrap()
        .starts_with("Bearer"));
    let a = f
        .send_from(
            Method::GET,
            "/api/v1/agents",
            None,
            None,
            "192.0.2.10:1",
            &[("authorization", "Basic YWRtaW4=")],
        )
        .await;
    a.expect(StatusCode::UNAUTHORIZED, Some("missing_token"));
    // The scheme is case-insensitive.
    let a = f
        .send_from(
            Method::GET,
            "/api/v1/agents",
            None,
            None,
            "192.0.2.10:1",
            &[("authorization", "bearer admin-demo")],
        )
        .await;
    a.expect(StatusCode::OK, None);
    // Ten wrong tokens from one address, then 429 even for a right one.
    for _ in 0..10 {
        let a = f
            .send_from(
                Method::GET,
                "/api/v1/agents",
                Some("guess"),
                None,
                "198.51.100.7:5000",
                &[],
            )
            .await;
        a.expect(StatusCode::UNAUTHORIZED, Some("invalid_token"));
        assert!(a
            .header(header::WWW_AUTHENTICATE)
            .unwrap()
            .contains("invalid_token"));
    }
    let a = f
        .send_from(
            Method::GET,
            "/api/v1/agents",
            Some(ADMIN),
            None,
            "198.51.100.7:5001",
            &[],
        )
        .await;
    a.expect(StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"));
    let retry: u64 = a.header(header::RETRY_AFTER).unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another address is not affected.
    f.send_from(
        Method::GET,
        "/api/v1/agents",
        Some(ADMIN),
        None,
        "198.51.100.8:5000",
        &[],
    )
    .await
    .expect(StatusCode::OK, None);
    assert_eq!(f.state.counters.auth_failures.get(), 10);
    assert_eq!(f.state.counters.rate_limited.get(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let f = Fixture::new().await;
    f.get("/api/v1/nope", ADMIN)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.get("/elsewhere", ADMIN)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.send(Method::PUT, "/api/v1/agents", Some(ADMIN), None)
        .await
        .expect(StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"));
    f.send(Method::DELETE, "/api/v1/calls/7/hangup", Some(ADMIN), None)
        .await
        .expect(StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"));
}

// --- agents, queues, offers ---

#[tokio::test]
async fn agents_are_listed_and_an_agent_sees_only_itself() {
    let f = Fixture::new().await;
    let all = f.get("/api/v1/agents", SUPERVISOR).await;
    all.expect(StatusCode::OK, None);
    assert_eq!(ids(&all.json(), "agents", "id"), ["1001", "1002", "1003"]);
    assert_eq!(all.json()["agents"][1]["reason"], "lunch");
    let own = f.get("/api/v1/agents", AGENT1).await;
    assert_eq!(ids(&own.json(), "agents", "id"), ["1001"]);
    assert_eq!(
        ids(&f.get("/api/v1/agents", QA).await.json(), "agents", "id").len(),
        3
    );
}

#[tokio::test]
async fn agent_state_commands() {
    let f = Fixture::new().await;
    f.post("/api/v1/agents/1001/login", AGENT1, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    f.post(
        "/api/v1/agents/1001/pause",
        AGENT1,
        Some(json!({ "reason": " lunch " })),
    )
    .await
    .expect(StatusCode::NO_CONTENT, None);
    f.post("/api/v1/agents/1003/unpause", SUPERVISOR, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    f.post("/api/v1/agents/1003/logout", ADMIN, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    assert_eq!(
        f.take_commands(),
        vec![
            Command::Login {
                agent: "1001".into()
            },
            Command::Pause {
                agent: "1001".into(),
                reason: "lunch".into()
            },
            Command::Unpause {
                agent: "1003".into()
            },
            Command::Logout {
                agent: "1003".into()
            },
        ]
    );
    // Another agent, QA, validation, and the core's refusals.
    f.post("/api/v1/agents/1002/login", AGENT1, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/agents/1001/login", QA, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/agents/1001/pause", AGENT1, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post(
        "/api/v1/agents/1001/pause",
        AGENT1,
        Some(json!({ "reason": "  " })),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post(
        "/api/v1/agents/1001/pause",
        AGENT1,
        Some(json!({ "reason": "x", "extra": 1 })),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post("/api/v1/agents/bad%20id/login", ADMIN, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    assert!(
        f.take_commands().is_empty(),
        "nothing refused reached the core"
    );
    f.post("/api/v1/agents/9999/login", ADMIN, None)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.post(
        "/api/v1/agents/1002/pause",
        ADMIN,
        Some(json!({ "reason": "x" })),
    )
    .await
    .expect(StatusCode::CONFLICT, Some("conflict"));
}

#[tokio::test]
async fn offers_are_answered_by_their_agent() {
    let f = Fixture::new().await;
    f.post("/api/v1/agents/1001/offers/12/accept", AGENT1, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    f.post("/api/v1/agents/1001/offers/13/reject", AGENT1, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    assert_eq!(
        f.take_commands(),
        vec![
            Command::OfferAnswer {
                agent: "1001".into(),
                call: 12,
                accept: true
            },
            Command::OfferAnswer {
                agent: "1001".into(),
                call: 13,
                accept: false
            },
        ]
    );
    f.post("/api/v1/agents/1002/offers/12/accept", AGENT1, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/agents/1001/offers/12/accept", QA, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/agents/1001/offers/55/accept", AGENT1, None)
        .await
        .expect(StatusCode::CONFLICT, Some("conflict"));
    f.post("/api/v1/agents/1001/offers/x/accept", AGENT1, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
}

#[tokio::test]
async fn queues_are_listed_and_an_agent_sees_its_own() {
    let f = Fixture::new().await;
    let all = f.get("/api/v1/queues", SUPERVISOR).await;
    all.expect(StatusCode::OK, None);
    assert_eq!(ids(&all.json(), "queues", "name"), ["support", "sales"]);
    assert_eq!(all.json()["queues"][0]["waiting"][0]["waited_secs"], 12);
    let own = f.get("/api/v1/queues", AGENT1).await;
    assert_eq!(ids(&own.json(), "queues", "name"), ["support"]);
}

// --- calls ---

#[tokio::test]
async fn calls_are_listed_and_an_agent_sees_only_its_own() {
    let f = Fixture::new().await;
    let all = f.get("/api/v1/calls", SUPERVISOR).await;
    all.expect(StatusCode::OK, None);
    assert_eq!(ids(&all.json(), "calls", "call"), ["7", "8", "9"]);
    assert_eq!(all.json()["calls"][0]["legs"][0]["role"], "caller");
    assert_eq!(
        ids(&f.get("/api/v1/calls", QA).await.json(), "calls", "call").len(),
        3
    );
    assert_eq!(
        ids(
            &f.get("/api/v1/calls", AGENT1).await.json(),
            "calls",
            "call"
        ),
        ["7"]
    );
    assert_eq!(
        ids(
            &f.get("/api/v1/calls", AGENT2).await.json(),
            "calls",
            "call"
        ),
        ["8"]
    );
}

#[tokio::test]
async fn call_commands_reach_the_core() {
    let f = Fixture::new().await;
    for (path, body) in [
        ("hangup", None),
        ("hold", None),
        ("unhold", None),
        ("transfer", Some(json!({ "target": "queue:sales" }))),
        ("dtmf", Some(json!({ "digits": "12#" }))),
        ("recording/pause", None),
        ("recording/resume", None),
    ] {
        f.post(&format!("/api/v1/calls/8/{path}"), SUPERVISOR, body)
            .await
            .expect(StatusCode::NO_CONTENT, None);
    }
    assert_eq!(
        f.take_commands(),
        vec![
            Command::Hangup { call: 8 },
            Command::Hold {
                call: 8,
                hold: true
            },
            Command::Hold {
                call: 8,
                hold: false
            },
            Command::Transfer {
                call: 8,
                target: "queue:sales".into()
            },
            Command::SendDtmf {
                call: 8,
                digits: "12#".into()
            },
            Command::Record {
                call: 8,
                paused: true
            },
            Command::Record {
                call: 8,
                paused: false
            },
        ]
    );
}

#[tokio::test]
async fn call_command_errors() {
    let f = Fixture::new().await;
    // An agent's commands go to the core as the agent's, which checks the
    // call is the agent's in the same step (one command, no race).
    f.post("/api/v1/calls/7/hold", AGENT1, None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    let as_1001 = |steer: Command| Command::AsAgent {
        agent: "1001".into(),
        steer: Box::new(steer),
    };
    assert_eq!(
        f.take_commands(),
        vec![as_1001(Command::Hold {
            call: 7,
            hold: true
        })]
    );
    f.post("/api/v1/calls/8/hangup", AGENT1, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/calls/9/hangup", AGENT1, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post("/api/v1/calls/12345/hangup", AGENT1, None)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    assert_eq!(
        f.take_commands(),
        [8, 9, 12345]
            .map(|call| as_1001(Command::Hangup { call }))
            .to_vec(),
        "nothing else was sent"
    );
    f.post("/api/v1/calls/7/hangup", QA, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    // The core's refusals.
    f.post("/api/v1/calls/404/hangup", ADMIN, None)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.post("/api/v1/calls/9/hold", ADMIN, None)
        .await
        .expect(StatusCode::CONFLICT, Some("conflict"));
    f.post("/api/v1/calls/66/hold", ADMIN, None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"));
    f.post(
        "/api/v1/calls/7/transfer",
        ADMIN,
        Some(json!({ "target": "bogus!" })),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY, Some("unprocessable"));
    f.post(
        "/api/v1/calls/7/dtmf",
        ADMIN,
        Some(json!({ "digits": "1X" })),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY, Some("unprocessable"));
    // Validation.
    f.post("/api/v1/calls/7/transfer", ADMIN, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post(
        "/api/v1/calls/7/transfer",
        ADMIN,
        Some(json!({ "to": "x" })),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post("/api/v1/calls/7/dtmf", ADMIN, Some(json!({ "digits": "" })))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post(
        "/api/v1/calls/7/dtmf",
        ADMIN,
        Some(json!({ "digits": "1".repeat(200) })),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post("/api/v1/calls/seven/hangup", ADMIN, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    let a = f
        .send_from(
            Method::POST,
            "/api/v1/calls/7/transfer",
            Some(ADMIN),
            None,
            "192.0.2.10:1",
            &[("content-type", "application/json")],
        )
        .await;
    a.expect(StatusCode::BAD_REQUEST, Some("bad_request"));
}

#[tokio::test]
async fn originate_is_for_the_agent_itself_or_above() {
    let f = Fixture::new().await;
    let a = f
        .post(
            "/api/v1/calls",
            AGENT1,
            Some(json!({ "agent": "1001", "number": "+4930999" })),
        )
        .await;
    a.expect(StatusCode::CREATED, None);
    assert_eq!(a.json()["call"]["call"], 20);
    assert_eq!(
        f.take_commands(),
        vec![Command::Originate {
            agent: "1001".into(),
            number: "+4930999".into()
        }]
    );
    f.post(
        "/api/v1/calls",
        AGENT1,
        Some(json!({ "agent": "1002", "number": "1" })),
    )
    .await
    .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post(
        "/api/v1/calls",
        QA,
        Some(json!({ "agent": "1001", "number": "1" })),
    )
    .await
    .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.post(
        "/api/v1/calls",
        SUPERVISOR,
        Some(json!({ "agent": "1002", "number": "" })),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.post(
        "/api/v1/calls",
        SUPERVISOR,
        Some(json!({ "agent": "1002", "number": "1" })),
    )
    .await
    .expect(StatusCode::CREATED, None);
}

#[tokio::test]
async fn metrics_combine_the_core_and_the_api() {
    let f = Fixture::new().await;
    f.get("/api/v1/agents", "wrong").await;
    let a = f.get("/api/v1/metrics", ADMIN).await;
    a.expect(StatusCode::OK, None);
    assert!(a
        .header(header::CONTENT_TYPE)
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = a.text();
    assert!(text.contains("switchboard_calls_active 3\n"), "{text}");
    assert!(
        text.contains("switchboard_api_auth_failures_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("switchboard_api_responses_total{class=\"4xx\"} 1\n"),
        "{text}"
    );
    f.get("/api/v1/metrics", SUPERVISOR)
        .await
        .expect(StatusCode::OK, None);
    f.get("/api/v1/metrics", QA)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.get("/api/v1/metrics", AGENT1)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
}

// --- records ---

#[tokio::test]
async fn records_are_listed_filtered_and_limited() {
    let f = Fixture::new().await;
    let all = f.get("/api/v1/records", SUPERVISOR).await;
    all.expect(StatusCode::OK, None);
    assert_eq!(
        ids(&all.json(), "records", "id"),
        [
            "gone",
            "evil",
            "call-3",
            "call-2@pc",
            "call-1@pc",
            "call-old"
        ]
    );
    let first = &all.json()["records"][4];
    assert_eq!(first["arrived"], "2026-11-22T10:00:00.000Z");
    assert_eq!(first["talk_ms"], 60_000);
    assert_eq!(first["wrap_up_ms"], 15_000);
    assert_eq!(first["recorded"], true);
    assert_eq!(first["offers"][0]["result"], "answered");
    assert_eq!(first["caller_quality"]["mos"], 4.3);
    assert!(first.get("recording").is_none(), "no file paths");
    let q = |query: &str| {
        let f = &f;
        let query = query.to_owned();
        async move {
            let a = f.get(&format!("/api/v1/records?{query}"), QA).await;
            a.expect(StatusCode::OK, None);
            ids(&a.json(), "records", "id")
        }
    };
    assert_eq!(q("queue=sales").await, ["call-3"]);
    assert_eq!(q("agent=1002").await, ["call-2@pc"]);
    assert_eq!(q("outcome=abandoned").await, ["call-3"]);
    assert_eq!(q("caller=cmd").await, ["call-3"]);
    assert_eq!(
        q("from=2026-11-22T10:30:00Z&to=2026-11-22T13:00:00%2B00:00").await,
        ["call-3", "call-2@pc"]
    );
    assert_eq!(q("limit=2").await, ["gone", "evil"]);
    for bad in [
        "from=yesterday",
        "from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z",
        "outcome=won",
        "limit=0",
        "limit=1001",
        "limit=x",
        "queue=no%20such",
        "colour=red",
    ] {
        f.get(&format!("/api/v1/records?{bad}"), QA)
            .await
            .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    }
}

#[tokio::test]
async fn an_agent_reads_only_its_own_records() {
    let f = Fixture::new().await;
    let own = f.get("/api/v1/records", AGENT2).await;
    assert_eq!(ids(&own.json(), "records", "id"), ["call-2@pc"]);
    f.get("/api/v1/records?agent=1002", AGENT2)
        .await
        .expect(StatusCode::OK, None);
    f.get("/api/v1/records?agent=1001", AGENT2)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.get("/api/v1/records/call-2%40pc", AGENT2)
        .await
        .expect(StatusCode::OK, None);
    f.get("/api/v1/records/call-1%40pc", AGENT2)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    let csv = f.get("/api/v1/records.csv", AGENT2).await;
    assert_eq!(csv.text().lines().count(), 2, "{}", csv.text());
}

#[tokio::test]
async fn one_record_by_its_url_encoded_id() {
    let f = Fixture::new().await;
    let a = f.get("/api/v1/records/call-1%40pc", QA).await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.json()["record"]["id"], "call-1@pc");
    assert_eq!(a.json()["record"]["agent"], "1001");
    f.get("/api/v1/records/call-1@pc", QA)
        .await
        .expect(StatusCode::OK, None);
    f.get("/api/v1/records/nope", QA)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
}

#[tokio::test]
async fn records_export_as_csv() {
    let f = Fixture::new().await;
    let a = f
        .get("/api/v1/records.csv?from=2026-11-22T00:00:00Z", SUPERVISOR)
        .await;
    a.expect(StatusCode::OK, None);
    assert_eq!(
        a.header(header::CONTENT_TYPE),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        a.header(header::CONTENT_DISPOSITION),
        Some("attachment; filename=\"call-records-2026-11-22.csv\"")
    );
    let text = a.text();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], records::CSV_COLUMNS.join(","));
    assert_eq!(
        lines.len(),
        1 + 5 + 1,
        "header, five records, final CRLF: {text}"
    );
    let abandoned = lines.iter().find(|l| l.starts_with("call-3,")).unwrap();
    assert!(abandoned.contains(",'=cmd|calc,"), "{abandoned}");
    assert!(
        abandoned.contains(",\"CANCEL, with a comma\","),
        "{abandoned}"
    );
    assert!(
        lines[5].starts_with("call-1@pc,inbound,+4930123456,+15550100,support,1,1001,1001,"),
        "{}",
        lines[5]
    );
    f.get("/api/v1/records.csv?limit=0", SUPERVISOR)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    let two = f.get("/api/v1/records.csv?limit=2", SUPERVISOR).await;
    assert_eq!(two.text().lines().count(), 3);
}

// --- reports ---

#[tokio::test]
async fn reports_per_queue_and_agent() {
    let f = Fixture::new().await;
    let range = "from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z";
    let a = f.get(&format!("/api/v1/reports/queues?{range}"), QA).await;
    a.expect(StatusCode::OK, None);
    let j = a.json();
    assert_eq!(j["service_level_secs"], 20);
    assert_eq!(ids(&j, "queues", "name"), ["sales", "support"]);
    let support = &j["queues"][1];
    // call-1, call-2, evil, gone: all answered 8 s after queueing.
    assert_eq!(support["offered"], 4);
    assert_eq!(support["answered"], 4);
    assert_eq!(support["service_level"], 1.0);
    assert_eq!(support["asa_secs"], 8.0);
    assert_eq!(
        support["aht_secs"],
        ((60 + 5 + 20 + 20) as f64 / 4.0) + 15.0
    );
    let sales = &j["queues"][0];
    assert_eq!(
        (sales["offered"].clone(), sales["abandoned"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(sales["abandon_rate"], 1.0);
    assert_eq!(sales["longest_wait_secs"], 39.0);
    assert_eq!(sales["asa_secs"], Value::Null);
    let one = f
        .get(
            &format!("/api/v1/reports/queues?{range}&queue=sales"),
            SUPERVISOR,
        )
        .await;
    assert_eq!(ids(&one.json(), "queues", "name"), ["sales"]);

    let a = f
        .get(&format!("/api/v1/reports/agents?{range}&agent=1003"), ADMIN)
        .await;
    a.expect(StatusCode::OK, None);
    let row = &a.json()["agents"][0];
    assert_eq!(
        (row["offered"].clone(), row["abandoned"].clone()),
        (json!(1), json!(1))
    );
    let all = f
        .get(&format!("/api/v1/reports/agents?{range}"), ADMIN)
        .await;
    assert_eq!(ids(&all.json(), "agents", "name"), ["1001", "1002", "1003"]);
    assert_eq!(all.json()["agents"][0]["answered"], 3);

    f.get("/api/v1/reports/queues", QA)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.get(
        "/api/v1/reports/queues?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        QA,
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.get(&format!("/api/v1/reports/queues?{range}&agent=1001"), QA)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.get(&format!("/api/v1/reports/queues?{range}"), AGENT1)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
}

// --- recordings ---

#[tokio::test]
async fn recordings_are_searched_by_qa_only() {
    let f = Fixture::new().await;
    let a = f
        .get(
            "/api/v1/recordings?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&agent=1001",
            QA,
        )
        .await;
    a.expect(StatusCode::OK, None);
    let j = a.json();
    assert_eq!(ids(&j, "recordings", "id"), ["gone", "evil", "call-1@pc"]);
    assert_eq!(
        j["recordings"][2]["audio"],
        "/api/v1/recordings/call-1%40pc/audio"
    );
    assert_eq!(j["recordings"][2]["duration_ms"], 60_000);
    let long = f.get("/api/v1/recordings?min_duration=30", QA).await;
    assert_eq!(
        ids(&long.json(), "recordings", "id"),
        ["call-1@pc", "call-old"]
    );
    let caller = f
        .get(
            "/api/v1/recordings?caller=%2B4930&queue=support&limit=1",
            ADMIN,
        )
        .await;
    assert_eq!(ids(&caller.json(), "recordings", "id"), ["gone"]);
    f.get("/api/v1/recordings?min_duration=-1", QA)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    for token in [SUPERVISOR, AGENT1] {
        f.get("/api/v1/recordings", token)
            .await
            .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    }
}

#[tokio::test]
async fn recording_metadata() {
    let f = Fixture::new().await;
    let a = f.get("/api/v1/recordings/call-1%40pc", QA).await;
    a.expect(StatusCode::OK, None);
    let r = &a.json()["recording"];
    assert_eq!(r["bytes"], 1000);
    assert_eq!(r["file"]["duration_s"], 60.0);
    assert_eq!(r["file"]["pauses"][0]["end_s"], 20.5);
    assert_eq!(r["file"]["complete"], true);
    assert_eq!(r["legs"][0]["party"], "caller");
    assert_eq!(r["legs"][1]["who"], "1001");
    assert_eq!(r["legs"][1]["quality"]["mos"], 4.1);
    assert_eq!(r["record"]["id"], "call-1@pc");
    // No sidecar: the metadata says so but the rest is there.
    let a = f.get("/api/v1/recordings/call-2%40pc", QA).await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.json()["recording"]["file"], Value::Null);
    assert_eq!(a.json()["recording"]["bytes"], 8);
    f.get("/api/v1/recordings/call-3", QA)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.get("/api/v1/recordings/gone", QA)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.get("/api/v1/recordings/nope", QA)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    // A record naming a path outside the directory is never followed.
    let evil = f.get("/api/v1/recordings/evil/audio", ADMIN).await;
    evil.expect(StatusCode::INTERNAL_SERVER_ERROR, Some("internal"));
    assert!(
        !evil.text().contains("passwd"),
        "no detail leaks: {}",
        evil.text()
    );
    f.get("/api/v1/recordings/..%2F..%2Fetc%2Fpasswd/audio", ADMIN)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
}

#[tokio::test]
async fn audio_downloads_byte_identical_with_ranges() {
    let f = Fixture::new().await;
    let wav = wav_bytes();
    let uri = "/api/v1/recordings/call-1%40pc/audio";
    let full = f.get(uri, QA).await;
    full.expect(StatusCode::OK, None);
    assert_eq!(full.body, wav);
    assert_eq!(full.header(header::CONTENT_TYPE), Some("audio/wav"));
    assert_eq!(full.header(header::ACCEPT_RANGES), Some("bytes"));
    assert_eq!(full.header(header::CONTENT_LENGTH), Some("1000"));
    assert_eq!(
        full.header(header::CONTENT_DISPOSITION),
        Some("attachment; filename=\"call-1_pc-1.wav\"")
    );
    for (spec, start, end) in [
        ("bytes=0-99", 0usize, 99usize),
        ("bytes=-100", 900, 999),
        ("bytes=990-", 990, 999),
        ("bytes=500-2000", 500, 999),
    ] {
        let a = f.get_qa_with(uri, &[("range", spec)]).await;
        a.expect(StatusCode::PARTIAL_CONTENT, None);
        assert_eq!(a.body, &wav[start..=end], "{spec}");
        assert_eq!(
            a.header(header::CONTENT_RANGE),
            Some(format!("bytes {start}-{end}/1000").as_str())
        );
        assert_eq!(
            a.header(header::CONTENT_LENGTH),
            Some((end - start + 1).to_string().as_str())
        );
    }
    // Several ranges: the whole file.
    let a = f.get_qa_with(uri, &[("range", "bytes=0-1,5-6")]).await;
    a.expect(StatusCode::OK, None);
    assert_eq!(a.body, wav);
    let a = f.get_qa_with(uri, &[("range", "bytes=1000-")]).await;
    a.expect(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Some("range_not_satisfiable"),
    );
    assert_eq!(a.header(header::CONTENT_RANGE), Some("bytes */1000"));
    // Resuming a download: If-Range with the current ETag or Last-Modified
    // keeps the range; another version's tag gets the whole file.
    let etag = full.header(header::ETAG).expect("ETag").to_owned();
    let modified = full
        .header(header::LAST_MODIFIED)
        .expect("Last-Modified")
        .to_owned();
    for (validator, status) in [
        (etag.as_str(), StatusCode::PARTIAL_CONTENT),
        (modified.as_str(), StatusCode::PARTIAL_CONTENT),
        ("\"3e8-0\"", StatusCode::OK),
    ] {
        let a = f
            .get_qa_with(uri, &[("range", "bytes=990-"), ("if-range", validator)])
            .await;
        a.expect(status, None);
        let body = if status == StatusCode::OK {
            &wav[..]
        } else {
            &wav[990..]
        };
        assert_eq!(a.body, body, "{validator}");
    }
    // Only QA and admin hear recordings.
    f.get(uri, ADMIN).await.expect(StatusCode::OK, None);
    for token in [SUPERVISOR, AGENT1, AGENT2] {
        f.get(uri, token)
            .await
            .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    }
}

#[tokio::test]
async fn admin_deletes_a_recording_and_the_record_stays() {
    let f = Fixture::new().await;
    let uri = "/api/v1/recordings/call-1%40pc";
    for token in [QA, SUPERVISOR, AGENT1] {
        f.send(Method::DELETE, uri, Some(token), None)
            .await
            .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    }
    let wav = f.recordings().join(DAY).join("call-1_pc-1.wav");
    assert!(wav.exists());
    f.send(Method::DELETE, uri, Some(ADMIN), None)
        .await
        .expect(StatusCode::NO_CONTENT, None);
    assert!(!wav.exists());
    assert!(!wav.with_extension("json").exists());
    let record = f.get("/api/v1/records/call-1%40pc", QA).await;
    assert_eq!(record.json()["record"]["recorded"], false);
    assert_eq!(record.json()["record"]["talk_ms"], 60_000);
    f.get(&format!("{uri}/audio"), QA)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    f.send(Method::DELETE, uri, Some(ADMIN), None)
        .await
        .expect(StatusCode::NOT_FOUND, Some("not_found"));
    assert_eq!(f.state.counters.recordings_deleted.get(), 1);
}

// --- events ---

#[tokio::test]
async fn the_event_stream_authenticates_before_the_upgrade() {
    let f = Fixture::new().await;
    f.send(Method::GET, "/api/v1/events", None, None)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("missing_token"));
    f.send(Method::GET, "/api/v1/events?token=nope", None, None)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("invalid_token"));
    // Authenticated by query, but a plain GET is no WebSocket.
    f.send(Method::GET, "/api/v1/events?token=qa-demo", None, None)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    f.get("/api/v1/events?types=call_answered,nope", QA)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("bad_request"));
    // ?token= is for the event stream only.
    f.send(Method::GET, "/api/v1/agents?token=admin-demo", None, None)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("missing_token"));
}

/// The stream over a real WebSocket on loopback: order, role filtering,
/// resuming with `since`, and the gap message.
#[tokio::test]
async fn events_stream_over_a_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let f = Fixture::new().await;
    let hub = f.state.events.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = f
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;
    async fn connect(addr: SocketAddr, query: &str) -> Socket {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?{query}"))
                .await
                .unwrap();
        socket
    }
    async fn next(socket: &mut Socket) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("an event within 5 s")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    let mut agent = connect(addr, "token=agent-1001-demo").await;
    let mut supervisor = connect(
        addr,
        "token=supervisor-demo&types=call_offered,call_answered,call_ended",
    )
    .await;
    assert_eq!(
        next(&mut agent).await,
        json!({ "type": "hello", "latest": 0 })
    );
    assert_eq!(next(&mut supervisor).await["type"], "hello");

    let offered = |call: u64, agent: &str| Event::CallOffered {
        call,
        agent: agent.into(),
        queue: "support".into(),
        caller: "+4930".into(),
        waited_secs: 4,
        ivr_choices: "1".into(),
    };
    hub.publish(offered(1, "1002"));
    hub.publish(offered(2, "1001"));
    hub.publish(Event::RecordingPaused {
        call: 2,
        paused: true,
    });
    hub.publish(Event::CallAnswered {
        call: 1,
        agent: "1002".into(),
    });
    hub.publish(Event::CallEnded {
        call: 2,
        agent: None,
        outcome: "answered".into(),
    });

    // The agent: its offer (a screen pop), its call's recording pause, its end.
    let e = next(&mut agent).await;
    assert_eq!(
        (e["seq"].clone(), e["type"].clone(), e["call"].clone()),
        (json!(2), json!("call_offered"), json!(2))
    );
    assert_eq!(e["caller"], "+4930");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(next(&mut agent).await["seq"], 3);
    assert_eq!(next(&mut agent).await["seq"], 5);
    // The supervisor: everything of the types asked for, in order.
    let seqs: Vec<Value> = [
        next(&mut supervisor).await,
        next(&mut supervisor).await,
        next(&mut supervisor).await,
        next(&mut supervisor).await,
    ]
    .iter()
    .map(|e| e["seq"].clone())
    .collect();
    assert_eq!(seqs, [json!(1), json!(2), json!(4), json!(5)]);
    agent.send(Message::Close(None)).await.unwrap();

    // Reconnecting after seq 3 delivers what was missed.
    let mut resumed = connect(addr, "token=qa-demo&since=3").await;
    assert_eq!(next(&mut resumed).await["latest"], 5);
    assert_eq!(next(&mut resumed).await["seq"], 4);
    assert_eq!(next(&mut resumed).await["seq"], 5);
    // The bearer header works too, and a client from before a restart
    // (a sequence number we never gave) hears of the gap.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/api/v1/events?since=999"
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer admin-demo".parse().unwrap());
    let (mut restarted, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    next(&mut restarted).await;
    let gap = next(&mut restarted).await;
    assert_eq!(
        gap,
        json!({ "type": "gap", "missed": 0, "first_available": 1 })
    );
    assert_eq!(next(&mut restarted).await["seq"], 1);

    // Shutdown closes the streams.
    f.stop.send_replace(true);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match supervisor.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream closed at shutdown");
    server.abort();
}

// --- every route, every role ---

/// A request that the role matrix allows for an agent token of 1001: its
/// own agent, its own call (7), its own record.
fn sample_request(route: &Route) -> (String, Option<Value>) {
    let path = route
        .path
        .replace("{agent}", "1001")
        .replace("{call}", "7")
        .replace("{id}", "call-1%40pc");
    let body = match (route.method.as_str(), route.path) {
        (_, "/agents/{agent}/pause") => Some(json!({ "reason": "lunch" })),
        (_, "/calls/{call}/transfer") => Some(json!({ "target": "queue:sales" })),
        (_, "/calls/{call}/dtmf") => Some(json!({ "digits": "1" })),
        ("POST", "/calls") => Some(json!({ "agent": "1001", "number": "+4930" })),
        _ => None,
    };
    let query = match route.path {
        "/reports/queues" | "/reports/agents" => {
            "?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z"
        }
        _ => "",
    };
    (format!("{PREFIX}{path}{query}"), body)
}

/// What each route needs (`None`: no token at all).
fn needed(route: &Route) -> Option<Access> {
    match (route.method.as_str(), route.path) {
        (_, "/healthz" | "/readyz" | "/openapi.json") => None,
        (_, "/metrics") => Some(Access::ReadMetrics),
        ("GET", "/agents" | "/queues" | "/calls" | "/events") => Some(Access::ReadLive),
        ("POST", _) => Some(Access::Steer),
        ("GET", p) if p.starts_with("/records") => Some(Access::ReadRecords),
        ("GET", p) if p.starts_with("/reports") => Some(Access::ReadReports),
        ("GET", p) if p.starts_with("/recordings") => Some(Access::ReadRecordings),
        ("DELETE", "/recordings/{id}") => Some(Access::DeleteRecordings),
        other => panic!("no access rule for {other:?}"),
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let roles = [
        (ADMIN, crate::config::ApiRole::Admin),
        (SUPERVISOR, crate::config::ApiRole::Supervisor),
        (QA, crate::config::ApiRole::Qa),
        (
            AGENT1,
            crate::config::ApiRole::Agent("1001".parse().unwrap()),
        ),
    ];
    let mut checked = 0;
    for route in routes() {
        let (uri, body) = sample_request(&route);
        for (token, role) in &roles {
            // A fresh fixture for deletions, so each role finds the file.
            let f = Fixture::new().await;
            let a = f
                .send(route.method.clone(), &uri, Some(token), body.clone())
                .await;
            let allowed = needed(&route).is_none_or(|access| allows(role, access));
            if allowed {
                assert!(
                    a.status.is_success()
                        || (route.path == "/events" && a.status == StatusCode::BAD_REQUEST),
                    "{} {uri} as {token}: {} {}",
                    route.method,
                    a.status,
                    a.text()
                );
            } else {
                a.expect(StatusCode::FORBIDDEN, Some("forbidden"));
            }
            // Without a token: 401 unless public.
            let anonymous = f.send(route.method.clone(), &uri, None, body.clone()).await;
            if needed(&route).is_some() {
                anonymous.expect(StatusCode::UNAUTHORIZED, Some("missing_token"));
            } else {
                anonymous.expect(StatusCode::OK, None);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes().len() * roles.len());
}

// --- OpenAPI ---

#[test]
fn the_openapi_document_matches_the_routes() {
    let doc = openapi_document();
    // Valid JSON with the required top-level fields (OpenAPI 3.0.3 §4.7.1).
    let text = serde_json::to_string(&doc).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert!(doc["paths"].is_object());

    let from_routes: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.path.to_owned(), r.method.as_str().to_lowercase()))
        .collect();
    let mut from_doc = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            from_doc.insert((path.clone(), method.clone()));
            // Every path parameter is declared, and only those.
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let templated: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            assert_eq!(declared, templated, "{method} {path}");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            assert!(op["summary"].is_string(), "{method} {path}");
        }
    }
    assert_eq!(from_doc, from_routes);

    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push(x.as_str().unwrap());
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
}

#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let f = Fixture::new().await;
    for route in routes() {
        let (uri, body) = sample_request(&route);
        let a = f.send(route.method.clone(), &uri, Some(ADMIN), body).await;
        // A 404 of the resource (the DELETE ran first) is fine; one of the
        // router is not.
        assert!(
            a.status != StatusCode::NOT_FOUND || a.json()["error"]["message"] != "no such route",
            "{} {uri}: {}",
            route.method,
            a.text()
        );
        assert_ne!(
            a.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {uri}",
            route.method
        );
    }
}

/// The rule in one place: an agent token reads neither another
/// agent's calls nor any recording; QA reads recordings but steers nothing.
#[tokio::test]
async fn agents_are_confined_and_qa_reads_but_does_not_steer() {
    let f = Fixture::new().await;
    let calls = f.get("/api/v1/calls", AGENT1).await;
    assert!(calls.json()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["agent"] == "1001"));
    f.post("/api/v1/calls/8/hold", AGENT1, None)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    f.get("/api/v1/records/call-2%40pc", AGENT1)
        .await
        .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    for uri in [
        "/api/v1/recordings",
        "/api/v1/recordings/call-1%40pc",
        "/api/v1/recordings/call-1%40pc/audio",
        "/api/v1/recordings/call-2%40pc/audio",
    ] {
        f.get(uri, AGENT1)
            .await
            .expect(StatusCode::FORBIDDEN, Some("forbidden"));
        f.get(uri, QA).await.expect(StatusCode::OK, None);
    }
    for (uri, body) in [
        ("/api/v1/calls/7/hangup", None),
        ("/api/v1/calls/7/hold", None),
        (
            "/api/v1/calls/7/transfer",
            Some(json!({ "target": "queue:sales" })),
        ),
        ("/api/v1/calls/7/recording/pause", None),
        ("/api/v1/agents/1001/pause", Some(json!({ "reason": "x" }))),
        (
            "/api/v1/calls",
            Some(json!({ "agent": "1001", "number": "1" })),
        ),
    ] {
        f.post(uri, QA, body)
            .await
            .expect(StatusCode::FORBIDDEN, Some("forbidden"));
    }
    // The agent's hold on call 8 went to the core as agent 1001's, which
    // refused it; QA's requests never left the API.
    let steering: Vec<Command> = f
        .take_commands()
        .into_iter()
        .filter(|c| !matches!(c, Command::ListCalls))
        .collect();
    assert_eq!(
        steering,
        vec![Command::AsAgent {
            agent: "1001".into(),
            steer: Box::new(Command::Hold {
                call: 8,
                hold: true
            }),
        }]
    );
}
