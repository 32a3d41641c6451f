//! Expenses: their statuses, currencies, and money held as integers of minor units.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UserId;
use crate::ticket::{FieldError, text_field};

/// Where an expense is in its life. Drafts are what a scan produced and the requester is still
/// reviewing; a submitted expense never changes again except by an approver's decision.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
}

impl ExpenseStatus {
    pub const ALL: [ExpenseStatus; 4] = [
        ExpenseStatus::Draft,
        ExpenseStatus::Submitted,
        ExpenseStatus::Approved,
        ExpenseStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExpenseStatus::Draft => "draft",
            ExpenseStatus::Submitted => "submitted",
            ExpenseStatus::Approved => "approved",
            ExpenseStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ExpenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExpenseStatus {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExpenseStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| FieldError::Invalid {
                field: "status",
                message: format!("unknown expense status {s:?}"),
            })
    }
}

/// The categories an expense can be filed under unless the tenant adds its own.
pub const EXPENSE_CATEGORIES: [&str; 8] = [
    "travel", "taxi", "meals", "lodging", "fuel", "office", "software", "other",
];

text_field!(Merchant, "merchant", max = 200, required = true);
text_field!(
    /// What a line of a receipt was for.
    ItemDescription, "description", max = 500, required = true
);

/// An ISO 4217 currency code, upper case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let code = input.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::Invalid {
                field: "currency",
                message: format!(
                    "{:?} is not a three-letter currency code such as EUR",
                    input.trim()
                ),
            });
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many digits follow the decimal point (ISO 4217's minor unit).
    pub fn exponent(&self) -> u32 {
        match self.0.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// Reads an amount typed by a person ("1,234.50", "12", "0.5") as minor units.
    /// Negative amounts, more decimals than the currency has, and amounts over a trillion are
    /// refused; `field` names the input in the error.
    pub fn parse_amount(&self, field: &'static str, input: &str) -> Result<i64, FieldError> {
        let invalid = |message: String| FieldError::Invalid { field, message };
        let text = input.trim();
        if text.is_empty() {
            return Err(FieldError::Empty { field });
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let grouped = whole.contains(',');
        let whole_digits: String = whole.chars().filter(|c| *c != ',').collect();
        let well_formed = !whole_digits.is_empty()
            && whole_digits.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && (!grouped || thousands_grouped(whole));
        if !well_formed {
            return Err(invalid(format!(
                "{text:?} is not an amount; write it like 1234.50"
            )));
        }
        let exponent = self.exponent();
        if fraction.len() > exponent as usize {
            return Err(invalid(match exponent {
                0 => format!("{} has no decimal places", self.0),
                n => format!("{} has at most {n} decimal places", self.0),
            }));
        }
        let too_large = || invalid(format!("{text} is too large"));
        let whole: i64 = whole_digits.parse().map_err(|_| too_large())?;
        let mut minor = whole
            .checked_mul(10i64.pow(exponent))
            .filter(|m| *m <= MAX_MINOR)
            .ok_or_else(too_large)?;
        if !fraction.is_empty() {
            let padded = format!("{fraction:0<width$}", width = exponent as usize);
            minor += padded.parse::<i64>().map_err(|_| too_large())?;
        }
        Ok(minor)
    }

    /// Minor units as a plain decimal string ("1234.50"), the form CSV and the UI use.
    pub fn format_amount(&self, minor: i64) -> String {
        let exponent = self.exponent();
        if exponent == 0 {
            return minor.to_string();
        }
        let scale = 10i64.pow(exponent);
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = exponent as usize
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Segregation of duties refused a decision: the approver submitted the expense
/// ([`crate::api::ErrorCode::OwnExpense`] on every boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("you submitted this expense, so another approver approves or rejects it")]
pub struct OwnExpense;

impl OwnExpense {
    /// Whoever submitted an expense never approves or rejects it.
    pub fn check(submitted_by: UserId, decider: UserId) -> Result<(), OwnExpense> {
        if submitted_by == decider {
            return Err(OwnExpense);
        }
        Ok(())
    }
}

/// How many approvals, by different approvers, an expense of `amount_minor` needs: two when the
/// tenant asks for dual approval above an amount (in the expense's own minor units, whatever its
/// currency) and the expense is above it, else one.
pub fn approvals_required(amount_minor: i64, dual_approval_above_minor: Option<i64>) -> u32 {
    match dual_approval_above_minor {
        Some(limit) if amount_minor > limit => 2,
        _ => 1,
    }
}

/// The largest amount accepted, in minor units (a trillion with cents).
pub const MAX_MINOR: i64 = 100_000_000_000_000;

/// "1,234,567": groups of three after the first.
fn thousands_grouped(whole: &str) -> bool {
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_decides_their_own_expense() {
        let (ana, ben) = (UserId::new(), UserId::new());
        assert_eq!(OwnExpense::check(ana, ana), Err(OwnExpense));
        assert_eq!(OwnExpense::check(ana, ben), Ok(()));
    }

    #[test]
    fn two_approvals_only_above_the_tenants_amount() {
        assert_eq!(
            approvals_required(1_000_000, None),
            1,
            "no setting: one approval"
        );
        assert_eq!(
            approvals_required(50_000, Some(50_000)),
            1,
            "at the amount: one"
        );
        assert_eq!(approvals_required(50_001, Some(50_000)), 2, "above it: two");
        assert_eq!(approvals_required(1, Some(0)), 2);
    }

    fn eur() -> Currency {
        Currency::parse("eur").unwrap()
    }

    #[test]
    fn amounts_typed_by_people_become_minor_units() {
        let eur = eur();
        assert_eq!(eur.parse_amount("total", "12.34"), Ok(1234));
        assert_eq!(eur.parse_amount("total", " 12 "), Ok(1200));
        assert_eq!(eur.parse_amount("total", "0.5"), Ok(50));
        assert_eq!(eur.parse_amount("total", "1,234.50"), Ok(123_450));
        assert_eq!(eur.parse_amount("total", "12."), Ok(1200));
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.parse_amount("total", "1,500"), Ok(1500));
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(kwd.parse_amount("total", "1.005"), Ok(1005));
    }

    #[test]
    fn bad_amounts_are_refused_with_the_field_named() {
        let eur = eur();
        for bad in [
            "", "-1", "1.234", "abc", "1,23", "12,34.5", "1.2.3", "€5", "1e5",
        ] {
            let err = eur.parse_amount("tax", bad).unwrap_err();
            assert_eq!(err.field(), "tax", "{bad:?}");
        }
        assert!(eur.parse_amount("total", "99999999999999999999").is_err());
        assert!(eur.parse_amount("total", "1000000000001").is_err());
        let jpy = Currency::parse("JPY").unwrap();
        assert!(jpy.parse_amount("total", "1.5").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        let eur = eur();
        for minor in [0, 5, 50, 1234, 123_450, MAX_MINOR] {
            assert_eq!(
                eur.parse_amount("total", &eur.format_amount(minor)),
                Ok(minor)
            );
        }
        assert_eq!(eur.format_amount(5), "0.05");
        assert_eq!(eur.format_amount(-250), "-2.50");
        assert_eq!(Currency::parse("JPY").unwrap().format_amount(1500), "1500");
        assert_eq!(Currency::parse("BHD").unwrap().format_amount(1005), "1.005");
    }

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::parse(" myr ").unwrap().as_str(), "MYR");
        for bad in ["", "EU", "EURO", "E1R", "€"] {
            assert_eq!(Currency::parse(bad).unwrap_err().field(), "currency");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in ExpenseStatus::ALL {
            assert_eq!(s.as_str().parse::<ExpenseStatus>(), Ok(s));
        }
        assert!("paid".parse::<ExpenseStatus>().is_err());
    }
}
