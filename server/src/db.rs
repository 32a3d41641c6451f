//! Database connections and the per-request transaction that scopes every query to a tenant.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor as _, PgPool, Postgres, Transaction};
use tallydesk_shared::{TenantId, UserId};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The role every request runs as: it owns no table and cannot bypass row-level security.
pub const APP_ROLE: &str = "tallydesk_app";

/// Applies pending migrations with the owner's connection.
#[tracing::instrument(skip_all, err)]
pub async fn migrate(owner: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(owner)
        .await
        .context("applying database migrations")
}

/// How long a request waits for a pooled connection before it is refused as busy (503 with
/// `Retry-After`): a queue longer than this helps nobody.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// What Postgres cuts short on the request role's connections, so that neither a slow
/// statement nor a transaction left open holds a connection for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// `statement_timeout`: a longer statement is cancelled.
    pub statement: Duration,
    /// `idle_in_transaction_session_timeout`: a session idle this long inside a transaction
    /// is ended.
    pub idle_in_transaction: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            statement: Duration::from_secs(15),
            idle_in_transaction: Duration::from_secs(15),
        }
    }
}

/// A pool whose connections act as [`APP_ROLE`] within `limits`, made from the owner's
/// connection options.
pub async fn app_pool(
    options: PgConnectOptions,
    max_connections: u32,
    limits: SessionLimits,
) -> anyhow::Result<PgPool> {
    // Integers only, so the statement is safe to format.
    let setup = format!(
        "set role tallydesk_app; set statement_timeout = {}; \
         set idle_in_transaction_session_timeout = {}",
        limits.statement.as_millis(),
        limits.idle_in_transaction.as_millis(),
    );
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _meta| {
            let setup = setup.clone();
            Box::pin(async move {
                conn.execute(setup.as_str()).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .context("connecting to the database")
}

/// Starts a request transaction acting for `user`, and for `tenant` when given.
///
/// The settings are transaction-local (`set_config(.., true)`), so they vanish at commit or
/// rollback and can never leak to the next request on the same connection.
pub async fn begin(
    pool: &PgPool,
    user: UserId,
    tenant: Option<TenantId>,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    set_scope(&mut tx, user, tenant).await?;
    Ok(tx)
}

pub async fn set_scope(
    tx: &mut Transaction<'static, Postgres>,
    user: UserId,
    tenant: Option<TenantId>,
) -> Result<(), sqlx::Error> {
    let tenant = tenant.map(|t| t.to_string()).unwrap_or_default();
    sqlx::query!(
        "select set_config('tallydesk.user_id', $1, true) as user_id, set_config('tallydesk.tenant_id', $2, true) as tenant_id",
        user.to_string(),
        tenant,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}
