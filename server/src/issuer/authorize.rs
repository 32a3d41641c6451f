//! `/oidc/authorize` and its sign-in form (`/oidc/login`).
//!
//! A request names the client and a redirect URI; until both are known good, errors are shown
//! as a page and never redirected (RFC 6749 §4.1.2.1). After that, errors go back to the client
//! as `error`, `error_description`, `state` and `iss` (RFC 9207). A browser with a live issuer
//! session gets a code at once, unless `prompt=login` or `max_age` asks for a fresh sign-in.
//! Otherwise the request waits server-side (an "interaction") for the form, which carries only
//! the interaction's id; a cookie set with the page binds the form to this browser (CSRF).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_shared::UserId;
use uuid::Uuid;

use super::pages;
use super::throttle::Attempt;
use super::{
    BuiltinIssuer, CLIENT_ID, CODE_TTL, INTERACTION_TTL, SESSION_TTL, accounts, issuer_of,
    password, random_secret, secret_hash,
};
use crate::AppState;

pub const SESSION_COOKIE: &str = "tallydesk_session";
pub const LOGIN_COOKIE: &str = "tallydesk_login";

/// Longest accepted `redirect_uri` (a loopback `/callback`, so far shorter in practice).
const MAX_REDIRECT_URI: usize = 512;
/// Longest accepted email on the sign-in form (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// Form or query parameters. Empty values count as absent (RFC 6749 §3.1); parameters sent
/// more than once are remembered, since none may be.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    pub(crate) fn parse(encoded: &[u8]) -> Self {
        let mut params = Params::default();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            if value.is_empty() {
                continue;
            }
            match params.values.entry(name.into_owned()) {
                std::collections::hash_map::Entry::Occupied(seen) => {
                    params.repeated.push(seen.key().clone());
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(value.into_owned());
                }
            }
        }
        params
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub(crate) fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }
}

/// An authorization request that passed validation, kept while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthRequest {
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub login_hint: Option<String>,
}

/// Why a request is refused, and how to tell.
enum Refusal {
    /// The client or redirect URI is not known good: tell the person, never redirect.
    Page(String),
    /// Tell the client at its redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// A browser's live sign-in at the issuer.
pub(crate) struct Session {
    pub id: Uuid,
    pub user: UserId,
    pub auth_time: DateTime<Utc>,
}

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(state, headers, params).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(state, headers, Params::parse(&body)).await
}

#[tracing::instrument(skip_all)]
async fn authorize(state: AppState, headers: HeaderMap, params: Params) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let request = match validate(&params) {
        Ok(request) => request,
        Err(refusal) => return refuse(&issuer, refusal),
    };
    let now = state.clock.now();
    let prompts: Vec<&str> = params
        .get("prompt")
        .map(|p| p.split_whitespace().collect())
        .unwrap_or_default();
    let max_age = params.get("max_age").and_then(|v| v.parse::<i64>().ok());
    let result = async {
        let session = current_session(&state, &issuer, &headers, now).await?;
        let fresh_enough = |s: &Session| {
            max_age.is_none_or(|max| (now - s.auth_time).num_seconds() <= max) && max_age != Some(0)
        };
        match session {
            Some(session) if !prompts.contains(&"login") && fresh_enough(&session) => {
                issue_code(&state, &issuer, &request, &session, now).await
            }
            _ if prompts.contains(&"none") => Ok(refuse(
                &issuer,
                Refusal::Redirect {
                    redirect_uri: request.redirect_uri.clone(),
                    state: request.state.clone(),
                    error: "login_required",
                    description: "the user is not signed in at the issuer".into(),
                },
            )),
            _ => login_page(&state, &issuer, &headers, &request, now).await,
        }
    }
    .await;
    result.unwrap_or_else(|e| {
        tracing::error!(error = ?e, "authorization request failed");
        server_error()
    })
}

