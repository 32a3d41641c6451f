//! Receipt fields from text lines and their positions: merchant, date, total, subtotal, tax,
//! currency and line items, each with a confidence. Pure: no I/O, no clock (today's date, used
//! to judge plausible dates, comes in through [`ParseOptions`]).

mod date;
mod items;
mod merchant;
mod money;
mod rows;
mod totals;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

pub use date::{DateOrder, FoundDate, find_dates};
pub use money::{Amount, FoundAmount, find_amounts, parse_number};

use crate::geometry::Rect;

/// A line of text with its box on the upright page, as the parser sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub text: String,
    pub bounds: Rect,
    /// OCR confidence of the line, 0..1.
    pub confidence: f32,
}

impl From<&crate::TextLine> for Line {
    fn from(l: &crate::TextLine) -> Line {
        Line {
            text: l.text.clone(),
            bounds: l.upright,
            confidence: l.confidence,
        }
    }
}

/// Lines from plain text, for text fixtures and for OCR engines that give text only: each
/// text line is a row; within it, runs of two or more spaces or a tab split it into boxes placed
/// by character column.
pub fn lines_from_text(text: &str) -> Vec<Line> {
    const CHAR_W: f32 = 10.;
    const LINE_H: f32 = 20.;
    let mut out = Vec::new();
    for (row, raw) in text.lines().enumerate() {
        let raw = raw.replace('\t', "    ");
        let top = row as f32 * LINE_H * 1.25;
        for (offset, s) in split_keep_offsets(&raw) {
            let width = s.chars().count() as f32 * CHAR_W;
            let left = raw[..offset].chars().count() as f32 * CHAR_W;
            out.push(Line {
                text: s.to_owned(),
                bounds: Rect::new(left, top, left + width, top + LINE_H),
                confidence: 1.,
            });
        }
    }
    out
}

fn split_keep_offsets(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut spaces = 0;
    let mut last_end = 0;
    for (i, c) in s.char_indices() {
        if c == ' ' {
            spaces += 1;
            if spaces >= 2
                && let Some(st) = start.take()
            {
                out.push((st, &s[st..last_end]));
            }
        } else {
            if start.is_none() {
                start = Some(i);
            }
            spaces = 0;
            last_end = i + c.len_utf8();
        }
    }
    if let Some(st) = start {
        out.push((st, s[st..].trim_end()));
    }
    out
}

/// What the parser cannot tell from the receipt itself.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// How to read ambiguous numeric dates when the receipt gives no hint.
    pub date_order: DateOrder,
    /// ISO 4217 code used when the receipt shows no currency (e.g. from the user's locale).
    pub default_currency: Option<String>,
    /// Dates after this day are unlikely to be the purchase date.
    pub today: Option<NaiveDate>,
}

/// A value read from the receipt, how sure the parser is of it (0..1), and the indices of the
/// input lines it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Field<T> {
    pub value: T,
    pub confidence: f32,
    pub lines: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineItem {
    pub description: String,
    pub quantity: Option<Decimal>,
    pub amount: Amount,
    pub confidence: f32,
    pub lines: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Warning {
    /// The line items' amounts don't add up to the subtotal or the total.
    ItemsDoNotAddUp { items: Amount, expected: Amount },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::ItemsDoNotAddUp { items, expected } => {
                write!(f, "the line items add up to {items}, not {expected}")
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Receipt {
    pub merchant: Option<Field<String>>,
    pub date: Option<Field<NaiveDate>>,
    pub total: Option<Field<Amount>>,
    pub subtotal: Option<Field<Amount>>,
    pub tax: Option<Field<Amount>>,
    pub currency: Option<Field<String>>,
    pub items: Vec<LineItem>,
    pub warnings: Vec<Warning>,
}

/// Reads the receipt's fields from its lines.
pub fn parse(lines: &[Line], options: &ParseOptions) -> Receipt {
    let rows = rows::build_rows(lines);
    let mut receipt = Receipt {
        merchant: merchant::merchant(&rows),
        date: date::purchase_date(&rows, options),
        currency: money::currency(&rows, options),
        ..Receipt::default()
    };
    let totals = totals::totals(&rows);
    receipt.total = totals.total;
    receipt.subtotal = totals.subtotal;
    receipt.tax = totals.tax;
    receipt.items = items::items(&rows, totals.first_summary_row);
    if let Some(warning) = items::check_items(&receipt) {
        receipt.warnings.push(warning);
    }
    receipt
}

#[cfg(test)]
mod tests;
