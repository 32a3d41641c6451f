//! The ticket workflow: one state machine, used by the server and the desktop alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::permission::Role;
use crate::ticket::HoldReason;

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
pub enum Status {
    Open,
    InProgress,
    OnHold,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::OnHold,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::OnHold => "on_hold",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// The statuses a ticket may move to from this one, for whoever may work it.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::Open => &[Status::InProgress, Status::Resolved],
            Status::InProgress => &[Status::OnHold, Status::Resolved],
            Status::OnHold => &[Status::InProgress],
            Status::Resolved => &[Status::Closed, Status::InProgress],
            Status::Closed => &[],
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown status {0:?}: expected open, in_progress, on_hold, resolved or closed")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Who is moving the ticket.
#[derive(Clone, Copy, Debug)]
pub struct Mover {
    pub role: Role,
    /// Whether the mover raised the ticket.
    pub is_requester: bool,
}

/// A legal status change, ready to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    /// Set when the ticket goes on hold, cleared otherwise.
    pub hold_reason: Option<HoldReason>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("a ticket that is {from} cannot become {to}; {}", allowed_text(*.from, .allowed))]
    Illegal {
        from: Status,
        to: Status,
        allowed: Vec<Status>,
    },
    #[error("{role}s cannot move a ticket from {from} to {to}")]
    NotPermitted {
        role: Role,
        from: Status,
        to: Status,
    },
    #[error("putting a ticket on hold needs a reason")]
    ReasonRequired,
    #[error("{0}")]
    InvalidReason(String),
}

fn allowed_text(from: Status, allowed: &[Status]) -> String {
    if from.next().is_empty() {
        return format!("a {from} ticket is final");
    }
    if allowed.is_empty() {
        return "you cannot change its status".to_owned();
    }
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    format!("from {from} it can become {}", names.join(" or "))
}

/// The statuses this mover may move a ticket to from `from`.
pub fn allowed_moves(mover: Mover, from: Status) -> Vec<Status> {
    from.next()
        .iter()
        .copied()
        .filter(|&to| may_move(mover, from, to))
        .collect()
}

fn may_move(mover: Mover, from: Status, to: Status) -> bool {
    match mover.role {
        Role::Agent | Role::Admin => true,
        Role::Requester => {
            mover.is_requester
                && from == Status::Resolved
                && matches!(to, Status::Closed | Status::InProgress)
        }
        Role::Observer => false,
    }
}

/// Checks a status change against the workflow and the mover's role.
///
/// Agents and admins may make any legal move. Requesters may only close or reopen their own
/// resolved tickets. Observers move nothing.
pub fn transition(
    mover: Mover,
    from: Status,
    to: Status,
    reason: Option<&str>,
) -> Result<Transition, TransitionError> {
    if !from.next().contains(&to) {
        return Err(TransitionError::Illegal {
            from,
            to,
            allowed: allowed_moves(mover, from),
        });
    }
    if !may_move(mover, from, to) {
        return Err(TransitionError::NotPermitted {
            role: mover.role,
            from,
            to,
        });
    }
    let hold_reason = if to == Status::OnHold {
        let reason = reason.ok_or(TransitionError::ReasonRequired)?;
        let reason = HoldReason::parse(reason).map_err(|e| match e {
            crate::ticket::FieldError::Empty { .. } => TransitionError::ReasonRequired,
            other => TransitionError::InvalidReason(other.to_string()),
        })?;
        Some(reason)
    } else {
        None
    };
    Ok(Transition {
        from,
        to,
        hold_reason,
    })
}

