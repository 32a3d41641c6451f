//! The server's built-in OpenID Connect issuer, for one public client (the desktop app) and the
//! local accounts the server keeps.
//!
//! - Discovery at `/.well-known/openid-configuration`; everything else under `/oidc/`:
//!   `authorize` (with the login page), `login` (its form), `token`, `jwks`, `end_session`,
//!   `revoke` (RFC 7009), `userinfo`, and `invitations/{token}` (accept an invitation).
//! - Authorization code flow with PKCE S256 only; codes are single-use and live 60 s; a replayed
//!   code revokes what its first exchange issued. Refresh tokens rotate on every use; reusing
//!   one revokes its whole grant (the "family").
//! - Access tokens are `at+jwt` JWTs (RFC 9068) for the API's audience, ID tokens are for the
//!   client; both signed ES256 with keys kept in the database ([`keys::KeyRing`]). The API's
//!   verifier reads the same keys directly, never this issuer's URL.
//!
//! Secrets handed out (codes, refresh tokens, cookies, invitation links) are random 256-bit
//! values stored only as SHA-256 hashes.

pub mod accounts;
pub mod authorize;
pub mod invitations;
pub mod keys;
pub mod logout;
pub mod pages;
pub mod password;
pub mod sweep;
pub mod throttle;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::error::ApiError;
pub use keys::KeyRing;

/// The one client: the desktop app, a public client (no secret, PKCE).
pub const CLIENT_ID: &str = "tallydesk-desktop";
/// What the client may ask for.
pub const SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];
/// The name the built-in issuer goes by in `/api/v1/auth/config`.
pub const PROVIDER_NAME: &str = "Tallydesk account";

pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(10);
pub const ID_TOKEN_TTL: Duration = Duration::minutes(10);
pub const CODE_TTL: Duration = Duration::seconds(60);
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(30);
pub const SESSION_TTL: Duration = Duration::hours(1);
pub const INTERACTION_TTL: Duration = Duration::minutes(15);

/// The built-in issuer: its identifier (the public URL), the audience of its access tokens and
/// its signing keys.
#[derive(Debug)]
pub struct BuiltinIssuer {
    url: String,
    audience: String,
    keys: Arc<KeyRing>,
    limits: throttle::Limits,
}

impl BuiltinIssuer {
    /// `url` is the issuer identifier, exactly: the server's public URL without trailing slash.
    pub fn new(url: String, audience: String, keys: Arc<KeyRing>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            audience,
            keys,
            limits: throttle::Limits::default(),
        }
    }

    /// Other limits on password attempts than the defaults (5 per account and 30 per address
    /// in 15 minutes).
    pub fn with_limits(mut self, limits: throttle::Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> throttle::Limits {
        self.limits
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    fn secure_cookies(&self) -> bool {
        self.url.starts_with("https://")
    }
}

/// The issuer's routes; each answers 404 while the built-in issuer is off.
pub fn routes() -> Router<AppState> {
    let oidc = Router::new()
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", post(authorize::login))
        .route("/token", post(token::token))
        .route("/jwks", get(jwks))
        .route("/revoke", post(token::revoke))
        .route("/userinfo", get(token::userinfo).post(token::userinfo))
        .route(
            "/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route(
            "/invitations/{token}",
            get(invitations::show).post(invitations::accept),
        );
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .nest("/oidc", oidc)
}

/// The issuer, or the 404 every issuer route answers while it is off.
#[allow(clippy::result_large_err)]
pub(crate) fn issuer_of(state: &AppState) -> Result<&Arc<BuiltinIssuer>, Response> {
    state
        .issuer
        .as_ref()
        .ok_or_else(|| ApiError::not_found("route").into_response())
}

async fn discovery(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    let document = json!({
        "issuer": issuer.url,
        "authorization_endpoint": issuer.endpoint("/oidc/authorize"),
        "token_endpoint": issuer.endpoint("/oidc/token"),
        "jwks_uri": issuer.endpoint("/oidc/jwks"),
        "userinfo_endpoint": issuer.endpoint("/oidc/userinfo"),
        "end_session_endpoint": issuer.endpoint("/oidc/end_session"),
        "revocation_endpoint": issuer.endpoint("/oidc/revoke"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys::ALGORITHM],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid",
            "email", "email_verified", "name"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(document),
    )
        .into_response()
}

async fn jwks(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    match issuer.keys.jwks(state.clock.now()).await {
        Ok(keys) => (
            // Short, so that a rotated key reaches verifiers soon.
            [(header::CACHE_CONTROL, "public, max-age=60")],
            axum::Json(json!({ "keys": keys })),
        )
            .into_response(),
        Err(e) => ApiError::Internal(e).into_response(),
    }
}

/// 32 random bytes, base64url: codes, refresh tokens, cookie values, link tokens.
pub(crate) fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The SHA-256 of a secret, as stored.
pub(crate) fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `uri` is a loopback redirect URI the desktop app may use (RFC 8252 §7.3): plain
/// http to 127.0.0.1 or [::1], any port, path `/callback`, nothing else.
pub fn is_loopback_redirect(uri: &str) -> bool {
    loopback_uri(uri).is_some_and(|url| url.path() == "/callback" && url.query().is_none())
}

/// Whether `uri` is a loopback address the browser may be sent back to after sign-out.
pub fn is_loopback_logout_redirect(uri: &str) -> bool {
    loopback_uri(uri).is_some()
}

fn loopback_uri(uri: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(uri).ok()?;
    let host_ok = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST
    ) || matches!(
        url.host(),
        Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST
    );
    (url.scheme() == "http"
        && host_ok
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        // The parser normalises; anything it changed (e.g. `127.1`, `/a/../callback`) is not
        // the registered form.
        && url.as_str().trim_end_matches('/') == uri.trim_end_matches('/'))
    .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_on_any_port_are_accepted() {
        for ok in [
            "http://127.0.0.1:49152/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:8765/callback",
        ] {
            assert!(is_loopback_redirect(ok), "{ok} is a loopback callback");
        }
    }

    #[test]
    fn other_redirects_are_refused() {
        for bad in [
            "https://127.0.0.1:8080/callback",
            "http://localhost:8080/callback",
            "http://127.0.0.2:8080/callback",
            "http://evil.example/callback",
            "http://127.0.0.1:8080/other",
            "http://127.0.0.1:8080/callback?x=1",
            "http://127.0.0.1:8080/callback#frag",
            "http://user@127.0.0.1:8080/callback",
            "http://127.1:8080/callback",
            "http://127.0.0.1:8080/a/../callback",
            "127.0.0.1:8080/callback",
            "",
        ] {
            assert!(!is_loopback_redirect(bad), "{bad} must be refused");
        }
    }
}
