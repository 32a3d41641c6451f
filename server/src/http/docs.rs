//! The OpenAPI document (`/openapi.json`) and the interactive docs (`/docs`), served offline.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{events, http};
use tallydesk_shared::{api, sla};

/// `X-Tenant-Id`: which tenant the request acts in; optional with exactly one membership.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct TenantHeader {
    /// The tenant to act in. May be omitted when the caller belongs to exactly one tenant.
    #[param(rename = "X-Tenant-Id", value_type = Option<String>, format = Uuid)]
    x_tenant_id: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tallydesk API",
        description = "Tickets, customers, members and SLAs of Tallydesk tenants. Every request but \
            `/health` and `/auth/config` carries `Authorization: Bearer <JWT access token>` from \
            an OIDC issuer that `/auth/config` lists (the server's built-in issuer or an external \
            one). Errors are `{code, message}`. Lists are `{items, next_cursor}`. Any request \
            may be refused with 408 `request_timeout` when its body does not arrive within the \
            server's deadline, and with 503 `busy` and `Retry-After` when the server cannot take \
            it now."
    ),
    paths(
        http::me::health, http::me::me, http::me::create_tenant,
        http::tickets::list, http::tickets::create, http::tickets::get, http::tickets::update,
        http::tickets::delete, http::tickets::transition, http::tickets::view,
        http::tickets::comments, http::tickets::comment, http::tickets::activity,
        http::expenses::list, http::expenses::policy, http::expenses::set_policy,
        http::blobs::put, http::blobs::get,
        http::customers::list, http::customers::create, http::customers::get,
        http::customers::update, http::customers::delete,
        http::members::list, http::members::update, http::members::remove,
        http::members::invitations, http::members::invite, http::members::revoke_invitation,
        http::accounts::auth_config, http::accounts::create, http::accounts::change_password,
        http::sla::list_calendars, http::sla::create_calendar, http::sla::get_calendar,
        http::sla::update_calendar, http::sla::delete_calendar,
        http::sla::list_policies, http::sla::create_policy, http::sla::get_policy,
        http::sla::update_policy, http::sla::delete_policy,
        http::events::stream,
    ),
    components(schemas(
        api::ErrorBody, api::Page<api::Ticket>, api::Page<api::Comment>, api::Page<api::Expense>,
        api::Page<api::TicketWithSla>, api::Page<sla::CalendarRecord>, api::Page<sla::Policy>,
        events::SlaEvent, events::Resync,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "tickets", description = "The ticket queue, workflow, comments and audit trail"),
        (name = "expenses", description = "Expenses filed on expense-claim tickets"),
        (name = "blobs", description = "Receipt images, content-addressed by SHA-256"),
        (name = "customers"), (name = "members", description = "Members, roles and invitations"),
        (name = "sla", description = "Business calendars and SLA policies"),
        (name = "events", description = "SLA alerts pushed as Server-Sent Events"),
        (name = "identity"), (name = "server")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
