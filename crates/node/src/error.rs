//! API errors: `{"error":{"code","message"}}` with a fitting HTTP status (`docs/PROTOCOL.md` §7.6).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sigil_crypto::EnvelopeError;
use sigil_primitives::request::{ErrorBody, ErrorDetail};

/// An error answered by the node: a status, a stable code and a message for people.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 403 with `code`.
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 503 `not_ready`.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
    }

    /// 502 `ledger_unavailable`: the ledger could not be read.
    pub fn ledger(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "ledger_unavailable",
            format!("cannot read the ledger: {error}"),
        )
    }

    /// 500 `internal`: something failed on this node.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON detail.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

impl From<EnvelopeError> for ApiError {
    fn from(error: EnvelopeError) -> Self {
        let code = match &error {
            EnvelopeError::UnsupportedVersion(_) => "unsupported_version",
            EnvelopeError::NotForThisRecipient(_) => "wrong_recipient",
            EnvelopeError::DecryptionFailed => "decryption_failed",
            EnvelopeError::Malformed(_) => "malformed_envelope",
            EnvelopeError::BadSignature(_) => "bad_signature",
            EnvelopeError::RecipientMismatch { .. } => "recipient_mismatch",
            EnvelopeError::UnexpectedSender { .. } => "unexpected_sender",
            EnvelopeError::Expired { .. } => "expired",
            EnvelopeError::FromTheFuture { .. } => "from_the_future",
            EnvelopeError::PayloadTooLarge(_) => "payload_too_large",
            EnvelopeError::NoReplyKey | EnvelopeError::SealFailed => "malformed_envelope",
        };
        let status = match &error {
            EnvelopeError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            EnvelopeError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.detail(),
        };
        (self.status, axum::Json(body)).into_response()
    }
}
