//! Benchmark of the desktop's sync against a real server. Not a test: it prints figures and
//! asserts nothing about time.
//!
//! Run it with `scripts/bench desktop-sync` (`--help` lists the options). It
//! 1. starts a database (a private PostgreSQL cluster, or a database on `DATABASE_URL`'s server,
//!    as `scripts/bench sync` does) and serves the API in this process on 127.0.0.1:0 with its
//!    built-in issuer and the LISTEN connection that feeds the `changed` events;
//! 2. signs desktops in through the built-in issuer's password form, as the tests do (tokens
//!    stay in memory: no keychain is needed);
//! 3. seeds the tenant with 10,000 tickets and 50,000 comments (as `scripts/bench sync` does)
//!    and times the first sync of an empty desktop with `Replica::sync`; a second empty desktop
//!    pulls and applies page by page, one after the other, to split the time into the server's
//!    pull and the desktop's apply;
//! 4. measures change propagation from desktop A to desktop B while both are online: B runs
//!    the live loop (`sync::live::run`) and picks A's changes up from the server's `changed`
//!    events; A makes 100 changes (50 tickets, each followed by a comment on it), once with its
//!    own live loop (`live::write_wait`: a write after a quiet spell goes at once, one soon after
//!    another waits out `live::DEBOUNCE`) and once syncing right
//!    after each write;
//! 5. measures push throughput from a desktop: mutations made offline, pushed in batches of
//!    `sync::PUSH_BATCH`.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use chrono::Utc;
use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use tallydesk_desktop_core::account::{Connection, Keychain, Setup};
use tallydesk_desktop_core::sync::{Replica, SyncState, live, store};
use tallydesk_desktop_core::{Clock, Desk, Store};
use tallydesk_server::db;
use tallydesk_shared::TicketId;
use tallydesk_shared::api::CreateTicket;
use tallydesk_shared::sync::{MAX_PULL_LIMIT, PushRequest};

use tallydesk_testkit::bench::{Machine, Place, grouped};
use tallydesk_testkit::desktop::{Behaviour, TestBrowser, start_builtin_server};

/// Times the desktop's first sync of a big tenant, change propagation and push throughput.
#[derive(Debug, Parser)]
#[command(
    name = "scripts/bench desktop-sync",
    bin_name = "scripts/bench desktop-sync"
)]
struct Args {
    /// Tickets in the tenant.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    tickets: u32,
    /// Comments on each ticket.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    comments_per_ticket: u32,
    /// Changes propagated from desktop A to desktop B, in each mode.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    changes: u32,
    /// Mutations pushed from one desktop (half tickets, half comments).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pushed: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const EMAIL: &str = "ana@example.com";
const PASSPHRASE: &str = "correct horse battery";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tallydesk_testkit::bench::in_own_database(async |place| bench(&args, place).await).await
}

