//! SLA alerts pushed over `GET /api/v1/events` (Server-Sent Events), read from a real port.

use std::time::Duration as StdDuration;

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{Value, json};
use sqlx::PgPool;
use tallydesk_server::monitor::Monitor;

use tallydesk_testkit::{Team, TestApp, TestClock, User};

/// Long enough for a NOTIFY to cross Postgres and the fan-out on a loaded machine; only
/// reached when a message that should come does not.
const WAIT: StdDuration = StdDuration::from_secs(20);

/// One SSE message (comments, i.e. keep-alives, are skipped).
#[derive(Debug)]
struct Message {
    event: String,
    id: Option<String>,
    data: Value,
}

/// An open event stream, read message by message.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(base: &str, user: &User) -> Stream {
        let response = request(base, user)
            .send()
            .await
            .expect("connect to the event stream");
        assert_eq!(response.status(), StatusCode::OK, "the stream opens");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next message, failing the test when none comes within [`WAIT`].
    async fn next(&mut self) -> Message {
        tokio::time::timeout(WAIT, self.read())
            .await
            .expect("a message arrives")
    }

    /// The next `sla` message, with any `resync` before it (`changed` ones are skipped).
    async fn next_sla(&mut self) -> (Message, usize) {
        let mut resyncs = 0;
        loop {
            let message = self.next().await;
            match message.event.as_str() {
                "sla" => return (message, resyncs),
                "resync" => resyncs += 1,
                // The change log advanced (tests/api/sync.rs covers these).
                "changed" => {}
                other => panic!("unexpected event {other}: {message:?}"),
            }
        }
    }

    async fn read(&mut self) -> Message {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    match line.split_once(':') {
                        Some(("event", v)) => message.event = v.trim_start().to_owned(),
                        Some(("id", v)) => message.id = Some(v.trim_start().to_owned()),
                        Some(("data", v)) => data.push_str(v.trim_start()),
                        _ => {} // comments (keep-alives) and blank lines
                    }
                }
                if data.is_empty() {
                    continue;
                }
                message.data = serde_json::from_str(&data).expect("JSON data");
                return message;
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("read the stream")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn request(base: &str, user: &User) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(&user.token);
    if let Some(tenant) = &user.tenant {
        request = request.header("x-tenant-id", tenant);
    }
    request
}

/// An hourly resolution target in `admin`'s tenant.
async fn hourly_policy(admin: &User) {
    admin
        .post(
            "/api/v1/sla-policies",
            json!({ "name": "Hourly", "resolution_minutes": 60 }),
        )
        .await
        .expect(StatusCode::CREATED);
}

