//! `/oidc/token` (authorization code and refresh token grants), `/oidc/revoke` (RFC 7009) and
//! `/oidc/userinfo`.
//!
//! Errors are RFC 6749 §5.2 JSON. Every token response is `Cache-Control: no-store`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{Postgres, Transaction};
use tallydesk_shared::UserId;
use uuid::Uuid;

use super::authorize::Params;
use super::{
    ACCESS_TOKEN_TTL, BuiltinIssuer, CLIENT_ID, ID_TOKEN_TTL, REFRESH_TOKEN_TTL, issuer_of,
    random_secret, secret_hash,
};
use crate::AppState;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            // Capacity, not a fault: the client retries after `Retry-After`.
            return OAuthError::new(
                "temporarily_unavailable",
                "the server is busy: all its database connections are in use; try again shortly",
            );
        }
        anyhow::Error::from(e).into()
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = ?e, "token request failed");
        OAuthError::new(
            "server_error",
            "something went wrong on the server; it has been logged",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        no_store(response.headers_mut());
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            let after = crate::error::BUSY_RETRY_AFTER.as_secs().to_string();
            if let Ok(after) = HeaderValue::from_str(&after) {
                response.headers_mut().insert(header::RETRY_AFTER, after);
            }
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The user a token speaks of, as the `users` row has them.
struct Subject {
    id: UserId,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

async fn subject_of(
    tx: &mut Transaction<'static, Postgres>,
    user: Uuid,
) -> Result<Subject, sqlx::Error> {
    let row = sqlx::query!(
        "select id, subject, email, email_verified, name from users where id = $1",
        user
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Subject {
        id: UserId::from_uuid(row.id),
        subject: row.subject,
        email: row.email,
        email_verified: row.email_verified,
        name: row.name,
    })
}

/// What the token endpoint needs to mint tokens for a grant.
struct Minting<'a> {
    grant: Uuid,
    session: Option<Uuid>,
    scope: &'a str,
    auth_time: DateTime<Utc>,
    nonce: Option<&'a str>,
    refresh: bool,
}

#[tracing::instrument(skip_all)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    match exchange(&state, &issuer, &headers, &Params::parse(&body)).await {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(e) => {
            if e.error != "server_error" {
                tracing::info!(error = e.error, description = %e.description, "token request refused");
            }
            e.into_response()
        }
    }
}

async fn exchange(
    state: &AppState,
    issuer: &BuiltinIssuer,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, OAuthError> {
    if let Some(repeated) = params.first_repeated() {
        return Err(OAuthError::invalid_request(format!(
            "parameter {repeated} is repeated"
        )));
    }
    authenticate_client(headers, params)?;
    let now = state.clock.now();
    match params.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => code_grant(state, issuer, params, now).await,
        Some("refresh_token") => refresh_grant(state, issuer, params, now).await,
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
    }
}

/// The one public client identifies itself with `client_id` and no secret.
fn authenticate_client(headers: &HeaderMap, params: &Params) -> Result<(), OAuthError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(OAuthError::new(
            "invalid_client",
            "this client is public: send client_id in the body, without credentials",
        ));
    }
    match params.get("client_id") {
        Some(CLIENT_ID) => Ok(()),
        Some(_) => Err(OAuthError::new("invalid_client", "unknown client_id")),
        None => Err(OAuthError::new("invalid_client", "client_id is required")),
    }
}

