//! The outbox: intents queued in the transaction of the write that made them, pushed in
//! order, and settled with the server's answers.

use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::TicketId;
use tallydesk_shared::sync::{ClientId, Intent, Mutation, MutationResult, MutationStatus};

use crate::desk::parse_id;
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::store::Store;
use crate::sync::{Rejection, SyncScope};
use crate::time::from_micros;

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
    .bind(scope.tenant_id)
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

/// One queued intent.
#[derive(Clone, Debug)]
pub struct Queued {
    pub seq: i64,
    pub intent: Intent,
    pub created_at: i64,
}

pub(super) fn parse_intent(text: &str) -> DeskResult<Intent> {
    serde_json::from_str(text).map_err(|e| {
        DeskError::new(
            ErrorCode::Internal,
            format!("bad intent in the local outbox: {e}"),
        )
    })
}

/// The scope's pending intents in order, at most `limit`.
pub async fn pending(store: &Store, scope: &SyncScope, limit: i64) -> DeskResult<Vec<Queued>> {
    let rows = sqlx::query_as::<_, QueuedDb>(
        "select seq, intent, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'pending' order by seq limit ?",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.into_iter().map(QueuedDb::into_queued).collect()
}

/// A row of the outbox, as [`Queued`] before its intent is parsed.
#[derive(FromRow)]
pub(super) struct QueuedDb {
    seq: i64,
    intent: String,
    created_at: i64,
}

impl QueuedDb {
    pub(super) fn into_queued(self) -> DeskResult<Queued> {
        Ok(Queued {
            seq: self.seq,
            intent: parse_intent(&self.intent)?,
            created_at: self.created_at,
        })
    }
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
        let record: Option<(String, String)> = sqlx::query_as(
            "select entity, record_id from outbox where seq = ? and state = 'pending'",
        )
        .bind(result.seq)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(record) = record else { continue };
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
    let (pending, rejected): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'rejected'), 0) from outbox
          where server_url = ? and tenant_id = ?",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id)
    .fetch_one(&store.pool)
    .await?;
    Ok((count(pending), count(rejected)))
}

/// How many intents wait for `server` (any of its tenants), and how many it refused: while
/// signed out there is no scope, but they are still unsent.
pub async fn server_counts(store: &Store, server: &str) -> DeskResult<(u32, u32)> {
    let (pending, rejected): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'rejected'), 0) from outbox
          where server_url = ?",
    )
    .bind(server)
    .fetch_one(&store.pool)
    .await?;
    Ok((count(pending), count(rejected)))
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The scope's refused intents, for one ticket or all, oldest first.
pub async fn rejections(
    store: &Store,
    scope: &SyncScope,
    ticket: Option<TicketId>,
) -> DeskResult<Vec<Rejection>> {
    let rows = sqlx::query_as::<_, RejectionDb>(
        "select seq, intent, code, message, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'rejected'
            and (?3 is null or (entity = 'ticket' and record_id = ?3))
          order by seq",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id)
    .bind(ticket)
    .fetch_all(&store.pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let intent = parse_intent(&r.intent)?;
            Ok(Rejection {
                seq: r.seq,
                ticket_id: intent_ticket(&intent),
                intent,
                code: ErrorCode::parse_lenient(r.code.as_deref().unwrap_or_default()),
                message: r.message.unwrap_or_default(),
                made_at: from_micros(r.created_at),
            })
        })
        .collect()
}

/// A refused row of the outbox.
#[derive(FromRow)]
struct RejectionDb {
    seq: i64,
    intent: String,
    code: Option<String>,
    message: Option<String>,
    created_at: i64,
}

/// Forgets a refused intent once the person has seen it.
pub async fn dismiss(store: &Store, seq: i64) -> DeskResult<()> {
    sqlx::query("delete from outbox where seq = ? and state = 'rejected'")
        .bind(seq)
        .execute(&store.pool)
        .await?;
    Ok(())
}
