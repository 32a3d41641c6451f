//! The SLA clock: business calendars, and the state of a ticket's targets derived from its
//! history. Pure: `now` is always a parameter.
//!
//! An instant is business time when its local wall-clock time, in the calendar's zone, falls
//! inside that weekday's hours and its local date is not a holiday. Daylight-saving changes
//! are exact: the hour skipped in spring does not count; the hour repeated in autumn counts
//! twice when it is inside business hours (it is real time someone waited).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike,
    Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ticket::{FieldError, Priority};
use crate::workflow::Status;
use crate::{CalendarId, CustomerId, SlaPolicyId};

/// Opening hours per weekday as `[["09:00", "17:00"], …]`, local time; `"24:00"` closes at
/// midnight.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
pub struct WeeklyHours {
    #[serde(default)]
    pub mon: Vec<[String; 2]>,
    #[serde(default)]
    pub tue: Vec<[String; 2]>,
    #[serde(default)]
    pub wed: Vec<[String; 2]>,
    #[serde(default)]
    pub thu: Vec<[String; 2]>,
    #[serde(default)]
    pub fri: Vec<[String; 2]>,
    #[serde(default)]
    pub sat: Vec<[String; 2]>,
    #[serde(default)]
    pub sun: Vec<[String; 2]>,
}

/// Seconds since local midnight: a day's hours are `[open, close)` with `close` up to 86 400.
type Hours = Vec<(u32, u32)>;

