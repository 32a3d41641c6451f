//! Expenses: drafts made from scanned receipts, reviewed, filed on an expense-claim ticket,
//! then approved or rejected.

use std::collections::BTreeMap;
use tallydesk_shared::activity::ActivityAction;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use tallydesk_shared::api::{CreateTicket, ExpenseLine, ReceiptRef};
use tallydesk_shared::expense::{
    Currency, EXPENSE_CATEGORIES, ExpenseStatus, ItemDescription, Merchant,
};
use tallydesk_shared::sync::{ExpenseCreate, ExpenseDecide, Intent};
use tallydesk_shared::ticket::{Category, FieldError, Notes, TicketTitle};
use tallydesk_shared::{Action, ExpenseId, Role, Status, TicketId, UserId};

use crate::desk::{Desk, parse_id, parse_text, record};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::time::{from_micros, opt_from_micros, to_micros};

/// The ticket an expense is filed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ClaimRef {
    pub id: TicketId,
    #[specta(type = specta_typescript::Number)]
    pub number: i64,
    pub title: String,
    pub status: Status,
}

/// A line of a receipt. Amounts are decimal strings in the expense's currency ("12.50").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ExpenseItem {
    pub description: String,
    pub quantity: Option<String>,
    pub amount: String,
}

/// The stored receipt image, addressed by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ReceiptImage {
    pub sha256: String,
    pub media_type: String,
    pub width: u32,
    pub height: u32,
}

/// An approver's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Decision {
    pub approved: bool,
    pub by_name: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Expense {
    pub id: ExpenseId,
    pub status: ExpenseStatus,
    pub requester_id: UserId,
    pub requester_name: String,
    pub ticket: Option<ClaimRef>,
    pub merchant: Option<String>,
    pub spent_on: Option<NaiveDate>,
    pub currency: String,
    pub total: Option<String>,
    pub subtotal: Option<String>,
    pub tax: Option<String>,
    pub category: String,
    pub items: Vec<ExpenseItem>,
    pub note: Option<String>,
    pub image: Option<ReceiptImage>,
    /// The name of the file the receipt was read from.
    pub source_name: Option<String>,
    /// Things to check before submitting, e.g. items that don't add up to the total.
    pub warnings: Vec<String>,
    pub decision: Option<Decision>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// A line of text read from the receipt image, with its box as four corners in image pixels
/// (`[x1, y1, x2, y2, x3, y3, x4, y4]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct ReadLine {
    pub text: String,
    pub confidence: f32,
    pub quad: Vec<f32>,
}

/// Where a field's value was read: its lines and how sure the reading is. `field` is
/// `merchant`, `spent_on`, `total`, `subtotal`, `tax`, `currency` or `items.N`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct FieldSource {
    pub field: String,
    pub confidence: f32,
    /// Below [`UNCERTAIN_BELOW`]: the UI asks the person to check it.
    pub uncertain: bool,
    pub lines: Vec<u32>,
}

/// What was read from a receipt image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Reading {
    pub width: u32,
    pub height: u32,
    pub lines: Vec<ReadLine>,
    pub fields: Vec<FieldSource>,
}

/// A field read with less confidence than this is highlighted for review.
pub const UNCERTAIN_BELOW: f32 = 0.75;

/// An expense with what was read from its receipt, for the review screen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct ExpenseReview {
    pub expense: Expense,
    pub reading: Option<Reading>,
    /// Whether the current user may edit it (a draft of theirs).
    pub editable: bool,
    /// Whether the current user may approve or reject it.
    pub decidable: bool,
}

/// The fields a person edits on a draft. Amounts are typed decimals ("1,234.50").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ExpenseInput {
    pub merchant: Option<String>,
    /// YYYY-MM-DD.
    pub spent_on: Option<String>,
    pub currency: String,
    pub total: Option<String>,
    pub subtotal: Option<String>,
    pub tax: Option<String>,
    pub category: String,
    pub items: Vec<ExpenseItem>,
    pub note: Option<String>,
    /// The version the person edited; a newer one in the store is a conflict.
    #[specta(type = specta_typescript::Number)]
    pub version: i64,
}

