//! The permission matrix and the ticket workflow, whole, as data, for a client that cannot ask
//! Rust each time: the UI's stand-in for the desktop (under its component tests) reads them from
//! `ui/src/test/rules.generated.ts`, which a test writes from [`rules`], and keeps no copy.

use serde::{Serialize, Serializer};

use crate::permission::{Access, Action, Role, access};
use crate::workflow::{Mover, Status, allowed_moves, on_view};

/// What [`access`], [`Status::next`], [`allowed_moves`] and [`on_view`] answer, for every role,
/// action and status.
#[derive(Debug, Serialize)]
pub struct Rules {
    /// How far each role may take each action.
    pub access: Table<Role, Table<Action, Access>>,
    /// The statuses a ticket may move to from each, for whoever may work it.
    pub next: Table<Status, Vec<Status>>,
    /// The moves each role may make, by the ticket's status.
    pub moves: Table<Role, Moves>,
    /// What opening a ticket does to its status, by role (`null`: nothing).
    pub on_view: Table<Role, Table<Status, Option<Status>>>,
}

/// One role's moves, by the ticket's status.
#[derive(Debug, Serialize)]
pub struct Moves {
    /// On tickets the mover raised.
    pub own: Table<Status, Vec<Status>>,
    /// On anyone else's.
    pub others: Table<Status, Vec<Status>>,
}

/// A map that keeps its keys in the order Rust lists them ([`Role::ALL`], [`Status::ALL`]…).
#[derive(Debug)]
pub struct Table<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Table<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

fn table<K: Copy, V>(keys: impl IntoIterator<Item = K>, value: impl Fn(K) -> V) -> Table<K, V> {
    Table(keys.into_iter().map(|k| (k, value(k))).collect())
}

/// The rules as they stand, keyed in Rust's order (so the written file changes only with them).
pub fn rules() -> Rules {
    let moves = |role, is_requester| {
        table(Status::ALL, move |from| {
            allowed_moves(Mover { role, is_requester }, from)
        })
    };
    Rules {
        access: table(Role::ALL, |role| {
            table(Action::ALL, |action| access(role, action))
        }),
        next: table(Status::ALL, |from| from.next().to_vec()),
        moves: table(Role::ALL, |role| Moves {
            own: moves(role, true),
            others: moves(role, false),
        }),
        on_view: table(Role::ALL, |role| {
            table(Status::ALL, |status| on_view(role, status))
        }),
    }
}