async fn ticket(user: &User, title: &str) -> String {
    user.create_ticket(title).await["id"]
        .as_str()
        .expect("ticket id")
        .to_owned()
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn members_hear_their_tenants_breaches_and_requesters_their_own_tickets_only(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    let other = Team::other_tenant(&app, "bob").await;
    hourly_policy(&team.admin).await;
    let raised = ticket(&team.requester, "Printer").await;
    let agents_own = ticket(&team.agent, "Server room").await;
    let served = app.serve().await;
    let mut agent = Stream::open(&served.url, &team.agent).await;
    let mut requester = Stream::open(&served.url, &team.requester).await;
    let mut outsider = Stream::open(&served.url, &other).await;

    clock.advance(Duration::hours(2));
    let monitor = Monitor::new(app.owner.clone(), clock.clock());
    let pass = monitor.tick().await.expect("a monitor pass");
    assert_eq!(pass.recorded.len(), 4, "both tickets at risk and breached");

    let mut heard = Vec::new();
    while heard.len() < 4 {
        let (message, resyncs) = agent.next_sla().await;
        assert_eq!(resyncs, 0, "nothing was missed");
        let data = &message.data;
        assert_eq!(data["tenant_id"], team.tenant.as_str());
        assert_eq!(data["target"], "resolution");
        assert!(
            data.get("requester_id").is_none(),
            "kept server-side: {data}"
        );
        let (ticket, kind) = (
            data["ticket_id"].as_str().unwrap().to_owned(),
            data["kind"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            message.id.as_deref(),
            Some(format!("{ticket}:resolution:{kind}").as_str()),
            "the id names the event the same way on every instance"
        );
        assert!(data["at"].is_string());
        heard.push((ticket, kind));
    }
    heard.sort();
    let mut expected = vec![
        (raised.clone(), "at_risk".to_owned()),
        (raised.clone(), "breached".to_owned()),
        (agents_own.clone(), "at_risk".to_owned()),
        (agents_own.clone(), "breached".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        heard, expected,
        "agents hear of every ticket of their tenant"
    );

    // Later events, each stream's own, come after anything it could wrongly have been sent:
    // a stream hears events in the order they were broadcast.
    hourly_policy(&other).await;
    let others_ticket = ticket(&other, "Their laptop").await;
    let raised_later = ticket(&team.requester, "Monitor").await;
    clock.advance(Duration::hours(2));
    let pass = monitor.tick().await.expect("a monitor pass");
    assert_eq!(pass.recorded.len(), 4);

    let (first, _) = outsider.next_sla().await;
    assert_eq!(
        first.data["ticket_id"], others_ticket,
        "another tenant's member hears nothing of this tenant's breaches"
    );
    assert_eq!(first.data["tenant_id"], other.tenant.as_deref().unwrap());

    let mut requesters = Vec::new();
    while !requesters.contains(&(raised_later.clone(), "breached".to_owned())) {
        let (message, _) = requester.next_sla().await;
        let ticket = message.data["ticket_id"].as_str().unwrap().to_owned();
        assert_ne!(
            ticket, agents_own,
            "a requester never hears of a ticket someone else raised"
        );
        requesters.push((ticket, message.data["kind"].as_str().unwrap().to_owned()));
    }
    assert!(
        requesters.contains(&(raised.clone(), "breached".to_owned())),
        "the requester heard of their own breach: {requesters:?}"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_stream_needs_a_signed_in_member(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let team = Team::new(&app).await;
    let served = app.serve().await;
    let url = format!("{}/api/v1/events", served.url);
    let http = reqwest::Client::new();

    let anonymous = http.get(&url).send().await.expect("a reply");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.expect("an error body");
    assert_eq!(body["code"], "unauthenticated");

    let forged = http
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("a reply");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let spec = reqwest::get(format!("{}/openapi.json", served.url))
        .await
        .expect("the spec")
        .json::<Value>()
        .await
        .expect("JSON");
    let ok = &spec["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        ok["text/event-stream"]["schema"]["$ref"], "#/components/schemas/SlaEvent",
        "the spec documents the stream and its payload: {ok}"
    );
    for field in ["tenant_id", "ticket_id", "target", "kind", "at"] {
        let schema = &spec["components"]["schemas"]["SlaEvent"]["properties"][field];
        assert!(schema.is_object(), "SlaEvent.{field} is documented");
    }

    let stranger = Team::other_tenant(&app, "eve").await;
    let elsewhere = request(&served.url, &stranger.in_tenant(&team.tenant))
        .send()
        .await
        .expect("a reply");
    assert_eq!(
        elsewhere.status(),
        StatusCode::FORBIDDEN,
        "no stream of a tenant one is not a member of"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_event_recorded_by_another_instance_reaches_clients_of_every_instance(pool: PgPool) {
    let clock = TestClock::new();
    let one = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&one).await;
    hourly_policy(&team.admin).await;
    let id = ticket(&team.requester, "VPN").await;
    let two = one.another_instance().await;
    let (served_one, served_two) = (one.serve().await, two.serve().await);
    let mut on_one = Stream::open(&served_one.url, &team.agent).await;
    let mut on_two = Stream::open(&served_two.url, &team.observer).await;

    // Only the second instance's monitor runs, on its own connections.
    clock.advance(Duration::hours(2));
    let pass = Monitor::new(two.owner.clone(), clock.clock())
        .tick()
        .await
        .expect("a monitor pass on instance two");
    assert_eq!(pass.recorded.len(), 2);

    for stream in [&mut on_one, &mut on_two] {
        let (at_risk, _) = stream.next_sla().await;
        let (breached, _) = stream.next_sla().await;
        assert_eq!(at_risk.data["kind"], "at_risk");
        assert_eq!(breached.data["kind"], "breached");
        assert_eq!(breached.data["ticket_id"], id.as_str());
        assert_eq!(
            breached.id,
            Some(format!("{id}:resolution:breached")),
            "the same id from either instance"
        );
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn clients_are_told_to_resync_when_the_listen_connection_was_lost(pool: PgPool) {
    let clock = TestClock::new();
    let app = TestApp::with_clock(pool, &clock).await;
    let team = Team::new(&app).await;
    hourly_policy(&team.admin).await;
    let id = ticket(&team.requester, "Badge").await;
    let served = app.serve().await;
    let mut agent = Stream::open(&served.url, &team.agent).await;

    let killed: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_all(&app.owner)
    .await
    .expect("terminate the LISTEN connection");
    assert_eq!(killed, [true], "one LISTEN connection per server process");

    let resync = agent.next().await;
    assert_eq!(resync.event, "resync", "{resync:?}");
    assert_eq!(resync.data["reason"], "reconnected");
    served.listening.ready().await;

    clock.advance(Duration::hours(2));
    Monitor::new(app.owner.clone(), clock.clock())
        .tick()
        .await
        .expect("a monitor pass");
    let (message, _) = agent.next_sla().await;
    assert_eq!(
        message.data["ticket_id"], id,
        "events flow again over the new connection"
    );
}
