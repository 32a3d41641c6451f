//! Roles and the permission matrix: one pure function, enforced by the server on every route.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in one tenant, lowest to highest.
#[derive(
    Clone,
    Copy,
    Debug,
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
pub enum Role {
    /// Raises tickets; sees and comments on their own; never sees internal notes.
    Requester,
    /// Reads everything in the tenant, internal notes included; changes nothing.
    Observer,
    /// Works every ticket.
    Agent,
    /// An agent who also manages members, invitations, deletions and tenant settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Requester, Role::Observer, Role::Agent, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Observer => "observer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// Agents and admins work tickets: they can be assigned and their replies count as responses.
    pub fn works_tickets(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected requester, observer, agent or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Something a member may try to do in a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ViewTicket,
    CreateTicket,
    /// Raise a ticket on someone else's behalf, or pick its assignee at creation.
    CreateTicketForOthers,
    EditTicket,
    DeleteTicket,
    /// Change a ticket's status; which changes are legal is the workflow's business.
    TransitionTicket,
    CommentPublic,
    CommentInternal,
    ViewInternalNotes,
    ViewActivity,
    ViewCustomers,
    EditCustomers,
    DeleteCustomer,
    ViewMembers,
    ManageMembers,
    ManageInvitations,
    ManageTenantSettings,
    /// Scan receipts and file expenses on a ticket (agents and requesters: on claims they raised).
    SubmitExpense,
    /// Approve or reject a submitted expense.
    DecideExpense,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::ViewTicket,
        Action::CreateTicket,
        Action::CreateTicketForOthers,
        Action::EditTicket,
        Action::DeleteTicket,
        Action::TransitionTicket,
        Action::CommentPublic,
        Action::CommentInternal,
        Action::ViewInternalNotes,
        Action::ViewActivity,
        Action::ViewCustomers,
        Action::EditCustomers,
        Action::DeleteCustomer,
        Action::ViewMembers,
        Action::ManageMembers,
        Action::ManageInvitations,
        Action::ManageTenantSettings,
        Action::SubmitExpense,
        Action::DecideExpense,
    ];
}

/// How far a role may take an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Denied,
    /// Only on tickets the member raised.
    OwnTickets,
    Allowed,
}

impl Access {
    /// Whether the action is allowed on a record; `own` says whether the member raised it.
    pub fn allows(self, own: bool) -> bool {
        match self {
            Access::Denied => false,
            Access::OwnTickets => own,
            Access::Allowed => true,
        }
    }
}

/// The permission matrix.
pub fn access(role: Role, action: Action) -> Access {
    use Access::*;
    use Action::*;
    match (role, action) {
        (Role::Admin, _) => Allowed,

        (Role::Agent, DeleteTicket | DeleteCustomer) => Denied,
        (Role::Agent, ManageMembers | ManageInvitations | ManageTenantSettings) => Denied,
        // Segregation of duties: an agent claims money for themselves only, as a requester does.
        (Role::Agent, SubmitExpense) => OwnTickets,
        (Role::Agent, _) => Allowed,

        (Role::Observer, ViewTicket | ViewInternalNotes | ViewActivity) => Allowed,
        (Role::Observer, ViewCustomers | ViewMembers) => Allowed,
        (Role::Observer, _) => Denied,

        (
            Role::Requester,
            ViewTicket | ViewActivity | CommentPublic | TransitionTicket | SubmitExpense,
        ) => OwnTickets,
        (Role::Requester, CreateTicket) => Allowed,
        (Role::Requester, _) => Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::*;
    use Action::*;

    /// The matrix, cell by cell: one row per action, columns requester, observer, agent, admin.
    const EXPECTED: [(Action, [Access; 4]); 19] = [
        (ViewTicket, [OwnTickets, Allowed, Allowed, Allowed]),
        (CreateTicket, [Allowed, Denied, Allowed, Allowed]),
        (CreateTicketForOthers, [Denied, Denied, Allowed, Allowed]),
        (EditTicket, [Denied, Denied, Allowed, Allowed]),
        (DeleteTicket, [Denied, Denied, Denied, Allowed]),
        (TransitionTicket, [OwnTickets, Denied, Allowed, Allowed]),
        (CommentPublic, [OwnTickets, Denied, Allowed, Allowed]),
        (CommentInternal, [Denied, Denied, Allowed, Allowed]),
        (ViewInternalNotes, [Denied, Allowed, Allowed, Allowed]),
        (ViewActivity, [OwnTickets, Allowed, Allowed, Allowed]),
        (ViewCustomers, [Denied, Allowed, Allowed, Allowed]),
        (EditCustomers, [Denied, Denied, Allowed, Allowed]),
        (DeleteCustomer, [Denied, Denied, Denied, Allowed]),
        (ViewMembers, [Denied, Allowed, Allowed, Allowed]),
        (ManageMembers, [Denied, Denied, Denied, Allowed]),
        (ManageInvitations, [Denied, Denied, Denied, Allowed]),
        (ManageTenantSettings, [Denied, Denied, Denied, Allowed]),
        (SubmitExpense, [OwnTickets, Denied, OwnTickets, Allowed]),
        (DecideExpense, [Denied, Denied, Allowed, Allowed]),
    ];

    #[test]
    fn every_cell_of_the_matrix() {
        assert_eq!(EXPECTED.len(), Action::ALL.len(), "every action has a row");
        for (action, row) in EXPECTED {
            for (role, expected) in Role::ALL.into_iter().zip(row) {
                assert_eq!(access(role, action), expected, "{role} / {action:?}");
            }
        }
    }

    #[test]
    fn own_tickets_access_depends_on_ownership() {
        assert!(OwnTickets.allows(true));
        assert!(
            !OwnTickets.allows(false),
            "a requester never reaches another's ticket"
        );
        assert!(Allowed.allows(false));
        assert!(!Denied.allows(true));
    }

    #[test]
    fn observers_change_nothing() {
        let changes = [
            CreateTicket,
            CreateTicketForOthers,
            EditTicket,
            DeleteTicket,
            TransitionTicket,
            CommentPublic,
            CommentInternal,
            EditCustomers,
            DeleteCustomer,
            ManageMembers,
            ManageInvitations,
            ManageTenantSettings,
        ];
        for action in changes {
            assert_eq!(access(Role::Observer, action), Denied, "{action:?}");
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
        assert!(
            "Admin".parse::<Role>().is_err(),
            "role names are lower-case on the wire"
        );
    }
}
