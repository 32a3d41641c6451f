//! Customers: reading them, and the one write path of each change to them.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Sqlite, Transaction};
use tallydesk_shared::api::{CreateCustomer, Customer, PatchCustomer};
use tallydesk_shared::sync::{CustomerCreate, CustomerDelete, CustomerUpdate, Intent};
use tallydesk_shared::ticket::{Company, CustomerName, Email, FieldError, Notes, Phone};
use tallydesk_shared::{Action, CustomerId};

use super::queue::MAX_PAGE;
use super::{Actor, Desk};
use crate::error::{DeskError, DeskResult};
use crate::model::{CustomerDetail, TicketQuery};
use crate::time::{from_micros, to_micros};

impl Desk {
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
        Ok(rows.into_iter().map(CustomerDb::into_customer).collect())
    }

    async fn load_customer(&self, id: CustomerId) -> DeskResult<Customer> {
        fetch(&self.store.pool, id).await
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
        let intent = CustomerCreate {
            id: CustomerId::new(),
            name: input.name.clone(),
            email: input.email.clone(),
            phone: input.phone.clone(),
            company: input.company.clone(),
            notes: input.notes.clone(),
        };
        let mut tx = self.write().await?;
        let intent = create(&mut tx, self.actor(), &intent, self.now()).await?;
        let id = intent.id;
        self.enqueue(&mut tx, Intent::CustomerCreate(intent))
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
        self.load_customer(id).await?;
        let edit = CustomerUpdate {
            id,
            name: patch.name.clone(),
            email: patch.email.clone(),
            phone: patch.phone.clone(),
            company: patch.company.clone(),
            notes: patch.notes.clone(),
        };
        let mut tx = self.write().await?;
        let changed = update(&mut tx, self.actor(), &edit, self.now()).await?;
        if changed
            != (CustomerUpdate {
                id,
                ..Default::default()
            })
        {
            self.enqueue(&mut tx, Intent::CustomerUpdate(changed))
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
        let mut tx = self.write().await?;
        delete(&mut tx, self.actor(), id, self.now()).await?;
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

/// A live customer.
async fn fetch<'e>(
    db: impl sqlx::Executor<'e, Database = Sqlite>,
    id: CustomerId,
) -> DeskResult<Customer> {
    Ok(sqlx::query_as::<_, CustomerDb>(
        "select * from customers where id = ? and deleted_at is null",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| DeskError::not_found("customer"))?
    .into_customer())
}

/// Creates the customer `c` describes, with the checks the server makes; a customer that is
/// here already is left as it is (a create is applied once), one removed meanwhile comes
/// back. Returns the create as checked, for the outbox.
pub(crate) async fn create(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    c: &CustomerCreate,
    at: DateTime<Utc>,
) -> DeskResult<CustomerCreate> {
    actor.require(Action::EditCustomers)?;
    let fields = CustomerFields::parse(&c.name, &c.email, &c.phone, &c.company, &c.notes)?;
    sqlx::query(
        "insert into customers (id, name, email, phone, company, notes, created_at, updated_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         on conflict (id) do update set name = excluded.name, email = excluded.email,
                phone = excluded.phone, company = excluded.company,
                notes = excluded.notes, deleted_at = null
          where customers.deleted_at is not null",
    )
    .bind(c.id)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.phone)
    .bind(&fields.company)
    .bind(&fields.notes)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(CustomerCreate {
        id: c.id,
        name: fields.name,
        email: fields.email,
        phone: fields.phone,
        company: fields.company,
        notes: fields.notes,
    })
}

/// Sets the fields `u` gives on a live customer, with the checks the server makes (blank is
/// cleared). Returns the fields that changed, as they now read, for the outbox.
pub(crate) async fn update(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    u: &CustomerUpdate,
    at: DateTime<Utc>,
) -> DeskResult<CustomerUpdate> {
    actor.require(Action::EditCustomers)?;
    let current = fetch(&mut **tx, u.id).await?;
    let pick =
        |p: &Option<Option<String>>, c: &Option<String>| p.clone().unwrap_or_else(|| c.clone());
    let fields = CustomerFields::parse(
        u.name.as_deref().unwrap_or(&current.name),
        &pick(&u.email, &current.email),
        &pick(&u.phone, &current.phone),
        &pick(&u.company, &current.company),
        &pick(&u.notes, &current.notes),
    )?;
    sqlx::query(
        "update customers set name = ?, email = ?, phone = ?, company = ?, notes = ?,
                updated_at = max(updated_at, ?), version = version + 1
          where id = ?",
    )
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.phone)
    .bind(&fields.company)
    .bind(&fields.notes)
    .bind(to_micros(at))
    .bind(u.id)
    .execute(&mut **tx)
    .await?;
    let changed =
        |before: &Option<String>, after: &Option<String>| (before != after).then(|| after.clone());
    Ok(CustomerUpdate {
        id: u.id,
        name: (current.name != fields.name).then(|| fields.name.clone()),
        email: changed(&current.email, &fields.email),
        phone: changed(&current.phone, &fields.phone),
        company: changed(&current.company, &fields.company),
        notes: changed(&current.notes, &fields.notes),
    })
}

/// Deletes a live customer (a tombstone); their tickets stay, without a customer.
pub(crate) async fn delete(
    tx: &mut Transaction<'_, Sqlite>,
    actor: Actor,
    id: CustomerId,
    at: DateTime<Utc>,
) -> DeskResult<()> {
    actor.require(Action::DeleteCustomer)?;
    fetch(&mut **tx, id).await?;
    for statement in [
        "update customers set deleted_at = ?1, updated_at = max(updated_at, ?1),
                version = version + 1
          where id = ?2",
        "update tickets set customer_id = null, updated_at = max(updated_at, ?1),
                version = version + 1
          where customer_id = ?2",
    ] {
        sqlx::query(statement)
            .bind(to_micros(at))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A row of `customers`.
#[derive(FromRow)]
struct CustomerDb {
    id: CustomerId,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    notes: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl CustomerDb {
    fn into_customer(self) -> Customer {
        Customer {
            id: self.id,
            name: self.name,
            email: self.email,
            phone: self.phone,
            company: self.company,
            notes: self.notes,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        }
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
