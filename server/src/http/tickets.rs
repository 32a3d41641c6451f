//! Tickets' routes: the operations are in [`crate::tickets`].

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tallydesk_shared::api::{
    Activity, Comment, CreateComment, CreateTicket, Page, PatchTicket, TicketWithSla,
    TransitionRequest,
};
use tallydesk_shared::sla::SlaState;
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{CommentId, CustomerId, Status, TicketId};

use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::tickets::{self, comments, queue, with_sla};

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
    let query = queue::TicketQuery {
        status: params.status,
        priority: params.priority,
        assignee: params.assignee,
        requester: params.requester,
        category: params.category,
        customer: params.customer,
        q: params.q,
        sla_state: params.sla_state,
        sort: params.sort,
        limit: params.limit,
        cursor: params.cursor,
    };
    let page = queue::page(&mut scope, &query, state.clock.now()).await?;
    scope.commit().await?;
    Ok(axum::Json(page))
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
    let ticket = tickets::create(&mut scope, TicketId::new(), &body, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(ticket)))
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
    let ticket = tickets::get(&mut scope, id).await?;
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
    let ticket = tickets::update(&mut scope, id, &body, None, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
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
    tickets::delete(&mut scope, id, state.clock.now()).await?;
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
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
    let ticket = tickets::transition(&mut scope, id, &body, now).await?;
    let ticket = with_sla(&mut scope, ticket, now).await?;
    scope.commit().await?;
    Ok(axum::Json(ticket))
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
    let ticket = tickets::view(&mut scope, id, now).await?;
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
    let items = comments::list(&mut scope, id).await?;
    scope.commit().await?;
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
        comments::create(&mut scope, CommentId::new(), id, &body, state.clock.now()).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
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
    let items = tickets::trail(&mut scope, id).await?;
    scope.commit().await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}
