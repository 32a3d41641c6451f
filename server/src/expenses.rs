//! Expenses: filed on expense-claim tickets from the desktop (sync's `expense.create`), then
//! approved or rejected (`expense.decide`). A submitted expense never changes otherwise; the
//! database refuses it too (`expenses_immutable`).
//!
//! Segregation of duties: an expense names only a receipt its submitter uploaded; nobody
//! decides an expense they submitted; and above the tenant's dual-approval amount
//! ([`ExpensePolicy`]) an expense stays submitted after a first approval until a second,
//! different approver approves it (a rejection at any point rejects it).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{
    ErrorCode, Expense, ExpenseApproval, ExpenseLine, ExpensePolicy, ReceiptRef,
};
use tallydesk_shared::expense::{
    Currency, EXPENSE_CATEGORIES, ExpenseStatus, ItemDescription, MAX_MINOR, Merchant, OwnExpense,
    approvals_required,
};
use tallydesk_shared::sync::{ExpenseCreate, ExpenseDecide};
use tallydesk_shared::ticket::FieldError;
use tallydesk_shared::{Action, Status, TicketId};
use uuid::Uuid;

use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::blobs::{self, Sha256};
use crate::error::{ApiError, ApiResult};
use crate::tickets;

/// The longest note or reason, in characters.
const MAX_NOTE_CHARS: usize = 20_000;

/// An expense row as stored.
struct ExpenseRow {
    id: Uuid,
    ticket_id: Uuid,
    status: String,
    merchant: String,
    spent_on: NaiveDate,
    currency: String,
    amount_minor: i64,
    subtotal_minor: Option<i64>,
    tax_minor: Option<i64>,
    category: String,
    items: serde_json::Value,
    note: Option<String>,
    receipt_sha256: Option<String>,
    receipt_media_type: Option<String>,
    receipt_size: Option<i64>,
    submitted_by: Uuid,
    submitted_at: DateTime<Utc>,
    decided_by: Option<Uuid>,
    decided_at: Option<DateTime<Utc>>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    /// `[{by, at}]`, oldest first.
    approvals: serde_json::Value,
    dual_approval_above_minor: Option<i64>,
}

impl TryFrom<ExpenseRow> for Expense {
    type Error = ApiError;

