//! SLA events and change-log advances pushed to connected clients: one LISTEN connection per
//! server process, fanned out to every open `GET /api/v1/events` stream through a broadcast
//! channel.
//!
//! The [monitor](crate::monitor) NOTIFYs [`sla::EVENTS_CHANNEL`] in the transaction that records
//! an event, and the change log's trigger NOTIFYs [`CHANGES_CHANNEL`] once per tenant in each
//! transaction that appends to it (at commit), so the notification goes out only if the event
//! or change was recorded, and Postgres delivers
//! it to every session LISTENing on that database: behind a load balancer, each server instance
//! hears every event, whichever instance's monitor recorded it, and pushes it to the clients
//! connected to it.
//!
//! Notifications are not stored: those sent while the LISTEN connection is down are lost. So
//! after the connection comes back, and whenever a slow client falls behind the broadcast
//! channel, clients are told to re-sync (`event: resync`) and read the ticket queue again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tallydesk_shared::sla::Target;
use tallydesk_shared::sync::Changed;
use tallydesk_shared::{Action, Role, TenantId, TicketId, UserId};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::sla::{self, Kind};

/// The channel the change log NOTIFYs on (see the sync migration): `{tenant_id, seq}`.
pub const CHANGES_CHANNEL: &str = "tallydesk_changes";

/// Notices a client may fall behind by before it is told to re-sync. SLA events come in bursts
/// at most (a monitor pass after downtime), and a client that lags merely re-reads its queue.
const CAPACITY: usize = 1024;

/// The first pause before connecting again after the LISTEN connection failed; it doubles up to
/// [`MAX_BACKOFF`] while connecting keeps failing.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// An SLA event as clients receive it: `data` of an `event: sla` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlaEvent {
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub target: Target,
    pub kind: Kind,
    /// When it happened by the SLA clock (the deadline or warning instant), not when it was seen.
    pub at: DateTime<Utc>,
}

impl SlaEvent {
    /// The SSE `id`: the event's key in `sla_events` (each is recorded once per ticket, target
    /// and kind), so every server instance gives one event the same id.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.ticket_id,
            self.target.as_str(),
            self.kind.as_str()
        )
    }
}

/// `data` of an `event: resync` message: events may have been missed, so read the queue again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resync {
    pub reason: ResyncReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// This client read too slowly and notices were dropped for it.
    Lagged,
    /// The server's LISTEN connection was down for a while.
    Reconnected,
}

/// What the LISTEN task broadcasts to the streams of this process.
#[derive(Clone, Debug)]
pub enum Notice {
    Sla {
        event: SlaEvent,
        /// Who raised the ticket: requesters are told of their own tickets only. Never sent to
        /// clients. `None` (a payload without it) reaches staff only.
        requester: Option<UserId>,
    },
    /// The tenant's change log advanced: its members pull.
    Changed(Changed),
    Resync(ResyncReason),
}

impl Notice {
    /// Whether a member of `tenant` with `role` may be told of this.
    pub fn visible_to(&self, tenant: TenantId, user: UserId, role: Role) -> bool {
        match self {
            Notice::Sla { event, requester } => {
                event.tenant_id == tenant
                    && tallydesk_shared::permission::access(role, Action::ViewTicket)
                        .allows(*requester == Some(user))
            }
            Notice::Changed(changed) => changed.tenant_id == tenant,
            Notice::Resync(_) => true,
        }
    }
}

/// The NOTIFY payload: the event, and the ticket's requester for filtering.
#[derive(Deserialize)]
struct Payload {
    #[serde(flatten)]
    event: SlaEvent,
    #[serde(default)]
    requester_id: Option<UserId>,
}

/// The process's fan-out of SLA events, held in [`AppState`](crate::AppState). Streams
/// [`subscribe`](Self::subscribe); [`listen`](Self::listen) feeds it from Postgres.
#[derive(Clone)]
pub struct SlaEvents {
    sender: broadcast::Sender<Notice>,
    /// True once the server is shutting down: streams end, so graceful shutdown can finish.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for SlaEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl SlaEvents {
    /// A fan-out nothing feeds yet.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            closing: Arc::new(watch::channel(false).0),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }

    /// Becomes true when the server shuts down; streams end then.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every open stream (at shutdown: they would otherwise keep it waiting forever).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Starts the process's one LISTEN connection (made from the database owner's options, in
    /// a pool of its own so it never takes a connection requests or the monitor need). It runs
    /// until the returned [`Listening`] is dropped.
    pub fn listen(&self, options: PgConnectOptions) -> Listening {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let (ready, ready_rx) = watch::channel(false);
        let task = tokio::spawn(run(pool, self.sender.clone(), ready));
        Listening {
            task,
            ready: ready_rx,
        }
    }
}

