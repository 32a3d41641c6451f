//! What an audit-trail entry records: one name per kind of change, the same on the server, the
//! desktop and in the UI's timeline.

use serde::{Deserialize, Deserializer};

crate::wire_enum! {
    /// What happened, as an activity entry's `action`.
    pub enum ActivityAction / UnknownActivityAction {
        TicketCreated = "ticket.created",
        TicketUpdated = "ticket.updated",
        TicketTransitioned = "ticket.transitioned",
        /// An agent opened a new ticket, which starts work on it.
        TicketViewed = "ticket.viewed",
        TicketDeleted = "ticket.deleted",
        CommentCreated = "comment.created",
        CustomerCreated = "customer.created",
        CustomerUpdated = "customer.updated",
        CustomerDeleted = "customer.deleted",
        ExpenseSubmitted = "expense.submitted",
        ExpenseApproved = "expense.approved",
        ExpenseRejected = "expense.rejected",
        SlaAtRisk = "sla.at_risk",
        SlaBreached = "sla.breached",
        TenantCreated = "tenant.created",
        /// An admin changed the tenant's rules for expenses (the dual-approval amount).
        ExpensePolicyUpdated = "tenant.expense_policy_updated",
        MemberJoined = "member.joined",
        MemberAccountCreated = "member.account_created",
        MemberRoleChanged = "member.role_changed",
        MemberRemoved = "member.removed",
        InvitationCreated = "invitation.created",
        InvitationRevoked = "invitation.revoked",
        CalendarCreated = "calendar.created",
        CalendarUpdated = "calendar.updated",
        CalendarDeleted = "calendar.deleted",
        SlaPolicyCreated = "sla_policy.created",
        SlaPolicyUpdated = "sla_policy.updated",
        SlaPolicyDeleted = "sla_policy.deleted",
    }
}

/// Entries are kept for good, so an action this build does not know (written by a newer server)
/// must not make a ticket's history unreadable: it reads as an update of the ticket.
impl<'de> Deserialize<'de> for ActivityAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(text.parse().unwrap_or(ActivityAction::TicketUpdated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_as_itself() {
        for action in ActivityAction::ALL {
            let json = serde_json::to_string(action).unwrap();
            assert_eq!(json, format!("\"{action}\""), "serde and as_str agree");
            assert_eq!(
                serde_json::from_str::<ActivityAction>(&json).unwrap(),
                *action
            );
            assert_eq!(action.as_str().parse::<ActivityAction>().unwrap(), *action);
        }
    }
}
