//! Customers: the people and organisations tickets are about. Each operation runs in the
//! caller's [`Scope`] (the tenant's transaction) for the REST routes and sync alike.

use chrono::{DateTime, Utc};
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{CreateCustomer, Customer, ErrorCode, Page, PatchCustomer};
use tallydesk_shared::ticket::{Company, CustomerName, Email, FieldError, Notes, Phone};
use tallydesk_shared::{Action, CustomerId, TicketId};

use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::sla::{self, Pending};

/// Optional text: blank means absent.
fn optional<T>(
    value: Option<&str>,
    parse: fn(&str) -> Result<T, FieldError>,
) -> ApiResult<Option<String>>
where
    T: std::fmt::Display,
{
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(parse(v)?.to_string())),
        None => Ok(None),
    }
}

async fn load(scope: &mut Scope, id: CustomerId) -> ApiResult<Customer> {
    let row = sqlx::query_as!(
        CustomerRow,
        "select id, name, email, phone, company, notes, created_at, updated_at
           from customers where id = $1",
        id.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(row.into())
}

struct CustomerRow {
    id: uuid::Uuid,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    notes: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: row.id.into(),
            name: row.name,
            email: row.email,
            phone: row.phone,
            company: row.company,
            notes: row.notes,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of customers whose name, email or company starts with `q`, by id after `cursor`.
pub(crate) async fn list(
    scope: &mut Scope,
    q: Option<&str>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> ApiResult<Page<Customer>> {
    scope.require(Action::ViewCustomers)?;
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit: must be between 1 and 200",
        )
        .on_field("limit"));
    }
    let after = cursor
        .map(|c| {
            c.parse::<uuid::Uuid>().map_err(|_| {
                ApiError::bad_request(
                    ErrorCode::InvalidCursor,
                    "cursor: not a cursor this server gave out",
                )
                .on_field("cursor")
            })
        })
        .transpose()?;
    let pattern = q.map(|q| format!("{}%", q.trim().replace(['%', '_', '\\'], "")));
    let rows = sqlx::query_as!(
        CustomerRow,
        "select id, name, email, phone, company, notes, created_at, updated_at from customers
          where tenant_id = $1
            and ($2::text is null or name ilike $2 or email ilike $2 or company ilike $2)
            and ($3::uuid is null or id > $3)
          order by id limit $4",
        scope.tenant.as_uuid(),
        pattern,
        after,
        i64::from(limit) + 1,
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    let mut items: Vec<Customer> = rows.into_iter().map(Customer::from).collect();
    let next_cursor = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        items.last().map(|c| c.id.to_string()).unwrap_or_default()
    });
    Ok(Page { items, next_cursor })
}

/// The customer, for whoever may see customers.
pub(crate) async fn get(scope: &mut Scope, id: CustomerId) -> ApiResult<Customer> {
    scope.require(Action::ViewCustomers)?;
    load(scope, id).await
}

/// Creates a customer with the caller's id, in the scope's transaction.
pub(crate) async fn create(
    scope: &mut Scope,
    id: CustomerId,
    body: &CreateCustomer,
    now: DateTime<Utc>,
) -> ApiResult<Customer> {
    scope.require(Action::EditCustomers)?;
    let name = CustomerName::parse(&body.name)?;
    let email = optional(body.email.as_deref(), Email::parse)?;
    let phone = optional(body.phone.as_deref(), Phone::parse)?;
    let company = optional(body.company.as_deref(), Company::parse)?;
    let notes = optional(body.notes.as_deref(), Notes::parse)?;
    sqlx::query!(
        "insert into customers (id, tenant_id, name, email, phone, company, notes, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        id.as_uuid(),
        scope.tenant.as_uuid(),
        name.as_str(),
        email,
        phone,
        company,
        notes,
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::CustomerCreated)
            .after(json!({ "customer_id": id, "name": name.as_str() })),
    )
    .await?;
    load(scope, id).await
}

/// Sets the fields `body` names, in the scope's transaction.
pub(crate) async fn update(
    scope: &mut Scope,
    id: CustomerId,
    body: &PatchCustomer,
    now: DateTime<Utc>,
) -> ApiResult<Customer> {
    scope.require(Action::EditCustomers)?;
    let current = load(scope, id).await?;
    let name = match &body.name {
        Some(n) => CustomerName::parse(n)?.into_inner(),
        None => current.name.clone(),
    };
    let keep_or = |patch: &Option<Option<String>>, current: &Option<String>, parse| match patch {
        None => Ok(current.clone()),
        Some(value) => optional(value.as_deref(), parse),
    };
    let email = keep_or(&body.email, &current.email, |v| {
        Email::parse(v).map(|e| e.to_string())
    })?;
    let phone = keep_or(&body.phone, &current.phone, |v| {
        Phone::parse(v).map(|p| p.to_string())
    })?;
    let company = keep_or(&body.company, &current.company, |v| {
        Company::parse(v).map(|c| c.to_string())
    })?;
    let notes = keep_or(&body.notes, &current.notes, |v| {
        Notes::parse(v).map(|n| n.to_string())
    })?;
    sqlx::query!(
        "update customers set name = $2, email = $3, phone = $4, company = $5, notes = $6, updated_at = $7
          where id = $1",
        id.as_uuid(),
        name,
        email,
        phone,
        company,
        notes,
        now,
    )
    .execute(&mut *scope.tx)
    .await?;
    let customer = load(scope, id).await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::CustomerUpdated)
            .before(serde_json::to_value(&current).map_err(anyhow::Error::from)?)
            .after(serde_json::to_value(&customer).map_err(anyhow::Error::from)?),
    )
    .await?;
    Ok(customer)
}

/// Deletes a customer, in the scope's transaction; its tickets lose their customer.
pub(crate) async fn delete(scope: &mut Scope, id: CustomerId, now: DateTime<Utc>) -> ApiResult<()> {
    scope.require(Action::DeleteCustomer)?;
    let customer = load(scope, id).await?;
    // Its tickets lose their customer, which SLA policies may match on.
    let tickets: Vec<TicketId> = sqlx::query_scalar!(
        "select id from tickets where tenant_id = $1 and customer_id = $2",
        scope.tenant.as_uuid(),
        id.as_uuid()
    )
    .fetch_all(&mut *scope.tx)
    .await?
    .into_iter()
    .map(TicketId::from)
    .collect();
    sqlx::query!("delete from customers where id = $1", id.as_uuid())
        .execute(&mut *scope.tx)
        .await?;
    if !tickets.is_empty() {
        sla::refresh(
            &mut scope.tx,
            scope.tenant,
            Some(&tickets),
            now,
            Pending::Schedule,
        )
        .await?;
    }
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::CustomerDeleted)
            .before(json!({ "customer_id": id, "name": customer.name })),
    )
    .await?;
    Ok(())
}
