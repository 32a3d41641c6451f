//! Signing in: the public auth configuration, and the local accounts of the built-in issuer
//! (made by admins; passwords changed by their owners).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use tallydesk_shared::Action;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{
    AuthConfig, AuthProvider, ChangePassword, CreateAccount, ErrorCode, Member,
};
use tallydesk_shared::ticket::Email;

use super::extract::Json;
use crate::AppState;
use crate::activity::{self, NewActivity};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::issuer::accounts::{self, NewAccount};
use crate::issuer::invitations::person_name;
use crate::issuer::password::{self, Password};
use crate::issuer::throttle::Attempt;
use crate::issuer::{self, BuiltinIssuer};

#[utoipa::path(
    get, path = "/api/v1/auth/config", tag = "identity",
    description = "How to sign in (public, no token): the OpenID Connect providers whose access \
        tokens this server accepts, the built-in issuer first when it is on. Run the \
        authorization code flow with PKCE (S256) against one, as a public client.",
    responses((status = 200, body = AuthConfig))
)]
pub async fn auth_config(State(state): State<AppState>) -> axum::Json<AuthConfig> {
    let audience = state.verifier.audience().to_owned();
    let mut providers = Vec::new();
    if let Some(builtin) = &state.issuer {
        providers.push(AuthProvider {
            name: issuer::PROVIDER_NAME.to_owned(),
            issuer: builtin.url().to_owned(),
            client_id: issuer::CLIENT_ID.to_owned(),
            scopes: issuer::SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            audience: builtin.audience().to_owned(),
            builtin: true,
        });
    }
    let builtin_url = state.issuer.as_ref().map(|i| i.url());
    for url in state.verifier.issuers() {
        if Some(url.as_str()) == builtin_url {
            continue;
        }
        let name = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| url.clone());
        providers.push(AuthProvider {
            name,
            issuer: url.clone(),
            client_id: state.external_client.client_id.clone(),
            scopes: state.external_client.scopes.clone(),
            audience: audience.clone(),
            builtin: false,
        });
    }
    axum::Json(AuthConfig { providers })
}

fn builtin(state: &AppState) -> ApiResult<&BuiltinIssuer> {
    state.issuer.as_deref().ok_or_else(|| {
        ApiError::conflict(
            ErrorCode::BuiltinIssuerOff,
            "this server's built-in issuer is off, so it keeps no accounts: invite people instead",
        )
    })
}

#[utoipa::path(
    post, path = "/api/v1/accounts", tag = "members",
    description = "Creates a Tallydesk account (held by the server's built-in issuer) and makes \
        it a member of this tenant with the role given (admins only). The password must have at \
        least 10 characters and not be easy to guess (422 naming the field); an email that \
        already has an account answers 409.",
    request_body = CreateAccount,
    params(crate::http::docs::TenantHeader),
    responses(
        (status = 201, body = Member),
        (status = 409, body = tallydesk_shared::api::ErrorBody),
        (status = 422, body = tallydesk_shared::api::ErrorBody)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn create(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<CreateAccount>,
) -> ApiResult<(StatusCode, axum::Json<Member>)> {
    scope.require(Action::ManageMembers)?;
    let issuer = builtin(&state)?;
    let email = Email::parse(&body.email)?;
    let name = person_name(&body.name)?;
    let password = Password::parse("password", &body.password, email.as_str())?;
    let hash = password::hash(&password).await?;
    let now = state.clock.now();
    let user = accounts::create(
        &mut scope.tx,
        NewAccount {
            issuer: issuer.url(),
            email: &email,
            name: Some(&name),
            // An admin's say-so does not prove the address: invitations elsewhere stay unclaimed.
            email_verified: false,
            password_hash: hash,
        },
        now,
    )
    .await?;
    sqlx::query!(
        "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4)",
        scope.tenant.as_uuid(),
        user.as_uuid(),
        body.role.as_str(),
        now
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::member(ActivityAction::MemberAccountCreated, user)
            .after(json!({ "email": email.as_str(), "role": body.role })),
    )
    .await?;
    scope.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Member {
            user_id: user,
            email: Some(email.as_str().to_owned()),
            name: Some(name),
            role: body.role,
        }),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/me/password", tag = "identity",
    description = "Changes the caller's password (Tallydesk accounts only: 403 for accounts of \
        other identity providers, or when the current password is wrong). Other sign-ins of the \
        account end; the one making the request stays.",
    request_body = ChangePassword,
    responses(
        (status = 204),
        (status = 403, body = tallydesk_shared::api::ErrorBody),
        (status = 422, body = tallydesk_shared::api::ErrorBody)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    let not_local = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::NotALocalAccount,
            "your account belongs to another identity provider: change your password there",
        )
    };
    let issuer = state.issuer.as_deref().ok_or_else(not_local)?;
    if caller.claims.issuer != issuer.url() {
        return Err(not_local());
    }
    let stored = accounts::password_hash_of(&state.db, caller.user)
        .await?
        .ok_or_else(not_local)?;
    let email = caller.claims.email.clone().unwrap_or_default();
    let now = state.clock.now();
    let attempt = Attempt::new(&format!("user:{}", caller.user), None);
    if let Err(throttled) = attempt.begin(&state.db, issuer.limits(), now).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyAttempts,
            throttled.message(),
        ));
    }
    if !password::verify(Some(stored), &body.current_password).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WrongPassword,
            "current_password is not your password",
        )
        .on_field("current_password"));
    }
    attempt.succeeded(&state.db).await?;
    let new = Password::parse("new_password", &body.new_password, &email)?;
    let keep = caller
        .claims
        .grant
        .as_deref()
        .and_then(|g| g.parse::<uuid::Uuid>().ok());
    let mut tx = state.db.begin().await?;
    accounts::set_password(&mut tx, caller.user, &new, now).await?;
    let revoked = accounts::revoke_grants(&mut *tx, caller.user, keep, now).await?;
    accounts::end_sessions(&mut *tx, caller.user, now).await?;
    tx.commit().await?;
    tracing::info!(user = %caller.user, revoked, "password changed; other sign-ins ended");
    Ok(StatusCode::NO_CONTENT)
}
