//! Signing in to a Tallydesk server from the desktop: which server, who is signed in, and the
//! calls that need their tokens.
//!
//! The flow is OpenID Connect's authorization code flow for a native app (RFC 8252): the
//! person's browser opens the identity provider's sign-in page, and the answer comes back to a
//! loopback listener of this process. Tokens stay here: the UI gets an [`Account`], never a
//! token, and the refresh token goes to the OS keychain (or, without one, stays in memory).
//!
//! [`Connection`] is the state behind the account commands. Its role in the active tenant is
//! the role the local [`Desk`] acts with, so the shared permission rules apply locally too.
//! Its parts: `connect` (which server, the saved session), `sign_in` (the browser flow and
//! signing out), `tokens` (fresh tokens, retried calls) and `calls` (what is asked of the
//! server); `oidc`, `server`, `loopback`, `browser`, `keychain` and `saved` are the outside
//! pieces they drive.

mod browser;
mod calls;
mod connect;
mod keychain;
mod loopback;
pub mod oidc;
mod saved;
pub mod server;
mod sign_in;
mod tokens;

use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tallydesk_shared::api::{AuthProvider, Membership, UserSummary};
use tallydesk_shared::{Role, TenantId};
use tokio::sync::{Mutex, oneshot};

pub use browser::{BROWSER_ENV, Browser};
pub use keychain::{Keychain, KeychainKey};

use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::sync::SyncScope;
use crate::{Clock, Desk};
use oidc::{Provider, Tokens};
use server::{ServerApi, ServerUrl};

/// How long a sign-in waits for the browser by default.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long the app listens for the provider's redirect after signing out there.
const SIGN_OUT_WAIT: Duration = Duration::from_secs(60);
/// Bound on each call to the server or the identity provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// An identity provider the server accepts, as the sign-in screen offers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ProviderInfo {
    pub name: String,
    pub issuer: String,
    /// The server's own accounts (email and password kept by the server).
    pub builtin: bool,
}

impl From<&AuthProvider> for ProviderInfo {
    fn from(p: &AuthProvider) -> Self {
        ProviderInfo {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            builtin: p.builtin,
        }
    }
}

/// A server the app can sign in to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ServerInfo {
    pub url: String,
    pub providers: Vec<ProviderInfo>,
}

/// Where the app stands: a local workspace, a server to sign in to, or a signed-in session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Account {
    /// No server connected: a local workspace, whose user is its admin.
    Local,
    /// Connected to a server, not signed in; `notice` says why, when the app signed out by itself.
    SignedOut {
        server_url: String,
        providers: Vec<ProviderInfo>,
        notice: Option<String>,
    },
    SignedIn(Session),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Session {
    pub server_url: String,
    pub provider: ProviderInfo,
    pub user: UserSummary,
    pub tenants: Vec<Membership>,
    /// The active tenant, and the role there.
    pub tenant_id: TenantId,
    pub role: Role,
    pub keychain: KeychainState,
    /// The server keeps this account's password (its built-in issuer).
    pub can_change_password: bool,
}

/// Whether the sign-in survives a restart of the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeychainState {
    Stored,
    /// Tokens are kept in memory only; `reason` says why and what it means.
    MemoryOnly {
        reason: String,
    },
}

/// Where the account's outside parts come from: the app uses [`Setup::system`], tests their own.
#[derive(Clone, Debug)]
pub struct Setup {
    pub clock: Clock,
    pub browser: Browser,
    pub keychain: Keychain,
    /// How long a sign-in waits for the browser's answer.
    pub sign_in_timeout: Duration,
}

impl Setup {
    /// The system clock and browser (or `TALLYDESK_BROWSER`), the OS keychain.
    pub fn system() -> Setup {
        Setup {
            clock: Clock::system(),
            browser: Browser::system(),
            keychain: Keychain::system(),
            sign_in_timeout: SIGN_IN_TIMEOUT,
        }
    }
}