async fn bench(args: &Args, place: &Place) -> anyhow::Result<()> {
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(place.options().clone())
        .await
        .context("connecting to the benchmark database")?;
    db::migrate(&owner).await?;
    let server = start_builtin_server(&owner, EMAIL, PASSPHRASE).await;
    let machine = Machine::describe(&owner, place).await?;

    let a = Desktop::sign_in(&server.url).await?;
    let scope = a
        .replica
        .desk()
        .sync_scope()
        .context("desktop A has a sync scope once signed in")?;

    eprintln!(
        "bench: seeding {} tickets and {} comments",
        grouped(args.tickets.into()),
        grouped(u64::from(args.tickets) * u64::from(args.comments_per_ticket))
    );
    let comments = tallydesk_testkit::bench::seed_sync_tenant(
        &owner,
        scope.tenant_id,
        scope.user.id,
        args.tickets,
        args.comments_per_ticket,
    )
    .await?;
    sqlx::raw_sql("analyze").execute(&owner).await?;

    eprintln!("bench: the first sync of an empty desktop (Replica::sync)");
    let b = Desktop::sign_in(&server.url).await?;
    let started = Instant::now();
    b.sync().await?;
    let first_sync = started.elapsed();
    let tickets_on_b = b.tickets().await?;
    ensure!(
        tickets_on_b >= i64::from(args.tickets),
        "desktop B should hold every ticket after its first sync, not {tickets_on_b}"
    );

    if args.comments_per_ticket > 0 {
        let found: i64 = sqlx::query_scalar(
            "select count(*) from ticket_search where ticket_search match 'rollers'",
        )
        .fetch_one(&b.desk().store().pool)
        .await?;
        ensure!(
            found == tickets_on_b,
            "search should find every ticket by its comments' words, found {found}"
        );
    }

    eprintln!("bench: the same snapshot pulled and applied one page after the other");
    let c = Desktop::sign_in(&server.url).await?;
    let split = split_pull_apply(&c).await?;

    eprintln!("bench: propagation A -> B, A's live loop");
    let b_loop = tokio::spawn(live::run(b.replica.clone(), Arc::default()));
    let a_loop = tokio::spawn(live::run(a.replica.clone(), Arc::default()));
    a.online().await?;
    b.online().await?;
    let with_loop = propagate(&a, &b, args.changes, |_| async { Ok(()) }).await?;
    a_loop.abort();
    ensure!(a_loop.await.is_err_and(|e| e.is_cancelled()));

    eprintln!("bench: propagation A -> B, A syncing right after each write");
    let at_once = propagate(&a, &b, args.changes, |a: &Desktop| {
        let replica = a.replica.clone();
        async move { Ok(replica.sync().await?) }
    })
    .await?;
    b_loop.abort();

    eprintln!("bench: pushing {} mutations from desktop A", args.pushed);
    let pushed = push(&a, args.pushed).await?;

    println!();
    println!("Tallydesk desktop sync benchmark");
    print!("{machine}");
    println!(
        "  data      one tenant: {} tickets, {} comments (+ their activity), {} changes in all",
        grouped(args.tickets.into()),
        grouped(comments),
        grouped(split.changes as u64),
    );
    println!(
        "  desktop   tallydesk-desktop-core's Replica on a fresh SQLite store in a temporary \
         directory, signed in through the server's built-in issuer; server in this process"
    );
    println!();
    println!(
        "first sync of an empty desktop, Replica::sync end to end       {:>8.2} s",
        first_sync.as_secs_f64()
    );
    println!(
        "  page by page, one after the other ({} pages of up to {MAX_PULL_LIMIT}): \
         pull {:.2} s (server + HTTP + parse) + apply {:.2} s = {:.2} s",
        split.pages,
        split.pull.as_secs_f64(),
        split.apply.as_secs_f64(),
        (split.pull + split.apply).as_secs_f64()
    );
    println!();
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>8}",
        "propagation A -> B (B's live loop)", "changes", "p50 ms", "p95 ms", "max ms"
    );
    println!(
        "{:<52} {with_loop}",
        "A's live loop (leading-edge DEBOUNCE)"
    );
    println!("{:<52} {at_once}", "A syncs right after each write");
    println!();
    println!(
        "push      {} mutations made offline (tickets, each with a comment), pushed in batches \
         of {}: {:.2} s = {:.0} mutations/s",
        grouped(pushed.mutations),
        tallydesk_desktop_core::sync::PUSH_BATCH,
        pushed.elapsed.as_secs_f64(),
        pushed.mutations as f64 / pushed.elapsed.as_secs_f64(),
    );
    drop(server);
    owner.close().await;
    Ok(())
}

/// A desktop: its own SQLite store, signed in as the admin.
struct Desktop {
    replica: Replica,
    connection: Connection,
    _dir: tempfile::TempDir,
    _browser: TestBrowser,
}

impl Desktop {
    async fn sign_in(server: &str) -> anyhow::Result<Desktop> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("workspace.db")).await?;
        let desk = Desk::open(store, Clock::system(), "Bench", false).await?;
        let browser = TestBrowser::new(Behaviour::Password {
            email: EMAIL.into(),
            password: PASSPHRASE.into(),
        });
        let setup = Setup {
            clock: Clock::system(),
            browser: browser.browser(),
            keychain: Keychain::unavailable("the benchmark keeps its tokens in memory"),
            sign_in_timeout: Duration::from_secs(60),
        };
        let connection = Connection::open(desk.clone(), setup).await?;
        connection.sign_in(server, server).await?;
        Ok(Desktop {
            replica: Replica::new(desk, connection.clone()),
            connection,
            _dir: dir,
            _browser: browser,
        })
    }

    async fn sync(&self) -> anyhow::Result<()> {
        self.replica.sync().await?;
        Ok(())
    }

    fn desk(&self) -> &Desk {
        self.replica.desk()
    }

    async fn tickets(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("select count(*) from tickets where deleted_at is null")
                .fetch_one(&self.desk().store().pool)
                .await?,
        )
    }

    /// Waits until the live loop's first sync went through.
    async fn online(&self) -> anyhow::Result<()> {
        let mut status = self.replica.watch_status();
        tokio::time::timeout(
            Duration::from_secs(120),
            status.wait_for(|s| s.state == SyncState::Online),
        )
        .await
        .context("waiting for a desktop to come online")??;
        Ok(())
    }
}

/// The snapshot pulled and applied page by page, timing each side.
struct Split {
    pages: usize,
    changes: usize,
    pull: Duration,
    apply: Duration,
}