/// A business calendar, parsed: valid zone, ordered non-overlapping hours, holidays.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    zone: Tz,
    /// Monday first.
    week: [Hours; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn invalid(field: &'static str, message: String) -> FieldError {
    FieldError::Invalid { field, message }
}

fn parse_clock(field: &'static str, text: &str) -> Result<u32, FieldError> {
    if text == "24:00" {
        return Ok(86_400);
    }
    NaiveTime::parse_from_str(text, "%H:%M")
        .map(|t| t.num_seconds_from_midnight())
        .map_err(|_| invalid(field, format!("{text:?} is not a time such as 09:00")))
}

impl Calendar {
    /// Parses a calendar as an admin wrote it; errors name the field at fault.
    pub fn parse(
        time_zone: &str,
        weekly: &WeeklyHours,
        holidays: &[String],
    ) -> Result<Calendar, FieldError> {
        let zone: Tz = time_zone.parse().map_err(|_| {
            invalid(
                "time_zone",
                format!("{time_zone:?} is not an IANA time zone such as Europe/Paris"),
            )
        })?;
        let days = [
            &weekly.mon,
            &weekly.tue,
            &weekly.wed,
            &weekly.thu,
            &weekly.fri,
            &weekly.sat,
            &weekly.sun,
        ];
        let mut week: [Hours; 7] = Default::default();
        for (slot, ranges) in week.iter_mut().zip(days) {
            for [open, close] in ranges {
                let (o, c) = (parse_clock("weekly", open)?, parse_clock("weekly", close)?);
                if o >= c {
                    return Err(invalid(
                        "weekly",
                        format!("{open}–{close}: the hours must end after they start"),
                    ));
                }
                slot.push((o, c));
            }
            slot.sort_unstable();
            if slot.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(invalid("weekly", "a day's hours overlap".to_owned()));
            }
        }
        let holidays = holidays
            .iter()
            .map(|h| {
                NaiveDate::parse_from_str(h, "%Y-%m-%d")
                    .map_err(|_| invalid("holidays", format!("{h:?} is not a date (YYYY-MM-DD)")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Calendar {
            zone,
            week,
            holidays,
        })
    }

    /// Every hour of every day, in UTC: business time is calendar time.
    pub fn always() -> Calendar {
        Calendar {
            zone: Tz::UTC,
            week: std::array::from_fn(|_| vec![(0, 86_400)]),
            holidays: BTreeSet::new(),
        }
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    fn hours_on(&self, date: NaiveDate) -> &[(u32, u32)] {
        if self.holidays.contains(&date) {
            return &[];
        }
        &self.week[date.weekday().num_days_from_monday() as usize]
    }

    /// Whether `t` is business time (the definition the rest implements efficiently).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.zone).naive_local();
        let s = local.time().num_seconds_from_midnight();
        self.hours_on(local.date())
            .iter()
            .any(|(o, c)| *o <= s && s < *c)
    }

    fn offset_at(&self, t: DateTime<Utc>) -> i64 {
        i64::from(
            self.zone
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    }

    /// The end of the span of constant UTC offset that starts at `from`, at most `limit`.
    fn offset_span_end(&self, from: DateTime<Utc>, limit: DateTime<Utc>) -> DateTime<Utc> {
        let offset = self.offset_at(from);
        let mut step_end = from;
        loop {
            // Zones change offset at most a few times a year and never twice within 12 hours.
            let next = (step_end + Duration::hours(12)).min(limit);
            if self.offset_at(next) != offset {
                // The change is in (step_end, next]: find its first second.
                let (mut lo, mut hi) = (step_end.timestamp(), next.timestamp());
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if self.offset_at(from_seconds(mid)) == offset {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let hi = from_seconds(hi);
                return hi;
            }
            if next >= limit {
                return limit;
            }
            step_end = next;
        }
    }

    /// Business intervals (UTC) inside `[from, to)`, in order, passed to `visit` until it
    /// returns `false`.
    fn each_interval(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> bool,
    ) {
        let mut span_start = from;
        while span_start < to {
            let span_end = self.offset_span_end(span_start, to);
            let offset = Duration::seconds(self.offset_at(span_start));
            let local_start = span_start.naive_utc() + offset;
            let local_end = span_end.naive_utc() + offset;
            let mut date = local_start.date();
            while date.and_time(NaiveTime::MIN) < local_end {
                for (open, close) in self.hours_on(date) {
                    let midnight = date.and_time(NaiveTime::MIN);
                    let a = (midnight + Duration::seconds(i64::from(*open))).max(local_start);
                    let b = (midnight + Duration::seconds(i64::from(*close))).min(local_end);
                    if a < b && !visit(utc(a - offset), utc(b - offset)) {
                        return;
                    }
                }
                let Some(next) = date.succ_opt() else { return };
                date = next;
            }
            span_start = span_end;
        }
    }

    /// Business seconds in `[from, to)`.
    pub fn seconds_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let mut total = 0;
        self.each_interval(from, to, |a, b| {
            total += (b - a).num_seconds();
            true
        });
        total
    }

    /// The instant at which `seconds` of business time have passed since `from`; `None` when
    /// the calendar has no such time within ten years (no hours at all).
    pub fn add_seconds(&self, from: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
        if seconds <= 0 {
            return Some(from);
        }
        let mut left = seconds;
        let mut found = None;
        self.each_interval(from, from + Duration::days(3653), |a, b| {
            let len = (b - a).num_seconds();
            if left <= len {
                found = Some(a + Duration::seconds(left));
                return false;
            }
            left -= len;
            true
        });
        found
    }
}

fn from_seconds(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn utc(naive: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&naive)
}

/// The targets a policy can set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Until the first public reply by an agent or admin.
    FirstResponse,
    /// Until the next public reply by an agent or admin after each requester reply.
    NextResponse,
    /// Until the ticket is resolved.
    Resolution,
}

impl Target {
    pub const ALL: [Target; 3] = [
        Target::FirstResponse,
        Target::NextResponse,
        Target::Resolution,
    ];

    /// The name in data and on the wire: `first_response`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::NextResponse => "next_response",
            Target::Resolution => "resolution",
        }
    }

    /// The name people read: "first response".
    pub const fn label(self) -> &'static str {
        match self {
            Target::FirstResponse => "first response",
            Target::NextResponse => "next response",
            Target::Resolution => "resolution",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no SLA [`Target`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an SLA target")]
pub struct UnknownTarget(pub String);

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    Running,
    Paused,
    AtRisk,
    Breached,
    Met,
}

/// One target's state at `now`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type)]
pub struct TargetState {
    pub target: Target,
    pub state: SlaState,
    /// When it is due if the clock keeps running; `None` while paused or once met.
    pub due_at: Option<DateTime<Utc>>,
    /// Counted time left (business or calendar); negative once breached.
    #[specta(type = specta_typescript::Number)]
    pub remaining_seconds: i64,
    pub breached_at: Option<DateTime<Utc>>,
    /// When the remaining time fell below the warning threshold, if it has.
    pub at_risk_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
    /// When the state will next change by itself (at risk, breach), for timers.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// What happened to a ticket that the clock depends on, in time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Created,
    Status(Status),
    /// A public reply by an agent or admin.
    AgentReply,
    /// A public reply by the requester.
    RequesterReply,
}

/// How long a target is and how it counts.
#[derive(Clone, Debug)]
pub struct TargetRule<'a> {
    pub target: Target,
    pub seconds: i64,
    /// The calendar for business time; calendar time counts every second.
    pub calendar: Option<&'a Calendar>,
    /// Remaining time below which the target is at risk.
    pub warn_seconds: i64,
}

/// The default warning threshold: 15 minutes or 20% of the target, whichever is larger.
pub fn default_warn_seconds(target_seconds: i64) -> i64 {
    (15 * 60).max(target_seconds / 5)
}

/// When a target's clock ran, from a ticket's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Periods {
    /// `[from, to)` in time order; the last ends at `now` when the clock is running.
    pub running: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub running_now: bool,
    pub met_at: Option<DateTime<Utc>>,
}

/// The periods in which a target's clock runs, and when it was met, from a ticket's history.
/// The clock runs while the ticket is open or in progress: it pauses on hold, and a resolved or
/// closed ticket meets the resolution target (reopening runs it again).
pub fn running_periods(
    target: Target,
    history: &[(DateTime<Utc>, Event)],
    now: DateTime<Utc>,
) -> Periods {
    let mut periods = Vec::new();
    let mut status = Status::Open;
    let mut started: Option<DateTime<Utc>> = None;
    let mut met: Option<DateTime<Utc>> = None;
    // The next-response clock starts only with a requester's reply.
    let mut waiting = target != Target::NextResponse;
    let runs = |status: Status, waiting: bool| {
        waiting && matches!(status, Status::Open | Status::InProgress)
    };
    let mut created = false;
    for (at, event) in history.iter().copied().filter(|(at, _)| *at <= now) {
        let was = created && runs(status, waiting) && met.is_none();
        match event {
            Event::Created => created = true,
            Event::Status(s) => status = s,
            Event::AgentReply => {
                if matches!(target, Target::FirstResponse | Target::NextResponse) && waiting {
                    if target == Target::FirstResponse {
                        met = Some(at);
                    }
                    waiting = false;
                }
            }
            Event::RequesterReply => {
                if target == Target::NextResponse {
                    waiting = true;
                }
            }
        }
        if target == Target::Resolution {
            met = matches!(status, Status::Resolved | Status::Closed).then_some(met.unwrap_or(at));
        }
        let is = created && runs(status, waiting) && met.is_none();
        match (was, is) {
            (false, true) => started = Some(at),
            (true, false) => {
                if let Some(s) = started.take() {
                    periods.push((s, at));
                }
            }
            _ => {}
        }
    }
    let running_now = started.is_some();
    if let Some(s) = started {
        periods.push((s, now));
    }
    Periods {
        running: periods,
        running_now,
        met_at: met.filter(|_| target != Target::NextResponse),
    }
}

/// The state of one target at `now`, from the ticket's history.
pub fn evaluate(
    rule: &TargetRule<'_>,
    history: &[(DateTime<Utc>, Event)],
    now: DateTime<Utc>,
) -> TargetState {
    let always = Calendar::always();
    let calendar = rule.calendar.unwrap_or(&always);
    let Periods {
        running: periods,
        running_now,
        met_at,
    } = running_periods(rule.target, history, now);
    // When the counted time reached the target, if it has.
    let mut elapsed = 0;
    let mut breached_at = None;
    let mut at_risk_at = None;
    let warn_from = (rule.seconds - rule.warn_seconds).max(0);
    for (from, to) in &periods {
        let here = calendar.seconds_between(*from, *to);
        if at_risk_at.is_none() && elapsed + here >= warn_from {
            at_risk_at = calendar.add_seconds(*from, warn_from - elapsed);
        }
        if breached_at.is_none() && elapsed + here >= rule.seconds {
            breached_at = calendar.add_seconds(*from, rule.seconds - elapsed);
        }
        elapsed += here;
    }
    let remaining = rule.seconds - elapsed;
    let due_at = (running_now && met_at.is_none())
        .then(|| calendar.add_seconds(now, remaining.max(0)))
        .flatten()
        .filter(|_| remaining > 0);
    let state = if breached_at.is_some() {
        SlaState::Breached
    } else if met_at.is_some() {
        SlaState::Met
    } else if !running_now {
        SlaState::Paused
    } else if remaining <= rule.warn_seconds {
        SlaState::AtRisk
    } else {
        SlaState::Running
    };
    let next_change_at = match state {
        SlaState::Running => calendar.add_seconds(now, remaining - rule.warn_seconds),
        SlaState::AtRisk => due_at,
        _ => None,
    };
    TargetState {
        target: rule.target,
        state,
        due_at,
        remaining_seconds: remaining,
        breached_at,
        at_risk_at,
        met_at,
        next_change_at,
    }
}

// ---- Policies -------------------------------------------------------------------------------

/// A business calendar as stored and sent: `{name, time_zone, weekly, holidays}`.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
pub struct CalendarInput {
    pub name: String,
    /// IANA zone, e.g. `Europe/Paris`.
    pub time_zone: String,
    pub weekly: WeeklyHours,
    /// `YYYY-MM-DD` days without business hours.
    #[serde(default)]
    pub holidays: Vec<String>,
}

impl CalendarInput {
    pub fn parse(&self) -> Result<Calendar, FieldError> {
        crate::ticket::bounded("name", &self.name, 100, true)?;
        Calendar::parse(&self.time_zone, &self.weekly, &self.holidays)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type)]
pub struct CalendarRecord {
    pub id: CalendarId,
    #[serde(flatten)]
    pub calendar: CalendarInput,
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// Which tickets a policy applies to and its targets, in minutes. Empty or missing conditions
/// match every ticket.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
pub struct PolicyInput {
    pub name: String,
    /// Where it is in the order; the first matching active policy applies.
    #[serde(default)]
    pub position: u32,
    #[serde(default = "active_by_default")]
    pub active: bool,
    #[serde(default)]
    pub priorities: Option<Vec<Priority>>,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    pub customer_ids: Option<Vec<CustomerId>>,
    #[serde(default)]
    pub first_response_minutes: Option<u32>,
    #[serde(default)]
    pub next_response_minutes: Option<u32>,
    #[serde(default)]
    pub resolution_minutes: Option<u32>,
    /// Count business hours of `calendar_id` rather than every minute.
    #[serde(default)]
    pub business_hours: bool,
    #[serde(default)]
    pub calendar_id: Option<CalendarId>,
    /// At risk when less than this is left; default 15 minutes or 20% of the target.
    #[serde(default)]
    pub warn_minutes: Option<u32>,
}

fn active_by_default() -> bool {
    true
}

/// The longest target accepted: a year.
const MAX_TARGET_MINUTES: u32 = 525_600;

impl PolicyInput {
    /// Checks the policy as an admin wrote it; errors name the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        crate::ticket::bounded("name", &self.name, 100, true)?;
        let targets = [
            ("first_response_minutes", self.first_response_minutes),
            ("next_response_minutes", self.next_response_minutes),
            ("resolution_minutes", self.resolution_minutes),
        ];
        if targets.iter().all(|(_, m)| m.is_none()) {
            return Err(invalid(
                "resolution_minutes",
                "set at least one target (first response, next response or resolution)".into(),
            ));
        }
        for (field, minutes) in targets {
            if let Some(m) = minutes
                && !(1..=MAX_TARGET_MINUTES).contains(&m)
            {
                return Err(invalid(
                    field,
                    format!("{m} minutes: a target is 1 minute to a year"),
                ));
            }
        }
        if self.business_hours && self.calendar_id.is_none() {
            return Err(invalid(
                "calendar_id",
                "business hours need a calendar".into(),
            ));
        }
        if self.warn_minutes.is_some_and(|w| w > MAX_TARGET_MINUTES) {
            return Err(invalid("warn_minutes", "at most a year".into()));
        }
        for c in self.categories.iter().flatten() {
            crate::ticket::Category::parse(c)?;
        }
        Ok(())
    }

    /// Whether the policy applies to a ticket with these attributes.
    pub fn matches(
        &self,
        priority: Priority,
        category: &str,
        customer: Option<CustomerId>,
    ) -> bool {
        fn any_or<T: PartialEq>(list: &Option<Vec<T>>, value: Option<&T>) -> bool {
            match list {
                Some(l) if !l.is_empty() => value.is_some_and(|v| l.contains(v)),
                _ => true,
            }
        }
        let category = category.to_owned();
        self.active
            && any_or(&self.priorities, Some(&priority))
            && any_or(&self.categories, Some(&category))
            && any_or(&self.customer_ids, customer.as_ref())
    }

    /// The policy's targets with how each counts.
    pub fn rules<'a>(&self, calendar: Option<&'a Calendar>) -> Vec<TargetRule<'a>> {
        let calendar = if self.business_hours { calendar } else { None };
        [
            (Target::FirstResponse, self.first_response_minutes),
            (Target::NextResponse, self.next_response_minutes),
            (Target::Resolution, self.resolution_minutes),
        ]
        .into_iter()
        .filter_map(|(target, minutes)| {
            let seconds = i64::from(minutes?) * 60;
            Some(TargetRule {
                target,
                seconds,
                calendar,
                warn_seconds: self
                    .warn_minutes
                    .map_or_else(|| default_warn_seconds(seconds), |w| i64::from(w) * 60),
            })
        })
        .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type)]
