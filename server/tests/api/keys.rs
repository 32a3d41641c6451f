//! Rotating the built-in issuer's signing keys: by the operator with `rotate-keys` (the real
//! binary, beside a running server), by a server at start when its key is old, and by several
//! instances that find the key old at the same moment.

use std::process::Stdio;

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::Value;
use sqlx::PgPool;
use tallydesk_server::issuer::throttle::Limits;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::accounts::database_url;
use crate::issuer::{PASSWORD, Setup};
use tallydesk_testkit::TestClock;
use tallydesk_testkit::oidc::jwt_part;

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("an access token")
}

fn kid(token: &str) -> String {
    jwt_part(token, 0)["kid"]
        .as_str()
        .expect("a kid in the header")
        .to_owned()
}

/// The key ids the issuer at `url` publishes, in its order.
async fn published(url: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{url}/oidc/jwks"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// (current keys, all keys) in the table.
async fn key_counts(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where retired_at is null), count(*) from issuer_signing_keys",
    )
    .fetch_one(pool)
    .await
    .expect("count the keys")
}

/// The real server binary with these variables (and none of the developer's).
fn server_command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tallydesk-server"));
    command
        .args(args)
        .env_remove("TALLYDESK_OIDC_ISSUER")
        .env_remove("TALLYDESK_DATABASE_URL")
        .env_remove("TALLYDESK_DATA_DIR")
        .env_remove("TALLYDESK_SIGNING_KEY_DAYS")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn rotate_keys_beside_a_running_server_keeps_old_tokens_and_signs_new_ones_with_its_key(
    pool: PgPool,
) {
    let url = database_url(&pool).await;
    let s = Setup::new(pool).await;
    let browser = s.browser();
    let before = browser.sign_in("ana@example.com", PASSWORD).await;
    let old_kid = kid(access(&before));

    let output = server_command(&["rotate-keys"], &[("TALLYDESK_DATABASE_URL", &url)])
        .output()
        .await
        .expect("rotate-keys runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let new_kid = stdout.trim().to_owned();
    assert!(
        new_kid.starts_with("es256-") && !new_kid.contains(char::is_whitespace),
        "standard output is the new kid alone, for scripts: {stdout:?}"
    );
    assert_ne!(new_kid, old_kid, "a new key");
    assert!(
        stderr.contains(&format!("signs with the new key {new_kid}")),
        "and says what it did: {stderr}"
    );

    // A token signed before the rotation still verifies.
    s.me(access(&before)).await.expect(StatusCode::OK);
    let after = browser.sign_in("ana@example.com", PASSWORD).await;
    assert_eq!(
        kid(access(&after)),
        new_kid,
        "the running server signs its next token with the key made beside it"
    );
    assert_eq!(
        kid(after["id_token"].as_str().expect("an ID token")),
        new_kid
    );
    s.me(access(&after)).await.expect(StatusCode::OK);
    assert_eq!(
        published(&s.issuer).await,
        [new_kid, old_kid],
        "the old key stays published, after the new one, while its tokens live"
    );
    assert_eq!(key_counts(&s.app.owner).await, (1, 2));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn instances_finding_the_key_old_at_once_rotate_it_once(pool: PgPool) {
    let clock = TestClock::new();
    let s = Setup::with(pool, clock.clock(), Limits::default()).await;
    let other = s.app.another_instance_with_builtin_issuer(&s.issuer).await;
    let ours = s.app.state.issuer.clone().expect("the built-in issuer");
    let theirs = other.state.issuer.clone().expect("the built-in issuer");
    let max_age = Duration::days(90);
    let first_kid = published(&s.issuer).await;

    clock.advance(Duration::days(90) - Duration::seconds(1));
    assert_eq!(
        ours.keys()
            .rotate_if_older(max_age, clock.now())
            .await
            .unwrap(),
        None,
        "a key younger than its days is kept"
    );
    assert_eq!(published(&s.issuer).await, first_kid);

    clock.advance(Duration::seconds(1));
    let browser = s.browser();
    let before = browser.sign_in("ana@example.com", PASSWORD).await;
    let old_kid = kid(access(&before));
    let (a, b) = tokio::join!(
        ours.keys().rotate_if_older(max_age, clock.now()),
        theirs.keys().rotate_if_older(max_age, clock.now()),
    );
    let rotated: Vec<String> = [a.expect("a check"), b.expect("a check")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(rotated.len(), 1, "one instance rotates: {rotated:?}");
    let new_kid = rotated[0].clone();
    assert_eq!(
        key_counts(&s.app.owner).await,
        (1, 2),
        "one new key, the old one retired"
    );

    for instance in [&s.app, &other] {
        instance
            .call(Method::GET, "/api/v1/me", Some(access(&before)), None, None)
            .await
            .expect(StatusCode::OK);
    }
    let after = browser.sign_in("ana@example.com", PASSWORD).await;
    assert_eq!(kid(access(&after)), new_kid);
    assert_eq!(published(&s.issuer).await, [new_kid.clone(), old_kid]);

    // Once every token the old key signed has expired, the next check drops it.
    clock.advance(Duration::minutes(61));
    assert_eq!(
        theirs
            .keys()
            .rotate_if_older(max_age, clock.now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(published(&s.issuer).await, [new_kid]);
    assert_eq!(key_counts(&s.app.owner).await, (1, 1));
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_server_rotates_an_old_key_when_it_starts(pool: PgPool) {
    let url = database_url(&pool).await;
    let s = Setup::new(pool).await;
    let old_kid = published(&s.issuer).await;
    sqlx::query("update issuer_signing_keys set created_at = created_at - interval '8 days'")
        .execute(&s.app.owner)
        .await
        .expect("age the key");

    let mut server = server_command(
        &[],
        &[
            ("TALLYDESK_DATABASE_URL", &url),
            ("TALLYDESK_LISTEN", "127.0.0.1:0"),
            ("TALLYDESK_SIGNING_KEY_DAYS", "7"),
        ],
    )
    .spawn()
    .expect("the server starts");
    let mut lines = BufReader::new(server.stderr.take().expect("the log, on stderr")).lines();
    let mut log = String::new();
    let address = loop {
        let line = lines
            .next_line()
            .await
            .expect("the server's log")
            .unwrap_or_else(|| panic!("the server stopped before listening:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if let Some((_, rest)) = line.split_once("listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_owned();
        }
    };
    let jwks = published(&format!("http://{address}")).await;
    server.kill().await.expect("stop the server");
    assert_eq!(
        jwks.len(),
        2,
        "a new key beside the old one: {jwks:?}\n{log}"
    );
    assert_eq!(
        jwks[1..],
        old_kid,
        "the old key stays published after the new one"
    );
    assert!(
        log.contains("had reached its age"),
        "the server says why it rotated:\n{log}"
    );
}
