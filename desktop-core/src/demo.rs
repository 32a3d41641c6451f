//! Demo data for a first start: marked (`demo = 1`) and removable in one step.

use chrono::Duration;
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::demo::{CUSTOMERS, PEOPLE, TICKETS};
use tallydesk_shared::sla::{CalendarInput, PolicyInput};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{CommentId, CustomerId, Status, TicketId, UserId};

use crate::desk::{Desk, record};
use crate::error::DeskResult;
use crate::time::to_micros;

pub async fn seed(desk: &Desk) -> DeskResult<()> {
    let now = desk.now();
    let start = now - Duration::days(30);
    let mut tx = desk.store().write().await?;
    let mut people = Vec::new();
    // The demo admin is the user themself; the others are colleagues.
    for (login, name, role) in &PEOPLE[1..] {
        let id = UserId::new();
        sqlx::query(
            "insert into users (id, name, email, role, demo, updated_at) values (?, ?, ?, ?, 1, ?)",
        )
        .bind(id)
        .bind(*name)
        .bind(format!("{login}@demo.tallydesk.invalid"))
        .bind(role.as_str())
        .bind(to_micros(start))
        .execute(&mut *tx)
        .await?;
        people.push((id, *role));
    }
    let agents: Vec<UserId> = [desk.me().id]
        .into_iter()
        .chain(
            people
                .iter()
                .filter(|(_, r)| r.works_tickets())
                .map(|(id, _)| *id),
        )
        .collect();
    let requesters: Vec<UserId> = people
        .iter()
        .filter(|(_, r)| *r == tallydesk_shared::Role::Requester)
        .map(|(id, _)| *id)
        .collect();
    let mut customers = Vec::new();
    for (name, email, company) in CUSTOMERS {
        let id = CustomerId::new();
        sqlx::query(
            "insert into customers (id, name, email, company, demo, created_at, updated_at) values (?, ?, ?, ?, 1, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(email)
        .bind(company)
        .bind(to_micros(start))
        .bind(to_micros(start))
        .execute(&mut *tx)
        .await?;
        customers.push(id);
    }
    let first_number: i64 = sqlx::query_scalar("select coalesce(max(number), 0) + 1 from tickets")
        .fetch_one(&mut *tx)
        .await?;
    for (i, (title, description, category, priority, status, reply, note)) in
        TICKETS.into_iter().enumerate()
    {
        let id = TicketId::new();
        let created = start + Duration::hours(40 * i as i64 + 3);
        let touched = created + Duration::hours(5);
        let agent = agents[i % agents.len()];
        let assignee = (status != Status::Open || i % 3 == 0).then_some(agent);
        let customer = (i % 2 == 0).then(|| customers[i % customers.len()]);
        let resolved = matches!(status, Status::Resolved | Status::Closed).then_some(touched);
        let closed = (status == Status::Closed).then_some(touched + Duration::hours(1));
        sqlx::query(
            "insert into tickets (id, number, title, description, status, priority, category, requester_id,
                                  assignee_id, customer_id, hold_reason, demo, created_at, updated_at,
                                  first_responded_at, resolved_at, closed_at)
             values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(first_number + i as i64)
        .bind(title)
        .bind(description)
        .bind(status.as_str())
        .bind(priority)
        .bind(category)
        .bind(requesters[i % requesters.len()])
        .bind(assignee)
        .bind(customer)
        .bind((status == Status::OnHold).then_some("Waiting for a reply from the customer"))
        .bind(to_micros(created))
        .bind(to_micros(closed.unwrap_or(touched)))
        .bind(reply.map(|_| to_micros(created + Duration::hours(2))))
        .bind(resolved.map(to_micros))
        .bind(closed.map(to_micros))
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            Some(id),
            agent,
            ActivityAction::TicketCreated,
            None,
            None,
            Some(json!({ "title": title })),
            false,
            created,
        )
        .await?;
        let mut at = created + Duration::hours(1);
        for (body, internal) in [(note, true), (reply, false)] {
            let Some(body) = body else { continue };
            sqlx::query(
                "insert into comments (id, ticket_id, author_id, body, internal, demo, created_at) values (?, ?, ?, ?, ?, 1, ?)",
            )
            .bind(CommentId::new())
            .bind(id)
            .bind(agent)
            .bind(body)
            .bind(internal)
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?;
            at += Duration::hours(1);
        }
    }
    sqlx::query(
        "update activity set demo = 1 where ticket_id in (select id from tickets where demo = 1)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    seed_sla(desk).await
}

/// Two policies: urgent tickets on the clock, the rest in office hours.
async fn seed_sla(desk: &Desk) -> DeskResult<()> {
    let office = desk
        .save_calendar(
            None,
            &CalendarInput {
                name: "Office hours".into(),
                time_zone: "UTC".into(),
                weekly: crate::sla::office_hours(),
                holidays: Vec::new(),
            },
            None,
        )
        .await?;
    let urgent = PolicyInput {
        name: "Urgent".into(),
        position: 0,
        active: true,
        priorities: Some(vec![Priority::Urgent]),
        first_response_minutes: Some(30),
        resolution_minutes: Some(240),
        ..Default::default()
    };
    let standard = PolicyInput {
        name: "Standard".into(),
        position: 1,
        active: true,
        first_response_minutes: Some(240),
        next_response_minutes: Some(480),
        resolution_minutes: Some(2400),
        business_hours: true,
        calendar_id: Some(office.id),
        ..Default::default()
    };
    for policy in [urgent, standard] {
        desk.save_sla_policy(None, &policy, None).await?;
    }
    sqlx::query("update sla_policies set demo = 1")
        .execute(&desk.store().pool)
        .await?;
    sqlx::query("update calendars set demo = 1")
        .execute(&desk.store().pool)
        .await?;
    Ok(())
}
