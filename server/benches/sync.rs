//! Benchmark of sync: a first pull of a big tenant and push throughput. Not a test: it prints
//! figures and asserts nothing about time.
//!
//! Run it with `scripts/bench sync` (`scripts/bench sync --help` lists the options). It
//! 1. starts a database: a private PostgreSQL cluster in a fresh temporary directory, or, when
//!    `DATABASE_URL` is set (e.g. inside `TALLYDESK_TEST_DB_ONLY=1 scripts/test`), a database
//!    `tallydesk_bench_<pid>` made on that server for the run;
//! 2. serves the API in this process on 127.0.0.1, trusting the test token issuer
//!    (`tallydesk_testkit::issuer`), which also runs here;
//! 3. seeds one tenant with 10,000 tickets and 50,000 comments in one transaction with SQL (the
//!    change log's triggers fill the log as for any write) on statistics taken just before, and
//!    pulls at once, before anything analysed the new rows: the first sync of an empty desktop,
//!    page after page over HTTP, each answer parsed as the desktop parses it;
//! 4. pulls the same snapshot again after `analyze`, to show the planner's statistics do not
//!    matter;
//! 5. pushes batches of 100 mutations (50 `ticket.create`, each followed by a `comment.create` on
//!    it) one after another and prints mutations per second.
//!
//! Any failed request makes the run fail.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use tallydesk_server::auth::TENANT_HEADER;
use tallydesk_server::db;
use tallydesk_shared::api::Me;
use tallydesk_shared::sync::{
    ClientId, CommentCreate, Intent, Mutation, MutationStatus, PullResponse, PushRequest,
    PushResponse, TicketCreate,
};
use tallydesk_shared::{CommentId, Role, TenantId, TicketId};
use uuid::Uuid;

use tallydesk_testkit::bench::{Machine, Place, ServedApi, grouped};

/// Seeds a tenant, pulls its snapshot as an empty desktop would and measures push throughput.
#[derive(Debug, Parser)]
#[command(name = "scripts/bench sync", bin_name = "scripts/bench sync")]
struct Args {
    /// Tickets in the tenant.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    tickets: u32,
    /// Comments on each ticket.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    comments_per_ticket: u32,
    /// Changes per pull (the protocol allows 1 to 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    page: u32,
    /// Pushes of 100 mutations each, one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pushes: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Mutations per push: half `ticket.create`, half `comment.create`.
const PUSH_BATCH: usize = 100;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    tallydesk_testkit::bench::in_own_database(async |place| bench(&args, place).await).await
}

async fn bench(args: &Args, place: &Place) -> anyhow::Result<()> {
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(place.options().clone())
        .await
        .context("connecting to the benchmark database")?;
    db::migrate(&owner).await?;
    let api = ServedApi::start(&owner, 8).await;
    let (issuer, base) = (&api.issuer, api.base.clone());
    let machine = Machine::describe(&owner, place).await?;

    // The installation's first user becomes admin of "Default".
    let http = reqwest::Client::new();
    let token = issuer.token_for("bench-sync-admin", 7 * 24 * 3600);
    let me: Me = answer(
        http.get(format!("{base}/me")).bearer_auth(&token),
        "GET /me",
    )
    .await?;
    let tenant = match me.memberships.as_slice() {
        [m] if m.role == Role::Admin => m.tenant_id,
        _ => bail!("the first user should have claimed the installation as admin: {me:?}"),
    };
    let client = Client {
        http,
        base: base.clone(),
        token,
        tenant,
    };

    eprintln!(
        "bench: seeding {} tickets and {} comments",
        grouped(args.tickets.into()),
        grouped(u64::from(args.tickets) * u64::from(args.comments_per_ticket))
    );
    // The planner's statistics now describe a log of a few rows, as on a live server before an
    // import: the worst case for the first pull after it.
    sqlx::raw_sql("analyze")
        .execute(&owner)
        .await
        .context("analyze")?;
    let started = Instant::now();
    let comments = tallydesk_testkit::bench::seed_sync_tenant(
        &owner,
        tenant,
        me.user.id,
        args.tickets,
        args.comments_per_ticket,
    )
    .await?;
    let seeded_in = started.elapsed();

    // What the planner believed about the log when the first pull began: -1 is "never analysed".
    let estimate: f32 =
        sqlx::query_scalar("select reltuples from pg_class where oid = 'change_log'::regclass")
            .fetch_one(&owner)
            .await?;
    eprintln!("bench: pulling the snapshot right after the bulk load");
    let cold = pull_all(&client, args.page).await?;
    sqlx::raw_sql("analyze")
        .execute(&owner)
        .await
        .context("analyze")?;
    eprintln!("bench: pulling it again with fresh statistics");
    let warm = pull_all(&client, args.page).await?;
    ensure!(
        cold.changes == warm.changes,
        "both pulls should return the same snapshot: {} then {} changes",
        cold.changes,
        warm.changes
    );

    eprintln!("bench: pushing {} batches of {PUSH_BATCH}", args.pushes);
    let pushed = push_batches(&client, args.pushes).await?;

    println!();
    println!("Tallydesk sync benchmark");
    print!("{machine}");
    println!(
        "  data      one tenant: {} tickets, {} comments, bulk-loaded in one transaction \
         (seeded in {:.1} s)",
        grouped(args.tickets.into()),
        grouped(comments),
        seeded_in.as_secs_f64()
    );
    println!(
        "  pull      GET /api/v1/sync/pull from cursor 0, {} changes a page, one after another, \
         as the admin; each answer read and parsed",
        args.page
    );
    println!();
    println!(
        "{:<28} {:>6} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "initial sync", "pages", "changes", "MiB", "total s", "slowest ms", "p50 ms"
    );
    println!("{:<28} {cold}", "right after the bulk load");
    println!(
        "{:<28} (the planner's row estimate for change_log then: {estimate:.0})",
        ""
    );
    println!("{:<28} {warm}", "after analyze");
    println!();
    println!(
        "push      {} pushes of {PUSH_BATCH} mutations (50 ticket.create + 50 comment.create), \
         one after another: {} mutations in {:.2} s = {:.0} mutations/s (p50 push {:.0} ms)",
        args.pushes,
        grouped(pushed.mutations),
        pushed.elapsed.as_secs_f64(),
        pushed.mutations as f64 / pushed.elapsed.as_secs_f64(),
        pushed.p50.as_secs_f64() * 1000.0,
    );

    api.stop().await;
    owner.close().await;
    Ok(())
}

