//! Dropping what the issuer no longer needs, once an hour: expired interactions, codes never
//! exchanged, expired refresh tokens, and failed-login counts whose window has ended (an ended
//! window counts as zero anyway). Anonymous requests make these rows, so without the sweep they
//! would only grow. Several servers sweeping at once do the same work twice, harmlessly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::throttle::Limits;
use crate::Clock;

const HOUR: Duration = Duration::from_secs(60 * 60);

/// How many rows one pass dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub interactions: u64,
    pub codes: u64,
    pub refresh_tokens: u64,
    pub login_failures: u64,
}

/// One pass at `now`.
#[tracing::instrument(skip_all, err)]
pub async fn sweep(db: &PgPool, limits: Limits, now: DateTime<Utc>) -> Result<Swept, sqlx::Error> {
    let interactions = sqlx::query!(
        "delete from issuer_interactions where expires_at <= $1",
        now
    )
    .execute(db)
    .await?
    .rows_affected();
    // A used code stays until it expires… and then too, while its grant lives: a replay must
    // still find it to revoke what it gave. Only codes never exchanged go.
    let codes = sqlx::query!(
        "delete from issuer_codes where expires_at <= $1 and used_at is null",
        now
    )
    .execute(db)
    .await?
    .rows_affected();
    let refresh_tokens = sqlx::query!(
        "delete from issuer_refresh_tokens where expires_at <= $1",
        now
    )
    .execute(db)
    .await?
    .rows_affected();
    let login_failures = sqlx::query!(
        "delete from issuer_login_failures where window_start <= $1",
        now - limits.window
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(Swept {
        interactions,
        codes,
        refresh_tokens,
        login_failures,
    })
}

/// A pass now and then once an hour, for as long as the task lives.
pub async fn run_hourly(db: PgPool, limits: Limits, clock: Clock) {
    loop {
        match sweep(&db, limits, clock.now()).await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(?swept, "issuer sweep dropped expired rows");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "issuer sweep failed; trying again in an hour"),
        }
        tokio::time::sleep(HOUR).await;
    }
}
