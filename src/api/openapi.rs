//! The OpenAPI 3.0 document of the API, written by hand and served at
//! `/api/v1/openapi.json`. A test checks that its paths and methods are
//! exactly the router's.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::events::EVENT_TYPES;
use super::records::CSV_COLUMNS;

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": location == "path",
        "description": description,
        "schema": schema,
    })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn time(name: &str, what: &str) -> Value {
    param(
        name,
        "query",
        &format!(
            "{what} (RFC 3339, e.g. 2026-11-23T00:00:00Z); calls that arrived {}",
            if name == "from" {
                "at or after it"
            } else {
                "before it"
            }
        ),
        json!({ "type": "string", "format": "date-time" }),
    )
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// An operation. `ok` is the success status and its response object;
/// `errors` the error statuses it can answer besides 401 and 429 (when it
/// needs a token: `roles` does not start with "none") and 500.
fn op(
    tag: &str,
    summary: &str,
    roles: &str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (&str, Value),
    errors: &[&str],
) -> Value {
    let secured = !roles.starts_with("none");
    let mut responses = Map::new();
    responses.insert(ok.0.to_owned(), ok.1);
    let mut all: Vec<&str> = errors.to_vec();
    if secured {
        all.extend(["401", "429"]);
    }
    all.push("500");
    for code in all {
        responses.insert(
            code.to_owned(),
            json!({ "$ref": format!("#/components/responses/E{code}") }),
        );
    }
    let mut o = json!({
        "tags": [tag],
        "summary": summary,
        "description": format!("Roles: {roles}."),
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = body {
        o["requestBody"] = json!({ "required": true, "content": json_content(body) });
    }
    if !secured {
        o["security"] = json!([]);
    }
    o
}

fn done() -> (&'static str, Value) {
    (
        "204",
        json!({ "description": "Done. Commands the call core answers with a call view return 200 with `{\"call\": Call}` instead." }),
    )
}

fn ok_json(description: &str, schema: Value) -> (&'static str, Value) {
    (
        "200",
        json!({ "description": description, "content": json_content(schema) }),
    )
}

fn list_of(key: &str, item: &str) -> Value {
    object(
        json!({ key: { "type": "array", "items": schema_ref(item) } }),
        &[key],
    )
}

fn components() -> Value {
    let error_codes: Vec<&str> = ApiError::CODES.to_vec();
    let mut responses = Map::new();
    for (code, what) in [
        ("400", "The request does not fit the schema (bad_request)."),
        ("401", "No token (missing_token) or an unknown one (invalid_token)."),
        ("403", "The token's role may not do this (forbidden)."),
        ("404", "No such agent, call, record or recording (not_found)."),
        ("409", "The command does not fit the current state (conflict)."),
        ("416", "No byte of the requested range exists (range_not_satisfiable); Content-Range: bytes */<length>."),
        ("422", "Well-formed but refused by the call core as meaningless (unprocessable)."),
        ("429", "Too many failed authentications from this address (rate_limited); see Retry-After."),
        ("500", "A fault on the gateway's side (internal)."),
        ("503", "The call core cannot do it now or did not answer in time (unavailable)."),
    ] {
        responses.insert(
            format!("E{code}"),
            json!({ "description": what, "content": json_content(schema_ref("Error")) }),
        );
    }
    let quality = object(
        json!({
            "packets_received": { "type": "integer" },
            "packets_sent": { "type": "integer" },
            "lost": { "type": "integer" },
            "jitter_ms": { "type": "number" },
            "mos": { "type": "number" },
            "rtt_ms": { "type": "number", "nullable": true },
        }),
        &[
            "packets_received",
            "packets_sent",
            "lost",
            "jitter_ms",
            "mos",
        ],
    );
    let nullable_string = json!({ "type": "string", "nullable": true });
    let report_row = object(
        json!({
            "name": string(),
            "offered": { "type": "integer" },
            "answered": { "type": "integer" },
            "abandoned": { "type": "integer" },
            "overflowed": { "type": "integer", "description": "Queue rows only." },
            "timed_out": { "type": "integer", "description": "Queue rows only." },
            "abandon_rate": { "type": "number", "nullable": true },
            "asa_secs": { "type": "number", "nullable": true },
            "aht_secs": { "type": "number", "nullable": true },
            "service_level": { "type": "number", "nullable": true },
            "answered_within_threshold": { "type": "integer" },
            "longest_wait_secs": { "type": "number" },
            "talk_secs": { "type": "number" },
            "hold_secs": { "type": "number" },
            "wrap_up_secs": { "type": "number" },
            "occupancy": { "type": "number", "nullable": true },
        }),
        &[
            "name",
            "offered",
            "answered",
            "abandoned",
            "longest_wait_secs",
        ],
    );
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "A token from [[api.tokens]]." }
        },
        "responses": responses,
        "schemas": {
            "Error": object(json!({
                "error": object(json!({
                    "code": { "type": "string", "enum": error_codes },
                    "message": string(),
                }), &["code", "message"]),
            }), &["error"]),
            "Agent": object(json!({
                "id": string(),
                "state": { "type": "string", "enum": ["logged_out", "available", "offered", "on_call", "on_hold", "wrap_up", "paused"] },
                "reason": string(),
                "call": { "type": "integer" },
                "registered": { "type": "integer" },
                "queues": { "type": "array", "items": string() },
            }), &["id", "state", "registered", "queues"]),
            "WaitingCaller": object(json!({
                "call": { "type": "integer" },
                "caller": string(),
                "position": { "type": "integer" },
                "waited_secs": { "type": "integer" },
            }), &["call", "caller", "position", "waited_secs"]),
            "Queue": object(json!({
                "name": string(),
                "waiting": { "type": "array", "items": schema_ref("WaitingCaller") },
                "longest_wait_secs": { "type": "integer" },
                "agents": { "type": "object", "additionalProperties": { "type": "array", "items": string() }, "description": "Member agents by state." },
            }), &["name", "waiting", "longest_wait_secs", "agents"]),
            "Leg": object(json!({
                "role": { "type": "string", "enum": ["caller", "agent", "customer"] },
                "call_id": string(),
                "party": string(),
            }), &["role", "call_id", "party"]),
            "Call": object(json!({
                "call": { "type": "integer" },
                "direction": { "type": "string", "enum": ["inbound", "outbound", "internal"] },
                "state": { "type": "string", "enum": ["queued", "ringing", "connected", "held"] },
                "caller": string(),
                "dialled": string(),
                "queue": string(),
                "agent": string(),
                "legs": { "type": "array", "items": schema_ref("Leg") },
                "recording": { "type": "boolean" },
                "recording_paused": { "type": "boolean" },
            }), &["call", "direction", "state", "caller", "dialled", "legs", "recording", "recording_paused"]),
            "Quality": quality,
            "Offer": object(json!({
                "agent": string(),
                "at": { "type": "string", "format": "date-time" },
                "result": { "type": "string", "enum": ["answered", "ring_timeout", "rejected", "cancelled", "failed"] },
                "ended": { "type": "string", "format": "date-time", "nullable": true },
            }), &["agent", "at", "result"]),
            "Record": object(json!({
                "id": { "type": "string", "description": "The caller leg's SIP Call-ID; URL-encode it in paths." },
                "direction": { "type": "string", "enum": ["inbound", "outbound", "internal"] },
                "caller": string(),
                "dialled": string(),
                "queue": nullable_string,
                "ivr_choices": string(),
                "offers": { "type": "array", "items": schema_ref("Offer") },
                "agent": nullable_string,
                "arrived": { "type": "string", "format": "date-time" },
                "queued": { "type": "string", "format": "date-time", "nullable": true },
                "answered": { "type": "string", "format": "date-time", "nullable": true },
                "ended": { "type": "string", "format": "date-time" },
                "wait_ms": { "type": "integer" },
                "talk_ms": { "type": "integer" },
                "hold_ms": { "type": "integer" },
                "wrap_up_ms": { "type": "integer" },
                "outcome": { "type": "string", "enum": ["answered", "abandoned", "overflowed", "timed_out", "failed"] },
                "hung_up_by": { "type": "string", "nullable": true, "enum": ["caller", "agent", "customer", "gateway", null] },
                "end_reason": string(),
                "recorded": { "type": "boolean" },
                "caller_quality": { "allOf": [schema_ref("Quality")], "nullable": true },
                "agent_quality": { "allOf": [schema_ref("Quality")], "nullable": true },
            }), &["id", "direction", "caller", "dialled", "offers", "arrived", "ended", "outcome", "recorded"]),
            "Report": object(json!({
                "from": { "type": "string", "format": "date-time" },
                "to": { "type": "string", "format": "date-time" },
                "service_level_secs": { "type": "integer" },
                "queues": { "type": "array", "items": schema_ref("ReportRow") },
                "agents": { "type": "array", "items": schema_ref("ReportRow") },
            }), &["from", "to", "service_level_secs"]),
            "ReportRow": report_row,
            "RecordingHit": object(json!({
                "id": string(),
                "arrived": { "type": "string", "format": "date-time" },
                "caller": string(),
                "dialled": string(),
                "queue": nullable_string,
                "agent": nullable_string,
                "outcome": string(),
                "duration_ms": { "type": "integer", "description": "Talk plus hold." },
                "href": string(),
                "audio": string(),
            }), &["id", "arrived", "caller", "duration_ms", "href", "audio"]),
            "Recording": object(json!({
                "recording": object(json!({
                    "id": string(),
                    "bytes": { "type": "integer" },
                    "audio": string(),
                    "file": { "type": "object", "nullable": true, "description": "From the JSON sidecar: started, sample_rate, channels, complete, ended_by, frames, duration_s, pauses [{start_s, end_s}], gap_frames_left/right, unpadded_frames, dropped_chunks, dropped_frames, error." },
                    "legs": { "type": "array", "items": object(json!({
                        "channel": { "type": "string", "enum": ["left", "right"] },
                        "party": string(),
                        "who": nullable_string,
                        "quality": { "allOf": [schema_ref("Quality")], "nullable": true },
                    }), &["channel", "party"]) },
                    "record": schema_ref("Record"),
                }), &["id", "bytes", "audio", "legs", "record"]),
            }), &["recording"]),
            "Event": {
                "type": "object",
                "description": "One event: seq, time and type plus the type's own fields (docs/api.md lists them). The stream also sends {\"type\":\"hello\",\"latest\":seq} first and {\"type\":\"gap\",\"missed\":n,\"first_available\":seq} when events asked for are no longer kept.",
                "properties": {
                    "seq": { "type": "integer" },
                    "time": { "type": "string", "format": "date-time" },
                    "type": { "type": "string", "enum": EVENT_TYPES },
                },
                "required": ["seq", "time", "type"],
                "additionalProperties": true,
            },
            "Metrics": { "type": "string", "description": "Prometheus text exposition format 0.0.4." },
        }
    })
}

