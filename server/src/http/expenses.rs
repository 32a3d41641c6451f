//! Expenses' routes: the operations are in [`crate::expenses`]; desktops submit and decide
//! expenses through sync.

use tallydesk_shared::TicketId;
use tallydesk_shared::api::{Expense, Page};

use super::extract::Path;
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
