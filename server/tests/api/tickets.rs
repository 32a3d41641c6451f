//! Tickets: fields, edits, comments, the audit trail, filters, search and pagination.

use std::collections::HashSet;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp, User};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_new_ticket_has_defaults_and_the_next_number(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let first = team.requester.create_ticket("VPN drops every hour").await;
    assert_eq!(first["number"], 1);
    assert_eq!(first["status"], "open");
    assert_eq!(first["priority"], "medium");
    assert_eq!(first["category"], "general");
    assert_eq!(first["requester_id"], team.requester.user_id().await);
    assert_eq!(first["version"], 1);
    let second = team.agent.create_ticket("Monitor flickers").await;
    assert_eq!(second["number"], 2, "numbers count up per tenant");

    let agent_id = team.agent.user_id().await;
    let requester_id = team.requester.user_id().await;
    let on_behalf = team
        .agent
        .post(
            "/api/v1/tickets",
            json!({ "title": "Refund", "priority": "urgent", "category": "billing",
                    "requester_id": requester_id, "assignee_id": agent_id }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(on_behalf["requester_id"], requester_id.as_str());
    assert_eq!(on_behalf["assignee_id"], agent_id.as_str());
    assert_eq!(on_behalf["priority"], "urgent");

    let reply = team
        .requester
        .post(
            "/api/v1/tickets",
            json!({ "title": "x", "assignee_id": agent_id }),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "requesters cannot pick an assignee"
    );
    let observer_id = team.observer.user_id().await;
    let reply = team
        .agent
        .post(
            "/api/v1/tickets",
            json!({ "title": "x", "assignee_id": observer_id }),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only agents and admins are assignable"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn edits_are_versioned_and_logged_field_by_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = team.requester.create_ticket("Keyboard").await;
    let id = ticket["id"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{id}");
    let agent_id = team.agent.user_id().await;

    let edited = team
        .agent
        .patch(&path, json!({ "title": "Keyboard missing keys", "priority": "high", "assignee_id": agent_id, "version": 1 }))
        .await
        .expect(StatusCode::OK);
    assert_eq!(edited["title"], "Keyboard missing keys");
    assert_eq!(edited["assignee_id"], agent_id.as_str());
    assert_eq!(edited["version"], 2);

    let stale = team
        .agent
        .patch(&path, json!({ "title": "Other", "version": 1 }))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "stale_version");
    let unassigned = team
        .agent
        .patch(&path, json!({ "assignee_id": null }))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        unassigned["assignee_id"],
        Value::Null,
        "null clears the assignee"
    );
    assert_eq!(
        unassigned["title"], "Keyboard missing keys",
        "absent fields stay"
    );

    let trail = team
        .agent
        .get(&format!("{path}/activity"))
        .await
        .expect(StatusCode::OK);
    let updates: Vec<&Value> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "ticket.updated")
        .collect();
    let fields: Vec<&str> = updates
        .iter()
        .map(|a| a["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.iter().filter(|f| **f == "assignee_id").count(), 2);
    let title = updates.iter().find(|a| a["field"] == "title").unwrap();
    assert_eq!(title["before"]["title"], "Keyboard");
    assert_eq!(title["after"]["title"], "Keyboard missing keys");
    assert_eq!(title["actor_id"], agent_id.as_str());

    let reply = team
        .requester
        .patch(&path, json!({ "title": "mine" }))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "requesters don't edit fields"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn internal_notes_never_reach_requesters(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = team.requester.create_ticket("Password reset").await;
    let id = ticket["id"].as_str().unwrap();
    let comments = format!("/api/v1/tickets/{id}/comments");

    team.requester
        .post(&comments, json!({ "body": "Any news?" }))
        .await
        .expect(StatusCode::CREATED);
    let after_requester = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        after_requester["first_responded_at"],
        Value::Null,
        "a requester's comment is no response"
    );

    team.agent
        .post(
            &comments,
            json!({ "body": "Suspicious, checking the zebra logs", "internal": true }),
        )
        .await
        .expect(StatusCode::CREATED);
    let after_note = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        after_note["first_responded_at"],
        Value::Null,
        "an internal note is no response"
    );
    let reply = team
        .agent
        .post(&comments, json!({ "body": "Done, try now" }))
        .await
        .expect(StatusCode::CREATED);
    let responded = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        responded["first_responded_at"], reply["created_at"],
        "the first public reply sets it"
    );

    let seen = team.requester.get(&comments).await.expect(StatusCode::OK);
    let bodies: Vec<&str> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["Any news?", "Done, try now"]);
    let all = team.observer.get(&comments).await.expect(StatusCode::OK);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "observers see internal notes"
    );

    let trail = team
        .requester
        .get(&format!("/api/v1/tickets/{id}/activity"))
        .await
        .expect(StatusCode::OK);
    assert!(
        trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["after"]["internal"] != true),
        "the trail hides internal notes from requesters: {trail}"
    );
    let found = team
        .requester
        .get("/api/v1/tickets?q=zebra")
        .await
        .expect(StatusCode::OK);
    assert!(
        ids(&found).is_empty(),
        "search does not reveal internal notes to requesters"
    );
    let found = team
        .agent
        .get("/api/v1/tickets?q=zebra")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&found), [id], "agents find text in internal notes");

    let reply = team
        .requester
        .post(&comments, json!({ "body": "sneaky", "internal": true }))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = team
        .observer
        .post(&comments, json!({ "body": "hello" }))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_queue_filters_searches_and_sorts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let agent_id = team.agent.user_id().await;
    let customer = team
        .agent
        .post("/api/v1/customers", json!({ "name": "Acme Ltd" }))
        .await
        .expect(StatusCode::CREATED);
    let customer_id = customer["id"].as_str().unwrap();
    let printer = team.agent.post("/api/v1/tickets", json!({
        "title": "Printer jams on tray two", "priority": "low", "category": "hardware", "customer_id": customer_id,
    })).await.expect(StatusCode::CREATED);
    let invoice = team.agent.post("/api/v1/tickets", json!({
        "title": "Invoice total is wrong", "priority": "urgent", "category": "billing", "assignee_id": agent_id,
    })).await.expect(StatusCode::CREATED);
    let mine = team.requester.create_ticket("Cannot log in").await;
    let comments = format!("/api/v1/tickets/{}/comments", mine["id"].as_str().unwrap());
    team.agent
        .post(&comments, json!({ "body": "Reset the authenticator app" }))
        .await
        .expect(StatusCode::CREATED);

    let get = |query: &str| {
        let agent = team.agent.clone();
        let query = query.to_owned();
        async move {
            ids(&agent
                .get(&format!("/api/v1/tickets?{query}"))
                .await
                .expect(StatusCode::OK))
        }
    };
    let id = |t: &Value| t["id"].as_str().unwrap().to_owned();
    assert_eq!(get("priority=urgent").await, [id(&invoice)]);
    assert_eq!(get("category=hardware").await, [id(&printer)]);
    assert_eq!(get("assignee=me").await, [id(&invoice)]);
    assert_eq!(get(&format!("assignee={agent_id}")).await, [id(&invoice)]);
    assert_eq!(get("assignee=none").await.len(), 2);
    assert_eq!(
        get(&format!("customer={customer_id}")).await,
        [id(&printer)]
    );
    assert_eq!(
        get(&format!("requester={}", team.requester.user_id().await)).await,
        [id(&mine)]
    );
    assert_eq!(get("status=open").await.len(), 3);
    assert_eq!(
        get("q=printer").await,
        [id(&printer)],
        "title words are found"
    );
    assert_eq!(
        get("q=authenticator").await,
        [id(&mine)],
        "comment words are found"
    );
    assert_eq!(get("q=jamming").await, [id(&printer)], "search stems words");
    assert_eq!(
        get("sort=-priority").await,
        [id(&invoice), id(&mine), id(&printer)]
    );
    assert_eq!(
        get("sort=priority").await,
        [id(&printer), id(&mine), id(&invoice)]
    );
    assert_eq!(
        get("sort=created_at").await,
        [id(&printer), id(&invoice), id(&mine)]
    );
    assert_eq!(
        get("sort=-created_at").await,
        [id(&mine), id(&invoice), id(&printer)]
    );
    assert_eq!(
        get("sort=-updated_at").await[0],
        id(&mine),
        "the comment touched it last"
    );

    let requester_view = team
        .requester
        .get("/api/v1/tickets")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        ids(&requester_view),
        [id(&mine)],
        "requesters see only their own tickets"
    );
}

