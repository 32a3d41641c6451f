//! What the local store keeps of the account between runs: never a token.

use serde::{Deserialize, Serialize};
use tallydesk_shared::TenantId;
use tallydesk_shared::api::{AuthProvider, Membership, UserSummary};

use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::store::Store;
use crate::time::to_micros;

/// A signed-in session's facts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedSession {
    pub issuer: String,
    pub subject: String,
    pub user: UserSummary,
    pub tenants: Vec<Membership>,
    pub tenant_id: TenantId,
}

#[derive(Clone, Debug)]
pub struct Saved {
    pub server_url: String,
    pub providers: Vec<AuthProvider>,
    pub session: Option<SavedSession>,
}

fn damaged(e: serde_json::Error) -> DeskError {
    DeskError::new(
        ErrorCode::DatabaseCorrupt,
        format!("the saved sign-in in the workspace database is damaged ({e})"),
    )
}

/// The `account` row as stored: the providers and the session are JSON.
#[derive(sqlx::FromRow)]
struct AccountRow {
    server_url: String,
    providers: String,
    session: Option<String>,
}

pub async fn load(store: &Store) -> DeskResult<Option<Saved>> {
    let row: Option<AccountRow> =
        sqlx::query_as("select server_url, providers, session from account where id = 1")
            .fetch_optional(&store.pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Saved {
        server_url: row.server_url,
        providers: serde_json::from_str(&row.providers).map_err(damaged)?,
        session: row
            .session
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(damaged)?,
    }))
}

pub async fn save(
    store: &Store,
    saved: &Saved,
    now: chrono::DateTime<chrono::Utc>,
) -> DeskResult<()> {
    let providers = serde_json::to_string(&saved.providers).map_err(damaged)?;
    let session = saved
        .session
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(damaged)?;
    sqlx::query(
        "insert into account (id, server_url, providers, session, updated_at) values (1, ?, ?, ?, ?)
         on conflict (id) do update set server_url = excluded.server_url,
            providers = excluded.providers, session = excluded.session,
            updated_at = excluded.updated_at",
    )
    .bind(&saved.server_url)
    .bind(providers)
    .bind(session)
    .bind(to_micros(now))
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub async fn forget(store: &Store) -> DeskResult<()> {
    sqlx::query("delete from account")
        .execute(&store.pool)
        .await?;
    Ok(())
}
