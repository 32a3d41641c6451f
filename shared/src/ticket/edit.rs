//! An edit of a ticket's fields, as the server and the desktop both apply it: parse the patch,
//! build the ticket after it, list the fields that really changed.

use serde_json::{Value, json};

use super::{Category, FieldError, TicketDescription, TicketTitle};
use crate::api::{PatchTicket, Ticket};
use crate::sync::TicketUpdate;
use crate::ticket::Priority;
use crate::{CustomerId, UserId};

impl Category {
    /// Parses a category and checks it is one of `allowed` (the tenant's list).
    pub fn parse_allowed(input: &str, allowed: &[impl AsRef<str>]) -> Result<Self, FieldError> {
        let category = Category::parse(input)?;
        if !allowed.iter().any(|c| c.as_ref() == category.as_str()) {
            let names: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
            return Err(FieldError::Invalid {
                field: "category",
                message: format!(
                    "{:?} is not one of this tenant's: {}",
                    category.as_str(),
                    names.join(", ")
                ),
            });
        }
        Ok(category)
    }
}

/// A checked [`PatchTicket`]: each field it names holds a valid value; absent fields stay as they
/// are, and `Some(None)` clears a nullable one. Whether an assignee or a customer exists is the
/// store's to check; the version check is the caller's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketEdit {
    pub title: Option<TicketTitle>,
    pub description: Option<TicketDescription>,
    pub priority: Option<Priority>,
    pub category: Option<Category>,
    pub assignee_id: Option<Option<UserId>>,
    pub customer_id: Option<Option<CustomerId>>,
}

impl TicketEdit {
    /// Checks the fields in the order title, description, category; the first bad one is the
    /// error. A category must be one of `categories` (the tenant's list).
    pub fn parse(patch: &PatchTicket, categories: &[impl AsRef<str>]) -> Result<Self, FieldError> {
        Ok(TicketEdit {
            title: patch.title.as_deref().map(TicketTitle::parse).transpose()?,
            description: patch
                .description
                .as_deref()
                .map(TicketDescription::parse)
                .transpose()?,
            priority: patch.priority,
            category: patch
                .category
                .as_deref()
                .map(|c| Category::parse_allowed(c, categories))
                .transpose()?,
            assignee_id: patch.assignee_id,
            customer_id: patch.customer_id,
        })
    }

    /// The ticket with this edit's fields set; everything else (version, times) as in `before`.
    pub fn apply(&self, before: &Ticket) -> Ticket {
        Ticket {
            title: self
                .title
                .as_ref()
                .map_or_else(|| before.title.clone(), |t| t.as_str().to_owned()),
            description: self
                .description
                .as_ref()
                .map_or_else(|| before.description.clone(), |d| d.as_str().to_owned()),
            priority: self.priority.unwrap_or(before.priority),
            category: self
                .category
                .as_ref()
                .map_or_else(|| before.category.clone(), |c| c.as_str().to_owned()),
            assignee_id: self.assignee_id.unwrap_or(before.assignee_id),
            customer_id: self.customer_id.unwrap_or(before.customer_id),
            ..before.clone()
        }
    }
}

/// One editable field whose value differs, as the audit trail records it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: Value,
    pub after: Value,
}

impl FieldChange {
    /// Whether the change moves the ticket's SLA deadlines (its policy is chosen by these).
    pub fn affects_sla(&self) -> bool {
        matches!(self.field, "priority" | "category" | "customer_id")
    }
}

/// The editable fields that differ between `before` and `after`, in the order title,
/// description, priority, category, assignee_id, customer_id.
pub fn changes(before: &Ticket, after: &Ticket) -> Vec<FieldChange> {
    [
        ("title", json!(before.title), json!(after.title)),
        (
            "description",
            json!(before.description),
            json!(after.description),
        ),
        ("priority", json!(before.priority), json!(after.priority)),
        ("category", json!(before.category), json!(after.category)),
        (
            "assignee_id",
            json!(before.assignee_id),
            json!(after.assignee_id),
        ),
        (
            "customer_id",
            json!(before.customer_id),
            json!(after.customer_id),
        ),
    ]
    .into_iter()
    .filter(|(_, before, after)| before != after)
    .map(|(field, before, after)| FieldChange {
        field,
        before,
        after,
    })
    .collect()
}

impl TicketUpdate {
    /// The sync intent for an edit from `before` to `after`: only the fields that changed, made
    /// on `before`'s version.
    pub fn between(before: &Ticket, after: &Ticket) -> Self {
        fn changed<T: PartialEq + Clone>(before: &T, after: &T) -> Option<T> {
            (before != after).then(|| after.clone())
        }
        TicketUpdate {
            id: before.id,
            base_version: before.version,
            title: changed(&before.title, &after.title),
            description: changed(&before.description, &after.description),
            priority: changed(&before.priority, &after.priority),
            category: changed(&before.category, &after.category),
            assignee_id: changed(&before.assignee_id, &after.assignee_id),
            customer_id: changed(&before.customer_id, &after.customer_id),
        }
    }

