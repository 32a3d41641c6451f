//! The Tallydesk domain: types and rules shared by the server and the desktop app.
//!
//! Nothing here does I/O or reads the clock; callers pass time in.

pub mod api;
pub mod demo;
pub mod expense;
pub mod id;
pub mod permission;
pub mod sla;
pub mod sync;
pub mod ticket;
pub mod workflow;

pub use id::{
    ActivityId, CalendarId, CommentId, CustomerId, ExpenseId, InvitationId, SlaPolicyId, TenantId,
    TicketId, UserId,
};
pub use permission::{Access, Action, Role};
pub use workflow::Status;
