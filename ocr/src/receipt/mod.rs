//! Receipt fields from text lines and their positions: merchant, date, total, subtotal, tax,
//! currency and line items, each with a confidence. Pure: no I/O, no clock (today's date, used
//! to judge plausible dates, comes in through [`ParseOptions`]).

mod date;
mod money;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

pub use date::{DateOrder, FoundDate, find_dates};
pub use money::{Amount, FoundAmount, find_amounts, parse_number};

use crate::geometry::Rect;
use crate::layout;

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

/// A row of the page: the lines side by side, left to right.
#[derive(Clone, Debug)]
struct Row {
    text: String,
    upper: String,
    /// Input line index and byte range in `text` of each part.
    parts: Vec<(usize, std::ops::Range<usize>)>,
    bounds: Rect,
    confidence: f32,
}

impl Row {
    fn lines_in(&self, range: std::ops::Range<usize>) -> Vec<usize> {
        self.parts
            .iter()
            .filter(|(_, r)| r.start < range.end && range.start < r.end)
            .map(|(i, _)| *i)
            .collect()
    }

    fn lines(&self) -> Vec<usize> {
        self.parts.iter().map(|(i, _)| *i).collect()
    }

    fn has(&self, word: &str) -> bool {
        has_word(&self.upper, word)
    }

    fn has_any(&self, words: &[&str]) -> bool {
        words.iter().any(|w| self.has(w))
    }
}

/// Whether `upper` contains `word` not glued to letters on either side.
fn has_word(upper: &str, word: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = upper[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let before = upper[..start].chars().next_back();
        let after = upper[end..].chars().next();
        let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
        if !letter(before) && !letter(after) {
            return true;
        }
        from = start + word.len().max(1);
    }
    false
}

fn build_rows(lines: &[Line]) -> Vec<Row> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| {
        lines[a]
            .bounds
            .center_y()
            .total_cmp(&lines[b].bounds.center_y())
    });
    let row_of = layout::rows(order.iter().map(|&i| lines[i].bounds));
    let mut grouped: Vec<Vec<usize>> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if grouped.len() <= row_of[k] {
            grouped.push(Vec::new());
        }
        grouped[row_of[k]].push(i);
    }
    grouped
        .into_iter()
        .map(|mut members| {
            members.sort_by(|&a, &b| lines[a].bounds.left.total_cmp(&lines[b].bounds.left));
            let mut text = String::new();
            let mut parts = Vec::new();
            let mut bounds = lines[members[0]].bounds;
            let mut confidence = 1f32;
            for &i in &members {
                if !text.is_empty() {
                    text.push(' ');
                }
                let start = text.len();
                text.push_str(lines[i].text.trim());
                parts.push((i, start..text.len()));
                bounds = bounds.union(&lines[i].bounds);
                confidence = confidence.min(lines[i].confidence);
            }
            Row {
                upper: text.to_uppercase(),
                text,
                parts,
                bounds,
                confidence,
            }
        })
        .collect()
}

/// Reads the receipt's fields from its lines.
pub fn parse(lines: &[Line], options: &ParseOptions) -> Receipt {
    let rows = build_rows(lines);
    let mut receipt = Receipt {
        merchant: merchant(&rows),
        date: date(&rows, options),
        currency: currency(&rows, options),
        ..Receipt::default()
    };
    let totals = totals(&rows);
    receipt.total = totals.total;
    receipt.subtotal = totals.subtotal;
    receipt.tax = totals.tax;
    receipt.items = items(&rows, totals.first_summary_row);
    if let Some(warning) = check_items(&receipt) {
        receipt.warnings.push(warning);
    }
    receipt
}

// ---- Totals ------------------------------------------------------------------------------------

