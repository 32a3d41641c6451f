//! Tauri commands: one-line adapters over the workspace. Errors reach the UI as
//! `{code, message, field}`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_desktop_core::DeskError;
use tallydesk_desktop_core::account::{Account, ServerInfo};
use tallydesk_desktop_core::expenses::{
    ClaimRef, ClaimTarget, Expense, ExpenseInput, ExpenseList, ExpenseQuery, ExpenseReview,
};
use tallydesk_desktop_core::model::{
    CustomerDetail, Person, TicketDetail, TicketPage, TicketQuery, WorkspaceInfo,
};
use tallydesk_desktop_core::receipts::{ScanEvent, Scanner};
use tallydesk_desktop_core::sync::{Rejection, SyncStatus, settings};
use tallydesk_shared::api::{
    Activity, Comment, CreateCustomer, CreateTicket, Customer, Invitation, Member, PatchCustomer,
    PatchTicket, Ticket,
};
use tallydesk_shared::sla::{CalendarInput, CalendarRecord, Policy, PolicyInput};
use tallydesk_shared::{
    CalendarId, CustomerId, ExpenseId, InvitationId, Role, SlaPolicyId, Status, TenantId, TicketId,
    UserId,
};
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use crate::account::AccountSlot;
use crate::alerts::{Alerts, Mute};
use crate::prefs::{self, Preferences};
use crate::sync::SyncSlot;
use crate::workspace::{DataDir, Workspace};

type Result<T> = std::result::Result<T, DeskError>;

/// Opens the workspace; a damaged or busy database is reported, never replaced silently.
#[tauri::command]
#[specta::specta]
pub async fn open_workspace(
    dir: State<'_, DataDir>,
    workspace: State<'_, Workspace>,
) -> Result<WorkspaceInfo> {
    workspace.open(&dir.0).await?.info().await
}

/// What starting afresh did: the new workspace, and where the old database file was kept.
#[derive(Debug, Serialize, Deserialize, specta::Type)]
pub struct FreshStart {
    pub info: WorkspaceInfo,
    pub kept_file: String,
}

#[tauri::command]
#[specta::specta]
pub async fn start_fresh_workspace(
    dir: State<'_, DataDir>,
    workspace: State<'_, Workspace>,
    account: State<'_, AccountSlot>,
) -> Result<FreshStart> {
    let (desk, kept) = workspace.start_fresh(&dir.0).await?;
    account.forget().await;
    Ok(FreshStart {
        info: desk.info().await?,
        kept_file: kept.display().to_string(),
    })
}

#[tauri::command]
#[specta::specta]
pub async fn workspace_info(workspace: State<'_, Workspace>) -> Result<WorkspaceInfo> {
    workspace.desk().await?.info().await
}

#[tauri::command]
#[specta::specta]
pub async fn list_tickets(
    workspace: State<'_, Workspace>,
    query: TicketQuery,
) -> Result<TicketPage> {
    workspace.desk().await?.list_tickets(&query).await
}

#[tauri::command]
#[specta::specta]
pub async fn get_ticket(workspace: State<'_, Workspace>, id: TicketId) -> Result<TicketDetail> {
    workspace.desk().await?.ticket(id).await
}

