//! Tickets: the record, its workflow, comments, audit trail and the queue. Each operation runs
//! in the caller's [`Scope`] (the tenant's transaction), for the REST routes and sync alike.

pub(crate) mod comments;
pub(crate) mod queue;
mod record;
mod transitions;

use chrono::{DateTime, Utc};
use sqlx::Postgres;
use tallydesk_shared::api::{Activity, Ticket, TicketWithSla};
use tallydesk_shared::workflow::Mover;
use tallydesk_shared::{Action, Role, TicketId, UserId};
use uuid::Uuid;

pub(crate) use record::{create, delete, update};
pub(crate) use transitions::{transition, view};

use crate::activity;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::sla::{self, Pending};

/// A ticket row as stored; statuses and priorities are text in the database.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TicketRow {
    id: Uuid,
    number: i64,
    title: String,
    description: String,
    status: String,
    priority: String,
    category: String,
    requester_id: Uuid,
    assignee_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    hold_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    first_responded_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
}

const TICKET_COLUMNS: &str = "id, number, title, description, status, priority, category, \
    requester_id, assignee_id, customer_id, hold_reason, created_at, updated_at, \
    first_responded_at, resolved_at, closed_at, version";

impl TryFrom<TicketRow> for Ticket {
    type Error = ApiError;

    fn try_from(r: TicketRow) -> ApiResult<Ticket> {
        let corrupt =
            |what: &str| ApiError::Internal(anyhow::anyhow!("ticket {} has a bad {what}", r.id));
        Ok(Ticket {
            id: r.id.into(),
            number: r.number,
            status: r.status.parse().map_err(|_| corrupt("status"))?,
            priority: r.priority.parse().map_err(|_| corrupt("priority"))?,
            title: r.title,
            description: r.description,
            category: r.category,
            requester_id: r.requester_id.into(),
            assignee_id: r.assignee_id.map(Into::into),
            customer_id: r.customer_id.map(Into::into),
            hold_reason: r.hold_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            first_responded_at: r.first_responded_at,
            resolved_at: r.resolved_at,
            closed_at: r.closed_at,
            version: r.version,
        })
    }
}

/// Loads a ticket the caller may take `action` on; anything else is a 404 or 403.
pub(crate) async fn load(scope: &mut Scope, id: TicketId, action: Action) -> ApiResult<Ticket> {
    let row = sqlx::query_as!(
        TicketRow,
        "select id, number, title, description, status, priority, category, requester_id,
                assignee_id, customer_id, hold_reason, created_at, updated_at,
                first_responded_at, resolved_at, closed_at, version
           from tickets where id = $1",
        id.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .ok_or_else(|| ApiError::not_found("ticket"))?;
    let ticket = Ticket::try_from(row)?;
    let own = ticket.requester_id == scope.user;
    if !tallydesk_shared::permission::access(scope.role, Action::ViewTicket).allows(own) {
        return Err(ApiError::not_found("ticket"));
    }
    if !tallydesk_shared::permission::access(scope.role, action).allows(own) {
        return Err(ApiError::forbidden(format!(
            "{}s may not do this to this ticket",
            scope.role
        )));
    }
    Ok(ticket)
}

/// Locks the ticket row for the rest of the transaction, then loads it.
pub(crate) async fn load_for_update(
    scope: &mut Scope,
    id: TicketId,
    action: Action,
) -> ApiResult<Ticket> {
    sqlx::query!(
        "select id from tickets where id = $1 for no key update",
        id.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    load(scope, id, action).await
}

fn mover(scope: &Scope, ticket: &Ticket) -> Mover {
    Mover {
        role: scope.role,
        is_requester: ticket.requester_id == scope.user,
    }
}

/// The ticket with its SLA targets at `now`.
pub(crate) async fn with_sla(
    scope: &mut Scope,
    ticket: Ticket,
    now: DateTime<Utc>,
) -> ApiResult<TicketWithSla> {
    let mut slas = sla::current(&mut scope.tx, scope.tenant, &[ticket.id], now).await?;
    Ok(TicketWithSla {
        sla: slas.remove(&ticket.id).unwrap_or_default(),
        ticket,
    })
}

/// Derives the ticket's SLA row again after a change to its SLA inputs (creation, status,
/// public reply, priority, category, customer), in the same transaction.
async fn refresh_sla(scope: &mut Scope, id: TicketId, now: DateTime<Utc>) -> ApiResult<()> {
    sla::refresh(
        &mut scope.tx,
        scope.tenant,
        Some(&[id]),
        now,
        Pending::Schedule,
    )
    .await?;
    Ok(())
}

/// The tenant's ticket categories, the list a ticket's category must come from.
async fn categories(scope: &mut Scope) -> ApiResult<Vec<String>> {
    let categories = sqlx::query_scalar!(
        "select categories from tenants where id = $1",
        scope.tenant.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    Ok(categories)
}

/// Checks that `user` is a member who can be assigned tickets (an agent or admin).
async fn check_assignee(scope: &mut Scope, user: UserId) -> ApiResult<()> {
    let role = member_role(scope, user).await?;
    match role {
        Some(role) if role.works_tickets() => Ok(()),
        Some(role) => Err(ApiError::field(
            "assignee_id",
            format!("assignee_id: {role}s cannot be assigned tickets; pick an agent or admin"),
        )),
        None => Err(ApiError::field(
            "assignee_id",
            "assignee_id: not a member of this tenant",
        )),
    }
}

pub(crate) async fn member_role(scope: &mut Scope, user: UserId) -> ApiResult<Option<Role>> {
    let role = sqlx::query_scalar!(
        "select role from memberships where tenant_id = $1 and user_id = $2",
        scope.tenant.as_uuid(),
        user.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    role.map(|r| {
        r.parse()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
    })
    .transpose()
}

/// The ticket, for whoever may see it.
pub(crate) async fn get(scope: &mut Scope, id: TicketId) -> ApiResult<Ticket> {
    load(scope, id, Action::ViewTicket).await
}

/// The ticket's audit trail, oldest first; entries about internal notes only for those who may
/// read them.
pub(crate) async fn trail(scope: &mut Scope, id: TicketId) -> ApiResult<Vec<Activity>> {
    load(scope, id, Action::ViewActivity).await?;
    let internal = scope.role_may(Action::ViewInternalNotes);
    Ok(activity::for_ticket(&mut scope.tx, id, internal).await?)
}

/// The tickets with these ids, in no particular order (one query, for sync's pull).
pub(crate) async fn by_ids(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> ApiResult<Vec<Ticket>> {
    let rows = sqlx::query_as!(
        TicketRow,
        "select id, number, title, description, status, priority, category, requester_id,
                assignee_id, customer_id, hold_reason, created_at, updated_at,
                first_responded_at, resolved_at, closed_at, version
           from tickets where id = any($1)",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Ticket::try_from).collect()
}