async fn page_through(user: &User, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tickets?{query}&cursor={c}"),
            None => format!("/api/v1/tickets?{query}"),
        };
        let page = user.get(&path).await.expect(StatusCode::OK);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn pagination_has_no_gaps_or_repeats_while_others_insert(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let mut existing = HashSet::new();
    for i in 0..45 {
        let priority = ["low", "medium", "high", "urgent"][i % 4];
        let t = team
            .agent
            .post(
                "/api/v1/tickets",
                json!({ "title": format!("ticket {i}"), "priority": priority }),
            )
            .await
            .expect(StatusCode::CREATED);
        existing.insert(t["id"].as_str().unwrap().to_owned());
    }
    for sort in [
        "-created_at",
        "created_at",
        "-priority",
        "priority",
        "-updated_at",
    ] {
        let writer = team.admin.clone();
        let inserting = tokio::spawn(async move {
            for i in 0..20 {
                writer.create_ticket(&format!("concurrent {i}")).await;
            }
        });
        let seen = page_through(&team.agent, &format!("sort={sort}&limit=7")).await;
        inserting.await.unwrap();
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "sort {sort}: no ticket appears twice"
        );
        for id in &existing {
            assert!(
                unique.contains(id),
                "sort {sort}: ticket {id} that existed throughout was skipped"
            );
        }
        existing.extend(seen);
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn only_admins_delete_tickets_and_the_deletion_is_logged(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let team = Team::new(&app).await;
    let ticket = team.requester.create_ticket("Duplicate").await;
    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    assert_eq!(team.agent.delete(&path).await.status, StatusCode::FORBIDDEN);
    team.admin
        .delete(&path)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(team.admin.get(&path).await.status, StatusCode::NOT_FOUND);
    let logged: i64 =
        sqlx::query_scalar("select count(*) from activity where action = 'ticket.deleted'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(logged, 1);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn customers_are_kept_per_tenant_and_deleting_one_keeps_its_tickets(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let created = team.agent.post("/api/v1/customers", json!({
        "name": "Globex", "email": "Ops@Globex.com", "phone": "+1 555 0100", "company": "Globex Corp",
    })).await.expect(StatusCode::CREATED);
    assert_eq!(created["email"], "ops@globex.com");
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/customers/{id}");
    let patched = team
        .agent
        .patch(&path, json!({ "phone": null, "notes": "Prefers email" }))
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["phone"], Value::Null);
    assert_eq!(patched["notes"], "Prefers email");
    assert_eq!(patched["name"], "Globex");
    let listed = team
        .observer
        .get("/api/v1/customers?q=glob")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&listed), [id]);
    assert_eq!(
        team.requester.get("/api/v1/customers").await.status,
        StatusCode::FORBIDDEN
    );

    let ticket = team
        .agent
        .post(
            "/api/v1/tickets",
            json!({ "title": "Globex outage", "customer_id": id }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        team.agent.delete(&path).await.status,
        StatusCode::FORBIDDEN,
        "only admins delete customers"
    );
    team.admin
        .delete(&path)
        .await
        .expect(StatusCode::NO_CONTENT);
    let kept = team
        .agent
        .get(&format!(
            "/api/v1/tickets/{}",
            ticket["id"].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        kept["customer_id"],
        Value::Null,
        "the ticket stays, without its customer"
    );
}
