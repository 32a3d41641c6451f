//! One ticket: reading it, and the one write path of each change to it (create, edit, move,
//! delete), which commands and replayed intents share.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{CreateTicket, PatchTicket, Ticket};
use tallydesk_shared::sync::{Intent, TicketCreate, TicketDelete, TicketTransition, TicketUpdate};
use tallydesk_shared::ticket::{
    self, Category, FieldChange, TicketDescription, TicketEdit, TicketTitle,
};
use tallydesk_shared::workflow::{self, Mover};
use tallydesk_shared::{Action, CustomerId, Role, Status, TicketId, UserId};

use super::{Actor, Desk, parse_text, record};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::TicketDetail;
use crate::time::{from_micros, opt_from_micros, to_micros};

impl Desk {
    /// The ticket, if it is live and the user may see it.
    pub(super) async fn load(&self, id: TicketId) -> DeskResult<Ticket> {
        fetch(&self.store.pool, self.actor(), id).await
    }

    fn mover(&self, ticket: &Ticket) -> Mover {
        Mover {
            role: self.role(),
            is_requester: ticket.requester_id == self.me_id(),
        }
    }

    pub async fn ticket(&self, id: TicketId) -> DeskResult<TicketDetail> {
        let ticket = self.load(id).await?;
        let names: Names = sqlx::query_as(
            "select r.name as requester_name, a.name as assignee_name, c.name as customer_name
               from tickets t
               join users r on r.id = t.requester_id
               left join users a on a.id = t.assignee_id
               left join customers c on c.id = t.customer_id and c.deleted_at is null
              where t.id = ?",
        )
        .bind(id)
        .fetch_one(&self.store.pool)
        .await?;
        Ok(TicketDetail {
            allowed_moves: workflow::allowed_moves(self.mover(&ticket), ticket.status),
            ticket,
            requester_name: names.requester_name,
            assignee_name: names.assignee_name,
            customer_name: names.customer_name,
            sla: self.ticket_sla(id).await?,
        })
    }

    pub async fn create_ticket(&self, input: &CreateTicket) -> DeskResult<Ticket> {
        let mut tx = self.write().await?;
        let id = self.insert_ticket(&mut tx, input).await?;
        tx.commit().await?;
        self.written();
        self.load(id).await
    }

    /// Creates a ticket inside `tx`, for operations that make one along with something else.
    pub(crate) async fn insert_ticket(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        input: &CreateTicket,
    ) -> DeskResult<TicketId> {
        let intent = TicketCreate {
            id: TicketId::new(),
            title: input.title.clone(),
            description: input.description.clone(),
            priority: input.priority,
            category: input.category.clone(),
            customer_id: input.customer_id,
            assignee_id: input.assignee_id,
        };
        let intent = create(tx, self.actor(), &intent, input.requester_id, self.now()).await?;
        let id = intent.id;
        self.enqueue(tx, Intent::TicketCreate(intent)).await?;
        Ok(id)
    }

    pub async fn update_ticket(&self, id: TicketId, patch: &PatchTicket) -> DeskResult<Ticket> {
        self.require(Action::EditTicket)?;
        let current = self.load(id).await?;
        if let Some(version) = patch.version.filter(|v| *v != current.version) {
            return Err(DeskError::new(
                ErrorCode::StaleVersion,
                format!(
                    "the ticket changed since you opened it (version {version}, now {}); reload it",
                    current.version
                ),
            ));
        }
        let mut tx = self.write().await?;
        let Some(changed) = update(&mut tx, self.actor(), id, patch, self.now()).await? else {
            return Ok(current);
        };
        self.enqueue(&mut tx, Intent::TicketUpdate(changed)).await?;
        tx.commit().await?;
        self.written();
        self.load(id).await
    }

    pub async fn transition(
        &self,
        id: TicketId,
        to: Status,
        reason: Option<&str>,
    ) -> DeskResult<Ticket> {
        self.move_ticket(id, to, reason, ActivityAction::TicketTransitioned)
            .await?;
        self.load(id).await
    }