async fn code_grant(
    state: &AppState,
    issuer: &BuiltinIssuer,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let mut tx = state.db.begin().await?;
    let row = sqlx::query!(
        "select client_id, redirect_uri, user_id, session_id, code_challenge, nonce, scope,
                auth_time, expires_at, used_at, grant_id
           from issuer_codes where code_hash = $1 for update",
        secret_hash(code)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(OAuthError::invalid_grant(
            "the authorization code is unknown",
        ));
    };
    if row.used_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
        if let Some(grant) = row.grant_id {
            sqlx::query!(
                "update issuer_grants set revoked_at = $2 where id = $1 and revoked_at is null",
                grant,
                now
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::warn!(user = %row.user_id, "an authorization code was replayed: its tokens are revoked");
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired: sign in again",
        ));
    }
    if row.client_id != CLIENT_ID {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !pkce_matches(verifier, &row.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let grant = Uuid::now_v7();
    sqlx::query!(
        "insert into issuer_grants (id, user_id, client_id, session_id, scope, auth_time, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        grant,
        row.user_id,
        CLIENT_ID,
        row.session_id,
        row.scope,
        row.auth_time,
        now
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update issuer_codes set used_at = $2, grant_id = $3 where code_hash = $1",
        secret_hash(code),
        now,
        grant
    )
    .execute(&mut *tx)
    .await?;
    let subject = subject_of(&mut tx, row.user_id).await?;
    let body = mint(
        &mut tx,
        issuer,
        &subject,
        Minting {
            grant,
            session: row.session_id,
            scope: &row.scope,
            auth_time: row.auth_time,
            nonce: row.nonce.as_deref(),
            refresh: row.scope.split(' ').any(|s| s == "offline_access"),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(body)
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, for a well-formed verifier.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

async fn refresh_grant(
    state: &AppState,
    issuer: &BuiltinIssuer,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let mut tx = state.db.begin().await?;
    let row = sqlx::query!(
        "select r.grant_id, r.expires_at, r.used_at, g.user_id, g.client_id, g.session_id,
                g.scope, g.auth_time, g.revoked_at
           from issuer_refresh_tokens r join issuer_grants g on g.id = r.grant_id
          where r.token_hash = $1
          for update of r, g",
        secret_hash(token)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(OAuthError::invalid_grant("the refresh token is unknown"));
    };
    if row.client_id != CLIENT_ID {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the refresh token was revoked: sign in again",
        ));
    }
    if row.used_at.is_some() {
        // Two parties hold this family's tokens: end it for both.
        sqlx::query!(
            "update issuer_grants set revoked_at = $2 where id = $1",
            row.grant_id,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(user = %row.user_id, grant = %row.grant_id, "a refresh token was reused: its grant is revoked");
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used; the session is revoked: sign in again",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token has expired: sign in again",
        ));
    }
    if let Some(asked) = params.get("scope")
        && !asked
            .split_whitespace()
            .all(|s| row.scope.split(' ').any(|g| g == s))
    {
        return Err(OAuthError::new(
            "invalid_scope",
            "a refresh cannot widen the granted scope",
        ));
    }
    let has_account = sqlx::query_scalar!(
        "select exists(select 1 from local_accounts where user_id = $1) as \"exists!\"",
        row.user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if !has_account {
        return Err(OAuthError::invalid_grant("the account no longer exists"));
    }
    sqlx::query!(
        "update issuer_refresh_tokens set used_at = $2 where token_hash = $1",
        secret_hash(token),
        now
    )
    .execute(&mut *tx)
    .await?;
    let subject = subject_of(&mut tx, row.user_id).await?;
    let body = mint(
        &mut tx,
        issuer,
        &subject,
        Minting {
            grant: row.grant_id,
            session: row.session_id,
            scope: &row.scope,
            auth_time: row.auth_time,
            nonce: None,
            refresh: true,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(body)
}

/// Signs an access token and an ID token, and stores a new refresh token when asked.
async fn mint(
    tx: &mut Transaction<'static, Postgres>,
    issuer: &BuiltinIssuer,
    subject: &Subject,
    minting: Minting<'_>,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let signer = issuer.keys().signer(now).await?;
    let iat = now.timestamp();
    let profile = minting.scope.split(' ').any(|s| s == "profile");
    let email = minting.scope.split(' ').any(|s| s == "email");
    let mut user_claims = serde_json::Map::new();
    if email {
        user_claims.insert("email".into(), json!(subject.email));
        user_claims.insert("email_verified".into(), json!(subject.email_verified));
    }
    if profile {
        user_claims.insert("name".into(), json!(subject.name));
    }

    let mut access = json!({
        "iss": issuer.url(),
        "sub": subject.subject,
        "aud": issuer.audience(),
        "client_id": CLIENT_ID,
        "iat": iat,
        "nbf": iat,
        "exp": (now + ACCESS_TOKEN_TTL).timestamp(),
        "jti": Uuid::now_v7().to_string(),
        "scope": minting.scope,
        "auth_time": minting.auth_time.timestamp(),
        "grant_id": minting.grant.to_string(),
    });
    extend(&mut access, &user_claims);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(signer.kid.clone());
    header.typ = Some("at+jwt".into());
    let access_token = jsonwebtoken::encode(&header, &access, &signer.key)
        .map_err(|e| anyhow::anyhow!("signing an access token: {e}"))?;

    let mut id = json!({
        "iss": issuer.url(),
        "sub": subject.subject,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "iat": iat,
        "exp": (now + ID_TOKEN_TTL).timestamp(),
        "auth_time": minting.auth_time.timestamp(),
        "at_hash": left_half_hash(&access_token),
    });
    if let Some(session) = minting.session {
        id["sid"] = json!(session.to_string());
    }
    if let Some(nonce) = minting.nonce {
        id["nonce"] = json!(nonce);
    }
    extend(&mut id, &user_claims);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(signer.kid.clone());
    header.typ = Some("JWT".into());
    let id_token = jsonwebtoken::encode(&header, &id, &signer.key)
        .map_err(|e| anyhow::anyhow!("signing an ID token: {e}"))?;

    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.num_seconds(),
        "id_token": id_token,
        "scope": minting.scope,
    });
    if minting.refresh {
        let refresh = random_secret();
        sqlx::query!(
            "insert into issuer_refresh_tokens (token_hash, grant_id, created_at, expires_at)
             values ($1, $2, $3, $4)",
            secret_hash(&refresh),
            minting.grant,
            now,
            now + REFRESH_TOKEN_TTL
        )
        .execute(&mut **tx)
        .await?;
        body["refresh_token"] = json!(refresh);
    }
    tracing::debug!(user = %subject.id, grant = %minting.grant, "issued tokens");
    Ok(body)
}

fn extend(claims: &mut Value, extra: &serde_json::Map<String, Value>) {
    if let Value::Object(claims) = claims {
        claims.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// OIDC Core §3.1.3.6 `at_hash`: base64url of the left half of SHA-256 of the access token.
fn left_half_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// `POST /oidc/revoke` (RFC 7009): revokes the grant of a refresh or access token. Answers
/// 200 for tokens it does not know, as the RFC asks.
#[tracing::instrument(skip_all)]
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let params = Params::parse(&body);
    let result = async {
        authenticate_client(&headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let now = state.clock.now();
        let grant = match sqlx::query_scalar!(
            "select grant_id from issuer_refresh_tokens where token_hash = $1",
            secret_hash(token)
        )
        .fetch_optional(&state.db)
        .await?
        {
            Some(grant) => Some(grant),
            // An access token of ours names its grant; its signature says it is ours.
            None => match state.verifier.verify(token, now).await {
                Ok(claims) if claims.issuer == issuer.url() => {
                    claims.grant.and_then(|g| g.parse::<Uuid>().ok())
                }
                _ => None,
            },
        };
        if let Some(grant) = grant {
            sqlx::query!(
                "update issuer_grants set revoked_at = $2 where id = $1 and revoked_at is null",
                grant,
                now
            )
            .execute(&state.db)
            .await?;
        }
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /oidc/userinfo`: the claims of the bearer access token's user.
#[tracing::instrument(skip_all)]
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let refuse = |description: &str| {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_token", "error_description": description })),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        response
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return refuse("send Authorization: Bearer <access token>");
    };
    let claims = match state.verifier.verify(token.trim(), state.clock.now()).await {
        Ok(claims) if claims.issuer == issuer.url() => claims,
        Ok(_) => return refuse("the token is not from this issuer"),
        Err(e) => return refuse(&e.to_string()),
    };
    match crate::auth::grant_is_active(&state, &claims).await {
        Ok(true) => {}
        Ok(false) => return refuse("the token was revoked"),
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    }
    let mut body = json!({ "sub": claims.subject });
    if let Some(email) = &claims.email {
        body["email"] = json!(email);
        body["email_verified"] = json!(claims.email_verified);
    }
    if let Some(name) = &claims.name {
        body["name"] = json!(name);
    }
    let mut response = axum::Json(body).into_response();
    no_store(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(
            !pkce_matches(challenge, challenge),
            "the challenge is not the verifier"
        );
        assert!(
            !pkce_matches("short", challenge),
            "verifiers have at least 43 characters"
        );
    }
}
