//! The route table: every route of `/api/v1`, in one list that builds the
//! router and that the OpenAPI test compares with the document.

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use super::error::ApiError;
use super::state::ApiState;
use super::{live, metrics, openapi, recordings, records, reports, ws};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

/// One route: method, path below [`PREFIX`] (`{name}` for parameters, as
/// in OpenAPI) and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<ApiState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<ApiState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route.
pub fn routes() -> Vec<Route> {
    use axum::routing::{delete as del, get, post};
    use Method as M;
    vec![
        route(M::GET, "/healthz", get(metrics::healthz)),
        route(M::GET, "/readyz", get(metrics::readyz)),
        route(M::GET, "/metrics", get(metrics::metrics)),
        route(M::GET, "/openapi.json", get(openapi::serve)),
        route(M::GET, "/agents", get(live::list_agents)),
        route(M::POST, "/agents/{agent}/login", post(live::login)),
        route(M::POST, "/agents/{agent}/logout", post(live::logout)),
        route(M::POST, "/agents/{agent}/pause", post(live::pause)),
        route(M::POST, "/agents/{agent}/unpause", post(live::unpause)),
        route(
            M::POST,
            "/agents/{agent}/offers/{call}/accept",
            post(live::accept_offer),
        ),
        route(
            M::POST,
            "/agents/{agent}/offers/{call}/reject",
            post(live::reject_offer),
        ),
        route(M::GET, "/queues", get(live::list_queues)),
        route(M::GET, "/calls", get(live::list_calls)),
        route(M::POST, "/calls", post(live::originate)),
        route(M::POST, "/calls/{call}/hangup", post(live::hangup)),
        route(M::POST, "/calls/{call}/hold", post(live::hold)),
        route(M::POST, "/calls/{call}/unhold", post(live::unhold)),
        route(M::POST, "/calls/{call}/transfer", post(live::transfer)),
        route(M::POST, "/calls/{call}/dtmf", post(live::dtmf)),
        route(
            M::POST,
            "/calls/{call}/recording/pause",
            post(live::pause_recording),
        ),
        route(
            M::POST,
            "/calls/{call}/recording/resume",
            post(live::resume_recording),
        ),
        route(M::GET, "/records", get(records::list_records)),
        route(M::GET, "/records.csv", get(records::records_csv)),
        route(M::GET, "/records/{id}", get(records::get_record)),
        route(M::GET, "/reports/queues", get(reports::queue_report)),
        route(M::GET, "/reports/agents", get(reports::agent_report)),
        route(M::GET, "/recordings", get(recordings::search)),
        route(M::GET, "/recordings/{id}", get(recordings::metadata)),
        route(M::DELETE, "/recordings/{id}", del(recordings::delete)),
        route(M::GET, "/recordings/{id}/audio", get(recordings::audio)),
        route(M::GET, "/events", get(ws::events)),
    ]
}

/// The router of the whole API, with JSON 404 and 405 answers.
pub fn router(state: ApiState) -> Router {
    let mut api: Router<ApiState> = Router::new();
    let mut by_path: Vec<(&'static str, MethodRouter<ApiState>)> = Vec::new();
    for r in routes() {
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, existing)) => {
                let merged = std::mem::replace(existing, MethodRouter::new()).merge(r.handler);
                *existing = merged;
            }
            None => by_path.push((r.path, r.handler)),
        }
    }
    for (path, handler) in by_path {
        api = api.route(path, handler);
    }
    let api = api.method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let counters = state.counters.clone();
    Router::new()
        .nest(PREFIX, api)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            counters,
            metrics::count_responses,
        ))
        .with_state(state)
}
