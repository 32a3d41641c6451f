//! SLAs: calendars and policies, each ticket's SLA on the API, the queue's SLA filter and sort,
//! and the monitor that records at-risk and breach events once each.

use std::time::Duration as StdDuration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tallydesk_server::monitor::Monitor;
use tallydesk_server::sla::EVENTS_CHANNEL;

use tallydesk_testkit::{Team, TestApp, TestClock, User};

fn office_hours() -> Value {
    let day = json!([["09:00", "17:00"]]);
    json!({ "mon": day, "tue": day, "wed": day, "thu": day, "fri": day })
}

async fn create_policy(admin: &User, body: Value) -> Value {
    admin
        .post("/api/v1/sla-policies", body)
        .await
        .expect(StatusCode::CREATED)
}

/// The ticket's SLA target named `target`, as the API shows it now.
async fn target(user: &User, ticket: &str, target: &str) -> Value {
    let ticket = user
        .get(&format!("/api/v1/tickets/{ticket}"))
        .await
        .expect(StatusCode::OK);
    ticket["sla"]
        .as_array()
        .expect("an sla list")
        .iter()
        .find(|t| t["target"] == target)
        .cloned()
        .unwrap_or_else(|| panic!("no {target} target in {}", ticket["sla"]))
}

fn at(text: &Value) -> DateTime<Utc> {
    text.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {text}"))
}

fn numbers(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["number"].as_i64().expect("number"))
        .collect()
}

