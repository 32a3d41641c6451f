//! Expenses: submitted from the desktop through sync on a claim ticket, decided once by an
//! approver, immutable otherwise, and pulled by whoever may see their ticket. Segregation of
//! duties: nobody decides their own expense, agents file on their own claims only, a receipt is
//! one its submitter uploaded, and a tenant may ask for two approvals above an amount.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use tallydesk_testkit::{Team, TestApp, User};

use crate::blobs::{hex, put_blob, receipt};

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

/// One `expense.create` mutation of a lunch receipt (without its image).
fn lunch(id: Uuid, ticket: &str) -> Value {
    json!({ "seq": 1, "op": "expense.create", "args": {
        "id": id, "ticket_id": ticket, "merchant": "Café Lisboa", "spent_on": "2026-11-20",
        "currency": "EUR", "amount_minor": 1250, "subtotal_minor": 1016, "tax_minor": 234,
        "category": "meals",
        "items": [{ "description": "Lunch menu", "quantity": "2", "amount_minor": 1250 }],
    }})
}

/// The lunch with its receipt image, named by digest (uploaded or not).
fn lunch_with_receipt(id: Uuid, ticket: &str, image: &[u8]) -> Value {
    let mut mutation = lunch(id, ticket);
    mutation["args"]["receipt"] =
        json!({ "sha256": hex(image), "media_type": "image/jpeg", "size": image.len() });
    mutation
}

