//! SLAs on the desktop: policies and calendars in the local store, each ticket's SLA from its
//! history (the clock in `tallydesk-shared`), and the alerts to raise, each exactly once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_shared::sla::{
    self, Calendar, CalendarInput, CalendarRecord, Event, Policy, PolicyInput, SlaState, Target,
    TicketSla, WeeklyHours,
};
use tallydesk_shared::ticket::Priority;
use tallydesk_shared::{Action, CalendarId, CustomerId, SlaPolicyId, Status, TicketId};

use crate::desk::{Desk, parse_text};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::time::{from_micros, to_micros};

/// An SLA event to announce: a target at risk or breached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SlaAlert {
    pub ticket_id: TicketId,
    #[specta(type = specta_typescript::Number)]
    pub number: i64,
    pub title: String,
    pub target: Target,
    /// `AtRisk` or `Breached`.
    pub state: SlaState,
    /// When it happened.
    pub at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
}

impl SlaAlert {
    /// "#42 Printer on fire: first response due in 15 min".
    pub fn message(&self, now: DateTime<Utc>) -> String {
        let target = self.target.label();
        let when = match (self.state, self.due_at) {
            (SlaState::AtRisk, Some(due)) => {
                let minutes = ((due - now).num_seconds().max(0) + 59) / 60;
                format!("due in {}", duration_words(minutes))
            }
            _ => format!(
                "overdue by {}",
                duration_words((now - self.at).num_minutes().max(0))
            ),
        };
        format!("#{} {}: {target} {when}", self.number, self.title)
    }
}

fn duration_words(minutes: i64) -> String {
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 60 * 24 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (60 * 24), m / 60 % 24),
    }
}

/// A ticket that needs attention, for the tray.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SlaAttention {
    pub ticket_id: TicketId,
    #[specta(type = specta_typescript::Number)]
    pub number: i64,
    pub title: String,
    pub target: Target,
    pub state: SlaState,
    pub due_at: Option<DateTime<Utc>>,
}

/// What the SLA watcher needs after a look at every open ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlaWatch {
    /// Events not announced before, at or after `quiet_before`.
    pub alerts: Vec<SlaAlert>,
    /// Events that happened before `quiet_before` (while the app was closed): recorded, not
    /// announced one by one.
    pub missed: u32,
    /// Breached tickets first, then at risk, soonest due first.
    pub attention: Vec<SlaAttention>,
    /// When a ticket's SLA state next changes by itself; the watcher sleeps until then.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// The facts of a ticket the clock needs.
struct Clocked {
    id: TicketId,
    number: i64,
    title: String,
    priority: Priority,
    category: String,
    customer: Option<CustomerId>,
    history: Vec<(DateTime<Utc>, Event)>,
}

/// A row of `calendars`: the week and the holidays are JSON.
#[derive(sqlx::FromRow)]
struct CalendarRow {
    id: CalendarId,
    name: String,
    time_zone: String,
    weekly: String,
    holidays: String,
    version: i64,
}

impl CalendarRow {
    fn into_record(self) -> DeskResult<CalendarRecord> {
        Ok(CalendarRecord {
            id: self.id,
            calendar: CalendarInput {
                name: self.name,
                time_zone: self.time_zone,
                weekly: serde_json::from_str(&self.weekly).map_err(json_err)?,
                holidays: serde_json::from_str(&self.holidays).map_err(json_err)?,
            },
            version: self.version,
        })
    }
}

/// A row of `sla_policies`: the conditions are JSON lists.
#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: SlaPolicyId,
    name: String,
    position: u32,
    active: bool,
    priorities: Option<String>,
    categories: Option<String>,
    customer_ids: Option<String>,
    first_response_minutes: Option<u32>,
    next_response_minutes: Option<u32>,
    resolution_minutes: Option<u32>,
    business_hours: bool,
    calendar_id: Option<CalendarId>,
    warn_minutes: Option<u32>,
    version: i64,
}

