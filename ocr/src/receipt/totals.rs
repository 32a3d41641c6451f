//! The totals block: the total (what was paid), the subtotal and the tax, read from the rows
//! labelled with them and checked against what was paid in cash less the change.

use rust_decimal::Decimal;

use super::Field;
use super::money::{Amount, FoundAmount, find_amounts};
use super::rows::{Row, has_word};

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

pub(super) const TAX_WORDS: &[&str] = &["GST", "TAX", "SST", "VAT", "CUKAI"];

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

/// Labels of the change given back, which is never the total.
const CHANGE_WORDS: &[&str] = &["CHANGE", "BAKI", "KEMBALI"];

pub(super) struct Totals {
    pub(super) total: Option<Field<Amount>>,
    pub(super) subtotal: Option<Field<Amount>>,
    pub(super) tax: Option<Field<Amount>>,
    /// The first row of the totals block: line items end above it.
    pub(super) first_summary_row: Option<usize>,
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

/// The total, the subtotal and the tax: what the rows say, then the total chosen among the
/// rows labelled with it, adjusted for rounding and for what was paid, then the tax below it.
pub(super) fn totals(rows: &[Row]) -> Totals {
    let mut summary = Summary::read(rows);
    let mut total = summary.choose_total();
    if let Some(t) = total.as_mut() {
        summary.apply_rounding_adjustment(rows, t);
        summary.settle_with_cash(t);
    }
    let tax = summary.tax_below(total.as_ref());
    let total = total.map(|c| summary.total_field(c, tax.as_ref()));
    Totals {
        total,
        subtotal: summary.subtotal,
        tax,
        first_summary_row: summary.first_summary_row,
    }
}

/// What the rows of a receipt say about its totals, before the total is chosen.
#[derive(Default)]
struct Summary {
    /// Rows labelled as the total.
    candidates: Vec<Candidate>,
    /// Totals printed on a quantity row: a last resort.
    weak: Vec<Candidate>,
    subtotal: Option<Field<Amount>>,
    taxes: Vec<Candidate>,
    first_summary_row: Option<usize>,
    cash: Option<Amount>,
    change: Option<Amount>,
    /// The row of a rounding adjustment and the amount it adds (negative when it takes off).
    rounding_adjustment: Option<(usize, Amount)>,
}

impl Summary {
    /// Reads the rows top to bottom.
    fn read(rows: &[Row]) -> Summary {
        let mut summary = Summary::default();
        for (r, row) in rows.iter().enumerate() {
            // A tax summary table repeats totals per rate at the bottom: nothing to take there.
            if row.has("SUMMARY") || row.has("RINGKASAN") {
                break;
            }
            summary.read_row(rows, r);
        }
        summary
    }

    /// Notes what row `r` is: a subtotal, the change, the cash paid, a tax, a rounding
    /// adjustment or a total. Other rows are passed over.
    fn read_row(&mut self, rows: &[Row], r: usize) {
        let row = &rows[r];
        let u = &row.upper;
        let compact: String = u.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("SUBTOTAL") || compact.contains("SUB-TOTAL") {
            self.read_subtotal(rows, r);
            return;
        }
        if row.has_any(CHANGE_WORDS) && !row.has("TOTAL") {
            if let Some((amount, _, true)) = labelled_amount(rows, r, label_end(u, CHANGE_WORDS)) {
                self.change.get_or_insert(amount);
            }
            return;
        }
        if row.has_any(&["CASH", "TUNAI", "TENDERED", "TENDER", "PAYMENT"]) && !row.has("TOTAL") {
            if let Some((amount, _, true)) =
                labelled_amount(rows, r, label_end(u, &["CASH", "TUNAI", "TENDER"]))
            {
                self.cash.get_or_insert(amount);
            }
            return;
        }
        let totalish = TOTAL_WORDS.iter().any(|w| has_word(u, w));
        let taxish = TAX_WORDS.iter().any(|w| has_word(u, w));
        if taxish && !(totalish && (u.contains("INCL") || u.contains("INCLUSIVE"))) {
            self.read_tax(rows, r);
            // "TOTAL GST", "TOTAL TAX": the tax, not the total.
            let tax_total = TAX_WORDS
                .iter()
                .any(|w| u.contains(&format!("TOTAL {w}")) || u.contains(&format!("TOTAL{w}")));
            if !totalish || tax_total {
                return;
            }
        }
        let rounding = u.contains("ROUND");
        if rounding && !row.has("TOTAL") {
            self.read_rounding_adjustment(r, row);
            return;
        }
        if totalish {
            self.read_total(rows, r, rounding);
        }
    }

