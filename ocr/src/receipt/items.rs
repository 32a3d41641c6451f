//! Line items: the rows between the header and the totals that end with a price, and the check
//! that they add up.

use rust_decimal::Decimal;

use super::date::{DateOrder, find_dates};
use super::money::{Amount, FoundAmount, find_amounts};
use super::rows::Row;
use super::totals::TAX_WORDS;
use super::{LineItem, Receipt, Warning};

/// Rows above the totals that end with a price: description, optional quantity, amount.
pub(super) fn items(rows: &[Row], first_summary_row: Option<usize>) -> Vec<LineItem> {
    let end = first_summary_row.unwrap_or(rows.len());
    let mut out: Vec<LineItem> = Vec::new();
    // Items follow the header: start after the last row with a date, or the merchant block.
    let start = rows[..end]
        .iter()
        .rposition(|r| !find_dates(&r.text, DateOrder::DayFirst).is_empty())
        .map_or(0, |r| r + 1);
    let mut pending_description: Option<(String, Vec<usize>)> = None;
    for row in &rows[start..end] {
        let amounts = find_amounts(&row.text);
        let skip = TAX_WORDS.iter().any(|w| row.has(w))
            || row.has_any(&[
                "TOTAL", "CHANGE", "CASH", "ROUNDING", "TEL", "FAX", "QTY", "PRICE", "AMOUNT",
            ]);
        let last_price = amounts.iter().rev().find(|a| a.has_cents);
        let Some(price) = last_price.filter(|_| !skip) else {
            // A text row may describe the item on the next row; a row of article codes
            // between them changes nothing.
            let letters = row.text.chars().filter(|c| c.is_alphabetic()).count();
            if letters >= 3 && !skip && !amounts.iter().any(|a| a.has_cents) {
                pending_description = Some((description_of(&row.text), row.lines()));
            } else if letters > 0 || skip {
                pending_description = None;
            }
            continue;
        };
        let head = &row.text[..price.start];
        let mut description = description_of(head);
        let mut lines = row.lines();
        if description.chars().filter(|c| c.is_alphabetic()).count() < 3
            && let Some((d, l)) = pending_description.take()
        {
            description = d;
            lines.extend(l);
        }
        pending_description = None;
        if description.chars().filter(|c| c.is_alphabetic()).count() < 2 {
            continue;
        }
        let quantity = quantity_of(head, &amounts, price);
        out.push(LineItem {
            description,
            quantity,
            amount: if price.negative {
                Amount::new(-price.amount.decimal())
            } else {
                price.amount
            },
            confidence: row.confidence * 0.7,
            lines,
        });
    }
    out
}

/// The words of a row before its figures, without long article codes.
fn description_of(text: &str) -> String {
    let is_figure = |w: &str| {
        w.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | 'x' | 'X' | '@' | '*'))
            || matches!(
                w.to_uppercase().as_str(),
                "PC" | "PCS" | "X" | "@" | "RM" | "EA" | "UNIT" | "£" | "$" | "€" | "¥"
            )
    };
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !(w.len() >= 6 && w.chars().all(|c| c.is_ascii_digit())))
        .collect();
    // Cut figures (quantity, unit, unit price, currency) off both ends.
    let mut cut = words.len();
    while cut > 0 && is_figure(words[cut - 1]) {
        cut -= 1;
    }
    let mut start = 0;
    while start < cut && is_figure(words[start]) {
        start += 1;
    }
    words[start..cut]
        .join(" ")
        .trim_matches(|c: char| matches!(c, '-' | ':' | '*'))
        .trim()
        .to_owned()
}

/// The quantity of an item row: "2 x", "x2", "2 @", "QTY 2", or a small integer right after
/// the description followed by unit price and amount.
fn quantity_of(head: &str, amounts: &[FoundAmount], price: &FoundAmount) -> Option<Decimal> {
    let upper = head.to_uppercase();
    let tokens: Vec<&str> = upper.split_whitespace().collect();
    for (i, t) in tokens.iter().enumerate() {
        let t = t.trim_matches(|c: char| matches!(c, ':' | ','));
        if let Some(n) = t.strip_suffix('X').or_else(|| t.strip_prefix('X'))
            && let Ok(q) = n.parse::<u32>()
        {
            return Some(Decimal::from(q));
        }
        if matches!(t, "X" | "@" | "*")
            && i > 0
            && let Ok(q) = tokens[i - 1].parse::<u32>()
        {
            return Some(Decimal::from(q));
        }
        if t == "QTY"
            && let Some(Ok(q)) = tokens.get(i + 1).map(|n| n.parse::<u32>())
        {
            return Some(Decimal::from(q));
        }
    }
    // "1 PC 9.000 0.00 9.00": an integer standing before other figures.
    let before: Vec<&FoundAmount> = amounts.iter().filter(|a| a.end <= price.start).collect();
    if let Some(first) = before.first()
        && !first.has_cents
        && first.amount.decimal().fract().is_zero()
    {
        let q = first.amount.decimal();
        if q > Decimal::ZERO && q < Decimal::from(1000) {
            return Some(q);
        }
    }
    None
}

pub(super) fn check_items(receipt: &Receipt) -> Option<Warning> {
    if receipt.items.is_empty() {
        return None;
    }
    let sum: Amount = receipt.items.iter().map(|i| i.amount).sum();
    let total = receipt.total.as_ref().map(|t| t.value);
    let subtotal = receipt.subtotal.as_ref().map(|t| t.value);
    let tax = receipt.tax.as_ref().map(|t| t.value);
    let mut expected = Vec::new();
    expected.extend(subtotal);
    expected.extend(total);
    if let (Some(t), Some(x)) = (total, tax) {
        expected.push(t - x);
    }
    let target = subtotal.or(total)?;
    if expected.contains(&sum) {
        return None;
    }
    // Rounding to 5 cents on the total is allowed.
    if total.is_some_and(|t| (t.decimal() - sum.decimal()).abs() < Decimal::new(5, 2)) {
        return None;
    }
    Some(Warning::ItemsDoNotAddUp {
        items: sum,
        expected: target,
    })
}
