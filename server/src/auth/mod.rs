//! Who is calling, and in which tenant: bearer-token authentication and tenant scoping.

pub mod jwt;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sqlx::{Postgres, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::ErrorCode;
use tallydesk_shared::ticket::{Email, TenantName};
use tallydesk_shared::{Role, TenantId, UserId};

use crate::AppState;
use crate::activity::{self, NewActivity};
use crate::error::{ApiError, ApiResult};
use jwt::Claims;

/// The header that picks the tenant of a request.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// How long a resolved identity is trusted before the database is asked again (which also
/// picks up new invitations for the caller's email).
const IDENTITY_TTL: Duration = Duration::from_secs(60);

/// Users already resolved from their claims, so most requests skip the identity queries.
#[derive(Default)]
pub struct IdentityCache {
    entries: Mutex<HashMap<Subject, Resolved>>,
}

/// A user as their issuer knows them: (issuer, subject).
type Subject = (String, String);

struct Resolved {
    claims: Claims,
    user: UserId,
    at: Instant,
}

impl IdentityCache {
    fn get(&self, claims: &Claims) -> Option<UserId> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let hit = entries.get(&(claims.issuer.clone(), claims.subject.clone()))?;
        (hit.claims == *claims && hit.at.elapsed() < IDENTITY_TTL).then_some(hit.user)
    }

    fn put(&self, claims: &Claims, user: UserId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            entries.clear();
        }
        let resolved = Resolved {
            claims: claims.clone(),
            user,
            at: Instant::now(),
        };
        entries.insert((claims.issuer.clone(), claims.subject.clone()), resolved);
    }

    /// Forgets everyone, e.g. after an invitation, so invitees join on their next request.
    pub fn forget_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// An authenticated caller, known to the database.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub claims: Claims,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer_token(&parts.headers)?;
        let claims = state.verifier.verify(token, state.clock.now()).await.map_err(|e| {
            if e.is_issuer_fault() {
                // The token may be fine: its issuer's keys could not be had.
                tracing::warn!(error = %e, "cannot check a token: its issuer failed");
                return ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    "the identity provider could not be reached to check your sign-in; try again shortly",
                );
            }
            tracing::debug!(error = %e, "bearer token refused");
            ApiError::unauthorized(e.code(), e.to_string())
        })?;
        if !grant_is_active(state, &claims).await? {
            return Err(ApiError::unauthorized(
                ErrorCode::TokenRevoked,
                "this sign-in was ended (signed out, password changed, or a token reused): sign in again",
            ));
        }
        let user = match state.identities.get(&claims) {
            Some(user) => user,
            None => {
                let user = resolve_user(state, &claims).await?;
                state.identities.put(&claims, user);
                user
            }
        };
        Ok(Caller { user, claims })
    }
}

/// Whether a token of the built-in issuer still belongs to a live grant (tokens of other
/// issuers cannot be revoked here and always pass).
pub async fn grant_is_active(state: &AppState, claims: &Claims) -> Result<bool, sqlx::Error> {
    let Some(issuer) = &state.issuer else {
        return Ok(true);
    };
    if claims.issuer != issuer.url() {
        return Ok(true);
    }
    let Some(grant) = claims
        .grant
        .as_deref()
        .and_then(|g| g.parse::<uuid::Uuid>().ok())
    else {
        return Ok(false);
    };
    let active = sqlx::query_scalar!(
        "select exists(select 1 from issuer_grants where id = $1 and revoked_at is null) as \"active!\"",
        grant
    )
    .fetch_one(&state.db)
    .await?;
    Ok(active)
}

