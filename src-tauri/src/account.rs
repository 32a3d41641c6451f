//! The account (server, sign-in, tokens) behind the account commands, opened on first use.

use tallydesk_desktop_core::DeskError;
use tallydesk_desktop_core::account::{Connection, Setup};
use tokio::sync::OnceCell;

use crate::workspace::{DataDir, Workspace};

/// The account of the open workspace; its saved sign-in is resumed when first asked for.
#[derive(Default)]
pub struct AccountSlot {
    connection: OnceCell<Connection>,
}

impl AccountSlot {
    /// The account, opening the workspace and resuming its saved sign-in on first use.
    pub async fn get(&self, workspace: &Workspace, dir: &DataDir) -> Result<Connection, DeskError> {
        self.connection
            .get_or_try_init(|| async {
                let desk = workspace.open(&dir.0).await?;
                Connection::open(desk, Setup::system()).await
            })
            .await
            .cloned()
    }
}
