//! Tickets: the queue, the record, its workflow, comments and audit trail.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::ErrorCode;
use tallydesk_shared::api::{
    Activity, Comment, CreateComment, CreateTicket, Page, PatchTicket, Ticket, TicketWithSla,
    TransitionRequest,
};
use tallydesk_shared::sla::SlaState;
use tallydesk_shared::ticket::{
    self, Category, CommentBody, FieldChange, Priority, TicketDescription, TicketEdit, TicketTitle,
};
use tallydesk_shared::workflow::{self, Mover, Transition};
use tallydesk_shared::{Action, CommentId, CustomerId, Role, Status, TicketId, UserId};
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::activity::{self, NewActivity};
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
async fn with_sla(
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

#[utoipa::path(
    post, path = "/api/v1/tickets", tag = "tickets",
    request_body = CreateTicket,
    responses(
        (status = 201, body = TicketWithSla),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "invalid field"),
        (status = 403, body = tallydesk_shared::api::ErrorBody),
    ),
    params(crate::http::docs::TenantHeader),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<CreateTicket>,
) -> ApiResult<(StatusCode, axum::Json<TicketWithSla>)> {
    let now = state.clock.now();
    let ticket = create_ticket(&mut scope, TicketId::new(), &body, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(ticket)))
}

/// Raises a ticket with the given id (made by the server for REST, by the client for sync),
/// with its activity and SLA row, in the scope's transaction.
pub(crate) async fn create_ticket(
    scope: &mut Scope,
    id: TicketId,
    body: &CreateTicket,
    now: DateTime<Utc>,
) -> ApiResult<Ticket> {
    scope.require(Action::CreateTicket)?;
    let title = TicketTitle::parse(&body.title)?;
    let description = TicketDescription::parse(&body.description)?;
    let priority = body.priority.unwrap_or_default();
    let category = match &body.category {
        Some(c) => Category::parse_allowed(c, &categories(scope).await?)?,
        None => Category::general(),
    };
    if body.assignee_id.is_some() || body.requester_id.is_some() {
        scope.require(Action::CreateTicketForOthers)?;
    }
    if let Some(assignee) = body.assignee_id {
        check_assignee(scope, assignee).await?;
    }
    let requester = match body.requester_id {
        Some(requester) if member_role(scope, requester).await?.is_none() => {
            return Err(ApiError::field(
                "requester_id",
                "requester_id: not a member of this tenant",
            ));
        }
        Some(requester) => requester,
        None => scope.user,
    };
    let number = sqlx::query_scalar!(
        "update tenant_counters set last_ticket_number = last_ticket_number + 1
          where tenant_id = $1 returning last_ticket_number",
        scope.tenant.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    sqlx::query!(
        "insert into tickets (id, tenant_id, number, title, description, priority, category,
                              requester_id, assignee_id, customer_id, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        id.as_uuid(),
        scope.tenant.as_uuid(),
        number,
        title.as_str(),
        description.as_str(),
        priority.as_str(),
        category.as_str(),
        requester.as_uuid(),
        body.assignee_id.map(|a| a.as_uuid()),
        body.customer_id.map(|c| c.as_uuid()),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let ticket = load(scope, id, Action::ViewTicket).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(ActivityAction::TicketCreated, id).after(json!({
            "number": ticket.number,
            "title": ticket.title,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category,
            "requester_id": ticket.requester_id,
            "assignee_id": ticket.assignee_id,
            "customer_id": ticket.customer_id,
        })),
    )
    .await?;
    refresh_sla(scope, id, now).await?;
    Ok(ticket)
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    description = "The ticket, with each target of the SLA policy that applies to it now (`sla`, empty when none does).",
    responses((status = 200, body = TicketWithSla), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn get(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<axum::Json<TicketWithSla>> {
    let ticket = load(&mut scope, id, Action::ViewTicket).await?;
    let ticket = with_sla(&mut scope, ticket, state.clock.now()).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
}

#[utoipa::path(
    patch, path = "/api/v1/tickets/{id}", tag = "tickets",
    request_body = PatchTicket,
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = TicketWithSla),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "stale version"),
        (status = 422, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn update(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
    Json(body): Json<PatchTicket>,
) -> ApiResult<axum::Json<TicketWithSla>> {
    let now = state.clock.now();
    let ticket = update_ticket(&mut scope, id, &body, None, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
}

/// Changes the fields `body` names, with their activity, in the scope's transaction.
///
/// `body.version`, when given and no longer current, refuses the update (REST). `merged_from`
/// is sync's per-field merge instead: the client edited version `merged_from`; its fields apply
/// whatever happened since, and the activity of a field someone else changed since that version
/// says so (`after.merged_from_version`), so the overwritten value stays visible there.
pub(crate) async fn update_ticket(
    scope: &mut Scope,
    id: TicketId,
    body: &PatchTicket,
    merged_from: Option<i64>,
    now: DateTime<Utc>,
) -> ApiResult<Ticket> {
    let current = load_for_update(scope, id, Action::EditTicket).await?;
    if let Some(version) = body.version.filter(|v| *v != current.version) {
        return Err(ApiError::conflict(
            ErrorCode::StaleVersion,
            format!(
                "the ticket changed since version {version} (now {}): reload it and try again",
                current.version
            ),
        ));
    }
    let categories = match body.category {
        Some(_) => categories(scope).await?,
        None => Vec::new(),
    };
    let edit = TicketEdit::parse(body, &categories)?;
    if let Some(Some(assignee)) = edit.assignee_id {
        check_assignee(scope, assignee).await?;
    }
    let changed_since: Vec<String> = match merged_from {
        Some(base) if base < current.version => {
            sqlx::query_scalar!(
                r#"select distinct field as "field!" from activity
                where ticket_id = $1 and ticket_version > $2 and field is not null"#,
                id.as_uuid(),
                base,
            )
            .fetch_all(&mut *scope.tx)
            .await?
        }
        _ => Vec::new(),
    };

    let after = edit.apply(&current);
    let changes = ticket::changes(&current, &after);
    if changes.is_empty() {
        return Ok(current);
    }
    sqlx::query!(
        "update tickets
            set title = $2, description = $3, priority = $4, category = $5,
                assignee_id = $6, customer_id = $7, updated_at = $8, version = version + 1
          where id = $1",
        id.as_uuid(),
        after.title,
        after.description,
        after.priority.as_str(),
        after.category,
        after.assignee_id.map(|a| a.as_uuid()),
        after.customer_id.map(|c| c.as_uuid()),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let sla_inputs_changed = changes.iter().any(FieldChange::affects_sla);
    for FieldChange {
        field,
        before,
        after,
    } in changes
    {
        let mut entry = NewActivity::ticket(ActivityAction::TicketUpdated, id)
            .field(field)
            .before(json!({ field: before }))
            .after(json!({ field: after }));
        if let Some(base) = merged_from.filter(|_| changed_since.iter().any(|f| f == field)) {
            entry = entry.after(json!({ "merged_from_version": base }));
        }
        activity::record(&mut scope.tx, scope.tenant, scope.user, now, entry).await?;
    }
    if sla_inputs_changed {
        refresh_sla(scope, id, now).await?;
    }
    load(scope, id, Action::ViewTicket).await
}

#[utoipa::path(
    delete, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 204), (status = 403, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn delete(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<StatusCode> {
    delete_ticket(&mut scope, id, state.clock.now()).await?;
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a ticket, in the scope's transaction.
pub(crate) async fn delete_ticket(
    scope: &mut Scope,
    id: TicketId,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let ticket = load_for_update(scope, id, Action::DeleteTicket).await?;
    sqlx::query!("delete from tickets where id = $1", id.as_uuid())
        .execute(&mut *scope.tx)
        .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(ActivityAction::TicketDeleted, id)
            .before(json!({ "number": ticket.number, "title": ticket.title })),
    )
    .await?;
    Ok(())
}

/// Applies a checked status change and records it.
async fn apply_transition(
    scope: &mut Scope,
    ticket: &Ticket,
    t: Transition,
    now: DateTime<Utc>,
    action: ActivityAction,
) -> ApiResult<()> {
    let resolved_at = match t.to {
        Status::Resolved => Some(now),
        Status::Closed => ticket.resolved_at,
        _ => None,
    };
    let closed_at = (t.to == Status::Closed).then_some(now);
    let reason = t.hold_reason.as_ref().map(|r| r.as_str());
    sqlx::query!(
        "update tickets
            set status = $2, hold_reason = $3, resolved_at = $4, closed_at = $5,
                updated_at = $6, version = version + 1
          where id = $1",
        ticket.id.as_uuid(),
        t.to.as_str(),
        reason,
        resolved_at,
        closed_at,
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let mut entry = NewActivity::ticket(action, ticket.id)
        .field("status")
        .before(json!({ "status": t.from }))
        .after(json!({ "status": t.to }));
    if let Some(reason) = reason {
        entry = entry.after(json!({ "hold_reason": reason }));
    }
    activity::record(&mut scope.tx, scope.tenant, scope.user, now, entry).await?;
    refresh_sla(scope, ticket.id, now).await
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/transitions", tag = "tickets",
    request_body = TransitionRequest,
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = TicketWithSla),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "illegal transition; the message names the allowed ones"),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "a hold without a reason"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn transition(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
    Json(body): Json<TransitionRequest>,
) -> ApiResult<axum::Json<TicketWithSla>> {
    let now = state.clock.now();
    let ticket = transition_ticket(&mut scope, id, &body, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
}

/// Moves the ticket to `body.to` if the workflow allows it from its current status.
pub(crate) async fn transition_ticket(
    scope: &mut Scope,
    id: TicketId,
    body: &TransitionRequest,
    now: DateTime<Utc>,
) -> ApiResult<Ticket> {
    let ticket = load_for_update(scope, id, Action::ViewTicket).await?;
    let t = workflow::transition(
        mover(scope, &ticket),
        ticket.status,
        body.to,
        body.reason.as_deref(),
    )?;
    apply_transition(scope, &ticket, t, now, ActivityAction::TicketTransitioned).await?;
    load(scope, id, Action::ViewTicket).await
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/views", tag = "tickets",
    description = "Records that the caller opened the ticket in a client. An agent or admin opening an `open` ticket starts work on it (`in_progress`); anyone else's view changes nothing.",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = TicketWithSla)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn view(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<axum::Json<TicketWithSla>> {
    let now = state.clock.now();
    let ticket = load_for_update(&mut scope, id, Action::ViewTicket).await?;
    if let Some(to) = workflow::on_view(scope.role, ticket.status) {
        let t = workflow::transition(mover(&scope, &ticket), ticket.status, to, None)?;
        apply_transition(&mut scope, &ticket, t, now, ActivityAction::TicketViewed).await?;
    }
    let ticket = load(&mut scope, id, Action::ViewTicket).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/comments", tag = "tickets",
    description = "The thread, oldest first. Internal notes are left out for requesters.",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Comment>)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn comments(
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<axum::Json<Page<Comment>>> {
    load(&mut scope, id, Action::ViewTicket).await?;
    let internal = scope.role_may(Action::ViewInternalNotes);
    let rows = sqlx::query!(
        "select id, ticket_id, author_id, body, internal, created_at from comments
          where ticket_id = $1 and (not internal or $2) order by created_at, id",
        id.as_uuid(),
        internal
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    scope.commit().await?;
    let items = rows
        .into_iter()
        .map(|r| Comment {
            id: r.id.into(),
            ticket_id: r.ticket_id.into(),
            author_id: r.author_id.into(),
            body: r.body,
            internal: r.internal,
            created_at: r.created_at,
        })
        .collect();
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/tickets/{id}/comments", tag = "tickets",
    description = "A public reply, or an internal note (`internal: true`, agents and admins). The first public reply by an agent or admin sets `first_responded_at`.",
    request_body = CreateComment,
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 201, body = Comment), (status = 403, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn comment(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<TicketId>,
    Json(body): Json<CreateComment>,
) -> ApiResult<(StatusCode, axum::Json<Comment>)> {
    let comment =
        create_comment(&mut scope, CommentId::new(), id, &body, state.clock.now()).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

/// Adds a reply or internal note with the given id (the server's for REST, the client's for
/// sync) to a ticket, in the scope's transaction.
pub(crate) async fn create_comment(
    scope: &mut Scope,
    comment_id: CommentId,
    id: TicketId,
    body: &CreateComment,
    now: DateTime<Utc>,
) -> ApiResult<Comment> {
    let action = if body.internal {
        Action::CommentInternal
    } else {
        Action::CommentPublic
    };
    let ticket = load_for_update(scope, id, action).await?;
    let text = CommentBody::parse(&body.body)?;
    let comment = Comment {
        id: comment_id,
        ticket_id: id,
        author_id: scope.user,
        body: text.into_inner(),
        internal: body.internal,
        created_at: now,
    };
    sqlx::query!(
        "insert into comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        comment.id.as_uuid(),
        scope.tenant.as_uuid(),
        id.as_uuid(),
        scope.user.as_uuid(),
        comment.body,
        comment.internal,
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let first_response =
        !comment.internal && scope.role.works_tickets() && ticket.first_responded_at.is_none();
    sqlx::query!(
        "update tickets set updated_at = $2,
                first_responded_at = case when $3 then $2 else first_responded_at end
          where id = $1",
        id.as_uuid(),
        now,
        first_response,
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(ActivityAction::CommentCreated, id)
            .after(json!({ "comment_id": comment.id, "internal": comment.internal }))
            .internal(comment.internal),
    )
    .await?;
    if !comment.internal {
        refresh_sla(scope, id, now).await?;
    }
    Ok(comment)
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/activity", tag = "tickets",
    description = "The ticket's audit trail, oldest first: who, when, what, before and after.",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Activity>)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn activity(
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<axum::Json<Page<Activity>>> {
    load(&mut scope, id, Action::ViewActivity).await?;
    let internal = scope.role_may(Action::ViewInternalNotes);
    let items = activity::for_ticket(&mut scope.tx, id, internal).await?;
    scope.commit().await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Filters, sort and page of the ticket queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    status: Option<Status>,
    priority: Option<Priority>,
    /// `me`, `none`, or a user id.
    assignee: Option<String>,
    /// `me` or a user id.
    requester: Option<String>,
    category: Option<String>,
    customer: Option<CustomerId>,
    /// Full-text search over title, description and comments.
    q: Option<String>,
    /// Tickets whose most urgent SLA target is in this state now.
    sla_state: Option<SlaState>,
    /// `created_at`, `updated_at`, `priority` or `sla_due` (breaching soonest first: breached
    /// tickets, then by deadline, then tickets without a running SLA); prefix `-` for
    /// descending. Default `-created_at`.
    sort: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SortKey {
    CreatedAt,
    UpdatedAt,
    Priority,
    SlaDue,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    key: SortKey,
    desc: bool,
    /// The last item's sort value: a timestamp or a priority rank.
    at: Option<DateTime<Utc>>,
    rank: Option<i16>,
    id: Uuid,
}

fn parse_sort(sort: Option<&str>) -> ApiResult<(SortKey, bool)> {
    let sort = sort.unwrap_or("-created_at");
    let (desc, name) = match sort.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, sort),
    };
    let key = match name {
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        "priority" => SortKey::Priority,
        "sla_due" => SortKey::SlaDue,
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!(
                    "sort: {sort:?} is not one of created_at, updated_at, priority, sla_due (prefix - for descending)"
                ),
            )
.on_field("sort"));
        }
    };
    Ok((key, desc))
}

fn user_filter(scope: &Scope, field: &str, value: &str) -> ApiResult<Option<Uuid>> {
    match value {
        "me" => Ok(Some(scope.user.as_uuid())),
        "none" if field == "assignee" => Ok(None),
        other => other.parse::<Uuid>().map(Some).map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("{field}: expected me, none or a user id"),
            )
        }),
    }
}

#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets",
    description = "The ticket queue with filters, full-text search, sort and keyset pagination. Requesters see only their own tickets.",
    params(ListParams, crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<TicketWithSla>), (status = 400, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list(
    State(state): State<AppState>,
    mut scope: Scope,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<Page<TicketWithSla>>> {
    let now = state.clock.now();
    scope.require(Action::ViewTicket)?;
    let (key, desc) = parse_sort(params.sort.as_deref())?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit: must be between 1 and 200",
        )
        .on_field("limit"));
    }
    let cursor = params.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(c) = &cursor
        && (c.key != key || c.desc != desc)
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidCursor,
            "cursor: it belongs to a different sort; start again without a cursor",
        )
        .on_field("cursor"));
    }

    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("select ");
    qb.push(TICKET_COLUMNS).push(format_args!(
        ", priority_rank, {SLA_DEADLINE} as sla_deadline
         from tickets left join ticket_sla s on s.ticket_id = tickets.id
         where tickets.tenant_id = "
    ));
    qb.push_bind(scope.tenant.as_uuid());
    let own_only = tallydesk_shared::permission::access(scope.role, Action::ViewTicket)
        == tallydesk_shared::Access::OwnTickets;
    if own_only {
        qb.push(" and requester_id = ")
            .push_bind(scope.user.as_uuid());
    }
    if let Some(status) = params.status {
        qb.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(priority) = params.priority {
        qb.push(" and priority = ").push_bind(priority.as_str());
    }
    if let Some(assignee) = &params.assignee {
        match user_filter(&scope, "assignee", assignee)? {
            Some(id) => qb.push(" and assignee_id = ").push_bind(id),
            None => qb.push(" and assignee_id is null"),
        };
    }
    if let Some(requester) = &params.requester
        && let Some(id) = user_filter(&scope, "requester", requester)?
    {
        qb.push(" and requester_id = ").push_bind(id);
    }
    if let Some(category) = &params.category {
        qb.push(" and category = ")
            .push_bind(Category::parse(category)?.as_str().to_owned());
    }
    if let Some(customer) = params.customer {
        qb.push(" and customer_id = ").push_bind(customer.as_uuid());
    }
    if let Some(state) = params.sla_state {
        let state = serde_json::to_value(state).map_err(anyhow::Error::from)?;
        qb.push(" and sla_state_at(s.idle_state, s.at_risk_at, s.due_at, s.breached_at, ")
            .push_bind(now)
            .push(") = ")
            .push_bind(state.as_str().unwrap_or_default().to_owned());
    }
    if let Some(q) = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() > 200 {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "q: at most 200 characters",
            )
            .on_field("q"));
        }
        qb.push(" and id in (select tallydesk_search(")
            .push_bind(q.to_owned())
            .push(", ")
            .push_bind(scope.role_may(Action::ViewInternalNotes))
            .push("))");
    }
    let column = match key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Priority => "priority_rank",
        SortKey::SlaDue => SLA_DEADLINE,
    };
    let dir = if desc { "desc" } else { "asc" };
    if let Some(c) = &cursor {
        qb.push(format_args!(
            " and ({column}, id) {} (",
            if desc { "<" } else { ">" }
        ));
        match key {
            SortKey::Priority => qb.push_bind(c.rank.unwrap_or_default()),
            _ => qb.push_bind(c.at.unwrap_or_default()),
        };
        qb.push(", ").push_bind(c.id).push(")");
    }
    qb.push(format_args!(" order by {column} {dir}, id {dir} limit "));
    qb.push_bind(i64::from(limit) + 1);

    let mut rows: Vec<ListRow> = qb.build_query_as().fetch_all(&mut *scope.tx).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| {
            encode_cursor(&Cursor {
                key,
                desc,
                at: match key {
                    SortKey::CreatedAt => Some(last.ticket.created_at),
                    SortKey::UpdatedAt => Some(last.ticket.updated_at),
                    SortKey::SlaDue => Some(last.sla_deadline),
                    SortKey::Priority => None,
                },
                rank: (key == SortKey::Priority).then_some(last.priority_rank),
                id: last.ticket.id,
            })
        })
    } else {
        None
    };
    let tickets = rows
        .into_iter()
        .map(|r| Ticket::try_from(r.ticket))
        .collect::<ApiResult<Vec<_>>>()?;
    let ids: Vec<TicketId> = tickets.iter().map(|t| t.id).collect();
    let mut slas = sla::current(&mut scope.tx, scope.tenant, &ids, now).await?;
    scope.commit().await?;
    let items = tickets
        .into_iter()
        .map(|ticket| TicketWithSla {
            sla: slas.remove(&ticket.id).unwrap_or_default(),
            ticket,
        })
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

#[derive(sqlx::FromRow)]
struct ListRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    priority_rank: i16,
    sla_deadline: DateTime<Utc>,
}

/// The `sla_due` sort key: the ticket's earliest breach or deadline, else the far end.
const SLA_DEADLINE: &str = "coalesce(s.deadline, '9999-12-31T00:00:00Z'::timestamptz)";

fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode_cursor(text: &str) -> ApiResult<Cursor> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidCursor,
                "cursor: not a cursor this server gave out",
            )
            .on_field("cursor")
        })
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
