//! Two desktops syncing through a real Tallydesk server (in-process, on a throwaway Postgres
//! database), signed in through the certified `oidc-provider`: offline edits on both converge
//! to the server's state, a resent push applies once, a refused move is kept with its reason.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tallydesk_desktop_core::ErrorCode;
use tallydesk_desktop_core::account::Connection;
use tallydesk_desktop_core::model::TicketQuery;
use tallydesk_desktop_core::sync::{Replica, SyncState, live, store};
use tallydesk_shared::api::{Comment, CreateTicket, PatchTicket, Ticket};
use tallydesk_shared::sync::{ChangeOp, Entity, PushRequest};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{Role, Status, TicketId};

use crate::Fixture;
use crate::account_harness::{AUDIENCE, Behaviour, OidcProvider, TestBrowser, TestClock, setup};

/// A desktop signed in to `server` as `login`, with its replica.
pub(crate) struct Desktop {
    pub(crate) fixture: Fixture,
    pub(crate) connection: Connection,
    pub(crate) replica: Replica,
    _browser: TestBrowser,
}

impl Desktop {
    async fn sign_in(server: &str, issuer: &str, login: &str, clock: &TestClock) -> Desktop {
        let browser = TestBrowser::new(Behaviour::SignIn(login.into()));
        let fixture = Fixture::new(false).await;
        let connection = Connection::open(fixture.desk.clone(), setup(&browser, clock))
            .await
            .expect("the account opens");
        connection
            .sign_in(server, issuer)
            .await
            .unwrap_or_else(|e| panic!("{login} signs in: {e:?}"));
        let replica = Replica::new(fixture.desk.clone(), connection.clone());
        Desktop {
            fixture,
            connection,
            replica,
            _browser: browser,
        }
    }

    pub(crate) async fn sync(&self) {
        self.replica.sync().await.expect("syncs");
        let status = self.replica.status();
        assert_eq!(status.state, SyncState::Online, "{status:?}");
    }

    async fn ticket(&self, id: TicketId) -> Ticket {
        self.fixture
            .desk
            .ticket(id)
            .await
            .expect("the ticket is here")
            .ticket
    }

    async fn comments(&self, id: TicketId) -> Vec<Comment> {
        self.fixture.desk.comments(id).await.unwrap()
    }

    /// The ticket and its comments as the server holds them, from its change log.
    async fn on_server(&self, id: TicketId) -> (Ticket, Vec<Comment>) {
        let mut cursor = 0;
        let mut ticket = None;
        let mut comments = Vec::new();
        loop {
            let page = self.connection.sync_pull(cursor, 1000).await.unwrap();
            for change in page.changes {
                match (change.entity, change.op) {
                    (Entity::Ticket, ChangeOp::Upsert) if change.id == id.as_uuid() => {
                        ticket = Some(serde_json::from_value(change.data.unwrap()).unwrap());
                    }
                    (Entity::Comment, ChangeOp::Upsert) => {
                        let c: Comment = serde_json::from_value(change.data.unwrap()).unwrap();
                        if c.ticket_id == id {
                            comments.retain(|o: &Comment| o.id != c.id);
                            comments.push(c);
                        }
                    }
                    _ => {}
                }
            }
            cursor = page.cursor;
            if !page.has_more {
                break;
            }
        }
        comments.sort_by_key(|c| (c.created_at, c.id));
        (ticket.expect("the server has the ticket"), comments)
    }
}

/// What a test keeps running: the identity provider and the server's LISTEN connection.
pub(crate) struct Running {
    _provider: OidcProvider,
    _listening: tallydesk_server::events::Listening,
}

/// A Tallydesk server on a loopback port, trusting `issuer`, with the LISTEN connection that
/// feeds its `changed` events (as `serve()` starts it).
async fn start_server(
    owner: PgPool,
    issuer: String,
) -> (String, tallydesk_server::events::Listening) {
    let options = (*owner.connect_options()).clone();
    let pool = tallydesk_server::db::app_pool(options.clone(), 8)
        .await
        .expect("the server's request pool");
    let verifier = tallydesk_server::auth::jwt::Verifier::new(
        vec![issuer],
        AUDIENCE.to_owned(),
        reqwest::Client::new(),
    );
    let state = tallydesk_server::AppState::new(pool, verifier, tallydesk_server::Clock::system());
    let listening = state.events.listen(options);
    listening.ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the server");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, tallydesk_server::app(state))
            .await
            .expect("the server runs");
    });
    (url, listening)
}

