//! The one error shape of the HTTP API, `{"error": {"code", "message"}}`, and its status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::engine::{EngineError, ErrorKind, InlineError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() } }
    }
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `not_found`, `busy`, `rate_limited`, `body_too_large`, …
    pub code: String,
    /// For people: what went wrong and what to do.
    pub message: String,
}

/// A service whose definition or code cannot run is the caller's (or the operator's) problem
/// to fix, not a server fault; a failing host step is.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let (status, code) = match e.kind() {
            ErrorKind::Service => (StatusCode::UNPROCESSABLE_ENTITY, "service_error"),
            // The host cannot start sandboxes until its operator raises a limit (/ready says so).
            ErrorKind::HostNotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            // Every run uid is taken by a live run: capacity, like a full admission queue.
            ErrorKind::Capacity => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "engine_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// An inline program that cannot run as sent is the caller's to fix; a run directory the host
/// cannot write is not.
impl From<InlineError> for ApiError {
    fn from(e: InlineError) -> ApiError {
        match &e {
            InlineError::Invalid(_) => ApiError::bad_request("invalid_request", e.to_string()),
            InlineError::Files(f) if f.is_too_large() => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "files_too_large", e.to_string())
            }
            InlineError::Files(_) => ApiError::bad_request("invalid_files", e.to_string()),
            InlineError::RunDir(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

/// The code of an error response, for the metrics; set on every response made from an
/// [`ApiError`].
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        resp.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
