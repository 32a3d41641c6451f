//! The sync engine's local half on a real SQLite store: the outbox filled by local writes,
//! pulled changes applied, pending intents replayed over them, answers settled.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use tallydesk_desktop_core::model::Person;
use tallydesk_desktop_core::sync::SyncScope;
use tallydesk_desktop_core::sync::store;
use tallydesk_desktop_core::sync::store::Indexing::Now;
use tallydesk_desktop_core::{Desk, ErrorCode};
use tallydesk_shared::api::{CreateTicket, PatchTicket, Ticket};
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::{
    Change, ChangeOp, CommentCreate, Entity, Intent, MutationResult, MutationStatus, TicketCreate,
    TicketTransition, TicketUpdate,
};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::workflow::{self, Mover};
use tallydesk_shared::{Access, Action, CommentId, Role, Status, TenantId, TicketId, UserId};

use crate::Fixture;

fn scope(role: Role) -> SyncScope {
    SyncScope {
        server_url: "http://127.0.0.1:1".to_owned(),
        tenant_id: TenantId::new(),
        user: Person {
            id: UserId::new(),
            name: "Server Me".to_owned(),
            email: Some("me@example.com".to_owned()),
            role,
        },
    }
}

fn server_ticket(id: TicketId, number: i64, requester: UserId, status: Status) -> Ticket {
    let at = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    Ticket {
        id,
        number,
        title: format!("Server ticket {number}"),
        description: "from the server".to_owned(),
        status,
        priority: Priority::Medium,
        category: "general".to_owned(),
        requester_id: requester,
        assignee_id: None,
        customer_id: None,
        hold_reason: (status == Status::OnHold).then(|| "waiting".to_owned()),
        created_at: at,
        updated_at: at,
        first_responded_at: None,
        resolved_at: None,
        closed_at: None,
        version: 3,
    }
}

fn upsert(seq: i64, ticket: &Ticket) -> Change {
    Change {
        seq,
        entity: Entity::Ticket,
        id: ticket.id.as_uuid(),
        op: ChangeOp::Upsert,
        data: Some(serde_json::to_value(ticket).unwrap()),
    }
}

