//! Creating, editing and deleting the ticket record.

use chrono::{DateTime, Utc};
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{CreateTicket, ErrorCode, PatchTicket, Ticket};
use tallydesk_shared::ticket::{
    self, Category, FieldChange, TicketDescription, TicketEdit, TicketTitle,
};
use tallydesk_shared::{Action, TicketId};

use super::{categories, check_assignee, load, load_for_update, member_role, refresh_sla};
use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};

/// Raises a ticket with the given id (made by the server for REST, by the client for sync),
/// with its activity and SLA row, in the scope's transaction.
pub(crate) async fn create(
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

/// Changes the fields `body` names, with their activity, in the scope's transaction.
///
/// `body.version`, when given and no longer current, refuses the update (REST). `merged_from`
/// is sync's per-field merge instead: the client edited version `merged_from`; its fields apply
/// whatever happened since, and the activity of a field someone else changed since that version
/// says so (`after.merged_from_version`), so the overwritten value stays visible there.
pub(crate) async fn update(
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

/// Deletes a ticket, in the scope's transaction.
pub(crate) async fn delete(scope: &mut Scope, id: TicketId, now: DateTime<Utc>) -> ApiResult<()> {
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
