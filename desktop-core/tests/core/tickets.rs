//! The workspace: tickets, their workflow, comments, trail, search, views and pages.

use std::collections::HashSet;

use tallydesk_desktop_core::ErrorCode;
use tallydesk_desktop_core::model::{AssigneeFilter, TicketQuery, TicketSort, TicketView};
use tallydesk_shared::Status;
use tallydesk_shared::api::{CreateTicket, PatchTicket};
use tallydesk_shared::ticket::Priority;

use crate::Fixture;

fn new(title: &str) -> CreateTicket {
    CreateTicket {
        title: title.into(),
        description: "details".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named_and_nothing_saved() {
    let f = Fixture::new(false).await;
    for (input, field) in [
        (new(""), "title"),
        (new(&"x".repeat(201)), "title"),
        (
            CreateTicket {
                category: Some("travel".into()),
                ..new("ok")
            },
            "category",
        ),
        (
            CreateTicket {
                description: "d".repeat(20_001),
                ..new("ok")
            },
            "description",
        ),
    ] {
        let err = f.desk.create_ticket(&input).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.field.as_deref(), Some(field), "{err:?}");
    }
    assert_eq!(
        f.desk
            .list_tickets(&TicketQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn the_workflow_comes_from_the_shared_rules() {
    let f = Fixture::new(false).await;
    let t = f.desk.create_ticket(&new("Printer on fire")).await.unwrap();
    let detail = f.desk.view_ticket(t.id).await.unwrap();
    assert_eq!(
        detail.ticket.status,
        Status::InProgress,
        "the admin opening it starts work"
    );
    assert_eq!(
        detail.allowed_moves,
        [Status::OnHold, Status::Resolved],
        "only legal moves are offered"
    );

    let err = f
        .desk
        .transition(t.id, Status::OnHold, Some("  "))
        .await
        .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("reason"),
        "a hold needs a reason: {err:?}"
    );
    assert_eq!(
        f.desk.ticket(t.id).await.unwrap().ticket.status,
        Status::InProgress,
        "nothing half-saved"
    );

    let held = f
        .desk
        .transition(t.id, Status::OnHold, Some("Waiting for toner"))
        .await
        .unwrap();
    assert_eq!(held.hold_reason.as_deref(), Some("Waiting for toner"));
    let err = f
        .desk
        .transition(t.id, Status::Closed, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::IllegalTransition);
    assert!(
        err.message.contains("in_progress"),
        "it says what is possible: {}",
        err.message
    );
    f.desk
        .transition(t.id, Status::InProgress, None)
        .await
        .unwrap();
    let resolved = f
        .desk
        .transition(t.id, Status::Resolved, None)
        .await
        .unwrap();
    assert!(resolved.resolved_at.is_some());
    let closed = f.desk.transition(t.id, Status::Closed, None).await.unwrap();
    assert!(closed.closed_at.is_some());
    assert!(
        f.desk.ticket(t.id).await.unwrap().allowed_moves.is_empty(),
        "closed is final"
    );

    let trail = f.desk.activity(t.id).await.unwrap();
    let moves: Vec<_> = trail
        .iter()
        .filter(|a| a.field.as_deref() == Some("status"))
        .map(|a| a.after.clone().unwrap()["status"].clone())
        .collect();
    assert_eq!(
        moves,
        [
            "in_progress",
            "on_hold",
            "in_progress",
            "resolved",
            "closed"
        ]
    );
}

#[tokio::test]
async fn edits_are_versioned_and_logged() {
    let f = Fixture::new(false).await;
    let t = f.desk.create_ticket(&new("Keyboard")).await.unwrap();
    let me = f.desk.me().id;
    let edited = f
        .desk
        .update_ticket(
            t.id,
            &PatchTicket {
                title: Some("Keyboard sticky".into()),
                assignee_id: Some(Some(me)),
                version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.version, 2);
    assert_eq!(edited.assignee_id, Some(me));
    let stale = f
        .desk
        .update_ticket(
            t.id,
            &PatchTicket {
                title: Some("x".into()),
                version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code, ErrorCode::StaleVersion);
    let trail = f.desk.activity(t.id).await.unwrap();
    let title = trail
        .iter()
        .find(|a| a.field.as_deref() == Some("title"))
        .expect("the title change is logged");
    assert_eq!(title.before.as_ref().unwrap()["title"], "Keyboard");
    assert_eq!(title.after.as_ref().unwrap()["title"], "Keyboard sticky");
}

#[tokio::test]
async fn comments_notes_and_first_response() {
    let f = Fixture::new(false).await;
    let t = f.desk.create_ticket(&new("VPN")).await.unwrap();
    f.desk
        .add_comment(t.id, "Checking the gateway logs", true)
        .await
        .unwrap();
    assert_eq!(
        f.desk.ticket(t.id).await.unwrap().ticket.first_responded_at,
        None,
        "a note is no response"
    );
    let reply = f
        .desk
        .add_comment(t.id, "Try reconnecting now", false)
        .await
        .unwrap();
    assert_eq!(
        f.desk.ticket(t.id).await.unwrap().ticket.first_responded_at,
        Some(reply.created_at)
    );
    let thread = f.desk.comments(t.id).await.unwrap();
    assert_eq!(
        thread.iter().map(|c| c.internal).collect::<Vec<_>>(),
        [true, false]
    );
    let err = f.desk.add_comment(t.id, "   ", false).await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("body"));
}

#[tokio::test]
async fn search_filters_views_and_sorts() {
    let f = Fixture::new(false).await;
    let me = f.desk.me().id;
    let printer = f
        .desk
        .create_ticket(&CreateTicket {
            priority: Some(Priority::Low),
            category: Some("hardware".into()),
            ..new("Printer jams on tray two")
        })
        .await
        .unwrap();
    let invoice = f
        .desk
        .create_ticket(&CreateTicket {
            priority: Some(Priority::Urgent),
            assignee_id: Some(me),
            ..new("Invoice total wrong")
        })
        .await
        .unwrap();
    let login = f.desk.create_ticket(&new("Cannot log in")).await.unwrap();
    f.desk
        .add_comment(login.id, "Reset the authenticator app", false)
        .await
        .unwrap();
    f.desk
        .transition(printer.id, Status::InProgress, None)
        .await
        .unwrap();
    f.desk
        .transition(printer.id, Status::OnHold, Some("parts"))
        .await
        .unwrap();

    let ids = |q: TicketQuery| {
        let desk = f.desk.clone();
        async move {
            desk.list_tickets(&q)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(TicketQuery {
            search: Some("printer".into()),
            ..Default::default()
        })
        .await,
        [printer.id]
    );
    assert_eq!(
        ids(TicketQuery {
            search: Some("authentic".into()),
            ..Default::default()
        })
        .await,
        [login.id],
        "comments are searched, by word prefix"
    );
    assert_eq!(
        ids(TicketQuery {
            search: Some("tray jam".into()),
            ..Default::default()
        })
        .await,
        [printer.id],
        "every word must match"
    );
    assert!(
        ids(TicketQuery {
            search: Some("tray login".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        ids(TicketQuery {
            search: Some("\"unbalanced".into()),
            ..Default::default()
        })
        .await,
        Vec::<tallydesk_shared::TicketId>::new(),
        "odd input is no error"
    );
    assert_eq!(
        ids(TicketQuery {
            view: Some(TicketView::MyOpen),
            ..Default::default()
        })
        .await,
        [invoice.id]
    );
    assert_eq!(
        ids(TicketQuery {
            view: Some(TicketView::OnHold),
            ..Default::default()
        })
        .await,
        [printer.id]
    );
    assert_eq!(
        ids(TicketQuery {
            view: Some(TicketView::Unassigned),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        ids(TicketQuery {
            assignee: Some(AssigneeFilter::Nobody),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        ids(TicketQuery {
            category: Some("hardware".into()),
            ..Default::default()
        })
        .await,
        [printer.id]
    );
    assert_eq!(
        ids(TicketQuery {
            priority: Some(Priority::Urgent),
            ..Default::default()
        })
        .await,
        [invoice.id]
    );
    assert_eq!(
        ids(TicketQuery {
            sort: TicketSort::PriorityHighFirst,
            ..Default::default()
        })
        .await,
        [invoice.id, login.id, printer.id]
    );
    assert_eq!(
        ids(TicketQuery {
            sort: TicketSort::Oldest,
            ..Default::default()
        })
        .await,
        [printer.id, invoice.id, login.id]
    );
    let info = f.desk.info().await.unwrap();
    let counts: std::collections::HashMap<_, _> = info.view_counts.into_iter().collect();
    assert_eq!(counts[&TicketView::All], 3);
    assert_eq!(counts[&TicketView::OnHold], 1);
}

#[tokio::test]
async fn pages_cover_every_ticket_once() {
    let f = Fixture::new(false).await;
    let mut made = HashSet::new();
    for i in 0..57 {
        let p = [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ][i % 4];
        made.insert(
            f.desk
                .create_ticket(&CreateTicket {
                    priority: Some(p),
                    ..new(&format!("t{i}"))
                })
                .await
                .unwrap()
                .id,
        );
    }
    for sort in [
        TicketSort::Newest,
        TicketSort::Oldest,
        TicketSort::RecentlyUpdated,
        TicketSort::PriorityHighFirst,
    ] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = f
                .desk
                .list_tickets(&TicketQuery {
                    sort,
                    cursor: cursor.clone(),
                    limit: Some(10),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(page.total, 57);
            seen.extend(page.items.iter().map(|t| t.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 57, "{sort:?}: no repeats");
        assert_eq!(
            seen.into_iter().collect::<HashSet<_>>(),
            made,
            "{sort:?}: no gaps"
        );
    }
}
