//! Sync with the desktop's local store, protocol version [`SYNC_PROTOCOL`].
//!
//! The change log (`change_log`, see the sync migration) is written by Postgres triggers on the
//! synced tables, in the writing transaction, so every write path (REST, sync pushes, sign-in's
//! invitations, the seed) appends to it and the log can never disagree with the records. A
//! [`pull`] reads it after the client's cursor, filtered to what the caller may see; a [`push`]
//! applies intents through the same functions as the REST routes, each exactly once.

pub mod compaction;
pub mod pull;
pub mod push;

use axum::http::{HeaderMap, HeaderValue};
use tallydesk_shared::api::ErrorCode;
use tallydesk_shared::sync::{SYNC_HEADER, SYNC_PROTOCOL};

use crate::error::{ApiError, ApiResult};

pub use pull::{compact, pull};
pub use push::push;

/// The sync routes and wire types in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pull::pull, push::push),
    components(schemas(
        tallydesk_shared::sync::PullResponse, tallydesk_shared::sync::Change,
        tallydesk_shared::sync::PushRequest, tallydesk_shared::sync::PushResponse,
        tallydesk_shared::sync::Changed,
    )),
    tags((name = "sync", description = "Offline-first sync of the desktop's local store: pull \
        the change log, push intents exactly once (protocol version 1, `X-Tallydesk-Sync: 1`)"))
)]
pub struct SyncDoc;

/// Refuses a request that names another protocol version (absent means this one).
fn check_protocol(headers: &HeaderMap) -> ApiResult<()> {
    match headers.get(SYNC_HEADER) {
        None => Ok(()),
        Some(v) if v.to_str().ok().map(str::trim) == Some(&SYNC_PROTOCOL.to_string()) => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            ErrorCode::UnsupportedSyncProtocol,
            format!(
                "this server speaks sync protocol {SYNC_PROTOCOL} ({SYNC_HEADER}: {SYNC_PROTOCOL}); update the app"
            ),
        )),
    }
}

/// The header every sync response carries.
fn protocol_header() -> [(&'static str, HeaderValue); 1] {
    [(SYNC_HEADER, HeaderValue::from(SYNC_PROTOCOL))]
}
