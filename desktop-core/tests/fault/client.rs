//! One desktop core as its own process, so that `kill -9` is real: it opens its SQLite store
//! from disk, resumes (or makes) its sign-in with the server's built-in issuer, makes the
//! cycle's random offline edits through [`Desk`] (each queues its intent), then syncs.
//!
//! Before and after editing it appends the outbox to `journal.jsonl`, so the harness knows
//! every intent this store ever queued, including those the server took and the outbox
//! forgot. (An intent queued but not journaled yet is still pending, so the next start
//! journals it.)

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use tallydesk_desktop_core::account::{Account, Connection, Setup};
use tallydesk_desktop_core::expenses::{
    ClaimTarget, ExpenseInput, ExpenseQuery, Reading, ReceiptImage, ScannedReceipt,
};
use tallydesk_desktop_core::model::TicketQuery;
use tallydesk_desktop_core::receipts::sha256_hex;
use tallydesk_desktop_core::sync::{Rejection, Replica, store};
use tallydesk_desktop_core::{Clock, Desk, Store};
use tallydesk_shared::api::{Comment, CreateTicket, PatchTicket, Ticket};
use tallydesk_shared::expense::ExpenseStatus;
use tallydesk_shared::sync::ClientId;
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{ExpenseId, Status, TicketId};
use tallydesk_testkit::desktop::{Behaviour, TestBrowser, keychain};

use crate::rng::Rng;

/// Exit codes the harness reads.
pub const EXIT_OK: i32 = 0;
/// The sign-in could not be made (a server died under it): nothing was edited.
pub const EXIT_NO_SIGN_IN: i32 = 3;
/// `settle` could not empty the outbox.
pub const EXIT_UNSETTLED: i32 = 4;

/// What the client process is asked to do.
#[derive(Clone, Debug)]
pub struct Job {
    pub dir: PathBuf,
    pub server: String,
    pub email: String,
    pub password: String,
    pub task: Task,
}

#[derive(Clone, Debug)]
pub enum Task {
    /// Random offline edits drawn from `seed`, then one sync unless the client stays
    /// offline this time.
    Edit { seed: u64, edits: u32, sync: bool },
    /// Sync until the outbox is empty, then write `final.json`.
    Settle,
}

impl Job {
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "client".to_owned(),
            self.dir.display().to_string(),
            self.server.clone(),
            self.email.clone(),
        ];
        match self.task {
            Task::Edit { seed, edits, sync } => {
                args.extend([
                    "edit".to_owned(),
                    seed.to_string(),
                    edits.to_string(),
                    if sync { "online" } else { "offline" }.to_owned(),
                ]);
            }
            Task::Settle => args.push("settle".to_owned()),
        }
        args
    }

    /// The password comes through the environment, not the command line.
    pub fn from_args(args: &[String]) -> Job {
        let arg = |i: usize| {
            args.get(i)
                .unwrap_or_else(|| panic!("client: argument {i} missing in {args:?}"))
                .clone()
        };
        let task = match arg(3).as_str() {
            "edit" => Task::Edit {
                seed: arg(4).parse().expect("a seed"),
                edits: arg(5).parse().expect("a number of edits"),
                sync: arg(6) == "online",
            },
            "settle" => Task::Settle,
            other => panic!("client: unknown task {other:?}"),
        };
        Job {
            dir: PathBuf::from(arg(0)),
            server: arg(1),
            email: arg(2),
            password: std::env::var(PASSWORD_ENV).expect("the password in the environment"),
            task,
        }
    }
}

pub const PASSWORD_ENV: &str = "TALLYDESK_FAULT_PASSWORD";

/// An intent as this store queued it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Journaled {
    pub client_id: ClientId,
    pub seq: i64,
    /// `shared::sync::Intent` as JSON (`{op, args}`).
    pub intent: serde_json::Value,
}

/// A client's state after `settle`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Final {
    pub client_id: ClientId,
    pub tickets: Vec<Ticket>,
    pub comments: Vec<Comment>,
    /// Filed expenses (drafts are this computer's own), by id.
    pub expenses: Vec<Filed>,
    /// Intents still waiting in the outbox.
    pub pending: i64,
    pub rejections: Vec<Rejection>,
}

/// What every desktop must agree on about a filed expense.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filed {
    pub id: ExpenseId,
    pub ticket_id: Option<TicketId>,
    pub status: ExpenseStatus,
    pub merchant: Option<String>,
    pub total: Option<String>,
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal.jsonl")
}

pub fn final_path(dir: &Path) -> PathBuf {
    dir.join("final.json")
}

