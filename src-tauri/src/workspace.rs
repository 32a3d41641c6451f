//! The open workspace, shared by all commands.

use std::path::{Path, PathBuf};

use tallydesk_desktop_core::{Clock, Desk, DeskError, ErrorCode, Store};
use tokio::sync::RwLock;

/// The workspace once opened; commands before that get a clear error.
#[derive(Default)]
pub struct Workspace {
    desk: RwLock<Option<Desk>>,
}

/// Where the app keeps its files: the platform's app data directory (tests pick their own).
#[derive(Clone, Debug)]
pub struct DataDir(pub PathBuf);

/// The database file of the workspace in `data_dir`.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("workspace.db")
}

fn user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .map(|u| {
            let mut chars = u.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or(u)
        })
        .unwrap_or_else(|| "You".to_owned())
}

impl Workspace {
    /// Opens the workspace in `data_dir` (first start: with demo data).
    pub async fn open(&self, data_dir: &Path) -> Result<Desk, DeskError> {
        let mut slot = self.desk.write().await;
        if let Some(desk) = slot.as_ref() {
            return Ok(desk.clone());
        }
        let store = Store::open(&database_path(data_dir)).await?;
        crate::startup::mark("store open and migrated");
        let desk = Desk::open(store, Clock::system(), &user_name(), true).await?;
        crate::startup::mark("desk open (demo data on a first start)");
        *slot = Some(desk.clone());
        Ok(desk)
    }

    /// Moves the current database file aside (kept, never deleted) and opens a fresh workspace.
    pub async fn start_fresh(&self, data_dir: &Path) -> Result<(Desk, PathBuf), DeskError> {
        let mut slot = self.desk.write().await;
        if let Some(desk) = slot.take() {
            desk.store().close().await;
        }
        let kept = tallydesk_desktop_core::store::set_aside(&database_path(data_dir))?;
        let store = Store::open(&database_path(data_dir)).await?;
        let desk = Desk::open(store, Clock::system(), &user_name(), true).await?;
        *slot = Some(desk.clone());
        Ok((desk, kept))
    }

    pub async fn desk(&self) -> Result<Desk, DeskError> {
        self.desk
            .read()
            .await
            .clone()
            .ok_or_else(|| DeskError::new(ErrorCode::Internal, "the workspace is not open yet"))
    }
}