/// Which ticket a submitted expense is filed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClaimTarget {
    /// A new expense-claim ticket; the title defaults to the merchant and date.
    New {
        title: Option<String>,
    },
    Existing {
        ticket_id: TicketId,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ExpenseQuery {
    /// First day, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
    /// Part of the merchant's name, any case.
    pub merchant: Option<String>,
    pub category: Option<String>,
    pub status: Option<ExpenseStatus>,
    pub ticket_id: Option<TicketId>,
}

/// The sum of listed expenses in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct CurrencyTotal {
    pub currency: String,
    pub total: String,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ExpenseList {
    pub expenses: Vec<Expense>,
    /// Per currency, drafts and rejected expenses left out.
    pub totals: Vec<CurrencyTotal>,
    pub categories: Vec<String>,
}

/// A freshly read receipt, as the scanner hands it to [`Desk::create_draft`].
#[derive(Clone, Debug)]
pub struct ScannedReceipt {
    pub image: ReceiptImage,
    pub image_bytes: Vec<u8>,
    pub source_name: String,
    pub input: ExpenseInput,
    pub reading: Reading,
}

/// Items as stored: amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredItem {
    description: String,
    quantity: Option<String>,
    amount_minor: i64,
}

/// A draft's fields once parsed.
struct Parsed {
    merchant: Option<Merchant>,
    spent_on: Option<NaiveDate>,
    currency: Currency,
    total: Option<i64>,
    subtotal: Option<i64>,
    tax: Option<i64>,
    category: Category,
    items: Vec<StoredItem>,
    note: Option<Notes>,
}

fn parse_input(input: &ExpenseInput) -> Result<Parsed, FieldError> {
    fn present(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    let currency = Currency::parse(&input.currency)?;
    let amount = |field: &'static str, v: &Option<String>| {
        present(v)
            .map(|s| currency.parse_amount(field, s))
            .transpose()
    };
    let spent_on = present(&input.spent_on)
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| FieldError::Invalid {
                field: "spent_on",
                message: format!("{s:?} is not a date; use YYYY-MM-DD"),
            })
        })
        .transpose()?;
    let category = Category::parse(&input.category)?;
    if !EXPENSE_CATEGORIES.contains(&category.as_str()) {
        return Err(FieldError::Invalid {
            field: "category",
            message: format!(
                "{:?} is not one of {}",
                category.as_str(),
                EXPENSE_CATEGORIES.join(", ")
            ),
        });
    }
    let mut items = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.iter().enumerate() {
        let at = |e: FieldError| FieldError::Invalid {
            field: "items",
            message: format!("line {}: {e}", i + 1),
        };
        let description = ItemDescription::parse(&item.description).map_err(at)?;
        let quantity = present(&item.quantity)
            .map(|q| parse_quantity(q).map(|()| q.to_owned()))
            .transpose()
            .map_err(at)?;
        let amount_minor = currency.parse_amount("amount", &item.amount).map_err(at)?;
        items.push(StoredItem {
            description: description.into_inner(),
            quantity,
            amount_minor,
        });
    }
    Ok(Parsed {
        merchant: present(&input.merchant).map(Merchant::parse).transpose()?,
        spent_on,
        total: amount("total", &input.total)?,
        subtotal: amount("subtotal", &input.subtotal)?,
        tax: amount("tax", &input.tax)?,
        currency,
        category,
        items,
        note: present(&input.note).map(Notes::parse).transpose()?,
    })
}

/// The currency with that code, or US dollars when there is none or it is not a code.
pub(crate) fn currency_or_usd(code: Option<&str>) -> Currency {
    code.and_then(|c| Currency::parse(c).ok())
        .unwrap_or_else(|| {
            Currency::parse("USD").unwrap_or_else(|_| unreachable!("USD is a currency code"))
        })
}

/// What OCR read, with every value that would not pass review left out (an item without an
/// amount, a quantity like "1/2"), so a draft is always saved and the person fills the gaps.
fn lenient(input: &ExpenseInput) -> ExpenseInput {
    let currency = currency_or_usd(Some(&input.currency));
    let amount = |v: &Option<String>| {
        v.as_deref()
            .filter(|a| currency.parse_amount("amount", a).is_ok())
            .map(str::to_owned)
    };
    let text = |v: &Option<String>, max: usize| {
        v.as_deref()
            .map(|t| t.trim().chars().take(max).collect::<String>())
            .filter(|t| !t.is_empty())
    };
    ExpenseInput {
        merchant: text(&input.merchant, Merchant::MAX_CHARS),
        spent_on: input
            .spent_on
            .clone()
            .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
        currency: currency.as_str().to_owned(),
        total: amount(&input.total),
        subtotal: amount(&input.subtotal),
        tax: amount(&input.tax),
        category: if EXPENSE_CATEGORIES.contains(&input.category.as_str()) {
            input.category.clone()
        } else {
            "other".to_owned()
        },
        items: input
            .items
            .iter()
            .filter(|i| currency.parse_amount("amount", &i.amount).is_ok())
            .map(|i| ExpenseItem {
                description: text(&Some(i.description.clone()), ItemDescription::MAX_CHARS)
                    .unwrap_or_else(|| "Item".to_owned()),
                quantity: i.quantity.clone().filter(|q| parse_quantity(q).is_ok()),
                amount: i.amount.clone(),
            })
            .collect(),
        note: text(&input.note, Notes::MAX_CHARS),
        version: input.version,
    }
}

