//! The SLA monitor: records each at-risk and breach event exactly once, as it happens, and
//! NOTIFYs [`sla::EVENTS_CHANNEL`] so connected clients can be told.
//!
//! # Several server instances on one database
//!
//! Every instance runs a monitor, and there is no leader. Due tickets are claimed one at a time
//! by locking the ticket row with `for no key update skip locked`: an instance skips a ticket
//! another monitor (or a writer) holds, so instances share the work instead of queueing on it,
//! and no instance's failure stops the others. Exactly once does not rest on the claim alone:
//! an event is recorded only when its `sla_events` row is new (its key is ticket, target and
//! kind), and the activity entry and the NOTIFY are written in that same transaction, so two
//! monitors that both reach a ticket, one after the other, still record each event once. A
//! leader holding an advisory lock would also work, but would idle every instance but one and
//! need a takeover when the leader's connection dies; row claims need neither.
//!
//! # When it looks
//!
//! Never on a fixed beat: after a pass it sleeps until the earliest `ticket_sla.next_change_at`
//! of any tenant, and writers that bring a deadline closer NOTIFY [`sla::DEADLINES_CHANNEL`],
//! which it LISTENs on, to wake it early. "Now" and the sleep until a deadline are the injected
//! [`Clock`]'s, so a test that moves the clock by hand decides when the monitor wakes.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tallydesk_shared::{TenantId, TicketId};

use crate::Clock;
use crate::sla::{self, Pending, Recorded};

/// Due tickets claimed per query.
const BATCH: i64 = 200;

/// The longest sleep, in case a wake-up was lost (the listener reconnecting, say).
const MAX_SLEEP: TimeDelta = TimeDelta::hours(1);

/// The pause before looking again when due tickets were left to others (locked by a writer or
/// another monitor) or a pass failed.
const RETRY: Duration = Duration::from_secs(1);

/// Records SLA events for every tenant. Runs as the database owner: it finds due tickets
/// across tenants, then handles each in a transaction scoped to that ticket's tenant.
#[derive(Clone)]
pub struct Monitor {
    owner: PgPool,
    clock: Clock,
}

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    pub recorded: Vec<Recorded>,
    /// Due tickets left because someone else held them.
    pub skipped: usize,
    /// When the next event of any ticket is due.
    pub next_at: Option<DateTime<Utc>>,
}

impl Monitor {
    pub fn new(owner: PgPool, clock: Clock) -> Self {
        Self { owner, clock }
    }

    /// One pass at the clock's now: records every event due, and says when to look again.
    #[tracing::instrument(skip_all, err)]
    pub async fn tick(&self) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let mut pass = Pass::default();
        loop {
            let due = sqlx::query!(
                "select ticket_id, tenant_id from ticket_sla
                  where next_change_at <= $1 order by next_change_at limit $2",
                now,
                BATCH,
            )
            .fetch_all(&self.owner)
            .await?;
            let mut progressed = false;
            pass.skipped = 0;
            for row in &due {
                let ticket = TicketId::from_uuid(row.ticket_id);
                match self
                    .handle(TenantId::from_uuid(row.tenant_id), ticket, now)
                    .await?
                {
                    Some(recorded) => {
                        progressed = true;
                        pass.recorded.extend(recorded);
                    }
                    None => pass.skipped += 1,
                }
            }
            if (due.len() as i64) < BATCH || !progressed {
                break;
            }
        }
        pass.next_at = sqlx::query_scalar!("select min(next_change_at) from ticket_sla")
            .fetch_one(&self.owner)
            .await?;
        Ok(pass)
    }

    /// Records a ticket's due events; `None` when another transaction holds the ticket.
    async fn handle(
        &self,
        tenant: TenantId,
        ticket: TicketId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Vec<Recorded>>> {
        let mut tx = self.owner.begin().await?;
        crate::db::set_scope(&mut tx, sla::MONITOR_USER, Some(tenant)).await?;
        let claimed = sqlx::query_scalar!(
            "select id from tickets where id = $1 for no key update skip locked",
            ticket.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            return Ok(None);
        }
        // Another monitor may have handled it between our look and our claim.
        let still_due = sqlx::query_scalar!(
            "select next_change_at <= $2 as \"due!\" from ticket_sla
              where ticket_id = $1 and next_change_at is not null",
            ticket.as_uuid(),
            now,
        )
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(false);
        if !still_due {
            tx.commit().await?;
            return Ok(Some(Vec::new()));
        }
        let recorded = sla::refresh(&mut tx, tenant, Some(&[ticket]), now, Pending::Record).await?;
        tx.commit().await?;
        for e in &recorded {
            tracing::info!(
                tenant = %e.tenant, ticket = %e.ticket, target = ?e.target, kind = e.kind.as_str(),
                at = %e.at, "SLA event recorded"
            );
        }
        Ok(Some(recorded))
    }

    /// Runs until the task is dropped: a pass, then sleep until the next event is due by the
    /// clock or a writer NOTIFYs that deadlines changed.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.owner).await?;
        listener.listen(sla::DEADLINES_CHANNEL).await?;
        loop {
            // `None`: look again after `RETRY`, in real time.
            let wake_at = match self.tick().await {
                Ok(pass) if pass.skipped > 0 => None,
                Ok(pass) => {
                    let now = self.clock.now();
                    let latest = now + MAX_SLEEP;
                    match pass.next_at {
                        Some(at) if at < now => None,
                        Some(at) => Some(at.min(latest)),
                        None => Some(latest),
                    }
                }
                Err(e) => {
                    tracing::error!(error = ?e, "SLA monitor pass failed; trying again shortly");
                    None
                }
            };
            let asleep = async {
                match wake_at {
                    Some(at) => sleep_until(&self.clock, at).await,
                    None => tokio::time::sleep(RETRY).await,
                }
            };
            tokio::select! {
                woken = listener.try_recv() => {
                    if let Err(e) = woken {
                        tracing::warn!(error = %e, "SLA monitor lost its LISTEN connection");
                        tokio::time::sleep(RETRY).await;
                    }
                    // Ok(None): the connection was re-established; a pass catches up.
                }
                () = asleep => {}
            }
        }
    }
}

/// Waits until `clock` reads `at`: on the runtime's timer, or, on a clock moved by hand, until
/// it is moved there.
async fn sleep_until(clock: &Clock, at: DateTime<Utc>) {
    match clock.wait_until(at) {
        Some(moved) => moved.await,
        None => {
            if let Ok(wait) = (at - clock.now()).to_std() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}