impl PolicyRow {
    fn into_policy(self) -> DeskResult<Policy> {
        fn list<T: serde::de::DeserializeOwned>(v: Option<String>) -> DeskResult<Option<T>> {
            v.map(|t| serde_json::from_str(&t).map_err(json_err))
                .transpose()
        }
        Ok(Policy {
            id: self.id,
            policy: PolicyInput {
                name: self.name,
                position: self.position,
                active: self.active,
                priorities: list(self.priorities)?,
                categories: list(self.categories)?,
                customer_ids: list(self.customer_ids)?,
                first_response_minutes: self.first_response_minutes,
                next_response_minutes: self.next_response_minutes,
                resolution_minutes: self.resolution_minutes,
                business_hours: self.business_hours,
                calendar_id: self.calendar_id,
                warn_minutes: self.warn_minutes,
            },
            version: self.version,
        })
    }
}

/// A ticket as its clock starts: what picks its policy, and when it was created.
#[derive(sqlx::FromRow)]
struct ClockedRow {
    id: TicketId,
    number: i64,
    title: String,
    priority: String,
    category: String,
    customer_id: Option<CustomerId>,
    created_at: i64,
}

/// A moment of a ticket's history: a status change (`status`) or a public reply (`replier`,
/// `requester` or `agent`).
#[derive(sqlx::FromRow)]
struct HistoryRow {
    ticket_id: TicketId,
    at: i64,
    status: Option<String>,
    replier: Option<String>,
}

fn json_err(e: serde_json::Error) -> DeskError {
    DeskError::new(ErrorCode::Internal, format!("bad SLA settings: {e}"))
}