/// Ana (admin of the server's first tenant) and Bob, whom she invited as an agent.
pub(crate) async fn ana_and_bob(pool: PgPool) -> (Running, Desktop, Desktop) {
    let provider = OidcProvider::start().await;
    let (server, listening) = start_server(pool, provider.issuer.clone()).await;
    let clock = TestClock::default();
    let ana = Desktop::sign_in(&server, &provider.issuer, "ana", &clock).await;
    ana.connection
        .invite("bob@example.com", Role::Agent)
        .await
        .expect("ana invites bob");
    let bob = Desktop::sign_in(&server, &provider.issuer, "bob", &clock).await;
    assert_eq!(bob.fixture.desk.me().role, Role::Agent);
    let running = Running {
        _provider: provider,
        _listening: listening,
    };
    (running, ana, bob)
}

fn new_ticket(title: &str) -> CreateTicket {
    CreateTicket {
        title: title.into(),
        description: "made on a desktop".into(),
        ..Default::default()
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn offline_edits_on_two_desktops_converge_to_the_servers_state(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let made = ana
        .fixture
        .desk
        .create_ticket(&new_ticket("VPN drops"))
        .await
        .unwrap();
    assert_eq!(ana.replica.refresh_status().await.unwrap().unsent, 1);
    ana.sync().await;
    assert_eq!(
        ana.replica.status().unsent,
        0,
        "the create reached the server"
    );
    bob.sync().await;
    let seen = bob.ticket(made.id).await;
    assert_eq!(seen.title, "VPN drops", "bob's desktop has ana's ticket");
    assert_eq!(
        ana.ticket(made.id).await.number,
        seen.number,
        "the server numbered it"
    );

    // Both offline: ana retitles and comments; bob raises the priority and comments.
    ana.fixture
        .desk
        .update_ticket(
            made.id,
            &PatchTicket {
                title: Some("VPN drops every hour".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ana.fixture
        .desk
        .add_comment(made.id, "from ana", false)
        .await
        .unwrap();
    bob.fixture
        .desk
        .update_ticket(
            made.id,
            &PatchTicket {
                priority: Some(Priority::High),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    bob.fixture
        .desk
        .add_comment(made.id, "from bob", true)
        .await
        .unwrap();
    assert_eq!(bob.replica.refresh_status().await.unwrap().unsent, 2);

    ana.sync().await;
    bob.sync().await;
    ana.sync().await;

    let (server_ticket, server_comments) = bob.on_server(made.id).await;
    assert_eq!(server_ticket.title, "VPN drops every hour");
    assert_eq!(
        server_ticket.priority,
        Priority::High,
        "bob's stale edit of another field merged in"
    );
    for desktop in [&ana, &bob] {
        assert_eq!(
            desktop.ticket(made.id).await,
            server_ticket,
            "each desktop holds the server's ticket"
        );
        assert_eq!(
            desktop.comments(made.id).await,
            server_comments,
            "each desktop holds the server's comments"
        );
        assert_eq!(desktop.replica.status().unsent, 0);
        assert_eq!(desktop.replica.status().rejected, 0);
    }
    assert_eq!(server_comments.len(), 2);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_push_resent_after_its_answer_was_lost_applies_once(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let made = ana
        .fixture
        .desk
        .create_ticket(&new_ticket("Laptop fan"))
        .await
        .unwrap();
    ana.fixture
        .desk
        .add_comment(made.id, "it whirs", false)
        .await
        .unwrap();
    let scope = ana.fixture.desk.sync_scope().expect("signed in");
    let store = ana.fixture.desk.store();
    let pending = store::pending(store, &scope, 100).await.unwrap();
    assert_eq!(pending.len(), 2);
    let request = PushRequest {
        client_id: store::client_id(store).await.unwrap(),
        mutations: store::mutations(&pending),
    };
    // The server applies the push, but its answer never reaches the desktop.
    let lost = ana.connection.sync_push(&request).await.unwrap();
    assert_eq!(lost.results.len(), 2);
    assert_eq!(
        ana.replica.refresh_status().await.unwrap().unsent,
        2,
        "without an answer, the intents stay queued"
    );
    // The next sync sends them again.
    ana.sync().await;
    assert_eq!(ana.replica.status().unsent, 0);
    assert_eq!(
        ana.replica.status().rejected,
        0,
        "a resent create is not refused"
    );

    bob.sync().await;
    let tickets = bob
        .fixture
        .desk
        .list_tickets(&Default::default())
        .await
        .unwrap();
    assert_eq!(tickets.total, 1, "one ticket, not two");
    assert_eq!(bob.comments(made.id).await.len(), 1, "one comment, not two");
    let (_, on_server) = bob.on_server(made.id).await;
    assert_eq!(on_server.len(), 1);
    assert_eq!(ana.comments(made.id).await, on_server);
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_move_the_server_refuses_is_kept_with_its_reason(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let made = ana
        .fixture
        .desk
        .create_ticket(&new_ticket("Broken chair"))
        .await
        .unwrap();
    ana.sync().await;
    bob.sync().await;

    // Ana resolves and closes it; bob, offline, starts work on it.
    ana.fixture
        .desk
        .transition(made.id, Status::Resolved, None)
        .await
        .unwrap();
    ana.fixture
        .desk
        .transition(made.id, Status::Closed, None)
        .await
        .unwrap();
    bob.fixture
        .desk
        .transition(made.id, Status::InProgress, None)
        .await
        .unwrap();
    assert_eq!(bob.ticket(made.id).await.status, Status::InProgress);
    ana.sync().await;
    bob.sync().await;

    assert_eq!(
        bob.ticket(made.id).await.status,
        Status::Closed,
        "bob's desktop shows the server's status, not his refused move"
    );
    let status = bob.replica.status();
    assert_eq!((status.unsent, status.rejected), (0, 1), "{status:?}");
    let rejections = bob.replica.rejections(Some(made.id)).await.unwrap();
    assert_eq!(rejections.len(), 1, "the refusal is shown on the ticket");
    assert!(
        rejections[0].message.contains("closed"),
        "the server's reason says why: {:?}",
        rejections[0]
    );
    assert!(!rejections[0].code.as_str().is_empty());

    // Syncing again changes nothing: the refusal stays until bob dismisses it.
    bob.sync().await;
    assert_eq!(bob.replica.status().rejected, 1);
    bob.replica
        .dismiss_rejection(rejections[0].seq)
        .await
        .unwrap();
    assert_eq!(bob.replica.status().rejected, 0);
    assert_eq!(ana.ticket(made.id).await, bob.ticket(made.id).await);
}

/// Waits (at most half a minute) until `ready` holds.
async fn eventually<F, Fut>(what: &str, ready: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within half a minute");
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_live_loop_brings_one_desktops_change_to_the_other(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let loops = [
        tokio::spawn(live::run(ana.replica.clone(), Arc::default())),
        tokio::spawn(live::run(bob.replica.clone(), Arc::default())),
    ];
    eventually("bob's first sync", || async {
        bob.replica.status().state == SyncState::Online
    })
    .await;
    // Nothing prompts bob's loop now but the server's `changed` events (its idle sync is
    // minutes away); ana's loop pushes her write by itself.
    let made = ana
        .fixture
        .desk
        .create_ticket(&new_ticket("Projector flickers"))
        .await
        .unwrap();
    eventually("ana's ticket on bob's desktop", || async {
        bob.fixture.desk.ticket(made.id).await.is_ok()
    })
    .await;
    assert_eq!(ana.replica.status().unsent, 0, "ana's loop pushed it");
    for task in loops {
        task.abort();
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn a_compacted_log_rebuilds_from_the_start_keeping_unsent_changes(pool: PgPool) {
    let owner = pool.clone();
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let made = ana
        .fixture
        .desk
        .create_ticket(&new_ticket("Badge reader"))
        .await
        .unwrap();
    ana.sync().await;
    bob.sync().await;
    // Bob comments offline; ana renames the ticket; then the server compacts its log.
    bob.fixture
        .desk
        .add_comment(made.id, "swapped the reader", false)
        .await
        .unwrap();
    ana.fixture
        .desk
        .update_ticket(
            made.id,
            &PatchTicket {
                title: Some("Badge reader at the back door".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ana.sync().await;
    let tenant = ana.fixture.desk.sync_scope().unwrap().tenant_id;
    let head: i64 =
        sqlx::query_scalar("select last_change_seq from tenant_counters where tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_one(&owner)
            .await
            .unwrap();
    let mut tx = owner.begin().await.unwrap();
    tallydesk_server::sync::compact(&mut tx, tenant, head)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let cursor = store::position(bob.fixture.desk.store())
        .await
        .unwrap()
        .cursor;
    assert_eq!(
        bob.connection.sync_pull(cursor, 10).await.unwrap_err().code,
        ErrorCode::ResyncRequired,
        "bob's cursor is below the new horizon"
    );

    bob.sync().await;
    let (server_ticket, server_comments) = bob.on_server(made.id).await;
    assert_eq!(server_ticket.title, "Badge reader at the back door");
    assert_eq!(
        bob.ticket(made.id).await,
        server_ticket,
        "rebuilt from the start"
    );
    assert_eq!(
        server_comments.len(),
        1,
        "bob's unsent comment was kept and sent"
    );
    assert_eq!(bob.comments(made.id).await, server_comments);
    assert_eq!(bob.replica.status().unsent, 0);
    assert!(
        store::position(bob.fixture.desk.store())
            .await
            .unwrap()
            .cursor
            >= head
    );
}

/// The ticket numbers a search on this desktop finds.
async fn found(desktop: &Desktop, search: &str) -> Vec<i64> {
    let page = desktop
        .fixture
        .desk
        .list_tickets(&TicketQuery {
            search: Some(search.into()),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .expect("the search runs");
    let mut numbers: Vec<i64> = page.items.iter().map(|t| t.number).collect();
    numbers.sort_unstable();
    numbers
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn comments_pulled_in_bulk_over_several_pages_are_found_by_search(pool: PgPool) {
    let owner = pool.clone();
    let (_running, ana, bob) = ana_and_bob(pool).await;
    let scope = ana.fixture.desk.sync_scope().expect("ana is signed in");
    // An import on the server: 400 tickets with 4 comments each, every comment with a word of
    // its own.
    let mut tx = owner.begin().await.unwrap();
    sqlx::query("select set_config('tallydesk.tenant_id', $1, true)")
        .bind(scope.tenant_id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "insert into tickets (id, tenant_id, number, title, requester_id)
         select gen_random_uuid(), $1, n, 'Imported ' || n, $2
           from generate_series(1, 400) as n",
    )
    .bind(scope.tenant_id.as_uuid())
    .bind(scope.user.id.as_uuid())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "insert into comments (id, tenant_id, ticket_id, author_id, body, internal)
         select gen_random_uuid(), t.tenant_id, t.id, $1,
                format('The rollers look worn (quokka%sx%sz)', t.number, k), k = 4
           from tickets t cross join generate_series(1, 4) as k
          where t.tenant_id = $2",
    )
    .bind(scope.user.id.as_uuid())
    .bind(scope.tenant_id.as_uuid())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(
        bob.connection.sync_pull(0, 1000).await.unwrap().has_more,
        "the snapshot takes several pages"
    );

    bob.sync().await;
    assert_eq!(
        found(&bob, "rollers").await,
        (1..=400).collect::<Vec<_>>(),
        "every imported ticket is found by its comments' words"
    );
    for n in [1, 137, 250, 400] {
        for k in 1..=4 {
            assert_eq!(
                found(&bob, &format!("quokka{n}x{k}z")).await,
                vec![n],
                "comment {k} of ticket {n}, internal notes included, is found on its ticket"
            );
        }
    }

    // A comment that comes later, in a pull of one page, is found too.
    let query = TicketQuery {
        search: Some("quokka7x1z".into()),
        ..Default::default()
    };
    let ticket = bob.fixture.desk.list_tickets(&query).await.unwrap().items[0].id;
    ana.sync().await;
    ana.fixture
        .desk
        .add_comment(ticket, "Replaced the wombat roller", false)
        .await
        .unwrap();
    assert_eq!(
        found(&ana, "wombat").await,
        vec![7],
        "a comment made here is found at once"
    );
    ana.sync().await;
    bob.sync().await;
    assert_eq!(found(&bob, "wombat").await, vec![7]);
    assert_eq!(
        found(&bob, "quokka7x2z").await,
        vec![7],
        "the ticket's earlier comments are still found"
    );
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn the_status_counts_unsent_changes_while_signed_out_and_is_not_offline_before_a_sync(
    pool: PgPool,
) {
    let (_running, ana, _bob) = ana_and_bob(pool).await;
    let status = ana.replica.refresh_status().await.unwrap();
    assert_eq!(
        status.state,
        SyncState::Syncing,
        "signed in and not synced yet: the first sync is on its way, which is not offline"
    );
    ana.fixture
        .desk
        .create_ticket(&new_ticket("Kept for later"))
        .await
        .unwrap();
    ana.connection.sign_out().await.unwrap();

    let status = ana.replica.refresh_status().await.unwrap();
    assert_eq!(status.state, SyncState::SignedOut);
    assert_eq!(
        status.unsent, 1,
        "the change waits for the server, and leaving it (working offline) asks first"
    );
    ana.replica.sync().await.unwrap();
    assert_eq!(
        (ana.replica.status().state, ana.replica.status().unsent),
        (SyncState::SignedOut, 1),
        "signed out, a sync sends nothing and still counts it"
    );
}