/// An `expense.decide` mutation.
fn decide(id: Uuid, ticket: &str, approve: bool, reason: Option<&str>) -> Value {
    json!({ "seq": 1, "op": "expense.decide",
            "args": { "id": id, "ticket_id": ticket, "approve": approve, "reason": reason } })
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
    let image = receipt(1);
    put_blob(&team.requester, &hex(&image), "image/jpeg", image.clone())
        .await
        .expect(StatusCode::CREATED);

    let filed = push(
        &team.requester,
        json!([lunch_with_receipt(expense, ticket, &image)]),
    )
    .await;
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
    assert_eq!(
        agent[0]["code"], "forbidden",
        "an agent files expenses only on claims they raised, as a requester does: {agent:?}"
    );
    let agents_own = push(&team.agent, json!([lunch(Uuid::now_v7(), agents_ticket)])).await;
    assert_eq!(
        agents_own[0]["status"], "applied",
        "on their own claim an agent files like anyone: {agents_own:?}"
    );
    let admin = push(&team.admin, json!([lunch(Uuid::now_v7(), own)])).await;
    assert_eq!(
        admin[0]["status"], "applied",
        "admins still file on any claim: {admin:?}"
    );

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

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn nobody_approves_or_rejects_an_expense_they_submitted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let claim = team.agent.create_ticket("Agent's trip").await;
    let ticket = claim["id"].as_str().unwrap();
    let expense = Uuid::now_v7();
    let filed = push(&team.agent, json!([lunch(expense, ticket)])).await;
    assert_eq!(filed[0]["status"], "applied", "{filed:?}");

    for (approve, reason) in [(true, None), (false, Some("Changed my mind"))] {
        let own = push(
            &team.agent,
            json!([decide(expense, ticket, approve, reason)]),
        )
        .await;
        assert_eq!(own[0]["status"], "rejected");
        assert_eq!(
            own[0]["code"], "own_expense",
            "segregation of duties: the submitter neither approves nor rejects: {own:?}"
        );
    }
    let listed = expenses_of(&team.agent, ticket).await;
    assert_eq!(listed[0]["status"], "submitted", "nothing was decided");
    assert_eq!(listed[0]["approvals"], json!([]), "nor an approval counted");

    let by_admin = push(&team.admin, json!([decide(expense, ticket, true, None)])).await;
    assert_eq!(
        by_admin[0]["status"], "applied",
        "another approver decides it: {by_admin:?}"
    );
    let e = &expenses_of(&team.agent, ticket).await[0];
    assert_eq!(e["status"], "approved");
    assert_eq!(e["decided_by"], team.admin.user_id().await);

    // An admin's own expense waits for another approver too.
    let admins = team.admin.create_ticket("Admin's trip").await;
    let admins = admins["id"].as_str().unwrap();
    let theirs = Uuid::now_v7();
    push(&team.admin, json!([lunch(theirs, admins)])).await;
    let own = push(&team.admin, json!([decide(theirs, admins, true, None)])).await;
    assert_eq!(own[0]["code"], "own_expense", "{own:?}");
    let message = own[0]["message"].as_str().unwrap();
    assert!(
        message.contains("another approver"),
        "the message says who decides instead: {message}"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_receipt_must_be_one_the_submitter_uploaded_in_the_tenant(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let claim = team.requester.create_ticket("Expense claim").await;
    let ticket = claim["id"].as_str().unwrap();
    let image = receipt(9);
    let sha = hex(&image);

    let never_uploaded = push(
        &team.requester,
        json!([lunch_with_receipt(Uuid::now_v7(), ticket, &image)]),
    )
    .await;
    assert_eq!(never_uploaded[0]["status"], "rejected");
    assert_eq!(
        never_uploaded[0]["code"], "invalid_field",
        "{never_uploaded:?}"
    );
    let message = never_uploaded[0]["message"].as_str().unwrap();
    assert!(
        message.contains("receipt.sha256") && message.contains("upload"),
        "the refusal names the receipt field and says what to do: {message}"
    );

    // Someone else's upload of the same bytes does not make them the requester's receipt.
    put_blob(&team.agent, &sha, "image/jpeg", image.clone())
        .await
        .expect(StatusCode::CREATED);
    let others = push(
        &team.requester,
        json!([lunch_with_receipt(Uuid::now_v7(), ticket, &image)]),
    )
    .await;
    assert_eq!(
        others[0]["code"], "invalid_field",
        "a receipt another member uploaded is not the submitter's: {others:?}"
    );
    // Nor does an upload in another tenant.
    let elsewhere = Team::other_tenant(&app, "elsewhere").await;
    let image_b = receipt(11);
    put_blob(&elsewhere, &hex(&image_b), "image/jpeg", image_b.clone())
        .await
        .expect(StatusCode::CREATED);
    let cross = push(
        &team.requester,
        json!([lunch_with_receipt(Uuid::now_v7(), ticket, &image_b)]),
    )
    .await;
    assert_eq!(cross[0]["code"], "invalid_field", "{cross:?}");

    // Uploading the bytes themselves (already stored: 200) makes the receipt theirs.
    put_blob(&team.requester, &sha, "image/jpeg", image.clone())
        .await
        .expect(StatusCode::OK);
    let expense = Uuid::now_v7();
    let filed = push(
        &team.requester,
        json!([lunch_with_receipt(expense, ticket, &image)]),
    )
    .await;
    assert_eq!(filed[0]["status"], "applied", "{filed:?}");
    assert_eq!(
        expenses_of(&team.requester, ticket).await[0]["receipt"]["sha256"],
        sha
    );
}

async fn set_dual_approval(user: &User, above_minor: Value) -> tallydesk_testkit::Reply {
    user.call(
        Method::PUT,
        "/api/v1/tenant/expense-policy",
        Some(json!({ "dual_approval_above_minor": above_minor })),
    )
    .await
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn above_the_tenants_amount_two_different_approvers_approve(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let policy = team
        .agent
        .get("/api/v1/tenant/expense-policy")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        policy,
        json!({ "dual_approval_above_minor": null }),
        "off by default"
    );
    let refused = set_dual_approval(&team.agent, json!(1000)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "admins set it");
    let negative = set_dual_approval(&team.admin, json!(-1)).await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(negative.code(), "invalid_field");
    let set = set_dual_approval(&team.admin, json!(1000))
        .await
        .expect(StatusCode::OK);
    assert_eq!(set, json!({ "dual_approval_above_minor": 1000 }));

    let claim = team.requester.create_ticket("Expense claim").await;
    let ticket = claim["id"].as_str().unwrap();
    let (big, small, refused_later) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut cheap = lunch(small, ticket);
    cheap["args"]["amount_minor"] = json!(1000);
    cheap["seq"] = json!(2);
    let mut third = lunch(refused_later, ticket);
    third["seq"] = json!(3);
    let filed = push(&team.requester, json!([lunch(big, ticket), cheap, third])).await;
    assert!(filed.iter().all(|r| r["status"] == "applied"), "{filed:?}");
    let seen = expenses_of(&team.agent, ticket).await;
    let of = |id: Uuid| {
        seen.iter()
            .find(|e| e["id"] == id.to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(of(big)["approvals_required"], 2, "12.50 is above 10.00");
    assert_eq!(
        of(small)["approvals_required"],
        1,
        "at the amount: one approval"
    );

    let single = push(&team.agent, json!([decide(small, ticket, true, None)])).await;
    assert_eq!(single[0]["status"], "applied");
    let first = push(&team.agent, json!([decide(big, ticket, true, Some("ok"))])).await;
    assert_eq!(first[0]["status"], "applied", "{first:?}");
    let listed = expenses_of(&team.requester, ticket).await;
    let e = listed.iter().find(|e| e["id"] == big.to_string()).unwrap();
    assert_eq!(
        e["status"], "submitted",
        "one approval of two decides nothing"
    );
    assert_eq!(e["decided_by"], Value::Null);
    assert_eq!(e["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(e["approvals"][0]["by"], team.agent.user_id().await);
    assert_eq!(
        e["version"], 2,
        "the first approval changes the expense, so sync carries it"
    );
    let small_now = listed
        .iter()
        .find(|e| e["id"] == small.to_string())
        .unwrap();
    assert_eq!(
        small_now["status"], "approved",
        "below the amount one approval does"
    );

    let again = push(&team.agent, json!([decide(big, ticket, true, None)])).await;
    assert_eq!(
        again[0]["code"], "already_approved",
        "the second approval is another approver's: {again:?}"
    );
    let second = push(&team.admin, json!([decide(big, ticket, true, None)])).await;
    assert_eq!(second[0]["status"], "applied", "{second:?}");
    let e = expenses_of(&team.requester, ticket)
        .await
        .into_iter()
        .find(|e| e["id"] == big.to_string())
        .unwrap();
    assert_eq!(e["status"], "approved");
    assert_eq!(e["decided_by"], team.admin.user_id().await);
    assert_eq!(e["approvals"].as_array().unwrap().len(), 2);

    // A rejection at any point rejects, even after a first approval.
    push(
        &team.agent,
        json!([decide(refused_later, ticket, true, None)]),
    )
    .await;
    let rejected = push(
        &team.admin,
        json!([decide(refused_later, ticket, false, Some("Duplicate"))]),
    )
    .await;
    assert_eq!(rejected[0]["status"], "applied", "{rejected:?}");
    let e = expenses_of(&team.requester, ticket)
        .await
        .into_iter()
        .find(|e| e["id"] == refused_later.to_string())
        .unwrap();
    assert_eq!(e["status"], "rejected");
    assert_eq!(e["reason"], "Duplicate");

    let pulled = pull_expenses(&team.requester).await;
    let big_pulled = pulled
        .iter()
        .find(|c| c["id"] == big.to_string())
        .expect("synced");
    assert_eq!(
        big_pulled["data"]["approvals"].as_array().unwrap().len(),
        2,
        "sync carries the approvals"
    );

    let trail = team
        .requester
        .get(&format!("/api/v1/tickets/{ticket}/activity"))
        .await
        .expect(StatusCode::OK);
    let counted = trail["items"].as_array().unwrap().iter().any(|a| {
        a["action"] == "expense.approved"
            && a["after"]["approvals"] == 1
            && a["after"]["approvals_required"] == 2
    });
    assert!(
        counted,
        "the trail says which approval of two it was: {trail}"
    );
}