impl Desk {
    /// The local workspace's SLA settings are changed here; a server's through it
    /// ([`crate::sync::settings`]).
    fn require_local_settings(&self) -> DeskResult<()> {
        self.require(Action::ManageTenantSettings)?;
        if self.sync_scope().is_some() {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                "while signed in, SLA settings are the server's and are changed there",
            ));
        }
        Ok(())
    }

    pub async fn calendars(&self) -> DeskResult<Vec<CalendarRecord>> {
        let rows: Vec<CalendarRow> = sqlx::query_as(
            "select id, name, time_zone, weekly, holidays, version from calendars
              where deleted_at is null and from_server = ? order by name collate nocase",
        )
        .bind(self.sync_scope().is_some())
        .fetch_all(&self.store().pool)
        .await?;
        rows.into_iter().map(CalendarRow::into_record).collect()
    }

    /// Creates a calendar (`id` none) or replaces one at `version`.
    pub async fn save_calendar(
        &self,
        id: Option<CalendarId>,
        input: &CalendarInput,
        version: Option<i64>,
    ) -> DeskResult<CalendarRecord> {
        self.require_local_settings()?;
        input.parse()?;
        let now = to_micros(self.now());
        let weekly = serde_json::to_string(&input.weekly).map_err(json_err)?;
        let holidays = serde_json::to_string(&input.holidays).map_err(json_err)?;
        let id = match id {
            None => {
                let id = CalendarId::new();
                sqlx::query(
                    "insert into calendars (id, name, time_zone, weekly, holidays, created_at, updated_at)
                     values (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(input.name.trim())
                .bind(&input.time_zone)
                .bind(weekly)
                .bind(holidays)
                .bind(now)
                .bind(now)
                .execute(&self.store().pool)
                .await?;
                id
            }
            Some(id) => {
                let done = sqlx::query(
                    "update calendars set name = ?, time_zone = ?, weekly = ?, holidays = ?,
                            updated_at = ?, version = version + 1
                      where id = ? and deleted_at is null and (? is null or version = ?)",
                )
                .bind(input.name.trim())
                .bind(&input.time_zone)
                .bind(weekly)
                .bind(holidays)
                .bind(now)
                .bind(id)
                .bind(version)
                .bind(version)
                .execute(&self.store().pool)
                .await?;
                if done.rows_affected() == 0 {
                    self.calendar(id).await?;
                    return Err(DeskError::stale("calendar"));
                }
                id
            }
        };
        self.touched();
        self.calendar(id).await
    }

    async fn calendar(&self, id: CalendarId) -> DeskResult<CalendarRecord> {
        self.calendars()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| DeskError::not_found("calendar"))
    }

    /// Deletes a calendar no policy uses.
    pub async fn delete_calendar(&self, id: CalendarId) -> DeskResult<()> {
        self.require_local_settings()?;
        self.calendar(id).await?;
        let used: Option<String> = sqlx::query_scalar(
            "select name from sla_policies
              where calendar_id = ? and deleted_at is null and from_server = 0 limit 1",
        )
        .bind(id)
        .fetch_optional(&self.store().pool)
        .await?;
        if let Some(policy) = used {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!("the policy {policy:?} uses this calendar; change it first"),
            ));
        }
        let now = to_micros(self.now());
        sqlx::query("update calendars set deleted_at = ?, updated_at = ?, version = version + 1 where id = ?")
            .bind(now)
            .bind(now)
            .bind(id)
            .execute(&self.store().pool)
            .await?;
        self.touched();
        Ok(())
    }

    /// Policies in the order they are tried.
    pub async fn sla_policies(&self) -> DeskResult<Vec<Policy>> {
        let rows: Vec<PolicyRow> = sqlx::query_as(
            "select id, name, position, active, priorities, categories, customer_ids,
                    first_response_minutes, next_response_minutes, resolution_minutes,
                    business_hours, calendar_id, warn_minutes, version
               from sla_policies where deleted_at is null and from_server = ?
              order by position, created_at",
        )
        .bind(self.sync_scope().is_some())
        .fetch_all(&self.store().pool)
        .await?;
        rows.into_iter().map(PolicyRow::into_policy).collect()
    }

    /// Creates a policy (`id` none) or replaces one at `version`. Every open ticket's SLA is
    /// derived again from its history the next time it is read.
    pub async fn save_sla_policy(
        &self,
        id: Option<SlaPolicyId>,
        input: &PolicyInput,
        version: Option<i64>,
    ) -> DeskResult<Policy> {
        self.require_local_settings()?;
        input.validate()?;
        if let Some(calendar) = input.calendar_id {
            self.calendar(calendar)
                .await
                .map_err(|_| DeskError::invalid("calendar_id", "no such calendar"))?;
        }
        let now = to_micros(self.now());
        let done = match id {
            None => {
                let new = SlaPolicyId::new();
                bind_policy(
                    sqlx::query(
                        "insert into sla_policies (name, position, active, priorities, categories,
                                customer_ids, first_response_minutes, next_response_minutes,
                                resolution_minutes, business_hours, calendar_id, warn_minutes,
                                created_at, updated_at, id)
                         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ),
                    input,
                )
                .bind(now)
                .bind(now)
                .bind(new)
                .execute(&self.store().pool)
                .await?;
                self.touched();
                return self.sla_policy(new).await;
            }
            Some(id) => bind_policy(
                sqlx::query(
                    "update sla_policies set name = ?, position = ?, active = ?, priorities = ?,
                                categories = ?, customer_ids = ?, first_response_minutes = ?,
                                next_response_minutes = ?, resolution_minutes = ?,
                                business_hours = ?, calendar_id = ?, warn_minutes = ?,
                                updated_at = ?, version = version + 1
                          where id = ? and deleted_at is null and (? is null or version = ?)",
                ),
                input,
            )
            .bind(now)
            .bind(id)
            .bind(version)
            .bind(version)
            .execute(&self.store().pool)
            .await?,
        };
        let id = id.unwrap_or_default();
        if done.rows_affected() == 0 {
            self.sla_policy(id).await?;
            return Err(DeskError::stale("policy"));
        }
        self.touched();
        self.sla_policy(id).await
    }

    async fn sla_policy(&self, id: SlaPolicyId) -> DeskResult<Policy> {
        self.sla_policies()
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| DeskError::not_found("policy"))
    }

    pub async fn delete_sla_policy(&self, id: SlaPolicyId) -> DeskResult<()> {
        self.require_local_settings()?;
        let now = to_micros(self.now());
        let done = sqlx::query(
            "update sla_policies set deleted_at = ?, updated_at = ?, version = version + 1
              where id = ? and deleted_at is null",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.store().pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DeskError::not_found("policy"));
        }
        self.touched();
        Ok(())
    }

    /// Active policies in order, each with its calendar.
    async fn active_policies(&self) -> DeskResult<Vec<(Policy, Option<Calendar>)>> {
        let calendars: HashMap<CalendarId, Calendar> = self
            .calendars()
            .await?
            .into_iter()
            .filter_map(|c| Some((c.id, c.calendar.parse().ok()?)))
            .collect();
        Ok(sla::in_force(self.sla_policies().await?, &calendars))
    }

    /// Tickets (those listed, or every one not closed) with the history their clocks read.
    async fn clocked(&self, only: Option<&[TicketId]>) -> DeskResult<Vec<Clocked>> {
        let only = only
            .map(serde_json::to_string)
            .transpose()
            .map_err(json_err)?;
        let tickets: Vec<ClockedRow> = sqlx::query_as(
            "select id, number, title, priority, category, customer_id, created_at from tickets
              where deleted_at is null and (?1 is null and status <> 'closed' or id in (select value from json_each(?1)))",
        )
        .bind(&only)
        .fetch_all(&self.store().pool)
        .await?;
        let events: Vec<HistoryRow> = sqlx::query_as(
            "select a.ticket_id, a.at, json_extract(a.after, '$.status') as status, null as replier
               from activity a join tickets t on t.id = a.ticket_id
              where a.field = 'status' and t.deleted_at is null
                and (?1 is null and t.status <> 'closed' or t.id in (select value from json_each(?1)))
             union all
             select c.ticket_id, c.created_at, null,
                    case when c.author_id = t.requester_id then 'requester'
                         when u.role in ('agent', 'admin') then 'agent' end
               from comments c join tickets t on t.id = c.ticket_id join users u on u.id = c.author_id
              where c.internal = 0 and c.deleted_at is null and t.deleted_at is null
                and (?1 is null and t.status <> 'closed' or t.id in (select value from json_each(?1)))
              order by 2",
        )
        .bind(&only)
        .fetch_all(&self.store().pool)
        .await?;
        let mut histories: HashMap<TicketId, Vec<(DateTime<Utc>, Event)>> = HashMap::new();
        for e in events {
            let event = match (e.status.as_deref(), e.replier.as_deref()) {
                (Some(status), _) => Event::Status(parse_text::<Status>(status, "status")?),
                (None, Some("requester")) => Event::RequesterReply,
                (None, Some("agent")) => Event::AgentReply,
                _ => continue,
            };
            histories
                .entry(e.ticket_id)
                .or_default()
                .push((from_micros(e.at), event));
        }
        tickets
            .into_iter()
            .map(|t| {
                let mut history = vec![(from_micros(t.created_at), Event::Created)];
                history.extend(histories.remove(&t.id).unwrap_or_default());
                Ok(Clocked {
                    id: t.id,
                    number: t.number,
                    title: t.title,
                    priority: parse_text(&t.priority, "priority")?,
                    category: t.category,
                    customer: t.customer_id,
                    history,
                })
            })
            .collect()
    }

    /// A ticket's SLA now, or `None` when no active policy applies.
    pub async fn ticket_sla(&self, id: TicketId) -> DeskResult<Option<TicketSla>> {
        let policies = self.active_policies().await?;
        let now = self.now();
        Ok(self
            .clocked(Some(&[id]))
            .await?
            .first()
            .and_then(|t| sla_of(&policies, t, now)))
    }

    /// The most urgent SLA target of each of `ids` that has one.
    pub async fn worst_slas(
        &self,
        ids: &[TicketId],
    ) -> DeskResult<HashMap<TicketId, sla::TargetState>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let policies = self.active_policies().await?;
        if policies.is_empty() {
            return Ok(HashMap::new());
        }
        let now = self.now();
        Ok(self
            .clocked(Some(ids))
            .await?
            .iter()
            .filter_map(|t| Some((t.id, sla_of(&policies, t, now)?.worst()?.clone())))
            .collect())
    }

    /// Looks at every open ticket's SLA: records the at-risk and breach events not seen
    /// before (so each is announced once, across restarts), lists what needs attention and
    /// says when to look again.
    pub async fn watch_sla(&self, quiet_before: DateTime<Utc>) -> DeskResult<SlaWatch> {
        let policies = self.active_policies().await?;
        let now = self.now();
        let mut watch = SlaWatch::default();
        let mut events = Vec::new();
        for ticket in self.clocked(None).await? {
            let Some(sla) = sla_of(&policies, &ticket, now) else {
                continue;
            };
            for t in &sla.targets {
                let moments = [
                    (
                        SlaState::AtRisk,
                        t.at_risk_at
                            .filter(|_| t.met_at.is_none() || t.breached_at.is_some()),
                    ),
                    (SlaState::Breached, t.breached_at),
                ];
                for (state, at) in moments {
                    if let Some(at) = at.filter(|at| *at <= now) {
                        events.push(SlaAlert {
                            ticket_id: ticket.id,
                            number: ticket.number,
                            title: ticket.title.clone(),
                            target: t.target,
                            state,
                            at,
                            due_at: t.due_at,
                        });
                    }
                }
                if matches!(t.state, SlaState::AtRisk | SlaState::Breached) {
                    watch.attention.push(SlaAttention {
                        ticket_id: ticket.id,
                        number: ticket.number,
                        title: ticket.title.clone(),
                        target: t.target,
                        state: t.state,
                        due_at: t.due_at,
                    });
                }
                if let Some(next) = t.next_change_at {
                    watch.next_change_at = Some(watch.next_change_at.map_or(next, |n| n.min(next)));
                }
            }
        }
        // An at-risk event superseded by the breach of the same target is not announced.
        let breached: HashSet<(TicketId, Target)> = events
            .iter()
            .filter(|e| e.state == SlaState::Breached)
            .map(|e| (e.ticket_id, e.target))
            .collect();
        // Events already recorded are the common case on every pass: find them with a read, so
        // the write lock is taken only when something is new.
        let known: HashSet<(TicketId, String, String, i64)> =
            sqlx::query_as("select ticket_id, target, kind, at from sla_alerts")
                .fetch_all(&self.store().pool)
                .await?
                .into_iter()
                .collect();
        let key = |e: &SlaAlert| {
            (
                e.ticket_id,
                e.target.as_str().to_owned(),
                kind_key(e.state).to_owned(),
                to_micros(e.at),
            )
        };
        events.retain(|e| !known.contains(&key(e)));
        if !events.is_empty() {
            let mut tx = self.write().await?;
            for e in events {
                let (ticket, target, kind, at) = key(&e);
                // The key makes each event new exactly once, even with two watchers.
                let new = sqlx::query(
                    "insert into sla_alerts (ticket_id, target, kind, at, announced_at)
                     values (?, ?, ?, ?, ?) on conflict do nothing",
                )
                .bind(ticket)
                .bind(target)
                .bind(kind)
                .bind(at)
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let superseded =
                    e.state == SlaState::AtRisk && breached.contains(&(e.ticket_id, e.target));
                if !new || superseded {
                    continue;
                }
                if e.at < quiet_before {
                    watch.missed += 1;
                } else {
                    watch.alerts.push(e);
                }
            }
            tx.commit().await?;
        }
        watch.attention.sort_by_key(|a| {
            (
                a.state != SlaState::Breached,
                a.due_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
            )
        });
        Ok(watch)
    }
}

