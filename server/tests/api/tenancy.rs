//! Identity and tenants: first user, memberships, invitations, the last admin.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use tallydesk_testkit::{Team, TestApp};

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_first_user_becomes_admin_of_default_and_the_next_has_no_membership(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = app
        .user("ana")
        .get("/api/v1/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(first["user"]["email"], "ana@example.com");
    let memberships = first["memberships"].as_array().unwrap();
    assert_eq!(
        memberships.len(),
        1,
        "the first user gets exactly one tenant: {first}"
    );
    assert_eq!(memberships[0]["tenant_name"], "Default");
    assert_eq!(memberships[0]["role"], "admin");

    let second = app
        .user("bo")
        .get("/api/v1/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        second["memberships"],
        json!([]),
        "only the very first user claims the installation"
    );
    let reply = app.user("bo").get("/api/v1/tickets").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "no_membership");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("ask an admin to invite you")
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn requests_without_a_valid_token_are_unauthorized(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let reply = app
        .call(axum::http::Method::GET, "/api/v1/me", None, None, None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthenticated");
    let reply = app
        .call(
            axum::http::Method::GET,
            "/api/v1/tickets",
            Some("not-a-jwt"),
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn invited_users_join_with_their_verified_email_only(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    team.admin
        .post(
            "/api/v1/invitations",
            json!({ "email": "Eve@Example.com", "role": "agent" }),
        )
        .await
        .expect(StatusCode::CREATED);

    let unverified = app.issuer.token_with(
        "eve-unverified",
        json!({ "email": "eve@example.com", "email_verified": false }),
    );
    let me = app
        .call(
            axum::http::Method::GET,
            "/api/v1/me",
            Some(&unverified),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        me["memberships"],
        json!([]),
        "an unverified email proves nothing"
    );

    let eve = app.issuer.token_with(
        "eve",
        json!({ "email": "eve@example.com", "email_verified": true }),
    );
    let me = app
        .call(
            axum::http::Method::GET,
            "/api/v1/me",
            Some(&eve),
            None,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["memberships"][0]["tenant_id"], team.tenant.as_str());
    assert_eq!(me["memberships"][0]["role"], "agent");

    let invitations = team
        .admin
        .get("/api/v1/invitations")
        .await
        .expect(StatusCode::OK);
    let eve_invite = invitations["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "eve@example.com")
        .unwrap();
    assert!(
        eve_invite["accepted_at"].is_string(),
        "the invitation is marked accepted: {eve_invite}"
    );

    let members = team
        .admin
        .get("/api/v1/members")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        5,
        "admin, agent, observer, requester, eve"
    );

    let dup = team
        .admin
        .post(
            "/api/v1/invitations",
            json!({ "email": "agent@example.com", "role": "agent" }),
        )
        .await;
    assert_eq!(
        dup.status,
        StatusCode::CONFLICT,
        "already a member: {:?}",
        dup.body
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_user_in_several_tenants_must_pick_one(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let admin = app.user("admin");
    let second = admin
        .post("/api/v1/tenants", json!({ "name": "Second" }))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(second["name"], "Second");

    let reply = admin.get("/api/v1/tickets").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "tenant_required");

    admin
        .in_tenant(second["id"].as_str().unwrap())
        .get("/api/v1/tickets")
        .await
        .expect(StatusCode::OK);
    admin
        .in_tenant(&team.tenant)
        .get("/api/v1/tickets")
        .await
        .expect(StatusCode::OK);

    let reply = admin.in_tenant("not-a-uuid").get("/api/v1/tickets").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_tenant");

    let me = admin.get("/api/v1/me").await.expect(StatusCode::OK);
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    let empty_name = admin.post("/api/v1/tenants", json!({ "name": "  " })).await;
    assert_eq!(empty_name.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_last_admin_can_be_neither_demoted_nor_removed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let admin_id = team.admin.user_id().await;
    let agent_id = team.agent.user_id().await;

    let reply = team
        .admin
        .patch(
            &format!("/api/v1/members/{admin_id}"),
            json!({ "role": "agent" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "last_admin");
    let reply = team
        .admin
        .delete(&format!("/api/v1/members/{admin_id}"))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);

    let promoted = team
        .admin
        .patch(
            &format!("/api/v1/members/{agent_id}"),
            json!({ "role": "admin" }),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(promoted["role"], "admin");
    team.admin
        .patch(
            &format!("/api/v1/members/{admin_id}"),
            json!({ "role": "agent" }),
        )
        .await
        .expect(StatusCode::OK);
    let members = team
        .agent
        .get("/api/v1/members")
        .await
        .expect(StatusCode::OK);
    let roles: Vec<_> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles.iter().filter(|r| *r == "admin").count(), 1);

    team.agent
        .delete(&format!("/api/v1/members/{admin_id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let me = app
        .user("admin")
        .get("/api/v1/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["memberships"], json!([]), "removed members lose access");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn membership_changes_are_in_the_activity_log(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let team = Team::new(&app).await;
    let agent_id = team.agent.user_id().await;
    team.admin
        .patch(
            &format!("/api/v1/members/{agent_id}"),
            json!({ "role": "observer" }),
        )
        .await
        .expect(StatusCode::OK);
    let actions: Vec<String> = sqlx::query_scalar("select action from activity order by at, id")
        .fetch_all(&pool)
        .await
        .unwrap();
    for expected in [
        "tenant.created",
        "invitation.created",
        "member.joined",
        "member.role_changed",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} is logged: {actions:?}"
        );
    }
}
