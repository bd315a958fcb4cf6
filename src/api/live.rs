//! Live resources, answered by the call core: agents, queues, calls, and
//! the commands that steer them.
//!
//! An agent token sees only its own agent, the queues it is a member of
//! and the calls it handles, and steers only those. Whether a call is the
//! agent's is checked against the call list just before the command is
//! sent; a call that changes hands in between is the call core's to
//! refuse.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::state::ApiState;
use crate::config::AgentId;
use crate::control::{CallNumber, CallView, Command, Reply};

/// Longest free text accepted in a command (pause reasons, targets,
/// numbers, digits).
const MAX_TEXT: usize = 128;

fn unexpected(reply: &Reply) -> ApiError {
    ApiError::internal(format!("the call core answered {reply:?}"))
}

/// The JSON answer to a steering command.
fn command_response(reply: Reply, created: bool) -> Response {
    match reply {
        Reply::Done => StatusCode::NO_CONTENT.into_response(),
        Reply::Call(call) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "call": call }))).into_response()
        }
        Reply::Agents(agents) => Json(json!({ "agents": agents })).into_response(),
        Reply::Queues(queues) => Json(json!({ "queues": queues })).into_response(),
        Reply::Calls(calls) => Json(json!({ "calls": calls })).into_response(),
        Reply::Metrics(m) => Json(json!({ "metrics": m })).into_response(),
    }
}

/// A free-text field: present, not blank, not too long.
fn text(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(value.to_owned())
}

fn agent_id(text: &str) -> Result<AgentId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("agent {text:?}: {e}")))
}

// --- agents ---

pub async fn list_agents(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadLive)?;
    let Reply::Agents(mut agents) = state.command(Command::ListAgents).await? else {
        return Err(ApiError::internal("ListAgents: unexpected reply"));
    };
    if let Some(me) = caller.agent() {
        agents.retain(|a| a.id == me.as_str());
    }
    Ok(Json(json!({ "agents": agents })).into_response())
}

async fn steer_agent(
    caller: &Caller,
    state: &ApiState,
    agent: &str,
    make: impl FnOnce(String) -> Command,
) -> Result<Response, ApiError> {
    caller.require(Access::Steer)?;
    let id = agent_id(agent)?;
    caller.require_self_or_above(id.as_str())?;
    let reply = state.command(make(id.as_str().to_owned())).await?;
    Ok(command_response(reply, false))
}

pub async fn login(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(agent): ApiPath<String>,
) -> Result<Response, ApiError> {
    steer_agent(&caller, &state, &agent, |agent| Command::Login { agent }).await
}

pub async fn logout(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(agent): ApiPath<String>,
) -> Result<Response, ApiError> {
    steer_agent(&caller, &state, &agent, |agent| Command::Logout { agent }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    reason: String,
}

pub async fn pause(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(agent): ApiPath<String>,
    ApiJson(body): ApiJson<PauseBody>,
) -> Result<Response, ApiError> {
    let reason = text("reason", &body.reason)?;
    steer_agent(&caller, &state, &agent, |agent| Command::Pause {
        agent,
        reason,
    })
    .await
}

pub async fn unpause(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(agent): ApiPath<String>,
) -> Result<Response, ApiError> {
    steer_agent(&caller, &state, &agent, |agent| Command::Unpause { agent }).await
}

async fn answer_offer(
    caller: &Caller,
    state: &ApiState,
    agent: &str,
    call: CallNumber,
    accept: bool,
) -> Result<Response, ApiError> {
    steer_agent(caller, state, agent, |agent| Command::OfferAnswer {
        agent,
        call,
        accept,
    })
    .await
}

pub async fn accept_offer(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath((agent, call)): ApiPath<(String, CallNumber)>,
) -> Result<Response, ApiError> {
    answer_offer(&caller, &state, &agent, call, true).await
}

pub async fn reject_offer(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath((agent, call)): ApiPath<(String, CallNumber)>,
) -> Result<Response, ApiError> {
    answer_offer(&caller, &state, &agent, call, false).await
}

// --- queues ---

pub async fn list_queues(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadLive)?;
    let Reply::Queues(mut queues) = state.command(Command::QueueStatus).await? else {
        return Err(ApiError::internal("QueueStatus: unexpected reply"));
    };
    if let Some(me) = caller.agent() {
        queues.retain(|q| {
            q.agents
                .values()
                .any(|ids| ids.iter().any(|a| a == me.as_str()))
        });
    }
    Ok(Json(json!({ "queues": queues })).into_response())
}

// --- calls ---

async fn calls(state: &ApiState) -> Result<Vec<CallView>, ApiError> {
    match state.command(Command::ListCalls).await? {
        Reply::Calls(calls) => Ok(calls),
        other => Err(unexpected(&other)),
    }
}

pub async fn list_calls(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Response, ApiError> {
    caller.require(Access::ReadLive)?;
    let mut calls = calls(&state).await?;
    if let Some(me) = caller.agent() {
        calls.retain(|c| c.agent.as_deref() == Some(me.as_str()));
    }
    Ok(Json(json!({ "calls": calls })).into_response())
}

async fn steer_call(
    caller: &Caller,
    state: &ApiState,
    call: CallNumber,
    command: Command,
) -> Result<Response, ApiError> {
    caller.require(Access::Steer)?;
    debug_assert_eq!(command.call(), Some(call));
    // An agent steers only its own calls; the core checks that in the same
    // step as it carries the command out.
    let command = match caller.agent() {
        Some(me) => Command::AsAgent {
            agent: me.to_string(),
            steer: Box::new(command),
        },
        None => command,
    };
    let reply = state.command(command).await?;
    Ok(command_response(reply, false))
}

pub async fn hangup(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
) -> Result<Response, ApiError> {
    steer_call(&caller, &state, call, Command::Hangup { call }).await
}

pub async fn hold(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
) -> Result<Response, ApiError> {
    steer_call(&caller, &state, call, Command::Hold { call, hold: true }).await
}

pub async fn unhold(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
) -> Result<Response, ApiError> {
    steer_call(&caller, &state, call, Command::Hold { call, hold: false }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    target: String,
}

pub async fn transfer(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Response, ApiError> {
    let target = text("target", &body.target)?;
    steer_call(&caller, &state, call, Command::Transfer { call, target }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfBody {
    digits: String,
}

pub async fn dtmf(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
    ApiJson(body): ApiJson<DtmfBody>,
) -> Result<Response, ApiError> {
    let digits = text("digits", &body.digits)?;
    steer_call(&caller, &state, call, Command::SendDtmf { call, digits }).await
}

pub async fn pause_recording(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
) -> Result<Response, ApiError> {
    steer_call(
        &caller,
        &state,
        call,
        Command::Record { call, paused: true },
    )
    .await
}

pub async fn resume_recording(
    caller: Caller,
    State(state): State<ApiState>,
    ApiPath(call): ApiPath<CallNumber>,
) -> Result<Response, ApiError> {
    steer_call(
        &caller,
        &state,
        call,
        Command::Record {
            call,
            paused: false,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateBody {
    agent: String,
    number: String,
}

/// Click-to-call: 201 with the call when the core names it, 204 when it
/// only accepts the command.
pub async fn originate(
    caller: Caller,
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<OriginateBody>,
) -> Result<Response, ApiError> {
    caller.require(Access::Steer)?;
    let agent = agent_id(&body.agent)?;
    caller.require_self_or_above(agent.as_str())?;
    let number = text("number", &body.number)?;
    let reply = state
        .command(Command::Originate {
            agent: agent.as_str().to_owned(),
            number,
        })
        .await?;
    Ok(command_response(reply, true))
}
