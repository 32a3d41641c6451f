//! Applying pulled pages: the server's records written as it sent them, each kept as the
//! server's copy in `sync_base`.

use std::collections::BTreeSet;

use serde_json::Value;
use tallydesk_shared::api::{Activity, Comment, Customer, Expense, Member, Ticket};
use tallydesk_shared::sla::{CalendarRecord, Policy};
use tallydesk_shared::sync::{Change, ChangeOp, Cursor, Entity};

use super::{Tx, bad_data, entity_name, remove, upsert_user};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::store::Store;
use crate::sync::expenses::{write_expenses, write_ticket_expenses};
use crate::sync::settings::{write_calendars, write_policies};
use crate::time::to_micros;

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
pub(super) async fn write_tickets(tx: &mut Tx, tickets: &[Ticket], now: i64) -> DeskResult<()> {
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
        .bind(t.id)
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
pub(super) async fn write_threads(tx: &mut Tx, tickets: &[String], now: i64) -> DeskResult<()> {
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

pub(super) async fn write_customer(tx: &mut Tx, c: &Customer) -> DeskResult<()> {
    sqlx::query(
        "insert into customers (id, name, email, phone, company, notes, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?)
         on conflict (id) do update set name = excluded.name, email = excluded.email,
                phone = excluded.phone, company = excluded.company, notes = excluded.notes,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                deleted_at = null",
    )
    .bind(c.id)
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
