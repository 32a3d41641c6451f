//! SLA settings: business calendars and SLA policies. Admins change them; agents, admins and
//! observers read them. Every change derives the SLA of the tenant's open tickets again, in
//! the same transaction.

use axum::extract::State;
use axum::http::StatusCode;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{ErrorCode, Page, PatchCalendar, PatchSlaPolicy};
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::ticket::FieldError;
use tallydesk_shared::{Action, CalendarId, SlaPolicyId};
use uuid::Uuid;

use super::extract::{Json, Path};
use crate::AppState;
use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::sla::{self, Pending};

fn require_view(scope: &Scope) -> ApiResult<()> {
    if !sla::may_view_settings(scope.role) {
        return Err(ApiError::forbidden(
            "requesters may not see the SLA settings",
        ));
    }
    Ok(())
}

fn stale(what: &str, read: i64, now: i64) -> ApiError {
    ApiError::conflict(
        ErrorCode::StaleVersion,
        format!("the {what} changed since version {read} (now {now}): reload it and try again"),
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.into()))
}

/// Derives the SLA of every open ticket of the tenant again, after a settings change.
async fn refresh_open_tickets(scope: &mut Scope, state: &AppState) -> ApiResult<()> {
    sla::refresh(
        &mut scope.tx,
        scope.tenant,
        None,
        state.clock.now(),
        Pending::Schedule,
    )
    .await?;
    Ok(())
}

// ---- Calendars --------------------------------------------------------------------------------

async fn load_calendar(scope: &mut Scope, id: CalendarId) -> ApiResult<CalendarRecord> {
    sla::calendars(&mut scope.tx, scope.tenant, Some(id.as_uuid()))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("calendar"))
}

#[utoipa::path(
    get, path = "/api/v1/calendars", tag = "sla",
    description = "The tenant's business calendars, by name. Agents, admins and observers.",
    params(crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<CalendarRecord>), (status = 403, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list_calendars(mut scope: Scope) -> ApiResult<axum::Json<Page<CalendarRecord>>> {
    require_view(&scope)?;
    let items = sla::calendars(&mut scope.tx, scope.tenant, None).await?;
    scope.commit().await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/calendars", tag = "sla",
    description = "Admins only. `weekly` holds each weekday's opening hours in the calendar's \
        time zone, e.g. `{\"mon\": [[\"09:00\", \"17:00\"]]}`; `holidays` are `YYYY-MM-DD`.",
    request_body = CalendarInput,
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 201, body = CalendarRecord),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "the message names the field"),
        (status = 403, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create_calendar(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<CalendarInput>,
) -> ApiResult<(StatusCode, axum::Json<CalendarRecord>)> {
    scope.require(Action::ManageTenantSettings)?;
    body.parse()?;
    let id = CalendarId::new();
    let now = state.clock.now();
    sqlx::query!(
        "insert into calendars (id, tenant_id, name, time_zone, weekly, holidays, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7)",
        id.as_uuid(),
        scope.tenant.as_uuid(),
        body.name.trim(),
        body.time_zone,
        to_json(&body.weekly)?,
        &sla::holiday_dates(&body),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let calendar = load_calendar(&mut scope, id).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::CalendarCreated).after(to_json(&calendar)?),
    )
    .await?;
    // No policy can use a calendar before it exists: no ticket's SLA changes.
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(calendar)))
}