    /// Opening a ticket: an agent or admin opening an `open` ticket starts work on it.
    pub async fn view_ticket(&self, id: TicketId) -> DeskResult<TicketDetail> {
        let ticket = self.load(id).await?;
        if let Some(to) = workflow::on_view(self.role(), ticket.status) {
            self.move_ticket(id, to, None, ActivityAction::TicketViewed)
                .await?;
        }
        self.ticket(id).await
    }

    async fn move_ticket(
        &self,
        id: TicketId,
        to: Status,
        reason: Option<&str>,
        action: ActivityAction,
    ) -> DeskResult<()> {
        let mut tx = self.write().await?;
        let moved = transition(&mut tx, self.actor(), id, to, reason, action, self.now()).await?;
        self.enqueue(&mut tx, Intent::TicketTransition(moved))
            .await?;
        tx.commit().await?;
        self.written();
        Ok(())
    }

    pub async fn delete_ticket(&self, id: TicketId) -> DeskResult<()> {
        self.require(Action::DeleteTicket)?;
        self.load(id).await?;
        let mut tx = self.write().await?;
        delete(&mut tx, self.actor(), id, self.now()).await?;
        self.enqueue(&mut tx, Intent::TicketDelete(TicketDelete { id }))
            .await?;
        tx.commit().await?;
        self.written();
        Ok(())
    }
}

/// A live ticket `actor` may see; any other is not found.
pub(crate) async fn fetch<'e>(
    db: impl sqlx::Executor<'e, Database = Sqlite>,
    actor: Actor,
    id: TicketId,
) -> DeskResult<Ticket> {
    let ticket =
        sqlx::query_as::<_, TicketDb>("select * from tickets where id = ? and deleted_at is null")
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| DeskError::not_found("ticket"))?
            .into_ticket()?;
    if !actor.may(Action::ViewTicket, ticket.requester_id == actor.id) {
        return Err(DeskError::not_found("ticket"));
    }
    Ok(ticket)
}

/// Creates the ticket `c` describes, filed by `actor` (or for `requester`), with the checks
/// the server makes; a ticket that is here already is left as it is (a create is applied
/// once), one removed meanwhile comes back. Returns the create as checked, for the outbox.
pub(crate) async fn create(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    c: &TicketCreate,
    requester: Option<UserId>,
    at: DateTime<Utc>,
) -> DeskResult<TicketCreate> {
    actor.require(Action::CreateTicket)?;
    let title = TicketTitle::parse(&c.title)?;
    let description = TicketDescription::parse(&c.description)?;
    let category = match c.category.as_deref() {
        Some(c) => Category::parse_allowed(c, &Category::DEFAULTS)?,
        None => Category::general(),
    };
    if c.assignee_id.is_some() || requester.is_some() {
        actor.require(Action::CreateTicketForOthers)?;
    }
    if let Some(assignee) = c.assignee_id {
        check_assignee(tx, assignee).await?;
    }
    if let Some(customer) = c.customer_id {
        check_customer(tx, customer).await?;
    }
    let priority = c.priority.unwrap_or_default();
    let checked = TicketCreate {
        id: c.id,
        title: title.into_inner(),
        description: description.into_inner(),
        priority: Some(priority),
        category: Some(category.as_str().to_owned()),
        customer_id: c.customer_id,
        assignee_id: c.assignee_id,
    };
    let requester = requester.unwrap_or(actor.id);
    let live: Option<i64> =
        sqlx::query_scalar("select deleted_at is null from tickets where id = ?")
            .bind(c.id)
            .fetch_optional(&mut **tx)
            .await?;
    match live {
        // Here and live: the server has it already.
        Some(1) => return Ok(checked),
        Some(_) => {
            sqlx::query(
                "update tickets set title = ?, description = ?, status = 'open', priority = ?,
                        category = ?, requester_id = ?, assignee_id = ?, customer_id = ?,
                        hold_reason = null, resolved_at = null, closed_at = null,
                        version = 1, deleted_at = null
                  where id = ?",
            )
            .bind(&checked.title)
            .bind(&checked.description)
            .bind(priority.as_str())
            .bind(category.as_str())
            .bind(requester)
            .bind(c.assignee_id)
            .bind(c.customer_id)
            .bind(c.id)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "insert into tickets (id, number, title, description, priority, category,
                                      requester_id, assignee_id, customer_id, created_at, updated_at)
                 values (?1, (select coalesce(max(number), 0) + 1 from tickets), ?2, ?3, ?4, ?5,
                         ?6, ?7, ?8, ?9, ?9)",
            )
            .bind(c.id)
            .bind(&checked.title)
            .bind(&checked.description)
            .bind(priority.as_str())
            .bind(category.as_str())
            .bind(requester)
            .bind(c.assignee_id)
            .bind(c.customer_id)
            .bind(to_micros(at))
            .execute(&mut **tx)
            .await?;
        }
    }
    let number: i64 = sqlx::query_scalar("select number from tickets where id = ?")
        .bind(c.id)
        .fetch_one(&mut **tx)
        .await?;
    record(
        tx,
        Some(c.id),
        actor.id,
        ActivityAction::TicketCreated,
        None,
        None,
        Some(json!({
            "number": number,
            "title": checked.title,
            "priority": priority,
            "category": category.as_str(),
        })),
        false,
        at,
    )
    .await?;
    Ok(checked)
}

