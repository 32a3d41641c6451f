//! `GET /api/v1/events`: SLA alerts and change-log advances pushed to the caller as
//! Server-Sent Events.
//!
//! Each stream is a subscription to the process's [`SlaEvents`](crate::events::SlaEvents) fan-out,
//! filtered to the caller's tenant and, for requesters, to tickets they raised. It holds no
//! database connection while open: the caller's membership is read when it starts and again
//! every [`RECHECK`], so a member who is removed stops hearing events, and one whose role
//! changes hears what the new role may.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use sqlx::PgPool;
use tallydesk_shared::{Action, Role, TenantId, UserId};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::events::{Notice, Resync, ResyncReason};

/// How often an open stream reads the caller's membership again.
const RECHECK: Duration = Duration::from_secs(60);

/// How often an idle stream sends a comment, so proxies and clients see it alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    description = "A Server-Sent Events stream of the tenant's SLA alerts, as the SLA monitor \
        records them. Requesters hear of tickets they raised; observers, agents and admins of \
        every ticket of the tenant.\n\n\
        - `event: sla`: a target turned at risk or breached; `data` is an `SlaEvent`, and `id` \
        is `<ticket_id>:<target>:<kind>`, the same on every server instance.\n\
        - `event: changed`: the tenant's change log advanced to `seq` (`data` is a \
        `Changed`, `id` the seq); sync clients pull from their cursor. Sent to every member of \
        the tenant, once per committed write.\n\
        - `event: resync`: events may have been missed (this client read too slowly, or the \
        server lost its database connection for a while); `data` is a `Resync`. Read the \
        ticket queue again.\n\
        - Comments (`:`) every 15 s keep the connection alive.\n\n\
        Missed events are not replayed (`Last-Event-ID` is ignored): after connecting, read \
        the queue, then follow the stream.",
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 200, description = "`event: sla` messages carry an `SlaEvent` (shown); \
            `event: resync` messages a `Resync`", body = crate::events::SlaEvent,
            content_type = "text/event-stream"),
        (status = 401, body = tallydesk_shared::api::ErrorBody),
        (status = 403, body = tallydesk_shared::api::ErrorBody, description = "not a member of the tenant"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn stream(State(state): State<AppState>, scope: Scope) -> ApiResult<impl IntoResponse> {
    scope.require(Action::ViewTicket)?;
    let (tenant, user, role) = (scope.tenant, scope.user, scope.role);
    // Subscribed before the response starts: whatever happens after the client sees 200 reaches it.
    let receiver = state.events.subscribe();
    let closing = state.events.closing();
    scope.commit().await?;
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let client = Client {
        receiver,
        closing,
        db: state.db.clone(),
        tenant,
        user,
        role,
        recheck,
    };
    let sse = Sse::new(client.into_stream()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // Tells nginx-like proxies not to buffer the stream.
    Ok(([("x-accel-buffering", "no")], sse))
}

/// One open stream: who it is for and where its notices come from.
struct Client {
    receiver: broadcast::Receiver<Notice>,
    closing: watch::Receiver<bool>,
    db: PgPool,
    tenant: TenantId,
    user: UserId,
    role: Role,
    recheck: Interval,
}

impl Client {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        futures::stream::unfold(self, |mut client| async move {
            let event = client.next().await?;
            Some((Ok(event), client))
        })
    }

    /// The next message for this client; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                notice = self.receiver.recv() => match notice {
                    Ok(notice) if notice.visible_to(self.tenant, self.user, self.role) => {
                        if let Some(event) = message(&notice) {
                            return Some(event);
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, user = %self.user, "an SLA events stream lagged");
                        return message(&Notice::Resync(ResyncReason::Lagged));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.recheck.tick() => match current_role(&self.db, self.tenant, self.user).await {
                    Ok(Some(role)) => self.role = role,
                    Ok(None) => {
                        tracing::info!(user = %self.user, tenant = %self.tenant,
                            "closing an SLA events stream: no longer a member");
                        return None;
                    }
                    Err(e) => tracing::warn!(error = ?e,
                        "cannot read a stream's membership again; keeping its role"),
                },
                () = closed(&mut self.closing) => return None,
            }
        }
    }
}

/// The caller's role in the tenant now; `None` when they are no longer a member.
async fn current_role(db: &PgPool, tenant: TenantId, user: UserId) -> anyhow::Result<Option<Role>> {
    let mut tx = crate::db::begin(db, user, Some(tenant)).await?;
    let role = sqlx::query_scalar!(
        "select role from memberships where tenant_id = $1 and user_id = $2",
        tenant.as_uuid(),
        user.as_uuid(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(role.map(|r| r.parse()).transpose()?)
}

/// Resolves when the server starts shutting down.
async fn closed(closing: &mut watch::Receiver<bool>) {
    // Err: every sender is gone, which also means the server is going away.
    let _ = closing.wait_for(|closing| *closing).await;
}

/// The SSE message for a notice.
fn message(notice: &Notice) -> Option<Event> {
    let event = match notice {
        Notice::Sla { event, .. } => Event::default()
            .event("sla")
            .id(event.id())
            .json_data(event),
        Notice::Changed(changed) => Event::default()
            .event("changed")
            .id(changed.seq.to_string())
            .json_data(changed),
        Notice::Resync(reason) => Event::default()
            .event("resync")
            .json_data(Resync { reason: *reason }),
    };
    event
        .inspect_err(|e| tracing::error!(error = %e, "cannot encode an SSE message"))
        .ok()
}
