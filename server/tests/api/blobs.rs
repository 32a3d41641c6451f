//! Receipt images: uploaded content-addressed into the local blob store, idempotently and
//! checked, and read back only by those who may see an expense that names them.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tallydesk_server::blobs::BlobStore;
use uuid::Uuid;

use tallydesk_testkit::{Reply, Team, TestApp, User};

/// A directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("tallydesk-blobs-{}", Uuid::now_v7()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that stand for a photographed receipt (the server does not decode images).
pub(crate) fn receipt(seed: u8) -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0 JFIF receipt ".to_vec();
    bytes.extend((0..4096u32).map(|i| (i as u8).wrapping_mul(seed)));
    bytes
}

pub(crate) async fn put_blob(
    user: &User,
    sha256: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Reply {
    let mut request = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/blobs/{sha256}"))
        .header("authorization", format!("Bearer {}", user.token))
        .header("content-type", content_type);
    if let Some(tenant) = &user.tenant {
        request = request.header("x-tenant-id", tenant);
    }
    user.app
        .send(request.body(Body::from(bytes)).expect("request"))
        .await
}

/// The status, content type and bytes of a GET of the blob.
async fn get_blob(user: &User, sha256: &str) -> (StatusCode, String, Vec<u8>) {
    let mut request = Request::builder()
        .uri(format!("/api/v1/blobs/{sha256}"))
        .header("authorization", format!("Bearer {}", user.token));
    if let Some(tenant) = &user.tenant {
        request = request.header("x-tenant-id", tenant);
    }
    let response = tower::ServiceExt::oneshot(
        user.app.router.clone(),
        request.body(Body::empty()).expect("request"),
    )
    .await
    .expect("router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, content_type, bytes)
}

async fn file_expense(user: &User, ticket: &str, sha256: &str, size: usize) {
    let reply = user
        .post(
            "/api/v1/sync/push",
            json!({ "client_id": Uuid::now_v7(), "mutations": [{ "seq": 1, "op": "expense.create",
                "args": { "id": Uuid::now_v7(), "ticket_id": ticket, "merchant": "Taxi Lisboa",
                          "spent_on": "2026-11-20", "currency": "EUR", "amount_minor": 1800,
                          "receipt": { "sha256": sha256, "media_type": "image/png", "size": size } } }] }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["results"][0]["status"], "applied", "{reply}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_receipt_uploads_once_and_is_read_by_who_may_see_its_expense(pool: PgPool) {
    let scratch = Scratch::new();
    let app = TestApp::new(pool)
        .await
        .with_blobs(BlobStore::local(&scratch.0).expect("a local blob store"));
    let team = Team::new(&app).await;
    let bytes = receipt(7);
    let sha = hex(&bytes);

    let first = put_blob(&team.requester, &sha, "image/png", bytes.clone()).await;
    let stored = first.expect(StatusCode::CREATED);
    assert_eq!(
        stored,
        json!({ "sha256": sha, "media_type": "image/png", "size": bytes.len() })
    );
    let again = put_blob(&team.requester, &sha, "image/png", bytes.clone()).await;
    assert_eq!(
        again.expect(StatusCode::OK),
        stored,
        "the same bytes again: the same answer"
    );
    let on_disk = scratch.0.join(&team.tenant).join(&sha[..2]).join(&sha);
    assert_eq!(
        std::fs::read(&on_disk).expect("the blob is a file under the tenant's prefix"),
        bytes
    );

    assert_eq!(
        get_blob(&team.agent, &sha).await.0,
        StatusCode::NOT_FOUND,
        "no expense names it yet"
    );
    let claim = team.requester.create_ticket("Expense claim: taxi").await;
    file_expense(
        &team.requester,
        claim["id"].as_str().unwrap(),
        &sha,
        bytes.len(),
    )
    .await;

    for reader in [&team.requester, &team.agent, &team.observer] {
        let (status, content_type, body) = get_blob(reader, &sha).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "image/png", "the type it was uploaded with");
        assert_eq!(body, bytes);
    }

    let other_requester = app.user("requester-2").in_tenant(&team.tenant);
    team.admin
        .post(
            "/api/v1/invitations",
            json!({ "email": "requester-2@example.com", "role": "requester" }),
        )
        .await
        .expect(StatusCode::CREATED);
    other_requester
        .get("/api/v1/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        get_blob(&other_requester, &sha).await.0,
        StatusCode::NOT_FOUND,
        "another requester's receipt is invisible"
    );
    let other_tenant = Team::other_tenant(&app, "elsewhere").await;
    assert_eq!(
        get_blob(&other_tenant, &sha).await.0,
        StatusCode::NOT_FOUND,
        "and so is another tenant's"
    );
    assert_eq!(
        put_blob(&other_tenant, &sha, "image/png", bytes.clone())
            .await
            .status,
        StatusCode::CREATED,
        "the same bytes in another tenant are that tenant's own upload"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn uploads_are_checked(pool: PgPool) {
    let scratch = Scratch::new();
    let app = TestApp::new(pool)
        .await
        .with_blobs(BlobStore::local(&scratch.0).expect("a local blob store"));
    let team = Team::new(&app).await;
    let bytes = receipt(3);
    let sha = hex(&bytes);

    let cut = put_blob(&team.agent, &sha, "image/jpeg", bytes[..100].to_vec()).await;
    assert_eq!(cut.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(cut.code(), "hash_mismatch", "{:?}", cut.body);

    let pdf = put_blob(&team.agent, &sha, "application/pdf", bytes.clone()).await;
    assert_eq!(pdf.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(pdf.code(), "unsupported_media_type");

    let huge = vec![0u8; 21 << 20];
    let too_big = put_blob(&team.agent, &hex(&huge), "image/tiff", huge).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_big.code(), "payload_too_large", "{:?}", too_big.body);

    let observer = put_blob(&team.observer, &sha, "image/jpeg", bytes.clone()).await;
    assert_eq!(
        observer.status,
        StatusCode::FORBIDDEN,
        "observers file no expenses"
    );

    let bad_path = put_blob(&team.agent, "../../etc/passwd", "image/jpeg", bytes.clone()).await;
    assert_ne!(bad_path.status, StatusCode::CREATED);
    let upper = put_blob(&team.agent, &sha.to_uppercase(), "image/jpeg", bytes).await;
    assert_eq!(upper.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(upper.code(), "invalid_field");

    let files = walk(&scratch.0);
    assert!(files.is_empty(), "nothing refused was stored: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