fn validate(params: &Params) -> Result<AuthRequest, Refusal> {
    let client_id = params.get("client_id");
    if params.repeated.iter().any(|p| p == "client_id") || client_id.is_none() {
        return Err(Refusal::Page(
            "The sign-in request names no client. Start signing in from the Tallydesk app.".into(),
        ));
    }
    if client_id != Some(CLIENT_ID) {
        return Err(Refusal::Page(
            "The sign-in request comes from an application this server does not know (unknown client_id).".into(),
        ));
    }
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri)
            if !params.repeated.iter().any(|p| p == "redirect_uri")
                && uri.len() <= MAX_REDIRECT_URI
                && super::is_loopback_redirect(uri) =>
        {
            uri.to_owned()
        }
        _ => {
            return Err(Refusal::Page(
                "The sign-in request asks to return to an address this server does not allow \
                 (invalid redirect_uri). Start signing in from the Tallydesk app."
                    .into(),
            ));
        }
    };
    let state = params.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    if let Some(repeated) = params.first_repeated() {
        return Err(fail(
            "invalid_request",
            &format!("parameter {repeated} is repeated"),
        ));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let scopes: Vec<&str> = params
        .get("scope")
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if !scopes.contains(&"openid") {
        return Err(fail("invalid_scope", "scope must include openid"));
    }
    // Unknown scopes are dropped (RFC 6749 §3.3: the grant may be narrower than asked).
    let mut granted: Vec<&str> = super::SCOPES
        .iter()
        .copied()
        .filter(|s| scopes.contains(s))
        .collect();
    granted.dedup();
    let code_challenge = match params.get("code_challenge") {
        None => {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        Some(challenge) => challenge.to_owned(),
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    // The S256 challenge is base64url of a SHA-256: 43 characters.
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge is not a base64url SHA-256",
        ));
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .map(|p| p.split_whitespace().collect())
        .unwrap_or_default();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other prompts",
        ));
    }
    if params
        .get("max_age")
        .is_some_and(|v| v.parse::<u32>().is_err())
    {
        return Err(fail(
            "invalid_request",
            "max_age must be a number of seconds",
        ));
    }
    for (name, max) in [("state", 2048), ("nonce", 512), ("login_hint", MAX_EMAIL)] {
        if params.get(name).is_some_and(|v| v.len() > max) {
            return Err(fail(
                "invalid_request",
                &format!("{name} is longer than {max} bytes"),
            ));
        }
    }
    Ok(AuthRequest {
        redirect_uri,
        scope: granted.join(" "),
        state,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        login_hint: params.get("login_hint").map(str::to_owned),
    })
}

fn refuse(issuer: &BuiltinIssuer, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(text) => pages::message(StatusCode::BAD_REQUEST, "Cannot sign in", &text),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => redirect(
            issuer,
            &redirect_uri,
            &[("error", error), ("error_description", &description)],
            state.as_deref(),
        ),
    }
}

/// 303 to the client's (validated) redirect URI with `params`, `state` and `iss`.
fn redirect(
    issuer: &BuiltinIssuer,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let Ok(mut url) = reqwest::Url::parse(redirect_uri) else {
        return server_error();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer.url());
    }
    see_other(url.as_str())
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn server_error() -> Response {
    pages::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not finish signing you in; it has been logged. Try again from the Tallydesk app.",
    )
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for an issuer cookie; `None` deletes it.
pub(crate) fn set_cookie(
    issuer: &BuiltinIssuer,
    name: &str,
    value: Option<&str>,
    max_age: chrono::Duration,
    same_site: &str,
) -> HeaderValue {
    let path = reqwest::Url::parse(issuer.url())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let (value, max_age) = match value {
        Some(value) => (value, max_age.num_seconds()),
        None => ("", 0),
    };
    let secure = if issuer.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}/oidc; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) async fn current_session(
    state: &AppState,
    _issuer: &BuiltinIssuer,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let row = sqlx::query!(
        "select s.id, s.user_id, s.auth_time from issuer_sessions s
           join local_accounts a on a.user_id = s.user_id
          where s.secret_hash = $1 and s.ended_at is null and s.expires_at > $2",
        secret_hash(secret),
        now
    )
    .fetch_optional(&state.db)
    .await?;
    Ok(row.map(|r| Session {
        id: r.id,
        user: UserId::from_uuid(r.user_id),
        auth_time: r.auth_time,
    }))
}

async fn issue_code(
    state: &AppState,
    issuer: &BuiltinIssuer,
    request: &AuthRequest,
    session: &Session,
    now: DateTime<Utc>,
) -> anyhow::Result<Response> {
    let code = random_secret();
    sqlx::query!(
        "insert into issuer_codes (code_hash, client_id, redirect_uri, user_id, session_id,
                                   code_challenge, nonce, scope, auth_time, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        secret_hash(&code),
        CLIENT_ID,
        request.redirect_uri,
        session.user.as_uuid(),
        session.id,
        request.code_challenge,
        request.nonce,
        request.scope,
        session.auth_time,
        now + CODE_TTL,
    )
    .execute(&state.db)
    .await?;
    Ok(redirect(
        issuer,
        &request.redirect_uri,
        &[("code", &code)],
        request.state.as_deref(),
    ))
}

async fn login_page(
    state: &AppState,
    issuer: &BuiltinIssuer,
    headers: &HeaderMap,
    request: &AuthRequest,
    now: DateTime<Utc>,
) -> anyhow::Result<Response> {
    // One CSRF cookie per browser, so sign-ins in two tabs don't undo each other.
    let csrf = cookie(headers, LOGIN_COOKIE)
        .filter(|v| v.len() == 43)
        .map(str::to_owned)
        .unwrap_or_else(random_secret);
    if !room_for_interaction(state, issuer, now).await? {
        tracing::warn!("too many sign-in requests waiting; refusing a new one");
        return Ok(refuse(
            issuer,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "temporarily_unavailable",
                description: "too many sign-ins are in progress; try again in a few minutes".into(),
            },
        ));
    }
    let interaction = Uuid::now_v7();
    sqlx::query!(
        "insert into issuer_interactions (id, csrf_hash, request, expires_at) values ($1, $2, $3, $4)",
        interaction,
        secret_hash(&csrf),
        serde_json::to_value(request)?,
        now + INTERACTION_TTL,
    )
    .execute(&state.db)
    .await?;
    let email = request.login_hint.as_deref().unwrap_or_default();
    let mut response = pages::html(
        StatusCode::OK,
        pages::login(&interaction.to_string(), email, None),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(issuer, LOGIN_COOKIE, Some(&csrf), INTERACTION_TTL, "Strict"),
    );
    Ok(response)
}

