//! `GET /api/v1/sync/pull`: the tenant's changes after a cursor, as the caller may see them.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use sqlx::{Postgres, Transaction};
use tallydesk_shared::api::{Activity, Comment, Customer, ErrorCode, Member};
use tallydesk_shared::sync::{Change, ChangeOp, Cursor, Entity, MAX_PULL_LIMIT, PullResponse};
use tallydesk_shared::{Access, Action, Role, TenantId};
use uuid::Uuid;

use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::Query;
use crate::{expenses, tickets};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PullParams {
    /// The `cursor` of the previous pull; 0 (the default) for everything there is.
    #[param(value_type = Option<i64>)]
    cursor: Option<Cursor>,
    /// At most this many changes, 1 to 1000 (the default).
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/v1/sync/pull", tag = "sync",
    description = "The tenant's changes after `cursor`, oldest first, limited to what the caller \
        may see (requesters: their own tickets, their public comments and activity; no internal \
        notes). Each change carries the record as it is now in its REST shape (`data`), or its \
        removal: `delete` (a tombstone) or `evict` (the caller may no longer see it, e.g. after a \
        role change; it still exists). A record changed several times appears once, at its \
        latest `seq`. Pull again with the returned `cursor` while `has_more`; a page may hold \
        fewer than `limit` changes, even none, and still have more after it (the log is read \
        in bounded windows). Cursor 0 is a full snapshot (without tombstones). `head` is the end \
        of the log when the page was read: `head - cursor` measures what remains, for a \
        progress bar (servers before it omit it).\n\n\
        409 `resync_required`: the log below the cursor was compacted (or the cursor is from \
        elsewhere): drop the local copy and pull from 0.\n\n\
        Requests may send `X-Tallydesk-Sync: 1`; another version is refused with 400. Responses \
        carry it.",
    params(PullParams, crate::http::docs::TenantHeader),
    responses(
        (status = 200, body = PullResponse),
        (status = 400, body = tallydesk_shared::api::ErrorBody, description = "bad cursor, limit or protocol version"),
        (status = 409, body = tallydesk_shared::api::ErrorBody, description = "`resync_required`"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn pull(
    headers: HeaderMap,
    mut scope: Scope,
    Query(params): Query<PullParams>,
) -> ApiResult<impl IntoResponse> {
    super::check_protocol(&headers)?;
    let cursor = params.cursor.unwrap_or(0);
    if cursor < 0 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "cursor: must be 0 or a cursor this server gave out",
        )
        .on_field("cursor"));
    }
    let limit = params.limit.unwrap_or(MAX_PULL_LIMIT);
    if !(1..=MAX_PULL_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("limit: must be between 1 and {MAX_PULL_LIMIT}"),
        )
        .on_field("limit"));
    }
    let response = changes_after(&mut scope, cursor, limit).await?;
    scope.commit().await?;
    Ok((super::protocol_header(), axum::Json(response)))
}

/// What a role may see of the log, from the permission matrix.
#[derive(Debug, Clone, Copy)]
struct Visibility {
    tickets_all: bool,
    tickets_own: bool,
    activity_all: bool,
    activity_own: bool,
    internal: bool,
    customers: bool,
    members: bool,
    sla_settings: bool,
}

impl Visibility {
    fn of(role: Role) -> Self {
        let access = |action| tallydesk_shared::permission::access(role, action);
        Self {
            tickets_all: access(Action::ViewTicket) == Access::Allowed,
            tickets_own: access(Action::ViewTicket) == Access::OwnTickets,
            activity_all: access(Action::ViewActivity) == Access::Allowed,
            activity_own: access(Action::ViewActivity) == Access::OwnTickets,
            internal: access(Action::ViewInternalNotes) != Access::Denied,
            customers: access(Action::ViewCustomers) != Access::Denied,
            members: access(Action::ViewMembers) != Access::Denied,
            sla_settings: crate::sla::may_view_settings(role),
        }
    }

    /// Whether the role sees every record of the tenant (nothing to evict, ever).
    fn everything(self) -> bool {
        self.tickets_all
            && self.activity_all
            && self.internal
            && self.customers
            && self.members
            && self.sla_settings
    }
}

/// A row of the log as the pull reads it.
struct LogRow {
    seq: i64,
    entity: String,
    entity_id: Uuid,
    op: String,
}

