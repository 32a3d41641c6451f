//! SLAs on the desktop: policies, each ticket's clock from its history, and alerts raised
//! exactly once, across restarts.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tallydesk_desktop_core::model::TicketQuery;
use tallydesk_desktop_core::{Clock, Desk, ErrorCode, Store};
use tallydesk_shared::Status;
use tallydesk_shared::api::CreateTicket;
use tallydesk_shared::sla::{CalendarInput, PolicyInput, SlaState, Target};
use tallydesk_shared::ticket::Priority;

/// A workspace whose clock the test moves.
struct Timed {
    desk: Desk,
    now: Arc<Mutex<DateTime<Utc>>>,
    dir: tempfile::TempDir,
}

impl Timed {
    async fn new() -> Timed {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(Mutex::new(
            DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        ));
        let desk = Self::open(&dir, &now).await;
        Timed { desk, now, dir }
    }

    async fn open(dir: &tempfile::TempDir, now: &Arc<Mutex<DateTime<Utc>>>) -> Desk {
        let store = Store::open(&dir.path().join("workspace.db")).await.unwrap();
        let clock = {
            let now = now.clone();
            Clock::fixed(move || *now.lock().unwrap())
        };
        Desk::open(store, clock, "Agent", false).await.unwrap()
    }

    fn at(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn advance(&self, minutes: i64) {
        *self.now.lock().unwrap() += Duration::minutes(minutes);
    }
}

fn first_response(minutes: u32) -> PolicyInput {
    PolicyInput {
        name: "Quick".into(),
        active: true,
        first_response_minutes: Some(minutes),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_ticket_goes_at_risk_then_breaches_and_each_alert_is_raised_once() {
    let t = Timed::new().await;
    t.desk
        .save_sla_policy(None, &first_response(60), None)
        .await
        .unwrap();
    let start = t.at();
    let ticket = t
        .desk
        .create_ticket(&CreateTicket {
            title: "Printer on fire".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    t.advance(10);
    let watch = t.desk.watch_sla(start).await.unwrap();
    assert!(watch.alerts.is_empty());
    assert_eq!(
        watch.next_change_at,
        Some(start + Duration::minutes(45)),
        "sleeps until the at-risk moment"
    );
    let sla = t.desk.ticket(ticket.id).await.unwrap().sla.unwrap();
    assert_eq!(sla.policy_name, "Quick");
    assert_eq!(sla.targets[0].state, SlaState::Running);
    assert_eq!(sla.targets[0].due_at, Some(start + Duration::minutes(60)));

    t.advance(35);
    let watch = t.desk.watch_sla(start).await.unwrap();
    assert_eq!(watch.alerts.len(), 1);
    let alert = &watch.alerts[0];
    assert_eq!(
        (alert.target, alert.state),
        (Target::FirstResponse, SlaState::AtRisk)
    );
    assert_eq!(
        alert.message(t.at()),
        "#1 Printer on fire: first response due in 15 min"
    );
    assert_eq!(watch.attention.len(), 1);
    assert_eq!(watch.next_change_at, Some(start + Duration::minutes(60)));
    assert!(
        t.desk.watch_sla(start).await.unwrap().alerts.is_empty(),
        "not raised twice"
    );

    // After a restart the same event is not raised again.
    let desk = Timed::open(&t.dir, &t.now).await;
    assert!(desk.watch_sla(start).await.unwrap().alerts.is_empty());

    t.advance(16);
    let watch = desk.watch_sla(start).await.unwrap();
    assert_eq!(watch.alerts.len(), 1);
    assert_eq!(watch.alerts[0].state, SlaState::Breached);
    assert_eq!(watch.alerts[0].at, start + Duration::minutes(60));
    assert_eq!(
        watch.alerts[0].message(t.at()),
        "#1 Printer on fire: first response overdue by 1 min"
    );
    assert_eq!(
        watch.next_change_at, None,
        "nothing more will change by itself"
    );
    let page = desk.list_tickets(&TicketQuery::default()).await.unwrap();
    assert_eq!(
        page.items[0].sla.as_ref().unwrap().state,
        SlaState::Breached
    );
}

#[tokio::test]
async fn hold_pauses_the_clock() {
    let t = Timed::new().await;
    t.desk
        .save_sla_policy(None, &first_response(60), None)
        .await
        .unwrap();
    let start = t.at();
    let ticket = t
        .desk
        .create_ticket(&CreateTicket {
            title: "VPN down".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    t.desk
        .transition(ticket.id, Status::InProgress, None)
        .await
        .unwrap();
    t.advance(20);
    t.desk
        .transition(ticket.id, Status::OnHold, Some("waiting for the vendor"))
        .await
        .unwrap();
    t.advance(120);
    let sla = t.desk.ticket(ticket.id).await.unwrap().sla.unwrap();
    assert_eq!(sla.targets[0].state, SlaState::Paused);
    assert_eq!(sla.targets[0].remaining_seconds, 40 * 60);
    let watch = t.desk.watch_sla(start).await.unwrap();
    assert_eq!(watch.next_change_at, None, "a paused clock wakes nobody");

    t.desk
        .transition(ticket.id, Status::InProgress, None)
        .await
        .unwrap();
    t.advance(10);
    let sla = t.desk.ticket(ticket.id).await.unwrap().sla.unwrap();
    assert_eq!(sla.targets[0].remaining_seconds, 30 * 60);
    assert_eq!(sla.targets[0].due_at, Some(t.at() + Duration::minutes(30)));
}

#[tokio::test]
async fn events_while_the_app_was_closed_are_counted_not_announced_one_by_one() {
    let t = Timed::new().await;
    t.desk
        .save_sla_policy(None, &first_response(30), None)
        .await
        .unwrap();
    for title in ["One", "Two"] {
        t.desk
            .create_ticket(&CreateTicket {
                title: title.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    t.advance(600);
    let watch = t.desk.watch_sla(t.at()).await.unwrap();
    assert!(watch.alerts.is_empty());
    assert_eq!(
        watch.missed, 2,
        "two breaches; their at-risk moments are superseded"
    );
    assert_eq!(watch.attention.len(), 2);
}

#[tokio::test]
async fn policies_are_checked_and_edited_at_their_version() {
    let t = Timed::new().await;
    let err = t
        .desk
        .save_sla_policy(
            None,
            &PolicyInput {
                business_hours: true,
                ..first_response(60)
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("calendar_id"));
    let calendar = t
        .desk
        .save_calendar(
            None,
            &CalendarInput {
                name: "Paris office".into(),
                time_zone: "Europe/Paris".into(),
                weekly: tallydesk_desktop_core::sla::office_hours(),
                holidays: vec!["2026-07-14".into()],
            },
            None,
        )
        .await
        .unwrap();
    let bad_zone = CalendarInput {
        time_zone: "Paris".into(),
        ..calendar.calendar.clone()
    };
    let err = t
        .desk
        .save_calendar(Some(calendar.id), &bad_zone, Some(calendar.version))
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("time_zone"));

    let policy = t
        .desk
        .save_sla_policy(
            None,
            &PolicyInput {
                business_hours: true,
                calendar_id: Some(calendar.id),
                priorities: Some(vec![Priority::High]),
                ..first_response(60)
            },
            None,
        )
        .await
        .unwrap();
    let err = t.desk.delete_calendar(calendar.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "a policy uses it");

    let renamed = PolicyInput {
        name: "High priority".into(),
        ..policy.policy.clone()
    };
    let saved = t
        .desk
        .save_sla_policy(Some(policy.id), &renamed, Some(policy.version))
        .await
        .unwrap();
    assert_eq!(saved.version, policy.version + 1);
    let err = t
        .desk
        .save_sla_policy(Some(policy.id), &renamed, Some(policy.version))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleVersion);

    // Only high-priority tickets get it; deleting it takes the SLA away.
    let low = t
        .desk
        .create_ticket(&CreateTicket {
            title: "Low".into(),
            priority: Some(Priority::Low),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(t.desk.ticket(low.id).await.unwrap().sla.is_none());
    let high = t
        .desk
        .create_ticket(&CreateTicket {
            title: "High".into(),
            priority: Some(Priority::High),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(t.desk.ticket(high.id).await.unwrap().sla.is_some());
    t.desk.delete_sla_policy(policy.id).await.unwrap();
    assert!(t.desk.ticket(high.id).await.unwrap().sla.is_none());
    t.desk.delete_calendar(calendar.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_watcher_and_edits_write_side_by_side() {
    let t = Timed::new().await;
    t.desk
        .save_sla_policy(None, &first_response(1), None)
        .await
        .unwrap();
    let start = t.at();
    let watcher = {
        let desk = t.desk.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                desk.watch_sla(start).await.unwrap();
            }
        })
    };
    for n in 0..40 {
        t.desk
            .create_ticket(&CreateTicket {
                title: format!("Ticket {n}"),
                ..Default::default()
            })
            .await
            .expect("no 'database is locked' while the watcher writes");
    }
    watcher.await.unwrap();
}
