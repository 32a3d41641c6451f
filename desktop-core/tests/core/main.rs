//! Tests of the desktop's logic on a real SQLite file, without a webview.

mod account;
mod demo;
mod expenses;
mod sla;
mod store;
mod sync;
mod sync_customers;
mod sync_expenses;
mod sync_server;
mod sync_settings;
mod tickets;

use std::path::PathBuf;

use tallydesk_desktop_core::{Clock, Desk, Store};

/// A workspace in a temporary directory, removed when dropped.
pub struct Fixture {
    pub desk: Desk,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new(demo: bool) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("workspace.db"))
            .await
            .expect("open store");
        let desk = Desk::open(store, Clock::system(), "Test User", demo)
            .await
            .expect("open desk");
        Fixture { desk, dir }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("workspace.db")
    }
}
