//! SLA settings in sync. While signed in, the tenant's SLA policies and business calendars are
//! the server's: pulled into the local tables (apart from the local workspace's own, which
//! apply again in local mode), so deadlines and alerts here follow them. An admin changes them
//! on the server, through its API, and the change comes back with the next pull: settings
//! apply to the whole tenant at once, so they are not queued offline.

use serde_json::Value;
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::{Action, CalendarId, SlaPolicyId};

use super::store::Tx;
use crate::Desk;
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::sync::Replica;

/// Writes calendars as the server sent them.
pub(crate) async fn write_calendars(
    tx: &mut Tx,
    calendars: &[CalendarRecord],
    now: i64,
) -> DeskResult<()> {
    for c in calendars {
        sqlx::query(
            "insert into calendars (id, name, time_zone, weekly, holidays, created_at, updated_at,
                                    version, from_server)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, 1)
             on conflict (id) do update set name = excluded.name, time_zone = excluded.time_zone,
                    weekly = excluded.weekly, holidays = excluded.holidays,
                    updated_at = excluded.updated_at, version = excluded.version,
                    from_server = 1, deleted_at = null",
        )
        .bind(c.id)
        .bind(&c.calendar.name)
        .bind(&c.calendar.time_zone)
        .bind(json(&c.calendar.weekly)?)
        .bind(json(&c.calendar.holidays)?)
        .bind(now)
        .bind(c.version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes policies as the server sent them; a calendar one names that has not come yet is
/// held by a placeholder until it does.
pub(crate) async fn write_policies(tx: &mut Tx, policies: &[Policy], now: i64) -> DeskResult<()> {
    for p in policies {
        if let Some(calendar) = p.policy.calendar_id {
            sqlx::query(
                "insert or ignore into calendars (id, name, time_zone, weekly, created_at,
                                                  updated_at, from_server)
                 values (?, 'Calendar', 'UTC', '{}', ?, ?, 1)",
            )
            .bind(calendar)
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        let input = &p.policy;
        sqlx::query(
            "insert into sla_policies (id, name, position, active, priorities, categories,
                    customer_ids, first_response_minutes, next_response_minutes,
                    resolution_minutes, business_hours, calendar_id, warn_minutes, created_at,
                    updated_at, version, from_server)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, 1)
             on conflict (id) do update set name = excluded.name, position = excluded.position,
                    active = excluded.active, priorities = excluded.priorities,
                    categories = excluded.categories, customer_ids = excluded.customer_ids,
                    first_response_minutes = excluded.first_response_minutes,
                    next_response_minutes = excluded.next_response_minutes,
                    resolution_minutes = excluded.resolution_minutes,
                    business_hours = excluded.business_hours, calendar_id = excluded.calendar_id,
                    warn_minutes = excluded.warn_minutes, updated_at = excluded.updated_at,
                    version = excluded.version, from_server = 1, deleted_at = null",
        )
        .bind(p.id)
        .bind(&input.name)
        .bind(input.position)
        .bind(input.active)
        .bind(input.priorities.as_ref().map(json).transpose()?)
        .bind(input.categories.as_ref().map(json).transpose()?)
        .bind(input.customer_ids.as_ref().map(json).transpose()?)
        .bind(input.first_response_minutes)
        .bind(input.next_response_minutes)
        .bind(input.resolution_minutes)
        .bind(input.business_hours)
        .bind(input.calendar_id)
        .bind(input.warn_minutes)
        .bind(now)
        .bind(p.version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> DeskResult<String> {
    serde_json::to_value(value)
        .map(|v: Value| v.to_string())
        .map_err(|e| DeskError::new(ErrorCode::Internal, format!("SLA settings to JSON: {e}")))
}

/// Where a settings change goes: the local workspace, or (signed in) the server.
enum Target {
    Local,
    Server(Replica),
}

fn target(desk: &Desk, replica: DeskResult<Replica>) -> DeskResult<Target> {
    if desk.sync_scope().is_none() {
        return Ok(Target::Local);
    }
    desk.require(Action::ManageTenantSettings)?;
    Ok(Target::Server(replica?))
}

/// A server's error for a settings change, saying what to do when it could not be reached.
fn on_server(e: DeskError) -> DeskError {
    if e.code == ErrorCode::ServerUnreachable {
        return DeskError::new(
            e.code,
            format!(
                "SLA settings are changed on the server, which can't be reached now; try again \
                 when connected. ({})",
                e.message
            ),
        );
    }
    e
}

impl Replica {
    /// Pulls after a settings change so the local view has it; a failure here only delays
    /// it to the next sync.
    async fn pull_settings(&self) {
        if let Err(e) = self.sync().await {
            tracing::info!(error = %e, "the changed settings come with the next sync");
        }
    }
}

/// Creates a policy (`id` none) or replaces one at `version`, locally or on the server.
pub async fn save_sla_policy(
    desk: &Desk,
    replica: DeskResult<Replica>,
    id: Option<SlaPolicyId>,
    input: &PolicyInput,
    version: Option<i64>,
) -> DeskResult<Policy> {
    match target(desk, replica)? {
        Target::Local => desk.save_sla_policy(id, input, version).await,
        Target::Server(replica) => {
            input.validate()?;
            let saved = replica
                .connection()
                .save_sla_policy(id, input, version)
                .await
                .map_err(on_server)?;
            replica.pull_settings().await;
            Ok(saved)
        }
    }
}

pub async fn delete_sla_policy(
    desk: &Desk,
    replica: DeskResult<Replica>,
    id: SlaPolicyId,
) -> DeskResult<()> {
    match target(desk, replica)? {
        Target::Local => desk.delete_sla_policy(id).await,
        Target::Server(replica) => {
            replica
                .connection()
                .delete_sla_policy(id)
                .await
                .map_err(on_server)?;
            replica.pull_settings().await;
            Ok(())
        }
    }
}

/// Creates a calendar (`id` none) or replaces one at `version`, locally or on the server.
pub async fn save_calendar(
    desk: &Desk,
    replica: DeskResult<Replica>,
    id: Option<CalendarId>,
    input: &CalendarInput,
    version: Option<i64>,
) -> DeskResult<CalendarRecord> {
    match target(desk, replica)? {
        Target::Local => desk.save_calendar(id, input, version).await,
        Target::Server(replica) => {
            input.parse()?;
            let saved = replica
                .connection()
                .save_calendar(id, input, version)
                .await
                .map_err(on_server)?;
            replica.pull_settings().await;
            Ok(saved)
        }
    }
}

pub async fn delete_calendar(
    desk: &Desk,
    replica: DeskResult<Replica>,
    id: CalendarId,
) -> DeskResult<()> {
    match target(desk, replica)? {
        Target::Local => desk.delete_calendar(id).await,
        Target::Server(replica) => {
            replica
                .connection()
                .delete_calendar(id)
                .await
                .map_err(on_server)?;
            replica.pull_settings().await;
            Ok(())
        }
    }
}
