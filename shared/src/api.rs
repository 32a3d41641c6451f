//! Wire types for the HTTP API, used by the server and its clients alike.
//!
//! Request bodies reject unknown fields. Fields added later carry `#[serde(default)]`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::activity::ActivityAction;
use crate::expense::ExpenseStatus;
use crate::id::{
    ActivityId, CommentId, CustomerId, ExpenseId, InvitationId, TenantId, TicketId, UserId,
};
use crate::permission::Role;
use crate::sla::{CalendarInput, PolicyInput, SlaState, Target, TargetState};
use crate::ticket::Priority;
use crate::workflow::Status;

pub use crate::error_code::ErrorCode;

/// Every error response: a stable machine-readable `code`, a human-readable `message`, and the
/// input `field` at fault when one is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A page of a list. Pass `next_cursor` back as `cursor` for the next page; `null` means the end.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Health {
    pub status: String,
    pub database: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct UserSummary {
    pub id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Membership {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub role: Role,
}

/// Who the caller is and where they belong.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Me {
    pub user: UserSummary,
    pub memberships: Vec<Membership>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Ticket {
    pub id: TicketId,
    /// Per-tenant sequence: 1, 2, 3…
    #[specta(type = specta_typescript::Number)]
    pub number: i64,
    pub title: String,
    pub description: String,
    pub status: Status,
    pub priority: Priority,
    pub category: String,
    pub requester_id: UserId,
    pub assignee_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub hold_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub first_responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Increases with every change; send it back in `PATCH` to detect concurrent edits.
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub customer_id: Option<CustomerId>,
    /// Agents and admins only.
    #[serde(default)]
    pub assignee_id: Option<UserId>,
    /// Agents and admins only: raise the ticket on someone else's behalf.
    #[serde(default)]
    pub requester_id: Option<UserId>,
}

/// A partial update. Absent fields stay as they are; `null` clears a nullable field.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct PatchTicket {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<UserId>)]
    #[specta(type = Option<UserId>)]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<CustomerId>)]
    #[specta(type = Option<CustomerId>)]
    pub customer_id: Option<Option<CustomerId>>,
    /// When given and no longer current, the update is refused with 409.
    #[serde(default)]
    #[specta(type = Option<specta_typescript::Number>)]
    pub version: Option<i64>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub to: Status,
    /// Required when `to` is `on_hold`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Comment {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub author_id: UserId,
    pub body: String,
    /// Internal notes are visible to agents, admins and observers only.
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    pub body: String,
    #[serde(default)]
    pub internal: bool,
}

/// One entry of the audit trail: who changed what, when, from what to what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Activity {
    pub id: ActivityId,
    pub ticket_id: Option<TicketId>,
    pub actor_id: UserId,
    pub action: ActivityAction,
    /// The field that changed, when one did.
    pub field: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[specta(type = Option<specta_typescript::Unknown>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    #[specta(type = Option<specta_typescript::Unknown>)]
    pub after: Option<serde_json::Value>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A partial update of a customer. Absent fields stay; `null` clears an optional one.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct PatchCustomer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub company: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub notes: Option<Option<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Member {
    pub user_id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Invitation {
    pub id: InvitationId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// Only in the response that creates the invitation, and only when the server's built-in
    /// issuer is on: a one-time link the admin passes on, where the invitee chooses a name and
    /// password for a Tallydesk account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub email: String,
    pub role: Role,
}

/// One SLA target of a ticket at the time of the response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct SlaTarget {
    pub target: Target,
    pub state: SlaState,
    /// When it is due if the clock keeps running; `null` while paused, once met or breached.
    pub due_at: Option<DateTime<Utc>>,
    /// Counted time left (business or calendar seconds); negative once breached.
    #[specta(type = specta_typescript::Number)]
    pub remaining_seconds: i64,
    pub breached_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
}

impl From<&TargetState> for SlaTarget {
    fn from(t: &TargetState) -> Self {
        SlaTarget {
            target: t.target,
            state: t.state,
            due_at: t.due_at,
            remaining_seconds: t.remaining_seconds,
            breached_at: t.breached_at,
            met_at: t.met_at,
        }
    }
}

/// A ticket as the server returns it: the record and its SLA targets, empty when no active
/// policy applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct TicketWithSla {
    #[serde(flatten)]
    pub ticket: Ticket,
    #[serde(default)]
    pub sla: Vec<SlaTarget>,
}

/// A calendar replaced whole, at the version it was read.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct PatchCalendar {
    #[serde(flatten)]
    pub calendar: CalendarInput,
    /// The version read; a stale one is refused with 409.
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// An SLA policy replaced whole, at the version it was read.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct PatchSlaPolicy {
    #[serde(flatten)]
    pub policy: PolicyInput,
    /// The version read; a stale one is refused with 409.
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// How clients sign in to this server (`GET /api/v1/auth/config`, public).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct AuthConfig {
    /// The identity providers to offer, the server's built-in issuer first when it is on.
    pub providers: Vec<AuthProvider>,
}

