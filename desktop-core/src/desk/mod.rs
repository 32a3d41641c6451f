//! The ticket workspace: every operation the desktop offers, with the shared rules applied.
//!
//! Each record has one write path, in its own module: a command checks, writes and queues its
//! intent for the server; replaying a queued intent over the server's state
//! ([`crate::sync::store`]) calls the same function, which checks and writes alike, and queues
//! nothing.

mod activity;
pub(crate) mod comments;
pub(crate) mod customers;
mod queue;
pub(crate) mod ticket;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::api::ErrorCode;
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::Intent;
use tallydesk_shared::ticket::Category;
use tallydesk_shared::{Access, Action, Role, UserId};

pub(crate) use activity::record;

use crate::Clock;
use crate::error::{DeskError, DeskResult};
use crate::model::{Person, WorkspaceInfo};
use crate::store::Store;
use crate::sync::SyncScope;
use crate::time::to_micros;

/// The local workspace, acting as its user.
#[derive(Clone, Debug)]
pub struct Desk {
    store: Store,
    /// Who acts; their role is in `role`, since signing in can change it.
    me: Person,
    /// The role the user acts with: admin in a local workspace, else their role in the
    /// signed-in tenant. Shared by every clone, so a change applies to all of them at once.
    role: std::sync::Arc<std::sync::RwLock<Role>>,
    workspace_name: String,
    clock: Clock,
    /// Bumped after every change, so watchers (the SLA alerts) look again.
    changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The server and tenant this store syncs with while signed in; `None` in local mode (or
    /// signed out), when nothing is queued for a server.
    scope: std::sync::Arc<std::sync::RwLock<Option<SyncScope>>>,
    /// Bumped after every intent queued in the outbox, so the sync loop pushes soon.
    queued: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

pub(crate) fn parse_id<T: std::str::FromStr>(text: &str) -> DeskResult<T> {
    text.parse().map_err(|_| {
        DeskError::new(
            ErrorCode::Internal,
            format!("bad id {text:?} in the local database"),
        )
    })
}

/// Who makes a change, with the role they act with: the desk's user for a command, the
/// scope's user for a replayed intent. The checks of every write are made as them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Actor {
    pub id: UserId,
    pub role: Role,
}

impl Actor {
    pub(crate) fn require(&self, action: Action) -> DeskResult<()> {
        if access(self.role, action) == Access::Denied {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!("{}s may not do this", self.role),
            ));
        }
        Ok(())
    }

    /// Whether they may do `action` to a ticket, `own` when they asked for it.
    pub(crate) fn may(&self, action: Action, own: bool) -> bool {
        access(self.role, action).allows(own)
    }
}

impl From<&Person> for Actor {
    fn from(person: &Person) -> Self {
        Actor {
            id: person.id,
            role: person.role,
        }
    }
}

pub(crate) fn parse_text<T: std::str::FromStr>(text: &str, what: &str) -> DeskResult<T> {
    text.parse().map_err(|_| {
        DeskError::new(
            ErrorCode::Internal,
            format!("bad {what} {text:?} in the local database"),
        )
    })
}

