//! Fault injection of sync (issue 7): 3 desktop cores (the sync engine without the webview),
//! 2 `tallydesk-server` instances and 1 Postgres. Every cycle, each client makes random
//! offline edits through its desk and syncs; at random points a client or a server instance
//! gets `kill -9` and is started again (a client reopens its store from disk). At the end,
//! every client syncs until its outbox is empty, and:
//! - each client holds exactly the server's tickets and comments (ids, fields, versions);
//! - every intent any client ever queued is recorded once on the server, applied or rejected
//!   with a reason (0 lost), and nothing else is (0 duplicated): tickets and comments on the
//!   server are exactly those of the applied creates.
//!
//! Deterministic by seed (the choices, not the OS's scheduling): `TALLYDESK_FAULT_SEED`
//! (default 1) and `TALLYDESK_FAULT_CYCLES` (default 100). Needs `DATABASE_URL` (a Postgres
//! role that may create databases), the `tallydesk-server` binary built next to this test,
//! and a Secret Service keychain (scripts/desktop-session):
//!
//! ```text
//! TALLYDESK_TEST_DB_ONLY=1 scripts/test bash -c 'cargo build -p tallydesk-server &&
//!     scripts/desktop-session cargo nextest run -p tallydesk-desktop-core --test fault'
//! ```
//!
//! The same binary runs the clients: `fault client <dir> <server> <email> edit|settle …`.

mod check;
mod client;
mod cluster;
mod rng;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use client::{EXIT_NO_SIGN_IN, EXIT_OK, Job, Task};
use cluster::{Instance, Proxy};
use rng::Rng;

const TEST_NAME: &str = "fault_injection";
const EMAILS: [&str; 3] = ["ana@example.com", "bob@example.com", "cy@example.com"];
const PASSWORD: &str = "fault-injection-pass-42";
/// How long one client process may take before the test calls it hung.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        let job = Job::from_args(&args[1..]);
        let code = runtime().block_on(client::run(job));
        std::process::exit(code);
    }
    // The test-runner protocol nextest speaks to a harness=false binary.
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{TEST_NAME}: test");
        }
        return;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected = filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                f.as_str() == TEST_NAME
            } else {
                TEST_NAME.contains(f.as_str())
            }
        });
    if !selected {
        return;
    }
    runtime().block_on(fault_injection());
    println!("test {TEST_NAME} ... ok");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// What happened over the run, for the summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub cycles: u64,
    pub server_kills: u64,
    pub client_kills: u64,
    /// Killed after queueing the cycle's edits, before the sync ended.
    pub client_kills_syncing: u64,
    pub client_runs: u64,
    pub sign_ins: u64,
    /// Restarts that found the saved sign-in gone (and signed in again).
    pub sessions_lost: u64,
    /// What those restarts said.
    pub notices: std::collections::BTreeSet<String>,
    pub sign_in_failures: u64,
    pub syncs_ok: u64,
    pub syncs_failed: u64,
    pub stayed_offline: u64,
    pub edits: u64,
    pub refused_locally: u64,
}

/// How a client process ended.
struct Ended {
    killed: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run_client(job: Job, kill_after: Option<Duration>) -> Ended {
    let mut child = Command::new(std::env::current_exe().expect("this binary's path"))
        .args(job.to_args())
        .env(client::PASSWORD_ENV, &job.password)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client process starts");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let stdout = tokio::spawn(async move {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).await;
        text
    });
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text).await;
        text
    });
    let deadline = kill_after.unwrap_or(CLIENT_LIMIT);
    let (killed, code) = match tokio::time::timeout(deadline, child.wait()).await {
        Ok(status) => (false, status.expect("the client is waited for").code()),
        Err(_) => {
            child.kill().await.expect("SIGKILL reaches the client");
            assert!(
                kill_after.is_some(),
                "a client of {} hung for {CLIENT_LIMIT:?}",
                job.dir.display()
            );
            (true, None)
        }
    };
    Ended {
        killed,
        code,
        stdout: stdout.await.unwrap_or_default(),
        stderr: stderr.await.unwrap_or_default(),
    }
}

