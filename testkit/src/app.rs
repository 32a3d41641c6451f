//! The server in-process on a test database: [`TestApp`] drives its router directly, or serves
//! it on a loopback port; [`server_state`] and [`serve`] make and serve an instance as the tests
//! of other crates and the benchmarks need it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tallydesk_server::auth::jwt::Verifier;
use tallydesk_server::events::Listening;
use tallydesk_server::issuer::throttle::Limits;
use tallydesk_server::issuer::{BuiltinIssuer, KeyRing};
use tallydesk_server::{AppState, Clock};
use tower::ServiceExt as _;

use crate::AUDIENCE;
use crate::clock::TestClock;
use crate::issuer::Issuer;

/// The state of a server instance over `owner`'s database: its own request pool of
/// `connections`, a verifier trusting `trusted` for `audience`, and `clock`.
pub async fn server_state(
    owner: &PgPool,
    connections: u32,
    trusted: Vec<String>,
    audience: &str,
    clock: Clock,
) -> AppState {
    let options = (*owner.connect_options()).clone();
    let app_pool = tallydesk_server::db::app_pool(options, connections, Default::default())
        .await
        .expect("request pool");
    let verifier = Verifier::new(trusted, audience.to_owned(), reqwest::Client::new());
    AppState::new(app_pool, verifier, clock)
}

/// `state` with the server's built-in issuer on, `url` its identifier (the server's public
/// URL), its signing keys loaded from the database.
pub async fn with_builtin_issuer(state: AppState, url: &str, limits: Limits) -> AppState {
    let keys = KeyRing::open(state.db.clone(), state.clock.now())
        .await
        .expect("the signing keys load");
    let audience = state.verifier.audience().to_owned();
    state.with_builtin_issuer(
        BuiltinIssuer::new(url.to_owned(), audience, Arc::new(keys)).with_limits(limits),
    )
}

/// A loopback port bound before serving, so that the server's URL is known first (it is the
/// built-in issuer's identifier).
pub struct Port {
    tcp: tokio::net::TcpListener,
    pub url: String,
}

impl Port {
    pub async fn bind() -> Port {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the server");
        let url = format!("http://{}", tcp.local_addr().expect("server address"));
        Port { tcp, url }
    }
}