/// Lines that carry an amount but are not the total.
const NOT_TOTAL: &[&str] = &[
    "SUBTOTAL",
    "SUB TOTAL",
    "SUB-TOTAL",
    "QTY",
    "QUANTITY",
    "ITEM",
    "ITEMS",
    "ITEM(S)",
    "PCS",
    "DISCOUNT",
    "DISC",
    "SAVING",
    "SAVINGS",
    "SAVED",
    "CHANGE",
    "CASH",
    "TENDER",
    "TENDERED",
    "PAID",
    "PAYMENT",
    "CARD",
    "VISA",
    "MASTER",
    "MASTERCARD",
    "CREDIT",
    "DEBIT",
    "BAKI",
    "TUNAI",
    "POINTS",
    "POINT",
    "EXCL",
    "EXCLUDING",
    "EXCLUSIVE",
    "BEFORE",
    "NETT WEIGHT",
    "WEIGHT",
    "VOUCHER",
    "DEPOSIT",
    "TIP",
    "TIPS",
    "GROSS",
];

const TAX_WORDS: &[&str] = &["GST", "TAX", "SST", "VAT", "CUKAI"];

/// Keywords that say "this is what was charged".
const TOTAL_WORDS: &[&str] = &[
    "TOTAL",
    "JUMLAH",
    "AMOUNT DUE",
    "BALANCE DUE",
    "AMOUNT PAYABLE",
    "NET AMOUNT",
    "NETT AMOUNT",
    "GRAND",
    "TOTAL DUE",
    "AMOUNT",
    "TOT",
    "AMT",
    "DUE",
];

struct Totals {
    total: Option<Field<Amount>>,
    subtotal: Option<Field<Amount>>,
    tax: Option<Field<Amount>>,
    first_summary_row: Option<usize>,
}

#[derive(Clone, Debug)]
struct Candidate {
    row: usize,
    amount: Amount,
    lines: Vec<usize>,
    confidence: f32,
    rounded: bool,
    has_cents: bool,
}

/// The amount that goes with the label in row `r`: the rightmost price after the label on the
/// same row, else a lone price on the next row.
fn labelled_amount(rows: &[Row], r: usize, label_end: usize) -> Option<(Amount, Vec<usize>, bool)> {
    let row = &rows[r];
    let found = find_amounts(&row.text);
    let after: Vec<&FoundAmount> = found.iter().filter(|a| a.start >= label_end).collect();
    if let Some(a) = after.iter().rev().find(|a| a.has_cents) {
        return Some((a.amount, row.lines_in(a.start..a.end), true));
    }
    // "6 00": the point was read as a space.
    if let Some((amount, range)) = spaced_price(&row.text, label_end) {
        return Some((amount, row.lines_in(range), true));
    }
    if let Some(a) = after.last() {
        return Some((a.amount, row.lines_in(a.start..a.end), a.has_cents));
    }
    let next = rows.get(r + 1)?;
    let letters = next.text.chars().filter(|c| c.is_alphabetic()).count();
    let found = find_amounts(&next.text);
    if letters <= 3 && found.len() == 1 && found[0].has_cents {
        // Only when the next row is close below.
        if next.bounds.top - row.bounds.bottom < row.bounds.height() * 1.5 {
            return Some((found[0].amount, next.lines(), true));
        }
    }
    None
}

/// A price at the end of `text` (after `from`) whose decimal point was read as a space:
/// digits, one space, exactly two digits.
fn spaced_price(text: &str, from: usize) -> Option<(Amount, std::ops::Range<usize>)> {
    let tail = text.get(from..)?.trim_end();
    let end = from + tail.len();
    let (head, cents) = tail.rsplit_once(' ')?;
    let int = head.rsplit(' ').next()?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if cents.len() != 2 || !ok(cents) || !ok(int) || int.len() > 7 {
        return None;
    }
    let amount: Amount = format!("{int}.{cents}").parse().ok()?;
    Some((amount, end - cents.len() - 1 - int.len()..end))
}