/// A quantity: a positive decimal of at most ten characters ("2", "1.5").
fn parse_quantity(q: &str) -> Result<(), FieldError> {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if q.len() > 10 || whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(FieldError::Invalid {
            field: "quantity",
            message: format!("{q:?} is not a quantity such as 2 or 1.5"),
        });
    }
    Ok(())
}

/// What to check before submitting: line items that add up to neither the subtotal nor the
/// total, and tax larger than the total.
fn warnings(currency: &Currency, p: &StoredAmounts) -> Vec<String> {
    let mut out = Vec::new();
    if !p.items.is_empty() {
        let sum: i64 = p.items.iter().map(|i| i.amount_minor).sum();
        let expected = [p.subtotal, p.total]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        if let Some(first) = expected.first()
            && !expected.contains(&sum)
        {
            out.push(format!(
                "The line items add up to {}, not {} {}.",
                currency.format_amount(sum),
                currency.format_amount(*first),
                if p.subtotal.is_some() {
                    "(the subtotal)"
                } else {
                    "(the total)"
                }
            ));
        }
    }
    if let (Some(tax), Some(total)) = (p.tax, p.total)
        && tax > total
    {
        out.push("The tax is larger than the total.".to_owned());
    }
    out
}

struct StoredAmounts {
    total: Option<i64>,
    subtotal: Option<i64>,
    tax: Option<i64>,
    items: Vec<StoredItem>,
}

const SELECT: &str = "select e.id, e.status, e.requester_id, u.name as requester_name, e.ticket_id,
        t.number, t.title, t.status as ticket_status, e.merchant, e.spent_on, e.currency,
        e.amount_minor, e.subtotal_minor, e.tax_minor, e.category, e.items, e.note,
        e.image_sha256, i.media_type, i.width, i.height, e.source_name, e.decided_at,
        d.name as decided_by_name, e.decision_note, e.created_at, e.updated_at, e.version
   from expenses e
   join users u on u.id = e.requester_id
   left join tickets t on t.id = e.ticket_id
   left join receipt_images i on i.sha256 = e.image_sha256
   left join users d on d.id = e.decided_by
  where e.deleted_at is null";

fn expense_row(r: &SqliteRow) -> DeskResult<Expense> {
    let currency = Currency::parse(r.get::<&str, _>("currency"))
        .map_err(|_| DeskError::new(ErrorCode::Internal, "bad currency in the local database"))?;
    let items: Vec<StoredItem> = serde_json::from_str(r.get::<&str, _>("items"))
        .map_err(|e| DeskError::new(ErrorCode::Internal, format!("bad expense items: {e}")))?;
    let amounts = StoredAmounts {
        total: r.get("amount_minor"),
        subtotal: r.get("subtotal_minor"),
        tax: r.get("tax_minor"),
        items,
    };
    let status: ExpenseStatus = parse_text(r.get::<&str, _>("status"), "expense status")?;
    let ticket = match r.get::<Option<String>, _>("ticket_id") {
        Some(id) => Some(ClaimRef {
            id: parse_id(&id)?,
            number: r.get("number"),
            title: r.get("title"),
            status: parse_text(r.get::<&str, _>("ticket_status"), "status")?,
        }),
        None => None,
    };
    let image = r
        .get::<Option<String>, _>("image_sha256")
        .map(|sha256| ReceiptImage {
            sha256,
            media_type: r.get("media_type"),
            width: r.get("width"),
            height: r.get("height"),
        });
    let decision = opt_from_micros(r.get("decided_at")).map(|at| Decision {
        approved: status == ExpenseStatus::Approved,
        by_name: r
            .get::<Option<String>, _>("decided_by_name")
            .unwrap_or_default(),
        at,
        note: r.get("decision_note"),
    });
    let spent_on = r
        .get::<Option<&str>, _>("spent_on")
        .map(|d| parse_text::<NaiveDate>(d, "date"))
        .transpose()?;
    let fmt = |v: Option<i64>| v.map(|m| currency.format_amount(m));
    Ok(Expense {
        id: parse_id(r.get::<&str, _>("id"))?,
        status,
        requester_id: parse_id(r.get::<&str, _>("requester_id"))?,
        requester_name: r.get("requester_name"),
        ticket,
        merchant: r.get("merchant"),
        spent_on,
        total: fmt(amounts.total),
        subtotal: fmt(amounts.subtotal),
        tax: fmt(amounts.tax),
        category: r.get("category"),
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
        note: r.get("note"),
        image,
        source_name: r.get("source_name"),
        decision,
        created_at: from_micros(r.get("created_at")),
        updated_at: from_micros(r.get("updated_at")),
        version: r.get("version"),
    })
}

