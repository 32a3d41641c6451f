//! Health, the caller's identity and memberships, and new tenants.

use axum::extract::State;
use axum::http::StatusCode;
use tallydesk_shared::TenantId;
use tallydesk_shared::api::{CreateTenant, Health, Me, Membership, Tenant, UserSummary};
use tallydesk_shared::ticket::TenantName;

use super::extract::Json;
use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};

#[utoipa::path(
    get, path = "/api/v1/health", tag = "server",
    description = "200 when the server and its database answer, 503 otherwise.",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let ping = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sqlx::query_scalar!("select 1 as \"one!\"").fetch_one(&state.db),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (
            StatusCode::OK,
            axum::Json(Health {
                status: "ok".into(),
                database: "ok".into(),
            }),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("health check: database timed out");
            unavailable()
        }
    }
}

fn unavailable() -> (StatusCode, axum::Json<Health>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(Health {
            status: "unavailable".into(),
            database: "unreachable".into(),
        }),
    )
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "identity",
    description = "The signed-in user and their memberships. Answers 200 even with no membership.",
    responses((status = 200, body = Me), (status = 401, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Me>> {
    let mut tx = crate::db::begin(&state.db, caller.user, None).await?;
    let user = sqlx::query!(
        "select id, email, name from users where id = $1",
        caller.user.as_uuid()
    )
    .fetch_one(&mut *tx)
    .await?;
    let memberships = sqlx::query!(
        "select m.tenant_id, t.name, m.role from memberships m join tenants t on t.id = m.tenant_id
          where m.user_id = $1 order by lower(t.name), t.id",
        caller.user.as_uuid()
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let memberships = memberships
        .into_iter()
        .map(|m| {
            Ok(Membership {
                tenant_id: m.tenant_id.into(),
                tenant_name: m.name,
                role: m
                    .role
                    .parse()
                    .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(axum::Json(Me {
        user: UserSummary {
            id: user.id.into(),
            email: user.email,
            name: user.name,
        },
        memberships,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/tenants", tag = "identity",
    description = "Creates a tenant; the caller becomes its admin.",
    request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 422, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    let name = TenantName::parse(&body.name)?;
    let id = TenantId::new();
    let mut tx = crate::db::begin(&state.db, caller.user, None).await?;
    auth::create_tenant(&mut tx, caller.user, id, &name, state.clock.now()).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Tenant {
            id,
            name: name.into_inner(),
        }),
    ))
}
