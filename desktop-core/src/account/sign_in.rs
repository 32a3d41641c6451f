//! Signing in through the browser (OIDC authorization code flow with a loopback redirect) and
//! signing out, at the provider too.

use std::collections::HashMap;
use std::sync::Arc;

use tallydesk_shared::api::AuthProvider;
use tokio::sync::oneshot;

use super::oidc::{self, Provider};
use super::saved::{self, Saved, SavedSession};
use super::server::{Auth, ServerUrl};
use super::{
    Account, BROWSER_ENV, Connected, Connection, KeychainState, Live, ProviderInfo, SIGN_OUT_WAIT,
    Session, State, loopback, no_membership, not_signed_in, spoken,
};
use crate::error::{DeskError, DeskResult, ErrorCode};

impl Connection {
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

    pub(super) async fn finish_sign_in(
        &self,
        server: &Connected,
        config: &AuthProvider,
        provider: Provider,
        request: oidc::Request,
        params: &HashMap<String, String>,
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
    pub(super) async fn start_session(
        &self,
        server: &Connected,
        mut live: Live,
    ) -> DeskResult<Account> {
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
    pub(super) async fn retry_held(
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
    pub(super) async fn end_session(&self) {
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

    pub(super) async fn forget_tokens(&self, live: &Live) {
        if let Err(reason) = self.inner.setup.keychain.delete(&live.key()).await {
            tracing::info!(%reason, "the keychain entry could not be deleted");
        }
    }
}
