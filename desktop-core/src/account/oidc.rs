//! The OpenID Connect side of signing in: discovery, the authorization request (PKCE S256,
//! `state`, `nonce`), the answer's checks (`state`, RFC 9207 `iss`), the code exchange, the ID
//! token's checks, refreshing, revoking and RP-initiated logout.
//!
//! Time is a parameter: every check that needs the clock takes `now`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use crate::error::{DeskError, DeskResult, ErrorCode};

/// How far an ID token's `iat` and `exp` may be from this computer's clock.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);
/// Refresh when this little of an access token's life remains...
const REFRESH_MARGIN: TimeDelta = TimeDelta::seconds(60);
/// ...or once this share of it has passed.
const REFRESH_AT_SHARE: f64 = 0.8;
/// When the provider does not say how long an access token lasts.
const DEFAULT_LIFETIME: TimeDelta = TimeDelta::minutes(5);

/// Discovery fields beyond the core ones that signing in and out use.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Extra {
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 9207: the provider names itself in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for Extra {}

type Metadata = ProviderMetadata<
    Extra,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An identity provider as discovered, for one client id.
pub struct Provider {
    client: Client,
    issuer: String,
    client_id: String,
    extra: Extra,
    /// Does not follow redirects: token calls must not be bounced elsewhere.
    http: reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// One authorization request, with what checking its answer needs.
pub struct Request {
    pub url: url::Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    redirect_uri: RedirectUrl,
}

/// Tokens of a session. `Debug` shows none of them (the token types redact themselves).
#[derive(Debug)]
pub struct Tokens {
    pub access: Option<AccessToken>,
    /// When to refresh the access token, ahead of its expiry.
    pub refresh_at: DateTime<Utc>,
    pub refresh: Option<RefreshToken>,
    /// The last ID token, as a hint when signing out at the provider.
    pub id_token: Option<IdTokenHint>,
}

/// An ID token kept only to be sent back as `id_token_hint`.
#[derive(Clone)]
pub struct IdTokenHint(String);

impl std::fmt::Debug for IdTokenHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenHint([redacted])")
    }
}

impl Tokens {
    /// Only a refresh token, as kept between runs: the access token is fetched on first use.
    pub fn from_refresh(refresh: RefreshToken) -> Tokens {
        Tokens {
            access: None,
            refresh_at: DateTime::<Utc>::MIN_UTC,
            refresh: Some(refresh),
            id_token: None,
        }
    }

    pub fn fresh(&self, now: DateTime<Utc>) -> Option<&AccessToken> {
        self.access.as_ref().filter(|_| now < self.refresh_at)
    }
}

/// Who the ID token says signed in.
#[derive(Clone, Debug)]
pub struct Identity {
    pub subject: String,
}

fn idp_unreachable(issuer: &str, why: impl std::fmt::Display) -> DeskError {
    DeskError::new(
        ErrorCode::IdpUnreachable,
        format!(
            "The identity provider at {issuer} could not be reached or answered wrongly ({why}). Check your network connection and try again; if it keeps happening, tell your administrator."
        ),
    )
}

fn refused(issuer: &str, error: &str, description: Option<&str>) -> DeskError {
    let detail = description.map_or_else(|| error.to_owned(), |d| format!("{error}: {d}"));
    if error == "access_denied" {
        return DeskError::new(
            ErrorCode::ConsentDenied,
            format!(
                "Sign-in was refused at the identity provider ({detail}). Sign in again and allow Tallydesk access to continue."
            ),
        );
    }
    DeskError::new(
        ErrorCode::IdpUnreachable,
        format!(
            "The identity provider at {issuer} refused the sign-in ({detail}). Try again; if it keeps happening, tell your administrator."
        ),
    )
}

pub fn clock_skew(detail: &str) -> DeskError {
    DeskError::new(
        ErrorCode::ClockSkew,
        format!(
            "This computer's clock is more than 5 minutes away from the identity provider's ({detail}). Check this computer's clock (date, time and time zone), then sign in again."
        ),
    )
}

pub fn session_expired() -> DeskError {
    DeskError::new(
        ErrorCode::SessionExpired,
        "Your sign-in has expired or was ended elsewhere. Sign in again.",
    )
}

