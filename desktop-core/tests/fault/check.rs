//! The end state: every client equals the server, and every queued intent is on the server
//! exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use tallydesk_shared::expense::Currency;
use tallydesk_shared::{ExpenseId, TicketId};

use crate::client::{Filed, Final, Journaled, final_path};

pub fn read_final(dir: &Path) -> Final {
    let text = std::fs::read_to_string(final_path(dir))
        .unwrap_or_else(|e| panic!("{} has no final.json: {e}", dir.display()));
    serde_json::from_str(&text).expect("final.json parses")
}

/// Every intent the clients journaled, by (client, seq). A line cut short by `kill -9` is
/// skipped: its intent was still pending, so a later start journaled it again.
fn journaled(paths: &[PathBuf]) -> BTreeMap<(Uuid, i64), serde_json::Value> {
    let mut all = BTreeMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Journaled>(line) else {
                continue;
            };
            let key = (entry.client_id.0, entry.seq);
            if let Some(before) = all.insert(key, entry.intent.clone()) {
                assert_eq!(
                    before, entry.intent,
                    "an outbox seq is never reused for another intent: {key:?}"
                );
            }
        }
    }
    all
}

/// A `sync_mutations` row: how the server answered one intent.
struct Recorded {
    status: String,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Debug)]
pub struct Figures {
    pub queued: usize,
    pub applied: usize,
    pub rejected: usize,
    pub rejected_codes: String,
    pub ops: String,
    pub tickets: usize,
    pub comments: usize,
    pub expenses: usize,
}