/// A server on a loopback port; stops when dropped.
pub struct Served {
    pub url: String,
    pub listening: Listening,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `state` on `port` with its SLA events LISTEN connection up (as the database owner),
/// as [`tallydesk_server::serve`] does.
pub async fn serve(state: &AppState, owner: &PgPool, port: Port) -> Served {
    let listening = state.events.listen((*owner.connect_options()).clone());
    listening.ready().await;
    let router = tallydesk_server::app(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            port.tcp,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Served {
        url: port.url,
        listening,
        task,
    }
}

/// The server's router over a fresh migrated database, with one trusted issuer.
#[derive(Clone)]
pub struct TestApp {
    pub router: axum::Router,
    pub issuer: Arc<Issuer>,
    /// Connections as the request role (row-level security applies).
    pub app_pool: PgPool,
    /// The database owner's connections (what the SLA monitor runs as).
    pub owner: PgPool,
    /// Tokens outlive any time the test clock moves through.
    long_tokens: bool,
    pub state: AppState,
    audience: String,
    trusted: Vec<String>,
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// `owner` is the pool `#[sqlx::test]` hands out: a fresh database, migrated, as its owner.
    pub async fn new(owner: PgPool) -> TestApp {
        TestApp::trusting(owner, &[], AUDIENCE).await
    }

    /// Like [`TestApp::new`], also trusting `issuers` and expecting `audience` in tokens.
    pub async fn trusting(owner: PgPool, issuers: &[String], audience: &str) -> TestApp {
        TestApp::build(owner, issuers, audience, Clock::system(), false).await
    }

    /// Like [`TestApp::new`], with the server's time read from `clock`.
    pub async fn with_clock(owner: PgPool, clock: &TestClock) -> TestApp {
        TestApp::build(owner, &[], AUDIENCE, clock.clock(), true).await
    }

    async fn build(
        owner: PgPool,
        issuers: &[String],
        audience: &str,
        clock: Clock,
        long_tokens: bool,
    ) -> TestApp {
        let issuer = Arc::new(Issuer::start().await);
        let mut trusted = vec![issuer.url.clone()];
        trusted.extend_from_slice(issuers);
        let state = server_state(&owner, 16, trusted.clone(), audience, clock).await;
        TestApp::of(state, owner, issuer, trusted, long_tokens)
    }

    fn of(
        state: AppState,
        owner: PgPool,
        issuer: Arc<Issuer>,
        trusted: Vec<String>,
        long_tokens: bool,
    ) -> TestApp {
        TestApp {
            router: tallydesk_server::app(state.clone()),
            issuer,
            app_pool: state.db.clone(),
            owner,
            long_tokens,
            audience: state.verifier.audience().to_owned(),
            state,
            trusted,
        }
    }

    /// The server with its built-in issuer on (beside the test issuer), served on a loopback
    /// port whose URL is its public URL and so the issuer's identifier.
    pub async fn with_builtin_issuer(
        owner: PgPool,
        clock: Clock,
        limits: Limits,
    ) -> (TestApp, Served) {
        let port = Port::bind().await;
        let issuer = Arc::new(Issuer::start().await);
        let trusted = vec![issuer.url.clone()];
        let state = server_state(&owner, 16, trusted.clone(), AUDIENCE, clock).await;
        let state = with_builtin_issuer(state, &port.url, limits).await;
        let app = TestApp::of(state, owner, issuer, trusted, false);
        let served = serve(&app.state, &app.owner, port).await;
        (app, served)
    }

    /// A second server instance on the same database with the built-in issuer at `url`.
    pub async fn another_instance_with_builtin_issuer(&self, url: &str) -> TestApp {
        let (owner, state) = self.another_state(8).await;
        let state = with_builtin_issuer(state, url, Limits::default()).await;
        self.sibling(state, owner)
    }

    /// A second server instance on the same database (its own pools, state and LISTEN
    /// connection), trusting the same issuer and reading the same clock.
    pub async fn another_instance(&self) -> TestApp {
        let (owner, state) = self.another_state(16).await;
        self.sibling(state, owner)
    }

    /// An owner pool of its own, and a state with a request pool of `connections`, trusting
    /// what this instance trusts and reading its clock.
    async fn another_state(&self, connections: u32) -> (PgPool, AppState) {
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .connect_with((*self.owner.connect_options()).clone())
            .await
            .expect("a second instance's owner pool");
        let clock = self.state.clock.clone();
        let trusted = self.trusted.clone();
        let state = server_state(&owner, connections, trusted, &self.audience, clock).await;
        (owner, state)
    }

    fn sibling(&self, state: AppState, owner: PgPool) -> TestApp {
        TestApp::of(
            state,
            owner,
            self.issuer.clone(),
            self.trusted.clone(),
            self.long_tokens,
        )
    }

    /// Serves the app on a loopback port with its SLA events LISTEN connection up, as
    /// [`tallydesk_server::serve`] does.
    pub async fn serve(&self) -> Served {
        serve(&self.state, &self.owner, Port::bind().await).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        tenant: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(tenant) = tenant {
            request = request.header("x-tenant-id", tenant);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body }
    }

    /// The same server keeping receipt images in `blobs` (users made before keep the old one).
    pub fn with_blobs(mut self, blobs: tallydesk_server::blobs::BlobStore) -> TestApp {
        self.state = self.state.with_blobs(blobs);
        self.router = tallydesk_server::app(self.state.clone());
        self
    }

    /// A signed-in user acting in one tenant.
    pub fn user(&self, subject: &str) -> User {
        User {
            app: self.clone(),
            token: if self.long_tokens {
                self.issuer.token_for(subject, 365 * 24 * 3600)
            } else {
                self.issuer.token(subject)
            },
            tenant: None,
        }
    }
}

/// A user with a token, optionally pinned to a tenant.
#[derive(Clone)]
pub struct User {
    pub app: TestApp,
    pub token: String,
    pub tenant: Option<String>,
}

impl User {
    pub fn in_tenant(&self, tenant: &str) -> User {
        User {
            tenant: Some(tenant.to_owned()),
            ..self.clone()
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.app
            .call(
                method,
                path,
                Some(&self.token),
                self.tenant.as_deref(),
                body,
            )
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn user_id(&self) -> String {
        let me = self.get("/api/v1/me").await.expect(StatusCode::OK);
        me["user"]["id"].as_str().expect("user id").to_owned()
    }

    pub async fn create_ticket(&self, title: &str) -> Value {
        self.post(
            "/api/v1/tickets",
            json!({ "title": title, "description": "details" }),
        )
        .await
        .expect(StatusCode::CREATED)
    }
}

/// A tenant with an admin (the installation's first user), and members of every other role.
pub struct Team {
    pub tenant: String,
    pub admin: User,
    pub agent: User,
    pub observer: User,
    pub requester: User,
}

impl Team {
    /// The first user claims the installation; the others join by invitation.
    pub async fn new(app: &TestApp) -> Team {
        let admin = app.user("admin");
        let me = admin.get("/api/v1/me").await.expect(StatusCode::OK);
        let tenant = me["memberships"][0]["tenant_id"]
            .as_str()
            .expect("tenant")
            .to_owned();
        let admin = admin.in_tenant(&tenant);
        let [agent, observer, requester] = ["agent", "observer", "requester"];
        for (name, role) in [
            (agent, "agent"),
            (observer, "observer"),
            (requester, "requester"),
        ] {
            admin
                .post(
                    "/api/v1/invitations",
                    json!({ "email": format!("{name}@example.com"), "role": role }),
                )
                .await
                .expect(StatusCode::CREATED);
        }
        let team = Team {
            agent: app.user(agent).in_tenant(&tenant),
            observer: app.user(observer).in_tenant(&tenant),
            requester: app.user(requester).in_tenant(&tenant),
            tenant,
            admin,
        };
        // Invitees join when they first sign in.
        for member in [&team.agent, &team.observer, &team.requester] {
            let me = member.get("/api/v1/me").await.expect(StatusCode::OK);
            assert_eq!(
                me["memberships"].as_array().map(Vec::len),
                Some(1),
                "joined: {me}"
            );
        }
        team
    }

    /// A second tenant made by a new user, who is its admin.
    pub async fn other_tenant(app: &TestApp, subject: &str) -> User {
        let user = app.user(subject);
        let tenant = user
            .post(
                "/api/v1/tenants",
                json!({ "name": format!("{subject}'s company") }),
            )
            .await
            .expect(StatusCode::CREATED);
        user.in_tenant(tenant["id"].as_str().expect("tenant id"))
    }
}
