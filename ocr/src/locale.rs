//! What the user's locale says about the receipts they read: the currency to assume when a
//! receipt shows none, and which way round ambiguous dates go.

use crate::receipt::{DateOrder, ParseOptions};

/// Parse options from the locale (`LC_ALL` / `LC_MONETARY` / `LANG`, e.g. `en_MY.UTF-8`), with
/// today's local date to judge plausible purchase dates.
pub fn parse_options() -> ParseOptions {
    let locale = ["LC_ALL", "LC_MONETARY", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    let territory = locale
        .split(['.', '@'])
        .next()
        .and_then(|l| l.split('_').nth(1))
        .unwrap_or("")
        .to_uppercase();
    let currency = match territory.as_str() {
        "MY" => Some("MYR"),
        "SG" => Some("SGD"),
        "US" => Some("USD"),
        "GB" => Some("GBP"),
        "AU" => Some("AUD"),
        "CA" => Some("CAD"),
        "NZ" => Some("NZD"),
        "IN" => Some("INR"),
        "JP" => Some("JPY"),
        "CH" => Some("CHF"),
        "DE" | "FR" | "ES" | "IT" | "NL" | "BE" | "AT" | "IE" | "PT" | "FI" | "GR" => Some("EUR"),
        _ => None,
    };
    let month_first = matches!(territory.as_str(), "US" | "PH");
    ParseOptions {
        date_order: if month_first {
            DateOrder::MonthFirst
        } else {
            DateOrder::DayFirst
        },
        default_currency: currency.map(str::to_owned),
        today: Some(chrono::Local::now().date_naive()),
    }
}
