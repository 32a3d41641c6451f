//! The Tallydesk server: a REST API over Postgres for many tenants, isolated by row-level security.
//!
//! [`app`] builds the router (tests drive it directly); [`serve`] runs it with a database, the
//! SLA [`monitor`] and the LISTEN connection that feeds SLA [`events`] to connected clients.

pub mod activity;
pub mod admin;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod customers;
pub mod db;
pub mod embedded_pg;
pub mod error;
pub mod events;
pub mod expenses;
pub mod http;
pub mod issuer;
pub mod monitor;
pub mod seed;
pub mod sla;
pub mod sync;
pub mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};
use sqlx::PgPool;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::IdentityCache;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::events::SlaEvents;
use crate::http::bounds::{self, Deadlines, read_bodies_first};
use crate::http::{
    accounts, blobs as blob_routes, customers as customer_routes, docs, events as event_stream,
    expenses as expense_routes, me, members, sla as sla_settings, tickets as ticket_routes,
};
use crate::issuer::{BuiltinIssuer, KeyRing};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub use tallydesk_shared::Clock;

#[derive(Clone)]
pub struct AppState {
    /// Connections acting as the request role, subject to row-level security.
    pub db: PgPool,
    pub verifier: Arc<Verifier>,
    pub clock: Clock,
    pub identities: Arc<IdentityCache>,
    /// SLA events for `/events` streams; fed by [`SlaEvents::listen`].
    pub events: SlaEvents,
    /// The server's own OIDC issuer, when it is on.
    pub issuer: Option<Arc<BuiltinIssuer>>,
    /// How the desktop app asks the external issuers for tokens.
    pub external_client: Arc<ExternalClient>,
    /// Receipt images; in memory until [`AppState::with_blobs`].
    pub blobs: blobs::BlobStore,
    /// How long clients may take to send a body, and requests to be answered.
    pub deadlines: Deadlines,
}

/// The desktop app's registration at the external issuers (`/api/v1/auth/config`).
#[derive(Debug, Clone)]
pub struct ExternalClient {
    pub client_id: String,
    pub scopes: Vec<String>,
}

