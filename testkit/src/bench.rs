//! What the benchmarks share: their database (a private cluster or one on `DATABASE_URL`),
//! interrupts, the API served in-process, the machine's description, bulk seeding and number
//! formatting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};
use tallydesk_server::embedded_pg::EmbeddedPostgres;
use tallydesk_server::{AppState, Clock, db};
use tallydesk_shared::{TenantId, UserId};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::AUDIENCE;
use crate::app::{Port, Served, serve, server_state};
use crate::issuer::Issuer;

/// SIGINT (Ctrl-C) and SIGTERM, caught from the start so the database is always removed.
struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
}

impl Interrupts {
    fn listen() -> anyhow::Result<Interrupts> {
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt()).context("catching SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Runs `bench` on a database of its own, removes the database whatever happened (Ctrl-C
/// included), and says how it went as the process's exit code.
pub async fn in_own_database(bench: impl AsyncFnOnce(&Place) -> anyhow::Result<()>) -> ExitCode {
    match in_place(bench).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn in_place(bench: impl AsyncFnOnce(&Place) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut interrupts = Interrupts::listen()?;
    let place = tokio::select! {
        place = Place::open() => place?,
        () = interrupts.recv() => return Err(anyhow::anyhow!("interrupted")),
    };
    let outcome = tokio::select! {
        outcome = bench(&place) => outcome,
        () = interrupts.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    let removed = place.remove().await;
    match (outcome, removed) {
        (Err(error), Err(cleanup)) => {
            eprintln!("bench: warning: could not remove the benchmark database: {cleanup:#}");
            Err(error)
        }
        (outcome, removed) => outcome.and(removed),
    }
}

// ---- The database --------------------------------------------------------------------------

/// Where the benchmark's database lives.
pub enum Place {
    /// A private cluster in a temporary directory (the default). `pg` is declared first so that,
    /// when dropped on an error, the cluster stops before its directory goes.
    Private {
        pg: EmbeddedPostgres,
        dir: TempDir,
        options: PgConnectOptions,
    },
    /// A database made for this run on the server `DATABASE_URL` names.
    Server {
        server: PgConnectOptions,
        name: String,
        options: PgConnectOptions,
    },
}

impl Place {
    pub async fn open() -> anyhow::Result<Place> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let server: PgConnectOptions =
                    url.parse().context("DATABASE_URL is not a Postgres URL")?;
                let name = format!("tallydesk_bench_{}", std::process::id());
                eprintln!("bench: creating database {name} on the server DATABASE_URL names");
                let mut conn = PgConnection::connect_with(&server)
                    .await
                    .context("connecting to DATABASE_URL")?;
                // A leftover of an earlier run whose process had this id.
                sqlx::raw_sql(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut conn)
                    .await?;
                sqlx::raw_sql(&format!("create database {name}"))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("creating database {name}"))?;
                conn.close().await.ok();
                let options = server.clone().database(&name);
                Ok(Place::Server {
                    server,
                    name,
                    options,
                })
            }
            _ => {
                let dir = TempDir::create()?;
                eprintln!(
                    "bench: starting a private PostgreSQL cluster in {}",
                    dir.path().display()
                );
                let pg = EmbeddedPostgres::start(dir.path()).await?;
                let options = pg
                    .database_url()
                    .parse()
                    .context("the private cluster's URL")?;
                Ok(Place::Private { pg, dir, options })
            }
        }
    }

    pub fn options(&self) -> &PgConnectOptions {
        match self {
            Place::Private { options, .. } | Place::Server { options, .. } => options,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Place::Private { dir, .. } => format!("private cluster in {}", dir.path().display()),
            Place::Server { name, .. } => {
                format!("database {name} on the server DATABASE_URL names")
            }
        }
    }

    /// Stops the private cluster and deletes its directory, or drops the database.
    pub async fn remove(self) -> anyhow::Result<()> {
        match self {
            Place::Private { pg, dir, .. } => {
                if let Err(error) = pg.stop().await {
                    // Deleting the files of a cluster that may still run would be worse.
                    let kept = dir.keep();
                    return Err(error.context(format!("its files stay in {}", kept.display())));
                }
                dir.remove()
            }
            Place::Server { server, name, .. } => {
                let mut conn = PgConnection::connect_with(&server)
                    .await
                    .context("connecting to DATABASE_URL")?;
                sqlx::raw_sql(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("dropping database {name}"))?;
                conn.close().await.ok();
                Ok(())
            }
        }
    }
}

/// A directory of our own under the system's temporary directory, deleted when dropped.
pub struct TempDir(Option<PathBuf>);

impl TempDir {
    pub fn create() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("tallydesk-bench-{}", std::process::id()));
        // A leftover of an earlier run whose process had this id.
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(Some(path)))
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Leaves the directory in place.
    pub fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }

    pub fn remove(mut self) -> anyhow::Result<()> {
        match self.0.take() {
            Some(path) => std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display())),
            None => Ok(()),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(error) = std::fs::remove_dir_all(&path)
        {
            eprintln!(
                "bench: warning: could not remove {}: {error}",
                path.display()
            );
        }
    }
}

// ---- The API ------------------------------------------------------------------------------

