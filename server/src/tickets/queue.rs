//! The ticket queue: filters, full-text search, sort and keyset pagination.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use tallydesk_shared::api::{ErrorCode, Page, Ticket, TicketWithSla};
use tallydesk_shared::sla::SlaState;
use tallydesk_shared::ticket::{Category, Priority};
use tallydesk_shared::{Action, CustomerId, Status, TicketId};
use uuid::Uuid;

use super::{TICKET_COLUMNS, TicketRow};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::sla;

/// Filters, sort and page of the ticket queue, as the caller gave them.
#[derive(Debug, Default)]
pub(crate) struct TicketQuery {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// `me`, `none`, or a user id.
    pub assignee: Option<String>,
    /// `me` or a user id.
    pub requester: Option<String>,
    pub category: Option<String>,
    pub customer: Option<CustomerId>,
    /// Full-text search over title, description and comments.
    pub q: Option<String>,
    /// Tickets whose most urgent SLA target is in this state now.
    pub sla_state: Option<SlaState>,
    /// `created_at`, `updated_at`, `priority` or `sla_due` (breaching soonest first: breached
    /// tickets, then by deadline, then tickets without a running SLA); prefix `-` for
    /// descending. Default `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SortKey {
    CreatedAt,
    UpdatedAt,
    Priority,
    SlaDue,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    key: SortKey,
    desc: bool,
    /// The last item's sort value: a timestamp or a priority rank.
    at: Option<DateTime<Utc>>,
    rank: Option<i16>,
    id: Uuid,
}

fn parse_sort(sort: Option<&str>) -> ApiResult<(SortKey, bool)> {
    let sort = sort.unwrap_or("-created_at");
    let (desc, name) = match sort.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, sort),
    };
    let key = match name {
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        "priority" => SortKey::Priority,
        "sla_due" => SortKey::SlaDue,
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!(
                    "sort: {sort:?} is not one of created_at, updated_at, priority, sla_due (prefix - for descending)"
                ),
            )
.on_field("sort"));
        }
    };
    Ok((key, desc))
}

fn user_filter(scope: &Scope, field: &str, value: &str) -> ApiResult<Option<Uuid>> {
    match value {
        "me" => Ok(Some(scope.user.as_uuid())),
        "none" if field == "assignee" => Ok(None),
        other => other.parse::<Uuid>().map(Some).map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("{field}: expected me, none or a user id"),
            )
        }),
    }
}

/// One page of the queue at `now`; requesters see only their own tickets.
pub(crate) async fn page(
    scope: &mut Scope,
    query: &TicketQuery,
    now: DateTime<Utc>,
) -> ApiResult<Page<TicketWithSla>> {
    scope.require(Action::ViewTicket)?;
    let (key, desc) = parse_sort(query.sort.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit: must be between 1 and 200",
        )
        .on_field("limit"));
    }
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(c) = &cursor
        && (c.key != key || c.desc != desc)
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidCursor,
            "cursor: it belongs to a different sort; start again without a cursor",
        )
        .on_field("cursor"));
    }

    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("select ");
    qb.push(TICKET_COLUMNS).push(format_args!(
        ", priority_rank, {SLA_DEADLINE} as sla_deadline
         from tickets left join ticket_sla s on s.ticket_id = tickets.id
         where tickets.tenant_id = "
    ));
    qb.push_bind(scope.tenant.as_uuid());
    let own_only = tallydesk_shared::permission::access(scope.role, Action::ViewTicket)
        == tallydesk_shared::Access::OwnTickets;
    if own_only {
        qb.push(" and requester_id = ")
            .push_bind(scope.user.as_uuid());
    }
    if let Some(status) = query.status {
        qb.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(priority) = query.priority {
        qb.push(" and priority = ").push_bind(priority.as_str());
    }
    if let Some(assignee) = &query.assignee {
        match user_filter(scope, "assignee", assignee)? {
            Some(id) => qb.push(" and assignee_id = ").push_bind(id),
            None => qb.push(" and assignee_id is null"),
        };
    }
    if let Some(requester) = &query.requester
        && let Some(id) = user_filter(scope, "requester", requester)?
    {
        qb.push(" and requester_id = ").push_bind(id);
    }
    if let Some(category) = &query.category {
        qb.push(" and category = ")
            .push_bind(Category::parse(category)?.as_str().to_owned());
    }
    if let Some(customer) = query.customer {
        qb.push(" and customer_id = ").push_bind(customer.as_uuid());
    }
    if let Some(state) = query.sla_state {
        let state = serde_json::to_value(state).map_err(anyhow::Error::from)?;
        qb.push(" and sla_state_at(s.idle_state, s.at_risk_at, s.due_at, s.breached_at, ")
            .push_bind(now)
            .push(") = ")
            .push_bind(state.as_str().unwrap_or_default().to_owned());
    }
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() > 200 {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "q: at most 200 characters",
            )
            .on_field("q"));
        }
        qb.push(" and id in (select tallydesk_search(")
            .push_bind(q.to_owned())
            .push(", ")
            .push_bind(scope.role_may(Action::ViewInternalNotes))
            .push("))");
    }
    let column = match key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Priority => "priority_rank",
        SortKey::SlaDue => SLA_DEADLINE,
    };
    let dir = if desc { "desc" } else { "asc" };
    if let Some(c) = &cursor {
        qb.push(format_args!(
            " and ({column}, id) {} (",
            if desc { "<" } else { ">" }
        ));
        match key {
            SortKey::Priority => qb.push_bind(c.rank.unwrap_or_default()),
            _ => qb.push_bind(c.at.unwrap_or_default()),
        };
        qb.push(", ").push_bind(c.id).push(")");
    }
    qb.push(format_args!(" order by {column} {dir}, id {dir} limit "));
    qb.push_bind(i64::from(limit) + 1);

    let mut rows: Vec<ListRow> = qb.build_query_as().fetch_all(&mut *scope.tx).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| {
            encode_cursor(&Cursor {
                key,
                desc,
                at: match key {
                    SortKey::CreatedAt => Some(last.ticket.created_at),
                    SortKey::UpdatedAt => Some(last.ticket.updated_at),
                    SortKey::SlaDue => Some(last.sla_deadline),
                    SortKey::Priority => None,
                },
                rank: (key == SortKey::Priority).then_some(last.priority_rank),
                id: last.ticket.id,
            })
        })
    } else {
        None
    };
    let tickets = rows
        .into_iter()
        .map(|r| Ticket::try_from(r.ticket))
        .collect::<ApiResult<Vec<_>>>()?;
    let ids: Vec<TicketId> = tickets.iter().map(|t| t.id).collect();
    let mut slas = sla::current(&mut scope.tx, scope.tenant, &ids, now).await?;
    let items = tickets
        .into_iter()
        .map(|ticket| TicketWithSla {
            sla: slas.remove(&ticket.id).unwrap_or_default(),
            ticket,
        })
        .collect();
    Ok(Page { items, next_cursor })
}

#[derive(sqlx::FromRow)]
struct ListRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    priority_rank: i16,
    sla_deadline: DateTime<Utc>,
}

/// The `sla_due` sort key: the ticket's earliest breach or deadline, else the far end.
const SLA_DEADLINE: &str = "coalesce(s.deadline, '9999-12-31T00:00:00Z'::timestamptz)";

fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode_cursor(text: &str) -> ApiResult<Cursor> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidCursor,
                "cursor: not a cursor this server gave out",
            )
            .on_field("cursor")
        })
}
