//! The one error shape of the HTTP API, `{"error": {"code", "message"}}`, and its status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::data::preflight::PreflightReport;
use crate::engine::{EngineError, ErrorKind, InlineError, RunError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// The checks of a run that preflight refused (422 `preflight_failed`).
    pub preflight: Option<Box<PreflightReport>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None, preflight: None }
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
        ErrorBody {
            error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() },
            preflight: self.preflight.clone(),
        }
    }

    /// A run that produced no report. `relative` names the service's files relative to the
    /// services directory, as every service error does: clients need the service's file, not
    /// the host's layout.
    /// A request's arguments, stdin or variables refused: 413 past a cap, 400 otherwise.
    pub fn from_io(e: &crate::data::program_io::ProgramIoError) -> ApiError {
        let status = if e.too_large() { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
        ApiError::new(status, e.code(), e.to_string())
    }

    pub fn from_run(e: RunError, relative: &dyn Fn(&str) -> String) -> ApiError {
        let kind = e.kind();
        match e {
            RunError::Engine(e) => e.into(),
            RunError::Inline(e) => e.into(),
            RunError::Input { .. } => ApiError::bad_request("invalid_request", e.to_string()),
            RunError::Io(io) => ApiError::from_io(&io),
            RunError::Service(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "service_invalid", relative(&e.to_string()))
            }
            RunError::Policy(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid", relative(&e.to_string()))
            }
            // The seed's "always preflight in production": the checks come with the refusal.
            RunError::Preflight { .. } => {
                let preflight = e.preflight().cloned().map(Box::new);
                ApiError {
                    preflight,
                    ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "preflight_failed", relative(&e.to_string()))
                }
            }
            RunError::Lock(_) => {
                let (status, code) = match kind {
                    // The service's files changed since they were locked: a conflict with the
                    // lock file the operator asked (`--locked`) to hold them to.
                    ErrorKind::LockDrift => (StatusCode::CONFLICT, "lock_drift"),
                    ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "engine_error"),
                    _ => (StatusCode::UNPROCESSABLE_ENTITY, "service_error"),
                };
                ApiError::new(status, code, relative(&e.to_string()))
            }
        }
    }
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// With `preflight_failed` only: the checks, as `GET /services/{name}/preflight` shows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub preflight: Option<Box<PreflightReport>>,
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
            ErrorKind::Internal | ErrorKind::LockDrift | ErrorKind::PreflightFailed => {
                (StatusCode::INTERNAL_SERVER_ERROR, "engine_error")
            }
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