#[utoipa::path(
    get, path = "/api/v1/calendars/{id}", tag = "sla",
    params(("id" = CalendarId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = CalendarRecord), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn get_calendar(
    mut scope: Scope,
    Path(id): Path<CalendarId>,
) -> ApiResult<axum::Json<CalendarRecord>> {
    require_view(&scope)?;
    let calendar = load_calendar(&mut scope, id).await?;
    scope.commit().await?;
    Ok(axum::Json(calendar))
}

#[utoipa::path(
    patch, path = "/api/v1/calendars/{id}", tag = "sla",
    description = "Admins only. Replaces the calendar whole; `version` is the one read. The SLA \
        of every open ticket is derived again.",
    request_body = PatchCalendar,
    params(("id" = CalendarId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = CalendarRecord),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "stale version"),
        (status = 422, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn update_calendar(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<CalendarId>,
    Json(body): Json<PatchCalendar>,
) -> ApiResult<axum::Json<CalendarRecord>> {
    scope.require(Action::ManageTenantSettings)?;
    lock_calendar(&mut scope, id).await?;
    let current = load_calendar(&mut scope, id).await?;
    if body.version != current.version {
        return Err(stale("calendar", body.version, current.version));
    }
    let input = body.calendar;
    input.parse()?;
    let now = state.clock.now();
    sqlx::query!(
        "update calendars set name = $2, time_zone = $3, weekly = $4, holidays = $5,
                updated_at = $6, version = version + 1
          where id = $1",
        id.as_uuid(),
        input.name.trim(),
        input.time_zone,
        to_json(&input.weekly)?,
        &sla::holiday_dates(&input),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let calendar = load_calendar(&mut scope, id).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::CalendarUpdated)
            .before(to_json(&current)?)
            .after(to_json(&calendar)?),
    )
    .await?;
    refresh_open_tickets(&mut scope, &state).await?;
    scope.commit().await?;
    Ok(axum::Json(calendar))
}

#[utoipa::path(
    delete, path = "/api/v1/calendars/{id}", tag = "sla",
    description = "Admins only. A calendar a policy uses cannot be deleted (409).",
    params(("id" = CalendarId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 204),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "a policy uses it"),
        (status = 404, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn delete_calendar(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<CalendarId>,
) -> ApiResult<StatusCode> {
    scope.require(Action::ManageTenantSettings)?;
    lock_calendar(&mut scope, id).await?;
    let calendar = load_calendar(&mut scope, id).await?;
    let user = sqlx::query_scalar!(
        "select name from sla_policies where tenant_id = $1 and calendar_id = $2
          order by position, created_at, id limit 1",
        scope.tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    if let Some(policy) = user {
        return Err(ApiError::conflict(
            ErrorCode::CalendarInUse,
            format!("the SLA policy {policy:?} uses this calendar: change the policy first"),
        ));
    }
    sqlx::query!("delete from calendars where id = $1", id.as_uuid())
        .execute(&mut *scope.tx)
        .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        state.clock.now(),
        NewActivity::tenant(ActivityAction::CalendarDeleted).before(to_json(&calendar)?),
    )
    .await?;
    // No policy used it: no ticket's SLA changes.
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Locks a calendar for the rest of the transaction, so version checks cannot race.
async fn lock_calendar(scope: &mut Scope, id: CalendarId) -> ApiResult<()> {
    sqlx::query_scalar!(
        "select id from calendars where id = $1 for update",
        id.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .map(drop)
    .ok_or_else(|| ApiError::not_found("calendar"))
}

// ---- Policies ---------------------------------------------------------------------------------

async fn load_policy(scope: &mut Scope, id: SlaPolicyId) -> ApiResult<Policy> {
    sla::policies(&mut scope.tx, scope.tenant, Some(id.as_uuid()))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("SLA policy"))
}

/// Locks a policy for the rest of the transaction, so version checks cannot race.
async fn lock_policy(scope: &mut Scope, id: SlaPolicyId) -> ApiResult<()> {
    sqlx::query_scalar!(
        "select id from sla_policies where id = $1 for update",
        id.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .map(drop)
    .ok_or_else(|| ApiError::not_found("SLA policy"))
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::from(FieldError::Invalid {
        field,
        message: message.into(),
    })
}

/// Checks a policy as written, then against the tenant: its calendar, categories and customers.
async fn check_policy(scope: &mut Scope, input: &PolicyInput) -> ApiResult<()> {
    input.validate()?;
    if let Some(calendar) = input.calendar_id {
        let known = sqlx::query_scalar!(
            "select id from calendars where tenant_id = $1 and id = $2",
            scope.tenant.as_uuid(),
            calendar.as_uuid(),
        )
        .fetch_optional(&mut *scope.tx)
        .await?;
        if known.is_none() {
            return Err(invalid("calendar_id", "no such calendar in this tenant"));
        }
    }
    if let Some(categories) = &input.categories {
        let allowed: Vec<String> = sqlx::query_scalar!(
            "select categories from tenants where id = $1",
            scope.tenant.as_uuid()
        )
        .fetch_one(&mut *scope.tx)
        .await?;
        if let Some(unknown) = categories.iter().find(|c| !allowed.contains(c)) {
            return Err(invalid(
                "categories",
                format!(
                    "{unknown:?} is not one of this tenant's: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    if let Some(customers) = &input.customer_ids {
        let ids: Vec<Uuid> = customers.iter().map(|c| c.as_uuid()).collect();
        let known: Vec<Uuid> = sqlx::query_scalar!(
            "select id from customers where tenant_id = $1 and id = any($2)",
            scope.tenant.as_uuid(),
            &ids,
        )
        .fetch_all(&mut *scope.tx)
        .await?;
        if let Some(unknown) = ids.iter().find(|id| !known.contains(id)) {
            return Err(invalid(
                "customer_ids",
                format!("{unknown}: no such customer in this tenant"),
            ));
        }
    }
    Ok(())
}

fn minutes(m: Option<u32>) -> Option<i32> {
    m.and_then(|m| i32::try_from(m).ok())
}

fn priorities(input: &PolicyInput) -> Option<Vec<String>> {
    input
        .priorities
        .as_ref()
        .map(|ps| ps.iter().map(|p| p.as_str().to_owned()).collect())
}

fn customer_ids(input: &PolicyInput) -> Option<Vec<Uuid>> {
    input
        .customer_ids
        .as_ref()
        .map(|ids| ids.iter().map(|c| c.as_uuid()).collect())
}

#[utoipa::path(
    get, path = "/api/v1/sla-policies", tag = "sla",
    description = "The tenant's SLA policies in the order they are tried: the first active one \
        that matches a ticket applies. Agents, admins and observers.",
    params(crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Policy>), (status = 403, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list_policies(mut scope: Scope) -> ApiResult<axum::Json<Page<Policy>>> {
    require_view(&scope)?;
    let items = sla::policies(&mut scope.tx, scope.tenant, None).await?;
    scope.commit().await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/sla-policies", tag = "sla",
    description = "Admins only. Targets are in minutes; missing or empty conditions match every \
        ticket. The SLA of every open ticket is derived again.",
    request_body = PolicyInput,
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 201, body = Policy),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "the message names the field"),
        (status = 403, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create_policy(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<PolicyInput>,
) -> ApiResult<(StatusCode, axum::Json<Policy>)> {
    scope.require(Action::ManageTenantSettings)?;
    check_policy(&mut scope, &body).await?;
    let id = SlaPolicyId::new();
    let now = state.clock.now();
    let (priorities, customers) = (priorities(&body), customer_ids(&body));
    sqlx::query!(
        "insert into sla_policies (id, tenant_id, name, position, active, priorities, categories,
                                   customer_ids, first_response_minutes, next_response_minutes,
                                   resolution_minutes, business_hours, calendar_id, warn_minutes,
                                   created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
        id.as_uuid(),
        scope.tenant.as_uuid(),
        body.name.trim(),
        i64::from(body.position),
        body.active,
        priorities.as_deref(),
        body.categories.as_deref(),
        customers.as_deref(),
        minutes(body.first_response_minutes),
        minutes(body.next_response_minutes),
        minutes(body.resolution_minutes),
        body.business_hours,
        body.calendar_id.map(|c| c.as_uuid()),
        minutes(body.warn_minutes),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let policy = load_policy(&mut scope, id).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::SlaPolicyCreated).after(to_json(&policy)?),
    )
    .await?;
    refresh_open_tickets(&mut scope, &state).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(policy)))
}

#[utoipa::path(
    get, path = "/api/v1/sla-policies/{id}", tag = "sla",
    params(("id" = SlaPolicyId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Policy), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn get_policy(
    mut scope: Scope,
    Path(id): Path<SlaPolicyId>,
) -> ApiResult<axum::Json<Policy>> {
    require_view(&scope)?;
    let policy = load_policy(&mut scope, id).await?;
    scope.commit().await?;
    Ok(axum::Json(policy))
}

#[utoipa::path(
    patch, path = "/api/v1/sla-policies/{id}", tag = "sla",
    description = "Admins only. Replaces the policy whole (to reorder, change `position`; to \
        deactivate, `active: false`); `version` is the one read. The SLA of every open ticket \
        is derived again, so a deactivated policy raises no more alerts.",
    request_body = PatchSlaPolicy,
    params(("id" = SlaPolicyId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = Policy),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "stale version"),
        (status = 422, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn update_policy(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<SlaPolicyId>,
    Json(body): Json<PatchSlaPolicy>,
) -> ApiResult<axum::Json<Policy>> {
    scope.require(Action::ManageTenantSettings)?;
    lock_policy(&mut scope, id).await?;
    let current = load_policy(&mut scope, id).await?;
    if body.version != current.version {
        return Err(stale("SLA policy", body.version, current.version));
    }
    let input = body.policy;
    check_policy(&mut scope, &input).await?;
    let now = state.clock.now();
    let (priorities, customers) = (priorities(&input), customer_ids(&input));
    sqlx::query!(
        "update sla_policies
            set name = $2, position = $3, active = $4, priorities = $5, categories = $6,
                customer_ids = $7, first_response_minutes = $8, next_response_minutes = $9,
                resolution_minutes = $10, business_hours = $11, calendar_id = $12,
                warn_minutes = $13, updated_at = $14, version = version + 1
          where id = $1",
        id.as_uuid(),
        input.name.trim(),
        i64::from(input.position),
        input.active,
        priorities.as_deref(),
        input.categories.as_deref(),
        customers.as_deref(),
        minutes(input.first_response_minutes),
        minutes(input.next_response_minutes),
        minutes(input.resolution_minutes),
        input.business_hours,
        input.calendar_id.map(|c| c.as_uuid()),
        minutes(input.warn_minutes),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let policy = load_policy(&mut scope, id).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::SlaPolicyUpdated)
            .before(to_json(&current)?)
            .after(to_json(&policy)?),
    )
    .await?;
    refresh_open_tickets(&mut scope, &state).await?;
    scope.commit().await?;
    Ok(axum::Json(policy))
}

#[utoipa::path(
    delete, path = "/api/v1/sla-policies/{id}", tag = "sla",
    description = "Admins only. The SLA of every open ticket is derived again without it.",
    params(("id" = SlaPolicyId, Path), crate::http::docs::TenantHeader),
    responses((status = 204), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn delete_policy(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<SlaPolicyId>,
) -> ApiResult<StatusCode> {
    scope.require(Action::ManageTenantSettings)?;
    lock_policy(&mut scope, id).await?;
    let policy = load_policy(&mut scope, id).await?;
    sqlx::query!("delete from sla_policies where id = $1", id.as_uuid())
        .execute(&mut *scope.tx)
        .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        state.clock.now(),
        NewActivity::tenant(ActivityAction::SlaPolicyDeleted).before(to_json(&policy)?),
    )
    .await?;
    refresh_open_tickets(&mut scope, &state).await?;
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