/// Who calls the API, and where.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    tenant: TenantId,
}

impl Client {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(TENANT_HEADER, self.tenant.to_string())
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(TENANT_HEADER, self.tenant.to_string())
    }
}

/// Sends a request and parses its successful answer.
async fn answer<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    what: &str,
) -> anyhow::Result<T> {
    Ok(serde_json::from_slice(&answer_bytes(request, what).await?)?)
}

async fn answer_bytes(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Vec<u8>> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| what.to_owned())?;
    ensure!(
        status.is_success(),
        "{what} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(bytes.to_vec())
}

/// One whole pull from cursor 0.
struct Pulled {
    pages: usize,
    changes: usize,
    bytes: usize,
    elapsed: Duration,
    /// Each page's time, sorted.
    page_times: Vec<Duration>,
}

impl std::fmt::Display for Pulled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let slowest = self.page_times.last().copied().unwrap_or_default();
        let p50 = self
            .page_times
            .get(self.page_times.len() / 2)
            .copied()
            .unwrap_or_default();
        write!(
            f,
            "{:>6} {:>9} {:>9.1} {:>10.2} {:>10.1} {:>9.1}",
            self.pages,
            grouped(self.changes as u64),
            self.bytes as f64 / (1024.0 * 1024.0),
            self.elapsed.as_secs_f64(),
            ms(slowest),
            ms(p50)
        )
    }
}

async fn pull_all(client: &Client, page: u32) -> anyhow::Result<Pulled> {
    let started = Instant::now();
    let mut cursor = 0;
    let mut pulled = Pulled {
        pages: 0,
        changes: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        page_times: Vec::new(),
    };
    loop {
        let asked = Instant::now();
        let bytes = answer_bytes(
            client.get(&format!("/sync/pull?cursor={cursor}&limit={page}")),
            "GET /sync/pull",
        )
        .await?;
        let response: PullResponse = serde_json::from_slice(&bytes)?;
        pulled.page_times.push(asked.elapsed());
        pulled.pages += 1;
        pulled.changes += response.changes.len();
        pulled.bytes += bytes.len();
        cursor = response.cursor;
        if !response.has_more {
            break;
        }
    }
    pulled.elapsed = started.elapsed();
    pulled.page_times.sort();
    Ok(pulled)
}

struct Pushed {
    mutations: u64,
    elapsed: Duration,
    p50: Duration,
}

async fn push_batches(client: &Client, pushes: u32) -> anyhow::Result<Pushed> {
    let client_id = ClientId(Uuid::now_v7());
    let mut seq = 0;
    let mut times = Vec::new();
    let started = Instant::now();
    for _ in 0..pushes {
        let mut mutations = Vec::with_capacity(PUSH_BATCH);
        for _ in 0..PUSH_BATCH / 2 {
            let ticket = TicketId::new();
            seq += 1;
            mutations.push(Mutation {
                seq,
                intent: Intent::TicketCreate(TicketCreate {
                    id: ticket,
                    title: format!("The scanner on floor {} is offline", seq % 7),
                    description: "It shows a red light and nothing reaches the share.".into(),
                    priority: None,
                    category: None,
                    customer_id: None,
                    assignee_id: None,
                }),
            });
            seq += 1;
            mutations.push(Mutation {
                seq,
                intent: Intent::CommentCreate(CommentCreate {
                    id: CommentId::new(),
                    ticket_id: ticket,
                    body: "Power-cycled it; watching whether it comes back.".into(),
                    internal: false,
                }),
            });
        }
        let asked = Instant::now();
        let response: PushResponse = answer(
            client.post("/sync/push").json(&PushRequest {
                client_id,
                mutations,
            }),
            "POST /sync/push",
        )
        .await?;
        times.push(asked.elapsed());
        if let Some(refused) = response
            .results
            .iter()
            .find(|r| r.status != MutationStatus::Applied)
        {
            bail!("a pushed mutation was not applied: {refused:?}");
        }
    }
    let elapsed = started.elapsed();
    times.sort();
    Ok(Pushed {
        mutations: u64::from(pushes) * PUSH_BATCH as u64,
        elapsed,
        p50: times[times.len() / 2],
    })
}
