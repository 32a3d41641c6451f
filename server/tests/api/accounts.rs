//! Local accounts of the built-in issuer: made by admins, by invitation links and by
//! `create-admin` (the real binary); passwords changed by their owners; and the public auth
//! configuration that tells the desktop app which providers to offer.

use std::path::PathBuf;
use std::process::Stdio;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tallydesk_server::auth::jwt::Verifier;
use tallydesk_server::embedded_pg::EmbeddedPostgres;
use tallydesk_server::issuer::throttle::Limits;
use tallydesk_server::issuer::{BuiltinIssuer, KeyRing};
use tallydesk_server::{AppState, Clock, ExternalClient};
use tokio::io::AsyncWriteExt as _;
use tower::ServiceExt as _;

use crate::issuer::{Browser, PASSWORD, Request, Setup, oauth_error};
use tallydesk_testkit::{AUDIENCE, TestApp};

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("an access token")
}

fn refresh(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("a refresh token")
}

/// `method path` as the holder of `token`.
async fn call(
    s: &Setup,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> tallydesk_testkit::Reply {
    s.app.call(method, path, Some(token), None, body).await
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn admins_create_accounts_that_sign_in_with_their_role(pool: PgPool) {
    let s = Setup::new(pool).await;
    let admin = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let admin = access(&admin);

    let created = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/accounts",
        Some(json!({ "email": "Bo@Example.com", "name": "Bo", "password": "a fine passphrase", "role": "agent" })),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(
        created["email"], "bo@example.com",
        "emails are kept lower-case"
    );
    assert_eq!(created["role"], "agent");

    let bo = s
        .browser()
        .sign_in("bo@example.com", "a fine passphrase")
        .await;
    let me = s.me(access(&bo)).await.expect(StatusCode::OK);
    assert_eq!(me["user"]["id"], created["user_id"]);
    assert_eq!(me["memberships"][0]["tenant_name"], "Default");
    assert_eq!(me["memberships"][0]["role"], "agent");

    for (body, field) in [
        (
            json!({ "email": "cy@example.com", "name": "Cy", "password": "short", "role": "agent" }),
            "password",
        ),
        (
            json!({ "email": "cy@example.com", "name": "Cy", "password": "1234567890", "role": "agent" }),
            "password",
        ),
        (
            json!({ "email": "not an email", "name": "Cy", "password": "a fine passphrase", "role": "agent" }),
            "email",
        ),
        (
            json!({ "email": "cy@example.com", "name": " ", "password": "a fine passphrase", "role": "agent" }),
            "name",
        ),
    ] {
        let reply = call(&s, admin, Method::POST, "/api/v1/accounts", Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.body
        );
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "the message names {field}: {}",
            reply.body
        );
    }
    let taken = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/accounts",
        Some(json!({ "email": "bo@example.com", "name": "Bo 2", "password": "another passphrase", "role": "requester" })),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.code(), "account_exists");

    // Only admins make accounts.
    let refused = call(
        &s,
        access(&bo),
        Method::POST,
        "/api/v1/accounts",
        Some(json!({ "email": "cy@example.com", "name": "Cy", "password": "a fine passphrase", "role": "admin" })),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_invitation_link_makes_an_account_or_joins_an_existing_one(pool: PgPool) {
    let s = Setup::new(pool).await;
    let admin = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let admin = access(&admin);
    let invitation = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/invitations",
        Some(json!({ "email": "dee@example.com", "role": "agent" })),
    )
    .await
    .expect(StatusCode::CREATED);
    let link = invitation["accept_url"]
        .as_str()
        .expect("an accept_url")
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/oidc/invitations/", s.issuer)),
        "{link}"
    );
    let listed = call(&s, admin, Method::GET, "/api/v1/invitations", None)
        .await
        .expect(StatusCode::OK);
    assert!(
        listed["items"][0].get("accept_url").is_none(),
        "the link is shown once: {listed}"
    );

    let browser = Browser::new(&s.issuer);
    let page = browser.http.get(&link).send().await.expect("the link");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    assert!(
        html.contains("Join Default") && html.contains("dee@example.com"),
        "{html}"
    );
    assert!(html.contains("<label for=\"password_again\">"), "{html}");

    let post = |form: Vec<(&'static str, &'static str)>| {
        let http = browser.http.clone();
        let link = link.clone();
        async move {
            let response = http.post(&link).form(&form).send().await.expect("accept");
            (
                response.status().as_u16(),
                response.text().await.expect("page"),
            )
        }
    };
    let (status, html) = post(vec![
        ("name", "Dee"),
        ("password", "a fine passphrase"),
        ("password_again", "another one!"),
    ])
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("The two passwords differ."), "{html}");
    let (status, html) = post(vec![
        ("name", "Dee"),
        ("password", "short"),
        ("password_again", "short"),
    ])
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("Password: must be at least 10 characters"),
        "{html}"
    );
    let (status, html) = post(vec![
        ("name", "Dee"),
        ("password", "a fine passphrase"),
        ("password_again", "a fine passphrase"),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You have joined Default"), "{html}");
    let (status, _) = post(vec![
        ("name", "Eve"),
        ("password", "a fine passphrase"),
        ("password_again", "a fine passphrase"),
    ])
    .await;
    assert_eq!(status, 404, "the link works once");

    let dee = s
        .browser()
        .sign_in("dee@example.com", "a fine passphrase")
        .await;
    let claims = tallydesk_testkit::oidc::jwt_payload(access(&dee));
    assert_eq!(
        claims["email_verified"], false,
        "holding the link proves nothing about the mailbox: the inviting admin had it too"
    );
    let me = s.me(access(&dee)).await.expect(StatusCode::OK);
    assert_eq!(me["memberships"][0]["role"], "agent");
    assert_eq!(me["user"]["name"], "Dee");
    let again = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/invitations",
        Some(json!({ "email": "dee@example.com", "role": "observer" })),
    )
    .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_member"),
        "Dee's account has that email, verified or not: {}",
        again.body
    );

    // A second tenant invites Dee, who has an account: the link asks for its password.
    let second = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/tenants",
        Some(json!({ "name": "Second" })),
    )
    .await
    .expect(StatusCode::CREATED);
    let tenant = second["id"].as_str().unwrap();
    let invitation = s
        .app
        .call(
            Method::POST,
            "/api/v1/invitations",
            Some(admin),
            Some(tenant),
            Some(json!({ "email": "dee@example.com", "role": "observer" })),
        )
        .await
        .expect(StatusCode::CREATED);
    // Nobody proved Dee's mailbox, so signing in does not join Second by itself.
    let again = s
        .browser()
        .sign_in("dee@example.com", "a fine passphrase")
        .await;
    let me = s.me(access(&again)).await.expect(StatusCode::OK);
    assert_eq!(
        me["memberships"].as_array().map(Vec::len),
        Some(1),
        "only the tenant whose link made the account: {me}"
    );
    let link = invitation["accept_url"].as_str().unwrap().to_owned();
    let html = browser
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("already has a Tallydesk account"), "{html}");
    let wrong = browser
        .http
        .post(&link)
        .form(&[("password", "not it at all")])
        .send()
        .await
        .unwrap();
    assert!(wrong.text().await.unwrap().contains("Wrong password."));
    let right = browser
        .http
        .post(&link)
        .form(&[("password", "a fine passphrase")])
        .send()
        .await
        .unwrap();
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("You have joined Second")
    );
    let me = s.me(access(&dee)).await.expect(StatusCode::OK);
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(2), "{me}");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_admin_opening_their_own_invitation_link_does_not_collect_another_tenants_invitations(
    pool: PgPool,
) {
    let s = Setup::new(pool).await;
    // Another company on this server, whose admin signs in with their own identity provider,
    // invites an address.
    let olga = s.app.user("olga");
    let company = olga
        .post("/api/v1/tenants", json!({ "name": "Olga Ltd" }))
        .await
        .expect(StatusCode::CREATED);
    let olga = olga.in_tenant(company["id"].as_str().expect("tenant id"));
    let theirs = olga
        .post(
            "/api/v1/invitations",
            json!({ "email": "vic@example.com", "role": "agent" }),
        )
        .await
        .expect(StatusCode::CREATED);

    // Ana, admin of Default, invites the same address and opens the link herself.
    let ana = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let ours = call(
        &s,
        access(&ana),
        Method::POST,
        "/api/v1/invitations",
        Some(json!({ "email": "vic@example.com", "role": "requester" })),
    )
    .await
    .expect(StatusCode::CREATED);
    let browser = Browser::new(&s.issuer);
    let made = browser
        .http
        .post(ours["accept_url"].as_str().expect("a link"))
        .form(&[
            ("name", "Not Vic"),
            ("password", "ana's own passphrase"),
            ("password_again", "ana's own passphrase"),
        ])
        .send()
        .await
        .expect("accept");
    assert_eq!(made.status(), 200);
    assert!(
        made.text()
            .await
            .expect("page")
            .contains("You have joined Default"),
        "the link's own invitation is accepted on its page"
    );

    let vic = s
        .browser()
        .sign_in("vic@example.com", "ana's own passphrase")
        .await;
    let claims = tallydesk_testkit::oidc::jwt_payload(access(&vic));
    assert_eq!(claims["email_verified"], false);
    let me = s.me(access(&vic)).await.expect(StatusCode::OK);
    let memberships: Vec<(&Value, &Value)> = me["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .map(|m| (&m["tenant_name"], &m["role"]))
        .collect();
    assert_eq!(
        memberships,
        [(&json!("Default"), &json!("requester"))],
        "Olga Ltd's invitation is not Ana's to take: {me}"
    );
    let pending = olga.get("/api/v1/invitations").await.expect(StatusCode::OK);
    assert_eq!(pending["items"][0]["email"], "vic@example.com");
    assert_eq!(
        pending["items"][0]["accepted_at"],
        Value::Null,
        "still pending: {pending}"
    );

    // Whoever Olga gives her link to accepts it with the account's password.
    let link = theirs["accept_url"].as_str().expect("a link");
    let page = browser
        .http
        .get(link)
        .send()
        .await
        .expect("the link")
        .text()
        .await
        .expect("page");
    assert!(page.contains("already has a Tallydesk account"), "{page}");
    let joined = browser
        .http
        .post(link)
        .form(&[("password", "ana's own passphrase")])
        .send()
        .await
        .expect("accept");
    assert!(
        joined
            .text()
            .await
            .expect("page")
            .contains("You have joined Olga Ltd")
    );
    let me = s.me(access(&vic)).await.expect(StatusCode::OK);
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(2), "{me}");
    let accepted = olga.get("/api/v1/invitations").await.expect(StatusCode::OK);
    assert!(
        accepted["items"][0]["accepted_at"].is_string(),
        "{accepted}"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_pending_invitation_can_be_revoked_and_its_link_stops_working(pool: PgPool) {
    let s = Setup::new(pool).await;
    let admin = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let admin = access(&admin);
    let invitation = call(
        &s,
        admin,
        Method::POST,
        "/api/v1/invitations",
        Some(json!({ "email": "late@example.com", "role": "requester" })),
    )
    .await
    .expect(StatusCode::CREATED);
    let id = invitation["id"].as_str().unwrap();
    let link = invitation["accept_url"].as_str().unwrap();

    call(
        &s,
        admin,
        Method::DELETE,
        &format!("/api/v1/invitations/{id}"),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let page = reqwest::get(link).await.expect("the link");
    assert_eq!(page.status(), 404, "a revoked invitation's link is gone");
    let listed = call(&s, admin, Method::GET, "/api/v1/invitations", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["items"], json!([]), "{listed}");
    let again = call(
        &s,
        admin,
        Method::DELETE,
        &format!("/api/v1/invitations/{id}"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn changing_the_password_ends_the_other_sign_ins(pool: PgPool) {
    let s = Setup::new(pool).await;
    let here = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let elsewhere = s.browser().sign_in("ana@example.com", PASSWORD).await;
    let change = |current: &'static str, new: &'static str| json!({ "current_password": current, "new_password": new });

    let wrong = call(
        &s,
        access(&here),
        Method::POST,
        "/api/v1/me/password",
        Some(change("not my password", "a brand new passphrase")),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::FORBIDDEN, "wrong_password")
    );
    let weak = call(
        &s,
        access(&here),
        Method::POST,
        "/api/v1/me/password",
        Some(change(PASSWORD, "short")),
    )
    .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body["message"]
            .as_str()
            .unwrap()
            .starts_with("new_password"),
        "{}",
        weak.body
    );
    call(
        &s,
        access(&here),
        Method::POST,
        "/api/v1/me/password",
        Some(change(PASSWORD, "a brand new passphrase")),
    )
    .await
    .expect(StatusCode::NO_CONTENT);

    let browser = Browser::new(&s.issuer);
    oauth_error(
        &browser.refresh(refresh(&elsewhere)).await,
        400,
        "invalid_grant",
    );
    assert_eq!(s.me(access(&elsewhere)).await.code(), "token_revoked");
    s.me(access(&here)).await.expect(StatusCode::OK);
    let (status, _) = browser.refresh(refresh(&here)).await;
    assert_eq!(status, 200, "the sign-in that changed it stays");

    let (_, url, html) = browser.authorize(&Request::new(), &[]).await.page();
    let (_, url, html) = browser
        .submit_login((url, html), "ana@example.com", PASSWORD)
        .await
        .page();
    assert!(
        html.contains("Wrong email or password."),
        "the old password no longer works"
    );
    let callback = browser
        .submit_login((url, html), "ana@example.com", "a brand new passphrase")
        .await
        .redirect();
    assert!(crate::issuer::query(&callback).contains_key("code"));

    // Someone signed in through another identity provider has no password here.
    let bob = s.app.user("bob");
    let reply = bob
        .post(
            "/api/v1/me/password",
            change("whatever it is", "a brand new passphrase"),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "not_a_local_account")
    );
}

/// The URL of the database behind `pool` (a `#[sqlx::test]` database).
pub async fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .expect("the database's name");
    let mut url = reqwest::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs `tallydesk-server create-admin` with `password` on standard input.
async fn create_admin(env: &[(&str, &str)], email: &str, password: &str) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tallydesk-server"));
    command
        .args(["create-admin", "--email", email, "--name", "Root"])
        .env_remove("TALLYDESK_OIDC_ISSUER")
        .env_remove("TALLYDESK_DATABASE_URL")
        .env_remove("TALLYDESK_DATA_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the server binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .expect("write the password");
    drop(stdin);
    let output = child
        .wait_with_output()
        .await
        .expect("create-admin finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn create_admin_bootstraps_a_headless_install_reading_the_password_from_stdin(pool: PgPool) {
    let url = database_url(&pool).await;
    let (app, served) =
        TestApp::with_builtin_issuer(pool, Clock::system(), Limits::default()).await;
    let issuer = served.url.clone();
    let env = [
        ("TALLYDESK_DATABASE_URL", url.as_str()),
        ("TALLYDESK_PUBLIC_URL", issuer.as_str()),
    ];

    let (ok, out) = create_admin(&env, "root@example.com", "short").await;
    assert!(!ok, "a weak password is refused: {out}");
    assert!(
        out.contains("password: must be at least 10 characters"),
        "{out}"
    );

    let (ok, out) = create_admin(&env, "root@example.com", "the first passphrase").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("Created the Tallydesk account root@example.com"),
        "{out}"
    );

    let browser = Browser::new(&issuer);
    let tokens = browser
        .sign_in("root@example.com", "the first passphrase")
        .await;
    let me = app
        .call(Method::GET, "/api/v1/me", Some(access(&tokens)), None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["memberships"][0]["tenant_name"], "Default");
    assert_eq!(me["memberships"][0]["role"], "admin", "{me}");

    // Again: the password is reset and the account's sign-ins end.
    let (ok, out) = create_admin(&env, "root@example.com", "the second passphrase").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("Set the password of root@example.com"),
        "{out}"
    );
    oauth_error(
        &browser.refresh(refresh(&tokens)).await,
        400,
        "invalid_grant",
    );
    let again = Browser::new(&issuer);
    let tokens = again
        .sign_in("root@example.com", "the second passphrase")
        .await;
    let me = app
        .call(Method::GET, "/api/v1/me", Some(access(&tokens)), None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        me["memberships"].as_array().map(Vec::len),
        Some(1),
        "still one Default: {me}"
    );

    // A second admin joins the same Default tenant.
    let (ok, out) = create_admin(&env, "second@example.com", "the third passphrase").await;
    assert!(ok, "{out}");
    let tokens = Browser::new(&issuer)
        .sign_in("second@example.com", "the third passphrase")
        .await;
    let second = app
        .call(Method::GET, "/api/v1/me", Some(access(&tokens)), None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        second["memberships"][0]["tenant_id"],
        me["memberships"][0]["tenant_id"]
    );
    assert_eq!(second["memberships"][0]["role"], "admin");
}

/// A fresh directory under the system temp dir (short, so the socket path stays within limits).
fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    std::env::temp_dir().join(format!("tallydesk-ca-{}-{nanos}", std::process::id()))
}

#[tokio::test]
async fn create_admin_works_beside_a_running_private_cluster_and_without_one() {
    let dir = fresh_dir();
    let env = [
        ("TALLYDESK_DATA_DIR", dir.to_str().expect("a UTF-8 path")),
        ("TALLYDESK_PUBLIC_URL", "http://127.0.0.1:8080"),
    ];

    // The server is running: its cluster is up.
    let running = EmbeddedPostgres::start(&dir.join("postgres"))
        .await
        .expect("the private cluster starts");
    let (ok, out) = create_admin(&env, "root@example.com", "the first passphrase").await;
    assert!(ok, "{out}");
    let pool = PgPool::connect(&running.database_url())
        .await
        .expect("the server's cluster is still running after create-admin");
    let accounts: i64 = sqlx::query_scalar("select count(*) from local_accounts")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(accounts, 1);
    pool.close().await;
    running.stop().await.expect("stop");

    // The server is not running: create-admin starts the cluster and stops it again.
    let (ok, out) = create_admin(&env, "other@example.com", "the second passphrase").await;
    assert!(ok, "{out}");
    let after = EmbeddedPostgres::start(&dir.join("postgres"))
        .await
        .expect("the cluster starts");
    assert!(
        !after.reused(),
        "create-admin stopped the cluster it started"
    );
    let pool = PgPool::connect(&after.database_url())
        .await
        .expect("connect");
    let accounts: i64 = sqlx::query_scalar("select count(*) from local_accounts")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(accounts, 2);
    pool.close().await;
    after.stop().await.expect("stop");
    std::fs::remove_dir_all(&dir).expect("remove the cluster directory");
}

/// `/api/v1/auth/config` of a server with these issuers.
async fn auth_config(pool: PgPool, builtin: bool, external: &[&str]) -> Value {
    let app_pool =
        tallydesk_server::db::app_pool((*pool.connect_options()).clone(), 4, Default::default())
            .await
            .expect("pool");
    let verifier = Verifier::new(
        external.iter().map(|s| (*s).to_owned()).collect(),
        AUDIENCE.to_owned(),
        reqwest::Client::new(),
    );
    let mut state = AppState::new(app_pool.clone(), verifier, Clock::system())
        .with_external_client(ExternalClient {
            client_id: "desk-app".into(),
            scopes: vec!["openid".into(), "email".into()],
        });
    if builtin {
        let keys = KeyRing::open(app_pool, chrono::Utc::now())
            .await
            .expect("keys");
        state = state.with_builtin_issuer(BuiltinIssuer::new(
            "https://desk.example.com".into(),
            AUDIENCE.into(),
            std::sync::Arc::new(keys),
        ));
    }
    let response = tallydesk_server::app(state)
        .oneshot(
            axum::http::Request::get("/api/v1/auth/config")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("router");
    assert_eq!(response.status(), StatusCode::OK, "public: no token needed");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

fn builtin_provider() -> Value {
    json!({
        "name": "Tallydesk account", "issuer": "https://desk.example.com",
        "client_id": "tallydesk-desktop",
        "scopes": ["openid", "email", "profile", "offline_access"],
        "audience": AUDIENCE, "builtin": true,
    })
}

fn external_provider() -> Value {
    json!({
        "name": "login.example.org", "issuer": "https://login.example.org/realms/acme",
        "client_id": "desk-app", "scopes": ["openid", "email"],
        "audience": AUDIENCE, "builtin": false,
    })
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn auth_config_lists_the_builtin_issuer_alone(pool: PgPool) {
    let config = auth_config(pool, true, &[]).await;
    assert_eq!(config, json!({ "providers": [builtin_provider()] }));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn auth_config_lists_external_issuers_by_host(pool: PgPool) {
    let config = auth_config(pool, false, &["https://login.example.org/realms/acme"]).await;
    assert_eq!(config, json!({ "providers": [external_provider()] }));
    // With the built-in issuer off, its routes are not there.
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn auth_config_lists_the_builtin_issuer_first_beside_external_ones(pool: PgPool) {
    let config = auth_config(pool, true, &["https://login.example.org/realms/acme"]).await;
    assert_eq!(
        config,
        json!({ "providers": [builtin_provider(), external_provider()] })
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn without_the_builtin_issuer_its_routes_answer_404(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for path in [
        "/.well-known/openid-configuration",
        "/oidc/jwks",
        "/oidc/authorize",
    ] {
        let reply = app.call(Method::GET, path, None, None, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let admin = app.user("admin");
    let reply = admin.get("/api/v1/me").await.expect(StatusCode::OK);
    let tenant = reply["memberships"][0]["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = admin.in_tenant(&tenant);
    let invitation = admin
        .post(
            "/api/v1/invitations",
            json!({ "email": "x@example.com", "role": "agent" }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert!(
        invitation.get("accept_url").is_none(),
        "no link without local accounts: {invitation}"
    );
    let reply = admin
        .post(
            "/api/v1/accounts",
            json!({ "email": "y@example.com", "name": "Y", "password": "a fine passphrase", "role": "agent" }),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "builtin_issuer_off")
    );
}
