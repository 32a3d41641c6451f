//! The queue: filtered, sorted pages of tickets, with the counts of the saved views.

use sqlx::{FromRow, QueryBuilder, Sqlite};
use tallydesk_shared::permission::access;
use tallydesk_shared::ticket::Category;
use tallydesk_shared::{Access, Action, TicketId};

use super::{Desk, parse_text};
use crate::error::{DeskError, DeskResult};
use crate::model::{AssigneeFilter, TicketPage, TicketQuery, TicketRow, TicketSort, TicketView};
use crate::time::from_micros;

const DEFAULT_PAGE: u32 = 100;
pub(super) const MAX_PAGE: u32 = 500;

impl Desk {
    /// The number of tickets in each saved view, as the user sees them.
    pub(super) async fn view_counts(&self) -> DeskResult<Vec<(TicketView, u32)>> {
        let mut view_counts = Vec::new();
        for view in [
            TicketView::All,
            TicketView::MyOpen,
            TicketView::Unassigned,
            TicketView::OnHold,
            TicketView::RecentlyResolved,
        ] {
            let query = TicketQuery {
                view: Some(view),
                ..Default::default()
            };
            let mut qb = QueryBuilder::new("select count(*) from tickets t where ");
            self.push_filters(&mut qb, &query)?;
            let n: i64 = qb.build_query_scalar().fetch_one(&self.store.pool).await?;
            view_counts.push((view, u32::try_from(n).unwrap_or(u32::MAX)));
        }
        Ok(view_counts)
    }

    fn push_filters(&self, qb: &mut QueryBuilder<'_, Sqlite>, q: &TicketQuery) -> DeskResult<()> {
        qb.push("t.deleted_at is null");
        if access(self.role(), Action::ViewTicket) == Access::OwnTickets {
            qb.push(" and t.requester_id = ").push_bind(self.me_id());
        }
        match q.view.unwrap_or(TicketView::All) {
            TicketView::All => {}
            TicketView::MyOpen => {
                qb.push(" and t.assignee_id = ").push_bind(self.me_id());
                qb.push(" and t.status in ('open', 'in_progress', 'on_hold')");
            }
            TicketView::Unassigned => {
                qb.push(
                    " and t.assignee_id is null and t.status in ('open', 'in_progress', 'on_hold')",
                );
            }
            TicketView::OnHold => {
                qb.push(" and t.status = 'on_hold'");
            }
            TicketView::RecentlyResolved => {
                qb.push(" and t.status in ('resolved', 'closed')");
            }
        }
        if let Some(status) = q.status {
            qb.push(" and t.status = ").push_bind(status.as_str());
        }
        if let Some(priority) = q.priority {
            qb.push(" and t.priority = ").push_bind(priority.as_str());
        }
        match &q.assignee {
            None => {}
            Some(AssigneeFilter::Me) => {
                qb.push(" and t.assignee_id = ").push_bind(self.me_id());
            }
            Some(AssigneeFilter::Nobody) => {
                qb.push(" and t.assignee_id is null");
            }
            Some(AssigneeFilter::User(user)) => {
                qb.push(" and t.assignee_id = ").push_bind(*user);
            }
        }
        if let Some(category) = q.category.as_deref().filter(|c| !c.is_empty()) {
            qb.push(" and t.category = ")
                .push_bind(Category::parse(category)?.as_str().to_owned());
        }
        if let Some(customer) = q.customer {
            qb.push(" and t.customer_id = ").push_bind(customer);
        }
        if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            if search.chars().count() > 200 {
                return Err(DeskError::invalid(
                    "search",
                    "search: at most 200 characters",
                ));
            }
            qb.push(" and t.rowid in (select rowid from ticket_search where ticket_search match ")
                .push_bind(fts_query(search))
                .push(")");
        }
        Ok(())
    }

    /// One page of the queue, with the number of matching tickets.
    pub async fn list_tickets(&self, q: &TicketQuery) -> DeskResult<TicketPage> {
        self.require(Action::ViewTicket)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DeskError::invalid(
                "limit",
                format!("limit: between 1 and {MAX_PAGE}"),
            ));
        }
        let sort = match (q.view, q.sort) {
            (Some(TicketView::RecentlyResolved), TicketSort::Newest) => TicketSort::RecentlyUpdated,
            (_, sort) => sort,
        };
        let (column, desc) = match sort {
            TicketSort::Newest => ("t.created_at", true),
            TicketSort::Oldest => ("t.created_at", false),
            TicketSort::RecentlyUpdated => ("t.updated_at", true),
            TicketSort::PriorityHighFirst => ("t.priority_rank", true),
        };
        let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;

        let mut count = QueryBuilder::new("select count(*) from tickets t where ");
        self.push_filters(&mut count, q)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.store.pool)
            .await?;
        let total = u32::try_from(total).unwrap_or(u32::MAX);

        let mut qb = QueryBuilder::new(ROW_SELECT);
        self.push_filters(&mut qb, q)?;
        if let Some(c) = &cursor {
            qb.push(format_args!(
                " and ({column}, t.id) {} (",
                if desc { "<" } else { ">" }
            ))
            .push_bind(c.key)
            .push(", ")
            .push_bind(c.id.clone())
            .push(")");
        }
        let dir = if desc { "desc" } else { "asc" };
        qb.push(format_args!(" order by {column} {dir}, t.id {dir} limit "))
            .push_bind(i64::from(limit) + 1);
        let rows: Vec<QueueRow> = qb.build_query_as().fetch_all(&self.store.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            keys.push(match sort {
                TicketSort::Newest | TicketSort::Oldest => row.created_at,
                TicketSort::RecentlyUpdated => row.updated_at,
                TicketSort::PriorityHighFirst => row.priority_rank,
            });
            items.push(row.into_row()?);
        }
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            let last = &items[items.len() - 1];
            Some(
                Cursor {
                    key: keys[items.len() - 1],
                    id: last.id.to_string(),
                }
                .encode(),
            )
        } else {
            None
        };
        let ids: Vec<TicketId> = items.iter().map(|t| t.id).collect();
        let mut slas = self.worst_slas(&ids).await?;
        for item in &mut items {
            item.sla = slas.remove(&item.id);
        }
        Ok(TicketPage {
            items,
            next_cursor,
            total,
        })
    }
}

