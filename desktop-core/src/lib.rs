//! The desktop app's logic, free of the webview: the local SQLite store and the ticket workspace.
//!
//! Tauri commands are one-line adapters over [`Desk`]. The rules (workflow, permissions, field
//! limits) come from `tallydesk-shared`, never re-implemented here or in the UI.
//!
//! Queries are checked by the tests rather than by `sqlx::query!`: the workspace's compile-time
//! checking talks to the server's Postgres, and sqlx takes one `DATABASE_URL` per build.

pub mod account;
pub mod demo;
pub mod desk;
pub mod error;
pub mod expenses;
pub mod model;
pub mod receipts;
pub mod sla;
pub mod store;
pub mod sync;
mod time;

pub use desk::Desk;
pub use error::{DeskError, ErrorCode};
pub use store::Store;
pub use tallydesk_shared::Clock;
