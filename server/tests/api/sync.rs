//! Sync: the change log pulled per role, pushes applied exactly once, per-field merges, and
//! live `changed` events, against real Postgres.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tallydesk_shared::TenantId;
use uuid::Uuid;

use tallydesk_server::sync::compaction::{Compacted, Compactor};

use tallydesk_testkit::{Team, TestApp, TestClock, User};

/// All pages from `cursor` on: the changes in order and the final cursor.
async fn pull_all(user: &User, mut cursor: i64, limit: u32) -> (Vec<Value>, i64) {
    let mut changes = Vec::new();
    loop {
        let page = user
            .get(&format!("/api/v1/sync/pull?cursor={cursor}&limit={limit}"))
            .await
            .expect(StatusCode::OK);
        changes.extend(page["changes"].as_array().expect("changes").iter().cloned());
        let next = page["cursor"].as_i64().expect("cursor");
        assert!(
            next >= cursor,
            "the cursor never goes back: {cursor} -> {next}"
        );
        assert!(
            page["head"].as_i64().expect("head") >= next,
            "the log's head is never before the cursor it hands out"
        );
        cursor = next;
        if !page["has_more"].as_bool().expect("has_more") {
            return (changes, cursor);
        }
    }
}

/// The ids of the changes of one entity and op.
fn ids(changes: &[Value], entity: &str, op: &str) -> BTreeSet<String> {
    changes
        .iter()
        .filter(|c| c["entity"] == entity && c["op"] == op)
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("id").to_owned()
}

async fn comment(user: &User, ticket: &str, body: &str, internal: bool) -> String {
    let c = user
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            json!({ "body": body, "internal": internal }),
        )
        .await
        .expect(StatusCode::CREATED);
    id_of(&c)
}

async fn push(user: &User, client: Uuid, mutations: Value) -> Vec<Value> {
    let reply = user
        .post(
            "/api/v1/sync/push",
            json!({ "client_id": client, "mutations": mutations }),
        )
        .await
        .expect(StatusCode::OK);
    reply["results"].as_array().expect("results").clone()
}

