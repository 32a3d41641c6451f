//! HTTP handlers: thin adapters from requests to the domain and the database.

pub mod accounts;
pub mod blobs;
pub mod bounds;
pub mod customers;
pub mod docs;
pub mod events;
pub mod expenses;
pub mod extract;
pub mod me;
pub mod members;
pub mod sla;
pub mod tickets;

use axum::response::IntoResponse;

use crate::error::ApiError;

/// Unknown routes answer in the API's error format too.
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("route")
}
