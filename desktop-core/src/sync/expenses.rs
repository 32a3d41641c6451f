//! Expenses in sync: the server's expenses written to the local table, pending submissions and
//! decisions replayed over them, refused submissions turned back into drafts, and receipt
//! images carried both ways through the server's blob store.

use std::collections::BTreeSet;

use serde_json::Value;
use tallydesk_shared::Action;
use tallydesk_shared::api::Expense;
use tallydesk_shared::expense::ExpenseStatus;
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::{Entity, ExpenseCreate, ExpenseDecide, Intent};

use super::store::{Tx, bad_data, json_list, known_users, visible_requester};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::receipts::{image_path, images_dir, store_image};
use crate::store::Store;
use crate::sync::SyncScope;
use crate::time::to_micros;

/// How many missing receipt images one sync fetches; the rest come with the next ones.
pub const RECEIPTS_PER_SYNC: i64 = 50;

/// Writes expenses as the server sent them, for the claim tickets that are here (the others
/// wait in `sync_base` for their ticket). What was read from a receipt scanned here, and its
/// image, stay.
pub(crate) async fn write_expenses(tx: &mut Tx, expenses: &[Expense], now: i64) -> DeskResult<()> {
    if expenses.is_empty() {
        return Ok(());
    }
    let people: BTreeSet<String> = expenses
        .iter()
        .flat_map(|e| [Some(e.submitted_by), e.decided_by])
        .flatten()
        .map(|u| u.to_string())
        .collect();
    known_users(tx, &people, now).await?;
    let rows: Vec<Value> = expenses
        .iter()
        .map(|e| {
            serde_json::json!([
                e.id.to_string(),
                e.submitted_by.to_string(),
                e.ticket_id.to_string(),
                e.status.as_str(),
                e.merchant,
                e.spent_on.to_string(),
                e.currency,
                e.amount_minor,
                e.subtotal_minor,
                e.tax_minor,
                e.category,
                Value::Array(
                    e.items
                        .iter()
                        .map(|i| serde_json::json!({
                            "description": i.description,
                            "quantity": i.quantity,
                            "amount_minor": i.amount_minor,
                        }))
                        .collect()
                )
                .to_string(),
                e.note,
                e.receipt.as_ref().map(|r| r.sha256.clone()),
                e.decided_by.map(|u| u.to_string()),
                e.decided_at.map(to_micros),
                e.reason,
                to_micros(e.created_at),
                to_micros(e.updated_at),
                to_micros(e.submitted_at),
                e.version,
            ])
        })
        .collect();
    sqlx::query(
        "insert into expenses (id, requester_id, ticket_id, status, merchant, spent_on, currency,
                               amount_minor, subtotal_minor, tax_minor, category, items, note,
                               image_sha256, decided_by, decided_at, decision_note, created_at,
                               updated_at, submitted_at, version)
         select j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9,
                j.value ->> 10, j.value ->> 11, j.value ->> 12,
                (select r.sha256 from receipt_images r where r.sha256 = j.value ->> 13),
                j.value ->> 14, j.value ->> 15, j.value ->> 16, j.value ->> 17, j.value ->> 18,
                j.value ->> 19, j.value ->> 20
           from json_each(?1) as j
          where exists (select 1 from tickets t where t.id = j.value ->> 2)
         on conflict (id) do update set requester_id = excluded.requester_id,
                ticket_id = excluded.ticket_id, status = excluded.status,
                merchant = excluded.merchant, spent_on = excluded.spent_on,
                currency = excluded.currency, amount_minor = excluded.amount_minor,
                subtotal_minor = excluded.subtotal_minor, tax_minor = excluded.tax_minor,
                category = excluded.category, items = excluded.items, note = excluded.note,
                image_sha256 = coalesce(excluded.image_sha256, expenses.image_sha256),
                decided_by = excluded.decided_by, decided_at = excluded.decided_at,
                decision_note = excluded.decision_note, created_at = excluded.created_at,
                updated_at = excluded.updated_at, submitted_at = excluded.submitted_at,
                version = excluded.version, deleted_at = null",
    )
    .bind(Value::Array(rows).to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The expenses the server sent for these tickets, written again: those that came before
/// their ticket, and those a replayed decision changed.
pub(crate) async fn write_ticket_expenses(
    tx: &mut Tx,
    tickets: &[String],
    now: i64,
) -> DeskResult<()> {
    let rows: Vec<String> = sqlx::query_scalar(
        "select data from sync_base where entity = 'expense'
            and data ->> '$.ticket_id' in (select j.value from json_each(?1) as j)",
    )
    .bind(json_list(tickets))
    .fetch_all(&mut **tx)
    .await?;
    let expenses = rows
        .iter()
        .map(|data| serde_json::from_str(data).map_err(|e| bad_data(Entity::Expense, &e)))
        .collect::<DeskResult<Vec<Expense>>>()?;
    write_expenses(tx, &expenses, now).await
}

/// The local view of a pending submission: the row `submit_expense` made, made again from
/// the intent when it is gone (the scope was left and entered again).
pub(crate) async fn replay_create(
    tx: &mut Tx,
    scope: &SyncScope,
    e: &ExpenseCreate,
    at: i64,
) -> DeskResult<()> {
    let Some(requester) = visible_requester(tx, scope, e.ticket_id).await? else {
        return Ok(());
    };
    let me = scope.user.id.to_string();
    if !access(scope.user.role, Action::SubmitExpense).allows(requester == me) {
        return Ok(());
    }
    let items = Value::Array(
        e.items
            .iter()
            .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
            .collect(),
    );
    sqlx::query(
        "insert into expenses (id, requester_id, ticket_id, status, merchant, spent_on, currency,
                               amount_minor, subtotal_minor, tax_minor, category, items, note,
                               image_sha256, created_at, updated_at, submitted_at)
         values (?1, ?2, ?3, 'submitted', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                 (select sha256 from receipt_images where sha256 = ?13), ?14, ?14, ?14)
         on conflict (id) do update set status = 'submitted', ticket_id = excluded.ticket_id,
                submitted_at = coalesce(expenses.submitted_at, excluded.submitted_at),
                deleted_at = null
          where expenses.status in ('draft', 'submitted')",
    )
    .bind(e.id)
    .bind(&me)
    .bind(e.ticket_id)
    .bind(&e.merchant)
    .bind(e.spent_on.to_string())
    .bind(&e.currency)
    .bind(e.amount_minor)
    .bind(e.subtotal_minor)
    .bind(e.tax_minor)
    .bind(e.category.as_deref().unwrap_or("other"))
    .bind(items.to_string())
    .bind(&e.note)
    .bind(e.receipt.as_ref().map(|r| r.sha256.clone()))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The local view of a pending decision, checked as the server will check it: only a
/// submitted expense is decided, only by an approver who did not submit it; and a first
/// approval of two (as the server's copy says) leaves it submitted.
pub(crate) async fn replay_decide(
    tx: &mut Tx,
    scope: &SyncScope,
    d: &ExpenseDecide,
    at: i64,
) -> DeskResult<()> {
    if visible_requester(tx, scope, d.ticket_id).await?.is_none()
        || !access(scope.user.role, Action::DecideExpense).allows(false)
    {
        return Ok(());
    }
    let status = if d.approve {
        ExpenseStatus::Approved
    } else {
        ExpenseStatus::Rejected
    };
    sqlx::query(
        "update expenses set status = ?1, decided_by = ?2, decided_at = ?3, decision_note = ?4,
                updated_at = max(updated_at, ?3)
          where id = ?5 and status = 'submitted' and deleted_at is null and requester_id <> ?2
            and (?1 = 'rejected' or not exists (
                   select 1 from sync_base b
                    where b.entity = 'expense' and b.id = ?5
                      and coalesce(json_array_length(b.data, '$.approvals'), 0) + 1
                          < coalesce(b.data ->> '$.approvals_required', 1)))",
    )
    .bind(status.as_str())
    .bind(scope.user.id)
    .bind(at)
    .bind(&d.reason)
    .bind(d.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A submission the server refused goes back to being a draft, so nothing typed is lost:
/// the person corrects it (or picks another claim) and submits it again.
pub(crate) async fn revert_refused(tx: &mut Tx, scope: &SyncScope) -> DeskResult<()> {
    let refused: Vec<String> = sqlx::query_scalar(
        "select intent from outbox
          where server_url = ? and tenant_id = ? and state = 'rejected'
            and intent ->> '$.op' = 'expense.create'",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    for text in refused {
        let Ok(Intent::ExpenseCreate(e)) = serde_json::from_str::<Intent>(&text) else {
            continue;
        };
        sqlx::query(
            "update expenses set status = 'draft', submitted_at = null
              where id = ? and status = 'submitted' and requester_id = ?
                and id not in (select id from sync_base where entity = 'expense')",
        )
        .bind(e.id)
        .bind(scope.user.id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The receipt images of the server's expenses that are not here yet, at most `limit`:
/// `(sha256, media_type)`.
pub async fn missing_receipts(store: &Store, limit: i64) -> DeskResult<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select distinct b.data ->> '$.receipt.sha256', b.data ->> '$.receipt.media_type'
           from sync_base b join expenses e on e.id = b.id
          where b.entity = 'expense' and b.data ->> '$.receipt.sha256' is not null
            and e.image_sha256 is null and e.deleted_at is null
          limit ?",
    )
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows)
}

/// Keeps a receipt image fetched from the server and points its expenses at it. Bytes that
/// are not what the hash names are refused; an image this app cannot decode is kept with no
/// size (the webview may still show it).
pub async fn keep_receipt(
    store: &Store,
    sha256: &str,
    media_type: &str,
    bytes: Vec<u8>,
    now: i64,
) -> DeskResult<()> {
    if crate::receipts::sha256_hex(&bytes) != sha256 {
        return Err(DeskError::new(
            ErrorCode::NotATallydeskServer,
            format!("the server sent other bytes for receipt image {sha256}"),
        ));
    }
    let decoded = tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || tallydesk_ocr::image_input::decode_image(&bytes).map(|i| i.dimensions())
    })
    .await;
    let (width, height) = decoded.ok().and_then(Result::ok).unwrap_or((0, 0));
    store_image(&images_dir(store), sha256, &bytes)?;
    let mut tx = store.write().await?;
    sqlx::query(
        "insert into receipt_images (sha256, media_type, byte_size, width, height, created_at)
         values (?, ?, ?, ?, ?, ?) on conflict (sha256) do nothing",
    )
    .bind(sha256)
    .bind(media_type)
    .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
    .bind(width)
    .bind(height)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update expenses set image_sha256 = ?1
          where image_sha256 is null
            and id in (select id from sync_base
                        where entity = 'expense' and data ->> '$.receipt.sha256' = ?1)",
    )
    .bind(sha256)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The bytes of a receipt image kept here, to upload before the submission naming it.
pub async fn receipt_bytes(store: &Store, sha256: &str) -> Option<Vec<u8>> {
    let path = image_path(&images_dir(store), sha256)?;
    tokio::fs::read(path).await.ok()
}