fn str_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("to JSON") {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn intent_id(intent: &serde_json::Value) -> Uuid {
    intent["args"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a create intent names its id: {intent}"))
}

pub async fn converged(
    pool: &PgPool,
    observer: &Final,
    finals: &[Final],
    journals: &[PathBuf],
) -> Figures {
    // The server's records, straight from its tables.
    let tickets: Vec<(Uuid, i64, String, String, String)> =
        sqlx::query("select id, version, title, status, priority from tickets")
            .fetch_all(pool)
            .await
            .expect("the server's tickets")
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
    let comments: Vec<(Uuid, Uuid, String, bool)> =
        sqlx::query("select id, ticket_id, body, internal from comments")
            .fetch_all(pool)
            .await
            .expect("the server's comments")
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
    let eur = Currency::parse("EUR").expect("EUR");
    let mut expenses: Vec<Filed> =
        sqlx::query("select id, ticket_id, status, merchant, amount_minor from expenses")
            .fetch_all(pool)
            .await
            .expect("the server's expenses")
            .into_iter()
            .map(|r| Filed {
                id: ExpenseId::from_uuid(r.get(0)),
                ticket_id: Some(TicketId::from_uuid(r.get(1))),
                status: r.get::<String, _>(2).parse().expect("a status"),
                merchant: Some(r.get(3)),
                total: Some(eur.format_amount(r.get(4))),
            })
            .collect();
    expenses.sort_by_key(|e| e.id);
    assert_eq!(
        observer.expenses, expenses,
        "a full pull gives the server's expenses"
    );
    let rows = sqlx::query("select client_id, seq, status, code, message from sync_mutations")
        .fetch_all(pool)
        .await
        .expect("the server's mutation records");
    let recorded: BTreeMap<(Uuid, i64), Recorded> = rows
        .iter()
        .map(|r| {
            let record = Recorded {
                status: r.get(2),
                code: r.get(3),
                message: r.get(4),
            };
            ((r.get(0), r.get(1)), record)
        })
        .collect();

    // A desktop that pulled the whole log from the start holds the server's records...
    let mut seen: Vec<_> = observer
        .tickets
        .iter()
        .map(|t| {
            (
                t.id.as_uuid(),
                t.version,
                t.title.clone(),
                str_of(&t.status),
                str_of(&t.priority),
            )
        })
        .collect();
    seen.sort();
    let mut in_db = tickets.clone();
    in_db.sort();
    assert_eq!(seen, in_db, "a full pull gives the server's tickets");
    let mut seen: Vec<_> = observer
        .comments
        .iter()
        .map(|c| {
            (
                c.id.as_uuid(),
                c.ticket_id.as_uuid(),
                c.body.clone(),
                c.internal,
            )
        })
        .collect();
    seen.sort();
    let mut in_db = comments.clone();
    in_db.sort();
    assert_eq!(seen, in_db, "a full pull gives the server's comments");

    // ...and so does every client that went through the faults.
    for (i, state) in finals.iter().enumerate() {
        assert_eq!(state.pending, 0, "client {i} has nothing left to send");
        assert_eq!(
            state.tickets.len(),
            observer.tickets.len(),
            "client {i} has as many tickets as the server"
        );
        for (mine, server) in state.tickets.iter().zip(&observer.tickets) {
            assert_eq!(mine, server, "client {i} holds the server's ticket");
        }
        assert_eq!(
            state.comments.len(),
            observer.comments.len(),
            "client {i} has as many comments as the server"
        );
        for (mine, server) in state.comments.iter().zip(&observer.comments) {
            assert_eq!(mine, server, "client {i} holds the server's comment");
        }
        assert_eq!(
            state.expenses, observer.expenses,
            "client {i} holds the server's expenses"
        );
    }

    // Every intent queued is recorded on the server once, applied or refused with a reason;
    // the server records no intent nobody queued.
    let queued = journaled(journals);
    assert_eq!(recorded.len(), rows.len(), "one record per (client, seq)");
    let lost: Vec<_> = queued
        .keys()
        .filter(|k| !recorded.contains_key(k))
        .collect();
    assert!(
        lost.is_empty(),
        "queued intents the server never recorded (lost): {lost:?}"
    );
    let phantom: Vec<_> = recorded
        .keys()
        .filter(|k| !queued.contains_key(k))
        .collect();
    assert!(
        phantom.is_empty(),
        "the server recorded intents no client queued: {phantom:?}"
    );

    let mut applied_tickets = Vec::new();
    let mut applied_comments = Vec::new();
    let mut applied_expenses = Vec::new();
    let mut rejected_codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut applied = 0;
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for (key, intent) in &queued {
        *ops.entry(intent["op"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        let Recorded {
            status,
            code,
            message,
        } = &recorded[key];
        match status.as_str() {
            "applied" => {
                applied += 1;
                match intent["op"].as_str() {
                    Some("ticket.create") => applied_tickets.push(intent_id(intent)),
                    Some("comment.create") => applied_comments.push(intent_id(intent)),
                    Some("expense.create") => applied_expenses.push(intent_id(intent)),
                    _ => {}
                }
            }
            "rejected" => {
                let code = code.clone().unwrap_or_default();
                assert!(
                    !code.is_empty() && message.as_deref().is_some_and(|m| !m.is_empty()),
                    "a refused intent says why: {key:?} {intent}"
                );
                *rejected_codes.entry(code).or_default() += 1;
            }
            other => panic!("unknown status {other}"),
        }
    }
    let rejected: usize = rejected_codes.values().sum();
    let ticket_ids: BTreeSet<Uuid> = tickets.iter().map(|t| t.0).collect();
    let created: BTreeSet<Uuid> = applied_tickets.iter().copied().collect();
    assert_eq!(
        applied_tickets.len(),
        created.len(),
        "each ticket was created by one applied intent"
    );
    assert_eq!(
        created, ticket_ids,
        "the server's tickets are exactly those of the applied creates"
    );
    let comment_ids: BTreeSet<Uuid> = comments.iter().map(|c| c.0).collect();
    let created: BTreeSet<Uuid> = applied_comments.iter().copied().collect();
    assert_eq!(
        applied_comments.len(),
        created.len(),
        "each comment was made by one applied intent"
    );
    assert_eq!(
        created, comment_ids,
        "the server's comments are exactly those of the applied creates"
    );

    let expense_ids: BTreeSet<Uuid> = expenses.iter().map(|e| e.id.as_uuid()).collect();
    let filed: BTreeSet<Uuid> = applied_expenses.iter().copied().collect();
    assert_eq!(
        applied_expenses.len(),
        filed.len(),
        "each expense was filed by one applied intent"
    );
    assert_eq!(
        filed, expense_ids,
        "the server's expenses are exactly those of the applied filings"
    );

    // Each client still shows the refusals of its own intents (nobody dismissed them).
    for (i, state) in finals.iter().enumerate() {
        let mut shown: Vec<i64> = state.rejections.iter().map(|r| r.seq).collect();
        shown.sort_unstable();
        let refused: Vec<i64> = recorded
            .iter()
            .filter(|((c, _), r)| *c == state.client_id.0 && r.status == "rejected")
            .map(|((_, s), _)| *s)
            .collect();
        assert_eq!(
            shown, refused,
            "client {i} shows each of its refused changes"
        );
    }

    Figures {
        queued: queued.len(),
        applied,
        rejected,
        rejected_codes: format!("{rejected_codes:?}"),
        ops: format!("{ops:?}"),
        tickets: tickets.len(),
        comments: comments.len(),
        expenses: expenses.len(),
    }
}
