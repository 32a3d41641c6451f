//! The sync tables of the local store: the outbox of intents, the server's copy of each synced
//! record (`sync_base`), and the pull position; applying pulled changes and replaying pending
//! intents over them.

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::{Row, Sqlite, Transaction};
use tallydesk_shared::api::{Activity, Comment, Customer, Expense, Member, Ticket};
use tallydesk_shared::permission::access;
use tallydesk_shared::sla::{CalendarRecord, Policy};
use tallydesk_shared::sync::{
    Change, ChangeOp, ClientId, Cursor, Entity, Intent, Mutation, MutationResult, MutationStatus,
};
use tallydesk_shared::workflow::{self, Mover};
use tallydesk_shared::{Access, Action, Status, TicketId};

use crate::desk::{parse_id, parse_text};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::store::Store;
use crate::sync::expenses::{
    replay_create, replay_decide, revert_refused, write_expenses, write_ticket_expenses,
};
use crate::sync::settings::{write_calendars, write_policies};
use crate::sync::{Rejection, SyncScope};
use crate::time::{from_micros, to_micros};

pub(crate) type Tx = Transaction<'static, Sqlite>;

fn entity_name(entity: Entity) -> &'static str {
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

/// The ticket an intent is about, if any: rejections are shown on it.
pub(crate) fn intent_ticket(intent: &Intent) -> Option<TicketId> {
    match intent {
        Intent::TicketCreate(c) => Some(c.id),
        Intent::TicketUpdate(u) => Some(u.id),
        Intent::TicketTransition(t) => Some(t.id),
        Intent::TicketDelete(d) => Some(d.id),
        Intent::CommentCreate(c) => Some(c.ticket_id),
        Intent::ExpenseCreate(e) => Some(e.ticket_id),
        Intent::ExpenseDecide(d) => Some(d.ticket_id),
        Intent::CustomerCreate(_) | Intent::CustomerUpdate(_) | Intent::CustomerDelete(_) => None,
    }
}

/// The record an intent changes, `(entity, id)`: replay rebuilds it from the server's copy.
fn intent_record(intent: &Intent) -> (&'static str, String) {
    match (intent_ticket(intent), intent) {
        (Some(ticket), _) => ("ticket", ticket.to_string()),
        (None, Intent::CustomerCreate(c)) => ("customer", c.id.to_string()),
        (None, Intent::CustomerUpdate(u)) => ("customer", u.id.to_string()),
        (None, Intent::CustomerDelete(d)) => ("customer", d.id.to_string()),
        (None, other) => unreachable!("{other:?} is about a ticket"),
    }
}

