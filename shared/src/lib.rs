//! The Tallydesk domain: types and rules shared by the server and the desktop app.
//!
//! Nothing here does I/O or reads the clock; callers pass time in (from a [`Clock`] they hold).

pub mod activity;
pub mod api;
mod clock;
pub mod demo;
mod error_code;
pub mod expense;
pub mod id;
pub mod permission;
pub mod rules;
pub mod sla;
pub mod sync;
pub mod ticket;
mod wire_enum;
pub mod workflow;

pub use clock::Clock;
pub use id::{
    ActivityId, CalendarId, CommentId, CustomerId, ExpenseId, InvitationId, SlaPolicyId, TenantId,
    TicketId, UserId,
};
pub use permission::{Access, Action, Role};
pub use workflow::Status;
