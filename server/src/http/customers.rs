//! Customers' routes: the operations are in [`crate::customers`].

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tallydesk_shared::CustomerId;
use tallydesk_shared::api::{CreateCustomer, Customer, Page, PatchCustomer};

use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::auth::Scope;
use crate::customers;
use crate::error::ApiResult;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Matches the start of a name, email or company, case-insensitively.
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/customers", tag = "customers",
    params(ListParams, crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Customer>)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list(
    mut scope: Scope,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Customer>>> {
    let page = customers::list(
        &mut scope,
        params.q.as_deref(),
        params.limit,
        params.cursor.as_deref(),
    )
    .await?;
    scope.commit().await?;
    Ok(axum::Json(page))
}

#[utoipa::path(
    post, path = "/api/v1/customers", tag = "customers",
    request_body = CreateCustomer,
    params(crate::http::docs::TenantHeader),
    responses((status = 201, body = Customer), (status = 422, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<CreateCustomer>,
) -> ApiResult<(StatusCode, axum::Json<Customer>)> {
    let customer =
        customers::create(&mut scope, CustomerId::new(), &body, state.clock.now()).await?;
    scope.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(customer)))
}

#[utoipa::path(
    get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = CustomerId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Customer), (status = 404, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn get(mut scope: Scope, Path(id): Path<CustomerId>) -> ApiResult<axum::Json<Customer>> {
    let customer = customers::get(&mut scope, id).await?;
    scope.commit().await?;
    Ok(axum::Json(customer))
}

#[utoipa::path(
    patch, path = "/api/v1/customers/{id}", tag = "customers",
    request_body = PatchCustomer,
    params(("id" = CustomerId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Customer), (status = 422, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn update(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<CustomerId>,
    Json(body): Json<PatchCustomer>,
) -> ApiResult<axum::Json<Customer>> {
    let customer = customers::update(&mut scope, id, &body, state.clock.now()).await?;
    scope.commit().await?;
    Ok(axum::Json(customer))
}

#[utoipa::path(
    delete, path = "/api/v1/customers/{id}", tag = "customers",
    description = "Admins only. The customer's tickets stay, without a customer.",
    params(("id" = CustomerId, Path), crate::http::docs::TenantHeader),
    responses((status = 204), (status = 403, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn delete(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<CustomerId>,
) -> ApiResult<StatusCode> {
    customers::delete(&mut scope, id, state.clock.now()).await?;
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
