//! Expenses: drafts made from scanned receipts, reviewed, filed on an expense-claim ticket,
//! then approved or rejected.
//!
//! [`types`] holds what the screens see, [`input`] turns typed or scanned fields into what is
//! stored, `queries` reads expenses back, `csv` exports them; the commands that change an
//! expense are here.

mod csv;
mod input;
mod queries;
mod types;

use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{CreateTicket, ExpenseLine, ReceiptRef};
use tallydesk_shared::expense::{ExpenseStatus, Merchant, OwnExpense};
use tallydesk_shared::sync::{ExpenseCreate, ExpenseDecide, Intent};
use tallydesk_shared::ticket::{Notes, TicketTitle};
use tallydesk_shared::{Action, ExpenseId, Status};

pub(crate) use input::currency_or_usd;
use input::{items_json, lenient, parse_input};
use queries::{bind_fields, touch_ticket};
pub use types::*;

use crate::desk::{Desk, record};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::time::to_micros;

impl Desk {
    /// An expense with what was read from its receipt.
    pub async fn expense(&self, id: ExpenseId) -> DeskResult<ExpenseReview> {
        let expense = self.load_expense(id).await?;
        let reading: Option<String> =
            sqlx::query_scalar("select reading from expenses where id = ?")
                .bind(id)
                .fetch_one(&self.store().pool)
                .await?;
        let reading = reading
            .map(|r| serde_json::from_str::<Reading>(&r))
            .transpose()
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("bad reading: {e}")))?;
        Ok(ExpenseReview {
            editable: expense.status == ExpenseStatus::Draft
                && expense.requester_id == self.me().id,
            decidable: expense.status == ExpenseStatus::Submitted
                && self.require(Action::DecideExpense).is_ok()
                && OwnExpense::check(expense.requester_id, self.me().id).is_ok()
                && !expense.approved_by.contains(&self.me().id),
            expense,
            reading,
        })
    }

    /// Files a freshly read receipt as a draft of the current user: the image goes into the
    /// content-addressed folder first, so a draft never points at a missing file.
    pub async fn create_draft(&self, scanned: &ScannedReceipt) -> DeskResult<Expense> {
        self.require(Action::SubmitExpense)?;
        let p = parse_input(&lenient(&scanned.input))?;
        crate::receipts::store_image(
            &crate::receipts::images_dir(self.store()),
            &scanned.image.sha256,
            &scanned.image_bytes,
        )?;
        let now = to_micros(self.now());
        let id = ExpenseId::new();
        let reading = serde_json::to_string(&scanned.reading)
            .map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))?;
        let mut tx = self.write().await?;
        sqlx::query(
            "insert into receipt_images (sha256, media_type, byte_size, width, height, created_at)
             values (?, ?, ?, ?, ?, ?) on conflict (sha256) do nothing",
        )
        .bind(&scanned.image.sha256)
        .bind(&scanned.image.media_type)
        .bind(i64::try_from(scanned.image_bytes.len()).unwrap_or(i64::MAX))
        .bind(scanned.image.width)
        .bind(scanned.image.height)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into expenses (id, requester_id, status, merchant, spent_on, currency,
                                   amount_minor, subtotal_minor, tax_minor, category, items,
                                   image_sha256, source_name, reading, created_at, updated_at)
             values (?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(self.me().id)
        .bind(p.merchant.as_ref().map(Merchant::as_str))
        .bind(p.spent_on.map(|d| d.to_string()))
        .bind(p.currency.as_str())
        .bind(p.total)
        .bind(p.subtotal)
        .bind(p.tax)
        .bind(p.category.as_str())
        .bind(items_json(&p.items)?)
        .bind(&scanned.image.sha256)
        .bind(&scanned.source_name)
        .bind(reading)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.touched();
        self.load_expense(id).await
    }

    fn check_version(expense: &Expense, version: i64) -> DeskResult<()> {
        if expense.version != version {
            return Err(DeskError::stale("expense"));
        }
        Ok(())
    }

    async fn own_draft(&self, id: ExpenseId) -> DeskResult<Expense> {
        let expense = self.load_expense(id).await?;
        if expense.status != ExpenseStatus::Draft {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!(
                    "this expense is {}: submitted expenses cannot be changed; file a new one to correct it",
                    expense.status
                ),
            ));
        }
        if expense.requester_id != self.me().id {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                "only the person who scanned a draft may change it",
            ));
        }
        Ok(expense)
    }

    /// Saves a person's corrections to a draft; incomplete drafts are allowed.
    pub async fn update_draft(&self, id: ExpenseId, input: &ExpenseInput) -> DeskResult<Expense> {
        let current = self.own_draft(id).await?;
        Self::check_version(&current, input.version)?;
        let p = parse_input(input)?;
        let now = to_micros(self.now());
        let done = bind_fields(
            sqlx::query(
                "update expenses set merchant = ?, spent_on = ?, currency = ?, amount_minor = ?,
                        subtotal_minor = ?, tax_minor = ?, category = ?, items = ?, note = ?,
                        updated_at = ?, version = version + 1
                  where id = ? and version = ? and status = 'draft' and deleted_at is null",
            ),
            &p,
        )?
        .bind(now)
        .bind(id)
        .bind(input.version)
        .execute(&self.store().pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DeskError::stale("expense"));
        }
        self.load_expense(id).await
    }

    /// Saves the draft's final fields and files it on an expense-claim ticket. Merchant, date
    /// and total are required; a warning (items not adding up) does not stop it.
    pub async fn submit_expense(
        &self,
        id: ExpenseId,
        input: &ExpenseInput,
        target: &ClaimTarget,
    ) -> DeskResult<Expense> {
        let current = self.own_draft(id).await?;
        Self::check_version(&current, input.version)?;
        let p = parse_input(input)?;
        let merchant = p
            .merchant
            .as_ref()
            .ok_or_else(|| DeskError::invalid("merchant", "merchant must not be empty"))?;
        let spent_on = p
            .spent_on
            .ok_or_else(|| DeskError::invalid("spent_on", "the date must not be empty"))?;
        let total = p
            .total
            .ok_or_else(|| DeskError::invalid("total", "the total must not be empty"))?;
        let today = self.now().date_naive();
        if spent_on > today + chrono::Days::new(1) {
            return Err(DeskError::invalid(
                "spent_on",
                format!("{spent_on} is in the future"),
            ));
        }
        let now = self.now();
        // The claim ticket, when a new one is made, and the expense are one transaction, so a
        // failed submit leaves no empty claim behind.
        let mut tx = self.write().await?;
        let ticket = match target {
            ClaimTarget::Existing { ticket_id } => {
                let detail = self.ticket(*ticket_id).await?;
                let own = detail.ticket.requester_id == self.me().id;
                if !tallydesk_shared::permission::access(self.role(), Action::SubmitExpense)
                    .allows(own)
                {
                    return Err(DeskError::new(
                        ErrorCode::Forbidden,
                        "you can file expenses only on your own tickets",
                    ));
                }
                if matches!(detail.ticket.status, Status::Resolved | Status::Closed) {
                    return Err(DeskError::new(
                        ErrorCode::Forbidden,
                        format!(
                            "ticket #{} is {}: file the expense on an open claim or a new one",
                            detail.ticket.number, detail.ticket.status
                        ),
                    ));
                }
                *ticket_id
            }
            ClaimTarget::New { title } => {
                let title = match title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                    Some(t) => TicketTitle::parse(t)?.into_inner(),
                    None => format!("Expense claim: {merchant}, {spent_on}"),
                };
                self.insert_ticket(
                    &mut tx,
                    &CreateTicket {
                        title: title.chars().take(TicketTitle::MAX_CHARS).collect(),
                        description: String::new(),
                        priority: None,
                        category: Some("expense".to_owned()),
                        assignee_id: None,
                        customer_id: None,
                        requester_id: None,
                    },
                )
                .await?
            }
        };
        let done = bind_fields(
            sqlx::query(
                "update expenses set merchant = ?, spent_on = ?, currency = ?, amount_minor = ?,
                        subtotal_minor = ?, tax_minor = ?, category = ?, items = ?, note = ?,
                        ticket_id = ?, status = 'submitted', submitted_at = ?, updated_at = ?,
                        version = version + 1
                  where id = ? and version = ? and status = 'draft' and deleted_at is null",
            ),
            &p,
        )?
        .bind(ticket)
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(id)
        .bind(input.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DeskError::stale("expense"));
        }
        record(
            &mut tx,
            Some(ticket),
            self.me().id,
            ActivityAction::ExpenseSubmitted,
            None,
            None,
            Some(json!({
                "expense_id": id,
                "merchant": merchant.as_str(),
                "total": p.currency.format_amount(total),
                "currency": p.currency.as_str(),
            })),
            false,
            now,
        )
        .await?;
        touch_ticket(&mut tx, ticket, now).await?;
        let receipt = sqlx::query_as::<_, (String, String, i64)>(
            "select r.sha256, r.media_type, r.byte_size from expenses e
               join receipt_images r on r.sha256 = e.image_sha256
              where e.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(sha256, media_type, size)| ReceiptRef {
            sha256,
            media_type,
            size,
        });
        self.enqueue(
            &mut tx,
            Intent::ExpenseCreate(ExpenseCreate {
                id,
                ticket_id: ticket,
                merchant: merchant.as_str().to_owned(),
                spent_on,
                currency: p.currency.as_str().to_owned(),
                amount_minor: total,
                subtotal_minor: p.subtotal,
                tax_minor: p.tax,
                category: Some(p.category.as_str().to_owned()),
                items: p
                    .items
                    .iter()
                    .map(|i| ExpenseLine {
                        description: i.description.clone(),
                        quantity: i.quantity.clone(),
                        amount_minor: i.amount_minor,
                    })
                    .collect(),
                note: p.note.as_ref().map(|n| n.as_str().to_owned()),
                receipt,
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        self.load_expense(id).await
    }

    /// Approves or rejects a submitted expense. A rejection says why. As on the server, nobody
    /// decides an expense they submitted (`own_expense`) nor approves one twice
    /// (`already_approved`), so a decision made offline is not one the server will refuse.
    pub async fn decide_expense(
        &self,
        id: ExpenseId,
        approve: bool,
        note: Option<&str>,
        version: i64,
    ) -> DeskResult<Expense> {
        self.require(Action::DecideExpense)?;
        let expense = self.load_expense(id).await?;
        Self::check_version(&expense, version)?;
        if expense.status != ExpenseStatus::Submitted {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!(
                    "this expense is {}; only submitted expenses are decided",
                    expense.status
                ),
            ));
        }
        OwnExpense::check(expense.requester_id, self.me().id)
            .map_err(|refused| DeskError::new(ErrorCode::OwnExpense, refused.to_string()))?;
        if approve && expense.approved_by.contains(&self.me().id) {
            return Err(DeskError::new(
                ErrorCode::AlreadyApproved,
                "you approved this expense already: it needs another approver's approval",
            ));
        }
        let note = note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(Notes::parse)
            .transpose()?;
        if !approve && note.is_none() {
            return Err(DeskError::invalid(
                "note",
                "say why the expense is rejected, so the requester can correct it",
            ));
        }
        // The first approval of two leaves it submitted, as the server will.
        let approvals = expense.approved_by.len() + usize::from(approve);
        let status = if !approve {
            ExpenseStatus::Rejected
        } else if approvals < expense.approvals_required as usize {
            ExpenseStatus::Submitted
        } else {
            ExpenseStatus::Approved
        };
        let now = self.now();
        let ticket = expense.ticket.as_ref().map(|t| t.id).ok_or_else(|| {
            DeskError::new(ErrorCode::Internal, "a submitted expense has no ticket")
        })?;
        let mut tx = self.write().await?;
        let done = if status == ExpenseStatus::Submitted {
            sqlx::query(
                "update expenses set updated_at = ?, version = version + 1
                  where id = ? and version = ? and status = 'submitted'",
            )
            .bind(to_micros(now))
            .bind(id)
            .bind(version)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "update expenses set status = ?, decided_by = ?, decided_at = ?, decision_note = ?,
                    updated_at = ?, version = version + 1
              where id = ? and version = ? and status = 'submitted'",
            )
            .bind(status.as_str())
            .bind(self.me().id)
            .bind(to_micros(now))
            .bind(note.as_ref().map(Notes::as_str))
            .bind(to_micros(now))
            .bind(id)
            .bind(version)
            .execute(&mut *tx)
            .await?
        };
        if done.rows_affected() == 0 {
            return Err(DeskError::stale("expense"));
        }
        let mut after = json!({
            "expense_id": id,
            "merchant": expense.merchant,
            "total": expense.total,
            "currency": expense.currency,
            "note": note.as_ref().map(Notes::as_str),
        });
        if approve && expense.approvals_required > 1 {
            after["approvals"] = json!(approvals);
            after["approvals_required"] = json!(expense.approvals_required);
        }
        record(
            &mut tx,
            Some(ticket),
            self.me().id,
            if approve {
                ActivityAction::ExpenseApproved
            } else {
                ActivityAction::ExpenseRejected
            },
            None,
            None,
            Some(after),
            false,
            now,
        )
        .await?;
        touch_ticket(&mut tx, ticket, now).await?;
        self.enqueue(
            &mut tx,
            Intent::ExpenseDecide(ExpenseDecide {
                id,
                ticket_id: ticket,
                approve,
                reason: note.as_ref().map(|n| n.as_str().to_owned()),
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        self.load_expense(id).await
    }

    /// Throws a draft away (a tombstone, so sync can tell). The image stays: another expense
    /// may share it.
    pub async fn discard_draft(&self, id: ExpenseId) -> DeskResult<()> {
        self.own_draft(id).await?;
        let now = to_micros(self.now());
        sqlx::query(
            "update expenses set deleted_at = ?, updated_at = ?, version = version + 1
              where id = ? and status = 'draft' and deleted_at is null",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.store().pool)
        .await?;
        Ok(())
    }
}
