//! A ticket's thread: public replies and internal notes.

use chrono::{DateTime, Utc};
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{Comment, CreateComment};
use tallydesk_shared::ticket::CommentBody;
use tallydesk_shared::{Action, CommentId, TicketId};

use super::{load, load_for_update, refresh_sla};
use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::ApiResult;

/// The thread, oldest first; internal notes only for those who may read them.
pub(crate) async fn list(scope: &mut Scope, id: TicketId) -> ApiResult<Vec<Comment>> {
    load(scope, id, Action::ViewTicket).await?;
    let internal = scope.role_may(Action::ViewInternalNotes);
    let rows = sqlx::query!(
        "select id, ticket_id, author_id, body, internal, created_at from comments
          where ticket_id = $1 and (not internal or $2) order by created_at, id",
        id.as_uuid(),
        internal
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Comment {
            id: r.id.into(),
            ticket_id: r.ticket_id.into(),
            author_id: r.author_id.into(),
            body: r.body,
            internal: r.internal,
            created_at: r.created_at,
        })
        .collect())
}

/// Adds a reply or internal note with the given id (the server's for REST, the client's for
/// sync) to a ticket, in the scope's transaction.
pub(crate) async fn create(
    scope: &mut Scope,
    comment_id: CommentId,
    id: TicketId,
    body: &CreateComment,
    now: DateTime<Utc>,
) -> ApiResult<Comment> {
    let action = if body.internal {
        Action::CommentInternal
    } else {
        Action::CommentPublic
    };
    let ticket = load_for_update(scope, id, action).await?;
    let text = CommentBody::parse(&body.body)?;
    let comment = Comment {
        id: comment_id,
        ticket_id: id,
        author_id: scope.user,
        body: text.into_inner(),
        internal: body.internal,
        created_at: now,
    };
    sqlx::query!(
        "insert into comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        comment.id.as_uuid(),
        scope.tenant.as_uuid(),
        id.as_uuid(),
        scope.user.as_uuid(),
        comment.body,
        comment.internal,
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let first_response =
        !comment.internal && scope.role.works_tickets() && ticket.first_responded_at.is_none();
    sqlx::query!(
        "update tickets set updated_at = $2,
                first_responded_at = case when $3 then $2 else first_responded_at end
          where id = $1",
        id.as_uuid(),
        now,
        first_response,
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(ActivityAction::CommentCreated, id)
            .after(json!({ "comment_id": comment.id, "internal": comment.internal }))
            .internal(comment.internal),
    )
    .await?;
    if !comment.internal {
        refresh_sla(scope, id, now).await?;
    }
    Ok(comment)
}
