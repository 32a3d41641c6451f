//! Replaying pending intents over the server's state, through the same write path as the
//! desk's commands: the local view is the server's state plus my pending intents.

use std::collections::BTreeSet;

use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{Customer, Ticket};
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::{Entity, Intent};
use tallydesk_shared::{Action, TicketId};

use super::apply::{write_customer, write_threads, write_tickets};
use super::outbox::QueuedDb;
use super::{Tx, bad_data, entity_name, outbox_records, remove, tombstone_ticket, upsert_user};
use crate::desk::{Actor, comments, customers, ticket};
use crate::error::{DeskResult, ErrorCode};
use crate::store::Store;
use crate::sync::SyncScope;
use crate::sync::expenses::{replay_create, replay_decide, revert_refused, write_ticket_expenses};
use crate::time::from_micros;

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
    let rows = sqlx::query_as::<_, QueuedDb>(
        "select seq, intent, created_at from outbox
          where server_url = ? and tenant_id = ? and state = 'pending' order by seq",
    )
    .bind(&scope.server_url)
    .bind(scope.tenant_id)
    .fetch_all(&mut *tx)
    .await?;
    for row in rows {
        let queued = row.into_queued()?;
        replay_one(&mut tx, scope, &queued.intent, queued.created_at).await?;
    }
    revert_refused(&mut tx, scope).await?;
    tx.commit().await?;
    Ok(())
}

/// The ticket and its thread as the server last sent them; a ticket the server never sent
/// becomes a tombstone until an intent makes it again. Local comments and activity go: the
/// replayed intents write theirs again.
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
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let me = scope.user.id.to_string();
    Ok(requester.filter(|r| access(scope.user.role, Action::ViewTicket).allows(*r == me)))
}

/// Applies one pending intent locally through the desk's write path, as its author, with
/// the checks the server applies to it: an intent the server will refuse changes nothing
/// here either.
async fn replay_one(tx: &mut Tx, scope: &SyncScope, intent: &Intent, at: i64) -> DeskResult<()> {
    match intent {
        Intent::ExpenseCreate(e) => return replay_create(tx, scope, e, at).await,
        Intent::ExpenseDecide(d) => return replay_decide(tx, scope, d, at).await,
        _ => {}
    }
    let actor = Actor::from(&scope.user);
    let at = from_micros(at);
    // Each intent in a savepoint, so a refusal leaves nothing behind.
    let mut step = sqlx::Connection::begin(&mut **tx).await?;
    let written = match intent {
        Intent::TicketCreate(c) => ticket::create(&mut step, actor, c, None, at)
            .await
            .map(drop),
        Intent::TicketUpdate(u) => ticket::update(&mut step, actor, u.id, &u.patch(), at)
            .await
            .map(drop),
        Intent::TicketTransition(t) => ticket::transition(
            &mut step,
            actor,
            t.id,
            t.to,
            t.reason.as_deref(),
            ActivityAction::TicketTransitioned,
            at,
        )
        .await
        .map(drop),
        Intent::TicketDelete(d) => ticket::delete(&mut step, actor, d.id, at).await,
        Intent::CommentCreate(c) => comments::add(&mut step, actor, c, at).await.map(drop),
        Intent::CustomerCreate(c) => customers::create(&mut step, actor, c, at).await.map(drop),
        Intent::CustomerUpdate(u) => customers::update(&mut step, actor, u, at).await.map(drop),
        Intent::CustomerDelete(d) => customers::delete(&mut step, actor, d.id, at).await,
        Intent::ExpenseCreate(_) | Intent::ExpenseDecide(_) => unreachable!("replayed above"),
    };
    match written {
        Ok(()) => step.commit().await?,
        // Refused (forbidden, not found, invalid, an illegal move): left out here, as the
        // server will refuse it; its rejection will say why.
        Err(e) if e.code != ErrorCode::Internal => step.rollback().await?,
        Err(e) => return Err(e),
    }
    Ok(())
}
