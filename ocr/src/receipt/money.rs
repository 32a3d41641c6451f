//! Money amounts as exact decimals, finding them in OCR text, and the receipt's currency.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::rows::Row;
use super::{Field, ParseOptions};

/// An exact amount of money (never a float). Prints with its own scale, e.g. `9.00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    pub fn new(value: Decimal) -> Amount {
        Amount(value)
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    /// The amount in minor units (cents) for a currency with `exponent` decimal places, if it
    /// has no finer fraction.
    pub fn minor_units(&self, exponent: u32) -> Option<i64> {
        let scaled = self.0 * Decimal::from(10i64.pow(exponent));
        (scaled.fract().is_zero()).then(|| i64::try_from(scaled).ok())?
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Amount {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> Result<Amount, Self::Err> {
        Decimal::from_str(s).map(Amount)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        Amount(self.0 + other.0)
    }
}

impl std::ops::Sub for Amount {
    type Output = Amount;
    fn sub(self, other: Amount) -> Amount {
        Amount(self.0 - other.0)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        Amount(iter.map(|a| a.0).sum())
    }
}

/// An amount found in a piece of text, with where it was (byte offsets) and whether it was
/// written the way prices are (with two decimals).
#[derive(Clone, Debug, PartialEq)]
pub struct FoundAmount {
    pub amount: Amount,
    pub start: usize,
    pub end: usize,
    /// Written with exactly two decimals (`9.00`), the usual form of a price.
    pub has_cents: bool,
    /// A currency symbol or code stood right before it.
    pub currency: Option<&'static str>,
    pub negative: bool,
}

/// Currency markers recognised before or after an amount, with their ISO 4217 code. Symbols
/// shared by several currencies (`$`) map to `None`: the locale decides.
pub const CURRENCY_MARKERS: &[(&str, Option<&str>)] = &[
    ("RM", Some("MYR")),
    ("MYR", Some("MYR")),
    ("S$", Some("SGD")),
    ("SGD", Some("SGD")),
    ("US$", Some("USD")),
    ("USD", Some("USD")),
    ("A$", Some("AUD")),
    ("AUD", Some("AUD")),
    ("C$", Some("CAD")),
    ("CAD", Some("CAD")),
    ("NZ$", Some("NZD")),
    ("HK$", Some("HKD")),
    ("HKD", Some("HKD")),
    ("€", Some("EUR")),
    ("EUR", Some("EUR")),
    ("£", Some("GBP")),
    ("GBP", Some("GBP")),
    ("¥", Some("JPY")),
    ("JPY", Some("JPY")),
    ("CHF", Some("CHF")),
    ("₹", Some("INR")),
    ("INR", Some("INR")),
    ("RP", Some("IDR")),
    ("IDR", Some("IDR")),
    ("฿", Some("THB")),
    ("THB", Some("THB")),
    ("₱", Some("PHP")),
    ("PHP", Some("PHP")),
    ("$", None),
];

/// Finds the amounts in `text`: digits with an optional thousands separator and a decimal part
/// (`.` or `,`), optionally preceded by a currency marker. Integers count too (`has_cents` is
/// false for them), but not digits glued to letters (codes, dates, phone numbers).
pub fn find_amounts(text: &str) -> Vec<FoundAmount> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        // Glued to a letter, '/', ':' or '-' digit runs (codes, dates, times): skip the run.
        let prev = text[..start].chars().next_back();
        let glued_before = prev
            .is_some_and(|c| c.is_alphabetic() && !is_currency_tail(&text[..start]))
            || prev.is_some_and(|c| c == '/' || c == ':' || c == '#' || c == '%')
            || (prev == Some('-') && text[..start - 1].ends_with(|c: char| c.is_ascii_digit()));
        while i < bytes.len()
            && (bytes[i].is_ascii_digit()
                || ((bytes[i] == b'.' || bytes[i] == b',')
                    && i + 1 < bytes.len()
                    && bytes[i + 1].is_ascii_digit()))
        {
            i += 1;
        }
        let end = i;
        let next = text[end..].chars().next();
        let glued_after = next.is_some_and(|c| {
            c.is_alphanumeric()
                || c == '/'
                || c == ':'
                || c == '%'
                || c == '-' && { text[end + 1..].starts_with(|d: char| d.is_ascii_digit()) }
        });
        if glued_before || glued_after {
            continue;
        }
        let Some((amount, has_cents)) = parse_number(&text[start..end]) else {
            continue;
        };
        let before = text[..start].trim_end();
        let currency = currency_before(before).or_else(|| currency_after(&text[end..]));
        let negative =
            before.ends_with('-') || (before.ends_with('(') && text[end..].starts_with(')'));
        out.push(FoundAmount {
            amount,
            start,
            end,
            has_cents,
            currency,
            negative,
        });
    }
    out
}

