//! A small typed client of the Tallydesk server's API: sign-in settings, who I am, members,
//! invitations and passwords. Server errors (`{code, message}`) come through as [`DeskError`]s.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tallydesk_shared::api::{
    AuthConfig, ChangePassword, CreateInvitation, ErrorBody, Invitation, Me, Member, Page,
    PatchCalendar, PatchMember, PatchSlaPolicy,
};
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::sync::{Cursor, PullResponse, PushRequest, PushResponse, SYNC_PROTOCOL};
use tallydesk_shared::{CalendarId, InvitationId, Role, SlaPolicyId, TenantId, UserId};

use crate::error::{DeskError, DeskResult, ErrorCode};

/// The header that picks the tenant of a request (the server's `TENANT_HEADER`).
pub const TENANT_HEADER: &str = "x-tenant-id";

/// A server's base URL, parsed: `http(s)://host[:port][/path]` with no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    pub fn parse(text: &str) -> DeskResult<ServerUrl> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let bad = |why: &str| {
            DeskError::invalid(
                "url",
                format!("{why}: enter an address like https://helpdesk.example.com"),
            )
        };
        if text.is_empty() {
            return Err(bad("the server address is empty"));
        }
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| bad(&format!("{text:?} is not a web address ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(&format!("{text:?} is not an http or https address")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the server address has no ? or # part"));
        }
        Ok(ServerUrl(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.0)
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a call needs beyond its path and body: the access token and the tenant.
pub struct Auth {
    pub token: String,
    pub tenant: Option<TenantId>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The server's API, over an HTTP client that does not follow redirects.
#[derive(Clone, Debug)]
pub struct ServerApi {
    http: reqwest::Client,
    url: ServerUrl,
}

fn unreachable(url: &ServerUrl, e: &reqwest::Error) -> DeskError {
    let why = if e.is_timeout() {
        "it did not answer in time".to_owned()
    } else if e.is_connect() {
        "no connection could be made".to_owned()
    } else {
        e.to_string()
    };
    DeskError::new(
        ErrorCode::ServerUnreachable,
        format!(
            "The server at {url} could not be reached ({why}). Check the address and your network connection, then try again."
        ),
    )
}

impl ServerApi {
    pub fn new(http: reqwest::Client, url: ServerUrl) -> ServerApi {
        ServerApi { http, url }
    }

    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// The server's public sign-in settings (`GET /auth/config`).
    pub async fn auth_config(&self) -> DeskResult<AuthConfig> {
        let not_tallydesk = || {
            DeskError::new(
                ErrorCode::NotATallydeskServer,
                format!(
                    "{} does not look like a Tallydesk server (it has no sign-in settings at /api/v1/auth/config). Check the address.",
                    self.url
                ),
            )
        };
        let response = self
            .http
            .get(self.url.api("/auth/config"))
            .send()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        if response.status().is_server_error() {
            return Err(DeskError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "The server at {} failed ({}). Try again later, or tell its administrator.",
                    self.url,
                    response.status()
                ),
            ));
        }
        if !response.status().is_success() {
            return Err(not_tallydesk());
        }
        let config: AuthConfig = response.json().await.map_err(|_| not_tallydesk())?;
        if config.providers.is_empty() {
            return Err(DeskError::new(
                ErrorCode::NotATallydeskServer,
                format!(
                    "The server at {} offers no way to sign in. Ask its administrator to set up an identity provider.",
                    self.url
                ),
            ));
        }
        Ok(config)
    }

    pub async fn me(&self, auth: &Auth) -> DeskResult<Me> {
        self.call(Method::GET, "/me", auth, None::<&()>).await
    }

    pub async fn members(&self, auth: &Auth) -> DeskResult<Vec<Member>> {
        let page: Page<Member> = self
            .call(Method::GET, "/members", auth, None::<&()>)
            .await?;
        Ok(page.items)
    }

    pub async fn set_member_role(
        &self,
        auth: &Auth,
        user: UserId,
        role: Role,
    ) -> DeskResult<Member> {
        self.call(
            Method::PATCH,
            &format!("/members/{user}"),
            auth,
            Some(&PatchMember { role }),
        )
        .await
    }

    pub async fn remove_member(&self, auth: &Auth, user: UserId) -> DeskResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/members/{user}"),
            auth,
            None::<&()>,
        )
        .await
    }

    pub async fn invitations(&self, auth: &Auth) -> DeskResult<Vec<Invitation>> {
        let page: Page<Invitation> = self
            .call(Method::GET, "/invitations", auth, None::<&()>)
            .await?;
        Ok(page.items)
    }

    pub async fn invite(&self, auth: &Auth, email: String, role: Role) -> DeskResult<Invitation> {
        self.call(
            Method::POST,
            "/invitations",
            auth,
            Some(&CreateInvitation { email, role }),
        )
        .await
    }

    pub async fn revoke_invitation(&self, auth: &Auth, id: InvitationId) -> DeskResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/invitations/{id}"),
            auth,
            None::<&()>,
        )
        .await
    }

    pub async fn change_password(&self, auth: &Auth, change: &ChangePassword) -> DeskResult<()> {
        self.call_empty(Method::POST, "/me/password", auth, Some(change))
            .await
    }

    /// One page of the tenant's change log after `cursor`.
    pub async fn sync_pull(
        &self,
        auth: &Auth,
        cursor: Cursor,
        limit: u32,
    ) -> DeskResult<PullResponse> {
        self.call(
            Method::GET,
            &format!("/sync/pull?cursor={cursor}&limit={limit}"),
            auth,
            None::<&()>,
        )
        .await
    }

    /// Sends queued intents; resending one returns its first answer.
    pub async fn sync_push(&self, auth: &Auth, request: &PushRequest) -> DeskResult<PushResponse> {
        self.call(Method::POST, "/sync/push", auth, Some(request))
            .await
    }

    /// Creates an SLA policy (`id` none) or replaces one read at `version`.
    pub async fn save_sla_policy(
        &self,
        auth: &Auth,
        id: Option<SlaPolicyId>,
        input: &PolicyInput,
        version: Option<i64>,
    ) -> DeskResult<Policy> {
        match (id, version) {
            (None, _) => {
                self.call(Method::POST, "/sla-policies", auth, Some(input))
                    .await
            }
            (Some(id), version) => {
                let version = match version {
                    Some(v) => v,
                    None => self.sla_policy(auth, id).await?.version,
                };
                let body = PatchSlaPolicy {
                    policy: input.clone(),
                    version,
                };
                self.call(
                    Method::PATCH,
                    &format!("/sla-policies/{id}"),
                    auth,
                    Some(&body),
                )
                .await
            }
        }
    }

    async fn sla_policy(&self, auth: &Auth, id: SlaPolicyId) -> DeskResult<Policy> {
        self.call(
            Method::GET,
            &format!("/sla-policies/{id}"),
            auth,
            None::<&()>,
        )
        .await
    }

    pub async fn delete_sla_policy(&self, auth: &Auth, id: SlaPolicyId) -> DeskResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/sla-policies/{id}"),
            auth,
            None::<&()>,
        )
        .await
    }

    /// Creates a business calendar (`id` none) or replaces one read at `version`.
    pub async fn save_calendar(
        &self,
        auth: &Auth,
        id: Option<CalendarId>,
        input: &CalendarInput,
        version: Option<i64>,
    ) -> DeskResult<CalendarRecord> {
        match id {
            None => {
                self.call(Method::POST, "/calendars", auth, Some(input))
                    .await
            }
            Some(id) => {
                let version = match version {
                    Some(v) => v,
                    None => {
                        let current: CalendarRecord = self
                            .call(Method::GET, &format!("/calendars/{id}"), auth, None::<&()>)
                            .await?;
                        current.version
                    }
                };
                let body = PatchCalendar {
                    calendar: input.clone(),
                    version,
                };
                self.call(
                    Method::PATCH,
                    &format!("/calendars/{id}"),
                    auth,
                    Some(&body),
                )
                .await
            }
        }
    }

    pub async fn delete_calendar(&self, auth: &Auth, id: CalendarId) -> DeskResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/calendars/{id}"),
            auth,
            None::<&()>,
        )
        .await
    }

    /// Uploads a receipt image under its SHA-256 (idempotent: the same bytes again change
    /// nothing).
    pub async fn put_blob(
        &self,
        auth: &Auth,
        sha256: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> DeskResult<()> {
        let response = self
            .request(Method::PUT, &format!("/blobs/{sha256}"), auth)
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(bytes)
            .send()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        checked(&self.url, response).await.map(drop)
    }

    /// A receipt image's bytes; `None` while the server has none this user may see.
    pub async fn get_blob(&self, auth: &Auth, sha256: &str) -> DeskResult<Option<Vec<u8>>> {
        let response = self
            .request(Method::GET, &format!("/blobs/{sha256}"), auth)
            .send()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = checked(&self.url, response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// The tenant's live events (`GET /events`, Server-Sent Events), open until either side
    /// ends it: over a client without an overall time limit.
    pub async fn events(&self, auth: &Auth) -> DeskResult<reqwest::Response> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| DeskError::new(ErrorCode::Internal, format!("no HTTP client: {e}")))?;
        let mut request = http
            .get(self.url.api("/events"))
            .bearer_auth(&auth.token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(tenant) = auth.tenant {
            request = request.header(TENANT_HEADER, tenant.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        checked(&self.url, response).await
    }

    fn request(&self, method: Method, path: &str, auth: &Auth) -> RequestBuilder {
        let mut request = self
            .http
            .request(method, self.url.api(path))
            .bearer_auth(&auth.token)
            .header("x-tallydesk-sync", SYNC_PROTOCOL.to_string());
        if let Some(tenant) = auth.tenant {
            request = request.header(TENANT_HEADER, tenant.to_string());
        }
        request
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<&impl Serialize>,
    ) -> DeskResult<reqwest::Response> {
        let mut request = self.request(method, path, auth);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.url, &e))?;
        checked(&self.url, response).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<&impl Serialize>,
    ) -> DeskResult<T> {
        let response = self.send(method, path, auth, body).await?;
        response.json().await.map_err(|e| {
            DeskError::new(
                ErrorCode::NotATallydeskServer,
                format!("The server at {} answered {path} in a form this app does not understand ({e}). Is the app up to date?", self.url),
            )
        })
    }

    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<&impl Serialize>,
    ) -> DeskResult<()> {
        self.send(method, path, auth, body).await.map(drop)
    }
}

/// A successful response as it is; a failed one as the server's error.
async fn checked(url: &ServerUrl, response: reqwest::Response) -> DeskResult<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Option<ErrorBody> = response.json().await.ok();
    Err(server_error(url, status, body))
}

/// The server's `{code, message, field?}` as the UI's error, one to one. Only what the desktop
/// must tell apart itself is named here: a server failing (5xx) is one it cannot reach for now, and
/// a refused sign-in (401) is a session that has ended.
fn server_error(url: &ServerUrl, status: StatusCode, body: Option<ErrorBody>) -> DeskError {
    let Some(body) = body else {
        return DeskError::new(
            if status.is_server_error() {
                ErrorCode::ServerUnreachable
            } else {
                ErrorCode::NotATallydeskServer
            },
            format!(
                "The server at {url} answered {status}. Try again later, or tell its administrator."
            ),
        );
    };
    let mut error = DeskError::from(body);
    if status == StatusCode::UNAUTHORIZED {
        error.code = ErrorCode::SessionExpired;
    } else if status.is_server_error() {
        error.code = ErrorCode::ServerUnreachable;
    }
    error
}
