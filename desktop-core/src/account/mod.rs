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

mod browser;
mod keychain;
mod loopback;
pub mod oidc;
mod saved;
pub mod server;

use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use openidconnect::RefreshToken;
use serde::{Deserialize, Serialize};
use tallydesk_shared::api::{
    AuthProvider, ChangePassword, Invitation, Member, Membership, UserSummary,
};
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::{CalendarId, InvitationId, Role, SlaPolicyId, TenantId, UserId};
use tokio::sync::{Mutex, oneshot};

pub use browser::{BROWSER_ENV, Browser};
pub use keychain::{Keychain, KeychainKey};

use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::sync::SyncScope;
use crate::{Clock, Desk};
use oidc::{Provider, Tokens};
use saved::{Saved, SavedSession};
use server::{Auth, ServerApi, ServerUrl};
use tallydesk_shared::sync::{Cursor, PullResponse, PushRequest, PushResponse};

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

    async fn restore(&self) -> DeskResult<()> {
        let Some(saved) = saved::load(self.inner.desk.store()).await? else {
            return Ok(());
        };
        let url = ServerUrl::parse(&saved.server_url)?;
        let server = Connected {
            api: ServerApi::new(self.inner.http.clone(), url.clone()),
            providers: saved.providers.clone(),
        };
        let Some(session) = saved.session else {
            self.set_state(State::SignedOut {
                server,
                notice: None,
            });
            return Ok(());
        };
        let signed_out = |notice: String| State::SignedOut {
            server: server.clone(),
            notice: Some(notice),
        };
        let Some(config) = server.provider(&session.issuer).cloned() else {
            self.set_state(signed_out(
                "The server no longer offers the identity provider you signed in with. Sign in again.".to_owned(),
            ));
            return Ok(());
        };
        let key = KeychainKey {
            server_url: url.to_string(),
            issuer: session.issuer.clone(),
            subject: session.subject.clone(),
        };
        let refresh = match self.inner.setup.keychain.load(&key).await {
            Ok(Some(refresh)) => refresh,
            Ok(None) => {
                self.set_state(signed_out(
                    "Your sign-in was not kept on this computer. Sign in again.".to_owned(),
                ));
                return Ok(());
            }
            Err(reason) => {
                self.set_state(signed_out(format!(
                    "Your sign-in could not be read from the keychain ({reason}). Sign in again."
                )));
                return Ok(());
            }
        };
        let role = session
            .tenants
            .iter()
            .find(|m| m.tenant_id == session.tenant_id)
            .map(|m| m.role);
        let Some(role) = role else {
            self.set_state(signed_out("Sign in again.".to_owned()));
            return Ok(());
        };
        *self.inner.live.lock().await = Some(Live {
            server: url.clone(),
            config: config.clone(),
            subject: session.subject.clone(),
            provider: None,
            tokens: Tokens::from_refresh(RefreshToken::new(refresh)),
            keychain: KeychainState::Stored,
        });
        let resumed = Session {
            server_url: url.to_string(),
            provider: ProviderInfo::from(&config),
            user: session.user.clone(),
            tenants: session.tenants.clone(),
            tenant_id: session.tenant_id,
            role,
            keychain: KeychainState::Stored,
            can_change_password: config.builtin,
        };
        self.set_state(State::SignedIn {
            server: server.clone(),
            session: resumed,
        });
        self.inner.desk.set_role(role).await?;
        // A fresh access token now, so an ended session shows as signed out at once. An
        // unreachable provider is no reason to sign out: the token is fetched again on use.
        match self.access_token().await {
            Ok(_) => {
                if let Err(e) = self.refresh_me().await {
                    tracing::info!(error = %e, "who I am could not be refreshed at start-up");
                }
            }
            Err(e) if e.code == ErrorCode::SessionExpired => {}
            Err(e) => tracing::info!(error = %e, "the saved sign-in could not be renewed now"),
        }
        Ok(())
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

    /// Reads the sign-in settings of the server at `url`. Connects to it unless signed in to
    /// it already; a session with another server is signed out first.
    pub async fn connect_server(&self, url: &str) -> DeskResult<ServerInfo> {
        let url = ServerUrl::parse(url)?;
        let _changing = self.inner.changing.lock().await;
        self.connect(&url).await.map(|c| c.info())
    }

    /// Connects to `url` (the caller holds `changing`).
    async fn connect(&self, url: &ServerUrl) -> DeskResult<Connected> {
        let api = ServerApi::new(self.inner.http.clone(), url.clone());
        let config = api.auth_config().await?;
        let connected = Connected {
            api,
            providers: config.providers,
        };
        match self.state() {
            State::SignedIn { server, session } if server.api.url() == url => {
                // Same server: keep the session, with the fresh settings.
                self.set_state(State::SignedIn {
                    server: connected.clone(),
                    session,
                });
                self.save_server(&connected, true).await?;
                return Ok(connected);
            }
            State::SignedIn { .. } => self.end_session().await,
            _ => {}
        }
        *self.inner.live.lock().await = None;
        self.set_state(State::SignedOut {
            server: connected.clone(),
            notice: None,
        });
        self.save_server(&connected, false).await?;
        Ok(connected)
    }

    /// Saves the server's settings, with the session as it is (`keep_session`) or without.
    async fn save_server(&self, server: &Connected, keep_session: bool) -> DeskResult<()> {
        let store = self.inner.desk.store();
        let session = if keep_session {
            saved::load(store).await?.and_then(|s| s.session)
        } else {
            None
        };
        let saved = Saved {
            server_url: server.api.url().to_string(),
            providers: server.providers.clone(),
            session,
        };
        saved::save(store, &saved, self.now()).await
    }

    /// Signs in at `server_url` with the identity provider `issuer`: opens the browser on its
    /// sign-in page and resolves once the answer came back and the server knows the person.
    pub async fn sign_in(&self, server_url: &str, issuer: &str) -> DeskResult<Account> {
        let url = ServerUrl::parse(server_url)?;
        let (cancel, cancelled) = oneshot::channel();
        // A newer sign-in replaces a pending one (dropping its sender cancels it).
        *self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel);
        let _changing = self.inner.changing.lock().await;
        let server = match self.state() {
            State::SignedOut { server, .. } | State::SignedIn { server, .. }
                if server.api.url() == &url =>
            {
                server
            }
            _ => self.connect(&url).await?,
        };
        let config = server.provider(issuer).cloned().ok_or_else(|| {
            DeskError::invalid(
                "issuer",
                format!("{issuer} is not an identity provider of the server at {url}"),
            )
        })?;
        // Signed in without a membership before: the same tokens may do now (after an invitation).
        if let Some(account) = self.retry_held(&server, &config).await? {
            return Ok(account);
        }
        let provider =
            Provider::discover(self.inner.http.clone(), &config.issuer, &config.client_id).await?;
        let listener = loopback::Loopback::bind("/callback").await.map_err(|e| {
            DeskError::new(
                ErrorCode::Internal,
                format!("the app could not listen for the sign-in's answer: {e}"),
            )
        })?;
        let consent = !config.builtin && config.scopes.iter().any(|s| s == "offline_access");
        let request = provider.authorize(&listener.uri(), &config.scopes, consent)?;
        self.inner.setup.browser.open(request.url.as_str()).map_err(|why| {
            DeskError::new(
                ErrorCode::BrowserClosed,
                format!("The browser could not be opened to sign in ({why}). Set {BROWSER_ENV} to your browser's program, or check your desktop's default browser, then try again."),
            )
        })?;
        let arrival = tokio::select! {
            arrival = listener.arrival() => arrival,
            () = tokio::time::sleep(self.inner.setup.sign_in_timeout) => {
                return Err(DeskError::new(
                    ErrorCode::BrowserClosed,
                    format!(
                        "No sign-in came back from the browser within {}. Sign in again, and finish signing in in the browser window that opens.",
                        spoken(self.inner.setup.sign_in_timeout)
                    ),
                ));
            }
            _ = cancelled => {
                return Err(DeskError::new(ErrorCode::SignInCancelled, "Sign-in cancelled."));
            }
        };
        let outcome = self
            .finish_sign_in(&server, &config, provider, request, &arrival.params)
            .await;
        match &outcome {
            Ok(_) => {
                arrival
                    .answer(
                        "You're signed in",
                        "Return to Tallydesk; you can close this tab.",
                    )
                    .await;
            }
            Err(e) => {
                arrival
                    .answer(
                        "Sign-in did not complete",
                        &format!("{} Return to Tallydesk to try again.", e.message),
                    )
                    .await;
            }
        }
        outcome
    }

    async fn finish_sign_in(
        &self,
        server: &Connected,
        config: &AuthProvider,
        provider: Provider,
        request: oidc::Request,
        params: &std::collections::HashMap<String, String>,
    ) -> DeskResult<Account> {
        let code = provider.code(&request, params)?;
        let (tokens, identity) = provider.exchange(request, code, self.now()).await?;
        let live = Live {
            server: server.api.url().clone(),
            config: config.clone(),
            subject: identity.subject,
            provider: Some(Arc::new(provider)),
            tokens,
            keychain: self.inner.setup.keychain.state(),
        };
        self.start_session(server, live).await
    }

    /// Tokens in hand: asks the server who this is, keeps the refresh token, and signs in.
    async fn start_session(&self, server: &Connected, mut live: Live) -> DeskResult<Account> {
        let token = live
            .tokens
            .access
            .as_ref()
            .map(|t| t.secret().clone())
            .ok_or_else(not_signed_in)?;
        let me = server
            .api
            .me(&Auth {
                token,
                tenant: None,
            })
            .await?;
        if let Some(previous) = self.inner.live.lock().await.take()
            && previous.key() != live.key()
        {
            self.forget_tokens(&previous).await;
        }
        live.keychain = match &live.tokens.refresh {
            Some(refresh) => match self.inner.setup.keychain.save(&live.key(), refresh.secret()).await {
                Ok(()) => KeychainState::Stored,
                Err(reason) => {
                    tracing::warn!(%reason, "the refresh token stays in memory");
                    KeychainState::MemoryOnly { reason }
                }
            },
            None => KeychainState::MemoryOnly {
                reason: "The identity provider gave no refresh token; you'll sign in again when this sign-in runs out.".to_owned(),
            },
        };
        let saved_tenant = saved::load(self.inner.desk.store())
            .await?
            .and_then(|s| s.session)
            .filter(|s| s.issuer == live.config.issuer && s.subject == live.subject)
            .map(|s| s.tenant_id);
        let active = me
            .memberships
            .iter()
            .find(|m| Some(m.tenant_id) == saved_tenant)
            .or_else(|| me.memberships.first())
            .cloned();
        let Some(active) = active else {
            // Kept, so signing in again after an invitation needs no browser.
            let error = no_membership(&me.user);
            self.set_state(State::SignedOut {
                server: server.clone(),
                notice: Some(error.message.clone()),
            });
            *self.inner.live.lock().await = Some(live);
            return Err(error);
        };
        let session = Session {
            server_url: server.api.url().to_string(),
            provider: ProviderInfo::from(&live.config),
            user: me.user.clone(),
            tenants: me.memberships.clone(),
            tenant_id: active.tenant_id,
            role: active.role,
            keychain: live.keychain.clone(),
            can_change_password: live.config.builtin,
        };
        let saved = Saved {
            server_url: server.api.url().to_string(),
            providers: server.providers.clone(),
            session: Some(SavedSession {
                issuer: live.config.issuer.clone(),
                subject: live.subject.clone(),
                user: me.user,
                tenants: me.memberships,
                tenant_id: active.tenant_id,
            }),
        };
        saved::save(self.inner.desk.store(), &saved, self.now()).await?;
        *self.inner.live.lock().await = Some(live);
        self.inner.desk.set_role(active.role).await?;
        self.set_state(State::SignedIn {
            server: server.clone(),
            session: session.clone(),
        });
        Ok(Account::SignedIn(session))
    }

    /// Signs in with tokens kept from a sign-in that found no membership, if they are for
    /// this provider and still work.
    async fn retry_held(
        &self,
        server: &Connected,
        config: &AuthProvider,
    ) -> DeskResult<Option<Account>> {
        let held = {
            let live = self.inner.live.lock().await;
            live.as_ref()
                .is_some_and(|l| &l.server == server.api.url() && l.config.issuer == config.issuer)
        };
        if !held || matches!(self.state(), State::SignedIn { .. }) {
            return Ok(None);
        }
        if self.access_token().await.is_err() {
            *self.inner.live.lock().await = None;
            return Ok(None);
        }
        let Some(live) = self.inner.live.lock().await.take() else {
            return Ok(None);
        };
        self.start_session(server, live).await.map(Some)
    }

    /// Cancels a pending sign-in (it then fails with `sign_in_cancelled`).
    pub fn cancel_sign_in(&self) {
        if let Some(cancel) = self
            .inner
            .cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = cancel.send(());
        }
    }

    /// Signs out: ends the session at the identity provider where it can, forgets the tokens
    /// here and in the keychain. The server stays connected.
    pub async fn sign_out(&self) -> DeskResult<Account> {
        let _changing = self.inner.changing.lock().await;
        self.end_session().await;
        if let State::SignedIn { server, .. } | State::SignedOut { server, .. } = self.state() {
            self.save_server(&server, false).await?;
            self.set_state(State::SignedOut {
                server,
                notice: None,
            });
        }
        Ok(self.account())
    }

    /// Ends the session's tokens: revoked and logged out at the provider (best effort), gone
    /// from the keychain and from memory.
    async fn end_session(&self) {
        let Some(live) = self.inner.live.lock().await.take() else {
            return;
        };
        self.forget_tokens(&live).await;
        let provider = match &live.provider {
            Some(p) => Some(p.clone()),
            None => Provider::discover(
                self.inner.http.clone(),
                &live.config.issuer,
                &live.config.client_id,
            )
            .await
            .map(Arc::new)
            .map_err(|e| tracing::info!(error = %e, "signing out without reaching the provider"))
            .ok(),
        };
        let Some(provider) = provider else { return };
        if let Some(refresh) = &live.tokens.refresh {
            provider.revoke(refresh).await;
        }
        let Ok(listener) = loopback::Loopback::bind("/signed-out").await else {
            return;
        };
        let Some(url) = provider.end_session_url(live.tokens.id_token.as_ref(), &listener.uri())
        else {
            return;
        };
        if let Err(why) = self.inner.setup.browser.open(url.as_str()) {
            tracing::info!(%why, "the browser could not be opened to sign out at the provider");
            return;
        }
        // The provider's page comes back here when done; nobody waits for it.
        tokio::spawn(async move {
            if let Ok(arrival) = tokio::time::timeout(SIGN_OUT_WAIT, listener.arrival()).await {
                arrival
                    .answer(
                        "You're signed out",
                        "Return to Tallydesk; you can close this tab.",
                    )
                    .await;
            }
        });
    }

    async fn forget_tokens(&self, live: &Live) {
        if let Err(reason) = self.inner.setup.keychain.delete(&live.key()).await {
            tracing::info!(%reason, "the keychain entry could not be deleted");
        }
    }

    /// Signs out and forgets the server: back to the local workspace, as its admin.
    pub async fn disconnect_server(&self) -> DeskResult<Account> {
        let _changing = self.inner.changing.lock().await;
        self.end_session().await;
        saved::forget(self.inner.desk.store()).await?;
        self.set_state(State::Local);
        self.inner.desk.set_role(Role::Admin).await?;
        Ok(Account::Local)
    }

    /// Makes `tenant` the active tenant; the desk acts with the role there.
    pub async fn switch_tenant(&self, tenant: TenantId) -> DeskResult<Account> {
        let _changing = self.inner.changing.lock().await;
        let State::SignedIn {
            server,
            mut session,
        } = self.state()
        else {
            return Err(not_signed_in());
        };
        let membership = session
            .tenants
            .iter()
            .find(|m| m.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| {
                DeskError::new(ErrorCode::Forbidden, "You are not a member of that team.")
            })?;
        session.tenant_id = membership.tenant_id;
        session.role = membership.role;
        self.save_session(&server, &session).await?;
        self.inner.desk.set_role(membership.role).await?;
        self.set_state(State::SignedIn {
            server,
            session: session.clone(),
        });
        Ok(Account::SignedIn(session))
    }

    async fn save_session(&self, server: &Connected, session: &Session) -> DeskResult<()> {
        let subject = self
            .inner
            .live
            .lock()
            .await
            .as_ref()
            .map(|l| l.subject.clone())
            .ok_or_else(not_signed_in)?;
        let saved = Saved {
            server_url: server.api.url().to_string(),
            providers: server.providers.clone(),
            session: Some(SavedSession {
                issuer: session.provider.issuer.clone(),
                subject,
                user: session.user.clone(),
                tenants: session.tenants.clone(),
                tenant_id: session.tenant_id,
            }),
        };
        saved::save(self.inner.desk.store(), &saved, self.now()).await
    }

    /// Asks the server again who the user is and where they belong (after an invitation, a
    /// role change); the active tenant stays when it still can.
    async fn refresh_me(&self) -> DeskResult<()> {
        let me = self
            .call(|api, auth| async move { api.me(&auth).await }, false)
            .await?;
        let _changing = self.inner.changing.lock().await;
        let State::SignedIn {
            server,
            mut session,
        } = self.state()
        else {
            return Ok(());
        };
        let Some(active) = me
            .memberships
            .iter()
            .find(|m| m.tenant_id == session.tenant_id)
            .or_else(|| me.memberships.first())
            .cloned()
        else {
            return Err(no_membership(&me.user));
        };
        session.user = me.user;
        session.tenants = me.memberships;
        session.tenant_id = active.tenant_id;
        session.role = active.role;
        self.save_session(&server, &session).await?;
        self.inner.desk.set_role(active.role).await?;
        self.set_state(State::SignedIn { server, session });
        Ok(())
    }

    /// A valid access token, refreshed first when it is due. Concurrent callers share one
    /// refresh; a refused refresh signs out with a notice.
    async fn access_token(&self) -> DeskResult<String> {
        let mut guard = self.inner.live.lock().await;
        let live = guard.as_mut().ok_or_else(not_signed_in)?;
        let now = self.now();
        if let Some(token) = live.tokens.fresh(now) {
            return Ok(token.secret().clone());
        }
        let Some(refresh) = live.tokens.refresh.clone() else {
            drop(guard);
            return Err(self.expire().await);
        };
        let provider = match &live.provider {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(
                    Provider::discover(
                        self.inner.http.clone(),
                        &live.config.issuer,
                        &live.config.client_id,
                    )
                    .await?,
                );
                live.provider = Some(p.clone());
                p
            }
        };
        match provider
            .refresh(&refresh, live.tokens.id_token.clone(), now)
            .await
        {
            Ok(tokens) => {
                let rotated = tokens.refresh.as_ref().map(|r| r.secret()) != Some(refresh.secret());
                if rotated
                    && live.keychain == KeychainState::Stored
                    && let Some(new) = &tokens.refresh
                    && let Err(reason) = self
                        .inner
                        .setup
                        .keychain
                        .save(&live.key(), new.secret())
                        .await
                {
                    tracing::warn!(%reason, "the rotated refresh token stays in memory");
                    live.keychain = KeychainState::MemoryOnly { reason };
                }
                live.tokens = tokens;
                let token = live.tokens.access.as_ref().map(|t| t.secret().clone());
                let keychain = live.keychain.clone();
                drop(guard);
                self.update_session(|s| s.keychain = keychain);
                token.ok_or_else(not_signed_in)
            }
            Err(e) if e.code == ErrorCode::SessionExpired => {
                drop(guard);
                Err(self.expire().await)
            }
            Err(e) => Err(e),
        }
    }

    fn update_session(&self, f: impl FnOnce(&mut Session)) {
        if let State::SignedIn { session, .. } =
            &mut *self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
        {
            f(session);
        }
    }

    /// The session ran out for good: signed out, with a notice.
    async fn expire(&self) -> DeskError {
        let error = oidc::session_expired();
        if let Some(live) = self.inner.live.lock().await.take() {
            self.forget_tokens(&live).await;
        }
        if let State::SignedIn { server, .. } | State::SignedOut { server, .. } = self.state() {
            if let Err(e) = self.save_server(&server, false).await {
                tracing::warn!(error = %e, "the ended session could not be forgotten");
            }
            self.set_state(State::SignedOut {
                server,
                notice: Some(error.message.clone()),
            });
        }
        error
    }

    /// Calls the server with the access token (and the active tenant when `in_tenant`); a
    /// refused token is refreshed once and the call tried again.
    async fn call<T, F, Fut>(&self, f: F, in_tenant: bool) -> DeskResult<T>
    where
        F: Fn(ServerApi, Auth) -> Fut,
        Fut: Future<Output = DeskResult<T>>,
    {
        let (api, tenant) = match self.state() {
            State::SignedIn { server, session } => {
                (server.api, in_tenant.then_some(session.tenant_id))
            }
            _ => return Err(not_signed_in()),
        };
        let token = self.access_token().await?;
        match f(api.clone(), Auth { token, tenant }).await {
            Err(e) if e.code == ErrorCode::SessionExpired => {
                // The server refused a token we thought good (revoked, or a clock apart): once
                // more with a fresh one.
                if let Some(live) = self.inner.live.lock().await.as_mut() {
                    live.tokens.access = None;
                }
                let token = self.access_token().await?;
                f(api, Auth { token, tenant }).await
            }
            result => result,
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

    /// One page of the active tenant's change log after `cursor`.
    pub async fn sync_pull(&self, cursor: Cursor, limit: u32) -> DeskResult<PullResponse> {
        self.call(
            move |api, auth| async move { api.sync_pull(&auth, cursor, limit).await },
            true,
        )
        .await
    }

    /// Pushes queued intents to the active tenant.
    pub async fn sync_push(&self, request: &PushRequest) -> DeskResult<PushResponse> {
        self.call(
            |api, auth| {
                let request = request.clone();
                async move { api.sync_push(&auth, &request).await }
            },
            true,
        )
        .await
    }

    /// Creates or replaces an SLA policy of the active tenant.
    pub async fn save_sla_policy(
        &self,
        id: Option<SlaPolicyId>,
        input: &PolicyInput,
        version: Option<i64>,
    ) -> DeskResult<Policy> {
        self.call(
            |api, auth| async move { api.save_sla_policy(&auth, id, input, version).await },
            true,
        )
        .await
    }

    pub async fn delete_sla_policy(&self, id: SlaPolicyId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.delete_sla_policy(&auth, id).await },
            true,
        )
        .await
    }

    /// Creates or replaces a business calendar of the active tenant.
    pub async fn save_calendar(
        &self,
        id: Option<CalendarId>,
        input: &CalendarInput,
        version: Option<i64>,
    ) -> DeskResult<CalendarRecord> {
        self.call(
            |api, auth| async move { api.save_calendar(&auth, id, input, version).await },
            true,
        )
        .await
    }

    pub async fn delete_calendar(&self, id: CalendarId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.delete_calendar(&auth, id).await },
            true,
        )
        .await
    }

    /// Uploads a receipt image to the active tenant's blob store.
    pub async fn put_blob(&self, sha256: &str, media_type: &str, bytes: Vec<u8>) -> DeskResult<()> {
        self.call(
            |api, auth| {
                let bytes = bytes.clone();
                async move { api.put_blob(&auth, sha256, media_type, bytes).await }
            },
            true,
        )
        .await
    }

    /// A receipt image from the active tenant's blob store, if this user may see it.
    pub async fn get_blob(&self, sha256: &str) -> DeskResult<Option<Vec<u8>>> {
        self.call(
            |api, auth| async move { api.get_blob(&auth, sha256).await },
            true,
        )
        .await
    }

    /// The active tenant's live event stream (Server-Sent Events), opened.
    pub async fn open_events(&self) -> DeskResult<reqwest::Response> {
        self.call(|api, auth| async move { api.events(&auth).await }, true)
            .await
    }

    /// The active tenant's members.
    pub async fn members(&self) -> DeskResult<Vec<Member>> {
        self.call(|api, auth| async move { api.members(&auth).await }, true)
            .await
    }

    pub async fn set_member_role(&self, user: UserId, role: Role) -> DeskResult<Member> {
        let member = self
            .call(
                |api, auth| async move { api.set_member_role(&auth, user, role).await },
                true,
            )
            .await?;
        self.after_member_change(user).await;
        Ok(member)
    }

    pub async fn remove_member(&self, user: UserId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.remove_member(&auth, user).await },
            true,
        )
        .await?;
        self.after_member_change(user).await;
        Ok(())
    }

    /// Changing one's own membership changes what one may do here.
    async fn after_member_change(&self, user: UserId) {
        let me = matches!(self.state(), State::SignedIn { session, .. } if session.user.id == user);
        if me && let Err(e) = self.refresh_me().await {
            tracing::info!(error = %e, "who I am could not be refreshed");
        }
    }

    pub async fn invitations(&self) -> DeskResult<Vec<Invitation>> {
        self.call(
            |api, auth| async move { api.invitations(&auth).await },
            true,
        )
        .await
    }

    pub async fn invite(&self, email: &str, role: Role) -> DeskResult<Invitation> {
        let email = email.trim().to_owned();
        self.call(
            |api, auth| {
                let email = email.clone();
                async move { api.invite(&auth, email, role).await }
            },
            true,
        )
        .await
    }

    pub async fn revoke_invitation(&self, id: InvitationId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.revoke_invitation(&auth, id).await },
            true,
        )
        .await
    }

    /// Changes the password of an account the server keeps (its built-in issuer).
    pub async fn change_password(&self, current: &str, new: &str) -> DeskResult<()> {
        match self.state() {
            State::SignedIn { session, .. } if !session.can_change_password => {
                return Err(DeskError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "Your password is kept by {}; change it there.",
                        session.provider.name
                    ),
                ));
            }
            State::SignedIn { .. } => {}
            _ => return Err(not_signed_in()),
        }
        let change = ChangePassword {
            current_password: current.to_owned(),
            new_password: new.to_owned(),
        };
        self.call(
            |api, auth| {
                let change = change.clone();
                async move { api.change_password(&auth, &change).await }
            },
            false,
        )
        .await
    }
}