/// The API served in this process on a loopback port, trusting the test token issuer that
/// also runs here: what the server's benchmarks load.
pub struct ServedApi {
    pub issuer: Issuer,
    /// `http://127.0.0.1:<port>/api/v1`
    pub base: String,
    state: AppState,
    served: Served,
}

impl ServedApi {
    /// Serves the database `owner` owns with a request pool of `connections`.
    pub async fn start(owner: &PgPool, connections: u32) -> ServedApi {
        let issuer = Issuer::start().await;
        let trusted = vec![issuer.url.clone()];
        let state = server_state(owner, connections, trusted, AUDIENCE, Clock::system()).await;
        let served = serve(&state, owner, Port::bind().await).await;
        ServedApi {
            base: format!("{}/api/v1", served.url),
            issuer,
            state,
            served,
        }
    }

    /// Stops serving and closes the request pool.
    pub async fn stop(self) {
        drop(self.served);
        self.state.db.close().await;
    }
}

// ---- The machine ---------------------------------------------------------------------------

pub struct Machine {
    cpus: usize,
    cpu_model: String,
    memory: String,
    postgres: String,
    place: String,
}

impl Machine {
    pub async fn describe(owner: &PgPool, place: &Place) -> anyhow::Result<Machine> {
        let postgres: String = sqlx::query_scalar("show server_version")
            .fetch_one(owner)
            .await?;
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|line| line.split_once(':').filter(|(key, _)| key.trim() == name))
                .map(|(_, value)| value.trim().to_owned())
        };
        let memory = field(&meminfo, "MemTotal")
            .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
            );
        Ok(Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".to_owned()),
            memory,
            postgres,
            place: place.describe(),
        })
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  machine   {} CPUs ({}), {} memory",
            self.cpus, self.cpu_model, self.memory
        )?;
        writeln!(
            f,
            "  note      the load generator, the server and PostgreSQL share these CPUs"
        )?;
        writeln!(
            f,
            "  database  PostgreSQL {}, {}",
            self.postgres, self.place
        )
    }
}

/// A UUIDv7 for the time `at` (a timestamptz expression), like the ids the server makes: the
/// Unix milliseconds in the first 48 bits, version 7, the rest random.
pub fn uuid_v7_sql(at: &str) -> String {
    format!(
        "(select encode(set_byte(b, 6, (get_byte(b, 6) & 15) | 112), 'hex')::uuid
            from (select overlay(uuid_send(gen_random_uuid())
                                 placing substring(int8send((extract(epoch from {at}) * 1000)::int8) from 3)
                                 from 1 for 6) as b) as v7)"
    )
}

/// 1234567 → "1,234,567".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bulk-inserts the tickets and their comments in one transaction scoped to the tenant, the
/// way an import would, and moves the ticket counter past them (the sync benchmarks' tenant).
/// Returns the number of comments.
pub async fn seed_sync_tenant(
    owner: &PgPool,
    tenant: TenantId,
    admin: UserId,
    tickets: u32,
    comments_per_ticket: u32,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let mut tx = db::begin(owner, admin, Some(tenant)).await?;
    let ticket_id = uuid_v7_sql("$3::timestamptz - interval '1 minute' * ($2::int - g.n)");
    sqlx::query(&format!(
        "insert into tickets (id, tenant_id, number, title, description, status, priority,
                              category, requester_id, created_at, updated_at)
         select {ticket_id}, $1::uuid, g.n,
                format('Ticket %s: the printer on floor %s keeps jamming', g.n, g.n % 7),
                format('Since this morning the printer on floor %s jams on every second page. '
                       'We tried another tray and new paper; it still happens. Ticket %s.',
                       g.n % 7, g.n),
                (array['open', 'in_progress', 'resolved'])[1 + g.n % 3],
                (array['low', 'medium', 'high', 'urgent'])[1 + g.n % 4],
                'hardware', $4::uuid,
                $3::timestamptz - interval '1 minute' * ($2::int - g.n),
                $3::timestamptz - interval '1 minute' * ($2::int - g.n)
           from generate_series(1, $2::int) as g(n)"
    ))
    .bind(tenant.as_uuid())
    .bind(i32::try_from(tickets)?)
    .bind(now)
    .bind(admin.as_uuid())
    .execute(&mut *tx)
    .await
    .context("inserting tickets")?;
    let comment_id = uuid_v7_sql("t.created_at + interval '1 second' * c.k");
    let comments = sqlx::query(&format!(
        "insert into comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         select {comment_id}, $1::uuid, t.id, $2::uuid,
                format('Checked the printer again (%s of %s): the rollers look worn, '
                       'ordering a replacement kit.', c.k, $3::int),
                c.k % 4 = 0,
                t.created_at + interval '1 second' * c.k
           from tickets t cross join generate_series(1, $3::int) as c(k)
          where t.tenant_id = $1::uuid
          order by t.created_at, c.k"
    ))
    .bind(tenant.as_uuid())
    .bind(admin.as_uuid())
    .bind(i32::try_from(comments_per_ticket)?)
    .execute(&mut *tx)
    .await
    .context("inserting comments")?
    .rows_affected();
    sqlx::query("update tenant_counters set last_ticket_number = $2 where tenant_id = $1")
        .bind(tenant.as_uuid())
        .bind(i64::from(tickets))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(comments)
}
