//! The permission matrix, enforced on every route for every role.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp, User};

const REQUESTER: usize = 0;
const OBSERVER: usize = 1;
const AGENT: usize = 2;
const ADMIN: usize = 3;

/// One route and which roles (requester, observer, agent, admin) may use it.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: [bool; 4],
}

fn case(method: Method, path: String, body: Option<Value>, allowed: &[usize]) -> Case {
    let mut mask = [false; 4];
    for &role in allowed {
        mask[role] = true;
    }
    Case {
        method,
        path,
        body,
        allowed: mask,
    }
}

/// Fresh records for one role's attempt, so attempts don't disturb each other.
async fn cases(team: &Team, app: &TestApp, attempt: usize) -> Vec<Case> {
    let ticket = team.requester.create_ticket("matrix").await;
    let t = ticket["id"].as_str().unwrap().to_owned();
    let customer = team
        .agent
        .post("/api/v1/customers", json!({ "name": "Matrix Co" }))
        .await
        .expect(StatusCode::CREATED);
    let c = customer["id"].as_str().unwrap().to_owned();
    let extra_name = format!("extra{attempt}");
    team.admin
        .post(
            "/api/v1/invitations",
            json!({ "email": format!("{extra_name}@example.com"), "role": "agent" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let extra = app
        .user(&extra_name)
        .in_tenant(&team.tenant)
        .user_id()
        .await;
    use Method as M;
    vec![
        case(
            M::GET,
            "/api/v1/tickets".into(),
            None,
            &[REQUESTER, OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::POST,
            "/api/v1/tickets".into(),
            Some(json!({ "title": "new" })),
            &[REQUESTER, AGENT, ADMIN],
        ),
        case(
            M::GET,
            format!("/api/v1/tickets/{t}"),
            None,
            &[REQUESTER, OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::POST,
            format!("/api/v1/tickets/{t}/views"),
            None,
            &[REQUESTER, OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::GET,
            format!("/api/v1/tickets/{t}/comments"),
            None,
            &[REQUESTER, OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::GET,
            format!("/api/v1/tickets/{t}/activity"),
            None,
            &[REQUESTER, OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::POST,
            format!("/api/v1/tickets/{t}/comments"),
            Some(json!({ "body": "reply" })),
            &[REQUESTER, AGENT, ADMIN],
        ),
        case(
            M::POST,
            format!("/api/v1/tickets/{t}/comments"),
            Some(json!({ "body": "note", "internal": true })),
            &[AGENT, ADMIN],
        ),
        case(
            M::PATCH,
            format!("/api/v1/tickets/{t}"),
            Some(json!({ "priority": "high" })),
            &[AGENT, ADMIN],
        ),
        case(
            M::POST,
            format!("/api/v1/tickets/{t}/transitions"),
            Some(json!({ "to": "resolved" })),
            &[AGENT, ADMIN],
        ),
        case(M::DELETE, format!("/api/v1/tickets/{t}"), None, &[ADMIN]),
        case(
            M::GET,
            "/api/v1/customers".into(),
            None,
            &[OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::POST,
            "/api/v1/customers".into(),
            Some(json!({ "name": "New Co" })),
            &[AGENT, ADMIN],
        ),
        case(
            M::GET,
            format!("/api/v1/customers/{c}"),
            None,
            &[OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::PATCH,
            format!("/api/v1/customers/{c}"),
            Some(json!({ "notes": "vip" })),
            &[AGENT, ADMIN],
        ),
        case(M::DELETE, format!("/api/v1/customers/{c}"), None, &[ADMIN]),
        case(
            M::GET,
            "/api/v1/members".into(),
            None,
            &[OBSERVER, AGENT, ADMIN],
        ),
        case(
            M::PATCH,
            format!("/api/v1/members/{extra}"),
            Some(json!({ "role": "observer" })),
            &[ADMIN],
        ),
        case(
            M::DELETE,
            format!("/api/v1/members/{extra}"),
            None,
            &[ADMIN],
        ),
        case(M::GET, "/api/v1/invitations".into(), None, &[ADMIN]),
        case(
            M::POST,
            "/api/v1/invitations".into(),
            Some(json!({ "email": format!("new{attempt}@example.com"), "role": "requester" })),
            &[ADMIN],
        ),
    ]
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn every_route_allows_exactly_the_roles_the_matrix_names(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let roles: [(&str, &User); 4] = [
        ("requester", &team.requester),
        ("observer", &team.observer),
        ("agent", &team.agent),
        ("admin", &team.admin),
    ];
    for (index, (name, user)) in roles.into_iter().enumerate() {
        for case in cases(&team, &app, index).await {
            let reply = user
                .call(case.method.clone(), &case.path, case.body.clone())
                .await;
            if case.allowed[index] {
                assert!(
                    reply.status.is_success(),
                    "{name} may {} {}: {:?} {}",
                    case.method,
                    case.path,
                    reply.status,
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{name} may not {} {}: {}",
                    case.method,
                    case.path,
                    reply.body
                );
                assert_eq!(reply.code(), "forbidden");
            }
        }
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn requesters_cannot_see_tickets_they_did_not_raise(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let theirs = team.agent.create_ticket("agent's own").await;
    let t = theirs["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/tickets/{t}"), None),
        (Method::GET, format!("/api/v1/tickets/{t}/comments"), None),
        (Method::GET, format!("/api/v1/tickets/{t}/activity"), None),
        (
            Method::POST,
            format!("/api/v1/tickets/{t}/comments"),
            Some(json!({ "body": "hi" })),
        ),
        (Method::POST, format!("/api/v1/tickets/{t}/views"), None),
    ] {
        let reply = team.requester.call(method.clone(), &path, body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}
