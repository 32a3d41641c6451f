//! The Tallydesk server: a REST API over Postgres for many tenants, isolated by row-level security.
//!
//! [`app`] builds the router (tests drive it directly); [`serve`] runs it with a database, the
//! SLA [`monitor`] and the LISTEN connection that feeds SLA [`events`] to connected clients.

pub mod activity;
pub mod auth;
pub mod config;
pub mod db;
pub mod embedded_pg;
pub mod error;
pub mod events;
pub mod http;
pub mod monitor;
pub mod seed;
pub mod sla;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::PgPool;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::IdentityCache;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::events::SlaEvents;
use crate::http::{
    customers, docs, events as event_stream, me, members, sla as sla_settings, tickets,
};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Where the time comes from. The system clock in production; tests may fix it.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    pub fn fixed(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The current time, to the microsecond Postgres keeps.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)().trunc_subsecs(6)
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Connections acting as the request role, subject to row-level security.
    pub db: PgPool,
    pub verifier: Arc<Verifier>,
    pub clock: Clock,
    pub identities: Arc<IdentityCache>,
    /// SLA events for `/events` streams; fed by [`SlaEvents::listen`].
    pub events: SlaEvents,
}

impl AppState {
    pub fn new(db: PgPool, verifier: Verifier, clock: Clock) -> Self {
        Self {
            db,
            verifier: Arc::new(verifier),
            clock,
            identities: Arc::default(),
            events: SlaEvents::new(),
        }
    }
}

/// The whole HTTP surface: `/api/v1`, `/openapi.json` and `/docs`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(me::health))
        .route("/me", get(me::me))
        .route("/tenants", post(me::create_tenant))
        .route("/events", get(event_stream::stream))
        .route("/tickets", get(tickets::list).post(tickets::create))
        .route(
            "/tickets/{id}",
            get(tickets::get)
                .patch(tickets::update)
                .delete(tickets::delete),
        )
        .route("/tickets/{id}/transitions", post(tickets::transition))
        .route("/tickets/{id}/views", post(tickets::view))
        .route(
            "/tickets/{id}/comments",
            get(tickets::comments).post(tickets::comment),
        )
        .route("/tickets/{id}/activity", get(tickets::activity))
        .route("/customers", get(customers::list).post(customers::create))
        .route(
            "/customers/{id}",
            get(customers::get)
                .patch(customers::update)
                .delete(customers::delete),
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
    Router::new()
        .nest("/api/v1", api)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", docs::ApiDoc::openapi()))
        .fallback(http::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs the server until Ctrl-C or SIGTERM, then stops the embedded database if it started one.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let database = config::Database::open(config).await?;
    if config.oidc_issuer.is_empty() {
        tracing::warn!("no TALLYDESK_OIDC_ISSUER configured: nobody can sign in until one is set");
    }
    let verifier = Verifier::new(
        config.oidc_issuer.clone(),
        config.oidc_audience.clone(),
        config::http_client()?,
    );
    let clock = Clock::system();
    let state = AppState::new(database.app.clone(), verifier, clock.clone());
    let listening = state
        .events
        .listen((*database.owner.connect_options()).clone());
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
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            events.close();
        })
        .await;
    monitor.abort();
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
