//! The ticket workflow over HTTP: every legal and illegal transition, holds and views.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp, User};

const ALL: [&str; 5] = ["open", "in_progress", "on_hold", "resolved", "closed"];
const LEGAL: [(&str, &str); 7] = [
    ("open", "in_progress"),
    ("open", "resolved"),
    ("in_progress", "on_hold"),
    ("in_progress", "resolved"),
    ("on_hold", "in_progress"),
    ("resolved", "closed"),
    ("resolved", "in_progress"),
];

/// The path from `open` to each status.
fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "open" => &[],
        "in_progress" => &["in_progress"],
        "on_hold" => &["in_progress", "on_hold"],
        "resolved" => &["resolved"],
        "closed" => &["resolved", "closed"],
        _ => unreachable!("unknown status {status}"),
    }
}

async fn move_to(user: &User, id: &str, to: &str) -> tallydesk_testkit::Reply {
    user.post(
        &format!("/api/v1/tickets/{id}/transitions"),
        json!({ "to": to, "reason": "waiting on vendor" }),
    )
    .await
}

async fn ticket_in(agent: &User, owner: &User, status: &str) -> Value {
    let ticket = owner.create_ticket(&format!("ticket to be {status}")).await;
    let id = ticket["id"].as_str().unwrap();
    for step in path_to(status) {
        move_to(agent, id, step).await.expect(StatusCode::OK);
    }
    ticket
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn every_transition_is_allowed_or_refused_as_the_workflow_says(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    for from in ALL {
        for to in ALL {
            let ticket = ticket_in(&team.agent, &team.requester, from).await;
            let id = ticket["id"].as_str().unwrap();
            let reply = move_to(&team.agent, id, to).await;
            if LEGAL.contains(&(from, to)) {
                let body = reply.expect(StatusCode::OK);
                assert_eq!(body["status"], to, "{from} -> {to}");
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::CONFLICT,
                    "{from} -> {to} is illegal: {:?}",
                    reply.body
                );
                assert_eq!(reply.code(), "illegal_transition");
                let message = reply.body["message"].as_str().unwrap();
                for (f, allowed) in LEGAL {
                    if f == from {
                        assert!(
                            message.contains(allowed),
                            "the message names {allowed}: {message}"
                        );
                    }
                }
            }
        }
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn holding_needs_a_reason_which_is_kept_until_resumed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = ticket_in(&team.agent, &team.requester, "in_progress").await;
    let id = ticket["id"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{id}/transitions");

    for body in [
        json!({ "to": "on_hold" }),
        json!({ "to": "on_hold", "reason": "   " }),
    ] {
        let reply = team.agent.post(&path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            reply.body
        );
        assert!(reply.body["message"].as_str().unwrap().contains("reason"));
    }
    let unchanged = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        unchanged["status"], "in_progress",
        "a refused change changes nothing"
    );

    let held = team
        .agent
        .post(
            &path,
            json!({ "to": "on_hold", "reason": "Waiting for the courier" }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(held["hold_reason"], "Waiting for the courier");
    let resumed = team
        .agent
        .post(&path, json!({ "to": "in_progress" }))
        .await
        .expect(StatusCode::OK);
    assert_eq!(resumed["hold_reason"], Value::Null);

    let activity = team
        .agent
        .get(&format!("/api/v1/tickets/{id}/activity"))
        .await
        .expect(StatusCode::OK);
    let hold = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["after"]["status"] == "on_hold")
        .expect("the hold is in the trail");
    assert_eq!(hold["before"]["status"], "in_progress");
    assert_eq!(hold["after"]["hold_reason"], "Waiting for the courier");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn resolving_and_closing_stamp_the_ticket(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = ticket_in(&team.agent, &team.requester, "resolved").await;
    let id = ticket["id"].as_str().unwrap();
    let resolved = team
        .agent
        .get(&format!("/api/v1/tickets/{id}"))
        .await
        .expect(StatusCode::OK);
    assert!(resolved["resolved_at"].is_string());
    assert!(resolved["version"].as_i64().unwrap() > ticket["version"].as_i64().unwrap());
    let reopened = move_to(&team.agent, id, "in_progress")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        reopened["resolved_at"],
        Value::Null,
        "reopening clears the resolution"
    );
    move_to(&team.agent, id, "resolved")
        .await
        .expect(StatusCode::OK);
    let closed = move_to(&team.agent, id, "closed")
        .await
        .expect(StatusCode::OK);
    assert!(closed["closed_at"].is_string() && closed["resolved_at"].is_string());
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn requesters_close_or_reopen_their_own_resolved_tickets_and_nothing_else(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let open = team.requester.create_ticket("my laptop").await;
    let reply = move_to(&team.requester, open["id"].as_str().unwrap(), "in_progress").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);

    for to in ["closed", "in_progress"] {
        let ticket = ticket_in(&team.agent, &team.requester, "resolved").await;
        let body = move_to(&team.requester, ticket["id"].as_str().unwrap(), to)
            .await
            .expect(StatusCode::OK);
        assert_eq!(body["status"], to);
    }
    let others = ticket_in(&team.agent, &team.agent, "resolved").await;
    let reply = move_to(&team.requester, others["id"].as_str().unwrap(), "closed").await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "another's ticket is invisible to a requester"
    );

    let ticket = ticket_in(&team.agent, &team.requester, "resolved").await;
    let reply = move_to(&team.observer, ticket["id"].as_str().unwrap(), "closed").await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "observers change nothing"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_agent_opening_an_open_ticket_starts_work_but_an_observer_does_not(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let ticket = team.requester.create_ticket("printer").await;
    let id = ticket["id"].as_str().unwrap();
    let views = format!("/api/v1/tickets/{id}/views");

    let seen = team
        .observer
        .post(&views, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["status"], "open", "an observer's view changes nothing");
    let seen = team
        .requester
        .post(&views, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["status"], "open");
    let seen = team
        .agent
        .post(&views, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["status"], "in_progress");
    let again = team
        .admin
        .post(&views, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        again["version"], seen["version"],
        "a second view changes nothing"
    );
}
