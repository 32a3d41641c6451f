//! Parsed field values: once built, they are valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod edit;
pub use edit::{FieldChange, TicketEdit, changes};

/// Why a field's input was refused. The message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum FieldError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is too long: at most {max} characters, got {len}")]
    TooLong {
        field: &'static str,
        max: usize,
        len: usize,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl FieldError {
    pub fn field(&self) -> &'static str {
        match self {
            FieldError::Empty { field }
            | FieldError::TooLong { field, .. }
            | FieldError::Invalid { field, .. } => field,
        }
    }
}

pub(crate) fn bounded(
    field: &'static str,
    input: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldError> {
    let value = input.trim();
    if required && value.is_empty() {
        return Err(FieldError::Empty { field });
    }
    let len = value.chars().count();
    if len > max {
        return Err(FieldError::TooLong { field, max, len });
    }
    Ok(value.to_owned())
}

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, max = $max:expr, required = $required:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            /// Trims surrounding whitespace and enforces the length limits.
            pub fn parse(input: &str) -> Result<Self, FieldError> {
                $crate::ticket::bounded($field, input, $max, $required).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use text_field;

text_field!(TicketTitle, "title", max = 200, required = true);
text_field!(
    TicketDescription,
    "description",
    max = 20_000,
    required = false
);
text_field!(
    /// Why a ticket waits; required to put it on hold.
    HoldReason, "reason", max = 1_000, required = true
);
text_field!(CommentBody, "body", max = 20_000, required = true);
text_field!(TenantName, "name", max = 100, required = true);
text_field!(CustomerName, "name", max = 200, required = true);
text_field!(Phone, "phone", max = 50, required = false);
text_field!(Company, "company", max = 200, required = false);
text_field!(Notes, "notes", max = 20_000, required = false);

/// A category name from the tenant's list: lower-case letters, digits, `-` and `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category(String);

impl Category {
    pub const DEFAULTS: [&'static str; 6] = [
        "general", "hardware", "software", "access", "billing", "expense",
    ];

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = bounded("category", input, 50, true)?;
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(FieldError::Invalid {
                field: "category",
                message: "use lower-case letters, digits, '-' or '_'".to_owned(),
            });
        }
        Ok(Self(value))
    }

    pub fn general() -> Self {
        Self("general".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased. Only its shape is checked; the IdP proves ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = bounded("email", input, 254, true)?.to_lowercase();
        let invalid = |message: &str| FieldError::Invalid {
            field: "email",
            message: message.to_owned(),
        };
        let (local, domain) = value
            .split_once('@')
            .ok_or_else(|| invalid("must contain '@'"))?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(invalid("must look like name@example.com"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(invalid("must not contain spaces"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid("the domain must look like example.com"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| FieldError::Invalid {
                field: "priority",
                message: format!("unknown priority {s:?}: expected low, medium, high or urgent"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_between_1_and_200_characters() {
        assert_eq!(
            TicketTitle::parse("  Printer on fire ").unwrap().as_str(),
            "Printer on fire"
        );
        assert_eq!(
            TicketTitle::parse("   "),
            Err(FieldError::Empty { field: "title" })
        );
        assert!(
            TicketTitle::parse(&"é".repeat(200)).is_ok(),
            "200 characters, not bytes"
        );
        let err = TicketTitle::parse(&"x".repeat(201)).unwrap_err();
        assert_eq!(
            err,
            FieldError::TooLong {
                field: "title",
                max: 200,
                len: 201
            }
        );
        assert!(
            err.to_string().contains("title"),
            "the message names the field"
        );
    }

    #[test]
    fn descriptions_may_be_empty_but_not_huge() {
        assert!(TicketDescription::parse("").is_ok());
        assert!(TicketDescription::parse(&"x".repeat(20_000)).is_ok());
        assert!(TicketDescription::parse(&"x".repeat(20_001)).is_err());
    }

    #[test]
    fn categories_are_slugs() {
        assert_eq!(Category::parse("expense").unwrap().as_str(), "expense");
        assert!(Category::parse("Expense Claims").is_err());
        assert!(Category::parse("").is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_shaped_like_addresses() {
        assert_eq!(
            Email::parse(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} is not an address");
        }
    }

    #[test]
    fn priorities_parse_and_order() {
        assert_eq!("urgent".parse::<Priority>().unwrap(), Priority::Urgent);
        assert!("critical".parse::<Priority>().is_err());
        assert!(Priority::Low < Priority::Urgent);
        assert_eq!(Priority::default(), Priority::Medium);
    }
}
