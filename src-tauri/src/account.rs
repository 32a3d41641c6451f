//! The account (server, sign-in, tokens) behind the account commands, opened on first use.

use tallydesk_desktop_core::DeskError;
use tallydesk_desktop_core::account::{Connection, Setup};
use tokio::sync::Mutex;

use crate::workspace::{DataDir, Workspace};

/// The account of the open workspace; its saved sign-in is resumed when first asked for.
#[derive(Default)]
pub struct AccountSlot {
    connection: Mutex<Option<Connection>>,
}

impl AccountSlot {
    /// The account, opening the workspace and resuming its saved sign-in on first use.
    pub async fn get(&self, workspace: &Workspace, dir: &DataDir) -> Result<Connection, DeskError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &*slot {
            return Ok(connection.clone());
        }
        let desk = workspace.open(&dir.0).await?;
        let connection = Connection::open(desk, Setup::system()).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the account of a workspace that was set aside: the fresh one has its own.
    pub async fn forget(&self) {
        self.connection.lock().await.take();
    }
}
