//! The audit trail: every change is recorded in the transaction that makes it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::Activity;
use tallydesk_shared::{ActivityId, TenantId, TicketId, UserId};

/// What happened, to what, from what to what.
#[derive(Debug, Clone)]
pub struct NewActivity {
    action: ActivityAction,
    ticket: Option<TicketId>,
    field: Option<&'static str>,
    before: Option<Value>,
    after: Option<Value>,
    /// Entries about internal notes are hidden from requesters.
    internal: bool,
}

impl NewActivity {
    pub fn ticket(action: ActivityAction, ticket: TicketId) -> Self {
        Self {
            action,
            ticket: Some(ticket),
            field: None,
            before: None,
            after: None,
            internal: false,
        }
    }

    /// A tenant-level entry (customers, settings).
    pub fn tenant(action: ActivityAction) -> Self {
        Self {
            action,
            ticket: None,
            field: None,
            before: None,
            after: None,
            internal: false,
        }
    }

    /// A tenant-level entry about a member (the subject goes in `before`/`after`).
    pub fn member(action: ActivityAction, subject: UserId) -> Self {
        Self {
            action,
            ticket: None,
            field: None,
            before: None,
            after: Some(serde_json::json!({ "user_id": subject })),
            internal: false,
        }
    }

    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn before(mut self, value: Value) -> Self {
        self.before = Some(merge(self.before.take(), value));
        self
    }

    pub fn after(mut self, value: Value) -> Self {
        self.after = Some(merge(self.after.take(), value));
        self
    }

    pub fn internal(mut self, internal: bool) -> Self {
        self.internal = internal;
        self
    }
}

fn merge(existing: Option<Value>, value: Value) -> Value {
    match (existing, value) {
        (Some(Value::Object(mut a)), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (_, value) => value,
    }
}

#[tracing::instrument(skip_all, err)]
pub async fn record(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    actor: UserId,
    at: DateTime<Utc>,
    entry: NewActivity,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into activity (id, tenant_id, ticket_id, actor_id, action, field, before, after, internal, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ActivityId::new().as_uuid(),
        tenant.as_uuid(),
        entry.ticket.map(|t| t.as_uuid()),
        actor.as_uuid(),
        entry.action.as_str(),
        entry.field,
        entry.before,
        entry.after,
        entry.internal,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A ticket's trail, oldest first; entries about internal notes only when `include_internal`.
pub async fn for_ticket(
    tx: &mut Transaction<'static, Postgres>,
    ticket: TicketId,
    include_internal: bool,
) -> Result<Vec<Activity>, sqlx::Error> {
    let rows = sqlx::query!(
        "select id, ticket_id, actor_id, action, field, before, after, at from activity
          where ticket_id = $1 and (not internal or $2)
          order by at, id",
        ticket.as_uuid(),
        include_internal,
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Activity {
                id: r.id.into(),
                ticket_id: r.ticket_id.map(Into::into),
                actor_id: r.actor_id.into(),
                action: r
                    .action
                    .parse()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                field: r.field,
                before: r.before,
                after: r.after,
                at: r.at,
            })
        })
        .collect()
}