async fn split_pull_apply(desktop: &Desktop) -> anyhow::Result<Split> {
    let store = desktop.desk().store();
    let scope = desktop
        .desk()
        .sync_scope()
        .context("signed in, the desktop has a scope")?;
    store::enter_scope(store, &scope, micros_now()).await?;
    let mut split = Split {
        pages: 0,
        changes: 0,
        pull: Duration::ZERO,
        apply: Duration::ZERO,
    };
    let mut cursor = 0;
    loop {
        let asked = Instant::now();
        let page = desktop.connection.sync_pull(cursor, MAX_PULL_LIMIT).await?;
        split.pull += asked.elapsed();
        let applying = Instant::now();
        let indexing = if page.has_more {
            store::Indexing::Later
        } else {
            store::Indexing::Now
        };
        store::apply_page(store, &page.changes, page.cursor, micros_now(), indexing).await?;
        split.apply += applying.elapsed();
        split.pages += 1;
        split.changes += page.changes.len();
        cursor = page.cursor;
        if !page.has_more {
            return Ok(split);
        }
    }
}

fn micros_now() -> i64 {
    Utc::now().timestamp_micros()
}

/// Latencies of changes seen on B, sorted.
struct Latencies(Vec<Duration>);

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let i = ((self.0.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.0.get(i).copied().unwrap_or_default()
        };
        write!(
            f,
            "{:>8} {:>8.0} {:>8.0} {:>8.0}",
            self.0.len(),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(self.0.last().copied().unwrap_or_default())
        )
    }
}

/// A makes `changes` changes (a ticket, then a comment on it, and again); after each write
/// `then` runs on A, and the time until B's store has the change is taken.
async fn propagate<F, Fut>(
    a: &Desktop,
    b: &Desktop,
    changes: u32,
    then: F,
) -> anyhow::Result<Latencies>
where
    F: Fn(&Desktop) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::new();
    let mut ticket: Option<TicketId> = None;
    for i in 0..changes {
        let started = Instant::now();
        match ticket.take() {
            None => {
                let made = a
                    .desk()
                    .create_ticket(&CreateTicket {
                        title: format!("Propagated ticket {i}"),
                        description: "Made on desktop A while B is online.".into(),
                        ..Default::default()
                    })
                    .await?;
                then(a).await?;
                let id = made.id;
                seen_on(b, || async move { Ok(b.desk().ticket(id).await.is_ok()) }).await?;
                ticket = Some(id);
            }
            Some(id) => {
                let comment = a
                    .desk()
                    .add_comment(id, &format!("Comment {i} from desktop A"), false)
                    .await?;
                then(a).await?;
                seen_on(b, || async move {
                    Ok(b.desk()
                        .comments(id)
                        .await?
                        .iter()
                        .any(|c| c.id == comment.id))
                })
                .await?;
            }
        }
        times.push(started.elapsed());
    }
    times.sort();
    Ok(Latencies(times))
}

/// Polls B every 2 ms, for at most 30 s.
async fn seen_on<F, Fut>(_b: &Desktop, check: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("desktop B did not get desktop A's change within 30 s")
}

struct Pushed {
    mutations: u64,
    elapsed: Duration,
}

/// Makes `count` mutations on A offline (tickets, each followed by a comment), then pushes
/// the outbox in batches as `Replica::sync` does, timing the pushes.
async fn push(a: &Desktop, count: u32) -> anyhow::Result<Pushed> {
    for i in 0..count / 2 {
        let made = a
            .desk()
            .create_ticket(&CreateTicket {
                title: format!("The scanner on floor {} is offline", i % 7),
                description: "It shows a red light and nothing reaches the share.".into(),
                ..Default::default()
            })
            .await?;
        a.desk()
            .add_comment(
                made.id,
                "Power-cycled it; watching whether it comes back.",
                false,
            )
            .await?;
    }
    let store = a.desk().store();
    let scope = a.desk().sync_scope().context("A is signed in")?;
    let client_id = store::client_id(store).await?;
    let started = Instant::now();
    let mut mutations = 0;
    loop {
        let batch = store::pending(store, &scope, tallydesk_desktop_core::sync::PUSH_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let response = a
            .connection
            .sync_push(&PushRequest {
                client_id,
                mutations: store::mutations(&batch),
            })
            .await?;
        let settled = store::settle(store, &response.results).await?;
        ensure!(!settled.is_empty(), "the server answered none of a push");
        mutations += response.results.len() as u64;
    }
    let elapsed = started.elapsed();
    let (unsent, rejected) = store::counts(store, &scope).await?;
    ensure!(
        unsent == 0 && rejected == 0,
        "every pushed mutation should apply: {unsent} unsent, {rejected} rejected"
    );
    a.sync().await?;
    Ok(Pushed { mutations, elapsed })
}
