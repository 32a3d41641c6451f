//! The sync protocol between the desktop's local store and the server, version 1.
//!
//! Pull: `GET /api/v1/sync/pull?cursor=C&limit=N` returns the tenant's change log after `C` as
//! [`PullResponse`]: what the caller may see, in commit order, each change carrying the record as
//! it is now (or its removal). Push: `POST /api/v1/sync/push` sends [`PushRequest`]: intents made
//! offline, each numbered by its client; the server applies each exactly once and answers with
//! [`PushResponse`]. Ids are UUIDv7 made by the client.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{ExpenseLine, ReceiptRef};
use crate::ticket::Priority;
use crate::{CommentId, CustomerId, ExpenseId, Status, TenantId, TicketId, UserId};

/// The protocol version; a server answers `X-Tallydesk-Sync: 1` and refuses others with 400.
pub const SYNC_PROTOCOL: u32 = 1;

/// The header that carries [`SYNC_PROTOCOL`] on sync requests and responses.
pub const SYNC_HEADER: &str = "x-tallydesk-sync";

/// Most mutations one push may carry.
pub const MAX_PUSH_MUTATIONS: usize = 1000;

/// Most changes one pull returns; the default when `limit` is absent.
pub const MAX_PULL_LIMIT: u32 = 1000;

/// A position in a tenant's change log: the `seq` of the last change seen, 0 before the first.
pub type Cursor = i64;

/// Who pushes: one install of the desktop app (one per local store), made by the client.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, specta::Type,
)]
#[serde(transparent)]
pub struct ClientId(pub Uuid);

/// The kinds of record that sync.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Ticket,
    Comment,
    Activity,
    Customer,
    Member,
    /// An expense on a claim ticket (`api::Expense`), visible like its ticket.
    Expense,
    /// An SLA policy (`sla::Policy`), for those who may read the SLA settings (not requesters).
    SlaPolicy,
    /// A business calendar (`sla::CalendarRecord`), for those who may read the SLA settings.
    Calendar,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// The record as it is now (created or changed): `data` holds it in its REST shape
    /// (`api::Ticket`, `api::Comment`, `api::Activity`, `api::Customer`, `api::Member`,
    /// `api::Expense`, `sla::Policy`, `sla::CalendarRecord`).
    Upsert,
    /// The record was deleted (a tombstone): remove it.
    Delete,
    /// The caller may no longer see the record (role change, removal from the tenant): remove
    /// it locally; it still exists on the server.
    Evict,
}

/// One entry of the change log, as the caller may see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Change {
    #[specta(type = specta_typescript::Number)]
    pub seq: Cursor,
    pub entity: Entity,
    pub id: Uuid,
    pub op: ChangeOp,
    /// The record for `upsert`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    #[specta(type = Option<specta_typescript::Unknown>)]
    pub data: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    /// Pass it back as `cursor` for the next page.
    #[specta(type = specta_typescript::Number)]
    pub cursor: Cursor,
    /// More changes follow: pull again at once.
    pub has_more: bool,
    /// The end of the tenant's log when this page was read: a client that pulls from `cursor`
    /// to `head` is up to date, so `head - cursor` measures what remains (the caller may see
    /// less of it). Absent (0) from servers older than this field.
    #[serde(default)]
    #[specta(type = specta_typescript::Number)]
    pub head: Cursor,
}