impl Desk {
    /// Opens the workspace in `store`, creating it (with demo data when `demo` is set) on
    /// first use. The local user is the workspace's admin.
    pub async fn open(store: Store, clock: Clock, user_name: &str, demo: bool) -> DeskResult<Desk> {
        let row = sqlx::query_as::<_, WorkspaceDb>(
            "select w.name as workspace_name, u.id, u.name, u.email, u.role from workspace w join users u on u.id = w.user_id",
        )
        .fetch_optional(&store.pool)
        .await?;
        let (workspace_name, me) = match row {
            Some(row) => (row.workspace_name, row.me.into_person()?),
            None => {
                let me = Person {
                    id: UserId::new(),
                    name: user_name.to_owned(),
                    email: None,
                    role: Role::Admin,
                };
                let now = to_micros(clock.now());
                let mut tx = store.write().await?;
                sqlx::query(
                    "insert into users (id, name, role, updated_at) values (?, ?, 'admin', ?)",
                )
                .bind(me.id)
                .bind(&me.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("insert into workspace (id, name, user_id, created_at) values (?, 'My workspace', ?, ?)")
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(me.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                ("My workspace".to_owned(), me)
            }
        };
        let desk = Desk {
            store,
            role: std::sync::Arc::new(std::sync::RwLock::new(me.role)),
            me,
            workspace_name,
            clock,
            changes: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            scope: std::sync::Arc::new(std::sync::RwLock::new(None)),
            queued: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        if demo && desk.is_empty().await? {
            crate::demo::seed(&desk).await?;
        }
        Ok(desk)
    }

    /// Changes whenever the workspace does.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn touched(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The user, with the role they act with now: the server's user while signed in, else
    /// the local workspace's.
    pub fn me(&self) -> Person {
        let me = self
            .sync_scope()
            .map_or_else(|| self.me.clone(), |scope| scope.user);
        Person {
            role: self.role(),
            ..me
        }
    }

    /// Who acts: the signed-in server user, else the local user.
    fn me_id(&self) -> UserId {
        self.sync_scope().map_or(self.me.id, |scope| scope.user.id)
    }

    /// Who acts, with the role they act with now.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            id: self.me_id(),
            role: self.role(),
        }
    }

    /// Where local writes are queued for, if anywhere.
    pub fn sync_scope(&self) -> Option<SyncScope> {
        self.scope.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts (signed in to a tenant) or stops (local mode, signed out) queueing local writes
    /// for a server, here and in every clone of this desk.
    pub fn set_sync_scope(&self, scope: Option<SyncScope>) {
        let mut slot = self.scope.write().unwrap_or_else(|e| e.into_inner());
        if *slot != scope {
            *slot = scope;
            drop(slot);
            self.touched();
            // The sync loop starts (or stops) with it.
            self.queued.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Changes whenever an intent is queued for the server, or the scope changes.
    pub fn queued(&self) -> tokio::sync::watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// A write transaction; while signed in, the acting server user has a row first (the
    /// records the write makes refer to them).
    pub(crate) async fn write(&self) -> DeskResult<Transaction<'static, Sqlite>> {
        let mut tx = self.store.write().await?;
        if let Some(scope) = self.sync_scope() {
            crate::sync::store::upsert_user(&mut tx, &scope.user, to_micros(self.now())).await?;
        }
        Ok(tx)
    }

    /// Queues `intent` for the server inside `tx`, when signed in; in local mode nothing is.
    pub(crate) async fn enqueue(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        intent: Intent,
    ) -> DeskResult<()> {
        if let Some(scope) = self.sync_scope() {
            crate::sync::store::enqueue(tx, &scope, &intent, to_micros(self.now())).await?;
        }
        Ok(())
    }

    /// After a write's commit: watchers look again, and the sync loop pushes.
    pub(crate) fn written(&self) {
        self.touched();
        if self.sync_scope().is_some() {
            self.queued.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The role the user acts with now.
    pub fn role(&self) -> Role {
        *self.role.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Acts with `role` from now on (signing in to a tenant, switching tenant, going local),
    /// here and in every clone of this desk; the user's record keeps it for the next start.
    pub async fn set_role(&self, role: Role) -> DeskResult<()> {
        if self.role() == role {
            return Ok(());
        }
        sqlx::query("update users set role = ?, updated_at = ? where id = ?")
            .bind(role.as_str())
            .bind(to_micros(self.clock.now()))
            .bind(self.me.id)
            .execute(&self.store.pool)
            .await?;
        *self.role.write().unwrap_or_else(|e| e.into_inner()) = role;
        self.touched();
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn is_empty(&self) -> DeskResult<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from tickets")
            .fetch_one(&self.store.pool)
            .await?;
        Ok(n == 0)
    }

    pub(crate) fn require(&self, action: Action) -> DeskResult<()> {
        self.actor().require(action)
    }

    /// What the user may do here: their role's actions.
    fn can(&self) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| access(self.role(), *a) != Access::Denied)
            .collect()
    }

    pub async fn info(&self) -> DeskResult<WorkspaceInfo> {
        let pool = &self.store.pool;
        let demo: i64 = sqlx::query_scalar(
            "select (select count(*) from tickets where demo = 1) + (select count(*) from customers where demo = 1)",
        )
        .fetch_one(pool)
        .await?;
        let view_counts = self.view_counts().await?;
        Ok(WorkspaceInfo {
            name: self.workspace_name.clone(),
            me: self.me(),
            can: self.can(),
            has_demo_data: demo > 0,
            categories: Category::DEFAULTS.iter().map(|c| (*c).to_owned()).collect(),
            view_counts,
        })
    }

    pub async fn people(&self) -> DeskResult<Vec<Person>> {
        sqlx::query_as::<_, PersonDb>(
            "select id, name, email, role from users where deleted_at is null order by name collate nocase",
        )
        .fetch_all(&self.store.pool)
        .await?
        .into_iter()
        .map(PersonDb::into_person)
        .collect()
    }
}

/// The workspace and its local user.
#[derive(FromRow)]
struct WorkspaceDb {
    workspace_name: String,
    #[sqlx(flatten)]
    me: PersonDb,
}

/// A row of `users`.
#[derive(FromRow)]
struct PersonDb {
    id: UserId,
    name: String,
    email: Option<String>,
    role: String,
}

impl PersonDb {
    fn into_person(self) -> DeskResult<Person> {
        Ok(Person {
            id: self.id,
            name: self.name,
            email: self.email,
            role: parse_text(&self.role, "role")?,
        })
    }
}