/// Counts what a client run did, and fails the test when it crashed.
fn account(tally: &mut Tally, who: &str, ended: &Ended, allowed: &[i32]) {
    tally.client_runs += 1;
    for line in ended.stdout.lines() {
        match line.split_whitespace().next() {
            Some("signed-in") => tally.sign_ins += 1,
            Some("signed-out") => {
                tally.sessions_lost += 1;
                tally
                    .notices
                    .insert(line.trim_start_matches("signed-out ").to_owned());
            }
            Some("no-sign-in") => tally.sign_in_failures += 1,
            Some("synced") => tally.syncs_ok += 1,
            Some("sync-failed") => tally.syncs_failed += 1,
            Some("offline") => tally.stayed_offline += 1,
            Some("edit") => {
                tally.edits += 1;
                if line.contains("refused-locally") {
                    tally.refused_locally += 1;
                }
            }
            _ => {}
        }
    }
    if ended.killed {
        tally.client_kills += 1;
        let said = |word: &str| ended.stdout.lines().any(|l| l.starts_with(word));
        if said("edited") && !said("synced") && !said("sync-failed") && !said("offline") {
            tally.client_kills_syncing += 1;
        }
        return;
    }
    assert!(
        ended.code.is_some_and(|c| allowed.contains(&c)),
        "{who} ended with {:?} (a client only stops by itself, or by kill -9)\nstdout:\n{}\nstderr:\n{}",
        ended.code,
        ended.stdout,
        ended.stderr
    );
}

