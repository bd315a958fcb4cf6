//! The API's errors: one JSON shape, a stable machine-readable code, and the
//! HTTP status that goes with it (docs/api.md lists them).
//!
//! ```json
//! { "error": { "code": "not_found", "message": "no call 42" } }
//! ```

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::control::{ControlError, ControlErrorKind};

/// Why a request was not served. Grouped by cause; each variant has one
/// status and one stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request does not fit the API's schema: a body that is not the
    /// expected JSON, a query parameter of the wrong form (400).
    #[error("{0}")]
    BadRequest(String),
    /// No `Authorization: Bearer` token (401).
    #[error("a bearer token is required")]
    MissingToken,
    /// A token that is not configured (401).
    #[error("the token is not valid")]
    InvalidToken,
    /// The token's role may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such route, agent, call, record or recording (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The command does not fit the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but the call core found it meaningless (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The Range header asks for bytes the file does not have (416).
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable { length: u64 },
    /// Too many failed authentications from this address (429).
    #[error("too many failed authentications; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The call core cannot do it now, did not answer in time, or is not
    /// running (503).
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side: the store failed, a file could not be read, the
    /// call core answered something unexpected (500). The message is logged
    /// in full; the client gets a generic one.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MissingToken | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MissingToken => "missing_token",
            ApiError::InvalidToken => "invalid_token",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Every code, for the OpenAPI document and docs.
    pub const CODES: &'static [&'static str] = &[
        "bad_request",
        "missing_token",
        "invalid_token",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
        "unprocessable",
        "range_not_satisfiable",
        "rate_limited",
        "unavailable",
        "internal",
    ];

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound(message.into())
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into())
    }
}

/// The call core's refusals map one to one onto statuses.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e.kind {
            ControlErrorKind::NotFound => ApiError::NotFound(e.message),
            ControlErrorKind::Conflict => ApiError::Conflict(e.message),
            ControlErrorKind::Invalid => ApiError::Unprocessable(e.message),
            ControlErrorKind::Unavailable => ApiError::Unavailable(e.message),
            ControlErrorKind::Forbidden => ApiError::Forbidden(e.message),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "API request failed");
                "internal error; see the gateway log".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({ "error": { "code": self.code(), "message": message } });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            // RFC 6750 §3: a 401 names the scheme.
            ApiError::MissingToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"switchboard\""),
                );
            }
            ApiError::InvalidToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"switchboard\", error=\"invalid_token\"",
                    ),
                );
            }
            // RFC 6585 §4.
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // RFC 9110 §14.4: the current length of the representation.
            ApiError::RangeNotSatisfiable { length } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}
