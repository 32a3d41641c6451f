//! The server calls the desktop makes on the signed-in user's behalf: sync, SLA settings,
//! receipt blobs, live events, members and invitations, the password.

use tallydesk_shared::api::{ChangePassword, Invitation, Member};
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::sync::{Cursor, PullResponse, PushRequest, PushResponse};
use tallydesk_shared::{CalendarId, InvitationId, Role, SlaPolicyId, UserId};

use super::{Connection, State, not_signed_in};
use crate::error::{DeskError, DeskResult, ErrorCode};

impl Connection {
    /// One page of the active tenant's change log after `cursor`.
    pub async fn sync_pull(&self, cursor: Cursor, limit: u32) -> DeskResult<PullResponse> {
        self.call(
            move |api, auth| async move { api.sync_pull(&auth, cursor, limit).await },
            true,
        )
        .await
    }

    /// Pushes queued intents to the active tenant.
    pub async fn sync_push(&self, request: &PushRequest) -> DeskResult<PushResponse> {
        self.call(
            |api, auth| {
                let request = request.clone();
                async move { api.sync_push(&auth, &request).await }
            },
            true,
        )
        .await
    }

    /// Creates or replaces an SLA policy of the active tenant.
    pub async fn save_sla_policy(
        &self,
        id: Option<SlaPolicyId>,
        input: &PolicyInput,
        version: Option<i64>,
    ) -> DeskResult<Policy> {
        self.call(
            |api, auth| async move { api.save_sla_policy(&auth, id, input, version).await },
            true,
        )
        .await
    }

    pub async fn delete_sla_policy(&self, id: SlaPolicyId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.delete_sla_policy(&auth, id).await },
            true,
        )
        .await
    }

    /// Creates or replaces a business calendar of the active tenant.
    pub async fn save_calendar(
        &self,
        id: Option<CalendarId>,
        input: &CalendarInput,
        version: Option<i64>,
    ) -> DeskResult<CalendarRecord> {
        self.call(
            |api, auth| async move { api.save_calendar(&auth, id, input, version).await },
            true,
        )
        .await
    }

    pub async fn delete_calendar(&self, id: CalendarId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.delete_calendar(&auth, id).await },
            true,
        )
        .await
    }

    /// Uploads a receipt image to the active tenant's blob store.
    pub async fn put_blob(&self, sha256: &str, media_type: &str, bytes: Vec<u8>) -> DeskResult<()> {
        self.call(
            |api, auth| {
                let bytes = bytes.clone();
                async move { api.put_blob(&auth, sha256, media_type, bytes).await }
            },
            true,
        )
        .await
    }

    /// A receipt image from the active tenant's blob store, if this user may see it.
    pub async fn get_blob(&self, sha256: &str) -> DeskResult<Option<Vec<u8>>> {
        self.call(
            |api, auth| async move { api.get_blob(&auth, sha256).await },
            true,
        )
        .await
    }

    /// The active tenant's live event stream (Server-Sent Events), opened.
    pub async fn open_events(&self) -> DeskResult<reqwest::Response> {
        self.call(|api, auth| async move { api.events(&auth).await }, true)
            .await
    }

    /// The active tenant's members.
    pub async fn members(&self) -> DeskResult<Vec<Member>> {
        self.call(|api, auth| async move { api.members(&auth).await }, true)
            .await
    }

    pub async fn set_member_role(&self, user: UserId, role: Role) -> DeskResult<Member> {
        let member = self
            .call(
                |api, auth| async move { api.set_member_role(&auth, user, role).await },
                true,
            )
            .await?;
        self.after_member_change(user).await;
        Ok(member)
    }

    pub async fn remove_member(&self, user: UserId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.remove_member(&auth, user).await },
            true,
        )
        .await?;
        self.after_member_change(user).await;
        Ok(())
    }

    /// Changing one's own membership changes what one may do here.
    pub(super) async fn after_member_change(&self, user: UserId) {
        let me = matches!(self.state(), State::SignedIn { session, .. } if session.user.id == user);
        if me && let Err(e) = self.refresh_me().await {
            tracing::info!(error = %e, "who I am could not be refreshed");
        }
    }

    pub async fn invitations(&self) -> DeskResult<Vec<Invitation>> {
        self.call(
            |api, auth| async move { api.invitations(&auth).await },
            true,
        )
        .await
    }

    pub async fn invite(&self, email: &str, role: Role) -> DeskResult<Invitation> {
        let email = email.trim().to_owned();
        self.call(
            |api, auth| {
                let email = email.clone();
                async move { api.invite(&auth, email, role).await }
            },
            true,
        )
        .await
    }

    pub async fn revoke_invitation(&self, id: InvitationId) -> DeskResult<()> {
        self.call(
            |api, auth| async move { api.revoke_invitation(&auth, id).await },
            true,
        )
        .await
    }

    /// Changes the password of an account the server keeps (its built-in issuer).
    pub async fn change_password(&self, current: &str, new: &str) -> DeskResult<()> {
        match self.state() {
            State::SignedIn { session, .. } if !session.can_change_password => {
                return Err(DeskError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "Your password is kept by {}; change it there.",
                        session.provider.name
                    ),
                ));
            }
            State::SignedIn { .. } => {}
            _ => return Err(not_signed_in()),
        }
        let change = ChangePassword {
            current_password: current.to_owned(),
            new_password: new.to_owned(),
        };
        self.call(
            |api, auth| {
                let change = change.clone();
                async move { api.change_password(&auth, &change).await }
            },
            false,
        )
        .await
    }
}
