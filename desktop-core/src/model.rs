//! Types the desktop exchanges with its UI, beyond the shared wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_shared::api::{Customer, Ticket};
use tallydesk_shared::sla::{TargetState, TicketSla};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{Action, CustomerId, Role, Status, TicketId, UserId};

/// The queue's built-in views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum TicketView {
    /// Everything not deleted.
    All,
    /// Assigned to me and still being worked on.
    MyOpen,
    /// Nobody's yet, and not finished.
    Unassigned,
    OnHold,
    /// Resolved or closed, most recent first.
    RecentlyResolved,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum TicketSort {
    #[default]
    Newest,
    Oldest,
    RecentlyUpdated,
    PriorityHighFirst,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum AssigneeFilter {
    Me,
    Nobody,
    User(UserId),
}

/// What the queue shows: a view, filters, a search, a sort and a page.
#[derive(Clone, Debug, Default, Serialize, Deserialize, specta::Type)]
#[serde(default, deny_unknown_fields)]
pub struct TicketQuery {
    pub view: Option<TicketView>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub assignee: Option<AssigneeFilter>,
    pub category: Option<String>,
    pub customer: Option<CustomerId>,
    /// Full-text search over title, description and comments.
    pub search: Option<String>,
    pub sort: TicketSort,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// A row of the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct TicketRow {
    pub id: TicketId,
    #[specta(type = specta_typescript::Number)]
    pub number: i64,
    pub title: String,
    pub status: Status,
    pub priority: Priority,
    pub category: String,
    pub requester_name: String,
    pub assignee_name: Option<String>,
    pub customer_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The most urgent SLA target, when a policy applies.
    pub sla: Option<TargetState>,
}

#[derive(Clone, Debug, Serialize, Deserialize, specta::Type)]
pub struct TicketPage {
    pub items: Vec<TicketRow>,
    pub next_cursor: Option<String>,
    /// How many tickets match, over all pages.
    pub total: u32,
}

/// A ticket with what the UI needs around it.
#[derive(Clone, Debug, Serialize, Deserialize, specta::Type)]
pub struct TicketDetail {
    pub ticket: Ticket,
    /// The statuses the current user may move it to now.
    pub allowed_moves: Vec<Status>,
    pub requester_name: String,
    pub assignee_name: Option<String>,
    pub customer_name: Option<String>,
    /// The SLA under the first matching policy, if any.
    pub sla: Option<TicketSla>,
}

#[derive(Clone, Debug, Serialize, Deserialize, specta::Type)]
pub struct CustomerDetail {
    pub customer: Customer,
    pub tickets: Vec<TicketRow>,
}

/// Someone in the workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Person {
    pub id: UserId,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize, specta::Type)]
pub struct WorkspaceInfo {
    pub name: String,
    pub me: Person,
    /// What the user's role lets them do (actions not denied to it), so the UI shows only those.
    pub can: Vec<Action>,
    /// Whether demo data is present (it is marked and removable).
    pub has_demo_data: bool,
    pub categories: Vec<String>,
    /// Tickets per built-in view, for the sidebar.
    pub view_counts: Vec<(TicketView, u32)>,
}