/// Whether another interaction may be stored: fewer than the limit are live, after dropping
/// the expired ones if needed.
async fn room_for_interaction(
    state: &AppState,
    issuer: &BuiltinIssuer,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let cap = issuer.limits().max_interactions;
    let count = || {
        sqlx::query_scalar!(
            r#"select count(*) as "count!" from (select 1 from issuer_interactions limit $1) i"#,
            cap
        )
        .fetch_one(&state.db)
    };
    if count().await? < cap {
        return Ok(true);
    }
    sqlx::query!(
        "delete from issuer_interactions where expires_at <= $1",
        now
    )
    .execute(&state.db)
    .await?;
    Ok(count().await? < cap)
}

/// `POST /oidc/login`: the sign-in form.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let params = Params::parse(&body);
    let address = connection.map(|Extension(ConnectInfo(addr))| addr.ip());
    login_form(&state, &issuer, &headers, &params, address)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = ?e, "sign-in failed");
            server_error()
        })
}

async fn login_form(
    state: &AppState,
    issuer: &Arc<BuiltinIssuer>,
    headers: &HeaderMap,
    params: &Params,
    address: Option<std::net::IpAddr>,
) -> anyhow::Result<Response> {
    let now = state.clock.now();
    let expired = || {
        pages::message(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in page has expired or was opened in another browser. Go back to the \
             Tallydesk app and sign in again.",
        )
    };
    let Some(interaction) = params
        .get("interaction")
        .and_then(|id| id.parse::<Uuid>().ok())
    else {
        return Ok(expired());
    };
    let Some(csrf) = cookie(headers, LOGIN_COOKIE) else {
        return Ok(expired());
    };
    let row = sqlx::query!(
        "select request from issuer_interactions where id = $1 and csrf_hash = $2 and expires_at > $3",
        interaction,
        secret_hash(csrf),
        now
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        return Ok(expired());
    };
    let request: AuthRequest = serde_json::from_value(row.request)?;

    if params.get("action") == Some("cancel") {
        sqlx::query!("delete from issuer_interactions where id = $1", interaction)
            .execute(&state.db)
            .await?;
        return Ok(refuse(
            issuer,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri,
                state: request.state,
                error: "access_denied",
                description: "the user cancelled signing in".into(),
            },
        ));
    }

    let email = params.get("email").unwrap_or_default().trim().to_owned();
    let candidate = params.get("password").unwrap_or_default();
    let again = |status: StatusCode, error: &str| {
        pages::html(
            status,
            pages::login(&interaction.to_string(), &email, Some(error)),
        )
    };
    if email.is_empty() || candidate.is_empty() {
        return Ok(again(StatusCode::OK, "Enter your email and password."));
    }
    if email.len() > MAX_EMAIL {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            &format!("An email address has at most {MAX_EMAIL} characters."),
        ));
    }
    let attempt = Attempt::new(&email, address);
    if let Err(throttled) = attempt.begin(&state.db, issuer.limits(), now).await? {
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, &throttled.message()));
    }
    let found = accounts::find_by_email(&state.db, &email).await?;
    let stored = found.as_ref().map(|f| f.password_hash.clone());
    if !password::verify(stored, candidate).await? {
        return Ok(again(StatusCode::OK, "Wrong email or password."));
    }
    let user = found
        .map(|f| f.user)
        .ok_or_else(|| anyhow::anyhow!("verified without an account"))?;
    attempt.succeeded(&state.db).await?;

    let secret = random_secret();
    let session = Session {
        id: Uuid::now_v7(),
        user,
        auth_time: now,
    };
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "insert into issuer_sessions (id, secret_hash, user_id, auth_time, expires_at)
         values ($1, $2, $3, $4, $5)",
        session.id,
        secret_hash(&secret),
        user.as_uuid(),
        now,
        now + SESSION_TTL
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("delete from issuer_interactions where id = $1", interaction)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(%user, "signed in at the built-in issuer");
    let mut response = issue_code(state, issuer, &request, &session, now).await?;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(issuer, SESSION_COOKIE, Some(&secret), SESSION_TTL, "Lax"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parameters_are_absent_and_repeats_are_noticed() {
        let p = Params::parse(b"a=1&b=&a=2&c=%20x");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None, "empty counts as absent");
        assert_eq!(p.get("c"), Some(" x"));
        assert_eq!(p.first_repeated(), Some("a"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tallydesk_session=xyz"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }
}
