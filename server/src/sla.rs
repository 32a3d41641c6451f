//! SLAs on the server: a tenant's calendars and policies, each ticket's history read from the
//! tables, and the derived `ticket_sla` rows behind the queue's `sla_state` filter, its
//! `sla_due` sort and the [monitor](crate::monitor).
//!
//! The clock is `tallydesk_shared::sla`, the same one the desktop runs; `now` is a parameter.
//! A derived row keeps only what time alone does not change (the state apart from at risk and
//! breached, and the instants at which those begin), so it stays true until the ticket's SLA
//! inputs change, and [`refresh`] runs in the transaction of every such change.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::SlaTarget;
use tallydesk_shared::sla::{
    self, Calendar, CalendarInput, CalendarRecord, Event, Policy, PolicyInput, SlaState, Target,
    TicketSla,
};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{CustomerId, Role, SlaPolicyId, Status, TenantId, TicketId, UserId};
use uuid::Uuid;

use crate::activity::{self, NewActivity};

type Tx = Transaction<'static, Postgres>;

/// Writers NOTIFY this (payload: the tenant) when a ticket's next SLA event may have come
/// closer, so that sleeping monitors look again.
pub const DEADLINES_CHANNEL: &str = "tallydesk_sla_deadlines";

/// The monitor NOTIFYs this once per recorded event, with
/// `{"tenant_id", "ticket_id", "target", "kind", "at", "requester_id"}`, for clients to be
/// pushed ([`crate::events`]).
pub const EVENTS_CHANNEL: &str = "tallydesk_sla";

/// The SLA monitor as a user (the migration makes it): the actor of `sla.*` activity entries.
pub const MONITOR_USER: UserId =
    UserId::from_uuid(uuid::uuid!("00000000-0000-7000-8000-000000000001"));

/// SLA settings (calendars, policies) are staff's: requesters see only their own tickets' SLA.
pub(crate) fn may_view_settings(role: Role) -> bool {
    role != Role::Requester
}

// ---- Calendars and policies -------------------------------------------------------------------

/// The tenant's calendars by name, or the one with id `only`.
pub async fn calendars(
    tx: &mut Tx,
    tenant: TenantId,
    only: Option<Uuid>,
) -> anyhow::Result<Vec<CalendarRecord>> {
    let rows = sqlx::query!(
        "select id, name, time_zone, weekly, holidays, version from calendars
          where tenant_id = $1 and ($2::uuid is null or id = $2)
          order by lower(name), id",
        tenant.as_uuid(),
        only,
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(CalendarRecord {
                id: r.id.into(),
                calendar: CalendarInput {
                    name: r.name,
                    time_zone: r.time_zone,
                    weekly: serde_json::from_value(r.weekly)
                        .with_context(|| format!("calendar {} has bad weekly hours", r.id))?,
                    holidays: r.holidays.iter().map(date_text).collect(),
                },
                version: r.version,
            })
        })
        .collect()
}