impl Desk {
    /// Who may see an expense: its requester; for others, what they may see of its ticket.
    /// Drafts are private to their requester.
    fn push_visible(&self, qb: &mut QueryBuilder<'_, Sqlite>) {
        let me = self.me().id.to_string();
        qb.push(" and (e.requester_id = ").push_bind(me.clone());
        if self.role() != Role::Requester {
            qb.push(" or e.status <> 'draft'");
        }
        qb.push(")");
    }

    async fn load_expense(&self, id: ExpenseId) -> DeskResult<Expense> {
        let mut qb = QueryBuilder::new(SELECT);
        qb.push(" and e.id = ").push_bind(id.to_string());
        self.push_visible(&mut qb);
        let row = qb
            .build()
            .fetch_optional(&self.store().pool)
            .await?
            .ok_or_else(|| DeskError::not_found("expense"))?;
        expense_row(&row)
    }

    /// An expense with what was read from its receipt.
    pub async fn expense(&self, id: ExpenseId) -> DeskResult<ExpenseReview> {
        let expense = self.load_expense(id).await?;
        let reading: Option<String> =
            sqlx::query_scalar("select reading from expenses where id = ?")
                .bind(id.to_string())
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
                && self.require(Action::DecideExpense).is_ok(),
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
        .bind(id.to_string())
        .bind(self.me().id.to_string())
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
        .bind(id.to_string())
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
        .bind(ticket.to_string())
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(id.to_string())
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
        let receipt = sqlx::query(
            "select r.sha256, r.media_type, r.byte_size from expenses e
               join receipt_images r on r.sha256 = e.image_sha256
              where e.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| ReceiptRef {
            sha256: r.get(0),
            media_type: r.get(1),
            size: r.get(2),
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

    /// Approves or rejects a submitted expense. A rejection says why.
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
        let status = if approve {
            ExpenseStatus::Approved
        } else {
            ExpenseStatus::Rejected
        };
        let now = self.now();
        let ticket = expense.ticket.as_ref().map(|t| t.id).ok_or_else(|| {
            DeskError::new(ErrorCode::Internal, "a submitted expense has no ticket")
        })?;
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "update expenses set status = ?, decided_by = ?, decided_at = ?, decision_note = ?,
                    updated_at = ?, version = version + 1
              where id = ? and version = ? and status = 'submitted'",
        )
        .bind(status.as_str())
        .bind(self.me().id.to_string())
        .bind(to_micros(now))
        .bind(note.as_ref().map(Notes::as_str))
        .bind(to_micros(now))
        .bind(id.to_string())
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DeskError::stale("expense"));
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
            Some(json!({
                "expense_id": id,
                "merchant": expense.merchant,
                "total": expense.total,
                "currency": expense.currency,
                "note": note.as_ref().map(Notes::as_str),
            })),
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
        .bind(id.to_string())
        .execute(&self.store().pool)
        .await?;
        Ok(())
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
            qb.push(" and e.ticket_id = ").push_bind(t.to_string());
        }
        qb.push(" order by e.spent_on is null, e.spent_on desc, e.id desc");
        let rows = qb.build().fetch_all(&self.store().pool).await?;
        let expenses = rows
            .iter()
            .map(expense_row)
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