/// The desktop's account: which server, who is signed in, their tokens. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    desk: Desk,
    setup: Setup,
    /// Does not follow redirects (token calls must not be bounced elsewhere).
    http: reqwest::Client,
    /// What the UI sees; short critical sections only.
    state: SyncMutex<State>,
    /// The signed-in (or membership-less) session's tokens. Held across a refresh, so
    /// concurrent callers wait for one refresh rather than each starting their own.
    live: Mutex<Option<Live>>,
    /// One account change at a time (sign in, sign out, switch tenant...).
    changing: Mutex<()>,
    /// Cancels the pending sign-in.
    cancel: SyncMutex<Option<oneshot::Sender<()>>>,
}

#[derive(Clone, Debug)]
enum State {
    Local,
    SignedOut {
        server: Connected,
        notice: Option<String>,
    },
    SignedIn {
        server: Connected,
        session: Session,
    },
}

/// A server and its sign-in settings.
#[derive(Clone, Debug)]
struct Connected {
    api: ServerApi,
    providers: Vec<AuthProvider>,
}

impl Connected {
    fn info(&self) -> ServerInfo {
        ServerInfo {
            url: self.api.url().to_string(),
            providers: self.providers.iter().map(ProviderInfo::from).collect(),
        }
    }

    fn provider(&self, issuer: &str) -> Option<&AuthProvider> {
        self.providers.iter().find(|p| p.issuer == issuer)
    }
}

/// Tokens of a session and whose they are.
#[derive(Debug)]
struct Live {
    server: ServerUrl,
    config: AuthProvider,
    subject: String,
    /// Discovered on first need.
    provider: Option<Arc<Provider>>,
    tokens: Tokens,
    keychain: KeychainState,
}

impl Live {
    fn key(&self) -> KeychainKey {
        KeychainKey {
            server_url: self.server.to_string(),
            issuer: self.config.issuer.clone(),
            subject: self.subject.clone(),
        }
    }
}

/// "5 minutes", "30 seconds".
fn spoken(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 120 => format!("{} minutes", s.div_ceil(60)),
        s => format!("{} seconds", s.max(1)),
    }
}

fn not_signed_in() -> DeskError {
    DeskError::new(
        ErrorCode::NotSignedIn,
        "Sign in to a Tallydesk server first.",
    )
}

fn no_membership(user: &UserSummary) -> DeskError {
    let who = user
        .email
        .as_deref()
        .or(user.name.as_deref())
        .unwrap_or("this account");
    DeskError::new(
        ErrorCode::NoMembership,
        format!(
            "You are signed in as {who}, but you are not a member of any team on this server yet. Ask an admin to invite you, then sign in again."
        ),
    )
}

impl Connection {
    /// The account as saved in `desk`'s store. A saved session is resumed with the refresh
    /// token from the keychain; when that fails for good, the account is signed out with a
    /// notice saying why.
    pub async fn open(desk: Desk, setup: Setup) -> DeskResult<Connection> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("no HTTP client: {e}")))?;
        let connection = Connection {
            inner: Arc::new(Inner {
                desk,
                setup,
                http,
                state: SyncMutex::new(State::Local),
                live: Mutex::new(None),
                changing: Mutex::new(()),
                cancel: SyncMutex::new(None),
            }),
        };
        connection.restore().await?;
        Ok(connection)
    }

    fn set_state(&self, state: State) {
        let scope = match &state {
            State::SignedIn { server, session } => Some(SyncScope {
                server_url: server.api.url().to_string(),
                tenant_id: session.tenant_id,
                user: Person {
                    id: session.user.id,
                    name: session
                        .user
                        .name
                        .clone()
                        .or_else(|| session.user.email.clone())
                        .unwrap_or_else(|| "Me".to_owned()),
                    email: session.user.email.clone(),
                    role: session.role,
                },
            }),
            _ => None,
        };
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        self.inner.desk.set_sync_scope(scope);
    }

    fn state(&self) -> State {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.setup.clock.now()
    }

    /// Where the app stands now.
    pub fn account(&self) -> Account {
        match self.state() {
            State::Local => Account::Local,
            State::SignedOut { server, notice } => Account::SignedOut {
                server_url: server.api.url().to_string(),
                providers: server.providers.iter().map(ProviderInfo::from).collect(),
                notice,
            },
            State::SignedIn { session, .. } => Account::SignedIn(session),
        }
    }

    /// Whether `other` is this very account (not a clone of another workspace's).
    pub fn same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The workspace this account acts in.
    pub fn desk(&self) -> &Desk {
        &self.inner.desk
    }
}