fn totals(rows: &[Row]) -> Totals {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut subtotal: Option<Field<Amount>> = None;
    let mut taxes: Vec<Candidate> = Vec::new();
    let mut first_summary_row = None;
    let mut cash = None;
    let mut change = None;
    let mut rounding_adjustment: Option<(usize, Amount)> = None;
    let mut weak: Vec<Candidate> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let u = &row.upper;
        // A tax summary table repeats totals per rate at the bottom: nothing to take there.
        if row.has("SUMMARY") || row.has("RINGKASAN") {
            break;
        }
        let compact: String = u.chars().filter(|c| !c.is_whitespace()).collect();
        let is_sub = compact.contains("SUBTOTAL") || compact.contains("SUB-TOTAL");
        let rounding = u.contains("ROUND");
        let label_end = |words: &[&str]| {
            words
                .iter()
                .filter_map(|w| u.find(w).map(|p| p + w.len()))
                .max()
                .unwrap_or(0)
        };
        if is_sub {
            first_summary_row.get_or_insert(r);
            if subtotal.is_none()
                && let Some((amount, lines, cents)) =
                    labelled_amount(rows, r, label_end(&["TOTAL"]))
            {
                subtotal = Some(Field {
                    value: amount,
                    confidence: row.confidence * if cents { 0.9 } else { 0.6 },
                    lines,
                });
            }
            continue;
        }
        if row.has_any(&["CHANGE", "BAKI", "KEMBALI"]) && !row.has("TOTAL") {
            if let Some((amount, _, true)) =
                labelled_amount(rows, r, label_end(&["CHANGE", "BAKI", "KEMBALI"]))
            {
                change.get_or_insert(amount);
            }
            continue;
        }
        if row.has_any(&["CASH", "TUNAI", "TENDERED", "TENDER", "PAYMENT"]) && !row.has("TOTAL") {
            if let Some((amount, _, true)) =
                labelled_amount(rows, r, label_end(&["CASH", "TUNAI", "TENDER"]))
            {
                cash.get_or_insert(amount);
            }
            continue;
        }
        let totalish = TOTAL_WORDS.iter().any(|w| has_word(u, w));
        let taxish = TAX_WORDS.iter().any(|w| has_word(u, w));
        if taxish && !(totalish && (u.contains("INCL") || u.contains("INCLUSIVE"))) {
            // "GST 6% 0.51", "TOTAL GST 1.90"; not "GST REG NO", "TAX INVOICE".
            let registration = row.has_any(&["REG", "ID", "NO", "INVOICE", "NO.", "SUMMARY"]);
            if !registration
                && let Some((amount, lines, true)) = labelled_amount(rows, r, label_end(TAX_WORDS))
            {
                first_summary_row.get_or_insert(r);
                taxes.push(Candidate {
                    row: r,
                    amount,
                    lines,
                    confidence: row.confidence * if row.has("TOTAL") { 0.9 } else { 0.75 },
                    rounded: false,
                    has_cents: true,
                });
            }
            // "TOTAL GST", "TOTAL TAX": the tax, not the total.
            let tax_total = TAX_WORDS
                .iter()
                .any(|w| u.contains(&format!("TOTAL {w}")) || u.contains(&format!("TOTAL{w}")));
            if !totalish || tax_total {
                continue;
            }
        }
        if rounding && !row.has("TOTAL") {
            let found = find_amounts(&row.text);
            if let Some(a) = found.iter().rev().find(|a| a.has_cents) {
                let adj = if a.negative {
                    Amount::new(-a.amount.decimal())
                } else {
                    a.amount
                };
                rounding_adjustment.get_or_insert((r, adj));
            }
            continue;
        }
        if !totalish {
            continue;
        }
        let excluded = NOT_TOTAL.iter().any(|w| has_word(u, w));
        if excluded && !(rounding && row.has("TOTAL")) {
            // "Total Qty: 2   116.28": some receipts print the amount on the quantity row.
            // Kept as a last resort only.
            if row.has_any(&["QTY", "QUANTITY", "ITEM", "ITEMS"])
                && let Some((amount, lines, true)) =
                    labelled_amount(rows, r, label_end(TOTAL_WORDS))
            {
                weak.push(Candidate {
                    row: r,
                    amount,
                    lines,
                    confidence: row.confidence * 0.4,
                    rounded: false,
                    has_cents: true,
                });
            }
            continue;
        }
        let Some((amount, lines, cents)) = labelled_amount(rows, r, label_end(TOTAL_WORDS)) else {
            continue;
        };
        if amount.is_zero() {
            continue;
        }
        first_summary_row.get_or_insert(r);
        let strong = row.has_any(&["TOTAL", "JUMLAH", "GRAND", "DUE", "PAYABLE", "NET", "NETT"]);
        let confidence =
            row.confidence * if cents { 0.85 } else { 0.5 } * if strong { 1. } else { 0.8 };
        candidates.push(Candidate {
            row: r,
            amount,
            lines,
            confidence,
            rounded: rounding,
            has_cents: cents,
        });
    }

    // Prices written with cents beat bare integers (often a price whose point OCR missed).
    if candidates.iter().any(|c| c.has_cents) {
        candidates.retain(|c| c.has_cents);
    }
    // The total: a rounded total when there is one, else the largest labelled total (totals
    // before tax, after discounts and the like come out smaller).
    let mut total = candidates
        .iter()
        .filter(|c| c.rounded)
        .max_by(|a, b| a.amount.cmp(&b.amount))
        .or_else(|| {
            candidates
                .iter()
                .max_by(|a, b| a.amount.cmp(&b.amount).then(b.row.cmp(&a.row)))
        })
        .cloned();
    if total.is_none() {
        // No labelled total: what was paid in cash less the change.
        if let (Some(cash), Some(change)) = (cash, change)
            && cash > change
        {
            total = Some(Candidate {
                row: 0,
                amount: cash - change,
                lines: Vec::new(),
                confidence: 0.5,
                rounded: false,
                has_cents: true,
            });
        }
    }
    if total.is_none() {
        total = weak.into_iter().max_by(|a, b| a.amount.cmp(&b.amount));
    }
    // A rounding adjustment after the total: the amount paid is the total adjusted, when the
    // receipt prints it (possibly unlabelled) below the adjustment.
    if let (Some(t), Some((adj_row, adj))) = (total.as_mut(), rounding_adjustment)
        && !t.rounded
        && adj_row > t.row
        && !adj.is_zero()
    {
        let rounded = t.amount + adj;
        let shown = rows
            .iter()
            .enumerate()
            .skip(adj_row + 1)
            .take(3)
            .find_map(|(r, row)| {
                find_amounts(&row.text)
                    .into_iter()
                    .find(|a| a.has_cents && a.amount == rounded)
                    .map(|a| (r, row.lines_in(a.start..a.end)))
            });
        if let Some((r, lines)) = shown {
            *t = Candidate {
                row: r,
                amount: rounded,
                lines,
                confidence: t.confidence,
                rounded: true,
                has_cents: true,
            };
        }
    }
    // A rounded total the receipt prints, read the same on another total row too, is what was
    // paid: when cash less change disagrees, the cash or the change was misread.
    let settled = total.as_ref().is_some_and(|t| {
        t.rounded
            && candidates
                .iter()
                .any(|c| c.row != t.row && c.amount == t.amount)
    });
    // What was paid (cash less change) settles a total a cent or two off: the paid amount is
    // the rounded total, or the OCR misread a digit of the total.
    if let (Some(t), Some(cash), Some(change)) = (total.as_mut(), cash, change)
        && !settled
    {
        let paid = cash - change;
        let off = (paid.decimal() - t.amount.decimal()).abs();
        if off > Decimal::ZERO && off < Decimal::new(10, 2) {
            t.amount = paid;
            t.rounded = true;
        }
    }
    let tax = taxes
        .iter()
        .filter(|t| total.as_ref().is_none_or(|c| t.amount < c.amount))
        .max_by(|a, b| {
            a.confidence
                .total_cmp(&b.confidence)
                .then(b.row.cmp(&a.row))
        })
        .map(|t| Field {
            value: t.amount,
            confidence: t.confidence,
            lines: t.lines.clone(),
        });
    let total = total.map(|mut c| {
        // Agreement between the figures raises confidence.
        let agrees = subtotal.as_ref().is_some_and(|s| {
            s.value == c.amount || tax.as_ref().is_some_and(|t| s.value + t.value == c.amount)
        }) || matches!((cash, change), (Some(cash), Some(change)) if cash - change == c.amount);
        if agrees {
            c.confidence = (c.confidence + 0.1).min(1.);
        }
        Field {
            value: c.amount,
            confidence: c.confidence,
            lines: c.lines,
        }
    });
    Totals {
        total,
        subtotal,
        tax,
        first_summary_row,
    }
}

