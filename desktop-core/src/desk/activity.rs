//! The trail of a ticket: who changed what, and when.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::Activity;
use tallydesk_shared::permission::access;
use tallydesk_shared::{Access, Action, ActivityId, TicketId, UserId};

use super::{Desk, parse_text};
use crate::error::DeskResult;
use crate::time::{from_micros, to_micros};

impl Desk {
    pub async fn activity(&self, id: TicketId) -> DeskResult<Vec<Activity>> {
        self.load(id).await?;
        let internal = access(self.role(), Action::ViewInternalNotes) != Access::Denied;
        sqlx::query_as::<_, ActivityDb>(
            "select id, ticket_id, actor_id, action, field, before, after, at from activity
              where ticket_id = ? and (internal = 0 or ?) order by at, id",
        )
        .bind(id)
        .bind(internal)
        .fetch_all(&self.store.pool)
        .await?
        .into_iter()
        .map(ActivityDb::into_activity)
        .collect()
    }
}

/// Notes a change in the trail, inside the transaction that makes it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    tx: &mut Transaction<'_, Sqlite>,
    ticket: Option<TicketId>,
    actor: UserId,
    action: ActivityAction,
    field: Option<&str>,
    before: Option<Value>,
    after: Option<Value>,
    internal: bool,
    at: DateTime<Utc>,
) -> DeskResult<()> {
    sqlx::query(
        "insert into activity (id, ticket_id, actor_id, action, field, before, after, internal, at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(ActivityId::new())
    .bind(ticket)
    .bind(actor)
    .bind(action.as_str())
    .bind(field)
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .bind(internal)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A row of `activity`; `before` and `after` are JSON text.
#[derive(FromRow)]
struct ActivityDb {
    id: ActivityId,
    ticket_id: Option<TicketId>,
    actor_id: UserId,
    action: String,
    field: Option<String>,
    before: Option<String>,
    after: Option<String>,
    at: i64,
}

impl ActivityDb {
    fn into_activity(self) -> DeskResult<Activity> {
        let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        Ok(Activity {
            id: self.id,
            ticket_id: self.ticket_id,
            actor_id: self.actor_id,
            action: parse_text(&self.action, "action")?,
            field: self.field,
            before: json(self.before),
            after: json(self.after),
            at: from_micros(self.at),
        })
    }
}
