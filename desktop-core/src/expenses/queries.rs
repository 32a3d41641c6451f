//! Reading expenses from the local store: one row shape for every read, who may see what, the
//! list with its filters and totals; and the statement parts the commands share.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{QueryBuilder, Sqlite};
use tallydesk_shared::api::ExpenseApproval;
use tallydesk_shared::expense::{Currency, EXPENSE_CATEGORIES, ExpenseStatus, Merchant};
use tallydesk_shared::ticket::Notes;
use tallydesk_shared::{ExpenseId, Role, TicketId, UserId};

use super::input::{Parsed, StoredAmounts, StoredItem, items_json, warnings};
use super::{
    ClaimRef, CurrencyTotal, Decision, Expense, ExpenseItem, ExpenseList, ExpenseQuery,
    ReceiptImage,
};
use crate::desk::{Desk, parse_text};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::time::{from_micros, opt_from_micros, to_micros};

const SELECT: &str = "select e.id, e.status, e.requester_id, u.name as requester_name, e.ticket_id,
        t.number, t.title, t.status as ticket_status, e.merchant, e.spent_on, e.currency,
        e.amount_minor, e.subtotal_minor, e.tax_minor, e.category, e.items, e.note,
        e.image_sha256, i.media_type, i.width, i.height, e.source_name, e.decided_at,
        d.name as decided_by_name, e.decision_note, e.created_at, e.updated_at, e.version,
        b.data ->> '$.approvals' as approvals, b.data ->> '$.approvals_required' as approvals_required,
        exists (select 1 from outbox o
                 where o.state = 'pending' and o.intent ->> '$.op' = 'expense.decide'
                   and o.intent ->> '$.args.id' = e.id) as decision_pending
   from expenses e
   join users u on u.id = e.requester_id
   left join tickets t on t.id = e.ticket_id
   left join receipt_images i on i.sha256 = e.image_sha256
   left join users d on d.id = e.decided_by
   left join sync_base b on b.entity = 'expense' and b.id = e.id
  where e.deleted_at is null";

/// A row of [`SELECT`]: an expense with its requester, claim ticket, image and decider, and
/// the approvals the server last reported.
#[derive(sqlx::FromRow)]
struct ExpenseRow {
    id: ExpenseId,
    status: String,
    requester_id: UserId,
    requester_name: String,
    ticket_id: Option<TicketId>,
    number: Option<i64>,
    title: Option<String>,
    ticket_status: Option<String>,
    merchant: Option<String>,
    spent_on: Option<String>,
    currency: String,
    amount_minor: Option<i64>,
    subtotal_minor: Option<i64>,
    tax_minor: Option<i64>,
    category: String,
    /// JSON: [`StoredItem`]s.
    items: String,
    note: Option<String>,
    image_sha256: Option<String>,
    media_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    source_name: Option<String>,
    decided_at: Option<i64>,
    decided_by_name: Option<String>,
    decision_note: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: i64,
    /// JSON: the server's `[{by, at}]`; absent for an expense the server has not sent.
    approvals: Option<String>,
    approvals_required: Option<i64>,
    /// A decision of this desk's user waits in the outbox.
    decision_pending: bool,
}

impl ExpenseRow {
    /// The expense as `me` sees it: an approval of theirs still in the outbox counts.
    fn into_expense(self, me: UserId) -> DeskResult<Expense> {
        let currency = Currency::parse(&self.currency).map_err(|_| {
            DeskError::new(ErrorCode::Internal, "bad currency in the local database")
        })?;
        let items: Vec<StoredItem> = serde_json::from_str(&self.items)
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("bad expense items: {e}")))?;
        let amounts = StoredAmounts {
            total: self.amount_minor,
            subtotal: self.subtotal_minor,
            tax: self.tax_minor,
            items,
        };
        let status: ExpenseStatus = parse_text(&self.status, "expense status")?;
        let ticket = match (self.ticket_id, self.number, self.title, self.ticket_status) {
            (None, ..) => None,
            (Some(id), Some(number), Some(title), Some(status)) => Some(ClaimRef {
                id,
                number,
                title,
                status: parse_text(&status, "status")?,
            }),
            (Some(id), ..) => {
                return Err(DeskError::new(
                    ErrorCode::Internal,
                    format!("expense {} names ticket {id}, which is not here", self.id),
                ));
            }
        };
        let image = self.image_sha256.map(|sha256| ReceiptImage {
            sha256,
            media_type: self.media_type.unwrap_or_default(),
            width: self.width.unwrap_or_default(),
            height: self.height.unwrap_or_default(),
        });
        let decision = opt_from_micros(self.decided_at).map(|at| Decision {
            approved: status == ExpenseStatus::Approved,
            by_name: self.decided_by_name.unwrap_or_default(),
            at,
            note: self.decision_note,
        });
        let spent_on = self
            .spent_on
            .as_deref()
            .map(|d| parse_text::<NaiveDate>(d, "date"))
            .transpose()?;
        let approvals = self
            .approvals
            .as_deref()
            .map(serde_json::from_str::<Vec<ExpenseApproval>>)
            .transpose()
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("bad approvals: {e}")))?
            .unwrap_or_default();
        let mut approved_by: Vec<UserId> = approvals.into_iter().map(|a| a.by).collect();
        // Still submitted with a decision of mine queued: my first approval of two.
        if self.decision_pending && status == ExpenseStatus::Submitted && !approved_by.contains(&me)
        {
            approved_by.push(me);
        }
        let fmt = |v: Option<i64>| v.map(|m| currency.format_amount(m));
        Ok(Expense {
            id: self.id,
            status,
            requester_id: self.requester_id,
            requester_name: self.requester_name,
            ticket,
            merchant: self.merchant,
            spent_on,
            total: fmt(amounts.total),
            subtotal: fmt(amounts.subtotal),
            tax: fmt(amounts.tax),
            category: self.category,
            items: amounts
                .items
                .iter()
                .map(|i| ExpenseItem {
                    description: i.description.clone(),
                    quantity: i.quantity.clone(),
                    amount: currency.format_amount(i.amount_minor),
                })
                .collect(),
            warnings: warnings(&currency, &amounts),
            currency: currency.as_str().to_owned(),
            note: self.note,
            image,
            source_name: self.source_name,
            decision,
            approved_by,
            approvals_required: self
                .approvals_required
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            version: self.version,
        })
    }
}

