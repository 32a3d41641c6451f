//! Which server the account is connected to, and the session as kept between runs: resumed at
//! start-up, saved on every change, refreshed from the server.

use openidconnect::RefreshToken;
use tallydesk_shared::{Role, TenantId};

use super::oidc::Tokens;
use super::saved::{self, Saved, SavedSession};
use super::server::{ServerApi, ServerUrl};
use super::{
    Account, Connected, Connection, KeychainKey, KeychainState, Live, ProviderInfo, ServerInfo,
    Session, State, no_membership, not_signed_in,
};
use crate::error::{DeskError, DeskResult, ErrorCode};

impl Connection {
    /// Resumes the account saved in the store, as [`Connection::open`] describes.
    pub(super) async fn restore(&self) -> DeskResult<()> {
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

    /// Reads the sign-in settings of the server at `url`. Connects to it unless signed in to
    /// it already; a session with another server is signed out first.
    pub async fn connect_server(&self, url: &str) -> DeskResult<ServerInfo> {
        let url = ServerUrl::parse(url)?;
        let _changing = self.inner.changing.lock().await;
        self.connect(&url).await.map(|c| c.info())
    }

    /// Connects to `url` (the caller holds `changing`).
    pub(super) async fn connect(&self, url: &ServerUrl) -> DeskResult<Connected> {
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
    pub(super) async fn save_server(
        &self,
        server: &Connected,
        keep_session: bool,
    ) -> DeskResult<()> {
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

    pub(super) async fn save_session(
        &self,
        server: &Connected,
        session: &Session,
    ) -> DeskResult<()> {
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
    pub(super) async fn refresh_me(&self) -> DeskResult<()> {
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
}
