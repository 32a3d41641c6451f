//! Expenses' routes: the operations are in [`crate::expenses`]; desktops submit and decide
//! expenses through sync. The tenant's expense policy (dual approval) is set here.

use axum::extract::State;
use tallydesk_shared::TicketId;
use tallydesk_shared::api::{Expense, ExpensePolicy, Page};

use super::extract::{Json, Path};
use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::expenses;

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/expenses", tag = "expenses",
    description = "The expenses filed on a claim ticket, oldest first, for whoever may see the \
        ticket (requesters: their own). Desktops get them through sync; expenses are submitted \
        and decided with sync's `expense.create` and `expense.decide`.",
    params(("id" = TicketId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Expense>), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list(
    mut scope: Scope,
    Path(id): Path<TicketId>,
) -> ApiResult<axum::Json<Page<Expense>>> {
    let items = expenses::for_ticket(&mut scope, id).await?;
    scope.commit().await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/tenant/expense-policy", tag = "expenses",
    description = "The tenant's rules for deciding expenses, for any member: above \
        `dual_approval_above_minor` (minor units of the expense's own currency) an expense needs \
        two approvals by different approvers; `null`, one. Nobody decides an expense they \
        submitted (409 `own_expense`).",
    params(crate::http::docs::TenantHeader),
    responses((status = 200, body = ExpensePolicy)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn policy(mut scope: Scope) -> ApiResult<axum::Json<ExpensePolicy>> {
    let policy = expenses::policy(&mut scope).await?;
    scope.commit().await?;
    Ok(axum::Json(policy))
}

#[utoipa::path(
    put, path = "/api/v1/tenant/expense-policy", tag = "expenses",
    description = "Admins only. Replaces the tenant's rules for deciding expenses; an expense \
        waiting for a decision follows the new rule from its next decision on. Recorded in the \
        tenant's audit trail (`tenant.expense_policy_updated`).",
    request_body = ExpensePolicy,
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = ExpensePolicy),
        (status = 403, body = tallydesk_shared::api::ErrorBody),
        (status = 422, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn set_policy(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<ExpensePolicy>,
) -> ApiResult<axum::Json<ExpensePolicy>> {
    let policy = expenses::set_policy(&mut scope, &body, state.clock.now()).await?;
    scope.commit().await?;
    Ok(axum::Json(policy))
}
