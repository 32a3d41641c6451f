//! The sync tables of the local store: the outbox of intents ([`outbox`]), the server's copy
//! of each synced record (`sync_base`) written as pulled pages are applied ([`apply`]), the
//! pull position, and the pending intents replayed over the server's state ([`replay`]).

mod apply;
mod outbox;
mod replay;

use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::sync::{Cursor, Entity};

pub use apply::{Indexing, apply_page, reindex};
pub(crate) use apply::{json_list, known_users};
pub use outbox::{
    Queued, client_id, counts, dismiss, enqueue, mutations, pending, rejections, server_counts,
    settle,
};
pub use replay::replay;
pub(crate) use replay::visible_requester;

use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::store::Store;
use crate::sync::SyncScope;
use crate::time::from_micros;

pub(crate) type Tx = Transaction<'static, Sqlite>;

pub(super) fn entity_name(entity: Entity) -> &'static str {
    match entity {
        Entity::Ticket => "ticket",
        Entity::Comment => "comment",
        Entity::Activity => "activity",
        Entity::Customer => "customer",
        Entity::Member => "member",
        Entity::Expense => "expense",
        Entity::SlaPolicy => "sla_policy",
        Entity::Calendar => "calendar",
    }
}

pub(crate) fn bad_data(entity: Entity, e: &serde_json::Error) -> DeskError {
    DeskError::new(
        ErrorCode::NotATallydeskServer,
        format!(
            "the server sent a {} this app does not understand ({e}); is the app up to date?",
            entity_name(entity)
        ),
    )
}

/// The acting server user's row, so records they make can refer to them.
pub(crate) async fn upsert_user(tx: &mut Tx, user: &Person, now: i64) -> DeskResult<()> {
    sqlx::query(
        "insert into users (id, name, email, role, updated_at) values (?, ?, ?, ?, ?)
         on conflict (id) do update set name = excluded.name, email = excluded.email,
                role = excluded.role, deleted_at = null",
    )
    .bind(user.id)
    .bind(&user.name)
    .bind(&user.email)
    .bind(user.role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Where the store stands: the scope its synced records belong to and the pull position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub server_url: Option<String>,
    pub tenant_id: Option<String>,
    pub cursor: Cursor,
    pub last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn position(store: &Store) -> DeskResult<Position> {
    client_id(store).await?;
    let row = sqlx::query_as::<_, PositionDb>(
        "select server_url, tenant_id, cursor, last_synced_at from sync_state where id = 1",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(Position {
        server_url: row.server_url,
        tenant_id: row.tenant_id,
        cursor: row.cursor,
        last_synced_at: row.last_synced_at.map(from_micros),
    })
}

/// The row of `sync_state`, but for the client id.
#[derive(FromRow)]
struct PositionDb {
    server_url: Option<String>,
    tenant_id: Option<String>,
    cursor: Cursor,
    last_synced_at: Option<i64>,
}

/// Makes the synced records those of `scope`: when they belong to another server or tenant,
/// they are removed and the next pull starts from the beginning. Records made in local mode,
/// before the first sign-in, stay. Returns whether the scope changed.
pub async fn enter_scope(store: &Store, scope: &SyncScope, now: i64) -> DeskResult<bool> {
    let position = position(store).await?;
    let tenant = scope.tenant_id.to_string();
    if position.server_url.as_deref() == Some(scope.server_url.as_str())
        && position.tenant_id.as_deref() == Some(tenant.as_str())
    {
        return Ok(false);
    }
    let mut tx = store.write().await?;
    if let (Some(url), Some(old)) = (&position.server_url, &position.tenant_id) {
        // The old scope's records: those the server sent, and those its intents made.
        let made = outbox_records(&mut tx, url, old).await?;
        clear_synced(&mut tx, now).await?;
        for (entity, id) in made {
            remove(&mut tx, &entity, &id, now, true).await?;
        }
    }
    sqlx::query(
        "update sync_state set server_url = ?, tenant_id = ?, cursor = 0, last_synced_at = null
          where id = 1",
    )
    .bind(&scope.server_url)
    .bind(&tenant)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The records a scope's intents are about, `(entity, id)`.
pub(super) async fn outbox_records(
    tx: &mut Tx,
    server_url: &str,
    tenant_id: &str,
) -> DeskResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select distinct entity, record_id from outbox where server_url = ? and tenant_id = ?",
    )
    .bind(server_url)
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Forgets what the server sent (after `resync_required`): the next pull starts at 0. The
/// outbox stays; replaying it after the pull restores the pending intents.
pub async fn restart(store: &Store, now: i64) -> DeskResult<()> {
    let mut tx = store.write().await?;
    clear_synced(&mut tx, now).await?;
    sqlx::query("update sync_state set cursor = 0 where id = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn clear_synced(tx: &mut Tx, now: i64) -> DeskResult<()> {
    let rows: Vec<(String, String)> = sqlx::query_as("select entity, id from sync_base")
        .fetch_all(&mut **tx)
        .await?;
    for (entity, id) in rows {
        remove(tx, &entity, &id, now, true).await?;
    }
    sqlx::query("delete from sync_base")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes a record locally: tickets and customers become tombstones (other local records may
/// refer to them), comments and activity go. `evict` also removes an evicted ticket's thread.
pub(super) async fn remove(
    tx: &mut Tx,
    entity: &str,
    id: &str,
    now: i64,
    evict: bool,
) -> DeskResult<()> {
    match entity {
        "ticket" => tombstone_ticket(tx, id, now, evict).await?,
        "expense" => {
            sqlx::query("delete from expenses where id = ? and status <> 'draft'")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        other => {
            // Thread records go; records others refer to become tombstones.
            let target = match other {
                "comment" => Some(("comments", false)),
                "activity" => Some(("activity", false)),
                "customer" => Some(("customers", true)),
                "member" => Some(("users", true)),
                "sla_policy" => Some(("sla_policies", true)),
                "calendar" => Some(("calendars", true)),
                _ => None,
            };
            if let Some((table, tombstone)) = target {
                let sql = if tombstone {
                    format!("update {table} set deleted_at = coalesce(deleted_at, ?) where id = ?")
                } else {
                    format!("delete from {table} where id = ?")
                };
                let mut query = sqlx::query(&sql);
                if tombstone {
                    query = query.bind(now);
                }
                query.bind(id).execute(&mut **tx).await?;
            }
        }
    }
    sqlx::query("delete from sync_base where entity = ? and id = ?")
        .bind(entity)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn tombstone_ticket(
    tx: &mut Tx,
    id: &str,
    now: i64,
    thread: bool,
) -> DeskResult<()> {
    sqlx::query("update tickets set deleted_at = coalesce(deleted_at, ?) where id = ?")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if thread {
        for statement in [
            "delete from comments where ticket_id = ?",
            "delete from activity where ticket_id = ?",
            "delete from expenses where ticket_id = ? and status <> 'draft'",
        ] {
            sqlx::query(statement).bind(id).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Marks the pull finished now.
pub async fn synced(store: &Store, now: i64) -> DeskResult<()> {
    sqlx::query("update sync_state set last_synced_at = ? where id = 1")
        .bind(now)
        .execute(&store.pool)
        .await?;
    Ok(())
}