/// One page of changes after `cursor`, and the cursor to pull from next.
///
/// The log's head is read first and the page is read up to it, in a later statement: whatever
/// commits in between has a higher seq (the counter row serialises a tenant's writers), so it is
/// left for the next pull rather than skipped.
#[tracing::instrument(skip(scope), err)]
pub async fn changes_after(
    scope: &mut Scope,
    cursor: Cursor,
    limit: u32,
) -> ApiResult<PullResponse> {
    let log = sqlx::query!(
        "select last_change_seq, change_log_horizon from tenant_counters where tenant_id = $1",
        scope.tenant.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    let head = log.last_change_seq;
    if cursor > 0 && (cursor < log.change_log_horizon || cursor > head) {
        return Err(ApiError::conflict(
            ErrorCode::ResyncRequired,
            format!(
                "cursor {cursor} is outside this tenant's change log ({}..={head}): pull from 0 again",
                log.change_log_horizon
            ),
        ));
    }
    let v = Visibility::of(scope.role);
    let limit = limit as usize;
    // The log is read in windows of seq numbers, each at most `limit * WINDOW_PER_CHANGE` wide:
    // seq is unique per tenant, so a window holds at most that many rows whatever plan the
    // planner picks, even on statistics from before a bulk load (an unbounded range then cost
    // a scan and sort of the whole rest of the log for every page). Sparse visibility (a
    // requester's own tickets in a big log) takes more windows; after MAX_WINDOWS the page ends
    // early with `has_more`, its cursor where the reading stopped.
    let width = i64::try_from(limit).unwrap_or(i64::MAX) * WINDOW_PER_CHANGE;
    let mut rows: Vec<LogRow> = Vec::new();
    let mut read_to = cursor;
    for _ in 0..MAX_WINDOWS {
        if rows.len() > limit || read_to >= head {
            break;
        }
        let to = head.min(read_to.saturating_add(width));
        let wanted = i64::try_from(limit + 1 - rows.len()).unwrap_or(i64::MAX);
        rows.extend(window(scope, read_to, to, cursor == 0, v, wanted).await?);
        read_to = to;
    }
    let has_more = rows.len() > limit || read_to < head;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map_or(read_to, |last| last.seq)
    } else {
        read_to
    };

    let mut records = Records::load(&mut scope.tx, scope.tenant, &rows).await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let entity = entity(&row.entity)?;
        let id = row.entity_id;
        let change = if row.op == "delete" {
            Change {
                seq: row.seq,
                entity,
                id,
                op: ChangeOp::Delete,
                data: None,
            }
        } else {
            match records.take(entity, id) {
                Some(data) => Change {
                    seq: row.seq,
                    entity,
                    id,
                    op: ChangeOp::Upsert,
                    data: Some(data),
                },
                // Deleted since the head was read: its tombstone comes after the head.
                None => continue,
            }
        };
        changes.push(change);
    }
    if cursor > 0 && !v.everything() {
        let evicted = evictions(scope, cursor, next, v).await?;
        if !evicted.is_empty() {
            changes.extend(evicted);
            changes.sort_by_key(|c| c.seq);
        }
    }
    Ok(PullResponse {
        changes,
        cursor: next,
        has_more,
        head,
    })
}

/// Log windows per change a page may return, and windows per page at most.
const WINDOW_PER_CHANGE: i64 = 4;
const MAX_WINDOWS: usize = 64;

/// What the caller may see of the log in `(after, to]`, oldest first, at most `limit` rows;
/// without tombstones for a `snapshot` (a pull from 0).
async fn window(
    scope: &mut Scope,
    after: Cursor,
    to: Cursor,
    snapshot: bool,
    v: Visibility,
    limit: i64,
) -> ApiResult<Vec<LogRow>> {
    Ok(sqlx::query_as!(
        LogRow,
        "select seq, entity, entity_id, op from change_log
          where tenant_id = $1 and seq > $2 and seq <= $3
            and (op = 'upsert' or not $13)
            and coalesce(case entity
                when 'ticket' then $4 or ($5 and requester_id = $6)
                when 'comment' then ($4 or ($5 and requester_id = $6)) and (not internal or $7)
                when 'activity' then ($8 or ($9 and requester_id = $6)) and (not internal or $7)
                when 'customer' then $10
                when 'member' then $11
                when 'expense' then $4 or ($5 and requester_id = $6)
                when 'sla_policy' then $14
                when 'calendar' then $14
            end, false)
          order by seq
          limit $12",
        scope.tenant.as_uuid(),
        after,
        to,
        v.tickets_all,
        v.tickets_own,
        scope.user.as_uuid(),
        v.internal,
        v.activity_all,
        v.activity_own,
        v.customers,
        v.members,
        limit,
        snapshot,
        v.sla_settings,
    )
    .fetch_all(&mut *scope.tx)
    .await?)
}

