//! Syncing the local store with a Tallydesk server (protocol in `tallydesk_shared::sync`).
//!
//! Local writes made while signed in to a tenant queue their intent in the outbox in the same
//! SQLite transaction as the change ([`crate::Desk`] does it). [`Replica::sync`] pushes the
//! outbox in order, pulls the change log from the saved cursor, and replays the still-pending
//! intents over what it pulled, so the local view is the server's state plus my unsent changes.
//!
//! One store syncs with one (server, tenant) at a time, its scope: the tenant's records live in
//! the ordinary tables. Switching to another tenant or server removes the records that came
//! from the old one and pulls the new one from the start; the outbox keeps each scope's
//! intents, tagged, so unsent changes wait for their tenant rather than being lost. Records made
//! in local mode before the first sign-in stay as they are and are never sent.

pub mod expenses;
pub mod live;
pub mod settings;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallydesk_shared::sync::{Cursor, ExpenseCreate, Intent, MAX_PULL_LIMIT, PushRequest};
use tallydesk_shared::{TenantId, TicketId};
use tokio::sync::{Mutex, watch};

use crate::account::{Account, Connection};
use crate::error::{DeskError, DeskResult, ErrorCode};
use crate::model::Person;
use crate::time::to_micros;
use crate::{Desk, ErrorCode as Code};

/// How many intents one push sends.
pub const PUSH_BATCH: i64 = 100;

/// What local writes are queued for: a tenant on a server, and who acts there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncScope {
    pub server_url: String,
    pub tenant_id: TenantId,
    /// The signed-in user, with their role in the tenant.
    pub user: Person,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// The last sync reached the server.
    Online,
    /// The server could not be reached; changes wait in the outbox.
    Offline,
    Syncing,
    /// Not signed in to a server: nothing syncs (local mode, or signed out).
    SignedOut,
}

/// How far a long pull has come, in steps of the server's change log from where the pull
/// started (`done` of `total`; the caller may see only some of those changes). A server older
/// than the log's `head` in its answer leaves `total` absent, and `done` counts the changes
/// received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SyncProgress {
    pub done: u32,
    pub total: Option<u32>,
}

