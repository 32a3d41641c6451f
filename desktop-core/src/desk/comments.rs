//! A ticket's thread: reading it, and the one write path of a new comment.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::Comment;
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::{CommentCreate, Intent};
use tallydesk_shared::ticket::CommentBody;
use tallydesk_shared::{Access, Action, CommentId, TicketId, UserId};

use super::{Actor, Desk, record, ticket};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::time::{from_micros, to_micros};

impl Desk {
    pub async fn comments(&self, id: TicketId) -> DeskResult<Vec<Comment>> {
        self.load(id).await?;
        let internal = access(self.role(), Action::ViewInternalNotes) != Access::Denied;
        let rows = sqlx::query_as::<_, CommentDb>(
            "select id, ticket_id, author_id, body, internal, created_at from comments
              where ticket_id = ? and deleted_at is null and (internal = 0 or ?) order by created_at, id",
        )
        .bind(id)
        .bind(internal)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.into_iter().map(CommentDb::into_comment).collect())
    }

    pub async fn add_comment(
        &self,
        id: TicketId,
        body: &str,
        internal: bool,
    ) -> DeskResult<Comment> {
        let mut tx = self.write().await?;
        let comment = CommentCreate {
            id: CommentId::new(),
            ticket_id: id,
            body: body.to_owned(),
            internal,
        };
        let comment = add(&mut tx, self.actor(), &comment, self.now()).await?;
        self.enqueue(
            &mut tx,
            Intent::CommentCreate(CommentCreate {
                id: comment.id,
                ticket_id: id,
                body: comment.body.clone(),
                internal,
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        Ok(comment)
    }
}

/// Adds the comment `c` as `actor`, to a ticket they may see and answer (a public reply or an
/// internal note, as their role allows); a comment that is here already is left as it is (a
/// comment is made once). A public reply by someone who works tickets is the first response,
/// if there was none.
pub(crate) async fn add(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    c: &CommentCreate,
    at: DateTime<Utc>,
) -> DeskResult<Comment> {
    let ticket = ticket::fetch(&mut **tx, actor, c.ticket_id).await?;
    let action = if c.internal {
        Action::CommentInternal
    } else {
        Action::CommentPublic
    };
    if !actor.may(action, ticket.requester_id == actor.id) {
        let what = if c.internal {
            "add internal notes"
        } else {
            "reply"
        };
        return Err(DeskError::new(
            ErrorCode::Forbidden,
            format!("{}s may not {what} here", actor.role),
        ));
    }
    let body = CommentBody::parse(&c.body)?;
    let comment = Comment {
        id: c.id,
        ticket_id: c.ticket_id,
        author_id: actor.id,
        body: body.into_inner(),
        internal: c.internal,
        created_at: at,
    };
    let made: Option<i64> = sqlx::query_scalar("select 1 from comments where id = ?")
        .bind(c.id)
        .fetch_optional(&mut **tx)
        .await?;
    if made.is_some() {
        return Ok(comment);
    }
    let first_response =
        !c.internal && actor.role.works_tickets() && ticket.first_responded_at.is_none();
    sqlx::query(
        "insert into comments (id, ticket_id, author_id, body, internal, created_at) values (?, ?, ?, ?, ?, ?)",
    )
    .bind(comment.id)
    .bind(comment.ticket_id)
    .bind(actor.id)
    .bind(&comment.body)
    .bind(comment.internal)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "update tickets set updated_at = max(updated_at, ?1),
                first_responded_at = case when ?2 then ?1 else first_responded_at end
          where id = ?3",
    )
    .bind(to_micros(at))
    .bind(first_response)
    .bind(comment.ticket_id)
    .execute(&mut **tx)
    .await?;
    record(
        tx,
        Some(comment.ticket_id),
        actor.id,
        ActivityAction::CommentCreated,
        None,
        None,
        Some(json!({ "comment_id": comment.id, "internal": comment.internal })),
        comment.internal,
        at,
    )
    .await?;
    Ok(comment)
}

/// A row of `comments`.
#[derive(FromRow)]
struct CommentDb {
    id: CommentId,
    ticket_id: TicketId,
    author_id: UserId,
    body: String,
    internal: bool,
    created_at: i64,
}

impl CommentDb {
    fn into_comment(self) -> Comment {
        Comment {
            id: self.id,
            ticket_id: self.ticket_id,
            author_id: self.author_id,
            body: self.body,
            internal: self.internal,
            created_at: from_micros(self.created_at),
        }
    }
}