impl Default for ExternalClient {
    fn default() -> Self {
        Self {
            client_id: issuer::CLIENT_ID.to_owned(),
            scopes: issuer::SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl AppState {
    pub fn new(db: PgPool, verifier: Verifier, clock: Clock) -> Self {
        Self {
            db,
            verifier: Arc::new(verifier),
            clock,
            identities: Arc::default(),
            events: SlaEvents::new(),
            issuer: None,
            external_client: Arc::default(),
            blobs: blobs::BlobStore::in_memory(),
            deadlines: Deadlines::default(),
        }
    }

    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    pub fn with_blobs(mut self, blobs: blobs::BlobStore) -> Self {
        self.blobs = blobs;
        self
    }

    /// Runs the built-in issuer beside the external ones; the verifier trusts its tokens,
    /// reading its keys from the database.
    pub fn with_builtin_issuer(mut self, issuer: BuiltinIssuer) -> Self {
        let verifier = (*self.verifier)
            .clone()
            .with_local_issuer(issuer.url().to_owned(), issuer.keys().clone());
        self.verifier = Arc::new(verifier);
        self.issuer = Some(Arc::new(issuer));
        self
    }

    pub fn with_external_client(mut self, client: ExternalClient) -> Self {
        self.external_client = Arc::new(client);
        self
    }
}

/// The whole HTTP surface: `/api/v1`, `/openapi.json` and `/docs`.
///
/// Bodies are read whole, within their size limit and the body deadline, before any handler
/// (and so any database transaction) starts; see [`http::bounds`].
pub fn app(state: AppState) -> Router {
    let deadlines = state.deadlines;
    let uploads = Router::new().route(
        "/blobs/{sha256}",
        put(blob_routes::put).get(blob_routes::get),
    );
    let api = Router::new()
        .route("/health", get(me::health))
        .route("/auth/config", get(accounts::auth_config))
        .route("/accounts", post(accounts::create))
        .route("/me", get(me::me))
        .route("/me/password", post(accounts::change_password))
        .route("/tenants", post(me::create_tenant))
        .route("/events", get(event_stream::stream))
        .route("/sync/pull", get(sync::pull))
        .route("/sync/push", post(sync::push))
        .route(
            "/tickets",
            get(ticket_routes::list).post(ticket_routes::create),
        )
        .route(
            "/tickets/{id}",
            get(ticket_routes::get)
                .patch(ticket_routes::update)
                .delete(ticket_routes::delete),
        )
        .route("/tickets/{id}/transitions", post(ticket_routes::transition))
        .route("/tickets/{id}/views", post(ticket_routes::view))
        .route(
            "/tickets/{id}/comments",
            get(ticket_routes::comments).post(ticket_routes::comment),
        )
        .route("/tickets/{id}/activity", get(ticket_routes::activity))
        .route("/tickets/{id}/expenses", get(expense_routes::list))
        .route(
            "/tenant/expense-policy",
            get(expense_routes::policy).put(expense_routes::set_policy),
        )
        .route(
            "/customers",
            get(customer_routes::list).post(customer_routes::create),
        )
        .route(
            "/customers/{id}",
            get(customer_routes::get)
                .patch(customer_routes::update)
                .delete(customer_routes::delete),
        )
        .route("/members", get(members::list))
        .route(
            "/members/{user_id}",
            axum::routing::patch(members::update).delete(members::remove),
        )
        .route(
            "/invitations",
            get(members::invitations).post(members::invite),
        )
        .route(
            "/invitations/{id}",
            axum::routing::delete(members::revoke_invitation),
        )
        .route(
            "/calendars",
            get(sla_settings::list_calendars).post(sla_settings::create_calendar),
        )
        .route(
            "/calendars/{id}",
            get(sla_settings::get_calendar)
                .patch(sla_settings::update_calendar)
                .delete(sla_settings::delete_calendar),
        )
        .route(
            "/sla-policies",
            get(sla_settings::list_policies).post(sla_settings::create_policy),
        )
        .route(
            "/sla-policies/{id}",
            get(sla_settings::get_policy)
                .patch(sla_settings::update_policy)
                .delete(sla_settings::delete_policy),
        );
    let api = read_bodies_first(api, MAX_BODY_BYTES, deadlines.body).merge(read_bodies_first(
        uploads,
        blobs::MAX_BLOB_BYTES,
        deadlines.body,
    ));
    let issuer = read_bodies_first(issuer::routes(), MAX_BODY_BYTES, deadlines.body);
    Router::new()
        .nest("/api/v1", api)
        .merge(issuer)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .fallback(http::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            deadlines.request,
            bounds::time_out,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The OpenAPI document: the REST API and the sync protocol.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::ApiDoc::openapi().merge_from(sync::SyncDoc::openapi())
}

/// Runs the server until Ctrl-C or SIGTERM, then stops the embedded database if it started one.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let database = config::Database::open(config).await?;
    let verifier = Verifier::new(
        config.external_issuers(),
        config.oidc_audience.clone(),
        config::http_client()?,
    );
    let clock = Clock::system();
    let mut state = AppState::new(database.app.clone(), verifier, clock.clone())
        .with_external_client(ExternalClient {
            client_id: config.oidc_client_id.clone(),
            scopes: config.scopes(),
        })
        .with_blobs(blobs::BlobStore::open(
            config.blob_store.as_deref(),
            &config.data_dir()?,
        )?)
        .with_deadlines(config.deadlines());
    tracing::info!(
        blobs = state.blobs.place(),
        "receipt images are kept in the blob store"
    );
    let mut key_checks = None;
    let mut issuer_sweep = None;
    if config.builtin_issuer_on() {
        let url = config.public_url()?;
        let keys = Arc::new(KeyRing::open(database.app.clone(), clock.now()).await?);
        let max_age = config.signing_key_max_age();
        let next_check = keys.check_age(max_age, clock.now()).await;
        let (checking, checking_clock) = (keys.clone(), clock.clone());
        key_checks = Some(tokio::spawn(async move {
            checking
                .check_age_daily(next_check, max_age, checking_clock)
                .await;
        }));
        let builtin = BuiltinIssuer::new(url.clone(), config.oidc_audience.clone(), keys)
            .with_limits(config.issuer_limits());
        issuer_sweep = Some(tokio::spawn(issuer::sweep::run_hourly(
            database.app.clone(),
            builtin.limits(),
            clock.clone(),
        )));
        state = state.with_builtin_issuer(builtin);
        tracing::info!(issuer = %url, "the built-in OIDC issuer is on (create an account with `tallydesk-server create-admin --email ...`)");
    } else if config.external_issuers().is_empty() {
        tracing::warn!(
            "no TALLYDESK_OIDC_ISSUER configured and the built-in issuer is off: nobody can sign in"
        );
    }
    let listening = state
        .events
        .listen((*database.owner.connect_options()).clone());
    let compactor = sync::compaction::Compactor::new(
        database.owner.clone(),
        clock.clone(),
        config.tombstone_retention(),
    );
    let compaction = tokio::spawn(compactor.run_daily());
    let sla_monitor = monitor::Monitor::new(database.owner.clone(), clock);
    let monitor = tokio::spawn(async move {
        if let Err(e) = sla_monitor.run().await {
            tracing::error!(error = ?e, "the SLA monitor stopped: no SLA events are recorded");
        }
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(
        "Tallydesk server listening on http://{} (API docs at http://{}/docs)",
        listener.local_addr()?,
        listener.local_addr()?
    );
    let events = state.events.clone();
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        events.close();
    })
    .await;
    monitor.abort();
    compaction.abort();
    if let Some(checks) = key_checks {
        checks.abort();
    }
    if let Some(sweep) = issuer_sweep {
        sweep.abort();
    }
    drop(listening);
    database.close().await?;
    served.map_err(Into::into)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
