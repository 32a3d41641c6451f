//! Expenses: submitted from the desktop through sync on a claim ticket, decided once by an
//! approver, immutable otherwise, and pulled by whoever may see their ticket.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use tallydesk_testkit::{Team, TestApp, User};

async fn push(user: &User, mutations: Value) -> Vec<Value> {
    let reply = user
        .post(
            "/api/v1/sync/push",
            json!({ "client_id": Uuid::now_v7(), "mutations": mutations }),
        )
        .await
        .expect(StatusCode::OK);
    reply["results"].as_array().expect("results").clone()
}

/// One `expense.create` mutation of a lunch receipt.
fn lunch(id: Uuid, ticket: &str) -> Value {
    json!({ "seq": 1, "op": "expense.create", "args": {
        "id": id, "ticket_id": ticket, "merchant": "Café Lisboa", "spent_on": "2026-11-20",
        "currency": "EUR", "amount_minor": 1250, "subtotal_minor": 1016, "tax_minor": 234,
        "category": "meals",
        "items": [{ "description": "Lunch menu", "quantity": "2", "amount_minor": 1250 }],
        "receipt": { "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                     "media_type": "image/jpeg", "size": 48213 },
    }})
}

async fn expenses_of(user: &User, ticket: &str) -> Vec<Value> {
    let page = user
        .get(&format!("/api/v1/tickets/{ticket}/expenses"))
        .await
        .expect(StatusCode::OK);
    page["items"].as_array().expect("items").clone()
}

async fn pull_expenses(user: &User) -> Vec<Value> {
    let mut cursor = 0;
    let mut found = Vec::new();
    loop {
        let page = user
            .get(&format!("/api/v1/sync/pull?cursor={cursor}"))
            .await
            .expect(StatusCode::OK);
        found.extend(
            page["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .filter(|c| c["entity"] == "expense")
                .cloned(),
        );
        cursor = page["cursor"].as_i64().expect("cursor");
        if !page["has_more"].as_bool().expect("has_more") {
            return found;
        }
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_requester_files_an_expense_on_their_claim_and_an_agent_approves_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let claim = team
        .requester
        .create_ticket("Expense claim: Lisbon trip")
        .await;
    let ticket = claim["id"].as_str().unwrap();
    let expense = Uuid::now_v7();

    let filed = push(&team.requester, json!([lunch(expense, ticket)])).await;
    assert_eq!(filed[0]["status"], "applied", "{filed:?}");

    let listed = expenses_of(&team.requester, ticket).await;
    assert_eq!(listed.len(), 1, "the requester sees their expense");
    let e = &listed[0];
    assert_eq!(
        e["id"],
        expense.to_string(),
        "the client's id is the expense's"
    );
    assert_eq!(e["status"], "submitted");
    assert_eq!(e["amount_minor"], 1250);
    assert_eq!(e["spent_on"], "2026-11-20");
    assert_eq!(e["items"][0]["description"], "Lunch menu");
    assert_eq!(e["receipt"]["media_type"], "image/jpeg");
    assert_eq!(e["submitted_by"], team.requester.user_id().await);

    let decided = push(
        &team.agent,
        json!([{ "seq": 1, "op": "expense.decide",
                 "args": { "id": expense, "ticket_id": ticket, "approve": true } }]),
    )
    .await;
    assert_eq!(decided[0]["status"], "applied", "{decided:?}");
    let e = &expenses_of(&team.requester, ticket).await[0];
    assert_eq!(e["status"], "approved");
    assert_eq!(e["decided_by"], team.agent.user_id().await);
    assert_eq!(e["version"], 2);

    let trail = team
        .requester
        .get(&format!("/api/v1/tickets/{ticket}/activity"))
        .await
        .expect(StatusCode::OK);
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"expense.submitted") && actions.contains(&"expense.approved"),
        "the claim's trail tells the story: {actions:?}"
    );

    let pulled = pull_expenses(&team.requester).await;
    assert_eq!(pulled.len(), 1, "the expense syncs to its requester");
    assert_eq!(pulled[0]["op"], "upsert");
    assert_eq!(pulled[0]["data"]["status"], "approved", "as it is now");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_submitted_expense_never_changes_and_is_decided_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let claim = team.requester.create_ticket("Expense claim").await;
    let ticket = claim["id"].as_str().unwrap();
    let expense = Uuid::now_v7();
    assert_eq!(
        push(&team.requester, json!([lunch(expense, ticket)])).await[0]["status"],
        "applied"
    );

    let mut corrected = lunch(expense, ticket);
    corrected["args"]["amount_minor"] = json!(9999);
    let again = push(&team.requester, json!([corrected])).await;
    assert_eq!(again[0]["status"], "rejected");
    assert_eq!(
        again[0]["code"], "expense_immutable",
        "a correction is a new expense, never an edit: {again:?}"
    );

    let reject_silently = push(
        &team.admin,
        json!([{ "seq": 1, "op": "expense.decide",
                 "args": { "id": expense, "ticket_id": ticket, "approve": false } }]),
    )
    .await;
    assert_eq!(reject_silently[0]["code"], "invalid_field");
    assert!(
        reject_silently[0]["message"]
            .as_str()
            .unwrap()
            .contains("reason"),
        "a rejection says why: {reject_silently:?}"
    );
    let rejected = push(
        &team.admin,
        json!([{ "seq": 1, "op": "expense.decide",
                 "args": { "id": expense, "ticket_id": ticket, "approve": false,
                           "reason": "No itemised receipt" } }]),
    )
    .await;
    assert_eq!(rejected[0]["status"], "applied", "{rejected:?}");
    let approved_later = push(
        &team.agent,
        json!([{ "seq": 1, "op": "expense.decide",
                 "args": { "id": expense, "ticket_id": ticket, "approve": true } }]),
    )
    .await;
    assert_eq!(
        approved_later[0]["code"], "expense_immutable",
        "the first decision stands: {approved_later:?}"
    );

    let e = &expenses_of(&team.agent, ticket).await[0];
    assert_eq!(e["status"], "rejected");
    assert_eq!(e["reason"], "No itemised receipt");
    assert_eq!(e["amount_minor"], 1250, "the corrected amount never landed");

    // Below the API too: the database refuses to edit a decided expense.
    let edited = sqlx::query!(
        "update expenses set amount_minor = 1 where id = $1",
        expense
    )
    .execute(&app.owner)
    .await
    .expect_err("a decided expense is immutable in the database");
    assert_eq!(
        edited.as_database_error().and_then(|e| e.constraint()),
        Some("expenses_immutable")
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn who_may_file_and_decide_expenses(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let agents_ticket = team.agent.create_ticket("Agent's own claim").await;
    let agents_ticket = agents_ticket["id"].as_str().unwrap();
    let own = team.requester.create_ticket("Requester's claim").await;
    let own = own["id"].as_str().unwrap();

    let on_others = push(
        &team.requester,
        json!([lunch(Uuid::now_v7(), agents_ticket)]),
    )
    .await;
    assert_eq!(
        on_others[0]["code"], "not_found",
        "requesters file on their own tickets only, and others' are invisible: {on_others:?}"
    );
    let observer = push(&team.observer, json!([lunch(Uuid::now_v7(), own)])).await;
    assert_eq!(observer[0]["code"], "forbidden", "observers file nothing");
    let agent = push(&team.agent, json!([lunch(Uuid::now_v7(), own)])).await;
    assert_eq!(agent[0]["status"], "applied", "agents file on any ticket");

    let expense = Uuid::now_v7();
    push(&team.requester, json!([lunch(expense, own)])).await;
    let self_approval = push(
        &team.requester,
        json!([{ "seq": 1, "op": "expense.decide",
                 "args": { "id": expense, "ticket_id": own, "approve": true } }]),
    )
    .await;
    assert_eq!(
        self_approval[0]["code"], "forbidden",
        "requesters never approve, not even their own"
    );

    team.admin
        .post(
            &format!("/api/v1/tickets/{own}/transitions"),
            json!({ "to": "in_progress" }),
        )
        .await
        .expect(StatusCode::OK);
    team.admin
        .post(
            &format!("/api/v1/tickets/{own}/transitions"),
            json!({ "to": "resolved" }),
        )
        .await
        .expect(StatusCode::OK);
    let late = push(&team.requester, json!([lunch(Uuid::now_v7(), own)])).await;
    assert_eq!(
        late[0]["code"], "ticket_closed",
        "a resolved claim takes no more expenses: {late:?}"
    );

    let mut bad = lunch(Uuid::now_v7(), agents_ticket);
    bad["args"]["currency"] = json!("euro");
    let bad = push(&team.agent, json!([bad])).await;
    assert_eq!(bad[0]["code"], "invalid_field");
    assert!(bad[0]["message"].as_str().unwrap().contains("currency"));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn expenses_sync_like_their_ticket(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let theirs = team.agent.create_ticket("Agent's claim").await;
    let theirs = theirs["id"].as_str().unwrap();
    let own = team.requester.create_ticket("My claim").await;
    let own = own["id"].as_str().unwrap();
    let (mine, not_mine) = (Uuid::now_v7(), Uuid::now_v7());
    push(&team.requester, json!([lunch(mine, own)])).await;
    push(&team.agent, json!([lunch(not_mine, theirs)])).await;

    let ids = |changes: Vec<Value>| {
        let mut ids: Vec<String> = changes
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![mine.to_string(), not_mine.to_string()];
    both.sort();
    assert_eq!(
        ids(pull_expenses(&team.observer).await),
        both,
        "staff see all"
    );
    assert_eq!(
        ids(pull_expenses(&team.requester).await),
        vec![mine.to_string()],
        "a requester only those on their own tickets"
    );
    let hidden = team
        .requester
        .get(&format!("/api/v1/tickets/{theirs}/expenses"))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "nor over REST");

    let before: i64 = sqlx::query_scalar!(
        "select last_change_seq from tenant_counters where tenant_id = $1",
        team.tenant.parse::<Uuid>().unwrap()
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    team.admin
        .delete(&format!("/api/v1/tickets/{theirs}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let page = team
        .observer
        .get(&format!("/api/v1/sync/pull?cursor={before}"))
        .await
        .expect(StatusCode::OK);
    let gone = page["changes"].as_array().unwrap().iter().any(|c| {
        c["entity"] == "expense" && c["id"] == not_mine.to_string() && c["op"] == "delete"
    });
    assert!(
        gone,
        "an expense goes with its ticket, as a tombstone: {page}"
    );
}
