//! `seed-demo`: a demo tenant with realistic customers, tickets in every state, comments and
//! internal notes. `serve` never seeds by itself.

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::demo::{CUSTOMERS, PEOPLE, TICKETS};
use tallydesk_shared::ticket::{Email, TenantName};
use tallydesk_shared::{CommentId, CustomerId, InvitationId, Status, TenantId, TicketId, UserId};

use crate::activity::{self, NewActivity};
use crate::config::{Config, Database};

/// Demo people come from this pseudo-issuer: no token can ever be issued for them.
pub const DEMO_ISSUER: &str = "urn:tallydesk:demo";
pub const DEMO_TENANT: &str = "Tallydesk Demo";

/// What `seed-demo` made, or found already made.
#[derive(Debug)]
pub struct Seeded {
    pub tenant: TenantId,
    pub created: bool,
    pub tickets: usize,
}

pub async fn run(config: &Config, admin_email: Option<&str>) -> anyhow::Result<()> {
    let admin_email = admin_email
        .map(Email::parse)
        .transpose()
        .context("--admin-email")?;
    let database = Database::open(config).await?;
    let seeded = demo(&database.app, Utc::now(), admin_email.as_ref()).await;
    database.close_leaving_others().await?;
    let seeded = seeded?;
    if seeded.created {
        println!(
            "Seeded tenant \"{DEMO_TENANT}\" ({}) with {} tickets.",
            seeded.tenant, seeded.tickets
        );
    } else {
        println!(
            "Tenant \"{DEMO_TENANT}\" ({}) already has its demo data; nothing changed.",
            seeded.tenant
        );
    }
    if let Some(email) = admin_email {
        println!("{email} is invited as its admin: sign in with that verified email to see it.");
    }
    Ok(())
}

