//! `/oidc/invitations/{token}`: the one-time link of an invitation. Whoever holds it chooses a
//! name and password for a new Tallydesk account with the invited email, or confirms the
//! password of the account that already has that email, and joins the tenant with the invited
//! role, here on this page.
//!
//! An account made here is *not* marked as having a verified email. The link is handed to the
//! admin who invited, who passes it on however they like; opening it proves nothing about the
//! mailbox. Were the address marked verified, an admin could invite any address, open the
//! link themselves, and so collect the invitations other tenants send that address (signing
//! in joins the invitations of one's verified email). An account made here therefore joins
//! only the tenant whose link made it; further invitations are accepted through their own
//! links, with the account's password.

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::ticket::{Email, FieldError};
use tallydesk_shared::{TenantId, UserId};
use uuid::Uuid;

use super::accounts::{self, NewAccount};
use super::authorize::{Params, server_error};
use super::password::{self, Password};
use super::throttle::Attempt;
use super::{issuer_of, pages, secret_hash};
use crate::AppState;
use crate::activity::{self, NewActivity};

/// A pending invitation found by its link.
struct Pending {
    invitation: Uuid,
    tenant: TenantId,
    tenant_name: String,
    email: Email,
    role: String,
    /// The account that already has the invited email, if any.
    account: Option<accounts::Found>,
}

fn gone() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Invitation not found",
        "This invitation link was already used, has been revoked, or is mistyped. Ask the \
         person who invited you for a new one.",
    )
}

/// The pending invitation of a link, read in `tx` (row-level security scoped to its tenant).
async fn pending(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    db: &sqlx::PgPool,
    token: &str,
    lock: bool,
) -> anyhow::Result<Option<Pending>> {
    let link = if lock {
        sqlx::query!(
            "select invitation_id, tenant_id, email from invitation_links
              where token_hash = $1 and used_at is null for update",
            secret_hash(token)
        )
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| (r.invitation_id, r.tenant_id, r.email))
    } else {
        sqlx::query!(
            "select invitation_id, tenant_id, email from invitation_links
              where token_hash = $1 and used_at is null",
            secret_hash(token)
        )
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| (r.invitation_id, r.tenant_id, r.email))
    };
    let Some((invitation, tenant, email)) = link else {
        return Ok(None);
    };
    let tenant = TenantId::from_uuid(tenant);
    // Nobody is signed in here: act as no user, inside the invitation's tenant.
    crate::db::set_scope(tx, UserId::from_uuid(Uuid::nil()), Some(tenant)).await?;
    let row = sqlx::query!(
        "select i.role, t.name as tenant_name from invitations i join tenants t on t.id = i.tenant_id
          where i.id = $1 and i.accepted_at is null",
        invitation
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let email = Email::parse(&email)?;
    let account = accounts::find_by_email(db, email.as_str()).await?;
    Ok(Some(Pending {
        invitation,
        tenant,
        tenant_name: row.tenant_name,
        email,
        role: row.role,
        account,
    }))
}

pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if let Err(response) = issuer_of(&state) {
        return response;
    }
    let found = async {
        let mut tx = state.db.begin().await?;
        let found = pending(&mut tx, &state.db, &token, false).await?;
        tx.rollback().await?;
        Ok::<_, anyhow::Error>(found)
    }
    .await;
    match found {
        Ok(Some(p)) if p.account.is_some() => pages::html(
            StatusCode::OK,
            pages::invitation_existing_account(&p.tenant_name, p.email.as_str(), None),
        ),
        Ok(Some(p)) => pages::html(
            StatusCode::OK,
            pages::invitation_new_account(&p.tenant_name, p.email.as_str(), "", None),
        ),
        Ok(None) => gone(),
        Err(e) => {
            tracing::error!(error = ?e, "reading an invitation link failed");
            server_error()
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn accept(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let params = Params::parse(&body);
    let address = connection.map(|Extension(ConnectInfo(addr))| addr.ip());
    let now = state.clock.now();
    let result = async {
        let mut tx = state.db.begin().await?;
        let Some(p) = pending(&mut tx, &state.db, &token, true).await? else {
            return Ok(gone());
        };
        let user = match &p.account {
            Some(account) => {
                let again = |status, error: &str| {
                    pages::html(
                        status,
                        pages::invitation_existing_account(
                            &p.tenant_name,
                            p.email.as_str(),
                            Some(error),
                        ),
                    )
                };
                let attempt = Attempt::new(p.email.as_str(), address);
                if let Err(throttled) = attempt.begin(&state.db, issuer.limits(), now).await? {
                    return Ok(again(StatusCode::TOO_MANY_REQUESTS, &throttled.message()));
                }
                let candidate = params.get("password").unwrap_or_default();
                if !password::verify(Some(account.password_hash.clone()), candidate).await? {
                    return Ok(again(StatusCode::OK, "Wrong password."));
                }
                attempt.succeeded(&state.db).await?;
                account.user
            }
            None => {
                let name = params.get("name").unwrap_or_default().trim().to_owned();
                let again = |error: &str| {
                    pages::html(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        pages::invitation_new_account(
                            &p.tenant_name,
                            p.email.as_str(),
                            &name,
                            Some(error),
                        ),
                    )
                };
                let checked = person_name(&name).and_then(|_| {
                    Password::parse(
                        "password",
                        params.get("password").unwrap_or_default(),
                        p.email.as_str(),
                    )
                });
                let new_password = match checked {
                    Ok(pw) => pw,
                    Err(e) => return Ok(again(&capitalised(&e.to_string()))),
                };
                if params.get("password_again") != Some(new_password.expose()) {
                    return Ok(again("The two passwords differ."));
                }
                let hash = password::hash(&new_password).await?;
                accounts::create(
                    &mut tx,
                    NewAccount {
                        issuer: issuer.url(),
                        email: &p.email,
                        name: Some(&name),
                        // Holding the link does not prove the mailbox (see the module's doc).
                        email_verified: false,
                        password_hash: hash,
                    },
                    now,
                )
                .await?
            }
        };
        join(&mut tx, &p, user, now).await?;
        tx.commit().await?;
        state.identities.forget_all();
        tracing::info!(%user, tenant = %p.tenant, "accepted an invitation by its link");
        Ok::<_, anyhow::Error>(pages::message(
            StatusCode::OK,
            &format!("You have joined {}", p.tenant_name),
            &format!(
                "Open the Tallydesk app and sign in with your Tallydesk account, {}.",
                p.email
            ),
        ))
    }
    .await;
    result.unwrap_or_else(|e| {
        // A racing second acceptance of a new account fails on the unique email: the link is
        // spent either way.
        tracing::error!(error = ?e, "accepting an invitation failed");
        server_error()
    })
}

async fn join(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    p: &Pending,
    user: UserId,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    crate::db::set_scope(tx, user, Some(p.tenant)).await?;
    let joined = sqlx::query!(
        "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4)
         on conflict (tenant_id, user_id) do nothing",
        p.tenant.as_uuid(),
        user.as_uuid(),
        p.role,
        now
    )
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    sqlx::query!(
        "update invitations set accepted_at = $2, accepted_by = $3 where id = $1",
        p.invitation,
        now,
        user.as_uuid()
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "update invitation_links set used_at = $2 where invitation_id = $1",
        p.invitation,
        now
    )
    .execute(&mut **tx)
    .await?;
    if joined {
        activity::record(
            tx,
            p.tenant,
            user,
            now,
            NewActivity::member(ActivityAction::MemberJoined, user).after(
                json!({ "role": p.role, "email": p.email.as_str(), "via": "invitation_link" }),
            ),
        )
        .await?;
    }
    Ok(())
}

/// A person's name: 1 to 200 characters.
pub fn person_name(input: &str) -> Result<String, FieldError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(FieldError::Empty { field: "name" });
    }
    let len = name.chars().count();
    if len > 200 {
        return Err(FieldError::TooLong {
            field: "name",
            max: 200,
            len,
        });
    }
    Ok(name.to_owned())
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
