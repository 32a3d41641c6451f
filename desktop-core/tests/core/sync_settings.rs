//! SLA settings while signed in: they are the server's. An admin's change goes to the server
//! and comes back in the pull; a colleague's desktop then computes deadlines with it; the
//! local workspace's own settings stay apart and apply again in local mode.

use sqlx::PgPool;
use tallydesk_desktop_core::ErrorCode;
use tallydesk_desktop_core::sla::office_hours;
use tallydesk_desktop_core::sync::settings;
use tallydesk_shared::sla::{CalendarInput, PolicyInput};
use tallydesk_shared::ticket::Priority;

use crate::sync_server::ana_and_bob;

fn urgent_policy(calendar: Option<tallydesk_shared::CalendarId>) -> PolicyInput {
    PolicyInput {
        name: "Urgent within the hour".into(),
        active: true,
        priorities: Some(vec![Priority::Urgent]),
        first_response_minutes: Some(60),
        resolution_minutes: Some(480),
        business_hours: calendar.is_some(),
        calendar_id: calendar,
        ..Default::default()
    }
}

#[sqlx::test(migrator = "tallydesk_server::db::MIGRATOR")]
async fn an_admins_sla_change_reaches_the_server_and_every_desktop(pool: PgPool) {
    let (_running, ana, bob) = ana_and_bob(pool).await;
    // Bob's workspace had a rule of its own from before he signed in: everything within
    // five minutes, tried first.
    let local_rule = tallydesk_shared::SlaPolicyId::new();
    sqlx::query(
        "insert into sla_policies (id, name, position, active, first_response_minutes,
                                   created_at, updated_at)
         values (?, 'Everything in five minutes', 0, 1, 5, 0, 0)",
    )
    .bind(local_rule.to_string())
    .execute(&bob.fixture.desk.store().pool)
    .await
    .unwrap();
    ana.sync().await;
    bob.sync().await;

    let calendar = settings::save_calendar(
        &ana.fixture.desk,
        Ok(ana.replica.clone()),
        None,
        &CalendarInput {
            name: "Paris office".into(),
            time_zone: "Europe/Paris".into(),
            weekly: office_hours(),
            holidays: vec!["2026-12-25".into()],
        },
        None,
    )
    .await
    .expect("an admin saves a calendar on the server");
    let policy = settings::save_sla_policy(
        &ana.fixture.desk,
        Ok(ana.replica.clone()),
        None,
        &urgent_policy(Some(calendar.id)),
        None,
    )
    .await
    .expect("and a policy using it");

    // Ana's desktop shows the server's records (pulled at once), with the server's versions.
    assert_eq!(
        ana.fixture.desk.sla_policies().await.unwrap(),
        vec![policy.clone()]
    );
    assert_eq!(
        ana.fixture.desk.calendars().await.unwrap(),
        vec![calendar.clone()]
    );

    // Bob's desktop gets them with its next sync, and a new urgent ticket is timed by them,
    // not by his local rule.
    bob.sync().await;
    assert_eq!(
        bob.fixture.desk.sla_policies().await.unwrap(),
        vec![policy.clone()],
        "only the server's policies apply while signed in"
    );
    assert_eq!(
        bob.fixture.desk.calendars().await.unwrap(),
        vec![calendar.clone()]
    );
    let ticket = bob
        .fixture
        .desk
        .create_ticket(&tallydesk_shared::api::CreateTicket {
            title: "Server room is hot".into(),
            priority: Some(Priority::Urgent),
            ..Default::default()
        })
        .await
        .unwrap();
    let sla = bob
        .fixture
        .desk
        .ticket_sla(ticket.id)
        .await
        .unwrap()
        .expect("the server's policy applies to an urgent ticket");
    assert_eq!(sla.policy_id, policy.id);

    // A change at a stale version is refused by the server and changes nothing.
    let stale = settings::save_sla_policy(
        &bob.fixture.desk,
        Ok(bob.replica.clone()),
        Some(policy.id),
        &urgent_policy(None),
        Some(policy.version),
    )
    .await
    .expect_err("bob is an agent");
    assert_eq!(stale.code, ErrorCode::Forbidden, "{stale:?}");
    let renamed = PolicyInput {
        name: "Urgent, faster".into(),
        first_response_minutes: Some(30),
        ..urgent_policy(Some(calendar.id))
    };
    let changed = settings::save_sla_policy(
        &ana.fixture.desk,
        Ok(ana.replica.clone()),
        Some(policy.id),
        &renamed,
        Some(policy.version),
    )
    .await
    .unwrap();
    assert_eq!(changed.version, policy.version + 1);
    let again = settings::save_sla_policy(
        &ana.fixture.desk,
        Ok(ana.replica.clone()),
        Some(policy.id),
        &urgent_policy(Some(calendar.id)),
        Some(policy.version),
    )
    .await
    .expect_err("a stale version is refused");
    assert_eq!(again.code, ErrorCode::StaleVersion, "{again:?}");

    // The desk itself refuses to change the server's settings behind its back.
    let direct = ana
        .fixture
        .desk
        .save_sla_policy(None, &urgent_policy(None), None)
        .await
        .expect_err("signed in, settings change on the server");
    assert_eq!(direct.code, ErrorCode::Forbidden);

    // Deleting goes the same way, and the deletion reaches bob.
    settings::delete_sla_policy(&ana.fixture.desk, Ok(ana.replica.clone()), policy.id)
        .await
        .unwrap();
    bob.sync().await;
    assert_eq!(bob.fixture.desk.sla_policies().await.unwrap(), vec![]);
    assert_eq!(ana.fixture.desk.sla_policies().await.unwrap(), vec![]);
}
