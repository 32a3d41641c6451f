//! The queue on a 10,000-ticket local store: how long filters and searches take.
//!
//! `cargo bench -p tallydesk-desktop-core --bench queue`. Prints figures; asserts nothing.

use std::time::Instant;

use tallydesk_desktop_core::model::{AssigneeFilter, TicketQuery, TicketSort, TicketView};
use tallydesk_desktop_core::{Clock, Desk, Store};
use tallydesk_shared::Status;
use tallydesk_shared::api::CreateTicket;
use tallydesk_shared::ticket::Priority;

const TICKETS: usize = 10_000;
const RUNS: usize = 50;

const WORDS: [&str; 24] = [
    "printer", "laptop", "invoice", "vpn", "password", "monitor", "refund", "keyboard", "wifi",
    "outlook", "access", "drive", "receipt", "taxi", "hotel", "phone", "dock", "license", "crm",
    "export", "backup", "badge", "camera", "headset",
];

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("workspace.db"))
        .await
        .expect("store");
    let desk = Desk::open(store, Clock::system(), "Bench", false)
        .await
        .expect("desk");
    let me = desk.me().id;

    let started = Instant::now();
    for i in 0..TICKETS {
        let a = WORDS[i % WORDS.len()];
        let b = WORDS[(i * 7 + 3) % WORDS.len()];
        let input = CreateTicket {
            title: format!("{a} problem number {i} with the {b}"),
            description: format!(
                "The {a} stopped working after the update; the {b} is fine. Ticket {i}."
            ),
            priority: Some(
                [
                    Priority::Low,
                    Priority::Medium,
                    Priority::High,
                    Priority::Urgent,
                ][i % 4],
            ),
            category: Some(
                [
                    "general", "hardware", "software", "access", "billing", "expense",
                ][i % 6]
                    .into(),
            ),
            assignee_id: (i % 3 == 0).then_some(me),
            ..Default::default()
        };
        let t = desk.create_ticket(&input).await.expect("create");
        if i % 5 == 0 {
            desk.add_comment(
                t.id,
                &format!("Replaced the {b} cable, asked to retry"),
                i % 10 == 0,
            )
            .await
            .expect("comment");
        }
        if i % 4 == 1 {
            desk.transition(t.id, Status::InProgress, None)
                .await
                .expect("move");
        }
    }
    println!(
        "seeded {TICKETS} tickets in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let queries: Vec<(&str, TicketQuery)> = vec![
        ("first page, newest", TicketQuery::default()),
        (
            "view: my open",
            TicketQuery {
                view: Some(TicketView::MyOpen),
                ..Default::default()
            },
        ),
        (
            "view: unassigned",
            TicketQuery {
                view: Some(TicketView::Unassigned),
                ..Default::default()
            },
        ),
        (
            "filter: status + priority",
            TicketQuery {
                status: Some(Status::InProgress),
                priority: Some(Priority::Medium),
                ..Default::default()
            },
        ),
        (
            "filter: category + assignee",
            TicketQuery {
                category: Some("access".into()),
                assignee: Some(AssigneeFilter::Me),
                ..Default::default()
            },
        ),
        (
            "sort: priority",
            TicketQuery {
                sort: TicketSort::PriorityHighFirst,
                ..Default::default()
            },
        ),
        (
            "search: one word",
            TicketQuery {
                search: Some("printer".into()),
                ..Default::default()
            },
        ),
        (
            "search: prefix",
            TicketQuery {
                search: Some("keyb".into()),
                ..Default::default()
            },
        ),
        (
            "search: two words + filter",
            TicketQuery {
                search: Some("vpn cable".into()),
                status: Some(Status::Open),
                ..Default::default()
            },
        ),
    ];
    println!(
        "\n{:<30} {:>8} {:>10} {:>10} {:>10}",
        "query (page of 100 + count)", "matches", "median ms", "p95 ms", "max ms"
    );
    for (name, query) in queries {
        let mut times = Vec::with_capacity(RUNS);
        let mut total = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = desk.list_tickets(&query).await.expect("query");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page.total;
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "{name:<30} {total:>8} {:>10.2} {:>10.2} {:>10.2}",
            p(0.5),
            p(0.95),
            times[times.len() - 1]
        );
    }
    println!(
        "\n{} cores; target: ≤ 50 ms per query",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