impl SyncProgress {
    /// After a page: the pull started at `start`, has reached `cursor`, and the log ends at
    /// `head` (0 from an older server); `received` changes came so far.
    pub fn after_page(start: Cursor, cursor: Cursor, head: Cursor, received: u32) -> SyncProgress {
        let steps = |n: Cursor| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        if head <= start {
            return SyncProgress {
                done: received,
                total: None,
            };
        }
        let total = steps(head - start);
        SyncProgress {
            done: steps(cursor - start).min(total),
            total: Some(total),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SyncStatus {
    pub state: SyncState,
    /// Changes made here that the server has not taken yet.
    pub unsent: u32,
    /// Changes the server refused; see [`Rejection`]s.
    pub rejected: u32,
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Set while pulling.
    pub progress: Option<SyncProgress>,
    /// Why the last sync failed, when it did.
    pub error: Option<String>,
}

impl SyncStatus {
    fn signed_out() -> SyncStatus {
        SyncStatus {
            state: SyncState::SignedOut,
            unsent: 0,
            rejected: 0,
            last_synced_at: None,
            progress: None,
            error: None,
        }
    }
}

/// A change of mine the server refused, kept until the person dismisses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Rejection {
    #[specta(type = specta_typescript::Number)]
    pub seq: i64,
    /// The ticket the change was about; none for a customer's.
    pub ticket_id: Option<TicketId>,
    pub intent: Intent,
    /// The server's error code, e.g. `illegal_transition`.
    pub code: ErrorCode,
    pub message: String,
    pub made_at: DateTime<Utc>,
}

/// The local store as a replica of the signed-in tenant. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Replica {
    desk: Desk,
    connection: Connection,
    status: Arc<watch::Sender<SyncStatus>>,
    /// One sync at a time.
    running: Arc<Mutex<()>>,
}

impl Replica {
    pub fn new(desk: Desk, connection: Connection) -> Replica {
        Replica {
            desk,
            connection,
            status: Arc::new(watch::Sender::new(SyncStatus::signed_out())),
            running: Arc::new(Mutex::new(())),
        }
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The status as last known.
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Changes whenever the status does.
    pub fn watch_status(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    fn set_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        self.status.send_if_modified(|status| {
            let before = status.clone();
            f(status);
            *status != before
        });
    }

    /// Signed out: nothing syncs, but the outbox may still hold changes for the server the
    /// app is connected to (sent once signed in there again), and leaving it asks first.
    async fn set_signed_out(&self) -> DeskResult<()> {
        let server = match self.connection.account() {
            Account::SignedOut { server_url, .. } => Some(server_url),
            Account::SignedIn(session) => Some(session.server_url),
            Account::Local => None,
        };
        let (unsent, rejected) = match server {
            Some(server) => store::server_counts(self.desk.store(), &server).await?,
            None => (0, 0),
        };
        self.set_status(|s| {
            *s = SyncStatus {
                unsent,
                rejected,
                ..SyncStatus::signed_out()
            }
        });
        Ok(())
    }

    /// Re-reads the outbox's counts (after a local write), without calling the server.
    pub async fn refresh_status(&self) -> DeskResult<SyncStatus> {
        let Some(scope) = self.desk.sync_scope() else {
            self.set_signed_out().await?;
            return Ok(self.status());
        };
        let (unsent, rejected) = store::counts(self.desk.store(), &scope).await?;
        let position = store::position(self.desk.store()).await?;
        self.set_status(|s| {
            // Signed in, and no sync has said how it went yet (the app just started, or just
            // signed in): the sync loop is on its way, so this is not "offline".
            if s.state == SyncState::SignedOut && s.error.is_none() {
                s.state = SyncState::Syncing;
            }
            s.unsent = unsent;
            s.rejected = rejected;
            s.last_synced_at = position.last_synced_at;
        });
        Ok(self.status())
    }

    /// The refused changes of the signed-in tenant, for one ticket or all.
    pub async fn rejections(&self, ticket: Option<TicketId>) -> DeskResult<Vec<Rejection>> {
        match self.desk.sync_scope() {
            Some(scope) => store::rejections(self.desk.store(), &scope, ticket).await,
            None => Ok(Vec::new()),
        }
    }

    /// Forgets a refused change the person has seen.
    pub async fn dismiss_rejection(&self, seq: i64) -> DeskResult<()> {
        store::dismiss(self.desk.store(), seq).await?;
        self.refresh_status().await?;
        Ok(())
    }

    /// One sync: push the outbox, pull to the end of the log, replay what is still pending.
    /// Not signed in, it does nothing. The status says how it went.
    pub async fn sync(&self) -> DeskResult<()> {
        let _one = self.running.lock().await;
        let Some(scope) = self.desk.sync_scope() else {
            return self.set_signed_out().await;
        };
        self.set_status(|s| s.state = SyncState::Syncing);
        let result = self.cycle(&scope).await;
        let counts = store::counts(self.desk.store(), &scope).await;
        let position = store::position(self.desk.store()).await;
        self.set_status(|s| {
            if let Ok((unsent, rejected)) = counts {
                s.unsent = unsent;
                s.rejected = rejected;
            }
            if let Ok(p) = &position {
                s.last_synced_at = p.last_synced_at;
            }
            s.progress = None;
            match &result {
                Ok(()) => {
                    s.state = SyncState::Online;
                    s.error = None;
                }
                Err(e) => {
                    s.state = match e.code {
                        Code::NotSignedIn | Code::SessionExpired => SyncState::SignedOut,
                        _ => SyncState::Offline,
                    };
                    s.error = Some(e.message.clone());
                }
            }
        });
        result
    }

    async fn cycle(&self, scope: &crate::sync::SyncScope) -> DeskResult<()> {
        let store = self.desk.store();
        let now = to_micros(self.desk.now());
        if store::enter_scope(store, scope, now).await? {
            self.desk.touched();
        }
        let answered = self.push(scope).await?;
        self.pull().await?;
        store::replay(store, scope, &answered, to_micros(self.desk.now())).await?;
        store::synced(store, to_micros(self.desk.now())).await?;
        self.desk.touched();
        if self.fetch_receipts().await {
            self.desk.touched();
        }
        Ok(())
    }

    /// Pushes every pending intent in order, in batches; returns the records answered.
    async fn push(&self, scope: &SyncScope) -> DeskResult<Vec<(String, String)>> {
        let store = self.desk.store();
        let client_id = store::client_id(store).await?;
        let mut answered = Vec::new();
        loop {
            let batch = store::pending(store, scope, PUSH_BATCH).await?;
            if batch.is_empty() {
                return Ok(answered);
            }
            let mut mutations = store::mutations(&batch);
            for mutation in &mut mutations {
                if let Intent::ExpenseCreate(e) = &mut mutation.intent {
                    self.upload_receipt(e).await?;
                }
            }
            let request = PushRequest {
                client_id,
                mutations,
            };
            let response = self.connection.sync_push(&request).await?;
            let settled = store::settle(store, &response.results).await?;
            if settled.is_empty() {
                return Err(DeskError::new(
                    ErrorCode::NotATallydeskServer,
                    "the server answered none of the changes sent; they stay queued",
                ));
            }
            answered.extend(settled);
            let (unsent, rejected) = store::counts(store, scope).await?;
            self.set_status(|s| {
                s.unsent = unsent;
                s.rejected = rejected;
            });
        }
    }

    /// Uploads the receipt image a submission names, before the submission. An image the
    /// server will not take (a type or size it refuses, or gone from this computer) is left
    /// out rather than holding every later change back; the expense goes without it.
    async fn upload_receipt(&self, e: &mut ExpenseCreate) -> DeskResult<()> {
        let Some(receipt) = &e.receipt else {
            return Ok(());
        };
        let refused = match expenses::receipt_bytes(self.desk.store(), &receipt.sha256).await {
            None => "it is no longer on this computer".to_owned(),
            Some(bytes) => match self
                .connection
                .put_blob(&receipt.sha256, &receipt.media_type, bytes)
                .await
            {
                Ok(()) => return Ok(()),
                Err(err)
                    if matches!(
                        err.code,
                        Code::ServerUnreachable | Code::SessionExpired | Code::NotSignedIn
                    ) =>
                {
                    return Err(err);
                }
                Err(err) => err.message,
            },
        };
        tracing::warn!(expense = %e.id, %refused, "an expense goes without its receipt image");
        e.receipt = None;
        Ok(())
    }

    /// Fetches receipt images of the server's expenses that are not here yet, some per sync.
    /// A failure leaves them for the next sync. Says whether any came.
    async fn fetch_receipts(&self) -> bool {
        let store = self.desk.store();
        let missing = match expenses::missing_receipts(store, expenses::RECEIPTS_PER_SYNC).await {
            Ok(missing) => missing,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the receipt images to fetch");
                return false;
            }
        };
        let mut any = false;
        for (sha256, media_type) in missing {
            let now = to_micros(self.desk.now());
            let kept = match self.connection.get_blob(&sha256).await {
                Ok(Some(bytes)) => {
                    expenses::keep_receipt(store, &sha256, &media_type, bytes, now).await
                }
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            if let Err(e) = kept {
                tracing::info!(error = %e, %sha256, "a receipt image waits for the next sync");
                break;
            }
            any = true;
        }
        any
    }

    /// Pulls from the saved cursor until the log is exhausted, asking for the next page while
    /// the last one is applied. A compacted log (`resync_required`) restarts from 0 once,
    /// keeping the outbox. The search index takes what the pages brought with the last one
    /// (see [`store::Indexing`]), or at once when the pull fails half way.
    async fn pull(&self) -> DeskResult<()> {
        let pulled = self.pull_pages().await;
        if pulled.is_err()
            && let Err(e) = store::reindex(self.desk.store()).await
        {
            tracing::warn!(error = %e, "could not index the pulled records for search");
        }
        pulled
    }

    async fn pull_pages(&self) -> DeskResult<()> {
        let store = self.desk.store();
        let mut restarted = false;
        let mut received: u32 = 0;
        let mut cursor = store::position(store).await?.cursor;
        let mut start = cursor;
        let mut fetched = self.connection.sync_pull(cursor, MAX_PULL_LIMIT).await;
        loop {
            let page = match fetched {
                Err(e) if e.code == ErrorCode::ResyncRequired && !restarted => {
                    restarted = true;
                    store::restart(store, to_micros(self.desk.now())).await?;
                    cursor = 0;
                    start = 0;
                    fetched = self.connection.sync_pull(cursor, MAX_PULL_LIMIT).await;
                    continue;
                }
                other => other?,
            };
            if page.has_more && page.cursor <= cursor && page.changes.is_empty() {
                return Err(DeskError::new(
                    ErrorCode::NotATallydeskServer,
                    "the server said more changes follow but sent none",
                ));
            }
            let indexing = if page.has_more {
                store::Indexing::Later
            } else {
                store::Indexing::Now
            };
            let applied = store::apply_page(
                store,
                &page.changes,
                page.cursor,
                to_micros(self.desk.now()),
                indexing,
            );
            if !page.has_more {
                return applied.await;
            }
            // The page is saved (with its cursor) before the next one is used, so a failure
            // of either leaves the store at a page boundary. The next page is fetched (and
            // parsed) on a task of its own, beside this one's work on the page.
            let connection = self.connection.clone();
            let after = page.cursor;
            let next =
                tokio::spawn(async move { connection.sync_pull(after, MAX_PULL_LIMIT).await });
            let (applied, next) = tokio::join!(applied, next);
            applied?;
            cursor = page.cursor;
            fetched = next.unwrap_or_else(|e| {
                Err(DeskError::new(
                    ErrorCode::Internal,
                    format!("fetching the next page stopped: {e}"),
                ))
            });
            received =
                received.saturating_add(u32::try_from(page.changes.len()).unwrap_or(u32::MAX));
            let progress = SyncProgress::after_page(start, cursor, page.head, received);
            self.set_status(|s| s.progress = Some(progress));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_how_far_the_pull_is_between_where_it_started_and_the_logs_head() {
        assert_eq!(
            SyncProgress::after_page(100, 600, 1100, 3),
            SyncProgress {
                done: 500,
                total: Some(1000)
            },
            "half of the log between the saved cursor and its head is pulled"
        );
        assert_eq!(
            SyncProgress::after_page(0, 1100, 1100, 900),
            SyncProgress {
                done: 1100,
                total: Some(1100)
            },
            "at the head, the bar is full"
        );
        assert_eq!(
            SyncProgress::after_page(100, 600, 0, 42),
            SyncProgress {
                done: 42,
                total: None
            },
            "a server that does not say where its log ends: the changes received are counted"
        );
    }
}
