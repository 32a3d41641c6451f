//! One tenant's hostile members cannot take the API from everyone else: uploads that trickle
//! their bodies hold no database connection while they wait, and run out of time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use tallydesk_testkit::{Team, TestApp, User};

/// Twice the connections of the test server's pool (16) and of a production one (32).
const SLOW_CLIENTS: usize = 64;
/// An upload that would take two minutes at the trickle below.
const SLOW_BODY_BYTES: usize = 256 << 10;
/// 200 bytes every 100 ms: 2 KB/s.
const TRICKLE: (usize, Duration) = (200, Duration::from_millis(100));

/// What a slow client heard back: the status and the JSON body's `code`.
type Heard = Option<(u16, String)>;

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn slow_uploads_cannot_starve_other_tenants(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let deadline = app.state.deadlines.body;
    let team = Team::new(&app).await;
    let other = Team::other_tenant(&app, "other").await;
    other.create_ticket("theirs").await;
    let served = app.serve().await;
    let addr: SocketAddr = served
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("a loopback address");

    // Every slow client has sent its request head and a first piece of its body before the
    // other traffic starts.
    let ready = Arc::new(Barrier::new(SLOW_CLIENTS + 1));
    let members = [&team.admin, &team.agent, &team.requester];
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|n| {
            let member = members[n % members.len()];
            let head = upload_head(addr, member, n);
            let ready = ready.clone();
            tokio::spawn(async move {
                // Bounded whatever the server does: the test ends either way.
                tokio::time::timeout(
                    deadline + Duration::from_secs(20),
                    slow_upload(addr, head, ready),
                )
                .await
                .ok()
                .flatten()
            })
        })
        .collect();
    ready.wait().await;

    // Normal traffic while the slow clients hold their bodies: health, another tenant's list
    // and a new ticket there, and a list in the slow clients' own tenant.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client");
    let calls = [
        Call::get("health", "/api/v1/health", None),
        Call::get("other tenant's list", "/api/v1/tickets", Some(&other)),
        Call::post_ticket("other tenant's new ticket", &other),
        Call::get("own tenant's list", "/api/v1/tickets", Some(&team.agent)),
    ];
    let mut heard: Vec<(&str, u16, Duration)> = Vec::new();
    let until = Instant::now() + deadline / 2;
    for _round in 0..100 {
        if Instant::now() >= until {
            break;
        }
        let round =
            futures::future::join_all(calls.iter().map(|c| c.send(&http, &served.url))).await;
        heard.extend(
            calls
                .iter()
                .zip(round)
                .map(|(c, (status, took))| (c.name, status, took)),
        );
    }
    let still_sending = slow.iter().filter(|s| !s.is_finished()).count();

    for call in &calls {
        let mut took: Vec<Duration> = heard
            .iter()
            .filter(|(name, ..)| *name == call.name)
            .map(|(.., took)| *took)
            .collect();
        let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
        for (_, status, _) in heard.iter().filter(|(name, ..)| *name == call.name) {
            *statuses.entry(*status).or_default() += 1;
        }
        took.sort();
        let p95 = took[(took.len() * 95 / 100).min(took.len() - 1)];
        println!(
            "{:<26} {:>4} requests {statuses:?}, p95 {:>7.1} ms, max {:>7.1} ms",
            call.name,
            took.len(),
            p95.as_secs_f64() * 1000.0,
            took.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
    let mut slow_heard = Vec::new();
    for s in slow {
        slow_heard.push(s.await.expect("a slow client's task"));
    }
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for h in &slow_heard {
        *tally.entry(format!("{h:?}")).or_default() += 1;
    }
    println!("{SLOW_CLIENTS} slow uploads heard: {tally:?}");

    assert_eq!(
        still_sending, SLOW_CLIENTS,
        "the other requests were all answered while every slow client was still sending"
    );
    for (name, status, _) in &heard {
        assert!(
            *status == 200 || *status == 201,
            "{name} answered {status} while slow uploads trickled in: they must not take the \
             database connections from everyone else"
        );
    }
    for h in slow_heard {
        assert_eq!(
            h,
            Some((408, "request_timeout".to_owned())),
            "a body that does not arrive within the deadline is refused"
        );
    }
}

/// The head of `PUT /api/v1/blobs/{sha256}` announcing a [`SLOW_BODY_BYTES`] image.
fn upload_head(addr: SocketAddr, member: &User, n: usize) -> String {
    format!(
        "PUT /api/v1/blobs/{n:064x} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         x-tenant-id: {}\r\ncontent-type: image/jpeg\r\ncontent-length: {SLOW_BODY_BYTES}\r\n\r\n",
        member.token,
        member.tenant.as_deref().expect("a member in a tenant"),
    )
}

/// Sends `head`, then the body at [`TRICKLE`] until the server answers; returns the answer.
async fn slow_upload(addr: SocketAddr, head: String, ready: Arc<Barrier>) -> Heard {
    let tcp = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut read, mut write) = tcp.into_split();
    let (size, every) = TRICKLE;
    let piece = vec![0u8; size];
    write
        .write_all(head.as_bytes())
        .await
        .expect("request head");
    write.write_all(&piece).await.expect("a first piece");
    ready.wait().await;
    let trickle = async {
        let mut sent = size;
        while sent < SLOW_BODY_BYTES {
            tokio::time::sleep(every).await;
            if write.write_all(&piece).await.is_err() {
                break;
            }
            sent += size;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        heard = read_response(&mut read) => heard,
        () = trickle => None,
    }
}

/// Reads one HTTP/1.1 response: its status and the `code` of its JSON body.
async fn read_response(read: &mut tokio::net::tcp::OwnedReadHalf) -> Heard {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = read.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Some((status, code))
}

/// A request of the normal traffic.
struct Call {
    name: &'static str,
    path: &'static str,
    as_user: Option<User>,
    body: Option<Value>,
}

impl Call {
    fn get(name: &'static str, path: &'static str, as_user: Option<&User>) -> Call {
        Call {
            name,
            path,
            as_user: as_user.cloned(),
            body: None,
        }
    }

    fn post_ticket(name: &'static str, as_user: &User) -> Call {
        Call {
            name,
            path: "/api/v1/tickets",
            as_user: Some(as_user.clone()),
            body: Some(json!({ "title": "printer jam", "description": "again" })),
        }
    }

    /// The status (0 when no answer came) and how long the answer took.
    async fn send(&self, http: &reqwest::Client, base: &str) -> (u16, Duration) {
        let url = format!("{base}{}", self.path);
        let mut request = match &self.body {
            Some(body) => http.post(url).json(body),
            None => http.get(url),
        };
        if let Some(user) = &self.as_user {
            request = request.bearer_auth(&user.token);
            if let Some(tenant) = &user.tenant {
                request = request.header("x-tenant-id", tenant);
            }
        }
        let started = Instant::now();
        let status = match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        (status, started.elapsed())
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_server_out_of_connections_says_busy_and_when_to_retry(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let other = Team::other_tenant(&app, "other").await;
    other.get("/api/v1/tickets").await;
    let served = app.serve().await;
    let mut held = Vec::new();
    while let Ok(Ok(conn)) =
        tokio::time::timeout(Duration::from_secs(5), app.app_pool.acquire()).await
    {
        held.push(conn);
    }
    assert!(!held.is_empty(), "the test holds the pool's connections");

    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/tickets", served.url))
        .bearer_auth(&other.token)
        .header("x-tenant-id", other.tenant.as_deref().expect("a tenant"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        response.status().as_u16(),
        503,
        "no connection to be had is the server's capacity, not an error of the request"
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "a busy answer says when to try again: {retry_after:?}"
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["code"], "busy", "{body}");

    drop(held);
    let answer = other.get("/api/v1/tickets").await;
    assert_eq!(
        answer.status.as_u16(),
        200,
        "connections given back serve again: {:?}",
        answer.body
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_request_role_cannot_hold_a_connection_for_long(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut conn = app.app_pool.acquire().await.expect("a connection");
    for (setting, expected) in [
        ("statement_timeout", "15s"),
        ("idle_in_transaction_session_timeout", "15s"),
    ] {
        let value: String = sqlx::query_scalar(&format!("show {setting}"))
            .fetch_one(&mut *conn)
            .await
            .expect("a setting");
        assert_eq!(
            value, expected,
            "{setting}: a runaway statement or an abandoned transaction is cut short"
        );
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_token_endpoint_out_of_connections_says_try_later(pool: PgPool) {
    let (app, served) =
        TestApp::with_builtin_issuer(pool, tallydesk_server::Clock::system(), Default::default())
            .await;
    let mut held = Vec::new();
    while let Ok(Ok(conn)) =
        tokio::time::timeout(Duration::from_secs(5), app.app_pool.acquire()).await
    {
        held.push(conn);
    }

    let response = reqwest::Client::new()
        .post(format!("{}/oidc/token", served.url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "whatever"),
            ("client_id", tallydesk_server::issuer::CLIENT_ID),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        response.status().as_u16(),
        503,
        "a desktop refreshing its sign-in while the server is busy keeps it and tries again"
    );
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    drop(held);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_request_not_answered_in_time_is_refused_as_busy(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let other = Team::other_tenant(&app, "other").await;
    let deadlines = tallydesk_server::http::bounds::Deadlines {
        // Less than any database round trip takes.
        request: Duration::from_nanos(1),
        ..app.state.deadlines
    };
    let mut hurried = app.clone();
    hurried.router = tallydesk_server::app(app.state.clone().with_deadlines(deadlines));
    let reply = User {
        app: hurried,
        ..other.clone()
    }
    .get("/api/v1/tickets")
    .await;
    assert_eq!(reply.status.as_u16(), 503, "{:?}", reply.body);
    assert_eq!(reply.code(), "busy", "the caller may try again later");
    assert_eq!(
        other.get("/api/v1/tickets").await.status.as_u16(),
        200,
        "the server with its usual deadline answers"
    );
}
