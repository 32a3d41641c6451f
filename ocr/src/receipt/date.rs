//! Finding dates in receipt text: day-first and month-first numeric dates with 2- or 4-digit
//! years, ISO dates, compact `YYYYMMDD`, and dates with month names; and which of them is the
//! purchase date.

use chrono::{Datelike, NaiveDate};

use super::rows::Row;
use super::{Field, ParseOptions};

/// Which way round ambiguous numeric dates (both parts ≤ 12) are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DateOrder {
    #[default]
    DayFirst,
    MonthFirst,
}

/// A date found in a piece of text.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundDate {
    pub date: NaiveDate,
    pub start: usize,
    pub end: usize,
    /// The written form allowed only this reading (no day/month ambiguity).
    pub unambiguous: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Tokens of a text: runs of digits, runs of letters, and single other characters.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Num(&'a str),
    Word(&'a str),
    Sep(char),
}

fn tokens(text: &str) -> Vec<(Tok<'_>, usize, usize)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let kind = |c: char| {
            if c.is_ascii_digit() {
                1
            } else if c.is_alphabetic() {
                2
            } else {
                0
            }
        };
        let k = kind(c);
        if k == 0 {
            out.push((Tok::Sep(c), i, i + c.len_utf8()));
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if kind(d) != k {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        let s = &text[i..end];
        out.push((if k == 1 { Tok::Num(s) } else { Tok::Word(s) }, i, end));
    }
    out
}

fn month_of(word: &str) -> Option<u32> {
    let upper = word.to_uppercase();
    if upper.len() < 3 {
        return None;
    }
    let idx = MONTHS.iter().position(|m| upper.starts_with(m))?;
    // Full names must be spelled out right ("MARCH"), abbreviations may carry a dot.
    let full = [
        "JANUARY",
        "FEBRUARY",
        "MARCH",
        "APRIL",
        "MAY",
        "JUNE",
        "JULY",
        "AUGUST",
        "SEPTEMBER",
        "OCTOBER",
        "NOVEMBER",
        "DECEMBER",
    ][idx];
    (upper.len() == 3 || full.starts_with(&upper) || upper == "SEPT").then_some(idx as u32 + 1)
}

fn year_of(s: &str) -> Option<i32> {
    let n: i32 = s.parse().ok()?;
    match s.len() {
        2 => Some(2000 + n),
        4 if (1970..=2099).contains(&n) => Some(n),
        _ => None,
    }
}

/// Finds the dates in `text`.
pub fn find_dates(text: &str, order: DateOrder) -> Vec<FoundDate> {
    let toks = tokens(text);
    let mut out = Vec::new();
    let num = |i: usize| match toks.get(i) {
        Some((Tok::Num(s), _, _)) => Some(*s),
        _ => None,
    };
    let sep = |i: usize| match toks.get(i) {
        Some((Tok::Sep(c), _, _)) => Some(*c),
        _ => None,
    };
    let word = |i: usize| match toks.get(i) {
        Some((Tok::Word(s), _, _)) => Some(*s),
        _ => None,
    };
    // Skips separators (spaces, dots, commas, dashes) from i; returns the next token index.
    let skip = |mut i: usize, max: usize| {
        let mut n = 0;
        while n < max && matches!(sep(i), Some(' ' | '.' | ',' | '-' | '/')) {
            i += 1;
            n += 1;
        }
        i
    };
    let digit_glued = |i: usize| {
        // A number token directly before or after (a longer digit string) disqualifies.
        // So does a word glued on ("CK11-22-31" is an article code).
        i > 0 && matches!(toks.get(i - 1), Some((Tok::Num(_) | Tok::Word(_), _, _)))
    };
    let mut i = 0;
    while i < toks.len() {
        let (_, start, _) = toks[i];
        // Preceded by a digit and a separator (e.g. the "12" in "2018-12-01" seen from inside)
        // is handled when the scan starts at the earlier number.
        if let Some(a) = num(i) {
            if i >= 2 && num(i - 2).is_some() && matches!(sep(i - 1), Some('/' | '-' | '.')) {
                i += 1;
                continue;
            }
            // a SEP b SEP c
            if let (Some(s1), Some(b), Some(s2), Some(c)) =
                (sep(i + 1), num(i + 2), sep(i + 3), num(i + 4))
            {
                let trailing_digit = num(i + 5).is_some()
                    || (matches!(sep(i + 5), Some('/' | '-' | '.')) && num(i + 6).is_some());
                let c_start = toks[i + 4].1;
                // OCR often drops the space between a date and its time ("14/03/20185:57PM",
                // "19-03-1718:08"): the year is then a prefix of the last number.
                let time_glued = sep(i + 5) == Some(':');
                let year_parts: Vec<&str> =
                    if c.len() <= 2 || (c.len() == 4 && year_of(c).is_some()) {
                        vec![c]
                    } else if c.len() > 4 || time_glued {
                        [&c[..4], &c[..2]]
                            .into_iter()
                            .filter(|y| y.len() == 2 || year_of(y).is_some())
                            .collect()
                    } else {
                        Vec::new()
                    };
                if s1 == s2
                    && matches!(s1, '/' | '-' | '.')
                    && !trailing_digit
                    && !digit_glued(i)
                    && let Some((found, year)) = year_parts
                        .iter()
                        .find_map(|y| numeric_date(a, b, y, order).map(|f| (f, y.len())))
                {
                    out.push(FoundDate {
                        date: found.0,
                        start,
                        end: c_start + year,
                        unambiguous: found.1,
                    });
                    i += 5;
                    continue;
                }
            }
            // d MONTH y
            let j = skip(i + 1, 2);
            if a.len() <= 2
                && let Some(m) = word(j).and_then(month_of)
            {
                let k = skip(j + 1, 2);
                if let Some(y) = num(k).and_then(year_of)
                    && let Some(date) = a
                        .parse()
                        .ok()
                        .and_then(|d| NaiveDate::from_ymd_opt(y, m, d))
                {
                    out.push(FoundDate {
                        date,
                        start,
                        end: toks[k].2,
                        unambiguous: true,
                    });
                    i = k + 1;
                    continue;
                }
            }
            // YYYYMMDD
            if a.len() == 8 && !digit_glued(i) {
                let (y, m, d) = (&a[..4], &a[4..6], &a[6..]);
                if let (Some(y), Ok(m), Ok(d)) = (year_of(y), m.parse(), d.parse())
                    && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
                {
                    out.push(FoundDate {
                        date,
                        start,
                        end: toks[i].2,
                        unambiguous: true,
                    });
                }
            }
        } else if let Some(m) = word(i).and_then(month_of) {
            // MONTH d, y
            let j = skip(i + 1, 2);
            if let Some(d) = num(j).filter(|d| d.len() <= 2) {
                let k = skip(j + 1, 3);
                if let Some(y) = num(k).and_then(year_of)
                    && let Some(date) = d
                        .parse()
                        .ok()
                        .and_then(|d| NaiveDate::from_ymd_opt(y, m, d))
                {
                    out.push(FoundDate {
                        date,
                        start,
                        end: toks[k].2,
                        unambiguous: true,
                    });
                    i = k + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Reads `a/b/c` as a date: `YYYY/MM/DD`, or day and month in either order with the year
/// last. Returns the date and whether the reading was the only possible one.
fn numeric_date(a: &str, b: &str, c: &str, order: DateOrder) -> Option<(NaiveDate, bool)> {
    if a.len() == 4 {
        let y = year_of(a)?;
        let date = NaiveDate::from_ymd_opt(y, b.parse().ok()?, c.parse().ok()?)?;
        return Some((date, true));
    }
    if a.len() > 2 || b.len() > 2 {
        return None;
    }
    let y = year_of(c)?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    let day_first = NaiveDate::from_ymd_opt(y, b, a);
    let month_first = NaiveDate::from_ymd_opt(y, a, b);
    match (day_first, month_first) {
        (Some(d), Some(m)) if d == m => Some((d, true)),
        (Some(d), Some(m)) => Some((if order == DateOrder::DayFirst { d } else { m }, false)),
        (Some(d), None) => Some((d, true)),
        (None, Some(m)) => Some((m, true)),
        (None, None) => None,
    }
}

/// Whether a date is plausible for a receipt read on `today` (not in the future, not ancient).
pub fn plausible(date: NaiveDate, today: Option<NaiveDate>) -> bool {
    let recent = date.year() >= 1990;
    match today {
        Some(today) => recent && date <= today + chrono::Days::new(1),
        None => recent,
    }
}

/// The purchase date: of the dates on the receipt, the one labelled as the date and plausible
/// for a purchase, read the way the receipt itself writes dates when it shows which way.
pub(super) fn purchase_date(rows: &[Row], options: &ParseOptions) -> Option<Field<NaiveDate>> {
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
            if !plausible(d.date, options.today) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(text: &str, order: DateOrder) -> Vec<String> {
        find_dates(text, order)
            .iter()
            .map(|d| d.date.to_string())
            .collect()
    }

    #[test]
    fn reads_the_written_forms_of_dates() {
        let df = DateOrder::DayFirst;
        assert_eq!(dates("Date: 25/12/2018 8:13:39 PM", df), ["2018-12-25"]);
        assert_eq!(dates("12-01-19", df), ["2019-01-12"]);
        assert_eq!(dates("25 Dec 2018", df), ["2018-12-25"]);
        assert_eq!(dates("Dec 25, 2018", df), ["2018-12-25"]);
        assert_eq!(dates("05 MAR 2018 16:40", df), ["2018-03-05"]);
        assert_eq!(dates("28 MAR 18", df), ["2018-03-28"]);
        assert_eq!(dates("2018-03-23 12:01", df), ["2018-03-23"]);
        assert_eq!(dates("20180304", df), ["2018-03-04"]);
        assert_eq!(
            dates("12/28/2017", df),
            ["2017-12-28"],
            "day 28 forces month-first"
        );
        assert_eq!(dates("18.03.2018", df), ["2018-03-18"]);
        assert_eq!(dates("5/3/2018", df), ["2018-03-05"]);
        assert_eq!(
            dates("14/03/20185:57:07PM", df),
            ["2018-03-14"],
            "time glued on"
        );
        assert_eq!(dates(":19-03-201818:08:38", df), ["2018-03-19"]);
        assert_eq!(dates("05-02-1814:30", df), ["2018-02-05"]);
    }

    #[test]
    fn the_order_setting_decides_ambiguous_dates() {
        assert_eq!(dates("03/04/2018", DateOrder::DayFirst), ["2018-04-03"]);
        assert_eq!(dates("03/04/2018", DateOrder::MonthFirst), ["2018-03-04"]);
        assert!(!find_dates("03/04/2018", DateOrder::DayFirst)[0].unambiguous);
    }

    #[test]
    fn ignores_numbers_that_are_not_dates() {
        let df = DateOrder::DayFirst;
        assert!(dates("TEL: 03-5543 2211", df).is_empty());
        assert!(dates("9.00 10.00", df).is_empty());
        assert!(dates("45/13/2018", df).is_empty());
        assert!(dates("INV 1234/56/7890", df).is_empty());
        assert!(
            dates("CK11-22-31 - 10/400", df).is_empty(),
            "an article code"
        );
    }
}