    /// The edit as the person made it, as a patch with no version check: the server merges it
    /// field by field, and the desktop replays it the same way.
    pub fn patch(&self) -> PatchTicket {
        PatchTicket {
            title: self.title.clone(),
            description: self.description.clone(),
            priority: self.priority,
            category: self.category.clone(),
            assignee_id: self.assignee_id,
            customer_id: self.customer_id,
            version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::TicketId;
    use crate::workflow::Status;

    const CATEGORIES: [&str; 3] = ["general", "hardware", "billing"];

    fn ticket() -> Ticket {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        Ticket {
            id: TicketId::new(),
            number: 7,
            title: "Printer on fire".to_owned(),
            description: "Smoke".to_owned(),
            status: Status::Open,
            priority: Priority::Medium,
            category: "hardware".to_owned(),
            requester_id: UserId::new(),
            assignee_id: None,
            customer_id: None,
            hold_reason: None,
            created_at: at,
            updated_at: at,
            first_responded_at: None,
            resolved_at: None,
            closed_at: None,
            version: 3,
        }
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        let before = ticket();
        let edit = TicketEdit::parse(&PatchTicket::default(), &CATEGORIES).unwrap();
        let after = edit.apply(&before);
        assert_eq!(after, before, "absent fields stay as they are");
        assert!(changes(&before, &after).is_empty());
    }

    #[test]
    fn fields_set_to_their_current_value_are_not_changes() {
        let before = ticket();
        let patch = PatchTicket {
            title: Some("  Printer on fire ".to_owned()),
            priority: Some(Priority::High),
            category: Some("hardware".to_owned()),
            assignee_id: Some(None),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        assert_eq!(
            changes(&before, &after),
            vec![FieldChange {
                field: "priority",
                before: json!("medium"),
                after: json!("high"),
            }],
            "the title is trimmed to what it was; category and assignee are unchanged"
        );
    }

    #[test]
    fn changes_come_in_field_order_with_json_values() {
        let before = ticket();
        let assignee = UserId::new();
        let customer = CustomerId::new();
        let patch = PatchTicket {
            customer_id: Some(Some(customer)),
            assignee_id: Some(Some(assignee)),
            category: Some("billing".to_owned()),
            description: Some(String::new()),
            title: Some("Printer fixed".to_owned()),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        let fields: Vec<&str> = changes(&before, &after).iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "title",
                "description",
                "category",
                "assignee_id",
                "customer_id"
            ]
        );
        let assigned = &changes(&before, &after)[3];
        assert_eq!(assigned.before, Value::Null, "no assignee before");
        assert_eq!(assigned.after, json!(assignee));
        assert_eq!(after.version, before.version, "the store bumps the version");
    }

    #[test]
    fn null_clears_a_nullable_field() {
        let mut before = ticket();
        before.assignee_id = Some(UserId::new());
        let patch = PatchTicket {
            assignee_id: Some(None),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        assert_eq!(after.assignee_id, None);
        assert_eq!(changes(&before, &after)[0].after, Value::Null);
    }

    #[test]
    fn a_category_outside_the_tenants_list_is_refused_naming_the_list() {
        let patch = PatchTicket {
            category: Some("gardening".to_owned()),
            ..PatchTicket::default()
        };
        let err = TicketEdit::parse(&patch, &CATEGORIES).unwrap_err();
        assert_eq!(err.field(), "category");
        assert_eq!(
            err.to_string(),
            "category: \"gardening\" is not one of this tenant's: general, hardware, billing"
        );
        let badly_shaped = PatchTicket {
            category: Some("Hardware Stuff".to_owned()),
            ..PatchTicket::default()
        };
        assert_eq!(
            TicketEdit::parse(&badly_shaped, &CATEGORIES)
                .unwrap_err()
                .field(),
            "category"
        );
    }

    #[test]
    fn the_title_is_checked_before_the_category() {
        let patch = PatchTicket {
            title: Some("   ".to_owned()),
            category: Some("gardening".to_owned()),
            ..PatchTicket::default()
        };
        assert_eq!(
            TicketEdit::parse(&patch, &CATEGORIES),
            Err(FieldError::Empty { field: "title" })
        );
    }

    #[test]
    fn only_sla_inputs_affect_the_sla() {
        let before = ticket();
        let patch = PatchTicket {
            title: Some("New title".to_owned()),
            assignee_id: Some(Some(UserId::new())),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        assert!(
            !changes(&before, &after)
                .iter()
                .any(FieldChange::affects_sla)
        );
        let patch = PatchTicket {
            customer_id: Some(Some(CustomerId::new())),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        assert!(
            changes(&before, &after)
                .iter()
                .any(FieldChange::affects_sla)
        );
    }

    #[test]
    fn the_sync_intent_carries_only_changed_fields() {
        let before = ticket();
        let patch = PatchTicket {
            title: Some("Printer on fire".to_owned()),
            priority: Some(Priority::Urgent),
            customer_id: Some(None),
            assignee_id: Some(Some(UserId::new())),
            ..PatchTicket::default()
        };
        let after = TicketEdit::parse(&patch, &CATEGORIES)
            .unwrap()
            .apply(&before);
        let intent = TicketUpdate::between(&before, &after);
        assert_eq!(
            intent,
            TicketUpdate {
                id: before.id,
                base_version: 3,
                priority: Some(Priority::Urgent),
                assignee_id: Some(after.assignee_id),
                ..TicketUpdate::default()
            },
            "unchanged title and customer are left out; the base is the edited version"
        );
    }
}