    fn read_subtotal(&mut self, rows: &[Row], r: usize) {
        self.first_summary_row.get_or_insert(r);
        if self.subtotal.is_none()
            && let Some((amount, lines, cents)) =
                labelled_amount(rows, r, label_end(&rows[r].upper, &["TOTAL"]))
        {
            self.subtotal = Some(Field {
                value: amount,
                confidence: rows[r].confidence * if cents { 0.9 } else { 0.6 },
                lines,
            });
        }
    }

    /// "GST 6% 0.51", "TOTAL GST 1.90"; not "GST REG NO", "TAX INVOICE".
    fn read_tax(&mut self, rows: &[Row], r: usize) {
        let row = &rows[r];
        let registration = row.has_any(&["REG", "ID", "NO", "INVOICE", "NO.", "SUMMARY"]);
        if !registration
            && let Some((amount, lines, true)) =
                labelled_amount(rows, r, label_end(&row.upper, TAX_WORDS))
        {
            self.first_summary_row.get_or_insert(r);
            self.taxes.push(Candidate {
                row: r,
                amount,
                lines,
                confidence: row.confidence * if row.has("TOTAL") { 0.9 } else { 0.75 },
                rounded: false,
                has_cents: true,
            });
        }
    }

    /// "ROUNDING -0.02", "ROUNDING ADJ 0.01": the first one counts.
    fn read_rounding_adjustment(&mut self, r: usize, row: &Row) {
        let found = find_amounts(&row.text);
        if let Some(a) = found.iter().rev().find(|a| a.has_cents) {
            let adj = if a.negative {
                Amount::new(-a.amount.decimal())
            } else {
                a.amount
            };
            self.rounding_adjustment.get_or_insert((r, adj));
        }
    }

    /// A row labelled as what was charged ("TOTAL", "JUMLAH", "AMOUNT DUE"); `rounding` when it
    /// says it is the total after rounding.
    fn read_total(&mut self, rows: &[Row], r: usize, rounding: bool) {
        let row = &rows[r];
        let u = &row.upper;
        let excluded = NOT_TOTAL.iter().any(|w| has_word(u, w));
        if excluded && !(rounding && row.has("TOTAL")) {
            // "Total Qty: 2   116.28": some receipts print the amount on the quantity row.
            // Kept as a last resort only.
            if row.has_any(&["QTY", "QUANTITY", "ITEM", "ITEMS"])
                && let Some((amount, lines, true)) =
                    labelled_amount(rows, r, label_end(u, TOTAL_WORDS))
            {
                self.weak.push(Candidate {
                    row: r,
                    amount,
                    lines,
                    confidence: row.confidence * 0.4,
                    rounded: false,
                    has_cents: true,
                });
            }
            return;
        }
        let Some((amount, lines, cents)) = labelled_amount(rows, r, label_end(u, TOTAL_WORDS))
        else {
            return;
        };
        if amount.is_zero() {
            return;
        }
        self.first_summary_row.get_or_insert(r);
        let strong = row.has_any(&["TOTAL", "JUMLAH", "GRAND", "DUE", "PAYABLE", "NET", "NETT"]);
        let confidence =
            row.confidence * if cents { 0.85 } else { 0.5 } * if strong { 1. } else { 0.8 };
        self.candidates.push(Candidate {
            row: r,
            amount,
            lines,
            confidence,
            rounded: rounding,
            has_cents: cents,
        });
    }

