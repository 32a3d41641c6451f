//! Bad input gets a clear `{code, message}` error with the right status, and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp};

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn invalid_ticket_fields_are_refused_naming_the_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let cases = [
        (
            json!({ "title": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
        ),
        (
            json!({ "title": "x".repeat(201) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
        ),
        (
            json!({ "title": "ok", "description": "x".repeat(20_001) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
        (
            json!({ "title": "ok", "priority": "critical" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "priority",
        ),
        (
            json!({ "title": "ok", "category": "travel" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
        ),
        (
            json!({ "title": "ok", "colour": "red" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            json!({ "description": "no title" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
        ),
        (
            json!({ "title": 42 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
        ),
        (
            json!({ "title": "ok", "customer_id": uuid::Uuid::now_v7() }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_id",
        ),
        (
            json!({ "title": "ok", "customer_id": "nope" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_id",
        ),
    ];
    for (body, status, field) in cases {
        let reply = team.agent.post("/api/v1/tickets", body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "the message names {field}: {message}"
        );
        assert!(!reply.code().is_empty());
    }
    let page = team
        .agent
        .get("/api/v1/tickets")
        .await
        .expect(StatusCode::OK);
    assert_eq!(page["items"], json!([]), "no refused ticket was saved");

    let ticket = team.agent.create_ticket("valid").await;
    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    let reply = team
        .agent
        .patch(&path, json!({ "title": "fine", "priority": "bogus" }))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let after = team.agent.get(&path).await.expect(StatusCode::OK);
    assert_eq!(
        after["title"], "valid",
        "a refused patch changes no field at all"
    );
    assert_eq!(after["version"], 1);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn malformed_requests_get_clear_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let token = team.agent.token.clone();
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Body| {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.body(body).unwrap()
    };

    let reply = app
        .send(raw(
            Method::POST,
            "/api/v1/tickets",
            Some("application/json"),
            Body::from("{not json"),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_body");

    let reply = app
        .send(raw(
            Method::POST,
            "/api/v1/tickets",
            None,
            Body::from(r#"{"title":"x"}"#),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!(
        r#"{{"title":"x","description":"{}"}}"#,
        "a".repeat(1_100_000)
    );
    let reply = app
        .send(raw(
            Method::POST,
            "/api/v1/tickets",
            Some("application/json"),
            Body::from(huge),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "payload_too_large");

    for (path, code) in [
        ("/api/v1/tickets/not-a-uuid", "invalid_path"),
        ("/api/v1/tickets?limit=0", "invalid_query"),
        ("/api/v1/tickets?limit=201", "invalid_query"),
        ("/api/v1/tickets?status=lost", "invalid_query"),
        ("/api/v1/tickets?sort=title", "invalid_query"),
        ("/api/v1/tickets?assignee=bob", "invalid_query"),
        ("/api/v1/tickets?cursor=garbage", "invalid_cursor"),
        ("/api/v1/tickets?unknown=1", "invalid_query"),
    ] {
        let reply = team.agent.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            reply.body
        );
        assert_eq!(reply.code(), code, "{path}");
    }
    let page = team
        .agent
        .get("/api/v1/tickets?sort=created_at&limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    team.agent.create_ticket("one").await;
    team.agent.create_ticket("two").await;
    let page = team
        .agent
        .get("/api/v1/tickets?sort=created_at&limit=1")
        .await
        .expect(StatusCode::OK);
    let cursor = page["next_cursor"].as_str().unwrap();
    let reply = team
        .agent
        .get(&format!("/api/v1/tickets?sort=priority&cursor={cursor}"))
        .await;
    assert_eq!(
        reply.code(),
        "invalid_cursor",
        "a cursor only continues its own sort"
    );

    let reply = team.agent.get("/api/v1/nowhere").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");

    for (body, field) in [
        (json!({ "email": "not-an-email", "role": "agent" }), "email"),
        (json!({ "email": "a@example.com", "role": "owner" }), "role"),
    ] {
        let reply = team.admin.post("/api/v1/invitations", body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body["message"].as_str().unwrap().contains(field));
    }
    let reply = team
        .agent
        .post("/api/v1/customers", json!({ "name": "X", "email": "nope" }))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn health_answers_and_the_docs_are_served_offline(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let health = app
        .call(Method::GET, "/api/v1/health", None, None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(health["database"], "ok");

    let spec = app
        .call(Method::GET, "/openapi.json", None, None, None)
        .await
        .expect(StatusCode::OK);
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{id}/transitions",
        "/api/v1/me",
        "/api/v1/invitations",
        "/api/v1/invitations/{id}",
        "/api/v1/auth/config",
        "/api/v1/accounts",
        "/api/v1/me/password",
        "/api/v1/tickets/{id}/expenses",
        "/api/v1/blobs/{sha256}",
    ] {
        assert!(spec["paths"][path].is_object(), "the spec documents {path}");
    }
    for schema in [
        "AuthConfig",
        "AuthProvider",
        "CreateAccount",
        "ChangePassword",
        "Expense",
        "ExpenseCreate",
        "ExpenseDecide",
        "ReceiptRef",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "the spec describes {schema}"
        );
    }
    let docs = app.call(Method::GET, "/docs/", None, None, None).await;
    assert_eq!(docs.status, StatusCode::OK);
    let html = docs.body.as_str().unwrap_or_default();
    assert!(html.contains("swagger"), "the docs page is Swagger UI");
    assert!(!html.contains("https://"), "no asset comes from a CDN");
    let script = app
        .call(Method::GET, "/docs/swagger-ui-bundle.js", None, None, None)
        .await;
    assert_eq!(
        script.status,
        StatusCode::OK,
        "assets are served by the binary"
    );

    app.app_pool.close().await;
    let down = app
        .call(Method::GET, "/api/v1/health", None, None, None)
        .await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "health is 503 when the database is gone"
    );
}