fn kind_key(state: SlaState) -> &'static str {
    if state == SlaState::Breached {
        "breached"
    } else {
        "at_risk"
    }
}

fn sla_of(
    policies: &[(Policy, Option<Calendar>)],
    t: &Clocked,
    now: DateTime<Utc>,
) -> Option<TicketSla> {
    sla::ticket_sla(
        policies,
        t.priority,
        &t.category,
        t.customer,
        &t.history,
        now,
    )
}

/// Office hours for the demo: Monday to Friday, 09:00 to 17:00.
pub fn office_hours() -> WeeklyHours {
    let day = vec![["09:00".to_owned(), "17:00".to_owned()]];
    WeeklyHours {
        mon: day.clone(),
        tue: day.clone(),
        wed: day.clone(),
        thu: day.clone(),
        fri: day,
        ..Default::default()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds a policy's fields in the order of the insert and update statements.
fn bind_policy<'q>(query: SqliteQuery<'q>, p: &'q PolicyInput) -> SqliteQuery<'q> {
    fn list<T: Serialize>(v: &Option<Vec<T>>) -> Option<String> {
        v.as_ref().and_then(|v| serde_json::to_string(v).ok())
    }
    query
        .bind(p.name.trim())
        .bind(p.position)
        .bind(p.active)
        .bind(list(&p.priorities))
        .bind(list(&p.categories))
        .bind(list(&p.customer_ids))
        .bind(p.first_response_minutes)
        .bind(p.next_response_minutes)
        .bind(p.resolution_minutes)
        .bind(p.business_hours)
        .bind(p.calendar_id)
        .bind(p.warn_minutes)
}