/// What happens when someone opens a ticket in a client: an agent or admin opening an `open`
/// ticket starts work on it. Anyone else's view changes nothing.
pub fn on_view(role: Role, status: Status) -> Option<Status> {
    (role.works_tickets() && status == Status::Open).then_some(Status::InProgress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn agent() -> Mover {
        Mover {
            role: Role::Agent,
            is_requester: false,
        }
    }

    const LEGAL: [(Status, Status); 7] = [
        (Open, InProgress),
        (Open, Resolved),
        (InProgress, OnHold),
        (InProgress, Resolved),
        (OnHold, InProgress),
        (Resolved, Closed),
        (Resolved, InProgress),
    ];

    #[test]
    fn every_legal_transition_is_allowed_for_agents_and_admins() {
        for role in [Role::Agent, Role::Admin] {
            for (from, to) in LEGAL {
                let mover = Mover {
                    role,
                    is_requester: false,
                };
                let t = transition(mover, from, to, Some("waiting for parts"))
                    .unwrap_or_else(|e| panic!("{role} {from}->{to}: {e}"));
                assert_eq!((t.from, t.to), (from, to));
                assert_eq!(
                    t.hold_reason.is_some(),
                    to == OnHold,
                    "only holds keep a reason"
                );
            }
        }
    }

    #[test]
    fn every_illegal_transition_is_refused_and_names_the_allowed_ones() {
        for from in Status::ALL {
            for to in Status::ALL {
                if LEGAL.contains(&(from, to)) {
                    continue;
                }
                let err = transition(agent(), from, to, Some("r")).unwrap_err();
                let TransitionError::Illegal { allowed, .. } = &err else {
                    panic!("{from}->{to} gave {err:?}");
                };
                assert_eq!(allowed.as_slice(), from.next());
                for s in from.next() {
                    assert!(
                        err.to_string().contains(s.as_str()),
                        "message names {s}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn closed_is_final() {
        assert!(Closed.next().is_empty());
        let err = transition(agent(), Closed, InProgress, None).unwrap_err();
        assert!(err.to_string().contains("final"), "{err}");
    }

    #[test]
    fn hold_needs_a_non_empty_reason() {
        assert_eq!(
            transition(agent(), InProgress, OnHold, None),
            Err(TransitionError::ReasonRequired)
        );
        assert_eq!(
            transition(agent(), InProgress, OnHold, Some("   ")),
            Err(TransitionError::ReasonRequired)
        );
        let t = transition(agent(), InProgress, OnHold, Some("  vendor  ")).unwrap();
        assert_eq!(
            t.hold_reason.unwrap().as_str(),
            "vendor",
            "the reason is kept, trimmed"
        );
    }

    #[test]
    fn requesters_only_close_or_reopen_their_own_resolved_tickets() {
        let own = Mover {
            role: Role::Requester,
            is_requester: true,
        };
        let other = Mover {
            role: Role::Requester,
            is_requester: false,
        };
        for from in Status::ALL {
            for to in Status::ALL {
                let allowed = from == Resolved && matches!(to, Closed | InProgress);
                assert_eq!(
                    transition(own, from, to, Some("r")).is_ok(),
                    allowed,
                    "{from}->{to}"
                );
                assert!(
                    transition(other, from, to, Some("r")).is_err(),
                    "not their ticket"
                );
            }
        }
    }

    #[test]
    fn requesters_are_told_what_they_may_do() {
        let own = Mover {
            role: Role::Requester,
            is_requester: true,
        };
        assert_eq!(allowed_moves(own, Resolved), vec![Closed, InProgress]);
        assert!(allowed_moves(own, Open).is_empty());
        let err = transition(own, Open, OnHold, Some("r")).unwrap_err();
        assert!(
            err.to_string().contains("cannot change its status"),
            "{err}"
        );
    }

    #[test]
    fn observers_move_nothing() {
        let observer = Mover {
            role: Role::Observer,
            is_requester: false,
        };
        for (from, to) in LEGAL {
            assert!(matches!(
                transition(observer, from, to, Some("r")),
                Err(TransitionError::NotPermitted { .. })
            ));
        }
    }

    #[test]
    fn viewing_an_open_ticket_starts_work_only_for_agents_and_admins() {
        assert_eq!(on_view(Role::Agent, Open), Some(InProgress));
        assert_eq!(on_view(Role::Admin, Open), Some(InProgress));
        assert_eq!(
            on_view(Role::Observer, Open),
            None,
            "an observer's view changes nothing"
        );
        assert_eq!(on_view(Role::Requester, Open), None);
        for status in [InProgress, OnHold, Resolved, Closed] {
            assert_eq!(on_view(Role::Agent, status), None);
        }
    }
}
