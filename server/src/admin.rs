//! The operator's commands for the built-in issuer:
//! - `create-admin` bootstraps a headless install with a Tallydesk account that is admin of
//!   the "Default" tenant, or resets the password of that account;
//! - `rotate-keys` makes a new signing key current.
//!
//! Both work beside a running server: with the private cluster, the server's running cluster
//! is reused and left running; with TALLYDESK_DATABASE_URL it is just another client.

use std::io::{IsTerminal as _, Read as _};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tallydesk_shared::ticket::{Email, TenantName};
use tallydesk_shared::{TenantId, UserId};

use crate::config::{Config, Database};
use crate::issuer::accounts::{self, NewAccount};
use crate::issuer::invitations::person_name;
use crate::issuer::password::{self, Password};

pub const DEFAULT_TENANT: &str = "Default";

/// What `create-admin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub user: UserId,
    pub tenant: TenantId,
    /// False when the account existed and only its password (and admin role) were set.
    pub created: bool,
}

pub async fn run(config: &Config, email: &str, name: Option<&str>) -> anyhow::Result<()> {
    let email = Email::parse(email).context("--email")?;
    let name = name.map(person_name).transpose().context("--name")?;
    if !config.builtin_issuer_on() {
        tracing::warn!(
            "the built-in issuer is off (TALLYDESK_BUILTIN_ISSUER / TALLYDESK_OIDC_ISSUER): this \
             account cannot sign in until it is on"
        );
    }
    let issuer = config.public_url()?;
    let password = read_password(email.as_str())?;
    let database = Database::open(config).await?;
    let outcome = create_admin(
        &database.app,
        &issuer,
        &email,
        name.as_deref(),
        &password,
        Utc::now(),
    )
    .await;
    database.close_leaving_others().await?;
    let outcome = outcome?;
    if outcome.created {
        println!(
            "Created the Tallydesk account {email}, admin of \"{DEFAULT_TENANT}\". Sign in at {issuer}."
        );
    } else {
        println!(
            "Set the password of {email} and made it admin of \"{DEFAULT_TENANT}\"; its other sign-ins have ended."
        );
    }
    Ok(())
}

/// `rotate-keys`: makes a new signing key current and prints its id alone on standard output
/// (what it means goes to standard error).
pub async fn rotate_keys(config: &Config) -> anyhow::Result<()> {
    if !config.builtin_issuer_on() {
        tracing::warn!(
            "the built-in issuer is off (TALLYDESK_BUILTIN_ISSUER / TALLYDESK_OIDC_ISSUER): the \
             new key signs nothing until it is on"
        );
    }
    let database = Database::open(config).await?;
    let kid = crate::issuer::keys::rotate(&database.app, Utc::now()).await;
    database.close_leaving_others().await?;
    let kid = kid?;
    println!("{kid}");
    eprintln!(
        "The built-in issuer signs with the new key {kid} from now on. The previous keys stay \
         published for {} minutes, until every token they signed has expired.",
        crate::issuer::keys::RETIRED_KEY_KEPT.num_minutes()
    );
    Ok(())
}

/// The password from standard input when that is not a terminal (its first line), else
/// prompted for twice without echo.
fn read_password(email: &str) -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    let typed = if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))
            .context("reading the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut input = String::new();
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .context("reading the password from standard input")?;
        input.lines().next().unwrap_or_default().to_owned()
    };
    Password::parse("password", &typed, email).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Creates the account (or sets its password) and makes it admin of "Default", creating that
/// tenant and claiming the installation when nobody has yet.
pub async fn create_admin(
    pool: &PgPool,
    issuer: &str,
    email: &Email,
    name: Option<&str>,
    password: &Password,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let hash = password::hash(password).await?;
    let mut tx = pool.begin().await?;
    let existing = sqlx::query_scalar!(
        "select user_id from local_accounts where email = $1 for update",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (user, created) = match existing {
        Some(user) => {
            let user = UserId::from_uuid(user);
            sqlx::query!(
                "update local_accounts set password_hash = $2, password_changed_at = $3 where user_id = $1",
                user.as_uuid(),
                hash,
                now
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "update users set email_verified = true, name = coalesce($2, name) where id = $1",
                user.as_uuid(),
                name
            )
            .execute(&mut *tx)
            .await?;
            accounts::revoke_grants(&mut *tx, user, None, now).await?;
            accounts::end_sessions(&mut *tx, user, now).await?;
            (user, false)
        }
        None => {
            let user = accounts::create(
                &mut tx,
                NewAccount {
                    issuer,
                    email,
                    name,
                    // Whoever runs this on the server vouches for the address.
                    email_verified: true,
                    password_hash: hash,
                },
                now,
            )
            .await?;
            (user, true)
        }
    };
    crate::db::set_scope(&mut tx, user, None).await?;
    let claimed_by = sqlx::query_scalar!("select claimed_by from installation")
        .fetch_optional(&mut *tx)
        .await?;
    let tenant = match claimed_by {
        None => {
            sqlx::query!(
                "insert into installation (claimed_at, claimed_by) values ($1, $2)",
                now,
                user.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
            new_default_tenant(&mut tx, user, now).await?
        }
        Some(claimer) => {
            // "Default" is the tenant the installation's first user made.
            crate::db::set_scope(&mut tx, UserId::from_uuid(claimer), None).await?;
            let default = sqlx::query_scalar!(
                "select t.id from tenants t join memberships m on m.tenant_id = t.id
                  where m.user_id = $1 and t.name = $2 order by t.created_at limit 1",
                claimer,
                DEFAULT_TENANT
            )
            .fetch_optional(&mut *tx)
            .await?;
            match default {
                Some(tenant) => {
                    let tenant = TenantId::from_uuid(tenant);
                    crate::db::set_scope(&mut tx, user, Some(tenant)).await?;
                    sqlx::query!(
                        "insert into memberships (tenant_id, user_id, role, created_at)
                         values ($1, $2, 'admin', $3)
                         on conflict (tenant_id, user_id) do update set role = 'admin'",
                        tenant.as_uuid(),
                        user.as_uuid(),
                        now
                    )
                    .execute(&mut *tx)
                    .await?;
                    tenant
                }
                None => {
                    crate::db::set_scope(&mut tx, user, None).await?;
                    new_default_tenant(&mut tx, user, now).await?
                }
            }
        }
    };
    tx.commit().await?;
    Ok(Outcome {
        user,
        tenant,
        created,
    })
}

async fn new_default_tenant(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    admin: UserId,
    now: DateTime<Utc>,
) -> anyhow::Result<TenantId> {
    let tenant = TenantId::new();
    let name = TenantName::parse(DEFAULT_TENANT)?;
    crate::auth::create_tenant(tx, admin, tenant, &name, now)
        .await
        .map_err(|e| anyhow::anyhow!("creating the Default tenant: {e}"))?;
    Ok(tenant)
}