/// Sets the fields `patch` gives on a ticket `actor` may see, with the checks the server
/// makes (its version is the caller's to check). Returns the fields that changed, for the
/// outbox; `None` when none did, and nothing is written.
pub(crate) async fn update(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    id: TicketId,
    patch: &PatchTicket,
    at: DateTime<Utc>,
) -> DeskResult<Option<TicketUpdate>> {
    actor.require(Action::EditTicket)?;
    let current = fetch(&mut **tx, actor, id).await?;
    let edit = TicketEdit::parse(patch, &Category::DEFAULTS)?;
    if let Some(Some(assignee)) = edit.assignee_id {
        check_assignee(tx, assignee).await?;
    }
    if let Some(Some(customer)) = edit.customer_id {
        check_customer(tx, customer).await?;
    }
    let after = edit.apply(&current);
    let changes = ticket::changes(&current, &after);
    if changes.is_empty() {
        return Ok(None);
    }
    sqlx::query(
        "update tickets set title = ?, description = ?, priority = ?, category = ?, assignee_id = ?,
                customer_id = ?, updated_at = max(updated_at, ?), version = version + 1
          where id = ?",
    )
    .bind(&after.title)
    .bind(&after.description)
    .bind(after.priority.as_str())
    .bind(&after.category)
    .bind(after.assignee_id)
    .bind(after.customer_id)
    .bind(to_micros(at))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let intent = TicketUpdate::between(&current, &after);
    for FieldChange {
        field,
        before,
        after,
    } in changes
    {
        record(
            tx,
            Some(id),
            actor.id,
            ActivityAction::TicketUpdated,
            Some(field),
            Some(json!({ field: before })),
            Some(json!({ field: after })),
            false,
            at,
        )
        .await?;
    }
    Ok(Some(intent))
}

