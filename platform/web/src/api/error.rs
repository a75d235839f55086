use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use poem_openapi::error::{ParseParamError, ParsePathError, ParseRequestPayloadError};
use poem_openapi::payload::Json;

/// The one error shape of the API. `code` is stable and meant for programs; `message` is for
/// people and may change.
#[derive(Debug, Object)]
pub struct ErrorBody {
    /// Stable, machine-readable error code, e.g. `not_found`, `invalid_body`.
    pub code: String,
    /// What went wrong, in words.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Json<Self> {
        Json(Self {
            code: code.to_owned(),
            message: message.into(),
        })
    }
}

/// Turns every error that escaped a handler (framework parse errors, unknown routes, server
/// errors) into the API's error shape. Server errors are logged with their cause and reach the
/// client opaque.
pub async fn from_poem(err: poem::Error) -> Response {
    let status = err.status();
    let (code, message) = if status.is_server_error() {
        tracing::error!(error = ?err, "api request failed");
        ("internal", "internal error".to_owned())
    } else if err.is::<ParseRequestPayloadError>() {
        ("invalid_body", err.to_string())
    } else if err.is::<ParseParamError>() {
        ("invalid_parameter", err.to_string())
    } else if err.is::<ParsePathError>() {
        ("invalid_path", err.to_string())
    } else {
        match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource".to_owned()),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "method not allowed".to_owned())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", err.to_string()),
            StatusCode::UNAUTHORIZED => ("unauthorized", "sign in first".to_owned()),
            StatusCode::FORBIDDEN => ("forbidden", "not allowed".to_owned()),
            _ => ("bad_request", err.to_string()),
        }
    };
    ErrorBody::new(code, message)
        .with_status(status)
        .into_response()
}

/// A response in the API's error shape.
pub fn shaped(status: StatusCode, code: &str, message: &str) -> Response {
    ErrorBody::new(code, message)
        .with_status(status)
        .into_response()
}

/// No API route at this path (or this method of it).
pub fn not_found_response() -> Response {
    shaped(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

pub fn method_not_allowed_response() -> Response {
    shaped(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    )
}

/// No live session for a route that needs one.
pub fn unauthorized_response() -> Response {
    shaped(StatusCode::UNAUTHORIZED, "unauthorized", "sign in first")
}