fn is_currency_tail(before: &str) -> bool {
    currency_before(before).is_some()
}

/// The ISO code of a currency marker ending `before` (e.g. "RM", "S$"), or "$" for the bare
/// dollar sign.
fn currency_before(before: &str) -> Option<&'static str> {
    let upper = before.to_uppercase();
    let trimmed = upper.trim_end_matches(['-', ' ', ':']);
    CURRENCY_MARKERS.iter().find_map(|(marker, code)| {
        let ends = trimmed.ends_with(marker);
        // A letter marker must stand alone ("RM9.00", "TOTAL RM 9.00"), not end a word.
        let alone = ends && {
            let head = &trimmed[..trimmed.len() - marker.len()];
            !marker.chars().all(char::is_alphabetic)
                || !head.chars().next_back().is_some_and(char::is_alphabetic)
        };
        alone.then_some(code.unwrap_or("$"))
    })
}

fn currency_after(after: &str) -> Option<&'static str> {
    let upper = after.trim_start().to_uppercase();
    CURRENCY_MARKERS.iter().find_map(|(marker, code)| {
        let starts = upper.starts_with(marker)
            && !upper[marker.len()..].starts_with(|c: char| c.is_alphabetic());
        (starts && code.is_some()).then_some(code.unwrap_or("$"))
    })
}

/// Parses `1,234.56`, `1.234,56`, `9.00`, `9,00`, `12`. Returns the amount and whether it had
/// exactly two decimals.
pub fn parse_number(s: &str) -> Option<(Amount, bool)> {
    let last_sep = s.rfind(['.', ',']);
    let seps = s.matches(['.', ',']).count();
    let (int_part, frac) = match last_sep {
        Some(p) if s.len() - p - 1 == 2 || s.len() - p - 1 == 1 => (&s[..p], Some(&s[p + 1..])),
        // "9.000": a lone point before three digits is a three-decimal unit price; a lone
        // comma there ("1,000") or repeated separators group thousands.
        Some(p) if s.len() - p - 1 == 3 && seps == 1 && s.as_bytes()[p] == b'.' => {
            (&s[..p], Some(&s[p + 1..]))
        }
        Some(p) if s.len() - p - 1 == 3 => (s, None),
        Some(_) => return None,
        None => (s, None),
    };
    // Separators inside the integer part must group thousands.
    let groups: Vec<&str> = int_part.split(['.', ',']).collect();
    if groups.len() > 1
        && (groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3))
    {
        return None;
    }
    let digits: String = groups.concat();
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let text = match frac {
        Some(f) => format!("{digits}.{f}"),
        None => digits,
    };
    let value = Decimal::from_str(&text).ok()?;
    Some((Amount(value), frac.is_some_and(|f| f.len() == 2)))
}

/// The currency: the one its amounts and column headers show most often, else the locale's.
pub(super) fn currency(rows: &[Row], options: &ParseOptions) -> Option<Field<String>> {
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
        for (marker, code) in CURRENCY_MARKERS {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(text: &str) -> Vec<String> {
        find_amounts(text)
            .iter()
            .map(|a| a.amount.to_string())
            .collect()
    }

    #[test]
    fn finds_prices_but_not_codes_dates_or_times() {
        assert_eq!(amounts("TOTAL : 9.00"), ["9.00"]);
        assert_eq!(amounts("Total RM12.50"), ["12.50"]);
        assert_eq!(amounts("1,234.56"), ["1234.56"]);
        assert_eq!(amounts("25/12/2018 8:13:39 PM"), Vec::<String>::new());
        assert_eq!(amounts("INV12345"), Vec::<String>::new());
        assert_eq!(
            amounts("1 PC 9.000 0.00 9.00"),
            ["1", "9.000", "0.00", "9.00"]
        );
    }

    #[test]
    fn reads_the_currency_marker_before_an_amount() {
        let found = find_amounts("TOTAL RM 9.00");
        assert_eq!(found[0].currency, Some("MYR"));
        let found = find_amounts("Total: $8.20");
        assert_eq!(found[0].currency, Some("$"));
        let found = find_amounts("Total 8.20 EUR");
        assert_eq!(found[0].currency, Some("EUR"));
        // "FORM 9.00" is not ringgit.
        assert_eq!(find_amounts("FORM 9.00")[0].currency, None);
    }

    #[test]
    fn minor_units_are_exact() {
        let a: Amount = "19.99".parse().unwrap();
        assert_eq!(a.minor_units(2), Some(1999));
        assert_eq!(a.minor_units(0), None);
    }
}
