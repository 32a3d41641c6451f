//! `POST /api/v1/sync/push`: intents made offline, each applied exactly once.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use sqlx::Executor as _;
use tallydesk_shared::api::{
    CreateComment, CreateCustomer, CreateTicket, ErrorCode, PatchCustomer, TransitionRequest,
};
use tallydesk_shared::sync::{
    ClientId, Intent, MAX_PUSH_MUTATIONS, Mutation, MutationResult, MutationStatus, PushRequest,
    PushResponse,
};

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::Json;
use crate::{customers, expenses, tickets};

#[utoipa::path(
    post, path = "/api/v1/sync/push", tag = "sync",
    description = "Applies the client's mutations in order, each in its own transaction, with \
        the same permission and workflow checks as the REST routes, and records each outcome \
        under `(client_id, seq)` in that transaction. A mutation sent again returns its \
        recorded outcome and changes nothing. `rejected` results carry the `code` and \
        `message` the REST route would answer (e.g. `illegal_transition`, `forbidden`, \
        `invalid_field`, `not_found`, `already_exists` for a create whose id is taken).\n\n\
        `expense.create` files a submitted expense on a claim ticket (requesters and agents: \
        claims they raised; `ticket_closed` once it is resolved or closed); its `receipt` must \
        name a blob the submitter uploaded in the tenant (`invalid_field` on \
        `receipt.sha256`); resending its id with any fields is `expense_immutable`, as is \
        deciding an expense decided already. `expense.decide` needs a `reason` to reject; \
        nobody decides an expense they submitted (`own_expense`); above the tenant's \
        dual-approval amount a first approval leaves it submitted until another approver \
        approves (`already_approved` for the same approver again).\n\n\
        `ticket.update` merges per field: the named fields apply even when `base_version` is \
        stale; a field someone else changed since is overwritten, and its activity entry shows \
        both values (`after.merged_from_version`). `ticket.transition` is checked against the \
        ticket's current status.\n\n\
        At most 1000 mutations per push. A 5xx means the rest of the batch was not tried: send \
        it again.",
    request_body = PushRequest,
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = PushResponse),
        (status = 400, body = tallydesk_shared::api::ErrorBody, description = "protocol version or too many mutations"),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "malformed mutation"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    scope: Scope,
    Json(body): Json<PushRequest>,
) -> ApiResult<impl IntoResponse> {
    super::check_protocol(&headers)?;
    if body.mutations.len() > MAX_PUSH_MUTATIONS {
        return Err(ApiError::bad_request(
            ErrorCode::TooManyMutations,
            format!("push at most {MAX_PUSH_MUTATIONS} mutations at a time"),
        ));
    }
    let (tenant, user, role) = (scope.tenant, scope.user, scope.role);
    scope.commit().await?;
    let mut results = Vec::with_capacity(body.mutations.len());
    for mutation in &body.mutations {
        let tx = crate::db::begin(&state.db, user, Some(tenant)).await?;
        let mut scope = Scope {
            tx,
            tenant,
            user,
            role,
        };
        let result = apply(&mut scope, body.client_id, mutation, state.clock.now()).await?;
        scope.commit().await?;
        results.push(result);
    }
    Ok((
        super::protocol_header(),
        axum::Json(PushResponse { results }),
    ))
}