/// Opening a ticket in the UI: may start work on it (see the workflow).
#[tauri::command]
#[specta::specta]
pub async fn view_ticket(workspace: State<'_, Workspace>, id: TicketId) -> Result<TicketDetail> {
    workspace.desk().await?.view_ticket(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_ticket(workspace: State<'_, Workspace>, input: CreateTicket) -> Result<Ticket> {
    workspace.desk().await?.create_ticket(&input).await
}

#[tauri::command]
#[specta::specta]
pub async fn update_ticket(
    workspace: State<'_, Workspace>,
    id: TicketId,
    patch: PatchTicket,
) -> Result<Ticket> {
    workspace.desk().await?.update_ticket(id, &patch).await
}

#[tauri::command]
#[specta::specta]
pub async fn transition_ticket(
    workspace: State<'_, Workspace>,
    id: TicketId,
    to: Status,
    reason: Option<String>,
) -> Result<Ticket> {
    workspace
        .desk()
        .await?
        .transition(id, to, reason.as_deref())
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_ticket(workspace: State<'_, Workspace>, id: TicketId) -> Result<()> {
    workspace.desk().await?.delete_ticket(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_comments(workspace: State<'_, Workspace>, id: TicketId) -> Result<Vec<Comment>> {
    workspace.desk().await?.comments(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn add_comment(
    workspace: State<'_, Workspace>,
    id: TicketId,
    body: String,
    internal: bool,
) -> Result<Comment> {
    workspace
        .desk()
        .await?
        .add_comment(id, &body, internal)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn ticket_activity(
    workspace: State<'_, Workspace>,
    id: TicketId,
) -> Result<Vec<Activity>> {
    workspace.desk().await?.activity(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_people(workspace: State<'_, Workspace>) -> Result<Vec<Person>> {
    workspace.desk().await?.people().await
}

#[tauri::command]
#[specta::specta]
pub async fn list_customers(
    workspace: State<'_, Workspace>,
    search: Option<String>,
) -> Result<Vec<Customer>> {
    workspace.desk().await?.customers(search.as_deref()).await
}

#[tauri::command]
#[specta::specta]
pub async fn get_customer(
    workspace: State<'_, Workspace>,
    id: CustomerId,
) -> Result<CustomerDetail> {
    workspace.desk().await?.customer(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn create_customer(
    workspace: State<'_, Workspace>,
    input: CreateCustomer,
) -> Result<Customer> {
    workspace.desk().await?.create_customer(&input).await
}

#[tauri::command]
#[specta::specta]
pub async fn update_customer(
    workspace: State<'_, Workspace>,
    id: CustomerId,
    patch: PatchCustomer,
) -> Result<Customer> {
    workspace.desk().await?.update_customer(id, &patch).await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_customer(workspace: State<'_, Workspace>, id: CustomerId) -> Result<()> {
    workspace.desk().await?.delete_customer(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn remove_demo_data(workspace: State<'_, Workspace>) -> Result<()> {
    workspace.desk().await?.remove_demo_data().await
}

#[tauri::command]
#[specta::specta]
pub fn get_preferences<R: Runtime>(app: AppHandle<R>) -> Result<Preferences> {
    prefs::load(&app)
}

#[tauri::command]
#[specta::specta]
pub fn set_preferences<R: Runtime>(
    app: AppHandle<R>,
    preferences: Preferences,
) -> Result<Preferences> {
    prefs::save(&app, preferences)
}

#[derive(Debug, Serialize, Deserialize, specta::Type)]
pub struct AppInfo {
    pub version: String,
    pub data_dir: String,
}

#[tauri::command]
#[specta::specta]
pub fn app_info<R: Runtime>(app: AppHandle<R>, dir: State<'_, DataDir>) -> Result<AppInfo> {
    Ok(AppInfo {
        version: app.package_info().version.to_string(),
        data_dir: dir.0.display().to_string(),
    })
}

/// The UI calls this once its first screen is interactive, with its milestones on the way there
/// timed on its clock, which reads `now_ms` at the call; startup figures are read from it.
#[tauri::command]
#[specta::specta]
pub fn ui_ready(milestones: Vec<crate::startup::UiMilestone>, now_ms: u32) {
    crate::startup::interactive(&milestones, now_ms);
}

/// Reads receipt files and folders into draft expenses, reporting each file's progress.
#[tauri::command]
#[specta::specta]
pub async fn scan_receipts(
    workspace: State<'_, Workspace>,
    scanner: State<'_, Scanner>,
    paths: Vec<String>,
    progress: Channel<ScanEvent>,
) -> Result<()> {
    let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
    let desk = workspace.desk().await?;
    scanner
        .scan(&desk, &paths, |event| {
            if let Err(e) = progress.send(event) {
                tracing::warn!(error = %e, "scan progress did not reach the window");
            }
        })
        .await;
    Ok(())
}

/// The system's file chooser for receipts (or folders of them); empty when cancelled.
#[tauri::command]
#[specta::specta]
pub async fn pick_receipts<R: Runtime>(app: AppHandle<R>, folders: bool) -> Vec<String> {
    crate::receipts::pick(&app, folders).await
}

#[tauri::command]
#[specta::specta]
pub async fn get_expense(workspace: State<'_, Workspace>, id: ExpenseId) -> Result<ExpenseReview> {
    workspace.desk().await?.expense(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn save_draft(
    workspace: State<'_, Workspace>,
    id: ExpenseId,
    input: ExpenseInput,
) -> Result<Expense> {
    workspace.desk().await?.update_draft(id, &input).await
}

#[tauri::command]
#[specta::specta]
pub async fn submit_expense(
    workspace: State<'_, Workspace>,
    id: ExpenseId,
    input: ExpenseInput,
    target: ClaimTarget,
) -> Result<Expense> {
    workspace
        .desk()
        .await?
        .submit_expense(id, &input, &target)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn decide_expense(
    workspace: State<'_, Workspace>,
    id: ExpenseId,
    approve: bool,
    note: Option<String>,
    version: i32,
) -> Result<Expense> {
    let desk = workspace.desk().await?;
    desk.decide_expense(id, approve, note.as_deref(), version.into())
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn discard_draft(workspace: State<'_, Workspace>, id: ExpenseId) -> Result<()> {
    workspace.desk().await?.discard_draft(id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_expenses(
    workspace: State<'_, Workspace>,
    query: ExpenseQuery,
) -> Result<ExpenseList> {
    workspace.desk().await?.list_expenses(&query).await
}

/// Writes the listed expenses to a CSV file the person picks; `null` when they cancel.
#[tauri::command]
#[specta::specta]
pub async fn export_expenses_csv<R: Runtime>(
    app: AppHandle<R>,
    workspace: State<'_, Workspace>,
    query: ExpenseQuery,
) -> Result<Option<String>> {
    let csv = workspace.desk().await?.expenses_csv(&query).await?;
    crate::receipts::save_csv(&app, csv).await
}

#[tauri::command]
#[specta::specta]
pub async fn open_claims(workspace: State<'_, Workspace>) -> Result<Vec<ClaimRef>> {
    workspace.desk().await?.open_claims().await
}

/// The ticket on screen (it does not notify), or `null` when none is.
#[tauri::command]
#[specta::specta]
pub fn watch_ticket(alerts: State<'_, Alerts>, id: Option<TicketId>) {
    alerts.set_viewing(id);
}

/// Do not disturb; returns until when alerts are muted.
#[tauri::command]
#[specta::specta]
pub fn mute_alerts(alerts: State<'_, Alerts>, mute: Mute) -> Option<DateTime<Utc>> {
    alerts.set_mute(mute, Utc::now())
}

/// Until when alerts are muted, or `null`.
#[tauri::command]
#[specta::specta]
pub fn alerts_muted(alerts: State<'_, Alerts>) -> Option<DateTime<Utc>> {
    alerts.muted_until(Utc::now())
}

#[tauri::command]
#[specta::specta]
pub async fn list_sla_policies(workspace: State<'_, Workspace>) -> Result<Vec<Policy>> {
    workspace.desk().await?.sla_policies().await
}

/// Creates a policy (`id` null) or changes one at `version`.
#[tauri::command]
#[specta::specta]
pub async fn save_sla_policy(
    workspace: State<'_, Workspace>,
    sync: State<'_, SyncSlot>,
    id: Option<SlaPolicyId>,
    input: PolicyInput,
    version: Option<i32>,
) -> Result<Policy> {
    let desk = workspace.desk().await?;
    settings::save_sla_policy(
        &desk,
        sync.replica().await,
        id,
        &input,
        version.map(i64::from),
    )
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_sla_policy(
    workspace: State<'_, Workspace>,
    sync: State<'_, SyncSlot>,
    id: SlaPolicyId,
) -> Result<()> {
    settings::delete_sla_policy(&workspace.desk().await?, sync.replica().await, id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_calendars(workspace: State<'_, Workspace>) -> Result<Vec<CalendarRecord>> {
    workspace.desk().await?.calendars().await
}

/// Creates a calendar (`id` null) or changes one at `version`.
#[tauri::command]
#[specta::specta]
pub async fn save_calendar(
    workspace: State<'_, Workspace>,
    sync: State<'_, SyncSlot>,
    id: Option<CalendarId>,
    input: CalendarInput,
    version: Option<i32>,
) -> Result<CalendarRecord> {
    let desk = workspace.desk().await?;
    settings::save_calendar(
        &desk,
        sync.replica().await,
        id,
        &input,
        version.map(i64::from),
    )
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn delete_calendar(
    workspace: State<'_, Workspace>,
    sync: State<'_, SyncSlot>,
    id: CalendarId,
) -> Result<()> {
    settings::delete_calendar(&workspace.desk().await?, sync.replica().await, id).await
}

/// Where the app stands: local, connected and signed out, or signed in.
#[tauri::command]
#[specta::specta]
pub async fn account(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<Account> {
    Ok(slot.get(&workspace, &dir).await?.account())
}

/// Reads a server's sign-in settings and connects to it.
#[tauri::command]
#[specta::specta]
pub async fn connect_server(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    url: String,
) -> Result<ServerInfo> {
    slot.get(&workspace, &dir).await?.connect_server(&url).await
}

/// Signs in through the browser; resolves when the answer came back.
#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    server_url: String,
    issuer: String,
) -> Result<Account> {
    let connection = slot.get(&workspace, &dir).await?;
    connection.sign_in(&server_url, &issuer).await
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_sign_in(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<()> {
    slot.get(&workspace, &dir).await?.cancel_sign_in();
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn sign_out(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<Account> {
    slot.get(&workspace, &dir).await?.sign_out().await
}

/// Signs out and forgets the server: back to the local workspace.
#[tauri::command]
#[specta::specta]
pub async fn disconnect_server(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<Account> {
    slot.get(&workspace, &dir).await?.disconnect_server().await
}

#[tauri::command]
#[specta::specta]
pub async fn switch_tenant(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    tenant_id: TenantId,
) -> Result<Account> {
    slot.get(&workspace, &dir)
        .await?
        .switch_tenant(tenant_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn change_password(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    current_password: String,
    new_password: String,
) -> Result<()> {
    let connection = slot.get(&workspace, &dir).await?;
    connection
        .change_password(&current_password, &new_password)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn list_members(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<Vec<Member>> {
    slot.get(&workspace, &dir).await?.members().await
}

#[tauri::command]
#[specta::specta]
pub async fn set_member_role(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    user_id: UserId,
    role: Role,
) -> Result<Member> {
    let connection = slot.get(&workspace, &dir).await?;
    connection.set_member_role(user_id, role).await
}

#[tauri::command]
#[specta::specta]
pub async fn remove_member(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    user_id: UserId,
) -> Result<()> {
    slot.get(&workspace, &dir)
        .await?
        .remove_member(user_id)
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn list_invitations(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
) -> Result<Vec<Invitation>> {
    slot.get(&workspace, &dir).await?.invitations().await
}

#[tauri::command]
#[specta::specta]
pub async fn invite_member(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    email: String,
    role: Role,
) -> Result<Invitation> {
    slot.get(&workspace, &dir).await?.invite(&email, role).await
}

#[tauri::command]
#[specta::specta]
pub async fn revoke_invitation(
    slot: State<'_, AccountSlot>,
    workspace: State<'_, Workspace>,
    dir: State<'_, DataDir>,
    id: InvitationId,
) -> Result<()> {
    slot.get(&workspace, &dir)
        .await?
        .revoke_invitation(id)
        .await
}

/// Whether local changes reach the server: online, offline, syncing or signed out, with the
/// number of unsent and refused changes. The `sync-status` event carries each change of it.
#[tauri::command]
#[specta::specta]
pub async fn sync_status(sync: State<'_, SyncSlot>) -> Result<SyncStatus> {
    sync.status().await
}

/// Syncs now, without waiting out the backoff after a failure.
#[tauri::command]
#[specta::specta]
pub async fn retry_sync(sync: State<'_, SyncSlot>) -> Result<()> {
    sync.retry();
    Ok(())
}

/// Changes the server refused, with its reason: for one ticket, or all.
#[tauri::command]
#[specta::specta]
pub async fn sync_rejections(
    sync: State<'_, SyncSlot>,
    ticket_id: Option<TicketId>,
) -> Result<Vec<Rejection>> {
    sync.replica().await?.rejections(ticket_id).await
}

/// Forgets a refused change once the person has read it.
#[tauri::command]
#[specta::specta]
pub async fn dismiss_rejection(sync: State<'_, SyncSlot>, seq: u32) -> Result<()> {
    sync.replica()
        .await?
        .dismiss_rejection(i64::from(seq))
        .await
}