fn agent_path() -> Value {
    param("agent", "path", "The agent's id.", string())
}

fn call_path() -> Value {
    param(
        "call",
        "path",
        "The call's number (`call` in call views and events).",
        json!({ "type": "integer", "format": "int64", "minimum": 0 }),
    )
}

fn id_path(what: &str) -> Value {
    param(
        "id",
        "path",
        &format!(
            "The {what}'s id: the call record's id (the caller leg's SIP Call-ID), URL-encoded."
        ),
        string(),
    )
}

fn record_filters() -> Vec<Value> {
    vec![
        time("from", "Start"),
        time("to", "End"),
        param("queue", "query", "The call's last queue.", string()),
        param(
            "agent",
            "query",
            "The answering agent (an agent token may give only its own).",
            string(),
        ),
        param(
            "caller",
            "query",
            "Text the caller's number or URI contains.",
            string(),
        ),
        param(
            "outcome",
            "query",
            "How the call ended.",
            json!({ "type": "string", "enum": ["answered", "abandoned", "overflowed", "timed_out", "failed"] }),
        ),
    ]
}

fn paths() -> Value {
    const LIVE_READ: &str = "admin, supervisor, qa, agent (its own agent, member queues and calls)";
    const STEER_AGENT: &str = "admin, supervisor, agent (itself only)";
    const STEER_CALL: &str = "admin, supervisor, agent (calls it handles)";
    const RECORDS: &str = "admin, supervisor, qa, agent (calls it answered)";
    const REPORTS: &str = "admin, supervisor, qa";
    const RECORDINGS: &str = "admin, qa";
    let agent_cmd = |summary: &str, body: Option<Value>| {
        op(
            "agents",
            summary,
            STEER_AGENT,
            vec![agent_path()],
            body,
            done(),
            &["400", "403", "404", "409", "422", "503"],
        )
    };
    let call_cmd = |summary: &str, body: Option<Value>| {
        op(
            "calls",
            summary,
            STEER_CALL,
            vec![call_path()],
            body,
            done(),
            &["400", "403", "404", "409", "422", "503"],
        )
    };
    let offer = |summary: &str| {
        op(
            "agents",
            summary,
            STEER_AGENT,
            vec![agent_path(), call_path()],
            None,
            done(),
            &["400", "403", "404", "409", "503"],
        )
    };
    let limit = |max: usize| {
        param(
            "limit",
            "query",
            &format!("At most this many (1 to {max})."),
            json!({ "type": "integer", "minimum": 1, "maximum": max }),
        )
    };
    let mut records_params = record_filters();
    records_params.push(limit(crate::storage::MAX_CALL_RECORDS));
    let mut csv_params = record_filters();
    csv_params.push(limit(super::records::MAX_CSV_ROWS));
    let report_params = |extra: &str| {
        vec![
            param("from", "query", "Start (RFC 3339), required: calls that arrived at or after it.", json!({ "type": "string", "format": "date-time" })),
            param("to", "query", "End (RFC 3339), required: calls that arrived before it. At most 400 days after from.", json!({ "type": "string", "format": "date-time" })),
            param(extra, "query", &format!("Only this {extra}'s row."), string()),
        ]
    };
    let recording_params = vec![
        time("from", "Start"),
        time("to", "End"),
        param("agent", "query", "The answering agent.", string()),
        param("queue", "query", "The call's last queue.", string()),
        param(
            "caller",
            "query",
            "Text the caller's number or URI contains.",
            string(),
        ),
        param(
            "min_duration",
            "query",
            "Connected (talk plus hold) at least this many seconds.",
            json!({ "type": "integer", "minimum": 0 }),
        ),
        limit(crate::storage::MAX_CALL_RECORDS),
    ];
    let reason = object(
        json!({ "reason": { "type": "string", "maxLength": 128 } }),
        &["reason"],
    );
    let target = object(
        json!({ "target": { "type": "string", "description": "queue:<name>, agent:<id>, ivr:<name> or an external number." } }),
        &["target"],
    );
    let digits = object(
        json!({ "digits": { "type": "string", "description": "0-9, *, #, A-D." } }),
        &["digits"],
    );
    let originate = object(
        json!({ "agent": string(), "number": { "type": "string", "description": "The customer's number, dialled through the trunk." } }),
        &["agent", "number"],
    );
    json!({
        "/healthz": { "get": op("health", "Liveness: the API answers", "none (no token)", vec![], None, ok_json("Alive.", object(json!({ "status": string() }), &["status"])), &[]) },
        "/readyz": { "get": op("health", "Readiness: the call core answers within a second", "none (no token)", vec![], None, ok_json("Ready.", object(json!({ "status": string() }), &["status"])), &["503"]) },
        "/metrics": { "get": op("health", "Prometheus metrics of the call core and the API", "admin, supervisor", vec![], None,
            ("200", json!({ "description": "Metrics.", "content": { "text/plain": { "schema": schema_ref("Metrics") } } })), &["403", "503"]) },
        "/openapi.json": { "get": op("health", "This document", "none (no token)", vec![], None, ok_json("The OpenAPI document.", json!({ "type": "object" })), &[]) },
        "/agents": { "get": op("agents", "Agents with their state", LIVE_READ, vec![], None, ok_json("The agents.", list_of("agents", "Agent")), &["503"]) },
        "/agents/{agent}/login": { "post": agent_cmd("Log the agent in", None) },
        "/agents/{agent}/logout": { "post": agent_cmd("Log the agent out", None) },
        "/agents/{agent}/pause": { "post": agent_cmd("Pause the agent with a reason", Some(reason)) },
        "/agents/{agent}/unpause": { "post": agent_cmd("Make the paused agent available", None) },
        "/agents/{agent}/offers/{call}/accept": { "post": offer("Accept a call offered on the agent's event stream: it is connected to the agent's phone") },
        "/agents/{agent}/offers/{call}/reject": { "post": offer("Reject an offered call: it goes to the next agent") },
        "/queues": { "get": op("queues", "Queues: waiting callers with their waits, agents by state, longest wait", LIVE_READ, vec![], None, ok_json("The queues.", list_of("queues", "Queue")), &["503"]) },
        "/calls": {
            "get": op("calls", "Calls in progress with their legs", LIVE_READ, vec![], None, ok_json("The calls.", list_of("calls", "Call")), &["503"]),
            "post": op("calls", "Click-to-call: the agent's phone first, then the customer", STEER_AGENT, vec![], Some(originate),
                ("201", json!({ "description": "The call (204 when the call core names none yet).", "content": json_content(object(json!({ "call": schema_ref("Call") }), &["call"])) })),
                &["400", "403", "404", "409", "422", "503"]),
        },
        "/calls/{call}/hangup": { "post": call_cmd("Hang up the call", None) },
        "/calls/{call}/hold": { "post": call_cmd("Hold: the caller hears hold music", None) },
        "/calls/{call}/unhold": { "post": call_cmd("Resume a held call", None) },
        "/calls/{call}/transfer": { "post": call_cmd("Blind transfer to an agent, a queue, a menu or an external number", Some(target)) },
        "/calls/{call}/dtmf": { "post": call_cmd("Send DTMF digits (RFC 4733) to the other party", Some(digits)) },
        "/calls/{call}/recording/pause": { "post": call_cmd("Pause the call's recording (silence is recorded)", None) },
        "/calls/{call}/recording/resume": { "post": call_cmd("Resume the call's recording", None) },
        "/records": { "get": op("records", "Call records, newest first", RECORDS, records_params, None, ok_json("The records.", list_of("records", "Record")), &["400", "403"]) },
        "/records.csv": { "get": op("records", "Call records as CSV (RFC 4180)", RECORDS, csv_params, None,
            ("200", json!({ "description": format!("A header row and one row per record. Columns: {}.", CSV_COLUMNS.join(", ")), "content": { "text/csv": { "schema": string() } } })),
            &["400", "403"]) },
        "/records/{id}": { "get": op("records", "One call record", RECORDS, vec![id_path("record")], None,
            ok_json("The record.", object(json!({ "record": schema_ref("Record") }), &["record"])), &["400", "403", "404"]) },
        "/reports/queues": { "get": op("reports", "Queue report over a time range", REPORTS, report_params("queue"), None, ok_json("One row per queue.", schema_ref("Report")), &["400", "403"]) },
        "/reports/agents": { "get": op("reports", "Agent report over a time range", REPORTS, report_params("agent"), None, ok_json("One row per agent.", schema_ref("Report")), &["400", "403"]) },
        "/recordings": { "get": op("recordings", "Search recordings", RECORDINGS, recording_params, None, ok_json("Matching recordings, newest first.", list_of("recordings", "RecordingHit")), &["400", "403"]) },
        "/recordings/{id}": {
            "get": op("recordings", "Recording metadata: call record, legs, duration, pauses, media quality", RECORDINGS, vec![id_path("recording")], None,
                ok_json("The metadata.", schema_ref("Recording")), &["400", "403", "404"]),
            "delete": op("recordings", "Delete the recording (WAV and sidecar); the call record stays without it", "admin", vec![id_path("recording")], None,
                ("204", json!({ "description": "Deleted." })), &["400", "403", "404"]),
        },
        "/recordings/{id}/audio": { "get": op("recordings", "The WAV, byte for byte, with Range support", RECORDINGS,
            vec![id_path("recording"), param("Range", "header", "One range, bytes=a-b, bytes=a- or bytes=-n. Several ranges or a malformed header get the whole file (200).", string()),
                param("If-Range", "header", "The ETag or Last-Modified of an earlier answer: the Range is honoured only if the file is still that version, else the whole file (200).", string())],
            None,
            ("200", json!({
                "description": "The whole file. With a single satisfiable range (and a matching If-Range, if sent): 206 Partial Content with Content-Range. Accept-Ranges, ETag and Last-Modified.",
                "content": { "audio/wav": { "schema": { "type": "string", "format": "binary" } } },
            })),
            &["400", "403", "404", "416"]) },
        "/events": { "get": op("events", "The event stream (WebSocket); ?since=<seq> resumes, ?types=a,b filters, ?token= for browsers", "admin, supervisor, qa (all events), agent (its own)",
            vec![
                param("since", "query", "Resume after this sequence number (0: everything kept).", json!({ "type": "integer", "minimum": 0 })),
                param("types", "query", "Comma-separated event types to keep.", string()),
                param("token", "query", "The token, for clients that cannot set headers.", string()),
            ],
            None,
            ("101", json!({ "description": "Switching Protocols: JSON text messages, one Event each (see the Event schema)." })),
            &["400", "403"]) },
    })
}

/// The document.
pub fn document() -> Value {
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Switchboard control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agents, queues, calls, call records, reports, recordings and events of a Switchboard gateway. See docs/api.md.",
        },
        "servers": [{ "url": super::routes::PREFIX }],
        "security": [{ "bearer": [] }],
        "paths": paths(),
        "components": components(),
    });
    // The one operation with two success answers.
    if let Some(audio) = doc.pointer_mut("/paths/~1recordings~1{id}~1audio/get/responses") {
        audio["206"] = json!({
            "description": "The requested range, with Content-Range: bytes a-b/length.",
            "content": { "audio/wav": { "schema": { "type": "string", "format": "binary" } } },
        });
    }
    doc
}

pub async fn serve() -> Response {
    Json(document()).into_response()
}