/// Runs the client process; returns its exit code.
pub async fn run(job: Job) -> i32 {
    std::fs::create_dir_all(&job.dir).expect("the client's directory");
    let store = Store::open(&job.dir.join("workspace.db"))
        .await
        .expect("the store opens from disk");
    let desk = Desk::open(store, Clock::system(), "Fault client", false)
        .await
        .expect("the desk opens");
    journal(&job.dir, &desk).await;
    let browser = TestBrowser::new(Behaviour::Password {
        email: job.email.clone(),
        password: job.password.clone(),
    });
    let setup = Setup {
        clock: Clock::system(),
        browser: browser.browser(),
        keychain: keychain(),
        sign_in_timeout: Duration::from_secs(20),
    };
    let connection = Connection::open(desk.clone(), setup)
        .await
        .expect("the account opens");
    if let Account::SignedOut {
        notice: Some(notice),
        ..
    } = connection.account()
    {
        println!("signed-out {notice}");
    }
    if !matches!(connection.account(), Account::SignedIn(_)) {
        // First start, or the saved sign-in was lost (e.g. killed between the issuer
        // rotating the refresh token and the keychain keeping the new one).
        if let Err(e) = connection.sign_in(&job.server, &job.server).await {
            println!("no-sign-in {}", e.message);
            return EXIT_NO_SIGN_IN;
        }
        println!("signed-in");
    }
    let replica = Replica::new(desk.clone(), connection);
    match job.task {
        Task::Edit { seed, edits, sync } => {
            let mut rng = Rng::new(seed);
            for _ in 0..edits {
                let made = edit(&desk, &mut rng).await;
                println!("edit {made}");
            }
            journal(&job.dir, &desk).await;
            println!("edited");
            if !sync {
                println!("offline");
                return EXIT_OK;
            }
            match replica.sync().await {
                Ok(()) => println!("synced"),
                Err(e) => println!("sync-failed {}", e.message),
            }
            EXIT_OK
        }
        Task::Settle => {
            for _ in 0..60 {
                let synced = replica.sync().await;
                let status = replica.status();
                if synced.is_ok() && status.unsent == 0 {
                    write_final(&job.dir, &desk, &replica).await;
                    return EXIT_OK;
                }
                println!("settling: {synced:?} {status:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            EXIT_UNSETTLED
        }
    }
}

/// Appends the whole outbox (pending and refused intents) to the journal, synced to disk.
async fn journal(dir: &Path, desk: &Desk) {
    let store = desk.store();
    let client_id = store::client_id(store).await.expect("the client id");
    let rows = sqlx::query("select seq, intent from outbox order by seq")
        .fetch_all(&store.pool)
        .await
        .expect("the outbox reads");
    let mut text = String::new();
    for row in rows {
        let intent: String = row.get(1);
        let entry = Journaled {
            client_id,
            seq: row.get(0),
            intent: serde_json::from_str(&intent).expect("an intent is JSON"),
        };
        text.push_str(&serde_json::to_string(&entry).expect("to JSON"));
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal_path(dir))
        .expect("the journal opens");
    file.write_all(text.as_bytes()).expect("the journal writes");
    file.sync_all().expect("the journal reaches the disk");
}

/// Every ticket in the local store (all pages).
pub async fn all_tickets(desk: &Desk) -> Vec<TicketId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = desk
            .list_tickets(&TicketQuery {
                cursor: cursor.clone(),
                limit: Some(500),
                ..Default::default()
            })
            .await
            .expect("the queue lists");
        ids.extend(page.items.iter().map(|row| row.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

const WORDS: [&str; 12] = [
    "printer",
    "VPN",
    "laptop",
    "badge",
    "monitor",
    "email",
    "invoice",
    "chair",
    "Wi-Fi",
    "password",
    "projector",
    "phone",
];

fn words(rng: &mut Rng, n: u64) -> String {
    (0..n)
        .map(|_| *rng.pick(&WORDS).unwrap_or(&"thing"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn priority(rng: &mut Rng) -> Priority {
    match rng.below(4) {
        0 => Priority::Low,
        1 => Priority::Medium,
        2 => Priority::High,
        _ => Priority::Urgent,
    }
}

/// One random edit through the desk; says what it did. Edits the workflow refuses locally
/// queue nothing, like the app's.
async fn edit(desk: &Desk, rng: &mut Rng) -> String {
    let tickets = all_tickets(desk).await;
    // Mostly the newest few, so that clients' edits meet on the same tickets.
    let newest = &tickets[..tickets.len().min(6)];
    let target = if rng.chance(70) {
        rng.pick(newest).copied()
    } else {
        rng.pick(&tickets).copied()
    };
    let kind = if target.is_none() { 0 } else { rng.below(11) };
    match (kind, target) {
        (10, _) => outcome("expense", file_expense(desk, rng).await),
        (0..=1, _) | (_, None) => {
            let input = CreateTicket {
                title: format!("{} {}", words(rng, 2), rng.below(1000)),
                description: words(rng, 6),
                priority: Some(priority(rng)),
                ..Default::default()
            };
            outcome("create", desk.create_ticket(&input).await.map(|_| ()))
        }
        (2..=4, Some(id)) => {
            let internal = rng.chance(30);
            let body = words(rng, 4);
            outcome(
                "comment",
                desk.add_comment(id, &body, internal).await.map(|_| ()),
            )
        }
        (5..=6, Some(id)) => {
            let patch = if rng.chance(50) {
                PatchTicket {
                    title: Some(format!("{} {}", words(rng, 3), rng.below(1000))),
                    ..Default::default()
                }
            } else {
                PatchTicket {
                    priority: Some(priority(rng)),
                    ..Default::default()
                }
            };
            outcome("update", desk.update_ticket(id, &patch).await.map(|_| ()))
        }
        (_, Some(id)) => {
            // Any target status, legal or not from where the ticket stands.
            let to = *rng.pick(&Status::ALL).unwrap_or(&Status::Open);
            let reason = (to == Status::OnHold).then_some("waiting on the customer");
            outcome(
                "transition",
                desk.transition(id, to, reason).await.map(|_| ()),
            )
        }
    }
}

/// A receipt read into a draft and filed on a new claim, as the app does after a drop. The
/// image's bytes are made up: the server stores them without decoding.
async fn file_expense(desk: &Desk, rng: &mut Rng) -> tallydesk_desktop_core::error::DeskResult<()> {
    let bytes = format!("receipt {} {}", words(rng, 2), rng.below(1_000_000)).into_bytes();
    let input = ExpenseInput {
        merchant: Some(words(rng, 2)),
        spent_on: Some("2026-03-14".into()),
        currency: "EUR".into(),
        total: Some(format!("{}.{:02}", 1 + rng.below(300), rng.below(100))),
        category: "travel".into(),
        version: 1,
        ..Default::default()
    };
    let draft = desk
        .create_draft(&ScannedReceipt {
            image: ReceiptImage {
                sha256: sha256_hex(&bytes),
                media_type: "image/jpeg".into(),
                width: 1,
                height: 1,
            },
            image_bytes: bytes,
            source_name: "receipt.jpg".into(),
            input: input.clone(),
            reading: Reading {
                width: 1,
                height: 1,
                lines: Vec::new(),
                fields: Vec::new(),
            },
        })
        .await?;
    desk.submit_expense(draft.id, &input, &ClaimTarget::New { title: None })
        .await
        .map(drop)
}

fn outcome(what: &str, result: tallydesk_desktop_core::error::DeskResult<()>) -> String {
    match result {
        Ok(()) => what.to_owned(),
        Err(e) => format!("{what}-refused-locally {:?}", e.code),
    }
}

async fn write_final(dir: &Path, desk: &Desk, replica: &Replica) {
    // Of any scope, not only the signed-in one.
    let pending: i64 = sqlx::query_scalar("select count(*) from outbox where state = 'pending'")
        .fetch_one(&desk.store().pool)
        .await
        .expect("the outbox counts");
    let mut tickets = Vec::new();
    let mut comments = Vec::new();
    for id in all_tickets(desk).await {
        tickets.push(desk.ticket(id).await.expect("a listed ticket opens").ticket);
        comments.extend(desk.comments(id).await.expect("its comments"));
    }
    tickets.sort_by_key(|t| t.id);
    comments.sort_by_key(|c| c.id);
    let mut expenses: Vec<Filed> = desk
        .list_expenses(&ExpenseQuery::default())
        .await
        .expect("the expenses")
        .expenses
        .into_iter()
        .filter(|e| e.status != ExpenseStatus::Draft)
        .map(|e| Filed {
            id: e.id,
            ticket_id: e.ticket.map(|t| t.id),
            status: e.status,
            merchant: e.merchant,
            total: e.total,
        })
        .collect();
    expenses.sort_by_key(|e| e.id);
    let state = Final {
        client_id: store::client_id(desk.store()).await.expect("the client id"),
        tickets,
        comments,
        expenses,
        pending,
        rejections: replica.rejections(None).await.expect("the rejections"),
    };
    let path = final_path(dir);
    std::fs::write(&path, serde_json::to_vec_pretty(&state).expect("to JSON"))
        .expect("final.json writes");
}
