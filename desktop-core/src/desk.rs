//! The ticket workspace: every operation the desktop offers, with the shared rules applied.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Row, Sqlite, Transaction};
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{
    Activity, Comment, CreateCustomer, CreateTicket, Customer, PatchCustomer, PatchTicket, Ticket,
};
use tallydesk_shared::permission::access;
use tallydesk_shared::sync::{
    CommentCreate, CustomerCreate, CustomerDelete, CustomerUpdate, Intent, TicketCreate,
    TicketDelete, TicketTransition, TicketUpdate,
};
use tallydesk_shared::ticket::{
    Category, CommentBody, Company, CustomerName, Email, FieldError, Notes, Phone,
    TicketDescription, TicketTitle,
};
use tallydesk_shared::workflow::{self, Mover, Transition};
use tallydesk_shared::{
    Access, Action, ActivityId, CommentId, CustomerId, Role, Status, TicketId, UserId,
};

use crate::Clock;
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::{
    AssigneeFilter, CustomerDetail, Person, TicketDetail, TicketPage, TicketQuery, TicketRow,
    TicketSort, TicketView, WorkspaceInfo,
};
use crate::store::Store;
use crate::sync::SyncScope;
use crate::time::{from_micros, opt_from_micros, to_micros};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

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
        let row = sqlx::query("select w.name, u.id, u.name, u.email, u.role from workspace w join users u on u.id = w.user_id")
            .fetch_optional(&store.pool)
            .await?;
        let (workspace_name, me) = match row {
            Some(r) => (
                r.get::<String, _>(0),
                Person {
                    id: parse_id(&r.get::<String, _>(1))?,
                    name: r.get(2),
                    email: r.get(3),
                    role: parse_text(&r.get::<String, _>(4), "role")?,
                },
            ),
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
                .bind(me.id.to_string())
                .bind(&me.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("insert into workspace (id, name, user_id, created_at) values (?, 'My workspace', ?, ?)")
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(me.id.to_string())
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
            .bind(self.me.id.to_string())
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
        if access(self.role(), action) == Access::Denied {
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!("{}s may not do this", self.role()),
            ));
        }
        Ok(())
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
        let mut view_counts = Vec::new();
        for view in [
            TicketView::All,
            TicketView::MyOpen,
            TicketView::Unassigned,
            TicketView::OnHold,
            TicketView::RecentlyResolved,
        ] {
            let query = TicketQuery {
                view: Some(view),
                ..Default::default()
            };
            let mut qb = QueryBuilder::new("select count(*) from tickets t where ");
            self.push_filters(&mut qb, &query)?;
            let n: i64 = qb.build_query_scalar().fetch_one(pool).await?;
            view_counts.push((view, u32::try_from(n).unwrap_or(u32::MAX)));
        }
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
        let rows = sqlx::query("select id, name, email, role from users where deleted_at is null order by name collate nocase")
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Person {
                    id: parse_id(&r.get::<String, _>(0))?,
                    name: r.get(1),
                    email: r.get(2),
                    role: parse_text(&r.get::<String, _>(3), "role")?,
                })
            })
            .collect()
    }

    // ---- The queue ---------------------------------------------------------------------------

    fn push_filters(&self, qb: &mut QueryBuilder<'_, Sqlite>, q: &TicketQuery) -> DeskResult<()> {
        qb.push("t.deleted_at is null");
        if access(self.role(), Action::ViewTicket) == Access::OwnTickets {
            qb.push(" and t.requester_id = ")
                .push_bind(self.me_id().to_string());
        }
        match q.view.unwrap_or(TicketView::All) {
            TicketView::All => {}
            TicketView::MyOpen => {
                qb.push(" and t.assignee_id = ")
                    .push_bind(self.me_id().to_string());
                qb.push(" and t.status in ('open', 'in_progress', 'on_hold')");
            }
            TicketView::Unassigned => {
                qb.push(
                    " and t.assignee_id is null and t.status in ('open', 'in_progress', 'on_hold')",
                );
            }
            TicketView::OnHold => {
                qb.push(" and t.status = 'on_hold'");
            }
            TicketView::RecentlyResolved => {
                qb.push(" and t.status in ('resolved', 'closed')");
            }
        }
        if let Some(status) = q.status {
            qb.push(" and t.status = ").push_bind(status.as_str());
        }
        if let Some(priority) = q.priority {
            qb.push(" and t.priority = ").push_bind(priority.as_str());
        }
        match &q.assignee {
            None => {}
            Some(AssigneeFilter::Me) => {
                qb.push(" and t.assignee_id = ")
                    .push_bind(self.me_id().to_string());
            }
            Some(AssigneeFilter::Nobody) => {
                qb.push(" and t.assignee_id is null");
            }
            Some(AssigneeFilter::User(user)) => {
                qb.push(" and t.assignee_id = ").push_bind(user.to_string());
            }
        }
        if let Some(category) = q.category.as_deref().filter(|c| !c.is_empty()) {
            qb.push(" and t.category = ")
                .push_bind(Category::parse(category)?.as_str().to_owned());
        }
        if let Some(customer) = q.customer {
            qb.push(" and t.customer_id = ")
                .push_bind(customer.to_string());
        }
        if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            if search.chars().count() > 200 {
                return Err(DeskError::invalid(
                    "search",
                    "search: at most 200 characters",
                ));
            }
            qb.push(" and t.rowid in (select rowid from ticket_search where ticket_search match ")
                .push_bind(fts_query(search))
                .push(")");
        }
        Ok(())
    }

    /// One page of the queue, with the number of matching tickets.
    pub async fn list_tickets(&self, q: &TicketQuery) -> DeskResult<TicketPage> {
        self.require(Action::ViewTicket)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DeskError::invalid(
                "limit",
                format!("limit: between 1 and {MAX_PAGE}"),
            ));
        }
        let sort = match (q.view, q.sort) {
            (Some(TicketView::RecentlyResolved), TicketSort::Newest) => TicketSort::RecentlyUpdated,
            (_, sort) => sort,
        };
        let (column, desc) = match sort {
            TicketSort::Newest => ("t.created_at", true),
            TicketSort::Oldest => ("t.created_at", false),
            TicketSort::RecentlyUpdated => ("t.updated_at", true),
            TicketSort::PriorityHighFirst => ("t.priority_rank", true),
        };
        let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;

        let mut count = QueryBuilder::new("select count(*) from tickets t where ");
        self.push_filters(&mut count, q)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.store.pool)
            .await?;
        let total = u32::try_from(total).unwrap_or(u32::MAX);

        let mut qb = QueryBuilder::new(ROW_SELECT);
        self.push_filters(&mut qb, q)?;
        if let Some(c) = &cursor {
            qb.push(format_args!(
                " and ({column}, t.id) {} (",
                if desc { "<" } else { ">" }
            ))
            .push_bind(c.key)
            .push(", ")
            .push_bind(c.id.clone())
            .push(")");
        }
        let dir = if desc { "desc" } else { "asc" };
        qb.push(format_args!(" order by {column} {dir}, t.id {dir} limit "))
            .push_bind(i64::from(limit) + 1);
        let rows = qb.build().fetch_all(&self.store.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            keys.push(match sort {
                TicketSort::Newest | TicketSort::Oldest => row.get::<i64, _>("created_at"),
                TicketSort::RecentlyUpdated => row.get::<i64, _>("updated_at"),
                TicketSort::PriorityHighFirst => row.get::<i64, _>("priority_rank"),
            });
            items.push(ticket_row(row)?);
        }
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            let last = &items[items.len() - 1];
            Some(
                Cursor {
                    key: keys[items.len() - 1],
                    id: last.id.to_string(),
                }
                .encode(),
            )
        } else {
            None
        };
        let ids: Vec<TicketId> = items.iter().map(|t| t.id).collect();
        let mut slas = self.worst_slas(&ids).await?;
        for item in &mut items {
            item.sla = slas.remove(&item.id);
        }
        Ok(TicketPage {
            items,
            next_cursor,
            total,
        })
    }

    // ---- One ticket --------------------------------------------------------------------------

    async fn load(&self, id: TicketId) -> DeskResult<Ticket> {
        let row = sqlx::query_as::<_, TicketDb>(
            "select * from tickets where id = ? and deleted_at is null",
        )
        .bind(id.to_string())
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or_else(|| DeskError::not_found("ticket"))?;
        let ticket = row.into_ticket()?;
        if !access(self.role(), Action::ViewTicket).allows(ticket.requester_id == self.me_id()) {
            return Err(DeskError::not_found("ticket"));
        }
        Ok(ticket)
    }

    fn mover(&self, ticket: &Ticket) -> Mover {
        Mover {
            role: self.role(),
            is_requester: ticket.requester_id == self.me_id(),
        }
    }

    pub async fn ticket(&self, id: TicketId) -> DeskResult<TicketDetail> {
        let ticket = self.load(id).await?;
        let names = sqlx::query(
            "select r.name, a.name, c.name from tickets t
               join users r on r.id = t.requester_id
               left join users a on a.id = t.assignee_id
               left join customers c on c.id = t.customer_id and c.deleted_at is null
              where t.id = ?",
        )
        .bind(id.to_string())
        .fetch_one(&self.store.pool)
        .await?;
        Ok(TicketDetail {
            allowed_moves: workflow::allowed_moves(self.mover(&ticket), ticket.status),
            ticket,
            requester_name: names.get(0),
            assignee_name: names.get(1),
            customer_name: names.get(2),
            sla: self.ticket_sla(id).await?,
        })
    }

    pub async fn create_ticket(&self, input: &CreateTicket) -> DeskResult<Ticket> {
        let mut tx = self.write().await?;
        let id = self.insert_ticket(&mut tx, input).await?;
        tx.commit().await?;
        self.written();
        self.load(id).await
    }

    /// Creates a ticket inside `tx`, for operations that make one along with something else.
    pub(crate) async fn insert_ticket(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        input: &CreateTicket,
    ) -> DeskResult<TicketId> {
        self.require(Action::CreateTicket)?;
        let title = TicketTitle::parse(&input.title)?;
        let description = TicketDescription::parse(&input.description)?;
        let category = match input.category.as_deref() {
            Some(c) => Category::parse(c)?,
            None => Category::general(),
        };
        if !Category::DEFAULTS.contains(&category.as_str()) {
            return Err(DeskError::invalid(
                "category",
                format!(
                    "category: {:?} is not one of {}",
                    category.as_str(),
                    Category::DEFAULTS.join(", ")
                ),
            ));
        }
        if input.assignee_id.is_some() || input.requester_id.is_some() {
            self.require(Action::CreateTicketForOthers)?;
        }
        if let Some(assignee) = input.assignee_id {
            check_assignee(tx, assignee).await?;
        }
        if let Some(customer) = input.customer_id {
            check_customer(tx, customer).await?;
        }
        let requester = input.requester_id.unwrap_or(self.me_id());
        let now = self.now();
        let id = TicketId::new();
        let number: i64 = sqlx::query_scalar("select coalesce(max(number), 0) + 1 from tickets")
            .fetch_one(&mut **tx)
            .await?;
        let priority = input.priority.unwrap_or_default();
        sqlx::query(
            "insert into tickets (id, number, title, description, priority, category, requester_id,
                                  assignee_id, customer_id, created_at, updated_at)
             values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(number)
        .bind(title.as_str())
        .bind(description.as_str())
        .bind(priority.as_str())
        .bind(category.as_str())
        .bind(requester.to_string())
        .bind(input.assignee_id.map(|a| a.to_string()))
        .bind(input.customer_id.map(|c| c.to_string()))
        .bind(to_micros(now))
        .bind(to_micros(now))
        .execute(&mut **tx)
        .await?;
        record(
            tx,
            Some(id),
            self.me_id(),
            ActivityAction::TicketCreated,
            None,
            None,
            Some(json!({ "number": number, "title": title.as_str(), "priority": priority, "category": category.as_str() })),
            false,
            now,
        )
        .await?;
        self.enqueue(
            tx,
            Intent::TicketCreate(TicketCreate {
                id,
                title: title.as_str().to_owned(),
                description: description.as_str().to_owned(),
                priority: Some(priority),
                category: Some(category.as_str().to_owned()),
                customer_id: input.customer_id,
                assignee_id: input.assignee_id,
            }),
        )
        .await?;
        Ok(id)
    }

    pub async fn update_ticket(&self, id: TicketId, patch: &PatchTicket) -> DeskResult<Ticket> {
        self.require(Action::EditTicket)?;
        let current = self.load(id).await?;
        if let Some(version) = patch.version.filter(|v| *v != current.version) {
            return Err(DeskError::new(
                ErrorCode::StaleVersion,
                format!(
                    "the ticket changed since you opened it (version {version}, now {}); reload it",
                    current.version
                ),
            ));
        }
        let title = patch.title.as_deref().map(TicketTitle::parse).transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(TicketDescription::parse)
            .transpose()?;
        let category = patch.category.as_deref().map(Category::parse).transpose()?;
        if let Some(c) = &category
            && !Category::DEFAULTS.contains(&c.as_str())
        {
            return Err(DeskError::invalid(
                "category",
                format!("category: {:?} is not a known category", c.as_str()),
            ));
        }
        let mut tx = self.write().await?;
        if let Some(Some(assignee)) = patch.assignee_id {
            check_assignee(&mut tx, assignee).await?;
        }
        if let Some(Some(customer)) = patch.customer_id {
            check_customer(&mut tx, customer).await?;
        }
        let after = Ticket {
            title: title.map_or(current.title.clone(), TicketTitle::into_inner),
            description: description
                .map_or(current.description.clone(), TicketDescription::into_inner),
            priority: patch.priority.unwrap_or(current.priority),
            category: category.map_or(current.category.clone(), |c| c.as_str().to_owned()),
            assignee_id: patch.assignee_id.unwrap_or(current.assignee_id),
            customer_id: patch.customer_id.unwrap_or(current.customer_id),
            ..current.clone()
        };
        let changes: Vec<(&str, Value, Value)> = [
            ("title", json!(current.title), json!(after.title)),
            (
                "description",
                json!(current.description),
                json!(after.description),
            ),
            ("priority", json!(current.priority), json!(after.priority)),
            ("category", json!(current.category), json!(after.category)),
            (
                "assignee_id",
                json!(current.assignee_id),
                json!(after.assignee_id),
            ),
            (
                "customer_id",
                json!(current.customer_id),
                json!(after.customer_id),
            ),
        ]
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .collect();
        if changes.is_empty() {
            return Ok(current);
        }
        let now = self.now();
        sqlx::query(
            "update tickets set title = ?, description = ?, priority = ?, category = ?, assignee_id = ?,
                    customer_id = ?, updated_at = ?, version = version + 1
              where id = ?",
        )
        .bind(&after.title)
        .bind(&after.description)
        .bind(after.priority.as_str())
        .bind(&after.category)
        .bind(after.assignee_id.map(|a| a.to_string()))
        .bind(after.customer_id.map(|c| c.to_string()))
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let intent = TicketUpdate {
            id,
            base_version: current.version,
            title: (after.title != current.title).then(|| after.title.clone()),
            description: (after.description != current.description)
                .then(|| after.description.clone()),
            priority: (after.priority != current.priority).then_some(after.priority),
            category: (after.category != current.category).then(|| after.category.clone()),
            assignee_id: (after.assignee_id != current.assignee_id).then_some(after.assignee_id),
            customer_id: (after.customer_id != current.customer_id).then_some(after.customer_id),
        };
        self.enqueue(&mut tx, Intent::TicketUpdate(intent)).await?;
        for (field, before, after) in changes {
            record(
                &mut tx,
                Some(id),
                self.me_id(),
                ActivityAction::TicketUpdated,
                Some(field),
                Some(json!({ field: before })),
                Some(json!({ field: after })),
                false,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.written();
        self.load(id).await
    }

    pub async fn transition(
        &self,
        id: TicketId,
        to: Status,
        reason: Option<&str>,
    ) -> DeskResult<Ticket> {
        let ticket = self.load(id).await?;
        let t = workflow::transition(self.mover(&ticket), ticket.status, to, reason)?;
        self.apply(&ticket, t, ActivityAction::TicketTransitioned)
            .await?;
        self.load(id).await
    }

    /// Opening a ticket: an agent or admin opening an `open` ticket starts work on it.
    pub async fn view_ticket(&self, id: TicketId) -> DeskResult<TicketDetail> {
        let ticket = self.load(id).await?;
        if let Some(to) = workflow::on_view(self.role(), ticket.status) {
            let t = workflow::transition(self.mover(&ticket), ticket.status, to, None)?;
            self.apply(&ticket, t, ActivityAction::TicketViewed).await?;
        }
        self.ticket(id).await
    }

    async fn apply(
        &self,
        ticket: &Ticket,
        t: Transition,
        action: ActivityAction,
    ) -> DeskResult<()> {
        let now = self.now();
        let resolved_at = match t.to {
            Status::Resolved => Some(now),
            Status::Closed => ticket.resolved_at,
            _ => None,
        };
        let closed_at = (t.to == Status::Closed).then_some(now);
        let reason = t.hold_reason.as_ref().map(|r| r.as_str().to_owned());
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "update tickets set status = ?, hold_reason = ?, resolved_at = ?, closed_at = ?, updated_at = ?,
                    version = version + 1
              where id = ? and status = ?",
        )
        .bind(t.to.as_str())
        .bind(&reason)
        .bind(resolved_at.map(to_micros))
        .bind(closed_at.map(to_micros))
        .bind(to_micros(now))
        .bind(ticket.id.to_string())
        .bind(t.from.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DeskError::new(
                ErrorCode::StaleVersion,
                "the ticket's status changed meanwhile; reload it",
            ));
        }
        let mut after = json!({ "status": t.to });
        if let Some(reason) = &reason {
            after["hold_reason"] = json!(reason);
        }
        record(
            &mut tx,
            Some(ticket.id),
            self.me_id(),
            action,
            Some("status"),
            Some(json!({ "status": t.from })),
            Some(after),
            false,
            now,
        )
        .await?;
        self.enqueue(
            &mut tx,
            Intent::TicketTransition(TicketTransition {
                id: ticket.id,
                to: t.to,
                reason,
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        Ok(())
    }

    pub async fn delete_ticket(&self, id: TicketId) -> DeskResult<()> {
        self.require(Action::DeleteTicket)?;
        let ticket = self.load(id).await?;
        let now = self.now();
        let mut tx = self.write().await?;
        sqlx::query(
            "update tickets set deleted_at = ?, updated_at = ?, version = version + 1 where id = ?",
        )
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            Some(id),
            self.me_id(),
            ActivityAction::TicketDeleted,
            None,
            Some(json!({ "title": ticket.title })),
            None,
            false,
            now,
        )
        .await?;
        self.enqueue(&mut tx, Intent::TicketDelete(TicketDelete { id }))
            .await?;
        tx.commit().await?;
        self.written();
        Ok(())
    }

    // ---- Comments and the trail --------------------------------------------------------------

    pub async fn comments(&self, id: TicketId) -> DeskResult<Vec<Comment>> {
        self.load(id).await?;
        let internal = access(self.role(), Action::ViewInternalNotes) != Access::Denied;
        let rows = sqlx::query(
            "select id, ticket_id, author_id, body, internal, created_at from comments
              where ticket_id = ? and deleted_at is null and (internal = 0 or ?) order by created_at, id",
        )
        .bind(id.to_string())
        .bind(internal)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Comment {
                    id: parse_id(&r.get::<String, _>(0))?,
                    ticket_id: parse_id(&r.get::<String, _>(1))?,
                    author_id: parse_id(&r.get::<String, _>(2))?,
                    body: r.get(3),
                    internal: r.get(4),
                    created_at: from_micros(r.get(5)),
                })
            })
            .collect()
    }

    pub async fn add_comment(
        &self,
        id: TicketId,
        body: &str,
        internal: bool,
    ) -> DeskResult<Comment> {
        let ticket = self.load(id).await?;
        let action = if internal {
            Action::CommentInternal
        } else {
            Action::CommentPublic
        };
        if !access(self.role(), action).allows(ticket.requester_id == self.me_id()) {
            let what = if internal {
                "add internal notes"
            } else {
                "reply"
            };
            return Err(DeskError::new(
                ErrorCode::Forbidden,
                format!("{}s may not {what} here", self.role()),
            ));
        }
        let body = CommentBody::parse(body)?;
        let now = self.now();
        let comment = Comment {
            id: CommentId::new(),
            ticket_id: id,
            author_id: self.me_id(),
            body: body.into_inner(),
            internal,
            created_at: now,
        };
        let first_response =
            !internal && self.role().works_tickets() && ticket.first_responded_at.is_none();
        let mut tx = self.write().await?;
        sqlx::query(
            "insert into comments (id, ticket_id, author_id, body, internal, created_at) values (?, ?, ?, ?, ?, ?)",
        )
        .bind(comment.id.to_string())
        .bind(id.to_string())
        .bind(self.me_id().to_string())
        .bind(&comment.body)
        .bind(internal)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update tickets set updated_at = ?1,
                    first_responded_at = case when ?2 then ?1 else first_responded_at end
              where id = ?3",
        )
        .bind(to_micros(now))
        .bind(first_response)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            Some(id),
            self.me_id(),
            ActivityAction::CommentCreated,
            None,
            None,
            Some(json!({ "comment_id": comment.id, "internal": internal })),
            internal,
            now,
        )
        .await?;
        self.enqueue(
            &mut tx,
            Intent::CommentCreate(CommentCreate {
                id: comment.id,
                ticket_id: id,
                body: comment.body.clone(),
                internal,
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        Ok(comment)
    }

    pub async fn activity(&self, id: TicketId) -> DeskResult<Vec<Activity>> {
        self.load(id).await?;
        let internal = access(self.role(), Action::ViewInternalNotes) != Access::Denied;
        let rows = sqlx::query(
            "select id, ticket_id, actor_id, action, field, before, after, at from activity
              where ticket_id = ? and (internal = 0 or ?) order by at, id",
        )
        .bind(id.to_string())
        .bind(internal)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json = |i: usize| {
                    r.get::<Option<String>, _>(i)
                        .and_then(|t| serde_json::from_str(&t).ok())
                };
                Ok(Activity {
                    id: parse_id(&r.get::<String, _>(0))?,
                    ticket_id: r
                        .get::<Option<String>, _>(1)
                        .map(|t| parse_id(&t))
                        .transpose()?,
                    actor_id: parse_id(&r.get::<String, _>(2))?,
                    action: parse_text(&r.get::<String, _>(3), "action")?,
                    field: r.get(4),
                    before: json(5),
                    after: json(6),
                    at: from_micros(r.get(7)),
                })
            })
            .collect()
    }

    // ---- Customers ---------------------------------------------------------------------------

    pub async fn customers(&self, search: Option<&str>) -> DeskResult<Vec<Customer>> {
        self.require(Action::ViewCustomers)?;
        let pattern = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", s.replace(['%', '_'], "")));
        let rows = sqlx::query_as::<_, CustomerDb>(
            "select * from customers where deleted_at is null
                and (?1 is null or name like ?1 or email like ?1 or company like ?1)
              order by name collate nocase, id",
        )
        .bind(pattern)
        .fetch_all(&self.store.pool)
        .await?;
        rows.into_iter().map(CustomerDb::into_customer).collect()
    }

    async fn load_customer(&self, id: CustomerId) -> DeskResult<Customer> {
        sqlx::query_as::<_, CustomerDb>(
            "select * from customers where id = ? and deleted_at is null",
        )
        .bind(id.to_string())
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or_else(|| DeskError::not_found("customer"))?
        .into_customer()
    }

    pub async fn customer(&self, id: CustomerId) -> DeskResult<CustomerDetail> {
        self.require(Action::ViewCustomers)?;
        let customer = self.load_customer(id).await?;
        let tickets = self
            .list_tickets(&TicketQuery {
                customer: Some(id),
                limit: Some(MAX_PAGE),
                ..Default::default()
            })
            .await?
            .items;
        Ok(CustomerDetail { customer, tickets })
    }

    pub async fn create_customer(&self, input: &CreateCustomer) -> DeskResult<Customer> {
        self.require(Action::EditCustomers)?;
        let fields = CustomerFields::parse(
            &input.name,
            &input.email,
            &input.phone,
            &input.company,
            &input.notes,
        )?;
        let id = CustomerId::new();
        let now = to_micros(self.now());
        let mut tx = self.write().await?;
        sqlx::query(
            "insert into customers (id, name, email, phone, company, notes, created_at, updated_at)
             values (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&fields.name)
        .bind(&fields.email)
        .bind(&fields.phone)
        .bind(&fields.company)
        .bind(&fields.notes)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.enqueue(
            &mut tx,
            Intent::CustomerCreate(CustomerCreate {
                id,
                name: fields.name.clone(),
                email: fields.email.clone(),
                phone: fields.phone.clone(),
                company: fields.company.clone(),
                notes: fields.notes.clone(),
            }),
        )
        .await?;
        tx.commit().await?;
        self.written();
        self.load_customer(id).await
    }

    pub async fn update_customer(
        &self,
        id: CustomerId,
        patch: &PatchCustomer,
    ) -> DeskResult<Customer> {
        self.require(Action::EditCustomers)?;
        let current = self.load_customer(id).await?;
        let pick =
            |p: &Option<Option<String>>, c: &Option<String>| p.clone().unwrap_or_else(|| c.clone());
        let fields = CustomerFields::parse(
            patch.name.as_deref().unwrap_or(&current.name),
            &pick(&patch.email, &current.email),
            &pick(&patch.phone, &current.phone),
            &pick(&patch.company, &current.company),
            &pick(&patch.notes, &current.notes),
        )?;
        let mut tx = self.write().await?;
        sqlx::query(
            "update customers set name = ?, email = ?, phone = ?, company = ?, notes = ?, updated_at = ?,
                    version = version + 1
              where id = ?",
        )
        .bind(&fields.name)
        .bind(&fields.email)
        .bind(&fields.phone)
        .bind(&fields.company)
        .bind(&fields.notes)
        .bind(to_micros(self.now()))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        // The fields the person changed, as they now read (blank is cleared).
        let changed = |before: &Option<String>, after: &Option<String>| {
            (before != after).then(|| after.clone())
        };
        let update = CustomerUpdate {
            id,
            name: (current.name != fields.name).then(|| fields.name.clone()),
            email: changed(&current.email, &fields.email),
            phone: changed(&current.phone, &fields.phone),
            company: changed(&current.company, &fields.company),
            notes: changed(&current.notes, &fields.notes),
        };
        if update
            != (CustomerUpdate {
                id,
                ..Default::default()
            })
        {
            self.enqueue(&mut tx, Intent::CustomerUpdate(update))
                .await?;
        }
        tx.commit().await?;
        self.written();
        self.load_customer(id).await
    }

    /// Deletes a customer (a tombstone); their tickets stay, without a customer.
    pub async fn delete_customer(&self, id: CustomerId) -> DeskResult<()> {
        self.require(Action::DeleteCustomer)?;
        self.load_customer(id).await?;
        let now = to_micros(self.now());
        let mut tx = self.write().await?;
        sqlx::query("update customers set deleted_at = ?, updated_at = ?, version = version + 1 where id = ?")
            .bind(now)
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("update tickets set customer_id = null, updated_at = ?, version = version + 1 where customer_id = ?")
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        self.enqueue(&mut tx, Intent::CustomerDelete(CustomerDelete { id }))
            .await?;
        tx.commit().await?;
        self.written();
        Ok(())
    }

    /// Removes everything marked as demo data; the user's own records stay.
    pub async fn remove_demo_data(&self) -> DeskResult<()> {
        self.require(Action::ManageTenantSettings)?;
        let mut tx = self.write().await?;
        // Keep anything of the user's that refers to demo records, minus the reference.
        sqlx::query("update tickets set customer_id = null where demo = 0 and customer_id in (select id from customers where demo = 1)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("update tickets set assignee_id = null where demo = 0 and assignee_id in (select id from users where demo = 1)")
            .execute(&mut *tx)
            .await?;
        for statement in [
            // A demo ticket someone filed an expense on is theirs now.
            "update tickets set demo = 0 where demo = 1 and id in (select ticket_id from expenses where ticket_id is not null)",
            "delete from sla_alerts where ticket_id in (select id from tickets where demo = 1)",
            "delete from sla_policies where demo = 1",
            "delete from calendars where demo = 1 and id not in (select calendar_id from sla_policies where calendar_id is not null)",
            "delete from activity where demo = 1 or ticket_id in (select id from tickets where demo = 1)",
            "delete from comments where demo = 1 or ticket_id in (select id from tickets where demo = 1)",
            "delete from tickets where demo = 1",
            "delete from customers where demo = 1",
            "delete from users where demo = 1 and id not in (select requester_id from tickets)
                                              and id not in (select author_id from comments)",
        ] {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.touched();
        Ok(())
    }
}

/// Words to an FTS5 query: every word required, each matching the start of a word, so
/// search-as-you-type finds "authenticator" at "authentic".
fn fts_query(search: &str) -> String {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn check_assignee(tx: &mut Transaction<'_, Sqlite>, user: UserId) -> DeskResult<()> {
    let role: Option<String> =
        sqlx::query_scalar("select role from users where id = ? and deleted_at is null")
            .bind(user.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    match role.map(|r| parse_text::<Role>(&r, "role")).transpose()? {
        Some(role) if role.works_tickets() => Ok(()),
        Some(role) => Err(DeskError::invalid(
            "assignee_id",
            format!("{role}s cannot be assigned tickets"),
        )),
        None => Err(DeskError::invalid(
            "assignee_id",
            "no such person in this workspace",
        )),
    }
}

async fn check_customer(tx: &mut Transaction<'_, Sqlite>, customer: CustomerId) -> DeskResult<()> {
    let found: Option<i64> =
        sqlx::query_scalar("select 1 from customers where id = ? and deleted_at is null")
            .bind(customer.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| DeskError::invalid("customer_id", "no such customer"))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    tx: &mut Transaction<'_, Sqlite>,
    ticket: Option<TicketId>,
    actor: UserId,
    action: ActivityAction,
    field: Option<&str>,
    before: Option<Value>,
    after: Option<Value>,
    internal: bool,
    at: DateTime<Utc>,
) -> DeskResult<()> {
    sqlx::query(
        "insert into activity (id, ticket_id, actor_id, action, field, before, after, internal, at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(ActivityId::new().to_string())
    .bind(ticket.map(|t| t.to_string()))
    .bind(actor.to_string())
    .bind(action.as_str())
    .bind(field)
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .bind(internal)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const ROW_SELECT: &str =
    "select t.id, t.number, t.title, t.status, t.priority, t.category, t.created_at,
        t.updated_at, t.priority_rank, r.name as requester_name, a.name as assignee_name,
        c.name as customer_name
   from tickets t
   join users r on r.id = t.requester_id
   left join users a on a.id = t.assignee_id
   left join customers c on c.id = t.customer_id and c.deleted_at is null
  where ";

fn ticket_row(row: &SqliteRow) -> DeskResult<TicketRow> {
    Ok(TicketRow {
        id: parse_id(&row.get::<String, _>("id"))?,
        number: row.get("number"),
        title: row.get("title"),
        status: parse_text(&row.get::<String, _>("status"), "status")?,
        priority: parse_text(&row.get::<String, _>("priority"), "priority")?,
        category: row.get("category"),
        requester_name: row.get("requester_name"),
        assignee_name: row.get("assignee_name"),
        customer_name: row.get("customer_name"),
        created_at: from_micros(row.get("created_at")),
        updated_at: from_micros(row.get("updated_at")),
        sla: None,
    })
}

/// Where the next page starts: the last row's sort key and id.
struct Cursor {
    key: i64,
    id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        format!("{}~{}", self.key, self.id)
    }

    fn decode(text: &str) -> DeskResult<Cursor> {
        let bad = || DeskError::invalid("cursor", "cursor: not one this app gave out");
        let (key, id) = text.split_once('~').ok_or_else(bad)?;
        Ok(Cursor {
            key: key.parse().map_err(|_| bad())?,
            id: id.parse::<uuid::Uuid>().map_err(|_| bad())?.to_string(),
        })
    }
}

#[derive(FromRow)]
struct TicketDb {
    id: String,
    number: i64,
    title: String,
    description: String,
    status: String,
    priority: String,
    category: String,
    requester_id: String,
    assignee_id: Option<String>,
    customer_id: Option<String>,
    hold_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    first_responded_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    version: i64,
}

impl TicketDb {
    fn into_ticket(self) -> DeskResult<Ticket> {
        Ok(Ticket {
            id: parse_id(&self.id)?,
            number: self.number,
            title: self.title,
            description: self.description,
            status: parse_text(&self.status, "status")?,
            priority: parse_text(&self.priority, "priority")?,
            category: self.category,
            requester_id: parse_id(&self.requester_id)?,
            assignee_id: self.assignee_id.as_deref().map(parse_id).transpose()?,
            customer_id: self.customer_id.as_deref().map(parse_id).transpose()?,
            hold_reason: self.hold_reason,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            first_responded_at: opt_from_micros(self.first_responded_at),
            resolved_at: opt_from_micros(self.resolved_at),
            closed_at: opt_from_micros(self.closed_at),
            version: self.version,
        })
    }
}

#[derive(FromRow)]
struct CustomerDb {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    notes: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl CustomerDb {
    fn into_customer(self) -> DeskResult<Customer> {
        Ok(Customer {
            id: parse_id(&self.id)?,
            name: self.name,
            email: self.email,
            phone: self.phone,
            company: self.company,
            notes: self.notes,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

/// A customer's fields, parsed; blank optional fields become absent.
struct CustomerFields {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    notes: Option<String>,
}

impl CustomerFields {
    fn parse(
        name: &str,
        email: &Option<String>,
        phone: &Option<String>,
        company: &Option<String>,
        notes: &Option<String>,
    ) -> DeskResult<Self> {
        fn optional<T: ToString>(
            v: &Option<String>,
            parse: fn(&str) -> Result<T, FieldError>,
        ) -> DeskResult<Option<String>> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => Ok(Some(parse(v)?.to_string())),
                None => Ok(None),
            }
        }
        Ok(Self {
            name: CustomerName::parse(name)?.into_inner(),
            email: optional(email, Email::parse)?,
            phone: optional(phone, Phone::parse)?,
            company: optional(company, Company::parse)?,
            notes: optional(notes, Notes::parse)?,
        })
    }
}