/// Words to an FTS5 query: every word required, each matching the start of a word, so
/// search-as-you-type finds "authenticator" at "authentic".
fn fts_query(search: &str) -> String {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

const ROW_SELECT: &str =
    "select t.id, t.number, t.title, t.status, t.priority, t.category, t.created_at,
        t.updated_at, t.priority_rank, r.name as requester_name, a.name as assignee_name,
        c.name as customer_name
   from tickets t
   join users r on r.id = t.requester_id
   left join users a on a.id = t.assignee_id
   left join customers c on c.id = t.customer_id and c.deleted_at is null
  where ";

/// A row of [`ROW_SELECT`].
#[derive(FromRow)]
struct QueueRow {
    id: TicketId,
    number: i64,
    title: String,
    status: String,
    priority: String,
    category: String,
    created_at: i64,
    updated_at: i64,
    priority_rank: i64,
    requester_name: String,
    assignee_name: Option<String>,
    customer_name: Option<String>,
}

impl QueueRow {
    fn into_row(self) -> DeskResult<TicketRow> {
        Ok(TicketRow {
            id: self.id,
            number: self.number,
            title: self.title,
            status: parse_text(&self.status, "status")?,
            priority: parse_text(&self.priority, "priority")?,
            category: self.category,
            requester_name: self.requester_name,
            assignee_name: self.assignee_name,
            customer_name: self.customer_name,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            sla: None,
        })
    }
}

/// Where the next page starts: the last row's sort key and id.
struct Cursor {
    key: i64,
    id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        format!("{}~{}", self.key, self.id)
    }

    fn decode(text: &str) -> DeskResult<Cursor> {
        let bad = || DeskError::invalid("cursor", "cursor: not one this app gave out");
        let (key, id) = text.split_once('~').ok_or_else(bad)?;
        Ok(Cursor {
            key: key.parse().map_err(|_| bad())?,
            id: id.parse::<uuid::Uuid>().map_err(|_| bad())?.to_string(),
        })
    }
}
