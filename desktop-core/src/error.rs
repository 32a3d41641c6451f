//! Errors that cross to the UI: a stable `code` to branch on and a message to show.

use serde::Serialize;
use tallydesk_shared::api::ErrorBody;
pub use tallydesk_shared::api::ErrorCode;
use tallydesk_shared::ticket::FieldError;
use tallydesk_shared::workflow::TransitionError;

/// What went wrong, as the UI shows it. `field` names the input at fault, when one is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct DeskError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

pub type DeskResult<T> = Result<T, DeskError>;

impl DeskError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A record edited at a version that is no longer current.
    pub fn stale(what: &str) -> Self {
        Self::new(
            ErrorCode::StaleVersion,
            format!("the {what} changed since you opened it; reload it"),
        )
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidField,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }
}

/// A server's error, one to one: its code, message and field.
impl From<ErrorBody> for DeskError {
    fn from(body: ErrorBody) -> Self {
        Self {
            code: body.code,
            message: body.message,
            field: body.field,
        }
    }
}

impl From<FieldError> for DeskError {
    fn from(e: FieldError) -> Self {
        DeskError::invalid(e.field(), e.to_string())
    }
}

impl From<TransitionError> for DeskError {
    fn from(e: TransitionError) -> Self {
        let code = match e {
            TransitionError::Illegal { .. } => ErrorCode::IllegalTransition,
            TransitionError::NotPermitted { .. } => ErrorCode::Forbidden,
            TransitionError::ReasonRequired | TransitionError::InvalidReason(_) => {
                return DeskError::invalid("reason", e.to_string());
            }
        };
        DeskError::new(code, e.to_string())
    }
}

impl From<sqlx::Error> for DeskError {
    fn from(e: sqlx::Error) -> Self {
        classify(&e).unwrap_or_else(|| {
            tracing::error!(error = %e, "database error");
            DeskError::new(
                ErrorCode::Internal,
                "the local database failed; the error has been logged",
            )
        })
    }
}

impl From<sqlx::migrate::MigrateError> for DeskError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match &e {
            sqlx::migrate::MigrateError::Execute(inner) => inner_error(inner),
            _ => {
                tracing::error!(error = %e, "migrating the local database failed");
                DeskError::new(
                    ErrorCode::DatabaseCorrupt,
                    format!("the local database could not be upgraded: {e}"),
                )
            }
        }
    }
}

fn inner_error(e: &sqlx::Error) -> DeskError {
    classify(e).unwrap_or_else(|| DeskError::new(ErrorCode::Internal, e.to_string()))
}

/// SQLite's primary result codes for a busy or damaged database.
fn classify(e: &sqlx::Error) -> Option<DeskError> {
    let db = e.as_database_error()?;
    let code: i64 = db.code()?.parse().ok()?;
    match code & 0xff {
        5 | 6 => Some(DeskError::new(
            ErrorCode::DatabaseLocked,
            "the workspace database is in use by another program (is Tallydesk already open?)",
        )),
        11 | 26 => Some(DeskError::new(
            ErrorCode::DatabaseCorrupt,
            "the workspace database is damaged or is not a Tallydesk database",
        )),
        _ => None,
    }
}