/// After the caller's own membership changed (in `(cursor, up_to]`), everything of the log up
/// to that change that their role now hides, as `evict`s at that change's seq. A client that
/// had more before (an agent made requester) drops it; one that never had it ignores them.
async fn evictions(
    scope: &mut Scope,
    cursor: Cursor,
    up_to: Cursor,
    v: Visibility,
) -> ApiResult<Vec<Change>> {
    let changed = sqlx::query_scalar!(
        "select seq from change_log
          where tenant_id = $1 and entity = 'member' and entity_id = $2 and seq > $3 and seq <= $4",
        scope.tenant.as_uuid(),
        scope.user.as_uuid(),
        cursor,
        up_to,
    )
    .fetch_optional(&mut *scope.tx)
    .await?;
    let Some(at) = changed else {
        return Ok(Vec::new());
    };
    let hidden = sqlx::query!(
        "select entity, entity_id from change_log
          where tenant_id = $1 and seq <= $2 and op = 'upsert'
            and not coalesce(case entity
                when 'ticket' then $3 or ($4 and requester_id = $5)
                when 'comment' then ($3 or ($4 and requester_id = $5)) and (not internal or $6)
                when 'activity' then ($7 or ($8 and requester_id = $5)) and (not internal or $6)
                when 'customer' then $9
                when 'member' then $10
                when 'expense' then $3 or ($4 and requester_id = $5)
                when 'sla_policy' then $11
                when 'calendar' then $11
            end, false)
          order by seq",
        scope.tenant.as_uuid(),
        at,
        v.tickets_all,
        v.tickets_own,
        scope.user.as_uuid(),
        v.internal,
        v.activity_all,
        v.activity_own,
        v.customers,
        v.members,
        v.sla_settings,
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    hidden
        .into_iter()
        .map(|r| {
            Ok(Change {
                seq: at,
                entity: entity(&r.entity)?,
                id: r.entity_id,
                op: ChangeOp::Evict,
                data: None,
            })
        })
        .collect()
}

fn entity(text: &str) -> ApiResult<Entity> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("change_log has a bad entity {text:?}")))
}

/// The current records of a page, read with one query per kind, as JSON in their REST shape.
#[derive(Default)]
struct Records(HashMap<(Entity, Uuid), serde_json::Value>);

impl Records {
    async fn load(
        tx: &mut Transaction<'static, Postgres>,
        tenant: TenantId,
        rows: &[LogRow],
    ) -> ApiResult<Self> {
        let mut ids: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for row in rows.iter().filter(|r| r.op == "upsert") {
            ids.entry(row.entity.as_str())
                .or_default()
                .push(row.entity_id);
        }
        let mut records = Records::default();
        if let Some(ids) = ids.get("ticket") {
            for t in tickets::by_ids(tx, ids).await? {
                records.put(Entity::Ticket, t.id.as_uuid(), &t)?;
            }
        }
        if let Some(ids) = ids.get("comment") {
            for c in comments(tx, ids).await? {
                records.put(Entity::Comment, c.id.as_uuid(), &c)?;
            }
        }
        if let Some(ids) = ids.get("activity") {
            for a in activity(tx, ids).await? {
                records.put(Entity::Activity, a.id.as_uuid(), &a)?;
            }
        }
        if let Some(ids) = ids.get("customer") {
            for c in customers(tx, ids).await? {
                records.put(Entity::Customer, c.id.as_uuid(), &c)?;
            }
        }
        if let Some(ids) = ids.get("expense") {
            for e in expenses::by_ids(tx, ids).await? {
                records.put(Entity::Expense, e.id.as_uuid(), &e)?;
            }
        }
        // A tenant has a handful of SLA settings: read them all, keep the page's.
        if let Some(ids) = ids.get("sla_policy") {
            for p in crate::sla::policies(tx, tenant, None).await? {
                if ids.contains(&p.id.as_uuid()) {
                    records.put(Entity::SlaPolicy, p.id.as_uuid(), &p)?;
                }
            }
        }
        if let Some(ids) = ids.get("calendar") {
            for c in crate::sla::calendars(tx, tenant, None).await? {
                if ids.contains(&c.id.as_uuid()) {
                    records.put(Entity::Calendar, c.id.as_uuid(), &c)?;
                }
            }
        }
        if let Some(ids) = ids.get("member") {
            for m in members(tx, ids).await? {
                records.put(Entity::Member, m.user_id.as_uuid(), &m)?;
            }
        }
        Ok(records)
    }