// ---- Date --------------------------------------------------------------------------------------

fn date(rows: &[Row], options: &ParseOptions) -> Option<Field<NaiveDate>> {
    // An unambiguous month-first date on the receipt tells how to read the ambiguous ones.
    let mut order = options.date_order;
    for row in rows {
        for d in find_dates(&row.text, DateOrder::MonthFirst) {
            let alt = find_dates(&row.text[d.start..d.end], DateOrder::DayFirst);
            if d.unambiguous && alt.first().is_some_and(|a| a.date == d.date) {
                let text = &row.text[d.start..d.end];
                let first: Option<u32> = text
                    .split(['/', '-', '.'])
                    .next()
                    .and_then(|s| s.parse().ok());
                let second: Option<u32> = text
                    .split(['/', '-', '.'])
                    .nth(1)
                    .and_then(|s| s.parse().ok());
                if let (Some(a), Some(b)) = (first, second)
                    && a <= 12
                    && b > 12
                    && text
                        .split(['/', '-', '.'])
                        .next()
                        .is_some_and(|s| s.len() <= 2)
                {
                    order = DateOrder::MonthFirst;
                }
            }
        }
    }
    let mut best: Option<(f32, Field<NaiveDate>)> = None;
    let mut seen: Vec<NaiveDate> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for d in find_dates(&row.text, order) {
            seen.push(d.date);
            let mut score = 0.6;
            if d.unambiguous {
                score += 0.15;
            }
            if row.has_any(&["DATE", "TARIKH", "DATED"]) || row.upper.contains("DATE") {
                score += 0.2;
            }
            if row.has_any(&[
                "EXP", "EXPIRY", "EXPIRES", "VALID", "UNTIL", "DUE", "BEFORE", "BIRTH",
            ]) {
                score -= 0.4;
            }
            if !date::plausible(d.date, options.today) {
                score -= 0.5;
            }
            // Purchase dates sit near the top or the bottom more than in the middle; a small
            // preference for earlier rows breaks ties.
            score -= 0.002 * r as f32;
            let field = Field {
                value: d.date,
                confidence: (score * row.confidence).clamp(0., 1.),
                lines: row.lines_in(d.start..d.end),
            };
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, field));
            }
        }
    }
    let (_, mut field) = best?;
    if seen.iter().filter(|d| **d == field.value).count() > 1 {
        field.confidence = (field.confidence + 0.1).min(1.);
    }
    Some(field)
}

