//! Members of a tenant, their roles, and invitations to join.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use tallydesk_shared::activity::ActivityAction;
use tallydesk_shared::api::{CreateInvitation, ErrorCode, Invitation, Member, Page, PatchMember};
use tallydesk_shared::ticket::Email;
use tallydesk_shared::{Action, InvitationId, Role, UserId};

use super::extract::{Json, Path};
use crate::AppState;
use crate::activity::{self, NewActivity};
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::tickets::member_role;

fn parse_role(text: &str) -> ApiResult<Role> {
    text.parse()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
}

#[utoipa::path(
    get, path = "/api/v1/members", tag = "members",
    params(crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Member>)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn list(mut scope: Scope) -> ApiResult<axum::Json<Page<Member>>> {
    scope.require(Action::ViewMembers)?;
    let rows = sqlx::query!(
        "select m.user_id, u.email, u.name, m.role from memberships m join users u on u.id = m.user_id
          where m.tenant_id = $1 order by lower(coalesce(u.name, u.email, '')), m.user_id",
        scope.tenant.as_uuid()
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    scope.commit().await?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(Member {
                user_id: r.user_id.into(),
                email: r.email,
                name: r.name,
                role: parse_role(&r.role)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Refuses to leave a tenant without an admin. Locks the tenant's admin memberships first so
/// two concurrent demotions cannot both pass.
async fn keep_an_admin(scope: &mut Scope, leaving: UserId) -> ApiResult<()> {
    let admins = sqlx::query_scalar!(
        "select user_id from memberships where tenant_id = $1 and role = 'admin' for update",
        scope.tenant.as_uuid()
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    if admins.iter().all(|a| *a == leaving.as_uuid()) {
        return Err(ApiError::conflict(
            ErrorCode::LastAdmin,
            "a tenant needs at least one admin: make someone else admin first",
        ));
    }
    Ok(())
}

#[utoipa::path(
    patch, path = "/api/v1/members/{user_id}", tag = "members",
    description = "Changes a member's role (admins only). The last admin cannot be demoted (409).",
    request_body = PatchMember,
    params(("user_id" = UserId, Path), crate::http::docs::TenantHeader),
    responses((status = 200, body = Member), (status = 409, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn update(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(user): Path<UserId>,
    Json(body): Json<PatchMember>,
) -> ApiResult<axum::Json<Member>> {
    scope.require(Action::ManageMembers)?;
    let before = member_role(&mut scope, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if before == Role::Admin && body.role != Role::Admin {
        keep_an_admin(&mut scope, user).await?;
    }
    let now = state.clock.now();
    if before != body.role {
        sqlx::query!(
            "update memberships set role = $3 where tenant_id = $1 and user_id = $2",
            scope.tenant.as_uuid(),
            user.as_uuid(),
            body.role.as_str()
        )
        .execute(&mut *scope.tx)
        .await?;
        if !body.role.works_tickets() {
            // Only agents and admins hold tickets.
            sqlx::query!(
                "update tickets set assignee_id = null, updated_at = $3, version = version + 1
                  where tenant_id = $1 and assignee_id = $2",
                scope.tenant.as_uuid(),
                user.as_uuid(),
                now
            )
            .execute(&mut *scope.tx)
            .await?;
        }
        activity::record(
            &mut scope.tx,
            scope.tenant,
            scope.user,
            now,
            NewActivity::member(ActivityAction::MemberRoleChanged, user)
                .field("role")
                .before(json!({ "user_id": user, "role": before }))
                .after(json!({ "role": body.role })),
        )
        .await?;
    }
    let row = sqlx::query!(
        "select email, name from users where id = $1",
        user.as_uuid()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    scope.commit().await?;
    Ok(axum::Json(Member {
        user_id: user,
        email: row.email,
        name: row.name,
        role: body.role,
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/members/{user_id}", tag = "members",
    description = "Removes a member (admins only). The last admin cannot be removed (409).",
    params(("user_id" = UserId, Path), crate::http::docs::TenantHeader),
    responses((status = 204), (status = 409, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn remove(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(user): Path<UserId>,
) -> ApiResult<StatusCode> {
    scope.require(Action::ManageMembers)?;
    let before = member_role(&mut scope, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if before == Role::Admin {
        keep_an_admin(&mut scope, user).await?;
    }
    sqlx::query!(
        "delete from memberships where tenant_id = $1 and user_id = $2",
        scope.tenant.as_uuid(),
        user.as_uuid()
    )
    .execute(&mut *scope.tx)
    .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        state.clock.now(),
        NewActivity::member(ActivityAction::MemberRemoved, user)
            .before(json!({ "user_id": user, "role": before })),
    )
    .await?;
    scope.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/invitations", tag = "members",
    params(crate::http::docs::TenantHeader),
    responses((status = 200, body = Page<Invitation>)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn invitations(mut scope: Scope) -> ApiResult<axum::Json<Page<Invitation>>> {
    scope.require(Action::ManageInvitations)?;
    let rows = sqlx::query!(
        "select id, email, role, invited_by, created_at, accepted_at from invitations
          where tenant_id = $1 order by created_at desc, id",
        scope.tenant.as_uuid()
    )
    .fetch_all(&mut *scope.tx)
    .await?;
    scope.commit().await?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(Invitation {
                id: r.id.into(),
                email: r.email,
                role: parse_role(&r.role)?,
                invited_by: r.invited_by.into(),
                created_at: r.created_at,
                accepted_at: r.accepted_at,
                accept_url: None,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/invitations", tag = "members",
    description = "Invites an email with a role (admins only). When someone signs in with that \
        verified email, they join. When the built-in issuer is on, the response carries \
        `accept_url`, a one-time link to pass on: it lets the invitee make a Tallydesk account \
        (or confirm theirs with its password) and join, on the link's page. An account made \
        by a link does not count as having a verified email (whoever held the link made it), \
        so it joins other tenants only through their links.",
    request_body = CreateInvitation,
    params(crate::http::docs::TenantHeader),
    responses((status = 201, body = Invitation), (status = 409, body = tallydesk_shared::api::ErrorBody)),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn invite(
    State(state): State<AppState>,
    mut scope: Scope,
    Json(body): Json<CreateInvitation>,
) -> ApiResult<(StatusCode, axum::Json<Invitation>)> {
    scope.require(Action::ManageInvitations)?;
    let email = Email::parse(&body.email)?;
    // A member has this email when their issuer verified it, or when it is their Tallydesk
    // account's (any link for it would ask for that account's password).
    let already = sqlx::query_scalar!(
        "select exists(select 1 from memberships m join users u on u.id = m.user_id
                        where m.tenant_id = $1 and u.email = $2
                          and (u.email_verified
                               or exists(select 1 from local_accounts a where a.user_id = u.id)))",
        scope.tenant.as_uuid(),
        email.as_str()
    )
    .fetch_one(&mut *scope.tx)
    .await?;
    if already == Some(true) {
        return Err(ApiError::conflict(
            ErrorCode::AlreadyMember,
            "someone with this email is already a member",
        ));
    }
    let now = state.clock.now();
    let mut invitation = Invitation {
        id: InvitationId::new(),
        email: email.as_str().to_owned(),
        role: body.role,
        invited_by: scope.user,
        created_at: now,
        accepted_at: None,
        accept_url: None,
    };
    sqlx::query!(
        "insert into invitations (id, tenant_id, email, role, invited_by, created_at)
         values ($1, $2, $3, $4, $5, $6)",
        invitation.id.as_uuid(),
        scope.tenant.as_uuid(),
        invitation.email,
        invitation.role.as_str(),
        scope.user.as_uuid(),
        now
    )
    .execute(&mut *scope.tx)
    .await?;
    if let Some(issuer) = &state.issuer {
        let token = crate::issuer::random_secret();
        sqlx::query!(
            "insert into invitation_links (invitation_id, token_hash, tenant_id, email, created_at)
             values ($1, $2, $3, $4, $5)",
            invitation.id.as_uuid(),
            crate::issuer::secret_hash(&token),
            scope.tenant.as_uuid(),
            invitation.email,
            now
        )
        .execute(&mut *scope.tx)
        .await?;
        invitation.accept_url = Some(issuer.endpoint(&format!("/oidc/invitations/{token}")));
    }
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        now,
        NewActivity::tenant(ActivityAction::InvitationCreated)
            .after(json!({ "email": invitation.email, "role": invitation.role })),
    )
    .await?;
    scope.commit().await?;
    state.identities.forget_all();
    Ok((StatusCode::CREATED, axum::Json(invitation)))
}

#[utoipa::path(
    delete, path = "/api/v1/invitations/{id}", tag = "members",
    description = "Revokes a pending invitation (admins only); its link stops working. An \
        accepted invitation cannot be revoked (409): remove the member instead.",
    params(("id" = InvitationId, Path), crate::http::docs::TenantHeader),
    responses(
        (status = 204),
        (status = 404, body = tallydesk_shared::api::ErrorBody),
        (status = 409, body = tallydesk_shared::api::ErrorBody)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, err)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    mut scope: Scope,
    Path(id): Path<InvitationId>,
) -> ApiResult<StatusCode> {
    scope.require(Action::ManageInvitations)?;
    let row = sqlx::query!(
        "select email, role, accepted_at from invitations where id = $1 and tenant_id = $2 for update",
        id.as_uuid(),
        scope.tenant.as_uuid()
    )
    .fetch_optional(&mut *scope.tx)
    .await?
    .ok_or_else(|| ApiError::not_found("invitation"))?;
    if row.accepted_at.is_some() {
        return Err(ApiError::conflict(
            ErrorCode::InvitationAccepted,
            "this invitation was already accepted: remove the member instead",
        ));
    }
    sqlx::query!("delete from invitations where id = $1", id.as_uuid())
        .execute(&mut *scope.tx)
        .await?;
    activity::record(
        &mut scope.tx,
        scope.tenant,
        scope.user,
        state.clock.now(),
        NewActivity::tenant(ActivityAction::InvitationRevoked)
            .before(json!({ "email": row.email, "role": row.role })),
    )
    .await?;
    scope.commit().await?;
    state.identities.forget_all();
    Ok(StatusCode::NO_CONTENT)
}