/// A fresh database on the test's Postgres, migrated; its URL.
async fn fresh_database(base: &str) -> (String, PgPool) {
    let owner = PgPool::connect(base)
        .await
        .expect("DATABASE_URL's Postgres answers");
    let name = format!("tallydesk_fault_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&owner)
        .await
        .expect("the test's database is made");
    owner.close().await;
    let mut url = url::Url::parse(base).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let pool = PgPool::connect(&url)
        .await
        .expect("the new database answers");
    tallydesk_server::db::MIGRATOR
        .run(&pool)
        .await
        .expect("the server's migrations run");
    (url, pool)
}

async fn drop_database(base: &str, url: &str) {
    let name = url::Url::parse(url)
        .expect("a URL")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let owner = PgPool::connect(base).await.expect("Postgres answers");
    sqlx::query(&format!("drop database {name} with (force)"))
        .execute(&owner)
        .await
        .expect("the test's database is dropped");
    owner.close().await;
}

fn client_dir(work: &Path, i: usize) -> PathBuf {
    work.join(format!("client-{i}"))
}

async fn fault_injection() {
    let started = Instant::now();
    let seed = env_number("TALLYDESK_FAULT_SEED", 1);
    let cycles = env_number("TALLYDESK_FAULT_CYCLES", 100);
    println!("fault: seed {seed}, {cycles} cycles (TALLYDESK_FAULT_SEED, TALLYDESK_FAULT_CYCLES)");
    cluster::server_binary();
    tallydesk_testkit::desktop::keychain();
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL names the test Postgres (scripts/test exports it)");
    let (database_url, pool) = fresh_database(&base).await;
    let work = tempfile::tempdir().expect("a work directory");

    let proxy = Proxy::start().await;
    for email in EMAILS {
        use tallydesk_server::issuer::password::Password;
        let parsed = tallydesk_shared::ticket::Email::parse(email).expect("an email");
        let password = Password::parse("password", PASSWORD, email).expect("a strong password");
        tallydesk_server::admin::create_admin(
            &pool,
            &proxy.url,
            &parsed,
            None,
            &password,
            Utc::now(),
        )
        .await
        .expect("the account is made, admin of the Default tenant");
    }
    let mut servers = [
        Instance::new("server-1", work.path()),
        Instance::new("server-2", work.path()),
    ];
    for server in &mut servers {
        server.start(&database_url, &proxy).await;
    }

    let mut tally = Tally::default();
    for cycle in 0..cycles {
        let mut faults = Rng::derive(seed, &[cycle, u64::MAX]);
        let mut runs = Vec::new();
        for (i, email) in EMAILS.iter().enumerate() {
            let mut rng = Rng::derive(seed, &[cycle, i as u64]);
            let edits = u32::try_from(rng.below(5)).unwrap_or(0);
            let sync = rng.chance(65);
            let kill_after = rng
                .chance(25)
                .then(|| Duration::from_millis(rng.below(700)));
            let job = Job {
                dir: client_dir(work.path(), i),
                server: proxy.url.clone(),
                email: (*email).to_owned(),
                password: PASSWORD.to_owned(),
                task: Task::Edit {
                    seed: rng.next(),
                    edits,
                    sync,
                },
            };
            runs.push(tokio::spawn(run_client(job, kill_after)));
        }
        let mut killed = None;
        if faults.chance(30) {
            let which = usize::from(faults.chance(50));
            tokio::time::sleep(Duration::from_millis(faults.below(600))).await;
            servers[which].kill(&proxy).await;
            tally.server_kills += 1;
            killed = Some(which);
        }
        for (i, run) in runs.into_iter().enumerate() {
            let ended = run.await.expect("the client's task");
            account(
                &mut tally,
                &format!("client {i} in cycle {cycle}"),
                &ended,
                &[EXIT_OK, EXIT_NO_SIGN_IN],
            );
        }
        if let Some(which) = killed {
            servers[which].start(&database_url, &proxy).await;
        }
        tally.cycles += 1;
        if (cycle + 1) % 10 == 0 {
            println!(
                "fault: {} cycles, {:?} ({} server kills, {} client kills)",
                cycle + 1,
                started.elapsed(),
                tally.server_kills,
                tally.client_kills
            );
        }
    }

    // All servers up; each client syncs until its outbox is empty, twice round, so the last
    // round pulls what the others pushed in the first. A fresh desktop pulls the whole log.
    assert!(servers.iter().all(Instance::is_up));
    let mut finals = Vec::new();
    for round in 0..2 {
        finals.clear();
        for (i, email) in EMAILS.iter().enumerate() {
            let job = Job {
                dir: client_dir(work.path(), i),
                server: proxy.url.clone(),
                email: (*email).to_owned(),
                password: PASSWORD.to_owned(),
                task: Task::Settle,
            };
            let ended = run_client(job, None).await;
            account(
                &mut tally,
                &format!("client {i} settling (round {round})"),
                &ended,
                &[EXIT_OK],
            );
            finals.push(check::read_final(&client_dir(work.path(), i)));
        }
    }
    let observer_dir = work.path().join("observer");
    let ended = run_client(
        Job {
            dir: observer_dir.clone(),
            server: proxy.url.clone(),
            email: EMAILS[0].to_owned(),
            password: PASSWORD.to_owned(),
            task: Task::Settle,
        },
        None,
    )
    .await;
    account(&mut tally, "the observer", &ended, &[EXIT_OK]);
    let observer = check::read_final(&observer_dir);

    let journals: Vec<PathBuf> = (0..EMAILS.len())
        .map(|i| client::journal_path(&client_dir(work.path(), i)))
        .collect();
    let figures = check::converged(&pool, &observer, &finals, &journals).await;

    for server in &mut servers {
        server.kill(&proxy).await;
    }
    pool.close().await;
    drop_database(&base, &database_url).await;
    println!(
        "fault: seed {seed}: {} cycles; kill -9 of {} servers and {} clients ({} of them while syncing); {} client runs, \
         {} sign-ins ({} failed as a server died; {} after a restart found the saved sign-in ended), {} syncs ok, {} cut off and {} runs offline; {} edits ({} \
         refused locally); {} intents queued {}: {} applied, {} rejected ({}); {} tickets, {} \
         comments and {} expenses on the server, the same on every client; {:.1?}",
        tally.cycles,
        tally.server_kills,
        tally.client_kills,
        tally.client_kills_syncing,
        tally.client_runs,
        tally.sign_ins,
        tally.sign_in_failures,
        tally.sessions_lost,
        tally.syncs_ok,
        tally.syncs_failed,
        tally.stayed_offline,
        tally.edits,
        tally.refused_locally,
        figures.queued,
        figures.ops,
        figures.applied,
        figures.rejected,
        figures.rejected_codes,
        figures.tickets,
        figures.comments,
        figures.expenses,
        started.elapsed()
    );
    for notice in &tally.notices {
        println!("fault: a restarted client was signed out: {notice}");
    }
    let reused = servers
        .iter()
        .map(|s| s.log_lines_with("a refresh token was reused"))
        .sum::<usize>();
    println!(
        "fault: the servers saw {reused} reused refresh tokens (a client killed after the issuer rotated its token, before the keychain kept the new one)"
    );
}