async fn queue(user: &User, query: &str) -> Vec<i64> {
    numbers(
        &user
            .get(&format!("/api/v1/tickets?{query}"))
            .await
            .expect(StatusCode::OK),
    )
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn admins_keep_calendars_and_policies_with_versions_and_field_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let admin = &team.admin;

    let calendar = admin
        .post(
            "/api/v1/calendars",
            json!({ "name": "Paris office", "time_zone": "Europe/Paris",
                    "weekly": office_hours(), "holidays": ["2026-12-25"] }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(calendar["version"], 1);
    assert_eq!(calendar["holidays"], json!(["2026-12-25"]));
    assert_eq!(calendar["weekly"]["mon"], json!([["09:00", "17:00"]]));
    let calendar_id = calendar["id"].as_str().unwrap();
    let calendar_path = format!("/api/v1/calendars/{calendar_id}");

    for (body, field) in [
        (
            json!({ "name": "x", "time_zone": "Mars/Olympus", "weekly": {} }),
            "time_zone",
        ),
        (
            json!({ "name": "x", "time_zone": "UTC", "weekly": { "mon": [["17:00", "09:00"]] } }),
            "weekly",
        ),
        (
            json!({ "name": "x", "time_zone": "UTC", "weekly": {}, "holidays": ["25/12/2026"] }),
            "holidays",
        ),
        (
            json!({ "name": " ", "time_zone": "UTC", "weekly": {} }),
            "name",
        ),
    ] {
        let reply = admin.post("/api/v1/calendars", body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.code(), "invalid_field");
        assert!(
            reply.body["message"].as_str().unwrap().contains(field),
            "the message names {field}: {}",
            reply.body
        );
    }

    let renamed = admin
        .patch(
            &calendar_path,
            json!({ "name": "Paris", "time_zone": "Europe/Paris", "weekly": office_hours(),
                    "version": 1 }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(renamed["name"], "Paris");
    assert_eq!(renamed["version"], 2);
    assert_eq!(
        renamed["holidays"],
        json!([]),
        "PATCH replaces the whole calendar"
    );
    let stale = admin
        .patch(
            &calendar_path,
            json!({ "name": "Old", "time_zone": "UTC", "weekly": {}, "version": 1 }),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(stale.code(), "stale_version");

    for (body, field) in [
        (json!({ "name": "No targets" }), "resolution_minutes"),
        (
            json!({ "name": "Zero", "first_response_minutes": 0 }),
            "first_response_minutes",
        ),
        (
            json!({ "name": "Office", "resolution_minutes": 60, "business_hours": true }),
            "calendar_id",
        ),
        (
            json!({ "name": "Ghost calendar", "resolution_minutes": 60, "business_hours": true,
                    "calendar_id": uuid::Uuid::now_v7() }),
            "calendar_id",
        ),
        (
            json!({ "name": "Odd category", "resolution_minutes": 60, "categories": ["gardening"] }),
            "categories",
        ),
        (
            json!({ "name": "Ghost customer", "resolution_minutes": 60,
                    "customer_ids": [uuid::Uuid::now_v7()] }),
            "customer_ids",
        ),
    ] {
        let reply = admin.post("/api/v1/sla-policies", body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            reply.body["message"].as_str().unwrap().contains(field),
            "the message names {field}: {}",
            reply.body
        );
    }

    let later = create_policy(
        admin,
        json!({ "name": "Everything else", "position": 10, "resolution_minutes": 2400 }),
    )
    .await;
    let policy = create_policy(
        admin,
        json!({ "name": "Urgent, office hours", "position": 1, "priorities": ["urgent"],
                "first_response_minutes": 30, "resolution_minutes": 480,
                "business_hours": true, "calendar_id": calendar_id, "warn_minutes": 10 }),
    )
    .await;
    assert_eq!(
        policy["active"], true,
        "policies are active unless said otherwise"
    );
    assert_eq!(policy["priorities"], json!(["urgent"]));
    assert_eq!(policy["version"], 1);
    let listed = admin
        .get("/api/v1/sla-policies")
        .await
        .expect(StatusCode::OK);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Urgent, office hours", "Everything else"],
        "policies are listed in the order they are tried"
    );

    let in_use = admin.delete(&calendar_path).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.body);
    assert_eq!(in_use.code(), "calendar_in_use");
    assert!(
        in_use.body["message"]
            .as_str()
            .unwrap()
            .contains("Urgent, office hours"),
        "the message names the policy: {}",
        in_use.body
    );

    let policy_path = format!("/api/v1/sla-policies/{}", policy["id"].as_str().unwrap());
    let mut edited = policy.clone();
    edited["business_hours"] = json!(false);
    edited["calendar_id"] = Value::Null;
    let edited = admin
        .patch(&policy_path, edited)
        .await
        .expect(StatusCode::OK);
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["calendar_id"], Value::Null);
    let stale = admin.patch(&policy_path, policy.clone()).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "stale_version");

    admin
        .delete(&calendar_path)
        .await
        .expect(StatusCode::NO_CONTENT);
    admin
        .get(&calendar_path)
        .await
        .expect(StatusCode::NOT_FOUND);
    admin
        .delete(&policy_path)
        .await
        .expect(StatusCode::NO_CONTENT);
    admin.get(&policy_path).await.expect(StatusCode::NOT_FOUND);
    let left = admin
        .get("/api/v1/sla-policies")
        .await
        .expect(StatusCode::OK);
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(left["items"][0]["id"], later["id"]);

    let docs = app
        .call(Method::GET, "/openapi.json", None, None, None)
        .await;
    for path in [
        "/api/v1/calendars",
        "/api/v1/calendars/{id}",
        "/api/v1/sla-policies",
        "/api/v1/sla-policies/{id}",
    ] {
        assert!(
            docs.body["paths"][path].is_object(),
            "{path} is in the OpenAPI document"
        );
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn only_admins_change_sla_settings_and_requesters_do_not_see_them(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let calendar = team
        .admin
        .post(
            "/api/v1/calendars",
            json!({ "name": "UTC", "time_zone": "UTC", "weekly": office_hours() }),
        )
        .await
        .expect(StatusCode::CREATED);
    let policy = create_policy(
        &team.admin,
        json!({ "name": "All", "resolution_minutes": 60 }),
    )
    .await;
    let calendar_path = format!("/api/v1/calendars/{}", calendar["id"].as_str().unwrap());
    let policy_path = format!("/api/v1/sla-policies/{}", policy["id"].as_str().unwrap());

    for reader in [&team.agent, &team.observer] {
        reader.get("/api/v1/calendars").await.expect(StatusCode::OK);
        reader.get(&calendar_path).await.expect(StatusCode::OK);
        reader
            .get("/api/v1/sla-policies")
            .await
            .expect(StatusCode::OK);
        reader.get(&policy_path).await.expect(StatusCode::OK);
    }
    for path in ["/api/v1/calendars", "/api/v1/sla-policies"] {
        team.requester.get(path).await.expect(StatusCode::FORBIDDEN);
    }

    let mut calendar_edit = calendar.clone();
    calendar_edit["name"] = json!("Renamed");
    let mut policy_edit = policy.clone();
    policy_edit["name"] = json!("Renamed");
    for member in [&team.requester, &team.observer, &team.agent] {
        let writes = [
            (
                Method::POST,
                "/api/v1/calendars".to_owned(),
                Some(json!({ "name": "x", "time_zone": "UTC", "weekly": {} })),
            ),
            (
                Method::PATCH,
                calendar_path.clone(),
                Some(calendar_edit.clone()),
            ),
            (Method::DELETE, calendar_path.clone(), None),
            (
                Method::POST,
                "/api/v1/sla-policies".to_owned(),
                Some(json!({ "name": "x", "resolution_minutes": 5 })),
            ),
            (
                Method::PATCH,
                policy_path.clone(),
                Some(policy_edit.clone()),
            ),
            (Method::DELETE, policy_path.clone(), None),
        ];
        for (method, path, body) in writes {
            let reply = member.call(method.clone(), &path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: only admins change SLA settings"
            );
        }
    }
    let still = team.admin.get(&policy_path).await.expect(StatusCode::OK);
    assert_eq!(still["name"], "All", "refused writes changed nothing");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn another_tenants_calendars_and_policies_are_not_found_and_never_apply(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let calendar = team
        .admin
        .post(
            "/api/v1/calendars",
            json!({ "name": "Ours", "time_zone": "UTC", "weekly": office_hours() }),
        )
        .await
        .expect(StatusCode::CREATED);
    let customer = team
        .agent
        .post("/api/v1/customers", json!({ "name": "Initech" }))
        .await
        .expect(StatusCode::CREATED);
    let policy = create_policy(
        &team.admin,
        json!({ "name": "Everything", "first_response_minutes": 30, "resolution_minutes": 60 }),
    )
    .await;
    let ours = team.requester.create_ticket("Ours").await;
    assert_eq!(
        ours["sla"].as_array().map(Vec::len),
        Some(2),
        "our policy applies to our ticket: {}",
        ours["sla"]
    );

    let outsider = Team::other_tenant(&app, "mallory").await;
    let theirs = outsider.create_ticket("Mallory's").await;
    assert_eq!(
        theirs["sla"],
        json!([]),
        "another tenant's policy never applies"
    );
    let calendar_path = format!("/api/v1/calendars/{}", calendar["id"].as_str().unwrap());
    let policy_path = format!("/api/v1/sla-policies/{}", policy["id"].as_str().unwrap());
    for (method, path, body) in [
        (Method::GET, calendar_path.clone(), None),
        (Method::PATCH, calendar_path.clone(), Some(calendar.clone())),
        (Method::DELETE, calendar_path.clone(), None),
        (Method::GET, policy_path.clone(), None),
        (Method::PATCH, policy_path.clone(), Some(policy.clone())),
        (Method::DELETE, policy_path.clone(), None),
    ] {
        let reply = outsider.call(method.clone(), &path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
    }
    for path in ["/api/v1/calendars", "/api/v1/sla-policies"] {
        let listed = outsider.get(path).await.expect(StatusCode::OK);
        assert_eq!(listed["items"], json!([]), "{path} lists only their own");
    }
    for (body, field) in [
        (
            json!({ "name": "Borrowed calendar", "resolution_minutes": 60, "business_hours": true,
                    "calendar_id": calendar["id"] }),
            "calendar_id",
        ),
        (
            json!({ "name": "Borrowed customer", "resolution_minutes": 60,
                    "customer_ids": [customer["id"]] }),
            "customer_ids",
        ),
    ] {
        let reply = outsider.post("/api/v1/sla-policies", body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body["message"].as_str().unwrap().contains(field));
    }
    // Their own policy leaves our tickets alone.
    create_policy(
        &outsider,
        json!({ "name": "Theirs", "resolution_minutes": 5 }),
    )
    .await;
    let ours = team
        .agent
        .get(&format!("/api/v1/tickets/{}", ours["id"].as_str().unwrap()))
        .await
        .expect(StatusCode::OK);
    let resolution = ours["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "resolution")
        .unwrap();
    assert!(
        resolution["remaining_seconds"].as_i64().unwrap() > 5 * 60,
        "our resolution target is still ours (60 min): {resolution}"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_tickets_sla_runs_turns_at_risk_breaches_pauses_on_hold_and_is_met(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    create_policy(
        &team.admin,
        json!({ "name": "Standard", "first_response_minutes": 60, "resolution_minutes": 480 }),
    )
    .await;

    let t0 = clock.now();
    let ticket = team.requester.create_ticket("Printer on fire").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let first = target(&team.agent, &id, "first_response").await;
    assert_eq!(first["state"], "running");
    assert_eq!(first["remaining_seconds"], 3600);
    assert_eq!(at(&first["due_at"]), t0 + Duration::minutes(60));

    clock.advance(Duration::minutes(46));
    let first = target(&team.agent, &id, "first_response").await;
    assert_eq!(
        first["state"], "at_risk",
        "14 minutes left is under the default 15-minute warning: {first}"
    );
    assert_eq!(first["remaining_seconds"], 14 * 60);

    clock.advance(Duration::minutes(15));
    let first = target(&team.requester, &id, "first_response").await;
    assert_eq!(first["state"], "breached", "{first}");
    assert_eq!(at(&first["breached_at"]), t0 + Duration::minutes(60));
    assert_eq!(first["remaining_seconds"], -60);
    assert_eq!(first["due_at"], Value::Null);

    // A second ticket: on hold stops its clocks, an agent's public reply meets first response.
    let t1 = clock.now();
    let other = team.requester.create_ticket("Toner low").await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let transitions = format!("/api/v1/tickets/{other_id}/transitions");
    clock.advance(Duration::minutes(10));
    team.agent
        .post(&transitions, json!({ "to": "in_progress" }))
        .await
        .expect(StatusCode::OK);
    team.agent
        .post(
            &transitions,
            json!({ "to": "on_hold", "reason": "waiting for the vendor" }),
        )
        .await
        .expect(StatusCode::OK);
    clock.advance(Duration::minutes(30));
    let first = target(&team.agent, &other_id, "first_response").await;
    assert_eq!(first["state"], "paused", "{first}");
    assert_eq!(first["due_at"], Value::Null, "no deadline while paused");
    assert_eq!(
        first["remaining_seconds"],
        50 * 60,
        "only the 10 minutes before the hold counted"
    );
    let back = team
        .agent
        .post(&transitions, json!({ "to": "in_progress" }))
        .await
        .expect(StatusCode::OK);
    let first = back["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "first_response")
        .unwrap()
        .clone();
    assert_eq!(first["state"], "running");
    assert_eq!(
        at(&first["due_at"]),
        t1 + Duration::minutes(60 + 30),
        "the deadline moved by the 30 minutes on hold"
    );

    clock.advance(Duration::minutes(5));
    team.requester
        .post(
            &format!("/api/v1/tickets/{other_id}/comments"),
            json!({ "body": "any news?" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let first = target(&team.agent, &other_id, "first_response").await;
    assert_eq!(
        first["state"], "running",
        "a requester's reply is not a response"
    );
    team.agent
        .post(
            &format!("/api/v1/tickets/{other_id}/comments"),
            json!({ "body": "internal only", "internal": true }),
        )
        .await
        .expect(StatusCode::CREATED);
    let first = target(&team.agent, &other_id, "first_response").await;
    assert_eq!(
        first["state"], "running",
        "an internal note is not a response"
    );
    team.agent
        .post(
            &format!("/api/v1/tickets/{other_id}/comments"),
            json!({ "body": "on it" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let first = target(&team.agent, &other_id, "first_response").await;
    assert_eq!(first["state"], "met");
    assert_eq!(at(&first["met_at"]), clock.now());
    let resolution = target(&team.agent, &other_id, "resolution").await;
    assert_eq!(
        resolution["state"], "running",
        "resolution runs until resolved"
    );

    let listed = team
        .agent
        .get("/api/v1/tickets?sort=created_at")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        listed["items"][0]["sla"][0]["state"], "breached",
        "lists carry the SLA too: {}",
        listed["items"][0]
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_queue_filters_by_sla_state_and_sorts_breaching_soon_first(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    create_policy(
        &team.admin,
        json!({ "name": "Urgent", "position": 0, "priorities": ["urgent"], "resolution_minutes": 60 }),
    )
    .await;
    create_policy(
        &team.admin,
        json!({ "name": "High", "position": 1, "priorities": ["high"], "resolution_minutes": 240 }),
    )
    .await;
    let new = |title: &'static str, priority: &'static str| {
        let agent = team.agent.clone();
        async move {
            agent
                .post(
                    "/api/v1/tickets",
                    json!({ "title": title, "priority": priority }),
                )
                .await
                .expect(StatusCode::CREATED)
        }
    };
    let urgent = new("Server down", "urgent").await; // #1, due at +60
    let high = new("Slow laptop", "high").await; // #2, due at +240
    new("Typo on the wiki", "low").await; // #3, no policy
    clock.advance(Duration::minutes(30));
    new("Mail bouncing", "urgent").await; // #4, due at +90
    clock.advance(Duration::minutes(20));

    assert_eq!(
        queue(&team.agent, "sort=sla_due").await,
        [1, 4, 2, 3],
        "soonest deadline first, tickets without an SLA last"
    );
    assert_eq!(queue(&team.agent, "sla_state=at_risk").await, [1]);
    assert_eq!(
        queue(&team.agent, "sla_state=running&sort=sla_due").await,
        [4, 2]
    );
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("sort=sla_due&limit=1&cursor={c}"),
            None => "sort=sla_due&limit=1".to_owned(),
        };
        let page = team
            .agent
            .get(&format!("/api/v1/tickets?{query}"))
            .await
            .expect(StatusCode::OK);
        paged.extend(numbers(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, [1, 4, 2, 3], "pages follow the same order");

    clock.advance(Duration::minutes(30));
    assert_eq!(
        queue(&team.agent, "sla_state=breached").await,
        [1],
        "the deadline passing breaches it with no write in between"
    );
    assert_eq!(queue(&team.agent, "sla_state=at_risk").await, [4]);
    assert_eq!(
        queue(&team.agent, "sort=-sla_due").await,
        [3, 2, 4, 1],
        "descending puts the latest first"
    );

    let high_transitions = format!(
        "/api/v1/tickets/{}/transitions",
        high["id"].as_str().unwrap()
    );
    team.agent
        .post(&high_transitions, json!({ "to": "in_progress" }))
        .await
        .expect(StatusCode::OK);
    team.agent
        .post(
            &high_transitions,
            json!({ "to": "on_hold", "reason": "waiting for parts" }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(queue(&team.agent, "sla_state=paused").await, [2]);
    let urgent_transitions = format!(
        "/api/v1/tickets/{}/transitions",
        urgent["id"].as_str().unwrap()
    );
    team.agent
        .post(&urgent_transitions, json!({ "to": "resolved" }))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        queue(&team.agent, "sla_state=breached").await,
        [1],
        "a breach stays a breach once resolved"
    );
    assert_eq!(queue(&team.agent, "sla_state=met").await, Vec::<i64>::new());

    // Lowering a ticket's priority moves it to the other policy at once.
    let mail = queue(&team.agent, "sla_state=at_risk").await;
    assert_eq!(mail, [4]);
    let mail_id = team
        .agent
        .get("/api/v1/tickets?sla_state=at_risk")
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    team.agent
        .patch(
            &format!("/api/v1/tickets/{mail_id}"),
            json!({ "priority": "high" }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(queue(&team.agent, "sla_state=running").await, [4]);

    let bad = team.agent.get("/api/v1/tickets?sla_state=late").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn editing_or_deactivating_a_policy_derives_open_tickets_again(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    let policy = create_policy(
        &team.admin,
        json!({ "name": "Fast", "resolution_minutes": 60 }),
    )
    .await;
    let policy_path = format!("/api/v1/sla-policies/{}", policy["id"].as_str().unwrap());
    let t0 = clock.now();
    let ticket = team.requester.create_ticket("Laptop").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    clock.advance(Duration::minutes(50));
    assert_eq!(queue(&team.agent, "sla_state=at_risk").await, [1]);

    let mut slower = policy.clone();
    slower["resolution_minutes"] = json!(600);
    let slower = team
        .admin
        .patch(&policy_path, slower)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        queue(&team.agent, "sla_state=running").await,
        [1],
        "the longer target applies to the open ticket at once"
    );
    let resolution = target(&team.agent, &id, "resolution").await;
    assert_eq!(at(&resolution["due_at"]), t0 + Duration::minutes(600));

    let mut off = slower.clone();
    off["active"] = json!(false);
    team.admin
        .patch(&policy_path, off)
        .await
        .expect(StatusCode::OK);
    let ticket = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ticket["sla"], json!([]), "no active policy, no SLA");
    assert_eq!(
        queue(&team.agent, "sla_state=running").await,
        Vec::<i64>::new()
    );
    clock.advance(Duration::hours(20));
    let monitor = Monitor::new(app.owner.clone(), clock.clock());
    let pass = monitor.tick().await.expect("a monitor pass");
    assert!(
        pass.recorded.is_empty(),
        "a deactivated policy raises no alerts: {:?}",
        pass.recorded
    );
    assert_eq!(pass.next_at, None, "nothing left to wait for");

    // A new policy applies to the old ticket, breached long ago: the monitor records it now.
    create_policy(
        &team.admin,
        json!({ "name": "Again", "resolution_minutes": 60 }),
    )
    .await;
    assert_eq!(queue(&team.agent, "sla_state=breached").await, [1]);
    let pass = monitor.tick().await.expect("a monitor pass");
    let kinds: Vec<&str> = pass.recorded.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["at_risk", "breached"]);
    assert_eq!(pass.recorded[1].at, t0 + Duration::minutes(60));
}

/// Each event's rows: (ticket, target, kind) → count, from sla_events and from activity.
async fn event_counts(owner: &PgPool) -> (Vec<i64>, Vec<i64>) {
    let events: Vec<i64> =
        sqlx::query_scalar("select count(*) from sla_events group by ticket_id, target, kind")
            .fetch_all(owner)
            .await
            .unwrap();
    let activity: Vec<i64> = sqlx::query_scalar(
        "select count(*) from activity where action like 'sla.%'
          group by ticket_id, after ->> 'target', action",
    )
    .fetch_all(owner)
    .await
    .unwrap();
    (events, activity)
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn two_monitors_on_one_database_record_each_event_once(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    create_policy(
        &team.admin,
        json!({ "name": "Tight", "first_response_minutes": 10, "resolution_minutes": 30 }),
    )
    .await;
    const TICKETS: usize = 12;
    let mut ids = Vec::new();
    for n in 0..TICKETS {
        ids.push(team.requester.create_ticket(&format!("Ticket {n}")).await["id"].clone());
    }
    // A second instance: its own connections to the same database.
    let other_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with((*app.owner.connect_options()).clone())
        .await
        .expect("a second instance's pool");
    let one = Monitor::new(app.owner.clone(), clock.clock());
    let two = Monitor::new(other_pool, clock.clock());

    let mut recorded = 0;
    for minutes in [5, 4, 1, 20, 1, 30] {
        clock.advance(Duration::minutes(minutes));
        let (a, b) = tokio::join!(one.tick(), two.tick());
        let (a, b) = (a.expect("monitor one"), b.expect("monitor two"));
        recorded += a.recorded.len() + b.recorded.len();
        let (a2, b2) = tokio::join!(one.tick(), two.tick());
        recorded +=
            a2.expect("monitor one").recorded.len() + b2.expect("monitor two").recorded.len();
    }
    let per_ticket = 4; // first response and resolution, each at risk and breached
    assert_eq!(
        recorded,
        TICKETS * per_ticket,
        "both monitors together recorded every event exactly once"
    );
    let (events, activity) = event_counts(&app.owner).await;
    assert_eq!(events.len(), TICKETS * per_ticket);
    assert!(events.iter().all(|&n| n == 1));
    assert_eq!(
        activity.len(),
        TICKETS * per_ticket,
        "one activity entry per event"
    );
    assert!(
        activity.iter().all(|&n| n == 1),
        "no event has two activity entries: {activity:?}"
    );

    let trail = team
        .agent
        .get(&format!(
            "/api/v1/tickets/{}/activity",
            ids[0].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    let sla_entries: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"].as_str().unwrap().starts_with("sla."))
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["after"]["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sla_entries,
        [
            ("sla.at_risk", "first_response"),
            ("sla.breached", "first_response"),
            ("sla.at_risk", "resolution"),
            ("sla.breached", "resolution"),
        ],
        "the trail shows each event at the time it happened"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_running_monitor_wakes_when_deadlines_change_and_notifies(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    let ticket = team.requester.create_ticket("Wi-Fi").await;
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    let mut events = PgListener::connect_with(&app.owner)
        .await
        .expect("listener");
    events.listen(EVENTS_CHANNEL).await.expect("listen");

    // With no policy it has nothing to wait for, so it sleeps until a writer wakes it; the
    // clock moves before, so that only the writer can wake it.
    clock.advance(Duration::hours(2));
    let running = tokio::spawn(Monitor::new(app.owner.clone(), clock.clock()).run());
    clock.someone_waits().await;
    create_policy(
        &team.admin,
        json!({ "name": "Hourly", "resolution_minutes": 60 }),
    )
    .await;

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let notice = tokio::time::timeout(StdDuration::from_secs(20), events.recv())
            .await
            .expect("the monitor records the events without waiting for its next timer")
            .expect("a notification");
        let payload: Value = serde_json::from_str(notice.payload()).expect("JSON payload");
        assert_eq!(payload["ticket_id"], ticket_id.as_str());
        assert_eq!(payload["tenant_id"], team.tenant.as_str());
        assert_eq!(payload["target"], "resolution");
        kinds.push(payload["kind"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    assert_eq!(kinds, ["at_risk", "breached"]);
    running.abort();
    let (events, activity) = event_counts(&app.owner).await;
    assert_eq!((events.len(), activity.len()), (2, 2));
}