    /// The listed expenses as CSV (RFC 4180), one row per expense.
    pub async fn expenses_csv(&self, q: &ExpenseQuery) -> DeskResult<String> {
        let list = self.list_expenses(q).await?;
        let mut out = String::from(
            "date,merchant,category,status,total,tax,currency,ticket,requester,items,receipt_sha256\r\n",
        );
        for e in &list.expenses {
            let items = e
                .items
                .iter()
                .map(|i| match &i.quantity {
                    Some(q) => format!("{q} x {} {}", i.description, i.amount),
                    None => format!("{} {}", i.description, i.amount),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let cells = [
                e.spent_on.map(|d| d.to_string()).unwrap_or_default(),
                e.merchant.clone().unwrap_or_default(),
                e.category.clone(),
                e.status.to_string(),
                e.total.clone().unwrap_or_default(),
                e.tax.clone().unwrap_or_default(),
                e.currency.clone(),
                e.ticket
                    .as_ref()
                    .map(|t| format!("#{} {}", t.number, t.title))
                    .unwrap_or_default(),
                e.requester_name.clone(),
                items,
                e.image
                    .as_ref()
                    .map(|i| i.sha256.clone())
                    .unwrap_or_default(),
            ];
            let line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }

    /// The current user's open expense-claim tickets, newest first, to file an expense on.
    pub async fn open_claims(&self) -> DeskResult<Vec<ClaimRef>> {
        let rows = sqlx::query(
            "select id, number, title, status from tickets
              where deleted_at is null and category = 'expense' and requester_id = ?
                and status not in ('resolved', 'closed')
              order by created_at desc limit 50",
        )
        .bind(self.me().id.to_string())
        .fetch_all(&self.store().pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimRef {
                    id: parse_id(r.get::<&str, _>(0))?,
                    number: r.get(1),
                    title: r.get(2),
                    status: parse_text(r.get::<&str, _>(3), "status")?,
                })
            })
            .collect()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds a draft's fields in the order the update statements list them.
fn bind_fields<'q>(query: SqliteQuery<'q>, p: &'q Parsed) -> DeskResult<SqliteQuery<'q>> {
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

fn items_json(items: &[StoredItem]) -> DeskResult<String> {
    serde_json::to_string(items).map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))
}

async fn touch_ticket(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    ticket: TicketId,
    now: DateTime<Utc>,
) -> DeskResult<()> {
    sqlx::query("update tickets set updated_at = ? where id = ?")
        .bind(to_micros(now))
        .bind(ticket.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A CSV cell: quoted when it holds a separator, quote or line break; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so spreadsheets don't run it as a formula.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("Cafe"), "Cafe");
        assert_eq!(csv_cell("A, B"), "\"A, B\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }

    fn input(total: &str, items: &[&str]) -> ExpenseInput {
        ExpenseInput {
            currency: "EUR".into(),
            total: Some(total.into()),
            category: "meals".into(),
            items: items
                .iter()
                .map(|a| ExpenseItem {
                    description: "thing".into(),
                    quantity: None,
                    amount: (*a).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn warnings_of(i: &ExpenseInput) -> Vec<String> {
        let p = parse_input(i).unwrap();
        warnings(
            &p.currency,
            &StoredAmounts {
                total: p.total,
                subtotal: p.subtotal,
                tax: p.tax,
                items: p.items,
            },
        )
    }

    #[test]
    fn items_that_do_not_add_up_are_a_warning() {
        assert!(warnings_of(&input("10.00", &["4.00", "6.00"])).is_empty());
        assert_eq!(
            warnings_of(&input("10.00", &["4.00", "5.00"])),
            ["The line items add up to 9.00, not 10.00 (the total)."]
        );
        let mut with_subtotal = input("10.60", &["4.00", "6.00"]);
        with_subtotal.subtotal = Some("10".into());
        assert!(warnings_of(&with_subtotal).is_empty());
        assert!(warnings_of(&input("10.00", &[])).is_empty());
    }

    #[test]
    fn bad_fields_name_themselves() {
        let field = |i: ExpenseInput| parse_input(&i).err().map(|e| e.field());
        let base = input("10", &["10"]);
        assert_eq!(field(base.clone()), None);
        assert_eq!(
            field(ExpenseInput {
                spent_on: Some("31/12/2026".into()),
                ..base.clone()
            }),
            Some("spent_on")
        );
        assert_eq!(
            field(ExpenseInput {
                category: "snacks".into(),
                ..base.clone()
            }),
            Some("category")
        );
        assert_eq!(
            field(ExpenseInput {
                currency: "euro".into(),
                ..base.clone()
            }),
            Some("currency")
        );
        assert_eq!(field(input("ten", &[])), Some("total"));
        assert_eq!(field(input("10", &["1.234"])), Some("items"));
        let mut q = base;
        q.items[0].quantity = Some("-2".into());
        assert_eq!(field(q), Some("items"));
    }
}