    /// The total: a rounded total when there is one, else the largest labelled total (totals
    /// before tax, after discounts and the like come out smaller); with no labelled total, what
    /// was paid in cash less the change; last, a total printed on a quantity row.
    fn choose_total(&mut self) -> Option<Candidate> {
        // Prices written with cents beat bare integers (often a price whose point OCR missed).
        if self.candidates.iter().any(|c| c.has_cents) {
            self.candidates.retain(|c| c.has_cents);
        }
        let labelled = self
            .candidates
            .iter()
            .filter(|c| c.rounded)
            .max_by(|a, b| a.amount.cmp(&b.amount))
            .or_else(|| {
                self.candidates
                    .iter()
                    .max_by(|a, b| a.amount.cmp(&b.amount).then(b.row.cmp(&a.row)))
            });
        if let Some(total) = labelled {
            return Some(total.clone());
        }
        if let (Some(cash), Some(change)) = (self.cash, self.change)
            && cash > change
        {
            return Some(Candidate {
                row: 0,
                amount: cash - change,
                lines: Vec::new(),
                confidence: 0.5,
                rounded: false,
                has_cents: true,
            });
        }
        self.weak
            .iter()
            .max_by(|a, b| a.amount.cmp(&b.amount))
            .cloned()
    }

    /// A rounding adjustment after the total: the amount paid is the total adjusted, when the
    /// receipt prints it (possibly unlabelled) below the adjustment.
    fn apply_rounding_adjustment(&self, rows: &[Row], total: &mut Candidate) {
        let Some((adj_row, adj)) = self.rounding_adjustment else {
            return;
        };
        if total.rounded || adj_row <= total.row || adj.is_zero() {
            return;
        }
        let rounded = total.amount + adj;
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
            *total = Candidate {
                row: r,
                amount: rounded,
                lines,
                confidence: total.confidence,
                rounded: true,
                has_cents: true,
            };
        }
    }

    /// What was paid (cash less change) settles a total a cent or two off: the paid amount is
    /// the rounded total, or the OCR misread a digit of the total.
    fn settle_with_cash(&self, total: &mut Candidate) {
        // A rounded total the receipt prints, read the same on another total row too, is what
        // was paid: when cash less change disagrees, the cash or the change was misread.
        let settled = total.rounded
            && self
                .candidates
                .iter()
                .any(|c| c.row != total.row && c.amount == total.amount);
        let (Some(cash), Some(change)) = (self.cash, self.change) else {
            return;
        };
        if settled {
            return;
        }
        let paid = cash - change;
        let off = (paid.decimal() - total.amount.decimal()).abs();
        if off > Decimal::ZERO && off < Decimal::new(10, 2) {
            total.amount = paid;
            total.rounded = true;
        }
    }

    /// The tax: the surest tax amount smaller than the total, the first one on a tie.
    fn tax_below(&self, total: Option<&Candidate>) -> Option<Field<Amount>> {
        self.taxes
            .iter()
            .filter(|t| total.is_none_or(|c| t.amount < c.amount))
            .max_by(|a, b| {
                a.confidence
                    .total_cmp(&b.confidence)
                    .then(b.row.cmp(&a.row))
            })
            .map(|t| Field {
                value: t.amount,
                confidence: t.confidence,
                lines: t.lines.clone(),
            })
    }

    /// The chosen total as a field: agreement between the figures (subtotal, subtotal and tax,
    /// cash less change) raises its confidence.
    fn total_field(&self, mut total: Candidate, tax: Option<&Field<Amount>>) -> Field<Amount> {
        let agrees = self.subtotal.as_ref().is_some_and(|s| {
            s.value == total.amount || tax.is_some_and(|t| s.value + t.value == total.amount)
        }) || matches!((self.cash, self.change), (Some(cash), Some(change)) if cash - change == total.amount);
        if agrees {
            total.confidence = (total.confidence + 0.1).min(1.);
        }
        Field {
            value: total.amount,
            confidence: total.confidence,
            lines: total.lines,
        }
    }
}

/// Where the label ends in a row: after the last of `words` found in it (0 if none is).
fn label_end(upper: &str, words: &[&str]) -> usize {
    words
        .iter()
        .filter_map(|w| upper.find(w).map(|p| p + w.len()))
        .max()
        .unwrap_or(0)
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
