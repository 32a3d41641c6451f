//! The session's tokens: a fresh access token on demand (one refresh at a time), the session
//! ended when the refresh is refused, and server calls retried once with a new token.

use std::sync::Arc;

use super::oidc::{self, Provider};
use super::server::{Auth, ServerApi};
use super::{Connection, KeychainState, Session, State, not_signed_in};
use crate::error::{DeskError, DeskResult, ErrorCode};

impl Connection {
    /// A valid access token, refreshed first when it is due. Concurrent callers share one
    /// refresh; a refused refresh signs out with a notice.
    pub(super) async fn access_token(&self) -> DeskResult<String> {
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

    pub(super) fn update_session(&self, f: impl FnOnce(&mut Session)) {
        if let State::SignedIn { session, .. } =
            &mut *self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
        {
            f(session);
        }
    }

    /// The session ran out for good: signed out, with a notice.
    pub(super) async fn expire(&self) -> DeskError {
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
    pub(super) async fn call<T, F, Fut>(&self, f: F, in_tenant: bool) -> DeskResult<T>
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
}
