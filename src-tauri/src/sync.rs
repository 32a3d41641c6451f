//! The sync loop beside the app: it follows the open account (a fresh workspace brings a new
//! one), runs `tallydesk_desktop_core::sync::live::run` for it, and tells the window each time
//! the status changes.

use std::sync::Arc;
use std::time::Duration;

use tallydesk_desktop_core::DeskError;
use tallydesk_desktop_core::account::Connection;
use tallydesk_desktop_core::sync::{Replica, SyncState, SyncStatus};
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::{Mutex, Notify};

use crate::account::AccountSlot;
use crate::workspace::{DataDir, Workspace};

/// Emitted with the new [`SyncStatus`] whenever it changes.
pub const SYNC_STATUS_EVENT: &str = "sync-status";

/// How often the loop looks whether the account was replaced (a fresh workspace).
const FOLLOW: Duration = Duration::from_secs(2);

/// The running sync, if the account is open.
#[derive(Default)]
pub struct SyncSlot {
    running: Mutex<Option<Running>>,
    retry: Arc<Notify>,
}

struct Running {
    connection: Connection,
    replica: Replica,
    tasks: Vec<tauri::async_runtime::JoinHandle<()>>,
}

impl SyncSlot {
    /// The current status; signed out before the account is open.
    pub async fn status(&self) -> Result<SyncStatus, DeskError> {
        let replica = self
            .running
            .lock()
            .await
            .as_ref()
            .map(|r| r.replica.clone());
        match replica {
            Some(replica) => replica.refresh_status().await,
            None => Ok(SyncStatus {
                state: SyncState::SignedOut,
                unsent: 0,
                rejected: 0,
                last_synced_at: None,
                progress: None,
                error: None,
            }),
        }
    }

    /// Asks for a sync now, skipping any backoff.
    pub fn retry(&self) {
        self.retry.notify_one();
    }

    pub async fn replica(&self) -> Result<Replica, DeskError> {
        self.running
            .lock()
            .await
            .as_ref()
            .map(|r| r.replica.clone())
            .ok_or_else(|| {
                DeskError::new(
                    tallydesk_desktop_core::ErrorCode::NotSignedIn,
                    "the account is not open yet",
                )
            })
    }

    /// Runs the loop for `connection`, replacing one for an older account.
    async fn follow(&self, app: &AppHandle, connection: Connection) {
        let mut running = self.running.lock().await;
        if running
            .as_ref()
            .is_some_and(|r| r.connection.same(&connection))
        {
            return;
        }
        if let Some(old) = running.take() {
            for task in old.tasks {
                task.abort();
            }
        }
        let replica = Replica::new(connection.desk().clone(), connection.clone());
        let mut status = replica.watch_status();
        let app = app.clone();
        let forward = tauri::async_runtime::spawn(async move {
            while status.changed().await.is_ok() {
                let now = status.borrow_and_update().clone();
                let _ = app.emit(SYNC_STATUS_EVENT, now);
            }
        });
        let sync = tauri::async_runtime::spawn(tallydesk_desktop_core::sync::live::run(
            replica.clone(),
            self.retry.clone(),
        ));
        *running = Some(Running {
            connection,
            replica,
            tasks: vec![forward, sync],
        });
    }
}

/// Starts following the account for the life of the app.
pub fn start(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let account = app.state::<AccountSlot>();
            let opened = account
                .get(&app.state::<Workspace>(), &app.state::<DataDir>())
                .await;
            match opened {
                Ok(connection) => app.state::<SyncSlot>().follow(&app, connection).await,
                Err(e) => tracing::debug!(error = %e, "no account to sync yet"),
            }
            tokio::time::sleep(FOLLOW).await;
        }
    });
}