fn bearer_token(headers: &HeaderMap) -> ApiResult<&str> {
    let missing = || {
        ApiError::unauthorized(
            ErrorCode::Unauthenticated,
            "sign in: send Authorization: Bearer <access token>",
        )
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// Finds or records the user behind verified claims, joins the tenants that invited their
/// verified email, and makes the very first user of an empty installation admin of "Default".
#[tracing::instrument(skip_all, err)]
async fn resolve_user(state: &AppState, claims: &Claims) -> ApiResult<UserId> {
    let verified_email = claims
        .email
        .as_deref()
        .filter(|_| claims.email_verified)
        .and_then(|e| Email::parse(e).ok());
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // Most calls find the user as they were: read first, so concurrent first requests of one
    // user don't queue on a row lock to rewrite the same values.
    let known = sqlx::query!(
        "select id, email, email_verified, name from users where issuer = $1 and subject = $2",
        claims.issuer,
        claims.subject,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let user = match known {
        Some(u)
            if u.email == claims.email
                && u.email_verified == claims.email_verified
                && u.name == claims.name =>
        {
            u.id
        }
        _ => {
            sqlx::query_scalar!(
                "insert into users (id, issuer, subject, email, email_verified, name, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (issuer, subject) do update
                    set email = excluded.email, email_verified = excluded.email_verified,
                        name = excluded.name
                 returning id",
                UserId::new().as_uuid(),
                claims.issuer,
                claims.subject,
                claims.email,
                claims.email_verified,
                claims.name,
                now,
            )
            .fetch_one(&mut *tx)
            .await?
        }
    };
    let user = UserId::from_uuid(user);
    crate::db::set_scope(&mut tx, user, None).await?;

    if let Some(email) = &verified_email {
        accept_invitations(&mut tx, user, email, now).await?;
    }

    let claimed = sqlx::query_scalar!("select exists(select 1 from installation) as \"claimed!\"")
        .fetch_one(&mut *tx)
        .await?;
    let first = !claimed
        && sqlx::query_scalar!(
            "insert into installation (claimed_at, claimed_by) values ($1, $2)
             on conflict do nothing returning claimed_by",
            now,
            user.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if first {
        let name = TenantName::parse("Default")?;
        create_tenant(&mut tx, user, TenantId::new(), &name, now).await?;
        tracing::info!(%user, "first user claimed the installation as admin of Default");
    }
    tx.commit().await?;
    Ok(user)
}

async fn accept_invitations(
    tx: &mut Transaction<'static, Postgres>,
    user: UserId,
    email: &Email,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    sqlx::query!(
        "select set_config('tallydesk.verified_email', $1, true)",
        email.as_str()
    )
    .fetch_one(&mut **tx)
    .await?;
    let pending = sqlx::query!(
        "select id, tenant_id, role from invitations where email = $1 and accepted_at is null",
        email.as_str()
    )
    .fetch_all(&mut **tx)
    .await?;
    for invitation in pending {
        let tenant = TenantId::from_uuid(invitation.tenant_id);
        crate::db::set_scope(tx, user, Some(tenant)).await?;
        let joined = sqlx::query!(
            "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4)
             on conflict (tenant_id, user_id) do nothing",
            tenant.as_uuid(),
            user.as_uuid(),
            invitation.role,
            now,
        )
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        sqlx::query!(
            "update invitations set accepted_at = $2, accepted_by = $3 where id = $1",
            invitation.id,
            now,
            user.as_uuid(),
        )
        .execute(&mut **tx)
        .await?;
        if joined {
            activity::record(
                tx,
                tenant,
                user,
                now,
                NewActivity::member(ActivityAction::MemberJoined, user)
                    .after(serde_json::json!({ "role": invitation.role, "email": email.as_str() })),
            )
            .await?;
        }
    }
    crate::db::set_scope(tx, user, None).await?;
    Ok(())
}

/// Creates a tenant with `admin` as its first admin, inside the caller's transaction.
pub async fn create_tenant(
    tx: &mut Transaction<'static, Postgres>,
    admin: UserId,
    tenant: TenantId,
    name: &TenantName,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    crate::db::set_scope(tx, admin, Some(tenant)).await?;
    sqlx::query!(
        "insert into tenants (id, name, created_at) values ($1, $2, $3)",
        tenant.as_uuid(),
        name.as_str(),
        now
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into tenant_counters (tenant_id) values ($1)",
        tenant.as_uuid()
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, 'admin', $3)",
        tenant.as_uuid(),
        admin.as_uuid(),
        now
    )
    .execute(&mut **tx)
    .await?;
    activity::record(
        tx,
        tenant,
        admin,
        now,
        NewActivity::member(ActivityAction::TenantCreated, admin)
            .after(serde_json::json!({ "name": name.as_str(), "role": "admin" })),
    )
    .await?;
    Ok(())
}

/// A request acting in one tenant: the caller, their role there, and the open transaction
/// that row-level security scopes to that tenant. Commit it to keep the request's changes.
pub struct Scope {
    pub tx: Transaction<'static, Postgres>,
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
}

impl Scope {
    pub async fn commit(self) -> ApiResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Whether the role may take `action` at all (on some records at least).
    pub fn role_may(&self, action: tallydesk_shared::Action) -> bool {
        tallydesk_shared::permission::access(self.role, action) != tallydesk_shared::Access::Denied
    }

    /// Refuses the request unless the role may take `action` at all.
    pub fn require(&self, action: tallydesk_shared::Action) -> ApiResult<()> {
        if !self.role_may(action) {
            return Err(ApiError::forbidden(format!(
                "{}s may not do this here ({action:?})",
                self.role
            )));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let requested = match parts.headers.get(TENANT_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<TenantId>().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            ErrorCode::InvalidTenant,
                            "X-Tenant-Id must be a tenant id (UUID)",
                        )
                    })?,
            ),
        };
        let mut tx = crate::db::begin(&state.db, caller.user, None).await?;
        let memberships = sqlx::query!(
            "select tenant_id, role from memberships where user_id = $1",
            caller.user.as_uuid()
        )
        .fetch_all(&mut *tx)
        .await?;
        let (tenant, role) = match requested {
            Some(tenant) => {
                let m = memberships
                    .iter()
                    .find(|m| m.tenant_id == tenant.as_uuid())
                    .ok_or_else(|| {
                        ApiError::new(
                            axum::http::StatusCode::FORBIDDEN,
                            ErrorCode::NotAMember,
                            "you are not a member of that tenant",
                        )
                    })?;
                (tenant, m.role.clone())
            }
            None => match memberships.as_slice() {
                [only] => (TenantId::from_uuid(only.tenant_id), only.role.clone()),
                [] => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::FORBIDDEN,
                        ErrorCode::NoMembership,
                        "you are not a member of any tenant yet: ask an admin to invite you",
                    ));
                }
                _ => {
                    return Err(ApiError::bad_request(
                        ErrorCode::TenantRequired,
                        "you belong to several tenants: pick one with the X-Tenant-Id header",
                    ));
                }
            },
        };
        let role: Role = role
            .parse()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        crate::db::set_scope(&mut tx, caller.user, Some(tenant)).await?;
        Ok(Scope {
            tx,
            tenant,
            user: caller.user,
            role,
        })
    }
}