/// Applies one mutation in the scope's transaction, unless it was applied (or refused) before:
/// then its recorded outcome. The record is claimed first, so a concurrent push of the same
/// mutation waits for this one and then reads its outcome.
async fn apply(
    scope: &mut Scope,
    client: ClientId,
    mutation: &Mutation,
    now: DateTime<Utc>,
) -> ApiResult<MutationResult> {
    let claimed = sqlx::query_scalar!(
        "insert into sync_mutations (tenant_id, client_id, seq, user_id, status, recorded_at)
         values ($1, $2, $3, $4, 'applied', $5)
         on conflict (tenant_id, client_id, seq) do nothing
         returning seq",
        scope.tenant.as_uuid(),
        client.0,
        mutation.seq,
        scope.user.as_uuid(),
        now,
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    if claimed.is_none() {
        let recorded = sqlx::query!(
            "select status, code, message from sync_mutations
              where tenant_id = $1 and client_id = $2 and seq = $3",
            scope.tenant.as_uuid(),
            client.0,
            mutation.seq,
        )
        .fetch_one(&mut *scope.tx)
        .await?;
        let status = match recorded.status.as_str() {
            "applied" => MutationStatus::Applied,
            _ => MutationStatus::Rejected,
        };
        return Ok(MutationResult {
            seq: mutation.seq,
            status,
            code: recorded.code.as_deref().map(ErrorCode::parse_lenient),
            message: recorded.message,
        });
    }

    scope.tx.execute("savepoint mutation").await?;
    let (code, message) = match intent(scope, &mutation.intent, now).await {
        Ok(()) => {
            return Ok(MutationResult {
                seq: mutation.seq,
                status: MutationStatus::Applied,
                code: None,
                message: None,
            });
        }
        Err(ApiError::Client { code, message, .. }) => (code, message),
        Err(ApiError::Internal(e)) => match taken_id(&e) {
            Some(what) => (
                ErrorCode::AlreadyExists,
                format!("id: a {what} with this id already exists"),
            ),
            None => return Err(ApiError::Internal(e)),
        },
    };
    scope.tx.execute("rollback to savepoint mutation").await?;
    sqlx::query!(
        "update sync_mutations set status = 'rejected', code = $4, message = $5
          where tenant_id = $1 and client_id = $2 and seq = $3",
        scope.tenant.as_uuid(),
        client.0,
        mutation.seq,
        code.as_str(),
        message,
    )
    .execute(&mut *scope.tx)
    .await?;
    Ok(MutationResult {
        seq: mutation.seq,
        status: MutationStatus::Rejected,
        code: Some(code),
        message: Some(message),
    })
}

/// Runs an intent through the same operations as the REST routes.
async fn intent(scope: &mut Scope, intent: &Intent, now: DateTime<Utc>) -> ApiResult<()> {
    match intent {
        Intent::TicketCreate(t) => {
            let body = CreateTicket {
                title: t.title.clone(),
                description: t.description.clone(),
                priority: t.priority,
                category: t.category.clone(),
                customer_id: t.customer_id,
                assignee_id: t.assignee_id,
                requester_id: None,
            };
            tickets::create(scope, t.id, &body, now).await?;
        }
        Intent::TicketUpdate(u) => {
            tickets::update(scope, u.id, &u.patch(), Some(u.base_version), now).await?;
        }
        Intent::TicketTransition(t) => {
            let body = TransitionRequest {
                to: t.to,
                reason: t.reason.clone(),
            };
            tickets::transition(scope, t.id, &body, now).await?;
        }
        Intent::CommentCreate(c) => {
            let body = CreateComment {
                body: c.body.clone(),
                internal: c.internal,
            };
            tickets::comments::create(scope, c.id, c.ticket_id, &body, now).await?;
        }
        Intent::ExpenseCreate(e) => {
            expenses::create(scope, e, now).await?;
        }
        Intent::ExpenseDecide(d) => {
            expenses::decide(scope, d, now).await?;
        }
        Intent::TicketDelete(d) => tickets::delete(scope, d.id, now).await?,
        Intent::CustomerCreate(c) => {
            let body = CreateCustomer {
                name: c.name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                company: c.company.clone(),
                notes: c.notes.clone(),
            };
            customers::create(scope, c.id, &body, now).await?;
        }
        Intent::CustomerUpdate(u) => {
            let body = PatchCustomer {
                name: u.name.clone(),
                email: u.email.clone(),
                phone: u.phone.clone(),
                company: u.company.clone(),
                notes: u.notes.clone(),
            };
            customers::update(scope, u.id, &body, now).await?;
        }
        Intent::CustomerDelete(d) => customers::delete(scope, d.id, now).await?,
    }
    Ok(())
}

/// The kind of record whose client-made id was already taken, when that is what failed.
fn taken_id(error: &anyhow::Error) -> Option<&'static str> {
    let db = error.downcast_ref::<sqlx::Error>()?.as_database_error()?;
    match db.constraint()? {
        "tickets_pkey" => Some("ticket"),
        "comments_pkey" => Some("comment"),
        "expenses_pkey" => Some("expense"),
        "customers_pkey" => Some("customer"),
        _ => None,
    }
}