/// One OpenID Connect provider the server accepts tokens from, and how to ask it for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct AuthProvider {
    /// What to call it on a sign-in button: "Tallydesk account", or the provider's host name.
    pub name: String,
    /// The issuer URL; its discovery document is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The desktop app's client id at this provider (a public client: PKCE, no secret).
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The audience the server requires in access tokens.
    pub audience: String,
    /// Whether this is the server's own issuer, with accounts the server keeps.
    #[serde(default)]
    pub builtin: bool,
}

/// A Tallydesk account (held by the server's built-in issuer) made by an admin, with its
/// membership in the admin's tenant.
#[derive(Clone, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub email: String,
    pub name: String,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
}

impl std::fmt::Debug for CreateAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateAccount")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A Tallydesk account's password change (`POST /api/v1/me/password`).
#[derive(Clone, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// At least 10 characters.
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassword(***)")
    }
}

/// A line of a receipt, in the expense's currency's minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ExpenseLine {
    pub description: String,
    /// As printed ("2", "1.5 kg"); absent when the receipt shows none.
    #[serde(default)]
    pub quantity: Option<String>,
    #[specta(type = specta_typescript::Number)]
    pub amount_minor: i64,
}

/// A receipt image in the blob store (`PUT /api/v1/blobs/{sha256}`), addressed by the
/// lowercase hex SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRef {
    pub sha256: String,
    /// `image/jpeg`, `image/png`, `image/webp`, `image/heic` or `image/tiff`.
    pub media_type: String,
    /// Bytes.
    #[specta(type = specta_typescript::Number)]
    pub size: i64,
}

/// An expense filed on an expense-claim ticket. Once submitted it never changes except by an
/// approver's decision; a correction is a new expense.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Expense {
    pub id: ExpenseId,
    pub ticket_id: TicketId,
    pub status: ExpenseStatus,
    pub merchant: String,
    /// The day on the receipt.
    pub spent_on: NaiveDate,
    /// ISO 4217, upper case.
    pub currency: String,
    /// The total, in the currency's minor units (cents for EUR).
    #[specta(type = specta_typescript::Number)]
    pub amount_minor: i64,
    #[specta(type = Option<specta_typescript::Number>)]
    pub subtotal_minor: Option<i64>,
    #[specta(type = Option<specta_typescript::Number>)]
    pub tax_minor: Option<i64>,
    pub category: String,
    pub items: Vec<ExpenseLine>,
    pub note: Option<String>,
    pub receipt: Option<ReceiptRef>,
    pub submitted_by: UserId,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected, or a note on the approval.
    pub reason: Option<String>,
    /// The approvals given so far, oldest first: one while a second is awaited, when the
    /// tenant requires two above an amount ([`ExpensePolicy`]).
    #[serde(default)]
    pub approvals: Vec<ExpenseApproval>,
    /// How many approvals, by different approvers, approve it (1 or 2).
    #[serde(default = "one_approval")]
    pub approvals_required: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

fn one_approval() -> u32 {
    1
}

/// An approver's approval of an expense.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct ExpenseApproval {
    pub by: UserId,
    pub at: DateTime<Utc>,
}

/// A tenant's rules for deciding expenses (`/api/v1/tenant/expense-policy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ExpensePolicy {
    /// Expenses above this amount, in the minor units of the expense's own currency (whatever
    /// the currency), need two approvals by different approvers; `null`: one approval always.
    #[serde(default)]
    #[specta(type = Option<specta_typescript::Number>)]
    #[schema(minimum = 0, maximum = 100_000_000_000_000_i64)]
    pub dual_approval_above_minor: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null() {
        let absent: PatchTicket = serde_json::from_str(r#"{"title":"x"}"#).unwrap();
        assert_eq!(absent.assignee_id, None, "absent leaves the assignee alone");
        let cleared: PatchTicket = serde_json::from_str(r#"{"assignee_id":null}"#).unwrap();
        assert_eq!(cleared.assignee_id, Some(None), "null unassigns");
    }

    #[test]
    fn request_bodies_reject_unknown_fields() {
        let err =
            serde_json::from_str::<CreateTicket>(r#"{"title":"x","colour":"red"}"#).unwrap_err();
        assert!(
            err.to_string().contains("colour"),
            "the message names the field: {err}"
        );
    }
}