/// Seeds the demo tenant once; running it again changes nothing.
pub async fn demo(
    pool: &PgPool,
    now: DateTime<Utc>,
    admin_email: Option<&Email>,
) -> anyhow::Result<Seeded> {
    let mut tx = pool.begin().await?;
    let mut people = Vec::new();
    for (subject, name, role) in PEOPLE {
        let id = sqlx::query_scalar!(
            "insert into users (id, issuer, subject, email, email_verified, name, created_at)
             values ($1, $2, $3, $4, false, $5, $6)
             on conflict (issuer, subject) do update set name = excluded.name
             returning id",
            UserId::new().as_uuid(),
            DEMO_ISSUER,
            subject,
            format!("{subject}@demo.tallydesk.invalid"),
            name,
            now,
        )
        .fetch_one(&mut *tx)
        .await?;
        people.push((UserId::from_uuid(id), role));
    }
    let admin = people[0].0;
    crate::db::set_scope(&mut tx, admin, None).await?;
    let existing = sqlx::query_scalar!(
        "select m.tenant_id from memberships m join tenants t on t.id = m.tenant_id
          where m.user_id = $1 and t.name = $2",
        admin.as_uuid(),
        DEMO_TENANT
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(tenant) = existing {
        let tenant = TenantId::from_uuid(tenant);
        invite_admin(&mut tx, admin, tenant, admin_email, now).await?;
        tx.commit().await?;
        return Ok(Seeded {
            tenant,
            created: false,
            tickets: 0,
        });
    }

    let tenant = TenantId::new();
    let start = now - Duration::days(30);
    crate::auth::create_tenant(
        &mut tx,
        admin,
        tenant,
        &TenantName::parse(DEMO_TENANT)?,
        start,
    )
    .await?;
    for (user, role) in &people[1..] {
        sqlx::query!(
            "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4)",
            tenant.as_uuid(),
            user.as_uuid(),
            role.as_str(),
            start
        )
        .execute(&mut *tx)
        .await?;
    }
    let mut customers = Vec::new();
    for (name, email, company) in CUSTOMERS {
        let id = CustomerId::new();
        sqlx::query!(
            "insert into customers (id, tenant_id, name, email, company, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $6)",
            id.as_uuid(),
            tenant.as_uuid(),
            name,
            email,
            company,
            start
        )
        .execute(&mut *tx)
        .await?;
        customers.push(id);
    }
    let agents = [people[1].0, people[2].0];
    let requesters = [people[4].0, people[5].0, people[6].0];
    for (i, (title, description, category, priority, status, reply, note)) in
        TICKETS.into_iter().enumerate()
    {
        let created = start + Duration::hours(40 * i as i64 + 3);
        let ticket = TicketId::new();
        let requester = requesters[i % requesters.len()];
        let agent = agents[i % agents.len()];
        let assignee = (status != Status::Open || i % 3 == 0).then_some(agent);
        let customer = (i % 2 == 0).then(|| customers[i % customers.len()]);
        let number = sqlx::query_scalar!(
            "update tenant_counters set last_ticket_number = last_ticket_number + 1
              where tenant_id = $1 returning last_ticket_number",
            tenant.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        let touched = created + Duration::hours(5);
        let resolved_at = matches!(status, Status::Resolved | Status::Closed).then_some(touched);
        let closed_at = (status == Status::Closed).then_some(touched + Duration::hours(1));
        let hold_reason =
            (status == Status::OnHold).then_some("Waiting for a reply from the customer");
        let first_response = reply.map(|_| created + Duration::hours(2));
        sqlx::query!(
            "insert into tickets (id, tenant_id, number, title, description, status, priority, category,
                                  requester_id, assignee_id, customer_id, hold_reason, created_at, updated_at,
                                  first_responded_at, resolved_at, closed_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            ticket.as_uuid(),
            tenant.as_uuid(),
            number,
            title,
            description,
            status.as_str(),
            priority,
            category,
            requester.as_uuid(),
            assignee.map(|a| a.as_uuid()),
            customer.map(|c| c.as_uuid()),
            hold_reason,
            created,
            closed_at.unwrap_or(touched),
            first_response,
            resolved_at,
            closed_at,
        )
        .execute(&mut *tx)
        .await?;
        activity::record(
            &mut tx,
            tenant,
            requester,
            created,
            NewActivity::ticket(ActivityAction::TicketCreated, ticket).after(
                json!({ "number": number, "title": title, "status": "open", "priority": priority }),
            ),
        )
        .await?;
        let mut at = created + Duration::hours(1);
        for (body, internal, author) in [(note, true, agent), (reply, false, agent)] {
            if let Some(body) = body {
                add_comment(&mut tx, tenant, ticket, author, body, internal, at).await?;
                at += Duration::hours(1);
            }
        }
        if status != Status::Open {
            activity::record(
                &mut tx,
                tenant,
                agent,
                touched,
                NewActivity::ticket(ActivityAction::TicketTransitioned, ticket)
                    .field("status")
                    .before(json!({ "status": "open" }))
                    .after(json!({ "status": status })),
            )
            .await?;
        }
    }
    invite_admin(&mut tx, admin, tenant, admin_email, now).await?;
    tx.commit().await?;
    Ok(Seeded {
        tenant,
        created: true,
        tickets: TICKETS.len(),
    })
}

async fn add_comment(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    ticket: TicketId,
    author: UserId,
    body: &str,
    internal: bool,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = CommentId::new();
    sqlx::query!(
        "insert into comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        id.as_uuid(),
        tenant.as_uuid(),
        ticket.as_uuid(),
        author.as_uuid(),
        body,
        internal,
        at
    )
    .execute(&mut **tx)
    .await?;
    activity::record(
        tx,
        tenant,
        author,
        at,
        NewActivity::ticket(ActivityAction::CommentCreated, ticket)
            .after(json!({ "comment_id": id, "internal": internal }))
            .internal(internal),
    )
    .await?;
    Ok(())
}

async fn invite_admin(
    tx: &mut Transaction<'static, Postgres>,
    admin: UserId,
    tenant: TenantId,
    email: Option<&Email>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(email) = email else { return Ok(()) };
    crate::db::set_scope(tx, admin, Some(tenant)).await?;
    sqlx::query!(
        "insert into invitations (id, tenant_id, email, role, invited_by, created_at)
         values ($1, $2, $3, 'admin', $4, $5)
         on conflict (tenant_id, email) where accepted_at is null do nothing",
        InvitationId::new().as_uuid(),
        tenant.as_uuid(),
        email.as_str(),
        admin.as_uuid(),
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
