//! `seed-demo`: realistic demo data, once, and only when asked for.

use std::collections::HashSet;

use axum::http::StatusCode;
use chrono::Utc;
use sqlx::PgPool;
use tallydesk_shared::ticket::Email;

use tallydesk_testkit::TestApp;

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_demo_tenant_has_tickets_in_every_state_and_is_seeded_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let email = Email::parse("boss@example.com").unwrap();
    let first = tallydesk_server::seed::demo(&app.app_pool, Utc::now(), Some(&email))
        .await
        .unwrap();
    assert!(first.created);
    let again = tallydesk_server::seed::demo(&app.app_pool, Utc::now(), Some(&email))
        .await
        .unwrap();
    assert!(!again.created, "a second run changes nothing");
    assert_eq!(again.tenant, first.tenant);

    let boss = app.user("boss");
    let me = boss.get("/api/v1/me").await.expect(StatusCode::OK);
    let demo = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tenant_name"] == tallydesk_server::seed::DEMO_TENANT)
        .expect("the invited admin joins the demo tenant");
    assert_eq!(demo["role"], "admin");
    let boss = boss.in_tenant(demo["tenant_id"].as_str().unwrap());

    let page = boss
        .get("/api/v1/tickets?limit=200")
        .await
        .expect(StatusCode::OK);
    let tickets = page["items"].as_array().unwrap();
    assert_eq!(tickets.len(), first.tickets, "seeded once, not twice");
    let statuses: HashSet<&str> = tickets
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.len(),
        5,
        "every status is represented: {statuses:?}"
    );
    let customers = boss.get("/api/v1/customers").await.expect(StatusCode::OK);
    assert!(customers["items"].as_array().unwrap().len() >= 5);

    let mut notes = 0;
    let mut replies = 0;
    for t in tickets {
        let comments = boss
            .get(&format!(
                "/api/v1/tickets/{}/comments",
                t["id"].as_str().unwrap()
            ))
            .await
            .expect(StatusCode::OK);
        for c in comments["items"].as_array().unwrap() {
            if c["internal"] == true {
                notes += 1
            } else {
                replies += 1
            }
        }
    }
    assert!(
        notes > 0 && replies > 0,
        "comments and internal notes: {replies} replies, {notes} notes"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_unseeded_installation_stays_empty_until_its_first_user(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app.user("first");
    let me = first.get("/api/v1/me").await.expect(StatusCode::OK);
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);
    let page = first.get("/api/v1/tickets").await.expect(StatusCode::OK);
    assert_eq!(
        page["items"],
        serde_json::json!([]),
        "no demo data unless seed-demo runs"
    );
}
