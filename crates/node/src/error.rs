//! API errors: `{"error":{"code","message"}}` with the code's HTTP status
//! (`docs/PROTOCOL.md` §7.6); the status of every code is set in one place,
//! [`ErrorCode::status`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sigil_crypto::EnvelopeError;
use sigil_primitives::ErrorCode;
use sigil_primitives::request::{ErrorBody, ErrorDetail};

/// An error answered by the node: a stable code (which fixes the status) and a message for
/// people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// `not_ready`.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotReady, message)
    }

    /// `ledger_unavailable`: the ledger could not be read.
    pub fn ledger(error: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::LedgerUnavailable,
            format!("cannot read the ledger: {error}"),
        )
    }

    /// `internal`: something failed on this node.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The JSON detail.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

impl From<EnvelopeError> for ApiError {
    fn from(error: EnvelopeError) -> Self {
        let code = match &error {
            EnvelopeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            EnvelopeError::NotForThisRecipient(_) => ErrorCode::WrongRecipient,
            EnvelopeError::DecryptionFailed => ErrorCode::DecryptionFailed,
            EnvelopeError::Malformed(_) => ErrorCode::MalformedEnvelope,
            EnvelopeError::BadSignature(_) => ErrorCode::BadSignature,
            EnvelopeError::RecipientMismatch { .. } => ErrorCode::RecipientMismatch,
            EnvelopeError::UnexpectedSender { .. } => ErrorCode::UnexpectedSender,
            EnvelopeError::Expired { .. } => ErrorCode::Expired,
            EnvelopeError::FromTheFuture { .. } => ErrorCode::FromTheFuture,
            EnvelopeError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            EnvelopeError::NoReplyKey | EnvelopeError::SealFailed => ErrorCode::MalformedEnvelope,
        };
        Self::new(code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.detail(),
        };
        (self.status(), axum::Json(body)).into_response()
    }
}
