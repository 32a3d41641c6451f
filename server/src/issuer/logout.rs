//! `/oidc/end_session`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! Ends the browser's issuer session and revokes the grants (refresh-token families) of the
//! session named by `id_token_hint` — or, for a hint without `sid`, all of that user's grants
//! of the client. Then it sends the browser back to a loopback `post_logout_redirect_uri` with
//! `state`, or shows "You are signed out".

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::authorize::{Params, SESSION_COOKIE, cookie, see_other, server_error, set_cookie};
use super::{BuiltinIssuer, CLIENT_ID, issuer_of, pages, secret_hash};
use crate::AppState;

pub async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(
        state,
        headers,
        Params::parse(query.unwrap_or_default().as_bytes()),
    )
    .await
}

pub async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(state, headers, Params::parse(&body)).await
}

/// What a valid `id_token_hint` says: whose session to end.
struct Hint {
    user: Uuid,
    session: Option<Uuid>,
}

#[tracing::instrument(skip_all)]
async fn end_session(state: AppState, headers: HeaderMap, params: Params) -> Response {
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer.clone(),
        Err(response) => return response,
    };
    let bad = |text: &str| pages::message(StatusCode::BAD_REQUEST, "Cannot sign out", text);
    if params.get("client_id").is_some_and(|c| c != CLIENT_ID) {
        return bad("The sign-out request comes from an application this server does not know.");
    }
    let now = state.clock.now();
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match read_hint(&issuer, token, now).await {
            Some(hint) => Some(hint),
            None => {
                return bad("The sign-out request carries an ID token this server did not issue.");
            }
        },
    };
    let redirect = params.get("post_logout_redirect_uri");
    if let Some(uri) = redirect
        && !super::is_loopback_logout_redirect(uri)
    {
        return bad(
            "The sign-out request asks to return to an address this server does not allow.",
        );
    }
    if redirect.is_some() && hint.is_none() && params.get("client_id").is_none() {
        return bad("The sign-out request must name its client (id_token_hint or client_id).");
    }

    let ended = async {
        let mut tx = state.db.begin().await?;
        if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
            let ended = sqlx::query_scalar!(
                "update issuer_sessions set ended_at = $2
                  where secret_hash = $1 and ended_at is null returning id",
                secret_hash(secret),
                now
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(session) = ended {
                revoke_session_grants(&mut tx, session, now).await?;
            }
        }
        match hint {
            Some(Hint {
                session: Some(session),
                user,
            }) => {
                sqlx::query!(
                    "update issuer_sessions set ended_at = $3
                      where id = $1 and user_id = $2 and ended_at is null",
                    session,
                    user,
                    now
                )
                .execute(&mut *tx)
                .await?;
                revoke_session_grants(&mut tx, session, now).await?;
            }
            Some(Hint {
                session: None,
                user,
            }) => {
                sqlx::query!(
                    "update issuer_grants set revoked_at = $3
                      where user_id = $1 and client_id = $2 and revoked_at is null",
                    user,
                    CLIENT_ID,
                    now
                )
                .execute(&mut *tx)
                .await?;
            }
            None => {}
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = ended {
        tracing::error!(error = ?e, "ending a session failed");
        return server_error();
    }

    let mut response = match redirect.and_then(|uri| reqwest::Url::parse(uri).ok()) {
        Some(mut url) => {
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            see_other(url.as_str())
        }
        None => pages::message(
            StatusCode::OK,
            "You are signed out",
            "You are signed out of your Tallydesk account. You can close this window.",
        ),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &issuer,
            SESSION_COOKIE,
            None,
            chrono::Duration::zero(),
            "Lax",
        ),
    );
    response
}

async fn revoke_session_grants(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    session: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update issuer_grants set revoked_at = $2 where session_id = $1 and revoked_at is null",
        session,
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Reads an ID token this issuer signed, expired or not (a hint may be old), for this client.
async fn read_hint(issuer: &BuiltinIssuer, token: &str, now: DateTime<Utc>) -> Option<Hint> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = issuer
        .keys()
        .verification_key(header.kid.as_deref(), header.alg, now)
        .await
        .ok()?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[issuer.url()]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).ok()?;
    let user = data.claims.get("sub")?.as_str()?.parse::<Uuid>().ok()?;
    let session = data
        .claims
        .get("sid")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok());
    Some(Hint { user, session })
}