/// A client's intent, applied with the same permission and workflow checks as the REST API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(tag = "op", content = "args")]
pub enum Intent {
    #[serde(rename = "ticket.create")]
    TicketCreate(TicketCreate),
    /// Merged per field: a stale `base_version` applies cleanly to fields nobody else changed
    /// since; for a field both changed, this later write wins and the activity shows both.
    #[serde(rename = "ticket.update")]
    TicketUpdate(TicketUpdate),
    /// Re-checked against the ticket's current status.
    #[serde(rename = "ticket.transition")]
    TicketTransition(TicketTransition),
    #[serde(rename = "comment.create")]
    CommentCreate(CommentCreate),
    /// A submitted expense. Its id is never reused: resending it with other fields is
    /// rejected with `expense_immutable` (a correction is a new expense).
    #[serde(rename = "expense.create")]
    ExpenseCreate(ExpenseCreate),
    /// An approver approves or rejects a submitted expense (once: a decided one is
    /// `expense_immutable`).
    #[serde(rename = "expense.decide")]
    ExpenseDecide(ExpenseDecide),
    /// Deleting a ticket (admins): a tombstone in the log.
    #[serde(rename = "ticket.delete")]
    TicketDelete(TicketDelete),
    #[serde(rename = "customer.create")]
    CustomerCreate(CustomerCreate),
    /// The fields it sets; each applies over the current customer (the later write wins).
    #[serde(rename = "customer.update")]
    CustomerUpdate(CustomerUpdate),
    /// Its tickets stay, without a customer.
    #[serde(rename = "customer.delete")]
    CustomerDelete(CustomerDelete),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct TicketDelete {
    pub id: TicketId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CustomerCreate {
    pub id: CustomerId,
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

/// The fields an update sets; absent ones are untouched, `null` clears an optional one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdate {
    pub id: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub company: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    #[specta(type = Option<String>)]
    pub notes: Option<Option<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CustomerDelete {
    pub id: CustomerId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct TicketCreate {
    pub id: TicketId,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub customer_id: Option<CustomerId>,
    #[serde(default)]
    pub assignee_id: Option<UserId>,
}

/// The fields an update sets; absent ones are untouched, `null` clears a nullable one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct TicketUpdate {
    pub id: TicketId,
    /// The version the client's edit was made on.
    #[specta(type = specta_typescript::Number)]
    pub base_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<UserId>)]
    #[specta(type = Option<UserId>)]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(
        default,
        deserialize_with = "crate::api::nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<CustomerId>)]
    #[specta(type = Option<CustomerId>)]
    pub customer_id: Option<Option<CustomerId>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct TicketTransition {
    pub id: TicketId,
    pub to: Status,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Comments are append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CommentCreate {
    pub id: CommentId,
    pub ticket_id: TicketId,
    pub body: String,
    #[serde(default)]
    pub internal: bool,
}

/// An expense, submitted on a claim ticket the caller may file expenses on (requesters: their
/// own). Amounts are minor units of `currency`; the receipt is uploaded to the blob store first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ExpenseCreate {
    pub id: ExpenseId,
    pub ticket_id: TicketId,
    pub merchant: String,
    pub spent_on: chrono::NaiveDate,
    pub currency: String,
    #[specta(type = specta_typescript::Number)]
    pub amount_minor: i64,
    #[serde(default)]
    #[specta(type = Option<specta_typescript::Number>)]
    pub subtotal_minor: Option<i64>,
    #[serde(default)]
    #[specta(type = Option<specta_typescript::Number>)]
    pub tax_minor: Option<i64>,
    /// One of the tenant's expense categories; `other` when absent.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub items: Vec<ExpenseLine>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub receipt: Option<ReceiptRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ExpenseDecide {
    pub id: ExpenseId,
    /// The claim ticket the expense is on, so a client can show a rejection there.
    pub ticket_id: TicketId,
    pub approve: bool,
    /// Required to reject: why, so the requester can correct it.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One intent, numbered by its client: `seq` increases by one per mutation of a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Mutation {
    #[specta(type = specta_typescript::Number)]
    pub seq: i64,
    #[serde(flatten)]
    pub intent: Intent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct PushRequest {
    pub client_id: ClientId,
    pub mutations: Vec<Mutation>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum MutationStatus {
    Applied,
    /// Refused for good (permission, workflow, invalid field): resending changes nothing.
    Rejected,
}

/// The outcome of one mutation; resending a mutation returns the same outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct MutationResult {
    #[specta(type = specta_typescript::Number)]
    pub seq: i64,
    pub status: MutationStatus,
    /// The error code when rejected, as the REST API would answer (e.g. `illegal_transition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::api::ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
}

/// `data` of an `event: changed` message on `GET /api/v1/events`: the tenant's change log
/// reached `seq`. Pull from your cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, specta::Type)]
pub struct Changed {
    pub tenant_id: TenantId,
    #[specta(type = specta_typescript::Number)]
    pub seq: Cursor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutation_is_its_seq_op_and_args_on_the_wire() {
        let id = TicketId::new();
        let mutation = Mutation {
            seq: 7,
            intent: Intent::TicketTransition(TicketTransition {
                id,
                to: Status::OnHold,
                reason: Some("waiting for parts".into()),
            }),
        };
        let json = serde_json::to_value(&mutation).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 7,
                "op": "ticket.transition",
                "args": { "id": id, "to": "on_hold", "reason": "waiting for parts" },
            }),
            "the wire shape the issue documents: {{seq, op, args}}"
        );
        let back: Mutation = serde_json::from_value(json).unwrap();
        assert_eq!(back, mutation);
    }

    #[test]
    fn an_update_tells_an_absent_field_from_a_cleared_one() {
        let id = TicketId::new();
        let cleared: TicketUpdate = serde_json::from_value(serde_json::json!({
            "id": id, "base_version": 3, "assignee_id": null,
        }))
        .unwrap();
        assert_eq!(cleared.assignee_id, Some(None), "null clears the assignee");
        assert_eq!(cleared.customer_id, None, "an absent field is left alone");
        assert_eq!(cleared.title, None);
    }

    #[test]
    fn customer_intents_are_strict_and_tell_an_absent_field_from_a_cleared_one() {
        let id = CustomerId::new();
        let update: Intent = serde_json::from_value(serde_json::json!({
            "op": "customer.update", "args": { "id": id, "phone": "+33 1", "email": null },
        }))
        .unwrap();
        let Intent::CustomerUpdate(u) = &update else {
            panic!("{update:?}")
        };
        assert_eq!(u.id, id);
        assert_eq!(u.phone, Some(Some("+33 1".into())));
        assert_eq!(u.email, Some(None), "null clears the email");
        assert_eq!(u.notes, None, "an absent field is left alone");
        assert_eq!(
            serde_json::to_value(&update).unwrap()["args"],
            serde_json::json!({ "id": id, "phone": "+33 1", "email": null }),
            "flat on the wire, absent fields left out"
        );
        let unknown = serde_json::from_value::<Intent>(serde_json::json!({
            "op": "customer.update", "args": { "id": id, "fax": "123" },
        }));
        assert!(unknown.is_err(), "an unknown field is refused: {unknown:?}");
        let create: Intent = serde_json::from_value(serde_json::json!({
            "op": "customer.create", "args": { "id": id, "name": "Globex" },
        }))
        .unwrap();
        assert!(
            matches!(&create, Intent::CustomerCreate(c) if c.name == "Globex" && c.email.is_none())
        );
    }
}