    fn put(&mut self, entity: Entity, id: Uuid, record: &impl serde::Serialize) -> ApiResult<()> {
        let json = serde_json::to_value(record).map_err(anyhow::Error::from)?;
        self.0.insert((entity, id), json);
        Ok(())
    }

    fn take(&mut self, entity: Entity, id: Uuid) -> Option<serde_json::Value> {
        self.0.remove(&(entity, id))
    }
}

async fn comments(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> ApiResult<Vec<Comment>> {
    let rows = sqlx::query!(
        "select id, ticket_id, author_id, body, internal, created_at from comments where id = any($1)",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Comment {
            id: r.id.into(),
            ticket_id: r.ticket_id.into(),
            author_id: r.author_id.into(),
            body: r.body,
            internal: r.internal,
            created_at: r.created_at,
        })
        .collect())
}

async fn activity(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> ApiResult<Vec<Activity>> {
    let rows = sqlx::query!(
        "select id, ticket_id, actor_id, action, field, before, after, at from activity
          where id = any($1)",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Activity {
                id: r.id.into(),
                ticket_id: r.ticket_id.map(Into::into),
                actor_id: r.actor_id.into(),
                action: r.action.parse().map_err(anyhow::Error::from)?,
                field: r.field,
                before: r.before,
                after: r.after,
                at: r.at,
            })
        })
        .collect()
}

async fn customers(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> ApiResult<Vec<Customer>> {
    let rows = sqlx::query!(
        "select id, name, email, phone, company, notes, created_at, updated_at
           from customers where id = any($1)",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Customer {
            id: r.id.into(),
            name: r.name,
            email: r.email,
            phone: r.phone,
            company: r.company,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

async fn members(tx: &mut Transaction<'static, Postgres>, ids: &[Uuid]) -> ApiResult<Vec<Member>> {
    let rows = sqlx::query!(
        "select m.user_id, u.email, u.name, m.role from memberships m join users u on u.id = m.user_id
          where m.tenant_id = tallydesk_tenant() and m.user_id = any($1)",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Member {
                user_id: r.user_id.into(),
                email: r.email,
                name: r.name,
                role: r
                    .role
                    .parse()
                    .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?,
            })
        })
        .collect()
}

/// Drops the tenant's tombstones at or below `through` and raises its horizon there: clients
/// whose cursor is below it must pull from 0 again (409 `resync_required`). Run as the
/// database owner (or in a request transaction of the tenant).
#[tracing::instrument(skip(tx), err)]
pub async fn compact(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    through: Cursor,
) -> Result<u64, sqlx::Error> {
    let dropped = sqlx::query!(
        "delete from change_log where tenant_id = $1 and op = 'delete' and seq <= $2",
        tenant.as_uuid(),
        through,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query!(
        "update tenant_counters set change_log_horizon = greatest(change_log_horizon, $2)
          where tenant_id = $1",
        tenant.as_uuid(),
        through,
    )
    .execute(&mut **tx)
    .await?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_see_everything_and_requesters_their_own_tickets_without_internal_notes() {
        for role in [Role::Observer, Role::Agent, Role::Admin] {
            assert!(Visibility::of(role).everything(), "{role}");
        }
        let r = Visibility::of(Role::Requester);
        assert!(!r.everything());
        assert!(r.tickets_own && !r.tickets_all, "own tickets only");
        assert!(r.activity_own && !r.activity_all);
        assert!(!r.internal, "never internal notes");
        assert!(!r.customers && !r.members);
        assert!(!r.sla_settings, "nor the SLA settings");
    }

    #[test]
    fn every_entity_name_in_the_log_parses() {
        for name in [
            "ticket",
            "comment",
            "activity",
            "customer",
            "member",
            "expense",
            "sla_policy",
            "calendar",
        ] {
            assert!(entity(name).is_ok(), "{name}");
        }
        assert!(entity("invoice").is_err());
    }
}
