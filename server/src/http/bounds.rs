//! What bounds a request in time and size, so that slow or hostile clients cannot hold what
//! others need.
//!
//! A request's body is read whole, within a size limit and a deadline, *before* routing hands
//! it to a handler: the handler's tenant [`Scope`](crate::auth::Scope) opens its database
//! transaction only once the body is here, so no connection waits on a client. Every request
//! also has an overall time limit (an SSE stream's limit covers only its start: the events
//! that follow are the response's body).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tallydesk_shared::api::ErrorCode;

use crate::AppState;
use crate::error::ApiError;

/// How long a client may take to send a request's body, and a request to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The whole body must arrive within this, or the request is refused with 408.
    pub body: Duration,
    /// A request not answered within this is refused with 503 `busy` (and its work dropped).
    pub request: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            body: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// How one group of routes reads bodies.
#[derive(Debug, Clone, Copy)]
struct BodyRead {
    limit: usize,
    deadline: Duration,
}

/// `routes` with bodies of at most `limit` bytes, each read whole within `deadline` before
/// its handler runs.
pub fn read_bodies_first(
    routes: Router<AppState>,
    limit: usize,
    deadline: Duration,
) -> Router<AppState> {
    routes
        .layer(middleware::from_fn_with_state(
            BodyRead { limit, deadline },
            read_body,
        ))
        // The handlers' body extractors read the buffered body under the same limit.
        .layer(DefaultBodyLimit::max(limit))
}

async fn read_body(State(read): State<BodyRead>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > read.limit as u64) {
        return too_large(read.limit).into_response();
    }
    let reading = Limited::new(body, read.limit).collect();
    let bytes = match tokio::time::timeout(read.deadline, reading).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(read.limit).into_response(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "a request body could not be read");
            return ApiError::bad_request(
                ErrorCode::InvalidBody,
                "the request body could not be read to its end",
            )
            .into_response();
        }
        Err(_) => {
            tracing::info!(
                method = %parts.method,
                path = parts.uri.path(),
                "refused a request whose body came too slowly"
            );
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    read.deadline.as_secs_f64()
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!(
            "the request body is larger than the {} MiB limit",
            limit >> 20
        ),
    )
}

/// Refuses a request that is not answered within `limit` with 503 `busy`.
pub async fn time_out(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, path = uri.path(), "a request ran out of time");
            ApiError::busy(format!(
                "the request was not answered within {} s; try again shortly",
                limit.as_secs_f64()
            ))
            .into_response()
        }
    }
}
