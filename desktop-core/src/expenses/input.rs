//! A draft's fields as typed or read by OCR, parsed into what is stored, and the warnings to
//! check before submitting.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tallydesk_shared::expense::{Currency, EXPENSE_CATEGORIES, ItemDescription, Merchant};
use tallydesk_shared::ticket::{Category, FieldError, Notes};

use crate::error::{DeskError, DeskResult, ErrorCode};

use super::{ExpenseInput, ExpenseItem};

/// Items as stored: amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredItem {
    pub(super) description: String,
    pub(super) quantity: Option<String>,
    pub(super) amount_minor: i64,
}

/// A draft's fields once parsed.
pub(super) struct Parsed {
    pub(super) merchant: Option<Merchant>,
    pub(super) spent_on: Option<NaiveDate>,
    pub(super) currency: Currency,
    pub(super) total: Option<i64>,
    pub(super) subtotal: Option<i64>,
    pub(super) tax: Option<i64>,
    pub(super) category: Category,
    pub(super) items: Vec<StoredItem>,
    pub(super) note: Option<Notes>,
}

pub(super) fn parse_input(input: &ExpenseInput) -> Result<Parsed, FieldError> {
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
pub(super) fn lenient(input: &ExpenseInput) -> ExpenseInput {
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
pub(super) fn warnings(currency: &Currency, p: &StoredAmounts) -> Vec<String> {
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

/// Serialised for the `items` column.
pub(super) fn items_json(items: &[StoredItem]) -> DeskResult<String> {
    serde_json::to_string(items).map_err(|e| DeskError::new(ErrorCode::Internal, e.to_string()))
}

pub(super) struct StoredAmounts {
    pub(super) total: Option<i64>,
    pub(super) subtotal: Option<i64>,
    pub(super) tax: Option<i64>,
    pub(super) items: Vec<StoredItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