/// The running LISTEN task; dropping this stops it.
pub struct Listening {
    task: JoinHandle<()>,
    ready: watch::Receiver<bool>,
}

impl Listening {
    /// Waits until the connection is LISTENing (again), so notifications from now on arrive.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        // Err only when the task ended, which it does not do on its own.
        let _ = ready.wait_for(|listening| *listening).await;
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// LISTENs, forwards each notification, and connects again with backoff when the connection
/// fails; after any gap it broadcasts a re-sync.
async fn run(pool: PgPool, sender: broadcast::Sender<Notice>, ready: watch::Sender<bool>) {
    let mut backoff = MIN_BACKOFF;
    let mut gap = false;
    loop {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot LISTEN for SLA events");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                gap = true;
                continue;
            }
        };
        ready.send_replace(true);
        if gap {
            tracing::info!("LISTENing for SLA events again; clients are told to re-sync");
            let _ = sender.send(Notice::Resync(ResyncReason::Reconnected));
        }
        backoff = MIN_BACKOFF;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    forward(&sender, notification.channel(), notification.payload())
                }
                // The connection dropped and sqlx connected and LISTENed again at once.
                Ok(None) => {
                    tracing::warn!("the SLA events LISTEN connection dropped and was re-made");
                    let _ = sender.send(Notice::Resync(ResyncReason::Reconnected));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the SLA events LISTEN connection");
                    break;
                }
            }
        }
        ready.send_replace(false);
        gap = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([sla::EVENTS_CHANNEL, CHANGES_CHANNEL])
        .await?;
    Ok(listener)
}

fn forward(sender: &broadcast::Sender<Notice>, channel: &str, payload: &str) {
    if channel == CHANGES_CHANNEL {
        match serde_json::from_str::<Changed>(payload) {
            // Err: no stream is open in this process right now, which is fine.
            Ok(changed) => drop(sender.send(Notice::Changed(changed))),
            Err(e) => {
                tracing::warn!(error = %e, payload, "ignoring a malformed change notification")
            }
        }
        return;
    }
    match serde_json::from_str::<Payload>(payload) {
        Ok(p) => {
            // Err: no stream is open in this process right now, which is fine.
            let _ = sender.send(Notice::Sla {
                event: p.event,
                requester: p.requester_id,
            });
        }
        Err(e) => tracing::warn!(error = %e, payload, "ignoring a malformed SLA notification"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breach(tenant: TenantId, requester: Option<UserId>) -> Notice {
        Notice::Sla {
            event: SlaEvent {
                tenant_id: tenant,
                ticket_id: TicketId::new(),
                target: Target::Resolution,
                kind: Kind::Breached,
                at: Utc::now(),
            },
            requester,
        }
    }

    #[test]
    fn staff_see_their_tenants_events_and_requesters_their_own_tickets_only() {
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let (me, someone) = (UserId::new(), UserId::new());
        let mine = breach(tenant, Some(me));
        let theirs = breach(tenant, Some(someone));
        for role in [Role::Agent, Role::Admin, Role::Observer] {
            assert!(mine.visible_to(tenant, me, role), "{role}");
            assert!(theirs.visible_to(tenant, me, role), "{role}");
            assert!(!mine.visible_to(other, me, role), "{role}: another tenant");
        }
        assert!(mine.visible_to(tenant, me, Role::Requester));
        assert!(
            !theirs.visible_to(tenant, me, Role::Requester),
            "a requester never hears of another's ticket"
        );
        assert!(
            !breach(tenant, None).visible_to(tenant, me, Role::Requester),
            "without a requester in the payload, only staff are told"
        );
    }

    #[test]
    fn the_notify_payload_parses_and_the_wire_form_leaves_the_requester_out() {
        let tenant = TenantId::new();
        let ticket = TicketId::new();
        let requester = UserId::new();
        let payload = serde_json::json!({
            "tenant_id": tenant, "ticket_id": ticket, "target": "first_response",
            "kind": "at_risk", "at": "2026-11-02T09:00:00Z", "requester_id": requester,
        });
        let p: Payload = serde_json::from_value(payload).expect("the monitor's payload");
        assert_eq!(p.requester_id, Some(requester));
        assert_eq!(p.event.kind, Kind::AtRisk);
        assert_eq!(p.event.id(), format!("{ticket}:first_response:at_risk"));
        let wire = serde_json::to_value(&p.event).expect("JSON");
        assert!(wire.get("requester_id").is_none(), "{wire}");
        assert_eq!(wire["target"], "first_response");
    }
}
