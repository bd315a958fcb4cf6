//! `GET /api/v1/events`: the event stream over a WebSocket (RFC 6455).
//!
//! Each event is one text message, `{"seq":..,"time":..,"type":..,...}`.
//! Besides events the server sends two messages of its own: `hello` first
//! (`{"type":"hello","latest":<seq>}`) and `gap` when events the client
//! asked for are no longer kept (`{"type":"gap","missed":n,
//! "first_available":seq}`). `?since=<seq>` resumes after the last event
//! the client saw; without it the stream starts with the next event.
//! `?types=a,b` keeps only those event types.
//!
//! Agent tokens receive only the events that concern their agent (see
//! `events`); the other roles receive everything. Browsers, which cannot
//! set headers on a WebSocket, may pass the token as `?token=`.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::auth::{authenticate, Access, Caller};
use super::error::ApiError;
use super::events::{Backlog, StampedEvent, EVENT_TYPES};
use super::extract::ApiQuery;
use super::state::ApiState;
use crate::config::ApiRole;

/// Events sent per read of the hub.
const BATCH: usize = 256;
/// A ping this often keeps proxies from closing an idle stream and finds
/// dead clients.
const PING_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    token: Option<String>,
    since: Option<u64>,
    types: Option<String>,
}

/// The caller of the event stream: a header token or `?token=`.
pub struct StreamCaller(pub Caller);

impl FromRequestParts<ApiState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let ApiQuery(q) = ApiQuery::<EventsQuery>::from_request_parts(parts, state).await?;
        authenticate(state, parts, q.token.as_deref()).map(StreamCaller)
    }
}

/// Whether `caller` sees `event`.
pub fn visible(caller: &Caller, event: &StampedEvent) -> bool {
    match &caller.role {
        ApiRole::Agent(me) => event.agent.as_deref() == Some(me.as_str()),
        _ => true,
    }
}

/// The `types` filter: `None` for all.
fn type_filter(types: Option<&str>) -> Result<Option<HashSet<String>>, ApiError> {
    let Some(list) = types.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut set = HashSet::new();
    for t in list.split(',').map(str::trim) {
        if !EVENT_TYPES.contains(&t) {
            return Err(ApiError::bad_request(format!(
                "unknown event type {t:?} (one of {})",
                EVENT_TYPES.join(", ")
            )));
        }
        set.insert(t.to_owned());
    }
    Ok(Some(set))
}

pub async fn events(
    StreamCaller(caller): StreamCaller,
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadLive)?;
    let types = type_filter(q.types.as_deref())?;
    let ws = ws.map_err(|e| {
        ApiError::bad_request(format!(
            "this endpoint is a WebSocket; send an upgrade request ({e})"
        ))
    })?;
    let since = q.since.unwrap_or_else(|| state.events.latest());
    Ok(ws.on_upgrade(move |socket| stream(socket, state, caller, since, types)))
}

/// Why the stream stopped (for the log).
enum End {
    ClientGone,
    Shutdown,
}

async fn send(socket: &mut WebSocket, value: &serde_json::Value) -> Result<(), End> {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .map_err(|_| End::ClientGone)
}

async fn stream(
    mut socket: WebSocket,
    state: ApiState,
    caller: Caller,
    since: u64,
    types: Option<HashSet<String>>,
) {
    state.counters.event_streams.inc();
    let end = pump(&mut socket, &state, &caller, since, types.as_ref()).await;
    state.counters.event_streams.dec();
    if let End::Shutdown = end {
        let _ = socket.send(Message::Close(None)).await;
    }
}

async fn pump(
    socket: &mut WebSocket,
    state: &ApiState,
    caller: &Caller,
    since: u64,
    types: Option<&HashSet<String>>,
) -> End {
    let mut wake = state.events.watch();
    let mut shutdown = state.shutdown.clone();
    let mut cursor = since;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    if let Err(end) = send(
        socket,
        &json!({ "type": "hello", "latest": state.events.latest() }),
    )
    .await
    {
        return end;
    }
    loop {
        if *shutdown.borrow() {
            return End::Shutdown;
        }
        wake.borrow_and_update();
        let events = match state.events.after(cursor, BATCH) {
            Backlog::Events(events) => events,
            Backlog::Gap {
                first_available,
                missed,
                events,
            } => {
                let gap =
                    json!({ "type": "gap", "missed": missed, "first_available": first_available });
                if let Err(end) = send(socket, &gap).await {
                    return end;
                }
                events
            }
        };
        if let Some(last) = events.last() {
            cursor = last.seq;
            for event in events.iter().filter(|e| visible(caller, e)) {
                if types.is_some_and(|t| !t.contains(event.kind())) {
                    continue;
                }
                let Ok(value) = serde_json::to_value(&**event) else {
                    continue;
                };
                if let Err(end) = send(socket, &value).await {
                    return end;
                }
            }
            continue;
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return End::Shutdown },
            _ = shutdown.changed() => return End::Shutdown,
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return End::ClientGone;
                }
            }
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::ClientGone,
                // Pongs are answered by the library; anything a client
                // sends is ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control::Event;

    #[test]
    fn agents_see_their_own_events_only() {
        let stamped = |agent: Option<&str>| StampedEvent {
            seq: 1,
            time: String::new(),
            event: Event::CallHeld {
                call: 1,
                agent: "x".into(),
            },
            at: std::time::UNIX_EPOCH,
            agent: agent.map(str::to_owned),
        };
        let agent = Caller {
            role: ApiRole::Agent("1001".parse().unwrap()),
        };
        let qa = Caller { role: ApiRole::Qa };
        assert!(visible(&agent, &stamped(Some("1001"))));
        assert!(!visible(&agent, &stamped(Some("1002"))));
        assert!(!visible(&agent, &stamped(None)));
        assert!(visible(&qa, &stamped(None)));
    }

    #[test]
    fn type_filters_name_known_types() {
        assert_eq!(type_filter(None).unwrap(), None);
        assert_eq!(type_filter(Some("")).unwrap(), None);
        let set = type_filter(Some("call_answered, call_ended"))
            .unwrap()
            .unwrap();
        assert!(set.contains("call_answered") && set.contains("call_ended"));
        assert!(type_filter(Some("call_answered,bogus")).is_err());
    }
}