pub struct Policy {
    pub id: SlaPolicyId,
    #[serde(flatten)]
    pub policy: PolicyInput,
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// A ticket's SLA: the policy that applies and each of its targets now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, specta::Type)]
pub struct TicketSla {
    pub policy_id: SlaPolicyId,
    pub policy_name: String,
    pub targets: Vec<TargetState>,
}

impl TicketSla {
    /// The most urgent state of its targets (breached, at risk, running, paused, met).
    pub fn worst(&self) -> Option<&TargetState> {
        self.targets.iter().min_by_key(|t| match t.state {
            SlaState::Breached => 0,
            SlaState::AtRisk => 1,
            SlaState::Running => 2,
            SlaState::Paused => 3,
            SlaState::Met => 4,
        })
    }
}

/// The policies in force, in the order they are tried: the active ones of `policies`, each
/// with its calendar from `calendars` (none when it names none, or one not in `calendars`).
/// What a ticket's SLA is read under ([`ticket_sla`]), on the server and the desktop alike.
pub fn in_force(
    policies: impl IntoIterator<Item = Policy>,
    calendars: &HashMap<CalendarId, Calendar>,
) -> Vec<(Policy, Option<Calendar>)> {
    policies
        .into_iter()
        .filter(|p| p.policy.active)
        .map(|p| {
            let calendar = p
                .policy
                .calendar_id
                .and_then(|c| calendars.get(&c).cloned());
            (p, calendar)
        })
        .collect()
}

/// The SLA of a ticket under the first matching policy of `policies` (in order).
pub fn ticket_sla(
    policies: &[(Policy, Option<Calendar>)],
    priority: Priority,
    category: &str,
    customer: Option<CustomerId>,
    history: &[(DateTime<Utc>, Event)],
    now: DateTime<Utc>,
) -> Option<TicketSla> {
    let (policy, calendar) = policies
        .iter()
        .find(|(p, _)| p.policy.matches(priority, category, customer))?;
    Some(TicketSla {
        policy_id: policy.id,
        policy_name: policy.policy.name.clone(),
        targets: policy
            .policy
            .rules(calendar.as_ref())
            .iter()
            .map(|rule| evaluate(rule, history, now))
            .collect(),
    })
}

#[cfg(test)]
mod tests;
