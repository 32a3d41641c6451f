//! Tenant isolation, enforced by Postgres row-level security and visible on every route.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp};

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn another_tenants_records_are_not_found_on_every_route(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = team
        .requester
        .create_ticket("Secret merger paperwork")
        .await;
    let ticket_id = ticket["id"].as_str().unwrap();
    team.agent
        .post(
            &format!("/api/v1/tickets/{ticket_id}/comments"),
            json!({ "body": "confidential" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let customer = team
        .agent
        .post("/api/v1/customers", json!({ "name": "Initech" }))
        .await
        .expect(StatusCode::CREATED);
    let customer_id = customer["id"].as_str().unwrap();
    let member_id = team.agent.user_id().await;

    let outsider = Team::other_tenant(&app, "mallory").await;
    outsider.create_ticket("Mallory's own ticket").await;
    let routes = [
        (Method::GET, format!("/api/v1/tickets/{ticket_id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tickets/{ticket_id}"),
            Some(json!({ "title": "pwned" })),
        ),
        (Method::DELETE, format!("/api/v1/tickets/{ticket_id}"), None),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket_id}/transitions"),
            Some(json!({ "to": "resolved" })),
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket_id}/views"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{ticket_id}/comments"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket_id}/comments"),
            Some(json!({ "body": "hi" })),
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{ticket_id}/activity"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/customers/{customer_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/customers/{customer_id}"),
            Some(json!({ "name": "x" })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{customer_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/members/{member_id}"),
            Some(json!({ "role": "requester" })),
        ),
        (Method::DELETE, format!("/api/v1/members/{member_id}"), None),
    ];
    for (method, path, body) in routes {
        let reply = outsider.call(method.clone(), &path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            reply.body
        );
    }
    let missing = format!("/api/v1/tickets/{}", uuid::Uuid::now_v7());
    let reply = team.admin.get(&missing).await;
    let foreign = outsider.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    assert_eq!(
        reply.body, foreign.body,
        "a foreign record looks exactly like a missing one"
    );

    for query in [
        "",
        "?q=merger",
        "?q=confidential",
        "?limit=1",
        "?sort=-priority",
        "?status=open",
    ] {
        let page = outsider
            .get(&format!("/api/v1/tickets{query}"))
            .await
            .expect(StatusCode::OK);
        let titles: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap())
            .collect();
        assert!(
            titles.iter().all(|t| *t == "Mallory's own ticket"),
            "{query}: {titles:?}"
        );
    }
    // A cursor from one tenant pages nothing of another.
    team.agent.create_ticket("second").await;
    let page = team
        .agent
        .get("/api/v1/tickets?limit=1")
        .await
        .expect(StatusCode::OK);
    let cursor = page["next_cursor"].as_str().unwrap();
    let leaked = outsider
        .get(&format!("/api/v1/tickets?limit=1&cursor={cursor}"))
        .await
        .expect(StatusCode::OK);
    assert!(
        leaked["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["title"] == "Mallory's own ticket")
    );

    for path in [
        "/api/v1/customers",
        "/api/v1/members",
        "/api/v1/invitations",
    ] {
        let page = outsider.get(path).await.expect(StatusCode::OK);
        let text = page.to_string();
        assert!(
            !text.contains("Initech") && !text.contains("agent@example.com"),
            "{path}: {text}"
        );
    }

    let intruding = outsider
        .in_tenant(&team.tenant)
        .get("/api/v1/tickets")
        .await;
    assert_eq!(intruding.status, StatusCode::FORBIDDEN);
    assert_eq!(intruding.code(), "not_a_member");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_database_itself_hides_other_tenants_from_the_request_role(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let team = Team::new(&app).await;
    team.requester.create_ticket("tenant one").await;
    let other = Team::other_tenant(&app, "zed").await;
    other.create_ticket("tenant two").await;

    let mut conn = app.app_pool.acquire().await.unwrap();
    let (user, bypass): (String, bool) = sqlx::query_as(
        "select current_user::text, rolbypassrls from pg_roles where rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(user, "tallydesk_app", "requests run as the request role");
    assert!(!bypass, "the request role cannot bypass row-level security");
    let owned: i64 = sqlx::query_scalar(
        "select count(*) from pg_class c join pg_roles r on r.oid = c.relowner
          where r.rolname = 'tallydesk_app'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(owned, 0, "the request role owns nothing");
    let visible: i64 = sqlx::query_scalar("select count(*) from tickets")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(visible, 0, "with no tenant set, no ticket is visible");
    let search_table = sqlx::query("select * from ticket_search")
        .execute(&mut *conn)
        .await;
    assert!(
        search_table.is_err(),
        "search documents are reachable only through tallydesk_search()"
    );
    let found: Vec<uuid::Uuid> = sqlx::query_scalar("select tallydesk_search('tenant', true)")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(found.is_empty(), "with no tenant set, search finds nothing");

    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    sqlx::query("select set_config('tallydesk.tenant_id', $1, true)")
        .bind(&team.tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    let titles: Vec<String> = sqlx::query_scalar("select title from tickets")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        titles,
        ["tenant one"],
        "even an unfiltered query sees one tenant"
    );
    let found: Vec<uuid::Uuid> = sqlx::query_scalar("select tallydesk_search('tenant', true)")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "search sees this tenant's ticket, not tenant two's"
    );
    let foreign_insert = sqlx::query(
        "insert into customers (id, tenant_id, name) values (gen_random_uuid(), gen_random_uuid(), 'x')",
    )
    .execute(&mut *tx)
    .await;
    assert!(
        foreign_insert.is_err(),
        "writing into another tenant is refused by the policy"
    );
    tx.rollback().await.unwrap();

    let unforced: Vec<String> = sqlx::query_scalar(
        "select relname::text from pg_class
          where relname in ('tenants', 'tenant_counters', 'memberships', 'invitations', 'customers',
                            'tickets', 'comments', 'activity')
            and not (relrowsecurity and relforcerowsecurity)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        unforced.is_empty(),
        "every tenant-owned table forces row-level security: {unforced:?}"
    );
}