/// Moves a ticket `actor` may see to `to`, if the workflow lets them from where it is now.
/// Returns the move, for the outbox.
pub(crate) async fn transition(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    id: TicketId,
    to: Status,
    reason: Option<&str>,
    action: ActivityAction,
    at: DateTime<Utc>,
) -> DeskResult<TicketTransition> {
    let ticket = fetch(&mut **tx, actor, id).await?;
    let mover = Mover {
        role: actor.role,
        is_requester: ticket.requester_id == actor.id,
    };
    let t = workflow::transition(mover, ticket.status, to, reason)?;
    let resolved_at = match t.to {
        Status::Resolved => Some(at),
        Status::Closed => ticket.resolved_at,
        _ => None,
    };
    let closed_at = (t.to == Status::Closed).then_some(at);
    let reason = t.hold_reason.as_ref().map(|r| r.as_str().to_owned());
    let updated = sqlx::query(
        "update tickets set status = ?, hold_reason = ?, resolved_at = ?, closed_at = ?,
                updated_at = max(updated_at, ?), version = version + 1
          where id = ? and status = ?",
    )
    .bind(t.to.as_str())
    .bind(&reason)
    .bind(resolved_at.map(to_micros))
    .bind(closed_at.map(to_micros))
    .bind(to_micros(at))
    .bind(id)
    .bind(t.from.as_str())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DeskError::new(
            ErrorCode::StaleVersion,
            "the ticket's status changed meanwhile; reload it",
        ));
    }
    let mut after = json!({ "status": t.to });
    if let Some(reason) = &reason {
        after["hold_reason"] = json!(reason);
    }
    record(
        tx,
        Some(id),
        actor.id,
        action,
        Some("status"),
        Some(json!({ "status": t.from })),
        Some(after),
        false,
        at,
    )
    .await?;
    Ok(TicketTransition {
        id,
        to: t.to,
        reason,
    })
}

/// Deletes (tombstones) a ticket `actor` may see.
pub(crate) async fn delete(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    id: TicketId,
    at: DateTime<Utc>,
) -> DeskResult<()> {
    actor.require(Action::DeleteTicket)?;
    let ticket = fetch(&mut **tx, actor, id).await?;
    sqlx::query(
        "update tickets set deleted_at = ?1, updated_at = max(updated_at, ?1), version = version + 1
          where id = ?2",
    )
    .bind(to_micros(at))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    record(
        tx,
        Some(id),
        actor.id,
        ActivityAction::TicketDeleted,
        None,
        Some(json!({ "title": ticket.title })),
        None,
        false,
        at,
    )
    .await?;
    Ok(())
}

async fn check_assignee(tx: &mut Transaction<'_, Sqlite>, user: UserId) -> DeskResult<()> {
    let role: Option<String> =
        sqlx::query_scalar("select role from users where id = ? and deleted_at is null")
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
    match role.map(|r| parse_text::<Role>(&r, "role")).transpose()? {
        Some(role) if role.works_tickets() => Ok(()),
        Some(role) => Err(DeskError::invalid(
            "assignee_id",
            format!("{role}s cannot be assigned tickets"),
        )),
        None => Err(DeskError::invalid(
            "assignee_id",
            "no such person in this workspace",
        )),
    }
}

async fn check_customer(tx: &mut Transaction<'_, Sqlite>, customer: CustomerId) -> DeskResult<()> {
    let found: Option<i64> =
        sqlx::query_scalar("select 1 from customers where id = ? and deleted_at is null")
            .bind(customer)
            .fetch_optional(&mut **tx)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| DeskError::invalid("customer_id", "no such customer"))
}

/// The names a ticket's detail shows.
#[derive(FromRow)]
struct Names {
    requester_name: String,
    assignee_name: Option<String>,
    customer_name: Option<String>,
}

/// A row of `tickets`.
#[derive(FromRow)]
struct TicketDb {
    id: TicketId,
    number: i64,
    title: String,
    description: String,
    status: String,
    priority: String,
    category: String,
    requester_id: UserId,
    assignee_id: Option<UserId>,
    customer_id: Option<CustomerId>,
    hold_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    first_responded_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    version: i64,
}

impl TicketDb {
    fn into_ticket(self) -> DeskResult<Ticket> {
        Ok(Ticket {
            id: self.id,
            number: self.number,
            title: self.title,
            description: self.description,
            status: parse_text(&self.status, "status")?,
            priority: parse_text(&self.priority, "priority")?,
            category: self.category,
            requester_id: self.requester_id,
            assignee_id: self.assignee_id,
            customer_id: self.customer_id,
            hold_reason: self.hold_reason,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            first_responded_at: opt_from_micros(self.first_responded_at),
            resolved_at: opt_from_micros(self.resolved_at),
            closed_at: opt_from_micros(self.closed_at),
            version: self.version,
        })
    }
}