/// The acting server user's row, so records they make can refer to them.
pub(crate) async fn upsert_user(tx: &mut Tx, user: &Person, now: i64) -> DeskResult<()> {
    sqlx::query(
        "insert into users (id, name, email, role, updated_at) values (?, ?, ?, ?, ?)
         on conflict (id) do update set name = excluded.name, email = excluded.email,
                role = excluded.role, deleted_at = null",
    )
    .bind(user.id.to_string())
    .bind(&user.name)
    .bind(&user.email)
    .bind(user.role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues an intent of `scope`, in the caller's transaction.
pub async fn enqueue(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &SyncScope,
    intent: &Intent,
    now: i64,
) -> DeskResult<()> {
    let json = serde_json::to_string(intent)
        .map_err(|e| DeskError::new(ErrorCode::Internal, format!("intent to JSON: {e}")))?;
    let (entity, record) = intent_record(intent);
    sqlx::query(
        "insert into outbox (server_url, tenant_id, intent, entity, record_id, created_at)
         values (?, ?, ?, ?, ?, ?)",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id.to_string())
    .bind(json)
    .bind(entity)
    .bind(record)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// This store's client id, made on first use.
pub async fn client_id(store: &Store) -> DeskResult<ClientId> {
    sqlx::query("insert or ignore into sync_state (id, client_id) values (1, ?)")
        .bind(uuid::Uuid::now_v7().to_string())
        .execute(&store.pool)
        .await?;
    let id: String = sqlx::query_scalar("select client_id from sync_state where id = 1")
        .fetch_one(&store.pool)
        .await?;
    Ok(ClientId(parse_id(&id)?))
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
    let row = sqlx::query(
        "select server_url, tenant_id, cursor, last_synced_at from sync_state where id = 1",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(Position {
        server_url: row.get(0),
        tenant_id: row.get(1),
        cursor: row.get(2),
        last_synced_at: row.get::<Option<i64>, _>(3).map(from_micros),
    })
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
async fn outbox_records(
    tx: &mut Tx,
    server_url: &str,
    tenant_id: &str,
) -> DeskResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "select distinct entity, record_id from outbox where server_url = ? and tenant_id = ?",
    )
    .bind(server_url)
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
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
    let rows = sqlx::query("select entity, id from sync_base")
        .fetch_all(&mut **tx)
        .await?;
    for row in rows {
        let entity: String = row.get(0);
        let id: String = row.get(1);
        remove(tx, &entity, &id, now, true).await?;
    }
    sqlx::query("delete from sync_base")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes a record locally: tickets and customers become tombstones (other local records may
/// refer to them), comments and activity go. `evict` also removes an evicted ticket's thread.
async fn remove(tx: &mut Tx, entity: &str, id: &str, now: i64, evict: bool) -> DeskResult<()> {
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

async fn tombstone_ticket(tx: &mut Tx, id: &str, now: i64, thread: bool) -> DeskResult<()> {
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

/// When the records of a pulled page reach the search index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    /// With this page, together with those of earlier pages that waited: a pull's last page.
    Now,
    /// With a later page: a long pull rebuilds each ticket's search row once, at its end,
    /// rather than once for each page that brings it comments.
    Later,
}

/// Applies one pulled page in one transaction and moves the cursor past it. A run of upserts
/// of one entity is written with a handful of statements whatever its length (rows go to
/// SQLite as one JSON array, read with `json_each`), so a first sync costs a few statements a
/// page rather than several a record. The tickets whose text changed are noted rather than
/// indexed one row at a time, and their search rows rebuilt once, as `indexing` says.
pub async fn apply_page(
    store: &Store,
    changes: &[Change],
    cursor: Cursor,
    now: i64,
    indexing: Indexing,
) -> DeskResult<()> {
    let mut tx = store.write().await?;
    sqlx::query("update sync_state set search_deferred = 1 where id = 1")
        .execute(&mut *tx)
        .await?;
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let run = if first.op == ChangeOp::Upsert {
            rest.iter()
                .take_while(|c| c.op == ChangeOp::Upsert && c.entity == first.entity)
                .count()
        } else {
            1
        };
        let (now_run, later) = rest.split_at(run);
        if first.op == ChangeOp::Upsert {
            upsert_run(&mut tx, first.entity, now_run, now).await?;
        } else {
            let id = first.id.to_string();
            remove(
                &mut tx,
                entity_name(first.entity),
                &id,
                now,
                first.op == ChangeOp::Evict,
            )
            .await?;
        }
        rest = later;
    }
    sqlx::query("update sync_state set cursor = ?, search_deferred = 0 where id = 1")
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
    if indexing == Indexing::Now {
        reindex_stale(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Rebuilds the search rows of the tickets noted in `search_stale` from their text and
/// comments as they are now, and empties the list.
async fn reindex_stale(tx: &mut Tx) -> DeskResult<()> {
    for statement in [
        "delete from ticket_search where rowid in (select ticket_rowid from search_stale)",
        "insert into ticket_search (rowid, title, description, comments)
         select t.rowid, t.title, t.description,
                coalesce((select ' ' || group_concat(c.body, ' ') from comments c
                           where c.ticket_id = t.id), '')
           from search_stale s join tickets t on t.rowid = s.ticket_rowid",
        "delete from search_stale",
    ] {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Brings the search index up to date with pages applied with [`Indexing::Later`] by a pull
/// that did not finish.
pub async fn reindex(store: &Store) -> DeskResult<()> {
    let mut tx = store.write().await?;
    reindex_stale(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The record of each upsert in `changes`, parsed as `T`.
fn records<T: serde::de::DeserializeOwned>(
    entity: Entity,
    changes: &[Change],
) -> DeskResult<Vec<(T, &Value)>> {
    changes
        .iter()
        .map(|change| {
            let Some(data) = &change.data else {
                return Err(DeskError::new(
                    ErrorCode::NotATallydeskServer,
                    format!(
                        "the server sent a {} change without the record",
                        entity_name(entity)
                    ),
                ));
            };
            let record = T::deserialize(data).map_err(|e| bad_data(entity, &e))?;
            Ok((record, data))
        })
        .collect()
}

/// Writes a run of upserts of one entity (in log order) and keeps each as the server's copy.
async fn upsert_run(tx: &mut Tx, entity: Entity, changes: &[Change], now: i64) -> DeskResult<()> {
    let data: Vec<&Value> = match entity {
        Entity::SlaPolicy => {
            let policies = records::<Policy>(entity, changes)?;
            let (policies, data): (Vec<Policy>, Vec<&Value>) = policies.into_iter().unzip();
            write_policies(tx, &policies, now).await?;
            data
        }
        Entity::Calendar => {
            let calendars = records::<CalendarRecord>(entity, changes)?;
            let (calendars, data): (Vec<CalendarRecord>, Vec<&Value>) =
                calendars.into_iter().unzip();
            write_calendars(tx, &calendars, now).await?;
            data
        }
        Entity::Expense => {
            let expenses = records::<Expense>(entity, changes)?;
            let (expenses, data): (Vec<Expense>, Vec<&Value>) = expenses.into_iter().unzip();
            write_expenses(tx, &expenses, now).await?;
            data
        }
        Entity::Ticket => {
            let tickets = records::<Ticket>(entity, changes)?;
            let (tickets, data): (Vec<Ticket>, Vec<&Value>) = tickets.into_iter().unzip();
            write_tickets(tx, &tickets, now).await?;
            let ids: Vec<String> = tickets.iter().map(|t| t.id.to_string()).collect();
            write_threads(tx, &ids, now).await?;
            write_ticket_expenses(tx, &ids, now).await?;
            data
        }
        Entity::Comment => {
            let comments = records::<Comment>(entity, changes)?;
            let (comments, data): (Vec<Comment>, Vec<&Value>) = comments.into_iter().unzip();
            write_comments(tx, &comments, now).await?;
            data
        }
        Entity::Activity => {
            let activity = records::<Activity>(entity, changes)?;
            let (activity, data): (Vec<Activity>, Vec<&Value>) = activity.into_iter().unzip();
            write_activity(tx, &activity).await?;
            data
        }
        Entity::Customer => {
            let customers = records::<Customer>(entity, changes)?;
            for (customer, _) in &customers {
                write_customer(tx, customer).await?;
            }
            customers.into_iter().map(|(_, data)| data).collect()
        }
        Entity::Member => {
            let members = records::<Member>(entity, changes)?;
            for (member, _) in &members {
                let name = member
                    .name
                    .clone()
                    .or_else(|| member.email.clone())
                    .unwrap_or_else(|| "Unknown".to_owned());
                let person = Person {
                    id: member.user_id,
                    name,
                    email: member.email.clone(),
                    role: member.role,
                };
                upsert_user(tx, &person, now).await?;
            }
            members.into_iter().map(|(_, data)| data).collect()
        }
    };
    // Written as JSON straight from the records, without copying them into new values.
    let rows: Vec<(String, &Value)> = changes
        .iter()
        .zip(data)
        .map(|(change, data)| (change.id.to_string(), data))
        .collect();
    sqlx::query(
        "insert into sync_base (entity, id, data)
         select ?1, j.value ->> 0, j.value -> 1 from json_each(?2) as j where true
         on conflict (entity, id) do update set data = excluded.data",
    )
    .bind(entity_name(entity))
    .bind(to_json(&rows)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// People records refer to, known by id only until their membership arrives.
pub(crate) async fn known_users(tx: &mut Tx, ids: &BTreeSet<String>, now: i64) -> DeskResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert or ignore into users (id, name, role, updated_at)
         select j.value, 'Unknown', 'requester', ?2 from json_each(?1) as j",
    )
    .bind(json_list(ids))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows for `json_each`, as one JSON array.
fn to_json(rows: &impl serde::Serialize) -> DeskResult<String> {
    serde_json::to_string(rows)
        .map_err(|e| DeskError::new(ErrorCode::Internal, format!("rows to JSON: {e}")))
}

pub(crate) fn json_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    Value::Array(items.into_iter().cloned().map(Value::String).collect()).to_string()
}

/// Writes tickets as the server sent them, with stubs for the people and customers they
/// name.
async fn write_tickets(tx: &mut Tx, tickets: &[Ticket], now: i64) -> DeskResult<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let people: BTreeSet<String> = tickets
        .iter()
        .flat_map(|t| [Some(t.requester_id), t.assignee_id])
        .flatten()
        .map(|u| u.to_string())
        .collect();
    known_users(tx, &people, now).await?;
    let customers: BTreeSet<String> = tickets
        .iter()
        .filter_map(|t| t.customer_id.map(|c| c.to_string()))
        .collect();
    if !customers.is_empty() {
        sqlx::query(
            "insert or ignore into customers (id, name, created_at, updated_at)
             select j.value, 'Unknown', ?2, ?2 from json_each(?1) as j",
        )
        .bind(json_list(&customers))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let rows: Vec<Value> = tickets
        .iter()
        .map(|t| {
            serde_json::json!([
                t.id.to_string(),
                t.number,
                t.title,
                t.description,
                t.status.as_str(),
                t.priority.as_str(),
                t.category,
                t.requester_id.to_string(),
                t.assignee_id.map(|a| a.to_string()),
                t.customer_id.map(|c| c.to_string()),
                t.hold_reason,
                to_micros(t.created_at),
                to_micros(t.updated_at),
                t.first_responded_at.map(to_micros),
                t.resolved_at.map(to_micros),
                t.closed_at.map(to_micros),
                t.version,
            ])
        })
        .collect();
    // The server numbers tickets; a pending local ticket holding one of these numbers moves
    // aside, one ticket at a time (moving it may take the number of a later one).
    let all = Value::Array(rows);
    let clash: Option<i64> = sqlx::query_scalar(
        "select 1 from json_each(?1) as j join tickets t on t.number = j.value ->> 1
          where t.id != j.value ->> 0 limit 1",
    )
    .bind(all.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Value::Array(rows) = all else {
        unreachable!("built as an array")
    };
    if clash.is_none() {
        return insert_tickets(tx, &Value::Array(rows).to_string()).await;
    }
    for (t, row) in tickets.iter().zip(rows) {
        sqlx::query(
            "update tickets set number = (select max(number) from tickets) + 1
              where number = ? and id != ?",
        )
        .bind(t.number)
        .bind(t.id.to_string())
        .execute(&mut **tx)
        .await?;
        insert_tickets(tx, &Value::Array(vec![row]).to_string()).await?;
    }
    Ok(())
}

/// Inserts or replaces tickets given as a JSON array of rows.
async fn insert_tickets(tx: &mut Tx, rows: &str) -> DeskResult<()> {
    sqlx::query(
        "insert into tickets (id, number, title, description, status, priority, category, requester_id,
                              assignee_id, customer_id, hold_reason, created_at, updated_at,
                              first_responded_at, resolved_at, closed_at, version, deleted_at)
         select j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9,
                j.value ->> 10, j.value ->> 11, j.value ->> 12, j.value ->> 13, j.value ->> 14,
                j.value ->> 15, j.value ->> 16, null
           from json_each(?1) as j where true
         on conflict (id) do update set number = excluded.number, title = excluded.title,
                description = excluded.description, status = excluded.status,
                priority = excluded.priority, category = excluded.category,
                requester_id = excluded.requester_id, assignee_id = excluded.assignee_id,
                customer_id = excluded.customer_id, hold_reason = excluded.hold_reason,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                first_responded_at = excluded.first_responded_at,
                resolved_at = excluded.resolved_at, closed_at = excluded.closed_at,
                version = excluded.version, deleted_at = null",
    )
    .bind(rows)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn ticket_present(tx: &mut Tx, id: &str) -> DeskResult<bool> {
    let found: Option<i64> = sqlx::query_scalar("select 1 from tickets where id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

/// Writes comments whose ticket is here; the others' tickets are not visible here, and the
/// base keeps them for when they are.
async fn write_comments(tx: &mut Tx, comments: &[Comment], now: i64) -> DeskResult<()> {
    if comments.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = comments
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.ticket_id.to_string(),
                c.author_id.to_string(),
                &c.body,
                c.internal,
                to_micros(c.created_at),
            )
        })
        .collect();
    let rows = to_json(&rows)?;
    sqlx::query(
        "insert or ignore into users (id, name, role, updated_at)
         select distinct j.value ->> 2, 'Unknown', 'requester', ?2 from json_each(?1) as j
          where exists (select 1 from tickets t where t.id = j.value ->> 1)",
    )
    .bind(&rows)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into comments (id, ticket_id, author_id, body, internal, created_at)
         select j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5
           from json_each(?1) as j
          where exists (select 1 from tickets t where t.id = j.value ->> 1)
         on conflict (id) do update set author_id = excluded.author_id, body = excluded.body,
                internal = excluded.internal, created_at = excluded.created_at, deleted_at = null",
    )
    .bind(&rows)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The comments the server sent for these tickets before the tickets themselves (the log
/// gives each record at its latest change, so a comment can precede its ticket's newer
/// change).
async fn write_threads(tx: &mut Tx, tickets: &[String], now: i64) -> DeskResult<()> {
    let rows: Vec<String> = sqlx::query_scalar(
        "select data from sync_base where entity = 'comment'
            and json_extract(data, '$.ticket_id') in (select j.value from json_each(?1) as j)",
    )
    .bind(json_list(tickets))
    .fetch_all(&mut **tx)
    .await?;
    let comments = rows
        .iter()
        .map(|data| serde_json::from_str(data).map_err(|e| bad_data(Entity::Comment, &e)))
        .collect::<DeskResult<Vec<Comment>>>()?;
    write_comments(tx, &comments, now).await
}

async fn write_activity(tx: &mut Tx, activity: &[Activity]) -> DeskResult<()> {
    let rows: Vec<Value> = activity
        .iter()
        .map(|a| {
            serde_json::json!([
                a.id.to_string(),
                a.ticket_id.map(|t| t.to_string()),
                a.actor_id.to_string(),
                a.action,
                a.field,
                a.before.as_ref().map(Value::to_string),
                a.after.as_ref().map(Value::to_string),
                to_micros(a.at),
            ])
        })
        .collect();
    sqlx::query(
        "insert or replace into activity (id, ticket_id, actor_id, action, field, before, after, at)
         select j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5, j.value ->> 6, j.value ->> 7
           from json_each(?1) as j",
    )
    .bind(Value::Array(rows).to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_customer(tx: &mut Tx, c: &Customer) -> DeskResult<()> {
    sqlx::query(
        "insert into customers (id, name, email, phone, company, notes, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?)
         on conflict (id) do update set name = excluded.name, email = excluded.email,
                phone = excluded.phone, company = excluded.company, notes = excluded.notes,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                deleted_at = null",
    )
    .bind(c.id.to_string())
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.company)
    .bind(&c.notes)
    .bind(to_micros(c.created_at))
    .bind(to_micros(c.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One queued intent.
#[derive(Clone, Debug)]
pub struct Queued {
    pub seq: i64,
    pub intent: Intent,
    pub created_at: i64,
}

fn parse_intent(text: &str) -> DeskResult<Intent> {
    serde_json::from_str(text).map_err(|e| {
        DeskError::new(
            ErrorCode::Internal,
            format!("bad intent in the local outbox: {e}"),
        )
    })
}

/// The scope's pending intents in order, at most `limit`.
pub async fn pending(store: &Store, scope: &SyncScope, limit: i64) -> DeskResult<Vec<Queued>> {
    let rows = sqlx::query(
        "select seq, intent, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'pending' order by seq limit ?",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id.to_string())
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Queued {
                seq: r.get(0),
                intent: parse_intent(&r.get::<String, _>(1))?,
                created_at: r.get(2),
            })
        })
        .collect()
}

pub fn mutations(queued: &[Queued]) -> Vec<Mutation> {
    queued
        .iter()
        .map(|q| Mutation {
            seq: q.seq,
            intent: q.intent.clone(),
        })
        .collect()
}

/// Records the server's answers: applied intents leave the outbox, rejected ones stay with
/// the reason. Returns the records, `(entity, id)`, whose intents were answered.
pub async fn settle(
    store: &Store,
    results: &[MutationResult],
) -> DeskResult<Vec<(String, String)>> {
    let mut tx = store.write().await?;
    let mut touched = Vec::new();
    for result in results {
        let record =
            sqlx::query("select entity, record_id from outbox where seq = ? and state = 'pending'")
                .bind(result.seq)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(record) = record else { continue };
        let record: (String, String) = (record.get(0), record.get(1));
        match result.status {
            MutationStatus::Applied => {
                sqlx::query("delete from outbox where seq = ?")
                    .bind(result.seq)
                    .execute(&mut *tx)
                    .await?;
            }
            MutationStatus::Rejected => {
                sqlx::query(
                    "update outbox set state = 'rejected', code = ?, message = ? where seq = ?",
                )
                .bind(result.code.unwrap_or(ErrorCode::Internal).as_str())
                .bind(
                    result
                        .message
                        .as_deref()
                        .unwrap_or("the server refused this change"),
                )
                .bind(result.seq)
                .execute(&mut *tx)
                .await?;
            }
        }
        touched.push(record);
    }
    tx.commit().await?;
    Ok(touched)
}

/// How many intents of the scope wait, and how many the server refused.
pub async fn counts(store: &Store, scope: &SyncScope) -> DeskResult<(u32, u32)> {
    let row = sqlx::query(
        "select coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'rejected'), 0) from outbox
          where server_url = ? and tenant_id = ?",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id.to_string())
    .fetch_one(&store.pool)
    .await?;
    let n = |i: usize| u32::try_from(row.get::<i64, _>(i)).unwrap_or(u32::MAX);
    Ok((n(0), n(1)))
}

/// How many intents wait for `server` (any of its tenants), and how many it refused: while
/// signed out there is no scope, but they are still unsent.
pub async fn server_counts(store: &Store, server: &str) -> DeskResult<(u32, u32)> {
    let row = sqlx::query(
        "select coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'rejected'), 0) from outbox
          where server_url = ?",
    )
    .bind(server)
    .fetch_one(&store.pool)
    .await?;
    let n = |i: usize| u32::try_from(row.get::<i64, _>(i)).unwrap_or(u32::MAX);
    Ok((n(0), n(1)))
}

/// The scope's refused intents, for one ticket or all, oldest first.
pub async fn rejections(
    store: &Store,
    scope: &SyncScope,
    ticket: Option<TicketId>,
) -> DeskResult<Vec<Rejection>> {
    let rows = sqlx::query(
        "select seq, intent, code, message, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'rejected'
            and (?3 is null or (entity = 'ticket' and record_id = ?3))
          order by seq",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id.to_string())
    .bind(ticket.map(|t| t.to_string()))
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let intent = parse_intent(&r.get::<String, _>(1))?;
            Ok(Rejection {
                seq: r.get(0),
                ticket_id: intent_ticket(&intent),
                intent,
                code: ErrorCode::parse_lenient(
                    r.get::<Option<String>, _>(2).as_deref().unwrap_or_default(),
                ),
                message: r.get::<Option<String>, _>(3).unwrap_or_default(),
                made_at: from_micros(r.get(4)),
            })
        })
        .collect()
}

/// Forgets a refused intent once the person has seen it.
pub async fn dismiss(store: &Store, seq: i64) -> DeskResult<()> {
    sqlx::query("delete from outbox where seq = ? and state = 'rejected'")
        .bind(seq)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Rebuilds the local view of every ticket the outbox speaks of (and of `also`): the
/// server's copy from `sync_base`, then the scope's pending intents replayed over it in
/// order, checked as the server will check them. So the local view is always the server's
/// state plus my pending intents, and a refused intent leaves no trace but its rejection.
pub async fn replay(
    store: &Store,
    scope: &SyncScope,
    also: &[(String, String)],
    now: i64,
) -> DeskResult<()> {
    let mut tx = store.write().await?;
    upsert_user(&mut tx, &scope.user, now).await?;
    let mut records: BTreeSet<(String, String)> = also.iter().cloned().collect();
    records.extend(outbox_records(&mut tx, &scope.server_url, &scope.tenant_id.to_string()).await?);
    // Customers first: a restored ticket may name one.
    for (_, id) in records.iter().filter(|(e, _)| e == "customer") {
        restore_customer(&mut tx, id, now).await?;
    }
    for (_, id) in records.iter().filter(|(e, _)| e == "ticket") {
        restore_ticket(&mut tx, id, now).await?;
    }
    let rows = sqlx::query(
        "select seq, intent, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'pending' order by seq",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id.to_string())
    .fetch_all(&mut *tx)
    .await?;
    for row in rows {
        let intent = parse_intent(&row.get::<String, _>(1))?;
        replay_one(&mut tx, scope, &intent, row.get(2)).await?;
    }
    revert_refused(&mut tx, scope).await?;
    tx.commit().await?;
    Ok(())
}

/// The ticket and its thread as the server last sent them; a ticket the server never sent
/// becomes a tombstone until an intent makes it again.
async fn restore_ticket(tx: &mut Tx, id: &str, now: i64) -> DeskResult<()> {
    match base_record::<Ticket>(tx, Entity::Ticket, id).await? {
        Some(ticket) => {
            write_tickets(tx, std::slice::from_ref(&ticket), now).await?;
            write_threads(tx, &[id.to_owned()], now).await?;
            write_ticket_expenses(tx, &[id.to_owned()], now).await?;
        }
        None => tombstone_ticket(tx, id, now, false).await?,
    }
    for (table, entity) in [("comments", "comment"), ("activity", "activity")] {
        sqlx::query(&format!(
            "delete from {table} where ticket_id = ?
                and id not in (select id from sync_base where entity = '{entity}')"
        ))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The customer as the server last sent it; one the server never sent becomes a tombstone
/// until an intent makes it again.
async fn restore_customer(tx: &mut Tx, id: &str, now: i64) -> DeskResult<()> {
    match base_record::<Customer>(tx, Entity::Customer, id).await? {
        Some(customer) => write_customer(tx, &customer).await,
        None => remove(tx, "customer", id, now, false).await,
    }
}

/// The server's copy of a record, if it sent one.
async fn base_record<T: serde::de::DeserializeOwned>(
    tx: &mut Tx,
    entity: Entity,
    id: &str,
) -> DeskResult<Option<T>> {
    let data: Option<String> =
        sqlx::query_scalar("select data from sync_base where entity = ? and id = ?")
            .bind(entity_name(entity))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    data.map(|d| serde_json::from_str(&d).map_err(|e| bad_data(entity, &e)))
        .transpose()
}

/// A live ticket's requester, if the acting user may see the ticket.
pub(crate) async fn visible_requester(
    tx: &mut Tx,
    scope: &SyncScope,
    id: TicketId,
) -> DeskResult<Option<String>> {
    let requester: Option<String> =
        sqlx::query_scalar("select requester_id from tickets where id = ? and deleted_at is null")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    let me = scope.user.id.to_string();
    Ok(requester.filter(|r| access(scope.user.role, Action::ViewTicket).allows(*r == me)))
}

/// Applies one pending intent locally, with the checks the server applies to it: an intent
/// the server will refuse changes nothing here either.
async fn replay_one(tx: &mut Tx, scope: &SyncScope, intent: &Intent, at: i64) -> DeskResult<()> {
    let me = scope.user.id.to_string();
    let role = scope.user.role;
    match intent {
        Intent::TicketCreate(_) if access(role, Action::CreateTicket) == Access::Denied => {}
        Intent::TicketCreate(c)
            if c.assignee_id.is_some()
                && access(role, Action::CreateTicketForOthers) == Access::Denied => {}
        Intent::TicketUpdate(_) if access(role, Action::EditTicket) == Access::Denied => {}
        Intent::TicketCreate(c) => {
            let id = c.id.to_string();
            let live: Option<i64> =
                sqlx::query_scalar("select 1 from tickets where id = ? and deleted_at is null")
                    .bind(&id)
                    .fetch_optional(&mut **tx)
                    .await?;
            if live.is_some() {
                // The server has this ticket already: a create is applied once.
                return Ok(());
            }
            let exists = ticket_present(tx, &id).await?;
            let priority = c.priority.unwrap_or_default();
            let category = c.category.clone().unwrap_or_else(|| "general".to_owned());
            if exists {
                sqlx::query(
                    "update tickets set title = ?, description = ?, status = 'open', priority = ?,
                            category = ?, requester_id = ?, assignee_id = ?, customer_id = ?,
                            hold_reason = null, resolved_at = null, closed_at = null,
                            version = 1, deleted_at = null
                      where id = ?",
                )
                .bind(&c.title)
                .bind(&c.description)
                .bind(priority.as_str())
                .bind(&category)
                .bind(&me)
                .bind(c.assignee_id.map(|a| a.to_string()))
                .bind(c.customer_id.map(|a| a.to_string()))
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            } else {
                sqlx::query(
                    "insert into tickets (id, number, title, description, priority, category,
                                          requester_id, assignee_id, customer_id, created_at, updated_at)
                     values (?, (select coalesce(max(number), 0) + 1 from tickets), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(&c.title)
                .bind(&c.description)
                .bind(priority.as_str())
                .bind(&category)
                .bind(&me)
                .bind(c.assignee_id.map(|a| a.to_string()))
                .bind(c.customer_id.map(|a| a.to_string()))
                .bind(at)
                .bind(at)
                .execute(&mut **tx)
                .await?;
            }
        }
        Intent::TicketUpdate(u) => {
            if visible_requester(tx, scope, u.id).await?.is_none() {
                return Ok(());
            }
            let id = u.id.to_string();
            if let Some(title) = &u.title {
                set_field(tx, "title", Some(title.clone()), at, &id).await?;
            }
            if let Some(description) = &u.description {
                set_field(tx, "description", Some(description.clone()), at, &id).await?;
            }
            if let Some(priority) = u.priority {
                set_field(tx, "priority", Some(priority.as_str().to_owned()), at, &id).await?;
            }
            if let Some(category) = &u.category {
                set_field(tx, "category", Some(category.clone()), at, &id).await?;
            }
            if let Some(assignee) = u.assignee_id {
                set_field(tx, "assignee_id", assignee.map(|a| a.to_string()), at, &id).await?;
            }
            if let Some(customer) = u.customer_id {
                set_field(tx, "customer_id", customer.map(|c| c.to_string()), at, &id).await?;
            }
        }
        Intent::TicketTransition(t) => {
            if visible_requester(tx, scope, t.id).await?.is_none() {
                return Ok(());
            }
            let row = sqlx::query(
                "select status, requester_id, resolved_at from tickets where id = ? and deleted_at is null",
            )
            .bind(t.id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else { return Ok(()) };
            let from: Status = parse_text(&row.get::<String, _>(0), "status")?;
            let mover = Mover {
                role: scope.user.role,
                is_requester: row.get::<String, _>(1) == me,
            };
            // Re-checked as the server will: an illegal move now is left out here and
            // rejected there.
            let Ok(moved) = workflow::transition(mover, from, t.to, t.reason.as_deref()) else {
                return Ok(());
            };
            let resolved_at: Option<i64> = match moved.to {
                Status::Resolved => Some(at),
                Status::Closed => row.get(2),
                _ => None,
            };
            sqlx::query(
                "update tickets set status = ?, hold_reason = ?, resolved_at = ?, closed_at = ?,
                        updated_at = max(updated_at, ?)
                  where id = ?",
            )
            .bind(moved.to.as_str())
            .bind(moved.hold_reason.as_ref().map(|r| r.as_str().to_owned()))
            .bind(resolved_at)
            .bind((moved.to == Status::Closed).then_some(at))
            .bind(at)
            .bind(t.id.to_string())
            .execute(&mut **tx)
            .await?;
        }
        Intent::CommentCreate(c) => {
            let Some(requester) = visible_requester(tx, scope, c.ticket_id).await? else {
                return Ok(());
            };
            let action = if c.internal {
                Action::CommentInternal
            } else {
                Action::CommentPublic
            };
            if !access(role, action).allows(requester == me) {
                return Ok(());
            }
            sqlx::query(
                "insert or ignore into comments (id, ticket_id, author_id, body, internal, created_at)
                 values (?, ?, ?, ?, ?, ?)",
            )
            .bind(c.id.to_string())
            .bind(c.ticket_id.to_string())
            .bind(&me)
            .bind(&c.body)
            .bind(c.internal)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Intent::ExpenseCreate(e) => replay_create(tx, scope, e, at).await?,
        Intent::ExpenseDecide(d) => replay_decide(tx, scope, d, at).await?,
        Intent::TicketDelete(d) => {
            if access(role, Action::DeleteTicket) != Access::Denied {
                tombstone_ticket(tx, &d.id.to_string(), at, false).await?;
            }
        }
        Intent::CustomerCreate(_) | Intent::CustomerUpdate(_)
            if access(role, Action::EditCustomers) == Access::Denied => {}
        Intent::CustomerCreate(c) => {
            sqlx::query(
                "insert into customers (id, name, email, phone, company, notes, created_at,
                                        updated_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 on conflict (id) do update set name = excluded.name, email = excluded.email,
                        phone = excluded.phone, company = excluded.company,
                        notes = excluded.notes, deleted_at = null
                  where customers.deleted_at is not null",
            )
            .bind(c.id.to_string())
            .bind(&c.name)
            .bind(&c.email)
            .bind(&c.phone)
            .bind(&c.company)
            .bind(&c.notes)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Intent::CustomerUpdate(u) => {
            let id = u.id.to_string();
            let fields = [
                ("name", u.name.clone().map(Some)),
                ("email", u.email.clone()),
                ("phone", u.phone.clone()),
                ("company", u.company.clone()),
                ("notes", u.notes.clone()),
            ];
            for (column, value) in fields {
                let Some(value) = value else { continue };
                sqlx::query(&format!(
                    "update customers set {column} = ?, updated_at = max(updated_at, ?)
                      where id = ? and deleted_at is null"
                ))
                .bind(value)
                .bind(at)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            }
        }
        Intent::CustomerDelete(d) => {
            if access(role, Action::DeleteCustomer) != Access::Denied {
                let id = d.id.to_string();
                for statement in [
                    "update customers set deleted_at = coalesce(deleted_at, ?2) where id = ?1",
                    "update tickets set customer_id = null where customer_id = ?1",
                ] {
                    sqlx::query(statement)
                        .bind(&id)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

/// Sets one column of a live ticket, as a replayed update does.
async fn set_field(
    tx: &mut Tx,
    column: &'static str,
    value: Option<String>,
    at: i64,
    id: &str,
) -> DeskResult<()> {
    sqlx::query(&format!(
        "update tickets set {column} = ?, updated_at = max(updated_at, ?)
          where id = ? and deleted_at is null"
    ))
    .bind(value)
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
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
