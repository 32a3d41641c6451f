//! Test support: a real token issuer on loopback and the server's router over a fresh database.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt as _;
use jsonwebtoken::{EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tallydesk_server::auth::jwt::Verifier;
use tallydesk_server::events::Listening;
use tallydesk_server::issuer::throttle::Limits;
use tallydesk_server::issuer::{BuiltinIssuer, KeyRing};
use tallydesk_server::{AppState, Clock};
use tower::ServiceExt as _;

pub const AUDIENCE: &str = "tallydesk-api";

/// An OIDC issuer serving discovery and a JWKS on 127.0.0.1, signing ES256 tokens.
pub struct Issuer {
    pub url: String,
    key: EncodingKey,
    kid: String,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let signing = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding of a fresh key");
        let point = signing.verifying_key().to_encoded_point(false);
        let kid = format!("test-{}", uuid::Uuid::now_v7().simple());
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("issuer address"));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Issuer {
            url,
            key: EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key"),
            kid,
        }
    }

    /// A valid access token for `subject`, with the given extra claims merged in.
    pub fn token_with(&self, subject: &str, extra: Value) -> String {
        let now = Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.url, "sub": subject, "aud": AUDIENCE,
            "iat": now, "exp": now + 600,
            "email": format!("{subject}@example.com"), "email_verified": true,
            "name": subject,
        });
        if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            c.extend(extra);
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing a test token")
    }

    pub fn token(&self, subject: &str) -> String {
        self.token_with(subject, json!({}))
    }
}

/// A clock the test moves by hand, for deadlines: it starts on Monday 2026-11-02 at 08:00 UTC.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new() -> TestClock {
        let start = "2026-11-02T08:00:00Z".parse().expect("a start time");
        TestClock(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock") += by;
    }

    /// The server's clock, reading this one.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::fixed(move || this.now())
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
        TestApp::instance(owner, issuer, trusted, audience, clock, long_tokens).await
    }

    async fn instance(
        owner: PgPool,
        issuer: Arc<Issuer>,
        trusted: Vec<String>,
        audience: &str,
        clock: Clock,
        long_tokens: bool,
    ) -> TestApp {
        let options = (*owner.connect_options()).clone();
        let app_pool = tallydesk_server::db::app_pool(options, 16)
            .await
            .expect("request pool");
        let http = reqwest::Client::new();
        let verifier = Verifier::new(trusted.clone(), audience.to_owned(), http);
        let state = AppState::new(app_pool.clone(), verifier, clock);
        TestApp {
            router: tallydesk_server::app(state.clone()),
            issuer,
            app_pool,
            owner,
            long_tokens,
            state,
            audience: audience.to_owned(),
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
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the server");
        let url = format!("http://{}", tcp.local_addr().expect("server address"));
        let issuer = Arc::new(Issuer::start().await);
        let trusted = vec![issuer.url.clone()];
        let options = (*owner.connect_options()).clone();
        let app_pool = tallydesk_server::db::app_pool(options, 16)
            .await
            .expect("request pool");
        let keys = KeyRing::open(app_pool.clone(), clock.now())
            .await
            .expect("the signing keys load");
        let verifier = Verifier::new(trusted.clone(), AUDIENCE.to_owned(), reqwest::Client::new());
        let state = AppState::new(app_pool.clone(), verifier, clock).with_builtin_issuer(
            BuiltinIssuer::new(url, AUDIENCE.to_owned(), Arc::new(keys)).with_limits(limits),
        );
        let app = TestApp {
            router: tallydesk_server::app(state.clone()),
            issuer,
            app_pool,
            owner,
            long_tokens: false,
            state,
            audience: AUDIENCE.to_owned(),
            trusted,
        };
        let served = app.serve_on(tcp).await;
        (app, served)
    }

    /// A second server instance on the same database with the built-in issuer at `url`.
    pub async fn another_instance_with_builtin_issuer(&self, url: &str) -> TestApp {
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .connect_with((*self.owner.connect_options()).clone())
            .await
            .expect("a second instance's owner pool");
        let app_pool = tallydesk_server::db::app_pool((*owner.connect_options()).clone(), 8)
            .await
            .expect("request pool");
        let clock = self.state.clock.clone();
        let keys = KeyRing::open(app_pool.clone(), clock.now())
            .await
            .expect("the signing keys load");
        let verifier = Verifier::new(
            self.trusted.clone(),
            self.audience.clone(),
            reqwest::Client::new(),
        );
        let state = AppState::new(app_pool.clone(), verifier, clock).with_builtin_issuer(
            BuiltinIssuer::new(url.to_owned(), self.audience.clone(), Arc::new(keys)),
        );
        TestApp {
            router: tallydesk_server::app(state.clone()),
            issuer: self.issuer.clone(),
            app_pool,
            owner,
            long_tokens: self.long_tokens,
            state,
            audience: self.audience.clone(),
            trusted: self.trusted.clone(),
        }
    }

    /// A second server instance on the same database (its own pools, state and LISTEN
    /// connection), trusting the same issuer and reading the same clock.
    pub async fn another_instance(&self) -> TestApp {
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .connect_with((*self.owner.connect_options()).clone())
            .await
            .expect("a second instance's owner pool");
        TestApp::instance(
            owner,
            self.issuer.clone(),
            self.trusted.clone(),
            &self.audience,
            self.state.clock.clone(),
            self.long_tokens,
        )
        .await
    }

    /// Serves the app on a loopback port with its SLA events LISTEN connection up, as
    /// [`tallydesk_server::serve`] does.
    pub async fn serve(&self) -> Served {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the server");
        self.serve_on(tcp).await
    }

    async fn serve_on(&self, tcp: tokio::net::TcpListener) -> Served {
        let listening = self
            .state
            .events
            .listen((*self.owner.connect_options()).clone());
        listening.ready().await;
        let url = format!("http://{}", tcp.local_addr().expect("server address"));
        let router = self.router.clone();
        let task = tokio::spawn(async move {
            axum::serve(
                tcp,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
        Served {
            url,
            listening,
            task,
        }
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
                let year = (Utc::now() + Duration::days(365)).timestamp();
                self.issuer.token_with(subject, json!({ "exp": year }))
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