/// A claim ticket an expense can be filed on.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: TicketId,
    number: i64,
    title: String,
    status: String,
}

impl Desk {
    /// Who may see an expense: its requester; for others, what they may see of its ticket.
    /// Drafts are private to their requester.
    fn push_visible(&self, qb: &mut QueryBuilder<'_, Sqlite>) {
        qb.push(" and (e.requester_id = ").push_bind(self.me().id);
        if self.role() != Role::Requester {
            qb.push(" or e.status <> 'draft'");
        }
        qb.push(")");
    }

    pub(super) async fn load_expense(&self, id: ExpenseId) -> DeskResult<Expense> {
        let mut qb = QueryBuilder::new(SELECT);
        qb.push(" and e.id = ").push_bind(id);
        self.push_visible(&mut qb);
        qb.build_query_as::<ExpenseRow>()
            .fetch_optional(&self.store().pool)
            .await?
            .ok_or_else(|| DeskError::not_found("expense"))?
            .into_expense(self.me().id)
    }

    /// Expenses matching `q`, newest receipt first, with totals per currency.
    pub async fn list_expenses(&self, q: &ExpenseQuery) -> DeskResult<ExpenseList> {
        let mut qb = QueryBuilder::new(SELECT);
        self.push_visible(&mut qb);
        if let Some(from) = q.from {
            qb.push(" and e.spent_on >= ").push_bind(from.to_string());
        }
        if let Some(to) = q.to {
            qb.push(" and e.spent_on <= ").push_bind(to.to_string());
        }
        if let (Some(from), Some(to)) = (q.from, q.to)
            && from > to
        {
            return Err(DeskError::invalid(
                "to",
                format!("the range ends ({to}) before it starts ({from})"),
            ));
        }
        if let Some(m) = q
            .merchant
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            qb.push(" and e.merchant like ")
                .push_bind(format!("%{}%", escape_like(m)))
                .push(" escape '\\'");
        }
        if let Some(c) = q.category.as_deref().filter(|c| !c.is_empty()) {
            qb.push(" and e.category = ").push_bind(c.to_owned());
        }
        if let Some(s) = q.status {
            qb.push(" and e.status = ").push_bind(s.as_str());
        }
        if let Some(t) = q.ticket_id {
            qb.push(" and e.ticket_id = ").push_bind(t);
        }
        qb.push(" order by e.spent_on is null, e.spent_on desc, e.id desc");
        let expenses = qb
            .build_query_as::<ExpenseRow>()
            .fetch_all(&self.store().pool)
            .await?
            .into_iter()
            .map(|row| row.into_expense(self.me().id))
            .collect::<DeskResult<Vec<_>>>()?;
        let mut sums: BTreeMap<String, (i64, u32)> = BTreeMap::new();
        for e in &expenses {
            if matches!(e.status, ExpenseStatus::Draft | ExpenseStatus::Rejected) {
                continue;
            }
            let (Some(total), Ok(currency)) = (&e.total, Currency::parse(&e.currency)) else {
                continue;
            };
            let minor = currency.parse_amount("total", total).unwrap_or_default();
            let entry = sums.entry(e.currency.clone()).or_default();
            entry.0 += minor;
            entry.1 += 1;
        }
        let totals = sums
            .into_iter()
            .map(|(code, (minor, count))| CurrencyTotal {
                total: Currency::parse(&code)
                    .map(|c| c.format_amount(minor))
                    .unwrap_or_default(),
                currency: code,
                count,
            })
            .collect();
        Ok(ExpenseList {
            expenses,
            totals,
            categories: EXPENSE_CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
        })
    }

    /// The current user's open expense-claim tickets, newest first, to file an expense on.
    pub async fn open_claims(&self) -> DeskResult<Vec<ClaimRef>> {
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "select id, number, title, status from tickets
              where deleted_at is null and category = 'expense' and requester_id = ?
                and status not in ('resolved', 'closed')
              order by created_at desc limit 50",
        )
        .bind(self.me().id)
        .fetch_all(&self.store().pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimRef {
                    id: r.id,
                    number: r.number,
                    title: r.title,
                    status: parse_text(&r.status, "status")?,
                })
            })
            .collect()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds a draft's fields in the order the update statements list them.
pub(super) fn bind_fields<'q>(
    query: SqliteQuery<'q>,
    p: &'q Parsed,
) -> DeskResult<SqliteQuery<'q>> {
    Ok(query
        .bind(p.merchant.as_ref().map(Merchant::as_str))
        .bind(p.spent_on.map(|d| d.to_string()))
        .bind(p.currency.as_str())
        .bind(p.total)
        .bind(p.subtotal)
        .bind(p.tax)
        .bind(p.category.as_str())
        .bind(items_json(&p.items)?)
        .bind(p.note.as_ref().map(Notes::as_str)))
}

pub(super) async fn touch_ticket(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    ticket: TicketId,
    now: DateTime<Utc>,
) -> DeskResult<()> {
    sqlx::query("update tickets set updated_at = ? where id = ?")
        .bind(to_micros(now))
        .bind(ticket)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
