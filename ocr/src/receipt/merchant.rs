//! The merchant: the printed name at the head of the receipt, not its address, phone or
//! registration lines, joined when it wraps onto a second row and cleaned of company numbers.

use super::Field;
use super::date::{DateOrder, find_dates};
use super::money::find_amounts;
use super::rows::Row;

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

pub(super) fn merchant(rows: &[Row]) -> Option<Field<String>> {
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