async fn head(app: &TestApp, tenant: &str) -> i64 {
    sqlx::query_scalar!(
        "select last_change_seq from tenant_counters where tenant_id = $1",
        tenant.parse::<Uuid>().expect("tenant id")
    )
    .fetch_one(&app.owner)
    .await
    .expect("the tenant's counter")
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn each_role_pulls_what_it_may_see_and_requesters_no_internal_notes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let mine = id_of(&team.requester.create_ticket("My laptop").await);
    let theirs = id_of(&team.agent.create_ticket("Server room").await);
    let reply = comment(&team.agent, &mine, "On it", false).await;
    let note = comment(&team.agent, &mine, "Warranty expired", true).await;
    let other_reply = comment(&team.agent, &theirs, "Checked", false).await;
    let customer = id_of(
        &team
            .admin
            .post("/api/v1/customers", json!({ "name": "Acme" }))
            .await
            .expect(StatusCode::CREATED),
    );

    let (changes, cursor) = pull_all(&team.requester, 0, 1000).await;
    assert_eq!(
        ids(&changes, "ticket", "upsert"),
        BTreeSet::from([mine.clone()]),
        "a requester gets their own ticket only"
    );
    assert_eq!(
        ids(&changes, "comment", "upsert"),
        BTreeSet::from([reply.clone()]),
        "the public reply, not the internal note nor another ticket's comment"
    );
    for c in changes.iter().filter(|c| c["entity"] == "activity") {
        assert_eq!(
            c["data"]["ticket_id"],
            mine.as_str(),
            "own ticket's activity: {c}"
        );
        assert_ne!(
            c["data"]["after"]["comment_id"],
            note.as_str(),
            "the note's activity is internal"
        );
    }
    assert!(
        !ids(&changes, "activity", "upsert").is_empty(),
        "the ticket's trail syncs with it"
    );
    assert!(
        ids(&changes, "customer", "upsert").is_empty()
            && ids(&changes, "member", "upsert").is_empty(),
        "requesters see no customers or members"
    );
    assert_eq!(
        cursor,
        head(&app, &team.tenant).await,
        "a finished pull ends at the head"
    );
    let ticket = changes
        .iter()
        .find(|c| c["entity"] == "ticket")
        .expect("the ticket");
    let rest = team
        .requester
        .get(&format!("/api/v1/tickets/{mine}"))
        .await
        .expect(StatusCode::OK);
    for field in [
        "id",
        "number",
        "title",
        "status",
        "version",
        "updated_at",
        "requester_id",
    ] {
        assert_eq!(
            ticket["data"][field], rest[field],
            "data is the REST shape: {field}"
        );
    }

    for staff in [&team.observer, &team.agent, &team.admin] {
        let (changes, _) = pull_all(staff, 0, 2).await;
        assert_eq!(
            ids(&changes, "ticket", "upsert"),
            BTreeSet::from([mine.clone(), theirs.clone()])
        );
        assert_eq!(
            ids(&changes, "comment", "upsert"),
            BTreeSet::from([reply.clone(), note.clone(), other_reply.clone()]),
            "staff see internal notes"
        );
        assert_eq!(
            ids(&changes, "customer", "upsert"),
            BTreeSet::from([customer.clone()])
        );
        assert_eq!(
            ids(&changes, "member", "upsert").len(),
            4,
            "the four members"
        );
        let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in log order, each record once"
        );
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_pull_has_only_the_latest_state_and_deletes_are_tombstones(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = id_of(&team.agent.create_ticket("Printer").await);
    let note = comment(&team.agent, &ticket, "Toner", true).await;
    let (_, cursor) = pull_all(&team.agent, 0, 1000).await;

    team.agent
        .patch(
            &format!("/api/v1/tickets/{ticket}"),
            json!({ "title": "Printer 2" }),
        )
        .await
        .expect(StatusCode::OK);
    let (changes, after_edit) = pull_all(&team.agent, cursor, 1000).await;
    let edited = changes
        .iter()
        .find(|c| c["entity"] == "ticket")
        .expect("the edited ticket");
    assert_eq!(edited["op"], "upsert");
    assert_eq!(edited["data"]["title"], "Printer 2");

    team.admin
        .delete(&format!("/api/v1/tickets/{ticket}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let (changes, _) = pull_all(&team.agent, after_edit, 1000).await;
    assert_eq!(
        ids(&changes, "ticket", "delete"),
        BTreeSet::from([ticket.clone()])
    );
    assert_eq!(
        ids(&changes, "comment", "delete"),
        BTreeSet::from([note]),
        "its comments went with it"
    );
    assert!(
        changes
            .iter()
            .filter(|c| c["op"] == "delete")
            .all(|c| c.get("data").is_none()),
        "tombstones carry no data"
    );
    let (tombstones_for_requester, _) = pull_all(&team.requester, after_edit, 1000).await;
    assert!(
        ids(&tombstones_for_requester, "ticket", "delete").is_empty(),
        "another's ticket's tombstone is not the requester's business"
    );

    let (snapshot, _) = pull_all(&team.agent, 0, 1000).await;
    assert!(
        snapshot.iter().all(|c| c["op"] == "upsert"),
        "a snapshot from 0 has no tombstones"
    );
    assert!(ids(&snapshot, "ticket", "upsert").is_empty());
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_member_made_requester_has_what_they_may_no_longer_see_evicted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let agent_id = team.agent.user_id().await;
    let own = id_of(&team.agent.create_ticket("My own").await);
    let public = comment(&team.agent, &own, "A reply", false).await;
    let note = comment(&team.agent, &own, "A note", true).await;
    let other = id_of(&team.requester.create_ticket("Someone else's").await);
    let customer = id_of(
        &team
            .admin
            .post("/api/v1/customers", json!({ "name": "Acme" }))
            .await
            .expect(StatusCode::CREATED),
    );
    let (_, cursor) = pull_all(&team.agent, 0, 1000).await;

    team.admin
        .patch(
            &format!("/api/v1/members/{agent_id}"),
            json!({ "role": "requester" }),
        )
        .await
        .expect(StatusCode::OK);
    let (changes, _) = pull_all(&team.agent, cursor, 1000).await;
    let evicted: BTreeSet<(String, String)> = changes
        .iter()
        .filter(|c| c["op"] == "evict")
        .map(|c| {
            (
                c["entity"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for gone in [
        ("ticket", &other),
        ("comment", &note),
        ("customer", &customer),
        ("member", &agent_id),
    ] {
        assert!(
            evicted.contains(&(gone.0.to_owned(), gone.1.clone())),
            "{gone:?} is evicted: {evicted:?}"
        );
    }
    for kept in [("ticket", &own), ("comment", &public)] {
        assert!(
            !evicted.contains(&(kept.0.to_owned(), kept.1.clone())),
            "{kept:?} stays: they raised the ticket"
        );
    }
    assert!(
        changes
            .iter()
            .all(|c| c["op"] != "upsert" || c["entity"] != "customer"),
        "nothing hidden comes back as an upsert"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_cursor_below_the_compaction_horizon_must_resync(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let (_, old) = pull_all(&team.agent, 0, 1000).await;
    let ticket = id_of(&team.agent.create_ticket("Gone soon").await);
    team.admin
        .delete(&format!("/api/v1/tickets/{ticket}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let now = head(&app, &team.tenant).await;
    let mut tx = app.owner.begin().await.expect("owner transaction");
    let tenant: TenantId = team.tenant.parse().expect("tenant id");
    let dropped = tallydesk_server::sync::compact(&mut tx, tenant, now)
        .await
        .expect("compaction");
    tx.commit().await.expect("commit");
    assert_eq!(dropped, 1, "the ticket's tombstone");

    let reply = team
        .agent
        .get(&format!("/api/v1/sync/pull?cursor={old}"))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(
        reply.code(),
        "resync_required",
        "it may have missed the delete"
    );
    let (snapshot, cursor) = pull_all(&team.agent, 0, 1000).await;
    assert_eq!(cursor, now, "a snapshot from 0 still works");
    assert!(ids(&snapshot, "ticket", "upsert").is_empty());
    pull_all(&team.agent, now, 1000).await;
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_daily_compaction_drops_only_tombstones_older_than_the_retention(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    let compactor = Compactor::new(app.owner.clone(), clock.clock(), chrono::Duration::days(30));
    let delete = |ticket: String| {
        let admin = &team.admin;
        async move {
            admin
                .delete(&format!("/api/v1/tickets/{ticket}"))
                .await
                .expect(StatusCode::NO_CONTENT);
        }
    };
    let old = id_of(&team.agent.create_ticket("Deleted long ago").await);
    delete(old).await;
    let (_, before_first_pass) = pull_all(&team.agent, 0, 1000).await;

    assert_eq!(
        compactor.pass().await.unwrap(),
        Compacted::default(),
        "nothing is old enough yet: the pass only notes where the log stands"
    );
    clock.advance(chrono::Duration::days(20));
    let recent = id_of(&team.agent.create_ticket("Deleted lately").await);
    delete(recent.clone()).await;
    compactor.pass().await.unwrap();
    clock.advance(chrono::Duration::days(11));
    let done = compactor.pass().await.unwrap();
    assert_eq!(done.tombstones, 1, "{done:?}");

    // A desktop that pulled before the first note still syncs on: the 11-day-old deletion
    // reaches it.
    let (since, _) = pull_all(&team.agent, before_first_pass, 1000).await;
    assert_eq!(ids(&since, "ticket", "delete"), BTreeSet::from([recent]));
    // One that pulled before the 31-day-old deletion may have missed it: it resyncs.
    let stale = team
        .agent
        .get(&format!(
            "/api/v1/sync/pull?cursor={}",
            before_first_pass - 1
        ))
        .await;
    assert_eq!(stale.code(), "resync_required", "{}", stale.body);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_protocol_version_is_checked_and_answered(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let request = |version: &str| {
        Request::get("/api/v1/sync/pull")
            .header("authorization", format!("Bearer {}", team.agent.token))
            .header("x-tenant-id", &team.tenant)
            .header("x-tallydesk-sync", version)
            .body(Body::empty())
            .unwrap()
    };
    let response = tower::ServiceExt::oneshot(app.router.clone(), request("1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-tallydesk-sync"], "1");
    let refused = app.send(request("2")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.code(), "unsupported_sync_protocol");

    let spec = app
        .call(axum::http::Method::GET, "/openapi.json", None, None, None)
        .await
        .expect(StatusCode::OK);
    for path in ["/api/v1/sync/pull", "/api/v1/sync/push"] {
        assert!(spec["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(spec["components"]["schemas"].get("PushRequest").is_some());
    let pull = &spec["components"]["schemas"]["PullResponse"];
    assert!(
        pull["properties"].get("head").is_some(),
        "the log's head is documented"
    );
    assert!(
        !pull["required"]
            .as_array()
            .expect("PullResponse lists its required fields")
            .contains(&json!("head")),
        "head is additive: clients read answers of servers older than it"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_pushed_batch_applies_once_however_often_it_is_sent(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let client = Uuid::now_v7();
    let (ticket, note) = (Uuid::now_v7(), Uuid::now_v7());
    let batch = json!([
        { "seq": 1, "op": "ticket.create", "args": { "id": ticket, "title": "Offline ticket" } },
        { "seq": 2, "op": "comment.create",
          "args": { "id": note, "ticket_id": ticket, "body": "written on a train", "internal": true } },
        { "seq": 3, "op": "ticket.transition", "args": { "id": ticket, "to": "closed" } },
    ]);
    let first = push(&team.agent, client, batch.clone()).await;
    assert_eq!(first[0]["status"], "applied", "{first:?}");
    assert_eq!(first[1]["status"], "applied");
    assert_eq!(first[2]["status"], "rejected");
    assert_eq!(first[2]["code"], "illegal_transition", "the REST code");
    assert!(
        first[2]["message"]
            .as_str()
            .unwrap()
            .contains("a ticket that is open cannot become closed"),
        "the workflow's reason: {}",
        first[2]["message"]
    );
    let before = head(&app, &team.tenant).await;

    let again = push(&team.agent, client, batch).await;
    assert_eq!(again, first, "the recorded results, as they were");
    assert_eq!(
        head(&app, &team.tenant).await,
        before,
        "and nothing changed"
    );
    let tickets: i64 = sqlx::query_scalar!(
        "select count(*) as \"n!\" from tickets where id = $1",
        ticket
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    let comments: i64 = sqlx::query_scalar!(
        "select count(*) as \"n!\" from comments where ticket_id = $1",
        ticket
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    let recorded: i64 = sqlx::query_scalar!(
        "select count(*) as \"n!\" from sync_mutations where client_id = $1",
        client
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!((tickets, comments, recorded), (1, 1, 3));
    let rest = team
        .agent
        .get(&format!("/api/v1/tickets/{ticket}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        rest["id"],
        ticket.to_string(),
        "the client's id is the ticket's"
    );

    let other_client = push(
        &team.agent,
        Uuid::now_v7(),
        json!([{ "seq": 1, "op": "ticket.create", "args": { "id": ticket, "title": "Same id" } }]),
    )
    .await;
    assert_eq!(other_client[0]["status"], "rejected");
    assert_eq!(other_client[0]["code"], "already_exists");

    let requester = push(
        &team.requester,
        Uuid::now_v7(),
        json!([{ "seq": 1, "op": "comment.create",
                 "args": { "id": Uuid::now_v7(), "ticket_id": ticket, "body": "hi" } }]),
    )
    .await;
    assert_eq!(requester[0]["status"], "rejected");
    assert_eq!(
        requester[0]["code"], "not_found",
        "another's ticket is invisible, as over REST"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn customers_and_ticket_deletions_are_pushed_with_the_rest_apis_checks(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let client = Uuid::now_v7();
    let (customer, ticket) = (Uuid::now_v7(), Uuid::now_v7());
    let batch = json!([
        { "seq": 1, "op": "customer.create",
          "args": { "id": customer, "name": "Globex", "email": "it@globex.example" } },
        { "seq": 2, "op": "ticket.create",
          "args": { "id": ticket, "title": "Printer", "customer_id": customer } },
        { "seq": 3, "op": "customer.update",
          "args": { "id": customer, "phone": "+33 1 23 45 67 89", "email": null } },
        { "seq": 4, "op": "customer.update", "args": { "id": customer, "email": "not an email" } },
    ]);
    let first = push(&team.agent, client, batch.clone()).await;
    let statuses: Vec<&str> = first
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["applied", "applied", "applied", "rejected"],
        "{first:?}"
    );
    assert_eq!(first[3]["code"], "invalid_field");
    assert_eq!(
        push(&team.agent, client, batch).await,
        first,
        "resent: the same answers"
    );
    let rest = team
        .agent
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(rest["name"], "Globex");
    assert_eq!(rest["phone"], "+33 1 23 45 67 89");
    assert_eq!(rest["email"], Value::Null, "null cleared it");

    let taken = push(
        &team.admin,
        Uuid::now_v7(),
        json!([{ "seq": 1, "op": "customer.create", "args": { "id": customer, "name": "Again" } }]),
    )
    .await;
    assert_eq!(taken[0]["code"], "already_exists", "{taken:?}");

    // Deleting is for admins, as over REST.
    let deletions = json!([
        { "seq": 5, "op": "ticket.delete", "args": { "id": ticket } },
        { "seq": 6, "op": "customer.delete", "args": { "id": customer } },
    ]);
    let by_agent = push(&team.agent, client, deletions).await;
    assert!(
        by_agent
            .iter()
            .all(|r| r["status"] == "rejected" && r["code"] == "forbidden"),
        "{by_agent:?}"
    );
    let (before, cursor) = pull_all(&team.agent, 0, 100).await;
    assert!(ids(&before, "customer", "upsert").contains(&customer.to_string()));
    let admin = Uuid::now_v7();
    let by_admin = push(
        &team.admin,
        admin,
        json!([
            { "seq": 1, "op": "ticket.delete", "args": { "id": ticket } },
            { "seq": 2, "op": "customer.delete", "args": { "id": customer } },
        ]),
    )
    .await;
    assert!(
        by_admin.iter().all(|r| r["status"] == "applied"),
        "{by_admin:?}"
    );
    let (after, _) = pull_all(&team.agent, cursor, 100).await;
    assert_eq!(
        ids(&after, "ticket", "delete"),
        BTreeSet::from([ticket.to_string()])
    );
    assert_eq!(
        ids(&after, "customer", "delete"),
        BTreeSet::from([customer.to_string()])
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn concurrent_pushes_of_one_mutation_apply_it_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let client = Uuid::now_v7();
    let ticket = Uuid::now_v7();
    let batch =
        json!([{ "seq": 1, "op": "ticket.create", "args": { "id": ticket, "title": "Twice" } }]);
    let pushes = (0..4).map(|_| {
        let (agent, batch) = (team.agent.clone(), batch.clone());
        tokio::spawn(async move { push(&agent, client, batch).await })
    });
    for result in futures::future::join_all(pushes).await {
        let result = result.expect("a push");
        assert_eq!(
            result[0]["status"], "applied",
            "every sender hears it applied"
        );
    }
    let tickets: i64 = sqlx::query_scalar!(
        "select count(*) as \"n!\" from tickets where id = $1",
        ticket
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(tickets, 1);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn updates_from_a_stale_version_merge_per_field_and_the_later_write_wins(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = team.agent.create_ticket("Monitor").await;
    let id = id_of(&ticket);
    let base = ticket["version"].as_i64().unwrap();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());

    let update = |seq: i64, fields: Value| {
        let mut args = json!({ "id": id, "base_version": base });
        args.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        json!([{ "seq": seq, "op": "ticket.update", "args": args }])
    };
    let r = push(
        &team.agent,
        a,
        update(1, json!({ "title": "Monitor flickers" })),
    )
    .await;
    assert_eq!(r[0]["status"], "applied");
    let r = push(&team.admin, b, update(1, json!({ "priority": "high" }))).await;
    assert_eq!(
        r[0]["status"], "applied",
        "a stale base on an untouched field applies: {r:?}"
    );
    let now = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(now["title"], "Monitor flickers", "both edits kept");
    assert_eq!(now["priority"], "high");

    let r = push(
        &team.agent,
        a,
        update(2, json!({ "description": "from A" })),
    )
    .await;
    assert_eq!(r[0]["status"], "applied");
    let r = push(
        &team.admin,
        b,
        update(2, json!({ "description": "from B" })),
    )
    .await;
    assert_eq!(r[0]["status"], "applied");
    let now = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(now["description"], "from B", "the later write wins");
    let trail = team
        .agent
        .get(&format!("/api/v1/tickets/{id}/activity"))
        .await
        .expect(StatusCode::OK);
    let edits: Vec<&Value> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "description")
        .collect();
    assert_eq!(edits.len(), 2, "both edits are in the activity: {edits:?}");
    assert_eq!(edits[0]["after"]["description"], "from A");
    assert_eq!(
        edits[1]["before"]["description"], "from A",
        "the loser's value is visible"
    );
    assert_eq!(edits[1]["after"]["description"], "from B");
    assert_eq!(
        edits[1]["after"]["merged_from_version"], base,
        "the winner's entry says it overwrote a change made since its base"
    );
    assert!(
        edits[0]["after"].get("merged_from_version").is_none(),
        "the first edit overwrote nobody"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn concurrent_writers_never_make_a_puller_skip_a_change(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    const WRITERS: usize = 8;
    const EACH: usize = 12;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let agent = team.agent.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..EACH {
                    ids.push(id_of(&agent.create_ticket(&format!("w{w} t{i}")).await));
                }
                ids
            })
        })
        .collect();
    let done = futures::future::join_all(writers);
    tokio::pin!(done);

    let mut seen: HashMap<i64, Value> = HashMap::new();
    let mut cursor = 0;
    let pull = async |cursor: &mut i64, seen: &mut HashMap<i64, Value>| {
        let (changes, next) = pull_all(&team.admin, *cursor, 5).await;
        for change in changes {
            let seq = change["seq"].as_i64().unwrap();
            assert!(seq > *cursor, "only changes after the cursor");
            assert!(seen.insert(seq, change).is_none(), "seq {seq} pulled twice");
        }
        *cursor = next;
    };
    let created: Vec<String> = loop {
        tokio::select! {
            results = &mut done => {
                break results.into_iter().flat_map(|r| r.expect("a writer")).collect();
            }
            () = pull(&mut cursor, &mut seen) => {}
        }
    };
    pull(&mut cursor, &mut seen).await;

    let last = head(&app, &team.tenant).await;
    assert_eq!(cursor, last, "the puller caught up");
    let seqs: BTreeSet<i64> = seen.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<BTreeSet<_>>(),
        "every seq pulled, no gaps: each write here made a new record"
    );
    let tickets: BTreeSet<String> = seen
        .values()
        .filter(|c| c["entity"] == "ticket")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tickets.len(), WRITERS * EACH);
    assert_eq!(tickets, created.into_iter().collect(), "every ticket seen");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn both_instances_tell_their_clients_when_the_log_advances(pool: PgPool) {
    let one = TestApp::new(pool).await;
    let team = Team::new(&one).await;
    let elsewhere = Team::other_tenant(&one, "stranger").await;
    let two = one.another_instance().await;
    let (served_one, served_two) = (one.serve().await, two.serve().await);
    let mut on_one = events(&served_one.url, &team.requester).await;
    let mut on_two = events(&served_two.url, &team.agent).await;
    let mut stranger = events(&served_two.url, &elsewhere).await;

    let reply = push(
        &team.agent,
        Uuid::now_v7(),
        json!([
            { "seq": 1, "op": "ticket.create", "args": { "id": Uuid::now_v7(), "title": "One" } },
        ]),
    )
    .await;
    assert_eq!(reply[0]["status"], "applied");
    let last = head(&one, &team.tenant).await;
    for stream in [&mut on_one, &mut on_two] {
        let changed = next_changed(stream).await;
        assert_eq!(changed["tenant_id"], team.tenant.as_str());
        assert_eq!(
            changed["seq"], last,
            "one event per committed write, at its last seq"
        );
    }
    elsewhere.create_ticket("Theirs").await;
    let theirs = next_changed(&mut stranger).await;
    assert_eq!(
        theirs["tenant_id"],
        elsewhere.tenant.as_deref().unwrap(),
        "a stream hears its own tenant only (the other tenant's change came first)"
    );
}

/// An open `/events` stream's body.
async fn events(base: &str, user: &User) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(&user.token)
        .header("x-tenant-id", user.tenant.as_deref().unwrap())
        .send()
        .await
        .expect("open the event stream");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// The next `changed` event's data, failing when none comes in 20 s.
async fn next_changed(stream: &mut reqwest::Response) -> Value {
    let read = async {
        let mut buffer = String::new();
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: changed") {
                    let data = block
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .expect("data");
                    return serde_json::from_str::<Value>(data).expect("JSON");
                }
            }
            let chunk = stream.chunk().await.expect("read").expect("stream open");
            buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    };
    tokio::time::timeout(StdDuration::from_secs(20), read)
        .await
        .expect("a changed event arrives")
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_requester_pulls_a_big_log_in_bounded_pages_without_missing_a_change(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let early = id_of(&team.requester.create_ticket("Mine, early").await);
    // Hundreds of changes the requester may not see, bulk-loaded like an import.
    let agent: Uuid = team.agent.user_id().await.parse().unwrap();
    let tenant: Uuid = team.tenant.parse().unwrap();
    let mut tx = app.owner.begin().await.unwrap();
    sqlx::query!(
        "select set_config('tallydesk.tenant_id', $1, true)",
        tenant.to_string()
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query!(
        "insert into tickets (id, tenant_id, number, title, requester_id)
         select gen_random_uuid(), $1, 1000 + n, 'Not yours ' || n, $2
           from generate_series(1, 600) as n",
        tenant,
        agent,
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let late = id_of(&team.requester.create_ticket("Mine, late").await);
    let log_end = head(&app, &team.tenant).await;

    let (mut cursor, mut pages, mut seen) = (0, 0, Vec::new());
    loop {
        let page = team
            .requester
            .get(&format!("/api/v1/sync/pull?cursor={cursor}&limit=1"))
            .await
            .expect(StatusCode::OK);
        pages += 1;
        let next = page["cursor"].as_i64().unwrap();
        let changes = page["changes"].as_array().unwrap();
        assert!(changes.len() <= 1, "never more than the limit");
        assert_eq!(
            page["head"].as_i64(),
            Some(log_end),
            "every page says where the log ends, so a client can show how far it has come, \
             even through stretches it may not see"
        );
        assert!(
            next > cursor || !page["has_more"].as_bool().unwrap(),
            "every page moves the cursor on, even an empty one: {cursor} -> {next}"
        );
        seen.extend(
            changes
                .iter()
                .filter(|c| c["entity"] == "ticket")
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        cursor = next;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![early, late],
        "their own tickets, in order, each once, and none of the others'"
    );
    assert_eq!(
        cursor, log_end,
        "the last page ends at the head it announced"
    );
    assert!(
        pages > 2,
        "a page reads a bounded stretch of the log, so 600 hidden changes take several pages \
         (took {pages})"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn sla_settings_sync_to_staff_and_never_to_requesters(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let day = json!([["09:00", "17:00"]]);
    let calendar = team
        .admin
        .post(
            "/api/v1/calendars",
            json!({ "name": "Lisbon office", "time_zone": "Europe/Lisbon",
                    "weekly": { "mon": day, "tue": day, "wed": day, "thu": day, "fri": day } }),
        )
        .await
        .expect(StatusCode::CREATED);
    let policy = team
        .admin
        .post(
            "/api/v1/sla-policies",
            json!({ "name": "Urgent", "priorities": ["urgent"], "resolution_minutes": 240,
                    "business_hours": true, "calendar_id": calendar["id"] }),
        )
        .await
        .expect(StatusCode::CREATED);
    let (calendar_id, policy_id) = (id_of(&calendar), id_of(&policy));

    for staff in [&team.observer, &team.agent, &team.admin] {
        let (changes, _) = pull_all(staff, 0, 1000).await;
        let pulled = |entity: &str, id: &str| {
            changes
                .iter()
                .find(|c| c["entity"] == entity && c["id"] == id)
                .map(|c| c["data"].clone())
        };
        assert_eq!(
            pulled("calendar", &calendar_id),
            Some(calendar.clone()),
            "the calendar as the REST API shows it"
        );
        assert_eq!(pulled("sla_policy", &policy_id), Some(policy.clone()));
    }
    let (changes, _) = pull_all(&team.requester, 0, 1000).await;
    assert!(
        changes
            .iter()
            .all(|c| c["entity"] != "calendar" && c["entity"] != "sla_policy"),
        "requesters never see the SLA settings"
    );

    let (_, cursor) = pull_all(&team.agent, 0, 1000).await;
    let edited = team
        .admin
        .patch(
            &format!("/api/v1/sla-policies/{policy_id}"),
            json!({ "name": "Urgent (4 h)", "priorities": ["urgent"], "resolution_minutes": 240,
                    "business_hours": true, "calendar_id": calendar_id, "version": 1 }),
        )
        .await
        .expect(StatusCode::OK);
    let (changes, cursor) = pull_all(&team.agent, cursor, 1000).await;
    let upserts: Vec<&Value> = changes
        .iter()
        .filter(|c| c["entity"] == "sla_policy")
        .collect();
    assert_eq!(upserts.len(), 1, "one change per edit: {changes:?}");
    assert_eq!(upserts[0]["data"], edited, "as it is now");

    team.admin
        .delete(&format!("/api/v1/sla-policies/{policy_id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let (changes, cursor) = pull_all(&team.agent, cursor, 1000).await;
    assert_eq!(
        ids(&changes, "sla_policy", "delete"),
        BTreeSet::from([policy_id]),
        "a deleted policy is a tombstone"
    );

    let agent_id = team.agent.user_id().await;
    team.admin
        .patch(
            &format!("/api/v1/members/{agent_id}"),
            json!({ "role": "requester" }),
        )
        .await
        .expect(StatusCode::OK);
    let (changes, _) = pull_all(&team.agent, cursor, 1000).await;
    assert_eq!(
        ids(&changes, "calendar", "evict"),
        BTreeSet::from([calendar_id]),
        "a member made requester loses the SLA settings"
    );
}