// ---- Currency ----------------------------------------------------------------------------------

fn currency(rows: &[Row], options: &ParseOptions) -> Option<Field<String>> {
    let mut counts: Vec<(&'static str, usize, Vec<usize>)> = Vec::new();
    let mut add = |code: &'static str, lines: Vec<usize>| match counts
        .iter_mut()
        .find(|(c, _, _)| *c == code)
    {
        Some(entry) => {
            entry.1 += 1;
            entry.2.extend(lines);
        }
        None => counts.push((code, 1, lines)),
    };
    for row in rows {
        for a in find_amounts(&row.text) {
            if let Some(code) = a.currency {
                add(code, row.lines_in(a.start..a.end));
            }
        }
        // Column headers and labels: "RM", "(RM)", "Total (RM)", "Amount USD".
        for (marker, code) in money::CURRENCY_MARKERS {
            if let Some(code) = code
                && marker.chars().all(|c| c.is_ascii_alphabetic())
                && row.has(marker)
            {
                add(code, row.lines());
            }
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let dollar_default = options
        .default_currency
        .as_deref()
        .filter(|c| c.ends_with('D'))
        .unwrap_or("USD");
    match counts.first() {
        Some((code, n, lines)) => {
            let value = if *code == "$" { dollar_default } else { code };
            let confidence = if *code == "$" { 0.6 } else { 0.8 } + if *n > 1 { 0.15 } else { 0. };
            Some(Field {
                value: value.to_owned(),
                confidence,
                lines: lines.clone(),
            })
        }
        None => options.default_currency.as_ref().map(|c| Field {
            value: c.clone(),
            confidence: 0.3,
            lines: Vec::new(),
        }),
    }
}

// ---- Merchant ----------------------------------------------------------------------------------

/// Words that end company names.
const COMPANY_WORDS: &[&str] = &[
    "SDN BHD",
    "SDN. BHD",
    "SDN.BHD",
    "BHD",
    "S/B",
    "SB",
    "LTD",
    "LIMITED",
    "INC",
    "LLC",
    "LLP",
    "PLC",
    "GMBH",
    "CORP",
    "CORPORATION",
    "CO.",
    "COMPANY",
    "ENTERPRISE",
    "ENTERPRISES",
    "TRADING",
    "PTE",
    "PTY",
    "S.A.",
    "AG",
    "BV",
    "SRL",
];

/// Words of businesses' names (weaker than a company suffix).
const BUSINESS_WORDS: &[&str] = &[
    "RESTAURANT",
    "RESTORAN",
    "CAFE",
    "MART",
    "MARKET",
    "STORE",
    "STORES",
    "SHOP",
    "HARDWARE",
    "BAKERY",
    "PHARMACY",
    "FARMASI",
    "HOTEL",
    "STATIONERY",
    "BOOKS",
    "SUPERMARKET",
    "KEDAI",
    "PERNIAGAAN",
    "SYARIKAT",
    "PASARAYA",
    "BISTRO",
    "KITCHEN",
    "GALLERY",
    "ELECTRICAL",
];

/// Words of lines that are not the merchant's name.
const NOT_MERCHANT: &[&str] = &[
    "TEL",
    "TEL:",
    "FAX",
    "PHONE",
    "H/P",
    "HP",
    "EMAIL",
    "E-MAIL",
    "WWW",
    "HTTP",
    "GST",
    "REG",
    "REGISTRATION",
    "ROC",
    "BRN",
    "SST",
    "VAT",
    "ABN",
    "TAX",
    "INVOICE",
    "RECEIPT",
    "BILL",
    "CASHIER",
    "TABLE",
    "ORDER",
    "WELCOME",
    "THANK",
    "DATE",
    "TIME",
    "JALAN",
    "JLN",
    "ROAD",
    "STREET",
    "AVENUE",
    "LORONG",
    "TAMAN",
    "LOT",
    "BLOCK",
    "FLOOR",
    "LEVEL",
    "SUITE",
    "NO.",
    "NO",
    "UNIT",
    "KM",
    "POSTCODE",
    "TMN",
    "OFFICIAL",
    "SIMPLIFIED",
    "COPY",
    "DOCUMENT",
    "MEMBER",
    "SERVER",
    "COUNTER",
    "TERMINAL",
    "POS",
];

fn merchant(rows: &[Row]) -> Option<Field<String>> {
    let mut heights: Vec<f32> = rows.iter().map(|r| r.bounds.height()).collect();
    heights.sort_by(f32::total_cmp);
    let median_h = heights
        .get(heights.len() / 2)
        .copied()
        .unwrap_or(1.)
        .max(1.);

    let mut best: Option<(f32, usize)> = None;
    for (r, row) in rows.iter().enumerate().take(12) {
        let letters = row.text.chars().filter(|c| c.is_alphabetic()).count();
        let digits = row.text.chars().filter(|c| c.is_ascii_digit()).count();
        if letters < 3 {
            continue;
        }
        // Past the header: the first date or price ends the search.
        if r > 0
            && (!find_dates(&row.text, DateOrder::DayFirst).is_empty()
                || find_amounts(&row.text).iter().any(|a| a.has_cents))
        {
            break;
        }
        let mut score = 1. - 0.12 * r as f32;
        if COMPANY_WORDS.iter().any(|w| row.has(w)) {
            score += 1.2;
        } else if BUSINESS_WORDS.iter().any(|w| row.has(w)) {
            score += 0.5;
        }
        if NOT_MERCHANT.iter().any(|w| row.has(w)) {
            score -= 1.;
        }
        if row.text.contains('@') || row.upper.contains(".COM") {
            score -= 1.;
        }
        // Addresses: comma-separated parts with numbers, postcodes.
        let commas = row.text.matches(',').count();
        if commas >= 2 || (commas >= 1 && digits > 0) {
            score -= 0.8;
        }
        if digits * 3 > letters {
            score -= 0.8;
        }
        score += ((row.bounds.height() / median_h) - 1.).clamp(-0.3, 0.6);
        let upper_ratio =
            row.text.chars().filter(|c| c.is_uppercase()).count() as f32 / letters as f32;
        if upper_ratio > 0.8 {
            score += 0.1;
        } else if upper_ratio < 0.2 {
            // All lower case: a handwritten note or a slogan, rarely the printed name.
            score -= 0.9;
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, r));
        }
    }
    let (score, r) = best?;
    if score < -0.5 {
        // Every candidate looks like an address, a phone number or a heading.
        return None;
    }
    // Long names wrap: take in the rows above and below that continue the name.
    let has_suffix = |row: &Row| COMPANY_WORDS.iter().any(|w| row.has(w));
    let (mut first, mut last) = (r, r);
    if first > 0 {
        let (above, here) = (&rows[first - 1], &rows[first]);
        // "LIAN CHI PU TIAN VEGETARIAN" / "RESTAURANT SDN BHD"; "ACME" / "SDN BHD".
        let continues = starts_with_company_word(&here.upper)
            || (has_suffix(here) && here.text.split_whitespace().count() <= 3);
        if continues && is_name_like(above, here) && wraps(above, here) {
            first -= 1;
        }
    }
    while last + 1 < rows.len() && last - first < 3 {
        let (here, next) = (&rows[last], &rows[last + 1]);
        let text = here.upper.trim_end();
        let open = text.matches('(').count() > text.matches(')').count();
        let dangling = text.ends_with('&') || text.ends_with(" AND") || text.ends_with('-');
        let suffix_next =
            starts_with_company_word(&next.upper) && next.text.split_whitespace().count() <= 4;
        // A name without its suffix yet may go on, in the same type, on the next row.
        let unfinished = !has_suffix(here) && (suffix_next || wraps(here, next));
        if (open || dangling || unfinished) && is_name_like(next, here) && wraps(here, next) {
            last += 1;
        } else {
            break;
        }
    }
    let joined: Vec<&str> = rows[first..=last]
        .iter()
        .map(|row| row.text.as_str())
        .collect();
    let name = clean_name(&joined.join(" "));
    let lines: Vec<usize> = rows[first..=last].iter().flat_map(Row::lines).collect();
    let confidence = (0.3 + 0.25 * score).clamp(0.1, 0.95) * rows[r].confidence;
    (!name.is_empty()).then_some(Field {
        value: name,
        confidence,
        lines,
    })
}

fn starts_with_company_word(upper: &str) -> bool {
    let t = upper.trim_start_matches(|c: char| !c.is_alphanumeric());
    let t = t.strip_prefix("M) ").unwrap_or(t);
    COMPANY_WORDS
        .iter()
        .any(|w| t.starts_with(w) && !t[w.len()..].starts_with(|c: char| c.is_alphabetic()))
}

/// A row that can be part of a printed name whose other part is `other`: no address, phone or
/// registration words, few digits, and the same case style.
fn is_name_like(row: &Row, other: &Row) -> bool {
    let caps = |r: &Row| {
        let letters = r.text.chars().filter(|c| c.is_alphabetic()).count();
        let upper = r.text.chars().filter(|c| c.is_uppercase()).count();
        letters > 0 && upper * 10 >= letters * 8
    };
    let letters = row.text.chars().filter(|c| c.is_alphabetic()).count();
    let digits = row.text.chars().filter(|c| c.is_ascii_digit()).count();
    letters >= 2
        && caps(row) == caps(other)
        && digits * 3 <= letters
        && !row.text.contains(',')
        && !row.text.contains(':')
        && !NOT_MERCHANT.iter().any(|w| row.has(w))
}

/// Whether `lower` continues `upper` as wrapped text: directly below it, in type of about the
/// same size.
fn wraps(upper: &Row, lower: &Row) -> bool {
    let (h1, h2) = (upper.bounds.height(), lower.bounds.height());
    let gap = lower.bounds.top - upper.bounds.bottom;
    h2 >= 0.75 * h1 && h2 <= 1.33 * h1 && gap < 0.6 * h1.min(h2)
}

/// Undoes two misreadings the recogniser makes on Latin-script names: a stray accent on one
/// letter of an otherwise unaccented name ("Restäurants", "HARDWARÉ"), and the Malaysian
/// company suffix "SDN BHD" read as "SON BHD".
fn fix_misread_letters(text: &str) -> String {
    const ACCENTED: &str = "ÀÁÂÃÄÅàáâãäåÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûü";
    const PLAIN: &str = "AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuu";
    let accented = text.chars().filter(|c| ACCENTED.contains(*c)).count();
    let mut out: String = if accented == 1 {
        text.chars()
            .map(|c| match ACCENTED.chars().position(|a| a == c) {
                Some(i) => PLAIN.chars().nth(i).unwrap_or(c),
                None => c,
            })
            .collect()
    } else {
        text.to_owned()
    };
    for (wrong, right) in [
        ("SON BHD", "SDN BHD"),
        ("Son Bhd", "Sdn Bhd"),
        ("S0N BHD", "SDN BHD"),
    ] {
        out = out.replace(wrong, right);
    }
    out
}

/// Drops a trailing registration number ("(860671-D)", "CO. REG 1234") and stray punctuation.
fn clean_name(text: &str) -> String {
    let mut s = fix_misread_letters(text.trim());
    loop {
        let trimmed = s.trim_end();
        if let Some(open) = trimmed.rfind('(') {
            let tail = &trimmed[open..];
            if tail.chars().any(|c| c.is_ascii_digit()) {
                s = trimmed[..open].to_owned();
                continue;
            }
        }
        break;
    }
    // "519537-X)", "(860671-D", "1072825-A": company numbers that lost their brackets.
    loop {
        let trimmed = s.trim_end();
        let Some(last) = trimmed.rsplit(' ').next() else {
            break;
        };
        let core = last.trim_matches(|c| c == '(' || c == ')');
        let digits = core.chars().filter(|c| c.is_ascii_digit()).count();
        if last.len() < trimmed.len() && digits >= 4 && digits * 2 >= core.len() {
            s = trimmed[..trimmed.len() - last.len()].to_owned();
        } else {
            break;
        }
    }
    let upper = s.to_uppercase();
    for marker in ["CO. REG", "CO.REG", "COMPANY NO", "CO NO", "ROC NO", "(CO"] {
        if let Some(p) = upper.find(marker)
            && p > 0
        {
            s.truncate(p);
        }
    }
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '-' | ':' | ',' | '*' | '"' | '\''))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- Line items --------------------------------------------------------------------------------

/// Rows above the totals that end with a price: description, optional quantity, amount.
fn items(rows: &[Row], first_summary_row: Option<usize>) -> Vec<LineItem> {
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

fn check_items(receipt: &Receipt) -> Option<Warning> {
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

#[cfg(test)]
mod tests;