async fn outbox_ops(desk: &Desk) -> Vec<String> {
    sqlx::query_scalar("select json_extract(intent, '$.op') from outbox order by seq")
        .fetch_all(&desk.store().pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn local_mode_queues_nothing() {
    let f = Fixture::new(false).await;
    let ticket = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Printer jam".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    f.desk.add_comment(ticket.id, "on it", false).await.unwrap();
    assert!(
        outbox_ops(&f.desk).await.is_empty(),
        "without a server, local writes are not queued for one"
    );
}

#[tokio::test]
async fn customers_and_deletions_are_offered_and_queued_while_signed_in() {
    let f = Fixture::new(false).await;
    f.desk.set_sync_scope(Some(scope(Role::Admin)));
    let can = f.desk.info().await.unwrap().can;
    for action in [
        Action::DeleteTicket,
        Action::EditCustomers,
        Action::DeleteCustomer,
    ] {
        assert!(
            can.contains(&action),
            "{action:?} is offered while signed in"
        );
    }
    let customer = f
        .desk
        .create_customer(&tallydesk_shared::api::CreateCustomer {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ticket = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Acme's printer".into(),
            customer_id: Some(customer.id),
            ..Default::default()
        })
        .await
        .unwrap();
    // Saving a customer unchanged sends nothing.
    f.desk
        .update_customer(customer.id, &Default::default())
        .await
        .unwrap();
    f.desk
        .update_customer(
            customer.id,
            &tallydesk_shared::api::PatchCustomer {
                company: Some(Some("Acme Corp".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.desk.delete_ticket(ticket.id).await.unwrap();
    f.desk.delete_customer(customer.id).await.unwrap();
    assert_eq!(
        outbox_ops(&f.desk).await,
        [
            "customer.create",
            "ticket.create",
            "customer.update",
            "ticket.delete",
            "customer.delete"
        ]
    );
    let update: String = sqlx::query_scalar(
        "select intent from outbox where json_extract(intent, '$.op') = 'customer.update'",
    )
    .fetch_one(&f.desk.store().pool)
    .await
    .unwrap();
    let update: serde_json::Value = serde_json::from_str(&update).unwrap();
    assert_eq!(
        update["args"],
        serde_json::json!({ "id": customer.id, "company": "Acme Corp" }),
        "only the field changed travels"
    );
}

#[tokio::test]
async fn signed_in_writes_queue_their_intents_in_order() {
    let f = Fixture::new(false).await;
    let scope = scope(Role::Agent);
    f.desk.set_sync_scope(Some(scope.clone()));
    let mut queued = f.desk.queued();
    let ticket = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Printer jam".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ticket.requester_id, scope.user.id,
        "signed in, the server's user acts"
    );
    assert!(queued.has_changed().unwrap(), "the sync loop hears of it");
    queued.mark_unchanged();
    f.desk
        .update_ticket(
            ticket.id,
            &PatchTicket {
                title: Some("Printer jam on floor 2".into()),
                version: Some(ticket.version),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.desk
        .transition(ticket.id, Status::InProgress, None)
        .await
        .unwrap();
    f.desk
        .transition(ticket.id, Status::OnHold, Some("waiting for toner"))
        .await
        .unwrap();
    f.desk
        .add_comment(ticket.id, "ordered", false)
        .await
        .unwrap();
    assert_eq!(
        outbox_ops(&f.desk).await,
        [
            "ticket.create",
            "ticket.update",
            "ticket.transition",
            "ticket.transition",
            "comment.create"
        ],
        "each write queued its intent, in order"
    );
    let pending = store::pending(f.desk.store(), &scope, 100).await.unwrap();
    let Intent::TicketUpdate(update) = &pending[1].intent else {
        panic!("the second intent is the update");
    };
    assert_eq!(update.title.as_deref(), Some("Printer jam on floor 2"));
    assert_eq!(update.base_version, ticket.version);
    assert_eq!(update.priority, None, "only the changed field is sent");
    let Intent::TicketTransition(t) = &pending[3].intent else {
        panic!("the fourth intent is the move on hold");
    };
    assert_eq!(t.reason.as_deref(), Some("waiting for toner"));
    assert_eq!(store::counts(f.desk.store(), &scope).await.unwrap(), (5, 0));

    // A refused write queues nothing: the intent shares the change's transaction.
    let refused = f
        .desk
        .transition(ticket.id, Status::Closed, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::IllegalTransition);
    assert_eq!(outbox_ops(&f.desk).await.len(), 5);
}

#[tokio::test]
async fn pulled_state_with_pending_intents_replayed_and_a_rejection_undone() {
    let f = Fixture::new(false).await;
    let scope = scope(Role::Agent);
    f.desk.set_sync_scope(Some(scope.clone()));
    let s = f.desk.store();
    let now = Utc::now().timestamp_micros();
    store::enter_scope(s, &scope, now).await.unwrap();
    let other = UserId::new();
    let server = server_ticket(TicketId::new(), 1, other, Status::InProgress);
    store::apply_page(s, &[upsert(1, &server)], 1, now, Now)
        .await
        .unwrap();
    assert_eq!(store::position(s).await.unwrap().cursor, 1);

    // Offline: a title edit and a resolve.
    f.desk
        .update_ticket(
            server.id,
            &PatchTicket {
                title: Some("Mine".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.desk
        .transition(server.id, Status::Resolved, None)
        .await
        .unwrap();
    // Meanwhile on the server someone put it on hold and changed the description.
    let mut changed = server.clone();
    changed.status = Status::OnHold;
    changed.hold_reason = Some("parts".into());
    changed.description = "theirs".into();
    changed.version = 4;
    store::apply_page(s, &[upsert(2, &changed)], 2, now, Now)
        .await
        .unwrap();
    store::replay(s, &scope, &[], now).await.unwrap();
    let local = f.desk.ticket(server.id).await.unwrap().ticket;
    assert_eq!(
        local.title, "Mine",
        "my pending edit is replayed over theirs"
    );
    assert_eq!(local.description, "theirs", "their field is kept");
    assert_eq!(
        local.status,
        Status::OnHold,
        "on hold cannot become resolved: the replayed move is left out, as the server will refuse it"
    );

    // The server answers: the edit applied, the move refused.
    let pending = store::pending(s, &scope, 10).await.unwrap();
    let answered = store::settle(
        s,
        &[
            MutationResult {
                seq: pending[0].seq,
                status: MutationStatus::Applied,
                code: None,
                message: None,
            },
            MutationResult {
                seq: pending[1].seq,
                status: MutationStatus::Rejected,
                code: Some(ErrorCode::IllegalTransition),
                message: Some("a ticket that is on_hold cannot become resolved".into()),
            },
        ],
    )
    .await
    .unwrap();
    let mut applied = changed.clone();
    applied.title = "Mine".into();
    applied.version = 5;
    store::apply_page(s, &[upsert(3, &applied)], 3, now, Now)
        .await
        .unwrap();
    store::replay(s, &scope, &answered, now).await.unwrap();
    let local = f.desk.ticket(server.id).await.unwrap().ticket;
    assert_eq!(
        local, applied,
        "nothing pending: the local copy is the server's"
    );
    assert_eq!(store::counts(s, &scope).await.unwrap(), (0, 1));
    let rejections = store::rejections(s, &scope, Some(server.id)).await.unwrap();
    assert_eq!(
        rejections.len(),
        1,
        "the refused move is kept on the ticket"
    );
    assert_eq!(rejections[0].code, ErrorCode::IllegalTransition);
    assert!(rejections[0].message.contains("on_hold"));
    store::dismiss(s, rejections[0].seq).await.unwrap();
    assert_eq!(store::counts(s, &scope).await.unwrap(), (0, 0));
}

#[tokio::test]
async fn deletes_and_evictions_remove_records_and_numbers_make_way() {
    let f = Fixture::new(false).await;
    let scope = scope(Role::Agent);
    f.desk.set_sync_scope(Some(scope.clone()));
    let s = f.desk.store();
    let now = Utc::now().timestamp_micros();
    store::enter_scope(s, &scope, now).await.unwrap();
    // Made offline: it takes local number 1 until the server numbers it.
    let mine = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Mine".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.number, 1);
    let a = server_ticket(TicketId::new(), 1, scope.user.id, Status::Open);
    let b = server_ticket(TicketId::new(), 2, scope.user.id, Status::Open);
    store::apply_page(s, &[upsert(1, &a), upsert(2, &b)], 2, now, Now)
        .await
        .unwrap();
    let mine = f.desk.ticket(mine.id).await.unwrap().ticket;
    assert!(mine.number > 2, "my pending ticket moved to a free number");
    f.desk.add_comment(b.id, "hello", false).await.unwrap();
    let gone = |seq, id: TicketId, op| Change {
        seq,
        entity: Entity::Ticket,
        id: id.as_uuid(),
        op,
        data: None,
    };
    store::apply_page(
        s,
        &[
            gone(3, a.id, ChangeOp::Delete),
            gone(4, b.id, ChangeOp::Evict),
        ],
        4,
        now,
        Now,
    )
    .await
    .unwrap();
    assert_eq!(
        f.desk.ticket(a.id).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        f.desk.ticket(b.id).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    let comments: i64 = sqlx::query_scalar("select count(*) from comments where ticket_id = ?")
        .bind(b.id.to_string())
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(
        comments, 0,
        "an evicted ticket's thread leaves this computer"
    );
}

#[tokio::test]
async fn switching_tenant_clears_the_old_tenants_records_and_keeps_its_outbox() {
    let f = Fixture::new(false).await;
    let first = scope(Role::Agent);
    f.desk.set_sync_scope(Some(first.clone()));
    let s = f.desk.store();
    let now = Utc::now().timestamp_micros();
    store::enter_scope(s, &first, now).await.unwrap();
    let pulled = server_ticket(TicketId::new(), 1, first.user.id, Status::Open);
    store::apply_page(s, &[upsert(1, &pulled)], 1, now, Now)
        .await
        .unwrap();
    let made = f
        .desk
        .create_ticket(&CreateTicket {
            title: "Unsent".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let second = SyncScope {
        tenant_id: TenantId::new(),
        ..first.clone()
    };
    f.desk.set_sync_scope(Some(second.clone()));
    assert!(store::enter_scope(s, &second, now).await.unwrap());
    assert_eq!(store::position(s).await.unwrap().cursor, 0);
    for id in [pulled.id, made.id] {
        assert_eq!(
            f.desk.ticket(id).await.unwrap_err().code,
            ErrorCode::NotFound,
            "the other tenant's tickets are not shown in this one"
        );
    }
    assert_eq!(
        store::counts(s, &first).await.unwrap(),
        (1, 0),
        "the first tenant's unsent ticket waits for it"
    );
    f.desk.set_sync_scope(Some(first.clone()));
    store::enter_scope(s, &first, now).await.unwrap();
    store::apply_page(s, &[upsert(1, &pulled)], 1, now, Now)
        .await
        .unwrap();
    store::replay(s, &first, &[], now).await.unwrap();
    assert_eq!(f.desk.ticket(made.id).await.unwrap().ticket.title, "Unsent");
    assert_eq!(f.desk.ticket(pulled.id).await.unwrap().ticket.number, 1);
}

// ---- Merge and replay, against a model of the server ------------------------------------------

/// The fields sync merges, as the server would hold them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fields {
    title: String,
    description: String,
    priority: Priority,
    status: Status,
    hold_reason: Option<String>,
    requester_mine: bool,
}

/// The server applying intents in order, written from the protocol's rules: per-field last
/// writer wins, transitions re-checked against the current status, creates and comments
/// applied once, everything under the role's permissions.
fn server_applies(
    role: Role,
    tickets: &mut std::collections::BTreeMap<TicketId, Fields>,
    comments: &mut std::collections::BTreeSet<CommentId>,
    intent: &Intent,
) {
    let visible = |f: &Fields| access(role, Action::ViewTicket).allows(f.requester_mine);
    match intent {
        Intent::TicketCreate(c) => {
            if access(role, Action::CreateTicket) == Access::Denied || tickets.contains_key(&c.id) {
                return;
            }
            tickets.insert(
                c.id,
                Fields {
                    title: c.title.clone(),
                    description: c.description.clone(),
                    priority: c.priority.unwrap_or_default(),
                    status: Status::Open,
                    hold_reason: None,
                    requester_mine: true,
                },
            );
        }
        Intent::TicketUpdate(u) => {
            if access(role, Action::EditTicket) == Access::Denied {
                return;
            }
            if let Some(f) = tickets.get_mut(&u.id).filter(|f| visible(f)) {
                if let Some(t) = &u.title {
                    f.title = t.clone();
                }
                if let Some(d) = &u.description {
                    f.description = d.clone();
                }
                if let Some(p) = u.priority {
                    f.priority = p;
                }
            }
        }
        Intent::TicketTransition(t) => {
            if let Some(f) = tickets.get_mut(&t.id).filter(|f| visible(f)) {
                let mover = Mover {
                    role,
                    is_requester: f.requester_mine,
                };
                if let Ok(moved) = workflow::transition(mover, f.status, t.to, t.reason.as_deref())
                {
                    f.status = moved.to;
                    f.hold_reason = moved.hold_reason.map(|r| r.as_str().to_owned());
                }
            }
        }
        Intent::CommentCreate(c) => {
            let action = if c.internal {
                Action::CommentInternal
            } else {
                Action::CommentPublic
            };
            if let Some(f) = tickets.get(&c.ticket_id).filter(|f| visible(f))
                && access(role, action).allows(f.requester_mine)
            {
                comments.insert(c.id);
            }
        }
        // Expenses are outside this model: the steps below make none.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Open),
        Just(Status::InProgress),
        Just(Status::OnHold),
        Just(Status::Resolved),
        Just(Status::Closed),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Medium),
        Just(Priority::High),
        Just(Priority::Urgent),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Requester),
        Just(Role::Observer),
        Just(Role::Agent),
        Just(Role::Admin),
    ]
}

/// An intent, with tickets named by index: below the server's count an existing ticket,
/// above it one of the intents' own creates.
#[derive(Clone, Debug)]
enum Step {
    Create(String, Option<Priority>),
    Update(usize, Option<String>, Option<String>, Option<Priority>),
    Transition(usize, Status, Option<String>),
    Comment(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    let text = "[a-z]{1,8}";
    prop_oneof![
        (text, proptest::option::of(priority())).prop_map(|(t, p)| Step::Create(t, p)),
        (
            0usize..8,
            proptest::option::of(text),
            proptest::option::of(text),
            proptest::option::of(priority())
        )
            .prop_map(|(i, t, d, p)| Step::Update(i, t, d, p)),
        (0usize..8, status(), proptest::option::of(text))
            .prop_map(|(i, s, r)| Step::Transition(i, s, r)),
        (0usize..8, any::<bool>()).prop_map(|(i, internal)| Step::Comment(i, internal)),
    ]
}

fn server_state() -> impl Strategy<Value = Vec<(Status, Priority, bool, String)>> {
    proptest::collection::vec((status(), priority(), any::<bool>(), "[a-z]{1,8}"), 1..5)
}

async fn replay_matches_the_server(
    role: Role,
    initial: Vec<(Status, Priority, bool, String)>,
    steps: Vec<Step>,
) -> Result<(), TestCaseError> {
    let f = Fixture::new(false).await;
    let scope = scope(role);
    let s = f.desk.store();
    let now = Utc::now().timestamp_micros();
    store::enter_scope(s, &scope, now).await.unwrap();
    let other = UserId::new();
    let mut ids: Vec<TicketId> = Vec::new();
    let mut model = std::collections::BTreeMap::new();
    let mut changes = Vec::new();
    for (i, (status, priority, mine, title)) in initial.iter().enumerate() {
        let id = TicketId::new();
        let mut t = server_ticket(
            id,
            i as i64 + 1,
            if *mine { scope.user.id } else { other },
            *status,
        );
        t.priority = *priority;
        t.title = title.clone();
        changes.push(upsert(i as i64 + 1, &t));
        model.insert(
            id,
            Fields {
                title: t.title.clone(),
                description: t.description.clone(),
                priority: t.priority,
                status: t.status,
                hold_reason: t.hold_reason.clone(),
                requester_mine: *mine,
            },
        );
        ids.push(id);
    }
    store::apply_page(s, &changes, changes.len() as i64, now, Now)
        .await
        .unwrap();
    let created: Vec<TicketId> = (0..8).map(|_| TicketId::new()).collect();
    let mut creates = 0;
    let pick = |i: usize| ids.get(i).copied().unwrap_or(created[i % created.len()]);
    let mut intents = Vec::new();
    for step in steps {
        intents.push(match step {
            Step::Create(title, priority) => {
                creates += 1;
                Intent::TicketCreate(TicketCreate {
                    id: created[(ids.len() + creates - 1) % created.len()],
                    title,
                    description: String::new(),
                    priority,
                    category: None,
                    customer_id: None,
                    assignee_id: None,
                })
            }
            Step::Update(i, title, description, priority) => Intent::TicketUpdate(TicketUpdate {
                id: pick(i),
                base_version: 1,
                title,
                description,
                priority,
                ..Default::default()
            }),
            Step::Transition(i, to, reason) => Intent::TicketTransition(TicketTransition {
                id: pick(i),
                to,
                reason,
            }),
            Step::Comment(i, internal) => Intent::CommentCreate(CommentCreate {
                id: CommentId::new(),
                ticket_id: pick(i),
                body: "note".into(),
                internal,
            }),
        });
    }
    let mut tx = s.write().await.unwrap();
    for intent in &intents {
        store::enqueue(&mut tx, &scope, intent, now).await.unwrap();
    }
    tx.commit().await.unwrap();

    store::replay(s, &scope, &[], now).await.unwrap();

    let mut comments = std::collections::BTreeSet::new();
    for intent in &intents {
        server_applies(role, &mut model, &mut comments, intent);
    }
    let rows = sqlx::query_as::<
        _,
        (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
        ),
    >(
        "select id, title, description, priority, status, hold_reason, requester_id from tickets
          where deleted_at is null",
    )
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let local: std::collections::BTreeMap<TicketId, Fields> = rows
        .into_iter()
        .map(
            |(id, title, description, priority, status, hold_reason, requester)| {
                (
                    id.parse().unwrap(),
                    Fields {
                        title,
                        description,
                        priority: priority.parse().unwrap(),
                        status: status.parse().unwrap(),
                        hold_reason,
                        requester_mine: requester == scope.user.id.to_string(),
                    },
                )
            },
        )
        .collect();
    prop_assert_eq!(
        &local,
        &model,
        "tickets: local replay vs the server applying them"
    );
    let local_comments: std::collections::BTreeSet<CommentId> =
        sqlx::query_scalar::<_, String>("select id from comments")
            .fetch_all(&s.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.parse().unwrap())
            .collect();
    prop_assert_eq!(
        local_comments,
        comments,
        "comments: same set as the server's"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// For random server states and pending intents, the local view after replay is what the
    /// server will hold once it applies them.
    #[test]
    fn replaying_pending_intents_over_pulled_state_matches_the_server(
        role in role(),
        initial in server_state(),
        steps in proptest::collection::vec(step(), 0..12),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(replay_matches_the_server(role, initial, steps))?;
    }
}