impl Provider {
    /// Reads `{issuer}/.well-known/openid-configuration` (its `issuer` must be `issuer`).
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: &str,
    ) -> DeskResult<Provider> {
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|e| idp_unreachable(issuer, format!("its issuer URL is invalid: {e}")))?;
        let metadata = Metadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Validation(why) => DeskError::new(
                    ErrorCode::IssuerMismatch,
                    format!("The identity provider at {issuer} describes itself as another issuer ({why}). Ask your administrator to check the server's sign-in settings."),
                ),
                e => idp_unreachable(issuer, error_chain(&e)),
            })?;
        let extra = metadata.additional_metadata().clone();
        let client =
            CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_owned()), None);
        Ok(Provider {
            client,
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            extra,
            http,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A fresh authorization request: PKCE S256, random `state` and `nonce`.
    pub fn authorize(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        consent: bool,
    ) -> DeskResult<Request> {
        let redirect_uri = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("bad redirect URI: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_redirect_uri(Cow::Borrowed(&redirect_uri))
            .set_pkce_challenge(challenge);
        for scope in scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if consent {
            // Offline access (a refresh token) takes the person's explicit consent (OIDC Core §11).
            request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Consent);
        }
        let (url, state, nonce) = request.url();
        Ok(Request {
            url,
            state,
            nonce,
            verifier,
            redirect_uri,
        })
    }

    /// The code in the provider's answer, once the answer is known to be for `request` and
    /// from this provider.
    pub fn code(
        &self,
        request: &Request,
        params: &HashMap<String, String>,
    ) -> DeskResult<AuthorizationCode> {
        // RFC 9207: an answer naming another issuer is a mix-up, whatever else it says.
        match params.get("iss") {
            Some(iss) if iss != &self.issuer => {
                return Err(DeskError::new(
                    ErrorCode::IssuerMismatch,
                    format!(
                        "The sign-in answer came from {iss}, not from {} which was asked. Sign in again; if it keeps happening, tell your administrator.",
                        self.issuer
                    ),
                ));
            }
            None if self.extra.authorization_response_iss_parameter_supported => {
                return Err(DeskError::new(
                    ErrorCode::IssuerMismatch,
                    format!(
                        "The sign-in answer did not say which identity provider sent it, though {} always does. Sign in again.",
                        self.issuer
                    ),
                ));
            }
            _ => {}
        }
        if params.get("state").map(String::as_str) != Some(request.state.secret().as_str()) {
            return Err(DeskError::new(
                ErrorCode::StateMismatch,
                "The browser brought back an answer to a different sign-in. Close other sign-in tabs, then sign in again.",
            ));
        }
        if let Some(error) = params.get("error") {
            return Err(refused(
                &self.issuer,
                error,
                params.get("error_description").map(String::as_str),
            ));
        }
        params
            .get("code")
            .map(|code| AuthorizationCode::new(code.clone()))
            .ok_or_else(|| idp_unreachable(&self.issuer, "its answer has no authorization code"))
    }

    /// Exchanges the code and checks the ID token (signature, issuer, audience, times, nonce).
    pub async fn exchange(
        &self,
        request: Request,
        code: AuthorizationCode,
        now: DateTime<Utc>,
    ) -> DeskResult<(Tokens, Identity)> {
        let response = self
            .client
            .exchange_code(code)
            .map_err(|e| idp_unreachable(&self.issuer, e))?
            .set_redirect_uri(Cow::Borrowed(&request.redirect_uri))
            .set_pkce_verifier(request.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| self.token_error(e, false))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| idp_unreachable(&self.issuer, "its token response has no ID token"))?;
        let verifier = self
            .client
            .id_token_verifier()
            .set_time_fn(move || now - MAX_CLOCK_SKEW)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > now + MAX_CLOCK_SKEW {
                    Err(format!(
                        "the ID token was issued at {iat}, in this computer's future"
                    ))
                } else {
                    Ok(())
                }
            });
        let claims = id_token
            .claims(&verifier, &request.nonce)
            .map_err(|e| self.id_token_error(e))?;
        let identity = Identity {
            subject: claims.subject().as_str().to_owned(),
        };
        let tokens = Tokens {
            access: Some(response.access_token().clone()),
            refresh_at: refresh_at(now, response.expires_in()),
            refresh: response.refresh_token().cloned(),
            id_token: Some(IdTokenHint(id_token.to_string())),
        };
        Ok((tokens, identity))
    }

    /// New tokens for `refresh`; the provider may rotate the refresh token (then the new one
    /// replaces it) or keep it.
    pub async fn refresh(
        &self,
        refresh: &RefreshToken,
        id_token: Option<IdTokenHint>,
        now: DateTime<Utc>,
    ) -> DeskResult<Tokens> {
        let response = self
            .client
            .exchange_refresh_token(refresh)
            .map_err(|e| idp_unreachable(&self.issuer, e))?
            .request_async(&self.http)
            .await
            .map_err(|e| self.token_error(e, true))?;
        Ok(Tokens {
            access: Some(response.access_token().clone()),
            refresh_at: refresh_at(now, response.expires_in()),
            refresh: Some(
                response
                    .refresh_token()
                    .cloned()
                    .unwrap_or_else(|| refresh.clone()),
            ),
            id_token: response
                .id_token()
                .map(|t| IdTokenHint(t.to_string()))
                .or(id_token),
        })
    }

    /// Revokes `refresh` at the provider (RFC 7009), when it offers revocation. Best effort:
    /// the session is forgotten here whatever the provider says.
    pub async fn revoke(&self, refresh: &RefreshToken) {
        let Some(endpoint) = &self.extra.revocation_endpoint else {
            return;
        };
        let result = self
            .http
            .post(endpoint)
            .form(&[
                ("token", refresh.secret().as_str()),
                ("token_type_hint", "refresh_token"),
                ("client_id", self.client_id.as_str()),
            ])
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = %r.status(), issuer = %self.issuer, "the provider did not revoke the refresh token")
            }
            Err(e) => {
                tracing::warn!(error = %e, issuer = %self.issuer, "revoking the refresh token failed")
            }
        }
    }

    /// Where to send the browser to end the session at the provider, when it offers that.
    pub fn end_session_url(
        &self,
        id_token: Option<&IdTokenHint>,
        post_logout_redirect_uri: &str,
    ) -> Option<url::Url> {
        let mut url = url::Url::parse(self.extra.end_session_endpoint.as_deref()?).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.client_id);
            query.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
            if let Some(hint) = id_token {
                query.append_pair("id_token_hint", &hint.0);
            }
        }
        Some(url)
    }

    fn token_error<RE: std::error::Error + 'static>(
        &self,
        e: RequestTokenError<
            RE,
            openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
        >,
        refreshing: bool,
    ) -> DeskError {
        match e {
            RequestTokenError::ServerResponse(response) => {
                let error = response.error().as_ref();
                if refreshing && error == "invalid_grant" {
                    return session_expired();
                }
                refused(
                    &self.issuer,
                    error,
                    response.error_description().map(String::as_str),
                )
            }
            e => idp_unreachable(&self.issuer, error_chain(&e)),
        }
    }

    fn id_token_error(&self, e: ClaimsVerificationError) -> DeskError {
        match e {
            ClaimsVerificationError::Expired(why) => clock_skew(&why),
            ClaimsVerificationError::InvalidIssuer(why) => DeskError::new(
                ErrorCode::IssuerMismatch,
                format!(
                    "The ID token was not issued by {} ({why}). Sign in again; if it keeps happening, tell your administrator.",
                    self.issuer
                ),
            ),
            ClaimsVerificationError::InvalidNonce(_) => DeskError::new(
                ErrorCode::StateMismatch,
                "The identity provider's answer was for a different sign-in (its nonce differs). Sign in again.",
            ),
            e => idp_unreachable(&self.issuer, format!("its ID token failed the checks: {e}")),
        }
    }
}

fn refresh_at(now: DateTime<Utc>, expires_in: Option<std::time::Duration>) -> DateTime<Utc> {
    let lifetime = expires_in
        .and_then(|d| TimeDelta::from_std(d).ok())
        .unwrap_or(DEFAULT_LIFETIME);
    let share =
        TimeDelta::milliseconds((lifetime.num_milliseconds() as f64 * REFRESH_AT_SHARE) as i64);
    (now + share).min(now + lifetime - REFRESH_MARGIN).max(now)
}

/// An error and its causes, joined: reqwest's top-level message alone rarely says why.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_refreshed_before_they_expire() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let ten_minutes = refresh_at(now, Some(std::time::Duration::from_secs(600)));
        assert_eq!(
            ten_minutes,
            now + TimeDelta::seconds(480),
            "at 80% of a 10-minute life"
        );
        let two_minutes = refresh_at(now, Some(std::time::Duration::from_secs(120)));
        assert_eq!(
            two_minutes,
            now + TimeDelta::seconds(60),
            "a minute before a short life ends"
        );
        let instant = refresh_at(now, Some(std::time::Duration::from_secs(30)));
        assert_eq!(
            instant, now,
            "a token that lives under a minute is refreshed on next use"
        );
    }
}
