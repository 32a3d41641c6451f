//! What the expense screens show and send: expenses, their receipts and what was read from
//! them, the fields a person edits, list filters and totals.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_shared::expense::ExpenseStatus;
use tallydesk_shared::{ExpenseId, Status, TicketId, UserId};

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
    /// Who approved it so far, as the server last said: while it waits for a second approval
    /// (the UI shows "1 of 2 approvals").
    pub approved_by: Vec<UserId>,
    /// How many approvals by different approvers approve it (1, or 2 above the tenant's amount).
    pub approvals_required: u32,
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
    /// Whether the current user may approve or reject it: an approver who did not submit it
    /// and has not approved it already.
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
