//! Local accounts: `users` rows of the built-in issuer (subject = the user id) with a password.

use chrono::{DateTime, Utc};
use sqlx::{Executor, PgPool, Postgres, Transaction};
use tallydesk_shared::UserId;
use tallydesk_shared::ticket::Email;

use super::password::{self, Password};

/// An account as the sign-in form finds it.
pub struct Found {
    pub user: UserId,
    pub password_hash: String,
}

pub async fn find_by_email(db: &PgPool, email: &str) -> Result<Option<Found>, sqlx::Error> {
    let row = sqlx::query!(
        "select user_id, password_hash from local_accounts where email = $1",
        email.trim().to_lowercase()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Found {
        user: UserId::from_uuid(r.user_id),
        password_hash: r.password_hash,
    }))
}

pub async fn password_hash_of(db: &PgPool, user: UserId) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select password_hash from local_accounts where user_id = $1",
        user.as_uuid()
    )
    .fetch_optional(db)
    .await
}

/// What a new account is made of.
#[derive(Debug)]
pub struct NewAccount<'a> {
    pub issuer: &'a str,
    pub email: &'a Email,
    pub name: Option<&'a str>,
    /// Whether tokens will say the email is verified (so invitations to it are accepted).
    pub email_verified: bool,
    pub password_hash: String,
}

/// Creates the user and their account; a taken email fails on `local_accounts_email_key`.
pub async fn create(
    tx: &mut Transaction<'static, Postgres>,
    account: NewAccount<'_>,
    now: DateTime<Utc>,
) -> Result<UserId, sqlx::Error> {
    let user = UserId::new();
    sqlx::query!(
        "insert into users (id, issuer, subject, email, email_verified, name, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        user.as_uuid(),
        account.issuer,
        user.to_string(),
        account.email.as_str(),
        account.email_verified,
        account.name,
        now,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into local_accounts (user_id, email, password_hash, created_at, password_changed_at)
         values ($1, $2, $3, $4, $4)",
        user.as_uuid(),
        account.email.as_str(),
        account.password_hash,
        now,
    )
    .execute(&mut **tx)
    .await?;
    Ok(user)
}

/// Replaces the password of `user`.
pub async fn set_password(
    tx: &mut Transaction<'static, Postgres>,
    user: UserId,
    new: &Password,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let hash = password::hash(new).await?;
    sqlx::query!(
        "update local_accounts set password_hash = $2, password_changed_at = $3 where user_id = $1",
        user.as_uuid(),
        hash,
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes the grants (refresh-token families) of `user`, all but `keep`, and ends their
/// issuer sessions unless one is kept.
pub async fn revoke_grants<'c, E>(
    db: E,
    user: UserId,
    keep: Option<uuid::Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let revoked = sqlx::query!(
        "update issuer_grants set revoked_at = $3
          where user_id = $1 and revoked_at is null and id is distinct from $2",
        user.as_uuid(),
        keep,
        now
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(revoked)
}

/// Ends every issuer session of `user` (a browser must sign in again).
pub async fn end_sessions<'c, E>(db: E, user: UserId, now: DateTime<Utc>) -> Result<(), sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    sqlx::query!(
        "update issuer_sessions set ended_at = $2 where user_id = $1 and ended_at is null",
        user.as_uuid(),
        now
    )
    .execute(db)
    .await?;
    Ok(())
}