    fn try_from(r: ExpenseRow) -> ApiResult<Expense> {
        let corrupt =
            |what: &str| ApiError::Internal(anyhow::anyhow!("expense {} has a bad {what}", r.id));
        let receipt = match (r.receipt_sha256, r.receipt_media_type, r.receipt_size) {
            (Some(sha256), Some(media_type), Some(size)) => Some(ReceiptRef {
                sha256,
                media_type,
                size,
            }),
            _ => None,
        };
        let approvals: Vec<ExpenseApproval> =
            serde_json::from_value(r.approvals).map_err(|_| corrupt("approvals"))?;
        let status: ExpenseStatus = r.status.parse().map_err(|_| corrupt("status"))?;
        // Pending: what the tenant's rule asks now. Decided: what it took.
        let approvals_required = if status == ExpenseStatus::Submitted {
            approvals_required(r.amount_minor, r.dual_approval_above_minor)
        } else {
            u32::try_from(approvals.len()).unwrap_or(u32::MAX).max(1)
        };
        Ok(Expense {
            id: r.id.into(),
            ticket_id: r.ticket_id.into(),
            status,
            merchant: r.merchant,
            spent_on: r.spent_on,
            currency: r.currency,
            amount_minor: r.amount_minor,
            subtotal_minor: r.subtotal_minor,
            tax_minor: r.tax_minor,
            category: r.category,
            items: serde_json::from_value(r.items).map_err(|_| corrupt("items"))?,
            note: r.note,
            receipt,
            submitted_by: r.submitted_by.into(),
            submitted_at: r.submitted_at,
            decided_by: r.decided_by.map(Into::into),
            decided_at: r.decided_at,
            reason: r.reason,
            approvals,
            approvals_required,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// The expenses filed on a claim ticket, oldest first, for whoever may see the ticket.
pub(crate) async fn for_ticket(scope: &mut Scope, id: TicketId) -> ApiResult<Vec<Expense>> {
    tickets::load(scope, id, Action::ViewTicket).await?;
    let ids = sqlx::query_scalar!(
        "select id from expenses where ticket_id = $1 order by created_at, id",
        id.as_uuid()
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    let mut expenses = by_ids(&mut scope.tx, &ids).await?;
    expenses.sort_by_key(|e| ids.iter().position(|id| *id == e.id.as_uuid()));
    Ok(expenses)
}

/// The expenses with these ids, in no particular order (one query, for sync's pull).
pub(crate) async fn by_ids(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> ApiResult<Vec<Expense>> {
    let rows = sqlx::query_as!(
        ExpenseRow,
        r#"select e.id, e.ticket_id, e.status, e.merchant, e.spent_on, e.currency,
                  e.amount_minor, e.subtotal_minor, e.tax_minor, e.category, e.items, e.note,
                  e.receipt_sha256, e.receipt_media_type, e.receipt_size, e.submitted_by,
                  e.submitted_at, e.decided_by, e.decided_at, e.reason, e.created_at,
                  e.updated_at, e.version,
                  coalesce((select jsonb_agg(jsonb_build_object('by', a.approved_by,
                                                                'at', a.approved_at)
                                             order by a.approved_at, a.approved_by)
                              from expense_approvals a where a.expense_id = e.id),
                           '[]') as "approvals!",
                  (select t.dual_approval_above_minor from tenants t where t.id = e.tenant_id)
                      as dual_approval_above_minor
             from expenses e where e.id = any($1)"#,
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Expense::try_from).collect()
}

/// A trimmed optional text: empty is absent.
fn optional_text(field: &'static str, input: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(value) = input.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let len = value.chars().count();
    if len > MAX_NOTE_CHARS {
        return Err(FieldError::TooLong {
            field,
            max: MAX_NOTE_CHARS,
            len,
        });
    }
    Ok(Some(value.to_owned()))
}

fn amount(field: &'static str, minor: i64) -> Result<i64, FieldError> {
    if minor < 0 {
        return Err(FieldError::Invalid {
            field,
            message: "must not be negative".to_owned(),
        });
    }
    Ok(minor)
}

/// An expense's fields, parsed.
struct Submitted {
    merchant: Merchant,
    currency: Currency,
    category: &'static str,
    items: Vec<ExpenseLine>,
    note: Option<String>,
    receipt: Option<(Sha256, String, i64)>,
}

fn parse(e: &ExpenseCreate, today: NaiveDate) -> Result<Submitted, FieldError> {
    let merchant = Merchant::parse(&e.merchant)?;
    let currency = Currency::parse(&e.currency)?;
    amount("amount_minor", e.amount_minor)?;
    e.subtotal_minor
        .map(|m| amount("subtotal_minor", m))
        .transpose()?;
    e.tax_minor.map(|m| amount("tax_minor", m)).transpose()?;
    if e.spent_on > today + chrono::Days::new(1) {
        return Err(FieldError::Invalid {
            field: "spent_on",
            message: format!("{} is in the future", e.spent_on),
        });
    }
    let wanted = e.category.as_deref().map(str::trim).unwrap_or("other");
    let category = EXPENSE_CATEGORIES
        .into_iter()
        .find(|c| *c == wanted)
        .ok_or_else(|| FieldError::Invalid {
            field: "category",
            message: format!(
                "{wanted:?} is not an expense category (one of {})",
                EXPENSE_CATEGORIES.join(", ")
            ),
        })?;
    let items = e
        .items
        .iter()
        .map(|item| {
            Ok(ExpenseLine {
                description: ItemDescription::parse(&item.description)?.into_inner(),
                quantity: optional_text("quantity", item.quantity.as_deref())?,
                amount_minor: amount("items.amount_minor", item.amount_minor)?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let receipt = e
        .receipt
        .as_ref()
        .map(|r| {
            let sha256 = Sha256::parse(&r.sha256).map_err(|message| FieldError::Invalid {
                field: "receipt.sha256",
                message,
            })?;
            let media_type =
                blobs::image_type(&r.media_type).ok_or_else(|| FieldError::Invalid {
                    field: "receipt.media_type",
                    message: format!("{:?} is not an image type receipts may have", r.media_type),
                })?;
            if !(0..=blobs::MAX_BLOB_BYTES as i64).contains(&r.size) {
                return Err(FieldError::Invalid {
                    field: "receipt.size",
                    message: format!("must be between 0 and {} bytes", blobs::MAX_BLOB_BYTES),
                });
            }
            Ok((sha256, media_type.to_owned(), r.size))
        })
        .transpose()?;
    Ok(Submitted {
        merchant,
        currency,
        category,
        items,
        note: optional_text("note", e.note.as_deref())?,
        receipt,
    })
}

/// Files a submitted expense with the client's id on its claim ticket, in the scope's
/// transaction. An id that exists already is `expense_immutable`: corrections are new expenses.
pub(crate) async fn create(
    scope: &mut Scope,
    e: &ExpenseCreate,
    now: DateTime<Utc>,
) -> ApiResult<Expense> {
    let ticket = tickets::load_for_update(scope, e.ticket_id, Action::SubmitExpense).await?;
    if matches!(ticket.status, Status::Resolved | Status::Closed) {
        return Err(ApiError::conflict(
            ErrorCode::TicketClosed,
            format!(
                "ticket #{} is {}: file the expense on an open claim or a new one",
                ticket.number, ticket.status
            ),
        ));
    }
    let p = parse(e, now.date_naive())?;
    let taken = sqlx::query_scalar!("select status from expenses where id = $1", e.id.as_uuid())
        .fetch_optional(&mut *scope.tx)
        .await?;
    if let Some(status) = taken {
        return Err(ApiError::conflict(
            ErrorCode::ExpenseImmutable,
            format!(
                "this expense was {status} already and never changes; file a correction as a new expense"
            ),
        ));
    }
    if let Some((sha256, _, _)) = &p.receipt
        && !blobs::uploaded_by(&mut scope.tx, sha256, scope.user).await?
    {
        return Err(FieldError::Invalid {
            field: "receipt.sha256",
            message: format!(
                "you have not uploaded receipt image {sha256} in this tenant: upload it \
                 (PUT /api/v1/blobs/{sha256}) before filing the expense that names it"
            ),
        }
        .into());
    }
    let items = serde_json::to_value(&p.items).map_err(anyhow::Error::from)?;
    let (sha256, media_type, size) = match &p.receipt {
        Some((sha, media_type, size)) => (
            Some(sha.as_str().to_owned()),
            Some(media_type.clone()),
            Some(*size),
        ),
        None => (None, None, None),
    };
    sqlx::query!(
        "insert into expenses (id, tenant_id, ticket_id, status, merchant, spent_on, currency,
                               amount_minor, subtotal_minor, tax_minor, category, items, note,
                               receipt_sha256, receipt_media_type, receipt_size, submitted_by,
                               submitted_at, created_at, updated_at)
         values ($1, $2, $3, 'submitted', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $17, $17)",
        e.id.as_uuid(),
        scope.tenant.as_uuid(),
        e.ticket_id.as_uuid(),
        p.merchant.as_str(),
        e.spent_on,
        p.currency.as_str(),
        e.amount_minor,
        e.subtotal_minor,
        e.tax_minor,
        p.category,
        items,
        p.note,
        sha256,
        media_type,
        size,
        scope.user.as_uuid(),
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    touch_ticket(scope, e.ticket_id, now).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(ActivityAction::ExpenseSubmitted, e.ticket_id).after(json!({
            "expense_id": e.id,
            "merchant": p.merchant.as_str(),
            "total": p.currency.format_amount(e.amount_minor),
            "currency": p.currency.as_str(),
        })),
    )
    .await?;
    load(scope, e.id).await
}

/// Approves or rejects a submitted expense, once; a rejection says why. Never by its
/// submitter (`own_expense`). Above the tenant's dual-approval amount, a first approval is
/// recorded and the expense stays submitted until a different approver approves it too.
pub(crate) async fn decide(
    scope: &mut Scope,
    d: &ExpenseDecide,
    now: DateTime<Utc>,
) -> ApiResult<Expense> {
    scope.require(Action::DecideExpense)?;
    // The ticket first, like every other write to it, then the expense.
    tickets::load_for_update(scope, d.ticket_id, Action::DecideExpense).await?;
    let expense = sqlx::query!(
        "select e.status, e.merchant, e.currency, e.amount_minor, e.submitted_by,
                (select t.dual_approval_above_minor from tenants t where t.id = e.tenant_id)
                    as dual_approval_above_minor
           from expenses e
          where e.id = $1 and e.ticket_id = $2 for update of e",
        d.id.as_uuid(),
        d.ticket_id.as_uuid(),
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .ok_or_else(|| ApiError::not_found("expense"))?;
    if expense.status != "submitted" {
        return Err(ApiError::conflict(
            ErrorCode::ExpenseImmutable,
            format!("this expense was {} already", expense.status),
        ));
    }
    OwnExpense::check(expense.submitted_by.into(), scope.user)
        .map_err(|refused| ApiError::conflict(ErrorCode::OwnExpense, refused.to_string()))?;
    let reason = optional_text("reason", d.reason.as_deref())?;
    if !d.approve && reason.is_none() {
        return Err(FieldError::Invalid {
            field: "reason",
            message: "say why the expense is rejected, so the requester can correct it".into(),
        }
        .into());
    }
    let required = approvals_required(expense.amount_minor, expense.dual_approval_above_minor);
    let mut approvals = 0;
    if d.approve {
        let given = sqlx::query_scalar!(
            "select approved_by from expense_approvals where expense_id = $1",
            d.id.as_uuid(),
        )
        .fetch_all(&mut *scope.tx)
        .await?;
        if given.contains(&scope.user.as_uuid()) {
            return Err(ApiError::conflict(
                ErrorCode::AlreadyApproved,
                "you approved this expense already: it needs another approver's approval",
            ));
        }
        sqlx::query!(
            "insert into expense_approvals (tenant_id, expense_id, approved_by, approved_at)
             values ($1, $2, $3, $4)",
            scope.tenant.as_uuid(),
            d.id.as_uuid(),
            scope.user.as_uuid(),
            now,
        )
        .execute(&mut *scope.tx)
        .await?;
        approvals = u32::try_from(given.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
    }
    if d.approve && approvals < required {
        // The first of two: the expense stays submitted, and changes so sync carries it.
        sqlx::query!(
            "update expenses set updated_at = $2, version = version + 1 where id = $1",
            d.id.as_uuid(),
            now,
        )
        .execute(&mut *scope.tx)
        .await?;
    } else {
        let status = if d.approve { "approved" } else { "rejected" };
        sqlx::query!(
            "update expenses set status = $2, decided_by = $3, decided_at = $4, reason = $5,
                    updated_at = $4, version = version + 1
              where id = $1",
            d.id.as_uuid(),
            status,
            scope.user.as_uuid(),
            now,
            reason,
        )
        .execute(&mut *scope.tx)
        .await?;
    }
    touch_ticket(scope, d.ticket_id, now).await?;
    let currency = Currency::parse(&expense.currency)?;
    let mut after = json!({
        "expense_id": d.id,
        "merchant": expense.merchant,
        "total": currency.format_amount(expense.amount_minor),
        "currency": currency.as_str(),
        "reason": reason,
    });
    if d.approve && required > 1 {
        after["approvals"] = json!(approvals);
        after["approvals_required"] = json!(required);
    }
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::ticket(
            if d.approve {
                ActivityAction::ExpenseApproved
            } else {
                ActivityAction::ExpenseRejected
            },
            d.ticket_id,
        )
        .after(after),
    )
    .await?;
    load(scope, d.id).await
}

/// The tenant's rules for deciding expenses, for any member.
pub(crate) async fn policy(scope: &mut Scope) -> ApiResult<ExpensePolicy> {
    let dual_approval_above_minor = sqlx::query_scalar!(
        "select dual_approval_above_minor from tenants where id = $1",
        scope.tenant.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    Ok(ExpensePolicy {
        dual_approval_above_minor,
    })
}

/// Sets the tenant's rules for deciding expenses (admins). Expenses waiting for a decision
/// follow the new rule from their next decision on.
pub(crate) async fn set_policy(
    scope: &mut Scope,
    policy: &ExpensePolicy,
    now: DateTime<Utc>,
) -> ApiResult<ExpensePolicy> {
    scope.require(Action::ManageTenantSettings)?;
    if let Some(minor) = policy.dual_approval_above_minor
        && !(0..=MAX_MINOR).contains(&minor)
    {
        return Err(FieldError::Invalid {
            field: "dual_approval_above_minor",
            message: format!("must be between 0 and {MAX_MINOR}, or null for one approval"),
        }
        .into());
    }
    let before = sqlx::query_scalar!(
        "select dual_approval_above_minor from tenants where id = $1 for update",
        scope.tenant.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    sqlx::query!(
        "update tenants set dual_approval_above_minor = $2 where id = $1",
        scope.tenant.as_uuid(),
        policy.dual_approval_above_minor,
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::ExpensePolicyUpdated)
            .field("dual_approval_above_minor")
            .before(json!({ "dual_approval_above_minor": before }))
            .after(json!({ "dual_approval_above_minor": policy.dual_approval_above_minor })),
    )
    .await?;
    Ok(policy.clone())
}

async fn load(scope: &mut Scope, id: tallydesk_shared::ExpenseId) -> ApiResult<Expense> {
    by_ids(&mut scope.tx, &[id.as_uuid()])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("expense"))
}

async fn touch_ticket(scope: &mut Scope, ticket: TicketId, now: DateTime<Utc>) -> ApiResult<()> {
    sqlx::query!(
        "update tickets set updated_at = $2 where id = $1",
        ticket.as_uuid(),
        now
    )
    .execute(&mut *scope.tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallydesk_shared::{ExpenseId, TicketId};

    fn expense() -> ExpenseCreate {
        ExpenseCreate {
            id: ExpenseId::new(),
            ticket_id: TicketId::new(),
            merchant: " Café Lisboa ".into(),
            spent_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            currency: "eur".into(),
            amount_minor: 1250,
            subtotal_minor: Some(1016),
            tax_minor: Some(234),
            category: None,
            items: vec![ExpenseLine {
                description: "Lunch".into(),
                quantity: Some(" 2 ".into()),
                amount_minor: 1250,
            }],
            note: Some("  ".into()),
            receipt: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn fields_are_trimmed_and_defaulted() {
        let p = parse(&expense(), today()).unwrap();
        assert_eq!(p.merchant.as_str(), "Café Lisboa");
        assert_eq!(p.currency.as_str(), "EUR", "currency codes are upper case");
        assert_eq!(
            p.category, "other",
            "an expense without a category is `other`"
        );
        assert_eq!(p.items[0].quantity.as_deref(), Some("2"));
        assert_eq!(p.note, None, "a blank note is no note");
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        let field = |e: ExpenseCreate| parse(&e, today()).err().map(|e| e.field());
        assert_eq!(
            field(ExpenseCreate {
                amount_minor: -1,
                ..expense()
            }),
            Some("amount_minor")
        );
        assert_eq!(
            field(ExpenseCreate {
                spent_on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                ..expense()
            }),
            Some("spent_on"),
            "a receipt from next week is a typo"
        );
        assert_eq!(
            field(ExpenseCreate {
                category: Some("yachts".into()),
                ..expense()
            }),
            Some("category")
        );
        assert_eq!(
            field(ExpenseCreate {
                receipt: Some(ReceiptRef {
                    sha256: "ABC".into(),
                    media_type: "image/png".into(),
                    size: 10,
                }),
                ..expense()
            }),
            Some("receipt.sha256")
        );
        assert_eq!(
            field(ExpenseCreate {
                receipt: Some(ReceiptRef {
                    sha256: "a".repeat(64),
                    media_type: "application/pdf".into(),
                    size: 10,
                }),
                ..expense()
            }),
            Some("receipt.media_type"),
            "receipts are images"
        );
    }
}
