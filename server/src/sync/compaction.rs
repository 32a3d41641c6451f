//! Keeping the change log small. The log holds one row per record, so only tombstones pile
//! up: once a day each server notes where every tenant's log stands, and drops the tombstones
//! at or below the newest note older than the retention. A desktop that has not pulled for
//! longer than that is answered `resync_required` and rebuilds from a snapshot, keeping its
//! unsent changes. Several servers doing it at once do the same work twice, harmlessly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tallydesk_shared::TenantId;

use crate::Clock;
use crate::sla::MONITOR_USER;

/// How long tombstones are kept by default: a desktop offline longer resyncs.
pub const DEFAULT_TOMBSTONE_DAYS: u32 = 30;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub tenants: u64,
    pub tombstones: u64,
}

pub struct Compactor {
    owner: PgPool,
    clock: Clock,
    keep: chrono::Duration,
}

impl Compactor {
    pub fn new(owner: PgPool, clock: Clock, keep: chrono::Duration) -> Compactor {
        Compactor { owner, clock, keep }
    }

    /// Notes every tenant's log head now, then compacts each tenant through its newest note
    /// older than the retention, forgetting the notes before that one.
    #[tracing::instrument(skip_all, err)]
    pub async fn pass(&self) -> anyhow::Result<Compacted> {
        let now = self.clock.now();
        let tenants: Vec<TenantId> =
            sqlx::query_scalar!("select tenant_id from tenant_counters order by tenant_id")
                .fetch_all(&self.owner)
                .await?
                .into_iter()
                .map(TenantId::from_uuid)
                .collect();
        let mut done = Compacted::default();
        for tenant in tenants {
            let dropped = self.tenant(tenant, now).await?;
            if let Some(dropped) = dropped {
                done.tenants += 1;
                done.tombstones += dropped;
            }
        }
        Ok(done)
    }

    /// One tenant's note and compaction, in one transaction; the tombstones dropped, when a
    /// note was old enough.
    async fn tenant(&self, tenant: TenantId, now: DateTime<Utc>) -> anyhow::Result<Option<u64>> {
        let mut tx = self.owner.begin().await?;
        crate::db::set_scope(&mut tx, MONITOR_USER, Some(tenant)).await?;
        sqlx::query!(
            "insert into change_log_marks (tenant_id, at, seq)
             select tenant_id, $2, last_change_seq from tenant_counters where tenant_id = $1
             on conflict do nothing",
            tenant.as_uuid(),
            now,
        )
        .execute(&mut *tx)
        .await?;
        let through = sqlx::query!(
            "select at, seq from change_log_marks where tenant_id = $1 and at <= $2
              order by at desc limit 1",
            tenant.as_uuid(),
            now - self.keep,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(through) = through else {
            tx.commit().await?;
            return Ok(None);
        };
        let dropped = super::compact(&mut tx, tenant, through.seq).await?;
        sqlx::query!(
            "delete from change_log_marks where tenant_id = $1 and at < $2",
            tenant.as_uuid(),
            through.at,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if dropped > 0 {
            tracing::info!(%tenant, through = through.seq, dropped, "change log compacted");
        }
        Ok(Some(dropped))
    }

    /// A pass now and then once a day, for as long as the task lives.
    pub async fn run_daily(self) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = ?e, "change log compaction failed; trying again tomorrow");
            }
            tokio::time::sleep(DAY).await;
        }
    }
}
