//! `PUT` and `GET /api/v1/blobs/{sha256}`: receipt images, content-addressed and per tenant.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use tallydesk_shared::api::{ErrorCode, ReceiptRef};
use tallydesk_shared::{Access, Action};

use super::extract::Path;
use crate::AppState;
use crate::auth::Scope;
use crate::blobs::{self, MAX_BLOB_BYTES, Sha256};
use crate::error::{ApiError, ApiResult};

/// An image's bytes, as the body of a request or response.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(#[allow(dead_code)] Vec<u8>);

fn digest(text: &str) -> ApiResult<Sha256> {
    Sha256::parse(text).map_err(|m| ApiError::field("sha256", format!("sha256: {m}")))
}

#[utoipa::path(
    put, path = "/api/v1/blobs/{sha256}", tag = "blobs",
    description = "Uploads a receipt image under the lowercase hex SHA-256 of its bytes, for \
        members who may file expenses (requesters included). Idempotent: the same bytes again \
        answer 200 with what is stored; the first upload answers 201. The body's digest must \
        equal the path's (422 `hash_mismatch`); at most 20 MiB (413 `payload_too_large`); \
        `Content-Type` one of image/jpeg, image/png, image/webp, image/heic, image/tiff (415 \
        `unsupported_media_type`). Upload before pushing the `expense.create` that names it: an \
        expense names only a receipt its submitter uploaded in the tenant, so each submitter \
        uploads (again) the bytes they file, even when another member stored them first.",
    params(("sha256" = String, Path, description = "64 lowercase hex digits"), crate::http::docs::TenantHeader),
    request_body(content = ImageBytes, content_type = "image/jpeg"),
    responses(
        (status = 201, body = ReceiptRef, description = "stored"),
        (status = 200, body = ReceiptRef, description = "stored already"),
        (status = 413, body = tallydesk_shared::api::ErrorBody),
        (status = 415, body = tallydesk_shared::api::ErrorBody),
        (status = 422, body = tallydesk_shared::api::ErrorBody, description = "`hash_mismatch` or a malformed digest"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn put(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<ReceiptRef>)> {
    scope.require(Action::SubmitExpense)?;
    let sha256 = digest(&sha256)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = blobs::image_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type must be one of {}, not {content_type:?}",
                blobs::IMAGE_TYPES.join(", ")
            ),
        )
    })?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!("a blob is at most {} MiB", MAX_BLOB_BYTES >> 20),
            )
        } else {
            ApiError::bad_request(ErrorCode::InvalidBody, rejection.body_text())
        }
    })?;
    let actual = Sha256::of(&bytes);
    if actual != sha256 {
        return Err(ApiError::invalid(
            ErrorCode::HashMismatch,
            format!("the body's SHA-256 is {actual}, not {sha256}: was it cut short?"),
        ));
    }
    let stored = sqlx::query!(
        "select media_type, size from blobs where sha256 = $1",
        sha256.as_str()
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    let now = state.clock.now();
    if let Some(stored) = stored {
        blobs::record_upload(&mut scope.tx, scope.tenant, &sha256, scope.user, now).await?;
        scope.commit().await?;
        return Ok((
            StatusCode::OK,
            axum::Json(ReceiptRef {
                sha256: sha256.to_string(),
                media_type: stored.media_type,
                size: stored.size,
            }),
        ));
    }
    let size = i64::try_from(bytes.len()).map_err(anyhow::Error::from)?;
    // The bytes first: a row means the blob can be read. A concurrent upload of the same
    // bytes writes the same object.
    state.blobs.put(scope.tenant, &sha256, bytes).await?;
    let inserted = sqlx::query_scalar!(
        "insert into blobs (tenant_id, sha256, media_type, size, uploaded_by, uploaded_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id, sha256) do nothing
         returning size",
        scope.tenant.as_uuid(),
        sha256.as_str(),
        media_type,
        size,
        scope.user.as_uuid(),
        now,
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    blobs::record_upload(&mut scope.tx, scope.tenant, &sha256, scope.user, now).await?;
    scope.commit().await?;
    let status = if inserted.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(ReceiptRef {
            sha256: sha256.to_string(),
            media_type: media_type.to_owned(),
            size,
        }),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/blobs/{sha256}", tag = "blobs",
    description = "A receipt image, for members who may see an expense that names it \
        (requesters: on their own tickets); 404 otherwise, and while it is not uploaded yet. \
        Immutable: cache it for good.",
    params(("sha256" = String, Path, description = "64 lowercase hex digits"), crate::http::docs::TenantHeader),
    responses(
        (status = 200, content_type = "image/*", body = ImageBytes),
        (status = 404, body = tallydesk_shared::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn get(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(sha256): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let sha256 = digest(&sha256)?;
    let tenant = scope.tenant;
    let all = tallydesk_shared::permission::access(scope.role, Action::ViewTicket);
    let visible = sqlx::query_scalar!(
        "select b.media_type from blobs b
          where b.sha256 = $1
            and exists (select 1 from expenses e join tickets t on t.id = e.ticket_id
                         where e.receipt_sha256 = b.sha256 and ($2 or t.requester_id = $3))",
        sha256.as_str(),
        all == Access::Allowed,
        scope.user.as_uuid(),
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    scope.commit().await?;
    let media_type = match (visible, all) {
        (Some(media_type), Access::Allowed | Access::OwnTickets) => media_type,
        _ => return Err(ApiError::not_found("blob")),
    };
    let bytes = state
        .blobs
        .get(tenant, &sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("blob"))?;
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
            (header::ETAG, format!("\"{sha256}\"")),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    ))
}