fn date_text(date: &NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The holidays of a parsed calendar input, as dates.
pub fn holiday_dates(input: &CalendarInput) -> Vec<NaiveDate> {
    input
        .holidays
        .iter()
        .filter_map(|h| NaiveDate::parse_from_str(h, "%Y-%m-%d").ok())
        .collect()
}

/// The tenant's policies in the order they are tried, or the one with id `only`.
pub async fn policies(
    tx: &mut Tx,
    tenant: TenantId,
    only: Option<Uuid>,
) -> anyhow::Result<Vec<Policy>> {
    let rows = sqlx::query!(
        "select id, name, position, active, priorities, categories, customer_ids,
                first_response_minutes, next_response_minutes, resolution_minutes,
                business_hours, calendar_id, warn_minutes, version
           from sla_policies where tenant_id = $1 and ($2::uuid is null or id = $2)
          order by position, created_at, id",
        tenant.as_uuid(),
        only,
    )
    .fetch_all(&mut **tx)
    .await?;
    let minutes = |m: Option<i32>| m.and_then(|m| u32::try_from(m).ok());
    rows.into_iter()
        .map(|r| {
            let priorities = r
                .priorities
                .map(|ps| ps.iter().map(|p| p.parse::<Priority>()).collect())
                .transpose()
                .with_context(|| format!("policy {} has a bad priority", r.id))?;
            Ok(Policy {
                id: r.id.into(),
                policy: PolicyInput {
                    name: r.name,
                    position: u32::try_from(r.position).unwrap_or(u32::MAX),
                    active: r.active,
                    priorities,
                    categories: r.categories,
                    customer_ids: r
                        .customer_ids
                        .map(|ids| ids.into_iter().map(CustomerId::from).collect()),
                    first_response_minutes: minutes(r.first_response_minutes),
                    next_response_minutes: minutes(r.next_response_minutes),
                    resolution_minutes: minutes(r.resolution_minutes),
                    business_hours: r.business_hours,
                    calendar_id: r.calendar_id.map(Into::into),
                    warn_minutes: minutes(r.warn_minutes),
                },
                version: r.version,
            })
        })
        .collect()
}

/// The active policies in order, each with its calendar parsed.
async fn in_force(
    tx: &mut Tx,
    tenant: TenantId,
) -> anyhow::Result<Vec<(Policy, Option<Calendar>)>> {
    let policies = policies(tx, tenant, None).await?;
    if !policies.iter().any(|p| p.policy.active) {
        return Ok(Vec::new());
    }
    let calendars: HashMap<_, Calendar> = calendars(tx, tenant, None)
        .await?
        .into_iter()
        .map(|c| {
            let parsed = c
                .calendar
                .parse()
                .with_context(|| format!("calendar {} is not valid", c.id))?;
            Ok((c.id, parsed))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(sla::in_force(policies, &calendars))
}

// ---- Histories --------------------------------------------------------------------------------

/// The facts of a ticket its SLA depends on.
struct Clocked {
    id: TicketId,
    priority: Priority,
    category: String,
    customer: Option<CustomerId>,
    history: Vec<(DateTime<Utc>, Event)>,
}

impl Clocked {
    fn sla(
        &self,
        policies: &[(Policy, Option<Calendar>)],
        now: DateTime<Utc>,
    ) -> Option<TicketSla> {
        sla::ticket_sla(
            policies,
            self.priority,
            &self.category,
            self.customer,
            &self.history,
            now,
        )
    }
}

/// The tickets `ids` with their histories: creation, status changes from the audit trail, and
/// public comments (the requester's are requester replies, an agent's or admin's agent replies).
async fn clocked(tx: &mut Tx, tenant: TenantId, ids: &[Uuid]) -> anyhow::Result<Vec<Clocked>> {
    let tickets = sqlx::query!(
        "select id, priority, category, customer_id, created_at from tickets
          where tenant_id = $1 and id = any($2)",
        tenant.as_uuid(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    let events = sqlx::query!(
        r#"select a.ticket_id as "ticket_id!", a.at as "at!", a.after ->> 'status' as status,
                  null::text as reply
             from activity a
            where a.tenant_id = $1 and a.ticket_id = any($2) and a.field = 'status'
           union all
           select c.ticket_id, c.created_at, null,
                  case when c.author_id = t.requester_id then 'requester'
                       when m.role in ('agent', 'admin') then 'agent' end
             from comments c
             join tickets t on t.id = c.ticket_id
             left join memberships m on m.tenant_id = c.tenant_id and m.user_id = c.author_id
            where c.tenant_id = $1 and c.ticket_id = any($2) and not c.internal
            order by 2"#,
        tenant.as_uuid(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut histories: HashMap<Uuid, Vec<(DateTime<Utc>, Event)>> = HashMap::new();
    for e in events {
        let event = match (e.status.as_deref(), e.reply.as_deref()) {
            (Some(status), _) => Event::Status(
                status
                    .parse::<Status>()
                    .with_context(|| format!("ticket {} has a bad status change", e.ticket_id))?,
            ),
            (None, Some("requester")) => Event::RequesterReply,
            (None, Some("agent")) => Event::AgentReply,
            _ => continue,
        };
        histories
            .entry(e.ticket_id)
            .or_default()
            .push((e.at, event));
    }
    tickets
        .into_iter()
        .map(|t| {
            let mut history = vec![(t.created_at, Event::Created)];
            history.extend(histories.remove(&t.id).unwrap_or_default());
            Ok(Clocked {
                id: t.id.into(),
                priority: t
                    .priority
                    .parse()
                    .with_context(|| format!("ticket {} has a bad priority", t.id))?,
                category: t.category,
                customer: t.customer_id.map(Into::into),
                history,
            })
        })
        .collect()
}

/// Each of `ids`' SLA targets at `now`; tickets no active policy applies to are absent.
pub async fn current(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[TicketId],
    now: DateTime<Utc>,
) -> anyhow::Result<HashMap<TicketId, Vec<SlaTarget>>> {
    let policies = in_force(tx, tenant).await?;
    if policies.is_empty() || ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = ids.iter().map(TicketId::as_uuid).collect();
    Ok(clocked(tx, tenant, &ids)
        .await?
        .iter()
        .filter_map(|t| {
            let sla = t.sla(&policies, now)?;
            Some((t.id, sla.targets.iter().map(SlaTarget::from).collect()))
        })
        .collect())
}

// ---- Derived rows and events ------------------------------------------------------------------

/// An SLA event: a target at risk, or breached.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AtRisk,
    Breached,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AtRisk => "at_risk",
            Kind::Breached => "breached",
        }
    }

    fn action(self) -> ActivityAction {
        match self {
            Kind::AtRisk => ActivityAction::SlaAtRisk,
            Kind::Breached => ActivityAction::SlaBreached,
        }
    }
}

/// An event the monitor recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub tenant: TenantId,
    pub ticket: TicketId,
    pub target: Target,
    pub kind: Kind,
    pub at: DateTime<Utc>,
}

/// What `ticket_sla` keeps of a ticket's SLA.
struct Derived {
    policy_id: SlaPolicyId,
    idle_state: &'static str,
    at_risk_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    breached_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    /// Events that have happened by `now`.
    happened: Vec<(Target, Kind, DateTime<Utc>)>,
    /// The earliest event still ahead.
    next_event_at: Option<DateTime<Utc>>,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn derive(sla: &TicketSla, now: DateTime<Utc>) -> Derived {
    let mut d = Derived {
        policy_id: sla.policy_id,
        idle_state: "met",
        at_risk_at: None,
        due_at: None,
        breached_at: None,
        deadline: None,
        happened: Vec::new(),
        next_event_at: None,
    };
    for t in &sla.targets {
        match t.state {
            SlaState::Running => {
                d.idle_state = "running";
                d.at_risk_at = earliest(d.at_risk_at, t.next_change_at);
                d.due_at = earliest(d.due_at, t.due_at);
            }
            SlaState::AtRisk => {
                d.idle_state = "running";
                d.at_risk_at = earliest(d.at_risk_at, Some(t.at_risk_at.unwrap_or(now)));
                d.due_at = earliest(d.due_at, t.due_at);
            }
            SlaState::Paused if d.idle_state == "met" => d.idle_state = "paused",
            _ => {}
        }
        d.breached_at = earliest(d.breached_at, t.breached_at);
        if t.met_at.is_none() {
            d.deadline = earliest(d.deadline, t.breached_at.or(t.due_at));
        }
        // Like the desktop: an at-risk moment counts unless the target was met without a breach.
        if let Some(at) = t.at_risk_at.filter(|at| *at <= now)
            && (t.met_at.is_none() || t.breached_at.is_some())
        {
            d.happened.push((t.target, Kind::AtRisk, at));
        }
        if let Some(at) = t.breached_at.filter(|at| *at <= now) {
            d.happened.push((t.target, Kind::Breached, at));
        }
        d.next_event_at = earliest(d.next_event_at, t.next_change_at);
    }
    d
}

/// What [`refresh`] does with events that have happened and are not recorded yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Leave them to the monitor: the row becomes due at once.
    Schedule,
    /// Record them now (the monitor, in its tenant-scoped transaction).
    Record,
}

/// Derives `ticket_sla` again from history at `now`: for `only` those tickets, or for every
/// ticket of the tenant that is not closed. Returns the events recorded (with
/// [`Pending::Record`]).
///
/// The tickets are locked first (as writers do), and the policies read after, so a concurrent
/// policy change and a ticket change serialise and the later one derives from both.
#[tracing::instrument(skip_all, err)]
pub async fn refresh(
    tx: &mut Tx,
    tenant: TenantId,
    only: Option<&[TicketId]>,
    now: DateTime<Utc>,
    pending: Pending,
) -> anyhow::Result<Vec<Recorded>> {
    let only: Option<Vec<Uuid>> = only.map(|ids| ids.iter().map(TicketId::as_uuid).collect());
    let ids: Vec<Uuid> = sqlx::query_scalar!(
        "select id from tickets
          where tenant_id = $1 and case when $2::uuid[] is null then status <> 'closed'
                                        else id = any($2) end
          order by id for no key update",
        tenant.as_uuid(),
        only.as_deref(),
    )
    .fetch_all(&mut **tx)
    .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let policies = in_force(tx, tenant).await?;
    let tickets = if policies.is_empty() {
        Vec::new()
    } else {
        clocked(tx, tenant, &ids).await?
    };
    let seen: HashSet<(Uuid, String, String)> = sqlx::query!(
        "select ticket_id, target, kind from sla_events where tenant_id = $1 and ticket_id = any($2)",
        tenant.as_uuid(),
        &ids,
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.ticket_id, r.target, r.kind))
    .collect();

    let mut rows = Rows::default();
    let mut recorded = Vec::new();
    for ticket in &tickets {
        let Some(sla) = ticket.sla(&policies, now) else {
            continue;
        };
        let d = derive(&sla, now);
        let mut next = d.next_event_at;
        for (target, kind, at) in d.happened.iter().copied() {
            let key = (
                ticket.id.as_uuid(),
                target.as_str().to_owned(),
                kind.as_str().to_owned(),
            );
            if seen.contains(&key) {
                continue;
            }
            match pending {
                Pending::Schedule => next = earliest(next, Some(at)),
                Pending::Record => {
                    let event = Recorded {
                        tenant,
                        ticket: ticket.id,
                        target,
                        kind,
                        at,
                    };
                    if record(tx, &event, &sla, now).await? {
                        recorded.push(event);
                    }
                }
            }
        }
        rows.push(ticket.id, &d, next);
    }
    sqlx::query!(
        "delete from ticket_sla where tenant_id = $1 and ticket_id = any($2)
            and not ticket_id = any($3)",
        tenant.as_uuid(),
        &ids,
        &rows.ticket_id,
    )
    .execute(&mut **tx)
    .await?;
    let soonest = rows.next_change_at.iter().flatten().min().copied();
    sqlx::query!(
        "insert into ticket_sla (ticket_id, tenant_id, policy_id, idle_state, at_risk_at, due_at,
                                 breached_at, deadline, next_change_at, computed_at)
         select u.ticket_id, $1, u.policy_id, u.idle_state, u.at_risk_at, u.due_at,
                u.breached_at, u.deadline, u.next_change_at, $2
           from unnest($3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                       $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
             as u(ticket_id, policy_id, idle_state, at_risk_at, due_at, breached_at, deadline,
                  next_change_at)
         on conflict (ticket_id) do update
            set policy_id = excluded.policy_id, idle_state = excluded.idle_state,
                at_risk_at = excluded.at_risk_at, due_at = excluded.due_at,
                breached_at = excluded.breached_at, deadline = excluded.deadline,
                next_change_at = excluded.next_change_at, computed_at = excluded.computed_at",
        tenant.as_uuid(),
        now,
        &rows.ticket_id,
        &rows.policy_id,
        &rows.idle_state,
        &rows.at_risk_at as &[Option<DateTime<Utc>>],
        &rows.due_at as &[Option<DateTime<Utc>>],
        &rows.breached_at as &[Option<DateTime<Utc>>],
        &rows.deadline as &[Option<DateTime<Utc>>],
        &rows.next_change_at as &[Option<DateTime<Utc>>],
    )
    .execute(&mut **tx)
    .await?;
    if pending == Pending::Schedule && soonest.is_some() {
        sqlx::query!(
            "select pg_notify($1, $2)",
            DEADLINES_CHANNEL,
            tenant.to_string()
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(recorded)
}

/// Derived rows, column by column, for one `unnest` insert.
#[derive(Default)]
struct Rows {
    ticket_id: Vec<Uuid>,
    policy_id: Vec<Uuid>,
    idle_state: Vec<String>,
    at_risk_at: Vec<Option<DateTime<Utc>>>,
    due_at: Vec<Option<DateTime<Utc>>>,
    breached_at: Vec<Option<DateTime<Utc>>>,
    deadline: Vec<Option<DateTime<Utc>>>,
    next_change_at: Vec<Option<DateTime<Utc>>>,
}

impl Rows {
    fn push(&mut self, ticket: TicketId, d: &Derived, next_change_at: Option<DateTime<Utc>>) {
        self.ticket_id.push(ticket.as_uuid());
        self.policy_id.push(d.policy_id.as_uuid());
        self.idle_state.push(d.idle_state.to_owned());
        self.at_risk_at.push(d.at_risk_at);
        self.due_at.push(d.due_at);
        self.breached_at.push(d.breached_at);
        self.deadline.push(d.deadline);
        self.next_change_at.push(next_change_at);
    }
}

/// Records one event unless it already is: the `sla_events` row, the activity entry and the
/// NOTIFY, all in the caller's transaction. Returns whether it was new.
async fn record(
    tx: &mut Tx,
    event: &Recorded,
    sla: &TicketSla,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let new = sqlx::query!(
        "insert into sla_events (tenant_id, ticket_id, target, kind, policy_id, at, recorded_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict on constraint sla_events_once do nothing",
        event.tenant.as_uuid(),
        event.ticket.as_uuid(),
        event.target.as_str(),
        event.kind.as_str(),
        sla.policy_id.as_uuid(),
        event.at,
        now,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !new {
        return Ok(false);
    }
    let due_at = sla
        .targets
        .iter()
        .find(|t| t.target == event.target)
        .and_then(|t| t.due_at);
    activity::record(
        tx,
        event.tenant,
        MONITOR_USER,
        event.at,
        NewActivity::ticket(event.kind.action(), event.ticket).after(json!({
            "target": event.target,
            "at": event.at,
            "due_at": due_at,
            "policy_id": sla.policy_id,
            "policy_name": sla.policy_name,
        })),
    )
    .await?;
    let payload = json!({
        "tenant_id": event.tenant,
        "ticket_id": event.ticket,
        "target": event.target,
        "kind": event.kind.as_str(),
        "at": event.at,
    });
    // With the ticket's requester, so that streams tell requesters of their own tickets only
    // without a query per client (crate::events strips it before sending).
    sqlx::query!(
        "select pg_notify($1, ($2::jsonb || jsonb_build_object('requester_id', requester_id))::text)
           from tickets where id = $3",
        EVENTS_CHANNEL,
        payload,
        event.ticket.as_uuid(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
