//! The HTTP error boundary: every failure leaves as `{code, message}` with the right status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tallydesk_shared::api::{ErrorBody, ErrorCode};
use tallydesk_shared::ticket::FieldError;
use tallydesk_shared::workflow::TransitionError;

/// How long a `busy` caller is asked to wait before trying again.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Client {
        status: StatusCode,
        code: ErrorCode,
        message: String,
        /// The input field at fault, when one is.
        field: Option<String>,
        /// When the caller may try again (`Retry-After`), for refusals that pass.
        retry_after: Option<Duration>,
    },
    /// The cause is logged; the caller sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A 422 `invalid_field` naming the input at fault.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            message,
        )
        .on_field(field)
    }

    /// The same error, naming the input at fault.
    pub fn on_field(self, name: &str) -> Self {
        match self {
            ApiError::Client {
                status,
                code,
                message,
                retry_after,
                ..
            } => ApiError::Client {
                status,
                code,
                message,
                field: Some(name.to_owned()),
                retry_after,
            },
            internal => internal,
        }
    }

    /// A 503 `busy`: the server cannot take the request now, and says when to try again.
    pub fn busy(message: impl Into<String>) -> Self {
        ApiError::Client {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: ErrorCode::Busy,
            message: message.into(),
            field: None,
            retry_after: Some(BUSY_RETRY_AFTER),
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// Missing and invisible (another tenant's, or not yours) look the same.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = match self {
            ApiError::Client {
                status,
                code,
                message,
                field,
                retry_after,
            } => (
                status,
                ErrorBody {
                    code,
                    message,
                    field,
                },
                retry_after,
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody {
                        code: ErrorCode::Internal,
                        message: "something went wrong on the server; it has been logged"
                            .to_owned(),
                        field: None,
                    },
                    None,
                )
            }
        };
        match retry_after {
            // Whole seconds, rounded up: `Retry-After: 0` would invite a stampede.
            Some(after) => (
                status,
                [(header::RETRY_AFTER, after.as_secs().max(1).to_string())],
                Json(body),
            )
                .into_response(),
            None => (status, Json(body)).into_response(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(e.field(), e.to_string())
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Illegal { .. } => {
                ApiError::conflict(ErrorCode::IllegalTransition, e.to_string())
            }
            TransitionError::NotPermitted { .. } => ApiError::forbidden(e.to_string()),
            TransitionError::ReasonRequired | TransitionError::InvalidReason(_) => {
                ApiError::field("reason", e.to_string())
            }
        }
    }
}

/// Database errors: constraint names (never message text) map to client errors.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return ApiError::busy(
                "the server is busy: all its database connections are in use; try again shortly",
            );
        }
        if let Some(db) = e.as_database_error() {
            // query_canceled: the statement ran past the database's statement_timeout.
            if db.code().as_deref() == Some("57014") {
                tracing::warn!(error = %db, "a statement ran out of time");
                return ApiError::busy("the server took too long to answer; try again shortly");
            }
            let mapped = match db.constraint() {
                Some("tickets_assignee_fkey") => Some(ApiError::field(
                    "assignee_id",
                    "assignee_id: not a member of this tenant",
                )),
                Some("tickets_customer_fkey") => Some(ApiError::field(
                    "customer_id",
                    "customer_id: no such customer in this tenant",
                )),
                Some("invitations_pending_email_key") => Some(ApiError::conflict(
                    ErrorCode::AlreadyInvited,
                    "this email already has a pending invitation to this tenant",
                )),
                Some("sla_policies_calendar_fkey") => Some(
                    ApiError::conflict(
                        ErrorCode::CalendarInUse,
                        "calendar_id: the calendar is missing or in use; reload and try again",
                    )
                    .on_field("calendar_id"),
                ),
                Some("local_accounts_email_key") => Some(
                    ApiError::conflict(
                        ErrorCode::AccountExists,
                        "email: a Tallydesk account with this email already exists",
                    )
                    .on_field("email"),
                ),
                Some("memberships_pkey") => Some(ApiError::conflict(
                    ErrorCode::AlreadyMember,
                    "this user is already a member",
                )),
                Some("expenses_immutable") => Some(ApiError::conflict(
                    ErrorCode::ExpenseImmutable,
                    "a submitted expense never changes; file a correction as a new expense",
                )),
                _ => None,
            };
            if let Some(mapped) = mapped {
                return mapped;
            }
        }
        ApiError::Internal(e.into())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::invalid(ErrorCode::InvalidBody, message),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json",
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                status,
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the 1 MiB limit",
            ),
            _ => ApiError::bad_request(ErrorCode::InvalidBody, message),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}
