//! Status changes: the workflow's moves, and the move an agent's first view makes.

use chrono::{DateTime, Utc};
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{Ticket, TransitionRequest};
use tallydesk_shared::workflow::{self, Transition};
use tallydesk_shared::{Action, Status, TicketId};

use super::{load, load_for_update, mover, refresh_sla};
use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::ApiResult;

/// Applies a checked status change and records it.
async fn apply(
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

/// Moves the ticket to `body.to` if the workflow allows it from its current status.
pub(crate) async fn transition(
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
    apply(scope, &ticket, t, now, ActivityAction::TicketTransitioned).await?;
    load(scope, id, Action::ViewTicket).await
}

/// Records that the caller opened the ticket: an agent or admin opening an `open` ticket starts
/// work on it (`in_progress`); anyone else's view changes nothing.
pub(crate) async fn view(scope: &mut Scope, id: TicketId, now: DateTime<Utc>) -> ApiResult<Ticket> {
    let ticket = load_for_update(scope, id, Action::ViewTicket).await?;
    if let Some(to) = workflow::on_view(scope.role, ticket.status) {
        let t = workflow::transition(mover(scope, &ticket), ticket.status, to, None)?;
        apply(scope, &ticket, t, now, ActivityAction::TicketViewed).await?;
    }
    load(scope, id, Action::ViewTicket).await
}
